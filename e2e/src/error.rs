//! The harness error type.

use std::fmt;
use std::io;
use std::time::Duration;

/// Result alias used throughout the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while driving namespaces and corosync processes.
///
/// `Debug` prints the same multi-line text as `Display`, so `unwrap()` and tests
/// returning `Result` show readable failures.
pub enum Error {
    /// An I/O error, with what the harness was doing at the time.
    Io {
        /// What was being done (e.g. `write /tmp/.../corosync.conf`).
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A command ran but exited unsuccessfully (or with an unexpected code).
    Command {
        /// The command line, for humans.
        command: String,
        /// Exit code, `None` if killed by a signal.
        code: Option<i32>,
        /// Captured standard output.
        stdout: String,
        /// Captured standard error.
        stderr: String,
    },
    /// A command or a wait did not finish in time.
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// Tool output could not be parsed.
    Parse {
        /// Which output (e.g. `corosync-quorumtool -s -p`).
        what: String,
        /// Why parsing failed.
        reason: String,
        /// The text that failed to parse.
        input: String,
    },
    /// The harness was used wrongly (unknown node, bad prefix, ...).
    Usage(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn parse(what: &str, reason: impl Into<String>, input: &str) -> Self {
        Error::Parse {
            what: what.to_owned(),
            reason: reason.into(),
            input: input.to_owned(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Command {
                command,
                code,
                stdout,
                stderr,
            } => {
                match code {
                    Some(c) => write!(f, "`{command}` exited with status {c}")?,
                    None => write!(f, "`{command}` was killed by a signal")?,
                }
                if !stdout.trim().is_empty() {
                    write!(f, "\n--- stdout ---\n{}", stdout.trim_end())?;
                }
                if !stderr.trim().is_empty() {
                    write!(f, "\n--- stderr ---\n{}", stderr.trim_end())?;
                }
                Ok(())
            }
            Error::Timeout { what, after } => {
                write!(
                    f,
                    "timed out after {:.1} s waiting for {what}",
                    after.as_secs_f64()
                )
            }
            Error::Parse {
                what,
                reason,
                input,
            } => write!(
                f,
                "cannot parse output of {what}: {reason}\n--- input ---\n{input}"
            ),
            Error::Usage(msg) => write!(f, "harness misuse: {msg}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
