//! pmxcfs cluster-wide locks (`PVE::Cluster::cfs_lock_*`, reference/domain.md §4.5): a lock is
//! the directory `priv/lock/<id>` under the config filesystem root, taken with an atomic
//! `mkdir`, refreshed by setting its mtime to now, released with `rmdir`. This is the one lock
//! of the controller: the `pve` target's cfs locks, the `corosync` target's locks in its shared
//! directory, the sim's cfs locks and the watch daemon's cluster lock
//! ([`CONTROLLER_LOCK`]) are all taken here.
//!
//! ## Owners
//!
//! A lock taken with [`CfsLock::acquire_as`] names its holder: an [`OWNER_FILE`] inside it
//! (`NAME pid PID token TOKEN`), so that others can say who holds it ([`holder`]), and so that
//! a holder releases the lock only while the file still carries its token (a holder that
//! stalled past the lifetime and was taken over never removes its successor's lock). A lock
//! taken with [`CfsLock::acquire`] is anonymous: nothing is written inside it (as on a real
//! pmxcfs, which cannot remove or rename a non-empty lock directory).
//!
//! ## Expiry
//!
//! On a real pmxcfs (`/etc/pve`, [`ExpiryMode::Pmxcfs`]) expiry is pmxcfs's business: a waiter
//! sets the lock's mtime to 0 (an "unlock request") and pmxcfs removes a lock it has seen for
//! longer than [`CFS_LOCK_TIMEOUT_SECS`] (120 s, measured by each node's own clock since it
//! first saw the lock). Nothing is written inside the lock directory and nothing is renamed.
//!
//! On a plain directory (a copy of `/etc/pve`, the corosync target's shared directory, the sim,
//! tests, [`ExpiryMode::Mtime`]) nothing removes a dead holder's lock, so the waiter does what
//! pmxcfs would: a lock whose owner file (or, without one, the directory) was last modified
//! longer than the lifetime ago is stale. The waiter that takes the takeover guard
//! (`.<id>.takeover`, an atomic `mkdir` beside the lock) checks again that the lock is still
//! stale, renames it away and removes it, releases the guard, and every waiter then races for
//! the lock with `mkdir` again: one contender wins, and nobody removes the lock a faster
//! contender has just taken. Where the rename is refused (pmxcfs cannot rename a non-empty
//! directory) the owner file and the directory are removed in place. A guard left by a waiter
//! that died during its takeover expires after the same lifetime. The holder
//! refreshes ([`CfsLock::refresh`]) to keep a long critical section alive, as the HA manager
//! does with its `ha_manager_lock`.
//!
//! Unlike pmxcfs, the age is taken from the shared directory's mtimes, so the nodes' clocks
//! must agree to within a few seconds (NTP), as they must for corosync and Proxmox VE anyway.
//!
//! Messages follow pve-cluster's wording (`cfs-lock '<id>' error: got lock request timeout`).

use pve_gitops_schema::pmxcfs::{CFS_LOCK_TIMEOUT_SECS, LOCK_DIR};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The cluster lock of the pve-gitops controllers (`priv/lock/pve-gitops`): a watch daemon
/// applies steps only while holding it, so two daemons watching one cluster never apply the
/// same step twice.
pub const CONTROLLER_LOCK: &str = "pve-gitops";

/// The file inside a lock directory naming its holder (`NAME pid PID token TOKEN`).
pub const OWNER_FILE: &str = "owner";

/// Owner files that name a holder, in the order they are read: [`OWNER_FILE`], then the
/// `holder` file (just the name) of the watch daemons of earlier pve-gitops versions.
const OWNER_FILES: [&str; 2] = [OWNER_FILE, "holder"];

/// How a held lock expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryMode {
    /// The directory is a real pmxcfs: a waiter sends unlock requests (mtime 0) and pmxcfs
    /// removes locks older than the lifetime.
    Pmxcfs,
    /// A plain directory: a lock whose owner file (or directory) mtime is older than the
    /// lifetime is removed by the waiter and taken over.
    Mtime,
}

/// How long to wait for a lock and how long a lock lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Give up acquiring after this long (pve-cluster: 10 s; zero: try once).
    pub timeout: Duration,
    /// Lifetime of an unrefreshed lock ([`CFS_LOCK_TIMEOUT_SECS`]).
    pub lifetime: Duration,
    /// Time between attempts.
    pub poll: Duration,
    /// Who expires stale locks.
    pub expiry: ExpiryMode,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout: Duration::from_secs(10),
            lifetime: Duration::from_secs(CFS_LOCK_TIMEOUT_SECS),
            poll: Duration::from_millis(250),
            expiry: ExpiryMode::Mtime,
        }
    }
}

impl LockOptions {
    /// The defaults for a real pmxcfs mount.
    pub fn pmxcfs() -> LockOptions {
        LockOptions {
            expiry: ExpiryMode::Pmxcfs,
            ..LockOptions::default()
        }
    }

    /// Try once, without waiting (a stale lock on a plain directory is still taken over).
    pub fn try_once() -> LockOptions {
        LockOptions {
            timeout: Duration::ZERO,
            ..LockOptions::default()
        }
    }
}

/// Who holds a lock, and how long ago they refreshed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The holder's name (first word of its owner file), or `unknown`.
    pub holder: String,
    /// Seconds since the last refresh.
    pub age_secs: u64,
}

/// Why a lock could not be taken, refreshed or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// `priv/lock` cannot be created: the cluster filesystem is not mounted / writable.
    #[error("cannot create {}: pve cluster filesystem not online ({source})", path.display())]
    NotOnline {
        /// The lock directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another holder kept the lock for the whole timeout.
    #[error("cfs-lock '{id}' error: got lock request timeout ({} is held)", path.display())]
    Timeout {
        /// The lock id.
        id: String,
        /// Its directory.
        path: PathBuf,
        /// Who held it when we gave up.
        held: Held,
    },
    /// `/etc/pve` is read-only (pmxcfs without quorum).
    #[error("cfs-lock '{id}' error: no quorum! ({} is read-only)", path.display())]
    NoQuorum {
        /// The lock id.
        id: String,
        /// Its directory.
        path: PathBuf,
        /// The refused `mkdir`'s error.
        source: io::Error,
    },
    /// Another I/O failure.
    #[error("cfs-lock '{id}': {}: {source}", path.display())]
    Io {
        /// The lock id.
        id: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The lock expired and was removed (or taken over) while we held it.
    #[error("cfs-lock '{id}' was lost: {} is gone", path.display())]
    Lost {
        /// The lock id.
        id: String,
        /// Its directory.
        path: PathBuf,
    },
}

impl From<LockError> for crate::target::TargetError {
    /// A failing lock directory is a [`TargetError::Write`](crate::target::TargetError::Write)
    /// of it; a held or lost lock is [`TargetError::Unavailable`](crate::target::TargetError::Unavailable)
    /// (targets turn [`LockError::Timeout`] into a refused or stale step first).
    fn from(e: LockError) -> Self {
        use crate::target::TargetError;
        match e {
            LockError::NotOnline { path, source }
            | LockError::NoQuorum { path, source, .. }
            | LockError::Io { path, source, .. } => TargetError::Write { path, source },
            other => TargetError::Unavailable(other.to_string()),
        }
    }
}

/// `ROOT/priv/lock/<id>`.
pub fn lock_path(root: &Path, id: &str) -> PathBuf {
    root.join(LOCK_DIR).join(id)
}

/// The holder of lock `id` under `root`, if it is held (`unknown` for an anonymous lock).
pub fn holder(root: &Path, id: &str) -> Option<Held> {
    let path = lock_path(root, id);
    if !path.is_dir() {
        return None;
    }
    let name = OWNER_FILES
        .iter()
        .find_map(|f| fs::read_to_string(path.join(f)).ok())
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    Some(Held {
        holder: name,
        age_secs: age(&path).map_or(0, |d| d.as_secs()),
    })
}

/// Time since the lock's last sign of life: its owner file's mtime, else the directory's.
fn age(path: &Path) -> Option<Duration> {
    let m = OWNER_FILES
        .iter()
        .find_map(|f| fs::metadata(path.join(f)).ok())
        .or_else(|| fs::metadata(path).ok())?;
    SystemTime::now().duration_since(m.modified().ok()?).ok()
}

fn set_mtime(path: &Path, t: SystemTime) -> io::Result<()> {
    fs::File::open(path)?.set_modified(t)
}

/// Unique per process and call: `<pid hex><nanos hex>`.
fn token() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{nanos:x}", std::process::id())
}

/// A held cfs lock; released (`rmdir`) when dropped or by [`CfsLock::release`].
#[derive(Debug)]
pub struct CfsLock {
    id: String,
    path: PathBuf,
    /// Content of our owner file (`None`: an anonymous lock).
    owner: Option<String>,
    released: bool,
}

impl CfsLock {
    /// Take the anonymous lock `id` under `root` (`root/priv/lock/<id>`), waiting up to
    /// `opts.timeout`.
    ///
    /// # Errors
    /// [`LockError::Timeout`] when another holder keeps it; [`LockError::NotOnline`] when the
    /// lock directory cannot be created; [`LockError::NoQuorum`] when the filesystem refuses
    /// writes (pmxcfs without quorum).
    pub fn acquire(root: &Path, id: &str, opts: &LockOptions) -> Result<CfsLock, LockError> {
        Self::take(root, id, None, opts, || {})
    }

    /// Take lock `id` under `root` as `owner` (a name without white space: a node, a daemon
    /// id), writing [`OWNER_FILE`]; `while_waiting` runs between attempts.
    ///
    /// # Errors
    /// As [`CfsLock::acquire`]; [`LockError::Io`] when the owner file cannot be written.
    pub fn acquire_as(
        root: &Path,
        id: &str,
        owner: &str,
        opts: &LockOptions,
        while_waiting: impl FnMut(),
    ) -> Result<CfsLock, LockError> {
        Self::take(root, id, Some(owner), opts, while_waiting)
    }

    fn take(
        root: &Path,
        id: &str,
        owner: Option<&str>,
        opts: &LockOptions,
        mut while_waiting: impl FnMut(),
    ) -> Result<CfsLock, LockError> {
        let dir = root.join(LOCK_DIR);
        fs::create_dir_all(&dir).map_err(|source| LockError::NotOnline {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(id);
        let start = Instant::now();
        loop {
            match fs::create_dir(&path) {
                Ok(()) => {
                    let lock = CfsLock {
                        id: id.to_string(),
                        owner: owner
                            .map(|o| format!("{o} pid {} token {}\n", std::process::id(), token())),
                        path,
                        released: false,
                    };
                    if let Some(content) = &lock.owner {
                        if let Err(source) = fs::write(lock.path.join(OWNER_FILE), content) {
                            let _ = fs::remove_file(lock.path.join(OWNER_FILE));
                            let _ = fs::remove_dir(&lock.path);
                            return Err(lock.io_err(source));
                        }
                    }
                    return Ok(lock);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if expire_or_request(&path, opts) {
                        continue; // a dead holder's lock is gone: mkdir again at once
                    }
                }
                Err(source)
                    if matches!(
                        source.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
                {
                    return Err(LockError::NoQuorum {
                        id: id.to_string(),
                        path,
                        source,
                    })
                }
                Err(source) => {
                    return Err(LockError::Io {
                        id: id.to_string(),
                        path,
                        source,
                    })
                }
            }
            let elapsed = start.elapsed();
            if elapsed >= opts.timeout {
                return Err(LockError::Timeout {
                    id: id.to_string(),
                    held: holder(root, id).unwrap_or_else(|| Held {
                        holder: "unknown".into(),
                        age_secs: 0,
                    }),
                    path,
                });
            }
            while_waiting();
            std::thread::sleep(opts.poll.min(opts.timeout - elapsed));
        }
    }

    fn io_err(&self, source: io::Error) -> LockError {
        LockError::Io {
            id: self.id.clone(),
            path: self.path.clone(),
            source,
        }
    }

    fn lost(&self) -> LockError {
        LockError::Lost {
            id: self.id.clone(),
            path: self.path.clone(),
        }
    }

    /// The lock id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lock directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the lock is still ours: the directory exists and, for a lock with an owner,
    /// the owner file still carries our token (it was not taken over after a long stall).
    pub fn still_held(&self) -> bool {
        match &self.owner {
            Some(content) => {
                fs::read_to_string(self.path.join(OWNER_FILE)).is_ok_and(|s| s == *content)
            }
            None => self.path.is_dir(),
        }
    }

    /// Extend the lock's lifetime (mtime = now, of the owner file and the directory), as
    /// pve-cluster's holder does.
    ///
    /// # Errors
    /// [`LockError::Lost`] when the directory is gone or, for a lock with an owner, no longer
    /// ours (it expired and was removed or taken over).
    pub fn refresh(&self) -> Result<(), LockError> {
        let now = SystemTime::now();
        if self.owner.is_some() {
            if !self.still_held() {
                return Err(self.lost());
            }
            set_mtime(&self.path.join(OWNER_FILE), now).map_err(|e| self.io_err(e))?;
        }
        set_mtime(&self.path, now).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                self.lost()
            } else {
                self.io_err(e)
            }
        })
    }

    /// Release the lock (`rmdir`; a lock with an owner only while it is still ours).
    ///
    /// # Errors
    /// The directory could not be removed (other than already gone).
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        self.remove().map_err(|e| self.io_err(e))
    }

    fn remove(&self) -> io::Result<()> {
        if self.owner.is_some() {
            if !self.still_held() {
                return Ok(());
            }
            let _ = fs::remove_file(self.path.join(OWNER_FILE));
        }
        match fs::remove_dir(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for CfsLock {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.remove();
        }
    }
}

/// The lock exists: on pmxcfs send an unlock request; on a plain directory remove a lock
/// older than the lifetime. Whether to `mkdir` again at once (the lock is gone, or a dead
/// waiter's takeover guard was); failures are ignored (the next `mkdir` decides).
fn expire_or_request(path: &Path, opts: &LockOptions) -> bool {
    match opts.expiry {
        ExpiryMode::Pmxcfs => {
            let _ = set_mtime(path, SystemTime::UNIX_EPOCH);
            false
        }
        ExpiryMode::Mtime => {
            if !is_stale(path, opts) {
                return false;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Only the holder of the takeover guard removes the lock, after checking again
            // that it is still stale: without the guard, a contender that found the same dead
            // lock a moment later would remove the lock a faster one had just taken.
            let guard = path.with_file_name(format!(".{name}.takeover"));
            if fs::create_dir(&guard).is_err() {
                // Another waiter is taking it over, or died doing so: its guard expires, and
                // then this waiter tries again at once.
                return is_stale(&guard, opts) && fs::remove_dir(&guard).is_ok();
            }
            let gone = match fs::symlink_metadata(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                _ if is_stale(path, opts) => remove_stale(path, &name),
                _ => false,
            };
            let _ = fs::remove_dir(&guard);
            gone
        }
    }
}

fn is_stale(path: &Path, opts: &LockOptions) -> bool {
    age(path).is_some_and(|a| a > opts.lifetime)
}

/// Remove a dead holder's lock (under the takeover guard): renamed away, then removed; where
/// the rename is refused (pmxcfs cannot rename a non-empty directory) removed in place.
fn remove_stale(path: &Path, name: &str) -> bool {
    let tomb = path.with_file_name(format!(".{name}.stale-{}", token()));
    match fs::rename(path, &tomb) {
        Ok(()) => {
            let _ = fs::remove_dir_all(&tomb);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(_) => {
            for f in OWNER_FILES {
                let _ = fs::remove_file(path.join(f));
            }
            fs::remove_dir(path).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lifetime_is_pmxcfs_timeout() {
        assert_eq!(LockOptions::default().lifetime.as_secs(), 120);
        assert_eq!(LockOptions::pmxcfs().expiry, ExpiryMode::Pmxcfs);
        assert_eq!(LockOptions::try_once().timeout, Duration::ZERO);
    }
}
