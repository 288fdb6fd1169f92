//! The canonical form of a manifest (SPEC.md §4.3), written to any `Write`: so `bundle_id`
//! and the M18 check hash or compare the serialization as it is produced, without a copy
//! of the manifest or a buffer of its text (issue 13: a 6×10^4-image manifest is 75 MB of
//! JSON).

use std::io::{self, Write};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{Blob, BundleManifest, Image, TreeEntry};
use crate::Digest;

/// The members of §4.2 in their order, borrowed, with the `bundle_id` to write: the
/// manifest's own, or zeros when computing it.
#[derive(Serialize)]
pub(super) struct View<'a> {
    ferry_bundle: u32,
    bundle_id: &'a Digest,
    creator: &'a str,
    created: u64,
    source_layout: &'a str,
    key: &'a str,
    volume_size: u64,
    volume_count: u32,
    chunk_size: u64,
    index_json: &'a Digest,
    blobs: &'a [Blob],
    images: &'a [Image],
    tree: &'a [TreeEntry],
}

const ZERO_ID: Digest = Digest([0; 32]);

impl BundleManifest {
    pub(super) fn view<'a>(&'a self, bundle_id: &'a Digest) -> View<'a> {
        View {
            ferry_bundle: self.ferry_bundle,
            bundle_id,
            creator: &self.creator,
            created: self.created,
            source_layout: &self.source_layout,
            key: &self.key,
            volume_size: self.volume_size,
            volume_count: self.volume_count,
            chunk_size: self.chunk_size,
            index_json: &self.index_json,
            blobs: &self.blobs,
            images: &self.images,
            tree: &self.tree,
        }
    }

    /// Writes the canonical JSON (§4.3) to `out`.
    pub fn write_json<W: Write>(&self, out: W) -> io::Result<()> {
        serde_json::to_writer(out, self).map_err(io::Error::from)
    }

    /// The canonical JSON (§4.3): the whole of a version-1 manifest but its padding, and
    /// what a version-2 manifest's zstd frame holds.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serializes")
    }

    /// What `bundle_id` must be: SHA-256 of the canonical form with `bundle_id` all zeros
    /// (§4.3), hashed as it is serialized.
    pub fn content_id(&self) -> Digest {
        let mut h = HashWriter::default();
        serde_json::to_writer(&mut h, &self.view(&ZERO_ID)).expect("manifest serializes");
        h.finish().0
    }

    /// SHA-256 and length of the canonical JSON, hashed as it is serialized (M18 for a
    /// version-2 manifest compares them with the decompressed bytes').
    pub(super) fn json_digest(&self) -> (Digest, u64) {
        let mut h = HashWriter::default();
        self.write_json(&mut h).expect("manifest serializes");
        h.finish()
    }

    /// Whether the canonical JSON is exactly `expected`, compared as it is serialized.
    pub(super) fn json_is(&self, expected: &[u8]) -> bool {
        let mut c = Compare { expected, at: 0 };
        self.write_json(&mut c).is_ok() && c.at == expected.len()
    }
}

impl Serialize for BundleManifest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view(&self.bundle_id).serialize(s)
    }
}

/// A `Write` that hashes and counts what passes through it.
#[derive(Default)]
pub(crate) struct HashWriter {
    hasher: Sha256,
    len: u64,
}

impl HashWriter {
    pub(crate) fn finish(self) -> (Digest, u64) {
        (Digest(self.hasher.finalize().into()), self.len)
    }
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Write` that fails at the first byte differing from `expected` (or past its end).
struct Compare<'a> {
    expected: &'a [u8],
    at: usize,
}

impl Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.at + buf.len();
        if self.expected.get(self.at..end) != Some(buf) {
            return Err(io::Error::other("differs"));
        }
        self.at = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Write` that only counts: the length of a serialization or a compressed stream
/// without holding it.
#[derive(Default)]
pub(super) struct CountWriter(pub(super) u64);

impl Write for CountWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
