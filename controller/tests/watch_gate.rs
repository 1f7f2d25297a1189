//! `wait` gates: the daemon stops at a gate (Ready=False WaitingForGate, the gate in
//! `pending_gates`), re-checks it every `--gate-interval`, and finishes once the operator did
//! what the gate asks.

mod watch_common;

use pve_gitops::status::kind;
use std::time::Duration;
use watch_common::*;

fn remove_tre() -> String {
    let i = THREE_NODE.find("name: tre").unwrap();
    let j = i
        + THREE_NODE[i..].find("addresses: [10.1.2.3/24]").unwrap()
        + "addresses: [10.1.2.3/24]".len();
    format!(
        "{}\n      state: absent{}",
        &THREE_NODE[..j],
        &THREE_NODE[j..]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_is_rechecked_until_satisfied() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("gate");
    let c1 = repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.watch_target = false; // only the gate interval re-checks
    let d = start(cfg).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c1)).await;

    let c2 = repo.commit("cluster.yaml", &remove_tre());
    let s = wait_status(&state, 20, "waiting at the gate", |s| {
        reason(s, kind::READY).as_deref() == Some("WaitingForGate")
    })
    .await;
    assert!(
        s.pending_gates.iter().any(|g| g.contains("power off tre")),
        "{:?}",
        s.pending_gates
    );
    assert_eq!(
        reason(&s, kind::RECONCILING).as_deref(),
        Some("WaitingForGate")
    );
    assert!(s.last_attempted_revision.as_deref().unwrap().ends_with(&c2));
    assert_eq!(s.history[0].result, "waiting");
    // Re-checks do not rewrite the status while nothing changes.
    let before = std::fs::read_to_string(state.join("status.json")).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        std::fs::read_to_string(state.join("status.json")).unwrap(),
        before
    );

    pve_gitops::target::sim::set_power(&sim, "tre", false).unwrap();
    let s = wait_status(&state, 20, "Ready after the gate", |s| ready_at(s, &c2)).await;
    assert!(s.pending_gates.is_empty());
    assert!(s.condition(kind::RECONCILING).is_none());
    assert!(!corosync_conf(&sim).contains("name: tre"));
    d.stop().await.unwrap();
}
