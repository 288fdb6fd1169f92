//! Fault injection for the end-to-end tests: a TCP proxy between
//! ferry and the registry that drops, cuts, refuses or slows connections; tmpfs mounts
//! that fill up; a background process that can be signalled (the test kit's [`Proc`] and
//! [`StoppedAt`], re-exported); and the checks every fault
//! test ends with (what a cluster could pull is whole, and at the end it is exactly the
//! bundle's images).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use test_support::process::{Proc, StoppedAt};

use crate::registry::{skopeo_digest, Registry};
use crate::{assert_ok, json, run, unpack, OutputExt};

const SEQ: Ordering = Ordering::SeqCst;

// ---------------------------------------------------------------------------------------
// Mirrors

/// `fixtures/generate.py bench --out <dir>/bench --size SIZE` (an OCI layout, about 40
/// images in 10 repositories); returns the mirror directory.
pub fn bench_mirror(dir: &Path, size: &str) -> PathBuf {
    let mirror = dir.join("bench");
    let gen = run(
        "python3",
        [
            crate::workspace().join("fixtures/generate.py").as_os_str(),
            OsStr::new("bench"),
            OsStr::new("--out"),
            mirror.as_os_str(),
            OsStr::new("--size"),
            OsStr::new(size),
        ],
    );
    assert_ok(&gen, "fixtures/generate.py bench");
    mirror
}

// ---------------------------------------------------------------------------------------
// What the registry must hold

/// The repository path an image goes to under the `--to` prefix: its original reference's
/// path (without registry, tag or digest), as `replay::mapping::SourceRef` reads it.
pub fn source_path(source: &str) -> String {
    let rest = source.split_once('@').map_or(source, |(r, _)| r);
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let name = match rest[slash..].rfind(':') {
        Some(i) => &rest[..slash + i],
        None => rest,
    };
    match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            path.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// `PREFIX/<path>:<tag> → manifest digest` for every tagged image of the bundle in `vols`,
/// as `ferry-unpack inspect --json` (JSON Lines, folded by [`crate::json`]) lists them.
pub fn expected_images(vols: &Path, trust: &Path, prefix: &str) -> BTreeMap<String, String> {
    let out = unpack([
        OsStr::new("inspect"),
        vols.as_os_str(),
        OsStr::new("--trust"),
        trust.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_ok(&out, "ferry-unpack inspect --json");
    let v = json(&out);
    let mut map = BTreeMap::new();
    for img in v["images"].as_array().expect("inspect lists images") {
        let path = match img["source"].as_str() {
            Some(s) => source_path(s),
            None => img["repository"]
                .as_str()
                .expect("image repository")
                .to_owned(),
        };
        let digest = img["digest"].as_str().expect("image digest").to_owned();
        for tag in img["tags"].as_array().expect("image tags") {
            map.insert(
                format!("{prefix}/{path}:{}", tag.as_str().expect("tag")),
                digest.clone(),
            );
        }
    }
    assert!(
        !map.is_empty(),
        "the bundle has no tagged image\n{}",
        out.dump()
    );
    map
}

/// The repositories of `repo:tag` keys.
pub fn repositories(expected: &BTreeMap<String, String>) -> BTreeSet<String> {
    expected
        .keys()
        .map(|k| k.rsplit_once(':').expect("repo:tag").0.to_owned())
        .collect()
}

/// Panics unless every tag in the registry is a complete image (manifest, children,
/// config, layers all there) with the digest the bundle gives it; returns the tags there are.
#[track_caller]
pub fn assert_tags_whole(
    reg: &Registry,
    expected: &BTreeMap<String, String>,
    when: &str,
) -> BTreeSet<String> {
    let tagged = reg
        .tagged_images()
        .unwrap_or_else(|e| panic!("{when}: a tag points at an incomplete image: {e}"));
    for (tag, digest) in &tagged {
        assert_eq!(
            expected.get(tag),
            Some(digest),
            "{when}: {tag} points at {digest}, not at the bundle's image"
        );
    }
    tagged.into_keys().collect()
}

/// How many images to read back with skopeo.
#[derive(Clone, Copy, Debug)]
pub enum Skopeo {
    All,
    /// A spread of this many (skopeo takes ~0.1 s a call).
    Sample(usize),
}

/// The registry holds exactly the bundle's images: every expected tag, each a complete
/// image with the bundle's digest, nothing else tagged, no other repository; and what
/// `skopeo inspect --raw` returns hashes to the bundle's digest.
#[track_caller]
pub fn assert_exactly_the_images(
    reg: &Registry,
    expected: &BTreeMap<String, String>,
    when: &str,
    skopeo: Skopeo,
) {
    let tags = assert_tags_whole(reg, expected, when);
    let want: BTreeSet<String> = expected.keys().cloned().collect();
    let missing: Vec<&String> = want.difference(&tags).collect();
    assert!(missing.is_empty(), "{when}: not tagged: {missing:?}");
    let repos = repositories(expected);
    let extra: Vec<String> = reg
        .catalog()
        .into_iter()
        .filter(|r| !repos.contains(r))
        .collect();
    assert!(
        extra.is_empty(),
        "{when}: repositories that are not the bundle's: {extra:?}"
    );
    let all: Vec<(&String, &String)> = expected.iter().collect();
    let picked: Vec<(&String, &String)> = match skopeo {
        Skopeo::All => all,
        Skopeo::Sample(n) => {
            let step = (all.len() / n.max(1)).max(1);
            all.into_iter().step_by(step).take(n).collect()
        }
    };
    for (tag, digest) in picked {
        let reference = format!("{}/{tag}", reg.host());
        assert_eq!(
            &skopeo_digest(&reference, &["--tls-verify=false"]),
            digest,
            "{when}: skopeo inspect --raw docker://{reference}"
        );
    }
}

/// A failure a person can act on: a non-zero exit with a message, not a panic.
#[track_caller]
pub fn assert_clean_failure(out: &Output, what: &str) {
    assert!(
        !out.status.success(),
        "{what}: expected a failure\n{}",
        out.dump()
    );
    assert!(
        out.status.code().is_some(),
        "{what}: ended by a signal, not by a message\n{}",
        out.dump()
    );
    assert_ne!(
        out.code(),
        101,
        "{what}: exit 101 is a Rust panic\n{}",
        out.dump()
    );
    let text = out.text();
    assert!(
        !text.contains("panicked"),
        "{what}: panicked\n{}",
        out.dump()
    );
    assert!(
        !text.contains("RUST_BACKTRACE"),
        "{what}: panicked\n{}",
        out.dump()
    );
    assert!(
        !text.trim().is_empty(),
        "{what}: failed without a word\n{}",
        out.dump()
    );
}

/// `ferry-unpack verify DIR --json`: (path, status) of every volume file there; none when
/// the directory holds no `*.tar`.
pub fn verify_each(dir: &Path, trust: &Path) -> Vec<(String, String)> {
    if crate::volumes(dir).is_empty() {
        return Vec::new();
    }
    let out = unpack([
        OsStr::new("verify"),
        dir.as_os_str(),
        OsStr::new("--trust"),
        trust.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert!(
        !out.text().contains("panicked"),
        "verify panicked\n{}",
        out.dump()
    );
    let v = json(&out);
    v["volumes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["path"].as_str().unwrap_or_default().to_owned(),
                        e["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Files under `dir` (recursively) whose name ends with `.partial`.
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(partial_files(&p)),
            _ if p.to_string_lossy().ends_with(".partial") => out.push(p),
            _ => {}
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Small disks

pub use test_support::tmpfs::{fill, is_root, Tmpfs};

// ---------------------------------------------------------------------------------------
// A proxy that misbehaves

/// What the proxy does wrong. Everything else it forwards byte for byte, both ways.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every Nth connection is closed at once, before a byte is forwarded.
    pub drop_every: Option<usize>,
    /// `(bytes, times)`: the first `times` connections that carry more than `bytes`
    /// upstream (a blob body) are cut there, both ways, in the middle of the body.
    pub cut_after: Option<(u64, usize)>,
    /// The first M requests (each on a connection of its own) are answered `503`.
    pub unavailable_first: usize,
    /// Every answer is held back this long.
    pub delay: Option<Duration>,
}

/// What the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicUsize,
    pub dropped: AtomicUsize,
    pub cut: AtomicUsize,
    pub unavailable: AtomicUsize,
    pub delayed: AtomicUsize,
}

impl ProxyStats {
    pub fn summary(&self) -> String {
        format!(
            "{} connections, {} dropped at once, {} cut mid-body, {} answered 503, {} answers delayed",
            self.connections.load(SEQ),
            self.dropped.load(SEQ),
            self.cut.load(SEQ),
            self.unavailable.load(SEQ),
            self.delayed.load(SEQ)
        )
    }
}

struct Shared {
    upstream: u16,
    faults: Faults,
    stats: Arc<ProxyStats>,
    unavailable_left: AtomicUsize,
    cuts_left: AtomicUsize,
}

/// A TCP proxy on 127.0.0.1 in front of a registry, with [`Faults`]. Stopped on drop.
pub struct FaultProxy {
    pub port: u16,
    pub stats: Arc<ProxyStats>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: u16, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProxyStats::default());
        let shared = Arc::new(Shared {
            upstream,
            unavailable_left: AtomicUsize::new(faults.unavailable_first),
            cuts_left: AtomicUsize::new(faults.cut_after.map_or(0, |(_, n)| n)),
            faults,
            stats: stats.clone(),
        });
        let stopping = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(SEQ) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(client, shared));
            }
        });
        FaultProxy {
            port,
            stats,
            stop,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`, for `--to`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, SEQ);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(client: TcpStream, s: Arc<Shared>) {
    let n = s.stats.connections.fetch_add(1, SEQ) + 1;
    if let Some(every) = s.faults.drop_every {
        if n.checked_rem(every) == Some(0) {
            s.stats.dropped.fetch_add(1, SEQ);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let mut early = Vec::new();
    if s.unavailable_left.load(SEQ) > 0 {
        let Some(head_end) = read_head(&client, &mut early) else {
            return;
        };
        if s.unavailable_left
            .fetch_update(SEQ, SEQ, |left| left.checked_sub(1))
            .is_ok()
        {
            s.stats.unavailable.fetch_add(1, SEQ);
            refuse(&client, &early, head_end);
            return;
        }
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", s.upstream)) else {
        // The registry is down: the client sees what it would see without the proxy, a
        // connection that ends.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(120)));
    let pending = Arc::new(AtomicBool::new(false));
    let (Ok(client_r), Ok(upstream_w), Ok(upstream_r), Ok(client_w)) = (
        client.try_clone(),
        upstream.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
    ) else {
        return;
    };
    let up = {
        let s = s.clone();
        let pending = pending.clone();
        std::thread::spawn(move || forward_up(client_r, upstream_w, &early, &s, &pending))
    };
    forward_down(upstream_r, client_w, &s, &pending);
    let _ = up.join();
}

/// Client to registry; counts the bytes and cuts the connection where [`Faults::cut_after`] says.
fn forward_up(
    mut from: TcpStream,
    mut to: TcpStream,
    early: &[u8],
    s: &Shared,
    pending: &AtomicBool,
) {
    let mut sent = 0u64;
    if !early.is_empty() {
        if to.write_all(early).is_err() {
            return;
        }
        sent += early.len() as u64;
        pending.store(true, SEQ);
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((after, _)) = s.faults.cut_after {
            if sent + n as u64 > after
                && s.cuts_left
                    .fetch_update(SEQ, SEQ, |left| left.checked_sub(1))
                    .is_ok()
            {
                let part = usize::try_from(after.saturating_sub(sent))
                    .unwrap_or(0)
                    .min(n);
                let _ = to.write_all(&buf[..part]);
                s.stats.cut.fetch_add(1, SEQ);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        pending.store(true, SEQ);
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Registry to client; holds back the first bytes of each answer by [`Faults::delay`].
fn forward_down(mut from: TcpStream, mut to: TcpStream, s: &Shared, pending: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(d) = s.faults.delay {
            if pending.swap(false, SEQ) {
                s.stats.delayed.fetch_add(1, SEQ);
                std::thread::sleep(d);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads until the end of a request head; the index just past it, or `None` at EOF.
fn read_head(mut c: &TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut piece = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf.len() > 256 * 1024 {
            return None;
        }
        match c.read(&mut piece) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&piece[..n]),
        }
    }
}

/// Answers `503 Service Unavailable` with a registry error body and closes. A body that
/// was sent without `Expect: 100-continue` is read first, so the client reads the answer
/// rather than a reset.
fn refuse(client: &TcpStream, early: &[u8], head_end: usize) {
    let head = String::from_utf8_lossy(&early[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: u64 = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let expect = header("expect").is_some_and(|v| v.contains("100-continue"));
    let mut c = client;
    if !expect && length <= 16 << 20 {
        let mut have = (early.len() - head_end) as u64;
        let mut piece = [0u8; 65536];
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        while have < length {
            match c.read(&mut piece) {
                Ok(0) | Err(_) => break,
                Ok(n) => have += n as u64,
            }
        }
    }
    let body =
        br#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable (fault proxy)"}]}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(body);
    let _ = c.flush();
    let _ = c.shutdown(Shutdown::Write);
    // Let the client read the answer before the socket goes: drain what it still sends.
    let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
    let mut piece = [0u8; 65536];
    let mut drained = 0u64;
    while drained < 64 << 20 {
        match c.read(&mut piece) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n as u64,
        }
    }
}
