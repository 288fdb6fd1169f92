//! The write loop: the selected volumes of a plan, each into the directory the caller
//! chooses, with reading (and hashing the blob), hashing the chunk and writing on their own
//! threads; and what a run produced, or why it stopped.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use sha2::{Digest as _, Sha256};

use super::manifest_copy::write_manifest_copy;
use super::stream::StreamReader;
use super::tar::{Syncer, TarWriter};
use super::{Prepared, SourceBlob};
use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PrivateKey;
use crate::plan::{Plan, VolumePlan};
use crate::table::{Chunk, FileRef, VolumeTable};
use crate::volume;

/// What one volume write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub volume: u32,
    pub path: PathBuf,
    pub size: u64,
}

/// Why writing stopped, with the volumes that were complete (renamed to their final
/// names) by then, so the caller can say what is done and how to go on.
#[derive(Debug)]
pub struct Stopped {
    pub error: FormatError,
    pub written: Vec<Written>,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Stopped {}

/// Writes the volumes of `plan` (all of them, or those in `only`), each into the directory
/// `destination` chooses for it (one mount point per disk, say), and the standalone manifest
/// beside every volume written. Each volume is written under an exclusive random-named
/// temporary (durable-file) and renamed when complete; on error, or when `cancel` is set
/// (checked between chunks), the temporary is removed. If the mirror itself proved bad, so
/// are the volumes this run completed: they belong to a bundle that cannot be finished.
#[allow(clippy::too_many_arguments)]
pub fn write_volumes(
    plan: &Plan,
    sources: &[SourceBlob],
    prepared: &[Prepared],
    key: &PrivateKey,
    destination: &mut dyn FnMut(&VolumePlan) -> Result<PathBuf, FormatError>,
    only: &[u32],
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<Vec<Written>, Stopped> {
    let stopped = |error, written| Stopped { error, written };
    let selected: Vec<&VolumePlan> = plan
        .volumes
        .iter()
        .filter(|v| only.is_empty() || only.contains(&v.volume))
        .collect();
    if let Err(e) = plan.check_only(only) {
        return Err(stopped(e, Vec::new()));
    }
    let mut written = Vec::new();
    let result = write_selected(
        plan,
        sources,
        prepared,
        key,
        destination,
        &selected,
        progress,
        cancel,
        &mut written,
    );
    if let Err(e) = result {
        if matches!(
            e,
            FormatError::InputDigestMismatch { .. } | FormatError::InputChanged { .. }
        ) {
            for w in &written {
                let _ = fs::remove_file(&w.path);
            }
            written.clear();
        } else {
            // The complete volumes stay usable: give them their standalone manifest too
            // (best effort: the disk may be the very thing that is full).
            for out in dirs_of(&written) {
                let _ = write_manifest_copy(plan, key, out);
            }
        }
        return Err(stopped(e, written));
    }
    for out in dirs_of(&written) {
        if let Err(e) = write_manifest_copy(plan, key, out) {
            return Err(stopped(e, written));
        }
    }
    Ok(written)
}

fn dirs_of(written: &[Written]) -> Vec<&Path> {
    let mut dirs: Vec<&Path> = written.iter().filter_map(|w| w.path.parent()).collect();
    dirs.dedup();
    dirs
}

/// Chunk bytes travel from the reading thread to the writing thread through a short queue:
/// reading, hashing and writing overlap while memory stays at a few chunks.
const QUEUE: usize = 3;

#[allow(clippy::too_many_arguments)]
fn write_selected(
    plan: &Plan,
    sources: &[SourceBlob],
    prepared: &[Prepared],
    key: &PrivateKey,
    destination: &mut dyn FnMut(&VolumePlan) -> Result<PathBuf, FormatError>,
    selected: &[&VolumePlan],
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
    written: &mut Vec<Written>,
) -> Result<(), FormatError> {
    // Three stages on their own threads — read (and hash the blob), hash the chunk, write —
    // so both cores work while the kernel copies into the page cache.
    let (tx, raw_rx) = sync_channel::<Result<Vec<u8>, FormatError>>(QUEUE);
    let (hashed_tx, rx) = sync_channel::<Result<(Vec<u8>, Digest), FormatError>>(QUEUE);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for item in raw_rx {
                let hashed = item.map(|data| {
                    let d = Digest(Sha256::digest(&data).into());
                    (data, d)
                });
                if hashed_tx.send(hashed).is_err() {
                    return;
                }
            }
        });
        let producer = scope.spawn(move || {
            let mut reader = StreamReader::new(plan, sources, prepared);
            for v in selected {
                for c in &v.chunks {
                    let item = reader.read_chunk(c);
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            }
            // A blob that goes on into a volume this run does not write is still checked
            // whole; the writer waits for this verdict before it renames the last volume.
            if let Some(open) = reader.current.take() {
                let source = &sources[open.blob as usize];
                let verdict = open.drain(source).map(|()| Vec::new());
                let _ = tx.send(verdict);
            } else {
                let _ = tx.send(Ok(Vec::new()));
            }
        });
        let mut result = Ok(());
        for (i, v) in selected.iter().enumerate() {
            let last = i + 1 == selected.len();
            let out = match destination(v) {
                Ok(dir) => dir,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match write_one(plan, key, &out, v, &rx, progress, cancel, last) {
                Ok(w) => written.push(w),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(rx);
        let _ = producer.join();
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    plan: &Plan,
    key: &PrivateKey,
    out: &Path,
    v: &VolumePlan,
    rx: &std::sync::mpsc::Receiver<Result<(Vec<u8>, Digest), FormatError>>,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
    last: bool,
) -> Result<Written, FormatError> {
    let m = &plan.manifest;
    let name = volume::volume_file_name(&m.bundle_id, v.volume, m.volume_count);
    fs::create_dir_all(out).map_err(FormatError::io(out))?;
    let path = out.join(&name);
    // Exclusive, random-named, never through a link; removed when dropped uncommitted,
    // which is every way out of this function but the last line.
    let mut partial = durable_file::Partial::create(&path).map_err(FormatError::io(&path))?;
    let tmp = partial.path().to_path_buf();
    {
        let file = partial.file();
        let syncer = Syncer::start(file);
        let mut w = TarWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            mtime: m.created,
            path: &tmp,
            syncer,
            synced_at: 0,
        };
        let bundle_sig = key.sign(&plan.manifest_bytes);
        let index_sig = key.sign(&plan.index_bytes);
        w.entry(volume::bundle_name(m.ferry_bundle), &plan.manifest_bytes)?;
        w.entry(volume::bundle_sig_name(m.ferry_bundle), &bundle_sig)?;
        w.entry(volume::INDEX_NAME, &plan.index_bytes)?;
        w.entry(volume::INDEX_SIG_NAME, &index_sig)?;
        let mut chunks = Vec::with_capacity(v.chunks.len());
        for c in &v.chunks {
            if cancel.load(Ordering::Relaxed) {
                return Err(FormatError::Interrupted);
            }
            let (data, sha256) = rx
                .recv()
                .map_err(|_| FormatError::Plan("chunk reader stopped".into()))??;
            debug_assert_eq!(data.len() as u64, c.size);
            debug_assert_eq!(w.offset, c.offset);
            let blob = &m.blobs[c.blob as usize];
            let chunk = Chunk { sha256, ..*c };
            w.entry(
                &volume::chunk_name(&blob.digest, blob.encoding, c.stream_offset),
                &data,
            )?;
            progress(data.len() as u64);
            chunks.push(chunk);
        }
        let table = VolumeTable {
            // The table's version is its bundle's (SPEC.md §5.4).
            ferry_volume: m.ferry_bundle,
            bundle_id: m.bundle_id,
            volume: v.volume,
            volume_count: m.volume_count,
            bundle_manifest: FileRef {
                digest: Digest::of(&plan.manifest_bytes),
                size: plan.manifest_bytes.len() as u64,
            },
            index: FileRef {
                digest: Digest::of(&plan.index_bytes),
                size: plan.index_bytes.len() as u64,
            },
            chunks,
        };
        let table_bytes = table.to_bytes();
        if table_bytes.len() as u64 != v.table_size || w.offset != v.table_offset {
            return Err(FormatError::Plan(format!(
                "volume {} table is {} bytes at {}, planned {} at {} (please report this)",
                v.volume,
                table_bytes.len(),
                w.offset,
                v.table_size,
                v.table_offset
            )));
        }
        w.entry(&volume::table_name(v.volume), &table_bytes)?;
        w.entry(&volume::table_sig_name(v.volume), &key.sign(&table_bytes))?;
        w.entry(
            volume::TRAILER_NAME,
            &volume::trailer(v.table_offset, v.table_size),
        )?;
        w.write(&[0u8; volume::END_OF_ARCHIVE as usize])?;
        if let Some(s) = w.syncer.take() {
            s.finish();
        }
        w.out
            .into_inner()
            .map_err(|e| FormatError::io(&tmp)(e.into_error()))?;
        if w.offset != v.file_size {
            return Err(FormatError::Plan(format!(
                "volume {} is {} bytes, planned {}",
                v.volume, w.offset, v.file_size
            )));
        }
    }
    if last {
        // The reader's verdict on a blob continuing past this volume (see write_selected).
        rx.recv()
            .map_err(|_| FormatError::Plan("chunk reader stopped".into()))??;
    }
    // fsync, rename (refusing a link planted at the final name meanwhile), fsync the directory.
    partial.commit().map_err(FormatError::io(&path))?;
    Ok(Written {
        volume: v.volume,
        path,
        size: v.file_size,
    })
}
