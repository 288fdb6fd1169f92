//! `ferry-unpack inspect`: the images, volumes and key of a bundle, for people and as JSON.

use std::ffi::OsStr;
use std::path::Path;

use tests::*;

/// The six images of the fixtures: (name in the OCI fixture, digest) (fixtures/README.md).
const IMAGES: [(&str, &str); 6] = [
    ("my-operator/my-operator-index:v1", "sha256:e12b2ade23232d56f3870bd31732b064540cb4c204dcd4555846be0c44996124"),
    ("openshift4/ose-elasticsearch-operator:v4.6", "sha256:b9dce18ae0e4fb237ac76ff3051431a83476269408639faf1a672474dfeff292"),
    (
        "openshift4/ose-elasticsearch-operator-bundle@sha256:a51f0ec8d7063a8a19592bfd391f9e1afc740adfc31e436f0e746d33121380b2",
        "sha256:a51f0ec8d7063a8a19592bfd391f9e1afc740adfc31e436f0e746d33121380b2",
    ),
    ("openshift4/ose-elasticsearch-proxy:v4.6", PROXY_DIGEST),
    ("openshift4/ose-logging-fluentd:v4.6", "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e"),
    (
        "openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
        "sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
    ),
];

fn inspect(dir: &Path, trust: Option<&Path>, json: bool) -> std::process::Output {
    let mut args: Vec<&OsStr> = vec![OsStr::new("inspect"), dir.as_os_str()];
    if let Some(t) = trust {
        args.extend([OsStr::new("--trust"), t.as_os_str()]);
    }
    if json {
        args.push(OsStr::new("--json"));
    }
    unpack(args)
}

#[test]
fn inspect_lists_images_volumes_and_key() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    pack_ok(&fixture("oci"), &out, "64KiB", &key, &[]);
    let vols = volumes(&out);

    // Without --trust: everything listed, and it says nothing was checked.
    let o = inspect(&out, None, false);
    assert_ok(&o, "inspect");
    let mut needles: Vec<&str> = vec![&key.fingerprint, "images      6", "claimed", "pass --trust"];
    needles.extend(IMAGES.iter().flat_map(|(name, digest)| [*name, *digest]));
    assert_mentions(&o, &needles, "inspect");
    for v in &vols {
        assert_mentions(
            &o,
            &[&v.file_name().unwrap().to_string_lossy()],
            "inspect lists volumes",
        );
    }

    let o = inspect(&out, Some(&key.public), false);
    assert_ok(&o, "inspect --trust");
    assert_mentions(
        &o,
        &[&key.fingerprint, "signatures checked"],
        "inspect --trust",
    );

    // JSON: parses, and says the same.
    for trust in [None, Some(key.public.as_path())] {
        let o = inspect(&out, trust, true);
        assert_ok(&o, "inspect --json");
        let v = json(&o);
        assert_eq!(v["key"], key.fingerprint.as_str());
        assert_eq!(v["verified"], trust.is_some());
        assert_eq!(v["source_layout"], "oci");
        assert_eq!(v["volume_count"], vols.len());
        assert_eq!(v["volume_size"], 64 * 1024);
        let listed: Vec<(String, String)> = v["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| {
                let repo = i["repository"].as_str().unwrap();
                let tags = i["tags"].as_array().unwrap();
                let digest = i["digest"].as_str().unwrap().to_owned();
                let name = match tags.first() {
                    Some(t) => format!("{repo}:{}", t.as_str().unwrap()),
                    None => format!("{repo}@{digest}"),
                };
                (name, digest)
            })
            .collect();
        let mut listed_sorted = listed;
        listed_sorted.sort();
        let mut expected: Vec<(String, String)> = IMAGES
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect();
        expected.sort();
        assert_eq!(listed_sorted, expected, "images in inspect --json");
        let volumes_json = v["volumes"].as_array().expect("volumes");
        assert_eq!(volumes_json.len(), vols.len());
        for (i, (vj, path)) in volumes_json.iter().zip(&vols).enumerate() {
            assert_eq!(vj["volume"], i + 1);
            assert_eq!(vj["size"], file_size(path));
            let signed = if trust.is_some() {
                serde_json::json!(key.fingerprint)
            } else {
                serde_json::Value::Null
            };
            assert_eq!(vj["signed_by"], signed);
        }
    }

    // With a key that did not sign it, inspect --trust refuses.
    let other = keygen(tmp.path(), "other.key");
    let o = inspect(&out, Some(&other.public), false);
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &["not signed by any trusted key", &other.fingerprint],
        "inspect with another key",
    );
}

/// `--bundle-format 1` writes what an older ferry-unpack reads: `ferry/bundle.json` and
/// `ferry-<id>.bundle.json`, plain JSON; today's ferry verifies and inspects it as it does
/// version 2 (the default, `.zst`), which lists the same images with a smaller manifest.
#[test]
fn a_version_1_bundle_verifies_and_inspects_beside_version_2() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mut seen = Vec::new();
    for (format, entry, standalone) in [
        ("1", "ferry/bundle.json", ".bundle.json"),
        ("2", "ferry/bundle.json.zst", ".bundle.json.zst"),
    ] {
        let out = tmp.path().join(format!("v{format}"));
        pack_ok(
            &fixture("oci"),
            &out,
            "64KiB",
            &key,
            &["--bundle-format", format],
        );
        let (path, manifest) = standalone_manifest(&out);
        assert!(
            path.to_string_lossy().ends_with(standalone),
            "{}",
            path.display()
        );
        assert_eq!(manifest["ferry_bundle"], format.parse::<u32>().unwrap());
        let vols = volumes(&out);
        let listing = run("tar", [OsStr::new("-tf"), vols[0].as_os_str()]);
        assert_ok(&listing, "tar -tf");
        let names = listing.stdout_text();
        assert_eq!(names.lines().next(), Some(entry), "{names}");
        assert!(names.contains(&format!("{entry}.sig")), "{names}");
        let o = unpack([
            OsStr::new("verify"),
            out.as_os_str(),
            OsStr::new("--trust"),
            key.public.as_os_str(),
        ]);
        assert_ok(&o, &format!("verify of a version-{format} bundle"));
        // The standalone manifest alone names the bundle (verify reads either name).
        let o = unpack([
            OsStr::new("verify"),
            vols[0].as_os_str(),
            path.as_os_str(),
            OsStr::new("--trust"),
            key.public.as_os_str(),
            OsStr::new("--json"),
        ]);
        let report = json(&o);
        assert_eq!(report["problems"], serde_json::json!([]), "{report}");
        assert_eq!(report["bundle"]["images"], IMAGES.len(), "{report}");
        assert_eq!(
            report["missing_volumes"].as_array().unwrap().len(),
            vols.len() - 1,
            "{report}"
        );
        let o = inspect(&out, Some(&key.public), false);
        assert_ok(&o, "inspect --trust");
        let zstd = if format == "1" { "plain JSON" } else { "zstd" };
        assert_mentions(&o, &[&format!("format      {format}"), zstd], "inspect");
        let bundle = json(&inspect(&out, Some(&key.public), true));
        assert_eq!(bundle["format"], format.parse::<u32>().unwrap());
        let images: Vec<_> = bundle["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|e| {
                (
                    e["repository"].clone(),
                    e["tags"].clone(),
                    e["digest"].clone(),
                )
            })
            .collect();
        assert_eq!(images.len(), IMAGES.len());
        seen.push((images, bundle["manifest_stored_bytes"].as_u64().unwrap()));
    }
    assert_eq!(seen[0].0, seen[1].0, "both versions list the same images");
    assert!(
        seen[1].1 < seen[0].1,
        "version 2's manifest is smaller: {} vs {} bytes",
        seen[1].1,
        seen[0].1
    );
}

/// From the oc `file://` layout, each image carries the reference it was mirrored from
/// (mapping.txt).
#[test]
fn inspect_shows_original_references_from_mapping_txt() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    pack_ok(&fixture("oc-mirror"), &out, "256KiB", &key, &[]);
    let v = json(&inspect(&out, Some(&key.public), true));
    let mut sources: Vec<String> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["source"]
                .as_str()
                .expect("every image has a source")
                .to_owned()
        })
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            "registry.example.com:5000/my-operator/my-operator-index:v1",
            "registry.redhat.io/openshift4/ose-elasticsearch-operator-bundle@sha256:a51f0ec8d7063a8a19592bfd391f9e1afc740adfc31e436f0e746d33121380b2",
            "registry.redhat.io/openshift4/ose-elasticsearch-operator:v4.6",
            "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6",
            "registry.redhat.io/openshift4/ose-logging-fluentd:v4.6",
            "registry.redhat.io/openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
        ]
    );
    let o = inspect(&out, None, false);
    assert_ok(&o, "inspect oc-mirror");
    assert_mentions(
        &o,
        &["from registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6"],
        "inspect",
    );
}
