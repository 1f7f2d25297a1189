//! `pve-gitops watch`: build the daemon's configuration from the command line, set up
//! logging and signals, run the daemon on a small tokio runtime.
//!
//! Signals: SIGTERM / SIGINT once = graceful (the running step finishes, nothing new starts,
//! exit 0); a second time = abort (exit 130 at once; files are still never half-written, the
//! target writes `NAME.new` + rename). SIGHUP = reconcile now.

use super::Outcome;
use crate::cli::{DriftMode, LogFormat, WatchArgs};
use anyhow::{bail, Context, Result};
use pve_gitops::daemon::scheduler::Trigger;
use pve_gitops::daemon::{self, Config, Daemon, DaemonError, DriftPolicy, SourceSpec};
use pve_gitops::source::git::{GitSource, Verify, HTTPS_TOKEN_ENV};
use pve_gitops::source::path::PathSource;
use pve_gitops::source::{sanitize_url, Secret};
use pve_gitops::target::TargetOptions;
use pve_gitops::webhook::{TlsFiles, WebhookConfig, MAX_BODY};
use std::time::Duration;

/// The environment variable with the log filter (`info` by default; e.g. `debug`,
/// `pve_gitops=debug`).
pub const LOG_ENV: &str = "PVE_GITOPS_LOG";

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

fn source(args: &WatchArgs) -> Result<SourceSpec> {
    let s = args.source.as_str();
    let is_git = s.starts_with("git+") || s.starts_with("ssh://") || s.starts_with("https://");
    if !is_git {
        if s.contains("://") {
            bail!(
                "unsupported source `{}`: use git+file://, git+ssh://, git+https:// or a local path",
                sanitize_url(s)
            );
        }
        if args.branch.is_some() || args.path.is_some() {
            bail!(
                "--branch and --path apply to git sources only; a local source is the path itself"
            );
        }
        if !std::path::Path::new(s).exists() {
            bail!("source path {s} does not exist");
        }
        return Ok(SourceSpec::Path(PathSource::new(s)));
    }
    let branch = args.branch.as_deref().unwrap_or("main");
    let path = args.path.as_deref().unwrap_or(".");
    let mut g = GitSource::new(s, branch, path, &args.state_dir).map_err(anyhow::Error::msg)?;
    g.ssh_key = args.ssh_key.clone();
    g.https_username = args.https_username.clone();
    g.https_token = match &args.https_token_file {
        Some(f) => Some(Secret::from_file(f).map_err(anyhow::Error::msg)?),
        None => std::env::var(HTTPS_TOKEN_ENV)
            .ok()
            .map(Secret::new)
            .filter(|t| !t.expose().is_empty()),
    };
    g.allow_rewind = args.allow_rewind;
    if args.verify_signatures {
        let Some(allowed) = args.allowed_signers.clone() else {
            bail!("--verify-signatures needs --allowed-signers FILE");
        };
        if !allowed.is_file() {
            bail!("--allowed-signers {} is not a file", allowed.display());
        }
        g.verify = Some(Verify {
            allowed_signers: allowed,
            gpg_home: args.gpg_home.clone(),
        });
    }
    Ok(SourceSpec::Git(g))
}

fn target_options(args: &WatchArgs) -> Result<TargetOptions> {
    let t = &args.target;
    if let Some(dir) = t.target.as_deref().and_then(|s| s.strip_prefix("sim:")) {
        if !std::path::Path::new(dir).is_dir() {
            bail!(
                "sim directory {dir} does not exist (create it with `pve-gitops sim init {dir}`)"
            );
        }
    }
    Ok(TargetOptions {
        spec: t.target.clone(),
        node: t.node.clone(),
        config_dir: t.config_dir.clone(),
        corosync_conf: t.corosync_conf.clone(),
        authkey: t.authkey.clone(),
        start_cmd: t.start_cmd.clone(),
        stop_cmd: t.stop_cmd.clone(),
        join_password_file: t.join_password_file.clone(),
        api_token_file: t.api_token_file.clone(),
        fingerprints: t.fingerprint.clone(),
        ca_bundle: t.ca_bundle.clone(),
        use_ssh: t.use_ssh,
        with_local_disks: t.with_local_disks,
        api_nodes: t.api_node.clone(),
        peer: t.peer.clone(),
    })
}

/// Build the daemon's configuration (reads the secret files; never prints them).
pub fn config(args: &WatchArgs) -> Result<Config> {
    let src = source(args)?;
    let branch = match &src {
        SourceSpec::Git(g) => Some(g.branch.clone()),
        SourceSpec::Path(_) => None,
    };
    let mut cfg = Config::new(src, target_options(args)?, &args.state_dir);
    cfg.cluster = args.cluster.clone();
    cfg.interval = args.interval;
    cfg.poll_interval = args.poll_interval;
    cfg.gate_interval = args.gate_interval;
    cfg.debounce = args.debounce;
    cfg.drift = match args.drift {
        DriftMode::Correct => DriftPolicy::Correct,
        DriftMode::Report => DriftPolicy::Report,
    };
    cfg.metrics_listen = args.metrics_listen;
    cfg.holder = daemon::default_holder(args.target.node.as_deref());
    cfg.max_steps = args.max_steps;
    cfg.step_pause = args.step_pause.unwrap_or(Duration::ZERO);
    cfg.peer_wait = args.peer_wait;
    for (name, d) in [
        ("--interval", args.interval),
        ("--poll-interval", args.poll_interval),
        ("--gate-interval", args.gate_interval),
    ] {
        if d < Duration::from_millis(100) {
            bail!("{name} must be at least 100ms");
        }
    }
    if let Some(listen) = args.webhook_listen {
        let Some(secret_file) = &args.webhook_secret_file else {
            bail!("--webhook-listen needs --webhook-secret-file FILE (the HMAC secret)");
        };
        let secret = Secret::from_file(secret_file).map_err(anyhow::Error::msg)?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        cfg.webhook = Some(WebhookConfig {
            listen,
            tls,
            insecure_http: args.insecure_http,
            secret,
            branch,
            max_body: MAX_BODY,
        });
    } else if args.insecure_http || args.tls_cert.is_some() || args.webhook_secret_file.is_some() {
        bail!(
            "--insecure-http, --tls-cert/--tls-key and --webhook-secret-file need --webhook-listen"
        );
    }
    Ok(cfg)
}

/// Run `watch`.
pub fn run(args: &WatchArgs) -> Result<Outcome> {
    init_tracing(args.log_format);
    let cfg = config(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .thread_name("pve-gitops")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async move {
        let daemon = Daemon::bind(cfg).await?;
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
        spawn_signals(&daemon, first_tx, second_tx)?;
        daemon
            .run_until(
                async {
                    let _ = first_rx.await;
                },
                async {
                    if second_rx.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                },
            )
            .await
    });
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => Ok(Outcome::Ok),
        Err(DaemonError::Aborted) => std::process::exit(130),
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

fn spawn_signals(
    daemon: &Daemon,
    first: tokio::sync::oneshot::Sender<()>,
    second: tokio::sync::oneshot::Sender<()>,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let io =
        |e: std::io::Error| DaemonError::Config(format!("cannot install signal handlers: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let mut hup = signal(SignalKind::hangup()).map_err(io)?;
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        let _ = first.send(());
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        let _ = second.send(());
    });
    let triggers = daemon.triggers();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reconciling now");
            triggers.send(Trigger::Signal);
        }
    });
    Ok(())
}
