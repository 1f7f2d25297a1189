//! datacenter.cfg: byte-identical round trips of the fixtures and of arbitrary text.

use proptest::prelude::*;
use pve_gitops_schema::datacenter::DatacenterDocument;
use std::fs;
use std::path::Path;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datacenter")
        .join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_fixture_round_trips_byte_identical() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datacenter");
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("cfg") {
            continue;
        }
        let src = fs::read_to_string(&path).unwrap();
        let doc = DatacenterDocument::parse(&src);
        assert_eq!(doc.to_string(), src, "{}", path.display());
        n += 1;
    }
    assert!(n >= 8, "expected the fixtures, found {n}");
}

#[test]
fn crlf_is_kept_and_values_are_clean() {
    let src = fixture("crlf.cfg");
    let doc = DatacenterDocument::parse(&src);
    assert_eq!(doc.get("keyboard"), Some("de"));
    assert_eq!(doc.get("console"), Some("xtermjs"));
    assert_eq!(doc.to_string(), src);
    assert!(doc.diagnostics().is_empty(), "{:?}", doc.diagnostics());
}

#[test]
fn no_final_newline_is_kept() {
    let src = fixture("no_final_newline.cfg");
    let doc = DatacenterDocument::parse(&src);
    assert!(!doc.to_string().ends_with('\n'));
    assert_eq!(
        doc.get("migration"),
        Some("network=10.100.3.101/24,type=secure")
    );
}

#[test]
fn odd_spacing_is_read_like_pve() {
    let doc = DatacenterDocument::parse(&fixture("odd_spacing.cfg"));
    assert_eq!(doc.get("keyboard"), Some("de"));
    assert_eq!(doc.get("max_workers"), Some("2"));
    assert_eq!(doc.get("migration"), Some("type=secure"));
    assert_eq!(doc.get("ha"), Some("shutdown_policy=migrate"));
    assert_eq!(doc.comments(), vec![" indented comment"]);
    assert_eq!(
        doc.keys(),
        vec!["keyboard", "max_workers", "migration", "ha"]
    );
}

#[test]
fn empty_input() {
    let doc = DatacenterDocument::parse("");
    assert_eq!(doc.to_string(), "");
    assert_eq!(doc.keys(), Vec::<&str>::new());
    assert!(doc.diagnostics().is_empty());
}

#[test]
fn from_str_is_parse() {
    let doc: DatacenterDocument = "a: b\n".parse().unwrap();
    assert_eq!(doc.get("a"), Some("b"));
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_-]{1,8}:[ \t]{0,2}[a-z0-9=,./: ]{0,12}",
        "[ \t]{0,2}#[ -~]{0,10}",
        "[ \t]{0,3}",
        "[ -~\t]{0,16}",
        "[ :#a-z\r]{0,6}",
        "\\PC{0,8}",
    ]
}

fn doc_strategy() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((line_strategy(), prop_oneof!["\n", "\r\n"]), 0..8),
        any::<bool>(),
    )
        .prop_map(|(lines, final_nl)| {
            let mut s: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
            if !final_nl {
                if let Some(t) = s.strip_suffix('\n') {
                    s = t.to_string();
                }
            }
            s
        })
}

proptest! {
    #[test]
    fn arbitrary_text_round_trips(src in doc_strategy()) {
        let doc = DatacenterDocument::parse(&src);
        prop_assert_eq!(doc.to_string(), src);
        // Reading and diagnostics never panic.
        let _ = doc.view();
        let _ = doc.diagnostics();
    }

    #[test]
    fn any_string_round_trips(src in "\\PC*") {
        let doc = DatacenterDocument::parse(&src);
        prop_assert_eq!(doc.to_string(), src);
        let _ = doc.diagnostics();
    }

    #[test]
    fn set_then_get_and_others_untouched(
        src in doc_strategy(),
        key in "[a-z][a-z_-]{0,8}",
        value in "[a-z0-9=,./]{0,12}",
    ) {
        let before = DatacenterDocument::parse(&src);
        let mut doc = before.clone();
        doc.set(&key, &value).unwrap();
        let reparsed = DatacenterDocument::parse(&doc.to_string());
        prop_assert_eq!(reparsed.get(&key), Some(value.as_str()));
        for k in before.keys() {
            if k != key {
                prop_assert_eq!(reparsed.get(k), before.get(k));
            }
        }
        prop_assert_eq!(reparsed.comments(), before.comments());
        prop_assert_eq!(doc.to_string().ends_with('\n'), src.ends_with('\n') || src.is_empty());

        let mut removed = reparsed.clone();
        prop_assert!(removed.remove(&key));
        let again = DatacenterDocument::parse(&removed.to_string());
        prop_assert_eq!(again.get(&key), None);
        for k in before.keys() {
            if k != key {
                prop_assert_eq!(again.get(k), before.get(k));
            }
        }
    }
}
