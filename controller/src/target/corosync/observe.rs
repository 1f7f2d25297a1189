//! Observe: live membership and votequorum numbers from `corosync-quorumtool -s -p`, running
//! config versions from cmap, the master corosync.conf from the shared directory — and the
//! replication every invocation performs, as pmxcfs does on Proxmox VE:
//!
//! 1. **Register the host**: touch `DIR/priv/pve-gitops/hosts/NAME`. A host registered within
//!    [`HOST_TTL`] is up (powered on, controller running) even when it is not a corosync
//!    member yet — that is how members learn that a standalone host can be joined.
//! 2. **Sync the master**: when this node is in the master's nodelist and its corosync.conf
//!    differs from the master, install the master (`.new` + rename) — unless the local corosync
//!    already runs a *newer* config_version than the master (pmxcfs: "local corosync.conf is
//!    newer"). Then record `VERSION DIGEST` in `DIR/nodes/NAME/corosync-synced`; the lock holder
//!    reloads only when every member's record shows the new master.
//! 3. **Publish the membership** (when corosync runs here) to
//!    `DIR/priv/pve-gitops/membership/NAME.json` (each node its own file), so that a node whose
//!    corosync is down (a joining node, a node being restarted) still sees the cluster's
//!    membership and quorum: the best fresh view ([`best_view`]).
//!
//! Steps 1–3 also run under `--dry-run`: they never change the master, never reload and never
//! start or stop anything; they only keep this node's replica current, as pmxcfs would.

use super::tools::{self, QuorumStatus, TOOL_TIMEOUT};
use super::{digest, tool, CorosyncTarget, HOSTS_DIR, MEMBERSHIP_DIR, SYNC_RECORD};
use crate::configfs::{atomic_write, ConfigFs};
use crate::observed::{Host, Membership, Observed};
use crate::target::TargetError;
use pve_gitops_schema::corosync::Document;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A host registration (or published membership) older than this is ignored.
pub const HOST_TTL: Duration = Duration::from_secs(120);

/// What the local corosync reports.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// `corosync-quorumtool -s -p` (None: corosync is not running here).
    pub status: Option<QuorumStatus>,
    /// cmap `totem.config_version` (the version corosync runs).
    pub running_version: Option<u64>,
    /// `runtime.members.<id>.config_version` of the nodes in the membership only
    /// (runtime.members keeps nodes that left).
    pub member_versions: BTreeMap<u32, u64>,
    /// When corosync was asked (ms since the Unix epoch).
    pub observed_ms: u64,
}

impl Live {
    /// The config_version member `id` runs: `runtime.members.<id>.config_version` (refreshed
    /// by a reload too, seen on corosync 3.1.7); a member missing there reports what this node
    /// runs.
    pub fn member_version(&self, id: u32) -> Option<u64> {
        self.member_versions
            .get(&id)
            .copied()
            .or(self.running_version)
    }
}

/// The membership as a running member saw it, for nodes whose corosync is down.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Published {
    /// The node that wrote it.
    pub by: String,
    /// Members by name.
    pub online: Vec<String>,
    /// Quorate.
    pub quorate: bool,
    /// Expected votes.
    pub expected_votes: u32,
    /// Total votes.
    pub total_votes: u32,
    /// Quorum.
    pub quorum: u32,
    /// Runtime expected-votes override.
    pub runtime_expected: Option<u32>,
    /// Running config_version per member.
    pub versions: BTreeMap<String, u64>,
    /// Votes per member.
    pub votes: BTreeMap<String, u32>,
    /// When corosync was asked (ms since the Unix epoch): of two views the later observation
    /// wins, whenever each was written.
    #[serde(default)]
    pub observed_ms: u64,
}

fn io_write(path: &Path) -> impl FnOnce(std::io::Error) -> TargetError + '_ {
    move |source| TargetError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// `corosync-quorumtool -s -p` on this node (None: not running, or unreadable output).
pub fn local_status(_t: &CorosyncTarget) -> Option<QuorumStatus> {
    let out = tools::run(
        &[tool("corosync-quorumtool"), "-s".into(), "-p".into()],
        TOOL_TIMEOUT,
    )
    .ok()?;
    if !matches!(out.code, Some(0 | 2)) {
        return None;
    }
    tools::parse_quorum_status(&out.stdout).ok()
}

/// cmap `totem.config_version` on this node.
pub fn running_version() -> Option<u64> {
    let out = tools::run(
        &[
            tool("corosync-cmapctl"),
            "-g".into(),
            "totem.config_version".into(),
        ],
        TOOL_TIMEOUT,
    )
    .ok()?;
    if !out.success() {
        return None;
    }
    tools::parse_cmap(&out.stdout)
        .ok()?
        .first()
        .and_then(tools::CmapEntry::as_u64)
}

/// cmap `totem.config_version` and the `runtime.members.<id>.config_version` of every node
/// there (including nodes that left), in one `corosync-cmapctl` call (it takes several key
/// prefixes).
fn running_and_member_versions() -> (Option<u64>, BTreeMap<u32, u64>) {
    let argv = [
        tool("corosync-cmapctl"),
        "totem.config_version".into(),
        "runtime.members".into(),
    ];
    let Ok(out) = tools::run(&argv, TOOL_TIMEOUT) else {
        return (None, BTreeMap::new());
    };
    if !out.success() {
        return (None, BTreeMap::new());
    }
    let entries = tools::parse_cmap(&out.stdout).unwrap_or_default();
    let running = entries
        .iter()
        .find(|e| e.key == "totem.config_version")
        .and_then(tools::CmapEntry::as_u64);
    (
        running,
        tools::member_config_versions(&entries)
            .into_iter()
            .collect(),
    )
}

/// Everything the local corosync reports: `corosync-quorumtool -s -p` and one
/// `corosync-cmapctl` call, run side by side (each tool call opens its own IPC connections to
/// corosync and takes 5-20 ms; they are independent).
pub fn live(t: &CorosyncTarget) -> Live {
    let observed_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let cmap = std::thread::spawn(running_and_member_versions);
    let status = local_status(t);
    let (running, versions) = cmap.join().unwrap_or_default();
    let Some(status) = status else {
        return Live::default();
    };
    let ids: BTreeSet<u32> = status.members.iter().map(|m| m.0).collect();
    Live {
        running_version: running,
        // runtime.members keeps nodes that left: only the membership's count.
        member_versions: versions
            .into_iter()
            .filter(|(id, _)| ids.contains(id))
            .collect(),
        status: Some(status),
        observed_ms,
    }
}

/// The `totem.config_version` of a corosync.conf text (0 when absent or unparsable).
pub fn version_of(text: &str) -> u64 {
    Document::parse(text)
        .ok()
        .and_then(|d| d.view().totem.config_version)
        .unwrap_or(0)
}

pub(super) fn read_opt(path: &Path) -> Result<Option<String>, TargetError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TargetError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The master corosync.conf text, if the cluster exists.
///
/// # Errors
/// The file exists but cannot be read.
pub fn read_master(t: &CorosyncTarget) -> Result<Option<String>, TargetError> {
    read_opt(&t.master_path())
}

/// This node's sync record path.
pub fn record_path(t: &CorosyncTarget, node: &str) -> std::path::PathBuf {
    t.opts.shared.join("nodes").join(node).join(SYNC_RECORD)
}

/// `(version, digest)` of `node`'s sync record.
pub fn read_record(t: &CorosyncTarget, node: &str) -> Option<(u64, String)> {
    let s = fs::read_to_string(record_path(t, node)).ok()?;
    let mut w = s.split_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.to_string()))
}

/// Install `master` as this node's corosync.conf when it differs (and corosync here does not
/// run a newer version), and record it. Returns whether the local file was written.
///
/// # Errors
/// The local file or the record cannot be written.
pub fn sync_text(
    t: &CorosyncTarget,
    master: &str,
    running: Option<u64>,
) -> Result<bool, TargetError> {
    let Ok(doc) = Document::parse(master) else {
        return Ok(false);
    };
    if doc.view().node_by_name(&t.opts.node).is_none() {
        return Ok(false);
    }
    let version = doc.view().totem.config_version.unwrap_or(0);
    if running.is_some_and(|r| r > version) {
        return Ok(false);
    }
    let local = read_opt(&t.opts.local_conf)?;
    let mut wrote = false;
    if local.as_deref() != Some(master) {
        if let Some(dir) = t.opts.local_conf.parent() {
            fs::create_dir_all(dir).map_err(io_write(dir))?;
        }
        atomic_write(&t.opts.local_conf, master.as_bytes())
            .map_err(io_write(&t.opts.local_conf))?;
        eprintln!(
            "pve-gitops: {}: installed the master corosync.conf (config_version {version}) as {}",
            t.opts.node,
            t.opts.local_conf.display()
        );
        wrote = true;
    }
    let record = format!("{version} {}\n", digest(master));
    let path = record_path(t, &t.opts.node);
    if fs::read_to_string(&path).ok().as_deref() != Some(record.as_str()) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_write(dir))?;
        }
        atomic_write(&path, record.as_bytes()).map_err(io_write(&path))?;
    }
    Ok(wrote)
}

/// Keeps this node a current replica while its controller waits (for the lock): every
/// [`Replica::tick`] looks at the master's metadata (one `stat`) and installs it when it
/// changed, so a lock holder waiting for this node's sync record sees it within a tick; the
/// host registration is renewed every [`REGISTER_EVERY`].
pub struct Replica<'a> {
    t: &'a CorosyncTarget,
    /// (modified, length, inode) of the master last installed (None: not yet looked; Some(None):
    /// there was no master).
    seen: Option<Option<(Option<SystemTime>, u64, u64)>>,
    registered: Option<std::time::Instant>,
}

/// How often a waiting controller renews its host registration (the TTL is [`HOST_TTL`]).
pub const REGISTER_EVERY: Duration = Duration::from_secs(10);

impl<'a> Replica<'a> {
    /// A replica of `t`'s master on `t`'s node; the first tick installs the master.
    pub fn new(t: &'a CorosyncTarget) -> Replica<'a> {
        Replica {
            t,
            seen: None,
            registered: None,
        }
    }

    /// A replica that acts only on changes from now on (the master as it is now counts as
    /// installed: the observation that just ran synced it).
    pub fn from_now(t: &'a CorosyncTarget) -> Replica<'a> {
        Replica {
            t,
            seen: Some(super::file_sig(&t.master_path())),
            registered: Some(std::time::Instant::now()),
        }
    }

    /// Install the master if it changed since the last tick (errors are left for the next
    /// observation to report); renew the registration when due.
    pub fn tick(&mut self) {
        if self
            .registered
            .is_none_or(|at| at.elapsed() >= REGISTER_EVERY)
        {
            let _ = register(self.t, None);
            self.registered = Some(std::time::Instant::now());
        }
        let sig = super::file_sig(&self.t.master_path());
        if self.seen.as_ref() == Some(&sig) {
            return;
        }
        if sig.is_none() {
            self.seen = Some(None);
            return;
        }
        if let Ok(Some(master)) = read_master(self.t) {
            if sync_text(self.t, &master, running_version()).is_ok() {
                self.seen = Some(sig);
            }
        }
    }
}

/// Register this host: write `TIMESTAMP running|stopped ADDR,ADDR…` to
/// `DIR/priv/pve-gitops/hosts/NAME` (`running`: whether corosync runs here, None keeps the
/// state last written; this host's interface addresses, see [`Registration`]).
///
/// # Errors
/// The registration cannot be written.
pub fn register(t: &CorosyncTarget, running: Option<bool>) -> Result<(), TargetError> {
    let dir = t.opts.shared.join(HOSTS_DIR);
    fs::create_dir_all(&dir).map_err(io_write(&dir))?;
    let path = dir.join(&t.opts.node);
    let running = running.unwrap_or_else(|| {
        fs::read_to_string(&path).is_ok_and(|s| Registration::parse(&s).running)
    });
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let state = if running { "running" } else { "stopped" };
    let addrs = local_addresses()
        .map(|a| {
            let list: Vec<String> = a.iter().map(IpAddr::to_string).collect();
            format!(" {}", list.join(","))
        })
        .unwrap_or_default();
    let tmp = dir.join(format!(".{}.tmp", t.opts.node));
    fs::write(&tmp, format!("{now} {state}{addrs}\n"))
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(io_write(&path))
}

/// This host's interface addresses (loopback left out); None when they cannot be read.
fn local_addresses() -> Option<BTreeSet<IpAddr>> {
    let ifs = if_addrs::get_if_addrs().ok()?;
    Some(
        ifs.iter()
            .filter(|i| !i.is_loopback())
            .map(if_addrs::Interface::ip)
            .collect(),
    )
}

/// What a host's registration says: `TIMESTAMP running|stopped [ADDR,ADDR...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// corosync ran there at the last registration.
    pub running: bool,
    /// Its interface addresses (None: not given, e.g. by an older pve-gitops).
    pub addresses: Option<BTreeSet<IpAddr>>,
}

impl Registration {
    /// Parse a registration file's text.
    pub fn parse(text: &str) -> Registration {
        let mut f = text.split_whitespace().skip(1);
        let running = f.next() == Some("running");
        let addresses = f
            .next()
            .map(|list| list.split(',').filter_map(|a| a.parse().ok()).collect());
        Registration { running, addresses }
    }
}

fn fresh(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age < HOST_TTL)
}

/// Hosts registered within [`HOST_TTL`], with what they registered.
pub fn registered_hosts(t: &CorosyncTarget) -> BTreeMap<String, Registration> {
    let Ok(rd) = fs::read_dir(t.opts.shared.join(HOSTS_DIR)) else {
        return BTreeMap::new();
    };
    rd.flatten()
        .filter(|e| fresh(&e.path()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            let text = fs::read_to_string(e.path()).ok()?;
            Some((name, Registration::parse(&text)))
        })
        .collect()
}

/// nodeid -> name from the nodelist.
fn names(doc: Option<&Document>) -> BTreeMap<u32, String> {
    doc.map(|d| {
        d.view()
            .nodes
            .into_iter()
            .filter_map(|n| Some((n.nodeid?, n.name?)))
            .collect()
    })
    .unwrap_or_default()
}

/// The membership and per-member versions as this node's corosync reports them.
pub fn published(t: &CorosyncTarget, doc: Option<&Document>, live: &Live) -> Option<Published> {
    let st = live.status.as_ref()?;
    let ids = names(doc);
    let name = |id: u32, printed: &str| -> String {
        ids.get(&id).cloned().unwrap_or_else(|| {
            if printed.is_empty() {
                id.to_string()
            } else {
                printed.to_string()
            }
        })
    };
    let config_expected = doc.map(|d| {
        let v = d.view();
        v.quorum.expected_votes.unwrap_or_else(|| {
            v.nodes
                .iter()
                .map(|n| n.quorum_votes.unwrap_or(1))
                .sum::<u32>()
        })
    });
    Some(Published {
        by: t.opts.node.clone(),
        online: st.members.iter().map(|(id, _, n)| name(*id, n)).collect(),
        quorate: st.quorate,
        expected_votes: st.expected_votes,
        total_votes: st.total_votes,
        quorum: st.quorum,
        runtime_expected: match config_expected {
            Some(c) if c != st.expected_votes => Some(st.expected_votes),
            _ => None,
        },
        versions: st
            .members
            .iter()
            .filter_map(|(id, _, n)| {
                let v = live.member_version(*id)?;
                Some((name(*id, n), v))
            })
            .collect(),
        votes: st
            .members
            .iter()
            .map(|(id, v, n)| (name(*id, n), *v))
            .collect(),
        observed_ms: live.observed_ms,
    })
}

/// Every node's published view that is fresh (written within [`HOST_TTL`]).
fn read_views(t: &CorosyncTarget) -> Vec<Published> {
    let dir = t.opts.shared.join(MEMBERSHIP_DIR);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let path = e.path();
            let node = path
                .file_name()?
                .to_str()?
                .strip_suffix(".json")?
                .to_string();
            if !fresh(&path) {
                return None;
            }
            let p: Published = serde_json::from_str(&fs::read_to_string(&path).ok()?).ok()?;
            // A file speaks only for the node it is named after.
            (p.by == node).then_some(p)
        })
        .collect()
}

/// The view that stands for the cluster among `views` (leaving out `except`'s own). A view is
/// superseded by a later observation of a node it lists as a member (that node knows better
/// what became of the membership) — a quorate view only by a quorate one, or by one whose
/// members run a newer config_version (the cluster changed since: e.g. a join raised the
/// expected votes before the new node started), so that a member cut off since, publishing
/// its inquorate view, cannot hide the quorate partition. Of the others, a quorate one comes
/// before any inquorate one — as on Proxmox VE, where only the quorate partition can write
/// /etc/pve at all — then the latest observation.
pub fn best_view(views: Vec<Published>, except: Option<&str>) -> Option<Published> {
    let views: Vec<Published> = views
        .into_iter()
        .filter(|p| except != Some(p.by.as_str()))
        .collect();
    let newest = |p: &Published| p.versions.values().copied().max().unwrap_or(0);
    let superseded = |v: &Published| {
        views.iter().any(|w| {
            w.observed_ms > v.observed_ms
                && w.by != v.by
                && v.online.contains(&w.by)
                && (!v.quorate || w.quorate || newest(w) > newest(v))
        })
    };
    views
        .iter()
        .filter(|v| !superseded(v))
        .max_by(|a, b| (a.quorate, a.observed_ms, &a.by).cmp(&(b.quorate, b.observed_ms, &b.by)))
        .cloned()
}

/// This node missed a corosync.conf change while it was cut off: its corosync runs (`mine`),
/// inquorate, an older `config_version` than the master's (`running` < `master_version`),
/// while another node published (fresh) a quorate membership without it whose members all run
/// the master's version. Then that membership is the cluster's (returned, as
/// [`read_published`] gives it): this node is up but not a member, and the planner has it
/// install the master and restart its corosync (the node-local start step). Left alone it
/// would stay out for good: its old nodelist lacks the nodes added meanwhile, so the merge
/// never completes, and the members lose the token every few seconds while it tries.
pub fn cut_off_view(
    me: &str,
    mine: &Published,
    running: Option<u64>,
    master_version: u64,
    current: Option<Published>,
) -> Option<Published> {
    if mine.quorate || running.is_none_or(|r| r >= master_version) {
        return None;
    }
    let p = current?;
    let current_everywhere = !p.online.is_empty()
        && p.online
            .iter()
            .all(|n| p.versions.get(n) == Some(&master_version));
    (p.quorate && p.by != me && !p.online.iter().any(|n| n == me) && current_everywhere)
        .then_some(p)
}

/// The membership running members published ([`best_view`]), if fresh, without this node
/// (whose corosync is not running).
fn read_published(t: &CorosyncTarget) -> Option<Published> {
    let mut p = best_view(read_views(t), None)?;
    if p.online.iter().any(|n| n == &t.opts.node) {
        let mine = p.votes.get(&t.opts.node).copied().unwrap_or(1);
        p.online.retain(|n| n != &t.opts.node);
        p.versions.remove(&t.opts.node);
        p.total_votes = p.total_votes.saturating_sub(mine);
        p.quorate = p.quorate && p.total_votes >= p.quorum;
    }
    Some(p)
}

/// Write this node's view (`MEMBERSHIP_DIR/NAME.json`, `.new` + rename).
fn publish(t: &CorosyncTarget, p: &Published) -> Result<(), TargetError> {
    let dir = t.opts.shared.join(MEMBERSHIP_DIR);
    fs::create_dir_all(&dir).map_err(io_write(&dir))?;
    let path = dir.join(format!("{}.json", t.opts.node));
    let text = serde_json::to_string_pretty(p).unwrap_or_default();
    atomic_write(&path, text.as_bytes()).map_err(io_write(&path))
}

/// Publish the membership as corosync reports it now (a lock holder does this after a change,
/// before releasing the lock, so that nodes whose corosync is down never see the new master
/// next to the members' old versions once the lock is free).
///
/// # Errors
/// The master does not parse, or the file cannot be written.
pub fn republish(t: &CorosyncTarget) -> Result<(), TargetError> {
    let Some(master) = read_master(t)? else {
        return Ok(());
    };
    let doc = Document::parse(&master).map_err(|e| TargetError::Parse {
        path: t.master_path(),
        message: e.to_string(),
    })?;
    match published(t, Some(&doc), &live(t)) {
        Some(p) => publish(t, &p),
        None => Ok(()),
    }
}

/// Read the live state (and replicate; see the module docs). Also returns what the local
/// corosync reported.
///
/// # Errors
/// The shared directory cannot be read or written, or the master corosync.conf does not parse.
pub fn observe(t: &CorosyncTarget) -> Result<(Observed, Live), TargetError> {
    let live = live(t);
    register(t, Some(live.status.is_some()))?;
    let master = read_master(t)?;
    let text = match &master {
        Some(m) => Some(m.clone()),
        // Adopting a running corosync cluster whose shared directory is still empty: its local
        // conf stands in for the master until the first write creates the master.
        None if live.status.is_some() => read_opt(&t.opts.local_conf)?,
        None => None,
    };
    let doc = match &text {
        Some(s) => Some(Document::parse(s).map_err(|e| TargetError::Parse {
            path: t.master_path(),
            message: e.to_string(),
        })?),
        None => None,
    };
    if let Some(m) = &master {
        sync_text(t, m, live.running_version)?;
    }
    let pubd = match (published(t, doc.as_ref(), &live), &doc) {
        (Some(mine), Some(d)) => {
            publish(t, &mine)?;
            let master_version = d.view().totem.config_version.unwrap_or(0);
            let others = best_view(read_views(t), Some(&t.opts.node));
            cut_off_view(
                &t.opts.node,
                &mine,
                live.running_version,
                master_version,
                others,
            )
            .or(Some(mine))
        }
        (Some(mine), None) => Some(mine),
        (None, Some(_)) => read_published(t),
        (None, None) => None,
    };
    let mut o = Observed::default();
    if let Some(p) = &pubd {
        o.membership = Membership {
            online: p.online.iter().cloned().collect(),
            quorate: p.quorate,
            expected_votes: p.expected_votes,
            total_votes: p.total_votes,
            quorum: p.quorum,
            runtime_expected: p.runtime_expected,
        };
        o.node_config_versions = p.versions.clone();
    }
    let registered = registered_hosts(t);
    let nodelist: BTreeSet<String> = names(doc.as_ref()).into_values().collect();
    let mut hosts: BTreeSet<String> = t.opts.manifest_nodes.clone();
    hosts.extend(nodelist.iter().cloned());
    hosts.insert(t.opts.node.clone());
    for name in hosts {
        // A nodelist node outside the membership is up only if its own controller last saw
        // its corosync stopped (it starts it); one that last reported corosync running has
        // been powered off (or its corosync stopped) since.
        let online = name == t.opts.node
            || o.membership.online.contains(&name)
            || match registered.get(&name) {
                Some(r) => !(nodelist.contains(&name) && r.running),
                None => false,
            };
        let addresses = registered.get(&name).and_then(|r| r.addresses.clone());
        o.hosts.insert(
            name.clone(),
            Host {
                name,
                online,
                memory_mib: 0,
                addresses,
            },
        );
    }
    o.corosync = doc;
    let fs = ConfigFs::read(&t.opts.shared).map_err(|e| TargetError::Unavailable(e.to_string()))?;
    if let Some((_, dc)) = &fs.datacenter {
        o.datacenter = dc.clone();
    }
    for g in &fs.guests {
        o.guests.entry(g.vmid).or_insert_with(|| g.observed(false));
    }
    let in_nodelist: BTreeSet<String> = names(o.corosync.as_ref()).into_values().collect();
    let mut leftover: BTreeSet<String> = BTreeSet::new();
    if o.corosync.is_some() {
        for g in o.guests.values() {
            if !in_nodelist.contains(&g.node) {
                leftover.insert(g.node.clone());
            }
        }
    }
    o.leftover_node_dirs = leftover.into_iter().collect();
    o.lock = crate::cfs_lock::holder(&t.opts.shared, &super::master_lock_id()).map(|h| h.holder);
    Ok((o, live))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::corosync::CorosyncOptions;
    use std::path::PathBuf;

    fn target(name: &str) -> (CorosyncTarget, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("pve-gitops-cs-obs-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("shared")).unwrap();
        let t = CorosyncTarget::new(CorosyncOptions {
            node: "pve2".into(),
            shared: root.join("shared"),
            local_conf: root.join("etc/corosync.conf"),
            authkey: root.join("etc/authkey"),
            start: None,
            stop: None,
            manifest_nodes: BTreeSet::new(),
        });
        (t, root)
    }

    fn conf(version: u64, nodes: &[&str]) -> String {
        let mut s =
            format!("totem {{\n  cluster_name: c\n  config_version: {version}\n}}\nnodelist {{\n");
        for (i, n) in nodes.iter().enumerate() {
            s.push_str(&format!(
                "  node {{\n    name: {n}\n    nodeid: {}\n    ring0_addr: 10.0.0.{}\n  }}\n",
                i + 1,
                i + 1
            ));
        }
        s.push_str("}\n");
        s
    }

    #[test]
    fn replica_installs_a_new_master_and_nothing_else() {
        let (t, root) = target("replica");
        fs::write(t.master_path(), conf(3, &["pve1", "pve2"])).unwrap();
        // from_now: the current master counts as installed; a tick with no change writes nothing.
        let mut r = Replica::from_now(&t);
        r.tick();
        assert!(!t.opts.local_conf.exists());
        assert_eq!(read_record(&t, "pve2"), None);
        // A new master (written the way every writer does: .new + rename) is installed.
        let m4 = conf(4, &["pve1", "pve2"]);
        atomic_write(&t.master_path(), m4.as_bytes()).unwrap();
        r.tick();
        assert_eq!(fs::read_to_string(&t.opts.local_conf).unwrap(), m4);
        assert_eq!(read_record(&t, "pve2"), Some((4, digest(&m4))));
        // A master without this node is not installed.
        let m5 = conf(5, &["pve1"]);
        atomic_write(&t.master_path(), m5.as_bytes()).unwrap();
        r.tick();
        assert_eq!(fs::read_to_string(&t.opts.local_conf).unwrap(), m4);
        // A fresh replica installs what is there on its first tick.
        fs::remove_file(&t.opts.local_conf).unwrap();
        atomic_write(&t.master_path(), m4.as_bytes()).unwrap();
        Replica::new(&t).tick();
        assert_eq!(fs::read_to_string(&t.opts.local_conf).unwrap(), m4);
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn sync_installs_the_master_and_records_it() {
        let (t, root) = target("sync");
        let m = conf(3, &["pve1", "pve2"]);
        assert!(sync_text(&t, &m, Some(2)).unwrap());
        assert_eq!(fs::read_to_string(&t.opts.local_conf).unwrap(), m);
        assert_eq!(read_record(&t, "pve2"), Some((3, digest(&m))));
        // Same text: nothing to write.
        assert!(!sync_text(&t, &m, Some(3)).unwrap());
        // A master older than what corosync runs here is not installed.
        assert!(!sync_text(&t, &conf(2, &["pve1", "pve2"]), Some(3)).unwrap());
        // Rolled back (corosync still runs the older version): installed.
        let back = conf(3, &["pve1", "pve2", "pve3"]);
        assert!(sync_text(&t, &back, Some(3)).unwrap());
        // Not in the nodelist: never installed.
        assert!(!sync_text(&t, &conf(4, &["pve1"]), None).unwrap());
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn registration_keeps_state_when_not_given() {
        let (t, root) = target("reg");
        let running = |t: &CorosyncTarget| registered_hosts(t).get("pve2").map(|r| r.running);
        register(&t, Some(true)).unwrap();
        assert_eq!(running(&t), Some(true));
        register(&t, None).unwrap();
        assert_eq!(running(&t), Some(true));
        register(&t, Some(false)).unwrap();
        assert_eq!(running(&t), Some(false));
        // This host's own addresses are registered with it (the machine running the test has
        // at least one non-loopback address).
        let addrs = registered_hosts(&t)["pve2"].addresses.clone();
        assert_eq!(addrs, local_addresses());
        assert!(addrs.is_some_and(|a| !a.is_empty() && a.iter().all(|i| !i.is_loopback())));
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn registrations_parse_with_and_without_addresses() {
        let r = Registration::parse("1795000000 stopped 10.0.0.4,fd00::4,bogus\n");
        assert!(!r.running);
        let want: BTreeSet<IpAddr> =
            ["10.0.0.4".parse().unwrap(), "fd00::4".parse().unwrap()].into();
        assert_eq!(r.addresses, Some(want));
        let old = Registration::parse("1795000000 running\n");
        assert_eq!((old.running, old.addresses), (true, None));
    }

    #[test]
    fn published_membership_without_this_node() {
        let (mut t, root) = target("pub");
        let publish_as = |t: &mut CorosyncTarget, p: &Published| {
            t.opts.node = p.by.clone();
            publish(t, p).unwrap();
            t.opts.node = "pve2".into();
        };
        let p = Published {
            by: "pve1".into(),
            online: vec!["pve1".into(), "pve2".into(), "pve3".into()],
            quorate: true,
            expected_votes: 3,
            total_votes: 3,
            quorum: 2,
            runtime_expected: None,
            versions: [("pve1".to_string(), 4), ("pve2".to_string(), 4)].into(),
            votes: [("pve2".to_string(), 1)].into(),
            observed_ms: 1,
        };
        publish_as(&mut t, &p);
        let r = read_published(&t).unwrap();
        assert_eq!(r.online, vec!["pve1", "pve3"]);
        assert_eq!((r.total_votes, r.quorate), (2, true));
        assert!(!r.versions.contains_key("pve2"));
        // Inquorate for lack of this node's vote: reported as it is (the planner starts this
        // node before its quorum gate).
        let q = Published {
            online: vec!["pve1".into()],
            quorate: false,
            expected_votes: 2,
            total_votes: 1,
            quorum: 2,
            ..p
        };
        publish_as(&mut t, &q);
        assert!(!read_published(&t).unwrap().quorate);
        let _ = fs::remove_dir_all(root);
    }

    /// `view(by, online, quorate, version of every member)`.
    fn view(by: &str, online: &[&str], quorate: bool, v: u64) -> Published {
        Published {
            by: by.into(),
            online: online.iter().map(|n| n.to_string()).collect(),
            quorate,
            expected_votes: 3,
            total_votes: online.len() as u32,
            quorum: 2,
            runtime_expected: None,
            versions: online.iter().map(|n| (n.to_string(), v)).collect(),
            votes: online.iter().map(|n| (n.to_string(), 1)).collect(),
            observed_ms: 0,
        }
    }

    #[test]
    fn an_inquorate_view_never_hides_another_nodes_quorate_one() {
        let at = |mut p: Published, ms: u64| {
            p.observed_ms = ms;
            p
        };
        let quorate = at(view("pve1", &["pve1", "pve2"], true, 5), 100);
        let alone = at(view("pve3", &["pve3"], false, 4), 200);
        // Quorate first, even when the inquorate view is newer.
        assert_eq!(
            best_view(vec![alone.clone(), quorate.clone()], None),
            Some(quorate.clone())
        );
        // Then the latest observation: a view taken before a change loses to the holder's,
        // whenever each was written.
        let before = at(view("pve2", &["pve1", "pve2"], true, 4), 90);
        assert_eq!(
            best_view(vec![quorate.clone(), before.clone()], None),
            Some(quorate.clone())
        );
        // Another node's best view leaves this node's own out; nothing fresh: none.
        assert_eq!(
            best_view(vec![quorate.clone(), before.clone()], Some("pve1")),
            Some(before)
        );
        assert_eq!(best_view(vec![alone.clone()], Some("pve3")), None);
        assert_eq!(best_view(Vec::new(), None), None);
        // A quorate view is superseded by a later one of a node it lists as a member: pve3's
        // view from before it was cut off loses to pve1's, inquorate while a new node is
        // joined (expected votes went up before the new node started).
        let before_cut = at(view("pve3", &["pve1", "pve2", "pve3"], true, 4), 100);
        let joining = at(view("pve1", &["pve1", "pve2"], false, 5), 150);
        assert_eq!(
            best_view(vec![before_cut.clone(), joining.clone()], None),
            Some(joining)
        );
        // A member cut off since, publishing its inquorate view later (same version), does
        // not supersede the quorate view that still lists it.
        let majority = at(view("pve1", &["pve1", "pve2", "pve3"], true, 4), 100);
        let cut = at(view("pve3", &["pve3"], false, 4), 200);
        assert_eq!(
            best_view(vec![majority.clone(), cut.clone()], None),
            Some(majority)
        );
    }

    #[test]
    fn each_node_publishes_its_own_view() {
        let (mut t, root) = target("views");
        let q = view("pve1", &["pve1", "pve2"], true, 5);
        t.opts.node = "pve1".into();
        publish(&t, &q).unwrap();
        // pve3, cut off and inquorate, publishes after it: pve1's view is still there.
        t.opts.node = "pve3".into();
        let alone = view("pve3", &["pve3"], false, 4);
        publish(&t, &alone).unwrap();
        let views = read_views(&t);
        assert_eq!(views.len(), 2, "{views:?}");
        assert_eq!(best_view(views, None), Some(q.clone()));
        // A file that names another node than its own is ignored.
        let forged = t.opts.shared.join(MEMBERSHIP_DIR).join("pve9.json");
        fs::write(&forged, serde_json::to_string(&q).unwrap()).unwrap();
        assert_eq!(read_views(&t).len(), 2);
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn a_node_cut_off_while_the_nodelist_changed_takes_the_quorate_view() {
        let quorate = view("pve1", &["pve1", "pve2", "pve4"], true, 5);
        let alone = view("pve3", &["pve3"], false, 4);
        assert_eq!(
            cut_off_view("pve3", &alone, Some(4), 5, Some(quorate.clone())),
            Some(quorate.clone())
        );
        // Not behind the master (a plain partition: corosync merges by itself), not running.
        assert_eq!(
            cut_off_view("pve3", &alone, Some(5), 5, Some(quorate.clone())),
            None
        );
        assert_eq!(
            cut_off_view("pve3", &alone, None, 5, Some(quorate.clone())),
            None
        );
        // Quorate itself, or no fresh quorate view of others.
        let q3 = view("pve3", &["pve3", "pve5"], true, 4);
        assert_eq!(
            cut_off_view("pve3", &q3, Some(4), 5, Some(quorate.clone())),
            None
        );
        assert_eq!(cut_off_view("pve3", &alone, Some(4), 5, None), None);
        let inq = view("pve1", &["pve1"], false, 5);
        assert_eq!(cut_off_view("pve3", &alone, Some(4), 5, Some(inq)), None);
        // The quorate members do not all run the master yet, or they count this node in.
        let lagging = view("pve1", &["pve1", "pve2"], true, 4);
        assert_eq!(
            cut_off_view("pve3", &alone, Some(4), 5, Some(lagging)),
            None
        );
        let with_me = view("pve1", &["pve1", "pve3"], true, 5);
        assert_eq!(
            cut_off_view("pve3", &alone, Some(4), 5, Some(with_me)),
            None
        );
    }
}
