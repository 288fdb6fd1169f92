//! What a real registry will not do on demand, from a scripted one (test-support's mock):
//! a mirror that has the manifests but not the blobs, a registry that keeps failing, bytes
//! that do not match their digest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imageset::{ImageSet, PullSet};
use oci::media_type::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use oci::Digest;
use pull::{Cache, Event, Options};
use test_support::cmd::tempdir;
use test_support::mock::{MockRequest, MockServer, Reply};

/// One small image: a config and a layer.
struct Image {
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
    layer: Digest,
}

fn image(seed: &str) -> Image {
    image_of(seed, 40_000)
}

fn image_of(seed: &str, layer_len: u32) -> Image {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#).into_bytes();
    let layer: Vec<u8> = (0..layer_len)
        .map(|i| (i * 7 + seed.len() as u32) as u8)
        .collect();
    let d = |b: &[u8]| Digest::of(b);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{}","size":{}}}]}}"#,
        d(&config),
        config.len(),
        d(&layer),
        layer.len()
    )
    .into_bytes();
    let mut blobs = HashMap::new();
    blobs.insert(d(&config).to_string(), config);
    blobs.insert(d(&layer).to_string(), layer.clone());
    Image {
        manifest,
        blobs,
        layer: d(&layer),
    }
}

/// How the scripted registry misbehaves.
#[derive(Default, Clone)]
struct Script {
    /// 404 for every blob.
    no_blobs: bool,
    /// 503 for every manifest.
    manifests_fail: bool,
    /// 405 for HEAD (a proxy that allows only GET).
    no_head: bool,
    /// Manifests are Docker schema 1 (signed), as old registries still hold some.
    schema1: bool,
    /// These blobs are served with one byte flipped.
    corrupt: Vec<String>,
    /// The first GET of this blob breaks off after so many bytes.
    cut_once: Option<(String, usize, Arc<AtomicBool>)>,
    /// The next request for each of these paths is answered 503 (once per path).
    fail_once: Arc<Mutex<Vec<String>>>,
}

/// A registry serving `images` (repository `app/<name>`, tag `v1`) as the script says.
fn registry(images: Arc<Vec<(String, Image)>>, script: Script) -> MockServer {
    MockServer::start(move |req: &MockRequest| {
        let api = |r: Reply| r.header("docker-distribution-api-version", "registry/2.0");
        let path = req.path();
        if path == "/v2/" {
            return api(Reply::json(200, "{}"));
        }
        {
            let mut once = script.fail_once.lock().unwrap();
            if let Some(i) = once.iter().position(|p| p == path) {
                once.remove(i);
                return api(Reply::error(503, "UNAVAILABLE", "back in a moment"));
            }
        }
        for (name, img) in images.iter() {
            let prefix = format!("/v2/app/{name}/");
            let Some(rest) = path.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(reference) = rest.strip_prefix("manifests/") {
                if script.manifests_fail {
                    return api(Reply::error(503, "UNAVAILABLE", "try later"));
                }
                if script.no_head && req.method == "HEAD" {
                    return api(Reply::status(405));
                }
                if script.schema1 {
                    let body = br#"{"schemaVersion":1,"name":"app/old","tag":"v1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}"#;
                    return api(Reply::status(200)
                        .header("content-type", oci::media_type::DOCKER_SCHEMA1_SIGNED)
                        .header("docker-content-digest", Digest::of(body).to_string())
                        .body(body));
                }
                let digest = Digest::of(&img.manifest).to_string();
                if reference != "v1" && reference != digest {
                    return api(Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown"));
                }
                return api(Reply::status(200)
                    .header("content-type", OCI_MANIFEST)
                    .header("docker-content-digest", digest)
                    .body(&img.manifest));
            }
            if let Some(digest) = rest.strip_prefix("blobs/") {
                let Some(bytes) = img.blobs.get(digest).filter(|_| !script.no_blobs) else {
                    return api(Reply::error(404, "BLOB_UNKNOWN", "blob unknown"));
                };
                let mut bytes = bytes.clone();
                if script.corrupt.iter().any(|c| c == digest) {
                    bytes[100] ^= 0xff;
                }
                // Range: bytes=N- is honoured, as distribution does.
                let from = req
                    .header("range")
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|n| n.parse::<usize>().ok());
                let reply = match from {
                    Some(n) if n < bytes.len() => Reply::status(206)
                        .header(
                            "content-range",
                            format!("bytes {n}-{}/{}", bytes.len() - 1, bytes.len()),
                        )
                        .body(&bytes[n..]),
                    _ => Reply::status(200).body(&bytes),
                };
                let reply = api(reply.header("docker-content-digest", digest));
                if let Some((d, n, done)) = &script.cut_once {
                    if d == digest && !done.swap(true, Ordering::SeqCst) {
                        return Reply::CutAfter(*n, Box::new(reply));
                    }
                }
                return reply;
            }
        }
        api(Reply::error(404, "NAME_UNKNOWN", "repository unknown"))
    })
}

fn set(dir: &Path, names: &[&str]) -> PullSet {
    let path = dir.join("imageset.yaml");
    let mut text = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n".to_owned();
    for n in names {
        text.push_str(&format!("  - name: registry.example.com/app/{n}:v1\n"));
    }
    std::fs::write(&path, text).unwrap();
    ImageSet::from_file(&path)
        .unwrap()
        .validate_for_pull()
        .unwrap()
}

fn options(dir: &Path, location: &str, mirror: Option<&str>) -> Options {
    static CANCEL: AtomicBool = AtomicBool::new(false);
    let mut conf = format!(
        "[[registry]]\nprefix = \"registry.example.com\"\nlocation = \"{location}\"\ninsecure = true\n"
    );
    if let Some(m) = mirror {
        conf.push_str(&format!(
            "[[registry.mirror]]\nlocation = \"{m}\"\ninsecure = true\n"
        ));
    }
    let conf_path = dir.join("registries.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let auth: PathBuf = dir.join("auth.json");
    std::fs::write(&auth, "{\"auths\":{}}").unwrap();
    Options {
        platforms: Vec::new(),
        authfile: Some(auth),
        registries_conf: Some(conf_path),
        home: None,
        ca_cert: None,
        insecure: false,
        jobs: 2,
        retry_for: Duration::from_millis(600),
        cancel: &CANCEL,
        allow_missing: false,
    }
}

fn lines(seen: &Mutex<Vec<String>>) -> Vec<String> {
    seen.lock().unwrap().clone()
}

fn record(seen: &Mutex<Vec<String>>, e: Event<'_>) {
    let line = match e {
        Event::Resolved(i) => format!("resolved {} at {}", i.source, i.endpoint),
        Event::Pulled(i) => format!("pulled {}", i.source),
        Event::Failed(f) => format!("failed {}", f.reference),
        Event::Retry { what, .. } => format!("retry {what}"),
        Event::Bytes(_) => return,
        Event::Catalog(c) => format!("catalog {}", c.catalog),
    };
    seen.lock().unwrap().push(line);
}

#[test]
fn a_mirror_without_the_blobs_or_failing_gives_way_to_the_registry() {
    let images = Arc::new(vec![("one".to_owned(), image("one"))]);
    let location = registry(images.clone(), Script::default());
    // The mirror has the manifest, not the blobs: they come from the location.
    let mirror = registry(
        images.clone(),
        Script {
            no_blobs: true,
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &location.host(), Some(&mirror.host()));
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let s = set(tmp.path(), &["one"]);
    let plan = pull::plan(&cache, &s, &opts, &|_| {}).unwrap();
    assert_eq!(
        plan.images[0].endpoint,
        mirror.host(),
        "the mirror comes first"
    );
    let report = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.blobs_fetched, 2);
    assert_eq!(mirror.count("GET", "/v2/app/one/blobs/"), 2);
    assert_eq!(location.count("GET", "/v2/app/one/blobs/"), 2);
    assert!(cache.has_blob(&images[0].1.layer).is_some());

    // A mirror that keeps answering 503 for manifests: after --retry-for, the location.
    let failing = registry(
        images,
        Script {
            manifests_fail: true,
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &location.host(), Some(&failing.host()));
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let plan = pull::plan(&cache, &s, &opts, &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    assert_eq!(plan.images[0].endpoint, location.host());
    assert!(
        failing.count("HEAD", "/v2/app/one/manifests/v1") > 1,
        "retried"
    );
}

#[test]
fn bytes_that_do_not_match_are_fetched_once_more_then_refused_and_the_rest_goes_on() {
    let good = image("good");
    let bad = image("bad");
    let bad_layer = bad.layer;
    let images = Arc::new(vec![("good".to_owned(), good), ("bad".to_owned(), bad)]);
    let server = registry(
        images,
        Script {
            corrupt: vec![bad_layer.to_string()],
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &server.host(), None);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let seen = Mutex::new(Vec::new());
    let events = |e: Event<'_>| record(&seen, e);
    let plan = pull::plan(&cache, &set(tmp.path(), &["good", "bad"]), &opts, &events).unwrap();
    let report = pull::fetch(&cache, &plan, &opts, &events).unwrap();
    assert_eq!(report.pulled.len(), 1);
    assert_eq!(
        plan.images[report.pulled[0]].source,
        "registry.example.com/app/good:v1"
    );
    let f = &report.failed[..];
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].reference, "registry.example.com/app/bad:v1");
    assert_eq!(f[0].registry, server.host());
    // The reference, the blob and the registry are named.
    assert!(
        f[0].error.starts_with(&format!(
            "blob {bad_layer}: the bytes {} served for {bad_layer} are wrong: they hash to sha256:",
            server.host()
        )),
        "{}",
        f[0].error
    );
    assert!(f[0].error.contains("twice"), "{}", f[0].error);
    // Once more from zero, then no more.
    assert_eq!(
        server.count("GET", &format!("/v2/app/bad/blobs/{bad_layer}")),
        2
    );
    assert!(cache.has_blob(&bad_layer).is_none());
    let l = lines(&seen);
    assert!(
        l.contains(&format!(
            "retry blob {bad_layer} of registry.example.com/app/bad:v1"
        )),
        "{l:?}"
    );
    assert!(
        l.contains(&"failed registry.example.com/app/bad:v1".to_owned()),
        "{l:?}"
    );
    let names: Vec<String> = cache
        .images()
        .unwrap()
        .into_iter()
        .map(|i| i.ref_name)
        .collect();
    assert_eq!(names, ["app/good:v1"]);
}

#[test]
fn a_download_that_breaks_off_is_retried_and_resumed() {
    let img = image("cut");
    let layer = img.layer;
    let images = Arc::new(vec![("cut".to_owned(), img)]);
    let server = registry(
        images,
        Script {
            cut_once: Some((layer.to_string(), 15_000, Arc::new(AtomicBool::new(false)))),
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &server.host(), None);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let seen = Mutex::new(Vec::new());
    let events = |e: Event<'_>| record(&seen, e);
    let plan = pull::plan(&cache, &set(tmp.path(), &["cut"]), &opts, &events).unwrap();
    let report = pull::fetch(&cache, &plan, &opts, &events).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.pulled.len(), 1);
    assert!(cache.has_blob(&layer).is_some());
    let l = lines(&seen);
    assert!(
        l.contains(&format!(
            "retry blob {layer} of registry.example.com/app/cut:v1"
        )),
        "{l:?}"
    );
    // The second request takes up where the first broke off.
    let gets: Vec<MockRequest> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path().ends_with(&layer.to_string()))
        .collect();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].header("range"), None);
    assert_eq!(gets[1].header("range"), Some("bytes=15000-"));
    // Only the rest came over the network the second time.
    assert_eq!(report.bytes_fetched, plan.bytes_total - 15_000);
}

#[test]
fn a_fetch_that_would_not_fit_is_refused_before_the_first_byte() {
    let img = image_of("big", 1 << 20);
    let images = Arc::new(vec![("big".to_owned(), img)]);
    let server = registry(images, Script::default());
    let tmp = tempdir();
    let small = test_support::tmpfs::Tmpfs::require("256k");
    let opts = options(tmp.path(), &server.host(), None);
    let cache = Cache::open(&small.path.join("cache")).unwrap();
    let plan = pull::plan(&cache, &set(tmp.path(), &["big"]), &opts, &|_| {}).unwrap();
    assert!(plan.cache_free < plan.bytes_to_fetch, "{plan:?}");
    let e = pull::fetch(&cache, &plan, &opts, &|_| {}).unwrap_err();
    assert!(matches!(e, pull::PullError::NoSpace { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("needs 1.0 MiB ({} bytes)", plan.bytes_to_fetch))
            && text.contains("or give another --cache"),
        "{text}"
    );
    assert_eq!(server.count("GET", "/v2/app/big/blobs/"), 0);
    drop(cache);
}

#[test]
fn a_registry_without_head_is_asked_with_one_get() {
    let images = Arc::new(vec![("one".to_owned(), image("one"))]);
    let server = registry(
        images,
        Script {
            no_head: true,
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &server.host(), None);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let plan = pull::plan(&cache, &set(tmp.path(), &["one"]), &opts, &|_| {}).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    assert_eq!(server.count("GET", "/v2/app/one/manifests/v1"), 1);
    assert!(cache.has_blob(&plan.images[0].digest).is_some());
}

#[test]
fn a_schema_1_image_is_refused_by_name() {
    let images = Arc::new(vec![("old".to_owned(), image("old"))]);
    let server = registry(
        images,
        Script {
            schema1: true,
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &server.host(), None);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let plan = pull::plan(&cache, &set(tmp.path(), &["old"]), &opts, &|_| {}).unwrap();
    assert!(plan.images.is_empty());
    let f = &plan.failed[0];
    assert_eq!(f.registry, server.host());
    assert!(
        f.error.starts_with(
            "registry.example.com/app/old:v1 is a Docker schema 1 manifest, which ferry does not carry"
        ) && f.error.contains("skopeo copy --format v2s2"),
        "{}",
        f.error
    );
    // Refused on the HEAD's media type: nothing was fetched.
    assert_eq!(server.count("GET", "/v2/app/old/manifests/"), 0);
}

/// A manifest and a blob request the registry client retries itself (a 503 each): each
/// retry is a `retry` event naming the image (or the blob of it), told while the request
/// waits, so it comes before the image is resolved or pulled.
#[test]
fn the_clients_own_retries_are_retry_events_naming_what_was_fetched() {
    let img = image("one");
    let layer = img.layer;
    let images = Arc::new(vec![("one".to_owned(), img)]);
    let fail_once = Arc::new(Mutex::new(vec![
        "/v2/app/one/manifests/v1".to_owned(),
        format!("/v2/app/one/blobs/{layer}"),
    ]));
    let server = registry(
        images,
        Script {
            fail_once: fail_once.clone(),
            ..Script::default()
        },
    );
    let tmp = tempdir();
    let opts = options(tmp.path(), &server.host(), None);
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let seen = Mutex::new(Vec::new());
    let events = |e: Event<'_>| match e {
        Event::Retry {
            what,
            attempt,
            error,
            ..
        } => seen
            .lock()
            .unwrap()
            .push(format!("retry {what} (attempt {attempt}): {error}")),
        e => record(&seen, e),
    };
    let plan = pull::plan(&cache, &set(tmp.path(), &["one"]), &opts, &events).unwrap();
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let report = pull::fetch(&cache, &plan, &opts, &events).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(
        fail_once.lock().unwrap().is_empty(),
        "both 503s were served"
    );
    let l = lines(&seen);
    let at = |prefix: &str| {
        l.iter()
            .position(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {l:?}"))
    };
    let manifest_retry = at("retry registry.example.com/app/one:v1 (attempt 2): ");
    assert!(l[manifest_retry].contains("503"), "{l:?}");
    assert!(
        l[manifest_retry].contains("/v2/app/one/manifests/v1"),
        "{l:?}"
    );
    assert!(manifest_retry < at("resolved registry.example.com/app/one:v1"));
    let blob_retry = at(&format!(
        "retry blob {layer} of registry.example.com/app/one:v1 (attempt 2): "
    ));
    assert!(l[blob_retry].contains("503"), "{l:?}");
    assert!(blob_retry < at("pulled registry.example.com/app/one:v1"));
    assert_eq!(
        l.iter().filter(|line| line.starts_with("retry ")).count(),
        2,
        "{l:?}"
    );
}
