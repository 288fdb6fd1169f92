//! Shared by the fuzz targets: the published vector key, the valid vector bundle taken
//! apart to be re-signed (the workspace test kit's `Parts`, test-support/src/resign.rs),
//! and the oracle "an accepted volume is exactly what its signed parts rebuild" (SPEC.md
//! §2: every byte is checked; nothing unverified is used).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use format_spec::bundle::Bundle;
use format_spec::key::{PrivateKey, PublicKey};
use format_spec::read::Volume;
use format_spec::volume::{self, entry_len, BLOCK, SIGNATURE_SIZE};
pub use test_support::resign::{entry, relocate, Parts, Sign};

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

/// The oracle: a volume that opened with the trusted key and whose chunks all verified is
/// byte for byte what its verified parts rebuild. Panics otherwise (a changed byte was
/// accepted).
pub fn assert_rebuilds(data: &[u8], v: &Volume) {
    let m = &v.manifest;
    let mtime = m.created;
    let b = v.manifest_bytes.len() as u64;
    let i = v.index_id().0;
    let msig_at = (entry_len(b) + BLOCK) as usize;
    let isig_at = (entry_len(b) + entry_len(SIGNATURE_SIZE) + entry_len(i) + BLOCK) as usize;
    let msig = &data[msig_at..msig_at + 64];
    let isig = &data[isig_at..isig_at + 64];
    let mut out = Vec::with_capacity(data.len());
    let version = m.ferry_bundle;
    entry(&mut out, volume::bundle_name(version), &v.manifest_bytes, mtime);
    entry(&mut out, volume::bundle_sig_name(version), msig, mtime);
    let index = v.index_bytes().expect("a verified index reads back");
    entry(&mut out, volume::INDEX_NAME, &index, mtime);
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
    let (table, sig) = v.signed_table().expect("the volume's table reads again");
    let table_offset = out.len() as u64;
    entry(&mut out, &volume::table_name(v.table.volume), &table, mtime);
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
/// re-signed with the vector key ([`VectorKey`]), so fuzzed tables and manifests get past
/// R3 and R10.
pub fn parts_of(bytes: &[u8]) -> Parts {
    let p = put("parts.tar", bytes);
    Parts::read(&p, &trusted()[0])
}

/// Signs with the vector key, remembering the signatures of the documents that do not
/// change between runs (instrumented Ed25519 is what makes re-signing targets slow).
pub struct VectorKey;

impl Sign for VectorKey {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
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
}
