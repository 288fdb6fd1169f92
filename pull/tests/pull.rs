//! The pull against a real registry: Debian's docker-registry stands for
//! `registry.redhat.io` through a registries.conf, the fixture images are pushed into it
//! with skopeo, and what the pull leaves in the cache is read back the way `ferry-pack`
//! reads it (`mirror::read_mirror`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use imageset::{ImageSet, Platform, PullSet};
use pull::{Cache, Event, Options};
use test_support::cmd::{assert_ok, run, tempdir};
use test_support::registry::{sha256_hex, Registry};

const FLUENTD: &str = "openshift4/ose-logging-fluentd";
const FLUENTD_INDEX: &str =
    "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e";
const FLUENTD_AMD64: &str =
    "sha256:c64f0c976b1a0d30dd32923e18fd799977a435fece800e388753f5a39bf20e33";
const FLUENTD_ARM64: &str =
    "sha256:c862ee143091d00facbfe6184f0434218b093f606054ab00249798f5d935a994";
const PROXY: &str = "openshift4/ose-elasticsearch-proxy";
const PROXY_DIGEST: &str =
    "sha256:239bcd202d2332541948d67d5864c9d34a21fee1d7626e6ce174e7da73e0f218";
const OAUTH: &str = "openshift4/ose-oauth-proxy";
const OAUTH_DIGEST: &str =
    "sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/skopeo-dir")
}

/// Pushes fixture images (skopeo `dir:` layouts) into the registry, digests preserved.
fn push(registry: &Registry, images: &[(&str, &str)]) {
    for (dir, dest) in images {
        let src = format!("dir:{}", fixtures().join(dir).display());
        let dst = format!("docker://{}/{dest}", registry.host());
        let mut args: Vec<String> = [
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]
        .map(String::from)
        .to_vec();
        if let Some((user, password)) = &registry.credentials {
            args.push(format!("--dest-creds={user}:{password}"));
        }
        args.extend([src.clone(), dst.clone()]);
        let out = run("skopeo", &args);
        assert_ok(&out, &format!("skopeo copy {src} {dst}"));
    }
}

/// The three images every test pulls: a multi-arch list by tag, an OCI manifest by tag,
/// a docker manifest by digest.
fn push_all(registry: &Registry) {
    push(
        registry,
        &[
            (
                "openshift4/ose-logging-fluentd:v4.6",
                &format!("{FLUENTD}:v4.6"),
            ),
            (
                "openshift4/ose-elasticsearch-proxy:v4.6",
                &format!("{PROXY}:v4.6"),
            ),
            (
                &format!("openshift4/ose-oauth-proxy@{OAUTH_DIGEST}"),
                // distribution needs a tag to push to; the pull asks by digest.
                &format!("{OAUTH}:pushed"),
            ),
        ],
    );
}

/// A registries.conf that sends `registry.redhat.io` to the local registry, optionally
/// through a mirror first.
fn registries_conf(dir: &Path, location: &str, mirror: Option<&str>) -> PathBuf {
    let mut text = format!(
        "[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \"{location}\"\ninsecure = true\n"
    );
    if let Some(m) = mirror {
        text.push_str(&format!(
            "[[registry.mirror]]\nlocation = \"{m}\"\ninsecure = true\n"
        ));
    }
    let path = dir.join("registries.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn image_set(dir: &Path, body: &str) -> PullSet {
    let path = dir.join("imageset.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{body}"
        ),
    )
    .unwrap();
    ImageSet::from_file(&path)
        .unwrap()
        .validate_for_pull()
        .unwrap()
}

fn the_three(dir: &Path) -> PullSet {
    image_set(
        dir,
        &format!(
            "  - name: registry.redhat.io/{FLUENTD}:v4.6\n  - name: registry.redhat.io/{PROXY}:v4.6\n  - name: registry.redhat.io/{OAUTH}@{OAUTH_DIGEST}\n"
        ),
    )
}

fn options(conf: &Path, platforms: &[&str]) -> Options {
    Options {
        platforms: platforms
            .iter()
            .map(|p| p.parse::<Platform>().unwrap())
            .collect(),
        authfile: Some(empty_authfile()),
        registries_conf: Some(conf.to_path_buf()),
        home: None,
        ca_cert: None,
        insecure: false,
        jobs: 4,
        retry_for: Duration::from_secs(5),
        // Each test its own flag: one that interrupts must not stop the others.
        cancel: Box::leak(Box::new(AtomicBool::new(false))),
        allow_missing: false,
    }
}

/// An auth file with no entries: the tests never read the machine's own. Written once per
/// process: tests run in parallel, and rewriting one shared file let a test read it while
/// another had just truncated it (an "is not an auth file" error, 1 run in 10).
fn empty_authfile() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("ferry-pull-test-auth-{}.json", std::process::id()));
        std::fs::write(&path, "{\"auths\":{}}").unwrap();
        path
    })
    .clone()
}

/// Collects the events, as the CLI would show them.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn see(&self, e: Event<'_>) {
        let line = match e {
            Event::Resolved(i) => format!("resolved {} {}", i.source, i.digest),
            Event::Pulled(i) => format!("pulled {}", i.source),
            Event::Failed(f) => format!("failed {}: {}", f.reference, f.error),
            Event::Retry { what, error, .. } => format!("retry {what}: {error}"),
            Event::Bytes(_) => return,
            Event::Catalog(c) => format!("catalog {} {}", c.catalog, c.ref_name),
        };
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// `GET` requests for paths containing `what` the registry served (its log, one line per
/// request). The registry logs a request after answering it: the count is read again
/// until it stays the same for a moment, so that no line still on its way is missed.
fn get_requests(registry: &Registry, what: &str) -> usize {
    let count = || {
        registry
            .log_text()
            .lines()
            .filter(|l| l.contains("http.request.method=GET") && l.contains(what))
            .count()
    };
    let mut last = count();
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
}

fn blob_gets(registry: &Registry) -> usize {
    get_requests(registry, "/blobs/sha256:")
}

#[test]
fn pull_by_tag_and_digest_keeps_the_source_names_and_a_second_run_fetches_nothing() {
    let registry = Registry::plain();
    push_all(&registry);
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), None);
    let set = the_three(tmp.path());
    let opts = options(&conf, &[]);
    let cache_dir = tmp.path().join("cache");
    let seen = Seen::default();
    let events = |e: Event<'_>| seen.see(e);

    let cache = Cache::open(&cache_dir).unwrap();
    let plan = pull::plan(&cache, &set, &opts, &events).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let digests: Vec<String> = plan.images.iter().map(|i| i.digest.to_string()).collect();
    assert_eq!(digests, [FLUENTD_INDEX, PROXY_DIGEST, OAUTH_DIGEST]);
    let fluentd = &plan.images[0];
    // The source is what the image set wrote, never the location that served it.
    assert_eq!(fluentd.source, format!("registry.redhat.io/{FLUENTD}:v4.6"));
    assert_eq!(fluentd.endpoint, registry.host());
    assert_eq!(fluentd.ref_name, format!("{FLUENTD}:v4.6"));
    assert!(fluentd
        .resolved_at
        .as_deref()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        fluentd.platforms_available,
        ["linux/amd64", "linux/arm64/v8"]
    );
    assert_eq!(fluentd.platforms_kept, None);
    assert_eq!(fluentd.manifests.len(), 3);
    let oauth = &plan.images[2];
    assert_eq!(oauth.ref_name, format!("{OAUTH}@{OAUTH_DIGEST}"));
    assert_eq!(oauth.resolved_at, None);
    assert!(!oauth.offline);
    // 28 blobs in the fixtures; these three images need all but the other three images'.
    assert_eq!(plan.blobs_cached, 0);
    assert_eq!(plan.bytes_to_fetch, plan.bytes_total);
    assert!(plan.bytes_total > 0 && plan.cache_free > plan.bytes_total);
    // No layer was fetched by the plan.
    assert_eq!(blob_gets(&registry), 0, "{}", registry.log_text());

    let report = pull::fetch(&cache, &plan, &opts, &events).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.pulled.len(), 3);
    assert_eq!(report.blobs_fetched, plan.blobs_total);
    assert_eq!(report.bytes_fetched, plan.bytes_total);
    let gets = blob_gets(&registry);
    assert_eq!(gets, plan.blobs_total, "each blob fetched once");
    let lines = seen.lines();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("pulled ")).count(),
        3,
        "{lines:?}"
    );

    // What the cache recorded, and what ferry-pack reads from it.
    let recorded = cache.images().unwrap();
    let mut names: Vec<(String, String)> = recorded
        .iter()
        .map(|i| (i.ref_name.clone(), i.source.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            (
                format!("{PROXY}:v4.6"),
                format!("registry.redhat.io/{PROXY}:v4.6")
            ),
            (
                format!("{FLUENTD}:v4.6"),
                format!("registry.redhat.io/{FLUENTD}:v4.6")
            ),
            (
                format!("{OAUTH}@{OAUTH_DIGEST}"),
                format!("registry.redhat.io/{OAUTH}@{OAUTH_DIGEST}")
            ),
        ]
    );
    drop(cache);
    let mirror = mirror::read_mirror(&cache_dir).unwrap();
    let mut read: Vec<(String, Option<String>)> = mirror
        .images
        .iter()
        .map(|i| (i.digest.to_string(), i.source.clone()))
        .collect();
    read.sort();
    let mut want = vec![
        (
            FLUENTD_INDEX.to_owned(),
            Some(format!("registry.redhat.io/{FLUENTD}:v4.6")),
        ),
        (
            PROXY_DIGEST.to_owned(),
            Some(format!("registry.redhat.io/{PROXY}:v4.6")),
        ),
        (
            OAUTH_DIGEST.to_owned(),
            Some(format!("registry.redhat.io/{OAUTH}@{OAUTH_DIGEST}")),
        ),
    ];
    want.sort();
    assert_eq!(read, want);

    // Again, with the cache full: tags are asked again (HEAD), nothing else is fetched,
    // and the digest reference is resolved from the cache alone.
    let cache = Cache::open(&cache_dir).unwrap();
    let again = pull::plan(&cache, &set, &opts, &events).unwrap();
    assert_eq!(again.blobs_cached, again.blobs_total);
    assert_eq!(again.bytes_to_fetch, 0);
    assert!(again.images[2].offline);
    let report = pull::fetch(&cache, &again, &opts, &events).unwrap();
    assert_eq!(report.blobs_fetched, 0);
    assert_eq!(report.pulled.len(), 3);
    assert_eq!(blob_gets(&registry), gets, "a second run fetched blobs");
    let manifest_gets = get_requests(&registry, "/manifests/");
    assert_eq!(
        manifest_gets, 5,
        "one GET per manifest, in the first run only"
    );
}

#[test]
fn a_platform_keeps_one_child_and_the_index_as_it_was() {
    let registry = Registry::plain();
    push(
        &registry,
        &[(
            "openshift4/ose-logging-fluentd:v4.6",
            &format!("{FLUENTD}:v4.6"),
        )],
    );
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), None);
    let set = image_set(
        tmp.path(),
        &format!("  - name: registry.redhat.io/{FLUENTD}:v4.6\n"),
    );
    let opts = options(&conf, &["linux/amd64"]);
    let cache_dir = tmp.path().join("cache");
    let cache = Cache::open(&cache_dir).unwrap();
    let plan = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    let image = &plan.images[0];
    assert_eq!(image.platforms_kept, Some(vec!["linux/amd64".to_owned()]));
    let manifests: Vec<String> = image.manifests.iter().map(|(d, _)| d.to_string()).collect();
    assert_eq!(manifests, [FLUENTD_INDEX, FLUENTD_AMD64]);
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert_eq!(report.pulled.len(), 1);
    let recorded = cache.images().unwrap();
    assert_eq!(recorded[0].platforms, Some(vec!["linux/amd64".to_owned()]));
    let index_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index_json["manifests"][0]["annotations"]["dev.ferry.platforms"], "linux/amd64",
        "{index_json}"
    );
    // The index is the registry's, byte for byte; the arm64 child is not there.
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_owned();
    let index = std::fs::read(cache_dir.join("blobs/sha256").join(hex(FLUENTD_INDEX))).unwrap();
    assert_eq!(sha256_hex(&index), FLUENTD_INDEX);
    assert_eq!(
        registry.manifest(FLUENTD, FLUENTD_INDEX).as_deref(),
        Some(&index[..])
    );
    assert!(!cache_dir
        .join("blobs/sha256")
        .join(hex(FLUENTD_ARM64))
        .exists());
    assert_eq!(report.blobs_fetched, image.blobs.len());
}

#[test]
fn endpoints_are_tried_in_order_and_a_failure_names_each() {
    let registry = Registry::plain();
    push(
        &registry,
        &[(
            "openshift4/ose-elasticsearch-proxy:v4.6",
            &format!("{PROXY}:v4.6"),
        )],
    );
    let tmp = tempdir();
    // A mirror where nothing listens, then the registry itself.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let conf = registries_conf(
        tmp.path(),
        &registry.host(),
        Some(&format!("127.0.0.1:{dead}/rh")),
    );
    let set = image_set(
        tmp.path(),
        &format!(
            "  - name: registry.redhat.io/{PROXY}:v4.6\n  - name: registry.redhat.io/{PROXY}:no-such-tag\n"
        ),
    );
    let opts = options(&conf, &[]);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let seen = Seen::default();
    let plan = pull::plan(&cache, &set, &opts, &|e| seen.see(e)).unwrap();
    assert_eq!(plan.images.len(), 1);
    assert_eq!(plan.images[0].endpoint, registry.host());
    assert_eq!(
        plan.images[0].source,
        format!("registry.redhat.io/{PROXY}:v4.6")
    );
    let f = &plan.failed[0];
    assert_eq!(
        f.reference,
        format!("registry.redhat.io/{PROXY}:no-such-tag")
    );
    assert_eq!(f.registry, format!("127.0.0.1:{dead}, {}", registry.host()));
    assert!(
        f.error.starts_with(&format!(
            "every endpoint failed: 127.0.0.1:{dead}/rh/{PROXY} (mirror): GET http://127.0.0.1:{dead}/v2/: connection refused"
        )),
        "{}",
        f.error
    );
    assert!(
        f.error.ends_with(&format!(
            "; {}/{PROXY}: no manifest for tag no-such-tag in {PROXY} (404)",
            registry.host()
        )),
        "{}",
        f.error
    );
    assert!(
        seen.lines().iter().any(|l| l.starts_with("failed ")),
        "{:?}",
        seen.lines()
    );
    // The fetch pulls what the plan resolved; the plan's failure stays the plan's.
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert_eq!(report.pulled.len(), 1);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
}

#[test]
fn prune_keeps_what_the_set_names_from_the_cache_alone() {
    let registry = Registry::plain();
    push_all(&registry);
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), None);
    let opts = options(&conf, &[]);
    let cache_dir = tmp.path().join("cache");
    let cache = Cache::open(&cache_dir).unwrap();
    let all = the_three(tmp.path());
    let plan = pull::plan(&cache, &all, &opts, &|_| {}).unwrap();
    pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();

    // The proxy alone: fluentd and oauth-proxy go, with the blobs only they use.
    let smaller = image_set(
        tmp.path(),
        &format!("  - name: registry.redhat.io/{PROXY}:v4.6\n"),
    );
    let proxy = plan.images[1].clone();
    drop(registry); // no network: prune reads only the cache
    let report = pull::prune(&cache, &smaller, &opts).unwrap();
    let mut removed = report.images_removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        [format!("{FLUENTD}:v4.6"), format!("{OAUTH}@{OAUTH_DIGEST}")]
    );
    let recorded = cache.images().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].ref_name, format!("{PROXY}:v4.6"));
    let mut left: Vec<String> = std::fs::read_dir(cache_dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    left.sort();
    let mut needed: Vec<String> = proxy
        .manifests
        .iter()
        .chain(&proxy.blobs)
        .map(|(d, _)| d.to_string())
        .collect();
    needed.sort();
    assert_eq!(left, needed);
    drop(cache);
    let mirror = mirror::read_mirror(&cache_dir).unwrap();
    assert_eq!(mirror.images.len(), 1);
    assert_eq!(mirror.images[0].digest.to_string(), PROXY_DIGEST);
}

#[test]
fn credentials_go_only_to_the_host_they_are_for() {
    use test_support::mock::{MockServer, Reply};
    let registry = Registry::htpasswd("puller", "s3cret");
    push(
        &registry,
        &[(
            "openshift4/ose-elasticsearch-proxy:v4.6",
            &format!("{PROXY}:v4.6"),
        )],
    );
    // A mirror that asks for credentials: it has none in the auth file, so it gets none.
    let mirror = MockServer::start(|_| {
        Reply::error(401, "UNAUTHORIZED", "authentication required")
            .header("docker-distribution-api-version", "registry/2.0")
            .header("www-authenticate", "Basic realm=\"mirror\"")
    });
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), Some(&mirror.host()));
    let auth = tmp.path().join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            registry.host(),
            test_support::registry::b64("puller:s3cret")
        ),
    )
    .unwrap();
    let mut opts = options(&conf, &[]);
    opts.authfile = Some(auth);
    let set = image_set(
        tmp.path(),
        &format!("  - name: registry.redhat.io/{PROXY}:v4.6\n"),
    );
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let plan = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    assert_eq!(plan.images[0].endpoint, registry.host());
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert_eq!(report.pulled.len(), 1, "{:?}", report.failed);
    assert!(!mirror.requests().is_empty());
    for r in mirror.requests() {
        assert_eq!(r.header("authorization"), None, "{} {}", r.method, r.target);
    }

    // Without the auth file's entry, the registry's refusal is the failure.
    let mut anonymous = options(&conf, &[]);
    anonymous.registries_conf = Some(registries_conf(tmp.path(), &registry.host(), None));
    let cache = Cache::open(&tmp.path().join("cache2")).unwrap();
    let plan = pull::plan(&cache, &set, &anonymous, &|_| {}).unwrap();
    assert_eq!(plan.failed.len(), 1);
    assert_eq!(plan.failed[0].registry, registry.host());
    assert!(
        plan.failed[0].error.contains("unauthorized (401)"),
        "{}",
        plan.failed[0].error
    );
}

#[test]
fn an_interrupted_fetch_keeps_what_is_complete_and_the_next_run_finishes() {
    let registry = Registry::plain();
    push_all(&registry);
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), None);
    let set = the_three(tmp.path());
    let mut opts = options(&conf, &[]);
    opts.jobs = 1;
    let cancel = opts.cancel;
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let plan = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    // Ctrl-C as the first image is recorded.
    let e = pull::fetch(&cache, &plan, &opts, &|e| {
        if matches!(e, Event::Pulled(_)) {
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, pull::PullError::Interrupted(_)), "{text}");
    // One blob can complete two images at once.
    let done = cache.images().unwrap().len();
    assert!((1..3).contains(&done), "{done}");
    assert!(
        text.contains(&format!("{done} of 3 images pulled"))
            && text.contains("run the same command again"),
        "{text}"
    );
    let fetched_before = blob_gets(&registry);
    assert!(fetched_before < plan.blobs_total, "{fetched_before}");

    cancel.store(false, std::sync::atomic::Ordering::SeqCst);
    let again = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert!(again.failed.is_empty(), "{:?}", again.failed);
    let report = pull::fetch(&cache, &again, &opts, &|_| {}).unwrap();
    assert_eq!(report.pulled.len(), 3, "{:?}", report.failed);
    assert_eq!(cache.images().unwrap().len(), 3);
    // Every blob fetched once over both runs.
    assert_eq!(blob_gets(&registry), plan.blobs_total);
}

#[test]
fn a_tag_that_moved_is_resolved_again_and_recorded_anew() {
    let registry = Registry::plain();
    let moving = "openshift4/moving";
    push(
        &registry,
        &[(
            "openshift4/ose-elasticsearch-proxy:v4.6",
            &format!("{moving}:latest"),
        )],
    );
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), None);
    let opts = options(&conf, &[]);
    let set = image_set(
        tmp.path(),
        &format!("  - name: registry.redhat.io/{moving}:latest\n"),
    );
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let first = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    pull::fetch(&cache, &first, &opts, &|_| {}).unwrap();
    assert_eq!(first.images[0].digest.to_string(), PROXY_DIGEST);
    let since = first.images[0].resolved_at.clone();
    assert!(since.is_some());

    // A second later, the tag where it was: the time it was first seen there is kept, so
    // index.json (and a bundle packed from it) does not change.
    std::thread::sleep(Duration::from_millis(1100));
    let same = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert_eq!(same.images[0].digest.to_string(), PROXY_DIGEST);
    assert_eq!(same.images[0].resolved_at, since);
    pull::fetch(&cache, &same, &opts, &|_| {}).unwrap();
    assert_eq!(cache.images().unwrap()[0].resolved_at, since);

    // The tag now names another image: the next plan sees it, the fetch records it.
    push(
        &registry,
        &[(
            &format!("openshift4/ose-oauth-proxy@{OAUTH_DIGEST}"),
            &format!("{moving}:latest"),
        )],
    );
    let second = pull::plan(&cache, &set, &opts, &|_| {}).unwrap();
    assert_eq!(second.images[0].digest.to_string(), OAUTH_DIGEST);
    assert!(second.bytes_cached > 0, "the shared layers are cached");
    assert!(second.bytes_to_fetch > 0);
    pull::fetch(&cache, &second, &opts, &|_| {}).unwrap();
    let recorded = cache.images().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].ref_name, format!("{moving}:latest"));
    assert_eq!(recorded[0].digest.to_string(), OAUTH_DIGEST);
    // Moved: resolved to this digest from now on.
    assert!(recorded[0].resolved_at.is_some());
    assert!(
        recorded[0].resolved_at > since,
        "{recorded:?} since {since:?}"
    );
    assert_eq!(recorded[0].resolved_at, second.images[0].resolved_at);
}

#[test]
fn a_registry_gone_after_the_plan_fails_each_image_and_the_next_fetch_finishes() {
    let mut registry = Registry::plain();
    push_all(&registry);
    let tmp = tempdir();
    let conf = registries_conf(tmp.path(), &registry.host(), None);
    let opts = options(&conf, &[]);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let plan = pull::plan(&cache, &the_three(tmp.path()), &opts, &|_| {}).unwrap();
    registry.kill();
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert!(report.pulled.is_empty());
    assert_eq!(report.failed.len(), 3);
    for f in &report.failed {
        assert_eq!(f.registry, registry.host());
        assert!(
            f.error.contains("connection refused"),
            "{}: {}",
            f.reference,
            f.error
        );
    }
    assert!(cache.images().unwrap().is_empty());
    registry.restart();
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.pulled.len(), 3);
}
