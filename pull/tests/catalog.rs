//! `mirror.operators` against a real registry: a tiny file-based catalog image (written
//! by hand as an OCI layout: a base layer, a `/configs` layer of two packages), its bundle
//! and related images, pushed by skopeo into Debian's docker-registry standing for
//! `registry.redhat.io`. What the plan selects, resolves, drops with `--allow-missing` and
//! rebuilds; what the fetch records; what prune keeps; `list_catalog`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use imageset::{ImageSet, PullSet};
use oci::{annotation, Digest};
use pull::{Cache, Event, Options};
use serde_json::{json, Value};
use test_support::cmd::{assert_ok, run, tempdir};
use test_support::registry::Registry;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A plain tar of `files` (path, bytes), directories implied.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes a one-manifest OCI layout at `dir` (tagged `t`) and pushes it to
/// `registry/repo:tag` with skopeo, digests preserved. Returns the manifest's digest.
fn push_image(
    registry: &Registry,
    dir: &Path,
    repo_tag: &str,
    config: Value,
    layers: &[Vec<u8>],
) -> Digest {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        json!({"digest": d.to_string(), "size": bytes.len()})
    };
    let mut config = config;
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| Digest::of(l).to_string()).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).unwrap();
    let mut c = put(&config);
    c["mediaType"] = json!(CONFIG);
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            let mut d = put(l);
            d["mediaType"] = json!(LAYER);
            d
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": c,
        "layers": layers,
    }))
    .unwrap();
    let m = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MANIFEST, "digest": m["digest"], "size": m["size"],
                       "annotations": {"org.opencontainers.image.ref.name": "t"}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let src = format!("oci:{}:t", dir.display());
    let dst = format!("docker://{}/{repo_tag}", registry.host());
    let out = run(
        "skopeo",
        [
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &src,
            &dst,
        ],
    );
    assert_ok(&out, &format!("skopeo copy {src} {dst}"));
    Digest::of(&manifest)
}

/// A tiny image of its own (one layer holding `name`).
fn push_plain(registry: &Registry, work: &Path, name: &str, repo_tag: &str) -> Digest {
    push_image(
        registry,
        &work.join(name),
        repo_tag,
        json!({"architecture": "amd64", "os": "linux", "config": {}}),
        &[tar_of(&[(name, name.as_bytes())])],
    )
}

/// A catalog image: a base layer (`bin/opm`), then one layer of `files` under `configs/`.
fn push_catalog(
    registry: &Registry,
    dir: &Path,
    repo_tag: &str,
    files: &[(&str, &[u8])],
) -> Digest {
    push_image(
        registry,
        dir,
        repo_tag,
        json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "Labels": {"operators.operatorframework.io.index.configs.v1": "/configs"},
                "Entrypoint": ["/bin/opm"],
                "Cmd": ["serve", "/configs", "--cache-dir=/tmp/cache"],
            },
            "history": [
                {"created_by": "COPY opm /bin/opm"},
                {"created_by": "ADD configs /configs"},
            ],
        }),
        &[tar_of(&[("bin/opm", b"#!/bin/sh\n")]), tar_of(files)],
    )
}

/// A SQLite catalog image (`/database/index.db`): packages `solo` (bundle solo.1: etcd.c's
/// bundle image and related image) and `other` (other.1: l1's bundle image and the image
/// that was never pushed).
fn push_sqlite_catalog(registry: &Registry, dir: &Path, site: &Site) -> Digest {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("index.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER NOT NULL);
         CREATE TABLE operatorbundle (name TEXT PRIMARY KEY, csv TEXT, bundle TEXT, bundlepath TEXT,
           skiprange TEXT, version TEXT, replaces TEXT, skips TEXT, substitutesfor TEXT);
         CREATE TABLE package (name TEXT PRIMARY KEY, default_channel TEXT, add_mode TEXT);
         CREATE TABLE channel (name TEXT, package_name TEXT, head_operatorbundle_name TEXT,
           PRIMARY KEY(name, package_name));
         CREATE TABLE channel_entry (entry_id INTEGER PRIMARY KEY, channel_name TEXT,
           package_name TEXT, operatorbundle_name TEXT, replaces INTEGER, depth INTEGER);
         CREATE TABLE related_image (image TEXT, operatorbundle_name TEXT);
         INSERT INTO schema_migrations(version) VALUES (14);",
    )
    .unwrap();
    for (package, bundle, image, related) in [
        ("solo", "solo.1", &site.bundle_c, &site.op_c),
        ("other", "other.1", &site.bundle_l1, &site.missing),
    ] {
        db.execute(
            "INSERT INTO package(name, default_channel) VALUES (?1, 'stable')",
            [package],
        )
        .unwrap();
        db.execute(
            "INSERT INTO channel(name, package_name, head_operatorbundle_name) VALUES ('stable', ?1, ?2)",
            [package, bundle],
        )
        .unwrap();
        db.execute(
            "INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, depth) VALUES ('stable', ?1, ?2, 0)",
            [package, bundle],
        )
        .unwrap();
        db.execute(
            "INSERT INTO operatorbundle(name, bundlepath, version) VALUES (?1, ?2, '1.0.0')",
            [bundle, image.as_str()],
        )
        .unwrap();
        db.execute(
            "INSERT INTO related_image(image, operatorbundle_name) VALUES (?1, ?2)",
            [related.as_str(), bundle],
        )
        .unwrap();
    }
    drop(db);
    let bytes = std::fs::read(&path).unwrap();
    push_image(
        registry,
        &dir.join("layout"),
        "redhat/sqlite:v4.8",
        json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "Labels": {"operators.operatorframework.io.index.database.v1": "/database/index.db"},
                "Entrypoint": ["/bin/opm"],
                "Cmd": ["registry", "serve", "--database", "/database/index.db"],
            },
            "history": [
                {"created_by": "COPY opm /bin/opm"},
                {"created_by": "ADD database /database"},
            ],
        }),
        &[
            tar_of(&[("bin/opm", b"#!/bin/sh\n")]),
            tar_of(&[("database/index.db", &bytes)]),
        ],
    )
}

struct Site {
    registry: Registry,
    _work: tempfile::TempDir,
    /// `redhat/small:v1`'s digest: a catalog of one package, `solo`.
    small: Digest,
    /// The images the catalog names, as it names them.
    bundle_c: String,
    op_c: String,
    bundle_l1: String,
    /// Named by l1, never pushed.
    missing: String,
}

const CATALOG: &str = "registry.redhat.io/redhat/catalog:v1";

/// Pushes the bundle and related images, then the catalog: package `etcd` (channel
/// `stable`: etcd.a → etcd.b → etcd.c, the head; every bundle but the head lacks its
/// images, which a heads-only selection never asks for), package `logging` (l1, whose
/// related image by tag is there and whose other related image is not).
fn site() -> Site {
    let registry = Registry::plain();
    let work = tempdir();
    let w = work.path();
    let r = "registry.redhat.io";
    let bundle_c = format!(
        "{r}/e/bundle@{}",
        push_plain(&registry, w, "bundle-c", "e/bundle:c")
    );
    let op_c = format!("{r}/e/op@{}", push_plain(&registry, w, "op-c", "e/op:c"));
    let bundle_l1 = format!(
        "{r}/l/bundle@{}",
        push_plain(&registry, w, "bundle-l1", "l/bundle:l1")
    );
    push_plain(&registry, w, "op-l1", "l/op:v5");
    let missing = format!("{r}/l/gone@{}", Digest::of(b"never pushed"));
    let bundle = |pkg: &str, name: &str, version: &str, image: &str, related: &[&str]| {
        json!({
            "schema": "olm.bundle", "name": name, "package": pkg, "image": image,
            "relatedImages": related.iter().map(|i| json!({"name": "r", "image": i})).collect::<Vec<_>>(),
            "properties": [{"type": "olm.package", "value": {"packageName": pkg, "version": version}}],
        })
        .to_string()
    };
    let absent = |s: &str| format!("{r}/e/old@{}", Digest::of(s.as_bytes()));
    let etcd = [
        json!({"schema": "olm.package", "name": "etcd", "defaultChannel": "stable"}).to_string(),
        json!({"schema": "olm.channel", "name": "stable", "package": "etcd", "entries": [
            {"name": "etcd.a"}, {"name": "etcd.b", "replaces": "etcd.a"}, {"name": "etcd.c", "replaces": "etcd.b"}]}).to_string(),
        bundle("etcd", "etcd.a", "1.0.0", &absent("a"), &[]),
        bundle("etcd", "etcd.b", "1.1.0", &absent("b"), &[]),
        bundle("etcd", "etcd.c", "1.2.0", &bundle_c, &[&op_c, &format!("{r}/e/op:c")]),
    ]
    .join("\n");
    let logging = [
        json!({"schema": "olm.package", "name": "logging", "defaultChannel": "stable"})
            .to_string(),
        json!({"schema": "olm.channel", "name": "stable", "package": "logging", "entries": [{"name": "l1"}]}).to_string(),
        bundle(
            "logging",
            "l1",
            "5.0.0",
            &bundle_l1,
            &[&format!("{r}/l/op:v5"), &missing],
        ),
    ]
    .join("\n");
    push_catalog(
        &registry,
        &w.join("catalog"),
        "redhat/catalog:v1",
        &[
            ("configs/etcd/catalog.json", etcd.as_bytes()),
            ("configs/logging/catalog.json", logging.as_bytes()),
        ],
    );
    let solo = [
        json!({"schema": "olm.package", "name": "solo", "defaultChannel": "stable"}).to_string(),
        json!({"schema": "olm.channel", "name": "stable", "package": "solo", "entries": [{"name": "solo.1"}]}).to_string(),
        bundle("solo", "solo.1", "1.0.0", &bundle_c, &[]),
    ]
    .join("\n");
    let small = push_catalog(
        &registry,
        &w.join("small"),
        "redhat/small:v1",
        &[("configs/solo/catalog.json", solo.as_bytes())],
    );
    Site {
        registry,
        _work: work,
        small,
        bundle_c,
        op_c,
        bundle_l1,
        missing,
    }
}

fn registries_conf(dir: &Path, location: &str) -> PathBuf {
    let path = dir.join("registries.conf");
    std::fs::write(
        &path,
        format!("[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \"{location}\"\ninsecure = true\n"),
    )
    .unwrap();
    path
}

fn options(conf: &Path, allow_missing: bool) -> Options {
    let auth = conf.with_file_name("auth.json");
    std::fs::write(&auth, "{\"auths\":{}}").unwrap();
    Options {
        platforms: Vec::new(),
        authfile: Some(auth),
        registries_conf: Some(conf.to_path_buf()),
        home: None,
        ca_cert: None,
        insecure: false,
        jobs: 4,
        retry_for: Duration::from_secs(2),
        cancel: Box::leak(Box::new(AtomicBool::new(false))),
        allow_missing,
    }
}

fn set(dir: &Path, operators: &str) -> PullSet {
    let path = dir.join("imageset.yaml");
    std::fs::write(
        &path,
        format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n{operators}"),
    )
    .unwrap();
    ImageSet::from_file(&path)
        .unwrap()
        .validate_for_pull()
        .unwrap()
}

const BOTH: &str = "  - catalog: registry.redhat.io/redhat/catalog:v1\n    targetCatalog: mirror/ops\n    packages:\n    - name: etcd\n    - name: logging\n  blockedImages:\n  - name: l/op\n";

#[test]
fn a_catalog_is_selected_rebuilt_and_its_images_resolved_by_digest_or_tag() {
    let site = site();
    let t = tempdir();
    let conf = registries_conf(t.path(), &site.registry.host());
    let cache = Cache::open(&t.path().join("cache")).unwrap();
    let set = set(t.path(), BOTH);

    // Without --allow-missing: the missing image fails, naming the bundle that needs it.
    let seen = Mutex::new(Vec::new());
    let events = |e: Event<'_>| {
        if let Event::Failed(f) = e {
            seen.lock().unwrap().push(f.reference.clone());
        }
    };
    let plan = pull::plan(&cache, &set, &options(&conf, false), &events).unwrap();
    assert_eq!(plan.failed.len(), 1, "{:?}", plan.failed);
    let f = &plan.failed[0];
    assert_eq!(f.reference, site.missing);
    assert!(
        f.error.ends_with("needed by bundle l1 (package logging)"),
        "{}",
        f.error
    );
    assert_eq!(*seen.lock().unwrap(), std::slice::from_ref(&site.missing));
    let c = &plan.catalogs[0];
    assert_eq!(c.packages, ["etcd", "logging"]);
    assert_eq!(c.bundles, 2, "the heads etcd.c and l1");
    // blockedImages applies to what the catalog names.
    assert_eq!(
        c.blocked,
        [("registry.redhat.io/l/op:v5".to_owned(), "l/op".to_owned())]
    );
    assert!(!c.images.contains(&"registry.redhat.io/l/op:v5".to_owned()));

    // With it: l1 is dropped, logging with it, and said so.
    let opts = options(&conf, true);
    let plan = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let c = &plan.catalogs[0];
    assert_eq!(c.catalog, CATALOG);
    assert_eq!(c.packages, ["etcd"]);
    assert_eq!(c.dropped_packages, ["logging"]);
    assert_eq!(c.dropped.len(), 1);
    assert_eq!(c.dropped[0].bundle, "l1");
    assert_eq!(c.dropped[0].missing[0].0, site.missing);
    assert!(!c.unchanged);
    let names: Vec<&str> = plan.images.iter().map(|i| i.ref_name.as_str()).collect();
    let catalog = &plan.images[0];
    assert_eq!(catalog.ref_name, "mirror/ops:v1", "{names:?}");
    assert_eq!(catalog.source, CATALOG);
    assert_eq!(catalog.target_repository.as_deref(), Some("mirror/ops"));
    assert_eq!(
        catalog.catalog_packages.as_deref(),
        Some(&["etcd".to_owned()][..])
    );
    assert_eq!(c.ref_name, catalog.ref_name);
    assert_eq!(c.digest, catalog.digest);
    // etcd.c's images, by digest at their source path; nothing of l1's.
    let by_digest = |reference: &str| {
        let (repo, digest) = reference
            .strip_prefix("registry.redhat.io/")
            .unwrap()
            .split_once('@')
            .unwrap();
        format!("{repo}@{digest}")
    };
    // A related image by tag: resolved, recorded by its tag.
    let mut wanted = vec![
        "mirror/ops:v1".to_owned(),
        by_digest(&site.bundle_c),
        by_digest(&site.op_c),
        "e/op:c".to_owned(),
    ];
    let mut got: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    wanted.sort();
    got.sort();
    assert_eq!(got, wanted);
    assert!(!got.contains(&by_digest(&site.bundle_l1)));

    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.pulled.len(), 4);
    let tagged = report
        .pulled
        .iter()
        .map(|&i| &plan.images[i])
        .find(|i| i.ref_name == "e/op:c")
        .unwrap();
    assert_eq!(tagged.source, "registry.redhat.io/e/op:c");
    assert_eq!(
        format!("registry.redhat.io/e/op@{}", tagged.digest),
        site.op_c
    );
    let recorded = cache.images().unwrap();
    let rebuilt = recorded
        .iter()
        .find(|i| i.ref_name == "mirror/ops:v1")
        .unwrap();
    assert_eq!(
        rebuilt.catalog_packages.as_deref(),
        Some(&["etcd".to_owned()][..])
    );
    assert_eq!(rebuilt.digest, catalog.digest);
    assert!(recorded
        .iter()
        .all(|i| i.ref_name == "mirror/ops:v1" || i.catalog_packages.is_none()));
    let raw: Value =
        serde_json::from_slice(&std::fs::read(t.path().join("cache/index.json")).unwrap()).unwrap();
    assert!(raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["annotations"][annotation::FERRY_CATALOG_PACKAGES] == "etcd"));
    // The original is not recorded.
    assert!(recorded.iter().all(|i| i.ref_name != "redhat/catalog:v1"));

    // Again: the same rebuilt digest, nothing downloaded, index.json unchanged.
    let index_before = std::fs::read(t.path().join("cache/index.json")).unwrap();
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let count = |e: Event<'_>| {
        if let Event::Bytes(n) = e {
            bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let again = pull::plan(&cache, &set, &opts, &count).unwrap();
    assert_eq!(again.images[0].digest, catalog.digest);
    assert_eq!(again.bytes_to_fetch, 0);
    let r = pull::fetch(&cache, &again, &opts, &count).unwrap();
    assert_eq!(r.blobs_fetched, 0);
    assert_eq!(bytes.into_inner(), 0, "nothing downloaded the second time");
    assert_eq!(
        std::fs::read(t.path().join("cache/index.json")).unwrap(),
        index_before
    );

    // Prune from the cache alone keeps the rebuilt catalog and its images, and every blob
    // they need; the original's catalog layer goes.
    let pruned = pull::prune(&cache, &set, &Options::offline(opts.cancel)).unwrap();
    assert!(pruned.images_removed.is_empty(), "{pruned:?}");
    assert_eq!(cache.images().unwrap(), recorded);
    for image in &again.images {
        for (d, _) in image.manifests.iter().chain(&image.blobs) {
            assert!(cache.has_blob(d).is_some(), "{} lost {d}", image.ref_name);
        }
    }
    // A set without the entry frees them all.
    let other = std::fs::read_to_string(t.path().join("imageset.yaml"))
        .unwrap()
        .replace("targetCatalog: mirror/ops", "targetCatalog: elsewhere");
    std::fs::write(t.path().join("other.yaml"), other).unwrap();
    let other = ImageSet::from_file(&t.path().join("other.yaml"))
        .unwrap()
        .validate_for_pull()
        .unwrap();
    let pruned = pull::prune(&cache, &other, &Options::offline(opts.cancel)).unwrap();
    assert_eq!(pruned.images_removed.len(), 4, "{pruned:?}");
    // And forgets the entry's record: nothing of it is left to keep.
    let records = t.path().join("cache/.ferry/operators");
    assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
}

/// `full: true` without packages: the original catalog, byte-identical (its digest), with
/// every package recorded; no rebuild.
#[test]
fn a_full_catalog_without_packages_is_carried_unchanged() {
    let site = site();
    let t = tempdir();
    let conf = registries_conf(t.path(), &site.registry.host());
    let cache = Cache::open(&t.path().join("cache")).unwrap();
    let opts = options(&conf, false);
    let set = set(
        t.path(),
        "  - catalog: registry.redhat.io/redhat/small:v1\n    full: true\n",
    );
    let plan = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let c = &plan.catalogs[0];
    assert!(c.unchanged);
    assert_eq!((c.digest, c.source_digest), (site.small, site.small));
    let image = &plan.images[0];
    assert_eq!(image.ref_name, "redhat/small:v1");
    assert_eq!(image.digest, site.small);
    assert_eq!(
        image.catalog_packages.as_deref(),
        Some(&["solo".to_owned()][..])
    );
    assert_eq!(
        plan.images.len(),
        2,
        "the catalog and solo.1's bundle image"
    );
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert_eq!(report.pulled.len(), 2);
    let recorded = cache.images().unwrap();
    let small = recorded
        .iter()
        .find(|i| i.ref_name == "redhat/small:v1")
        .unwrap();
    assert_eq!(small.digest, site.small);
    assert_eq!(
        small.catalog_packages.as_deref(),
        Some(&["solo".to_owned()][..])
    );
}

#[test]
fn a_selection_the_catalog_cannot_give_names_the_entry_and_listing_reads_it() {
    let site = site();
    let t = tempdir();
    let conf = registries_conf(t.path(), &site.registry.host());
    let cache = Cache::open(&t.path().join("cache")).unwrap();
    let opts = options(&conf, false);
    let set = set(
        t.path(),
        "  - catalog: registry.redhat.io/redhat/catalog:v1\n    packages:\n    - name: nosuch\n",
    );
    let e = pull::plan(&cache, &set, &opts, &|_| {}).unwrap_err();
    match &e {
        pull::PullError::Operator {
            index,
            field,
            catalog,
            ..
        } => {
            assert_eq!((*index, catalog.as_str()), (0, CATALOG));
            // The package the catalog lacks, for the binary to locate in the file.
            assert_eq!(
                *field,
                [pull::Field::Key("packages"), pull::Field::Index(0)]
            );
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("nosuch") && text.contains("etcd") && text.contains("logging"),
        "{text}"
    );

    let listed = pull::list_catalog(
        &cache,
        &oci::Reference::parse(CATALOG).unwrap(),
        &opts,
        &|_| {},
    )
    .unwrap();
    assert_eq!(listed.image.source, CATALOG);
    assert_eq!(listed.loaded.catalog.package_names(), ["etcd", "logging"]);
    let listing = catalog::list(&listed.loaded.catalog, Some("etcd")).unwrap();
    assert_eq!(
        listing.packages[0].channels[0].head.as_deref(),
        Some("etcd.c")
    );
    // Only what was read was fetched: the base layer (bin/opm) is not in the cache.
    let m: Value =
        serde_json::from_slice(&std::fs::read(cache.blob_path(&listed.image.digest)).unwrap())
            .unwrap();
    let base: Digest = m["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let configs: Digest = m["layers"][1]["digest"].as_str().unwrap().parse().unwrap();
    assert_eq!(cache.has_blob(&base), None, "the base layer was fetched");
    assert!(cache.has_blob(&configs).is_some());

    // Not a catalog image: a failure naming it.
    let plain = site.bundle_c.clone();
    let e = pull::list_catalog(
        &cache,
        &oci::Reference::parse(&plain).unwrap(),
        &opts,
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(e, pull::PullError::Failed(_)), "{e:?}");
    assert!(
        e.to_string().contains("not an operator catalog image"),
        "{e}"
    );
}

/// A SQLite catalog: selected by package (`opm index prune`), its images
/// (`operatorbundle.bundlepath`, `related_image`) resolved, rebuilt with the pruned
/// database to the same digest each time; with `--allow-missing` and no packages, the
/// package whose image is missing is dropped whole and the catalog is rebuilt.
#[test]
fn a_sqlite_catalog_is_pruned_by_package_and_rebuilt() {
    let site = site();
    let t = tempdir();
    let original = push_sqlite_catalog(&site.registry, &t.path().join("sqlite"), &site);
    let conf = registries_conf(t.path(), &site.registry.host());
    let cache = Cache::open(&t.path().join("cache")).unwrap();
    let opts = options(&conf, false);
    let one = set(
        t.path(),
        "  - catalog: registry.redhat.io/redhat/sqlite:v4.8\n    packages:\n    - name: solo\n",
    );
    let plan = pull::plan(&cache, &one, &opts, &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let c = &plan.catalogs[0];
    assert_eq!(c.kind, catalog::image::Kind::Sqlite);
    assert_eq!(c.packages, ["solo"]);
    assert_eq!(c.images, [site.bundle_c.clone(), site.op_c.clone()]);
    assert_eq!(c.source_digest, original);
    assert_ne!(c.digest, original, "rebuilt");
    assert_eq!(plan.images[0].ref_name, "redhat/sqlite:v4.8");
    let again = pull::plan(&cache, &one, &opts, &|_| {}).unwrap();
    assert_eq!(
        again.catalogs[0].digest, c.digest,
        "the same pruned database"
    );

    // Listing reads the database.
    let listed = pull::list_catalog(
        &cache,
        &oci::Reference::parse("registry.redhat.io/redhat/sqlite:v4.8").unwrap(),
        &opts,
        &|_| {},
    )
    .unwrap();
    assert_eq!(listed.loaded.kind, catalog::image::Kind::Sqlite);
    assert_eq!(listed.loaded.catalog.package_names(), ["other", "solo"]);

    // No packages keeps the catalog whole; a missing image with --allow-missing drops the
    // package that needs it (a SQLite catalog is pruned by package only).
    let all = set(
        t.path(),
        "  - catalog: registry.redhat.io/redhat/sqlite:v4.8\n",
    );
    let plan = pull::plan(&cache, &all, &options(&conf, true), &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let c = &plan.catalogs[0];
    assert_eq!(c.packages, ["solo"]);
    assert_eq!(c.dropped_packages, ["other"]);
    assert_eq!(c.dropped[0].bundle, "other.1");
    assert!(!c.unchanged);
    assert_eq!(
        c.digest, again.catalogs[0].digest,
        "the same as selecting solo"
    );
}

/// A package name from the registry that the cache and the bundle cannot record (they
/// join the names with `,`): the catalog fails, naming itself and the package, instead of
/// being recorded as packages it does not hold.
#[test]
fn a_package_name_holding_a_comma_fails_the_catalog_naming_it() {
    let registry = Registry::plain();
    let work = tempdir();
    let w = work.path();
    let r = "registry.redhat.io";
    let bundle_image = format!(
        "{r}/e/bundle@{}",
        push_plain(&registry, w, "bundle-a", "e/bundle:a")
    );
    let pkg = "a,b";
    let objects = [
        json!({"schema": "olm.package", "name": pkg, "defaultChannel": "stable"}).to_string(),
        json!({"schema": "olm.channel", "name": "stable", "package": pkg, "entries": [{"name": "a.1"}]}).to_string(),
        json!({
            "schema": "olm.bundle", "name": "a.1", "package": pkg, "image": bundle_image,
            "properties": [{"type": "olm.package", "value": {"packageName": pkg, "version": "1.0.0"}}],
        })
        .to_string(),
    ]
    .join("\n");
    push_catalog(
        &registry,
        &w.join("comma"),
        "redhat/comma:v1",
        &[("configs/a/catalog.json", objects.as_bytes())],
    );
    let t = tempdir();
    let conf = registries_conf(t.path(), &registry.host());
    let cache = Cache::open(&t.path().join("cache")).unwrap();
    let opts = options(&conf, false);
    let set = set(
        t.path(),
        "  - catalog: registry.redhat.io/redhat/comma:v1\n    full: true\n",
    );
    let plan = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert!(
        plan.images.iter().all(|i| i.catalog_packages.is_none()),
        "nothing recorded as a catalog: {:?}",
        plan.images
    );
    let f = plan
        .failed
        .iter()
        .find(|f| f.reference == "registry.redhat.io/redhat/comma:v1")
        .unwrap_or_else(|| panic!("the catalog failed: {:?}", plan.failed));
    assert!(f.error.contains("\"a,b\""), "{}", f.error);
}

/// Two catalogs sent to one destination (targetCatalog and the same source tag): the
/// second entry is an error naming both, not a catalog left out of the plan unsaid.
#[test]
fn two_catalogs_sent_to_one_destination_are_an_error_naming_both() {
    let site = site();
    let t = tempdir();
    let conf = registries_conf(t.path(), &site.registry.host());
    let cache = Cache::open(&t.path().join("cache")).unwrap();
    let opts = options(&conf, false);
    let set = set(
        t.path(),
        "  - catalog: registry.redhat.io/redhat/small:v1\n    targetCatalog: mirror/ops\n  - catalog: registry.redhat.io/redhat/catalog:v1\n    targetCatalog: mirror/ops\n    packages:\n    - name: etcd\n",
    );
    let e = pull::plan(&cache, &set, &opts, &|_| {}).unwrap_err();
    match &e {
        pull::PullError::Operator { index, catalog, .. } => {
            assert_eq!((*index, catalog.as_str()), (1, CATALOG));
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("mirror/ops:v1") && text.contains("registry.redhat.io/redhat/small:v1"),
        "{text}"
    );
}
