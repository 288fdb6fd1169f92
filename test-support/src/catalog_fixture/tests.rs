//! The generator's own checks: the layout is one an OCI reader accepts (every blob named
//! by its digest, configs' `diff_ids` the digests of the uncompressed layers, history
//! matching the layers), catalog images carry opm's labels and command, and the same
//! code writes the same bytes twice.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use serde_json::Value;

use super::layout::sha256;
use super::*;

fn read_json(layout: &Path, digest: &str) -> Value {
    let bytes = fs::read(layout.join("blobs/sha256").join(&digest[7..])).expect("blob");
    assert_eq!(sha256(&bytes), digest, "blob {digest} hashes to its name");
    serde_json::from_slice(&bytes).expect("JSON blob")
}

/// Checks one manifest: config, layers, diff_ids, history; its config.
fn check_manifest(layout: &Path, digest: &str) -> Value {
    let m = read_json(layout, digest);
    assert_eq!(m["mediaType"], layout::OCI_MANIFEST);
    let config = read_json(layout, m["config"]["digest"].as_str().unwrap());
    let layers = m["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        diff_ids.len(),
        "{digest}: one diff_id per layer"
    );
    for (l, d) in layers.iter().zip(diff_ids) {
        let bytes = fs::read(
            layout
                .join("blobs/sha256")
                .join(&l["digest"].as_str().unwrap()[7..]),
        )
        .unwrap();
        assert_eq!(bytes.len() as u64, l["size"].as_u64().unwrap());
        assert_eq!(sha256(&bytes), l["digest"].as_str().unwrap());
        let mut tar = Vec::new();
        GzDecoder::new(&bytes[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(
            &sha256(&tar),
            d.as_str().unwrap(),
            "diff_id of {}",
            l["digest"]
        );
    }
    let made = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .count();
    assert_eq!(made, layers.len(), "{digest}: history entries with layers");
    config
}

fn layer_paths(layout: &Path, digest: &str) -> Vec<String> {
    let bytes = fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    let mut archive = tar::Archive::new(GzDecoder::new(&bytes[..]));
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_layout_names_every_image_and_every_blob_is_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let f = generate(&tmp.path().join("layout")).unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(f.layout.join("index.json")).unwrap()).unwrap();
    let names: BTreeSet<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["annotations"][layout::REF_NAME]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let all: Vec<&FixtureImage> = f.images.iter().chain([&f.fbc, &f.sqlite]).collect();
    assert_eq!(names.len(), all.len(), "one ref.name per image");
    for image in &all {
        assert!(names.contains(&image.ref_name), "{}", image.ref_name);
        if image.children.is_empty() {
            check_manifest(&f.layout, &image.digest);
        } else {
            let idx = read_json(&f.layout, &image.digest);
            assert_eq!(idx["mediaType"], layout::OCI_INDEX);
            for (child, platform) in &image.children {
                let config = check_manifest(&f.layout, child);
                assert_eq!(
                    format!(
                        "{}/{}",
                        config["os"].as_str().unwrap(),
                        config["architecture"].as_str().unwrap()
                    ),
                    *platform
                );
            }
        }
    }
    assert!(
        f.images.iter().any(|i| i.children.len() == 2),
        "multi-arch related images"
    );
    let tagged: Vec<_> = f.images.iter().filter(|i| i.tag.is_some()).collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].reference, TAGGED_IMAGE);
    // Every reference a bundle makes is an image of the fixture.
    for b in &f.bundles {
        for r in std::iter::once(&b.image).chain(&b.related) {
            f.image(r);
        }
    }
    assert!(f.bundles.len() >= 20);
}

#[test]
fn the_catalog_images_are_built_as_opm_builds_them() {
    let tmp = tempfile::tempdir().unwrap();
    let f = generate(&tmp.path().join("layout")).unwrap();
    assert_eq!(f.fbc.reference, FBC_CATALOG);
    assert_eq!(f.sqlite.reference, SQLITE_CATALOG);
    for (image, label, value, cmd) in [
        (&f.fbc, CONFIGS_LABEL, "/configs", &FBC_CMD[..]),
        (
            &f.sqlite,
            DATABASE_LABEL,
            "/database/index.db",
            &SQLITE_CMD[..],
        ),
    ] {
        assert_eq!(image.platforms(), ["linux/amd64", "linux/arm64"]);
        for (child, _) in &image.children {
            let config = check_manifest(&f.layout, child);
            assert_eq!(config["config"]["Labels"][label], value);
            assert_eq!(
                config["config"]["Entrypoint"],
                serde_json::json!(ENTRYPOINT)
            );
            assert_eq!(config["config"]["Cmd"], serde_json::json!(cmd));
        }
    }
    // FBC: base, configs (only configs/), cache (only tmp/cache).
    let m = read_json(&f.layout, &f.fbc.children[0].0);
    let layers: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 3);
    let configs = layer_paths(&f.layout, layers[1]);
    assert!(
        configs.iter().all(|p| p.starts_with("configs/")),
        "{configs:?}"
    );
    assert!(configs.contains(&"configs/.indexignore".to_owned()));
    assert!(configs.contains(&"configs/epsilon-operator/catalog.yaml".to_owned()));
    assert!(configs.contains(&"configs/alpha-operator/catalog.json".to_owned()));
    let cache = layer_paths(&f.layout, layers[2]);
    assert!(cache.iter().all(|p| p.starts_with("tmp/")), "{cache:?}");
    assert!(cache.contains(&"tmp/cache/pogreb.v1/digest".to_owned()));
    // The configs layer is the same blob on both platforms.
    let arm = read_json(&f.layout, &f.fbc.children[1].0);
    assert_eq!(arm["layers"][1]["digest"], layers[1]);
    assert_ne!(
        arm["layers"][0]["digest"], layers[0],
        "each platform has its own base"
    );
    // SQLite: base, then the database alone.
    let m = read_json(&f.layout, &f.sqlite.children[0].0);
    let db = layer_paths(&f.layout, m["layers"][1]["digest"].as_str().unwrap());
    assert_eq!(db, ["database/", "database/index.db"]);
}

#[test]
fn the_same_code_writes_the_same_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let a = generate(&tmp.path().join("a")).unwrap();
    let b = generate(&tmp.path().join("b")).unwrap();
    let digests = |f: &Fixture| -> Vec<String> {
        f.images
            .iter()
            .chain([&f.fbc, &f.sqlite])
            .map(|i| i.digest.clone())
            .collect()
    };
    assert_eq!(digests(&a), digests(&b));
    assert_eq!(
        fs::read(a.layout.join("index.json")).unwrap(),
        fs::read(b.layout.join("index.json")).unwrap()
    );
}

#[test]
fn every_channel_has_one_head_and_beta_needs_alpha_and_gamma() {
    for p in spec::PACKAGES {
        assert!(p.channels.contains(&p.default_channel), "{}", p.name);
        for c in p.channels {
            sqlite::head(p.name, c);
        }
    }
    assert_eq!(
        sqlite::head("alpha-operator", "stable"),
        "alpha-operator.v1.2.0"
    );
    assert_eq!(
        sqlite::head("alpha-operator", "fast"),
        "alpha-operator.v2.0.0"
    );
    assert_eq!(
        sqlite::head("delta-operator", "eus"),
        "delta-operator.v3.2.0"
    );
    assert_eq!(
        sqlite::head("gamma-operator", "preview"),
        "gamma-operator.v0.3.0"
    );
}

#[test]
fn the_scale_catalog_is_streamed_with_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = scale::ScaleOptions {
        packages: 7,
        bundles_per_package: 5,
        object_bytes: 3000,
        ..Default::default()
    };
    let r = scale::generate(&tmp.path().join("s"), &opts).unwrap();
    assert_eq!(r.bundles, 35);
    // 35 × 4000 bytes of base64 at least.
    assert!(r.json_bytes > 35 * 4000, "{}", r.json_bytes);
    let idx = read_json(&tmp.path().join("s"), &r.digest);
    let child = idx["manifests"][0]["digest"].as_str().unwrap();
    let config = check_manifest(&tmp.path().join("s"), child);
    assert_eq!(config["config"]["Labels"][CONFIGS_LABEL], "/configs");
    let again = scale::generate(&tmp.path().join("t"), &opts).unwrap();
    assert_eq!(r.digest, again.digest);
    // The heads of the first packages (7 < 10: all) and the proxy are real images, and
    // the catalog names them by their digests.
    assert_eq!(r.images.len(), 1 + 2 * 7);
    let configs = &read_json(&tmp.path().join("s"), child)["layers"][1]["digest"];
    let paths = layer_paths(&tmp.path().join("s"), configs.as_str().unwrap());
    assert_eq!(paths.len(), 1 + 2 * 7, "{paths:?}");
    let bytes = fs::read(
        tmp.path()
            .join("s/blobs/sha256")
            .join(&configs.as_str().unwrap()[7..]),
    )
    .unwrap();
    let mut text = String::new();
    GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    for i in &r.images {
        assert!(text.contains(&i.reference), "{} is named", i.reference);
        if i.children.is_empty() {
            check_manifest(&tmp.path().join("s"), &i.digest);
        }
        for (child, _) in &i.children {
            check_manifest(&tmp.path().join("s"), child);
        }
    }
}
