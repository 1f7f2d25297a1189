//! Where the desired state comes from: a git repository ([`git`], via git2) or a local path
//! ([`path`], watched with notify). A fetch gives a [`Fetched`] artifact: a revision and the
//! manifest files; [`select_cluster`] validates them and picks the cluster this daemon manages.
//!
//! Credentials (ssh key, https token) come from files or the environment, never from the
//! repository, and never appear in output: every URL shown in an error, log line or status is
//! passed through [`sanitize_url`] / [`sanitize_text`] first (source-controller's
//! `SanitizeError`).

pub mod git;
pub mod path;

use pve_gitops_schema::spec::Cluster;
use pve_gitops_schema::validate::validate_documents;
use std::fmt;

/// A secret value (https token, webhook secret). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret (surrounding whitespace, e.g. a file's trailing newline, is removed).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into().trim().to_string())
    }

    /// The secret itself; only for the code that uses it (never for output).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Read a secret from a file (trimmed).
    ///
    /// # Errors
    /// The file cannot be read or is empty (the message names the file, never the content).
    pub fn from_file(path: &std::path::Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let s = Secret::new(text);
        if s.0.is_empty() {
            return Err(format!("secret file {} is empty", path.display()));
        }
        Ok(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One fetched revision of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `BRANCH@sha1:COMMIT` (git) or `sha256:DIGEST` (path), as Flux spells revisions.
    pub revision: String,
    /// The manifest files: (name shown in diagnostics, content).
    pub files: Vec<(String, String)>,
}

/// Whether an error is worth retrying with backoff, or must wait for a new revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// I/O, network: retry with backoff.
    Transient,
    /// The revision itself is unacceptable (rewind, bad signature, missing path): Stalled
    /// until a new revision arrives.
    Stalled,
}

/// A source could not give a usable revision. Every message is free of credentials.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Fetching from the remote failed.
    #[error("fetching {url} failed: {message}")]
    Fetch {
        /// The remote, without credentials.
        url: String,
        /// What failed, without credentials.
        message: String,
    },
    /// The branch does not exist on the remote (deleted?). Nothing is applied.
    #[error("branch `{branch}` not found on {url}; keeping the applied revision")]
    BranchNotFound {
        /// The branch.
        branch: String,
        /// The remote, without credentials.
        url: String,
    },
    /// The new commit does not descend from the applied one (force-push or rewind).
    #[error(
        "{revision} does not descend from the applied {applied} (force-push or rewind); \
         refusing to apply it (start with --allow-rewind to allow this)"
    )]
    Rewind {
        /// The fetched revision.
        revision: String,
        /// The applied revision.
        applied: String,
    },
    /// The commit's signature is missing or not from an allowed signer.
    #[error("{revision}: signature verification failed: {reason}")]
    Signature {
        /// The fetched revision.
        revision: String,
        /// Why.
        reason: String,
    },
    /// `--path` does not exist in the revision or holds no manifest.
    #[error("{revision}: {message}")]
    Path {
        /// The fetched revision.
        revision: String,
        /// What is wrong.
        message: String,
    },
    /// Reading local files (path source, git cache) failed.
    #[error("{0}")]
    Read(String),
}

impl SourceError {
    /// How the loop treats it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Fetch { .. } | SourceError::BranchNotFound { .. } => ErrorKind::Transient,
            SourceError::Read(_) => ErrorKind::Transient,
            SourceError::Rewind { .. }
            | SourceError::Signature { .. }
            | SourceError::Path { .. } => ErrorKind::Stalled,
        }
    }

    /// The revision the error is about, when one was fetched.
    pub fn revision(&self) -> Option<&str> {
        match self {
            SourceError::Rewind { revision, .. }
            | SourceError::Signature { revision, .. }
            | SourceError::Path { revision, .. } => Some(revision),
            _ => None,
        }
    }

    /// A short Flux-style reason for the status condition.
    pub fn reason(&self) -> &'static str {
        match self {
            SourceError::Fetch { .. } | SourceError::Read(_) => "FetchFailed",
            SourceError::BranchNotFound { .. } => "BranchNotFound",
            SourceError::Rewind { .. } => "RevisionNotDescendant",
            SourceError::Signature { .. } => "VerificationFailed",
            SourceError::Path { .. } => "ArtifactFailed",
        }
    }
}

/// Remove credentials from a URL: the user-info of http(s) and other URLs (a token is often
/// put there), the password of ssh URLs (the user name stays), and any query string.
/// Text that is not a URL is returned unchanged.
pub fn sanitize_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // scp-like `user:password@host:path` is not valid for git; keep `user@host:path`.
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let host = match authority.rfind('@') {
        Some(at) => {
            let user = &authority[..at];
            let host = &authority[at + 1..];
            if scheme.contains("ssh") && !user.contains(':') && !user.is_empty() {
                format!("{user}@{host}")
            } else {
                host.to_string()
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => &tail[..q],
        None => tail,
    };
    format!("{scheme}{host}{tail}")
}

/// Remove credentials from every URL inside `text` (error messages of git and libgit2 may
/// quote the URL), and replace each of `secrets` with `***`.
pub fn sanitize_text(text: &str, secrets: &[&Secret]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // Back up to the start of the scheme.
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |p| p + 1);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '<' | '>'))
            .map_or(rest.len(), |p| i + p);
        out.push_str(&rest[..start]);
        out.push_str(&sanitize_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    for s in secrets {
        if !s.expose().is_empty() {
            out = out.replace(s.expose(), "***");
        }
    }
    out
}

/// The selected cluster of a revision.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The cluster.
    pub cluster: Cluster,
    /// The file it came from.
    pub file: String,
    /// Warnings about it (`file:line:col: message`).
    pub warnings: Vec<String>,
}

/// Validate the manifest files of a revision and pick the cluster: the one named `want`
/// (`--cluster`), else the only one.
///
/// A document that cannot be read far enough to know its `metadata.name` counts against every
/// cluster (it may be ours); a readable document of another cluster is ignored even when it
/// has semantic errors.
///
/// # Errors
/// Every problem as `file:line:col: message` lines: the selected cluster's manifest is
/// invalid, an unreadable document, no or several candidate clusters.
pub fn select_cluster(
    files: &[(String, String)],
    want: Option<&str>,
) -> Result<Selected, Vec<String>> {
    let mut unreadable: Vec<String> = Vec::new();
    let mut candidates: Vec<(String, Cluster, Vec<String>, Vec<String>)> = Vec::new();
    for (name, src) in files {
        for report in validate_documents(name, src) {
            let errors: Vec<String> = report
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(diag_line)
                .collect();
            let warnings: Vec<String> = report
                .diagnostics
                .iter()
                .filter(|d| !d.is_error())
                .map(diag_line)
                .collect();
            match report.cluster {
                Some(c) => candidates.push((name.clone(), c, errors, warnings)),
                None => unreadable.extend(errors),
            }
        }
    }
    let names: Vec<String> = candidates
        .iter()
        .map(|(_, c, _, _)| c.metadata.name.clone())
        .collect();
    let mut picked: Vec<_> = match want {
        Some(w) => candidates
            .into_iter()
            .filter(|(_, c, _, _)| c.metadata.name == w)
            .collect(),
        None => candidates,
    };
    if !unreadable.is_empty() {
        let mut all = unreadable;
        for (_, _, errors, _) in &picked {
            all.extend(errors.iter().cloned());
        }
        return Err(all);
    }
    match picked.len() {
        0 => Err(vec![match want {
            Some(w) => format!(
                "no Cluster manifest named `{w}` (found: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
            None => "no Cluster manifest found".to_string(),
        }]),
        1 => {
            let Some((file, cluster, errors, warnings)) = picked.pop() else {
                return Err(vec!["no Cluster manifest found".to_string()]);
            };
            if errors.is_empty() {
                Ok(Selected {
                    cluster,
                    file,
                    warnings,
                })
            } else {
                Err(errors)
            }
        }
        n => Err(vec![format!(
            "{n} Cluster manifests match ({}); pick one with --cluster NAME",
            picked
                .iter()
                .map(|(f, c, _, _)| format!("{} in {f}", c.metadata.name))
                .collect::<Vec<_>>()
                .join(", ")
        )]),
    }
}

fn diag_line(d: &pve_gitops_schema::diag::Diagnostic) -> String {
    let pos = d.position();
    let path = if d.path.is_empty() {
        String::new()
    } else {
        format!(" ({})", d.path)
    };
    if pos.is_empty() {
        format!("{}{path}", d.message)
    } else {
        format!("{pos}: {}{path}", d.message)
    }
}

/// Whether a file name is a manifest candidate (`*.yaml` / `*.yml`).
pub fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_url_strips_credentials() {
        let cases = [
            (
                "https://user:tok3n@example.com/org/repo.git",
                "https://example.com/org/repo.git",
            ),
            (
                "https://tok3n@example.com/org/repo.git",
                "https://example.com/org/repo.git",
            ),
            (
                "git+https://a:b@h:8443/r.git?access_token=tok3n",
                "git+https://h:8443/r.git",
            ),
            ("ssh://git@host/r.git", "ssh://git@host/r.git"),
            ("git+ssh://git:pw@host/r.git", "git+ssh://host/r.git"),
            ("file:///srv/repo.git", "file:///srv/repo.git"),
            ("not a url", "not a url"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_url(input), want, "{input}");
        }
    }

    #[test]
    fn sanitize_text_strips_urls_and_secrets() {
        let s = Secret::new("tok3n\n");
        let t = sanitize_text(
            "failed to fetch 'https://x:tok3n@h/r.git': token tok3n rejected (see https://h/doc)",
            &[&s],
        );
        assert_eq!(
            t,
            "failed to fetch 'https://h/r.git': token *** rejected (see https://h/doc)"
        );
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    const GOOD: &str = "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: NAME\nspec:\n  nodes:\n    - name: a\n      nodeid: 1\n      ring0_addr: 10.0.0.1\n";

    #[test]
    fn select_by_name_and_alone() {
        let files = vec![
            ("a.yaml".to_string(), GOOD.replace("NAME", "one")),
            ("b.yaml".to_string(), GOOD.replace("NAME", "two")),
        ];
        assert_eq!(
            select_cluster(&files, Some("two"))
                .map(|s| s.file)
                .unwrap_or_default(),
            "b.yaml"
        );
        let err = select_cluster(&files, None).err().unwrap_or_default();
        assert!(err[0].contains("--cluster"), "{err:?}");
        let err = select_cluster(&files, Some("three"))
            .err()
            .unwrap_or_default();
        assert!(err[0].contains("one, two"), "{err:?}");
        assert!(select_cluster(&files[..1], None).is_ok());
    }

    #[test]
    fn select_reports_located_errors() {
        let bad = GOOD
            .replace("NAME", "one")
            .replace("nodeid: 1", "nodeid: x");
        let files = vec![("c.yaml".to_string(), bad)];
        let err = select_cluster(&files, None).err().unwrap_or_default();
        assert!(err.iter().any(|e| e.starts_with("c.yaml:")), "{err:?}");
    }
}
