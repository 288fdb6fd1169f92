//! Each blob's encoding (SPEC.md §5.5) and stored size, decided before planning, since the
//! plan needs every stored size: gzip and zstd layers are stored as they are; other blobs
//! are compressed once here, and kept compressed when small, so writing does not do it
//! again.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::input::{open_checked, read_full, ZstdStream};
use super::SourceBlob;
use crate::error::FormatError;
use crate::manifest::Encoding;

/// zstd must save at least this share (in percent) to be used (SPEC.md §5.5).
const MIN_SAVING_PERCENT: u64 = 5;

/// A blob's encoding decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub encoding: Encoding,
    pub stored_size: u64,
    /// The zstd stream itself, kept from sizing when small, so writing does not read,
    /// hash and compress the blob a second time.
    pub cached: Option<std::sync::Arc<Vec<u8>>>,
}

/// Compressed streams kept between sizing and writing: each at most this large...
const CACHE_ONE: usize = 8 << 20;
/// ...and all of them together at most this much memory.
const CACHE_ALL: u64 = 64 << 20;

/// Decides each blob's encoding, both cores at once. Compressible candidates are
/// compressed once here to learn their exact stored size (the plan needs it) and hashed
/// on the way; gzip and zstd layers are only sniffed and are hashed while written.
/// Stops with [`FormatError::Interrupted`] once `cancel` is set (checked between blobs).
pub fn prepare(blobs: &[SourceBlob], cancel: &AtomicBool) -> Result<Vec<Prepared>, FormatError> {
    let budget = std::sync::atomic::AtomicU64::new(CACHE_ALL);
    blobs
        .par_iter()
        .map(|b| {
            if cancel.load(Ordering::Relaxed) {
                return Err(FormatError::Interrupted);
            }
            prepare_one(b, &budget)
        })
        .collect()
}

fn prepare_one(
    blob: &SourceBlob,
    budget: &std::sync::atomic::AtomicU64,
) -> Result<Prepared, FormatError> {
    if blob.base.is_some() {
        return Ok(Prepared {
            encoding: Encoding::Base,
            stored_size: 0,
            cached: None,
        });
    }
    let mut file = open_checked(blob)?;
    let mut magic = [0u8; 4];
    let n = read_full(&mut file, &mut magic).map_err(FormatError::io(&blob.path))?;
    let compressed_already =
        magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd];
    let raw = Prepared {
        encoding: Encoding::Raw,
        stored_size: blob.size,
        cached: None,
    };
    if compressed_already || blob.size < 256 {
        return Ok(raw);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(FormatError::io(&blob.path))?;
    let mut stream = ZstdStream::new(file, blob)?;
    let mut head = Vec::new();
    let first = (&mut stream)
        .take(CACHE_ONE as u64 + 1)
        .read_to_end(&mut head)
        .map_err(FormatError::io(&blob.path))? as u64;
    let rest = io::copy(&mut stream, &mut io::sink()).map_err(FormatError::io(&blob.path))?;
    stream.finish()?;
    let stored = first + rest;
    if stored * 100 > blob.size * (100 - MIN_SAVING_PERCENT) {
        return Ok(raw);
    }
    let fits = rest == 0
        && head.len() <= CACHE_ONE
        && budget
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |left| left.checked_sub(stored),
            )
            .is_ok();
    Ok(Prepared {
        encoding: Encoding::Zstd,
        stored_size: stored,
        cached: fits.then(|| std::sync::Arc::new(head)),
    })
}
