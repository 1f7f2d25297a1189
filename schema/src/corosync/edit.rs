//! In-place edits that keep every comment, blank line, indentation and line ending.

use super::document::{Body, Document, Entry, Item, Section};
use std::collections::BTreeMap;

/// A node to add to the nodelist (written in PVE key order: name, nodeid, quorum_votes,
/// ring0_addr, ring1_addr, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeEntry {
    /// Node name (`name:`).
    pub name: String,
    /// Node id (`nodeid:`).
    pub nodeid: u32,
    /// Votes (`quorum_votes:`).
    pub quorum_votes: u32,
    /// Link number to address (`ring<N>_addr:`).
    pub rings: BTreeMap<u8, String>,
}

/// Formatting conventions detected from the document.
pub(crate) struct Style {
    /// One level of indentation (tab or N spaces), default two spaces.
    pub unit: String,
    /// The first line ending of the file, default `\n`.
    pub eol: String,
}

/// A chain of item indices from the root to a section.
type Chain = Vec<usize>;

fn is_blank_only(decor: &str) -> bool {
    decor
        .chars()
        .all(|c| super::lexer::is_ws(c) || c == '\n' || c == '\r')
}

fn starts_with_blank_line(decor: &str) -> bool {
    let first = decor.split_inclusive('\n').next().unwrap_or("");
    !first.is_empty() && is_blank_only(first)
}

/// Remove `body.items[idx]`, handing its comments over to what follows.
fn remove_item(body: &mut Body, idx: usize) -> Option<Item> {
    if idx >= body.items.len() {
        return None;
    }
    let mut item = body.items.remove(idx);
    let prefix = std::mem::take(item.prefix_mut());
    match body.items.get_mut(idx) {
        Some(next) => {
            let q = next.prefix_mut();
            if !(is_blank_only(&prefix) && starts_with_blank_line(q)) {
                *q = format!("{prefix}{q}");
            }
        }
        None => {
            if !is_blank_only(&prefix) {
                body.trailing = format!("{prefix}{}", body.trailing);
            }
        }
    }
    Some(item)
}

/// Where a new item called `name` goes: its sorted position when the body has at least two
/// items and they are sorted by name (PVE writer style), else the end.
fn sorted_pos(body: &Body, name: &str) -> usize {
    let sorted = body.items.len() >= 2 && body.items.windows(2).all(|w| w[0].name() <= w[1].name());
    if sorted {
        body.items
            .iter()
            .position(|i| i.name() > name)
            .unwrap_or(body.items.len())
    } else {
        body.items.len()
    }
}

/// Indentation and line ending for a new item in `body` (inside `parent`, `None` = root).
fn layout(body: &Body, parent: Option<&Section>, style: &Style) -> (String, String) {
    let indent = match (body.items.last(), parent) {
        (Some(item), _) => item.indent().to_string(),
        (None, Some(p)) => format!("{}{}", p.indent, style.unit),
        (None, None) => String::new(),
    };
    let eol = body
        .items
        .iter()
        .rev()
        .map(Item::end_eol)
        .chain(parent.map(|p| p.eol.as_str()))
        .find(|e| !e.is_empty())
        .unwrap_or(&style.eol)
        .to_string();
    (indent, eol)
}

/// Insert `item` at `pos`, making sure the line before it ends with a line ending.
fn insert_item(body: &mut Body, pos: usize, item: Item, eol: &str) {
    let pos = pos.min(body.items.len());
    if pos > 0 {
        if let Some(prev_eol) = body.items[pos - 1].end_eol_mut() {
            if prev_eol.is_empty() {
                *prev_eol = eol.to_string();
            }
        }
    }
    body.items.insert(pos, item);
}

fn link_number(s: &Section) -> u8 {
    s.get("linknumber")
        .or_else(|| s.get("ringnumber"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Document {
    pub(crate) fn style(&self) -> Style {
        let unit = self
            .root
            .items
            .iter()
            .filter_map(Item::as_section)
            .flat_map(|s| s.body.items.iter())
            .map(|i| i.indent().to_string())
            .find(|i| !i.is_empty())
            .unwrap_or_else(|| "  ".to_string());
        let text = self.to_string();
        let eol = match text.find('\n') {
            Some(i) if text[..i].ends_with('\r') => "\r\n",
            _ => "\n",
        };
        Style {
            unit,
            eol: eol.to_string(),
        }
    }

    fn chains(&self, path: &[&str]) -> Vec<Chain> {
        let mut cur: Vec<(Chain, &Body)> = vec![(Vec::new(), &self.root)];
        for name in path {
            let mut next = Vec::new();
            for (chain, body) in cur {
                for (i, item) in body.items.iter().enumerate() {
                    if let Some(s) = item.as_section().filter(|s| s.name == *name) {
                        let mut c = chain.clone();
                        c.push(i);
                        next.push((c, &s.body));
                    }
                }
            }
            cur = next;
        }
        cur.into_iter().map(|c| c.0).collect()
    }

    fn section_at(&self, chain: &[usize]) -> Option<&Section> {
        let (last, init) = chain.split_last()?;
        let mut body = &self.root;
        for &i in init {
            body = &body.items.get(i)?.as_section()?.body;
        }
        body.items.get(*last)?.as_section()
    }

    fn body_at(&self, chain: &[usize]) -> Option<&Body> {
        if chain.is_empty() {
            return Some(&self.root);
        }
        self.section_at(chain).map(|s| &s.body)
    }

    fn body_at_mut(&mut self, chain: &[usize]) -> Option<&mut Body> {
        let mut body = &mut self.root;
        for &i in chain {
            body = &mut body.items.get_mut(i)?.as_section_mut()?.body;
        }
        Some(body)
    }

    /// Insert a new item named `name` built by `build(indent, eol)` into the body at `chain`,
    /// at `pos` or at the sorted/end position.
    fn insert_new(
        &mut self,
        chain: &[usize],
        name: &str,
        pos: Option<usize>,
        build: impl FnOnce(&str, &str, &Style) -> Item,
    ) -> Option<usize> {
        let style = self.style();
        let body = self.body_at(chain)?;
        let (indent, eol) = layout(body, self.section_at(chain), &style);
        let pos = pos.unwrap_or_else(|| sorted_pos(body, name));
        let mut item = build(&indent, &eol, &style);
        // Top-level sections separated by blank lines get one too.
        let separated = chain.is_empty()
            && matches!(item, Item::Section(_))
            && body.items.iter().skip(1).any(|i| match i {
                Item::Section(s) => starts_with_blank_line(&s.prefix),
                Item::Entry(_) => false,
            });
        let body = self.body_at_mut(chain)?;
        if separated {
            if pos == 0 {
                if let Some(first) = body.items.first_mut() {
                    first.prefix_mut().insert_str(0, &eol);
                }
            } else {
                item.prefix_mut().insert_str(0, &eol);
            }
        }
        insert_item(body, pos, item, &eol);
        Some(pos)
    }

    /// The chain of the last section at `path`, creating missing sections on the way.
    fn ensure_section(&mut self, path: &[&str]) -> Chain {
        let mut chain = Vec::new();
        for name in path {
            let existing = self.body_at(&chain).and_then(|b| {
                b.items
                    .iter()
                    .rposition(|i| i.as_section().is_some_and(|s| s.name == *name))
            });
            let idx = match existing {
                Some(i) => i,
                None => {
                    let built = |indent: &str, eol: &str, _: &Style| {
                        Item::Section(Section::new(indent, name, eol))
                    };
                    match self.insert_new(&chain, name, None, built) {
                        Some(i) => i,
                        None => return chain,
                    }
                }
            };
            chain.push(idx);
        }
        chain
    }

    /// Set `key` in the body at `chain`: replace its last occurrence, else insert it.
    fn set_in(&mut self, chain: &[usize], key: &str, value: &str) {
        if let Some(body) = self.body_at_mut(chain) {
            let last = body.items.iter_mut().rev().find_map(|i| match i {
                Item::Entry(e) if e.key == key => Some(e),
                _ => None,
            });
            if let Some(e) = last {
                e.set_value(value);
                return;
            }
        }
        let build =
            |indent: &str, eol: &str, _: &Style| Item::Entry(Entry::new(indent, key, value, eol));
        self.insert_new(chain, key, None, build);
    }

    /// Set `key` to `value` in the section at `section_path` (`[]` = top level). The last
    /// occurrence (over repeated sections and duplicate keys: the one corosync uses) is
    /// replaced in place, keeping its decor; if there is none the key is added to the last
    /// such section, creating sections as needed. New keys go to their alphabetical position
    /// when the section has 2+ items sorted by name (PVE writer style), else to its end.
    pub fn set(&mut self, section_path: &[&str], key: &str, value: &str) {
        let chains = self.chains(section_path);
        let holder = chains.iter().rev().find(|c| {
            self.body_at(c)
                .is_some_and(|b| b.entries().any(|e| e.key == key))
        });
        let chain = match holder.or(chains.last()) {
            Some(c) => c.clone(),
            None => self.ensure_section(section_path),
        };
        self.set_in(&chain, key, value);
    }

    /// Remove every occurrence of `key` in every section at `section_path`; returns how many
    /// lines were removed. Comments above a removed line are kept.
    pub fn remove(&mut self, section_path: &[&str], key: &str) -> usize {
        let mut removed = 0;
        for chain in self.chains(section_path) {
            if let Some(body) = self.body_at_mut(&chain) {
                let mut i = body.items.len();
                while i > 0 {
                    i -= 1;
                    if matches!(&body.items[i], Item::Entry(e) if e.key == key) {
                        remove_item(body, i);
                        removed += 1;
                    }
                }
            }
        }
        removed
    }

    /// Chains of the `node` sections whose `name` is `name`, in file order.
    fn node_chains(&self, name: &str) -> Vec<Chain> {
        self.chains(&["nodelist", "node"])
            .into_iter()
            .filter(|c| self.section_at(c).and_then(|s| s.get("name")) == Some(name))
            .collect()
    }

    /// Append a `node { ... }` block after the last node (creating `nodelist` if needed),
    /// copying the indentation, line ending and blank-line separation of the existing nodes.
    pub fn add_node(&mut self, node: &NodeEntry) {
        let lists = self.chains(&["nodelist"]);
        let list = lists
            .iter()
            .rev()
            .find(|c| {
                self.section_at(c)
                    .is_some_and(|s| s.sections("node").next().is_some())
            })
            .or(lists.last())
            .cloned()
            .unwrap_or_else(|| self.ensure_section(&["nodelist"]));
        let style = self.style();
        let Some(body) = self.body_at(&list) else {
            return;
        };
        let last_node = body
            .items
            .iter()
            .rposition(|i| i.as_section().is_some_and(|s| s.name == "node"));
        let (indent, eol, inner, prefix, pos) =
            match last_node.and_then(|p| Some((p, body.items[p].as_section()?))) {
                Some((p, s)) => {
                    let inner = s
                        .body
                        .items
                        .first()
                        .map(|i| i.indent().to_string())
                        .unwrap_or_else(|| format!("{}{}", s.indent, style.unit));
                    let prefix = if is_blank_only(&s.prefix) {
                        s.prefix.clone()
                    } else {
                        String::new()
                    };
                    let eol = if s.eol.is_empty() {
                        style.eol.clone()
                    } else {
                        s.eol.clone()
                    };
                    (s.indent.clone(), eol, inner, prefix, p + 1)
                }
                None => {
                    let (indent, eol) = layout(body, self.section_at(&list), &style);
                    let inner = format!("{indent}{}", style.unit);
                    (indent, eol, inner, String::new(), body.items.len())
                }
            };
        let mut section = Section::new(&indent, "node", &eol);
        section.prefix = prefix;
        let mut keys = vec![
            ("name".to_string(), node.name.clone()),
            ("nodeid".to_string(), node.nodeid.to_string()),
            ("quorum_votes".to_string(), node.quorum_votes.to_string()),
        ];
        keys.extend(
            node.rings
                .iter()
                .map(|(n, a)| (format!("ring{n}_addr"), a.clone())),
        );
        for (k, v) in keys {
            section
                .body
                .items
                .push(Item::Entry(Entry::new(&inner, &k, &v, &eol)));
        }
        if let Some(body) = self.body_at_mut(&list) {
            insert_item(body, pos, Item::Section(section), &eol);
        }
    }

    /// Remove the node block(s) whose `name` is `name`; true if one was removed.
    pub fn remove_node(&mut self, name: &str) -> bool {
        let chains = self.node_chains(name);
        for chain in chains.iter().rev() {
            if let Some((idx, parent)) = chain.split_last() {
                if let Some(body) = self.body_at_mut(parent) {
                    remove_item(body, *idx);
                }
            }
        }
        !chains.is_empty()
    }

    /// Set `key` in the node named `name` (replacing in place or inserting in PVE key order);
    /// false if there is no such node.
    pub fn set_node_key(&mut self, name: &str, key: &str, value: &str) -> bool {
        match self.node_chains(name).pop() {
            Some(chain) => {
                self.set_in(&chain, key, value);
                true
            }
            None => false,
        }
    }

    /// Set `ring<link>_addr` of node `node_name`; false if there is no such node.
    pub fn set_ring_addr(&mut self, node_name: &str, link: u8, addr: &str) -> bool {
        self.set_node_key(node_name, &format!("ring{link}_addr"), addr)
    }

    /// Remove `ring<link>_addr` from every node; returns how many were removed.
    pub fn remove_ring_addr_everywhere(&mut self, link: u8) -> usize {
        self.remove(&["nodelist", "node"], &format!("ring{link}_addr"))
    }

    /// Add an `interface { linknumber: N ... }` block to `totem` (after the last interface),
    /// with `linknumber` and `keys` in alphabetical order (PVE style). If an interface for
    /// `linknumber` exists (by `linknumber`, or cs2 `ringnumber`), its keys are set instead.
    pub fn add_interface(&mut self, linknumber: u8, keys: &[(&str, &str)]) {
        let existing = self.chains(&["totem", "interface"]).into_iter().rfind(|c| {
            self.section_at(c)
                .is_some_and(|s| link_number(s) == linknumber)
        });
        if let Some(chain) = existing {
            for (k, v) in keys {
                self.set_in(&chain, k, v);
            }
            return;
        }
        let totem = self.ensure_section(&["totem"]);
        let style = self.style();
        let Some(body) = self.body_at(&totem) else {
            return;
        };
        let pos = body
            .items
            .iter()
            .rposition(|i| i.as_section().is_some_and(|s| s.name == "interface"))
            .map(|p| p + 1)
            .unwrap_or_else(|| sorted_pos(body, "interface"));
        let (indent, eol) = layout(body, self.section_at(&totem), &style);
        let inner = body
            .items
            .iter()
            .rev()
            .filter_map(Item::as_section)
            .find(|s| s.name == "interface")
            .and_then(|s| s.body.items.first().map(|i| i.indent().to_string()))
            .unwrap_or_else(|| format!("{indent}{}", style.unit));
        let number = linknumber.to_string();
        let mut pairs: Vec<(&str, &str)> = keys
            .iter()
            .copied()
            .filter(|(k, _)| *k != "linknumber")
            .collect();
        pairs.push(("linknumber", &number));
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut section = Section::new(&indent, "interface", &eol);
        for (k, v) in pairs {
            section
                .body
                .items
                .push(Item::Entry(Entry::new(&inner, k, v, &eol)));
        }
        if let Some(body) = self.body_at_mut(&totem) {
            insert_item(body, pos, Item::Section(section), &eol);
        }
    }

    /// Remove every `interface` block of link `linknumber` (by `linknumber`, or `ringnumber`,
    /// or 0 when neither is given); true if one was removed.
    pub fn remove_interface(&mut self, linknumber: u8) -> bool {
        let chains: Vec<Chain> = self
            .chains(&["totem", "interface"])
            .into_iter()
            .filter(|c| {
                self.section_at(c)
                    .is_some_and(|s| link_number(s) == linknumber)
            })
            .collect();
        for chain in chains.iter().rev() {
            if let Some((idx, parent)) = chain.split_last() {
                if let Some(body) = self.body_at_mut(parent) {
                    remove_item(body, *idx);
                }
            }
        }
        !chains.is_empty()
    }

    /// Increment `totem.config_version` by one (in place) and return the new value; a missing
    /// or unreadable value counts as 0, so `config_version: 1` is inserted.
    pub fn bump_config_version(&mut self) -> u64 {
        let current = self
            .get(&["totem"], "config_version")
            .and_then(|v| v.strip_prefix('+').unwrap_or(v).parse::<u64>().ok())
            .unwrap_or(0);
        let next = current.saturating_add(1);
        self.set(&["totem"], "config_version", &next.to_string());
        next
    }
}
