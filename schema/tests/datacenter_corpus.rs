//! Conformance over the shared corpus of real datacenter.cfg files
//! (`../shared/corpus/datacenter/`): byte-identical round trip, and `migration` parses
//! wherever it is present.

use pve_gitops_schema::datacenter::DatacenterDocument;
use std::fs;
use std::path::Path;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/datacenter"
);

#[test]
fn corpus_round_trips_and_migration_parses() {
    let dir = Path::new(CORPUS);
    let Ok(entries) = fs::read_dir(dir) else {
        println!("SKIPPED: corpus directory {} is missing", dir.display());
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some("MANIFEST.txt"))
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    let mut with_migration = 0;
    for p in &paths {
        let Ok(src) = fs::read_to_string(p) else {
            failures.push(format!("{}: not UTF-8", p.display()));
            continue;
        };
        let doc = DatacenterDocument::parse(&src);
        if doc.to_string() != src {
            failures.push(format!("{}: round trip differs", p.display()));
        }
        if let Some(m) = doc.migration() {
            with_migration += 1;
            if let Err(e) = m {
                failures.push(format!("{}: migration: {e}", p.display()));
            }
        }
    }
    println!(
        "datacenter corpus: {} files, {} with migration",
        paths.len(),
        with_migration
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
