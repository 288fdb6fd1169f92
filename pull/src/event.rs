//! What a pull tells its caller as it goes (the binary turns these into progress bars,
//! lines, or the JSON Lines events of `docs/events.md`). Never a credential.

use std::time::Duration;

use crate::operators::CatalogPlan;
use crate::plan::{Failure, ResolvedImage};

#[derive(Debug)]
pub enum Event<'a> {
    /// An image's manifests are resolved (tag → digest, children chosen).
    Resolved(&'a ResolvedImage),
    /// This many more bytes of blobs written to the cache (for bars and rates; bytes of a
    /// resumed partial are not counted again).
    Bytes(u64),
    /// A request failed transiently and is tried again after `wait`: told before the
    /// wait, from another thread than the request's while resolving or fetching (the
    /// registry client's own retries), or a download that broke off and is resumed.
    Retry {
        /// What was being fetched: `registry.redhat.io/ubi8/ubi@sha256:…` or a blob.
        what: String,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
        wait: Duration,
        error: String,
    },
    /// Every blob of the image is in the cache and it is recorded in `index.json`.
    Pulled(&'a ResolvedImage),
    /// The image could not be resolved or pulled.
    Failed(&'a Failure),
    /// An operator catalog was read and its selection made (told before the rebuilt
    /// catalog's own [`Event::Resolved`]): what is kept, the warnings, the dependency
    /// report, the images needed, blocked and dropped.
    Catalog(&'a CatalogPlan),
}
