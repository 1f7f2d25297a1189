//! Parsing of the documented outputs the PVE targets read, from self-written fixtures that
//! follow reference/domain.md §3 and §5 (`tests/fixtures/pve/outputs/`): `pvecm status`,
//! `corosync-quorumtool -s -p` (corosync 3 and 2), `corosync-cmapctl`, task status and log,
//! join information, UPIDs, version strings.

mod common;

use common::read_fixture;
use pve_gitops::target::pve::parse::{
    ip_addr_lists_address, is_fingerprint, parse_cmap, parse_quorum_status, runtime_members,
    JoinInfo, TaskLogLine, TaskStatus, Upid,
};
use pve_gitops::target::pve::Generation;

fn fixture(name: &str) -> String {
    read_fixture(&format!("pve/outputs/{name}"))
}

#[test]
fn pvecm_status_with_header_and_hex_ids() {
    let s = parse_quorum_status(&fixture("pvecm-status.txt")).unwrap();
    assert_eq!(s.cluster_name.as_deref(), Some("prod"));
    assert_eq!(s.config_version, Some(5));
    assert!(s.quorate);
    assert_eq!(s.local_nodeid, 1);
    assert_eq!((s.expected_votes, s.total_votes, s.quorum), (3, 3, 2));
    assert_eq!(s.highest_expected, Some(3));
    assert_eq!(s.flags, vec!["Quorate"]);
    assert_eq!(
        s.members,
        vec![
            (1, 1, "10.0.0.1".to_string()),
            (2, 1, "10.0.0.2".to_string()),
            (3, 1, "10.0.0.3".to_string())
        ]
    );
}

#[test]
fn quorumtool_machine_parsable_with_qdevice_column() {
    let s = parse_quorum_status(&fixture("quorumtool-s-p.txt")).unwrap();
    assert_eq!(s.cluster_name, None);
    assert_eq!((s.expected_votes, s.total_votes, s.quorum), (3, 2, 2));
    assert_eq!(
        s.members,
        vec![(1, 1, "pve1".to_string()), (2, 1, "pve2".to_string())]
    );
}

#[test]
fn quorumtool_corosync2_not_quorate() {
    let s = parse_quorum_status(&fixture("quorumtool-cs2-blocked.txt")).unwrap();
    assert!(!s.quorate);
    assert_eq!(s.local_nodeid, 1_084_783_375);
    assert_eq!(s.quorum, 2);
    assert_eq!(s.flags, vec!["2Node", "WaitForAll"]);
    assert_eq!(s.members, vec![(1_084_783_375, 1, "pve5a".to_string())]);
}

#[test]
fn truncated_status_is_an_error_not_a_panic() {
    let full = fixture("pvecm-status.txt");
    for cut in [0, 10, 100, 300, 500] {
        let _ = parse_quorum_status(&full[..cut.min(full.len())]);
    }
    assert!(parse_quorum_status("Quorate: Maybe\n").is_err());
    assert!(parse_quorum_status(&full.replace("Membership information", "")).is_ok());
    assert!(parse_quorum_status(&full.replace("    Nodeid      Votes Name", "")).is_err());
}

#[test]
fn cmap_runtime_members_skip_nothing_and_keep_left_status() {
    let entries = parse_cmap(&fixture("cmap-runtime-members.txt")).unwrap();
    assert_eq!(entries[1].value, "r(0) ip(10.0.0.1) ");
    let m = runtime_members(&entries);
    assert_eq!(m[&1].config_version, Some(5));
    assert_eq!(m[&2].config_version, Some(4));
    assert_eq!(m[&3].status.as_deref(), Some("left"));
    let one = parse_cmap(&fixture("cmap-config-version.txt")).unwrap();
    let pairs: Vec<(&str, &str)> = one
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(pairs, vec![("totem.config_version", "5")]);
    assert!(parse_cmap("not a cmap line\n").is_err());
}

#[test]
fn task_status_and_log() {
    let running: TaskStatus = serde_json::from_str(&fixture("task-status-running.json")).unwrap();
    assert!(!running.finished());
    let ok: TaskStatus = serde_json::from_str(&fixture("task-status-ok.json")).unwrap();
    assert!(ok.succeeded());
    assert_eq!(ok.task_type.as_deref(), Some("qmigrate"));
    let failed: TaskStatus = serde_json::from_str(&fixture("task-status-failed.json")).unwrap();
    assert!(failed.finished() && !failed.succeeded());
    assert_eq!(failed.exitstatus.as_deref(), Some("migration aborted"));
    let log: Vec<TaskLogLine> = serde_json::from_str(&fixture("task-log-failed.json")).unwrap();
    assert_eq!(
        log.last().map(|l| l.t.as_str()),
        Some("TASK ERROR: migration aborted")
    );
    let warn: TaskStatus =
        serde_json::from_str(r#"{"status":"stopped","exitstatus":"WARNINGS: 2"}"#).unwrap();
    assert!(warn.succeeded());
}

#[test]
fn upids() {
    let u = Upid::parse("UPID:pve1:00003039:0045B352:681A0A70:qmigrate:100:root@pam:").unwrap();
    assert_eq!(
        (u.node.as_str(), u.task_type.as_str()),
        ("pve1", "qmigrate")
    );
    assert!(Upid::parse("UPID:pve1:1").is_none());
    assert!(Upid::parse("nope").is_none());
    let found = Upid::find(
        "Requesting HA migration for VM 100 to node pve2\nUPID:pve1:00000001:00000002:681A0A70:hamigrate:100:root@pam:\n",
    )
    .unwrap();
    assert_eq!(found.task_type, "hamigrate");
    assert!(Upid::find("no task here").is_none());
}

#[test]
fn join_information() {
    let j: JoinInfo = serde_json::from_str(&fixture("join-info.json")).unwrap();
    assert_eq!(j.preferred_node.as_deref(), Some("pve1"));
    let n = j.node("pve2").unwrap();
    assert_eq!(n.pve_addr.as_deref(), Some("192.168.1.12"));
    assert_eq!(n.nodeid, Some(2));
    assert!(is_fingerprint(n.pve_fp.as_deref().unwrap()));
    assert!(!is_fingerprint("AB:CD"));
    let bad = vec!["ZZ"; 32].join(":");
    assert!(!is_fingerprint(&bad));
}

#[test]
fn generations() {
    assert_eq!(
        Generation::from_version_output(&fixture("corosync-v3.txt")),
        Some(Generation::Corosync3)
    );
    assert_eq!(
        Generation::from_version_output(&fixture("corosync-v2.txt")),
        Some(Generation::Corosync2)
    );
    assert_eq!(
        Generation::from_version_output(&fixture("pveversion-8.txt")),
        Some(Generation::Corosync3)
    );
    assert_eq!(
        Generation::from_version_output(&fixture("pveversion-5.txt")),
        Some(Generation::Corosync2)
    );
    assert_eq!(Generation::from_version_output("garbage"), None);
    let cs2 = pve_gitops_schema::corosync::Document::parse(
        "totem {\n  version: 2\n  rrp_mode: passive\n  interface {\n    ringnumber: 0\n    bindnetaddr: 10.0.0.0\n  }\n}\n",
    )
    .unwrap();
    assert_eq!(Generation::from_conf(&cs2.view()), Generation::Corosync2);
    let cs3 = pve_gitops_schema::corosync::Document::parse(
        "totem {\n  version: 2\n  link_mode: passive\n  interface {\n    linknumber: 0\n  }\n}\n",
    )
    .unwrap();
    assert_eq!(Generation::from_conf(&cs3.view()), Generation::Corosync3);
}

#[test]
fn ip_addr_output() {
    assert!(ip_addr_lists_address(&fixture("ip-addr-present.txt")));
    assert!(!ip_addr_lists_address(""));
}
