//! [`DatacenterView`]: the typed reading of a datacenter.cfg, and its diagnostics.

use super::bwlimit::Bwlimit;
use super::document::DatacenterDocument;
use super::line::LineKind;
use super::migration::{Migration, MigrationType};
use super::property::{parse_bool, parse_integer_min};
use crate::diag::{did_you_mean, Diagnostic, Location};
use serde::Serialize;
use std::collections::BTreeMap;

/// The path PVE names in its datacenter.cfg warnings.
pub const DATACENTER_CFG_PATH: &str = "/etc/pve/datacenter.cfg";

/// The keys of PVE's datacenter.cfg schema (`PVE::DataCenterConfig`), sorted.
pub const KNOWN_KEYS: &[&str] = &[
    "bwlimit",
    "consent-text",
    "console",
    "crs",
    "description",
    "email_from",
    "fencing",
    "ha",
    "http_proxy",
    "keyboard",
    "language",
    "mac_prefix",
    "max_workers",
    "migration",
    "migration_unsecure",
    "next-id",
    "notify",
    "registered-tags",
    "replication",
    "tag-style",
    "u2f",
    "user-tag-access",
    "webauthn",
];

/// The typed reading of datacenter.cfg, as PVE would see it.
///
/// Invalid `migration`, `bwlimit`, `max_workers` and `migration_unsecure` values are left out
/// (PVE drops them with a warning; see [`DatacenterDocument::diagnostics`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DatacenterView {
    /// The effective migration setting: `migration`, else the type implied by the deprecated
    /// `migration_unsecure` (with no network), else `None` (PVE then uses `secure`).
    pub migration: Option<Migration>,
    /// `bwlimit`.
    pub bwlimit: Option<Bwlimit>,
    /// `max_workers`.
    pub max_workers: Option<u32>,
    /// Every other key (known or not) with its raw value, last occurrence winning.
    /// `migration_unsecure` is not included: it is folded into [`migration`](Self::migration).
    pub other: BTreeMap<String, String>,
}

impl DatacenterDocument {
    /// The typed view of this document (invalid typed values left out).
    pub fn view(&self) -> DatacenterView {
        self.analyse().0
    }

    /// Every warning PVE would print when reading this document, plus ours:
    ///
    /// - `datacenter-ignored-line`: `ignore config line: <line>` for lines that are neither
    ///   blank, comment nor `key: value`;
    /// - `datacenter-unknown-key`: a key not in PVE's schema (PVE drops it);
    /// - `datacenter-duplicate-key`: a key given twice (the last one wins);
    /// - `datacenter-invalid-value`: `parse error in '/etc/pve/datacenter.cfg' - '<key>': <msg>`
    ///   for `migration`, `bwlimit`, `max_workers`, `migration_unsecure` (PVE drops the key);
    /// - `datacenter-deprecated-key`: `migration_unsecure` is used, and PVE's message when it
    ///   is set together with `migration`.
    ///
    /// All are warnings; locations are byte offsets into the current text.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.analyse().1
    }

    fn analyse(&self) -> (DatacenterView, Vec<Diagnostic>) {
        let text = self.to_string();
        let offsets = self.line_offsets();
        let mut diags = Vec::new();
        let mut view = DatacenterView::default();
        // Index of the line holding the effective (last) value of each key.
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let base = offsets.get(i).copied().unwrap_or(0);
            match &line.kind {
                LineKind::Other => {
                    let (start, trimmed) = line.trimmed();
                    diags.push(
                        Diagnostic::warning(
                            "datacenter-ignored-line",
                            format!("ignore config line: {trimmed}"),
                        )
                        .at(Some(Location::from_offset(
                            &text,
                            base + start,
                            trimmed.len(),
                        )))
                        .with_help("PVE skips lines that are not `key: value` or `# comment`"),
                    );
                }
                LineKind::Entry { key, .. } => {
                    let k = line.text.get(key.clone()).unwrap_or("");
                    let loc = Location::from_offset(&text, base + key.start, key.len());
                    if let Some(prev) = last.insert(k, i) {
                        let prev_line = offsets
                            .get(prev)
                            .map(|o| Location::from_offset(&text, *o, 0).line.to_string());
                        diags.push(
                            Diagnostic::warning(
                                "datacenter-duplicate-key",
                                format!(
                                    "duplicate key '{k}' (also on line {}): the last one wins",
                                    prev_line.unwrap_or_default()
                                ),
                            )
                            .at(Some(loc))
                            .at_path(k),
                        );
                    }
                    if !KNOWN_KEYS.contains(&k) {
                        let mut d = Diagnostic::warning(
                            "datacenter-unknown-key",
                            format!(
                                "parse error in '{DATACENTER_CFG_PATH}' - '{k}': property is not \
                                 defined in schema and the schema does not allow additional \
                                 properties"
                            ),
                        )
                        .at(Some(loc))
                        .at_path(k);
                        if let Some(s) = did_you_mean(k, KNOWN_KEYS.iter().copied()) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        diags.push(d);
                    }
                }
                LineKind::Blank | LineKind::Comment => {}
            }
        }
        let invalid = |key: &str, msg: String| -> Diagnostic {
            let loc = last.get(key).and_then(|&i| {
                let line = self.lines.get(i)?;
                let LineKind::Entry { value, .. } = &line.kind else {
                    return None;
                };
                let base = offsets.get(i)?;
                Some(Location::from_offset(
                    &text,
                    base + value.start,
                    value.len(),
                ))
            });
            Diagnostic::warning(
                "datacenter-invalid-value",
                format!("parse error in '{DATACENTER_CFG_PATH}' - '{key}': {msg}"),
            )
            .at(loc)
            .at_path(key)
            .with_help("PVE ignores this key while the value is invalid")
        };
        for (k, v) in &last {
            let Some(v) = self.lines.get(*v).and_then(|l| l.value()) else {
                continue;
            };
            match *k {
                "migration" => match v.parse::<Migration>() {
                    Ok(m) => view.migration = Some(m),
                    Err(e) => diags.push(invalid(k, e.to_string())),
                },
                "bwlimit" => match v.parse::<Bwlimit>() {
                    Ok(b) => view.bwlimit = Some(b),
                    Err(e) => diags.push(invalid(k, e.to_string())),
                },
                "max_workers" => match parse_integer_min(k, v, 1) {
                    Ok(n) => view.max_workers = Some(n),
                    Err(e) => diags.push(invalid(k, strip_key(k, e.to_string()))),
                },
                "migration_unsecure" => {}
                _ => {
                    view.other.insert((*k).to_string(), v.to_string());
                }
            }
        }
        if let Some(v) = self.get("migration_unsecure") {
            let loc = last.get("migration_unsecure").and_then(|&i| {
                let line = self.lines.get(i)?;
                let LineKind::Entry { key, .. } = &line.kind else {
                    return None;
                };
                Some(Location::from_offset(
                    &text,
                    offsets.get(i)? + key.start,
                    key.len(),
                ))
            });
            match parse_bool("migration_unsecure", v) {
                Err(e) => diags.push(invalid(
                    "migration_unsecure",
                    strip_key("migration_unsecure", e.to_string()),
                )),
                Ok(_) if view.migration.is_some() => diags.push(
                    Diagnostic::warning(
                        "datacenter-deprecated-key",
                        "deprecated setting 'migration_unsecure' and new 'migration: type' set \
                         at same time! Ignore 'migration_unsecure'",
                    )
                    .at(loc)
                    .at_path("migration_unsecure")
                    .with_help("remove `migration_unsecure`"),
                ),
                Ok(unsecure) => {
                    let mtype = if unsecure {
                        MigrationType::Insecure
                    } else {
                        MigrationType::Secure
                    };
                    view.migration = Some(Migration::new(mtype, None));
                    diags.push(
                        Diagnostic::warning(
                            "datacenter-deprecated-key",
                            "'migration_unsecure' is deprecated",
                        )
                        .at(loc)
                        .at_path("migration_unsecure")
                        .with_help(format!("use `migration: {mtype}` instead")),
                    );
                }
            }
        }
        diags.sort_by_key(|d| d.location.map(|l| l.offset).unwrap_or(usize::MAX));
        (view, diags)
    }
}

/// `max_workers: value must …` → `value must …` (PVE prints the key once, in the prefix).
fn strip_key(key: &str, msg: String) -> String {
    msg.strip_prefix(&format!("{key}: "))
        .map(str::to_string)
        .unwrap_or(msg)
}
