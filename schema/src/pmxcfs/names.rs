//! pmxcfs name rules: node names, guest types and guest config paths (`memdb.c`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kind of guest a config file belongs to (`.vmlist` `"type"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestType {
    /// QEMU/KVM virtual machine (`qemu-server/`).
    Qemu,
    /// LXC container (`lxc/`).
    Lxc,
    /// OpenVZ container (`openvz/`, PVE 3 and older; still indexed by pmxcfs).
    Openvz,
}

impl GuestType {
    /// All guest types.
    pub const ALL: [GuestType; 3] = [GuestType::Qemu, GuestType::Lxc, GuestType::Openvz];

    /// The `.vmlist` name: `qemu`, `lxc`, `openvz`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestType::Qemu => "qemu",
            GuestType::Lxc => "lxc",
            GuestType::Openvz => "openvz",
        }
    }

    /// The directory under `nodes/<node>/`: `qemu-server`, `lxc`, `openvz`.
    pub fn dir_name(self) -> &'static str {
        match self {
            GuestType::Qemu => "qemu-server",
            GuestType::Lxc => "lxc",
            GuestType::Openvz => "openvz",
        }
    }

    /// The type whose directory is `dir` (`qemu-server` → `Qemu`).
    pub fn from_dir_name(dir: &str) -> Option<GuestType> {
        GuestType::ALL.into_iter().find(|t| t.dir_name() == dir)
    }
}

impl fmt::Display for GuestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GuestType {
    type Err = String;

    /// `qemu`, `lxc` or `openvz`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GuestType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown guest type '{s}' (expected qemu, lxc or openvz)"))
    }
}

/// pmxcfs's `valid_nodename`: non-empty, only `[A-Za-z0-9-]`, `-` neither first nor last.
/// No length limit (pmxcfs has none).
pub fn is_valid_node_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || (*c == b'-' && i != 0 && i != b.len() - 1))
}

/// pmxcfs's `name_is_vm_config`: `^[1-9][0-9]*\.conf$` with the number ≤ `u32::MAX`.
pub fn vmid_from_config_name(file: &str) -> Option<u32> {
    let digits = file.strip_suffix(".conf")?;
    let first = *digits.as_bytes().first()?;
    if !(b'1'..=b'9').contains(&first) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A guest config file located by its path: which node, which kind, which VMID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GuestRef {
    /// The node directory the config is in.
    pub node: String,
    /// The guest type (from the directory).
    pub gtype: GuestType,
    /// The VMID (from the file name).
    pub vmid: u32,
}

impl GuestRef {
    /// The config path relative to the pmxcfs root: `nodes/<node>/<dir>/<vmid>.conf`.
    pub fn config_path(&self) -> String {
        format!(
            "nodes/{}/{}/{}.conf",
            self.node,
            self.gtype.dir_name(),
            self.vmid
        )
    }
}

/// The guest a pmxcfs path is the config of, with pmxcfs's exact rules, or `None`.
///
/// `rel` is relative to the pmxcfs root (`/etc/pve`); one leading `/` is accepted. Exactly
/// `nodes/<node>/{qemu-server,lxc,openvz}/<vmid>.conf`, where `<node>` passes
/// [`is_valid_node_name`] and the file name [`vmid_from_config_name`]: `100.conf.bak`,
/// `100.conf.tmp.1234`, `0100.conf` and `nodes/pve1/qemu-server/sub/100.conf` are not configs.
pub fn parse_guest_path(rel: &str) -> Option<GuestRef> {
    let rel = rel.strip_prefix('/').unwrap_or(rel);
    let mut parts = rel.split('/');
    let (Some("nodes"), Some(node), Some(dir), Some(file), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !is_valid_node_name(node) {
        return None;
    }
    Some(GuestRef {
        node: node.to_string(),
        gtype: GuestType::from_dir_name(dir)?,
        vmid: vmid_from_config_name(file)?,
    })
}
