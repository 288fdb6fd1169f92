//! The pull when things go wrong (issue 11, "Killed at any moment … the same command again
//! finishes"): SIGKILL at many points of a slowed pull, a source serving wrong bytes, the
//! source going down, a full cache disk, a second run on the same cache, and
//! `cache prune`. After each, what a user checks: the cache holds only complete blobs that
//! hash to their names, `index.json` names only complete images, the same command again
//! finishes without fetching anything twice, and the result packs.
//!
//! The source is the fixtures' docker-registry behind test-support's forwarding proxy
//! (which counts every request, slows, flips, and goes down on demand).
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::time::Duration;

use test_support::proxy::{BlobMatch, Proxy, ProxyOptions};
use tests::faults::{assert_clean_failure, Proc, StoppedAt, Tmpfs};
use tests::source::*;
use tests::*;

use crate::pull::{cache_blobs, events, image_blobs, of_type, Connected};

/// Bytes per second through the slowed proxy: the fixture set (~400 KB of blobs) takes a
/// few seconds, so a kill lands mid-blob.
const SLOW: u64 = 60_000;

/// The source behind a proxy, and a connected side that reaches it through the proxy.
struct Slowed {
    source: SourceRegistry,
    proxy: Proxy,
    c: Connected,
}

fn slowed(set: impl Fn(&SourceRegistry) -> ImageSet, rate: Option<u64>) -> Slowed {
    let source = SourceRegistry::start();
    let proxy = Proxy::start(
        &source.registry.host(),
        ProxyOptions {
            bytes_per_second: rate,
            ..ProxyOptions::default()
        },
    );
    let c = Connected::via(&source, &proxy.host(), &set(&source));
    Slowed { source, proxy, c }
}

/// Every non-manifest blob of `images`, with its size (from the manifests' descriptors).
fn blob_sizes(source: &SourceRegistry, images: &[&SourceImage]) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    for image in images {
        let (manifests, _) = image_blobs(&source.registry, image, |_| true);
        for m in manifests {
            let bytes = source
                .registry
                .manifest(&image.stored_repository, &m)
                .expect("manifest");
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            for d in
                std::iter::once(&v["config"]).chain(v["layers"].as_array().into_iter().flatten())
            {
                if let (Some(digest), Some(size)) = (d["digest"].as_str(), d["size"].as_u64()) {
                    sizes.insert(digest.to_owned(), size);
                }
            }
        }
    }
    sizes
}

/// After a kill: every file under `blobs/sha256` named by a digest hashes to it (a
/// `durable_file` temporary, `.<name>.<16 hex>.partial`, may be left by a kill: it is
/// named as such, never as a blob); `index.json` names only images whose every blob is
/// there. The blobs there.
#[track_caller]
fn assert_cache_sound(s: &Slowed, when: &str) -> BTreeSet<String> {
    let dir = s.c.cache.join("blobs/sha256");
    let mut blobs = BTreeSet::new();
    for name in names(&dir) {
        if name.starts_with('.') && name.ends_with(".partial") {
            continue;
        }
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{when}: blobs/sha256/{name} is neither a blob nor a temporary"
        );
        assert_eq!(
            file_sha256(&dir.join(&name)),
            format!("sha256:{name}"),
            "{when}: blobs/sha256/{name} does not hash to its name"
        );
        blobs.insert(format!("sha256:{name}"));
    }
    if s.c.cache.join("index.json").exists() {
        for entry in s.c.index() {
            let digest = entry["digest"].as_str().expect("digest");
            let image = s
                .source
                .images
                .iter()
                .find(|i| i.digest == digest)
                .unwrap_or_else(|| panic!("{when}: index.json names {digest}, not a set image"));
            let (m, o) = image_blobs(&s.source.registry, image, |_| true);
            for b in m.union(&o) {
                assert!(
                    blobs.contains(b),
                    "{when}: index.json names {} but its blob {b} is not in the cache",
                    image.reference
                );
            }
        }
    }
    blobs
}

// ---------------------------------------------------------------------------------------
// 4. SIGKILL

/// `kill -9` of `ferry-pack pull` at five points of a slowed pull (each after a different
/// amount of data), then the same command to the end. Across all the runs, no blob comes
/// whole from the source twice; the downloads a kill cut are resumed with `Range` from
/// where they stopped; the cache is sound after every kill and whole at the end; the set
/// packs and verifies.
#[test]
fn sigkill_at_five_points_then_the_same_command_finishes_without_fetching_twice() {
    let s = slowed(|src| ImageSet::of(&src.references()), Some(SLOW));
    let all: Vec<&SourceImage> = s.source.images.iter().collect();
    let sizes = blob_sizes(&s.source, &all);
    let total: u64 = sizes.values().sum();
    assert!(
        total > 300_000,
        "the fixture set has {total} bytes of blobs"
    );

    // Each run gets this much more data before its kill: early (manifests, first pieces),
    // mid-blob, and late.
    let steps = [3_000u64, 25_000, 47_000, 70_000, 36_000];
    for (n, step) in steps.iter().enumerate() {
        let when = format!(
            "kill {} of {} (after {step} more bytes)",
            n + 1,
            steps.len()
        );
        let mut p = Proc::spawn(s.c.pull_command(&["-q"]));
        let target = s.proxy.bytes_sent() + step;
        let reached = p.wait_until(Duration::from_secs(30), || s.proxy.bytes_sent() >= target);
        assert!(
            reached,
            "{when}: the pull did not get that far (it ended or stalled): {} bytes sent",
            s.proxy.bytes_sent()
        );
        p.signal("KILL");
        let (out, stderr) = p.wait(Duration::from_secs(10));
        let out = out.unwrap_or_else(|| panic!("{when}: still running after SIGKILL"));
        assert!(
            out.status.code().is_none(),
            "{when}: the pull ended by itself before the kill: {stderr}"
        );
        assert_cache_sound(&s, &when);
    }
    s.proxy.throttle(None);
    let last = s.c.pull(&["--json"]);
    assert_ok(&last, "the same command after five kills");
    let ev = events(&last);
    let summary = of_type(&ev, "summary")[0].clone();
    assert_eq!(summary["pulled"], all.len(), "{summary}");
    let fetched_last = summary["bytes_fetched"].as_u64().expect("bytes_fetched");
    assert!(
        fetched_last < total,
        "the last run fetched {fetched_last} of {total} bytes: the killed runs' work was lost"
    );

    // Every blob's GETs, all runs together.
    let mut resumed = 0;
    let mut report = Vec::new();
    for (digest, size) in &sizes {
        let gets = s.proxy.blob_gets(digest);
        let delivered: u64 = gets.iter().map(|g| g.body_bytes).sum();
        report.push(format!(
            "{digest} ({size} bytes): {:?}",
            gets.iter()
                .map(|g| (g.range_start(), g.body_bytes, g.status))
                .collect::<Vec<_>>()
        ));
        let whole = gets
            .iter()
            .filter(|g| g.range_start() == 0 && g.body_bytes == *size)
            .count();
        assert!(
            whole <= 1,
            "{digest} came whole from the source {whole} times\n{}",
            report.join("\n")
        );
        for (i, g) in gets.iter().enumerate().skip(1) {
            let before: u64 = gets[..i].iter().map(|g| g.body_bytes).sum();
            let start = g.range_start();
            assert!(
                start <= before,
                "{digest}: resumed at {start}, but only {before} bytes had come\n{}",
                report.join("\n")
            );
            // A restart from zero is only for a download of which (almost) nothing had
            // reached the disk.
            assert!(
                start > 0 || before <= 16 * 1024,
                "{digest}: fetched again from byte 0 after {before} bytes had come\n{}",
                report.join("\n")
            );
            if start > 0 {
                resumed += 1;
                assert_eq!(
                    g.status,
                    Some(206),
                    "a Range GET answered 206\n{}",
                    report.join("\n")
                );
            }
        }
        // What came twice is no more than what was in flight at the kills.
        let again = delivered.saturating_sub(*size);
        assert!(
            again <= 64 * 1024,
            "{digest}: {again} bytes came twice\n{}",
            report.join("\n")
        );
    }
    assert!(
        resumed > 0,
        "no download was resumed with Range\n{}",
        report.join("\n")
    );

    let blobs = cache_blobs(&s.c.cache);
    for d in sizes.keys() {
        assert!(blobs.contains(d), "{d} is not in the cache at the end");
    }
    assert!(
        names(&s.c.cache.join(".ferry/partial")).is_empty(),
        "interrupted downloads left after a complete run: {:?}",
        names(&s.c.cache.join(".ferry/partial"))
    );
    let vols = s.c.path("vols");
    assert_ok(&s.c.pack(&vols, &[]), "pack after the kills");
    let verify = unpack([
        OsStr::new("verify"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        s.c.key.public.as_os_str(),
    ]);
    assert_ok(&verify, "verify after the kills");
}

/// Ctrl-C (SIGINT) mid-blob: exit 130, saying to run again; the interrupted downloads are
/// kept and the same command resumes them with `Range`.
#[test]
fn ctrl_c_mid_blob_exits_130_and_the_rerun_resumes_by_range() {
    interrupted_mid_blob("INT");
}

/// SIGTERM (a service manager stopping it) is Ctrl-C's twin.
#[test]
fn sigterm_mid_blob_exits_130_and_the_rerun_resumes_by_range() {
    interrupted_mid_blob("TERM");
}

fn interrupted_mid_blob(signal: &str) {
    let s = slowed(
        |src| ImageSet::of(&[&src.multi_arch().reference]),
        Some(SLOW),
    );
    let mut p = Proc::spawn(s.c.pull_command(&[]));
    let target = s.proxy.bytes_sent() + 30_000;
    assert!(
        p.wait_until(Duration::from_secs(30), || s.proxy.bytes_sent() >= target),
        "the pull did not get going"
    );
    p.signal(signal);
    let (out, stderr) = p.wait(Duration::from_secs(20));
    let out = out.unwrap_or_else(|| panic!("SIG{signal} did not stop the pull: {stderr}"));
    assert_exit(&out, 130, &format!("SIG{signal}"));
    assert_mentions(&out, &["run the same command again"], "says how to finish");
    assert_cache_sound(&s, "after Ctrl-C");
    let partials = names(&s.c.cache.join(".ferry/partial"));
    assert!(!partials.is_empty(), "no interrupted download was kept");
    s.proxy.throttle(None);
    assert_ok(&s.c.pull(&[]), "the same command after Ctrl-C");
    let resumed: Vec<String> = partials
        .iter()
        .filter(|hex| {
            s.proxy
                .blob_gets(&format!("sha256:{hex}"))
                .iter()
                .any(|g| g.range_start() > 0 && g.status == Some(206))
        })
        .cloned()
        .collect();
    assert!(
        !resumed.is_empty(),
        "no interrupted download was resumed with Range: {partials:?}"
    );
    cache_blobs(&s.c.cache);
    assert!(names(&s.c.cache.join(".ferry/partial")).is_empty());
}

// ---------------------------------------------------------------------------------------
// 5. Wrong bytes

/// The source serves one layer with a byte flipped (every time: as if it stored it so):
/// exit 1 naming the image, the blob and the registry; the bytes are kept nowhere in the
/// cache; the other image of the set is pulled; once the source is right, the same
/// command finishes.
#[test]
fn a_blob_whose_bytes_are_wrong_is_refused_naming_image_blob_and_registry() {
    let s = slowed(
        |src| {
            ImageSet::of(&[
                &src.image("openshift4/ose-elasticsearch-operator:v4.6")
                    .reference,
                &src.image("openshift4/ose-elasticsearch-proxy:v4.6")
                    .reference,
            ])
        },
        None,
    );
    let bad = s.source.image("openshift4/ose-elasticsearch-operator:v4.6");
    let good = s.source.image("openshift4/ose-elasticsearch-proxy:v4.6");
    let (_, bad_blobs) = image_blobs(&s.source.registry, bad, |_| true);
    let (_, good_blobs) = image_blobs(&s.source.registry, good, |_| true);
    let own = bad_blobs
        .difference(&good_blobs)
        .next()
        .expect("the operator has a blob of its own")
        .clone();
    s.proxy.flip_byte(BlobMatch::Digest(own.clone()));

    let out = s.c.pull(&[]);
    assert_exit(&out, 1, "a blob with wrong bytes");
    assert_clean_failure(&out, "wrong bytes");
    assert_mentions(
        &out,
        &[&bad.reference, &own, &s.proxy.host(), "wrong"],
        "the image, the blob and the registry are named",
    );
    let blobs = cache_blobs(&s.c.cache);
    assert!(!blobs.contains(&own), "the wrong blob is in blobs/sha256");
    let partial =
        s.c.cache
            .join(".ferry/partial")
            .join(&own["sha256:".len()..]);
    assert!(
        !partial.exists(),
        "the wrong bytes are kept as a partial download"
    );
    let recorded: Vec<String> =
        s.c.index()
            .iter()
            .map(|d| d["digest"].as_str().unwrap_or_default().to_owned())
            .collect();
    assert_eq!(
        recorded,
        std::slice::from_ref(&good.digest),
        "only the good image is recorded"
    );

    // The pack form packs nothing while an image of the set is missing.
    let vols = s.c.path("vols");
    let packed = s.c.pack(&vols, &[]);
    assert_exit(&packed, 1, "pack --config with an image not pulled");
    assert_mentions(
        &packed,
        &[&bad.reference, "nothing was packed"],
        "pack names it",
    );
    assert!(
        volumes(&vols).is_empty(),
        "volumes were written without an image of the set"
    );

    s.proxy.clear_faults();
    assert_ok(&s.c.pull(&[]), "the same command once the source is right");
    assert!(cache_blobs(&s.c.cache).contains(&own));
}

// ---------------------------------------------------------------------------------------
// 6. The source going down

/// The source goes away mid-run (connections reset, the port closed): the pull gives up
/// after `--retry-for`, exit 1, naming the images and the registry and saying to run it
/// again; the cache is sound; with the source back, the same command finishes.
#[test]
fn the_source_going_down_mid_run_fails_by_name_and_the_rerun_finishes() {
    let s = slowed(|src| ImageSet::of(&src.references()), Some(SLOW));
    let mut p = Proc::spawn(s.c.pull_command(&["--retry-for", "2s", "--json"]));
    let target = s.proxy.bytes_sent() + 40_000;
    assert!(
        p.wait_until(Duration::from_secs(30), || s.proxy.bytes_sent() >= target),
        "the pull did not get going"
    );
    s.proxy.set_down(true);
    let started = std::time::Instant::now();
    let (out, stderr) = p.wait(Duration::from_secs(60));
    let out = out.unwrap_or_else(|| panic!("the pull did not give up within 60 s: {stderr}"));
    assert_exit(&out, 1, "the source went down");
    assert_clean_failure(&out, "the source went down");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "--retry-for 2s took {:?}",
        started.elapsed()
    );
    assert_mentions(
        &out,
        &[
            &s.proxy.host(),
            "could not be pulled",
            "run the same command again",
        ],
        "the failure is named",
    );
    // --json: each retry, each image that failed (with the registry), and the summary.
    let ev = events(&out);
    let retries = of_type(&ev, "retry");
    assert!(!retries.is_empty(), "no retry event\n{}", out.dump());
    for r in &retries {
        crate::pull::assert_members(r, &["what", "attempt", "wait_seconds", "error"]);
    }
    let failed = of_type(&ev, "image_failed");
    assert_eq!(failed.len(), s.source.images.len(), "{}", out.dump());
    for f in &failed {
        crate::pull::assert_members(f, &["reference", "registry", "error"]);
        assert_eq!(f["registry"], s.proxy.host(), "{f}");
    }
    let summary = of_type(&ev, "summary");
    assert_eq!(summary.len(), 1, "{}", out.dump());
    assert_eq!(
        summary[0]["failed"].as_array().map(Vec::len),
        Some(s.source.images.len())
    );
    assert_eq!(summary[0]["pulled"], 0);
    assert_cache_sound(&s, "after the source went down");

    s.proxy.set_down(false);
    s.proxy.throttle(None);
    let again = s.c.pull(&[]);
    assert_ok(&again, "the same command with the source back");
    let blobs = cache_blobs(&s.c.cache);
    assert_eq!(s.c.index().len(), s.source.images.len());
    let all: Vec<&SourceImage> = s.source.images.iter().collect();
    for d in blob_sizes(&s.source, &all).keys() {
        assert!(blobs.contains(d), "{d}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. A full disk

/// A cache on a disk too small for the set: the pull refuses before the first layer,
/// saying how much is missing (the manifests, which the plan needs, are all it wrote);
/// `--plan` says the same.
#[test]
fn a_cache_disk_too_small_is_refused_up_front_naming_what_is_missing() {
    let source = SourceRegistry::start();
    let disk = Tmpfs::require("96k");
    let set = ImageSet::of(&source.references());
    let mut c = Connected::new(&source, &set);
    c.cache = disk.path.join("cache");
    let all: Vec<&SourceImage> = source.images.iter().collect();
    let mut manifests = BTreeSet::new();
    for i in &all {
        manifests.extend(image_blobs(&source.registry, i, |_| true).0);
    }

    let plan = c.pull(&["--plan"]);
    assert_exit(&plan, 1, "--plan of a pull that does not fit");
    assert_mentions(
        &plan,
        &["NOT enough", "missing"],
        "the plan says it does not fit",
    );
    let out = c.pull(&[]);
    assert_exit(&out, 1, "a pull that does not fit (as its --plan)");
    assert_mentions(
        &out,
        &[
            "needs",
            "free",
            "more there",
            disk.path.to_str().expect("utf-8"),
        ],
        "the refusal says how much is missing",
    );
    // The pack form says the same, with --plan and without.
    let vols = c.path("vols");
    let pack_plan = c.pack(&vols, &["--plan"]);
    assert_exit(&pack_plan, 1, "pack --config --plan that cannot pull");
    assert_mentions(
        &pack_plan,
        &["NOT enough", "missing"],
        "pack --plan says it",
    );
    let packed = c.pack(&vols, &[]);
    assert_exit(&packed, 1, "pack --config that cannot pull");
    assert_mentions(&packed, &["more there"], "pack says how much is missing");
    assert!(volumes(&vols).is_empty(), "nothing was packed");
    assert_eq!(
        cache_blobs(&c.cache),
        manifests,
        "only the manifests were written"
    );
    assert!(names(&c.cache.join(".ferry/partial")).is_empty());
}

/// The disk fills up while blobs stream in: the pull stops with a message, nothing partial
/// or wrong is under `blobs/`, and the same cache moved to a bigger disk finishes there,
/// resuming what was downloaded.
#[test]
fn a_cache_disk_filling_up_mid_blob_leaves_only_whole_blobs_and_finishes_elsewhere() {
    let s = slowed(|src| ImageSet::of(&src.references()), Some(SLOW));
    let disk = Tmpfs::require("2m");
    let mut c = Connected::via(
        &s.source,
        &s.proxy.host(),
        &ImageSet::of(&s.source.references()),
    );
    c.cache = disk.path.join("cache");
    let mut p = Proc::spawn(c.pull_command(&[]));
    let target = s.proxy.bytes_sent() + 60_000;
    assert!(
        p.wait_until(Duration::from_secs(30), || s.proxy.bytes_sent() >= target),
        "the pull did not get going"
    );
    let filled = disk.fill();
    assert!(filled > 0, "the disk could not be filled");
    s.proxy.throttle(None);
    let (out, stderr) = p.wait(Duration::from_secs(60));
    let out = out.unwrap_or_else(|| panic!("the pull hung on a full disk: {stderr}"));
    assert_exit(&out, 1, "the disk filled up (as a pull that does not fit)");
    assert_clean_failure(&out, "the disk filled up");
    assert_mentions(
        &out,
        &[
            "No space left on device",
            "is full",
            "run the same command again",
        ],
        "the full disk is named, with what to do",
    );
    let kept = cache_blobs(&c.cache);
    let partial_bytes: u64 = names(&c.cache.join(".ferry/partial"))
        .iter()
        .map(|n| file_size(&c.cache.join(".ferry/partial").join(n)))
        .sum();

    // A bigger disk: the cache copied there, the junk left behind.
    let bigger = tempdir();
    let moved = bigger.path().join("cache");
    copy_tree(&c.cache, &moved);
    c.cache = moved;
    let again = c.pull(&["--json"]);
    assert_ok(&again, "the same command on a bigger disk");
    let all: Vec<&SourceImage> = s.source.images.iter().collect();
    let sizes = blob_sizes(&s.source, &all);
    let total: u64 = sizes.values().sum();
    let summary = of_type(&events(&again), "summary")[0].clone();
    let fetched = summary["bytes_fetched"].as_u64().expect("bytes_fetched");
    let had: u64 = sizes
        .iter()
        .filter(|(d, _)| kept.contains(*d))
        .map(|(_, n)| n)
        .sum();
    assert!(
        fetched + had + partial_bytes >= total && fetched < total,
        "fetched {fetched} of {total} bytes with {had} in blobs and {partial_bytes} in partials"
    );
    let blobs = cache_blobs(&c.cache);
    for d in sizes.keys() {
        assert!(blobs.contains(d), "{d}");
    }
    let vols = c.path("vols");
    assert_ok(&c.pack(&vols, &[]), "pack from the moved cache");
}

// ---------------------------------------------------------------------------------------
// 8. Two runs at once

/// A second pull on a cache another pull holds: exit 2 at once, naming the cache and the
/// first run's pid; the first goes on to the end unharmed.
#[test]
fn a_second_run_on_a_busy_cache_is_refused_naming_the_first() {
    let s = slowed(|src| ImageSet::of(&src.references()), Some(SLOW));
    let mut first = Proc::spawn(s.c.pull_command(&["-q"]));
    let target = s.proxy.bytes_sent() + 20_000;
    assert!(
        first.wait_until(Duration::from_secs(30), || s.proxy.bytes_sent() >= target),
        "the first pull did not get going"
    );
    let second = s.c.pull(&[]);
    assert_exit(&second, 2, "a second run on a busy cache");
    assert_mentions(
        &second,
        &[
            "in use by another ferry-pack",
            &first.pid().to_string(),
            s.c.cache.to_str().expect("utf-8"),
        ],
        "the busy cache and its holder are named",
    );
    let packed = s.c.pack(&s.c.path("vols-busy"), &[]);
    assert_exit(&packed, 2, "a pack --config on a busy cache");
    assert_mentions(
        &packed,
        &["in use by another ferry-pack"],
        "pack says so too",
    );
    let pruned = s.c.prune(&s.c.set);
    assert_exit(&pruned, 2, "a prune of a busy cache");
    assert_mentions(
        &pruned,
        &["in use by another ferry-pack"],
        "prune says so too",
    );
    s.proxy.throttle(None);
    let (out, stderr) = first.wait(Duration::from_secs(60));
    let out = out.unwrap_or_else(|| panic!("the first pull hung: {stderr}"));
    assert_ok(&out, "the first pull, unharmed");
    assert_eq!(s.c.index().len(), s.source.images.len());
    cache_blobs(&s.c.cache);
    assert_ok(&s.c.pack(&s.c.path("vols"), &[]), "pack after");
}

// ---------------------------------------------------------------------------------------
// 9. cache prune

/// Pull set A (three images), leave an interrupted download of another image, then prune
/// with set B (one of A's images): only B's blobs remain, the interrupted download is gone,
/// and B packs from the cache without fetching anything.
#[test]
fn cache_prune_keeps_only_what_the_set_needs_and_removes_partials() {
    let s = slowed(
        |src| {
            ImageSet::of(&[
                &src.image("openshift4/ose-elasticsearch-operator:v4.6")
                    .reference,
                &src.image("openshift4/ose-elasticsearch-proxy:v4.6")
                    .reference,
                &src.multi_arch().reference,
            ])
        },
        None,
    );
    assert_ok(&s.c.pull(&[]), "pull set A");
    let proxy_image = s.source.image("openshift4/ose-elasticsearch-proxy:v4.6");
    let set_b = ImageSet::of(&[&proxy_image.reference]).write(&s.c.path("b.yaml"));

    // An interrupted download of an image of neither set.
    let oauth = s.source.image("openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81");
    let set_c = ImageSet::of(&[&oauth.reference]).write(&s.c.path("c.yaml"));
    s.proxy.throttle(Some(5_000));
    let mut kill_me = Connected::via(&s.source, &s.proxy.host(), &ImageSet::default());
    kill_me.set = set_c;
    kill_me.cache = s.c.cache.clone();
    let mut p = Proc::spawn(kill_me.pull_command(&["-q"]));
    let partial_dir = s.c.cache.join(".ferry/partial");
    let partial_started = p.wait_until(Duration::from_secs(30), || {
        names(&partial_dir)
            .iter()
            .any(|n| file_size(&partial_dir.join(n)) > 0)
    });
    assert!(
        partial_started,
        "no download of {} started",
        oauth.reference
    );
    p.signal("KILL");
    let _ = p.wait(Duration::from_secs(10));
    s.proxy.throttle(None);
    assert!(!names(&partial_dir).is_empty());

    let out = s.c.prune(&set_b);
    assert_ok(&out, "cache prune --config B");
    assert_mentions(
        &out,
        &["interrupted download(s) removed"],
        "prune says what it removed",
    );
    let (m, o) = image_blobs(&s.source.registry, proxy_image, |_| true);
    let want: BTreeSet<String> = m.union(&o).cloned().collect();
    assert_eq!(cache_blobs(&s.c.cache), want, "only B's blobs remain");
    assert!(
        names(&partial_dir).is_empty(),
        "partials left: {:?}",
        names(&partial_dir)
    );
    let recorded: Vec<String> =
        s.c.index()
            .iter()
            .map(|d| d["digest"].as_str().unwrap_or_default().to_owned())
            .collect();
    assert_eq!(recorded, std::slice::from_ref(&proxy_image.digest));

    s.proxy.clear_log();
    let mut b = Connected::via(&s.source, &s.proxy.host(), &ImageSet::default());
    b.set = set_b;
    b.cache = s.c.cache.clone();
    b.key = keygen(b.tmp.path(), "b.key");
    let vols = b.path("vols");
    assert_ok(&b.pack(&vols, &[]), "B packs from the pruned cache");
    let (_, manifest) = standalone_manifest(&vols);
    assert_eq!(manifest["images"].as_array().map(Vec::len), Some(1));
    let refetched: Vec<String> = s
        .proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .filter_map(|r| r.blob_digest().map(str::to_owned))
        .collect();
    assert!(
        refetched.is_empty(),
        "B's blobs were fetched again: {refetched:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Damage in the cache

/// A cached blob damaged on disk after it was pulled (bit rot, a bad disk): packing the
/// set refuses it, naming the file, and says what cures it for a cache — a pull does not
/// hash what it already has, so "run the pull again" alone is no cure, and "re-mirror this
/// blob" (the mirror-directory wording) names no command. The cure (the file removed, the
/// same command again) fetches it anew and the set packs.
#[test]
fn a_cached_blob_damaged_on_disk_is_named_by_the_pack_with_a_cure_that_works() {
    let s = slowed(
        |src| {
            ImageSet::of(&[&src
                .image("openshift4/ose-elasticsearch-proxy:v4.6")
                .reference])
        },
        None,
    );
    assert_ok(&s.c.pull(&[]), "pull");
    let image = s.source.image("openshift4/ose-elasticsearch-proxy:v4.6");
    let (_, blobs) = image_blobs(&s.source.registry, image, |_| true);
    let layer = blobs.iter().next().expect("a blob").clone();
    let path =
        s.c.cache
            .join("blobs/sha256")
            .join(&layer["sha256:".len()..]);
    flip_byte(&path, file_size(&path) / 2);

    let vols = s.c.path("vols");
    let out = s.c.pack(&vols, &[]);
    assert_clean_failure(&out, "a damaged blob in the cache");
    assert!(
        volumes(&vols).is_empty(),
        "volumes written from a damaged cache"
    );
    let says_cure = {
        let t = out.text();
        t.contains(path.to_str().expect("utf-8"))
            && (t.contains("remove") || t.contains("delete") || t.contains("removed"))
            && t.contains("again")
    };

    // The cure: the damaged file gone, the same command fetches it again and packs.
    fs::remove_file(&path).ok();
    let cured = s.c.pack(&vols, &[]);
    assert_ok(&cured, "the same command once the damaged blob is gone");
    assert_eq!(
        s.proxy.blob_gets(&layer).len(),
        2,
        "the blob was fetched anew"
    );
    cache_blobs(&s.c.cache);
    assert!(
        says_cure,
        "packing from a cache with a damaged blob does not say how to cure it (remove the file, run again):\n{}",
        out.dump()
    );
}

/// An interrupted download damaged on disk before it is resumed: the resumed blob does not
/// hash to its digest, so it is fetched once more from the first byte; the pull finishes
/// and the cache holds only the right bytes.
#[test]
fn a_damaged_interrupted_download_is_fetched_again_whole() {
    let s = slowed(
        |src| ImageSet::of(&[&src.multi_arch().reference]),
        Some(SLOW),
    );
    let mut p = Proc::spawn(s.c.pull_command(&["-q"]));
    let partial_dir = s.c.cache.join(".ferry/partial");
    let big = |n: &String| file_size(&partial_dir.join(n)) > 4_000;
    let started = p.wait_until(Duration::from_secs(30), || {
        names(&partial_dir).iter().any(big)
    });
    assert!(started, "no download got 4000 bytes in");
    p.signal("KILL");
    let _ = p.wait(Duration::from_secs(10));
    let damaged: Vec<String> = names(&partial_dir).into_iter().filter(big).collect();
    for hex in &damaged {
        flip_byte(&partial_dir.join(hex), 100);
    }
    s.proxy.throttle(None);
    let out = s.c.pull(&[]);
    assert_ok(&out, "the same command with damaged partial downloads");
    let blobs = cache_blobs(&s.c.cache);
    for hex in &damaged {
        let digest = format!("sha256:{hex}");
        assert!(blobs.contains(&digest), "{digest} is in the cache, whole");
        let gets = s.proxy.blob_gets(&digest);
        assert!(
            gets.iter().skip(1).any(|g| g.range_start() == 0),
            "{digest} was fetched again from byte 0: {:?}",
            gets.iter()
                .map(|g| (g.range_start(), g.body_bytes))
                .collect::<Vec<_>>()
        );
    }
    assert!(names(&partial_dir).is_empty());
}

/// SIGKILL at an exact point (strace stops the pull as it renames the image's last blob
/// into `blobs/`, before `index.json` names the image): the cache is sound, and the same
/// command records the image without fetching any blob again.
#[test]
fn sigkill_between_the_last_blob_and_index_json_refetches_nothing() {
    let s = slowed(
        |src| {
            ImageSet::of(&[&src
                .image("openshift4/ose-elasticsearch-proxy:v4.6")
                .reference])
        },
        None,
    );
    let image = s.source.image("openshift4/ose-elasticsearch-proxy:v4.6");
    let sizes = blob_sizes(&s.source, &[image]);
    // One job, largest first: the smallest blob is the last one in.
    let (last, _) = sizes
        .iter()
        .min_by_key(|(d, n)| (**n, std::cmp::Reverse((*d).clone())))
        .expect("blobs");
    let partial =
        s.c.cache
            .join(".ferry/partial")
            .join(&last["sha256:".len()..]);
    let mut p = StoppedAt::spawn(
        &s.c.pull_command(&["--jobs", "1", "-q"]),
        "rename,renameat,renameat2",
        &partial,
    );
    let pid = p
        .wait_stopped(Duration::from_secs(60))
        .unwrap_or_else(|log| panic!("the pull was never stopped renaming {last}\n{log}"));
    assert!(
        s.c.cache
            .join("blobs/sha256")
            .join(&last["sha256:".len()..])
            .is_file(),
        "stopped, but {last} is not in blobs/"
    );
    let recorded = s.c.cache.join("index.json").is_file()
        && s.c
            .index()
            .iter()
            .any(|e| e["digest"] == image.digest.as_str());
    assert!(
        !recorded,
        "stopped after index.json named the image: not the point aimed at"
    );
    assert_ok(
        &run("kill", ["-KILL".to_string(), pid.to_string()]),
        "kill -9",
    );
    let _ = p.proc.wait(Duration::from_secs(10));
    assert_cache_sound(&s, "killed after the last blob's rename");
    let again = s.c.pull(&["--json"]);
    assert_ok(&again, "the same command");
    let summary = of_type(&events(&again), "summary")[0].clone();
    assert_eq!(summary["blobs_fetched"], 0, "{summary}");
    assert_eq!(summary["pulled"], 1, "{summary}");
    for d in sizes.keys() {
        assert_eq!(s.proxy.blob_gets(d).len(), 1, "{d} fetched again");
    }
    assert!(s
        .c
        .index()
        .iter()
        .any(|e| e["digest"] == image.digest.as_str()));
    cache_blobs(&s.c.cache);
}

/// `ferry-pack --config` holds the cache while it packs from it, not only while it pulls:
/// a `cache prune` for another set, run while the pack reads the blobs, is refused as
/// busy, and the pack finishes with every blob it needs.
#[test]
fn a_prune_while_a_pack_reads_the_cache_is_refused() {
    let s = slowed(
        |src| {
            ImageSet::of(&[&src
                .image("openshift4/ose-elasticsearch-proxy:v4.6")
                .reference])
        },
        None,
    );
    assert_ok(&s.c.pull(&[]), "pull");
    let image = s.source.image("openshift4/ose-elasticsearch-proxy:v4.6");
    let sizes = blob_sizes(&s.source, &[image]);
    let (layer, _) = sizes.iter().max_by_key(|(_, n)| **n).expect("blobs");
    let path =
        s.c.cache
            .join("blobs/sha256")
            .join(&layer["sha256:".len()..]);
    let vols = s.c.path("vols");
    let mut p = StoppedAt::spawn(&s.c.pack_command(&vols, &["-q"]), "openat,open", &path);
    let pid = p
        .wait_stopped(Duration::from_secs(60))
        .unwrap_or_else(|log| panic!("the pack never opened {layer}\n{log}"));
    let other = s.source.image("openshift4/ose-elasticsearch-operator:v4.6");
    let set_b = ImageSet::of(&[&other.reference]).write(&s.c.path("b.yaml"));
    let pruned = s.c.prune(&set_b);
    let layer_still_there = path.is_file();
    assert_ok(
        &run("kill", ["-CONT".to_string(), pid.to_string()]),
        "kill -CONT",
    );
    let (out, stderr) = p.proc.wait(Duration::from_secs(60));
    let out = out.unwrap_or_else(|| panic!("the pack hung: {stderr}"));
    assert!(
        pruned.code() == 2 && pruned.text().contains("in use by another ferry-pack"),
        "a prune ran while ferry-pack --config packed from the cache (the blob it was reading {}):\n{}\nthe pack: {}",
        if layer_still_there { "survived" } else { "was removed" },
        pruned.dump(),
        out.dump()
    );
    assert_ok(&out, "the pack, unharmed");
}

/// A download that breaks off once after running longer than `--retry-for` (a big layer on
/// a slow link) is retried, resuming with `Range`: `--retry-for` bounds the retrying after
/// a failure (README: "that time is the bound, however many attempts fit in it"), not the
/// download.
#[test]
fn a_long_download_cut_once_is_resumed_whatever_retry_for() {
    let s = slowed(
        |src| {
            ImageSet::of(&[&src
                .image("openshift4/ose-elasticsearch-proxy:v4.6")
                .reference])
        },
        Some(30_000),
    );
    let image = s.source.image("openshift4/ose-elasticsearch-proxy:v4.6");
    let sizes = blob_sizes(&s.source, &[image]);
    let (big, size) = sizes.iter().max_by_key(|(_, n)| **n).expect("blobs");
    assert!(*size > 60_000, "{big} has {size} bytes");
    // Cut after 50 000 bytes: at 30 kB/s, well after the 1 s of --retry-for.
    s.proxy.cut_blob(BlobMatch::Digest(big.clone()), 50_000);
    let out = s.c.pull(&["--retry-for", "1s", "--jobs", "1"]);
    let gets: Vec<(u64, u64)> = s
        .proxy
        .blob_gets(big)
        .iter()
        .map(|g| (g.range_start(), g.body_bytes))
        .collect();
    assert_ok(
        &out,
        &format!("a download cut once after 50 000 bytes, --retry-for 1s (GETs: {gets:?})"),
    );
    assert!(
        gets.len() >= 2 && gets[1].0 > 0,
        "resumed with Range: {gets:?}"
    );
    assert!(cache_blobs(&s.c.cache).contains(big));
}

/// The source away for a moment while the manifests are resolved (connections reset and
/// refused for 1.5 s): the pull retries, says so (a `retry` event, docs/events.md: "a
/// request failed transiently and is tried again"), and finishes, in one run.
#[test]
fn a_short_outage_while_resolving_is_retried_with_a_retry_event_and_the_pull_finishes() {
    let s = slowed(|src| ImageSet::of(&src.references()), Some(5_000));
    let mut p = Proc::spawn(s.c.pull_command(&["--json"]));
    let target = s.proxy.bytes_sent() + 2_000;
    assert!(
        p.wait_until(Duration::from_secs(30), || s.proxy.bytes_sent() >= target),
        "the pull did not get going"
    );
    // No blob asked for yet: the plan (manifests) is still running.
    let resolving = s.proxy.requests().iter().all(|r| r.blob_digest().is_none());
    s.proxy.set_down(true);
    std::thread::sleep(Duration::from_millis(1500));
    s.proxy.set_down(false);
    s.proxy.throttle(None);
    let (out, stderr) = p.wait(Duration::from_secs(90));
    let out = out.unwrap_or_else(|| panic!("the pull hung: {stderr}"));
    assert_ok(&out, "a pull through a 1.5 s outage while resolving");
    assert!(resolving, "the outage was not during the resolution");
    let ev = events(&out);
    assert_eq!(of_type(&ev, "summary")[0]["pulled"], s.source.images.len());
    cache_blobs(&s.c.cache);
    assert!(
        !of_type(&ev, "retry").is_empty(),
        "the pull went through the outage, but no `retry` event said so (the manifest requests' retries are silent)\n{}",
        out.dump()
    );
}
