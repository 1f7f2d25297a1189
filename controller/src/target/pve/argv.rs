//! The argument vectors the `pve` target runs, one pure function per command, so that tests
//! assert the exact vectors for both PVE generations. Nothing here runs anything and no
//! vector ever holds a secret (the join password goes to standard input).

use super::parse::Generation;
use crate::plan::step::{CreateCluster, JoinNode, MigrateGuest};
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::spec::GuestType;
use std::collections::BTreeMap;

fn s(v: &str) -> String {
    v.to_string()
}

/// Per link of the planned corosync.conf: `knet_link_priority` and `bindnetaddr`.
fn interface_options(conf: &str) -> BTreeMap<u8, (Option<u8>, Option<String>)> {
    let Ok(doc) = Document::parse(conf) else {
        return BTreeMap::new();
    };
    doc.view()
        .totem
        .interfaces
        .iter()
        .map(|(n, i)| (*n, (i.knet_link_priority, i.bindnetaddr.clone())))
        .collect()
}

/// `--linkN ADDR[,priority=P]` (corosync 3) or `--ringN_addr ADDR [--bindnetN_addr NET]`
/// (corosync 2). Priorities are only given on create (`pvecm add` ignores them); a
/// priority of 0 is not written, as pvecm does not write it.
fn link_args(
    gen: Generation,
    links: &BTreeMap<u8, String>,
    conf: &str,
    create: bool,
) -> Vec<String> {
    let opts = interface_options(conf);
    let mut v = Vec::new();
    for (n, addr) in links {
        let (prio, bindnet) = opts.get(n).cloned().unwrap_or_default();
        match gen {
            Generation::Corosync3 => {
                v.push(format!("--link{n}"));
                match prio.filter(|p| create && *p > 0) {
                    Some(p) => v.push(format!("{addr},priority={p}")),
                    None => v.push(addr.clone()),
                }
            }
            Generation::Corosync2 => {
                v.push(format!("--ring{n}_addr"));
                v.push(addr.clone());
                if create {
                    v.push(format!("--bindnet{n}_addr"));
                    v.push(bindnet.unwrap_or_else(|| addr.clone()));
                }
            }
        }
    }
    v
}

/// `pvecm create NAME --link0 .. [--nodeid N] [--votes N]`, run on the founding node.
pub fn create(gen: Generation, step: &CreateCluster) -> Vec<String> {
    let mut v = vec![s("pvecm"), s("create"), step.cluster_name.clone()];
    v.extend(link_args(gen, &step.links, &step.corosync_conf, true));
    v.extend([s("--nodeid"), step.nodeid.to_string()]);
    v.extend([s("--votes"), step.quorum_votes.to_string()]);
    v
}

/// How `pvecm add` authenticates to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinAuth {
    /// `--use_ssh 1`: root's ssh key must already be accepted by the peer.
    Ssh,
    /// The join API: the peer's root password on standard input, the peer's certificate
    /// pinned with `--fingerprint`.
    Api {
        /// SHA-256 fingerprint of the peer's API certificate.
        fingerprint: String,
    },
}

/// `pvecm add PEER --link0 .. [--nodeid N] [--votes N] (--use_ssh 1 | --fingerprint FP)`,
/// run on the joining node.
pub fn join(gen: Generation, step: &JoinNode, peer: &str, auth: &JoinAuth) -> Vec<String> {
    let mut v = vec![s("pvecm"), s("add"), peer.to_string()];
    v.extend(link_args(gen, &step.links, &step.corosync_conf, false));
    v.extend([s("--nodeid"), step.nodeid.to_string()]);
    v.extend([s("--votes"), step.quorum_votes.to_string()]);
    match auth {
        JoinAuth::Ssh => v.extend([s("--use_ssh"), s("1")]),
        JoinAuth::Api { fingerprint } => v.extend([s("--fingerprint"), fingerprint.clone()]),
    }
    v
}

/// `pvecm delnode NAME`, run on another member.
pub fn delnode(node: &str) -> Vec<String> {
    vec![s("pvecm"), s("delnode"), node.to_string()]
}

/// `pvecm expected N`.
pub fn expected(n: u32) -> Vec<String> {
    vec![s("pvecm"), s("expected"), n.to_string()]
}

/// The step's `qm migrate` / `pct migrate` vector, plus `--with-local-disks` for qemu when
/// asked.
pub fn migrate(step: &MigrateGuest, with_local_disks: bool) -> Vec<String> {
    let mut v = step.command();
    if with_local_disks && step.guest_type == GuestType::Qemu {
        v.push(s("--with-local-disks"));
    }
    v
}

/// `corosync-quorumtool -s -p`: votequorum status, machine-parsable membership.
pub fn quorum_status() -> Vec<String> {
    vec![s("corosync-quorumtool"), s("-s"), s("-p")]
}

/// `corosync-quorumtool -l`: exit 0 when corosync runs (pvecm's "already running" check).
pub fn quorum_list() -> Vec<String> {
    vec![s("corosync-quorumtool"), s("-l")]
}

/// `corosync-cfgtool -R`: every node re-reads its own corosync.conf (what pmxcfs runs after
/// a change).
pub fn cfgtool_reload() -> Vec<String> {
    vec![s("corosync-cfgtool"), s("-R")]
}

/// `corosync-cmapctl -g KEY`.
pub fn cmap_get(key: &str) -> Vec<String> {
    vec![s("corosync-cmapctl"), s("-g"), key.to_string()]
}

/// `corosync-cmapctl PREFIX` (a subtree).
pub fn cmap_prefix(prefix: &str) -> Vec<String> {
    vec![s("corosync-cmapctl"), prefix.to_string()]
}

/// The runtime membership prefix of the generation.
pub fn runtime_members_prefix(gen: Generation) -> &'static str {
    match gen {
        Generation::Corosync3 => "runtime.members",
        Generation::Corosync2 => "runtime.totem.pg.mrp.srp.members",
    }
}

/// `ip -o addr show to ADDR/32 up` (`/128` for IPv6): is the address on this host?
pub fn ip_addr_show(addr: &std::net::IpAddr) -> Vec<String> {
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    vec![
        s("ip"),
        s("-o"),
        s("addr"),
        s("show"),
        s("to"),
        format!("{addr}/{prefix}"),
        s("up"),
    ]
}

/// `corosync -v` (generation detection).
pub fn corosync_version() -> Vec<String> {
    vec![s("corosync"), s("-v")]
}

/// `pvesh get /cluster/resources --type vm --output-format json` (guest run states).
pub fn resources() -> Vec<String> {
    vec![
        s("pvesh"),
        s("get"),
        s("/cluster/resources"),
        s("--type"),
        s("vm"),
        s("--output-format"),
        s("json"),
    ]
}

/// `pvesh get /nodes/NODE/tasks/UPID/status --output-format json`.
pub fn task_status(node: &str, upid: &str) -> Vec<String> {
    vec![
        s("pvesh"),
        s("get"),
        format!("/nodes/{node}/tasks/{upid}/status"),
        s("--output-format"),
        s("json"),
    ]
}

/// `pvesh get /nodes/NODE/tasks/UPID/log --limit 50 --output-format json`.
pub fn task_log(node: &str, upid: &str) -> Vec<String> {
    vec![
        s("pvesh"),
        s("get"),
        format!("/nodes/{node}/tasks/{upid}/log"),
        s("--start"),
        s("0"),
        s("--limit"),
        s("500"),
        s("--output-format"),
        s("json"),
    ]
}

/// Restart corosync on this node.
pub fn restart_corosync_local() -> Vec<String> {
    vec![s("systemctl"), s("restart"), s("corosync")]
}

/// Restart corosync on another node over the cluster's root ssh (as PVE's own tools reach
/// other nodes), never prompting.
pub fn restart_corosync_remote(node: &str, ip: &str) -> Vec<String> {
    vec![
        s("ssh"),
        s("-o"),
        s("BatchMode=yes"),
        s("-o"),
        format!("HostKeyAlias={node}"),
        format!("root@{ip}"),
        s("systemctl"),
        s("restart"),
        s("corosync"),
    ]
}
