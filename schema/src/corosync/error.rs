//! corosync's exact parser error wording, its typed-key integer checks and the parse error type.

use crate::diag::{Diagnostic, Location};
use std::fmt;

/// Rule name of every syntax error reported by the parser.
pub const RULE_SYNTAX: &str = "corosync-syntax";
/// Rule name of the typed-key value errors (corosync's integer / enum checks).
pub const RULE_VALUE: &str = "corosync-value";

pub(crate) const MISSING_SECTION_NAME: &str = "Missing section name before opening bracket '{'";
pub(crate) const EXTRA_AFTER_OPEN: &str = "Extra characters after opening bracket '{'";
pub(crate) const EMPTY_KEY: &str = "Key name can't be empty";
pub(crate) const EXTRA_AROUND_CLOSE: &str = "Extra characters before or after closing bracket '}'";
pub(crate) const UNEXPECTED_CLOSE: &str = "Unexpected closing brace";
pub(crate) const NOT_SECTION_OR_KEY: &str = "Line is not opening or closing section or key value";
pub(crate) const MISSING_CLOSE: &str = "Missing closing brace";
pub(crate) const LINE_TOO_LONG: &str = "Line too long";
pub(crate) const KEY_PATH_TOO_LONG: &str = "New key makes total cmap path too long";
pub(crate) const SECTION_PATH_TOO_LONG: &str = "Start of section makes total cmap path too long";
pub(crate) const INVALID_IP_VERSION: &str = "Invalid ip_version type";

/// corosync's `ICMAP_KEYNAME_MAXLEN`: a full cmap path must be shorter than this.
pub(crate) const ICMAP_KEYNAME_MAXLEN: usize = 255;

/// The errors of a corosync.conf that does not parse (every error of the file, in file order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// All errors found, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Line starts of a text, to locate many offsets in O(log n) each (same result as
/// [`Location::from_offset`]).
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { src, starts }
    }

    pub fn locate(&self, offset: usize, len: usize) -> Location {
        let offset = offset.min(self.src.len());
        let mut at = offset;
        while at > 0 && !self.src.is_char_boundary(at) {
            at -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= at).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = self.src.get(start..at).map_or(0, |t| t.chars().count()) + 1;
        Location {
            line,
            col,
            offset,
            len,
        }
    }
}

/// The value type corosync enforces at parse time for a cmap path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typed {
    Int { min: i64, max: i64 },
    U64,
    IpVersion,
}

const U8: Typed = Typed::Int { min: 0, max: 255 };
const U16: Typed = Typed::Int { min: 0, max: 65535 };
const U32: Typed = Typed::Int {
    min: 0,
    max: u32::MAX as i64,
};
const I32: Typed = Typed::Int {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};

const TOTEM_U32: &[&str] = &[
    "version",
    "nodeid",
    "threads",
    "token",
    "token_coefficient",
    "token_retransmit",
    "token_warning",
    "hold",
    "token_retransmits_before_loss_const",
    "join",
    "send_join",
    "consensus",
    "merge",
    "downcheck",
    "fail_recv_const",
    "seqno_unchanged_const",
    "heartbeat_failures_allowed",
    "max_network_delay",
    "window_size",
    "max_messages",
    "miss_count_const",
    "knet_pmtud_interval",
    "knet_mtu",
    "knet_compression_threshold",
    "netmtu",
];

fn typed(path: &str) -> Option<Typed> {
    if let Some(key) = path.strip_prefix("totem.interface.") {
        return match key {
            "linknumber" | "ttl" | "knet_link_priority" => Some(U8),
            "mcastport" => Some(U16),
            "knet_ping_interval"
            | "knet_ping_timeout"
            | "knet_ping_precision"
            | "knet_pong_count" => Some(U32),
            _ => None,
        };
    }
    if let Some(key) = path.strip_prefix("totem.") {
        return match key {
            "config_version" => Some(Typed::U64),
            "ip_version" => Some(Typed::IpVersion),
            "knet_compression_level" => Some(I32),
            k if TOTEM_U32.contains(&k) => Some(U32),
            _ => None,
        };
    }
    match path {
        "nodelist.node.nodeid" | "nodelist.node.quorum_votes" => Some(U32),
        "quorum.expected_votes"
        | "quorum.votes"
        | "quorum.last_man_standing_window"
        | "quorum.leaving_timeout" => Some(U32),
        "quorum.two_node"
        | "quorum.expected_votes_tracking"
        | "quorum.allow_downscale"
        | "quorum.wait_for_all"
        | "quorum.auto_tie_breaker"
        | "quorum.last_man_standing" => Some(U8),
        "quorum.device.timeout" | "quorum.device.sync_timeout" | "quorum.device.votes" => Some(U32),
        "quorum.device.master_wins" => Some(U8),
        _ => None,
    }
}

/// `strtoll(value, 10)` consuming the whole value: optional sign, at least one digit.
pub(crate) fn c_integer(value: &str) -> Option<i128> {
    let digits = value
        .strip_prefix('+')
        .or_else(|| value.strip_prefix('-'))
        .unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    value.parse::<i128>().ok()
}

/// Check `value` of cmap `path` like corosync does; `Some(message)` when corosync refuses it.
pub(crate) fn check_typed(path: &str, value: &str) -> Option<String> {
    match typed(path)? {
        Typed::Int { min, max } => match c_integer(value) {
            Some(v) if v >= i128::from(min) && v <= i128::from(max) => None,
            _ => Some(format!(
                "Value of key \"{path}\" is expected to be integer in range ({min}..{max}), but \"{value}\" was given"
            )),
        },
        Typed::U64 => match c_integer(value) {
            Some(v) if v >= 0 && v <= i128::from(u64::MAX) => None,
            _ => Some(format!(
                "Value of key \"{path}\" is expected to be unsigned integer, but \"{value}\" was given"
            )),
        },
        Typed::IpVersion => match value {
            "ipv4" | "ipv6" | "ipv4-6" | "ipv6-4" => None,
            _ => Some(INVALID_IP_VERSION.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_matches_from_offset() {
        let src = "a: 1\r\nbé: 2\n\nc\u{a0}d";
        let idx = LineIndex::new(src);
        for off in 0..=src.len() + 2 {
            assert_eq!(
                idx.locate(off, 1),
                Location::from_offset(src, off, 1),
                "{off}"
            );
        }
    }

    #[test]
    fn integers_follow_strtoll() {
        assert_eq!(c_integer("+5"), Some(5));
        assert_eq!(c_integer("007"), Some(7));
        assert_eq!(c_integer("0x10"), None);
        assert_eq!(c_integer("10 # c"), None);
        assert_eq!(c_integer(""), None);
        assert_eq!(c_integer("-"), None);
    }

    #[test]
    fn typed_keys() {
        assert!(check_typed("totem.token", "3000").is_none());
        assert!(check_typed("totem.interface.linknumber", "256").is_some());
        assert!(check_typed("totem.config_version", "-1").is_some());
        assert!(check_typed("totem.cluster_name", "x y").is_none());
        assert_eq!(
            check_typed("totem.ip_version", "ipv5").as_deref(),
            Some(INVALID_IP_VERSION)
        );
    }
}
