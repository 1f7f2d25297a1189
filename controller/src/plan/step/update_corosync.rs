//! `update_corosync`: edit nodelist / totem / quorum options through corosync.conf.new ->
//! config_version + 1 -> rename; applied by reload (`corosync-cfgtool -R`) or, when corosync
//! cannot apply it at runtime, by a rolling restart with a quorum check between nodes.

use crate::observed::Observed;
use serde::Serialize;

/// How the running cluster picks the change up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `corosync-cfgtool -R` on one node reloads every node.
    Reload,
    /// Restart corosync one node at a time, checking quorum before each.
    RollingRestart,
}

/// One corosync.conf edit (one config_version bump).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateCorosync {
    /// What changes, one entry per edit, in words.
    pub changes: Vec<String>,
    /// Reload or rolling restart.
    pub method: Method,
    /// Why this method (e.g. "link_mode is only read at startup").
    pub method_reason: String,
    /// Restart order for a rolling restart.
    pub restart_order: Vec<String>,
    /// config_version before.
    pub from_version: u64,
    /// config_version after.
    pub to_version: u64,
    /// corosync.conf after the edit.
    #[serde(skip)]
    pub corosync_conf: String,
}

impl UpdateCorosync {
    /// One line for the plan.
    pub fn summary(&self) -> String {
        let how = match self.method {
            Method::Reload => "reload".to_string(),
            Method::RollingRestart => format!(
                "rolling restart {} ({})",
                self.restart_order.join(", "),
                self.method_reason
            ),
        };
        format!(
            "{}; config_version {} -> {}; {how}",
            self.changes.join(", "),
            self.from_version,
            self.to_version
        )
    }

    /// The new file is in effect on every online member.
    pub fn apply_model(&self, model: &mut Observed) {
        if let Ok(doc) = pve_gitops_schema::corosync::Document::parse(&self.corosync_conf) {
            model.corosync = Some(doc);
        }
        super::after_reload(model);
    }
}
