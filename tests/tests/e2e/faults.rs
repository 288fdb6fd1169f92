//! Faults in the middle of the work: a registry killed at many
//! points of a push, connections dropped or cut by a proxy, a 5xx storm, a slow registry,
//! a full state directory, signals to `ferry-unpack push`, a volume cut short while it is
//! read; and for `ferry-pack`, a full output disk, a source blob changing while it is
//! read, and SIGINT while a volume is written.
//!
//! Each fault must end in a clean failure (a message and a non-zero exit, no panic) or be
//! ridden out; running the same command again finishes the job; no tag ever points at an
//! incomplete image (checked after every step); at the end the registry holds exactly the
//! bundle's images (each read back with skopeo and hashed). A pack that fails leaves no
//! `ferry-*.tar` that does not verify.
//!
//! The tmpfs tests need root (`mount -t tmpfs`) and fail, saying why, when they cannot
//! mount one (a test that could not run must never pass); one also needs `strace`, to stop
//! ferry-pack at an exact point. Run `cargo build -p pack -p unpack` first (see
//! tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::faults::*;
use tests::registry::*;
use tests::*;

/// `fixtures/generate.py bench --size`: about 40 images in 10 repositories.
const BENCH_SIZE: &str = "24MiB";
/// The push lines counted to find a kill point (printed when stderr is not a terminal).
const UPLOADED: &str = "ferry-unpack: uploaded ";

/// A bench bundle packed into volumes of `volume_size`, and its images under `bench/`.
fn bench_site(volume_size: &str) -> (Site, BTreeMap<String, String>) {
    let tmp = tempdir();
    let mirror = bench_mirror(tmp.path(), BENCH_SIZE);
    let site = Site::pack(&mirror, volume_size);
    let expected = expected_images(&site.out, &site.key.public, "bench");
    assert!(
        expected.len() >= 40,
        "bench {BENCH_SIZE}: expected at least 40 tagged images, got {}",
        expected.len()
    );
    (site, expected)
}

/// The oc-mirror fixture in one volume, and its images under `efk/`.
fn fixture_site() -> (Site, BTreeMap<String, String>) {
    let site = Site::pack(&fixture("oc-mirror"), "16MiB");
    let expected = expected_images(&site.out, &site.key.public, "efk");
    assert_eq!(expected.len(), 6, "the six fixture images: {expected:?}");
    (site, expected)
}

/// The same push arguments with another `--state`.
fn with_state(mut args: Vec<OsString>, state: &Path) -> Vec<OsString> {
    let i = args.iter().position(|a| a == "--state").expect("--state") + 1;
    args[i] = state.as_os_str().to_owned();
    args
}

/// Distinct configs and layers the images need: the blobs a push uploads (once each; the
/// other repositories that need one get it mounted).
fn layer_blobs(out: &Path) -> usize {
    let (_, m) = standalone_manifest(out);
    let blobs = m["blobs"].as_array().expect("blobs");
    let mut set = BTreeSet::new();
    for img in m["images"].as_array().expect("images") {
        for b in img["blobs"].as_array().expect("image blobs") {
            let i = usize::try_from(b.as_u64().expect("blob index")).expect("fits");
            if blobs[i].get("media_type").is_none_or(|t| t.is_null()) {
                set.insert(i);
            }
        }
    }
    set.len()
}

/// Entries of `repositories/<repo>/<what>` in the registry's storage, over `repos`.
fn stored_count(reg: &Registry, repos: &BTreeSet<String>, what: &str) -> usize {
    let root = reg.storage().join("docker/registry/v2/repositories");
    repos
        .iter()
        .map(|r| {
            fs::read_dir(root.join(r).join(what))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

/// Files of the registry's storage that are empty (a write the kill cut short).
fn empty_files(reg: &Registry) -> Vec<String> {
    reg.storage_files()
        .into_iter()
        .filter(|(_, (size, _))| *size == 0)
        .map(|(p, _)| p)
        .collect()
}

/// The line of a failed run that says what went wrong, for the summary.
fn gist(out: &Output) -> String {
    let text = out.text();
    text.lines()
        .map(str::trim)
        .find(|l| {
            l.contains("error")
                || l.contains("gave up")
                || l.contains("not tried")
                || l.contains("did not upload")
        })
        .or_else(|| text.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("")
        .chars()
        .take(220)
        .collect()
}

fn pack_command(mirror: &Path, outs: &[&Path], size: &str, key: &Key) -> Command {
    let mut c = Command::new(ferry_pack_bin());
    c.arg(mirror);
    for o in outs {
        c.arg("--out").arg(o);
    }
    c.args(["--volume-size", size, "--key"])
        .arg(&key.private)
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// `ferry-unpack verify DIR`, asserted to pass.
#[track_caller]
fn assert_verifies(dir: &Path, key: &Key, what: &str) {
    let out = unpack([
        OsStr::new("verify"),
        dir.as_os_str(),
        OsStr::new("--trust"),
        key.public.as_os_str(),
    ]);
    assert_ok(&out, what);
}

// ---------------------------------------------------------------------------------------
// 1. The registry killed (SIGKILL) at many points of a push, restarted, the push run again

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillAt {
    /// After the k-th "uploaded" line.
    Upload(usize),
    /// Once this many manifests are in by digest (every blob is done by then).
    Manifests(usize),
    /// Once this many tags are in.
    Tags(usize),
}

#[test]
fn registry_killed_at_many_points_of_a_push_then_the_same_push_completes() {
    let started = Instant::now();
    let (site, expected) = bench_site("16MiB");
    let repos = repositories(&expected);
    let n = layer_blobs(&site.out);
    assert!(n >= 40, "bench: only {n} configs and layers");
    let mut points: Vec<KillAt> = Vec::new();
    for k in [1, 2, 3, n / 8, n / 4, n / 2, 3 * n / 4, n - 2, n - 1, n] {
        let p = KillAt::Upload(k.max(1));
        if !points.contains(&p) {
            points.push(p);
        }
    }
    points.extend([
        KillAt::Manifests(1),
        KillAt::Tags(1),
        KillAt::Tags(expected.len() / 2),
    ]);
    let mut interrupted = 0;
    let mut summary = Vec::new();
    for (i, &point) in points.iter().enumerate() {
        let last = i + 1 == points.len();
        let what = format!("kill {} of {} ({point:?})", i + 1, points.len());
        let mut reg = Registry::plain();
        let host = reg.host();
        let to = format!("{host}/bench");
        let m1 = site.path(&format!("m{i}-first"));
        let args = site.push_args(
            std::slice::from_ref(&site.out),
            &to,
            &[
                "--insecure",
                "--jobs",
                "2",
                "--retry-for",
                "0",
                "--manifests-dir",
                &m1,
            ],
        );
        let t0 = Instant::now();
        let mut push = Proc::spawn(site.sandbox.command(args));
        let reached = match point {
            KillAt::Upload(k) => push.wait_for_lines(UPLOADED, k, Duration::from_secs(90)),
            KillAt::Manifests(m) => push.wait_until(Duration::from_secs(90), || {
                stored_count(&reg, &repos, "_manifests/revisions/sha256") >= m
            }),
            KillAt::Tags(t) => push.wait_until(Duration::from_secs(90), || {
                stored_count(&reg, &repos, "_manifests/tags") >= t
            }),
        };
        reg.kill();
        let killed_after = t0.elapsed();
        let (first, stderr) = push.wait(Duration::from_secs(60));
        let first = first.unwrap_or_else(|| {
            panic!("{what}: the push into a dead registry (--retry-for 0) still ran 60 s after the kill\n{stderr}")
        });
        assert!(
            !first.text().contains("panicked"),
            "{what}: panicked\n{}",
            first.dump()
        );
        if let KillAt::Upload(k) = point {
            assert!(
                reached,
                "{what}: the push never printed {k} upload lines\n{}",
                first.dump()
            );
        }
        let broke = first.code() != 0;
        if broke {
            interrupted += 1;
            assert_clean_failure(&first, &what);
            assert_exit(&first, 1, &what);
            assert_mentions(
                &first,
                &[
                    &format!("http://{host}/v2/"),
                    "run the same command again to resume",
                ],
                &format!("{what}: the failure names the registry and what to do"),
            );
        }

        reg.restart();
        assert_eq!(reg.host(), host, "{what}: restarted on the same port");
        // Nothing is repaired by hand: whatever the crash left (link files cut short and
        // empty, a tag directory without its link) the rerun alone must get past, as an
        // operator's would (see `a_link_file_left_empty_by_a_registry_crash_…` for each case
        // made on purpose). What the crash left is counted for the summary.
        let damaged = empty_files(&reg);
        // Before the rerun, every tag that resolves must be a whole image of the bundle; a
        // tag the crash left resolving to nothing (no link) is the registry's own damage,
        // counted here and left for the rerun to put right.
        let (before, dangling) = reg.tagged_images_and_dangling().unwrap_or_else(|e| {
            panic!("{what}: after the restart: a tag points at an incomplete image: {e}")
        });
        for (tag, digest) in &before {
            assert_eq!(
                expected.get(tag),
                Some(digest),
                "{what}: after the restart: {tag} points at {digest}, not at the bundle's image"
            );
        }
        let second = site.push(
            &to,
            &[
                "--insecure",
                "--jobs",
                "2",
                "--json",
                "--manifests-dir",
                &site.path(&format!("m{i}-second")),
            ],
        );
        if second.code() != 0 {
            panic!(
                "{what}: the same push again failed (exit {}): {}\nempty files in the registry's storage after the kill: {:?}",
                second.code(),
                gist(&second),
                empty_files(&reg)
            );
        }
        let totals = push_report(&second).totals;
        if broke {
            assert!(
                totals["blobs_present"].as_u64().unwrap_or(0) > 0,
                "{what}: the rerun found nothing of the first run: {totals}"
            );
        }
        assert_exactly_the_images(
            &reg,
            &expected,
            &format!("{what}: after the rerun"),
            if last { Skopeo::All } else { Skopeo::Sample(2) },
        );
        summary.push(format!(
            "  {what}: killed at {killed_after:.2?}, first push exit {}, {} empty file(s) left by the crash {damaged:?}, {} tag(s) whole and {} resolving to nothing {dangling:?} before the rerun; rerun: {} uploaded, {} mounted, {} present",
            first.code(),
            damaged.len(),
            before.len(),
            dangling.len(),
            totals["blobs_uploaded"],
            totals["blobs_mounted"],
            totals["blobs_present"]
        ));
    }
    println!(
        "registry SIGKILLed at {} points of a push of {} images ({n} configs and layers), --jobs 2 --retry-for 0:",
        points.len(),
        expected.len()
    );
    for l in &summary {
        println!("{l}");
    }
    println!(
        "  {interrupted} of {} kills cut the push short; every rerun completed; {:.1?} in all",
        points.len(),
        started.elapsed()
    );
    assert!(
        interrupted >= 10,
        "only {interrupted} of {} kills came while the push was running",
        points.len()
    );
}

/// What a SIGKILL of distribution left in the kill test above, made on purpose: a link
/// file written in place and cut short (empty). The registry then answers 500 to HEAD of
/// that manifest or blob, forever; PUTting the manifest or committing the blob again
/// rewrites the link. A rerun of the push must get past it (or at least not stop every
/// other image): today it retries, gives up, marks the registry as not answering and
/// fails all 6 images with "not tried", so running the same command again never finishes.
#[test]
fn a_link_file_left_empty_by_a_registry_crash_does_not_block_the_resume() {
    let reg = Registry::plain();
    let (site, expected) = fixture_site();
    let to = format!("{}/efk", reg.host());
    let first = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m1")]);
    assert_ok(&first, "the first push");
    let v2 = reg.storage().join("docker/registry/v2/repositories");
    // Image A: killed while its manifest was written, before its tag.
    let (a_tag, a_digest) = expected.iter().next().expect("an image");
    let (a_repo, a_tag_name) = a_tag.rsplit_once(':').expect("repo:tag");
    let a_link = v2
        .join(a_repo)
        .join("_manifests/revisions/sha256")
        .join(a_digest.strip_prefix("sha256:").expect("sha256"))
        .join("link");
    fs::write(&a_link, b"").expect("empty the manifest link");
    fs::remove_dir_all(v2.join(a_repo).join("_manifests/tags").join(a_tag_name))
        .expect("remove the tag");
    // Image B (another repository): killed while a config blob was linked into it.
    let (b_repo, b_config) = expected
        .iter()
        .filter_map(|(tag, digest)| {
            let repo = tag.rsplit_once(':')?.0;
            if repo == a_repo {
                return None;
            }
            let m: serde_json::Value = serde_json::from_slice(&reg.manifest(repo, digest)?).ok()?;
            Some((repo.to_owned(), m["config"]["digest"].as_str()?.to_owned()))
        })
        .next()
        .expect("an image with a config in another repository");
    let b_link = v2
        .join(&b_repo)
        .join("_layers/sha256")
        .join(b_config.strip_prefix("sha256:").expect("sha256"))
        .join("link");
    fs::write(&b_link, b"").expect("empty the layer link");
    // Killed before B's tag (ferry tags an image only once its every part is in, so a kill
    // while a blob is linked always finds the image untagged).
    let b_tag = expected
        .keys()
        .find(|tag| tag.rsplit_once(':').is_some_and(|(repo, _)| repo == b_repo))
        .and_then(|tag| tag.rsplit_once(':'))
        .map(|(_, t)| t.to_owned())
        .expect("a tag of image B");
    fs::remove_dir_all(v2.join(&b_repo).join("_manifests/tags").join(&b_tag))
        .expect("remove B's tag");
    let head_a = reg.request("HEAD", &format!("/v2/{a_repo}/manifests/{a_digest}"), None);
    let head_b = reg.request("HEAD", &format!("/v2/{b_repo}/blobs/{b_config}"), None);
    assert_eq!(
        (head_a.status, head_b.status),
        (500, 500),
        "distribution answers an empty link with 500 (as after the kill)"
    );
    let second = site.push(
        &to,
        &[
            "--insecure",
            "--retry-for",
            "5",
            "--manifests-dir",
            &site.path("m2"),
        ],
    );
    assert_ok(&second, "the same push again after the crash");
    assert_exactly_the_images(&reg, &expected, "after the resume", Skopeo::All);

    // Storage that lost data after the push (a blob link emptied under a tagged image):
    // a plain push trusts the tag; `--recheck` looks at every blob and puts it back.
    fs::write(&b_link, b"").expect("empty the layer link again, B tagged");
    let head_b = reg.request("HEAD", &format!("/v2/{b_repo}/blobs/{b_config}"), None);
    assert_eq!(head_b.status, 500, "the damaged link answers 500");
    let recheck = site.push(
        &to,
        &[
            "--insecure",
            "--recheck",
            "--retry-for",
            "5",
            "--manifests-dir",
            &site.path("m3"),
        ],
    );
    assert_ok(
        &recheck,
        "a push with --recheck after the storage lost a blob link",
    );
    assert_exactly_the_images(&reg, &expected, "after --recheck", Skopeo::All);
}

// ---------------------------------------------------------------------------------------
// 2 and 3. A proxy between ferry and the registry: dropped and cut connections, 503s, delay

/// Pushes `site` into a fresh registry through a proxy with `faults`: the push completes,
/// or fails cleanly and the same command completes. Returns the proxy's counts and how
/// long the first push took.
fn push_through_proxy(
    site: &Site,
    expected: &BTreeMap<String, String>,
    prefix: &str,
    faults: Faults,
    extra: &[&str],
    label: &str,
) -> (Arc<ProxyStats>, Duration) {
    let reg = Registry::plain();
    let proxy = FaultProxy::start(reg.port, faults);
    let to = format!("{}/{prefix}", proxy.host());
    let m1 = site.path(&format!("{label}-m1"));
    let m2 = site.path(&format!("{label}-m2"));
    let mut flags = vec!["--insecure", "--manifests-dir", m1.as_str()];
    flags.extend(extra);
    let t0 = Instant::now();
    let first = site.push(&to, &flags);
    let took = t0.elapsed();
    assert!(
        !first.text().contains("panicked"),
        "{label}: panicked\n{}",
        first.dump()
    );
    assert_tags_whole(&reg, expected, &format!("{label}: after the push"));
    let outcome = if first.code() == 0 {
        format!("completed in {took:.1?}")
    } else {
        assert_clean_failure(&first, label);
        assert_exit(&first, 1, label);
        assert_mentions(&first, &["run the same command again to resume"], label);
        let mut flags = vec!["--insecure", "--manifests-dir", m2.as_str()];
        flags.extend(extra);
        let second = site.push(&to, &flags);
        assert_ok(&second, &format!("{label}: the same push again"));
        format!(
            "failed cleanly after {took:.1?} ({}); the same command again completed",
            gist(&first)
        )
    };
    assert_exactly_the_images(&reg, expected, &format!("{label}: at the end"), Skopeo::All);
    println!(
        "{label}: {outcome}; all {} images there; proxy: {}",
        expected.len(),
        proxy.stats.summary()
    );
    (proxy.stats.clone(), took)
}

#[test]
fn every_second_connection_dropped_by_a_proxy_the_push_still_completes() {
    let (site, expected) = bench_site("16MiB");
    let (stats, _) = push_through_proxy(
        &site,
        &expected,
        "bench",
        Faults {
            drop_every: Some(2),
            ..Faults::default()
        },
        &["--retry-for", "20"],
        "proxy-drops-every-2nd-connection",
    );
    assert!(
        stats.dropped.load(Ordering::SeqCst) >= 1,
        "the proxy dropped nothing: {}",
        stats.summary()
    );
}

#[test]
fn connections_cut_in_the_middle_of_blob_bodies_the_push_still_completes() {
    let (site, expected) = bench_site("16MiB");
    let (stats, _) = push_through_proxy(
        &site,
        &expected,
        "bench",
        Faults {
            cut_after: Some((256 << 10, 6)),
            ..Faults::default()
        },
        &["--retry-for", "20"],
        "proxy-cuts-6-connections-mid-body",
    );
    assert!(
        stats.cut.load(Ordering::SeqCst) >= 1,
        "the proxy cut nothing: {}",
        stats.summary()
    );
}

#[test]
fn a_storm_of_503_answers_is_ridden_out_or_fails_cleanly_and_a_rerun_completes() {
    let (site, expected) = fixture_site();
    let (stats, _) = push_through_proxy(
        &site,
        &expected,
        "efk",
        Faults {
            unavailable_first: 12,
            ..Faults::default()
        },
        &["--retry-for", "20"],
        "proxy-answers-503-to-the-first-12-requests",
    );
    assert_eq!(
        stats.unavailable.load(Ordering::SeqCst),
        12,
        "{}",
        stats.summary()
    );
}

#[test]
fn a_slow_registry_still_gets_the_whole_push_in_bounded_time() {
    let (site, expected) = fixture_site();
    let (stats, took) = push_through_proxy(
        &site,
        &expected,
        "efk",
        Faults {
            delay: Some(Duration::from_millis(200)),
            ..Faults::default()
        },
        &[],
        "proxy-delays-every-answer-200ms",
    );
    assert!(
        stats.delayed.load(Ordering::SeqCst) >= 10,
        "hardly anything was delayed: {}",
        stats.summary()
    );
    assert!(
        took < Duration::from_secs(120),
        "a push of six images at 200 ms an answer took {took:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. The state directory's disk full

#[test]
fn a_full_state_directory_fails_naming_it_and_a_roomy_one_finishes_the_push() {
    let small = Tmpfs::require("64k");
    let reg = Registry::plain();
    let (site, expected) = bench_site("4MiB");
    let vols = site.volumes();
    assert!(vols.len() >= 3, "4MiB: {} volumes", vols.len());
    let spans = blob_volumes(&vols);
    assert!(
        spans.values().any(|v| v.len() >= 2),
        "no blob spans two volumes at 4MiB: nothing would need staging"
    );
    let to = format!("{}/bench", reg.host());
    let tiny = small.path.join("state");
    let tiny_text = tiny.to_str().expect("utf-8").to_owned();
    let mut failed = None;
    for (i, v) in vols.iter().enumerate() {
        let args = with_state(
            site.push_args(
                std::slice::from_ref(v),
                &to,
                &["--insecure", "--manifests-dir", &site.path("m-tiny")],
            ),
            &tiny,
        );
        let out = site.sandbox.run(args);
        let what = format!(
            "volume {} of {} alone, the state on a 64 KiB disk",
            i + 1,
            vols.len()
        );
        assert!(!out.text().contains("panicked"), "{what}\n{}", out.dump());
        assert_tags_whole(&reg, &expected, &what);
        if matches!(out.code(), 0 | 3) {
            continue;
        }
        failed = Some((i + 1, out));
        break;
    }
    let (at, out) = failed.unwrap_or_else(|| {
        panic!("every volume went through with the state on a 64 KiB disk: nothing was staged?")
    });
    let what = format!("volume {at} with the state directory full");
    assert_clean_failure(&out, &what);
    assert_exit(&out, 1, &what);
    assert_mentions(
        &out,
        &[&tiny_text],
        &format!("{what}: names the state path"),
    );
    let leftovers = partial_files(&tiny);

    let roomy = site.tmp.path().join("roomy-state");
    for (i, v) in vols.iter().enumerate() {
        let args = with_state(
            site.push_args(
                std::slice::from_ref(v),
                &to,
                &["--insecure", "--manifests-dir", &site.path("m-roomy")],
            ),
            &roomy,
        );
        let out = site.sandbox.run(args);
        let what = format!("volume {} of {} alone, a roomy state", i + 1, vols.len());
        assert!(!out.text().contains("panicked"), "{what}\n{}", out.dump());
        if i + 1 == vols.len() {
            assert_ok(&out, &what);
        } else {
            assert!(
                matches!(out.code(), 0 | 3),
                "{what}: expected exit 0 or 3\n{}",
                out.dump()
            );
        }
        assert_tags_whole(&reg, &expected, &what);
    }
    assert_exactly_the_images(
        &reg,
        &expected,
        "every volume pushed one at a time with a roomy state",
        Skopeo::All,
    );
    println!(
        "state on a 64 KiB tmpfs: volume {at} of {} failed cleanly ({}); {} .partial file(s) left in the state; with a roomy state, volumes one at a time completed all {} images",
        vols.len(),
        gist(&out),
        leftovers.len(),
        expected.len()
    );
}

/// A write into the state directory that fails (disk full) must not leave its temporary
/// file behind: it holds the space that is short, and `status` counts it as staged.
#[test]
fn a_full_state_directory_keeps_no_partial_files() {
    let small = Tmpfs::require("64k");
    let reg = Registry::plain();
    let (site, _expected) = bench_site("4MiB");
    let vols = site.volumes();
    let tiny = small.path.join("state");
    let args = with_state(
        site.push_args(
            std::slice::from_ref(&vols[0]),
            &format!("{}/bench", reg.host()),
            &["--insecure", "--manifests-dir", &site.path("m")],
        ),
        &tiny,
    );
    let out = site.sandbox.run(args);
    assert_clean_failure(&out, "volume 1 with the state directory full");
    assert_eq!(
        partial_files(&tiny),
        Vec::<PathBuf>::new(),
        "temporary files left in the state directory\n{}",
        out.dump()
    );
}

// ---------------------------------------------------------------------------------------
// 5. SIGINT and SIGTERM to ferry-unpack push

fn signal_mid_push(sig: &str) {
    let reg = Registry::plain();
    let (site, expected) = bench_site("16MiB");
    let to = format!("{}/bench", reg.host());
    let args = site.push_args(
        std::slice::from_ref(&site.out),
        &to,
        &["--insecure", "--manifests-dir", &site.path("m1")],
    );
    let push = Proc::spawn(site.sandbox.command(args));
    assert!(
        push.wait_for_lines(UPLOADED, 1, Duration::from_secs(90)),
        "the push never reported an upload"
    );
    push.signal(sig);
    let t0 = Instant::now();
    let (out, stderr) = push.wait(Duration::from_secs(30));
    let out = out.unwrap_or_else(|| {
        panic!("SIG{sig}: ferry-unpack push still ran 30 s later (killed it now)\n{stderr}")
    });
    let ended = t0.elapsed();
    let what = format!("SIG{sig} after the first upload");
    // Exit 130, what is done, and the command that resumes.
    assert_exit(&out, 130, &what);
    assert!(!out.text().contains("panicked"), "{what}\n{}", out.dump());
    assert_mentions(
        &out,
        &[
            "ferry-unpack: interrupted: ",
            "blob(s) were uploaded",
            "To resume, run the same command again:",
            &format!("push {} --trust", site.out.display()),
            &format!("--to {to} "),
        ],
        &format!("{what}: says what is done and what to run"),
    );
    assert!(
        ended < Duration::from_secs(10),
        "{what}: took {ended:?} to stop\n{}",
        out.dump()
    );
    // Upload sessions in flight were cancelled (DELETE), not left open in the registry.
    let open = open_upload_sessions(&reg);
    assert!(
        open.is_empty(),
        "{what}: upload sessions left open in the registry: {open:?}\n{}",
        out.dump()
    );
    // The directory may exist (push checks it can write there before it starts); nothing
    // may be in it.
    let m1 = fs::read_dir(site.path("m1"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(
        m1.is_empty(),
        "{what}: cluster manifests written for an interrupted push: {m1:?}"
    );
    println!("{what}: stdout and stderr:\n{}", out.text());
    let tagged = assert_tags_whole(&reg, &expected, &what);
    let second = site.push(
        &to,
        &["--insecure", "--json", "--manifests-dir", &site.path("m2")],
    );
    assert_ok(&second, &format!("{what}: the same push again"));
    let totals = push_report(&second).totals;
    assert!(
        totals["blobs_present"].as_u64().unwrap_or(0) > 0,
        "{what}: the rerun found nothing of the first run: {totals}"
    );
    assert_exactly_the_images(
        &reg,
        &expected,
        &format!("{what}: after the rerun"),
        Skopeo::All,
    );
    println!(
        "{what}: the push ended {ended:.2?} later ({}), {} tag(s) there and whole; the rerun found {} blob(s) present, uploaded {} and completed all {} images",
        out.status,
        tagged.len(),
        totals["blobs_present"],
        totals["blobs_uploaded"],
        expected.len()
    );
}

/// Upload sessions the registry still holds: distribution keeps each under
/// `docker/registry/v2/repositories/<repo>/_uploads/<uuid>/` until it is completed or
/// cancelled.
fn open_upload_sessions(reg: &Registry) -> Vec<String> {
    let root = reg.storage().join("docker/registry/v2/repositories");
    let mut open = Vec::new();
    for entry in walk(&root) {
        if entry.file_name().is_some_and(|n| n == "_uploads") && entry.is_dir() {
            for session in fs::read_dir(&entry).expect("read _uploads").flatten() {
                // A session distribution still knows has its `startedat` (it is what
                // resuming and the upload purger read) or data. After a DELETE,
                // distribution 2.8 itself leaves `hashstates/sha256/<offset>` behind (its
                // blobWriter.Close stores the hash state after Cancel removed the session):
                // residue of a cancelled session, not an open one.
                let p = session.path();
                if p.join("startedat").exists() || p.join("data").exists() {
                    open.push(p.display().to_string());
                }
            }
        }
    }
    open
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
            out.push(p);
        }
    }
    out
}

#[test]
fn sigint_to_a_push_ends_it_and_the_same_push_completes() {
    signal_mid_push("INT");
}

#[test]
fn sigterm_to_a_push_ends_it_and_the_same_push_completes() {
    signal_mid_push("TERM");
}

// ---------------------------------------------------------------------------------------
// 6. A volume cut short while the push reads it

#[test]
fn a_volume_cut_short_mid_push_fails_naming_it_and_an_intact_copy_finishes() {
    let reg = Registry::plain();
    let (site, expected) = bench_site("64MiB");
    let vols = site.volumes();
    assert_eq!(vols.len(), 1, "one big volume");
    let vol = vols[0].clone();
    let intact_dir = site.tmp.path().join("intact");
    fs::create_dir_all(&intact_dir).expect("mkdir intact");
    let intact = intact_dir.join(vol.file_name().expect("volume name"));
    fs::copy(&vol, &intact).expect("copy the volume");
    let size = file_size(&vol);
    let to = format!("{}/bench", reg.host());
    let args = site.push_args(
        std::slice::from_ref(&vol),
        &to,
        &["--insecure", "--manifests-dir", &site.path("m1")],
    );
    let push = Proc::spawn(site.sandbox.command(args));
    assert!(
        push.wait_for_lines(UPLOADED, 1, Duration::from_secs(90)),
        "the push never reported an upload"
    );
    truncate(&vol, size / 2);
    let (out, stderr) = push.wait(Duration::from_secs(120));
    let out =
        out.unwrap_or_else(|| panic!("the push of a cut volume still ran after 120 s\n{stderr}"));
    let what = "the volume cut to half its size after the first upload";
    assert_clean_failure(&out, what);
    assert_exit(&out, 1, what);
    assert_mentions(
        &out,
        &[vol.to_str().expect("utf-8")],
        &format!("{what}: names the volume"),
    );
    let tagged = assert_tags_whole(&reg, &expected, what);
    assert!(
        tagged.len() < expected.len(),
        "{what}: every image went in anyway"
    );
    let second = site.push_volumes(
        std::slice::from_ref(&intact),
        &to,
        &["--insecure", "--json", "--manifests-dir", &site.path("m2")],
    );
    assert_ok(&second, "the push again from an intact copy");
    assert_exactly_the_images(&reg, &expected, "after the intact copy", Skopeo::All);
    println!(
        "volume truncated to half mid-push: failed cleanly ({}), {} of {} images tagged (all whole); from an intact copy the push completed",
        gist(&out),
        tagged.len(),
        expected.len()
    );
}

// ---------------------------------------------------------------------------------------
// 7. ferry-pack: output disk full, a source blob changing, SIGINT

/// Two small disks for a pack whose volumes (packed first into `probe`) have `sizes`: disk
/// A with room for volume 1 only, disk B for the rest, so the up-front check passes. Each
/// needs the 64 KiB margin the space check keeps (format-spec/src/room.rs `MARGIN`) and,
/// since every medium that gets a volume also gets them, the standalone manifest and its
/// signature.
fn disks_for_volume_one_and_the_rest(probe: &Path, sizes: &[u64]) -> (Tmpfs, Tmpfs) {
    let margin = 64 << 10;
    let page = 4096;
    let manifest: u64 = names(probe)
        .iter()
        .filter(|n| n.contains(".bundle.json"))
        .map(|n| file_size(&probe.join(n)))
        .sum();
    let a_bytes = (sizes[0] + margin + manifest + 8192).div_ceil(page) * page;
    let b_bytes = (sizes[1..].iter().sum::<u64>() + margin + (1 << 20)).div_ceil(page) * page;
    (
        Tmpfs::require(&format!("{}k", a_bytes / 1024)),
        Tmpfs::require(&format!("{}k", b_bytes / 1024)),
    )
}

#[test]
fn pack_output_disk_filling_up_mid_write_fails_cleanly_and_leaves_only_whole_volumes() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mirror = bench_mirror(tmp.path(), BENCH_SIZE);
    // The volume sizes, from a pack into a roomy directory.
    let probe = tmp.path().join("probe");
    pack_ok(&mirror, &probe, "4MiB", &key, &[]);
    let sizes: Vec<u64> = volumes(&probe).iter().map(|v| file_size(v)).collect();
    assert!(sizes.len() >= 3, "4MiB: {} volumes", sizes.len());
    let (a, b) = disks_for_volume_one_and_the_rest(&probe, &sizes);
    let mut p = Proc::spawn(pack_command(&mirror, &[&a.path, &b.path], "4MiB", &key));
    // The moment volume 2 starts on disk B, something else fills B.
    let started_on_b = p.wait_until(Duration::from_secs(120), || {
        names(&b.path).iter().any(|n| n.ends_with(".partial"))
    });
    let filled = b.fill();
    let (out, stderr) = p.wait(Duration::from_secs(60));
    let out =
        out.unwrap_or_else(|| panic!("ferry-pack still ran 60 s after its disk filled\n{stderr}"));
    assert!(
        started_on_b,
        "volume 2 never started on the second disk\n{}",
        out.dump()
    );
    let what = "pack onto disks, the second filling up while volume 2 is written";
    assert_clean_failure(&out, what);
    assert_exit(&out, 1, what);
    assert_mentions(
        &out,
        &[b.path.to_str().expect("utf-8")],
        &format!("{what}: names the full disk"),
    );
    let how = if out.text().contains("No space left") {
        "ENOSPC while writing"
    } else {
        "the free-space check before the next volume"
    };
    let mut complete = 0;
    for dir in [&a.path, &b.path] {
        assert_eq!(
            partial_files(dir),
            Vec::<PathBuf>::new(),
            "{what}: a partial volume was left in {}",
            dir.display()
        );
        for (path, status) in verify_each(dir, &key.public) {
            assert_eq!(status, "ok", "{what}: {path} is left and does not verify");
            complete += 1;
        }
    }
    let roomy = tmp.path().join("roomy");
    pack_ok(&mirror, &roomy, "4MiB", &key, &[]);
    assert_verifies(&roomy, &key, "the pack again into a roomy directory");
    println!(
        "pack, disk B filled ({filled} bytes of junk) as volume 2 began: failed cleanly by {how} ({}); {complete} complete volume(s) left, all verify, no .partial; the pack again into a roomy directory verified",
        gist(&out)
    );
}

#[test]
fn a_source_blob_changing_while_pack_reads_it_fails_naming_it_and_leaves_no_false_volume() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mirror = bench_mirror(tmp.path(), BENCH_SIZE);
    // Which layers end on the last volume, from a pack of the unchanged mirror: their
    // reading ends last, so appending to them once writing starts is a change mid-pack.
    let probe = tmp.path().join("probe");
    pack_ok(&mirror, &probe, "4MiB", &key, &[]);
    let (_, m) = standalone_manifest(&probe);
    let count = m["volume_count"].as_u64().expect("volume_count");
    assert!(count >= 3, "4MiB: {count} volumes");
    let targets: Vec<(PathBuf, u64, std::time::SystemTime)> = m["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .filter(|b| {
            b["last_volume"] == count
                && b["encoding"] == "raw"
                && b.get("media_type").is_none_or(|t| t.is_null())
                && b["size"].as_u64().unwrap_or(0) > 64 << 10
        })
        .map(|b| {
            let hex = b["digest"]
                .as_str()
                .expect("digest")
                .strip_prefix("sha256:")
                .expect("sha256");
            let path = mirror.join("blobs/sha256").join(hex);
            let meta = fs::metadata(&path).expect("stat the layer");
            (path, meta.len(), meta.modified().expect("mtime"))
        })
        .collect();
    assert!(
        !targets.is_empty(),
        "no stored-as-is layer ends on the last volume"
    );
    let out_dir = tmp.path().join("changed");
    let p = Proc::spawn(pack_command(&mirror, &[&out_dir], "4MiB", &key));
    assert!(
        p.wait_for_lines("ferry-pack: bundle ", 1, Duration::from_secs(120)),
        "ferry-pack never started writing"
    );
    for (path, _, _) in &targets {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open the layer");
        std::io::Write::write_all(&mut f, b"a late write by the mirror tool\n").expect("append");
    }
    let (out, stderr) = p.wait(Duration::from_secs(120));
    let out = out.unwrap_or_else(|| panic!("ferry-pack still ran after 120 s\n{stderr}"));
    let what = "a layer appended to while ferry-pack writes";
    assert_clean_failure(&out, what);
    assert_exit(&out, 1, what);
    assert_mentions(&out, &["changed while ferry-pack read it"], what);
    let text = out.text();
    assert!(
        targets
            .iter()
            .any(|(p, _, _)| text.contains(p.to_str().expect("utf-8"))),
        "{what}: the message names none of the changed files {:?}\n{}",
        targets.iter().map(|t| &t.0).collect::<Vec<_>>(),
        out.dump()
    );
    let left = verify_each(&out_dir, &key.public);
    for (path, status) in &left {
        assert_eq!(status, "ok", "{what}: {path} is left and does not verify");
    }
    assert_eq!(
        partial_files(&out_dir),
        Vec::<PathBuf>::new(),
        "{what}: partial files left"
    );
    // The mirror tool finishes (the layer as it was), and the pack runs again.
    for (path, len, mtime) in &targets {
        truncate(path, *len);
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(*mtime))
            .expect("restore the mtime");
    }
    let again = tmp.path().join("again");
    pack_ok(&mirror, &again, "4MiB", &key, &[]);
    assert_verifies(&again, &key, "the pack again after the mirror was restored");
    let same = names(&again) == names(&probe);
    println!(
        "pack, {} layer(s) of the last volume appended to after writing began: failed cleanly ({}); {} volume(s) left, all verify; after restoring, the pack again verified{}",
        targets.len(),
        gist(&out),
        left.len(),
        if same { " and gave the same volume names as before the change" } else { "" }
    );
}

#[test]
fn sigint_to_pack_mid_write_leaves_no_false_volume_and_the_same_pack_finishes() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mirror = bench_mirror(tmp.path(), BENCH_SIZE);
    let out_dir = tmp.path().join("vols");
    let mut p = Proc::spawn(pack_command(&mirror, &[&out_dir], "4MiB", &key));
    let mid = p.wait_until(Duration::from_secs(120), || !volumes(&out_dir).is_empty());
    p.signal("INT");
    let (out, stderr) = p.wait(Duration::from_secs(30));
    let out = out.unwrap_or_else(|| panic!("ferry-pack still ran 30 s after SIGINT\n{stderr}"));
    assert!(
        mid,
        "ferry-pack ended before its first volume was complete\n{}",
        out.dump()
    );
    let what = "SIGINT to ferry-pack after its first volume";
    assert!(
        !out.status.success(),
        "{what}: it ended well (too late?)\n{}",
        out.dump()
    );
    assert!(!out.text().contains("panicked"), "{what}\n{}", out.dump());
    let left = verify_each(&out_dir, &key.public);
    assert!(!left.is_empty(), "{what}: the complete volume 1 is gone");
    for (path, status) in &left {
        assert_eq!(status, "ok", "{what}: {path} is left and does not verify");
    }
    let partials = partial_files(&out_dir);
    pack_ok(&mirror, &out_dir, "4MiB", &key, &[]);
    assert_verifies(
        &out_dir,
        &key,
        "the same pack again, into the same directory",
    );
    assert_eq!(
        partial_files(&out_dir),
        Vec::<PathBuf>::new(),
        "partial files left after the pack finished"
    );
    println!(
        "SIGINT to ferry-pack mid-write: ended ({}), {} complete volume(s) left, all verify, {} .partial left; the same pack again into the same directory verified",
        out.status,
        left.len(),
        partials.len()
    );
}

/// The last disk fills up (by something else) before the next volume starts: the pack
/// stops there and says how to go on with another disk. That command must work, and the
/// message must read as one sentence. The disk is filled at an exact point, not raced:
/// ferry-pack is stopped (strace) once volume 1 has its final name on disk A, disk B is
/// filled, and only then does it go on to look for room for volume 2.
#[test]
fn a_disk_full_before_the_next_volume_suggests_a_command_that_finishes_the_bundle() {
    // One bundle id for the probe and the run, so volume 1's final name is known.
    const EPOCH: &str = "1700000000";
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let mirror = bench_mirror(tmp.path(), BENCH_SIZE);
    let probe = tmp.path().join("probe");
    let mut c = pack_command(&mirror, &[&probe], "4MiB", &key);
    assert_ok(
        &run_command(c.env("SOURCE_DATE_EPOCH", EPOCH)),
        "the probe pack",
    );
    let vols = volumes(&probe);
    let sizes: Vec<u64> = vols.iter().map(|v| file_size(v)).collect();
    assert!(sizes.len() >= 3, "4MiB: {} volumes", sizes.len());
    let (a, b) = disks_for_volume_one_and_the_rest(&probe, &sizes);
    let first = a.path.join(vols[0].file_name().expect("a volume name"));
    let mut c = pack_command(&mirror, &[&a.path, &b.path], "4MiB", &key);
    c.env("SOURCE_DATE_EPOCH", EPOCH);
    // The first fsync of disk A's directory: volume 1 has just been renamed into place
    // (strace -P cannot match a rename's new name, which does not exist yet).
    let mut p = StoppedAt::spawn(&c, "fsync,fdatasync", &a.path);
    let pid = p
        .wait_stopped(Duration::from_secs(120))
        .unwrap_or_else(|log| {
            panic!(
                "ferry-pack was never stopped as it synced {}\n{log}",
                a.path.display()
            )
        });
    assert!(first.is_file(), "stopped, but volume 1 is not in place");
    assert!(
        names(&b.path).is_empty(),
        "volume 2 began before the disk was filled: {:?}",
        names(&b.path)
    );
    // Volume 1 is on disk A; disk B fills before volume 2 looks at it.
    b.fill();
    assert_ok(
        &run("kill", ["-CONT".to_string(), pid.to_string()]),
        "kill -CONT",
    );
    let (out, stderr) = p.proc.wait(Duration::from_secs(60));
    let out = out.unwrap_or_else(|| panic!("ferry-pack still ran after 60 s\n{stderr}"));
    assert_clean_failure(&out, "the second disk full before volume 2");
    assert_mentions(
        &out,
        &["volume 2", "does not fit", b.path.to_str().expect("utf-8")],
        "the second disk full before volume 2: stopped there, naming the disk",
    );
    let text = out.text();
    let hint = text
        .split("--only-volume ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no --only-volume in the message\n{}", out.dump()))
        .to_owned();
    let next = tmp.path().join("next-disk");
    // "The same command": the same SOURCE_DATE_EPOCH too, else another bundle.
    let mut again = pack_command(&mirror, &[&next], "4MiB", &key);
    let again = run_command(
        again
            .args(["--only-volume", &hint])
            .env("SOURCE_DATE_EPOCH", EPOCH),
    );
    assert_ok(
        &again,
        &format!("the command the message suggests (--out NEWDIR --only-volume {hint})"),
    );
    let both = unpack([
        OsStr::new("verify"),
        a.path.as_os_str(),
        next.as_os_str(),
        OsStr::new("--trust"),
        key.public.as_os_str(),
    ]);
    assert_ok(&both, "volume 1 on disk A and the rest on the next disk");
    assert!(
        !text.contains("\\\n"),
        "the message holds a backslash and a line break\n{}",
        out.dump()
    );
}
