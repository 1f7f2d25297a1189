//! `join_node`: `pvecm add PEER --link0 ..` / a quorate member adds the node to the nodelist
//! (config_version + 1, reload), then the joining node installs conf + authkey and starts.

use crate::observed::Observed;
use serde::Serialize;
use std::collections::BTreeMap;

/// Join `node` to the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinNode {
    /// The joining node.
    pub node: String,
    /// Its nodeid.
    pub nodeid: u32,
    /// Its votes.
    pub quorum_votes: u32,
    /// Its address per link.
    pub links: BTreeMap<u8, String>,
    /// The quorate member that edits the nodelist.
    pub via: String,
    /// config_version before the nodelist edit.
    pub from_version: u64,
    /// config_version after it.
    pub to_version: u64,
    /// corosync.conf after the edit.
    #[serde(skip)]
    pub corosync_conf: String,
}

impl JoinNode {
    /// One line for the plan.
    pub fn summary(&self) -> String {
        format!(
            "join {} (nodeid {}, {}) via {}; config_version {} -> {}",
            self.node,
            self.nodeid,
            super::links_text(&self.links),
            self.via,
            self.from_version,
            self.to_version
        )
    }

    /// The node is in the nodelist and the membership; every member runs the new version.
    pub fn apply_model(&self, model: &mut Observed) {
        if let Ok(doc) = pve_gitops_schema::corosync::Document::parse(&self.corosync_conf) {
            model.corosync = Some(doc);
        }
        if let Some(h) = model.hosts.get_mut(&self.node) {
            h.online = true;
        }
        super::after_reload(model);
    }
}
