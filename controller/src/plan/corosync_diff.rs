//! corosync.conf differences between the manifest and the live file, as `update_corosync`
//! steps (one config_version bump each), in a safe order:
//!
//! 1. add new links (a working link must exist at all times, so adding comes before removing);
//! 2. re-address a link: when another link carries traffic, remove the link (reload) and add
//!    it back with the new addresses (reload) — corosync refuses to change an existing node's
//!    address on an existing link by reload; with a single link this is shown blocked (add a
//!    second link first);
//! 3. remove links the manifest no longer uses;
//! 4. options corosync re-reads on reload (votes, link priority, token_coefficient, two_node);
//! 5. options only read at startup (link_mode/rrp_mode, ip_version, wait_for_all): one edit
//!    applied by a rolling restart with a quorum check between nodes;
//! 6. transport and secauth: nodes on the old and new setting cannot talk, so a rolling restart
//!    would split the cluster; shown as a blocked step that needs a full cluster restart.

use super::phases::{executor, links_of, Batch};
use super::step::{Method, Step, StepKind, UpdateCorosync};
use crate::observed::Observed;
use pve_gitops_schema::corosync::Document;
use pve_gitops_schema::spec::{Cluster, Transport};
use std::collections::{BTreeMap, BTreeSet};

/// Joined nodes the manifest lists (present, or absent but not removed yet — they are still
/// members and must keep an address on every link), with desired and live addresses per link.
struct Pair {
    name: String,
    desired: BTreeMap<u8, String>,
    live: BTreeMap<u8, String>,
    desired_votes: u32,
    live_votes: u32,
}

fn pairs(desired: &Cluster, doc: &Document) -> Vec<Pair> {
    let view = doc.view();
    let mut out = Vec::new();
    for n in &desired.spec.nodes {
        if let Some(live) = view.node_by_name(&n.name) {
            let live_votes = live.quorum_votes.unwrap_or(1);
            // A node on its way out keeps the live addresses the manifest does not mention.
            let mut want = if n.is_present() {
                BTreeMap::new()
            } else {
                live.rings.clone()
            };
            want.extend(links_of(n));
            out.push(Pair {
                name: n.name.clone(),
                desired: want,
                live: live.rings.clone(),
                // A node on its way out keeps its votes until delnode.
                desired_votes: if n.is_present() {
                    n.quorum_votes
                } else {
                    live_votes
                },
                live_votes,
            });
        }
    }
    out
}

/// Joined nodes the manifest does not list: their address on a new link is unknown.
fn unmanaged(desired: &Cluster, doc: &Document) -> Vec<String> {
    doc.view()
        .nodes
        .into_iter()
        .filter_map(|n| n.name)
        .filter(|n| desired.node(n).is_none())
        .collect()
}

/// Joined nodes that would be left without an address on link `l` if it is (re-)created:
/// nodes outside the manifest, and listed nodes without a `ring<l>_addr`.
fn lacking(pairs: &[Pair], unmanaged: &[String], l: u8) -> Vec<String> {
    let mut out: Vec<String> = unmanaged.to_vec();
    out.extend(
        pairs
            .iter()
            .filter(|p| !p.desired.contains_key(&l))
            .map(|p| p.name.clone()),
    );
    out
}

/// Block a link-creating step when some joined node would have no address on the link
/// (corosync refuses a nodelist where nodes have different link sets).
fn block_if_lacking(step: Option<Step>, lacking: &[String], l: u8) -> Option<Step> {
    step.map(|s| {
        if lacking.is_empty() {
            s
        } else {
            s.blocked(format!(
                "joined node(s) {} have no ring{l}_addr in the manifest (or are not in it): every node needs an address on link {l}; add it, or remove the node first",
                lacking.join(", ")
            ))
        }
    })
}

fn bool01(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Build the step for `changes` applied to `next` (already edited).
fn step(
    model: &Observed,
    mut next: Document,
    changes: Vec<String>,
    method: Method,
    method_reason: &str,
) -> Option<Step> {
    let via = executor(model, &[])?;
    let from_version = model.config_version();
    let to_version = next.bump_config_version();
    let mut order: Vec<(u32, String)> = next
        .view()
        .nodes
        .into_iter()
        .filter_map(|n| Some((n.nodeid.unwrap_or(0), n.name?)))
        .filter(|(_, n)| model.membership.online.contains(n))
        .collect();
    order.sort();
    let reason = match method {
        Method::Reload => "corosync.conf differs from the manifest".to_string(),
        Method::RollingRestart => {
            format!("corosync.conf differs from the manifest; {method_reason}")
        }
    };
    Some(Step::new(
        StepKind::UpdateCorosync(UpdateCorosync {
            changes,
            method,
            method_reason: method_reason.to_string(),
            restart_order: match method {
                Method::Reload => Vec::new(),
                Method::RollingRestart => order.into_iter().map(|(_, n)| n).collect(),
            },
            from_version,
            to_version,
            corosync_conf: String::new(),
        }),
        via,
        reason,
    ))
    .map(|mut s| {
        if let StepKind::UpdateCorosync(u) = &mut s.kind {
            u.corosync_conf = next.to_string();
        }
        // Never a corosync.conf in which a node has no address on any link (it could not
        // start corosync again).
        let stranded: Vec<String> = next
            .view()
            .nodes
            .into_iter()
            .filter(|n| n.rings.is_empty())
            .map(|n| n.name.unwrap_or_else(|| "(unnamed)".into()))
            .collect();
        if stranded.is_empty() {
            s
        } else {
            s.blocked(format!(
                "the edit would leave {} without an address on any link",
                stranded.join(", ")
            ))
        }
    })
}

fn add_interface(desired: &Cluster, next: &mut Document, link: u8) {
    let t = &desired.spec.totem;
    let settings = t.links.iter().find(|l| l.number == link);
    let mut keys: Vec<(String, String)> = Vec::new();
    if t.transport == Transport::Knet {
        if let Some(p) = settings.and_then(|s| s.priority) {
            keys.push(("knet_link_priority".into(), p.to_string()));
        }
    } else if let Some(b) = settings.and_then(|s| s.bindnetaddr) {
        keys.push(("bindnetaddr".into(), b.to_string()));
    }
    let refs: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    next.add_interface(link, &refs);
}

/// The next corosync.conf edit the manifest needs, if any.
pub fn update(desired: &Cluster, model: &Observed, excluded: &BTreeSet<String>) -> Option<Batch> {
    let doc = model.corosync.as_ref()?;
    if !model.membership.quorate {
        return None;
    }
    let view = doc.view();
    let pairs = pairs(desired, doc);
    let unmanaged = unmanaged(desired, doc);
    let live_links: BTreeSet<u8> = view
        .nodes
        .iter()
        .flat_map(|n| n.rings.keys().copied())
        .collect();
    let want_links: BTreeSet<u8> = desired.link_numbers().into_iter().collect();
    let mut candidates: Vec<Step> = Vec::new();

    // 1. New links.
    let added: Vec<u8> = want_links.difference(&live_links).copied().collect();
    if !added.is_empty() {
        let mut next = doc.clone();
        let mut changes = Vec::new();
        let mut missing = Vec::new();
        for l in &added {
            for p in &pairs {
                if let Some(a) = p.desired.get(l) {
                    next.set_ring_addr(&p.name, *l, a);
                }
            }
            add_interface(desired, &mut next, *l);
            let addrs: Vec<String> = pairs
                .iter()
                .filter_map(|p| Some(format!("{} {}", p.name, p.desired.get(l)?)))
                .collect();
            changes.push(format!("add link {l} ({})", addrs.join(", ")));
            for n in lacking(&pairs, &unmanaged, *l) {
                if !missing.contains(&n) {
                    missing.push(n);
                }
            }
        }
        let l = added.first().copied().unwrap_or(0);
        candidates.extend(block_if_lacking(
            step(model, next, changes, Method::Reload, ""),
            &missing,
            l,
        ));
    }

    // 2. Re-addressed links. corosync refuses to change an existing node's address on an
    // existing link by reload, and a node restarted with the new file while the others run
    // the old one is not a fix either (it exits on the config_version mismatch or cannot
    // reach them). The safe way: while another link carries traffic, remove the link
    // (reload) and add it back with the new addresses (reload).
    let moved_on = |k: &u8| pairs.iter().any(|p| p.desired.get(k) != p.live.get(k));
    for l in want_links.intersection(&live_links) {
        let moved: Vec<&Pair> = pairs
            .iter()
            .filter(|p| p.desired.get(l) != p.live.get(l))
            .collect();
        if moved.is_empty() {
            continue;
        }
        let what: Vec<String> = moved
            .iter()
            .map(|p| {
                format!(
                    "{} ring{l}_addr {} -> {}",
                    p.name,
                    p.live.get(l).map(String::as_str).unwrap_or("(none)"),
                    p.desired.get(l).map(String::as_str).unwrap_or("(none)")
                )
            })
            .collect();
        let carrier = live_links.iter().find(|k| {
            *k != l
                && !(want_links.contains(k) && moved_on(k))
                && view.nodes.iter().all(|n| n.rings.contains_key(k))
        });
        let mut next = doc.clone();
        next.remove_ring_addr_everywhere(*l);
        next.remove_interface(*l);
        let s = step(
            model,
            next,
            vec![format!(
                "remove link {l} to re-create it with new addresses (step 1 of 2: {})",
                what.join(", ")
            )],
            Method::Reload,
            "",
        );
        match carrier {
            Some(_) => candidates.extend(block_if_lacking(s, &lacking(&pairs, &unmanaged, *l), *l)),
            None => candidates.extend(s.map(|s| {
                s.blocked(format!(
                    "link {l} is the only working link, so it cannot be removed and re-created; \
                     corosync refuses an address change by reload and a restarted node would not \
                     rejoin: add a second link (ring<N>_addr on every node) first, then change \
                     the address"
                ))
            })),
        }
    }

    // 3. Links the manifest no longer uses — only while a link that stays carries every node
    // (when the new links could not be added above, e.g. a node lacks an address on them,
    // removing the old ones would leave the cluster without a link).
    let removed: Vec<u8> = live_links.difference(&want_links).copied().collect();
    if !removed.is_empty() && !want_links.is_empty() {
        let mut next = doc.clone();
        let mut changes = Vec::new();
        for l in &removed {
            next.remove_ring_addr_everywhere(*l);
            next.remove_interface(*l);
            changes.push(format!("remove link {l}"));
        }
        let carrier = live_links
            .intersection(&want_links)
            .any(|k| view.nodes.iter().all(|n| n.rings.contains_key(k)));
        let s = step(model, next, changes, Method::Reload, "");
        if carrier {
            candidates.extend(s);
        } else {
            let list = |ls: &mut dyn Iterator<Item = &u8>| {
                ls.map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
            };
            let why = format!(
                "removing link {} would leave no link that every node has: link {} must be added (and carry every node) first",
                list(&mut removed.iter()),
                list(&mut want_links.difference(&live_links))
            );
            candidates.extend(s.map(|s| s.blocked(why)));
        }
    }

    // 4. Reloadable options.
    {
        let mut next = doc.clone();
        let mut changes = Vec::new();
        for p in &pairs {
            if p.desired_votes != p.live_votes {
                next.set_node_key(&p.name, "quorum_votes", &p.desired_votes.to_string());
                changes.push(format!(
                    "{} quorum_votes {} -> {}",
                    p.name, p.live_votes, p.desired_votes
                ));
            }
        }
        if desired.spec.totem.transport == Transport::Knet {
            for ls in &desired.spec.totem.links {
                let Some(want) = ls.priority else { continue };
                if !live_links.contains(&ls.number) {
                    continue;
                }
                let live = view
                    .totem
                    .interfaces
                    .get(&ls.number)
                    .and_then(|i| i.knet_link_priority);
                if live != Some(want) {
                    next.add_interface(ls.number, &[("knet_link_priority", &want.to_string())]);
                    changes.push(format!(
                        "link {} knet_link_priority {} -> {want}",
                        ls.number,
                        live.map(|p| p.to_string())
                            .unwrap_or_else(|| "(default)".into())
                    ));
                }
            }
        }
        if let Some(tc) = desired.spec.totem.token_coefficient {
            if view.totem.token_coefficient != Some(tc) {
                next.set(&["totem"], "token_coefficient", &tc.to_string());
                changes.push(format!("token_coefficient -> {tc}"));
            }
        }
        if let Some(b) = desired.spec.quorum.two_node {
            if view.quorum.two_node.unwrap_or(0) != u8::from(b) {
                next.set(&["quorum"], "two_node", bool01(b));
                changes.push(format!("two_node -> {}", bool01(b)));
            }
        }
        if !changes.is_empty() {
            candidates.extend(step(model, next, changes, Method::Reload, ""));
        }
    }

    // 5. Options read only at startup.
    {
        let t = &desired.spec.totem;
        let mut next = doc.clone();
        let mut changes = Vec::new();
        if let Some(mode) = t.rrp_mode {
            let (key, live) = match t.transport {
                Transport::Knet => (
                    "link_mode",
                    view.totem
                        .link_mode
                        .clone()
                        .unwrap_or_else(|| "passive".into()),
                ),
                _ => (
                    "rrp_mode",
                    view.totem.rrp_mode.clone().unwrap_or_else(|| "none".into()),
                ),
            };
            if live != mode.as_str() {
                next.set(&["totem"], key, mode.as_str());
                changes.push(format!("{key} {live} -> {}", mode.as_str()));
            }
        }
        if let Some(live) = &view.totem.ip_version {
            if live != t.ip_version.as_str() {
                next.set(&["totem"], "ip_version", t.ip_version.as_str());
                changes.push(format!("ip_version {live} -> {}", t.ip_version.as_str()));
            }
        }
        if let Some(b) = desired.spec.quorum.wait_for_all {
            if view.quorum.wait_for_all.unwrap_or(0) != u8::from(b) {
                next.set(&["quorum"], "wait_for_all", bool01(b));
                changes.push(format!("wait_for_all -> {}", bool01(b)));
            }
        }
        if !changes.is_empty() {
            candidates.extend(step(
                model,
                next,
                changes,
                Method::RollingRestart,
                "corosync reads these only at startup",
            ));
        }
    }

    // 6. Options where restarted and not-yet-restarted nodes cannot talk to each other:
    // a rolling restart would split the cluster, so only a full cluster restart applies them.
    // Shown, never automated.
    {
        let t = &desired.spec.totem;
        let mut next = doc.clone();
        let mut changes = Vec::new();
        let live_transport = view.effective_transport().to_string();
        if live_transport != t.transport.as_str() {
            next.set(&["totem"], "transport", t.transport.as_str());
            changes.push(format!(
                "transport {live_transport} -> {}",
                t.transport.as_str()
            ));
        }
        if let Some(live) = &view.totem.secauth {
            let on = matches!(live.as_str(), "on" | "yes" | "1");
            if on != t.secauth {
                let v = if t.secauth { "on" } else { "off" };
                next.set(&["totem"], "secauth", v);
                changes.push(format!("secauth {live} -> {v}"));
            }
        }
        if !changes.is_empty() {
            candidates.extend(
                step(
                    model,
                    next,
                    changes,
                    Method::RollingRestart,
                    "nodes on the old and the new setting cannot talk to each other",
                )
                .map(|mut s| {
                    if let StepKind::UpdateCorosync(u) = &s.kind {
                        s.summary = format!(
                            "{}; config_version {} -> {}; full cluster restart (not a rolling one: {})",
                            u.changes.join(", "),
                            u.from_version,
                            u.to_version,
                            u.method_reason
                        );
                    }
                    s.blocked(
                        "needs a full cluster restart (stop corosync on every node, install the new \
                         corosync.conf everywhere, start them again): quorum is lost meanwhile, so \
                         pve-gitops does not do it automatically",
                    )
                }),
            );
        }
    }

    let first = candidates
        .into_iter()
        .find(|s| !excluded.contains(&s.key()))?;
    Some(Batch {
        steps: vec![first],
        errors: Vec::new(),
    })
}
