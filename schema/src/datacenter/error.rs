//! Errors of datacenter.cfg property strings and edits.

use thiserror::Error;

/// Why a property string (`migration`, `bwlimit`, …) or a plain typed value could not be read.
///
/// The messages use PVE's wording (`PVE::JSONSchema::parse_property_string` and `check_prop`),
/// so they can be compared with what `pvesh` prints.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PropertyError {
    /// A key appears twice (also: two bare values, or a bare value plus `type=`).
    #[error("duplicate key in comma-separated list property: {0}")]
    DuplicateKey(String),
    /// A key the format does not define.
    #[error("invalid key in comma-separated list property: {0}")]
    InvalidKey(String),
    /// A part with `=` but an empty key or an empty value (`type=`, `=secure`).
    #[error("missing key in comma-separated list property")]
    MissingKey,
    /// A bare value although the format has no default key.
    #[error("value without key, but schema does not define a default key")]
    NoDefaultKey,
    /// A required key is absent (`migration: network=10.1.2.0/24` has no `type`).
    #[error("{0}: property is missing and it is not optional")]
    Missing(String),
    /// A key has a value of the wrong type or out of range.
    #[error("{key}: {message}")]
    InvalidValue {
        /// The offending key (for a plain value such as `max_workers`, the config key).
        key: String,
        /// What is wrong with the value, in PVE's wording where PVE has one.
        message: String,
    },
}

impl PropertyError {
    /// A [`PropertyError::InvalidValue`] for `key`.
    pub fn invalid_value(key: impl Into<String>, message: impl Into<String>) -> Self {
        PropertyError::InvalidValue {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Why [`DatacenterDocument::set`](super::DatacenterDocument::set) refused an edit.
///
/// The document is unchanged when an edit is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    /// The key cannot be written so that it reads back as the same key.
    #[error("invalid datacenter.cfg key {key:?}: {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// Why it cannot be written.
        reason: &'static str,
    },
    /// The value cannot be written so that it reads back as the same value.
    #[error("invalid value for datacenter.cfg key {key:?}: {reason}")]
    InvalidValue {
        /// The key the value was meant for.
        key: String,
        /// Why it cannot be written.
        reason: &'static str,
    },
    /// A typed edit needed the current value, and that value does not parse.
    #[error("cannot edit datacenter.cfg key {key:?}: current value is invalid: {source}")]
    CurrentValueInvalid {
        /// The key being edited.
        key: String,
        /// Why the current value does not parse.
        source: PropertyError,
    },
}
