//! oc-mirror v2's ImageSetConfiguration (`apiVersion: mirror.openshift.io/v2alpha1`,
//! `kind: ImageSetConfiguration`), read so that a file users already have for oc-mirror
//! works with `ferry-pack --config`.
//!
//! What this crate must not do: fetch, resolve or pull anything (it reads one file and says
//! what it asks for), or parse references itself (`oci` does).
//!
//! - [`ImageSet::from_file`] reads the whole v2alpha1 schema ([`schema`]), strictly:
//!   unknown fields, a wrong kind or apiVersion, a malformed reference, tag, repository
//!   path or pattern are errors of the form `file:line:col: field.path: what`.
//! - [`ImageSet::validate_for_pull`] returns what ferry pulls today ([`PullSet`]):
//!   `mirror.additionalImages` less `mirror.blockedImages` ([`BlockList`], oc-mirror's
//!   unanchored regular expressions), and `mirror.operators` as [`PullOperator`]s (checked
//!   as far as the file allows; the selection is checked against the catalog by `catalog`).
//!   `platform`, `helm` and `samples` are refused by name ([`ImageSetError::Unsupported`]); oc-mirror settings ferry has no use
//!   for (`archiveSize`) come back as [`Note`]s.
//! - [`Platform`]: the `platforms[]` of an entry and `--platform OS/ARCH[/VARIANT]`.
//!
//! The crate reads files and nothing else: no network, no writes.
#![forbid(unsafe_code)]

mod blocked;
mod error;
mod load;
pub mod locate;
mod platform;
mod pull;
pub mod schema;

pub use blocked::BlockList;
pub use error::ImageSetError;
pub use load::{ImageSet, API_VERSION, KIND, MAX_FILE_BYTES};
pub use oci::reference::DOCKER_HUB;
pub use oci::Reference;
pub use platform::Platform;
pub use pull::{Note, PullImage, PullOperator, PullSet};
pub use schema::{ImageName, ImageNameError};

#[cfg(test)]
mod tests;
