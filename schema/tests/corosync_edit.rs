//! Edit tests: `given(input).running(|doc| ...).produces(expected)`, expected text by hand.

use pve_gitops_schema::corosync::{Corosync2Options, Document, NodeEntry, PveClusterOptions};
use std::collections::BTreeMap;

struct Given(String);
struct Ran(Document);

fn given(src: &str) -> Given {
    Given(src.to_string())
}

impl Given {
    fn running(self, f: impl FnOnce(&mut Document)) -> Ran {
        let mut doc = Document::parse(&self.0).unwrap_or_else(|e| panic!("input: {e}"));
        f(&mut doc);
        Ran(doc)
    }
}

impl Ran {
    #[track_caller]
    fn produces(self, expected: &str) {
        let text = self.0.to_string();
        assert_eq!(text, expected);
        let again = Document::parse(&text).unwrap_or_else(|e| panic!("output does not parse: {e}"));
        assert_eq!(again.to_string(), text);
    }
}

fn node(name: &str, id: u32, rings: &[(u8, &str)]) -> NodeEntry {
    NodeEntry {
        name: name.to_string(),
        nodeid: id,
        quorum_votes: 1,
        rings: rings.iter().map(|(n, a)| (*n, a.to_string())).collect(),
    }
}

#[test]
fn set_replaces_in_place_keeping_spelling() {
    given("totem {\n    # the name\n    cluster_name :  old   \n\ttoken: 1000\n}\n")
        .running(|doc| doc.set(&["totem"], "cluster_name", "new"))
        .produces("totem {\n    # the name\n    cluster_name :  new   \n\ttoken: 1000\n}\n");
}

#[test]
fn set_replaces_the_last_occurrence_only() {
    given("totem {\n  token: 1\n}\ntotem {\n  token: 2\n  token: 3\n}\n")
        .running(|doc| doc.set(&["totem"], "token", "4"))
        .produces("totem {\n  token: 1\n}\ntotem {\n  token: 2\n  token: 4\n}\n");
}

#[test]
fn set_appends_with_sibling_indent_and_crlf() {
    given("totem {\r\n\tversion: 2\r\n}\r\n")
        .running(|doc| doc.set(&["totem"], "token", "3000"))
        .produces("totem {\r\n\tversion: 2\r\n\ttoken: 3000\r\n}\r\n");
}

#[test]
fn set_on_empty_value_adds_the_space() {
    given("totem {\n  cluster_name:\n}\n")
        .running(|doc| doc.set(&["totem"], "cluster_name", "c"))
        .produces("totem {\n  cluster_name: c\n}\n");
}

#[test]
fn set_creates_a_section_in_pve_order_with_blank_lines() {
    given("logging {\n  debug: off\n}\n\nnodelist {\n  node {\n    name: a\n  }\n}\n\ntotem {\n  version: 2\n}\n\n")
        .running(|doc| doc.set(&["quorum"], "provider", "corosync_votequorum"))
        .produces(
            "logging {\n  debug: off\n}\n\nnodelist {\n  node {\n    name: a\n  }\n}\n\n\
             quorum {\n  provider: corosync_votequorum\n}\n\n\
             totem {\n  version: 2\n}\n\n",
        );
}

#[test]
fn set_after_missing_final_newline() {
    given("a: 1")
        .running(|doc| doc.set(&[], "b", "2"))
        .produces("a: 1\nb: 2\n");
    given("totem {\n    a: 1\n}")
        .running(|doc| doc.set(&["quorum"], "provider", "x"))
        .produces("totem {\n    a: 1\n}\nquorum {\n    provider: x\n}\n");
}

#[test]
fn remove_keeps_comments_and_blank_lines() {
    let mut removed = 0;
    given("totem {\n  version: 2\n  # token comment\n  token: 1000\n  token: 2000\n\n  cluster_name: x\n}\n")
        .running(|doc| removed = doc.remove(&["totem"], "token"))
        .produces("totem {\n  version: 2\n  # token comment\n\n  cluster_name: x\n}\n");
    assert_eq!(removed, 2);
}

#[test]
fn add_node_copies_node_layout() {
    given("nodelist {\n\tnode {\n\t\tring0_addr: 10.0.0.1\n\t\tnodeid: 1\n\t}\n\n\tnode {\n\t\tring0_addr: 10.0.0.2\n\t\tnodeid: 2\n\t}\n\t# end of nodes\n}\n")
        .running(|doc| doc.add_node(&node("c", 3, &[(0, "10.0.0.3"), (1, "10.1.0.3")])))
        .produces(
            "nodelist {\n\tnode {\n\t\tring0_addr: 10.0.0.1\n\t\tnodeid: 1\n\t}\n\n\tnode {\n\t\tring0_addr: 10.0.0.2\n\t\tnodeid: 2\n\t}\n\n\
             \tnode {\n\t\tname: c\n\t\tnodeid: 3\n\t\tquorum_votes: 1\n\t\tring0_addr: 10.0.0.3\n\t\tring1_addr: 10.1.0.3\n\t}\n\
             \t# end of nodes\n}\n",
        );
}

#[test]
fn add_node_creates_the_nodelist() {
    given("totem {\n  version: 2\n}\n")
        .running(|doc| doc.add_node(&node("a", 1, &[(0, "10.0.0.1")])))
        .produces("totem {\n  version: 2\n}\nnodelist {\n  node {\n    name: a\n    nodeid: 1\n    quorum_votes: 1\n    ring0_addr: 10.0.0.1\n  }\n}\n");
}

const PVE: &str = "nodelist {
  node {
    name: pve1
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 10.0.0.1
  }
  # the second node
  node {
    name: pve2
    nodeid: 2
    quorum_votes: 1
    ring0_addr: 10.0.0.2
    ring1_addr: 10.1.0.2
  }
  node {
    name: pve3
    nodeid: 3
    quorum_votes: 1
    ring0_addr: 10.0.0.3
  }
}

totem {
  cluster_name: prod
  interface {
    linknumber: 0
  }
  ip_version: ipv4-6
  secauth: on
  version: 2
}
";

#[test]
fn remove_node_keeps_the_comment_above_it() {
    let mut found = (false, true);
    given(PVE)
        .running(|doc| found = (doc.remove_node("pve2"), doc.remove_node("nope")))
        .produces(&PVE.replace(
            "  node {\n    name: pve2\n    nodeid: 2\n    quorum_votes: 1\n    ring0_addr: 10.0.0.2\n    ring1_addr: 10.1.0.2\n  }\n",
            "",
        ));
    assert_eq!(found, (true, false));
}

#[test]
fn node_keys_go_in_pve_order() {
    given(PVE)
        .running(|doc| {
            assert!(doc.set_node_key("pve3", "nodeid", "7"));
            assert!(doc.set_ring_addr("pve3", 1, "10.1.0.3"));
            assert!(doc.set_ring_addr("pve1", 0, "10.9.0.1"));
            assert!(!doc.set_ring_addr("ghost", 0, "1.2.3.4"));
        })
        .produces(
            &PVE.replace("nodeid: 3\n", "nodeid: 7\n")
                .replace(
                    "ring0_addr: 10.0.0.3\n",
                    "ring0_addr: 10.0.0.3\n    ring1_addr: 10.1.0.3\n",
                )
                .replace("ring0_addr: 10.0.0.1\n", "ring0_addr: 10.9.0.1\n"),
        );
}

#[test]
fn interfaces_and_ring_addresses() {
    let mut counts = (0, false);
    given(PVE)
        .running(|doc| {
            doc.add_interface(1, &[("knet_link_priority", "20")]);
            counts.0 = doc.remove_ring_addr_everywhere(1);
            counts.1 = doc.remove_interface(0);
        })
        .produces(&PVE.replace("    ring1_addr: 10.1.0.2\n", "").replace(
            "  interface {\n    linknumber: 0\n  }\n",
            "  interface {\n    knet_link_priority: 20\n    linknumber: 1\n  }\n",
        ));
    assert_eq!(counts, (1, true));
}

#[test]
fn add_interface_updates_an_existing_link() {
    given("totem {\n  interface {\n    ringnumber: 1\n    bindnetaddr: 10.0.0.0\n  }\n}\n")
        .running(|doc| doc.add_interface(1, &[("bindnetaddr", "10.1.0.0")]))
        .produces("totem {\n  interface {\n    ringnumber: 1\n    bindnetaddr: 10.1.0.0\n  }\n}\n");
}

#[test]
fn bump_config_version_in_place_or_inserted() {
    let mut v = 0;
    given("totem {\n  config_version: 12 \n  token: 1\n}\n")
        .running(|doc| v = doc.bump_config_version())
        .produces("totem {\n  config_version: 13 \n  token: 1\n}\n");
    assert_eq!(v, 13);
    given(PVE)
        .running(|doc| v = doc.bump_config_version())
        .produces(&PVE.replace(
            "  cluster_name: prod\n",
            "  cluster_name: prod\n  config_version: 1\n",
        ));
    assert_eq!(v, 1);
}

#[test]
fn new_pve_cluster_matches_pvecm_create() {
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/corosync/pve_create.conf"
    ))
    .expect("fixture");
    let opts = PveClusterOptions {
        token_coefficient: Some(125),
        ..PveClusterOptions::default()
    };
    let doc = Document::new_pve_cluster(
        "prod",
        &[node("pve1", 1, &[(0, "10.0.0.1"), (1, "10.1.0.1")])],
        &[(1, Some(20)), (0, None)],
        &opts,
    );
    assert_eq!(doc.to_string(), expected);
    assert!(doc.check_pve_writable().is_empty());
    assert!(doc.verify().is_empty(), "{:?}", doc.verify());
}

#[test]
fn new_pve_cluster_corosync2_shape() {
    let opts = PveClusterOptions {
        corosync2: Some(Corosync2Options {
            bindnetaddrs: BTreeMap::from([(1, "10.1.0.0".to_string())]),
            rrp_mode: None,
        }),
        ..PveClusterOptions::default()
    };
    let doc = Document::new_pve_cluster(
        "old",
        &[
            node("b", 2, &[(0, "10.0.0.2"), (1, "10.1.0.2")]),
            node("a", 1, &[(0, "10.0.0.1"), (1, "10.1.0.1")]),
        ],
        &[(0, None), (1, None)],
        &opts,
    );
    let expected = "logging {
  debug: off
  to_syslog: yes
}

nodelist {
  node {
    name: a
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 10.0.0.1
    ring1_addr: 10.1.0.1
  }
  node {
    name: b
    nodeid: 2
    quorum_votes: 1
    ring0_addr: 10.0.0.2
    ring1_addr: 10.1.0.2
  }
}

quorum {
  provider: corosync_votequorum
}

totem {
  cluster_name: old
  config_version: 1
  interface {
    bindnetaddr: 10.0.0.1
    ringnumber: 0
  }
  interface {
    bindnetaddr: 10.1.0.0
    ringnumber: 1
  }
  ip_version: ipv4
  rrp_mode: passive
  secauth: on
  transport: udpu
  version: 2
}

";
    assert_eq!(doc.to_string(), expected);
    assert_eq!(doc.view().effective_transport(), "udpu");
}

#[test]
fn edits_on_a_recovered_document_do_not_panic() {
    let (mut doc, errs) = Document::parse_recovering("x", "totem {\n  junk\n  nodelist {\n");
    assert!(!errs.is_empty());
    doc.set(&["totem"], "token", "1");
    doc.add_node(&node("a", 1, &[(0, "10.0.0.1")]));
    doc.bump_config_version();
    assert!(doc.to_string().contains("token: 1"));
}
