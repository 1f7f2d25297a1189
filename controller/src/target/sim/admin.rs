//! The operator's side of the simulator: create a directory of standalone hosts
//! (`sim init`), power hosts off and on (`sim power-off` / `sim power-on`).

use super::files::{self, mkdir_p};
use super::state::{SimHost, SimState, EXTRA_FILE};
use super::world::{World, COROSYNC_CONF, DATACENTER_CFG, MEMBERS, VMLIST};
use crate::observed::Membership;
use crate::target::TargetError;
use pve_gitops_schema::pmxcfs::{is_valid_node_name, GuestConfig, GuestType, LOCK_DIR};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Memory of each guest `sim init --guests` creates, in MiB.
pub const INIT_GUEST_MEMORY_MIB: u64 = 2048;
/// First VMID `sim init --guests` uses.
pub const INIT_FIRST_VMID: u32 = 100;
/// Default host memory of `sim init`, in MiB.
pub const INIT_HOST_MEMORY_MIB: u64 = 65536;

/// What `sim init` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// Host names (LDH, unique, at least one).
    pub names: Vec<String>,
    /// Running qemu guests to create on the first host (VMIDs 100, 101, ...).
    pub guests: u32,
    /// Memory of every host in MiB.
    pub memory_mib: u64,
    /// Replace the simulator files of a non-empty directory.
    pub force: bool,
}

/// What `sim init` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The directory.
    pub dir: PathBuf,
    /// The hosts, all powered on, none clustered.
    pub hosts: Vec<String>,
    /// The guests' VMIDs (all on the first host, running).
    pub guests: Vec<u32>,
    /// Host memory in MiB.
    pub memory_mib: u64,
}

/// `sim init DIR` with default options except the names: standalone, powered-on hosts
/// `names`, `guests` running qemu guests on the first one, hosts with `memory_mib` MiB.
/// Refuses a non-empty directory. Used by `reconcile` to create `.pve-gitops/sim` from a
/// manifest.
///
/// # Errors
/// See [`init`].
pub fn init_from_names(
    dir: &Path,
    names: &[String],
    guests: u32,
    memory_mib: u64,
) -> Result<InitReport, TargetError> {
    init(
        dir,
        &InitOptions {
            names: names.to_vec(),
            guests,
            memory_mib,
            force: false,
        },
    )
}

/// Entries `init --force` replaces; nothing else in the directory is touched.
const SIM_ENTRIES: &[&str] = &[
    COROSYNC_CONF,
    "corosync.conf.new",
    DATACENTER_CFG,
    MEMBERS,
    VMLIST,
    EXTRA_FILE,
    "nodes",
    "priv",
];

/// Create a simulator directory: hosts `opts.names`, all powered on and standalone (no
/// corosync.conf), `nodes/NAME/{qemu-server,lxc}/`, `priv/lock/`, `.members`, `.vmlist`
/// and the extra file.
///
/// # Errors
/// Invalid or duplicate names, no names, a non-empty directory without `force`, I/O.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<InitReport, TargetError> {
    let bad = |m: String| Err(TargetError::Unavailable(m));
    if opts.names.is_empty() {
        return bad("no host names given".into());
    }
    let mut seen = BTreeSet::new();
    for n in &opts.names {
        if !is_valid_node_name(n) {
            return bad(format!(
                "'{n}' is not a valid node name (letters, digits and '-', not first or last)"
            ));
        }
        if !seen.insert(n.as_str()) {
            return bad(format!("host name '{n}' is given twice"));
        }
    }
    let last = u64::from(INIT_FIRST_VMID) + u64::from(opts.guests);
    if last > 999_999_999 {
        return bad(format!(
            "{} guests do not fit VMIDs 100..999999999",
            opts.guests
        ));
    }
    match fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                if !opts.force {
                    return bad(format!(
                        "{} is not empty; use --force to replace its simulator files",
                        dir.display()
                    ));
                }
                for e in SIM_ENTRIES {
                    let p = dir.join(e);
                    let r = if p.is_dir() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                    match r {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(TargetError::Write { path: p, source: e })
                        }
                        _ => {}
                    }
                }
            }
        }
        Err(_) => mkdir_p(dir)?,
    }
    mkdir_p(&dir.join(LOCK_DIR))?;
    let mut state = SimState::empty();
    for n in &opts.names {
        for sub in ["qemu-server", "lxc"] {
            mkdir_p(&dir.join("nodes").join(n).join(sub))?;
        }
        state.hosts.insert(
            n.clone(),
            SimHost {
                powered_on: true,
                memory_mib: opts.memory_mib,
                removed: false,
            },
        );
    }
    let first = &opts.names[0];
    state.local_node = Some(first.clone());
    let qdir = dir.join("nodes").join(first).join("qemu-server");
    let mut vmids = Vec::with_capacity(opts.guests as usize);
    for i in 0..opts.guests {
        let vmid = INIT_FIRST_VMID + i;
        let text = GuestConfig::render_minimal(
            GuestType::Qemu,
            INIT_GUEST_MEMORY_MIB,
            1,
            Some(&format!("vm{vmid}")),
        )
        .map_err(|e| TargetError::Unavailable(e.to_string()))?;
        let p = qdir.join(format!("{vmid}.conf"));
        fs::write(&p, text).map_err(|source| TargetError::Write { path: p, source })?;
        state.running_guests.insert(vmid);
        vmids.push(vmid);
    }
    let mut w = World {
        dir: dir.to_path_buf(),
        conf: None,
        state,
        has_extra: false,
    };
    w.commit()?;
    Ok(InitReport {
        dir: dir.to_path_buf(),
        hosts: opts.names.clone(),
        guests: vmids,
        memory_mib: opts.memory_mib,
    })
}

/// What powering a host off or on did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerChange {
    /// The host.
    pub node: String,
    /// Its new power state.
    pub on: bool,
    /// Whether it already was in that state.
    pub unchanged: bool,
    /// Guests that were running on it and stopped (power off).
    pub stopped_guests: Vec<u32>,
    /// Membership and votequorum numbers afterwards.
    pub membership: Membership,
    /// Whether a cluster exists (corosync.conf); without one there is no membership.
    pub clustered: bool,
}

/// Power `node` off or on (the operator's part). Powering off stops the guests whose
/// configs are in `nodes/NODE/`. `.members` is re-rendered.
///
/// # Errors
/// Unknown host (the message lists the known ones), unreadable directory, I/O.
pub fn set_power(dir: &Path, node: &str, on: bool) -> Result<PowerChange, TargetError> {
    let mut w = World::load(dir)?;
    if !w.state.hosts.contains_key(node) && !w.in_nodelist(node) {
        return Err(TargetError::Unavailable(format!(
            "unknown host '{node}' (known hosts: {})",
            super::apply::known_hosts(&w)
        )));
    }
    let unchanged = w.powered_on(node) == on;
    let mut stopped = Vec::new();
    if !on {
        let running = &w.state.running_guests;
        files::walk_guests(dir, &[node.to_string()], |g, _| {
            if running.contains(&g.vmid) {
                stopped.push(g.vmid);
            }
            Ok(())
        })?;
        stopped.sort_unstable();
        for v in &stopped {
            w.state.running_guests.remove(v);
        }
    }
    w.host_mut(node).powered_on = on;
    w.commit()?;
    Ok(PowerChange {
        node: node.to_string(),
        on,
        unchanged,
        stopped_guests: stopped,
        membership: w.core().membership,
        clustered: w.conf.is_some(),
    })
}
