//! Without ferry: the images come back with tar, zstd, cat, sha256sum and openssl alone,
//! and keys and signatures interoperate with OpenSSL (SPEC.md §7 and §8).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::*;

/// The recovery procedure. Arguments: PUB OUT VOLUME…. Uses only the tools named in the
/// design (and mkdir, mv, rm, cp); everything else is sh itself.
const RECOVER: &str = r#"
set -eu
pub=$1; out=$2; shift 2
mkdir -p "$out"
for v in "$@"; do tar xf "$v" -C "$out"; done
cd "$out"
# Signatures first: the bundle manifest, the index, and every volume's table.
openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in ferry/bundle.json -sigfile ferry/bundle.json.sig
openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in ferry/index.json -sigfile ferry/index.json.sig
for t in ferry/volume-*.json; do
  openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$t" -sigfile "$t.sig"
done
# Each blob: its chunks in stream order (the offsets are fixed-width hex, so the glob
# sorts them), decompressed when stored as zstd, checked against its name.
for first in blobs/sha256/*.0000000000000000; do
  base=${first%.0000000000000000}
  enc=${base##*.}
  hex=${base%.*}
  hex=${hex##*/}
  cat "blobs/sha256/$hex.$enc."* > "blobs/sha256/$hex.stream"
  if [ "$enc" = zst ]; then
    zstd -q -d -c "blobs/sha256/$hex.stream" > "blobs/sha256/$hex.blob"
    rm "blobs/sha256/$hex.stream"
  else
    mv "blobs/sha256/$hex.stream" "blobs/sha256/$hex.blob"
  fi
  echo "$hex  blobs/sha256/$hex.blob" | sha256sum -c --quiet -
  rm "blobs/sha256/$hex.$enc."*
  mv "blobs/sha256/$hex.blob" "blobs/sha256/$hex"
done
cp ferry/index.json index.json
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > oci-layout
"#;

/// A PATH holding only the allowed tools, so the script cannot use anything else.
fn restricted_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in [
        "tar",
        "zstd",
        "cat",
        "sha256sum",
        "openssl",
        "mkdir",
        "mv",
        "rm",
        "cp",
    ] {
        let out = run("sh", ["-c", &format!("command -v {tool}")]);
        assert_ok(&out, &format!("{tool} is installed"));
        symlink(out.stdout_text().trim(), bin.join(tool)).unwrap();
    }
    bin
}

fn recover(bin: &Path, public: &Path, out: &Path, vols: &[PathBuf]) -> std::process::Output {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(RECOVER)
        .arg("recover")
        .arg(public)
        .arg(out)
        .args(vols)
        .env_clear()
        .env("PATH", bin);
    run_command(&mut c)
}

#[test]
fn images_recover_with_tar_zstd_cat_sha256sum_and_openssl() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let vols_dir = tmp.path().join("vols");
    // Small volumes, so blobs span volumes and both encodings occur.
    pack_ok(&fixture("oci"), &vols_dir, "64KiB", &key, &[]);
    let vols = volumes(&vols_dir);
    let spans = blob_volumes(&vols);
    assert!(
        spans.values().any(|v| v.len() >= 2),
        "some blob spans volumes"
    );
    let bin = restricted_path(tmp.path());

    let out = tmp.path().join("recovered");
    let o = recover(&bin, &key.public, &out, &vols);
    assert_ok(&o, "recovery script");
    let reference = format!(
        "oci:{}:openshift4/ose-elasticsearch-proxy:v4.6",
        out.display()
    );
    let inspect = skopeo(["inspect", &reference]);
    assert_ok(&inspect, &format!("skopeo inspect {reference}"));
    assert_eq!(json(&inspect)["Digest"], PROXY_DIGEST);
    // Every blob came back under its digest, and nothing but whole blobs is left.
    let blobs = names(&out.join("blobs/sha256"));
    assert_eq!(blobs.len(), spans.len());
    for b in &blobs {
        assert_eq!(
            file_sha256(&out.join("blobs/sha256").join(b)),
            format!("sha256:{b}")
        );
    }

    // The same procedure refuses a damaged chunk (sha256sum) and a forged manifest (openssl).
    let damaged = tmp.path().join("damaged");
    copy_tree(&vols_dir, &damaged);
    let (vol, data, _) = chunk_of(&damaged, SHARED_BASE_LAYER);
    flip_byte(&vol, data + 3);
    let o = recover(
        &bin,
        &key.public,
        &tmp.path().join("r2"),
        &volumes(&damaged),
    );
    assert_ne!(
        o.code(),
        0,
        "recovery must fail on a damaged chunk\n{}",
        o.dump()
    );
    assert_mentions(&o, &["FAILED"], "sha256sum reports the damaged blob");

    let other = keygen(tmp.path(), "other.key");
    let o = recover(&bin, &other.public, &tmp.path().join("r3"), &vols);
    assert_ne!(
        o.code(),
        0,
        "recovery must fail with another key\n{}",
        o.dump()
    );
}

#[test]
fn ferry_keys_open_in_openssl() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let o = run(
        "openssl",
        [
            OsStr::new("pkey"),
            OsStr::new("-in"),
            key.private.as_os_str(),
            OsStr::new("-noout"),
        ],
    );
    assert_ok(&o, "openssl pkey -in KEY -noout");
    let o = run(
        "openssl",
        [
            OsStr::new("pkey"),
            OsStr::new("-pubin"),
            OsStr::new("-in"),
            key.public.as_os_str(),
            OsStr::new("-noout"),
        ],
    );
    assert_ok(&o, "openssl pkey -pubin -in KEY.pub -noout");
    // OpenSSL derives the very same public key file.
    let o = run(
        "openssl",
        [
            OsStr::new("pkey"),
            OsStr::new("-in"),
            key.private.as_os_str(),
            OsStr::new("-pubout"),
        ],
    );
    assert_ok(&o, "openssl pkey -pubout");
    assert_eq!(
        o.stdout,
        fs::read(&key.public).unwrap(),
        "KEY.pub equals openssl's -pubout"
    );

    // The standalone manifest beside the volumes verifies with openssl too.
    let vols = tmp.path().join("vols");
    pack_ok(&fixture("skopeo-dir"), &vols, "256KiB", &key, &[]);
    let (manifest, _) = standalone_manifest(&vols);
    let mut sig = manifest.clone().into_os_string();
    sig.push(".sig");
    let o = run(
        "openssl",
        [
            OsStr::new("pkeyutl"),
            OsStr::new("-verify"),
            OsStr::new("-pubin"),
            OsStr::new("-inkey"),
            key.public.as_os_str(),
            OsStr::new("-rawin"),
            OsStr::new("-in"),
            manifest.as_os_str(),
            OsStr::new("-sigfile"),
            &sig,
        ],
    );
    assert_ok(&o, "openssl pkeyutl -verify of the standalone manifest");
}

#[test]
fn openssl_generated_key_signs_a_bundle_that_verifies() {
    let tmp = tempdir();
    let private = tmp.path().join("k.pem");
    let public = tmp.path().join("k.pub");
    let o = run(
        "openssl",
        [
            OsStr::new("genpkey"),
            OsStr::new("-algorithm"),
            OsStr::new("ed25519"),
            OsStr::new("-out"),
            private.as_os_str(),
        ],
    );
    assert_ok(&o, "openssl genpkey");
    let o = run(
        "openssl",
        [
            OsStr::new("pkey"),
            OsStr::new("-in"),
            private.as_os_str(),
            OsStr::new("-pubout"),
            OsStr::new("-out"),
            public.as_os_str(),
        ],
    );
    assert_ok(&o, "openssl pkey -pubout");

    let vols = tmp.path().join("vols");
    let o = pack_with(&fixture("oci"), &vols, "256KiB", &private, &[]);
    assert_ok(&o, "ferry-pack with an openssl key");
    let o = unpack([
        OsStr::new("verify"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        public.as_os_str(),
    ]);
    assert_ok(&o, "verify --trust k.pub");
    // The fingerprint verify shows is the one the bundle claims.
    let info = json(&unpack([
        OsStr::new("inspect"),
        vols.as_os_str(),
        OsStr::new("--json"),
    ]));
    let fp = info["key"].as_str().expect("key").to_owned();
    assert_mentions(&o, &[&format!("signed by {fp}")], "verify names the key");
}
