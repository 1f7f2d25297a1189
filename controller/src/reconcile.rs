//! One reconcile: observe -> plan -> apply step by step (re-observing before every step), as a
//! library function shared by the `reconcile` command and the `watch` daemon.
//!
//! Apply runs the first runnable step of a fresh plan, then observes and plans again, so a
//! step whose effect is already present is never repeated, another controller's work is seen,
//! and an interrupted run converges when re-run. It stops at a `wait` gate, at a step another
//! node must run, when the plan is refused, or when `cancelled()` says so (only ever between
//! steps: a step is never interrupted between its write and its rename).
//!
//! With [`Options::peer_wait`] (per-node controllers), a run that would stop because the next
//! step is another node's, or while another controller holds the cluster lock (the plan may
//! show its step half done, or its step may still need this node;
//! [`Target::busy_elsewhere`]), re-observes instead whenever the target says the cluster may
//! have changed ([`Target::await_change`]), up to that long: the joining node's controller
//! waits for a member's nodelist edit and then starts corosync itself in the same run.

use crate::plan::step::Step;
use crate::plan::{plan, Plan};
use crate::target::{Applied, Target, TargetError};
use pve_gitops_schema::spec::Cluster;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How often a run that waits for other controllers re-observes, on targets that cannot tell
/// when the cluster changed ([`Target::await_change`]; observing a PVE node runs `pvecm` or
/// calls its API, so not too often).
pub const PEER_POLL: Duration = Duration::from_secs(1);
/// The longest a waiting run goes without re-observing, on targets that can tell.
pub const AWAIT_CHANGE: Duration = Duration::from_secs(1);

/// How a run works with the controllers on other nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Apply only: how long to wait for other controllers (the next step is another node's,
    /// or another controller is in the middle of a step) before stopping. Zero: stop at once.
    pub peer_wait: Duration,
}

/// Plan only, or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe and plan; change nothing.
    DryRun,
    /// Apply until converged or stopped, at most `max_steps` steps.
    Apply {
        /// Safety limit on applied steps.
        max_steps: usize,
    },
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Outcome {
    /// The cluster matches the manifest (nothing was or is left to do).
    InSync,
    /// Dry run: there are steps to apply.
    ChangesPending,
    /// Apply stopped at a gate or blocked step; `what` says what the operator must do.
    StoppedAtGate {
        /// The gate or block, as one line.
        what: String,
    },
    /// The next step must run on another node's controller.
    WaitingForNode {
        /// Who, and what.
        what: String,
    },
    /// The plan is refused (errors); nothing was applied from it.
    Refused,
    /// Cancelled between steps (shutdown).
    Cancelled,
}

/// A step that was applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedStep {
    /// The step's kind.
    pub kind: &'static str,
    /// Where it ran.
    pub node: String,
    /// What it did.
    pub summary: String,
    /// The target's message.
    pub message: String,
    /// How long it took (ms; simulated on the sim target).
    pub duration_ms: u64,
}

/// The result of one reconcile.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// The last plan (what is left; empty when converged).
    pub plan: Plan,
    /// The first plan (what the run set out to do).
    pub initial_plan: Plan,
    /// Steps applied, in order.
    pub applied: Vec<AppliedStep>,
}

/// Progress events, for printing or logging.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step is about to run.
    Starting(&'a Step),
    /// A step finished.
    Done(&'a Step, &'a Applied),
    /// A step was planned from a state that changed (another controller); re-planning.
    Replanning(&'a TargetError),
    /// Waiting for another controller (said once per distinct reason).
    Waiting(&'a str),
}

/// Errors that end a reconcile without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Observing the cluster failed.
    #[error("observing the cluster failed: {0}")]
    Observe(#[source] TargetError),
    /// Applying a step failed.
    #[error("{kind} on {node} failed: {source}")]
    Apply {
        /// The step's kind.
        kind: &'static str,
        /// Where.
        node: String,
        /// Why.
        #[source]
        source: TargetError,
    },
    /// A step reported success but a new observation does not show its effect.
    #[error("step `{0}` was applied but the cluster does not show its effect; stopping")]
    NoEffect(String),
    /// `max_steps` reached.
    #[error("stopped after {0} applied steps without converging")]
    TooManySteps(usize),
}

/// Run one reconcile of `cluster` against `target`, stopping at once where another
/// controller has to act ([`Options::default`]).
///
/// # Errors
/// Observing failed, a step failed or was refused by the cluster, or the loop made no
/// progress. Steps applied before the error are in the cluster (re-running converges).
pub fn run(
    cluster: &Cluster,
    target: &mut dyn Target,
    mode: Mode,
    cancelled: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report, ReconcileError> {
    run_with(
        cluster,
        target,
        mode,
        Options::default(),
        cancelled,
        on_event,
    )
}

/// What ends a run, or the step to apply next.
fn next_step(p: &Plan, target: &dyn Target, cancelled: &dyn Fn() -> bool) -> Result<Step, Outcome> {
    if !p.errors.is_empty() {
        return Err(Outcome::Refused);
    }
    if p.in_sync() {
        return Err(Outcome::InSync);
    }
    if cancelled() {
        return Err(Outcome::Cancelled);
    }
    let Some(step) = p.next_runnable() else {
        let what = p
            .first_stop()
            .map(|s| match &s.blocked {
                Some(b) if !matches!(s.kind, crate::plan::step::StepKind::Wait(_)) => {
                    format!("{} {}: {b}", s.kind.name(), s.node)
                }
                _ => s.summary.clone(),
            })
            .unwrap_or_default();
        return Err(Outcome::StoppedAtGate { what });
    };
    if let Err(who) = target.can_run(step) {
        return Err(Outcome::WaitingForNode {
            what: format!("{who}: {}", step.summary),
        });
    }
    Ok(step.clone())
}

/// Run one reconcile of `cluster` against `target` with `opts`.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    cluster: &Cluster,
    target: &mut dyn Target,
    mode: Mode,
    opts: Options,
    cancelled: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report, ReconcileError> {
    let mut observed = target.observe().map_err(ReconcileError::Observe)?;
    let initial = plan(cluster, &observed);
    let mut report = Report {
        outcome: Outcome::InSync,
        plan: initial.clone(),
        initial_plan: initial,
        applied: Vec::new(),
    };
    let max_steps = match mode {
        Mode::DryRun => {
            report.outcome = if !report.plan.errors.is_empty() {
                Outcome::Refused
            } else if report.plan.in_sync() {
                Outcome::InSync
            } else {
                Outcome::ChangesPending
            };
            return Ok(report);
        }
        Mode::Apply { max_steps } => max_steps,
    };
    let wait_until = Instant::now() + opts.peer_wait;
    let mut last_key: Option<String> = None;
    let mut last_wait: Option<String> = None;
    let mut stale_retries = 0;
    loop {
        let step = match next_step(&report.plan, &*target, cancelled) {
            Ok(step) => step,
            Err(outcome) => {
                // Another controller's turn (its node's step, or its step in progress):
                // wait for it, when allowed, instead of stopping.
                let why = match &outcome {
                    Outcome::WaitingForNode { what } if target.per_node() => Some(what.clone()),
                    // In sync included: another controller's step in progress (a rolling
                    // restart) may still need this node (to start its corosync again).
                    Outcome::StoppedAtGate { .. } | Outcome::Refused | Outcome::InSync => {
                        target.busy_elsewhere(&observed)
                    }
                    _ => None,
                };
                match why {
                    Some(why) if Instant::now() < wait_until && !cancelled() => {
                        if last_wait.as_deref() != Some(why.as_str()) {
                            on_event(Event::Waiting(&why));
                            last_wait = Some(why);
                        }
                        let left = wait_until.saturating_duration_since(Instant::now());
                        target.await_change(left.min(AWAIT_CHANGE));
                        observed = target.observe().map_err(ReconcileError::Observe)?;
                        report.plan = plan(cluster, &observed);
                        continue;
                    }
                    _ => {
                        report.outcome = outcome;
                        return Ok(report);
                    }
                }
            }
        };
        if report.applied.len() >= max_steps {
            return Err(ReconcileError::TooManySteps(max_steps));
        }
        let key = step.key();
        if last_key.as_deref() == Some(key.as_str()) {
            return Err(ReconcileError::NoEffect(step.summary));
        }
        on_event(Event::Starting(&step));
        match target.apply(&step) {
            Ok(done) => {
                on_event(Event::Done(&step, &done));
                report.applied.push(AppliedStep {
                    kind: step.kind.name(),
                    node: step.node.clone(),
                    summary: step.summary.clone(),
                    message: done.message,
                    duration_ms: done.duration_ms,
                });
                last_key = Some(key);
                stale_retries = 0;
            }
            Err(e @ TargetError::Stale { .. }) if stale_retries < 100 => {
                on_event(Event::Replanning(&e));
                stale_retries += 1;
                last_key = None;
            }
            Err(source) => {
                return Err(ReconcileError::Apply {
                    kind: step.kind.name(),
                    node: step.node.clone(),
                    source,
                })
            }
        }
        observed = target.observe().map_err(ReconcileError::Observe)?;
        report.plan = plan(cluster, &observed);
    }
}
