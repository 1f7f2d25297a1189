//! Pure types for pve-gitops.
//!
//! This crate holds everything that does not touch the outside world:
//!
//! - [`spec`]: the `Cluster` manifest (`pve-gitops.io/v1alpha1`), its serde types and JSON Schema;
//! - [`validate`]: every rule of SPEC.md "Validation", reporting all problems at once with
//!   `file:line:col` and the field path;
//! - [`corosync`]: corosync.conf as a lossless, editable document (parse like corosync's
//!   `coroparse.c`, print byte-identical, edit keeping comments and indentation);
//! - [`datacenter`]: datacenter.cfg as a lossless, editable document and its property strings;
//! - [`pmxcfs`]: the pmxcfs virtual files (`.members`, `.vmlist`) and guest config files;
//! - [`diag`]: the located diagnostics every parser and validator here reports.
//!
//! No tokio, no git2, no notify, no process spawning: I/O lives in the `pve-gitops` crate.
//!
//! ## Limitations
//!
//! - corosync.conf is parsed with corosync's grammar. Values that Proxmox's tokenizer cannot
//!   read (spaces, `#`, braces) are kept when parsing but refused by the Proxmox writer check.
//! - Spans are byte offsets into the original text; an edited document reports no spans.

pub mod corosync;
pub mod datacenter;
pub mod diag;
pub mod pmxcfs;
pub mod spec;
pub mod validate;
pub mod yaml;
