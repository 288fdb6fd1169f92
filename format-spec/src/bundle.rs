//! A bundle as assembled from whichever of its volumes are at hand: which blobs can be
//! read whole, and a reader that streams a blob out of its chunks, checking each chunk
//! against its signed table and the blob against its digest (SPEC.md §6).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{FormatError, Invalid};
use crate::manifest::{BundleManifest, Encoding};
use crate::read::Volume;
use crate::rule::Rule;
use crate::state::Stage;
use crate::table::{Chunk, VolumeTable};

/// Volumes of one bundle, by number, and what a state directory kept of others.
pub struct Bundle {
    pub manifest: Arc<BundleManifest>,
    pub manifest_bytes: Arc<Vec<u8>>,
    pub volumes: BTreeMap<u32, Volume>,
    /// Signed tables of volumes seen in earlier runs but not at hand now.
    pub known: BTreeMap<u32, VolumeTable>,
    pub stage: Option<Stage>,
}

/// Where a chunk's bytes are: in a volume at hand, or staged by an earlier run.
#[derive(Clone, Copy)]
pub enum Home<'a> {
    Volume(&'a Volume),
    Staged(&'a Stage),
}

impl Bundle {
    /// Lets go of what only verify, extract and inspect read once the volumes are open:
    /// the manifest's tree (a path per file of the mirror) and the manifest's stored bytes.
    /// A push and a receipt need the blobs and images alone; at 6×10^4 images these are
    /// 40 MB of their peak. The manifest is shared by the bundle and its volumes: each is
    /// pointed at a stub first, so the tree is cleared in place and not copied.
    pub fn drop_tree_and_stored_bytes(&mut self) {
        let m = &self.manifest;
        let stub = Arc::new(BundleManifest {
            creator: m.creator.clone(),
            source_layout: m.source_layout.clone(),
            key: m.key.clone(),
            blobs: Vec::new(),
            images: Vec::new(),
            tree: Vec::new(),
            ..**m
        });
        for v in self.volumes.values_mut() {
            v.manifest = Arc::clone(&stub);
            v.manifest_bytes = Arc::new(Vec::new());
        }
        self.manifest_bytes = Arc::new(Vec::new());
        let mut whole = std::mem::replace(&mut self.manifest, stub);
        // Unique now (else a copy is made, and the copy loses its tree: still correct).
        Arc::make_mut(&mut whole).tree = Vec::new();
        for v in self.volumes.values_mut() {
            v.manifest = Arc::clone(&whole);
        }
        self.manifest = whole;
    }

    /// Groups volumes of one bundle. Every volume must carry the same manifest bytes.
    pub fn new(volumes: Vec<Volume>) -> Result<Bundle, FormatError> {
        let mut iter = volumes.into_iter();
        let first = iter
            .next()
            .ok_or_else(|| FormatError::Plan("no volumes given".into()))?;
        let manifest = Arc::clone(&first.manifest);
        let manifest_bytes = Arc::clone(&first.manifest_bytes);
        let mut by_number = BTreeMap::new();
        by_number.insert(first.table.volume, first);
        for v in iter {
            if v.manifest_bytes != manifest_bytes {
                // R27: byte-identical manifests, padding included.
                return Err(FormatError::NotAVolume {
                    path: v.path.clone(),
                    rule: Rule::R27,
                    reason: if v.manifest.bundle_id == manifest.bundle_id {
                        // Same canonical text (M18, M4), other trailing spaces.
                        padding_differs(&v.manifest.bundle_id)
                    } else {
                        format!(
                            "belongs to bundle {}, not {} like the others",
                            v.manifest.bundle_id, manifest.bundle_id
                        )
                    },
                });
            }
            if let Some(other) = by_number.get(&v.table.volume) {
                if other.path != v.path {
                    // The same volume twice (a copy on two disks) is harmless: keep one.
                    continue;
                }
            }
            by_number.insert(v.table.volume, v);
        }
        Ok(Bundle {
            manifest,
            manifest_bytes,
            volumes: by_number,
            known: BTreeMap::new(),
            stage: None,
        })
    }

    /// Adds what a state directory kept: tables of volumes not at hand, and their staged chunks.
    pub fn with_stage(
        mut self,
        stage: Stage,
        trusted: &[crate::key::PublicKey],
    ) -> (Bundle, Vec<String>) {
        let (tables, mut problems) = stage.load_tables(trusted, &self.manifest.bundle_id);
        let blobs = &self.manifest.blobs;
        for (n, t) in tables {
            // Signed, but checked like a table read from a volume before it is used.
            let sane = t.volume_count == self.manifest.volume_count
                && t.chunks.iter().all(|c| {
                    blobs.get(c.blob as usize).is_some_and(|b| {
                        c.stream_offset
                            .checked_add(c.size)
                            .is_some_and(|e| e <= b.stored_size)
                    })
                })
                && t.chunks
                    .windows(2)
                    .all(|w| (w[0].blob, w[0].stream_offset) < (w[1].blob, w[1].stream_offset));
            if !sane {
                problems.push(format!(
                    "kept table of volume {n} does not fit the bundle manifest; ignored"
                ));
            } else if !self.volumes.contains_key(&n) {
                self.known.insert(n, t);
            }
        }
        self.stage = Some(stage);
        (self, problems)
    }

    /// The chunk entry name of a chunk.
    pub fn chunk_name(&self, c: &Chunk) -> String {
        let b = &self.manifest.blobs[c.blob as usize];
        crate::volume::chunk_name(&b.digest, b.encoding, c.stream_offset)
    }

    /// Whether a chunk of a volume not at hand was staged.
    fn staged(&self, c: &Chunk) -> bool {
        self.stage
            .as_ref()
            .is_some_and(|s| s.chunk_path(&self.chunk_name(c)).is_file())
    }

    /// Volume numbers of the bundle that are not at hand.
    pub fn missing_volumes(&self) -> Vec<u32> {
        (1..=self.manifest.volume_count)
            .filter(|n| !self.volumes.contains_key(n))
            .collect()
    }

    /// The volumes blob `blob` needs that are neither at hand nor staged.
    pub fn blob_missing_volumes(&self, blob: u32) -> Vec<u32> {
        let b = &self.manifest.blobs[blob as usize];
        if b.encoding == Encoding::Base {
            // No volume carries it (see `is_base`): nothing to wait for.
            return Vec::new();
        }
        (b.first_volume..=b.last_volume)
            .filter(|n| {
                if self.volumes.contains_key(n) {
                    return false;
                }
                match self.known.get(n) {
                    Some(t) => !run_of(&t.chunks, blob).iter().all(|c| self.staged(c)),
                    None => true,
                }
            })
            .collect()
    }

    /// True for a blob a delta bundle leaves to its base (the registry must hold it).
    pub fn is_base(&self, blob: u32) -> bool {
        self.manifest.blobs[blob as usize].encoding == Encoding::Base
    }

    /// The chunks of a blob in stream order with where each is, or the volumes still needed.
    pub fn chunks_of(&self, blob: u32) -> Result<Vec<(Home<'_>, Chunk)>, Vec<u32>> {
        let missing = self.blob_missing_volumes(blob);
        if !missing.is_empty() {
            return Err(missing);
        }
        let b = &self.manifest.blobs[blob as usize];
        let mut out = Vec::new();
        for n in b.first_volume..=b.last_volume {
            if let Some(v) = self.volumes.get(&n) {
                out.extend(
                    run_of(&v.table.chunks, blob)
                        .iter()
                        .map(|c| (Home::Volume(v), *c)),
                );
            } else {
                let stage = self.stage.as_ref().expect("staged chunks need a stage");
                out.extend(
                    run_of(&self.known[&n].chunks, blob)
                        .iter()
                        .map(|c| (Home::Staged(stage), *c)),
                );
            }
        }
        Ok(out)
    }

    /// For a blob some of whose volumes are missing: keeps verified copies of the chunks
    /// that are at hand, so a later run with the other volumes can finish it. Returns the
    /// bytes staged.
    pub fn stage_present_chunks(&self, blob: u32) -> Result<u64, FormatError> {
        let Some(stage) = &self.stage else {
            return Ok(0);
        };
        let mut bytes = 0;
        for v in self.volumes.values() {
            stage.save_table(v)?;
            for c in run_of(&v.table.chunks, blob) {
                let name = self.chunk_name(c);
                if !stage.chunk_path(&name).is_file() {
                    let data = v.read_chunk(c)?;
                    stage.stage_chunk(&name, &data)?;
                    bytes += c.size;
                }
            }
        }
        Ok(bytes)
    }

    /// A reader for a registry upload: as [`Bundle::open_blob`], but the final digest is
    /// left to the registry (it refuses a blob whose digest differs), saving a hash pass.
    pub fn open_blob_for_upload(&self, blob: u32) -> Result<BlobReader<'_>, FormatError> {
        let mut r = self.open_blob(blob)?;
        r.hash = false;
        Ok(r)
    }

    /// A reader of blob `blob`'s original bytes. Fails with the volumes still needed.
    pub fn open_blob(&self, blob: u32) -> Result<BlobReader<'_>, FormatError> {
        if self.is_base(blob) {
            return Err(FormatError::Blob {
                what: format!("blob {}", self.manifest.blobs[blob as usize].digest),
                rule: None,
                reason: "is not in this delta bundle: its base (an earlier bundle pushed into the registry) holds it".into(),
            });
        }
        let chunks = self.chunks_of(blob).map_err(|missing| FormatError::Blob {
            what: format!("blob {}", self.manifest.blobs[blob as usize].digest),
            rule: Some(Rule::R28),
            reason: format!("needs volume(s) {} which are not given", list(&missing)),
        })?;
        let b = &self.manifest.blobs[blob as usize];
        // R29: chunks must tile the stored stream exactly (each volume checked its own
        // part), and every carried blob has one (an empty blob, one chunk of size 0).
        if chunks.is_empty() {
            return Err(FormatError::Blob {
                what: format!("blob {}", b.digest),
                rule: Some(Rule::R29),
                reason: "no volume holds a chunk of it".into(),
            });
        }
        let mut next = 0;
        for (_, c) in &chunks {
            if c.stream_offset != next {
                return Err(FormatError::Blob {
                    what: format!("blob {}", b.digest),
                    rule: Some(Rule::R29),
                    reason: "a volume does not continue the blob where the previous one stopped"
                        .into(),
                });
            }
            next += c.size;
        }
        if next != b.stored_size {
            return Err(FormatError::Blob {
                what: format!("blob {}", b.digest),
                rule: Some(Rule::R29),
                reason: "its chunks do not add up to its stored size".into(),
            });
        }
        let stored = StoredReader {
            bundle: self,
            chunks,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            magic: (b.encoding == Encoding::Zstd).then_some(ZSTD_MAGIC),
            delivered: 0,
        };
        let inner: Box<dyn Read + '_> = match b.encoding {
            Encoding::Raw => Box::new(stored),
            Encoding::Base => unreachable!("base blobs are refused above"),
            Encoding::Zstd => {
                Box::new(
                    OneFrame::new(stored, b.digest).map_err(|e| FormatError::Blob {
                        what: format!("blob {}", b.digest),
                        rule: Some(Rule::R31),
                        reason: e.to_string(),
                    })?,
                )
            }
        };
        Ok(BlobReader {
            // One byte more than the signed size, so a stream that decodes larger is caught
            // without decoding more than that (a zstd bomb stops here).
            inner: inner.take(b.size.saturating_add(1)),
            hasher: Sha256::new(),
            count: 0,
            size: b.size,
            digest: b.digest,
            done: false,
            hash: true,
        })
    }
}

/// R27's finding for a volume of the right bundle whose stored manifest differs from the
/// others' in padding only: the same words wherever volumes are grouped.
pub(crate) fn padding_differs(bundle_id: &Digest) -> String {
    format!(
        "carries a bundle manifest of bundle {bundle_id} that is not byte-identical to the others' (they differ in padding): this volume was not written with them; write it again with ferry-pack --only-volume"
    )
}

pub fn list(numbers: &[u32]) -> String {
    numbers
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A blob's chunks within one table: tables are sorted by blob (SPEC.md §5.6).
fn run_of(chunks: &[Chunk], blob: u32) -> &[Chunk] {
    let start = chunks.partition_point(|c| c.blob < blob);
    let len = chunks[start..]
        .iter()
        .take_while(|c| c.blob == blob)
        .count();
    &chunks[start..start + len]
}

/// Reads a staged chunk back, checking it against the signed table it came from.
fn read_staged(stage: &Stage, name: &str, c: &Chunk) -> Result<Vec<u8>, FormatError> {
    let path = stage.chunk_path(name);
    let data = std::fs::read(&path).map_err(FormatError::io(&path))?;
    if data.len() as u64 != c.size
        || crate::digest::Digest(Sha256::digest(&data).into()) != c.sha256
    {
        return Err(FormatError::Blob {
            what: format!("staged chunk {}", path.display()),
            rule: Some(Rule::R30),
            reason: "does not match its signed table: delete it and give the volume again".into(),
        });
    }
    Ok(data)
}

struct StoredReader<'a> {
    bundle: &'a Bundle,
    chunks: Vec<(Home<'a>, Chunk)>,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    /// For a zstd stream: the bytes it must start with (a frame, not a skippable frame).
    magic: Option<[u8; 4]>,
    /// Bytes of the stream handed out so far, up to the length of `magic`.
    delivered: usize,
}

/// The magic number of a zstd frame (RFC 8878 §3.1.1), little-endian 0xFD2FB528.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Read for StoredReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some((home, c)) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            let data = match home {
                Home::Volume(v) => v.read_chunk(c),
                Home::Staged(stage) => read_staged(stage, &self.bundle.chunk_name(c), c),
            };
            // The error travels inside the I/O error, rule and all.
            self.buf = data.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if let Some(magic) = self.magic {
            for &byte in &out[..n] {
                if self.delivered == magic.len() {
                    break;
                }
                if byte != magic[self.delivered] {
                    return Err(Invalid::new(
                        Rule::R31,
                        "its zstd stream does not start with a zstd frame (RFC 8878 §3.1.1)",
                    )
                    .into_io());
                }
                self.delivered += 1;
            }
        }
        Ok(n)
    }
}

/// Decodes exactly one zstd frame and refuses anything after it (SPEC.md §5.5): a second
/// frame or a skippable frame would be bytes the writer never makes, read by some
/// decoders and ignored by others.
struct OneFrame<'a> {
    decoder: Option<zstd::stream::read::Decoder<'static, io::BufReader<StoredReader<'a>>>>,
    digest: Digest,
}

impl<'a> OneFrame<'a> {
    fn new(stored: StoredReader<'a>, digest: Digest) -> io::Result<OneFrame<'a>> {
        let decoder = zstd::stream::read::Decoder::new(stored)?.single_frame();
        Ok(OneFrame {
            decoder: Some(decoder),
            digest,
        })
    }
}

impl Read for OneFrame<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(0);
        };
        let n = decoder.read(out).map_err(|e| {
            // A failure of the stored bytes keeps its own finding; one of the decoder's
            // is R31 (decoding fails), with the decoder's words.
            if e.get_ref()
                .is_some_and(|i| i.is::<FormatError>() || i.is::<Invalid>())
            {
                e
            } else {
                Invalid::new(Rule::R31, e.to_string()).into_io()
            }
        })?;
        if n == 0 && !out.is_empty() {
            // The frame ended: the stored stream must end with it.
            let mut rest = self.decoder.take().expect("decoder present").finish();
            let mut probe = [0u8; 1];
            if rest.read(&mut probe)? != 0 {
                return Err(Invalid::new(
                    Rule::R31,
                    format!(
                        "blob {}: its zstd stream holds bytes after its one frame",
                        self.digest
                    ),
                )
                .into_io());
            }
        }
        Ok(n)
    }
}

/// Streams a blob's original bytes; at the end, fails unless size and digest match.
pub struct BlobReader<'a> {
    inner: io::Take<Box<dyn Read + 'a>>,
    hasher: Sha256,
    count: u64,
    size: u64,
    digest: Digest,
    done: bool,
    /// Off when the bytes go to a registry, which checks the digest itself: every chunk
    /// is still checked against the signed table, and the size bound still holds.
    hash: bool,
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(out)?;
        if self.hash {
            self.hasher.update(&out[..n]);
        }
        self.count += n as u64;
        if self.count > self.size {
            return Err(Invalid::new(
                Rule::R31,
                format!(
                    "blob {} decodes to more than its signed size {}",
                    self.digest, self.size
                ),
            )
            .into_io());
        }
        // At the signed size, check at once: a reader bounded by Content-Length stops here
        // and never asks for the end of the stream.
        if n > 0 && self.count == self.size {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(Invalid::new(
                    Rule::R31,
                    format!(
                        "blob {} decodes to more than its signed size {}",
                        self.digest, self.size
                    ),
                )
                .into_io());
            }
        }
        if n == 0 || self.count == self.size {
            self.done = true;
            let actual = Digest(std::mem::take(&mut self.hasher).finalize().into());
            if self.count != self.size || (self.hash && actual != self.digest) {
                return Err(Invalid::new(
                    Rule::R32,
                    format!(
                        "blob {} reassembled to {} bytes with digest {actual}: damaged",
                        self.digest, self.count
                    ),
                )
                .into_io());
            }
        }
        Ok(n)
    }
}
