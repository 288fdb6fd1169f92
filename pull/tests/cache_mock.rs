//! The cache's downloads through the registry client against a scripted server, for what
//! distribution will not do on demand: a body cut short, then resumed with `Range`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pull::cache::DownloadError;
use pull::Cache;
use registry_client::{Client, Config, Digest, RetryPolicy, Timeouts};
use test_support::mock::{MockServer, Reply};

fn client(server: &MockServer) -> Client {
    let mut c = Config::new(server.host());
    c.insecure = true;
    c.proxy_from_env = false;
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(10),
    };
    c.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_secs(10),
    };
    Client::new(c).unwrap()
}

#[test]
fn a_body_cut_short_is_kept_and_resumed_with_range() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::of(&data);
    let served = data.clone();
    let gets = AtomicUsize::new(0);
    let server = MockServer::start(move |req| {
        match gets.fetch_add(1, Ordering::SeqCst) {
            // The whole length announced, 40000 bytes sent, then the connection closes.
            0 => Reply::status(200)
                .header("content-length", "100000")
                .header("connection", "close")
                .body(&served[..40_000]),
            _ => {
                assert_eq!(req.header("range"), Some("bytes=40000-"));
                Reply::status(206)
                    .header("content-range", "bytes 40000-99999/100000")
                    .body(&served[40_000..])
            }
        }
    });
    let client = client(&server);
    let t = tempfile::tempdir().unwrap();
    let cache = Cache::open(t.path()).unwrap();
    let never = AtomicBool::new(false);
    let mut fetch = |offset| client.fetch_blob("ns/app", &digest, offset);
    let e = cache
        .download(&digest, 100_000, &mut fetch, &|_| {}, &never)
        .unwrap_err();
    assert!(
        matches!(
            e,
            DownloadError::BrokenOff {
                received: 40_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(cache.partial_len(&digest), 40_000);
    let got = cache
        .download(&digest, 100_000, &mut fetch, &|_| {}, &never)
        .unwrap();
    assert_eq!((got.resumed_from, got.fetched), (40_000, 60_000));
    assert_eq!(std::fs::read(cache.blob_path(&digest)).unwrap(), data);
    assert_eq!(server.requests().len(), 2);
}
