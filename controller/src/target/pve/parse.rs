//! Parsers of the documented outputs the PVE targets read (reference/domain.md §3, §5):
//! `pvecm status` / `corosync-quorumtool -s [-p] [-H]`, `corosync-cmapctl`, `ip -o addr`,
//! `pveversion`, and the JSON shapes of the REST API (task status, `/cluster/status`,
//! `/cluster/resources`, join information) that `pvesh` prints as well.
//!
//! Every parser is pure and returns an error naming what is missing; none panics on input.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The PVE generation, which decides the `pvecm create/add` link options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// PVE ≤ 5, corosync 2: `--ring0_addr A --bindnet0_addr N`.
    Corosync2,
    /// PVE ≥ 6, corosync 3 (knet): `--link0 A[,priority=N]`.
    Corosync3,
}

impl Generation {
    /// From `corosync -v` (`Corosync Cluster Engine, version '3.1.7'`) or `pveversion`
    /// (`pve-manager/8.2.4/...`): corosync major ≥ 3 or pve-manager major ≥ 6 is corosync 3.
    pub fn from_version_output(text: &str) -> Option<Generation> {
        let major = |v: &str| -> Option<u32> {
            v.trim_matches(|c: char| c == '\'' || c == '"')
                .split('.')
                .next()?
                .parse()
                .ok()
        };
        if let Some(rest) = text.split("version '").nth(1) {
            let m = major(rest.split('\'').next()?)?;
            return Some(if m >= 3 {
                Generation::Corosync3
            } else {
                Generation::Corosync2
            });
        }
        let rest = text.split("pve-manager/").nth(1)?;
        let m = major(rest.split('/').next()?)?;
        Some(if m >= 6 {
            Generation::Corosync3
        } else {
            Generation::Corosync2
        })
    }

    /// From the shape of a corosync.conf: `rrp_mode`, `ringnumber` interfaces, `udp`/`udpu`
    /// transport without knet or `bindnetaddr` mean corosync 2; `link_mode`, `linknumber`,
    /// `knet` (or no transport: knet is the cs3 default) mean corosync 3.
    pub fn from_conf(view: &pve_gitops_schema::corosync::CorosyncConf) -> Generation {
        use pve_gitops_schema::corosync::LinkNumberKey;
        let t = &view.totem;
        if t.link_mode.is_some() || t.transport.as_deref() == Some("knet") {
            return Generation::Corosync3;
        }
        let ringnumber = t
            .interfaces
            .values()
            .any(|i| i.number_key == LinkNumberKey::Ringnumber);
        let linknumber = t
            .interfaces
            .values()
            .any(|i| i.number_key == LinkNumberKey::Linknumber);
        if linknumber {
            return Generation::Corosync3;
        }
        if t.rrp_mode.is_some()
            || ringnumber
            || matches!(t.transport.as_deref(), Some("udp" | "udpu"))
        {
            return Generation::Corosync2;
        }
        Generation::Corosync3
    }
}

/// votequorum status from `pvecm status` or `corosync-quorumtool -s [-p] [-H]`: the corosync
/// target's parser (`pvecm status` adds the `Name:` / `Config Version:` header).
pub use crate::target::corosync::tools::{parse_quorum_status, QuorumStatus};

/// `corosync-cmapctl` lines (`<key> (<type>) = <value>`): the corosync target's parser.
pub use crate::target::corosync::tools::{parse_cmap, CmapEntry};

/// One `runtime.members.<id>` entry (cs3; cs2 uses `runtime.totem.pg.mrp.srp.members.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeMember {
    /// `status` (`joined` / `left`; left entries persist).
    pub status: Option<String>,
    /// `config_version`.
    pub config_version: Option<u64>,
}

/// `runtime.members.*` entries by nodeid (both the cs3 and the cs2 prefix).
pub fn runtime_members(entries: &[CmapEntry]) -> BTreeMap<u32, RuntimeMember> {
    let mut out: BTreeMap<u32, RuntimeMember> = BTreeMap::new();
    for CmapEntry {
        key: k, value: v, ..
    } in entries
    {
        let rest = k
            .strip_prefix("runtime.members.")
            .or_else(|| k.strip_prefix("runtime.totem.pg.mrp.srp.members."));
        let Some((id, field)) = rest.and_then(|r| r.split_once('.')) else {
            continue;
        };
        let Ok(id) = id.parse::<u32>() else { continue };
        let m = out.entry(id).or_default();
        match field {
            "status" => m.status = Some(v.trim().to_string()),
            "config_version" => m.config_version = v.trim().parse().ok(),
            _ => {}
        }
    }
    out
}

/// Whether `ip -o addr show to ADDR up` output lists an address (one line per address:
/// `2: eth0    inet 10.0.0.1/24 brd ... scope global eth0\       valid_lft ...`).
pub fn ip_addr_lists_address(text: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().any(|w| w == "inet" || w == "inet6"))
}

/// A task status (`GET /nodes/N/tasks/UPID/status`, `pvesh get ... --output-format json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    pub status: String,
    /// `OK`, `WARNINGS: n`, or the error, once stopped.
    #[serde(default)]
    pub exitstatus: Option<String>,
    /// The UPID.
    #[serde(default)]
    pub upid: Option<String>,
    /// Task type (`qmigrate`, `clusterjoin`, ...).
    #[serde(default, rename = "type")]
    pub task_type: Option<String>,
}

impl TaskStatus {
    /// Stopped.
    pub fn finished(&self) -> bool {
        self.status == "stopped"
    }

    /// Stopped with `OK` (or only warnings).
    pub fn succeeded(&self) -> bool {
        self.finished()
            && self
                .exitstatus
                .as_deref()
                .is_some_and(|e| e == "OK" || e.starts_with("WARNINGS"))
    }
}

/// One line of a task log (`GET /nodes/N/tasks/UPID/log`): `{n, t}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskLogLine {
    /// Line number.
    pub n: u64,
    /// Text.
    pub t: String,
}

/// A UPID: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    /// The whole string.
    pub text: String,
    /// The node that runs the task.
    pub node: String,
    /// Task type.
    pub task_type: String,
}

impl Upid {
    /// Parse a UPID.
    pub fn parse(s: &str) -> Option<Upid> {
        let s = s.trim();
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() < 8 || parts[0] != "UPID" || parts[1].is_empty() {
            return None;
        }
        Some(Upid {
            text: s.to_string(),
            node: parts[1].to_string(),
            task_type: parts[5].to_string(),
        })
    }

    /// The first UPID in some output (`qm migrate` of an HA guest, `pvesh` output).
    pub fn find(text: &str) -> Option<Upid> {
        text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .find_map(|w| w.find("UPID:").and_then(|i| Upid::parse(&w[i..])))
    }
}

fn de_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0) != 0,
        serde_json::Value::String(s) => s == "1" || s == "true",
        _ => false,
    })
}

fn de_u64_lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

/// One entry of `GET /cluster/status`: the `cluster` entry or a `node` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterStatusEntry {
    /// `cluster` or `node`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Cluster or node name.
    #[serde(default)]
    pub name: String,
    /// Node id (0 for a standalone node).
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub nodeid: Option<u64>,
    /// Online (node entries).
    #[serde(default, deserialize_with = "de_flag")]
    pub online: bool,
    /// The node the API answered from.
    #[serde(default, deserialize_with = "de_flag")]
    pub local: bool,
    /// Quorate (cluster entry).
    #[serde(default, deserialize_with = "de_flag")]
    pub quorate: bool,
    /// config_version (cluster entry).
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub version: Option<u64>,
    /// Node count (cluster entry).
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub nodes: Option<u64>,
    /// The node's IP (node entries).
    #[serde(default)]
    pub ip: Option<String>,
}

/// One guest of `GET /cluster/resources?type=vm` (also `pvesh get /cluster/resources`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceEntry {
    /// `qemu`, `lxc`, `node`, `storage`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Guest id.
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub vmid: Option<u64>,
    /// The node.
    #[serde(default)]
    pub node: String,
    /// `running` / `stopped`.
    #[serde(default)]
    pub status: Option<String>,
    /// Configured memory in bytes.
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub maxmem: Option<u64>,
    /// A config lock, when set.
    #[serde(default)]
    pub lock: Option<String>,
    /// Template flag.
    #[serde(default, deserialize_with = "de_flag")]
    pub template: bool,
}

/// One node of the join information (`GET /cluster/config/join` `nodelist`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JoinNodeInfo {
    /// Node name.
    pub name: String,
    /// The node's API address.
    #[serde(default)]
    pub pve_addr: Option<String>,
    /// The SHA-256 fingerprint of its API certificate (`XX:XX:...`).
    #[serde(default)]
    pub pve_fp: Option<String>,
    /// Node id.
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub nodeid: Option<u64>,
    /// Votes.
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub quorum_votes: Option<u64>,
    /// `ring0_addr`.
    #[serde(default)]
    pub ring0_addr: Option<String>,
}

/// `GET /cluster/config/join`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JoinInfo {
    /// The nodes.
    pub nodelist: Vec<JoinNodeInfo>,
    /// The node the information came from.
    #[serde(default)]
    pub preferred_node: Option<String>,
    /// SHA-1 of corosync.conf.
    #[serde(default)]
    pub config_digest: Option<String>,
}

impl JoinInfo {
    /// The node `name`.
    pub fn node(&self, name: &str) -> Option<&JoinNodeInfo> {
        self.nodelist.iter().find(|n| n.name == name)
    }
}

/// Whether `fp` is a SHA-256 fingerprint in PVE's spelling: 32 colon-separated hex bytes.
pub fn is_fingerprint(fp: &str) -> bool {
    let parts: Vec<&str> = fp.split(':').collect();
    parts.len() == 32
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Normalise a fingerprint for comparison (upper case; `:` kept).
pub fn normalize_fingerprint(fp: &str) -> String {
    fp.trim().to_ascii_uppercase()
}
