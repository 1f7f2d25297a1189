//! `pve-gitops`: the command-line entry point. Kept thin (ripgrep's `main.rs`): parse the
//! arguments, run the command, map the outcome to the exit-code contract of DESIGN.md §4.

mod cli;
mod cmd;
mod configfs;
mod messages;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::parse();
    match cmd::run(args) {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
