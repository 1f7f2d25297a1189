//! The `bwlimit` property: `[clone=<KiB/s>][,default=…][,migration=…][,move=…][,restore=…]`.

use super::error::PropertyError;
use super::property::{parse_kib, split_property_string};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The parsed `bwlimit` property of datacenter.cfg; every limit in KiB/s, `None` = unset.
///
/// [`Display`](fmt::Display) prints PVE's canonical form: keys sorted, unset keys left out
/// (`default=100,migration=512000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Bwlimit {
    /// `clone`: limit for cloning disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone: Option<u64>,
    /// `default`: limit for every operation without its own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u64>,
    /// `migration`: limit for guest migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<u64>,
    /// `move`: limit for moving disks.
    #[serde(rename = "move", default, skip_serializing_if = "Option::is_none")]
    pub move_: Option<u64>,
    /// `restore`: limit for restoring backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<u64>,
}

impl Bwlimit {
    /// The keys of the format, sorted (PVE's print order).
    pub const KEYS: [&'static str; 5] = ["clone", "default", "migration", "move", "restore"];

    /// True when no limit is set (the key would print as an empty string).
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }

    /// This value with the `migration` limit replaced and every other limit kept.
    pub fn with_migration(mut self, kib: Option<u64>) -> Self {
        self.migration = kib;
        self
    }

    fn fields(&self) -> [(&'static str, Option<u64>); 5] {
        [
            ("clone", self.clone),
            ("default", self.default),
            ("migration", self.migration),
            ("move", self.move_),
            ("restore", self.restore),
        ]
    }
}

impl FromStr for Bwlimit {
    type Err = PropertyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let pairs = split_property_string(s, &Self::KEYS, None)?;
        let mut b = Bwlimit::default();
        for (k, v) in pairs {
            let n = Some(parse_kib(k, v)?);
            match k {
                "clone" => b.clone = n,
                "default" => b.default = n,
                "migration" => b.migration = n,
                "move" => b.move_ = n,
                _ => b.restore = n,
            }
        }
        Ok(b)
    }
}

impl fmt::Display for Bwlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, v) in self.fields() {
            if let Some(v) = v {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}
