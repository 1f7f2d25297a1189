//! The Cluster manifest types.
