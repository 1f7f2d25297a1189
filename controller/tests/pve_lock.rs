//! pmxcfs cfs locks on a plain directory: acquisition, contention until the timeout,
//! refresh, expiry of a dead holder's lock, pmxcfs's unlock request (mtime 0), release; locks
//! with an owner (the corosync target's, the watch daemon's): the holder's name, takeover
//! that never lets the old holder remove its successor's lock; concurrent takeover of one
//! dead holder's lock (exactly one winner) and its takeover guard.

use pve_gitops::cfs_lock::{
    holder, lock_path, CfsLock, ExpiryMode, LockError, LockOptions, CONTROLLER_LOCK, OWNER_FILE,
};
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

const COROSYNC_LOCK: &str = "file-corosync_conf";

fn as_owner(d: &std::path::Path, id: &str, who: &str) -> Result<CfsLock, LockError> {
    CfsLock::acquire_as(d, id, who, &LockOptions::try_once(), || {})
}

#[test]
fn owned_lock_names_its_holder_until_released() {
    let d = tmp("owned");
    let a = as_owner(&d, COROSYNC_LOCK, "pve1").unwrap();
    let content = fs::read_to_string(a.path().join(OWNER_FILE)).unwrap();
    assert!(content.starts_with("pve1 pid "), "{content}");
    match as_owner(&d, COROSYNC_LOCK, "pve2") {
        Err(LockError::Timeout { held, .. }) => assert_eq!(held.holder, "pve1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(holder(&d, COROSYNC_LOCK).unwrap().holder, "pve1");
    assert!(a.still_held());
    drop(a);
    assert!(holder(&d, COROSYNC_LOCK).is_none());
    let b = as_owner(&d, COROSYNC_LOCK, "pve2").unwrap();
    assert!(b.path().ends_with("priv/lock/file-corosync_conf"));
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn stale_owned_lock_is_taken_over_and_the_old_holder_keeps_off() {
    let d = tmp("owned-stale");
    let a = as_owner(&d, COROSYNC_LOCK, "pve1").unwrap();
    fs::File::options()
        .write(true)
        .open(a.path().join(OWNER_FILE))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(121))
        .unwrap();
    let b = as_owner(&d, COROSYNC_LOCK, "pve2").unwrap();
    assert!(!a.still_held());
    assert!(matches!(a.refresh(), Err(LockError::Lost { .. })));
    drop(a); // must not remove b's lock
    assert!(b.still_held());
    assert_eq!(holder(&d, COROSYNC_LOCK).unwrap().holder, "pve2");
    // A refresh keeps an owned lock alive through its owner file.
    fs::File::options()
        .write(true)
        .open(b.path().join(OWNER_FILE))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(121))
        .unwrap();
    b.refresh().unwrap();
    assert!(as_owner(&d, COROSYNC_LOCK, "pve3").is_err());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn acquire_as_waits_then_gives_up() {
    let d = tmp("owned-wait");
    let _a = as_owner(&d, COROSYNC_LOCK, "pve1").unwrap();
    let mut calls = 0;
    let r = CfsLock::acquire_as(&d, COROSYNC_LOCK, "pve2", &fast(ExpiryMode::Mtime), || {
        calls += 1
    });
    assert!(matches!(r, Err(LockError::Timeout { .. })), "{r:?}");
    assert!(calls >= 1);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn controller_lock_one_holder_at_a_time_and_legacy_holder_file() {
    let root = tmp("controller");
    let a = as_owner(&root, CONTROLLER_LOCK, "a").unwrap();
    match as_owner(&root, CONTROLLER_LOCK, "b") {
        Err(LockError::Timeout { held, .. }) => assert_eq!(held.holder, "a"),
        other => panic!("{other:?}"),
    }
    drop(a);
    assert!(!lock_path(&root, CONTROLLER_LOCK).exists());
    drop(as_owner(&root, CONTROLLER_LOCK, "b").unwrap());
    // The `holder` file of earlier daemons names the holder too; a stale one is taken over.
    let dir = lock_path(&root, CONTROLLER_LOCK);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("holder"), "dead\n").unwrap();
    assert_eq!(holder(&root, CONTROLLER_LOCK).unwrap().holder, "dead");
    assert!(as_owner(&root, CONTROLLER_LOCK, "c").is_err());
    let old = SystemTime::now() - Duration::from_secs(125);
    for p in [dir.join("holder"), dir.clone()] {
        set_mtime(&p, old);
    }
    let c = as_owner(&root, CONTROLLER_LOCK, "c").unwrap();
    assert_eq!(holder(&root, CONTROLLER_LOCK).unwrap().holder, "c");
    drop(c);
    let _ = fs::remove_dir_all(&root);
}

/// Contenders that find the same dead holder's lock at the same instant: exactly one of them
/// takes it over (none removes the lock a faster contender has just taken).
#[test]
fn concurrent_takeover_of_a_stale_lock_has_one_winner() {
    use std::sync::{Arc, Barrier};
    const CONTENDERS: usize = 8;
    let d = tmp("takeover-race");
    for round in 0..1000 {
        let dir = lock_path(&d, COROSYNC_LOCK);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(OWNER_FILE), "dead pid 1 token x\n").unwrap();
        set_mtime(
            &dir.join(OWNER_FILE),
            SystemTime::now() - Duration::from_secs(200),
        );
        let start = Arc::new(Barrier::new(CONTENDERS));
        let done = Arc::new(Barrier::new(CONTENDERS));
        let handles: Vec<_> = (0..CONTENDERS)
            .map(|i| {
                let (d, start, done) = (d.clone(), start.clone(), done.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let got = as_owner(&d, COROSYNC_LOCK, &format!("pve{i}"));
                    // Hold it until every contender has tried.
                    done.wait();
                    got.is_ok()
                })
            })
            .collect();
        let winners = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&took| took)
            .count();
        assert_eq!(
            winners, 1,
            "round {round}: {winners} contenders took the lock"
        );
        assert!(
            holder(&d, COROSYNC_LOCK).is_none(),
            "round {round}: not released"
        );
    }
    let _ = fs::remove_dir_all(&d);
}

/// The takeover guard: while another waiter holds it, a stale lock is left alone; a guard left
/// by a waiter that died during its takeover expires like a lock.
#[test]
fn stale_lock_is_taken_over_only_by_the_guard_holder() {
    let d = tmp("takeover-guard");
    let dir = lock_path(&d, COROSYNC_LOCK);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(OWNER_FILE), "dead pid 1 token x\n").unwrap();
    let old = SystemTime::now() - Duration::from_secs(200);
    set_mtime(&dir.join(OWNER_FILE), old);
    let guard = dir.with_file_name(format!(".{COROSYNC_LOCK}.takeover"));
    fs::create_dir(&guard).unwrap();
    match as_owner(&d, COROSYNC_LOCK, "pve2") {
        Err(LockError::Timeout { held, .. }) => assert_eq!(held.holder, "dead"),
        other => panic!("taken over under another waiter's guard: {other:?}"),
    }
    assert_eq!(holder(&d, COROSYNC_LOCK).unwrap().holder, "dead");
    // The guard's waiter died: after the lifetime its guard is removed and the lock taken.
    set_mtime(&guard, old);
    let b = as_owner(&d, COROSYNC_LOCK, "pve2").unwrap();
    assert_eq!(holder(&d, COROSYNC_LOCK).unwrap().holder, "pve2");
    assert!(!guard.exists(), "the takeover guard is released");
    drop(b);
    let _ = fs::remove_dir_all(&d);
}
