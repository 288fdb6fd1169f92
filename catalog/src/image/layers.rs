//! What a layer holds, seen through its tar headers: files under the catalog path, under
//! opm's cache directory, and anything else (whiteouts count as what they remove).
//!
//! Layers are opened through [`Blobs`] and decompressed as their first bytes say (gzip,
//! zstd or a plain tar), not as their media type says: Docker schema 2 has one layer
//! type for gzip and uncompressed tars alike, and a mislabelled layer still reads.

use std::io::{self, BufRead, BufReader, Read};

use oci::Digest;

use super::content::components;
use super::{Blobs, Content, ImageError};

/// Buffer of every layer stream (raw and decompressed): large reads keep the
/// decompressors and the tar reader fed.
pub(super) const BUFFER: usize = 256 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// OCI's whiteout prefix and opaque-directory marker (image-spec `layer.md`).
pub(super) const WHITEOUT: &str = ".wh.";
pub(super) const OPAQUE: &str = ".wh..wh..opq";

/// The uncompressed tar stream of layer `digest`.
pub(super) fn open<'a>(
    blobs: &'a dyn Blobs,
    digest: &Digest,
) -> Result<Box<dyn Read + Send + 'a>, ImageError> {
    let raw = blobs.open(digest).map_err(|source| ImageError::Blob {
        digest: *digest,
        source,
    })?;
    let mut raw = BufReader::with_capacity(BUFFER, raw);
    let head = raw.fill_buf().map_err(|source| ImageError::Blob {
        digest: *digest,
        source,
    })?;
    let stream: Box<dyn Read + Send + 'a> = if head.starts_with(&GZIP_MAGIC) {
        // Multi-member: Go's gzip reader (containers/image, containerd) reads
        // concatenated members as one stream, so some layers are written that way.
        Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else if head.starts_with(&ZSTD_MAGIC) {
        let z = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| ImageError::Layer {
            digest: *digest,
            what: format!("not a zstd stream: {e}"),
        })?;
        Box::new(BufReader::with_capacity(BUFFER, z))
    } else {
        Box::new(raw)
    };
    Ok(stream)
}

/// A tar or decompression failure while reading layer `digest`, named as such.
pub(super) fn tar_error(digest: &Digest, e: io::Error) -> ImageError {
    ImageError::Layer {
        digest: *digest,
        what: format!("not a readable tar stream (gzip, zstd or plain): {e}"),
    }
}

/// Where an entry's path (or what its whiteout removes) falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The catalog path or below it.
    Catalog,
    /// opm's cache directory or below it.
    Cache,
    /// A directory above the catalog path or the cache directory (`tmp/`, the root).
    Neutral,
    Other,
}

/// What one layer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Holds {
    /// Files (not directories, not whiteouts) under the catalog path.
    pub catalog_files: bool,
    /// Any entry under the catalog path, whiteouts of it included.
    pub catalog: bool,
    /// Any entry under the cache directory, whiteouts of it included.
    pub cache: bool,
    /// Anything else (a file at an ancestor of the paths counts here).
    pub other: bool,
    /// The layer removes the whole catalog path of the layers below (`.wh.configs` in its
    /// parent, or the opaque marker in it): what they hold there is dead.
    pub hides_catalog: bool,
}

impl Holds {
    /// The layer holds only catalog content or opm's cache (and the directories above).
    pub fn only_catalog_or_cache(&self) -> bool {
        !self.other && (self.catalog || self.cache)
    }
}

/// `comps` (an entry's path, or the path a whiteout removes) against the content's paths.
pub(super) fn place(comps: &[&str], is_dir: bool, content: &Content) -> Place {
    let catalog = components(&content.path);
    let cache = content.cache_dir.as_deref().map(components);
    if comps.starts_with(&catalog) {
        return Place::Catalog;
    }
    if let Some(cache) = &cache {
        if comps.starts_with(cache) {
            return Place::Cache;
        }
    }
    let above = |p: &[&str]| p.len() > comps.len() && p.starts_with(comps);
    if is_dir && (above(&catalog) || cache.as_deref().is_some_and(above)) {
        return Place::Neutral;
    }
    Place::Other
}

/// What the tar stream `layer` (of layer `digest`) holds, read to its end.
pub(super) fn scan(
    layer: impl Read,
    digest: &Digest,
    content: &Content,
) -> Result<Holds, ImageError> {
    let err = |e| tar_error(digest, e);
    let catalog = components(&content.path);
    let mut holds = Holds::default();
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries().map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path().map_err(err)?;
        let path = path.to_string_lossy();
        let comps = components(&path);
        if comps.contains(&"..") {
            // Climbs out of the root; extraction refuses it, but it is no catalog or
            // cache content either, so the layer is kept as it is.
            holds.other = true;
            continue;
        }
        let Some((name, parent)) = comps.split_last() else {
            continue; // the root directory itself
        };
        let kind = entry.header().entry_type();
        if let Some(removed) = name.strip_prefix(WHITEOUT) {
            // A whiteout counts as what it removes: the opaque marker the directory's
            // contents, `.wh.NAME` the sibling NAME.
            let target: Vec<&str> = if *name == OPAQUE {
                parent.to_vec()
            } else {
                parent.iter().copied().chain([removed]).collect()
            };
            if target.len() <= catalog.len() && catalog.starts_with(&target) {
                holds.hides_catalog = true;
            }
            match place(&target, true, content) {
                Place::Catalog => holds.catalog = true,
                Place::Cache => holds.cache = true,
                // Removing a directory above the catalog path removes more than it.
                Place::Neutral | Place::Other => holds.other = true,
            }
            continue;
        }
        match place(&comps, kind.is_dir(), content) {
            Place::Catalog => {
                holds.catalog = true;
                if !kind.is_dir() {
                    holds.catalog_files = true;
                }
            }
            Place::Cache => holds.cache = true,
            Place::Neutral => {}
            Place::Other => holds.other = true,
        }
    }
    Ok(holds)
}
