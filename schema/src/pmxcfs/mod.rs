//! pmxcfs (`/etc/pve`) virtual files and guest config files.
//!
//! - [`Members`]: `/etc/pve/.members`, parsed and rendered in pmxcfs's exact byte layout;
//! - [`VmList`]: `/etc/pve/.vmlist`, parsed and rendered exactly;
//! - name rules: [`is_valid_node_name`], [`parse_guest_path`] (which files pmxcfs indexes as
//!   guest configs);
//! - [`GuestConfig`]: the fields of a guest config's main section the controller needs, plus
//!   [`set_lock`] / [`remove_lock`] / [`GuestConfig::render_minimal`] for the simulator;
//! - lock ids: [`lock_id_for_file`] (`corosync.conf` → `file-corosync_conf`).
//!
//! ## Limitations
//!
//! - Rendered `.members` / `.vmlist` list nodes and guests sorted; pmxcfs uses hash order.
//! - Guest configs are read tolerantly and only for a few keys; no value validation.

// `Diagnostic` is the crate-wide error type; parse errors here are rare and cold, so
// returning it unboxed keeps the API plain.
#![allow(clippy::result_large_err)]

mod guest;
mod json;
mod lock;
mod members;
mod names;
mod vmlist;

pub use guest::{remove_lock, set_lock, GuestConfig, GuestConfigError};
pub use lock::{lock_id_for_file, lock_id_for_storage, lock_path, CFS_LOCK_TIMEOUT_SECS, LOCK_DIR};
pub use members::{ClusterInfo, MemberNode, Members};
pub use names::{is_valid_node_name, parse_guest_path, vmid_from_config_name, GuestRef, GuestType};
pub use vmlist::{VmEntry, VmList};
