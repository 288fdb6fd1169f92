//! Where pack keeps the compressed streams that memory does not (`format_spec::pack::Spool`),
//! so each compressible blob is compressed once rather than again while it is written: on a
//! 2 GB catalog-shaped mirror that is 150 MB of zstd input, about a tenth of pack's CPU.
//!
//! The spool goes in `$TMPDIR`, else `/var/tmp` — a local disk that survives the run's
//! media being swapped, never the media themselves: a medium may be one of several the
//! operator inserts in turn, and an open spool on it would keep it from being ejected.
//! No spool (each such stream is compressed again, as before there was one) when that
//! directory is missing or is memory (tmpfs, ramfs: pack's memory is what is bounded), and
//! when it is on the same file system as an `--out` directory, it takes no more than what is
//! left there beyond the most the bundle can need, so it never makes a bundle not fit. What
//! is read back from it is checked block by block against the hashes it was written with
//! before any byte is used (format-spec).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use format_spec::pack::{SourceBlob, Spool, SPOOL_MAX, SPOOL_SHARE};
use format_spec::room::{free_space, nearest_existing};

/// The statfs `f_type` of memory file systems (linux/magic.h).
const TMPFS_MAGIC: u64 = 0x0102_1994;
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// A spool for packing `blobs` into `outs`, or `None` where there should be none (see the
/// module comment). Failing to make one is not an error: it only saves time.
pub fn open(
    outs: &[PathBuf],
    blobs: &[SourceBlob],
    chunk_size: u64,
    volume_size: u64,
) -> Option<Arc<Spool>> {
    let dir = spool_dir();
    let meta = std::fs::metadata(&dir).ok().filter(|m| m.is_dir())?;
    let fs = rustix::fs::statfs(&dir).ok()?;
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between targets
    let kind = fs.f_type as u64;
    if kind == TMPFS_MAGIC || kind == RAMFS_MAGIC {
        return None;
    }
    let free = free_space(&dir).ok()?;
    let shares_a_medium = outs
        .iter()
        .any(|out| std::fs::metadata(nearest_existing(out)).is_ok_and(|m| m.dev() == meta.dev()));
    let needed = shares_a_medium.then(|| most_needed(blobs, chunk_size, volume_size));
    let limit = limit(free, needed);
    if limit == 0 {
        return None;
    }
    Spool::new(&dir, Some(limit)).ok().map(Arc::new)
}

fn spool_dir() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new("/var/tmp").to_path_buf(),
    }
}

/// The spool's bound: a share of the free space, at most [`SPOOL_MAX`]; on a file system
/// the volumes also go to, no more than what is free beyond `needed` there either.
fn limit(free: u64, needed: Option<u64>) -> u64 {
    let share = (free / SPOOL_SHARE).min(SPOOL_MAX);
    match needed {
        Some(needed) => share.min(free.saturating_sub(needed)),
        None => share,
    }
}

/// More than the volumes and manifests of `blobs` can take: every blob stored raw, each
/// chunk with a tar header, padding and a table row, and the signed documents (the bundle
/// manifest, about 100 bytes a blob, and the index) in every one of as many volumes as
/// `volume_size` could make, and beside them.
fn most_needed(blobs: &[SourceBlob], chunk_size: u64, volume_size: u64) -> u64 {
    let data: u64 = blobs
        .iter()
        .filter(|b| b.base.is_none())
        .map(|b| b.size + (b.size / chunk_size.max(1) + 1) * 2048)
        .sum();
    // Generous: a blob's records and its share of the index, 4 KiB, in each copy.
    let documents = blobs.len() as u64 * 4096 + (1 << 20);
    let copies = data / volume_size.max(1) + 2 + 1;
    data + copies.saturating_mul(documents) + (64 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spool_never_takes_the_room_the_volumes_need() {
        // Elsewhere: a share of the free space, at most SPOOL_MAX.
        assert_eq!(limit(160 << 20, None), 10 << 20);
        assert_eq!(limit(1 << 50, None), SPOOL_MAX);
        // Beside the volumes: the share, and never more than is left beyond their need.
        assert_eq!(limit(16 << 30, Some(1 << 30)), 1 << 30);
        assert_eq!(limit(10 << 30, Some(9800 << 20)), 440 << 20);
        assert_eq!(limit(10 << 30, Some(10 << 30)), 0);
        assert_eq!(limit(10 << 30, Some(12 << 30)), 0);
        assert_eq!(limit(1 << 50, Some(1 << 30)), SPOOL_MAX);
    }

    #[test]
    fn the_most_a_bundle_needs_covers_raw_blobs_and_their_chunks() {
        let blob = |size: u64, base: bool| SourceBlob {
            digest: format_spec::digest::Digest([7; 32]),
            size,
            at: format_spec::pack::BlobPath::Whole("/m/blob".into()),
            media_type: None,
            base: base.then_some(None),
        };
        let blobs = [blob(10 << 20, false), blob(0, false), blob(1 << 30, true)];
        // 10 MiB in three chunks and an empty blob in one; the base blob is not packed.
        let data = (10 << 20) + 3 * 2048 + 2048;
        let documents = 3 * 4096 + (1 << 20);
        // In 4 MiB volumes: at most 3 of them (and the copies beside them).
        assert_eq!(
            most_needed(&blobs, 4 << 20, 4 << 20),
            data + (2 + 3) * documents + (64 << 20)
        );
        // Smaller volumes, more copies of the documents.
        assert!(most_needed(&blobs, 4 << 20, 1 << 20) > most_needed(&blobs, 4 << 20, 4 << 20));
    }
}
