//! A local HTTPS server for the API tests (rustls, certificates generated with rcgen) on
//! 127.0.0.1:0: serves the documented JSON shapes of reference/domain.md §5 and records every
//! request. No real Proxmox VE runs here.

use super::read_fixture;
use pve_gitops::target::pve_api::client::{ApiClient, Token};
use pve_gitops::target::pve_api::http::{fingerprint, Trust};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "root@pam!gitops=0b5e6f1c-9d2a-4c1e-8f00-5ec7e75ec7e7";
pub const SECRET: &str = "0b5e6f1c-9d2a-4c1e-8f00-5ec7e75ec7e7";

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    pub auth: Option<String>,
    pub body: String,
}

pub type Handler = dyn Fn(&Req) -> (u16, String, String) + Send + Sync;

pub struct Server {
    pub url: String,
    requests: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// The first request with `method`; panics when there is none.
    pub fn first(&self, method: &str) -> Req {
        self.requests()
            .into_iter()
            .find(|r| r.method == method)
            .unwrap_or_else(|| panic!("no {method} request"))
    }
}

pub fn fixture(name: &str) -> String {
    read_fixture(&format!("pve/api/{name}"))
}

pub fn ok(body: String) -> (u16, String, String) {
    (200, "OK".into(), body)
}

pub fn data(v: &str) -> String {
    format!("{{\"data\":{v}}}")
}

pub fn serve(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    handler: Arc<Handler>,
) -> Server {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests: Arc<Mutex<Vec<Req>>> = Arc::default();
    let rec = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let req = loop {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut r = httparse::Request::new(&mut headers);
                if let Ok(httparse::Status::Complete(head)) = r.parse(&buf) {
                    let len = r
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= head + len {
                        break Some(Req {
                            method: r.method.unwrap_or("").to_string(),
                            target: r.path.unwrap_or("").to_string(),
                            auth: r
                                .headers
                                .iter()
                                .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                                .map(|h| String::from_utf8_lossy(h.value).into_owned()),
                            body: String::from_utf8_lossy(&buf[head..head + len]).into_owned(),
                        });
                    }
                }
            };
            let Some(req) = req else { continue };
            rec.lock().unwrap().push(req.clone());
            let (status, reason, body) = handler(&req);
            let resp = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(resp.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Server {
        url: format!("https://127.0.0.1:{port}"),
        requests,
    }
}

pub struct Certs {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fp: String,
}

pub fn self_signed() -> Certs {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".into()])
        .unwrap();
    let cert = ck.cert.der().clone();
    Certs {
        fp: fingerprint(cert.as_ref()),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der())),
        cert,
    }
}

/// A CA (its PEM) and a leaf for 127.0.0.1 signed by it.
pub fn ca_and_leaf() -> (String, Certs) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Proxmox Virtual Environment test CA",
    );
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let cert = leaf.der().clone();
    (
        ca.pem(),
        Certs {
            fp: fingerprint(cert.as_ref()),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            cert,
        },
    )
}

/// A standalone host: no cluster, no guests, empty options; a POST to `post` starts the task
/// `upid`, and every task has finished OK.
pub fn standalone_handler(post: &'static str, upid: &'static str) -> Arc<Handler> {
    Arc::new(move |r: &Req| {
        let path = r.target.split('?').next().unwrap_or("");
        match (r.method.as_str(), path) {
            ("GET", "/api2/json/cluster/status") => ok(fixture("standalone-status.json")),
            ("GET", "/api2/json/cluster/options") => ok(data("{}")),
            ("GET", "/api2/json/cluster/resources") => ok(data("[]")),
            ("POST", p) if p == post => ok(data(&format!("\"{upid}\""))),
            ("GET", p) if p.ends_with("/status") => {
                ok(data(r#"{"status":"stopped","exitstatus":"OK"}"#))
            }
            _ => (501, "not implemented".into(), data("null")),
        }
    })
}

/// The documented answers of a 3-node cluster (pve3 offline) plus `extra` routes first.
pub fn cluster_handler(
    extra: impl Fn(&Req) -> Option<(u16, String, String)> + Send + Sync + 'static,
) -> Arc<Handler> {
    Arc::new(move |r: &Req| {
        if let Some(a) = extra(r) {
            return a;
        }
        let path = r.target.split('?').next().unwrap_or("");
        match (r.method.as_str(), path) {
            ("GET", "/api2/json/cluster/status") => ok(fixture("cluster-status.json")),
            ("GET", "/api2/json/cluster/config/nodes") => ok(fixture("config-nodes.json")),
            ("GET", "/api2/json/cluster/config/totem") => ok(fixture("totem.json")),
            ("GET", "/api2/json/cluster/options") => ok(fixture("options.json")),
            ("GET", "/api2/json/cluster/resources") => ok(fixture("resources.json")),
            ("GET", "/api2/json/cluster/config/join") => ok(data(
                &std::fs::read_to_string(super::fixture_path("pve/outputs/join-info.json"))
                    .unwrap(),
            )),
            _ => (
                501,
                format!("Method '{} {path}' not implemented", r.method),
                data("null"),
            ),
        }
    })
}

pub fn client(url: &str, trust: &Trust) -> ApiClient {
    let mut c = ApiClient::new(url, Token::parse(TOKEN).unwrap(), trust).unwrap();
    c.timeout = Duration::from_secs(5);
    c.attempts = 3;
    c.backoff = Duration::from_millis(5);
    c
}
