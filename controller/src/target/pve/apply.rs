//! `apply` of the `pve` target: one function per step kind. Each re-reads what it depends on
//! first: a step whose effect is already there is done, a step planned from a state that has
//! changed since is [`TargetError::Stale`].

use super::argv::{self, JoinAuth};
use super::parse::{parse_cmap, parse_quorum_status, CmapEntry, TaskLogLine, TaskStatus, Upid};
use super::preflight::{self, JoinCheck};
use super::{gate_unsatisfied, PveTarget};
use crate::cfs_lock::{CfsLock, LockError};
use crate::configfs::atomic_write;
use crate::plan::step::{
    CreateCluster, JoinNode, Method, MigrateGuest, RemoveNode, SetDatacenter, SetExpectedVotes,
    Step, StepKind, UpdateCorosync, Wait,
};
use crate::target::{Applied, Target, TargetError};
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::pmxcfs::{lock_id_for_file, Members};
use pve_gitops_schema::spec::GuestType;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const COROSYNC_CONF: &str = "corosync.conf";
const DATACENTER_CFG: &str = "datacenter.cfg";

pub(super) fn apply(t: &mut PveTarget, step: &Step) -> Result<Applied, TargetError> {
    let start = Instant::now();
    let message = match &step.kind {
        StepKind::CreateCluster(s) => create(t, step, s)?,
        StepKind::JoinNode(s) => join(t, step, s)?,
        StepKind::UpdateCorosync(s) => update(t, step, s)?,
        StepKind::SetExpectedVotes(s) => expected(t, s)?,
        StepKind::SetDatacenter(s) => datacenter(t, step, s)?,
        StepKind::MigrateGuest(s) => migrate(t, step, s)?,
        StepKind::Wait(s) => wait(t, step, s)?,
        StepKind::RemoveNode(s) => remove(t, step, s)?,
    };
    Ok(Applied {
        message,
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn refused(step: &Step, reason: impl Into<String>) -> TargetError {
    TargetError::Refused {
        step: step.summary.clone(),
        reason: reason.into(),
    }
}

fn stale(step: &Step, reason: impl Into<String>) -> TargetError {
    TargetError::Stale {
        step: step.summary.clone(),
        reason: reason.into(),
    }
}

fn read_opt(path: &Path) -> Result<Option<String>, TargetError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TargetError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_err(path: &Path) -> impl Fn(io::Error) -> TargetError + '_ {
    move |source| TargetError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn lock_err(step: &Step, e: LockError) -> TargetError {
    match e {
        LockError::Timeout { .. } | LockError::NoQuorum { .. } => refused(step, e.to_string()),
        other => TargetError::Unavailable(other.to_string()),
    }
}

/// Run `argv`; a non-zero exit is a [`TargetError::Command`] with the output's tail.
fn run_ok(
    t: &mut PveTarget,
    argv: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
    redact: Option<&str>,
) -> Result<super::runner::Output, TargetError> {
    let out = t.run(argv, stdin, timeout)?;
    if out.success() {
        return Ok(out);
    }
    let mut message = out.tail(20);
    if let Some(secret) = redact.filter(|s| !s.is_empty()) {
        message = message.replace(secret, "***");
    }
    Err(TargetError::Command {
        command: super::runner::describe(argv),
        message,
    })
}

fn create(t: &mut PveTarget, step: &Step, s: &CreateCluster) -> Result<String, TargetError> {
    if t.root.join(COROSYNC_CONF).exists() {
        return Err(stale(
            step,
            format!(
                "cluster config '{}/corosync.conf' already exists",
                t.root.display()
            ),
        ));
    }
    let gen = t.generation();
    let argv = argv::create(gen, s);
    let timeout = t.opts.long_timeout;
    run_ok(t, &argv, None, timeout, None)?;
    Ok(format!("`{}` done", super::runner::describe(&argv)))
}

/// The peer `pvecm add` connects to: the `via` node's link-0 address in the planned
/// corosync.conf, else its name.
fn join_peer(s: &JoinNode) -> String {
    Document::parse(&s.corosync_conf)
        .ok()
        .and_then(|d| {
            d.view()
                .node_by_name(&s.via)
                .and_then(|n| n.rings.get(&0).cloned())
        })
        .unwrap_or_else(|| s.via.clone())
}

fn join(t: &mut PveTarget, step: &Step, s: &JoinNode) -> Result<String, TargetError> {
    if s.from_version == s.to_version && s.via == s.node {
        return restart_joined(t, step, s);
    }
    let cfs = crate::configfs::ConfigFs::read(&t.root)
        .map_err(|e| TargetError::Unavailable(e.to_string()))?;
    let mut guests: Vec<u32> = cfs.guests.iter().map(|g| g.vmid).collect();
    if let Some(v) = &cfs.vmlist {
        guests.extend(v.ids.keys().copied());
    }
    guests.sort_unstable();
    guests.dedup();
    let opts = t.opts.clone();
    // With --peer, the peer address and the certificate fingerprint come from the cluster's
    // join information (over the pinned or CA-verified connection), as the join API would.
    let from_peer = match &opts.peer {
        Some(api) if !t.root.join(COROSYNC_CONF).exists() => {
            Some(crate::target::pve_api::join_peer(api, step, &s.via)?)
        }
        _ => None,
    };
    let fingerprint = match &from_peer {
        Some((_, fp)) => Some(fp.clone()),
        None => opts.fingerprint.clone(),
    };
    let check = JoinCheck {
        root: &t.root,
        corosync_dir: &opts.corosync_dir,
        guests,
        links: &s.links,
        use_ssh: opts.use_ssh,
        password_file: opts.join_password_file.as_deref(),
        fingerprint: fingerprint.as_deref(),
    };
    let problems = preflight::check(&check, t.runner.as_mut(), opts.command_timeout);
    if !problems.is_empty() {
        return Err(refused(step, preflight::refusal(&problems)));
    }
    let gen = t.generation();
    let peer = match from_peer {
        Some((addr, _)) => addr,
        None => join_peer(s),
    };
    let (auth, password) = if opts.use_ssh {
        (JoinAuth::Ssh, None)
    } else {
        let path = opts.join_password_file.clone().unwrap_or_default();
        let text = fs::read_to_string(&path).map_err(|source| TargetError::Read {
            path: path.clone(),
            source,
        })?;
        let pw = text.lines().next().unwrap_or("").to_string();
        (
            JoinAuth::Api {
                fingerprint: fingerprint.unwrap_or_default(),
            },
            Some(pw),
        )
    };
    let argv = argv::join(gen, s, &peer, &auth);
    let stdin = password.as_ref().map(|p| format!("{p}\n").into_bytes());
    run_ok(
        t,
        &argv,
        stdin.as_deref(),
        opts.long_timeout,
        password.as_deref(),
    )?;
    Ok(format!(
        "joined {} via {peer}: `{}`",
        s.node,
        super::runner::describe(&argv)
    ))
}

/// A node in the nodelist whose corosync is not running (an interrupted join): start it.
fn restart_joined(t: &mut PveTarget, step: &Step, s: &JoinNode) -> Result<String, TargetError> {
    for f in ["authkey", "corosync.conf"] {
        if !t.opts.corosync_dir.join(f).exists() {
            return Err(refused(
                step,
                format!(
                    "{} is in the nodelist but {}/{f} is missing: the join did not finish; \
                     the node needs a reinstall (or a manual repair) before it can join again",
                    s.node,
                    t.opts.corosync_dir.display()
                ),
            ));
        }
    }
    let argv = vec!["systemctl".to_string(), "start".into(), "corosync".into()];
    let timeout = t.opts.command_timeout;
    run_ok(t, &argv, None, timeout, None)?;
    Ok(format!("started corosync on {}", s.node))
}

fn conf_version(text: &str) -> Option<u64> {
    Document::parse(text).ok()?.view().totem.config_version
}

fn update(t: &mut PveTarget, step: &Step, s: &UpdateCorosync) -> Result<String, TargetError> {
    if conf_version(&s.corosync_conf) != Some(s.to_version) {
        return Err(refused(
            step,
            format!(
                "the planned corosync.conf does not carry config_version {} (pmxcfs would not propagate it)",
                s.to_version
            ),
        ));
    }
    let path = t.root.join(COROSYNC_CONF);
    let lock = CfsLock::acquire(&t.root, &lock_id_for_file(COROSYNC_CONF), &t.opts.lock)
        .map_err(|e| lock_err(step, e))?;
    let current = read_opt(&path)?.ok_or_else(|| stale(step, "corosync.conf is gone"))?;
    let current_version = conf_version(&current);
    if s.from_version == s.to_version && current_version == Some(s.to_version) {
        // Members that missed the reload of this version (cut off at the time, merged back
        // with their old configuration): one more `corosync-cfgtool -R`, as pmxcfs runs after a
        // change — every node re-reads its own copy, which pmxcfs keeps in sync.
        let timeout = t.opts.command_timeout;
        run_ok(t, &argv::cfgtool_reload(), None, timeout, None)?;
        drop(lock);
        return Ok(format!(
            "corosync.conf config_version {} reloaded for the members that missed it",
            s.to_version
        ));
    }
    if current_version == Some(s.to_version) && current == s.corosync_conf {
        drop(lock);
        return Ok(format!(
            "corosync.conf already at config_version {}",
            s.to_version
        ));
    }
    if current_version != Some(s.from_version) {
        return Err(stale(
            step,
            format!(
                "corosync.conf has config_version {}, the step was planned from {}",
                current_version.map_or("(none)".to_string(), |v| v.to_string()),
                s.from_version
            ),
        ));
    }
    // The admin guide's protocol: write .new, keep a .bak, rename .new over the file.
    let new = t.root.join("corosync.conf.new");
    let bak = t.root.join("corosync.conf.bak");
    fs::write(&new, s.corosync_conf.as_bytes()).map_err(write_err(&new))?;
    fs::copy(&path, &bak).map_err(write_err(&bak))?;
    lock.refresh().map_err(|e| lock_err(step, e))?;
    fs::rename(&new, &path).map_err(|e| {
        let _ = fs::remove_file(&new);
        write_err(&path)(e)
    })?;
    lock.release().map_err(|e| lock_err(step, e))?;
    match s.method {
        Method::Reload => {
            // pmxcfs syncs /etc/corosync/corosync.conf and runs `corosync-cfgtool -R` itself
            // (1 s after the rename); wait until corosync runs the new version.
            wait_local_version(t, step, s.to_version)?;
            Ok(format!(
                "corosync.conf config_version {} -> {} (reloaded; backup in corosync.conf.bak)",
                s.from_version, s.to_version
            ))
        }
        Method::RollingRestart => {
            wait_local_version(t, step, s.to_version).ok();
            for node in &s.restart_order {
                restart_node(t, step, node)?;
            }
            Ok(format!(
                "corosync.conf config_version {} -> {}; restarted corosync on {}",
                s.from_version,
                s.to_version,
                s.restart_order.join(", ")
            ))
        }
    }
}

fn local_running_version(t: &mut PveTarget) -> Option<u64> {
    let timeout = t.opts.command_timeout;
    t.run(&argv::cmap_get("totem.config_version"), None, timeout)
        .ok()
        .filter(|o| o.success())
        .and_then(|o| parse_cmap(&o.stdout).ok())
        .and_then(|e| e.first().and_then(CmapEntry::as_u64))
}

fn wait_local_version(t: &mut PveTarget, step: &Step, version: u64) -> Result<(), TargetError> {
    let start = Instant::now();
    loop {
        let v = local_running_version(t);
        if v == Some(version) {
            return Ok(());
        }
        if start.elapsed() >= t.opts.settle_timeout {
            return Err(refused(
                step,
                format!(
                    "corosync still runs config_version {} after {} s, not {version}: \
                     check `journalctl -b -u corosync` (\"cannot be changed at run-time\" means a restart is needed)",
                    v.map_or("(unknown)".to_string(), |v| v.to_string()),
                    t.opts.settle_timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(t.opts.poll);
    }
}

/// Restart corosync on `node` (locally, or over ssh to its `.members` IP) and wait until it
/// is back in a quorate membership.
fn restart_node(t: &mut PveTarget, step: &Step, node: &str) -> Result<(), TargetError> {
    let local = t.seen.as_ref().map(|s| s.local.clone()).unwrap_or_default();
    let argv = if node == local {
        argv::restart_corosync_local()
    } else {
        let members = read_opt(&t.root.join(".members"))?.and_then(|m| Members::parse(&m).ok());
        let ip = members
            .as_ref()
            .and_then(|m| m.nodelist.get(node))
            .and_then(|n| n.ip.clone())
            .ok_or_else(|| {
                refused(
                    step,
                    format!("no IP for {node} in .members: restart corosync there by hand"),
                )
            })?;
        argv::restart_corosync_remote(node, &ip)
    };
    let nodeid = read_opt(&t.root.join(COROSYNC_CONF))?
        .and_then(|c| Document::parse(&c).ok())
        .and_then(|d| d.view().node_by_name(node).and_then(|n| n.nodeid));
    let timeout = t.opts.command_timeout;
    run_ok(t, &argv, None, timeout, None)?;
    let start = Instant::now();
    loop {
        let status = t
            .run(&argv::quorum_status(), None, timeout)
            .ok()
            .and_then(|o| parse_quorum_status(&o.stdout).ok());
        if let Some(q) = status {
            // By nodeid: quorumtool prints an address when a node has no `name`.
            let back = q
                .members
                .iter()
                .any(|(id, _, n)| Some(*id) == nodeid || n == node);
            if q.quorate && back {
                return Ok(());
            }
        }
        if start.elapsed() >= t.opts.settle_timeout {
            return Err(refused(
                step,
                format!(
                    "{node} did not rejoin a quorate membership within {} s after the restart; stopping the rolling restart",
                    t.opts.settle_timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(t.opts.poll);
    }
}

fn expected(t: &mut PveTarget, s: &SetExpectedVotes) -> Result<String, TargetError> {
    let argv = argv::expected(s.expected);
    let timeout = t.opts.command_timeout;
    run_ok(t, &argv, None, timeout, None)?;
    Ok(format!(
        "expected votes set to {} (runtime only, until the next reload)",
        s.expected
    ))
}

fn datacenter(t: &mut PveTarget, step: &Step, s: &SetDatacenter) -> Result<String, TargetError> {
    let path = t.root.join(DATACENTER_CFG);
    let lock = CfsLock::acquire(&t.root, &lock_id_for_file(DATACENTER_CFG), &t.opts.lock)
        .map_err(|e| lock_err(step, e))?;
    let text = read_opt(&path)?.unwrap_or_default();
    let mut doc = DatacenterDocument::parse(&text);
    let current = doc.get(&s.key).map(str::to_string);
    if current == s.to {
        drop(lock);
        return Ok(format!("datacenter.cfg {} already set", s.key));
    }
    if current != s.from {
        return Err(stale(
            step,
            format!(
                "datacenter.cfg {} is {}, the step was planned from {}",
                s.key,
                current.as_deref().unwrap_or("(unset)"),
                s.from.as_deref().unwrap_or("(unset)")
            ),
        ));
    }
    match &s.to {
        Some(v) => doc
            .set(&s.key, v)
            .map_err(|e| refused(step, format!("{}: {e}", s.key)))?,
        None => {
            doc.remove(&s.key);
        }
    }
    atomic_write(&path, doc.to_string().as_bytes()).map_err(write_err(&path))?;
    lock.release().map_err(|e| lock_err(step, e))?;
    Ok(format!(
        "datacenter.cfg {}: {}",
        s.key,
        s.to.as_deref().unwrap_or("(removed)")
    ))
}

fn guest_path(root: &Path, node: &str, gtype: GuestType, vmid: u32) -> PathBuf {
    let dir = match gtype {
        GuestType::Qemu => "qemu-server",
        GuestType::Lxc => "lxc",
    };
    root.join("nodes")
        .join(node)
        .join(dir)
        .join(format!("{vmid}.conf"))
}

fn migrate(t: &mut PveTarget, step: &Step, s: &MigrateGuest) -> Result<String, TargetError> {
    let src = guest_path(&t.root, &s.from, s.guest_type, s.vmid);
    let dst = guest_path(&t.root, &s.to, s.guest_type, s.vmid);
    if !src.exists() {
        if dst.exists() {
            return Ok(format!(
                "{} {} is already on {}",
                s.guest_type.as_str(),
                s.vmid,
                s.to
            ));
        }
        return Err(stale(
            step,
            format!("{} is gone (the guest moved or was removed)", src.display()),
        ));
    }
    let argv = argv::migrate(s, t.opts.with_local_disks);
    let timeout = t.opts.long_timeout;
    let out = t.run(&argv, None, timeout)?;
    let upid = Upid::find(&out.stdout).or_else(|| Upid::find(&out.stderr));
    if !out.success() {
        let log = match &upid {
            Some(u) => task_log(t, u).unwrap_or_else(|| out.tail(30)),
            None => out.tail(30),
        };
        return Err(TargetError::Command {
            command: super::runner::describe(&argv),
            message: log,
        });
    }
    // HA-managed guests are only queued (`Requesting HA migration ...`): wait for the task,
    // then for the config to arrive on the target node (what changes the placement).
    if let Some(u) = &upid {
        wait_task(t, step, &argv, u)?;
    }
    let start = Instant::now();
    while !dst.exists() {
        if start.elapsed() >= t.opts.settle_timeout {
            return Err(refused(
                step,
                format!(
                    "`{}` finished but {} did not appear within {} s",
                    super::runner::describe(&argv),
                    dst.display(),
                    t.opts.settle_timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(t.opts.poll);
    }
    Ok(format!(
        "migrated {} {} {} -> {}",
        s.guest_type.as_str(),
        s.vmid,
        s.from,
        s.to
    ))
}

fn task_log(t: &mut PveTarget, upid: &Upid) -> Option<String> {
    let timeout = t.opts.command_timeout;
    let out = t
        .run(&argv::task_log(&upid.node, &upid.text), None, timeout)
        .ok()
        .filter(|o| o.success())?;
    let lines: Vec<TaskLogLine> = serde_json::from_str(&out.stdout).ok()?;
    let tail: Vec<&str> = lines.iter().rev().take(30).map(|l| l.t.as_str()).collect();
    Some(tail.into_iter().rev().collect::<Vec<_>>().join(" / "))
}

fn wait_task(
    t: &mut PveTarget,
    step: &Step,
    argv: &[String],
    upid: &Upid,
) -> Result<(), TargetError> {
    let start = Instant::now();
    let timeout = t.opts.command_timeout;
    loop {
        let status: Option<TaskStatus> = t
            .run(&argv::task_status(&upid.node, &upid.text), None, timeout)
            .ok()
            .filter(|o| o.success())
            .and_then(|o| serde_json::from_str(&o.stdout).ok());
        if let Some(st) = status {
            if st.finished() {
                if st.succeeded() {
                    return Ok(());
                }
                let log = task_log(t, upid).unwrap_or_default();
                return Err(TargetError::Command {
                    command: super::runner::describe(argv),
                    message: format!(
                        "task {} ended with {}: {log}",
                        upid.text,
                        st.exitstatus.as_deref().unwrap_or("(no exit status)")
                    ),
                });
            }
        }
        if start.elapsed() >= t.opts.long_timeout {
            return Err(refused(
                step,
                format!(
                    "task {} still running after {} s",
                    upid.text,
                    t.opts.long_timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(t.opts.poll);
    }
}

fn wait(t: &mut PveTarget, step: &Step, s: &Wait) -> Result<String, TargetError> {
    let o = t.observe()?;
    match gate_unsatisfied(&o, &s.gate) {
        Some(why) => Err(refused(step, format!("gate not satisfied: {why}"))),
        None => Ok(format!("gate satisfied: {}", s.gate.key())),
    }
}

/// Relative paths of the files under `dir` (sorted; at most 50).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out.truncate(50);
    out
}

fn remove(t: &mut PveTarget, step: &Step, s: &RemoveNode) -> Result<String, TargetError> {
    let current = read_opt(&t.root.join(COROSYNC_CONF))?
        .ok_or_else(|| stale(step, "corosync.conf is gone"))?;
    let doc = Document::parse(&current).map_err(|e| TargetError::Parse {
        path: t.root.join(COROSYNC_CONF),
        message: e.to_string(),
    })?;
    let view = doc.view();
    let present = view.node_by_name(&s.node).is_some();
    let root = t.root.clone();
    let leftover = || {
        let dir = root.join("nodes").join(&s.node);
        let files = files_under(&dir);
        if files.is_empty() {
            String::new()
        } else {
            format!(
                "; {} remains (delnode never removes it): {} — move any guest configs you still need, then remove the directory by hand",
                dir.display(),
                files.join(", ")
            )
        }
    };
    if !present {
        return Ok(format!("{} is not in the nodelist{}", s.node, leftover()));
    }
    if view.totem.config_version != Some(s.from_version) {
        return Err(stale(
            step,
            format!(
                "corosync.conf has config_version {:?}, the step was planned from {}",
                view.totem.config_version, s.from_version
            ),
        ));
    }
    let argv = argv::delnode(&s.node);
    let timeout = t.opts.command_timeout;
    run_ok(t, &argv, None, timeout, None)?;
    Ok(format!(
        "`{}` done{}",
        super::runner::describe(&argv),
        leftover()
    ))
}
