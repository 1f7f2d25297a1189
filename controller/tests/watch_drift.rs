//! Drift: a hand edit of the sim's corosync.conf is detected and corrected on resync (or by
//! the live-file watch), and only reported with `--drift report`; the daemon's own writes
//! trigger nothing; `suspend` stops applying but keeps reporting.

mod watch_common;

use pve_gitops::daemon::DriftPolicy;
use pve_gitops::status::{self as st, kind};
use std::time::Duration;
use watch_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edit_is_corrected_on_resync() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("drift-resync");
    let c = repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.watch_target = false;
    cfg.interval = Duration::from_millis(700);
    let d = start(cfg).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c)).await;
    hand_edit_votes(&sim, "tre", 2);
    assert!(!in_sync(&sim, THREE_NODE));
    let s = wait_status(&state, 20, "drift corrected", |s| {
        s.history
            .first()
            .is_some_and(|h| h.message.contains("drift corrected"))
    })
    .await;
    assert!(s.is_ready());
    assert!(in_sync(&sim, THREE_NODE), "corrected");
    assert_eq!(s.observed_config_version, Some(4));
    assert!(d
        .registry
        .encode()
        .contains("pve_gitops_drift_detected_total 1"));
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edit_is_seen_by_the_file_watch_and_own_writes_are_ignored() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("drift-watch");
    let c = repo.commit("cluster.yaml", THREE_NODE);
    let d = start(git_config(&repo, &sim, &state)).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c)).await;
    // Our own writes (corosync.conf, datacenter.cfg, the sim's state file) must not cause
    // reconciles: the count stays put while the daemon idles.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = reconciles(&d);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(reconciles(&d), idle, "no self-triggered reconciles");

    hand_edit_votes(&sim, "due", 3);
    let s = wait_status(&state, 10, "drift corrected", |s| {
        s.history
            .first()
            .is_some_and(|h| h.message.contains("drift corrected"))
    })
    .await;
    assert!(s.is_ready());
    assert!(in_sync(&sim, THREE_NODE));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = reconciles(&d);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        reconciles(&d),
        after,
        "the correction did not trigger another run"
    );
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_only_reports_drift_but_applies_new_revisions() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("drift-report");
    let c = repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.drift = DriftPolicy::Report;
    cfg.interval = Duration::from_millis(700);
    let d = start(cfg).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c)).await;
    hand_edit_votes(&sim, "tre", 2);
    let edited = corosync_conf(&sim);
    let s = wait_status(&state, 20, "drift reported", |s| {
        st::Status::condition(s, kind::READY).is_some_and(|c| c.reason == "DriftDetected")
    })
    .await;
    assert!(!s.drift.is_empty(), "{s:#?}");
    assert!(s.drift[0].contains("quorum_votes"), "{:?}", s.drift);
    // Resyncs keep reporting and never apply.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        corosync_conf(&sim),
        edited,
        "report mode changed the cluster"
    );
    assert!(d.registry.encode().contains("pve_gitops_in_sync 0"));

    // A new revision is applied (and with it the drift goes away).
    let m2 = with_token_coefficient(150);
    let c2 = repo.commit("cluster.yaml", &m2);
    let s = wait_status(&state, 20, "new revision applied", |s| ready_at(s, &c2)).await;
    assert!(s.drift.is_empty());
    assert!(in_sync(&sim, &m2));
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_daemon_reports_but_does_not_apply_until_resumed() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("suspend");
    let c = repo.commit("cluster.yaml", THREE_NODE);
    let d = start(git_config(&repo, &sim, &state)).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c)).await;
    st::suspend(&state, Some("maintenance")).unwrap();
    wait_status(&state, 10, "suspended", |s| s.suspended).await;
    let m2 = with_token_coefficient(150);
    let c2 = repo.commit("cluster.yaml", &m2);
    let s = wait_status(&state, 20, "pending change reported", |s| {
        reason(s, kind::READY).as_deref() == Some("Suspended")
    })
    .await;
    assert!(s.condition(kind::READY).unwrap().message.contains(&c2));
    assert!(!s.drift.is_empty());
    assert!(
        corosync_conf(&sim).contains("token_coefficient: 125"),
        "nothing applied"
    );
    assert!(s.last_applied_revision.as_deref().unwrap().ends_with(&c));
    st::resume(&state).unwrap();
    wait_status(&state, 10, "applied after resume", |s| ready_at(s, &c2)).await;
    assert!(in_sync(&sim, &m2));
    d.stop().await.unwrap();
}
