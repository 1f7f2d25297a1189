//! pmxcfs cluster-wide locks (`PVE::Cluster::cfs_lock_*`, reference/domain.md §4.5): a lock is
//! the directory `priv/lock/<id>` under the config filesystem root, taken with an atomic
//! `mkdir`, refreshed by setting its mtime to now, released with `rmdir`.
//!
//! On a real pmxcfs (`/etc/pve`) expiry is pmxcfs's business: a waiter sets the lock's mtime
//! to 0 (an "unlock request") and pmxcfs removes a lock it has seen for longer than
//! [`CFS_LOCK_TIMEOUT_SECS`] (120 s, measured by each node's own clock since it first saw the
//! lock). Nothing is written inside the lock directory and nothing is renamed there (pmxcfs
//! cannot rename non-empty directories).
//!
//! On a plain directory (a copy of `/etc/pve`, a shared directory, tests) nothing removes a
//! dead holder's lock, so [`ExpiryMode::Mtime`] does what pmxcfs would: a lock whose mtime
//! (or the mtime of an `owner` file in it, as the corosync target's lock writes one) is older
//! than the lifetime is stale; it is renamed away (one contender wins) and removed. The holder
//! refreshes the mtime ([`CfsLock::refresh`]) to keep a long critical section alive, as the
//! HA manager does with its `ha_manager_lock`.
//!
//! Messages follow pve-cluster's wording (`cfs-lock '<id>' error: got lock request timeout`).

use pve_gitops_schema::pmxcfs::{CFS_LOCK_TIMEOUT_SECS, LOCK_DIR};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How a held lock expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryMode {
    /// The directory is a real pmxcfs: a waiter sends unlock requests (mtime 0) and pmxcfs
    /// removes locks older than the lifetime.
    Pmxcfs,
    /// A plain directory: a lock whose mtime is older than the lifetime is removed by the
    /// waiter and taken over.
    Mtime,
}

/// How long to wait for a lock and how long a lock lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Give up acquiring after this long (pve-cluster: 10 s).
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
    },
    /// `/etc/pve` is read-only (pmxcfs without quorum).
    #[error("cfs-lock '{id}' error: no quorum! ({} is read-only)", path.display())]
    NoQuorum {
        /// The lock id.
        id: String,
        /// Its directory.
        path: PathBuf,
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
    /// The lock expired and was removed while we held it.
    #[error("cfs-lock '{id}' was lost: {} is gone", path.display())]
    Lost {
        /// The lock id.
        id: String,
        /// Its directory.
        path: PathBuf,
    },
}

/// A held cfs lock; released (`rmdir`) when dropped or by [`CfsLock::release`].
#[derive(Debug)]
pub struct CfsLock {
    id: String,
    path: PathBuf,
    released: bool,
}

fn set_mtime(path: &Path, t: SystemTime) -> io::Result<()> {
    fs::File::open(path)?.set_modified(t)
}

impl CfsLock {
    /// Take the lock `id` under `root` (`root/priv/lock/<id>`), waiting up to
    /// `opts.timeout`.
    ///
    /// # Errors
    /// [`LockError::Timeout`] when another holder keeps it; [`LockError::NotOnline`] when the
    /// lock directory cannot be created; [`LockError::NoQuorum`] when the filesystem refuses
    /// writes (pmxcfs without quorum).
    pub fn acquire(root: &Path, id: &str, opts: &LockOptions) -> Result<CfsLock, LockError> {
        let dir = root.join(LOCK_DIR);
        fs::create_dir_all(&dir).map_err(|source| LockError::NotOnline {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(id);
        let start = std::time::Instant::now();
        loop {
            match fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(CfsLock {
                        id: id.to_string(),
                        path,
                        released: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    expire_or_request(&path, opts);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
                {
                    return Err(LockError::NoQuorum {
                        id: id.to_string(),
                        path,
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
                    path,
                });
            }
            std::thread::sleep(opts.poll.min(opts.timeout - elapsed));
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

    /// Extend the lock's lifetime (mtime = now), as pve-cluster's holder does.
    ///
    /// # Errors
    /// [`LockError::Lost`] when the directory is gone (it expired and was removed).
    pub fn refresh(&self) -> Result<(), LockError> {
        set_mtime(&self.path, SystemTime::now()).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                LockError::Lost {
                    id: self.id.clone(),
                    path: self.path.clone(),
                }
            } else {
                LockError::Io {
                    id: self.id.clone(),
                    path: self.path.clone(),
                    source: e,
                }
            }
        })
    }

    /// Release the lock (`rmdir`).
    ///
    /// # Errors
    /// The directory could not be removed (other than already gone).
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        match fs::remove_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LockError::Io {
                id: self.id.clone(),
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Drop for CfsLock {
    fn drop(&mut self) {
        if !self.released {
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// The lock exists: on pmxcfs send an unlock request; on a plain directory take over a lock
/// older than the lifetime. Failures are ignored (the next `mkdir` decides).
fn expire_or_request(path: &Path, opts: &LockOptions) {
    match opts.expiry {
        ExpiryMode::Pmxcfs => {
            let _ = set_mtime(path, SystemTime::UNIX_EPOCH);
        }
        ExpiryMode::Mtime => {
            let stale = fs::metadata(path.join("owner"))
                .or_else(|_| fs::metadata(path))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > opts.lifetime);
            if !stale {
                return;
            }
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tomb =
                path.with_file_name(format!(".{name}.stale-{:x}{nanos:x}", std::process::id()));
            if fs::rename(path, &tomb).is_ok() {
                let _ = fs::remove_dir_all(&tomb);
            }
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
    }
}
