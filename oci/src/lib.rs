//! The names and documents of the container-image world, once for every ferry crate:
//! sha256 [`Digest`]s, image [`Reference`]s with Docker Hub's defaults, the repository,
//! tag and host grammars of the distribution spec ([`name`]), media types, and the
//! manifest, index and descriptor types with the rule that tells a manifest's kind from
//! its bytes ([`manifest`]), the `--platform` matcher ([`platform`]), the annotation keys
//! ferry reads and writes ([`annotation`]), and UTC times from epoch seconds ([`time`]).
//!
//! The grammars follow, and their tests quote, the OCI distribution-spec (`spec.md`),
//! the OCI image-spec (`descriptor.md`, `manifest.md`, `image-index.md`),
//! distribution/reference (`reference.go`, `normalize.go`, `regexp.go`) and
//! containers/image (`GuessMIMEType`, the platform matcher); each module says where it
//! departs from them and why.
//!
//! What this crate must not do: touch the network or the file system (it parses strings
//! and bytes handed to it, and hashes what it is fed), depend on another ferry crate (it is
//! the ground floor they all stand on), or hold ferry's own bundle format (that is the
//! format crate's). It re-encodes nothing that is hashed: a manifest's digest is always
//! taken over the bytes as they came.

#![forbid(unsafe_code)]

pub mod annotation;
pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod platform;
pub mod reference;
pub mod time;

pub use digest::{Digest, DigestError, Sha256};
pub use manifest::{
    Descriptor, ImageManifest, Index, Manifest, ManifestError, ManifestKind, Platform,
};
pub use name::{NameError, NameKind, Problem};
pub use platform::{PlatformError, PlatformSpec};
pub use reference::{Reference, ReferenceError, TagOrDigest, TagOrDigestError, Written};
