//! Every parse error with corosync's exact wording and its line:col.

use pve_gitops_schema::corosync::Document;

/// (message, line, col) of every error `src` gives, in file order.
fn errors(src: &str) -> Vec<(String, usize, usize)> {
    let err = Document::parse(src).expect_err("must not parse");
    err.diagnostics
        .iter()
        .map(|d| {
            let loc = d.location.expect("errors are located");
            (d.message.clone(), loc.line, loc.col)
        })
        .collect()
}

fn one(src: &str, message: &str, line: usize, col: usize) {
    assert_eq!(
        errors(src),
        [(message.to_string(), line, col)],
        "input: {src:?}"
    );
    // Even a broken file prints back unchanged.
    let (doc, diags) = Document::parse_recovering("x", src);
    assert_eq!(doc.to_string(), src);
    assert!(!diags.is_empty());
}

#[test]
fn missing_section_name() {
    one(
        "{\n}\n",
        "Missing section name before opening bracket '{'",
        1,
        1,
    );
    one(
        "a {\n  {\n  }\n}\n",
        "Missing section name before opening bracket '{'",
        2,
        3,
    );
}

#[test]
fn extra_after_opening_bracket() {
    one(
        "totem { version: 2\n}\n",
        "Extra characters after opening bracket '{'",
        1,
        9,
    );
    one(
        "section1a { #junk\n}\n",
        "Extra characters after opening bracket '{'",
        1,
        13,
    );
    one(
        "cluster_name: a{b\n}\n",
        "Extra characters after opening bracket '{'",
        1,
        17,
    );
}

#[test]
fn empty_key() {
    one(": v\n", "Key name can't be empty", 1, 1);
    one("totem {\n   : x\n}\n", "Key name can't be empty", 2, 4);
}

#[test]
fn closing_bracket_errors() {
    one(
        "} # c\n",
        "Extra characters before or after closing bracket '}'",
        1,
        1,
    );
    one("}\n", "Unexpected closing brace", 1, 1);
    one("a {\n}\n  }\n", "Unexpected closing brace", 3, 3);
    // `#}` does not close, `#section {` does not open.
    one("a {\n#}\n", "Missing closing brace", 1, 1);
    one("#a {\n}\n", "Unexpected closing brace", 2, 1);
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let src = "totem {\n  junk}\n}\nnot a line\n";
    assert_eq!(
        errors(src),
        [
            (
                "Extra characters before or after closing bracket '}'".to_string(),
                2,
                3
            ),
            ("Unexpected closing brace".to_string(), 3, 1),
            (
                "Line is not opening or closing section or key value".to_string(),
                4,
                1
            ),
        ]
    );
}

#[test]
fn not_section_or_key() {
    one(
        "junk line\n",
        "Line is not opening or closing section or key value",
        1,
        1,
    );
    one(
        "totem {\n\tjunk\n}\n",
        "Line is not opening or closing section or key value",
        2,
        2,
    );
}

#[test]
fn missing_closing_brace_points_at_innermost_section() {
    one("totem {\n  version: 2\n", "Missing closing brace", 1, 1);
    one("totem {\n  interface {\n", "Missing closing brace", 2, 3);
}

#[test]
fn line_too_long() {
    let ok = format!("totem {{\n  k: {}\n}}\n", "x".repeat(505));
    assert_eq!(ok.lines().nth(1).map(str::len), Some(510));
    assert!(Document::parse(&ok).is_ok());
    let long = format!("totem {{\n  k: {}\n}}\n", "x".repeat(506));
    one(&long, "Line too long", 2, 1);
    // Without a final newline the 510-byte limit still applies.
    let eof = format!("k: {}", "x".repeat(508));
    one(&eof, "Line too long", 1, 1);
    assert!(Document::parse(&format!("k: {}", "x".repeat(507))).is_ok());
}

#[test]
fn cmap_path_length() {
    assert!(Document::parse(&format!("{}: v\n", "k".repeat(254))).is_ok());
    one(
        &format!("{}: v\n", "k".repeat(255)),
        "New key makes total cmap path too long",
        1,
        1,
    );
    let section = format!("totem {{\n  {} {{\n  }}\n}}\n", "s".repeat(249));
    one(
        &section,
        "Start of section makes total cmap path too long",
        2,
        3,
    );
    let key = format!("totem {{\n  {}: 1\n}}\n", "s".repeat(249));
    one(&key, "New key makes total cmap path too long", 2, 3);
}

#[test]
fn typed_key_errors() {
    let cases: &[(&str, &str, usize, usize)] = &[
        (
            "totem {\n  config_version: x\n}\n",
            "Value of key \"totem.config_version\" is expected to be unsigned integer, but \"x\" was given",
            2,
            19,
        ),
        (
            "nodelist {\n  node {\n    nodeid: 0x10\n  }\n}\n",
            "Value of key \"nodelist.node.nodeid\" is expected to be integer in range (0..4294967295), but \"0x10\" was given",
            3,
            13,
        ),
        (
            "nodelist {\n  node {\n    quorum_votes: -1\n  }\n}\n",
            "Value of key \"nodelist.node.quorum_votes\" is expected to be integer in range (0..4294967295), but \"-1\" was given",
            3,
            19,
        ),
        (
            "quorum {\n  expected_votes: 3 # three\n}\n",
            "Value of key \"quorum.expected_votes\" is expected to be integer in range (0..4294967295), but \"3 # three\" was given",
            2,
            19,
        ),
        (
            "quorum {\n  two_node: 256\n}\n",
            "Value of key \"quorum.two_node\" is expected to be integer in range (0..255), but \"256\" was given",
            2,
            13,
        ),
        (
            "quorum {\n wait_for_all: yes\n}\n",
            "Value of key \"quorum.wait_for_all\" is expected to be integer in range (0..255), but \"yes\" was given",
            2,
            16,
        ),
        (
            "totem {\n  interface {\n    linknumber: a\n  }\n}\n",
            "Value of key \"totem.interface.linknumber\" is expected to be integer in range (0..255), but \"a\" was given",
            3,
            17,
        ),
        (
            "totem {\n  interface {\n    knet_link_priority: 300\n  }\n}\n",
            "Value of key \"totem.interface.knet_link_priority\" is expected to be integer in range (0..255), but \"300\" was given",
            3,
            25,
        ),
        (
            "totem {\n\ttoken: 3000ms\n}\n",
            "Value of key \"totem.token\" is expected to be integer in range (0..4294967295), but \"3000ms\" was given",
            2,
            9,
        ),
        (
            "totem {\n  token_coefficient:\n}\n",
            "Value of key \"totem.token_coefficient\" is expected to be integer in range (0..4294967295), but \"\" was given",
            2,
            21,
        ),
        ("totem {\n  ip_version: ipv5\n}\n", "Invalid ip_version type", 2, 15),
        (
            "totem {\n  interface {\n    mcastport: 70000\n  }\n}\n",
            "Value of key \"totem.interface.mcastport\" is expected to be integer in range (0..65535), but \"70000\" was given",
            3,
            16,
        ),
    ];
    for (src, msg, line, col) in cases {
        one(src, msg, *line, *col);
    }
}

#[test]
fn typed_keys_accept_what_strtoll_accepts() {
    let src = "totem {\n  config_version: +5\n  token: 007\n  ip_version: ipv6-4\n}\nquorum {\n  two_node: 1\n}\n";
    let doc = Document::parse(src).expect("valid");
    assert_eq!(doc.view().totem.config_version, Some(5));
    assert_eq!(doc.view().totem.token, Some(7));
    // Typed checks only apply at their cmap path.
    assert!(Document::parse("other {\n  token: x\n}\n").is_ok());
}

#[test]
fn display_names_file_line_col_and_path() {
    let err = Document::parse_named(
        "corosync.conf",
        "totem {\n  version: 2\n\n\n  token: x\n}\n",
    )
    .expect_err("bad token");
    assert_eq!(
        err.to_string(),
        "corosync.conf:5:10: error: Value of key \"totem.token\" is expected to be integer in range (0..4294967295), but \"x\" was given (at totem.token)"
    );
    let err = Document::parse("a {\n  b {\n    c {\n  }\n}\n").expect_err("unclosed");
    assert_eq!(
        err.diagnostics[0].to_string(),
        "corosync.conf:1:1: error: Missing closing brace (at a); section `a` is never closed"
    );
}

#[test]
fn deep_nesting_is_bounded_and_prints_back() {
    let src = "a {\n".repeat(20_000);
    let (doc, errors) = Document::parse_recovering("deep", &src);
    assert_eq!(doc.to_string(), src);
    assert!(errors
        .iter()
        .any(|d| d.message == "Start of section makes total cmap path too long"));
    let _ = (doc.view(), doc.verify(), doc.check_pve_writable());
}
