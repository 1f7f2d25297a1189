//! Printing diagnostics: text (rustc-style snippets), JSON, GitHub workflow annotations.

use crate::cli::Format;
use pve_gitops_schema::diag::{Diagnostic, Severity};
use serde::Serialize;

/// A file and the diagnostics found in it.
pub struct FileDiagnostics<'a> {
    /// The file's name as shown.
    pub file: String,
    /// Its text, for snippets.
    pub src: Option<&'a str>,
    /// What was found.
    pub diagnostics: Vec<Diagnostic>,
}

/// Counts for the summary line and the exit code.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Summary {
    /// Files looked at.
    pub files: usize,
    /// Errors (including warnings promoted by `--strict`).
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
}

/// Escape a GitHub workflow command's message (`%`, CR, LF).
fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a GitHub workflow command's property value.
fn gh_escape_prop(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Print every diagnostic in `format` to stdout and return the summary.
pub fn print(format: Format, files: &[FileDiagnostics<'_>], strict: bool) -> Summary {
    let mut sum = Summary {
        files: files.len(),
        ..Summary::default()
    };
    let promote = |d: &Diagnostic| {
        let mut d = d.clone();
        if strict && d.severity == Severity::Warning {
            d.severity = Severity::Error;
        }
        d
    };
    for f in files {
        for d in f.diagnostics.iter().map(promote) {
            match d.severity {
                Severity::Error => sum.errors += 1,
                Severity::Warning => sum.warnings += 1,
            }
        }
    }
    match format {
        Format::Text => {
            for f in files {
                for d in f.diagnostics.iter().map(promote) {
                    println!("{}", d.render(f.src));
                }
            }
            println!(
                "{} file(s) checked: {} error(s), {} warning(s)",
                sum.files, sum.errors, sum.warnings
            );
        }
        Format::Github => {
            for f in files {
                for d in f.diagnostics.iter().map(promote) {
                    let level = match d.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    };
                    let mut props = vec![format!("file={}", gh_escape_prop(&f.file))];
                    if let Some(l) = d.location {
                        props.push(format!("line={}", l.line));
                        props.push(format!("col={}", l.col));
                    }
                    props.push(format!("title={}", gh_escape_prop(d.rule)));
                    let mut msg = d.message.clone();
                    if !d.path.is_empty() {
                        msg.push_str(&format!(" (at {})", d.path));
                    }
                    if let Some(h) = &d.help {
                        msg.push_str(&format!("; {h}"));
                    }
                    println!("::{level} {}::{}", props.join(","), gh_escape_data(&msg));
                }
            }
        }
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                valid: bool,
                summary: Summary,
                files: Vec<FileOut<'a>>,
            }
            #[derive(Serialize)]
            struct FileOut<'a> {
                file: &'a str,
                valid: bool,
                diagnostics: Vec<Diagnostic>,
            }
            let out = Out {
                valid: sum.errors == 0,
                summary: sum,
                files: files
                    .iter()
                    .map(|f| {
                        let diagnostics: Vec<Diagnostic> =
                            f.diagnostics.iter().map(promote).collect();
                        FileOut {
                            file: &f.file,
                            valid: !diagnostics.iter().any(Diagnostic::is_error),
                            diagnostics,
                        }
                    })
                    .collect(),
            };
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
    }
    sum
}
