//! Benchmark: real corosync 3 in network namespaces, pve-gitops `reconcile` vs the same change
//! scripted by hand with corosync's tools (BENCHMARKS.md, "Real corosync: reconcile vs raw
//! tools").
//!
//! For each operation — join a 4th node to a 3-node cluster, remove a powered-off node, add a
//! second knet link — and each of N repetitions, two trials on fresh clusters:
//!
//! - **pve-gitops**: the new manifest is in place; at t0 `reconcile` starts on every node at once
//!   and is run again on a node when something changed since its last quiet run, until all are
//!   quiet (exactly what `e2e/tests/scenarios.rs` calls `converge`: the per-node controllers'
//!   steady state; the rule is `pve_gitops_e2e::service::due`).
//! - **raw**: at t0 the bench writes the new corosync.conf to every node (`.new` + rename), runs
//!   `corosync-cfgtool -R` on node 1 and, for the join, starts corosync on node 4 (the same
//!   start script the controllers use).
//!
//! Both end at the **verified end state**, checked by the same poller (a pass every 20 ms,
//! started at t0) with corosync's own tools on every member: `corosync-quorumtool -s -p` shows exactly the
//! expected members, quorate, expected and total votes = member count; cmap
//! `totem.config_version` is the new version on every member; for the link add
//! `corosync-cfgtool -n` shows link 1 connected to every other member. The raw trial uses
//! byte-identical corosync.conf texts (the ones pve-gitops wrote in the warm-up trial, with the
//! harness's address block substituted), so corosync does the same work in both.
//!
//! Run as root (after `cargo build --release -p pve-gitops`):
//!
//! ```sh
//! cargo run --release -p pve-gitops-e2e --example bench_ops -- [N] [join,remove,link]
//! cargo run --release -p pve-gitops-e2e --example bench_ops -- [N] tools
//! ```
//!
//! `tools` instead times single calls of the corosync tools the controllers and the verifier use
//! (N calls each, one after another) on node 1 of an idle, quorate 3-node cluster, with an empty
//! `nsenter` as the baseline: what one observation costs before anything is planned.
//!
//! Progress and per-trial timelines go to stderr (`TIMING` lines); the result tables (Markdown)
//! to stdout.

use pve_gitops_e2e::service::{manifest_yaml, ManifestNode, Run};
use pve_gitops_e2e::{preflight, pve_gitops_bin, Harness};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Time limit of one `reconcile` run.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Time limit of one converge / one raw change (to the verified end state).
const OP_TIMEOUT: Duration = Duration::from_secs(120);
/// Poll interval of the end-state verifier (both modes).
const VERIFY_POLL: Duration = Duration::from_millis(20);
/// A join trial slower than this (seconds) prints the new node's corosync log.
const SLOW_JOIN: f64 = 4.0;
/// Poll interval of the shared-directory observer (file reads only, no processes).
const SHARED_POLL: Duration = Duration::from_millis(10);

type R<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Join,
    Remove,
    Link,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Join => "join",
            Op::Remove => "remove",
            Op::Link => "link",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Op::Join => "join a 4th node to 3",
            Op::Remove => "remove a powered-off node (4 -> 3)",
            Op::Link => "add a second knet link (3 nodes)",
        }
    }
    /// Hosts wired before the change, and bridges.
    fn shape(self) -> (usize, usize) {
        match self {
            Op::Join => (3, 1),
            Op::Remove => (4, 1),
            Op::Link => (3, 2),
        }
    }
    /// The members after the change (also the nodes whose controllers converge, plus pve4
    /// for the join).
    fn members_after(self) -> Vec<usize> {
        match self {
            Op::Join => vec![1, 2, 3, 4],
            Op::Remove | Op::Link => vec![1, 2, 3],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes: start/stop scripts (the same ones for the controllers and the raw script)

fn write_scripts(h: &Harness, i: usize) -> R<()> {
    let root = h.node_root(i).map_err(err)?;
    pve_gitops_e2e::service::write_service_scripts(root).map_err(err)
}

fn start_cmd(h: &Harness, i: usize) -> R<Vec<String>> {
    let root = h.node_root(i).map_err(err)?;
    Ok(vec![
        "sh".into(),
        root.join("start.sh").display().to_string(),
        root.join("corosync.stderr.log").display().to_string(),
        h.base_dir().join("pids").display().to_string(),
    ])
}

fn start_node(h: &Harness, i: usize) -> R<()> {
    let argv = start_cmd(h, i)?;
    let out = h.run_on_node(i, &argv[0], &argv[1..], &[]).map_err(err)?;
    out.success()
        .then_some(())
        .ok_or_else(|| format!("start.sh on pve{i}: {out:?}"))
}

fn stop_node(h: &Harness, i: usize) -> R<()> {
    let root = h.node_root(i).map_err(err)?;
    let out = h
        .run_on_node(i, "sh", [root.join("stop.sh")], &[])
        .map_err(err)?;
    out.success()
        .then_some(())
        .ok_or_else(|| format!("stop.sh on pve{i}: {out:?}"))
}

/// Wait until every node in `on` sees exactly `members`, quorate.
fn wait_members(h: &Harness, on: &[usize], members: &[usize]) -> R<()> {
    let want: Vec<u32> = members.iter().map(|&i| i as u32).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for &i in on {
        loop {
            if h.quorum_status(i)
                .is_ok_and(|s| s.quorate && s.member_ids() == want)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "pve{i} never saw quorate members {want:?}: {:?}\n{}",
                    h.quorum_status(i),
                    h.log_tail(i, 20)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The end state

struct Expect {
    members: Vec<usize>,
    version: u64,
    link1: bool,
}

/// One verification pass, cheapest checks first. `Ok(())` when the end state holds.
fn verify(h: &Harness, e: &Expect) -> R<()> {
    let want: Vec<u32> = e.members.iter().map(|&i| i as u32).collect();
    let n = want.len() as u32;
    for &i in &e.members {
        let s = h.quorum_status(i).map_err(err)?;
        if !(s.quorate && s.member_ids() == want && s.expected_votes == n && s.total_votes == n) {
            return Err(format!(
                "pve{i}: quorate {} members {:?} expected {} total {}",
                s.quorate, s.members, s.expected_votes, s.total_votes
            ));
        }
    }
    for &i in &e.members {
        let v = h.config_version(i).map_err(err)?;
        if v != e.version {
            return Err(format!("pve{i} runs config_version {v}"));
        }
    }
    if e.link1 {
        for &i in &e.members {
            let ns = h.node_status(i).map_err(err)?;
            for &j in want.iter().filter(|&&j| j != i as u32) {
                let ok = ns
                    .iter()
                    .find(|r| r.nodeid == j)
                    .and_then(|r| r.link(1))
                    .is_some_and(|l| l.connected);
                if !ok {
                    return Err(format!("pve{i}: link 1 to node {j} not connected"));
                }
            }
        }
    }
    Ok(())
}

/// Poll [`verify`] from now until it holds (returns when) or `stop` / [`OP_TIMEOUT`].
/// Every pass that fails is recorded in `tl` (when it started, and why it failed).
fn poll_verified(
    h: &Harness,
    e: &Expect,
    stop: &AtomicBool,
    tl: &Timeline,
) -> (Option<Instant>, String) {
    let start = Instant::now();
    let mut last = String::new();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < OP_TIMEOUT {
        let pass = Instant::now();
        match verify(h, e) {
            Ok(()) => {
                tl.add(pass, "verifier pass started (it succeeds)");
                return (Some(Instant::now()), last);
            }
            Err(e) => {
                tl.add(pass, format!("verifier pass failed: {e}"));
                last = e;
            }
        }
        thread::sleep(VERIFY_POLL);
    }
    (None, last)
}

// ---------------------------------------------------------------------------------------------
// Timeline: what happened when, relative to t0

#[derive(Default)]
struct Timeline {
    events: Mutex<Vec<(Instant, String)>>,
}

impl Timeline {
    fn add(&self, at: Instant, what: impl Into<String>) {
        self.events.lock().expect("lock").push((at, what.into()));
    }
    fn sorted(&self, t0: Instant) -> Vec<(f64, String)> {
        let mut v: Vec<(f64, String)> = self
            .events
            .lock()
            .expect("lock")
            .iter()
            .map(|(t, s)| (secs(t.saturating_duration_since(t0)), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn version_of(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("config_version:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Watch the shared directory (file reads only): master config_version, each node's sync
/// record, the corosync.conf lock's holder. Records every change in `tl` until `stop`.
fn watch_shared(shared: &Path, tl: &Timeline, stop: &AtomicBool) {
    let mut master: Option<u64> = version_of(&read(&shared.join("corosync.conf")));
    let mut synced: BTreeMap<String, String> = BTreeMap::new();
    let nodes = shared.join("nodes");
    for (n, v) in records(&nodes) {
        synced.insert(n, v);
    }
    let owner = shared.join("priv/lock/file-corosync_conf/owner");
    let mut holder = lock_holder(&read(&owner));
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let m = version_of(&read(&shared.join("corosync.conf")));
        if m != master {
            tl.add(now, format!("shared: master config_version {m:?}"));
            master = m;
        }
        for (n, v) in records(&nodes) {
            if synced.get(&n) != Some(&v) {
                tl.add(
                    now,
                    format!(
                        "shared: {n} synced version {}",
                        v.split_whitespace().next().unwrap_or("?")
                    ),
                );
                synced.insert(n, v);
            }
        }
        let hd = lock_holder(&read(&owner));
        if hd != holder {
            match &hd {
                Some(x) => tl.add(now, format!("shared: lock taken by {x}")),
                None => tl.add(now, "shared: lock released"),
            }
            holder = hd;
        }
        thread::sleep(SHARED_POLL);
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

fn lock_holder(owner: &str) -> Option<String> {
    owner.split_whitespace().next().map(str::to_owned)
}

fn records(nodes: &Path) -> Vec<(String, String)> {
    let Ok(rd) = fs::read_dir(nodes) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let v = fs::read_to_string(e.path().join("corosync-synced")).ok()?;
            Some((n, v.trim().to_owned()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// pve-gitops side: the controllers, run as in e2e/tests/scenarios.rs

struct Ctl {
    bin: PathBuf,
    shared: PathBuf,
    manifest: PathBuf,
}

impl Ctl {
    fn new(h: &Harness, bin: &Path) -> R<Ctl> {
        let shared = h.base_dir().join("shared");
        fs::create_dir_all(&shared).map_err(err)?;
        Ok(Ctl {
            bin: bin.to_path_buf(),
            shared,
            manifest: h.base_dir().join("cluster.yaml"),
        })
    }

    /// Manifest: `nodes` are `(index, addresses per link, absent)`.
    fn manifest(&self, nodes: &[ManifestNode]) -> R<()> {
        fs::write(&self.manifest, manifest_yaml(nodes, "", "")).map_err(err)
    }

    fn args(&self, h: &Harness, i: usize, extra: &[&str]) -> R<Vec<String>> {
        let root = h.node_root(i).map_err(err)?;
        let mut a: Vec<String> = vec![
            "reconcile".into(),
            "-f".into(),
            self.manifest.display().to_string(),
            "--target".into(),
            "corosync".into(),
            "--node".into(),
            h.node_name(i),
            "--config-dir".into(),
            self.shared.display().to_string(),
            "--start-cmd".into(),
            start_cmd(h, i)?.join(" "),
            "--stop-cmd".into(),
            format!("sh {}", root.join("stop.sh").display()),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        Ok(a)
    }

    /// One `reconcile` on node `i`; stdout lines are timestamped as they arrive.
    fn reconcile(&self, h: &Harness, i: usize, extra: &[&str]) -> R<Run> {
        let mut cmd = h.nsenter(i).map_err(err)?;
        cmd.arg(&self.bin)
            .args(self.args(h, i, extra)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child: Child = cmd.spawn().map_err(err)?;
        let out = child.stdout.take().expect("piped");
        let mut errp = child.stderr.take().expect("piped");
        let lines_t = thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .map(|l| (Instant::now(), l))
                .collect::<Vec<_>>()
        });
        let err_t = thread::spawn(move || {
            let mut s = String::new();
            let _ = errp.read_to_string(&mut s);
            s
        });
        let code = loop {
            if let Some(st) = child.try_wait().map_err(err)? {
                break st.code();
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let ended = Instant::now();
        Ok(Run {
            node: i,
            code,
            lines: lines_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
            started,
            ended,
        })
    }

    /// `reconcile` on every node of `nodes` at once, and again on a node whenever it is due
    /// (`service::due`), until all of them exit 0 without applying anything in runs started
    /// after the last change anywhere (e2e/tests/scenarios.rs `converge`).
    fn converge(&self, h: &Harness, nodes: &[usize]) -> R<Vec<Run>> {
        pve_gitops_e2e::service::converge(nodes, OP_TIMEOUT, |n| self.reconcile(h, n, &[])).map_err(
            |e| {
                let all: Vec<String> = e.runs.iter().map(|r| r.to_string()).collect();
                format!(
                    "controllers on {nodes:?} did not converge ({}):\n{}",
                    e.why,
                    all.join("\n")
                )
            },
        )
    }

    fn master(&self) -> String {
        read(&self.shared.join("corosync.conf"))
    }
}

// ---------------------------------------------------------------------------------------------
// Trials

struct Sample {
    /// t0 -> verified end state.
    verified: f64,
    /// t0 -> the actor finished (pve-gitops: every controller quiet; raw: last command
    /// returned).
    finished: f64,
    timeline: Vec<(f64, String)>,
    /// pve-gitops: reconcile runs per node.
    runs: BTreeMap<usize, usize>,
}

/// The corosync.conf texts of a change (before, after), with the address block they use.
#[derive(Clone)]
struct Texts {
    before: String,
    after: String,
    block: u8,
}

impl Texts {
    fn for_harness(&self, h: &Harness) -> (String, String) {
        let b = block(h);
        let sub = |t: &str| t.replace(&format!("10.{}.", self.block), &format!("10.{b}."));
        (sub(&self.before), sub(&self.after))
    }
}

fn block(h: &Harness) -> u8 {
    h.node_addr(1, 0).octets()[1]
}

fn addrs(h: &Harness, i: usize, links: usize) -> Vec<String> {
    (0..links).map(|l| h.node_addr(i, l).to_string()).collect()
}

fn new_harness(prefix: &str, n: usize, links: usize) -> R<Harness> {
    let h = Harness::new(prefix, n, links).map_err(err)?;
    for i in h.node_ids() {
        write_scripts(&h, i)?;
    }
    Ok(h)
}

/// Run `act` at t0 while polling the end state; the sample ends when both are done.
fn timed(
    h: &Harness,
    expect: &Expect,
    shared: Option<&Path>,
    act: impl FnOnce(&Timeline) -> R<BTreeMap<usize, usize>>,
) -> R<Sample> {
    let tl = Timeline::default();
    let stop_verify = AtomicBool::new(false);
    let stop_watch = AtomicBool::new(false);
    let t0 = Instant::now();
    let (acted, verified) = thread::scope(|s| {
        let watcher = shared.map(|p| s.spawn(|| watch_shared(p, &tl, &stop_watch)));
        let poller = s.spawn(|| poll_verified(h, expect, &stop_verify, &tl));
        let acted = act(&tl);
        let finished = Instant::now();
        if acted.is_err() {
            stop_verify.store(true, Ordering::Relaxed);
        }
        let verified = poller.join().expect("poller");
        stop_watch.store(true, Ordering::Relaxed);
        if let Some(w) = watcher {
            w.join().expect("watcher");
        }
        (acted.map(|r| (r, finished)), verified)
    });
    let (runs, finished) = acted?;
    let (Some(at), _) = verified else {
        return Err(format!(
            "the end state was not reached within {OP_TIMEOUT:?}: {}",
            verified.1
        ));
    };
    tl.add(at, "verified end state");
    tl.add(finished, "actor finished");
    Ok(Sample {
        verified: secs(at - t0),
        finished: secs(finished - t0),
        timeline: tl.sorted(t0),
        runs,
    })
}

/// pve-gitops trial: build the "before" cluster with pve-gitops itself (untimed), write the new
/// manifest, then time the converge. Returns the sample and the texts it wrote.
fn gitops_trial(op: Op, prefix: &str, bin: &Path) -> R<(Sample, Texts)> {
    let (n, links) = op.shape();
    let mut h = new_harness(prefix, n, links)?;
    let c = Ctl::new(&h, bin)?;
    let before_ids: Vec<usize> = (1..=n).collect();
    // Create (and, for the removal, join all four): link 0 only.
    c.manifest(
        &before_ids
            .iter()
            .map(|&i| (i, addrs(&h, i, 1), false))
            .collect::<Vec<_>>(),
    )?;
    c.converge(&h, &before_ids)?;
    wait_members(&h, &before_ids, &before_ids)?;
    let conv: Vec<usize> = match op {
        Op::Join => {
            let i = h.add_node().map_err(err)?;
            write_scripts(&h, i)?;
            c.manifest(
                &(1..=4)
                    .map(|i| (i, addrs(&h, i, 1), false))
                    .collect::<Vec<_>>(),
            )?;
            // The new host's daemon has been running (registered) before the manifest change.
            c.reconcile(&h, 4, &["--dry-run"])?;
            vec![1, 2, 3, 4]
        }
        Op::Remove => {
            // Power off pve4 (its controller with it), then mark it absent.
            stop_node(&h, 4)?;
            wait_members(&h, &[1, 2, 3], &[1, 2, 3])?;
            c.manifest(
                &(1..=4)
                    .map(|i| (i, addrs(&h, i, 1), i == 4))
                    .collect::<Vec<_>>(),
            )?;
            vec![1, 2, 3]
        }
        Op::Link => {
            c.manifest(
                &(1..=3)
                    .map(|i| (i, addrs(&h, i, 2), false))
                    .collect::<Vec<_>>(),
            )?;
            vec![1, 2, 3]
        }
    };
    let before = c.master();
    let from = version_of(&before).ok_or("no master config_version")?;
    let expect = Expect {
        members: op.members_after(),
        version: from + 1,
        link1: op == Op::Link,
    };
    let sample = timed(&h, &expect, Some(&c.shared), |tl| {
        let runs = c.converge(&h, &conv)?;
        let mut per = BTreeMap::new();
        let mut quiet_seen = std::collections::BTreeSet::new();
        for r in &runs {
            *per.entry(r.node).or_insert(0) += 1;
            // Runs that did something, and each node's first quiet run.
            let interesting = !r.applied().is_empty()
                || r.code != Some(1) && quiet_seen.insert(r.node)
                || r.lines.iter().any(|(_, l)| is_step_line(l));
            if interesting {
                tl.add(r.started, format!("pve{} run start", r.node));
                tl.add(
                    r.ended,
                    format!(
                        "pve{} run end, exit {:?}{}",
                        r.node,
                        r.code,
                        if r.changed() { "" } else { " (quiet)" }
                    ),
                );
            }
            for (at, l) in &r.lines {
                let t = l.trim();
                let replan = l.starts_with("    ") && !t.starts_with("done:") && !t.is_empty();
                if is_step_line(l) || t.starts_with("done:") || t.starts_with("Failed") || replan {
                    tl.add(*at, format!("pve{}: {}", r.node, shorten(t)));
                }
            }
        }
        Ok(per)
    })?;
    slow_join_log(&h, op, "pve-gitops", &sample);
    let after = c.master();
    if version_of(&after) != Some(from + 1) {
        return Err(format!(
            "pve-gitops wrote config_version {:?}, expected {}",
            version_of(&after),
            from + 1
        ));
    }
    h.teardown().map_err(err)?;
    Ok((
        sample,
        Texts {
            before,
            after,
            block: block(&h),
        },
    ))
}

/// A plan/progress line naming a step: `<marker> <kind> <node> ...`.
fn is_step_line(l: &str) -> bool {
    let mut w = l.split_whitespace();
    let (Some(m), Some(kind)) = (w.next(), w.next()) else {
        return false;
    };
    m.chars().count() == 1
        && !l.starts_with(' ')
        && [
            "create_cluster",
            "join_node",
            "remove_node",
            "update_corosync",
            "set_expected_votes",
            "set_datacenter",
            "migrate_guest",
        ]
        .contains(&kind)
}

fn shorten(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 110 {
        format!("{}…", s.chars().take(110).collect::<String>())
    } else {
        s
    }
}

/// Raw trial: start the "before" cluster from the same corosync.conf text (untimed), then
/// script the change with the harness and corosync's tools.
fn raw_trial(op: Op, prefix: &str, texts: &Texts) -> R<Sample> {
    let (n, links) = op.shape();
    let total = if op == Op::Join { 4 } else { n };
    let mut h = new_harness(prefix, total, links)?;
    let (before, after) = texts.for_harness(&h);
    let ids: Vec<usize> = (1..=n).collect();
    for &i in &ids {
        h.write_conf(i, &before).map_err(err)?;
        start_node(&h, i)?;
    }
    wait_members(&h, &ids, &ids)?;
    if op == Op::Remove {
        stop_node(&h, 4)?;
        wait_members(&h, &[1, 2, 3], &[1, 2, 3])?;
    }
    let from = version_of(&before).ok_or("no config_version")?;
    let expect = Expect {
        members: op.members_after(),
        version: from + 1,
        link1: op == Op::Link,
    };
    let write_to = op.members_after();
    let sample = timed(&h, &expect, None, |tl| {
        for &i in &write_to {
            h.write_conf(i, &after).map_err(err)?;
        }
        tl.add(
            Instant::now(),
            format!("corosync.conf written on {write_to:?}"),
        );
        let out = h.reload(1).map_err(err)?;
        tl.add(
            Instant::now(),
            format!("corosync-cfgtool -R on pve1 returned {:?}", out.code()),
        );
        if op == Op::Join {
            start_node(&h, 4)?;
            tl.add(Instant::now(), "start.sh on pve4 returned");
        }
        Ok(BTreeMap::new())
    })?;
    slow_join_log(&h, op, "raw", &sample);
    h.teardown().map_err(err)?;
    Ok(sample)
}

/// A join slower than [`SLOW_JOIN`]: the new node's corosync log to stderr, to see why.
fn slow_join_log(h: &Harness, op: Op, mode: &str, sample: &Sample) {
    if op == Op::Join && sample.verified > SLOW_JOIN {
        eprintln!(
            "SLOW JOIN ({mode}, {:.2} s): the new node's log\n{}",
            sample.verified,
            h.log_tail(4, 60)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and report

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile.
fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

fn fmt_list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn log(s: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

fn print_timeline(op: Op, mode: &str, rep: usize, s: &Sample) {
    log(&format!(
        "TIMING {} {mode} #{rep}: verified {:.2} s, finished {:.2} s{}",
        op.name(),
        s.verified,
        s.finished,
        if s.runs.is_empty() {
            String::new()
        } else {
            format!(", runs per node {:?}", s.runs)
        }
    ));
    for (t, e) in &s.timeline {
        log(&format!("  {t:7.3}  {e}"));
    }
}

struct OpResult {
    op: Op,
    gitops: Vec<Sample>,
    raw: Vec<Sample>,
    failures: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .or_else(|| std::env::var("BENCH_N").ok()?.parse().ok())
        .unwrap_or(5);
    let ops: Vec<Op> = args
        .get(1)
        .map(|s| {
            s.split(',')
                .filter_map(|o| match o {
                    "join" => Some(Op::Join),
                    "remove" => Some(Op::Remove),
                    "link" => Some(Op::Link),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_else(|| vec![Op::Join, Op::Remove, Op::Link]);
    if !preflight("bench_ops") {
        return;
    }
    if args.get(1).map(String::as_str) == Some("tools") {
        if let Err(e) = tool_costs(n) {
            log(&format!("tools: {e}"));
            std::process::exit(1);
        }
        return;
    }
    let Some(bin) = pve_gitops_bin() else {
        eprintln!("the pve-gitops binary was not found: cargo build --release -p pve-gitops (or set PVE_GITOPS_BIN)");
        std::process::exit(2);
    };
    log(&format!(
        "bench_ops: N={n}, ops {:?}, binary {}",
        ops.iter().map(|o| o.name()).collect::<Vec<_>>(),
        bin.display()
    ));
    let started = SystemTime::now();
    let wall = Instant::now();
    let mut results = Vec::new();
    for &op in &ops {
        let mut r = OpResult {
            op,
            gitops: Vec::new(),
            raw: Vec::new(),
            failures: Vec::new(),
        };
        let pg = format!("bo{}g", &op.name()[..1]);
        let pr = format!("bo{}r", &op.name()[..1]);
        // Warm-up (not counted): produces the corosync.conf texts the raw trials use.
        let texts = match gitops_trial(op, &pg, &bin) {
            Ok((s, t)) => {
                print_timeline(op, "pve-gitops warm-up", 0, &s);
                t
            }
            Err(e) => {
                log(&format!("{} warm-up failed: {e}", op.name()));
                r.failures.push(format!("warm-up: {e}"));
                results.push(r);
                continue;
            }
        };
        for rep in 1..=n {
            // Alternate the order so neither mode always runs first.
            let order: [bool; 2] = if rep % 2 == 1 {
                [true, false]
            } else {
                [false, true]
            };
            for gitops in order {
                if gitops {
                    match gitops_trial(op, &pg, &bin) {
                        Ok((s, _)) => {
                            print_timeline(op, "pve-gitops", rep, &s);
                            r.gitops.push(s);
                        }
                        Err(e) => {
                            log(&format!("{} pve-gitops #{rep} failed: {e}", op.name()));
                            r.failures.push(format!("pve-gitops #{rep}: {e}"));
                        }
                    }
                } else {
                    match raw_trial(op, &pr, &texts) {
                        Ok(s) => {
                            print_timeline(op, "raw", rep, &s);
                            r.raw.push(s);
                        }
                        Err(e) => {
                            log(&format!("{} raw #{rep} failed: {e}", op.name()));
                            r.failures.push(format!("raw #{rep}: {e}"));
                        }
                    }
                }
            }
        }
        results.push(r);
    }
    report(&results, n, started, wall.elapsed());
}

/// The corosync tool calls timed by `bench_ops N tools` (argv after `nsenter`).
const TOOL_CALLS: &[&str] = &[
    "true",
    "corosync-quorumtool -s -p",
    "corosync-quorumtool -s",
    "corosync-quorumtool -l -i",
    "corosync-cmapctl totem.config_version runtime.members",
    "corosync-cmapctl -g totem.config_version",
    "corosync-cfgtool -n",
];

/// Time `n` calls of each of [`TOOL_CALLS`] on node 1 of an idle 3-node cluster.
fn tool_costs(n: usize) -> R<()> {
    let mut h = Harness::new("botools", 3, 1).map_err(err)?;
    h.write_conf_all(&h.render_conf(&[1, 2, 3], 1, 1))
        .map_err(err)?;
    for i in 1..=3 {
        h.start(i).map_err(err)?;
    }
    h.wait_quorate(1, &[1, 2, 3], pve_gitops_e2e::QUORUM_TIMEOUT)
        .map_err(err)?;
    println!("bench_ops tools: N={n} calls each on node 1 of an idle, quorate 3-node cluster\n");
    println!("| call (inside the node's namespaces via nsenter) | median | min | max |");
    println!("|---|---|---|---|");
    for call in TOOL_CALLS {
        let mut ms = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let mut c = h.nsenter(1).map_err(err)?;
            c.args(call.split(' '));
            let t = Instant::now();
            let out = c.output().map_err(err)?;
            ms.push(secs(t.elapsed()) * 1000.0);
            if !out.status.success() {
                return Err(format!(
                    "`{call}` failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let max = ms.iter().copied().fold(0.0, f64::max);
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "| `{call}` | {:.1} ms | {min:.1} ms | {max:.1} ms |",
            median(&ms)
        );
    }
    Ok(())
}

fn report(results: &[OpResult], n: usize, started: SystemTime, wall: Duration) {
    let since = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!(
        "bench_ops: N={n} per mode, started at unix {since}, wall time {:.0} s\n",
        secs(wall)
    );
    println!("| operation | pve-gitops: reconcile → verified, median / p90 | raw tools → verified, median / p90 | ratio of medians | pve-gitops: until every controller is quiet, median |");
    println!("|---|---|---|---|---|");
    for r in results {
        let g: Vec<f64> = r.gitops.iter().map(|s| s.verified).collect();
        let w: Vec<f64> = r.raw.iter().map(|s| s.verified).collect();
        let q: Vec<f64> = r.gitops.iter().map(|s| s.finished).collect();
        println!(
            "| {} | {:.2} s / {:.2} s | {:.2} s / {:.2} s | **{:.2}×** | {:.2} s |",
            r.op.title(),
            median(&g),
            pct(&g, 90.0),
            median(&w),
            pct(&w, 90.0),
            median(&g) / median(&w),
            median(&q),
        );
    }
    println!();
    for r in results {
        let g: Vec<f64> = r.gitops.iter().map(|s| s.verified).collect();
        let w: Vec<f64> = r.raw.iter().map(|s| s.verified).collect();
        println!(
            "- {}: pve-gitops [{}] s; raw [{}] s{}",
            r.op.name(),
            fmt_list(&g),
            fmt_list(&w),
            if r.failures.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} failed trial(s): {}",
                    r.failures.len(),
                    r.failures.join(" | ").chars().take(400).collect::<String>()
                )
            }
        );
    }
}
