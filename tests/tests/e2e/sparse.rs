//! Sparse multi-arch images (README "Sparse multi-arch images", SPEC.md §4.2 `platforms`):
//! an OCI layout whose multi-arch index has only some platforms' children, marked with
//! `dev.ferry.platforms` as the pull cache marks it. It packs, verifies and inspects as
//! sparse; the push sends the carried child and not the others, and the real CNCF
//! distribution 2.8 (Debian's `docker-registry`) refuses the index, which push names with
//! the cure while the other images go in; extract writes the annotation back, and the
//! extracted layout packs as the same sparse image.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::registry::*;
use tests::*;

/// `openshift4/ose-logging-fluentd:v4.6` of fixtures/oci: a Docker manifest list of a
/// linux/amd64 and a linux/arm64/v8 image.
const FLUENTD_LIST: &str =
    "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e";
const FLUENTD_AMD64: &str =
    "sha256:c64f0c976b1a0d30dd32923e18fd799977a435fece800e388753f5a39bf20e33";
const FLUENTD_ARM64: &str =
    "sha256:c862ee143091d00facbfe6184f0434218b093f606054ab00249798f5d935a994";
const FLUENTD: &str = "openshift4/ose-logging-fluentd:v4.6";

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(&digest["sha256:".len()..])
}

/// The config and layers a manifest in `layout` names.
fn children_of(layout: &Path, manifest: &str) -> Vec<String> {
    let m: Value = serde_json::from_slice(&fs::read(blob_path(layout, manifest)).unwrap()).unwrap();
    std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Sets (or, with `None`, removes) `dev.ferry.platforms` on fluentd's index.json entry.
fn mark_fluentd(layout: &Path, platforms: Option<&str>) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["digest"] == FLUENTD_LIST)
        .expect("fluentd is in fixtures/oci");
    let annotations = entry["annotations"].as_object_mut().unwrap();
    match platforms {
        Some(p) => annotations.insert("dev.ferry.platforms".into(), p.into()),
        None => annotations.remove("dev.ferry.platforms"),
    };
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// fixtures/oci with fluentd's arm64 child manifest gone: what a pull with
/// `--platform linux/amd64` leaves (the arm64 config and layers, unreferenced now, stay
/// as files of the layout).
fn sparse_layout(dir: &Path) -> PathBuf {
    let layout = copy_fixture("oci", dir);
    fs::remove_file(blob_path(&layout, FLUENTD_ARM64)).unwrap();
    layout
}

fn image<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| format!("{}:{}", text(&i["repository"]), text(&i["tags"][0])) == name)
        .unwrap_or_else(|| panic!("{name} is not in the bundle"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[test]
fn without_the_annotation_a_missing_child_is_refused() {
    let tmp = tempdir();
    let layout = sparse_layout(tmp.path());
    let key = keygen(tmp.path(), "k");
    let o = pack_with(
        &layout,
        &tmp.path().join("vols"),
        "64MiB",
        &key.private,
        &[],
    );
    assert!(!o.status.success(), "{}", o.dump());
    assert_mentions(
        &o,
        &[FLUENTD_ARM64, "missing"],
        "the missing child is named",
    );
}

#[test]
fn a_sparse_index_packs_verifies_is_refused_by_distribution_2_8_and_extracts_sparse() {
    let tmp = tempdir();
    let layout = sparse_layout(tmp.path());
    mark_fluentd(&layout, Some("linux/amd64"));
    let arm64_only: Vec<String> = {
        let amd64 = children_of(&layout, FLUENTD_AMD64);
        children_of(&fixture("oci"), FLUENTD_ARM64)
            .into_iter()
            .filter(|d| !amd64.contains(d))
            .collect()
    };
    assert!(!arm64_only.is_empty(), "arm64 has layers of its own");

    let site = Site::pack(&layout, "64MiB");
    let (_, manifest) = standalone_manifest(&site.out);
    let fluentd = image(&manifest, FLUENTD);
    assert_eq!(fluentd["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(
        fluentd["digest"], FLUENTD_LIST,
        "the index is the registry's"
    );
    for other in manifest["images"].as_array().unwrap() {
        if other["digest"] != FLUENTD_LIST {
            assert!(other.get("platforms").is_none(), "{other}");
        }
    }

    let verify = unpack([
        OsStr::new("verify"),
        site.out.as_os_str(),
        OsStr::new("--trust"),
        site.key.public.as_os_str(),
    ]);
    assert_ok(&verify, "verify of a bundle with a sparse index");
    let inspect = unpack([
        OsStr::new("inspect"),
        site.out.as_os_str(),
        OsStr::new("--trust"),
        site.key.public.as_os_str(),
    ]);
    assert_ok(&inspect, "inspect");
    assert_mentions(
        &inspect,
        &["sparse index: only the linux/amd64 children are carried"],
        "inspect says which image is sparse",
    );

    // distribution 2.8 wants every child of a list: the index is refused, with the cure;
    // the other images go in, and the carried child does, the others never.
    let reg = Registry::plain();
    let to = format!("{}/in", reg.host());
    let out = site.push(
        &to,
        &["--insecure", "--manifests-dir", &site.path("manifests")],
    );
    assert_exit(&out, 1, "push with a sparse index distribution refuses");
    assert_mentions(
        &out,
        &[
            &format!(
                "{} refused the sparse multi-arch image {FLUENTD}",
                reg.host()
            ),
            "only its linux/amd64 children",
            "MANIFEST_BLOB_UNKNOWN",
            "registry that accepts sparse indexes",
            "without --platform",
            "1 sparse multi-arch image(s) refused by this registry: running again will not help",
        ],
        "the refusal names the image, its platforms, the registry and the cure",
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("failed: run the same command again"),
        "a refusal that running again cannot cure is not sent round the loop:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let repo = "in/openshift4/ose-logging-fluentd";
    assert!(
        reg.manifest(repo, FLUENTD_AMD64).is_some(),
        "amd64 child pushed"
    );
    assert!(
        reg.manifest(repo, FLUENTD_ARM64).is_none(),
        "arm64 child never sent"
    );
    assert!(reg.manifest(repo, FLUENTD_LIST).is_none(), "index refused");
    for d in &arm64_only {
        assert!(!reg.blob_exists(repo, d), "arm64 blob {d} never sent");
    }
    assert!(
        reg.manifest("in/openshift4/ose-elasticsearch-proxy", PROXY_DIGEST)
            .is_some(),
        "the other images of the push went in"
    );
    let json = site.push(
        &to,
        &[
            "--insecure",
            "--json",
            "--manifests-dir",
            &site.path("manifests2"),
        ],
    );
    let report = push_report(&json);
    for i in &report.images {
        let failed = i["status"] == "failed";
        assert_eq!(failed, i["digest"] == FLUENTD_LIST, "{i}");
    }

    // extract writes the annotation back; the layout packs as the same sparse image.
    let extracted = tmp.path().join("extracted");
    extract_ok(&site.out, &site.key, &extracted, "oci");
    let index: Value =
        serde_json::from_slice(&fs::read(extracted.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["digest"] == FLUENTD_LIST)
        .expect("fluentd in the extracted index");
    assert_eq!(entry["annotations"]["dev.ferry.platforms"], "linux/amd64");
    assert!(!blob_path(&extracted, FLUENTD_ARM64).exists());
    let again = tmp.path().join("again");
    pack_ok(&extracted, &again, "64MiB", &site.key, &[]);
    let (_, repacked) = standalone_manifest(&again);
    assert_eq!(
        image(&repacked, FLUENTD)["platforms"],
        serde_json::json!(["linux/amd64"])
    );
}
