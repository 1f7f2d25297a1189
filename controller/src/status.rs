//! The daemon's status: Flux-style conditions (`Ready`, `Reconciling`, `Stalled`), the last
//! applied and attempted revisions, the observed `config_version`, pending gates, drift and
//! the last 10 reconciles — kept in `STATE_DIR/status.json` (atomic writes, written only when
//! the content changed, so writing it never triggers anything) and shown by
//! `pve-gitops status`. `pve-gitops suspend` / `resume` set and clear a flag file next to it.
//!
//! Condition polarity follows kstatus: `Ready` is always present; `Reconciling` and `Stalled`
//! are present only while true. `lastTransitionTime` changes only when a condition's status
//! changes.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The status file's name inside the state directory.
pub const STATUS_FILE: &str = "status.json";
/// The suspend flag's name inside the state directory.
pub const SUSPEND_FILE: &str = "suspended";
/// Reconciles kept in the history.
pub const HISTORY_LEN: usize = 10;
/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = ".pve-gitops/state";

/// Condition types.
pub mod kind {
    /// The cluster matches the revision.
    pub const READY: &str = "Ready";
    /// Work is in progress or waiting (gate, retry).
    pub const RECONCILING: &str = "Reconciling";
    /// Nothing will happen until a new revision (or a change of the cluster) arrives.
    pub const STALLED: &str = "Stalled";
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True` or `False`.
    pub status: String,
    /// CamelCase reason, e.g. `ReconciliationSucceeded`.
    pub reason: String,
    /// Human-readable details.
    pub message: String,
    /// When `status` last changed (RFC 3339, UTC).
    #[serde(rename = "lastTransitionTime")]
    pub last_transition_time: String,
}

/// One reconcile in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The revision reconciled.
    pub revision: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// `in_sync`, `drift_detected`, `waiting`, `stalled`, `failed`, `cancelled`, ...
    pub result: String,
    /// Steps applied.
    pub steps_applied: usize,
    /// One line about it.
    pub message: String,
}

/// The status file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The cluster's `metadata.name`, once a manifest was read.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The source, without credentials.
    #[serde(default)]
    pub source: String,
    /// The target, as `--target` names it.
    #[serde(default)]
    pub target: String,
    /// Applying is suspended (`pve-gitops suspend`).
    #[serde(default)]
    pub suspended: bool,
    /// Ready / Reconciling / Stalled.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The newest revision whose changes are in the cluster (completely when Ready).
    #[serde(default)]
    pub last_applied_revision: Option<String>,
    /// The newest revision a reconcile was attempted for.
    #[serde(default)]
    pub last_attempted_revision: Option<String>,
    /// `totem.config_version` seen after the last reconcile.
    #[serde(default)]
    pub observed_config_version: Option<u64>,
    /// Gates and blocked steps the cluster waits on.
    #[serde(default)]
    pub pending_gates: Vec<String>,
    /// Steps that would correct drift, while drift is only reported (`--drift report`,
    /// suspended).
    #[serde(default)]
    pub drift: Vec<String>,
    /// The last reconciles, newest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Status {
    /// The condition of `kind`, if present.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Whether `Ready` is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition(kind::READY)
            .is_some_and(|c| c.status == "True")
    }

    /// Set a condition; its transition time changes only when `status` changes.
    pub fn set(&mut self, kind: &str, status: bool, reason: &str, message: &str) {
        let s = if status { "True" } else { "False" };
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                if c.status != s {
                    c.status = s.to_string();
                    c.last_transition_time = now_rfc3339();
                }
                c.reason = reason.to_string();
                c.message = message.to_string();
            }
            None => {
                self.conditions.push(Condition {
                    kind: kind.to_string(),
                    status: s.to_string(),
                    reason: reason.to_string(),
                    message: message.to_string(),
                    last_transition_time: now_rfc3339(),
                });
                let order = |k: &str| match k {
                    kind::READY => 0,
                    kind::RECONCILING => 1,
                    _ => 2,
                };
                self.conditions.sort_by_key(|c| order(&c.kind));
            }
        }
    }

    /// Remove a condition (Reconciling / Stalled when they stop being true).
    pub fn clear(&mut self, kind: &str) {
        self.conditions.retain(|c| c.kind != kind);
    }

    /// Add a reconcile to the history (newest first, at most [`HISTORY_LEN`]). A reconcile that
    /// repeats the newest entry without applying anything (a quiet periodic resync) is not
    /// added, so a steady state does not rewrite the status file.
    pub fn record(&mut self, entry: HistoryEntry) {
        if let Some(top) = self.history.first() {
            let same = top.revision == entry.revision
                && top.result == entry.result
                && top.message == entry.message
                && top.steps_applied == 0
                && entry.steps_applied == 0;
            if same {
                return;
            }
        }
        self.history.insert(0, entry);
        self.history.truncate(HISTORY_LEN);
    }
}

/// Writes `status.json`, only when its content changed.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    last: Option<String>,
}

impl StatusFile {
    /// The status file in `state_dir`.
    pub fn new(state_dir: &Path) -> StatusFile {
        StatusFile {
            path: state_dir.join(STATUS_FILE),
            last: None,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write `status` atomically if it differs from what this file holds; returns whether it
    /// wrote.
    ///
    /// # Errors
    /// The state directory cannot be written.
    pub fn write(&mut self, status: &Status) -> io::Result<bool> {
        let text = serde_json::to_string_pretty(status).map_err(io::Error::other)? + "\n";
        if self.last.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        if self.last.is_none() {
            if let Ok(old) = std::fs::read_to_string(&self.path) {
                if old == text {
                    self.last = Some(text);
                    return Ok(false);
                }
            }
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::configfs::atomic_write(&self.path, text.as_bytes())?;
        self.last = Some(text);
        Ok(true)
    }
}

/// Read `STATE_DIR/status.json` (None when there is none yet).
///
/// # Errors
/// The file exists but cannot be read or parsed.
pub fn load(state_dir: &Path) -> io::Result<Option<Status>> {
    let path = state_dir.join(STATUS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Whether applying is suspended.
pub fn is_suspended(state_dir: &Path) -> bool {
    state_dir.join(SUSPEND_FILE).exists()
}

/// Suspend applying (the daemon keeps observing and reporting drift).
///
/// # Errors
/// The state directory cannot be written.
pub fn suspend(state_dir: &Path, reason: Option<&str>) -> io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let body = serde_json::json!({ "since": now_rfc3339(), "reason": reason.unwrap_or("") });
    crate::configfs::atomic_write(
        &state_dir.join(SUSPEND_FILE),
        format!("{body}\n").as_bytes(),
    )
}

/// Resume applying. Returns whether it was suspended.
///
/// # Errors
/// The flag cannot be removed.
pub fn resume(state_dir: &Path) -> io::Result<bool> {
    match std::fs::remove_file(state_dir.join(SUSPEND_FILE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Now as RFC 3339 UTC with seconds (`2026-05-01T12:00:00Z`).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as RFC 3339 UTC with seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The status as text for `pve-gitops status`.
pub fn render_text(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let none = "-".to_string();
    let _ = writeln!(
        out,
        "Cluster:   {}",
        s.cluster.as_deref().unwrap_or("(no manifest read yet)")
    );
    let _ = writeln!(out, "Source:    {}", s.source);
    let _ = writeln!(out, "Target:    {}", s.target);
    let _ = writeln!(
        out,
        "Suspended: {}",
        if s.suspended {
            "yes (nothing is applied; drift is still reported)"
        } else {
            "no"
        }
    );
    let _ = writeln!(out, "\nConditions:");
    for c in &s.conditions {
        let _ = writeln!(
            out,
            "  {:<12} {:<5} {:<26} {}  (since {})",
            c.kind, c.status, c.reason, c.message, c.last_transition_time
        );
    }
    let _ = writeln!(
        out,
        "\nLast applied revision:   {}",
        s.last_applied_revision.as_ref().unwrap_or(&none)
    );
    let _ = writeln!(
        out,
        "Last attempted revision: {}",
        s.last_attempted_revision.as_ref().unwrap_or(&none)
    );
    let _ = writeln!(
        out,
        "Observed config_version: {}",
        s.observed_config_version
            .map_or_else(|| none.clone(), |v| v.to_string())
    );
    if s.pending_gates.is_empty() {
        let _ = writeln!(out, "Pending gates:           none");
    } else {
        let _ = writeln!(out, "Pending gates:");
        for g in &s.pending_gates {
            let _ = writeln!(out, "  - {g}");
        }
    }
    if !s.drift.is_empty() {
        let _ = writeln!(out, "Drift (not corrected):");
        for d in &s.drift {
            let _ = writeln!(out, "  - {d}");
        }
    }
    let _ = writeln!(out, "\nLast reconciles (newest first):");
    if s.history.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for h in &s.history {
        let _ = writeln!(
            out,
            "  {}  {:<16} {:>3} step(s) {:>8.3}s  {}  {}",
            h.started_at,
            h.result,
            h.steps_applied,
            h.duration_ms as f64 / 1000.0,
            short_revision(&h.revision),
            h.message
        );
    }
    out
}

/// `main@sha1:0123456789ab…` → `main@sha1:0123456789ab`; `sha256:…` likewise.
pub fn short_revision(rev: &str) -> String {
    match rev.rfind(':') {
        Some(i) if rev.len() > i + 13 => rev[..i + 13].to_string(),
        _ => rev.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn transition_time_moves_only_on_change() {
        let mut s = Status::default();
        s.set(kind::READY, false, "Progressing", "a");
        let t0 = s.conditions[0].last_transition_time.clone();
        s.conditions[0].last_transition_time = "old".into();
        s.set(kind::READY, false, "Other", "b");
        assert_eq!(s.conditions[0].last_transition_time, "old");
        s.set(kind::READY, true, "ReconciliationSucceeded", "c");
        assert_ne!(s.conditions[0].last_transition_time, "old");
        assert!(!t0.is_empty());
        s.set(kind::STALLED, true, "ValidationFailed", "x");
        s.set(kind::RECONCILING, true, "Progressing", "x");
        let kinds: Vec<&str> = s.conditions.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["Ready", "Reconciling", "Stalled"]);
        s.clear(kind::STALLED);
        assert!(s.condition(kind::STALLED).is_none());
    }

    #[test]
    fn quiet_resyncs_do_not_grow_history_or_rewrite() {
        let dir = std::env::temp_dir().join(format!("pgw-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Status::default();
        let e = |steps, at: &str| HistoryEntry {
            revision: "main@sha1:1".into(),
            started_at: at.into(),
            duration_ms: 3,
            result: "in_sync".into(),
            steps_applied: steps,
            message: String::new(),
        };
        s.record(e(2, "t1"));
        s.record(e(0, "t2"));
        s.record(e(0, "t3"));
        assert_eq!(s.history.len(), 2);
        for i in 0..20 {
            s.record(e(1, &format!("t{i}")));
        }
        assert_eq!(s.history.len(), HISTORY_LEN);
        let mut f = StatusFile::new(&dir);
        assert!(f.write(&s).unwrap());
        assert!(!f.write(&s).unwrap());
        let mut f2 = StatusFile::new(&dir);
        assert!(!f2.write(&s).unwrap());
        assert_eq!(load(&dir).unwrap(), Some(s));
        assert!(!is_suspended(&dir));
        suspend(&dir, Some("maintenance")).unwrap();
        assert!(is_suspended(&dir));
        assert!(resume(&dir).unwrap());
        assert!(!resume(&dir).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
