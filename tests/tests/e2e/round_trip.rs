//! Pack every input layout, verify, extract it back byte for byte, and read the images
//! with skopeo: the whole trip a user makes, once per layout.

use std::ffi::OsStr;
use std::fs;

use tests::*;

/// The proxy image's digest as the source layout itself records it, read the way that
/// layout's own tools would (skopeo for `oci:` and `dir:`, link files and symlinks for
/// registry storage and oc `file://`).
fn source_digest(layout: &str) -> String {
    let root = fixture(layout);
    let digest = match layout {
        "oci" => skopeo_digest(&format!("oci:{}:openshift4/ose-elasticsearch-proxy:v4.6", root.display())),
        "skopeo-dir" => skopeo_digest(&format!(
            "dir:{}",
            root.join("openshift4/ose-elasticsearch-proxy:v4.6").display()
        )),
        "registry" => fs::read_to_string(root.join(
            "docker/registry/v2/repositories/openshift4/ose-elasticsearch-proxy/_manifests/tags/v4.6/current/link",
        ))
        .expect("tag link"),
        "oc-mirror" => fs::read_link(root.join(
            "v2/efk-mirror/my-operator/my-operator-index/openshift4/ose-elasticsearch-proxy/manifests/v4.6",
        ))
        .expect("tag symlink")
        .to_string_lossy()
        .into_owned(),
        other => panic!("unknown layout {other}"),
    };
    // The fixtures README pins it: the same image in every layout.
    assert_eq!(digest.trim(), PROXY_DIGEST, "fixture {layout}");
    digest.trim().to_owned()
}

fn skopeo_digest(reference: &str) -> String {
    let out = skopeo(["inspect", reference]);
    assert_ok(&out, &format!("skopeo inspect {reference}"));
    json(&out)["Digest"].as_str().expect("Digest").to_owned()
}

fn round_trip(layout: &str) {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    let expected = source_digest(layout);
    pack_ok(&fixture(layout), &out, "256KiB", &key, &[]);

    // Names: ferry-<12 hex of the bundle id>-NNN-of-MMM.tar, plus the standalone manifest.
    let vols = volumes(&out);
    assert!(
        vols.len() >= 2,
        "256KiB should need several volumes, got {vols:?}"
    );
    let inspect = unpack([
        OsStr::new("inspect"),
        out.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--trust"),
        key.public.as_os_str(),
    ]);
    assert_ok(&inspect, "inspect --json --trust");
    let info = json(&inspect);
    let id = info["bundle_id"].as_str().expect("bundle_id");
    let short = &id.strip_prefix("sha256:").expect("sha256 id")[..12];
    for (i, v) in vols.iter().enumerate() {
        assert_eq!(
            v.file_name().unwrap().to_string_lossy(),
            format!("ferry-{short}-{:03}-of-{:03}.tar", i + 1, vols.len())
        );
    }
    let mut expected_names: Vec<String> = vols
        .iter()
        .map(|v| v.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    expected_names.push(format!("ferry-{short}.bundle.json.zst"));
    expected_names.push(format!("ferry-{short}.bundle.json.zst.sig"));
    expected_names.sort();
    assert_eq!(names(&out), expected_names, "files written to --out");
    let layout_name = if layout == "registry" {
        "registry-storage"
    } else {
        layout
    };
    assert_eq!(info["source_layout"], layout_name, "layout detected");

    // Verify.
    let verify = unpack([
        OsStr::new("verify"),
        out.as_os_str(),
        OsStr::new("--trust"),
        key.public.as_os_str(),
    ]);
    assert_ok(&verify, "verify");
    assert_mentions(
        &verify,
        &[
            &format!("all {} volume(s) given verified", vols.len()),
            &key.fingerprint,
        ],
        "verify",
    );
    assert_eq!(
        verify.stdout_text().matches("\nOK ").count(),
        vols.len(),
        "{}",
        verify.dump()
    );

    // Back to the original layout: identical, tag symlinks and mapping.txt included.
    let original = tmp.path().join("original");
    extract_ok(&out, &key, &original, "original");
    let diff = diff_r(&fixture(layout), &original);
    assert!(
        diff.code() == 0 && diff.stdout.is_empty(),
        "extract --layout original differs from fixtures/{layout}:\n{}",
        diff.dump()
    );
    if layout == "oc-mirror" {
        let tag = original.join(
            "v2/efk-mirror/my-operator/my-operator-index/openshift4/ose-elasticsearch-proxy/manifests/v4.6",
        );
        assert!(
            fs::symlink_metadata(&tag).unwrap().file_type().is_symlink(),
            "tag is a symlink"
        );
        assert_eq!(fs::read_link(&tag).unwrap().to_string_lossy(), PROXY_DIGEST);
        assert!(original
            .join("manifests-my-operator-index-1600000000/mapping.txt")
            .is_file());
    }

    // To one OCI layout that skopeo reads.
    let oci = tmp.path().join("oci");
    extract_ok(&out, &key, &oci, "oci");
    let image = info["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| {
            i["repository"]
                .as_str()
                .is_some_and(|r| r.ends_with("openshift4/ose-elasticsearch-proxy"))
        })
        .expect("the proxy image is listed");
    assert!(image["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "v4.6"));
    let name = format!("{}:v4.6", image["repository"].as_str().unwrap());
    if layout == "oc-mirror" {
        // The repository is the mirror path (fixtures/README.md, oc-mirror).
        assert_eq!(
            name,
            "efk-mirror/my-operator/my-operator-index/openshift4/ose-elasticsearch-proxy:v4.6"
        );
    } else {
        assert_eq!(name, "openshift4/ose-elasticsearch-proxy:v4.6");
    }
    let reference = format!("oci:{}:{name}", oci.display());
    assert_eq!(skopeo_digest(&reference), expected, "digest of {reference}");

    let copy = tmp.path().join("copy");
    let cp = skopeo([
        "copy".to_owned(),
        "--all".to_owned(),
        "--preserve-digests".to_owned(),
        reference.clone(),
        format!("dir:{}", copy.display()),
    ]);
    assert_ok(&cp, &format!("skopeo copy --all {reference}"));
    assert_eq!(
        file_sha256(&copy.join("manifest.json")),
        expected,
        "copied manifest"
    );
}

#[test]
fn round_trip_oc_mirror() {
    round_trip("oc-mirror");
}

#[test]
fn round_trip_oci() {
    round_trip("oci");
}

#[test]
fn round_trip_registry() {
    round_trip("registry");
}

#[test]
fn round_trip_skopeo_dir() {
    round_trip("skopeo-dir");
}

/// oc writes each manifest once and hard-links it under `manifests/`, and hard-links a blob
/// shared by several repositories (fixtures/README.md; a git checkout loses the links, so
/// the test makes them). Restoring "the layout the bundle was packed from" should not turn
/// one file into many: on a real catalog the shared base layers sit in hundreds of
/// repositories.
#[test]
fn original_layout_keeps_hard_links() {
    use std::collections::{BTreeMap, BTreeSet};
    use std::os::unix::fs::MetadataExt;

    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mirror = copy_fixture("oc-mirror", tmp.path());
    // Link manifests/sha256:X to blobs/sha256:X in every repository, as oc does.
    let mut linked = 0;
    let out = run(
        "find",
        [
            mirror.as_os_str(),
            OsStr::new("-path"),
            OsStr::new("*/manifests/sha256:*"),
        ],
    );
    for m in out.stdout_text().lines() {
        let m = std::path::PathBuf::from(m);
        let blob = m
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("blobs")
            .join(m.file_name().unwrap());
        fs::remove_file(&m).unwrap();
        fs::hard_link(&blob, &m).unwrap();
        linked += 1;
    }
    assert!(linked >= 6, "manifests linked: {linked}");

    let groups = |root: &std::path::Path| -> BTreeSet<BTreeSet<String>> {
        let mut by_inode: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        let out = run(
            "find",
            [root.as_os_str(), OsStr::new("-type"), OsStr::new("f")],
        );
        for f in out.stdout_text().lines() {
            let ino = fs::metadata(f).unwrap().ino();
            let rel = f.strip_prefix(&*root.to_string_lossy()).unwrap().to_owned();
            by_inode.entry(ino).or_default().insert(rel);
        }
        by_inode.into_values().filter(|g| g.len() > 1).collect()
    };
    let before = groups(&mirror);
    assert!(!before.is_empty());

    let vols = tmp.path().join("vols");
    pack_ok(&mirror, &vols, "256KiB", &key, &[]);
    let original = tmp.path().join("original");
    extract_ok(&vols, &key, &original, "original");
    assert_eq!(groups(&original), before, "hard-linked files after extract");
}
