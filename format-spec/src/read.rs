//! Reading volumes (SPEC.md §5.6): find the table from the trailer, check its signature
//! before trusting a byte of it, then check every other byte against it.
//!
//! Reads use `pread`, never a memory map: a pulled USB stick must give an I/O error, not
//! a SIGBUS that kills the process. Nothing is ever written next to a volume.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{FormatError, Invalid};
use crate::key::PublicKey;
use crate::manifest::BundleManifest;
use crate::rule::Rule;
use crate::table::{Chunk, VolumeTable};
use crate::volume::{self, entry_len, BLOCK, MAX_DOCUMENT, SIGNATURE_SIZE, TAIL_FIXED};

/// A volume whose table and manifest were read and, unless opened with
/// [`Volume::open_unverified`], signature-checked.
#[derive(Debug)]
pub struct Volume {
    pub path: PathBuf,
    file: File,
    pub size: u64,
    pub table: VolumeTable,
    pub manifest: Arc<BundleManifest>,
    pub manifest_bytes: Arc<Vec<u8>>,
    /// Where `ferry/index.json`'s bytes are, their length and digest: read again when
    /// wanted ([`Volume::index_bytes`]) rather than held by every volume open (15 MB at
    /// 6×10^4 images, once per volume given).
    index_at: u64,
    index_len: u64,
    index_digest: Digest,
    /// Fingerprint of the trusted key that signed it; `None` when opened unverified.
    pub signed_by: Option<String>,
    table_offset: u64,
    /// The signed table's length and digest: its bytes are read again when kept
    /// ([`Volume::signed_table`]) rather than held (~30 MB at 1.86×10^5 chunks).
    table_size: u64,
    table_digest: Digest,
    table_sig: Vec<u8>,
}

/// One problem found in a volume's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the damaged entry's header in the volume.
    pub offset: u64,
    /// What is damaged, e.g. "chunk data" or "tar header".
    pub what: String,
    /// The rule broken (R24 header, R25 data, R26 padding); `None` when the entry could
    /// not be read at all.
    pub rule: Option<Rule>,
    /// The chunk, when the damage is in one.
    pub chunk: Option<Chunk>,
}

impl Volume {
    /// Opens a volume, checking the table's and manifest's signatures against `trusted`
    /// and the table's structure against the file (SPEC.md §5.6, rules R1–R23, R33, R34).
    pub fn open(path: &Path, trusted: &[PublicKey]) -> Result<Volume, FormatError> {
        Volume::open_beside(path, Some(trusted), &[])
    }

    /// Opens without checking signatures (for `inspect`): nothing read this way may be trusted.
    pub fn open_unverified(path: &Path) -> Result<Volume, FormatError> {
        Volume::open_beside(path, None, &[])
    }

    /// As [`Volume::open`] (`trusted` given) or [`Volume::open_unverified`], next to volumes
    /// already open: when the signed table names the manifest one of them carries (same
    /// digest and size), the volume's own copy is checked against it as it is read — every
    /// rule as for a first volume — and the parsed manifest is shared rather than parsed
    /// again, so memory does not grow with the volumes given (at 6×10^4 images one parse
    /// holds over 100 MB for a moment, and the copy and its parse stay as long as the volume).
    pub fn open_beside(
        path: &Path,
        trusted: Option<&[PublicKey]>,
        earlier: &[&Volume],
    ) -> Result<Volume, FormatError> {
        Volume::open_inner(path, trusted, earlier)
    }

    fn open_inner(
        path: &Path,
        trusted: Option<&[PublicKey]>,
        earlier: &[&Volume],
    ) -> Result<Volume, FormatError> {
        let not_volume = |rule: Rule, reason: String| FormatError::NotAVolume {
            path: path.to_owned(),
            rule,
            reason,
        };
        let invalid = |invalid: Invalid| FormatError::Invalid {
            path: path.to_owned(),
            invalid,
        };
        let file = File::open(path).map_err(FormatError::io(path))?;
        let meta = file.metadata().map_err(FormatError::io(path))?;
        if !meta.is_file() {
            return Err(not_volume(Rule::R1, "not a regular file".into()));
        }
        let size = meta.len();
        let min = volume::head_len(0, 0) + volume::tail_len(0);
        if size < min || size % BLOCK != 0 {
            return Err(not_volume(Rule::R1, format!(
                "{size} bytes is not a whole number of 512-byte blocks of at least {min}: truncated, or not a ferry volume (copy it again, or write it again with ferry-pack --only-volume)"
            )));
        }
        let read = |offset: u64, len: u64| -> Result<Vec<u8>, FormatError> {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, offset)
                .map_err(FormatError::io(path))?;
            Ok(buf)
        };
        // R1: the end of the archive, the trailer and its header.
        let tail = read(
            size - TAIL_FIXED + volume::entry_len(SIGNATURE_SIZE),
            2 * BLOCK + volume::END_OF_ARCHIVE,
        )?;
        if tail[2 * BLOCK as usize..].iter().any(|&b| b != 0) {
            return Err(not_volume(
                Rule::R1,
                "no end-of-archive blocks at the end: truncated, or not a ferry volume (copy it again, or write it again with ferry-pack --only-volume)".into(),
            ));
        }
        let (table_offset, table_size) = volume::parse_trailer(&tail[BLOCK as usize..2 * BLOCK as usize])
            .ok_or_else(|| not_volume(Rule::R1, "no ferry trailer before the end of the archive: truncated, damaged, or not a ferry volume".into()))?;
        // R2: the table must sit exactly before the signature, trailer and end blocks.
        if table_size > MAX_DOCUMENT
            || table_offset.checked_add(volume::tail_len(table_size)) != Some(size)
        {
            return Err(not_volume(Rule::R2, format!(
                "the trailer places a {table_size}-byte table at offset {table_offset}, which does not end where the file does ({size} bytes): truncated or damaged"
            )));
        }
        let table_bytes = read(table_offset + BLOCK, table_size)?;
        let sig_offset = table_offset + entry_len(table_size);
        let table_sig = read(sig_offset + BLOCK, SIGNATURE_SIZE)?;
        // R3; the manifest and index must then be signed by that same key (R33).
        let signer: Option<Vec<PublicKey>> = match trusted {
            Some(keys) => Some(vec![check_signature(
                path,
                keys,
                &table_bytes,
                &table_sig,
                "volume table",
                Rule::R3,
            )?]),
            None => None,
        };
        let signed_by = signer.as_ref().map(|k| k[0].fingerprint());
        let table = VolumeTable::parse(&table_bytes).map_err(invalid)?;
        // Only the digest is kept, for R23 and for reading the bytes again (`signed_table`):
        // the bytes (30 MB at 1.86×10^5 chunks) go before the manifest is read and parsed,
        // the peak of opening. (Under glibc's allocator that left the heap more fragmented
        // there; both binaries use mimalloc.)
        let table_digest = Digest::of(&table_bytes);
        drop(table_bytes);
        let bm = table.bundle_manifest;
        let ix = table.index;
        if bm.size > MAX_DOCUMENT || ix.size > MAX_DOCUMENT {
            return Err(invalid(Invalid::new(
                Rule::R8,
                "volume table declares a manifest or index over the size limit",
            )));
        }
        let head = volume::head_len(bm.size, ix.size);
        if head > table_offset {
            return Err(invalid(Invalid::new(
                Rule::R8,
                "volume table declares a manifest and index larger than the volume",
            )));
        }
        let known = earlier
            .iter()
            .find(|v| v.table.bundle_manifest == bm && v.manifest_bytes.len() as u64 == bm.size);
        let (manifest_bytes, on_disk) = match known {
            // The same signed digest: this copy is hashed as it is read (R9), then its
            // bytes compared with the known ones where R23 reads the entry.
            Some(v) => (
                Arc::clone(&v.manifest_bytes),
                hash_range(&file, BLOCK, bm.size).map_err(FormatError::io(path))?,
            ),
            None => {
                let bytes = read(BLOCK, bm.size)?;
                let digest = Digest::of(&bytes);
                (Arc::new(bytes), digest)
            }
        };
        if on_disk != bm.digest {
            return Err(invalid(Invalid::new(
                Rule::R9,
                format!(
                    "{} at offset 0 does not match the digest in the volume table: damaged",
                    volume::bundle_name(table.ferry_volume)
                ),
            )));
        }
        let manifest_sig_offset = entry_len(bm.size);
        let manifest_sig = read(manifest_sig_offset + BLOCK, SIGNATURE_SIZE)?;
        if let Some(keys) = &signer {
            check_signature(
                path,
                keys,
                &manifest_bytes,
                &manifest_sig,
                "bundle manifest",
                Rule::R10,
            )?;
        }
        // The index is checked, and its bytes dropped, before the manifest is parsed: they
        // are 15 MB at 6×10^4 images, beside the parse, the peak of opening.
        let index_offset = manifest_sig_offset + entry_len(SIGNATURE_SIZE);
        let index_bytes = read(index_offset + BLOCK, ix.size)?;
        if Digest::of(&index_bytes) != ix.digest {
            return Err(invalid(index_differs()));
        }
        let index_sig_offset = index_offset + entry_len(ix.size);
        let index_sig = read(index_sig_offset + BLOCK, SIGNATURE_SIZE)?;
        if let Some(keys) = &signer {
            check_signature(
                path,
                keys,
                &index_bytes,
                &index_sig,
                "image index",
                Rule::R13,
            )?;
        }
        drop(index_bytes);
        // R11: the finding names the M rule broken.
        let manifest = match known {
            Some(v) => Arc::clone(&v.manifest),
            None => Arc::new(BundleManifest::parse(&manifest_bytes).map_err(invalid)?),
        };
        // R35: the table's version is its bundle's, so the entry names R23 checks are
        // the ones the manifest's version has.
        if manifest.ferry_bundle != table.ferry_volume {
            return Err(invalid(Invalid::new(
                Rule::R35,
                format!(
                    "volume table version {} holds a bundle manifest of version {}: a table and its manifest have the same version",
                    table.ferry_volume, manifest.ferry_bundle
                ),
            )));
        }
        if ix.digest != manifest.index_json {
            return Err(invalid(index_differs()));
        }
        if table.bundle_id != manifest.bundle_id || table.volume_count != manifest.volume_count {
            return Err(invalid(Invalid::new(
                Rule::R14,
                "volume table and bundle manifest belong to different bundles",
            )));
        }
        check_chunks(&table, &manifest, head, table_offset).map_err(invalid)?;
        // R23: every metadata entry's header, padding and the fixed tail, byte for byte.
        let mtime = manifest.created;
        let trailer = volume::trailer(table_offset, table_size);
        let meta_entries: [(u64, String, Data); 7] = [
            (
                0,
                volume::bundle_name(manifest.ferry_bundle).into(),
                Data::Bytes(&manifest_bytes),
            ),
            (
                manifest_sig_offset,
                volume::bundle_sig_name(manifest.ferry_bundle).into(),
                Data::Bytes(&manifest_sig),
            ),
            (
                index_offset,
                volume::INDEX_NAME.into(),
                Data::Digest(ix.size, ix.digest),
            ),
            (
                index_sig_offset,
                volume::INDEX_SIG_NAME.into(),
                Data::Bytes(&index_sig),
            ),
            (
                table_offset,
                volume::table_name(table.volume),
                Data::Digest(table_size, table_digest),
            ),
            (
                sig_offset,
                volume::table_sig_name(table.volume),
                Data::Bytes(&table_sig),
            ),
            (
                sig_offset + entry_len(SIGNATURE_SIZE),
                volume::TRAILER_NAME.into(),
                Data::Bytes(&trailer),
            ),
        ];
        for (offset, name, data) in meta_entries {
            let len = data.len();
            if !entry_is(&file, offset, &volume::header(&name, len, mtime), data)
                .map_err(FormatError::io(path))?
            {
                return Err(invalid(Invalid::new(Rule::R23, format!(
                    "entry {name} at offset {offset} is damaged (tar header, data or padding differs from what the signed table implies)"
                ))));
            }
        }
        // R33: the manifest names the key that signed it.
        if let Some(fp) = &signed_by {
            if *fp != manifest.key {
                return Err(invalid(Invalid::new(
                    Rule::R33,
                    format!(
                        "bundle manifest names key {} but was signed by {fp}",
                        manifest.key
                    ),
                )));
            }
        }
        // R34: no volume is larger than the size the bundle was made for.
        if size > manifest.volume_size {
            return Err(invalid(Invalid::new(
                Rule::R34,
                format!(
                    "volume is {size} bytes, larger than the bundle's volume size {}",
                    manifest.volume_size
                ),
            )));
        }
        Ok(Volume {
            path: path.to_owned(),
            file,
            size,
            table,
            manifest,
            manifest_bytes,
            index_at: index_offset + BLOCK,
            index_len: ix.size,
            index_digest: ix.digest,
            signed_by,
            table_offset,
            table_size,
            table_digest,
            table_sig,
        })
    }

    /// Reads every chunk entry and checks its header, data and padding; returns what is
    /// damaged. Both cores hash while a third thread reads ahead.
    pub fn verify_chunks(&self, progress: &(dyn Fn(u64) + Sync)) -> Vec<Damage> {
        let chunks = &self.table.chunks;
        let (tx, rx) = sync_channel::<(usize, std::io::Result<Vec<u8>>)>(4);
        let rx = Arc::new(Mutex::new(rx));
        let damages = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for (i, c) in chunks.iter().enumerate() {
                    let mut buf = vec![0u8; entry_len(c.size) as usize];
                    let r = self.file.read_exact_at(&mut buf, c.offset).map(|()| buf);
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
            let workers = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(1);
            for _ in 0..workers {
                let rx = Arc::clone(&rx);
                let damages = &damages;
                scope.spawn(move || loop {
                    let next = rx.lock().expect("queue lock").recv();
                    let Ok((i, result)) = next else { return };
                    let c = &chunks[i];
                    progress(c.size);
                    if let Some(d) = self.check_chunk(c, result) {
                        damages.lock().expect("damage lock").push(d);
                    }
                });
            }
        });
        let mut damages = damages.into_inner().expect("damage lock");
        damages.sort_by_key(|d| d.offset);
        damages
    }

    fn check_chunk(&self, c: &Chunk, read: std::io::Result<Vec<u8>>) -> Option<Damage> {
        match read {
            Ok(buf) => self.check_entry(c, &buf),
            Err(e) => Some(Damage {
                offset: c.offset,
                what: format!("unreadable: {e}"),
                rule: None,
                chunk: Some(*c),
            }),
        }
    }

    /// R24–R26 on a chunk's whole entry: header, data, padding.
    fn check_entry(&self, c: &Chunk, buf: &[u8]) -> Option<Damage> {
        let damage = |rule: Rule, what: &str| {
            Some(Damage {
                offset: c.offset,
                what: what.to_string(),
                rule: Some(rule),
                chunk: Some(*c),
            })
        };
        let blob = &self.manifest.blobs[c.blob as usize];
        let name = volume::chunk_name(&blob.digest, blob.encoding, c.stream_offset);
        let end = (BLOCK + c.size) as usize;
        if buf[..BLOCK as usize] != volume::header(&name, c.size, self.manifest.created) {
            return damage(Rule::R24, "tar header");
        }
        if Digest(Sha256::digest(&buf[BLOCK as usize..end]).into()) != c.sha256 {
            return damage(Rule::R25, "chunk data");
        }
        if buf[end..].iter().any(|&b| b != 0) {
            return damage(Rule::R26, "padding after chunk");
        }
        None
    }

    /// Reads one chunk's stored bytes and checks them against the signed table.
    pub fn read_chunk(&self, c: &Chunk) -> Result<Vec<u8>, FormatError> {
        // The whole entry, so its header and padding are checked on use too (R24–R26),
        // not only by verify: a medium can change between the two.
        let mut entry = vec![0u8; entry_len(c.size) as usize];
        let read = self.file.read_exact_at(&mut entry, c.offset);
        let problem = match read {
            Err(e) => return Err(FormatError::io(&self.path)(e)),
            Ok(()) => self.check_entry(c, &entry),
        };
        if let Some(d) = problem {
            let blob = &self.manifest.blobs[c.blob as usize];
            // R30: R24–R26 again, on the bytes actually used.
            return Err(FormatError::Blob {
                rule: Some(Rule::R30),
                what: format!(
                    "blob {} (chunk at offset {} of {})",
                    blob.digest,
                    c.offset,
                    self.path.display()
                ),
                reason: format!(
                    "{} does not match the signed table: the volume is damaged (run ferry-unpack verify)",
                    d.what
                ),
            });
        }
        entry.truncate((BLOCK + c.size) as usize);
        entry.drain(..BLOCK as usize);
        Ok(entry)
    }

    /// Where the signed table's entry sits, and the table's bytes, read again (for tests
    /// and inspection; a reader keeps them with [`Volume::signed_table`]).
    ///
    /// # Panics
    /// When the volume no longer reads as it did when opened.
    pub fn table_location(&self) -> (u64, Vec<u8>) {
        let (bytes, _) = self
            .signed_table()
            .unwrap_or_else(|e| panic!("reading the table again: {e}"));
        (self.table_offset, bytes)
    }

    /// The length and digest of `ferry/index.json` (checked when the volume was opened).
    pub fn index_id(&self) -> (u64, Digest) {
        (self.index_len, self.index_digest)
    }

    /// The bytes of `ferry/index.json`, read again and checked against the digest they had
    /// when the volume was opened (and its signature checked).
    pub fn index_bytes(&self) -> Result<Vec<u8>, FormatError> {
        self.read_again(
            self.index_at,
            self.index_len,
            &self.index_digest,
            "ferry/index.json",
        )
    }

    /// The table's exact bytes and signature, to keep in a state directory. The bytes are
    /// read again from the volume and must be those that were verified (their digest):
    /// media that changed since is an error, not a table kept.
    pub fn signed_table(&self) -> Result<(Vec<u8>, &[u8]), FormatError> {
        let bytes = self.read_again(
            self.table_offset + BLOCK,
            self.table_size,
            &self.table_digest,
            "volume table",
        )?;
        Ok((bytes, &self.table_sig))
    }

    /// `len` bytes at `offset`, which must still hash to `digest`, the digest `what` had
    /// when the volume was opened.
    fn read_again(
        &self,
        offset: u64,
        len: u64,
        digest: &Digest,
        what: &str,
    ) -> Result<Vec<u8>, FormatError> {
        let mut bytes = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut bytes, offset)
            .map_err(FormatError::io(&self.path))?;
        if Digest::of(&bytes) != *digest {
            return Err(FormatError::io(&self.path)(std::io::Error::other(format!(
                "its {what} reads differently than when it was verified: the medium changed or is failing; verify it again"
            ))));
        }
        Ok(bytes)
    }
}

/// R12's finding.
fn index_differs() -> Invalid {
    Invalid::new(
        Rule::R12,
        format!(
            "{} does not match the digest in the volume table and bundle manifest: damaged",
            volume::INDEX_NAME
        ),
    )
}

/// SHA-256 of `len` bytes of `file` from `offset`, read a block at a time.
fn hash_range(file: &File, offset: u64, len: u64) -> std::io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut piece = vec![0u8; (1 << 20).min(len as usize)];
    let mut at = offset;
    let end = offset + len;
    while at < end {
        let n = piece.len().min((end - at) as usize);
        file.read_exact_at(&mut piece[..n], at)?;
        hasher.update(&piece[..n]);
        at += n as u64;
    }
    Ok(Digest(hasher.finalize().into()))
}

/// What an entry's data must be: these bytes, or (for bytes read and dropped before)
/// bytes of this length and digest.
enum Data<'a> {
    Bytes(&'a [u8]),
    Digest(u64, Digest),
}

impl Data<'_> {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Digest(len, _) => *len,
        }
    }
}

/// Whether the entry at `offset` is exactly `header`, `data` and zero padding, read a block
/// at a time: the manifest's entry is the size of the manifest (70 MB at 6×10^4 images in
/// format 1), which a whole second copy would add to the peak of every reader.
fn entry_is(file: &File, offset: u64, header: &[u8], data: Data) -> std::io::Result<bool> {
    let mut block = vec![0u8; BLOCK as usize];
    file.read_exact_at(&mut block, offset)?;
    if block != header {
        return Ok(false);
    }
    let len = data.len();
    let at = offset + BLOCK;
    match data {
        Data::Bytes(bytes) => {
            let mut piece = vec![0u8; (1 << 20).min(bytes.len())];
            let mut from = at;
            for expected in bytes.chunks(piece.len().max(1)) {
                let got = &mut piece[..expected.len()];
                file.read_exact_at(got, from)?;
                if got != expected {
                    return Ok(false);
                }
                from += expected.len() as u64;
            }
        }
        Data::Digest(_, digest) => {
            if hash_range(file, at, len)? != digest {
                return Ok(false);
            }
        }
    }
    let padding = &mut block[..(entry_len(len) - BLOCK - len) as usize];
    file.read_exact_at(padding, at + len)?;
    Ok(padding.iter().all(|&b| b == 0))
}

fn check_signature(
    path: &Path,
    keys: &[PublicKey],
    message: &[u8],
    sig: &[u8],
    what: &str,
    rule: Rule,
) -> Result<PublicKey, FormatError> {
    if let Some(k) = keys.iter().find(|k| k.verify(message, sig)) {
        return Ok(k.clone());
    }
    let trusted: Vec<String> = keys.iter().map(|k| k.fingerprint()).collect();
    Err(FormatError::Untrusted {
        path: path.to_owned(),
        rule,
        detail: format!(
            "the {what} signature does not verify with {} — damaged, forged, or signed by another key; `ferry-unpack inspect` shows the key it claims, compare fingerprints with the connected side",
            if trusted.is_empty() { "any key (none given)".to_string() } else { format!("trusted key(s) {}", trusted.join(", ")) }
        ),
    })
}

/// Rules the chunk list must obey against the manifest and the file (SPEC.md §5.6).
fn check_chunks(
    table: &VolumeTable,
    m: &BundleManifest,
    head: u64,
    table_offset: u64,
) -> Result<(), Invalid> {
    let mut expected = head;
    let mut previous: Option<&Chunk> = None;
    for c in &table.chunks {
        let bad = |rule: Rule, what: &str| {
            Err(Invalid::new(
                rule,
                format!("volume table: chunk at offset {}: {what}", c.offset),
            ))
        };
        if c.offset != expected {
            return bad(
                Rule::R15,
                &format!("expected at offset {expected} (chunks must follow each other)"),
            );
        }
        let Some(blob) = m.blobs.get(c.blob as usize) else {
            return bad(Rule::R16, "names a blob the manifest does not have");
        };
        if c.size > m.chunk_size || (c.size == 0 && blob.stored_size != 0) {
            return bad(Rule::R17, "size is zero or over the chunk size");
        }
        if c.stream_offset
            .checked_add(c.size)
            .is_none_or(|end| end > blob.stored_size)
        {
            return bad(Rule::R18, "reaches past the end of its blob");
        }
        if table.volume < blob.first_volume || table.volume > blob.last_volume {
            return bad(Rule::R19, "its blob is not listed in this volume");
        }
        // Blobs are laid out in manifest order, each blob's chunks in stream order, with no
        // gaps: a chunk continues its predecessor's blob or starts the next blob at 0.
        let follows = match previous {
            Some(p) => {
                let p_end = p.stream_offset + p.size;
                let p_stored = m.blobs[p.blob as usize].stored_size;
                (p.blob == c.blob && p_end == c.stream_offset && c.size > 0)
                    || (m.next_carried(p.blob) == Some(c.blob)
                        && p_end == p_stored
                        && c.stream_offset == 0)
            }
            None => c.stream_offset == 0 || blob.first_volume < table.volume,
        };
        if !follows {
            return bad(Rule::R20, "out of order, overlapping, or leaving a gap");
        }
        expected = expected
            .checked_add(entry_len(c.size))
            .ok_or_else(|| Invalid::new(Rule::R15, "volume table: offsets overflow"))?;
        previous = Some(c);
    }
    if let Some(last) = previous {
        let blob = &m.blobs[last.blob as usize];
        if last.stream_offset + last.size != blob.stored_size && blob.last_volume <= table.volume {
            return Err(Invalid::new(Rule::R21, "volume table: the last chunk leaves its blob unfinished, yet no later volume holds the rest"));
        }
    }
    if expected != table_offset {
        return Err(Invalid::new(Rule::R22, format!(
            "volume table: chunks end at {expected} but the table starts at {table_offset}: entries are missing or unnamed"
        )));
    }
    Ok(())
}
