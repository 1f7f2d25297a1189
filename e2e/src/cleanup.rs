//! Cleanup of everything a harness with a given prefix may have left behind.
//!
//! Ownership is by *name*: a harness with prefix `P` owns the network namespaces `P-sw`
//! and `P-n<digits>`, every process living in them, the base directory
//! `$TMPDIR/pve-gitops-e2e/P`, and the `/dev/shm/qb-*` files of the PIDs it recorded in
//! `<base>/pids`. Nothing else is touched.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{run, run_ok, signal, COMMAND_TIMEOUT};
use crate::error::{Error, Result};

/// The base directory of all harnesses with `prefix`: `$TMPDIR/pve-gitops-e2e/<prefix>`.
pub fn base_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join("pve-gitops-e2e").join(prefix)
}

/// Check that `prefix` is usable in namespace and interface names: 1 to 8 characters of
/// `[a-z0-9]`, starting with a letter (veth names are `<prefix>n<node>l<link>` and
/// must stay within the kernel's 15 characters).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = (1..=8).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "prefix {prefix:?} must be 1-8 chars of [a-z0-9] starting with a letter"
        )))
    }
}

/// Kill leftover processes and delete leftover namespaces, `/dev/shm/qb-*` files and the
/// base directory of an earlier (crashed) run with this `prefix`. Safe to call when
/// nothing is left over. [`crate::Harness::new`] calls it first.
///
/// Do not call it while another live harness uses the same prefix: it would be torn down.
pub fn cleanup_stale(prefix: &str) -> Result<()> {
    validate_prefix(prefix)?;
    let names = owned_netns(prefix)?;
    let mut pids = BTreeSet::new();
    for ns in &names {
        pids.extend(netns_pids(ns));
    }
    kill_and_wait(&pids, Duration::from_secs(5));
    for ns in &names {
        delete_netns(ns)?;
    }
    let base = base_dir(prefix);
    pids.extend(read_pid_log(&base));
    remove_shm(&pids);
    match fs::remove_dir_all(&base) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", base.display()), e))
        }
        _ => Ok(()),
    }
}

/// Namespaces named `<prefix>-sw` or `<prefix>-n<digits>`.
pub(crate) fn owned_netns(prefix: &str) -> Result<Vec<String>> {
    let out = run_ok(Command::new("ip").args(["netns", "list"]))?;
    let sw = format!("{prefix}-sw");
    let node = format!("{prefix}-n");
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| {
            *n == sw
                || n.strip_prefix(&node)
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_owned)
        .collect())
}

/// PIDs of the processes whose network namespace is `ns`.
pub(crate) fn netns_pids(ns: &str) -> Vec<u32> {
    run(
        Command::new("ip").args(["netns", "pids", ns]),
        COMMAND_TIMEOUT,
    )
    .map(|o| {
        o.stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

/// `ip netns del`, ignoring a namespace that is already gone.
pub(crate) fn delete_netns(ns: &str) -> Result<()> {
    let out = run(
        Command::new("ip").args(["netns", "del", ns]),
        COMMAND_TIMEOUT,
    )?;
    if out.success() || out.stderr.contains("No such file") {
        Ok(())
    } else {
        Err(out.into_error())
    }
}

/// SIGKILL every PID and wait (bounded) until none is alive any more.
pub(crate) fn kill_and_wait(pids: &BTreeSet<u32>, timeout: Duration) {
    for pid in pids {
        if alive(*pid) {
            let _ = signal(*pid, "KILL");
        }
    }
    let deadline = Instant::now() + timeout;
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Append `pid` to `<base>/pids` so a later [`cleanup_stale`] can find its shm files.
pub(crate) fn record_pid(base: &Path, pid: u32) {
    use std::io::Write as _;
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.join("pids"))
    {
        let _ = writeln!(f, "{pid}");
    }
}

pub(crate) fn read_pid_log(base: &Path) -> Vec<u32> {
    fs::read_to_string(base.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Remove libqb's `/dev/shm/qb-corosync-<pid>-*` (blackbox) and `qb-<server>-<client>-*`
/// (IPC) entries that belong to one of `pids`, once that PID is dead.
pub(crate) fn remove_shm(pids: &BTreeSet<u32>) {
    let Ok(dir) = fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("qb-") {
            continue;
        }
        let segs: Vec<&str> = name.split('-').collect();
        let owner = segs[1..segs.len().min(3)]
            .iter()
            .filter_map(|s| s.parse::<u32>().ok())
            .find(|p| pids.contains(p));
        if let Some(pid) = owner {
            if !alive(pid) {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}
