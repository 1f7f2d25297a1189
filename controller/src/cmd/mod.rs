//! One module per subcommand; each returns the process exit code.

pub(crate) mod conf;
mod import;
mod reconcile;
mod sim;
mod status;
mod suspend;
mod validate;
mod watch;

use crate::cli::{Cli, Command, ConfAction};
use std::process::ExitCode;

/// The outcome of a command, mapped to the exit-code contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: valid / in sync / converged.
    Ok,
    /// 1: invalid / changes pending / stopped at a gate.
    Findings,
    /// 2: an operational error.
    Error,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(match o {
            Outcome::Ok => 0,
            Outcome::Findings => 1,
            Outcome::Error => 2,
        })
    }
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Validate {
            paths,
            format,
            strict,
        } => validate::run(&paths, format, strict),
        Command::Reconcile {
            file,
            target,
            dry_run,
            output,
            max_steps,
            peer_wait,
        } => reconcile::run(reconcile::Args {
            manifest: &file,
            target: &target,
            dry_run,
            output,
            max_steps,
            peer_wait,
        }),
        Command::Schema => {
            print!("{}", pve_gitops_schema::spec::json_schema());
            Ok(Outcome::Ok)
        }
        Command::Conf {
            action:
                ConfAction::Check {
                    files,
                    kind,
                    print,
                    json,
                    pve,
                },
        } => conf::check(&files, kind, print, json, pve),
        Command::Import { config_fs, output } => import::run(&config_fs, output.as_deref()),
        Command::Sim { action } => sim::run(action),
        Command::Watch(args) => watch::run(&args),
        Command::Status { state_dir, output } => status::run(&state_dir, output),
        Command::Suspend { state_dir, reason } => suspend::suspend(&state_dir, reason.as_deref()),
        Command::Resume { state_dir } => suspend::resume(&state_dir),
    }
}
