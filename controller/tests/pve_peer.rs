//! The `pve` target on a standalone node that the manifest wants to join, with `--peer`: it
//! observes the cluster through a member's API (a local HTTPS server with a self-signed
//! certificate serving the documented JSON shapes; no real Proxmox VE here), merges itself
//! in as a standalone host, plans its own `join_node`, may run it, and runs the exact
//! `pvecm add` vector against the peer the cluster's join information names (password on
//! standard input). Without `--peer` the plan and the wait say that `--peer` is needed.

mod common;

use common::https::{client, cluster_handler, self_signed, serve, Server, SECRET};
use common::{read_fixture, Tmp};
use pve_gitops::plan::step::StepKind;
use pve_gitops::plan::{plan, Plan};
use pve_gitops::reconcile::{self, Mode, Outcome};
use pve_gitops::target::pve::runner::{Output, ScriptedRunner};
use pve_gitops::target::pve::{Generation, PveOptions, PveTarget};
use pve_gitops::target::pve_api::http::Trust;
use pve_gitops::target::{resolve, Target, TargetError, TargetOptions};
use pve_gitops_schema::spec::Cluster;
use std::fs;
use std::path::{Path, PathBuf};

/// The fixture cluster (pve1, pve2 up, pve3 down) plus pve4, the standalone node here.
const MANIFEST: &str = "apiVersion: pve-gitops.io/v1alpha1
kind: Cluster
metadata:
  name: prod
spec:
  nodes:
    - name: pve1
      nodeid: 1
      ring0_addr: 10.0.0.1
    - name: pve2
      nodeid: 2
      ring0_addr: 10.0.0.2
    - name: pve3
      nodeid: 3
      ring0_addr: 10.0.0.3
    - name: pve4
      nodeid: 4
      ring0_addr: 10.0.0.4
";

/// pve1's address and certificate fingerprint in the join information the peer serves.
const PVE1_ADDR: &str = "192.168.1.11";
const PVE1_FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
const PASSWORD: &str = "s3cret-pw";

fn manifest() -> Cluster {
    pve_gitops_schema::validate::parse_cluster("m.yaml", MANIFEST)
        .expect("valid manifest")
        .0
}

/// A standalone pve4 (`.members` without a cluster, no corosync.conf), `guests` VMIDs in its
/// own `nodes/pve4/qemu-server`, a password file; returns the temp dir and the root.
fn standalone(tag: &str, guests: &[u32]) -> (Tmp, PathBuf) {
    let t = Tmp::new(tag);
    let root = t.path().join("etc-pve");
    let qemu = root.join("nodes/pve4/qemu-server");
    fs::create_dir_all(&qemu).unwrap();
    fs::write(
        root.join(".members"),
        "{\n\"nodename\": \"pve4\",\n\"version\": 0\n}\n",
    )
    .unwrap();
    for id in guests {
        fs::write(qemu.join(format!("{id}.conf")), "memory: 512\n").unwrap();
    }
    fs::create_dir_all(t.path().join("etc-corosync")).unwrap();
    fs::write(t.path().join("pw"), format!("{PASSWORD}\n")).unwrap();
    (t, root)
}

/// corosync stopped, 10.0.0.4 present, `pvecm add` succeeds; pvesh is not scripted (run
/// states unknown).
fn runner() -> ScriptedRunner {
    let r = ScriptedRunner::new();
    r.on(
        &["corosync-quorumtool", "-l"],
        Output::fail(1, "Cannot initialize CMAP service"),
    )
    .on(
        &["ip"],
        Output::ok(read_fixture("pve/outputs/ip-addr-present.txt")),
    )
    .on(
        &["pvecm", "add"],
        Output::ok("successfully added node 'pve4' to cluster.\n"),
    );
    r
}

fn options(t: &Tmp, peer: Option<&Server>, fp: &str) -> PveOptions {
    let m = manifest();
    PveOptions {
        manifest_nodes: m.spec.nodes.iter().map(|n| n.name.clone()).collect(),
        founder: Some("pve1".into()),
        peer: peer.map(|s| client(&s.url, &Trust::Pins(vec![fp.to_string()]))),
        join_password_file: Some(t.path().join("pw")),
        corosync_dir: t.path().join("etc-corosync"),
        generation: Some(Generation::Corosync3),
        ..PveOptions::default()
    }
}

fn target(root: &Path, r: &ScriptedRunner, opts: PveOptions) -> PveTarget {
    PveTarget::with_root(root, Box::new(r.clone())).options(opts)
}

fn dry_run(tg: &mut PveTarget) -> Plan {
    reconcile::run(&manifest(), tg, Mode::DryRun, &|| false, &mut |_| {})
        .unwrap()
        .plan
}

fn argv(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

#[test]
fn standalone_node_with_peer_plans_and_runs_its_own_join() {
    let c = self_signed();
    let srv = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let (t, root) = standalone("peer-join", &[]);
    let r = runner();
    let mut tg = target(&root, &r, options(&t, Some(&srv), &c.fp));

    let o = tg.observe().unwrap();
    assert_eq!(o.config_version(), 5, "the cluster, seen through the peer");
    assert!(o.hosts["pve4"].online);
    assert!(!o.is_joined("pve4"));
    assert!(!o.membership.online.contains("pve4"));
    assert!(o.notes.is_empty(), "{:?}", o.notes);

    let p = dry_run(&mut tg);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let step = p.next_runnable().expect("a runnable step").clone();
    let StepKind::JoinNode(j) = &step.kind else {
        panic!("expected join_node first: {:?}", p.steps);
    };
    assert_eq!((j.node.as_str(), j.via.as_str()), ("pve4", "pve1"));
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::CreateCluster(_))),
        "{:?}",
        p.steps
    );
    assert_eq!(tg.can_run(&step), Ok(()));
    // Steps for members are not this node's to run.
    if let Some(other) = p.steps.iter().find(|s| {
        matches!(
            s.kind,
            StepKind::UpdateCorosync(_) | StepKind::SetDatacenter(_)
        )
    }) {
        assert!(tg.can_run(other).is_err());
    }

    tg.apply(&step).unwrap();
    let rec = r.recorded();
    let add = rec
        .iter()
        .find(|c| c.argv[..2] == ["pvecm", "add"])
        .expect("pvecm add ran");
    assert_eq!(
        add.argv,
        argv(&format!(
            "pvecm add {PVE1_ADDR} --link0 10.0.0.4 --nodeid 4 --votes 1 --fingerprint {PVE1_FP}"
        ))
    );
    assert!(add.had_stdin, "the password goes to standard input");
    assert!(rec
        .iter()
        .all(|c| !c.argv.iter().any(|a| a.contains(PASSWORD))));
    // The peer and fingerprint came from the cluster's join information; nothing was
    // written through the API, and the token only ever went into the header.
    let reqs = srv.requests();
    assert!(reqs
        .iter()
        .any(|q| q.target == "/api2/json/cluster/config/join?node=pve1"));
    assert!(reqs.iter().all(|q| q.method == "GET"));
    assert!(reqs.iter().all(|q| !q.target.contains(SECRET)));
    assert!(!format!("{tg:?}").contains(SECRET));
}

#[test]
fn a_node_with_guests_is_refused_by_the_join_preflight() {
    let c = self_signed();
    let srv = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let (t, root) = standalone("peer-guests", &[105]);
    let r = runner();
    let mut tg = target(&root, &r, options(&t, Some(&srv), &c.fp));
    let o = tg.observe().unwrap();
    assert_eq!(
        o.guests[&105].node, "pve4",
        "this host's own guests are seen"
    );
    let p = dry_run(&mut tg);
    let step = p
        .steps
        .iter()
        .find(|s| matches!(&s.kind, StepKind::JoinNode(j) if j.node == "pve4"))
        .expect("join_node pve4")
        .clone();
    let reason = match tg.apply(&step) {
        Err(TargetError::Refused { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert!(
        reason.contains("this host already contains virtual guests (105)"),
        "{reason}"
    );
    assert!(
        reason.contains("Check if node may join a cluster failed!"),
        "{reason}"
    );
    assert!(r.argvs().iter().all(|a| a[..2] != ["pvecm", "add"]));
}

#[test]
fn an_unpinned_peer_is_an_observe_error_naming_the_peer_not_the_token() {
    let c = self_signed();
    let srv = serve(c.cert.clone(), c.key.clone_key(), cluster_handler(|_| None));
    let (t, root) = standalone("peer-unpinned", &[]);
    let other = self_signed();
    let mut tg = target(&root, &runner(), options(&t, Some(&srv), &other.fp));
    let err = tg.observe().unwrap_err().to_string();
    assert!(err.contains(&format!("--peer {}", srv.url)), "{err}");
    assert!(err.contains("not pinned"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(srv.requests().is_empty());
}

#[test]
fn without_peer_the_plan_and_the_wait_say_that_peer_is_needed() {
    let (t, root) = standalone("no-peer", &[]);
    let r = runner();
    let mut tg = target(&root, &r, options(&t, None, ""));
    let p = dry_run(&mut tg);
    // Today's behaviour: no cluster visible, so the founder creates one ...
    assert!(
        matches!(&p.steps[0].kind, StepKind::CreateCluster(c) if c.founder == "pve1"),
        "{:?}",
        p.steps
    );
    // ... but the plan says why, and what a joining node needs.
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("pve4 is standalone") && w.contains("--peer https://MEMBER:8006")),
        "{:?}",
        p.warnings
    );
    let text = pve_gitops::render::plan_text(&p, "prod");
    assert!(text.contains("--peer"), "{text}");

    let report = reconcile::run(
        &manifest(),
        &mut tg,
        Mode::Apply { max_steps: 10 },
        &|| false,
        &mut |_| {},
    )
    .unwrap();
    match report.outcome {
        Outcome::WaitingForNode { what } => {
            assert!(
                what.contains("create runs on pve1 (this is pve4)"),
                "{what}"
            );
            assert!(what.contains("--peer"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert!(r.argvs().iter().all(|a| a[0] != "pvecm"));

    // The founder itself needs no --peer: no note.
    let mut founder = target(
        &root,
        &r,
        PveOptions {
            node: Some("pve1".into()),
            ..options(&t, None, "")
        },
    );
    let o = founder.observe().unwrap();
    assert!(o.notes.is_empty(), "{:?}", o.notes);
    assert!(plan(&manifest(), &o)
        .warnings
        .iter()
        .all(|w| !w.contains("--peer")));
}

#[test]
fn peer_options_need_credentials_and_the_pve_target() {
    let m = manifest();
    let base = TargetOptions {
        peer: Some("https://127.0.0.1:8006".into()),
        ..TargetOptions::default()
    };
    let err = |o: &TargetOptions| match resolve(o, &m) {
        Err(e) => e.to_string(),
        Ok((t, _)) => panic!("resolved {}", t.describe()),
    };
    let e = err(&TargetOptions {
        spec: Some("pve".into()),
        ..base.clone()
    });
    assert!(e.contains("--peer needs --api-token-file"), "{e}");
    let dir = Tmp::new("peer-opts");
    let token = dir.write("token", format!("{}\n", common::https::TOKEN));
    let e = err(&TargetOptions {
        spec: Some("pve".into()),
        api_token_file: Some(token),
        ..base.clone()
    });
    assert!(e.contains("--peer needs --fingerprint"), "{e}");
    assert!(!e.contains(SECRET), "{e}");
    let e = err(&TargetOptions {
        spec: Some(format!("sim:{}", dir.path().display())),
        ..base
    });
    assert!(e.contains("--peer is for the pve target"), "{e}");
}
