//! Running external commands with captured output and a time limit.

use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use crate::error::{Error, Result};

/// Default time limit for one tool invocation (`ip`, `corosync-*`, ...).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The captured result of a command that ran to completion.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl CmdOutput {
    /// The exit code, `None` if the process was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `Ok(self)` if the exit code is one of `codes`, otherwise [`Error::Command`].
    pub fn expect_codes(self, codes: &[i32]) -> Result<Self> {
        match self.code() {
            Some(c) if codes.contains(&c) => Ok(self),
            _ => Err(self.into_error()),
        }
    }

    /// `Ok(self)` on exit status 0, otherwise [`Error::Command`].
    pub fn expect_success(self) -> Result<Self> {
        self.expect_codes(&[0])
    }

    /// Turn this output into an [`Error::Command`].
    pub fn into_error(self) -> Error {
        Error::Command {
            code: self.status.code(),
            command: self.command,
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// Render a command line for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` with stdin closed, capturing stdout/stderr, killing it after `timeout`.
/// Returns the output whatever the exit status.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<CmdOutput> {
    let command = describe(cmd);
    let c = pve_gitops::process::capture(cmd, None, timeout)
        .map_err(|e| Error::io(format!("run `{command}`"), e))?;
    let Some(status) = c.status else {
        return Err(Error::Timeout {
            what: format!("`{command}`"),
            after: timeout,
        });
    };
    Ok(CmdOutput {
        command,
        status,
        stdout: c.stdout,
        stderr: c.stderr,
    })
}

/// Run and require exit status 0.
pub(crate) fn run_ok(cmd: &mut Command) -> Result<CmdOutput> {
    run(cmd, COMMAND_TIMEOUT)?.expect_success()
}

/// Wait until `child` exits or `timeout` passes (`Ok(None)`).
pub(crate) fn wait_child(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    pve_gitops::process::wait_status(child, timeout)
}

/// Send `signal` (e.g. `"TERM"`, `"KILL"`) to `pid` with kill(1).
/// The crate forbids `unsafe`, so no direct `kill(2)`.
pub(crate) fn signal(pid: u32, signal: &str) -> Result<()> {
    run_ok(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string()),
    )
    .map(|_| ())
}
