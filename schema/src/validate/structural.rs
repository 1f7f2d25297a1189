//! Stage 1: check a located YAML tree against the manifest's JSON Schema.
//!
//! The schema is the one schemars generates from [`crate::spec::Cluster`], so the types stay the
//! single source of truth. Only the keywords schemars emits for our types are interpreted:
//! `$ref`, `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
//! `oneOf`/`anyOf`, `minimum`/`maximum` and integer `format`s. Patterns and lengths are checked
//! by the semantic rules, with better messages.
//!
//! Every problem is collected; the result is a JSON value with scalars coerced to the types the
//! schema asks for (YAML 1.2 core schema), ready for `serde_json::from_value`.

use super::Spans;
use crate::diag::{did_you_mean, Diagnostic, Location};
use crate::yaml::{Node, Value as Y};
use serde_json::{Map, Value as J};
use std::sync::OnceLock;

fn schema() -> &'static J {
    static SCHEMA: OnceLock<J> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(crate::spec::Cluster).to_value())
}

struct Walker<'a> {
    src: &'a str,
    root: &'a J,
    diags: Vec<Diagnostic>,
    spans: Spans,
}

/// Check `doc` (from `src`) against the manifest schema.
///
/// Returns the coerced JSON (None if there were errors), all diagnostics, and the location of
/// every field path seen.
pub fn check(src: &str, doc: &Node) -> (Option<J>, Vec<Diagnostic>, Spans) {
    let root = schema();
    let mut w = Walker {
        src,
        root,
        diags: Vec::new(),
        spans: Spans::default(),
    };
    let v = w.walk(doc, root, "");
    let ok = !w.diags.iter().any(Diagnostic::is_error);
    (if ok { v } else { None }, w.diags, w.spans)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "the document"
    } else {
        path
    }
}

impl<'a> Walker<'a> {
    fn err(
        &mut self,
        node: &Node,
        rule: &'static str,
        path: &str,
        msg: String,
        help: Option<String>,
    ) {
        let mut d = Diagnostic::error(rule, msg)
            .at_path(path)
            .at(Some(Location::from_offset(self.src, node.offset, node.len)));
        d.help = help;
        self.diags.push(d);
    }

    fn resolve(&self, schema: &'a J) -> (&'a J, Option<&'a str>) {
        let mut s = schema;
        let mut name = None;
        for _ in 0..16 {
            match s.get("$ref").and_then(J::as_str) {
                Some(r) => {
                    let def = r.rsplit('/').next().unwrap_or_default();
                    name = Some(def);
                    match self.root.get("$defs").and_then(|d| d.get(def)) {
                        Some(t) => s = t,
                        None => break,
                    }
                }
                None => break,
            }
        }
        (s, name)
    }

    fn walk(&mut self, node: &Node, schema: &'a J, path: &str) -> Option<J> {
        self.spans.insert(path.to_string(), node.offset, node.len);
        let (schema, def) = self.resolve(schema);
        if def == Some("IpNet") {
            return self.ipnet(node, path);
        }
        if let Some(consts) = enum_values(schema) {
            return self.enumerated(node, path, &consts);
        }
        if let Some(alts) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(J::as_array)
        {
            return self.alternatives(node, path, alts);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(J::String(t)) => vec![t.as_str()],
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
            _ => return Some(yaml_to_json(node)),
        };
        if node.is_null() && types.contains(&"null") {
            return Some(J::Null);
        }
        let ty = types
            .iter()
            .copied()
            .find(|t| *t != "null")
            .unwrap_or("null");
        match ty {
            "object" => self.object(node, schema, path),
            "array" => self.array(node, schema, path),
            "string" => self.string(node, schema, path),
            "integer" => self.integer(node, schema, path),
            "boolean" => self.boolean(node, path),
            _ => Some(yaml_to_json(node)),
        }
    }

    fn object(&mut self, node: &Node, schema: &'a J, path: &str) -> Option<J> {
        let Y::Map(entries) = &node.value else {
            self.err(
                node,
                "type",
                path,
                format!(
                    "{} must be a mapping of `key: value` pairs, found {}",
                    shown(path),
                    node.kind_name()
                ),
                None,
            );
            return None;
        };
        let props = schema.get("properties").and_then(J::as_object);
        let closed = schema.get("additionalProperties") == Some(&J::Bool(false));
        let mut out = Map::new();
        let mut failed = false;
        for (k, v) in entries {
            let key = k.as_scalar().unwrap_or_default().to_string();
            let child = join(path, &key);
            if out.contains_key(&key) {
                self.err(
                    k,
                    "duplicate-key",
                    &child,
                    format!("`{key}` is given twice in {}", shown(path)),
                    Some("remove one of them".into()),
                );
                failed = true;
                continue;
            }
            match props.and_then(|p| p.get(&key)) {
                Some(sub) => match self.walk(v, sub, &child) {
                    Some(j) => {
                        out.insert(key, j);
                    }
                    None => failed = true,
                },
                None if closed => {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let help = match did_you_mean(&key, known.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("known fields here: {}", known.join(", ")),
                    };
                    self.err(
                        k,
                        "unknown-field",
                        &child,
                        format!("unknown field `{key}` in {}", shown(path)),
                        Some(help),
                    );
                    failed = true;
                }
                None => {
                    out.insert(key, yaml_to_json(v));
                }
            }
        }
        if let Some(req) = schema.get("required").and_then(J::as_array) {
            for r in req.iter().filter_map(J::as_str) {
                if !out.contains_key(r) && !entries.iter().any(|(k, _)| k.as_scalar() == Some(r)) {
                    self.err(
                        node,
                        "missing-field",
                        &join(path, r),
                        format!("missing required field `{r}` in {}", shown(path)),
                        Some(format!("add `{r}:`")),
                    );
                    failed = true;
                }
            }
        }
        (!failed).then_some(J::Object(out))
    }

    fn array(&mut self, node: &Node, schema: &'a J, path: &str) -> Option<J> {
        let Y::Seq(items) = &node.value else {
            self.err(
                node,
                "type",
                path,
                format!("{} must be a list, found {}", shown(path), node.kind_name()),
                Some("write it as `- item` lines or `[a, b]`".into()),
            );
            return None;
        };
        let item_schema = schema.get("items").unwrap_or(&J::Bool(true));
        let mut out = Vec::with_capacity(items.len());
        let mut failed = false;
        for (i, item) in items.iter().enumerate() {
            match self.walk(item, item_schema, &format!("{path}[{i}]")) {
                Some(j) => out.push(j),
                None => failed = true,
            }
        }
        (!failed).then_some(J::Array(out))
    }

    fn scalar<'n>(&mut self, node: &'n Node, path: &str, want: &str) -> Option<&'n str> {
        match &node.value {
            Y::Scalar { text, .. } if !node.is_null() => Some(text),
            _ => {
                self.err(
                    node,
                    "type",
                    path,
                    format!("{} must be {want}, found {}", shown(path), node.kind_name()),
                    None,
                );
                None
            }
        }
    }

    fn string(&mut self, node: &Node, schema: &J, path: &str) -> Option<J> {
        let text = self.scalar(node, path, "a string")?.to_string();
        if let Some(fmt) = schema.get("format").and_then(J::as_str) {
            if fmt == "cidr" {
                return self.ipnet(node, path);
            }
            let ok = match fmt {
                "ip" => text.parse::<std::net::IpAddr>().is_ok(),
                "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
                "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => true,
            };
            if !ok {
                self.err(
                    node,
                    "type",
                    path,
                    format!("{} must be an IP address, found `{text}`", shown(path)),
                    Some("write an address such as 10.10.20.0 or fd00::1".into()),
                );
                return None;
            }
        }
        Some(J::String(text))
    }

    fn integer(&mut self, node: &Node, schema: &J, path: &str) -> Option<J> {
        let quoted = matches!(node.value, Y::Scalar { quoted: true, .. });
        let text = self.scalar(node, path, "a whole number")?;
        let parsed = if quoted {
            None
        } else {
            text.parse::<i128>().ok()
        };
        let Some(n) = parsed else {
            self.err(
                node,
                "type",
                path,
                format!("{} must be a whole number, found `{text}`", shown(path)),
                None,
            );
            return None;
        };
        let (fmin, fmax) = match schema.get("format").and_then(J::as_str) {
            Some("uint8") => (0, i128::from(u8::MAX)),
            Some("uint16") => (0, i128::from(u16::MAX)),
            Some("uint32") => (0, i128::from(u32::MAX)),
            Some("uint64") => (0, i128::from(u64::MAX)),
            _ => (i128::from(i64::MIN), i128::from(u64::MAX)),
        };
        let min = schema
            .get("minimum")
            .and_then(J::as_i64)
            .map(i128::from)
            .unwrap_or(fmin)
            .max(fmin);
        let max = schema
            .get("maximum")
            .and_then(J::as_u64)
            .map(i128::from)
            .unwrap_or(fmax)
            .min(fmax);
        if n < min || n > max {
            self.err(
                node,
                "range",
                path,
                format!("{} must be between {min} and {max}, found {n}", shown(path)),
                None,
            );
            return None;
        }
        Some(if n < 0 {
            J::from(n as i64)
        } else {
            J::from(n as u64)
        })
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<J> {
        let quoted = matches!(node.value, Y::Scalar { quoted: true, .. });
        let text = self.scalar(node, path, "true or false")?;
        match (quoted, text) {
            (false, "true" | "True" | "TRUE") => Some(J::Bool(true)),
            (false, "false" | "False" | "FALSE") => Some(J::Bool(false)),
            _ => {
                let help = match text {
                    "yes" | "on" | "1" => Some("write `true`".to_string()),
                    "no" | "off" | "0" => Some("write `false`".to_string()),
                    _ => None,
                };
                self.err(
                    node,
                    "type",
                    path,
                    format!("{} must be true or false, found `{text}`", shown(path)),
                    help,
                );
                None
            }
        }
    }

    fn enumerated(&mut self, node: &Node, path: &str, consts: &[String]) -> Option<J> {
        let text = self.scalar(node, path, &format!("one of {}", consts.join(", ")))?;
        if consts.iter().any(|c| c == text) {
            return Some(J::String(text.to_string()));
        }
        let help = did_you_mean(text, consts.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("use one of: {}", consts.join(", ")));
        let msg = format!(
            "{} must be one of {}, found `{text}`",
            shown(path),
            consts.join(", ")
        );
        self.err(node, "invalid-value", path, msg, Some(help));
        None
    }

    fn ipnet(&mut self, node: &Node, path: &str) -> Option<J> {
        let text = self.scalar(node, path, "a network in CIDR notation")?;
        if text.parse::<ipnet::IpNet>().is_ok() {
            return Some(J::String(text.to_string()));
        }
        self.err(
            node,
            "type",
            path,
            format!(
                "{} must be an address with prefix length (CIDR), found `{text}`",
                shown(path)
            ),
            Some("write it as 10.1.2.0/24 or fd00:1::/64".into()),
        );
        None
    }

    fn alternatives(&mut self, node: &Node, path: &str, alts: &'a [J]) -> Option<J> {
        let non_null: Vec<&J> = alts
            .iter()
            .filter(|a| a.get("type").and_then(J::as_str) != Some("null"))
            .collect();
        if node.is_null() && non_null.len() < alts.len() {
            return Some(J::Null);
        }
        let mut first_failure = None;
        for alt in &non_null {
            let mut trial = Walker {
                src: self.src,
                root: self.root,
                diags: Vec::new(),
                spans: Spans::default(),
            };
            let v = trial.walk(node, alt, path);
            if !trial.diags.iter().any(Diagnostic::is_error) {
                self.spans.values.extend(trial.spans.values);
                self.diags.extend(trial.diags);
                return v;
            }
            first_failure.get_or_insert(trial);
        }
        if let Some(t) = first_failure {
            self.spans.values.extend(t.spans.values);
            self.diags.extend(t.diags);
        }
        None
    }
}

/// The allowed string values when `schema` is an enumeration (`enum`, `const`, or a `oneOf` of
/// `const`s, as schemars writes documented unit variants).
fn enum_values(schema: &J) -> Option<Vec<String>> {
    if let Some(e) = schema.get("enum").and_then(J::as_array) {
        return Some(
            e.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    if let Some(c) = schema.get("const").and_then(J::as_str) {
        return Some(vec![c.to_string()]);
    }
    let alts = schema.get("oneOf").and_then(J::as_array)?;
    let mut out = Vec::new();
    for a in alts {
        match (
            a.get("const").and_then(J::as_str),
            a.get("enum").and_then(J::as_array),
        ) {
            (Some(c), _) => out.push(c.to_string()),
            (None, Some(e)) => out.extend(e.iter().filter_map(|v| v.as_str().map(String::from))),
            _ => return None,
        }
    }
    Some(out)
}

/// Untyped conversion (YAML 1.2 core schema) for places the schema leaves open.
fn yaml_to_json(node: &Node) -> J {
    match &node.value {
        Y::Seq(items) => J::Array(items.iter().map(yaml_to_json).collect()),
        Y::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_scalar().unwrap_or_default().to_string(),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        Y::Scalar { text, quoted } => {
            if *quoted {
                return J::String(text.clone());
            }
            if node.is_null() {
                return J::Null;
            }
            match text.as_str() {
                "true" | "True" | "TRUE" => J::Bool(true),
                "false" | "False" | "FALSE" => J::Bool(false),
                _ => text
                    .parse::<i64>()
                    .map(J::from)
                    .unwrap_or_else(|_| J::String(text.clone())),
            }
        }
    }
}
