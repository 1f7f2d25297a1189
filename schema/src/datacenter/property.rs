//! PVE property strings (`[type=]secure,network=10.1.2.0/24`): splitting and value checks
//! shared by the typed properties.

use super::error::PropertyError;
use ipnet::IpNet;
use std::net::IpAddr;

/// Perl's `\s` on a byte string: space, `\t`, `\n`, `\r`, vertical tab, form feed.
pub(crate) fn is_perl_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Split `s` like `PVE::JSONSchema::parse_property_string` into `(key, value)` pairs.
///
/// `keys` are the keys the format defines; `default_key` receives parts without `=`.
/// Whitespace-only parts are skipped; nothing is trimmed. Pairs come back in input order,
/// keys borrowed from `keys`.
pub(crate) fn split_property_string<'k, 's>(
    s: &'s str,
    keys: &[&'k str],
    default_key: Option<&'k str>,
) -> Result<Vec<(&'k str, &'s str)>, PropertyError> {
    let mut out: Vec<(&'k str, &'s str)> = Vec::new();
    for part in s.split(',') {
        if part.chars().all(is_perl_space) {
            continue;
        }
        if let Some((k, v)) = part.split_once('=') {
            if k.is_empty() || v.is_empty() {
                return Err(PropertyError::MissingKey);
            }
            if out.iter().any(|(have, _)| *have == k) {
                return Err(PropertyError::DuplicateKey(k.to_string()));
            }
            let Some(key) = keys.iter().find(|known| **known == k) else {
                return Err(PropertyError::InvalidKey(k.to_string()));
            };
            out.push((key, v));
        } else {
            let Some(dk) = default_key else {
                return Err(PropertyError::NoDefaultKey);
            };
            if out.iter().any(|(have, _)| *have == dk) {
                return Err(PropertyError::DuplicateKey(dk.to_string()));
            }
            out.push((dk, part));
        }
    }
    Ok(out)
}

/// Parse a CIDR the way `PVE::JSONSchema::pve_verify_cidr` accepts it: an IPv4 address with
/// prefix 8..=32 or an IPv6 address with prefix 8..=128. Host bits are kept as given.
pub(crate) fn parse_cidr(s: &str) -> Option<IpNet> {
    let (addr, prefix) = s.split_once('/')?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = prefix.trim_start_matches('0');
    let prefix: u8 = if digits.is_empty() {
        0
    } else if digits.len() > 3 {
        return None;
    } else {
        digits.parse().ok()?
    };
    if prefix < 8 {
        return None;
    }
    let addr: IpAddr = addr.parse().ok()?;
    IpNet::new(addr, prefix).ok()
}

/// Parse a non-negative whole number of KiB/s (`bwlimit` parts), as PVE's `number` type with
/// `minimum => 0` would accept it, refusing fractions.
pub(crate) fn parse_kib(key: &str, v: &str) -> Result<u64, PropertyError> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse()
            .map_err(|_| PropertyError::invalid_value(key, format!("value '{v}' is too large")));
    }
    let numeric = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    let Some(f) = numeric.then(|| v.parse::<f64>().ok()).flatten() else {
        return Err(PropertyError::invalid_value(
            key,
            format!("type check ('number') failed - got '{v}'"),
        ));
    };
    if f < 0.0 {
        return Err(PropertyError::invalid_value(
            key,
            "value must have a minimum value of 0",
        ));
    }
    if f.fract() != 0.0 || !f.is_finite() || f >= u64::MAX as f64 {
        return Err(PropertyError::invalid_value(
            key,
            format!("value '{v}' is not a whole number of KiB/s (not supported by pve-gitops)"),
        ));
    }
    Ok(f as u64)
}

/// Parse a PVE `integer` with a minimum (`max_workers`: minimum 1).
pub(crate) fn parse_integer_min(key: &str, v: &str, min: u32) -> Result<u32, PropertyError> {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PropertyError::invalid_value(
            key,
            format!("type check ('integer') failed - got '{v}'"),
        ));
    }
    let below = v.starts_with('-') && digits.bytes().any(|b| b != b'0');
    let n: Option<u32> = if below { None } else { digits.parse().ok() };
    match n {
        Some(n) if n >= min => Ok(n),
        Some(_) => Err(PropertyError::invalid_value(
            key,
            format!("value must have a minimum value of {min}"),
        )),
        None if below => Err(PropertyError::invalid_value(
            key,
            format!("value must have a minimum value of {min}"),
        )),
        None => Err(PropertyError::invalid_value(
            key,
            format!("value '{v}' is too large"),
        )),
    }
}

/// Parse a PVE `boolean` (`1|on|yes|true`, `0|off|no|false`, case-insensitive).
pub(crate) fn parse_bool(key: &str, v: &str) -> Result<bool, PropertyError> {
    let l = v.to_ascii_lowercase();
    match l.as_str() {
        "1" | "on" | "yes" | "true" => Ok(true),
        "0" | "off" | "no" | "false" => Ok(false),
        _ => Err(PropertyError::invalid_value(
            key,
            format!("type check ('boolean') failed - got '{v}'"),
        )),
    }
}
