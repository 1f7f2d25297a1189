//! `pve-gitops`: the command-line entry point. Kept thin: parse arguments, run, map to exit codes.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
