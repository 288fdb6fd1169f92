//! Catalog images built here in memory (a map of blobs that counts what is opened):
//! multi-arch OCI indexes and Docker manifests, FBC and SQLite, as opm builds them (a base
//! layer, the catalog added in one layer, opm's cache in another) and as they go wrong.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Mutex;

use oci::manifest::{ImageManifest, Index};
use oci::media_type::*;
use oci::Digest;
use serde_json::{json, Value};

use super::*;

// ---------------------------------------------------------------- the blob store

#[derive(Default)]
struct Store {
    blobs: Mutex<HashMap<Digest, Vec<u8>>>,
    opens: Mutex<HashMap<Digest, usize>>,
}

impl Blobs for Store {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send + '_>> {
        *self.opens.lock().unwrap().entry(*digest).or_default() += 1;
        match self.blobs.lock().unwrap().get(digest) {
            Some(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such blob")),
        }
    }
}

impl Sink for Store {
    fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        assert_eq!(
            Digest::of(bytes),
            *digest,
            "the sink is given the digest of the bytes"
        );
        self.blobs.lock().unwrap().insert(*digest, bytes.to_vec());
        Ok(())
    }
}

impl Store {
    fn add(&self, bytes: Vec<u8>) -> Digest {
        let d = Digest::of(&bytes);
        self.blobs.lock().unwrap().insert(d, bytes);
        d
    }
    fn get(&self, d: &Digest) -> Vec<u8> {
        self.blobs.lock().unwrap()[d].clone()
    }
    fn opened(&self, d: &Digest) -> usize {
        self.opens.lock().unwrap().get(d).copied().unwrap_or(0)
    }
    fn forget_opens(&self) {
        self.opens.lock().unwrap().clear();
    }
}

// ---------------------------------------------------------------- layers

enum E {
    Dir,
    File(Vec<u8>),
    Symlink(&'static str),
}

fn file(text: &str) -> E {
    E::File(text.as_bytes().to_vec())
}

fn tar_of(entries: &[(String, E)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, e) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(1001);
        match e {
            E::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, io::empty()).unwrap();
            }
            E::File(bytes) => {
                h.set_mode(0o640);
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, path, &bytes[..]).unwrap();
            }
            E::Symlink(to) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, to).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut w, bytes).unwrap();
    w.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A layer as stored, with its diff_id and the history line that made it.
#[derive(Clone)]
struct Layer {
    stored: Vec<u8>,
    diff_id: Digest,
    created_by: String,
}

fn layer(entries: Vec<(&str, E)>, created_by: &str) -> Layer {
    let entries: Vec<(String, E)> = entries
        .into_iter()
        .map(|(p, e)| (p.to_string(), e))
        .collect();
    let tar = tar_of(&entries);
    Layer {
        diff_id: Digest::of(&tar),
        stored: gzip(&tar),
        created_by: created_by.to_string(),
    }
}

fn base(arch: &str) -> Layer {
    layer(
        vec![
            ("bin/", E::Dir),
            ("bin/opm", file(&format!("ELF {arch}"))),
            ("etc/", E::Dir),
            ("etc/passwd", file("root:x:0:0")),
            ("tmp/", E::Dir),
        ],
        "ADD file:base in / ",
    )
}

fn catalog_entries(prefix: &str) -> Vec<(String, E)> {
    let mut out = vec![(format!("{prefix}/"), E::Dir)];
    for (p, text) in crate::tests::synthetic_files() {
        let (dir, _) = p.split_once('/').unwrap();
        out.push((format!("{prefix}/{dir}/"), E::Dir));
        out.push((format!("{prefix}/{p}"), E::File(text.into_bytes())));
    }
    out
}

fn configs_layer() -> Layer {
    let entries = catalog_entries("configs");
    let tar = tar_of(&entries);
    Layer {
        diff_id: Digest::of(&tar),
        stored: gzip(&tar),
        created_by: "ADD dir:0c2b0b3 in /configs ".into(),
    }
}

fn cache_layer(arch: &str) -> Layer {
    layer(
        vec![
            ("tmp/", E::Dir),
            ("tmp/cache/", E::Dir),
            ("tmp/cache/pogreb.v1/", E::Dir),
            ("tmp/cache/pogreb.v1/db/", E::Dir),
            (
                "tmp/cache/pogreb.v1/db/main.pix",
                file(&format!("pogreb {arch}")),
            ),
            ("tmp/cache/digest", file("fnv")),
        ],
        "RUN /bin/opm serve /configs --cache-dir=/tmp/cache --cache-only # buildkit",
    )
}

// ---------------------------------------------------------------- images

const CREATED: &str = "2026-11-01T10:00:00Z";
const HISTORY: &str = "ferry: catalog of alpha, beta, gamma";

fn fbc_labels() -> Value {
    json!({"operators.operatorframework.io.index.configs.v1": "/configs", "vendor": "example"})
}

fn fbc_run() -> (Value, Value) {
    (
        json!(["/bin/opm"]),
        json!(["serve", "/configs", "--cache-dir=/tmp/cache"]),
    )
}

struct Spec {
    docker: bool,
    arch: &'static str,
    variant: Option<&'static str>,
    layers: Vec<Layer>,
    labels: Value,
    entrypoint: Value,
    cmd: Value,
    /// None: no history; Some(false): one entry short (inconsistent).
    history: Option<bool>,
}

impl Spec {
    fn fbc(arch: &'static str, layers: Vec<Layer>) -> Spec {
        let (entrypoint, cmd) = fbc_run();
        Spec {
            docker: false,
            arch,
            variant: None,
            layers,
            labels: fbc_labels(),
            entrypoint,
            cmd,
            history: Some(true),
        }
    }
}

/// Stores the image of `spec` and returns its manifest's digest and size.
fn image(store: &Store, spec: &Spec) -> (Digest, u64) {
    let mut history = vec![];
    for (i, l) in spec.layers.iter().enumerate() {
        history.push(json!({"created": CREATED, "created_by": l.created_by}));
        if i == 0 {
            history.push(json!({"created": CREATED, "created_by": "LABEL vendor=example", "empty_layer": true}));
        }
    }
    if spec.history == Some(false) {
        history.pop();
    }
    let mut config = json!({
        "architecture": spec.arch,
        "os": "linux",
        "created": CREATED,
        "config": {
            "Entrypoint": spec.entrypoint,
            "Cmd": spec.cmd,
            "Labels": spec.labels,
            "Env": ["PATH=/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": spec.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
    });
    if let Some(v) = spec.variant {
        config["variant"] = json!(v);
    }
    if spec.history.is_some() {
        config["history"] = Value::Array(history);
    }
    let config = serde_json::to_vec(&config).unwrap();
    let (mt, ct, lt) = if spec.docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": ct, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": spec.layers.iter().map(|l| json!({"mediaType": lt, "digest": Digest::of(&l.stored).to_string(), "size": l.stored.len()})).collect::<Vec<_>>(),
        "annotations": {"org.opencontainers.image.title": "catalog"},
    });
    store.add(config);
    for l in &spec.layers {
        store.add(l.stored.clone());
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let size = bytes.len() as u64;
    (store.add(bytes), size)
}

fn index(store: &Store, children: &[(&Spec, Digest, u64)]) -> Digest {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|(s, d, n)| {
            let mut p = json!({"architecture": s.arch, "os": "linux"});
            if let Some(v) = s.variant { p["variant"] = json!(v); }
            json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": n, "platform": p,
                   "annotations": {"x.arch": s.arch}})
        }).collect::<Vec<_>>(),
    });
    store.add(serde_json::to_vec(&index).unwrap())
}

/// The usual multi-arch FBC catalog: arm64 first, amd64 second; each base, the shared
/// configs layer, its cache. Returns the index and the specs.
fn multi_arch(store: &Store) -> (Digest, Vec<Spec>, Vec<Digest>) {
    let mut arm = Spec::fbc(
        "arm64",
        vec![base("arm64"), configs_layer(), cache_layer("arm64")],
    );
    arm.variant = Some("v8");
    let amd = Spec::fbc(
        "amd64",
        vec![base("amd64"), configs_layer(), cache_layer("amd64")],
    );
    let (a, an) = image(store, &arm);
    let (b, bn) = image(store, &amd);
    let top = index(store, &[(&arm, a, an), (&amd, b, bn)]);
    (top, vec![arm, amd], vec![a, b])
}

fn stored(l: &Layer) -> Digest {
    Digest::of(&l.stored)
}

fn oci_index(d: Digest) -> Source<'static> {
    Source {
        digest: d,
        media_type: OCI_INDEX,
        kept: None,
    }
}

fn names(c: &crate::model::Catalog) -> Vec<String> {
    c.package_names()
}

fn keep(mut c: crate::model::Catalog, packages: &[&str]) -> crate::model::Catalog {
    c.packages.retain(|n, _| packages.contains(&n.as_str()));
    c.others
        .retain(|o| o.package.as_deref().is_some_and(|p| packages.contains(&p)));
    c
}

fn manifest_of(store: &Store, d: &Digest) -> ImageManifest {
    serde_json::from_slice(&store.get(d)).unwrap()
}

fn config_of(store: &Store, m: &ImageManifest) -> Value {
    serde_json::from_slice(&store.get(&m.config.digest)).unwrap()
}

/// (path, type, mode, uid, gid, mtime, user name, content) of each entry.
type Row = (String, char, u32, u64, u64, u64, String, Vec<u8>);

fn entries_of(tar: &[u8]) -> Vec<Row> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            (
                String::from_utf8(e.path_bytes().to_vec())
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string(),
                h.entry_type().as_byte() as char,
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                h.username().unwrap().unwrap_or_default().to_string(),
                body,
            )
        })
        .collect()
}

fn raw_names(tar: &[u8]) -> Vec<String> {
    // The header's own name bytes (a directory's trailing `/` included).
    let mut out = Vec::new();
    let mut a = tar::Archive::new(tar);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let name = &e.header().as_old().name;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        out.push(String::from_utf8(name[..end].to_vec()).unwrap());
    }
    out
}

// ---------------------------------------------------------------- content_of

#[test]
fn content_of_reads_labels_and_the_cache_dir() {
    let cfg = |labels: Value, entrypoint: Value, cmd: Value| {
        serde_json::to_vec(&json!({"config": {"Labels": labels, "Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/work"}})).unwrap()
    };
    let c = content_of(&cfg(
        fbc_labels(),
        json!(["/bin/opm"]),
        json!(["serve", "/configs", "--cache-dir=/tmp/cache"]),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        c,
        Content {
            kind: Kind::Fbc,
            path: "configs".into(),
            cache_dir: Some("tmp/cache".into())
        }
    );
    // The flag and its value apart, trailing slashes, a relative dir from WorkingDir.
    let labels = json!({CONFIGS_LABEL: "//configs/./"});
    let c = content_of(&cfg(
        labels.clone(),
        json!([
            "/bin/opm",
            "serve",
            "/configs",
            "--cache-dir",
            "/var/cache/"
        ]),
        Value::Null,
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        (c.path.as_str(), c.cache_dir.as_deref()),
        ("configs", Some("var/cache"))
    );
    let c = content_of(&cfg(
        labels.clone(),
        json!(["/bin/opm"]),
        json!(["serve", "/configs", "--cache-dir=cache"]),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(c.cache_dir.as_deref(), Some("work/cache"));
    let c = content_of(&cfg(
        labels,
        json!(["/bin/opm"]),
        json!(["serve", "/configs"]),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(c.cache_dir, None);
    // SQLite.
    let c = content_of(&cfg(
        json!({DATABASE_LABEL: "/database/index.db"}),
        Value::Null,
        json!(["registry", "serve", "--database", "/database/index.db"]),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        (c.kind, c.path.as_str(), c.cache_dir),
        (Kind::Sqlite, "database/index.db", None)
    );
    // Both labels: the configs directory is what opm serves (and oc-mirror reads).
    let both = json!({DATABASE_LABEL: "/database/index.db", CONFIGS_LABEL: "/configs"});
    let c = content_of(&cfg(both, Value::Null, Value::Null))
        .unwrap()
        .unwrap();
    assert_eq!((c.kind, c.path.as_str()), (Kind::Fbc, "configs"));
    // Neither label; no Labels at all; no config at all.
    assert_eq!(
        content_of(&cfg(json!({"vendor": "x"}), Value::Null, Value::Null)).unwrap(),
        None
    );
    assert_eq!(content_of(br#"{"config":{"Labels":null}}"#).unwrap(), None);
    assert_eq!(content_of(br#"{"architecture":"amd64"}"#).unwrap(), None);
    // Refused: relative, climbing, the root, not JSON.
    for (value, why) in [
        ("configs", "not an absolute path"),
        ("/configs/../etc", "climbs"),
        ("/", "root"),
    ] {
        let e = content_of(&cfg(
            json!({CONFIGS_LABEL: value}),
            Value::Null,
            Value::Null,
        ))
        .unwrap_err();
        assert!(e.contains(CONFIGS_LABEL) && e.contains(why), "{e}");
    }
    let e = content_of(&cfg(
        fbc_labels(),
        Value::Null,
        json!(["serve", "--cache-dir=/tmp/../.."]),
    ))
    .unwrap_err();
    assert!(e.contains("--cache-dir"), "{e}");
    assert!(content_of(b"not json")
        .unwrap_err()
        .contains("not an image config"));
}

// ---------------------------------------------------------------- read

#[test]
fn read_opens_only_the_catalog_layer_and_prefers_amd64() {
    let store = Store::default();
    let (top, specs, children) = multi_arch(&store);
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &oci_index(top), scratch.path()).unwrap();
    assert_eq!(loaded.kind, Kind::Fbc);
    assert_eq!(loaded.manifest, children[1], "linux/amd64, though second");
    assert_eq!(loaded.layer, stored(&configs_layer()));
    assert_eq!(
        names(&loaded.catalog),
        ["alpha", "beta", "delta", "epsilon", "gamma"]
    );
    let listing = crate::list(&loaded.catalog, Some("alpha")).unwrap();
    assert_eq!(
        listing.packages[0].default_channel.as_deref(),
        Some("stable")
    );
    assert!(listing
        .bundles
        .unwrap()
        .iter()
        .any(|b| b.name == "a.v2.0.0"));
    assert!(loaded
        .catalog
        .packages
        .values()
        .flat_map(|p| p.bundles.values())
        .all(|b| b.raw.is_none()));
    // The history names /configs: that layer alone is opened (twice: found, then read).
    for s in &specs {
        assert_eq!(store.opened(&stored(&s.layers[0])), 0, "base layer opened");
        assert_eq!(store.opened(&stored(&s.layers[2])), 0, "cache layer opened");
    }
    assert_eq!(store.opened(&loaded.layer), 2);

    // fill_raw gives the kept bundles their objects, from that layer again.
    let mut kept = keep(loaded.catalog, &["alpha", "beta"]);
    let loaded = Loaded {
        catalog: Default::default(),
        ..loaded
    };
    fill_raw(&store, &loaded, &mut kept).unwrap();
    let expected = keep(
        crate::read_tar(
            &gunzip(&configs_layer().stored)[..],
            "/configs",
            Default::default(),
        )
        .unwrap(),
        &["alpha", "beta"],
    );
    assert_eq!(
        crate::write(&kept).unwrap(),
        crate::write(&expected).unwrap()
    );
    assert_eq!(store.opened(&loaded.layer), 3);
    for s in &specs {
        assert_eq!(store.opened(&stored(&s.layers[0])), 0);
    }

    // Keeping only arm64 reads it.
    let kept = [children[0]];
    let source = Source {
        kept: Some(&kept),
        ..oci_index(top)
    };
    assert_eq!(
        read(&store, &source, scratch.path()).unwrap().manifest,
        children[0]
    );
}

#[test]
fn without_history_layers_are_tried_from_the_top_down() {
    let store = Store::default();
    let mut spec = Spec::fbc(
        "amd64",
        vec![base("amd64"), configs_layer(), cache_layer("amd64")],
    );
    spec.history = None;
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    assert_eq!(loaded.layer, stored(&spec.layers[1]));
    assert_eq!(
        store.opened(&stored(&spec.layers[2])),
        1,
        "the top layer is tried"
    );
    assert_eq!(
        store.opened(&stored(&spec.layers[0])),
        0,
        "the base is never opened"
    );
}

#[test]
fn plain_and_zstd_layers_are_read() {
    let tar = tar_of(&catalog_entries("configs"));
    // Two gzip members, as some tools write a layer: read as one stream.
    let (a, b) = tar.split_at(tar.len() / 2);
    let members = [gzip(a), gzip(b)].concat();
    for stored_bytes in [tar.clone(), zstd::encode_all(&tar[..], 3).unwrap(), members] {
        let store = Store::default();
        let l = Layer {
            stored: stored_bytes,
            diff_id: Digest::of(&tar),
            created_by: "COPY configs /configs".into(),
        };
        let spec = Spec::fbc("amd64", vec![base("amd64"), l]);
        let (m, _) = image(&store, &spec);
        let scratch = tempfile::tempdir().unwrap();
        let source = Source {
            digest: m,
            media_type: OCI_MANIFEST,
            kept: None,
        };
        let loaded = read(&store, &source, scratch.path()).unwrap();
        assert_eq!(names(&loaded.catalog).len(), 5);
    }
}

// ---------------------------------------------------------------- rebuild (FBC)

#[test]
fn rebuild_drops_catalog_and_cache_layers_and_adds_one_deterministic_layer() {
    let store = Store::default();
    let (top, specs, _) = multi_arch(&store);
    let scratch = tempfile::tempdir().unwrap();
    let source = oci_index(top);
    let loaded = read(&store, &source, scratch.path()).unwrap();
    let mut selected = keep(
        crate::read_tar(
            &gunzip(&configs_layer().stored)[..],
            "/configs",
            crate::ReadOptions {
                raw_bundles: crate::RawBundles::None,
            },
        )
        .unwrap(),
        &["alpha", "beta", "gamma"],
    );
    fill_raw(&store, &loaded, &mut selected).unwrap();
    let r = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&selected),
        HISTORY,
    )
    .unwrap();

    assert_eq!(r.media_type, OCI_INDEX);
    assert_eq!(r.platforms, ["linux/arm64/v8", "linux/amd64"]);
    assert_eq!(r.manifests.len(), 3);
    assert_eq!(r.manifests[0], (r.digest, r.size));
    let mut dropped = r.dropped_layers.clone();
    dropped.sort();
    let mut expected = vec![
        (stored(&configs_layer()), "holds only /configs".to_string()),
        (
            stored(&specs[0].layers[2]),
            "holds only opm's cache /tmp/cache".to_string(),
        ),
        (
            stored(&specs[1].layers[2]),
            "holds only opm's cache /tmp/cache".to_string(),
        ),
    ];
    expected.sort();
    assert_eq!(dropped, expected);

    let idx: Index = serde_json::from_slice(&store.get(&r.digest)).unwrap();
    assert_eq!(idx.media_type.as_deref(), Some(OCI_INDEX));
    assert_eq!(idx.manifests.len(), 2);
    let mut new_layer = None;
    for (i, (child, spec)) in idx.manifests.iter().zip(&specs).enumerate() {
        assert_eq!(child.platform.as_ref().unwrap().architecture, spec.arch);
        assert_eq!(
            child.annotations["x.arch"], spec.arch,
            "descriptor annotations kept"
        );
        assert_eq!(r.manifests[i + 1], (child.digest, child.size.unwrap()));
        let m = manifest_of(&store, &child.digest);
        assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST));
        assert_eq!(m.annotations["org.opencontainers.image.title"], "catalog");
        assert_eq!(m.layers.len(), 2, "base + the new layer");
        assert_eq!(m.layers[0].digest, stored(&spec.layers[0]));
        let l = &m.layers[1];
        assert_eq!(l.media_type.as_deref(), Some(OCI_LAYER_GZIP));
        let gz = store.get(&l.digest);
        assert_eq!(l.size, Some(gz.len() as u64));
        assert_eq!(
            *new_layer.get_or_insert(l.digest),
            l.digest,
            "one layer shared"
        );

        let c = config_of(&store, &m);
        assert_eq!(
            m.config.size,
            Some(store.get(&m.config.digest).len() as u64)
        );
        assert_eq!(m.config.media_type.as_deref(), Some(OCI_CONFIG));
        assert_eq!(c["config"]["Cmd"], json!(["serve", "/configs"]));
        assert_eq!(c["config"]["Entrypoint"], json!(["/bin/opm"]));
        assert_eq!(c["config"]["Labels"], fbc_labels());
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin"]));
        assert_eq!(c["architecture"], spec.arch);
        assert_eq!(
            c["rootfs"]["diff_ids"],
            json!([
                spec.layers[0].diff_id.to_string(),
                Digest::of(&gunzip(&gz)).to_string()
            ])
        );
        let history = c["history"].as_array().unwrap();
        let layers: Vec<&Value> = history
            .iter()
            .filter(|h| h["empty_layer"] != json!(true))
            .collect();
        assert_eq!(layers.len(), m.layers.len(), "history matches the layers");
        assert_eq!(layers[0]["created_by"], "ADD file:base in / ");
        assert_eq!(layers[1]["created_by"], HISTORY);
        assert_eq!(layers[1]["created"], CREATED);
        assert!(history
            .iter()
            .any(|h| h["created_by"] == "LABEL vendor=example"));
    }
    for (d, size) in &r.blobs {
        assert_eq!(store.get(d).len() as u64, *size, "{d}");
    }
    assert!(!r
        .blobs
        .iter()
        .any(|(d, _)| dropped.iter().any(|(x, _)| x == d)));

    // The new layer: configs/ and the packages' files, nothing else, normalised.
    let gz = store.get(&new_layer.unwrap());
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0], "gzip, no name, no flags");
    assert_eq!(&gz[4..8], &[0, 0, 0, 0], "gzip mtime 0");
    assert_eq!(gz[9], 255, "OS unknown");
    let tar = gunzip(&gz);
    let rows = entries_of(&tar);
    let written = crate::write(&selected).unwrap();
    assert_eq!(
        written.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        [
            "configs/alpha/catalog.json",
            "configs/beta/catalog.json",
            "configs/gamma/catalog.json"
        ]
    );
    let mut expected = vec![("configs".to_string(), '5', 0o755, Vec::new())];
    for f in &written {
        let dir = f.path.rsplit_once('/').unwrap().0;
        expected.push((dir.to_string(), '5', 0o755, Vec::new()));
        expected.push((f.path.clone(), '0', 0o644, f.bytes.clone()));
    }
    let got: Vec<(String, char, u32, Vec<u8>)> = rows
        .iter()
        .map(|r| (r.0.clone(), r.1, r.2, r.7.clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(rows
        .iter()
        .all(|r| r.3 == 0 && r.4 == 0 && r.5 == 0 && r.6.is_empty()));
    assert_eq!(raw_names(&tar)[..2], ["configs/", "configs/alpha/"]);

    // Read back: the rebuilt image's catalog is the selection, found in the new layer at once.
    store.forget_opens();
    let again = read(&store, &oci_index(r.digest), scratch.path()).unwrap();
    assert_eq!(names(&again.catalog), ["alpha", "beta", "gamma"]);
    assert_eq!(again.layer, new_layer.unwrap());
    assert_eq!(store.opened(&stored(&specs[1].layers[0])), 0);

    // Twice: the same bytes.
    let r2 = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&selected),
        HISTORY,
    )
    .unwrap();
    assert_eq!(
        (r2.digest, &r2.manifests, &r2.blobs),
        (r.digest, &r.manifests, &r.blobs)
    );

    // Only the kept children; the new layer is the same.
    let kept = [idx.manifests[0].digest];
    let arm = oci::manifest::parse(&store.get(&top)).unwrap().manifests[0].digest;
    let kept_src = [arm];
    let one = rebuild(
        &store,
        &store,
        &Source {
            kept: Some(&kept_src),
            ..oci_index(top)
        },
        &loaded,
        NewContent::Fbc(&selected),
        HISTORY,
    )
    .unwrap();
    let idx1: Index = serde_json::from_slice(&store.get(&one.digest)).unwrap();
    assert_eq!(idx1.manifests.len(), 1);
    assert_eq!(
        idx1.manifests[0].digest, kept[0],
        "the same child as in the full rebuild"
    );
    assert_eq!(one.platforms, ["linux/arm64/v8"]);
}

#[test]
fn mixed_layers_are_kept_and_whited_out() {
    let store = Store::default();
    let mut mixed = catalog_entries("configs");
    mixed.push(("usr/".into(), E::Dir));
    mixed.push(("usr/share/doc".into(), file("docs")));
    let tar = tar_of(&mixed);
    let mixed = Layer {
        diff_id: Digest::of(&tar),
        stored: gzip(&tar),
        created_by: "COPY rootfs / ".into(),
    };
    let cache_mixed = layer(
        vec![
            ("tmp/cache/", E::Dir),
            ("tmp/cache/digest", file("fnv")),
            ("var/log/opm.log", file("built")),
        ],
        "RUN opm serve --cache-only && echo done > /var/log/opm.log",
    );
    let spec = Spec::fbc(
        "amd64",
        vec![base("amd64"), mixed.clone(), cache_mixed.clone()],
    );
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    assert_eq!(loaded.layer, stored(&mixed));
    let mut selected = keep(
        crate::read_tar(&gunzip(&mixed.stored)[..], "/configs", Default::default()).unwrap(),
        &["delta"],
    );
    fill_raw(&store, &loaded, &mut selected).unwrap();
    let r = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&selected),
        HISTORY,
    )
    .unwrap();
    assert!(r.dropped_layers.is_empty(), "{:?}", r.dropped_layers);
    assert_eq!(r.media_type, OCI_MANIFEST);
    let out = manifest_of(&store, &r.digest);
    assert_eq!(out.layers.len(), 4);
    let tar = gunzip(&store.get(&out.layers[3].digest));
    let paths: Vec<String> = entries_of(&tar).into_iter().map(|r| r.0).collect();
    assert_eq!(
        paths,
        [
            "configs",
            "configs/.wh..wh..opq",
            "configs/delta",
            "configs/delta/catalog.json",
            "tmp/.wh.cache",
        ],
        "no tmp/ entry: /tmp keeps its mode"
    );
    // The rebuilt image reads as the selection (the new layer is tried first).
    let again = read(
        &store,
        &Source {
            digest: r.digest,
            ..source
        },
        scratch.path(),
    )
    .unwrap();
    assert_eq!(names(&again.catalog), ["delta"]);
}

#[test]
fn a_catalog_in_two_layers_is_refused_unless_a_whiteout_hides_the_first() {
    let store = Store::default();
    let second = layer(
        vec![(
            "configs/zeta/catalog.json",
            file(r#"{"schema":"olm.package","name":"zeta"}"#),
        )],
        "COPY zeta /configs/zeta",
    );
    let spec = Spec::fbc(
        "amd64",
        vec![base("amd64"), configs_layer(), second.clone()],
    );
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    let e = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&Default::default()),
        HISTORY,
    )
    .unwrap_err();
    match &e {
        ImageError::SpreadOver {
            digest,
            path,
            layers,
        } => {
            assert_eq!((digest, path.as_str()), (&m, "/configs"));
            assert_eq!(layers, &[stored(&configs_layer()), stored(&second)]);
        }
        other => panic!("{other}"),
    }
    let text = e.to_string();
    assert!(
        text.contains(&m.to_string()) && text.contains(&stored(&second).to_string()),
        "{text}"
    );

    // oc-mirror's rebuild: `.wh.configs`, then the new configs: the first is dead.
    let store = Store::default();
    let wh = layer(vec![(".wh.configs", file(""))], "");
    let again = configs_layer();
    let mut again = again.clone();
    again.created_by = String::new(); // go-containerregistry appends empty history
                                      // a different layer digest from the first
    let tar = tar_of(
        &catalog_entries("configs")
            .into_iter()
            .rev()
            .collect::<Vec<_>>(),
    );
    again.diff_id = Digest::of(&tar);
    again.stored = gzip(&tar);
    let spec = Spec::fbc(
        "amd64",
        vec![base("amd64"), configs_layer(), wh.clone(), again.clone()],
    );
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let loaded = read(&store, &source, scratch.path()).unwrap();
    // Its layers above opm's say nothing in their history: they are tried first, and the
    // catalog is oc-mirror's, not the hidden original.
    assert_eq!(loaded.layer, stored(&again));
    assert_eq!(store.opened(&stored(&configs_layer())), 0);
    let selected = {
        let mut c = keep(loaded.catalog, &["beta"]);
        let l = Loaded {
            catalog: Default::default(),
            ..loaded
        };
        fill_raw(&store, &l, &mut c).unwrap();
        (c, l)
    };
    let r = rebuild(
        &store,
        &store,
        &source,
        &selected.1,
        NewContent::Fbc(&selected.0),
        HISTORY,
    )
    .unwrap();
    let dropped: Vec<Digest> = r.dropped_layers.iter().map(|d| d.0).collect();
    assert_eq!(
        dropped,
        [stored(&configs_layer()), stored(&wh), stored(&again)]
    );
}

#[test]
fn docker_manifest_gives_a_docker_manifest() {
    let store = Store::default();
    let mut spec = Spec::fbc(
        "amd64",
        vec![base("amd64"), configs_layer(), cache_layer("amd64")],
    );
    spec.docker = true;
    // `--cache-dir X` apart, and the integrity flag: all removed.
    spec.cmd = json!([
        "serve",
        "/configs",
        "--cache-dir",
        "/tmp/cache",
        "--cache-enforce-integrity=true"
    ]);
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: DOCKER_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    let mut selected = keep(
        crate::read_tar(
            &gunzip(&configs_layer().stored)[..],
            "/configs",
            crate::ReadOptions {
                raw_bundles: crate::RawBundles::None,
            },
        )
        .unwrap(),
        &["epsilon"],
    );
    fill_raw(&store, &loaded, &mut selected).unwrap();
    let r = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&selected),
        HISTORY,
    )
    .unwrap();
    assert_eq!(r.media_type, DOCKER_MANIFEST);
    assert_eq!(r.manifests, [(r.digest, r.size)]);
    assert_eq!(r.platforms, ["linux/amd64"]);
    let out = manifest_of(&store, &r.digest);
    assert_eq!(out.media_type.as_deref(), Some(DOCKER_MANIFEST));
    assert_eq!(out.config.media_type.as_deref(), Some(DOCKER_CONFIG));
    assert_eq!(out.layers.len(), 2);
    assert_eq!(out.layers[1].media_type.as_deref(), Some(DOCKER_LAYER_GZIP));
    let c = config_of(&store, &out);
    assert_eq!(c["config"]["Cmd"], json!(["serve", "/configs"]));

    // In a Docker manifest list: a manifest list comes out, its child a Docker manifest.
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": m.to_string(), "size": store.get(&m).len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    });
    let list = store.add(serde_json::to_vec(&list).unwrap());
    let source = Source {
        digest: list,
        media_type: DOCKER_LIST,
        kept: None,
    };
    let r2 = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&selected),
        HISTORY,
    )
    .unwrap();
    assert_eq!(r2.media_type, DOCKER_LIST);
    let idx: Index = serde_json::from_slice(&store.get(&r2.digest)).unwrap();
    assert_eq!(idx.media_type.as_deref(), Some(DOCKER_LIST));
    assert_eq!(
        idx.manifests[0].media_type.as_deref(),
        Some(DOCKER_MANIFEST)
    );
    assert_eq!(
        idx.manifests[0].digest, r.digest,
        "the same child as rebuilt alone"
    );
}

#[test]
fn an_inconsistent_history_is_dropped() {
    let store = Store::default();
    let mut spec = Spec::fbc("amd64", vec![base("amd64"), configs_layer()]);
    spec.history = Some(false);
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    let r = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&Default::default()),
        HISTORY,
    )
    .unwrap();
    let c = config_of(&store, &manifest_of(&store, &r.digest));
    assert!(c.get("history").is_none(), "{c}");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------- SQLite

fn sqlite_spec(db: &[u8]) -> Spec {
    Spec {
        docker: false,
        arch: "amd64",
        variant: None,
        layers: vec![
            base("amd64"),
            layer(
                vec![
                    ("database/", E::Dir),
                    ("database/index.db", E::File(db.to_vec())),
                ],
                "ADD database /database",
            ),
        ],
        labels: json!({DATABASE_LABEL: "/database/index.db"}),
        entrypoint: json!(["/bin/opm"]),
        cmd: json!(["registry", "serve", "--database", "/database/index.db"]),
        history: Some(true),
    }
}

#[test]
fn sqlite_catalog_is_extracted_read_and_rebuilt_with_the_pruned_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("built.db");
    crate::sqlite::tests::build(&db);
    let store = Store::default();
    let spec = sqlite_spec(&std::fs::read(&db).unwrap());
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let loaded = read(&store, &source, &scratch).unwrap();
    assert_eq!(loaded.kind, Kind::Sqlite);
    assert_eq!(names(&loaded.catalog), ["alpha", "beta", "gamma"]);
    let extracted = loaded.database.clone().unwrap();
    assert!(extracted.starts_with(&scratch));
    assert_eq!(
        std::fs::read(&extracted).unwrap(),
        std::fs::read(&db).unwrap()
    );
    assert_eq!(
        store.opened(&stored(&spec.layers[0])),
        0,
        "the base is not opened"
    );

    let pruned = dir.path().join("pruned.db");
    crate::sqlite::prune(
        &crate::sqlite::open(&extracted).unwrap(),
        &["alpha".into()],
        &pruned,
    )
    .unwrap();
    let r = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Sqlite(&pruned),
        HISTORY,
    )
    .unwrap();
    assert_eq!(
        r.dropped_layers,
        [(
            stored(&spec.layers[1]),
            "holds only /database/index.db".to_string()
        )]
    );
    let out = manifest_of(&store, &r.digest);
    assert_eq!(out.layers.len(), 2);
    let c = config_of(&store, &out);
    assert_eq!(
        c["config"]["Cmd"],
        json!(["registry", "serve", "--database", "/database/index.db"])
    );
    let tar = gunzip(&store.get(&out.layers[1].digest));
    let rows = entries_of(&tar);
    assert_eq!(
        rows.iter().map(|r| (r.0.as_str(), r.2)).collect::<Vec<_>>(),
        [("database", 0o755), ("database/index.db", 0o644)]
    );
    assert_eq!(rows[1].7, std::fs::read(&pruned).unwrap());
    // The database in the new layer opens and holds only the kept package.
    let back = dir.path().join("back.db");
    std::fs::write(&back, &rows[1].7).unwrap();
    let c = crate::sqlite::read(&crate::sqlite::open(&back).unwrap()).unwrap();
    assert_eq!(names(&c), ["alpha"]);
    // And reading the rebuilt image finds it.
    let again = read(
        &store,
        &Source {
            digest: r.digest,
            ..source.clone()
        },
        &scratch,
    )
    .unwrap();
    assert_eq!(names(&again.catalog), ["alpha"]);
    let r2 = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Sqlite(&pruned),
        HISTORY,
    )
    .unwrap();
    assert_eq!(r2.digest, r.digest);
    // The other kind of content is refused.
    let e = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&Default::default()),
        HISTORY,
    )
    .unwrap_err();
    assert!(matches!(e, ImageError::ContentKind { .. }), "{e}");
}

#[test]
fn a_database_that_is_a_link_is_refused() {
    let store = Store::default();
    let mut spec = sqlite_spec(b"");
    spec.layers[1] = layer(
        vec![
            ("database/", E::Dir),
            ("database/index.db", E::Symlink("/etc/passwd")),
        ],
        "ADD database /database",
    );
    let (m, _) = image(&store, &spec);
    let scratch = tempfile::tempdir().unwrap();
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let e = read(&store, &source, scratch.path()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&stored(&spec.layers[1]).to_string())
            && text.contains("/database/index.db is a link"),
        "{text}"
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn errors_name_the_image_part_at_fault() {
    let scratch = tempfile::tempdir().unwrap();
    let single = |d| Source {
        digest: d,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    // Not a catalog: no label.
    let store = Store::default();
    let mut spec = Spec::fbc("amd64", vec![base("amd64")]);
    spec.labels = json!({"vendor": "x"});
    let (m, _) = image(&store, &spec);
    let e = read(&store, &single(m), scratch.path()).unwrap_err();
    assert!(
        matches!(e, ImageError::NotACatalog { digest } if digest == m),
        "{e}"
    );
    assert!(e.to_string().contains(&m.to_string()));

    // The label, but no layer holds the path (a whiteout alone is no content).
    let spec = Spec::fbc(
        "amd64",
        vec![
            base("amd64"),
            layer(vec![("configs/.wh.old", file(""))], ""),
        ],
    );
    let (m, _) = image(&store, &spec);
    let e = read(&store, &single(m), scratch.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no layer of {m} holds /configs (the path its label names)")
    );

    // A relative label: the config is named.
    let mut spec = Spec::fbc("amd64", vec![base("amd64")]);
    spec.labels = json!({CONFIGS_LABEL: "configs"});
    let (m, _) = image(&store, &spec);
    let e = read(&store, &single(m), scratch.path()).unwrap_err();
    let config = manifest_of(&store, &m).config.digest;
    assert!(
        matches!(&e, ImageError::Malformed { digest, .. } if *digest == config),
        "{e}"
    );

    // A top blob that is not an index; a missing blob; a kept child the index lacks.
    let junk = store.add(b"{\"schemaVersion\": \"two\"}".to_vec());
    let e = read(&store, &oci_index(junk), scratch.path()).unwrap_err();
    assert!(
        matches!(&e, ImageError::Malformed { digest, .. } if *digest == junk),
        "{e}"
    );
    let absent = Digest::of(b"absent");
    let e = read(&store, &oci_index(absent), scratch.path()).unwrap_err();
    assert!(
        matches!(&e, ImageError::Blob { digest, .. } if *digest == absent),
        "{e}"
    );
    let (top, _, _) = multi_arch(&store);
    let kept = [absent];
    let e = read(
        &store,
        &Source {
            kept: Some(&kept),
            ..oci_index(top)
        },
        scratch.path(),
    )
    .unwrap_err();
    assert!(e.to_string().contains(&absent.to_string()), "{e}");

    // A layer that is not a tar stream.
    let bad = Layer {
        stored: gzip(b"\x01 not a tar header, and short"),
        diff_id: Digest::of(b""),
        created_by: "ADD x /configs".into(),
    };
    let spec = Spec::fbc("amd64", vec![base("amd64"), bad.clone()]);
    let (m, _) = image(&store, &spec);
    let e = read(&store, &single(m), scratch.path()).unwrap_err();
    assert!(
        matches!(&e, ImageError::Layer { digest, .. } if *digest == stored(&bad)),
        "{e}"
    );

    // A catalog file that is not JSON: the layer and the file are named.
    let broken = layer(
        vec![("configs/alpha/catalog.json", file("{ nope"))],
        "ADD x in /configs",
    );
    let spec = Spec::fbc("amd64", vec![base("amd64"), broken.clone()]);
    let (m, _) = image(&store, &spec);
    let e = read(&store, &single(m), scratch.path()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&stored(&broken).to_string()) && text.contains("alpha/catalog.json"),
        "{text}"
    );
}

#[test]
fn foreign_layers_are_kept_and_never_opened() {
    let store = Store::default();
    let mut spec = Spec::fbc("amd64", vec![base("amd64"), configs_layer()]);
    spec.history = None;
    let (m, _) = image(&store, &spec);
    // A foreign layer on top (its blob is nowhere here: it lives at its URL).
    let mut manifest: Value = serde_json::from_slice(&store.get(&m)).unwrap();
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut config: Value = serde_json::from_slice(&store.get(&config_digest)).unwrap();
    let foreign = Digest::of(b"foreign");
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(Digest::of(b"foreign tar").to_string()));
    let config = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = json!(Digest::of(&config).to_string());
    manifest["config"]["size"] = json!(config.len());
    store.add(config);
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": DOCKER_FOREIGN_LAYER_GZIP, "digest": foreign.to_string(), "size": 7,
        "urls": ["https://example.com/layer"]}));
    let m = store.add(serde_json::to_vec(&manifest).unwrap());
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    assert_eq!(loaded.layer, stored(&configs_layer()));
    let r = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&Default::default()),
        HISTORY,
    )
    .unwrap();
    assert_eq!(store.opened(&foreign), 0);
    let out = manifest_of(&store, &r.digest);
    let layers: Vec<Digest> = out.layers.iter().map(|l| l.digest).collect();
    assert_eq!(layers[..2], [stored(&spec.layers[0]), foreign]);
    assert!(
        !r.blobs.iter().any(|(d, _)| *d == foreign),
        "not a blob to carry"
    );
}

/// A database whose tar header claims more than the scratch disk holds (the size a
/// gzip bomb would unpack to) is refused before a byte is written, naming the layer,
/// the path, the sizes and the directory.
#[test]
fn a_database_larger_than_the_free_space_is_refused_before_writing() {
    let store = Store::default();
    let mut spec = sqlite_spec(b"");
    let mut h = tar::Header::new_gnu();
    h.set_path("database/index.db").unwrap();
    h.set_mode(0o644);
    h.set_size(1 << 50); // 1 PiB, and no data behind it
    h.set_cksum();
    let tar = h.as_bytes().to_vec();
    spec.layers[1] = Layer {
        diff_id: Digest::of(&tar),
        stored: gzip(&tar),
        created_by: "ADD database /database".into(),
    };
    let (m, _) = image(&store, &spec);
    let scratch = tempfile::tempdir().unwrap();
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let e = read(&store, &source, scratch.path()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ImageError::NoRoom { .. }), "{text}");
    assert!(
        text.contains(&stored(&spec.layers[1]).to_string())
            && text.contains("/database/index.db is 1125899906842624 bytes")
            && text.contains(&scratch.path().display().to_string()),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "nothing is written"
    );
}

/// A catalog whose layer a later layer removes (`.wh.configs`) is not the one the image
/// serves: read() finds it (it stops at the first layer holding files there), and rebuild
/// refuses it, naming both, rather than bring a deleted catalog back.
#[test]
fn a_catalog_removed_by_a_later_whiteout_is_refused() {
    let store = Store::default();
    let wh = layer(vec![(".wh.configs", file(""))], "RUN rm -rf /configs");
    let spec = Spec::fbc("amd64", vec![base("amd64"), configs_layer(), wh]);
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let loaded = read(&store, &source, scratch.path()).unwrap();
    assert_eq!(loaded.layer, stored(&configs_layer()));
    let e = rebuild(
        &store,
        &store,
        &source,
        &loaded,
        NewContent::Fbc(&Default::default()),
        HISTORY,
    )
    .unwrap_err();
    assert!(matches!(e, ImageError::Hidden { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&m.to_string())
            && text.contains(&stored(&configs_layer()).to_string())
            && text.contains("the image serves none"),
        "{text}"
    );
}

/// A database path written twice in its layer is the later entry, as extraction (and the
/// runtime) leaves it: the first, stale one is not what is selected from.
#[test]
fn a_database_written_twice_is_the_later_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("built.db");
    crate::sqlite::tests::build(&db);
    let store = Store::default();
    let mut spec = sqlite_spec(b"");
    spec.layers[1] = layer(
        vec![
            ("database/", E::Dir),
            ("database/index.db", file("stale, not a database")),
            ("database/index.db", E::File(std::fs::read(&db).unwrap())),
        ],
        "ADD database /database",
    );
    let (m, _) = image(&store, &spec);
    let source = Source {
        digest: m,
        media_type: OCI_MANIFEST,
        kept: None,
    };
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let loaded = read(&store, &source, &scratch).unwrap();
    assert_eq!(names(&loaded.catalog), ["alpha", "beta", "gamma"]);
}
