//! Helpers of the `watch` daemon's integration tests: real git repositories made with the git
//! CLI (argument vectors) in temporary directories, real sim targets, a daemon running on the
//! test's runtime and stopped through its shutdown future.

#![allow(dead_code)]

use pve_gitops::daemon::{Config, Daemon, DaemonError, SourceSpec};
use pve_gitops::source::git::GitSource;
use pve_gitops::status::{self, Status};
use pve_gitops::target::TargetOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The three-node example manifest.
pub const THREE_NODE: &str = include_str!("../../../examples/three-node.yaml");

#[path = "../common/mod.rs"]
mod common;
pub use common::Tmp;

/// Run git in `dir` with `args`; panics with its stderr on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository and a clone to commit from.
pub struct Repo {
    pub bare: PathBuf,
    pub work: PathBuf,
}

impl Repo {
    pub fn new(root: &Path) -> Repo {
        let bare = root.join("repo.git");
        let work = root.join("work");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Repo { bare, work }
    }

    /// `git+file://` URL of the bare repository.
    pub fn url(&self) -> String {
        format!("git+file://{}", self.bare.display())
    }

    /// Write `name`, commit with `extra` git args (e.g. signing), push; returns the commit.
    pub fn commit_with(&self, name: &str, content: &str, extra: &[&str]) -> String {
        let p = self.work.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        git(&self.work, &["add", name]);
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["commit", "-q", "-m", name]);
        git(&self.work, &args);
        git(&self.work, &["push", "-q", "origin", "main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn commit(&self, name: &str, content: &str) -> String {
        self.commit_with(name, content, &[])
    }

    /// Force the remote branch to `commit`.
    pub fn force_push(&self, commit: &str) {
        git(
            &self.work,
            &[
                "push",
                "-q",
                "--force",
                "origin",
                &format!("{commit}:refs/heads/main"),
            ],
        );
    }
}

/// A test's scratch world: a repository, a sim with the three-node manifest's hosts
/// (standalone), a state directory (not created).
pub struct World {
    pub tmp: Tmp,
    pub repo: Repo,
    pub sim: PathBuf,
    pub state: PathBuf,
}

impl World {
    pub fn new(name: &str) -> World {
        let tmp = Tmp::new(name);
        let repo = Repo::new(tmp.path());
        let sim = tmp.path().join("sim");
        let state = tmp.path().join("state");
        sim_init(&sim, THREE_NODE);
        World {
            tmp,
            repo,
            sim,
            state,
        }
    }
}

/// `sim init` with the manifest's hosts, powered on, standalone.
pub fn sim_init(dir: &Path, manifest: &str) {
    let (cluster, _) =
        pve_gitops_schema::validate::parse_cluster("m.yaml", manifest).expect("valid manifest");
    let names: Vec<String> = cluster.spec.nodes.iter().map(|n| n.name.clone()).collect();
    pve_gitops::target::sim::init_from_names(dir, &names, 0, 65536).expect("sim init");
}

/// Target options for `sim:DIR`.
pub fn sim_target(dir: &Path) -> TargetOptions {
    TargetOptions {
        spec: Some(format!("sim:{}", dir.display())),
        ..TargetOptions::default()
    }
}

/// A daemon configuration for tests: fast polls and gates, a long resync.
pub fn git_config(repo: &Repo, sim: &Path, state: &Path) -> Config {
    let g = GitSource::new(&repo.url(), "main", ".", state).unwrap();
    test_config(SourceSpec::Git(g), sim, state)
}

pub fn test_config(source: SourceSpec, sim: &Path, state: &Path) -> Config {
    let mut cfg = Config::new(source, sim_target(sim), state);
    cfg.poll_interval = Duration::from_millis(150);
    cfg.gate_interval = Duration::from_millis(300);
    cfg.interval = Duration::from_secs(3600);
    cfg.debounce = Duration::from_millis(20);
    cfg
}

/// A running daemon.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub join: tokio::task::JoinHandle<Result<(), DaemonError>>,
    pub webhook: Option<std::net::SocketAddr>,
    pub metrics: Option<std::net::SocketAddr>,
    pub registry: std::sync::Arc<pve_gitops::metrics::Metrics>,
}

impl Running {
    /// Graceful shutdown; waits for the daemon to return.
    pub async fn stop(mut self) -> Result<(), DaemonError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.join)
            .await
            .expect("daemon stops")
            .expect("daemon task")
    }
}

pub async fn start(cfg: Config) -> Running {
    let d = Daemon::bind(cfg).await.expect("daemon binds");
    let webhook = d.webhook_addr();
    let metrics = d.metrics_addr();
    let registry = d.metrics();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(d.run(async {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        join,
        webhook,
        metrics,
        registry,
    }
}

/// Poll the status file until `pred` holds (panics after `secs` with the last status).
pub async fn wait_status(
    state: &Path,
    secs: u64,
    what: &str,
    pred: impl Fn(&Status) -> bool,
) -> Status {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status::load(state).ok().flatten();
        if let Some(s) = &s {
            if pred(s) {
                return s.clone();
            }
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; status: {s:#?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Wait until `path` exists (the daemon's first write), polling; panics after `secs`.
pub async fn wait_for_file(path: &Path, secs: u64, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `Ready=True` at `revision` (a commit hash suffix).
pub fn ready_at(s: &Status, commit: &str) -> bool {
    s.is_ready()
        && s.last_applied_revision
            .as_deref()
            .is_some_and(|r| r.ends_with(commit))
}

/// The condition's reason, if present.
pub fn reason(s: &Status, kind: &str) -> Option<String> {
    s.condition(kind).map(|c| c.reason.clone())
}

/// The sim's corosync.conf.
pub fn corosync_conf(sim: &Path) -> String {
    std::fs::read_to_string(sim.join("corosync.conf")).unwrap_or_default()
}

/// Every `*.new` file below `dir`.
pub fn new_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "new") {
                out.push(p);
            }
        }
    }
    out
}

/// Dry-run plan of `manifest` against the sim: true when in sync.
pub fn in_sync(sim: &Path, manifest: &str) -> bool {
    use pve_gitops::target::Target;
    let (cluster, _) = pve_gitops_schema::validate::parse_cluster("m.yaml", manifest).unwrap();
    let mut t = pve_gitops::target::sim::SimTarget::open(sim).unwrap();
    let observed = t.observe().unwrap();
    pve_gitops::plan::plan(&cluster, &observed).in_sync()
}

/// The three-node manifest with another token_coefficient.
pub fn with_token_coefficient(n: u32) -> String {
    THREE_NODE.replace("token_coefficient: 125", &format!("token_coefficient: {n}"))
}

/// The sum of `pve_gitops_reconciles_total` over results.
pub fn reconciles(r: &Running) -> u64 {
    r.registry
        .encode()
        .lines()
        .filter(|l| l.starts_with("pve_gitops_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Set `quorum_votes` of `node` in the sim's corosync.conf by hand (as an operator would).
pub fn hand_edit_votes(sim: &Path, node: &str, votes: u32) {
    let p = sim.join("corosync.conf");
    let s = std::fs::read_to_string(&p).unwrap();
    let i = s.find(&format!("name: {node}")).unwrap();
    let j = i + s[i..].find("quorum_votes: ").unwrap() + "quorum_votes: ".len();
    let k = j + s[j..].find('\n').unwrap();
    let edited = format!("{}{votes}{}", &s[..j], &s[k..]);
    std::fs::write(&p, edited).unwrap();
}
