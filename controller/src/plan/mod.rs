//! The planner: `plan(&Cluster, &Observed) -> Plan`, pure and deterministic (no I/O, no clock).
//!
//! The plan is built by replaying: starting from the observed state, [`phases::next_batch`]
//! proposes the next steps the manifest needs (create, regain quorum, converge versions, remove
//! powered-off nodes, join, corosync edits, expected votes, datacenter.cfg, guest placement,
//! evacuation, power-off gates), each step's `apply_model` changes the model as the real step
//! would, and the replay asks again until nothing is left. Every step that changes membership or
//! votes is checked against the votequorum model: a step that would make a quorate cluster lose
//! quorum is deferred (re-ordered) and retried once the other steps are planned; if it still
//! loses quorum the plan is refused, naming the step and the vote arithmetic.
//!
//! A `wait` gate (power off a node, config versions converging) is assumed satisfied so the
//! plan can show what follows it; every step after a gate is marked blocked by it.

pub mod corosync_diff;
pub mod phases;
pub mod quorum;
pub mod refuse;
pub mod step;

use crate::observed::{Membership, Observed};
use pve_gitops_schema::spec::Cluster;
use serde::Serialize;
use std::collections::BTreeSet;
use step::{Gate, Method, Step, StepKind};

/// Upper bound on replay rounds (a safety net against a planner bug, never reached normally).
const MAX_ROUNDS: usize = 100_000;

/// An ordered, quorum-checked plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Why the plan is refused (unsafe or impossible); nothing may be applied when not empty.
    pub errors: Vec<String>,
    /// Drift and other things the operator should know.
    pub warnings: Vec<String>,
    /// corosync.conf now (None: no cluster).
    #[serde(skip)]
    pub corosync_before: Option<String>,
    /// corosync.conf after the whole plan.
    #[serde(skip)]
    pub corosync_after: Option<String>,
    /// datacenter.cfg now.
    #[serde(skip)]
    pub datacenter_before: String,
    /// datacenter.cfg after the whole plan.
    #[serde(skip)]
    pub datacenter_after: String,
}

impl Plan {
    /// Nothing to do and nothing refused.
    pub fn in_sync(&self) -> bool {
        self.steps.is_empty() && self.errors.is_empty()
    }

    /// The first step that can run now (not blocked, not a gate).
    pub fn next_runnable(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.blocked.is_none() && !matches!(s.kind, StepKind::Wait(_)))
    }

    /// The first gate or blocked step, if any.
    pub fn first_stop(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.blocked.is_some() || matches!(s.kind, StepKind::Wait(_)))
    }
}

/// The parts of the model that quorum-affecting steps change (small; cloned for a trial).
struct Snapshot {
    corosync: Option<pve_gitops_schema::corosync::Document>,
    hosts: std::collections::BTreeMap<String, crate::observed::Host>,
    membership: Membership,
    versions: std::collections::BTreeMap<String, u64>,
    leftover: Vec<String>,
}

impl Snapshot {
    fn take(m: &Observed) -> Snapshot {
        Snapshot {
            corosync: m.corosync.clone(),
            hosts: m.hosts.clone(),
            membership: m.membership.clone(),
            versions: m.node_config_versions.clone(),
            leftover: m.leftover_node_dirs.clone(),
        }
    }

    fn restore(self, m: &mut Observed) {
        m.corosync = self.corosync;
        m.hosts = self.hosts;
        m.membership = self.membership;
        m.node_config_versions = self.versions;
        m.leftover_node_dirs = self.leftover;
    }
}

/// Why applying `step` to `model` would lose quorum, if it would.
fn loses_quorum(step: &Step, model: &mut Observed) -> Option<String> {
    let before = model.membership.clone();
    if let StepKind::UpdateCorosync(u) = &step.kind {
        if u.method == Method::RollingRestart && before.quorate {
            let votes = model.node_votes();
            for n in &u.restart_order {
                let v = votes.get(n).copied().unwrap_or(1);
                if before.total_votes.saturating_sub(v) < before.quorum {
                    return Some(format!(
                        "restarting {n} takes its {v} vote(s) away: {} - {v} < quorum {}",
                        before.total_votes, before.quorum
                    ));
                }
            }
        }
    }
    let snap = Snapshot::take(model);
    step.apply_model(model);
    let after = model.membership.clone();
    if before.quorate && !after.quorate {
        snap.restore(model);
        return Some(format!(
            "afterwards {} of {} expected votes are present and quorum is {}",
            after.total_votes, after.expected_votes, after.quorum
        ));
    }
    None
}

/// A join raises the expected votes when the members add the node to the nodelist, but the
/// node's vote counts only once its corosync runs: when the votes present now are below the
/// new quorum, the cluster is inquorate in between (as with `pvecm add`). Allowed — the node
/// starts seconds later — but said, with how to avoid it.
fn join_gap(step: &Step, before: &Membership, after: &Membership) -> Option<String> {
    let StepKind::JoinNode(j) = &step.kind else {
        return None;
    };
    // Only with votes missing now: growing a cluster whose members are all up (the second
    // node of a new cluster) has this gap by nature, and nothing to power on would close it.
    let missing = before.total_votes < before.expected_votes;
    (before.quorate && missing && before.total_votes < after.quorum).then(|| {
        format!(
            "while {} joins, from the members' nodelist edit until its corosync runs, {} of {} expected votes are present and quorum is {}: the cluster is inquorate for that time (Proxmox VE HA nodes fence themselves after 60 s without quorum); power on the members that are down first to avoid it",
            j.node, before.total_votes, after.expected_votes, after.quorum
        )
    })
}

/// Plan how to bring `observed` to `desired`.
///
/// # Guarantees
/// Pure and deterministic: the same inputs give the same plan. An in-sync cluster gives an
/// empty plan. No step in the plan makes a quorate cluster lose quorum (such plans are refused
/// with `errors`).
pub fn plan(desired: &Cluster, observed: &Observed) -> Plan {
    let (migration_errors, migration_warnings) = refuse::migration_network(desired, observed);
    let mut p = Plan {
        corosync_before: observed.corosync.as_ref().map(|d| d.to_string()),
        datacenter_before: observed.datacenter.to_string(),
        warnings: observed
            .notes
            .iter()
            .cloned()
            .chain(refuse::drift_warnings(desired, observed))
            .chain(migration_warnings)
            .collect(),
        errors: refuse::refusals(desired, observed)
            .into_iter()
            .chain(migration_errors)
            .collect(),
        ..Plan::default()
    };
    if !p.errors.is_empty() {
        p.corosync_after = p.corosync_before.clone();
        p.datacenter_after = p.datacenter_before.clone();
        return p;
    }
    let mut model = observed.clone();
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    let mut deferred: Vec<(Step, String)> = Vec::new();
    let mut gate: Option<String> = None;
    let mut retried = false;
    'rounds: for _ in 0..MAX_ROUNDS {
        let batch = phases::next_batch(desired, &model, &excluded);
        if batch.steps.is_empty() {
            p.errors.extend(batch.errors);
            if !deferred.is_empty() && !retried {
                retried = true;
                for (s, _) in deferred.drain(..) {
                    excluded.remove(&s.key());
                }
                continue;
            }
            break;
        }
        p.errors.extend(batch.errors);
        for mut step in batch.steps {
            let key = step.key();
            if step.blocked.is_some() {
                excluded.insert(key);
                p.steps.push(step);
                continue;
            }
            if step.affects_quorum() {
                let before = model.membership.clone();
                if let Some(why) = loses_quorum(&step, &mut model) {
                    excluded.insert(key);
                    deferred.push((step, why));
                    continue;
                }
                if let Some(w) = join_gap(&step, &before, &model.membership) {
                    p.warnings.push(w);
                }
            } else {
                step.apply_model(&mut model);
            }
            if let Some(g) = &gate {
                step.blocked = Some(format!("after gate: {g}"));
            }
            if let StepKind::Wait(w) = &step.kind {
                excluded.insert(key);
                gate.get_or_insert_with(|| w.summary());
                let stop = matches!(w.gate, Gate::Quorum { .. });
                p.steps.push(step);
                if stop {
                    break 'rounds;
                }
                continue;
            }
            p.steps.push(step);
        }
    }
    for (s, why) in deferred {
        p.errors.push(format!(
            "refused: `{}` ({} on {}) would lose quorum: {why}",
            s.summary,
            s.kind.name(),
            s.node
        ));
    }
    p.corosync_after = model.corosync.as_ref().map(|d| d.to_string());
    p.datacenter_after = model.datacenter.to_string();
    p
}
