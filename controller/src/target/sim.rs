//! The `sim:DIR` target: a simulated cluster laid out like /etc/pve (being written).
