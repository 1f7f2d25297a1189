//! A small blocking HTTPS client: hyper 1's HTTP/1.1 client connection over tokio-rustls
//! (ring provider, as for the webhook server), driven by a current-thread tokio runtime that
//! each [`Client`] owns. One request per connection, one time limit per attempt, a cap on the
//! response size.
//!
//! Trust: either certificate pinning by SHA-256 fingerprint of the server's end-entity
//! certificate (what `pvecm add --fingerprint` does; Proxmox VE nodes have self-signed
//! certificates) or a CA bundle (PEM). There is no "accept anything" mode.

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper::ext::ReasonPhrase;
use hyper::header::AUTHORIZATION;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::{client::TlsStream, TlsConnector};

/// Largest response body read (API answers are small; a task log is bounded by `limit`).
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// The SHA-256 fingerprint of a DER certificate in PVE's spelling (`AB:CD:...`, upper case).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts exactly the certificates whose SHA-256 fingerprint is pinned; handshake
/// signatures are still verified with the certificate's key.
#[derive(Debug)]
struct Pinned {
    pins: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity.as_ref());
        if self.pins.contains(&fp) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {fp} is not pinned (--fingerprint)"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How the server's certificate is trusted.
#[derive(Debug, Clone)]
pub enum Trust {
    /// SHA-256 fingerprints (`XX:..`, any case); the certificate must match one.
    Pins(Vec<String>),
    /// A PEM file of CA certificates; the certificate must chain to one and name the host.
    CaBundle(std::path::PathBuf),
}

/// Build the TLS client configuration for `trust`.
///
/// # Errors
/// No pins, an unreadable or empty CA bundle: the message.
pub fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match trust {
        Trust::Pins(pins) => {
            if pins.is_empty() {
                return Err("no certificate fingerprint to pin".into());
            }
            let pins = pins
                .iter()
                .map(|p| super::super::pve::parse::normalize_fingerprint(p))
                .collect();
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { pins, provider }))
                .with_no_client_auth()
        }
        Trust::CaBundle(path) => {
            let roots = load_roots(path)?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA bundle {}: {e}", path.display()))?;
    for cert in iter {
        let cert = cert.map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("CA bundle {} holds no certificate", path.display()));
    }
    Ok(roots)
}

/// An `https://HOST[:PORT]` base address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port (default 8006).
    pub port: u16,
}

impl Endpoint {
    /// Parse `https://HOST[:PORT][/...]` (a path is ignored: the API lives at `/api2/json`).
    ///
    /// # Errors
    /// Not https, no host, a bad port.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("`{url}`: the API address must start with https://"))?;
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{url}`: unclosed [ in the host"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{url}`: no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("`{url}`: bad port `{p}`"))?,
            None => 8006,
        };
        Ok(Endpoint { host, port })
    }

    /// `https://host:port` for messages.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Reason phrase (pveproxy puts the error message there).
    pub reason: String,
    /// Body.
    pub body: Vec<u8>,
}

/// What failed, before any HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The connection could not be made (nothing was sent): safe to retry any request.
    Connect(String),
    /// TLS or I/O failed after connecting, or the response was malformed.
    Io(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Connect(m) => write!(f, "cannot connect: {m}"),
            TransportError::Io(m) => write!(f, "{m}"),
        }
    }
}

/// The TLS configuration and a current-thread runtime to drive hyper; clones share both.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    rt: Arc<Runtime>,
}

/// Shut down without waiting, so that a client may be dropped anywhere (even in async code).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// `e` and its sources (hyper keeps the cause in `source`).
fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

impl Client {
    /// A client trusting `trust`.
    ///
    /// # Errors
    /// TLS setup (see [`tls_config`]) or the runtime could not be built.
    pub fn new(trust: &Trust) -> Result<Client, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP client's runtime: {e}"))?;
        Ok(Client {
            tls: TlsConnector::from(tls_config(trust)?),
            rt: Arc::new(Runtime(Some(rt))),
        })
    }

    /// Send one request (`Connection: close`) within `timeout` for connect, TLS and the whole
    /// exchange. `headers` are (name, value); `body` is (content type, bytes). Blocks: not for
    /// async code.
    ///
    /// # Errors
    /// [`TransportError`]; an HTTP error status is a normal [`Response`].
    pub fn send(
        &self,
        ep: &Endpoint,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let url = ep.url();
        let io = |m: String| TransportError::Io(format!("{url}: {m}"));
        let (ctype, bytes) = body.unwrap_or(("", &[]));
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("Host", &url["https://".len()..])
            .header("Accept", "application/json")
            .header("Connection", "close")
            .header("User-Agent", "pve-gitops");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if body.is_some() {
            req = req.header("Content-Type", ctype);
        }
        if body.is_some() || method != "GET" {
            req = req.header("Content-Length", bytes.len());
        }
        // http's messages never quote a header value (the token).
        let mut req = req
            .body(Full::new(Bytes::copy_from_slice(bytes)))
            .map_err(|e| io(format!("bad request: {e}")))?;
        if let Some(v) = req.headers_mut().get_mut(AUTHORIZATION) {
            v.set_sensitive(true);
        }
        let deadline = Instant::now() + timeout;
        let exchange = async {
            let sender = timeout_at(deadline, self.connect(ep)).await.map_err(|_| {
                TransportError::Connect(format!("{url}: timed out after {timeout:?}"))
            })??;
            timeout_at(deadline, Self::exchange(sender, req))
                .await
                .map_err(|_| io(format!("no complete answer within {timeout:?}")))?
                .map_err(io)
        };
        self.rt.0.as_ref().expect("until drop").block_on(exchange)
    }

    /// TCP, TLS (the certificate is checked here: a rejected server gets no request) and the
    /// HTTP/1.1 handshake; the connection is driven alongside the exchange.
    async fn connect(&self, ep: &Endpoint) -> Result<Connection, TransportError> {
        let fail = |m: String| TransportError::Connect(format!("{}: {m}", ep.url()));
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let name = ServerName::try_from(ep.host.clone()).map_err(|e| fail(e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("TLS: {e}")))?;
        handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail(chain(&e)))
    }

    async fn exchange(
        (mut sender, conn): Connection,
        req: Request<Full<Bytes>>,
    ) -> Result<Response, String> {
        let exchange = async move {
            let (parts, body) = sender
                .send_request(req)
                .await
                .map_err(|e| chain(&e))?
                .into_parts();
            let body = Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        format!("response larger than {MAX_RESPONSE} bytes")
                    } else {
                        chain(&*e)
                    }
                })?;
            let reason = match parts.extensions.get::<ReasonPhrase>() {
                Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
                None => parts.status.canonical_reason().unwrap_or("").into(),
            };
            Ok(Response {
                status: parts.status.as_u16(),
                reason,
                body: body.to_bytes().to_vec(),
            })
        };
        // The connection ends after the response (`Connection: close`); its errors also reach
        // the exchange, which reports them.
        tokio::join!(exchange, conn).0
    }
}

type Connection = (
    SendRequest<Full<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<TlsStream<TcpStream>>, Full<Bytes>>,
);

/// `application/x-www-form-urlencoded` / query-string encoding of one value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `k=v&k=v`, encoded.
pub fn form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("https://pve1:8006").unwrap(),
            Endpoint {
                host: "pve1".into(),
                port: 8006
            }
        );
        assert_eq!(Endpoint::parse("https://10.0.0.1").unwrap().port, 8006);
        assert_eq!(
            Endpoint::parse("https://[fd00::1]:443/api2/json").unwrap(),
            Endpoint {
                host: "fd00::1".into(),
                port: 443
            }
        );
        assert!(Endpoint::parse("http://pve1:8006").is_err());
        assert!(Endpoint::parse("https://:8006").is_err());
        assert!(Endpoint::parse("https://pve1:x").is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(
            form(&[("migration".into(), "secure,network=10.1.2.0/24".into())]),
            "migration=secure%2Cnetwork%3D10.1.2.0%2F24"
        );
    }
}
