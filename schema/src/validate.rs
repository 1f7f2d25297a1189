//! Manifest validation: every rule of SPEC.md "Validation", all problems in one run.
//!
//! Two stages, as ripgrep's `LowArgs` -> `HiArgs`:
//! 1. [`crate::yaml`] loads the text into a located tree; [`structural`] checks it against the
//!    manifest's JSON Schema (types, enums, required and unknown fields with "did you mean"),
//!    collecting every problem and the location of every field path.
//! 2. The typed [`Cluster`] is checked by the semantic rules in [`rules`], which point at the
//!    offending field through the path -> location map from stage 1.
//!
//! Checks that need the live cluster (is a joined node being renamed, would a step lose
//! quorum) belong to the planner, not here.

pub mod rules;
pub mod structural;

use crate::diag::{Diagnostic, Location};
use crate::spec::Cluster;
use std::collections::HashMap;

/// Field path -> byte span (offset, len) of its value, for pointing at problems.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    values: HashMap<String, (usize, usize)>,
}

impl Spans {
    /// Record the span of the value at `path`.
    pub fn insert(&mut self, path: String, offset: usize, len: usize) {
        self.values.insert(path, (offset, len));
    }

    /// The span of `path`, or of its nearest recorded ancestor.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(s) = self.values.get(p) {
                return Some(*s);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// The result of validating one YAML document.
#[derive(Debug, Clone)]
pub struct DocumentReport {
    /// The typed manifest, when it could be read (it may still have semantic errors).
    pub cluster: Option<Cluster>,
    /// Every error and warning, in document order.
    pub diagnostics: Vec<Diagnostic>,
}

impl DocumentReport {
    /// True when there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Validate every YAML document in `src` (named `file` in diagnostics).
///
/// A file with a YAML syntax error gives one document report holding that error.
pub fn validate_documents(file: &str, src: &str) -> Vec<DocumentReport> {
    let docs = match crate::yaml::parse(src) {
        Ok(d) => d,
        Err(e) => {
            return vec![DocumentReport {
                cluster: None,
                diagnostics: vec![e.in_file(file)],
            }]
        }
    };
    if docs.is_empty() {
        return vec![DocumentReport {
            cluster: None,
            diagnostics: vec![Diagnostic::error(
                "not-a-manifest",
                "the file holds no YAML document",
            )
            .in_file(file)
            .with_help(
                "a manifest starts with `apiVersion: pve-gitops.io/v1alpha1` and `kind: Cluster`",
            )],
        }];
    }
    docs.iter()
        .map(|doc| validate_node(file, src, doc))
        .collect()
}

fn validate_node(file: &str, src: &str, doc: &crate::yaml::Node) -> DocumentReport {
    let (json, mut diags, spans) = structural::check(src, doc);
    let locate = |path: &str| {
        spans
            .get(path)
            .map(|(off, len)| Location::from_offset(src, off, len))
    };
    let mut cluster = None;
    if let Some(json) = json {
        match serde_json::from_value::<Cluster>(json) {
            Ok(c) => {
                diags.extend(rules::check(&c).into_iter().map(|d| {
                    let loc = locate(&d.path);
                    d.at(loc)
                }));
                cluster = Some(c);
            }
            Err(e) => diags.push(
                Diagnostic::error("type", format!("cannot read the manifest: {e}"))
                    .at(Some(doc.location(src))),
            ),
        }
    }
    for d in &mut diags {
        d.file = file.to_string();
    }
    diags.sort_by_key(|d| {
        d.location
            .map(|l| (l.line, l.col))
            .unwrap_or((usize::MAX, 0))
    });
    DocumentReport {
        cluster,
        diagnostics: diags,
    }
}

/// Read exactly one manifest from `src`: the cluster and its warnings, or every error.
///
/// # Errors
/// All error diagnostics (syntax, structure and semantic rules), or a single error when the
/// file holds no document or more than one.
pub fn parse_cluster(file: &str, src: &str) -> Result<(Cluster, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut reports = validate_documents(file, src);
    if reports.len() > 1 {
        return Err(vec![Diagnostic::error(
            "multiple-documents",
            format!(
                "{file} holds {} YAML documents; expected one Cluster manifest",
                reports.len()
            ),
        )
        .in_file(file)
        .with_help("put one cluster per file, or pick it with --cluster")]);
    }
    let Some(report) = reports.pop() else {
        return Err(vec![
            Diagnostic::error("not-a-manifest", "no manifest").in_file(file)
        ]);
    };
    match (report.has_errors(), report.cluster) {
        (false, Some(c)) => Ok((c, report.diagnostics)),
        (_, _) => Err(report
            .diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect()),
    }
}
