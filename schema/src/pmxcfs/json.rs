//! Small helpers to read pmxcfs JSON with located errors.

use crate::diag::{Diagnostic, Location};
use serde_json::{Map, Value};

/// Parse `src` as a JSON object, or a located `rule` error.
pub(crate) fn parse_object(
    src: &str,
    rule: &'static str,
    file: &str,
) -> Result<Map<String, Value>, Diagnostic> {
    match serde_json::from_str::<Value>(src) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(
            Diagnostic::error(rule, format!("{file} is not a JSON object"))
                .at(Some(Location::from_offset(src, 0, 0))),
        ),
        Err(e) => Err(
            Diagnostic::error(rule, format!("{file} is not valid JSON: {e}"))
                .at(Some(location_of(src, e.line(), e.column()))),
        ),
    }
}

/// serde_json's 1-based line and column → a [`Location`].
fn location_of(src: &str, line: usize, col: usize) -> Location {
    let line_start: usize = src
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let mut off = line_start + col.saturating_sub(1);
    while off > src.len() || !src.is_char_boundary(off.min(src.len())) {
        off = off.saturating_sub(1);
        if off == 0 {
            break;
        }
    }
    Location::from_offset(src, off.min(src.len()), 0)
}

/// A `rule` error about `path` in `file`.
pub(crate) fn shape(rule: &'static str, file: &str, path: &str, what: &str) -> Diagnostic {
    Diagnostic::error(rule, format!("{file}: {path} {what}")).at_path(path)
}

/// A non-negative integer field.
pub(crate) fn get_u64(
    m: &Map<String, Value>,
    key: &str,
    rule: &'static str,
    file: &str,
    path: &str,
) -> Result<u64, Diagnostic> {
    m.get(key)
        .ok_or_else(|| shape(rule, file, &format!("{path}{key}"), "is missing"))?
        .as_u64()
        .ok_or_else(|| {
            shape(
                rule,
                file,
                &format!("{path}{key}"),
                "is not a non-negative integer",
            )
        })
}

/// A string field.
pub(crate) fn get_str(
    m: &Map<String, Value>,
    key: &str,
    rule: &'static str,
    file: &str,
    path: &str,
) -> Result<String, Diagnostic> {
    m.get(key)
        .ok_or_else(|| shape(rule, file, &format!("{path}{key}"), "is missing"))?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| shape(rule, file, &format!("{path}{key}"), "is not a string"))
}

/// A 0/1 (or boolean) flag field.
pub(crate) fn get_flag(
    m: &Map<String, Value>,
    key: &str,
    rule: &'static str,
    file: &str,
    path: &str,
) -> Result<bool, Diagnostic> {
    match m.get(key) {
        None => Err(shape(rule, file, &format!("{path}{key}"), "is missing")),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => match v.as_u64() {
            Some(n) => Ok(n != 0),
            None => Err(shape(rule, file, &format!("{path}{key}"), "is not 0 or 1")),
        },
    }
}

/// A JSON string literal for `s` (plain names print as `"name"`, as pmxcfs does).
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
