//! The `sim:DIR` target against real files in temporary directories: every apply rule has
//! an acceptance and a refusal case, refused steps leave every file unchanged, and the
//! pmxcfs files have their exact byte layout.

mod common;

use common::{datacenter_step, snapshot, step, Tmp};
use pve_gitops::plan::step::{
    CreateCluster, Gate, JoinNode, Method, MigrateGuest, RemoveNode, SetExpectedVotes, Step,
    StepKind, UpdateCorosync, Wait,
};
use pve_gitops::target::sim::{self, SimTarget};
use pve_gitops::target::{Target, TargetError};
use pve_gitops_schema::spec::GuestType;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// A node of [`conf`]: name, nodeid, addresses by link.
type N<'a> = (&'a str, u32, &'a [(u8, &'a str)]);

/// corosync.conf: nodes, extra totem lines.
fn conf(version: u64, nodes: &[N<'_>], totem_extra: &str) -> String {
    let mut links: Vec<u8> = nodes
        .iter()
        .flat_map(|(_, _, l)| l.iter().map(|(n, _)| *n))
        .collect();
    links.sort();
    links.dedup();
    let mut s = String::from("logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n");
    for (name, id, addrs) in nodes {
        s.push_str(&format!(
            "  node {{\n    name: {name}\n    nodeid: {id}\n    quorum_votes: 1\n"
        ));
        for (l, a) in *addrs {
            s.push_str(&format!("    ring{l}_addr: {a}\n"));
        }
        s.push_str("  }\n");
    }
    s.push_str(
        "}\n\nquorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n  cluster_name: lab\n",
    );
    s.push_str(&format!("  config_version: {version}\n"));
    for l in links {
        s.push_str(&format!("  interface {{\n    linknumber: {l}\n  }}\n"));
    }
    s.push_str("  ip_version: ipv4-6\n  secauth: on\n  version: 2\n");
    s.push_str(totem_extra);
    s.push_str("}\n");
    s
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

fn links(addrs: &[(u8, &str)]) -> BTreeMap<u8, String> {
    addrs.iter().map(|(l, a)| (*l, a.to_string())).collect()
}

const A1: &[(u8, &str)] = &[(0, "10.0.0.1")];
const A2: &[(u8, &str)] = &[(0, "10.0.0.2")];
const A3: &[(u8, &str)] = &[(0, "10.0.0.3")];

fn create_step(founder: &str, addrs: &[(u8, &str)]) -> Step {
    step(
        StepKind::CreateCluster(CreateCluster {
            cluster_name: "lab".into(),
            founder: founder.into(),
            nodeid: 1,
            quorum_votes: 1,
            links: links(addrs),
            corosync_conf: conf(1, &[(founder, 1, addrs)], ""),
        }),
        founder,
    )
}

fn join_step(
    node: &str,
    nodeid: u32,
    addrs: &[(u8, &str)],
    via: &str,
    from: u64,
    all: &[N<'_>],
) -> Step {
    step(
        StepKind::JoinNode(JoinNode {
            node: node.into(),
            nodeid,
            quorum_votes: 1,
            links: links(addrs),
            via: via.into(),
            from_version: from,
            to_version: from + 1,
            corosync_conf: conf(from + 1, all, ""),
        }),
        node,
    )
}

/// Three hosts a, b, c, clustered (config_version 3), all on.
fn cluster3(t: &Tmp) -> SimTarget {
    sim::init_from_names(t.path(), &names(&["a", "b", "c"]), 0, 8192).unwrap();
    let mut s = SimTarget::new(t.path());
    s.apply(&create_step("a", A1)).unwrap();
    s.apply(&join_step(
        "b",
        2,
        A2,
        "a",
        1,
        &[("a", 1, A1), ("b", 2, A2)],
    ))
    .unwrap();
    s.apply(&join_step(
        "c",
        3,
        A3,
        "a",
        2,
        &[("a", 1, A1), ("b", 2, A2), ("c", 3, A3)],
    ))
    .unwrap();
    s
}

fn all3() -> Vec<N<'static>> {
    vec![("a", 1, A1), ("b", 2, A2), ("c", 3, A3)]
}

fn refused(r: Result<pve_gitops::target::Applied, TargetError>) -> String {
    match r {
        Err(TargetError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Apply `st`, expect a refusal containing `needle`, and no file changed.
fn assert_refused(t: &Tmp, s: &mut SimTarget, st: &Step, needle: &str) -> String {
    let before = snapshot(t.path());
    let reason = refused(s.apply(st));
    assert!(
        reason.contains(needle),
        "{reason:?} does not contain {needle:?}"
    );
    assert_eq!(before, snapshot(t.path()), "a refused step changed files");
    reason
}

// ---------------------------------------------------------------------------------------
// create_cluster

#[test]
fn create_cluster_writes_conf_and_members() {
    let t = Tmp::new("create");
    sim::init_from_names(t.path(), &names(&["a", "b"]), 0, 4096).unwrap();
    let mut s = SimTarget::new(t.path());
    let st = create_step("a", A1);
    let applied = s.apply(&st).unwrap();
    assert!(
        applied.message.contains("created cluster lab"),
        "{applied:?}"
    );
    let StepKind::CreateCluster(c) = &st.kind else {
        unreachable!()
    };
    assert_eq!(t.read("corosync.conf"), c.corosync_conf);
    assert_eq!(
        t.read(".members"),
        "{\n\"nodename\": \"a\",\n\"version\": 2,\n\"cluster\": { \"name\": \"lab\", \"version\": 1, \"nodes\": 1, \"quorate\": 1 },\n\"nodelist\": {\n  \"a\": { \"id\": 1, \"online\": 1}\n  }\n}\n"
    );
    assert!(!t.path().join("priv/lock/file-corosync_conf").exists());
    let o = s.observe().unwrap();
    assert_eq!(o.config_version(), 1);
    assert!(o.membership.quorate);
    assert_eq!(o.node_config_versions.get("a"), Some(&1));
    assert!(o.hosts["b"].online);
    assert!(!o.membership.online.contains("b"));
}

#[test]
fn create_cluster_refusals() {
    let t = Tmp::new("create-no");
    sim::init_from_names(t.path(), &names(&["a", "b"]), 0, 4096).unwrap();
    let mut s = SimTarget::new(t.path());
    sim::set_power(t.path(), "a", false).unwrap();
    assert_refused(&t, &mut s, &create_step("a", A1), "'a' is powered off");
    assert_refused(&t, &mut s, &create_step("zz", A1), "not a known host");
    sim::set_power(t.path(), "a", true).unwrap();
    s.apply(&create_step("a", A1)).unwrap();
    assert_refused(
        &t,
        &mut s,
        &create_step("b", A2),
        "cluster config '/etc/pve/corosync.conf' already exists",
    );
}

// ---------------------------------------------------------------------------------------
// join_node

#[test]
fn join_node_bumps_version_and_renders_members() {
    let t = Tmp::new("join");
    let mut s = cluster3(&t);
    let o = s.observe().unwrap();
    assert_eq!(o.config_version(), 3);
    assert_eq!(o.membership.online.len(), 3);
    assert_eq!((o.membership.expected_votes, o.membership.quorum), (3, 2));
    assert_eq!(
        t.read(".members"),
        "{\n\"nodename\": \"a\",\n\"version\": 4,\n\"cluster\": { \"name\": \"lab\", \"version\": 3, \"nodes\": 3, \"quorate\": 1 },\n\"nodelist\": {\n  \"a\": { \"id\": 1, \"online\": 1},\n  \"b\": { \"id\": 2, \"online\": 1},\n  \"c\": { \"id\": 3, \"online\": 1}\n  }\n}\n"
    );
    assert!(t.path().join("nodes/c/qemu-server").is_dir());
    assert!(o.node_config_versions.values().all(|v| *v == 3));
}

#[test]
fn join_refused_when_joiner_has_guests() {
    let t = Tmp::new("join-guests");
    sim::init_from_names(t.path(), &names(&["a", "b"]), 0, 4096).unwrap();
    t.write("nodes/b/lxc/300.conf", "hostname: ct\nmemory: 512\n");
    let mut s = SimTarget::new(t.path());
    s.apply(&create_step("a", A1)).unwrap();
    let st = join_step("b", 2, A2, "a", 1, &[("a", 1, A1), ("b", 2, A2)]);
    let r = assert_refused(
        &t,
        &mut s,
        &st,
        "* this host already contains virtual guests",
    );
    assert!(
        r.ends_with("Check if node may join a cluster failed!"),
        "{r}"
    );
}

#[test]
fn join_refusals() {
    let t = Tmp::new("join-no");
    sim::init_from_names(t.path(), &names(&["a", "b", "c", "d"]), 0, 4096).unwrap();
    let mut s = SimTarget::new(t.path());
    s.apply(&create_step("a", A1)).unwrap();
    let two = [("a", 1, A1), ("b", 2, A2)];
    // config_version must go up by exactly one
    let mut skip = join_step("b", 2, A2, "a", 1, &two);
    if let StepKind::JoinNode(j) = &mut skip.kind {
        j.to_version = 3;
        j.corosync_conf = conf(3, &two, "");
    }
    assert_refused(&t, &mut s, &skip, "exactly once");
    // via must be an online member
    assert_refused(
        &t,
        &mut s,
        &join_step("b", 2, A2, "c", 1, &two),
        "not an online member",
    );
    // nodeid taken
    assert_refused(
        &t,
        &mut s,
        &join_step("b", 1, A2, "a", 1, &[("a", 1, A1), ("b", 1, A2)]),
        "nodeid 1 already used by node 'a'",
    );
    // joiner powered off
    sim::set_power(t.path(), "b", false).unwrap();
    assert_refused(
        &t,
        &mut s,
        &join_step("b", 2, A2, "a", 1, &two),
        "'b' is powered off",
    );
    sim::set_power(t.path(), "b", true).unwrap();
    s.apply(&join_step("b", 2, A2, "a", 1, &two)).unwrap();
    // not quorate: b off -> 1 of 2
    sim::set_power(t.path(), "b", false).unwrap();
    let three = [("a", 1, A1), ("b", 2, A2), ("c", 3, A3)];
    assert_refused(
        &t,
        &mut s,
        &join_step("c", 3, A3, "a", 2, &three),
        "cluster not ready - no quorum?",
    );
    sim::set_power(t.path(), "b", true).unwrap();
    // existing name
    assert_refused(
        &t,
        &mut s,
        &join_step("b", 2, A2, "a", 2, &two),
        "corosync is already running",
    );
    s.apply(&join_step("c", 3, A3, "a", 2, &three)).unwrap();
}

// ---------------------------------------------------------------------------------------
// update_corosync

fn update_step(method: Method, from: u64, text: String, order: &[&str]) -> Step {
    step(
        StepKind::UpdateCorosync(UpdateCorosync {
            changes: vec!["test change".into()],
            method,
            method_reason: "test".into(),
            restart_order: order.iter().map(|s| s.to_string()).collect(),
            from_version: from,
            to_version: from + 1,
            corosync_conf: text,
        }),
        "a",
    )
}

#[test]
fn update_reload_adds_a_link_and_drops_expected_override() {
    let t = Tmp::new("update");
    let mut s = cluster3(&t);
    s.apply(&step(
        StepKind::SetExpectedVotes(SetExpectedVotes {
            expected: 4,
            from: 3,
            present: 3,
        }),
        "a",
    ))
    .unwrap();
    assert_eq!(s.observe().unwrap().membership.runtime_expected, Some(4));
    let new = conf(
        4,
        &[
            ("a", 1, &[(0, "10.0.0.1"), (1, "10.1.0.1")]),
            ("b", 2, &[(0, "10.0.0.2"), (1, "10.1.0.2")]),
            ("c", 3, &[(0, "10.0.0.3"), (1, "10.1.0.3")]),
        ],
        "",
    );
    let applied = s
        .apply(&update_step(Method::Reload, 3, new.clone(), &[]))
        .unwrap();
    assert_eq!(applied.duration_ms, sim::RELOAD_MS);
    assert_eq!(t.read("corosync.conf"), new);
    let o = s.observe().unwrap();
    assert_eq!(o.config_version(), 4);
    assert_eq!(o.membership.runtime_expected, None);
    assert!(!t.path().join("priv/lock/file-corosync_conf").exists());
}

#[test]
fn reload_that_readdresses_an_existing_link_is_refused_and_files_stay() {
    let t = Tmp::new("readdress");
    let mut s = cluster3(&t);
    let new = conf(
        4,
        &[("a", 1, &[(0, "10.9.0.1")]), ("b", 2, A2), ("c", 3, A3)],
        "",
    );
    let r = assert_refused(
        &t,
        &mut s,
        &update_step(Method::Reload, 3, new, &[]),
        "To reconfigure an interface it must be deleted and recreated. A working interface needs to be available to corosync at all times",
    );
    assert!(
        r.contains(
            "new config has different address for link 0 (addr changed from 10.0.0.1 to 10.9.0.1)"
        ),
        "{r}"
    );
}

#[test]
fn reload_of_restart_only_key_is_refused_rolling_restart_accepted() {
    let t = Tmp::new("linkmode");
    let mut s = cluster3(&t);
    let new = conf(4, &all3(), "  link_mode: active\n");
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::Reload, 3, new.clone(), &[]),
        "Modified entry 'totem.link_mode' in corosync.conf cannot be changed at run-time; needs a restart",
    );
    // a restart order that leaves out a member is refused
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::RollingRestart, 3, new.clone(), &["a", "b"]),
        "'c' is not in restart_order",
    );
    let applied = s
        .apply(&update_step(
            Method::RollingRestart,
            3,
            new.clone(),
            &["c", "b", "a"],
        ))
        .unwrap();
    assert_eq!(applied.duration_ms, 3 * sim::RESTART_MS_PER_NODE);
    assert_eq!(t.read("corosync.conf"), new);
}

#[test]
fn rolling_restart_that_loses_quorum_is_refused() {
    let t = Tmp::new("rolling-quorum");
    let mut s = cluster3(&t);
    sim::set_power(t.path(), "c", false).unwrap();
    let new = conf(4, &all3(), "  link_mode: active\n");
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::RollingRestart, 3, new, &["a", "b"]),
        "restarting corosync on 'a' would lose quorum",
    );
}

#[test]
fn rolling_restart_to_another_transport_splits_the_cluster() {
    let t = Tmp::new("transport");
    let mut s = cluster3(&t);
    let new = conf(4, &all3(), "  transport: udpu\n");
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::Reload, 3, new.clone(), &[]),
        "totem.transport",
    );
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::RollingRestart, 3, new, &["a", "b", "c"]),
        "run another transport",
    );
}

#[test]
fn update_refusals_version_and_last_link() {
    let t = Tmp::new("update-no");
    let mut s = cluster3(&t);
    let same = conf(3, &all3(), "  token: 5000\n");
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::Reload, 3, same, &[]),
        "local corosync.conf is newer",
    );
    let mut no_links = conf(4, &[("a", 1, &[]), ("b", 2, &[]), ("c", 3, &[])], "");
    no_links = no_links.replace("  interface {\n    linknumber: 0\n  }\n", "");
    assert_refused(
        &t,
        &mut s,
        &update_step(Method::Reload, 3, no_links, &[]),
        "removing the last link",
    );
}

// ---------------------------------------------------------------------------------------
// set_expected_votes

fn expected_step(n: u32, node: &str) -> Step {
    step(
        StepKind::SetExpectedVotes(SetExpectedVotes {
            expected: n,
            from: 3,
            present: 2,
        }),
        node,
    )
}

#[test]
fn expected_votes_range_is_enforced() {
    let t = Tmp::new("expected");
    let mut s = cluster3(&t);
    sim::set_power(t.path(), "c", false).unwrap();
    sim::set_power(t.path(), "b", false).unwrap();
    assert!(!s.observe().unwrap().membership.quorate);
    // one vote present: only 1 is accepted
    assert_refused(
        &t,
        &mut s,
        &expected_step(2, "a"),
        "Unable to set expected votes: CS_ERR_INVALID_PARAM",
    );
    assert_refused(
        &t,
        &mut s,
        &expected_step(1, "b"),
        "Cannot initialize QUORUM service",
    );
    let before = t.read("corosync.conf");
    s.apply(&expected_step(1, "a")).unwrap();
    let o = s.observe().unwrap();
    assert!(o.membership.quorate, "{:?}", o.membership);
    assert_eq!(o.membership.runtime_expected, Some(1));
    assert_eq!(t.read("corosync.conf"), before, "runtime only");
    assert!(t.read(".members").contains("\"quorate\": 1"));
}

// ---------------------------------------------------------------------------------------
// set_datacenter

#[test]
fn set_datacenter_edits_one_key_and_keeps_the_rest() {
    let t = Tmp::new("dc");
    let _s = cluster3(&t);
    t.write(
        "datacenter.cfg",
        "# managed by hand\nkeyboard: de\nmigration: type=secure\n",
    );
    let mut s = SimTarget::new(t.path());
    let st = datacenter_step(
        "a",
        "migration",
        Some("type=secure"),
        Some("secure,network=10.1.2.0/24"),
    );
    s.apply(&st).unwrap();
    assert_eq!(
        t.read("datacenter.cfg"),
        "# managed by hand\nkeyboard: de\nmigration: secure,network=10.1.2.0/24\n"
    );
    assert_eq!(
        s.observe().unwrap().datacenter.get("migration"),
        Some("secure,network=10.1.2.0/24")
    );
    // invalid value
    let bad = datacenter_step(
        "a",
        "migration",
        Some("secure,network=10.1.2.0/24"),
        Some("fast"),
    );
    assert_refused(&t, &mut s, &bad, "migration:");
    // re-applying is idempotent; a step planned against another value is stale
    assert_eq!(s.apply(&st).unwrap().duration_ms, 0);
    let stale = datacenter_step("a", "migration", Some("type=insecure"), Some("insecure"));
    assert_refused(&t, &mut s, &stale, "planned against");
    // held lock
    fs::create_dir_all(t.path().join("priv/lock/file-datacenter_cfg")).unwrap();
    let rm = datacenter_step("a", "keyboard", Some("de"), None);
    assert_refused(
        &t,
        &mut s,
        &rm,
        "cfs-lock 'file-datacenter_cfg' error: got lock request timeout",
    );
}

// ---------------------------------------------------------------------------------------
// migrate_guest

fn migrate_step(vmid: u32, gtype: GuestType, from: &str, to: &str, online: bool) -> Step {
    step(
        StepKind::MigrateGuest(MigrateGuest {
            vmid,
            guest_type: gtype,
            from: from.into(),
            to: to.into(),
            online,
            restart: online,
            migration_network: None,
            migration_type: None,
        }),
        from,
    )
}

#[test]
fn migration_moves_the_config_file() {
    let t = Tmp::new("migrate");
    let mut s = cluster3(&t);
    t.write(
        "nodes/a/qemu-server/100.conf",
        "cores: 1\nmemory: 2048\nname: vm100\n",
    );
    t.write("nodes/a/qemu-server/101.conf", "memory: 512\n");
    let v = SimTarget::new(t.path()).state().unwrap();
    let mut st = v.clone();
    st.running_guests.insert(100);
    t.write(sim::EXTRA_FILE, st.render());
    let applied = s
        .apply(&migrate_step(100, GuestType::Qemu, "a", "b", true))
        .unwrap();
    assert_eq!(applied.duration_ms, 2048, "2048 MiB at 1000 MiB/s");
    assert!(!t.path().join("nodes/a/qemu-server/100.conf").exists());
    assert_eq!(
        t.read("nodes/b/qemu-server/100.conf"),
        "cores: 1\nmemory: 2048\nname: vm100\n"
    );
    let vmlist = t.read(".vmlist");
    assert!(
        vmlist.starts_with("{\n\"version\": ")
            && vmlist.contains("\"100\": { \"node\": \"b\", \"type\": \"qemu\", \"version\": ")
            && vmlist.contains("\"101\": { \"node\": \"a\", \"type\": \"qemu\", \"version\": ")
            && vmlist.ends_with("}\n\n}\n"),
        "{vmlist}"
    );
    let o = s.observe().unwrap();
    assert_eq!(o.guests[&100].node, "b");
    assert!(o.guests[&100].running);
    // stopped guest: offline, no memory copied
    let applied = s
        .apply(&migrate_step(101, GuestType::Qemu, "a", "c", false))
        .unwrap();
    assert_eq!(applied.duration_ms, 0);
}

#[test]
fn migration_refusals() {
    let t = Tmp::new("migrate-no");
    let mut s = cluster3(&t);
    t.write("nodes/a/qemu-server/100.conf", "memory: 2048\n");
    t.write(
        "nodes/a/qemu-server/102.conf",
        "memory: 1024\nlock: backup\n[snap]\nlock: snapshot\n",
    );
    t.write("nodes/a/lxc/200.conf", "memory: 512\n");
    let mut st = s.state().unwrap();
    st.running_guests.extend([100, 200]);
    t.write(sim::EXTRA_FILE, st.render());
    assert_refused(
        &t,
        &mut s,
        &migrate_step(100, GuestType::Qemu, "a", "b", false),
        "can't migrate running VM without --online",
    );
    assert_refused(
        &t,
        &mut s,
        &migrate_step(200, GuestType::Lxc, "a", "b", false),
        "can't migrate running container without --online or --restart",
    );
    assert_refused(
        &t,
        &mut s,
        &migrate_step(100, GuestType::Qemu, "a", "a", true),
        "target is local node.",
    );
    assert_refused(
        &t,
        &mut s,
        &migrate_step(102, GuestType::Qemu, "a", "b", true),
        "VM is locked (backup)",
    );
    assert_refused(
        &t,
        &mut s,
        &migrate_step(100, GuestType::Qemu, "a", "zz", true),
        "no such cluster node 'zz'",
    );
    assert_refused(
        &t,
        &mut s,
        &migrate_step(100, GuestType::Qemu, "b", "c", true),
        "Configuration file 'nodes/b/qemu-server/100.conf' does not exist",
    );
    sim::set_power(t.path(), "c", false).unwrap();
    assert_refused(
        &t,
        &mut s,
        &migrate_step(100, GuestType::Qemu, "a", "c", true),
        "Unable to get IP for node 'c' - node offline?",
    );
    sim::set_power(t.path(), "b", false).unwrap();
    assert_refused(
        &t,
        &mut s,
        &migrate_step(100, GuestType::Qemu, "a", "b", true),
        "cluster not ready - no quorum?",
    );
}

// ---------------------------------------------------------------------------------------
// wait

#[test]
fn wait_is_never_faked() {
    let t = Tmp::new("wait");
    let mut s = cluster3(&t);
    let w = step(
        StepKind::Wait(Wait {
            gate: Gate::PowerOff { node: "c".into() },
        }),
        "c",
    );
    assert_refused(&t, &mut s, &w, "gate not satisfied: c is still powered on");
    sim::set_power(t.path(), "c", false).unwrap();
    assert!(s.apply(&w).is_ok());
    let q = step(
        StepKind::Wait(Wait {
            gate: Gate::ConfigVersion {
                version: 3,
                lagging: vec![],
            },
        }),
        "a",
    );
    assert!(s.apply(&q).is_ok());
    let ev = step(
        StepKind::Wait(Wait {
            gate: Gate::Evacuate {
                node: "a".into(),
                guests: vec![],
            },
        }),
        "a",
    );
    t.write("nodes/a/lxc/300.conf", "memory: 1\n");
    assert_refused(
        &t,
        &mut s,
        &ev,
        "gate not satisfied: nodes/a still holds guests",
    );
}

// ---------------------------------------------------------------------------------------
// remove_node

fn remove_step(node: &str, via: &str, from: u64, remaining: &[N<'_>]) -> Step {
    step(
        StepKind::RemoveNode(RemoveNode {
            node: node.into(),
            via: via.into(),
            from_version: from,
            to_version: from + 1,
            corosync_conf: conf(from + 1, remaining, ""),
        }),
        node,
    )
}

#[test]
fn remove_node_leaves_the_directory_behind() {
    let t = Tmp::new("remove");
    let mut s = cluster3(&t);
    t.write("nodes/c/qemu-server/150.conf", "memory: 1024\n");
    let two = [("a", 1, A1), ("b", 2, A2)];
    assert_refused(
        &t,
        &mut s,
        &remove_step("c", "a", 3, &two),
        "'c' is still in the membership",
    );
    assert_refused(
        &t,
        &mut s,
        &remove_step("c", "c", 3, &two),
        "Cannot delete myself from cluster!",
    );
    sim::set_power(t.path(), "c", false).unwrap();
    s.apply(&remove_step("c", "a", 3, &two)).unwrap();
    assert!(t.path().join("nodes/c/qemu-server/150.conf").exists());
    let o = s.observe().unwrap();
    assert_eq!(o.config_version(), 4);
    assert!(!o.is_joined("c"));
    assert_eq!(o.leftover_node_dirs, vec!["c".to_string()]);
    assert_eq!(o.guests[&150].node, "c");
    assert_eq!((o.membership.expected_votes, o.membership.quorum), (2, 2));
    assert!(t.read(".vmlist").contains("\"150\": { \"node\": \"c\""));
    // a removed node cannot join again
    sim::set_power(t.path(), "c", true).unwrap();
    fs::remove_file(t.path().join("nodes/c/qemu-server/150.conf")).unwrap();
    assert_refused(
        &t,
        &mut s,
        &join_step("c", 3, A3, "a", 4, &all3()),
        "* authentication key '/etc/corosync/authkey' already exists",
    );
    assert_refused(
        &t,
        &mut s,
        &remove_step("c", "a", 4, &two),
        "Node/IP: c is not a known host of the cluster.",
    );
}

#[test]
fn remove_node_needs_quorum() {
    let t = Tmp::new("remove-no");
    let mut s = cluster3(&t);
    sim::set_power(t.path(), "c", false).unwrap();
    sim::set_power(t.path(), "b", false).unwrap();
    assert_refused(
        &t,
        &mut s,
        &remove_step("c", "a", 3, &[("a", 1, A1), ("b", 2, A2)]),
        "cfs-lock 'file-corosync_conf' error: no quorum!",
    );
}

// ---------------------------------------------------------------------------------------
// observe

#[test]
fn observe_plain_etc_pve_copy_without_extra_file() {
    let t = Tmp::new("plain");
    t.write("corosync.conf", conf(7, &all3(), ""));
    t.write(
        ".members",
        "{\n\"nodename\": \"b\",\n\"version\": 12,\n\"cluster\": { \"name\": \"lab\", \"version\": 7, \"nodes\": 3, \"quorate\": 1 },\n\"nodelist\": {\n  \"a\": { \"id\": 1, \"online\": 1, \"ip\": \"192.168.1.1\"},\n  \"b\": { \"id\": 2, \"online\": 1, \"ip\": \"192.168.1.2\"},\n  \"c\": { \"id\": 3, \"online\": 0}\n  }\n}\n",
    );
    t.write("datacenter.cfg", "keyboard: en-us\n");
    t.write(
        "nodes/a/qemu-server/100.conf",
        "#desc\nmemory: current=4096,max=8192\nlock: migrate\n[snap1]\nlock: snapshot\nmemory: 1\n",
    );
    t.write("nodes/a/qemu-server/100.conf.bak", "memory: 9\n");
    t.write("nodes/b/lxc/200.conf", "hostname: ct\nmemory: 512\n");
    t.write("nodes/gone/qemu-server/300.conf", "memory: 256\n");
    t.write("nodes/empty/lxc/.keep", "");
    let before = snapshot(t.path());
    let mut s = SimTarget::new(t.path());
    let o = s.observe().unwrap();
    assert_eq!(before, snapshot(t.path()), "observe must never write");
    assert_eq!(o.config_version(), 7);
    let online: Vec<&str> = o.membership.online.iter().map(String::as_str).collect();
    assert_eq!(online, ["a", "b"]);
    assert!(o.membership.quorate);
    assert_eq!(o.hosts.len(), 3);
    assert!(!o.hosts["c"].online);
    assert_eq!(o.hosts["a"].memory_mib, 0);
    assert_eq!(o.membership.runtime_expected, None);
    assert_eq!(o.guests.len(), 3);
    let g = &o.guests[&100];
    assert_eq!(
        (g.lock.as_deref(), g.memory_mib, g.running),
        (Some("migrate"), 4096, false)
    );
    assert_eq!(o.guests[&200].gtype, GuestType::Lxc);
    assert_eq!(o.leftover_node_dirs, vec!["gone".to_string()]);
    assert_eq!(o.datacenter.get("keyboard"), Some("en-us"));
    assert_eq!(o.node_config_versions.len(), 2);
    assert_eq!(o.lock, None);

    // the first change writes the extra file and keeps the known ips in .members
    s.apply(&expected_step(2, "a")).unwrap();
    assert!(t.path().join(sim::EXTRA_FILE).exists());
    let m = t.read(".members");
    assert!(m.contains("\"nodename\": \"b\",\n\"version\": 13,"), "{m}");
    assert!(
        m.contains("\"a\": { \"id\": 1, \"online\": 1, \"ip\": \"192.168.1.1\"}"),
        "{m}"
    );
}

#[test]
fn observe_reports_parse_errors_with_location_and_the_lock_holder() {
    let t = Tmp::new("parse");
    t.write("corosync.conf", "totem {\n  cluster_name: c\n  oops\n}\n");
    let mut s = SimTarget::new(t.path());
    match s.observe() {
        Err(TargetError::Parse { path, message }) => {
            assert!(path.ends_with("corosync.conf"), "{path:?}");
            assert!(message.starts_with("3:3: "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    t.write("corosync.conf", conf(1, &[("a", 1, A1)], ""));
    t.write("priv/lock/pve-gitops/holder", "a\n");
    assert_eq!(s.observe().unwrap().lock.as_deref(), Some("a"));
    t.write(sim::EXTRA_FILE, "{\"format\": 2, \"hosts\": {}}");
    let e = s.observe().unwrap_err().to_string();
    assert!(e.contains("format 2 is not supported"), "{e}");
}

// ---------------------------------------------------------------------------------------
// CLI

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pve-gitops"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_init_power_status() {
    let t = Tmp::new("cli");
    let dir = t.path().join("sim");
    let d = dir.to_str().unwrap();
    let (code, out, err) = cli(&["sim", "init", d, "--nodes", "3", "--guests", "4"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 host(s)") && out.contains("4 running qemu guest(s) 100..103 on pve1"),
        "{out}"
    );
    assert!(dir.join("nodes/pve1/qemu-server/103.conf").is_file());
    assert!(dir.join("nodes/pve3/lxc").is_dir());
    assert_eq!(
        fs::read_to_string(dir.join(".members")).unwrap(),
        "{\n\"nodename\": \"pve1\",\n\"version\": 1\n}\n"
    );
    let (code, _, err) = cli(&["sim", "init", d]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    let (code, _, _) = cli(&["sim", "init", d, "--names", "x,y", "--force"]);
    assert_eq!(code, 0);
    assert!(!dir.join("nodes/pve1").exists());

    let (code, out, err) = cli(&["sim", "power-off", d, "y"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("y powered off"), "{out}");
    let (code, _, err) = cli(&["sim", "power-off", d, "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown host 'nope' (known hosts: x, y)"),
        "{err}"
    );

    let (code, out, _) = cli(&["sim", "status", d]);
    assert_eq!(code, 0);
    assert!(out.contains("no cluster yet"), "{out}");
    assert!(out.contains("  y  off"), "{out}");
    let (code, _, err) = cli(&["sim", "status", t.path().join("missing").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, _) = cli(&["sim", "power-on", d, "y"]);
    assert_eq!(code, 0);
}

#[test]
fn cli_status_of_a_cluster_shows_quorum_arithmetic() {
    let t = Tmp::new("cli-status");
    let _s = cluster3(&t);
    sim::set_power(t.path(), "c", false).unwrap();
    let (code, out, _) = cli(&["sim", "status", t.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("cluster lab: config_version 3, 3 node(s)"),
        "{out}"
    );
    assert!(
        out.contains("quorate: 2 of 3 expected votes present, quorum 2 (3 / 2 + 1)"),
        "{out}"
    );
    assert!(
        out.contains("c  off  member, nodeid 3, 1 vote(s), not in the membership"),
        "{out}"
    );
}

#[test]
fn cli_init_from_manifest() {
    let t = Tmp::new("cli-from");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-node.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    let (cluster, _) =
        pve_gitops_schema::validate::parse_cluster("three-node.yaml", &text).unwrap();
    let dir = t.path().join("sim");
    let (code, out, err) = cli(&[
        "sim",
        "init",
        dir.to_str().unwrap(),
        "--from",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for n in &cluster.spec.nodes {
        assert!(out.contains(&n.name), "{out}");
        assert!(dir.join("nodes").join(&n.name).is_dir());
    }
    let (code, _, err) = cli(&[
        "sim",
        "init",
        t.path().join("other").to_str().unwrap(),
        "--from",
        t.path().join("missing.yaml").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.yaml"), "{err}");
}
