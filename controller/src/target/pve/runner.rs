//! Running programs as argument vectors (never through a shell), behind a trait so that tests
//! use a [`ScriptedRunner`] that records every command and answers from a script.
//!
//! Secrets (the join password) go to the program's standard input, never into its arguments,
//! and are never part of a recorded or printed command.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

    /// The exit status and the last `lines` lines of stderr and stdout, for an error message.
    pub fn tail(&self, lines: usize) -> String {
        let mut all: Vec<&str> = self
            .stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        if all.len() > lines {
            all.drain(..all.len() - lines);
        }
        let status = match self.code {
            Some(c) => format!("exit status {c}"),
            None => "killed (signal or time limit)".to_string(),
        };
        if all.is_empty() {
            status
        } else {
            format!("{status}: {}", all.join(" / "))
        }
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

/// Runs commands.
pub trait Runner: Send {
    /// Run `argv` (program first) with `stdin` as its standard input (None: empty), killing
    /// it after `timeout`.
    ///
    /// # Errors
    /// The program could not be started (not installed, not executable): the message.
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, String>;
}

/// Runs real processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

fn reader<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

impl Runner for SystemRunner {
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, String> {
        let Some((program, args)) = argv.split_first() else {
            return Err("empty command".into());
        };
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
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A program that exits without reading gives EPIPE: its exit status tells.
            let _ = pipe.write_all(data);
        }
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let start = Instant::now();
        let code = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st.code(),
                Ok(None) if start.elapsed() < timeout => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        Ok(Output {
            code,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }
}

/// One command a [`ScriptedRunner`] ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The argument vector.
    pub argv: Vec<String>,
    /// Whether something was written to its standard input (the content is not kept).
    pub had_stdin: bool,
}

/// A scripted answer: commands whose argv starts with `prefix` get `output` (one-shot rules
/// first, then standing rules, each in insertion order; a one-shot rule is used up by its
/// first match).
#[derive(Debug, Clone)]
struct Rule {
    prefix: Vec<String>,
    output: Result<Output, String>,
    once: bool,
}

/// A [`Runner`] for tests: answers from rules, records every command (argv only — the
/// standard input is never kept). Clones share the record and the rules.
#[derive(Debug, Clone, Default)]
pub struct ScriptedRunner {
    rules: Arc<Mutex<VecDeque<Rule>>>,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl ScriptedRunner {
    /// A runner without rules (every command fails to start).
    pub fn new() -> ScriptedRunner {
        ScriptedRunner::default()
    }

    fn push(&self, prefix: &[&str], output: Result<Output, String>, once: bool) {
        if let Ok(mut r) = self.rules.lock() {
            let rule = Rule {
                prefix: prefix.iter().map(|s| s.to_string()).collect(),
                output,
                once,
            };
            // One-shot answers take precedence over standing ones, in the order given.
            if once {
                let at = r.iter().take_while(|x| x.once).count();
                r.insert(at, rule);
            } else {
                r.push_back(rule);
            }
        }
    }

    /// Answer every command starting with `prefix` with `output`.
    pub fn on(&self, prefix: &[&str], output: Output) -> &Self {
        self.push(prefix, Ok(output), false);
        self
    }

    /// Answer the next command starting with `prefix` with `output` (before standing rules).
    pub fn once(&self, prefix: &[&str], output: Output) -> &Self {
        self.push(prefix, Ok(output), true);
        self
    }

    /// Commands starting with `prefix` cannot be started (not installed).
    pub fn missing(&self, prefix: &[&str]) -> &Self {
        self.push(
            prefix,
            Err(format!("cannot start `{}`", prefix.join(" "))),
            false,
        );
        self
    }

    /// Every command run so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The argument vectors run so far.
    pub fn argvs(&self) -> Vec<Vec<String>> {
        self.recorded().into_iter().map(|r| r.argv).collect()
    }
}

impl Runner for ScriptedRunner {
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&[u8]>,
        _timeout: Duration,
    ) -> Result<Output, String> {
        if let Ok(mut l) = self.log.lock() {
            l.push(Recorded {
                argv: argv.to_vec(),
                had_stdin: stdin.is_some(),
            });
        }
        let Ok(mut rules) = self.rules.lock() else {
            return Err("runner poisoned".into());
        };
        let pos = rules
            .iter()
            .position(|r| argv.len() >= r.prefix.len() && argv[..r.prefix.len()] == r.prefix[..]);
        match pos {
            Some(i) => {
                let out = rules[i].output.clone();
                if rules[i].once {
                    rules.remove(i);
                }
                out
            }
            None => Err(format!("cannot start `{}`: not scripted", describe(argv))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_runner_passes_stdin_and_times_out() {
        let mut r = SystemRunner;
        let out = r
            .run(&["cat".into()], Some(b"secret\n"), Duration::from_secs(10))
            .unwrap();
        assert_eq!(out.stdout, "secret\n");
        let out = r
            .run(
                &["sleep".into(), "5".into()],
                None,
                Duration::from_millis(100),
            )
            .unwrap();
        assert_eq!(out.code, None);
        assert!(r
            .run(&["/nonexistent/x".into()], None, Duration::from_secs(1))
            .is_err());
    }

    #[test]
    fn scripted_runner_matches_prefixes_in_order() {
        let mut r = ScriptedRunner::new();
        r.once(&["a", "b"], Output::ok("first"))
            .on(&["a"], Output::ok("any"));
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let t = Duration::from_secs(1);
        assert_eq!(r.run(&argv("a b c"), None, t).unwrap().stdout, "first");
        assert_eq!(r.run(&argv("a b c"), Some(b"pw"), t).unwrap().stdout, "any");
        assert!(r.run(&argv("z"), None, t).is_err());
        assert_eq!(r.recorded().len(), 3);
        assert!(r.recorded()[1].had_stdin);
    }
}
