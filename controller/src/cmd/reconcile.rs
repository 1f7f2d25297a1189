//! `pve-gitops reconcile -f MANIFEST [--target T] [--dry-run] [--output text|json]`.
//!
//! Dry run: observe, plan, print; exit 0 in sync, 1 changes pending (blocked steps included),
//! 2 error (invalid manifest, unreadable cluster, refused plan). Apply: observe, plan, run the
//! first runnable step, and again — re-observing before every step, so a step whose effect is
//! already present is never repeated and an interrupted run converges when re-run; stops at a
//! `wait` gate with exit 1 and what the operator must do; exit 0 once converged.

use super::Outcome;
use crate::cli::PlanOutput;
use anyhow::{Context, Result};
use pve_gitops::plan::{plan, Plan};
use pve_gitops::render;
use pve_gitops::target::{self, Target};
use pve_gitops_schema::spec::Cluster;
use std::path::Path;

/// Arguments of `reconcile`.
pub struct Args<'a> {
    /// The manifest file.
    pub manifest: &'a Path,
    /// `--target` and its options.
    pub target: &'a crate::cli::TargetArgs,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--output`.
    pub output: PlanOutput,
    /// `--max-steps`.
    pub max_steps: usize,
}

/// Read and validate the manifest; print every problem and return None when invalid.
pub fn load_manifest(path: &Path) -> Result<Option<Cluster>> {
    let src = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    let name = path.display().to_string();
    match pve_gitops_schema::validate::parse_cluster(&name, &src) {
        Ok((cluster, warnings)) => {
            for w in warnings {
                eprint!("{}", w.render(Some(&src)));
            }
            Ok(Some(cluster))
        }
        Err(errors) => {
            for e in &errors {
                eprint!("{}", e.render(Some(&src)));
            }
            eprintln!(
                "error: {name} is invalid ({} error(s)); nothing was planned",
                errors.len()
            );
            Ok(None)
        }
    }
}

fn print_plan(p: &Plan, target: &str, cluster: &Cluster, output: PlanOutput) {
    match output {
        PlanOutput::Text => print!("{}", render::plan_text(p, &cluster.metadata.name)),
        PlanOutput::Json => {
            let j = render::plan_json(p, target, &cluster.metadata.name);
            println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        }
    }
}

/// Run `reconcile`.
pub fn run(args: Args<'_>) -> Result<Outcome> {
    let Some(cluster) = load_manifest(args.manifest)? else {
        return Ok(Outcome::Error);
    };
    let opts = target::TargetOptions {
        spec: args.target.target.clone(),
        node: args.target.node.clone(),
        config_dir: args.target.config_dir.clone(),
        corosync_conf: args.target.corosync_conf.clone(),
        authkey: args.target.authkey.clone(),
        start_cmd: args.target.start_cmd.clone(),
        stop_cmd: args.target.stop_cmd.clone(),
    };
    let (mut tgt, note) = target::resolve(&opts, &cluster)?;
    let described = tgt.describe();
    if args.output == PlanOutput::Text {
        println!(
            "Target: {described}{}",
            note.map(|n| format!(" — {n}")).unwrap_or_default()
        );
    } else if let Some(n) = note {
        eprintln!("Target: {described} — {n}");
    }
    let observed = tgt.observe()?;
    let p = plan(&cluster, &observed);
    if args.dry_run {
        print_plan(&p, &described, &cluster, args.output);
        return Ok(if !p.errors.is_empty() {
            Outcome::Error
        } else if p.in_sync() {
            Outcome::Ok
        } else {
            Outcome::Findings
        });
    }
    apply(tgt.as_mut(), &cluster, p, &described, &args)
}

fn apply(
    tgt: &mut dyn Target,
    cluster: &Cluster,
    mut p: Plan,
    described: &str,
    args: &Args<'_>,
) -> Result<Outcome> {
    let text = args.output == PlanOutput::Text;
    let mut applied: Vec<serde_json::Value> = Vec::new();
    let mut last_key: Option<String> = None;
    for _ in 0..args.max_steps {
        if !p.errors.is_empty() {
            print_plan(&p, described, cluster, args.output);
            return Ok(Outcome::Error);
        }
        if p.in_sync() {
            if text {
                println!(
                    "Converged: cluster {} matches the manifest.",
                    cluster.metadata.name
                );
            } else {
                print_report(&applied, &p, described, cluster, "converged");
            }
            return Ok(Outcome::Ok);
        }
        let runnable = p.next_runnable().cloned();
        if let Some(step) = &runnable {
            if let Err(who) = tgt.can_run(step) {
                if text {
                    println!("\nStopped: the next step must run elsewhere: {who}");
                    print!("{}", render::step_line(step));
                } else {
                    print_report(&applied, &p, described, cluster, "waiting_for_other_node");
                }
                return Ok(Outcome::Findings);
            }
        }
        let Some(step) = runnable else {
            if text {
                println!("\nStopped: nothing more can run until this is done:");
                if let Some(stop) = p.first_stop() {
                    print!("{}", render::step_line(stop));
                }
                println!("\nRemaining plan:");
                print!("{}", render::plan_text(&p, &cluster.metadata.name));
                println!("Re-run `pve-gitops reconcile` when it is done.");
            } else {
                print_report(&applied, &p, described, cluster, "stopped_at_gate");
            }
            return Ok(Outcome::Findings);
        };
        let key = step.key();
        if last_key.as_deref() == Some(key.as_str()) {
            anyhow::bail!(
                "step `{}` was applied but the cluster does not show its effect; stopping (check the target)",
                step.summary
            );
        }
        if text {
            println!(
                "{} {:<18} {:<10} {}",
                step.marker(),
                step.kind.name(),
                step.node,
                step.summary
            );
        }
        let done = match tgt.apply(&step) {
            Ok(done) => done,
            Err(e @ target::TargetError::Stale { .. }) => {
                if text {
                    println!("    {e}");
                }
                last_key = None;
                let observed = tgt.observe()?;
                p = plan(cluster, &observed);
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("{} on {} failed", step.kind.name(), step.node)))
            }
        };
        if text {
            println!("    done: {} ({} ms)", done.message, done.duration_ms);
        }
        applied.push(serde_json::json!({
            "kind": step.kind.name(),
            "node": step.node,
            "summary": step.summary,
            "message": done.message,
            "duration_ms": done.duration_ms,
        }));
        last_key = Some(key);
        let observed = tgt.observe()?;
        p = plan(cluster, &observed);
    }
    anyhow::bail!(
        "stopped after --max-steps {} steps without converging",
        args.max_steps
    )
}

fn print_report(
    applied: &[serde_json::Value],
    p: &Plan,
    described: &str,
    cluster: &Cluster,
    result: &str,
) {
    let mut report = serde_json::to_value(render::plan_json(p, described, &cluster.metadata.name))
        .unwrap_or_default();
    if let Some(obj) = report.as_object_mut() {
        obj.insert("result".into(), result.into());
        obj.insert("applied".into(), applied.to_vec().into());
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
