//! A small HTTP/1 server (hyper 1) for the webhook receiver and the metrics endpoint: accept
//! connections until shutdown, optionally behind TLS (tokio-rustls), one task per connection,
//! at most [`MAX_CONNECTIONS`] at once, time limits on headers, TLS handshake and the whole
//! request so idle or slow clients cannot pile up.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Response body type.
pub type Body = Full<Bytes>;

/// Longest time a client may take to send its request headers, to finish the TLS handshake,
/// or to send its body and be answered.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more are closed at once (a flood of slow clients cannot use
/// up the process's file descriptors, which pvecm, ssh and the state files need).
pub const MAX_CONNECTIONS: usize = 64;

/// A plain response with `status` and a text body.
pub fn text(status: u16, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serve `handler` on `listener` until `shutdown` is cancelled.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: F,
    shutdown: CancellationToken,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections ({MAX_CONNECTIONS}); closing this one");
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let h = handler.clone();
                async move {
                    // The body too: a client that sends it byte by byte is cut off.
                    Ok::<_, Infallible>(
                        tokio::time::timeout(CLIENT_TIMEOUT, h(req))
                            .await
                            .unwrap_or_else(|_| text(408, "request timeout\n")),
                    )
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(CLIENT_TIMEOUT)
                .keep_alive(true);
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let conn = builder.serve_connection(TokioIo::new(s), service);
                            run_conn(conn, &shutdown).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    run_conn(conn, &shutdown).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn run_conn<C>(conn: C, shutdown: &CancellationToken) -> Result<(), hyper::Error>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::select! {
        r = conn => r,
        _ = shutdown.cancelled() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Connections beyond [`MAX_CONNECTIONS`] are closed at once; a slot that frees up is
    /// served again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_beyond_the_limit_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            None,
            |_req| async { text(200, "ok\n") },
            shutdown.clone(),
        ));
        // Slow clients: connected, request line begun, headers never finished.
        let mut slow = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /").await.unwrap();
            slow.push(c);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf))
            .await
            .expect("the extra connection must be closed, not left waiting");
        assert!(
            n.map_or(true, |_| buf.is_empty()),
            "answered: {:?}",
            String::from_utf8_lossy(&buf)
        );
        // One slow client goes away: a new connection is served.
        drop(slow.pop());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        shutdown.cancel();
        let _ = server.await;
    }
}
