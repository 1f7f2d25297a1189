//! `wait`: a gate the operator or the cluster must satisfy. Shown, never faked: `reconcile`
//! stops at it with exit code 1 and says what to do.

use crate::observed::Observed;
use serde::Serialize;

/// What the gate waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    /// The operator powers the node off (it must leave the membership before delnode).
    PowerOff {
        /// The node.
        node: String,
    },
    /// The operator powers the node on (to create, join or evacuate it).
    PowerOn {
        /// The node.
        node: String,
    },
    /// Every member must report the current config_version before the next membership change.
    ConfigVersion {
        /// The version.
        version: u64,
        /// Members that report another one.
        lagging: Vec<String>,
    },
    /// The cluster is not quorate and nothing in the manifest restores quorum.
    Quorum {
        /// The vote arithmetic.
        arithmetic: String,
    },
    /// The node still holds guests that cannot be migrated automatically.
    Evacuate {
        /// The node.
        node: String,
        /// The guests left, with why.
        guests: Vec<String>,
    },
}

impl Gate {
    /// A stable identifier.
    pub fn key(&self) -> String {
        match self {
            Gate::PowerOff { node } => format!("power-off:{node}"),
            Gate::PowerOn { node } => format!("power-on:{node}"),
            Gate::ConfigVersion { version, .. } => format!("config-version:{version}"),
            Gate::Quorum { .. } => "quorum".into(),
            Gate::Evacuate { node, .. } => format!("evacuate:{node}"),
        }
    }
}

/// A gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// What is waited for.
    #[serde(flatten)]
    pub gate: Gate,
}

impl Wait {
    /// What the operator (or the cluster) must do, as one line.
    pub fn summary(&self) -> String {
        match &self.gate {
            Gate::PowerOff { node } => format!(
                "power off {node} (it must leave the membership before delnode; it can never rejoin without a reinstall)"
            ),
            Gate::PowerOn { node } => format!("power on {node}"),
            Gate::ConfigVersion { version, lagging } => format!(
                "wait until {} report config_version {version}",
                lagging.join(", ")
            ),
            Gate::Quorum { arithmetic } => format!(
                "cluster is not quorate ({arithmetic}): power nodes on, or set spec.quorum.expected_votes"
            ),
            Gate::Evacuate { node, guests } => format!(
                "guests are left on {node}: {} (wait for a lock to clear, or move them by hand)",
                guests.join("; ")
            ),
        }
    }

    /// The planner assumes the gate will be satisfied, to show what comes after it.
    pub fn apply_model(&self, model: &mut Observed) {
        match &self.gate {
            Gate::PowerOff { node } => {
                if let Some(h) = model.hosts.get_mut(node) {
                    h.online = false;
                }
                model.node_config_versions.remove(node);
            }
            Gate::PowerOn { node } => {
                if let Some(h) = model.hosts.get_mut(node) {
                    h.online = true;
                }
                if model.is_joined(node) {
                    let v = model.config_version();
                    model.node_config_versions.insert(node.clone(), v);
                }
            }
            Gate::ConfigVersion { version, .. } => {
                for v in model.node_config_versions.values_mut() {
                    *v = *version;
                }
            }
            Gate::Quorum { .. } | Gate::Evacuate { .. } => {}
        }
    }
}
