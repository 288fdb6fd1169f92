//! The write loop: the selected volumes of a plan, each into the directory the caller
//! chooses, with blobs read, checked and hashed by several workers at once while one thread
//! writes; and what a run produced, or why it stopped.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::manifest_copy::write_manifest_copy;
use super::stream::{BlobStream, HashedChunk};
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

/// Each worker hands the writer at most this many chunks ahead of it.
const QUEUE: usize = 3;

/// One blob's run of consecutive chunks among those written (a job for one worker).
struct Job<'a> {
    blob: u32,
    chunks: Vec<&'a Chunk>,
}

/// What a worker hands the writer: each chunk of its job, in order, with its SHA-256.
type ChunkRx = Receiver<Result<HashedChunk, FormatError>>;

/// How many blobs are read, hashed (and compressed) at once: one per core, at least two
/// (one can wait on the disk while the other hashes).
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

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
    // Blobs are read, checked and hashed (and compressed, where sizing kept no stream) by
    // several workers at once, each on its own blob; the writer takes their chunks in plan
    // order. So both cores hash while this thread copies into the page cache, and memory
    // stays at a few chunks per worker.
    let n = workers();
    let (order_tx, order_rx) = sync_channel::<ChunkRx>(n * 2);
    let (work_tx, work_rx) = sync_channel::<(Job<'_>, SyncSender<_>)>(0);
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for job in jobs(selected) {
                let (tx, rx) = sync_channel(QUEUE);
                if order_tx.send(rx).is_err() || work_tx.send((job, tx)).is_err() {
                    return;
                }
            }
        });
        for _ in 0..n {
            let work_rx = &work_rx;
            scope.spawn(move || loop {
                let next = work_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((job, tx)) = next else { return };
                run_job(plan, sources, prepared, &job, &tx);
            });
        }
        let mut chunks = Chunks {
            order: order_rx,
            current: None,
        };
        let mut result = Ok(());
        for v in selected {
            let out = match destination(v) {
                Ok(dir) => dir,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match write_one(plan, key, &out, v, &mut chunks, progress, cancel) {
                Ok(w) => written.push(w),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Dropping the receivers stops the workers at their next chunk.
        drop(chunks);
        result
    })
}

/// The written chunks, cut into runs of one blob each.
fn jobs<'a>(selected: &'a [&'a VolumePlan]) -> impl Iterator<Item = Job<'a>> + 'a {
    let mut all = selected.iter().flat_map(|v| v.chunks.iter()).peekable();
    std::iter::from_fn(move || {
        let first = all.next()?;
        let mut job = Job {
            blob: first.blob,
            chunks: vec![first],
        };
        while let Some(next) = all.peek() {
            let last = job.chunks[job.chunks.len() - 1];
            if next.blob != job.blob || next.stream_offset != last.stream_offset + last.size {
                break;
            }
            job.chunks.push(all.next().expect("peeked"));
        }
        Some(job)
    })
}

/// Reads one job's chunks and hands them on. The blob is checked whole before its last
/// chunk is handed on, so a volume holding the end of a blob is never complete before the
/// blob proved good; a failure is handed on in place of the chunk.
fn run_job(
    plan: &Plan,
    sources: &[SourceBlob],
    prepared: &[Prepared],
    job: &Job<'_>,
    tx: &SyncSender<Result<HashedChunk, FormatError>>,
) {
    let b = job.blob as usize;
    let encoding = plan.manifest.blobs[b].encoding;
    let mut stream = match BlobStream::open(
        &sources[b],
        &prepared[b],
        encoding,
        job.chunks[0].stream_offset,
    ) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    let (last, before) = job.chunks.split_last().expect("a job has a chunk");
    for c in before {
        let item = stream.next_chunk(c.size);
        let failed = item.is_err();
        if tx.send(item).is_err() || failed {
            return;
        }
    }
    let item = stream
        .next_chunk(last.size)
        .and_then(|chunk| stream.finish().map(|()| chunk));
    let _ = tx.send(item);
}

/// The writer's side: the chunks of the jobs, in plan order.
struct Chunks {
    order: Receiver<ChunkRx>,
    current: Option<ChunkRx>,
}

impl Chunks {
    fn next(&mut self) -> Result<HashedChunk, FormatError> {
        let stopped = || FormatError::Plan("chunk reader stopped (please report this)".into());
        loop {
            if self.current.is_none() {
                self.current = Some(self.order.recv().map_err(|_| stopped())?);
            }
            match self.current.as_ref().expect("set above").recv() {
                Ok(item) => return item,
                // That job is done: its successor has the next chunk.
                Err(_) => self.current = None,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    plan: &Plan,
    key: &PrivateKey,
    out: &Path,
    v: &VolumePlan,
    chunks_in: &mut Chunks,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
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
            let (data, sha256) = chunks_in.next()?;
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
    // fsync, rename (refusing a link planted at the final name meanwhile), fsync the directory.
    partial.commit().map_err(FormatError::io(&path))?;
    Ok(Written {
        volume: v.volume,
        path,
        size: v.file_size,
    })
}
