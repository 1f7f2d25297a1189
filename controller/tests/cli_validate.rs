//! `pve-gitops validate`: exit codes, output formats, --strict, directories.

mod common;

use common::bin;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn invalid(name: &str) -> PathBuf {
    root().join("schema/tests/fixtures/spec/invalid").join(name)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().expect("run pve-gitops");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn examples_directory_is_valid() {
    let (code, out, _) = run(&["validate", root().join("examples").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 error(s)"), "{out}");
}

#[test]
fn invalid_manifest_exits_1_with_located_snippet() {
    let f = invalid("duplicate-nodeid.yaml");
    let (code, out, _) = run(&["validate", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[duplicate-nodeid]"), "{out}");
    assert!(
        out.contains("duplicate-nodeid.yaml:12:15 (spec.nodes[1].nodeid)"),
        "{out}"
    );
    assert!(
        out.contains("12 |       nodeid: 1\n   |               ^\n"),
        "{out}"
    );
}

#[test]
fn missing_file_exits_2() {
    let (code, _, err) = run(&["validate", "/nonexistent/cluster.yaml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/cluster.yaml: no such file or directory"),
        "{err}"
    );
}

#[test]
fn usage_error_exits_2() {
    let (code, _, _) = run(&["validate"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["validate", "--format", "xml", "x.yaml"]);
    assert_eq!(code, 2);
}

#[test]
fn strict_turns_warnings_into_errors() {
    let f = root().join("examples/two-node.yaml");
    let (code, out, _) = run(&["validate", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning[no-ha]"), "{out}");
    let (code, out, _) = run(&["validate", "--strict", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[no-ha]"), "{out}");
}

#[test]
fn github_format_prints_workflow_annotations() {
    let f = invalid("unknown-field.yaml");
    let (code, out, _) = run(&["validate", "--format", "github", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    let line = out
        .lines()
        .find(|l| l.starts_with("::error "))
        .expect("an annotation");
    assert!(
        line.contains(",line=13,col=7,title=unknown-field::"),
        "{line}"
    );
    assert!(line.contains("did you mean `ring0_addr`?"), "{line}");
}

#[test]
fn json_format_lists_every_file_and_diagnostic() {
    let dir = root().join("schema/tests/fixtures/spec/invalid");
    let (code, out, _) = run(&["validate", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["valid"], false);
    let files = v["files"].as_array().unwrap();
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files.len(), n);
    assert!(
        files.iter().all(|f| f["valid"] == false),
        "every invalid fixture fails"
    );
    let d = &files
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("duplicate-vmid.yaml"))
        .unwrap()["diagnostics"][0];
    assert_eq!(d["rule"], "duplicate-vmid");
    assert_eq!(d["path"], "spec.guests[1].vmid");
    assert!(d["location"]["line"].as_u64().is_some());
}
