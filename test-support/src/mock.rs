//! A scripted HTTP/1.1 server on 127.0.0.1 ([`MockServer`]), for what a real registry will
//! not do on demand (202 mounts, 416, 429, 5xx storms, garbage, tokens, slowness,
//! redirects, resets), and a tiny in-memory registry to script faults around
//! ([`MiniRegistry`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::registry::sha256_hex;

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
    /// Sends the inner reply's status, headers and `Content-Length` of the whole body, then
    /// only this many bytes of the body, and closes the connection: a download that breaks
    /// off mid-body.
    CutAfter(usize, Box<Reply>),
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
        let mut cut = None;
        if let Reply::CutAfter(n, inner) = reply {
            cut = Some(n);
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
                    out.extend_from_slice(&body[..cut.unwrap_or(body.len()).min(body.len())]);
                }
                // `Connection: close` in the reply closes after it: with a Content-Length
                // larger than the body, a body cut short.
                let close = headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
                });
                if writer.write_all(&out).is_err() || skip_body || close {
                    return;
                }
                if cut.is_some() {
                    let _ = writer.flush();
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
            }
            Reply::Delay(..) | Reply::CutAfter(..) => unreachable!(),
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
                    if sha256_hex(&data) != want {
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
