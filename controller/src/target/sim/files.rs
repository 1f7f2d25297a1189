//! File access of the simulator: reading text, atomic writes ([`configfs::atomic_write`]), the
//! held cfs locks (`priv/lock/<id>` directories, taken by [`crate::cfs_lock`]) and the walk
//! over guest config files.

use crate::configfs;
use crate::target::TargetError;
use pve_gitops_schema::pmxcfs::{is_valid_node_name, vmid_from_config_name, GuestType, LOCK_DIR};
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Read a UTF-8 text file; `Ok(None)` when it does not exist.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>, TargetError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| TargetError::Parse {
                path: path.to_path_buf(),
                message: format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TargetError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write `bytes` to `path` atomically ([`configfs::atomic_write`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TargetError> {
    configfs::atomic_write(path, bytes).map_err(|source| TargetError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Create a directory and its parents.
pub(crate) fn mkdir_p(path: &Path) -> Result<(), TargetError> {
    fs::create_dir_all(path).map_err(|source| TargetError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The lock directories under `priv/lock/`, sorted (empty when there are none); the hidden
/// ones (`.<id>.takeover` guards, `.<id>.stale-*` being removed) are not locks.
pub(crate) fn held_locks(root: &Path) -> Result<Vec<String>, TargetError> {
    let mut out: Vec<String> = list(&root.join(LOCK_DIR))?
        .unwrap_or_default()
        .into_iter()
        .filter(|(n, d, _)| *d && !n.starts_with('.'))
        .map(|(n, _, _)| n)
        .collect();
    out.sort();
    Ok(out)
}

/// A directory entry: name, is a directory, is a regular file.
type DirEntry = (String, bool, bool);

/// The entries of a directory ([`configfs::dir_entries`]), or `None` when it does not exist.
/// Uses the directory entry's type (no extra `stat` per entry on Linux).
fn list(path: &Path) -> Result<Option<Vec<DirEntry>>, TargetError> {
    let Some(entries) = configfs::dir_entries(path).map_err(|source| TargetError::Read {
        path: path.to_path_buf(),
        source,
    })?
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, e) in entries {
        let t = e.file_type().map_err(|source| TargetError::Read {
            path: e.path(),
            source,
        })?;
        out.push((name, t.is_dir(), t.is_file()));
    }
    Ok(Some(out))
}

/// The valid node directories under `nodes/`, sorted.
pub(crate) fn node_dirs(root: &Path) -> Result<Vec<String>, TargetError> {
    let mut dirs: Vec<String> = list(&root.join("nodes"))?
        .unwrap_or_default()
        .into_iter()
        .filter(|(n, d, _)| *d && is_valid_node_name(n))
        .map(|(n, _, _)| n)
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// One guest config file found by [`walk_guests`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found<'a> {
    /// The node directory.
    pub node: &'a str,
    /// From the type directory.
    pub gtype: GuestType,
    /// From the file name.
    pub vmid: u32,
}

/// Every guest config of `nodes` (node directory names, in that order) with pmxcfs's name
/// rules (`<vmid>.conf` exactly; `100.conf.bak` is not a guest), types in the order qemu,
/// lxc, openvz. `visit` gets the guest and its path.
pub(crate) fn walk_guests(
    root: &Path,
    nodes: &[String],
    mut visit: impl FnMut(Found<'_>, &Path) -> Result<(), TargetError>,
) -> Result<(), TargetError> {
    let base = root.join("nodes");
    for node in nodes {
        let ndir = base.join(node);
        for gtype in GuestType::ALL {
            let tdir = ndir.join(gtype.dir_name());
            let Some(entries) = list(&tdir)? else {
                continue;
            };
            for (name, _, is_file) in entries {
                if !is_file {
                    continue;
                }
                let Some(vmid) = vmid_from_config_name(&name) else {
                    continue;
                };
                visit(Found { node, gtype, vmid }, &tdir.join(&name))?;
            }
        }
    }
    Ok(())
}

/// Whether `nodes/<node>/` holds any guest config.
pub(crate) fn has_guests(root: &Path, node: &str) -> Result<bool, TargetError> {
    let mut any = false;
    walk_guests(root, &[node.to_string()], |_, _| {
        any = true;
        Ok(())
    })?;
    Ok(any)
}

/// What the simulator reads from a guest config's main section.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct GuestMain {
    /// `lock:`.
    pub lock: Option<String>,
    /// `memory:` in MiB.
    pub memory_mib: Option<u64>,
}

/// Read `path` into `buf` (reused between files) and scan its main section for `lock:` and
/// `memory:`, with the rules of `pmxcfs::GuestConfig::parse` (last one wins, stop at the
/// first section header). No allocation except for a present `lock:` value.
pub(crate) fn read_guest_main(path: &Path, buf: &mut Vec<u8>) -> Result<GuestMain, TargetError> {
    buf.clear();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(buf))
        .map_err(|source| TargetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(scan_main(buf))
}

/// The scanner of [`read_guest_main`].
pub(crate) fn scan_main(text: &[u8]) -> GuestMain {
    let mut out = GuestMain::default();
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_section_header(line) {
            break;
        }
        if let Some(v) = value_of(line, b"lock:") {
            out.lock = std::str::from_utf8(v).ok().map(str::to_string);
        } else if let Some(v) = value_of(line, b"memory:") {
            out.memory_mib = parse_memory(v).or(out.memory_mib);
        }
    }
    out
}

/// The trimmed, non-empty value of a `key: value` line whose key (with colon) is `key`.
fn value_of<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let v = line.strip_prefix(key)?.trim_ascii();
    (!v.is_empty()).then_some(v)
}

/// qemu `[current=]<n>` or lxc `<n>`.
fn parse_memory(v: &[u8]) -> Option<u64> {
    let part = v
        .split(|b| *b == b',')
        .find_map(|p| match p.iter().position(|b| *b == b'=') {
            None => Some(p),
            Some(i) if &p[..i] == b"current" => Some(&p[i + 1..]),
            Some(_) => None,
        })?;
    std::str::from_utf8(part).ok()?.parse().ok()
}

/// `^\[([a-z][a-z0-9_\-]+)\]\s*$`i, also `[special:<name>]`.
fn is_section_header(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"[") else {
        return false;
    };
    let Some(end) = rest.iter().position(|b| *b == b']') else {
        return false;
    };
    if !rest[end + 1..].iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    let name = &rest[..end];
    let name = match name.strip_prefix(b"special:") {
        Some(n) if !n.is_empty() => n,
        _ => name,
    };
    name.len() >= 2
        && name[0].is_ascii_alphabetic()
        && name[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pve_gitops_schema::pmxcfs::GuestConfig;

    #[test]
    fn scan_matches_guest_config_parse() {
        let cases = [
            "memory: 2048\nlock: backup\n",
            "memory: current=4096,max=8192\r\nlock:migrate\r\n[snap1]\nlock: snapshot\nmemory: 1\n",
            "#desc\nmemory:\nmemory: 512\nlock: \n",
            "[PENDING]\nmemory: 5\n",
            "name: x\n[not a header\nmemory: 7",
        ];
        for c in cases {
            let g = GuestConfig::parse(c);
            let s = scan_main(c.as_bytes());
            assert_eq!((s.lock, s.memory_mib), (g.lock, g.memory_mib), "{c:?}");
        }
    }
}
