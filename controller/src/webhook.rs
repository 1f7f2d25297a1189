//! The webhook receiver (Flux's `Receiver`): a push from GitHub or Gitea, or any client of the
//! generic endpoint, asks the daemon to fetch and reconcile now instead of at the next poll.
//!
//! - HTTPS with rustls (`--tls-cert`, `--tls-key`, PEM; ring provider). Plain HTTP only with
//!   `--insecure-http` and only on a loopback address ([`check_listen`]).
//! - Every request must carry an HMAC-SHA256 of its body with the shared secret
//!   (`--webhook-secret-file`), hex-encoded as `sha256=HEX`: GitHub and Gitea send it as
//!   `X-Hub-Signature-256`; the generic endpoint also accepts `X-Signature-256` and
//!   `X-Signature` (Flux's `generic-hmac`). The tag is compared in constant time
//!   (`Mac::verify_slice`). A missing or wrong signature gets 401 and triggers nothing.
//! - Bodies are limited to [`MAX_BODY`] (413 above it). The secret is never logged.
//!
//! Endpoints (POST):
//!
//! | path | accepts | triggers |
//! |---|---|---|
//! | `/hook/github`, `/hook/gitea` | push events (`X-GitHub-Event` / `X-Gitea-Event: push`); `ping` answers 200 | a push to the watched branch (any push for a path source) |
//! | `/hook/generic` | any body | always |
//!
//! A triggering request gets `202 Accepted`; a valid request that triggers nothing (ping,
//! another branch, another event) gets 200 with the reason.

use crate::daemon::http::{self, Body};
use crate::source::Secret;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use sha2::Sha256;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest accepted request body (GitHub's push payloads are capped at 25 MB, but ours carry
/// nothing we read beyond `ref`; large pushes list many commits, 1 MiB is plenty).
pub const MAX_BODY: usize = 1024 * 1024;

/// TLS files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The receiver's settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// TLS (None only with `insecure_http` on loopback).
    pub tls: Option<TlsFiles>,
    /// `--insecure-http`.
    pub insecure_http: bool,
    /// The HMAC secret.
    pub secret: Secret,
    /// The watched branch (git sources): pushes to other branches trigger nothing.
    pub branch: Option<String>,
    /// Body size limit.
    pub max_body: usize,
}

/// Refuse plain HTTP unless asked for explicitly and on loopback; TLS needs cert and key.
///
/// # Errors
/// A message saying which flag is missing or why plain HTTP is refused.
pub fn check_listen(cfg: &WebhookConfig) -> Result<(), String> {
    match (&cfg.tls, cfg.insecure_http) {
        (Some(_), true) => Err("--insecure-http and --tls-cert/--tls-key exclude each other".into()),
        (Some(_), false) => Ok(()),
        (None, true) if cfg.listen.ip().is_loopback() => Ok(()),
        (None, true) => Err(format!(
            "--insecure-http is allowed only on a loopback address (127.0.0.1, ::1), not {}; \
             use --tls-cert and --tls-key",
            cfg.listen
        )),
        (None, false) => Err(
            "--webhook-listen needs --tls-cert and --tls-key (or --insecure-http on a loopback address)"
                .into(),
        ),
    }
}

/// A TLS acceptor from PEM files (rustls with the ring provider, TLS 1.2 and 1.3).
///
/// # Errors
/// The files cannot be read or parsed, or the key does not match.
pub fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "cannot read certificates from {}: {e}",
                files.cert.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "cannot read the private key from {}: {e}",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate/key {}: {e}", files.key.display()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Read the secret file.
///
/// # Errors
/// See [`Secret::from_file`].
pub fn read_secret(path: &Path) -> Result<Secret, String> {
    Secret::from_file(path)
}

/// `sha256=HEX` (or bare `HEX`) is the HMAC-SHA256 of `body` under `secret` (constant time).
pub fn signature_valid(secret: &Secret, body: &[u8], header: &str) -> bool {
    let hex = header.trim();
    let hex = hex.strip_prefix("sha256=").unwrap_or(hex);
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// `sha256=HEX` for `body` (for clients and tests).
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!(
        "sha256={}",
        crate::source::path::hex(&mac.finalize().into_bytes())
    )
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the receiver needs per request.
pub struct Receiver {
    /// Settings.
    pub cfg: WebhookConfig,
    /// Called for every request that triggers a reconcile.
    pub on_trigger: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("cfg", &self.cfg).finish()
    }
}

fn header<'a>(req: &'a Request<Incoming>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| req.headers().get(*n).and_then(|v| v.to_str().ok()))
}

/// Handle one request.
pub async fn handle(rx: Arc<Receiver>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let kind = match path.as_str() {
        "/hook/github" | "/hook/gitea" => Kind::Push,
        "/hook/generic" => Kind::Generic,
        _ => return http::text(404, "not found\n"),
    };
    if req.method() != Method::POST {
        return http::text(405, "use POST\n");
    }
    let too_big = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > rx.cfg.max_body as u64);
    if too_big {
        return http::text(413, "payload too large\n");
    }
    let sig_names: &[&str] = match kind {
        Kind::Push => &["x-hub-signature-256"],
        Kind::Generic => &["x-signature-256", "x-hub-signature-256", "x-signature"],
    };
    let signature = header(&req, sig_names).map(str::to_string);
    let event =
        header(&req, &["x-github-event", "x-gitea-event", "x-gogs-event"]).map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), rx.cfg.max_body)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return http::text(413, "payload too large\n")
        }
        Err(_) => return http::text(400, "cannot read the request body\n"),
    };
    let Some(signature) = signature else {
        tracing::warn!(path, "webhook request without a signature refused");
        return http::text(401, "missing signature\n");
    };
    if !signature_valid(&rx.cfg.secret, &body, &signature) {
        tracing::warn!(path, "webhook request with a bad signature refused");
        return http::text(401, "bad signature\n");
    }
    if kind == Kind::Push {
        match event.as_deref() {
            Some("ping") => return http::text(200, "pong\n"),
            Some("push") | None => {}
            Some(other) => return http::text(200, format!("ignored: event `{other}`\n")),
        }
        if let Some(branch) = &rx.cfg.branch {
            let pushed = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("ref").and_then(|r| r.as_str()).map(str::to_string));
            let want = format!("refs/heads/{branch}");
            if let Some(r) = pushed {
                if r != want {
                    return http::text(200, format!("ignored: push to {r}\n"));
                }
            }
        }
    }
    tracing::info!(path, "webhook accepted; reconciling");
    (rx.on_trigger)();
    http::text(202, "accepted\n")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Push,
    Generic,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_github_example() {
        // The example of GitHub's "Validating webhook deliveries" documentation.
        let secret = Secret::new("It's a Secret to Everybody");
        let body = b"Hello, World!";
        let want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(&secret, body), want);
        assert!(signature_valid(&secret, body, want));
        assert!(signature_valid(&secret, body, &want[7..]));
        assert!(!signature_valid(&secret, b"Hello, World?", want));
        assert!(!signature_valid(&Secret::new("other"), body, want));
        assert!(!signature_valid(&secret, body, "sha256=zz"));
        assert!(!signature_valid(&secret, body, ""));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let mut cfg = WebhookConfig {
            listen: "127.0.0.1:9000".parse().unwrap(),
            tls: None,
            insecure_http: true,
            secret: Secret::new("s"),
            branch: None,
            max_body: MAX_BODY,
        };
        assert!(check_listen(&cfg).is_ok());
        cfg.listen = "[::1]:9000".parse().unwrap();
        assert!(check_listen(&cfg).is_ok());
        cfg.listen = "0.0.0.0:9000".parse().unwrap();
        assert!(check_listen(&cfg).is_err());
        cfg.insecure_http = false;
        assert!(check_listen(&cfg).is_err());
        cfg.tls = Some(TlsFiles {
            cert: "c".into(),
            key: "k".into(),
        });
        assert!(check_listen(&cfg).is_ok());
    }
}
