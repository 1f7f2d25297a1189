//! The `migration` property: `[type=]<secure|insecure>[,network=<CIDR>]`.

use super::error::PropertyError;
use super::property::{parse_cidr, split_property_string};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How migration traffic is carried (`migration: type=…`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MigrationType {
    /// Tunnelled over ssh (PVE's default).
    #[default]
    Secure,
    /// Plain TCP on the migration network.
    Insecure,
}

impl MigrationType {
    /// `secure` or `insecure`.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationType::Secure => "secure",
            MigrationType::Insecure => "insecure",
        }
    }
}

impl fmt::Display for MigrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MigrationType {
    type Err = PropertyError;

    /// Exactly `secure` or `insecure` (PVE's enum check is case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "secure" => Ok(MigrationType::Secure),
            "insecure" => Ok(MigrationType::Insecure),
            _ => Err(PropertyError::invalid_value(
                "type",
                format!("value '{s}' does not have a value in the enumeration 'secure, insecure'"),
            )),
        }
    }
}

/// The parsed `migration` property of datacenter.cfg.
///
/// All spellings PVE accepts (`secure,network=N`, `type=secure,network=N`,
/// `network=N,type=secure`) parse to the same value; compare these values, never the strings.
/// [`Display`](fmt::Display) prints PVE's canonical form (`secure,network=10.1.2.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Migration {
    /// `type`: required by PVE's schema, even though it has a default.
    #[serde(rename = "type")]
    pub mtype: MigrationType,
    /// `network`: the CIDR migration traffic uses; host bits are kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<IpNet>,
}

impl Migration {
    /// The keys of the format, in PVE's print order.
    pub const KEYS: [&'static str; 2] = ["type", "network"];

    /// A migration setting of type `mtype` on `network`.
    pub fn new(mtype: MigrationType, network: Option<IpNet>) -> Self {
        Migration { mtype, network }
    }

    /// Same type and the same network once host bits are cleared (`10.1.2.5/24` is
    /// equivalent to `10.1.2.0/24`: PVE looks addresses up with `ip address show to <CIDR>`).
    pub fn is_equivalent(&self, other: &Migration) -> bool {
        self.mtype == other.mtype
            && self.network.map(|n| n.trunc()) == other.network.map(|n| n.trunc())
    }
}

impl FromStr for Migration {
    type Err = PropertyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let pairs = split_property_string(s, &Self::KEYS, Some("type"))?;
        let mut mtype = None;
        let mut network = None;
        for (k, v) in pairs {
            match k {
                "type" => mtype = Some(v.parse::<MigrationType>()?),
                _ => {
                    network = Some(parse_cidr(v).ok_or_else(|| {
                        PropertyError::invalid_value(
                            "network",
                            "value does not look like a valid CIDR network",
                        )
                    })?)
                }
            }
        }
        let mtype = mtype.ok_or_else(|| PropertyError::Missing("type".into()))?;
        Ok(Migration { mtype, network })
    }
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mtype.as_str())?;
        if let Some(n) = &self.network {
            write!(f, ",network={n}")?;
        }
        Ok(())
    }
}
