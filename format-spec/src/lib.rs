//! The ferry bundle format, version 1 (`SPEC.md` beside this crate is normative):
//! types, writing, reading and verifying volumes. No network.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod digest;
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

pub use digest::Digest;
pub use error::{FormatError, Invalid};
pub use rule::Rule;
