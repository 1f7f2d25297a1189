//! A small blocking HTTPS/1.1 client: std `TcpStream` + rustls (ring provider, already in the
//! build for the webhook server) + `httparse`. One request per connection
//! (`Connection: close`), time limits on connect, read and write, a cap on the response size.
//!
//! Trust: either certificate pinning by SHA-256 fingerprint of the server's end-entity
//! certificate (what `pvecm add --fingerprint` does; Proxmox VE nodes have self-signed
//! certificates) or a CA bundle (PEM). There is no "accept anything" mode.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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

/// Send one request. `headers` are (name, value); `body` is sent with `Content-Length`.
///
/// # Errors
/// [`TransportError`]; an HTTP error status is a normal [`Response`].
pub fn send(
    config: &Arc<ClientConfig>,
    ep: &Endpoint,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, TransportError> {
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| TransportError::Connect(format!("{}: {e}", ep.url())))?
        .collect();
    let mut last = format!("{}: no address", ep.url());
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("{}: {e}", ep.url()),
        }
    }
    let tcp = tcp.ok_or(TransportError::Connect(last))?;
    let io = |e: std::io::Error| TransportError::Io(format!("{}: {e}", ep.url()));
    tcp.set_read_timeout(Some(timeout)).map_err(io)?;
    tcp.set_write_timeout(Some(timeout)).map_err(io)?;
    let name = ServerName::try_from(ep.host.clone())
        .map_err(|e| TransportError::Connect(format!("{}: {e}", ep.url())))?;
    let conn = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|e| TransportError::Connect(format!("{}: {e}", ep.url())))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let host_header = if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    };
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: pve-gitops\r\n"
    );
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    let body_bytes: &[u8] = match body {
        Some((ctype, b)) => {
            req.push_str(&format!(
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
                b.len()
            ));
            b
        }
        None => {
            if method != "GET" {
                req.push_str("Content-Length: 0\r\n");
            }
            &[]
        }
    };
    req.push_str("\r\n");
    // The handshake happens on the first write: a certificate rejection surfaces here.
    let handshake = |e: std::io::Error| TransportError::Connect(format!("{}: TLS: {e}", ep.url()));
    tls.write_all(req.as_bytes()).map_err(handshake)?;
    tls.write_all(body_bytes).map_err(io)?;
    tls.flush().map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    return Err(TransportError::Io(format!(
                        "{}: response larger than {MAX_RESPONSE} bytes",
                        ep.url()
                    )));
                }
                if response_complete(&buf) {
                    break;
                }
            }
            // Servers often close without close_notify; a complete response is fine.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io(e)),
        }
    }
    parse_response(&buf).map_err(|m| TransportError::Io(format!("{}: {m}", ep.url())))
}

/// Whether `buf` holds a whole response (headers plus Content-Length bytes, or a chunked body
/// up to its last chunk).
fn response_complete(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head)) = r.parse(buf) else {
        return false;
    };
    let body = &buf[head..];
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            return std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .is_some_and(|n| body.len() >= n);
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
        {
            return dechunk(body).is_ok();
        }
    }
    false
}

/// Decode a chunked body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Parse a complete HTTP/1.1 response.
///
/// # Errors
/// Malformed or truncated.
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("truncated response".into()),
        Err(e) => return Err(format!("malformed response: {e}")),
    };
    let status = r.code.ok_or("no status")?;
    let reason = r.reason.unwrap_or("").to_string();
    let raw = &buf[head..];
    let mut body = raw.to_vec();
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("bad Content-Length")?;
            if raw.len() < n {
                return Err("truncated body".into());
            }
            body = raw[..n].to_vec();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
        {
            body = dechunk(raw)?;
        }
    }
    Ok(Response {
        status,
        reason,
        body,
    })
}

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
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"data\":1}\nextra")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"data\":1}\n"[..]));
        let r = parse_response(
            b"HTTP/1.1 500 can't migrate running VM without --online\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnull\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.reason, "can't migrate running VM without --online");
        assert_eq!(r.body, b"null");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_err());
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabc"
        ));
    }

    #[test]
    fn encoding() {
        assert_eq!(
            form(&[("migration".into(), "secure,network=10.1.2.0/24".into())]),
            "migration=secure%2Cnetwork%3D10.1.2.0%2F24"
        );
    }
}
