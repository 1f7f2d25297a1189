//! datacenter.cfg (`/etc/pve/datacenter.cfg`) as a lossless, editable document, and the
//! property strings pve-gitops manages in it.
//!
//! - [`DatacenterDocument`]: the file as lines, printed back byte for byte; per-key
//!   [`get`](DatacenterDocument::get), [`set`](DatacenterDocument::set) and
//!   [`remove`](DatacenterDocument::remove) that leave every other line alone.
//! - [`Migration`], [`Bwlimit`]: typed property strings, parsed with PVE's rules and
//!   error wording; compare them as values, never as strings.
//! - [`DatacenterView`]: the typed reading PVE would make of the file
//!   ([`DatacenterDocument::view`]), with PVE's warnings ([`DatacenterDocument::diagnostics`]).
//!
//! ## Limitations
//!
//! - Only `migration`, `bwlimit`, `max_workers` and `migration_unsecure` are checked; other
//!   keys are kept as raw strings.
//! - `bwlimit` limits are whole KiB/s; PVE also accepts fractions.
//! - Comments are not decoded (PVE URI-decodes them into `description`).

mod bwlimit;
mod document;
mod error;
mod line;
mod migration;
mod property;
mod view;

pub use bwlimit::Bwlimit;
pub use document::DatacenterDocument;
pub use error::{EditError, PropertyError};
pub use migration::{Migration, MigrationType};
pub use view::{DatacenterView, DATACENTER_CFG_PATH, KNOWN_KEYS};
