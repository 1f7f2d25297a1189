//! End-to-end scenarios: the real `pve-gitops` binary, run "on" each node of a real corosync 3
//! cluster (inside the node's namespaces) with `--target corosync`, changes the cluster; every
//! result is checked with corosync's own tools (`corosync-quorumtool`, `corosync-cmapctl`,
//! `corosync-cfgtool`) run on the nodes.
//!
//! One controller per node, as in production: [`Cluster::converge`] runs `reconcile` on every
//! given node at the same time and again (like the `watch` daemon's resync) until all of them
//! report a converged cluster. corosync on a node is started and stopped by the controller
//! through `--start-cmd`/`--stop-cmd`: two small scripts in the node's directory that run
//! `corosync -f` in the background with a pidfile in the node's private `/run`.
//!
//! Needs root, corosync and a built binary: `cargo build -p pve-gitops` first (or set
//! `PVE_GITOPS_BIN`).

use pve_gitops_e2e::service::{manifest_yaml, ManifestNode, Run};
use pve_gitops_e2e::{preflight, pve_gitops_bin, wait_until, Harness, QuorumStatus};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Time limit of one `reconcile` run.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Time limit of one [`Cluster::converge`].
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(240);

struct Cluster {
    h: Harness,
    bin: PathBuf,
    shared: PathBuf,
    manifest: PathBuf,
}

fn need_binary() -> PathBuf {
    pve_gitops_bin().unwrap_or_else(|| {
        panic!(
            "the pve-gitops binary was not found: run `cargo build -p pve-gitops` first (or set PVE_GITOPS_BIN)"
        )
    })
}

impl Cluster {
    /// `n` standalone hosts (no corosync running, no corosync.conf) with `links` bridges.
    fn new(prefix: &str, n: usize, links: usize) -> Option<Cluster> {
        if !preflight(prefix) {
            return None;
        }
        let bin = need_binary();
        let h = Harness::new(prefix, n, links).expect("harness");
        let shared = h.base_dir().join("shared");
        fs::create_dir_all(&shared).expect("shared dir");
        let manifest = h.base_dir().join("cluster.yaml");
        let c = Cluster {
            h,
            bin,
            shared,
            manifest,
        };
        for i in c.h.node_ids() {
            c.write_scripts(i);
        }
        Some(c)
    }

    fn write_scripts(&self, i: usize) {
        let root = self.h.node_root(i).expect("node");
        pve_gitops_e2e::service::write_service_scripts(root).expect("start.sh, stop.sh");
    }

    /// Add a standalone host.
    fn add_host(&mut self) -> usize {
        let i = self.h.add_node().expect("add node");
        self.write_scripts(i);
        i
    }

    fn addr(&self, i: usize, link: usize) -> String {
        self.h.node_addr(i, link).to_string()
    }

    /// Write the manifest: `nodes` are `(index, links, absent)`; `extra_totem` and
    /// `extra_spec` are YAML lines added under `spec.totem` and `spec`.
    fn manifest(&self, nodes: &[ManifestNode], extra_totem: &str, extra_spec: &str) {
        fs::write(
            &self.manifest,
            manifest_yaml(nodes, extra_totem, extra_spec),
        )
        .expect("manifest");
    }

    /// The manifest with every node in `ids` present on link 0 only.
    fn simple_manifest(&self, ids: &[usize]) {
        let nodes: Vec<_> = ids
            .iter()
            .map(|&i| (i, vec![self.addr(i, 0)], false))
            .collect();
        self.manifest(&nodes, "", "");
    }

    fn args(&self, i: usize, extra: &[&str]) -> Vec<String> {
        let root = self.h.node_root(i).expect("node");
        let mut a: Vec<String> = vec![
            "reconcile".into(),
            "-f".into(),
            self.manifest.display().to_string(),
            "--target".into(),
            "corosync".into(),
            "--node".into(),
            self.h.node_name(i),
            "--config-dir".into(),
            self.shared.display().to_string(),
            "--start-cmd".into(),
            format!(
                "sh {} {} {}",
                root.join("start.sh").display(),
                root.join("corosync.stderr.log").display(),
                self.h.base_dir().join("pids").display()
            ),
            "--stop-cmd".into(),
            format!("sh {}", root.join("stop.sh").display()),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Start `pve-gitops watch` on node `i`: the manifest file as the source, the same target
    /// options as [`Cluster::args`], its own state directory; output to `watch.log` there.
    fn spawn_watch(&self, i: usize) -> std::process::Child {
        let root = self.h.node_root(i).expect("node");
        let mut a = self.args(i, &[]);
        a.splice(
            0..3,
            [
                "watch".to_string(),
                "--source".into(),
                self.manifest.display().to_string(),
            ],
        );
        a.extend([
            "--state-dir".to_string(),
            root.join("watch-state").display().to_string(),
            "--gate-interval".into(),
            "2s".into(),
        ]);
        self.h
            .spawn_on_node(i, &self.bin, a, &[], &root.join("watch.log"))
            .expect("spawn watch")
    }

    /// SIGTERM a daemon and wait for its graceful exit (SIGKILL after 30 s); its log tail.
    fn stop_watch(&self, i: usize, mut d: std::process::Child) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &d.id().to_string()])
            .status();
        let ok = wait_until(Duration::from_secs(30), || {
            d.try_wait().ok().flatten().is_some()
        });
        if ok.is_err() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let log = fs::read_to_string(self.h.node_root(i).expect("node").join("watch.log"))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// One `reconcile` (or with `extra` args, e.g. `--dry-run`) on node `i`.
    fn reconcile(&self, i: usize, extra: &[&str]) -> Run {
        self.reconcile_env(i, extra, &[])
    }

    /// [`Cluster::reconcile`] with extra environment variables.
    fn reconcile_env(&self, i: usize, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let started = Instant::now();
        let out = self
            .h
            .run_on_node_timeout(i, &self.bin, self.args(i, extra), env, RUN_TIMEOUT)
            .expect("run pve-gitops");
        let ended = Instant::now();
        Run {
            node: i,
            code: out.code(),
            lines: out.stdout.lines().map(|l| (ended, l.to_string())).collect(),
            stderr: out.stderr.clone(),
            started,
            ended,
        }
    }

    /// Run `reconcile` on every node of `nodes` at once, and again on a node whenever it is due
    /// (`service::due`: something changed since its last quiet run, or that run is 500 ms
    /// old), until all of them exit 0 without applying anything in runs started after the last
    /// change anywhere (the per-node daemons' steady state). Panics on exit 2 or time-out,
    /// printing every run.
    fn converge(&self, nodes: &[usize]) -> Vec<Run> {
        let all = pve_gitops_e2e::service::converge(nodes, CONVERGE_TIMEOUT, |n| {
            Ok(self.reconcile(n, &[]))
        });
        all.unwrap_or_else(|e| {
            let runs: Vec<String> = e.runs.iter().map(|r| r.to_string()).collect();
            panic!(
                "controllers on {nodes:?} did not converge ({}):\n{}",
                e.why,
                runs.join("\n")
            )
        })
    }

    /// `reconcile --dry-run` on node `i` must show an empty plan (exit 0).
    fn assert_in_sync(&self, i: usize) {
        let r = self.reconcile(i, &["--dry-run"]);
        assert_eq!(r.code, Some(0), "plan on pve{i} is not empty:\n{r}");
    }

    fn status(&self, i: usize) -> QuorumStatus {
        self.h.quorum_status(i).expect("corosync-quorumtool")
    }

    /// Wait until node `i` reports a quorate membership of exactly `members`.
    fn wait_members(&self, i: usize, members: &[u32]) -> QuorumStatus {
        let mut last = None;
        let ok = wait_until(Duration::from_secs(60), || {
            last = self.h.quorum_status(i).ok();
            last.as_ref()
                .is_some_and(|s| s.quorate && s.member_ids() == members)
        });
        assert!(
            ok.is_ok(),
            "pve{i} never had quorate members {members:?}; last {last:?}\n{}",
            self.h.log_tail(i, 30)
        );
        last.expect("status")
    }

    /// The PID its start script recorded for node `i`'s corosync (changes on every start).
    fn started_pid(&self, i: usize) -> String {
        fs::read_to_string(
            self.h
                .node_root(i)
                .expect("root")
                .join("run/e2e-corosync.pid"),
        )
        .unwrap_or_default()
    }

    fn running_version(&self, i: usize) -> u64 {
        self.h.config_version(i).expect("cmap totem.config_version")
    }

    fn local_conf(&self, i: usize) -> String {
        self.h.read_conf(i).unwrap_or_default()
    }

    fn master(&self) -> String {
        fs::read_to_string(self.shared.join("corosync.conf")).unwrap_or_default()
    }

    /// Stop corosync on node `i` the way an operator would (its stop script).
    fn stop_node(&self, i: usize) {
        let root = self.h.node_root(i).expect("node");
        let out = self
            .h
            .run_on_node(i, "sh", [root.join("stop.sh")], &[])
            .expect("stop");
        assert!(out.success(), "stop.sh on pve{i}: {out:?}");
    }

    /// Every cluster-wide step applied exactly once across all controllers' runs.
    fn applied(runs: &[Run]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in runs {
            for (kind, node) in r.applied() {
                *m.entry(format!("{kind} {node}")).or_insert(0) += 1;
            }
        }
        m
    }
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn note(test: &str, what: &str, t: Instant) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "TIMING {test}: {what}: {:.1} s",
        secs(t)
    );
}

fn all_same(c: &Cluster, ids: &[usize]) -> String {
    let master = c.master();
    for &i in ids {
        assert_eq!(
            c.local_conf(i),
            master,
            "pve{i}'s corosync.conf differs from the master"
        );
    }
    master
}

/// Create a 3-node cluster from three standalone hosts with one manifest (three controllers at
/// once: each cluster-wide step exactly once), join a 4th by adding it to the manifest, then
/// remove it (`state: absent`): the run stops at the power-off gate, the operator stops its
/// corosync, the next run removes it and expected votes drop.
#[test]
fn a_create_join_remove() {
    let Some(mut c) = Cluster::new("sca", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    c.simple_manifest(&[1, 2, 3]);
    let runs = c.converge(&[1, 2, 3]);
    note("a", "create 3 nodes", t0);
    for i in 1..=3 {
        let st = c.wait_members(i, &[1, 2, 3]);
        assert_eq!((st.expected_votes, st.total_votes, st.quorum), (3, 3, 2));
    }
    // create (v1) + two joins (v2, v3), each once; two node-local starts.
    assert_eq!(c.running_version(1), 3);
    let applied = Cluster::applied(&runs);
    assert_eq!(applied.get("create_cluster pve1"), Some(&1), "{applied:?}");
    assert_eq!(
        applied.get("join_node pve2"),
        Some(&2),
        "edit + start: {applied:?}"
    );
    assert_eq!(
        applied.get("join_node pve3"),
        Some(&2),
        "edit + start: {applied:?}"
    );
    assert_eq!(applied.values().sum::<usize>(), 5, "{applied:?}");
    // corosync's own record: pve1 saw exactly two reloads (the two nodelist edits).
    let log = fs::read_to_string(c.h.node_root(1).expect("root").join("corosync.stderr.log"))
        .unwrap_or_default();
    assert_eq!(log.matches("Config reload requested").count(), 2, "{log}");
    all_same(&c, &[1, 2, 3]);
    c.assert_in_sync(2);

    // Join a 4th.
    let t1 = Instant::now();
    let n4 = c.add_host();
    c.simple_manifest(&[1, 2, 3, n4]);
    c.converge(&[1, 2, 3, n4]);
    note("a", "join 4th", t1);
    let st = c.wait_members(1, &[1, 2, 3, 4]);
    assert_eq!((st.expected_votes, st.quorum), (4, 3));
    assert_eq!(c.running_version(4), 4);
    all_same(&c, &[1, 2, 3, 4]);

    // Remove it: gate first.
    let t2 = Instant::now();
    let mut nodes: Vec<_> = (1..=4).map(|i| (i, vec![c.addr(i, 0)], false)).collect();
    nodes[3].2 = true;
    c.manifest(&nodes, "", "");
    let r = c.reconcile(1, &[]);
    assert_eq!(r.code, Some(1), "expected the power-off gate:\n{r}");
    assert!(r.stdout().contains("power off pve4"), "{r}");
    assert_eq!(c.status(1).member_ids(), vec![1, 2, 3, 4]);
    c.stop_node(4);
    c.wait_members(1, &[1, 2, 3]);
    c.converge(&[1, 2, 3]);
    note("a", "remove 4th (after its corosync stopped)", t2);
    let st = c.wait_members(1, &[1, 2, 3]);
    assert_eq!((st.expected_votes, st.total_votes, st.quorum), (3, 3, 2));
    assert_eq!(c.running_version(2), 5);
    assert!(!c.master().contains("pve4"));
    all_same(&c, &[1, 2, 3]);
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    note("a", "total", t0);
}

/// Poll `corosync-quorumtool` on `nodes` until `stop` is set; returns (polls, violations): a
/// node that sees at least two members but is not quorate, or a poll where no node is quorate.
fn poll_quorum(c: &Cluster, nodes: &[usize], stop: &AtomicBool) -> (usize, Vec<String>) {
    let mut bad = Vec::new();
    let mut polls = 0;
    while !stop.load(Ordering::Relaxed) {
        polls += 1;
        let sts: Vec<(usize, QuorumStatus)> = nodes
            .iter()
            .filter_map(|&i| c.h.quorum_status(i).ok().map(|s| (i, s)))
            .collect();
        for (i, s) in &sts {
            if s.members.len() >= 2 && !s.quorate {
                bad.push(format!(
                    "pve{i} not quorate with members {:?}",
                    s.member_ids()
                ));
            }
        }
        if !sts.iter().any(|(_, s)| s.quorate) {
            bad.push(format!(
                "no node quorate (answers from {:?})",
                sts.iter().map(|s| s.0).collect::<Vec<_>>()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    (polls, bad)
}

/// Converge while polling quorum on `nodes`; panics if quorum was lost at any poll.
fn converge_keeping_quorum(c: &Cluster, nodes: &[usize]) -> Vec<Run> {
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = AtomicBool::new(false);
    let (runs, (polls, bad)) = thread::scope(|s| {
        let poller = s.spawn(|| poll_quorum(c, nodes, &stop));
        // Stops the poller also when converge panics (else the scope would wait forever).
        let guard = StopOnDrop(&stop);
        let runs = c.converge(nodes);
        drop(guard);
        (runs, poller.join().expect("poller"))
    });
    assert!(polls > 0);
    assert!(
        bad.is_empty(),
        "quorum lost during the change ({polls} polls): {bad:?}"
    );
    runs
}

fn create(c: &Cluster, ids: &[usize], addrs: impl Fn(usize) -> Vec<String>) {
    let nodes: Vec<_> = ids.iter().map(|&i| (i, addrs(i), false)).collect();
    c.manifest(&nodes, "", "");
    c.converge(ids);
    c.wait_members(ids[0], &ids.iter().map(|&i| i as u32).collect::<Vec<_>>());
}

/// Add a second knet link (ring1_addr on a second bridge) to the running cluster, cut link 0 on
/// one node (still quorate, same members), then change one node's ring0 address without losing
/// quorum (link 0 removed and re-created while link 1 carries the traffic).
#[test]
fn b_second_link_failover_readdress() {
    let Some(c) = Cluster::new("scb", 3, 2) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("b", "create 3 nodes", t0);
    let v0 = c.running_version(1);

    let t1 = Instant::now();
    let two = |i: usize| vec![c.addr(i, 0), c.addr(i, 1)];
    c.manifest(
        &[(1, two(1), false), (2, two(2), false), (3, two(3), false)],
        "",
        "",
    );
    let runs = converge_keeping_quorum(&c, &[1, 2, 3]);
    note("b", "add link 1", t1);
    assert_eq!(
        c.running_version(1),
        v0 + 1,
        "{:?}",
        Cluster::applied(&runs)
    );
    all_same(&c, &[1, 2, 3]);
    let ok = wait_until(Duration::from_secs(30), || {
        c.h.node_status(1).is_ok_and(|ns| {
            [2u32, 3].iter().all(|n| {
                ns.iter()
                    .find(|r| r.nodeid == *n)
                    .and_then(|r| r.link(1))
                    .is_some_and(|l| l.connected)
            })
        })
    });
    assert!(
        ok.is_ok(),
        "link 1 never connected: {:?}",
        c.h.node_status(1)
    );
    assert_eq!(
        c.h.cmap_get(1, "nodelist.node.2.ring1_addr")
            .ok()
            .flatten()
            .map(|e| e.value),
        Some(c.addr(3, 1)),
        "nodelist is sorted by name: node.2 is pve3"
    );

    // Cable pull on link 0 of pve3 (after knet's young-link back-off has decayed).
    thread::sleep(Duration::from_secs(
        10u64.saturating_sub(t0.elapsed().as_secs()),
    ));
    let t2 = Instant::now();
    let before = c.status(1);
    c.h.link_down(3, 0).expect("link down");
    let mut checks = 0;
    while t2.elapsed() < Duration::from_secs(8) {
        let st = c.status(1);
        assert!(
            st.quorate && st.member_ids() == vec![1, 2, 3],
            "after cutting link 0 of pve3: {st:?}"
        );
        checks += 1;
        thread::sleep(Duration::from_millis(200));
    }
    let after = c.status(1);
    note("b", "link 0 of pve3 down: still quorate with 3 members", t2);
    eprintln!(
        "ring id before {} after {} ({checks} checks)",
        before.ring_id, after.ring_id
    );
    c.h.link_up(3, 0).expect("link up");

    // Re-address pve3 on link 0.
    let t3 = Instant::now();
    let new_addr = c.h.node_addr(13, 0).to_string();
    let ns = c.h.node_ns(3).expect("ns").to_string();
    let out = std::process::Command::new("ip")
        .args([
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{new_addr}/24"),
            "dev",
            "eth0",
        ])
        .output()
        .expect("ip addr add");
    assert!(out.status.success(), "{out:?}");
    let mut nodes = vec![(1, two(1), false), (2, two(2), false), (3, two(3), false)];
    nodes[2].1[0] = new_addr.clone();
    c.manifest(&nodes, "", "");
    let runs = converge_keeping_quorum(&c, &[1, 2, 3]);
    note("b", "re-address pve3 ring0 (remove + re-add link 0)", t3);
    assert_eq!(
        c.running_version(2),
        v0 + 3,
        "{:?}",
        Cluster::applied(&runs)
    );
    assert_eq!(
        c.h.cmap_get(1, "nodelist.node.2.ring0_addr")
            .ok()
            .flatten()
            .map(|e| e.value),
        Some(new_addr.clone())
    );
    let ok = wait_until(Duration::from_secs(30), || {
        c.h.node_status(1).is_ok_and(|ns| {
            ns.iter()
                .find(|r| r.nodeid == 3)
                .and_then(|r| r.link(0))
                .is_some_and(|l| l.connected && l.addrs.ends_with(&new_addr))
        })
    });
    assert!(
        ok.is_ok(),
        "link 0 to pve3's new address never connected: {:?}",
        c.h.node_status(1)
    );
    c.wait_members(3, &[1, 2, 3]);
    all_same(&c, &[1, 2, 3]);
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    note("b", "total", t0);
}

/// Lose two of four nodes (quorum lost), set `quorum.expected_votes` to regain quorum, then
/// remove them.
#[test]
fn c_expected_votes_then_remove() {
    let Some(c) = Cluster::new("scc", 4, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3, 4], |i| vec![c.addr(i, 0)]);
    note("c", "create 4 nodes", t0);
    let v0 = c.running_version(1);
    let t1 = Instant::now();
    c.stop_node(3);
    c.stop_node(4);
    let ok = wait_until(Duration::from_secs(30), || {
        c.h.quorum_status(1)
            .is_ok_and(|s| s.member_ids() == vec![1, 2] && !s.quorate)
    });
    assert!(
        ok.is_ok(),
        "expected an inquorate [1, 2]: {:?}",
        c.h.quorum_status(1)
    );
    let nodes: Vec<_> = (1..=4).map(|i| (i, vec![c.addr(i, 0)], i >= 3)).collect();
    c.manifest(&nodes, "", "  quorum:\n    expected_votes: 2\n");
    let runs = c.converge(&[1, 2]);
    note("c", "expected votes 2, remove pve3 and pve4", t1);
    let applied = Cluster::applied(&runs);
    assert_eq!(
        applied
            .get("set_expected_votes pve1")
            .or(applied.get("set_expected_votes pve2")),
        Some(&1),
        "{applied:?}"
    );
    assert_eq!(applied.get("remove_node pve3"), Some(&1), "{applied:?}");
    assert_eq!(applied.get("remove_node pve4"), Some(&1), "{applied:?}");
    let st = c.wait_members(2, &[1, 2]);
    assert_eq!((st.expected_votes, st.total_votes, st.quorum), (2, 2, 2));
    assert_eq!(c.running_version(1), v0 + 2);
    let master = all_same(&c, &[1, 2]);
    assert!(!master.contains("pve3") && !master.contains("pve4"));
    for i in 1..=2 {
        c.assert_in_sync(i);
    }
    note("c", "total", t0);
}

/// Change link_mode passive -> active: a rolling restart (one node at a time, quorum checked
/// before each) during which a poller never sees quorum lost.
#[test]
fn d_link_mode_rolling_restart() {
    let Some(c) = Cluster::new("scd", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("d", "create 3 nodes", t0);
    let v0 = c.running_version(1);
    let pids: Vec<String> = (1..=3).map(|i| c.started_pid(i)).collect();
    let t1 = Instant::now();
    let nodes: Vec<_> = (1..=3).map(|i| (i, vec![c.addr(i, 0)], false)).collect();
    c.manifest(&nodes, "    rrp_mode: active\n", "");
    let runs = converge_keeping_quorum(&c, &[1, 2, 3]);
    note("d", "link_mode active by rolling restart", t1);
    let applied = Cluster::applied(&runs);
    assert_eq!(applied.get("update_corosync pve1"), Some(&1), "{applied:?}");
    assert_eq!(c.running_version(1), v0 + 1);
    for i in 1..=3 {
        c.wait_members(i, &[1, 2, 3]);
        assert_ne!(
            c.started_pid(i),
            pids[i - 1],
            "corosync on pve{i} was not restarted"
        );
        assert_eq!(
            c.h.cmap_get(i, "totem.link_mode")
                .ok()
                .flatten()
                .map(|e| e.value),
            Some("active".to_string())
        );
    }
    all_same(&c, &[1, 2, 3]);
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    note("d", "total", t0);
}

/// Manifests the planner must refuse leave every corosync.conf byte-identical: removing a node
/// that still runs stops at the power-off gate (exit 1); renaming a joined node is refused
/// (exit 2); a duplicate ring address is an invalid manifest (exit 2).
#[test]
fn e_refusals_change_nothing() {
    let Some(mut c) = Cluster::new("sce", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    let confs = |c: &Cluster| -> Vec<String> {
        let mut v = vec![c.master()];
        v.extend((1..=3).map(|i| c.local_conf(i)));
        v
    };
    let before = confs(&c);
    let v0 = c.running_version(1);

    let nodes: Vec<_> = (1..=3).map(|i| (i, vec![c.addr(i, 0)], i == 3)).collect();
    c.manifest(&nodes, "", "");
    for i in 1..=3 {
        let r = c.reconcile(i, &[]);
        assert_eq!(
            r.code,
            Some(1),
            "removing a running node must stop at the gate:\n{r}"
        );
    }
    let r = c.reconcile(1, &[]);
    assert!(r.stdout().contains("power off pve3"), "{r}");
    assert_eq!(confs(&c), before);

    let mut y = fs::read_to_string(&c.manifest).expect("manifest");
    y = y
        .replace("      state: absent\n", "")
        .replace("name: pve3", "name: pve9");
    fs::write(&c.manifest, &y).expect("manifest");
    for i in 1..=3 {
        let r = c.reconcile(i, &[]);
        assert_eq!(
            r.code,
            Some(2),
            "renaming a joined node must be refused:\n{r}"
        );
        assert!(format!("{r}").contains("renamed"), "{r}");
    }
    assert_eq!(confs(&c), before);

    let dup = y
        .replace("name: pve9", "name: pve3")
        .replace(&c.addr(3, 0), &c.addr(2, 0));
    fs::write(&c.manifest, dup).expect("manifest");
    let r = c.reconcile(1, &[]);
    assert_eq!(
        r.code,
        Some(2),
        "duplicate ring address must be refused:\n{r}"
    );
    assert_eq!(confs(&c), before);
    assert_eq!(c.running_version(1), v0);

    // A joining host whose ring0_addr is not one of its addresses (a typo): refused before
    // any member edits the nodelist — corosync there could not start, and the members would
    // count a vote that never comes.
    let n4 = c.add_host();
    let good = c.addr(n4, 0);
    let bad = match good.rsplit_once('.') {
        Some((net, _)) => format!("{net}.99"),
        None => panic!("not IPv4: {good}"),
    };
    let mut nodes: Vec<_> = (1..=3).map(|i| (i, vec![c.addr(i, 0)], false)).collect();
    nodes.push((n4, vec![bad.clone()], false));
    c.manifest(&nodes, "", "");
    let r = c.reconcile(n4, &["--peer-wait", "0s"]);
    assert_eq!(r.code, Some(1), "{r}");
    let refusal = format!(
        "spec.nodes[3].ring0_addr {bad} is not an address of pve{n4} (its addresses: {good})"
    );
    for i in 1..=3 {
        let r = c.reconcile(i, &["--peer-wait", "0s"]);
        assert_eq!(r.code, Some(1), "the join must be refused:\n{r}");
        assert!(r.stdout().contains(&refusal), "{refusal}\n{r}");
    }
    assert_eq!(confs(&c), before);
    assert_eq!(c.status(1).expected_votes, 3);

    c.simple_manifest(&[1, 2, 3]);
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    note("e", "total", t0);
}

/// The `watch` daemons as the per-node controllers: one on every node, the manifest file as
/// their source. A manifest change that needs a rolling restart (link_mode) is carried out by
/// the daemons alone — the one holding the corosync.conf lock reloads and restarts the others
/// one at a time, each node's own daemon starts its corosync again — without losing quorum.
#[test]
fn f_watch_daemons_rolling_restart() {
    let Some(c) = Cluster::new("scf", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("f", "create 3 nodes", t0);
    let v0 = c.running_version(1);
    let pid = |i: usize| c.started_pid(i);
    let pids: Vec<String> = (1..=3).map(pid).collect();
    let daemons: Vec<_> = (1..=3).map(|i| c.spawn_watch(i)).collect();
    // Let them start (and find the cluster in sync) before the change.
    thread::sleep(Duration::from_secs(2));
    let t1 = Instant::now();
    let nodes: Vec<_> = (1..=3).map(|i| (i, vec![c.addr(i, 0)], false)).collect();
    c.manifest(&nodes, "    rrp_mode: active\n", "");
    let done = |i: usize| {
        pid(i) != pids[i - 1]
            && c.h
                .cmap_get(i, "totem.link_mode")
                .ok()
                .flatten()
                .is_some_and(|e| e.value == "active")
            && c.h
                .quorum_status(i)
                .is_ok_and(|s| s.quorate && s.member_ids() == [1, 2, 3])
    };
    let stop = AtomicBool::new(false);
    let (reached, (polls, bad)) = thread::scope(|s| {
        let poller = s.spawn(|| poll_quorum(&c, &[1, 2, 3], &stop));
        let reached = wait_until(Duration::from_secs(180), || (1..=3).all(done));
        stop.store(true, Ordering::Relaxed);
        (reached, poller.join().expect("poller"))
    });
    let logs: Vec<String> = daemons
        .into_iter()
        .enumerate()
        .map(|(k, d)| format!("--- watch on pve{} ---\n{}", k + 1, c.stop_watch(k + 1, d)))
        .collect();
    assert!(
        reached.is_ok(),
        "the daemons did not restart every node with link_mode active: {:?}\n{}",
        (1..=3)
            .map(|i| (pid(i) != pids[i - 1], done(i)))
            .collect::<Vec<_>>(),
        logs.join("\n")
    );
    note("f", "link_mode active by the daemons' rolling restart", t1);
    assert!(polls > 0);
    assert!(bad.is_empty(), "quorum lost during the change: {bad:?}");
    assert_eq!(c.running_version(1), v0 + 1);
    all_same(&c, &[1, 2, 3]);
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    note("f", "total", t0);
}

/// A controller died holding the corosync.conf lock after writing a new master and before the
/// reload (steps 3-5 of the edit protocol; docs/corosync-target.md, Recovery). While its lock
/// is fresh the others wait for it (`--peer-wait`) and then give up naming it; once the lock is
/// stale they install the master but show the config-version gate: no controller reloads a
/// change it did not write. The operator's recovery (`corosync-cfgtool -R` on one member) makes
/// every node run the new version, and the plans are empty again.
#[test]
fn g_dead_holder_change_is_never_reloaded() {
    let Some(c) = Cluster::new("scg", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("g", "create 3 nodes", t0);
    let v0 = c.running_version(1);

    // What the dead holder left: its lock (pve2, a PID that does not exist) and the master
    // at v0 + 1, written .new + rename.
    let lock = c.shared.join("priv/lock/file-corosync_conf");
    fs::create_dir_all(&lock).expect("lock dir");
    fs::write(lock.join("owner"), "pve2 pid 999999999 token dead\n").expect("owner");
    let old = c.master();
    let from = format!("config_version: {v0}\n");
    assert_eq!(old.matches(&from).count(), 1, "master:\n{old}");
    let new = old.replace(&from, &format!("config_version: {}\n", v0 + 1));
    fs::write(c.shared.join("corosync.conf.new"), &new).expect("master .new");
    fs::rename(
        c.shared.join("corosync.conf.new"),
        c.shared.join("corosync.conf"),
    )
    .expect("master rename");

    let gate = format!("report config_version {}", v0 + 1);
    for i in 1..=3 {
        let r = c.reconcile(i, &["--peer-wait", "1s"]);
        assert_eq!(r.code, Some(1), "a fresh lock must stop the run:\n{r}");
        if i == 2 {
            // pve2's own lock: its next controller does not wait for itself.
            assert!(r.stdout().contains(&gate), "{r}");
        } else {
            assert!(
                format!("{r}").contains("pve2's controller holds the corosync.conf lock"),
                "the holder must be named:\n{r}"
            );
        }
    }
    for i in 1..=3 {
        assert_eq!(c.running_version(i), v0, "pve{i} was reloaded");
    }

    // 130 s without a refresh: the lock is stale (taken over by the next step that needs it).
    let aged = std::process::Command::new("touch")
        .args(["-m", "-d", "130 seconds ago"])
        .arg(lock.join("owner"))
        .status()
        .expect("touch");
    assert!(aged.success());
    for i in 1..=3 {
        let r = c.reconcile(i, &["--peer-wait", "1s"]);
        assert_eq!(
            r.code,
            Some(1),
            "the config-version gate must stop the run:\n{r}"
        );
        assert!(
            r.stdout().contains(&gate),
            "the gate must name the master's version:\n{r}"
        );
        assert_eq!(c.local_conf(i), new, "pve{i} did not install the master");
    }
    for i in 1..=3 {
        assert_eq!(c.running_version(i), v0, "a controller reloaded pve{i}");
    }

    // The recovery the docs give: reload on one member, every node runs the new version.
    c.h.reload(1).expect("corosync-cfgtool -R");
    for i in 1..=3 {
        let ok = wait_until(Duration::from_secs(10), || {
            c.h.config_version(i).ok() == Some(v0 + 1)
        });
        assert!(ok.is_ok(), "pve{i} does not run {} after -R", v0 + 1);
    }
    c.wait_members(1, &[1, 2, 3]);
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    note("g", "total", t0);
}

/// A member cut off by the network while the others change the nodelist catches up when it is
/// back: pve3's switch port goes down, pve1 and pve2 (quorate, 2 of 3) join pve4 with pve3's
/// controller not running; pve3 alone keeps the old config_version. When its port is up again
/// the controllers (pve3's too) converge: every node runs the new version in one membership of
/// four, and no run loses track of it.
#[test]
fn h_partitioned_member_catches_up() {
    let Some(mut c) = Cluster::new("sch", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("h", "create 3 nodes", t0);
    let v0 = c.running_version(1);

    c.h.link_down(3, 0).expect("cut pve3");
    c.wait_members(1, &[1, 2]);
    let n4 = c.add_host();
    c.simple_manifest(&[1, 2, 3, n4]);
    c.converge(&[1, 2, n4]);
    note("h", "join pve4 while pve3 is cut off", t0);
    c.wait_members(1, &[1, 2, 4]);
    for i in [1, 2, n4] {
        assert_eq!(c.running_version(i), v0 + 1, "pve{i}");
    }
    assert_eq!(
        c.running_version(3),
        v0,
        "pve3 was cut off: it cannot have reloaded"
    );

    c.h.link_up(3, 0).expect("reconnect pve3");
    let runs = c.converge(&[1, 2, 3, n4]);
    note("h", "pve3 back", t0);
    // pve3's own controller restarted it with the master; nothing else was applied.
    let applied = Cluster::applied(&runs);
    assert_eq!(applied.get("join_node pve3"), Some(&1), "{applied:?}");
    assert_eq!(applied.values().sum::<usize>(), 1, "{applied:?}");
    let restarted = runs.iter().filter(|r| r.node == 3).any(|r| {
        r.stdout().contains(&format!(
            "ran config_version {v0} outside the quorate membership"
        ))
    });
    assert!(restarted, "no run on pve3 reported the restart");
    let st = c.wait_members(1, &[1, 2, 3, 4]);
    assert_eq!((st.expected_votes, st.total_votes), (4, 4));
    for i in [1, 2, 3, n4] {
        assert_eq!(c.running_version(i), v0 + 1, "pve{i}");
    }
    all_same(&c, &[1, 2, 3, n4]);
    for i in [1, 2, 3, n4] {
        c.assert_in_sync(i);
    }

    // Cut off again while the others change a reloadable option: when the network heals,
    // corosync merges pve3 back still running the old version (it turns away only a node that
    // starts with a stale one). The config-version gate would hold every later change forever;
    // a member that runs the new version reloads once more, and pve3 catches up.
    let t1 = Instant::now();
    let v1 = c.running_version(1);
    c.h.link_down(3, 0).expect("cut pve3");
    c.wait_members(1, &[1, 2, 4]);
    let nodes: Vec<_> = [1, 2, 3, n4]
        .iter()
        .map(|&i| (i, vec![c.addr(i, 0)], false))
        .collect();
    c.manifest(&nodes, "    token_coefficient: 250\n", "");
    c.converge(&[1, 2, n4]);
    assert_eq!(c.running_version(1), v1 + 1);
    c.h.link_up(3, 0).expect("reconnect pve3");
    c.wait_members(1, &[1, 2, 3, 4]);
    assert_eq!(
        c.running_version(3),
        v1,
        "pve3 merged back running the old version"
    );
    let runs = c.converge(&[1, 2, 3, n4]);
    note("h", "pve3 back after a reloadable change", t1);
    let applied = Cluster::applied(&runs);
    assert_eq!(
        applied.values().sum::<usize>(),
        1,
        "one catch-up reload: {applied:?}"
    );
    assert!(
        applied.keys().all(|k| k.starts_with("update_corosync ")),
        "{applied:?}"
    );
    assert!(
        runs.iter().any(|r| r
            .stdout()
            .contains("reloaded for the members that missed it")),
        "no run reported the catch-up reload"
    );
    for i in [1, 2, 3, n4] {
        assert_eq!(c.running_version(i), v1 + 1, "pve{i}");
    }
    c.wait_members(1, &[1, 2, 3, 4]);
    for i in [1, 2, 3, n4] {
        c.assert_in_sync(i);
    }
    note("h", "total", t0);
}

/// A removal while a member is cut off: of five nodes pve3 is cut off and pve5 powered off;
/// pve1, pve2 and pve4 (quorate, 3 of 5) remove pve5. When pve3 is back corosync merges it
/// still running the old version (its nodelist has pve5 in addition, which is down); a member
/// that runs the new version reloads once more, and every node runs it.
#[test]
fn i_removal_while_a_member_is_cut_off() {
    let Some(c) = Cluster::new("sci", 5, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3, 4, 5], |i| vec![c.addr(i, 0)]);
    note("i", "create 5 nodes", t0);
    let v0 = c.running_version(1);
    c.h.link_down(3, 0).expect("cut pve3");
    c.wait_members(1, &[1, 2, 4, 5]);
    c.stop_node(5);
    c.wait_members(1, &[1, 2, 4]);
    let nodes: Vec<_> = (1..=5).map(|i| (i, vec![c.addr(i, 0)], i == 5)).collect();
    c.manifest(&nodes, "", "");
    c.converge(&[1, 2, 4]);
    assert_eq!(c.running_version(1), v0 + 1);
    assert!(!c.master().contains("pve5"));

    c.h.link_up(3, 0).expect("reconnect pve3");
    c.wait_members(1, &[1, 2, 3, 4]);
    assert_eq!(
        c.running_version(3),
        v0,
        "pve3 merged back running the old version"
    );
    let runs = c.converge(&[1, 2, 3, 4]);
    note("i", "pve3 back", t0);
    let applied = Cluster::applied(&runs);
    assert_eq!(applied.values().sum::<usize>(), 1, "{applied:?}");
    assert!(
        applied.keys().all(|k| k.starts_with("update_corosync ")),
        "{applied:?}"
    );
    let st = c.wait_members(1, &[1, 2, 3, 4]);
    assert_eq!((st.expected_votes, st.total_votes, st.quorum), (4, 4, 3));
    for i in 1..=4 {
        assert_eq!(c.running_version(i), v0 + 1, "pve{i}");
    }
    all_same(&c, &[1, 2, 3, 4]);
    for i in 1..=4 {
        c.assert_in_sync(i);
    }
    note("i", "total", t0);
}

/// Adopting a running cluster: its shared directory is empty (no master corosync.conf, no
/// shared authkey; a cluster set up before pve-gitops, here by emptying it after the create).
/// The controllers find nothing to do; then a 4th node is added to the manifest: the first
/// write creates the master from a member's corosync.conf, the member's authkey becomes the
/// shared one, and the new node joins with it.
#[test]
fn j_adopt_a_running_cluster() {
    let Some(mut c) = Cluster::new("scj", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("j", "create 3 nodes", t0);
    let v0 = c.running_version(1);
    fs::remove_dir_all(&c.shared).expect("empty the shared directory");
    fs::create_dir_all(&c.shared).expect("shared dir");
    for i in 1..=3 {
        c.assert_in_sync(i);
    }
    assert!(
        c.master().is_empty(),
        "a run without changes wrote a master"
    );

    let n4 = c.add_host();
    c.simple_manifest(&[1, 2, 3, n4]);
    let runs = c.converge(&[1, 2, 3, n4]);
    note("j", "join a 4th to the adopted cluster", t0);
    let applied = Cluster::applied(&runs);
    assert_eq!(
        applied.get(&format!("join_node pve{n4}")),
        Some(&2),
        "edit + start: {applied:?}"
    );
    let st = c.wait_members(1, &[1, 2, 3, 4]);
    assert_eq!((st.expected_votes, st.quorum), (4, 3));
    for i in 1..=4 {
        assert_eq!(c.running_version(i), v0 + 1, "pve{i}");
    }
    let key = |i: usize| fs::read(c.h.node_etc(i).expect("etc").join("authkey")).expect("key");
    assert_eq!(
        fs::read(c.shared.join("priv/authkey")).expect("shared authkey"),
        key(1),
        "the shared authkey is not the cluster's"
    );
    assert_eq!(key(4), key(1));
    all_same(&c, &[1, 2, 3, 4]);
    for i in 1..=4 {
        c.assert_in_sync(i);
    }
    note("j", "total", t0);
}

/// A reload that took effect although `corosync-cfgtool -R` failed (here a wrapper on the
/// controllers' PATH runs the real `-R`, then exits 1): the step is reported failed, but the
/// master is not rolled back under members that run the new version (that would hold every
/// later change at the config-version gate); the next runs find the cluster in sync.
#[test]
fn k_failed_reload_that_took_effect_keeps_the_master() {
    let Some(c) = Cluster::new("sck", 3, 1) else {
        return;
    };
    let t0 = Instant::now();
    create(&c, &[1, 2, 3], |i| vec![c.addr(i, 0)]);
    note("k", "create 3 nodes", t0);
    let v0 = c.running_version(1);
    let wrappers = c.h.base_dir().join("wrappers");
    fs::create_dir_all(&wrappers).expect("wrapper dir");
    let cfgtool = wrappers.join("corosync-cfgtool");
    fs::write(
        &cfgtool,
        "#!/bin/sh\n/usr/sbin/corosync-cfgtool \"$@\"\nrc=$?\n[ \"$1\" = -R ] && { echo 'simulated failure after the reload' >&2; exit 1; }\nexit $rc\n",
    )
    .expect("wrapper");
    let chmod = std::process::Command::new("chmod")
        .arg("755")
        .arg(&cfgtool)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", wrappers.display());

    // Remove pve3 (powered off first): a change that is one reload.
    c.stop_node(3);
    c.wait_members(1, &[1, 2]);
    let nodes: Vec<_> = (1..=3).map(|i| (i, vec![c.addr(i, 0)], i == 3)).collect();
    c.manifest(&nodes, "", "");
    let runs: Vec<Run> = thread::scope(|s| {
        let (c, path) = (&c, path.as_str());
        let hs: Vec<_> = [1, 2]
            .map(|i| s.spawn(move || c.reconcile_env(i, &[], &[("PATH", path)])))
            .into_iter()
            .collect();
        hs.into_iter().map(|h| h.join().expect("run")).collect()
    });
    let all: String = runs.iter().map(|r| format!("{r}\n")).collect();
    assert!(
        runs.iter()
            .any(|r| r.code != Some(0) && r.to_string().contains("simulated failure")),
        "the failed -R must be reported:\n{all}"
    );
    assert!(
        all.contains(&format!("stays at config_version {}", v0 + 1)),
        "the master must stay at the version the members run:\n{all}"
    );
    for i in 1..=2 {
        assert_eq!(c.running_version(i), v0 + 1, "pve{i}");
    }
    assert!(
        !c.master().contains("pve3"),
        "master rolled back:\n{}",
        c.master()
    );
    c.converge(&[1, 2]);
    let st = c.wait_members(1, &[1, 2]);
    assert_eq!((st.expected_votes, st.total_votes), (2, 2));
    all_same(&c, &[1, 2]);
    for i in 1..=2 {
        c.assert_in_sync(i);
    }
    note("k", "total", t0);
}
