//! `migrate_guest`: `qm migrate VMID TARGET [--online] [--migration_network CIDR]
//! [--migration_type T]` or `pct migrate VMID TARGET [--restart]`, run on the guest's node.

use crate::observed::Observed;
use pve_gitops_schema::spec::GuestType;
use serde::Serialize;

/// Move one guest to another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrateGuest {
    /// Guest id.
    pub vmid: u32,
    /// qemu or lxc.
    pub guest_type: GuestType,
    /// Current node.
    pub from: String,
    /// Target node.
    pub to: String,
    /// Live migration of a running qemu guest (`--online`).
    pub online: bool,
    /// Restart migration of a running container (`--restart`).
    pub restart: bool,
    /// `--migration_network` (qemu only).
    pub migration_network: Option<String>,
    /// `--migration_type` (qemu only).
    pub migration_type: Option<String>,
}

impl MigrateGuest {
    /// The command the step runs, as an argument vector.
    pub fn command(&self) -> Vec<String> {
        let mut v = match self.guest_type {
            GuestType::Qemu => vec!["qm".to_string(), "migrate".to_string()],
            GuestType::Lxc => vec!["pct".to_string(), "migrate".to_string()],
        };
        v.push(self.vmid.to_string());
        v.push(self.to.clone());
        match self.guest_type {
            GuestType::Qemu => {
                if self.online {
                    v.push("--online".into());
                }
                if let Some(n) = &self.migration_network {
                    v.extend(["--migration_network".into(), n.clone()]);
                }
                if let Some(t) = &self.migration_type {
                    v.extend(["--migration_type".into(), t.clone()]);
                }
            }
            GuestType::Lxc => {
                if self.restart {
                    v.push("--restart".into());
                }
            }
        }
        v
    }

    /// One line for the plan.
    pub fn summary(&self) -> String {
        format!(
            "{} {} {} -> {}: `{}`",
            self.guest_type.as_str(),
            self.vmid,
            self.from,
            self.to,
            self.command().join(" ")
        )
    }

    /// The guest's config is in the target node's directory.
    pub fn apply_model(&self, model: &mut Observed) {
        if let Some(g) = model.guests.get_mut(&self.vmid) {
            g.node = self.to.clone();
        }
    }
}
