//! `pve-gitops suspend` / `resume`: set or clear the suspend flag in the state directory.
//! While it is set the daemon observes the cluster and reports drift and new revisions, but
//! applies nothing.

use super::Outcome;
use anyhow::{Context, Result};
use pve_gitops::status;
use std::path::Path;

/// Run `suspend`.
pub fn suspend(state_dir: &Path, reason: Option<&str>) -> Result<Outcome> {
    status::suspend(state_dir, reason)
        .with_context(|| format!("cannot write the suspend flag in {}", state_dir.display()))?;
    println!(
        "Suspended: the daemon using {} keeps observing and reporting drift but applies nothing \
         until `pve-gitops resume --state-dir {}`.",
        state_dir.display(),
        state_dir.display()
    );
    Ok(Outcome::Ok)
}

/// Run `resume`.
pub fn resume(state_dir: &Path) -> Result<Outcome> {
    let was = status::resume(state_dir)
        .with_context(|| format!("cannot remove the suspend flag in {}", state_dir.display()))?;
    if was {
        println!("Resumed: the daemon applies again (it reconciles now).");
    } else {
        println!("Not suspended: nothing to do.");
    }
    Ok(Outcome::Ok)
}
