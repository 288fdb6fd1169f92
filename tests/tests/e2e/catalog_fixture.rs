//! The operator-catalog fixture itself (fixtures/README.md "Operator catalogs"), before
//! any ferry command reads it: pushed by skopeo and read back by skopeo as a user would
//! (labels, command, platforms), every image a bundle names in the registry by digest
//! (the tagged helper by tag), the configs layer parsed by ferry's reader with the
//! packages and channels the README's table says, the SQLite image listing the same, and
//! the table of what each selection rule keeps checked against ferry's selection library
//! (so the end-to-end tests of `catalog.rs` compare the CLI with a table that is right).

use std::collections::BTreeSet;

use serde_json::Value;
use tests::catalogs::*;
use tests::registry::*;
use tests::*;

const NO_TLS: &[&str] = &["--tls-verify=false"];

/// `skopeo inspect [--config] [--raw] docker://NAME` through the registries.conf.
fn inspect(conf: &std::path::Path, name: &str, flags: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "--registries-conf".to_owned(),
        conf.display().to_string(),
        "inspect".to_owned(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push(format!("docker://{name}"));
    let out = run("skopeo", &args);
    assert_ok(&out, &format!("skopeo inspect {flags:?} {name}"));
    out.stdout
}

#[test]
fn the_catalog_images_are_pushed_and_read_back_by_skopeo_under_their_names() {
    let source = CatalogSource::start();
    let tmp = tempdir();
    let conf = source.registries_conf(&tmp.path().join("registries.conf"));
    let f = &source.fixture;
    for (image, label, value, cmd) in [
        (
            &f.fbc,
            CONFIGS_LABEL,
            "/configs",
            vec!["serve", "/configs", "--cache-dir=/tmp/cache"],
        ),
        (
            &f.sqlite,
            DATABASE_LABEL,
            "/database/index.db",
            vec!["registry", "serve", "--database", "/database/index.db"],
        ),
    ] {
        let raw = inspect(&conf, &image.reference, &["--raw"]);
        assert_eq!(sha256_hex(&raw), image.digest, "{}", image.reference);
        let index: Value = serde_json::from_slice(&raw).expect("index JSON");
        let platforms: Vec<String> = index["manifests"]
            .as_array()
            .expect("an index")
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap(),
                    m["platform"]["architecture"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            platforms,
            ["linux/amd64", "linux/arm64"],
            "{}",
            image.reference
        );
        for arch in ["amd64", "arm64"] {
            let config: Value = serde_json::from_slice(&inspect(
                &conf,
                &image.reference,
                &[
                    "--config",
                    "--override-os=linux",
                    &format!("--override-arch={arch}"),
                ],
            ))
            .expect("config JSON");
            assert_eq!(config["architecture"], arch);
            assert_eq!(
                config["config"]["Labels"][label], value,
                "{}",
                image.reference
            );
            assert_eq!(config["config"]["Cmd"], serde_json::json!(cmd));
            assert_eq!(
                config["config"]["Entrypoint"],
                serde_json::json!(["/bin/opm"])
            );
        }
    }
}

/// The kit's reader of catalog images from a registry (what the e2e tests use on the
/// inside) finds the same catalog as in the layout, on both platforms, for both kinds.
#[test]
fn the_kit_reads_catalog_images_back_from_a_registry() {
    let source = CatalogSource::start();
    let f = &source.fixture;
    let want = Summary::of(&fixture_fbc(f));
    let blobs = RegistryBlobs {
        registry: &source.registry,
        repository: f.fbc.path.clone(),
    };
    for image in [&f.fbc, &f.sqlite] {
        let read = CatalogImage::read(&blobs, &image.digest);
        assert_eq!(read.platforms(), ["linux/amd64", "linux/arm64"]);
        for child in &read.children {
            assert_eq!(
                Summary::of(&child.catalog(&blobs)),
                want,
                "{}",
                image.reference
            );
            let diff_ids: Vec<String> = child
                .layer_contents(&blobs)
                .into_iter()
                .map(|(_, d)| d)
                .collect();
            assert_eq!(child.diff_ids(), diff_ids);
            assert_eq!(child.layer_history().len(), child.layers.len());
        }
    }
}

#[test]
fn every_image_a_bundle_names_is_in_the_registry_by_digest_and_the_helper_by_tag() {
    let source = CatalogSource::start();
    let f = &source.fixture;
    let mut named = BTreeSet::new();
    for b in &f.bundles {
        named.insert(b.image.clone());
        named.extend(b.related.iter().cloned());
    }
    let listed: BTreeSet<String> = f.images.iter().map(|i| i.reference.clone()).collect();
    assert_eq!(
        named, listed,
        "the fixture's images are exactly what bundles name"
    );
    let mut multi = 0;
    for image in &f.images {
        let got = source
            .registry
            .manifest(&image.path, &image.digest)
            .unwrap_or_else(|| panic!("{} is not in the registry", image.by_digest()));
        assert_eq!(sha256_hex(&got), image.digest);
        for (child, _) in &image.children {
            assert!(
                source.registry.manifest(&image.path, child).is_some(),
                "{child}"
            );
        }
        multi += usize::from(!image.children.is_empty());
        assert_eq!(
            skopeo_digest(&source.location(image), NO_TLS),
            image.digest,
            "{}",
            image.reference
        );
    }
    assert!(multi >= 3, "multi-arch bundles and related images");
    let tagged = f.image(TAGGED_IMAGE);
    assert_eq!(source.registry.tags(&tagged.path), ["v1"]);
    assert_eq!(
        f.bundles_needing(TAGGED_IMAGE),
        ["gamma-operator.v0.3.0"],
        "one bundle names the helper by tag"
    );
    let (tagged_images, dangling) = source.registry.tagged_images_and_dangling().expect("read");
    assert!(dangling.is_empty(), "{dangling:?}");
    assert!(tagged_images.contains_key("fixture/operator-index:v4.16"));
    assert!(tagged_images.contains_key("fixture/operator-index:v4.8"));
}

/// (package, default channel, [(channel, head)]).
type PackageRow = (String, String, Vec<(String, String)>);

/// The README's table of packages and channels, as ferry's reader sees the configs layer.
#[test]
fn the_configs_layer_parses_with_the_packages_and_channels_the_readme_lists() {
    let tmp = tempdir();
    let f = catalog_fixture::generate(&tmp.path().join("layout")).expect("generate");
    let c = fixture_fbc(&f);
    let listing = catalog::list(&c, None).expect("list");
    let got: Vec<PackageRow> = listing
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.default_channel.clone().unwrap_or_default(),
                p.channels
                    .iter()
                    .map(|ch| {
                        (
                            ch.name.clone(),
                            ch.head
                                .clone()
                                .unwrap_or_else(|| format!("no head: {:?}", ch.error)),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let want: Vec<PackageRow> = [
        (
            "alpha-operator",
            "stable",
            vec![
                ("candidate", "alpha-operator.v2.1.0"),
                ("fast", "alpha-operator.v2.0.0"),
                ("stable", "alpha-operator.v1.2.0"),
            ],
        ),
        (
            "beta-operator",
            "stable-v2",
            vec![
                ("stable-v1", "beta-operator.v1.1.0"),
                ("stable-v2", "beta-operator.v2.1.0"),
            ],
        ),
        (
            "delta-operator",
            "stable",
            vec![
                ("eus", "delta-operator.v3.2.0"),
                ("stable", "delta-operator.v3.4.0"),
            ],
        ),
        (
            "epsilon-operator",
            "stable",
            vec![("stable", "epsilon-operator.v1.0.0")],
        ),
        (
            "gamma-operator",
            "preview",
            vec![("preview", "gamma-operator.v0.3.0")],
        ),
        (
            "zeta-operator",
            "stable",
            vec![("stable", "zeta-operator.v1.0.0")],
        ),
    ]
    .into_iter()
    .map(|(p, d, chans)| {
        (
            p.to_owned(),
            d.to_owned(),
            chans
                .into_iter()
                .map(|(c, h)| (c.to_owned(), h.to_owned()))
                .collect(),
        )
    })
    .collect();
    assert_eq!(got, want);
    let alpha = c.package("alpha-operator").expect("alpha");
    assert_eq!(alpha.bundles.len(), 6);
    let fast = listing.packages[0]
        .channels
        .iter()
        .find(|ch| ch.name == "fast")
        .unwrap();
    assert_eq!(fast.versions, ["1.0.0", "1.1.0", "1.1.1", "1.2.0", "2.0.0"]);
    let entry = alpha.channels["stable"]
        .entries
        .iter()
        .find(|e| e.name == "alpha-operator.v1.2.0")
        .unwrap();
    assert_eq!(entry.replaces.as_deref(), Some("alpha-operator.v1.1.0"));
    assert_eq!(entry.skips, ["alpha-operator.v1.1.1"]);
    assert_eq!(entry.skip_range.as_deref(), Some(">=1.0.0 <1.2.0"));
    let dep = alpha
        .deprecation
        .as_ref()
        .expect("alpha's olm.deprecations");
    assert_eq!(dep.entries.len(), 2);
    // epsilon comes from a YAML file, with its package deprecation.
    let epsilon = c.package("epsilon-operator").expect("epsilon (YAML)");
    assert_eq!(epsilon.bundles.len(), 2);
    assert!(epsilon.deprecation.is_some());
    // Dependencies and APIs as the properties say.
    let beta = &c.package("beta-operator").unwrap().bundles["beta-operator.v2.1.0"];
    assert_eq!(beta.requires_packages[0].package_name, "alpha-operator");
    assert_eq!(beta.requires_packages[0].version_range, ">=1.2.0 <3.0.0");
    assert_eq!(beta.requires_gvks[0].kind, "Gadget");
    let gamma = &c.package("gamma-operator").unwrap().bundles["gamma-operator.v0.3.0"];
    assert_eq!(gamma.provides[0].kind, "Gadget");
    assert!(gamma.related_images.iter().any(|r| r.image == TAGGED_IMAGE));
    // Every bundle's raw object kept, with its olm.bundle.object.
    for content in c.packages.values() {
        for b in content.bundles.values() {
            let raw = b.raw.as_ref().expect("raw bundle").get();
            assert!(raw.contains("olm.bundle.object"), "{}", b.name);
            assert_eq!(b.image, f.bundle(&b.name).image);
        }
    }
}

#[test]
fn the_sqlite_catalog_lists_the_same_as_the_file_based_one() {
    let tmp = tempdir();
    let f = catalog_fixture::generate(&tmp.path().join("layout")).expect("generate");
    let fbc = fixture_fbc(&f);
    let sqlite = fixture_sqlite(&f);
    assert_eq!(
        catalog::list(&fbc, None).expect("list FBC"),
        catalog::list(&sqlite, None).expect("list SQLite")
    );
    for p in fbc.package_names() {
        assert_eq!(
            catalog::list(&fbc, Some(&p)).expect("FBC"),
            catalog::list(&sqlite, Some(&p)).expect("SQLite"),
            "{p}"
        );
    }
    // The same images per bundle (the bundle image and its related images).
    for (name, content) in &fbc.packages {
        for (b, bundle) in &content.bundles {
            let other = &sqlite.packages[name].bundles[b];
            let set = |x: &catalog::Bundle| -> BTreeSet<String> {
                x.related_images
                    .iter()
                    .map(|r| r.image.clone())
                    .chain([x.image.clone()])
                    .collect()
            };
            assert_eq!(set(bundle), set(other), "{b}");
            assert_eq!(bundle.provides, other.provides, "{b}");
            assert_eq!(bundle.requires_gvks, other.requires_gvks, "{b}");
        }
    }
}

/// The README's table (tests/src/catalogs.rs `rules`) is what ferry's selection keeps.
#[test]
fn the_selection_table_is_what_the_catalog_library_keeps() {
    let tmp = tempdir();
    let f = catalog_fixture::generate(&tmp.path().join("layout")).expect("generate");
    for rule in rules(FBC_CATALOG) {
        let got = select(fixture_fbc(&f), &rule.operator)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", rule.name));
        assert_eq!(
            Summary::of(&got.catalog),
            Summary::of_rule(&rule),
            "{}",
            rule.name
        );
        // The images of the selection: every bundle image and related image kept.
        let images: BTreeSet<String> = got.images.iter().map(|i| i.image.clone()).collect();
        assert_eq!(images, images_of(&f, rule.kept), "{}: images", rule.name);
        if rule
            .operator
            .packages
            .iter()
            .any(|p| p.name == "beta-operator")
            && !rule.operator.include_dependencies
        {
            assert_eq!(
                got.dependencies.len(),
                2,
                "{}: {:?}",
                rule.name,
                got.dependencies
            );
        }
    }
    for r in refusals(FBC_CATALOG) {
        let err = select(fixture_fbc(&f), &r.operator)
            .err()
            .unwrap_or_else(|| panic!("{}: accepted", r.name));
        for n in r.needles {
            assert!(err.contains(n), "{}: {n:?} not in {err}", r.name);
        }
    }
    let rule = sqlite_prune_rule(SQLITE_CATALOG);
    let got = select_sqlite(fixture_sqlite(&f), &rule.operator).expect("SQLite prune");
    assert_eq!(Summary::of(&got.catalog), Summary::of_rule(&rule));
    let err = select_sqlite(
        fixture_sqlite(&f),
        &OperatorSel::new(SQLITE_CATALOG)
            .packages(vec![PackageSel::new("alpha-operator").channel("fast")]),
    )
    .expect_err("channels on SQLite");
    assert!(
        err.contains("alpha-operator") && err.contains("SQLite"),
        "{err}"
    );
}

/// What the `--allow-missing` test stands on: a source without one related image answers
/// "manifest unknown" for it (by digest, through the API and to skopeo) and still serves
/// every other image; the tagged helper left out loses its tag too.
#[test]
fn a_source_without_an_image_does_not_serve_it_and_serves_the_others() {
    let tmp = tempdir();
    let f = catalog_fixture::generate(&tmp.path().join("layout")).expect("generate");
    let operand = f
        .bundle("zeta-operator.v1.0.0")
        .related
        .iter()
        .find(|r| r.contains("zeta-operand"))
        .expect("zeta's operand")
        .clone();
    let source = CatalogSource::start_without(&[&operand, TAGGED_IMAGE]);
    for image in &source.fixture.images {
        let served = source
            .registry
            .manifest(&image.path, &image.digest)
            .is_some();
        let left_out = image.reference == operand || image.reference == TAGGED_IMAGE;
        assert_eq!(served, !left_out, "{}", image.reference);
        let out = run(
            "skopeo",
            [
                "inspect".to_owned(),
                "--raw".to_owned(),
                "--tls-verify=false".to_owned(),
                format!("docker://{}", source.location(image)),
            ],
        );
        assert_eq!(
            out.status.success(),
            !left_out,
            "{}\n{}",
            image.reference,
            out.dump()
        );
    }
    assert!(source.registry.tags("fixture/tagged-helper").is_empty());
}
