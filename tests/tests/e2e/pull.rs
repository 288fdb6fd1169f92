//! The connected side from registries (README "Pull from registries"): an image set read
//! by `ferry-pack pull` and `ferry-pack --config`, against a real docker-registry holding
//! the fixture images under their original names (`registry.redhat.io/…`, through a
//! registries.conf), a second registry as the inside, and skopeo reading back. What a user
//! checks: the images come out on the inside by their original digests, the cluster
//! manifests name the real source, the same set packs the same volumes, `--platform`
//! keeps the index byte for byte, credentials work and never show, bad image sets are
//! named by file, line and field, and `--plan` and `--json` say what the docs say.
//!
//! The faults (SIGKILL, wrong bytes, the source going down, a full disk, two runs at once,
//! prune) are in `pull_faults.rs`, with the kit below.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize as _;
use serde_json::Value;
use tempfile::TempDir;
use test_support::credential_helper::{write_docker_config, CredentialHelper, HELPER_NAME};
use test_support::proxy::{Proxy, ProxyOptions};
use tests::registry::*;
use tests::source::*;
use tests::*;

const NO_TLS: &[&str] = &["--tls-verify=false"];

// ---------------------------------------------------------------------------------------
// The kit of the pull tests (pull_faults.rs uses it too)

/// One connected side: a scratch directory with a sandbox to run ferry-pack in (none of
/// the developer's auth files or registries.conf), a registries.conf that sends the
/// original names to the test's source, an image set, a cache and a signing key.
pub(crate) struct Connected {
    pub tmp: TempDir,
    pub sandbox: Sandbox,
    pub conf: PathBuf,
    pub set: PathBuf,
    pub cache: PathBuf,
    pub key: Key,
}

impl Connected {
    /// The names go straight to `source`'s registry.
    pub fn new(source: &SourceRegistry, set: &ImageSet) -> Connected {
        Connected::via(source, &source.registry.host(), set)
    }

    /// The names go to `host` (a proxy in front of `source`).
    pub fn via(source: &SourceRegistry, host: &str, set: &ImageSet) -> Connected {
        let tmp = tempdir();
        let conf = source.registries_conf_via(&tmp.path().join("registries.conf"), host);
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `ferry-pack pull --config SET --cache CACHE --registries-conf CONF EXTRA…`.
    pub fn pull_command(&self, extra: &[&str]) -> Command {
        let mut args: Vec<OsString> = vec![
            "pull".into(),
            "--config".into(),
            self.set.clone().into(),
            "--cache".into(),
            self.cache.clone().into(),
            "--registries-conf".into(),
            self.conf.clone().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        self.sandbox.pack_command(args)
    }

    pub fn pull(&self, extra: &[&str]) -> Output {
        run_command(&mut self.pull_command(extra))
    }

    /// `ferry-pack --config SET --cache CACHE --registries-conf CONF --out OUT
    /// --volume-size 64MiB --key KEY EXTRA…`.
    pub fn pack_command(&self, out: &Path, extra: &[&str]) -> Command {
        let mut args: Vec<OsString> = vec![
            "--config".into(),
            self.set.clone().into(),
            "--cache".into(),
            self.cache.clone().into(),
            "--registries-conf".into(),
            self.conf.clone().into(),
            "--out".into(),
            out.into(),
            "--volume-size".into(),
            "64MiB".into(),
            "--key".into(),
            self.key.private.clone().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        self.sandbox.pack_command(args)
    }

    pub fn pack(&self, out: &Path, extra: &[&str]) -> Output {
        run_command(&mut self.pack_command(out, extra))
    }

    /// `ferry-pack cache prune --config SET --cache CACHE`.
    pub fn prune(&self, set: &Path) -> Output {
        let mut c = self.sandbox.pack_command([
            OsStr::new("cache"),
            OsStr::new("prune"),
            OsStr::new("--config"),
            set.as_os_str(),
            OsStr::new("--cache"),
            self.cache.as_os_str(),
        ]);
        run_command(&mut c)
    }

    /// The digests of the files under `CACHE/blobs/sha256/`.
    pub fn blobs(&self) -> BTreeSet<String> {
        cache_blobs(&self.cache)
    }

    /// The cache's `index.json` descriptors.
    pub fn index(&self) -> Vec<Value> {
        let v: Value = serde_json::from_slice(
            &fs::read(self.cache.join("index.json")).expect("read the cache's index.json"),
        )
        .expect("the cache's index.json is JSON");
        v["manifests"].as_array().cloned().unwrap_or_default()
    }
}

/// The digests of the files under `<cache>/blobs/sha256/`, after checking what a user
/// would: every file there is named by a digest and its bytes hash to it, and nothing else
/// (no temporary, no partial download) is there.
#[track_caller]
pub(crate) fn cache_blobs(cache: &Path) -> BTreeSet<String> {
    let dir = cache.join("blobs/sha256");
    let mut out = BTreeSet::new();
    for name in names(&dir) {
        let is_hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(
            is_hex,
            "{}/{name} is not a blob named by its digest (a partial download or a temporary left under blobs/)",
            dir.display()
        );
        let digest = format!("sha256:{name}");
        assert_eq!(
            file_sha256(&dir.join(&name)),
            digest,
            "{}/{name} does not hash to its name",
            dir.display()
        );
        out.insert(digest);
    }
    out
}

/// Every blob of `image` in its registry: the top manifest, the children (all, or those
/// whose platform `keep` accepts), and their configs and layers. `(manifests, others)`.
pub(crate) fn image_blobs(
    registry: &Registry,
    image: &SourceImage,
    keep: impl Fn(&str) -> bool,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut manifests = BTreeSet::new();
    let mut others = BTreeSet::new();
    let mut stack = vec![image.digest.clone()];
    while let Some(d) = stack.pop() {
        let bytes = registry
            .manifest(&image.stored_repository, &d)
            .unwrap_or_else(|| panic!("{} has no manifest {d}", image.stored_repository));
        manifests.insert(d);
        let m: Value = serde_json::from_slice(&bytes).expect("a manifest is JSON");
        for child in m["manifests"].as_array().into_iter().flatten() {
            if keep(&platform_of(child)) {
                stack.push(text(&child["digest"]).to_owned());
            }
        }
        for b in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten())
        {
            if let Some(d) = b["digest"].as_str() {
                others.insert(d.to_owned());
            }
        }
    }
    (manifests, others)
}

/// `os/arch[/variant]` of an index entry.
pub(crate) fn platform_of(entry: &Value) -> String {
    let p = &entry["platform"];
    let mut s = format!("{}/{}", text(&p["os"]), text(&p["architecture"]));
    if let Some(v) = p["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

pub(crate) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The JSON Lines events of `--json` output, each checked to be an object with a `type`.
#[track_caller]
pub(crate) fn events(out: &Output) -> Vec<Value> {
    out.stdout_text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("--json line is not JSON ({e}): {l}\n{}", out.dump()));
            assert!(v["type"].is_string(), "an event without a type: {l}");
            v
        })
        .collect()
}

pub(crate) fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Panics unless `event` has every one of `members` (null is a value).
#[track_caller]
pub(crate) fn assert_members(event: &Value, members: &[&str]) {
    for m in members {
        assert!(
            event.get(m).is_some(),
            "the {} event has no {m:?} (docs/events.md): {event}",
            event["type"]
        );
    }
}

/// Every YAML document of a file.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}\n{text}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// `ferry-unpack push VOLS --trust PUB --to TO --insecure --state … --manifests-dir MAN`.
fn push(c: &Connected, vols: &Path, to: &str, man: &Path) -> Output {
    let mut cmd = c.sandbox.command([
        OsStr::new("push"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        c.key.public.as_os_str(),
        OsStr::new("--to"),
        OsStr::new(to),
        OsStr::new("--insecure"),
        OsStr::new("--state"),
        c.path("state").as_os_str(),
        OsStr::new("--manifests-dir"),
        man.as_os_str(),
    ]);
    run_command(&mut cmd)
}

/// `repository:tag` or `repository@digest` → its image object in the bundle manifest.
fn bundle_images(out: &Path) -> Vec<Value> {
    let (_, m) = standalone_manifest(out);
    m["images"].as_array().cloned().expect("images")
}

// ---------------------------------------------------------------------------------------
// 1. From the image set to the inside

/// The six fixture images as a user writes them (four by tag, two by digest) and the two
/// `quay.io` copies: pulled and packed in one command, verified, pushed into a second
/// registry; skopeo reads every image back from the inside by its original digest (and
/// the tagged ones by tag), and the mirror sets name the sources as written, never the
/// location registries.conf sent ferry to. Packing the same set from the full cache again
/// makes byte-identical volumes.
#[test]
fn an_image_set_goes_to_volumes_and_every_image_comes_out_inside_by_its_digest() {
    let source = SourceRegistry::start();
    let set = ImageSet::of(&source.references());
    let c = Connected::new(&source, &set);
    assert!(source.images.iter().any(|i| i.by_tag()));
    assert!(source.images.iter().any(|i| !i.by_tag()));

    let vols = c.path("vols");
    let out = c.pack(&vols, &[]);
    assert_ok(&out, "ferry-pack --config --cache (pull, then pack)");
    let verify = unpack([
        OsStr::new("verify"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        c.key.public.as_os_str(),
    ]);
    assert_ok(&verify, "ferry-unpack verify of the pulled bundle");

    // The bundle holds the set's images, each recorded by the name the set wrote.
    let images = bundle_images(&vols);
    let recorded: BTreeSet<String> = images
        .iter()
        .map(|i| format!("{}={}", text(&i["source"]), text(&i["digest"])))
        .collect();
    let wanted: BTreeSet<String> = source
        .images
        .iter()
        .map(|i| format!("{}={}", i.reference, i.digest))
        .collect();
    assert_eq!(recorded, wanted, "the bundle's sources are the set's references");

    let inside = Registry::plain();
    let to = format!("{}/in", inside.host());
    let man = c.path("manifests");
    let pushed = push(&c, &vols, &to, &man);
    assert_ok(&pushed, "push of the pulled bundle into a second registry");
    for image in &source.images {
        let at = format!("{to}/{}@{}", image.path, image.digest);
        assert_eq!(skopeo_digest(&at, NO_TLS), image.digest, "skopeo reads {at}");
        if let Some(tag) = &image.tag {
            let at = format!("{to}/{}:{tag}", image.path);
            assert_eq!(skopeo_digest(&at, NO_TLS), image.digest, "skopeo reads {at}");
        }
        for child in &image.children {
            let at = format!("{to}/{}@{child}", image.path);
            assert_eq!(&skopeo_digest(&at, NO_TLS), child, "every child: {at}");
        }
    }

    // The mirror sets name the real source, as the set wrote it.
    let idms = yaml_docs(&man.join("cluster/imageDigestMirrorSet.yaml"));
    let mut sources = BTreeSet::new();
    for doc in &idms {
        for m in doc["spec"]["imageDigestMirrors"]
            .as_array()
            .expect("imageDigestMirrors")
        {
            let s = text(&m["source"]).to_owned();
            assert!(
                !s.contains("127.0.0.1"),
                "the IDMS names the location registries.conf gave, not the source: {s}"
            );
            for mirror in m["mirrors"].as_array().expect("mirrors") {
                assert!(text(mirror).starts_with(&to), "{mirror}");
            }
            sources.insert(s);
        }
    }
    let expected: BTreeSet<String> = source
        .images
        .iter()
        .map(|i| format!("{}/{}", i.registry_name, i.path))
        .collect();
    assert_eq!(sources, expected, "IDMS sources");

}

/// README: "packing the same set from the same cache makes the same volumes" — what
/// `--only-volume` repairs and `--like` rely on. The set names images by tag, whose
/// resolution is recorded (`dev.ferry.resolved-at`); a second pull (and the pull of every
/// `ferry-pack --config`) finds the same digests, fetches nothing, and the volumes come
/// out byte for byte the same — with SOURCE_DATE_EPOCH and without (the bundle's time is
/// then the newest file time of what is packed, which must not move either).
#[test]
fn packing_the_same_set_from_the_same_cache_makes_the_same_volumes() {
    let source = SourceRegistry::start();
    let set = ImageSet::of(&source.references());
    let c = Connected::new(&source, &set);
    let first = c.pull(&[]);
    assert_ok(&first, "the first pull");

    let pack_twice = |what: &str, epoch: Option<&str>| {
        let mut outs = Vec::new();
        for n in 1..=2 {
            // A second later: a time recorded anew would show.
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let again = c.pull(&["--json"]);
            assert_ok(&again, &format!("{what}: a pull, the cache full"));
            let ev = events(&again);
            let summary = of_type(&ev, "summary");
            assert_eq!(summary.len(), 1, "{}", again.dump());
            assert_eq!(summary[0]["blobs_fetched"], 0, "{}", again.dump());
            assert_eq!(summary[0]["bytes_fetched"], 0, "{}", again.dump());
            assert_eq!(summary[0]["pulled"], source.images.len(), "{}", again.dump());
            let out = c.path(&format!("vols-{what}-{n}"));
            let mut cmd = c.pack_command(&out, &[]);
            if let Some(e) = epoch {
                cmd.env("SOURCE_DATE_EPOCH", e);
            }
            assert_ok(&run_command(&mut cmd), &format!("{what}: pack {n}"));
            outs.push(out);
        }
        let (_, a) = standalone_manifest(&outs[0]);
        let (_, b) = standalone_manifest(&outs[1]);
        let blobs = |m: &Value| -> BTreeSet<String> {
            m["blobs"]
                .as_array()
                .expect("blobs")
                .iter()
                .map(|b| format!("{} ({} bytes)", text(&b["digest"]), b["size"]))
                .collect()
        };
        let (x, y) = (blobs(&a), blobs(&b));
        assert_eq!(
            a["bundle_id"],
            b["bundle_id"],
            "{what}: the same set from the same cache made another bundle: blobs only in the first {:?}, only in the second {:?}; created {} and {} (the cache's index.json now: {})",
            x.difference(&y).collect::<Vec<_>>(),
            y.difference(&x).collect::<Vec<_>>(),
            a["created"],
            b["created"],
            fs::read_to_string(c.cache.join("index.json")).unwrap_or_default()
        );
        assert_same_files(&outs[0], &outs[1]);
    };
    pack_twice("with-epoch", Some("1700000000"));
    pack_twice("without-epoch", None);
}
