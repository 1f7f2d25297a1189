//! `pve-gitops validate PATH...`: every manifest problem in one run.

use super::Outcome;
use crate::cli::Format;
use crate::messages::{self, FileDiagnostics};
use anyhow::Result;
use pve_gitops_schema::diag::Diagnostic;
use pve_gitops_schema::validate::validate_documents;
use std::path::{Path, PathBuf};

/// Expand files and directories (recursively, `*.yaml` / `*.yml`, sorted) into manifest files.
pub fn collect_manifests(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(p)
                .follow_links(true)
                .into_iter()
                .filter_map(|e| match e {
                    Ok(e) => Some(e),
                    Err(err) => {
                        problems.push(format!("{}: {err}", p.display()));
                        None
                    }
                })
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .filter(|f| matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
                .collect();
            found.sort();
            if found.is_empty() {
                problems.push(format!(
                    "{}: no *.yaml or *.yml files in this directory",
                    p.display()
                ));
            }
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            problems.push(format!("{}: no such file or directory", p.display()));
        }
    }
    (files, problems)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Run `validate`.
pub fn run(paths: &[PathBuf], format: Format, strict: bool) -> Result<Outcome> {
    let (files, mut problems) = collect_manifests(paths);
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((display(f), t)),
            Err(e) => problems.push(format!("{}: cannot read: {e}", display(f))),
        }
    }
    let reports: Vec<FileDiagnostics<'_>> = texts
        .iter()
        .map(|(name, src)| FileDiagnostics {
            file: name.clone(),
            src: Some(src.as_str()),
            diagnostics: validate_documents(name, src)
                .into_iter()
                .flat_map(|r| r.diagnostics)
                .collect::<Vec<Diagnostic>>(),
        })
        .collect();
    let summary = messages::print(format, &reports, strict);
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(if !problems.is_empty() {
        Outcome::Error
    } else if summary.errors > 0 {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}
