//! datacenter.cfg edits, each checked against expected text written by hand.

use pve_gitops_schema::datacenter::{
    Bwlimit, DatacenterDocument, EditError, Migration, MigrationType,
};

fn doc(s: &str) -> DatacenterDocument {
    DatacenterDocument::parse(s)
}

#[test]
fn set_replaces_last_occurrence_in_place() {
    let mut d = doc("# c\nkeyboard: fr\nconsole: html5\nkeyboard:   de  \n");
    d.set("keyboard", "en-us").unwrap();
    assert_eq!(
        d.to_string(),
        "# c\nkeyboard: fr\nconsole: html5\nkeyboard:   en-us  \n"
    );
    assert_eq!(d.get("keyboard"), Some("en-us"));
}

#[test]
fn set_keeps_indentation_and_tab_separator() {
    let mut d = doc("  max_workers:\t2\nkeyboard: de\n");
    d.set("max_workers", "8").unwrap();
    assert_eq!(d.to_string(), "  max_workers:\t8\nkeyboard: de\n");
}

#[test]
fn set_on_empty_value_adds_a_space() {
    let mut d = doc("crs:\nkeyboard: de\n");
    d.set("crs", "ha=static").unwrap();
    assert_eq!(d.to_string(), "crs: ha=static\nkeyboard: de\n");
}

#[test]
fn set_appends_after_last_key_line() {
    let mut d = doc("# top\nkeyboard: de\n\n# trailing comment\n\n");
    d.set("max_workers", "4").unwrap();
    assert_eq!(
        d.to_string(),
        "# top\nkeyboard: de\nmax_workers: 4\n\n# trailing comment\n\n"
    );
}

#[test]
fn set_appends_with_file_separator_style() {
    let mut d = doc("keyboard:de\nconsole:xtermjs\n");
    d.set("max_workers", "4").unwrap();
    assert_eq!(
        d.to_string(),
        "keyboard:de\nconsole:xtermjs\nmax_workers:4\n"
    );
}

#[test]
fn set_appends_with_crlf() {
    let mut d = doc("keyboard: de\r\nconsole: html5\r\n");
    d.set("max_workers", "4").unwrap();
    assert_eq!(
        d.to_string(),
        "keyboard: de\r\nconsole: html5\r\nmax_workers: 4\r\n"
    );
}

#[test]
fn set_appends_keeping_missing_final_newline() {
    let mut d = doc("keyboard: de");
    d.set("max_workers", "4").unwrap();
    assert_eq!(d.to_string(), "keyboard: de\nmax_workers: 4");
}

#[test]
fn set_appends_in_middle_when_final_line_is_comment_without_newline() {
    let mut d = doc("keyboard: de\n# end");
    d.set("max_workers", "4").unwrap();
    assert_eq!(d.to_string(), "keyboard: de\nmax_workers: 4\n# end");
}

#[test]
fn set_into_empty_and_comment_only_documents() {
    let mut d = doc("");
    d.set("keyboard", "de").unwrap();
    assert_eq!(d.to_string(), "keyboard: de\n");

    let mut d = doc("# only a comment\n");
    d.set("keyboard", "de").unwrap();
    assert_eq!(d.to_string(), "# only a comment\nkeyboard: de\n");
}

#[test]
fn set_refuses_values_that_would_not_read_back() {
    let mut d = doc("keyboard: de\n");
    let before = d.clone();
    for (k, v) in [
        ("", "x"),
        ("a b", "x"),
        ("a:b", "x"),
        ("#a", "x"),
        ("keyboard", "a\nb"),
        ("keyboard", "a\rb"),
        ("keyboard", " x"),
        ("keyboard", "x\t"),
    ] {
        assert!(d.set(k, v).is_err(), "{k:?} {v:?}");
    }
    assert_eq!(d, before);
    assert!(matches!(
        d.set("a b", "x"),
        Err(EditError::InvalidKey { .. })
    ));
}

#[test]
fn remove_removes_every_occurrence_only() {
    let mut d = doc("keyboard: fr\n# keep me\nconsole: html5\nkeyboard: de\n\n");
    assert!(d.remove("keyboard"));
    assert_eq!(d.to_string(), "# keep me\nconsole: html5\n\n");
    assert!(!d.remove("keyboard"));
}

#[test]
fn remove_last_line_keeps_missing_final_newline() {
    let mut d = doc("keyboard: de\nconsole: html5");
    assert!(d.remove("console"));
    assert_eq!(d.to_string(), "keyboard: de");

    let mut d = doc("keyboard: de\r\nconsole: html5");
    assert!(d.remove("console"));
    assert_eq!(d.to_string(), "keyboard: de");
}

#[test]
fn set_migration_keeps_equivalent_spelling() {
    let src = "keyboard: de\nmigration: network=10.1.2.0/24,type=secure\n";
    let mut d = doc(src);
    let m: Migration = "secure,network=10.1.2.0/24".parse().unwrap();
    assert!(!d.set_migration(&m));
    assert_eq!(d.to_string(), src);
}

#[test]
fn set_migration_writes_canonical_spelling() {
    let mut d = doc("keyboard: de\nmigration: type=secure\nconsole: html5\n");
    let m = Migration::new(
        MigrationType::Insecure,
        Some("10.1.2.0/24".parse().unwrap()),
    );
    assert!(d.set_migration(&m));
    assert_eq!(
        d.to_string(),
        "keyboard: de\nmigration: insecure,network=10.1.2.0/24\nconsole: html5\n"
    );
}

#[test]
fn set_migration_replaces_invalid_value() {
    let mut d = doc("migration: network=10.1.2.0/24\n");
    let m: Migration = "secure,network=10.1.2.0/24".parse().unwrap();
    assert!(d.set_migration(&m));
    assert_eq!(d.to_string(), "migration: secure,network=10.1.2.0/24\n");
}

#[test]
fn set_bwlimit_migration_keeps_other_limits() {
    let mut d = doc("bwlimit: restore=100,migration=1000\nkeyboard: de\n");
    assert!(d.set_bwlimit_migration(Some(512000)).unwrap());
    assert_eq!(
        d.to_string(),
        "bwlimit: migration=512000,restore=100\nkeyboard: de\n"
    );
    assert!(!d.set_bwlimit_migration(Some(512000)).unwrap());
}

#[test]
fn set_bwlimit_migration_adds_and_clears() {
    let mut d = doc("keyboard: de\n");
    assert!(d.set_bwlimit_migration(Some(512000)).unwrap());
    assert_eq!(d.to_string(), "keyboard: de\nbwlimit: migration=512000\n");
    assert!(d.set_bwlimit_migration(None).unwrap());
    assert_eq!(d.to_string(), "keyboard: de\n");
    assert!(!d.set_bwlimit_migration(None).unwrap());
}

#[test]
fn set_bwlimit_migration_refuses_to_clobber_invalid_value() {
    let src = "bwlimit: migration=fast\n";
    let mut d = doc(src);
    assert!(matches!(
        d.set_bwlimit_migration(Some(1)),
        Err(EditError::CurrentValueInvalid { .. })
    ));
    assert_eq!(d.to_string(), src);
}

#[test]
fn set_bwlimit_equal_value_is_a_no_op() {
    let src = "bwlimit: migration=512000,default=100\n";
    let mut d = doc(src);
    let b = Bwlimit {
        default: Some(100),
        migration: Some(512000),
        ..Bwlimit::default()
    };
    assert!(!d.set_bwlimit(&b));
    assert_eq!(d.to_string(), src);
}

#[test]
fn set_max_workers() {
    let mut d = doc("max_workers: 04\n");
    assert!(!d.set_max_workers(4).unwrap());
    assert_eq!(d.to_string(), "max_workers: 04\n");
    assert!(d.set_max_workers(8).unwrap());
    assert_eq!(d.to_string(), "max_workers: 8\n");
    assert!(d.set_max_workers(0).is_err());
    assert_eq!(d.max_workers(), Some(Ok(8)));
}
