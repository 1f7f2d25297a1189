//! Property tests of plan + apply against the real simulator (`sim:` target).
//!
//! For random valid manifests (3-7 nodes, 1-2 links, some nodes absent, some guests placed,
//! optional migration settings, link mode, token_coefficient, a re-addressed node, nodes
//! with two votes) and random simulator states (hosts from `sim init`, a partial reconcile to
//! a random earlier manifest, a guest locked by a backup, random power-offs):
//!
//! 1. **idempotence** — apply until the first gate or stop, then `plan` again: it has no
//!    runnable (non-gated, non-blocked) step;
//! 2. **quorum safety** — if the cluster was quorate before the run, it is quorate after
//!    every applied step (no applied prefix loses quorum), and after every power-off/on the
//!    operator does to satisfy a gate the plan showed;
//! 3. **soundness** — the simulator (which refuses what corosync / pvecm / qm refuse) accepts
//!    every step the planner offers as runnable, and apply converges within a step budget.
//!
//! After a stop at a power-off / power-on gate the test plays the operator (does the power
//! change) and runs again, a few rounds, so removals after a gate are covered too.
//!
//! `PROPTEST_CASES` overrides the number of cases (default 32, to keep CI fast). Failing
//! seeds are persisted by proptest under `proptest-regressions/` and replayed first.

mod common;

use common::Tmp;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use pve_gitops::observed::Observed;
use pve_gitops::plan::plan;
use pve_gitops::plan::step::{Gate, Step, StepKind};
use pve_gitops::reconcile::{self, Mode, Outcome, ReconcileError};
use pve_gitops::target::sim::{self, InitOptions, SimTarget};
use pve_gitops::target::{Applied, Target, TargetError};
use pve_gitops_schema::spec::Cluster;
use std::fmt::Write as _;
use std::path::Path;

/// Apply budget per reconcile run (a 7-node cluster from nothing with guests needs ~30).
const MAX_STEPS: usize = 200;

/// A manifest, as data.
#[derive(Debug, Clone)]
struct Manifest {
    /// Nodes pve1..pveN (nodeid i, ring0 10.10.10.i, ring1 10.10.20.i).
    nodes: usize,
    /// 1 or 2.
    links: u8,
    /// Per node: `state: absent`.
    absent: Vec<bool>,
    /// Per node: `quorum_votes: 2` (else 1).
    two_votes: Vec<bool>,
    /// Node index whose ring0 address is 10.10.11.i instead.
    readdress: Option<usize>,
    /// `totem.rrp_mode: active` (else unset: passive).
    active: bool,
    token_coefficient: Option<u32>,
    /// (insecure, max_workers, bandwidth_limit) — `spec.migration`.
    migration: Option<(bool, Option<u32>, Option<u64>)>,
    /// (vmid, node index) — `spec.guests`.
    guests: Vec<(u32, usize)>,
}

impl Manifest {
    fn yaml(&self) -> String {
        let mut y = String::from(
            "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: prop\nspec:\n",
        );
        if self.active || self.token_coefficient.is_some() {
            y.push_str("  totem:\n");
            if self.active {
                y.push_str("    rrp_mode: active\n");
            }
            if let Some(t) = self.token_coefficient {
                let _ = writeln!(y, "    token_coefficient: {t}");
            }
        }
        y.push_str("  nodes:\n");
        for i in 1..=self.nodes {
            let r0 = if self.readdress == Some(i) { 11 } else { 10 };
            let _ = write!(
                y,
                "    - name: pve{i}\n      nodeid: {i}\n      ring0_addr: 10.10.{r0}.{i}\n      addresses: [10.1.2.{i}/24]\n"
            );
            if self.links == 2 {
                let _ = writeln!(y, "      ring1_addr: 10.10.20.{i}");
            }
            if self.absent[i - 1] {
                y.push_str("      state: absent\n");
            }
            if self.two_votes[i - 1] {
                y.push_str("      quorum_votes: 2\n");
            }
        }
        if let Some((insecure, workers, bw)) = self.migration {
            let t = if insecure { "insecure" } else { "secure" };
            let _ = writeln!(y, "  migration:\n    type: {t}\n    network: 10.1.2.0/24");
            if let Some(w) = workers {
                let _ = writeln!(y, "    max_workers: {w}");
            }
            if let Some(b) = bw {
                let _ = writeln!(y, "    bandwidth_limit: {b}");
            }
        }
        if !self.guests.is_empty() {
            y.push_str("  guests:\n");
            for (vmid, n) in &self.guests {
                let _ = writeln!(y, "    - {{vmid: {vmid}, type: qemu, node: pve{}}}", n + 1);
            }
        }
        if insecure_allowed(self) {
            y.push_str("  policy:\n    allow_insecure_migration: true\n");
        }
        y
    }

    fn cluster(&self) -> Cluster {
        let y = self.yaml();
        match pve_gitops_schema::validate::parse_cluster("prop.yaml", &y) {
            Ok((c, _)) => c,
            Err(d) => panic!("generated manifest is invalid: {d:?}\n{y}"),
        }
    }
}

fn insecure_allowed(m: &Manifest) -> bool {
    matches!(m.migration, Some((true, _, _)))
}

/// A manifest over nodes 1..=n (at least one present node; guests on present nodes).
fn manifest(n: usize, guests: u32) -> impl Strategy<Value = Manifest> {
    (
        1u8..=2,
        proptest::collection::vec(prop::bool::weighted(0.2), n),
        proptest::option::weighted(0.15, 0..n),
        prop::bool::weighted(0.2),
        proptest::option::weighted(0.3, prop::sample::select(vec![125u32, 250, 500])),
        proptest::option::weighted(
            0.6,
            (
                prop::bool::weighted(0.2),
                proptest::option::of(1u32..8),
                proptest::option::of(prop::sample::select(vec![100_000u64, 512_000])),
            ),
        ),
        proptest::collection::vec(proptest::option::weighted(0.5, 0..n), guests as usize),
        proptest::collection::vec(prop::bool::weighted(0.1), n),
    )
        .prop_map(
            move |(links, mut absent, readdress, active, tc, migration, placement, two_votes)| {
                if absent.iter().all(|a| *a) {
                    absent[0] = false;
                }
                let present: Vec<usize> = (0..n).filter(|i| !absent[*i]).collect();
                let guests = placement
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        let idx = p?;
                        Some((
                            sim::INIT_FIRST_VMID + i as u32,
                            present[idx % present.len()],
                        ))
                    })
                    .collect();
                Manifest {
                    nodes: n,
                    links,
                    absent,
                    two_votes,
                    readdress: readdress.map(|i| i + 1),
                    active,
                    token_coefficient: tc,
                    migration,
                    guests,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Hosts pve1..pveN (all in the desired manifest).
    hosts: usize,
    /// Running qemu guests created on pve1 by `sim init`.
    guests: u32,
    /// The earlier manifest (over the first `before.nodes` hosts).
    before: Manifest,
    /// Steps of the partial reconcile to `before` (0: the hosts stay standalone).
    before_steps: usize,
    /// Hosts powered off after that.
    power_off: Vec<bool>,
    /// Guest 100 gets `lock: backup` (an operator's backup is running).
    lock_guest: bool,
    /// The manifest under test.
    desired: Manifest,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (3usize..=7, 0u32..=6)
        .prop_flat_map(|(n, g)| {
            (
                Just(n),
                Just(g),
                (1..=n).prop_flat_map(move |k| manifest(k, g)),
                0usize..40,
                proptest::collection::vec(prop::bool::weighted(0.15), n),
                manifest(n, g),
                prop::bool::weighted(0.15),
            )
        })
        .prop_map(
            |(hosts, guests, before, before_steps, power_off, desired, lock_guest)| Scenario {
                hosts,
                guests,
                before,
                before_steps,
                power_off,
                lock_guest,
                desired,
            },
        )
}

/// The sim target, checking quorum after every applied step.
struct Watched {
    inner: SimTarget,
    /// Quorate before the run started.
    was_quorate: bool,
    /// Steps after which quorum was lost, with the arithmetic.
    lost: Vec<String>,
}

impl Target for Watched {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn observe(&mut self) -> Result<Observed, TargetError> {
        self.inner.observe()
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        let r = self.inner.apply(step)?;
        let m = self.inner.observe()?.membership;
        if self.was_quorate && !m.quorate {
            self.lost.push(format!(
                "after `{}` ({}): {} of {} expected votes, quorum {}",
                step.summary,
                step.kind.name(),
                m.total_votes,
                m.expected_votes,
                m.quorum
            ));
        }
        Ok(r)
    }
}

fn quorate(dir: &Path) -> bool {
    SimTarget::new(dir)
        .observe()
        .map(|o| o.corosync.is_some() && o.membership.quorate)
        .unwrap_or(false)
}

/// Build the random starting state.
fn setup(s: &Scenario, dir: &Path) {
    let names: Vec<String> = (1..=s.hosts).map(|i| format!("pve{i}")).collect();
    sim::init(
        dir,
        &InitOptions {
            names,
            guests: s.guests,
            memory_mib: 65536,
            force: false,
        },
    )
    .expect("sim init");
    if s.before_steps > 0 {
        let before = s.before.cluster();
        let mut t = SimTarget::new(dir);
        // Any end is a valid random state: done, a gate, the step budget, even a refusal.
        let _ = reconcile::run(
            &before,
            &mut t,
            Mode::Apply {
                max_steps: s.before_steps,
            },
            &|| false,
            &mut |_| {},
        );
    }
    if s.lock_guest && s.guests > 0 {
        let found = walkdir::WalkDir::new(dir.join("nodes"))
            .into_iter()
            .filter_map(Result::ok)
            .find(|e| e.file_name() == "100.conf");
        if let Some(e) = found {
            let mut text = std::fs::read_to_string(e.path()).expect("read 100.conf");
            text.push_str("lock: backup\n");
            std::fs::write(e.path(), text).expect("lock 100");
        }
    }
    for (i, off) in s.power_off.iter().enumerate() {
        if *off {
            sim::set_power(dir, &format!("pve{}", i + 1), false).expect("power off");
        }
    }
}

/// Run the properties; `Err` describes the first violation.
fn check(s: &Scenario) -> Result<(), String> {
    let scratch = Tmp::on_tmpfs("prop");
    let dir = scratch.0.as_path();
    setup(s, dir);
    let desired = s.desired.cluster();
    let mut log = String::new();
    for round in 0..6 {
        let was_quorate = quorate(dir);
        let mut t = Watched {
            inner: SimTarget::new(dir),
            was_quorate,
            lost: Vec::new(),
        };
        let run = reconcile::run(
            &desired,
            &mut t,
            Mode::Apply {
                max_steps: MAX_STEPS,
            },
            &|| false,
            &mut |e| {
                if let reconcile::Event::Done(step, _) = e {
                    let _ = writeln!(log, "  applied {}: {}", step.kind.name(), step.summary);
                }
            },
        );
        if let Some(l) = t.lost.first() {
            return Err(format!(
                "round {round}: quorum lost {l}\napplied:\n{log}\nmanifest:\n{}",
                s.desired.yaml()
            ));
        }
        let report = match run {
            Ok(r) => r,
            Err(
                e @ (ReconcileError::Apply { .. }
                | ReconcileError::NoEffect(_)
                | ReconcileError::TooManySteps(_)),
            ) => {
                return Err(format!(
                    "round {round}: {e}\napplied:\n{log}\nmanifest:\n{}",
                    s.desired.yaml()
                ))
            }
            Err(e) => return Err(format!("round {round}: {e}")),
        };
        if std::env::var_os("PROP_STATS").is_some() {
            eprintln!(
                "stats: round={round} quorate_before={was_quorate} applied={} outcome={:?}",
                report.applied.len(),
                report.outcome
            );
        }
        // Idempotence: a fresh observation plans nothing more that could run now.
        let observed = SimTarget::new(dir).observe().map_err(|e| e.to_string())?;
        let again = plan(&desired, &observed);
        if again.errors.is_empty() {
            if let Some(step) = again.next_runnable() {
                return Err(format!(
                    "round {round}: apply stopped ({:?}) but a new plan has a runnable step: {} {}\napplied:\n{log}",
                    report.outcome,
                    step.kind.name(),
                    step.summary
                ));
            }
        }
        // Play the operator for power gates, then run again.
        let gate = match (&report.outcome, again.first_stop().map(|s| &s.kind)) {
            (Outcome::StoppedAtGate { .. }, Some(StepKind::Wait(w))) => w.gate.clone(),
            _ => return Ok(()),
        };
        let (node, on) = match gate {
            Gate::PowerOff { node } => (node, false),
            Gate::PowerOn { node } => (node, true),
            _ => return Ok(()),
        };
        let before = quorate(dir);
        sim::set_power(dir, &node, on).map_err(|e| e.to_string())?;
        let _ = writeln!(
            log,
            "  operator: power {} {node}",
            if on { "on" } else { "off" }
        );
        if before && !quorate(dir) {
            return Err(format!(
                "round {round}: the gate asked to power {} {node}, which lost quorum\napplied:\n{log}\nmanifest:\n{}",
                if on { "on" } else { "off" },
                s.desired.yaml()
            ));
        }
    }
    Ok(())
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    Config {
        cases,
        max_shrink_iters: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn apply_until_gate_is_idempotent_and_never_loses_quorum(s in scenario()) {
        if let Err(e) = check(&s) {
            prop_assert!(false, "{e}\nscenario: {s:#?}");
        }
    }
}

/// The generator produces valid manifests and setups that reach varied states (a smoke
/// check of the harness itself: a fixed scenario must converge through a power-off gate).
#[test]
fn harness_converges_a_fixed_removal() {
    let m = |nodes, absent: Vec<bool>| Manifest {
        nodes,
        links: 1,
        two_votes: vec![false; nodes],
        absent,
        readdress: None,
        active: false,
        token_coefficient: None,
        migration: Some((false, Some(2), None)),
        guests: vec![(100, 3), (101, 3)],
    };
    let s = Scenario {
        hosts: 4,
        guests: 2,
        before: m(4, vec![false; 4]),
        before_steps: 40,
        power_off: vec![false; 4],
        lock_guest: false,
        desired: Manifest {
            guests: Vec::new(),
            ..m(4, vec![false, false, false, true])
        },
    };
    check(&s).unwrap();
    let scratch = Tmp::on_tmpfs("prop");
    setup(&s, &scratch.0);
    let o = SimTarget::new(&scratch.0).observe().unwrap();
    assert_eq!(o.guests.get(&100).map(|g| g.node.as_str()), Some("pve4"));
}
