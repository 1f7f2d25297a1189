//! `pve-gitops conf check FILE...`: parse corosync.conf / datacenter.cfg files and report every
//! problem with `line:col`.
//!
//! The operator protocol this serves (pve-docs `pvecm.adoc`, "Edit corosync.conf"):
//!
//! ```text
//! cp /etc/pve/corosync.conf /etc/pve/corosync.conf.new
//! $EDITOR /etc/pve/corosync.conf.new           # and increment totem.config_version
//! pve-gitops conf check --pve /etc/pve/corosync.conf.new
//! cp /etc/pve/corosync.conf /etc/pve/corosync.conf.bak
//! mv /etc/pve/corosync.conf.new /etc/pve/corosync.conf
//! ```
//!
//! Output: text diagnostics (rustc-style snippet with a caret) through [`messages::print`];
//! `--print` writes the parsed document back to stdout (byte-identical) and the diagnostics to
//! stderr; `--json` prints the typed view with the diagnostics as JSON (one object per file, an
//! array for several files). Exit codes: 0 no errors, 1 errors, 2 unreadable file or usage.

use super::Outcome;
use crate::cli::{ConfKind, Format};
use crate::messages::{self, FileDiagnostics};
use anyhow::Result;
use pve_gitops_schema::corosync::{self, Document};
use pve_gitops_schema::datacenter::DatacenterDocument;
use pve_gitops_schema::diag::{Diagnostic, Severity};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Long help of `conf check`: the edit protocol the command serves (for the CLI definition).
pub const CHECK_LONG_HELP: &str = "\
Parse corosync.conf / datacenter.cfg files and report every error with line:col.

The file kind comes from --kind or from the file name: corosync.conf* (including
corosync.conf.new) is corosync, datacenter.cfg* is datacenter. Warnings are what
Proxmox's verify_conf would say; --pve also refuses values that Proxmox's own parser
cannot read back (spaces, '#', braces) and, for datacenter.cfg, lines PVE would drop.

Safe corosync.conf edit on a Proxmox VE node:

    cp /etc/pve/corosync.conf /etc/pve/corosync.conf.new
    $EDITOR /etc/pve/corosync.conf.new   # increment totem.config_version!
    pve-gitops conf check --pve /etc/pve/corosync.conf.new
    cp /etc/pve/corosync.conf /etc/pve/corosync.conf.bak
    mv /etc/pve/corosync.conf.new /etc/pve/corosync.conf

Exit codes: 0 no errors, 1 errors found, 2 unreadable file or usage.";

/// Write `text` to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Rules of datacenter.cfg warnings that mean PVE drops the line; errors under `--pve`.
const DATACENTER_PVE_DROPS: &[&str] = &[
    "datacenter-invalid-value",
    "datacenter-unknown-key",
    "datacenter-ignored-line",
];

/// The kind of a file from its name: `corosync.conf*` or `datacenter.cfg*`.
pub fn kind_from_name(path: &Path) -> Option<ConfKind> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with("corosync.conf") {
        Some(ConfKind::Corosync)
    } else if name.starts_with("datacenter.cfg") {
        Some(ConfKind::Datacenter)
    } else {
        None
    }
}

/// One checked file.
struct Checked {
    name: String,
    kind: ConfKind,
    text: String,
    diagnostics: Vec<Diagnostic>,
    view: serde_json::Value,
}

/// Parse and check one file's text.
fn check_text(name: &str, kind: ConfKind, text: String, pve: bool) -> Checked {
    let (mut diagnostics, view) = match kind {
        ConfKind::Corosync => {
            let (doc, mut diagnostics) = Document::parse_recovering(name, &text);
            if diagnostics.is_empty() {
                diagnostics.extend(doc.verify());
                if pve {
                    diagnostics.extend(doc.check_pve_writable());
                }
            }
            (diagnostics, corosync_json(&doc))
        }
        ConfKind::Datacenter => {
            let doc = DatacenterDocument::parse(&text);
            let diagnostics: Vec<Diagnostic> = doc
                .diagnostics()
                .into_iter()
                .map(|d| {
                    let d = d.in_file(name);
                    if pve && DATACENTER_PVE_DROPS.contains(&d.rule) {
                        Diagnostic {
                            severity: Severity::Error,
                            ..d
                        }
                    } else {
                        d
                    }
                })
                .collect();
            (
                diagnostics,
                serde_json::to_value(doc.view()).unwrap_or_default(),
            )
        }
    };
    sort(&mut diagnostics);
    Checked {
        name: name.to_string(),
        kind,
        text,
        diagnostics,
        view,
    }
}

fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.location.map(|l| (l.line, l.col)).unwrap_or((0, 0)));
}

/// The typed view of a corosync document plus what it derives (shape, effective transport).
fn corosync_json(doc: &Document) -> serde_json::Value {
    let view = doc.view();
    let mut v = serde_json::to_value(&view).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "shape".into(),
            serde_json::to_value(view.shape()).unwrap_or_default(),
        );
        obj.insert(
            "effective_transport".into(),
            view.effective_transport().into(),
        );
        obj.insert(
            "link_numbers".into(),
            serde_json::to_value(view.link_numbers()).unwrap_or_default(),
        );
    }
    v
}

/// The JSON object printed per file by `--json`.
#[derive(Serialize)]
struct JsonFile<'a> {
    file: &'a str,
    kind: &'static str,
    valid: bool,
    view: &'a serde_json::Value,
    diagnostics: &'a [Diagnostic],
}

fn kind_str(kind: ConfKind) -> &'static str {
    match kind {
        ConfKind::Corosync => "corosync",
        ConfKind::Datacenter => "datacenter",
    }
}

/// Run `conf check`.
pub fn check(
    files: &[PathBuf],
    kind: Option<ConfKind>,
    print: bool,
    json: bool,
    pve: bool,
) -> Result<Outcome> {
    if print && files.len() != 1 {
        eprintln!(
            "error: --print takes exactly one file ({} given)",
            files.len()
        );
        return Ok(Outcome::Error);
    }
    if print && json {
        eprintln!("error: --print and --json cannot be used together");
        return Ok(Outcome::Error);
    }
    // Usage problems first: every file needs a kind.
    let mut kinds = Vec::with_capacity(files.len());
    for f in files {
        match kind.or_else(|| kind_from_name(f)) {
            Some(k) => kinds.push(k),
            None => {
                eprintln!(
                    "error: cannot tell the kind of {} from its name (expected corosync.conf* or \
                     datacenter.cfg*); pass --kind corosync or --kind datacenter",
                    f.display()
                );
                return Ok(Outcome::Error);
            }
        }
    }
    let mut unreadable = false;
    let mut checked = Vec::new();
    for (f, k) in files.iter().zip(kinds) {
        let name = f.display().to_string();
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {name}: cannot read: {e}");
                unreadable = true;
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..valid]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                eprintln!(
                    "error: {name}:{line}: the file is not valid UTF-8 (byte offset {valid})"
                );
                unreadable = true;
                continue;
            }
        };
        checked.push(check_text(&name, k, text, pve));
    }
    let errors = checked
        .iter()
        .flat_map(|c| &c.diagnostics)
        .filter(|d| d.is_error())
        .count();

    if print {
        if let Some(c) = checked.first() {
            // The document prints back exactly what was read; print the document, not `text`,
            // so that a round-trip bug would show.
            let out = match c.kind {
                ConfKind::Corosync => corosync::Document::parse_recovering(&c.name, &c.text)
                    .0
                    .to_string(),
                ConfKind::Datacenter => DatacenterDocument::parse(&c.text).to_string(),
            };
            write_stdout(&out)?;
            for d in &c.diagnostics {
                eprint!("{}", d.render(Some(&c.text)));
            }
        }
    } else if json {
        let objs: Vec<JsonFile<'_>> = checked
            .iter()
            .map(|c| JsonFile {
                file: &c.name,
                kind: kind_str(c.kind),
                valid: !c.diagnostics.iter().any(Diagnostic::is_error),
                view: &c.view,
                diagnostics: &c.diagnostics,
            })
            .collect();
        let text = if files.len() == 1 {
            match objs.first() {
                Some(o) => serde_json::to_string_pretty(o)?,
                None => "null".to_string(),
            }
        } else {
            serde_json::to_string_pretty(&objs)?
        };
        write_stdout(&format!("{text}\n"))?;
    } else {
        let reports: Vec<FileDiagnostics<'_>> = checked
            .iter()
            .map(|c| FileDiagnostics {
                file: c.name.clone(),
                src: Some(c.text.as_str()),
                diagnostics: c.diagnostics.clone(),
            })
            .collect();
        messages::print(Format::Text, &reports, false);
    }

    Ok(if unreadable {
        Outcome::Error
    } else if errors > 0 {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_from_file_name() {
        let k = |s: &str| kind_from_name(Path::new(s));
        assert_eq!(k("/etc/pve/corosync.conf"), Some(ConfKind::Corosync));
        assert_eq!(k("corosync.conf.new"), Some(ConfKind::Corosync));
        assert_eq!(k("x/datacenter.cfg.bak"), Some(ConfKind::Datacenter));
        assert_eq!(k("cluster.conf"), None);
        assert_eq!(k("my-corosync.conf"), None);
    }

    #[test]
    fn pve_promotes_dropped_datacenter_lines() {
        let c = check_text(
            "d.cfg",
            ConfKind::Datacenter,
            "max_workers: 0\n".into(),
            true,
        );
        assert!(
            c.diagnostics.iter().any(Diagnostic::is_error),
            "{:?}",
            c.diagnostics
        );
        let c = check_text(
            "d.cfg",
            ConfKind::Datacenter,
            "max_workers: 0\n".into(),
            false,
        );
        assert!(!c.diagnostics.iter().any(Diagnostic::is_error));
    }
}
