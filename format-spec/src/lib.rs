//! The ferry bundle format, versions 1 and 2 (`SPEC.md` beside this crate is normative):
//! types, writing, reading and verifying volumes.
//!
//! What this crate must not do: touch the network, print, or read a byte of a volume it
//! has not checked against a signature (SPEC.md §2); names and digests come from `oci`,
//! files are written through `durable-file`.
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
pub mod time;
pub mod verify;
pub mod volume;
pub mod volume_set;

/// The format's digests (SPEC.md §3: `sha256:` and 64 lowercase hex digits; bare hex in
/// tables) are the OCI digests every ferry crate shares. Re-exported so that
/// `format_spec::digest::Digest` and `format_spec::Digest` name that one type.
pub use oci::digest;
pub use oci::Digest;

pub use error::{FormatError, Invalid};
pub use rule::Rule;
