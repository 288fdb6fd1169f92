//! The synthetic catalog every selection rule is tested against, and the tests that read
//! it from a tree, from YAML, through `.indexignore` and from a tar stream.
//!
//! Five packages:
//! - `alpha` (default `stable`): `stable` a.v1.0.0 ← a.v1.1.0 ← a.v1.2.0 (skips a.v1.1.1,
//!   which replaces a.v1.1.0) ← a.v1.3.0 (skipRange `>=1.0.0 <1.3.0`); `fast` a.v1.3.0 ←
//!   a.v2.0.0; `old` a.v0.9.0. Deprecated: bundle a.v1.0.0 and channel `old`. a.v2.0.0 has
//!   a related image by tag; the others by digest. Provides API `alpha.example.com/v1 Alpha`.
//! - `beta` (default `stable`): b.v1.0.0 ← b.v2.0.0, which needs package `gamma` `>=1.0.0 <2.0.0`.
//! - `gamma` (default `stable`): `stable` g.v1.0.0 ← g.v1.5.0 (provides
//!   `gamma.example.com/v1 Gamma`, needs package `epsilon` `>=2.0.0 <3.0.0`); `next` g.v2.0.0.
//! - `delta` (default `stable`): d.v0.1.0, which needs API `gamma.example.com/v1 Gamma`.
//! - `epsilon` (default `candidate`): `candidate` e.v3.0.0; `stable` e.v2.0.0; `fast`
//!   e.v2.0.0 ← e.v2.1.0.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::filter::{self, *};
use crate::model::*;
use crate::validate::ValidationError;
use crate::version::Range;
use crate::*;

fn digest(seed: &str) -> String {
    use std::fmt::Write;
    // Not a real hash: a stable 64-hex string per seed is all a reference needs.
    let mut hex = String::new();
    let mut x: u64 = 0xcbf29ce484222325;
    while hex.len() < 64 {
        for b in seed.bytes() {
            x = (x ^ b as u64).wrapping_mul(0x100000001b3);
        }
        write!(hex, "{x:016x}").unwrap();
    }
    format!("sha256:{}", &hex[..64])
}

fn package(name: &str, default: &str) -> Value {
    json!({"schema": "olm.package", "name": name, "defaultChannel": default,
           "icon": {"base64data": "iVBORw0KGgo=", "mediatype": "image/png"}})
}

fn channel(package: &str, name: &str, entries: Value) -> Value {
    json!({"schema": "olm.channel", "package": package, "name": name, "entries": entries})
}

fn bundle(
    package: &str,
    name: &str,
    version: &str,
    extra: Vec<Value>,
    related: Vec<Value>,
) -> Value {
    let image = format!("registry.example.com/{package}/bundle@{}", digest(name));
    let mut properties = vec![
        json!({"type": "olm.package", "value": {"packageName": package, "version": version}}),
        json!({"type": "olm.bundle.object", "value": {"data": "eyJraW5kIjoiQ2x1c3RlclNlcnZpY2VWZXJzaW9uIn0="}}),
    ];
    properties.extend(extra);
    let mut related_images = vec![
        json!({"name": "", "image": image}),
        json!({"name": "operator", "image": format!("registry.example.com/{package}/operator@{}", digest(&format!("op-{name}")))}),
    ];
    related_images.extend(related);
    json!({"schema": "olm.bundle", "name": name, "package": package, "image": image,
           "properties": properties, "relatedImages": related_images})
}

fn gvk(kind: &str, group: &str) -> Value {
    json!({"type": kind, "value": {"group": group, "version": "v1", "kind": group.split('.').next().unwrap().to_uppercase()}})
}

/// The catalog as one JSON stream per package: `(file, objects)`.
fn synthetic() -> Vec<(String, Vec<Value>)> {
    let alpha_api = gvk("olm.gvk", "alpha.example.com");
    let alpha = vec![
        package("alpha", "stable"),
        channel(
            "alpha",
            "stable",
            json!([
                {"name": "a.v1.0.0"},
                {"name": "a.v1.1.0", "replaces": "a.v1.0.0"},
                {"name": "a.v1.1.1", "replaces": "a.v1.1.0"},
                {"name": "a.v1.2.0", "replaces": "a.v1.1.0", "skips": ["a.v1.1.1"]},
                {"name": "a.v1.3.0", "replaces": "a.v1.2.0", "skipRange": ">=1.0.0 <1.3.0"},
            ]),
        ),
        channel(
            "alpha",
            "fast",
            json!([
                {"name": "a.v1.3.0"},
                {"name": "a.v2.0.0", "replaces": "a.v1.3.0"},
            ]),
        ),
        channel("alpha", "old", json!([{"name": "a.v0.9.0"}])),
        bundle(
            "alpha",
            "a.v0.9.0",
            "0.9.0",
            vec![alpha_api.clone()],
            vec![],
        ),
        bundle(
            "alpha",
            "a.v1.0.0",
            "1.0.0",
            vec![alpha_api.clone()],
            vec![],
        ),
        bundle(
            "alpha",
            "a.v1.1.0",
            "1.1.0",
            vec![alpha_api.clone()],
            vec![],
        ),
        bundle(
            "alpha",
            "a.v1.1.1",
            "1.1.1",
            vec![alpha_api.clone()],
            vec![],
        ),
        bundle(
            "alpha",
            "a.v1.2.0",
            "1.2.0",
            vec![alpha_api.clone()],
            vec![],
        ),
        bundle(
            "alpha",
            "a.v1.3.0",
            "1.3.0",
            vec![alpha_api.clone()],
            vec![],
        ),
        bundle(
            "alpha",
            "a.v2.0.0",
            "2.0.0",
            vec![alpha_api],
            vec![json!({"name": "helper", "image": "registry.example.com/alpha/helper:2.0"})],
        ),
        json!({"schema": "olm.deprecations", "package": "alpha", "entries": [
            {"reference": {"schema": "olm.bundle", "name": "a.v1.0.0"}, "message": "a.v1.0.0 is unsupported"},
            {"reference": {"schema": "olm.channel", "name": "old"}, "message": "use stable"},
        ]}),
    ];
    let beta = vec![
        package("beta", "stable"),
        channel(
            "beta",
            "stable",
            json!([
                {"name": "b.v1.0.0"},
                {"name": "b.v2.0.0", "replaces": "b.v1.0.0"},
            ]),
        ),
        bundle("beta", "b.v1.0.0", "1.0.0", vec![], vec![]),
        bundle(
            "beta",
            "b.v2.0.0",
            "2.0.0",
            vec![json!({"type": "olm.package.required",
            "value": {"packageName": "gamma", "versionRange": ">=1.0.0 <2.0.0"}})],
            vec![],
        ),
    ];
    let gamma = vec![
        package("gamma", "stable"),
        channel(
            "gamma",
            "stable",
            json!([
                {"name": "g.v1.0.0"},
                {"name": "g.v1.5.0", "replaces": "g.v1.0.0"},
            ]),
        ),
        channel("gamma", "next", json!([{"name": "g.v2.0.0"}])),
        bundle("gamma", "g.v1.0.0", "1.0.0", vec![], vec![]),
        bundle(
            "gamma",
            "g.v1.5.0",
            "1.5.0",
            vec![
                gvk("olm.gvk", "gamma.example.com"),
                json!({"type": "olm.package.required",
                    "value": {"packageName": "epsilon", "versionRange": ">=2.0.0 <3.0.0"}}),
            ],
            vec![],
        ),
        bundle("gamma", "g.v2.0.0", "2.0.0", vec![], vec![]),
    ];
    let delta = vec![
        package("delta", "stable"),
        channel("delta", "stable", json!([{"name": "d.v0.1.0"}])),
        bundle(
            "delta",
            "d.v0.1.0",
            "0.1.0",
            vec![gvk("olm.gvk.required", "gamma.example.com")],
            vec![],
        ),
    ];
    let epsilon = vec![
        package("epsilon", "candidate"),
        channel("epsilon", "candidate", json!([{"name": "e.v3.0.0"}])),
        channel("epsilon", "stable", json!([{"name": "e.v2.0.0"}])),
        channel(
            "epsilon",
            "fast",
            json!([
                {"name": "e.v2.0.0"},
                {"name": "e.v2.1.0", "replaces": "e.v2.0.0"},
            ]),
        ),
        bundle("epsilon", "e.v2.0.0", "2.0.0", vec![], vec![]),
        bundle("epsilon", "e.v2.1.0", "2.1.0", vec![], vec![]),
        bundle("epsilon", "e.v3.0.0", "3.0.0", vec![], vec![]),
        json!({"schema": "example.com.custom", "package": "epsilon", "note": "carried"}),
    ];
    vec![
        ("alpha/catalog.json".into(), alpha),
        ("beta/catalog.json".into(), beta),
        ("gamma/catalog.json".into(), gamma),
        ("delta/catalog.json".into(), delta),
        ("epsilon/catalog.json".into(), epsilon),
    ]
}

fn json_stream(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_json::to_string_pretty(o).unwrap() + "\n")
        .collect()
}

fn write_tree(root: &Path, files: &[(String, String)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// The synthetic catalog's files, relative to the configs root (shared with the catalog
/// image tests, which put them in layers).
pub(crate) fn synthetic_files() -> Vec<(String, String)> {
    synthetic()
        .into_iter()
        .map(|(p, o)| (p, json_stream(&o)))
        .collect()
}

fn load() -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &synthetic_files());
    read_dir(dir.path(), ReadOptions::default()).unwrap()
}

fn pkg(name: &str) -> PackageFilter {
    PackageFilter {
        name: name.into(),
        ..Default::default()
    }
}

fn range(min: Option<&str>, max: Option<&str>) -> Option<Range> {
    Some(Range::from_bounds(min, max).unwrap().unwrap())
}

fn run(f: Filter) -> Result<Filtered, FilterError> {
    filter::filter(load(), &f, FilterOptions::default())
}

/// What a selection kept: package → channel → entry names (sorted), plus the default.
/// package → (default channel, channel → entry names).
type Kept = BTreeMap<String, (String, BTreeMap<String, Vec<String>>)>;

/// An expected selection: (package, default channel, [(channel, entries)]).
type Expected<'a> = [(&'a str, &'a str, &'a [(&'a str, &'a [&'a str])])];

fn kept(c: &Catalog) -> Kept {
    c.packages
        .iter()
        .map(|(name, content)| {
            let channels = content
                .channels
                .iter()
                .map(|(cn, ch)| {
                    let mut e: Vec<String> = ch.entries.iter().map(|e| e.name.clone()).collect();
                    e.sort();
                    (cn.clone(), e)
                })
                .collect();
            (
                name.clone(),
                (content.package.default_channel.clone().unwrap(), channels),
            )
        })
        .collect()
}

fn expect(pairs: &Expected) -> Kept {
    pairs
        .iter()
        .map(|(p, d, chans)| {
            (
                p.to_string(),
                (
                    d.to_string(),
                    chans
                        .iter()
                        .map(|(c, e)| (c.to_string(), e.iter().map(|s| s.to_string()).collect()))
                        .collect(),
                ),
            )
        })
        .collect()
}

fn bundle_names(c: &Catalog, package: &str) -> Vec<String> {
    c.packages[package].bundles.keys().cloned().collect()
}

#[test]
fn reads_every_object() {
    let c = load();
    assert_eq!(
        c.package_names(),
        ["alpha", "beta", "delta", "epsilon", "gamma"]
    );
    let alpha = &c.packages["alpha"];
    assert_eq!(alpha.channels.len(), 3);
    assert_eq!(alpha.bundles.len(), 7);
    let b = &alpha.bundles["a.v2.0.0"];
    assert_eq!(b.version_text.as_deref(), Some("2.0.0"));
    assert_eq!(b.provides.len(), 1);
    assert!(b.raw.as_ref().unwrap().get().contains("olm.bundle.object"));
    assert_eq!(alpha.deprecation.as_ref().unwrap().entries.len(), 2);
    assert_eq!(
        c.packages["beta"].bundles["b.v2.0.0"].requires_packages[0].package_name,
        "gamma"
    );
    assert_eq!(
        c.packages["delta"].bundles["d.v0.1.0"].requires_gvks[0].kind,
        "GAMMA"
    );
    assert_eq!(c.others.len(), 1);
    assert!(validate(&c).is_empty(), "{:?}", validate(&c));
    // Listing does not need raw bundles.
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &synthetic_files());
    let lean = read_dir(
        dir.path(),
        ReadOptions {
            raw_bundles: RawBundles::None,
        },
    )
    .unwrap();
    assert!(lean.packages["alpha"].bundles["a.v1.0.0"].raw.is_none());
    assert!(matches!(write(&lean), Err(write::WriteError::NoRaw { .. })));
}

#[test]
fn no_packages_keeps_every_channel_head() {
    let f = run(Filter::default()).unwrap();
    assert!(!f.unchanged);
    assert_eq!(
        kept(&f.catalog),
        expect(&[
            (
                "alpha",
                "stable",
                &[
                    ("fast", &["a.v2.0.0"]),
                    ("old", &["a.v0.9.0"]),
                    ("stable", &["a.v1.3.0"])
                ]
            ),
            ("beta", "stable", &[("stable", &["b.v2.0.0"])]),
            ("delta", "stable", &[("stable", &["d.v0.1.0"])]),
            (
                "epsilon",
                "candidate",
                &[
                    ("candidate", &["e.v3.0.0"]),
                    ("fast", &["e.v2.1.0"]),
                    ("stable", &["e.v2.0.0"])
                ]
            ),
            (
                "gamma",
                "stable",
                &[("next", &["g.v2.0.0"]), ("stable", &["g.v1.5.0"])]
            ),
        ])
    );
    assert_eq!(
        bundle_names(&f.catalog, "alpha"),
        ["a.v0.9.0", "a.v1.3.0", "a.v2.0.0"]
    );
    // The head entry keeps its edges to bundles no longer there (as catalog-filter does).
    let stable = &f.catalog.packages["alpha"].channels["stable"].entries[0];
    assert_eq!(stable.replaces.as_deref(), Some("a.v1.2.0"));
    assert_eq!(stable.skip_range.as_deref(), Some(">=1.0.0 <1.3.0"));
    // Deprecations trimmed to what is kept: the channel `old` stays, bundle a.v1.0.0 goes.
    let d = f.catalog.packages["alpha"].deprecation.as_ref().unwrap();
    assert_eq!(d.entries.len(), 1);
    assert_eq!(d.entries[0].reference.name.as_deref(), Some("old"));
    // Dependencies all met by the heads: b.v2.0.0 by g.v1.5.0, d.v0.1.0 by its API.
    assert!(f.dependencies.is_empty(), "{:?}", f.dependencies);
    assert_eq!(f.catalog.others.len(), 1);
}

#[test]
fn full_without_packages_is_the_whole_catalog() {
    let f = run(Filter {
        full: true,
        packages: vec![],
    })
    .unwrap();
    assert!(f.unchanged);
    let all = load();
    assert_eq!(kept(&f.catalog), kept(&all));
    assert_eq!(write(&f.catalog).unwrap(), write(&all).unwrap());
}

#[test]
fn package_alone_keeps_its_heads_and_full_keeps_all() {
    let f = run(Filter {
        full: false,
        packages: vec![pkg("alpha")],
    })
    .unwrap();
    assert_eq!(
        kept(&f.catalog),
        expect(&[(
            "alpha",
            "stable",
            &[
                ("fast", &["a.v2.0.0"]),
                ("old", &["a.v0.9.0"]),
                ("stable", &["a.v1.3.0"])
            ]
        )])
    );
    let f = run(Filter {
        full: true,
        packages: vec![pkg("alpha")],
    })
    .unwrap();
    assert!(!f.unchanged);
    assert_eq!(f.catalog.package_names(), ["alpha"]);
    assert_eq!(
        bundle_names(&f.catalog, "alpha"),
        ["a.v0.9.0", "a.v1.0.0", "a.v1.1.0", "a.v1.1.1", "a.v1.2.0", "a.v1.3.0", "a.v2.0.0"]
    );
    assert_eq!(
        f.catalog.packages["alpha"]
            .deprecation
            .as_ref()
            .unwrap()
            .entries
            .len(),
        2
    );
    assert!(
        f.catalog.others.is_empty(),
        "epsilon's custom object goes with epsilon"
    );
}

#[test]
fn full_with_listed_channels_keeps_all_their_bundles() {
    let mut p = pkg("alpha");
    p.channels = vec![ChannelFilter {
        name: "fast".into(),
        range: None,
    }];
    let f = run(Filter {
        full: true,
        packages: vec![p],
    })
    .unwrap();
    assert_eq!(
        kept(&f.catalog),
        expect(&[("alpha", "fast", &[("fast", &["a.v1.3.0", "a.v2.0.0"])])])
    );
    assert_eq!(bundle_names(&f.catalog, "alpha"), ["a.v1.3.0", "a.v2.0.0"]);
}

#[test]
fn package_range_keeps_the_chain_segment_and_in_range_skips() {
    let mut p = pkg("alpha");
    p.range = range(Some("1.1"), Some("1.2.0"));
    let f = run(Filter {
        full: false,
        packages: vec![p],
    })
    .unwrap();
    // fast and old have nothing in range and are dropped; stable stays the default.
    assert_eq!(
        kept(&f.catalog),
        expect(&[(
            "alpha",
            "stable",
            &[("stable", &["a.v1.1.0", "a.v1.1.1", "a.v1.2.0"])]
        )])
    );
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    // Nothing deprecated is kept, so the deprecations object goes.
    assert!(f.catalog.packages["alpha"].deprecation.is_none());
}

#[test]
fn channel_range_keeps_out_of_range_bundles_a_head_needs_with_a_warning() {
    let mut p = pkg("alpha");
    p.channels = vec![ChannelFilter {
        name: "stable".into(),
        range: range(Some("1.1.1"), Some("1.1.1")),
    }];
    let f = run(Filter {
        full: false,
        packages: vec![p],
    })
    .unwrap();
    assert_eq!(
        kept(&f.catalog),
        expect(&[("alpha", "stable", &[("stable", &["a.v1.1.1", "a.v1.2.0"])])])
    );
    assert_eq!(
        f.warnings,
        [Warning::OutOfRange {
            package: "alpha".into(),
            channel: "stable".into(),
            bundle: "a.v1.2.0".into(),
            version: Some("1.2.0".into()),
            range: ">=1.1.1 <=1.1.1".into(),
        }]
    );
}

#[test]
fn max_version_alone_and_listed_channels() {
    let mut p = pkg("alpha");
    p.channels = vec![ChannelFilter {
        name: "fast".into(),
        range: range(None, Some("1.3.0")),
    }];
    let f = run(Filter {
        full: false,
        packages: vec![p],
    })
    .unwrap();
    // The only kept channel becomes the default (the original, stable, is not kept).
    assert_eq!(
        kept(&f.catalog),
        expect(&[("alpha", "fast", &[("fast", &["a.v1.3.0"])])])
    );
}

#[test]
fn range_rules_are_refused() {
    let mut p = pkg("alpha");
    p.range = range(Some("1.0.0"), None);
    p.channels = vec![ChannelFilter {
        name: "stable".into(),
        range: range(None, Some("2.0.0")),
    }];
    assert!(matches!(
        run(Filter { full: false, packages: vec![p] }),
        Err(FilterError::RangeOnBoth { package, channel }) if package == "alpha" && channel == "stable"
    ));
    let mut p = pkg("alpha");
    p.range = range(Some("1.0.0"), None);
    assert!(matches!(
        run(Filter {
            full: true,
            packages: vec![p]
        }),
        Err(FilterError::FullWithRange { .. })
    ));
    let mut p = pkg("alpha");
    p.range = range(Some("7.0.0"), None);
    let e = run(Filter {
        full: false,
        packages: vec![p],
    })
    .unwrap_err();
    assert!(matches!(e, FilterError::NothingLeft { .. }), "{e}");
    assert!(matches!(
        run(Filter {
            full: false,
            packages: vec![pkg("beta"), pkg("beta")]
        }),
        Err(FilterError::DuplicatePackage { .. })
    ));
}

#[test]
fn missing_package_or_channel_names_what_the_catalog_has() {
    let e = run(Filter {
        full: false,
        packages: vec![pkg("alpha"), pkg("zeta")],
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"the catalog has no package ["zeta"]; it has ["alpha", "beta", "delta", "epsilon", "gamma"]"#
    );
    let mut p = pkg("gamma");
    p.channels = vec![ChannelFilter {
        name: "beta".into(),
        range: None,
    }];
    let e = run(Filter {
        full: false,
        packages: vec![p],
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"package "gamma" has no channel "beta"; it has ["next", "stable"]"#
    );
}

#[test]
fn default_channel_rules() {
    let chans = |names: &[&str]| -> Vec<ChannelFilter> {
        names
            .iter()
            .map(|n| ChannelFilter {
                name: n.to_string(),
                range: None,
            })
            .collect()
    };
    // Two channels kept, the default (candidate) not among them: an error that says what to do.
    let mut p = pkg("epsilon");
    p.channels = chans(&["stable", "fast"]);
    let e = run(Filter {
        full: false,
        packages: vec![p.clone()],
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"package "epsilon": the default channel "candidate" was filtered out; set defaultChannel to one of the kept channels ["fast", "stable"]"#
    );
    p.default_channel = Some("fast".into());
    let f = run(Filter {
        full: false,
        packages: vec![p.clone()],
    })
    .unwrap();
    assert_eq!(
        kept(&f.catalog),
        expect(&[(
            "epsilon",
            "fast",
            &[("fast", &["e.v2.1.0"]), ("stable", &["e.v2.0.0"])]
        )])
    );
    p.default_channel = Some("candidate".into());
    assert!(matches!(
        run(Filter {
            full: false,
            packages: vec![p]
        }),
        Err(FilterError::DefaultChannelNotKept { .. })
    ));
    // One channel kept: it becomes the default.
    let mut p = pkg("epsilon");
    p.channels = chans(&["stable"]);
    let f = run(Filter {
        full: false,
        packages: vec![p],
    })
    .unwrap();
    assert_eq!(
        kept(&f.catalog),
        expect(&[("epsilon", "stable", &[("stable", &["e.v2.0.0"])])])
    );
}

#[test]
fn dependencies_reported_and_included() {
    let only = |name: &str| Filter {
        full: false,
        packages: vec![pkg(name)],
    };
    let f = run(only("beta")).unwrap();
    assert_eq!(f.dependencies.len(), 1);
    let d = &f.dependencies[0];
    assert_eq!(
        d.needed_by,
        BundleId {
            package: "beta".into(),
            bundle: "b.v2.0.0".into()
        }
    );
    assert_eq!(
        d.requirement.to_string(),
        r#"package "gamma" >=1.0.0 <2.0.0"#
    );
    assert!(matches!(d.resolution, Resolution::Unmet { .. }));
    assert_eq!(f.catalog.package_names(), ["beta"]);

    let opts = FilterOptions {
        include_dependencies: true,
    };
    let f = filter::filter(load(), &only("beta"), opts).unwrap();
    assert_eq!(
        f.dependencies[0].resolution,
        Resolution::Added {
            package: "gamma".into(),
            channel: "stable".into(),
            bundle: "g.v1.5.0".into()
        }
    );
    // And what the added bundle needs in turn: epsilon 2.x, which the default channel's
    // head (e.v3.0.0) is not; fast's head (e.v2.1.0) is, and becomes the default.
    assert_eq!(
        f.dependencies[1],
        Dependency {
            needed_by: BundleId {
                package: "gamma".into(),
                bundle: "g.v1.5.0".into()
            },
            requirement: Requirement::Package(PackageRequired {
                package_name: "epsilon".into(),
                version_range: ">=2.0.0 <3.0.0".into()
            }),
            resolution: Resolution::Added {
                package: "epsilon".into(),
                channel: "fast".into(),
                bundle: "e.v2.1.0".into()
            },
        }
    );
    assert_eq!(f.dependencies.len(), 2);
    assert_eq!(
        kept(&f.catalog),
        expect(&[
            ("beta", "stable", &[("stable", &["b.v2.0.0"])]),
            ("epsilon", "fast", &[("fast", &["e.v2.1.0"])]),
            ("gamma", "stable", &[("stable", &["g.v1.5.0"])]),
        ])
    );
    // An API dependency is met by the channel head that provides it.
    let f = filter::filter(load(), &only("delta"), opts).unwrap();
    assert_eq!(f.dependencies.len(), 2);
    assert!(matches!(&f.dependencies[0].requirement, Requirement::Gvk(g) if g.kind == "GAMMA"));
    assert_eq!(
        f.dependencies[0].resolution,
        Resolution::Added {
            package: "gamma".into(),
            channel: "stable".into(),
            bundle: "g.v1.5.0".into()
        }
    );
    // Nothing satisfies it when gamma's stable channel is filtered to g.v1.0.0 only: its
    // head cannot be added beside the kept segment.
    let mut g = pkg("gamma");
    g.channels = vec![ChannelFilter {
        name: "stable".into(),
        range: range(None, Some("1.0.0")),
    }];
    let f = filter::filter(
        load(),
        &Filter {
            full: false,
            packages: vec![pkg("delta"), g],
        },
        opts,
    )
    .unwrap();
    assert!(matches!(
        f.dependencies[0].resolution,
        Resolution::Unmet { .. }
    ));
    assert_eq!(bundle_names(&f.catalog, "gamma"), ["g.v1.0.0"]);
}

#[test]
fn images_are_bundles_and_related_images_deduplicated() {
    let f = run(Filter {
        full: false,
        packages: vec![pkg("alpha")],
    })
    .unwrap();
    let images: Vec<&str> = f.images.iter().map(|i| i.image.as_str()).collect();
    // 3 bundles, each its bundle image (also listed as a related image) and its operator,
    // plus one helper by tag.
    assert_eq!(images.len(), 7);
    let mut sorted = images.clone();
    sorted.sort();
    assert_eq!(images, sorted);
    let tagged: Vec<&ImageUse> = f.images.iter().filter(|i| !i.by_digest).collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].image, "registry.example.com/alpha/helper:2.0");
    assert_eq!(
        tagged[0].needed_by,
        [BundleId {
            package: "alpha".into(),
            bundle: "a.v2.0.0".into()
        }]
    );
    let bundle_image = format!("registry.example.com/alpha/bundle@{}", digest("a.v1.3.0"));
    assert!(images.contains(&bundle_image.as_str()));
}

fn channel_of(entries: Value) -> Channel {
    serde_json::from_value(json!({"package": "p", "name": "c", "entries": entries})).unwrap()
}

#[test]
fn validation_errors_name_package_channel_and_bundle() {
    use crate::validate::channel_head;
    let two = channel_of(json!([{"name": "x"}, {"name": "y"}]));
    assert_eq!(
        channel_head(&two).unwrap_err()[0].to_string(),
        r#"package "p", channel "c": more than one head: ["x", "y"] (each is replaced or skipped by no other entry)"#
    );
    let cycle = channel_of(json!([
        {"name": "h", "replaces": "x"},
        {"name": "x", "replaces": "y"},
        {"name": "y", "replaces": "x"},
    ]));
    assert_eq!(
        channel_head(&cycle).unwrap_err(),
        [ValidationError::Cycle {
            package: "p".into(),
            channel: "c".into(),
            bundles: vec!["x".into(), "y".into()]
        }]
    );
    let no_head =
        channel_of(json!([{"name": "x", "replaces": "y"}, {"name": "y", "replaces": "x"}]));
    assert!(matches!(
        channel_head(&no_head).unwrap_err()[0],
        ValidationError::NoHead { .. }
    ));
    let empty = channel_of(json!([]));
    assert!(matches!(
        channel_head(&empty).unwrap_err()[0],
        ValidationError::NoEntries { .. }
    ));
    let itself = channel_of(json!([{"name": "x", "skips": ["x"]}]));
    assert!(channel_head(&itself)
        .unwrap_err()
        .iter()
        .any(|e| matches!(e, ValidationError::SelfEdge { bundle, .. } if bundle == "x")));
    // A replaces to a bundle outside the channel is a tail, not an error.
    let tail = channel_of(json!([{"name": "x", "replaces": "gone"}]));
    assert_eq!(channel_head(&tail).unwrap(), "x");

    // An entry without its bundle, and a default channel that is not there.
    let mut c = load();
    let alpha = c.packages.get_mut("alpha").unwrap();
    alpha.bundles.remove("a.v1.1.1");
    alpha.package.default_channel = Some("beta".into());
    let errors = validate(&c);
    assert!(errors.contains(&ValidationError::MissingBundle {
        package: "alpha".into(),
        channel: "stable".into(),
        bundle: "a.v1.1.1".into()
    }));
    assert!(errors.iter().any(|e| e.to_string()
        == r#"package "alpha": the default channel "beta" is not in the catalog (it has ["fast", "old", "stable"])"#));
    // And filtering a catalog with an invalid channel says which.
    let mut c = load();
    c.packages
        .get_mut("gamma")
        .unwrap()
        .channels
        .get_mut("stable")
        .unwrap()
        .entries[0]
        .replaces = Some("g.v1.5.0".into());
    let e = filter::filter(c, &Filter::default(), FilterOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"package "gamma", channel "stable""#),
        "{e}"
    );
}

fn to_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| format!("---\n{}", serde_norway::to_string(o).unwrap()))
        .collect()
}

#[test]
fn yaml_and_json_read_alike_and_write_the_same_bytes() {
    let json_dir = tempfile::tempdir().unwrap();
    write_tree(json_dir.path(), &synthetic_files());
    // The same catalog: alpha in YAML (.yaml), beta as .yml, the rest in one JSON file in
    // another order, with a name opm would also read (sniffed).
    let mut files = Vec::new();
    let mut rest = Vec::new();
    for (path, objects) in synthetic() {
        match path.as_str() {
            "alpha/catalog.json" => files.push(("alpha.yaml".to_string(), to_yaml(&objects))),
            "beta/catalog.json" => files.push(("b/beta.yml".to_string(), to_yaml(&objects))),
            _ => rest.extend(objects.into_iter().rev()),
        }
    }
    files.push(("z/all".to_string(), json_stream(&rest)));
    let yaml_dir = tempfile::tempdir().unwrap();
    write_tree(yaml_dir.path(), &files);
    let a = read_dir(json_dir.path(), ReadOptions::default()).unwrap();
    let b = read_dir(yaml_dir.path(), ReadOptions::default()).unwrap();
    assert_eq!(kept(&a), kept(&b));
    // Raw bundles from YAML are JSON re-encodings; from JSON the bytes as read. Both parse
    // to the same value.
    let raw = |c: &Catalog| -> Value {
        serde_json::from_str(
            c.packages["alpha"].bundles["a.v2.0.0"]
                .raw
                .as_ref()
                .unwrap()
                .get(),
        )
        .unwrap()
    };
    assert_eq!(raw(&a), raw(&b));
    // The JSON tree's bytes are carried exactly.
    let written = write(&a).unwrap();
    let alpha = written
        .iter()
        .find(|f| f.path == "configs/alpha/catalog.json")
        .unwrap();
    let original = serde_json::to_string_pretty(&synthetic()[0].1[6]).unwrap();
    assert!(String::from_utf8_lossy(&alpha.bytes).contains(&original));
}

#[test]
fn write_is_deterministic_and_reads_back() {
    let a = write(&load()).unwrap();
    let b = write(&load()).unwrap();
    assert_eq!(a, b);
    let paths: Vec<&str> = a.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "configs/alpha/catalog.json",
            "configs/beta/catalog.json",
            "configs/delta/catalog.json",
            "configs/epsilon/catalog.json",
            "configs/gamma/catalog.json"
        ]
    );
    // Written, read back, written again: the same bytes.
    let dir = tempfile::tempdir().unwrap();
    for f in &a {
        let p = dir.path().join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &f.bytes).unwrap();
    }
    let again = read_dir(&dir.path().join("configs"), ReadOptions::default()).unwrap();
    assert_eq!(write(&again).unwrap(), a);
    // Object order: package, channels by name, bundles by name, deprecations.
    let text = String::from_utf8(a[0].bytes.clone()).unwrap();
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} not written"));
    assert!(at(r#""schema": "olm.package""#) < at(r#""name": "fast""#));
    assert!(at(r#""name": "fast""#) < at(r#""name": "old""#));
    assert!(at(r#""name": "old""#) < at(r#""name": "a.v0.9.0""#));
    assert!(at(r#""name": "a.v2.0.0""#) < at(r#""schema": "olm.deprecations""#));
    // A selection writes only what it kept.
    let f = run(Filter {
        full: false,
        packages: vec![pkg("gamma")],
    })
    .unwrap();
    let files = write(&f.catalog).unwrap();
    assert_eq!(files.len(), 1);
    let text = String::from_utf8_lossy(&files[0].bytes);
    assert!(text.contains(r#""name": "g.v1.5.0""#));
    assert!(
        !text.contains(r#""name": "g.v1.0.0""#),
        "only the head's replaces names it"
    );
}

#[test]
fn package_names_that_are_not_directory_names_are_refused() {
    // `.wh.*`: in a layer, configs/.wh.alpha/ is a whiteout of configs/alpha to every
    // container runtime, not the directory of a package.
    for name in ["../escape", ".wh.alpha", ".wh..wh..opq"] {
        let mut c = load();
        let mut content = c.packages.remove("beta").unwrap();
        content.package.name = name.into();
        c.packages.insert(name.into(), content);
        assert!(
            matches!(write(&c), Err(write::WriteError::PackageName { ref package }) if package == name),
            "{name}"
        );
    }
}

#[test]
fn index_ignore_excludes_files_relative_to_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = synthetic_files();
    files.push((
        "alpha/README.md".into(),
        "# Notes\nnot: [a catalog\n".into(),
    ));
    files.push(("alpha/.indexignore".into(), "*.md\nscratch/\n".into()));
    files.push(("alpha/scratch/x.json".into(), "{ broken".into()));
    // Ignored at the root, but only relative to it: beta/catalog.json stays.
    files.push((".indexignore".into(), "/catalog.json\n".into()));
    files.push(("catalog.json".into(), "not json".into()));
    write_tree(dir.path(), &files);
    let c = read_dir(dir.path(), ReadOptions::default()).unwrap();
    assert_eq!(c.packages.len(), 5);
    // Without the ignore file the stray file is read, and refused with its location.
    std::fs::remove_file(dir.path().join("alpha/.indexignore")).unwrap();
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("catalog file alpha/README.md, object 1 (line 3): not YAML"),
        "{e}"
    );
}

#[test]
fn errors_name_file_object_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = json_stream(&synthetic()[1].1);
    write_tree(
        dir.path(),
        &[(
            "beta.json".into(),
            format!("{good}{{\"schema\": \"olm.bundle\", \"name\": 7}}\n"),
        )],
    );
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            == format!(
                "catalog file beta.json, object 5 (line {}): not an olm.bundle: invalid type: integer `7`, expected a string",
                good.lines().count() + 1
            ),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[(
            "x.yaml".into(),
            "---\nschema: olm.package\nname: x\n---\nschema: [\n".into(),
        )],
    );
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&e, ReadError::Yaml { at, .. } if at.object == 2 && at.line.is_some()),
        "{e}"
    );

    // Within a multi-line object, the line is the one serde_json found the problem on.
    let dir = tempfile::tempdir().unwrap();
    let text = "{\"schema\":\"olm.package\",\"name\":\"p\"}\n{\n  \"schema\": \"olm.bundle\",\n  \"name\": 7\n}\n";
    write_tree(dir.path(), &[("x.json".into(), text.into())]);
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "catalog file x.json, object 2 (line 4): not an olm.bundle: invalid type: integer `7`"
        ),
        "{e}"
    );

    // A document that parses but is not a catalog object: placed by the line it starts on.
    for (text, line) in [
        ("schema: olm.package\nname: x\n---\nname: y\n", 3),
        (
            "# header\n---\nschema: olm.package\nname: x\n--- \nname: y\n",
            5,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path(), &[("x.yml".into(), text.into())]);
        let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("catalog file x.yml, object 2 (line {line}): the object has no \"schema\"")
        );
    }

    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("x.json".into(), "{\"name\": \"x\"}".into())]);
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "catalog file x.json, object 1 (line 1): the object has no \"schema\""
    );

    let dir = tempfile::tempdir().unwrap();
    let beta = json_stream(&synthetic()[1].1);
    write_tree(
        dir.path(),
        &[("a.json".into(), beta.clone()), ("b.json".into(), beta)],
    );
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"catalog file b.json, object 1 (line 1): a second olm.package "beta" (the first is in a.json, object 1 (line 1))"#
    );

    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("c.json".into(), json_stream(&synthetic()[1].1[1..]))],
    );
    let e = read_dir(dir.path(), ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, ReadError::NoPackage { ref package, .. } if package == "beta"),
        "{e}"
    );
}

fn tar_of(files: &[(String, String)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        // The name written as given, `..` included (a hostile layer's), which tar's
        // path setters refuse.
        assert!(path.len() < 100);
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn tar_reader_takes_only_the_configs_dir() {
    let mut files: Vec<(String, String)> = synthetic_files()
        .into_iter()
        .rev()
        .map(|(p, t)| (format!("configs/{p}"), t))
        .collect();
    files.push(("etc/passwd".into(), "root:x:0:0".into()));
    files.push(("tmp/cache/db.json".into(), "{ not read".into()));
    files.push(("configs/alpha/notes.txt".into(), "ignored {".into()));
    // The .indexignore comes after the file it excludes.
    files.push(("configs/alpha/.indexignore".into(), "*.txt\n".into()));
    files.push(("configs/.wh.stale".into(), String::new()));
    files.push(("configs/../configs/x.json".into(), "{ climbs out".into()));
    // A path written twice: the later entry is the file, as extraction leaves it.
    files.insert(
        0,
        ("configs/gamma/catalog.json".into(), "{ overwritten".into()),
    );
    let layer = tar_of(&files);
    let c = read_tar(&layer[..], "/configs", ReadOptions::default()).unwrap();
    assert_eq!(kept(&c), kept(&load()));
    assert_eq!(write(&c).unwrap(), write(&load()).unwrap());
    // A link in the catalog is refused by name.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "./configs/x.json", "/etc/passwd")
        .unwrap();
    let layer = b.into_inner().unwrap();
    let e = read_tar(&layer[..], "configs", ReadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "catalog file x.json: a link in the catalog tree: ferry reads regular files only (replace it with the file it points to)"
    );
    // So is a link in place of the catalog directory itself (it read as no package).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "configs", "/etc").unwrap();
    let layer = b.into_inner().unwrap();
    let e = read_tar(&layer[..], "/configs", ReadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "catalog file /configs itself: a link in the catalog tree: ferry reads regular files only (replace it with the file it points to)"
    );
}

#[test]
fn listing_shows_heads_versions_and_bundles() {
    let c = load();
    let l = list(&c, None).unwrap();
    assert_eq!(l.packages.len(), 5);
    assert!(l.bundles.is_none());
    let l = list(&c, Some("alpha")).unwrap();
    let stable = &l.packages[0].channels[2];
    assert_eq!(stable.name, "stable");
    assert_eq!(stable.head.as_deref(), Some("a.v1.3.0"));
    assert_eq!(
        stable.versions,
        ["1.0.0", "1.1.0", "1.1.1", "1.2.0", "1.3.0"]
    );
    let bundles = l.bundles.as_ref().unwrap();
    assert_eq!(bundles.len(), 7);
    assert_eq!(bundles[5].name, "a.v1.3.0");
    assert_eq!(bundles[5].channels, ["fast", "stable"]);
    let v: Value = serde_json::to_value(&l).unwrap();
    assert_eq!(v["packages"][0]["defaultChannel"], "stable");
    assert_eq!(v["bundles"][6]["version"], "2.0.0");
    let e = list(&c, Some("zeta")).unwrap_err();
    assert!(e
        .to_string()
        .contains(r#"it has ["alpha", "beta", "delta", "epsilon", "gamma"]"#));
}

#[test]
fn from_operator_maps_min_and_max_as_oc_mirror() {
    let yaml = r#"
apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  operators:
  - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.18
    packages:
    - name: alpha
      channels:
      - name: stable
        minVersion: "1.1"
        maxVersion: 1.2.0
    - name: epsilon
      defaultChannel: fast
      channels:
      - name: fast
      - name: stable
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("isc.yaml");
    std::fs::write(&path, yaml).unwrap();
    let set = imageset::ImageSet::from_file(&path).unwrap();
    let op = &set.config.mirror.operators[0];
    let f = Filter::from_operator(op).unwrap();
    assert_eq!(
        f.packages[0].channels[0].range.as_ref().unwrap().as_str(),
        ">=1.1 <=1.2.0"
    );
    let out = filter::filter(load(), &f, FilterOptions::default()).unwrap();
    assert_eq!(
        kept(&out.catalog),
        expect(&[
            (
                "alpha",
                "stable",
                &[("stable", &["a.v1.1.0", "a.v1.1.1", "a.v1.2.0"])]
            ),
            (
                "epsilon",
                "fast",
                &[("fast", &["e.v2.1.0"]), ("stable", &["e.v2.0.0"])]
            ),
        ])
    );
}

#[test]
fn two_passes_keep_raw_only_for_the_selection_and_write_the_same() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &synthetic_files());
    let f = Filter {
        full: false,
        packages: vec![pkg("alpha"), pkg("beta")],
    };
    let lean = read_dir(
        dir.path(),
        ReadOptions {
            raw_bundles: RawBundles::None,
        },
    )
    .unwrap();
    let mut selected = filter::filter(lean, &f, FilterOptions::default())
        .unwrap()
        .catalog;
    assert!(write(&selected).is_err(), "no raw bundles yet");
    fill_raw_dir(dir.path(), &mut selected).unwrap();
    let whole = filter::filter(load(), &f, FilterOptions::default()).unwrap();
    assert_eq!(write(&selected).unwrap(), write(&whole.catalog).unwrap());

    // The same from a layer.
    let layer = tar_of(
        &synthetic_files()
            .into_iter()
            .map(|(p, t)| (format!("configs/{p}"), t))
            .collect::<Vec<_>>(),
    );
    let lean = read_tar(
        &layer[..],
        "/configs",
        ReadOptions {
            raw_bundles: RawBundles::None,
        },
    )
    .unwrap();
    let mut selected = filter::filter(lean, &f, FilterOptions::default())
        .unwrap()
        .catalog;
    fill_raw_tar(&layer[..], "/configs", &mut selected).unwrap();
    assert_eq!(write(&selected).unwrap(), write(&whole.catalog).unwrap());

    // Only: a predicate picks which bundles keep theirs.
    let only = |p: &str, _: &str| p == "beta";
    let c = read_dir(
        dir.path(),
        ReadOptions {
            raw_bundles: RawBundles::Only(&only),
        },
    )
    .unwrap();
    assert!(c.packages["beta"].bundles.values().all(|b| b.raw.is_some()));
    assert!(c.packages["alpha"]
        .bundles
        .values()
        .all(|b| b.raw.is_none()));
}

#[test]
fn a_range_over_a_bundle_whose_version_is_not_semver_names_it() {
    let mut c = load();
    c.packages
        .get_mut("gamma")
        .unwrap()
        .bundles
        .get_mut("g.v1.0.0")
        .unwrap()
        .version_text = Some("1.0".into());
    let mut g = pkg("gamma");
    g.range = range(Some("1.0.0"), None);
    let f = Filter {
        full: false,
        packages: vec![g],
    };
    let e = filter::filter(c, &f, FilterOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"package "gamma", bundle "g.v1.0.0": version "1.0" is not semver, so the version range cannot be applied"#
    );
    // Without a range the version is not needed.
    let mut c = load();
    c.packages
        .get_mut("gamma")
        .unwrap()
        .bundles
        .get_mut("g.v1.0.0")
        .unwrap()
        .version_text = Some("1.0".into());
    assert!(filter::filter(
        c,
        &Filter {
            full: false,
            packages: vec![pkg("gamma")]
        },
        FilterOptions::default()
    )
    .is_ok());
}

/// A layer's catalog file is the registry's: one endless JSON object, a huge YAML file or
/// `.indexignore` (what a gzip bomb unpacks to) is refused at its bound, naming the file,
/// instead of being held whole in memory.
#[test]
fn endless_catalog_files_are_refused_at_their_bound() {
    use std::io::Read;
    // A tar entry of `claimed` bytes: `head`, then `fill` repeated (streamed, never held).
    fn entry(path: &str, claimed: u64, head: &'static [u8], fill: u8) -> impl Read {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_mode(0o644);
        h.set_size(claimed);
        h.set_cksum();
        std::io::Cursor::new(h.as_bytes().to_vec())
            .chain(head)
            .chain(std::io::repeat(fill).take(claimed - head.len() as u64))
            // The padding to a block, and the two zero blocks that end an archive.
            .chain(std::io::repeat(0).take((512 - claimed % 512) % 512 + 1024))
    }
    let big = fbc::OBJECT_LIMIT as u64 + (1 << 20);
    let e = read_tar(
        entry(
            "configs/alpha/catalog.json",
            big,
            br#"{"schema":"olm.package","name":""#,
            b'a',
        ),
        "/configs",
        ReadOptions::default(),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("alpha/catalog.json, object 1")
            && text.contains(&format!("longer than {} bytes", fbc::OBJECT_LIMIT)),
        "{text}"
    );

    let big = fbc::YAML_LIMIT + 1;
    let e = read_tar(
        entry("configs/alpha/catalog.yaml", big, b"", b'#'),
        "/configs",
        ReadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, fbc::ReadError::TooLarge { file, .. } if file == "alpha/catalog.yaml"),
        "{e}"
    );

    let big = fbc::INDEX_IGNORE_LIMIT + 1;
    let e = read_tar(
        entry("configs/.indexignore", big, b"", b'#'),
        "/configs",
        ReadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, fbc::ReadError::TooLarge { file, .. } if file == ".indexignore"),
        "{e}"
    );
}

/// Deep nesting in a registry's catalog file is never a crash, and deep YAML flow
/// collections (whose parse time grows with the square of the depth: 40,000 levels took
/// seconds, a 64 MiB file hours) are refused at once, naming the file and the line.
#[test]
fn deeply_nested_catalog_files_are_read_or_refused_at_once() {
    let depth = 200_000;
    let json = format!(
        "{{\"schema\":\"olm.package\",\"name\":\"a\",\"x\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let root = tempfile::tempdir().unwrap();
    write_tree(root.path(), &[("a/catalog.json".to_string(), json)]);
    // serde_json skips what it does not keep without recursing.
    let c = read_dir(root.path(), ReadOptions::default()).unwrap();
    assert_eq!(c.package_names(), ["a"]);

    // Comments and quoted scalars cannot hide the brackets that nest.
    let yaml = format!(
        "schema: olm.package\nname: a\nx: {}\n",
        "[ ']' , # ]]\n".repeat(depth)
    );
    let root = tempfile::tempdir().unwrap();
    write_tree(root.path(), &[("a/catalog.yaml".to_string(), yaml)]);
    let started = std::time::Instant::now();
    let e = read_dir(root.path(), ReadOptions::default()).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let text = e.to_string();
    assert!(
        text.contains("a/catalog.yaml, object 1 (line 1003)")
            && text.contains("nested more than 1000"),
        "{text}"
    );

    // Brackets in quoted scalars, comments and block text are no nesting.
    let yaml = format!(
        "schema: olm.package\nname: a\n# {b}\ndescription: \"{b}\"\nother: '{b}'\ntext: |\n  {b}\nskips: [a, 'b]', \"c[\"]\n",
        b = "[".repeat(5000)
    );
    let root = tempfile::tempdir().unwrap();
    write_tree(root.path(), &[("a/catalog.yaml".to_string(), yaml)]);
    let c = read_dir(root.path(), ReadOptions::default()).unwrap();
    assert_eq!(c.package_names(), ["a"]);
}
