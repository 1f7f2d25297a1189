//! One run of the loop: fetch the source → select and validate the manifest → reconcile
//! (apply, or only plan while suspended or when drift is only reported) → record the outcome
//! in the status file and the metrics, whatever happened (source-controller's
//! `defer finalizeStatus`) → decide when to run again (Flux's `RequeueAfter`; kube's
//! `error_policy`).

use super::backoff::Backoff;
use super::scheduler::Trigger;
use super::{lock_root, target_files, Config, DaemonError, DriftPolicy, SourceSpec};
use crate::cfs_lock::{CfsLock, LockError, LockOptions, CONTROLLER_LOCK};
use crate::metrics::Metrics;
use crate::reconcile::{self, Event, Mode, Outcome, ReconcileError, Report};
use crate::source::{self, ErrorKind, Fetched, SourceError};
use crate::status::{self, kind, HistoryEntry, Status, StatusFile};
use crate::target::{self, TargetError};
use pve_gitops_schema::spec::Cluster;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a daemon holding the cluster lock refreshes it while a run goes on (its lifetime
/// is 120 s).
const LOCK_REFRESH: Duration = Duration::from_secs(20);

/// What the loop should do after a run.
#[derive(Debug, Default)]
pub(crate) struct CycleResult {
    /// Pending requests to drop.
    pub cancel: Vec<Trigger>,
    /// Requests to (re)schedule after the given time.
    pub requeue: Vec<(Trigger, Duration)>,
    /// Hashes of the watched live files after this run (None: no reconcile ran).
    pub hashes: Option<HashMap<PathBuf, Option<String>>>,
}

/// A revision that will not be reconciled again until a new one arrives.
#[derive(Debug, Clone)]
struct Stall {
    revision: String,
    /// A refused plan may become acceptable when the cluster changes: re-check on resync.
    recheck: bool,
}

/// The worker's state (moved into the task of each run).
pub(crate) struct Worker {
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    status: Status,
    file: StatusFile,
    backoff: Backoff,
    stalled: Option<Stall>,
    graceful: CancellationToken,
}

/// What the blocking part of a reconcile returns.
enum Run {
    /// Another controller holds the cluster lock.
    Locked(String),
    /// The reconcile ran.
    Done {
        result: Box<Result<Report, ReconcileError>>,
        applied_kinds: Vec<&'static str>,
        config_version: Option<u64>,
        hashes: HashMap<PathBuf, Option<String>>,
    },
}

/// sha256 of a file's content (None: absent or unreadable).
pub(crate) fn hash_file(p: &Path) -> Option<String> {
    std::fs::read(p)
        .ok()
        .map(|b| crate::source::path::hex(&Sha256::digest(&b)))
}

fn jittered(d: Duration) -> Duration {
    // ±5 % so that many daemons started together do not resync in lockstep.
    d.mul_f64(0.95 + fastrand::f64() * 0.1)
}

impl Worker {
    pub(crate) fn new(
        cfg: Arc<Config>,
        metrics: Arc<Metrics>,
        graceful: CancellationToken,
    ) -> Result<Worker, DaemonError> {
        let mut status = match status::load(&cfg.state_dir) {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable status file");
                Status::default()
            }
        };
        status.source = cfg.source.describe();
        status.target = match &cfg.target.spec {
            Some(s) => s.clone(),
            None => format!("{} (default)", target::effective_spec(&cfg.target)),
        };
        if status.condition(kind::READY).is_none() {
            status.set(kind::READY, false, "Progressing", "starting");
        }
        let mut file = StatusFile::new(&cfg.state_dir);
        file.write(&status).map_err(|source| DaemonError::State {
            path: cfg.state_dir.clone(),
            source,
        })?;
        Ok(Worker {
            cfg,
            metrics,
            status,
            file,
            backoff: Backoff::default(),
            stalled: None,
            graceful,
        })
    }

    fn save(&mut self) {
        if let Err(e) = self.file.write(&self.status) {
            tracing::error!(error = %e, path = %self.file.path().display(), "cannot write the status file");
        }
    }

    fn poll(&self) -> (Trigger, Duration) {
        (Trigger::Poll, self.cfg.poll_interval)
    }

    /// One run for the due `triggers`.
    pub(crate) async fn cycle(&mut self, triggers: Vec<Trigger>) -> CycleResult {
        let names: Vec<&str> = triggers.iter().map(|t| t.name()).collect();
        let forced = triggers.iter().any(|t| t.forces_reconcile());
        tracing::debug!(triggers = ?names, "run");
        let suspended = status::is_suspended(&self.cfg.state_dir);
        self.metrics.suspended.set(i64::from(suspended));
        let suspend_changed = self.status.suspended != suspended;
        self.status.suspended = suspended;

        let fetched = self.fetch().await;
        let f = match fetched {
            Ok(f) => f,
            Err(e) => return self.fetch_failed(e),
        };
        let same = self.status.last_attempted_revision.as_deref() == Some(f.revision.as_str());
        if same && !forced && !suspend_changed {
            return CycleResult {
                requeue: vec![self.poll()],
                ..CycleResult::default()
            };
        }
        if let Some(st) = &self.stalled {
            if st.revision == f.revision && !(st.recheck && forced) {
                return CycleResult {
                    requeue: vec![self.poll()],
                    ..CycleResult::default()
                };
            }
        }
        let cluster = match source::select_cluster(&f.files, self.cfg.cluster.as_deref()) {
            Ok(sel) => {
                for w in &sel.warnings {
                    tracing::warn!(revision = %f.revision, "{w}");
                }
                sel.cluster
            }
            Err(errors) => return self.invalid(&f.revision, &errors),
        };
        self.reconcile(f.revision, cluster, suspended).await
    }

    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let src = self.cfg.source.clone();
        let applied = self.status.last_applied_revision.clone();
        let task = tokio::task::spawn_blocking(move || match &src {
            SourceSpec::Git(g) => g.fetch(applied.as_deref()),
            SourceSpec::Path(p) => p.fetch(),
        });
        match task.await {
            Ok(r) => r,
            Err(e) => Err(SourceError::Read(format!("fetch task failed: {e}"))),
        }
    }

    fn fetch_failed(&mut self, e: SourceError) -> CycleResult {
        self.metrics.fetch_errors.inc();
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::Transient => {
                let delay = self.backoff.next_delay();
                tracing::warn!(error = %msg, retry_in = ?delay, "source fetch failed");
                self.status.set(kind::READY, false, e.reason(), &msg);
                self.status.set(
                    kind::RECONCILING,
                    true,
                    "ProgressingWithRetry",
                    &format!("retrying in {:.1}s", delay.as_secs_f64()),
                );
                self.save();
                CycleResult {
                    requeue: vec![(Trigger::Retry, delay)],
                    ..CycleResult::default()
                }
            }
            ErrorKind::Stalled => {
                let rev = e.revision().unwrap_or_default().to_string();
                let already = self.stalled.as_ref().is_some_and(|s| s.revision == rev);
                if !already {
                    tracing::error!(error = %msg, "revision refused; stalled until a new revision");
                    self.metrics.reconciled("stalled", 0.0);
                    self.stall(&rev, e.reason(), &msg, false);
                    self.status.record(HistoryEntry {
                        revision: rev,
                        started_at: status::now_rfc3339(),
                        duration_ms: 0,
                        result: "stalled".into(),
                        steps_applied: 0,
                        message: msg,
                    });
                    self.save();
                }
                CycleResult {
                    cancel: vec![Trigger::Retry],
                    requeue: vec![self.poll()],
                    hashes: None,
                }
            }
        }
    }

    fn stall(&mut self, revision: &str, reason: &str, message: &str, recheck: bool) {
        let keep = match &self.status.last_applied_revision {
            Some(a) => format!("; {a} stays applied"),
            None => String::new(),
        };
        self.status.last_attempted_revision = Some(revision.to_string());
        self.status
            .set(kind::READY, false, reason, &format!("{message}{keep}"));
        self.status.set(kind::STALLED, true, reason, message);
        self.status.clear(kind::RECONCILING);
        self.stalled = Some(Stall {
            revision: revision.to_string(),
            recheck,
        });
        self.backoff.reset();
    }

    fn invalid(&mut self, revision: &str, errors: &[String]) -> CycleResult {
        let mut msg = errors
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if errors.len() > 5 {
            msg.push_str(&format!(" (and {} more)", errors.len() - 5));
        }
        let msg = format!("invalid manifest: {msg}");
        tracing::error!(revision, "{msg}; stalled until a new revision");
        self.metrics.reconciled("stalled", 0.0);
        self.stall(revision, "ValidationFailed", &msg, false);
        self.status.record(HistoryEntry {
            revision: revision.to_string(),
            started_at: status::now_rfc3339(),
            duration_ms: 0,
            result: "invalid".into(),
            steps_applied: 0,
            message: msg,
        });
        self.save();
        CycleResult {
            cancel: vec![Trigger::Retry, Trigger::Gate],
            requeue: vec![self.poll()],
            hashes: None,
        }
    }

    async fn reconcile(
        &mut self,
        revision: String,
        cluster: Cluster,
        suspended: bool,
    ) -> CycleResult {
        let started = Instant::now();
        let started_at = status::now_rfc3339();
        let is_new = self.status.last_applied_revision.as_deref() != Some(revision.as_str());
        let report_only = suspended || (self.cfg.drift == DriftPolicy::Report && !is_new);
        let mode = if report_only {
            Mode::DryRun
        } else {
            Mode::Apply {
                max_steps: self.cfg.max_steps,
            }
        };
        self.status.cluster = Some(cluster.metadata.name.clone());
        let first_attempt =
            self.status.last_attempted_revision.as_deref() != Some(revision.as_str());
        if is_new && !report_only && first_attempt {
            tracing::info!(%revision, "reconciling a new revision");
            self.status.set(
                kind::RECONCILING,
                true,
                "Progressing",
                &format!("Reconciling revision {revision}"),
            );
            self.save();
        }
        self.status.last_attempted_revision = Some(revision.clone());
        let run = self.run_blocking(cluster, mode).await;
        let secs = started.elapsed().as_secs_f64();
        let mut entry = HistoryEntry {
            revision: revision.clone(),
            started_at,
            duration_ms: (secs * 1000.0) as u64,
            result: String::new(),
            steps_applied: 0,
            message: String::new(),
        };
        let mut out = CycleResult {
            cancel: vec![Trigger::Retry, Trigger::Gate],
            requeue: vec![self.poll(), (Trigger::Resync, jittered(self.cfg.interval))],
            hashes: None,
        };
        let (result, applied_kinds, config_version, hashes) = match run {
            Err(e) => {
                let msg = e.to_string();
                self.transient(&msg, &mut out);
                entry.result = "failed".into();
                entry.message = msg;
                self.finish(entry, "failed", secs);
                return out;
            }
            Ok(Run::Locked(holder)) => {
                let wait = self.cfg.gate_interval.min(Duration::from_secs(2));
                let msg = format!("the cluster lock is held by {holder}; retrying");
                tracing::info!("{msg}");
                self.metrics.reconciled("locked", secs);
                self.status
                    .set(kind::RECONCILING, true, "WaitingForLock", &msg);
                self.save();
                out.requeue.push((Trigger::Gate, jittered(wait)));
                return out;
            }
            Ok(Run::Done {
                result,
                applied_kinds,
                config_version,
                hashes,
            }) => (*result, applied_kinds, config_version, hashes),
        };
        out.hashes = Some(hashes);
        for k in &applied_kinds {
            self.metrics.step(k);
        }
        entry.steps_applied = applied_kinds.len();
        if config_version.is_some() {
            self.status.observed_config_version = config_version;
        }
        if !applied_kinds.is_empty() {
            self.status.last_applied_revision = Some(revision.clone());
        }
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                let permanent = matches!(
                    e,
                    ReconcileError::NoEffect(_)
                        | ReconcileError::TooManySteps(_)
                        | ReconcileError::Apply {
                            source: TargetError::Refused { .. },
                            ..
                        }
                );
                entry.result = "failed".into();
                entry.message = msg.clone();
                if permanent {
                    tracing::error!(%revision, error = %msg, "apply refused; stalled until a new revision or a change of the cluster");
                    self.stall(&revision, "ApplyFailed", &msg, true);
                } else {
                    self.transient(&msg, &mut out);
                }
                self.finish(entry, "failed", secs);
                return out;
            }
        };
        let drift = !is_new && !report.initial_plan.in_sync();
        let pending: Vec<String> = report
            .plan
            .steps
            .iter()
            .map(|s| format!("{} {}: {}", s.kind.name(), s.node, s.summary))
            .collect();
        let result = match &report.outcome {
            Outcome::InSync => {
                let rev_msg = format!("Applied revision: {revision}");
                if drift && !applied_kinds.is_empty() {
                    self.metrics.drift_detected.inc();
                    tracing::warn!(steps = applied_kinds.len(), "drift corrected");
                    entry.message = format!("drift corrected ({} step(s))", applied_kinds.len());
                } else if !applied_kinds.is_empty() {
                    tracing::info!(%revision, steps = applied_kinds.len(), "revision applied");
                }
                self.succeeded(&revision, &rev_msg);
                "in_sync"
            }
            Outcome::ChangesPending => {
                if drift {
                    self.metrics.drift_detected.inc();
                }
                self.metrics.in_sync.set(0);
                self.status.drift = pending.clone();
                self.status.pending_gates.clear();
                let (reason, msg) = if suspended {
                    (
                        "Suspended",
                        format!(
                            "applying is suspended; {} change(s) pending for {revision}",
                            pending.len()
                        ),
                    )
                } else {
                    (
                        "DriftDetected",
                        format!(
                            "the cluster differs from {revision}: {} step(s) would correct it (--drift report)",
                            pending.len()
                        ),
                    )
                };
                tracing::warn!(steps = ?pending, "{msg}");
                self.status.set(kind::READY, false, reason, &msg);
                self.status.clear(kind::RECONCILING);
                self.status.clear(kind::STALLED);
                self.stalled = None;
                self.backoff.reset();
                entry.message = msg;
                if suspended {
                    "suspended"
                } else {
                    "drift_detected"
                }
            }
            Outcome::StoppedAtGate { what } | Outcome::WaitingForNode { what } => {
                let reason = if matches!(report.outcome, Outcome::StoppedAtGate { .. }) {
                    "WaitingForGate"
                } else {
                    "WaitingForNode"
                };
                self.metrics.in_sync.set(0);
                let mut gates = vec![what.clone()];
                gates.extend(
                    report
                        .plan
                        .steps
                        .iter()
                        .filter(|s| {
                            s.blocked.is_some()
                                || matches!(s.kind, crate::plan::step::StepKind::Wait(_))
                        })
                        .map(|s| s.summary.clone())
                        .filter(|s| s != what),
                );
                gates.dedup();
                self.status.pending_gates = gates;
                self.status.drift.clear();
                let msg = format!("{revision}: waiting: {what}");
                tracing::info!("{msg}");
                self.status.set(kind::READY, false, reason, &msg);
                self.status.set(kind::RECONCILING, true, reason, what);
                self.status.clear(kind::STALLED);
                self.stalled = None;
                self.backoff.reset();
                out.requeue.push((Trigger::Gate, self.cfg.gate_interval));
                entry.message = what.clone();
                "waiting"
            }
            Outcome::Refused => {
                self.metrics.in_sync.set(0);
                let msg = format!("plan refused: {}", report.plan.errors.join("; "));
                tracing::error!(%revision, "{msg}; stalled until a new revision or a change of the cluster");
                self.stall(&revision, "PlanRefused", &msg, true);
                entry.message = msg;
                "refused"
            }
            Outcome::Cancelled => {
                let msg = format!(
                    "interrupted by shutdown after {} step(s); the rest is applied at the next start",
                    applied_kinds.len()
                );
                tracing::warn!("{msg}");
                self.status
                    .set(kind::READY, false, "ReconciliationInterrupted", &msg);
                self.status.clear(kind::RECONCILING);
                entry.message = msg;
                "cancelled"
            }
        };
        entry.result = result.to_string();
        self.finish(entry, result, secs);
        if let (SourceSpec::Git(g), true) = (
            &self.cfg.source,
            result == "in_sync" || !applied_kinds.is_empty(),
        ) {
            let g = g.clone();
            let rev = revision.clone();
            let marked = tokio::task::spawn_blocking(move || g.mark_applied(&rev)).await;
            if let Ok(Err(e)) = marked {
                tracing::warn!(error = %e, "cannot record the applied commit in the git cache");
            }
        }
        out
    }

    fn succeeded(&mut self, revision: &str, msg: &str) {
        self.status.last_applied_revision = Some(revision.to_string());
        self.status
            .set(kind::READY, true, "ReconciliationSucceeded", msg);
        self.status.clear(kind::RECONCILING);
        self.status.clear(kind::STALLED);
        self.status.pending_gates.clear();
        self.status.drift.clear();
        self.stalled = None;
        self.backoff.reset();
        self.metrics.in_sync.set(1);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.metrics.last_success.set(now);
    }

    fn transient(&mut self, msg: &str, out: &mut CycleResult) {
        let delay = self.backoff.next_delay();
        tracing::warn!(error = %msg, retry_in = ?delay, "reconcile failed");
        self.metrics.in_sync.set(0);
        self.status
            .set(kind::READY, false, "ReconciliationFailed", msg);
        self.status.set(
            kind::RECONCILING,
            true,
            "ProgressingWithRetry",
            &format!("retrying in {:.1}s", delay.as_secs_f64()),
        );
        out.requeue.push((Trigger::Retry, delay));
    }

    fn finish(&mut self, entry: HistoryEntry, result: &str, secs: f64) {
        self.metrics.reconciled(result, secs);
        self.status.record(entry);
        self.save();
    }

    /// Resolve the target, take the cluster lock (apply only), run the reconcile, observe
    /// the config_version and hash the watched files — on a blocking thread.
    async fn run_blocking(&self, cluster: Cluster, mode: Mode) -> Result<Run, String> {
        let opts = self.cfg.target.clone();
        let holder = self.cfg.holder.clone();
        let graceful = self.graceful.clone();
        let pause = self.cfg.step_pause;
        let peer_wait = self.cfg.peer_wait;
        let watched = target_files(&opts);
        let task = tokio::task::spawn_blocking(move || -> Result<Run, String> {
            let (mut tgt, note) =
                target::resolve(&opts, &cluster).map_err(|e| format!("target: {e}"))?;
            if let Some(n) = note {
                tracing::info!("{n}");
            }
            // A target that locks every cluster-wide step itself (corosync) needs no lock of
            // the daemons, and its daemons wait for each other inside a run: one holding a
            // lock for its whole run would keep the others from installing its new master or
            // starting their corosync again in its rolling restart. With the other targets one
            // daemon applies at a time.
            let self_locking = tgt.locks_each_step();
            let guard = match (mode, lock_root(&opts)) {
                (Mode::Apply { .. }, Some(root)) if !self_locking => {
                    let once = LockOptions::try_once();
                    match CfsLock::acquire_as(&root, CONTROLLER_LOCK, &holder, &once, || {}) {
                        Ok(g) => Some(g),
                        Err(LockError::Timeout { held, .. }) => {
                            return Ok(Run::Locked(held.holder))
                        }
                        Err(e) => {
                            return Err(format!("cluster lock under {}: {e}", root.display()))
                        }
                    }
                }
                _ => None,
            };
            let mut applied_kinds: Vec<&'static str> = Vec::new();
            // The lock is refreshed while the run goes on (a step may outlast the lock's
            // 120 s lifetime: a migration, a rolling restart); a lock lost all the same (taken
            // over after a stall) stops the run before its next step.
            let lost = AtomicBool::new(false);
            let run_over = AtomicBool::new(false);
            let cancelled = || graceful.is_cancelled() || lost.load(Ordering::Relaxed);
            let mut on_event = |e: Event<'_>| match e {
                Event::Starting(s) => {
                    tracing::info!(kind = s.kind.name(), node = %s.node, "applying: {}", s.summary)
                }
                Event::Done(s, done) => {
                    tracing::info!(kind = s.kind.name(), node = %s.node, ms = done.duration_ms, "done: {}", done.message);
                    applied_kinds.push(s.kind.name());
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
                Event::Replanning(e) => tracing::info!("{e}"),
                Event::Waiting(why) => tracing::info!("waiting: {why}"),
            };
            let options = reconcile::Options {
                peer_wait: if self_locking {
                    peer_wait
                } else {
                    Duration::ZERO
                },
            };
            let result = std::thread::scope(|s| {
                if let Some(g) = &guard {
                    let (lost, run_over) = (&lost, &run_over);
                    s.spawn(move || {
                        let mut next = std::time::Instant::now() + LOCK_REFRESH;
                        while !run_over.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                            if std::time::Instant::now() < next {
                                continue;
                            }
                            next = match g.refresh() {
                                Ok(()) => std::time::Instant::now() + LOCK_REFRESH,
                                Err(LockError::Lost { .. }) => {
                                    lost.store(true, Ordering::Relaxed);
                                    return;
                                }
                                // E.g. /etc/pve read-only for a moment (quorum lost during a
                                // restart): the lock is still ours; try again soon.
                                Err(e) => {
                                    tracing::warn!(error = %e, "cannot refresh the cluster lock; retrying");
                                    std::time::Instant::now() + Duration::from_secs(2)
                                }
                            };
                        }
                    });
                }
                let r = reconcile::run_with(
                    &cluster,
                    tgt.as_mut(),
                    mode,
                    options,
                    &cancelled,
                    &mut on_event,
                );
                run_over.store(true, Ordering::Relaxed);
                r
            });
            if lost.load(Ordering::Relaxed) {
                return Err(format!(
                    "the cluster lock {CONTROLLER_LOCK} was lost during the run (taken over after {} s without a refresh): stopped before the next step",
                    crate::cfs_lock::LockOptions::default().lifetime.as_secs()
                ));
            }
            let config_version = tgt.observe().ok().map(|o| o.config_version());
            drop(guard);
            let hashes = watched
                .iter()
                .map(|p| (crate::source::path::watch_key(p), hash_file(p)))
                .collect();
            Ok(Run::Done {
                result: Box::new(result),
                applied_kinds,
                config_version,
                hashes,
            })
        });
        task.await
            .map_err(|e| format!("reconcile task failed: {e}"))?
    }
}
