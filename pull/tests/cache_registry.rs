//! The cache's downloads through the registry client, against the real CNCF distribution
//! 2.8.2 (`docker-registry`): a whole blob, a partial resumed with `Range`, wrong kept bytes.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use pull::cache::{DownloadError, Downloaded};
use pull::Cache;
use registry_client::{Client, Config, Digest, RetryPolicy};
use test_support::registry::Registry;

fn client(registry: &Registry) -> Client {
    let mut c = Config::new(registry.host());
    c.insecure = true;
    c.proxy_from_env = false;
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(10),
    };
    Client::new(c).unwrap()
}

fn blob(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn downloads_from_distribution_resume_with_range_and_are_checked_whole() {
    let registry = Registry::plain();
    let client = client(&registry);
    let data = blob(3 * 1024 * 1024 + 11);
    let size = data.len() as u64;
    let digest = Digest::of(&data);
    client
        .upload_blob("ferry/pull", &digest, size, || {
            Ok(std::io::Cursor::new(data.clone()))
        })
        .unwrap();
    let t = tempfile::tempdir().unwrap();
    let cache = Cache::open(t.path()).unwrap();
    let never = AtomicBool::new(false);
    let mut asked = Vec::new();
    let mut fetch = |offset| {
        asked.push(offset);
        client.fetch_blob("ferry/pull", &digest, offset)
    };

    // Interrupted after 1 MiB and a bit: the next run asks for the rest only.
    let kept = 1024 * 1024 + 3;
    std::fs::write(cache.partial_path(&digest), &data[..kept]).unwrap();
    let got = cache
        .download(&digest, size, &mut fetch, &|_| {}, &never)
        .unwrap();
    assert_eq!(
        got,
        Downloaded {
            fetched: size - kept as u64,
            resumed_from: kept as u64
        }
    );
    assert_eq!(std::fs::read(cache.blob_path(&digest)).unwrap(), data);
    assert_eq!(cache.partial_len(&digest), 0);

    // Kept bytes that are wrong: the whole hash refuses the blob and drops the partial.
    std::fs::remove_file(cache.blob_path(&digest)).unwrap();
    let mut bad = data[..kept].to_vec();
    bad[5] ^= 0xff;
    std::fs::write(cache.partial_path(&digest), &bad).unwrap();
    let e = cache
        .download(&digest, size, &mut fetch, &|_| {}, &never)
        .unwrap_err();
    assert!(matches!(e, DownloadError::Mismatch { .. }), "{e}");
    assert_eq!(cache.partial_len(&digest), 0);
    assert_eq!(cache.has_blob(&digest), None);

    // From nothing: whole, then present and never asked for again.
    let got = cache
        .download(&digest, size, &mut fetch, &|_| {}, &never)
        .unwrap();
    assert_eq!(got.fetched, size);
    cache
        .download(&digest, size, &mut fetch, &|_| {}, &never)
        .unwrap();
    assert_eq!(asked, [kept as u64, kept as u64, 0]);

    // A blob the registry does not have.
    let absent = Digest::of(b"absent");
    let mut fetch_absent = |offset| client.fetch_blob("ferry/pull", &absent, offset);
    let e = cache
        .download(&absent, 6, &mut fetch_absent, &|_| {}, &never)
        .unwrap_err();
    assert!(matches!(e, DownloadError::NotFound(_)), "{e}");
}
