//! `observe` of the `pve` target: the files of `/etc/pve` through [`ConfigFs`], votequorum
//! numbers from `corosync-quorumtool -s -p`, the config_version every member runs from
//! `corosync-cmapctl`, guest run states from `pvesh get /cluster/resources`.
//!
//! When a tool is unavailable (corosync stopped, a fixture without it), the pmxcfs files
//! stand in: `.members` gives membership and quorum, and members are assumed to run the
//! file's config_version.
//!
//! A standalone node (no corosync.conf) with `--peer` observes the cluster through the
//! peer's API ([`ApiTarget`]) and merges itself in as a standalone, powered-on host with the
//! guests of its own `/etc/pve`.

use super::parse::{parse_cmap, parse_quorum_status, runtime_members, CmapEntry, ResourceEntry};
use super::{argv, PveTarget};
use crate::configfs::{ConfigFs, ConfigFsError};
use crate::observed::{Host, Membership, Observed};
use crate::target::pve_api::ApiTarget;
use crate::target::{Target, TargetError};
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::datacenter::DatacenterDocument;
use std::collections::{BTreeMap, BTreeSet};

fn fs_error(e: ConfigFsError) -> TargetError {
    match e {
        ConfigFsError::Root { path, source }
        | ConfigFsError::ReadFile { path, source }
        | ConfigFsError::ReadDir { path, source } => TargetError::Read { path, source },
        ConfigFsError::NotADirectory { path } => {
            TargetError::Unavailable(format!("{} is not a directory", path.display()))
        }
    }
}

/// This node's name: the option, else `.members` `nodename`, else the kernel host name.
fn local_node(t: &PveTarget, cfs: &ConfigFs) -> String {
    if let Some(n) = &t.opts.node {
        return n.clone();
    }
    if let Some(m) = &cfs.members {
        return m.nodename.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| h.trim().split('.').next().map(str::to_string))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Why a standalone node without `--peer` plans as if no cluster existed.
pub(super) fn needs_peer(local: &str, root: &std::path::Path) -> String {
    format!(
        "{local} is standalone (no corosync.conf in {}) and cannot see an existing cluster: \
         a node that is to join one needs --peer https://MEMBER:8006 (with --api-token-file and \
         --fingerprint or --ca-bundle) to see it",
        root.display()
    )
}

/// Read everything; returns the observation, this node's name and whether the local
/// `/etc/pve` has no cluster.
pub(super) fn observe(t: &mut PveTarget) -> Result<(Observed, String, bool), TargetError> {
    let cfs = ConfigFs::read(&t.root).map_err(fs_error)?;
    let conf_errors: Vec<String> = cfs
        .diagnostics_for(crate::configfs::COROSYNC_CONF)
        .filter(|d| d.is_error())
        .map(|d| match &d.location {
            Some(l) => format!("{}:{}: {}", l.line, l.col, d.message),
            None => d.message.clone(),
        })
        .collect();
    if !conf_errors.is_empty() {
        return Err(TargetError::Parse {
            path: t.root.join(crate::configfs::COROSYNC_CONF),
            message: conf_errors.join("; "),
        });
    }
    let local = local_node(t, &cfs);
    if cfs.corosync.is_none() {
        if let Some(peer) = t.opts.peer.clone() {
            let o = through_peer(t, &cfs, peer, &local)?;
            return Ok((o, local, true));
        }
    }
    let corosync: Option<Document> = cfs.corosync.as_ref().map(|(_, d)| d.clone());
    let mut o = Observed {
        corosync,
        datacenter: cfs
            .datacenter
            .as_ref()
            .map(|(_, d)| d.clone())
            .unwrap_or_else(DatacenterDocument::default),
        ..Observed::default()
    };

    // Nodelist: name -> (nodeid, votes).
    let nodelist: BTreeMap<String, u32> = o
        .corosync
        .as_ref()
        .map(|d| {
            d.view()
                .nodes
                .iter()
                .filter_map(|n| {
                    let name = n.name.clone().or_else(|| n.rings.get(&0).cloned())?;
                    Some((name, n.nodeid.unwrap_or(0)))
                })
                .collect()
        })
        .unwrap_or_default();
    let by_id: BTreeMap<u32, String> = nodelist.iter().map(|(n, id)| (*id, n.clone())).collect();

    // Hosts.
    let members_online = |name: &str| -> Option<bool> {
        cfs.members
            .as_ref()
            .and_then(|m| m.nodelist.get(name))
            .map(|n| n.online)
    };
    for name in nodelist.keys() {
        let online = members_online(name).unwrap_or(name == &local);
        o.hosts.insert(name.clone(), host(name, online));
    }
    o.hosts
        .entry(local.clone())
        .or_insert_with(|| host(&local, true));
    for name in &t.opts.manifest_nodes {
        // Not visible from here: their own controller joins them and checks them for real.
        o.hosts
            .entry(name.clone())
            .or_insert_with(|| host(name, true));
    }

    // Membership and versions.
    if o.corosync.is_some() {
        membership(t, &mut o, &cfs, &by_id, &local);
    } else {
        o.recompute_membership();
    }

    // Guests.
    let states = run_states(t);
    for g in &cfs.guests {
        // Unknown run state: assume running, so that the plan uses --online/--restart
        // (harmless for a stopped guest; a running one would be refused without them).
        let running = states.as_ref().is_none_or(|s| s.contains(&g.vmid));
        o.guests
            .entry(g.vmid)
            .or_insert_with(|| g.observed(running));
    }
    let with_guests: BTreeSet<&str> = cfs.guests.iter().map(|g| g.node.as_str()).collect();
    o.leftover_node_dirs = cfs
        .stale_node_dirs()
        .into_iter()
        .filter(|d| with_guests.contains(d.as_str()))
        .collect();
    o.lock = controller_lock(&t.root);
    let standalone = o.corosync.is_none();
    if standalone && t.opts.founder.as_deref() != Some(local.as_str()) {
        o.notes.push(needs_peer(&local, &t.root));
    }
    Ok((o, local, standalone))
}

/// The cluster as `peer`'s API shows it, plus this standalone node and its own guests.
fn through_peer(
    t: &mut PveTarget,
    cfs: &ConfigFs,
    peer: crate::target::pve_api::client::ApiClient,
    local: &str,
) -> Result<Observed, TargetError> {
    let url = peer.url();
    // A node in the nodelist without a local corosync.conf (an interrupted join) is planned
    // as a stopped member; its restart then refuses with what is missing.
    let mut o = ApiTarget::from_clients(peer, BTreeMap::new())
        .observe()
        .map_err(|e| match e {
            TargetError::Command { message, .. } => TargetError::Command {
                command: format!("--peer {url}"),
                message,
            },
            other => other,
        })?;
    o.hosts.insert(local.to_string(), host(local, true));
    for name in &t.opts.manifest_nodes {
        // As without --peer: hosts neither the cluster nor this node sees are taken as up.
        o.hosts
            .entry(name.clone())
            .or_insert_with(|| host(name, true));
    }
    // Guest configs the cluster keeps under this name (left behind by an earlier delnode)
    // are not this host's: they stay in `leftover_node_dirs`.
    if !o.is_joined(local) {
        o.guests.retain(|_, g| g.node != local);
    }
    let states = run_states(t);
    for g in cfs.guests.iter().filter(|g| g.node == local) {
        let running = states.as_ref().is_none_or(|s| s.contains(&g.vmid));
        o.guests
            .entry(g.vmid)
            .or_insert_with(|| g.observed(running));
    }
    Ok(o)
}

fn host(name: &str, online: bool) -> Host {
    Host {
        name: name.to_string(),
        online,
        memory_mib: 0,
        addresses: None,
    }
}

/// votequorum from `corosync-quorumtool -s -p` (exit 0 quorate, 2 not quorate), else from
/// `.members`; versions from `corosync-cmapctl`.
fn membership(
    t: &mut PveTarget,
    o: &mut Observed,
    cfs: &ConfigFs,
    by_id: &BTreeMap<u32, String>,
    local: &str,
) {
    let timeout = t.opts.command_timeout;
    let status = t
        .runner
        .run(&argv::quorum_status(), None, timeout)
        .ok()
        .filter(|out| matches!(out.code, Some(0) | Some(2)))
        .and_then(|out| parse_quorum_status(&out.stdout).ok());
    match status {
        Some(q) => {
            let online: BTreeSet<String> = q
                .members
                .iter()
                .map(|(id, _, name)| by_id.get(id).cloned().unwrap_or_else(|| name.clone()))
                .collect();
            let view = o.corosync.as_ref().map(|d| d.view());
            let configured = view
                .as_ref()
                .and_then(|v| v.quorum.expected_votes)
                .unwrap_or(
                    view.as_ref()
                        .map(|v| v.nodes.iter().map(|n| n.quorum_votes.unwrap_or(1)).sum())
                        .unwrap_or(0),
                );
            for n in &online {
                if let Some(h) = o.hosts.get_mut(n) {
                    h.online = true;
                }
            }
            o.membership = Membership {
                online,
                quorate: q.quorate,
                expected_votes: q.expected_votes,
                total_votes: q.total_votes,
                quorum: q.quorum,
                runtime_expected: (q.expected_votes != configured).then_some(q.expected_votes),
            };
        }
        None => {
            // corosync is not reachable here: .members (pmxcfs) says who is online.
            o.recompute_membership();
            if let Some(c) = cfs.members.as_ref().and_then(|m| m.cluster.as_ref()) {
                o.membership.quorate = c.quorate;
            }
            if !o.membership.online.contains(local) {
                o.membership.quorate = false;
            }
        }
    }
    let version = o.config_version();
    let gen = t.generation();
    let runtime = t
        .runner
        .run(
            &argv::cmap_prefix(argv::runtime_members_prefix(gen)),
            None,
            timeout,
        )
        .ok()
        .filter(|out| out.success())
        .and_then(|out| parse_cmap(&out.stdout).ok())
        .map(|e| runtime_members(&e));
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(rm) = &runtime {
        for (id, m) in rm {
            if m.status.as_deref() == Some("left") {
                continue;
            }
            if let (Some(name), Some(v)) = (by_id.get(id), m.config_version) {
                versions.insert(name.clone(), v);
            }
        }
    }
    if !versions.contains_key(local) && o.membership.online.contains(local) {
        let v = t
            .runner
            .run(&argv::cmap_get("totem.config_version"), None, timeout)
            .ok()
            .filter(|out| out.success())
            .and_then(|out| parse_cmap(&out.stdout).ok())
            .and_then(|e| e.first().and_then(CmapEntry::as_u64));
        if let Some(v) = v {
            versions.insert(local.to_string(), v);
        }
    }
    for n in &o.membership.online {
        // Members the tools did not report on (cs2, tools missing): the file's version.
        versions.entry(n.clone()).or_insert(version);
    }
    versions.retain(|n, _| o.membership.online.contains(n));
    o.node_config_versions = versions;
}

/// VMIDs of running guests (`pvesh get /cluster/resources --type vm`), None when unknown.
fn run_states(t: &mut PveTarget) -> Option<BTreeSet<u32>> {
    let out = t
        .runner
        .run(&argv::resources(), None, t.opts.command_timeout)
        .ok()
        .filter(|o| o.success())?;
    let entries: Vec<ResourceEntry> = serde_json::from_str(&out.stdout).ok()?;
    Some(
        entries
            .iter()
            .filter(|e| e.status.as_deref() == Some("running"))
            .filter_map(|e| e.vmid.and_then(|v| u32::try_from(v).ok()))
            .collect(),
    )
}

/// The holder of the pve-gitops controller lock `priv/lock/pve-gitops`.
fn controller_lock(root: &std::path::Path) -> Option<String> {
    crate::cfs_lock::holder(root, crate::cfs_lock::CONTROLLER_LOCK).map(|h| h.holder)
}
