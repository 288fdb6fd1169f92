//! The cache: an OCI image layout (image-spec `image-layout.md`) that `mirror` reads like
//! any other, plus ferry's bookkeeping under `.ferry/`:
//!
//! ```text
//! CACHE/oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! CACHE/index.json                 one descriptor per image pulled (annotations below)
//! CACHE/blobs/sha256/<hex>         complete blobs whose SHA-256 was checked as they streamed
//! CACHE/.ferry/lock                held (flock) by the one run using the cache: `<pid> <start, unix s>`
//! CACHE/.ferry/partial/<hex>       an interrupted download, resumed with Range
//! CACHE/.ferry/views/              the index.json of each set packed from the cache
//! CACHE/.ferry/operators/<hex>.json  what a mirror.operators[] entry's last plan produced
//! CACHE/.ferry/catalogs/<hex>/     scratch of a catalog being read (removed after)
//! ```
//!
//! `operators/<hex>.json` (`<hex>`: SHA-256 of the entry's catalog reference, targetCatalog
//! and targetTag, one per line) is `{"catalog", "target_catalog", "target_tag", "refs"}`:
//! `refs` are the ref.names of the catalog image packed and of its bundle and related
//! images. The images a catalog needs are known only once it is read, so `cache prune`,
//! which reads only the cache, keeps those refs; it is rewritten by every plan of the
//! entry, so a selection that shrinks lets prune free what it no longer names, and a
//! prune for a set without the entry removes it.
//!
//! Descriptor annotations: `org.opencontainers.image.ref.name` = `<repository>:<tag>` or
//! `<repository>@sha256:<hex>` (the destination naming); `io.containerd.image.name` = the
//! original reference as the image set wrote it, canonical; `dev.ferry.resolved-at` for a
//! tag; `dev.ferry.platforms` for a sparse index; `dev.ferry.target-repository` when the
//! image set gave a `targetRepo` (then it is also ref.name's repository);
//! `dev.ferry.catalog-packages` (sorted, comma-separated) on an operator catalog the pull
//! rebuilt or carried whole, the packages it holds (`oci::annotation`).
//!
//! Invariant: a file under `blobs/` is complete and its bytes hash to its name (but for the
//! `.<hex>.<16 hex>.partial` temporaries of `durable_file`, which a kill can leave and
//! [`Cache::prune`] removes); index.json
//! names only images whose every needed blob is under `blobs/`. Both hold whenever the
//! process is killed: a blob reaches `blobs/` by a rename after its hash was checked and
//! its bytes fsynced, and index.json is replaced whole (`durable_file`) only after the
//! blobs it names are in.
//!
//! One run at a time: [`Cache::open`] takes an exclusive `flock` on `.ferry/lock` and
//! refuses ([`CacheError::Busy`], naming the holder's pid) when another run has it. That
//! lock is what makes the stable partial names safe: nobody else appends to them.
//! Within a run, the worker threads share one [`Cache`]; each blob is downloaded by one
//! of them at a time (a second concurrent download of the same digest is refused).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use oci::{annotation, media_type, Digest, Sha256};
use registry_client::{BlobStream, RegistryError};
use serde::{Deserialize, Serialize};

use crate::error::CacheError;

/// `oci-layout` (image-spec `image-layout.md`).
const OCI_LAYOUT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";
const FERRY_DIR: &str = ".ferry";
const LOCK_NAME: &str = "lock";
const PARTIAL_DIR: &str = "partial";
const VIEWS_DIR: &str = "views";
/// Reads and writes of blob bodies: large enough that the hash and the syscalls keep up
/// with a fast link, small enough for many workers.
const BUF_SIZE: usize = 256 * 1024;
/// The largest index.json read: thousands of images fit many times over.
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

/// An open cache, locked for this process until dropped (unless opened read-only).
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    /// `.ferry/lock`, flocked; `None` when opened read-only.
    lock: Option<File>,
    /// Serialises the read-modify-write of index.json between this run's threads.
    index: Mutex<()>,
    /// Digests being downloaded by a thread of this run (their partials are in use).
    downloading: Mutex<BTreeSet<Digest>>,
}

/// One image recorded in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// `org.opencontainers.image.ref.name`: `<repository>:<tag>` or `<repository>@sha256:<hex>`.
    pub ref_name: String,
    /// `io.containerd.image.name`: the original reference, canonical.
    pub source: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// `dev.ferry.resolved-at` (RFC 3339), for a tag: since when it names this digest.
    pub resolved_at: Option<String>,
    /// `dev.ferry.platforms`: the children kept, for a sparse index.
    pub platforms: Option<Vec<String>>,
    /// `dev.ferry.target-repository`: the repository path at the destination, only when
    /// the image set gave one (`targetRepo`); absent, the destination follows the source.
    pub target_repository: Option<String>,
    /// `dev.ferry.catalog-packages`: for an operator catalog the pull rebuilt (or carried
    /// whole), the packages it holds, sorted; None for every other image.
    pub catalog_packages: Option<Vec<String>>,
}

/// What [`Cache::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub images_removed: Vec<String>,
    pub blobs_removed: usize,
    pub partials_removed: usize,
    pub bytes_freed: u64,
}

/// How a [`Cache::download`] ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes that came over the network in this call.
    pub fetched: u64,
    /// Bytes of an earlier partial that were kept (resumed with Range).
    pub resumed_from: u64,
}

/// Why a [`Cache::download`] did not complete. The partial is kept (for the next attempt to
/// resume) unless the bytes were wrong.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The stream broke off (reset, timeout); the partial holds what arrived.
    #[error("the download of {digest} broke off after {received} of {size} bytes: {source}")]
    BrokenOff {
        digest: Digest,
        received: u64,
        size: u64,
        source: std::io::Error,
    },
    /// The bytes are not the blob: they hash to another digest, there are more than its
    /// size, or the registry announces a length that cannot add up. The partial is deleted.
    /// `actual` says which (`they hash to sha256:…`).
    #[error("the bytes received for {expected} are not that blob: {actual}")]
    Mismatch { expected: Digest, actual: String },
    /// The registry has no such blob.
    #[error("the registry has no blob {0}")]
    NotFound(Digest),
    #[error("interrupted")]
    Cancelled,
}

/// index.json as ferry reads and writes it: an OCI image index whose descriptors keep
/// whatever fields they carry (platform, artifactType, another tool's annotations).
#[derive(Debug, Serialize, Deserialize)]
struct IndexFile {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<HeldEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// A descriptor of index.json as held between reading the index and writing it: its text
/// (compact, as [`IndexEntry`] writes it: one line each in the file), its name and its
/// digest. Every record of a batch reads and writes the whole index; at 6×10^4 images the
/// entries parsed (a map of annotations each) were 66 MB, more than all else a pull or a
/// `--config` pack held at that moment; their texts are 25 MB.
#[derive(Debug)]
struct HeldEntry {
    name: Option<Box<str>>,
    digest: Digest,
    text: Box<serde_json::value::RawValue>,
}

impl HeldEntry {
    fn of(entry: &IndexEntry) -> HeldEntry {
        HeldEntry {
            name: entry.ref_name().map(Box::from),
            digest: entry.digest,
            // Strings, numbers and JSON values only: nothing here fails to serialize.
            text: serde_json::value::to_raw_value(entry).expect("an index entry serializes"),
        }
    }

    /// The entry parsed again (from the text [`HeldEntry::of`] made of a parsed one).
    fn entry(&self) -> IndexEntry {
        serde_json::from_str(self.text.get()).expect("an entry's own text parses")
    }
}

impl<'de> Deserialize<'de> for HeldEntry {
    /// Read as an [`IndexEntry`], so a descriptor that is not one is refused as before.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HeldEntry, D::Error> {
        IndexEntry::deserialize(d).map(|e| HeldEntry::of(&e))
    }
}

impl Serialize for HeldEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexEntry {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

impl IndexEntry {
    fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(annotation::REF_NAME)
            .map(String::as_str)
    }

    fn of(image: &CachedImage) -> IndexEntry {
        let mut annotations = BTreeMap::new();
        annotations.insert(annotation::REF_NAME.to_owned(), image.ref_name.clone());
        annotations.insert(annotation::CONTAINERD_NAME.to_owned(), image.source.clone());
        if let Some(at) = &image.resolved_at {
            annotations.insert(annotation::FERRY_RESOLVED_AT.to_owned(), at.clone());
        }
        if let Some(platforms) = &image.platforms {
            let mut sorted = platforms.clone();
            sorted.sort();
            sorted.dedup();
            annotations.insert(annotation::FERRY_PLATFORMS.to_owned(), sorted.join(","));
        }
        if let Some(repository) = &image.target_repository {
            annotations.insert(
                annotation::FERRY_TARGET_REPOSITORY.to_owned(),
                repository.clone(),
            );
        }
        if let Some(packages) = &image.catalog_packages {
            let mut sorted = packages.clone();
            sorted.sort();
            sorted.dedup();
            annotations.insert(
                annotation::FERRY_CATALOG_PACKAGES.to_owned(),
                sorted.join(","),
            );
        }
        IndexEntry {
            media_type: image.media_type.clone(),
            digest: image.digest,
            size: image.size,
            annotations,
            other: BTreeMap::new(),
        }
    }

    fn image(&self) -> Option<CachedImage> {
        let a = &self.annotations;
        Some(CachedImage {
            ref_name: self.ref_name()?.to_owned(),
            source: a
                .get(annotation::CONTAINERD_NAME)
                .cloned()
                .unwrap_or_default(),
            digest: self.digest,
            media_type: self.media_type.clone(),
            size: self.size,
            resolved_at: a.get(annotation::FERRY_RESOLVED_AT).cloned(),
            platforms: a.get(annotation::FERRY_PLATFORMS).map(|p| {
                p.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            target_repository: a.get(annotation::FERRY_TARGET_REPOSITORY).cloned(),
            catalog_packages: a.get(annotation::FERRY_CATALOG_PACKAGES).map(|p| {
                p.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, detail: impl Into<String>) -> CacheError {
    CacheError::Invalid {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Opens `path` for reading and writing, creating it, never through a symbolic link (a
/// link planted at a predictable name under the cache is refused, not followed).
fn open_no_follow(path: &Path) -> Result<File, CacheError> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| {
        let e = match e {
            rustix::io::Errno::LOOP => durable_file::refuse_symlink(path)
                .err()
                .unwrap_or_else(|| e.into()),
            e => e.into(),
        };
        io_at(path)(e)
    })?;
    let file = File::from(fd);
    if !file.metadata().map_err(io_at(path))?.is_file() {
        return Err(invalid(path, "is not a regular file; remove it"));
    }
    Ok(file)
}

/// `pid 1234, started 5 min ago`, from the lock file's `<pid> <unix seconds>`.
fn describe_holder(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let Some(started) = words.next().and_then(|w| w.parse::<u64>().ok()) else {
        return Some(format!("pid {pid}"));
    };
    let ago = now_secs().saturating_sub(started);
    let ago = match ago {
        0..=119 => format!("{ago} s"),
        120..=7199 => format!("{} min", ago / 60),
        _ => format!("{} h", ago / 3600),
    };
    Some(format!("pid {pid}, started {ago} ago"))
}

/// Takes `.ferry/lock` (exclusive, not waiting) and writes who holds it.
fn take_lock(root: &Path, ferry: &Path) -> Result<File, CacheError> {
    use rustix::fs::{flock, FlockOperation};
    let path = ferry.join(LOCK_NAME);
    let mut file = open_no_follow(&path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            // The holder writes its pid just after taking the lock; it may not have yet.
            let holder = fs::read_to_string(&path)
                .ok()
                .and_then(|t| describe_holder(&t));
            return Err(CacheError::Busy {
                path: root.to_owned(),
                holder,
            });
        }
        Err(e) => return Err(io_at(&path)(e.into())),
    }
    // For the message of a run that finds the lock taken; the lock is the flock alone.
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{} {}", std::process::id(), now_secs()))
        .map_err(io_at(&path))?;
    Ok(file)
}

/// Whether `root` may become a cache: it is one already, or it holds nothing (a fresh
/// filesystem's `lost+found`, or a `.ferry` left by a run killed at its very start).
fn check_usable(root: &Path) -> Result<bool, CacheError> {
    let meta = match fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_at(root)(e)),
    };
    if !meta.is_dir() {
        return Err(invalid(
            root,
            "is not a directory; give a directory for the cache",
        ));
    }
    if root.join("oci-layout").exists() {
        return Ok(true);
    }
    for entry in fs::read_dir(root).map_err(io_at(root))? {
        let name = entry.map_err(io_at(root))?.file_name();
        if name != FERRY_DIR && name != "lost+found" {
            return Err(invalid(
                root,
                format!(
                    "is not empty and is not a ferry cache (no oci-layout; it holds {:?}); give an empty or new directory as --cache",
                    name.to_string_lossy()
                ),
            ));
        }
    }
    Ok(false)
}

impl Cache {
    /// Opens (creating when missing) the cache at `root` and takes its lock; another run
    /// holding it is [`CacheError::Busy`]. A directory that is not empty and not a cache
    /// (no `oci-layout`) is refused.
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        check_usable(root)?;
        let ferry = root.join(FERRY_DIR);
        fs::create_dir_all(&ferry).map_err(io_at(&ferry))?;
        let lock = take_lock(root, &ferry)?;
        for dir in [
            root.join("blobs/sha256"),
            ferry.join(PARTIAL_DIR),
            ferry.join(VIEWS_DIR),
        ] {
            fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        // index.json before oci-layout: a directory with an oci-layout is a whole cache.
        let index = root.join("index.json");
        if fs::symlink_metadata(&index).is_err() {
            let empty = IndexFile {
                schema_version: 2,
                media_type: Some(media_type::OCI_INDEX.to_owned()),
                manifests: Vec::new(),
                other: BTreeMap::new(),
            };
            write_index(&index, &empty)?;
        }
        let layout = root.join("oci-layout");
        if fs::symlink_metadata(&layout).is_err() {
            durable_file::write(&layout, OCI_LAYOUT).map_err(io_at(&layout))?;
        }
        let cache = Cache {
            root: root.to_owned(),
            lock: Some(lock),
            index: Mutex::new(()),
            downloading: Mutex::new(BTreeSet::new()),
        };
        // A cache that cannot be read is refused now, not after an hour of downloads.
        cache.read_index()?;
        cache.sweep_temporaries()?;
        Ok(cache)
    }

    /// Removes the temporaries a killed run's `put_blob` (durable_file's
    /// `.<name>.<random>.partial`) left beside the blobs: with the lock held nobody else is
    /// writing, so each is a leftover, and `blobs/` then holds only blobs again. One
    /// directory read per run (about 20 ms for 10^5 blobs).
    fn sweep_temporaries(&self) -> Result<(), CacheError> {
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(io_at(&blobs))? {
            let entry = entry.map_err(io_at(&blobs))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(durable_file::PARTIAL_SUFFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_at(&path))?;
            }
        }
        Ok(())
    }

    /// Opens an existing cache for reading without the lock (pack from the cache while
    /// nobody writes is safe: blobs only appear, complete). Missing: an error.
    pub fn open_read_only(root: &Path) -> Result<Cache, CacheError> {
        if !check_usable(root)? || !root.join("index.json").is_file() {
            return Err(invalid(
                root,
                "is not a ferry cache (no oci-layout and index.json): pull into it first (ferry-pack pull --config FILE --cache DIR)",
            ));
        }
        let cache = Cache {
            root: root.to_owned(),
            lock: None,
            index: Mutex::new(()),
            downloading: Mutex::new(BTreeSet::new()),
        };
        cache.read_index()?;
        Ok(cache)
    }

    /// Writes need the lock: a cache opened read-only is only read.
    fn writable(&self) -> Result<(), CacheError> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(invalid(
                &self.root,
                "was opened read-only (without its lock); open it with Cache::open to write",
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Where an interrupted download of `digest` is kept: a stable name, so that the next
    /// run resumes it.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.partial_dir().join(digest.hex())
    }

    fn partial_dir(&self) -> PathBuf {
        self.root.join(FERRY_DIR).join(PARTIAL_DIR)
    }

    /// The directory for the index.json of each set packed from the cache.
    pub fn views_dir(&self) -> PathBuf {
        self.root.join(FERRY_DIR).join(VIEWS_DIR)
    }

    /// The size of the complete blob, if the cache has it.
    pub fn has_blob(&self, digest: &Digest) -> Option<u64> {
        regular_file_len(&self.blob_path(digest))
    }

    /// Bytes of an interrupted download of `digest` (0 if none).
    pub fn partial_len(&self, digest: &Digest) -> u64 {
        regular_file_len(&self.partial_path(digest)).unwrap_or(0)
    }

    /// A small blob (a manifest), at most `max` bytes, checked against its digest on read.
    pub fn read_blob(&self, digest: &Digest, max: usize) -> Result<Vec<u8>, CacheError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(io_at(&path))?;
        let mut bytes = Vec::new();
        file.take(max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_at(&path))?;
        if bytes.len() > max {
            return Err(invalid(&path, format!("is larger than {max} bytes")));
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(invalid(
                &path,
                format!("hashes to {actual}, not its name: the cache is damaged; remove the file and pull again"),
            ));
        }
        Ok(bytes)
    }

    /// Stores bytes already in memory (a manifest) after checking they hash to `digest`.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        self.writable()?;
        let path = self.blob_path(digest);
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(invalid(
                &path,
                format!(
                    "not written: the {} bytes given hash to {actual}",
                    bytes.len()
                ),
            ));
        }
        if self.has_blob(digest) == Some(bytes.len() as u64) {
            return Ok(());
        }
        durable_file::write(&path, bytes).map_err(io_at(&path))
    }

    /// Downloads `digest` (`size` bytes): `fetch(offset)` opens the stream from `offset`
    /// (the partial's length, or 0); a stream that starts at 0 although more was asked
    /// restarts the partial. Hashes while it writes (the kept partial first), renames into
    /// `blobs/` only when the size and SHA-256 match. `progress(n)` after each write.
    ///
    /// A blob already in the cache is not fetched. A registry that cannot resume
    /// ([`RegistryError::RangeNotResumable`]) is asked again from byte 0. The partial is
    /// kept when the stream breaks off, on Ctrl-C and when the disk is full, and deleted
    /// when the bytes are wrong.
    pub fn download(
        &self,
        digest: &Digest,
        size: u64,
        fetch: &mut dyn FnMut(u64) -> Result<Option<BlobStream>, RegistryError>,
        progress: &dyn Fn(u64),
        cancel: &AtomicBool,
    ) -> Result<Downloaded, DownloadError> {
        self.writable()?;
        let done = Downloaded {
            fetched: 0,
            resumed_from: 0,
        };
        if let Some(have) = self.has_blob(digest) {
            if have == size {
                return Ok(done);
            }
            // Blobs are only ever renamed in after their hash was checked: the size asked
            // for is what is wrong (a manifest that misstates it).
            return Err(DownloadError::Mismatch {
                expected: *digest,
                actual: format!(
                    "the cache already holds it with {have} bytes, not the {size} asked for"
                ),
            });
        }
        let path = self.partial_path(digest);
        if !self
            .downloading
            .lock()
            .expect("not poisoned")
            .insert(*digest)
        {
            return Err(invalid(&path, "is being downloaded by another worker of this run").into());
        }
        let result = self.download_partial(digest, size, &path, fetch, progress, cancel);
        self.downloading
            .lock()
            .expect("not poisoned")
            .remove(digest);
        result
    }

    fn download_partial(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        fetch: &mut dyn FnMut(u64) -> Result<Option<BlobStream>, RegistryError>,
        progress: &dyn Fn(u64),
        cancel: &AtomicBool,
    ) -> Result<Downloaded, DownloadError> {
        let dir = self.partial_dir();
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let mut file = open_no_follow(path)?;
        let mut hasher = Sha256::new();
        let mut kept = file.metadata().map_err(io_at(path))?.len();
        if kept > size {
            kept = 0;
        }
        if kept > 0 && hash_prefix(&mut file, kept, &mut hasher, cancel).map_err(io_at(path))? {
            return Err(DownloadError::Cancelled);
        }
        let mut stream = None;
        if kept < size {
            let mut offset = kept;
            let opened = loop {
                match fetch(offset) {
                    Ok(Some(s)) if s.start == offset || s.start == 0 => break s,
                    // Not what was asked: start over from the first byte, once.
                    Ok(Some(_)) | Err(RegistryError::RangeNotResumable { .. }) if offset > 0 => {
                        offset = 0;
                    }
                    Ok(Some(s)) => {
                        drop(file);
                        let _ = fs::remove_file(path);
                        return Err(DownloadError::Mismatch {
                            expected: *digest,
                            actual: format!(
                                "asked from byte 0, the registry's answer starts at byte {}",
                                s.start
                            ),
                        });
                    }
                    Ok(None) => return Err(DownloadError::NotFound(*digest)),
                    Err(RegistryError::Cancelled) => return Err(DownloadError::Cancelled),
                    Err(e) => return Err(e.into()),
                }
            };
            if opened.start == 0 && kept > 0 {
                kept = 0;
                hasher = Sha256::new();
            }
            if opened
                .length
                .is_some_and(|n| opened.start.checked_add(n) != Some(size))
            {
                drop(file);
                let _ = fs::remove_file(path);
                return Err(DownloadError::Mismatch {
                    expected: *digest,
                    actual: format!(
                        "the registry announces {} bytes from byte {}, the blob has {size}",
                        opened.length.unwrap_or_default(),
                        opened.start
                    ),
                });
            }
            stream = Some(opened);
        }
        // What is past the bytes kept (a restart, a torn tail) goes before new bytes land.
        file.set_len(kept).map_err(io_at(path))?;
        file.seek(SeekFrom::Start(kept)).map_err(io_at(path))?;
        let resumed_from = kept;
        let mut fetched = 0u64;
        if let Some(mut stream) = stream {
            let mut buf = vec![0u8; BUF_SIZE];
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(DownloadError::Cancelled);
                }
                let n = match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) if cancel.load(Ordering::Relaxed) => {
                        return Err(DownloadError::Cancelled)
                    }
                    Err(source) => {
                        return Err(DownloadError::BrokenOff {
                            digest: *digest,
                            received: kept + fetched,
                            size,
                            source,
                        })
                    }
                };
                if kept + fetched + n as u64 > size {
                    drop(file);
                    let _ = fs::remove_file(path);
                    return Err(DownloadError::Mismatch {
                        expected: *digest,
                        actual: format!("the registry sent more than its {size} bytes"),
                    });
                }
                // A full disk keeps what was written: those bytes are right, and the next
                // run resumes after them.
                file.write_all(&buf[..n]).map_err(io_at(path))?;
                hasher.update(&buf[..n]);
                fetched += n as u64;
                progress(n as u64);
            }
        }
        if hasher.len() < size {
            return Err(DownloadError::BrokenOff {
                digest: *digest,
                received: hasher.len(),
                size,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the registry ended the body early",
                ),
            });
        }
        let actual = hasher.finish();
        if actual != *digest {
            drop(file);
            let _ = fs::remove_file(path);
            return Err(DownloadError::Mismatch {
                expected: *digest,
                actual: if resumed_from > 0 {
                    format!("they hash to {actual} (the first {resumed_from} bytes were kept from an interrupted download; they are removed too)")
                } else {
                    format!("they hash to {actual}")
                },
            });
        }
        file.sync_all().map_err(io_at(path))?;
        drop(file);
        let dest = self.blob_path(digest);
        durable_file::refuse_symlink(&dest).map_err(io_at(&dest))?;
        fs::rename(path, &dest).map_err(io_at(&dest))?;
        // The rename is durable once both directories are (best effort, as durable_file).
        for d in [dest.parent(), Some(dir.as_path())].into_iter().flatten() {
            if let Ok(d) = File::open(d) {
                let _ = d.sync_all();
            }
        }
        Ok(Downloaded {
            fetched,
            resumed_from,
        })
    }

    /// The images `index.json` records (descriptors without a ref.name are not ferry's
    /// and are skipped).
    pub fn images(&self) -> Result<Vec<CachedImage>, CacheError> {
        Ok(self
            .read_index()?
            .manifests
            .iter()
            .filter_map(|e| e.entry().image())
            .collect())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn read_index(&self) -> Result<IndexFile, CacheError> {
        let path = self.index_path();
        let file = File::open(&path).map_err(io_at(&path))?;
        if file.metadata().map_err(io_at(&path))?.len() > MAX_INDEX_BYTES {
            return Err(invalid(
                &path,
                format!("is larger than {MAX_INDEX_BYTES} bytes"),
            ));
        }
        // Parsed as it is read: the bytes and their parse together were the peak of a
        // pull of 6×10^4 images (the index is 25 MB there). The lock keeps others out,
        // and `take` keeps the bound should the file grow meanwhile.
        let reader = io::BufReader::with_capacity(1 << 16, file.take(MAX_INDEX_BYTES));
        let index: IndexFile = serde_json::from_reader(reader).map_err(|e| {
            invalid(
                &path,
                format!(
                    "is not an OCI image index ({e}); repair or remove it (a pull writes it again)"
                ),
            )
        })?;
        if index.schema_version != 2 {
            return Err(invalid(
                &path,
                format!("has schemaVersion {}, not 2", index.schema_version),
            ));
        }
        Ok(index)
    }

    /// Adds or replaces (by `ref_name`) these images in `index.json`, written atomically.
    /// Call only when every blob each needs is in the cache.
    pub fn record(&self, images: &[CachedImage]) -> Result<(), CacheError> {
        self.writable()?;
        let _serial = self.index.lock().expect("not poisoned");
        let mut index = self.read_index()?;
        // Sorted by name, so the same images give the same bytes whatever the order of the
        // pull (descriptors without a name keep their order, first), and so that a name's
        // first entry is found by halving rather than by a map of every name: a batch of
        // 10^4 images into an index of 10^4 was 10^8 comparisons when searched for, and a
        // map is 6 MB of names at 6×10^4. Names new to the index are looked up in a map of
        // the batch's own.
        let by_name = |a: &HeldEntry, b: &HeldEntry| a.name.cmp(&b.name);
        index.manifests.sort_by(by_name);
        let mut added: Vec<HeldEntry> = Vec::new();
        let mut added_at: HashMap<&str, usize> = HashMap::new();
        for image in images {
            let name = image.ref_name.as_str();
            let entry = IndexEntry::of(image);
            let k = index
                .manifests
                .partition_point(|e| e.name.as_deref() < Some(name));
            match index.manifests.get_mut(k) {
                Some(old) if old.name.as_deref() == Some(name) => {
                    // Keep fields another tool put there; ferry's annotations are replaced.
                    let other = old.entry().other;
                    *old = HeldEntry::of(&IndexEntry { other, ..entry });
                }
                _ => match added_at.get(name) {
                    Some(&j) => added[j] = HeldEntry::of(&entry),
                    None => {
                        added_at.insert(name, added.len());
                        added.push(HeldEntry::of(&entry));
                    }
                },
            }
        }
        index.manifests.extend(added);
        index.media_type = Some(media_type::OCI_INDEX.to_owned());
        index.manifests.sort_by(by_name);
        write_index(&self.index_path(), &index)
    }

    /// Removes the `index.json` entries whose `ref_name` is not in `keep_refs`, every blob
    /// not in `keep_blobs`, and every partial. The top manifest of every entry kept is
    /// kept with it, so index.json never names a missing blob; the rest of each kept
    /// image's closure must be in `keep_blobs`.
    pub fn prune(
        &self,
        keep_refs: &BTreeSet<String>,
        keep_blobs: &BTreeSet<Digest>,
    ) -> Result<PruneReport, CacheError> {
        self.writable()?;
        let _serial = self.index.lock().expect("not poisoned");
        let mut report = PruneReport::default();
        let mut index = self.read_index()?;
        let (kept, removed): (Vec<HeldEntry>, Vec<HeldEntry>) = index
            .manifests
            .into_iter()
            .partition(|e| e.name.as_deref().is_some_and(|r| keep_refs.contains(r)));
        report.images_removed = removed
            .iter()
            .map(|e| {
                e.name
                    .as_deref()
                    .map_or_else(|| e.digest.to_string(), str::to_owned)
            })
            .collect();
        let mut keep: BTreeSet<Digest> = keep_blobs.clone();
        keep.extend(kept.iter().map(|e| e.digest));
        index.manifests = kept;
        // The index first: a kill between the two leaves unreferenced blobs, never an
        // index naming a removed one.
        if !report.images_removed.is_empty() {
            write_index(&self.index_path(), &index)?;
        }
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(io_at(&blobs))? {
            let entry = entry.map_err(io_at(&blobs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let wanted = Digest::from_hex(&name).is_ok_and(|d| keep.contains(&d));
            let meta = entry.metadata().map_err(io_at(&entry.path()))?;
            if wanted || meta.is_dir() {
                continue;
            }
            fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
            report.bytes_freed += meta.len();
            // durable_file's temporaries of a killed write are leftovers, not blobs.
            if name.starts_with('.') && name.ends_with(durable_file::PARTIAL_SUFFIX) {
                report.partials_removed += 1;
            } else {
                report.blobs_removed += 1;
            }
        }
        let partials = self.partial_dir();
        if partials.is_dir() {
            for entry in fs::read_dir(&partials).map_err(io_at(&partials))? {
                let entry = entry.map_err(io_at(&partials))?;
                let meta = entry.metadata().map_err(io_at(&entry.path()))?;
                if meta.is_dir() {
                    continue;
                }
                fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
                report.partials_removed += 1;
                report.bytes_freed += meta.len();
            }
        }
        Ok(report)
    }

    /// Free bytes on the cache's filesystem.
    pub fn free_space(&self) -> Result<u64, CacheError> {
        durable_file::free_space(&self.root).map_err(io_at(&self.root))
    }

    /// Reads a whole blob file as a stream (for callers that hash or copy it).
    pub fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read>, CacheError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(io_at(&path))?;
        Ok(Box::new(file))
    }
}

/// The length of the regular file at `path` (not following a link), if there is one.
fn regular_file_len(path: &Path) -> Option<u64> {
    fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// Hashes the first `len` bytes of `file`; `true` if `cancel` stopped it.
fn hash_prefix(
    file: &mut File,
    len: u64,
    hasher: &mut Sha256,
    cancel: &AtomicBool,
) -> io::Result<bool> {
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    let mut buf = vec![0u8; BUF_SIZE];
    while left > 0 {
        if cancel.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the partial shrank while it was read",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(false)
}

/// Writes `index` atomically, streamed into the file rather than made whole first. Only
/// the writing can fail (an index of string maps always serializes): an I/O error of the file.
fn write_index(path: &Path, index: &IndexFile) -> Result<(), CacheError> {
    durable_file::write_streamed(path, |w| {
        serde_json::to_writer_pretty(&mut *w, index)?;
        w.write_all(b"\n")
    })
    .map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::io::Cursor;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn never() -> AtomicBool {
        AtomicBool::new(false)
    }

    /// A registry in a closure: serves `blob` from the offset asked (206), and records
    /// every offset it was asked for.
    fn ranged(
        blob: Vec<u8>,
        asked: &RefCell<Vec<u64>>,
    ) -> impl FnMut(u64) -> Result<Option<BlobStream>, RegistryError> + '_ {
        move |offset| {
            asked.borrow_mut().push(offset);
            let rest = blob[offset as usize..].to_vec();
            Ok(Some(BlobStream::from_reader(
                offset,
                Some(rest.len() as u64),
                Cursor::new(rest),
            )))
        }
    }

    /// A reader that gives `good` bytes, then fails as a reset connection does.
    struct BreaksAfter(Cursor<Vec<u8>>);
    impl Read for BreaksAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "reset by peer",
                )),
                n => Ok(n),
            }
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_killed_runs_temporaries_beside_the_blobs_are_swept_by_the_next_run() {
        let t = tempfile::tempdir().unwrap();
        let blob = b"{}".to_vec();
        let digest = Digest::of(&blob);
        let dir = t.path().join("blobs/sha256");
        {
            let cache = Cache::open(t.path()).unwrap();
            cache.put_blob(&digest, &blob).unwrap();
        }
        // What durable_file leaves when the process dies between create and rename.
        let left = dir.join(format!(".{}.0123456789abcdef.partial", "a".repeat(64)));
        fs::write(&left, b"half").unwrap();
        let before = entries(&dir);
        assert_eq!(before.len(), 2, "{before:?}");
        let _cache = Cache::open(t.path()).unwrap();
        assert_eq!(entries(&dir), vec![digest.hex().to_string()]);
    }

    #[test]
    fn the_workers_of_a_run_share_one_cache() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Cache>();
    }

    #[test]
    fn one_digest_is_downloaded_by_one_worker_at_a_time() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let blob = data(10_000, 12);
        let digest = Digest::of(&blob);
        let (started, wait_started) = std::sync::mpsc::channel();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let (cache, blob) = (&cache, &blob);
            let first = s.spawn(move || {
                let mut slow = |offset: u64| {
                    started.send(()).unwrap();
                    wait_go.recv().unwrap();
                    let rest = blob[offset as usize..].to_vec();
                    Ok(Some(BlobStream::from_reader(
                        offset,
                        None,
                        Cursor::new(rest),
                    )))
                };
                cache.download(&digest, 10_000, &mut slow, &|_| {}, &never())
            });
            wait_started.recv().unwrap();
            let asked = RefCell::new(Vec::new());
            let e = cache
                .download(
                    &digest,
                    10_000,
                    &mut ranged(blob.clone(), &asked),
                    &|_| {},
                    &never(),
                )
                .unwrap_err();
            assert!(e.to_string().contains("another worker of this run"), "{e}");
            assert!(asked.borrow().is_empty());
            go.send(()).unwrap();
            first.join().unwrap().unwrap();
        });
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), blob);
    }

    #[test]
    fn open_creates_the_layout_and_refuses_what_is_not_a_cache() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        let cache = Cache::open(&root).unwrap();
        assert_eq!(fs::read(root.join("oci-layout")).unwrap(), OCI_LAYOUT);
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index,
            serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": []})
        );
        assert!(root.join("blobs/sha256").is_dir());
        assert!(root.join(".ferry/partial").is_dir());
        assert!(cache.views_dir().is_dir());
        assert!(cache.images().unwrap().is_empty());
        drop(cache);
        // Reopened: still a cache, nothing rewritten.
        Cache::open(&root).unwrap();
        Cache::open_read_only(&root).unwrap();

        let other = t.path().join("photos");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("cat.jpg"), b"meow").unwrap();
        let e = Cache::open(&other).unwrap_err().to_string();
        assert!(
            e.contains("not a ferry cache") && e.contains("cat.jpg"),
            "{e}"
        );
        assert_eq!(entries(&other), ["cat.jpg"], "nothing written into it");
        let e = Cache::open_read_only(&t.path().join("absent")).unwrap_err();
        assert!(e.to_string().contains("pull into it first"), "{e}");

        fs::write(root.join("index.json"), b"{\"manifests\": 3}").unwrap();
        let e = Cache::open(&root).unwrap_err().to_string();
        assert!(
            e.contains("index.json") && e.contains("not an OCI image index"),
            "{e}"
        );
    }

    #[test]
    fn a_second_run_is_refused_naming_the_first() {
        let t = tempfile::tempdir().unwrap();
        let held = Cache::open(t.path()).unwrap();
        // flock belongs to the open file: a second open in this process is a second run.
        match Cache::open(t.path()) {
            Err(CacheError::Busy { path, holder }) => {
                assert_eq!(path, t.path());
                let holder = holder.expect("the holder is named");
                assert!(
                    holder.starts_with(&format!("pid {}, started ", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        let e = Cache::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("in use by another ferry-pack"), "{e}");
        // Reading does not need the lock; writing does.
        let reader = Cache::open_read_only(t.path()).unwrap();
        assert!(reader.images().unwrap().is_empty());
        let e = reader.record(&[]).unwrap_err().to_string();
        assert!(e.contains("read-only"), "{e}");
        assert!(reader.put_blob(&Digest::of(b""), b"").is_err());
        assert!(reader.prune(&BTreeSet::new(), &BTreeSet::new()).is_err());
        drop(held);
        Cache::open(t.path()).expect("free again once the first run ends");
    }

    #[test]
    fn download_whole_then_never_again() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let blob = data(700_000, 1);
        let digest = Digest::of(&blob);
        let asked = RefCell::new(Vec::new());
        let seen = Cell::new(0u64);
        let progress = |n: u64| seen.set(seen.get() + n);
        let got = cache
            .download(
                &digest,
                blob.len() as u64,
                &mut ranged(blob.clone(), &asked),
                &progress,
                &never(),
            )
            .unwrap();
        assert_eq!(
            got,
            Downloaded {
                fetched: 700_000,
                resumed_from: 0
            }
        );
        assert_eq!(seen.get(), 700_000);
        assert_eq!(*asked.borrow(), [0]);
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), blob);
        assert_eq!(cache.has_blob(&digest), Some(700_000));
        assert_eq!(cache.partial_len(&digest), 0);
        assert!(entries(&t.path().join(".ferry/partial")).is_empty());
        // Present: not fetched.
        let got = cache
            .download(
                &digest,
                blob.len() as u64,
                &mut ranged(blob.clone(), &asked),
                &progress,
                &never(),
            )
            .unwrap();
        assert_eq!(
            got,
            Downloaded {
                fetched: 0,
                resumed_from: 0
            }
        );
        assert_eq!(asked.borrow().len(), 1);
        // An empty blob needs no request at all.
        let empty = Digest::of(b"");
        let mut no_fetch = |_| -> Result<Option<BlobStream>, RegistryError> { panic!("fetched") };
        cache
            .download(&empty, 0, &mut no_fetch, &|_| {}, &never())
            .unwrap();
        assert_eq!(cache.has_blob(&empty), Some(0));
    }

    #[test]
    fn a_partial_is_resumed_from_its_length_and_checked_whole() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let blob = data(300_000, 2);
        let digest = Digest::of(&blob);
        fs::write(cache.partial_path(&digest), &blob[..123_456]).unwrap();
        assert_eq!(cache.partial_len(&digest), 123_456);
        let asked = RefCell::new(Vec::new());
        let got = cache
            .download(
                &digest,
                300_000,
                &mut ranged(blob.clone(), &asked),
                &|_| {},
                &never(),
            )
            .unwrap();
        assert_eq!(*asked.borrow(), [123_456]);
        assert_eq!(
            got,
            Downloaded {
                fetched: 300_000 - 123_456,
                resumed_from: 123_456
            }
        );
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), blob);
        assert_eq!(cache.partial_len(&digest), 0);

        // A wrong kept prefix is caught by the whole hash: removed, named as kept.
        let blob = data(50_000, 3);
        let digest = Digest::of(&blob);
        fs::write(cache.partial_path(&digest), vec![0u8; 10_000]).unwrap();
        let e = cache
            .download(
                &digest,
                50_000,
                &mut ranged(blob.clone(), &asked),
                &|_| {},
                &never(),
            )
            .unwrap_err();
        assert!(matches!(e, DownloadError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains("first 10000 bytes were kept"), "{e}");
        assert_eq!(cache.partial_len(&digest), 0);
        assert_eq!(cache.has_blob(&digest), None);
    }

    #[test]
    fn a_stream_from_byte_zero_restarts_the_partial() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let blob = data(200_000, 4);
        let digest = Digest::of(&blob);
        // Garbage kept: if it were hashed with the new stream the blob would not match.
        fs::write(cache.partial_path(&digest), vec![0xAA; 90_000]).unwrap();
        let asked = RefCell::new(Vec::new());
        let mut ignores_range = |offset| {
            asked.borrow_mut().push(offset);
            Ok(Some(BlobStream::from_reader(
                0,
                Some(200_000),
                Cursor::new(blob.clone()),
            )))
        };
        let got = cache
            .download(&digest, 200_000, &mut ignores_range, &|_| {}, &never())
            .unwrap();
        assert_eq!(*asked.borrow(), [90_000]);
        assert_eq!(
            got,
            Downloaded {
                fetched: 200_000,
                resumed_from: 0
            }
        );
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), blob);

        // A registry that cannot resume (416) is asked again from 0.
        let blob = data(20_000, 5);
        let digest = Digest::of(&blob);
        fs::write(cache.partial_path(&digest), &blob[..5000]).unwrap();
        asked.borrow_mut().clear();
        let mut refuses = |offset| {
            asked.borrow_mut().push(offset);
            if offset > 0 {
                return Err(RegistryError::RangeNotResumable {
                    method: "GET".into(),
                    url: "http://r/v2/x/blobs/d".into(),
                    offset,
                    status: 416,
                    problem: "no".into(),
                });
            }
            Ok(Some(BlobStream::from_reader(
                0,
                None,
                Cursor::new(blob.clone()),
            )))
        };
        let got = cache
            .download(&digest, 20_000, &mut refuses, &|_| {}, &never())
            .unwrap();
        assert_eq!(*asked.borrow(), [5000, 0]);
        assert_eq!(
            got,
            Downloaded {
                fetched: 20_000,
                resumed_from: 0
            }
        );
    }

    #[test]
    fn wrong_bytes_delete_the_partial() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let blob = data(100_000, 6);
        let digest = Digest::of(&blob);
        let mut flipped = blob.clone();
        flipped[77_777] ^= 1;
        let serve = |bytes: Vec<u8>, length: Option<u64>| {
            move |_| {
                Ok(Some(BlobStream::from_reader(
                    0,
                    length,
                    Cursor::new(bytes.clone()),
                )))
            }
        };
        let e = cache
            .download(
                &digest,
                100_000,
                &mut serve(flipped, Some(100_000)),
                &|_| {},
                &never(),
            )
            .unwrap_err();
        match &e {
            DownloadError::Mismatch { expected, actual } => {
                assert_eq!(expected, &digest);
                assert!(actual.starts_with("they hash to sha256:"), "{actual}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cache.partial_len(&digest), 0);
        assert_eq!(cache.has_blob(&digest), None);
        // Too long (no length said): stopped at the size, removed.
        let mut longer = blob.clone();
        longer.push(0);
        let e = cache
            .download(
                &digest,
                100_000,
                &mut serve(longer, None),
                &|_| {},
                &never(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("more than its 100000 bytes"), "{e}");
        assert_eq!(cache.partial_len(&digest), 0);
        // A length that cannot add up is refused before a byte is written.
        let e = cache
            .download(
                &digest,
                100_000,
                &mut serve(blob.clone(), Some(99)),
                &|_| {},
                &never(),
            )
            .unwrap_err();
        assert!(matches!(e, DownloadError::Mismatch { .. }), "{e}");
        assert!(entries(&t.path().join("blobs/sha256")).is_empty());
        // A stream from somewhere else than asked, even from 0: not used.
        let mut elsewhere = |_| {
            Ok(Some(BlobStream::from_reader(
                7,
                None,
                Cursor::new(vec![0u8; 10]),
            )))
        };
        let e = cache
            .download(&digest, 100_000, &mut elsewhere, &|_| {}, &never())
            .unwrap_err();
        assert!(e.to_string().contains("starts at byte 7"), "{e}");
        // A partial longer than the blob cannot be a prefix of it: started over.
        fs::write(cache.partial_path(&digest), vec![1u8; 100_001]).unwrap();
        let asked = RefCell::new(Vec::new());
        cache
            .download(
                &digest,
                100_000,
                &mut ranged(blob.clone(), &asked),
                &|_| {},
                &never(),
            )
            .unwrap();
        assert_eq!(*asked.borrow(), [0]);
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), blob);
        // Present with another size than asked: the size asked for is wrong.
        let e = cache
            .download(
                &digest,
                99_999,
                &mut ranged(blob.clone(), &asked),
                &|_| {},
                &never(),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("already holds it with 100000 bytes"),
            "{e}"
        );
        fs::remove_file(cache.blob_path(&digest)).unwrap();
        // A registry without the blob.
        let mut absent = |_| Ok(None);
        let e = cache
            .download(&digest, 100_000, &mut absent, &|_| {}, &never())
            .unwrap_err();
        assert!(
            matches!(e, DownloadError::NotFound(d) if d == digest),
            "{e}"
        );
    }

    #[test]
    fn a_broken_stream_keeps_the_partial_for_the_next_run() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let blob = data(400_000, 7);
        let digest = Digest::of(&blob);
        let head = blob[..300_000].to_vec();
        let mut breaks = move |_| {
            Ok(Some(BlobStream::from_reader(
                0,
                Some(400_000),
                BreaksAfter(Cursor::new(head.clone())),
            )))
        };
        let e = cache
            .download(&digest, 400_000, &mut breaks, &|_| {}, &never())
            .unwrap_err();
        match &e {
            DownloadError::BrokenOff { received, size, .. } => {
                assert_eq!((*received, *size), (300_000, 400_000))
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("reset by peer"), "{e}");
        assert_eq!(cache.partial_len(&digest), 300_000);
        assert_eq!(cache.has_blob(&digest), None);
        // A stream that just ends early is broken off too (no Content-Length to catch it).
        let short = blob[300_000..350_000].to_vec();
        let mut ends = move |offset| {
            Ok(Some(BlobStream::from_reader(
                offset,
                None,
                Cursor::new(short.clone()),
            )))
        };
        let e = cache
            .download(&digest, 400_000, &mut ends, &|_| {}, &never())
            .unwrap_err();
        assert!(
            matches!(
                e,
                DownloadError::BrokenOff {
                    received: 350_000,
                    ..
                }
            ),
            "{e}"
        );
        // Interrupted: kept, nothing fetched.
        let cancel = AtomicBool::new(true);
        let asked = RefCell::new(Vec::new());
        let e = cache
            .download(
                &digest,
                400_000,
                &mut ranged(blob.clone(), &asked),
                &|_| {},
                &cancel,
            )
            .unwrap_err();
        assert!(matches!(e, DownloadError::Cancelled), "{e}");
        assert_eq!(cache.partial_len(&digest), 350_000);
        // The next run resumes after the bytes that arrived.
        let got = cache
            .download(
                &digest,
                400_000,
                &mut ranged(blob.clone(), &asked),
                &|_| {},
                &never(),
            )
            .unwrap();
        assert_eq!(*asked.borrow(), [350_000]);
        assert_eq!(got.resumed_from, 350_000);
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), blob);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_partial_name_is_refused_and_its_target_untouched() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(&t.path().join("cache")).unwrap();
        let blob = data(1000, 8);
        let digest = Digest::of(&blob);
        let victim = t.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, cache.partial_path(&digest)).unwrap();
        let asked = RefCell::new(Vec::new());
        let e = cache
            .download(&digest, 1000, &mut ranged(blob, &asked), &|_| {}, &never())
            .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(asked.borrow().is_empty(), "nothing fetched");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(cache.partial_len(&digest), 0, "a link is no partial");
    }

    fn image(ref_name: &str, manifest: &[u8]) -> CachedImage {
        CachedImage {
            ref_name: ref_name.into(),
            source: format!("registry.example/{ref_name}"),
            digest: Digest::of(manifest),
            media_type: media_type::OCI_MANIFEST.into(),
            size: manifest.len() as u64,
            // A tag was resolved; a digest reference was not.
            resolved_at: (!ref_name.contains('@')).then(|| "2026-12-01T10:00:00Z".into()),
            platforms: None,
            target_repository: None,
            catalog_packages: None,
        }
    }

    /// `targetRepo` is recorded as its own annotation (only when given), and read back.
    #[test]
    fn a_target_repository_is_recorded_only_when_given() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let plain = image("ubi8/ubi:8.9", b"m1");
        let mut moved = image("mirror/es-proxy:stable", b"m2");
        moved.source = "registry.example/openshift4/ose-elasticsearch-proxy:v4.6".into();
        moved.target_repository = Some("mirror/es-proxy".into());
        cache.record(&[plain.clone(), moved.clone()]).unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&fs::read(t.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(
            raw["manifests"][0]["annotations"][annotation::FERRY_TARGET_REPOSITORY],
            "mirror/es-proxy"
        );
        assert!(raw["manifests"][1]["annotations"]
            .get(annotation::FERRY_TARGET_REPOSITORY)
            .is_none());
        assert_eq!(cache.images().unwrap(), [moved, plain]);
    }

    /// A catalog's packages are recorded sorted, comma-separated, and read back; other
    /// images carry no such annotation.
    #[test]
    fn catalog_packages_are_recorded_and_read_back() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let plain = image("ubi8/ubi:8.9", b"m1");
        let mut catalog = image("redhat/redhat-operator-index:v4.16", b"m2");
        catalog.media_type = media_type::OCI_INDEX.into();
        catalog.catalog_packages = Some(vec![
            "logging".into(),
            "elasticsearch-operator".into(),
            "logging".into(),
        ]);
        cache.record(&[plain.clone(), catalog.clone()]).unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&fs::read(t.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(
            raw["manifests"][0]["annotations"][annotation::FERRY_CATALOG_PACKAGES],
            "elasticsearch-operator,logging"
        );
        assert!(raw["manifests"][1]["annotations"]
            .get(annotation::FERRY_CATALOG_PACKAGES)
            .is_none());
        catalog.catalog_packages = Some(vec!["elasticsearch-operator".into(), "logging".into()]);
        assert_eq!(cache.images().unwrap(), [catalog, plain]);
    }

    /// An index another tool wrote (unsorted, a descriptor without a name, a name given
    /// twice, fields ferry does not know): recording keeps what is not ferry's, replaces
    /// the first entry of a name, keeps its unknown fields, adds the new, and writes
    /// every descriptor sorted by name on a line of its own.
    #[test]
    fn record_keeps_what_another_tool_wrote_and_writes_an_entry_a_line() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let entry = |name: Option<&str>, m: &[u8], extra: &str| {
            let names = name.map_or(String::new(), |n| {
                format!(r#","annotations":{{"{}":"{n}"}}"#, annotation::REF_NAME)
            });
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{}{names}{extra}}}"#,
                media_type::OCI_MANIFEST,
                Digest::of(m),
                m.len()
            )
        };
        let foreign = format!(
            r#"{{"schemaVersion":2,"manifests":[{},{},{},{}],"annotations":{{"tool":"other"}}}}"#,
            entry(Some("z:1"), b"z", ""),
            entry(
                Some("b:1"),
                b"b1",
                r#","artifactType":"application/x-first""#
            ),
            entry(None, b"unnamed", ""),
            entry(
                Some("b:1"),
                b"b2",
                r#","artifactType":"application/x-second""#
            ),
        );
        fs::write(t.path().join("index.json"), foreign).unwrap();
        let b = image("b:1", b"b3");
        let a = image("a:1", b"a");
        cache.record(&[b.clone(), a.clone(), a.clone()]).unwrap();

        let text = fs::read_to_string(t.path().join("index.json")).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(raw["annotations"]["tool"], "other", "{text}");
        let m = raw["manifests"].as_array().unwrap();
        let digests: Vec<String> = m
            .iter()
            .map(|e| e["digest"].as_str().unwrap().to_owned())
            .collect();
        let d = |b: &[u8]| Digest::of(b).to_string();
        assert_eq!(
            digests,
            [d(b"unnamed"), d(b"a"), d(b"b3"), d(b"b2"), d(b"z")],
            "{text}"
        );
        assert_eq!(m[2]["artifactType"], "application/x-first", "{text}");
        assert_eq!(m[3]["artifactType"], "application/x-second", "{text}");
        assert_eq!(m[2]["annotations"][annotation::CONTAINERD_NAME], b.source);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("{\"mediaType\""))
            .map(|l| serde_json::from_str(l.trim().trim_end_matches(',')).unwrap())
            .collect();
        assert_eq!(&lines, m, "a descriptor a line: {text}");
        assert_eq!(cache.images().unwrap().len(), 4);
    }

    #[test]
    fn record_is_idempotent_sorted_and_replaces_by_name() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let b = image("ubi8/ubi:8.9", b"m1");
        let a = image(&format!("app@{}", Digest::of(b"m2")), b"m2");
        let mut sparse = image("multi:1", b"m3");
        sparse.media_type = media_type::OCI_INDEX.into();
        sparse.platforms = Some(vec!["linux/arm64".into(), "linux/amd64".into()]);
        cache.record(&[b.clone(), sparse.clone()]).unwrap();
        cache.record(std::slice::from_ref(&a)).unwrap();
        let once = fs::read(t.path().join("index.json")).unwrap();
        cache.record(&[a.clone(), b.clone()]).unwrap();
        cache.record(&[sparse.clone()]).unwrap();
        assert_eq!(
            fs::read(t.path().join("index.json")).unwrap(),
            once,
            "same bytes"
        );

        let images = cache.images().unwrap();
        let names: Vec<&str> = images.iter().map(|i| i.ref_name.as_str()).collect();
        assert_eq!(names, [a.ref_name.as_str(), "multi:1", "ubi8/ubi:8.9"]);
        sparse.platforms = Some(vec!["linux/amd64".into(), "linux/arm64".into()]);
        assert_eq!(images, [a.clone(), sparse.clone(), b.clone()]);
        let raw: serde_json::Value = serde_json::from_slice(&once).unwrap();
        let multi = &raw["manifests"][1]["annotations"];
        assert_eq!(
            multi[annotation::FERRY_PLATFORMS],
            "linux/amd64,linux/arm64"
        );
        assert_eq!(
            multi[annotation::CONTAINERD_NAME],
            "registry.example/multi:1"
        );
        assert!(raw["manifests"][0]["annotations"]
            .get(annotation::FERRY_RESOLVED_AT)
            .is_none());

        // A tag now resolving elsewhere replaces its entry.
        let moved = image("ubi8/ubi:8.9", b"m4");
        cache.record(std::slice::from_ref(&moved)).unwrap();
        let images = cache.images().unwrap();
        assert_eq!(images.len(), 3);
        assert_eq!(images[2], moved);
    }

    #[test]
    fn prune_keeps_exactly_what_is_asked() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let (m1, m2) = (b"manifest one".as_slice(), b"manifest two".as_slice());
        let (l1, l2, shared) = (data(5000, 9), data(7000, 10), data(3000, 11));
        for blob in [m1, m2, &l1, &l2, &shared] {
            cache.put_blob(&Digest::of(blob), blob).unwrap();
        }
        let keep_img = image("keep:1", m1);
        let drop_img = image("drop:1", m2);
        cache.record(&[keep_img.clone(), drop_img]).unwrap();
        fs::write(cache.partial_path(&Digest::of(b"half")), b"half").unwrap();
        // A temporary of a killed put_blob.
        fs::write(
            t.path().join("blobs/sha256/.abc.0123456789abcdef.partial"),
            b"xx",
        )
        .unwrap();

        let keep_refs = BTreeSet::from(["keep:1".to_owned()]);
        let keep_blobs = BTreeSet::from([Digest::of(&l1), Digest::of(&shared)]);
        let report = cache.prune(&keep_refs, &keep_blobs).unwrap();
        assert_eq!(report.images_removed, ["drop:1"]);
        assert_eq!(report.blobs_removed, 2, "m2 and l2");
        assert_eq!(report.partials_removed, 2);
        assert_eq!(report.bytes_freed, (m2.len() + l2.len() + 4 + 2) as u64);
        assert_eq!(cache.images().unwrap(), [keep_img]);
        let mut left: Vec<String> = [m1, &l1, &shared]
            .iter()
            .map(|b| Digest::of(b).hex())
            .collect();
        left.sort();
        assert_eq!(entries(&t.path().join("blobs/sha256")), left);
        assert!(entries(&t.path().join(".ferry/partial")).is_empty());
        // Nothing more to do the second time.
        assert_eq!(
            cache.prune(&keep_refs, &keep_blobs).unwrap(),
            PruneReport::default()
        );
    }

    #[test]
    fn small_blobs_are_checked_both_ways() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let m = br#"{"schemaVersion":2}"#;
        let d = Digest::of(m);
        let e = cache.put_blob(&d, b"other bytes").unwrap_err();
        assert!(e.to_string().contains("not written"), "{e}");
        assert_eq!(cache.has_blob(&d), None);
        cache.put_blob(&d, m).unwrap();
        cache.put_blob(&d, m).unwrap();
        assert_eq!(cache.read_blob(&d, 1024).unwrap(), m);
        let e = cache.read_blob(&d, 5).unwrap_err();
        assert!(e.to_string().contains("larger than 5 bytes"), "{e}");
        let mut whole = Vec::new();
        cache
            .open_blob(&d)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, m);
        // Damage on disk is found on read.
        fs::write(cache.blob_path(&d), b"tampered").unwrap();
        let e = cache.read_blob(&d, 1024).unwrap_err().to_string();
        assert!(
            e.contains("the cache is damaged") && e.contains(&d.hex()),
            "{e}"
        );
        assert!(cache.free_space().unwrap() > 0);
    }
}
