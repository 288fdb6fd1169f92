//! `ferry-unpack push` when things go wrong: volumes that come one at a time in any order,
//! a registry that is killed in the middle of a push and started again, a registry that
//! is down, a damaged volume, a volume signed by a key that is not trusted. After each
//! step, what a cluster could pull must be whole: no tag ever points at an image with a
//! missing child, config or layer.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::faults::{assert_tags_whole, Proc};
use tests::registry::*;
use tests::*;

const NO_TLS: &[&str] = &["--tls-verify=false"];

/// A fixed, well-mixed order of `n` items (xorshift Fisher–Yates): the same every run.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).expect("fits");
        order.swap(i, j);
    }
    order
}

/// `efk/<path>:<tag> → digest` for the oc-mirror fixture pushed under `efk`.
fn fixture_tags() -> BTreeMap<String, String> {
    ORIGINAL_IMAGES
        .iter()
        .map(|i| (format!("efk/{}:{}", i.path, i.tag), i.digest.to_owned()))
        .collect()
}

/// The volume numbers a report says images wait on (`waits on volume(s) 3, 4, 7`).
fn waits_on(out: &std::process::Output) -> BTreeSet<usize> {
    out.stdout_text()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("waits on volume(s) "))
        .flat_map(|list| {
            list.split(',')
                .map(|n| n.trim().parse::<usize>().expect("a volume number"))
        })
        .collect()
}

struct OneAtATime {
    site: Site,
    reg: Registry,
    manifests: String,
    /// Per step: the volume given (1-based) and what the push printed.
    steps: Vec<(usize, std::process::Output)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// 1, 2, 3, …: disks as numbered.
    AsNumbered,
    /// A fixed, well-mixed order.
    Shuffled,
}

/// Packs the oc-mirror fixture into small volumes and pushes them one by one in `order`,
/// with one state directory (default --jobs); checks after every step that the push says
/// images wait (exit 3) exactly while some image has a blob on a volume not given yet (the
/// last volumes may hold only the mirror's other files), exit 0 from then on, and that
/// every tag is a complete image.
fn push_one_at_a_time(order: Order) -> OneAtATime {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "48KiB");
    let vols = site.volumes();
    assert!(
        vols.len() >= 5,
        "48KiB: expected at least 5 volumes, got {}",
        vols.len()
    );
    // The point of the state directory: blobs cut across volumes.
    let spans = blob_volumes(&vols);
    assert!(
        spans.values().any(|v| v.len() >= 2),
        "no blob spans two volumes at 48KiB: {spans:?}"
    );
    let to = format!("{}/efk", reg.host());
    let manifests = site.path("manifests");
    let expected = fixture_tags();
    let order = match order {
        Order::AsNumbered => (0..vols.len()).collect(),
        Order::Shuffled => {
            let o = shuffled(vols.len());
            assert_ne!(o, (0..vols.len()).collect::<Vec<_>>(), "not shuffled");
            o
        }
    };
    // Which volumes each image needs, from the bundle manifest: every volume any of its
    // blobs (manifests, configs, layers) lies on.
    let (_, m) = standalone_manifest(&site.out);
    let blobs = m["blobs"].as_array().expect("blobs");
    let needs: Vec<BTreeSet<usize>> = m["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|img| {
            img["blobs"]
                .as_array()
                .expect("image blobs")
                .iter()
                .flat_map(|b| {
                    let b = &blobs[usize::try_from(b.as_u64().expect("index")).expect("fits")];
                    let first = b["first_volume"].as_u64().expect("first_volume");
                    let last = b["last_volume"].as_u64().expect("last_volume");
                    (first..=last).map(|v| usize::try_from(v).expect("fits"))
                })
                .collect()
        })
        .collect();
    let mut given = BTreeSet::new();
    let mut steps = Vec::new();
    for (step, &i) in order.iter().enumerate() {
        given.insert(i + 1);
        let last = step + 1 == order.len();
        let all_there = needs.iter().all(|n| n.is_subset(&given));
        assert!(
            !last || all_there,
            "the bundle needs volumes it does not have"
        );
        let out = site.push_volumes(
            std::slice::from_ref(&vols[i]),
            &to,
            &["--insecure", "--manifests-dir", &manifests],
        );
        let what = format!("step {} of {}: volume {}", step + 1, order.len(), i + 1);
        if all_there {
            assert_ok(&out, &format!("{what}: every image's volumes are given"));
        } else {
            assert_exit(&out, 3, &format!("{what}: images still wait"));
            assert_mentions(&out, &["waits on volume(s) "], &what);
        }
        assert!(!out.text().contains("panicked"), "{what}\n{}", out.dump());
        assert_tags_whole(&reg, &expected, &what);
        steps.push((i + 1, out));
    }
    OneAtATime {
        site,
        reg,
        manifests,
        steps,
    }
}

#[test]
fn volumes_one_at_a_time_in_any_order_never_tag_an_incomplete_image() {
    let run = push_one_at_a_time(Order::Shuffled);
    let reg = &run.reg;
    assert_eq!(
        assert_tags_whole(reg, &fixture_tags(), "at the end"),
        fixture_tags().into_keys().collect(),
        "every image is tagged at the end"
    );
    for img in &ORIGINAL_IMAGES {
        let reference = format!("{}/efk/{}:{}", reg.host(), img.path, img.tag);
        assert_eq!(skopeo_digest(&reference, NO_TLS), img.digest, "{reference}");
    }
    // Staged pieces are only kept while they are needed.
    let (_, m) = standalone_manifest(&run.site.out);
    let id = m["bundle_id"].as_str().expect("bundle id");
    let chunks = names(
        &run.site
            .state
            .join(id.strip_prefix("sha256:").expect("sha256"))
            .join("chunks"),
    );
    assert_eq!(
        chunks,
        Vec::<String>::new(),
        "staged chunks left after the last volume"
    );
}

#[test]
fn waits_on_names_only_volumes_not_yet_given() {
    let run = push_one_at_a_time(Order::Shuffled);
    let mut given = BTreeSet::new();
    for (vol, out) in &run.steps {
        given.insert(*vol);
        let asked: BTreeSet<usize> = waits_on(out).intersection(&given).copied().collect();
        assert!(
            asked.is_empty(),
            "after volumes {given:?}, the report asks again for {asked:?}\n{}",
            out.dump()
        );
    }
}

#[test]
fn volumes_one_at_a_time_as_numbered_end_with_a_catalog_source() {
    let run = push_one_at_a_time(Order::AsNumbered);
    let cs = Path::new(&run.manifests).join("cluster/catalogSource.yaml");
    assert!(
        cs.is_file(),
        "no catalogSource.yaml after the last volume; {} holds {:?}",
        run.manifests,
        names(Path::new(&run.manifests))
    );
}

// ---------------------------------------------------------------------------------------
// A registry that dies

/// `bench` images (40 images, 48 MiB), packed into a few volumes.
fn bench_site() -> (Site, BTreeMap<String, String>) {
    let tmp = tempdir();
    let mirror = tmp.path().join("bench");
    let gen = run(
        "python3",
        [
            workspace()
                .join("fixtures/generate.py")
                .to_str()
                .expect("utf-8"),
            "bench",
            "--out",
            mirror.to_str().expect("utf-8"),
            "--size",
            "48MiB",
        ],
    );
    assert_ok(&gen, "fixtures/generate.py bench");
    let site = Site::pack(&mirror, "16MiB");
    // The images as the bundle records them: bench images have no original reference, so
    // they go to PREFIX/<repository>.
    let (_, m) = standalone_manifest(&site.out);
    let mut images = BTreeMap::new();
    for i in m["images"].as_array().expect("images") {
        assert!(i.get("source").is_none_or(|s| s.is_null()), "{i}");
        for tag in i["tags"].as_array().expect("tags") {
            images.insert(
                format!(
                    "bench/{}:{}",
                    i["repository"].as_str().expect("repo"),
                    tag.as_str().expect("tag")
                ),
                i["digest"].as_str().expect("digest").to_owned(),
            );
        }
    }
    assert_eq!(images.len(), 40, "bench images");
    (site, images)
}

/// The registry is killed at the first upload and back 1.5 s later, within the client's
/// retry window: the running push may ride it out (it usually does) or fail; either way
/// nothing half-pushed is tagged, and a second push finishes the job.
#[test]
fn registry_killed_mid_push_and_restarted_at_once_the_push_recovers_or_resumes() {
    let mut reg = Registry::plain();
    let (site, expected) = bench_site();
    let to = format!("{}/bench", reg.host());
    let args = site.push_args(
        std::slice::from_ref(&site.out),
        &to,
        &[
            "--insecure",
            "--jobs",
            "2",
            "--manifests-dir",
            &site.path("m1"),
        ],
    );
    let started = Instant::now();
    let first = Proc::spawn(site.sandbox.command(args));
    assert!(
        first.wait_for_line("uploaded sha256", Duration::from_secs(60)),
        "the push never reported an upload"
    );
    reg.kill();
    let killed_at = started.elapsed();
    // Down long enough for the push to notice (retries, failures), then back.
    std::thread::sleep(Duration::from_millis(1500));
    reg.restart();
    let (first, stderr) = first.wait(Duration::from_secs(150));
    let first = first.unwrap_or_else(|| {
        panic!("the first push did not end within 150 s of the restart\n{stderr}")
    });
    assert!(
        !first.text().contains("panicked"),
        "the first push panicked\n{}",
        first.dump()
    );
    if first.code() != 0 {
        assert_eq!(first.code(), 1, "{}", first.dump());
        assert_mentions(
            &first,
            &[&format!("http://{}/v2/", reg.host())],
            "the failure names the registry",
        );
    }
    // Whatever the first run managed: no tag points at an incomplete image.
    assert_tags_whole(&reg, &expected, &format!("after a kill at {killed_at:?}"));

    let second = site.push(
        &to,
        &[
            "--insecure",
            "--jobs",
            "2",
            "--manifests-dir",
            &site.path("m2"),
        ],
    );
    assert_ok(&second, "push after the registry came back");
    let tags = assert_tags_whole(&reg, &expected, "after the second push");
    assert_eq!(
        tags,
        expected.keys().cloned().collect(),
        "every image is tagged"
    );
    for (tag, digest) in &expected {
        let reference = format!("{}/{tag}", reg.host());
        assert_eq!(&skopeo_digest(&reference, NO_TLS), digest, "{reference}");
    }
}

/// Pushes the bench bundle, kills the registry (SIGKILL) at the first upload and leaves it
/// down; waits for the push to end, at most `deadline`. Then starts the registry again on
/// the same port and storage, checks that no tag points at an incomplete image, pushes
/// again and checks every image with skopeo.
/// Returns how long the first push ran after the kill.
fn registry_dies_mid_push_then_push_again(flags: &[&str], deadline: Duration) -> Duration {
    let mut reg = Registry::plain();
    let (site, expected) = bench_site();
    let host = reg.host();
    let to = format!("{host}/bench");
    let m1 = site.path("m1");
    let mut extra = vec!["--insecure", "--manifests-dir", &m1];
    extra.extend(flags);
    let args = site.push_args(std::slice::from_ref(&site.out), &to, &extra);
    let push = Proc::spawn(site.sandbox.command(args));
    assert!(
        push.wait_for_line("uploaded sha256", Duration::from_secs(60)),
        "the push never reported an upload"
    );
    reg.kill();
    let killed = Instant::now();
    let (first, stderr) = push.wait(deadline);
    let took = killed.elapsed();
    let first = first.unwrap_or_else(|| {
        panic!(
            "push into a dead registry still running {:?} after the kill (killed it now)\n{stderr}",
            killed.elapsed()
        )
    });
    assert_exit(&first, 1, "push into a registry killed mid-push");
    assert!(!first.text().contains("panicked"), "{}", first.dump());
    assert_mentions(
        &first,
        &[
            &format!("http://{host}/v2/"),
            "run the same command again to resume",
        ],
        "the failure names the registry and what to do",
    );
    // Said once, not once per image left untried.
    let text = first.text();
    assert!(
        text.matches("stopped answering").count() <= 1
            && !text.contains("not tried: the registry stopped answering"),
        "the outage is repeated per image\n{}",
        first.dump()
    );

    reg.restart();
    assert_eq!(reg.host(), host, "restarted on the same port");
    assert_tags_whole(&reg, &expected, "after the failed push");
    let second = site.push(
        &to,
        &[
            "--insecure",
            "--jobs",
            "2",
            "--json",
            "--manifests-dir",
            &site.path("m2"),
        ],
    );
    assert_ok(&second, "push again after the registry came back");
    let totals = &push_report(&second).totals;
    assert!(
        totals["blobs_present"].as_u64().expect("blobs_present") > 0,
        "the second push found nothing of the first: {totals}"
    );
    let tags = assert_tags_whole(&reg, &expected, "after the second push");
    assert_eq!(
        tags,
        expected.keys().cloned().collect(),
        "every image is tagged"
    );
    for (tag, digest) in &expected {
        let reference = format!("{host}/{tag}");
        assert_eq!(&skopeo_digest(&reference, NO_TLS), digest, "{reference}");
    }
    took
}

#[test]
fn registry_killed_mid_push_fails_the_push_cleanly_and_a_second_push_completes() {
    // --retry-for 0: give up on the first failed request, so the run ends at once instead
    // of after ~10 minutes of retries (see the ignored test below).
    let _ = registry_dies_mid_push_then_push_again(
        &["--jobs", "2", "--retry-for", "0"],
        Duration::from_secs(60),
    );
}

#[test]
fn registry_killed_mid_push_fails_the_push_once_retry_for_has_passed() {
    // `--retry-for` is the bound — the push keeps trying for about that
    // long (not ~10 s, when 6 attempts used to end it), and then ends.
    let took = registry_dies_mid_push_then_push_again(
        &["--jobs", "2", "--retry-for", "15s"],
        Duration::from_secs(50),
    );
    assert!(
        took >= Duration::from_secs(12),
        "the push gave up {took:?} after the kill, before --retry-for 15s had passed"
    );
}

// ---------------------------------------------------------------------------------------
// Bad input

#[test]
fn a_damaged_chunk_is_never_uploaded_and_the_failure_names_the_blob() {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "64KiB");
    // The shared base layer, in four images: operator, proxy, fluentd/amd64, oauth-proxy.
    let (vol, offset, size) = chunk_of(&site.out, SHARED_BASE_LAYER);
    flip_byte(&vol, offset + size / 2);
    let to = format!("{}/efk", reg.host());
    let out = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m")]);
    assert_exit(&out, 1, "push of a damaged volume");
    assert_mentions(
        &out,
        &[SHARED_BASE_LAYER],
        "the failure names the damaged blob",
    );
    assert!(!out.text().contains("panicked"), "{}", out.dump());
    assert!(
        !reg.stored_blobs().contains(&SHARED_BASE_LAYER.to_owned()),
        "the damaged blob is in the registry's storage"
    );
    let users = [
        "openshift4/ose-elasticsearch-operator",
        "openshift4/ose-elasticsearch-proxy",
        "openshift4/ose-logging-fluentd",
        "openshift4/ose-oauth-proxy",
    ];
    for path in users {
        let repo = format!("efk/{path}");
        assert!(
            !reg.blob_exists(&repo, SHARED_BASE_LAYER),
            "{repo} has the damaged blob"
        );
        assert_eq!(
            reg.tags(&repo),
            Vec::<String>::new(),
            "{repo} is tagged without its base layer"
        );
    }
    // The images that do not need it went in whole.
    let tags = assert_tags_whole(&reg, &fixture_tags(), "after the damaged push");
    assert_eq!(
        tags,
        ORIGINAL_IMAGES
            .iter()
            .filter(|i| !users.contains(&i.path))
            .map(|i| format!("efk/{}:{}", i.path, i.tag))
            .collect(),
        "the undamaged images are tagged"
    );
}

#[test]
fn volumes_signed_by_an_untrusted_key_push_nothing() {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "64KiB");
    let other = keygen(site.tmp.path(), "other.key");
    let mut args = site.push_args(
        std::slice::from_ref(&site.out),
        &format!("{}/efk", reg.host()),
        &["--insecure", "--manifests-dir", &site.path("m")],
    );
    let trust = args.iter().position(|a| a == "--trust").expect("--trust") + 1;
    args[trust] = other.public.clone().into_os_string();
    let out = site.sandbox.run(args);
    assert_exit(&out, 1, "push with the wrong key");
    assert_mentions(&out, &["no volume could be opened"], "wrong key");
    assert_eq!(
        reg.catalog(),
        Vec::<String>::new(),
        "something went in unverified"
    );
    assert!(
        !PathBuf::from(site.path("m")).exists(),
        "manifests written for nothing"
    );
}

/// A flipped bit in a manifest's chunk: the manifest must not reach the registry, by
/// digest or under its tag (a registry takes whatever bytes come with a tag).
#[test]
fn a_damaged_manifest_is_never_pushed_nor_tagged() {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "64KiB");
    let bundle_image = &ORIGINAL_IMAGES[2];
    assert!(
        bundle_image.path.ends_with("-bundle"),
        "the operator bundle image"
    );
    let (vol, offset, size) = chunk_of(&site.out, bundle_image.digest);
    flip_byte(&vol, offset + size / 2);
    let to = format!("{}/efk", reg.host());
    let out = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m")]);
    assert_exit(&out, 1, "push with a damaged manifest");
    assert_mentions(
        &out,
        &[bundle_image.digest],
        "the failure names the damaged manifest",
    );
    assert!(!out.text().contains("panicked"), "{}", out.dump());
    let repo = format!("efk/{}", bundle_image.path);
    assert_eq!(
        reg.manifest(&repo, bundle_image.digest),
        None,
        "the damaged manifest is there by digest"
    );
    assert_eq!(reg.tags(&repo), Vec::<String>::new(), "{repo} is tagged");
    // Everything else went in whole, each tag with its own digest.
    let tags = assert_tags_whole(&reg, &fixture_tags(), "after the push");
    assert_eq!(tags.len(), 5, "{tags:?}");
}
