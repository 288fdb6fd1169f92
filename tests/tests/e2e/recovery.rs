//! Without ferry: the images come back with tar, zstd, cat, sha256sum and openssl alone,
//! and keys and signatures interoperate with OpenSSL (SPEC.md §7 and §8).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::*;

/// The recovery procedure of SPEC.md §8, exactly as published there, its three lines to
/// edit replaced by arguments: PUB OUT VOLUME…. So the script users copy is the one tested.
fn recovery_script() -> String {
    let spec = include_str!("../../../format-spec/SPEC.md");
    let start = spec
        .find("Edit the first three lines, then run the whole block with `sh`:\n\n```sh\n")
        .expect("SPEC.md §8 has the recovery block");
    let block = &spec[start..];
    let block = &block[block.find("```sh\n").unwrap() + 6..];
    let block = &block[..block.find("```").expect("the block ends")];
    let mut script = block.to_string();
    for (line, with) in [
        ("KEY=/tmp/k.pub ", "KEY=$1 #"),
        ("OUT=/tmp/r ", "OUT=$2 #"),
        ("set -- /tmp/v/ferry-*.tar ", "shift 2 #"),
    ] {
        assert!(script.contains(line), "SPEC.md §8 script has {line:?}");
        script = script.replacen(line, with, 1);
    }
    script
}

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
        .arg(recovery_script())
        .arg("recover")
        .arg(public)
        .arg(out)
        .args(vols)
        .env_clear()
        .env("PATH", bin);
    run_command(&mut c)
}

/// Version 2 (the default): the manifest is `ferry/bundle.json.zst`, which openssl checks as
/// stored and `zstd -d` opens; version 1 (`--bundle-format 1`) recovers by the same script.
#[test]
fn images_recover_with_tar_zstd_cat_sha256sum_and_openssl() {
    recovers(&[]);
}

#[test]
fn a_version_1_bundle_recovers_with_the_same_script() {
    recovers(&["--bundle-format", "1"]);
}

fn recovers(format: &[&str]) {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let vols_dir = tmp.path().join("vols");
    // Small volumes, so blobs span volumes and both encodings occur.
    pack_ok(&fixture("oci"), &vols_dir, "64KiB", &key, format);
    let vols = volumes(&vols_dir);
    let (standalone, _) = standalone_manifest(&vols_dir);
    let v1 = format == ["--bundle-format", "1"];
    assert_eq!(
        standalone.to_string_lossy().ends_with(".bundle.json.zst"),
        !v1,
        "{}",
        standalone.display()
    );
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
    assert_mentions(
        &o,
        &["reassembles to", "damaged"],
        "sha256sum finds the damaged blob",
    );

    let other = keygen(tmp.path(), "other.key");
    let o = recover(&bin, &other.public, &tmp.path().join("r3"), &vols);
    assert_ne!(
        o.code(),
        0,
        "recovery must fail with another key\n{}",
        o.dump()
    );
    assert_mentions(&o, &["signature does not verify"], "openssl refuses");

    // A volume of the same mirror packed in the other version is another bundle's: its
    // manifest is checked on its own and differs from the first volume's.
    let twin = tmp.path().join("twin");
    let flip = if v1 {
        &[][..]
    } else {
        &["--bundle-format", "1"][..]
    };
    pack_ok(&fixture("oci"), &twin, "64KiB", &key, flip);
    let mut mixed = vols.clone();
    mixed[1] = volumes(&twin)[1].clone();
    let o = recover(&bin, &key.public, &tmp.path().join("r4"), &mixed);
    assert_ne!(o.code(), 0, "a volume of the other version\n{}", o.dump());
    assert_mentions(
        &o,
        &["belongs to another bundle"],
        "the odd volume is named",
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
