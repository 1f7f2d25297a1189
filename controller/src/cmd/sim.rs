//! `pve-gitops sim`: create a simulated cluster directory, power its hosts off and on, show
//! it. The operator's side of the `sim:DIR` target (`crate::target::sim` in the library).

use super::Outcome;
use crate::cli::SimAction;
use anyhow::{bail, Context};
use pve_gitops::observed::Observed;
use pve_gitops::target::sim::{self, InitOptions, SimTarget};
use pve_gitops::target::Target;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Run one `sim` subcommand.
pub(crate) fn run(action: SimAction) -> anyhow::Result<Outcome> {
    match action {
        SimAction::Init {
            dir,
            nodes,
            names,
            from,
            guests,
            memory_mib,
            force,
        } => {
            let names = host_names(nodes, names, from.as_deref())?;
            let r = sim::init(
                &dir,
                &InitOptions {
                    names,
                    guests,
                    memory_mib,
                    force,
                },
            )?;
            print!("{}", init_text(&r));
            Ok(Outcome::Ok)
        }
        SimAction::PowerOff { dir, node } => power(&dir, &node, false),
        SimAction::PowerOn { dir, node } => power(&dir, &node, true),
        SimAction::Status { dir } => {
            let mut t = SimTarget::open(&dir)?;
            let o = t.observe()?;
            print!("{}", status_text(&t.describe(), &o, &t.state()?));
            Ok(Outcome::Ok)
        }
    }
}

/// `--names`, else the manifest's node names, else `pve1..pveN`.
fn host_names(
    nodes: Option<u32>,
    names: Option<Vec<String>>,
    from: Option<&Path>,
) -> anyhow::Result<Vec<String>> {
    if let Some(n) = names {
        return Ok(n.into_iter().map(|s| s.trim().to_string()).collect());
    }
    if let Some(path) = from {
        let src = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file = path.display().to_string();
        return match pve_gitops_schema::validate::parse_cluster(&file, &src) {
            Ok((cluster, _)) => Ok(cluster.spec.nodes.iter().map(|n| n.name.clone()).collect()),
            Err(diags) => {
                let mut msg = format!("{file} is not a valid manifest:\n");
                for d in diags {
                    msg.push_str(&d.render(Some(&src)));
                }
                bail!(msg)
            }
        };
    }
    let n = nodes.unwrap_or(3);
    if n == 0 {
        bail!("--nodes must be at least 1");
    }
    Ok((1..=n).map(|i| format!("pve{i}")).collect())
}

fn init_text(r: &sim::InitReport) -> String {
    let mut s = format!(
        "created simulated cluster directory {} (not a real cluster)\n  {} host(s), powered on, standalone (no cluster yet), {} MiB each: {}\n",
        r.dir.display(),
        r.hosts.len(),
        r.memory_mib,
        r.hosts.join(", ")
    );
    match (r.guests.first(), r.guests.last()) {
        (Some(a), Some(b)) => {
            let _ = writeln!(
                s,
                "  {} running qemu guest(s) {a}..{b} on {}, {} MiB each",
                r.guests.len(),
                r.hosts.first().map_or("", String::as_str),
                sim::INIT_GUEST_MEMORY_MIB
            );
        }
        _ => s.push_str("  no guests\n"),
    }
    let _ = writeln!(
        s,
        "  try: pve-gitops reconcile -f MANIFEST --target sim:{} --dry-run",
        r.dir.display()
    );
    s
}

fn power(dir: &Path, node: &str, on: bool) -> anyhow::Result<Outcome> {
    let c = sim::set_power(dir, node, on)?;
    let state = if on { "on" } else { "off" };
    if c.unchanged {
        println!("{node} is already powered {state}");
    } else {
        println!("{node} powered {state}");
    }
    if !c.stopped_guests.is_empty() {
        let ids: Vec<String> = c.stopped_guests.iter().map(u32::to_string).collect();
        println!("  guests stopped: {}", ids.join(", "));
    }
    if c.clustered {
        println!("  {}", quorum_line(&c.membership));
    } else {
        println!("  no cluster yet: no membership");
    }
    Ok(Outcome::Ok)
}

fn quorum_line(m: &pve_gitops::observed::Membership) -> String {
    let mut s = format!(
        "{}: {} of {} expected votes present, quorum {} ({} / 2 + 1)",
        if m.quorate { "quorate" } else { "NOT quorate" },
        m.total_votes,
        m.expected_votes,
        m.quorum,
        m.expected_votes
    );
    if let Some(e) = m.runtime_expected {
        let _ = write!(s, "; runtime expected votes {e} (pvecm expected)");
    }
    s
}

/// The `sim status` text.
fn status_text(describe: &str, o: &Observed, state: &sim::SimState) -> String {
    let mut s = format!("{describe}\n");
    let view = o.corosync.as_ref().map(|d| d.view());
    match &view {
        Some(v) => {
            let _ = writeln!(
                s,
                "cluster {}: config_version {}, {} node(s) in the nodelist",
                v.totem.cluster_name.as_deref().unwrap_or("(unnamed)"),
                o.config_version(),
                v.nodes.len()
            );
            let _ = writeln!(s, "  {}", quorum_line(&o.membership));
        }
        None => s.push_str("no cluster yet (no corosync.conf): every host is standalone\n"),
    }
    let mut per_node: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for g in o.guests.values() {
        let e = per_node.entry(g.node.as_str()).or_default();
        e.0 += 1;
        if g.running {
            e.1 += 1;
        }
    }
    s.push_str("hosts:\n");
    let width = o.hosts.keys().map(String::len).max().unwrap_or(0);
    for h in o.hosts.values() {
        let role = match view.as_ref().and_then(|v| {
            v.node_by_name(&h.name).or_else(|| {
                v.nodes
                    .iter()
                    .find(|n| n.name.is_none() && n.rings.get(&0) == Some(&h.name))
            })
        }) {
            Some(n) => format!(
                "member, nodeid {}, {} vote(s), {}",
                n.nodeid.map_or("?".into(), |i| i.to_string()),
                n.quorum_votes.unwrap_or(1),
                if o.membership.online.contains(&h.name) {
                    format!("config_version {}", o.config_version())
                } else {
                    "not in the membership".into()
                }
            ),
            None if state.hosts.get(&h.name).is_some_and(|x| x.removed) => {
                "removed by delnode (needs a reinstall to join again)".into()
            }
            None => "standalone".into(),
        };
        let mem = if h.memory_mib == 0 {
            "memory unknown".to_string()
        } else {
            format!("{} MiB", h.memory_mib)
        };
        let (n, r) = per_node.get(h.name.as_str()).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:width$}  {:3}  {role}; {mem}; {n} guest(s), {r} running",
            h.name,
            if h.online { "on" } else { "off" },
        );
    }
    for (node, (n, r)) in &per_node {
        if !o.hosts.contains_key(*node) {
            let _ = writeln!(
                s,
                "  nodes/{node}: {n} guest(s), {r} running (no such host)"
            );
        }
    }
    if !o.leftover_node_dirs.is_empty() {
        let _ = writeln!(
            s,
            "leftover node directories with guest configs (delnode leaves them): {}",
            o.leftover_node_dirs.join(", ")
        );
    }
    if let Some(l) = &o.lock {
        let _ = writeln!(s, "lock held: {l}");
    }
    let _ = writeln!(
        s,
        "migration bandwidth {} MiB/s (simulated)",
        state.migration_bandwidth_mib_s
    );
    s
}
