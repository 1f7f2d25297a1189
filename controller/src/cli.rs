//! Command-line arguments (clap derive). Usage errors exit with 2.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// GitOps controller for Proxmox VE and corosync clusters.
#[derive(Debug, Parser)]
#[command(name = "pve-gitops", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of `validate` and `conf check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable, rustc-style snippets with a caret.
    Text,
    /// One JSON object.
    Json,
    /// GitHub Actions workflow annotations (`::error file=..,line=..,col=..::msg`).
    Github,
}

/// Output format of `reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// Like `terraform plan`: one line per step, unified diffs, a summary.
    Text,
    /// One JSON object (see README "JSON output").
    Json,
}

/// Kind of a pmxcfs config file for `conf check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfKind {
    /// corosync.conf
    Corosync,
    /// datacenter.cfg
    Datacenter,
}

/// The subcommands.
// Parsed once per process: boxing the large target options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests (files or directories, recursively *.yaml / *.yml); all errors at once.
    ///
    /// Exit codes: 0 valid, 1 invalid, 2 error (unreadable file, usage).
    Validate {
        /// Manifest files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Plan (`--dry-run`) or apply the changes that bring a cluster to the manifest.
    ///
    /// Exit codes: dry run 0 in sync, 1 changes pending (blocked steps included), 2 error
    /// (invalid manifest, unreadable cluster, refused plan); apply 0 converged, 1 stopped at a
    /// `wait` gate, 2 error.
    ///
    /// Without --target: the `pve` target on a Proxmox VE node (/etc/pve/.members exists);
    /// otherwise the embedded simulated cluster in .pve-gitops/sim (created from the manifest
    /// on first use), and the first output line says so.
    Reconcile {
        /// The Cluster manifest.
        #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
        file: PathBuf,
        /// Where the cluster is and how to reach it.
        #[command(flatten)]
        target: TargetArgs,
        /// Only show the plan.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
        output: PlanOutput,
        /// Stop after this many applied steps.
        #[arg(long, default_value_t = 10_000, hide = true)]
        max_steps: usize,
        /// Targets with a controller on every node (corosync, pve): when the next step must
        /// run on another node, or another node's controller holds the cluster lock mid-step,
        /// wait this long for it (re-observing) before stopping with exit 1; `0s`: stop at
        /// once. Controllers started together on every node finish together.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = pve_gitops::daemon::parse_duration)]
        peer_wait: std::time::Duration,
    },
    /// Print the JSON Schema of the Cluster manifest.
    Schema,
    /// Work with corosync.conf and datacenter.cfg files.
    Conf {
        /// What to do.
        #[command(subcommand)]
        action: ConfAction,
    },
    /// Write the manifest that describes an /etc/pve-like directory.
    Import {
        /// The config filesystem directory (a copy of /etc/pve, or a sim directory).
        #[arg(long = "config-fs", value_name = "DIR")]
        config_fs: PathBuf,
        /// Write the manifest here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Work with a simulated cluster (`--target sim:DIR`): create it, power hosts off and
    /// on, show it. Exit codes: 0 done, 2 error (unknown host, unreadable directory, usage).
    Sim {
        /// What to do.
        #[command(subcommand)]
        action: SimAction,
    },
    /// Run the GitOps daemon: keep the cluster at the newest revision of a git repository or
    /// a local path, correct (or report) drift, serve a webhook and metrics. See docs/watch.md.
    ///
    /// Exit codes: 0 after a graceful shutdown (SIGTERM / SIGINT: the running step finishes),
    /// 2 on a configuration or startup error, 130 when a second signal aborted.
    Watch(Box<WatchArgs>),
    /// Show the daemon's status: Ready / Reconciling / Stalled conditions, revisions,
    /// config_version, pending gates, the last reconciles.
    ///
    /// Exit codes: 0 Ready, 1 not Ready, 2 no status file or an error.
    Status {
        /// The daemon's state directory.
        #[arg(long, value_name = "DIR", default_value = pve_gitops::status::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
        output: PlanOutput,
    },
    /// Suspend applying: the daemon keeps observing and reports drift and new revisions,
    /// but changes nothing until `resume`.
    Suspend {
        /// The daemon's state directory.
        #[arg(long, value_name = "DIR", default_value = pve_gitops::status::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Why (shown in the status).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume applying after `suspend`.
    Resume {
        /// The daemon's state directory.
        #[arg(long, value_name = "DIR", default_value = pve_gitops::status::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

/// Log format of `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line (for log collectors).
    Json,
}

/// What `watch` does with drift found by a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftMode {
    /// Apply the steps that bring the cluster back to the manifest.
    Correct,
    /// Only report drift (status, metrics, log); new revisions are still applied.
    Report,
}

/// Options of `watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Where the manifests are: `git+file:///PATH`, `git+ssh://[USER@]HOST/PATH`,
    /// `git+https://HOST/PATH`, or a local file or directory (watched for changes).
    #[arg(long, value_name = "SRC")]
    pub source: String,
    /// git: the branch to follow.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// git: a manifest file or directory inside the repository (default: the root).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// The cluster's `metadata.name` when the source holds several manifests.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Where the cluster is and how to reach it.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Status file, suspend flag and git cache.
    #[arg(long, value_name = "DIR", default_value = pve_gitops::status::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Periodic resync: re-observe the cluster and correct (or report) drift.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = pve_gitops::daemon::parse_duration)]
    pub interval: std::time::Duration,
    /// How often to poll the source for a new revision (the webhook makes it immediate).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = pve_gitops::daemon::parse_duration)]
    pub poll_interval: std::time::Duration,
    /// How often to re-check a `wait` gate, a step for another node or a held cluster lock.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = pve_gitops::daemon::parse_duration)]
    pub gate_interval: std::time::Duration,
    /// Quiet time after a burst of file events or webhook calls before reconciling.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = pve_gitops::daemon::parse_duration)]
    pub debounce: std::time::Duration,
    /// Correct drift found by a resync, or only report it.
    #[arg(long, value_enum, default_value_t = DriftMode::Correct)]
    pub drift: DriftMode,
    /// git: allow applying a commit that does not descend from the applied one (a
    /// force-push back, a rewritten branch).
    #[arg(long)]
    pub allow_rewind: bool,
    /// git: refuse commits without a valid signature from --allowed-signers.
    #[arg(long, requires = "allowed_signers")]
    pub verify_signatures: bool,
    /// git: allowed signers (SSH, the `gpg.ssh.allowedSignersFile` format).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// git: GNUPGHOME holding the trusted keys for GPG-signed commits.
    #[arg(long, value_name = "DIR")]
    pub gpg_home: Option<PathBuf>,
    /// git over ssh: the private key file.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// git over https: file holding the token (default: $PVE_GITOPS_HTTPS_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub https_token_file: Option<PathBuf>,
    /// git over https: the user name sent with the token.
    #[arg(long, value_name = "NAME", default_value = "git")]
    pub https_username: String,
    /// Serve the webhook receiver on ADDR (HTTPS unless --insecure-http).
    #[arg(long, value_name = "ADDR")]
    pub webhook_listen: Option<std::net::SocketAddr>,
    /// File holding the webhook's HMAC secret (required with --webhook-listen).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// PEM certificate chain of the webhook receiver.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the webhook receiver.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve the webhook over plain HTTP (only on a loopback address, e.g. behind a proxy).
    #[arg(long)]
    pub insecure_http: bool,
    /// Serve Prometheus metrics on ADDR at /metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Stop a reconcile after this many applied steps.
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub max_steps: usize,
    /// Pause after every applied step (tests, benchmarks).
    #[arg(long, value_name = "DURATION", hide = true, value_parser = pve_gitops::daemon::parse_duration)]
    pub step_pause: Option<std::time::Duration>,
    /// corosync target (one daemon on every node, each step locked by itself): how long a
    /// run waits for the other nodes' daemons — the next step is another node's, or another daemon holds the
    /// corosync.conf lock mid-step (it may need this node: to install the new master, to start
    /// corosync again in a rolling restart) — before it stops (see `reconcile --peer-wait`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = pve_gitops::daemon::parse_duration)]
    pub peer_wait: std::time::Duration,
}

/// How to reach the cluster (`--target` and its options).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// `sim:DIR` (simulated cluster kept in DIR) or `corosync` (plain corosync 3 on this
    /// node; needs --node and --config-dir).
    #[arg(long, value_name = "T")]
    pub target: Option<String>,
    /// The node this controller runs on (real targets).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// corosync target: the cluster-wide shared directory (the role /etc/pve plays on
    /// Proxmox: master corosync.conf, datacenter.cfg, guests, priv/lock/).
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// corosync target: this node's corosync.conf.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/corosync/corosync.conf"
    )]
    pub corosync_conf: PathBuf,
    /// corosync target: this node's authkey (default: next to --corosync-conf).
    #[arg(long, value_name = "PATH")]
    pub authkey: Option<PathBuf>,
    /// corosync target: command that starts corosync (split like a shell would, never run
    /// through a shell; default: the service manager).
    #[arg(long, value_name = "CMD")]
    pub start_cmd: Option<String>,
    /// corosync target: command that stops corosync (default: the service manager).
    #[arg(long, value_name = "CMD")]
    pub stop_cmd: Option<String>,
    /// pve / pve-api targets: file holding the peer's root password for a join (first line;
    /// never printed).
    #[arg(long, value_name = "PATH")]
    pub join_password_file: Option<PathBuf>,
    /// pve-api target: file holding the API token `USER@REALM!TOKENID=SECRET` (never printed).
    #[arg(long, value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,
    /// SHA-256 certificate fingerprint `XX:XX:..` (repeatable). pve-api: pin the API
    /// server's certificate; pve: the join peer's certificate (`pvecm add --fingerprint`).
    #[arg(long, value_name = "FP")]
    pub fingerprint: Vec<String>,
    /// pve-api target: PEM file of CA certificates to verify the API server with.
    #[arg(long, value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
    /// pve target: join over ssh (`pvecm add --use_ssh 1`) instead of the join API.
    #[arg(long)]
    pub use_ssh: bool,
    /// pve / pve-api targets: migrate qemu guests together with their local disks.
    #[arg(long)]
    pub with_local_disks: bool,
    /// pve-api target: NAME=URL of a host that is not a member yet (create and join run on
    /// that host's API; repeatable).
    #[arg(long, value_name = "NAME=URL")]
    pub api_node: Vec<String>,
    /// pve target on a standalone node that is to join a cluster: observe the cluster through
    /// this member's API (with --api-token-file and --fingerprint or --ca-bundle), so the node
    /// plans and runs its own join (`pvecm add` to the peer the cluster names).
    #[arg(long, value_name = "URL")]
    pub peer: Option<String>,
}

/// `conf` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfAction {
    /// Parse corosync.conf / datacenter.cfg files and report every error with line:col.
    #[command(long_about = crate::cmd::conf::CHECK_LONG_HELP)]
    Check {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// File kind (default: from the file name).
        #[arg(long, value_enum)]
        kind: Option<ConfKind>,
        /// Print the parsed document back out (byte-identical to the input).
        #[arg(long, conflicts_with = "json")]
        print: bool,
        /// Print the typed view as JSON.
        #[arg(long)]
        json: bool,
        /// Also refuse values that Proxmox's own parser cannot read (target is a Proxmox node).
        #[arg(long)]
        pve: bool,
    },
}

/// `sim` subcommands.
#[derive(Debug, Subcommand)]
pub enum SimAction {
    /// Create a directory of standalone, powered-on hosts (no cluster yet).
    Init {
        /// The simulator directory.
        dir: PathBuf,
        /// Number of hosts, named pve1..pveN (default 3).
        #[arg(long, conflicts_with_all = ["names", "from"])]
        nodes: Option<u32>,
        /// Host names, comma separated.
        #[arg(long, value_delimiter = ',', conflicts_with = "from")]
        names: Option<Vec<String>>,
        /// Take the host names from a manifest's nodes.
        #[arg(long, value_name = "MANIFEST")]
        from: Option<PathBuf>,
        /// Running qemu guests (VMIDs 100..) to create on the first host.
        #[arg(long, default_value_t = 0)]
        guests: u32,
        /// Memory of every host in MiB.
        #[arg(long = "memory-mib", default_value_t = 65536)]
        memory_mib: u64,
        /// Replace the simulator files of a non-empty directory.
        #[arg(long)]
        force: bool,
    },
    /// Power a host off (it leaves the membership; its running guests stop).
    PowerOff {
        /// The simulator directory.
        dir: PathBuf,
        /// The host.
        node: String,
    },
    /// Power a host on.
    PowerOn {
        /// The simulator directory.
        dir: PathBuf,
        /// The host.
        node: String,
    },
    /// Show hosts, membership and quorum arithmetic, config_version and guests per node.
    Status {
        /// The simulator directory.
        dir: PathBuf,
    },
}

/// Parse the process arguments (exits with 2 on usage errors).
pub fn parse() -> Cli {
    Cli::parse()
}
