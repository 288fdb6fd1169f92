//! The cache: an OCI image layout (image-spec `image-layout.md`) that `mirror` reads like
//! any other, plus ferry's bookkeeping under `.ferry/`:
//!
//! ```text
//! CACHE/oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! CACHE/index.json                 one descriptor per image pulled (annotations below)
//! CACHE/blobs/sha256/<hex>         complete blobs whose SHA-256 was checked as they streamed
//! CACHE/.ferry/lock                held (flock) by the one run using the cache; holds its pid
//! CACHE/.ferry/partial/<hex>       an interrupted download, resumed with Range
//! CACHE/.ferry/views/              the index.json of each set packed from the cache
//! ```
//!
//! Descriptor annotations: `org.opencontainers.image.ref.name` = `<repository>:<tag>` or
//! `<repository>@sha256:<hex>` (the destination naming); `io.containerd.image.name` = the
//! original reference as the image set wrote it, canonical; `dev.ferry.resolved-at` for a
//! tag; `dev.ferry.platforms` for a sparse index (`oci::annotation`).
//!
//! Invariant: a file under `blobs/` is complete and its bytes hash to its name; index.json
//! names only images whose every needed blob is under `blobs/`.
//
// SKELETON (integrator): signatures are the contract; bodies come with the cache work.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use oci::Digest;
use registry_client::{BlobStream, RegistryError};

use crate::error::CacheError;

/// An open cache, locked for this process until dropped.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
}

/// One image recorded in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// `org.opencontainers.image.ref.name`: `<repository>:<tag>` or `<repository>@sha256:<hex>`.
    pub ref_name: String,
    /// `io.containerd.image.name`: the original reference, canonical.
    pub source: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// `dev.ferry.resolved-at` (RFC 3339), for a tag.
    pub resolved_at: Option<String>,
    /// `dev.ferry.platforms`: the children kept, for a sparse index.
    pub platforms: Option<Vec<String>>,
}

/// What [`Cache::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub images_removed: Vec<String>,
    pub blobs_removed: usize,
    pub partials_removed: usize,
    pub bytes_freed: u64,
}

/// How a [`Cache::download`] ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes that came over the network in this call.
    pub fetched: u64,
    /// Bytes of an earlier partial that were kept (resumed with Range).
    pub resumed_from: u64,
}

/// Why a [`Cache::download`] did not complete. The partial is kept (for the next attempt to
/// resume) unless the bytes were wrong.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The stream broke off (reset, timeout); the partial holds what arrived.
    #[error("the download of {digest} broke off after {received} of {size} bytes: {source}")]
    BrokenOff {
        digest: Digest,
        received: u64,
        size: u64,
        source: std::io::Error,
    },
    /// The bytes do not hash to the digest (or are too long): the partial is deleted.
    #[error("the bytes received for {expected} hash to {actual}")]
    Mismatch { expected: Digest, actual: String },
    /// The registry has no such blob.
    #[error("the registry has no blob {0}")]
    NotFound(Digest),
    #[error("interrupted")]
    Cancelled,
}

impl Cache {
    /// Opens (creating when missing) the cache at `root` and takes its lock; another run
    /// holding it is [`CacheError::Busy`]. A directory that is not empty and not a cache
    /// (no `oci-layout`) is refused.
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        let _ = root;
        todo!()
    }

    /// Opens an existing cache for reading without the lock (pack from the cache while
    /// nobody writes is safe: blobs only appear, complete). Missing: an error.
    pub fn open_read_only(root: &Path) -> Result<Cache, CacheError> {
        let _ = root;
        todo!()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The size of the complete blob, if the cache has it.
    pub fn has_blob(&self, digest: &Digest) -> Option<u64> {
        let _ = digest;
        todo!()
    }

    /// Bytes of an interrupted download of `digest` (0 if none).
    pub fn partial_len(&self, digest: &Digest) -> u64 {
        let _ = digest;
        todo!()
    }

    /// A small blob (a manifest), at most `max` bytes, checked against its digest on read.
    pub fn read_blob(&self, digest: &Digest, max: usize) -> Result<Vec<u8>, CacheError> {
        let _ = (digest, max);
        todo!()
    }

    /// Stores bytes already in memory (a manifest) after checking they hash to `digest`.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        let _ = (digest, bytes);
        todo!()
    }

    /// Downloads `digest` (`size` bytes): `fetch(offset)` opens the stream from `offset`
    /// (the partial's length, or 0); a stream that starts at 0 although more was asked
    /// restarts the partial. Hashes while it writes (the kept partial first), renames into
    /// `blobs/` only when the size and SHA-256 match. `progress(n)` after each write.
    pub fn download(
        &self,
        digest: &Digest,
        size: u64,
        fetch: &mut dyn FnMut(u64) -> Result<Option<BlobStream>, RegistryError>,
        progress: &dyn Fn(u64),
        cancel: &AtomicBool,
    ) -> Result<Downloaded, DownloadError> {
        let _ = (digest, size, fetch, progress, cancel);
        todo!()
    }

    /// The images `index.json` records.
    pub fn images(&self) -> Result<Vec<CachedImage>, CacheError> {
        todo!()
    }

    /// Adds or replaces (by `ref_name`) these images in `index.json`, written atomically.
    /// Call only when every blob each needs is in the cache.
    pub fn record(&self, images: &[CachedImage]) -> Result<(), CacheError> {
        let _ = images;
        todo!()
    }

    /// Removes the `index.json` entries whose `ref_name` is not in `keep_refs`, every blob
    /// not in `keep_blobs`, and every partial.
    pub fn prune(
        &self,
        keep_refs: &BTreeSet<String>,
        keep_blobs: &BTreeSet<Digest>,
    ) -> Result<PruneReport, CacheError> {
        let _ = (keep_refs, keep_blobs);
        todo!()
    }

    /// Free bytes on the cache's filesystem.
    pub fn free_space(&self) -> Result<u64, CacheError> {
        todo!()
    }

    /// Reads a whole blob file as a stream (for callers that hash or copy it).
    pub fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read>, CacheError> {
        let _ = digest;
        todo!()
    }
}
