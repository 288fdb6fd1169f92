//! Writing a bundle (SPEC.md §5): what is packed ([`Source`]), deciding each blob's
//! encoding and sizing it ([`prepare`]), planning ([`make_plan`]), and writing volumes under
//! temporary names, renamed only when complete ([`write_volumes`]). Each idea has its
//! module; the items are used from here.
//!
//! - `input`: reading a mirror's file, checked against its size and digest as it is read;
//! - `prepare`: each blob's encoding and stored size, before planning, and the compressed
//!   streams it keeps;
//! - `spool`: the temporary file holding kept streams that memory does not;
//! - `copies`: other files of the mirror that hold a packed blob, re-hashed too;
//! - `stream`: one blob's stored stream, chunk by chunk, each chunk hashed;
//! - `buffers`: chunk buffers the writer hands back for the workers to fill again;
//! - `write`: the write loop (workers reading and hashing blobs, one writer) and what it
//!   produced;
//! - `tar`: the volume file being written, entry by entry;
//! - `manifest_copy`: the standalone manifest beside the volumes.

use std::borrow::Cow;
use std::path::Path;

use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PrivateKey;
use crate::manifest::{Blob, BundleManifest, Image, TreeEntry};
pub use crate::plan::IndexBytes;
use crate::plan::{plan, Plan};

mod blob_path;
mod buffers;
mod copies;
mod input;
mod manifest_copy;
mod prepare;
mod spool;
mod stream;
mod tar;
#[cfg(test)]
mod tests;
mod write;

pub use blob_path::{BlobPath, BlobPaths};
pub use copies::{check_copies, other_copies};
pub use input::ZSTD_LEVEL;
pub use manifest_copy::{manifest_copy_size, write_manifest_copy};
pub use prepare::{prepare, prepare_spooled, Kept, Prepared};
pub use spool::{Spool, SPOOL_MAX, SPOOL_SHARE};
pub use write::{write_volumes, Stopped, Written};

/// Default chunk size: small enough to locate damage and bound memory, large enough that
/// tar headers and table entries cost under 0.02%.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;

/// A blob to pack, read from [`SourceBlob::path`].
#[derive(Debug, Clone)]
pub struct SourceBlob {
    pub digest: Digest,
    pub size: u64,
    /// Where its bytes are read (see [`BlobPath`]).
    pub at: BlobPath,
    pub media_type: Option<String>,
    /// Set for a blob the base already holds (`--base`): not packed; the original
    /// repository path of an image that held it, when known.
    pub base: Option<Option<String>>,
}

impl SourceBlob {
    /// The file its bytes are read from.
    pub fn path(&self) -> Cow<'_, Path> {
        self.at.of(&self.digest)
    }
}

/// Everything ferry-pack read from a mirror, in pack order.
#[derive(Debug, Clone)]
pub struct Source {
    pub source_layout: String,
    pub blobs: Vec<SourceBlob>,
    pub images: Vec<Image>,
    pub tree: Vec<TreeEntry>,
    /// `ferry/index.json`: the OCI index of every image (kept compressed: at 6×10^4
    /// images it is 18 MB of JSON).
    pub index_json: IndexBytes,
}

impl Source {
    /// The newest modification time of any file packed: the bundle's time when
    /// SOURCE_DATE_EPOCH is not set, so packing the same mirror twice gives the same bytes.
    pub fn newest_mtime(&self) -> u64 {
        self.blobs
            .iter()
            .filter_map(|b| std::fs::metadata(b.path()).ok()?.modified().ok())
            .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub volume_size: u64,
    pub chunk_size: u64,
    pub created: u64,
    pub creator: String,
    /// The bundle format to write (SPEC.md §9): [`crate::manifest::BUNDLE_VERSION`], or 1 for an older
    /// ferry-unpack inside.
    pub bundle_format: u32,
}

/// Builds the plan: the manifest, the index and where every chunk goes.
pub fn make_plan(
    source: &Source,
    prepared: &[Prepared],
    options: &Options,
    key: &PrivateKey,
) -> Result<Plan, FormatError> {
    let mut blobs = blob_records(&source.blobs, prepared);
    for (record, b) in blobs.iter_mut().zip(&source.blobs) {
        record.media_type.clone_from(&b.media_type);
        record.at = b.base.clone().flatten();
    }
    build_plan(
        source,
        blobs,
        source.images.clone(),
        source.tree.clone(),
        source.index_json.clone(),
        options,
        key,
    )
}

/// As [`make_plan`], moving the images, the tree, the index and the blobs' media types and
/// base locations out of `source` into the plan rather than copying them (at 10^5 images
/// they are tens of MB); `source` keeps what writing reads of its blobs.
pub fn make_plan_taking(
    source: &mut Source,
    prepared: &[Prepared],
    options: &Options,
    key: &PrivateKey,
) -> Result<Plan, FormatError> {
    let mut blobs = blob_records(&source.blobs, prepared);
    for (record, b) in blobs.iter_mut().zip(&mut source.blobs) {
        record.media_type = b.media_type.take();
        // Whether the blob is the base's stays said (`Some`); only its location moves.
        record.at = b.base.as_mut().and_then(Option::take);
    }
    let images = std::mem::take(&mut source.images);
    let tree = std::mem::take(&mut source.tree);
    let index_json = std::mem::replace(&mut source.index_json, IndexBytes::new(&[]));
    build_plan(source, blobs, images, tree, index_json, options, key)
}

/// The manifest's blob records, without media types and base locations.
fn blob_records(sources: &[SourceBlob], prepared: &[Prepared]) -> Vec<Blob> {
    sources
        .iter()
        .zip(prepared)
        .map(|(b, p)| Blob {
            digest: b.digest,
            size: b.size,
            encoding: p.encoding,
            stored_size: p.stored_size,
            first_volume: 1,
            last_volume: 1,
            media_type: None,
            at: None,
        })
        .collect()
}

fn build_plan(
    source: &Source,
    blobs: Vec<Blob>,
    images: Vec<Image>,
    tree: Vec<TreeEntry>,
    index_json: IndexBytes,
    options: &Options,
    key: &PrivateKey,
) -> Result<Plan, FormatError> {
    let manifest = BundleManifest {
        ferry_bundle: options.bundle_format,
        bundle_id: Digest([0; 32]),
        creator: options.creator.clone(),
        created: options.created,
        source_layout: source.source_layout.clone(),
        key: key.public().fingerprint(),
        volume_size: options.volume_size,
        volume_count: 1,
        chunk_size: options.chunk_size,
        index_json: index_json.digest(),
        blobs,
        images,
        tree,
    };
    plan(manifest, index_json, options.volume_size)
}
