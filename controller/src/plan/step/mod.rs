//! Plan steps: one module per step kind (DESIGN.md §2). Each kind is a plain data struct with
//! `apply_model`, which changes the planner's model exactly as the real step changes the
//! cluster, and `summary`, the one-line description shown by `--dry-run`.

pub mod create_cluster;
pub mod join_node;
pub mod migrate_guest;
pub mod remove_node;
pub mod set_datacenter;
pub mod set_expected_votes;
pub mod update_corosync;
pub mod wait;

use crate::observed::Observed;
use serde::Serialize;
use std::collections::BTreeMap;

pub use create_cluster::CreateCluster;
pub use join_node::JoinNode;
pub use migrate_guest::MigrateGuest;
pub use remove_node::RemoveNode;
pub use set_datacenter::SetDatacenter;
pub use set_expected_votes::SetExpectedVotes;
pub use update_corosync::{Method, UpdateCorosync};
pub use wait::{Gate, Wait};

/// What a step does, with the data to do it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// Create the cluster on the founding node.
    CreateCluster(CreateCluster),
    /// Add a node to the nodelist and start it.
    JoinNode(JoinNode),
    /// Edit corosync.conf (reload or rolling restart).
    UpdateCorosync(UpdateCorosync),
    /// Runtime expected-votes override.
    SetExpectedVotes(SetExpectedVotes),
    /// One datacenter.cfg key.
    SetDatacenter(SetDatacenter),
    /// Move one guest.
    MigrateGuest(MigrateGuest),
    /// A gate the operator or the cluster must satisfy.
    Wait(Wait),
    /// delnode.
    RemoveNode(RemoveNode),
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The kind and its data (serialized flat, with `kind`).
    #[serde(flatten)]
    pub kind: StepKind,
    /// The node the step runs on (or is about).
    pub node: String,
    /// One line: what the step does.
    pub summary: String,
    /// Why the step is needed.
    pub reason: String,
    /// Why the step cannot run now (a gate before it, or a refusal rule), if so.
    pub blocked: Option<String>,
}

impl StepKind {
    /// The `kind` string of the JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::CreateCluster(_) => "create_cluster",
            StepKind::JoinNode(_) => "join_node",
            StepKind::UpdateCorosync(_) => "update_corosync",
            StepKind::SetExpectedVotes(_) => "set_expected_votes",
            StepKind::SetDatacenter(_) => "set_datacenter",
            StepKind::MigrateGuest(_) => "migrate_guest",
            StepKind::Wait(_) => "wait",
            StepKind::RemoveNode(_) => "remove_node",
        }
    }
}

impl Step {
    /// A step that is not blocked.
    pub fn new(kind: StepKind, node: impl Into<String>, reason: impl Into<String>) -> Step {
        let summary = match &kind {
            StepKind::CreateCluster(s) => s.summary(),
            StepKind::JoinNode(s) => s.summary(),
            StepKind::UpdateCorosync(s) => s.summary(),
            StepKind::SetExpectedVotes(s) => s.summary(),
            StepKind::SetDatacenter(s) => s.summary(),
            StepKind::MigrateGuest(s) => s.summary(),
            StepKind::Wait(s) => s.summary(),
            StepKind::RemoveNode(s) => s.summary(),
        };
        Step {
            kind,
            node: node.into(),
            summary,
            reason: reason.into(),
            blocked: None,
        }
    }

    /// Mark the step blocked with `why`.
    pub fn blocked(mut self, why: impl Into<String>) -> Step {
        self.blocked = Some(why.into());
        self
    }

    /// A key identifying the step's target, stable across re-planning (`join_node:pve4`).
    pub fn key(&self) -> String {
        let detail = match &self.kind {
            StepKind::MigrateGuest(m) => m.vmid.to_string(),
            StepKind::SetDatacenter(d) => d.key.clone(),
            StepKind::Wait(w) => w.gate.key(),
            StepKind::UpdateCorosync(u) => u.changes.join(";"),
            _ => self.node.clone(),
        };
        format!("{}:{}", self.kind.name(), detail)
    }

    /// `+` create/join, `-` remove, `~` change, `>` migrate, `!` gate (terraform-plan style).
    pub fn marker(&self) -> char {
        match self.kind {
            StepKind::CreateCluster(_) | StepKind::JoinNode(_) => '+',
            StepKind::RemoveNode(_) => '-',
            StepKind::MigrateGuest(_) => '>',
            StepKind::Wait(_) => '!',
            _ => '~',
        }
    }

    /// Whether the step changes membership or votes (then the quorum replay checks it).
    pub fn affects_quorum(&self) -> bool {
        !matches!(
            self.kind,
            StepKind::SetDatacenter(_) | StepKind::MigrateGuest(_)
        )
    }

    /// Change `model` as the real step changes the cluster.
    pub fn apply_model(&self, model: &mut Observed) {
        match &self.kind {
            StepKind::CreateCluster(s) => s.apply_model(model),
            StepKind::JoinNode(s) => s.apply_model(model),
            StepKind::UpdateCorosync(s) => s.apply_model(model),
            StepKind::SetExpectedVotes(s) => s.apply_model(model),
            StepKind::SetDatacenter(s) => s.apply_model(model),
            StepKind::MigrateGuest(s) => s.apply_model(model),
            StepKind::Wait(s) => s.apply_model(model),
            StepKind::RemoveNode(s) => s.apply_model(model),
        }
        if self.affects_quorum() {
            model.recompute_membership();
        }
    }
}

/// A node's address per link for a plan line: `link0 ADDR, link1 ADDR`.
pub(crate) fn links_text(links: &BTreeMap<u8, String>) -> String {
    links
        .iter()
        .map(|(l, a)| format!("link{l} {a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// After a corosync.conf change is applied by reload: every online member reports the new
/// version and the runtime expected-votes override is dropped (votequorum recalculates).
pub(crate) fn after_reload(model: &mut Observed) {
    let version = model.config_version();
    model.membership.runtime_expected = None;
    let online: Vec<String> = model
        .hosts
        .values()
        .filter(|h| h.online && model.is_joined(&h.name))
        .map(|h| h.name.clone())
        .collect();
    model.node_config_versions = online.into_iter().map(|n| (n, version)).collect();
}
