//! The `pve` target: a Proxmox VE node (DESIGN.md §3). Observes `/etc/pve` (corosync.conf,
//! datacenter.cfg, `.members`, `.vmlist`, guest configs) and corosync's tools (votequorum
//! numbers, the config_version every member runs); applies steps with `pvecm`, `qm`, `pct`
//! and pmxcfs file edits under pmxcfs cfs locks. Every command is an argument vector
//! ([`argv`]), never a shell string; the join password goes to `pvecm add`'s standard input
//! and is never logged.
//!
//! The root directory and the command runner are injectable ([`PveTarget::with_root`]), so the
//! whole target runs in tests against a fixture tree and a [`runner::ScriptedRunner`].
//!
//! Where steps run ([`Target::can_run`]): a join on the joining node, a create on the
//! founding node, a migration on the guest's node, delnode on a member other than the node
//! removed, cluster-wide edits on a quorate member.
//!
//! ## Limitations
//!
//! - No real Proxmox VE runs in this project's tests: the command vectors, the parsers and
//!   the file protocol are tested against self-written fixtures that follow
//!   reference/domain.md, not against pvecm itself.
//! - A standalone node (no corosync.conf in `/etc/pve`) cannot see the cluster it is to join
//!   by itself: give it `--peer https://MEMBER:8006` ([`PveOptions::peer`]) and it observes
//!   the cluster through that member's API (same token and trust options as the pve-api
//!   target) with itself merged in as a standalone host, so it plans and runs its own join.
//!   Without `--peer` it plans as if no cluster existed and says so. Nodes of the manifest
//!   that are not in the nodelist are reported as hosts that are up (their own controller
//!   runs the join and its preflight checks them for real).
//! - Host memory is not read (0), so evacuation spreads guests by count.

mod apply;
pub mod argv;
mod observe;
pub mod parse;
pub mod preflight;
pub mod runner;

use crate::cfs_lock::LockOptions;
use crate::observed::Observed;
use crate::plan::step::{Gate, Step, StepKind};
use crate::target::pve_api::client::ApiClient;
use crate::target::{Applied, Target, TargetError};
pub use parse::Generation;
use runner::{Runner, SystemRunner};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where pmxcfs is mounted on a PVE node.
pub const PVE_ROOT: &str = "/etc/pve";
/// Where corosync keeps its local files (authkey, the local corosync.conf).
pub const COROSYNC_DIR: &str = "/etc/corosync";

/// How the `pve` target behaves (from the command line).
#[derive(Debug, Clone)]
pub struct PveOptions {
    /// This node's name (default: `.members` `nodename`, else the host name).
    pub node: Option<String>,
    /// The node names of the manifest (nodes not in the nodelist are shown as hosts).
    pub manifest_nodes: Vec<String>,
    /// The manifest's founding node (lowest nodeid): the one standalone node that needs no
    /// `--peer`.
    pub founder: Option<String>,
    /// `--peer`: a cluster member's API, through which a standalone node observes the
    /// cluster it is to join (and gets the peer's address and fingerprint for `pvecm add`).
    pub peer: Option<ApiClient>,
    /// File holding the peer's root password for `pvecm add` over the join API.
    pub join_password_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the peer's API certificate (`pvecm add --fingerprint`).
    pub fingerprint: Option<String>,
    /// Join over ssh (`pvecm add --use_ssh 1`) instead of the join API.
    pub use_ssh: bool,
    /// Add `--with-local-disks` to `qm migrate`.
    pub with_local_disks: bool,
    /// The directory holding corosync's authkey (`/etc/corosync`).
    pub corosync_dir: PathBuf,
    /// cfs lock timing.
    pub lock: LockOptions,
    /// Force a generation instead of detecting it.
    pub generation: Option<Generation>,
    /// Time limit of short commands (status tools, `pvecm expected`, delnode).
    pub command_timeout: Duration,
    /// Time limit of create, join and a migration.
    pub long_timeout: Duration,
    /// How long to wait for a reload, a restarted node or a moved guest config.
    pub settle_timeout: Duration,
    /// Time between polls while waiting.
    pub poll: Duration,
}

impl Default for PveOptions {
    fn default() -> Self {
        PveOptions {
            node: None,
            manifest_nodes: Vec::new(),
            founder: None,
            peer: None,
            join_password_file: None,
            fingerprint: None,
            use_ssh: false,
            with_local_disks: false,
            corosync_dir: PathBuf::from(COROSYNC_DIR),
            lock: LockOptions::pmxcfs(),
            generation: None,
            command_timeout: Duration::from_secs(60),
            long_timeout: Duration::from_secs(6 * 3600),
            settle_timeout: Duration::from_secs(120),
            poll: Duration::from_secs(1),
        }
    }
}

/// What `can_run` needs from the last observation.
#[derive(Debug, Clone, Default)]
struct Seen {
    local: String,
    member: bool,
    quorate: bool,
    /// No corosync.conf in the local `/etc/pve`.
    standalone: bool,
}

/// A Proxmox VE node.
pub struct PveTarget {
    root: PathBuf,
    runner: Box<dyn Runner>,
    opts: PveOptions,
    seen: Option<Seen>,
}

impl std::fmt::Debug for PveTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PveTarget")
            .field("root", &self.root)
            .field("node", &self.opts.node)
            .finish_non_exhaustive()
    }
}

impl PveTarget {
    /// The node this process runs on: `/etc/pve`, real commands.
    ///
    /// # Errors
    /// [`TargetError::Unavailable`] when `/etc/pve` is not mounted (no `.members`).
    pub fn open(opts: PveOptions) -> Result<PveTarget, TargetError> {
        let root = PathBuf::from(PVE_ROOT);
        if !root.join(".members").exists() {
            return Err(TargetError::Unavailable(
                "the pve target needs a Proxmox VE node: /etc/pve/.members does not exist (is pve-cluster running?)"
                    .into(),
            ));
        }
        Ok(PveTarget {
            root,
            runner: Box::new(SystemRunner),
            opts,
            seen: None,
        })
    }

    /// A target over another root directory (a fixture tree) and runner; locks expire by
    /// mtime there (no pmxcfs to do it).
    pub fn with_root(root: impl Into<PathBuf>, runner: Box<dyn Runner>) -> PveTarget {
        PveTarget {
            root: root.into(),
            runner,
            opts: PveOptions {
                lock: LockOptions::default(),
                ..PveOptions::default()
            },
            seen: None,
        }
    }

    /// Replace the options.
    pub fn options(mut self, opts: PveOptions) -> PveTarget {
        self.opts = opts;
        self
    }

    /// The options.
    pub fn opts(&self) -> &PveOptions {
        &self.opts
    }

    /// The root directory (`/etc/pve`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The PVE generation: the option, else `corosync -v`, else the shape of corosync.conf,
    /// else corosync 3.
    pub fn generation(&mut self) -> Generation {
        if let Some(g) = self.opts.generation {
            return g;
        }
        if let Ok(out) = self
            .runner
            .run(&argv::corosync_version(), None, self.opts.command_timeout)
        {
            if let Some(g) = Generation::from_version_output(&out.stdout) {
                return g;
            }
        }
        std::fs::read_to_string(self.root.join("corosync.conf"))
            .ok()
            .and_then(|t| pve_gitops_schema::corosync::Document::parse(&t).ok())
            .map_or(Generation::Corosync3, |d| Generation::from_conf(&d.view()))
    }

    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<runner::Output, TargetError> {
        self.runner
            .run(argv, stdin, timeout)
            .map_err(|message| TargetError::Command {
                command: runner::describe(argv),
                message,
            })
    }
}

/// Why a gate is not satisfied in `o` (None: satisfied). Shared by the node and API targets.
pub(crate) fn gate_unsatisfied(o: &Observed, gate: &Gate) -> Option<String> {
    match gate {
        Gate::PowerOff { node } => o
            .membership
            .online
            .contains(node)
            .then(|| format!("{node} is still a member (powered on)")),
        Gate::PowerOn { node } => {
            (!o.hosts.get(node).is_some_and(|h| h.online)).then(|| format!("{node} is not up"))
        }
        Gate::ConfigVersion { version, .. } => {
            let lagging: Vec<String> = o
                .node_config_versions
                .iter()
                .filter(|(_, v)| **v != *version)
                .map(|(n, v)| format!("{n} runs {v}"))
                .collect();
            (!lagging.is_empty() || o.config_version() != *version).then(|| {
                format!(
                    "corosync.conf has config_version {}; {}",
                    o.config_version(),
                    if lagging.is_empty() {
                        "members agree".to_string()
                    } else {
                        lagging.join(", ")
                    }
                )
            })
        }
        Gate::Quorum { .. } => (!o.membership.quorate).then(|| {
            format!(
                "not quorate: {} of {} expected votes present, quorum {}",
                o.membership.total_votes, o.membership.expected_votes, o.membership.quorum
            )
        }),
        Gate::Evacuate { node, .. } => {
            let left: Vec<String> = o.guests_on(node).map(|g| g.vmid.to_string()).collect();
            (!left.is_empty()).then(|| format!("{node} still holds guests {}", left.join(", ")))
        }
    }
}

impl Target for PveTarget {
    fn describe(&self) -> String {
        if self.root == Path::new(PVE_ROOT) {
            "pve (this Proxmox VE node)".to_string()
        } else {
            format!("pve:{} (Proxmox VE node files)", self.root.display())
        }
    }

    fn observe(&mut self) -> Result<Observed, TargetError> {
        let (o, local, standalone) = observe::observe(self)?;
        self.seen = Some(Seen {
            member: o.membership.online.contains(&local),
            quorate: o.membership.quorate,
            local,
            standalone,
        });
        Ok(o)
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        apply::apply(self, step)
    }

    /// A controller on every node, each running its node's steps.
    fn per_node(&self) -> bool {
        true
    }

    fn can_run(&self, step: &Step) -> Result<(), String> {
        let Some(seen) = &self.seen else {
            return Ok(());
        };
        let local = seen.local.as_str();
        let on = |node: &str, what: &str| -> Result<(), String> {
            if node == local {
                Ok(())
            } else {
                Err(format!("{what} runs on {node} (this is {local})"))
            }
        };
        let member = || -> Result<(), String> {
            if seen.member && seen.quorate {
                Ok(())
            } else {
                Err(format!(
                    "needs a quorate cluster member ({local} is {})",
                    if seen.member {
                        "a member of a partition without quorum"
                    } else {
                        "not a running member"
                    }
                ))
            }
        };
        match &step.kind {
            StepKind::CreateCluster(c) if seen.standalone && self.opts.peer.is_none() => {
                let hint = observe::needs_peer(local, &self.root);
                on(&c.founder, "create").map_err(|e| format!("{e}; {hint}"))
            }
            StepKind::CreateCluster(c) => on(&c.founder, "create"),
            StepKind::JoinNode(j) if j.from_version != j.to_version && j.node != local => Err(
                format!(
                    "the join runs on {0} (this is {local}): run pve-gitops on {0} with --peer https://MEMBER:8006 so that it sees this cluster",
                    j.node
                ),
            ),
            StepKind::JoinNode(j) => on(&j.node, "the join"),
            StepKind::MigrateGuest(m) => on(&m.from, "the migration"),
            StepKind::RemoveNode(r) => {
                if r.node == local {
                    Err(format!(
                        "delnode {} must run on another member (Cannot delete myself from cluster!)",
                        r.node
                    ))
                } else {
                    member()
                }
            }
            StepKind::SetExpectedVotes(_) => {
                if seen.member {
                    Ok(())
                } else {
                    Err(format!("pvecm expected needs corosync running on {local}"))
                }
            }
            StepKind::UpdateCorosync(_) | StepKind::SetDatacenter(_) => member(),
            StepKind::Wait(_) => Ok(()),
        }
    }
}
