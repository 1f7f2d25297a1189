//! `reconcile::run_with` and `Options::peer_wait`: a per-node controller waits for the others
//! (the next step is another node's, or another controller is mid-step) instead of stopping,
//! and stops once the wait is over. The cluster is the simulator; "the other controller" is a
//! wrapper that applies the steps it keeps for itself after a number of observations.

mod common;

use common::Tmp;
use pve_gitops::observed::Observed;
use pve_gitops::plan::step::Step;
use pve_gitops::reconcile::{self, Event, Mode, Options, Outcome};
use pve_gitops::target::sim::{self, SimTarget};
use pve_gitops::target::{Applied, Target, TargetError};
use pve_gitops_schema::spec::Cluster;
use std::time::Duration;

const THREE: &str = "apiVersion: pve-gitops.io/v1alpha1
kind: Cluster
metadata:
  name: c
spec:
  totem:
    transport: knet
  nodes:
    - name: a
      nodeid: 1
      ring0_addr: 10.9.0.1
    - name: b
      nodeid: 2
      ring0_addr: 10.9.0.2
    - name: c
      nodeid: 3
      ring0_addr: 10.9.0.3
";

fn cluster(text: &str) -> Cluster {
    match pve_gitops_schema::validate::parse_cluster("c.yaml", text) {
        Ok((c, _)) => c,
        Err(d) => panic!("test manifest invalid: {d:?}"),
    }
}

fn sim3(t: &Tmp) -> SimTarget {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    sim::init_from_names(t.path(), &names, 0, 8192).expect("sim init");
    SimTarget::new(t.path())
}

/// Three hosts clustered as `c` says, by one controller that reaches them all.
fn clustered3(t: &Tmp, c: &Cluster) {
    let mut all = sim3(t);
    let r = reconcile::run(
        c,
        &mut all,
        Mode::Apply { max_steps: 100 },
        &|| false,
        &mut |_| {},
    )
    .expect("create");
    assert_eq!(r.outcome, Outcome::InSync);
}

/// The controller on `me` (planning for `cluster`): steps on other nodes are "theirs". Their
/// controller applies such a step once this one has observed it `their_delay` more times;
/// the first `busy` observations report another controller mid-step.
struct OnNode {
    inner: SimTarget,
    cluster: Cluster,
    me: String,
    their_delay: usize,
    busy: usize,
    /// One controller per node (else a step for another node needs the operator).
    per_node: bool,
    observes: usize,
    /// Steps the other controllers applied.
    theirs: Vec<String>,
    /// Since which observation a foreign step has been next.
    foreign_since: Option<usize>,
}

impl OnNode {
    fn new(inner: SimTarget, cluster: &Cluster, me: &str, their_delay: usize) -> OnNode {
        OnNode {
            inner,
            cluster: cluster.clone(),
            me: me.into(),
            their_delay,
            busy: 0,
            per_node: true,
            observes: 0,
            theirs: Vec::new(),
            foreign_since: None,
        }
    }
}

impl Target for OnNode {
    fn describe(&self) -> String {
        format!("sim on {}", self.me)
    }

    fn observe(&mut self) -> Result<Observed, TargetError> {
        self.observes += 1;
        let now = self.inner.observe()?;
        let p = pve_gitops::plan::plan(&self.cluster, &now);
        match p.next_runnable() {
            Some(s) if s.node != self.me => {
                let since = *self.foreign_since.get_or_insert(self.observes);
                if self.observes - since >= self.their_delay {
                    self.inner.apply(s)?;
                    self.theirs.push(s.kind.name().to_string());
                    self.foreign_since = None;
                    return self.inner.observe();
                }
            }
            _ => self.foreign_since = None,
        }
        Ok(now)
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        self.inner.apply(step)
    }

    fn can_run(&self, step: &Step) -> Result<(), String> {
        if step.node == self.me {
            Ok(())
        } else {
            Err(format!("{}'s controller runs it", step.node))
        }
    }

    fn per_node(&self) -> bool {
        self.per_node
    }

    fn busy_elsewhere(&self, _observed: &Observed) -> Option<String> {
        (self.observes <= self.busy).then(|| "z holds the lock".to_string())
    }

    fn await_change(&mut self, limit: Duration) {
        std::thread::sleep(limit.min(Duration::from_millis(5)));
    }
}

/// Run `t` with `wait`, recording the Waiting events.
fn run(t: &mut OnNode, wait: Duration) -> (reconcile::Report, Vec<String>) {
    let mut waits = Vec::new();
    let c = t.cluster.clone();
    let report = reconcile::run_with(
        &c,
        t,
        Mode::Apply { max_steps: 100 },
        Options { peer_wait: wait },
        &|| false,
        &mut |e| {
            if let Event::Waiting(w) = e {
                waits.push(w.to_string());
            }
        },
    )
    .expect("reconcile");
    (report, waits)
}

#[test]
fn without_a_wait_a_step_of_another_node_stops_the_run_at_once() {
    let t = Tmp::new("peer-wait-zero");
    let c = cluster(THREE);
    // The cluster is created on `a` (the founder); this controller runs on `b`.
    let mut on_b = OnNode::new(sim3(&t), &c, "b", 3);
    let (report, waits) = run(&mut on_b, Duration::ZERO);
    assert!(
        matches!(&report.outcome, Outcome::WaitingForNode { what } if what.contains("a's controller")),
        "{:?}",
        report.outcome
    );
    assert!(report.applied.is_empty());
    assert!(waits.is_empty(), "{waits:?}");
    assert_eq!(on_b.observes, 1, "observed again although it must not wait");
    assert!(on_b.theirs.is_empty());
}

#[test]
fn with_a_wait_the_run_continues_once_the_other_node_did_its_step() {
    let t = Tmp::new("peer-wait-continue");
    let c = cluster(THREE);
    let mut on_b = OnNode::new(sim3(&t), &c, "b", 3);
    let (report, waits) = run(&mut on_b, Duration::from_secs(30));
    assert_eq!(report.outcome, Outcome::InSync);
    // `a` created the cluster and `c` joined (their controllers); `b` did its own join.
    assert_eq!(on_b.theirs, vec!["create_cluster", "join_node"]);
    assert!(
        on_b.observes >= 7,
        "it must have re-observed while waiting ({} observations)",
        on_b.observes
    );
    assert_eq!(waits.len(), 2, "one Waiting event per reason: {waits:?}");
    assert!(waits[0].contains("a's controller"), "{waits:?}");
    assert!(waits[1].contains("c's controller"), "{waits:?}");
    let mine: Vec<&str> = report.applied.iter().map(|s| s.node.as_str()).collect();
    assert!(
        !mine.is_empty() && mine.iter().all(|n| *n == "b"),
        "b applies only b's steps: {mine:?}"
    );
}

#[test]
fn the_wait_ends_at_its_limit_with_the_stop_it_would_have_made() {
    let t = Tmp::new("peer-wait-limit");
    let c = cluster(THREE);
    // Their controller never comes.
    let mut on_b = OnNode::new(sim3(&t), &c, "b", usize::MAX / 2);
    let (report, waits) = run(&mut on_b, Duration::from_millis(300));
    assert!(
        matches!(report.outcome, Outcome::WaitingForNode { .. }),
        "{:?}",
        report.outcome
    );
    assert!(report.applied.is_empty());
    assert!(on_b.observes >= 2, "{} observations", on_b.observes);
    assert_eq!(waits.len(), 1, "{waits:?}");
}

#[test]
fn a_gate_waits_only_while_another_controller_is_mid_step() {
    let t = Tmp::new("peer-wait-gate");
    let c = cluster(THREE);
    // Build the cluster, then ask for `c` to be removed while it runs: the power-off gate.
    clustered3(&t, &c);
    let absent = cluster(&THREE.replace(
        "      ring0_addr: 10.9.0.3\n",
        "      ring0_addr: 10.9.0.3\n      state: absent\n",
    ));
    // Not busy: the gate stops the run at once, whatever the wait.
    let mut on_a = OnNode::new(SimTarget::new(t.path()), &absent, "a", 0);
    let (report, waits) = run(&mut on_a, Duration::from_secs(30));
    assert!(
        matches!(report.outcome, Outcome::StoppedAtGate { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!((on_a.observes, waits.len()), (1, 0));
    // Busy for three observations: it waits them out, then stops at the same gate.
    let mut on_a = OnNode::new(SimTarget::new(t.path()), &absent, "a", 0);
    on_a.busy = 3;
    let (report, waits) = run(&mut on_a, Duration::from_secs(30));
    assert!(
        matches!(report.outcome, Outcome::StoppedAtGate { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(on_a.observes, 4);
    assert_eq!(waits, vec!["z holds the lock".to_string()]);
}

#[test]
fn in_sync_waits_while_another_controller_is_mid_step() {
    let t = Tmp::new("peer-wait-in-sync");
    let c = cluster(THREE);
    clustered3(&t, &c);
    // In sync, but another controller holds the lock for two more observations: its step
    // (a rolling restart) may still need this node.
    let mut on_b = OnNode::new(SimTarget::new(t.path()), &c, "b", 0);
    on_b.busy = 2;
    let (report, waits) = run(&mut on_b, Duration::from_secs(30));
    assert_eq!(report.outcome, Outcome::InSync);
    assert_eq!(on_b.observes, 3);
    assert_eq!(waits, vec!["z holds the lock".to_string()]);
    // Without a wait it says so at once.
    let mut on_b = OnNode::new(SimTarget::new(t.path()), &c, "b", 0);
    on_b.busy = 2;
    let (report, waits) = run(&mut on_b, Duration::ZERO);
    assert_eq!(
        (report.outcome, on_b.observes, waits.len()),
        (Outcome::InSync, 1, 0)
    );
}

#[test]
fn a_target_with_one_controller_for_the_cluster_never_waits_for_another_node() {
    let t = Tmp::new("peer-wait-single");
    let c = cluster(THREE);
    let mut on_b = OnNode::new(sim3(&t), &c, "b", 3);
    on_b.per_node = false;
    let (report, waits) = run(&mut on_b, Duration::from_secs(30));
    assert!(
        matches!(report.outcome, Outcome::WaitingForNode { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!((on_b.observes, waits.len()), (1, 0));
}
