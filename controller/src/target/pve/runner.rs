//! Running programs as argument vectors (never through a shell), behind a trait so that tests
//! use a [`ScriptedRunner`] that records every command and answers from a script.
//!
//! Secrets (the join password) go to the program's standard input, never into its arguments,
//! and are never part of a recorded or printed command.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::process::{self, StartError};
pub use crate::process::{describe, Output};

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

impl Runner for SystemRunner {
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, String> {
        process::run(argv, stdin, timeout).map_err(|e| match e {
            StartError::Empty => "empty command".to_string(),
            StartError::Spawn(e) => format!("cannot start `{}`: {e}", argv[0]),
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
