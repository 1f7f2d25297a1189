//! The lossless tree: sections and entries that keep every original byte, and read accessors.

use std::collections::HashMap;
use std::fmt;

/// A corosync.conf document: a lossless tree of [`Item`]s that prints back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub(crate) root: Body,
    pub(crate) file: String,
}

/// The items of the document root or of a section, plus the decor after the last item
/// (comments and blank lines before the closing `}` or at the end of the file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Body {
    pub items: Vec<Item>,
    pub trailing: String,
}

/// One statement of a corosync.conf: a `key: value` line or a `name { ... }` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A `key: value` line.
    Entry(Entry),
    /// A `name { ... }` section.
    Section(Section),
}

/// A `key: value` line with its exact spelling: `prefix` (comment and blank lines before it),
/// indentation, key, whitespace before and after the `:`, value, trailing whitespace and line
/// ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(crate) prefix: String,
    pub(crate) indent: String,
    pub(crate) key: String,
    pub(crate) pre_colon: String,
    pub(crate) post_colon: String,
    pub(crate) value: String,
    pub(crate) trailing: String,
    pub(crate) eol: String,
}

/// A `name {` ... `}` section with its exact header and closing lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub(crate) prefix: String,
    pub(crate) indent: String,
    pub(crate) name: String,
    /// The whole header line without its ending (indentation included).
    pub(crate) header: String,
    pub(crate) eol: String,
    pub(crate) body: Body,
    /// The closing line (without ending) and its ending; `None` when the file ended first.
    pub(crate) close: Option<(String, String)>,
}

impl Entry {
    pub(crate) fn new(indent: &str, key: &str, value: &str, eol: &str) -> Self {
        Entry {
            prefix: String::new(),
            indent: indent.to_string(),
            key: key.to_string(),
            pre_colon: String::new(),
            post_colon: if value.is_empty() { "" } else { " " }.to_string(),
            value: value.to_string(),
            trailing: String::new(),
            eol: eol.to_string(),
        }
    }

    /// The key (trimmed like corosync does).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value (leading and trailing whitespace removed, everything else kept literally).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Comment and blank lines before this entry, verbatim.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The line ending: `"\n"`, `"\r\n"`, `"\r"` or `""` (end of file).
    pub fn eol(&self) -> &str {
        &self.eol
    }

    /// Set the value, keeping indentation, separator spelling, trailing whitespace and decor.
    pub(crate) fn set_value(&mut self, value: &str) {
        if self.value.is_empty() && self.post_colon.is_empty() && !value.is_empty() {
            self.post_colon = " ".to_string();
            self.trailing.clear();
        }
        self.value = value.to_string();
    }

    /// Byte offset of the value relative to the start of the line (after the prefix).
    pub(crate) fn value_offset(&self) -> usize {
        self.indent.len() + self.key.len() + self.pre_colon.len() + 1 + self.post_colon.len()
    }
}

impl Section {
    pub(crate) fn new(indent: &str, name: &str, eol: &str) -> Self {
        Section {
            prefix: String::new(),
            indent: indent.to_string(),
            name: name.to_string(),
            header: format!("{indent}{name} {{"),
            eol: eol.to_string(),
            body: Body::default(),
            close: Some((format!("{indent}}}"), eol.to_string())),
        }
    }

    /// The section name (`totem`, `node`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The items inside the section, in file order.
    pub fn items(&self) -> &[Item] {
        &self.body.items
    }

    /// Comment and blank lines before the section header, verbatim.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Comment and blank lines after the last item, before the closing `}`.
    pub fn trailing_decor(&self) -> &str {
        &self.body.trailing
    }

    /// False when the file ended before the closing `}` (only in recovered documents).
    pub fn is_closed(&self) -> bool {
        self.close.is_some()
    }

    /// The value of the last `key` entry directly in this section (corosync: last wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.body.get(key)
    }

    /// The direct subsections named `name`, in file order.
    pub fn sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.body.sections(name)
    }

    /// The direct entries, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.body.entries()
    }
}

impl Item {
    /// The key of an entry or the name of a section.
    pub fn name(&self) -> &str {
        match self {
            Item::Entry(e) => &e.key,
            Item::Section(s) => &s.name,
        }
    }

    pub(crate) fn prefix_mut(&mut self) -> &mut String {
        match self {
            Item::Entry(e) => &mut e.prefix,
            Item::Section(s) => &mut s.prefix,
        }
    }

    pub(crate) fn indent(&self) -> &str {
        match self {
            Item::Entry(e) => &e.indent,
            Item::Section(s) => &s.indent,
        }
    }

    /// The line ending of the last line of the item.
    pub(crate) fn end_eol(&self) -> &str {
        match self {
            Item::Entry(e) => &e.eol,
            Item::Section(s) => s.close.as_ref().map(|c| c.1.as_str()).unwrap_or(""),
        }
    }

    pub(crate) fn end_eol_mut(&mut self) -> Option<&mut String> {
        match self {
            Item::Entry(e) => Some(&mut e.eol),
            Item::Section(s) => s.close.as_mut().map(|c| &mut c.1),
        }
    }

    pub(crate) fn as_section(&self) -> Option<&Section> {
        match self {
            Item::Section(s) => Some(s),
            Item::Entry(_) => None,
        }
    }

    pub(crate) fn as_section_mut(&mut self) -> Option<&mut Section> {
        match self {
            Item::Section(s) => Some(s),
            Item::Entry(_) => None,
        }
    }
}

impl Body {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.entries()
            .filter(|e| e.key == key)
            .last()
            .map(|e| e.value.as_str())
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.items.iter().filter_map(|i| match i {
            Item::Entry(e) => Some(e),
            Item::Section(_) => None,
        })
    }

    pub(crate) fn sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.items
            .iter()
            .filter_map(Item::as_section)
            .filter(move |s| s.name == name)
    }

    fn write(&self, out: &mut String) {
        for item in &self.items {
            match item {
                Item::Entry(e) => {
                    for part in [
                        &e.prefix,
                        &e.indent,
                        &e.key,
                        &e.pre_colon,
                        ":",
                        &e.post_colon,
                        &e.value,
                        &e.trailing,
                        &e.eol,
                    ] {
                        out.push_str(part);
                    }
                }
                Item::Section(s) => {
                    out.push_str(&s.prefix);
                    out.push_str(&s.header);
                    out.push_str(&s.eol);
                    s.body.write(out);
                    if let Some((line, eol)) = &s.close {
                        out.push_str(line);
                        out.push_str(eol);
                    }
                }
            }
        }
        out.push_str(&self.trailing);
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.root.write(&mut out);
        f.write_str(&out)
    }
}

/// Where an item is in the printed document, for located diagnostics.
pub(crate) struct Located<'a> {
    pub item: &'a Item,
    /// Section names from the root down to (excluding) this item.
    pub parents: Vec<&'a str>,
    /// Logical path of this item, e.g. `nodelist.node[1].ring0_addr`.
    pub logical: String,
    /// Byte offset of the item's first non-decor byte (its indentation).
    pub offset: usize,
    /// Index (in the flattened list) of the enclosing section, `None` at the root.
    pub parent: Option<usize>,
}

/// Sections that corosync and Proxmox treat as lists: their logical paths carry an index.
pub(crate) fn is_array_section(name: &str) -> bool {
    matches!(name, "node" | "interface" | "member" | "logger_subsys")
}

fn flatten_body<'a>(
    body: &'a Body,
    parent: Option<usize>,
    parents: &mut Vec<&'a str>,
    logical: &str,
    offset: &mut usize,
    out: &mut Vec<Located<'a>>,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for item in &body.items {
        let name = item.name();
        let count = seen.entry(name).or_insert(0);
        let n = *count;
        *count += 1;
        let mut path = if logical.is_empty() {
            name.to_string()
        } else {
            format!("{logical}.{name}")
        };
        match item {
            Item::Entry(e) => {
                *offset += e.prefix.len();
                out.push(Located {
                    item,
                    parents: parents.clone(),
                    logical: path,
                    offset: *offset,
                    parent,
                });
                *offset += e.value_offset() + e.value.len() + e.trailing.len() + e.eol.len();
            }
            Item::Section(s) => {
                if is_array_section(name) {
                    path = format!("{path}[{n}]");
                }
                *offset += s.prefix.len();
                out.push(Located {
                    item,
                    parents: parents.clone(),
                    logical: path.clone(),
                    offset: *offset,
                    parent,
                });
                let me = out.len() - 1;
                *offset += s.header.len() + s.eol.len();
                parents.push(&s.name);
                flatten_body(&s.body, Some(me), parents, &path, offset, out);
                parents.pop();
                if let Some((line, eol)) = &s.close {
                    *offset += line.len() + eol.len();
                }
            }
        }
    }
    *offset += body.trailing.len();
}

impl Document {
    /// Every item in file order with its location in the printed text.
    pub(crate) fn flatten(&self) -> Vec<Located<'_>> {
        let mut out = Vec::new();
        flatten_body(&self.root, None, &mut Vec::new(), "", &mut 0, &mut out);
        out
    }

    /// The file name used in diagnostics (`corosync.conf` unless parsed with another name).
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// Change the file name used in diagnostics.
    pub fn set_file_name(&mut self, name: impl Into<String>) {
        self.file = name.into();
    }

    /// The top-level items, in file order.
    pub fn items(&self) -> &[Item] {
        &self.root.items
    }

    /// Comment and blank lines at the end of the file, after the last item.
    pub fn trailing_decor(&self) -> &str {
        &self.root.trailing
    }

    /// All sections at `path` (e.g. `["totem", "interface"]`), in file order; repeated sections
    /// at any level are all included.
    pub fn sections<'s>(&'s self, path: &[&str]) -> Vec<&'s Section> {
        let Some((first, rest)) = path.split_first() else {
            return Vec::new();
        };
        let children = |body: &'s Body, name: &str| -> Vec<&'s Section> {
            body.items
                .iter()
                .filter_map(Item::as_section)
                .filter(|s| s.name == name)
                .collect()
        };
        let mut current = children(&self.root, first);
        for name in rest {
            current = current
                .iter()
                .flat_map(|s| children(&s.body, name))
                .collect();
        }
        current
    }

    /// Every value of `key` in the sections at `section_path` (root when empty), in file order.
    pub fn get_all(&self, section_path: &[&str], key: &str) -> Vec<&str> {
        let bodies: Vec<&Body> = if section_path.is_empty() {
            vec![&self.root]
        } else {
            self.sections(section_path)
                .into_iter()
                .map(|s| &s.body)
                .collect()
        };
        bodies
            .into_iter()
            .flat_map(|b| b.entries().filter(|e| e.key == key).map(|e| e.value()))
            .collect()
    }

    /// The effective value of `key` at `section_path`: the last one, as corosync's merge of
    /// repeated sections and duplicate keys gives.
    pub fn get(&self, section_path: &[&str], key: &str) -> Option<&str> {
        self.get_all(section_path, key).pop()
    }
}
