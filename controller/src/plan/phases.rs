//! The planning phases, in the order the Proxmox admin guide requires (DESIGN.md §2):
//! create, regain quorum, converge config versions, remove powered-off nodes, join (serially),
//! corosync.conf edits, expected votes, datacenter.cfg, guest placement, evacuation and the
//! power-off gate. [`next_batch`] returns the steps of the first phase that has work.

use super::corosync_diff;
use super::quorum::expected_votes_accepted;
use super::step::*;
use crate::observed::Observed;
use pve_gitops_schema::corosync::{Corosync2Options, Document, NodeEntry, PveClusterOptions};
use pve_gitops_schema::datacenter::{Migration, MigrationType};
use pve_gitops_schema::spec::{Cluster, GuestType, Node, Transport};
use pve_gitops_schema::validate::rules::address_key;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Steps proposed by one phase, and refusals found on the way.
#[derive(Debug, Default)]
pub struct Batch {
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Refusals (the plan is refused when any exist).
    pub errors: Vec<String>,
}

impl Batch {
    fn one(step: Step) -> Batch {
        Batch {
            steps: vec![step],
            errors: Vec::new(),
        }
    }
}

/// The addresses a manifest node has per link.
pub fn links_of(n: &Node) -> BTreeMap<u8, String> {
    n.rings().map(|(l, a)| (l, a.to_string())).collect()
}

/// The node that runs cluster-wide steps: the online member with the lowest nodeid, never one
/// of `exclude`.
pub fn executor(model: &Observed, exclude: &[&str]) -> Option<String> {
    let doc = model.corosync.as_ref()?;
    let mut nodes: Vec<(u32, String)> = doc
        .view()
        .nodes
        .into_iter()
        .filter_map(|n| Some((n.nodeid.unwrap_or(u32::MAX), n.name?)))
        .filter(|(_, name)| {
            model.membership.online.contains(name) && !exclude.contains(&name.as_str())
        })
        .collect();
    nodes.sort();
    nodes.into_iter().next().map(|(_, n)| n)
}

/// Nodes the manifest wants gone that are still in the nodelist: `state: absent`, plus live
/// nodes missing from the manifest when `policy.prune_nodes` is set. Sorted by nodeid.
fn nodes_to_remove(desired: &Cluster, model: &Observed) -> Vec<String> {
    let Some(doc) = &model.corosync else {
        return Vec::new();
    };
    let mut out: Vec<(u32, String)> = doc
        .view()
        .nodes
        .into_iter()
        .filter_map(|n| {
            let name = n.name?;
            let remove = match desired.node(&name) {
                Some(d) => !d.is_present(),
                None => desired.spec.policy.prune_nodes,
            };
            remove.then_some((n.nodeid.unwrap_or(0), name))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// One planning phase: the steps it proposes for the model, if it has any.
type Phase = fn(&Cluster, &Observed, &BTreeSet<String>) -> Option<Batch>;

/// The next steps the manifest needs, from the first phase that has work.
pub fn next_batch(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Batch {
    let phases: [Phase; 12] = [
        create,
        start_stopped,
        regain_quorum,
        converge_versions,
        remove_offline,
        join,
        corosync_diff::update,
        expected_votes,
        datacenter,
        placement,
        evacuate,
        power_off,
    ];
    for phase in phases {
        if let Some(b) = phase(desired, model, excluded) {
            if !b.steps.is_empty() || !b.errors.is_empty() {
                return b;
            }
        }
    }
    Batch::default()
}

fn power_on_gate(node: &str, excluded: &BTreeSet<String>, why: &str) -> Option<Batch> {
    let step = Step::new(
        StepKind::Wait(Wait {
            gate: Gate::PowerOn {
                node: node.to_string(),
            },
        }),
        node,
        why,
    );
    (!excluded.contains(&step.key())).then(|| Batch::one(step))
}

fn create(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    if model.corosync.is_some() {
        return None;
    }
    let founder = desired.present_nodes().min_by_key(|n| n.nodeid)?;
    match model.hosts.get(&founder.name) {
        Some(h) if h.online => {}
        Some(_) => {
            return power_on_gate(
                &founder.name,
                excluded,
                "the founding node (lowest nodeid) must be running to create the cluster",
            )
        }
        None => {
            return Some(Batch {
                steps: Vec::new(),
                errors: vec![format!(
                    "refused: the founding node `{}` (lowest nodeid) is not a host of this target",
                    founder.name
                )],
            })
        }
    }
    let t = &desired.spec.totem;
    let entry = NodeEntry {
        name: founder.name.clone(),
        nodeid: founder.nodeid,
        quorum_votes: founder.quorum_votes,
        rings: links_of(founder),
    };
    let priorities: BTreeMap<u8, Option<u8>> =
        t.links.iter().map(|l| (l.number, l.priority)).collect();
    let links: Vec<(u8, Option<u8>)> = entry
        .rings
        .keys()
        .map(|l| (*l, priorities.get(l).copied().flatten()))
        .collect();
    let corosync2 = (t.transport != Transport::Knet).then(|| Corosync2Options {
        bindnetaddrs: t
            .links
            .iter()
            .filter_map(|l| Some((l.number, l.bindnetaddr?.to_string())))
            .collect(),
        rrp_mode: t.rrp_mode.map(|m| m.as_str().to_string()),
    });
    let opts = PveClusterOptions {
        ip_version: Some(t.ip_version.as_str().to_string()),
        link_mode: match t.transport {
            Transport::Knet => t.rrp_mode.map(|m| m.as_str().to_string()),
            _ => None,
        },
        token_coefficient: t.token_coefficient,
        corosync2,
    };
    let mut doc = Document::new_pve_cluster(
        &desired.metadata.name,
        std::slice::from_ref(&entry),
        &links,
        &opts,
    );
    if t.transport == Transport::Udp {
        doc.set(&["totem"], "transport", "udp");
    }
    if !t.secauth {
        doc.set(&["totem"], "secauth", "off");
    }
    if let Some(b) = desired.spec.quorum.two_node {
        doc.set(&["quorum"], "two_node", if b { "1" } else { "0" });
    }
    if let Some(b) = desired.spec.quorum.wait_for_all {
        doc.set(&["quorum"], "wait_for_all", if b { "1" } else { "0" });
    }
    let step = Step::new(
        StepKind::CreateCluster(CreateCluster {
            cluster_name: desired.metadata.name.clone(),
            founder: founder.name.clone(),
            nodeid: founder.nodeid,
            quorum_votes: founder.quorum_votes,
            links: entry.rings,
            corosync_conf: doc.to_string(),
        }),
        &founder.name,
        "no cluster exists yet; it is created on the node with the lowest nodeid",
    );
    Some(Batch::one(step))
}

/// A joined node that is powered on but not in the membership: corosync is not running on it
/// (an interrupted join, or a node started after the nodelist edit), or (corosync target) it
/// runs an older corosync.conf after being cut off while the nodelist changed. It installs the current
/// conf and starts; no nodelist edit. This comes before the quorum gate: starting it is what
/// restores quorum after the nodelist grew (e.g. the second node of a cluster). Not while a
/// member runs another config_version than the conf (the config-version gate comes first).
fn start_stopped(
    desired: &Cluster,
    model: &Observed,
    excluded: &BTreeSet<String>,
) -> Option<Batch> {
    let doc = model.corosync.as_ref()?;
    // corosync turns away a node whose config_version differs from the running members': while
    // they lag (a written, not yet reloaded corosync.conf) the start waits at the
    // config-version gate.
    if !lagging_members(model).is_empty() {
        return None;
    }
    let mut stopped: Vec<&Node> = desired
        .present_nodes()
        .filter(|n| {
            model.is_joined(&n.name)
                && model.hosts.get(&n.name).is_some_and(|h| h.online)
                && !model.membership.online.contains(&n.name)
        })
        .collect();
    stopped.sort_by_key(|n| n.nodeid);
    for n in stopped {
        let v = model.config_version();
        let step = Step::new(
            StepKind::JoinNode(JoinNode {
                node: n.name.clone(),
                nodeid: n.nodeid,
                quorum_votes: n.quorum_votes,
                links: links_of(n),
                via: n.name.clone(),
                from_version: v,
                to_version: v,
                corosync_conf: doc.to_string(),
            }),
            &n.name,
            "it is in the nodelist and powered on, but not in the membership (corosync stopped, or running an older corosync.conf while cut off): install the current corosync.conf and (re)start",
        );
        if !excluded.contains(&step.key()) {
            return Some(Batch::one(step));
        }
    }
    None
}

fn regain_quorum(
    desired: &Cluster,
    model: &Observed,
    excluded: &BTreeSet<String>,
) -> Option<Batch> {
    if model.corosync.is_none() || model.membership.quorate {
        return None;
    }
    let m = &model.membership;
    let arithmetic = format!(
        "{} of {} expected votes present, quorum {}",
        m.total_votes, m.expected_votes, m.quorum
    );
    if let Some(n) = desired.spec.quorum.expected_votes {
        let via = model
            .membership
            .online
            .iter()
            .next()
            .cloned()
            .unwrap_or_default();
        match expected_votes_accepted(n, m.total_votes) {
            Ok(()) if m.expected_votes != n => {
                return Some(Batch::one(Step::new(
                    StepKind::SetExpectedVotes(SetExpectedVotes {
                        expected: n,
                        from: m.expected_votes,
                        present: m.total_votes,
                    }),
                    via,
                    format!("the cluster is not quorate ({arithmetic}); spec.quorum.expected_votes restores quorum"),
                )))
            }
            // In effect already and still not quorate (corosync says so, e.g. wait_for_all
            // before every node was seen once): the quorum gate below, never on to membership
            // changes.
            Ok(()) => {}
            Err(why) => {
                return Some(Batch {
                    steps: Vec::new(),
                    errors: vec![format!(
                        "refused: spec.quorum.expected_votes {n}: {why} ({arithmetic})"
                    )],
                })
            }
        }
    }
    let step = Step::new(
        StepKind::Wait(Wait {
            gate: Gate::Quorum { arithmetic },
        }),
        "-",
        "no membership change is safe without quorum",
    );
    (!excluded.contains(&step.key())).then(|| Batch::one(step))
}

/// The members that do not run the current corosync.conf's config_version, as `NAME (runs V)`.
fn lagging_members(model: &Observed) -> Vec<String> {
    let version = model.config_version();
    model
        .node_config_versions
        .iter()
        .filter(|(n, v)| **v != version && model.membership.online.contains(*n))
        .map(|(n, v)| format!("{n} (runs {v})"))
        .collect()
}

/// Members behind the current corosync.conf. When some member already runs its version (the
/// writer reloaded and verified it) and the others run older ones — they were cut off during
/// that reload and merged back with their old configuration; corosync does not turn a running
/// member away for that — one more reload brings them in: planned as a reload with the
/// version unchanged, on a member that runs it. Otherwise (nobody runs it yet: a change was
/// written and never reloaded, or a member runs a newer one) the gate: nobody reloads a
/// change that was never applied.
fn converge_versions(_: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    let version = model.config_version();
    let doc = model.corosync.as_ref()?;
    let lagging = lagging_members(model);
    if lagging.is_empty() {
        return None;
    }
    let members = || {
        model
            .node_config_versions
            .iter()
            .filter(|(n, _)| model.membership.online.contains(*n))
    };
    let behind: Vec<&str> = members()
        .filter(|(_, v)| **v < version)
        .map(|(n, _)| n.as_str())
        .collect();
    let applied = members().any(|(_, v)| *v == version);
    let ahead = members().any(|(_, v)| *v > version);
    if applied && !ahead && model.membership.quorate {
        if let Some(via) = executor(model, &behind) {
            let step = Step::new(
                StepKind::UpdateCorosync(UpdateCorosync {
                    changes: vec![format!("reload for {}", lagging.join(", "))],
                    method: Method::Reload,
                    method_reason: format!(
                        "they missed the reload of config_version {version}"
                    ),
                    restart_order: Vec::new(),
                    from_version: version,
                    to_version: version,
                    corosync_conf: doc.to_string(),
                }),
                &via,
                "members run an older corosync.conf than the others (cut off during its reload): reload it once more",
            );
            if !excluded.contains(&step.key()) {
                return Some(Batch::one(step));
            }
        }
    }
    let step = Step::new(
        StepKind::Wait(Wait {
            gate: Gate::ConfigVersion { version, lagging },
        }),
        "-",
        "membership changes wait until every member runs the current corosync.conf",
    );
    (!excluded.contains(&step.key())).then(|| Batch::one(step))
}

fn remove_step(model: &Observed, node: &str) -> Option<Step> {
    let via = executor(model, &[node])?;
    let doc = model.corosync.as_ref()?;
    let mut next = doc.clone();
    next.remove_node(node);
    let from_version = model.config_version();
    let to_version = next.bump_config_version();
    Some(Step::new(
        StepKind::RemoveNode(RemoveNode {
            node: node.to_string(),
            via,
            from_version,
            to_version,
            corosync_conf: next.to_string(),
        }),
        node,
        "the manifest removes this node and it is out of the membership",
    ))
}

fn remove_offline(
    desired: &Cluster,
    model: &Observed,
    excluded: &BTreeSet<String>,
) -> Option<Batch> {
    for node in nodes_to_remove(desired, model) {
        if model.membership.online.contains(&node) {
            continue;
        }
        let guests: Vec<String> = model.guests_on(&node).map(|g| g.vmid.to_string()).collect();
        if !guests.is_empty() {
            let step = Step::new(
                StepKind::Wait(Wait {
                    gate: Gate::Evacuate {
                        node: node.clone(),
                        guests: guests
                            .iter()
                            .map(|g| format!("{g} (node is powered off; power it on so it can be migrated, or move the config)"))
                            .collect(),
                    },
                }),
                &node,
                "a node is evacuated before it is removed",
            );
            if !excluded.contains(&step.key()) {
                return Some(Batch::one(step));
            }
            continue;
        }
        if let Some(step) = remove_step(model, &node) {
            if !excluded.contains(&step.key()) {
                return Some(Batch::one(step));
            }
        }
    }
    None
}

fn join(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    let doc = model.corosync.as_ref()?;
    let mut todo: Vec<&Node> = desired
        .present_nodes()
        .filter(|n| !model.is_joined(&n.name))
        .collect();
    todo.sort_by_key(|n| n.nodeid);
    for n in todo {
        match model.hosts.get(&n.name) {
            Some(h) if h.online => {}
            _ => {
                if let Some(b) = power_on_gate(&n.name, excluded, "a joining node must be running")
                {
                    return Some(b);
                }
                continue;
            }
        }
        let Some(via) = executor(model, &[&n.name]) else {
            continue;
        };
        // A node joins on the links the cluster has now (corosync refuses a join with a link
        // the others lack, or without one they have). New links are added for everybody by an
        // update_corosync step after the join; links the manifest drops are removed before.
        let live_links: BTreeSet<u8> = doc
            .view()
            .nodes
            .iter()
            .flat_map(|n| n.rings.keys().copied())
            .collect();
        let wanted = links_of(n);
        if !live_links.iter().all(|l| wanted.contains_key(l)) {
            continue;
        }
        let rings: BTreeMap<u8, String> = wanted
            .into_iter()
            .filter(|(l, _)| live_links.contains(l))
            .collect();
        let entry = NodeEntry {
            name: n.name.clone(),
            nodeid: n.nodeid,
            quorum_votes: n.quorum_votes,
            rings,
        };
        let mut next = doc.clone();
        next.add_node(&entry);
        let from_version = model.config_version();
        let to_version = next.bump_config_version();
        let mut step = Step::new(
            StepKind::JoinNode(JoinNode {
                node: n.name.clone(),
                nodeid: n.nodeid,
                quorum_votes: n.quorum_votes,
                links: entry.rings,
                via,
                from_version,
                to_version,
                corosync_conf: next.to_string(),
            }),
            &n.name,
            "the manifest lists this node and it is not in the cluster",
        );
        if excluded.contains(&step.key()) {
            continue;
        }
        let guests: Vec<String> = model
            .guests_on(&n.name)
            .map(|g| g.vmid.to_string())
            .collect();
        if model.needs_reinstall.contains(&n.name) {
            step = step.blocked(format!(
                "join refused: {} was removed from this cluster with delnode and keeps its old authkey and corosync.conf; reinstall it before it can join again",
                n.name
            ));
        } else if !guests.is_empty() {
            step = step.blocked(format!(
                "join refused: {} has guests ({}); a joining node must have none (pvecm add); move or remove them first",
                n.name,
                guests.join(", ")
            ));
        } else if let Some(why) = foreign_ring_addresses(desired, n, model) {
            step = step.blocked(why);
        } else if let Some(why) = taken_ring_addresses(doc, n) {
            step = step.blocked(why);
        }
        return Some(Batch::one(step));
    }
    None
}

/// A joining node's ring addresses that are not among the addresses its host reported (where
/// the target knows them; names are not resolved). corosync on that node could not start —
/// it finds itself in the nodelist by its own address — while the members would already count
/// its vote, one failure closer to losing quorum, and a joined node's address cannot be
/// changed by reload.
fn foreign_ring_addresses(desired: &Cluster, n: &Node, model: &Observed) -> Option<String> {
    let own = model.hosts.get(&n.name)?.addresses.as_ref()?;
    let idx = desired.spec.nodes.iter().position(|d| d.name == n.name)?;
    let foreign: Vec<String> = links_of(n)
        .into_iter()
        .filter(|(_, a)| a.parse::<IpAddr>().is_ok_and(|ip| !own.contains(&ip)))
        .map(|(l, a)| format!("spec.nodes[{idx}].ring{l}_addr {a}"))
        .collect();
    if foreign.is_empty() {
        return None;
    }
    let has: Vec<String> = own.iter().map(IpAddr::to_string).collect();
    Some(format!(
        "join refused: {} is not an address of {} (its addresses: {}); correct the manifest — corosync there could not start, while the members would count its vote",
        foreign.join(", "),
        n.name,
        if has.is_empty() { "none".to_string() } else { has.join(", ") }
    ))
}

/// A joining node's ring addresses that another node of the cluster's corosync.conf already
/// has (a node the manifest no longer lists, or one listed under another address): corosync
/// would refuse the nodelist or mistake one node for the other. Compared as IP addresses
/// where both parse, else as names (case-insensitively).
fn taken_ring_addresses(doc: &pve_gitops_schema::corosync::Document, n: &Node) -> Option<String> {
    let nodes = doc.view().nodes;
    let mut taken = Vec::new();
    for (l, a) in links_of(n) {
        for other in nodes
            .iter()
            .filter(|o| o.name.as_deref() != Some(n.name.as_str()))
        {
            let mut same = other
                .rings
                .iter()
                .filter(|(_, oa)| address_key(oa) == address_key(&a));
            if let Some((ol, _)) = same.next() {
                let name = other.name.as_deref().unwrap_or_default();
                taken.push(format!("ring{l}_addr {a} is {name}'s (ring{ol}_addr)"));
            }
        }
    }
    (!taken.is_empty()).then(|| {
        format!(
            "join refused: {} in the cluster's corosync.conf; remove that node first (state: absent) or give {} another address",
            taken.join(", "),
            n.name
        )
    })
}

fn expected_votes(desired: &Cluster, model: &Observed, _: &BTreeSet<String>) -> Option<Batch> {
    let n = desired.spec.quorum.expected_votes?;
    let m = &model.membership;
    // In effect already, or set earlier and since outgrown (nodes came back: votequorum raised
    // expected votes to the votes present); refuse::drift_warnings says it can go.
    if model.corosync.is_none() || m.expected_votes == n || m.runtime_expected == Some(n) {
        return None;
    }
    let via = executor(model, &[])?;
    Some(match expected_votes_accepted(n, m.total_votes) {
        Ok(()) => Batch::one(Step::new(
            StepKind::SetExpectedVotes(SetExpectedVotes {
                expected: n,
                from: m.expected_votes,
                present: m.total_votes,
            }),
            via,
            "spec.quorum.expected_votes differs from the running expected votes",
        )),
        Err(why) => Batch {
            steps: Vec::new(),
            errors: vec![format!("refused: spec.quorum.expected_votes {n}: {why}")],
        },
    })
}

fn datacenter(desired: &Cluster, model: &Observed, _: &BTreeSet<String>) -> Option<Batch> {
    let m = desired.spec.migration.as_ref()?;
    let dc = &model.datacenter;
    let mut steps = Vec::new();
    let mut set = |key: &str, to: String| {
        steps.push(Step::new(
            StepKind::SetDatacenter(SetDatacenter {
                key: key.to_string(),
                from: dc.get(key).map(str::to_string),
                to: Some(to),
            }),
            "-",
            format!("spec.migration sets datacenter.cfg `{key}`"),
        ));
    };
    if m.mtype.is_some() || m.network.is_some() {
        let live = dc.migration().and_then(Result::ok);
        let mtype = m
            .mtype
            .or_else(|| live.as_ref().map(|l| l.mtype))
            .unwrap_or(MigrationType::Secure);
        let network = m.network.or_else(|| live.as_ref().and_then(|l| l.network));
        let want = Migration::new(mtype, network);
        if live.as_ref() != Some(&want) {
            set("migration", want.to_string());
        }
    }
    if let Some(w) = m.max_workers {
        if dc.max_workers().and_then(Result::ok) != Some(w) {
            set("max_workers", w.to_string());
        }
    }
    if let Some(kib) = m.bandwidth_limit {
        let live = dc.bwlimit().and_then(Result::ok).unwrap_or_default();
        if live.migration != Some(kib) {
            set("bwlimit", live.with_migration(Some(kib)).to_string());
        }
    }
    Some(Batch {
        steps,
        errors: Vec::new(),
    })
}

fn migrate(
    desired: &Cluster,
    model: &Observed,
    vmid: u32,
    to: &str,
    online: bool,
    why: &str,
) -> Option<Step> {
    let g = model.guests.get(&vmid)?;
    let m = desired.spec.migration.as_ref();
    let qemu = g.gtype == GuestType::Qemu;
    let mut step = Step::new(
        StepKind::MigrateGuest(MigrateGuest {
            vmid,
            guest_type: g.gtype,
            from: g.node.clone(),
            to: to.to_string(),
            online: qemu && g.running && online,
            restart: !qemu && g.running && online,
            migration_network: m
                .and_then(|m| m.network)
                .filter(|_| qemu)
                .map(|n| n.to_string()),
            migration_type: m
                .and_then(|m| m.mtype)
                .filter(|_| qemu)
                .map(|t| t.as_str().to_string()),
        }),
        &g.node,
        why,
    );
    // The membership only ever holds nodelist nodes.
    let member = |n: &str| model.membership.online.contains(n);
    if let Some(lock) = &g.lock {
        step = step.blocked(format!(
            "guest {vmid} is locked ({lock}); skipped until the lock is released"
        ));
    } else if g.running && !online {
        step = step.blocked(format!(
            "guest {vmid} is running and spec.guests says online: false; stop it first"
        ));
    } else if !member(&g.node) {
        step = step.blocked(format!(
            "source node {} is not an online cluster member",
            g.node
        ));
    } else if !member(to) {
        step = step.blocked(format!("target node {to} is not an online cluster member"));
    }
    Some(step)
}

fn placement(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    let mut steps = Vec::new();
    for g in &desired.spec.guests {
        let Some(live) = model.guests.get(&g.vmid) else {
            continue;
        };
        if live.node == g.node {
            continue;
        }
        if let Some(step) = migrate(
            desired,
            model,
            g.vmid,
            &g.node,
            g.online,
            "spec.guests places it on another node",
        ) {
            if !excluded.contains(&step.key()) {
                steps.push(step);
            }
        }
    }
    Some(Batch {
        steps,
        errors: Vec::new(),
    })
}

fn evacuate(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    let removing = nodes_to_remove(desired, model);
    let targets: Vec<&str> = desired
        .present_nodes()
        .map(|n| n.name.as_str())
        .filter(|n| model.membership.online.contains(*n))
        .collect();
    // Free memory per target: host memory minus the memory of the guests on it.
    let mut free: BTreeMap<&str, i128> = targets
        .iter()
        .map(|t| {
            (
                *t,
                model
                    .hosts
                    .get(*t)
                    .map(|h| i128::from(h.memory_mib))
                    .unwrap_or(0),
            )
        })
        .collect();
    for g in model.guests.values() {
        if let Some(f) = free.get_mut(g.node.as_str()) {
            *f -= i128::from(g.memory_mib);
        }
    }
    for node in removing
        .iter()
        .filter(|n| model.membership.online.contains(*n))
    {
        let mut guests: Vec<_> = model
            .guests_on(node)
            .filter(|g| !excluded.contains(&format!("migrate_guest:{}", g.vmid)))
            .collect();
        if guests.is_empty() {
            continue;
        }
        // Largest first, each onto the target with the most free memory (ties: name order).
        guests.sort_by(|a, b| b.memory_mib.cmp(&a.memory_mib).then(a.vmid.cmp(&b.vmid)));
        let mut steps = Vec::new();
        for g in guests {
            let Some((target, _)) = free.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            else {
                let step = Step::new(
                    StepKind::Wait(Wait {
                        gate: Gate::Evacuate {
                            node: node.clone(),
                            guests: vec![format!("{} (no present node to move it to)", g.vmid)],
                        },
                    }),
                    node,
                    "a node is evacuated before it is removed",
                );
                if !excluded.contains(&step.key()) {
                    steps.push(step);
                }
                break;
            };
            let target = target.to_string();
            if let Some(step) = migrate(
                desired,
                model,
                g.vmid,
                &target,
                true,
                &format!(
                    "{node} is being removed (state: absent); guests are spread by free memory"
                ),
            ) {
                if step.blocked.is_none() {
                    if let Some(f) = free.get_mut(target.as_str()) {
                        *f -= i128::from(g.memory_mib);
                    }
                }
                steps.push(step);
            }
        }
        if !steps.is_empty() {
            return Some(Batch {
                steps,
                errors: Vec::new(),
            });
        }
    }
    None
}

fn power_off(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    for node in nodes_to_remove(desired, model) {
        if !model.membership.online.contains(&node) {
            continue;
        }
        let left: Vec<String> = model
            .guests_on(&node)
            .map(|g| match &g.lock {
                Some(l) => format!("{} (locked: {l})", g.vmid),
                None => format!("{} (could not be migrated)", g.vmid),
            })
            .collect();
        let gate = if left.is_empty() {
            Gate::PowerOff { node: node.clone() }
        } else {
            Gate::Evacuate {
                node: node.clone(),
                guests: left,
            }
        };
        let step = Step::new(
            StepKind::Wait(Wait { gate }),
            &node,
            "a node must be out of the membership before delnode",
        );
        if !excluded.contains(&step.key()) {
            return Some(Batch::one(step));
        }
    }
    None
}
