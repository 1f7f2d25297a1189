//! `pve-gitops status [--state-dir DIR] [--output text|json]`: the daemon's status file.
//! Exit codes: 0 Ready, 1 not Ready, 2 no status file or an error.

use super::Outcome;
use crate::cli::PlanOutput;
use anyhow::Result;
use pve_gitops::status;
use std::path::Path;

/// Run `status`.
pub fn run(state_dir: &Path, output: PlanOutput) -> Result<Outcome> {
    let Some(s) = status::load(state_dir)? else {
        eprintln!(
            "error: no status in {} (is `pve-gitops watch --state-dir {}` running?)",
            state_dir.display(),
            state_dir.display()
        );
        return Ok(Outcome::Error);
    };
    match output {
        PlanOutput::Text => print!("{}", status::render_text(&s)),
        PlanOutput::Json => println!("{}", serde_json::to_string_pretty(&s)?),
    }
    Ok(if s.is_ready() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}
