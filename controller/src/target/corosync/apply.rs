//! Apply: one step at a time, never reporting a change that corosync did not take.
//!
//! Cluster-wide corosync.conf edits (join's nodelist edit, remove, update) under the lock
//! `file-corosync_conf`:
//!
//! 1. the master must still be at the step's `from_version` (else [`TargetError::Stale`]: another
//!    controller got there first; the loop re-plans), and corosync here must run that version
//!    and be quorate;
//! 2. write the step's text (already bumped once by the planner) as the master, `.new` + rename;
//! 3. wait until every member's controller has installed it (their sync records), refreshing the
//!    lock — on time-out the master is rolled back and nothing is reloaded;
//! 4. `corosync-cfgtool -R` (every node re-reads its own file), then verify that cmap
//!    `totem.config_version` is the new version. A refused reload (e.g. a changed address on
//!    an existing link) rolls the master back and is reported with corosync's message;
//! 5. for a rolling restart, restart the members one at a time, checking before each that the
//!    others keep quorum: this node through `--stop-cmd`/`--start-cmd`, another node through
//!    `corosync-cfgtool -k NODEID` (a clean shutdown request), after which that node's own
//!    controller starts corosync again (the planner's node-local join step) — the holder waits
//!    until it is back before the next one.

use super::observe::{
    self, local_status, read_master, read_opt, running_version, sync_text, version_of, Live,
};
use super::tools::{self, QuorumStatus, TOOL_TIMEOUT};
use super::{digest, tool, CorosyncTarget, MASTER_CONF, SHARED_AUTHKEY};
use crate::cfs_lock::{CfsLock, LockError, LockOptions};
use crate::configfs::atomic_write;
use crate::plan::step::{
    CreateCluster, JoinNode, Method, SetDatacenter, SetExpectedVotes, Step, StepKind,
};
use crate::target::{Applied, TargetError};
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::pmxcfs::{lock_id_for_file, CFS_LOCK_TIMEOUT_SECS};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// How long a controller waits for the lock before re-planning (pmxcfs's acquire time-out).
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long the lock holder waits for every member to install a new master.
pub const SYNC_WAIT: Duration = Duration::from_secs(30);
/// How long to wait for corosync to start and become a quorate member.
pub const START_WAIT: Duration = Duration::from_secs(60);
/// How long the holder waits for a restarted node to be back in the membership.
pub const RESTART_WAIT: Duration = Duration::from_secs(90);
/// How long to wait for corosync to report a reloaded version or a new expected votes.
pub const VERIFY_WAIT: Duration = Duration::from_secs(10);

/// How often waits that run a corosync tool re-check (running version, membership).
const POLL: Duration = Duration::from_millis(50);
/// How often waits that only look at the shared directory re-check (the lock, the master for a
/// lock waiter to install, the members' sync records): a `mkdir` or a few `stat`s and small
/// reads, so a short interval costs little and keeps the protocol's latency low
/// (BENCHMARKS.md, "Real corosync").
const FILE_POLL: Duration = Duration::from_millis(10);
/// How long [`undo`] asks corosync whether a reload landed after all before rolling back.
const UNDO_SETTLE: Duration = Duration::from_secs(3);
/// Polling a corosync that is starting (see [`wait_running`]).
const START_POLL: Duration = Duration::from_millis(250);
/// How often a lock holder that waits refreshes its lock (the lifetime is 120 s).
const REFRESH_EVERY: Duration = Duration::from_secs(5);

fn stale(step: &Step, reason: impl Into<String>) -> TargetError {
    TargetError::Stale {
        step: step.summary.clone(),
        reason: reason.into(),
    }
}

fn refused(step: &Step, reason: impl Into<String>) -> TargetError {
    TargetError::Refused {
        step: step.summary.clone(),
        reason: reason.into(),
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> TargetError + '_ {
    move |source| TargetError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Poll `f` every [`POLL`] until it returns `Some` or `timeout` passes, calling `tick` between
/// polls.
fn wait_for<T>(timeout: Duration, tick: impl FnMut(), f: impl FnMut() -> Option<T>) -> Option<T> {
    wait_every(POLL, timeout, tick, f)
}

/// Poll `f` every `every` until it returns `Some` or `timeout` passes, calling `tick` between
/// polls.
fn wait_every<T>(
    every: Duration,
    timeout: Duration,
    mut tick: impl FnMut(),
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        tick();
        thread::sleep(every);
    }
}

/// A tick that refreshes `lock` every [`REFRESH_EVERY`].
fn refresher(lock: &CfsLock) -> impl FnMut() + '_ {
    let mut last = Instant::now();
    move || {
        if last.elapsed() >= REFRESH_EVERY {
            let _ = lock.refresh();
            last = Instant::now();
        }
    }
}

/// Carry out `step` on this node.
///
/// # Errors
/// See the module docs: `Stale` when another controller changed the cluster first, `Refused`
/// / `Command` with corosync's own message otherwise.
///
/// `observed` is what the local corosync reported at the observation this step was planned
/// from (at most [`super::LIVE_FRESH`] ago); a cluster-wide edit checks it instead of asking
/// corosync again when it gets the lock at the first attempt (see [`edit`]).
pub fn apply(
    t: &mut CorosyncTarget,
    step: &Step,
    observed: Option<Live>,
) -> Result<Applied, TargetError> {
    let start = Instant::now();
    let message = match &step.kind {
        StepKind::CreateCluster(c) => create(t, step, c)?,
        StepKind::JoinNode(j) if j.via == j.node && j.from_version == j.to_version => {
            start_member(t, step, j)?
        }
        StepKind::JoinNode(j) => edit(
            t,
            step,
            Edit {
                from: j.from_version,
                to: j.to_version,
                text: &j.corosync_conf,
                rolling: None,
                powered_off: None,
                observed,
            },
        )?,
        StepKind::RemoveNode(r) => edit(
            t,
            step,
            Edit {
                from: r.from_version,
                to: r.to_version,
                text: &r.corosync_conf,
                rolling: None,
                powered_off: Some(&r.node),
                observed,
            },
        )?,
        StepKind::UpdateCorosync(u) => {
            let order = (u.method == Method::RollingRestart).then_some(u.restart_order.as_slice());
            edit(
                t,
                step,
                Edit {
                    from: u.from_version,
                    to: u.to_version,
                    text: &u.corosync_conf,
                    rolling: order,
                    powered_off: None,
                    observed,
                },
            )?
        }
        StepKind::SetExpectedVotes(e) => set_expected(t, step, e)?,
        StepKind::SetDatacenter(d) => set_datacenter(t, step, d)?,
        StepKind::MigrateGuest(_) => {
            return Err(refused(
                step,
                "the corosync target does not run guests; migrations need the pve target",
            ))
        }
        StepKind::Wait(_) => return Err(refused(step, "a gate is never applied")),
    };
    Ok(Applied {
        message,
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// name -> nodeid of a corosync.conf text.
fn names_of(text: &str) -> BTreeMap<String, u32> {
    Document::parse(text)
        .map(|d| {
            d.view()
                .nodes
                .into_iter()
                .filter_map(|n| Some((n.name?, n.nodeid?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Take the cfs lock of `file` in the shared directory as this node, waiting up to
/// [`LOCK_WAIT`]; a lock still held then makes the step stale (re-plan). Also says whether it
/// had to wait (the lock was held at the first attempt).
fn lock_file(
    t: &CorosyncTarget,
    step: &Step,
    file: &str,
    mut while_waiting: impl FnMut(),
) -> Result<(CfsLock, bool), TargetError> {
    let opts = LockOptions {
        timeout: LOCK_WAIT,
        poll: FILE_POLL,
        ..LockOptions::default()
    };
    let id = lock_id_for_file(file);
    let mut waited = false;
    let lock = CfsLock::acquire_as(&t.opts.shared, &id, &t.opts.node, &opts, || {
        waited = true;
        while_waiting();
    })
    .map_err(|e| match e {
        LockError::Timeout { held, .. } => stale(
            step,
            format!(
                "the lock {id} is held by {} (refreshed {} s ago)",
                held.holder, held.age_secs
            ),
        ),
        other => other.into(),
    })?;
    Ok((lock, waited))
}

/// The corosync.conf lock. While waiting for it this node keeps installing the master as it
/// changes: the holder may be waiting for this node's sync record.
fn lock_corosync(t: &CorosyncTarget, step: &Step) -> Result<(CfsLock, bool), TargetError> {
    let mut replica = observe::Replica::new(t);
    lock_file(t, step, MASTER_CONF, || replica.tick())
}

fn write_master(t: &CorosyncTarget, text: &str) -> Result<(), TargetError> {
    let path = t.master_path();
    atomic_write(&path, text.as_bytes()).map_err(write_err(&path))
}

/// Put the previous master back (after a refused reload or a sync time-out) and re-install it
/// here; other nodes re-install it on their next run.
fn rollback(t: &CorosyncTarget, old: &str) -> String {
    match write_master(t, old).and_then(|()| sync_text(t, old, running_version())) {
        Ok(_) => format!(
            "the master corosync.conf was rolled back to config_version {}",
            version_of(old)
        ),
        Err(e) => format!("rolling the master corosync.conf back failed too: {e}"),
    }
}

/// After the master was written and the change was not verified: roll the master back, unless
/// a member already runs the new version (a reload that took effect late, or although
/// `corosync-cfgtool -R` failed or timed out) — then the master stays, the planner's reload for
/// the members that missed it brings the others, and nothing runs ahead of the master. After
/// an attempted reload corosync is asked for up to [`UNDO_SETTLE`] before anything is rolled
/// back (a reload can land a moment after a failed or killed `-R`). The reload for members
/// that missed one leaves the master as it was.
fn undo(t: &CorosyncTarget, old: &str, to: u64, catch_up: bool, reloaded: bool) -> String {
    if catch_up {
        return "the master is unchanged".into();
    }
    let ahead = |l: &Live| {
        let mut a = running(l, to);
        if a.is_empty() && l.running_version == Some(to) {
            a.push(t.opts.node.clone());
        }
        a
    };
    let settle = if reloaded {
        UNDO_SETTLE
    } else {
        Duration::ZERO
    };
    let found = wait_for(
        settle,
        || {},
        || {
            let a = ahead(&observe::live(t));
            (!a.is_empty()).then_some(a)
        },
    );
    match found {
        None => rollback(t, old),
        Some(a) => format!(
            "the master corosync.conf stays at config_version {to}: {} run it already (a later run reloads it for the other members)",
            a.join(", ")
        ),
    }
}

/// A cluster-wide corosync.conf edit.
struct Edit<'a> {
    /// The master's version the step was planned from.
    from: u64,
    /// The version of `text`.
    to: u64,
    /// The new corosync.conf.
    text: &'a str,
    /// Restart these members one at a time after the reload (settings read only at startup).
    rolling: Option<&'a [String]>,
    /// A node the edit removes: it must be out of the membership (powered off).
    powered_off: Option<&'a str>,
    /// The local corosync as observed when the step was planned (fresh), if known.
    observed: Option<Live>,
}

fn edit(t: &CorosyncTarget, step: &Step, e: Edit<'_>) -> Result<String, TargetError> {
    let Edit {
        from,
        to,
        text,
        rolling,
        powered_off,
        observed,
    } = e;
    let catch_up = from == to;
    let (lock, waited) = lock_corosync(t, step)?;
    // Adopting a running cluster whose shared directory has no master yet: this node's
    // corosync.conf stands in for it (as in the observation), and this write creates it.
    let master = read_master(t)?;
    let adopting = master.is_none();
    let old = match master {
        Some(m) => m,
        None if !catch_up => read_opt(&t.opts.local_conf)?
            .ok_or_else(|| stale(step, "there is no master corosync.conf"))?,
        None => return Err(stale(step, "there is no master corosync.conf")),
    };
    let cur = version_of(&old);
    if cur != from {
        return Err(stale(
            step,
            format!(
                "the master corosync.conf is at config_version {cur}, the step starts from {from}"
            ),
        ));
    }
    if version_of(text) != to {
        return Err(refused(
            step,
            format!("the new corosync.conf does not carry config_version {to}"),
        ));
    }
    // The lock was free at the first attempt and the master is still the planned one: nothing
    // a controller does (every change takes this lock) can have happened since the observation
    // the step was planned from, so it stands; after a wait, ask corosync again. Not for the
    // reload for members that missed one (`from == to`): it leaves the master as it is, so the
    // version check above cannot tell whether another controller did it first.
    let live = match observed {
        Some(l) if !waited && !catch_up => l,
        _ => observe::live(t),
    };
    if catch_up && behind(&live, to).is_empty() {
        return Err(stale(
            step,
            format!(
                "every member runs config_version {to} already (another controller reloaded it)"
            ),
        ));
    }
    let Some(st) = live.status.as_ref() else {
        return Err(refused(
            step,
            format!("corosync is not running on {}", t.opts.node),
        ));
    };
    if !st.quorate {
        return Err(refused(step, "the cluster is not quorate"));
    }
    if live.running_version != Some(cur) {
        return Err(refused(
            step,
            format!(
                "corosync runs config_version {} but the master is at {cur}: an earlier change was written and never reloaded (see docs/corosync-target.md, Recovery)",
                live.running_version.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
            ),
        ));
    }
    let ids = names_of(&old);
    if let Some(node) = powered_off {
        if ids
            .get(node)
            .is_some_and(|id| st.members.iter().any(|m| m.0 == *id))
        {
            return Err(refused(
                step,
                format!("{node} is still in the membership; power it off (stop corosync) first"),
            ));
        }
    }
    let by_id: BTreeMap<u32, String> = ids.iter().map(|(n, i)| (*i, n.clone())).collect();
    let members: Vec<String> = st
        .members
        .iter()
        .map(|(id, _, printed)| by_id.get(id).cloned().unwrap_or_else(|| printed.clone()))
        .collect();
    if !lock.still_held() {
        return Err(stale(
            step,
            "the lock was taken over while this step waited",
        ));
    }
    if adopting {
        publish_authkey(t)?;
    }
    write_master(t, text)?;
    // From here the master is at `to`: every way out before the reload is verified goes
    // through `undo`, so no change is left written and never reloaded (that gates every later
    // change until an operator steps in).
    let undone = |e: TargetError| {
        TargetError::Unavailable(format!(
            "{e}; {}; nothing was reloaded",
            undo(t, &old, to, catch_up, false)
        ))
    };
    sync_text(t, text, live.running_version).map_err(undone)?;
    let want = (to, digest(text));
    let lagging = || -> Vec<String> {
        members
            .iter()
            .filter(|m| observe::read_record(t, m).as_ref() != Some(&want))
            .cloned()
            .collect()
    };
    let synced = wait_every(FILE_POLL, SYNC_WAIT, refresher(&lock), || {
        lagging().is_empty().then_some(())
    });
    if synced.is_none() {
        let lagging = lagging();
        let rb = undo(t, &old, to, catch_up, false);
        return Err(refused(
            step,
            format!(
                "waiting for {} to install corosync.conf config_version {to} timed out after {} s (each node's pve-gitops installs the master itself: is it running there?); {rb}; nothing was reloaded",
                lagging.join(", "),
                SYNC_WAIT.as_secs()
            ),
        ));
    }
    if !lock.still_held() {
        // Stalled past the lock's lifetime and taken over: the master is the new holder's now,
        // so it is not touched (if it is still this change, nobody reloads it: the plans show
        // the config-version gate, docs/corosync-target.md, Recovery).
        return Err(TargetError::Unavailable(format!(
            "{}: the corosync.conf lock was taken over (no refresh for {} s) before the reload; nothing was reloaded and the master is left to the new holder",
            step.summary,
            CFS_LOCK_TIMEOUT_SECS
        )));
    }
    let out = tools::run(&[tool("corosync-cfgtool"), "-R".into()], TOOL_TIMEOUT).map_err(undone)?;
    // Verified by the version corosync runs here and every member's
    // (`runtime.members.<id>.config_version`, refreshed by the reload): a member whose reload
    // failed is reported, not assumed — except before a rolling restart, which restarts every
    // member with the new file anyway (stopping there would leave the startup-only options
    // unapplied for good: the master already carries them, so no later plan restarts).
    let verified = out.success()
        && wait_for(
            VERIFY_WAIT,
            || {},
            || {
                let l = observe::live(t);
                (l.running_version == Some(to) && (rolling.is_some() || behind(&l, to).is_empty()))
                    .then_some(())
            },
        )
        .is_some();
    if !verified {
        let runs = running_version()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into());
        let left = behind(&observe::live(t), to);
        let left = if left.is_empty() {
            String::new()
        } else {
            format!("; {} still run an older one", left.join(", "))
        };
        let rb = undo(t, &old, to, catch_up, true);
        // The master kept with startup-only options nobody restarted for: no later plan
        // restarts (it compares with the master), so say what is left to do.
        let pending = match rolling {
            Some(order) if rb.contains("stays at") => format!(
                "; the rolling restart did not run: restart corosync on {} one at a time (each back in the membership before the next) to apply the options read only at startup",
                order.join(", ")
            ),
            _ => String::new(),
        };
        return Err(TargetError::Command {
            command: "corosync-cfgtool -R".into(),
            message: format!(
                "{}; corosync runs config_version {runs}, the new file has {to}{left}: the reload was not verified (see the corosync log for the reason); {rb}{pending}",
                out.message()
            ),
        });
    }
    let mut message = if catch_up {
        format!(
            "corosync.conf config_version {to} reloaded for the members that missed it; every member runs {to}"
        )
    } else {
        format!(
            "corosync.conf config_version {from} -> {to}: installed on {}, reloaded, corosync runs {to}",
            members.join(", ")
        )
    };
    if let Some(order) = rolling {
        rolling_restart(t, step, &lock, order, &ids, &members)?;
        message.push_str(&format!("; restarted {} one at a time", order.join(", ")));
    }
    // Best effort: the next observation by any member publishes it too.
    let _ = observe::republish(t);
    drop(lock);
    Ok(message)
}

/// Members that run config_version `version` (by name, else nodeid); none when corosync is
/// not running here.
fn running(live: &Live, version: u64) -> Vec<String> {
    members_where(live, |v| v == Some(version), |who, _| who)
}

/// Members (by nodeid) that run another config_version than `version`, as `ID (runs V)`.
fn behind(live: &Live, version: u64) -> Vec<String> {
    if live.status.is_none() {
        return vec!["(corosync is not running here)".into()];
    }
    members_where(
        live,
        |v| v != Some(version),
        |who, v| {
            format!(
                "{who} (runs {})",
                v.map_or_else(|| "?".to_string(), |v| v.to_string())
            )
        },
    )
}

/// The members whose running version passes `keep`, each shown by `show(name or nodeid,
/// version)`.
fn members_where(
    live: &Live,
    keep: impl Fn(Option<u64>) -> bool,
    show: impl Fn(String, Option<u64>) -> String,
) -> Vec<String> {
    let Some(st) = &live.status else {
        return Vec::new();
    };
    st.members
        .iter()
        .filter_map(|(id, _, name)| {
            let v = live.member_version(*id);
            let who = if name.is_empty() {
                id.to_string()
            } else {
                name.clone()
            };
            keep(v).then(|| show(who, v))
        })
        .collect()
}

fn member_names(st: &QuorumStatus, ids: &BTreeMap<String, u32>) -> BTreeSet<String> {
    let by_id: BTreeMap<u32, &String> = ids.iter().map(|(n, i)| (*i, n)).collect();
    st.members
        .iter()
        .map(|(id, _, p)| {
            by_id
                .get(id)
                .map(|n| (*n).clone())
                .unwrap_or_else(|| p.clone())
        })
        .collect()
}

fn rolling_restart(
    t: &CorosyncTarget,
    step: &Step,
    lock: &CfsLock,
    order: &[String],
    ids: &BTreeMap<String, u32>,
    members: &[String],
) -> Result<(), TargetError> {
    let all: BTreeSet<String> = members.iter().cloned().collect();
    let refresh = || drop(lock.refresh());
    let whole = || {
        let st = local_status(t)?;
        (st.quorate && member_names(&st, ids).is_superset(&all)).then_some(st)
    };
    for n in order {
        if !all.contains(n) {
            continue;
        }
        if !lock.still_held() {
            return Err(refused(
                step,
                format!("before restarting {n}: the corosync.conf lock was taken over (no refresh for {CFS_LOCK_TIMEOUT_SECS} s)"),
            ));
        }
        let Some(st) = wait_for(RESTART_WAIT, refresh, whole) else {
            return Err(refused(
                step,
                format!(
                    "before restarting {n}: not every member ({}) is back and quorate",
                    members.join(", ")
                ),
            ));
        };
        let votes = st
            .members
            .iter()
            .find(|m| Some(&m.0) == ids.get(n))
            .map(|m| m.1)
            .unwrap_or(1);
        if st.total_votes.saturating_sub(votes) < st.quorum {
            return Err(refused(
                step,
                format!(
                    "restarting {n} would lose quorum: {} - {votes} votes < quorum {}",
                    st.total_votes, st.quorum
                ),
            ));
        }
        let before = st.ring_id.clone();
        if *n == t.opts.node {
            stop_local(t)?;
            if wait_for(START_WAIT, refresh, || {
                local_status(t).is_none().then_some(())
            })
            .is_none()
            {
                return Err(refused(step, format!("corosync on {n} did not stop")));
            }
            start_local(t)?;
        } else {
            let id = ids.get(n).copied().unwrap_or(0);
            let out = tools::run(
                &[tool("corosync-cfgtool"), "-k".into(), id.to_string()],
                TOOL_TIMEOUT,
            )?;
            if !out.success() {
                return Err(TargetError::Command {
                    command: format!("corosync-cfgtool -k {id}"),
                    message: out.message(),
                });
            }
        }
        // Back: a new ring (the node left and rejoined; when it is restarted within the token
        // time-out the two show up as one membership change) with every member, quorate.
        let back = wait_for(RESTART_WAIT, refresh, || {
            let st = whole()?;
            (st.ring_id != before).then_some(())
        });
        if back.is_none() {
            return Err(refused(
                step,
                format!(
                    "{n} did not rejoin within {} s after its restart (its own pve-gitops starts corosync again: is it running on {n}?)",
                    RESTART_WAIT.as_secs()
                ),
            ));
        }
    }
    Ok(())
}

fn service(t: &CorosyncTarget, what: &str) -> Result<(), TargetError> {
    let argv = match what {
        "start" => t.opts.start.clone(),
        _ => t.opts.stop.clone(),
    }
    .ok_or_else(|| {
        TargetError::Unavailable(format!(
            "no service manager (systemd) found to {what} corosync on {}; pass --start-cmd CMD and --stop-cmd CMD",
            t.opts.node
        ))
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let log = std::env::temp_dir().join(format!(
        "pve-gitops-{what}-{}-{}-{nanos:x}.log",
        t.opts.node,
        std::process::id()
    ));
    let out = tools::run_service(&argv, &log)?;
    if out.success() {
        Ok(())
    } else {
        Err(TargetError::Command {
            command: tools::describe(&argv),
            message: out.message(),
        })
    }
}

fn start_local(t: &CorosyncTarget) -> Result<(), TargetError> {
    service(t, "start")
}

fn stop_local(t: &CorosyncTarget) -> Result<(), TargetError> {
    service(t, "stop")
}

/// The sizes corosync accepts for an authkey (bytes; `corosync-keygen` writes 256).
const AUTHKEY_SIZES: std::ops::RangeInclusive<u64> = 128..=4096;

/// Generate the shared authkey if there is none: `corosync-keygen -k DIR/priv/authkey.new`,
/// size checked, renamed into place (a killed or failed keygen never leaves a short key that
/// every later create would reuse). An existing key of a size corosync refuses is an error.
fn ensure_shared_authkey(t: &CorosyncTarget) -> Result<(), TargetError> {
    let path = t.opts.shared.join(SHARED_AUTHKEY);
    let size_ok = |p: &Path| fs::metadata(p).is_ok_and(|m| AUTHKEY_SIZES.contains(&m.len()));
    if path.is_file() {
        if size_ok(&path) {
            return Ok(());
        }
        return Err(TargetError::Unavailable(format!(
            "{} is not a corosync authkey (it must be {}-{} bytes): remove it to have a new one generated, or put the cluster's key there",
            path.display(),
            AUTHKEY_SIZES.start(),
            AUTHKEY_SIZES.end()
        )));
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    let tmp = path.with_file_name("authkey.new");
    let _ = fs::remove_file(&tmp);
    let argv = vec![
        tool("corosync-keygen"),
        "-k".into(),
        tmp.display().to_string(),
    ];
    let out = tools::run(&argv, TOOL_TIMEOUT)?;
    if !out.success() || !size_ok(&tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(TargetError::Command {
            command: tools::describe(&argv),
            message: out.message(),
        });
    }
    fs::rename(&tmp, &path).map_err(write_err(&path))
}

/// Copy the shared authkey to this node's `--authkey` path (mode 0400) when it differs. The
/// key's bytes are never printed.
fn install_authkey(t: &CorosyncTarget) -> Result<(), TargetError> {
    let src = t.opts.shared.join(SHARED_AUTHKEY);
    let key = fs::read(&src).map_err(|source| TargetError::Read {
        path: src.clone(),
        source,
    })?;
    if fs::read(&t.opts.authkey).ok().as_deref() == Some(key.as_slice()) {
        return Ok(());
    }
    write_key(&t.opts.authkey, &key)
}

/// Adopting a running cluster: its authkey (this member's `--authkey`) becomes the shared one
/// if there is none, so that nodes joining later get the key the cluster runs with.
fn publish_authkey(t: &CorosyncTarget) -> Result<(), TargetError> {
    let dst = t.opts.shared.join(SHARED_AUTHKEY);
    if dst.is_file() {
        return Ok(());
    }
    match fs::read(&t.opts.authkey) {
        Ok(key) => write_key(&dst, &key),
        // Without crypto (no authkey) there is nothing to share.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TargetError::Read {
            path: t.opts.authkey.clone(),
            source,
        }),
    }
}

/// Write a key file atomically (`.new`, mode 0400, fsync, rename).
fn write_key(dst: &Path, key: &[u8]) -> Result<(), TargetError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = dst.parent() {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    let mut tmp_name = dst.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".new");
    let tmp = dst.with_file_name(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&tmp)
        .map_err(write_err(&tmp))?;
    f.write_all(key)
        .and_then(|()| f.sync_all())
        .map_err(write_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, dst).map_err(write_err(dst))
}

fn create(t: &CorosyncTarget, step: &Step, c: &CreateCluster) -> Result<String, TargetError> {
    if c.founder != t.opts.node {
        return Err(refused(step, format!("runs on {}", c.founder)));
    }
    let (lock, _) = lock_corosync(t, step)?;
    if read_master(t)?.is_some() {
        return Err(stale(step, "the master corosync.conf exists already"));
    }
    if local_status(t).is_some() {
        return Err(refused(
            step,
            format!(
                "corosync is already running on {}, is this node already in a cluster?",
                t.opts.node
            ),
        ));
    }
    ensure_shared_authkey(t)?;
    install_authkey(t)?;
    write_master(t, &c.corosync_conf)?;
    sync_text(t, &c.corosync_conf, None)?;
    start_local(t)?;
    let version = version_of(&c.corosync_conf);
    // The lock stays fresh while corosync starts (the other controllers wait for its holder).
    wait_running(t, step, version, refresher(&lock))?;
    Ok(format!(
        "authkey generated, corosync.conf (config_version {version}) written, corosync started; {} is a quorate one-node cluster",
        t.opts.node
    ))
}

/// Wait until corosync here is a quorate member running `version` (`tick` between polls).
fn wait_running(
    t: &CorosyncTarget,
    step: &Step,
    version: u64,
    tick: impl FnMut(),
) -> Result<QuorumStatus, TargetError> {
    // Every 250 ms, not every 50: a starting corosync asked over IPC that often forms the
    // membership with the others measurably later (the join benchmark's slow trials; see
    // BENCHMARKS.md), and its knet links take ~2.5 s to come up anyway.
    let st = wait_every(START_POLL, START_WAIT, tick, || {
        local_status(t).filter(|s| s.quorate)
    });
    let Some(st) = st else {
        return Err(refused(
            step,
            format!(
                "corosync on {} did not become a quorate member within {} s (check its log: a node whose config_version differs from the cluster's exits)",
                t.opts.node,
                START_WAIT.as_secs()
            ),
        ));
    };
    let runs = running_version();
    if runs != Some(version) {
        return Err(refused(
            step,
            format!(
                "corosync on {} runs config_version {}, expected {version}",
                t.opts.node,
                runs.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
            ),
        ));
    }
    Ok(st)
}

/// The node-local half of a join (and the restart of a member whose corosync is down, or runs
/// an older corosync.conf outside the quorate membership — it was cut off while the nodelist
/// changed, see [`observe::cut_off_view`]): install the master and the authkey, (re)start
/// corosync, wait until it is a quorate member.
fn start_member(t: &CorosyncTarget, step: &Step, j: &JoinNode) -> Result<String, TargetError> {
    if j.node != t.opts.node {
        return Err(refused(step, format!("runs on {}", j.node)));
    }
    let master = read_master(t)?.ok_or_else(|| stale(step, "there is no master corosync.conf"))?;
    if !names_of(&master).contains_key(&j.node) {
        return Err(stale(
            step,
            format!("{} is not in the master's nodelist", j.node),
        ));
    }
    let version = version_of(&master);
    let mut restarted = None;
    if let Some(st) = local_status(t) {
        // Only a node outside any quorate membership, behind the master, is restarted: it
        // serves nothing, and its old nodelist keeps it out.
        match running_version() {
            Some(runs) if !st.quorate && runs < version => {
                stop_local(t)?;
                restarted = Some(runs);
            }
            _ => {
                return Err(stale(
                    step,
                    format!("corosync is already running on {}", j.node),
                ))
            }
        }
    }
    install_authkey(t)?;
    sync_text(t, &master, None)?;
    start_local(t)?;
    let st = wait_running(t, step, version, || {})?;
    let what = match restarted {
        Some(old) => {
            format!("restarted (it ran config_version {old} outside the quorate membership)")
        }
        None => "started".to_string(),
    };
    Ok(format!(
        "corosync.conf (config_version {version}) and authkey installed, corosync {what}; {} members, quorate",
        st.members.len()
    ))
}

fn set_expected(
    t: &CorosyncTarget,
    step: &Step,
    e: &SetExpectedVotes,
) -> Result<String, TargetError> {
    let (_lock, _) = lock_corosync(t, step)?;
    let st = local_status(t)
        .ok_or_else(|| refused(step, format!("corosync is not running on {}", t.opts.node)))?;
    if st.expected_votes != e.from {
        return Err(stale(
            step,
            format!(
                "expected votes is {} now, the step starts from {}",
                st.expected_votes, e.from
            ),
        ));
    }
    let argv = vec![
        tool("corosync-quorumtool"),
        "-e".into(),
        e.expected.to_string(),
    ];
    let out = tools::run(&argv, TOOL_TIMEOUT)?;
    if !out.success() {
        return Err(refused(
            step,
            format!("corosync refused it: {}", out.message()),
        ));
    }
    let st = wait_for(
        VERIFY_WAIT,
        || {},
        || local_status(t).filter(|s| s.expected_votes == e.expected),
    )
    .ok_or_else(|| {
        refused(
            step,
            format!(
                "corosync-quorumtool -e {} succeeded but expected votes did not change",
                e.expected
            ),
        )
    })?;
    Ok(format!(
        "expected votes {} (total {}, quorum {}, {})",
        st.expected_votes,
        st.total_votes,
        st.quorum,
        if st.quorate { "quorate" } else { "not quorate" }
    ))
}

fn set_datacenter(
    t: &CorosyncTarget,
    step: &Step,
    d: &SetDatacenter,
) -> Result<String, TargetError> {
    let (_lock, _) = lock_file(t, step, crate::configfs::DATACENTER_CFG, || {})?;
    let path = t.opts.shared.join(crate::configfs::DATACENTER_CFG);
    let text = match fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(TargetError::Read { path, source }),
    };
    let mut doc = DatacenterDocument::parse(&text);
    if doc.get(&d.key) != d.from.as_deref() {
        return Err(stale(step, format!("datacenter.cfg `{}` changed", d.key)));
    }
    match &d.to {
        Some(v) => doc
            .set(&d.key, v)
            .map_err(|e| refused(step, e.to_string()))?,
        None => {
            doc.remove(&d.key);
        }
    }
    atomic_write(&path, doc.to_string().as_bytes()).map_err(write_err(&path))?;
    Ok(format!("datacenter.cfg `{}` written", d.key))
}
