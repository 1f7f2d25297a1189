//! pmxcfs virtual files: `.members` and `.vmlist`, parsed and rendered byte for byte.

use proptest::prelude::*;
use pve_gitops_schema::pmxcfs::{
    parse_guest_path, ClusterInfo, GuestType, MemberNode, Members, VmEntry, VmList,
};
use std::collections::BTreeMap;
use std::path::Path;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pmxcfs")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn clustered() -> Members {
    let mut nodelist = BTreeMap::new();
    nodelist.insert(
        "pve1".to_string(),
        MemberNode {
            id: 1,
            online: true,
            ip: Some("192.168.1.11".into()),
        },
    );
    nodelist.insert(
        "pve2".to_string(),
        MemberNode {
            id: 2,
            online: false,
            ip: None,
        },
    );
    Members {
        nodename: "pve1".into(),
        version: 7,
        cluster: Some(ClusterInfo {
            name: "prod".into(),
            version: 5,
            nodes: 3,
            quorate: true,
        }),
        nodelist,
    }
}

/// The example of domain.md §8.1, byte for byte.
const MEMBERS_DOC_EXAMPLE: &str = "{\n\"nodename\": \"pve1\",\n\"version\": 7,\n\"cluster\": { \"name\": \"prod\", \"version\": 5, \"nodes\": 3, \"quorate\": 1 },\n\"nodelist\": {\n  \"pve1\": { \"id\": 1, \"online\": 1, \"ip\": \"192.168.1.11\"},\n  \"pve2\": { \"id\": 2, \"online\": 0}\n  }\n}\n";

#[test]
fn members_render_matches_pmxcfs_layout() {
    assert_eq!(clustered().render(), MEMBERS_DOC_EXAMPLE);
}

#[test]
fn members_standalone_layout() {
    let m = Members::standalone("pve", 0);
    assert_eq!(m.render(), "{\n\"nodename\": \"pve\",\n\"version\": 0\n}\n");
    assert_eq!(m.render(), fixture("members_standalone.json"));
    assert_eq!(Members::parse(&m.render()).unwrap(), m);
}

#[test]
fn members_parse_fixture_and_rerender_identically() {
    let src = fixture("members_clustered.json");
    let m = Members::parse(&src).unwrap();
    assert_eq!(m.nodename, "pve1");
    assert_eq!(m.version, 7);
    let c = m.cluster.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.version, c.nodes, c.quorate),
        ("prod", 5, 3, true)
    );
    assert_eq!(m.nodelist.len(), 3);
    assert_eq!(m.nodelist["pve2"].ip, None);
    assert!(!m.nodelist["pve2"].online);
    assert_eq!(m.nodelist["pve3"].ip.as_deref(), Some("192.168.1.13"));
    // Fixture is in name order, so rendering gives the same bytes.
    assert_eq!(m.render(), src);
}

#[test]
fn members_parse_doc_example_and_other_layouts() {
    assert_eq!(Members::parse(MEMBERS_DOC_EXAMPLE).unwrap(), clustered());
    let compact = r#"{"nodelist":{"pve2":{"online":false,"id":2},"pve1":{"ip":"192.168.1.11","online":true,"id":1}},"cluster":{"quorate":true,"nodes":3,"version":5,"name":"prod"},"version":7,"nodename":"pve1"}"#;
    assert_eq!(Members::parse(compact).unwrap(), clustered());
}

#[test]
fn members_clustered_with_empty_nodelist() {
    let mut m = clustered();
    m.nodelist.clear();
    let r = m.render();
    assert!(r.ends_with("\"nodelist\": {\n\n  }\n}\n"), "{r}");
    assert_eq!(Members::parse(&r).unwrap(), m);
}

#[test]
fn members_errors_are_located() {
    let e = Members::parse("{\n\"nodename\": \"pve\",\n\"version\": x\n}\n").unwrap_err();
    assert_eq!(e.rule, "pmxcfs-members");
    assert_eq!(e.location.map(|l| l.line), Some(3));
    let e = Members::parse("{\"nodename\": \"pve\"}").unwrap_err();
    assert!(e.message.contains("version is missing"), "{}", e.message);
    let e = Members::parse("[]").unwrap_err();
    assert!(e.message.contains("not a JSON object"));
    let e = Members::parse(r#"{"nodename":"a","version":1,"cluster":{"name":"c","version":1,"nodes":1,"quorate":1},"nodelist":{"a":{"id":1,"online":"yes"}}}"#).unwrap_err();
    assert_eq!(e.path, "nodelist.a.online");
}

#[test]
fn members_serializes() {
    let v = serde_json::to_value(clustered()).unwrap();
    assert_eq!(v["cluster"]["quorate"], true);
    assert_eq!(v["nodelist"]["pve1"]["ip"], "192.168.1.11");
}

/// The example of domain.md §8.2 (rendered in VMID order).
const VMLIST_EXAMPLE: &str = "{\n\"version\": 32,\n\"ids\": {\n\"103\": { \"node\": \"pve\", \"type\": \"qemu\", \"version\": 37 },\n\"104\": { \"node\": \"pve\", \"type\": \"lxc\", \"version\": 7 }}\n\n}\n";

fn example_vmlist() -> VmList {
    let mut ids = BTreeMap::new();
    ids.insert(
        104,
        VmEntry {
            node: "pve".into(),
            vtype: GuestType::Lxc,
            version: 7,
        },
    );
    ids.insert(
        103,
        VmEntry {
            node: "pve".into(),
            vtype: GuestType::Qemu,
            version: 37,
        },
    );
    VmList { version: 32, ids }
}

#[test]
fn vmlist_render_matches_pmxcfs_layout() {
    assert_eq!(example_vmlist().render(), VMLIST_EXAMPLE);
    assert_eq!(example_vmlist().render(), fixture("vmlist.json"));
}

#[test]
fn vmlist_parse_doc_example_in_hash_order() {
    let doc = "{\n\"version\": 32,\n\"ids\": {\n\"104\": { \"node\": \"pve\", \"type\": \"lxc\", \"version\": 7 },\n\"103\": { \"node\": \"pve\", \"type\": \"qemu\", \"version\": 37 }}\n\n}\n";
    assert_eq!(VmList::parse(doc).unwrap(), example_vmlist());
}

#[test]
fn vmlist_empty_layout() {
    let v = VmList {
        version: 4,
        ids: BTreeMap::new(),
    };
    assert_eq!(v.render(), "{\n\"version\": 4\n\n}\n");
    assert_eq!(v.render(), fixture("vmlist_empty.json"));
    assert_eq!(VmList::parse(&v.render()).unwrap(), v);
}

#[test]
fn vmlist_errors() {
    for (src, path) in [
        (
            r#"{"version":1,"ids":{"abc":{"node":"a","type":"qemu","version":1}}}"#,
            "ids.abc",
        ),
        (
            r#"{"version":1,"ids":{"0":{"node":"a","type":"qemu","version":1}}}"#,
            "ids.0",
        ),
        (
            r#"{"version":1,"ids":{"0100":{"node":"a","type":"qemu","version":1}}}"#,
            "ids.0100",
        ),
        (
            r#"{"version":1,"ids":{"100":{"node":"a","type":"kvm","version":1}}}"#,
            "ids.100.type",
        ),
        (
            r#"{"version":1,"ids":{"100":{"type":"qemu","version":1}}}"#,
            "ids.100.node",
        ),
        (r#"{"version":1,"ids":[]}"#, "ids"),
    ] {
        let e = VmList::parse(src).unwrap_err();
        assert_eq!(e.path, path, "{src}");
        assert_eq!(e.rule, "pmxcfs-vmlist");
    }
    assert!(VmList::parse("").is_err());
}

#[test]
fn vmlist_from_guest_paths_keeps_first_duplicate() {
    let paths = [
        ("nodes/pve1/qemu-server/100.conf", 3),
        ("nodes/pve2/lxc/101.conf", 1),
        ("nodes/pve2/qemu-server/100.conf", 9),
        ("nodes/pve2/qemu-server/102.conf.tmp.77", 1),
    ];
    let guests = paths
        .iter()
        .filter_map(|(p, v)| parse_guest_path(p).map(|g| (g, *v)));
    let (list, diags) = VmList::from_guests(12, guests);
    assert_eq!(
        list.render(),
        "{\n\"version\": 12,\n\"ids\": {\n\"100\": { \"node\": \"pve1\", \"type\": \"qemu\", \"version\": 3 },\n\"101\": { \"node\": \"pve2\", \"type\": \"lxc\", \"version\": 1 }}\n\n}\n"
    );
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "detected duplicate VMID 100");
    assert_eq!(diags[0].path, "nodes/pve2/qemu-server/100.conf");
}

#[test]
fn guest_type_serde_names() {
    assert_eq!(serde_json::to_string(&GuestType::Qemu).unwrap(), "\"qemu\"");
    assert_eq!(serde_json::to_string(&GuestType::Lxc).unwrap(), "\"lxc\"");
    assert_eq!(
        serde_json::to_string(&GuestType::Openvz).unwrap(),
        "\"openvz\""
    );
    assert_eq!(
        serde_json::from_str::<GuestType>("\"lxc\"").unwrap(),
        GuestType::Lxc
    );
    assert_eq!("openvz".parse::<GuestType>(), Ok(GuestType::Openvz));
    assert!("kvm".parse::<GuestType>().is_err());
    let e = serde_json::to_value(&example_vmlist().ids[&103]).unwrap();
    assert_eq!(e["type"], "qemu");
}

fn node_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

proptest! {
    #[test]
    fn members_render_parse_round_trip(
        nodename in node_name(),
        version in any::<u32>(),
        cluster in prop::option::of(("[a-z][a-z0-9-]{0,13}[a-z0-9]", any::<u32>(), any::<bool>())),
        nodes in prop::collection::btree_map(node_name(), (1u64..1000, any::<bool>(), prop::option::of("[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}")), 0..6),
    ) {
        let nodelist: BTreeMap<String, MemberNode> = nodes
            .into_iter()
            .map(|(n, (id, online, ip))| (n, MemberNode { id, online, ip }))
            .collect();
        let m = Members {
            nodename,
            version: version.into(),
            cluster: cluster.map(|(name, v, quorate)| ClusterInfo {
                name,
                version: v.into(),
                nodes: nodelist.len() as u64,
                quorate,
            }),
            nodelist: BTreeMap::new(),
        };
        let m = if m.cluster.is_some() { Members { nodelist, ..m } } else { m };
        let r = m.render();
        prop_assert_eq!(Members::parse(&r).unwrap(), m.clone());
        prop_assert!(serde_json::from_str::<serde_json::Value>(&r).is_ok());
    }

    #[test]
    fn vmlist_render_parse_round_trip(
        version in any::<u32>(),
        ids in prop::collection::btree_map(1u32.., (node_name(), 0usize..3, any::<u32>()), 0..8),
    ) {
        let v = VmList {
            version: version.into(),
            ids: ids.into_iter().map(|(id, (node, t, ver))| (id, VmEntry {
                node,
                vtype: GuestType::ALL[t],
                version: ver.into(),
            })).collect(),
        };
        prop_assert_eq!(VmList::parse(&v.render()).unwrap(), v);
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,60}") {
        let _ = Members::parse(&s);
        let _ = VmList::parse(&s);
    }
}
