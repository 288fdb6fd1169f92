//! Bad input to ferry-pack: a clear message naming what and where, a non-zero exit, and
//! no volume left in --out. Leftovers of failed mirror runs are skipped and reported.
//! Key generation never overwrites and keeps the private key private.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::*;

/// The proxy's uncompressed layer (`application/vnd.oci.image.layer.v1.tar`): zstd-packed,
/// so it is hashed while ferry-pack sizes its compressed stream.
const UNCOMPRESSED_LAYER: &str = "9c47b51f3bdc27017f719dde06154dc0c67632f75a40eca82d9ae871cfe2eb50";
/// oauth-proxy's own gzip layer: stored raw and packed near the end, so earlier volumes
/// are already complete when its digest turns out wrong.
const LATE_GZIP_LAYER: &str = "d135cf53393f383f8114d8af4ef81023fc4f55dc6e8ef4db1688f996a3d2b4be";
/// The ca-bundle layer of proxy and oauth-proxy.
const CA_LAYER: &str = "a739447b8cc2bf1c0220c95b0820da2060e974b2f049a7ea6d0dc01351f24054";

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Nothing that looks like (part of) a bundle in `out`, if it exists at all.
#[track_caller]
fn assert_no_volumes(out: &Path) {
    let left: Vec<String> = names(out)
        .into_iter()
        .filter(|n| n.ends_with(".tar") || n.contains(".partial") || n.contains(".bundle.json"))
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", out.display());
}

#[test]
fn blob_with_altered_bytes_is_an_error_naming_the_file() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    for (case, blob) in [
        ("gzip", hex(SHARED_BASE_LAYER)),
        ("uncompressed", UNCOMPRESSED_LAYER),
        ("late", LATE_GZIP_LAYER),
    ] {
        let dir = tmp.path().join(case);
        fs::create_dir(&dir).unwrap();
        let mirror = copy_fixture("oci", &dir);
        let file = mirror.join("blobs/sha256").join(blob);
        flip_byte(&file, file_size(&file) / 2);
        let out = dir.join("out");
        let o = pack_with(&mirror, &out, "64KiB", &key.private, &[]);
        assert_exit(&o, 1, &format!("pack with a damaged {case} blob"));
        assert_mentions(&o, &[&file.to_string_lossy(), "digest", blob], case);
        assert_no_volumes(&out);
    }
}

#[test]
fn manifest_referencing_a_missing_blob_names_digest_and_manifest() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let layer_file = |layout: &str| -> &'static str {
        match layout {
            "oci" => "blobs/sha256/a739447b8cc2bf1c0220c95b0820da2060e974b2f049a7ea6d0dc01351f24054",
            "oc-mirror" => "v2/efk-mirror/my-operator/my-operator-index/openshift4/ose-elasticsearch-proxy/blobs/sha256:a739447b8cc2bf1c0220c95b0820da2060e974b2f049a7ea6d0dc01351f24054",
            "registry" => "docker/registry/v2/blobs/sha256/a7/a739447b8cc2bf1c0220c95b0820da2060e974b2f049a7ea6d0dc01351f24054/data",
            "skopeo-dir" => "openshift4/ose-elasticsearch-proxy:v4.6/a739447b8cc2bf1c0220c95b0820da2060e974b2f049a7ea6d0dc01351f24054",
            _ => unreachable!(),
        }
    };
    for layout in LAYOUTS {
        let mirror = copy_fixture(layout, tmp.path());
        fs::remove_file(mirror.join(layer_file(layout))).unwrap();
        let out = tmp.path().join(format!("out-{layout}"));
        let o = pack_with(&mirror, &out, "64KiB", &key.private, &[]);
        assert_exit(&o, 1, &format!("pack {layout} with a missing layer"));
        assert_mentions(
            &o,
            &[
                "missing",
                &format!("sha256:{CA_LAYER}"),
                // The repository, and the file that references the blob.
                "openshift4/ose-elasticsearch-proxy",
                &mirror.to_string_lossy(),
            ],
            layout,
        );
        assert_no_volumes(&out);
    }
}

#[test]
fn directory_that_is_no_mirror_lists_what_was_looked_for() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let dir = tmp.path().join("photos");
    fs::create_dir_all(dir.join("2020")).unwrap();
    fs::write(dir.join("2020/cat.jpg"), b"not an image mirror").unwrap();
    let out = tmp.path().join("out");
    let o = pack_with(&dir, &out, "64KiB", &key.private, &[]);
    assert_exit(&o, 1, "pack a directory that is no mirror");
    assert_mentions(
        &o,
        &[
            &dir.to_string_lossy(),
            "not an image mirror",
            "v2/<repo>/manifests",
            "oci-layout",
            "docker/registry/v2",
            "version",
        ],
        "no mirror",
    );
    assert_no_volumes(&out);
}

#[test]
fn leftovers_of_failed_mirror_runs_are_skipped_and_reported() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mirror = copy_fixture("oc-mirror", tmp.path());
    let repo =
        mirror.join("v2/efk-mirror/my-operator/my-operator-index/openshift4/ose-oauth-proxy");
    let download = repo.join(format!("blobs/sha256:{LATE_GZIP_LAYER}.download"));
    fs::write(&download, b"half a layer").unwrap();
    fs::create_dir(repo.join("blobs/.tmp-xyz")).unwrap();
    fs::write(repo.join("blobs/.tmp-xyz/data"), b"partial upload").unwrap();

    let out = tmp.path().join("vols");
    let o = pack_ok(&mirror, &out, "256KiB", &key, &[]);
    let err = o.stderr_text();
    assert!(err.contains("skipped"), "{}", o.dump());
    for leftover in [
        format!("sha256:{LATE_GZIP_LAYER}.download"),
        "blobs/.tmp-xyz".to_owned(),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("skipped") && l.contains(&leftover)),
            "{leftover} not reported as skipped\n{}",
            o.dump()
        );
    }

    let original = tmp.path().join("original");
    extract_ok(&out, &key, &original, "original");
    // Equal to the fixture as it was before the leftovers were added.
    let diff = diff_r(&fixture("oc-mirror"), &original);
    assert!(
        diff.code() == 0,
        "leftovers were packed or the tree differs:\n{}",
        diff.dump()
    );
}

#[test]
fn volume_size_needs_a_unit_and_room() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("out");

    let o = pack_with(&fixture("oci"), &out, "4", &key.private, &[]);
    assert!(o.code() == 1 || o.code() == 2, "{}", o.dump());
    assert_mentions(
        &o,
        &["\"4\"", "no unit", "GiB", "GB", "fat32", "dvd", "bd25"],
        "--volume-size 4",
    );
    assert!(!out.exists(), "nothing is created for a bad size");

    let o = pack_with(&fixture("oci"), &out, "8KiB", &key.private, &[]);
    assert_eq!(o.code(), 1, "{}", o.dump());
    assert_mentions(&o, &["too small"], "--volume-size 8KiB");
    assert_no_volumes(&out);
}

fn keygen_in(dir: &Path, name: &str, umask: &str) -> Output {
    // umask 000 must not loosen the private key's mode.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" keygen \"$1\""))
        .arg(ferry_pack_bin())
        .arg(dir.join(name));
    run_command(&mut c)
}

#[test]
fn keygen_writes_0600_and_refuses_to_overwrite() {
    let tmp = tempdir();
    let o = keygen_in(tmp.path(), "site.key", "000");
    assert_ok(&o, "keygen under umask 000");
    let key = tmp.path().join("site.key");
    let public = tmp.path().join("site.key.pub");
    assert_eq!(mode_of(&key), 0o600, "private key mode");
    assert!(public.is_file());
    assert_mentions(&o, &["fingerprint:"], "keygen");

    let before: Vec<Vec<u8>> = [&key, &public]
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    let o = keygen_in(tmp.path(), "site.key", "022");
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &["already exists", "site.key"],
        "keygen over an existing key",
    );
    let after: Vec<Vec<u8>> = [&key, &public]
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after, "the existing key pair is untouched");

    // A stray KEY.pub alone also stops it: the pair must never be mismatched.
    fs::write(tmp.path().join("lone.key.pub"), b"someone's public key").unwrap();
    let o = keygen_in(tmp.path(), "lone.key", "022");
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &["lone.key.pub", "already exists"],
        "keygen over an existing .pub",
    );
    assert!(!tmp.path().join("lone.key").exists());
    assert_eq!(
        fs::read(tmp.path().join("lone.key.pub")).unwrap(),
        b"someone's public key"
    );
}

/// `--only-volume N` is how a lost disk is rewritten; it must re-hash the input like a full
/// run, or it signs a damaged blob into a volume that then verifies OK at the gap.
#[test]
fn only_volume_rehashes_blobs_that_start_in_an_earlier_volume() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    // Find a raw blob that continues into volume N > 1 at a non-zero offset.
    let full = tmp.path().join("full");
    pack_ok(&fixture("oci"), &full, "64KiB", &key, &[]);
    let vols = volumes(&full);
    let (n, chunk) = vols
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, v)| {
            let first = tar_list(v).iter().find_map(|name| parse_chunk_name(name))?;
            (first.encoding == "raw" && first.stream_offset > 0).then_some((i + 1, first))
        })
        .expect("a raw blob continued into a later volume");

    let mirror = copy_fixture("oci", tmp.path());
    let file: PathBuf = mirror.join("blobs/sha256").join(&chunk.hex);
    flip_byte(&file, chunk.stream_offset + 10); // inside the part volume n holds
    let out = tmp.path().join("only");
    let o = pack_with(
        &mirror,
        &out,
        "64KiB",
        &key.private,
        &["--only-volume", &n.to_string()],
    );
    assert_exit(
        &o,
        1,
        &format!("--only-volume {n} with a damaged blob {}", chunk.hex),
    );
    assert_mentions(
        &o,
        &[&file.to_string_lossy(), "digest"],
        "--only-volume with a damaged blob",
    );
    assert_no_volumes(&out);
}

/// A blob held in several repositories as separate files (skopeo `dir:` always, oc when it
/// did not hard-link) is one blob in the bundle, but every copy is the user's data: a
/// damaged copy fails the pack whichever copy it is (regression test for c12bac9).
#[test]
fn every_copy_of_a_shared_blob_is_rehashed() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let base = hex(SHARED_BASE_LAYER);
    let oc_repo = "v2/efk-mirror/my-operator/my-operator-index/openshift4";
    let copies: Vec<(&str, String)> = [
        "ose-elasticsearch-operator",
        "ose-elasticsearch-proxy",
        "ose-logging-fluentd",
        "ose-oauth-proxy",
    ]
    .iter()
    .map(|r| ("oc-mirror", format!("{oc_repo}/{r}/blobs/sha256:{base}")))
    .chain(
        [
            "ose-elasticsearch-operator:v4.6",
            "ose-elasticsearch-proxy:v4.6",
            "ose-logging-fluentd:v4.6",
            "ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
        ]
        .iter()
        .map(|d| ("skopeo-dir", format!("openshift4/{d}/{base}"))),
    )
    .collect();
    for (i, (layout, rel)) in copies.iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        fs::create_dir(&dir).unwrap();
        let mirror = copy_fixture(layout, &dir);
        let file = mirror.join(rel);
        // Its own inode (a checkout of oc-mirror may or may not keep the hard links).
        let bytes = fs::read(&file).unwrap();
        fs::remove_file(&file).unwrap();
        fs::write(&file, bytes).unwrap();
        flip_byte(&file, 1234);
        let out = dir.join("out");
        let o = pack_with(&mirror, &out, "64KiB", &key.private, &[]);
        assert_exit(&o, 1, &format!("pack {layout} with a damaged copy {rel}"));
        assert_mentions(&o, &[&file.to_string_lossy(), "digest"], rel);
        assert_no_volumes(&out);
    }
}

/// `--base` reads receipts with the format crate's reader: another version, a member it
/// does not know, or a file that is neither a receipt nor a bundle manifest is refused,
/// naming the file and why, before anything is written (a receipt read in part would leave
/// out blobs the inside may lack).
#[test]
fn base_that_is_not_a_receipt_this_ferry_reads_is_refused_naming_why() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let receipt = |version: &str, extra: &str| {
        format!(
            r#"{{"ferry_receipt": {version}, "registry": "registry.local:5000/efk", "bundle_id": "sha256:{zero}", "images": [], "blobs": ["sha256:{CA_LAYER}"]{extra}}}"#,
            zero = "0".repeat(64)
        )
    };
    for (case, text, why) in [
        ("v2", receipt("2", ""), "receipt version 2 is not supported"),
        (
            "unknown",
            receipt("1", r#", "pushed_at": 1"#),
            "not a valid receipt: unknown field `pushed_at`",
        ),
        ("array", "[1, 2]".to_string(), "neither a receipt"),
        ("text", "receipt".to_string(), "not JSON"),
    ] {
        let base = tmp.path().join(format!("{case}.json"));
        fs::write(&base, text).unwrap();
        let out = tmp.path().join(format!("out-{case}"));
        let o = pack_with(
            &fixture("oci"),
            &out,
            "64KiB",
            &key.private,
            &["--base", &base.display().to_string()],
        );
        assert_exit(&o, 1, &format!("--base {case}"));
        assert_mentions(&o, &[&format!("--base {}", base.display()), why], case);
        assert_no_volumes(&out);
    }
    // The same receipt at version 1 is read: the layer it lists is left to the base.
    let base = tmp.path().join("good.json");
    fs::write(&base, receipt("1", "")).unwrap();
    let out = tmp.path().join("out-good");
    let o = pack_with(
        &fixture("oci"),
        &out,
        "64KiB",
        &key.private,
        &["--base", &base.display().to_string()],
    );
    assert_exit(&o, 0, "--base with a version 1 receipt");
    assert_mentions(
        &o,
        &["1 left to the base"],
        "--base with a version 1 receipt",
    );
}
