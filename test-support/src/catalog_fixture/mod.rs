//! Operator catalog fixtures (fixtures/README.md "Operator catalogs"): a synthetic
//! file-based catalog and a SQLite catalog with the same content, built as opm builds
//! catalog images, with every bundle image and related image they name as a real small
//! image, all in one OCI image layout that `skopeo copy --all --preserve-digests
//! oci:DIR:NAME docker://…` pushes; and a scale mode for the benchmark ([`scale`]).
//!
//! Deterministic: the same code writes the same bytes (fixed tar headers, gzip without a
//! time, sorted JSON keys, a seeded generator for filler), so digests only change when
//! this code or a dependency's compressor does. Nothing here knows ferry: the catalog
//! content is written from the tables of [`spec`], the SQLite database in opm's schema
//! (`catalog/src/sqlite/opm_schema.sql`, the DDL catalog's own tests use).

pub mod layout;
pub mod scale;
pub mod spec;
mod sqlite;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use layout::{Descriptor, Entry, ImageConfig, Layer, Layout, Platform, AMD64, ARM64};
use spec::{Extra, FileKind, PACKAGES};

/// Where the fixture's images live, as users and catalogs name them.
pub const REGISTRY: &str = "registry.redhat.io";
/// The repository path (no host) of every fixture image: `fixture/…`.
pub const NAMESPACE: &str = "fixture";
/// The file-based catalog image, as an ImageSetConfiguration names it.
pub const FBC_CATALOG: &str = "registry.redhat.io/fixture/operator-index:v4.16";
/// The SQLite catalog image (OpenShift 4.6–4.10 style), same content.
pub const SQLITE_CATALOG: &str = "registry.redhat.io/fixture/operator-index:v4.8";
/// The one related image given by tag.
pub const TAGGED_IMAGE: &str = "registry.redhat.io/fixture/tagged-helper:v1";
/// The related image shared by several bundles.
pub const PROXY_REPOSITORY: &str = "registry.redhat.io/fixture/kube-rbac-proxy";
/// zeta-operator's operand (what the `--allow-missing` test leaves out of the push).
pub const ZETA_OPERAND_REPOSITORY: &str = "registry.redhat.io/fixture/zeta-operand";

pub const CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";
pub const DATABASE_LABEL: &str = "operators.operatorframework.io.index.database.v1";
/// What opm's generated Dockerfile sets (`alpha/action/generate_dockerfile.go`).
pub const FBC_CMD: [&str; 3] = ["serve", "/configs", "--cache-dir=/tmp/cache"];
pub const SQLITE_CMD: [&str; 4] = ["registry", "serve", "--database", "/database/index.db"];
pub const ENTRYPOINT: [&str; 1] = ["/bin/opm"];

/// One image of the fixture.
#[derive(Debug, Clone)]
pub struct FixtureImage {
    /// As a catalog or a user writes it: `registry.redhat.io/fixture/x@sha256:…` or
    /// `…:tag`.
    pub reference: String,
    /// `fixture/x` (no host).
    pub path: String,
    pub tag: Option<String>,
    /// The top manifest or index.
    pub digest: String,
    pub media_type: String,
    /// Its `org.opencontainers.image.ref.name` in the layout (`skopeo copy oci:DIR:NAME`).
    pub ref_name: String,
    /// (digest, `os/arch`) of each child of an index; empty for a single manifest.
    pub children: Vec<(String, String)>,
}

impl FixtureImage {
    /// `registry.redhat.io/fixture/x`.
    pub fn repository(&self) -> String {
        format!("{REGISTRY}/{}", self.path)
    }

    /// `registry.redhat.io/fixture/x@sha256:…`, whatever it is written with.
    pub fn by_digest(&self) -> String {
        format!("{}@{}", self.repository(), self.digest)
    }

    pub fn platforms(&self) -> Vec<String> {
        self.children.iter().map(|(_, p)| p.clone()).collect()
    }
}

/// One bundle of the catalog.
#[derive(Debug, Clone)]
pub struct FixtureBundle {
    pub name: String,
    pub package: String,
    pub version: String,
    pub channels: Vec<String>,
    /// Its bundle image, by digest.
    pub image: String,
    /// Its `relatedImages` other than the bundle image, as written (by digest, the tagged
    /// helper by tag).
    pub related: Vec<String>,
}

/// The generated fixture: the layout and what it holds.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub layout: PathBuf,
    pub fbc: FixtureImage,
    pub sqlite: FixtureImage,
    /// Every bundle image and related image, each once, sorted by reference.
    pub images: Vec<FixtureImage>,
    pub bundles: Vec<FixtureBundle>,
    /// The configs directory as written into the FBC image's configs layer (file path
    /// under `configs/`, bytes), for tests that read it without the image.
    pub configs: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    /// The image whose reference is `reference` (by digest or tag as written), or whose
    /// repository is `reference` when only one image has it.
    #[track_caller]
    pub fn image(&self, reference: &str) -> &FixtureImage {
        let found: Vec<&FixtureImage> = self
            .images
            .iter()
            .chain([&self.fbc, &self.sqlite])
            .filter(|i| i.reference == reference || i.repository() == reference)
            .collect();
        assert_eq!(found.len(), 1, "fixture images matching {reference}");
        found[0]
    }

    #[track_caller]
    pub fn bundle(&self, name: &str) -> &FixtureBundle {
        self.bundles
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no bundle {name} in the fixture"))
    }

    /// Every image `bundles` need (bundle images and related images), as written.
    pub fn images_of<'a>(&self, bundles: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for name in bundles {
            let b = self.bundle(name);
            out.insert(b.image.clone());
            out.extend(b.related.iter().cloned());
        }
        out
    }

    /// The bundles that name `reference` (bundle image or related image).
    pub fn bundles_needing(&self, reference: &str) -> Vec<String> {
        self.bundles
            .iter()
            .filter(|b| b.image == reference || b.related.iter().any(|r| r == reference))
            .map(|b| b.name.clone())
            .collect()
    }
}

/// Writes the fixture as one OCI layout at `dir` (created; it must not exist or be empty).
pub fn generate(dir: &Path) -> io::Result<Fixture> {
    let mut layout = Layout::create(dir)?;
    let mut images: Vec<FixtureImage> = Vec::new();

    // Shared related images first: bundles name them by digest.
    let proxy = small_image(&layout, "kube-rbac-proxy", "0.15.0", &[AMD64, ARM64], true)?;
    let proxy = record(&mut layout, "fixture/kube-rbac-proxy", None, proxy)?;
    let tagged = small_image(&layout, "tagged-helper", "1", &[AMD64], false)?;
    let tagged = record(&mut layout, "fixture/tagged-helper", Some("v1"), tagged)?;
    let zeta = small_image(&layout, "zeta-operand", "1.0.0", &[AMD64], false)?;
    let zeta = record(&mut layout, "fixture/zeta-operand", None, zeta)?;
    images.extend([proxy.clone(), tagged.clone(), zeta.clone()]);

    let mut bundles = Vec::new();
    let mut objects: Vec<(String, Vec<Value>)> = Vec::new();
    for p in PACKAGES {
        let mut docs = vec![package_object(p)];
        for channel in p.channels {
            docs.push(channel_object(p.name, channel));
        }
        for bs in spec::bundles_of(p.name) {
            let op_platforms: &[Platform] = if p.multi_arch_operator {
                &[AMD64, ARM64]
            } else {
                &[AMD64]
            };
            let operator = small_image(
                &layout,
                p.name,
                bs.version,
                op_platforms,
                p.multi_arch_operator,
            )?;
            let operator = record(&mut layout, &format!("fixture/{}", p.name), None, operator)?;
            let mut related = vec![("operator".to_owned(), operator.reference.clone())];
            for e in bs.extra {
                let (name, image) = match e {
                    Extra::Proxy => ("kube-rbac-proxy", &proxy),
                    Extra::Tagged => ("helper", &tagged),
                    Extra::ZetaOperand => ("operand", &zeta),
                };
                related.push((name.to_owned(), image.reference.clone()));
            }
            let bundle_platforms: &[Platform] = if p.multi_arch_bundle {
                &[AMD64, ARM64]
            } else {
                &[AMD64]
            };
            let csv = csv_json(bs, &operator.reference, &related);
            let bundle_image =
                bundle_image(&layout, bs, &csv, bundle_platforms, p.multi_arch_bundle)?;
            let bundle_image = record(
                &mut layout,
                &format!("fixture/{}-bundle", p.name),
                None,
                bundle_image,
            )?;
            docs.push(bundle_object(bs, &bundle_image.reference, &related, &csv));
            bundles.push(FixtureBundle {
                name: bs.name(),
                package: p.name.to_owned(),
                version: bs.version.to_owned(),
                channels: bs.channels.iter().map(|c| c.to_string()).collect(),
                image: bundle_image.reference.clone(),
                related: related.iter().map(|(_, r)| r.clone()).collect(),
            });
            images.push(operator);
            images.push(bundle_image);
        }
        if !p.deprecations.is_empty() {
            docs.push(deprecations_object(p));
        }
        objects.push((p.name.to_owned(), docs));
    }
    images.sort_by(|a, b| a.reference.cmp(&b.reference));
    images.dedup_by(|a, b| a.reference == b.reference);

    let configs = configs_files(&objects)?;
    let fbc = fbc_catalog(&layout, &configs)?;
    let fbc = record(&mut layout, "fixture/operator-index", Some("v4.16"), fbc)?;
    let db_dir = tempfile::tempdir()?;
    let db = db_dir.path().join("index.db");
    sqlite::build(&db, &bundles).map_err(io::Error::other)?;
    let sqlite = sqlite_catalog(&layout, &fs::read(&db)?)?;
    let sqlite = record(&mut layout, "fixture/operator-index", Some("v4.8"), sqlite)?;
    layout.finish()?;
    Ok(Fixture {
        layout: dir.to_owned(),
        fbc,
        sqlite,
        images,
        bundles,
        configs,
    })
}

/// Names the image in the layout and describes it.
pub(crate) fn record(
    layout: &mut Layout,
    path: &str,
    tag: Option<&str>,
    (top, children): (Descriptor, Vec<(Descriptor, Platform)>),
) -> io::Result<FixtureImage> {
    let reference = match tag {
        Some(t) => format!("{REGISTRY}/{path}:{t}"),
        None => format!("{REGISTRY}/{path}@{}", top.digest),
    };
    // ref.name: the reference without `@`/`:` ambiguity for skopeo's `oci:DIR:NAME`.
    let ref_name = format!(
        "{}-{}",
        path.replace('/', "-"),
        match tag {
            Some(t) => t.to_owned(),
            None => top.digest[7..23].to_owned(),
        }
    );
    layout.name(&ref_name, &top);
    Ok(FixtureImage {
        reference,
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        ref_name,
        children: children
            .iter()
            .map(|(d, p)| (d.digest.clone(), p.text()))
            .collect(),
    })
}

/// A manifest, or an index of one manifest per platform when `multi` (children listed).
fn per_platform(
    layout: &Layout,
    platforms: &[Platform],
    multi: bool,
    mut one: impl FnMut(Platform) -> io::Result<Descriptor>,
) -> io::Result<(Descriptor, Vec<(Descriptor, Platform)>)> {
    if !multi {
        return Ok((one(platforms[0])?, Vec::new()));
    }
    let mut children = Vec::new();
    for p in platforms {
        children.push((one(*p)?, *p));
    }
    Ok((layout.index(&children)?, children))
}

/// An operator or operand image: one small layer naming what it is.
pub(crate) fn small_image(
    layout: &Layout,
    name: &str,
    version: &str,
    platforms: &[Platform],
    multi: bool,
) -> io::Result<(Descriptor, Vec<(Descriptor, Platform)>)> {
    per_platform(layout, platforms, multi, |p| {
        let text = format!("{name} {version} for {}\n", p.text());
        let script = format!("#!/bin/sh\necho '{name} {version}'\n");
        let layer = layout.layer(&[
            Entry::Dir("usr/"),
            Entry::Dir("usr/bin/"),
            Entry::File(&format!("usr/bin/{name}"), 0o755, script.as_bytes()),
            Entry::File("VERSION", 0o644, text.as_bytes()),
        ])?;
        layout.image(
            p,
            &[layer],
            &ImageConfig {
                labels: vec![
                    ("name".into(), format!("fixture/{name}")),
                    ("version".into(), version.to_owned()),
                ],
                entrypoint: Some(vec![format!("/usr/bin/{name}")]),
                history: vec![(format!("COPY {name} /usr/bin/{name}"), true)],
                ..ImageConfig::default()
            },
        )
    })
}

/// A bundle image: `manifests/<csv>.yaml` and `metadata/annotations.yaml`, FROM scratch.
fn bundle_image(
    layout: &Layout,
    bs: &spec::BundleSpec,
    csv: &Value,
    platforms: &[Platform],
    multi: bool,
) -> io::Result<(Descriptor, Vec<(Descriptor, Platform)>)> {
    let channels = bs.channels.join(",");
    let annotations = format!(
        "annotations:\n  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n  \
         operators.operatorframework.io.bundle.manifests.v1: manifests/\n  \
         operators.operatorframework.io.bundle.metadata.v1: metadata/\n  \
         operators.operatorframework.io.bundle.package.v1: {}\n  \
         operators.operatorframework.io.bundle.channels.v1: {channels}\n",
        bs.package
    );
    let csv_text = serde_json::to_vec_pretty(csv).map_err(io::Error::other)?;
    let csv_path = format!("manifests/{}.clusterserviceversion.json", bs.package);
    per_platform(layout, platforms, multi, |p| {
        let layer = layout.layer(&[
            Entry::Dir("manifests/"),
            Entry::File(&csv_path, 0o644, &csv_text),
            Entry::Dir("metadata/"),
            Entry::File("metadata/annotations.yaml", 0o644, annotations.as_bytes()),
        ])?;
        layout.image(
            p,
            &[layer],
            &ImageConfig {
                labels: vec![
                    (
                        "operators.operatorframework.io.bundle.mediatype.v1".into(),
                        "registry+v1".into(),
                    ),
                    (
                        "operators.operatorframework.io.bundle.package.v1".into(),
                        bs.package.into(),
                    ),
                    (
                        "operators.operatorframework.io.bundle.channels.v1".into(),
                        channels.clone(),
                    ),
                ],
                history: vec![
                    ("COPY manifests /manifests/".into(), true),
                    (
                        "LABEL operators.operatorframework.io.bundle.package.v1".into(),
                        false,
                    ),
                ],
                ..ImageConfig::default()
            },
        )
    })
}

/// A small ClusterServiceVersion, what `olm.bundle.object` carries (base64).
fn csv_json(bs: &spec::BundleSpec, operator: &str, related: &[(String, String)]) -> Value {
    let mut spec = json!({
        "version": bs.version,
        "displayName": bs.package,
        "install": {"strategy": "deployment", "spec": {"deployments": [{
            "name": bs.package,
            "spec": {"template": {"spec": {"containers": [{"name": "manager", "image": operator}]}}}
        }]}},
        "relatedImages": related.iter().map(|(n, i)| json!({"name": n, "image": i})).collect::<Vec<_>>(),
    });
    if let Some(r) = bs.replaces {
        spec["replaces"] = Value::from(spec::bundle_name(bs.package, r));
    }
    json!({
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "ClusterServiceVersion",
        "metadata": {"name": bs.name(), "annotations": {"containerImage": operator}},
        "spec": spec,
    })
}

fn package_object(p: &spec::PackageSpec) -> Value {
    json!({
        "schema": "olm.package",
        "name": p.name,
        "defaultChannel": p.default_channel,
        "description": format!("{}: a synthetic operator of ferry's catalog fixture", p.name),
        "icon": {"base64data": base64::engine::general_purpose::STANDARD.encode(format!("<svg>{}</svg>", p.name)), "mediatype": "image/svg+xml"},
    })
}

fn channel_object(package: &str, channel: &str) -> Value {
    let entries: Vec<Value> = spec::bundles_of(package)
        .filter(|b| b.channels.contains(&channel))
        .map(|b| {
            let mut e = json!({"name": b.name()});
            if let Some(r) = b.replaces {
                e["replaces"] = Value::from(spec::bundle_name(package, r));
            }
            if !b.skips.is_empty() {
                e["skips"] = json!(b
                    .skips
                    .iter()
                    .map(|s| spec::bundle_name(package, s))
                    .collect::<Vec<_>>());
            }
            if let Some(r) = b.skip_range {
                e["skipRange"] = Value::from(r);
            }
            e
        })
        .collect();
    json!({"schema": "olm.channel", "package": package, "name": channel, "entries": entries})
}

fn bundle_object(
    bs: &spec::BundleSpec,
    image: &str,
    related: &[(String, String)],
    csv: &Value,
) -> Value {
    let p = spec::package(bs.package);
    let mut properties = vec![
        json!({"type": "olm.package", "value": {"packageName": bs.package, "version": bs.version}}),
    ];
    for (g, v, k) in p.provides {
        properties.push(json!({"type": "olm.gvk", "value": {"group": g, "version": v, "kind": k}}));
    }
    for (pkg, range) in bs.requires_packages {
        properties.push(json!({"type": "olm.package.required", "value": {"packageName": pkg, "versionRange": range}}));
    }
    for (g, v, k) in bs.requires_gvks {
        properties.push(
            json!({"type": "olm.gvk.required", "value": {"group": g, "version": v, "kind": k}}),
        );
    }
    let data =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(csv).expect("JSON"));
    properties.push(json!({"type": "olm.bundle.object", "value": {"data": data}}));
    // As `opm render` writes them: the bundle image itself (no name), then the CSV's.
    let mut images = vec![json!({"name": "", "image": image})];
    images.extend(related.iter().map(|(n, i)| json!({"name": n, "image": i})));
    json!({
        "schema": "olm.bundle",
        "name": bs.name(),
        "package": bs.package,
        "image": image,
        "properties": properties,
        "relatedImages": images,
    })
}

fn deprecations_object(p: &spec::PackageSpec) -> Value {
    let entries: Vec<Value> = p
        .deprecations
        .iter()
        .map(|(schema, name, message)| {
            let mut reference = json!({"schema": schema});
            if !name.is_empty() {
                reference["name"] = Value::from(*name);
            }
            json!({"reference": reference, "message": message})
        })
        .collect();
    json!({"schema": "olm.deprecations", "package": p.name, "entries": entries})
}

/// The files of `configs/`: `<package>/catalog.json` (a stream of indented objects, as
/// `opm render -o json` prints) or `catalog.yaml` (YAML documents), plus a `README.md`
/// that is not catalog content and the `.indexignore` that says so.
fn configs_files(objects: &[(String, Vec<Value>)]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![
        (
            ".indexignore".to_owned(),
            b"# not catalog content\nREADME.md\n".to_vec(),
        ),
        (
            "README.md".to_owned(),
            b"This directory is ferry's synthetic operator catalog: - not: [valid\n".to_vec(),
        ),
    ];
    for (package, docs) in objects {
        let kind = spec::package(package).file;
        let (name, bytes) = match kind {
            FileKind::Json => {
                let mut out = Vec::new();
                for d in docs {
                    out.extend(serde_json::to_vec_pretty(d).map_err(io::Error::other)?);
                    out.push(b'\n');
                }
                ("catalog.json", out)
            }
            FileKind::Yaml => {
                let mut out = String::new();
                for d in docs {
                    out.push_str("---\n");
                    out.push_str(&serde_norway::to_string(d).map_err(io::Error::other)?);
                }
                ("catalog.yaml", out.into_bytes())
            }
        };
        files.push((format!("{package}/{name}"), bytes));
    }
    Ok(files)
}

/// The base layer of a catalog image: an `opm` stand-in and `/etc/passwd`.
pub(crate) fn base_layer(layout: &Layout, p: Platform) -> io::Result<Layer> {
    let opm = format!(
        "#!/bin/sh\n# stand-in for opm ({}) in ferry's catalog fixture\necho \"opm $*\"\n",
        p.text()
    );
    layout.layer(&[
        Entry::Dir("bin/"),
        Entry::File("bin/opm", 0o755, opm.as_bytes()),
        Entry::Dir("etc/"),
        Entry::File(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
        ),
    ])
}

/// opm's cache as `opm serve --cache-only` leaves it (`/tmp/cache/pogreb.v1/…`); the
/// bytes stand in for pogreb's, derived from the configs so they change with them.
pub(crate) fn cache_layer(layout: &Layout, configs_digest: &str) -> io::Result<Layer> {
    let db = format!("pogreb stand-in for {configs_digest}\n").repeat(64);
    layout.layer(&[
        Entry::Dir("tmp/"),
        Entry::Dir("tmp/cache/"),
        Entry::Dir("tmp/cache/pogreb.v1/"),
        Entry::Dir("tmp/cache/pogreb.v1/db/"),
        Entry::File("tmp/cache/pogreb.v1/db/00000.psg", 0o644, db.as_bytes()),
        Entry::File("tmp/cache/pogreb.v1/db/index.pix", 0o644, b"\x00\x01index"),
        Entry::File("tmp/cache/pogreb.v1/db/main.pix", 0o644, b"\x00\x01main"),
        Entry::File(
            "tmp/cache/pogreb.v1/digest",
            0o644,
            &configs_digest.as_bytes()[7..23],
        ),
    ])
}

/// The history and config of an FBC catalog image, as opm's generated Dockerfile and a
/// build leave them.
pub(crate) fn fbc_config() -> ImageConfig {
    ImageConfig {
        labels: vec![(CONFIGS_LABEL.into(), "/configs".into())],
        entrypoint: Some(ENTRYPOINT.iter().map(|s| s.to_string()).collect()),
        cmd: Some(FBC_CMD.iter().map(|s| s.to_string()).collect()),
        env: Vec::new(),
        history: vec![
            ("ADD opm-base.tar / # bin/opm, etc/passwd".into(), true),
            (r#"ENTRYPOINT ["/bin/opm"]"#.into(), false),
            (r#"CMD ["serve", "/configs", "--cache-dir=/tmp/cache"]"#.into(), false),
            ("COPY /configs /configs".into(), true),
            (
                r#"RUN ["/bin/opm", "serve", "/configs", "--cache-dir=/tmp/cache", "--cache-only"]"#
                    .into(),
                true,
            ),
            (format!("LABEL {CONFIGS_LABEL}=/configs"), false),
        ],
    }
}

/// The FBC catalog image: an index of linux/amd64 and linux/arm64, each base + configs +
/// cache layers (the configs and cache layers are the same blobs on both).
fn fbc_catalog(
    layout: &Layout,
    configs: &[(String, Vec<u8>)],
) -> io::Result<(Descriptor, Vec<(Descriptor, Platform)>)> {
    let configs_layer = configs_layer(
        layout,
        configs.iter().map(|(p, b)| (p.as_str(), b.as_slice())),
    )?;
    let cache = cache_layer(layout, &configs_layer.descriptor.digest)?;
    per_platform(layout, &[AMD64, ARM64], true, |p| {
        let base = base_layer(layout, p)?;
        layout.image(
            p,
            &[base, configs_layer.clone(), cache.clone()],
            &fbc_config(),
        )
    })
}

/// The layer holding `configs/` (directories first, then each file, sorted by path).
pub(crate) fn configs_layer<'a>(
    layout: &Layout,
    files: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> io::Result<Layer> {
    let mut files: Vec<(&str, &[u8])> = files.collect();
    files.sort();
    let mut w = layout.layer_writer()?;
    w.dir("configs/")?;
    let mut dirs = BTreeSet::new();
    for (path, bytes) in files {
        if let Some((dir, _)) = path.rsplit_once('/') {
            if dirs.insert(dir.to_owned()) {
                w.dir(&format!("configs/{dir}/"))?;
            }
        }
        w.file(&format!("configs/{path}"), 0o644, bytes)?;
    }
    w.finish()
}

/// The SQLite catalog image: an index of linux/amd64 and linux/arm64, each base +
/// `/database/index.db`.
fn sqlite_catalog(
    layout: &Layout,
    db: &[u8],
) -> io::Result<(Descriptor, Vec<(Descriptor, Platform)>)> {
    let database = layout.layer(&[
        Entry::Dir("database/"),
        Entry::File("database/index.db", 0o644, db),
    ])?;
    per_platform(layout, &[AMD64, ARM64], true, |p| {
        let base = base_layer(layout, p)?;
        layout.image(
            p,
            &[base, database.clone()],
            &ImageConfig {
                labels: vec![(DATABASE_LABEL.into(), "/database/index.db".into())],
                entrypoint: Some(ENTRYPOINT.iter().map(|s| s.to_string()).collect()),
                cmd: Some(SQLITE_CMD.iter().map(|s| s.to_string()).collect()),
                env: Vec::new(),
                history: vec![
                    ("ADD opm-base.tar / # bin/opm, etc/passwd".into(), true),
                    ("ADD index.db /database/index.db".into(), true),
                    (format!("LABEL {DATABASE_LABEL}=/database/index.db"), false),
                    (r#"ENTRYPOINT ["/bin/opm"]"#.into(), false),
                    (
                        r#"CMD ["registry", "serve", "--database", "/database/index.db"]"#.into(),
                        false,
                    ),
                ],
            },
        )
    })
}

#[cfg(test)]
mod tests;
