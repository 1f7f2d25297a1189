//! [`DatacenterDocument`]: datacenter.cfg as a lossless, editable list of lines.

use super::bwlimit::Bwlimit;
use super::error::{EditError, PropertyError};
use super::line::{split_lines, Line, LineKind};
use super::migration::Migration;
use super::property::{is_perl_space, parse_integer_min};
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// datacenter.cfg as a lossless document.
///
/// Every line is kept byte for byte with its line ending (`\n` or `\r\n`; a missing final
/// newline stays missing), so [`to_string`](ToString::to_string) of an unedited document
/// returns the input. Lines are classified like `PVE::JSONSchema::parse_config`: after
/// trimming, `#…` is a comment, `^(\S+?):\s*(.*)$` is a `key: value` entry, anything else is
/// kept but ignored (see [`diagnostics`](Self::diagnostics)). When a key appears more than once
/// the last occurrence wins for reading.
///
/// Edits ([`set`](Self::set), [`remove`](Self::remove) and the typed setters) touch only the
/// lines of the key being edited; every other key, comment, blank line and the order are kept.
///
/// ```
/// use pve_gitops_schema::datacenter::{DatacenterDocument, Migration};
///
/// let mut doc = DatacenterDocument::parse("# managed\nkeyboard: de\nmigration: type=secure\n");
/// let m: Migration = "secure,network=10.1.2.0/24".parse().unwrap();
/// assert!(doc.set_migration(&m));
/// assert_eq!(
///     doc.to_string(),
///     "# managed\nkeyboard: de\nmigration: secure,network=10.1.2.0/24\n"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatacenterDocument {
    pub(crate) lines: Vec<Line>,
}

impl DatacenterDocument {
    /// Parse `src`. Never fails: lines PVE would ignore are kept and reported by
    /// [`diagnostics`](Self::diagnostics).
    pub fn parse(src: &str) -> Self {
        DatacenterDocument {
            lines: split_lines(src),
        }
    }

    /// The value of `key` (its last occurrence), as written (trimmed).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find(|l| l.key() == Some(key))
            .and_then(Line::value)
    }

    /// True when `key` has at least one line.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every `key: value` line in file order, duplicates included.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.lines
            .iter()
            .filter_map(|l| Some((l.key()?, l.value()?)))
    }

    /// The distinct keys in order of first appearance.
    pub fn keys(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (k, _) in self.entries() {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// The text of the comment lines (after `#`, not decoded), in file order.
    ///
    /// PVE collects these into the `description` option.
    pub fn comments(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Comment)
            .map(|l| {
                let (_, t) = l.trimmed();
                t.strip_prefix('#').unwrap_or(t)
            })
            .collect()
    }

    /// Set `key` to `value`.
    ///
    /// If the key exists, the value of its last occurrence is replaced in place (indentation,
    /// separator and trailing text of the line are kept; earlier duplicates are left alone and
    /// stay shadowed). Otherwise a `key: value` line is added after the last entry line (at the
    /// end when there is none), using the separator of the file's existing entries and its
    /// line ending.
    ///
    /// Refuses keys and values that would not read back unchanged (empty key, whitespace or
    /// `:` in the key, a key starting with `#`, line breaks in the value, leading or trailing
    /// whitespace in the value).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        check_key(key)?;
        if value.contains(['\n', '\r']) {
            return Err(EditError::InvalidValue {
                key: key.into(),
                reason: "value contains a line break",
            });
        }
        if value.starts_with(is_perl_space) || value.ends_with(is_perl_space) {
            return Err(EditError::InvalidValue {
                key: key.into(),
                reason: "value starts or ends with whitespace, which PVE trims",
            });
        }
        if let Some(line) = self.lines.iter_mut().rev().find(|l| l.key() == Some(key)) {
            if let LineKind::Entry { key: k, value: v } = &line.kind {
                let text = if v.is_empty() {
                    let sep = line.text.get(k.end + 1..v.start).unwrap_or("");
                    let sep = if sep.is_empty() && !value.is_empty() {
                        " "
                    } else {
                        sep
                    };
                    format!("{}{sep}{value}", &line.text[..k.end + 1])
                } else {
                    format!("{}{value}{}", &line.text[..v.start], &line.text[v.end..])
                };
                *line = Line::new(text, line.eol);
            }
            return Ok(());
        }
        let sep = self
            .lines
            .iter()
            .rev()
            .find_map(Line::separator)
            .unwrap_or(" ")
            .to_string();
        let eol = self.eol_style();
        let at = self
            .lines
            .iter()
            .rposition(|l| l.key().is_some())
            .map(|i| i + 1)
            .unwrap_or(self.lines.len());
        let mut new_eol = eol;
        if at == self.lines.len() {
            if let Some(last) = self.lines.last_mut() {
                if last.eol.is_empty() {
                    last.eol = eol;
                    new_eol = "";
                }
            }
        }
        self.lines
            .insert(at, Line::new(format!("{key}:{sep}{value}"), new_eol));
        Ok(())
    }

    /// Remove every line of `key`. Returns whether anything was removed. A missing final
    /// newline stays missing.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.lines.len();
        let no_final_newline = self.lines.last().is_some_and(|l| l.eol.is_empty());
        self.lines.retain(|l| l.key() != Some(key));
        if no_final_newline {
            if let Some(last) = self.lines.last_mut() {
                last.eol = "";
            }
        }
        self.lines.len() != before
    }

    /// The parsed `migration` property, if the key is present.
    pub fn migration(&self) -> Option<Result<Migration, PropertyError>> {
        self.get("migration").map(str::parse)
    }

    /// Make `migration` equal to `m` (compared as parsed values). When the current value
    /// already parses to `m` the line is left as written; otherwise the canonical spelling is
    /// written. Returns whether the document changed.
    pub fn set_migration(&mut self, m: &Migration) -> bool {
        if matches!(self.migration(), Some(Ok(cur)) if cur == *m) {
            return false;
        }
        self.set_canonical("migration", &m.to_string())
    }

    /// The parsed `bwlimit` property, if the key is present.
    pub fn bwlimit(&self) -> Option<Result<Bwlimit, PropertyError>> {
        self.get("bwlimit").map(str::parse)
    }

    /// Make `bwlimit` equal to `b` (compared as parsed values); an empty `b` removes the key.
    /// Returns whether the document changed.
    pub fn set_bwlimit(&mut self, b: &Bwlimit) -> bool {
        match self.bwlimit() {
            Some(Ok(cur)) if cur == *b => false,
            None if b.is_empty() => false,
            _ if b.is_empty() => self.remove("bwlimit"),
            _ => self.set_canonical("bwlimit", &b.to_string()),
        }
    }

    /// Set only the `migration` part of `bwlimit` (`None` clears it), keeping the other
    /// limits. Fails, changing nothing, when the current `bwlimit` does not parse.
    /// Returns whether the document changed.
    pub fn set_bwlimit_migration(&mut self, kib: Option<u64>) -> Result<bool, EditError> {
        let cur = match self.bwlimit() {
            None => Bwlimit::default(),
            Some(Ok(b)) => b,
            Some(Err(source)) => {
                return Err(EditError::CurrentValueInvalid {
                    key: "bwlimit".into(),
                    source,
                })
            }
        };
        Ok(self.set_bwlimit(&cur.with_migration(kib)))
    }

    /// The parsed `max_workers` (an integer ≥ 1), if the key is present.
    pub fn max_workers(&self) -> Option<Result<u32, PropertyError>> {
        self.get("max_workers")
            .map(|v| parse_integer_min("max_workers", v, 1))
    }

    /// Make `max_workers` equal to `n` (compared as parsed values). Refuses 0.
    /// Returns whether the document changed.
    pub fn set_max_workers(&mut self, n: u32) -> Result<bool, EditError> {
        if n == 0 {
            return Err(EditError::InvalidValue {
                key: "max_workers".into(),
                reason: "value must have a minimum value of 1",
            });
        }
        if matches!(self.max_workers(), Some(Ok(cur)) if cur == n) {
            return Ok(false);
        }
        Ok(self.set_canonical("max_workers", &n.to_string()))
    }

    /// The line ending new lines get: that of the first line with one, else `\n`.
    fn eol_style(&self) -> &'static str {
        self.lines
            .iter()
            .map(|l| l.eol)
            .find(|e| !e.is_empty())
            .unwrap_or("\n")
    }

    /// `set` for values we printed ourselves (always valid).
    fn set_canonical(&mut self, key: &str, value: &str) -> bool {
        self.set(key, value).is_ok()
    }

    /// Byte offset of each line's start in [`to_string`](ToString::to_string)'s output.
    pub(crate) fn line_offsets(&self) -> Vec<usize> {
        let mut off = 0;
        self.lines
            .iter()
            .map(|l| {
                let start = off;
                off += l.text.len() + l.eol.len();
                start
            })
            .collect()
    }
}

fn check_key(key: &str) -> Result<(), EditError> {
    let reason = if key.is_empty() {
        "key is empty"
    } else if key.contains(is_perl_space) {
        "key contains whitespace"
    } else if key.contains(':') {
        "key contains ':'"
    } else if key.starts_with('#') {
        "key starts with '#', which makes the line a comment"
    } else {
        return Ok(());
    };
    Err(EditError::InvalidKey {
        key: key.into(),
        reason,
    })
}

impl fmt::Display for DatacenterDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            f.write_str(&l.text)?;
            f.write_str(l.eol)?;
        }
        Ok(())
    }
}

impl FromStr for DatacenterDocument {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatacenterDocument::parse(s))
    }
}
