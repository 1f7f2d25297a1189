//! Refusal rules that need the live cluster (SPEC.md: they belong to the planner, not to
//! `validate`), and drift warnings.

use crate::observed::Observed;
use pve_gitops_schema::spec::{Cluster, NodeState};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Changes the planner refuses outright: the cluster name, or a joined node's name or nodeid.
pub fn refusals(desired: &Cluster, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    let Some(doc) = &observed.corosync else {
        return out;
    };
    let view = doc.view();
    if let Some(live) = &view.totem.cluster_name {
        if *live != desired.metadata.name {
            out.push(format!(
                "refused: metadata.name is `{}` but the cluster is `{live}`; the cluster name cannot be changed once created (set metadata.name: {live})",
                desired.metadata.name
            ));
        }
    }
    for (i, n) in desired.spec.nodes.iter().enumerate() {
        if let Some(live) = view.node_by_name(&n.name) {
            if let Some(id) = live.nodeid {
                if id != n.nodeid {
                    out.push(format!(
                        "refused: spec.nodes[{i}] `{}` has nodeid {} but the joined node has nodeid {id}; a joined node's nodeid cannot change (remove and reinstall the node instead)",
                        n.name, n.nodeid
                    ));
                }
            }
        } else if let Some(live) = view.node_by_id(n.nodeid) {
            let live_name = live.name.clone().unwrap_or_default();
            out.push(format!(
                "refused: spec.nodes[{i}] `{}` has nodeid {}, which belongs to joined node `{live_name}`; a joined node cannot be renamed (use name `{live_name}`, or remove it and join a new node)",
                n.name, n.nodeid
            ));
        }
    }
    out
}

/// Drift the plan does not act on, and leftovers worth knowing about.
pub fn drift_warnings(desired: &Cluster, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(doc) = &observed.corosync {
        for n in doc.view().nodes {
            let Some(name) = n.name else { continue };
            // A live node whose nodeid the manifest gives to another name is a rename, which
            // `refusals` reports; it is not drift on top of that.
            let renamed = n
                .nodeid
                .is_some_and(|id| desired.spec.nodes.iter().any(|d| d.nodeid == id));
            if desired.node(&name).is_none() && !renamed {
                if desired.spec.policy.prune_nodes {
                    out.push(format!(
                        "drift: node `{name}` is in the cluster but not in the manifest; policy.prune_nodes is true, so it is removed"
                    ));
                } else {
                    out.push(format!(
                        "drift: node `{name}` is in the cluster but not in the manifest; not removed (add it to the manifest, mark it `state: absent`, or set policy.prune_nodes: true)"
                    ));
                }
            }
        }
    }
    if let Some(n) = desired.spec.quorum.expected_votes {
        let m = &observed.membership;
        if m.runtime_expected == Some(n) && m.total_votes > n {
            out.push(format!(
                "spec.quorum.expected_votes {n} is no longer needed: {} votes are present again and votequorum expects {}; remove it from the manifest",
                m.total_votes, m.expected_votes
            ));
        }
    }
    for dir in &observed.leftover_node_dirs {
        let guests: Vec<String> = observed
            .guests_on(dir)
            .map(|g| g.vmid.to_string())
            .collect();
        if guests.is_empty() {
            out.push(format!(
                "leftover: nodes/{dir} belongs to no cluster node (left behind by delnode)"
            ));
        } else {
            out.push(format!(
                "leftover: nodes/{dir} belongs to no cluster node and still holds guest configs {}; they will not run until moved",
                guests.join(", ")
            ));
        }
    }
    for g in &desired.spec.guests {
        if !observed.guests.contains_key(&g.vmid) {
            out.push(format!(
                "guest {} is listed in spec.guests but does not exist in the cluster; ignored",
                g.vmid
            ));
        }
    }
    out
}

/// The live half of the migration-network rule (SPEC: every present node needs exactly one
/// address in `migration.network`; `validate` checks nodes with `addresses`, this checks the
/// others). A node's candidates are its ring addresses and the addresses its host reported.
/// Returns (refusals, warnings): none or several known addresses in the network refuse the
/// plan; a host whose addresses the target does not report, and whose ring addresses do not
/// settle it, is a warning.
pub fn migration_network(desired: &Cluster, observed: &Observed) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let Some(net) = desired.spec.migration.as_ref().and_then(|m| m.network) else {
        return (errors, warnings);
    };
    for (i, n) in desired.spec.nodes.iter().enumerate() {
        if n.state == NodeState::Absent || !n.addresses.is_empty() {
            continue;
        }
        let reported = observed
            .hosts
            .get(&n.name)
            .and_then(|h| h.addresses.as_ref());
        let mut all: BTreeSet<IpAddr> = n.rings().filter_map(|(_, a)| a.parse().ok()).collect();
        all.extend(reported.into_iter().flatten().copied());
        let inside: Vec<String> = all
            .iter()
            .filter(|a| net.contains(*a))
            .map(IpAddr::to_string)
            .collect();
        let node = format!("spec.nodes[{i}] `{}`", n.name);
        match (inside.len(), reported.is_some()) {
            (1, _) => {}
            (0, true) => errors.push(format!(
                "refused: {node} has no address in migration.network {net} (its host's addresses: {}); give the node an address there, or add `addresses:` to the manifest",
                reported
                    .map(|r| r.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            )),
            (0, false) => warnings.push(format!(
                "{node}: no ring address in migration.network {net}, and the target does not report the host's addresses, so it cannot be checked; add `addresses:` (its address in that network) to the node"
            )),
            (_, _) => errors.push(format!(
                "refused: {node} has {} addresses in migration.network {net} ({}); Proxmox VE needs exactly one — list the one to use in `addresses:`",
                inside.len(),
                inside.join(", ")
            )),
        }
    }
    (errors, warnings)
}
