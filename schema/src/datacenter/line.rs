//! One physical line of datacenter.cfg, kept byte for byte.

use super::property::is_perl_space;
use std::ops::Range;

/// What a line is, after PVE's trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// Empty or whitespace only.
    Blank,
    /// Starts with `#` after trimming.
    Comment,
    /// `^(\S+?):\s*(.*)$` matched; byte ranges into the line's text.
    Entry {
        key: Range<usize>,
        value: Range<usize>,
    },
    /// Anything else: PVE warns `ignore config line: <line>` and skips it.
    Other,
}

/// A line: its text without the line ending, the ending (`""`, `"\n"` or `"\r\n"`), its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: String,
    pub eol: &'static str,
    pub kind: LineKind,
}

impl Line {
    /// Classify `text` (no line ending) the way `PVE::JSONSchema::parse_config` does.
    pub fn new(text: String, eol: &'static str) -> Self {
        let kind = classify(&text);
        Line { text, eol, kind }
    }

    /// The key, for an entry line.
    pub fn key(&self) -> Option<&str> {
        match &self.kind {
            LineKind::Entry { key, .. } => self.text.get(key.clone()),
            _ => None,
        }
    }

    /// The value, for an entry line.
    pub fn value(&self) -> Option<&str> {
        match &self.kind {
            LineKind::Entry { value, .. } => self.text.get(value.clone()),
            _ => None,
        }
    }

    /// The trimmed text and its byte offset within the line.
    pub fn trimmed(&self) -> (usize, &str) {
        let start = self.text.len() - self.text.trim_start_matches(is_perl_space).len();
        (start, self.text.trim_matches(is_perl_space))
    }

    /// The whitespace between `:` and the value (for entries with a non-empty value).
    pub fn separator(&self) -> Option<&str> {
        match &self.kind {
            LineKind::Entry { key, value } if !value.is_empty() => {
                self.text.get(key.end + 1..value.start)
            }
            _ => None,
        }
    }
}

fn classify(text: &str) -> LineKind {
    let start = text.len() - text.trim_start_matches(is_perl_space).len();
    let trimmed = text.trim_matches(is_perl_space);
    let Some(first) = trimmed.chars().next() else {
        return LineKind::Blank;
    };
    if first == '#' {
        return LineKind::Comment;
    }
    // `\S+?:` — the shortest non-empty run of non-space characters followed by `:`.
    let first_len = first.len_utf8();
    let Some(colon) = trimmed[first_len..].find(':').map(|p| p + first_len) else {
        return LineKind::Other;
    };
    if trimmed[..colon].contains(is_perl_space) {
        return LineKind::Other;
    }
    let after = &trimmed[colon + 1..];
    let value_start = colon + 1 + (after.len() - after.trim_start_matches(is_perl_space).len());
    LineKind::Entry {
        key: start..start + colon,
        value: start + value_start..start + trimmed.len(),
    }
}

/// Split `src` into lines, keeping each line ending.
pub(crate) fn split_lines(src: &str) -> Vec<Line> {
    src.split_inclusive('\n')
        .map(|piece| {
            if let Some(t) = piece.strip_suffix("\r\n") {
                Line::new(t.to_string(), "\r\n")
            } else if let Some(t) = piece.strip_suffix('\n') {
                Line::new(t.to_string(), "\n")
            } else {
                Line::new(piece.to_string(), "")
            }
        })
        .collect()
}
