//! pmxcfs cfs locks on a plain directory: acquisition, contention until the timeout,
//! refresh, expiry of a dead holder's lock, pmxcfs's unlock request (mtime 0), release.

use pve_gitops::cfs_lock::{CfsLock, ExpiryMode, LockError, LockOptions};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pve-gitops-cfslock-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn fast(expiry: ExpiryMode) -> LockOptions {
    LockOptions {
        timeout: Duration::from_millis(150),
        lifetime: Duration::from_secs(120),
        poll: Duration::from_millis(10),
        expiry,
    }
}

fn mtime(p: &std::path::Path) -> SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

fn set_mtime(p: &std::path::Path, t: SystemTime) {
    fs::File::open(p).unwrap().set_modified(t).unwrap();
}

#[test]
fn exclusive_until_released() {
    let d = tmp("excl");
    let a = CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).unwrap();
    assert!(a.path().ends_with("priv/lock/file-corosync_conf"));
    assert!(a.path().is_dir());
    let start = Instant::now();
    match CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)) {
        Err(e @ LockError::Timeout { .. }) => assert!(e
            .to_string()
            .starts_with("cfs-lock 'file-corosync_conf' error: got lock request timeout")),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(150));
    // Another id is independent.
    let other = CfsLock::acquire(&d, "file-datacenter_cfg", &fast(ExpiryMode::Mtime)).unwrap();
    a.release().unwrap();
    assert!(!d.join("priv/lock/file-corosync_conf").exists());
    let b = CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).unwrap();
    drop(b);
    drop(other);
    assert!(fs::read_dir(d.join("priv/lock")).unwrap().next().is_none());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn refresh_extends_and_expiry_takes_over() {
    let d = tmp("expiry");
    let a = CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).unwrap();
    // Looks dead: last refreshed 121 s ago.
    set_mtime(a.path(), SystemTime::now() - Duration::from_secs(121));
    // A refresh brings it back to life: a waiter times out.
    a.refresh().unwrap();
    assert!(mtime(a.path()) > SystemTime::now() - Duration::from_secs(5));
    assert!(CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).is_err());
    // Not refreshed for longer than the lifetime: taken over.
    set_mtime(a.path(), SystemTime::now() - Duration::from_secs(121));
    let b = CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).unwrap();
    assert!(b.path().is_dir());
    // The old holder's refresh now touches the new holder's directory only if it still
    // exists under the same name; its release must not fail.
    drop(a);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn a_lock_with_an_owner_file_ages_by_that_file() {
    // The corosync target's lock keeps an `owner` file it rewrites on refresh.
    let d = tmp("owner");
    let dir = d.join("priv/lock/file-corosync_conf");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("owner"), "pve2 pid 1 token x\n").unwrap();
    set_mtime(&dir, SystemTime::now() - Duration::from_secs(500));
    assert!(
        CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).is_err(),
        "a fresh owner file keeps the lock alive"
    );
    fs::File::options()
        .write(true)
        .open(dir.join("owner"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(500))
        .unwrap();
    let l = CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).unwrap();
    assert!(!l.path().join("owner").exists());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn pmxcfs_mode_sends_unlock_requests_and_never_removes() {
    let d = tmp("pmxcfs");
    let dir = d.join("priv/lock/file-datacenter_cfg");
    fs::create_dir_all(&dir).unwrap();
    set_mtime(&dir, SystemTime::now() - Duration::from_secs(500));
    // On pmxcfs the waiter only asks (mtime 0); pmxcfs itself removes expired locks.
    assert!(CfsLock::acquire(&d, "file-datacenter_cfg", &fast(ExpiryMode::Pmxcfs)).is_err());
    assert!(dir.is_dir());
    assert_eq!(mtime(&dir), SystemTime::UNIX_EPOCH);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn missing_filesystem_is_not_online() {
    let d = tmp("offline");
    fs::write(d.join("priv"), "a file where the directory should be").unwrap();
    match CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Pmxcfs)) {
        Err(e @ LockError::NotOnline { .. }) => {
            assert!(e.to_string().contains("pve cluster filesystem not online"))
        }
        other => panic!("{other:?}"),
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn refresh_after_loss_reports_lost() {
    let d = tmp("lost");
    let a = CfsLock::acquire(&d, "file-corosync_conf", &fast(ExpiryMode::Mtime)).unwrap();
    fs::remove_dir(a.path()).unwrap();
    assert!(matches!(a.refresh(), Err(LockError::Lost { .. })));
    a.release().unwrap();
    let _ = fs::remove_dir_all(&d);
}
