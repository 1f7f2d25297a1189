//! `create_cluster`: `pvecm create NAME --link0 ..` / write the first corosync.conf and authkey,
//! start corosync on the founding node (the lowest nodeid of the manifest).

use crate::observed::Observed;
use pve_gitops_schema::corosync::Document;
use serde::Serialize;
use std::collections::BTreeMap;

/// Create the cluster on `founder`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateCluster {
    /// totem.cluster_name.
    pub cluster_name: String,
    /// The founding node.
    pub founder: String,
    /// Its nodeid.
    pub nodeid: u32,
    /// Its votes.
    pub quorum_votes: u32,
    /// Its address per link.
    pub links: BTreeMap<u8, String>,
    /// The corosync.conf to write (config_version 1).
    #[serde(skip)]
    pub corosync_conf: String,
}

impl CreateCluster {
    /// One line for the plan.
    pub fn summary(&self) -> String {
        format!(
            "create cluster {} on {} (nodeid {}, {})",
            self.cluster_name,
            self.founder,
            self.nodeid,
            super::links_text(&self.links)
        )
    }

    /// The founder is a one-node cluster running config_version 1.
    pub fn apply_model(&self, model: &mut Observed) {
        if let Ok(doc) = Document::parse(&self.corosync_conf) {
            model.corosync = Some(doc);
        }
        if let Some(h) = model.hosts.get_mut(&self.founder) {
            h.online = true;
        }
        model.membership.runtime_expected = None;
        model.node_config_versions = [(self.founder.clone(), model.config_version())].into();
    }
}
