//! Planner unit scenarios on hand-built observed states (no target involved): ordering,
//! refusals and the quorum replay. Golden tests against sim directories live in plans.rs.

use pve_gitops::observed::{Host, Observed, ObservedGuest};
use pve_gitops::plan::step::{Gate, Method, StepKind};
use pve_gitops::plan::{plan, Plan};
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::spec::{Cluster, GuestType};

fn manifest(nodes: &[(&str, u32, &str)], extra: &str) -> Cluster {
    let mut y = String::from("apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  nodes:\n");
    for (name, id, rest) in nodes {
        y.push_str(&format!(
            "    - name: {name}\n      nodeid: {id}\n      ring0_addr: 10.0.0.{id}\n"
        ));
        if !rest.is_empty() {
            y.push_str(&format!("      {rest}\n"));
        }
    }
    y.push_str(extra);
    parse(&y)
}

fn parse(y: &str) -> Cluster {
    match pve_gitops_schema::validate::parse_cluster("m.yaml", y) {
        Ok((c, _)) => c,
        Err(e) => panic!("test manifest invalid: {e:?}\n{y}"),
    }
}

fn conf(nodes: &[(&str, u32)], version: u64) -> Document {
    let mut s = format!(
        "totem {{\n  cluster_name: prod\n  config_version: {version}\n  interface {{\n    linknumber: 0\n  }}\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}}\n\nnodelist {{\n"
    );
    for (n, id) in nodes {
        s.push_str(&format!("  node {{\n    name: {n}\n    nodeid: {id}\n    quorum_votes: 1\n    ring0_addr: 10.0.0.{id}\n  }}\n"));
    }
    s.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n}\n");
    Document::parse(&s).expect("test conf parses")
}

fn observed(hosts: &[(&str, bool)], cluster: Option<(&[(&str, u32)], u64)>) -> Observed {
    let mut o = Observed::default();
    for (h, on) in hosts {
        o.hosts.insert(
            h.to_string(),
            Host {
                name: h.to_string(),
                online: *on,
                memory_mib: 65536,
                addresses: None,
            },
        );
    }
    if let Some((nodes, v)) = cluster {
        o.corosync = Some(conf(nodes, v));
        for (n, _) in nodes {
            if hosts.iter().any(|(h, on)| h == n && *on) {
                o.node_config_versions.insert(n.to_string(), v);
            }
        }
    }
    o.recompute_membership();
    o
}

fn kinds(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| format!("{}:{}", s.kind.name(), s.node))
        .collect()
}

#[test]
fn create_then_join_serially_in_nodeid_order() {
    let m = manifest(&[("c", 3, ""), ("a", 1, ""), ("b", 2, "")], "");
    let o = observed(&[("a", true), ("b", true), ("c", true)], None);
    let p = plan(&m, &o);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        kinds(&p),
        ["create_cluster:a", "join_node:b", "join_node:c"]
    );
    let versions: Vec<(u64, u64)> = p
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::JoinNode(j) => Some((j.from_version, j.to_version)),
            _ => None,
        })
        .collect();
    assert_eq!(versions, [(1, 2), (2, 3)]);
    let after = p.corosync_after.unwrap();
    assert!(after.contains("config_version: 3"), "{after}");
    assert!(after.contains("name: c"));
}

#[test]
fn in_sync_cluster_gives_empty_plan() {
    let m = manifest(&[("a", 1, ""), ("b", 2, ""), ("c", 3, "")], "");
    let o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 5)),
    );
    let p = plan(&m, &o);
    assert!(p.in_sync(), "{:#?}", p.steps);
}

#[test]
fn remove_evacuates_then_gates_then_deletes() {
    let m = manifest(
        &[
            ("a", 1, ""),
            ("b", 2, ""),
            ("c", 3, ""),
            ("d", 4, "state: absent"),
        ],
        "",
    );
    let mut o = observed(
        &[("a", true), ("b", true), ("c", true), ("d", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], 4)),
    );
    for (vmid, mem) in [(101, 4096), (102, 2048), (103, 2048), (104, 1024)] {
        o.guests.insert(
            vmid,
            ObservedGuest {
                vmid,
                gtype: GuestType::Qemu,
                node: "d".into(),
                lock: None,
                memory_mib: mem,
                running: true,
            },
        );
    }
    let p = plan(&m, &o);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let k = kinds(&p);
    assert_eq!(&k[..4], ["migrate_guest:d"; 4]);
    assert_eq!(&k[4..], ["wait:d", "remove_node:d"]);
    let targets: std::collections::BTreeSet<String> = p
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::MigrateGuest(g) => Some(g.to.clone()),
            _ => None,
        })
        .collect();
    assert!(
        targets.len() >= 2,
        "evacuation put every guest on one node: {targets:?}"
    );
    assert!(
        matches!(&p.steps[4].kind, StepKind::Wait(w) if matches!(&w.gate, Gate::PowerOff { node } if node == "d"))
    );
    assert!(p.steps[5]
        .blocked
        .as_deref()
        .unwrap_or("")
        .contains("power off d"));
}

#[test]
fn joining_node_with_guests_is_refused() {
    let m = manifest(&[("a", 1, ""), ("b", 2, ""), ("c", 3, "")], "");
    let mut o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2)], 2)),
    );
    o.guests.insert(
        100,
        ObservedGuest {
            vmid: 100,
            gtype: GuestType::Lxc,
            node: "c".into(),
            lock: None,
            memory_mib: 512,
            running: false,
        },
    );
    let p = plan(&m, &o);
    assert_eq!(kinds(&p), ["join_node:c"]);
    assert!(p.steps[0]
        .blocked
        .as_deref()
        .unwrap()
        .contains("join refused"));
}

/// A joining host whose registered addresses do not include its ring address is refused
/// before any member edits the nodelist; with the right address (or addresses not known) the
/// join goes ahead.
#[test]
fn joining_node_whose_ring_address_is_not_its_own_is_refused() {
    let m = manifest(&[("a", 1, ""), ("b", 2, ""), ("c", 3, "")], "");
    let mut o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2)], 2)),
    );
    let has = |o: &mut Observed, addrs: &[&str]| {
        o.hosts.get_mut("c").unwrap().addresses =
            Some(addrs.iter().map(|a| a.parse().unwrap()).collect());
    };
    has(&mut o, &["10.0.0.99", "192.168.1.3"]);
    let p = plan(&m, &o);
    assert_eq!(kinds(&p), ["join_node:c"]);
    let why = p.steps[0].blocked.as_deref().unwrap_or_default();
    assert!(
        why.contains("spec.nodes[2].ring0_addr 10.0.0.3 is not an address of c"),
        "{why}"
    );
    assert!(why.contains("10.0.0.99, 192.168.1.3"), "{why}");

    has(&mut o, &["10.0.0.3"]);
    assert_eq!(plan(&m, &o).steps[0].blocked, None);
    o.hosts.get_mut("c").unwrap().addresses = None;
    assert_eq!(plan(&m, &o).steps[0].blocked, None);
}

#[test]
fn renaming_a_joined_node_is_refused() {
    let m = manifest(&[("a", 1, ""), ("bee", 2, ""), ("c", 3, "")], "");
    let o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 2)),
    );
    let p = plan(&m, &o);
    assert!(p.steps.is_empty());
    assert!(
        p.errors.iter().any(|e| e.contains("cannot be renamed")),
        "{:?}",
        p.errors
    );
}

#[test]
fn power_off_that_loses_quorum_is_reordered_after_removing_a_dead_node() {
    // 4 nodes, d already dead; removing c too. Powering c off first would leave 2 of 4
    // (quorum 3); removing d first makes it 2 of 3 (quorum 2).
    let m = manifest(
        &[
            ("a", 1, ""),
            ("b", 2, ""),
            ("c", 3, "state: absent"),
            ("d", 4, "state: absent"),
        ],
        "",
    );
    let o = observed(
        &[("a", true), ("b", true), ("c", true), ("d", false)],
        Some((&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], 4)),
    );
    let p = plan(&m, &o);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(kinds(&p), ["remove_node:d", "wait:c", "remove_node:c"]);
}

#[test]
fn two_node_cluster_cannot_power_off_one_without_two_node() {
    let m = manifest(&[("a", 1, ""), ("b", 2, "state: absent")], "");
    let o = observed(
        &[("a", true), ("b", true)],
        Some((&[("a", 1), ("b", 2)], 2)),
    );
    let p = plan(&m, &o);
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("would lose quorum") && e.contains("quorum is 2")),
        "{:?}",
        p.errors
    );
}

#[test]
fn lost_quorum_is_regained_with_expected_votes_then_nodes_removed() {
    let m = manifest(
        &[
            ("a", 1, ""),
            ("b", 2, ""),
            ("c", 3, "state: absent"),
            ("d", 4, "state: absent"),
        ],
        "  quorum:\n    expected_votes: 2\n",
    );
    let o = observed(
        &[("a", true), ("b", true), ("c", false), ("d", false)],
        Some((&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], 4)),
    );
    assert!(!o.membership.quorate);
    let p = plan(&m, &o);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        kinds(&p),
        ["set_expected_votes:a", "remove_node:c", "remove_node:d"]
    );
}

#[test]
fn expected_votes_below_present_is_refused_with_arithmetic() {
    let m = manifest(
        &[("a", 1, ""), ("b", 2, ""), ("c", 3, "")],
        "  quorum:\n    expected_votes: 2\n",
    );
    let o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 2)),
    );
    let p = plan(&m, &o);
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("below the 3 votes present")),
        "{:?}",
        p.errors
    );
}

#[test]
fn readdress_of_the_only_link_is_blocked_not_restarted() {
    let m = manifest(&[("a", 1, ""), ("b", 2, ""), ("c", 3, "")], "");
    let mut o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 2)),
    );
    let mut doc = o.corosync.clone().unwrap();
    doc.set_ring_addr("c", 0, "10.0.9.3");
    o.corosync = Some(doc);
    let p = plan(&m, &o);
    assert_eq!(kinds(&p), ["update_corosync:a"]);
    assert!(
        p.steps[0]
            .blocked
            .as_deref()
            .unwrap_or("")
            .contains("only working link"),
        "{:?}",
        p.steps[0]
    );
    assert!(p.next_runnable().is_none());
}

#[test]
fn readdress_with_a_second_link_is_remove_then_add_by_reload() {
    let m = manifest(
        &[
            ("a", 1, "ring1_addr: 10.1.0.1"),
            ("b", 2, "ring1_addr: 10.1.0.2"),
            ("c", 3, "ring1_addr: 10.1.0.3"),
        ],
        "",
    );
    let mut o = observed(
        &[("a", true), ("b", true), ("c", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 2)),
    );
    let mut doc = o.corosync.clone().unwrap();
    for (n, id) in [("a", 1), ("b", 2), ("c", 3)] {
        doc.set_ring_addr(n, 1, &format!("10.1.0.{id}"));
    }
    doc.add_interface(1, &[]);
    doc.set_ring_addr("c", 0, "10.0.9.3");
    o.corosync = Some(doc);
    let p = plan(&m, &o);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let steps: Vec<(pve_gitops::plan::step::Method, String, u64)> = p
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::UpdateCorosync(u) => (u.method, u.changes.join(";"), u.to_version),
            k => panic!("unexpected {k:?}"),
        })
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].1.starts_with("remove link 0"), "{steps:?}");
    assert_eq!(
        steps[1].1,
        "add link 0 (a 10.0.0.1, b 10.0.0.2, c 10.0.0.3)"
    );
    assert_eq!((steps[0].2, steps[1].2), (3, 4));
    assert!(steps
        .iter()
        .all(|s| s.0 == pve_gitops::plan::step::Method::Reload));
    assert!(p.corosync_after.unwrap().contains("ring0_addr: 10.0.0.3"));
}

/// A powered-on nodelist node whose corosync is down is started with the current conf — but
/// not while a member runs another config_version (a written, not yet reloaded conf): corosync
/// would turn the node away, so the config-version gate comes first.
#[test]
fn a_stopped_node_starts_only_once_the_members_run_the_current_conf() {
    let m = manifest(&[("a", 1, ""), ("b", 2, ""), ("c", 3, "")], "");
    let stopped_c = |members_run: u64| {
        let mut o = observed(
            &[("a", true), ("b", true), ("c", true)],
            Some((&[("a", 1), ("b", 2), ("c", 3)], 4)),
        );
        o.node_config_versions.remove("c");
        for n in ["a", "b"] {
            o.node_config_versions.insert(n.into(), members_run);
        }
        o.membership.online.remove("c");
        o.membership.total_votes = 2;
        o
    };
    let p = plan(&m, &stopped_c(4));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(kinds(&p), ["join_node:c"]);
    let p = plan(&m, &stopped_c(3));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    match &p.steps.first().map(|s| &s.kind) {
        Some(StepKind::Wait(w)) => match &w.gate {
            Gate::ConfigVersion { version, lagging } => {
                assert_eq!(*version, 4);
                assert_eq!(lagging, &["a (runs 3)", "b (runs 3)"]);
            }
            other => panic!("expected the config-version gate, got {other:?}"),
        },
        other => panic!(
            "expected the config-version gate first, got {other:?}: {:?}",
            kinds(&p)
        ),
    }
    assert!(
        !kinds(&p).contains(&"join_node:c".to_string()),
        "{:?}",
        kinds(&p)
    );
}

/// Members behind the current corosync.conf while another member runs it (they missed its
/// reload): one reload, version unchanged, on a member that runs it. Nobody running it yet (a
/// change written and never reloaded) or a member ahead of it: the gate, nothing reloaded.
#[test]
fn members_that_missed_a_reload_get_one_more_only_when_it_was_applied() {
    let m = manifest(&[("a", 1, ""), ("b", 2, ""), ("c", 3, "")], "");
    let with_versions = |a: u64, b: u64, c: u64| {
        let mut o = observed(
            &[("a", true), ("b", true), ("c", true)],
            Some((&[("a", 1), ("b", 2), ("c", 3)], 5)),
        );
        for (n, v) in [("a", a), ("b", b), ("c", c)] {
            o.node_config_versions.insert(n.into(), v);
        }
        o
    };
    // a missed it: b (the lowest nodeid running 5) reloads.
    let p = plan(&m, &with_versions(4, 5, 5));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(kinds(&p), ["update_corosync:b"]);
    match &p.steps[0].kind {
        StepKind::UpdateCorosync(u) => {
            assert_eq!((u.from_version, u.to_version), (5, 5));
            assert_eq!(u.method, Method::Reload);
            assert_eq!(u.changes, ["reload for a (runs 4)"]);
            assert!(u.corosync_conf.contains("config_version: 5"));
        }
        other => panic!("{other:?}"),
    }
    let gate = |p: &Plan| {
        matches!(
            p.steps.first().map(|s| &s.kind),
            Some(StepKind::Wait(w)) if matches!(w.gate, Gate::ConfigVersion { .. })
        )
    };
    // Written, never reloaded: every member runs 4.
    let p = plan(&m, &with_versions(4, 4, 4));
    assert!(gate(&p), "{:?}", kinds(&p));
    // A member runs a newer version than the conf.
    let p = plan(&m, &with_versions(5, 5, 6));
    assert!(gate(&p), "{:?}", kinds(&p));
}

/// Moving every node to a new link while one joined node has no address on it: the link add
/// is blocked, and so is the removal of the old link (it would leave no link at all) — no
/// runnable step drops link 0.
#[test]
fn the_last_link_is_never_removed_while_its_replacement_is_blocked() {
    let y = "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  nodes:\n    - {name: a, nodeid: 1, ring1_addr: 10.1.0.1}\n    - {name: b, nodeid: 2, ring1_addr: 10.1.0.2}\n    - {name: c, nodeid: 3, ring1_addr: 10.1.0.3}\n    - {name: d, nodeid: 4, ring0_addr: 10.0.0.4, state: absent}\n";
    let m = parse(y);
    let o = observed(
        &[("a", true), ("b", true), ("c", true), ("d", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], 4)),
    );
    let p = plan(&m, &o);
    let link_steps: Vec<_> = p
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::UpdateCorosync(u) => Some((u.changes.join("; "), s.blocked.clone())),
            _ => None,
        })
        .collect();
    let removal = link_steps
        .iter()
        .find(|(c, _)| c.contains("remove link 0"))
        .unwrap_or_else(|| panic!("no link removal step: {link_steps:?}"));
    let why = removal.1.as_deref().unwrap_or("");
    assert!(
        why.contains("would leave no link that every node has"),
        "the removal of the only link must be blocked: {link_steps:?}"
    );
    for s in &p.steps {
        if let StepKind::UpdateCorosync(u) = &s.kind {
            if s.blocked.is_none() {
                assert!(
                    u.corosync_conf.contains("ring0_addr"),
                    "a runnable edit drops link 0:\n{}",
                    u.corosync_conf
                );
            }
        }
    }
}

/// A join while a member is down: the nodelist edit raises the expected votes before the new
/// node's vote counts, so the cluster is inquorate in between — planned, with a warning that
/// says so; with every member up there is no such warning.
#[test]
fn a_join_that_leaves_a_gap_without_quorum_is_warned_about() {
    let m = manifest(
        &[("a", 1, ""), ("b", 2, ""), ("c", 3, ""), ("d", 4, "")],
        "",
    );
    let o = observed(
        &[("a", true), ("b", true), ("c", false), ("d", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 3)),
    );
    let p = plan(&m, &o);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(kinds(&p), ["join_node:d"]);
    let w: Vec<&String> = p
        .warnings
        .iter()
        .filter(|w| w.contains("while d joins"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", p.warnings);
    assert!(
        w[0].contains("2 of 4 expected votes are present and quorum is 3"),
        "{}",
        w[0]
    );

    let o = observed(
        &[("a", true), ("b", true), ("c", true), ("d", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 3)),
    );
    let p = plan(&m, &o);
    assert_eq!(kinds(&p), ["join_node:d"]);
    assert!(
        !p.warnings.iter().any(|w| w.contains("joins")),
        "{:?}",
        p.warnings
    );
}

/// A join whose address another node of the live nodelist has (a node the manifest dropped):
/// refused, naming that node.
#[test]
fn a_join_with_an_address_another_node_has_is_refused() {
    let y = "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  nodes:\n    - {name: a, nodeid: 1, ring0_addr: 10.0.0.1}\n    - {name: b, nodeid: 2, ring0_addr: 10.0.0.2}\n    - {name: c, nodeid: 3, ring0_addr: 10.0.0.3}\n    - {name: e, nodeid: 5, ring0_addr: 10.0.0.4}\n";
    let m = parse(y);
    let o = observed(
        &[
            ("a", true),
            ("b", true),
            ("c", true),
            ("d", true),
            ("e", true),
        ],
        Some((&[("a", 1), ("b", 2), ("c", 3), ("d", 4)], 4)),
    );
    let p = plan(&m, &o);
    let join = p
        .steps
        .iter()
        .find(|s| matches!(s.kind, StepKind::JoinNode(_)))
        .unwrap_or_else(|| panic!("no join: {:?}", kinds(&p)));
    let why = join.blocked.as_deref().unwrap_or("");
    assert!(
        why.contains("ring0_addr 10.0.0.4 is d's"),
        "the join must be refused: {why:?}"
    );
}

/// The live half of the migration-network rule, for nodes without `addresses`: a host whose
/// reported addresses have none in the network refuses the plan, two are ambiguous, one (a
/// ring address or a reported one) is fine; unknown host addresses give a warning.
#[test]
fn migration_network_is_checked_live_for_nodes_without_addresses() {
    let m = manifest(
        &[("a", 1, ""), ("b", 2, ""), ("c", 3, "")],
        "  migration:\n    type: secure\n    network: 10.9.0.0/24\n",
    );
    let base = || {
        observed(
            &[("a", true), ("b", true), ("c", true)],
            Some((&[("a", 1), ("b", 2), ("c", 3)], 3)),
        )
    };
    let ips = |s: &[&str]| Some(s.iter().map(|a| a.parse().unwrap()).collect());
    let mut o = base();
    o.hosts.get_mut("a").unwrap().addresses = ips(&["10.0.0.1", "10.9.0.1"]);
    o.hosts.get_mut("b").unwrap().addresses = ips(&["10.0.0.2"]);
    o.hosts.get_mut("c").unwrap().addresses = ips(&["10.0.0.3", "10.9.0.3", "10.9.0.33"]);
    let p = plan(&m, &o);
    assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
    assert!(
        p.errors[0].contains("`b` has no address in migration.network 10.9.0.0/24"),
        "{:?}",
        p.errors
    );
    assert!(
        p.errors[1].contains("`c` has 2 addresses in migration.network"),
        "{:?}",
        p.errors
    );
    assert!(
        p.steps.is_empty(),
        "a refused plan has no steps: {:?}",
        kinds(&p)
    );

    // Addresses not reported: warned about, not refused.
    let p = plan(&m, &base());
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        p.warnings
            .iter()
            .filter(|w| w.contains("cannot be checked"))
            .count(),
        3,
        "{:?}",
        p.warnings
    );
}

/// corosync reports the cluster inquorate although spec.quorum.expected_votes is in effect
/// (e.g. wait_for_all before every node was seen): the quorum gate, no membership change.
#[test]
fn inquorate_with_the_expected_votes_in_effect_stops_at_the_quorum_gate() {
    let m = manifest(
        &[("a", 1, ""), ("b", 2, ""), ("c", 3, ""), ("d", 4, "")],
        "  quorum:\n    expected_votes: 3\n",
    );
    let mut o = observed(
        &[("a", true), ("b", true), ("c", true), ("d", true)],
        Some((&[("a", 1), ("b", 2), ("c", 3)], 3)),
    );
    o.membership.quorate = false;
    let p = plan(&m, &o);
    let k = kinds(&p);
    assert_eq!(k.first().map(String::as_str), Some("wait:-"), "{k:?}");
    for s in &p.steps {
        if matches!(s.kind, StepKind::JoinNode(_)) {
            assert!(s.blocked.is_some(), "a join planned without quorum: {k:?}");
        }
    }
}
