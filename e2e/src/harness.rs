//! [`Harness`]: a switch namespace, N node namespaces, and one `corosync -f` per node.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cleanup::{self, base_dir, record_pid};
use crate::cmd::{self, run, run_ok, CmdOutput, COMMAND_TIMEOUT};
use crate::conf::{ConfNode, TestConf};
use crate::error::{Error, Result};
use crate::wait_for;
use crate::{CmapEntry, LinkStatus, NodeReachability, QuorumStatus};
use pve_gitops::target::corosync::tools as parse;

/// How long to wait for a SIGTERMed corosync before SIGKILL (clean exit takes ~2.2 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Counter handing out a distinct address block to every harness of this process.
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

/// Shell run by each node's helper process inside `ip netns exec <ns> unshare --mount --uts`.
/// `$1..$4` are the private dirs, `$5` the hostname.
const HELPER_SCRIPT: &str = r#"set -e
mount --bind "$1" /etc/corosync
mount --bind "$2" /var/lib/corosync
mount --bind "$3" /var/log/corosync
mount --bind "$4" /run
hostname "$5"
echo ready
exec cat >/dev/null 2>&1
"#;

struct Node {
    ns: String,
    root: PathBuf,
    /// `cat` holding the node's mount + uts namespaces (and sitting in its netns). It
    /// exits on its own when its stdin — ours — closes, i.e. when this process dies.
    helper: Child,
    helper_stdin: Option<ChildStdin>,
    corosync: Option<Child>,
}

/// A set of network namespaces wired like a switch with N nodes, each node with its own
/// mount namespace in which `/etc/corosync`, `/var/lib/corosync`, `/var/log/corosync`
/// and `/run` are private directories under the harness's base dir.
///
/// Node indices are 1-based and equal the corosync node id used by
/// [`Harness::render_conf`]. Everything is torn down by [`Drop`] (also while
/// unwinding from a panic) and, for crashed runs, by [`crate::cleanup_stale`].
///
/// Addressing: node `i` on link `L` has `10.<100 + harness index % 100>.<L>.<i>/24` on
/// `eth<L>`; the switch namespace `<prefix>-sw` has bridge `br<L>` per link. Nothing is
/// created in, or routed to, the host's network namespace.
pub struct Harness {
    prefix: String,
    index: usize,
    links: usize,
    base: PathBuf,
    switch_ns: String,
    authkey: Vec<u8>,
    nodes: Vec<Node>,
    torn_down: bool,
}

impl Harness {
    /// Build the switch with `links` bridges and `n` nodes (no corosync started yet).
    /// Every node gets the same freshly generated authkey. Runs
    /// [`crate::cleanup_stale`]`(prefix)` first.
    pub fn new(prefix: &str, n: usize, links: usize) -> Result<Harness> {
        cleanup::cleanup_stale(prefix)?;
        if !(1..=9).contains(&links) {
            return Err(Error::Usage(format!("links must be 1..=9, got {links}")));
        }
        let base = base_dir(prefix);
        fs::create_dir_all(&base).map_err(|e| Error::io(format!("mkdir {}", base.display()), e))?;
        let mut h = Harness {
            prefix: prefix.to_owned(),
            index: NEXT_INDEX.fetch_add(1, Ordering::Relaxed),
            links,
            switch_ns: format!("{prefix}-sw"),
            base,
            authkey: Vec::new(),
            nodes: Vec::new(),
            torn_down: false,
        };
        // From here on, Drop cleans up whatever was built.
        let sw = h.switch_ns.clone();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        for l in 0..links {
            let br = format!("br{l}");
            ip(&["-n", &sw, "link", "add", &br, "type", "bridge"])?;
            ip(&[
                "-n",
                &sw,
                "link",
                "set",
                &br,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ])?;
            ip(&["-n", &sw, "link", "set", &br, "up"])?;
        }
        h.authkey = h.generate_authkey()?;
        for _ in 0..n {
            h.add_node()?;
        }
        Ok(h)
    }

    /// Add one more node (namespace, veths on every bridge, dirs, authkey, helper) and
    /// return its index. corosync is not started and no corosync.conf is written.
    pub fn add_node(&mut self) -> Result<usize> {
        let i = self.nodes.len() + 1;
        if i > 99 {
            return Err(Error::Usage("at most 99 nodes".into()));
        }
        let ns = format!("{}-n{i}", self.prefix);
        let root = self.base.join(format!("n{i}"));
        ip(&["netns", "add", &ns])?;
        // Register before anything else can fail, so Drop deletes the namespace.
        let dirs = [
            "etc/corosync",
            "var/lib/corosync",
            "var/log/corosync",
            "run",
        ];
        for d in dirs {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io(format!("mkdir {}", p.display()), e))?;
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        // A quiet segment: no IPv6 link-local chatter. Best effort.
        let _ = run(
            Command::new("ip")
                .args(["netns", "exec", &ns, "sysctl", "-qw"])
                .args([
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ]),
            COMMAND_TIMEOUT,
        );
        let helper = spawn_helper(&ns, &root, &node_name(i)).inspect_err(|_| {
            let _ = cleanup::delete_netns(&ns);
        })?;
        record_pid(&self.base, helper.0.id());
        self.nodes.push(Node {
            ns: ns.clone(),
            root,
            helper: helper.0,
            helper_stdin: Some(helper.1),
            corosync: None,
        });
        for l in 0..self.links {
            let veth = self.switch_port(i, l);
            let eth = format!("eth{l}");
            ip(&[
                "-n",
                &self.switch_ns,
                "link",
                "add",
                &veth,
                "type",
                "veth",
                "peer",
                "name",
                &eth,
                "netns",
                &ns,
            ])?;
            ip(&[
                "-n",
                &self.switch_ns,
                "link",
                "set",
                &veth,
                "master",
                &format!("br{l}"),
                "up",
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.node_addr(i, l)),
                "dev",
                &eth,
            ])?;
            ip(&["-n", &ns, "link", "set", &eth, "up"])?;
        }
        self.write_authkey(i, &self.authkey.clone())?;
        Ok(i)
    }

    /// The namespace-name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The base directory holding every node's private dirs and the shared authkey.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// Number of knet links (bridges) wired.
    pub fn links(&self) -> usize {
        self.links
    }

    /// Node indices, `1..=n`.
    pub fn node_ids(&self) -> Vec<usize> {
        (1..=self.nodes.len()).collect()
    }

    /// The switch namespace name (`<prefix>-sw`).
    pub fn switch_ns(&self) -> &str {
        &self.switch_ns
    }

    /// Node `i`'s network namespace name (`<prefix>-n<i>`).
    pub fn node_ns(&self, i: usize) -> Result<&str> {
        Ok(&self.node(i)?.ns)
    }

    /// The switch-side veth of node `i` on `link` (`<prefix>n<i>l<link>`).
    pub fn switch_port(&self, i: usize, link: usize) -> String {
        format!("{}n{i}l{link}", self.prefix)
    }

    /// Node `i`'s address on `link`.
    pub fn node_addr(&self, i: usize, link: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 100 + (self.index % 100) as u8, link as u8, i as u8)
    }

    /// Node `i`'s private root (`<base>/n<i>`), containing `etc/corosync`,
    /// `var/lib/corosync`, `var/log/corosync`, `run` and `corosync.stderr.log`.
    pub fn node_root(&self, i: usize) -> Result<&Path> {
        Ok(&self.node(i)?.root)
    }

    /// Node `i`'s `etc/corosync` directory (seen as `/etc/corosync` on the node).
    pub fn node_etc(&self, i: usize) -> Result<PathBuf> {
        Ok(self.node(i)?.root.join("etc/corosync"))
    }

    /// Write `text` to node `i`'s corosync.conf atomically (`.new` + rename).
    pub fn write_conf(&self, i: usize, text: &str) -> Result<()> {
        let etc = self.node_etc(i)?;
        let tmp = etc.join("corosync.conf.new");
        fs::write(&tmp, text).map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        let dst = etc.join("corosync.conf");
        fs::rename(&tmp, &dst).map_err(|e| Error::io(format!("rename to {}", dst.display()), e))
    }

    /// [`Harness::write_conf`] on every node.
    pub fn write_conf_all(&self, text: &str) -> Result<()> {
        self.node_ids()
            .into_iter()
            .try_for_each(|i| self.write_conf(i, text))
    }

    /// Node `i`'s corosync.conf as it is on disk.
    pub fn read_conf(&self, i: usize) -> Result<String> {
        let p = self.node_etc(i)?.join("corosync.conf");
        fs::read_to_string(&p).map_err(|e| Error::io(format!("read {}", p.display()), e))
    }

    /// Write node `i`'s `/etc/corosync/authkey` (mode 0400).
    pub fn write_authkey(&self, i: usize, key: &[u8]) -> Result<()> {
        let p = self.node_etc(i)?.join("authkey");
        let ctx = |e| Error::io(format!("write {}", p.display()), e);
        let _ = fs::remove_file(&p);
        fs::write(&p, key).map_err(ctx)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).map_err(ctx)
    }

    /// A fresh key from `corosync-keygen -k`.
    pub fn generate_authkey(&self) -> Result<Vec<u8>> {
        let p = self.base.join("authkey.generated");
        let _ = fs::remove_file(&p);
        run_ok(Command::new("corosync-keygen").arg("-k").arg(&p))?;
        let key = fs::read(&p).map_err(|e| Error::io(format!("read {}", p.display()), e))?;
        let _ = fs::remove_file(&p);
        Ok(key)
    }

    /// The authkey [`Harness::new`] gave every node.
    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// The node name the harness uses (`pve<i>`); also the node's hostname.
    pub fn node_name(&self, i: usize) -> String {
        node_name(i)
    }

    /// A test corosync.conf for `nodes` using the first `links` links (knet, secauth,
    /// token 1000 ms, cluster name `e2e`).
    pub fn render_conf(&self, nodes: &[usize], links: usize, config_version: u64) -> String {
        self.test_conf(nodes, links, config_version).render()
    }

    /// The [`TestConf`] behind [`Harness::render_conf`], for tweaking before rendering.
    pub fn test_conf(&self, nodes: &[usize], links: usize, config_version: u64) -> TestConf {
        TestConf {
            cluster_name: "e2e".into(),
            config_version,
            links,
            token_ms: 1000,
            knet_ping_ms: None,
            nodes: nodes
                .iter()
                .map(|&i| ConfNode {
                    name: node_name(i),
                    nodeid: i as u32,
                    votes: 1,
                    addrs: (0..links)
                        .map(|l| self.node_addr(i, l).to_string())
                        .collect(),
                })
                .collect(),
        }
    }

    /// Start `corosync -f` on node `i` (its stdout/stderr go to
    /// `<node root>/corosync.stderr.log`). Returns its PID.
    pub fn start(&mut self, i: usize) -> Result<u32> {
        if self.is_running(i)? {
            return Err(Error::Usage(format!(
                "corosync already running on node {i}"
            )));
        }
        let node = self.node(i)?;
        let logp = node.root.join("corosync.stderr.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logp)
            .map_err(|e| Error::io(format!("open {}", logp.display()), e))?;
        let log2 = log.try_clone().map_err(|e| Error::io("dup log fd", e))?;
        let mut cmd = self.nsenter(i)?;
        cmd.args(["corosync", "-f"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("spawn `{}`", cmd::describe(&cmd)), e))?;
        let pid = child.id();
        record_pid(&self.base, pid);
        self.node_mut(i)?.corosync = Some(child);
        Ok(pid)
    }

    /// SIGTERM node `i`'s corosync and wait for it to exit (SIGKILL after
    /// [`STOP_TIMEOUT`]). Returns its exit status.
    pub fn stop(&mut self, i: usize) -> Result<ExitStatus> {
        self.terminate(i, "TERM")
    }

    /// SIGKILL node `i`'s corosync (a crash) and reap it. Leftover libqb shm is removed.
    pub fn kill(&mut self, i: usize) -> Result<ExitStatus> {
        self.terminate(i, "KILL")
    }

    fn terminate(&mut self, i: usize, sig: &str) -> Result<ExitStatus> {
        let mut child = self
            .node_mut(i)?
            .corosync
            .take()
            .ok_or_else(|| Error::Usage(format!("corosync was not started on node {i}")))?;
        let pid = child.id();
        if child.try_wait().ok().flatten().is_none() {
            let _ = cmd::signal(pid, sig);
        }
        let status = match cmd::wait_child(&mut child, STOP_TIMEOUT) {
            Ok(Some(st)) => st,
            _ => {
                let _ = child.kill();
                child
                    .wait()
                    .map_err(|e| Error::io("wait for corosync", e))?
            }
        };
        cleanup::remove_shm(&BTreeSet::from([pid]));
        Ok(status)
    }

    /// Whether node `i`'s corosync was started and has not exited.
    pub fn is_running(&mut self, i: usize) -> Result<bool> {
        Ok(match &mut self.node_mut(i)?.corosync {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        })
    }

    /// PID of node `i`'s corosync, if started.
    pub fn corosync_pid(&self, i: usize) -> Result<Option<u32>> {
        Ok(self.node(i)?.corosync.as_ref().map(Child::id))
    }

    /// "Pull the cable": set node `i`'s switch port on `link` down.
    pub fn link_down(&self, i: usize, link: usize) -> Result<()> {
        self.set_port(i, link, "down")
    }

    /// Plug the cable back in (switch port up).
    pub fn link_up(&self, i: usize, link: usize) -> Result<()> {
        self.set_port(i, link, "up")
    }

    fn set_port(&self, i: usize, link: usize, state: &str) -> Result<()> {
        self.node(i)?;
        ip(&[
            "-n",
            &self.switch_ns,
            "link",
            "set",
            &self.switch_port(i, link),
            state,
        ])
    }

    /// A `Command` that runs in node `i`'s network, mount and UTS namespaces:
    /// `nsenter -t <helper> -m -n -u --`; append the program and its arguments.
    pub fn nsenter(&self, i: usize) -> Result<Command> {
        let pid = self.node(i)?.helper.id();
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid.to_string(), "-m", "-n", "-u", "--"]);
        Ok(c)
    }

    /// Run `program args...` on node `i` with extra `env`, capture its output, and give it
    /// [`crate::COMMAND_TIMEOUT`]. Any exit status is returned as `Ok`.
    pub fn run_on_node<I, S>(
        &self,
        i: usize,
        program: impl AsRef<OsStr>,
        args: I,
        env: &[(&str, &str)],
    ) -> Result<CmdOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_on_node_timeout(i, program, args, env, COMMAND_TIMEOUT)
    }

    /// [`Harness::run_on_node`] with an explicit time limit (the process is killed after).
    pub fn run_on_node_timeout<I, S>(
        &self,
        i: usize,
        program: impl AsRef<OsStr>,
        args: I,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<CmdOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.nsenter(i)?;
        c.arg(program).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c, timeout)
    }

    /// Spawn a long-running `program` on node `i` (stdin closed, stdout/stderr to
    /// `log`). The caller owns the child; [`Drop`] kills it anyway with everything
    /// else left in the node's namespace.
    pub fn spawn_on_node<I, S>(
        &self,
        i: usize,
        program: impl AsRef<OsStr>,
        args: I,
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Child>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
        let f2 = f.try_clone().map_err(|e| Error::io("dup log fd", e))?;
        let mut c = self.nsenter(i)?;
        c.arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .spawn()
            .map_err(|e| Error::io(format!("spawn `{}`", cmd::describe(&c)), e))?;
        record_pid(&self.base, child.id());
        Ok(child)
    }

    /// `corosync-quorumtool -s -p` on node `i` (exit 0 quorate, 2 not quorate; 1 = error).
    pub fn quorum_status(&self, i: usize) -> Result<QuorumStatus> {
        let out = self
            .run_on_node(i, "corosync-quorumtool", ["-s", "-p"], &[])?
            .expect_codes(&[0, 2])?;
        let st = parsed(
            "corosync-quorumtool -s -p",
            &out.stdout,
            parse::parse_quorum_status,
        )?;
        if st.quorate != (out.code() == Some(0)) {
            return Err(Error::parse(
                "corosync-quorumtool -s -p",
                format!("exit code {:?} disagrees with `Quorate:`", out.code()),
                &out.stdout,
            ));
        }
        Ok(st)
    }

    /// `corosync-cmapctl -g <key>` on node `i`; `Ok(None)` if the key does not exist.
    pub fn cmap_get(&self, i: usize, key: &str) -> Result<Option<CmapEntry>> {
        let out = self.run_on_node(i, "corosync-cmapctl", ["-g", key], &[])?;
        if !out.success() {
            if out.stderr.contains("CS_ERR_NOT_EXIST") || out.stdout.contains("CS_ERR_NOT_EXIST") {
                return Ok(None);
            }
            return Err(out.into_error());
        }
        Ok(parsed("corosync-cmapctl", &out.stdout, parse::parse_cmap)?
            .into_iter()
            .next())
    }

    /// `corosync-cmapctl <prefix>` on node `i`: every key under `prefix`.
    pub fn cmap_prefix(&self, i: usize, prefix: &str) -> Result<Vec<CmapEntry>> {
        let out = self
            .run_on_node(i, "corosync-cmapctl", [prefix], &[])?
            .expect_success()?;
        parsed("corosync-cmapctl", &out.stdout, parse::parse_cmap)
    }

    /// The running `totem.config_version` on node `i` (cmap, not the file).
    pub fn config_version(&self, i: usize) -> Result<u64> {
        let e = self
            .cmap_get(i, "totem.config_version")?
            .ok_or_else(|| Error::Usage(format!("node {i}: no totem.config_version in cmap")))?;
        e.as_u64()
            .ok_or_else(|| Error::parse("corosync-cmapctl", "not a number", &e.value))
    }

    /// `corosync-cfgtool -s` on node `i`.
    pub fn link_status(&self, i: usize) -> Result<LinkStatus> {
        let out = self
            .run_on_node(i, "corosync-cfgtool", ["-s"], &[])?
            .expect_success()?;
        parsed("corosync-cfgtool -s", &out.stdout, parse::parse_link_status)
    }

    /// `corosync-cfgtool -n` on node `i`: reachability of every other node, per link.
    pub fn node_status(&self, i: usize) -> Result<Vec<NodeReachability>> {
        let out = self
            .run_on_node(i, "corosync-cfgtool", ["-n"], &[])?
            .expect_success()?;
        parsed("corosync-cfgtool -n", &out.stdout, parse::parse_node_status)
    }

    /// `corosync-cfgtool -R` on node `i` (reloads corosync.conf on every node).
    pub fn reload(&self, i: usize) -> Result<CmdOutput> {
        self.run_on_node(i, "corosync-cfgtool", ["-R"], &[])?
            .expect_success()
    }

    /// `corosync-quorumtool -e <n>` on node `i`. A refusal (`CS_ERR_INVALID_PARAM`) is
    /// an [`Error::Command`].
    pub fn set_expected(&self, i: usize, n: u32) -> Result<()> {
        self.run_on_node(i, "corosync-quorumtool", ["-e", &n.to_string()], &[])?
            .expect_success()
            .map(|_| ())
    }

    /// Wait until node `i` is quorate and its members are exactly `members`.
    /// Fails early if node `i`'s corosync exits; the error carries the last status and
    /// the node's log tail.
    pub fn wait_quorate(
        &mut self,
        i: usize,
        members: &[u32],
        timeout: Duration,
    ) -> Result<QuorumStatus> {
        let mut want = members.to_vec();
        want.sort_unstable();
        self.wait_status(i, timeout, &format!("quorate with members {want:?}"), |s| {
            s.quorate && s.member_ids() == want
        })
    }

    /// Wait until `pred` holds for node `i`'s [`QuorumStatus`]; see [`Harness::wait_quorate`].
    pub fn wait_status(
        &mut self,
        i: usize,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&QuorumStatus) -> bool,
    ) -> Result<QuorumStatus> {
        let mut last = String::from("(no status yet)");
        let res = wait_for(timeout, &format!("node {i} {what}"), || {
            if !self.is_running(i).unwrap_or(false) {
                return Some(Err(()));
            }
            match self.quorum_status(i) {
                Ok(s) if pred(&s) => Some(Ok(s)),
                Ok(s) => {
                    last = format!("{s:?}");
                    None
                }
                Err(e) => {
                    last = e.to_string();
                    None
                }
            }
        });
        let detail = |e: String| format!("{e}\nlast status: {last}\n{}", self.log_tail(i, 30));
        match res {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(())) => Err(Error::Usage(detail(format!(
                "corosync on node {i} is not running (exited or never started)"
            )))),
            Err(Error::Timeout { what, after }) => Err(Error::Timeout {
                what: detail(what),
                after,
            }),
            Err(e) => Err(e),
        }
    }

    /// The last `lines` lines of node `i`'s corosync log and captured stderr.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let Ok(node) = self.node(i) else {
            return String::new();
        };
        let mut s = String::new();
        for p in ["var/log/corosync/corosync.log", "corosync.stderr.log"] {
            let text = fs::read_to_string(node.root.join(p)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            s.push_str(&format!("--- node {i} {p} (last {lines} lines) ---\n"));
            for l in &all[all.len().saturating_sub(lines)..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Tear everything down now (what [`Drop`] does): stop every corosync (SIGTERM, then
    /// SIGKILL after 3 s), kill all remaining processes in the node namespaces, delete
    /// the namespaces and the recorded PIDs' `/dev/shm/qb-*` files, and remove the base
    /// dir (kept when the thread is panicking, for the logs). Idempotent.
    pub fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut pids = BTreeSet::new();
        for node in &mut self.nodes {
            if let Some(c) = &mut node.corosync {
                pids.insert(c.id());
                if c.try_wait().ok().flatten().is_none() {
                    let _ = cmd::signal(c.id(), "TERM");
                }
            }
        }
        for node in &mut self.nodes {
            if let Some(mut c) = node.corosync.take() {
                if !matches!(cmd::wait_child(&mut c, Duration::from_secs(3)), Ok(Some(_))) {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            // Closing its stdin ends the helper; kill it anyway and reap it.
            node.helper_stdin.take();
            pids.insert(node.helper.id());
            let _ = node.helper.kill();
            let _ = node.helper.wait();
        }
        // Anything else still living in our namespaces (run_on_node leftovers,
        // spawn_on_node children, ...).
        let mut names: Vec<String> = self.nodes.iter().map(|n| n.ns.clone()).collect();
        names.push(self.switch_ns.clone());
        let mut rest = BTreeSet::new();
        for ns in &names {
            rest.extend(cleanup::netns_pids(ns));
        }
        cleanup::kill_and_wait(&rest, Duration::from_secs(5));
        pids.extend(rest);
        pids.extend(cleanup::read_pid_log(&self.base));
        let mut first_err = None;
        for ns in &names {
            if let Err(e) = cleanup::delete_netns(ns) {
                first_err.get_or_insert(e);
            }
        }
        cleanup::remove_shm(&pids);
        if std::thread::panicking() {
            eprintln!(
                "pve-gitops-e2e: test failed; logs kept in {} (removed by the next run with prefix {:?})",
                self.base.display(),
                self.prefix
            );
        } else if let Err(e) = fs::remove_dir_all(&self.base) {
            first_err.get_or_insert(Error::io(format!("remove {}", self.base.display()), e));
        }
        first_err.map_or(Ok(()), Err)
    }

    fn node(&self, i: usize) -> Result<&Node> {
        i.checked_sub(1)
            .and_then(|k| self.nodes.get(k))
            .ok_or_else(|| Error::Usage(format!("no node {i} (have 1..={})", self.nodes.len())))
    }

    fn node_mut(&mut self, i: usize) -> Result<&mut Node> {
        let n = self.nodes.len();
        i.checked_sub(1)
            .and_then(|k| self.nodes.get_mut(k))
            .ok_or_else(|| Error::Usage(format!("no node {i} (have 1..={n})")))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in self.node_ids() {
                eprint!("{}", self.log_tail(i, 40));
            }
        }
        if let Err(e) = self.teardown() {
            eprintln!(
                "pve-gitops-e2e: teardown of {:?} incomplete: {e}",
                self.prefix
            );
        }
    }
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("prefix", &self.prefix)
            .field("index", &self.index)
            .field("links", &self.links)
            .field("nodes", &self.nodes.len())
            .field("base", &self.base)
            .finish()
    }
}

/// Parse a tool's output with the controller's parser; a failure is an [`Error::Parse`] of
/// `what`, with the text.
fn parsed<T>(
    what: &str,
    text: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, String>,
) -> Result<T> {
    parse(text).map_err(|reason| Error::parse(what, reason, text))
}

fn node_name(i: usize) -> String {
    format!("pve{i}")
}

fn ip(args: &[&str]) -> Result<()> {
    run_ok(Command::new("ip").args(args)).map(|_| ())
}

/// Start the per-node namespace holder and wait for its bind mounts to be in place.
fn spawn_helper(ns: &str, root: &Path, hostname: &str) -> Result<(Child, ChildStdin)> {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        ns,
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
    ])
    .args(["sh", "-c", HELPER_SCRIPT, "sh"])
    .arg(root.join("etc/corosync"))
    .arg(root.join("var/lib/corosync"))
    .arg(root.join("var/log/corosync"))
    .arg(root.join("run"))
    .arg(hostname)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let what = cmd::describe(&c);
    let mut child = c
        .spawn()
        .map_err(|e| Error::io(format!("spawn `{what}`"), e))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
    if line.trim() != "ready" {
        drop(stdin);
        let _ = child.kill();
        let out = child.wait_with_output();
        let stderr = out
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        return Err(Error::Command {
            command: what,
            code: out.ok().and_then(|o| o.status.code()),
            stdout: line,
            stderr,
        });
    }
    drop(child.stderr.take());
    Ok((child, stdin))
}
