//! pmxcfs cluster-wide lock ids (`PVE::Cluster::cfs_lock_*`, domain §4.5).

/// Directory of the cluster-wide locks, relative to the pmxcfs root.
pub const LOCK_DIR: &str = "priv/lock";

/// Seconds after which pmxcfs removes a lock on an unlock request (`CFS_LOCK_TIMEOUT`).
pub const CFS_LOCK_TIMEOUT_SECS: u64 = 120;

/// The lock id `cfs_lock_file` uses for `file`: `file-<file>` with every `.` and `/`
/// replaced by `_` (`corosync.conf` → `file-corosync_conf`).
pub fn lock_id_for_file(file: &str) -> String {
    format!("file-{file}").replace(['.', '/'], "_")
}

/// The lock id of `cfs_lock_storage`: `storage-<id>`.
pub fn lock_id_for_storage(storage: &str) -> String {
    format!("storage-{storage}")
}

/// The lock directory of `lock_id`, relative to the pmxcfs root: `priv/lock/<id>`.
pub fn lock_path(lock_id: &str) -> String {
    format!("{LOCK_DIR}/{lock_id}")
}
