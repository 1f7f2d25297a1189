//! Kill-and-resume: an operator's whole session against the simulator — create a cluster,
//! join nodes, set datacenter.cfg, place guests, then remove a node (evacuation, the
//! power-off gate, delnode) — interrupted after step k for every k, then re-run. The end
//! state (corosync.conf bytes, datacenter.cfg, guest placement, the simulator's host and
//! guest state) must be the same as the uninterrupted session's.
//!
//! Two ways to interrupt: cancellation between steps (what the daemon does on shutdown) and
//! the `max_steps` budget running out (`reconcile --max-steps`, an error mid-plan).

mod common;

use common::Tmp;
use pve_gitops::reconcile::{self, Event, Mode, Outcome, ReconcileError};
use pve_gitops::target::sim::{self, InitOptions, SimTarget};
use pve_gitops_schema::spec::Cluster;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

const NODES: &str = r#"
    - {name: pve1, nodeid: 1, ring0_addr: 10.10.10.1, addresses: [10.1.2.1/24]}
    - {name: pve2, nodeid: 2, ring0_addr: 10.10.10.2, addresses: [10.1.2.2/24]}
    - {name: pve3, nodeid: 3, ring0_addr: 10.10.10.3, addresses: [10.1.2.3/24]}
"#;

/// Four nodes, datacenter.cfg settings, guests spread from pve1.
fn grow() -> Cluster {
    manifest(
        "    - {name: pve4, nodeid: 4, ring0_addr: 10.10.10.4, addresses: [10.1.2.4/24]}\n",
        "  guests:\n    - {vmid: 100, type: qemu, node: pve4}\n    - {vmid: 101, type: qemu, node: pve4}\n    - {vmid: 102, type: qemu, node: pve2}\n",
    )
}

/// pve4 goes away: its guests are evacuated, then it is powered off and deleted.
fn shrink() -> Cluster {
    manifest(
        "    - {name: pve4, nodeid: 4, ring0_addr: 10.10.10.4, addresses: [10.1.2.4/24], state: absent}\n",
        "  guests:\n    - {vmid: 102, type: qemu, node: pve2}\n",
    )
}

fn manifest(node4: &str, guests: &str) -> Cluster {
    let y = format!(
        "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: resume\nspec:\n  nodes:{NODES}{node4}  migration:\n    type: secure\n    network: 10.1.2.0/24\n    max_workers: 3\n    bandwidth_limit: 256000\n{guests}"
    );
    match pve_gitops_schema::validate::parse_cluster("resume.yaml", &y) {
        Ok((c, _)) => c,
        Err(d) => panic!("invalid test manifest: {d:?}\n{y}"),
    }
}

/// One thing the operator does.
enum Act {
    /// `pve-gitops reconcile -f ..` (apply) with this manifest.
    Reconcile(fn() -> Cluster),
    /// `pve-gitops sim power-off DIR NODE`.
    PowerOff(&'static str),
}

const SESSION: &[Act] = &[
    Act::Reconcile(grow),
    Act::Reconcile(shrink), // stops at "power off pve4"
    Act::PowerOff("pve4"),
    Act::Reconcile(shrink),
];

#[derive(Clone, Copy)]
enum Interrupt {
    Cancel,
    MaxSteps,
}

/// A fresh four-node simulator with guests, on tmpfs when there is one.
fn scratch() -> Tmp {
    let t = Tmp::on_tmpfs("resume");
    sim::init(
        t.path(),
        &InitOptions {
            names: (1..=4).map(|i| format!("pve{i}")).collect(),
            guests: 4,
            memory_mib: 65536,
            force: false,
        },
    )
    .expect("sim init");
    t
}

/// Run the session; with `interrupt_after = Some(k)` the reconcile that is running when the
/// k-th step (counted over the whole session) has been applied is interrupted, and the
/// operator re-runs that same reconcile. Returns the applied step kinds in order.
fn session(dir: &Path, interrupt_after: Option<(usize, Interrupt)>) -> Vec<String> {
    let applied: Cell<usize> = Cell::new(0);
    let mut kinds = Vec::new();
    let mut interrupted = false;
    for (i, act) in SESSION.iter().enumerate() {
        match act {
            Act::PowerOff(node) => {
                sim::set_power(dir, node, false).expect("power off");
            }
            Act::Reconcile(m) => {
                let cluster = m();
                // An interrupted run is followed by a re-run of the same reconcile.
                for attempt in 0..2 {
                    let limit = match interrupt_after {
                        Some((k, how)) if !interrupted && applied.get() < k => Some((k, how)),
                        _ => None,
                    };
                    let mut t = SimTarget::new(dir);
                    let mode = match limit {
                        Some((k, Interrupt::MaxSteps)) => Mode::Apply {
                            max_steps: k - applied.get(),
                        },
                        _ => Mode::Apply { max_steps: 1000 },
                    };
                    let cancel = |limit: Option<(usize, Interrupt)>| matches!(limit, Some((k, Interrupt::Cancel)) if applied.get() >= k);
                    let r = reconcile::run(&cluster, &mut t, mode, &|| cancel(limit), &mut |e| {
                        if let Event::Done(s, _) = e {
                            applied.set(applied.get() + 1);
                            kinds.push(format!("{}:{}", s.kind.name(), s.node));
                        }
                    });
                    let hit = limit.is_some_and(|(k, _)| applied.get() >= k);
                    if hit {
                        // Interrupted (or the k-th step happened to end this reconcile: then the
                        // re-run finds nothing to do, which is also a resume).
                        match (&r, limit) {
                            (Ok(rep), Some((_, Interrupt::Cancel))) => assert!(
                                matches!(
                                    rep.outcome,
                                    Outcome::Cancelled
                                        | Outcome::InSync
                                        | Outcome::StoppedAtGate { .. }
                                ),
                                "act {i}: {:?}",
                                rep.outcome
                            ),
                            (Ok(_), _) | (Err(ReconcileError::TooManySteps(_)), _) => {}
                            (Err(e), _) => panic!("act {i}: interrupted run failed: {e}"),
                        }
                        interrupted = true;
                        assert_eq!(attempt, 0, "act {i}: interrupted twice");
                        continue;
                    }
                    match r {
                        Ok(rep) => {
                            let want_gate = i == 1;
                            match (&rep.outcome, want_gate) {
                                (Outcome::InSync, false) => {}
                                (Outcome::StoppedAtGate { what }, true) => {
                                    assert!(what.contains("power off pve4"), "{what}")
                                }
                                (o, _) => panic!("act {i} attempt {attempt}: unexpected {o:?}"),
                            }
                            break;
                        }
                        Err(e) => panic!("act {i} attempt {attempt}: {e}"),
                    }
                }
            }
        }
    }
    if let Some((k, _)) = interrupt_after {
        assert!(
            interrupted,
            "the session was never interrupted after step {k}"
        );
    }
    kinds
}

/// The end state: every file except the pmxcfs change counters of `.members` / `.vmlist`
/// (which count writes, not state), plus the placement `.vmlist` lists.
fn end_state(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.expect("walk");
        let rel = e
            .path()
            .strip_prefix(dir)
            .expect("under dir")
            .display()
            .to_string();
        if !e.file_type().is_file() {
            out.insert(rel, "<dir>".into());
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("read");
        let text = match rel.as_str() {
            ".members" | ".vmlist" => text
                .lines()
                .filter(|l| !l.trim_start().starts_with("\"version\""))
                .map(|l| {
                    // per-entry versions of .vmlist: keep node and type only
                    l.split(", \"version\"").next().unwrap_or(l).to_string()
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => text,
        };
        out.insert(rel, text);
    }
    out
}

fn check_every_k(how: Interrupt) {
    let reference = scratch();
    let steps = session(&reference.0, None);
    assert!(
        steps.len() >= 6,
        "the session must have at least 6 steps: {steps:?}"
    );
    for kind in [
        "create_cluster",
        "join_node",
        "set_datacenter",
        "migrate_guest",
        "remove_node",
    ] {
        assert!(
            steps.iter().any(|s| s.starts_with(kind)),
            "no {kind} in {steps:?}"
        );
    }
    let want = end_state(&reference.0);
    assert!(want["corosync.conf"].contains("config_version"));
    for k in 1..steps.len() {
        let run = scratch();
        let resumed = session(&run.0, Some((k, how)));
        let got = end_state(&run.0);
        if got != want {
            let mut msg = format!(
                "interrupted after step {k} ({}), the end state differs\nuninterrupted: {steps:?}\nresumed:       {resumed:?}\n",
                steps[k - 1]
            );
            for (f, w) in &want {
                match got.get(f) {
                    Some(g) if g == w => {}
                    Some(g) => msg.push_str(&format!("--- {f} want:\n{w}\n--- got:\n{g}\n")),
                    None => msg.push_str(&format!("missing {f}\n")),
                }
            }
            for f in got.keys().filter(|f| !want.contains_key(*f)) {
                msg.push_str(&format!("extra {f}\n"));
            }
            panic!("{msg}");
        }
        // Nothing is done twice: the resumed session applies the same steps.
        assert_eq!(resumed, steps, "interrupted after step {k}");
    }
}

#[test]
fn cancelled_after_every_step_then_resumed_reaches_the_same_end_state() {
    check_every_k(Interrupt::Cancel);
}

#[test]
fn step_budget_exhausted_after_every_step_then_resumed_reaches_the_same_end_state() {
    check_every_k(Interrupt::MaxSteps);
}
