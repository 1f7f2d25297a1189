//! Round trip and typed-view tests on our own corosync.conf fixtures.

use pve_gitops_schema::corosync::{ConfShape, Document, LinkNumberKey};

fn fixture(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corosync/");
    std::fs::read_to_string(format!("{path}{name}")).expect("fixture")
}

fn parse(name: &str) -> (String, Document) {
    let src = fixture(name);
    let doc = Document::parse_named(name, &src).unwrap_or_else(|e| panic!("{name}: {e}"));
    (src, doc)
}

const FIXTURES: &[&str] = &[
    "comments_only.conf",
    "corosync2_udpu.conf",
    "corosync3_knet_two_links.conf",
    "crlf.conf",
    "inline_hash_spacing.conf",
    "ipv6.conf",
    "nbsp.conf",
    "no_trailing_newline.conf",
    "pve_create.conf",
    "qdevice_heuristics.conf",
    "repeated_sections.conf",
    "tabs_comments.conf",
    "top_level_keys.conf",
];

#[test]
fn every_fixture_prints_back_byte_for_byte() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corosync");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, FIXTURES,
        "keep FIXTURES in sync with the directory"
    );
    for name in FIXTURES {
        let (src, doc) = parse(name);
        assert_eq!(doc.to_string(), src, "{name}");
        let again = Document::parse_named(name, &doc.to_string()).expect("reparse");
        assert_eq!(again, doc, "{name}: parse(print(parse)) differs");
    }
}

#[test]
fn empty_input_is_an_empty_document() {
    let doc = Document::parse("").expect("empty parses");
    assert!(doc.items().is_empty());
    assert_eq!(doc.to_string(), "");
}

#[test]
fn comments_are_decor_not_items() {
    let (_, doc) = parse("tabs_comments.conf");
    let names: Vec<&str> = doc.items().iter().map(|i| i.name()).collect();
    assert_eq!(names, ["totem", "nodelist"]);
    assert_eq!(
        doc.trailing_decor(),
        "# comment at EOF\n   \t# indented comment at EOF\n"
    );
    let totem = &doc.sections(&["totem"])[0];
    assert_eq!(totem.trailing_decor(), "\t# trailing comment of totem\n");
    let iface = &doc.sections(&["totem", "interface"])[0];
    assert_eq!(
        iface.trailing_decor(),
        "\t\t# comment before the closing brace\n"
    );
    assert_eq!(doc.get(&["nodelist", "node"], "ring1_addr"), None);
    let view = doc.view();
    assert_eq!(view.totem.config_version, Some(7));
    assert_eq!(view.nodes[0].rings.len(), 1);
}

#[test]
fn values_keep_hash_quotes_and_colons() {
    let (_, doc) = parse("inline_hash_spacing.conf");
    assert_eq!(
        doc.get(&["totem"], "cluster_name"),
        Some("prod # not a comment")
    );
    assert_eq!(doc.get(&["totem"], "crypto_cipher"), Some("aes256"));
    assert_eq!(doc.get(&["totem"], "crypto_hash"), Some("sha256"));
    assert_eq!(doc.get(&["totem"], "key_with_quotes"), Some("\"a b\""));
    assert_eq!(doc.get(&["totem"], "empty"), Some(""));
    assert_eq!(doc.get(&["totem"], "weird"), Some(":value"));
    assert_eq!(
        doc.get(&["logging"], "logfile"),
        Some("/var/log/corosync/corosync.log#x")
    );
}

#[test]
fn crlf_and_missing_newline() {
    let (_, doc) = parse("crlf.conf");
    assert_eq!(doc.get(&["totem"], "cluster_name"), Some("win"));
    assert_eq!(doc.view().quorum.two_node, Some(1));
    let (_, doc) = parse("no_trailing_newline.conf");
    assert_eq!(doc.view().expected_votes_config(), Some(3));
}

#[test]
fn nbsp_is_whitespace() {
    let (_, doc) = parse("nbsp.conf");
    assert_eq!(doc.get(&["totem"], "cluster_name"), Some("nb"));
    assert_eq!(doc.view().totem.version, Some(2));
}

#[test]
fn qdevice_view_keeps_commands_verbatim() {
    let (_, doc) = parse("qdevice_heuristics.conf");
    let view = doc.view();
    let dev = view.quorum.device.as_ref().expect("device");
    assert_eq!(dev.model.as_deref(), Some("net"));
    assert_eq!(dev.votes, Some(1));
    let net = dev.net.as_ref().expect("net");
    assert_eq!(net.host.as_deref(), Some("qnetd.example.com"));
    assert_eq!(net.algorithm.as_deref(), Some("ffsplit"));
    assert_eq!(
        dev.heuristics.get("exec_ping").map(String::as_str),
        Some("/usr/bin/ping -q -c 1 \"192.168.1.254\"")
    );
    assert!(view.unsupported.iter().any(|u| u.contains("qdevice")));
    let pve = doc.check_pve_writable();
    assert_eq!(pve.len(), 2, "{pve:?}");
    assert!(pve
        .iter()
        .all(|d| d.path.starts_with("quorum.device.heuristics.exec_")));
}

#[test]
fn ipv6_addresses_are_intact() {
    let (_, doc) = parse("ipv6.conf");
    let view = doc.view();
    assert_eq!(
        view.node_by_id(2)
            .and_then(|n| n.rings.get(&0))
            .map(String::as_str),
        Some("::192:168:123:42")
    );
    assert_eq!(view.node_by_name("v6a").and_then(|n| n.nodeid), Some(1));
    assert_eq!(view.totem.ip_version.as_deref(), Some("ipv6-4"));
    assert!(doc.check_pve_writable().is_empty());
}

#[test]
fn corosync2_shape() {
    let (_, doc) = parse("corosync2_udpu.conf");
    let view = doc.view();
    assert_eq!(view.shape(), ConfShape::Corosync2);
    assert_eq!(view.effective_transport(), "udpu");
    assert_eq!(view.link_numbers().into_iter().collect::<Vec<_>>(), [0, 1]);
    let ring1 = &view.totem.interfaces[&1];
    assert_eq!(ring1.number_key, LinkNumberKey::Ringnumber);
    assert_eq!(ring1.bindnetaddr.as_deref(), Some("10.20.20.0"));
    assert_eq!(ring1.mcastport, Some(5407));
    assert_eq!(
        view.totem.interfaces[&0].members,
        ["10.10.10.1", "10.10.10.2"]
    );
    assert_eq!(view.nodes[1].nodeid, None);
    assert_eq!(view.total_configured_votes(), 2);
    for expected in [
        "top-level key compatibility",
        "totem.rrp_mode",
        "totem.transport: udpu",
    ] {
        assert!(
            view.unsupported.iter().any(|u| u == expected),
            "{expected}: {:?}",
            view.unsupported
        );
    }
    // Two `member` blocks are a repeated non-array section for Proxmox.
    let pve = doc.check_pve_writable();
    assert!(pve
        .iter()
        .any(|d| d.message == "section 'member' already exists and not marked as array!"));
    // No name with two links, no crypto.
    let warnings: Vec<String> = doc.verify().iter().map(|d| d.message.clone()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("all nodes must have a 'name'")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("not explicitly enabled")),
        "{warnings:?}"
    );
}

#[test]
fn corosync3_knet_view() {
    let (_, doc) = parse("corosync3_knet_two_links.conf");
    let view = doc.view();
    assert_eq!(view.shape(), ConfShape::Corosync3);
    assert_eq!(view.effective_transport(), "knet");
    assert_eq!(view.totem.interfaces[&1].knet_link_priority, Some(20));
    assert_eq!(
        view.totem.interfaces[&0].number_key,
        LinkNumberKey::Linknumber
    );
    assert_eq!(view.total_configured_votes(), 4);
    assert_eq!(view.expected_votes_config(), Some(4));
    assert!(view.unsupported.is_empty(), "{:?}", view.unsupported);
    assert!(doc.verify().is_empty(), "{:?}", doc.verify());
    assert!(doc.check_pve_writable().is_empty());
    let json = serde_json::to_value(&view).expect("json");
    assert_eq!(json["nodes"][2]["rings"]["1"], "10.1.0.3");
}

#[test]
fn repeated_sections_merge_last_wins() {
    let (_, doc) = parse("repeated_sections.conf");
    let view = doc.view();
    assert_eq!(view.totem.token, Some(5000));
    assert_eq!(view.totem.cluster_name.as_deref(), Some("first"));
    assert_eq!(view.totem.interfaces.len(), 1);
    assert_eq!(view.totem.interfaces[&1].knet_link_priority, Some(9));
    assert_eq!(doc.get_all(&["totem"], "token"), ["1000", "3000", "5000"]);
    let pve: Vec<String> = doc
        .check_pve_writable()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        pve,
        [
            "repeated_sections.conf:11:3: error: section 'logger_subsys' already exists and not marked as array! (at logging.logger_subsys[1])",
            "repeated_sections.conf:16:1: error: section 'totem' already exists and not marked as array! (at totem)",
        ]
    );
}

#[test]
fn top_level_keys_and_legacy_sections() {
    let (_, doc) = parse("top_level_keys.conf");
    assert_eq!(doc.get(&[], "compatibility"), Some("whitetank"));
    assert_eq!(doc.get(&[], "toplevel_after"), Some("yes"));
    let view = doc.view();
    assert!(view.unsupported.contains(&"section aisexec".to_string()));
    assert!(view
        .unsupported
        .contains(&"top-level key toplevel_after".to_string()));
}
