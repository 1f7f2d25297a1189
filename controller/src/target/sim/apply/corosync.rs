//! The steps that edit corosync.conf (create, join, update, delnode): each new file is
//! checked against the current one (config_version bumped exactly once, only the intended
//! change) and against what corosync can apply, then written under the
//! `file-corosync_conf` cfs lock.

use super::{done, host_up, lock_file, no, online_member, require_quorum, Fail, R};
use super::{CREATE_MS, JOIN_MS, RELOAD_MS, RESTART_MS_PER_NODE};
use crate::cfs_lock::CfsLock;
use crate::plan::quorum::VoteState;
use crate::plan::step::{CreateCluster, JoinNode, Method, RemoveNode, UpdateCorosync};
use crate::target::sim::files::{self, mkdir_p, write_atomic};
use crate::target::sim::world::{World, COROSYNC_CONF};
use crate::target::Applied;
use pve_gitops_schema::corosync::{CorosyncConf, Document};
use std::collections::{BTreeMap, BTreeSet};

fn parse_new(text: &str) -> R<Document> {
    Document::parse_named(COROSYNC_CONF, text)
        .map_err(|e| Fail::No(format!("the step's corosync.conf does not parse: {e}")))
}

fn version_of(view: &CorosyncConf) -> u64 {
    view.totem.config_version.unwrap_or(0)
}

/// The new file bumps config_version exactly once over the current one.
fn check_versions(current: u64, from: u64, to: u64, new: &CorosyncConf) -> R<()> {
    let new_v = version_of(new);
    if new_v == 0 {
        return no("invalid corosync config: unable to read config version");
    }
    if from != current {
        return no(format!(
            "corosync.conf is at config_version {current}, the step was planned against {from}; plan again"
        ));
    }
    if new_v <= current {
        return no(format!(
            "local corosync.conf is newer: config_version {new_v} is not above the current {current}"
        ));
    }
    if new_v != current + 1 {
        return no(format!(
            "config_version {current} -> {new_v}: every corosync.conf edit bumps config_version exactly once"
        ));
    }
    if to != new_v {
        return no(format!(
            "the step says config_version {to} but its corosync.conf has {new_v}"
        ));
    }
    Ok(())
}

/// (nodeid, votes, rings) per node name (`name`, else `ring0_addr`).
type NodeMap = BTreeMap<String, (Option<u32>, u32, BTreeMap<u8, String>)>;

fn node_map(view: &CorosyncConf) -> NodeMap {
    view.nodes
        .iter()
        .filter_map(|n| {
            let name = n.name.clone().or_else(|| n.rings.get(&0).cloned())?;
            Some((
                name,
                (n.nodeid, n.quorum_votes.unwrap_or(1), n.rings.clone()),
            ))
        })
        .collect()
}

/// totem and quorum are the same apart from config_version.
fn same_settings(old: &CorosyncConf, new: &CorosyncConf) -> bool {
    let mut a = old.totem.clone();
    let mut b = new.totem.clone();
    a.config_version = None;
    b.config_version = None;
    a == b && old.quorum == new.quorum
}

/// Every node has an address on some link, and links exist.
fn check_links(view: &CorosyncConf) -> R<()> {
    if view.link_numbers().is_empty() {
        return no("removing the last link is not possible: A working interface needs to be available to corosync at all times");
    }
    if let Some(n) = view.nodes.iter().find(|n| n.rings.is_empty()) {
        return no(format!(
            "node '{}' has no address on any link (every node needs at least one ring<N>_addr)",
            n.name.as_deref().unwrap_or("?")
        ));
    }
    let knet = view.effective_transport() == "knet";
    let mut ids = BTreeSet::new();
    for n in &view.nodes {
        match n.nodeid {
            None if !knet => {}
            None => {
                return no(format!(
                    "Knet requires an explicit nodeid to be specified for address '{}'.",
                    n.rings.values().next().map_or("?", String::as_str)
                ))
            }
            Some(id) if !ids.insert(id) => {
                return no(format!("Nodeid {id} appears twice in corosync.conf"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn lock_conf(w: &World) -> R<CfsLock> {
    lock_file(w, COROSYNC_CONF)
}

fn write_conf(w: &mut World, text: &str) -> R<()> {
    write_atomic(&w.dir.join(COROSYNC_CONF), text.as_bytes())?;
    w.conf = Some(parse_new(text)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------

pub(super) fn create(w: &mut World, s: &CreateCluster) -> R<Applied> {
    if w.conf.is_some() {
        return no("cluster config '/etc/pve/corosync.conf' already exists");
    }
    host_up(w, &s.founder, "founder")?;
    if w.state.hosts.get(&s.founder).is_some_and(|h| h.removed) {
        return no(format!(
            "cluster config '/etc/pve/corosync.conf' already exists on '{}' (removed from a cluster; reinstall it)",
            s.founder
        ));
    }
    let name = &s.cluster_name;
    let ldh = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ldh {
        return no(format!(
            "clustername: value '{name}' does not match the regex pattern"
        ));
    }
    if name.len() > 15 {
        return no("clustername: value may only be 15 characters long");
    }
    let doc = parse_new(&s.corosync_conf)?;
    let view = doc.view();
    if version_of(&view) != 1 {
        return no(format!(
            "pvecm create writes config_version 1, the step's corosync.conf has {}",
            version_of(&view)
        ));
    }
    if view.totem.cluster_name.as_deref() != Some(name.as_str()) {
        return no("the step's corosync.conf has another cluster_name");
    }
    check_links(&view)?;
    let nodes = node_map(&view);
    let want = (Some(s.nodeid), s.quorum_votes, s.links.clone());
    if nodes.len() != 1 || nodes.get(&s.founder) != Some(&want) {
        return no(format!(
            "the step's corosync.conf must hold exactly the founder '{}' (nodeid {}, {} votes, its links)",
            s.founder, s.nodeid, s.quorum_votes
        ));
    }
    write_conf(w, &s.corosync_conf)?;
    mkdir_node(w, &s.founder)?;
    w.state.runtime_expected_votes = None;
    if w.state
        .local_node
        .as_ref()
        .is_none_or(|l| !w.in_nodelist(l))
    {
        w.state.local_node = Some(s.founder.clone());
    }
    w.commit()?;
    done(
        format!("created cluster {name} on {} (config_version 1)", s.founder),
        CREATE_MS,
    )
}

fn mkdir_node(w: &World, node: &str) -> R<()> {
    for sub in ["qemu-server", "lxc"] {
        mkdir_p(&w.dir.join("nodes").join(node).join(sub))?;
    }
    Ok(())
}

pub(super) fn join(w: &mut World, s: &JoinNode) -> R<Applied> {
    let Some(old) = w.conf.as_ref().map(Document::view) else {
        return no(format!(
            "'{}' is not part of a cluster: no corosync.conf (create the cluster first)",
            s.via
        ));
    };
    // pvecm add runs on the joining node: assert_joinable first.
    host_up(w, &s.node, "joining node")?;
    let mut errors = Vec::new();
    if w.state.hosts.get(&s.node).is_some_and(|h| h.removed) {
        errors.push("* authentication key '/etc/corosync/authkey' already exists".to_string());
        errors.push("* cluster config '/etc/pve/corosync.conf' already exists".to_string());
    }
    if files::has_guests(&w.dir, &s.node)? {
        errors.push("* this host already contains virtual guests".to_string());
    }
    if online_member(w, &s.node) {
        errors.push("* corosync is already running, is this node already in a cluster?!".into());
    }
    if !errors.is_empty() {
        errors.push("Check if node may join a cluster failed!".into());
        return no(errors.join("\n"));
    }
    // Then the member it talks to runs addnode.
    if !online_member(w, &s.via) {
        return no(format!(
            "'{}' is not an online member of the cluster: cannot run addnode there",
            s.via
        ));
    }
    require_quorum(w, "cluster not ready - no quorum?")?;
    let old_nodes = node_map(&old);
    if old_nodes.contains_key(&s.node) {
        return no(format!("can't add existing node '{}'", s.node));
    }
    if let Some((n, _)) = old_nodes.iter().find(|(_, v)| v.0 == Some(s.nodeid)) {
        return no(format!("nodeid {} already used by node '{n}'", s.nodeid));
    }
    for (link, addr) in &s.links {
        if let Some((n, _)) = old_nodes.iter().find(|(_, v)| v.2.get(link) == Some(addr)) {
            return no(format!(
                "corosync: address '{addr}' already used on link ring{link}_addr by node '{n}'"
            ));
        }
    }
    let cluster_links: BTreeSet<u8> = old.link_numbers();
    for l in &cluster_links {
        if !s.links.contains_key(l) {
            return no(format!(
                "corosync: link {l} exists in cluster config but wasn't specified for new node"
            ));
        }
    }
    if let Some(l) = s.links.keys().find(|l| !cluster_links.contains(l)) {
        return no(format!(
            "corosync: link {l} specified for new node doesn't exist in cluster config"
        ));
    }
    let doc = parse_new(&s.corosync_conf)?;
    let new = doc.view();
    check_versions(version_of(&old), s.from_version, s.to_version, &new)?;
    let mut want = old_nodes.clone();
    want.insert(
        s.node.clone(),
        (Some(s.nodeid), s.quorum_votes, s.links.clone()),
    );
    if node_map(&new) != want || !same_settings(&old, &new) {
        return no(format!(
            "the step's corosync.conf changes more than adding node '{}' (pvecm addnode only adds the node)",
            s.node
        ));
    }
    check_links(&new)?;
    let lock = lock_conf(w)?;
    write_conf(w, &s.corosync_conf)?;
    drop(lock);
    mkdir_node(w, &s.node)?;
    w.state.runtime_expected_votes = None;
    w.commit()?;
    done(
        format!(
            "successfully added node '{}' to cluster (config_version {})",
            s.node, s.to_version
        ),
        JOIN_MS,
    )
}

/// totem / quorum keys corosync reads only at startup (domain §2.5, §2.6).
const RESTART_ONLY: &[(&str, &str)] = &[
    ("totem", "version"),
    ("totem", "cluster_name"),
    ("totem", "ip_version"),
    ("totem", "ip_dscp"),
    ("totem", "netmtu"),
    ("totem", "threads"),
    ("totem", "link_mode"),
    ("totem", "rrp_mode"),
    ("quorum", "provider"),
    ("quorum", "wait_for_all"),
    ("quorum", "last_man_standing"),
    ("quorum", "last_man_standing_window"),
    ("quorum", "auto_tie_breaker"),
    ("quorum", "auto_tie_breaker_node"),
    ("quorum", "allow_downscale"),
    ("quorum", "expected_votes_tracking"),
];

/// The restart-only settings the new file changes, as `section.key`.
fn restart_only_changes(old: &Document, new: &Document) -> Vec<String> {
    let mut out = Vec::new();
    if old.view().effective_transport() != new.view().effective_transport() {
        out.push("totem.transport".to_string());
    }
    for (section, key) in RESTART_ONLY {
        if old.get_all(&[section], key) != new.get_all(&[section], key) {
            out.push(format!("{section}.{key}"));
        }
    }
    let system = |d: &Document| -> Vec<(String, String)> {
        d.sections(&["system"])
            .iter()
            .flat_map(|s| {
                s.entries()
                    .map(|e| (e.key().to_string(), e.value().to_string()))
            })
            .collect()
    };
    if system(old) != system(new) {
        out.push("system.*".to_string());
    }
    out
}

/// Addresses of existing nodeids on links in both files that differ, and links whose
/// knet_transport changes: corosync refuses to reload these.
fn readdressed(old: &CorosyncConf, new: &CorosyncConf) -> Option<String> {
    let common: BTreeSet<u8> = old
        .link_numbers()
        .intersection(&new.link_numbers())
        .copied()
        .collect();
    for n in &new.nodes {
        let Some(o) = n.nodeid.and_then(|id| old.node_by_id(id)) else {
            continue;
        };
        for l in &common {
            if let (Some(a), Some(b)) = (o.rings.get(l), n.rings.get(l)) {
                if a != b {
                    return Some(format!("new config has different address for link {l} (addr changed from {a} to {b}). Internal value was NOT changed."));
                }
            }
        }
    }
    for l in &common {
        let t = |v: &CorosyncConf| {
            v.totem
                .interfaces
                .get(l)
                .and_then(|i| i.knet_transport.clone())
        };
        if t(old) != t(new) {
            return Some(format!(
                "knet_transport of link {l} changed. Internal value was NOT changed."
            ));
        }
    }
    None
}

pub(super) fn update(w: &mut World, s: &UpdateCorosync) -> R<Applied> {
    let Some(old_doc) = w.conf.clone() else {
        return no("no cluster: corosync.conf does not exist");
    };
    require_quorum(w, "cfs-lock 'file-corosync_conf' error: no quorum!")?;
    let old = old_doc.view();
    let doc = parse_new(&s.corosync_conf)?;
    let new = doc.view();
    check_versions(version_of(&old), s.from_version, s.to_version, &new)?;
    check_links(&new)?;
    if old.totem.cluster_name != new.totem.cluster_name {
        return no("totem.cluster_name cannot be changed on a Proxmox VE cluster (pmxcfs and the node certificates use it)");
    }
    for n in &new.nodes {
        if let Some(o) = n.name.as_deref().and_then(|name| old.node_by_name(name)) {
            if o.nodeid != n.nodeid {
                return no(format!(
                    "the nodeid of joined node '{}' cannot change ({:?} -> {:?})",
                    n.name.as_deref().unwrap_or("?"),
                    o.nodeid,
                    n.nodeid
                ));
            }
        }
    }
    let restart_only = restart_only_changes(&old_doc, &doc);
    let (duration, how) = match s.method {
        Method::Reload => {
            if let Some(first) = restart_only.first() {
                return no(format!(
                    "corosync-cfgtool -R: Modified entry '{first}' in corosync.conf cannot be changed at run-time; needs a restart (changed: {})",
                    restart_only.join(", ")
                ));
            }
            if let Some(msg) = readdressed(&old, &new) {
                return no(format!("corosync-cfgtool -R: {msg} ERROR from reload: To reconfigure an interface it must be deleted and recreated. A working interface needs to be available to corosync at all times"));
            }
            (RELOAD_MS, "reloaded".to_string())
        }
        Method::RollingRestart => {
            let restarted = rolling_restart_check(w, &old, &new, &s.restart_order, &restart_only)?;
            (
                RESTART_MS_PER_NODE * restarted.len() as u64,
                format!("restarted corosync on {}", restarted.join(", ")),
            )
        }
    };
    let lock = lock_conf(w)?;
    write_conf(w, &s.corosync_conf)?;
    drop(lock);
    w.state.runtime_expected_votes = None;
    w.commit()?;
    done(
        format!(
            "corosync.conf config_version {} -> {}; {how}",
            s.from_version, s.to_version
        ),
        duration,
    )
}

/// Restart the members one at a time in `order`; refuse when a moment without quorum
/// comes. Nodes restarted on another transport cannot talk to the others: they form their
/// own partition, and some partition must stay quorate. Returns the restarted nodes.
fn rolling_restart_check(
    w: &World,
    old: &CorosyncConf,
    new: &CorosyncConf,
    order: &[String],
    restart_only: &[String],
) -> R<Vec<String>> {
    let online: BTreeSet<String> = w.core().membership.online;
    let new_names: BTreeSet<String> = node_map(new).into_keys().collect();
    for n in order {
        if !new_names.contains(n) && !online.contains(n) {
            return no(format!(
                "restart_order names '{n}', which is not a node of the cluster"
            ));
        }
    }
    if let Some(missing) = online.iter().find(|n| !order.contains(n)) {
        return no(format!(
            "'{missing}' is not in restart_order: it would keep running the old configuration"
        ));
    }
    let split = old.effective_transport() != new.effective_transport()
        || restart_only.iter().any(|k| k == "totem.transport");
    let votes: BTreeMap<String, u32> = node_map(new)
        .into_iter()
        .map(|(n, (_, v, _))| (n, v))
        .collect();
    let two_node = new.quorum.two_node.unwrap_or(0) == 1;
    let state = |members: &BTreeSet<String>| VoteState {
        votes: votes.clone(),
        online: members.clone(),
        config_expected: new.quorum.expected_votes,
        runtime_expected: None,
        two_node,
    };
    let mut done_set: BTreeSet<String> = BTreeSet::new();
    let mut restarted = Vec::new();
    for n in order.iter().filter(|n| online.contains(*n)) {
        let restarted_up: BTreeSet<String> = done_set.clone();
        let old_up: BTreeSet<String> = online
            .iter()
            .filter(|m| *m != n && !done_set.contains(*m))
            .cloned()
            .collect();
        let ok = if split {
            state(&restarted_up).quorate() || state(&old_up).quorate()
        } else {
            let all: BTreeSet<String> = restarted_up.union(&old_up).cloned().collect();
            state(&all).quorate()
        };
        if !ok {
            let detail = if split {
                format!(
                    "the restarted nodes ({}) run another transport and cannot talk to the others ({}); neither side is quorate",
                    names(&restarted_up),
                    names(&old_up)
                )
            } else {
                let all: BTreeSet<String> = restarted_up.union(&old_up).cloned().collect();
                state(&all).arithmetic()
            };
            return no(format!(
                "restarting corosync on '{n}' would lose quorum: {detail}"
            ));
        }
        done_set.insert(n.clone());
        restarted.push(n.clone());
    }
    Ok(restarted)
}

fn names(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

pub(super) fn remove(w: &mut World, s: &RemoveNode) -> R<Applied> {
    let Some(old) = w.conf.as_ref().map(Document::view) else {
        return no("no cluster: corosync.conf does not exist");
    };
    if s.via == s.node {
        return no("Cannot delete myself from cluster!");
    }
    if !online_member(w, &s.via) {
        return no(format!(
            "'{}' is not an online member of the cluster: cannot run delnode there",
            s.via
        ));
    }
    require_quorum(w, "cfs-lock 'file-corosync_conf' error: no quorum!")?;
    let old_nodes = node_map(&old);
    if !old_nodes.contains_key(&s.node) {
        return no(format!(
            "Node/IP: {} is not a known host of the cluster.",
            s.node
        ));
    }
    if w.powered_on(&s.node) {
        return no(format!(
            "'{}' is still in the membership: power it off before delnode (it must never come back with the old configuration)",
            s.node
        ));
    }
    let doc = parse_new(&s.corosync_conf)?;
    let new = doc.view();
    check_versions(version_of(&old), s.from_version, s.to_version, &new)?;
    let mut want = old_nodes;
    want.remove(&s.node);
    if node_map(&new) != want || !same_settings(&old, &new) {
        return no(format!(
            "the step's corosync.conf changes more than removing node '{}' (pvecm delnode only removes the node)",
            s.node
        ));
    }
    check_links(&new)?;
    let lock = lock_conf(w)?;
    write_conf(w, &s.corosync_conf)?;
    drop(lock);
    w.host_mut(&s.node).removed = true;
    w.state.runtime_expected_votes = None;
    if w.state.local_node.as_deref() == Some(s.node.as_str()) {
        w.state.local_node = Some(s.via.clone());
    }
    w.commit()?;
    done(
        format!(
            "deleted node {} from cluster (config_version {}); nodes/{} is left behind",
            s.node, s.to_version, s.node
        ),
        RELOAD_MS,
    )
}
