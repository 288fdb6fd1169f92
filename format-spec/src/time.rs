//! Times as the format records them (`created`, SPEC.md §4): the one conversion is oci's,
//! shared with the pull cache's timestamps.

pub use oci::time::Utc;
