//! datacenter.cfg: typed view and PVE-style warnings.

use pve_gitops_schema::datacenter::{
    Bwlimit, DatacenterDocument, DatacenterView, Migration, MigrationType,
};
use pve_gitops_schema::diag::Severity;
use std::path::Path;

fn fixture(name: &str) -> DatacenterDocument {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datacenter")
        .join(name);
    DatacenterDocument::parse(&std::fs::read_to_string(p).unwrap())
}

#[test]
fn view_of_basic_fixture() {
    let d = fixture("basic.cfg");
    let v = d.view();
    assert_eq!(
        v.migration,
        Some(Migration::new(
            MigrationType::Secure,
            Some("10.1.2.0/24".parse().unwrap())
        ))
    );
    assert_eq!(
        v.bwlimit,
        Some(Bwlimit {
            default: Some(100),
            migration: Some(512000),
            ..Bwlimit::default()
        })
    );
    assert_eq!(v.max_workers, Some(4));
    assert_eq!(v.other.len(), 1);
    assert_eq!(v.other.get("keyboard").map(String::as_str), Some("en-us"));
    assert!(d.diagnostics().is_empty(), "{:?}", d.diagnostics());
    assert_eq!(
        d.comments(),
        vec![" cluster-wide options", " second comment line"]
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["migration"]["type"], "secure");
    assert_eq!(json["migration"]["network"], "10.1.2.0/24");
    assert_eq!(json["bwlimit"]["migration"], 512000);
    assert_eq!(json["max_workers"], 4);
    assert_eq!(json["other"]["keyboard"], "en-us");
}

#[test]
fn ignored_lines_unknown_and_duplicate_keys() {
    let d = fixture("unknown_keys.cfg");
    let diags = d.diagnostics();
    let msgs: Vec<(&str, &str, usize)> = diags
        .iter()
        .map(|x| {
            (
                x.rule,
                x.message.as_str(),
                x.location.map(|l| l.line).unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            ("datacenter-ignored-line", "ignore config line: this line is junk", 2),
            (
                "datacenter-unknown-key",
                "parse error in '/etc/pve/datacenter.cfg' - 'foo_bar': property is not defined in schema and the schema does not allow additional properties",
                3
            ),
            (
                "datacenter-duplicate-key",
                "duplicate key 'keyboard' (also on line 1): the last one wins",
                4
            ),
            ("datacenter-ignored-line", "ignore config line: key : value", 5),
            ("datacenter-ignored-line", "ignore config line: :novalue", 6),
        ]
    );
    assert!(diags.iter().all(|x| x.severity == Severity::Warning));
    let v = d.view();
    assert_eq!(v.other.get("keyboard").map(String::as_str), Some("de"));
    assert_eq!(v.other.get("foo_bar").map(String::as_str), Some("1"));
    // `\S+?:` splits at the first colon: the value keeps the others.
    assert_eq!(d.get("mac_prefix"), Some("BC:24:11"));
}

#[test]
fn invalid_values_are_dropped_with_pve_warning() {
    let src = "keyboard: de\nmigration: network=10.1.2.0/24\nmax_workers: 0\nbwlimit: x\n";
    let d = DatacenterDocument::parse(src);
    let v = d.view();
    assert_eq!(v.migration, None);
    assert_eq!(v.max_workers, None);
    assert_eq!(v.bwlimit, None);
    let diags = d.diagnostics();
    let msgs: Vec<&str> = diags.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(
        msgs,
        vec![
            "parse error in '/etc/pve/datacenter.cfg' - 'migration': type: property is missing and it is not optional",
            "parse error in '/etc/pve/datacenter.cfg' - 'max_workers': value must have a minimum value of 1",
            "parse error in '/etc/pve/datacenter.cfg' - 'bwlimit': value without key, but schema does not define a default key",
        ]
    );
    let loc = diags[0].location.unwrap();
    assert_eq!((loc.line, loc.col), (2, 12));
    assert_eq!(diags[0].path, "migration");
    let r = diags[0].render(Some(src));
    assert!(r.contains("2 | migration: network=10.1.2.0/24\n"), "{r}");
    assert!(r.contains("  |            ^^^^^^^^^^^^^^^^^^^\n"), "{r}");
}

#[test]
fn deprecated_migration_unsecure_alone_sets_type() {
    let d = fixture("deprecated.cfg");
    let v = d.view();
    assert_eq!(
        v.migration,
        Some(Migration::new(MigrationType::Insecure, None))
    );
    assert!(!v.other.contains_key("migration_unsecure"));
    let diags = d.diagnostics();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].rule, "datacenter-deprecated-key");
    assert_eq!(
        diags[0].help.as_deref(),
        Some("use `migration: insecure` instead")
    );

    let v = DatacenterDocument::parse("migration_unsecure: no\n").view();
    assert_eq!(
        v.migration,
        Some(Migration::new(MigrationType::Secure, None))
    );
}

#[test]
fn deprecated_migration_unsecure_with_migration_is_ignored() {
    let d =
        DatacenterDocument::parse("migration: secure,network=10.1.2.0/24\nmigration_unsecure: 1\n");
    let v = d.view();
    assert_eq!(v.migration.map(|m| m.mtype), Some(MigrationType::Secure));
    let diags = d.diagnostics();
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].message,
        "deprecated setting 'migration_unsecure' and new 'migration: type' set at same time! Ignore 'migration_unsecure'"
    );
    assert_eq!(diags[0].location.map(|l| l.line), Some(2));
}

#[test]
fn deprecated_migration_unsecure_applies_when_migration_invalid() {
    let d = DatacenterDocument::parse("migration: network=10.1.2.0/24\nmigration_unsecure: 1\n");
    assert_eq!(
        d.view().migration,
        Some(Migration::new(MigrationType::Insecure, None))
    );
    let d = DatacenterDocument::parse("migration_unsecure: maybe\n");
    assert_eq!(d.view().migration, None);
    assert_eq!(
        d.diagnostics()[0].message,
        "parse error in '/etc/pve/datacenter.cfg' - 'migration_unsecure': type check ('boolean') failed - got 'maybe'"
    );
}

#[test]
fn unknown_key_suggests_known_one() {
    let d = DatacenterDocument::parse("max_worker: 4\n");
    let diags = d.diagnostics();
    assert_eq!(
        diags[0].help.as_deref(),
        Some("did you mean `max_workers`?")
    );
}

#[test]
fn diagnostics_locations_follow_edits() {
    let mut d = DatacenterDocument::parse("keyboard: de\njunk\n");
    d.set("bwlimit", "migration=1").unwrap();
    let text = d.to_string();
    assert_eq!(text, "keyboard: de\nbwlimit: migration=1\njunk\n");
    let diags = d.diagnostics();
    assert_eq!(diags.len(), 1);
    let loc = diags[0].location.unwrap();
    assert_eq!((loc.line, loc.col), (3, 1));
    assert_eq!(&text[loc.offset..loc.offset + loc.len], "junk");
}

#[test]
fn default_view_is_empty() {
    let v = DatacenterDocument::parse("# nothing\n").view();
    assert_eq!(v, DatacenterView::default());
}
