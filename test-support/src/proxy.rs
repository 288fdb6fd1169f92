//! A forwarding HTTP/1.1 proxy on 127.0.0.1 in front of a real registry ([`Proxy`]): what
//! the pull tests point ferry at instead of the registry, to count what it fetches and to
//! break the link on demand — flip a byte of a blob, cut a blob response short with a
//! reset, slow everything down, go down and come back, or demand Bearer tokens from a
//! token server of its own while the registry behind it runs without auth.
//!
//! Bodies are streamed both ways, never held whole (blobs are large); `Range` and
//! `Content-Range` pass through untouched; a `Location` that points at the registry is
//! rewritten to point at the proxy, so upload sessions and redirects come back through
//! it. Each request goes to the registry on a connection of its own (`Connection: close`
//! upstream), while the client's connection is kept alive when its framing allows.
//!
//! Every knob is switchable while a test runs, from any thread, through the [`Proxy`].

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::mock::percent_decode;

/// The `service` the proxy's token server names in its challenges.
pub const TOKEN_SERVICE: &str = "test-registry";
/// What the token server says a token lives for (`expires_in`, seconds). Tests that need a
/// token to run out call [`Proxy::expire_tokens`] instead of waiting.
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// A request head is refused past this size (a registry's are a few hundred bytes).
const MAX_HEAD: usize = 64 * 1024;
/// How much of a body is moved at once when nothing throttles.
const PIECE: usize = 64 * 1024;

/// How the proxy starts; every setting can be changed later through the [`Proxy`].
#[derive(Default, Clone)]
pub struct ProxyOptions {
    /// Demand Bearer tokens issued by the proxy's `/token` against these Basic credentials
    /// ([`Proxy::require_bearer`]).
    pub bearer: Option<(String, String)>,
    /// Response bodies, all connections together, at most this many bytes per second
    /// ([`Proxy::throttle`]).
    pub bytes_per_second: Option<u64>,
}

/// Which blob responses a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobMatch {
    /// Every `GET /v2/<name>/blobs/<digest>` of this digest (`sha256:<hex>`), until
    /// [`Proxy::clear_faults`]: the registry holds bad bytes, every fetch gets them.
    Digest(String),
    /// Only the N-th blob GET (1-based, counted since the proxy started, whatever the
    /// digest and status): a one-off fault on the wire.
    NthGet(usize),
    /// Only the next blob GET from now on (turned into `NthGet` when set).
    NextGet,
}

/// A request as the proxy saw it and what it answered.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The client's headers, as sent.
    pub headers: Vec<(String, String)>,
    /// The status the client got; `None` while in flight, or when it got no answer (the
    /// proxy was down, or the registry could not be reached).
    pub status: Option<u16>,
    /// Response body bytes passed to the client.
    pub body_bytes: u64,
    /// The blob GET's number ([`BlobMatch::NthGet`]), for blob GETs.
    pub blob_get: Option<usize>,
    /// One byte of the response body was flipped.
    pub flipped: bool,
    /// The response was cut short with a reset.
    pub cut: bool,
}

impl ProxyRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The `Range` asked for, if any.
    pub fn range(&self) -> Option<&str> {
        self.header("range")
    }

    /// The first byte asked for: `N` of `Range: bytes=N-`, 0 without a Range.
    pub fn range_start(&self) -> u64 {
        self.range()
            .and_then(|r| r.trim().strip_prefix("bytes="))
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// `sha256:<hex>` of a `GET`/`HEAD /v2/<name>/blobs/<digest>`.
    pub fn blob_digest(&self) -> Option<&str> {
        blob_digest(self.path())
    }
}

/// The forwarding proxy. Stopped, its threads joined and its connections shut, on drop.
pub struct Proxy {
    state: Arc<State>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    /// `127.0.0.1:PORT` of the registry.
    upstream: String,
    port: u16,
    log: Mutex<Vec<ProxyRequest>>,
    down: AtomicBool,
    stopping: AtomicBool,
    /// Bytes per second, 0 for no limit.
    rate: AtomicU64,
    /// When the next throttled byte may go.
    pacer: Mutex<Instant>,
    blob_gets: AtomicUsize,
    bytes_sent: AtomicU64,
    faults: Mutex<Faults>,
    bearer: Mutex<Option<TokenServer>>,
    /// Open client connections (a clone of each, to shut on `set_down` and drop).
    open: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct Faults {
    flips: Vec<BlobMatch>,
    cuts: Vec<(BlobMatch, u64)>,
}

struct TokenServer {
    user: String,
    password: String,
    /// token → the scopes granted: (resource, actions).
    tokens: HashMap<String, Vec<(String, Vec<String>)>>,
    issued: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test thread that panicked while holding it must not hide its own message.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    /// A proxy on 127.0.0.1 (a free port) forwarding to `upstream`, `host:port` of a
    /// plain-HTTP registry.
    pub fn start(upstream: &str, opts: ProxyOptions) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            port,
            log: Mutex::default(),
            down: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            rate: AtomicU64::new(opts.bytes_per_second.unwrap_or(0)),
            pacer: Mutex::new(Instant::now()),
            blob_gets: AtomicUsize::new(0),
            bytes_sent: AtomicU64::new(0),
            faults: Mutex::default(),
            bearer: Mutex::new(None),
            open: Mutex::default(),
            next_conn: AtomicU64::new(0),
            threads: Mutex::default(),
        });
        let proxy = Proxy {
            accept: Mutex::new(Some(spawn_accept(state.clone(), listener))),
            state,
        };
        if let Some((user, password)) = &opts.bearer {
            proxy.require_bearer(user, password);
        }
        proxy
    }

    pub fn port(&self) -> u16 {
        self.state.port
    }

    /// `127.0.0.1:PORT`: what a test puts in a registries.conf `location` or a reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.state.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The registry behind it.
    pub fn upstream(&self) -> &str {
        &self.state.upstream
    }

    /// Every request so far, in the order they came (the token server's too).
    pub fn requests(&self) -> Vec<ProxyRequest> {
        lock(&self.state.log).clone()
    }

    /// How many requests had this method and a path starting with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        lock(&self.state.log)
            .iter()
            .filter(|r| r.method == method && r.path().starts_with(path_prefix))
            .count()
    }

    /// The `GET`s of one blob, whatever the repository, in order.
    pub fn blob_gets(&self, digest: &str) -> Vec<ProxyRequest> {
        lock(&self.state.log)
            .iter()
            .filter(|r| r.method == "GET" && r.blob_digest() == Some(digest))
            .cloned()
            .collect()
    }

    /// Response body bytes passed to clients so far, all requests together (counted as
    /// they go: a test waits on it to kill a client mid-blob).
    pub fn bytes_sent(&self) -> u64 {
        self.state.bytes_sent.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` response body bytes have been passed to clients in all
    /// ([`Self::bytes_sent`]); false at the deadline.
    pub fn wait_for_bytes(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.bytes_sent() < n {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Forgets the requests seen so far (the blob GET numbering goes on).
    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }

    /// Down: new connections are refused (the port is closed, as when the registry's
    /// process is gone) and open ones are reset, mid-body too. Up again: the same port
    /// listens again.
    pub fn set_down(&self, down: bool) {
        let mut accept = lock(&self.accept);
        if down {
            if self.state.down.swap(true, Ordering::SeqCst) {
                return;
            }
            // Wake the accept loop, which sees the flag and drops the listener.
            let _ = TcpStream::connect(("127.0.0.1", self.state.port));
            if let Some(t) = accept.take() {
                let _ = t.join();
            }
            reset_all(&self.state);
        } else {
            if !self.state.down.load(Ordering::SeqCst) {
                return;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let listener = loop {
                match TcpListener::bind(("127.0.0.1", self.state.port)) {
                    Ok(l) => break l,
                    Err(e) if Instant::now() > deadline => {
                        panic!("the proxy cannot listen on {} again: {e}", self.host())
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            self.state.down.store(false, Ordering::SeqCst);
            *accept = Some(spawn_accept(self.state.clone(), listener));
        }
    }

    /// Response bodies, all connections together, at most `bytes_per_second`; `None`
    /// for full speed. Takes effect at once, mid-body too.
    pub fn throttle(&self, bytes_per_second: Option<u64>) {
        self.state
            .rate
            .store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
        *lock(&self.state.pacer) = Instant::now();
    }

    /// Flips one byte (XOR 0x01) of the matching blob responses (200 or 206): for
    /// [`BlobMatch::Digest`] the byte at the middle of the blob (offset size / 2, so every
    /// range that covers it carries it, as if the registry stored it wrong); for a
    /// one-off match the middle byte of that response's body.
    pub fn flip_byte(&self, which: BlobMatch) {
        let which = self.resolve(which);
        lock(&self.state.faults).flips.push(which);
    }

    /// Cuts the matching blob responses after `after` body bytes with a connection reset
    /// (the headers promised more). With [`BlobMatch::Digest`] every response of that
    /// blob is cut after `after` bytes of its own body, so a client that resumes with
    /// `Range` still gets there, `after` bytes at a time, and one that starts over never
    /// does.
    pub fn cut_blob(&self, which: BlobMatch, after: u64) {
        let which = self.resolve(which);
        lock(&self.state.faults).cuts.push((which, after));
    }

    /// Removes every flip and cut.
    pub fn clear_faults(&self) {
        *lock(&self.state.faults) = Faults::default();
    }

    fn resolve(&self, which: BlobMatch) -> BlobMatch {
        match which {
            BlobMatch::NextGet => {
                BlobMatch::NthGet(self.state.blob_gets.load(Ordering::SeqCst) + 1)
            }
            other => other,
        }
    }

    /// From now on every `/v2/` request needs `Authorization: Bearer <token>` with a token
    /// that the proxy's own `GET /token?service=…&scope=…` issued against Basic
    /// `user:password`, granting the request's scope (`repository:<name>:pull` to read,
    /// `…:push` to write). Otherwise: 401 with
    /// `WWW-Authenticate: Bearer realm="http://127.0.0.1:PORT/token",service="test-registry"`
    /// (and the `scope` the request needs), as distribution's token auth answers. The
    /// client's `Authorization` is not passed to the registry.
    pub fn require_bearer(&self, user: &str, password: &str) {
        *lock(&self.state.bearer) = Some(TokenServer {
            user: user.to_owned(),
            password: password.to_owned(),
            tokens: HashMap::new(),
            issued: 0,
        });
    }

    /// Back to passing every request through (the client's `Authorization` too).
    pub fn allow_anonymous(&self) {
        *lock(&self.state.bearer) = None;
    }

    /// Every token issued so far stops working (the next request with one gets 401
    /// `invalid_token`), as when tokens run out.
    pub fn expire_tokens(&self) {
        if let Some(t) = lock(&self.state.bearer).as_mut() {
            t.tokens.clear();
        }
    }

    /// How many tokens `/token` has issued.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.state.bearer).as_ref().map_or(0, |t| t.issued)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.state.port));
        if let Some(t) = lock(&self.accept).take() {
            let _ = t.join();
        }
        reset_all(&self.state);
        let threads = std::mem::take(&mut *lock(&self.state.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Shuts every open client connection, with a reset where the socket still allows.
fn reset_all(state: &State) {
    for s in lock(&state.open).values() {
        set_reset_on_close(s);
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// `SO_LINGER` 0: closing the socket sends a reset instead of a FIN, as a crash or a
/// middlebox dropping the connection would.
fn set_reset_on_close(s: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(s, Some(Duration::ZERO));
}

fn spawn_accept(state: Arc<State>, listener: TcpListener) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if state.stopping.load(Ordering::SeqCst) || state.down.load(Ordering::SeqCst) {
                if let Ok(s) = stream {
                    set_reset_on_close(&s);
                }
                break;
            }
            let Ok(stream) = stream else { continue };
            let Ok(copy) = stream.try_clone() else {
                continue;
            };
            let id = state.next_conn.fetch_add(1, Ordering::SeqCst);
            lock(&state.open).insert(id, copy);
            let st = state.clone();
            let thread = std::thread::spawn(move || {
                serve_connection(&st, stream);
                // Dropping the last clone closes the socket (with a reset after a cut).
                lock(&st.open).remove(&id);
            });
            let mut threads = lock(&state.threads);
            threads.retain(|t| !t.is_finished());
            threads.push(thread);
        }
        // The listener is dropped here: the port refuses connections until `set_down(false)`.
    })
}

// ---------------------------------------------------------------------------------------
// One client connection

struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn body(&self) -> Framing {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            Framing::Chunked
        } else {
            match self.header("content-length").and_then(|v| v.parse().ok()) {
                Some(0) | None => Framing::None,
                Some(n) => Framing::Length(n),
            }
        }
    }

    fn wants_close(&self) -> bool {
        self.version == "HTTP/1.0"
            || self
                .header("connection")
                .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn blob_digest(path: &str) -> Option<&str> {
    let (_, rest) = path.rsplit_once("/blobs/")?;
    (path.starts_with("/v2/") && rest.starts_with("sha256:") && !rest.contains('/')).then_some(rest)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What became of a request: whether the client connection can take another.
enum Next {
    KeepAlive,
    Close,
}

fn serve_connection(state: &State, client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(PIECE, client);
    loop {
        let head = match read_head(&mut reader, true) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(_) => {
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
        };
        if state.down.load(Ordering::SeqCst) {
            set_reset_on_close(&writer);
            return;
        }
        let index = {
            let mut log = lock(&state.log);
            log.push(ProxyRequest {
                method: head.method.clone(),
                target: head.target.clone(),
                headers: head.headers.clone(),
                status: None,
                body_bytes: 0,
                blob_get: None,
                flipped: false,
                cut: false,
            });
            log.len() - 1
        };
        let next = handle(state, &head, index, &mut reader, &mut writer);
        if matches!(next, Next::Close) || head.wants_close() {
            let _ = writer.flush();
            return;
        }
    }
}

/// Updates this request's log entry (the log may have been cleared meanwhile).
fn record(state: &State, index: usize, target: &str, f: impl FnOnce(&mut ProxyRequest)) {
    let mut log = lock(&state.log);
    if let Some(r) = log.get_mut(index).filter(|r| r.target == target) {
        f(r);
    }
}

fn handle(
    state: &State,
    head: &Head,
    index: usize,
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
) -> Next {
    let body = head.body();
    // The token server and the Bearer check answer themselves; the registry sees nothing.
    let own_answer = {
        let mut bearer = lock(&state.bearer);
        match bearer.as_mut() {
            Some(ts) if head.path() == "/token" => Some(ts.token(state, head)),
            Some(ts) if head.path().starts_with("/v2") => ts.check(state, head),
            _ => None,
        }
    };
    if let Some((status, headers, text)) = own_answer {
        record(state, index, &head.target, |r| r.status = Some(status));
        // A body the client sends anyway is read and dropped, so that closing does not
        // reset the connection before the client has read the answer; one that waits for
        // `100 Continue` is never asked for.
        let waits = head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let mut next = Next::KeepAlive;
        if body != Framing::None {
            if waits {
                next = Next::Close;
            } else if relay_body(reader, body, |_| Ok(())).is_err() {
                return Next::Close;
            }
        }
        let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            text.len()
        ));
        if matches!(next, Next::Close) {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        // A HEAD answer has the length of the body it would have, but no body.
        if head.method != "HEAD" {
            out.push_str(&text);
        }
        if client.write_all(out.as_bytes()).is_err() {
            return Next::Close;
        }
        return next;
    }
    forward(state, head, body, index, reader, client)
}

fn forward(
    state: &State,
    head: &Head,
    body: Framing,
    index: usize,
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
) -> Next {
    let bearer_mode = lock(&state.bearer).is_some();
    let upstream = state
        .upstream
        .parse()
        .ok()
        .and_then(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok());
    let Some(up) = upstream else {
        record(state, index, &head.target, |r| r.status = Some(502));
        let msg = format!("the proxy cannot reach the registry at {}", state.upstream);
        let _ = client.write_all(
            format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )
            .as_bytes(),
        );
        return Next::Close;
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut up_writer) = up.try_clone() else {
        return Next::Close;
    };
    let mut up_reader = BufReader::with_capacity(PIECE, up);

    // The request, to the registry: its own Host, one request per connection, no Expect
    // (the proxy says `100 Continue` to the client itself).
    let mut out = format!("{} {} {}\r\n", head.method, head.target, head.version);
    out.push_str(&format!("Host: {}\r\n", state.upstream));
    let hop = hop_by_hop(&head.headers);
    for (k, v) in &head.headers {
        let drop = hop.iter().any(|h| k.eq_ignore_ascii_case(h))
            || k.eq_ignore_ascii_case("host")
            || k.eq_ignore_ascii_case("expect")
            || (bearer_mode && k.eq_ignore_ascii_case("authorization"));
        if !drop {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    if head
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        && body != Framing::None
        && client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
    {
        return Next::Close;
    }
    let mut request_whole = true;
    if up_writer.write_all(out.as_bytes()).is_err() {
        request_whole = false;
    } else if body != Framing::None {
        // relay_body hands over data only: a chunked body is chunked again on the way.
        let sent = relay_body(reader, body, |data| {
            if body == Framing::Chunked {
                up_writer.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
                up_writer.write_all(data)?;
                up_writer.write_all(b"\r\n")
            } else {
                up_writer.write_all(data)
            }
        });
        match sent {
            Ok(_) => {
                if body == Framing::Chunked && up_writer.write_all(b"0\r\n\r\n").is_err() {
                    request_whole = false;
                }
            }
            // The client's body broke off: nothing sensible can be answered.
            Err(RelayError::Read(_)) => return Next::Close,
            // The registry stopped reading (it may have answered already).
            Err(RelayError::Write(_)) => request_whole = false,
        }
    }
    let _ = up_writer.flush();

    // The answer: skip interim 1xx, then the head, rewritten.
    let resp = loop {
        match read_head(&mut up_reader, false) {
            Ok(Some(h)) if h.method.starts_with("HTTP/") => {
                let status: u16 = h.target.parse().unwrap_or(0);
                if (100..200).contains(&status) {
                    continue;
                }
                break Some((status, h));
            }
            _ => break None,
        }
    };
    let Some((status, resp)) = resp else {
        record(state, index, &head.target, |r| r.status = Some(502));
        let msg = format!(
            "the registry at {} closed the connection without an answer",
            state.upstream
        );
        let _ = client.write_all(
            format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )
            .as_bytes(),
        );
        return Next::Close;
    };
    let framing = if head.method == "HEAD"
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        Framing::None
    } else if header(&resp.headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        Framing::Chunked
    } else if let Some(n) = header(&resp.headers, "content-length").and_then(|v| v.parse().ok()) {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let keep = request_whole && framing != Framing::UntilClose && !head.wants_close();
    let mut out = format!("{} {} {}\r\n", resp.method, resp.target, resp.version);
    let hop = hop_by_hop(&resp.headers);
    let upstream_base = format!("http://{}", state.upstream);
    for (k, v) in &resp.headers {
        if hop.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            continue;
        }
        if k.eq_ignore_ascii_case("location") {
            if let Some(rest) = v.strip_prefix(&upstream_base) {
                out.push_str(&format!("{k}: http://127.0.0.1:{}{rest}\r\n", state.port));
                continue;
            }
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    record(state, index, &head.target, |r| r.status = Some(status));

    // Faults, for blob GETs that carry the blob.
    let mut flip_at: Option<u64> = None;
    let mut cut_at: Option<u64> = None;
    if head.method == "GET" && blob_digest(head.path()).is_some() {
        let n = state.blob_gets.fetch_add(1, Ordering::SeqCst) + 1;
        record(state, index, &head.target, |r| r.blob_get = Some(n));
        if status == 200 || status == 206 {
            let digest = blob_digest(head.path()).unwrap_or_default();
            let len = match framing {
                Framing::Length(l) => Some(l),
                _ => None,
            };
            // (first byte's offset in the blob, the blob's size)
            let (start, total) = if status == 206 {
                content_range(header(&resp.headers, "content-range"))
                    .unwrap_or((0, len.unwrap_or(0)))
            } else {
                (0, len.unwrap_or(0))
            };
            let faults = lock(&state.faults);
            for f in &faults.flips {
                match f {
                    BlobMatch::Digest(d) if d == digest => {
                        let mid = total / 2;
                        if mid >= start && len.is_none_or(|l| mid < start + l) {
                            flip_at = Some(mid - start);
                        }
                    }
                    BlobMatch::NthGet(k) if *k == n => flip_at = Some(len.unwrap_or(0) / 2),
                    _ => {}
                }
            }
            for (f, after) in &faults.cuts {
                let hit = match f {
                    BlobMatch::Digest(d) => d == digest,
                    BlobMatch::NthGet(k) => *k == n,
                    BlobMatch::NextGet => false,
                };
                if hit {
                    cut_at = Some(cut_at.map_or(*after, |c| c.min(*after)));
                }
            }
        }
    }

    if client.write_all(out.as_bytes()).is_err() {
        return Next::Close;
    }
    if framing == Framing::None {
        return if keep { Next::KeepAlive } else { Next::Close };
    }
    let mut passed: u64 = 0;
    let mut flipped = false;
    let mut cut = false;
    let relayed = relay_body(&mut up_reader, framing, |data| {
        let mut data = std::borrow::Cow::Borrowed(data);
        if let Some(at) = flip_at {
            if at >= passed && at < passed + data.len() as u64 {
                let i = usize::try_from(at - passed).expect("offset in a piece");
                data.to_mut()[i] ^= 0x01;
                flipped = true;
            }
        }
        let mut piece: &[u8] = &data;
        if let Some(c) = cut_at {
            let room = c.saturating_sub(passed);
            if (piece.len() as u64) >= room {
                piece = &piece[..usize::try_from(room).expect("fits")];
                cut = true;
            }
        }
        for part in piece.chunks(pace_piece(state)) {
            pace(state, part.len());
            if state.down.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "proxy down"));
            }
            if framing == Framing::Chunked {
                client.write_all(format!("{:x}\r\n", part.len()).as_bytes())?;
                client.write_all(part)?;
                client.write_all(b"\r\n")?;
            } else {
                client.write_all(part)?;
            }
            passed += part.len() as u64;
            state
                .bytes_sent
                .fetch_add(part.len() as u64, Ordering::SeqCst);
        }
        if cut {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut"));
        }
        Ok(())
    });
    record(state, index, &head.target, |r| {
        r.body_bytes = passed;
        r.flipped = flipped;
        r.cut = cut;
    });
    if cut {
        let _ = client.flush();
        set_reset_on_close(client);
        return Next::Close;
    }
    match relayed {
        Ok(_) => {
            if framing == Framing::Chunked && client.write_all(b"0\r\n\r\n").is_err() {
                return Next::Close;
            }
            if keep {
                Next::KeepAlive
            } else {
                Next::Close
            }
        }
        Err(_) => {
            // The registry broke off (or the client went): the client must see a short
            // body, not a complete one.
            set_reset_on_close(client);
            Next::Close
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus those
/// the `Connection` header names.
fn hop_by_hop(headers: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(v) = header(headers, "connection") {
        names.extend(
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty() && s != "close"),
        );
    }
    names
}

/// `bytes a-b/total` → (a, total).
fn content_range(v: Option<&str>) -> Option<(u64, u64)> {
    let rest = v?.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, _) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, total.trim().parse().ok()?))
}

fn pace_piece(state: &State) -> usize {
    match state.rate.load(Ordering::SeqCst) {
        0 => PIECE,
        // About 20 writes a second, so a throttled transfer moves smoothly.
        rate => usize::try_from((rate / 20).clamp(1, 16 * 1024)).unwrap_or(1),
    }
}

/// Waits until `n` more bytes may go at the current rate (shared by all connections).
fn pace(state: &State, n: usize) {
    let rate = state.rate.load(Ordering::SeqCst);
    if rate == 0 {
        return;
    }
    let now = Instant::now();
    let start = {
        let mut next = lock(&state.pacer);
        let start = (*next).max(now);
        *next = start + Duration::from_secs_f64(n as f64 / rate as f64);
        start
    };
    if start > now {
        std::thread::sleep(start - now);
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 framing

enum RelayError {
    Read(#[allow(dead_code)] io::Error),
    Write(#[allow(dead_code)] io::Error),
}

/// A request or status line and headers. `None` on a clean end before any byte.
/// For a response, `method` holds the version, `target` the status and `version` the
/// reason.
fn read_head(r: &mut BufReader<TcpStream>, request: bool) -> io::Result<Option<Head>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut total = 0;
    let mut line = String::new();
    // Blank lines before a request are allowed (RFC 9112 §2.2).
    loop {
        line.clear();
        let n = r.by_ref().take(MAX_HEAD as u64).read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if !line.trim().is_empty() {
            break;
        }
        if total > MAX_HEAD {
            return Err(bad("too many blank lines"));
        }
    }
    let first = line.trim_end().to_owned();
    let (a, rest) = first
        .split_once(' ')
        .ok_or_else(|| bad("no request line"))?;
    let (b, c) = match rest.split_once(' ') {
        Some((b, c)) => (b.to_owned(), c.to_owned()),
        None if !request => (rest.to_owned(), String::new()),
        None => return Err(bad("no HTTP version")),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = r.by_ref().take(MAX_HEAD as u64).read_line(&mut line)?;
        if n == 0 {
            return Err(bad("the head ended early"));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad("head too large"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Some(Head {
        method: a.to_owned(),
        target: b,
        version: c,
        headers,
    }))
}

/// Moves a body's data (its framing undone) from `from` to `sink`, a piece at a time.
fn relay_body(
    from: &mut BufReader<TcpStream>,
    framing: Framing,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<u64, RelayError> {
    let mut moved = 0u64;
    let mut copy =
        |from: &mut BufReader<TcpStream>, mut left: Option<u64>| -> Result<(), RelayError> {
            loop {
                if left == Some(0) {
                    return Ok(());
                }
                let buf = from.fill_buf().map_err(RelayError::Read)?;
                if buf.is_empty() {
                    return match left {
                        None => Ok(()),
                        Some(_) => Err(RelayError::Read(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "body ended early",
                        ))),
                    };
                }
                let n = left.map_or(buf.len(), |l| {
                    buf.len().min(usize::try_from(l).unwrap_or(usize::MAX))
                });
                sink(&buf[..n]).map_err(RelayError::Write)?;
                from.consume(n);
                moved += n as u64;
                left = left.map(|l| l - n as u64);
            }
        };
    match framing {
        Framing::None => {}
        Framing::Length(n) => copy(from, Some(n))?,
        Framing::UntilClose => copy(from, None)?,
        Framing::Chunked => loop {
            let mut line = String::new();
            from.by_ref()
                .take(4096)
                .read_line(&mut line)
                .map_err(RelayError::Read)?;
            let size = line.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| {
                RelayError::Read(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))
            })?;
            if size == 0 {
                // Trailers, up to the blank line; dropped.
                loop {
                    line.clear();
                    let n = from
                        .by_ref()
                        .take(4096)
                        .read_line(&mut line)
                        .map_err(RelayError::Read)?;
                    if n == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            copy(from, Some(size))?;
            let mut crlf = [0u8; 2];
            from.read_exact(&mut crlf).map_err(RelayError::Read)?;
        },
    }
    Ok(moved)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        502 => "Bad Gateway",
        _ => "Whatever",
    }
}

// ---------------------------------------------------------------------------------------
// The token server

type Answer = (u16, Vec<(String, String)>, String);

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string()
}

/// The repository and the action a `/v2/…` request needs; `None` for `/v2/` itself.
fn needed_scope(method: &str, path: &str) -> Option<(String, &'static str)> {
    let rest = path.strip_prefix("/v2/")?;
    let action = if method == "GET" || method == "HEAD" {
        "pull"
    } else {
        "push"
    };
    let name = if let Some(n) = rest.strip_suffix("/tags/list") {
        n
    } else if let Some((n, _)) = rest.rsplit_once("/blobs/uploads") {
        n
    } else {
        let mut parts = rest.rsplitn(3, '/');
        let (_reference, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
        if kind != "manifests" && kind != "blobs" {
            return None;
        }
        name
    };
    (!name.is_empty()).then(|| (name.to_owned(), action))
}

impl TokenServer {
    /// `GET /token?service=…&scope=…` with Basic credentials: a token for the scopes.
    fn token(&mut self, state: &State, head: &Head) -> Answer {
        if head.method != "GET" {
            return (
                405,
                Vec::new(),
                error_body("UNSUPPORTED", "the test token server answers GET only"),
            );
        }
        let basic = head
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        let expected = format!("{}:{}", self.user, self.password);
        if basic.as_deref() != Some(expected.as_str()) {
            return (
                401,
                vec![(
                    "WWW-Authenticate".to_owned(),
                    "Basic realm=\"test-token-server\"".to_owned(),
                )],
                error_body("UNAUTHORIZED", "authentication required"),
            );
        }
        let query = head.target.split_once('?').map_or("", |(_, q)| q);
        let mut granted = Vec::new();
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if k != "scope" {
                continue;
            }
            for scope in percent_decode(v).split_whitespace() {
                if let Some((resource, actions)) = scope.rsplit_once(':') {
                    granted.push((
                        resource.to_owned(),
                        actions.split(',').map(str::to_owned).collect(),
                    ));
                }
            }
        }
        self.issued += 1;
        let token = format!("test-token-{}-{}", state.port, self.issued);
        self.tokens.insert(token.clone(), granted);
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECS,
            "issued_at": "2026-01-01T00:00:00Z",
        })
        .to_string();
        (200, Vec::new(), body)
    }

    /// A `/v2/…` request: `None` to pass it on, or the 401 it gets.
    fn check(&self, state: &State, head: &Head) -> Option<Answer> {
        let needed = needed_scope(&head.method, head.path());
        let realm = format!("http://127.0.0.1:{}/token", state.port);
        let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{TOKEN_SERVICE}\"");
        if let Some((name, action)) = &needed {
            let actions = if *action == "push" {
                "pull,push"
            } else {
                "pull"
            };
            challenge.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
        }
        let presented = head
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let error = match presented.map(|t| self.tokens.get(t)) {
            None => None,
            Some(None) => Some("invalid_token"),
            Some(Some(granted)) => match &needed {
                None => return None,
                Some((name, action)) => {
                    let resource = format!("repository:{name}");
                    if granted
                        .iter()
                        .any(|(r, a)| *r == resource && a.iter().any(|x| x == action || x == "*"))
                    {
                        return None;
                    }
                    Some("insufficient_scope")
                }
            },
        };
        if let Some(e) = error {
            challenge.push_str(&format!(",error=\"{e}\""));
        }
        Some((
            401,
            vec![
                ("WWW-Authenticate".to_owned(), challenge),
                (
                    "Docker-Distribution-API-Version".to_owned(),
                    "registry/2.0".to_owned(),
                ),
            ],
            error_body("UNAUTHORIZED", "authentication required"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_requests() {
        assert_eq!(needed_scope("GET", "/v2/"), None);
        assert_eq!(
            needed_scope("GET", "/v2/openshift4/ose-x/manifests/v4.6"),
            Some(("openshift4/ose-x".into(), "pull"))
        );
        assert_eq!(
            needed_scope("HEAD", "/v2/a/b/blobs/sha256:00"),
            Some(("a/b".into(), "pull"))
        );
        assert_eq!(
            needed_scope("POST", "/v2/a/blobs/uploads/"),
            Some(("a".into(), "push"))
        );
        assert_eq!(
            needed_scope("PATCH", "/v2/a/b/blobs/uploads/1234-abcd"),
            Some(("a/b".into(), "push"))
        );
        assert_eq!(
            needed_scope("GET", "/v2/a/b/tags/list"),
            Some(("a/b".into(), "pull"))
        );
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(Some("bytes 100-199/1000")), Some((100, 1000)));
        assert_eq!(content_range(Some("bytes */1000")), None);
        assert_eq!(content_range(None), None);
    }

    #[test]
    fn blob_digests_of_paths() {
        assert_eq!(blob_digest("/v2/a/b/blobs/sha256:abc"), Some("sha256:abc"));
        assert_eq!(blob_digest("/v2/a/blobs/uploads/x"), None);
        assert_eq!(blob_digest("/v2/a/manifests/sha256:abc"), None);
    }
}
