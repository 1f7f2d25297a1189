//! The `sim:DIR` target: a simulated cluster kept in a directory laid out exactly like
//! `/etc/pve` (DESIGN.md §3), applying every step with the real cluster's semantics.
//!
//! Layout: `corosync.conf` (absent = no cluster yet), `datacenter.cfg`, `.members`,
//! `.vmlist` (both in pmxcfs's byte layout, re-rendered after every change),
//! `nodes/NAME/{qemu-server,lxc}/VMID.conf`, `priv/lock/`, plus one extra file,
//! [`EXTRA_FILE`] (`.pve-gitops-sim.json`, see [`SimState`]), for what pmxcfs does not hold:
//! host power and memory, the runtime expected-votes override, running guests, migration
//! bandwidth. `docs/sim.md` documents the format.
//!
//! - `observe` only reads. A plain copy of a node's `/etc/pve` without the extra file can be
//!   observed too ([`SimState::derive`]); the first change writes the extra file.
//! - `apply` checks a step completely before it writes anything and refuses exactly what
//!   corosync / pvecm / qm / pct refuse, with their wording where known; a refused step
//!   leaves the directory unchanged. Files are written as `NAME.new` + rename;
//!   corosync.conf and datacenter.cfg edits hold their pmxcfs cfs lock
//!   (`priv/lock/file-corosync_conf`, `priv/lock/file-datacenter_cfg`).
//! - Durations are simulated ([`Applied::duration_ms`]); nothing sleeps. A migration of a
//!   running guest takes memory / `migration_bandwidth_mib_s` seconds.
//! - Every online nodelist member reports the file's `config_version` (the sim has no
//!   lagging nodes), so a `wait` for a config version is satisfied as soon as it is current.
//!
//! ## Limitations
//!
//! - One directory holds every host: a standalone host's guests are in `nodes/HOST/` of
//!   the same tree (the join check looks there).
//! - No network: migration networks are checked for syntax only; `.members` `ip` values are
//!   kept when present, never invented.
//! - Nodes without `name` are named by `ring0_addr`, as pmxcfs does.

mod admin;
mod apply;
mod files;
mod state;
mod world;

pub use admin::{
    init, init_from_names, set_power, InitOptions, InitReport, PowerChange, INIT_FIRST_VMID,
    INIT_GUEST_MEMORY_MIB, INIT_HOST_MEMORY_MIB,
};
pub use apply::{CREATE_MS, EDIT_MS, JOIN_MS, RELOAD_MS, RESTART_MS_PER_NODE};
pub use state::{SimHost, SimState, DEFAULT_BANDWIDTH_MIB_S, EXTRA_FILE, FORMAT};
pub use world::CONTROLLER_LOCK;

use crate::observed::Observed;
use crate::plan::step::Step;
use crate::target::{Applied, Target, TargetError};
use std::path::{Path, PathBuf};

/// A simulated cluster in a directory.
#[derive(Debug, Clone)]
pub struct SimTarget {
    dir: PathBuf,
}

impl SimTarget {
    /// The simulator in `dir` (not read until `observe` / `apply`).
    pub fn new(dir: impl Into<PathBuf>) -> SimTarget {
        SimTarget { dir: dir.into() }
    }

    /// The simulator in `dir`, which must exist.
    ///
    /// # Errors
    /// [`TargetError::Unavailable`] when `dir` is not a directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<SimTarget, TargetError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(TargetError::Unavailable(format!(
                "sim directory {} does not exist (create it with `pve-gitops sim init {}`)",
                dir.display(),
                dir.display()
            )));
        }
        Ok(SimTarget { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The extra file's state as the simulator sees it (derived when the file is absent).
    ///
    /// # Errors
    /// As [`Target::observe`].
    pub fn state(&self) -> Result<SimState, TargetError> {
        Ok(world::World::load(&self.dir)?.state)
    }
}

impl Target for SimTarget {
    fn describe(&self) -> String {
        format!("sim:{} (simulated cluster)", self.dir.display())
    }

    fn observe(&mut self) -> Result<Observed, TargetError> {
        world::World::load(&self.dir)?.observe()
    }

    fn apply(&mut self, step: &Step) -> Result<Applied, TargetError> {
        apply::apply(&self.dir, step)
    }
}
