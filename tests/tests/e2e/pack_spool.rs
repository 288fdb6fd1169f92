//! The spool (pack/src/spool.rs): compressed streams too large for memory are kept in a
//! nameless temporary file in `$TMPDIR` (else `/var/tmp`) between sizing and writing, so
//! each is compressed once. Where there is a spool and where there is none (a missing
//! directory, a tmpfs), pack writes the same volumes, they extract to the mirror's bytes, and
//! nothing is left where the spool was. (A spool that gives back other bytes is caught before
//! its blob is complete: format-spec's pack tests, which can reach the nameless file.)
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use tests::*;

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Text-like deterministic bytes (xorshift, 7 bits): zstd saves ~12%, so a layer of 20 MB
/// has a stream of ~17.6 MB, more than pack keeps in memory for one blob (8 MiB).
fn text_like(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 & 0x7f
        })
        .collect()
}

/// An OCI layout of one image, `example/big:v1`, whose one layer is an uncompressed tar
/// (as catalog images' database layers are) of `text_like` bytes. Returns the layer digest.
fn big_layout(dir: &Path) -> (PathBuf, String) {
    let layout = dir.join("mirror");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer, layer_size) = put(&text_like(20 << 20));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let (config, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": layer_size}],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let (digest, size) = put(&manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": digest, "size": size,
                       "annotations": {"org.opencontainers.image.ref.name": "example/big:v1"}}],
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
    (layout, layer)
}

/// Packs `mirror` into `out` (8 MiB volumes: the layer spans three) with `TMPDIR=tmpdir`;
/// what ferry-pack said.
fn pack_in(mirror: &Path, out: &Path, key: &Key, tmpdir: &Path) -> String {
    let mut c = Command::new(ferry_pack_bin());
    c.arg(mirror)
        .arg("--out")
        .arg(out)
        .args(["--volume-size", "8MiB", "--key"])
        .arg(&key.private)
        .env("TMPDIR", tmpdir)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    let o = run_command(&mut c);
    assert_ok(&o, &format!("ferry-pack with TMPDIR={}", tmpdir.display()));
    o.stderr_text()
}

fn spool_line(said: &str) -> Option<&str> {
    said.lines()
        .find(|l| l.contains("of compressed streams kept in"))
}

#[test]
fn with_a_spool_or_without_pack_writes_the_same_volumes_and_leaves_nothing_behind() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "k");
    let (mirror, layer) = big_layout(tmp.path());

    // A spool on a disk: the layer's stream is kept there, and nothing is left after.
    // On a disk: /var/tmp, since the test's own temporary directory may be a tmpfs (where
    // pack rightly makes no spool).
    let on_disk = tempfile::tempdir_in("/var/tmp").unwrap();
    let spool_dir = on_disk.path().to_path_buf();
    let out = tmp.path().join("spooled");
    let said = pack_in(&mirror, &out, &key, &spool_dir);
    let line = spool_line(&said).unwrap_or_else(|| panic!("no spool was used:\n{said}"));
    assert!(
        line.contains(&spool_dir.display().to_string()) && line.contains("MiB"),
        "{line}"
    );
    assert_eq!(
        names(&spool_dir),
        Vec::<String>::new(),
        "left in the spool's directory"
    );
    assert!(volumes(&out).len() >= 3, "{:?}", volumes(&out));

    // No spool (its directory missing): the stream is made again while written, to the
    // same bytes.
    let missing = tmp.path().join("no-such-dir");
    let again = tmp.path().join("again");
    let said = pack_in(&mirror, &again, &key, &missing);
    assert_eq!(spool_line(&said), None, "{said}");
    assert!(!missing.exists());
    assert_same_files(&out, &again);

    // A tmpfs is memory, which pack bounds: no spool there either.
    match test_support::tmpfs::Tmpfs::mount("64m") {
        Ok(mem) => {
            let on_tmpfs = tmp.path().join("tmpfs");
            let said = pack_in(&mirror, &on_tmpfs, &key, &mem.path);
            assert_eq!(spool_line(&said), None, "{said}");
            assert_same_files(&out, &on_tmpfs);
        }
        Err(why) => eprintln!("pack_spool: the tmpfs case is skipped: {why}"),
    }

    // What the spool held comes out as the mirror's bytes.
    let extracted = tmp.path().join("extracted");
    extract_ok(&out, &key, &extracted, "oci");
    let hex = &layer["sha256:".len()..];
    assert_eq!(
        file_sha256(&extracted.join("blobs/sha256").join(hex)),
        layer,
        "the spooled layer, extracted"
    );
}
