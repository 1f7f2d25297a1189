//! The simulator's one extra file, `DIR/.pve-gitops-sim.json`: what pmxcfs does not hold
//! (host power and memory, the runtime expected-votes override, which guests run, the
//! migration bandwidth). Without it (a plain copy of a node's /etc/pve) the state is derived
//! from corosync.conf and `.members`; see [`SimState::derive`].

use super::files::read_text;
use crate::target::TargetError;
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::pmxcfs::Members;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// File name of the extra file inside the simulator directory.
pub const EXTRA_FILE: &str = ".pve-gitops-sim.json";

/// The `format` this version reads and writes.
pub const FORMAT: u32 = 1;

/// Default migration bandwidth (MiB/s) when the extra file does not give one: about 10 GbE.
pub const DEFAULT_BANDWIDTH_MIB_S: u64 = 1000;

/// The content of `.pve-gitops-sim.json` (format 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimState {
    /// Always 1.
    pub format: u32,
    /// The node `.members` is rendered for (`"nodename"`), like the node the controller runs on.
    #[serde(default)]
    pub local_node: Option<String>,
    /// Every machine, clustered or standalone, by name.
    pub hosts: BTreeMap<String, SimHost>,
    /// A runtime `pvecm expected N` override; dropped by every reload or restart.
    #[serde(default)]
    pub runtime_expected_votes: Option<u32>,
    /// VMIDs of the running guests (sorted).
    #[serde(default)]
    pub running_guests: BTreeSet<u32>,
    /// Bandwidth of live migrations in MiB/s (> 0): a running guest with M MiB of memory takes
    /// M / bandwidth seconds.
    #[serde(default = "default_bandwidth")]
    pub migration_bandwidth_mib_s: u64,
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimHost {
    /// Powered on (and, when it is in the nodelist, running corosync).
    pub powered_on: bool,
    /// Memory in MiB (0 = unknown).
    #[serde(default)]
    pub memory_mib: u64,
    /// Removed from the cluster by `pvecm delnode`: it still has the old authkey and
    /// corosync.conf, so it cannot join again without a reinstall.
    #[serde(default, skip_serializing_if = "is_false")]
    pub removed: bool,
}

fn default_bandwidth() -> u64 {
    DEFAULT_BANDWIDTH_MIB_S
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl SimState {
    /// An empty state (no hosts).
    pub fn empty() -> SimState {
        SimState {
            format: FORMAT,
            local_node: None,
            hosts: BTreeMap::new(),
            runtime_expected_votes: None,
            running_guests: BTreeSet::new(),
            migration_bandwidth_mib_s: DEFAULT_BANDWIDTH_MIB_S,
        }
    }

    /// Read `DIR/.pve-gitops-sim.json`; `Ok(None)` when it does not exist.
    ///
    /// # Errors
    /// Unreadable file, invalid JSON, another `format`, a zero bandwidth.
    pub fn load(dir: &Path) -> Result<Option<SimState>, TargetError> {
        let path = dir.join(EXTRA_FILE);
        let Some(text) = read_text(&path)? else {
            return Ok(None);
        };
        let parse = |message: String| TargetError::Parse {
            path: path.clone(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(1) => {}
            Some(n) => {
                return Err(parse(format!(
                    "format {n} is not supported (this pve-gitops reads format {FORMAT})"
                )))
            }
            None => return Err(parse("missing \"format\": 1".into())),
        }
        let state: SimState = serde_json::from_value(value).map_err(|e| parse(e.to_string()))?;
        if state.migration_bandwidth_mib_s == 0 {
            return Err(parse("migration_bandwidth_mib_s must be at least 1".into()));
        }
        Ok(Some(state))
    }

    /// The file's text (pretty JSON, trailing newline).
    pub fn render(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The state of a plain /etc/pve copy without the extra file: hosts are the nodes of
    /// the corosync nodelist (named by `name`, else `ring0_addr`, as pmxcfs does), powered on
    /// when `.members` lists them online (all of them without `.members`); without
    /// corosync.conf the `.members` node name, else every `nodes/*` directory. Memory is
    /// unknown (0), no guest runs, runtime expected votes = configured ones.
    pub fn derive(
        conf: Option<&Document>,
        members: Option<&Members>,
        node_dirs: &[String],
    ) -> Self {
        let mut s = SimState::empty();
        s.local_node = members.map(|m| m.nodename.clone());
        let host = |on: bool| SimHost {
            powered_on: on,
            memory_mib: 0,
            removed: false,
        };
        match conf {
            Some(doc) => {
                for n in doc.view().nodes {
                    let Some(name) = n.name.or_else(|| n.rings.get(&0).cloned()) else {
                        continue;
                    };
                    let on = match members.filter(|m| m.cluster.is_some()) {
                        Some(m) => m.nodelist.get(&name).is_some_and(|e| e.online),
                        None => true,
                    };
                    s.hosts.insert(name, host(on));
                }
            }
            None => match members {
                Some(m) => {
                    s.hosts.insert(m.nodename.clone(), host(true));
                }
                None => {
                    for d in node_dirs {
                        s.hosts.insert(d.clone(), host(true));
                    }
                }
            },
        }
        s
    }
}
