//! The planner: `plan(&Cluster, &Observed) -> Plan`, pure and deterministic.

pub mod quorum;
pub mod step;
