//! Running external commands with captured output and a time limit.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("spawn `{command}`"), e))?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = match wait_child(&mut child, timeout) {
        Ok(Some(st)) => st,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                what: format!("`{command}`"),
                after: timeout,
            });
        }
        Err(e) => return Err(Error::io(format!("wait for `{command}`"), e)),
    };
    Ok(CmdOutput {
        command,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Run and require exit status 0.
pub(crate) fn run_ok(cmd: &mut Command) -> Result<CmdOutput> {
    run(cmd, COMMAND_TIMEOUT)?.expect_success()
}

fn reader<R: Read + Send + 'static>(src: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = src {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Poll `child` until it exits or `timeout` passes (`Ok(None)`).
pub(crate) fn wait_child(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
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
