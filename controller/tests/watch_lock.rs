//! Two daemons on one sim cluster apply each cluster-wide step once (the cluster lock
//! `priv/lock/pve-gitops`); a shutdown during apply stops between steps and leaves no
//! half-written file and a consistent tree; a second signal aborts at once.

mod watch_common;

use pve_gitops::cfs_lock::{lock_path, CONTROLLER_LOCK};
use pve_gitops::daemon::{Daemon, DaemonError};
use pve_gitops::status::kind;
use std::time::Duration;
use watch_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_apply_each_step_once() {
    let World { tmp, repo, sim, .. } = World::new("two");
    let (sa, sb) = (tmp.path().join("state-a"), tmp.path().join("state-b"));
    let c = repo.commit("cluster.yaml", THREE_NODE);
    let mut ca = git_config(&repo, &sim, &sa);
    let mut cb = git_config(&repo, &sim, &sb);
    ca.step_pause = Duration::from_millis(80);
    cb.step_pause = Duration::from_millis(80);
    ca.holder = "node-a".into();
    cb.holder = "node-b".into();
    let (a, b) = tokio::join!(start(ca), start(cb));
    let s_a = wait_status(&sa, 30, "A Ready", |s| ready_at(s, &c)).await;
    let s_b = wait_status(&sb, 30, "B Ready", |s| ready_at(s, &c)).await;
    let steps =
        |s: &pve_gitops::status::Status| s.history.iter().map(|h| h.steps_applied).sum::<usize>();
    assert_eq!(
        steps(&s_a) + steps(&s_b),
        4,
        "create + 2 joins + datacenter.cfg, once in total\nA: {:#?}\nB: {:#?}",
        s_a.history,
        s_b.history
    );
    assert_eq!(
        s_a.observed_config_version.max(s_b.observed_config_version),
        Some(3)
    );
    assert!(in_sync(&sim, THREE_NODE));
    let locked = |r: &Running| r.registry.encode().contains("result=\"locked\"");
    assert!(
        locked(&a) || locked(&b),
        "one daemon waited for the other's lock"
    );
    // A change is applied once too.
    let m2 = with_token_coefficient(150);
    let c2 = repo.commit("cluster.yaml", &m2);
    wait_status(&sa, 30, "A Ready 2", |s| ready_at(s, &c2)).await;
    wait_status(&sb, 30, "B Ready 2", |s| ready_at(s, &c2)).await;
    let conf = corosync_conf(&sim);
    assert!(
        conf.contains("config_version: 4"),
        "one update, one bump:\n{conf}"
    );
    assert!(!lock_path(&sim, CONTROLLER_LOCK).exists(), "lock released");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_apply_stops_between_steps() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("shutdown");
    let c = repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.step_pause = Duration::from_millis(400);
    let d = start(cfg.clone()).await;
    // Wait until the first step (create the cluster) is done, then ask for shutdown.
    wait_for_file(&sim.join("corosync.conf"), 20, "first step never ran").await;
    d.stop().await.unwrap();
    let s = pve_gitops::status::load(&state).unwrap().unwrap();
    assert_eq!(s.history[0].result, "cancelled", "{:#?}", s.history);
    assert_eq!(s.history[0].steps_applied, 1);
    assert_eq!(
        reason(&s, kind::READY).as_deref(),
        Some("ReconciliationInterrupted")
    );
    assert!(
        new_files(&sim).is_empty(),
        "half-written files: {:?}",
        new_files(&sim)
    );
    assert!(new_files(&state).is_empty());
    assert!(!lock_path(&sim, CONTROLLER_LOCK).exists(), "lock released");
    assert!(!in_sync(&sim, THREE_NODE), "stopped early");
    // The tree is consistent: a restart converges.
    cfg.step_pause = Duration::ZERO;
    let d = start(cfg).await;
    let s = wait_status(&state, 20, "Ready after restart", |s| ready_at(s, &c)).await;
    assert_eq!(s.history[0].steps_applied, 3);
    assert!(in_sync(&sim, THREE_NODE));
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_aborts_at_once() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("abort");
    repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.step_pause = Duration::from_secs(3);
    let d = Daemon::bind(cfg).await.unwrap();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(d.run_until(
        async {
            let _ = first_rx.await;
        },
        async {
            let _ = second_rx.await;
        },
    ));
    wait_for_file(&sim.join("corosync.conf"), 20, "first step never ran").await;
    first_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!join.is_finished(), "graceful shutdown waits for the step");
    let t = tokio::time::Instant::now();
    second_tx.send(()).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(2), join)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(DaemonError::Aborted)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(new_files(&sim).is_empty());
}
