//! The tree builder: lines to sections and entries, with an error sink that keeps going.

use super::document::{is_array_section, Body, Document, Entry, Item, Section};
use super::error::{self as err, check_typed, LineIndex, ParseError, RULE_SYNTAX, RULE_VALUE};
use super::lexer::{classify, split_lines, LineKind, RawLine, MAX_LINE_BYTES};
use crate::diag::Diagnostic;
use std::collections::HashMap;

/// Deepest nesting kept as sections; every deeper path is over corosync's cmap limit anyway.
const MAX_DEPTH: usize = 256;

/// The file name diagnostics use when none is given.
pub const DEFAULT_FILE_NAME: &str = "corosync.conf";

struct Open {
    section: Section,
    /// Logical path (`nodelist.node[1]`).
    logical: String,
    /// How often each name was seen so far in this section (for array indices).
    seen: HashMap<String, usize>,
    /// Byte offset of the section name (for "Missing closing brace").
    name_offset: usize,
}

struct Parser<'a> {
    index: LineIndex<'a>,
    file: &'a str,
    errors: Vec<Diagnostic>,
    stack: Vec<Open>,
    root: Body,
    root_seen: HashMap<String, usize>,
    pending: String,
}

impl<'a> Parser<'a> {
    fn error(
        &mut self,
        rule: &'static str,
        msg: impl Into<String>,
        at: usize,
        len: usize,
        path: &str,
    ) {
        self.errors.push(
            Diagnostic::error(rule, msg)
                .in_file(self.file)
                .at(Some(self.index.locate(at, len)))
                .at_path(path),
        );
    }

    fn cmap_path(&self, name: &str) -> String {
        let mut parts: Vec<&str> = self.stack.iter().map(|o| o.section.name.as_str()).collect();
        parts.push(name);
        parts.join(".")
    }

    /// Logical path of a new child `name` of the current section, registering it.
    fn child_logical(&mut self, name: &str, array: bool) -> String {
        let (parent, seen) = match self.stack.last_mut() {
            Some(o) => (o.logical.clone(), &mut o.seen),
            None => (String::new(), &mut self.root_seen),
        };
        let count = seen.entry(name.to_string()).or_insert(0);
        let n = *count;
        *count += 1;
        let mut path = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        if array {
            path = format!("{path}[{n}]");
        }
        path
    }

    fn push_item(&mut self, item: Item) {
        match self.stack.last_mut() {
            Some(o) => o.section.body.items.push(item),
            None => self.root.items.push(item),
        }
    }

    fn raw(line: &RawLine<'_>) -> String {
        format!("{}{}", line.content, line.eol)
    }

    fn line(&mut self, line: RawLine<'_>) {
        if line.fgets_len() > MAX_LINE_BYTES {
            self.error(
                RULE_SYNTAX,
                err::LINE_TOO_LONG,
                line.start,
                line.content.len(),
                "",
            );
            self.pending.push_str(&Self::raw(&line));
            return;
        }
        match classify(line.content) {
            LineKind::Decor => self.pending.push_str(&Self::raw(&line)),
            LineKind::Open {
                indent,
                name,
                name_at,
                brace_at,
                extra_at,
            } => self.open(&line, indent, name, name_at, brace_at, extra_at),
            LineKind::KeyValue { kv, colon_at } => {
                let logical = self.child_logical(kv.key, false);
                let cmap = self.cmap_path(kv.key);
                if kv.key.is_empty() {
                    self.error(
                        RULE_SYNTAX,
                        err::EMPTY_KEY,
                        line.start + colon_at,
                        1,
                        &logical,
                    );
                } else if cmap.len() >= err::ICMAP_KEYNAME_MAXLEN {
                    let at = line.start + kv.indent.len();
                    self.error(
                        RULE_SYNTAX,
                        err::KEY_PATH_TOO_LONG,
                        at,
                        kv.key.len(),
                        &logical,
                    );
                } else {
                    let typed_path: Vec<&str> = self
                        .stack
                        .iter()
                        .map(|o| o.section.name.as_str())
                        .chain([kv.key])
                        .collect();
                    if let Some(msg) = check_typed(&typed_path.join("."), kv.value) {
                        let at =
                            line.start + line.content.len() - kv.trailing.len() - kv.value.len();
                        self.error(RULE_VALUE, msg, at, kv.value.len(), &logical);
                    }
                }
                let entry = Entry {
                    prefix: std::mem::take(&mut self.pending),
                    indent: kv.indent.to_string(),
                    key: kv.key.to_string(),
                    pre_colon: kv.pre_colon.to_string(),
                    post_colon: kv.post_colon.to_string(),
                    value: kv.value.to_string(),
                    trailing: kv.trailing.to_string(),
                    eol: line.eol.to_string(),
                };
                self.push_item(Item::Entry(entry));
            }
            LineKind::Close { at, exact } => {
                if !exact {
                    let path = self
                        .stack
                        .last()
                        .map(|o| o.logical.clone())
                        .unwrap_or_default();
                    self.error(
                        RULE_SYNTAX,
                        err::EXTRA_AROUND_CLOSE,
                        line.start + at,
                        1,
                        &path,
                    );
                }
                match self.stack.pop() {
                    Some(mut open) => {
                        open.section.body.trailing = std::mem::take(&mut self.pending);
                        open.section.close = Some((line.content.to_string(), line.eol.to_string()));
                        self.push_item(Item::Section(open.section));
                    }
                    None => {
                        if exact {
                            self.error(RULE_SYNTAX, err::UNEXPECTED_CLOSE, line.start + at, 1, "");
                        }
                        self.pending.push_str(&Self::raw(&line));
                    }
                }
            }
            LineKind::Invalid { at } => {
                let path = self
                    .stack
                    .last()
                    .map(|o| o.logical.clone())
                    .unwrap_or_default();
                let len = line.content.len() - at;
                self.error(
                    RULE_SYNTAX,
                    err::NOT_SECTION_OR_KEY,
                    line.start + at,
                    len,
                    &path,
                );
                self.pending.push_str(&Self::raw(&line));
            }
        }
    }

    fn open(
        &mut self,
        line: &RawLine<'_>,
        indent: &str,
        name: &str,
        name_at: usize,
        brace_at: usize,
        extra_at: Option<usize>,
    ) {
        if self.stack.len() >= MAX_DEPTH {
            // Far past the cmap path limit (already reported): keep the line as decor so that
            // nesting, and the recursion printing it, stays bounded.
            let path = self
                .stack
                .last()
                .map(|o| o.logical.clone())
                .unwrap_or_default();
            let at = line.start + name_at;
            self.error(
                RULE_SYNTAX,
                err::SECTION_PATH_TOO_LONG,
                at,
                name.len(),
                &path,
            );
            self.pending.push_str(&Self::raw(line));
            return;
        }
        let logical = self.child_logical(name, is_array_section(name));
        if name.is_empty() {
            self.error(
                RULE_SYNTAX,
                err::MISSING_SECTION_NAME,
                line.start + brace_at,
                1,
                &logical,
            );
        } else if let Some(extra) = extra_at {
            let len = line.content.trim_end_matches(super::lexer::is_ws).len() - extra;
            self.error(
                RULE_SYNTAX,
                err::EXTRA_AFTER_OPEN,
                line.start + extra,
                len,
                &logical,
            );
        } else if self.cmap_path(name).len() >= err::ICMAP_KEYNAME_MAXLEN {
            self.error(
                RULE_SYNTAX,
                err::SECTION_PATH_TOO_LONG,
                line.start + name_at,
                name.len(),
                &logical,
            );
        }
        let section = Section {
            prefix: std::mem::take(&mut self.pending),
            indent: indent.to_string(),
            name: name.to_string(),
            header: line.content.to_string(),
            eol: line.eol.to_string(),
            body: Body::default(),
            close: None,
        };
        self.stack.push(Open {
            section,
            logical,
            seen: HashMap::new(),
            name_offset: line.start + name_at,
        });
    }

    fn finish(mut self) -> (Document, Vec<Diagnostic>) {
        if let Some(innermost) = self.stack.last() {
            let (at, len, path) = (
                innermost.name_offset,
                innermost.section.name.len(),
                innermost.logical.clone(),
            );
            self.error(RULE_SYNTAX, err::MISSING_CLOSE, at, len, &path);
            let help = format!("section `{path}` is never closed");
            if let Some(d) = self.errors.last_mut() {
                d.help = Some(help);
            }
        }
        while let Some(mut open) = self.stack.pop() {
            open.section.body.trailing = std::mem::take(&mut self.pending);
            self.push_item(Item::Section(open.section));
        }
        self.root.trailing = std::mem::take(&mut self.pending);
        let doc = Document {
            root: self.root,
            file: self.file.to_string(),
        };
        (doc, self.errors)
    }
}

impl Document {
    /// Parse `src` like corosync does; all errors of the file are reported at once.
    /// Diagnostics name the file `corosync.conf`.
    pub fn parse(src: &str) -> Result<Document, ParseError> {
        Self::parse_named(DEFAULT_FILE_NAME, src)
    }

    /// Like [`Document::parse`], naming the file `file` in diagnostics.
    pub fn parse_named(file: &str, src: &str) -> Result<Document, ParseError> {
        let (doc, diagnostics) = Self::parse_recovering(file, src);
        if diagnostics.is_empty() {
            Ok(doc)
        } else {
            Err(ParseError { diagnostics })
        }
    }

    /// Parse without giving up: the document (which still prints back to exactly `src`, with
    /// offending lines kept as decor) and every error found.
    pub fn parse_recovering(file: &str, src: &str) -> (Document, Vec<Diagnostic>) {
        let mut p = Parser {
            index: LineIndex::new(src),
            file,
            errors: Vec::new(),
            stack: Vec::new(),
            root: Body::default(),
            root_seen: HashMap::new(),
            pending: String::new(),
        };
        for line in split_lines(src) {
            p.line(line);
        }
        p.finish()
    }
}

impl std::str::FromStr for Document {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Document::parse(s)
    }
}
