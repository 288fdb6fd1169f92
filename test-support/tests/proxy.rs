//! The kit's forwarding proxy ([`test_support::proxy::Proxy`]) in front of a real
//! docker-registry: what passes through is what the registry serves (pushes and pulls by
//! skopeo, ranges), and each fault does what the pull tests rely on it doing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use test_support::cmd::{assert_ok, run, tempdir, OutputExt};
use test_support::proxy::{BlobMatch, Proxy, ProxyOptions, TOKEN_SERVICE};
use test_support::registry::{b64, sha256_hex, skopeo_digest, skopeo_raw, Registry};

/// The multi-arch docker manifest list of the fixtures (fixtures/README.md).
const FLUENTD: &str = "openshift4/ose-logging-fluentd:v4.6";
const FLUENTD_DIGEST: &str =
    "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e";

fn fixture_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/skopeo-dir/openshift4")
        .join(name)
}

/// `skopeo copy --all --preserve-digests dir:fixtures/… docker://HOST/openshift4/…`.
fn push_fluentd(host: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "copy".to_owned(),
        "--all".to_owned(),
        "--preserve-digests".to_owned(),
        "--dest-tls-verify=false".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(format!(
        "dir:{}",
        fixture_dir("ose-logging-fluentd:v4.6").display()
    ));
    args.push(format!("docker://{host}/{FLUENTD}"));
    run("skopeo", args)
}

/// A plain HTTP/1.1 exchange on a connection of its own: status, headers and as much of
/// the body as came, plus the error that ended it early, if any.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    error: Option<std::io::Error>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn exchange(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the proxy");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
    if (!body.is_empty() || method == "PUT") && !chunked {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let mut error = None;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer head from {method} {path} (error {error:?})"));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
        error,
    }
}

/// A blob of `n` bytes of pseudo-random data uploaded through the proxy (POST, then a
/// monolithic PUT to the `Location` it answered); its digest.
fn upload_blob(proxy: &Proxy, repo: &str, n: usize) -> (String, Vec<u8>) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let digest = sha256_hex(&data);
    let post = exchange(
        proxy.port(),
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(
        post.status,
        202,
        "POST uploads: {}",
        String::from_utf8_lossy(&post.body)
    );
    let location = post.header("location").expect("a Location").to_owned();
    assert!(
        location.starts_with(&proxy.base()),
        "the upload Location points back at the proxy, not at {}: {location}",
        proxy.upstream()
    );
    let path = location.strip_prefix(&proxy.base()).expect("proxy URL");
    let sep = if path.contains('?') { '&' } else { '?' };
    let put = exchange(
        proxy.port(),
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        &data,
    );
    assert_eq!(
        put.status,
        201,
        "PUT blob: {}",
        String::from_utf8_lossy(&put.body)
    );
    (digest, data)
}

#[test]
fn skopeo_pushes_and_pulls_through_it_and_uploads_come_back_through_it() {
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    assert_ok(
        &push_fluentd(&proxy.host(), &[]),
        "skopeo copy through the proxy",
    );

    // The registry holds the list and both children, as pushed.
    let (tagged, _) = reg
        .tagged_images_and_dangling()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        tagged.get(FLUENTD).map(String::as_str),
        Some(FLUENTD_DIGEST)
    );
    // distribution answers POST with an absolute Location naming the registry itself:
    // the PUTs came through the proxy only if it rewrote them.
    assert!(proxy.count("POST", "/v2/openshift4/ose-logging-fluentd/blobs/uploads/") > 0);
    assert!(
        proxy.count("PUT", "/v2/openshift4/ose-logging-fluentd/blobs/uploads/") > 0,
        "{:#?}",
        proxy.requests()
    );
    assert!(proxy.count("PUT", "/v2/openshift4/ose-logging-fluentd/manifests/") >= 3);

    // Read back through the proxy: the same digest, every blob through it.
    assert_eq!(
        skopeo_digest(
            &format!("{}/{FLUENTD}", proxy.host()),
            &["--tls-verify=false"]
        ),
        FLUENTD_DIGEST
    );
    let tmp = tempdir();
    let out = run(
        "skopeo",
        [
            "copy".to_owned(),
            "--all".to_owned(),
            "--preserve-digests".to_owned(),
            "--src-tls-verify=false".to_owned(),
            format!("docker://{}/{FLUENTD}", proxy.host()),
            format!("dir:{}", tmp.path().join("copy").display()),
        ],
    );
    assert_ok(&out, "skopeo copy from the proxy");
    let fixture = fixture_dir("ose-logging-fluentd:v4.6");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let name = entry.unwrap().file_name();
        assert_eq!(
            std::fs::read(tmp.path().join("copy").join(&name)).unwrap(),
            std::fs::read(fixture.join(&name)).unwrap(),
            "{name:?} as copied through the proxy"
        );
    }
    let gets = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.blob_digest().is_some() && r.status == Some(200))
        .count();
    assert!(gets >= 5, "blob GETs seen: {gets}");
}

#[test]
fn ranges_pass_through_and_every_request_is_counted() {
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    let (digest, data) = upload_blob(&proxy, "ranges/blob", 100_000);
    let path = format!("/v2/ranges/blob/blobs/{digest}");

    let whole = exchange(proxy.port(), "GET", &path, &[], b"");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, data);
    let part = exchange(
        proxy.port(),
        "GET",
        &path,
        &[("Range", "bytes=40000-")],
        b"",
    );
    assert_eq!(part.status, 206, "{:?}", part.headers);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 40000-99999/100000")
    );
    assert_eq!(part.body, &data[40000..]);
    let head = exchange(proxy.port(), "HEAD", &path, &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100000"));
    assert!(head.body.is_empty());

    assert_eq!(proxy.count("GET", &path), 2);
    assert_eq!(proxy.count("HEAD", &path), 1);
    let gets = proxy.blob_gets(&digest);
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].range(), None);
    assert_eq!(gets[1].range(), Some("bytes=40000-"));
    assert_eq!((gets[0].range_start(), gets[1].range_start()), (0, 40000));
    assert_eq!((gets[0].status, gets[0].body_bytes), (Some(200), 100_000));
    assert_eq!((gets[1].status, gets[1].body_bytes), (Some(206), 60_000));
    assert!(proxy.bytes_sent() >= 160_000);
}

#[test]
fn a_chunked_upload_passes_through_chunked() {
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    let post = exchange(
        proxy.port(),
        "POST",
        "/v2/chunked/blob/blobs/uploads/",
        &[],
        b"",
    );
    assert_eq!(post.status, 202);
    let location = post.header("location").expect("a Location").to_owned();
    let path = location
        .strip_prefix(&proxy.base())
        .expect("proxy URL")
        .to_owned();
    // Two chunks, as a client streaming a body of unknown length sends it.
    let patch = exchange(
        proxy.port(),
        "PATCH",
        &path,
        &[("Transfer-Encoding", "chunked")],
        b"6\r\nhello \r\n5;ext=1\r\nworld\r\n0\r\n\r\n",
    );
    assert_eq!(
        patch.status,
        202,
        "{}",
        String::from_utf8_lossy(&patch.body)
    );
    assert_eq!(patch.header("range"), Some("0-10"), "11 bytes arrived");
    let digest = sha256_hex(b"hello world");
    let next = patch.header("location").expect("a Location");
    let next = next.strip_prefix(&proxy.base()).expect("proxy URL");
    let sep = if next.contains('?') { '&' } else { '?' };
    let put = exchange(
        proxy.port(),
        "PUT",
        &format!("{next}{sep}digest={digest}"),
        &[],
        b"",
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert!(reg.blob_exists("chunked/blob", &digest));
}

#[test]
fn a_flipped_byte_changes_exactly_one_byte_where_it_says() {
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    let (digest, data) = upload_blob(&proxy, "flip/blob", 10_000);
    let path = format!("/v2/flip/blob/blobs/{digest}");

    // The next GET only: a fault on the wire.
    proxy.flip_byte(BlobMatch::NextGet);
    let bad = exchange(proxy.port(), "GET", &path, &[], b"");
    assert_eq!(bad.body.len(), data.len());
    let diff: Vec<usize> = (0..data.len())
        .filter(|&i| bad.body[i] != data[i])
        .collect();
    assert_eq!(diff, vec![5000], "one byte flipped, in the middle");
    assert_ne!(sha256_hex(&bad.body), digest);
    let good = exchange(proxy.port(), "GET", &path, &[], b"");
    assert_eq!(good.body, data, "the GET after it is whole");

    // By digest: every GET, ranges included, carries the same bad byte at offset 5000.
    proxy.flip_byte(BlobMatch::Digest(digest.clone()));
    for _ in 0..2 {
        let bad = exchange(proxy.port(), "GET", &path, &[], b"");
        assert_eq!(bad.body[5000], data[5000] ^ 1);
        assert_eq!(bad.body[..5000], data[..5000]);
        assert_eq!(bad.body[5001..], data[5001..]);
    }
    let tail = exchange(proxy.port(), "GET", &path, &[("Range", "bytes=4000-")], b"");
    assert_eq!(tail.status, 206);
    assert_eq!(
        tail.body[1000],
        data[5000] ^ 1,
        "the same blob byte in a range"
    );
    let after = exchange(proxy.port(), "GET", &path, &[("Range", "bytes=6000-")], b"");
    assert_eq!(after.body, &data[6000..], "a range past it is whole");
    let flipped: Vec<bool> = proxy.blob_gets(&digest).iter().map(|r| r.flipped).collect();
    assert_eq!(flipped, vec![true, false, true, true, true, false]);

    proxy.clear_faults();
    assert_eq!(exchange(proxy.port(), "GET", &path, &[], b"").body, data);
}

#[test]
fn a_cut_resets_after_n_bytes_and_ranges_resume_it() {
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    let (digest, data) = upload_blob(&proxy, "cut/blob", 300_000);
    let path = format!("/v2/cut/blob/blobs/{digest}");

    proxy.cut_blob(BlobMatch::NextGet, 70_000);
    let cut = exchange(proxy.port(), "GET", &path, &[], b"");
    assert_eq!(cut.status, 200);
    assert_eq!(
        cut.header("content-length"),
        Some("300000"),
        "the head promised it all"
    );
    assert!(cut.body.len() <= 70_000, "{} bytes came", cut.body.len());
    assert_eq!(
        cut.body,
        &data[..cut.body.len()],
        "what came is the blob's start"
    );
    assert!(
        matches!(&cut.error, Some(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
            || cut.body.len() < 70_000,
        "the connection was reset: {:?}",
        cut.error
    );
    let logged = proxy.blob_gets(&digest);
    assert!(
        logged[0].cut && logged[0].body_bytes == 70_000,
        "{logged:?}"
    );
    assert_eq!(
        exchange(proxy.port(), "GET", &path, &[], b"").body,
        data,
        "one-off"
    );

    // Every GET of this digest cut after 100 000 bytes: resuming with Range gets there.
    proxy.cut_blob(BlobMatch::Digest(digest.clone()), 100_000);
    let mut have: Vec<u8> = Vec::new();
    for _ in 0..10 {
        if have.len() == data.len() {
            break;
        }
        let range = format!("bytes={}-", have.len());
        let a = exchange(proxy.port(), "GET", &path, &[("Range", &range)], b"");
        assert!(a.status == 206 || a.status == 200, "{}", a.status);
        have.extend_from_slice(&a.body);
    }
    assert_eq!(sha256_hex(&have), digest, "the resumed blob is whole");
}

#[test]
fn a_throttle_slows_bodies_down_and_can_be_lifted() {
    let reg = Registry::plain();
    let proxy = Proxy::start(
        &reg.host(),
        ProxyOptions {
            bytes_per_second: Some(256 * 1024),
            ..ProxyOptions::default()
        },
    );
    let (digest, data) = upload_blob(&proxy, "slow/blob", 192 * 1024);
    let path = format!("/v2/slow/blob/blobs/{digest}");
    let t = Instant::now();
    let slow = exchange(proxy.port(), "GET", &path, &[], b"");
    let took = t.elapsed();
    assert_eq!(slow.body, data);
    assert!(
        took >= Duration::from_millis(600),
        "192 KiB at 256 KiB/s took {took:?}"
    );

    proxy.throttle(None);
    let t = Instant::now();
    assert_eq!(exchange(proxy.port(), "GET", &path, &[], b"").body, data);
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn down_refuses_connections_and_resets_a_transfer_then_comes_back_on_the_same_port() {
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    let (digest, data) = upload_blob(&proxy, "down/blob", 200_000);
    let path = format!("/v2/down/blob/blobs/{digest}");

    // A transfer in flight, slowed so that it is mid-body when the proxy goes down.
    proxy.throttle(Some(100_000));
    let port = proxy.port();
    let p = path.clone();
    let reader = std::thread::spawn(move || exchange(port, "GET", &p, &[], b""));
    let before = proxy.bytes_sent();
    assert!(
        proxy.wait_for_bytes(before + 20_000, Duration::from_secs(10)),
        "the transfer never started"
    );
    proxy.set_down(true);
    let cut = reader.join().expect("reader thread");
    assert!(cut.body.len() < data.len(), "the transfer was cut short");

    let refused = TcpStream::connect(("127.0.0.1", proxy.port()));
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "while down, connections are refused: {refused:?}"
    );
    assert!(skopeo_raw(
        &format!("{}/down/blob:latest", proxy.host()),
        &["--tls-verify=false", "--retry-times=0"]
    )
    .is_err());

    proxy.throttle(None);
    proxy.set_down(false);
    let again = exchange(proxy.port(), "GET", &path, &[], b"");
    assert_eq!(again.body, data, "up again on port {}", proxy.port());
}

#[test]
fn bearer_tokens_from_its_own_token_server_gate_the_registry() {
    const USER: &str = "pull-user";
    const PASSWORD: &str = "T0ken-Pa55";
    let reg = Registry::plain();
    let proxy = Proxy::start(&reg.host(), ProxyOptions::default());
    assert_ok(&push_fluentd(&proxy.host(), &[]), "push before auth is on");
    proxy.require_bearer(USER, PASSWORD);

    // No token: the challenge distribution's token auth gives.
    let manifest = "/v2/openshift4/ose-logging-fluentd/manifests/v4.6";
    let anon = exchange(proxy.port(), "GET", manifest, &[], b"");
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"{TOKEN_SERVICE}\",\
                 scope=\"repository:openshift4/ose-logging-fluentd:pull\"",
                proxy.port()
            )
            .as_str()
        )
    );
    assert_eq!(exchange(proxy.port(), "GET", "/v2/", &[], b"").status, 401);
    let head = exchange(proxy.port(), "HEAD", manifest, &[], b"");
    assert_eq!(head.status, 401);
    assert!(head.body.is_empty(), "a HEAD answer has no body");

    // The token server wants the Basic credentials.
    let scope = "repository:openshift4/ose-logging-fluentd:pull";
    let token_path = format!("/token?service={TOKEN_SERVICE}&scope={scope}");
    let wrong = format!("Basic {}", b64(&format!("{USER}:nope")));
    assert_eq!(
        exchange(
            proxy.port(),
            "GET",
            &token_path,
            &[("Authorization", &wrong)],
            b""
        )
        .status,
        401
    );
    let basic = format!("Basic {}", b64(&format!("{USER}:{PASSWORD}")));
    let t = exchange(
        proxy.port(),
        "GET",
        &token_path,
        &[("Authorization", &basic)],
        b"",
    );
    assert_eq!(t.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&t.body).expect("token JSON");
    let token = v["token"].as_str().expect("a token").to_owned();
    assert_eq!(v["access_token"], v["token"]);
    let bearer = format!("Bearer {token}");

    let ok = exchange(
        proxy.port(),
        "GET",
        manifest,
        &[
            ("Authorization", &bearer),
            ("Accept", test_support::registry::MANIFEST_ACCEPT),
        ],
        b"",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(sha256_hex(&ok.body), FLUENTD_DIGEST);
    // Basic is not Bearer.
    assert_eq!(
        exchange(
            proxy.port(),
            "GET",
            manifest,
            &[("Authorization", &basic)],
            b""
        )
        .status,
        401
    );
    // A pull token does not push, nor read another repository.
    let post = exchange(
        proxy.port(),
        "POST",
        "/v2/openshift4/ose-logging-fluentd/blobs/uploads/",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(post.status, 401);
    assert!(post
        .header("www-authenticate")
        .is_some_and(|c| c.contains("error=\"insufficient_scope\"") && c.contains(":pull,push\"")));
    let other = exchange(
        proxy.port(),
        "GET",
        "/v2/other/repo/manifests/v1",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(other.status, 401);
    // Expired: refused as invalid.
    proxy.expire_tokens();
    let expired = exchange(
        proxy.port(),
        "GET",
        manifest,
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(expired.status, 401);
    assert!(expired
        .header("www-authenticate")
        .is_some_and(|c| c.contains("error=\"invalid_token\"")));

    // A real client follows the challenge to the token server.
    let reference = format!("{}/{FLUENTD}", proxy.host());
    let creds = format!("--creds={USER}:{PASSWORD}");
    assert_eq!(
        skopeo_digest(&reference, &["--tls-verify=false", &creds]),
        FLUENTD_DIGEST
    );
    let issued = proxy.tokens_issued();
    assert!(issued >= 2, "skopeo fetched a token ({issued} issued)");
    let refused = skopeo_raw(&reference, &["--tls-verify=false", "--retry-times=0"])
        .expect_err("no credentials: refused");
    assert!(
        refused.text().to_lowercase().contains("unauthorized") || refused.text().contains("401"),
        "{}",
        refused.dump()
    );
    // With push scope, skopeo pushes through it too (the upload Locations come back
    // through the proxy, with the token).
    let out = push_fluentd(&proxy.host(), &[&format!("--dest-creds={USER}:{PASSWORD}")]);
    assert_ok(&out, "push with Bearer tokens");
}
