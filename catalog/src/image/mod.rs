//! Operator catalog *images*: where a catalog image keeps its content (its config's
//! labels), reading that content from the image's layers without unpacking the image's
//! filesystem, and the rebuilt catalog image of a selection (issue 12).
//!
//! The module never touches the network: blobs come through [`Blobs`] (the pull cache,
//! fetching a layer the first time it is opened; or the volumes of a bundle) and new blobs
//! go out through [`Sink`].
//!
//! - `content.rs` ([`content_of`]): the labels `operators.operatorframework.io.index.configs.v1`
//!   (FBC: a directory, `/configs`) and `…database.v1` (SQLite: a file,
//!   `/database/index.db`), and opm's cache directory from the command line
//!   (`--cache-dir=/tmp/cache`).
//! - [`read`]: which layer holds the catalog (layers whose history adds the path first,
//!   then the others from the top down; the first holding files under the path), read
//!   from it alone.
//! - [`rebuild`]: per platform, the original layers minus those holding only catalog
//!   content or opm's cache, plus one deterministic layer of the new content.
//! - `layers.rs`: opening a layer (gzip, zstd or plain tar, told by its first bytes) and
//!   what its tar headers say it holds.
//! - `targz.rs`: the deterministic tar + gzip writer of that layer.

mod content;
mod layers;
mod read;
mod rebuild;
mod targz;

#[cfg(test)]
mod tests;

use std::io::{self, Read};

use oci::Digest;

pub use content::{content_of, Content, Kind, CONFIGS_LABEL, DATABASE_LABEL};
pub use read::{fill_raw, read, Loaded};
pub use rebuild::{rebuild, NewContent, Rebuilt};

/// Where blobs are read from. An implementation may fetch a blob on its first `open`
/// (the pull cache does: listing a catalog fetches only the layers it opens).
pub trait Blobs: Sync {
    /// The bytes of `digest` (as stored: a gzip layer is returned compressed). The
    /// reader is not required to check the digest; implementations do.
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send + '_>>;
}

/// Where new blobs (the rebuilt image's layer, configs and manifests) are written.
pub trait Sink: Sync {
    /// Stores `bytes` as blob `digest` (the caller computed it); storing one that is
    /// already there is not an error.
    fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()>;
}

/// The image to read or rebuild: its top manifest or index and, for an index, the
/// children to take (None: every child; a digest the index lacks is an error). For a
/// single manifest `kept` is not looked at.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub digest: Digest,
    pub media_type: &'a str,
    pub kept: Option<&'a [Digest]>,
}

/// Why a catalog image cannot be read or rebuilt. Each names the image's part (digest,
/// layer, path) and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A blob could not be read (the pull cache could not fetch it, a volume lacks it).
    #[error("blob {digest}: {source}")]
    Blob {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    /// A manifest, index or config that is not what its media type says.
    #[error("{digest}: {what}")]
    Malformed { digest: Digest, what: String },
    /// The config carries neither catalog label.
    #[error("{digest} is not an operator catalog image: its config carries neither operators.operatorframework.io.index.configs.v1 nor operators.operatorframework.io.index.database.v1")]
    NotACatalog { digest: Digest },
    /// No layer holds a file under the labelled path.
    #[error("no layer of {digest} holds {path} (the path its label names)")]
    NoContent { digest: Digest, path: String },
    /// More than one layer holds files under the path: ferry reads catalogs built as opm
    /// builds them (the whole directory added in one layer).
    #[error("the catalog content {path} of {digest} is spread over the layers {layers:?}; ferry reads catalogs whose content is added in one layer (as `opm generate dockerfile` builds them)")]
    SpreadOver {
        digest: Digest,
        path: String,
        layers: Vec<Digest>,
    },
    /// The catalog was read from a layer whose content there a layer above removes (a
    /// whiteout) or replaces: it is not what the image serves.
    #[error("the catalog {path} of {digest} was read from layer {layer}, which a layer above removes ({serving}); the image does not serve that catalog: name an image whose catalog is added in one layer (as `opm generate dockerfile` builds it)")]
    Hidden {
        digest: Digest,
        path: String,
        layer: Digest,
        /// Where the catalog the image serves is: `the catalog it serves is in layer …`,
        /// or `the image serves none` (text: the variant stays small).
        serving: String,
    },
    /// A layer that is not a (gzip) tar stream.
    #[error("layer {digest}: {what}")]
    Layer { digest: Digest, what: String },
    /// The catalog database is larger than the free space where it would be extracted
    /// (its tar header says how large; nothing was written).
    #[error("layer {layer}: {path} is {size} bytes, more than the {free} bytes free in {dir} (where it is extracted to be read): free space on that filesystem or give a cache on a larger one")]
    NoRoom {
        layer: Digest,
        path: String,
        size: u64,
        dir: std::path::PathBuf,
        free: u64,
    },
    #[error(transparent)]
    Read(#[from] crate::fbc::ReadError),
    /// The catalog in a layer could not be read (a file that is not JSON or YAML, a link).
    #[error("the catalog in layer {layer}: {source}")]
    Catalog {
        layer: Digest,
        /// Boxed: a read error with its location is large, and every result carries it.
        #[source]
        source: Box<crate::fbc::ReadError>,
    },
    /// [`rebuild`] was given the new content of the other kind of catalog.
    #[error("{digest} is a {image:?} catalog image; the new content given is {given:?}")]
    ContentKind {
        digest: Digest,
        image: Kind,
        given: Kind,
    },
    #[error(transparent)]
    Sqlite(#[from] crate::sqlite::SqliteError),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}
