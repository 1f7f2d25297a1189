//! Running the corosync tools and the operator's start/stop commands as argument vectors (never
//! through a shell), and parsing the tools' output.
//!
//! The parsers follow the corosync 3 formats of `reference/domain.md` §3: `corosync-quorumtool
//! -s -p` ([`parse_quorum_status`]), `corosync-cmapctl` ([`parse_cmap`]), `corosync-cfgtool -s`
//! ([`parse_link_status`]) and `-n` ([`parse_node_status`]). They are lenient about white space
//! and unknown lines, strict about the fields they return, and shared with the e2e harness,
//! which checks them against a live cluster.

use crate::process::{self, StartError};
use crate::target::TargetError;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub use crate::process::{describe, Output};

/// Time limit of one corosync tool invocation.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(15);
/// Time limit of a start or stop command.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(60);

/// The [`TargetError`] of a command that did not start.
fn start_error(argv: &[String], e: StartError) -> TargetError {
    match e {
        StartError::Empty => TargetError::Unavailable("empty command".into()),
        StartError::Spawn(e) => TargetError::Command {
            command: describe(argv),
            message: format!("cannot start: {e}"),
        },
    }
}

/// Run `argv` with a time limit, capturing its output through pipes.
///
/// # Errors
/// [`TargetError::Command`] when the program cannot be started (not installed).
pub fn run(argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
    process::run(argv, None, timeout).map_err(|e| start_error(argv, e))
}

/// Run a start/stop command: its output goes to a file, not a pipe, because the command may
/// leave a daemon behind that inherits it (a pipe would never reach end-of-file).
///
/// # Errors
/// [`TargetError::Command`] when the program cannot be started.
pub fn run_service(argv: &[String], log: &Path) -> Result<Output, TargetError> {
    let (program, args) = process::program(argv).map_err(|e| start_error(argv, e))?;
    let write_error = |source| TargetError::Write {
        path: log.to_path_buf(),
        source,
    };
    // A new file only (never through a symlink or into someone else's file in /tmp).
    let f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(log)
            .map_err(write_error)?
    };
    let f2 = f.try_clone().map_err(write_error)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .spawn()
        .map_err(|e| start_error(argv, StartError::Spawn(e)))?;
    let code = process::wait(&mut child, SERVICE_TIMEOUT);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Ok(Output {
        code,
        stdout: String::new(),
        stderr: tail.join("\n"),
    })
}

/// Split a command line into words the way a POSIX shell would for plain words, `'single'`
/// and `"double"` quotes and backslash escapes — without expansions, pipes or redirections
/// (the words are run directly, never through a shell).
///
/// # Errors
/// An unterminated quote or a trailing backslash, or no words at all.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(line)
        .ok_or_else(|| format!("unterminated quote or trailing backslash in {line:?}"))?;
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

/// votequorum status as printed by `corosync-quorumtool -s -p` (or `pvecm status`, which adds
/// a header with the cluster's name and config version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// `Name:` of the PVE header (`pvecm status` only).
    pub cluster_name: Option<String>,
    /// `Config Version:` of the PVE header (`pvecm status` only).
    pub config_version: Option<u64>,
    /// `Quorate: Yes`.
    pub quorate: bool,
    /// `Node ID:`, the local node.
    pub local_nodeid: u32,
    /// `Ring ID:` as printed (`<leader hex>.<seq hex>` in corosync 3); it changes with every
    /// membership change.
    pub ring_id: String,
    /// `Expected votes:`.
    pub expected_votes: u32,
    /// `Highest expected:` (None when the line is missing).
    pub highest_expected: Option<u32>,
    /// `Total votes:`.
    pub total_votes: u32,
    /// `Quorum:` (votes needed).
    pub quorum: u32,
    /// `Flags:` words (`Quorate`, `2Node`, `WaitForAll`, `Qdevice`, ...).
    pub flags: Vec<String>,
    /// The members: (nodeid, votes, name as printed without ` (local)`), sorted by nodeid.
    /// The Qdevice row (nodeid 0) is left out.
    pub members: Vec<(u32, u32, String)>,
}

impl QuorumStatus {
    /// The members' node ids, ascending.
    pub fn member_ids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.0).collect()
    }
}

/// Decimal or `0x`-hex (`-H`) unsigned number.
fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parse `corosync-quorumtool -s [-p] [-H]` or `pvecm status` output.
///
/// # Errors
/// A missing field or a malformed membership row, named.
pub fn parse_quorum_status(text: &str) -> Result<QuorumStatus, String> {
    let field = |name: &str| -> Option<&str> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    };
    let num = |name: &str| -> Result<u32, String> {
        let v = field(name).ok_or_else(|| format!("no `{name}:` line"))?;
        parse_u32(v.split_whitespace().next().unwrap_or(""))
            .ok_or_else(|| format!("bad `{name}:` value {v:?}"))
    };
    let quorate = match field("Quorate") {
        Some("Yes") => true,
        Some("No") => false,
        other => return Err(format!("bad `Quorate:` value {other:?}")),
    };
    let mut members = Vec::new();
    let mut qdevice_column: Option<bool> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Nodeid") && t.contains("Votes") {
            qdevice_column = Some(t.split_whitespace().any(|c| c == "Qdevice"));
            continue;
        }
        let Some(qdev) = qdevice_column else { continue };
        if t.is_empty() {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let bad = || format!("bad membership row {t:?}");
        let id = words.first().and_then(|w| parse_u32(w)).ok_or_else(bad)?;
        let votes = words.get(1).and_then(|w| parse_u32(w)).ok_or_else(bad)?;
        // The name starts after Nodeid, Votes and (when present) the Qdevice column.
        let name = words
            .get(if qdev { 3 } else { 2 }..)
            .unwrap_or_default()
            .iter()
            .filter(|w| **w != "(local)")
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if id != 0 {
            members.push((id, votes, name));
        }
    }
    if qdevice_column.is_none() {
        return Err("no membership table".into());
    }
    members.sort();
    Ok(QuorumStatus {
        cluster_name: field("Name").map(str::to_string),
        config_version: field("Config Version").and_then(|v| v.parse().ok()),
        quorate,
        local_nodeid: num("Node ID")?,
        ring_id: field("Ring ID")
            .ok_or_else(|| "no `Ring ID:` line".to_string())?
            .to_string(),
        expected_votes: num("Expected votes")?,
        highest_expected: num("Highest expected").ok(),
        total_votes: num("Total votes")?,
        quorum: num("Quorum")?,
        flags: field("Flags")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        members,
    })
}

/// One `corosync-cmapctl` line: `<key> (<type>) = <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmapEntry {
    /// The key, e.g. `totem.config_version`.
    pub key: String,
    /// The type name as printed: `u8`, `u32`, `u64`, `str`, ...
    pub ty: String,
    /// The value as printed (strings keep any trailing space corosync put there).
    pub value: String,
}

impl CmapEntry {
    /// The value as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        self.value.trim().parse().ok()
    }
}

/// Parse `corosync-cmapctl` lines (`<key> (<type>) = <value>`; `-g KEY` prints one).
///
/// # Errors
/// A line that is not in that format.
pub fn parse_cmap(text: &str) -> Result<Vec<CmapEntry>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || format!("bad cmap line {line:?}");
        let (key, rest) = line.split_once(" (").ok_or_else(bad)?;
        let (ty, value) = rest.split_once(") = ").ok_or_else(bad)?;
        out.push(CmapEntry {
            key: key.to_string(),
            ty: ty.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

/// The `config_version` of each node in `runtime.members.<id>.config_version` entries.
pub fn member_config_versions(entries: &[CmapEntry]) -> Vec<(u32, u64)> {
    entries
        .iter()
        .filter_map(|e| {
            let id = e
                .key
                .strip_prefix("runtime.members.")?
                .strip_suffix(".config_version")?;
            Some((id.parse().ok()?, e.as_u64()?))
        })
        .collect()
}

/// One knet link as printed by `corosync-cfgtool -s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// `LINK ID <n>`.
    pub link: u32,
    /// The knet transport after the id (`udp`, `sctp`).
    pub transport: String,
    /// `addr = ...`, the local address on this link.
    pub addr: String,
    /// `(nodeid, status)` pairs; status is e.g. `localhost`, `connected`, `disconnected`.
    pub nodes: Vec<(u32, String)>,
}

impl LinkInfo {
    /// The status string for `nodeid` on this link.
    pub fn status_of(&self, nodeid: u32) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(n, _)| *n == nodeid)
            .map(|(_, s)| s.as_str())
    }
}

/// `corosync-cfgtool -s` output: the local node's view of its knet links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// `Local node ID <n>`.
    pub local_nodeid: u32,
    /// `transport <t>` (e.g. `knet`).
    pub transport: String,
    /// The configured links, in printed order.
    pub links: Vec<LinkInfo>,
}

impl LinkStatus {
    /// The link with number `link`.
    pub fn link(&self, link: u32) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.link == link)
    }
}

/// Parse `corosync-cfgtool -s` (corosync 3 / knet format).
///
/// # Errors
/// A malformed `LINK ID` or `nodeid:` line, or no `Local node ID` line.
pub fn parse_link_status(text: &str) -> Result<LinkStatus, String> {
    let mut local = None;
    let mut transport = String::new();
    let mut links: Vec<LinkInfo> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let bad = || format!("bad line {t:?}");
        if let Some(rest) = t.strip_prefix("Local node ID ") {
            let (id, tr) = rest.split_once(',').unwrap_or((rest, ""));
            local = id.trim().parse().ok();
            transport = tr.trim().trim_start_matches("transport").trim().to_string();
        } else if let Some(rest) = t.strip_prefix("LINK ID ") {
            let mut it = rest.split_whitespace();
            let link = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            links.push(LinkInfo {
                link,
                transport: it.next().unwrap_or("").to_string(),
                addr: String::new(),
                nodes: Vec::new(),
            });
        } else if let Some(rest) = t.strip_prefix("addr") {
            if let Some(l) = links.last_mut() {
                l.addr = rest.trim().trim_start_matches('=').trim().to_string();
            }
        } else if let Some(rest) = t.strip_prefix("nodeid:") {
            let (id, status) = rest.split_once(':').ok_or_else(bad)?;
            let id = id
                .trim()
                .parse()
                .map_err(|_| format!("bad nodeid in {t:?}"))?;
            let l = links
                .last_mut()
                .ok_or_else(|| "nodeid line before any LINK ID".to_string())?;
            l.nodes.push((id, status.trim().to_string()));
        }
    }
    Ok(LinkStatus {
        local_nodeid: local.ok_or_else(|| "no `Local node ID` line".to_string())?,
        transport,
        links,
    })
}

/// One remote node as printed by `corosync-cfgtool -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReachability {
    /// The remote node id.
    pub nodeid: u32,
    /// `reachable` appears on the node line.
    pub reachable: bool,
    /// The node's links.
    pub links: Vec<NodeLink>,
}

impl NodeReachability {
    /// The entry for link number `link`.
    pub fn link(&self, link: u32) -> Option<&NodeLink> {
        self.links.iter().find(|l| l.link == link)
    }
}

/// One `LINK:` line under a node in `corosync-cfgtool -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLink {
    /// The link number.
    pub link: u32,
    /// `(src->dst)` as printed, without parentheses.
    pub addrs: String,
    /// The word `enabled` appears.
    pub enabled: bool,
    /// The word `connected` appears.
    pub connected: bool,
}

/// Parse `corosync-cfgtool -n`: every other node's reachability, per link.
///
/// # Errors
/// A malformed `nodeid:` or `LINK:` line, or a `LINK:` line before any node.
pub fn parse_node_status(text: &str) -> Result<Vec<NodeReachability>, String> {
    let mut out: Vec<NodeReachability> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let bad = || format!("bad line {t:?}");
        if let Some(rest) = t.strip_prefix("nodeid:") {
            let mut words = rest.split_whitespace();
            let nodeid = words.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            out.push(NodeReachability {
                nodeid,
                reachable: words.any(|w| w == "reachable"),
                links: Vec::new(),
            });
        } else if let Some(rest) = t.strip_prefix("LINK:") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let link = words.first().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            let addrs = words
                .iter()
                .find(|w| w.starts_with('('))
                .map(|w| w.trim_matches(|c| c == '(' || c == ')').to_string())
                .unwrap_or_default();
            let node = out
                .last_mut()
                .ok_or_else(|| "LINK line before any nodeid".to_string())?;
            node.links.push(NodeLink {
                link,
                addrs,
                enabled: words.contains(&"enabled"),
                connected: words.contains(&"connected"),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Quorum information
------------------
Date:             Tue May  6 10:00:00 2025
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1.9
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         3          1         NR pve3
         1          1         NR pve1 (local)
         2          1         NR pve2
";

    #[test]
    fn quorum_status() {
        let s = parse_quorum_status(STATUS).unwrap();
        assert!(s.quorate);
        assert_eq!(s.local_nodeid, 1);
        assert_eq!(s.ring_id, "1.9");
        assert_eq!((s.expected_votes, s.total_votes, s.quorum), (3, 3, 2));
        assert_eq!(s.highest_expected, Some(3));
        assert_eq!(s.flags, vec!["Quorate"]);
        assert_eq!(s.member_ids(), vec![1, 2, 3]);
        assert_eq!(
            s.members,
            vec![
                (1, 1, "pve1".to_string()),
                (2, 1, "pve2".to_string()),
                (3, 1, "pve3".to_string())
            ]
        );
    }

    #[test]
    fn quorum_status_blocked_without_qdevice_column() {
        let text = STATUS
            .replace("Quorate:          Yes", "Quorate:          No")
            .replace(
                "Quorum:           2  ",
                "Quorum:           2 Activity blocked",
            )
            .replace(
                "    Nodeid      Votes    Qdevice Name",
                "    Nodeid      Votes Name",
            )
            .replace("         NR ", " ")
            .replace("Flags:            Quorate ", "Flags:            ");
        let s = parse_quorum_status(&text).unwrap();
        assert!(!s.quorate);
        assert_eq!(s.quorum, 2);
        assert_eq!(s.members[0], (1, 1, "pve1".to_string()));
        assert!(s.flags.is_empty());
    }

    #[test]
    fn quorum_status_hex_ids_and_qdevice_row() {
        let text = format!(
            "{}         0          1            Qdevice\n",
            STATUS.replace("         3          1 ", "0x00000003          1 ")
        );
        assert_eq!(
            parse_quorum_status(&text).unwrap().member_ids(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn truncated_status_is_an_error() {
        assert!(parse_quorum_status("Quorate: Yes\n").is_err());
        assert!(parse_quorum_status(&STATUS.replace("Membership", "")[..300]).is_err());
    }

    #[test]
    fn cmap_and_member_versions() {
        let e = parse_cmap(
            "runtime.members.1.config_version (u64) = 5\nruntime.members.1.ip (str) = r(0) ip(10.0.0.1) \nruntime.members.12.config_version (u64) = 4\n",
        )
        .unwrap();
        assert_eq!((e[0].ty.as_str(), e[0].as_u64()), ("u64", Some(5)));
        assert_eq!(e[1].value, "r(0) ip(10.0.0.1) ");
        assert_eq!(member_config_versions(&e), vec![(1, 5), (12, 4)]);
        assert!(parse_cmap("garbage\n").is_err());
    }

    #[test]
    fn cfgtool_s() {
        let s = parse_link_status(
            "Local node ID 2, transport knet
LINK ID 0 udp
\taddr\t= 10.99.0.2
\tstatus:
\t\tnodeid:          1:\tconnected
\t\tnodeid:          2:\tlocalhost
\t\tnodeid:          3:\tconnected
LINK ID 1 udp
\taddr\t= 10.99.1.2
\tstatus:
\t\tnodeid:          1:\tdisconnected
",
        )
        .unwrap();
        assert_eq!((s.local_nodeid, s.transport.as_str()), (2, "knet"));
        assert_eq!(s.links.len(), 2);
        assert_eq!(s.link(0).unwrap().addr, "10.99.0.2");
        assert_eq!(s.link(0).unwrap().status_of(3), Some("connected"));
        assert_eq!(s.link(1).unwrap().status_of(1), Some("disconnected"));
        assert!(parse_link_status("LINK ID 0 udp\n").is_err());
    }

    #[test]
    fn cfgtool_n() {
        let n = parse_node_status(
            "Local node ID 1, transport knet
nodeid: 2 reachable   onwire (min/max/cur): 0, 1, 1
   LINK: 0 udp (10.99.0.1->10.99.0.2) enabled connected mtu: 1397
   LINK: 1 udp (10.99.1.1->10.99.1.2) enabled mtu: 1397

nodeid: 3 reachable   onwire (min/max/cur): 0, 1, 1
   LINK: 0 udp (10.99.0.1->10.99.0.3) enabled connected mtu: 1397
",
        )
        .unwrap();
        assert_eq!(n.len(), 2);
        assert!(n[0].reachable);
        assert!(n[0].link(0).unwrap().connected);
        assert!(!n[0].link(1).unwrap().connected);
        assert!(n[0].link(1).unwrap().enabled);
        assert_eq!(n[1].link(0).unwrap().addrs, "10.99.0.1->10.99.0.3");
        assert!(parse_node_status("   LINK: 0 udp\n").is_err());
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"sh /a/b\ c.sh 'x y' "a \"q\" $b" -f"#).unwrap(),
            vec!["sh", "/a/b c.sh", "x y", "a \"q\" $b", "-f"]
        );
        assert_eq!(
            split_words("  systemctl   start corosync ").unwrap().len(),
            3
        );
        assert_eq!(split_words("a ''").unwrap(), vec!["a", ""]);
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \"b").is_err());
        assert!(split_words("a \\").is_err());
        assert!(split_words("   ").is_err());
    }

    #[test]
    fn run_captures_and_times_out() {
        let out = run(
            &[
                "sh".into(),
                "-c".into(),
                "echo hi; echo err >&2; exit 3".into(),
            ],
            TOOL_TIMEOUT,
        )
        .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "hi\n");
        assert!(out.message().contains("err"));
        let out = run(&["sleep".into(), "5".into()], Duration::from_millis(100)).unwrap();
        assert_eq!(out.code, None);
        assert!(run(&["/nonexistent/x".into()], TOOL_TIMEOUT).is_err());
    }
}
