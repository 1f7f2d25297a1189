//! `watch` with a git source: push → applied; an invalid manifest → Stalled with the last good
//! state kept, then a fix → Ready; a force-push to an older commit is refused without
//! --allow-rewind and applied with it; credentials never appear in the status; signatures.

mod watch_common;

use pve_gitops::status::kind;
use std::time::Duration;
use watch_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_applied_then_next_push_too() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("push");
    let c1 = repo.commit("cluster.yaml", THREE_NODE);
    let d = start(git_config(&repo, &sim, &state)).await;
    let s = wait_status(&state, 20, "first revision Ready", |s| ready_at(s, &c1)).await;
    assert_eq!(s.observed_config_version, Some(3));
    assert_eq!(s.history[0].steps_applied, 4);
    assert!(in_sync(&sim, THREE_NODE));

    let m2 = with_token_coefficient(150);
    let c2 = repo.commit("cluster.yaml", &m2);
    let s = wait_status(&state, 20, "second revision Ready", |s| ready_at(s, &c2)).await;
    assert!(corosync_conf(&sim).contains("token_coefficient: 150"));
    assert_eq!(s.observed_config_version, Some(4));
    assert_eq!(s.history.len(), 2, "{:#?}", s.history);
    assert!(in_sync(&sim, &m2));

    // Quiet polls write nothing: the status file stays byte-identical.
    let before = std::fs::read_to_string(state.join("status.json")).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        std::fs::read_to_string(state.join("status.json")).unwrap(),
        before
    );
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifest_is_stalled_and_keeps_the_last_good_state_then_fix_is_ready() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("bad");
    let good = repo.commit("cluster.yaml", THREE_NODE);
    let d = start(git_config(&repo, &sim, &state)).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &good)).await;
    let conf_before = corosync_conf(&sim);

    let broken = THREE_NODE.replace("nodeid: 2", "nodeid: 1");
    let bad = repo.commit("cluster.yaml", &broken);
    let s = wait_status(&state, 20, "Stalled", |s| {
        s.condition(kind::STALLED).is_some()
            && s.last_attempted_revision
                .as_deref()
                .is_some_and(|r| r.ends_with(&bad))
    })
    .await;
    assert_eq!(
        reason(&s, kind::STALLED).as_deref(),
        Some("ValidationFailed")
    );
    assert!(!s.is_ready());
    let msg = &s.condition(kind::READY).unwrap().message;
    assert!(msg.contains("cluster.yaml:"), "located error: {msg}");
    assert!(
        msg.contains(&good),
        "says the good revision stays applied: {msg}"
    );
    assert!(s.last_applied_revision.as_deref().unwrap().ends_with(&good));
    assert_eq!(s.history[0].result, "invalid");
    // No retry storm: the stalled revision is not retried (history and file stay put).
    let before = std::fs::read_to_string(state.join("status.json")).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        std::fs::read_to_string(state.join("status.json")).unwrap(),
        before
    );
    assert_eq!(corosync_conf(&sim), conf_before, "nothing applied");

    let fixed = with_token_coefficient(140);
    let fix = repo.commit("cluster.yaml", &fixed);
    let s = wait_status(&state, 20, "Ready after the fix", |s| ready_at(s, &fix)).await;
    assert!(s.condition(kind::STALLED).is_none());
    assert!(corosync_conf(&sim).contains("token_coefficient: 140"));
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_push_to_an_older_commit_is_refused_without_allow_rewind() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("rewind");
    let old = repo.commit("cluster.yaml", THREE_NODE);
    let d = start(git_config(&repo, &sim, &state)).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &old)).await;
    let new = repo.commit("cluster.yaml", &with_token_coefficient(150));
    wait_status(&state, 20, "Ready at the new commit", |s| ready_at(s, &new)).await;

    repo.force_push(&old);
    let s = wait_status(&state, 20, "rewind refused", |s| {
        s.condition(kind::STALLED).is_some()
    })
    .await;
    assert_eq!(
        reason(&s, kind::STALLED).as_deref(),
        Some("RevisionNotDescendant")
    );
    assert!(s.last_applied_revision.as_deref().unwrap().ends_with(&new));
    assert!(corosync_conf(&sim).contains("token_coefficient: 150"));
    d.stop().await.unwrap();

    // A deleted branch: nothing is applied, the error says so.
    git(&repo.bare, &["update-ref", "-d", "refs/heads/main"]);
    let d = start(git_config(&repo, &sim, &state)).await;
    let s = wait_status(&state, 20, "branch missing", |s| {
        reason(s, kind::READY).as_deref() == Some("BranchNotFound")
    })
    .await;
    assert!(s.last_applied_revision.as_deref().unwrap().ends_with(&new));
    d.stop().await.unwrap();
    repo.force_push(&old);

    // The operator asks for the rewind.
    let mut cfg = git_config(&repo, &sim, &state);
    if let pve_gitops::daemon::SourceSpec::Git(g) = &mut cfg.source {
        g.allow_rewind = true;
    }
    let d = start(cfg).await;
    wait_status(&state, 20, "rewound", |s| ready_at(s, &old)).await;
    assert!(corosync_conf(&sim).contains("token_coefficient: 125"));
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_status() {
    let tmp = Tmp::new("creds");
    let sim = tmp.path().join("sim");
    let state = tmp.path().join("state");
    sim_init(&sim, THREE_NODE);
    let mut g = pve_gitops::source::git::GitSource::new(
        "git+https://robot:s3cr3t-t0ken@127.0.0.1:9/org/repo.git?private_token=s3cr3t-t0ken",
        "main",
        ".",
        &state,
    )
    .unwrap();
    g.https_token = Some(pve_gitops::source::Secret::new("an0ther-s3cr3t"));
    let cfg = test_config(pve_gitops::daemon::SourceSpec::Git(g), &sim, &state);
    let d = start(cfg).await;
    let s = wait_status(&state, 20, "fetch failure", |s| {
        reason(s, kind::READY).as_deref() == Some("FetchFailed")
    })
    .await;
    d.stop().await.unwrap();
    let text = std::fs::read_to_string(state.join("status.json")).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!text.contains("robot"), "{text}");
    assert!(!text.contains("an0ther"), "{text}");
    assert!(text.contains("https://127.0.0.1:9/org/repo.git"), "{text}");
    assert!(s.source.contains("https://127.0.0.1:9/org/repo.git"));
}

fn ssh_keygen(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success());
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_verification_refuses_unsigned_and_unknown_signers() {
    if std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_err()
    {
        eprintln!("ssh-keygen not available; skipping");
        return;
    }
    let World {
        tmp,
        repo,
        sim,
        state,
    } = World::new("sig");
    let trusted = ssh_keygen(tmp.path(), "trusted");
    let stranger = ssh_keygen(tmp.path(), "stranger");
    let pubkey = std::fs::read_to_string(trusted.with_extension("pub")).unwrap();
    let allowed = tmp.path().join("allowed_signers");
    std::fs::write(&allowed, format!("test@example.invalid {pubkey}")).unwrap();
    let sign_with = |key: &std::path::Path| {
        vec![
            "-c".to_string(),
            "gpg.format=ssh".to_string(),
            "-c".to_string(),
            format!("user.signingkey={}", key.display()),
        ]
    };
    let mut cfg = git_config(&repo, &sim, &state);
    if let pve_gitops::daemon::SourceSpec::Git(g) = &mut cfg.source {
        g.verify = Some(pve_gitops::source::git::Verify {
            allowed_signers: allowed.clone(),
            gpg_home: None,
        });
    }
    let unsigned = repo.commit("cluster.yaml", THREE_NODE);
    let d = start(cfg).await;
    let s = wait_status(&state, 20, "unsigned refused", |s| {
        s.condition(kind::STALLED).is_some()
    })
    .await;
    assert_eq!(
        reason(&s, kind::STALLED).as_deref(),
        Some("VerificationFailed")
    );
    assert!(s
        .condition(kind::STALLED)
        .unwrap()
        .message
        .contains("not signed"));
    assert!(s
        .last_attempted_revision
        .as_deref()
        .unwrap()
        .ends_with(&unsigned));
    assert!(corosync_conf(&sim).is_empty(), "nothing applied");

    let args = sign_with(&stranger);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut a = args.clone();
    a.push("-c");
    a.push("commit.gpgsign=true");
    let strange = repo.commit_with("cluster.yaml", &with_token_coefficient(130), &a);
    let s = wait_status(&state, 20, "unknown signer refused", |s| {
        s.last_attempted_revision
            .as_deref()
            .is_some_and(|r| r.ends_with(&strange))
            && s.condition(kind::STALLED).is_some()
    })
    .await;
    assert!(
        s.condition(kind::STALLED)
            .unwrap()
            .message
            .contains("allowed signer"),
        "{s:#?}"
    );
    assert!(corosync_conf(&sim).is_empty(), "nothing applied");

    let args = sign_with(&trusted);
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.push("-c");
    a.push("commit.gpgsign=true");
    let good = repo.commit_with("cluster.yaml", &with_token_coefficient(140), &a);
    wait_status(&state, 20, "signed commit applied", |s| ready_at(s, &good)).await;
    d.stop().await.unwrap();
}
