//! `pve-gitops import --config-fs DIR [-o FILE]`: write the `Cluster` manifest that describes an
//! `/etc/pve`-like directory.
//!
//! What the manifest can express is imported: totem (transport, link/rrp mode, ip_version,
//! secauth, token_coefficient, per-link priority / bindnetaddr), the nodelist (sorted by nodeid),
//! votequorum `two_node` / `wait_for_all`, the datacenter.cfg migration settings and one guest
//! entry per guest config. Everything else the files hold is reported as a warning on stderr and
//! as a `# WARNING:` comment at the top of the manifest, never dropped silently: pve-gitops edits
//! corosync.conf and datacenter.cfg key by key, so such settings stay in the files, unmanaged.
//!
//! The manifest is validated before it is written. Exit codes: 0 imported (warnings allowed),
//! 1 imported but the manifest does not validate (it is still written, to be fixed by hand),
//! 2 DIR is not a cluster config filesystem, cannot be read, or cannot be represented.

use super::Outcome;
use anyhow::Result;
use pve_gitops::configfs::{atomic_write, ConfigFs, COROSYNC_CONF, DATACENTER_CFG, NODES_DIR};
use pve_gitops_schema::corosync::{ConfShape, CorosyncConf, Document, Section};
use pve_gitops_schema::datacenter;
use pve_gitops_schema::diag::{Diagnostic, Severity};
use pve_gitops_schema::spec::{
    ApiVersion, Cluster, ClusterSpec, Guest, IpVersion, Kind, LinkSettings, Metadata, Migration,
    MigrationType, Node, NodeState, Policy, Quorum, RrpMode, Totem, Transport, MAX_LINK,
};
use pve_gitops_schema::validate::validate_documents;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// The schema the `yaml-language-server` comment points at: a file next to the manifest,
/// written with `pve-gitops schema > cluster.schema.json` (the tool and the schema always
/// match that way; no network needed).
pub fn schema_url() -> String {
    "cluster.schema.json".to_string()
}

/// A manifest read from a config filesystem, and what it could not represent.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The manifest.
    pub cluster: Cluster,
    /// Settings of the files the manifest does not represent (one line each).
    pub warnings: Vec<String>,
}

/// Read the values a corosync.conf gives into the manifest.
struct Importer<'a> {
    view: CorosyncConf,
    doc: &'a Document,
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn parse_rrp_mode(s: &str) -> Option<RrpMode> {
    match s {
        "none" => Some(RrpMode::None),
        "passive" => Some(RrpMode::Passive),
        "active" => Some(RrpMode::Active),
        "rr" => Some(RrpMode::Rr),
        _ => None,
    }
}

fn parse_ip_version(s: &str) -> Option<IpVersion> {
    match s {
        "ipv4" => Some(IpVersion::Ipv4),
        "ipv6" => Some(IpVersion::Ipv6),
        "ipv4-6" => Some(IpVersion::Ipv4Then6),
        "ipv6-4" => Some(IpVersion::Ipv6Then4),
        _ => None,
    }
}

/// `key: value` of every entry in `section`, nested sections as `sub.key`.
fn section_settings(prefix: &str, section: &Section, out: &mut Vec<String>) {
    for e in section.entries() {
        out.push(format!("{prefix}{}: {}", e.key(), e.value()));
    }
    for item in section.items() {
        if let pve_gitops_schema::corosync::Item::Section(sub) = item {
            section_settings(&format!("{prefix}{}.", sub.name()), sub, out);
        }
    }
}

impl Importer<'_> {
    fn warn(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    fn error(&mut self, msg: impl Into<String>) {
        self.errors.push(msg.into());
    }

    fn transport(&mut self) -> Transport {
        match self.view.effective_transport() {
            "knet" => Transport::Knet,
            "udpu" => Transport::Udpu,
            "udp" => Transport::Udp,
            other => {
                let msg = format!(
                    "{COROSYNC_CONF}: totem.transport `{other}` cannot be represented (the manifest \
                     knows knet, udpu and udp)"
                );
                self.error(msg);
                Transport::Knet
            }
        }
    }

    fn totem(&mut self, transport: Transport) -> Totem {
        let t = self.view.totem.clone();
        let knet = transport == Transport::Knet;
        let (key, mode, ignored) = if knet {
            (
                "link_mode",
                t.link_mode.clone(),
                t.rrp_mode.as_ref().map(|_| "rrp_mode"),
            )
        } else {
            (
                "rrp_mode",
                t.rrp_mode.clone(),
                t.link_mode.as_ref().map(|_| "link_mode"),
            )
        };
        if let Some(k) = ignored {
            self.warn(format!(
                "{COROSYNC_CONF}: totem.{k} is not used with transport {} and is not represented \
                 (kept in corosync.conf)",
                transport.as_str()
            ));
        }
        let rrp_mode = mode.and_then(|m| match parse_rrp_mode(&m) {
            Some(r) => Some(r),
            None => {
                self.error(format!(
                    "{COROSYNC_CONF}: totem.{key} `{m}` is not a valid mode (corosync refuses it)"
                ));
                None
            }
        });
        let ip_version = match t.ip_version.as_deref() {
            Some(v) => parse_ip_version(v).unwrap_or_else(|| {
                self.error(format!(
                    "{COROSYNC_CONF}: totem.ip_version `{v}` is not ipv4, ipv6, ipv4-6 or ipv6-4"
                ));
                IpVersion::default()
            }),
            // corosync's default for the file's generation and transport.
            None if self.view.shape() == ConfShape::Corosync2 || transport == Transport::Udp => {
                IpVersion::Ipv4
            }
            None => IpVersion::Ipv6Then4,
        };
        let cipher = t.crypto_cipher.as_deref().is_some_and(|c| c != "none");
        let secauth = match t.secauth.as_deref() {
            Some("on") => true,
            Some("off") => cipher,
            // corosync 2 authenticates by default; corosync 3 needs secauth or crypto_cipher.
            None => cipher || self.view.shape() == ConfShape::Corosync2,
            Some(other) => {
                self.warn(format!(
                    "{COROSYNC_CONF}: totem.secauth `{other}` is neither on nor off; imported as \
                     secauth: {cipher}"
                ));
                cipher
            }
        };
        if !secauth {
            self.warn(format!(
                "{COROSYNC_CONF}: authentication/encryption is not enabled (secauth / \
                 crypto_cipher); imported as secauth: false"
            ));
        }
        let crypto: Vec<String> = [
            ("crypto_cipher", &t.crypto_cipher),
            ("crypto_hash", &t.crypto_hash),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        if !crypto.is_empty() {
            self.warn(format!(
                "{COROSYNC_CONF}: totem {} represented only as secauth: {secauth} (kept in \
                 corosync.conf)",
                crypto.join(", ")
            ));
        }
        if let Some(token) = t.token {
            self.warn(format!(
                "{COROSYNC_CONF}: totem.token: {token} is not represented in the manifest (kept \
                 in corosync.conf)"
            ));
        }
        if let Some(v) = t.version.filter(|v| *v != 2) {
            self.warn(format!(
                "{COROSYNC_CONF}: totem.version: {v} (corosync only accepts 2)"
            ));
        }
        let mut links = Vec::new();
        for (n, iface) in &t.interfaces {
            let priority = match iface.knet_link_priority {
                Some(p) if !knet => {
                    self.warn(format!(
                        "{COROSYNC_CONF}: totem.interface[{n}].knet_link_priority: {p} is not \
                         used with transport {} and is not represented",
                        transport.as_str()
                    ));
                    None
                }
                p => p,
            };
            let bindnetaddr = match (&iface.bindnetaddr, knet) {
                (Some(b), false) => match b.parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => {
                        self.warn(format!(
                            "{COROSYNC_CONF}: totem.interface[{n}].bindnetaddr `{b}` is not an \
                             IP address and is not represented (kept in corosync.conf)"
                        ));
                        None
                    }
                },
                // knet ignores bindnetaddr; `view().unsupported` reports it.
                _ => None,
            };
            if priority.is_some() || bindnetaddr.is_some() {
                links.push(LinkSettings {
                    number: *n,
                    priority,
                    bindnetaddr,
                });
            }
        }
        Totem {
            transport,
            rrp_mode,
            ip_version,
            secauth,
            token_coefficient: t.token_coefficient,
            links,
        }
    }

    fn nodes(&mut self) -> Vec<Node> {
        let clear_high_bit = self
            .view
            .totem
            .other
            .get("clear_node_high_bit")
            .map(String::as_str)
            == Some("yes");
        let mut out: Vec<Node> = Vec::new();
        let view_nodes = self.view.nodes.clone();
        for (i, n) in view_nodes.iter().enumerate() {
            let ring0 = n.rings.get(&0).cloned();
            let label = n
                .name
                .clone()
                .or_else(|| ring0.clone())
                .unwrap_or_else(|| format!("#{i}"));
            let name = match (&n.name, &ring0) {
                (Some(name), _) => Some(name.clone()),
                (None, Some(r0))
                    if r0.parse::<IpAddr>().is_err()
                        && pve_gitops_schema::pmxcfs::is_valid_node_name(r0) =>
                {
                    self.warn(format!(
                        "{COROSYNC_CONF}: node `{r0}` has no name; named after its ring0_addr, as \
                         Proxmox does"
                    ));
                    Some(r0.clone())
                }
                _ => {
                    self.error(format!(
                        "{COROSYNC_CONF}: nodelist.node[{i}] ({label}) has no name; add `name:` \
                         to corosync.conf (the manifest needs node names)"
                    ));
                    None
                }
            };
            let nodeid = match (n.nodeid, &ring0) {
                (Some(id), _) => Some(id),
                (None, Some(r0)) => match r0.parse::<Ipv4Addr>() {
                    Ok(ip) => {
                        let mut id = u32::from(ip);
                        if clear_high_bit {
                            id &= 0x7fff_ffff;
                        }
                        self.warn(format!(
                            "{COROSYNC_CONF}: node `{label}` has no nodeid; imported as {id}, the \
                             id corosync 2 derives from ring0_addr {r0}"
                        ));
                        Some(id)
                    }
                    Err(_) => None,
                },
                (None, None) => None,
            };
            let Some(nodeid) = nodeid else {
                self.error(format!(
                    "{COROSYNC_CONF}: node `{label}` has no nodeid and none can be derived; add \
                     `nodeid:` to corosync.conf"
                ));
                continue;
            };
            let Some(name) = name else { continue };
            let mut node = Node {
                name,
                nodeid,
                quorum_votes: n.quorum_votes.unwrap_or(1),
                ring0_addr: None,
                ring1_addr: None,
                ring2_addr: None,
                ring3_addr: None,
                ring4_addr: None,
                ring5_addr: None,
                ring6_addr: None,
                ring7_addr: None,
                addresses: Vec::new(),
                state: NodeState::Present,
            };
            for (l, addr) in &n.rings {
                match node.ring_addr_mut(*l) {
                    Some(slot) if *l <= MAX_LINK => *slot = Some(addr.clone()),
                    _ => self.error(format!(
                        "{COROSYNC_CONF}: node `{label}` has ring{l}_addr; corosync supports \
                         links 0..{MAX_LINK}"
                    )),
                }
            }
            out.push(node);
        }
        // Stable: equal ids keep file order.
        out.sort_by_key(|n| n.nodeid);
        out
    }

    fn quorum(&mut self) -> Quorum {
        let q = self.view.quorum.clone();
        if let Some(e) = q.expected_votes {
            self.warn(format!(
                "{COROSYNC_CONF}: quorum.expected_votes: {e} is kept in corosync.conf but not \
                 represented (the manifest's quorum.expected_votes is the runtime override, \
                 `pvecm expected`)"
            ));
        }
        if q.provider.is_none() {
            self.warn(format!(
                "{COROSYNC_CONF}: quorum.provider is not set (corosync runs without votequorum); \
                 the manifest assumes corosync_votequorum"
            ));
        }
        if let Some(w) = q.last_man_standing_window {
            self.warn(format!(
                "{COROSYNC_CONF}: quorum.last_man_standing_window: {w} is not represented (kept \
                 in corosync.conf)"
            ));
        }
        if let Some(n) = &q.auto_tie_breaker_node {
            self.warn(format!(
                "{COROSYNC_CONF}: quorum.auto_tie_breaker_node: {n} is not represented (kept in \
                 corosync.conf)"
            ));
        }
        Quorum {
            expected_votes: None,
            two_node: q.two_node.map(|v| v != 0),
            wait_for_all: q.wait_for_all.map(|v| v != 0),
        }
    }

    /// `view().unsupported`, minus what the manifest does represent for this transport.
    fn unsupported(&mut self, transport: Transport, links: &[LinkSettings]) {
        let knet = transport == Transport::Knet;
        let notes = self.view.unsupported.clone();
        for note in notes {
            let represented = if knet {
                false
            } else {
                note == format!("totem.transport: {}", transport.as_str())
                    || note == "totem.rrp_mode"
                    || (note.starts_with("totem.interface[") && note.ends_with("].ringnumber"))
                    || links.iter().any(|l| {
                        l.bindnetaddr.is_some()
                            && note == format!("totem.interface[{}].bindnetaddr", l.number)
                    })
            };
            if !represented {
                self.warn(format!(
                    "{COROSYNC_CONF}: {note} is not represented in the manifest (kept in \
                     corosync.conf, not managed)"
                ));
            }
        }
        // Sections the typed view does not look into.
        for section in ["logging", "system", "resources"] {
            let mut settings = Vec::new();
            for s in self.doc.sections(&[section]) {
                section_settings("", s, &mut settings);
            }
            if section == "logging" {
                // Proxmox's own logging section.
                settings.retain(|s| s != "debug: off" && s != "to_syslog: yes");
            }
            if !settings.is_empty() {
                self.warn(format!(
                    "{COROSYNC_CONF}: {section} settings ({}) are not represented (kept in \
                     corosync.conf)",
                    settings.join(", ")
                ));
            }
        }
    }
}

/// The migration settings of datacenter.cfg, warning about every key the manifest lacks.
fn migration(dc: &datacenter::DatacenterDocument, warnings: &mut Vec<String>) -> Option<Migration> {
    let v = dc.view();
    let mut m = Migration {
        mtype: v.migration.map(|m| match m.mtype {
            datacenter::MigrationType::Secure => MigrationType::Secure,
            datacenter::MigrationType::Insecure => MigrationType::Insecure,
        }),
        network: v.migration.and_then(|m| m.network),
        max_workers: v.max_workers,
        bandwidth_limit: None,
    };
    if let Some(b) = v.bwlimit {
        m.bandwidth_limit = b.migration;
        let rest = b.with_migration(None);
        if !rest.is_empty() {
            warnings.push(format!(
                "{DATACENTER_CFG}: bwlimit `{rest}` is not represented (only bwlimit migration= \
                 is; kept in datacenter.cfg)"
            ));
        }
    }
    let other: Vec<&str> = v
        .other
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "description")
        .collect();
    if !other.is_empty() {
        warnings.push(format!(
            "{DATACENTER_CFG}: {} not represented (the manifest manages migration, max_workers \
             and bwlimit migration=; kept in datacenter.cfg)",
            if other.len() == 1 {
                format!("key {} is", other[0])
            } else {
                format!("keys {} are", other.join(", "))
            }
        ));
    }
    (m != Migration::default()).then_some(m)
}

/// Build the manifest describing `fs`.
///
/// # Errors
///
/// The reasons (one line each) when `fs` has no corosync.conf, corosync.conf or
/// datacenter.cfg has errors (syntax, not UTF-8), or corosync.conf
/// holds something the manifest cannot represent without losing data (a node without name or
/// nodeid, an unknown transport).
pub fn import(fs: &ConfigFs) -> Result<Imported, Vec<String>> {
    let Some((_, doc)) = &fs.corosync else {
        return Err(vec![format!(
            "not a cluster config filesystem: {}/{COROSYNC_CONF} missing; for a standalone \
             host, write the manifest by hand",
            fs.root.display()
        )]);
    };
    let broken: Vec<String> = [COROSYNC_CONF, DATACENTER_CFG]
        .into_iter()
        .filter(|f| fs.diagnostics_for(f).any(Diagnostic::is_error))
        .map(|f| {
            format!(
                "{}/{f} has errors; fix them first (pve-gitops conf check)",
                fs.root.display()
            )
        })
        .collect();
    if !broken.is_empty() {
        return Err(broken);
    }
    let mut imp = Importer {
        view: doc.view(),
        doc,
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let name = imp.view.totem.cluster_name.clone().unwrap_or_else(|| {
        imp.error(format!(
            "{COROSYNC_CONF}: totem.cluster_name is not set; the manifest needs it as \
             metadata.name"
        ));
        String::new()
    });
    let transport = imp.transport();
    let totem = imp.totem(transport);
    let nodes = imp.nodes();
    let quorum = imp.quorum();
    imp.unsupported(transport, &totem.links);

    let mut warnings = std::mem::take(&mut imp.warnings);
    let errors = std::mem::take(&mut imp.errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let migration = fs
        .datacenter
        .as_ref()
        .and_then(|(_, dc)| migration(dc, &mut warnings));

    let names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut guests: Vec<Guest> = Vec::new();
    for g in &fs.guests {
        if guests.iter().any(|x| x.vmid == g.vmid) {
            // pmxcfs keeps one config per VMID; ConfigFs reported the duplicate.
            warnings.push(format!(
                "{NODES_DIR}/{}: duplicate VMID {} is not imported a second time",
                g.node, g.vmid
            ));
            continue;
        }
        if !names.contains(g.node.as_str()) {
            warnings.push(format!(
                "{NODES_DIR}/{}: {} guest {} is under a node directory that is not in the \
                 nodelist; not imported",
                g.node,
                g.gtype.as_str(),
                g.vmid
            ));
            continue;
        }
        guests.push(Guest {
            vmid: g.vmid,
            gtype: g.gtype,
            node: g.node.clone(),
            online: true,
        });
    }
    for dir in fs.stale_node_dirs() {
        if fs.guests_on(&dir).next().is_none() {
            warnings.push(format!(
                "{NODES_DIR}/{dir}: node directory of a node that is not in the nodelist (left \
                 behind by pvecm delnode?)"
            ));
        }
    }

    Ok(Imported {
        cluster: Cluster {
            api_version: ApiVersion::V1Alpha1,
            kind: Kind::Cluster,
            metadata: Metadata { name },
            spec: ClusterSpec {
                totem,
                nodes,
                quorum,
                migration,
                guests,
                policy: Policy::default(),
            },
        },
        warnings,
    })
}

/// Remove `key` from every mapping in the sequence at `spec.<seq>` when it equals `default`.
fn drop_default(
    value: &mut serde_norway::Value,
    seq: &str,
    key: &str,
    default: serde_norway::Value,
) {
    let Some(items) = value
        .get_mut("spec")
        .and_then(|s| s.get_mut(seq))
        .and_then(serde_norway::Value::as_sequence_mut)
    else {
        return;
    };
    for item in items {
        if let Some(map) = item.as_mapping_mut() {
            if map.get(key) == Some(&default) {
                map.shift_remove(key);
            }
        }
    }
}

/// The manifest as YAML: the schema comment, where it came from, the warnings, the document.
///
/// # Errors
///
/// Only if serialization fails (it does not for these types).
pub fn render(imported: &Imported, fs: &ConfigFs) -> Result<String> {
    let mut value = serde_norway::to_value(&imported.cluster)?;
    drop_default(&mut value, "nodes", "quorum_votes", 1.into());
    drop_default(&mut value, "guests", "online", true.into());
    let body = serde_norway::to_string(&value)?;
    let root = fs.root.display();
    let version = fs
        .corosync
        .as_ref()
        .and_then(|(_, d)| d.view().totem.config_version)
        .map(|v| format!(" (config_version {v})"))
        .unwrap_or_default();
    let mut out = format!(
        "# yaml-language-server: $schema={}\n# (write it next to this file: pve-gitops schema > {})\n",
        schema_url(),
        schema_url()
    );
    out.push_str(&format!(
        "# Imported by `pve-gitops import` from {root}/{COROSYNC_CONF}{version}"
    ));
    if fs.datacenter.is_some() {
        out.push_str(&format!(", {root}/{DATACENTER_CFG}"));
    }
    out.push_str(&format!(
        " and the guest configs under {root}/{NODES_DIR}.\n"
    ));
    for w in &imported.warnings {
        out.push_str(&format!("# WARNING: {}\n", one_line(w)));
    }
    out.push_str(&body);
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Print the config filesystem's diagnostics to stderr. Errors outside the files the import
/// reads are shown as warnings.
fn print_fs_diagnostics(fs: &ConfigFs) {
    for d in &fs.diagnostics {
        let fatal_file = d.file == COROSYNC_CONF || d.file == DATACENTER_CFG;
        let d = if d.is_error() && !fatal_file {
            Diagnostic {
                severity: Severity::Warning,
                ..d.clone()
            }
        } else {
            d.clone()
        };
        let src = match d.file.as_str() {
            COROSYNC_CONF => fs.corosync.as_ref().map(|(t, _)| t.as_str()),
            DATACENTER_CFG => fs.datacenter.as_ref().map(|(t, _)| t.as_str()),
            _ => None,
        };
        eprint!("{}", d.render(src));
    }
}

/// Run `import`.
pub fn run(config_fs: &Path, output: Option<&Path>) -> Result<Outcome> {
    let fs = match ConfigFs::read(config_fs) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("error: {:#}", anyhow::Error::new(e));
            return Ok(Outcome::Error);
        }
    };
    if fs.corosync.is_none() {
        eprintln!(
            "error: not a cluster config filesystem: {}/{COROSYNC_CONF} missing; for a \
             standalone host, write the manifest by hand",
            config_fs.display()
        );
        return Ok(Outcome::Error);
    }
    print_fs_diagnostics(&fs);
    let imported = match import(&fs) {
        Ok(i) => i,
        Err(errors) => {
            for e in errors {
                eprintln!("error: cannot import: {e}");
            }
            return Ok(Outcome::Error);
        }
    };
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    let text = render(&imported, &fs)?;
    let shown = output
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdout>".to_string());
    let report: Vec<Diagnostic> = validate_documents(&shown, &text)
        .into_iter()
        .flat_map(|r| r.diagnostics)
        .collect();
    for d in &report {
        eprint!("{}", d.render(Some(&text)));
    }
    let invalid = report.iter().any(Diagnostic::is_error);
    match output {
        Some(path) => {
            if let Err(e) = atomic_write(path, text.as_bytes()) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Ok(Outcome::Error);
            }
        }
        None => super::conf::write_stdout(&text)?,
    }
    if invalid {
        eprintln!(
            "error: the imported manifest does not validate; it was written anyway, fix it by \
             hand (pve-gitops validate)"
        );
        return Ok(Outcome::Findings);
    }
    Ok(Outcome::Ok)
}
