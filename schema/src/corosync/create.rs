//! Rendering a brand-new corosync.conf in the exact layout of `pvecm create`.

use super::document::Document;
use super::edit::NodeEntry;
use std::collections::BTreeMap;

/// Options for [`Document::new_pve_cluster`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PveClusterOptions {
    /// `totem.ip_version`; default `ipv4-6` (knet) or `ipv4` (corosync 2).
    pub ip_version: Option<String>,
    /// `totem.link_mode` (knet only); default `passive`.
    pub link_mode: Option<String>,
    /// `totem.token_coefficient`, written only when given (PVE ≥ 9.1 writes 125).
    pub token_coefficient: Option<u32>,
    /// Render the corosync 2 (PVE 5) udpu shape instead of knet.
    pub corosync2: Option<Corosync2Options>,
}

/// The corosync 2 shape: `transport: udpu`, `rrp_mode`, `interface { bindnetaddr ringnumber }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Corosync2Options {
    /// `bindnetaddr` per ring; default: the first node's address on that ring.
    pub bindnetaddrs: BTreeMap<u8, String>,
    /// `rrp_mode`; default `passive` with more than one ring, none written with one.
    pub rrp_mode: Option<String>,
}

/// A section being built: sorted keys to scalar values or repeated subsections.
enum Value {
    Scalar(String),
    Sections(Vec<Tree>),
}

#[derive(Default)]
struct Tree(BTreeMap<String, Value>);

impl Tree {
    fn set(&mut self, k: &str, v: impl ToString) -> &mut Self {
        self.0.insert(k.to_string(), Value::Scalar(v.to_string()));
        self
    }

    fn push(&mut self, k: &str, t: Tree) {
        match self
            .0
            .entry(k.to_string())
            .or_insert(Value::Sections(Vec::new()))
        {
            Value::Sections(v) => v.push(t),
            Value::Scalar(_) => {}
        }
    }

    /// PVE `write_conf`: keys sorted, 2-space indent per level.
    fn render(&self, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        for (k, v) in &self.0 {
            match v {
                Value::Scalar(s) => out.push_str(&format!("{indent}{k}: {s}\n")),
                Value::Sections(list) => {
                    for t in list {
                        out.push_str(&format!("{indent}{k} {{\n"));
                        t.render(depth + 1, out);
                        out.push_str(&format!("{indent}}}\n"));
                    }
                }
            }
        }
    }
}

impl Document {
    /// A new file in exactly the layout `pvecm create` writes (domain.md §1.5): sections and
    /// keys sorted, two-space indent, a blank line after each top-level section, nodes sorted
    /// by name, `secauth: on`, `version: 2`, `config_version: 1`. `links` are
    /// `(link number, knet_link_priority)`. Values are not checked here; run
    /// [`Document::check_pve_writable`] on the result.
    pub fn new_pve_cluster(
        cluster_name: &str,
        nodes: &[NodeEntry],
        links: &[(u8, Option<u8>)],
        opts: &PveClusterOptions,
    ) -> Document {
        let mut logging = Tree::default();
        logging.set("debug", "off").set("to_syslog", "yes");

        let mut sorted: Vec<&NodeEntry> = nodes.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut nodelist = Tree::default();
        for n in &sorted {
            let mut t = Tree::default();
            t.set("name", &n.name)
                .set("nodeid", n.nodeid)
                .set("quorum_votes", n.quorum_votes);
            for (link, addr) in &n.rings {
                t.set(&format!("ring{link}_addr"), addr);
            }
            nodelist.push("node", t);
        }
        if sorted.is_empty() {
            nodelist
                .0
                .insert("node".to_string(), Value::Sections(Vec::new()));
        }

        let mut quorum = Tree::default();
        quorum.set("provider", "corosync_votequorum");

        let mut totem = Tree::default();
        totem
            .set("cluster_name", cluster_name)
            .set("config_version", 1)
            .set("secauth", "on")
            .set("version", 2);
        if let Some(tc) = opts.token_coefficient {
            totem.set("token_coefficient", tc);
        }
        let mut links: Vec<(u8, Option<u8>)> = links.to_vec();
        links.sort_by_key(|l| l.0.to_string());
        links.dedup_by_key(|l| l.0);
        match &opts.corosync2 {
            None => {
                totem
                    .set("ip_version", opts.ip_version.as_deref().unwrap_or("ipv4-6"))
                    .set("link_mode", opts.link_mode.as_deref().unwrap_or("passive"));
                for (n, prio) in &links {
                    let mut t = Tree::default();
                    t.set("linknumber", n);
                    if let Some(p) = prio {
                        t.set("knet_link_priority", p);
                    }
                    totem.push("interface", t);
                }
            }
            Some(cs2) => {
                totem
                    .set("ip_version", opts.ip_version.as_deref().unwrap_or("ipv4"))
                    .set("transport", "udpu");
                let rrp = cs2
                    .rrp_mode
                    .clone()
                    .or_else(|| (links.len() > 1).then(|| "passive".to_string()));
                if let Some(rrp) = rrp {
                    totem.set("rrp_mode", rrp);
                }
                for (n, _) in &links {
                    let mut t = Tree::default();
                    let bind = cs2
                        .bindnetaddrs
                        .get(n)
                        .or_else(|| sorted.first().and_then(|f| f.rings.get(n)));
                    if let Some(b) = bind {
                        t.set("bindnetaddr", b);
                    }
                    t.set("ringnumber", n);
                    totem.push("interface", t);
                }
            }
        }

        let mut text = String::new();
        for (name, tree) in [
            ("logging", &logging),
            ("nodelist", &nodelist),
            ("quorum", &quorum),
            ("totem", &totem),
        ] {
            text.push_str(&format!("{name} {{\n"));
            tree.render(1, &mut text);
            text.push_str("}\n\n");
        }
        Document::parse_recovering(super::parser::DEFAULT_FILE_NAME, &text).0
    }
}
