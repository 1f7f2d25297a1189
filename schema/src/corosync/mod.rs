//! corosync.conf as a lossless, editable document, parsed exactly like corosync's `coroparse.c`.
//!
//! ```
//! use pve_gitops_schema::corosync::Document;
//!
//! let src = "totem {\n\tcluster_name: prod # not a comment\n\tconfig_version: 3\n}\n";
//! let mut doc = Document::parse(src).unwrap();
//! assert_eq!(doc.to_string(), src);
//! assert_eq!(doc.get(&["totem"], "cluster_name"), Some("prod # not a comment"));
//! assert_eq!(doc.bump_config_version(), 4);
//! assert!(doc.to_string().contains("\tconfig_version: 4\n"));
//! ```
//!
//! ## Limitations
//!
//! - Input is `&str`: a file that is not valid UTF-8 must be rejected (or lossily converted) by
//!   the caller. NBSP is the character U+00A0 here (corosync strips the single byte 0xA0).
//! - `totem.config_version` with a leading `-` is refused; C's `strtoull` would wrap it.
//! - Enum checks that depend on how corosync was built (`crypto_cipher`, `crypto_hash`,
//!   `knet_compression_model`, `system.*`) and all `totemconfig.c` checks done at startup
//!   (nodeid required for knet, link counts, ...) are not parse errors; see
//!   [`Document::verify`].
//! - A second `nodelist` section is appended to the node list in the typed view; corosync
//!   renumbers its nodes from 0 and so overwrites the first section's nodes.
//! - Diagnostics are located by re-printing the document, so they are right for edited
//!   documents too, but they point into the current text, not the originally parsed one.
//! - Section names and keys cannot be renamed in place; remove and add instead.

mod check;
mod create;
mod derived;
mod document;
mod edit;
mod error;
mod lexer;
mod parser;
mod view;

pub use check::{RULE_PVE_UNREADABLE, RULE_VERIFY};
pub use create::{Corosync2Options, PveClusterOptions};
pub use document::{Document, Entry, Item, Section};
pub use edit::NodeEntry;
pub use error::{ParseError, RULE_SYNTAX, RULE_VALUE};
pub use parser::DEFAULT_FILE_NAME;
pub use view::{
    ConfShape, CorosyncConf, Interface, LinkNumberKey, Node, QdeviceNet, Quorum, QuorumDevice,
    Totem,
};
