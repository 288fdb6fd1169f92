//! The ferry bundle format, version 1 (`SPEC.md` beside this crate is normative):
//! types, writing, reading and verifying volumes. No network.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod drift;
pub mod error;
pub mod key;
pub mod manifest;
pub mod media;
pub mod order;
pub mod pack;
pub mod plan;
pub mod read;
pub mod receipt;
pub mod room;
pub mod rule;
pub mod size;
pub mod state;
pub mod table;
pub mod verify;
pub mod volume;
pub mod volume_set;

/// The format's digests (SPEC.md §3: `sha256:` and 64 lowercase hex digits; bare hex in
/// tables) are the OCI digests every ferry crate shares. Re-exported so that
/// `ferry_format::digest::Digest` and `ferry_format::Digest` name that one type.
pub use oci::digest;
pub use oci::Digest;

pub use error::{FormatError, Invalid};
pub use rule::Rule;
