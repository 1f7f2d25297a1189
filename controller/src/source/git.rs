//! A git repository as the source (git2): `git+file://`, `git+ssh://`, `git+https://` URLs,
//! one branch, a path inside the repository.
//!
//! Every fetch goes into a bare cache repository under the state directory
//! (`STATE/git/<hash of the URL>`), so nothing is ever checked out and the working tree of
//! the operator is never touched. The remote's ref advertisement tells whether the branch
//! still exists (a deleted branch is an error; nothing is applied). The commit that was
//! applied is kept alive by the ref `refs/pve-gitops/applied`; a new commit must descend from
//! it (`graph_descendant_of`), so a force-push to an older or unrelated commit is refused
//! unless `--allow-rewind`.
//!
//! Credentials: `--ssh-key FILE` (ssh), `--https-token-file FILE` or the environment
//! variable `PVE_GITOPS_HTTPS_TOKEN` (https, sent as the password). They are never read from
//! the repository and never printed: every URL in an error goes through
//! [`super::sanitize_url`].
//!
//! Signature verification (`--verify-signatures --allowed-signers FILE`): an unsigned commit
//! is refused by git2 (`extract_signature`); a signed one is checked by
//! `git verify-commit` run with an argument vector (no shell) against the cache repository,
//! with `gpg.ssh.allowedSignersFile=FILE` for SSH signatures (as `git verify-commit` with
//! `gpg.format=ssh` does) and `GNUPGHOME=--gpg-home` for GPG ones. libgit2 has no signature
//! verification of its own.

use super::{path::hex, sanitize_text, sanitize_url, Fetched, Secret, SourceError};
use git2::{
    AutotagOption, Cred, CredentialType, FetchOptions, ObjectType, Oid, RemoteCallbacks,
    Repository, TreeWalkMode, TreeWalkResult,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Environment variable with the https token (when no `--https-token-file` is given).
pub const HTTPS_TOKEN_ENV: &str = "PVE_GITOPS_HTTPS_TOKEN";

/// The ref in the cache repository that keeps the applied commit.
pub const APPLIED_REF: &str = "refs/pve-gitops/applied";

/// Signature verification settings.
#[derive(Debug, Clone)]
pub struct Verify {
    /// The allowed signers file (`ssh-keygen -Y` format, as `gpg.ssh.allowedSignersFile`).
    pub allowed_signers: PathBuf,
    /// GNUPGHOME for GPG signatures (default: the service user's).
    pub gpg_home: Option<PathBuf>,
}

/// Everything needed to fetch.
#[derive(Debug, Clone)]
pub struct GitSource {
    /// The URL given to git2 (without the `git+` prefix; may hold a user name).
    url: String,
    /// The branch.
    pub branch: String,
    /// File or directory inside the repository ("" or "." = the root).
    pub path: String,
    /// Where the bare cache repository lives.
    cache_dir: PathBuf,
    /// `--ssh-key`.
    pub ssh_key: Option<PathBuf>,
    /// https token.
    pub https_token: Option<Secret>,
    /// https user name sent with the token.
    pub https_username: String,
    /// `--verify-signatures`.
    pub verify: Option<Verify>,
    /// `--allow-rewind`.
    pub allow_rewind: bool,
}

impl GitSource {
    /// A source for `spec` (`git+file://...`, `git+ssh://...`, `git+https://...`; the `git+`
    /// prefix is optional for ssh and https), caching under `state_dir/git/`.
    ///
    /// # Errors
    /// An unsupported URL scheme.
    pub fn new(spec: &str, branch: &str, path: &str, state_dir: &Path) -> Result<Self, String> {
        let url = spec.strip_prefix("git+").unwrap_or(spec);
        let ok = ["file://", "ssh://", "https://", "http://"]
            .iter()
            .any(|p| url.starts_with(p));
        if !ok {
            return Err(format!(
                "unsupported git source `{}`; use git+file:///PATH, git+ssh://HOST/PATH or git+https://HOST/PATH",
                sanitize_url(spec)
            ));
        }
        let mut h = Sha256::new();
        h.update(url.as_bytes());
        let key = hex(&h.finalize()[..8]);
        Ok(GitSource {
            url: url.to_string(),
            branch: branch.to_string(),
            path: path.to_string(),
            cache_dir: state_dir.join("git").join(key),
            ssh_key: None,
            https_token: None,
            https_username: "git".to_string(),
            verify: None,
            allow_rewind: false,
        })
    }

    /// The URL without credentials, for output.
    pub fn display_url(&self) -> String {
        sanitize_url(&self.url)
    }

    /// The bare cache repository.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn clean(&self, msg: &str) -> String {
        let secrets: Vec<&Secret> = self.https_token.iter().collect();
        sanitize_text(msg, &secrets)
    }

    fn fetch_err(&self, e: &git2::Error) -> SourceError {
        SourceError::Fetch {
            url: self.display_url(),
            message: self.clean(e.message()),
        }
    }

    fn open_cache(&self) -> Result<Repository, SourceError> {
        let open = if self.cache_dir.join("HEAD").exists() {
            Repository::open_bare(&self.cache_dir)
        } else {
            std::fs::create_dir_all(&self.cache_dir).map_err(|e| {
                SourceError::Read(format!("cannot create {}: {e}", self.cache_dir.display()))
            })?;
            Repository::init_bare(&self.cache_dir)
        };
        open.map_err(|e| {
            SourceError::Read(format!(
                "git cache {}: {}",
                self.cache_dir.display(),
                e.message()
            ))
        })
    }

    /// Fetch the branch and read the manifest files of its head commit.
    ///
    /// `applied` is the revision applied last (`BRANCH@sha1:HEX`); the new commit must
    /// descend from it unless `allow_rewind`.
    ///
    /// # Errors
    /// Fetch failures and a missing branch (transient); a rewind, a bad signature, a missing
    /// `--path` (stalled until a new revision).
    pub fn fetch(&self, applied: Option<&str>) -> Result<Fetched, SourceError> {
        let repo = self.open_cache()?;
        let head = self.fetch_head(&repo)?;
        let revision = format!("{}@sha1:{head}", self.branch);
        if let Some(applied) = applied.and_then(commit_of) {
            if applied != head && !self.allow_rewind {
                let descends = repo.graph_descendant_of(head, applied).unwrap_or(false);
                if !descends {
                    return Err(SourceError::Rewind {
                        revision,
                        applied: format!("{}@sha1:{applied}", self.branch),
                    });
                }
            }
        }
        if let Some(v) = &self.verify {
            verify_commit(&repo, head, v).map_err(|reason| SourceError::Signature {
                revision: revision.clone(),
                reason: self.clean(&reason),
            })?;
        }
        let files =
            read_manifests(&repo, head, &self.path).map_err(|message| SourceError::Path {
                revision: revision.clone(),
                message,
            })?;
        Ok(Fetched { revision, files })
    }

    /// Fetch `refs/heads/BRANCH` and return the commit the remote advertises for it.
    fn fetch_head(&self, repo: &Repository) -> Result<Oid, SourceError> {
        let mut callbacks = RemoteCallbacks::new();
        let ssh_key = self.ssh_key.clone();
        let token = self.https_token.clone();
        let https_user = self.https_username.clone();
        let token_host = https_host(&self.url);
        let mut tries = 0;
        callbacks.credentials(move |url, user_from_url, allowed| {
            tries += 1;
            if tries > 3 {
                return Err(git2::Error::from_str("authentication failed"));
            }
            if allowed.contains(CredentialType::SSH_KEY) {
                if let Some(key) = &ssh_key {
                    return Cred::ssh_key(user_from_url.unwrap_or("git"), None, key, None);
                }
            }
            // The token only over https and only to the configured host (never in clear text
            // over http://, never to where a redirect points).
            let token_ok = token_host.is_some() && https_host(url) == token_host;
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && token_ok {
                if let Some(t) = &token {
                    return Cred::userpass_plaintext(
                        user_from_url.unwrap_or(&https_user),
                        t.expose(),
                    );
                }
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user_from_url.unwrap_or("git"));
            }
            Err(git2::Error::from_str(
                "the remote asks for credentials and none were given (--ssh-key, --https-token-file)",
            ))
        });
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks);
        opts.download_tags(AutotagOption::None);
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(|e| self.fetch_err(&e))?;
        let branch_ref = format!("refs/heads/{}", self.branch);
        let refspec = format!("+{branch_ref}:refs/pve-gitops/fetched");
        let fetched = remote.fetch(&[&refspec], Some(&mut opts), None);
        let advertised = remote.list().ok().and_then(|heads| {
            heads
                .iter()
                .find(|h| h.name() == branch_ref)
                .map(|h| h.oid())
        });
        match (fetched, advertised) {
            (Ok(()), Some(oid)) => Ok(oid),
            (Err(e), _) if e.class() == git2::ErrorClass::Reference => {
                Err(SourceError::BranchNotFound {
                    branch: self.branch.clone(),
                    url: self.display_url(),
                })
            }
            (Err(e), _) => Err(self.fetch_err(&e)),
            (Ok(()), None) => Err(SourceError::BranchNotFound {
                branch: self.branch.clone(),
                url: self.display_url(),
            }),
        }
    }

    /// Record `revision` as applied: the ref [`APPLIED_REF`] keeps its commit in the cache.
    ///
    /// # Errors
    /// The cache cannot be written or the commit is unknown.
    pub fn mark_applied(&self, revision: &str) -> Result<(), SourceError> {
        let Some(oid) = commit_of(revision) else {
            return Ok(());
        };
        let repo = self.open_cache()?;
        repo.reference(APPLIED_REF, oid, true, "pve-gitops applied")
            .map(|_| ())
            .map_err(|e| SourceError::Read(format!("git cache: {}", e.message())))
    }
}

/// The commit of a `BRANCH@sha1:HEX` revision.
pub fn commit_of(revision: &str) -> Option<Oid> {
    let hex = revision.rsplit_once("sha1:")?.1;
    Oid::from_str(hex).ok()
}

/// The manifest files at `path` in `commit`: one file, or every `*.yaml` / `*.yml` below a
/// directory (sorted by path).
fn read_manifests(
    repo: &Repository,
    commit: Oid,
    path: &str,
) -> Result<Vec<(String, String)>, String> {
    let commit = repo
        .find_commit(commit)
        .map_err(|e| format!("commit not found: {}", e.message()))?;
    let root = commit
        .tree()
        .map_err(|e| format!("cannot read the tree: {}", e.message()))?;
    let trimmed = path.trim_matches('/');
    let blob_text = |oid: Oid, name: &str| -> Result<String, String> {
        let blob = repo
            .find_blob(oid)
            .map_err(|e| format!("{name}: {}", e.message()))?;
        String::from_utf8(blob.content().to_vec()).map_err(|_| format!("{name}: not UTF-8 text"))
    };
    let (tree, prefix) = if trimmed.is_empty() || trimmed == "." {
        (root, String::new())
    } else {
        let entry = root
            .get_path(Path::new(trimmed))
            .map_err(|_| format!("path `{trimmed}` does not exist in the repository"))?;
        match entry.kind() {
            Some(ObjectType::Blob) => {
                return Ok(vec![(trimmed.to_string(), blob_text(entry.id(), trimmed)?)])
            }
            Some(ObjectType::Tree) => (
                repo.find_tree(entry.id())
                    .map_err(|e| format!("{trimmed}: {}", e.message()))?,
                format!("{trimmed}/"),
            ),
            _ => {
                return Err(format!(
                    "path `{trimmed}` is neither a file nor a directory"
                ))
            }
        }
    };
    let mut blobs: Vec<(String, Oid)> = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or("");
        if entry.kind() == Some(ObjectType::Tree) && name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        if entry.kind() == Some(ObjectType::Blob) && super::is_manifest_name(name) {
            blobs.push((format!("{prefix}{dir}{name}"), entry.id()));
        }
        TreeWalkResult::Ok
    })
    .map_err(|e| format!("cannot read the tree: {}", e.message()))?;
    blobs.sort();
    if blobs.is_empty() {
        return Err(format!(
            "no *.yaml / *.yml manifest under `{}`",
            if trimmed.is_empty() { "." } else { trimmed }
        ));
    }
    blobs
        .into_iter()
        .map(|(name, oid)| Ok((name.clone(), blob_text(oid, &name)?)))
        .collect()
}

/// Check the signature of `commit` with `git verify-commit` (argument vector, no shell).
fn verify_commit(repo: &Repository, commit: Oid, v: &Verify) -> Result<(), String> {
    let (sig, _) = match repo.extract_signature(&commit, None) {
        Ok(s) => s,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Err("the commit is not signed".into())
        }
        Err(e) => return Err(e.message().to_string()),
    };
    let sig = String::from_utf8_lossy(&sig);
    let kind = if sig.contains("BEGIN SSH SIGNATURE") {
        "ssh"
    } else if sig.contains("BEGIN PGP SIGNATURE") {
        "gpg"
    } else {
        return Err(
            "unsupported signature format (only SSH and GPG signatures are checked)".into(),
        );
    };
    let mut cmd = std::process::Command::new("git");
    cmd.arg("--git-dir")
        .arg(repo.path())
        .arg("-c")
        .arg(format!(
            "gpg.ssh.allowedSignersFile={}",
            v.allowed_signers.display()
        ))
        .args(["verify-commit", "--raw"])
        .arg(commit.to_string())
        .env_remove("GIT_DIR")
        .stdin(std::process::Stdio::null());
    if kind == "gpg" {
        // Only against a keyring that holds the allowed keys: any good signature from the
        // service user's own keyring would otherwise pass.
        let Some(home) = &v.gpg_home else {
            return Err(
                "the commit has a GPG signature, and GPG signatures are checked only against --gpg-home DIR (a keyring holding only the allowed signers' keys)".into(),
            );
        };
        cmd.env("GNUPGHOME", home);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run `git verify-commit`: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("[GNUPG:]"))
        .unwrap_or("no allowed signer");
    Err(format!(
        "{kind} signature not from an allowed signer: {first}"
    ))
}

/// The host (and port) of an `https://` URL, lower case; None for any other scheme.
fn https_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_revisions() {
        let s = GitSource::new("git+https://u:p@h/r.git", "main", ".", Path::new("/s")).unwrap();
        assert_eq!(s.display_url(), "https://h/r.git");
        assert!(s.cache_dir().starts_with("/s/git"));
        assert!(GitSource::new("ftp://h/r", "main", ".", Path::new("/s")).is_err());
        let oid = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            commit_of(&format!("main@sha1:{oid}")).map(|o| o.to_string()),
            Some(oid.to_string())
        );
        assert_eq!(commit_of("sha256:abc"), None);
    }

    /// The https token goes to the configured host only, and never over plain http.
    #[test]
    fn the_token_is_only_for_the_configured_https_host() {
        assert_eq!(
            https_host("https://u@Git.Example.org:8443/r.git"),
            Some("git.example.org:8443".into())
        );
        assert_eq!(https_host("http://git.example.org/r.git"), None);
        assert_eq!(https_host("ssh://git@git.example.org/r.git"), None);
        assert_ne!(
            https_host("https://evil.example/r.git"),
            https_host("https://git.example.org/r.git")
        );
    }
}
