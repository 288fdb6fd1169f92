//! Helpers for the end-to-end tests: the real `ferry-pack` and `ferry-unpack` binaries,
//! run against the fixtures and checked with the tools a user would use (tar, diff,
//! skopeo, openssl).
//!
//! What this crate must not do: ship, or reach any address but 127.0.0.1.
//!
//! The binaries are not built by `cargo test -p tests` (a test crate cannot depend on a
//! binary on stable Cargo): run `cargo build -p pack -p unpack` first, or point
//! `FERRY_BIN_DIR` at a directory holding them.

pub mod catalogs;
pub mod faults;
pub mod hostile;
pub mod registry;
pub mod source;

pub use test_support::cmd::{assert_exit, assert_ok, run, run_command, tempdir, OutputExt};

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The six images are the same in every layout (fixtures/README.md "Images").
pub const LAYOUTS: [&str; 4] = ["oc-mirror", "oci", "registry", "skopeo-dir"];
/// `openshift4/ose-elasticsearch-proxy:v4.6`, an OCI manifest (fixtures/README.md).
pub const PROXY_DIGEST: &str =
    "sha256:239bcd202d2332541948d67d5864c9d34a21fee1d7626e6ce174e7da73e0f218";
/// The gzip base layer shared by operator, proxy, fluentd/amd64 and oauth-proxy.
pub const SHARED_BASE_LAYER: &str =
    "sha256:d76f4c06b9acb83eec984f5e9cbd2e4e7ddb536e9da1b49e95f01cb6fcc9fc67";
/// Tar block size; a ferry volume is made of whole blocks (SPEC.md §5.2).
pub const BLOCK: u64 = 512;

// ---------------------------------------------------------------------------------------
// Where things are

/// The workspace root (this package lives in `<workspace>/tests`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `$FERRY_BIN_DIR`, else `$CARGO_TARGET_DIR/debug`, else `<workspace>/target/debug`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is relative to where cargo ran: the workspace.
        Some(t) => workspace().join(t),
        None => workspace().join("target"),
    };
    target.join("debug")
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run `cargo build -p pack -p unpack` first (or set FERRY_BIN_DIR)",
            path.display()
        );
    }
    path
}

pub fn ferry_pack_bin() -> PathBuf {
    binary("ferry-pack")
}

pub fn ferry_unpack_bin() -> PathBuf {
    binary("ferry-unpack")
}

/// `fixtures/<layout>` in the workspace. Never write into it: copy it first.
pub fn fixture(layout: &str) -> PathBuf {
    let p = workspace().join("fixtures").join(layout);
    assert!(p.is_dir(), "fixture {} is missing", p.display());
    p
}

// ---------------------------------------------------------------------------------------
// Running commands

pub fn pack<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(ferry_pack_bin(), args)
}

pub fn unpack<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(ferry_unpack_bin(), args)
}

pub fn skopeo<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run("skopeo", args)
}

/// `diff -r --no-dereference A B`: symlinks compare as links (their targets), not as
/// the files they point to, so a tag symlink restored as a copy is a difference.
pub fn diff_r(a: &Path, b: &Path) -> Output {
    run(
        "diff",
        [
            OsStr::new("-r"),
            OsStr::new("--no-dereference"),
            a.as_os_str(),
            b.as_os_str(),
        ],
    )
}

/// Panics unless `text` contains every one of `needles`.
#[track_caller]
pub fn assert_mentions(out: &Output, needles: &[&str], what: &str) {
    let text = out.text();
    for n in needles {
        assert!(
            text.contains(n),
            "{what}: output does not mention {n:?}\n{}",
            out.dump()
        );
    }
}

/// Parses stdout as JSON, or panics showing it.
#[track_caller]
/// The `--json` output as one object: a single JSON document as it is, or a JSON Lines
/// event stream (docs/events.md) folded — `summary` and `bundle` events merged into the
/// top level, other events collected into arrays named by their type plus `s`
/// (`volume` → `volumes`, `image` → `images`). Every line must be a JSON object with a
/// `type`, so a stray print on stdout fails the test.
pub fn json(out: &Output) -> Value {
    if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
        return v;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut top = serde_json::Map::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}\n{}", out.dump()));
        let mut obj = v
            .as_object()
            .cloned()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        let kind = obj
            .remove("type")
            .and_then(|t| t.as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("event without a type: {line}"));
        // A lone `bundle` event describes the whole output (inspect, status of one bundle).
        let lone_bundle = kind == "bundle" && text.matches("\"type\":\"bundle\"").count() == 1;
        if kind == "summary" || lone_bundle {
            top.extend(obj);
        } else {
            let list = top
                .entry(format!("{kind}s"))
                .or_insert_with(|| Value::Array(Vec::new()));
            list.as_array_mut()
                .expect("event lists are arrays")
                .push(Value::Object(obj));
        }
    }
    Value::Object(top)
}

// ---------------------------------------------------------------------------------------
// Files and directories

/// Copies a tree with `cp -a`: symlinks stay symlinks, hard links stay linked, and modes
/// and mtimes are kept (ferry-pack takes the bundle time from the newest mtime).
pub fn copy_tree(src: &Path, dst: &Path) {
    let out = run("cp", [OsStr::new("-a"), src.as_os_str(), dst.as_os_str()]);
    assert_ok(&out, "cp -a");
}

/// A fresh copy of `fixtures/<layout>` at `<dir>/<layout>`.
pub fn copy_fixture(layout: &str, dir: &Path) -> PathBuf {
    let dst = dir.join(layout);
    copy_tree(&fixture(layout), &dst);
    dst
}

/// XORs the byte at `offset` with 0x01 (any change of one bit is damage).
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).expect("read file to damage");
    let i = usize::try_from(offset).expect("offset fits");
    assert!(
        i < bytes.len(),
        "offset {offset} is past the end of {}",
        path.display()
    );
    bytes[i] ^= 0x01;
    write_keeping_mtime(path, &bytes);
}

/// Cuts `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open file to truncate");
    f.set_len(len).expect("truncate");
}

/// Rewrites a file but keeps its mtime, as bit rot would: damage must be found by
/// hashing, not by looking at times.
fn write_keeping_mtime(path: &Path, bytes: &[u8]) {
    let mtime = fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    fs::write(path, bytes).expect("write damaged file");
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
}

pub fn file_sha256(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
}

pub fn file_size(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .len()
}

/// Everything observable about a directory's entries: name → (size, mtime in ns, mode,
/// inode). Compared before and after a command that must not write (as root,
/// `chmod 0555` alone proves nothing).
pub fn snapshot(dir: &Path) -> BTreeMap<String, (u64, i128, u32, u64)> {
    let mut out = BTreeMap::new();
    let meta = fs::symlink_metadata(dir).expect("stat dir");
    out.insert(".".to_owned(), stat_tuple(&meta));
    for e in fs::read_dir(dir).expect("read dir") {
        let e = e.expect("dir entry");
        let meta = fs::symlink_metadata(e.path()).expect("stat entry");
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            stat_tuple(&meta),
        );
    }
    out
}

fn stat_tuple(m: &fs::Metadata) -> (u64, i128, u32, u64) {
    (
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.mode(),
        m.ino(),
    )
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// Names in `dir` (not recursive), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Keys and bundles

pub struct Key {
    pub private: PathBuf,
    pub public: PathBuf,
    /// As `ferry-pack keygen` printed it.
    pub fingerprint: String,
}

/// `ferry-pack keygen <dir>/<name>`.
pub fn keygen(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let out = pack([OsStr::new("keygen"), private.as_os_str()]);
    assert_ok(&out, "ferry-pack keygen");
    let fingerprint = out
        .stdout_text()
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint:").map(|f| f.trim().to_owned()))
        .unwrap_or_else(|| panic!("keygen printed no fingerprint\n{}", out.dump()));
    let mut public = private.clone().into_os_string();
    public.push(".pub");
    Key {
        private,
        public: PathBuf::from(public),
        fingerprint,
    }
}

/// `ferry-pack MIRROR --out OUT --volume-size SIZE --key KEY [extra…]`, asserted to succeed.
pub fn pack_ok(mirror: &Path, out: &Path, size: &str, key: &Key, extra: &[&str]) -> Output {
    let o = pack_with(mirror, out, size, &key.private, extra);
    assert_ok(&o, &format!("ferry-pack {}", mirror.display()));
    o
}

/// `ferry-unpack extract VOLS --trust KEY.pub --to TO --layout LAYOUT`, asserted to succeed.
pub fn extract_ok(vols: &Path, key: &Key, to: &Path, layout: &str) -> Output {
    let o = unpack([
        OsStr::new("extract"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        key.public.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
        OsStr::new("--layout"),
        OsStr::new(layout),
    ]);
    assert_ok(&o, &format!("extract --layout {layout}"));
    o
}

/// The same, returning whatever happened.
pub fn pack_with(mirror: &Path, out: &Path, size: &str, key: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        mirror.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--volume-size"),
        OsStr::new(size),
        OsStr::new("--key"),
        key.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    pack(args)
}

/// The volume files (`*.tar`) in `dir`, sorted by name (= by volume number).
pub fn volumes(dir: &Path) -> Vec<PathBuf> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".tar"))
        .map(|n| dir.join(n))
        .collect()
}

/// The standalone `ferry-<12 hex>.bundle.json.zst` (or version 1's `.bundle.json`) beside
/// the volumes, its JSON text parsed.
pub fn standalone_manifest(dir: &Path) -> (PathBuf, Value) {
    let found: Vec<String> = names(dir)
        .into_iter()
        .filter(|n| format_spec::volume::is_manifest_path_name(n))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one standalone manifest in {}: {found:?}",
        dir.display()
    );
    let path = dir.join(&found[0]);
    let stored = fs::read(&path).expect("read manifest");
    let json = format_spec::manifest::json_of(&stored).expect("manifest decompresses");
    let v = serde_json::from_slice(&json).expect("manifest is JSON");
    (path, v)
}

/// A volume's signed table (`ferry/volume-NNNN.json`), found the documented way: the
/// trailer's 512 bytes sit 1536 bytes before the end (SPEC.md §5.2).
pub struct VolumeTable {
    pub table: Value,
}

impl VolumeTable {
    pub fn read(path: &Path) -> VolumeTable {
        let bytes = fs::read(path).expect("read volume");
        let (offset, size) = trailer(&bytes);
        let start = usize::try_from(offset + BLOCK).expect("fits");
        let end = start + usize::try_from(size).expect("fits");
        let table = serde_json::from_slice(&bytes[start..end]).expect("volume table is JSON");
        VolumeTable { table }
    }

    pub fn chunks(&self) -> &Vec<Value> {
        self.table["chunks"].as_array().expect("chunks")
    }
}

/// `(table offset, table size)` from the trailer text.
pub fn trailer(volume: &[u8]) -> (u64, u64) {
    let n = volume.len();
    let text = std::str::from_utf8(&volume[n - 1536..n - 1024]).expect("trailer is text");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("ferry-volume-trailer 1"),
        "trailer magic"
    );
    let field = |line: Option<&str>, name: &str| -> u64 {
        line.and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("trailer field {name}"))
    };
    let offset = field(lines.next(), "table-offset ");
    let size = field(lines.next(), "table-size ");
    (offset, size)
}

/// Offset of the volume table's data (not its header) in a volume file.
pub fn table_data_offset(path: &Path) -> u64 {
    let bytes = fs::read(path).expect("read volume");
    trailer(&bytes).0 + BLOCK
}

/// A chunk as `tar tf` names it: `blobs/sha256/<hex>.<raw|zst>.<16 hex stream offset>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkName {
    pub hex: String,
    pub encoding: String,
    pub stream_offset: u64,
}

/// `tar tf VOLUME` with the system tar: the volume is a plain POSIX tar.
pub fn tar_list(volume: &Path) -> Vec<String> {
    let out = run("tar", [OsStr::new("tf"), volume.as_os_str()]);
    assert_ok(&out, &format!("tar tf {}", volume.display()));
    out.stdout_text().lines().map(str::to_owned).collect()
}

pub fn parse_chunk_name(name: &str) -> Option<ChunkName> {
    let rest = name.strip_prefix("blobs/sha256/")?;
    let mut parts = rest.split('.');
    let (hex, encoding, offset) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || hex.len() != 64 || offset.len() != 16 {
        return None;
    }
    Some(ChunkName {
        hex: hex.to_owned(),
        encoding: encoding.to_owned(),
        stream_offset: u64::from_str_radix(offset, 16).ok()?,
    })
}

/// Blob hex → the volume numbers (1-based, by position in `vols`) holding its chunks.
pub fn blob_volumes(vols: &[PathBuf]) -> BTreeMap<String, BTreeSet<usize>> {
    let mut map: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, v) in vols.iter().enumerate() {
        for name in tar_list(v) {
            if let Some(c) = parse_chunk_name(&name) {
                map.entry(c.hex).or_default().insert(i + 1);
            }
        }
    }
    map
}

/// Where the data of the first chunk of blob `digest` sits: (volume path, data offset,
/// chunk size). Located with the signed table and the standalone manifest's blob list.
pub fn chunk_of(dir: &Path, digest: &str) -> (PathBuf, u64, u64) {
    let (_, manifest) = standalone_manifest(dir);
    let index = manifest["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .position(|b| b["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} is not in the bundle"));
    for v in volumes(dir) {
        let t = VolumeTable::read(&v);
        if let Some(c) = t.chunks().iter().find(|c| c["blob"] == index) {
            let offset = c["offset"].as_u64().expect("offset");
            return (v, offset + BLOCK, c["size"].as_u64().expect("size"));
        }
    }
    panic!("no chunk of {digest} in {}", dir.display());
}

/// Panics unless `a` and `b` hold the same file names with byte-identical contents.
#[track_caller]
pub fn assert_same_files(a: &Path, b: &Path) {
    assert_eq!(
        names(a),
        names(b),
        "{} and {} hold different files",
        a.display(),
        b.display()
    );
    for n in names(a) {
        let (x, y) = (
            fs::read(a.join(&n)).expect("read"),
            fs::read(b.join(&n)).expect("read"),
        );
        if x != y {
            let at = x
                .iter()
                .zip(&y)
                .position(|(p, q)| p != q)
                .unwrap_or(x.len().min(y.len()));
            panic!(
                "{n} differs between {} and {} (sizes {} and {}, first difference at byte {at})",
                a.display(),
                b.display(),
                x.len(),
                y.len()
            );
        }
    }
}

/// The Kubernetes name rules, written here from the Kubernetes documentation rather than
/// taken from replay, so the tests judge push's names independently.
/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Most object names (mirror sets, ICSP): a DNS-1123 subdomain, dot-separated labels, at
/// most 253 characters.
pub fn dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(dns1123_label)
}

/// CatalogSource names (OLM makes a Service of it): a DNS-1035 label, starting with a letter.
pub fn dns1035_label(s: &str) -> bool {
    dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}
