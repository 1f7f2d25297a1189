//! pmxcfs virtual files and guest configs (filled in shortly).
