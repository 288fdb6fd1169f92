//! The connected side from registries (README "Pull from registries"): an image set read
//! by `ferry-pack pull` and `ferry-pack --config`, against a real docker-registry holding
//! the fixture images under their original names (`registry.redhat.io/…`, through a
//! registries.conf), a second registry as the inside, and skopeo reading back. What a user
//! checks: the images come out on the inside by their original digests, the cluster
//! manifests name the real source, the same set packs the same volumes, `--platform`
//! keeps the index byte for byte, credentials work and never show, bad image sets are
//! named by file, line and field, and `--plan` and `--json` say what the docs say.
//!
//! Here: the kit the pull tests share, the way from the set to the inside, platforms, and
//! what the set's images become. Credentials, TLS and registries.conf are in
//! `pull_sources.rs`; bad image sets and options, `--plan` and `--json` in
//! `pull_config.rs`; the faults (SIGKILL, wrong bytes, the source going down, a full disk,
//! two runs at once, prune) in `pull_faults.rs`.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize as _;
use serde_json::Value;
use tempfile::TempDir;
use test_support::proxy::{Proxy, ProxyOptions};
use tests::registry::*;
use tests::source::*;
use tests::*;

const NO_TLS: &[&str] = &["--tls-verify=false"];

// ---------------------------------------------------------------------------------------
// The kit of the pull tests (the other pull_* modules use it too)

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
        self.pack_command_sized(out, "64MiB", extra)
    }

    /// The same with another `--volume-size`.
    pub fn pack_command_sized(&self, out: &Path, size: &str, extra: &[&str]) -> Command {
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
            size.into(),
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
        for b in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten()) {
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
pub(crate) fn yaml_docs(path: &Path) -> Vec<Value> {
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
pub(crate) fn push(c: &Connected, vols: &Path, to: &str, man: &Path) -> Output {
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
pub(crate) fn bundle_images(out: &Path) -> Vec<Value> {
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
    assert_eq!(
        recorded, wanted,
        "the bundle's sources are the set's references"
    );

    let inside = Registry::plain();
    let to = format!("{}/in", inside.host());
    let man = c.path("manifests");
    let pushed = push(&c, &vols, &to, &man);
    assert_ok(&pushed, "push of the pulled bundle into a second registry");
    for image in &source.images {
        let at = format!("{to}/{}@{}", image.path, image.digest);
        assert_eq!(
            skopeo_digest(&at, NO_TLS),
            image.digest,
            "skopeo reads {at}"
        );
        if let Some(tag) = &image.tag {
            let at = format!("{to}/{}:{tag}", image.path);
            assert_eq!(
                skopeo_digest(&at, NO_TLS),
                image.digest,
                "skopeo reads {at}"
            );
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
            assert_eq!(
                summary[0]["pulled"],
                source.images.len(),
                "{}",
                again.dump()
            );
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

/// The repair README promises for the pack form: a lost volume written again with
/// `--only-volume N` (and `--like` the bundle's manifest) from the same cache, after the
/// pull has run again in between, is the lost volume byte for byte.
#[test]
fn a_lost_volume_is_written_again_from_the_cache_with_only_volume() {
    let source = SourceRegistry::start();
    let c = Connected::new(&source, &ImageSet::of(&source.references()));
    let vols = c.path("vols");
    assert_ok(
        &run_command(&mut c.pack_command_sized(&vols, "96KiB", &[])),
        "pack --config into small volumes",
    );
    let all = volumes(&vols);
    assert!(all.len() >= 3, "96KiB makes several volumes: {all:?}");
    let lost = all[1].clone();
    let original = fs::read(&lost).expect("read volume 2");
    fs::remove_file(&lost).expect("lose volume 2");
    let (manifest, _) = standalone_manifest(&vols);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = run_command(&mut c.pack_command_sized(
        &vols,
        "96KiB",
        &[
            "--only-volume",
            "2",
            "--like",
            manifest.to_str().expect("utf-8"),
        ],
    ));
    assert_ok(
        &out,
        "--only-volume 2 --like the bundle, from the same cache",
    );
    assert!(
        fs::read(&lost).is_ok_and(|b| b == original),
        "volume 2 written again is not the lost one"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Platforms

/// `--platform linux/amd64` on the multi-arch fluentd list: the cache holds the list's own
/// bytes (its digest unchanged, so references by it keep working), only the amd64 child's
/// blobs are fetched, the bundle records the image as sparse, and distribution 2.8 refuses
/// the sparse list with the message naming it. Pulled again without `--platform`, the same
/// cache gets the other child, the bundle is whole and the push goes in.
#[test]
fn platform_keeps_the_index_byte_for_byte_and_fetches_only_that_childs_blobs() {
    let source = SourceRegistry::start();
    let proxy = Proxy::start(&source.registry.host(), ProxyOptions::default());
    let fluentd = source.multi_arch().clone();
    let c = Connected::via(&source, &proxy.host(), &ImageSet::of(&[&fluentd.reference]));
    let (amd64_manifests, amd64_blobs) =
        image_blobs(&source.registry, &fluentd, |p| p == "linux/amd64");
    let (all_manifests, all_blobs) = image_blobs(&source.registry, &fluentd, |_| true);
    assert!(
        all_blobs.len() > amd64_blobs.len(),
        "arm64 has blobs of its own"
    );

    let out = c.pull(&["--platform", "linux/amd64"]);
    assert_ok(&out, "pull --platform linux/amd64");
    let raw = skopeo_raw(&fluentd.location, NO_TLS).unwrap_or_else(|o| panic!("{}", o.dump()));
    let cached = fs::read(
        c.cache
            .join("blobs/sha256")
            .join(&fluentd.digest["sha256:".len()..]),
    )
    .expect("the list is in the cache under its digest");
    assert!(
        cached == raw,
        "the cache's index is not the registry's, byte for byte"
    );
    let fetched: BTreeSet<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .filter_map(|r| r.blob_digest().map(str::to_owned))
        .collect();
    assert_eq!(
        fetched, amd64_blobs,
        "the blobs fetched are the amd64 child's"
    );
    let in_cache = c.blobs();
    let want: BTreeSet<String> = amd64_manifests.union(&amd64_blobs).cloned().collect();
    assert_eq!(
        in_cache, want,
        "the cache holds the list, the amd64 child and its blobs"
    );
    let entry = c
        .index()
        .into_iter()
        .find(|d| d["digest"] == fluentd.digest.as_str())
        .expect("fluentd is recorded in index.json");
    assert_eq!(entry["annotations"]["dev.ferry.platforms"], "linux/amd64");
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        fluentd.reference.as_str()
    );

    let vols = c.path("vols");
    assert_ok(
        &c.pack(&vols, &["--platform", "linux/amd64"]),
        "pack --config --platform linux/amd64",
    );
    let images = bundle_images(&vols);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["digest"], fluentd.digest.as_str());
    assert_eq!(images[0]["platforms"], serde_json::json!(["linux/amd64"]));
    let inside = Registry::plain();
    let to = format!("{}/in", inside.host());
    let refused = push(&c, &vols, &to, &c.path("man-sparse"));
    assert_exit(&refused, 1, "distribution 2.8 refuses a sparse list");
    assert_mentions(
        &refused,
        &[
            &format!("{} refused the sparse multi-arch image", inside.host()),
            "openshift4/ose-logging-fluentd",
            "without --platform",
        ],
        "the refusal names the image and the cure",
    );

    // Without --platform every child is kept: the same cache fills in the rest.
    proxy.clear_log();
    let all = c.pull(&[]);
    assert_ok(&all, "pull without --platform");
    let fetched: BTreeSet<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .filter_map(|r| r.blob_digest().map(str::to_owned))
        .collect();
    let rest: BTreeSet<String> = all_blobs.difference(&amd64_blobs).cloned().collect();
    assert_eq!(fetched, rest, "only what the cache lacked is fetched");
    let want: BTreeSet<String> = all_manifests.union(&all_blobs).cloned().collect();
    assert_eq!(c.blobs(), want);
    let entry = c
        .index()
        .into_iter()
        .find(|d| d["digest"] == fluentd.digest.as_str())
        .expect("fluentd in index.json");
    assert!(
        entry["annotations"].get("dev.ferry.platforms").is_none(),
        "every child is there now: {entry}"
    );
    let whole = c.path("vols-whole");
    assert_ok(&c.pack(&whole, &[]), "pack --config, every platform");
    let images = bundle_images(&whole);
    assert!(images[0].get("platforms").is_none(), "{}", images[0]);
    let pushed = push(&c, &whole, &to, &c.path("man-whole"));
    assert_ok(&pushed, "the whole list goes in");
    for child in &fluentd.children {
        let at = format!("{to}/{}@{child}", fluentd.path);
        assert_eq!(&skopeo_digest(&at, NO_TLS), child, "{at}");
    }
    let at = format!("{to}/{}@{}", fluentd.path, fluentd.digest);
    assert_eq!(skopeo_digest(&at, NO_TLS), fluentd.digest, "{at}");
}

/// Which children a platform keeps (`--plan --json`, nothing downloaded): no variant keeps
/// every variant (oc-mirror's rule: `linux/arm64` keeps `linux/arm64/v8`); an image's own
/// `platforms` in the file win over `--platform`; a platform the index lacks fails the
/// image by name.
#[test]
fn platform_matching_variants_and_the_files_own_platforms() {
    let source = SourceRegistry::start();
    let fluentd = source.multi_arch().clone();
    let kept = |set: &ImageSet, extra: &[&str]| -> Value {
        let c = Connected::new(&source, set);
        let mut args = vec!["--plan", "--json"];
        args.extend_from_slice(extra);
        let out = c.pull(&args);
        assert_ok(&out, &format!("pull --plan --json {extra:?}"));
        let ev = events(&out);
        of_type(&ev, "plan")[0]["images"][0]["platforms_kept"].clone()
    };
    let set = ImageSet::of(&[&fluentd.reference]);
    assert_eq!(
        kept(&set, &["--platform", "linux/arm64"]),
        serde_json::json!(["linux/arm64/v8"])
    );
    assert_eq!(
        kept(
            &set,
            &["--platform", "linux/arm64/v8", "--platform", "linux/amd64"]
        ),
        Value::Null,
        "both children kept: not sparse"
    );
    let mut own = set.clone();
    own.additional_images[0].platforms = vec!["linux/arm64".into()];
    assert_eq!(
        kept(&own, &["--platform", "linux/amd64"]),
        serde_json::json!(["linux/arm64/v8"]),
        "the file's platforms win"
    );

    let c = Connected::new(&source, &set);
    let out = c.pull(&["--platform", "linux/s390x"]);
    assert_exit(&out, 1, "a platform the index does not have");
    assert_mentions(
        &out,
        &[&fluentd.reference, "linux/s390x", "linux/amd64"],
        "the image, the platform asked and those there are named",
    );
}

/// The set's one image, pulled: in the cache and recorded.
#[track_caller]
pub(crate) fn assert_pulled(c: &Connected, image: &SourceImage, out: &Output, what: &str) {
    assert_ok(out, what);
    assert!(
        c.index()
            .iter()
            .any(|d| d["digest"] == image.digest.as_str()),
        "{what}: {} is not recorded in the cache",
        image.reference
    );
    assert!(c.blobs().contains(&image.digest));
}

// ---------------------------------------------------------------------------------------
// The set's images: blocked, moved, missing, named three ways; where they go; deltas

/// Writes a registries.conf by hand (the kit's writer says `insecure = true` for all).
pub(crate) fn conf_text(path: &Path, text: &str) -> PathBuf {
    fs::write(path, format!("unqualified-search-registries = []\n{text}"))
        .expect("write registries.conf");
    path.to_owned()
}

/// `blockedImages` removes a matching image from the set, saying so; the rest is pulled.
#[test]
fn a_blocked_image_is_named_and_not_pulled() {
    let source = SourceRegistry::start();
    let kept = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let blocked = source.multi_arch().clone();
    let mut set = ImageSet::of(&[&kept.reference, &blocked.reference]);
    set.blocked_images = vec!["ose-logging-fluentd".into()];
    let c = Connected::new(&source, &set);
    let out = c.pull(&[]);
    assert_ok(&out, "pull with one image blocked");
    assert_mentions(
        &out,
        &[&blocked.reference, "blocked by blockedImages", "not pulled"],
        "the blocked image is named",
    );
    let recorded: Vec<String> = c
        .index()
        .iter()
        .map(|d| text(&d["digest"]).to_owned())
        .collect();
    assert_eq!(recorded, std::slice::from_ref(&kept.digest));
    assert!(
        !c.blobs().contains(&blocked.digest),
        "nothing of it was fetched"
    );
}

/// A tag that moved at the source since the last pull: the next pull records the new
/// digest, the pack carries it, and prune then drops what only the old image needed.
#[test]
fn a_tag_that_moved_is_pulled_anew_packed_and_the_old_image_pruned() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let other = source
        .image("openshift4/ose-elasticsearch-operator:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    assert_ok(&c.pull(&[]), "the first pull");
    let (old_m, old_o) = image_blobs(&source.registry, &image, |_| true);

    // The tag now names the operator's image.
    let retag = skopeo([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", other.location),
        &format!("docker://{}", image.location),
    ]);
    assert_ok(&retag, "skopeo copy over the tag");
    let out = c.pull(&["--json"]);
    assert_ok(&out, "the pull after the tag moved");
    let resolved = of_type(&events(&out), "image_resolved")[0].clone();
    assert_eq!(resolved["digest"], other.digest.as_str(), "{resolved}");
    let entries: Vec<(String, String)> = c
        .index()
        .iter()
        .map(|d| {
            (
                text(&d["annotations"]["org.opencontainers.image.ref.name"]).to_owned(),
                text(&d["digest"]).to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [(format!("{}:v4.6", image.path), other.digest.clone())],
        "index.json names the tag once, at its new digest"
    );
    let vols = c.path("vols");
    assert_ok(&c.pack(&vols, &[]), "pack after the tag moved");
    let images = bundle_images(&vols);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["digest"], other.digest.as_str());
    assert_eq!(images[0]["source"], image.reference.as_str());

    assert_ok(&c.prune(&c.set), "prune after the tag moved");
    let (new_m, new_o) = image_blobs(&source.registry, &other, |_| true);
    let want: BTreeSet<String> = new_m.union(&new_o).cloned().collect();
    assert_eq!(c.blobs(), want, "only the image the tag names now is kept");
    let gone: Vec<&String> = old_m.union(&old_o).filter(|d| !want.contains(*d)).collect();
    assert!(!gone.is_empty(), "the old image had blobs of its own");
}

/// The cache is an OCI layout other tools read: skopeo inspects an image of it by its
/// `ref.name`, and `ferry-pack CACHE` packs it as a mirror directory, every image recorded
/// with its original reference.
#[test]
fn the_cache_is_an_oci_layout_skopeo_and_ferry_pack_read() {
    let source = SourceRegistry::start();
    let c = Connected::new(&source, &ImageSet::of(&source.references()));
    assert_ok(&c.pull(&[]), "pull");
    let mut inspected = 0;
    for entry in c.index() {
        // skopeo's oci: transport selects only OCI-typed descriptors by name (the Docker
        // ones it skips: "no descriptor found"), as tests/src/source.rs notes.
        if !text(&entry["mediaType"]).starts_with("application/vnd.oci.") {
            continue;
        }
        inspected += 1;
        let name = text(&entry["annotations"]["org.opencontainers.image.ref.name"]);
        let out = skopeo([
            "inspect".to_owned(),
            "--raw".to_owned(),
            format!("oci:{}:{name}", c.cache.display()),
        ]);
        assert_ok(&out, &format!("skopeo inspect --raw oci:CACHE:{name}"));
        assert_eq!(
            test_support::registry::sha256_hex(&out.stdout),
            text(&entry["digest"]),
            "{name}"
        );
    }
    assert!(
        inspected >= 2,
        "the set has OCI-typed images for skopeo to read"
    );
    let vols = c.path("vols");
    pack_ok(&c.cache, &vols, "64MiB", &c.key, &[]);
    let sources: BTreeSet<String> = bundle_images(&vols)
        .iter()
        .map(|i| text(&i["source"]).to_owned())
        .collect();
    let want: BTreeSet<String> = source.references().into_iter().collect();
    assert_eq!(
        sources, want,
        "ferry-pack CACHE records the original references"
    );
}

/// `targetRepo` and `targetTag` (oc-mirror's; README: they "name the image at the
/// destination"): the bundle records the image there, the push puts it there, and the
/// mirror sets map the source as written to it.
#[test]
fn target_repo_and_tag_name_the_image_at_the_destination() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let mut set = ImageSet::of(&[&image.reference]);
    set.additional_images[0].target_repo = Some("mirror/es-proxy".into());
    set.additional_images[0].target_tag = Some("stable".into());
    let c = Connected::new(&source, &set);
    let vols = c.path("vols");
    assert_ok(
        &c.pack(&vols, &[]),
        "pack --config with targetRepo/targetTag",
    );
    let images = bundle_images(&vols);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["repository"], "mirror/es-proxy");
    assert_eq!(
        images[0]["destination"], "mirror/es-proxy",
        "the bundle says where the image goes, not only where the cache had it"
    );
    assert_eq!(images[0]["tags"], serde_json::json!(["stable"]));
    assert_eq!(images[0]["source"], image.reference.as_str());

    let inside = Registry::plain();
    let to = format!("{}/in", inside.host());
    let man = c.path("man");
    assert_ok(&push(&c, &vols, &to, &man), "push");
    let at = format!("{to}/mirror/es-proxy:stable");
    let found = skopeo_raw(&at, NO_TLS).map(|b| sha256_hex(&b));
    let mut mirrors = Vec::new();
    for doc in yaml_docs(&man.join("cluster/imageDigestMirrorSet.yaml")) {
        for m in doc["spec"]["imageDigestMirrors"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if m["source"] == "registry.redhat.io/openshift4/ose-elasticsearch-proxy" {
                mirrors.extend(m["mirrors"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    assert!(
        found.as_ref().is_ok_and(|d| *d == image.digest),
        "the image is not at {at} (targetRepo/targetTag): the inside holds {:?}",
        inside.catalog()
    );
    assert_eq!(
        mirrors,
        [Value::from(format!("{to}/mirror/es-proxy"))],
        "the IDMS maps the source to where targetRepo put it"
    );

    // extract writes the destination back; the layout packs to the same destination.
    let extracted = c.path("extracted");
    extract_ok(&vols, &c.key, &extracted, "oci");
    let index: Value =
        serde_json::from_slice(&fs::read(extracted.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["dev.ferry.target-repository"], "mirror/es-proxy",
        "{index}"
    );
    let again = c.path("again");
    pack_ok(&extracted, &again, "64MiB", &c.key, &[]);
    assert_eq!(bundle_images(&again)[0]["destination"], "mirror/es-proxy");
}

/// An image the source does not have (a tag, a digest): exit 1, each named with the
/// registry and its own words; the others of the set are pulled, and `ferry-pack --config`
/// packs nothing.
#[test]
fn an_image_the_source_lacks_is_named_and_the_others_are_pulled() {
    let source = SourceRegistry::start();
    let good = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let no_tag = "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v9.9";
    let no_digest = format!(
        "registry.redhat.io/openshift4/ose-elasticsearch-proxy@sha256:{}",
        "0".repeat(64)
    );
    let c = Connected::new(
        &source,
        &ImageSet::of(&[good.reference.as_str(), no_tag, &no_digest]),
    );
    let out = c.pull(&["--json"]);
    assert_exit(&out, 1, "images the source lacks");
    let ev = events(&out);
    let failed = of_type(&ev, "image_failed");
    let named: BTreeSet<&str> = failed.iter().map(|f| text(&f["reference"])).collect();
    assert_eq!(
        named,
        BTreeSet::from([no_tag, no_digest.as_str()]),
        "{}",
        out.dump()
    );
    for f in &failed {
        assert_eq!(f["registry"], source.registry.host(), "{f}");
        assert!(
            text(&f["error"]).contains("MANIFEST_UNKNOWN")
                || text(&f["error"]).contains("manifest unknown")
                || text(&f["error"]).contains("404"),
            "the registry's own words: {f}"
        );
    }
    assert_mentions(&out, &[no_tag, &no_digest], "the error names both");
    let recorded: Vec<String> = c
        .index()
        .iter()
        .map(|d| text(&d["digest"]).to_owned())
        .collect();
    assert_eq!(
        recorded,
        std::slice::from_ref(&good.digest),
        "the good image is pulled"
    );
    let vols = c.path("vols");
    let packed = c.pack(&vols, &[]);
    assert_exit(&packed, 1, "pack --config with images missing");
    assert!(volumes(&vols).is_empty());
}

/// The same image by tag and by digest, and a reference with both (`repo:tag@digest`,
/// the digest wins): pulled once, packed, pushed; the inside serves it by tag and digest.
#[test]
fn one_image_by_tag_by_digest_and_by_both() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let both = format!(
        "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6@{}",
        image.digest
    );
    let c = Connected::new(
        &source,
        &ImageSet::of(&[image.reference.clone(), image.by_digest(), both.clone()]),
    );
    let out = c.pull(&["--json"]);
    assert_ok(&out, "pull of one image three ways");
    let ev = events(&out);
    for r in of_type(&ev, "image_resolved") {
        assert_eq!(r["digest"], image.digest.as_str(), "{r}");
    }
    let summary = of_type(&ev, "summary")[0].clone();
    let (_, blobs) = image_blobs(&source.registry, &image, |_| true);
    assert_eq!(
        summary["blobs_fetched"],
        blobs.len(),
        "each blob once: {summary}"
    );
    let vols = c.path("vols");
    assert_ok(&c.pack(&vols, &[]), "pack");
    let inside = Registry::plain();
    let to = format!("{}/in", inside.host());
    assert_ok(&push(&c, &vols, &to, &c.path("man")), "push");
    for at in [
        format!("{to}/{}:v4.6", image.path),
        format!("{to}/{}@{}", image.path, image.digest),
    ] {
        assert_eq!(skopeo_digest(&at, NO_TLS), image.digest, "{at}");
    }
}

/// `--base` with `--config` (README: "as for a mirror directory"): set A packed and pushed,
/// the push's receipt.json back on the connected side; set A plus one image packed with
/// `--base receipt.json` carries only what the inside lacks, and pushed into the same
/// registry every image of the larger set is there.
#[test]
fn a_delta_from_the_cache_with_base_carries_only_what_the_inside_lacks() {
    let source = SourceRegistry::start();
    let first = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let added = source
        .image("openshift4/ose-elasticsearch-operator:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&first.reference]));
    let vols = c.path("vols");
    assert_ok(&c.pack(&vols, &[]), "pack set A");
    let inside = Registry::plain();
    let to = format!("{}/in", inside.host());
    let man = c.path("man");
    assert_ok(&push(&c, &vols, &to, &man), "push set A");
    let receipt = man.join("receipt.json");
    assert!(receipt.is_file());

    ImageSet::of(&[&first.reference, &added.reference]).write(&c.set);
    let delta = c.path("delta");
    assert_ok(
        &c.pack(&delta, &["--base", receipt.to_str().expect("utf-8")]),
        "pack set A+1 with --base",
    );
    let (_, m) = standalone_manifest(&delta);
    let (_, first_blobs) = image_blobs(&source.registry, &first, |_| true);
    for b in m["blobs"].as_array().expect("blobs") {
        let d = text(&b["digest"]);
        if first_blobs.contains(d) {
            assert_eq!(b["encoding"], "base", "{d} the inside has is carried: {b}");
        }
    }
    assert!(
        m["blobs"]
            .as_array()
            .expect("blobs")
            .iter()
            .any(|b| b["encoding"] == "base"),
        "the delta leaves the shared blobs to its base"
    );
    let (_, added_blobs) = image_blobs(&source.registry, &added, |_| true);
    let carried: Vec<&Value> = m["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .filter(|b| b["encoding"] != "base")
        .collect();
    assert!(
        carried
            .iter()
            .any(|b| added_blobs.contains(text(&b["digest"]))),
        "the added image's blobs are carried"
    );
    assert_ok(
        &push(&c, &delta, &to, &c.path("man2")),
        "push the delta into the same registry",
    );
    for i in [&first, &added] {
        let at = format!("{to}/{}:{}", i.path, i.tag.as_deref().expect("tag"));
        assert_eq!(skopeo_digest(&at, NO_TLS), i.digest, "{at}");
    }
}
