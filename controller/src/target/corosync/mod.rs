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
//!   sees (`DIR/priv/pve-gitops/membership.json`) for nodes whose corosync is down.
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

/// Name of the master corosync.conf inside the shared directory.
pub const MASTER_CONF: &str = "corosync.conf";
/// The shared authkey inside the shared directory.
pub const SHARED_AUTHKEY: &str = "priv/authkey";
/// Per-node record of the master version synced to the node's corosync.conf:
/// `DIR/nodes/NAME/corosync-synced` = `VERSION HASH`.
pub const SYNC_RECORD: &str = "corosync-synced";
/// Directory of host registrations: `DIR/priv/pve-gitops/hosts/NAME` (mtime = last seen).
pub const HOSTS_DIR: &str = "priv/pve-gitops/hosts";
/// The membership last published by a running member.
pub const MEMBERSHIP_FILE: &str = "priv/pve-gitops/membership.json";

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
}

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
        CorosyncTarget { opts }
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
        observe::local_status(self).is_some_and(|s| s.quorate)
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

    fn observe(&mut self) -> Result<Observed, TargetError> {
        observe::observe(self)
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        apply::apply(self, step)
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
            StepKind::JoinNode(_) | StepKind::RemoveNode(_) | StepKind::UpdateCorosync(_) => {
                member()
            }
            // `corosync-quorumtool -e` is how an inquorate partition regains quorum.
            StepKind::SetExpectedVotes(_) if observe::local_status(self).is_some() => Ok(()),
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
