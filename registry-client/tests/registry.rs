//! Against the real CNCF distribution 2.8.2 (`docker-registry`), read back with skopeo.

mod support;

use std::io::Read;
use std::process::Command;

use registry_client::{Client, Credentials, Digest, MountOutcome, RegistryError, UploadPolicy};
use support::*;

fn skopeo_inspect(registry: &Registry, image: &str, raw: bool) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect").arg("--tls-verify=false");
    if raw {
        cmd.arg("--raw");
    }
    let out = cmd
        .arg(format!("docker://{}/{image}", registry.host()))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Pushes one image (config + layers) into `repo` and tags it; returns the manifest.
fn push_image(client: &Client, repo: &str, tag: &str, layers: &[&[u8]]) -> (Vec<u8>, Digest) {
    let config = image_config();
    for blob in layers.iter().copied().chain([config.as_slice()]) {
        client
            .upload_blob(repo, &sha256(blob), blob.len() as u64, reader_of(blob))
            .unwrap();
    }
    let manifest = image_manifest(&config, layers);
    let digest = client
        .put_manifest(repo, tag, OCI_MANIFEST, &manifest)
        .unwrap();
    (manifest, digest)
}

#[test]
fn push_mount_and_read_back_with_skopeo() {
    let registry = Registry::start(RegistryOptions::default());
    let client = registry.client();
    client.ping().unwrap();
    assert_eq!(client.base_url(), format!("http://{}", registry.host()));

    // 3 MiB goes out with Expect: 100-continue, which distribution honours.
    let big = bytes(1, 3 * 1024 * 1024 + 17);
    let small = bytes(2, 1000);
    let config = image_config();
    let (big_d, small_d) = (sha256(&big), sha256(&small));
    assert_eq!(client.blob_exists("ferry/app", &big_d).unwrap(), None);
    let report = client
        .upload_blob("ferry/app", &big_d, big.len() as u64, reader_of(&big))
        .unwrap();
    assert_eq!((report.restarts, report.chunked), (0, false));
    client
        .upload_blob("ferry/app", &small_d, small.len() as u64, reader_of(&small))
        .unwrap();
    client
        .upload_blob(
            "ferry/app",
            &sha256(&config),
            config.len() as u64,
            reader_of(&config),
        )
        .unwrap();
    assert_eq!(
        client.blob_exists("ferry/app", &big_d).unwrap(),
        Some(big.len() as u64)
    );
    // An empty blob is a valid blob.
    client
        .upload_blob("ferry/app", &sha256(b""), 0, reader_of(b""))
        .unwrap();
    assert_eq!(
        client.blob_exists("ferry/app", &sha256(b"")).unwrap(),
        Some(0)
    );

    // Cross-repository mounts: 201 for a blob the source has; 202 (cancelled) otherwise.
    assert_eq!(
        client
            .mount_blob("ferry/other", &big_d, "ferry/app")
            .unwrap(),
        MountOutcome::Mounted
    );
    assert_eq!(
        client.blob_exists("ferry/other", &big_d).unwrap(),
        Some(big.len() as u64)
    );
    let absent = sha256(b"never uploaded");
    assert_eq!(
        client
            .mount_blob("ferry/other", &absent, "ferry/app")
            .unwrap(),
        MountOutcome::NotMounted
    );
    assert_eq!(client.blob_exists("ferry/other", &absent).unwrap(), None);

    // Manifest by tag, then an index over it.
    let manifest = image_manifest(&config, &[&big, &small]);
    let digest = client
        .put_manifest("ferry/app", "v1", OCI_MANIFEST, &manifest)
        .unwrap();
    assert_eq!(digest, sha256(&manifest));
    let info = client.manifest_exists("ferry/app", "v1").unwrap().unwrap();
    assert_eq!(info.digest, digest);
    assert_eq!(info.media_type, OCI_MANIFEST);
    assert_eq!(info.size, manifest.len() as u64);
    let by_digest = client
        .manifest_exists("ferry/app", &digest.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(by_digest, info);
    let fetched = client
        .get_manifest("ferry/app", &digest.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(fetched.bytes, manifest);
    assert_eq!(client.manifest_exists("ferry/app", "nope").unwrap(), None);
    assert_eq!(client.get_manifest("ferry/nothing", "v1").unwrap(), None);

    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        manifest.len()
    );
    let index_digest = client
        .put_manifest("ferry/app", "multi", OCI_INDEX, index.as_bytes())
        .unwrap();
    // By digest too: distribution verifies it.
    client
        .put_manifest(
            "ferry/app",
            &index_digest.to_string(),
            OCI_INDEX,
            index.as_bytes(),
        )
        .unwrap();

    // skopeo reads back exactly what was pushed.
    assert_eq!(skopeo_inspect(&registry, "ferry/app:v1", true), manifest);
    let inspected: serde_json::Value =
        serde_json::from_slice(&skopeo_inspect(&registry, "ferry/app:v1", false)).unwrap();
    assert_eq!(inspected["Digest"], digest.to_string());
    assert_eq!(
        skopeo_inspect(&registry, "ferry/app:multi", true),
        index.as_bytes()
    );
}

#[test]
fn registry_errors_are_shown_decoded_with_the_url() {
    let registry = Registry::start(RegistryOptions::default());
    let client = registry.client();
    let config = image_config();
    let layer = bytes(3, 500);
    client
        .upload_blob(
            "ferry/app",
            &sha256(&config),
            config.len() as u64,
            reader_of(&config),
        )
        .unwrap();
    // The layer is missing: MANIFEST_BLOB_UNKNOWN.
    let manifest = image_manifest(&config, &[&layer]);
    let e = client
        .put_manifest("ferry/app", "v1", OCI_MANIFEST, &manifest)
        .unwrap_err();
    assert!(e.has_code("MANIFEST_BLOB_UNKNOWN"), "{e}");
    assert_eq!(e.status(), Some(400));
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "PUT http://{}/v2/ferry/app/manifests/v1",
            registry.host()
        )),
        "{text}"
    );
    assert!(
        text.contains("MANIFEST_BLOB_UNKNOWN: blob unknown to registry"),
        "{text}"
    );

    // Content-Type that is not the body's mediaType.
    client
        .upload_blob(
            "ferry/app",
            &sha256(&layer),
            layer.len() as u64,
            reader_of(&layer),
        )
        .unwrap();
    let e = client
        .put_manifest("ferry/app", "v1", OCI_INDEX, &manifest)
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
}

#[test]
fn wrong_bytes_short_readers_and_failing_readers() {
    let registry = Registry::start(RegistryOptions::default());
    let client = registry.client();
    let data = bytes(4, 4096);
    let claimed = sha256(b"something else");

    // The registry computes the digest: DIGEST_INVALID, not retried, and no blob.
    let e = client
        .upload_blob("ferry/app", &claimed, data.len() as u64, reader_of(&data))
        .unwrap_err();
    assert!(e.has_code("DIGEST_INVALID"), "{e}");
    assert_eq!(client.blob_exists("ferry/app", &claimed).unwrap(), None);

    // A reader shorter than the size: our fault, said so, not retried.
    let digest = sha256(&data);
    let e = client
        .upload_blob(
            "ferry/app",
            &digest,
            data.len() as u64 + 10,
            reader_of(&data),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::BlobLength {
                expected: 4106,
                actual: 4096,
                ..
            }
        ),
        "{e}"
    );

    // A reader that fails (a pulled disk): reported as ours, with its cause.
    let mut opened = 0;
    let e = client
        .upload_blob("ferry/app", &digest, data.len() as u64, || {
            opened += 1;
            Ok(std::io::Cursor::new(data[..100].to_vec()).chain(FailingReader))
        })
        .unwrap_err();
    assert!(matches!(e, RegistryError::BlobRead { .. }), "{e}");
    assert!(e.to_string().contains("medium removed"), "{e}");
    assert_eq!(opened, 1, "a local read failure is not retried");
    assert_eq!(client.blob_exists("ferry/app", &digest).unwrap(), None);

    // And when the reader cannot even be opened.
    let e = client
        .upload_blob("ferry/app", &digest, data.len() as u64, || {
            Err::<std::io::Empty, _>(std::io::Error::other("no such volume"))
        })
        .unwrap_err();
    assert!(e.to_string().contains("no such volume"), "{e}");
}

struct FailingReader;
impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("medium removed"))
    }
}

#[test]
fn chunked_uploads_against_distribution() {
    let registry = Registry::start(RegistryOptions::default());
    let mut config = registry.config();
    config.upload = UploadPolicy {
        chunk_size: 100_000,
        max_monolithic: Some(0),
        ..UploadPolicy::default()
    };
    let client = Client::new(config).unwrap();
    for (seed, len) in [(5u64, 350_000usize), (6, 100_000), (7, 1), (8, 0)] {
        let data = bytes(seed, len);
        let d = sha256(&data);
        let report = client
            .upload_blob("ferry/chunks", &d, len as u64, reader_of(&data))
            .unwrap();
        assert_eq!(report.chunked, len > 0, "{len}");
        assert_eq!(report.restarts, 0);
        assert_eq!(
            client.blob_exists("ferry/chunks", &d).unwrap(),
            Some(len as u64)
        );
    }
    let (manifest, _) = push_image(&client, "ferry/chunks", "v1", &[&bytes(5, 350_000)]);
    assert_eq!(skopeo_inspect(&registry, "ferry/chunks:v1", true), manifest);
}

#[test]
fn many_workers_share_one_client() {
    let registry = Registry::htpasswd(USER, PASSWORD);
    let mut config = registry.config();
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    let blobs: Vec<Vec<u8>> = (0..24)
        .map(|i| bytes(100 + i, 20_000 + i as usize))
        .collect();
    std::thread::scope(|s| {
        for worker in 0..6 {
            let (client, blobs) = (&client, &blobs);
            s.spawn(move || {
                for blob in blobs.iter().skip(worker).step_by(6) {
                    client
                        .upload_blob(
                            "ferry/par",
                            &sha256(blob),
                            blob.len() as u64,
                            reader_of(blob),
                        )
                        .unwrap();
                }
            });
        }
    });
    for blob in &blobs {
        assert_eq!(
            client.blob_exists("ferry/par", &sha256(blob)).unwrap(),
            Some(blob.len() as u64)
        );
    }
}

#[test]
fn basic_auth_right_wrong_and_missing_credentials() {
    let registry = Registry::htpasswd(USER, PASSWORD);

    // Right password, from an auth file the way podman writes it.
    let auth = registry.dir.path().join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            registry.host(),
            base64_of(&format!("{USER}:{PASSWORD}"))
        ),
    )
    .unwrap();
    let creds =
        Credentials::from_auth_files(&format!("{}/ferry/app", registry.host()), Some(&auth))
            .unwrap()
            .expect("credentials for the registry");
    let mut config = registry.config();
    config.credentials = Some(creds);
    let client = Client::new(config).unwrap();
    client.ping().unwrap();
    let (manifest, _) = push_image(&client, "ferry/app", "v1", &[&bytes(9, 2000)]);
    assert_eq!(
        client
            .get_manifest("ferry/app", "v1")
            .unwrap()
            .unwrap()
            .bytes,
        manifest
    );

    // Wrong password: a clear 401 naming the user, the file and the URL, never the password.
    let wrong_password = "not-the-Pa55word";
    let mut config = registry.config();
    config.credentials = Some(Credentials::basic(USER, wrong_password));
    let client = Client::new(config).unwrap();
    let e = client.blob_exists("ferry/app", &sha256(b"x")).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("rejected user \"alice\""), "{text}");
    assert!(
        text.contains(&format!(
            "HEAD http://{}/v2/ferry/app/blobs/",
            registry.host()
        )),
        "{text}"
    );
    let e = client
        .upload_blob("ferry/app", &sha256(b"x"), 1, reader_of(b"x"))
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    let shown = format!("{e} {e:?} {client:?}");
    assert!(shown.contains("UNAUTHORIZED"), "{shown}");
    assert!(!shown.contains(wrong_password), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");

    // No credentials at all.
    let client = registry.client();
    let e = client.ping().unwrap_err();
    assert!(e.to_string().contains("no credentials were given"), "{e}");
}

#[test]
fn tls_with_the_test_ca_and_without_it() {
    let registry = Registry::tls();
    let client = registry.client();
    assert_eq!(client.base_url(), format!("https://{}", registry.host()));
    client.ping().unwrap();
    push_image(&client, "ferry/tls", "v1", &[&bytes(10, 3000)]);

    // Without the CA: refused, with the URL and what to do.
    let mut config = registry.config();
    config.ca_cert = None;
    let untrusting = Client::new(config.clone()).unwrap();
    let e = untrusting.ping().unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("https://{}/v2/", registry.host())),
        "{text}"
    );
    assert!(text.contains("not signed by a trusted CA"), "{text}");

    // Insecure mode with an explicit https:// skips verification.
    config.insecure = true;
    config.registry = format!("https://{}", registry.host());
    let insecure = Client::new(config).unwrap();
    assert_eq!(
        insecure
            .manifest_exists("ferry/tls", "v1")
            .unwrap()
            .unwrap()
            .media_type,
        OCI_MANIFEST
    );

    // A CA file that is not one.
    let mut config = registry.config();
    let bogus = registry.dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    config.ca_cert = Some(bogus);
    let e = Client::new(config).unwrap_err();
    assert!(matches!(e, RegistryError::CaCert { .. }), "{e}");
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn blobs_download_whole_resumed_with_range_and_absent() {
    let registry = Registry::start(RegistryOptions::default());
    let client = registry.client();
    // Large enough that distribution streams it in many reads.
    let blob = bytes(7, 2 * 1024 * 1024 + 5);
    let digest = sha256(&blob);
    client
        .upload_blob("ferry/dl", &digest, blob.len() as u64, reader_of(&blob))
        .unwrap();

    let read_all = |mut s: registry_client::BlobStream| {
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    };
    let whole = client.fetch_blob("ferry/dl", &digest, 0).unwrap().unwrap();
    assert_eq!((whole.start, whole.length), (0, Some(blob.len() as u64)));
    assert_eq!(read_all(whole), blob);

    // distribution 2.8 serves Range on blob GETs (206 from the asked offset).
    let offset = 1_000_001u64;
    let rest = client
        .fetch_blob("ferry/dl", &digest, offset)
        .unwrap()
        .unwrap();
    assert_eq!(
        (rest.start, rest.length),
        (offset, Some(blob.len() as u64 - offset))
    );
    assert_eq!(read_all(rest), &blob[offset as usize..]);
    // The last byte alone.
    let last = blob.len() as u64 - 1;
    let tail = client
        .fetch_blob("ferry/dl", &digest, last)
        .unwrap()
        .unwrap();
    assert_eq!((tail.start, tail.length), (last, Some(1)));
    assert_eq!(read_all(tail), &blob[last as usize..]);

    // A range past the end is refused as such (416), for the caller to start over.
    let e = client
        .fetch_blob("ferry/dl", &digest, blob.len() as u64 + 10)
        .unwrap_err();
    assert!(matches!(e, RegistryError::RangeNotResumable { .. }), "{e}");

    // Absent blob, and a blob of another repository: None.
    let absent = sha256(b"never uploaded");
    assert!(client.fetch_blob("ferry/dl", &absent, 0).unwrap().is_none());
    assert!(client
        .fetch_blob("ferry/dl-other", &digest, 0)
        .unwrap()
        .is_none());
}

/// distribution lists a repository's tags whole, and answers 404 for one it does not know.
#[test]
fn tags_are_listed_and_an_unknown_repository_is_none() {
    let registry = Registry::start(RegistryOptions::default());
    let client = registry.client();
    push_image(&client, "ferry/listed", "v1", &[b"one"]);
    push_image(&client, "ferry/listed", "v2", &[b"two"]);
    let mut tags = client.list_tags("ferry/listed").unwrap().expect("known");
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(client.list_tags("ferry/never-pushed").unwrap(), None);
}
