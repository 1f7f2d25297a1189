//! Checks beyond corosync's grammar: what Proxmox's parser can read, and PVE's `verify_conf`.

use super::document::{Document, Item, Located};
use super::error::LineIndex;
use super::lexer::is_ws;
use crate::diag::Diagnostic;
use std::collections::BTreeMap;

/// Rule of the errors from [`Document::check_pve_writable`].
pub const RULE_PVE_UNREADABLE: &str = "pve-unreadable";
/// Rule of the warnings from [`Document::verify`].
pub const RULE_VERIFY: &str = "corosync-verify";

/// Why Proxmox's whitespace tokenizer cannot read `value` back, if it cannot.
fn value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty (Proxmox's parser would take the next token as the value)")
    } else if value.contains(['\r', '\n']) {
        Some("contains a line break")
    } else if value.contains(['{', '}']) {
        Some("contains a brace")
    } else if value.contains('#') {
        Some("contains '#' (Proxmox's parser strips everything after it)")
    } else if value.starts_with(is_ws) || value.ends_with(is_ws) {
        Some("has leading or trailing whitespace")
    } else if value.contains(is_ws) {
        Some("contains whitespace (Proxmox's parser fails with \"missing ':' after key\")")
    } else {
        None
    }
}

fn name_problem(name: &str) -> bool {
    name.is_empty()
        || name.contains(|c: char| is_ws(c) || matches!(c, '#' | '{' | '}' | ':' | '\r' | '\n'))
}

struct Out<'a> {
    index: LineIndex<'a>,
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Out<'_> {
    fn push(&mut self, d: Diagnostic, at: usize, len: usize, path: &str) {
        let loc = self.index.locate(at, len);
        self.diags
            .push(d.in_file(self.file).at(Some(loc)).at_path(path));
    }

    fn error(&mut self, msg: String, at: usize, len: usize, path: &str) {
        self.push(Diagnostic::error(RULE_PVE_UNREADABLE, msg), at, len, path);
    }

    fn warn(&mut self, msg: String, at: &Located<'_>) {
        let len = at.item.name().len();
        let off = at.offset + at_indent(at);
        self.push(Diagnostic::warning(RULE_VERIFY, msg), off, len, &at.logical);
    }
}

fn at_indent(l: &Located<'_>) -> usize {
    l.item.indent().len()
}

impl Document {
    /// Errors for everything Proxmox's `PVE::Corosync::parse_conf` cannot read back although
    /// corosync accepts it: values with spaces, `#`, braces, line breaks, leading/trailing
    /// whitespace or empty values; keys and section names with such characters; `key :value`
    /// spellings; section headers other than `name {`; repeated sections other than `node`
    /// and `interface`.
    pub fn check_pve_writable(&self) -> Vec<Diagnostic> {
        let text = self.to_string();
        let mut out = Out {
            index: LineIndex::new(&text),
            file: &self.file,
            diags: Vec::new(),
        };
        let flat = self.flatten();
        for l in &flat {
            let start = l.offset + at_indent(l);
            match l.item {
                Item::Entry(e) => {
                    if name_problem(&e.key) {
                        out.error(
                            format!("key '{}' cannot be read by Proxmox's parser", e.key),
                            start,
                            e.key.len(),
                            &l.logical,
                        );
                    }
                    if !e.pre_colon.is_empty() || (e.post_colon.is_empty() && !e.value.is_empty()) {
                        out.error(
                            format!("write '{}: <value>' (no space before ':', one after) for Proxmox's parser", e.key),
                            start,
                            e.key.len() + e.pre_colon.len() + 1,
                            &l.logical,
                        );
                    }
                    if let Some(problem) = value_problem(&e.value) {
                        let at = l.offset + e.value_offset();
                        out.error(
                            format!("value of '{}' {problem}", e.key),
                            at,
                            e.value.len(),
                            &l.logical,
                        );
                    }
                }
                Item::Section(s) => {
                    if name_problem(&s.name) {
                        out.error(
                            format!(
                                "section name '{}' cannot be read by Proxmox's parser",
                                s.name
                            ),
                            start,
                            s.name.len(),
                            &l.logical,
                        );
                    }
                    let after = s.header.trim_start_matches(is_ws);
                    let brace = after
                        .strip_prefix(s.name.as_str())
                        .map(|r| r.trim_end_matches(is_ws))
                        .and_then(|r| r.strip_suffix('{'))
                        .is_some_and(|r| !r.is_empty() && r.chars().all(is_ws));
                    if !brace {
                        out.error(
                            format!("write the header as '{} {{' for Proxmox's parser", s.name),
                            start,
                            after.len(),
                            &l.logical,
                        );
                    }
                }
            }
        }
        // Repeated sections in one parent.
        let mut seen: BTreeMap<(Option<usize>, &str), usize> = BTreeMap::new();
        for l in &flat {
            let Item::Section(s) = l.item else { continue };
            if matches!(s.name.as_str(), "node" | "interface") {
                continue;
            }
            let count = seen.entry((l.parent, &s.name)).or_insert(0);
            *count += 1;
            if *count > 1 {
                let start = l.offset + at_indent(l);
                out.error(
                    format!(
                        "section '{}' already exists and not marked as array!",
                        s.name
                    ),
                    start,
                    s.name.len(),
                    &l.logical,
                );
            }
        }
        out.diags
    }

    /// The warnings Proxmox's `verify_conf` (and corosync at startup) would give: nodes missing
    /// an address for a link, addresses without an interface, no authentication/encryption,
    /// `config_version` absent or 0, duplicate nodeids, nodes without `name` in a multi-link
    /// setup.
    pub fn verify(&self) -> Vec<Diagnostic> {
        let text = self.to_string();
        let mut out = Out {
            index: LineIndex::new(&text),
            file: &self.file,
            diags: Vec::new(),
        };
        let view = self.view();
        let flat = self.flatten();
        let totem = flat.iter().rfind(|l| {
            l.parents.is_empty() && l.item.name() == "totem" && matches!(l.item, Item::Section(_))
        });
        let nodes: Vec<&Located<'_>> = flat
            .iter()
            .filter(|l| {
                l.parents == ["nodelist"]
                    && l.item.name() == "node"
                    && matches!(l.item, Item::Section(_))
            })
            .collect();
        let root_loc = |out: &mut Out<'_>, msg: String| {
            out.push(Diagnostic::warning(RULE_VERIFY, msg), 0, 0, "")
        };

        if view.nodes.is_empty() {
            root_loc(&mut out, "no nodes found".to_string());
        }
        let secauth = view.totem.secauth.as_deref() == Some("on");
        let cipher = view
            .totem
            .crypto_cipher
            .as_deref()
            .is_some_and(|c| c != "none");
        if !secauth && !cipher {
            let msg = "authentication/encryption is not explicitly enabled (secauth / crypto_cipher / crypto_hash)".to_string();
            match totem {
                Some(t) => out.warn(msg, t),
                None => root_loc(&mut out, msg),
            }
        }
        if view.totem.config_version.unwrap_or(0) == 0 {
            let msg =
                "config_version is missing or 0: pmxcfs will not propagate this file".to_string();
            let entry = flat
                .iter()
                .rfind(|l| l.parents == ["totem"] && l.item.name() == "config_version");
            match entry.or(totem) {
                Some(t) => out.warn(msg, t),
                None => root_loc(&mut out, msg),
            }
        }
        let mut ids: BTreeMap<u32, usize> = BTreeMap::new();
        let links = view.link_numbers();
        for (i, node) in view.nodes.iter().enumerate() {
            let Some(loc) = nodes.get(i) else { continue };
            let label = node.name.clone().unwrap_or_else(|| format!("#{i}"));
            if let Some(id) = node.nodeid {
                let seen = ids.entry(id).or_insert(0);
                *seen += 1;
                if *seen == 2 {
                    out.warn(format!("Nodeid {id} appears twice in corosync.conf"), loc);
                }
            }
            if links.len() > 1 && node.name.is_none() {
                out.warn(
                    "for a multi-link configuration, all nodes must have a 'name' attribute"
                        .to_string(),
                    loc,
                );
            }
            for link in &links {
                let has_addr = node.rings.contains_key(link);
                let has_iface = view.totem.interfaces.contains_key(link);
                if has_addr && !has_iface && !view.totem.interfaces.is_empty() {
                    out.warn(
                        format!("node '{label}' has 'ring{link}_addr', but there is no interface number {link} configured"),
                        loc,
                    );
                }
                let others = view.nodes.iter().any(|n| n.rings.contains_key(link));
                if !has_addr && (has_iface || others) {
                    out.warn(
                        format!("node '{label}' is missing address for interface number {link}"),
                        loc,
                    );
                }
            }
        }
        out.diags
    }
}
