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
use pve_gitops::plan::Plan;
use pve_gitops::reconcile::{self, Event, Mode, Outcome as RunOutcome};
use pve_gitops::render;
use pve_gitops::target;
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
    /// `--peer-wait`.
    pub peer_wait: std::time::Duration,
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
        join_password_file: args.target.join_password_file.clone(),
        api_token_file: args.target.api_token_file.clone(),
        fingerprints: args.target.fingerprint.clone(),
        ca_bundle: args.target.ca_bundle.clone(),
        use_ssh: args.target.use_ssh,
        with_local_disks: args.target.with_local_disks,
        api_nodes: args.target.api_node.clone(),
        peer: args.target.peer.clone(),
    };
    let (mut tgt, note) = target::resolve(&opts, &cluster)?;
    let described = tgt.describe();
    let text = args.output == PlanOutput::Text;
    let first_line = format!(
        "Target: {described}{}",
        note.map(|n| format!(" — {n}")).unwrap_or_default()
    );
    if text {
        println!("{first_line}");
    } else {
        eprintln!("{first_line}");
    }
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply {
            max_steps: args.max_steps,
        }
    };
    // A spinner on the step that is running (real targets wait for quorum, reloads and
    // migrations), only when stderr is a terminal; plain lines otherwise.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut spinner: Option<indicatif::ProgressBar> = None;
    let mut progress = |e: Event<'_>| {
        if !text {
            return;
        }
        match e {
            Event::Starting(s) => {
                println!(
                    "{} {:<18} {:<10} {}",
                    s.marker(),
                    s.kind.name(),
                    s.node,
                    s.summary
                );
                if tty {
                    let pb = indicatif::ProgressBar::new_spinner();
                    pb.set_message(format!("{} on {}", s.kind.name(), s.node));
                    pb.enable_steady_tick(std::time::Duration::from_millis(120));
                    spinner = Some(pb);
                }
            }
            Event::Done(_, done) => {
                if let Some(pb) = spinner.take() {
                    pb.finish_and_clear();
                }
                println!("    done: {} ({} ms)", done.message, done.duration_ms)
            }
            Event::Replanning(e) => {
                if let Some(pb) = spinner.take() {
                    pb.finish_and_clear();
                }
                println!("    {e}")
            }
            Event::Waiting(why) => println!("    waiting (up to --peer-wait): {why}"),
        }
    };
    let opts = reconcile::Options {
        peer_wait: args.peer_wait,
    };
    let report =
        match reconcile::run_with(&cluster, tgt.as_mut(), mode, opts, &|| false, &mut progress) {
            Ok(r) => r,
            Err(e) => return Err(anyhow::Error::new(e)),
        };
    let name = &cluster.metadata.name;
    if !text {
        let mut j = serde_json::to_value(render::plan_json(&report.plan, &described, name))
            .unwrap_or_default();
        if let Some(obj) = j.as_object_mut() {
            if !args.dry_run {
                obj.insert(
                    "result".into(),
                    serde_json::to_value(&report.outcome).unwrap_or_default(),
                );
                obj.insert(
                    "applied".into(),
                    serde_json::to_value(&report.applied).unwrap_or_default(),
                );
            }
        }
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
    }
    Ok(match report.outcome {
        RunOutcome::InSync => {
            if text {
                if args.dry_run {
                    print_plan(&report.plan, &described, &cluster, args.output);
                } else if report.applied.is_empty() {
                    println!("Cluster {name} is in sync with the manifest: nothing to do.");
                } else {
                    println!(
                        "\nConverged: cluster {name} matches the manifest ({} step(s) applied).",
                        report.applied.len()
                    );
                }
            }
            Outcome::Ok
        }
        RunOutcome::ChangesPending => {
            if text {
                print_plan(&report.plan, &described, &cluster, args.output);
            }
            Outcome::Findings
        }
        RunOutcome::Refused => {
            if text {
                print_plan(&report.plan, &described, &cluster, args.output);
            }
            Outcome::Error
        }
        RunOutcome::StoppedAtGate { what } | RunOutcome::WaitingForNode { what } => {
            if text {
                println!("\nStopped at a gate: {what}");
                println!("\nRemaining plan:");
                print_plan(&report.plan, &described, &cluster, args.output);
                println!("Re-run `pve-gitops reconcile` when that is done.");
            }
            Outcome::Findings
        }
        RunOutcome::Cancelled => Outcome::Findings,
    })
}
