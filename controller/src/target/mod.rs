//! Targets: where `observe` reads and `apply` writes (DESIGN.md §3). Every target exposes the
//! same trait; the planner never knows which one it has.

pub mod corosync;
pub mod pve;
pub mod pve_api;
pub mod sim;

use crate::observed::Observed;
use crate::plan::step::Step;
use std::path::PathBuf;

/// What went wrong talking to a target. Variants are named after the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Reading a file or directory of the target failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing a file or directory of the target failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file of the target could not be parsed.
    #[error("{path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// What is wrong, with line:col where known.
        message: String,
    },
    /// The cluster refused the step (as corosync / pvecm would), with its reason.
    #[error("{step} refused: {reason}")]
    Refused {
        /// The step's summary.
        step: String,
        /// Why.
        reason: String,
    },
    /// A command failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line (never with secrets).
        command: String,
        /// Its error output or exit status.
        message: String,
    },
    /// The step was planned from a state that has changed since (another controller got there
    /// first: the config_version or value it started from is gone). Not an error: re-observe
    /// and re-plan.
    #[error("{step}: the cluster changed since it was planned ({reason}); re-planning")]
    Stale {
        /// The step's summary.
        step: String,
        /// What changed.
        reason: String,
    },
    /// The target cannot be used (missing directory, bad argument).
    #[error("{0}")]
    Unavailable(String),
}

/// What applying a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// One line for the progress output.
    pub message: String,
    /// How long it took (simulated for the sim target), in milliseconds.
    pub duration_ms: u64,
}

/// A cluster the controller can observe and change.
pub trait Target {
    /// How to show the target to the operator, e.g. `sim:DIR (simulated cluster)`.
    fn describe(&self) -> String;

    /// Read the live state.
    ///
    /// # Errors
    /// The cluster's files or tools could not be read.
    fn observe(&mut self) -> Result<Observed, TargetError>;

    /// Carry out one step. Refuses (with the cluster's own reason) what the real cluster
    /// would refuse; never reports success for a change that did not take effect.
    ///
    /// # Errors
    /// The step was refused or failed; the cluster is as it was, or the step's effect is
    /// partial in a way a new `observe` shows.
    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError>;

    /// Whether this controller may run `step` here (node-local steps run only on their own
    /// node); `Err` says who has to run it. The default runs everything (one controller that
    /// reaches the whole cluster, like the simulator).
    fn can_run(&self, step: &Step) -> Result<(), String> {
        let _ = step;
        Ok(())
    }

    /// Whether this target runs as one controller per node, so that a step `can_run` leaves
    /// to another node is that node's controller's to run (and worth waiting for). The
    /// default: no (one controller reaches the whole cluster; a step it cannot run needs the
    /// operator).
    fn per_node(&self) -> bool {
        false
    }

    /// Whether this target takes a cluster-wide lock for every cluster-wide step itself and
    /// re-checks its starting point under it, so that controllers on several nodes may apply
    /// at the same time (each step still runs once). The `watch` daemons then take no lock of
    /// their own for a run, and wait for each other inside it. The default: no.
    fn locks_each_step(&self) -> bool {
        false
    }

    /// Whether another controller is changing the cluster right now (it holds the cluster
    /// lock), so that `observed` may show its step half done; `Some` says who. A run with
    /// [`crate::reconcile::Options::peer_wait`] that would stop waits for it instead. The
    /// default: never (one controller reaches the whole cluster).
    fn busy_elsewhere(&self, observed: &Observed) -> Option<String> {
        let _ = observed;
        None
    }

    /// While a run waits for other controllers: return when the cluster may have changed, at
    /// the latest after `limit`. The default sleeps [`crate::reconcile::PEER_POLL`] (or
    /// `limit`, if shorter); a target that can see changes cheaply returns as soon as it
    /// does.
    fn await_change(&mut self, limit: std::time::Duration) {
        std::thread::sleep(limit.min(crate::reconcile::PEER_POLL));
    }
}

/// How to reach the cluster (from the command line or the daemon's configuration).
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// `--target`: `sim:DIR`, `corosync`, or None for this machine's default.
    pub spec: Option<String>,
    /// `--node`: the node this controller runs on.
    pub node: Option<String>,
    /// `--config-dir` (corosync target).
    pub config_dir: Option<PathBuf>,
    /// `--corosync-conf` (corosync target).
    pub corosync_conf: PathBuf,
    /// `--authkey` (corosync target).
    pub authkey: Option<PathBuf>,
    /// `--start-cmd` (corosync target).
    pub start_cmd: Option<String>,
    /// `--stop-cmd` (corosync target).
    pub stop_cmd: Option<String>,
    /// `--join-password-file` (pve targets): the peer's root password for a join.
    pub join_password_file: Option<PathBuf>,
    /// `--api-token-file` (pve-api target): `USER@REALM!TOKENID=SECRET`.
    pub api_token_file: Option<PathBuf>,
    /// `--fingerprint` (pve targets): SHA-256 certificate fingerprints; pve-api pins the
    /// API server's certificate to one of them, pve passes the first to `pvecm add`.
    pub fingerprints: Vec<String>,
    /// `--ca-bundle` (pve-api target): PEM CA certificates to verify the API server with.
    pub ca_bundle: Option<PathBuf>,
    /// `--use-ssh` (pve target): join with `pvecm add --use_ssh 1`.
    pub use_ssh: bool,
    /// `--with-local-disks` (pve targets): migrate qemu guests with their local disks.
    pub with_local_disks: bool,
    /// `--api-node NAME=URL` (pve-api target): the API of a host that is not (yet) a
    /// member, for create and join, which run on that host.
    pub api_nodes: Vec<String>,
    /// `--peer https://MEMBER:8006` (pve target): on a standalone node, observe the cluster
    /// through a member's API (with `api_token_file` and `fingerprints` / `ca_bundle`) so the
    /// node plans and runs its own join.
    pub peer: Option<String>,
}

/// Open the target `opts` names (None: the default for this machine).
///
/// Returns the target and, for the default, a note for the first output line.
///
/// # Errors
/// An unknown target kind, or a target that cannot be opened.
pub fn resolve(
    opts: &TargetOptions,
    cluster: &pve_gitops_schema::spec::Cluster,
) -> Result<(Box<dyn Target>, Option<String>), TargetError> {
    if opts.peer.is_some() && !matches!(opts.spec.as_deref(), None | Some("pve")) {
        return Err(TargetError::Unavailable(
            "--peer is for the pve target (a standalone Proxmox VE node joining a cluster)".into(),
        ));
    }
    match opts.spec.as_deref() {
        Some(spec) if spec.starts_with("sim:") => {
            let dir = &spec["sim:".len()..];
            if dir.is_empty() {
                return Err(TargetError::Unavailable(
                    "sim: needs a directory, e.g. --target sim:.pve-gitops/sim".into(),
                ));
            }
            Ok((Box::new(sim::SimTarget::open(dir)?), None))
        }
        Some("corosync") => Ok((
            Box::new(corosync::CorosyncTarget::from_options(opts, cluster)?),
            None,
        )),
        Some("pve") => Ok((Box::new(pve::PveTarget::open(pve_options(opts, cluster)?)?), None)),
        Some(spec) if spec.starts_with("pve-api:") => Ok((
            Box::new(pve_api::ApiTarget::open(&spec["pve-api:".len()..], opts, cluster)?),
            None,
        )),
        Some(other) => Err(TargetError::Unavailable(format!(
            "unknown target `{other}`; use sim:DIR (a simulated cluster, or a copy of /etc/pve), corosync, pve or pve-api:https://HOST:8006"
        ))),
        None => default_target(opts, cluster),
    }
}

/// The `pve` target's options from the command line and the manifest's node names.
///
/// # Errors
/// `--peer` without a usable token or trust, or a bad URL.
fn pve_options(
    opts: &TargetOptions,
    cluster: &pve_gitops_schema::spec::Cluster,
) -> Result<pve::PveOptions, TargetError> {
    let peer = match &opts.peer {
        Some(url) => {
            let (token, trust) = pve_api::credentials(opts, "--peer")?;
            Some(
                pve_api::client::ApiClient::new(url, token, &trust)
                    .map_err(|e| TargetError::Unavailable(format!("--peer {url}: {e}")))?,
            )
        }
        None => None,
    };
    Ok(pve::PveOptions {
        node: opts.node.clone(),
        manifest_nodes: cluster.spec.nodes.iter().map(|n| n.name.clone()).collect(),
        founder: cluster
            .present_nodes()
            .min_by_key(|n| n.nodeid)
            .map(|n| n.name.clone()),
        peer,
        join_password_file: opts.join_password_file.clone(),
        fingerprint: opts.fingerprints.first().cloned(),
        use_ssh: opts.use_ssh,
        with_local_disks: opts.with_local_disks,
        ..pve::PveOptions::default()
    })
}

/// Where `reconcile` plans when no `--target` is given and this machine is no cluster node.
pub const DEFAULT_SIM_DIR: &str = ".pve-gitops/sim";

/// Whether this machine is a Proxmox VE cluster node (`/etc/pve/.members` exists): then the
/// default target is `pve`.
pub fn is_pve_node() -> bool {
    std::path::Path::new("/etc/pve/.members").exists()
}

/// The `--target` in effect: the one given, else `pve` on a Proxmox VE node, else the
/// embedded simulated cluster (`sim:.pve-gitops/sim`) — the choice `resolve` makes.
pub fn effective_spec(opts: &TargetOptions) -> String {
    match &opts.spec {
        Some(s) => s.clone(),
        None if is_pve_node() => "pve".into(),
        None => format!("sim:{DEFAULT_SIM_DIR}"),
    }
}

fn default_target(
    opts: &TargetOptions,
    cluster: &pve_gitops_schema::spec::Cluster,
) -> Result<(Box<dyn Target>, Option<String>), TargetError> {
    if is_pve_node() {
        return Ok((
            Box::new(pve::PveTarget::open(pve_options(opts, cluster)?)?),
            Some("this is a Proxmox VE node (/etc/pve/.members exists)".to_string()),
        ));
    }
    if opts.peer.is_some() {
        return Err(TargetError::Unavailable(
            "--peer is for the pve target, and this is no Proxmox VE node (/etc/pve/.members does not exist)".into(),
        ));
    }
    let dir = std::path::Path::new(DEFAULT_SIM_DIR);
    let note = if dir.join(sim::EXTRA_FILE).exists() || dir.join("corosync.conf").exists() {
        "no real cluster here, using the embedded simulated cluster".to_string()
    } else {
        let names: Vec<String> = cluster.spec.nodes.iter().map(|n| n.name.clone()).collect();
        sim::init_from_names(dir, &names, 0, 65536)?;
        format!(
            "no real cluster here, using the embedded simulated cluster (created with standalone hosts {})",
            names.join(", ")
        )
    };
    Ok((Box::new(sim::SimTarget::open(dir)?), Some(note)))
}
