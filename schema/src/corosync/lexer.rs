//! Line splitting and classification exactly like corosync's `coroparse.c` `parse_section()`.

/// Longest line content corosync accepts (`fgets` into a 512-byte buffer, minus `\n` and NUL).
pub(crate) const MAX_LINE_BYTES: usize = 510;

/// corosync's whitespace: space, tab and NBSP (U+00A0 here, byte 0xA0 in corosync).
pub(crate) fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{a0}')
}

/// One physical line: `content` without the line ending, `eol` = the stripped `\n`, `\r\n`,
/// `\r` (only at EOF) or nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawLine<'a> {
    /// Byte offset of the line start in the source.
    pub start: usize,
    /// The line without its ending.
    pub content: &'a str,
    /// The line ending.
    pub eol: &'a str,
}

impl RawLine<'_> {
    /// The bytes `fgets` sees before the `\n`.
    pub fn fgets_len(&self) -> usize {
        self.content.len() + self.eol.len() - usize::from(self.eol.ends_with('\n'))
    }
}

/// Split `src` into lines: one `\n` stripped, then one `\r`.
pub(crate) fn split_lines(src: &str) -> Vec<RawLine<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in src.split_inclusive('\n') {
        let body = piece.strip_suffix('\n').unwrap_or(piece);
        let body = body.strip_suffix('\r').unwrap_or(body);
        out.push(RawLine {
            start,
            content: body,
            eol: &piece[body.len()..],
        });
        start += piece.len();
    }
    out
}

/// The parts of a `key: value` line (all slices of the line content, concatenating to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyValue<'a> {
    pub indent: &'a str,
    pub key: &'a str,
    pub pre_colon: &'a str,
    pub post_colon: &'a str,
    pub value: &'a str,
    pub trailing: &'a str,
}

/// What a line is, in corosync's order of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind<'a> {
    /// Blank line or whole-line comment.
    Decor,
    /// `name {`; `name_at` is the byte offset of the name (or of `{` when the name is empty),
    /// `extra_at` the offset of characters after `{`.
    Open {
        indent: &'a str,
        name: &'a str,
        name_at: usize,
        brace_at: usize,
        extra_at: Option<usize>,
    },
    /// `key: value`; `colon_at` is the byte offset of the colon.
    KeyValue { kv: KeyValue<'a>, colon_at: usize },
    /// A line containing `}`; `exact` when it is just `}` (plus whitespace).
    Close { at: usize, exact: bool },
    /// Anything else.
    Invalid { at: usize },
}

/// Trim like corosync's `remove_whitespace(s, 1)` after leading whitespace was skipped:
/// trailing whitespace, `:` and `{` go, but never the first character.
fn trim_name(s: &str) -> &str {
    let Some(first) = s.chars().next() else {
        return s;
    };
    let rest = s[first.len_utf8()..].trim_end_matches(|c| is_ws(c) || c == ':' || c == '{');
    &s[..first.len_utf8() + rest.len()]
}

/// Classify one line's content (without its ending).
pub(crate) fn classify(content: &str) -> LineKind<'_> {
    let text = content.trim_end_matches(is_ws);
    let trailing = &content[text.len()..];
    let body = text.trim_start_matches(is_ws);
    let indent = &text[..text.len() - body.len()];
    if body.is_empty() || body.starts_with('#') {
        return LineKind::Decor;
    }
    if let Some(brace) = text.find('{') {
        let left = text[..brace].trim_start_matches(is_ws);
        let name = trim_name(left);
        let after = text[brace + 1..].trim_start_matches(is_ws);
        return LineKind::Open {
            indent,
            name,
            name_at: if name.is_empty() { brace } else { indent.len() },
            brace_at: brace,
            extra_at: (!after.is_empty()).then(|| text.len() - after.len()),
        };
    }
    if let Some(colon) = text.find(':') {
        let left = &text[indent.len()..colon];
        let key = left.trim_end_matches(is_ws);
        let right = &text[colon + 1..];
        let value = right.trim_start_matches(is_ws);
        return LineKind::KeyValue {
            kv: KeyValue {
                indent,
                key,
                pre_colon: &left[key.len()..],
                post_colon: &right[..right.len() - value.len()],
                value,
                trailing,
            },
            colon_at: colon,
        };
    }
    if text.contains('}') {
        return LineKind::Close {
            at: indent.len(),
            exact: body == "}",
        };
    }
    LineKind::Invalid { at: indent.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_endings() {
        let lines = split_lines("a\r\nb\nc\r");
        let eols: Vec<_> = lines.iter().map(|l| l.eol).collect();
        assert_eq!(eols, ["\r\n", "\n", "\r"]);
        assert_eq!(lines[2].content, "c");
        assert_eq!(lines[2].start, 5);
    }

    #[test]
    fn section_name_quirks() {
        for (line, name) in [
            ("totem {", "totem"),
            ("totem{", "totem"),
            ("totem: {", "totem"),
            (" totem :{ ", "totem"),
            (": {", ":"),
        ] {
            match classify(line) {
                LineKind::Open { name: n, .. } => assert_eq!(n, name, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn values_keep_hash_and_colons() {
        match classify("  k :: v # c \t") {
            LineKind::KeyValue { kv, .. } => {
                assert_eq!((kv.key, kv.value, kv.trailing), ("k", ": v # c", " \t"));
                assert_eq!(kv.pre_colon, " ");
            }
            other => panic!("{other:?}"),
        }
    }
}
