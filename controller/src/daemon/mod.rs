//! The `watch` daemon (DESIGN.md §5): a source (git or a local path), a target, and a loop
//! that keeps the cluster at the source's newest revision.
//!
//! Structure (kube-runtime's controller, in small):
//!
//! - Every trigger — the source changed (notify) or was polled, the periodic resync
//!   (`--interval`), a webhook, SIGHUP, a live config file changed, the suspend flag changed, a
//!   gate re-check, a retry — goes into one [`scheduler::Scheduler`] (debounced, earliest
//!   wins, due requests served by one run).
//! - One worker runs one reconcile at a time ([`worker`]); the cluster lock
//!   ([`crate::cfs_lock::CONTROLLER_LOCK`]) keeps two daemons on one cluster from applying at
//!   once.
//! - Errors decide the requeue (Flux's Stalling / Waiting / Generic): transient errors back
//!   off exponentially with jitter ([`backoff`]); an invalid manifest, a refused plan, a
//!   rewind or a bad signature is Stalled until a new revision arrives; gates are re-checked
//!   every `--gate-interval`.
//! - File events caused by the daemon's own writes are dropped: after every reconcile the
//!   watched live files are hashed, and an event whose file still has that hash is ignored.
//! - Shutdown in two stages ([`Daemon::run_until`]): the first signal lets the running step
//!   finish (the reconcile checks for cancellation only between steps, never between a write
//!   and its rename) and starts nothing new; the second returns at once.

pub mod backoff;
pub mod http;
pub mod scheduler;
mod worker;

use crate::metrics::Metrics;
use crate::source::git::GitSource;
use crate::source::path::PathSource;
use crate::target::TargetOptions;
use crate::webhook::WebhookConfig;
use scheduler::{Scheduler, Trigger};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the manifests come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A git repository.
    Git(GitSource),
    /// A local file or directory.
    Path(PathSource),
}

impl SourceSpec {
    /// The source for output (URL without credentials, branch and path; or the path).
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Git(g) => format!(
                "git+{} (branch {}, path {})",
                g.display_url(),
                g.branch,
                if g.path.is_empty() { "." } else { &g.path }
            ),
            SourceSpec::Path(p) => format!("path {}", p.path().display()),
        }
    }
}

/// What a resync does with drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftPolicy {
    /// Apply the steps that bring the cluster back to the applied revision.
    Correct,
    /// Only report them (status, metrics, log); a new revision is still applied.
    Report,
}

/// The daemon's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The source.
    pub source: SourceSpec,
    /// `--cluster`: which manifest (default: the only one).
    pub cluster: Option<String>,
    /// The target.
    pub target: TargetOptions,
    /// Status, suspend flag, git cache.
    pub state_dir: PathBuf,
    /// Periodic resync.
    pub interval: Duration,
    /// Periodic source poll (git fetch; re-read of a path source).
    pub poll_interval: Duration,
    /// Re-check of `wait` gates, steps for other nodes and a held cluster lock.
    pub gate_interval: Duration,
    /// Quiet time of a burst of events before it runs.
    pub debounce: Duration,
    /// Correct or report drift.
    pub drift: DriftPolicy,
    /// The webhook receiver.
    pub webhook: Option<WebhookConfig>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// This daemon's id in the cluster lock.
    pub holder: String,
    /// Safety limit on steps per reconcile.
    pub max_steps: usize,
    /// Pause after every applied step (tests and benchmarks of shutdown during apply).
    pub step_pause: Duration,
    /// Watch the target's live config files for changes by others.
    pub watch_target: bool,
    /// Per-node targets (corosync, pve): how long a run waits for the other nodes'
    /// controllers (`reconcile::Options::peer_wait`).
    pub peer_wait: Duration,
}

impl Config {
    /// A configuration with the defaults of `pve-gitops watch`.
    pub fn new(source: SourceSpec, target: TargetOptions, state_dir: impl Into<PathBuf>) -> Config {
        Config {
            source,
            cluster: None,
            target,
            state_dir: state_dir.into(),
            interval: Duration::from_secs(300),
            poll_interval: Duration::from_secs(60),
            gate_interval: Duration::from_secs(30),
            debounce: Duration::from_millis(100),
            drift: DriftPolicy::Correct,
            webhook: None,
            metrics_listen: None,
            holder: default_holder(None),
            max_steps: 10_000,
            step_pause: Duration::ZERO,
            watch_target: true,
            peer_wait: Duration::from_secs(60),
        }
    }
}

/// `NODE/pid/RANDOM`: unique per process and daemon instance.
pub fn default_holder(node: Option<&str>) -> String {
    let host = node.map(str::to_string).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into())
    });
    format!("{host}/{}/{:04x}", std::process::id(), fastrand::u16(..))
}

/// Parse `500ms`, `30s`, `5m`, `1h`, `1h30m` (or plain seconds).
///
/// # Errors
/// Not a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration `{s}` (use e.g. 500ms, 30s, 5m, 1h)"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration `{s}`"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => {
                return Err(format!(
                    "invalid duration `{s}` (use e.g. 500ms, 30s, 5m, 1h)"
                ))
            }
        };
    }
    Ok(total)
}

/// Why the daemon stopped other than by a graceful shutdown.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration cannot work (a message saying which option).
    #[error("{0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The state directory cannot be used.
    #[error("state directory {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A second shutdown signal stopped the daemon without waiting for the running step.
    #[error("aborted by a second signal")]
    Aborted,
}

/// Messages into the loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// Schedule a (debounced) run.
    Trigger(Trigger),
    /// A watched live config file changed (maybe by us).
    TargetFile(PathBuf),
}

/// A handle to send triggers (SIGHUP) into a running daemon.
#[derive(Debug, Clone)]
pub struct Triggers(mpsc::UnboundedSender<Event>);

impl Triggers {
    /// Ask for a reconcile (debounced), as SIGHUP does.
    pub fn send(&self, t: Trigger) {
        let _ = self.0.send(Event::Trigger(t));
    }
}

/// A configured daemon with its listeners bound (so `127.0.0.1:0` has a port to report).
pub struct Daemon {
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    webhook: Option<(TcpListener, Option<tokio_rustls::TlsAcceptor>)>,
    metrics_listener: Option<TcpListener>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("cfg", &self.cfg).finish()
    }
}

impl Daemon {
    /// Check the configuration, create the state directory and bind the listeners.
    ///
    /// # Errors
    /// A refused webhook setting (plain HTTP off loopback, missing TLS files), unreadable
    /// TLS files, an address in use, an unusable state directory.
    pub async fn bind(cfg: Config) -> Result<Daemon, DaemonError> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(|source| DaemonError::State {
            path: cfg.state_dir.clone(),
            source,
        })?;
        let webhook = match &cfg.webhook {
            None => None,
            Some(w) => {
                crate::webhook::check_listen(w).map_err(DaemonError::Config)?;
                let tls = match &w.tls {
                    Some(files) => {
                        Some(crate::webhook::tls_acceptor(files).map_err(DaemonError::Config)?)
                    }
                    None => None,
                };
                let l = TcpListener::bind(w.listen)
                    .await
                    .map_err(|source| DaemonError::Bind {
                        addr: w.listen,
                        source,
                    })?;
                Some((l, tls))
            }
        };
        let metrics_listener = match cfg.metrics_listen {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| DaemonError::Bind { addr, source })?,
            ),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Daemon {
            cfg: Arc::new(cfg),
            metrics: Arc::new(Metrics::new()),
            webhook,
            metrics_listener,
            tx,
            rx,
        })
    }

    /// The webhook's bound address.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The metrics endpoint's bound address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// A handle for sending triggers (SIGHUP).
    pub fn triggers(&self) -> Triggers {
        Triggers(self.tx.clone())
    }

    /// Run until `shutdown` completes (graceful: the running step finishes, nothing new
    /// starts). Same as [`Daemon::run_until`] without an abort signal.
    ///
    /// # Errors
    /// See [`Daemon::run_until`].
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        self.run_until(shutdown, std::future::pending()).await
    }

    /// Run until `shutdown` completes and the running reconcile has stopped between steps,
    /// or until `abort` completes (returns at once with [`DaemonError::Aborted`]).
    ///
    /// # Errors
    /// [`DaemonError::Aborted`]; the state directory cannot be written at start.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
        abort: impl Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        let Daemon {
            cfg,
            metrics,
            webhook,
            metrics_listener,
            tx,
            mut rx,
        } = self;
        let graceful = CancellationToken::new();
        let servers = graceful.child_token();
        if let Some((listener, tls)) = webhook {
            if let Some(w) = &cfg.webhook {
                let addr = listener
                    .local_addr()
                    .map_or_else(|_| w.listen.to_string(), |a| a.to_string());
                tracing::info!(%addr, tls = tls.is_some(), "webhook receiver listening");
                let wtx = tx.clone();
                let receiver = Arc::new(crate::webhook::Receiver {
                    cfg: w.clone(),
                    on_trigger: Box::new(move || {
                        let _ = wtx.send(Event::Trigger(Trigger::Webhook));
                    }),
                });
                tokio::spawn(http::serve(
                    listener,
                    tls,
                    move |req| crate::webhook::handle(receiver.clone(), req),
                    servers.clone(),
                ));
            }
        }
        if let Some(listener) = metrics_listener {
            let addr = listener
                .local_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string());
            tracing::info!(%addr, "metrics endpoint listening");
            let m = metrics.clone();
            tokio::spawn(http::serve(
                listener,
                None,
                move |req| {
                    let m = m.clone();
                    async move { metrics_response(&m, req.uri().path()) }
                },
                servers.clone(),
            ));
        }
        let _watchers = start_watchers(&cfg, &tx);
        let mut worker = Some(worker::Worker::new(
            cfg.clone(),
            metrics.clone(),
            graceful.clone(),
        )?);
        let mut scheduler = Scheduler::new(cfg.debounce);
        scheduler.schedule_in(Trigger::Startup, Duration::ZERO);
        let mut inflight: Option<tokio::task::JoinHandle<(worker::Worker, worker::CycleResult)>> =
            None;
        let mut own_hashes: HashMap<PathBuf, Option<String>> = HashMap::new();
        let mut pending_paths: HashSet<PathBuf> = HashSet::new();
        let mut stopping = false;
        tokio::pin!(shutdown);
        tokio::pin!(abort);
        tracing::info!(
            source = %cfg.source.describe(),
            target = %crate::target::effective_spec(&cfg.target),
            "watching"
        );
        loop {
            tokio::select! {
                biased;
                _ = &mut abort => {
                    tracing::warn!("second signal: aborting without waiting for the running step");
                    graceful.cancel();
                    return Err(DaemonError::Aborted);
                }
                done = wait_inflight(&mut inflight) => {
                    inflight = None;
                    match done {
                        Ok((w, result)) => {
                            worker = Some(w);
                            apply_result(&mut scheduler, &result);
                            if let Some(h) = result.hashes {
                                own_hashes = h;
                            }
                            for p in pending_paths.drain() {
                                check_target_file(&p, &mut own_hashes, &mut scheduler);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reconcile task failed; restarting the worker");
                            worker = Some(worker::Worker::new(cfg.clone(), metrics.clone(), graceful.clone())?);
                            scheduler.schedule_in(Trigger::Retry, Duration::from_secs(5));
                        }
                    }
                }
                _ = &mut shutdown, if !stopping => {
                    tracing::info!("shutting down: the running step finishes, nothing new starts");
                    stopping = true;
                    graceful.cancel();
                }
                Some(ev) = rx.recv() => match ev {
                    Event::Trigger(t) => {
                        tracing::debug!(trigger = t.name(), "trigger");
                        scheduler.trigger(t);
                    }
                    Event::TargetFile(p) => {
                        if inflight.is_some() {
                            pending_paths.insert(p);
                        } else {
                            check_target_file(&p, &mut own_hashes, &mut scheduler);
                        }
                    }
                },
                due = scheduler.ready(), if inflight.is_none() && !stopping => {
                    if let Some(mut w) = worker.take() {
                        inflight = Some(tokio::spawn(async move {
                            let r = w.cycle(due).await;
                            (w, r)
                        }));
                    }
                }
            }
            if stopping && inflight.is_none() {
                break;
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Run a daemon with `cfg` until `shutdown` (binds, then [`Daemon::run`]).
///
/// # Errors
/// See [`Daemon::bind`] and [`Daemon::run_until`].
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    Daemon::bind(cfg).await?.run(shutdown).await
}

async fn wait_inflight<T>(
    h: &mut Option<tokio::task::JoinHandle<T>>,
) -> Result<T, tokio::task::JoinError> {
    match h {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

fn apply_result(s: &mut Scheduler, r: &worker::CycleResult) {
    for t in &r.cancel {
        s.cancel(*t);
    }
    for (t, after) in &r.requeue {
        s.reschedule(*t, *after);
    }
}

/// An event for a watched live file: trigger unless the file has the content this daemon
/// left in it (its own write) or already reacted to.
fn check_target_file(p: &Path, own: &mut HashMap<PathBuf, Option<String>>, s: &mut Scheduler) {
    let now = worker::hash_file(p);
    if own.get(p) == Some(&now) {
        tracing::trace!(path = %p.display(), "ignoring an event for our own write");
        return;
    }
    tracing::info!(path = %p.display(), "live config changed; reconciling");
    own.insert(p.to_path_buf(), now);
    s.trigger(Trigger::TargetChanged);
}

fn metrics_response(m: &Metrics, path: &str) -> hyper::Response<http::Body> {
    match path {
        "/metrics" => {
            let mut r = http::text(200, m.encode());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            r
        }
        "/healthz" => http::text(200, "ok\n"),
        _ => http::text(404, "not found\n"),
    }
}

/// The live files of the target whose changes by others trigger a reconcile: the sim's
/// corosync.conf, datacenter.cfg and state file; `/etc/pve/{corosync.conf,datacenter.cfg}`
/// for the pve target; the node's corosync.conf and the shared directory's copies for the
/// corosync target; nothing for remote targets (`pve-api:`), which rely on the resync.
pub fn target_files(opts: &TargetOptions) -> Vec<PathBuf> {
    match crate::target::effective_spec(opts).as_str() {
        s if s.starts_with("sim:") => sim_files(Path::new(&s["sim:".len()..])),
        "pve" => vec![
            PathBuf::from("/etc/pve/corosync.conf"),
            PathBuf::from("/etc/pve/datacenter.cfg"),
        ],
        "corosync" => {
            let mut v = vec![opts.corosync_conf.clone()];
            if let Some(d) = &opts.config_dir {
                v.push(d.join("corosync.conf"));
                v.push(d.join("datacenter.cfg"));
            }
            v
        }
        _ => Vec::new(),
    }
}

fn sim_files(dir: &Path) -> Vec<PathBuf> {
    vec![
        dir.join("corosync.conf"),
        dir.join("datacenter.cfg"),
        dir.join(crate::target::sim::EXTRA_FILE),
    ]
}

/// The directory holding `priv/lock/` for the target in effect (without `--target`, the one
/// `resolve` picks: `/etc/pve` on a Proxmox VE node): the sim directory, `/etc/pve`, the
/// corosync target's `--config-dir` (None: no cluster-wide lock, e.g. a remote API target).
pub fn lock_root(opts: &TargetOptions) -> Option<PathBuf> {
    match crate::target::effective_spec(opts).as_str() {
        s if s.starts_with("sim:") => Some(PathBuf::from(&s["sim:".len()..])),
        "pve" => Some(PathBuf::from("/etc/pve")),
        "corosync" => opts.config_dir.clone(),
        _ => None,
    }
}

/// Watch the path source, the target's live files and the suspend flag.
fn start_watchers(
    cfg: &Config,
    tx: &mpsc::UnboundedSender<Event>,
) -> Vec<notify::RecommendedWatcher> {
    use crate::source::path::{absolute, watch};
    let mut out = Vec::new();
    if let SourceSpec::Path(p) = &cfg.source {
        let t = tx.clone();
        let state = absolute(&cfg.state_dir);
        match watch(&[p.path().to_path_buf()], move |changed| {
            if !changed.starts_with(&state) {
                let _ = t.send(Event::Trigger(Trigger::SourceChanged));
            }
        }) {
            Ok(w) => out.push(w),
            Err(e) => tracing::warn!(error = %e, "cannot watch the source; polling only"),
        }
    }
    if cfg.watch_target {
        let files: Vec<PathBuf> = target_files(&cfg.target)
            .into_iter()
            .filter(|f| f.parent().is_some_and(Path::is_dir))
            .collect();
        if !files.is_empty() {
            let t = tx.clone();
            match watch(&files, move |changed| {
                let _ = t.send(Event::TargetFile(changed));
            }) {
                Ok(w) => out.push(w),
                Err(e) => tracing::warn!(error = %e, "cannot watch the live config; resync only"),
            }
        }
    }
    let flag = cfg.state_dir.join(crate::status::SUSPEND_FILE);
    let t = tx.clone();
    match watch(&[flag], move |_| {
        let _ = t.send(Event::Trigger(Trigger::Suspend));
    }) {
        Ok(w) => out.push(w),
        Err(e) => tracing::warn!(error = %e, "cannot watch the suspend flag"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }

    /// Without `--target` the daemon locks and watches what the target `resolve` picks (on a
    /// Proxmox VE node `/etc/pve`, never a local sim directory while changing the real
    /// cluster): the same as with that target given explicitly.
    #[test]
    fn the_default_target_locks_and_watches_what_it_changes() {
        let none = TargetOptions::default();
        let spec = crate::target::effective_spec(&none);
        let explicit = TargetOptions {
            spec: Some(spec.clone()),
            ..TargetOptions::default()
        };
        assert_eq!(lock_root(&none), lock_root(&explicit));
        assert_eq!(target_files(&none), target_files(&explicit));
        let pve = TargetOptions {
            spec: Some("pve".into()),
            ..TargetOptions::default()
        };
        assert_eq!(lock_root(&pve), Some(PathBuf::from("/etc/pve")));
        if crate::target::is_pve_node() {
            assert_eq!(spec, "pve");
        } else {
            assert_eq!(spec, format!("sim:{}", crate::target::DEFAULT_SIM_DIR));
        }
    }
}
