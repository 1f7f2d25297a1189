//! Manifest validation.
