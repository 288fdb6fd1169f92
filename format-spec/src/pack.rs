//! Writing a bundle (SPEC.md §5): deciding each blob's encoding, planning, and writing
//! volumes under temporary names, renamed only when complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::SystemTime;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PrivateKey;
use crate::manifest::{Blob, BundleManifest, Encoding, Image, TreeEntry, BUNDLE_VERSION};
use crate::order::Candidate;
use crate::plan::{plan, Plan, VolumePlan};
use crate::table::{Chunk, FileRef, VolumeTable, TABLE_VERSION};
use crate::volume::{self, entry_len, BLOCK};

/// Default chunk size: small enough to locate damage and bound memory, large enough that
/// tar headers and table entries cost under 0.02%.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;
/// zstd level for compressible blobs: level 3 is zstd's default and runs at several
/// hundred MB/s per core; higher levels cost more time than the media they save.
pub const ZSTD_LEVEL: i32 = 3;
/// zstd must save at least this share (in percent) to be used (SPEC.md §5.5).
const MIN_SAVING_PERCENT: u64 = 5;
const READ_BUFFER: usize = 1 << 20;

/// A blob to pack, read from `path`.
#[derive(Debug, Clone)]
pub struct SourceBlob {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
    pub media_type: Option<String>,
    /// Set for a blob the base already holds (`--base`): not packed; the original
    /// repository path of an image that held it, when known.
    pub base: Option<Option<String>>,
}

/// Everything ferry-pack read from a mirror, in pack order.
#[derive(Debug, Clone)]
pub struct Source {
    pub source_layout: String,
    pub blobs: Vec<SourceBlob>,
    pub images: Vec<Image>,
    pub tree: Vec<TreeEntry>,
    /// `ferry/index.json`: the OCI index of every image.
    pub index_json: Vec<u8>,
}

impl Source {
    /// The newest modification time of any file packed: the bundle's time when
    /// SOURCE_DATE_EPOCH is not set, so packing the same mirror twice gives the same bytes.
    pub fn newest_mtime(&self) -> u64 {
        self.blobs
            .iter()
            .filter_map(|b| std::fs::metadata(&b.path).ok()?.modified().ok())
            .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .max()
            .unwrap_or(0)
    }

    /// Other files among `files` (the mirror's tree) that claim to hold a packed blob —
    /// copies in other repositories where the mirror did not hard-link — each distinct file
    /// once, so that every file the bundle stands for is re-hashed ([`check_copies`]), not
    /// only the copy that is packed.
    pub fn other_copies(&self, files: &[Candidate]) -> Vec<SourceBlob> {
        use std::os::unix::fs::MetadataExt;
        let inode = |p: &Path| fs::metadata(p).ok().map(|md| (md.dev(), md.ino()));
        let mut seen: std::collections::HashSet<(u64, u64)> =
            self.blobs.iter().filter_map(|b| inode(&b.path)).collect();
        let by_digest: std::collections::HashMap<Digest, &SourceBlob> =
            self.blobs.iter().map(|b| (b.digest, b)).collect();
        let mut copies = Vec::new();
        for f in files {
            let Some(packed) = by_digest.get(&f.digest) else {
                continue;
            };
            if packed.path == f.path || !inode(&f.path).is_some_and(|i| seen.insert(i)) {
                continue;
            }
            copies.push(SourceBlob {
                path: f.path.clone(),
                ..(*packed).clone()
            });
        }
        copies
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub volume_size: u64,
    pub chunk_size: u64,
    pub created: u64,
    pub creator: String,
}

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

/// Re-hashes files that hold the same blob as a packed one (copies the mirror did not
/// hard-link), both cores at once; a copy that differs fails the pack naming the file.
pub fn check_copies(copies: &[SourceBlob]) -> Result<(), FormatError> {
    copies.par_iter().try_for_each(|blob| {
        let file = open_checked(blob)?;
        let mut hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            count: 0,
        };
        io::copy(&mut hashing, &mut io::sink()).map_err(FormatError::io(&blob.path))?;
        check_digest(blob, hashing.hasher, hashing.count)
    })
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

fn open_checked(blob: &SourceBlob) -> Result<File, FormatError> {
    let file = File::open(&blob.path).map_err(FormatError::io(&blob.path))?;
    let len = file.metadata().map_err(FormatError::io(&blob.path))?.len();
    if len != blob.size {
        return Err(FormatError::InputChanged {
            path: blob.path.clone(),
        });
    }
    Ok(file)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hashes what passes through, so a blob's digest is checked on the read that packs it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The one way a blob's zstd stream is made, used both to size it and to write it, so the
/// two agree byte for byte.
struct ZstdStream<'a> {
    encoder: zstd::stream::read::Encoder<'static, io::BufReader<HashingReader<File>>>,
    blob: &'a SourceBlob,
}

impl<'a> ZstdStream<'a> {
    fn new(file: File, blob: &'a SourceBlob) -> Result<ZstdStream<'a>, FormatError> {
        let hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            count: 0,
        };
        let reader = io::BufReader::with_capacity(READ_BUFFER, hashing);
        let encoder = zstd::stream::read::Encoder::with_buffer(reader, ZSTD_LEVEL)
            .map_err(FormatError::io(&blob.path))?;
        Ok(ZstdStream { encoder, blob })
    }

    /// After the stream is drained: checks the input was exactly the blob.
    fn finish(self) -> Result<(), FormatError> {
        let hashing = self.encoder.finish().into_inner();
        check_digest(self.blob, hashing.hasher, hashing.count)
    }
}

impl Read for ZstdStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.encoder.read(buf)
    }
}

fn check_digest(blob: &SourceBlob, hasher: Sha256, count: u64) -> Result<(), FormatError> {
    let actual = Digest(hasher.finalize().into());
    if count != blob.size {
        return Err(FormatError::InputChanged {
            path: blob.path.clone(),
        });
    }
    if actual != blob.digest {
        return Err(FormatError::InputDigestMismatch {
            path: blob.path.clone(),
            digest: blob.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Builds the plan: the manifest, the index and where every chunk goes.
pub fn make_plan(
    source: &Source,
    prepared: &[Prepared],
    options: &Options,
    key: &PrivateKey,
) -> Result<Plan, FormatError> {
    let blobs = source
        .blobs
        .iter()
        .zip(prepared)
        .map(|(b, p)| Blob {
            digest: b.digest,
            size: b.size,
            encoding: p.encoding,
            stored_size: p.stored_size,
            first_volume: 1,
            last_volume: 1,
            media_type: b.media_type.clone(),
            at: b.base.clone().flatten(),
        })
        .collect();
    let manifest = BundleManifest {
        ferry_bundle: BUNDLE_VERSION,
        bundle_id: Digest([0; 32]),
        creator: options.creator.clone(),
        created: options.created,
        source_layout: source.source_layout.clone(),
        key: key.public().fingerprint(),
        volume_size: options.volume_size,
        volume_count: 1,
        chunk_size: options.chunk_size,
        index_json: Digest::of(&source.index_json),
        blobs,
        images: source.images.clone(),
        tree: source.tree.clone(),
    };
    plan(manifest, source.index_json.clone(), options.volume_size)
}

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

/// Bytes the standalone manifest and its signature take on each medium.
pub fn manifest_copy_size(plan: &Plan) -> u64 {
    plan.manifest_bytes.len() as u64 + crate::key::SIGNATURE_LEN as u64
}

/// The standalone `ferry-<id>.bundle.json` and its signature, beside the volumes. A copy
/// already there with the same bytes is left as it is (a rerun on a full medium).
pub fn write_manifest_copy(plan: &Plan, key: &PrivateKey, out: &Path) -> Result<(), FormatError> {
    let name = volume::manifest_file_name(&plan.manifest.bundle_id);
    let sig = key.sign(&plan.manifest_bytes);
    for (path, bytes) in [
        (out.join(&name), &plan.manifest_bytes[..]),
        (out.join(format!("{name}.sig")), &sig[..]),
    ] {
        durable_file::refuse_symlink(&path).map_err(FormatError::io(&path))?;
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        durable_file::write(&path, bytes).map_err(FormatError::io(&path))?;
    }
    Ok(())
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
        w.entry(volume::BUNDLE_NAME, &plan.manifest_bytes)?;
        w.entry(volume::BUNDLE_SIG_NAME, &bundle_sig)?;
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
            ferry_volume: TABLE_VERSION,
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

struct TarWriter<'a> {
    out: BufWriter<&'a mut File>,
    offset: u64,
    mtime: u64,
    path: &'a Path,
    syncer: Option<Syncer>,
    synced_at: u64,
}

/// Starts writing a volume back to the medium while it is still being written, so the
/// final `fsync` (a volume is durable before it is renamed complete) finds little left to do.
const SYNC_EVERY: u64 = 32 << 20;

struct Syncer {
    tx: std::sync::mpsc::SyncSender<()>,
    handle: std::thread::JoinHandle<()>,
}

impl Syncer {
    fn start(file: &File) -> Option<Syncer> {
        let clone = file.try_clone().ok()?;
        // A queue of one: a request while a sync runs is dropped, not queued.
        let (tx, rx) = sync_channel::<()>(1);
        let handle = std::thread::spawn(move || {
            for () in rx {
                let _ = clone.sync_data();
            }
        });
        Some(Syncer { tx, handle })
    }

    fn poke(&self) {
        let _ = self.tx.try_send(());
    }

    fn finish(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}

impl TarWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.out
            .write_all(bytes)
            .map_err(FormatError::io(self.path))?;
        self.offset += bytes.len() as u64;
        if self.offset - self.synced_at >= SYNC_EVERY {
            self.synced_at = self.offset;
            if let Some(s) = &self.syncer {
                s.poke();
            }
        }
        Ok(())
    }

    fn entry(&mut self, name: &str, data: &[u8]) -> Result<(), FormatError> {
        let size = data.len() as u64;
        self.write(&volume::header(name, size, self.mtime))?;
        self.write(data)?;
        let pad = (entry_len(size) - BLOCK - size) as usize;
        self.write(&[0u8; BLOCK as usize][..pad])
    }
}

/// Produces the stored stream of each blob in plan order. A blob's stream continues from
/// one chunk to the next (and across volumes); writing a single volume starts a stream
/// mid-way by seeking (raw) or by compressing and discarding the beginning (zstd).
struct StreamReader<'a> {
    plan: &'a Plan,
    sources: &'a [SourceBlob],
    prepared: &'a [Prepared],
    current: Option<OpenStream<'a>>,
}

struct OpenStream<'a> {
    blob: u32,
    pos: u64,
    kind: StreamKind<'a>,
    modified: Option<SystemTime>,
}

/// Every stream hashes its blob from the first byte, even when writing starts mid-blob
/// (`--only-volume`), so no run signs bytes it did not check against the blob's digest.
enum StreamKind<'a> {
    Raw { file: File, hasher: Sha256 },
    Zstd { stream: ZstdStream<'a> },
}

impl<'a> StreamReader<'a> {
    fn new(
        plan: &'a Plan,
        sources: &'a [SourceBlob],
        prepared: &'a [Prepared],
    ) -> StreamReader<'a> {
        StreamReader {
            plan,
            sources,
            prepared,
            current: None,
        }
    }

    fn read_chunk(&mut self, c: &Chunk) -> Result<Vec<u8>, FormatError> {
        if let Some(cached) = &self.prepared[c.blob as usize].cached {
            // Compressed and checked against its digest while sizing.
            let start = c.stream_offset as usize;
            return cached
                .get(start..start + c.size as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| FormatError::Plan("cached stream shorter than planned".into()));
        }
        let source = &self.sources[c.blob as usize];
        let blob = &self.plan.manifest.blobs[c.blob as usize];
        let reuse =
            matches!(&self.current, Some(s) if s.blob == c.blob && s.pos == c.stream_offset);
        if !reuse {
            self.current = Some(self.open(c, source, blob.encoding)?);
        }
        let s = self.current.as_mut().expect("stream is open");
        let mut data = vec![0u8; c.size as usize];
        let n = match &mut s.kind {
            StreamKind::Raw { file, hasher } => {
                let n = read_full(file, &mut data).map_err(FormatError::io(&source.path))?;
                hasher.update(&data[..n]);
                n
            }
            StreamKind::Zstd { stream } => {
                read_full(stream, &mut data).map_err(FormatError::io(&source.path))?
            }
        };
        if n as u64 != c.size {
            return Err(FormatError::InputChanged {
                path: source.path.clone(),
            });
        }
        s.pos += c.size;
        if s.pos == blob.stored_size {
            let s = self.current.take().expect("stream is open");
            s.close(source)?;
        }
        Ok(data)
    }

    fn open(
        &self,
        c: &Chunk,
        source: &'a SourceBlob,
        encoding: Encoding,
    ) -> Result<OpenStream<'a>, FormatError> {
        let mut file = open_checked(source)?;
        let modified = file.metadata().ok().and_then(|m| m.modified().ok());
        let kind = match encoding {
            Encoding::Raw => {
                // Starting mid-blob: hash the part before, which an earlier volume holds.
                let mut hasher = Sha256::new();
                let mut head = (&mut file).take(c.stream_offset);
                let mut buf = vec![0u8; READ_BUFFER];
                loop {
                    let n =
                        read_full(&mut head, &mut buf).map_err(FormatError::io(&source.path))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                StreamKind::Raw { file, hasher }
            }
            Encoding::Base => unreachable!("the plan gives base blobs no chunks"),
            Encoding::Zstd => {
                let mut stream = ZstdStream::new(file, source)?;
                io::copy(&mut (&mut stream).take(c.stream_offset), &mut io::sink())
                    .map_err(FormatError::io(&source.path))?;
                StreamKind::Zstd { stream }
            }
        };
        Ok(OpenStream {
            blob: c.blob,
            pos: c.stream_offset,
            kind,
            modified,
        })
    }
}

impl OpenStream<'_> {
    /// At the end of a blob's stream: nothing may follow and the digest must match.
    fn close(self, source: &SourceBlob) -> Result<(), FormatError> {
        let changed = || FormatError::InputChanged {
            path: source.path.clone(),
        };
        match self.kind {
            StreamKind::Raw { mut file, hasher } => {
                let mut probe = [0u8; 1];
                if read_full(&mut file, &mut probe).map_err(FormatError::io(&source.path))? != 0 {
                    return Err(changed());
                }
                check_digest(source, hasher, source.size)?;
                let now = file.metadata().ok().and_then(|m| m.modified().ok());
                if now != self.modified {
                    return Err(changed());
                }
            }
            StreamKind::Zstd { mut stream } => {
                let mut probe = [0u8; 1];
                if read_full(&mut stream, &mut probe).map_err(FormatError::io(&source.path))? != 0 {
                    return Err(changed());
                }
                stream.finish()?;
            }
        }
        Ok(())
    }

    /// When writing stops mid-blob (`--only-volume`): reads the rest only to check the digest.
    fn drain(mut self, source: &SourceBlob) -> Result<(), FormatError> {
        let rest = match &mut self.kind {
            StreamKind::Raw { file, hasher } => {
                let mut buf = vec![0u8; READ_BUFFER];
                let mut total = 0u64;
                loop {
                    let n = read_full(file, &mut buf).map_err(FormatError::io(&source.path))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
                total
            }
            StreamKind::Zstd { stream } => {
                io::copy(stream, &mut io::sink()).map_err(FormatError::io(&source.path))?
            }
        };
        self.pos += rest;
        match &mut self.kind {
            StreamKind::Raw { file, .. } => {
                file.seek(SeekFrom::Start(source.size))
                    .map_err(FormatError::io(&source.path))?;
            }
            StreamKind::Zstd { .. } => {}
        }
        self.close(source)
    }
}
