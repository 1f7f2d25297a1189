//! The simulator's view of its directory: corosync.conf, the extra file (or the state derived
//! without it), and what both say about hosts and membership. Loaded fresh for every
//! `observe`, `apply` and admin command; `.members` and `.vmlist` are rendered from it.

use super::files::{self, read_text, write_atomic};
use super::state::{SimHost, SimState, EXTRA_FILE};
use crate::observed::{Host, Membership, Observed, ObservedGuest};
use crate::target::TargetError;
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::pmxcfs::{self, ClusterInfo, MemberNode, Members, VmEntry, VmList};
use pve_gitops_schema::spec::GuestType;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `corosync.conf` inside the directory.
pub const COROSYNC_CONF: &str = "corosync.conf";
/// `datacenter.cfg` inside the directory.
pub const DATACENTER_CFG: &str = "datacenter.cfg";
/// `.members` inside the directory.
pub const MEMBERS: &str = ".members";
/// `.vmlist` inside the directory.
pub const VMLIST: &str = ".vmlist";
pub use crate::cfs_lock::CONTROLLER_LOCK;

/// The loaded directory.
#[derive(Debug, Clone)]
pub(crate) struct World {
    /// The directory.
    pub dir: PathBuf,
    /// corosync.conf, parsed (None: no cluster).
    pub conf: Option<Document>,
    /// The extra file, or the state derived without it.
    pub state: SimState,
    /// Whether the extra file exists.
    pub has_extra: bool,
}

impl World {
    /// Read corosync.conf and the extra file (deriving the state when it is absent).
    pub fn load(dir: &Path) -> Result<World, TargetError> {
        if !dir.is_dir() {
            return Err(TargetError::Unavailable(format!(
                "sim directory {} does not exist (create it with `pve-gitops sim init {}`)",
                dir.display(),
                dir.display()
            )));
        }
        let conf_path = dir.join(COROSYNC_CONF);
        let conf = match read_text(&conf_path)? {
            None => None,
            Some(text) => Some(Document::parse_named(COROSYNC_CONF, &text).map_err(|e| {
                let message = e
                    .diagnostics
                    .iter()
                    .map(|d| match d.location {
                        Some(l) => format!("{}:{}: {}", l.line, l.col, d.message),
                        None => d.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                TargetError::Parse {
                    path: conf_path.clone(),
                    message,
                }
            })?),
        };
        let (state, has_extra) = match SimState::load(dir)? {
            Some(s) => (s, true),
            None => {
                let members = match read_text(&dir.join(MEMBERS))? {
                    None => None,
                    Some(t) => Some(Members::parse(&t).map_err(|d| TargetError::Parse {
                        path: dir.join(MEMBERS),
                        message: d.message,
                    })?),
                };
                let dirs = files::node_dirs(dir)?;
                (
                    SimState::derive(conf.as_ref(), members.as_ref(), &dirs),
                    false,
                )
            }
        };
        Ok(World {
            dir: dir.to_path_buf(),
            conf,
            state,
            has_extra,
        })
    }

    /// The nodelist as (name, nodeid, votes), nodes named by `name`, else `ring0_addr`.
    pub fn nodelist(&self) -> Vec<(String, u32, u32)> {
        let Some(doc) = &self.conf else {
            return Vec::new();
        };
        doc.view()
            .nodes
            .into_iter()
            .filter_map(|n| {
                let name = n.name.or_else(|| n.rings.get(&0).cloned())?;
                Some((name, n.nodeid.unwrap_or(0), n.quorum_votes.unwrap_or(1)))
            })
            .collect()
    }

    /// Whether `name` is in the nodelist.
    pub fn in_nodelist(&self, name: &str) -> bool {
        self.nodelist().iter().any(|(n, _, _)| n == name)
    }

    /// Whether the host is powered on (unknown hosts are not).
    pub fn powered_on(&self, name: &str) -> bool {
        self.state.hosts.get(name).is_some_and(|h| h.powered_on)
    }

    /// Hosts as the planner sees them: every host of the state, plus nodelist nodes the state
    /// does not know (reported powered off, memory unknown).
    pub fn hosts(&self) -> BTreeMap<String, Host> {
        let mut hosts: BTreeMap<String, Host> = self
            .state
            .hosts
            .iter()
            .map(|(n, h)| {
                (
                    n.clone(),
                    Host {
                        name: n.clone(),
                        online: h.powered_on,
                        memory_mib: h.memory_mib,
                        addresses: None,
                    },
                )
            })
            .collect();
        for (n, _, _) in self.nodelist() {
            hosts.entry(n.clone()).or_insert(Host {
                name: n,
                online: false,
                memory_mib: 0,
                addresses: None,
            });
        }
        hosts
    }

    /// An `Observed` with corosync.conf, hosts and membership only (no guests, no
    /// datacenter.cfg): what the refusal rules need.
    pub fn core(&self) -> Observed {
        let mut o = Observed {
            corosync: self.conf.clone(),
            hosts: self.hosts(),
            membership: Membership {
                runtime_expected: self.state.runtime_expected_votes,
                ..Membership::default()
            },
            needs_reinstall: self
                .state
                .hosts
                .iter()
                .filter(|(_, h)| h.removed)
                .map(|(n, _)| n.clone())
                .collect(),
            ..Observed::default()
        };
        o.recompute_membership();
        let v = o.config_version();
        o.node_config_versions = o.membership.online.iter().map(|n| (n.clone(), v)).collect();
        o
    }

    /// The full observation (never writes).
    pub fn observe(&self) -> Result<Observed, TargetError> {
        let mut o = self.core();
        o.datacenter = match read_text(&self.dir.join(DATACENTER_CFG))? {
            Some(t) => DatacenterDocument::parse(&t),
            None => DatacenterDocument::default(),
        };
        let dirs = files::node_dirs(&self.dir)?;
        let mut with_guests: BTreeSet<String> = BTreeSet::new();
        for (node, gtype, vmid, main) in read_guests_parallel(&self.dir, &dirs)? {
            let node = &dirs[node];
            if !with_guests.contains(node) {
                with_guests.insert(node.clone());
            }
            // pmxcfs: "detected duplicate VMID"; the first one (node name order) counts.
            o.guests.entry(vmid).or_insert_with(|| ObservedGuest {
                vmid,
                gtype,
                node: node.clone(),
                lock: main.lock,
                memory_mib: main.memory_mib.unwrap_or(0),
                running: self.state.running_guests.contains(&vmid),
            });
        }
        o.leftover_node_dirs = self.leftover(&with_guests);
        o.lock = self.lock_holder()?;
        Ok(o)
    }

    /// Node directories holding guest configs that belong to no node: not in the nodelist
    /// and not a standalone host of the state (a host removed by delnode is no longer one).
    /// Without corosync.conf every directory is a standalone host's own.
    fn leftover(&self, with_guests: &BTreeSet<String>) -> Vec<String> {
        if self.conf.is_none() {
            return Vec::new();
        }
        let nodes: BTreeSet<String> = self.nodelist().into_iter().map(|(n, _, _)| n).collect();
        with_guests
            .iter()
            .filter(|d| !nodes.contains(*d) && self.state.hosts.get(*d).is_none_or(|h| h.removed))
            .cloned()
            .collect()
    }

    /// `priv/lock/pve-gitops` → its holder (or `unknown`); else another held cfs lock (e.g. a
    /// `file-corosync_conf` left behind) by its id.
    fn lock_holder(&self) -> Result<Option<String>, TargetError> {
        if let Some(h) = crate::cfs_lock::holder(&self.dir, CONTROLLER_LOCK) {
            return Ok(Some(h.holder));
        }
        Ok(files::held_locks(&self.dir)?.into_iter().next())
    }

    /// The node `.members` is rendered for.
    pub fn local_node(&self) -> String {
        if let Some(n) = &self.state.local_node {
            return n.clone();
        }
        self.nodelist()
            .into_iter()
            .map(|(n, _, _)| n)
            .next()
            .or_else(|| self.state.hosts.keys().next().cloned())
            .unwrap_or_else(|| "localhost".into())
    }

    /// Write the extra file, `.members` and `.vmlist` after a change.
    pub fn commit(&mut self) -> Result<(), TargetError> {
        self.state.format = super::state::FORMAT;
        write_atomic(&self.dir.join(EXTRA_FILE), self.state.render().as_bytes())?;
        self.has_extra = true;
        self.render_members()?;
        self.render_vmlist()
    }

    /// Re-render `.members` (pmxcfs layout; its version counter + 1; known `ip`s kept).
    fn render_members(&self) -> Result<(), TargetError> {
        let path = self.dir.join(MEMBERS);
        let old = read_text(&path)?.and_then(|t| Members::parse(&t).ok());
        let version = old.as_ref().map_or(0, |m| m.version) + 1;
        let core = self.core();
        let mut m = Members::standalone(self.local_node(), version);
        if let Some(doc) = &self.conf {
            let view = doc.view();
            let list = self.nodelist();
            m.cluster = Some(ClusterInfo {
                name: view.totem.cluster_name.clone().unwrap_or_default(),
                version: view.totem.config_version.unwrap_or(0),
                nodes: list.len() as u64,
                quorate: core.membership.quorate,
            });
            for (name, id, _) in list {
                let ip = old
                    .as_ref()
                    .and_then(|o| o.nodelist.get(&name))
                    .and_then(|e| e.ip.clone());
                let online = core.membership.online.contains(&name);
                m.nodelist.insert(
                    name,
                    MemberNode {
                        id: u64::from(id),
                        online,
                        ip,
                    },
                );
            }
        }
        write_atomic(&path, m.render().as_bytes())
    }

    /// Re-render `.vmlist` from the guest config file names (no config is read). Entries
    /// that did not change keep their version; the list's version goes up only on a change.
    pub fn render_vmlist(&self) -> Result<(), TargetError> {
        let path = self.dir.join(VMLIST);
        let old = read_text(&path)?.and_then(|t| VmList::parse(&t).ok());
        let dirs = files::node_dirs(&self.dir)?;
        let mut ids: BTreeMap<u32, VmEntry> = BTreeMap::new();
        files::walk_guests(&self.dir, &dirs, |g, _| {
            ids.entry(g.vmid).or_insert(VmEntry {
                node: g.node.to_string(),
                vtype: g.gtype,
                version: 0,
            });
            Ok(())
        })?;
        let old_version = old.as_ref().map_or(0, |o| o.version);
        let unchanged = |e: &VmEntry, o: &VmEntry| e.node == o.node && e.vtype == o.vtype;
        let changed = match &old {
            Some(o) => {
                o.ids.len() != ids.len()
                    || ids
                        .iter()
                        .any(|(id, e)| o.ids.get(id).is_none_or(|oe| !unchanged(e, oe)))
            }
            None => true,
        };
        if !changed {
            return Ok(());
        }
        let version = old_version + 1;
        for (id, e) in ids.iter_mut() {
            e.version = match old.as_ref().and_then(|o| o.ids.get(id)) {
                Some(oe) if unchanged(e, oe) => oe.version,
                _ => version,
            };
        }
        write_atomic(&path, VmList { version, ids }.render().as_bytes())
    }

    /// Make sure a host entry exists (for nodelist nodes the state does not know).
    pub fn host_mut(&mut self, name: &str) -> &mut SimHost {
        self.state.hosts.entry(name.to_string()).or_insert(SimHost {
            powered_on: false,
            memory_mib: 0,
            removed: false,
        })
    }
}

/// One guest config read by [`read_guests_parallel`]: index into the node list, type,
/// VMID, main-section fields.
type ReadGuest = (usize, GuestType, u32, files::GuestMain);

/// Read the qemu and lxc guest configs of `dirs` (openvz is not managed), in walk order
/// (node, type, directory order), on up to 8 threads over contiguous chunks of nodes: the
/// reads are independent syscalls, so this scales with cores on large clusters.
fn read_guests_parallel(root: &Path, dirs: &[String]) -> Result<Vec<ReadGuest>, TargetError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(dirs.len().max(1));
    let chunk = dirs.len().div_ceil(threads).max(1);
    let read_chunk = |first: usize, part: &[String]| -> Result<Vec<ReadGuest>, TargetError> {
        let mut buf = Vec::with_capacity(4096);
        let mut out = Vec::new();
        for (i, node) in part.iter().enumerate() {
            files::walk_guests(root, std::slice::from_ref(node), |g, path| {
                let gtype = match g.gtype {
                    pmxcfs::GuestType::Qemu => GuestType::Qemu,
                    pmxcfs::GuestType::Lxc => GuestType::Lxc,
                    pmxcfs::GuestType::Openvz => return Ok(()),
                };
                let main = files::read_guest_main(path, &mut buf)?;
                out.push((first + i, gtype, g.vmid, main));
                Ok(())
            })?;
        }
        Ok(out)
    };
    if threads <= 1 {
        return read_chunk(0, dirs);
    }
    let results: Vec<Result<Vec<ReadGuest>, TargetError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                let read_chunk = &read_chunk;
                scope.spawn(move || read_chunk(n * chunk, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TargetError::Unavailable(
                        "a guest config reader thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}
