//! Reading the catalog from the one layer that holds it.

use std::path::{Path, PathBuf};

use oci::Digest;

use super::{Blobs, Content, ImageError, Kind, Source};
use crate::model::Catalog;

/// A catalog as read from its image.
#[derive(Debug)]
pub struct Loaded {
    pub kind: Kind,
    pub content: Content,
    /// The child manifest read (for an index: linux/amd64 when kept, else the first kept
    /// child), and its config digest.
    pub manifest: Digest,
    pub config: Digest,
    /// The layer the catalog was read from (its digest as stored).
    pub layer: Digest,
    /// Read without raw bundles (memory follows the selection: see [`fill_raw`]).
    pub catalog: Catalog,
    /// SQLite: the database, extracted under the scratch directory given to [`read`].
    pub database: Option<PathBuf>,
}

/// Reads the catalog of `source`: its config's labels, then the layers in the order that
/// finds the content soonest (history naming the path first, then from the top down),
/// opening each through `blobs` until one holds files under the path. FBC objects are read
/// without raw bundles; a SQLite database is written to a file under `scratch` and read.
pub fn read(blobs: &dyn Blobs, source: &Source<'_>, scratch: &Path) -> Result<Loaded, ImageError> {
    let _ = (blobs, source, scratch);
    todo!("issue 12")
}

/// Gives the bundles of `catalog` (a selection of `loaded.catalog`) their raw objects,
/// reading `loaded.layer` once more. SQLite: nothing to do.
pub fn fill_raw(
    blobs: &dyn Blobs,
    loaded: &Loaded,
    catalog: &mut Catalog,
) -> Result<(), ImageError> {
    let _ = (blobs, loaded, catalog);
    todo!("issue 12")
}
