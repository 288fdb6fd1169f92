//! Hostile volumes (issue 5): a generator of malformed bundles, made at test time from a
//! good bundle of `fixtures/oci` (no committed opaque blobs), and a runner that gives each
//! one to the real `ferry-unpack verify`, `extract` and `push` under a memory cap.
//!
//! SPEC.md §2 is the contract: every byte of a volume is checked, nothing unverified is
//! used, sizes are checked before allocation. So for every case `verify` must exit 1 and
//! say what is wrong and where (the volume's path and the region or rule), no binary may
//! panic or be killed, and `push` into a real registry must upload nothing the signature
//! does not vouch for. The few lies only a trusted signer can tell and only reading the
//! blob reveals (R31, R32: §6.1 has `verify` check volumes, not decode blobs) are refused
//! by `extract` or `push` instead; [`Case::caught_by`] says which.
//!
//! Every case pushes into its own fresh registry ([`crate::registry::Registry`]), so a blob
//! found there came from that case's push.
//!
//! Cases that change a signed document are re-signed with the test's own trusted key, with
//! the test kit's `Parts` (test-support/src/resign.rs, which also makes format-spec's
//! vectors): take the volume apart with the format library, change it, put it together
//! and sign it again.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_format::digest::Digest;
use ferry_format::key::{PrivateKey, PublicKey};
use ferry_format::manifest::{BundleManifest, Encoding, TreeEntry};
use ferry_format::read::Volume;
use ferry_format::table::{Chunk, VolumeTable};
use ferry_format::volume::{self, entry_len, BLOCK, SIGNATURE_SIZE};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

pub use test_support::resign::{resign_volumes, Parts};

use crate::registry::Registry;
use crate::{
    ferry_pack_bin, ferry_unpack_bin, fixture, keygen, pack_ok, run_command, tempdir, volumes, Key,
    OutputExt,
};

/// Address space for every binary run here (`prlimit --as`): an allocation proportional
/// to a declared 2^63 size, or an unbounded decompression into memory, fails under it.
pub const MEMORY_CAP: u64 = 1 << 30;
/// Small volumes so the fixture makes a bundle of several volumes with blobs spanning them.
pub const VOLUME_SIZE: &str = "64KiB";
/// `created` of the older bundle (the good one takes the fixture's mtime, 1600000000).
pub const OLDER_EPOCH: &str = "1500000000";
/// How far the zstd bomb decodes (its signed size is [`BOMB_SIGNED_SIZE`]).
pub const BOMB_DECODED: u64 = 8 << 30;
pub const BOMB_SIGNED_SIZE: u64 = 1000;

// ---------------------------------------------------------------------------------------
// The good material

/// Everything the cases are made from, in one temporary directory.
pub struct Fixture {
    pub dir: TempDir,
    /// The trusted key (`--trust key.public`), also used to re-sign changed documents.
    pub key: Key,
    pub secret: PrivateKey,
    pub public: PublicKey,
    /// A key nobody trusts.
    pub other: Key,
    pub other_secret: PrivateKey,
    /// `fixtures/oci` packed into 64 KiB volumes: the bundle the cases damage.
    pub good: Vec<PathBuf>,
    /// The same mirror packed with an earlier SOURCE_DATE_EPOCH: another, older bundle.
    pub older: Vec<PathBuf>,
    /// `fixtures/skopeo-dir` packed with the same key: another bundle, same signer.
    pub other_bundle: Vec<PathBuf>,
    /// `fixtures/oci` packed with the untrusted key.
    pub untrusted: Vec<PathBuf>,
    /// Digests of every blob the good bundle's signed manifest lists.
    pub vouched: BTreeSet<String>,
    /// Those some image needs (what a push of the good bundle uploads).
    pub image_blobs: BTreeSet<String>,
}

impl Fixture {
    pub fn build() -> Fixture {
        let dir = tempdir();
        let key = keygen(dir.path(), "site.key");
        let other = keygen(dir.path(), "other.key");
        let secret = PrivateKey::load(&key.private).expect("load the test key");
        let public = secret.public();
        let other_secret = PrivateKey::load(&other.private).expect("load the other key");
        let oci = fixture("oci");
        let good_dir = dir.path().join("good");
        pack_ok(&oci, &good_dir, VOLUME_SIZE, &key, &[]);
        let older_dir = dir.path().join("older");
        let mut c = Command::new(ferry_pack_bin());
        c.arg(&oci)
            .arg("--out")
            .arg(&older_dir)
            .args(["--volume-size", VOLUME_SIZE, "--key"])
            .arg(&key.private)
            .env("SOURCE_DATE_EPOCH", OLDER_EPOCH);
        let out = run_command(&mut c);
        assert_eq!(out.code(), 0, "pack the older bundle\n{}", out.dump());
        let other_dir = dir.path().join("other-bundle");
        pack_ok(&fixture("skopeo-dir"), &other_dir, VOLUME_SIZE, &key, &[]);
        let untrusted_dir = dir.path().join("untrusted");
        pack_ok(&oci, &untrusted_dir, VOLUME_SIZE, &other, &[]);
        let good = volumes(&good_dir);
        assert!(
            good.len() >= 3,
            "the fixture must pack into several volumes: {good:?}"
        );
        let v = Volume::open(&good[0], std::slice::from_ref(&public)).expect("good volume 1");
        let vouched = v
            .manifest
            .blobs
            .iter()
            .map(|b| b.digest.to_string())
            .collect();
        let image_blobs = v
            .manifest
            .images
            .iter()
            .flat_map(|i| &i.blobs)
            .map(|&b| v.manifest.blobs[b as usize].digest.to_string())
            .collect();
        Fixture {
            key,
            secret,
            public,
            other,
            other_secret,
            good,
            older: volumes(&older_dir),
            other_bundle: volumes(&other_dir),
            untrusted: volumes(&untrusted_dir),
            vouched,
            image_blobs,
            dir,
        }
    }

    fn open(&self, path: &Path) -> Volume {
        Volume::open(path, std::slice::from_ref(&self.public))
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------
// Re-signing (the kit's `Parts`: take the volume apart, change it, sign it again)

/// Every volume of a bundle with its manifest changed by `edit`, sealed and re-signed.
fn resign_bundle(
    fx: &Fixture,
    paths: &[PathBuf],
    edit: &dyn Fn(&mut BundleManifest),
) -> Vec<(String, Vec<u8>)> {
    resign_volumes(paths, &fx.secret, edit)
}

// ---------------------------------------------------------------------------------------
// Where things are in a volume (SPEC.md §5.2)

/// The byte layout of one good volume.
pub struct Layout {
    pub bytes: Vec<u8>,
    pub size: u64,
    /// B, I, T: lengths of manifest, index, table.
    pub b: u64,
    pub i: u64,
    pub t: u64,
    /// O: offset of the table's header.
    pub table_offset: u64,
    pub chunks: Vec<Chunk>,
    pub manifest: BundleManifest,
}

impl Layout {
    fn of(fx: &Fixture, path: &Path) -> Layout {
        let v = fx.open(path);
        let (o, table) = v.table_location();
        Layout {
            bytes: fs::read(path).unwrap(),
            size: v.size,
            b: v.manifest_bytes.len() as u64,
            i: v.index_bytes.len() as u64,
            t: table.len() as u64,
            table_offset: o,
            chunks: v.table.chunks.clone(),
            manifest: (*v.manifest).clone(),
        }
    }

    fn manifest_sig(&self) -> u64 {
        entry_len(self.b)
    }
    fn index_header(&self) -> u64 {
        entry_len(self.b) + entry_len(SIGNATURE_SIZE)
    }
    fn index_sig(&self) -> u64 {
        self.index_header() + entry_len(self.i)
    }
    fn table_sig(&self) -> u64 {
        self.table_offset + entry_len(self.t)
    }
    fn trailer_header(&self) -> u64 {
        self.size - 2048
    }
    fn blob_of(&self, c: &Chunk) -> String {
        self.manifest.blobs[c.blob as usize].digest.to_string()
    }
}

/// A stretch of a volume: what it is called, where it starts, how long it is, and what
/// `verify` says when one of its bits is flipped.
struct Region {
    name: String,
    start: u64,
    len: u64,
    /// `invalid` or `damaged`.
    status: &'static str,
    says: Vec<String>,
    /// A blob whose bytes the flip damages.
    damages: Option<String>,
}

fn regions(l: &Layout) -> Vec<Region> {
    let first = l.chunks[0];
    let padded = *l
        .chunks
        .iter()
        .find(|c| c.size % BLOCK != 0)
        .expect("a chunk that does not fill its last block");
    let invalid = |name: &str, start: u64, len: u64, says: Vec<String>| Region {
        name: name.into(),
        start,
        len,
        status: "invalid",
        says,
        damages: None,
    };
    let s = |x: &str| x.to_string();
    vec![
        invalid(
            "tar header of ferry/bundle.json",
            0,
            BLOCK,
            vec![s("entry ferry/bundle.json at offset 0 is damaged")],
        ),
        invalid(
            "bundle manifest",
            BLOCK,
            l.b,
            vec![s("ferry/bundle.json at offset 0 does not match the digest")],
        ),
        invalid(
            "bundle manifest signature",
            l.manifest_sig() + BLOCK,
            SIGNATURE_SIZE,
            vec![s("bundle manifest signature does not verify")],
        ),
        invalid(
            "OCI index",
            l.index_header() + BLOCK,
            l.i,
            vec![s("ferry/index.json does not match the digest")],
        ),
        invalid(
            "index signature",
            l.index_sig() + BLOCK,
            SIGNATURE_SIZE,
            vec![s("image index signature does not verify")],
        ),
        invalid(
            "padding after the index signature",
            l.index_sig() + BLOCK + SIGNATURE_SIZE,
            BLOCK - SIGNATURE_SIZE,
            vec![format!(
                "entry ferry/index.json.sig at offset {} is damaged",
                l.index_sig()
            )],
        ),
        Region {
            name: "tar header of a chunk".into(),
            start: first.offset,
            len: BLOCK,
            status: "damaged",
            says: vec![format!("tar header damaged at offset {}", first.offset)],
            damages: None,
        },
        Region {
            name: "chunk data".into(),
            start: first.offset + BLOCK,
            len: first.size,
            status: "damaged",
            says: vec![format!("chunk data damaged at offset {}", first.offset)],
            damages: Some(l.blob_of(&first)),
        },
        Region {
            name: "padding after a chunk".into(),
            start: padded.offset + BLOCK + padded.size,
            len: entry_len(padded.size) - BLOCK - padded.size,
            status: "damaged",
            says: vec![format!(
                "padding after chunk damaged at offset {}",
                padded.offset
            )],
            damages: None,
        },
        invalid(
            "tar header of the volume table",
            l.table_offset,
            BLOCK,
            vec![format!(
                "entry ferry/volume-0001.json at offset {} is damaged",
                l.table_offset
            )],
        ),
        invalid(
            "volume table",
            l.table_offset + BLOCK,
            l.t,
            vec![s("volume table signature does not verify")],
        ),
        invalid(
            "volume table signature",
            l.table_sig() + BLOCK,
            SIGNATURE_SIZE,
            vec![s("volume table signature does not verify")],
        ),
        invalid(
            "tar header of the trailer",
            l.trailer_header(),
            BLOCK,
            vec![format!(
                "entry ferry/trailer at offset {} is damaged",
                l.trailer_header()
            )],
        ),
        invalid("trailer", l.size - 1536, BLOCK, vec![s("no ferry trailer")]),
        invalid(
            "end of archive",
            l.size - 1024,
            1024,
            vec![s("no end-of-archive blocks")],
        ),
    ]
}

/// What R1/R2 say about a file whose end moved (SPEC.md §5.6: the first rule broken).
fn end_rule(bytes: &[u8]) -> &'static str {
    let n = bytes.len();
    if n < 6656 || n & 511 != 0 {
        "512-byte blocks"
    } else if bytes[n - 1024..].iter().any(|&b| b != 0) {
        "no end-of-archive blocks"
    } else if volume::parse_trailer(&bytes[n - 1536..n - 1024]).is_none() {
        "no ferry trailer"
    } else {
        "does not end where the file does"
    }
}

// ---------------------------------------------------------------------------------------
// Tar header surgery

/// Rewrites the 512-byte header at `at` and fixes its checksum, as a forger would.
fn rewrite_header(bytes: &mut [u8], at: u64, f: impl FnOnce(&mut [u8])) {
    let h = &mut bytes[at as usize..at as usize + 512];
    f(h);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
}

fn set_field(h: &mut [u8], at: usize, len: usize, value: &[u8]) {
    h[at..at + len].fill(0);
    h[at..at + value.len()].copy_from_slice(value);
}

fn set_name(h: &mut [u8], name: &str) {
    set_field(h, 0, 100, name.as_bytes());
}

fn set_link(h: &mut [u8], kind: u8, target: &str) {
    h[156] = kind;
    set_field(h, 157, 100, target.as_bytes());
}

fn set_size(h: &mut [u8], size: u64) {
    if size < 8u64.pow(11) {
        set_field(h, 124, 12, format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256: 0x80, then the value big-endian in the remaining 11 bytes.
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[4..].copy_from_slice(&size.to_be_bytes());
        h[124..136].copy_from_slice(&f);
    }
}

fn set_device(h: &mut [u8], kind: u8, major: u32, minor: u32) {
    h[156] = kind;
    set_size(h, 0);
    set_field(h, 329, 8, format!("{major:07o}\0").as_bytes());
    set_field(h, 337, 8, format!("{minor:07o}\0").as_bytes());
}

/// A whole tar entry (header, data, padding) as a plain tar would write it.
fn tar_entry(name: &str, data: &[u8], mtime: u64) -> Vec<u8> {
    let mut out = volume::header(name, data.len() as u64, mtime).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn insert(bytes: &[u8], at: u64, what: &[u8]) -> Vec<u8> {
    let mut out = bytes[..at as usize].to_vec();
    out.extend_from_slice(what);
    out.extend_from_slice(&bytes[at as usize..]);
    out
}

/// The trailer text for other numbers, exact in form (so only R2 can refuse it).
fn with_trailer(bytes: &[u8], offset: u64, size: u64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let n = b.len();
    let text =
        format!("ferry-volume-trailer 1\ntable-offset {offset:020}\ntable-size {size:020}\n");
    let mut t = [b'\n'; 512];
    t[..text.len()].copy_from_slice(text.as_bytes());
    b[n - 1536..n - 1024].copy_from_slice(&t);
    b
}

/// Ed25519's group order ℓ, little-endian: S + ℓ is the malleable twin of a signature.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn malleate(sig: &mut [u8]) {
    let mut carry = 0u16;
    for (s, l) in sig[32..64].iter_mut().zip(ELL) {
        let v = u16::from(*s) + u16::from(l) + carry;
        *s = v as u8;
        carry = v >> 8;
    }
}

// ---------------------------------------------------------------------------------------
// A zstd bomb: a frame of RLE blocks, each 4 bytes standing for 128 KiB of zeros

/// One zstd frame (RFC 8878) decoding to `decoded` zero bytes, without content size.
pub fn zstd_zeros(decoded: u64) -> Vec<u8> {
    const BLOCK_MAX: u64 = 128 << 10;
    // Magic, frame header descriptor 0 (no content size, window descriptor follows),
    // window 2^17 = 128 KiB.
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let blocks = decoded.div_ceil(BLOCK_MAX).max(1);
    for i in 0..blocks {
        let last = i + 1 == blocks;
        let size = if last {
            decoded - i * BLOCK_MAX
        } else {
            BLOCK_MAX
        };
        // Block header: last flag, type 1 (RLE), size; then the byte to repeat.
        let h = (size << 3) | (1 << 1) | u64::from(last);
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

/// A blob of a bundle made from scratch.
struct ScratchBlob {
    digest: Digest,
    size: u64,
    encoding: &'static str,
    stored: Vec<u8>,
    media_type: Option<&'static str>,
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A one-volume bundle holding one image `hostile/bomb:v1` whose blobs are `blobs`
/// (manifest first), signed by `key`: signed lies no packer would write.
fn scratch_bundle(key: &PrivateKey, blobs: &[ScratchBlob]) -> Vec<u8> {
    let created = 1_600_000_000u64;
    let chunk_size: u64 = 4 << 20;
    let index = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{}\",\"size\":{},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"hostile/bomb:v1\"}}}}]}}",
        blobs[0].digest, blobs[0].size
    )
    .into_bytes();
    let blob_values: Vec<Value> = blobs
        .iter()
        .map(|b| {
            let mut v = json!({
                "digest": b.digest.to_string(), "size": b.size, "encoding": b.encoding,
                "stored_size": b.stored.len(), "first_volume": 1, "last_volume": 1,
            });
            if let Some(t) = b.media_type {
                v["media_type"] = t.into();
            }
            v
        })
        .collect();
    let mut m: BundleManifest = serde_json::from_value(json!({
        "ferry_bundle": 1,
        "bundle_id": Digest([0; 32]).to_string(),
        "creator": "hostile test",
        "created": created,
        "source_layout": "oci",
        "key": key.public().fingerprint(),
        "volume_size": 1u64 << 30,
        "volume_count": 1,
        "chunk_size": chunk_size,
        "index_json": Digest::of(&index).to_string(),
        "blobs": blob_values,
        "images": [{
            "repository": "hostile/bomb", "tags": ["v1"], "digest": blobs[0].digest.to_string(),
            "media_type": OCI_MANIFEST, "blobs": (0..blobs.len()).collect::<Vec<_>>(),
        }],
        "tree": [],
    }))
    .expect("a manifest the format library reads");
    m.seal();
    let mut chunks = Vec::new();
    let mut datas = Vec::new();
    let mut names = Vec::new();
    for (i, b) in m.blobs.iter().enumerate() {
        let stored = &blobs[i].stored;
        let mut pos = 0usize;
        loop {
            let end = (pos + chunk_size as usize).min(stored.len());
            let data = stored[pos..end].to_vec();
            chunks.push(json!({
                "blob": i, "stream_offset": pos, "size": data.len(), "offset": 0,
                "sha256": hex::encode(Sha256::digest(&data)),
            }));
            names.push(volume::chunk_name(&b.digest, b.encoding, pos as u64));
            datas.push(data);
            pos = end;
            if pos >= stored.len() {
                break;
            }
        }
    }
    let zero = Digest([0; 32]).to_string();
    let table: VolumeTable = serde_json::from_value(json!({
        "ferry_volume": 1, "bundle_id": m.bundle_id.to_string(), "volume": 1, "volume_count": 1,
        "bundle_manifest": {"digest": zero, "size": 0}, "index": {"digest": zero, "size": 0},
        "chunks": chunks,
    }))
    .expect("a table the format library reads");
    Parts {
        manifest: m.to_bytes(0),
        index,
        table,
        chunks: datas,
        names,
        mtime: created,
        unnamed: Vec::new(),
        duplicate_manifest: false,
        original: std::sync::Arc::new(m),
    }
    .write(key)
}

/// An image whose layer is `layer` (digest and size as signed).
fn image_blobs(layer_digest: Digest, layer_size: u64) -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#.to_vec();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"{layer_digest}\",\"size\":{layer_size}}}]}}",
        Digest::of(&config),
        config.len()
    )
    .into_bytes();
    (manifest, config)
}

fn raw_blob(bytes: Vec<u8>, media_type: Option<&'static str>) -> ScratchBlob {
    ScratchBlob {
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        encoding: "raw",
        stored: bytes,
        media_type,
    }
}

// ---------------------------------------------------------------------------------------
// Cases

/// Who must refuse a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaughtBy {
    /// `verify` exits 1 (SPEC.md §6.1: R1–R26 per volume, R27 across them).
    Verify,
    /// A signed lie only decoding reveals (R31, R32): `verify` passes each volume, so
    /// `extract` must exit 1 saying so.
    Extract,
    /// As `Extract`, but extracting would write gigabytes: `push` must fail saying so.
    Push,
}

pub struct Case {
    pub name: String,
    pub category: &'static str,
    /// The files given, in order: (file name, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// Which of `files` are hostile (by name).
    pub hostile: Vec<String>,
    /// `verify --json` status of each hostile file (`invalid`, `damaged`, `foreign`);
    /// the other files must be `ok`.
    pub status: &'static str,
    /// What the refusal must say besides the file's path: the region or rule, and where.
    pub says: Vec<String>,
    /// Blobs that must not reach the registry.
    pub absent: Vec<String>,
    /// Blobs the case's own signed manifest vouches for (beyond the good bundle's).
    pub vouched: Vec<String>,
    pub caught_by: CaughtBy,
}

struct Cases<'a> {
    fx: &'a Fixture,
    out: Vec<Case>,
}

impl Cases<'_> {
    /// One hostile volume given alone, refused by verify.
    #[allow(clippy::too_many_arguments)]
    fn alone(
        &mut self,
        category: &'static str,
        name: impl Into<String>,
        file: &str,
        bytes: Vec<u8>,
        status: &'static str,
        says: Vec<String>,
        absent: Vec<String>,
    ) {
        self.out.push(Case {
            name: name.into(),
            category,
            files: vec![(file.to_string(), bytes)],
            hostile: vec![file.to_string()],
            status,
            says,
            absent,
            vouched: Vec::new(),
            caught_by: CaughtBy::Verify,
        });
    }

    fn invalid(&mut self, category: &'static str, name: &str, bytes: Vec<u8>, says: &[&str]) {
        let file = file_name(&self.fx.good[0]);
        self.alone(
            category,
            name,
            &file,
            bytes,
            "invalid",
            says.iter().map(|s| s.to_string()).collect(),
            Vec::new(),
        );
    }

    fn damaged(&mut self, category: &'static str, name: &str, bytes: Vec<u8>, says: Vec<String>) {
        let file = file_name(&self.fx.good[0]);
        self.alone(category, name, &file, bytes, "damaged", says, Vec::new());
    }
}

/// A tar header rewrite with its description.
type Craft<'a> = (&'a str, &'a dyn Fn(&mut [u8]));

/// Every hostile case, made from the fixture's good bundle.
pub fn cases(fx: &Fixture) -> Vec<Case> {
    let mut cs = Cases {
        fx,
        out: Vec::new(),
    };
    let l = Layout::of(fx, &fx.good[0]);
    let good = &l.bytes;
    let vol1 = file_name(&fx.good[0]);

    // 1. Every region: a flipped bit, a truncation, an insertion.
    for r in regions(&l) {
        let mid = r.start + r.len / 2;
        let mut b = good.clone();
        b[mid as usize] ^= 0x01;
        cs.alone(
            "region: flipped bit",
            format!("{}: bit 0 of byte {mid} flipped", r.name),
            &vol1,
            b,
            r.status,
            r.says.clone(),
            r.damages.iter().cloned().collect(),
        );
        let cut = mid / BLOCK * BLOCK;
        let b = good[..cut as usize].to_vec();
        let says = vec![end_rule(&b).to_string(), "truncated".to_string()];
        cs.alone(
            "region: truncation",
            format!("{}: cut at byte {cut}", r.name),
            &vol1,
            b,
            "invalid",
            says,
            Vec::new(),
        );
        let b = insert(good, mid, &[0x55; 512]);
        let says = vec![end_rule(&b).to_string()];
        cs.alone(
            "region: insertion",
            format!("{}: 512 bytes inserted at byte {mid}", r.name),
            &vol1,
            b,
            "invalid",
            says,
            Vec::new(),
        );
    }
    let first = l.chunks[0];
    let odd = first.offset + BLOCK + 100;
    cs.invalid(
        "region: truncation",
        "chunk data: cut at an odd byte",
        good[..odd as usize].to_vec(),
        &["512-byte blocks", "truncated"],
    );
    cs.invalid(
        "region: truncation",
        "empty file",
        Vec::new(),
        &["512-byte blocks"],
    );
    cs.invalid(
        "region: insertion",
        "7 bytes inserted into chunk data",
        insert(good, first.offset + BLOCK + 3, b"ferry!!"),
        &["512-byte blocks"],
    );

    // 2. Tar entries crafted by rewriting headers: the signed table no longer matches.
    let chunk_header = |f: &dyn Fn(&mut [u8])| {
        let mut b = good.clone();
        rewrite_header(&mut b, first.offset, f);
        b
    };
    let says_header = vec![format!("tar header damaged at offset {}", first.offset)];
    let crafted: [Craft<'_>; 9] = [
        ("a chunk renamed ../../../../etc/cron.d/ferry", &|h| {
            set_name(h, "../../../../etc/cron.d/ferry")
        }),
        ("a chunk renamed to the absolute /etc/passwd", &|h| {
            set_name(h, "/etc/passwd")
        }),
        ("a chunk turned into a symlink to /etc/shadow", &|h| {
            set_link(h, b'2', "/etc/shadow");
            set_size(h, 0);
        }),
        (
            "a chunk turned into a hard link to ferry/bundle.json",
            &|h| {
                set_link(h, b'1', "ferry/bundle.json");
                set_size(h, 0);
            },
        ),
        ("a chunk turned into the character device 1:3", &|h| {
            set_name(h, "dev/null");
            set_device(h, b'3', 1, 3);
        }),
        ("a chunk turned into the block device 8:0", &|h| {
            set_name(h, "dev/sda");
            set_device(h, b'4', 8, 0);
        }),
        ("a chunk turned into a FIFO", &|h| set_device(h, b'6', 0, 0)),
        ("a chunk turned into a pax extended header", &|h| {
            h[156] = b'x'
        }),
        ("a chunk turned into a directory ../../", &|h| {
            set_name(h, "../../");
            h[156] = b'5';
            set_size(h, 0);
        }),
    ];
    for (name, f) in crafted {
        cs.damaged("tar entry", name, chunk_header(f), says_header.clone());
    }
    let meta = |at: u64, f: &dyn Fn(&mut [u8])| {
        let mut b = good.clone();
        rewrite_header(&mut b, at, f);
        b
    };
    cs.invalid(
        "tar entry",
        "ferry/bundle.json renamed ../../ferry/bundle.json",
        meta(0, &|h| set_name(h, "../../ferry/bundle.json")),
        &["entry ferry/bundle.json at offset 0 is damaged"],
    );
    cs.invalid(
        "tar entry",
        "ferry/bundle.json renamed to the absolute /ferry/bundle.json",
        meta(0, &|h| set_name(h, "/ferry/bundle.json")),
        &["entry ferry/bundle.json at offset 0 is damaged"],
    );
    let table_says = format!(
        "entry ferry/volume-0001.json at offset {} is damaged",
        l.table_offset
    );
    cs.invalid(
        "tar entry",
        "the volume table's entry turned into a symlink to /etc/passwd",
        meta(l.table_offset, &|h| set_link(h, b'2', "/etc/passwd")),
        &[&table_says],
    );
    let trailer_says = format!(
        "entry ferry/trailer at offset {} is damaged",
        l.trailer_header()
    );
    cs.invalid(
        "tar entry",
        "the trailer's entry turned into a hard link to /etc/shadow",
        meta(l.trailer_header(), &|h| set_link(h, b'1', "/etc/shadow")),
        &[&trailer_says],
    );
    cs.invalid(
        "tar entry",
        "the index signature's entry turned into a device",
        meta(l.index_sig(), &|h| set_device(h, b'3', 1, 3)),
        &[&format!(
            "entry ferry/index.json.sig at offset {} is damaged",
            l.index_sig()
        )],
    );

    // Entries no table names.
    let evil = tar_entry("evil.sh", b"#!/bin/sh\nrm -rf /\n", l.manifest.created);
    let b = insert(good, l.table_offset, &evil);
    let rule = end_rule(&b);
    cs.invalid(
        "unnamed entry",
        "an entry evil.sh inserted before the table",
        b,
        &[rule],
    );
    let parts = Parts::read(&fx.good[0], &fx.public);
    let mut p = parts.clone();
    p.unnamed
        .push(("evil.sh".into(), b"#!/bin/sh\nrm -rf /\n".to_vec()));
    cs.invalid(
        "unnamed entry",
        "an entry evil.sh before the table, table re-signed without it",
        p.write(&fx.secret),
        &["entries are missing or unnamed"],
    );
    let mut p = parts.clone();
    p.unnamed.push((
        volume::table_name(1),
        br#"{"ferry_volume":1,"chunks":[]}"#.to_vec(),
    ));
    cs.invalid(
        "unnamed entry",
        "a second ferry/volume-0001.json entry before the real table (re-signed)",
        p.write(&fx.secret),
        &["entries are missing or unnamed"],
    );
    let mut b = good.clone();
    b.extend_from_slice(&evil);
    cs.invalid(
        "unnamed entry",
        "an entry appended after the end-of-archive",
        b,
        &["no end-of-archive blocks"],
    );
    let mut b = good.clone();
    b.extend_from_slice(&evil);
    b.extend_from_slice(&[0u8; 1024]);
    cs.invalid(
        "unnamed entry",
        "an entry and a new end-of-archive appended",
        b,
        &["no ferry trailer"],
    );
    cs.invalid(
        "unnamed entry",
        "the last chunk left out of the re-signed table",
        parts.write_with(
            &fx.secret,
            &fx.secret,
            &|t| {
                t.chunks.pop();
            },
            &|b| b,
        ),
        &["entries are missing or unnamed"],
    );

    // Duplicate entries.
    let whole_first =
        good[first.offset as usize..(first.offset + entry_len(first.size)) as usize].to_vec();
    let b = insert(good, first.offset + entry_len(first.size), &whole_first);
    let rule = end_rule(&b);
    cs.invalid(
        "duplicate entry",
        "the first chunk's entry twice",
        b,
        &[rule],
    );
    let mut p = parts.clone();
    p.table.chunks.insert(1, p.table.chunks[0]);
    p.chunks.insert(1, p.chunks[0].clone());
    p.names.insert(1, p.names[0].clone());
    cs.invalid(
        "duplicate entry",
        "the first chunk twice, in the file and the re-signed table",
        p.write(&fx.secret),
        &["volume table: chunk at offset"],
    );
    let mut p = parts.clone();
    p.duplicate_manifest = true;
    // R10 comes first: the signature is read where the first copy's entry ends.
    cs.invalid(
        "duplicate entry",
        "ferry/bundle.json twice (table re-signed)",
        p.write(&fx.secret),
        &["bundle manifest signature does not verify"],
    );
    let b = insert(good, 0, &good[..entry_len(l.b) as usize]);
    let rule = end_rule(&b);
    cs.invalid(
        "duplicate entry",
        "ferry/bundle.json twice (not re-signed)",
        b,
        &[rule],
    );

    // 3. Sizes that lie: in tar headers…
    let lies: [(&str, u64); 4] = [
        ("declared larger", first.size + 1024),
        ("declared smaller", first.size - 1),
        ("declared 0", 0),
        ("declared 2^63 (base-256)", 1 << 63),
    ];
    for (what, size) in lies {
        cs.damaged(
            "size lie: tar header",
            &format!("a chunk's tar header size {what}"),
            chunk_header(&|h| set_size(h, size)),
            says_header.clone(),
        );
    }
    cs.invalid(
        "size lie: tar header",
        "the table's tar header size declared 2^63",
        meta(l.table_offset, &|h| set_size(h, 1 << 63)),
        &[&table_says],
    );
    cs.invalid(
        "size lie: tar header",
        "ferry/bundle.json's tar header size declared larger",
        meta(0, &|h| set_size(h, l.b + 512)),
        &["entry ferry/bundle.json at offset 0 is damaged"],
    );
    cs.invalid(
        "size lie: tar header",
        "the trailer's tar header size declared smaller",
        meta(l.trailer_header(), &|h| set_size(h, 89)),
        &[&trailer_says],
    );
    // …in the re-signed table (the file is left as it is)…
    let mid = l.chunks.len() / 2;
    let table_lie =
        |f: &dyn Fn(&mut VolumeTable)| parts.write_with(&fx.secret, &fx.secret, f, &|b| b);
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 512 larger",
        table_lie(&|t| t.chunks[mid].size += 512),
        &["volume table: "],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 1 smaller",
        table_lie(&|t| t.chunks[mid].size -= 1),
        &["volume table: "],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 2^63",
        table_lie(&|t| t.chunks[mid].size = 1 << 63),
        &["volume table: chunk at offset", "over the"],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 2^64-1",
        table_lie(&|t| t.chunks[mid].size = u64::MAX),
        &["volume table: chunk at offset", "over the"],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 0",
        table_lie(&|t| t.chunks[mid].size = 0),
        &["volume table: chunk at offset"],
    );
    cs.invalid(
        "size lie: table",
        "the manifest's size declared 1 larger",
        table_lie(&|t| t.bundle_manifest.size += 1),
        &["ferry/bundle.json at offset 0 does not match the digest"],
    );
    cs.invalid(
        "size lie: table",
        "the manifest's size declared 2^63",
        table_lie(&|t| t.bundle_manifest.size = 1 << 63),
        &["over the size limit"],
    );
    cs.invalid(
        "size lie: table",
        "the index's size declared 1 smaller",
        table_lie(&|t| t.index.size -= 1),
        &["ferry/index.json does not match the digest"],
    );
    cs.invalid(
        "size lie: table",
        "the index's size declared 2^63",
        table_lie(&|t| t.index.size = 1 << 63),
        &["over the size limit"],
    );
    // …in the trailer (unsigned, but only its exact form is read)…
    let r2 = "does not end where the file does";
    // One byte more still ends where the file does unless it needs another block (R2);
    // then the signature is checked over bytes that are not the table (R3).
    let one_more = if entry_len(l.t + 1) == entry_len(l.t) {
        "volume table signature does not verify"
    } else {
        r2
    };
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 1 larger",
        with_trailer(good, l.table_offset, l.t + 1),
        &[one_more],
    );
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 512 smaller",
        with_trailer(good, l.table_offset, l.t - 512),
        &[r2],
    );
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 2^63",
        with_trailer(good, l.table_offset, 1 << 63),
        &[r2],
    );
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 2^64-1",
        with_trailer(good, l.table_offset, u64::MAX),
        &[r2],
    );
    // …and in the re-signed manifest.
    let with_manifest = |f: &dyn Fn(&mut BundleManifest)| {
        let mut p = parts.clone();
        let mut m = p.manifest();
        f(&mut m);
        p.set_manifest(&mut m);
        p.write(&fx.secret)
    };
    cs.invalid(
        "size lie: manifest",
        "a raw blob's size declared 1 larger than its stored size",
        with_manifest(&|m| {
            let b = m
                .blobs
                .iter_mut()
                .find(|b| b.encoding == Encoding::Raw)
                .unwrap();
            b.size += 1;
        }),
        &["stored_size"],
    );
    let ends_here = l
        .chunks
        .iter()
        .map(|c| c.blob)
        .find(|&i| {
            let b = &l.manifest.blobs[i as usize];
            b.first_volume == 1 && b.last_volume == 1
        })
        .expect("a blob wholly in volume 1");
    cs.invalid(
        "size lie: manifest",
        "a blob's stored size declared 512 larger than its chunks",
        with_manifest(&|m| {
            let b = &mut m.blobs[ends_here as usize];
            b.stored_size += 512;
            if b.encoding == Encoding::Raw {
                b.size += 512;
            }
        }),
        &["volume table"],
    );
    cs.invalid(
        "size lie: manifest",
        "chunk_size declared 2^63",
        with_manifest(&|m| m.chunk_size = 1 << 63),
        &["chunk_size"],
    );
    cs.invalid(
        "size lie: manifest",
        "volume_size declared smaller than the volume",
        with_manifest(&|m| m.volume_size = 4096),
        &["larger than the bundle's volume size"],
    );
    cs.invalid(
        "size lie: manifest",
        "created declared 2^63",
        with_manifest(&|m| m.created = 1 << 63),
        &["past what a tar header"],
    );

    // 4. A table pointing outside the file.
    cs.invalid(
        "outside the file",
        "a chunk's offset 2^40 (re-signed)",
        table_lie(&|t| t.chunks[mid].offset = 1 << 40),
        &[
            "volume table: chunk at offset 1099511627776",
            "expected at offset",
        ],
    );
    cs.invalid(
        "outside the file",
        "a chunk's offset 2^64-512 (re-signed)",
        table_lie(&|t| t.chunks[0].offset = u64::MAX - 511),
        &["expected at offset"],
    );
    cs.invalid(
        "outside the file",
        "a chunk's offset 0, over the manifest (re-signed)",
        table_lie(&|t| t.chunks[0].offset = 0),
        &["volume table: chunk at offset 0", "expected at offset"],
    );
    cs.invalid(
        "outside the file",
        "a manifest as large as the volume (re-signed)",
        table_lie(&|t| t.bundle_manifest.size = l.size),
        &["larger than the volume"],
    );
    cs.invalid(
        "outside the file",
        "the trailer's table offset past the end",
        with_trailer(good, l.size * 2, l.t),
        &[r2],
    );
    cs.invalid(
        "outside the file",
        "the trailer's table offset 2^64-1",
        with_trailer(good, u64::MAX, l.t),
        &[r2],
    );

    // 5. Another bundle by the same key, and an older bundle replayed: each verifies
    //    alone (SPEC.md §2), but given with this bundle's volumes it is foreign (R27).
    let mixed = |foreign: &Path, drop: Option<usize>| {
        let mut files: Vec<(String, Vec<u8>)> = fx
            .good
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != drop)
            .map(|(_, p)| (file_name(p), fs::read(p).unwrap()))
            .collect();
        let name = format!("foreign-{}", file_name(foreign));
        files.push((name.clone(), fs::read(foreign).unwrap()));
        (files, name)
    };
    let foreign_case = |name: &str, files: Vec<(String, Vec<u8>)>, hostile: String| Case {
        name: name.into(),
        category: "foreign",
        files,
        hostile: vec![hostile],
        status: "foreign",
        says: vec!["belongs to bundle".into()],
        absent: Vec::new(),
        vouched: Vec::new(),
        caught_by: CaughtBy::Verify,
    };
    let (files, h) = mixed(&fx.other_bundle[0], None);
    cs.out.push(foreign_case(
        "volume 1 of another bundle signed by the same key, with this bundle's volumes",
        files,
        h,
    ));
    let (files, h) = mixed(&fx.older[1], Some(1));
    cs.out.push(foreign_case(
        "volume 2 of an older bundle of the same mirror, in place of this bundle's volume 2",
        files,
        h,
    ));
    let files = vec![
        (file_name(&fx.older[0]), fs::read(&fx.older[0]).unwrap()),
        (file_name(&fx.good[1]), fs::read(&fx.good[1]).unwrap()),
    ];
    cs.out.push(foreign_case(
        "volume 1 of the older bundle and volume 2 of the newer (a tie: the newer wins)",
        files,
        file_name(&fx.older[0]),
    ));
    let (mut files, _) = mixed(&fx.good[1], Some(1));
    files.pop();
    let mut p = Parts::read(&fx.good[1], &fx.public);
    let mut m = p.manifest();
    m.created -= 1;
    p.set_manifest(&mut m);
    let name = format!("resealed-{}", file_name(&fx.good[1]));
    files.push((name.clone(), p.write(&fx.secret)));
    cs.out.push(foreign_case(
        "volume 2 re-signed into another bundle (created one second earlier)",
        files,
        name,
    ));

    // 6. Keys.
    let untrusted_says = &["not signed by any trusted key", "volume table signature"];
    // Whole volumes that name a key not trusted: the key does not match (issue 9, item 12).
    let other_key_says = &["not by a trusted key", "the --trust key does not match"];
    let f = file_name(&fx.untrusted[0]);
    cs.alone(
        "untrusted key",
        "a bundle's volume signed by an untrusted key",
        &f,
        fs::read(&fx.untrusted[0]).unwrap(),
        "untrusted",
        other_key_says.iter().map(|s| s.to_string()).collect(),
        Vec::new(),
    );
    cs.out.push(Case {
        name: "every volume of a bundle signed by an untrusted key".into(),
        category: "untrusted key",
        files: fx
            .untrusted
            .iter()
            .map(|p| (file_name(p), fs::read(p).unwrap()))
            .collect(),
        hostile: fx.untrusted.iter().map(|p| file_name(p)).collect(),
        status: "untrusted",
        says: other_key_says.iter().map(|s| s.to_string()).collect(),
        absent: Vec::new(),
        vouched: Vec::new(),
        caught_by: CaughtBy::Verify,
    });
    cs.invalid(
        "untrusted key",
        "this volume re-signed throughout by an untrusted key",
        parts.write(&fx.other_secret),
        untrusted_says,
    );
    cs.invalid(
        "untrusted key",
        "table signed by the trusted key, manifest and index by an untrusted one",
        parts.write_with(&fx.secret, &fx.other_secret, &|_| {}, &|b| b),
        &["bundle manifest signature does not verify"],
    );
    cs.invalid(
        "untrusted key",
        "manifest and index signed by the trusted key, table by an untrusted one",
        parts.write_with(&fx.other_secret, &fx.secret, &|_| {}, &|b| b),
        untrusted_says,
    );
    let mut b = good.clone();
    let at = (l.table_sig() + BLOCK) as usize;
    malleate(&mut b[at..at + 64]);
    cs.invalid(
        "untrusted key",
        "the table's signature made malleable (S + l)",
        b,
        untrusted_says,
    );
    let mut b = good.clone();
    b[at..at + 64].fill(0);
    cs.invalid(
        "untrusted key",
        "the table's signature all zero",
        b,
        untrusted_says,
    );

    // 7. Unknown versions and fields, validly signed.
    let table_raw = |f: &dyn Fn(&mut Value)| {
        parts.write_with(&fx.secret, &fx.secret, &|_| {}, &|b| {
            let mut v: Value = serde_json::from_slice(&b).unwrap();
            f(&mut v);
            serde_json::to_vec(&v).unwrap()
        })
    };
    let table_text = |from: &'static str, to: &'static str| {
        parts.write_with(&fx.secret, &fx.secret, &|_| {}, &move |b| {
            let s = String::from_utf8(b).unwrap();
            assert!(s.contains(from), "table text has {from}");
            s.replacen(from, to, 1).into_bytes()
        })
    };
    cs.invalid(
        "version or field",
        "table version 2",
        table_text("{\"ferry_volume\":1,", "{\"ferry_volume\":2,"),
        &["volume table version 2 is not supported"],
    );
    cs.invalid(
        "version or field",
        "table version 2^32",
        table_text("{\"ferry_volume\":1,", "{\"ferry_volume\":4294967296,"),
        &["ferry_volume version 4294967296 is not supported"],
    );
    cs.invalid(
        "version or field",
        "table version missing",
        table_text("{\"ferry_volume\":1,", "{"),
        &["no ferry_volume version field"],
    );
    cs.invalid(
        "version or field",
        "table with an unknown member",
        table_raw(&|t| t["compression"] = "lz4".into()),
        &["volume table", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "table chunk with an unknown member",
        table_text(
            "\"stream_offset\":0,",
            "\"stream_offset\":0,\"encrypted\":false,",
        ),
        &["volume table", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "table with a member twice",
        table_text("\"volume\":1,", "\"volume\":1,\"volume\":1,"),
        &["volume table", "duplicate field"],
    );
    let manifest_text = |from: &'static str, to: &'static str| {
        let mut p = parts.clone();
        let s = String::from_utf8(p.manifest.clone()).unwrap();
        assert!(s.contains(from), "manifest text has {from}");
        p.manifest = s.replacen(from, to, 1).into_bytes();
        p.write(&fx.secret)
    };
    cs.invalid(
        "version or field",
        "manifest version 2",
        manifest_text("{\"ferry_bundle\":1,", "{\"ferry_bundle\":2,"),
        &["bundle manifest version 2 is not supported"],
    );
    cs.invalid(
        "version or field",
        "manifest with an unknown member",
        manifest_text(
            "{\"ferry_bundle\":1,",
            "{\"ferry_bundle\":1,\"signed_by\":\"nobody\",",
        ),
        &["bundle manifest", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "manifest blob with an unknown member",
        manifest_text("\"encoding\":", "\"compression\":\"lz4\",\"encoding\":"),
        &["bundle manifest", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "manifest tree entry of an unknown kind",
        manifest_text("{\"kind\":\"dir\",", "{\"kind\":\"fifo\","),
        &["bundle manifest", "unknown variant"],
    );
    let mut b = good.clone();
    let n = b.len();
    b[n - 1536 + 21] = b'2';
    cs.invalid(
        "version or field",
        "trailer version 2",
        b,
        &["no ferry trailer"],
    );

    // 8. Hostile paths in the signed manifest (M14, M17, M22), re-signed.
    cs.invalid(
        "manifest path",
        "a tree file ../../etc/cron.d/x",
        with_manifest(&|m| {
            m.tree.push(TreeEntry::File {
                path: "../../etc/cron.d/x".into(),
                blob: 0,
                mode: 0o644,
            })
        }),
        &["not a safe relative path"],
    );
    cs.invalid(
        "manifest path",
        "a tree directory /etc",
        with_manifest(&|m| {
            m.tree.insert(
                0,
                TreeEntry::Dir {
                    path: "/etc".into(),
                },
            )
        }),
        &["not a safe relative path"],
    );
    cs.invalid(
        "manifest path",
        "a tree symlink to ../../../etc/passwd",
        with_manifest(&|m| {
            m.tree.push(TreeEntry::Symlink {
                path: "zz".into(),
                target: "../../../etc/passwd".into(),
            })
        }),
        &["leaves the tree"],
    );
    cs.invalid(
        "manifest path",
        "a tree hard link to /etc/shadow",
        with_manifest(&|m| {
            m.tree.push(TreeEntry::Link {
                path: "zz".into(),
                target: "/etc/shadow".into(),
            })
        }),
        &["not a file listed before it"],
    );

    // 9. Signed lies only reading the blob reveals (whole bundle re-signed).
    // A layer or config: a manifest's size is also in the signed index, which extract
    // compares first.
    let zstd = l
        .manifest
        .blobs
        .iter()
        .position(|b| b.encoding == Encoding::Zstd && b.media_type.is_none())
        .expect("a zstd layer or config in the bundle") as u32;
    let zstd_digest = l.manifest.blobs[zstd as usize].digest.to_string();
    let read_lie = |name: &str, edit: &dyn Fn(&mut BundleManifest), says: &[&str]| Case {
        name: name.into(),
        category: "signed lie caught when read",
        files: resign_bundle(fx, &fx.good, edit),
        hostile: Vec::new(),
        status: "ok",
        says: says.iter().map(|s| s.to_string()).collect(),
        absent: vec![zstd_digest.clone()],
        vouched: Vec::new(),
        caught_by: CaughtBy::Extract,
    };
    let more = format!("blob {zstd_digest} decodes to more than its signed size");
    cs.out.push(read_lie(
        "a zstd blob's size declared 100 smaller than it decodes to",
        &|m| m.blobs[zstd as usize].size -= 100,
        &[&more],
    ));
    cs.out.push(read_lie(
        "a zstd blob's size declared 2^63",
        &|m| m.blobs[zstd as usize].size = 1 << 63,
        &[&zstd_digest],
    ));
    cs.out.push(read_lie(
        "a zstd blob's size declared 2^64-1",
        &|m| m.blobs[zstd as usize].size = u64::MAX,
        &[&zstd_digest],
    ));

    // A zstd bomb: 8 GiB of zeros in a 256 KiB stream, signed as a 1000-byte layer.
    let bomb_digest = Digest::of(&[0u8; BOMB_SIGNED_SIZE as usize]);
    let (manifest, config) = image_blobs(bomb_digest, BOMB_SIGNED_SIZE);
    let blobs = [
        raw_blob(manifest, Some(OCI_MANIFEST)),
        raw_blob(config, None),
        ScratchBlob {
            digest: bomb_digest,
            size: BOMB_SIGNED_SIZE,
            encoding: "zstd",
            stored: zstd_zeros(BOMB_DECODED),
            media_type: None,
        },
    ];
    let honest: Vec<String> = blobs[..2].iter().map(|b| b.digest.to_string()).collect();
    cs.out.push(Case {
        name: format!(
            "a zstd bomb: a {} KiB stream decoding to {} GiB, signed as {BOMB_SIGNED_SIZE} bytes",
            blobs[2].stored.len() >> 10,
            BOMB_DECODED >> 30
        ),
        category: "zstd bomb",
        files: vec![(
            "ferry-bomb-001-of-001.tar".into(),
            scratch_bundle(&fx.secret, &blobs),
        )],
        hostile: Vec::new(),
        status: "ok",
        says: vec![format!(
            "blob {bomb_digest} decodes to more than its signed size {BOMB_SIGNED_SIZE}"
        )],
        absent: vec![bomb_digest.to_string()],
        vouched: honest,
        caught_by: CaughtBy::Extract,
    });
    // The same bomb as the image manifest, which push reads into memory, declared 2^63.
    let (manifest, config) = image_blobs(Digest::of(b"layer"), 5);
    let blobs = [
        ScratchBlob {
            digest: Digest::of(&manifest),
            size: 1 << 63,
            encoding: "zstd",
            stored: zstd_zeros(3 << 29),
            media_type: Some(OCI_MANIFEST),
        },
        raw_blob(config, None),
        raw_blob(b"layer".to_vec(), None),
    ];
    let manifest_digest = blobs[0].digest.to_string();
    cs.out.push(Case {
        name: "a zstd bomb as the image manifest (1.5 GiB of zeros), declared 2^63 bytes".into(),
        category: "zstd bomb",
        files: vec![(
            "ferry-bomb-001-of-001.tar".into(),
            scratch_bundle(&fx.secret, &blobs),
        )],
        // A manifest over 8 MiB breaks M24, so the manifest itself is refused.
        hostile: vec!["ferry-bomb-001-of-001.tar".into()],
        status: "invalid",
        says: vec![manifest_digest.clone(), "8388608-byte limit".into()],
        absent: vec![manifest_digest],
        vouched: Vec::new(),
        caught_by: CaughtBy::Verify,
    });
    cs.out
}

// ---------------------------------------------------------------------------------------
// What a registry holds (the registry is `crate::registry::Registry`)

/// Every blob stored under a registry's storage root: (hex digest, sha256 of its content).
pub fn stored_blobs(storage: &Path) -> Vec<(String, String)> {
    let root = storage.join("docker/registry/v2/blobs/sha256");
    let mut out = Vec::new();
    let Ok(prefixes) = fs::read_dir(&root) else {
        return out;
    };
    for p in prefixes {
        for b in fs::read_dir(p.unwrap().path()).unwrap() {
            let b = b.unwrap().path();
            let data = b.join("data");
            if data.is_file() {
                let content = fs::read(&data).unwrap();
                out.push((
                    b.file_name().unwrap().to_string_lossy().into_owned(),
                    hex::encode(Sha256::digest(&content)),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Links repositories received (layers and manifests); 0 when nothing was pushed.
pub fn repository_links(storage: &Path) -> usize {
    walk_count(&storage.join("docker/registry/v2/repositories"), "_layers")
        + walk_count(
            &storage.join("docker/registry/v2/repositories"),
            "_manifests",
        )
}

fn walk_count(dir: &Path, name: &str) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if e.file_name() == name {
                n += fs::read_dir(&p).map(|r| r.count()).unwrap_or(0);
            } else {
                n += walk_count(&p, name);
            }
        }
    }
    n
}

// ---------------------------------------------------------------------------------------
// Running a case

/// `prlimit --as=MEMORY_CAP -- ferry-unpack ARGS`, with a clean environment: no
/// SOURCE_DATE_EPOCH, no proxies, no credentials but none (HOME is `home`).
pub fn unpack_capped(args: &[OsString], home: &Path) -> Output {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={MEMORY_CAP}"))
        .arg("--")
        .arg(ferry_unpack_bin())
        .args(args)
        .env("HOME", home)
        .env("NO_PROXY", "*");
    for v in [
        "SOURCE_DATE_EPOCH",
        "REGISTRY_AUTH_FILE",
        "DOCKER_CONFIG",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    run_command(&mut c)
}

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_owned()
}

/// No panic, no death by signal (an allocation failing under the cap aborts).
fn sane(out: &Output, what: &str) -> Result<(), String> {
    if out.stderr_text().contains("panicked") {
        return Err(format!("{what} panicked\n{}", out.dump()));
    }
    let text = out.text();
    if text.contains("out of memory") || text.contains("memory allocation") {
        return Err(format!(
            "{what} tried to allocate past the {} MiB cap (memory must be bounded before it is asked for, SPEC.md §2)\n{}",
            MEMORY_CAP >> 20,
            out.dump()
        ));
    }
    if out.status.code().is_none() {
        return Err(format!(
            "{what} was killed ({:?}): a crash or an allocation past the {} MiB cap\n{}",
            out.status,
            MEMORY_CAP >> 20,
            out.dump()
        ));
    }
    Ok(())
}

/// What a case did, for the summary line.
pub struct Outcome {
    pub verify_exit: i32,
    pub pushed_blobs: usize,
}

/// Runs one case in `dir` (made here). Returns what happened, or every way it failed.
pub fn run_case(fx: &Fixture, case: &Case, dir: &Path) -> Result<Outcome, String> {
    fs::create_dir_all(dir).unwrap();
    let vols = dir.join("volumes");
    fs::create_dir_all(&vols).unwrap();
    let mut paths = Vec::new();
    for (name, bytes) in &case.files {
        let p = vols.join(name);
        fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    let hostile: Vec<PathBuf> = case.hostile.iter().map(|h| vols.join(h)).collect();
    let trust = [os("--trust"), os(&fx.key.public)];
    let mut problems = Vec::new();

    // verify: exit 1, the path and the region or rule named, the right status.
    let mut args = vec![os("verify")];
    args.extend(paths.iter().map(os));
    args.extend(trust.iter().cloned());
    let out = unpack_capped(&args, dir);
    let verify_exit = out.code();
    if let Err(e) = sane(&out, "verify") {
        problems.push(e);
    }
    if case.caught_by == CaughtBy::Verify {
        if out.code() != 1 {
            problems.push(format!("verify: expected exit 1\n{}", out.dump()));
        }
        let text = out.text();
        for h in &hostile {
            let p = h.display().to_string();
            if !text.contains(&p) {
                problems.push(format!(
                    "verify does not name the volume {p}\n{}",
                    out.dump()
                ));
            }
        }
        for s in &case.says {
            if !text.contains(s.as_str()) {
                problems.push(format!("verify does not say {s:?}\n{}", out.dump()));
            }
        }
    }
    args.push(os("--json"));
    let out = unpack_capped(&args, dir);
    if let Err(e) = sane(&out, "verify --json") {
        problems.push(e);
    }
    // verify --json is a JSON Lines stream (docs/events.md); crate::json folds it.
    match Ok::<Value, String>(crate::json(&out)) {
        Ok(report) => {
            for v in report["volumes"].as_array().into_iter().flatten() {
                let path = PathBuf::from(v["path"].as_str().unwrap_or_default());
                let want = if hostile.contains(&path) {
                    case.status
                } else {
                    "ok"
                };
                if v["status"] != want {
                    problems.push(format!(
                        "verify --json: {} is {}, expected {want}",
                        path.display(),
                        v["status"]
                    ));
                }
            }
        }
        Err(e) => problems.push(format!(
            "verify --json printed no JSON ({e})\n{}",
            out.dump()
        )),
    }

    // extract, for the lies only decoding reveals.
    if case.caught_by == CaughtBy::Extract {
        let mut args = vec![os("extract")];
        args.extend(paths.iter().map(os));
        args.extend(trust.iter().cloned());
        args.extend([os("--to"), os(dir.join("extracted"))]);
        let out = unpack_capped(&args, dir);
        if let Err(e) = sane(&out, "extract") {
            problems.push(e);
        } else if out.code() != 1 {
            problems.push(format!("extract: expected exit 1\n{}", out.dump()));
        }
        for s in &case.says {
            if !out.text().contains(s.as_str()) {
                problems.push(format!("extract does not say {s:?}\n{}", out.dump()));
            }
        }
        let _ = fs::remove_dir_all(dir.join("extracted"));
    }

    // push into a fresh registry: nothing the signature does not vouch for arrives.
    let registry = Registry::plain();
    let mut args = vec![os("push")];
    args.extend(paths.iter().map(os));
    args.extend(trust.iter().cloned());
    args.extend([
        os("--to"),
        os(format!("127.0.0.1:{}/hostile", registry.port)),
        os("--insecure"),
        os("--state"),
        os(dir.join("state")),
        os("--manifests-dir"),
        os(dir.join("manifests")),
        os("--jobs"),
        os("2"),
    ]);
    let out = unpack_capped(&args, dir);
    if let Err(e) = sane(&out, "push") {
        problems.push(e);
    } else if out.code() == 0 || out.code() == 2 {
        // 0 = everything went in, 2 = usage or I/O: neither fits a hostile input.
        problems.push(format!("push: expected exit 1 or 3\n{}", out.dump()));
    }
    if case.caught_by == CaughtBy::Push {
        if out.code() != 1 {
            problems.push(format!("push: expected exit 1\n{}", out.dump()));
        }
        for s in &case.says {
            if !out.text().contains(s.as_str()) {
                problems.push(format!("push does not say {s:?}\n{}", out.dump()));
            }
        }
    }
    let blobs = stored_blobs(&registry.storage());
    for (hex, actual) in &blobs {
        let digest = format!("sha256:{hex}");
        if hex != actual {
            problems.push(format!(
                "the registry holds {digest} whose content is sha256:{actual}"
            ));
        }
        if !fx.vouched.contains(&digest) && !case.vouched.contains(&digest) {
            problems.push(format!(
                "push uploaded {digest}, which no trusted signature vouches for"
            ));
        }
        if case.absent.contains(&digest) {
            problems.push(format!("push uploaded the damaged or lying blob {digest}"));
        }
    }
    // Volumes that are all invalid or of two bundles give push nothing to use.
    let refused_whole = case.caught_by == CaughtBy::Verify
        && (case.status == "foreign"
            || (matches!(case.status, "invalid" | "untrusted")
                && case.hostile.len() == case.files.len()));
    if refused_whole && (!blobs.is_empty() || repository_links(&registry.storage()) > 0) {
        problems.push(format!(
            "push wrote into the registry from volumes it must refuse whole: {} blob(s)\n{}",
            blobs.len(),
            out.dump()
        ));
    }
    drop(registry);
    if problems.is_empty() {
        let _ = fs::remove_dir_all(dir);
        Ok(Outcome {
            verify_exit,
            pushed_blobs: blobs.len(),
        })
    } else {
        Err(problems.join("\n"))
    }
}
