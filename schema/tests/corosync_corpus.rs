//! Conformance: every corosync.conf of the shared corpus parses and prints back byte for byte.

use pve_gitops_schema::corosync::Document;
use std::path::Path;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/corosync");

/// Files the corpus MANIFEST documents as rejected by corosync, with the expected message.
fn documented_rejections(manifest: &str) -> Vec<(String, String)> {
    manifest
        .lines()
        .filter(|l| l.contains("REJECTED") || l.contains("rejected by corosync"))
        .filter_map(|l| {
            let file = l.split('|').next()?.trim().to_string();
            let msg = l
                .split('"')
                .nth(1)
                .unwrap_or("is expected to be")
                .to_string();
            Some((file, msg))
        })
        .collect()
}

#[test]
fn corpus_round_trips() {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        println!("SKIPPED: corpus dir {CORPUS} not found");
        return;
    }
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.txt")).unwrap_or_default();
    let rejected = documented_rejections(&manifest);
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "MANIFEST.txt"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "corpus dir is empty");
    let mut checked = 0;
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&path).expect("read corpus file");
        let src = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((_, msg)) = rejected.iter().find(|(f, _)| *f == name) {
            let err = Document::parse_named(&name, &src).expect_err(&name);
            assert!(
                err.diagnostics
                    .iter()
                    .any(|d| d.message.contains(msg.as_str())),
                "{name}: expected an error containing {msg:?}, got {err}"
            );
        } else {
            let doc = Document::parse_named(&name, &src).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(doc.to_string(), src, "{name} does not round-trip");
            let again = Document::parse(&doc.to_string()).expect("reparse");
            assert_eq!(again.view(), doc.view(), "{name}: view not stable");
        }
        checked += 1;
    }
    println!("checked {checked} corpus files");
}
