//! The write loop: the selected volumes of a plan, each into the directory the caller
//! chooses, with blobs read, checked and hashed by several workers at once while one thread
//! writes; and what a run produced, or why it stopped.

use std::any::Any;
use std::fs;
use std::io::BufWriter;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::buffers::Buffers;
use super::manifest_copy::write_manifest_copy;
use super::stream::{BlobStream, HashedChunk};
use super::tar::{Syncer, TarWriter};
use super::{Prepared, SourceBlob};
use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PrivateKey;
use crate::plan::{Plan, PlanChunk, VolumePlan};
use crate::table::{FileRef, VolumeTable};
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
    // Each worker's queue and the chunk it fills, and the one the writer writes.
    let spare = Buffers::new(workers() * (QUEUE + 1) + 1);
    let result = write_selected(
        plan,
        key,
        destination,
        &selected,
        &spare,
        &|job, tx| run_job(plan, sources, prepared, &spare, job, tx),
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
    chunks: Vec<&'a PlanChunk>,
}

/// What a worker hands the writer: each chunk of its job, in order, with its SHA-256.
type ChunkRx = Receiver<Result<HashedChunk, FormatError>>;
type ChunkTx = SyncSender<Result<HashedChunk, FormatError>>;

/// A job as the writer waits for it: the chunks that must come through `rx`, so that a
/// worker that stopped before its job's last chunk (a panic, an early return) is an error
/// rather than the next job's chunk taken for this one's.
struct Pending {
    rx: ChunkRx,
    blob: u32,
    /// Where the next chunk starts in the blob's stored stream.
    next: u64,
    /// Where the job's last chunk ends.
    end: u64,
}

/// What reads one job's chunks and hands them on (`run_job`; tests put a faulty one here).
type RunJob<'a> = dyn Fn(&Job<'_>, &ChunkTx) + Sync + 'a;

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
    key: &PrivateKey,
    destination: &mut dyn FnMut(&VolumePlan) -> Result<PathBuf, FormatError>,
    selected: &[&VolumePlan],
    spare: &Buffers,
    run: &RunJob<'_>,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
    written: &mut Vec<Written>,
) -> Result<(), FormatError> {
    // Blobs are read, checked and hashed (and compressed, where sizing kept no stream) by
    // several workers at once, each on its own blob; the writer takes their chunks in plan
    // order. So both cores hash while this thread copies into the page cache, and memory
    // stays at a few chunks per worker.
    let n = workers();
    let (order_tx, order_rx) = sync_channel::<Pending>(n * 2);
    let (work_tx, work_rx) = sync_channel::<(Job<'_>, ChunkTx)>(0);
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for job in jobs(selected) {
                let (tx, rx) = sync_channel(QUEUE);
                let (first, last) = (job.chunks[0], job.chunks[job.chunks.len() - 1]);
                let pending = Pending {
                    rx,
                    blob: job.blob,
                    next: first.stream_offset,
                    end: last.stream_offset + last.size,
                };
                if order_tx.send(pending).is_err() || work_tx.send((job, tx)).is_err() {
                    return;
                }
            }
        });
        for _ in 0..n {
            let work_rx = &work_rx;
            scope.spawn(move || loop {
                let next = work_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((job, tx)) = next else { return };
                // A panic stays in this job: the writer gets an error naming it in place of
                // the job's next chunk, and the scope does not re-raise it.
                let ran = panic::catch_unwind(AssertUnwindSafe(|| run(&job, &tx)));
                if let Err(payload) = ran {
                    let _ = tx.send(Err(worker_panicked(plan, job.blob, &*payload)));
                }
            });
        }
        let mut chunks = Chunks {
            order: order_rx,
            current: None,
            spare,
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
    spare: &Buffers,
    job: &Job<'_>,
    tx: &ChunkTx,
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
        let item = stream.next_chunk(spare.take(c.size as usize));
        let failed = item.is_err();
        if tx.send(item).is_err() || failed {
            return;
        }
    }
    let item = stream
        .next_chunk(spare.take(last.size as usize))
        .and_then(|chunk| stream.finish().map(|()| chunk));
    let _ = tx.send(item);
}

/// What a worker that panicked leaves in place of its job's next chunk.
fn worker_panicked(plan: &Plan, blob: u32, payload: &(dyn Any + Send)) -> FormatError {
    let why = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    FormatError::Plan(format!(
        "reading blob {} for the volumes failed: {why} (please report this)",
        plan.manifest.blobs[blob as usize].digest
    ))
}

/// The writer's side: the chunks of the jobs, in plan order, and where their buffers go
/// back once written.
struct Chunks<'a> {
    order: Receiver<Pending>,
    current: Option<Pending>,
    spare: &'a Buffers,
}

impl Chunks<'_> {
    /// The next chunk, which must be `want` (of the blob `digest`, for the error). A job
    /// that ends before its last chunk, a chunk of the wrong size, or a job that is not
    /// the one `want` belongs to is an error: the volume is never written from the wrong
    /// bytes, whatever became of a worker.
    fn next(&mut self, want: &PlanChunk, digest: &Digest) -> Result<HashedChunk, FormatError> {
        let bug =
            |what: String| FormatError::Plan(format!("blob {digest}: {what} (please report this)"));
        let job = match &mut self.current {
            Some(job) => job,
            None => {
                let job = self.order.recv().map_err(|_| {
                    bug(format!("no job holds its chunk at {}", want.stream_offset))
                })?;
                self.current.insert(job)
            }
        };
        if job.blob != want.blob || job.next != want.stream_offset {
            return Err(bug(format!(
                "the writer wants its chunk at {}, the job gives blob {}'s at {}",
                want.stream_offset, job.blob, job.next
            )));
        }
        let (data, sha256) = match job.rx.recv() {
            Ok(item) => item?,
            // The worker is gone without handing on the whole job.
            Err(_) => {
                return Err(bug(format!(
                    "its reader stopped before the chunk at {} (the job runs to {})",
                    job.next, job.end
                )))
            }
        };
        if data.len() as u64 != want.size {
            return Err(bug(format!(
                "its chunk at {} is {} bytes, planned {}",
                want.stream_offset,
                data.len(),
                want.size
            )));
        }
        job.next += want.size;
        if job.next == job.end {
            // The job is done: its successor has the next chunk.
            self.current = None;
        }
        Ok((data, sha256))
    }
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    plan: &Plan,
    key: &PrivateKey,
    out: &Path,
    v: &VolumePlan,
    chunks_in: &mut Chunks<'_>,
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
        let index_bytes = plan.index.bytes();
        let index_sig = key.sign(&index_bytes);
        w.entry(volume::bundle_name(m.ferry_bundle), &plan.manifest_bytes)?;
        w.entry(volume::bundle_sig_name(m.ferry_bundle), &bundle_sig)?;
        w.entry(volume::INDEX_NAME, &index_bytes)?;
        drop(index_bytes);
        w.entry(volume::INDEX_SIG_NAME, &index_sig)?;
        let header = VolumeTable {
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
                digest: plan.index.digest(),
                size: plan.index.len(),
            },
            chunks: Vec::new(),
        };
        let mut table = header.bytes_chunk_by_chunk(v.table_size as usize);
        for c in &v.chunks {
            if cancel.load(Ordering::Relaxed) {
                return Err(FormatError::Interrupted);
            }
            let blob = &m.blobs[c.blob as usize];
            let (data, sha256) = chunks_in.next(c, &blob.digest)?;
            debug_assert_eq!(w.offset, c.offset);
            let chunk = c.hashed(sha256);
            w.entry(
                &volume::chunk_name(&blob.digest, blob.encoding, c.stream_offset),
                &data,
            )?;
            progress(data.len() as u64);
            chunks_in.spare.give(data);
            table.push(&chunk);
        }
        let table_bytes = table.finish();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::pack::{make_plan, prepare, Options, Source};

    fn chunk(blob: u32, stream_offset: u64, size: u64) -> PlanChunk {
        PlanChunk {
            blob,
            stream_offset,
            size,
            offset: 0,
        }
    }

    fn hashed(size: u64) -> Result<HashedChunk, FormatError> {
        let data = vec![7u8; size as usize];
        let sha256 = Digest::of(&data);
        Ok((data, sha256))
    }

    /// Two jobs queued as the feeder queues them: blob 0 in two chunks of 10 bytes, whose
    /// worker hands on `sent` of them and is gone, then blob 1 in one chunk of 5 bytes.
    fn chunks_after(sent: &[u64]) -> Chunks<'static> {
        static SPARE: Buffers = Buffers::new(4);
        let (order_tx, order) = sync_channel(4);
        let (tx, rx) = sync_channel(4);
        for &size in sent {
            tx.send(hashed(size)).unwrap();
        }
        drop(tx);
        let job = |rx, blob, end| Pending {
            rx,
            blob,
            next: 0,
            end,
        };
        order_tx.send(job(rx, 0, 20)).unwrap();
        let (tx, rx) = sync_channel(4);
        tx.send(hashed(5)).unwrap();
        order_tx.send(job(rx, 1, 5)).unwrap();
        Chunks {
            order,
            current: None,
            spare: &SPARE,
        }
    }

    #[test]
    fn a_job_that_ends_early_is_an_error_not_the_next_jobs_chunk() {
        let digest = Digest::of(b"blob 0");
        let (a0, a1, b0) = (chunk(0, 0, 10), chunk(0, 10, 10), chunk(1, 0, 5));

        // Whole: each chunk comes in order, then the next job's.
        let mut chunks = chunks_after(&[10, 10]);
        for want in [&a0, &a1, &b0] {
            let (data, _) = chunks.next(want, &digest).unwrap();
            assert_eq!(data.len() as u64, want.size);
        }

        // Its worker stopped after the first chunk: the second is an error naming the blob
        // and where it stopped, not blob 1's chunk.
        let mut chunks = chunks_after(&[10]);
        chunks.next(&a0, &digest).unwrap();
        let e = chunks.next(&a1, &digest).unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, FormatError::Plan(_)), "{e:?}");
        assert!(
            message.contains(&digest.to_string())
                && message.contains("stopped before the chunk at 10"),
            "{message}"
        );

        // A chunk of another size than planned is an error too.
        let mut chunks = chunks_after(&[10, 9]);
        chunks.next(&a0, &digest).unwrap();
        let e = chunks.next(&a1, &digest).unwrap_err().to_string();
        assert!(e.contains("is 9 bytes, planned 10"), "{e}");

        // So is the writer asking for a chunk the queued job does not hold.
        let mut chunks = chunks_after(&[10, 10]);
        let e = chunks.next(&b0, &digest).unwrap_err().to_string();
        assert!(e.contains("the job gives blob 0's at 0"), "{e}");
    }

    /// gzip-looking noise (stored raw, so sizing compresses nothing).
    fn gzip(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        let mut b = vec![0x1f, 0x8b, 0x08, 0x00];
        b.extend((0..n).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        }));
        b
    }

    /// A worker that hands on one chunk of a blob of several and then returns (or panics):
    /// the write fails with an error naming the blob, and leaves no volume.
    #[test]
    fn a_worker_that_stops_mid_blob_fails_the_write_and_leaves_no_volume() {
        let t = tempfile::tempdir().unwrap();
        let blobs = [gzip(1, 3_000), gzip(2, 200_000), gzip(3, 5_000)]
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let path = t.path().join(format!("blob{i}"));
                fs::write(&path, bytes).unwrap();
                SourceBlob {
                    digest: Digest::of(bytes),
                    size: bytes.len() as u64,
                    at: path.into(),
                    media_type: None,
                    base: None,
                }
            })
            .collect();
        let source = Source {
            source_layout: "oci".into(),
            blobs,
            images: Vec::new(),
            tree: Vec::new(),
            index_json: crate::pack::IndexBytes::new(b"{}"),
        };
        let key = PrivateKey::generate().unwrap();
        let cancel = AtomicBool::new(false);
        let prepared = prepare(&source.blobs, &cancel).unwrap();
        let options = Options {
            volume_size: 8 << 20,
            chunk_size: 64 << 10,
            created: 1_700_000_000,
            creator: "test".into(),
            bundle_format: crate::manifest::BUNDLE_VERSION,
        };
        let plan = make_plan(&source, &prepared, &options, &key).unwrap();
        let long = plan.volumes[0]
            .chunks
            .iter()
            .map(|c| c.blob)
            .max_by_key(|&b| {
                plan.volumes[0]
                    .chunks
                    .iter()
                    .filter(|c| c.blob == b)
                    .count()
            });
        let long = long.unwrap();
        let digest = plan.manifest.blobs[long as usize].digest.to_string();
        let selected: Vec<&VolumePlan> = plan.volumes.iter().collect();
        let spare = Buffers::new(4);
        let write = |out: &Path, run: &RunJob<'_>| {
            let mut written = Vec::new();
            let result = write_selected(
                &plan,
                &key,
                &mut |_| Ok(out.to_path_buf()),
                &selected,
                &spare,
                run,
                &|_| {},
                &cancel,
                &mut written,
            );
            let left = fs::read_dir(out).map(|d| d.count()).unwrap_or(0);
            (result, written.len(), left)
        };
        let real =
            |job: &Job<'_>, tx: &ChunkTx| run_job(&plan, &source.blobs, &prepared, &spare, job, tx);

        // The real workers write the one volume.
        let (result, written, left) = write(&t.path().join("whole"), &real);
        result.unwrap();
        assert_eq!((written, left), (1, 1));

        for panics in [false, true] {
            let faulty = |job: &Job<'_>, tx: &ChunkTx| {
                if job.blob != long {
                    return real(job, tx);
                }
                assert!(job.chunks.len() > 1, "{} chunks", job.chunks.len());
                let _ = tx.send(hashed(job.chunks[0].size));
                if panics {
                    panic!("injected fault");
                }
            };
            let out = t.path().join(format!("short-{panics}"));
            let (result, written, left) = write(&out, &faulty);
            let e = result.unwrap_err().to_string();
            let why = if panics {
                "injected fault"
            } else {
                "stopped before the chunk at 65536"
            };
            assert!(e.contains(&digest) && e.contains(why), "{e}");
            assert_eq!(
                (written, left),
                (0, 0),
                "a volume left in {}",
                out.display()
            );
        }
    }
}
