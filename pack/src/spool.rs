//! Where pack keeps the compressed streams that memory does not (`format_spec::pack::Spool`),
//! so each compressible blob is compressed once rather than again while it is written: on a
//! 2 GB catalog-shaped mirror that is 150 MB of zstd input, about a tenth of pack's CPU.
//!
//! The spool goes in `$TMPDIR`, else `/var/tmp` — a local disk that survives the run's
//! media being swapped, never the media themselves: a medium may be one of several the
//! operator inserts in turn, and an open spool on it would keep it from being ejected.
//! No spool (each such stream is compressed again, as before there was one) when that
//! directory is missing or is memory (tmpfs, ramfs: pack's memory is what is bounded), and
//! when it is on the same file system as an `--out` directory, it only takes what is left
//! there beyond the most the bundle can need, so it never makes a bundle not fit. What is
//! read back from it is checked against its hash before it is signed (format-spec).

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
pub fn open(outs: &[PathBuf], blobs: &[SourceBlob], chunk_size: u64) -> Option<Arc<Spool>> {
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
    let limit = limit(
        free,
        shares_a_medium.then(|| most_needed(blobs, chunk_size)),
    );
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
/// the volumes also go to, only what is free beyond `needed` there.
fn limit(free: u64, needed: Option<u64>) -> u64 {
    let room = match needed {
        Some(needed) => free.saturating_sub(needed),
        None => free / SPOOL_SHARE,
    };
    room.min(SPOOL_MAX)
}

/// More than the volumes and manifests of `blobs` can take: every blob stored raw, each
/// chunk with a tar header, padding and a table row, each blob with its manifest records,
/// and room for the signed documents.
fn most_needed(blobs: &[SourceBlob], chunk_size: u64) -> u64 {
    blobs
        .iter()
        .filter(|b| b.base.is_none())
        .map(|b| b.size + (b.size / chunk_size.max(1) + 1) * 2048 + 4096)
        .sum::<u64>()
        + (64 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spool_never_takes_the_room_the_volumes_need() {
        // Elsewhere: a share of the free space, at most SPOOL_MAX.
        assert_eq!(limit(160 << 20, None), 10 << 20);
        assert_eq!(limit(1 << 50, None), SPOOL_MAX);
        // Beside the volumes: only what is left beyond the most they need.
        assert_eq!(limit(10 << 30, Some(9 << 30)), 1 << 30);
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
        let need = most_needed(&blobs, 4 << 20);
        // 10 MiB in three chunks and an empty blob in one; the base blob is not packed.
        assert_eq!(
            need,
            (10 << 20) + 3 * 2048 + 4096 + 2048 + 4096 + (64 << 20)
        );
    }
}
