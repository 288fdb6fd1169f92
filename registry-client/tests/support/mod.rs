//! Test servers, all on 127.0.0.1 and all stopped when dropped:
//! - [`Registry`]: the real CNCF distribution 2.8.2 (Debian `docker-registry`), plain
//!   HTTP, TLS with a test CA made by `openssl`, or htpasswd Basic auth;
//! - [`MockServer`]: a small HTTP/1.1 server whose answers a test scripts, for what a real
//!   registry will not do on demand (202 mounts, 416, 429, 5xx storms, garbage, tokens,
//!   slowness, redirects, resets).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use registry_client::{Client, Config, Digest, RetryPolicy, Timeouts};

// ---------------------------------------------------------------------------------------
// The real registry

/// The test user of htpasswd registries.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-Pa55";
/// bcrypt (cost 4, the minimum distribution accepts) of [`PASSWORD`], made with Python's
/// `crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))`; the same as
/// `htpasswd -nbB -C 4 alice s3cret-Pa55` would give. Distribution reads only bcrypt.
const PASSWORD_BCRYPT: &str = "$2b$04$UFhSCR5.fxVcIzSUeyLaSuktMu5hIobhP71i1SInld.4kHEmIrYkK";

#[derive(Default)]
pub struct RegistryOptions {
    pub tls: bool,
    pub htpasswd: bool,
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, made with `openssl`.
pub struct TestCa {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    pub fn generate(dir: &Path) -> TestCa {
        let p = |name: &str| dir.join(name);
        let s = |path: PathBuf| path.to_str().unwrap().to_owned();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &s(p("ca.key")),
            "-out",
            &s(p("ca.pem")),
            "-days",
            "2",
            "-subj",
            "/CN=ferry test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &s(p("server.key")),
            "-out",
            &s(p("server.csr")),
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &s(p("server.csr")),
            "-CA",
            &s(p("ca.pem")),
            "-CAkey",
            &s(p("ca.key")),
            "-CAcreateserial",
            "-out",
            &s(p("server.pem")),
            "-days",
            "2",
            "-extfile",
            &s(p("ext.cnf")),
        ]);
        TestCa {
            ca_cert: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
        }
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker-registry serve` on 127.0.0.1, storage in a temporary directory, a fixed
/// `http.secret` (so upload sessions would survive a restart). Killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub ca: Option<TestCa>,
}

impl Registry {
    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let ca = opts.tls.then(|| TestCa::generate(dir.path()));
        let mut last_log = String::new();
        // A free port can be taken between asking and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: ferry-test-secret\n",
                root = dir.path().join("storage").display()
            );
            if let Some(ca) = &ca {
                yaml.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    ca.server_cert.display(),
                    ca.server_key.display()
                ));
            }
            if opts.htpasswd {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{USER}:{PASSWORD_BCRYPT}\n")).unwrap();
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: ferry-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            let config = dir.path().join("config.yml");
            std::fs::write(&config, yaml).unwrap();
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry (Debian package docker-registry)");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        port,
                        dir,
                        ca,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry did not listen on {port} within 15 s");
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("docker-registry would not start: {last_log}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A configuration for this registry: plain HTTP unless it has TLS, in which case its
    /// CA is trusted. Retries are quick so failing tests fail fast.
    pub fn config(&self) -> Config {
        let mut c = Config::new(self.host());
        c.insecure = self.ca.is_none();
        c.ca_cert = self.ca.as_ref().map(|ca| ca.ca_cert.clone());
        c.retry = quick_retries(3);
        c.proxy_from_env = false;
        c
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(20),
    }
}

/// A configuration for a mock server: plain HTTP on loopback, quick retries, short
/// timeouts.
pub fn mock_config(server: &MockServer) -> Config {
    let mut c = Config::new(server.host());
    c.insecure = true;
    c.retry = quick_retries(4);
    c.proxy_from_env = false;
    c.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_secs(10),
    };
    c
}

// ---------------------------------------------------------------------------------------
// Content

/// Deterministic pseudo-random bytes (xorshift), so large blobs need no fixtures.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256(data: &[u8]) -> Digest {
    Digest::of(data)
}

/// The body closure `upload_blob` wants, over bytes in memory.
pub fn reader_of(data: &[u8]) -> impl FnMut() -> std::io::Result<std::io::Cursor<Vec<u8>>> + '_ {
    move || Ok(std::io::Cursor::new(data.to_vec()))
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub fn image_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layer_descs: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"{OCI_LAYER}","digest":"{}","size":{}}}"#,
                sha256(l),
                l.len()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{}]}}"#,
        sha256(config),
        config.len(),
        layer_descs.join(",")
    )
    .into_bytes()
}

pub fn image_config() -> Vec<u8> {
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#
        .to_vec()
}

// ---------------------------------------------------------------------------------------
// The mock server

/// A request as the mock saw it.
#[derive(Clone, Debug)]
pub struct MockRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// What was read of the body (all of it, unless the reply cut it short).
    pub body: Vec<u8>,
    /// The port the request came to: tests with two servers tell them apart.
    pub server_port: u16,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self, key: &str) -> Vec<String> {
        let q = self.target.split_once('?').map_or("", |(_, q)| q);
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }

    pub fn content_length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the mock does with a request.
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Reads this many body bytes, then closes the connection with the rest unread (the
    /// kernel answers the client's further writes with a reset).
    ResetAfter(usize),
    /// Waits, then does the inner reply (a slow server).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes())
    }

    /// A registry error body: `{"errors":[{"code":…,"message":…}]}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#),
        )
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.into()));
        }
        self
    }

    pub fn body(mut self, data: &[u8]) -> Reply {
        if let Reply::Respond { body, .. } = &mut self {
            *body = data.to_vec();
        }
        self
    }
}

type Handler = dyn Fn(&MockRequest) -> Reply + Send + Sync;
type Early = dyn Fn(&MockRequest) -> Option<Reply> + Send + Sync;

/// A scripted HTTP/1.1 server on 127.0.0.1. For each request, an optional `early` hook
/// sees the method, target and headers before the body is read and may answer at once
/// (a refusal to a request that waits for `100-continue` then skips its body, as Go's
/// server and nginx do; a reset cuts it); otherwise the handler sees the whole request.
/// Every request is logged with the body as read. Stopped, its threads joined, on drop.
pub struct MockServer {
    port: u16,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<MockRequest>>>,
    accept: Option<JoinHandle<()>>,
    /// Open connections (a clone of each, to shut them on drop): a connection removes
    /// itself when it ends, so that its socket really closes then.
    open: Arc<Mutex<HashMap<u64, TcpStream>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl MockServer {
    pub fn start(handler: impl Fn(&MockRequest) -> Reply + Send + Sync + 'static) -> MockServer {
        MockServer::start_with_early(|_| None, handler)
    }

    pub fn start_with_early(
        early: impl Fn(&MockRequest) -> Option<Reply> + Send + Sync + 'static,
        handler: impl Fn(&MockRequest) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let open: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let early: Arc<Early> = Arc::new(early);
        let accept = {
            let (stop, log, open, threads) =
                (stop.clone(), log.clone(), open.clone(), threads.clone());
            std::thread::spawn(move || {
                for (id, stream) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let Ok(copy) = stream.try_clone() else {
                        continue;
                    };
                    let id = id as u64;
                    open.lock().unwrap().insert(id, copy);
                    let (handler, early, log, stop, open) = (
                        handler.clone(),
                        early.clone(),
                        log.clone(),
                        stop.clone(),
                        open.clone(),
                    );
                    let thread = std::thread::spawn(move || {
                        serve_connection(stream, port, &*early, &*handler, &log, &stop);
                        open.lock().unwrap().remove(&id);
                    });
                    threads.lock().unwrap().push(thread);
                }
            })
        };
        MockServer {
            port,
            stop,
            log,
            accept: Some(accept),
            open,
            threads,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<MockRequest> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path().starts_with(path_prefix))
            .count()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for stream in self.open.lock().unwrap().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn serve_connection(
    stream: TcpStream,
    port: u16,
    early: &Early,
    handler: &Handler,
    log: &Mutex<Vec<MockRequest>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::SeqCst) {
        // Request line and headers.
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let mut req = MockRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            server_port: port,
        };
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                req.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len = req.content_length();
        let expects_continue = req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let early_reply = early(&req);
        let body_read = early_reply.is_none();
        let mut reply = match early_reply {
            Some(r) => r,
            None => {
                if expects_continue && len > 0 {
                    let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                let mut data = vec![0u8; len];
                if reader.read_exact(&mut data).is_err() {
                    log.lock().unwrap().push(req);
                    return;
                }
                req.body = data;
                handler(&req)
            }
        };
        while let Reply::Delay(d, inner) = reply {
            std::thread::sleep(d);
            if stop.load(Ordering::SeqCst) {
                return;
            }
            reply = *inner;
        }
        match reply {
            Reply::ResetAfter(n) => {
                if !body_read {
                    if expects_continue {
                        let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    let mut body = vec![0u8; n.min(len)];
                    let _ = reader.read_exact(&mut body);
                    req.body = body;
                }
                log.lock().unwrap().push(req);
                // Unread data in the receive buffer makes the close send a reset.
                return;
            }
            Reply::Respond {
                status,
                headers,
                body,
            } => {
                let skip_body = !body_read && expects_continue && status >= 300 && len > 0;
                if !body_read && !skip_body {
                    if expects_continue && len > 0 {
                        let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    let mut data = vec![0u8; len];
                    if reader.read_exact(&mut data).is_err() {
                        log.lock().unwrap().push(req);
                        return;
                    }
                    req.body = data;
                }
                log.lock().unwrap().push(req.clone());
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                let mut has_length = false;
                for (k, v) in &headers {
                    has_length |= k.eq_ignore_ascii_case("content-length");
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if !has_length {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                if skip_body {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                let mut out = head.into_bytes();
                if req.method != "HEAD" {
                    out.extend_from_slice(&body);
                }
                if writer.write_all(&out).is_err() || skip_body {
                    return;
                }
            }
            Reply::Delay(..) => unreachable!(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// A tiny in-memory registry for the mock tests: upload sessions (monolithic and
/// chunked), blobs and manifests, enough to run a whole upload through scripted faults.
#[derive(Default)]
pub struct MiniRegistry {
    pub blobs: HashMap<String, Vec<u8>>,
    pub sessions: HashMap<String, Vec<u8>>,
    pub next_session: u32,
}

impl MiniRegistry {
    /// Handles the Distribution API requests a push makes (404 for anything else).
    pub fn handle(&mut self, req: &MockRequest) -> Reply {
        let path = req.path().to_owned();
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Reply::status(404);
        };
        if rest.is_empty() {
            return Reply::json(200, "{}");
        }
        if req.method == "POST" && rest.ends_with("/blobs/uploads/") {
            self.next_session += 1;
            let id = format!("s{}", self.next_session);
            self.sessions.insert(id.clone(), Vec::new());
            // Relative, with a query, as some registries answer.
            return Reply::status(202)
                .header("location", format!("/v2/{rest}{id}?_state=opaque-{id}"))
                .header("range", "0-0");
        }
        if let Some((_, id)) = rest.split_once("/blobs/uploads/") {
            let id = id.to_owned();
            let Some(data) = self.sessions.get_mut(&id) else {
                return Reply::error(
                    404,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown to registry",
                );
            };
            match req.method.as_str() {
                "PATCH" => {
                    data.extend_from_slice(&req.body);
                    let end = data.len().saturating_sub(1);
                    Reply::status(202)
                        .header("location", format!("/v2/{rest}"))
                        .header("range", format!("0-{end}"))
                }
                "PUT" => {
                    data.extend_from_slice(&req.body);
                    let data = self.sessions.remove(&id).unwrap();
                    let want = req.query("digest").pop().unwrap_or_default();
                    if sha256(&data).to_string() != want {
                        return Reply::error(
                            400,
                            "DIGEST_INVALID",
                            "provided digest did not match uploaded content",
                        );
                    }
                    self.blobs.insert(want.clone(), data);
                    Reply::status(201).header("docker-content-digest", want)
                }
                "DELETE" => {
                    self.sessions.remove(&id);
                    Reply::status(204)
                }
                _ => Reply::status(405),
            }
        } else if let Some((_, digest)) = rest.split_once("/blobs/") {
            match self.blobs.get(digest) {
                Some(b) => Reply::status(200)
                    .header("content-length", b.len().to_string())
                    .header("docker-content-digest", digest),
                None => Reply::status(404),
            }
        } else {
            Reply::status(404)
        }
    }
}
