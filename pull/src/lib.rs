//! The connected side: turns an image set ([`imageset::PullSet`]) into images by digest
//! ([`plan`]), fills an OCI-layout [`Cache`] with them ([`fetch`]), and removes what a set
//! no longer needs ([`prune`]). `ferry-pack pull` and `ferry-pack --config` are thin glue
//! over these; `ferry-pack` then packs the set's images from the cache through `mirror`.
//!
//! What this crate must not do: know bundles or volumes, print (it reports through an
//! [`Event`] callback and returns reports), or let a credential reach an event, an error or
//! a host it was not meant for (credentials are looked up per endpoint: a mirror never
//! gets the source's).
//!
//! Operator catalogs (`mirror.operators`, issue 12) are planned by `operators.rs`: each
//! catalog image resolved, read, selected and rebuilt, its bundle and related images
//! resolved as `additionalImages` are; [`list_catalog`] reads one for `catalog list`.
#![forbid(unsafe_code)]

pub mod cache;
mod error;
pub mod event;
mod fetch;
mod operators;
mod options;
mod plan;
mod prune;
mod resolve;
mod sources;

pub use cache::{Cache, CachedImage, PruneReport};
pub use error::{CacheError, Field, PullError};
pub use event::Event;
pub use operators::{list_catalog, CatalogPlan, DroppedBundle, Listed};
pub use options::Options;
pub use plan::{fetch, plan, prune, Failure, Plan, Report, ResolvedImage};
