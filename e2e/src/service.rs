//! Running the controller on nodes: start and stop scripts for corosync inside a node's
//! namespaces (the controller's `--start-cmd` / `--stop-cmd`; the harness itself starts and
//! stops corosync by PID), and reading what a `reconcile` run applied.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// `start.sh LOG PIDLOG`: start corosync in the background; pidfile in the private /run.
pub const START_SH: &str = r#"#!/bin/sh
# Start corosync in the background in this node's namespaces; pidfile in the private /run.
# $1: log file, $2: the harness's pid log (for its shm cleanup).
pidfile=/run/e2e-corosync.pid
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then exit 0; fi
corosync -f >>"$1" 2>&1 </dev/null &
echo $! >"$pidfile"
echo $! >>"$2"
"#;

/// `stop.sh`: stop the corosync `start.sh` started (SIGTERM; SIGKILL after 10 s).
pub const STOP_SH: &str = r#"#!/bin/sh
# Stop the corosync started by start.sh (SIGTERM; SIGKILL after 10 s).
pidfile=/run/e2e-corosync.pid
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
kill -TERM "$pid" 2>/dev/null
i=0
while alive "$pid"; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then kill -KILL "$pid"; fi
  sleep 0.1
done
rm -f "$pidfile"
"#;

/// Write `start.sh` and `stop.sh` into `dir`.
///
/// # Errors
/// Writing failed.
pub fn write_service_scripts(dir: &Path) -> std::io::Result<()> {
    fs::write(dir.join("start.sh"), START_SH)?;
    fs::write(dir.join("stop.sh"), STOP_SH)
}

/// One node of a test manifest: its index (name `pve<index>`, nodeid `index`), its address
/// on each link, and whether it is `state: absent`.
pub type ManifestNode = (usize, Vec<String>, bool);

/// A `Cluster` manifest named `e2e` (knet) with these nodes. `extra_totem` goes under
/// `spec.totem` (lines indented by four spaces), `extra_spec` under `spec` (two spaces).
pub fn manifest_yaml(nodes: &[ManifestNode], extra_totem: &str, extra_spec: &str) -> String {
    let mut y = String::from(
        "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: e2e\nspec:\n  totem:\n    transport: knet\n",
    );
    y.push_str(extra_totem);
    y.push_str(extra_spec);
    y.push_str("  nodes:\n");
    for (i, addrs, absent) in nodes {
        y.push_str(&format!("    - name: pve{i}\n      nodeid: {i}\n"));
        for (l, a) in addrs.iter().enumerate() {
            y.push_str(&format!("      ring{l}_addr: {a}\n"));
        }
        if *absent {
            y.push_str("      state: absent\n");
        }
    }
    y
}

/// The steps a `pve-gitops reconcile` run applied, from its text output: `(kind, node)` of
/// every step line (`+ join_node  pve4  ...`) that is followed by a `done:` line.
pub fn applied_steps<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let lines: Vec<&str> = lines.into_iter().collect();
    let mut out = Vec::new();
    for w in lines.windows(2) {
        if w[1].trim_start().starts_with("done:") {
            let mut words = w[0].split_whitespace().skip(1);
            if let (Some(kind), Some(node)) = (words.next(), words.next()) {
                out.push((kind.to_string(), node.to_string()));
            }
        }
    }
    out
}

/// One finished `pve-gitops reconcile` run on a node.
#[derive(Debug, Clone)]
pub struct Run {
    /// The node it ran on.
    pub node: usize,
    /// Its exit code (None: killed).
    pub code: Option<i32>,
    /// Its standard output, line by line, with the time each line was read (a run whose output
    /// was read at its end has that time on every line).
    pub lines: Vec<(Instant, String)>,
    /// Its standard error.
    pub stderr: String,
    /// When it started.
    pub started: Instant,
    /// When it ended.
    pub ended: Instant,
}

impl Run {
    /// Its standard output.
    pub fn stdout(&self) -> String {
        let mut s = String::new();
        for (_, l) in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// The steps it applied ([`applied_steps`] of its output).
    pub fn applied(&self) -> Vec<(String, String)> {
        applied_steps(self.lines.iter().map(|(_, l)| l.as_str()))
    }

    /// It applied something, or did not exit 0 (stopped at a gate, waiting for a node, error).
    pub fn changed(&self) -> bool {
        self.code != Some(0) || !self.applied().is_empty()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "--- reconcile on pve{} exit {:?} ---",
            self.node, self.code
        )?;
        for (_, l) in &self.lines {
            writeln!(f, "{l}")?;
        }
        write!(f, "{}", self.stderr.trim_end())
    }
}

/// Whether `node`'s controller has to run (again): it has not run yet, its latest run changed
/// something (or stopped, exit 1), or that run started before the last change anywhere. A
/// controller that is quiet since the last change runs again only after a new change, as a
/// per-node controller that re-runs on events does (no busy re-running while others work).
pub fn needs_run(runs: &[Run], node: usize) -> bool {
    let last_change = runs.iter().filter(|r| r.changed()).map(|r| r.ended).max();
    !latest(runs, node).is_some_and(|r| !r.changed() && last_change.is_none_or(|c| r.started > c))
}

/// `node`'s latest run.
fn latest(runs: &[Run], node: usize) -> Option<&Run> {
    runs.iter().rev().find(|r| r.node == node)
}

/// How often a quiet controller runs anyway (a daemon's resync interval, shortened): a change
/// only another node's controller can see, e.g. its own corosync stopped by a rolling
/// restart, is acted on even when no run changed anything.
pub const QUIET_RERUN: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether `node`'s controller is due to run now: [`needs_run`], or its latest run ended
/// [`QUIET_RERUN`] ago.
pub fn due(runs: &[Run], node: usize) -> bool {
    needs_run(runs, node) || latest(runs, node).is_none_or(|r| r.ended.elapsed() >= QUIET_RERUN)
}

/// The per-node controllers' steady state: every node of `nodes` has a latest run that exited
/// 0 without applying anything and started after the last change anywhere.
pub fn converged(runs: &[Run], nodes: &[usize]) -> bool {
    nodes.iter().all(|&n| !needs_run(runs, n))
}

/// Some run failed: an exit code other than 0 (converged) or 1 (gate / other node).
pub fn any_failed(runs: &[Run]) -> bool {
    runs.iter().any(|r| r.code != Some(0) && r.code != Some(1))
}

/// How [`converge`] ended badly.
#[derive(Debug)]
pub struct NotConverged {
    /// Why: a run failed, a run could not be started (the errors), or the time-out.
    pub why: String,
    /// Every run, in the order they ended.
    pub runs: Vec<Run>,
}

/// Run the per-node controllers until they [`converged`]: one thread per node of `nodes`
/// runs `run(node)` whenever that node is [`due`] (a run that exits 1 is followed by a 300 ms
/// pause), until every node is quiet, a run failed ([`any_failed`]), `run` returned an error
/// or `timeout` passed.
///
/// # Errors
/// Not converged, with every run so far.
pub fn converge<F>(nodes: &[usize], timeout: Duration, run: F) -> Result<Vec<Run>, NotConverged>
where
    F: Fn(usize) -> Result<Run, String> + Sync,
{
    let runs: Mutex<Vec<Run>> = Mutex::new(Vec::new());
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let deadline = Instant::now() + timeout;
    thread::scope(|s| {
        for &n in nodes {
            let (runs, problems, run) = (&runs, &problems, &run);
            s.spawn(move || loop {
                {
                    let r = runs.lock().expect("lock");
                    if converged(&r, nodes) || any_failed(&r) || Instant::now() > deadline {
                        return;
                    }
                    if !due(&r, n) {
                        drop(r);
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
                match run(n) {
                    Ok(one) => {
                        let code = one.code;
                        runs.lock().expect("lock").push(one);
                        if code == Some(1) {
                            thread::sleep(Duration::from_millis(300));
                        }
                    }
                    Err(e) => {
                        problems.lock().expect("lock").push(e);
                        return;
                    }
                }
            });
        }
    });
    let runs = runs.into_inner().expect("lock");
    let problems = problems.into_inner().expect("lock");
    if problems.is_empty() && !any_failed(&runs) && converged(&runs, nodes) {
        return Ok(runs);
    }
    let why = if !problems.is_empty() {
        format!("runs could not be started: {problems:?}")
    } else if any_failed(&runs) {
        "a run failed".to_string()
    } else {
        "time-out".to_string()
    };
    Err(NotConverged { why, runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pve_gitops_schema::spec::{NodeState, RrpMode};
    use pve_gitops_schema::validate::parse_cluster;

    #[test]
    fn manifest_yaml_is_a_valid_manifest_with_those_nodes() {
        let nodes: Vec<ManifestNode> = vec![
            (1, vec!["10.9.0.1".into(), "10.9.1.1".into()], false),
            (4, vec!["10.9.0.4".into(), "10.9.1.4".into()], true),
        ];
        let y = manifest_yaml(
            &nodes,
            "    rrp_mode: active\n",
            "  quorum:\n    expected_votes: 1\n",
        );
        let (c, _warnings) = parse_cluster("m.yaml", &y).unwrap_or_else(|e| panic!("{e:?}\n{y}"));
        let got: Vec<_> = c
            .spec
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.nodeid,
                    n.ring0_addr.as_deref(),
                    n.ring1_addr.as_deref(),
                    n.state == NodeState::Absent,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("pve1", 1, Some("10.9.0.1"), Some("10.9.1.1"), false),
                ("pve4", 4, Some("10.9.0.4"), Some("10.9.1.4"), true),
            ]
        );
        assert_eq!(c.spec.totem.rrp_mode, Some(RrpMode::Active));
        assert_eq!(c.spec.quorum.expected_votes, Some(1));
    }
}
