//! The cluster lock: a directory under `DIR/priv/lock/` with pmxcfs's cfs-lock semantics
//! (reference/domain.md §4.5).
//!
//! - Acquire: atomic `mkdir DIR/priv/lock/<id>` (ids as pmxcfs names them:
//!   `file-corosync_conf`, `file-datacenter_cfg`). The holder writes `owner` into it
//!   (`NODE pid PID token TOKEN`), so other controllers can say who holds it.
//! - Refresh while held: the holder rewrites `owner`; its mtime is the lock's last sign of life.
//! - Take over: a lock whose `owner` (or, without one, the directory) has not been refreshed for
//!   [`LOCK_LIFETIME`] (pmxcfs's `CFS_LOCK_TIMEOUT`, 120 s) belongs to a dead holder. It is
//!   renamed away (atomic: only one controller wins the rename) and removed, then `mkdir` again.
//! - Release: remove `owner`, `rmdir` — only while `owner` still carries our token.
//!
//! Unlike pmxcfs (which measures the 120 s with each node's local clock from when it first saw
//! the lock), the age is taken from the shared directory's mtimes, so the nodes' clocks must
//! agree to within a few seconds (NTP), as they must for corosync and Proxmox VE anyway.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Where lock directories live, relative to the shared directory.
pub const LOCK_DIR: &str = "priv/lock";
/// The lock of corosync.conf (`cfs_lock_file('corosync.conf')`).
pub const COROSYNC_LOCK: &str = "file-corosync_conf";
/// The lock of datacenter.cfg.
pub const DATACENTER_LOCK: &str = "file-datacenter_cfg";
/// A lock not refreshed for this long is taken over (pmxcfs `CFS_LOCK_TIMEOUT`).
pub const LOCK_LIFETIME: Duration = Duration::from_secs(120);
/// The file inside a lock directory naming its holder.
pub const OWNER_FILE: &str = "owner";

/// A held lock. Dropping it releases it.
#[derive(Debug)]
pub struct ClusterLock {
    path: PathBuf,
    owner: String,
}

/// Who holds a lock we could not take, and how long ago they refreshed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The holder's node (first word of `owner`), or `unknown`.
    pub holder: String,
    /// Seconds since the last refresh.
    pub age_secs: u64,
}

fn age(path: &Path) -> Option<Duration> {
    let m = fs::metadata(path.join(OWNER_FILE))
        .or_else(|_| fs::metadata(path))
        .ok()?;
    SystemTime::now().duration_since(m.modified().ok()?).ok()
}

fn token() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos)
}

/// The holder of lock `id` under `shared`, if it is held.
pub fn holder(shared: &Path, id: &str) -> Option<Held> {
    let path = shared.join(LOCK_DIR).join(id);
    if !path.is_dir() {
        return None;
    }
    let owner = fs::read_to_string(path.join(OWNER_FILE)).unwrap_or_default();
    Some(Held {
        holder: owner
            .split_whitespace()
            .next()
            .unwrap_or("unknown")
            .to_string(),
        age_secs: age(&path).map(|d| d.as_secs()).unwrap_or(0),
    })
}

impl ClusterLock {
    /// Try once to take lock `id` under `shared` for `node`; takes over a lock that has not
    /// been refreshed for [`LOCK_LIFETIME`].
    ///
    /// # Errors
    /// The lock directory cannot be created or written (not a lock held by someone else:
    /// that is `Ok(Err(Held))`).
    pub fn try_acquire(shared: &Path, id: &str, node: &str) -> io::Result<Result<Self, Held>> {
        let dir = shared.join(LOCK_DIR);
        fs::create_dir_all(&dir)?;
        let path = dir.join(id);
        for _ in 0..2 {
            match fs::create_dir(&path) {
                Ok(()) => {
                    let lock = ClusterLock {
                        owner: format!("{node} pid {} token {}\n", std::process::id(), token()),
                        path,
                    };
                    lock.refresh()?;
                    return Ok(Ok(lock));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let stale = age(&path).is_some_and(|a| a > LOCK_LIFETIME);
                    if !stale {
                        break;
                    }
                    // Rename the dead holder's lock away; only one contender wins the rename.
                    let tomb = dir.join(format!(".{id}.stale-{}", token()));
                    if fs::rename(&path, &tomb).is_ok() {
                        let _ = fs::remove_dir_all(&tomb);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Err(holder(shared, id).unwrap_or(Held {
            holder: "unknown".into(),
            age_secs: 0,
        })))
    }

    /// Take lock `id`, waiting up to `timeout`; `while_waiting` runs between attempts (every
    /// 200 ms).
    ///
    /// # Errors
    /// As [`ClusterLock::try_acquire`].
    pub fn acquire(
        shared: &Path,
        id: &str,
        node: &str,
        timeout: Duration,
        mut while_waiting: impl FnMut(),
    ) -> io::Result<Result<Self, Held>> {
        let start = Instant::now();
        loop {
            match Self::try_acquire(shared, id, node)? {
                Ok(l) => return Ok(Ok(l)),
                Err(held) if start.elapsed() >= timeout => return Ok(Err(held)),
                Err(_) => {
                    while_waiting();
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Extend the lock's life by another [`LOCK_LIFETIME`] (rewrites `owner`).
    ///
    /// # Errors
    /// The owner file cannot be written.
    pub fn refresh(&self) -> io::Result<()> {
        fs::write(self.path.join(OWNER_FILE), &self.owner)
    }

    /// Whether the lock is still ours (not taken over after a long stall).
    pub fn still_held(&self) -> bool {
        fs::read_to_string(self.path.join(OWNER_FILE)).is_ok_and(|s| s == self.owner)
    }

    /// The lock directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        if self.still_held() {
            let _ = fs::remove_file(self.path.join(OWNER_FILE));
            let _ = fs::remove_dir(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pve-gitops-lock-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn exclusive_until_released() {
        let d = tmp("excl");
        let a = ClusterLock::try_acquire(&d, COROSYNC_LOCK, "pve1")
            .unwrap()
            .unwrap();
        let held = ClusterLock::try_acquire(&d, COROSYNC_LOCK, "pve2")
            .unwrap()
            .unwrap_err();
        assert_eq!(held.holder, "pve1");
        assert_eq!(holder(&d, COROSYNC_LOCK).unwrap().holder, "pve1");
        assert!(a.still_held());
        drop(a);
        assert!(holder(&d, COROSYNC_LOCK).is_none());
        let b = ClusterLock::try_acquire(&d, COROSYNC_LOCK, "pve2")
            .unwrap()
            .unwrap();
        assert!(b.path().ends_with("priv/lock/file-corosync_conf"));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let d = tmp("stale");
        let a = ClusterLock::try_acquire(&d, COROSYNC_LOCK, "pve1")
            .unwrap()
            .unwrap();
        let old = SystemTime::now() - Duration::from_secs(121);
        fs::File::options()
            .write(true)
            .open(a.path().join(OWNER_FILE))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let b = ClusterLock::try_acquire(&d, COROSYNC_LOCK, "pve2")
            .unwrap()
            .unwrap();
        assert!(!a.still_held());
        drop(a); // must not remove b's lock
        assert!(b.still_held());
        assert_eq!(holder(&d, COROSYNC_LOCK).unwrap().holder, "pve2");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn acquire_waits_then_gives_up() {
        let d = tmp("wait");
        let _a = ClusterLock::try_acquire(&d, COROSYNC_LOCK, "pve1")
            .unwrap()
            .unwrap();
        let mut calls = 0;
        let r = ClusterLock::acquire(
            &d,
            COROSYNC_LOCK,
            "pve2",
            Duration::from_millis(300),
            || calls += 1,
        )
        .unwrap();
        assert!(r.is_err());
        assert!(calls >= 1);
        let _ = fs::remove_dir_all(&d);
    }
}
