//! `remove_node`: `pvecm delnode NAME` from another quorate member, after the node's guests are
//! evacuated and it has left the membership (powered off). delnode leaves `nodes/NAME` behind.

use crate::observed::Observed;
use serde::Serialize;

/// Remove `node` from the nodelist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoveNode {
    /// The node to remove.
    pub node: String,
    /// The member that runs delnode (never the node itself).
    pub via: String,
    /// config_version before.
    pub from_version: u64,
    /// config_version after.
    pub to_version: u64,
    /// corosync.conf after the edit.
    #[serde(skip)]
    pub corosync_conf: String,
}

impl RemoveNode {
    /// One line for the plan.
    pub fn summary(&self) -> String {
        format!(
            "delnode {} via {}; config_version {} -> {}",
            self.node, self.via, self.from_version, self.to_version
        )
    }

    /// The node is gone from the nodelist; its directory stays behind.
    pub fn apply_model(&self, model: &mut Observed) {
        if let Ok(doc) = pve_gitops_schema::corosync::Document::parse(&self.corosync_conf) {
            model.corosync = Some(doc);
        }
        if model.guests_on(&self.node).next().is_some()
            && !model.leftover_node_dirs.contains(&self.node)
        {
            model.leftover_node_dirs.push(self.node.clone());
        }
        super::after_reload(model);
    }
}
