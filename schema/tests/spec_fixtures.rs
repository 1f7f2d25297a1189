//! Every invalid manifest fixture fails with the intended rule at the marked place, and every
//! valid fixture (and example) passes.
//!
//! Fixtures in `tests/fixtures/spec/invalid/` mark the expected error with a comment line right
//! below the offending line: `#   ^ rule path` — the caret's column is the expected column
//! (`#^` means column 1), followed by the rule id and the field path.

use pve_gitops_schema::validate::validate_documents;
use std::path::Path;

struct Expect {
    line: usize,
    col: usize,
    rule: String,
    path: String,
}

fn expectations(src: &str) -> Vec<Expect> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some(caret) = rest.find('^') else {
            continue;
        };
        if !rest[..caret].chars().all(|c| c == ' ') {
            continue;
        }
        let mut words = rest[caret + 1..].split_whitespace();
        let rule = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        // `#` is column 1, so a caret after k spaces is at column k + 2; `#^` means column 1.
        let col = if caret == 0 { 1 } else { caret + 2 };
        out.push(Expect {
            line: i,
            col,
            rule,
            path,
        });
    }
    out
}

fn fixture_dir(kind: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spec")
        .join(kind)
}

#[test]
fn every_invalid_fixture_fails_with_its_rule_at_the_marked_place() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(fixture_dir("invalid")).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let exp = expectations(&src);
        assert!(!exp.is_empty(), "{name}: no caret expectation");
        let diags: Vec<_> = validate_documents(&name, &src)
            .into_iter()
            .flat_map(|r| r.diagnostics)
            .collect();
        for e in exp {
            let hit = diags.iter().any(|d| {
                d.is_error()
                    && d.rule == e.rule
                    && (e.path.is_empty() || d.path == e.path)
                    && d.location.map(|l| (l.line, l.col)) == Some((e.line, e.col))
            });
            if !hit {
                failures.push(format!(
                    "{name}: expected {} at {}:{} ({}), got:\n{}",
                    e.rule,
                    e.line,
                    e.col,
                    e.path,
                    diags.iter().map(|d| format!("  {d}\n")).collect::<String>()
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 40, "only {checked} expectations");
}

#[test]
fn examples_and_valid_fixtures_pass() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for dir in [examples, fixture_dir("valid")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            for r in validate_documents(&path.display().to_string(), &src) {
                let errors: Vec<_> = r.diagnostics.iter().filter(|d| d.is_error()).collect();
                assert!(errors.is_empty(), "{}: {errors:?}", path.display());
                assert!(r.cluster.is_some());
            }
            n += 1;
        }
    }
    assert!(n >= 5);
}

#[test]
fn all_problems_are_reported_in_one_run() {
    let src = "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  nodes:\n    - name: a\n      nodeid: x\n      ring0_adr: 10.0.0.1\n    - name: b\n      nodeid: 2\n      ring0_addr: 10.0.0.2\n      colour: blue\n  policy:\n    prune_nodes: maybe\n";
    let diags: Vec<_> = validate_documents("m.yaml", src)
        .into_iter()
        .flat_map(|r| r.diagnostics)
        .collect();
    let rules: Vec<(&str, usize)> = diags
        .iter()
        .map(|d| (d.rule, d.location.unwrap().line))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("type", 8),
            ("unknown-field", 9),
            ("unknown-field", 13),
            ("type", 15)
        ]
    );
    let did_you_mean = diags
        .iter()
        .find(|d| d.path == "spec.nodes[0].ring0_adr")
        .unwrap();
    assert_eq!(
        did_you_mean.help.as_deref(),
        Some("did you mean `ring0_addr`?")
    );
}

#[test]
fn semantic_errors_are_all_reported_together() {
    let src = "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: this-name-is-too-long\nspec:\n  nodes:\n    - name: a\n      nodeid: 1\n      ring0_addr: 10.0.0.1\n    - name: a\n      nodeid: 1\n      ring0_addr: 10.0.0.1\n";
    let diags: Vec<_> = validate_documents("m.yaml", src)
        .into_iter()
        .flat_map(|r| r.diagnostics)
        .collect();
    let mut rules: Vec<&str> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.rule)
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            "cluster-name",
            "duplicate-address",
            "duplicate-node-name",
            "duplicate-nodeid"
        ]
    );
}

#[test]
fn warnings_do_not_fail_but_are_reported() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/two-node.yaml"),
    )
    .unwrap();
    let r = &validate_documents("two-node.yaml", &src)[0];
    assert!(!r.has_errors());
    assert!(r.diagnostics.iter().any(|d| d.rule == "no-ha"));
}

/// One address written two ways is still one address; a numeric form the C resolver reads as
/// another IPv4 address (leading zeros: octal) is not accepted as a hostname.
#[test]
fn addresses_are_compared_as_corosync_reads_them() {
    let src = "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: lab\nspec:\n  nodes:\n    - {name: a, nodeid: 1, ring0_addr: 'fd00::1'}\n    - {name: b, nodeid: 2, ring0_addr: 'FD00:0::1'}\n    - {name: c, nodeid: 3, ring0_addr: 10.0.0.01}\n    - {name: d, nodeid: 4, ring0_addr: Node-D.example}\n    - {name: e, nodeid: 5, ring0_addr: node-d.EXAMPLE}\n";
    let diags: Vec<_> = validate_documents("m.yaml", src)
        .into_iter()
        .flat_map(|r| r.diagnostics)
        .filter(|d| d.is_error())
        .map(|d| (d.rule, d.path.clone()))
        .collect();
    assert!(
        diags.contains(&("duplicate-address", "spec.nodes[1].ring0_addr".to_string())),
        "{diags:?}"
    );
    assert!(
        diags.contains(&("invalid-address", "spec.nodes[2].ring0_addr".to_string())),
        "{diags:?}"
    );
    assert!(
        diags.contains(&("duplicate-address", "spec.nodes[4].ring0_addr".to_string())),
        "{diags:?}"
    );
    assert_eq!(diags.len(), 3, "{diags:?}");
}

/// An expected_votes below the nodes' votes is accepted (it is how quorum is regained after
/// losing nodes) but warned about: it stays in force for every later quorum loss.
#[test]
fn an_expected_votes_override_is_warned_about() {
    let m = |ev: u32| {
        format!("apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: lab\nspec:\n  nodes:\n    - {{name: a, nodeid: 1, ring0_addr: 10.0.0.1}}\n    - {{name: b, nodeid: 2, ring0_addr: 10.0.0.2}}\n    - {{name: c, nodeid: 3, ring0_addr: 10.0.0.3}}\n    - {{name: d, nodeid: 4, ring0_addr: 10.0.0.4}}\n  quorum:\n    expected_votes: {ev}\n")
    };
    let rules = |src: &str| -> Vec<(&'static str, bool)> {
        validate_documents("m.yaml", src)
            .into_iter()
            .flat_map(|r| r.diagnostics)
            .map(|d| (d.rule, d.is_error()))
            .collect()
    };
    assert_eq!(rules(&m(2)), vec![("expected-votes-override", false)]);
    assert_eq!(rules(&m(4)), vec![]);
}
