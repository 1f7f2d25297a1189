//! Observed state: pure data describing the live cluster, as a target saw it.
//!
//! Every target ([`crate::target`]) produces an [`Observed`]; the planner never knows which
//! target it came from. The planner also uses `Observed` as its model of the cluster while it
//! replays a plan step by step (each step's `apply_model` changes it as the real step would).

use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::spec::GuestType;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Everything the planner needs to know about the live cluster.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The cluster's corosync.conf, or None when no cluster exists yet.
    pub corosync: Option<Document>,
    /// Every host the target knows, clustered or standalone, by name.
    pub hosts: BTreeMap<String, Host>,
    /// Live membership and votequorum numbers (as corosync reports them).
    pub membership: Membership,
    /// The `config_version` each running member reports, by node name.
    pub node_config_versions: BTreeMap<String, u64>,
    /// datacenter.cfg.
    pub datacenter: DatacenterDocument,
    /// Every guest, by vmid.
    pub guests: BTreeMap<u32, ObservedGuest>,
    /// Who holds the cluster lock, if anyone.
    pub lock: Option<String>,
    /// `nodes/NAME` directories of nodes that are not in the nodelist.
    pub leftover_node_dirs: Vec<String>,
    /// Hosts that were removed with delnode: they keep the old authkey and corosync.conf and
    /// can never join again without a reinstall.
    pub needs_reinstall: BTreeSet<String>,
    /// What the target wants the operator to know about this observation (e.g. that a
    /// standalone node cannot see the cluster); shown with the plan's warnings.
    pub notes: Vec<String>,
}

/// One host (a machine that is, or could become, a cluster node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Host name.
    pub name: String,
    /// Powered on (and, when clustered, running corosync).
    pub online: bool,
    /// Total memory in MiB (0 when unknown), for spreading evacuated guests.
    pub memory_mib: u64,
    /// Its interface addresses, where the target knows them (the corosync target: what the
    /// host's own controller registered); a join checks its ring addresses against them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<BTreeSet<IpAddr>>,
}

/// Live membership and votequorum numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// Names of the nodes in the current membership.
    pub online: BTreeSet<String>,
    /// Whether the partition this controller sees is quorate.
    pub quorate: bool,
    /// votequorum expected votes (including a runtime override).
    pub expected_votes: u32,
    /// Votes of the members present.
    pub total_votes: u32,
    /// Votes needed for quorum.
    pub quorum: u32,
    /// A runtime `corosync-quorumtool -e` / `pvecm expected` override in effect.
    pub runtime_expected: Option<u32>,
}

/// One guest as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedGuest {
    /// Guest id.
    pub vmid: u32,
    /// qemu or lxc.
    pub gtype: GuestType,
    /// The node whose directory holds its config.
    pub node: String,
    /// The config's `lock:` value, if any.
    pub lock: Option<String>,
    /// Configured memory in MiB.
    pub memory_mib: u64,
    /// Whether it is running.
    pub running: bool,
}

impl Observed {
    /// The votes each node of the nodelist has, by name (empty without a cluster).
    pub fn node_votes(&self) -> BTreeMap<String, u32> {
        let Some(doc) = &self.corosync else {
            return BTreeMap::new();
        };
        doc.view()
            .nodes
            .iter()
            .filter_map(|n| Some((n.name.clone()?, n.quorum_votes.unwrap_or(1))))
            .collect()
    }

    /// The corosync.conf `totem.config_version` (0 when absent or no cluster).
    pub fn config_version(&self) -> u64 {
        self.corosync
            .as_ref()
            .and_then(|d| d.view().totem.config_version)
            .unwrap_or(0)
    }

    /// Whether `name` is in the nodelist.
    pub fn is_joined(&self, name: &str) -> bool {
        self.corosync
            .as_ref()
            .is_some_and(|d| d.view().node_by_name(name).is_some())
    }

    /// Guests whose config is on `node`, sorted by vmid.
    pub fn guests_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a ObservedGuest> + 'a {
        self.guests.values().filter(move |g| g.node == node)
    }

    /// Recompute [`Observed::membership`] from the nodelist, host power states and the runtime
    /// expected-votes override, with votequorum's arithmetic. Used by the simulator and by the
    /// planner's model after every simulated step.
    pub fn recompute_membership(&mut self) {
        let votes = self.node_votes();
        let online: BTreeSet<String> = votes
            .keys()
            .filter(|n| self.hosts.get(*n).is_some_and(|h| h.online))
            .cloned()
            .collect();
        let view = self.corosync.as_ref().map(|d| d.view());
        let config_expected = view.as_ref().and_then(|v| v.quorum.expected_votes);
        let two_node = view
            .as_ref()
            .is_some_and(|v| v.quorum.two_node.unwrap_or(0) == 1);
        let q = crate::plan::quorum::VoteState {
            votes,
            online: online.clone(),
            config_expected,
            runtime_expected: self.membership.runtime_expected,
            two_node,
        };
        self.membership = Membership {
            quorate: q.quorate(),
            expected_votes: q.expected(),
            total_votes: q.total(),
            quorum: q.quorum(),
            online,
            runtime_expected: self.membership.runtime_expected,
        };
    }
}
