//! Each blob's encoding (SPEC.md §5.5) and stored size, decided before planning, since the
//! plan needs every stored size: gzip and zstd layers are stored as they are; other blobs
//! are compressed once here, and their compressed stream is kept — in memory when small,
//! else in the spool file ([`Spool`]) — so writing does not read, hash and compress them a
//! second time.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use sha2::{Digest as _, Sha256};

use super::input::{open_checked, read_full, ZstdStream, READ_BUFFER};
use super::spool::Spool;
use super::SourceBlob;
use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::Encoding;

/// zstd must save at least this share (in percent) to be used (SPEC.md §5.5).
const MIN_SAVING_PERCENT: u64 = 5;

/// A blob's encoding decision.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub encoding: Encoding,
    pub stored_size: u64,
    /// The zstd stream itself, kept from sizing, so writing does not read, hash and
    /// compress the blob a second time. `None`: the stream is made again while writing
    /// (raw blobs, and compressed ones beyond what memory and the spool may hold).
    pub kept: Option<Kept>,
}

/// A compressed stream kept from sizing. Its bytes were made from the blob's bytes as they
/// were checked against the blob's digest.
#[derive(Debug, Clone)]
pub enum Kept {
    /// Exactly the stream's bytes in one allocation: a mirror of many small blobs keeps
    /// one per blob, so `Arc<Vec>`'s second allocation and the growth slack of reading
    /// were a term of pack's peak (~80 bytes a blob).
    Memory(Arc<[u8]>),
    /// In the spool file: pieces `(offset in the spool, length)`, in stream order, and the
    /// SHA-256 of each [`SPOOL_BLOCK`] of the stream as it was written there. The spool is a
    /// file on a local disk, outside what the blob digests vouch for: every block read back
    /// is checked against its hash before any byte of it is handed on, so a disk that
    /// returns other bytes fails the run before they reach a volume.
    Spooled {
        spool: Arc<Spool>,
        pieces: Box<[(u64, u64)]>,
        blocks: Box<[Digest]>,
    },
}

/// The spool's streams are checked in blocks of this many bytes (the last one shorter).
pub(super) const SPOOL_BLOCK: u64 = 1 << 20;

/// Why a kept stream could not be read.
#[derive(Debug)]
pub(super) enum KeptError {
    /// Reading failed, or the stream is shorter than asked.
    Io(io::Error),
    /// A block of the spool read back differs from what was written.
    Changed,
}

impl std::fmt::Display for KeptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeptError::Io(e) => e.fmt(f),
            KeptError::Changed => f.write_str("a block reads back other than it was written"),
        }
    }
}

/// A kept stream ends before the bytes asked of it.
fn shorter_than_planned() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "shorter than planned")
}

impl Kept {
    /// Fills `buf` with the stream's bytes from `pos`; from the spool, only with bytes of
    /// blocks that read back as they were written.
    pub(super) fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<(), KeptError> {
        let short = || KeptError::Io(shorter_than_planned());
        match self {
            Kept::Memory(bytes) => {
                let start = usize::try_from(pos).map_err(|_| short())?;
                let part = bytes.get(start..start + buf.len()).ok_or_else(short)?;
                buf.copy_from_slice(part);
                Ok(())
            }
            Kept::Spooled {
                spool,
                pieces,
                blocks,
            } => {
                let total: u64 = pieces.iter().map(|&(_, len)| len).sum();
                if pos + buf.len() as u64 > total {
                    return Err(short());
                }
                let mut block = vec![0u8; SPOOL_BLOCK.min(total) as usize];
                let mut done = 0usize;
                while done < buf.len() {
                    let at = pos + done as u64;
                    let i = at / SPOOL_BLOCK;
                    let start = i * SPOOL_BLOCK;
                    let len = SPOOL_BLOCK.min(total - start) as usize;
                    read_pieces(spool, pieces, start, &mut block[..len]).map_err(KeptError::Io)?;
                    let want = blocks.get(i as usize).ok_or_else(short)?;
                    if Digest(Sha256::digest(&block[..len]).into()) != *want {
                        return Err(KeptError::Changed);
                    }
                    let skip = (at - start) as usize;
                    let n = (len - skip).min(buf.len() - done);
                    buf[done..done + n].copy_from_slice(&block[skip..skip + n]);
                    done += n;
                }
                Ok(())
            }
        }
    }
}

/// Fills `buf` with the bytes of the stream held in `pieces` of `spool`, from `pos`.
fn read_pieces(spool: &Spool, pieces: &[(u64, u64)], pos: u64, buf: &mut [u8]) -> io::Result<()> {
    let (mut done, mut at) = (0usize, 0u64);
    for &(offset, len) in pieces {
        if done == buf.len() {
            break;
        }
        let want = pos + done as u64;
        if want < at + len {
            let skip = want - at;
            let n = ((len - skip) as usize).min(buf.len() - done);
            spool.read_at(offset + skip, &mut buf[done..done + n])?;
            done += n;
        }
        at += len;
    }
    if done == buf.len() {
        Ok(())
    } else {
        Err(shorter_than_planned())
    }
}

/// Hashes a stream in [`SPOOL_BLOCK`]s as it is written to the spool.
#[derive(Default)]
struct BlockHasher {
    hasher: Sha256,
    filled: u64,
    blocks: Vec<Digest>,
}

impl BlockHasher {
    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = ((SPOOL_BLOCK - self.filled) as usize).min(bytes.len());
            self.hasher.update(&bytes[..n]);
            self.filled += n as u64;
            bytes = &bytes[n..];
            if self.filled == SPOOL_BLOCK {
                let full = std::mem::take(&mut self.hasher);
                self.blocks.push(Digest(full.finalize().into()));
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> Box<[Digest]> {
        if self.filled > 0 {
            self.blocks.push(Digest(self.hasher.finalize().into()));
        }
        self.blocks.into_boxed_slice()
    }
}

/// Compressed streams kept in memory between sizing and writing: each at most this
/// large...
const MEMORY_ONE: usize = 8 << 20;
/// ...and all of them together at most this much memory, less [`RECORD`] per blob (the
/// others go to the spool, or are compressed again while written): the records of a bundle
/// grow with its blobs and live through the plan, pack's peak, so the streams get what
/// the records leave (32 MiB for a catalog of 10^3 blobs, 10 MiB at 1.8×10^5). A stream
/// not kept costs a core about a third of a second per 100 MB compressed again.
const MEMORY_ALL: u64 = 32 << 20;
/// What the kept streams are given at the least.
const MEMORY_FLOOR: u64 = 8 << 20;
/// Memory a blob's records take until the volumes are written (source, plan and manifest).
const RECORD: u64 = 128;

/// The memory kept streams may take, for a bundle of `blobs` blobs.
fn stream_budget(blobs: usize) -> u64 {
    MEMORY_ALL
        .saturating_sub(RECORD.saturating_mul(blobs as u64))
        .max(MEMORY_FLOOR)
}

/// Decides each blob's encoding, both cores at once, keeping compressed streams in memory
/// only (see [`prepare_spooled`]).
pub fn prepare(blobs: &[SourceBlob], cancel: &AtomicBool) -> Result<Vec<Prepared>, FormatError> {
    prepare_spooled(blobs, None, cancel)
}

/// Decides each blob's encoding, both cores at once. Compressible candidates are
/// compressed once here to learn their exact stored size (the plan needs it) and hashed
/// on the way, and the stream is kept (in memory within a bound, else in `spool` while it
/// has room); gzip and zstd layers are only sniffed and are hashed while written.
/// Stops with [`FormatError::Interrupted`] once `cancel` is set (checked between blobs).
pub fn prepare_spooled(
    blobs: &[SourceBlob],
    spool: Option<&Arc<Spool>>,
    cancel: &AtomicBool,
) -> Result<Vec<Prepared>, FormatError> {
    let budget = AtomicU64::new(stream_budget(blobs.len()));
    // Largest first: a large compressible blob begun last leaves the other cores idle while
    // one compresses it (the 2 GB catalog's 80 MB database layer: half a second of one core
    // busy, the other idle, before the plan could start).
    let mut order: Vec<u32> = (0..blobs.len() as u32).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(blobs[i as usize].size));
    let mut done: Vec<(u32, Prepared)> = order
        .into_par_iter()
        .map(|i| {
            if cancel.load(Ordering::Relaxed) {
                return Err(FormatError::Interrupted);
            }
            Ok((i, prepare_one(&blobs[i as usize], &budget, spool)?))
        })
        .collect::<Result<_, _>>()?;
    // Back in the blobs' order, in the same allocation.
    done.sort_unstable_by_key(|&(i, _)| i);
    Ok(done.into_iter().map(|(_, p)| p).collect())
}

fn prepare_one(
    blob: &SourceBlob,
    budget: &AtomicU64,
    spool: Option<&Arc<Spool>>,
) -> Result<Prepared, FormatError> {
    if blob.base.is_some() {
        return Ok(Prepared {
            encoding: Encoding::Base,
            stored_size: 0,
            kept: None,
        });
    }
    let mut file = open_checked(blob)?;
    let mut magic = [0u8; 4];
    let n = read_full(&mut file, &mut magic).map_err(FormatError::io(blob.path()))?;
    let compressed_already =
        magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd];
    let raw = Prepared {
        encoding: Encoding::Raw,
        stored_size: blob.size,
        kept: None,
    };
    if compressed_already || blob.size < 256 {
        return Ok(raw);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(FormatError::io(blob.path()))?;
    let mut stream = ZstdStream::new(file, blob)?;
    let mut head = Vec::new();
    let first = (&mut stream)
        .take(MEMORY_ONE as u64 + 1)
        .read_to_end(&mut head)
        .map_err(FormatError::io(blob.path()))? as u64;
    let in_memory = first <= MEMORY_ONE as u64
        && budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(first)
            })
            .is_ok();
    let (stored, kept) = if in_memory {
        // A stream that fits is whole: `take` stopped at its end.
        (first, Some(Kept::Memory(Arc::from(head))))
    } else {
        match spool {
            Some(spool) => spool_rest(blob, &mut stream, head, spool)?,
            None => {
                let rest =
                    io::copy(&mut stream, &mut io::sink()).map_err(FormatError::io(blob.path()))?;
                (first + rest, None)
            }
        }
    };
    stream.finish()?;
    if stored * 100 > blob.size * (100 - MIN_SAVING_PERCENT) {
        // Not worth it: what was spooled stays unused until the spool goes.
        return Ok(raw);
    }
    Ok(Prepared {
        encoding: Encoding::Zstd,
        stored_size: stored,
        kept,
    })
}

/// Writes the stream (its first bytes in `head`, the rest still to read) to the spool,
/// piece by piece; once the spool is full, the rest is only counted and the stream will be
/// made again while writing. Returns the stream's length and where it was kept.
fn spool_rest(
    blob: &SourceBlob,
    stream: &mut ZstdStream<'_>,
    head: Vec<u8>,
    spool: &Arc<Spool>,
) -> Result<(u64, Option<Kept>), FormatError> {
    let mut pieces = Vec::new();
    let mut hasher = BlockHasher::default();
    let mut total = head.len() as u64;
    let mut keeping = put(spool, &head, &mut pieces);
    hasher.update(&head);
    drop(head);
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = read_full(stream, &mut buf).map_err(FormatError::io(blob.path()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if keeping {
            keeping = put(spool, &buf[..n], &mut pieces);
            hasher.update(&buf[..n]);
        }
    }
    let kept = keeping.then(|| Kept::Spooled {
        spool: Arc::clone(spool),
        pieces: pieces.into_boxed_slice(),
        blocks: hasher.finish(),
    });
    Ok((total, kept))
}

/// Appends `bytes` to the spool, merging with the piece before when it is adjacent; false
/// when the spool is full.
fn put(spool: &Spool, bytes: &[u8], pieces: &mut Vec<(u64, u64)>) -> bool {
    let Some(offset) = spool.append(bytes) else {
        return false;
    };
    match pieces.last_mut() {
        Some((at, len)) if *at + *len == offset => *len += bytes.len() as u64,
        _ => pieces.push((offset, bytes.len() as u64)),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streams kept get what the records leave: all of it for a small bundle, less as
    /// blobs grow, never under the floor.
    #[test]
    fn kept_streams_shrink_as_the_records_grow() {
        assert_eq!(stream_budget(0), MEMORY_ALL);
        assert_eq!(stream_budget(1000), MEMORY_ALL - 128_000);
        let full_catalog = stream_budget(186_000);
        assert!(
            full_catalog < 11 << 20 && full_catalog > MEMORY_FLOOR,
            "{full_catalog}"
        );
        assert_eq!(stream_budget(10_000_000), MEMORY_FLOOR);
    }
}
