//! A plain local path as the source: one manifest file, or a directory searched recursively
//! for `*.yaml` / `*.yml` (hidden directories such as `.git` and `.pve-gitops` are skipped).
//! The revision is `sha256:` over the files' names and contents, so an event that does not
//! change a manifest (an editor's temporary file, the daemon's own status file) gives the same
//! revision and triggers nothing.
//!
//! [`watch`] reports changes with notify; the daemon's queue debounces them.

use super::{is_manifest_name, Fetched, SourceError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A local file or directory.
#[derive(Debug, Clone)]
pub struct PathSource {
    path: PathBuf,
}

impl PathSource {
    /// The source at `path` (not read until [`PathSource::fetch`]).
    pub fn new(path: impl Into<PathBuf>) -> PathSource {
        PathSource { path: path.into() }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the manifest files and compute the revision.
    ///
    /// # Errors
    /// The path does not exist or a file cannot be read (transient: it may be mid-edit).
    pub fn fetch(&self) -> Result<Fetched, SourceError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| SourceError::Read(format!("cannot read {}: {e}", p.display())))
        };
        let meta = std::fs::metadata(&self.path)
            .map_err(|e| SourceError::Read(format!("cannot read {}: {e}", self.path.display())))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            let walker = walkdir::WalkDir::new(&self.path)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
                });
            for entry in walker {
                let entry = entry.map_err(|e| SourceError::Read(e.to_string()))?;
                let name = entry.file_name().to_string_lossy();
                if entry.file_type().is_file() && is_manifest_name(&name) {
                    files.push((entry.path().display().to_string(), read(entry.path())?));
                }
            }
        } else {
            files.push((self.path.display().to_string(), read(&self.path)?));
        }
        Ok(Fetched {
            revision: digest_revision(&files),
            files,
        })
    }
}

/// `sha256:HEX` over the names and contents.
pub fn digest_revision(files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (name, content) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((content.len() as u64).to_le_bytes());
        h.update(content.as_bytes());
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Watch `paths` (files: their directory, non-recursively, filtered to the file; directories:
/// recursively) and call `on_change` with every changed path. The watcher stops when the
/// returned value is dropped.
///
/// # Errors
/// notify could not set up the watch (the message names the path).
pub fn watch(
    paths: &[PathBuf],
    on_change: impl Fn(PathBuf) + Send + 'static,
) -> Result<notify::RecommendedWatcher, String> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            dirs.push(absolute(p));
        } else {
            files.push(watch_key(p));
        }
    }
    let files_cb = files.clone();
    let dirs_cb = dirs.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        for p in ev.paths {
            if files_cb.contains(&p) || dirs_cb.iter().any(|d| p.starts_with(d)) {
                on_change(p);
            }
        }
    })
    .map_err(|e| format!("cannot watch files: {e}"))?;
    for d in &dirs {
        watcher
            .watch(d, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
    }
    let mut parents: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    parents.sort();
    parents.dedup();
    for p in &parents {
        watcher
            .watch(p, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", p.display()))?;
    }
    Ok(watcher)
}

/// The path notify reports for the file `p`: its directory made canonical, joined with the
/// file name (the file itself may not exist).
pub fn watch_key(p: &Path) -> PathBuf {
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match p.file_name() {
        Some(name) => absolute(parent).join(name),
        None => absolute(p),
    }
}

/// The canonical path (symlinks resolved), else the absolute one.
pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_changes_only_with_content() {
        let dir = std::env::temp_dir().join(format!("pgw-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".pve-gitops")).unwrap();
        std::fs::write(dir.join("c.yaml"), "a: 1\n").unwrap();
        let src = PathSource::new(&dir);
        let r1 = src.fetch().unwrap().revision;
        std::fs::write(dir.join(".pve-gitops/status.json"), "{}").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        assert_eq!(src.fetch().unwrap().revision, r1);
        std::fs::write(dir.join("c.yaml"), "a: 2\n").unwrap();
        let f = src.fetch().unwrap();
        assert_ne!(f.revision, r1);
        assert_eq!(f.files.len(), 1);
        assert!(f.revision.starts_with("sha256:"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
