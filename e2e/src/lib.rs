//! End-to-end harness for pve-gitops: real `corosync -f` clusters in network namespaces.
//!
//! A [`Harness`] builds a switch namespace with one bridge per knet link and N node
//! namespaces, each with a private mount namespace in which `/etc/corosync`,
//! `/var/lib/corosync`, `/var/log/corosync` and `/run` are directories under a temp base
//! dir. It starts and stops corosync per node, pulls cables, runs any command "on" a
//! node (e.g. the `pve-gitops` binary, see [`pve_gitops_bin`]) and parses the corosync
//! tools' output (with the controller's parsers, `pve_gitops::target::corosync::tools`). Nothing is created in, or routed to, the host network namespace.
//!
//! Needs root, corosync 3 (knet), iproute2, util-linux (`unshare`, `nsenter`) and
//! procps (`kill`); see `install-deps.sh`. Tests call [`preflight`] first.
//!
//! ```no_run
//! use std::time::Duration;
//! use pve_gitops_e2e::{preflight, Harness};
//!
//! if !preflight("example") { return Ok(()); }
//! let mut h = Harness::new("doc", 3, 1)?;
//! h.write_conf_all(&h.render_conf(&[1, 2, 3], 1, 1))?;
//! for i in 1..=3 { h.start(i)?; }
//! let st = h.wait_quorate(1, &[1, 2, 3], Duration::from_secs(30))?;
//! assert_eq!(st.expected_votes, 3);
//! # Ok::<(), pve_gitops_e2e::Error>(())
//! ```

mod cleanup;
mod cmd;
mod conf;
mod error;
mod harness;
pub mod service;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use cleanup::{base_dir, cleanup_stale, validate_prefix};
pub use cmd::{CmdOutput, COMMAND_TIMEOUT};
pub use conf::{ConfNode, TestConf};
pub use error::{Error, Result};
pub use harness::{Harness, STOP_TIMEOUT};
/// The corosync tools' output, parsed by the controller's parsers.
pub use pve_gitops::target::corosync::tools::{
    CmapEntry, LinkInfo, LinkStatus, NodeLink, NodeReachability, QuorumStatus,
};

/// Time allowed for a cluster to become quorate (usually ~3 s; generous for loaded CI).
pub const QUORUM_TIMEOUT: Duration = Duration::from_secs(30);

/// Polling interval of [`wait_until`] and [`wait_for`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Env var: when set to `1`, [`preflight`] skips (instead of failing) on a machine that
/// cannot run the e2e tests.
pub const SKIP_ENV: &str = "PVE_GITOPS_E2E_SKIP";

/// Poll `cond` every [`POLL_INTERVAL`] until it returns true (`Ok(elapsed)`) or
/// `timeout` passes ([`Error::Timeout`]).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<Duration> {
    let start = Instant::now();
    wait_for(timeout, "condition", || cond().then_some(()))?;
    Ok(start.elapsed())
}

/// Poll `f` every [`POLL_INTERVAL`] until it returns `Some`, or fail with
/// [`Error::Timeout`] naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Tools the harness runs.
pub const REQUIRED_TOOLS: &[&str] = &[
    "corosync",
    "corosync-quorumtool",
    "corosync-cmapctl",
    "corosync-cfgtool",
    "corosync-keygen",
    "ip",
    "unshare",
    "nsenter",
    "mount",
    "kill",
    "sh",
    "cat",
    "hostname",
];

/// Why this machine cannot run e2e tests, or `None` if it can (root, tools on `PATH`,
/// the mount points corosync's package creates).
pub fn missing_requirements() -> Option<String> {
    let mut problems = Vec::new();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        });
    if uid.as_deref() != Some("0") {
        problems.push(format!("not running as root (effective uid {uid:?})"));
    }
    let missing: Vec<&str> = REQUIRED_TOOLS
        .iter()
        .copied()
        .filter(|t| find_in_path(t).is_none())
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing tools on PATH: {}", missing.join(", ")));
    }
    for d in ["/etc/corosync", "/var/lib/corosync", "/var/log/corosync"] {
        if !Path::new(d).is_dir() {
            problems.push(format!(
                "missing directory {d} (is the corosync package installed?)"
            ));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{}; run e2e/install-deps.sh as root, or set {SKIP_ENV}=1 to skip",
            problems.join("; ")
        )
    })
}

/// Call at the start of every e2e test: returns `true` if the test can run. Otherwise,
/// with `PVE_GITOPS_E2E_SKIP=1` it prints `SKIPPED <test>: <reason>` and returns
/// `false`; without it, it panics with the reason.
pub fn preflight(test: &str) -> bool {
    match missing_requirements() {
        None => true,
        Some(why) if std::env::var(SKIP_ENV).as_deref() == Ok("1") => {
            // Straight to the stderr handle: libtest captures `eprintln!` of passing
            // tests, and a skip must be visible.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
            false
        }
        Some(why) => panic!("e2e test {test} cannot run: {why}"),
    }
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Locate the built `pve-gitops` binary, in this order: env `PVE_GITOPS_BIN`, env
/// `CARGO_BIN_EXE_pve-gitops`, the profile dir of the running test executable
/// (`target/<profile>/deps/..`), then `$CARGO_TARGET_DIR` and the workspace `target/`
/// (`debug` before `release`). Build it first, e.g. `cargo build -p pve-gitops`.
pub fn pve_gitops_bin() -> Option<PathBuf> {
    const NAME: &str = "pve-gitops";
    for var in ["PVE_GITOPS_BIN", "CARGO_BIN_EXE_pve-gitops"] {
        if let Some(p) = std::env::var_os(var).map(PathBuf::from) {
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test-bin>
        if let Some(profile) = exe.parent().and_then(Path::parent) {
            candidates.push(profile.join(NAME));
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let targets = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([workspace.join("target")]);
    for t in targets {
        candidates.extend(["debug", "release"].map(|p| t.join(p).join(NAME)));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or(p))
}
