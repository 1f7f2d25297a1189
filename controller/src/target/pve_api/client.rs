//! The Proxmox VE REST API client: `https://HOST:8006/api2/json`, the `{"data": ...}`
//! envelope, API-token authentication, time limits and retries on every request.
//!
//! Errors name the method, the endpoint path and the HTTP status with pveproxy's message;
//! the token is only ever put into the `Authorization` header and never into an error, a log
//! line or `Debug` output.

use super::http::{self, Endpoint, Response, TransportError, Trust};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// An API token `USER@REALM!TOKENID=SECRET`. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// Read the token from the first line of `path` (`USER@REALM!TOKENID=SECRET`, optionally
    /// prefixed with `PVEAPIToken=`).
    ///
    /// # Errors
    /// Unreadable file or a malformed token (the message never contains the secret).
    pub fn from_file(path: &Path) -> Result<Token, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read API token file {}: {e}", path.display()))?;
        Token::parse(text.lines().next().unwrap_or(""))
            .map_err(|m| format!("API token file {}: {m}", path.display()))
    }

    /// Check the shape `USER@REALM!TOKENID=SECRET`.
    ///
    /// # Errors
    /// What is missing (never the secret).
    pub fn parse(s: &str) -> Result<Token, String> {
        let s = s.trim();
        let s = s.strip_prefix("PVEAPIToken=").unwrap_or(s);
        let (id, secret) = s
            .split_once('=')
            .ok_or("expected USER@REALM!TOKENID=SECRET (no `=`)")?;
        let (user, tokenid) = id
            .split_once('!')
            .ok_or("expected USER@REALM!TOKENID=SECRET (no `!`)")?;
        if !user.contains('@') || tokenid.is_empty() || secret.is_empty() {
            return Err("expected USER@REALM!TOKENID=SECRET".into());
        }
        if s.contains(|c: char| c.is_control() || c.is_whitespace()) {
            return Err("the token contains whitespace or control characters".into());
        }
        Ok(Token(s.to_string()))
    }

    /// The token id (`USER@REALM!TOKENID`), safe to show.
    pub fn id(&self) -> &str {
        self.0.split_once('=').map_or("", |(id, _)| id)
    }

    fn header(&self) -> String {
        format!("PVEAPIToken={}", self.0)
    }
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{method} {path}: HTTP {status} {message}")]
    Status {
        /// Method.
        method: String,
        /// Endpoint path (below `/api2/json`).
        path: String,
        /// HTTP status.
        status: u16,
        /// pveproxy's reason phrase and the body's `errors`, if any.
        message: String,
    },
    /// No HTTP answer (connect, TLS, time limit).
    #[error("{method} {path}: {message} (after {attempts} attempts)")]
    Transport {
        /// Method.
        method: String,
        /// Endpoint path.
        path: String,
        /// What failed.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The answer is not the documented shape.
    #[error("{method} {path}: unexpected answer: {message}")]
    Shape {
        /// Method.
        method: String,
        /// Endpoint path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One API server.
#[derive(Clone)]
pub struct ApiClient {
    endpoint: Endpoint,
    token: Token,
    http: http::Client,
    /// Time limit of one attempt (connect, TLS handshake and the whole exchange).
    pub timeout: Duration,
    /// Attempts per request (GET: transport errors and 502/503/504/596; writes: only when
    /// the connection could not be made, so a write is never sent twice).
    pub attempts: u32,
    /// Pause between attempts (doubles each time).
    pub backoff: Duration,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("endpoint", &self.endpoint.url())
            .field("token", &self.token.id())
            .finish_non_exhaustive()
    }
}

fn retryable_status(s: u16) -> bool {
    matches!(s, 502..=504 | 596)
}

impl ApiClient {
    /// A client for `url` (`https://HOST[:PORT]`).
    ///
    /// # Errors
    /// A bad URL or TLS setup (pins, CA bundle).
    pub fn new(url: &str, token: Token, trust: &Trust) -> Result<ApiClient, String> {
        Ok(ApiClient {
            endpoint: Endpoint::parse(url)?,
            token,
            http: http::Client::new(trust)?,
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(500),
        })
    }

    /// The server, for messages.
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// `GET path?query` → `data`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T, ApiError> {
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", http::form(query))
        };
        self.call("GET", path, &target, None)
    }

    /// `POST path` with form parameters → `data`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<T, ApiError> {
        let body = http::form(params);
        self.call("POST", path, path, Some(body))
    }

    /// `PUT path` with form parameters → `data`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<T, ApiError> {
        let body = http::form(params);
        self.call("PUT", path, path, Some(body))
    }

    /// `DELETE path` → `data`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call("DELETE", path, path, None)
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        target: &str,
        body: Option<String>,
    ) -> Result<T, ApiError> {
        let full = format!("/api2/json{target}");
        let auth = self.token.header();
        let headers = [("Authorization", auth.as_str())];
        let attempts = self.attempts.max(1);
        let mut pause = self.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let sent = self.http.send(
                &self.endpoint,
                method,
                &full,
                &headers,
                body.as_deref()
                    .map(|b| ("application/x-www-form-urlencoded", b.as_bytes())),
                self.timeout,
            );
            let retry = match &sent {
                Ok(r) => method == "GET" && retryable_status(r.status),
                Err(TransportError::Connect(_)) => true,
                Err(TransportError::Io(_)) => method == "GET",
            };
            match sent {
                Ok(r) if !retry || attempt == attempts => return self.decode(method, path, r),
                Ok(r) => last = format!("HTTP {} {}", r.status, r.reason),
                Err(e) if !retry || attempt == attempts => {
                    return Err(ApiError::Transport {
                        method: method.into(),
                        path: path.into(),
                        message: self.scrub(&e.to_string()),
                        attempts: attempt,
                    })
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(pause);
            pause = pause.saturating_mul(2);
        }
        Err(ApiError::Transport {
            method: method.into(),
            path: path.into(),
            message: self.scrub(&last),
            attempts,
        })
    }

    /// Remove the token from a message (defence in depth: it is never put there).
    fn scrub(&self, m: &str) -> String {
        let secret = self.token.0.split_once('=').map_or("", |(_, s)| s);
        if secret.is_empty() {
            m.to_string()
        } else {
            m.replace(secret, "***")
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        r: Response,
    ) -> Result<T, ApiError> {
        let json: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
        if !(200..300).contains(&r.status) {
            let mut message = r.reason.trim().to_string();
            if let Some(errors) = json.as_ref().and_then(|j| j.get("errors")) {
                if !errors.is_null() {
                    message.push_str(&format!(" {errors}"));
                }
            }
            return Err(ApiError::Status {
                method: method.into(),
                path: path.into(),
                status: r.status,
                message: self.scrub(&message),
            });
        }
        let shape = |message: String| ApiError::Shape {
            method: method.into(),
            path: path.into(),
            message,
        };
        let json = json.ok_or_else(|| shape("not JSON".into()))?;
        let data = json
            .get("data")
            .cloned()
            .ok_or_else(|| shape("no `data` in the answer".into()))?;
        serde_json::from_value(data).map_err(|e| shape(e.to_string()))
    }
}
