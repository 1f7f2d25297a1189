//! The cluster lock of the pve-gitops controllers: the directory `priv/lock/pve-gitops` in the
//! cluster-wide config directory (`/etc/pve` on Proxmox VE, the sim directory, the corosync
//! target's `--config-dir`), taken with an atomic `mkdir` as pmxcfs cfs locks and the HA
//! manager's `ha_manager_lock` are. The holder writes its id into `holder` inside it (what
//! the sim's `observe` reports as the lock holder) and renews the lock by touching the
//! directory; a lock not renewed for [`LIFETIME`] is stale and may be taken over (pmxcfs
//! expires cfs locks after 120 s the same way).
//!
//! Only cluster-wide work needs it: a daemon applies steps only while holding it, so two
//! daemons watching one cluster never apply the same step twice (the second one re-observes
//! after the first released it and finds nothing left to do).
//!
//! ## Caveats
//!
//! Taking over a stale lock is a remove-then-`mkdir`; two daemons that both find the same
//! lock stale at the same instant can both remove it, and one of them may remove the lock the
//! other just took. Both then re-observe before every step, so a step is still not applied
//! twice on the sim (which checks each step's precondition), but a real cluster relies on the
//! lifetime being far longer than a renewal period.

use pve_gitops_schema::pmxcfs::{CFS_LOCK_TIMEOUT_SECS, LOCK_DIR};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Name of the lock directory inside `priv/lock/` (the sim's `CONTROLLER_LOCK`).
pub const LOCK_NAME: &str = crate::target::sim::CONTROLLER_LOCK;

/// A lock not renewed for this long is stale.
pub const LIFETIME: Duration = Duration::from_secs(CFS_LOCK_TIMEOUT_SECS);

/// The result of trying to take the lock.
#[derive(Debug)]
pub enum Acquire {
    /// Taken; released when the guard is dropped.
    Acquired(LockGuard),
    /// Another controller holds it (its id, or `unknown`).
    HeldBy(String),
}

/// A held lock.
#[derive(Debug)]
pub struct LockGuard {
    dir: PathBuf,
    holder: String,
}

/// `ROOT/priv/lock/pve-gitops`.
pub fn lock_dir(root: &Path) -> PathBuf {
    root.join(LOCK_DIR).join(LOCK_NAME)
}

/// Try to take the lock under `root` as `holder`.
///
/// # Errors
/// The lock directory cannot be created or read (not a conflict: that is `HeldBy`).
pub fn try_acquire(root: &Path, holder: &str) -> io::Result<Acquire> {
    let dir = lock_dir(root);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    for _ in 0..2 {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                crate::configfs::atomic_write(
                    &dir.join("holder"),
                    format!("{holder}\n").as_bytes(),
                )?;
                return Ok(Acquire::Acquired(LockGuard {
                    dir,
                    holder: holder.to_string(),
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let current = read_holder(&dir);
                if current.as_deref() == Some(holder) {
                    let g = LockGuard {
                        dir,
                        holder: holder.to_string(),
                    };
                    g.renew()?;
                    return Ok(Acquire::Acquired(g));
                }
                if !is_stale(&dir) {
                    return Ok(Acquire::HeldBy(current.unwrap_or_else(|| "unknown".into())));
                }
                let _ = std::fs::remove_file(dir.join("holder"));
                let _ = std::fs::remove_file(dir.join("holder.new"));
                let _ = std::fs::remove_dir(&dir);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Acquire::HeldBy(
        read_holder(&dir).unwrap_or_else(|| "unknown".into()),
    ))
}

fn read_holder(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("holder"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn is_stale(dir: &Path) -> bool {
    let newest = [dir.to_path_buf(), dir.join("holder")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max();
    match newest {
        Some(t) => SystemTime::now()
            .duration_since(t)
            .is_ok_and(|age| age > LIFETIME),
        None => false,
    }
}

impl LockGuard {
    /// Touch the lock so it does not become stale (call well within [`LIFETIME`]).
    ///
    /// # Errors
    /// The lock directory is gone or cannot be touched.
    pub fn renew(&self) -> io::Result<()> {
        let f = std::fs::File::open(&self.dir)?;
        f.set_modified(SystemTime::now())
    }

    /// The lock directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if read_holder(&self.dir).as_deref() == Some(self.holder.as_str()) {
            let _ = std::fs::remove_file(self.dir.join("holder"));
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let root = std::env::temp_dir().join(format!("pgw-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let a = match try_acquire(&root, "a").unwrap() {
            Acquire::Acquired(g) => g,
            Acquire::HeldBy(h) => panic!("held by {h}"),
        };
        match try_acquire(&root, "b").unwrap() {
            Acquire::HeldBy(h) => assert_eq!(h, "a"),
            Acquire::Acquired(_) => panic!("two holders"),
        }
        drop(a);
        assert!(!lock_dir(&root).exists());
        let b = try_acquire(&root, "b").unwrap();
        assert!(matches!(b, Acquire::Acquired(_)));
        drop(b);
        // A stale lock (not renewed for longer than the lifetime) is taken over.
        std::fs::create_dir_all(lock_dir(&root)).unwrap();
        std::fs::write(lock_dir(&root).join("holder"), "dead\n").unwrap();
        let old = SystemTime::now() - LIFETIME - Duration::from_secs(5);
        for p in [lock_dir(&root).join("holder"), lock_dir(&root)] {
            std::fs::File::open(&p).unwrap().set_modified(old).unwrap();
        }
        assert!(matches!(
            try_acquire(&root, "c").unwrap(),
            Acquire::Acquired(_)
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
