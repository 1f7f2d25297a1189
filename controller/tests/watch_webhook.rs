//! The webhook receiver over real HTTP on 127.0.0.1:0: a good signature triggers a reconcile
//! at once (polling is off), a bad or missing one gets 401 and triggers nothing, an oversized
//! body gets 413; HTTPS with rustls; plain HTTP is refused off loopback. Also /metrics.

mod watch_common;

use pve_gitops::daemon::{Daemon, DaemonError};
use pve_gitops::source::Secret;
use pve_gitops::webhook::{sign, TlsFiles, WebhookConfig, MAX_BODY};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use watch_common::*;

const SECRET: &str = "webhook-s3cret";

fn webhook(listen: &str, tls: Option<TlsFiles>) -> WebhookConfig {
    WebhookConfig {
        listen: listen.parse().unwrap(),
        tls: tls.clone(),
        insecure_http: tls.is_none(),
        secret: Secret::new(SECRET),
        branch: Some("main".into()),
        max_body: MAX_BODY,
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    exchange(s, path, headers, body).await.0
}

fn push_body(branch: &str) -> Vec<u8> {
    format!(r#"{{"ref":"refs/heads/{branch}","after":"0000"}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_push_triggers_and_bad_signatures_do_not() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("webhook");
    let c1 = repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.poll_interval = Duration::from_secs(3600);
    cfg.webhook = Some(webhook("127.0.0.1:0", None));
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let d = start(cfg).await;
    let addr = d.webhook.unwrap();
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c1)).await;

    let c2 = repo.commit("cluster.yaml", &with_token_coefficient(150));
    let secret = Secret::new(SECRET);
    let body = push_body("main");
    let gh = |sig: String| {
        vec![
            ("X-GitHub-Event", "push".to_string()),
            ("X-Hub-Signature-256", sig),
        ]
    };

    // Missing, wrong, and signature-of-another-body: 401, nothing happens.
    assert_eq!(
        post(
            addr,
            "/hook/github",
            &[("X-GitHub-Event", "push".into())],
            &body
        )
        .await,
        401
    );
    let wrong = sign(&Secret::new("not-the-secret"), &body);
    assert_eq!(post(addr, "/hook/github", &gh(wrong), &body).await, 401);
    let other = sign(&secret, b"something else");
    assert_eq!(
        post(addr, "/hook/github", &gh(other.clone()), &body).await,
        401
    );
    assert_eq!(
        post(addr, "/hook/generic", &[("X-Signature", other)], &body).await,
        401
    );
    // Too large: 413 (announced by Content-Length).
    let big = vec![b' '; MAX_BODY + 1];
    assert_eq!(
        post(addr, "/hook/generic", &gh(sign(&secret, &big)), &big).await,
        413
    );
    // Valid but not for us: another branch, a ping.
    let other_branch = push_body("feature");
    assert_eq!(
        post(
            addr,
            "/hook/github",
            &gh(sign(&secret, &other_branch)),
            &other_branch
        )
        .await,
        200
    );
    let ping = b"{}".to_vec();
    let ping_headers = vec![
        ("X-GitHub-Event", "ping".to_string()),
        ("X-Hub-Signature-256", sign(&secret, &ping)),
    ];
    assert_eq!(post(addr, "/hook/github", &ping_headers, &ping).await, 200);
    assert_eq!(post(addr, "/nope", &[], b"").await, 404);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let s = pve_gitops::status::load(&state).unwrap().unwrap();
    assert!(
        s.last_applied_revision.as_deref().unwrap().ends_with(&c1),
        "nothing triggered"
    );

    // A good signature: applied without waiting for a poll.
    assert_eq!(
        post(addr, "/hook/github", &gh(sign(&secret, &body)), &body).await,
        202
    );
    wait_status(&state, 10, "applied after the webhook", |s| {
        ready_at(s, &c2)
    })
    .await;

    // The generic endpoint (Gitea-style header too).
    let c3 = repo.commit("cluster.yaml", &with_token_coefficient(160));
    let any = br#"{"hello":"world"}"#.to_vec();
    assert_eq!(
        post(
            addr,
            "/hook/generic",
            &[("X-Signature-256", sign(&secret, &any))],
            &any
        )
        .await,
        202
    );
    wait_status(&state, 10, "applied after the generic webhook", |s| {
        ready_at(s, &c3)
    })
    .await;

    // Metrics over HTTP.
    let m = tokio::net::TcpStream::connect(d.metrics.unwrap())
        .await
        .unwrap();
    let (_, text) = get(m, "/metrics").await;
    assert!(text.contains("pve_gitops_in_sync 1"), "{text}");
    assert!(
        text.contains("pve_gitops_steps_applied_total{kind=\"update_corosync\"} 2"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
    d.stop().await.unwrap();
}

async fn get<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    (
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        text,
    )
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let World {
        tmp: _tmp,
        repo,
        sim,
        state,
    } = World::new("webhook-plain");
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.webhook = Some(webhook("0.0.0.0:0", None));
    match Daemon::bind(cfg).await {
        Err(DaemonError::Config(m)) => assert!(m.contains("loopback"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_rustls() {
    let World {
        tmp,
        repo,
        sim,
        state,
    } = World::new("webhook-tls");
    let cert = tmp.path().join("cert.pem");
    let key = tmp.path().join("key.pem");
    let ca = tmp.path().join("ca.pem");
    if !make_certs(tmp.path(), &ca, &cert, &key) {
        eprintln!("openssl not available; skipping");
        return;
    }
    let c1 = repo.commit("cluster.yaml", THREE_NODE);
    let mut cfg = git_config(&repo, &sim, &state);
    cfg.poll_interval = Duration::from_secs(3600);
    cfg.webhook = Some(webhook(
        "127.0.0.1:0",
        Some(TlsFiles {
            cert: cert.clone(),
            key,
        }),
    ));
    let d = start(cfg).await;
    wait_status(&state, 20, "Ready", |s| ready_at(s, &c1)).await;
    let c2 = repo.commit("cluster.yaml", &with_token_coefficient(150));

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let body = push_body("main");
    let headers = vec![
        ("X-GitHub-Event", "push".to_string()),
        ("X-Hub-Signature-256", sign(&Secret::new(SECRET), &body)),
    ];
    let tcp = tokio::net::TcpStream::connect(d.webhook.unwrap())
        .await
        .unwrap();
    let tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (code, _) = exchange(tls, "/hook/github", &headers, &body).await;
    assert_eq!(code, 202);
    wait_status(&state, 10, "applied after the HTTPS webhook", |s| {
        ready_at(s, &c2)
    })
    .await;
    // Plain HTTP to the TLS port gets nothing useful.
    let plain = tokio::net::TcpStream::connect(d.webhook.unwrap())
        .await
        .unwrap();
    let (code, _) = exchange(plain, "/hook/github", &headers, &body).await;
    assert_ne!(code, 202);
    d.stop().await.unwrap();
}

/// A CA and a `localhost` leaf certificate signed by it (openssl CLI, argument vectors).
fn make_certs(
    dir: &std::path::Path,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> bool {
    let ca_key = dir.join("ca.key");
    let csr = dir.join("leaf.csr");
    let ext = dir.join("leaf.ext");
    if std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .is_err()
    {
        return false;
    }
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let run = |args: Vec<&std::ffi::OsStr>| {
        std::process::Command::new("openssl")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let mut a: Vec<&std::ffi::OsStr> = vec![os("req"), os("-x509")];
    a.extend(ec.iter().map(|s| os(s)));
    a.extend([
        os("-days"),
        os("1"),
        os("-subj"),
        os("/CN=pve-gitops test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]);
    if !run(a) {
        return false;
    }
    let mut a: Vec<&std::ffi::OsStr> = vec![os("req")];
    a.extend(ec.iter().map(|s| os(s)));
    a.extend([
        os("-subj"),
        os("/CN=localhost"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]);
    if !run(a) {
        return false;
    }
    run(vec![
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("1"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ])
}
