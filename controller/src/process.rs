//! Running a program as an argument vector (never through a shell) with a time limit, and
//! describing it for messages. Shared by the corosync target's tools and the PVE target's
//! [`SystemRunner`](crate::target::pve::runner::SystemRunner).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often a running child is polled for its exit.
const POLL: Duration = Duration::from_millis(10);

/// What a finished command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// The exit code (None: killed by a signal or by the time limit).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// A successful run that printed `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Output {
        Output {
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// A failed run with exit code `code` and `stderr`.
    pub fn fail(code: i32, stderr: impl Into<String>) -> Output {
        Output {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit status, as words.
    fn status(&self) -> String {
        match self.code {
            Some(c) => format!("exit status {c}"),
            None => "killed (signal or time limit)".to_string(),
        }
    }

    /// `<status>: <parts joined by " / ">`, or the status alone without parts.
    fn with_status(&self, parts: &[String]) -> String {
        if parts.is_empty() {
            self.status()
        } else {
            format!("{}: {}", self.status(), parts.join(" / "))
        }
    }

    /// stderr and stdout, trimmed, for an error message.
    pub fn message(&self) -> String {
        let parts: Vec<String> = [&self.stderr, &self.stdout]
            .into_iter()
            .map(|s| s.trim())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        self.with_status(&parts)
    }

    /// The exit status and the last `lines` lines of stderr and stdout, for an error message.
    pub fn tail(&self, lines: usize) -> String {
        let mut all: Vec<String> = self
            .stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        if all.len() > lines {
            all.drain(..all.len() - lines);
        }
        self.with_status(&all)
    }
}

/// `argv` as one line for messages (words with spaces or quotes are single-quoted).
pub fn describe(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a command did not start.
#[derive(Debug)]
pub enum StartError {
    /// The argument vector was empty.
    Empty,
    /// The program could not be started (not installed, not executable).
    Spawn(std::io::Error),
}

/// Split `argv` into the program and its arguments.
///
/// # Errors
/// [`StartError::Empty`] for an empty vector.
pub fn program(argv: &[String]) -> Result<(&String, &[String]), StartError> {
    argv.split_first().ok_or(StartError::Empty)
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait for `child` to exit, killing it after `timeout`: its exit code (None: killed).
pub fn wait(child: &mut Child, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code(),
            Ok(None) if start.elapsed() < timeout => thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Run `argv` (program first) with `stdin` as its standard input (None: empty), capturing its
/// output through pipes and killing it after `timeout`.
///
/// # Errors
/// The program could not be started ([`StartError`]).
pub fn run(argv: &[String], stdin: Option<&[u8]>, timeout: Duration) -> Result<Output, StartError> {
    let (program, args) = program(argv)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(StartError::Spawn)?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading gives EPIPE: its exit status tells.
        let _ = pipe.write_all(data);
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let code = wait(&mut child, timeout);
    Ok(Output {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes() {
        assert_eq!(
            describe(&["a".into(), "b c".into(), "it's".into()]),
            r"a 'b c' 'it'\''s'"
        );
    }

    #[test]
    fn messages() {
        let out = Output {
            code: Some(2),
            stdout: "a\nb\n".into(),
            stderr: " c \n".into(),
        };
        assert_eq!(out.message(), "exit status 2: c / a\nb");
        assert_eq!(out.tail(2), "exit status 2: b /  c ");
        assert_eq!(Output::default().tail(3), "killed (signal or time limit)");
    }
}
