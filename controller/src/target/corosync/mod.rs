//! The `corosync` target: plain corosync 3 driven directly, one controller per node
//! (`--target corosync --node NAME --config-dir DIR`). docs/corosync-target.md describes the
//! protocol; in short:
//!
//! - `DIR` is the cluster-wide shared directory that plays `/etc/pve`'s role: the **master**
//!   `DIR/corosync.conf`, `DIR/datacenter.cfg`, `DIR/nodes/NAME/`, the shared key
//!   `DIR/priv/authkey` and the locks `DIR/priv/lock/<id>` ([`crate::cfs_lock`]).
//! - Every invocation on a node does what pmxcfs does on Proxmox VE ([`observe`]): it copies
//!   the master to the node's own corosync.conf when they differ (recording the synced
//!   version in `DIR/nodes/NAME/corosync-synced`), registers the host
//!   (`DIR/priv/pve-gitops/hosts/NAME`) and, when corosync runs, publishes the membership it
//!   sees (`DIR/priv/pve-gitops/membership/NAME.json`) for nodes whose corosync is down.
//! - Cluster-wide steps (nodelist and option edits, expected votes, datacenter.cfg) run on a
//!   quorate member holding the lock; the holder writes the master (`.new` + rename, the
//!   bumped text the planner made, after checking it still starts from the master's
//!   `config_version`), waits until every member has synced it, reloads with
//!   `corosync-cfgtool -R` and verifies that corosync runs the new `config_version`
//!   ([`apply`]). A refused reload rolls the master back and is reported.
//! - Node-local steps (create on the founder, install conf + authkey and start on a joining
//!   node) run only on their node ([`CorosyncTarget::can_run`]).
//!
//! Live state comes from the corosync tools' text output ([`tools`]), not from the
//! `rust-corosync` bindings: the tools are what an operator checks by hand, they need no
//! `-dev` packages at build time, and each call is a short-lived process with a time limit, so
//! a hung corosync cannot hang the controller.

pub mod apply;
pub mod observe;
pub mod tools;

use crate::observed::Observed;
use crate::plan::step::{Step, StepKind};
use crate::target::{Applied, Target, TargetError, TargetOptions};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the master corosync.conf inside the shared directory.
pub const MASTER_CONF: &str = "corosync.conf";
/// The shared authkey inside the shared directory.
pub const SHARED_AUTHKEY: &str = "priv/authkey";
/// Per-node record of the master version synced to the node's corosync.conf:
/// `DIR/nodes/NAME/corosync-synced` = `VERSION HASH`.
pub const SYNC_RECORD: &str = "corosync-synced";
/// Directory of host registrations: `DIR/priv/pve-gitops/hosts/NAME` (mtime = last seen).
pub const HOSTS_DIR: &str = "priv/pve-gitops/hosts";
/// The memberships published by running members, one file per node (`NAME.json`): each node
/// writes only its own, so no publish can overwrite another node's view.
pub const MEMBERSHIP_DIR: &str = "priv/pve-gitops/membership";

/// How to reach and drive corosync on this node.
#[derive(Debug, Clone)]
pub struct CorosyncOptions {
    /// This node's name (as in the nodelist).
    pub node: String,
    /// The shared directory.
    pub shared: PathBuf,
    /// This node's corosync.conf (what corosync reads).
    pub local_conf: PathBuf,
    /// This node's authkey.
    pub authkey: PathBuf,
    /// Command that starts corosync (None: no service manager and no `--start-cmd`).
    pub start: Option<Vec<String>>,
    /// Command that stops corosync.
    pub stop: Option<Vec<String>>,
    /// Node names of the manifest (hosts that may exist).
    pub manifest_nodes: BTreeSet<String>,
}

/// The `corosync` target.
#[derive(Debug, Clone)]
pub struct CorosyncTarget {
    opts: CorosyncOptions,
    /// What the local corosync reported at the last observation, and when. Routing decisions
    /// ([`Target::can_run`]) and an uncontended lock holder use it while it is younger than
    /// [`LIVE_FRESH`] instead of asking corosync again; applying a step consumes it.
    live: Option<(Instant, observe::Live)>,
}

/// How long an observation of the local corosync stands in for a new one (see
/// [`CorosyncTarget`]): a step's checks under the lock use it only when the lock was free at
/// the first attempt, so nothing this controller's protocol changes can have happened since.
pub const LIVE_FRESH: Duration = Duration::from_secs(1);

fn systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Parse `--start-cmd` / `--stop-cmd` (or default to `systemctl ACTION corosync` when systemd
/// runs).
///
/// # Errors
/// An unterminated quote or an empty command.
fn service_cmd(
    flag: &str,
    given: Option<&str>,
    action: &str,
) -> Result<Option<Vec<String>>, TargetError> {
    match given {
        Some(line) => tools::split_words(line)
            .map(Some)
            .map_err(|e| TargetError::Unavailable(format!("{flag}: {e}"))),
        None if systemd() => Ok(Some(vec![
            "systemctl".into(),
            action.into(),
            "corosync".into(),
        ])),
        None => Ok(None),
    }
}

impl CorosyncTarget {
    /// A target from explicit options.
    pub fn new(opts: CorosyncOptions) -> CorosyncTarget {
        CorosyncTarget { opts, live: None }
    }

    /// The last observation of the local corosync, if younger than [`LIVE_FRESH`].
    fn fresh_live(&self) -> Option<&observe::Live> {
        self.live
            .as_ref()
            .filter(|(at, _)| at.elapsed() < LIVE_FRESH)
            .map(|(_, l)| l)
    }

    /// The local quorum status: the fresh observation's, else corosync's now.
    fn status_now(&self) -> Option<tools::QuorumStatus> {
        match self.fresh_live() {
            Some(l) => l.status.clone(),
            None => observe::local_status(self),
        }
    }

    /// The target the command line describes.
    ///
    /// # Errors
    /// [`TargetError::Unavailable`]: no `--node` or `--config-dir`, a shared directory that
    /// does not exist, or a start/stop command that cannot be split into words.
    pub fn from_options(
        opts: &TargetOptions,
        cluster: &pve_gitops_schema::spec::Cluster,
    ) -> Result<CorosyncTarget, TargetError> {
        let node = opts.node.clone().ok_or_else(|| {
            TargetError::Unavailable(
                "--target corosync needs --node NAME (the node this controller runs on)".into(),
            )
        })?;
        let shared = opts.config_dir.clone().ok_or_else(|| {
            TargetError::Unavailable(
                "--target corosync needs --config-dir DIR (the cluster-wide shared directory: master corosync.conf, datacenter.cfg, priv/lock/)".into(),
            )
        })?;
        if !shared.is_dir() {
            return Err(TargetError::Unavailable(format!(
                "--config-dir {}: not a directory (create the shared directory first)",
                shared.display()
            )));
        }
        let authkey = opts.authkey.clone().unwrap_or_else(|| {
            opts.corosync_conf
                .parent()
                .unwrap_or(Path::new("/etc/corosync"))
                .join("authkey")
        });
        Ok(CorosyncTarget::new(CorosyncOptions {
            node,
            shared,
            local_conf: opts.corosync_conf.clone(),
            authkey,
            start: service_cmd("--start-cmd", opts.start_cmd.as_deref(), "start")?,
            stop: service_cmd("--stop-cmd", opts.stop_cmd.as_deref(), "stop")?,
            manifest_nodes: cluster.spec.nodes.iter().map(|n| n.name.clone()).collect(),
        }))
    }

    /// The options.
    pub fn options(&self) -> &CorosyncOptions {
        &self.opts
    }

    fn master_path(&self) -> PathBuf {
        self.opts.shared.join(MASTER_CONF)
    }

    /// Whether this node's corosync is running and in a quorate partition.
    fn quorate_member(&self) -> bool {
        self.status_now().is_some_and(|s| s.quorate)
    }

    /// The config_version corosync runs here: the fresh observation's, else asked now.
    fn running_now(&self) -> Option<u64> {
        match self.fresh_live() {
            Some(l) => l.running_version,
            None => observe::running_version(),
        }
    }
}

impl Target for CorosyncTarget {
    fn describe(&self) -> String {
        format!(
            "corosync on {} (shared {})",
            self.opts.node,
            self.opts.shared.display()
        )
    }

    /// One consistent observation: corosync is asked before the master and the lock are read,
    /// so a holder that wrote, reloaded and released the lock in between would leave a new
    /// master next to the old running versions with nobody holding the lock (a gate for
    /// nothing); then the observation is taken again (at most three times). While the lock is
    /// still held the mixed view is harmless — the run waits for the holder and observes
    /// again — and retrying then would only delay this node's install of the new master.
    fn observe(&mut self) -> Result<Observed, TargetError> {
        self.live = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = file_sig(&self.master_path());
            let (o, live) = observe::observe(self)?;
            let mixed = file_sig(&self.master_path()) != before && o.lock.is_none();
            if attempt >= 3 || !mixed {
                self.live = Some((Instant::now(), live));
                return Ok(o);
            }
        }
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        // A step changes what corosync reports: the observation is used at most by this step.
        let observed = self.fresh_live().cloned();
        self.live = None;
        apply::apply(self, step, observed)
    }

    /// Node-local steps run on their node; cluster-wide corosync steps on any quorate member
    /// (the lock makes sure only one of them applies a step); datacenter.cfg edits anywhere.
    fn can_run(&self, step: &Step) -> Result<(), String> {
        let me = self.opts.node.as_str();
        let member = || {
            if self.quorate_member() {
                Ok(())
            } else {
                Err(format!(
                    "`{}` needs a node whose corosync is a quorate member ({me} is not); the controller on such a node runs it",
                    step.summary
                ))
            }
        };
        match &step.kind {
            StepKind::CreateCluster(c) if c.founder != me => Err(format!(
                "the cluster is created on {} (its controller runs it)",
                c.founder
            )),
            StepKind::CreateCluster(_) => Ok(()),
            StepKind::JoinNode(j) if j.via == j.node && j.from_version == j.to_version => {
                if j.node == me {
                    Ok(())
                } else {
                    Err(format!(
                        "{} installs corosync.conf and starts corosync itself (its controller runs it)",
                        j.node
                    ))
                }
            }
            StepKind::RemoveNode(r) if r.node == me => Err(format!(
                "{me} cannot remove itself; a quorate member's controller runs `{}`",
                step.summary
            )),
            // The reload for members that missed one runs on a member that runs the version.
            StepKind::UpdateCorosync(u) if u.from_version == u.to_version => {
                member()?;
                match self.running_now() {
                    Some(v) if v == u.to_version => Ok(()),
                    v => Err(format!(
                        "`{}` runs on a member that runs config_version {} ({me} runs {})",
                        step.summary,
                        u.to_version,
                        v.map_or_else(|| "?".to_string(), |v| v.to_string())
                    )),
                }
            }
            StepKind::JoinNode(_) | StepKind::RemoveNode(_) | StepKind::UpdateCorosync(_) => {
                member()
            }
            // `corosync-quorumtool -e` is how an inquorate partition regains quorum.
            StepKind::SetExpectedVotes(_) if self.status_now().is_some() => Ok(()),
            StepKind::SetExpectedVotes(_) => Err(format!(
                "`{}` runs on a node whose corosync is running ({me}'s is not)",
                step.summary
            )),
            StepKind::SetDatacenter(_) => Ok(()),
            StepKind::MigrateGuest(_) => Err(
                "the corosync target does not run guests; migrations need the pve target".into(),
            ),
            StepKind::Wait(_) => Err("a gate is never applied".into()),
        }
    }

    fn per_node(&self) -> bool {
        true
    }

    /// Every cluster-wide step takes `file-corosync_conf` (or `file-datacenter_cfg`) and
    /// re-checks the master's version (or the old value) under it.
    fn locks_each_step(&self) -> bool {
        true
    }

    /// Polls the shared directory (`stat`s only) every 10 ms until the master, the
    /// corosync.conf lock or the published membership changes; a new master is installed here
    /// straight away.
    fn await_change(&mut self, limit: Duration) {
        let lock = crate::cfs_lock::lock_path(&self.opts.shared, &master_lock_id());
        let paths = [
            self.master_path(),
            lock.join(crate::cfs_lock::OWNER_FILE),
            self.opts.shared.join(MEMBERSHIP_DIR),
        ];
        let sig = || paths.iter().map(|p| file_sig(p)).collect::<Vec<_>>();
        let first = sig();
        // A new master is installed at once, before the caller's observation (which asks
        // corosync first): the lock holder is waiting for this node's sync record.
        let mut replica = observe::Replica::from_now(self);
        let start = Instant::now();
        while start.elapsed() < limit {
            std::thread::sleep(limit.saturating_sub(start.elapsed()).min(CHANGE_POLL));
            replica.tick();
            if sig() != first {
                return;
            }
        }
    }

    /// The corosync.conf lock held by another node's controller that refreshed it within
    /// [`BUSY_FRESH`] (a holder refreshes it at least every 5 s; an older lock is a dead
    /// controller's, waited for by nobody until it is taken over).
    fn busy_elsewhere(&self, observed: &Observed) -> Option<String> {
        observed.lock.as_ref()?;
        let held = crate::cfs_lock::holder(&self.opts.shared, &master_lock_id())?;
        (held.holder != self.opts.node && Duration::from_secs(held.age_secs) < BUSY_FRESH).then(
            || {
                format!(
                    "{}'s controller holds the corosync.conf lock (a step in progress)",
                    held.holder
                )
            },
        )
    }
}

/// The cfs lock id of the master corosync.conf (`file-corosync_conf`).
pub(crate) fn master_lock_id() -> String {
    pve_gitops_schema::pmxcfs::lock_id_for_file(MASTER_CONF)
}

/// A corosync.conf lock refreshed longer ago than this is not "another controller at work".
pub const BUSY_FRESH: Duration = Duration::from_secs(15);

/// How often [`CorosyncTarget`]'s `await_change` looks at the shared directory.
const CHANGE_POLL: Duration = Duration::from_millis(10);

/// (modified, length, inode) of a file; None when it does not exist. A file replaced by
/// rename gets a new inode, so every `.new` + rename write shows.
pub(crate) fn file_sig(path: &Path) -> Option<(Option<std::time::SystemTime>, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len(), m.ino()))
}

/// A short, stable digest of a text (FNV-1a 64), for sync records. Not cryptographic: it only
/// tells two versions of corosync.conf with the same `config_version` apart.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A corosync tool by name: from `PATH`, else `/usr/sbin/NAME` (where Debian installs them).
pub fn tool(name: &str) -> String {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if on_path {
        name.to_string()
    } else {
        format!("/usr/sbin/{name}")
    }
}
