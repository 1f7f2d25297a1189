//! Guest config files (`nodes/<node>/{qemu-server,lxc}/<vmid>.conf`): the few fields the
//! controller reads, and the small edits the simulator makes.

use super::names::{is_valid_node_name, GuestType};
use serde::Serialize;
use std::ops::Range;
use thiserror::Error;

/// The fields pve-gitops reads from a guest config's main section.
///
/// Only the main section counts: reading stops at the first section header (`[snapname]`,
/// `[PENDING]`, `[special:cloudinit]`), so a snapshot's own `lock:` line is not the guest's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GuestConfig {
    /// `lock:` — an operation in flight (`migrate`, `backup`, `snapshot`, …).
    pub lock: Option<String>,
    /// `memory:` in MiB (qemu's `[current=]<n>` or lxc's `<n>`).
    pub memory_mib: Option<u64>,
    /// `cores:`.
    pub cores: Option<u32>,
    /// `name:` (qemu).
    pub name: Option<String>,
    /// `hostname:` (lxc).
    pub hostname: Option<String>,
    /// The `#` lines of the main section (text after `#`, not decoded): the description.
    pub description: Vec<String>,
}

/// Why a guest config edit or render was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuestConfigError {
    /// The value would not read back unchanged or is not allowed by PVE.
    #[error("invalid value for guest config key '{key}': {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl GuestConfig {
    /// Read `text` tolerantly: never fails, unknown and malformed lines are ignored,
    /// duplicate keys: the last one wins. Key lines follow qemu-server's
    /// `^([a-z][a-z_]*\d*):\s*(.+?)\s*$`.
    pub fn parse(text: &str) -> GuestConfig {
        let mut c = GuestConfig::default();
        for line in main_section(text) {
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(d) = line.strip_prefix('#') {
                c.description.push(d.to_string());
                continue;
            }
            let Some((key, value)) = key_line(line) else {
                continue;
            };
            let value = &line[value];
            match &line[key] {
                "lock" => c.lock = Some(value.to_string()),
                "memory" => c.memory_mib = parse_memory(value).or(c.memory_mib),
                "cores" => c.cores = value.parse().ok().or(c.cores),
                "name" => c.name = Some(value.to_string()),
                "hostname" => c.hostname = Some(value.to_string()),
                _ => {}
            }
        }
        c
    }

    /// `name`, else `hostname`.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.hostname.as_deref())
    }

    /// A minimal config for a new simulated guest, keys sorted as PVE writes them:
    /// `cores`, `memory` and `name` (qemu) or `hostname` (lxc, openvz). `name` must be a DNS
    /// name (`[A-Za-z0-9-]` labels, `-` not first or last, separated by `.`).
    pub fn render_minimal(
        gtype: GuestType,
        memory_mib: u64,
        cores: u32,
        name: Option<&str>,
    ) -> Result<String, GuestConfigError> {
        let name_key = match gtype {
            GuestType::Qemu => "name",
            GuestType::Lxc | GuestType::Openvz => "hostname",
        };
        if let Some(n) = name {
            if !n.split('.').all(is_valid_node_name) {
                return Err(GuestConfigError::InvalidValue {
                    key: if gtype == GuestType::Qemu {
                        "name"
                    } else {
                        "hostname"
                    },
                    reason: "not a DNS name",
                });
            }
        }
        if cores == 0 {
            return Err(GuestConfigError::InvalidValue {
                key: "cores",
                reason: "must be at least 1",
            });
        }
        let mut lines = vec![format!("cores: {cores}")];
        let mem = format!("memory: {memory_mib}");
        let named = name.map(|n| format!("{name_key}: {n}"));
        // `hostname` sorts before `memory`, `name` after it.
        match (gtype, named) {
            (GuestType::Qemu, Some(n)) => lines.extend([mem, n]),
            (_, Some(n)) => lines.extend([n, mem]),
            (_, None) => lines.push(mem),
        }
        let mut out = lines.join("\n");
        out.push('\n');
        Ok(out)
    }
}

/// Set the main section's `lock:` to `lock`, keeping every other byte.
///
/// The last `lock:` line of the main section gets the new value (its separator and line
/// ending kept); without one, `lock: <lock>` is added after the last non-blank line of the
/// main section. `lock` must be a non-empty word of `[a-z0-9_-]`.
pub fn set_lock(text: &str, lock: &str) -> Result<String, GuestConfigError> {
    if lock.is_empty()
        || !lock
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(GuestConfigError::InvalidValue {
            key: "lock",
            reason: "must be a non-empty word of [a-z0-9_-]",
        });
    }
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let main_len = main_section(text).count();
    let existing = (0..main_len).rev().find_map(|i| {
        let (body, _) = split_eol(&lines[i]);
        let (k, v) = key_line(body)?;
        (&body[k] == "lock").then_some((i, v))
    });
    if let Some((i, v)) = existing {
        let line = &lines[i];
        lines[i] = format!("{}{lock}{}", &line[..v.start], &line[v.end..]);
        return Ok(lines.concat());
    }
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let at = (0..main_len)
        .rev()
        .find(|&i| !split_eol(&lines[i]).0.trim().is_empty())
        .map(|i| i + 1)
        .unwrap_or(0);
    let mut new = format!("lock: {lock}{eol}");
    if at > 0 {
        if let Some(prev) = lines.get_mut(at - 1) {
            if !prev.ends_with('\n') {
                prev.push_str(eol);
                if at == lines.len() {
                    new.truncate(new.len() - eol.len());
                }
            }
        }
    }
    lines.insert(at, new);
    Ok(lines.concat())
}

/// Remove every `lock:` line of the main section, keeping every other byte (a missing
/// final newline stays missing). Snapshot sections keep their `lock:` lines.
pub fn remove_lock(text: &str) -> String {
    let main_len = main_section(text).count();
    let pieces: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out: Vec<&str> = Vec::with_capacity(pieces.len());
    let mut removed_last = false;
    for (i, p) in pieces.iter().enumerate() {
        let is_lock = i < main_len
            && key_line(split_eol(p).0).is_some_and(|(k, _)| &split_eol(p).0[k] == "lock");
        if is_lock {
            removed_last = i + 1 == pieces.len();
        } else {
            out.push(p);
        }
    }
    let mut s = out.concat();
    if removed_last && !text.ends_with('\n') {
        if let Some(t) = s.strip_suffix('\n') {
            s = t.strip_suffix('\r').unwrap_or(t).to_string();
        }
    }
    s
}

/// The lines (with endings) before the first section header.
fn main_section(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n')
        .take_while(|l| !is_section_header(split_eol(l).0))
}

/// `line` without its `\n` / `\r\n`, and the ending.
fn split_eol(line: &str) -> (&str, &str) {
    if let Some(b) = line.strip_suffix("\r\n") {
        (b, "\r\n")
    } else if let Some(b) = line.strip_suffix('\n') {
        (b, "\n")
    } else {
        (line, "")
    }
}

/// `[PENDING]`, `[special:cloudinit]`, `[snapname]` (`^\[([a-z][a-z0-9_\-]+)\]\s*$`i).
fn is_section_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some(end) = rest.find(']') else {
        return false;
    };
    if !rest[end + 1..].chars().all(|c| c.is_ascii_whitespace()) {
        return false;
    }
    let name = &rest[..end];
    let name = name
        .strip_prefix("special:")
        .filter(|n| !n.is_empty())
        .unwrap_or(name);
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// `^([a-z][a-z_]*\d*):\s*(.+?)\s*$` → byte ranges of key and value.
fn key_line(line: &str) -> Option<(Range<usize>, Range<usize>)> {
    let b = line.as_bytes();
    if !b.first()?.is_ascii_lowercase() {
        return None;
    }
    let mut i = 1;
    while i < b.len() && (b[i].is_ascii_lowercase() || b[i] == b'_') {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    let key = 0..i;
    let after = &line[i + 1..];
    let vstart = i + 1 + (after.len() - after.trim_start().len());
    let vend = line.trim_end().len();
    (vend > vstart).then_some((key, vstart..vend))
}

/// qemu `[current=]<n>` or lxc `<n>`.
fn parse_memory(v: &str) -> Option<u64> {
    v.split(',')
        .find_map(|p| match p.split_once('=') {
            None => Some(p),
            Some(("current", n)) => Some(n),
            Some(_) => None,
        })?
        .parse()
        .ok()
}
