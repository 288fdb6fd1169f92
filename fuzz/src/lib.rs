//! Shared by the fuzz targets: the published vector key, the valid vector bundle, a
//! volume writer that re-signs, and the oracle "an accepted volume is exactly what its
//! signed parts rebuild" (SPEC.md §2: every byte is checked; nothing unverified is used).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ferry_format::bundle::Bundle;
use ferry_format::digest::Digest;
use ferry_format::key::{PrivateKey, PublicKey};
use ferry_format::read::Volume;
use ferry_format::volume::{self, entry_len, BLOCK, SIGNATURE_SIZE};

/// `format-spec/vectors/vector-key.pem`: a published test key, trusted by nothing else.
const VECTOR_KEY: &str = include_str!("../../format-spec/vectors/vector-key.pem");

/// The five volumes of `format-spec/vectors/valid-bundle`, in volume order.
pub const VALID_BUNDLE: [&[u8]; 5] = [
    include_bytes!("../../format-spec/vectors/valid-bundle/ferry-772623e2e1fa-001-of-005.tar"),
    include_bytes!("../../format-spec/vectors/valid-bundle/ferry-772623e2e1fa-002-of-005.tar"),
    include_bytes!("../../format-spec/vectors/valid-bundle/ferry-772623e2e1fa-003-of-005.tar"),
    include_bytes!("../../format-spec/vectors/valid-bundle/ferry-772623e2e1fa-004-of-005.tar"),
    include_bytes!("../../format-spec/vectors/valid-bundle/ferry-772623e2e1fa-005-of-005.tar"),
];

pub fn vector_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PrivateKey::from_pem(VECTOR_KEY, Path::new("vector-key.pem")).expect("vector key")
    })
}

pub fn trusted() -> &'static [PublicKey] {
    static KEYS: OnceLock<Vec<PublicKey>> = OnceLock::new();
    KEYS.get_or_init(|| vec![vector_key().public()])
}

/// A directory of this process for the volume files the reader opens (it reads files,
/// not memory: positional reads, SPEC.md §6.1).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("ferry-fuzz-{}", std::process::id()));
        fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

/// Writes `bytes` to `scratch()/name` and returns the path.
pub fn put(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    fs::write(&p, bytes).expect("write scratch volume");
    p
}

/// One tar entry as ferry writes it: header, data, zero padding.
pub fn entry(out: &mut Vec<u8>, name: &str, data: &[u8], mtime: u64) {
    out.extend_from_slice(&volume::header(name, data.len() as u64, mtime));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK as usize) * BLOCK as usize, 0);
}

/// The oracle: a volume that opened with the trusted key and whose chunks all verified is
/// byte for byte what its verified parts rebuild. Panics otherwise (a changed byte was
/// accepted).
pub fn assert_rebuilds(data: &[u8], v: &Volume) {
    let m = &v.manifest;
    let mtime = m.created;
    let b = v.manifest_bytes.len() as u64;
    let i = v.index_bytes.len() as u64;
    let msig_at = (entry_len(b) + BLOCK) as usize;
    let isig_at = (entry_len(b) + entry_len(SIGNATURE_SIZE) + entry_len(i) + BLOCK) as usize;
    let msig = &data[msig_at..msig_at + 64];
    let isig = &data[isig_at..isig_at + 64];
    let mut out = Vec::with_capacity(data.len());
    entry(&mut out, volume::BUNDLE_NAME, &v.manifest_bytes, mtime);
    entry(&mut out, volume::BUNDLE_SIG_NAME, msig, mtime);
    entry(&mut out, volume::INDEX_NAME, &v.index_bytes, mtime);
    entry(&mut out, volume::INDEX_SIG_NAME, isig, mtime);
    for c in &v.table.chunks {
        let blob = &m.blobs[c.blob as usize];
        let data = v.read_chunk(c).expect("a verified chunk reads back");
        entry(
            &mut out,
            &volume::chunk_name(&blob.digest, blob.encoding, c.stream_offset),
            &data,
            mtime,
        );
    }
    let (table, sig) = v.signed_table();
    let table_offset = out.len() as u64;
    entry(&mut out, &volume::table_name(v.table.volume), table, mtime);
    entry(
        &mut out,
        &volume::table_sig_name(v.table.volume),
        sig,
        mtime,
    );
    entry(
        &mut out,
        volume::TRAILER_NAME,
        &volume::trailer(table_offset, table.len() as u64),
        mtime,
    );
    out.extend_from_slice(&[0u8; 1024]);
    assert!(
        out == data,
        "a volume was accepted although it is not what its signed parts rebuild (first difference at byte {:?})",
        out.iter().zip(data).position(|(x, y)| x != y)
    );
}

/// Opens and checks every volume given, then reads back every blob that the accepted
/// ones hold whole: the path `extract` and `push` take. Returns how many were accepted.
pub fn read_everything(paths: &[PathBuf], datas: &[&[u8]], keys: Option<&[PublicKey]>) -> usize {
    let mut opened = Vec::new();
    for (p, data) in paths.iter().zip(datas) {
        let v = match keys {
            Some(k) => Volume::open(p, k),
            None => Volume::open_unverified(p),
        };
        let Ok(v) = v else { continue };
        let damage = v.verify_chunks(&|_| {});
        if damage.is_empty() {
            if keys.is_some() {
                assert_rebuilds(data, &v);
            }
            opened.push(v);
        }
    }
    let n = opened.len();
    if let Ok(bundle) = Bundle::new(opened) {
        for blob in 0..bundle.manifest.blobs.len() as u32 {
            let Ok(mut r) = bundle.open_blob(blob) else {
                continue;
            };
            let mut sink = [0u8; 64 << 10];
            let mut total: u64 = 0;
            loop {
                match r.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        total += k as u64;
                        // R31: never more than the signed size (+1 to notice).
                        assert!(
                            total <= bundle.manifest.blobs[blob as usize].size.saturating_add(1),
                            "blob {blob} decoded past its signed size"
                        );
                    }
                }
            }
        }
    }
    n
}

/// A valid vector volume taken apart, to be put together again with other documents and
/// re-signed with the vector key, so fuzzed tables and manifests get past R3 and R10.
pub struct Parts {
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
    pub table: Vec<u8>,
    /// Chunk entries as they are: (name, data).
    pub chunks: Vec<(String, Vec<u8>)>,
    pub mtime: u64,
}

impl Parts {
    pub fn of(bytes: &[u8]) -> Parts {
        let p = put("parts.tar", bytes);
        let v = Volume::open(&p, trusted()).expect("a valid vector volume");
        let m = &v.manifest;
        let chunks = v
            .table
            .chunks
            .iter()
            .map(|c| {
                let b = &m.blobs[c.blob as usize];
                (
                    volume::chunk_name(&b.digest, b.encoding, c.stream_offset),
                    v.read_chunk(c).expect("chunk"),
                )
            })
            .collect();
        Parts {
            manifest: v.manifest_bytes.to_vec(),
            index: v.index_bytes.clone(),
            table: v.signed_table().0.to_vec(),
            chunks,
            mtime: m.created,
        }
    }

    /// The volume file: documents signed by the vector key, the table named as volume
    /// `number`, the trailer pointing at wherever the table lands.
    pub fn write(&self, number: u32) -> Vec<u8> {
        let mut out = Vec::new();
        entry(&mut out, volume::BUNDLE_NAME, &self.manifest, self.mtime);
        entry(
            &mut out,
            volume::BUNDLE_SIG_NAME,
            &sign(&self.manifest),
            self.mtime,
        );
        entry(&mut out, volume::INDEX_NAME, &self.index, self.mtime);
        entry(
            &mut out,
            volume::INDEX_SIG_NAME,
            &sign(&self.index),
            self.mtime,
        );
        for (name, data) in &self.chunks {
            entry(&mut out, name, data, self.mtime);
        }
        let table_offset = out.len() as u64;
        entry(
            &mut out,
            &volume::table_name(number),
            &self.table,
            self.mtime,
        );
        entry(
            &mut out,
            &volume::table_sig_name(number),
            &sign(&self.table),
            self.mtime,
        );
        entry(
            &mut out,
            volume::TRAILER_NAME,
            &volume::trailer(table_offset, self.table.len() as u64),
            self.mtime,
        );
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// Signs with the vector key, remembering the signatures of the documents that do not
/// change between runs (instrumented Ed25519 is what makes re-signing targets slow).
pub fn sign(message: &[u8]) -> [u8; 64] {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, [u8; 64]>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut c = cache.lock().unwrap();
    if let Some(s) = c.get(message) {
        return *s;
    }
    let s = vector_key().sign(message);
    if c.len() < 64 {
        c.insert(message.to_vec(), s);
    }
    s
}

/// Table offsets recomputed for a manifest of another length: what a writer would sign.
pub fn relocate(table: &mut ferry_format::table::VolumeTable, manifest: &[u8], index: &[u8]) {
    table.bundle_manifest.digest = Digest::of(manifest);
    table.bundle_manifest.size = manifest.len() as u64;
    table.index.digest = Digest::of(index);
    table.index.size = index.len() as u64;
    let mut offset = volume::head_len(manifest.len() as u64, index.len() as u64);
    for c in &mut table.chunks {
        c.offset = offset;
        offset = offset.saturating_add(entry_len(c.size));
    }
}
