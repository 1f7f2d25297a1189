//! pve-gitops: a GitOps controller for Proxmox VE and corosync clusters.
//!
//! Data flow of one reconcile (DESIGN.md §2): a target ([`target::Target`]) observes the live
//! cluster into [`observed::Observed`] (pure data); [`plan::plan`] diffs the desired
//! `Cluster` manifest against it and returns an ordered, quorum-checked [`plan::Plan`] (pure,
//! deterministic, no I/O); the plan is rendered for `--dry-run` or applied step by step,
//! re-observing before each step so that a step whose effect is present is skipped.

pub mod cfs_lock;
pub mod configfs;
pub mod daemon;
pub mod metrics;
pub mod observed;
pub mod plan;
pub mod process;
pub mod reconcile;
pub mod render;
pub mod source;
pub mod status;
pub mod target;
pub mod webhook;
