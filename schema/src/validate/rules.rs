//! Stage 2: the semantic rules of SPEC.md "Validation" on a typed [`Cluster`].
//!
//! Each rule pushes a [`Diagnostic`] with a stable `rule` id and the field path it is about;
//! the caller attaches the file location. Every rule runs, so every problem is reported.

use crate::diag::Diagnostic;
use crate::spec::{Cluster, MigrationType, RrpMode, Transport, MAX_LINK};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// corosync 3's default `totem.token` in ms.
pub const DEFAULT_TOKEN_MS: u64 = 3000;
/// corosync's default `token_coefficient` in ms (PVE writes 125 on new clusters).
pub const DEFAULT_TOKEN_COEFFICIENT_MS: u64 = 650;
/// Effective token timeout above which the operator is warned.
pub const TOKEN_WARN_MS: u64 = 10_000;

/// Run every semantic rule; diagnostics carry field paths but no locations.
pub fn check(c: &Cluster) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    cluster_name(c, &mut out);
    nodes(c, &mut out);
    links(c, &mut out);
    quorum(c, &mut out);
    migration(c, &mut out);
    guests(c, &mut out);
    warnings(c, &mut out);
    out
}

/// The characters Proxmox's corosync.conf tokenizer cannot read in a value.
pub fn pve_unsafe(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if value.contains('#') {
        Some("contains `#`")
    } else if value.contains(['{', '}']) {
        Some("contains a brace")
    } else {
        None
    }
}

/// A ring address as corosync reads it, for comparing two of them: an IP address in canonical
/// form (`FD00:0::1` and `fd00::1` are one address), a hostname in lower case.
pub fn address_key(addr: &str) -> String {
    addr.parse::<IpAddr>()
        .map_or_else(|_| addr.to_ascii_lowercase(), |ip| ip.to_string())
}

/// Whether `name` is an LDH hostname label (letters, digits, `-` not first or last, <= 63).
pub fn is_ldh(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn cluster_name(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let name = &c.metadata.name;
    if name.len() > 15 {
        out.push(
            Diagnostic::error(
                "cluster-name",
                format!(
                    "cluster name `{name}` is {} characters long; pvecm allows at most 15",
                    name.len()
                ),
            )
            .at_path("metadata.name")
            .with_help("choose a shorter name (it becomes totem.cluster_name)"),
        );
    }
    if !is_ldh(name) {
        out.push(
            Diagnostic::error(
                "cluster-name",
                format!(
                    "cluster name `{name}` must match ^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$"
                ),
            )
            .at_path("metadata.name")
            .with_help("use letters, digits and `-` (not first or last)"),
        );
    }
}

fn nodes(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let knet = c.spec.totem.transport == Transport::Knet;
    if c.present_nodes().next().is_none() {
        out.push(
            Diagnostic::error("no-nodes", "the manifest has no present node")
                .at_path("spec.nodes")
                .with_help("list at least one node without `state: absent`"),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<u32, usize> = HashMap::new();
    // Keyed by [`address_key`].
    let mut addrs: HashMap<String, String> = HashMap::new();
    for (i, n) in c.spec.nodes.iter().enumerate() {
        let p = format!("spec.nodes[{i}]");
        if !is_ldh(&n.name) {
            out.push(
                Diagnostic::error(
                    "node-name",
                    format!("node name `{}` is not a valid hostname", n.name),
                )
                .at_path(format!("{p}.name"))
                .with_help(
                    "use letters, digits and `-` (not first or last), at most 63 characters",
                ),
            );
        }
        if let Some(first) = names.insert(&n.name, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-node-name",
                    format!("node name `{}` is also used by spec.nodes[{first}]", n.name),
                )
                .at_path(format!("{p}.name"))
                .with_help("every node needs its own name"),
            );
        }
        let max_id = if knet { 65535 } else { u32::MAX };
        if n.nodeid == 0 || n.nodeid > max_id {
            out.push(
                Diagnostic::error(
                    "nodeid-range",
                    format!("nodeid {} is out of range 1..{max_id}", n.nodeid),
                )
                .at_path(format!("{p}.nodeid"))
                .with_help(if knet {
                    "knet needs nodeids from 1 to 65535"
                } else {
                    "nodeid 0 is reserved"
                }),
            );
        }
        if let Some(first) = ids.insert(n.nodeid, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-nodeid",
                    format!("nodeid {} is also used by spec.nodes[{first}]", n.nodeid),
                )
                .at_path(format!("{p}.nodeid"))
                .with_help("give every node its own nodeid"),
            );
        }
        if n.rings().next().is_none() {
            out.push(
                Diagnostic::error(
                    "missing-address",
                    format!("node `{}` has no ring address", n.name),
                )
                .at_path(&p)
                .with_help("add ring0_addr (and one ringN_addr per link the cluster uses)"),
            );
        }
        for (l, a) in n.rings() {
            let fp = format!("{p}.ring{l}_addr");
            if let Some(why) = pve_unsafe(a) {
                out.push(
                    Diagnostic::error("pve-unsafe-value", format!("ring{l}_addr `{a}` {why}; Proxmox's corosync.conf parser cannot read it"))
                        .at_path(&fp)
                        .with_help("write a plain IP address or hostname"),
                );
            } else if a.parse::<IpAddr>().is_err() && !a.split('.').all(is_ldh) {
                out.push(
                    Diagnostic::error(
                        "invalid-address",
                        format!("ring{l}_addr `{a}` is neither an IP address nor a hostname"),
                    )
                    .at_path(&fp)
                    .with_help("write an IP address such as 10.10.10.1"),
                );
            } else if a.parse::<IpAddr>().is_err()
                && a.rsplit('.')
                    .next()
                    .is_some_and(|t| t.chars().all(|c| c.is_ascii_digit()))
            {
                // All-numeric last label: not a hostname (RFC 1123), and the C resolver reads
                // forms like 10.0.0.01 or 010.0.0.1 as other IPv4 addresses (octal).
                out.push(
                    Diagnostic::error(
                        "invalid-address",
                        format!("ring{l}_addr `{a}` is not a dotted-decimal IPv4 address (leading zeros?) and not a hostname"),
                    )
                    .at_path(&fp)
                    .with_help("write the IPv4 address without leading zeros, e.g. 10.0.0.1"),
                );
            }
            if let Some(first) = addrs.insert(address_key(a), fp.clone()) {
                out.push(
                    Diagnostic::error(
                        "duplicate-address",
                        format!("address `{a}` is also used at {first}"),
                    )
                    .at_path(&fp)
                    .with_help("no address may be used twice on any link"),
                );
            }
        }
        for (j, net) in n.addresses.iter().enumerate() {
            if let Some(prev) = n.addresses[..j].iter().position(|x| x.addr() == net.addr()) {
                out.push(
                    Diagnostic::error(
                        "duplicate-address",
                        format!("address `{net}` is listed twice (also addresses[{prev}])"),
                    )
                    .at_path(format!("{p}.addresses[{j}]")),
                );
            }
        }
    }
}

fn links(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let t = &c.spec.totem;
    let max = t.transport.max_link();
    let used = c.link_numbers();
    // Same set of links on every present node.
    let expected: BTreeSet<u8> = used.iter().copied().collect();
    for (i, n) in c.spec.nodes.iter().enumerate() {
        if !n.is_present() {
            continue;
        }
        let have: BTreeSet<u8> = n.rings().map(|(l, _)| l).collect();
        if have.is_empty() {
            continue; // reported as missing-address
        }
        for missing in expected.difference(&have) {
            out.push(
                Diagnostic::error(
                    "link-set-mismatch",
                    format!(
                        "node `{}` has no ring{missing}_addr but other nodes use link {missing}",
                        n.name
                    ),
                )
                .at_path(format!("spec.nodes[{i}]"))
                .with_help(format!(
                    "add ring{missing}_addr to this node, or remove link {missing} from all nodes"
                )),
            );
        }
        for (l, _) in n.rings() {
            if l > max {
                out.push(
                    Diagnostic::error(
                        "link-number",
                        format!(
                            "ring{l}_addr: transport {} supports links 0..{max} only",
                            t.transport.as_str()
                        ),
                    )
                    .at_path(format!("spec.nodes[{i}].ring{l}_addr"))
                    .with_help("use knet for more than two links"),
                );
            }
        }
    }
    let mut seen = BTreeMap::new();
    for (i, l) in t.links.iter().enumerate() {
        let p = format!("spec.totem.links[{i}]");
        if l.number > max.min(MAX_LINK) {
            out.push(
                Diagnostic::error(
                    "link-number",
                    format!(
                        "link number {} is out of range 0..{max} for transport {}",
                        l.number,
                        t.transport.as_str()
                    ),
                )
                .at_path(format!("{p}.number")),
            );
        }
        if let Some(first) = seen.insert(l.number, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-link",
                    format!(
                        "link {} is configured twice (also spec.totem.links[{first}])",
                        l.number
                    ),
                )
                .at_path(format!("{p}.number"))
                .with_help("merge the two entries"),
            );
        }
        if l.bindnetaddr.is_some() && t.transport == Transport::Knet {
            out.push(
                Diagnostic::error(
                    "bindnetaddr-knet",
                    "bindnetaddr is only used by udp/udpu; knet ignores it",
                )
                .at_path(format!("{p}.bindnetaddr"))
                .with_help("remove bindnetaddr, or set transport: udpu"),
            );
        }
        if l.priority.is_some() && t.transport != Transport::Knet {
            out.push(
                Diagnostic::error(
                    "priority-not-knet",
                    "link priority (knet_link_priority) exists only with knet",
                )
                .at_path(format!("{p}.priority")),
            );
        }
        if !used.contains(&l.number) {
            out.push(
                Diagnostic::warning(
                    "unused-link",
                    format!(
                        "link {} has settings but no node has a ring{}_addr",
                        l.number, l.number
                    ),
                )
                .at_path(format!("{p}.number")),
            );
        }
    }
    // rrp_mode for the transport.
    match (t.rrp_mode, t.transport) {
        (Some(RrpMode::Rr), Transport::Udp | Transport::Udpu) => out.push(
            Diagnostic::error("rrp-mode", "rrp_mode `rr` exists only with knet")
                .at_path("spec.totem.rrp_mode")
                .with_help("use passive or active"),
        ),
        (Some(RrpMode::None), Transport::Knet) => out.push(
            Diagnostic::error("rrp-mode", "knet has no link_mode `none`")
                .at_path("spec.totem.rrp_mode")
                .with_help("use passive (the default), active or rr"),
        ),
        _ => {}
    }
    if used.len() > 1 && c.effective_rrp_mode() == RrpMode::None {
        out.push(
            Diagnostic::error(
                "rrp-mode",
                format!("{} links are used but rrp_mode is none", used.len()),
            )
            .at_path("spec.totem.rrp_mode")
            .with_help("set rrp_mode: passive, or use one ring"),
        );
    }
    // One IP family per link, matching ip_version.
    for l in &used {
        let mut family: Option<(bool, String)> = None;
        for (i, n) in c.spec.nodes.iter().enumerate() {
            let Some(a) = n.ring_addr(*l) else { continue };
            let Ok(ip) = a.parse::<IpAddr>() else {
                continue;
            };
            let p = format!("spec.nodes[{i}].ring{l}_addr");
            if !t.ip_version.allows(&ip) {
                out.push(
                    Diagnostic::error(
                        "ip-family",
                        format!(
                            "`{a}` is an {} address but ip_version is {}",
                            if ip.is_ipv4() { "IPv4" } else { "IPv6" },
                            t.ip_version.as_str()
                        ),
                    )
                    .at_path(&p)
                    .with_help("use ip_version ipv4-6 or an address of the allowed family"),
                );
            }
            match &family {
                None => family = Some((ip.is_ipv4(), a.to_string())),
                Some((v4, first)) if *v4 != ip.is_ipv4() => out.push(
                    Diagnostic::error(
                        "ip-family",
                        format!("link {l} mixes IP families: `{a}` vs `{first}`"),
                    )
                    .at_path(&p)
                    .with_help("all addresses of one link must be IPv4, or all IPv6"),
                ),
                Some(_) => {}
            }
        }
    }
}

fn quorum(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let votes = c.present_votes();
    if let Some(e) = c.spec.quorum.expected_votes {
        if e == 0 || u64::from(e) > votes {
            out.push(
                Diagnostic::error("expected-votes-range", format!("expected_votes {e} is outside 1..{votes} (the sum of the present nodes' votes)"))
                    .at_path("spec.quorum.expected_votes")
                    .with_help("omit expected_votes normally; set it only to regain quorum after losing nodes"),
            );
        } else if u64::from(e) < votes {
            out.push(
                Diagnostic::warning(
                    "expected-votes-override",
                    format!(
                        "expected_votes {e} is below the present nodes' {votes} votes: a recovery override; while it is in the manifest the controllers apply it whenever the running value differs, also to a partition that lost quorum — if the missing nodes are alive behind a network split, both sides can become quorate"
                    ),
                )
                .at_path("spec.quorum.expected_votes")
                .with_help("set it only while the missing nodes are powered off, and remove it once they are back or removed (state: absent)"),
            );
        }
    }
    if c.spec.quorum.two_node == Some(true) {
        let voting = c.present_nodes().filter(|n| n.quorum_votes > 0).count();
        if voting != 2 {
            out.push(
                Diagnostic::error(
                    "two-node",
                    format!("two_node needs exactly two voting nodes, the manifest has {voting}"),
                )
                .at_path("spec.quorum.two_node")
                .with_help("remove two_node, or use it only in a two-node cluster"),
            );
        }
    }
}

fn is_private(net: &IpNet) -> bool {
    match net.addr() {
        IpAddr::V4(a) => a.is_private() || a.is_loopback() || a.is_link_local(),
        IpAddr::V6(a) => {
            (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.is_loopback()
        }
    }
}

fn migration(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let Some(m) = &c.spec.migration else { return };
    if let Some(w) = m.max_workers {
        if w == 0 {
            out.push(
                Diagnostic::error("max-workers", "max_workers must be at least 1")
                    .at_path("spec.migration.max_workers"),
            );
        }
    }
    let Some(net) = m.network else { return };
    if m.mtype.is_none() {
        out.push(
            Diagnostic::error(
                "migration-type-required",
                "migration.type is required when migration.network is set",
            )
            .at_path("spec.migration")
            .with_help("add `type: secure` (Proxmox drops the whole migration key without it)"),
        );
    }
    let (lo, hi) = if net.addr().is_ipv4() {
        (8, 32)
    } else {
        (8, 128)
    };
    if net.prefix_len() < lo || net.prefix_len() > hi {
        out.push(
            Diagnostic::error(
                "migration-prefix",
                format!(
                    "migration network prefix /{} is outside {lo}..{hi}",
                    net.prefix_len()
                ),
            )
            .at_path("spec.migration.network"),
        );
    }
    if m.mtype == Some(MigrationType::Insecure)
        && !is_private(&net)
        && !c.spec.policy.allow_insecure_migration
    {
        out.push(
            Diagnostic::error(
                "insecure-public-migration",
                format!("insecure migration over {net}, which is not a private network"),
            )
            .at_path("spec.migration.type")
            .with_help("use type: secure, or set policy.allow_insecure_migration: true"),
        );
    }
    for (i, n) in c.spec.nodes.iter().enumerate() {
        if !n.is_present() || n.addresses.is_empty() {
            continue;
        }
        let mut inside: Vec<IpAddr> = n
            .rings()
            .filter_map(|(_, a)| a.parse::<IpAddr>().ok())
            .chain(n.addresses.iter().map(IpNet::addr))
            .filter(|a| net.contains(a))
            .collect();
        inside.sort();
        inside.dedup();
        match inside.len() {
            1 => {}
            0 => out.push(
                Diagnostic::error("migration-address", format!("node `{}` has no address in the migration network {net}", n.name))
                    .at_path(format!("spec.nodes[{i}].addresses"))
                    .with_help(format!("add the node's address in {net} to its addresses")),
            ),
            k => out.push(
                Diagnostic::error("migration-address", format!("node `{}` has {k} addresses in the migration network {net}; Proxmox needs exactly one", n.name))
                    .at_path(format!("spec.nodes[{i}].addresses"))
                    .with_help("keep exactly one address per node in the migration network"),
            ),
        }
    }
}

fn guests(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let mut seen = HashMap::new();
    for (i, g) in c.spec.guests.iter().enumerate() {
        let p = format!("spec.guests[{i}]");
        if !(100..=999_999_999).contains(&g.vmid) {
            out.push(
                Diagnostic::error(
                    "vmid-range",
                    format!("vmid {} is outside 100..999999999", g.vmid),
                )
                .at_path(format!("{p}.vmid")),
            );
        }
        if let Some(first) = seen.insert(g.vmid, i) {
            out.push(
                Diagnostic::error(
                    "duplicate-vmid",
                    format!("vmid {} is also listed at spec.guests[{first}]", g.vmid),
                )
                .at_path(format!("{p}.vmid"))
                .with_help("list every guest once"),
            );
        }
        match c.node(&g.node) {
            Some(n) if n.is_present() => {}
            Some(_) => out.push(
                Diagnostic::error(
                    "guest-node",
                    format!(
                        "guest {} is placed on `{}`, which is being removed (state: absent)",
                        g.vmid, g.node
                    ),
                )
                .at_path(format!("{p}.node"))
                .with_help("place it on a present node"),
            ),
            None => {
                let names = c.present_nodes().map(|n| n.name.as_str());
                let help = match crate::diag::did_you_mean(&g.node, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "name a node from spec.nodes".to_string(),
                };
                out.push(
                    Diagnostic::error(
                        "guest-node",
                        format!(
                            "guest {} is placed on `{}`, which is not a node of this manifest",
                            g.vmid, g.node
                        ),
                    )
                    .at_path(format!("{p}.node"))
                    .with_help(help),
                );
            }
        }
    }
}

fn warnings(c: &Cluster, out: &mut Vec<Diagnostic>) {
    let voting = c.present_nodes().filter(|n| n.quorum_votes > 0).count();
    if voting < 3 {
        out.push(
            Diagnostic::warning(
                "no-ha",
                format!(
                    "{voting} voting node(s): a cluster needs at least 3 for high availability"
                ),
            )
            .at_path("spec.nodes")
            .with_help("add a node or a quorum device"),
        );
    }
    if let Some(m) = &c.spec.migration {
        if m.mtype == Some(MigrationType::Insecure) {
            out.push(
                Diagnostic::warning(
                    "insecure-migration",
                    "migration.type insecure sends guest memory unencrypted",
                )
                .at_path("spec.migration.type")
                .with_help("use it only on a dedicated, trusted network"),
            );
        }
        if let Some(net) = m.network {
            let overlapping: Vec<u8> = c
                .link_numbers()
                .into_iter()
                .filter(|l| {
                    c.present_nodes()
                        .filter_map(|n| n.ring_addr(*l)?.parse::<IpAddr>().ok())
                        .any(|a| net.contains(&a))
                })
                .collect();
            for l in overlapping {
                out.push(
                    Diagnostic::warning(
                        "migration-overlaps-link",
                        format!("migration network {net} overlaps corosync link {l}"),
                    )
                    .at_path("spec.migration.network")
                    .with_help("migration traffic can starve corosync; use a separate network"),
                );
            }
        }
    }
    let nodes = c.present_nodes().count() as u64;
    if nodes >= 3 {
        let coeff = c
            .spec
            .totem
            .token_coefficient
            .map(u64::from)
            .unwrap_or(DEFAULT_TOKEN_COEFFICIENT_MS);
        let token = DEFAULT_TOKEN_MS + (nodes - 2) * coeff;
        if token > TOKEN_WARN_MS {
            out.push(
                Diagnostic::warning(
                    "token-timeout",
                    format!("the effective token timeout is {token} ms ({DEFAULT_TOKEN_MS} + ({nodes}-2) x {coeff}); failures take that long to detect"),
                )
                .at_path("spec.totem.token_coefficient")
                .with_help("set a smaller token_coefficient (PVE uses 125)"),
            );
        }
    }
}
