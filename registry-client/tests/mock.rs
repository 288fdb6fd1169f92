//! Against a scripted server, for what a real registry will not do on demand.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use registry_client::{Client, Credentials, MountOutcome, RegistryError, Timeouts, UploadPolicy};
use support::*;

fn client_for(server: &MockServer) -> Client {
    Client::new(mock_config(server)).unwrap()
}

/// A mock in front of a [`MiniRegistry`], with `fault` deciding first, before the body is
/// read (`n` counts the requests).
fn registry_with(
    fault: impl Fn(&MockRequest, usize) -> Option<Reply> + Send + Sync + 'static,
) -> (MockServer, Arc<Mutex<MiniRegistry>>) {
    let mini = Arc::new(Mutex::new(MiniRegistry::default()));
    let seen = AtomicUsize::new(0);
    let state = mini.clone();
    let server = MockServer::start_with_early(
        move |req| fault(req, seen.fetch_add(1, Ordering::SeqCst)),
        move |req| state.lock().unwrap().handle(req),
    );
    (server, mini)
}

#[test]
fn mount_answered_202_cancels_the_session() {
    let server = MockServer::start(|req| match (req.method.as_str(), req.path()) {
        ("POST", "/v2/dst/app/blobs/uploads/") => Reply::status(202)
            .header("location", "/v2/dst/app/blobs/uploads/abc?_state=st")
            .header("range", "0-0"),
        ("DELETE", "/v2/dst/app/blobs/uploads/abc") => Reply::status(204),
        _ => Reply::status(500),
    });
    let client = client_for(&server);
    let digest = sha256(b"layer");
    assert_eq!(
        client.mount_blob("dst/app", &digest, "src/app").unwrap(),
        MountOutcome::NotMounted
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].query("mount"), [digest.to_string()]);
    assert_eq!(reqs[0].query("from"), ["src/app"]);
    assert_eq!(reqs[1].method, "DELETE");
    assert_eq!(reqs[1].target, "/v2/dst/app/blobs/uploads/abc?_state=st");
}

#[test]
fn relative_location_with_query_gets_the_digest_appended() {
    let (server, mini) = registry_with(|_, _| None);
    let client = client_for(&server);
    let data = bytes(1, 5000);
    let d = sha256(&data);
    client
        .upload_blob("ns/app", &d, data.len() as u64, reader_of(&data))
        .unwrap();
    let put = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.target,
        format!(
            "/v2/ns/app/blobs/uploads/s1?_state=opaque-s1&digest=sha256%3A{}",
            d.hex()
        )
    );
    assert_eq!(put.header("content-length"), Some("5000"));
    assert_eq!(put.header("content-type"), Some("application/octet-stream"));
    assert_eq!(put.header("transfer-encoding"), None);
    assert_eq!(mini.lock().unwrap().blobs[&d.to_string()], data);
}

#[test]
fn out_of_range_patch_restarts_the_blob_in_a_new_session() {
    // The first PATCH gets 416; the blob starts over and goes through.
    let (server, mini) = registry_with(|req, _| {
        (req.method == "PATCH" && req.path().ends_with("/s1"))
            .then(|| Reply::error(416, "RANGE_INVALID", "invalid content range"))
    });
    let mut config = mock_config(&server);
    config.upload = UploadPolicy {
        chunk_size: 1000,
        max_monolithic: Some(0),
        ..UploadPolicy::default()
    };
    let client = Client::new(config).unwrap();
    let data = bytes(2, 2500);
    let d = sha256(&data);
    let report = client
        .upload_blob("ns/app", &d, data.len() as u64, reader_of(&data))
        .unwrap();
    assert_eq!((report.restarts, report.chunked), (1, true));
    assert_eq!(mini.lock().unwrap().blobs[&d.to_string()], data);
    let reqs = server.requests();
    // The dead session was cancelled; the new one got three ranged chunks.
    assert!(reqs
        .iter()
        .any(|r| r.method == "DELETE" && r.path().ends_with("/s1")));
    let ranges: Vec<&str> = reqs
        .iter()
        .filter(|r| r.method == "PATCH" && r.path().ends_with("/s2"))
        .map(|r| r.header("content-range").unwrap())
        .collect();
    assert_eq!(ranges, ["0-999", "1000-1999", "2000-2499"]);
}

#[test]
fn chunk_size_rises_to_the_registry_minimum() {
    let mini = Arc::new(Mutex::new(MiniRegistry::default()));
    let state = mini.clone();
    let server = MockServer::start(move |req| {
        let reply = state.lock().unwrap().handle(req);
        if req.method == "POST" {
            reply.header("oci-chunk-min-length", "4096")
        } else {
            reply
        }
    });
    let mut config = mock_config(&server);
    config.upload = UploadPolicy {
        chunk_size: 1000,
        max_monolithic: Some(0),
        ..UploadPolicy::default()
    };
    let client = Client::new(config).unwrap();
    let data = bytes(3, 10_000);
    client
        .upload_blob(
            "ns/app",
            &sha256(&data),
            data.len() as u64,
            reader_of(&data),
        )
        .unwrap();
    let sizes: Vec<usize> = server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body.len())
        .collect();
    assert_eq!(sizes, [4096, 4096, 1808]);
}

#[test]
fn body_too_large_falls_back_to_chunks() {
    // A proxy that refuses bodies over 1.5 MiB, as nginx's client_max_body_size does.
    const LIMIT: usize = 1536 * 1024;
    let (server, mini) = registry_with(|req, _| {
        (req.content_length() > LIMIT).then(|| {
            Reply::status(413)
                .header("content-type", "text/html")
                .body(b"<html><body>413 Request Entity Too Large</body></html>")
        })
    });
    let client = client_for(&server);
    let data = bytes(4, 5 * 1024 * 1024);
    let d = sha256(&data);
    let report = client
        .upload_blob("ns/big", &d, data.len() as u64, reader_of(&data))
        .unwrap();
    assert!(report.chunked);
    assert_eq!(mini.lock().unwrap().blobs[&d.to_string()], data);
    let reqs = server.requests();
    // The refused PUT asked for 100-continue, so its 5 MiB were never sent.
    let refused = reqs.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(refused.header("expect"), Some("100-continue"));
    assert!(refused.body.is_empty());
    assert!(reqs
        .iter()
        .filter(|r| r.method == "PATCH")
        .all(|r| r.body.len() <= LIMIT));
}

#[test]
fn reset_in_the_middle_of_a_body_restarts_the_blob() {
    let (server, mini) = registry_with(|req, _| {
        (req.method == "PUT" && req.path().ends_with("/s1")).then_some(Reply::ResetAfter(100_000))
    });
    let client = client_for(&server);
    let data = bytes(5, 2 * 1024 * 1024);
    let d = sha256(&data);
    let mut opened = 0;
    let report = client
        .upload_blob("ns/app", &d, data.len() as u64, || {
            opened += 1;
            Ok(std::io::Cursor::new(data.clone()))
        })
        .unwrap();
    assert_eq!(report.restarts, 1);
    assert_eq!(opened, 2, "a fresh reader for the restart");
    assert_eq!(mini.lock().unwrap().blobs[&d.to_string()], data);
    // Before starting over, the client asked whether the blob had arrived anyway.
    assert!(server.count("HEAD", "/v2/ns/app/blobs/sha256:") >= 1);
}

#[test]
fn dead_session_restarts_the_blob() {
    let (server, mini) = registry_with(|req, _| {
        (req.method == "PUT" && req.path().ends_with("/s1"))
            .then(|| Reply::error(404, "BLOB_UPLOAD_INVALID", "blob upload invalid"))
    });
    let client = client_for(&server);
    let data = bytes(6, 3000);
    let d = sha256(&data);
    let report = client
        .upload_blob("ns/app", &d, data.len() as u64, reader_of(&data))
        .unwrap();
    assert_eq!(report.restarts, 1);
    assert!(mini.lock().unwrap().blobs.contains_key(&d.to_string()));
}

#[test]
fn lost_answer_to_the_last_put_is_found_by_head() {
    // The blob is stored, but the answer is a 502 from a proxy: no second upload.
    let mini = Arc::new(Mutex::new(MiniRegistry::default()));
    let state = mini.clone();
    let server = MockServer::start(move |req| {
        let reply = state.lock().unwrap().handle(req);
        if req.method == "PUT" {
            Reply::status(502).body(b"Bad Gateway")
        } else {
            reply
        }
    });
    let client = client_for(&server);
    let data = bytes(7, 3000);
    let d = sha256(&data);
    let report = client
        .upload_blob("ns/app", &d, data.len() as u64, reader_of(&data))
        .unwrap();
    assert_eq!(report.restarts, 1);
    assert_eq!(server.count("PUT", "/"), 1);
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let server = MockServer::start({
        let calls = AtomicUsize::new(0);
        move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::error(429, "TOOMANYREQUESTS", "slow down").header("retry-after", "1")
            } else {
                Reply::status(200).header("content-length", "7")
            }
        }
    });
    let client = client_for(&server);
    let started = Instant::now();
    assert_eq!(
        client.blob_exists("ns/app", &sha256(b"1234567")).unwrap(),
        Some(7)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn server_error_storm_then_success_and_then_giving_up() {
    let server = MockServer::start({
        let calls = AtomicUsize::new(0);
        move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Reply::error(503, "UNAVAILABLE", "the registry is restarting")
            } else {
                Reply::status(404)
            }
        }
    });
    let client = client_for(&server);
    assert_eq!(client.blob_exists("ns/app", &sha256(b"x")).unwrap(), None);
    assert_eq!(server.requests().len(), 4);

    // A storm that outlasts the policy (4 attempts): the last error, decoded, with the URL.
    let server = MockServer::start(|_| Reply::error(500, "UNKNOWN", "storage driver exploded"));
    let client = client_for(&server);
    let e = client.blob_exists("ns/app", &sha256(b"x")).unwrap_err();
    assert!(
        matches!(e, RegistryError::RetriesExhausted { attempts: 4, .. }),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("gave up after 4 attempts"), "{text}");
    assert!(
        text.contains(&format!("HEAD {}/v2/ns/app/blobs/sha256:", server.base())),
        "{text}"
    );
    assert_eq!(server.requests().len(), 4);

    // 4xx are never retried.
    let server =
        MockServer::start(|_| Reply::error(400, "NAME_INVALID", "invalid repository name"));
    let client = client_for(&server);
    let e = client.get_manifest("ns/app", "v1").unwrap_err();
    assert!(e.has_code("NAME_INVALID"), "{e}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn garbage_answers_are_shown_not_parsed() {
    let server = MockServer::start(|req| match req.method.as_str() {
        "PUT" => Reply::status(400)
            .header("content-type", "text/html")
            .body(b"<html><h1>Proxy says no</h1>\r\n</html>"),
        _ => Reply::status(502).body(b"\x00\x01 upstream gone"),
    });
    let client = client_for(&server);
    let e = client
        .put_manifest("ns/app", "v1", OCI_MANIFEST, b"{}")
        .unwrap_err();
    match &e {
        RegistryError::Garbage {
            url,
            status,
            body_excerpt,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(url, &format!("{}/v2/ns/app/manifests/v1", server.base()));
            assert!(body_excerpt.contains("Proxy says no"), "{body_excerpt}");
        }
        other => panic!("{other:?}"),
    }
    let e = client.get_manifest("ns/app", "v1").unwrap_err();
    assert!(e.to_string().contains("upstream gone"), "{e}");
    assert!(e.to_string().contains("\\u{0}"), "{e}");
}

#[test]
fn registry_digest_that_disagrees_is_an_error() {
    let server = MockServer::start(|req| match req.method.as_str() {
        "POST" => Reply::status(202).header("location", "/v2/ns/app/blobs/uploads/u"),
        "PUT" if req.path().contains("/manifests/") => {
            Reply::status(201).header("docker-content-digest", sha256(b"other").to_string())
        }
        "PUT" => Reply::status(201).header("docker-content-digest", sha256(b"other").to_string()),
        "GET" => Reply::status(200)
            .header("content-type", OCI_MANIFEST)
            .body(b"{\"tampered\":true}"),
        _ => Reply::status(500),
    });
    let client = client_for(&server);
    let e = client
        .upload_blob("ns/app", &sha256(b"blob"), 4, reader_of(b"blob"))
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    let e = client
        .put_manifest("ns/app", "v1", OCI_MANIFEST, b"{}")
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    // A manifest fetched by digest is hashed: a registry cannot substitute one.
    let e = client
        .get_manifest("ns/app", &sha256(b"{}").to_string())
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
}

/// A token server and a registry on one mock. Tokens are `tok-<n>`; the registry accepts
/// only tokens issued for scopes covering the request, and only while not revoked.
struct TokenWorld {
    issued: Vec<(String, Vec<String>)>,
    revoked: Vec<String>,
    expires_in: Option<u64>,
    field: &'static str,
}

fn token_registry(
    field: &'static str,
    expires_in: Option<u64>,
) -> (MockServer, Arc<Mutex<TokenWorld>>) {
    let world = Arc::new(Mutex::new(TokenWorld {
        issued: Vec::new(),
        revoked: Vec::new(),
        expires_in,
        field,
    }));
    let w = world.clone();
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let server = MockServer::start(move |req| {
        let mut world = w.lock().unwrap();
        if req.path() == "/token" {
            let basic_ok = req.header("authorization") == Some("Basic YWxpY2U6czNjcmV0LVBhNTU="); // alice:s3cret-Pa55
            let refresh_ok = req.method == "POST"
                && String::from_utf8_lossy(&req.body).contains("refresh_token=refresh-me");
            if !basic_ok && !refresh_ok {
                return Reply::json(401, r#"{"details":"incorrect username or password"}"#);
            }
            let scopes = if req.method == "POST" {
                let form = String::from_utf8_lossy(&req.body).into_owned();
                form.split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .flat_map(|v| {
                        percent_decode(v)
                            .split(' ')
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            } else {
                req.query("scope")
            };
            let token = format!("tok-{}", world.issued.len() + 1);
            world.issued.push((token.clone(), scopes));
            let expiry = world
                .expires_in
                .map_or(String::new(), |e| format!(r#","expires_in":{e}"#));
            return Reply::json(200, &format!(r#"{{"{}":"{token}"{expiry}}}"#, world.field));
        }
        // The registry: which scope does this request need?
        let path = req.path();
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|r| r.split("/blobs/").next())
            .unwrap_or("");
        let action = if req.method == "HEAD" || req.method == "GET" {
            "pull"
        } else {
            "pull,push"
        };
        let need = format!("repository:{repo}:{action}");
        let granted = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .filter(|t| !world.revoked.iter().any(|r| r == t))
            .and_then(|t| world.issued.iter().find(|(tok, _)| tok == t))
            .is_some_and(|(_, scopes)| scopes.iter().any(|s| s == &need));
        if !granted {
            let realm = format!("http://127.0.0.1:{}/token", p.lock().unwrap());
            return Reply::error(401, "UNAUTHORIZED", "authentication required").header(
                "www-authenticate",
                format!(r#"Bearer realm="{realm}",service="mock-registry",scope="{need}""#),
            );
        }
        match req.method.as_str() {
            "POST" if !req.query("mount").is_empty() => Reply::status(201),
            "HEAD" => Reply::status(404),
            _ => Reply::status(500),
        }
    });
    *port.lock().unwrap() = server.port();
    (server, world)
}

#[test]
fn bearer_tokens_are_fetched_scoped_cached_and_refreshed() {
    let (server, world) = token_registry("token", Some(300));
    let mut config = mock_config(&server);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    let d = sha256(b"x");
    assert_eq!(client.blob_exists("ns/app", &d).unwrap(), None);
    assert_eq!(client.blob_exists("ns/app", &d).unwrap(), None);
    let token_reqs: Vec<MockRequest> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(token_reqs.len(), 1, "the token is cached");
    assert_eq!(token_reqs[0].query("service"), ["mock-registry"]);
    assert_eq!(token_reqs[0].query("scope"), ["repository:ns/app:pull"]);

    // A mount needs push on the destination and pull on the source, in one token.
    assert_eq!(
        client.mount_blob("dst/app", &d, "src/app").unwrap(),
        MountOutcome::Mounted
    );
    let last = world.lock().unwrap().issued.last().unwrap().1.clone();
    assert_eq!(
        last,
        ["repository:dst/app:pull,push", "repository:src/app:pull"]
    );

    // A revoked token: 401, a new token, the request again.
    let revoked: Vec<String> = world
        .lock()
        .unwrap()
        .issued
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    world.lock().unwrap().revoked = revoked;
    let before = world.lock().unwrap().issued.len();
    assert_eq!(client.blob_exists("ns/app", &d).unwrap(), None);
    assert_eq!(world.lock().unwrap().issued.len(), before + 1);
}

#[test]
fn access_token_field_and_expiry_refresh() {
    // `access_token` (the OAuth2 name), valid 2 s: refreshed at 1.5 s.
    let (server, world) = token_registry("access_token", Some(2));
    let mut config = mock_config(&server);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    let d = sha256(b"x");
    client.blob_exists("ns/app", &d).unwrap();
    client.blob_exists("ns/app", &d).unwrap();
    assert_eq!(world.lock().unwrap().issued.len(), 1);
    std::thread::sleep(Duration::from_millis(1600));
    client.blob_exists("ns/app", &d).unwrap();
    assert_eq!(
        world.lock().unwrap().issued.len(),
        2,
        "refreshed before expiry"
    );
    // The refresh went out before use: no 401 for it.
    let unauthorized_heads = server
        .requests()
        .iter()
        .filter(|r| r.method == "HEAD" && r.header("authorization").is_none())
        .count();
    assert_eq!(
        unauthorized_heads, 1,
        "only the very first request went without a token"
    );
}

#[test]
fn identity_tokens_use_the_oauth2_refresh_grant() {
    let (server, world) = token_registry("access_token", None);
    let mut config = mock_config(&server);
    config.credentials = Some(Credentials::identity_token("<token>", "refresh-me"));
    let client = Client::new(config).unwrap();
    client.blob_exists("ns/app", &sha256(b"x")).unwrap();
    let token_req = server
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .unwrap();
    assert_eq!(token_req.method, "POST");
    assert_eq!(
        token_req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = String::from_utf8(token_req.body.clone()).unwrap();
    assert!(form.contains("grant_type=refresh_token"), "{form}");
    assert!(form.contains("service=mock-registry"), "{form}");
    assert!(
        form.contains("scope=repository%3Ans%2Fapp%3Apull"),
        "{form}"
    );
    assert_eq!(token_req.header("authorization"), None);
    assert_eq!(world.lock().unwrap().issued.len(), 1);
}

#[test]
fn token_server_refusing_the_password_is_a_clear_401_without_it() {
    let (server, _) = token_registry("token", None);
    let secret = "wrong-Pa55-do-not-print";
    let mut config = mock_config(&server);
    config.credentials = Some(Credentials::basic(USER, secret));
    let client = Client::new(config.clone()).unwrap();
    let e = client.blob_exists("ns/app", &sha256(b"x")).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    let shown = format!("{e} | {e:?} | {client:?} | {config:?}");
    assert!(
        shown.contains("the token server refused user \"alice\""),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{}/token", server.base())),
        "{shown}"
    );
    assert!(!shown.contains(secret), "{shown}");
    // Nor its base64 form.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{secret}"));
    assert!(!shown.contains(&b64), "{shown}");

    // Anonymous: said so.
    let client = client_for(&server);
    let e = client.blob_exists("ns/app", &sha256(b"x")).unwrap_err();
    assert!(e.to_string().contains("no credentials were given"), "{e}");
}

#[test]
fn slow_server_times_out_naming_the_url() {
    let server = MockServer::start(|_| {
        Reply::Delay(Duration::from_millis(1500), Box::new(Reply::status(200)))
    });
    let mut config = mock_config(&server);
    config.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        idle: Duration::from_millis(300),
    };
    config.retry = quick_retries(1);
    let client = Client::new(config).unwrap();
    let started = Instant::now();
    let e = client.blob_exists("ns/app", &sha256(b"x")).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("HEAD {}/v2/ns/app/blobs/sha256:", server.base())),
        "{e}"
    );
}

#[test]
fn refused_connection_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = registry_client::Config::new(format!("127.0.0.1:{port}"));
    config.insecure = true;
    config.proxy_from_env = false;
    config.retry = quick_retries(3);
    let client = Client::new(config).unwrap();
    let e = client.ping().unwrap_err();
    assert!(
        matches!(e, RegistryError::RetriesExhausted { attempts: 3, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&format!("GET http://127.0.0.1:{port}/v2/")),
        "{e}"
    );
}

#[test]
fn redirects_never_carry_credentials_to_another_host() {
    // B is "another host" (another origin: another port on 127.0.0.1).
    let other = MockServer::start(|_| {
        Reply::status(200)
            .header("content-type", OCI_MANIFEST)
            .body(b"{}")
    });
    let target = format!("{}/elsewhere/manifest", other.base());
    let registry = MockServer::start(move |req| {
        if req.header("authorization").is_none() {
            return Reply::error(401, "UNAUTHORIZED", "authentication required")
                .header("www-authenticate", r#"Basic realm="mock""#);
        }
        match req.path() {
            "/v2/ns/app/manifests/v1" => {
                Reply::status(307).header("location", "/v2/ns/app/manifests/v1-moved")
            }
            "/v2/ns/app/manifests/v1-moved" => {
                Reply::status(307).header("location", target.clone())
            }
            _ => Reply::status(404),
        }
    });
    let mut config = mock_config(&registry);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    let m = client.get_manifest("ns/app", "v1").unwrap().unwrap();
    assert_eq!(m.bytes, b"{}");
    // The same-origin hop kept the credentials; the other host got none.
    let at_registry = registry.requests();
    assert!(at_registry.iter().any(
        |r| r.path() == "/v2/ns/app/manifests/v1-moved" && r.header("authorization").is_some()
    ));
    let at_other = other.requests();
    assert_eq!(at_other.len(), 1);
    assert_eq!(
        at_other[0].header("authorization"),
        None,
        "{:?}",
        at_other[0]
    );
}

#[test]
fn upload_location_on_another_host_gets_no_credentials() {
    let other = MockServer::start(|req| match req.method.as_str() {
        "PUT" => Reply::status(201),
        _ => Reply::status(500),
    });
    let location = format!("{}/upload/here?sig=1", other.base());
    let registry = MockServer::start(move |req| {
        if req.header("authorization").is_none() {
            return Reply::error(401, "UNAUTHORIZED", "authentication required")
                .header("www-authenticate", r#"Basic realm="mock""#);
        }
        Reply::status(202).header("location", location.clone())
    });
    let mut config = mock_config(&registry);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    client
        .upload_blob("ns/app", &sha256(b"data"), 4, reader_of(b"data"))
        .unwrap();
    let put = &other.requests()[0];
    assert_eq!(put.body, b"data");
    assert_eq!(put.header("authorization"), None);
}

/// A registry that sends clients to a token server at `realm_host` (a host name or
/// address for 127.0.0.1) on another port, over plain HTTP.
fn registry_with_token_server_at(realm_host: &str) -> (MockServer, MockServer) {
    let tokens = MockServer::start(|req| {
        if req.header("authorization").is_some() {
            Reply::json(200, r#"{"token":"tok-1"}"#)
        } else {
            Reply::json(401, r#"{"details":"who are you"}"#)
        }
    });
    let realm = format!("http://{realm_host}:{}/token", tokens.port());
    let registry = MockServer::start(move |req| {
        if req.header("authorization") == Some("Bearer tok-1") {
            return Reply::status(404);
        }
        Reply::error(401, "UNAUTHORIZED", "authentication required").header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}",service="mock""#),
        )
    });
    (registry, tokens)
}

#[test]
fn credentials_never_go_over_plain_http_to_another_host() {
    // The registry is 127.0.0.1:P; its token server is `localhost`, another
    // host name, over plain HTTP. Even with insecure mode (plain HTTP to the registry
    // accepted), the password must not go there.
    let (registry, tokens) = registry_with_token_server_at("localhost");
    let mut config = mock_config(&registry);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    let e = client.blob_exists("ns/app", &sha256(b"x")).unwrap_err();
    assert!(
        matches!(e, RegistryError::CredentialsWithheld { .. }),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(shown.contains("over plain HTTP"), "{shown}");
    assert!(shown.contains("another host than 127.0.0.1"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(
        tokens
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "{:?}",
        tokens.requests()
    );

    // The same token server on the registry's own host (another port): the operator
    // named that host, so it gets the credentials.
    let (registry, tokens) = registry_with_token_server_at("127.0.0.1");
    let mut config = mock_config(&registry);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    assert_eq!(client.blob_exists("ns/app", &sha256(b"x")).unwrap(), None);
    assert!(tokens.requests().iter().any(|r| r
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic "))));

    // Anonymous: nothing to withhold, the token server is asked without credentials.
    let (registry, tokens) = registry_with_token_server_at("localhost");
    let client = client_for(&registry);
    let e = client.blob_exists("ns/app", &sha256(b"x")).unwrap_err();
    assert!(
        !matches!(e, RegistryError::CredentialsWithheld { .. }),
        "{e:?}"
    );
    drop(tokens);
}

#[test]
fn retries_last_as_long_as_the_time_bound_not_six_attempts() {
    // A 503 storm of 11 s, retried within 20 s (`--retry-for 20`), with
    // the default attempt limit: the request succeeds once the storm ends.
    let started = Instant::now();
    let storm = Duration::from_secs(11);
    let server = MockServer::start(move |_| {
        if started.elapsed() < storm {
            Reply::error(503, "UNAVAILABLE", "storm")
        } else {
            Reply::status(200)
                .header("content-length", "1")
                .header("docker-content-digest", sha256(b"x").to_string())
        }
    });
    let mut config = mock_config(&server);
    config.retry = registry_client::RetryPolicy {
        initial_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(2),
        max_elapsed: Duration::from_secs(20),
        ..registry_client::RetryPolicy::default()
    };
    let client = Client::new(config).unwrap();
    assert_eq!(
        client.blob_exists("ns/app", &sha256(b"x")).unwrap(),
        Some(1)
    );
    assert!(
        server.count("HEAD", "/v2/") > 6,
        "{}",
        server.count("HEAD", "/v2/")
    );
    assert!(
        started.elapsed() < Duration::from_secs(16),
        "{:?}",
        started.elapsed()
    );
}

/// A reader over `data` that sets `flag` once `after` bytes have been read (Ctrl-C in the
/// middle of a body).
struct InterruptingReader {
    data: std::io::Cursor<Vec<u8>>,
    after: u64,
    flag: &'static std::sync::atomic::AtomicBool,
}

impl std::io::Read for InterruptingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.position() >= self.after {
            self.flag.store(true, Ordering::SeqCst);
        }
        let n = buf.len().min(4096);
        self.data.read(&mut buf[..n])
    }
}

#[test]
fn an_interrupt_mid_body_cancels_the_upload_session() {
    // The cancel flag set in the middle of a blob (monolithic and chunked):
    // the body stops, the session is deleted, nothing starts after it, and the call says
    // it was interrupted.
    for chunked in [false, true] {
        let (server, mini) = registry_with(|_, _| None);
        let flag: &'static std::sync::atomic::AtomicBool =
            Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
        let mut config = mock_config(&server);
        config.cancel = Some(flag);
        // Every body left is cut here (the default finishes short ones: see the next test).
        config.upload.finish_after_cancel = 0;
        if chunked {
            config.upload = UploadPolicy {
                chunk_size: 64 * 1024,
                max_monolithic: Some(0),
                finish_after_cancel: 0,
            };
        }
        let client = Client::new(config).unwrap();
        let data = bytes(9, 1 << 20);
        let d = sha256(&data);
        let started = Instant::now();
        let e = client
            .upload_blob("ns/app", &d, data.len() as u64, || {
                Ok(InterruptingReader {
                    data: std::io::Cursor::new(data.clone()),
                    after: 200 * 1024,
                    flag,
                })
            })
            .unwrap_err();
        assert!(matches!(e, RegistryError::Cancelled), "{chunked}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let reqs = server.requests();
        let deletes: Vec<&MockRequest> = reqs.iter().filter(|r| r.method == "DELETE").collect();
        assert_eq!(deletes.len(), 1, "{chunked}: {reqs:?}");
        assert!(
            deletes[0].path().ends_with("/blobs/uploads/s1"),
            "{deletes:?}"
        );
        let mini = mini.lock().unwrap();
        assert!(mini.sessions.is_empty(), "{chunked}: sessions left open");
        assert!(mini.blobs.is_empty());
        // Nothing after the DELETE: no new session, no HEAD.
        assert_eq!(reqs.last().unwrap().method, "DELETE", "{chunked}: {reqs:?}");
        assert_eq!(server.count("POST", "/v2/"), 1);
        // And later calls do not start.
        let e = client.blob_exists("ns/app", &d).unwrap_err();
        assert!(matches!(e, RegistryError::Cancelled), "{e:?}");
    }
}

#[test]
fn an_interrupt_lets_a_short_body_finish_and_starts_nothing_after_it() {
    // A body with little left is finished rather than cut (a cut one races with the
    // registry's own writes to the session): the blob is stored, no session is left, and
    // nothing starts after it.
    let (server, mini) = registry_with(|_, _| None);
    let flag: &'static std::sync::atomic::AtomicBool =
        Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
    let mut config = mock_config(&server);
    config.cancel = Some(flag);
    let client = Client::new(config).unwrap();
    let data = bytes(7, 1 << 20);
    let d = sha256(&data);
    client
        .upload_blob("ns/app", &d, data.len() as u64, || {
            Ok(InterruptingReader {
                data: std::io::Cursor::new(data.clone()),
                after: 200 * 1024,
                flag,
            })
        })
        .expect("a body with 800 KiB left is finished after the interrupt");
    let mini = mini.lock().unwrap();
    assert!(mini.sessions.is_empty(), "sessions left open");
    assert_eq!(mini.blobs.len(), 1, "the blob is stored whole");
    assert_eq!(server.count("DELETE", "/v2/"), 0);
    drop(mini);
    let e = client.blob_exists("ns/app", &d).unwrap_err();
    assert!(matches!(e, RegistryError::Cancelled), "{e:?}");
}

#[test]
fn connect_probes_v2_once_and_names_what_answers() {
    // A web server's 200 without the API version header is
    // not a registry; a registry is; a registry starting up (503) is waited for.
    let web = MockServer::start(|_| Reply::status(200).body(b"<html>hello</html>"));
    let e = Client::connect(mock_config(&web)).unwrap_err();
    assert!(matches!(e, RegistryError::NotARegistry { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("without the Docker-Distribution-API-Version header"),
        "{e}"
    );

    let started = Instant::now();
    let registry = MockServer::start(move |req| {
        if started.elapsed() < Duration::from_millis(300) {
            return Reply::error(503, "UNAVAILABLE", "starting");
        }
        assert_eq!(req.path(), "/v2/");
        Reply::json(200, "{}").header("docker-distribution-api-version", "registry/2.0")
    });
    let mut config = mock_config(&registry);
    config.retry = registry_client::RetryPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(5),
        ..registry_client::RetryPolicy::default()
    };
    let client = Client::connect(config).unwrap();
    assert_eq!(client.base_url(), registry.base());
    assert!(registry.count("GET", "/v2/") >= 2);

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = registry_client::Config::new(format!("127.0.0.1:{port}"));
    config.insecure = true;
    config.proxy_from_env = false;
    let started = Instant::now();
    let e = Client::connect(config).unwrap_err();
    assert!(
        matches!(e, RegistryError::ConnectionRefused { .. }),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusal is not retried"
    );
}

// ---------------------------------------------------------------------------------------
// Blob downloads

const BLOB_PATH: &str = "/v2/ns/app/blobs/";

fn read_stream(mut s: registry_client::BlobStream) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut out).unwrap();
    out
}

#[test]
fn a_registry_that_ignores_range_gives_a_stream_from_byte_zero() {
    let data = bytes(3, 5000);
    let d = sha256(&data);
    let served = data.clone();
    let server = MockServer::start(move |_| Reply::status(200).body(&served));
    let client = client_for(&server);
    let s = client.fetch_blob("ns/app", &d, 1234).unwrap().unwrap();
    assert_eq!((s.start, s.length), (0, Some(5000)));
    assert_eq!(read_stream(s), data);
    let asked = &server.requests()[0];
    assert_eq!(asked.header("range"), Some("bytes=1234-"));
    // No Range when starting at 0.
    client.fetch_blob("ns/app", &d, 0).unwrap().unwrap();
    assert_eq!(server.requests()[1].header("range"), None);
}

#[test]
fn a_content_range_elsewhere_or_a_416_is_not_resumable() {
    let d = sha256(b"x");
    for (reply, what) in [
        (
            Reply::status(206)
                .header("content-range", "bytes 0-9/20")
                .body(&[0; 10]),
            "not from byte 10",
        ),
        (
            Reply::status(206)
                .header("content-range", "bytes 10-19/20")
                .header("content-length", "5")
                .body(&[0; 5]),
            "Content-Length 5",
        ),
        (Reply::status(206).body(&[0; 10]), "unusable Content-Range"),
        (
            Reply::error(416, "RANGE_INVALID", "no"),
            "refused the range",
        ),
    ] {
        let reply = std::sync::Mutex::new(Some(reply));
        let server = MockServer::start(move |_| reply.lock().unwrap().take().unwrap());
        let e = client_for(&server)
            .fetch_blob("ns/app", &d, 10)
            .unwrap_err();
        assert!(
            matches!(e, RegistryError::RangeNotResumable { offset: 10, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains(what), "{e}");
        assert_eq!(server.requests().len(), 1, "not retried");
    }
}

#[test]
fn a_matching_content_range_resumes() {
    let data = bytes(4, 100);
    let d = sha256(&data);
    let tail = data[40..].to_vec();
    let server = MockServer::start(move |_| {
        Reply::status(206)
            .header("content-range", "bytes 40-99/100")
            .header("docker-content-digest", d.to_string())
            .body(&tail)
    });
    let s = client_for(&server)
        .fetch_blob("ns/app", &d, 40)
        .unwrap()
        .unwrap();
    assert_eq!((s.start, s.length), (40, Some(60)));
    assert_eq!(read_stream(s), &data[40..]);
}

#[test]
fn blob_downloads_follow_redirects_without_credentials_and_retry_before_the_body() {
    let data = bytes(5, 3000);
    let d = sha256(&data);
    let served = data.clone();
    let cdn = MockServer::start(move |req| {
        if req.query("sig") != ["1"] {
            return Reply::status(403);
        }
        Reply::status(206)
            .header("content-range", "bytes 1000-2999/3000")
            .body(&served[1000..])
    });
    let target = format!("{}/storage/blob?sig=1", cdn.base());
    let tries = AtomicUsize::new(0);
    let registry = MockServer::start(move |req| {
        if req.header("authorization").is_none() {
            return Reply::error(401, "UNAUTHORIZED", "authentication required")
                .header("www-authenticate", r#"Basic realm="mock""#);
        }
        // One transient failure first: retried before any body byte.
        if tries.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::status(503);
        }
        Reply::status(307).header("location", target.clone())
    });
    let mut config = mock_config(&registry);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    let client = Client::new(config).unwrap();
    let s = client.fetch_blob("ns/app", &d, 1000).unwrap().unwrap();
    assert_eq!((s.start, s.length), (1000, Some(2000)));
    assert_eq!(read_stream(s), &data[1000..]);
    let at_cdn = cdn.requests();
    assert_eq!(at_cdn.len(), 1);
    assert_eq!(at_cdn[0].header("authorization"), None, "{:?}", at_cdn[0]);
    assert_eq!(at_cdn[0].header("range"), Some("bytes=1000-"));
    assert!(registry
        .requests()
        .iter()
        .all(|r| r.path().starts_with(BLOB_PATH)));
    assert_eq!(registry.count("GET", BLOB_PATH), 3, "401, 503, then 307");
}

#[test]
fn an_absent_blob_is_none_and_an_interrupt_stops_the_stream() {
    let server = MockServer::start(|req| {
        if req.path().ends_with(&sha256(b"absent").to_string()) {
            return Reply::error(404, "BLOB_UNKNOWN", "blob unknown to registry");
        }
        Reply::status(200).body(&bytes(6, 1 << 20))
    });
    let flag: &'static std::sync::atomic::AtomicBool =
        Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
    let mut config = mock_config(&server);
    config.cancel = Some(flag);
    let client = Client::new(config).unwrap();
    assert!(client
        .fetch_blob("ns/app", &sha256(b"absent"), 0)
        .unwrap()
        .is_none());
    let mut s = client
        .fetch_blob("ns/app", &sha256(b"present"), 0)
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 1000];
    std::io::Read::read_exact(&mut s, &mut buf).unwrap();
    flag.store(true, Ordering::SeqCst);
    let e = std::io::Read::read(&mut s, &mut buf).unwrap_err();
    assert!(e.to_string().contains("interrupted"), "{e}");
    // Nothing new starts.
    let e = client.fetch_blob("ns/app", &sha256(b"x"), 0).unwrap_err();
    assert!(matches!(e, RegistryError::Cancelled), "{e:?}");
}

#[test]
fn the_retry_observer_is_told_of_each_retry_before_its_wait() {
    let manifest = image_manifest(&image_config(), &[b"layer"]);
    let server = MockServer::start({
        let calls = AtomicUsize::new(0);
        let manifest = manifest.clone();
        move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::error(503, "UNAVAILABLE", "the registry is restarting")
            } else {
                Reply::status(200)
                    .header("content-type", OCI_MANIFEST)
                    .body(&manifest)
            }
        }
    });
    let notices: Arc<Mutex<Vec<registry_client::RetryNotice>>> = Arc::default();
    let mut config = mock_config(&server);
    config.credentials = Some(Credentials::basic(USER, PASSWORD));
    config.on_retry = Some({
        let notices = notices.clone();
        Arc::new(move |n: &registry_client::RetryNotice| notices.lock().unwrap().push(n.clone()))
    });
    // The observer does not reach Debug, nor do the credentials.
    let debug = format!("{config:?}");
    assert!(debug.contains("on_retry: Some(\"<observer>\")"), "{debug}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    let client = Client::new(config).unwrap();
    let m = client.get_manifest("ns/app", "v1").unwrap().unwrap();
    assert_eq!(m.bytes, manifest);
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(n.method, "GET");
    assert_eq!(n.url, format!("{}/v2/ns/app/manifests/v1", server.base()));
    assert_eq!(n.attempt, 2);
    assert!(n.wait <= Duration::from_millis(50), "{n:?}");
    assert!(
        n.error.contains("503") && n.error.contains("the registry is restarting"),
        "{n:?}"
    );
    assert!(!n.error.contains(PASSWORD) && !n.url.contains(PASSWORD));

    // Without an observer the retries are the same, only silent.
    let server = MockServer::start({
        let calls = AtomicUsize::new(0);
        move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::error(503, "UNAVAILABLE", "restarting")
            } else {
                Reply::status(404)
            }
        }
    });
    let config = mock_config(&server);
    assert!(format!("{config:?}").contains("on_retry: None"));
    let client = Client::new(config).unwrap();
    assert_eq!(client.blob_exists("ns/app", &sha256(b"x")).unwrap(), None);
    assert_eq!(server.requests().len(), 2);
}

/// A paged tag list (Quay, Harbor and GHCR page; distribution 2.8 does not) is followed
/// page by page through its `Link`; a repository the registry does not know is `None`,
/// and `"tags": null` is no tag. A `Link` to another host is refused, not followed.
#[test]
fn tag_lists_are_followed_page_by_page_and_stay_on_the_registry() {
    let server = MockServer::start(|req| match (req.path(), req.query("last").first()) {
        ("/v2/app/tags/list", None) => Reply::json(200, r#"{"name":"app","tags":["a","b"]}"#)
            .header("link", r#"</v2/app/tags/list?n=2&last=b>; rel="next""#),
        ("/v2/app/tags/list", Some(last)) if last == "b" => {
            Reply::json(200, r#"{"name":"app","tags":["c"]}"#)
        }
        ("/v2/empty/tags/list", _) => Reply::json(200, r#"{"name":"empty","tags":null}"#),
        ("/v2/away/tags/list", _) => Reply::json(200, r#"{"name":"away","tags":["a"]}"#).header(
            "link",
            r#"<http://elsewhere.test/v2/away/tags/list?last=a>; rel="next""#,
        ),
        _ => Reply::json(
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
        ),
    });
    let client = client_for(&server);
    assert_eq!(
        client.list_tags("app").unwrap(),
        Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
    );
    assert_eq!(client.list_tags("empty").unwrap(), Some(Vec::new()));
    assert_eq!(client.list_tags("gone").unwrap(), None);
    let e = client.list_tags("away").unwrap_err();
    assert!(
        matches!(e, RegistryError::Protocol { .. }) && e.to_string().contains("elsewhere.test"),
        "{e}"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.target.contains("elsewhere")),
        "nothing went to the other host"
    );
}
