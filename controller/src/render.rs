//! Rendering a plan: text like `terraform plan` (one line per step with +/-/~ markers, the node,
//! why; unified diffs of corosync.conf and datacenter.cfg; a summary line), or one JSON object
//! (DESIGN.md §4, documented in README.md).

use crate::plan::step::{Step, StepKind};
use crate::plan::Plan;
use serde::Serialize;
use similar::TextDiff;
use std::fmt::Write as _;

/// The stable JSON shape of `reconcile --output json`.
#[derive(Debug, Serialize)]
pub struct PlanJson<'a> {
    /// No steps and no errors.
    pub in_sync: bool,
    /// The target, e.g. `sim:.pve-gitops/sim`.
    pub target: &'a str,
    /// The cluster name.
    pub cluster: &'a str,
    /// Steps in order; each has `kind`, `node`, `summary`, `reason`, `blocked` and its data.
    pub steps: &'a [Step],
    /// Refusals (the plan must not be applied).
    pub errors: &'a [String],
    /// Drift and leftovers.
    pub warnings: &'a [String],
    /// corosync.conf before and after the plan (null when unchanged).
    pub corosync_conf: Option<FileChange<'a>>,
    /// datacenter.cfg before and after the plan (null when unchanged).
    pub datacenter_cfg: Option<FileChange<'a>>,
}

/// A file before and after.
#[derive(Debug, Serialize)]
pub struct FileChange<'a> {
    /// Current content (null when the file does not exist).
    pub before: Option<&'a str>,
    /// Content after the plan.
    pub after: Option<&'a str>,
}

/// The JSON view of `plan`.
pub fn plan_json<'a>(plan: &'a Plan, target: &'a str, cluster: &'a str) -> PlanJson<'a> {
    let conf = (plan.corosync_before != plan.corosync_after).then_some(FileChange {
        before: plan.corosync_before.as_deref(),
        after: plan.corosync_after.as_deref(),
    });
    let dc = (plan.datacenter_before != plan.datacenter_after).then_some(FileChange {
        before: Some(plan.datacenter_before.as_str()),
        after: Some(plan.datacenter_after.as_str()),
    });
    PlanJson {
        in_sync: plan.in_sync(),
        target,
        cluster,
        steps: &plan.steps,
        errors: &plan.errors,
        warnings: &plan.warnings,
        corosync_conf: conf,
        datacenter_cfg: dc,
    }
}

fn diff(out: &mut String, name: &str, before: &str, after: &str) {
    let d = TextDiff::from_lines(before, after);
    let text = d
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (live)"), &format!("{name} (planned)"))
        .to_string();
    out.push_str(&text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}

fn version_of(text: Option<&str>) -> String {
    text.and_then(|t| pve_gitops_schema::corosync::Document::parse(t).ok())
        .and_then(|d| d.view().totem.config_version)
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into())
}

/// One step as a plan line (with its reason and blocked marker on following lines).
pub fn step_line(s: &Step) -> String {
    let mut out = format!(
        "  {} {:<18} {:<10} {}\n",
        s.marker(),
        s.kind.name(),
        s.node,
        s.summary
    );
    let _ = writeln!(out, "      why: {}", s.reason);
    if let Some(b) = &s.blocked {
        let _ = writeln!(out, "      blocked: {b}");
    }
    out
}

/// The plan as text.
pub fn plan_text(plan: &Plan, cluster: &str) -> String {
    let mut out = String::new();
    if plan.in_sync() {
        let _ = writeln!(
            out,
            "Cluster {cluster} is in sync with the manifest: nothing to do."
        );
    } else if !plan.errors.is_empty() && plan.steps.is_empty() {
        let _ = writeln!(out, "Plan for cluster {cluster}: refused.");
    } else if !plan.steps.is_empty() {
        let _ = writeln!(out, "Plan for cluster {cluster}:\n");
        for s in &plan.steps {
            out.push_str(&step_line(s));
        }
    }
    if plan.corosync_before != plan.corosync_after {
        let _ = writeln!(
            out,
            "\ncorosync.conf (config_version {} -> {}):",
            version_of(plan.corosync_before.as_deref()),
            version_of(plan.corosync_after.as_deref())
        );
        diff(
            &mut out,
            "corosync.conf",
            plan.corosync_before.as_deref().unwrap_or(""),
            plan.corosync_after.as_deref().unwrap_or(""),
        );
    }
    if plan.datacenter_before != plan.datacenter_after {
        let _ = writeln!(out, "\ndatacenter.cfg:");
        diff(
            &mut out,
            "datacenter.cfg",
            &plan.datacenter_before,
            &plan.datacenter_after,
        );
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &plan.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    if !plan.errors.is_empty() {
        let _ = writeln!(out, "\nRefused (nothing will be applied):");
        for e in &plan.errors {
            let _ = writeln!(out, "  x {e}");
        }
    }
    if !plan.steps.is_empty() {
        let _ = writeln!(out, "\n{}", summary(plan));
    }
    out
}

/// `Plan: 1 to create, 2 to join, ...` summary line.
pub fn summary(plan: &Plan) -> String {
    let count = |f: fn(&StepKind) -> bool| plan.steps.iter().filter(|s| f(&s.kind)).count();
    let parts = [
        (
            count(|k| matches!(k, StepKind::CreateCluster(_))),
            "to create",
        ),
        (count(|k| matches!(k, StepKind::JoinNode(_))), "to join"),
        (
            count(|k| {
                matches!(
                    k,
                    StepKind::UpdateCorosync(_)
                        | StepKind::SetExpectedVotes(_)
                        | StepKind::SetDatacenter(_)
                )
            }),
            "to change",
        ),
        (
            count(|k| matches!(k, StepKind::MigrateGuest(_))),
            "to migrate",
        ),
        (count(|k| matches!(k, StepKind::RemoveNode(_))), "to remove"),
        (count(|k| matches!(k, StepKind::Wait(_))), "gate(s)"),
    ];
    let blocked = plan.steps.iter().filter(|s| s.blocked.is_some()).count();
    let mut text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if blocked > 0 {
        text.push(format!("{blocked} blocked"));
    }
    format!("Plan: {}.", text.join(", "))
}
