//! The `pve-api` target against a local HTTPS server (rustls, certificates generated here with
//! rcgen) on 127.0.0.1:0 that serves the documented JSON shapes of reference/domain.md §5 and
//! records every request. No real Proxmox VE runs here.
//!
//! Checked: fingerprint pinning accepted and rejected, a CA bundle accepted and a foreign one
//! rejected, the token header on every request and never in an error, observe, every apply
//! path (options, migrate with task polling and the task log on failure, delnode with the
//! leftover report, create/join on the host's own API), refusals of what the API cannot do,
//! retries.

mod common;

use common::https::{
    ca_and_leaf, client, cluster_handler, data, ok, self_signed, serve, standalone_handler, Server,
    SECRET, TOKEN,
};
use common::{datacenter_step, migrate_step, read_fixture, remove_pve3_step, step, Tmp};
use pve_gitops::plan::step::{
    CreateCluster, JoinNode, Method, SetExpectedVotes, StepKind, UpdateCorosync,
};
use pve_gitops::target::pve_api::client::{ApiClient, Token};
use pve_gitops::target::pve_api::http::Trust;
use pve_gitops::target::pve_api::ApiTarget;
use pve_gitops::target::{Target, TargetError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn pinned(url: &str, fp: &str) -> ApiTarget {
    ApiTarget::from_clients(
        client(url, &Trust::Pins(vec![fp.to_lowercase()])),
        BTreeMap::new(),
    )
}

#[test]
fn pinned_fingerprint_observe_and_token_header() {
    let c = self_signed();
    let srv = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let mut t = pinned(&srv.url, &c.fp);
    let o = t.observe().unwrap();
    assert_eq!(o.config_version(), 5);
    assert!(o.membership.quorate);
    assert_eq!(
        o.membership.online.iter().cloned().collect::<Vec<_>>(),
        vec!["pve1", "pve2"]
    );
    assert!(!o.hosts["pve3"].online);
    assert_eq!(o.node_votes().len(), 3);
    let view = o.corosync.as_ref().unwrap().view();
    assert_eq!(view.totem.cluster_name.as_deref(), Some("prod"));
    assert_eq!(view.totem.interfaces[&0].knet_link_priority, Some(10));
    assert_eq!(
        o.datacenter.get("migration"),
        Some("secure,network=10.1.2.0/24")
    );
    assert_eq!(o.datacenter.get("max_workers"), Some("4"));
    assert!(o.guests[&100].running);
    assert_eq!(o.guests[&100].memory_mib, 2048);
    assert_eq!(o.guests[&101].lock.as_deref(), Some("backup"));
    assert!(
        !o.guests.contains_key(&9000),
        "templates are not guests to place"
    );
    let reqs = srv.requests();
    assert!(reqs.len() >= 5);
    assert!(reqs
        .iter()
        .all(|r| r.auth.as_deref() == Some(&format!("PVEAPIToken={TOKEN}")[..])));
    assert!(reqs
        .iter()
        .any(|r| r.target == "/api2/json/cluster/resources?type=vm"));
}

#[test]
fn wrong_fingerprint_is_rejected_without_leaking_the_token() {
    let c = self_signed();
    let srv = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let other = self_signed();
    let mut t = pinned(&srv.url, &other.fp);
    let err = t.observe().unwrap_err().to_string();
    assert!(err.contains("GET /cluster/status"), "{err}");
    assert!(err.contains("not pinned"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        srv.requests().is_empty(),
        "nothing may be sent to an unpinned server"
    );
}

#[test]
fn ca_bundle_accepted_and_foreign_ca_rejected() {
    let (ca_pem, leaf) = ca_and_leaf();
    let srv = serve(
        leaf.cert.clone(),
        leaf.key.clone_key(),
        cluster_handler(|_| None),
    );
    let dir = std::env::temp_dir().join(format!("pve-gitops-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("ca.pem");
    std::fs::write(&good, &ca_pem).unwrap();
    let mut t = ApiTarget::from_clients(client(&srv.url, &Trust::CaBundle(good)), BTreeMap::new());
    assert!(t.observe().is_ok());
    let (other_ca, _) = ca_and_leaf();
    let bad = dir.join("other.pem");
    std::fs::write(&bad, other_ca).unwrap();
    let mut t = ApiTarget::from_clients(client(&srv.url, &Trust::CaBundle(bad)), BTreeMap::new());
    let err = t.observe().unwrap_err().to_string();
    assert!(
        err.contains("UnknownIssuer") || err.contains("invalid peer certificate"),
        "{err}"
    );
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(ApiClient::new(
        &srv.url,
        Token::parse(TOKEN).unwrap(),
        &Trust::CaBundle(empty)
    )
    .is_err());
}

#[test]
fn http_errors_name_endpoint_and_status_never_the_token() {
    let c = self_signed();
    let srv = serve(
        c.cert.clone(),
        c.key.clone_key(),
        cluster_handler(|r| {
            (r.target == "/api2/json/cluster/options").then(|| {
                (
                    403,
                    format!("Permission check failed (/, Sys.Audit) {SECRET}"),
                    data("null"),
                )
            })
        }),
    );
    let mut t = pinned(&srv.url, &c.fp);
    let err = t.observe().unwrap_err().to_string();
    assert!(
        err.contains("GET /cluster/options: HTTP 403 Permission check failed"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");
    assert!(format!("{t:?}").contains("root@pam!gitops"));
    assert!(!format!("{t:?}").contains(SECRET));
}

#[test]
fn get_is_retried_writes_are_not() {
    let c = self_signed();
    let n = Arc::new(Mutex::new(0));
    let n2 = n.clone();
    let srv = serve(
        c.cert.clone(),
        c.key.clone_key(),
        cluster_handler(move |r| {
            if r.target == "/api2/json/cluster/status" {
                let mut k = n2.lock().unwrap();
                *k += 1;
                if *k <= 2 {
                    return Some((503, "Service Unavailable".into(), String::new()));
                }
            }
            (r.method == "PUT").then(|| (503, "Service Unavailable".into(), String::new()))
        }),
    );
    let mut t = pinned(&srv.url, &c.fp);
    assert!(t.observe().is_ok());
    assert_eq!(*n.lock().unwrap(), 3);
    let s = datacenter_step("pve1", "max_workers", Some("4"), Some("8"));
    let err = t.apply(&s).unwrap_err().to_string();
    assert!(err.contains("PUT /cluster/options: HTTP 503"), "{err}");
    assert_eq!(
        srv.requests().iter().filter(|r| r.method == "PUT").count(),
        1
    );
}

#[test]
fn set_datacenter_puts_one_key() {
    let c = self_signed();
    let srv = serve(
        c.cert.clone(),
        c.key.clone_key(),
        cluster_handler(|r| (r.method == "PUT").then(|| ok(data("null")))),
    );
    let mut t = pinned(&srv.url, &c.fp);
    let s = datacenter_step(
        "pve1",
        "migration",
        Some("secure,network=10.1.2.0/24"),
        Some("insecure,network=10.1.3.0/24"),
    );
    t.apply(&s).unwrap();
    let put = srv.first("PUT");
    assert_eq!(put.target, "/api2/json/cluster/options");
    assert_eq!(put.body, "migration=insecure%2Cnetwork%3D10.1.3.0%2F24");
    let unset = datacenter_step("pve1", "max_workers", Some("4"), None);
    t.apply(&unset).unwrap();
    assert!(srv
        .requests()
        .iter()
        .any(|r| r.body == "delete=max_workers"));
    let stale = datacenter_step("pve1", "keyboard", Some("de"), Some("fr"));
    assert!(matches!(t.apply(&stale), Err(TargetError::Stale { .. })));
}

const UPID: &str = "UPID:pve1:00003039:0045B352:681A0A70:qmigrate:100:root@pam:";

/// A cluster whose migration task of guest 100 runs for one status poll, then ends (failed
/// or ok); the guest shows up on pve2 only on the second `/cluster/resources` read after the
/// task ended (as with an HA-managed guest, whose task only queues the migration).
fn migrate_server(fail: bool) -> (Server, String) {
    let c = self_signed();
    let polls = Arc::new(Mutex::new(0));
    let reads_after = Arc::new(Mutex::new(0));
    let srv = serve(
        c.cert.clone(),
        c.key.clone_key(),
        cluster_handler(move |r| {
            if r.target.starts_with("/api2/json/cluster/resources") && *polls.lock().unwrap() >= 2 {
                let mut n = reads_after.lock().unwrap();
                *n += 1;
                if *n >= 2 {
                    let text = read_fixture("pve/api/resources.json").replacen(
                        "\"node\":\"pve1\",\"name\":\"web\"",
                        "\"node\":\"pve2\",\"name\":\"web\"",
                        1,
                    );
                    return Some(ok(text));
                }
            }
            let status_path = "/api2/json/nodes/pve1/tasks/UPID%3Apve1%3A00003039%3A0045B352%3A681A0A70%3Aqmigrate%3A100%3Aroot%40pam%3A";
            if r.method == "POST" && r.target == "/api2/json/nodes/pve1/qemu/100/migrate" {
                return Some(ok(data(&format!("\"{UPID}\""))));
            }
            if r.target == format!("{status_path}/status") {
                let mut p = polls.lock().unwrap();
                *p += 1;
                let which = if *p < 2 {
                    "task-status-running.json"
                } else if fail {
                    "task-status-failed.json"
                } else {
                    "task-status-ok.json"
                };
                let text = read_fixture(&format!("pve/outputs/{which}"));
                return Some(ok(data(&text)));
            }
            if r.target.starts_with(&format!("{status_path}/log")) {
                let text = read_fixture("pve/outputs/task-log-failed.json");
                return Some(ok(data(&text)));
            }
            None
        }),
    );
    (srv, c.fp)
}

#[test]
fn migrate_posts_and_polls_the_task() {
    let (srv, fp) = migrate_server(false);
    let mut t = pinned(&srv.url, &fp).with_local_disks(true);
    let done = t
        .apply(&migrate_step(Some("10.1.2.0/24"), Some("secure")))
        .unwrap();
    assert!(done.message.contains("qemu 100 pve1 -> pve2"));
    let reqs = srv.requests();
    let post = reqs.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(
        post.body,
        "target=pve2&online=1&migration_network=10.1.2.0%2F24&migration_type=secure&with-local-disks=1"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.target.ends_with("/status"))
            .count()
            >= 2
    );
    // Done only once the guest showed up on pve2, not when the task ended.
    let resources = reqs
        .iter()
        .filter(|r| r.target.starts_with("/api2/json/cluster/resources"))
        .count();
    assert!(resources >= 3, "{resources} reads of /cluster/resources");
}

#[test]
fn failed_migration_reports_the_task_log() {
    let (srv, fp) = migrate_server(true);
    let mut t = pinned(&srv.url, &fp);
    let err = t
        .apply(&migrate_step(Some("10.1.2.0/24"), Some("secure")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ended with migration aborted"), "{err}");
    assert!(
        err.contains("storage 'local-lvm' is not available on node 'pve2'"),
        "{err}"
    );
    assert!(srv
        .requests()
        .iter()
        .any(|r| r.target.contains("/log?start=0&limit=500")));
}

#[test]
fn delnode_reports_leftover_guests() {
    let c = self_signed();
    let srv = serve(
        c.cert.clone(),
        c.key.clone_key(),
        cluster_handler(|r| (r.method == "DELETE").then(|| ok(data("null")))),
    );
    let mut t = pinned(&srv.url, &c.fp);
    t.observe().unwrap();
    let s = remove_pve3_step();
    let done = t.apply(&s).unwrap();
    assert!(
        done.message
            .contains("/etc/pve/nodes/pve3 still holds guest configs (qemu 101)"),
        "{}",
        done.message
    );
    assert!(srv
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.target == "/api2/json/cluster/config/nodes/pve3"));
    // Planned from another config_version (someone changed the nodelist since): stale,
    // nothing deleted.
    let deletes = || {
        srv.requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count()
    };
    let before = deletes();
    let mut old = s.clone();
    if let StepKind::RemoveNode(rm) = &mut old.kind {
        rm.from_version = 4;
    }
    assert!(
        matches!(t.apply(&old), Err(TargetError::Stale { .. })),
        "a step planned from config_version 4 must be stale at 5"
    );
    assert_eq!(deletes(), before);
    // Never the node behind the API itself.
    let mut me = s.clone();
    if let StepKind::RemoveNode(rm) = &mut me.kind {
        rm.node = "pve1".into();
    }
    assert!(t
        .apply(&me)
        .unwrap_err()
        .to_string()
        .contains("Cannot delete myself"));
}

#[test]
fn what_the_api_cannot_do_is_refused() {
    let c = self_signed();
    let srv = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let mut t = pinned(&srv.url, &c.fp);
    let ev = step(
        StepKind::SetExpectedVotes(SetExpectedVotes {
            expected: 2,
            from: 3,
            present: 2,
        }),
        "pve1",
    );
    let up = step(
        StepKind::UpdateCorosync(UpdateCorosync {
            changes: vec!["x".into()],
            method: Method::Reload,
            method_reason: String::new(),
            restart_order: vec![],
            from_version: 5,
            to_version: 6,
            corosync_conf: String::new(),
        }),
        "pve1",
    );
    for s in [ev, up] {
        match t.apply(&s) {
            Err(TargetError::Refused { reason, .. }) => {
                assert!(reason.contains("needs the pve node target"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(srv.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn join_runs_on_the_joining_hosts_api_with_the_clusters_fingerprint() {
    let c = self_signed();
    let main = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let j = self_signed();
    let join_upid = "UPID:pve4:00000100:00000200:681A0A70:clusterjoin::root@pam:";
    let joiner = serve(
        j.cert.clone(),
        j.key.clone_key(),
        standalone_handler("/api2/json/cluster/config/join", join_upid),
    );
    let dir = Tmp::new("join");
    let pw = dir.write("pw", "r00t-pw\n");
    let trust = Trust::Pins(vec![c.fp.clone(), j.fp.clone()]);
    let nodes: BTreeMap<String, ApiClient> =
        [("pve4".to_string(), client(&joiner.url, &trust))].into();
    let mut t = ApiTarget::from_clients(client(&main.url, &trust), nodes)
        .join_password_file(Some(pw))
        .manifest_nodes(vec![
            "pve1".into(),
            "pve2".into(),
            "pve3".into(),
            "pve4".into(),
        ]);
    let o = t.observe().unwrap();
    assert!(o.hosts["pve4"].online);
    let s = step(
        StepKind::JoinNode(JoinNode {
            node: "pve4".into(),
            nodeid: 4,
            quorum_votes: 1,
            links: [(0, "10.0.0.4".to_string())].into(),
            via: "pve2".into(),
            from_version: 5,
            to_version: 6,
            corosync_conf: String::new(),
        }),
        "pve4",
    );
    assert!(t.can_run(&s).is_ok());
    t.apply(&s).unwrap();
    let post = joiner.first("POST");
    assert_eq!(
        post.body,
        "hostname=192.168.1.12&password=r00t-pw&fingerprint=11%3A22%3A33%3A44%3A55%3A66%3A77%3A88%3A99%3A00%3AAA%3ABB%3ACC%3ADD%3AEE%3AFF%3A11%3A22%3A33%3A44%3A55%3A66%3A77%3A88%3A99%3A00%3AAA%3ABB%3ACC%3ADD%3AEE%3AFF&nodeid=4&votes=1&link0=10.0.0.4"
    );
    // Without an endpoint for the host, the join cannot run from here.
    let mut t2 = pinned(&main.url, &c.fp);
    t2.observe().unwrap();
    assert!(t2.can_run(&s).unwrap_err().contains("--api-node pve4="));
}

#[test]
fn create_runs_on_the_founders_api() {
    let c = self_signed();
    let upid = "UPID:pve4:00000100:00000200:681A0A70:clustercreate::root@pam:";
    let srv = serve(
        c.cert.clone(),
        c.key.clone_key(),
        standalone_handler("/api2/json/cluster/config", upid),
    );
    let mut t = pinned(&srv.url, &c.fp);
    let o = t.observe().unwrap();
    assert!(o.corosync.is_none());
    let conf = "totem {\n  interface {\n    linknumber: 0\n    knet_link_priority: 15\n  }\n}\n";
    let s = step(
        StepKind::CreateCluster(CreateCluster {
            cluster_name: "prod".into(),
            founder: "pve4".into(),
            nodeid: 1,
            quorum_votes: 1,
            links: [(0, "10.0.0.4".to_string())].into(),
            corosync_conf: conf.into(),
        }),
        "pve4",
    );
    assert!(t.can_run(&s).is_ok());
    t.apply(&s).unwrap();
    let post = srv.first("POST");
    assert_eq!(
        post.body,
        "clustername=prod&nodeid=1&votes=1&link0=address%3D10.0.0.4%2Cpriority%3D15"
    );
}

#[test]
fn token_file_shapes() {
    assert!(Token::parse("root@pam!gitops=abc").is_ok());
    assert!(Token::parse("PVEAPIToken=root@pam!gitops=abc").is_ok());
    for bad in ["root@pam=abc", "rootpam!x=abc", "root@pam!x=", "root@pam!x"] {
        let e = Token::parse(bad).unwrap_err();
        assert!(!e.contains("abc"), "{e}");
    }
    assert_eq!(format!("{:?}", Token::parse(TOKEN).unwrap()), "Token(***)");
}
