//! The catalog tests' kit (issue 12): the operator-catalog fixture
//! (`test_support::catalog_fixture`, fixtures/README.md "Operator catalogs") pushed by
//! skopeo into a real docker-registry that stands for `registry.redhat.io` through a
//! registries.conf; ImageSetConfigurations with `mirror.operators`; the table of what each
//! selection rule keeps ([`rules`], the README's table); and a reader of catalog images
//! in an OCI layout (the pull cache) or a registry, down to the catalog their layer holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
pub use test_support::catalog_fixture::{
    self, Fixture, FixtureBundle, FixtureImage, CONFIGS_LABEL, DATABASE_LABEL, FBC_CATALOG,
    REGISTRY, SQLITE_CATALOG, TAGGED_IMAGE,
};

use crate::registry::Registry;
use crate::source::write_registries_conf;
use crate::{assert_ok, run, tempdir};

// ---------------------------------------------------------------------------------------
// The fixture in a registry

/// A docker-registry holding the fixture's catalogs, bundle images and related images
/// under `fixture/…` (what `registry.redhat.io/fixture/…` names through
/// [`CatalogSource::registries_conf`]).
pub struct CatalogSource {
    pub registry: Registry,
    pub fixture: Fixture,
    /// References (as written) deliberately not pushed.
    pub left_out: Vec<String>,
    _layout: TempDir,
}

impl CatalogSource {
    /// Generates the fixture and pushes every image of it.
    pub fn start() -> CatalogSource {
        CatalogSource::start_without(&[])
    }

    /// The same, leaving out the images whose reference (as written) is in `left_out`.
    ///
    /// skopeo pushes the fixture once per fixture content into a registry whose storage is
    /// then kept under the target directory ([`storage_snapshot`]); each source is a fresh
    /// registry given a copy of that storage (distribution's filesystem driver reads its
    /// files on every request), so a test starts in a fraction of a second instead of
    /// fifty pushes. Images left out lose their revision link (and tag), as a registry
    /// that never had them answers: manifest unknown.
    pub fn start_without(left_out: &[&str]) -> CatalogSource {
        let dir = tempdir();
        let fixture = catalog_fixture::generate(&dir.path().join("layout"))
            .unwrap_or_else(|e| panic!("generate the catalog fixture: {e}"));
        for r in left_out {
            fixture.image(r);
        }
        let snapshot = storage_snapshot(&fixture);
        let registry = Registry::plain();
        let out = run(
            "cp",
            [
                "-a".to_owned(),
                format!("{}/.", snapshot.display()),
                registry.storage().display().to_string(),
            ],
        );
        assert_ok(
            &out,
            "copy the pushed fixture's storage into a fresh registry",
        );
        for r in left_out {
            let image = fixture.image(r);
            let manifests = registry
                .storage()
                .join("docker/registry/v2/repositories")
                .join(&image.path)
                .join("_manifests");
            let revision = manifests.join("revisions/sha256").join(&image.digest[7..]);
            fs::remove_dir_all(&revision)
                .unwrap_or_else(|e| panic!("remove {}: {e}", revision.display()));
            if let Some(tag) = &image.tag {
                fs::remove_dir_all(manifests.join("tags").join(tag)).expect("remove the tag");
            }
        }
        CatalogSource {
            registry,
            fixture,
            left_out: left_out.iter().map(|s| s.to_string()).collect(),
            _layout: dir,
        }
    }

    /// Where the registry keeps `image`: `127.0.0.1:PORT/fixture/x@sha256:…` or `:tag`.
    pub fn location(&self, image: &FixtureImage) -> String {
        location_in(&self.registry.host(), image)
    }

    /// A registries.conf sending `registry.redhat.io` to this registry (plain HTTP).
    pub fn registries_conf(&self, path: &Path) -> PathBuf {
        write_registries_conf(path, &[(REGISTRY, &self.registry.host())])
    }
}

/// The storage of a registry into which skopeo pushed every image of `fixture`, made once
/// per fixture content (the key hashes every digest) under `<target>/tmp/`, written
/// beside and renamed into place when whole, so concurrent test processes share it.
pub fn storage_snapshot(fixture: &Fixture) -> PathBuf {
    let all: Vec<&FixtureImage> = fixture
        .images
        .iter()
        .chain([&fixture.fbc, &fixture.sqlite])
        .collect();
    let key = test_support::registry::sha256_hex(
        all.iter()
            .map(|i| format!("{} {}\n", i.reference, i.digest))
            .collect::<String>()
            .as_bytes(),
    );
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => crate::workspace().join(t),
        None => crate::workspace().join("target"),
    };
    let root = target.join("tmp");
    let dest = root.join(format!("catalog-fixture-storage-{}", &key[7..23]));
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if dest.join("docker").is_dir() {
        return dest;
    }
    let registry = Registry::plain();
    let host = registry.host();
    let pushes: Vec<(String, String)> = all
        .iter()
        .map(|i| (i.ref_name.clone(), location_in(&host, i)))
        .collect();
    push_all(&fixture.layout, &pushes);
    fs::create_dir_all(&root).expect("mkdir target/tmp");
    let partial = root.join(format!(
        ".catalog-fixture-storage-{}.{}.partial",
        &key[7..23],
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&partial);
    let out = run(
        "cp",
        [
            "-a".to_owned(),
            registry.storage().display().to_string(),
            partial.display().to_string(),
        ],
    );
    assert_ok(&out, "keep the pushed fixture's storage");
    if fs::rename(&partial, &dest).is_err() {
        // Another process made it first: theirs is as good.
        let _ = fs::remove_dir_all(&partial);
        assert!(
            dest.join("docker").is_dir(),
            "{} is not a registry storage",
            dest.display()
        );
    }
    dest
}

fn location_in(host: &str, image: &FixtureImage) -> String {
    match &image.tag {
        Some(t) => format!("{host}/{}:{t}", image.path),
        None => format!("{host}/{}@{}", image.path, image.digest),
    }
}

/// `skopeo copy --all --preserve-digests oci:LAYOUT:NAME docker://LOCATION` for each,
/// a few at a time (two cores; each copy is a fraction of a second).
fn push_all(layout: &Path, pushes: &[(String, String)]) {
    let queue = std::sync::Mutex::new(pushes.iter());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let Some((name, location)) = queue.lock().expect("queue").next() else {
                    return;
                };
                let out = run(
                    "skopeo",
                    [
                        "copy".to_owned(),
                        "--all".to_owned(),
                        "--preserve-digests".to_owned(),
                        "--retry-times=3".to_owned(),
                        "--dest-tls-verify=false".to_owned(),
                        format!("oci:{}:{name}", layout.display()),
                        format!("docker://{location}"),
                    ],
                );
                assert_ok(
                    &out,
                    &format!("skopeo copy oci:…:{name} docker://{location}"),
                );
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// ImageSetConfiguration with mirror.operators

/// `channels[]` of a package.
#[derive(Clone, Debug, Default)]
pub struct ChannelSel {
    pub name: String,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

/// `packages[]` of an operator entry.
#[derive(Clone, Debug, Default)]
pub struct PackageSel {
    pub name: String,
    pub default_channel: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub channels: Vec<ChannelSel>,
}

impl PackageSel {
    pub fn new(name: &str) -> PackageSel {
        PackageSel {
            name: name.to_owned(),
            ..PackageSel::default()
        }
    }

    pub fn channel(mut self, name: &str) -> PackageSel {
        self.channels.push(ChannelSel {
            name: name.to_owned(),
            ..ChannelSel::default()
        });
        self
    }

    pub fn channel_range(mut self, name: &str, min: Option<&str>, max: Option<&str>) -> PackageSel {
        self.channels.push(ChannelSel {
            name: name.to_owned(),
            min_version: min.map(str::to_owned),
            max_version: max.map(str::to_owned),
        });
        self
    }

    pub fn range(mut self, min: Option<&str>, max: Option<&str>) -> PackageSel {
        self.min_version = min.map(str::to_owned);
        self.max_version = max.map(str::to_owned);
        self
    }

    pub fn default_channel(mut self, channel: &str) -> PackageSel {
        self.default_channel = Some(channel.to_owned());
        self
    }
}

/// One `mirror.operators[]` entry.
#[derive(Clone, Debug, Default)]
pub struct OperatorSel {
    pub catalog: String,
    pub target_catalog: Option<String>,
    pub target_tag: Option<String>,
    pub full: bool,
    /// ferry's extension `includeDependencies`.
    pub include_dependencies: bool,
    /// `os/arch`.
    pub platforms: Vec<String>,
    pub packages: Vec<PackageSel>,
}

impl OperatorSel {
    pub fn new(catalog: &str) -> OperatorSel {
        OperatorSel {
            catalog: catalog.to_owned(),
            ..OperatorSel::default()
        }
    }

    pub fn packages(mut self, packages: Vec<PackageSel>) -> OperatorSel {
        self.packages = packages;
        self
    }

    pub fn package(mut self, name: &str) -> OperatorSel {
        self.packages.push(PackageSel::new(name));
        self
    }

    pub fn full(mut self) -> OperatorSel {
        self.full = true;
        self
    }

    pub fn include_dependencies(mut self) -> OperatorSel {
        self.include_dependencies = true;
        self
    }
}

/// An ImageSetConfiguration with `mirror.operators` (and `additionalImages`), as text.
#[derive(Clone, Debug, Default)]
pub struct OperatorSet {
    pub operators: Vec<OperatorSel>,
    pub additional_images: Vec<String>,
}

impl OperatorSet {
    pub fn of(operators: Vec<OperatorSel>) -> OperatorSet {
        OperatorSet {
            operators,
            additional_images: Vec::new(),
        }
    }

    /// The YAML text; every scalar double-quoted.
    pub fn yaml(&self) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let mut y = String::from(
            "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n",
        );
        if !self.operators.is_empty() {
            y.push_str("  operators:\n");
        }
        for o in &self.operators {
            y.push_str(&format!("  - catalog: {}\n", q(&o.catalog)));
            if let Some(t) = &o.target_catalog {
                y.push_str(&format!("    targetCatalog: {}\n", q(t)));
            }
            if let Some(t) = &o.target_tag {
                y.push_str(&format!("    targetTag: {}\n", q(t)));
            }
            if o.full {
                y.push_str("    full: true\n");
            }
            if o.include_dependencies {
                y.push_str("    includeDependencies: true\n");
            }
            if !o.platforms.is_empty() {
                y.push_str("    platforms:\n");
                for p in &o.platforms {
                    let (os, arch) = p.split_once('/').expect("os/arch");
                    y.push_str(&format!(
                        "    - os: {}\n      architecture: {}\n",
                        q(os),
                        q(arch)
                    ));
                }
            }
            if !o.packages.is_empty() {
                y.push_str("    packages:\n");
            }
            for p in &o.packages {
                y.push_str(&format!("    - name: {}\n", q(&p.name)));
                if let Some(d) = &p.default_channel {
                    y.push_str(&format!("      defaultChannel: {}\n", q(d)));
                }
                if let Some(v) = &p.min_version {
                    y.push_str(&format!("      minVersion: {}\n", q(v)));
                }
                if let Some(v) = &p.max_version {
                    y.push_str(&format!("      maxVersion: {}\n", q(v)));
                }
                if !p.channels.is_empty() {
                    y.push_str("      channels:\n");
                }
                for c in &p.channels {
                    y.push_str(&format!("      - name: {}\n", q(&c.name)));
                    if let Some(v) = &c.min_version {
                        y.push_str(&format!("        minVersion: {}\n", q(v)));
                    }
                    if let Some(v) = &c.max_version {
                        y.push_str(&format!("        maxVersion: {}\n", q(v)));
                    }
                }
            }
        }
        if !self.additional_images.is_empty() {
            y.push_str("  additionalImages:\n");
        }
        for i in &self.additional_images {
            y.push_str(&format!("  - name: {}\n", q(i)));
        }
        y
    }

    pub fn write(&self, path: &Path) -> PathBuf {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("mkdir for the image set");
        }
        fs::write(path, self.yaml()).expect("write the image set");
        path.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// What each selection rule keeps (fixtures/README.md "Operator catalogs", the table)

/// One row of the table: an operator entry (its catalog filled in by the test) and what
/// the rebuilt catalog must hold.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: &'static str,
    pub operator: OperatorSel,
    /// The bundles kept, by name (`alpha-operator.v1.2.0`).
    pub kept: &'static [&'static str],
    /// (package, default channel) of every kept package.
    pub defaults: &'static [(&'static str, &'static str)],
    /// (package, channel) kept, every one.
    pub channels: &'static [(&'static str, &'static str)],
}

/// The FBC selection rules and what each keeps (the catalog left to the caller: `op`
/// is [`OperatorSel::new`] of the catalog image).
pub fn rules(catalog: &str) -> Vec<Rule> {
    let op = || OperatorSel::new(catalog);
    vec![
        Rule {
            name: "no packages: the head of every channel of every package",
            operator: op(),
            kept: &[
                "alpha-operator.v1.2.0",
                "alpha-operator.v2.0.0",
                "alpha-operator.v2.1.0",
                "beta-operator.v1.1.0",
                "beta-operator.v2.1.0",
                "delta-operator.v3.2.0",
                "delta-operator.v3.4.0",
                "epsilon-operator.v1.0.0",
                "gamma-operator.v0.3.0",
                "zeta-operator.v1.0.0",
            ],
            defaults: &[
                ("alpha-operator", "stable"),
                ("beta-operator", "stable-v2"),
                ("delta-operator", "stable"),
                ("epsilon-operator", "stable"),
                ("gamma-operator", "preview"),
                ("zeta-operator", "stable"),
            ],
            channels: &[
                ("alpha-operator", "candidate"),
                ("alpha-operator", "fast"),
                ("alpha-operator", "stable"),
                ("beta-operator", "stable-v1"),
                ("beta-operator", "stable-v2"),
                ("delta-operator", "eus"),
                ("delta-operator", "stable"),
                ("epsilon-operator", "stable"),
                ("gamma-operator", "preview"),
                ("zeta-operator", "stable"),
            ],
        },
        Rule {
            name: "a package alone: the heads of its channels",
            operator: op().package("delta-operator"),
            kept: &["delta-operator.v3.2.0", "delta-operator.v3.4.0"],
            defaults: &[("delta-operator", "stable")],
            channels: &[("delta-operator", "eus"), ("delta-operator", "stable")],
        },
        Rule {
            name: "full: true with a package: all its bundles",
            operator: op().package("gamma-operator").full(),
            kept: &[
                "gamma-operator.v0.1.0",
                "gamma-operator.v0.2.0",
                "gamma-operator.v0.3.0",
            ],
            defaults: &[("gamma-operator", "preview")],
            channels: &[("gamma-operator", "preview")],
        },
        Rule {
            name: "a channel with minVersion and maxVersion: the replaces segment in range",
            operator: op().packages(vec![PackageSel::new("delta-operator").channel_range(
                "stable",
                Some("3.1.0"),
                Some("3.3.0"),
            )]),
            kept: &[
                "delta-operator.v3.1.0",
                "delta-operator.v3.1.1",
                "delta-operator.v3.2.0",
                "delta-operator.v3.3.0",
            ],
            defaults: &[("delta-operator", "stable")],
            channels: &[("delta-operator", "stable")],
        },
        Rule {
            name: "a range that keeps a bundle through skips only; the single kept channel becomes the default",
            operator: op().packages(vec![PackageSel::new("alpha-operator").channel_range(
                "fast",
                Some("1.1.0"),
                Some("1.2.0"),
            )]),
            kept: &[
                "alpha-operator.v1.1.0",
                "alpha-operator.v1.1.1",
                "alpha-operator.v1.2.0",
            ],
            defaults: &[("alpha-operator", "fast")],
            channels: &[("alpha-operator", "fast")],
        },
        Rule {
            name: "a package-level minVersion: every channel's segment, empty channels dropped",
            operator: op().packages(vec![PackageSel::new("delta-operator").range(Some("3.3.0"), None)]),
            kept: &[
                "delta-operator.v3.3.0",
                "delta-operator.v3.3.1",
                "delta-operator.v3.4.0",
            ],
            defaults: &[("delta-operator", "stable")],
            channels: &[("delta-operator", "stable")],
        },
        Rule {
            name: "two channels without the default, defaultChannel naming one",
            operator: op().packages(vec![PackageSel::new("alpha-operator")
                .channel("fast")
                .channel("candidate")
                .default_channel("candidate")]),
            kept: &["alpha-operator.v2.0.0", "alpha-operator.v2.1.0"],
            defaults: &[("alpha-operator", "candidate")],
            channels: &[("alpha-operator", "candidate"), ("alpha-operator", "fast")],
        },
        Rule {
            name: "dependencies reported, not added, without includeDependencies",
            operator: op().package("beta-operator"),
            kept: &["beta-operator.v1.1.0", "beta-operator.v2.1.0"],
            defaults: &[("beta-operator", "stable-v2")],
            channels: &[("beta-operator", "stable-v1"), ("beta-operator", "stable-v2")],
        },
        Rule {
            name: "includeDependencies adds the channel heads that satisfy olm.package.required and olm.gvk.required",
            operator: op().package("beta-operator").include_dependencies(),
            kept: &[
                "alpha-operator.v1.2.0",
                "beta-operator.v1.1.0",
                "beta-operator.v2.1.0",
                "gamma-operator.v0.3.0",
            ],
            defaults: &[
                ("alpha-operator", "stable"),
                ("beta-operator", "stable-v2"),
                ("gamma-operator", "preview"),
            ],
            channels: &[
                ("alpha-operator", "stable"),
                ("beta-operator", "stable-v1"),
                ("beta-operator", "stable-v2"),
                ("gamma-operator", "preview"),
            ],
        },
    ]
}

/// A selection that must be refused, and what the message names.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub name: &'static str,
    pub operator: OperatorSel,
    pub needles: &'static [&'static str],
}

/// The FBC selections that are refused.
pub fn refusals(catalog: &str) -> Vec<Refusal> {
    let op = || OperatorSel::new(catalog);
    vec![
        Refusal {
            name: "a package the catalog lacks: the message names the ones it has",
            operator: op().package("omega-operator"),
            needles: &["omega-operator", "alpha-operator", "zeta-operator"],
        },
        Refusal {
            name: "a channel the package lacks",
            operator: op().packages(vec![PackageSel::new("alpha-operator").channel("nightly")]),
            needles: &["alpha-operator", "nightly", "candidate", "fast", "stable"],
        },
        Refusal {
            name: "the default channel lost, no defaultChannel",
            operator: op().packages(vec![PackageSel::new("alpha-operator")
                .channel("fast")
                .channel("candidate")]),
            needles: &["alpha-operator", "stable", "defaultChannel"],
        },
        Refusal {
            name: "defaultChannel naming a channel that is not kept",
            operator: op().packages(vec![PackageSel::new("alpha-operator")
                .channel("fast")
                .default_channel("stable")]),
            needles: &["alpha-operator", "stable", "fast"],
        },
        Refusal {
            name: "a range nothing is in",
            operator: op().packages(vec![
                PackageSel::new("gamma-operator").range(Some("9.0.0"), None)
            ]),
            needles: &["gamma-operator", "9.0.0"],
        },
    ]
}

/// The SQLite catalog: package-level selection as `opm index prune` does (every bundle of
/// each kept package).
pub fn sqlite_prune_rule(catalog: &str) -> Rule {
    Rule {
        name: "SQLite: the packages listed, whole",
        operator: OperatorSel::new(catalog)
            .package("gamma-operator")
            .package("zeta-operator"),
        kept: &[
            "gamma-operator.v0.1.0",
            "gamma-operator.v0.2.0",
            "gamma-operator.v0.3.0",
            "zeta-operator.v1.0.0",
        ],
        defaults: &[("gamma-operator", "preview"), ("zeta-operator", "stable")],
        channels: &[("gamma-operator", "preview"), ("zeta-operator", "stable")],
    }
}

// ---------------------------------------------------------------------------------------
// What a catalog holds, as a test compares it

/// The comparable summary of a catalog: bundles, (package, default channel), channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub bundles: BTreeSet<String>,
    pub defaults: BTreeSet<(String, String)>,
    pub channels: BTreeSet<(String, String)>,
}

impl Summary {
    pub fn of(catalog: &catalog::Catalog) -> Summary {
        let mut s = Summary {
            bundles: BTreeSet::new(),
            defaults: BTreeSet::new(),
            channels: BTreeSet::new(),
        };
        for (name, content) in &catalog.packages {
            s.bundles.extend(content.bundles.keys().cloned());
            s.defaults.insert((
                name.clone(),
                content.package.default_channel.clone().unwrap_or_default(),
            ));
            for c in content.channels.keys() {
                s.channels.insert((name.clone(), c.clone()));
            }
        }
        s
    }

    pub fn of_rule(rule: &Rule) -> Summary {
        let pairs = |v: &[(&str, &str)]| -> BTreeSet<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        Summary {
            bundles: rule.kept.iter().map(|s| s.to_string()).collect(),
            defaults: pairs(rule.defaults),
            channels: pairs(rule.channels),
        }
    }
}

/// The selection `operator` makes of `catalog` through ferry's own library
/// (`imageset` parses the YAML the kit writes, `catalog::filter` selects): what the
/// e2e tests expect the CLI to do, checked against the table in the fixture tests.
pub fn select(
    catalog: catalog::Catalog,
    operator: &OperatorSel,
) -> Result<catalog::Filtered, String> {
    let tmp = tempdir();
    let path = tmp.path().join("set.yaml");
    let text = OperatorSet::of(vec![operator.clone()]).yaml();
    let set = imageset::ImageSet::parse(text.clone(), &path).map_err(|e| format!("{e}\n{text}"))?;
    let pull = set
        .validate_for_pull()
        .map_err(|e| format!("{e}\n{text}"))?;
    let op = &pull.operators[0];
    let filter = catalog::Filter::from_operator(&op.config).map_err(|e| e.to_string())?;
    catalog::filter(
        catalog,
        &filter,
        catalog::FilterOptions {
            include_dependencies: op.config.include_dependencies,
        },
    )
    .map_err(|e| e.to_string())
}

/// The same for a SQLite catalog (`catalog::sqlite::select`: packages only).
pub fn select_sqlite(
    catalog: catalog::Catalog,
    operator: &OperatorSel,
) -> Result<catalog::Filtered, String> {
    let tmp = tempdir();
    let text = OperatorSet::of(vec![operator.clone()]).yaml();
    let set = imageset::ImageSet::parse(text.clone(), &tmp.path().join("set.yaml"))
        .map_err(|e| format!("{e}\n{text}"))?;
    let pull = set
        .validate_for_pull()
        .map_err(|e| format!("{e}\n{text}"))?;
    let filter =
        catalog::Filter::from_operator(&pull.operators[0].config).map_err(|e| e.to_string())?;
    catalog::sqlite::select(catalog, &filter).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// Catalog images in an OCI layout or a registry

/// Where manifests and blobs are read from.
pub trait BlobSource {
    fn blob(&self, digest: &str) -> Vec<u8>;
}

/// An OCI layout on disk (the fixture's, the pull cache).
pub struct LayoutBlobs(pub PathBuf);

impl BlobSource for LayoutBlobs {
    fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self
            .0
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").expect("sha256 digest"));
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(
            test_support::registry::sha256_hex(&bytes),
            digest,
            "{} hashes to its name",
            path.display()
        );
        bytes
    }
}

/// A repository of a registry (the inside, after a push).
pub struct RegistryBlobs<'a> {
    pub registry: &'a Registry,
    pub repository: String,
}

impl BlobSource for RegistryBlobs<'_> {
    /// A config or layer through the blobs endpoint; a manifest (which distribution
    /// links apart, so the blobs endpoint answers 404 for it) through the manifests one.
    fn blob(&self, digest: &str) -> Vec<u8> {
        let r = self.registry.request(
            "GET",
            &format!("/v2/{}/blobs/{digest}", self.repository),
            None,
        );
        let bytes = match r.status {
            200 => r.body,
            404 => self
                .registry
                .manifest(&self.repository, digest)
                .unwrap_or_else(|| {
                    panic!(
                        "{digest} is neither a blob nor a manifest of {}",
                        self.repository
                    )
                }),
            s => panic!("GET blob {digest} of {}: {s} {}", self.repository, r.text()),
        };
        assert_eq!(
            test_support::registry::sha256_hex(&bytes),
            digest,
            "{digest}"
        );
        bytes
    }
}

/// One platform's image of a catalog.
#[derive(Clone, Debug)]
pub struct CatalogChild {
    pub digest: String,
    pub platform: String,
    pub config: Value,
    /// (digest, media type, size) of each layer.
    pub layers: Vec<(String, String, u64)>,
}

/// A catalog image read down to its configs: the index, each child, and the catalog of
/// the layer holding the labelled path (the FBC directory or the SQLite database).
pub struct CatalogImage {
    pub digest: String,
    pub media_type: String,
    pub children: Vec<CatalogChild>,
}

impl CatalogImage {
    /// Reads the image `digest` (an index or a manifest) from `blobs`.
    pub fn read(blobs: &dyn BlobSource, digest: &str) -> CatalogImage {
        let top: Value = serde_json::from_slice(&blobs.blob(digest)).expect("manifest JSON");
        let media_type = top["mediaType"].as_str().unwrap_or_default().to_owned();
        let mut children = Vec::new();
        let mut one = |d: &str, platform: String| {
            let m: Value = serde_json::from_slice(&blobs.blob(d)).expect("manifest JSON");
            let config: Value = serde_json::from_slice(
                &blobs.blob(m["config"]["digest"].as_str().expect("config digest")),
            )
            .expect("config JSON");
            let layers = m["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| {
                    (
                        l["digest"].as_str().expect("digest").to_owned(),
                        l["mediaType"].as_str().unwrap_or_default().to_owned(),
                        l["size"].as_u64().expect("size"),
                    )
                })
                .collect();
            children.push(CatalogChild {
                digest: d.to_owned(),
                platform,
                config,
                layers,
            });
        };
        match top["manifests"].as_array() {
            Some(list) => {
                for c in list {
                    let p = &c["platform"];
                    one(
                        c["digest"].as_str().expect("child digest"),
                        format!(
                            "{}/{}",
                            p["os"].as_str().unwrap_or_default(),
                            p["architecture"].as_str().unwrap_or_default()
                        ),
                    );
                }
            }
            None => one(digest, String::new()),
        }
        CatalogImage {
            digest: digest.to_owned(),
            media_type,
            children,
        }
    }

    pub fn platforms(&self) -> Vec<String> {
        self.children.iter().map(|c| c.platform.clone()).collect()
    }
}

impl CatalogChild {
    pub fn labels(&self) -> &Value {
        &self.config["config"]["Labels"]
    }

    pub fn cmd(&self) -> Vec<String> {
        strings(&self.config["config"]["Cmd"])
    }

    pub fn entrypoint(&self) -> Vec<String> {
        strings(&self.config["config"]["Entrypoint"])
    }

    pub fn diff_ids(&self) -> Vec<String> {
        strings(&self.config["rootfs"]["diff_ids"])
    }

    /// `created_by` of the history entries that made a layer.
    pub fn layer_history(&self) -> Vec<String> {
        self.config["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["empty_layer"] != true)
            .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The paths of every layer's tar entries (gunzipped when gzip), and each layer's
    /// uncompressed digest.
    pub fn layer_contents(&self, blobs: &dyn BlobSource) -> Vec<(Vec<String>, String)> {
        self.layers
            .iter()
            .map(|(d, _, _)| {
                let tar = uncompressed(&blobs.blob(d));
                let paths = tar::Archive::new(&tar[..])
                    .entries()
                    .expect("a tar layer")
                    .map(|e| {
                        e.expect("tar entry")
                            .path()
                            .expect("path")
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                (paths, test_support::registry::sha256_hex(&tar))
            })
            .collect()
    }

    /// The catalog this child holds: the FBC under its configs label, read with
    /// `catalog::read_tar` from the one layer holding it, or the SQLite database under its
    /// database label, read with `catalog::sqlite`.
    pub fn catalog(&self, blobs: &dyn BlobSource) -> catalog::Catalog {
        let labels = self.labels();
        if let Some(dir) = labels[CONFIGS_LABEL].as_str() {
            let prefix = dir.trim_matches('/').to_owned() + "/";
            let holding: Vec<Vec<u8>> = self
                .layers
                .iter()
                .map(|(d, _, _)| uncompressed(&blobs.blob(d)))
                .filter(|tar| {
                    tar_paths(tar)
                        .iter()
                        .any(|p| p.starts_with(&prefix) && !p.ends_with('/'))
                })
                .collect();
            assert_eq!(holding.len(), 1, "one layer holds {dir}");
            return catalog::read_tar(&holding[0][..], dir, catalog::ReadOptions::default())
                .unwrap_or_else(|e| panic!("the configs layer does not parse: {e}"));
        }
        let tmp = tempdir();
        let path = self.database(blobs, &tmp.path().join("index.db"));
        let index = catalog::sqlite::open(&path).unwrap_or_else(|e| panic!("open index.db: {e}"));
        catalog::sqlite::read(&index).unwrap_or_else(|e| panic!("read index.db: {e}"))
    }

    /// The SQLite database under the database label, written to `path` (from the one
    /// layer holding it); `path`.
    pub fn database(&self, blobs: &dyn BlobSource, path: &Path) -> PathBuf {
        let labels = self.labels();
        let db = labels[DATABASE_LABEL]
            .as_str()
            .unwrap_or_else(|| panic!("no database label: {labels}"));
        let want = db.trim_start_matches('/');
        let mut found = 0;
        for (d, _, _) in &self.layers {
            let tar = uncompressed(&blobs.blob(d));
            let mut archive = tar::Archive::new(&tar[..]);
            for e in archive.entries().expect("tar") {
                let mut e = e.expect("entry");
                if e.path().expect("path").to_string_lossy() == want {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes).expect("read index.db");
                    fs::write(path, bytes).expect("write index.db");
                    found += 1;
                }
            }
        }
        assert_eq!(found, 1, "one layer holds {db}");
        path.to_owned()
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect()
}

fn tar_paths(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// A layer's tar bytes: gunzipped when it starts with gzip's magic.
pub fn uncompressed(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gunzip a layer");
        out
    } else {
        bytes.to_vec()
    }
}

/// The catalog the fixture's FBC image holds, read from its layout with
/// `catalog::read_tar` (linux/amd64's configs layer).
pub fn fixture_fbc(fixture: &Fixture) -> catalog::Catalog {
    let blobs = LayoutBlobs(fixture.layout.clone());
    CatalogImage::read(&blobs, &fixture.fbc.digest).children[0].catalog(&blobs)
}

/// The catalog the fixture's SQLite image holds.
pub fn fixture_sqlite(fixture: &Fixture) -> catalog::Catalog {
    let blobs = LayoutBlobs(fixture.layout.clone());
    CatalogImage::read(&blobs, &fixture.sqlite.digest).children[0].catalog(&blobs)
}

/// The images a set of bundles needs, by the fixture's records: every bundle image and
/// related image (as written).
pub fn images_of(fixture: &Fixture, bundles: &[&str]) -> BTreeSet<String> {
    fixture.images_of(bundles.iter().copied())
}

/// The descriptors of a pull cache's index.json that carry `dev.ferry.catalog-packages`
/// (the rebuilt catalogs), by their `io.containerd.image.name` (the source as written).
pub fn rebuilt_in_cache(cache: &Path) -> BTreeMap<String, Value> {
    let index: Value = serde_json::from_slice(
        &fs::read(cache.join("index.json")).expect("read the cache's index.json"),
    )
    .expect("index.json is JSON");
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["annotations"].get("dev.ferry.catalog-packages").is_some())
        .map(|d| {
            (
                d["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d.clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the kit writes is one imageset reads, with the value written.
    #[test]
    fn an_operator_set_is_the_yaml_imageset_reads() {
        let mut op = OperatorSel::new(FBC_CATALOG)
            .packages(vec![
                PackageSel::new("alpha-operator")
                    .channel_range("fast", Some("1.1.0"), Some("1.2.0"))
                    .channel("candidate")
                    .default_channel("fast"),
                PackageSel::new("delta-operator").range(Some("3.3.0"), None),
            ])
            .include_dependencies();
        op.target_catalog = Some("mirror/operator-index".to_owned());
        op.target_tag = Some("filtered".to_owned());
        op.platforms = vec!["linux/arm64".to_owned()];
        let mut set = OperatorSet::of(vec![op, OperatorSel::new(SQLITE_CATALOG).full()]);
        set.additional_images = vec![TAGGED_IMAGE.to_owned()];
        let tmp = tempdir();
        let path = set.write(&tmp.path().join("set.yaml"));
        let parsed = imageset::ImageSet::from_file(&path).expect("parses");
        let pull = parsed.validate_for_pull().expect("valid for pull");
        assert_eq!(pull.operators.len(), 2);
        let o = &pull.operators[0];
        assert_eq!(o.target_catalog.as_deref(), Some("mirror/operator-index"));
        assert_eq!(o.target_tag.as_deref(), Some("filtered"));
        assert_eq!(o.platforms.len(), 1);
        assert!(o.config.include_dependencies);
        assert!(!o.config.full);
        let alpha = &o.config.packages[0];
        assert_eq!(alpha.name, "alpha-operator");
        assert_eq!(alpha.default_channel.as_deref(), Some("fast"));
        assert_eq!(alpha.channels[0].min_version.as_deref(), Some("1.1.0"));
        assert_eq!(alpha.channels[0].max_version.as_deref(), Some("1.2.0"));
        assert_eq!(alpha.channels[1].name, "candidate");
        assert_eq!(o.config.packages[1].min_version.as_deref(), Some("3.3.0"));
        assert!(pull.operators[1].config.full);
        assert_eq!(pull.images.len(), 1);
    }
}
