//! Operator catalogs end to end (issue 12), against the fixture of
//! fixtures/README.md "Operator catalogs" in a real docker-registry standing for
//! `registry.redhat.io` (tests/src/catalogs.rs):
//!
//! - `ferry-pack catalog list REF [--package P] [--json]` of the FBC and the SQLite
//!   image, and a package the catalog lacks;
//! - `ferry-pack pull --config` with `mirror.operators`: each selection rule of the README's
//!   table, the refusals, the SQLite prune, the rebuilt image read back from the cache
//!   (layers, diff_ids, configs, Cmd, reproducible digest), `full: true` carried as is;
//! - the whole flow: config → volumes → verify → push into a second registry, where every
//!   related image is readable by its original digest through the mirror the IDMS names,
//!   the tagged one by tag (ITMS), and a CatalogSource names the rebuilt catalog;
//!   `--allow-missing`; a delta bundle whose IDMS covers the whole set.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tests::catalogs::*;
use tests::registry::*;
use tests::*;

use crate::pull::{bundle_images, push, text, yaml_docs, Connected};

const NO_TLS: &[&str] = &["--tls-verify=false"];

// ---------------------------------------------------------------------------------------
// The kit of this file

/// A connected side for `source`: sandbox, registries.conf, image set, cache, key.
fn connected(source: &CatalogSource, set: &OperatorSet) -> Connected {
    let tmp = tempdir();
    let conf = source.registries_conf(&tmp.path().join("registries.conf"));
    let set = set.write(&tmp.path().join("imageset.yaml"));
    let key = keygen(tmp.path(), "site.key");
    Connected {
        sandbox: Sandbox::new(tmp.path()),
        cache: tmp.path().join("cache"),
        conf,
        set,
        key,
        tmp,
    }
}

/// `ferry-pack catalog list REF --registries-conf CONF --cache CACHE EXTRA…`.
fn catalog_list(c: &Connected, reference: &str, extra: &[&str]) -> Output {
    let mut args: Vec<OsString> = vec![
        "catalog".into(),
        "list".into(),
        reference.into(),
        "--registries-conf".into(),
        c.conf.clone().into(),
        "--cache".into(),
        c.cache.clone().into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    run_command(&mut c.sandbox.pack_command(args))
}

/// The rebuilt catalog of `source_reference` in `cache`: its index.json descriptor and
/// the image read back from the cache's blobs.
#[track_caller]
fn rebuilt(cache: &Path, source_reference: &str) -> (Value, CatalogImage) {
    let found = rebuilt_in_cache(cache);
    let d = found.get(source_reference).unwrap_or_else(|| {
        panic!(
            "no rebuilt catalog (dev.ferry.catalog-packages) named {source_reference} in {}: {:?}",
            cache.display(),
            found.keys().collect::<Vec<_>>()
        )
    });
    let image = CatalogImage::read(&LayoutBlobs(cache.to_owned()), text(&d["digest"]));
    (d.clone(), image)
}

/// Every child's catalog summarised; all children hold the same.
#[track_caller]
fn summary_of(blobs: &dyn BlobSource, image: &CatalogImage) -> Summary {
    let mut summaries = image
        .children
        .iter()
        .map(|c| Summary::of(&c.catalog(blobs)));
    let first = summaries.next().expect("a child");
    for s in summaries {
        assert_eq!(s, first, "every platform holds the same catalog");
    }
    first
}

/// The packages of a rule, sorted and comma-separated (`dev.ferry.catalog-packages`).
fn packages_of(rule: &Rule) -> String {
    let set: BTreeSet<&str> = rule.defaults.iter().map(|(p, _)| *p).collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// The `io.containerd.image.name` of every descriptor of the cache's index.json.
fn cached_names(cache: &Path) -> BTreeSet<String> {
    let index: Value =
        serde_json::from_slice(&fs::read(cache.join("index.json")).expect("index.json"))
            .expect("JSON");
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| text(&d["annotations"]["io.containerd.image.name"]).to_owned())
        .collect()
}

/// The layer digests of the original catalog's children, by platform.
fn original_layers(source: &CatalogSource, image: &FixtureImage) -> BTreeMap<String, Vec<String>> {
    let blobs = LayoutBlobs(source.fixture.layout.clone());
    CatalogImage::read(&blobs, &image.digest)
        .children
        .into_iter()
        .map(|c| (c.platform, c.layers.into_iter().map(|l| l.0).collect()))
        .collect()
}

/// Every YAML document of every file under `dir` whose `kind` is `kind`.
fn docs_of_kind(dir: &Path, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        if entry.extension().is_some_and(|e| e == "yaml") {
            out.extend(yaml_docs(&entry).into_iter().filter(|d| d["kind"] == kind));
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `source → mirrors` of every entry of a mirror set file.
fn mirror_map(path: &Path, field: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for doc in yaml_docs(path) {
        for m in doc["spec"][field].as_array().into_iter().flatten() {
            out.entry(text(&m["source"]).to_owned())
                .or_default()
                .extend(
                    m["mirrors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| text(x).to_owned()),
                );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// catalog list

/// `catalog list` of both kinds: the JSON listing is catalog::Listing of the catalog's
/// content (packages, default channels, channels with head and versions), the same for the
/// SQLite image; `--package` adds its bundles; the text names every package, its default
/// channel and heads; only the layer holding the catalog is fetched.
#[test]
fn catalog_list_of_the_file_based_and_the_sqlite_catalog() {
    let source = CatalogSource::start();
    let f = &source.fixture;
    let c = connected(&source, &OperatorSet::default());
    let want =
        serde_json::to_value(catalog::list(&fixture_fbc(f), None).expect("list")).expect("JSON");
    for reference in [FBC_CATALOG, SQLITE_CATALOG] {
        let out = catalog_list(&c, reference, &["--json"]);
        assert_ok(&out, &format!("catalog list {reference} --json"));
        let got = json(&out);
        assert_eq!(
            got["packages"], want["packages"],
            "{reference}: the listing"
        );

        let out = catalog_list(&c, reference, &[]);
        assert_ok(&out, &format!("catalog list {reference}"));
        let listing = catalog::list(&fixture_fbc(f), None).expect("list");
        for p in &listing.packages {
            let mut needles = vec![p.name.as_str(), p.default_channel.as_deref().unwrap()];
            for ch in &p.channels {
                needles.push(&ch.name);
                needles.push(ch.head.as_deref().unwrap());
            }
            assert_mentions(&out, &needles, &format!("catalog list {reference}"));
        }

        let out = catalog_list(&c, reference, &["--package", "alpha-operator", "--json"]);
        assert_ok(&out, "catalog list --package alpha-operator --json");
        let got = json(&out);
        let want_one = serde_json::to_value(
            catalog::list(&fixture_fbc(f), Some("alpha-operator")).expect("list"),
        )
        .expect("JSON");
        assert_eq!(got["packages"], want_one["packages"]);
        assert_eq!(
            got["bundles"], want_one["bundles"],
            "{reference}: the bundles"
        );
        let names: Vec<&str> = got["bundles"]
            .as_array()
            .expect("bundles")
            .iter()
            .map(|b| text(&b["name"]))
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
        for b in got["bundles"].as_array().unwrap() {
            assert_eq!(text(&b["image"]), f.bundle(text(&b["name"])).image);
        }

        let out = catalog_list(&c, reference, &["--package", "omega-operator"]);
        assert_exit(&out, 1, "a package the catalog lacks");
        assert_mentions(
            &out,
            &[
                "omega-operator",
                "alpha-operator",
                "beta-operator",
                "zeta-operator",
            ],
            "the message names the packages it has",
        );
    }
    // Only the layer holding the catalog was fetched: not the base layers, nor opm's cache.
    let blobs = c.blobs_or_empty();
    for (platform, layers) in original_layers(&source, &f.fbc) {
        assert!(
            blobs.contains(&layers[1]),
            "{platform}: the configs layer is read"
        );
        assert!(
            !blobs.contains(&layers[0]),
            "{platform}: the base layer is not fetched"
        );
        assert!(
            !blobs.contains(&layers[2]),
            "{platform}: opm's cache layer is not fetched"
        );
    }
}

trait BlobsOrEmpty {
    fn blobs_or_empty(&self) -> BTreeSet<String>;
}

impl BlobsOrEmpty for Connected {
    fn blobs_or_empty(&self) -> BTreeSet<String> {
        if self.cache.join("blobs/sha256").is_dir() {
            self.blobs()
        } else {
            BTreeSet::new()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Selection, rebuilt catalogs

/// Each rule of the README's table: pulled into a cache of its own, the rebuilt catalog
/// holds exactly the bundles, channels and default channels the table says, on every
/// platform; the cache holds every image those bundles name; the descriptor names the
/// kept packages.
#[test]
fn each_selection_rule_rebuilds_the_catalog_with_what_the_table_keeps() {
    let source = CatalogSource::start();
    for rule in rules(FBC_CATALOG) {
        let c = connected(&source, &OperatorSet::of(vec![rule.operator.clone()]));
        let out = c.pull(&[]);
        assert_ok(&out, rule.name);
        let (descriptor, image) = rebuilt(&c.cache, FBC_CATALOG);
        assert_eq!(
            summary_of(&LayoutBlobs(c.cache.clone()), &image),
            Summary::of_rule(&rule),
            "{}",
            rule.name
        );
        assert_eq!(
            text(&descriptor["annotations"]["dev.ferry.catalog-packages"]),
            packages_of(&rule),
            "{}",
            rule.name
        );
        assert_eq!(
            image.platforms(),
            ["linux/amd64", "linux/arm64"],
            "{}",
            rule.name
        );
        let names = cached_names(&c.cache);
        for i in images_of(&source.fixture, rule.kept) {
            assert!(names.contains(&i), "{}: {i} is in the cache", rule.name);
        }
        if rule.name.starts_with("dependencies reported") {
            assert_mentions(
                &out,
                &["beta-operator.v2.1.0", "alpha-operator", "Gadget"],
                "unmet dependencies are reported per bundle",
            );
        }
    }
}

/// The refusals: exit 2, the image set file named, and what the catalog has.
#[test]
fn selections_the_catalog_cannot_satisfy_are_refused_naming_what_it_has() {
    let source = CatalogSource::start();
    for r in refusals(FBC_CATALOG) {
        let c = connected(&source, &OperatorSet::of(vec![r.operator.clone()]));
        let out = c.pull(&[]);
        assert_exit(&out, 2, r.name);
        assert_mentions(&out, r.needles, r.name);
        assert_mentions(
            &out,
            &[&c.set.display().to_string()],
            "the image set is named",
        );
        if c.cache.join("index.json").is_file() {
            assert!(
                rebuilt_in_cache(&c.cache).is_empty(),
                "{}: nothing rebuilt",
                r.name
            );
        }
    }
}

/// The rebuilt image read back: per platform the original base layer kept, the configs and
/// cache layers dropped, one new layer holding only `configs/<package>/catalog.json`
/// (uid/gid 0, modes 0755/0644, mtime 0, gzip without a time), diff_ids and history
/// consistent, labels kept, Cmd `serve /configs` without --cache-dir; skopeo reads it from
/// the cache; two runs into two caches give the same digest.
#[test]
fn the_rebuilt_catalog_is_deterministic_and_holds_only_the_selected_configs() {
    let source = CatalogSource::start();
    let rule = rules(FBC_CATALOG)
        .into_iter()
        .find(|r| r.name.starts_with("a package alone"))
        .expect("rule");
    let set = OperatorSet::of(vec![rule.operator.clone()]);
    let first = connected(&source, &set);
    assert_ok(&first.pull(&[]), "first pull");
    let second = connected(&source, &set);
    assert_ok(&second.pull(&[]), "second pull, another cache");
    let (d1, image) = rebuilt(&first.cache, FBC_CATALOG);
    let (d2, _) = rebuilt(&second.cache, FBC_CATALOG);
    assert_eq!(
        d1["digest"], d2["digest"],
        "the same source and selection, the same digest"
    );
    assert_ne!(text(&d1["digest"]), source.fixture.fbc.digest);

    let blobs = LayoutBlobs(first.cache.clone());
    let originals = original_layers(&source, &source.fixture.fbc);
    for child in &image.children {
        let what = &child.platform;
        let original = &originals[what];
        assert_eq!(
            child.layers.len(),
            2,
            "{what}: base + the new configs layer"
        );
        assert_eq!(
            child.layers[0].0, original[0],
            "{what}: the base layer kept"
        );
        assert!(!child
            .layers
            .iter()
            .any(|l| l.0 == original[1] || l.0 == original[2]));
        let contents = child.layer_contents(&blobs);
        let diff_ids: Vec<String> = contents.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(child.diff_ids(), diff_ids, "{what}: rootfs.diff_ids");
        assert_eq!(
            child.layer_history().len(),
            child.layers.len(),
            "{what}: history"
        );
        let new_paths = &contents[1].0;
        let files: Vec<&String> = new_paths.iter().filter(|p| !p.ends_with('/')).collect();
        assert_eq!(
            files,
            ["configs/delta-operator/catalog.json"],
            "{what}: {new_paths:?}"
        );
        for (paths, _) in &contents {
            assert!(
                !paths.iter().any(|p| p.starts_with("tmp/cache")),
                "{what}: no opm cache"
            );
        }
        assert_eq!(
            child.cmd(),
            ["serve", "/configs"],
            "{what}: Cmd without --cache-dir"
        );
        assert_eq!(child.entrypoint(), ["/bin/opm"]);
        assert_eq!(child.labels()[CONFIGS_LABEL], "/configs");
        // The new layer's bytes: gzip with no time, tar headers fixed.
        let gz = blobs.blob(&child.layers[1].0);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        assert_eq!(
            &gz[4..8],
            &[0, 0, 0, 0],
            "{what}: gzip header without a time"
        );
        let tar = uncompressed(&gz);
        for e in tar::Archive::new(&tar[..]).entries().expect("tar") {
            let e = e.expect("entry");
            let h = e.header();
            let path = e.path().expect("path").to_string_lossy().into_owned();
            assert_eq!(h.uid().unwrap(), 0, "{path}");
            assert_eq!(h.gid().unwrap(), 0, "{path}");
            assert_eq!(h.mtime().unwrap(), 0, "{path}");
            let mode = h.mode().unwrap() & 0o7777;
            if h.entry_type().is_dir() {
                assert_eq!(mode, 0o755, "{path}");
            } else {
                assert_eq!(mode, 0o644, "{path}");
            }
        }
        // Only the selected package.
        let c = child.catalog(&blobs);
        assert_eq!(c.package_names(), ["delta-operator"]);
    }
    let name = text(&d1["annotations"]["org.opencontainers.image.ref.name"]);
    let out = skopeo([
        "inspect".to_owned(),
        "--raw".to_owned(),
        format!("oci:{}:{name}", first.cache.display()),
    ]);
    assert_ok(&out, "skopeo reads the rebuilt catalog from the cache");
    assert_eq!(sha256_hex(&out.stdout), text(&d1["digest"]));
}

/// SQLite: package-level selection keeps every bundle of the listed packages in a pruned
/// index.db (the database layer replaced, the original `registry serve` command kept);
/// channel and version filters are refused with a message that says so.
#[test]
fn a_sqlite_catalog_is_pruned_by_package_and_channel_filters_are_refused() {
    let source = CatalogSource::start();
    let rule = sqlite_prune_rule(SQLITE_CATALOG);
    let c = connected(&source, &OperatorSet::of(vec![rule.operator.clone()]));
    assert_ok(&c.pull(&[]), "pull of a SQLite catalog, two packages");
    let (descriptor, image) = rebuilt(&c.cache, SQLITE_CATALOG);
    let blobs = LayoutBlobs(c.cache.clone());
    assert_eq!(summary_of(&blobs, &image), Summary::of_rule(&rule));
    assert_eq!(
        text(&descriptor["annotations"]["dev.ferry.catalog-packages"]),
        "gamma-operator,zeta-operator"
    );
    let originals = original_layers(&source, &source.fixture.sqlite);
    for child in &image.children {
        assert_eq!(
            child.cmd(),
            ["registry", "serve", "--database", "/database/index.db"]
        );
        assert_eq!(child.labels()[DATABASE_LABEL], "/database/index.db");
        let original = &originals[&child.platform];
        assert_eq!(child.layers.len(), 2);
        assert_eq!(child.layers[0].0, original[0], "the base layer kept");
        assert_ne!(
            child.layers[1].0, original[1],
            "the database layer replaced"
        );
        let contents = child.layer_contents(&blobs);
        let diff_ids: Vec<String> = contents.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(child.diff_ids(), diff_ids);
    }
    let names = cached_names(&c.cache);
    for i in images_of(&source.fixture, rule.kept) {
        assert!(names.contains(&i), "{i} is in the cache");
    }
    // The pruned database: no row names a dropped package or its bundles, no free page.
    let tmp = tempdir();
    let db = image.children[0].database(&blobs, &tmp.path().join("index.db"));
    let conn = rusqlite::Connection::open(&db).expect("open the pruned index.db");
    let count = |sql: &str| -> i64 {
        conn.query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(
        count("PRAGMA freelist_count"),
        0,
        "VACUUM leaves no free page"
    );
    for (table, column) in [
        ("operatorbundle", "name"),
        ("channel_entry", "operatorbundle_name"),
        ("related_image", "operatorbundle_name"),
        ("properties", "operatorbundle_name"),
        ("dependencies", "operatorbundle_name"),
        ("api_provider", "operatorbundle_name"),
        ("api_requirer", "operatorbundle_name"),
        ("deprecated", "operatorbundle_name"),
    ] {
        let left = count(&format!(
            "SELECT count(*) FROM {table} WHERE {column} NOT LIKE 'gamma-operator.%' AND {column} NOT LIKE 'zeta-operator.%'"
        ));
        assert_eq!(left, 0, "{table}: rows of dropped packages left");
    }
    assert_eq!(count("SELECT count(*) FROM package"), 2);
    assert_eq!(
        count("SELECT count(*) FROM channel WHERE package_name NOT IN ('gamma-operator', 'zeta-operator')"),
        0
    );

    let refused = OperatorSel::new(SQLITE_CATALOG)
        .packages(vec![PackageSel::new("alpha-operator").channel("fast")]);
    let c = connected(&source, &OperatorSet::of(vec![refused]));
    let out = c.pull(&[]);
    assert_exit(&out, 2, "a channel filter on a SQLite catalog");
    assert_mentions(&out, &["alpha-operator", "SQLite"], "the refusal says why");
}

/// `full: true` with no packages: the original catalog is carried byte-identical (its
/// digest, so its signature stays valid), recorded with every package.
#[test]
fn full_with_no_packages_carries_the_original_catalog_as_it_is() {
    let source = CatalogSource::start();
    let c = connected(
        &source,
        &OperatorSet::of(vec![OperatorSel::new(FBC_CATALOG).full()]),
    );
    assert_ok(&c.pull(&[]), "pull full: true");
    let (descriptor, image) = rebuilt(&c.cache, FBC_CATALOG);
    assert_eq!(text(&descriptor["digest"]), source.fixture.fbc.digest);
    assert_eq!(image.platforms(), ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        text(&descriptor["annotations"]["dev.ferry.catalog-packages"]),
        "alpha-operator,beta-operator,delta-operator,epsilon-operator,gamma-operator,zeta-operator"
    );
    let names = cached_names(&c.cache);
    for b in &source.fixture.bundles {
        assert!(names.contains(&b.image), "every bundle: {}", b.image);
    }
}

// ---------------------------------------------------------------------------------------
// The whole flow

/// Config → volumes → verify → push into a second registry: every image the kept bundles
/// name is readable there by its original digest through the mirror the IDMS gives for
/// its source repository, the tagged helper by its tag (and the ITMS covers it); the
/// CatalogSource names the rebuilt catalog at targetCatalog:targetTag, which holds only
/// the selected packages; the bundle marks the catalog and lists its packages.
#[test]
fn an_operator_set_goes_to_volumes_and_every_related_image_comes_out_inside_by_digest() {
    let source = CatalogSource::start();
    let f = &source.fixture;
    let mut op = OperatorSel::new(FBC_CATALOG)
        .package("alpha-operator")
        .package("epsilon-operator")
        .package("gamma-operator");
    op.target_catalog = Some("mirror-catalogs/operator-index".to_owned());
    op.target_tag = Some("filtered".to_owned());
    let kept = [
        "alpha-operator.v1.2.0",
        "alpha-operator.v2.0.0",
        "alpha-operator.v2.1.0",
        "epsilon-operator.v1.0.0",
        "gamma-operator.v0.3.0",
    ];
    let c = connected(&source, &OperatorSet::of(vec![op]));
    let vols = c.path("vols");
    assert_ok(
        &c.pack(&vols, &[]),
        "ferry-pack --config with mirror.operators",
    );
    let verify = unpack([
        OsStr::new("verify"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        c.key.public.as_os_str(),
    ]);
    assert_ok(&verify, "ferry-unpack verify");

    // The bundle marks the catalog and names its packages.
    let images = bundle_images(&vols);
    let catalogs: Vec<&Value> = images.iter().filter(|i| i["catalog"] == true).collect();
    assert_eq!(catalogs.len(), 1, "{images:?}");
    assert_eq!(
        catalogs[0]["packages"],
        serde_json::json!(["alpha-operator", "epsilon-operator", "gamma-operator"])
    );
    assert_eq!(text(&catalogs[0]["source"]), FBC_CATALOG);
    let out = run_command(&mut c.sandbox.command([
        OsStr::new("inspect"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        c.key.public.as_os_str(),
    ]));
    assert_ok(&out, "ferry-unpack inspect");
    let listed = run_command(&mut c.sandbox.command([
        OsStr::new("inspect"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        c.key.public.as_os_str(),
        OsStr::new("--json"),
    ]));
    assert_ok(&listed, "ferry-unpack inspect --json");
    let v = json(&listed);
    let marked: Vec<&Value> = v["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter(|i| i["catalog"] == true)
        .collect();
    assert_eq!(
        marked.len(),
        1,
        "inspect --json marks the catalog image: {v}"
    );
    assert_eq!(
        marked[0]["packages"],
        serde_json::json!(["alpha-operator", "epsilon-operator", "gamma-operator"])
    );
    assert_mentions(
        &out,
        &["alpha-operator", "epsilon-operator", "gamma-operator"],
        "inspect",
    );
    let out = run_command(&mut c.sandbox.command([
        OsStr::new("catalog"),
        OsStr::new("list"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        c.key.public.as_os_str(),
    ]));
    assert_ok(&out, "ferry-unpack catalog list");
    assert_mentions(
        &out,
        &[
            "alpha-operator",
            "epsilon-operator",
            "gamma-operator",
            "stable",
            "preview",
        ],
        "ferry-unpack catalog list",
    );
    assert!(
        !out.stdout_text().contains("beta-operator"),
        "{}",
        out.dump()
    );

    let inside = Registry::plain();
    let to = format!("{}/mirror", inside.host());
    let man = c.path("manifests");
    assert_ok(&push(&c, &vols, &to, &man), "push into the second registry");

    let idms = mirror_map(
        &man.join("cluster/imageDigestMirrorSet.yaml"),
        "imageDigestMirrors",
    );
    let needed = images_of(f, &kept);
    assert!(needed.contains(TAGGED_IMAGE));
    for reference in &needed {
        let image = f.image(reference);
        let repo = image.repository();
        let mirrors = idms
            .get(&repo)
            .unwrap_or_else(|| panic!("the IDMS has no entry for {repo}: {:?}", idms.keys()));
        assert_eq!(mirrors, &[format!("{to}/{}", image.path)], "{repo}");
        let at = format!("{}@{}", mirrors[0], image.digest);
        assert_eq!(
            skopeo_digest(&at, NO_TLS),
            image.digest,
            "skopeo reads {at}"
        );
        for (child, _) in &image.children {
            let at = format!("{}@{child}", mirrors[0]);
            assert_eq!(&skopeo_digest(&at, NO_TLS), child, "every child: {at}");
        }
    }
    let tagged = f.image(TAGGED_IMAGE);
    let at = format!("{to}/{}:v1", tagged.path);
    assert_eq!(
        skopeo_digest(&at, NO_TLS),
        tagged.digest,
        "the helper by its tag"
    );
    let itms = mirror_map(
        &man.join("cluster/imageTagMirrorSet.yaml"),
        "imageTagMirrors",
    );
    assert_eq!(
        itms.get(&tagged.repository()),
        Some(&vec![format!("{to}/{}", tagged.path)]),
        "the ITMS covers the tagged helper: {itms:?}"
    );
    // Nothing the selection left out was pushed.
    let left_out = f.images_of(
        f.bundles
            .iter()
            .filter(|b| !kept.contains(&b.name.as_str()))
            .map(|b| b.name.as_str()),
    );
    for reference in left_out.difference(&needed) {
        let image = f.image(reference);
        assert!(
            inside
                .manifest(&format!("mirror/{}", image.path), &image.digest)
                .is_none(),
            "{reference} was not selected but is inside"
        );
    }

    // The CatalogSource names the rebuilt catalog, which holds the selection.
    let sources = docs_of_kind(&man, "CatalogSource");
    let target = format!("{to}/mirror-catalogs/operator-index");
    let named: Vec<&Value> = sources
        .iter()
        .filter(|d| text(&d["spec"]["image"]).starts_with(&target))
        .collect();
    assert!(
        !named.is_empty(),
        "a CatalogSource names {target}: {sources:?}"
    );
    assert_eq!(named[0]["spec"]["sourceType"], "grpc");
    let catalog_at = format!("{target}:filtered");
    let digest = skopeo_digest(&catalog_at, NO_TLS);
    let blobs = RegistryBlobs {
        registry: &inside,
        repository: "mirror/mirror-catalogs/operator-index".to_owned(),
    };
    let image = CatalogImage::read(&blobs, &digest);
    let s = summary_of(&blobs, &image);
    assert_eq!(s.bundles, kept.iter().map(|k| k.to_string()).collect());
    for child in &image.children {
        assert_eq!(child.cmd(), ["serve", "/configs"]);
    }
    // One OperatorHub object per apply directory (cluster/ and cluster-before-4.13/),
    // each disabling the default sources.
    for dir in ["cluster", "cluster-before-4.13"] {
        let hubs = docs_of_kind(&man.join(dir), "OperatorHub");
        assert_eq!(hubs.len(), 1, "{dir}/operatorHub.yaml: {hubs:?}");
        assert_eq!(hubs[0]["metadata"]["name"], "cluster");
        assert_eq!(hubs[0]["spec"]["disableAllDefaultSources"], true);
    }
}

/// A related image the source lacks: the pull fails naming the bundle that needs it (and
/// the image); with `--allow-missing` that bundle is dropped from the rebuilt catalog, and
/// named.
#[test]
fn allow_missing_drops_the_bundles_whose_images_cannot_be_pulled() {
    // The fixture is the same every time it is generated: its operand's reference first.
    let tmp = tempdir();
    let fixture = catalog_fixture::generate(&tmp.path().join("layout")).expect("generate");
    let operand = fixture
        .bundle("zeta-operator.v1.0.0")
        .related
        .iter()
        .find(|r| r.contains("zeta-operand"))
        .expect("zeta's operand")
        .clone();
    let source = CatalogSource::start_without(&[&operand]);
    let set = OperatorSet::of(vec![OperatorSel::new(FBC_CATALOG)
        .package("gamma-operator")
        .package("zeta-operator")]);
    let c = connected(&source, &set);
    let out = c.pull(&[]);
    assert_exit(&out, 1, "a related image the source lacks");
    assert_mentions(
        &out,
        &["zeta-operator.v1.0.0", &operand],
        "the bundle and image named",
    );

    let out = c.pull(&["--allow-missing"]);
    assert_ok(&out, "pull --allow-missing");
    assert_mentions(
        &out,
        &["zeta-operator.v1.0.0"],
        "the dropped bundle is named",
    );
    let (descriptor, image) = rebuilt(&c.cache, FBC_CATALOG);
    let s = summary_of(&LayoutBlobs(c.cache.clone()), &image);
    assert!(!s.bundles.contains("zeta-operator.v1.0.0"), "{s:?}");
    assert!(s.bundles.contains("gamma-operator.v0.3.0"), "{s:?}");
    assert_eq!(
        text(&descriptor["annotations"]["dev.ferry.catalog-packages"]),
        "gamma-operator"
    );
}

/// A delta bundle (`--base` the receipt of the first push): pushed into the same registry,
/// its IDMS covers every image of the whole set, not only what the delta carries.
#[test]
fn a_delta_bundles_mirror_sets_cover_the_whole_set() {
    let source = CatalogSource::start();
    let f = &source.fixture;
    let first = OperatorSet::of(vec![OperatorSel::new(FBC_CATALOG).package("gamma-operator")]);
    let c = connected(&source, &first);
    let vols = c.path("vols");
    assert_ok(&c.pack(&vols, &[]), "pack the first set");
    let inside = Registry::plain();
    let to = format!("{}/mirror", inside.host());
    let man = c.path("man");
    assert_ok(&push(&c, &vols, &to, &man), "push the first set");
    let receipt = man.join("receipt.json");
    assert!(receipt.is_file(), "the push writes receipt.json");

    OperatorSet::of(vec![OperatorSel::new(FBC_CATALOG)
        .package("gamma-operator")
        .package("delta-operator")])
    .write(&c.set);
    let delta = c.path("delta");
    assert_ok(
        &c.pack(&delta, &["--base", receipt.to_str().expect("utf-8")]),
        "pack the larger set with --base",
    );
    let man2 = c.path("man2");
    assert_ok(&push(&c, &delta, &to, &man2), "push the delta");
    let idms = mirror_map(
        &man2.join("cluster/imageDigestMirrorSet.yaml"),
        "imageDigestMirrors",
    );
    let whole = images_of(
        f,
        &[
            "gamma-operator.v0.3.0",
            "delta-operator.v3.2.0",
            "delta-operator.v3.4.0",
        ],
    );
    for reference in &whole {
        let image = f.image(reference);
        assert!(
            idms.contains_key(&image.repository()),
            "the delta's IDMS covers {} (the whole set): {:?}",
            image.repository(),
            idms.keys()
        );
        let at = format!("{to}/{}@{}", image.path, image.digest);
        assert_eq!(skopeo_digest(&at, NO_TLS), image.digest, "{at}");
    }
    // No targetCatalog: the rebuilt catalog goes to the source's path and tag, and the
    // delta's holds both packages.
    let at = format!("{to}/fixture/operator-index:v4.16");
    let digest = skopeo_digest(&at, NO_TLS);
    let blobs = RegistryBlobs {
        registry: &inside,
        repository: "mirror/fixture/operator-index".to_owned(),
    };
    let image = CatalogImage::read(&blobs, &digest);
    let want: BTreeSet<String> = [
        "delta-operator.v3.2.0",
        "delta-operator.v3.4.0",
        "gamma-operator.v0.3.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(summary_of(&blobs, &image).bundles, want);
    let tagged = f.image(TAGGED_IMAGE);
    let itms = mirror_map(
        &man2.join("cluster/imageTagMirrorSet.yaml"),
        "imageTagMirrors",
    );
    assert!(
        itms.contains_key(&tagged.repository()),
        "the delta's ITMS covers the tagged helper of the first set: {itms:?}"
    );
}

/// The operator entry's `platforms`: the rebuilt catalog's index holds only that child
/// (never sparse), and a multi-arch related image is pulled for it only.
#[test]
fn platforms_keep_only_those_children_of_the_catalog_and_of_its_images() {
    let source = CatalogSource::start();
    let f = &source.fixture;
    let mut op = OperatorSel::new(FBC_CATALOG).package("alpha-operator");
    op.platforms = vec!["linux/arm64".to_owned()];
    let c = connected(&source, &OperatorSet::of(vec![op]));
    assert_ok(&c.pull(&[]), "pull with platforms: linux/arm64");
    let (_, image) = rebuilt(&c.cache, FBC_CATALOG);
    assert_eq!(image.platforms(), ["linux/arm64"]);
    let originals = original_layers(&source, &f.fbc);
    assert_eq!(
        image.children[0].layers[0].0, originals["linux/arm64"][0],
        "arm64's own base layer"
    );
    let blobs = c.blobs();
    let operator = f.image(
        f.bundle("alpha-operator.v1.2.0")
            .related
            .iter()
            .find(|r| r.contains("/alpha-operator@"))
            .expect("alpha's operator image"),
    );
    assert_eq!(operator.children.len(), 2, "a multi-arch operator image");
    for (child, platform) in &operator.children {
        assert_eq!(
            blobs.contains(child),
            platform == "linux/arm64",
            "{platform} child of {}",
            operator.reference
        );
    }
}
