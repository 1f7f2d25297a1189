//! `apply`: every step kind with the semantics of the real cluster. A step is checked
//! completely before anything is written; a refused step leaves every file as it was.
//!
//! Wording follows corosync / pvecm / qm / pct where reference/domain.md gives it.

mod corosync;

use super::files::{self, mkdir_p, write_atomic};
use super::world::{World, DATACENTER_CFG};
use crate::cfs_lock::{CfsLock, LockError, LockOptions};
use crate::plan::quorum::expected_votes_accepted;
use crate::plan::step::{
    Gate, MigrateGuest, SetDatacenter, SetExpectedVotes, Step, StepKind, Wait,
};
use crate::target::{Applied, TargetError};
use corosync::{create, join, remove, update};
use pve_gitops_schema::datacenter::{Bwlimit, DatacenterDocument, Migration, MigrationType};
use pve_gitops_schema::pmxcfs::{lock_id_for_file, GuestType as PmxType};
use pve_gitops_schema::spec::GuestType;
use std::path::Path;

/// Simulated time of `pvecm create` (authkey, corosync and pve-cluster restart).
pub const CREATE_MS: u64 = 5_000;
/// Simulated time of a join (nodelist edit, reload, joiner starts and waits for quorum).
pub const JOIN_MS: u64 = 10_000;
/// Simulated time of a reload (pmxcfs sleeps 1 s before `corosync-cfgtool -R`).
pub const RELOAD_MS: u64 = 1_000;
/// Simulated time of restarting corosync on one node.
pub const RESTART_MS_PER_NODE: u64 = 5_000;
/// Simulated time of a small file edit or a runtime command.
pub const EDIT_MS: u64 = 100;

/// Why a step did not happen.
enum Fail {
    /// The cluster refuses it, with this reason.
    No(String),
    /// Reading or writing failed.
    Io(TargetError),
}

impl From<TargetError> for Fail {
    fn from(e: TargetError) -> Self {
        Fail::Io(e)
    }
}

type R<T> = Result<T, Fail>;

/// Take the cfs lock of `file` (`priv/lock/file-...`) without waiting: a held lock refuses
/// the step with pmxcfs's time-out message (pmxcfs would give up after 10 s).
fn lock_file(w: &World, file: &str) -> R<CfsLock> {
    CfsLock::acquire(&w.dir, &lock_id_for_file(file), &LockOptions::try_once()).map_err(|e| match e
    {
        e @ LockError::Timeout { .. } => Fail::No(e.to_string()),
        other => Fail::Io(other.into()),
    })
}

fn no<T>(reason: impl Into<String>) -> R<T> {
    Err(Fail::No(reason.into()))
}

fn done(message: String, duration_ms: u64) -> R<Applied> {
    Ok(Applied {
        message,
        duration_ms,
    })
}

/// Apply `step` to the simulator directory `dir`.
pub(crate) fn apply(dir: &Path, step: &Step) -> Result<Applied, TargetError> {
    let mut w = World::load(dir)?;
    let r = match &step.kind {
        StepKind::CreateCluster(s) => create(&mut w, s),
        StepKind::JoinNode(s) => join(&mut w, s),
        StepKind::UpdateCorosync(s) => update(&mut w, s),
        StepKind::SetExpectedVotes(s) => expected(&mut w, &step.node, s),
        StepKind::SetDatacenter(s) => datacenter(&mut w, s),
        StepKind::MigrateGuest(s) => migrate(&mut w, s),
        StepKind::Wait(s) => wait(&w, s),
        StepKind::RemoveNode(s) => remove(&mut w, s),
    };
    r.map_err(|f| match f {
        Fail::No(reason) => TargetError::Refused {
            step: step.summary.clone(),
            reason,
        },
        Fail::Io(e) => e,
    })
}

/// The host exists and is powered on.
fn host_up(w: &World, name: &str, role: &str) -> R<()> {
    match w.state.hosts.get(name) {
        None => no(format!(
            "{role} '{name}' is not a known host (known: {})",
            known_hosts(w)
        )),
        Some(h) if !h.powered_on => no(format!("{role} '{name}' is powered off")),
        Some(_) => Ok(()),
    }
}

pub(crate) fn known_hosts(w: &World) -> String {
    let names: Vec<&str> = w.state.hosts.keys().map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `name` is in the membership (in the nodelist and powered on).
fn online_member(w: &World, name: &str) -> bool {
    w.in_nodelist(name) && w.powered_on(name)
}

/// pvecm's `check_cfs_quorum` and pmxcfs's cfs lock need quorum.
fn require_quorum(w: &World, message: &str) -> R<()> {
    let core = w.core();
    if core.membership.quorate {
        Ok(())
    } else {
        no(format!(
            "{message} ({} of {} expected votes present, quorum {})",
            core.membership.total_votes, core.membership.expected_votes, core.membership.quorum
        ))
    }
}

fn expected(w: &mut World, node: &str, s: &SetExpectedVotes) -> R<Applied> {
    if w.conf.is_none() || !online_member(w, node) {
        return no(format!(
            "Cannot initialize QUORUM service: corosync is not running on '{node}'"
        ));
    }
    let present = w.core().membership.total_votes;
    if let Err(why) = expected_votes_accepted(s.expected, present) {
        return no(format!(
            "Unable to set expected votes: CS_ERR_INVALID_PARAM ({why})"
        ));
    }
    w.state.runtime_expected_votes = Some(s.expected);
    w.commit()?;
    let m = w.core().membership;
    done(
        format!(
            "expected votes set to {} (runtime only; quorum {}, {})",
            s.expected,
            m.quorum,
            if m.quorate { "quorate" } else { "not quorate" }
        ),
        EDIT_MS,
    )
}

fn datacenter(w: &mut World, s: &SetDatacenter) -> R<Applied> {
    if w.conf.is_some() {
        require_quorum(w, "cfs-lock 'file-datacenter_cfg' error: no quorum!")?;
    }
    let path = w.dir.join(DATACENTER_CFG);
    let text = files::read_text(&path)?.unwrap_or_default();
    let mut doc = DatacenterDocument::parse(&text);
    let current = doc.get(&s.key).map(str::to_string);
    if current == s.to {
        return done(format!("datacenter.cfg {} already set", s.key), 0);
    }
    if current != s.from {
        return no(format!(
            "datacenter.cfg {} is {}, the step was planned against {}; plan again",
            s.key,
            current.as_deref().unwrap_or("(unset)"),
            s.from.as_deref().unwrap_or("(unset)")
        ));
    }
    match &s.to {
        Some(v) => {
            let checked: Result<(), String> = match s.key.as_str() {
                "migration" => v
                    .parse::<Migration>()
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                "bwlimit" => v.parse::<Bwlimit>().map(|_| ()).map_err(|e| e.to_string()),
                "max_workers" => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(|_| ())
                    .ok_or_else(|| format!("value '{v}' must be an integer >= 1")),
                _ => Ok(()),
            };
            if let Err(e) = checked {
                return no(format!("{}: {e}", s.key));
            }
            doc.set(&s.key, v).map_err(|e| Fail::No(e.to_string()))?;
        }
        None => {
            doc.remove(&s.key);
        }
    }
    let lock = lock_file(w, DATACENTER_CFG)?;
    write_atomic(&path, doc.to_string().as_bytes())?;
    drop(lock);
    w.commit()?;
    done(
        format!(
            "datacenter.cfg {}: {}",
            s.key,
            s.to.as_deref().unwrap_or("(removed)")
        ),
        EDIT_MS,
    )
}

fn migrate(w: &mut World, s: &MigrateGuest) -> R<Applied> {
    let (ptype, kind) = match s.guest_type {
        GuestType::Qemu => (PmxType::Qemu, "VM"),
        GuestType::Lxc => (PmxType::Lxc, "CT"),
    };
    let rel = format!("nodes/{}/{}/{}.conf", s.from, ptype.dir_name(), s.vmid);
    let src = w.dir.join(&rel);
    let Some(text) = files::read_text(&src)? else {
        return no(format!("Configuration file '{rel}' does not exist"));
    };
    if w.conf.is_some() {
        require_quorum(w, "cluster not ready - no quorum?")?;
    }
    if !online_member(w, &s.from) {
        return no(format!(
            "source node '{}' is not an online member of the cluster",
            s.from
        ));
    }
    if s.to == s.from {
        return no("target is local node.");
    }
    if !w.in_nodelist(&s.to) {
        return no(format!("no such cluster node '{}'", s.to));
    }
    if !w.powered_on(&s.to) {
        return no(format!(
            "Unable to get IP for node '{}' - node offline?",
            s.to
        ));
    }
    let main = files::scan_main(text.as_bytes());
    if let Some(l) = main.lock {
        return no(format!("{kind} is locked ({l})"));
    }
    let running = w.state.running_guests.contains(&s.vmid);
    match s.guest_type {
        GuestType::Qemu if running && !s.online => {
            return no("can't migrate running VM without --online")
        }
        GuestType::Lxc if running && !s.restart => {
            return no("can't migrate running container without --online or --restart")
        }
        _ => {}
    }
    if let Some(t) = &s.migration_type {
        if t.parse::<MigrationType>().is_err() {
            return no(format!(
                "migration_type: value '{t}' does not have a value in the enumeration 'secure, insecure'"
            ));
        }
    }
    if let Some(net) = &s.migration_network {
        let cidr = net.split_once('/').is_some_and(|(a, p)| {
            a.parse::<std::net::IpAddr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 128)
        });
        if !cidr {
            return no(format!("migration_network: value '{net}' is not a CIDR"));
        }
    }
    let dst_rel = format!("nodes/{}/{}/{}.conf", s.to, ptype.dir_name(), s.vmid);
    let dst = w.dir.join(&dst_rel);
    if dst.exists() {
        return no(format!("{dst_rel}: File exists (EEXIST)"));
    }
    if let Some(parent) = dst.parent() {
        mkdir_p(parent)?;
    }
    std::fs::rename(&src, &dst).map_err(|source| TargetError::Write {
        path: dst.clone(),
        source,
    })?;
    w.commit()?;
    let memory = main.memory_mib.unwrap_or(0);
    let (how, ms) = if running {
        let bw = w.state.migration_bandwidth_mib_s.max(1);
        let how = if s.guest_type == GuestType::Qemu {
            "online"
        } else {
            "restart"
        };
        (how, memory.saturating_mul(1000) / bw)
    } else {
        ("offline", 0)
    };
    done(
        format!(
            "migrated {} {} {} -> {} ({how}, {memory} MiB)",
            s.guest_type.as_str(),
            s.vmid,
            s.from,
            s.to
        ),
        ms,
    )
}

fn wait(w: &World, s: &Wait) -> R<Applied> {
    let core = w.core();
    let unsatisfied = match &s.gate {
        Gate::PowerOff { node } => {
            if !w.state.hosts.contains_key(node) && !w.in_nodelist(node) {
                return no(format!("gate not satisfied: unknown host '{node}'"));
            }
            w.powered_on(node)
                .then(|| format!("{node} is still powered on"))
        }
        Gate::PowerOn { node } => (!w.powered_on(node)).then(|| format!("{node} is powered off")),
        Gate::ConfigVersion { version, .. } => {
            let v = core.config_version();
            (v != *version).then(|| format!("members report config_version {v}, not {version}"))
        }
        Gate::Quorum { .. } => (!core.membership.quorate).then(|| {
            format!(
                "not quorate: {} of {} expected votes present, quorum {}",
                core.membership.total_votes, core.membership.expected_votes, core.membership.quorum
            )
        }),
        Gate::Evacuate { node, .. } => {
            files::has_guests(&w.dir, node)?.then(|| format!("nodes/{node} still holds guests"))
        }
    };
    match unsatisfied {
        Some(why) => no(format!("gate not satisfied: {why}")),
        None => done(format!("gate satisfied: {}", s.gate.key()), 0),
    }
}
