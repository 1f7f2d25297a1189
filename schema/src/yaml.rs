//! YAML with locations.
