//! Located diagnostics: one type for every error and warning the schema crate reports.
//!
//! A [`Diagnostic`] names where the problem is (file, 1-based line and column, and a logical
//! path such as `spec.nodes[2].ring1_addr` or `nodelist.node[1]`), what is wrong and what to do.
//! [`Diagnostic::render`] prints the rustc-style snippet with a caret.

use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Shown, but does not fail validation unless `--strict`.
    Warning,
    /// Fails validation.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A 1-based line and column (column counted in characters) plus the byte span it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (characters, not bytes).
    pub col: usize,
    /// Byte offset of the start in the source text.
    #[serde(skip)]
    pub offset: usize,
    /// Length in bytes of the highlighted text (0 = a point).
    #[serde(skip)]
    pub len: usize,
}

impl Location {
    /// Location of byte `offset` in `src`, highlighting `len` bytes.
    pub fn from_offset(src: &str, offset: usize, len: usize) -> Self {
        let offset = offset.min(src.len());
        let before = &src[..floor_char_boundary(src, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = before[line_start..].chars().count() + 1;
        Location {
            line,
            col,
            offset,
            len,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One problem found in an input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Short stable identifier of the rule that produced it (e.g. `duplicate-nodeid`).
    pub rule: &'static str,
    /// The file the problem is in, as given by the caller (may be empty).
    pub file: String,
    /// Where in the file; `None` when no location is known.
    pub location: Option<Location>,
    /// Logical path of the offending field (`spec.nodes[2].ring1_addr`), may be empty.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it, if there is something specific to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new error for `rule` with `message` and no location yet.
    pub fn error(rule: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            rule,
            file: String::new(),
            location: None,
            path: String::new(),
            message: message.into(),
            help: None,
        }
    }

    /// A new warning for `rule` with `message` and no location yet.
    pub fn warning(rule: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(rule, message)
        }
    }

    /// Set the field path.
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Set the location.
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    /// Set the file name.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }

    /// Add a "what to do" hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col` (or whatever part of it is known).
    pub fn position(&self) -> String {
        match (&self.location, self.file.is_empty()) {
            (Some(l), false) => format!("{}:{}:{}", self.file, l.line, l.col),
            (Some(l), true) => format!("{}:{}", l.line, l.col),
            (None, false) => self.file.clone(),
            (None, true) => String::new(),
        }
    }

    /// Render as a rustc-style message with a source snippet and caret when `src` is given.
    ///
    /// ```text
    /// error[duplicate-nodeid]: nodeid 2 is used by two nodes
    ///   --> cluster.yaml:14:15 (spec.nodes[2].nodeid)
    ///    |
    /// 14 |       nodeid: 2
    ///    |               ^
    ///    = help: give every node its own nodeid
    /// ```
    pub fn render(&self, src: Option<&str>) -> String {
        let mut out = format!("{}[{}]: {}\n", self.severity, self.rule, self.message);
        let pos = self.position();
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.path)
        };
        if !pos.is_empty() || !path.is_empty() {
            out.push_str(&format!("  --> {pos}{path}\n"));
        }
        if let (Some(loc), Some(src)) = (&self.location, src) {
            if let Some(text) = src.split('\n').nth(loc.line.saturating_sub(1)) {
                let text = text.strip_suffix('\r').unwrap_or(text);
                let gutter = loc.line.to_string().len();
                let pad = " ".repeat(gutter);
                let caret_col = loc.col.saturating_sub(1);
                let rest = text.chars().count().saturating_sub(caret_col).max(1);
                let highlighted = src
                    .get(loc.offset..loc.offset + loc.len)
                    .map(|s| s.chars().count())
                    .unwrap_or(0);
                let width = highlighted.clamp(1, rest);
                out.push_str(&format!("{pad} |\n{} | {}\n", loc.line, text));
                out.push_str(&format!(
                    "{pad} | {}{}\n",
                    " ".repeat(caret_col),
                    "^".repeat(width)
                ));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pos = self.position();
        if !pos.is_empty() {
            write!(f, "{pos}: ")?;
        }
        write!(f, "{}: {}", self.severity, self.message)?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word`, if it is close enough to suggest ("did you mean").
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_chars() {
        let src = "a: 1\nbé: 2\n";
        let off = src.find('2').unwrap();
        let loc = Location::from_offset(src, off, 1);
        assert_eq!((loc.line, loc.col), (2, 5));
    }

    #[test]
    fn render_points_caret_at_column() {
        let src = "x: 1\n  nodeid: 22\n";
        let off = src.find("22").unwrap();
        let d = Diagnostic::error("r", "bad")
            .in_file("f.yaml")
            .at(Some(Location::from_offset(src, off, 2)));
        let r = d.render(Some(src));
        assert!(r.contains("--> f.yaml:2:11"), "{r}");
        assert!(r.contains("2 |   nodeid: 22\n  |           ^^\n"), "{r}");
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(
            did_you_mean("ring0_adr", ["ring0_addr", "nodeid"]),
            Some("ring0_addr")
        );
        assert_eq!(did_you_mean("zzz", ["ring0_addr", "nodeid"]), None);
    }
}
