//! Running a program as an argument vector (never through a shell) with a time limit, and
//! describing it for messages. Shared by the corosync target's tools and the PVE target's
//! [`SystemRunner`](crate::target::pve::runner::SystemRunner).

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest pause between two polls of a running child. The pause starts at
/// [`FIRST_POLL`] and grows with the time the child has run, so a short tool call (a few ms,
/// as most corosync tools are) is seen to exit within about a millisecond while a long one
/// costs no more wake-ups than a fixed 10 ms poll.
const MAX_POLL: Duration = Duration::from_millis(10);
/// The first pause between two polls of a running child.
const FIRST_POLL: Duration = Duration::from_micros(500);

/// The pause before the next poll of a child that has run for `elapsed`.
fn poll_pause(elapsed: Duration) -> Duration {
    (FIRST_POLL + elapsed / 10).min(MAX_POLL)
}

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

/// Read `r` to its end on a thread; `eof` is told when it gets there.
fn reader<R: Read + Send + 'static>(
    r: Option<R>,
    eof: mpsc::Sender<()>,
) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        let _ = eof.send(());
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait up to `timeout` for `child` to exit: its status, or None when it still runs then.
///
/// # Errors
/// Waiting for the child failed.
pub fn wait_status(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        let ran = start.elapsed();
        if ran >= timeout {
            return Ok(None);
        }
        thread::sleep(poll_pause(ran).min(timeout - ran));
    }
}

/// Wait for `child` to exit, killing it after `timeout`: its exit code (None: killed).
pub fn wait(child: &mut Child, timeout: Duration) -> Option<i32> {
    match wait_status(child, timeout) {
        Ok(Some(st)) => st.code(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// What [`capture`] got from a finished command.
#[derive(Debug)]
pub struct Captured {
    /// How it exited (None: killed at the time limit).
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Run `cmd` with `stdin` as its standard input (None: empty), capturing its output through
/// pipes and killing it after `timeout`.
///
/// The exit is seen as soon as it happens: a program closes its output when it exits, so the
/// output's end is waited for (no polling) before the child is reaped; one that keeps running
/// after closing its output is polled for the rest of the time.
///
/// # Errors
/// The program could not be started, or waiting for it failed.
pub fn capture(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Captured> {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading gives EPIPE: its exit status tells.
        let _ = pipe.write_all(data);
    }
    let start = Instant::now();
    let (eof, eofs) = mpsc::channel();
    let out = reader(child.stdout.take(), eof.clone());
    let err = reader(child.stderr.take(), eof);
    for _ in 0..2 {
        let left = timeout.saturating_sub(start.elapsed());
        if eofs.recv_timeout(left).is_err() {
            break;
        }
    }
    let status = match wait_status(&mut child, timeout.saturating_sub(start.elapsed())) {
        Ok(Some(st)) => Some(st),
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    Ok(Captured {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Run `argv` (program first) with `stdin` as its standard input (None: empty), capturing its
/// output and killing it after `timeout` ([`capture`]).
///
/// # Errors
/// The program could not be started ([`StartError`]).
pub fn run(argv: &[String], stdin: Option<&[u8]>, timeout: Duration) -> Result<Output, StartError> {
    let (program, args) = program(argv)?;
    let c = capture(Command::new(program).args(args), stdin, timeout).map_err(StartError::Spawn)?;
    Ok(Output {
        code: c.status.and_then(|s| s.code()),
        stdout: c.stdout,
        stderr: c.stderr,
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

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn run_captures_output_and_exit_code() {
        let out = run(
            &sh("echo out; echo err >&2; exit 3"),
            None,
            Duration::from_secs(10),
        )
        .expect("sh starts");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        let out = run(&sh("cat"), Some(b"in"), Duration::from_secs(10)).expect("sh starts");
        assert_eq!((out.code, out.stdout.as_str()), (Some(0), "in"));
    }

    #[test]
    fn run_waits_for_a_program_that_closed_its_output() {
        // Output closed long before the exit: the exit code is still the program's.
        let out = run(
            &sh("exec >&- 2>&-; sleep 0.3; exit 4"),
            None,
            Duration::from_secs(10),
        )
        .expect("sh starts");
        assert_eq!(out.code, Some(4));
    }

    #[test]
    fn run_kills_at_the_time_limit() {
        let start = Instant::now();
        let out = run(&sh("exec sleep 30"), None, Duration::from_millis(200)).expect("starts");
        assert_eq!(out.code, None);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn poll_pause_grows_to_the_cap() {
        assert_eq!(poll_pause(Duration::ZERO), FIRST_POLL);
        assert!(poll_pause(Duration::from_millis(20)) > FIRST_POLL);
        assert_eq!(poll_pause(Duration::from_secs(5)), MAX_POLL);
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
