//! The `pve` target against a copy of a fixture `/etc/pve` tree and a scripted command
//! runner (no real Proxmox VE here): observe, every apply rule, the join preflight with all
//! its failures at once, secrets kept out of argv and messages, `can_run`.

mod common;

use common::{
    copy_dir, datacenter_step, fixture_path, migrate_step, read_fixture, remove_pve3_step, step,
    Tmp,
};
use pve_gitops::observed::Observed;
use pve_gitops::plan::step::{
    Gate, JoinNode, Method, SetExpectedVotes, Step, StepKind, UpdateCorosync, Wait,
};
use pve_gitops::target::pve::runner::{Output, Runner, ScriptedRunner};
use pve_gitops::target::pve::{Generation, PveOptions, PveTarget};
use pve_gitops::target::{Target, TargetError};
use pve_gitops_schema::spec::GuestType;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixtures() -> PathBuf {
    fixture_path("pve")
}

fn output(name: &str) -> String {
    read_fixture(&format!("pve/outputs/{name}"))
}

/// A copy of `cluster3` (pve1 local) with a `corosync` dir beside it.
fn cluster(name: &str) -> (Tmp, PathBuf) {
    let t = Tmp::new(name);
    let root = t.path().join("etc-pve");
    copy_dir(&fixtures().join("cluster3"), &root);
    fs::create_dir_all(t.path().join("etc-corosync")).unwrap();
    (t, root)
}

fn opts(t: &Tmp) -> PveOptions {
    PveOptions {
        corosync_dir: t.path().join("etc-corosync"),
        generation: Some(Generation::Corosync3),
        settle_timeout: Duration::from_millis(300),
        poll: Duration::from_millis(5),
        lock: pve_gitops::cfs_lock::LockOptions {
            timeout: Duration::from_millis(200),
            poll: Duration::from_millis(10),
            ..Default::default()
        },
        ..PveOptions::default()
    }
}

/// A runner for a healthy 3-node cluster seen from pve1.
fn healthy() -> ScriptedRunner {
    let r = ScriptedRunner::new();
    r.on(&["corosync-quorumtool", "-s"], Output::ok(output("pvecm-status.txt")))
        .on(
            &["corosync-cmapctl", "runtime.members"],
            Output::ok(output("cmap-runtime-members.txt")),
        )
        .on(
            &["corosync-cmapctl", "-g", "totem.config_version"],
            Output::ok(output("cmap-config-version.txt")),
        )
        .on(
            &["pvesh", "get", "/cluster/resources"],
            Output::ok(r#"[{"type":"qemu","vmid":100,"node":"pve1","status":"running"},{"type":"lxc","vmid":200,"node":"pve2","status":"stopped"}]"#),
        );
    r
}

fn target(t: &Tmp, root: &Path, r: &ScriptedRunner) -> PveTarget {
    PveTarget::with_root(root, Box::new(r.clone())).options(opts(t))
}

#[test]
fn observe_reads_files_and_tools() {
    let (t, root) = cluster("observe");
    let r = healthy();
    let mut tg = target(&t, &root, &r);
    let o: Observed = tg.observe().unwrap();
    assert_eq!(o.config_version(), 5);
    assert!(o.membership.quorate);
    assert_eq!(
        o.membership.online.iter().cloned().collect::<Vec<_>>(),
        vec!["pve1", "pve2", "pve3"]
    );
    assert_eq!(
        (
            o.membership.expected_votes,
            o.membership.total_votes,
            o.membership.quorum
        ),
        (3, 3, 2)
    );
    assert_eq!(o.membership.runtime_expected, None);
    // pve2 lags; pve3's runtime entry is "left" and falls back to the file's version.
    assert_eq!(o.node_config_versions["pve1"], 5);
    assert_eq!(o.node_config_versions["pve2"], 4);
    assert_eq!(o.node_config_versions["pve3"], 5);
    assert_eq!(o.guests[&100].node, "pve1");
    assert!(o.guests[&100].running);
    assert!(!o.guests[&200].running);
    assert_eq!(o.guests[&200].gtype, GuestType::Lxc);
    assert_eq!(o.guests[&101].lock.as_deref(), Some("backup"));
    assert_eq!(o.guests[&101].memory_mib, 4096);
    assert_eq!(o.leftover_node_dirs, vec!["pve9"]);
    assert_eq!(
        o.datacenter.get("migration"),
        Some("secure,network=10.1.2.0/24")
    );
    let argvs = r.argvs();
    assert!(argvs.iter().all(|a| !a[0].contains(' ')));
    assert!(argvs.contains(&vec![
        "corosync-quorumtool".to_string(),
        "-s".into(),
        "-p".into()
    ]));
}

#[test]
fn observe_without_corosync_tools_uses_members() {
    let (t, root) = cluster("observe-fallback");
    let r = ScriptedRunner::new(); // nothing installed
    let mut tg = target(&t, &root, &r);
    let o = tg.observe().unwrap();
    assert!(o.membership.quorate);
    assert_eq!(o.membership.online.len(), 3);
    // Unknown run state: assumed running (plans use --online / --restart).
    assert!(o.guests[&200].running);
    assert!(o.node_config_versions.values().all(|v| *v == 5));
}

#[test]
fn observe_runtime_expected_override() {
    let (t, root) = cluster("observe-expected");
    let r = ScriptedRunner::new();
    r.on(
        &["corosync-quorumtool"],
        Output {
            code: Some(0),
            stdout: output("quorumtool-s-p.txt")
                .replace("Expected votes:   3", "Expected votes:   2"),
            stderr: String::new(),
        },
    );
    let mut tg = target(&t, &root, &r);
    let o = tg.observe().unwrap();
    assert_eq!(o.membership.runtime_expected, Some(2));
    assert!(!o.membership.online.contains("pve3"));
}

#[test]
fn broken_corosync_conf_is_a_located_parse_error() {
    let (t, root) = cluster("broken");
    fs::write(root.join("corosync.conf"), "totem {\n  version: 2\n").unwrap();
    let mut tg = target(&t, &root, &healthy());
    match tg.observe() {
        Err(TargetError::Parse { path, message }) => {
            assert!(path.ends_with("corosync.conf"));
            assert!(message.contains(':'), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

fn update_step(from: u64, to: u64, method: Method, root: &Path) -> Step {
    let current = fs::read_to_string(root.join("corosync.conf")).unwrap();
    let conf = current
        .replace(
            &format!("config_version: {from}"),
            &format!("config_version: {to}"),
        )
        .replace("knet_link_priority: 10", "knet_link_priority: 20");
    step(
        StepKind::UpdateCorosync(UpdateCorosync {
            changes: vec!["link 0 priority 10 -> 20".into()],
            method,
            method_reason: String::new(),
            restart_order: vec!["pve2".into(), "pve1".into()],
            from_version: from,
            to_version: to,
            corosync_conf: conf,
        }),
        "pve1",
    )
}

#[test]
fn update_corosync_new_bak_rename_under_lock() {
    let (t, root) = cluster("update");
    let r = healthy();
    let before = fs::read_to_string(root.join("corosync.conf")).unwrap();
    let s = update_step(5, 6, Method::Reload, &root);
    // corosync reports the new version once pmxcfs reloaded it.
    r.once(
        &["corosync-cmapctl", "-g", "totem.config_version"],
        Output::ok("totem.config_version (u64) = 6\n"),
    );
    let mut tg = target(&t, &root, &r);
    tg.observe().unwrap();
    assert!(tg.can_run(&s).is_ok());
    let done = tg.apply(&s).unwrap();
    assert!(done.message.contains("5 -> 6"), "{}", done.message);
    let after = fs::read_to_string(root.join("corosync.conf")).unwrap();
    assert!(after.contains("config_version: 6"));
    assert!(after.contains("knet_link_priority: 20"));
    assert_eq!(
        fs::read_to_string(root.join("corosync.conf.bak")).unwrap(),
        before
    );
    assert!(!root.join("corosync.conf.new").exists());
    assert!(
        !root.join("priv/lock/file-corosync_conf").exists(),
        "lock released"
    );
    // Re-applying is a no-op; a step planned from an older version is stale.
    assert!(tg.apply(&s).unwrap().message.contains("already"));
    let old = update_step(6, 7, Method::Reload, &root);
    let mut wrong = old.clone();
    if let StepKind::UpdateCorosync(u) = &mut wrong.kind {
        u.from_version = 4;
    }
    assert!(matches!(tg.apply(&wrong), Err(TargetError::Stale { .. })));
}

/// The reload for members that missed one (version unchanged): `corosync-cfgtool -R` under
/// the lock, corosync.conf untouched.
#[test]
fn update_corosync_with_the_same_version_reloads_only() {
    let (t, root) = cluster("update-catchup");
    let r = healthy();
    r.on(
        &["corosync-cfgtool", "-R"],
        Output::ok("Reloading corosync.conf...\nDone\n"),
    );
    let before = fs::read_to_string(root.join("corosync.conf")).unwrap();
    let s = step(
        StepKind::UpdateCorosync(UpdateCorosync {
            changes: vec!["reload for pve3 (runs 4)".into()],
            method: Method::Reload,
            method_reason: "they missed the reload of config_version 5".into(),
            restart_order: Vec::new(),
            from_version: 5,
            to_version: 5,
            corosync_conf: before.clone(),
        }),
        "pve1",
    );
    let mut tg = target(&t, &root, &r);
    let done = tg.apply(&s).unwrap();
    assert!(
        done.message
            .contains("reloaded for the members that missed it"),
        "{}",
        done.message
    );
    assert!(r
        .argvs()
        .contains(&vec!["corosync-cfgtool".to_string(), "-R".to_string()]));
    assert_eq!(
        fs::read_to_string(root.join("corosync.conf")).unwrap(),
        before
    );
    assert!(!root.join("corosync.conf.bak").exists());
    assert!(
        !root.join("priv/lock/file-corosync_conf").exists(),
        "lock released"
    );
}

#[test]
fn update_corosync_refused_while_the_lock_is_held() {
    let (t, root) = cluster("update-locked");
    fs::create_dir_all(root.join("priv/lock/file-corosync_conf")).unwrap();
    let s = update_step(5, 6, Method::Reload, &root);
    let mut tg = target(&t, &root, &healthy());
    let before = fs::read_to_string(root.join("corosync.conf")).unwrap();
    match tg.apply(&s) {
        Err(TargetError::Refused { reason, .. }) => {
            assert!(
                reason.contains("cfs-lock 'file-corosync_conf' error: got lock request timeout"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fs::read_to_string(root.join("corosync.conf")).unwrap(),
        before
    );
}

#[test]
fn update_corosync_reload_not_picked_up_is_reported() {
    let (t, root) = cluster("update-noreload");
    let s = update_step(5, 6, Method::Reload, &root);
    let mut tg = target(&t, &root, &healthy()); // cmapctl keeps saying 5
    match tg.apply(&s) {
        Err(TargetError::Refused { reason, .. }) => {
            assert!(reason.contains("journalctl -b -u corosync"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rolling_restart_uses_ssh_for_other_nodes_and_waits_for_quorum() {
    let (t, root) = cluster("rolling");
    let r = healthy();
    r.on(&["ssh"], Output::ok(""))
        .on(&["systemctl"], Output::ok(""));
    let s = update_step(5, 6, Method::RollingRestart, &root);
    let mut tg = target(&t, &root, &r);
    tg.observe().unwrap();
    r.once(
        &["corosync-cmapctl", "-g", "totem.config_version"],
        Output::ok("totem.config_version (u64) = 6\n"),
    );
    let done = tg.apply(&s).unwrap();
    assert!(
        done.message.contains("restarted corosync on pve2, pve1"),
        "{}",
        done.message
    );
    let argvs = r.argvs();
    let restarts: Vec<String> = argvs
        .iter()
        .filter(|a| a[0] == "ssh" || a[0] == "systemctl")
        .map(|a| a.join(" "))
        .collect();
    assert_eq!(
        restarts,
        vec![
            "ssh -o BatchMode=yes -o HostKeyAlias=pve2 root@192.168.1.12 systemctl restart corosync",
            "systemctl restart corosync",
        ]
    );
}

#[test]
fn datacenter_key_edit_keeps_other_keys() {
    let (t, root) = cluster("dc");
    let mut tg = target(&t, &root, &healthy());
    let s = datacenter_step(
        "pve1",
        "migration",
        Some("secure,network=10.1.2.0/24"),
        Some("insecure,network=10.1.3.0/24"),
    );
    tg.apply(&s).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("datacenter.cfg")).unwrap(),
        "keyboard: en-us\nmigration: insecure,network=10.1.3.0/24\n"
    );
    assert!(!root.join("priv/lock/file-datacenter_cfg").exists());
    assert!(tg.apply(&s).unwrap().message.contains("already"));
    let stale = datacenter_step(
        "pve1",
        "migration",
        Some("secure"),
        Some("secure,network=10.9.0.0/16"),
    );
    assert!(matches!(tg.apply(&stale), Err(TargetError::Stale { .. })));
}

#[test]
fn expected_votes_runs_pvecm_expected_and_reports_its_refusal() {
    let (t, root) = cluster("expected");
    let r = healthy();
    r.once(
        &["pvecm", "expected"],
        Output::fail(1, "Unable to set expected votes: CS_ERR_INVALID_PARAM"),
    );
    let mut tg = target(&t, &root, &r);
    let s = step(
        StepKind::SetExpectedVotes(SetExpectedVotes {
            expected: 1,
            from: 3,
            present: 3,
        }),
        "pve1",
    );
    match tg.apply(&s) {
        Err(TargetError::Command { command, message }) => {
            assert_eq!(command, "pvecm expected 1");
            assert!(message.contains("CS_ERR_INVALID_PARAM"));
        }
        other => panic!("{other:?}"),
    }
    r.on(&["pvecm", "expected"], Output::ok(""));
    assert!(tg.apply(&s).is_ok());
}

/// Moves the config like `qm migrate` does, after recording the command.
struct Migrating {
    inner: ScriptedRunner,
    root: PathBuf,
}

impl Runner for Migrating {
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, String> {
        let out = self.inner.run(argv, stdin, timeout)?;
        if argv[0] == "qm" && argv[1] == "migrate" && out.success() {
            let from = self.root.join("nodes/pve1/qemu-server/100.conf");
            let to = self.root.join("nodes/pve2/qemu-server");
            fs::create_dir_all(&to).unwrap();
            fs::rename(from, to.join("100.conf")).unwrap();
        }
        Ok(out)
    }
}

#[test]
fn migrate_runs_qm_and_waits_for_the_config_to_move() {
    let (t, root) = cluster("migrate");
    let inner = healthy();
    inner.on(
        &["qm", "migrate"],
        Output::ok("migration finished successfully\n"),
    );
    let mut tg = PveTarget::with_root(
        &root,
        Box::new(Migrating {
            inner: inner.clone(),
            root: root.clone(),
        }),
    )
    .options(PveOptions {
        with_local_disks: true,
        ..opts(&t)
    });
    tg.observe().unwrap();
    assert!(tg.can_run(&migrate_step(None, None)).is_ok());
    let done = tg.apply(&migrate_step(None, None)).unwrap();
    assert!(done.message.contains("pve1 -> pve2"));
    assert!(inner.argvs().contains(
        &"qm migrate 100 pve2 --online --with-local-disks"
            .split(' ')
            .map(String::from)
            .collect()
    ));
    // Again: already there.
    assert!(tg
        .apply(&migrate_step(None, None))
        .unwrap()
        .message
        .contains("already"));
}

#[test]
fn migrate_failure_reports_the_task_log() {
    let (t, root) = cluster("migrate-fail");
    let r = healthy();
    r.on(
        &["qm", "migrate"],
        Output {
            code: Some(255),
            stdout: "UPID:pve1:00003039:0045B352:681A0A70:qmigrate:100:root@pam:\n".into(),
            stderr: "migration aborted\n".into(),
        },
    )
    .on(
        &[
            "pvesh",
            "get",
            "/nodes/pve1/tasks/UPID:pve1:00003039:0045B352:681A0A70:qmigrate:100:root@pam:/log",
        ],
        Output::ok(output("task-log-failed.json")),
    );
    let mut tg = target(&t, &root, &r);
    match tg.apply(&migrate_step(None, None)) {
        Err(TargetError::Command { command, message }) => {
            assert_eq!(command, "qm migrate 100 pve2 --online");
            assert!(
                message.contains("storage 'local-lvm' is not available"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(root.join("nodes/pve1/qemu-server/100.conf").exists());
}

#[test]
fn delnode_reports_leftover_node_directory() {
    let (t, root) = cluster("delnode");
    let r = healthy();
    r.on(&["pvecm", "delnode"], Output::ok(""));
    let mut tg = target(&t, &root, &r);
    tg.observe().unwrap();
    let s = remove_pve3_step();
    assert!(tg.can_run(&s).is_ok());
    let done = tg.apply(&s).unwrap();
    assert!(
        done.message.contains("pvecm delnode pve3"),
        "{}",
        done.message
    );
    assert!(
        done.message.contains("qemu-server/101.conf"),
        "{}",
        done.message
    );
    // Never from the node itself.
    let mut self_rm = s.clone();
    if let StepKind::RemoveNode(rm) = &mut self_rm.kind {
        rm.node = "pve1".into();
    }
    assert!(tg
        .can_run(&self_rm)
        .unwrap_err()
        .contains("Cannot delete myself"));
}

fn join_step() -> Step {
    let conf = fs::read_to_string(fixtures().join("cluster3/corosync.conf"))
        .unwrap()
        .replace("config_version: 5", "config_version: 6");
    step(
        StepKind::JoinNode(JoinNode {
            node: "pve4".into(),
            nodeid: 4,
            quorum_votes: 1,
            links: [(0, "10.0.0.4".to_string())].into(),
            via: "pve1".into(),
            from_version: 5,
            to_version: 6,
            corosync_conf: conf,
        }),
        "pve4",
    )
}

/// A standalone pve4 with no guests, no authkey, corosync stopped, 10.0.0.4 present.
fn standalone(name: &str) -> (Tmp, PathBuf) {
    let t = Tmp::new(name);
    let root = t.path().join("etc-pve");
    fs::create_dir_all(root.join("nodes/pve4/qemu-server")).unwrap();
    fs::write(
        root.join(".members"),
        "{\n\"nodename\": \"pve4\",\n\"version\": 0\n}\n",
    )
    .unwrap();
    fs::create_dir_all(t.path().join("etc-corosync")).unwrap();
    (t, root)
}

const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

#[test]
fn join_passes_the_password_on_stdin_only() {
    let (t, root) = standalone("join-ok");
    let pw = t.path().join("pw");
    fs::write(&pw, "s3cret-pw\n").unwrap();
    let r = ScriptedRunner::new();
    r.on(
        &["corosync-quorumtool", "-l"],
        Output::fail(1, "Cannot initialize CMAP service"),
    )
    .on(&["ip"], Output::ok(output("ip-addr-present.txt")))
    .on(
        &["pvecm", "add"],
        Output::ok("successfully added node 'pve4' to cluster.\n"),
    );
    let mut tg = PveTarget::with_root(&root, Box::new(r.clone())).options(PveOptions {
        join_password_file: Some(pw),
        fingerprint: Some(FP.into()),
        ..opts(&t)
    });
    tg.observe().unwrap();
    assert!(tg.can_run(&join_step()).is_ok());
    tg.apply(&join_step()).unwrap();
    let rec = r.recorded();
    let add = rec.iter().find(|c| c.argv[1] == "add").unwrap();
    assert_eq!(
        add.argv,
        format!("pvecm add 10.0.0.1 --link0 10.0.0.4 --nodeid 4 --votes 1 --fingerprint {FP}")
            .split(' ')
            .map(String::from)
            .collect::<Vec<_>>()
    );
    assert!(add.had_stdin);
    assert!(rec
        .iter()
        .all(|c| !c.argv.iter().any(|a| a.contains("s3cret"))));
}

#[test]
fn join_failure_never_shows_the_password() {
    let (t, root) = standalone("join-fail");
    let pw = t.path().join("pw");
    fs::write(&pw, "s3cret-pw\n").unwrap();
    let r = ScriptedRunner::new();
    r.on(&["corosync-quorumtool", "-l"], Output::fail(1, ""))
        .on(&["ip"], Output::ok(output("ip-addr-present.txt")))
        .on(
            &["pvecm", "add"],
            Output::fail(255, "401 authentication failure for password s3cret-pw\n"),
        );
    let mut tg = PveTarget::with_root(&root, Box::new(r)).options(PveOptions {
        join_password_file: Some(pw),
        fingerprint: Some(FP.into()),
        ..opts(&t)
    });
    let err = tg.apply(&join_step()).unwrap_err().to_string();
    assert!(err.contains("authentication failure"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn join_preflight_reports_every_problem_at_once() {
    let (t, root) = standalone("join-preflight");
    fs::write(t.path().join("etc-corosync/authkey"), "key").unwrap();
    fs::write(
        root.join("corosync.conf"),
        fs::read_to_string(fixtures().join("cluster3/corosync.conf")).unwrap(),
    )
    .unwrap();
    fs::write(
        root.join("nodes/pve4/qemu-server/900.conf"),
        "memory: 512\n",
    )
    .unwrap();
    let r = ScriptedRunner::new();
    r.on(
        &["corosync-quorumtool", "-l"],
        Output::ok("Membership information\n"),
    )
    .on(&["ip"], Output::ok(""));
    let mut s = join_step();
    if let StepKind::JoinNode(j) = &mut s.kind {
        j.links.insert(1, "no-such-host.invalid".into());
    }
    let mut tg = PveTarget::with_root(&root, Box::new(r.clone())).options(PveOptions {
        fingerprint: Some("AB:CD".into()),
        ..opts(&t)
    });
    let reason = match tg.apply(&s) {
        Err(TargetError::Refused { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    for want in [
        "authentication key",
        "already exists",
        "cluster config",
        "this host already contains virtual guests (900)",
        "corosync is already running, is this node already in a cluster?!",
        "link0: cannot use IP '10.0.0.4', not found on local node!",
        "link1: cannot use 'no-such-host.invalid'",
        "no --join-password-file",
        "--fingerprint 'AB:CD' is not a SHA-256 fingerprint",
        "Check if node may join a cluster failed!",
    ] {
        assert!(reason.contains(want), "missing {want:?} in {reason}");
    }
    assert_eq!(reason.matches("\n* ").count(), 8, "{reason}");
    assert!(
        r.argvs().iter().all(|a| a[1] != "add"),
        "pvecm add must not run"
    );
}

#[test]
fn join_over_ssh_needs_no_password() {
    let (t, root) = standalone("join-ssh");
    let r = ScriptedRunner::new();
    r.on(&["corosync-quorumtool", "-l"], Output::fail(1, ""))
        .on(&["ip"], Output::ok(output("ip-addr-present.txt")))
        .on(&["pvecm", "add"], Output::ok(""));
    let mut tg = PveTarget::with_root(&root, Box::new(r.clone())).options(PveOptions {
        use_ssh: true,
        ..opts(&t)
    });
    tg.apply(&join_step()).unwrap();
    let add = r
        .recorded()
        .into_iter()
        .find(|c| c.argv[1] == "add")
        .unwrap();
    assert!(!add.had_stdin);
    assert_eq!(add.argv.last().map(String::as_str), Some("1"));
}

#[test]
fn can_run_places_steps_on_the_right_node() {
    let (t, root) = cluster("can-run");
    let mut tg = target(&t, &root, &healthy());
    tg.observe().unwrap();
    assert!(tg
        .can_run(&join_step())
        .unwrap_err()
        .contains("the join runs on pve4 (this is pve1)"));
    let mut m = migrate_step(None, None);
    if let StepKind::MigrateGuest(g) = &mut m.kind {
        g.from = "pve2".into();
    }
    assert!(tg.can_run(&m).unwrap_err().contains("runs on pve2"));
    let wait = step(
        StepKind::Wait(Wait {
            gate: Gate::PowerOff {
                node: "pve3".into(),
            },
        }),
        "pve3",
    );
    assert!(tg.can_run(&wait).is_ok());
    match tg.apply(&wait) {
        Err(TargetError::Refused { reason, .. }) => assert!(reason.contains("still a member")),
        other => panic!("{other:?}"),
    }
}
