//! corosync.conf as a lossless document (owned by the corosync helper; filled in shortly).
