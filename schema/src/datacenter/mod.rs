//! datacenter.cfg as a lossless document (filled in shortly).
