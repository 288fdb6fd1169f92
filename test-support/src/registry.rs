//! A real registry: Debian's `docker-registry` (CNCF distribution 2.8.2) on 127.0.0.1,
//! plain HTTP, TLS with a test CA made by `openssl`, or htpasswd Basic auth; storage in a
//! temporary directory; killed on drop, and killable (SIGKILL) and restartable on the same
//! port and storage in between.
//!
//! What a test reads back goes through the Distribution API, the way any client would:
//! a tiny HTTP/1.0 client over `TcpStream` for plain registries, `curl` for TLS ones, and
//! `skopeo` as a user would.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::cmd::{assert_ok, run, tempdir, OutputExt};

/// Every manifest type a ferry bundle can hold: asked for explicitly, or distribution
/// would answer a docker manifest list with one of its children.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// What the registry is started with.
#[derive(Default, Clone)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate from a fresh test CA ([`Registry::ca`]).
    pub tls: bool,
    /// htpasswd Basic auth with this user and password.
    pub htpasswd: Option<(String, String)>,
}

/// A test CA and a server certificate for 127.0.0.1 (and localhost), made with `openssl`.
pub struct TestCa {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    pub fn generate(dir: &Path) -> TestCa {
        let p = |name: &str| dir.join(name);
        let s = |name: &str| p(name).to_str().expect("utf-8 temp path").to_owned();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &s("ca.key"),
            "-out",
            &s("ca.pem"),
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
            &s("server.key"),
            "-out",
            &s("server.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &s("server.csr"),
            "-CA",
            &s("ca.pem"),
            "-CAkey",
            &s("ca.key"),
            "-CAcreateserial",
            "-out",
            &s("server.pem"),
            "-days",
            "2",
            "-extfile",
            &s("server.ext"),
        ]);
        TestCa {
            ca_cert: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
        }
    }

    /// A directory holding the CA as `ca.crt`, the form `skopeo --cert-dir` reads.
    pub fn cert_dir(&self) -> PathBuf {
        let dir = self.ca_cert.parent().expect("ca dir").join("certs.d");
        std::fs::create_dir_all(&dir).expect("mkdir certs.d");
        std::fs::copy(&self.ca_cert, dir.join("ca.crt")).expect("copy ca.crt");
        dir
    }
}

fn openssl(args: &[&str]) {
    let out = run("openssl", args);
    assert_ok(&out, &format!("openssl {}", args[0]));
}

/// An `htpasswd` line for distribution, which reads only bcrypt (`htpasswd -B`, from
/// Debian's apache2-utils, which scripts/deps.sh installs).
fn htpasswd_line(user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", "-C", "4", user, password])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run htpasswd ({e}): install apache2-utils (scripts/deps.sh)")
        });
    assert!(out.status.success(), "htpasswd: {}", out.stderr_text());
    out.stdout_text().trim().to_owned()
}

/// `docker-registry serve` on 127.0.0.1. Killed on drop.
pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    /// Everything of this registry: config, storage, log, CA. A test may keep its own
    /// files here (an auth file, a CA bundle).
    pub dir: TempDir,
    config: PathBuf,
    log: PathBuf,
    pub ca: Option<TestCa>,
    pub credentials: Option<(String, String)>,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn plain() -> Registry {
        Registry::start(RegistryOptions::default())
    }

    /// HTTPS with a certificate signed by a fresh test CA.
    pub fn tls() -> Registry {
        Registry::start(RegistryOptions {
            tls: true,
            ..RegistryOptions::default()
        })
    }

    /// Plain HTTP with htpasswd Basic auth.
    pub fn htpasswd(user: &str, password: &str) -> Registry {
        Registry::start(RegistryOptions {
            htpasswd: Some((user.to_owned(), password.to_owned())),
            ..RegistryOptions::default()
        })
    }

    pub fn start(opts: RegistryOptions) -> Registry {
        let dir = tempdir();
        let ca = opts.tls.then(|| TestCa::generate(dir.path()));
        let htpasswd = opts.htpasswd.as_ref().map(|(u, p)| {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, htpasswd_line(u, p) + "\n").expect("write htpasswd");
            path
        });
        let mut r = Registry {
            child: None,
            port: 0,
            config: dir.path().join("config.yml"),
            log: dir.path().join("registry.log"),
            dir,
            ca,
            credentials: opts.htpasswd.clone(),
        };
        let mut last = String::new();
        // A free port can be taken between asking and binding: try a few.
        for _ in 0..5 {
            r.port = free_port();
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {root}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: ferry-test-fixed-secret\n",
                root = r.storage().display(),
                port = r.port,
            );
            if let Some(ca) = &r.ca {
                yaml.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    ca.server_cert.display(),
                    ca.server_key.display()
                ));
            }
            if let Some(path) = &htpasswd {
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: ferry-test\n    path: {}\n",
                    path.display()
                ));
            }
            std::fs::write(&r.config, yaml).expect("write registry config");
            match r.spawn() {
                Ok(()) => return r,
                Err(log) => last = log,
            }
        }
        panic!("docker-registry would not start:\n{last}");
    }

    /// Starts the process and waits until `GET /v2/` answers; on failure, the log.
    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open registry log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (Debian package docker-registry; scripts/deps.sh)");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited {status}\n{}", self.log_text()));
            }
            if self.answers() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer on /v2/ within 20 s\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Whether `GET /v2/` gets an HTTP answer (200, or 401 with auth).
    fn answers(&self) -> bool {
        if let Some(ca) = &self.ca {
            let out = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                ])
                .arg("--cacert")
                .arg(&ca.ca_cert)
                .arg(format!("https://{}/v2/", self.host()))
                .output();
            return out.is_ok_and(|o| {
                let code = o.stdout_text();
                code == "200" || code == "401"
            });
        }
        matches!(
            http_plain(self.port, "GET", "/v2/", None, None),
            Ok(r) if r.status == 200 || r.status == 401
        )
    }

    /// SIGKILL, as a crash would: nothing is flushed or cleaned up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, with the same storage and config.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The port may take a moment to be free again.
                Err(log) if Instant::now() > deadline => {
                    panic!("docker-registry would not restart on {}:\n{log}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The storage root (`storage.filesystem.rootdirectory`).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything in the storage: path → (size, mtime in ns). Directories are left out
    /// (an access may create none, but the registry keeps empty `_uploads/` around).
    pub fn storage_files(&self) -> BTreeMap<String, (u64, i128)> {
        let mut out = BTreeMap::new();
        walk(&self.storage(), &self.storage(), &mut out);
        out
    }

    /// The blob data files (`blobs/sha256/xx/<hex>/data`) as `sha256:<hex>`.
    pub fn stored_blobs(&self) -> Vec<String> {
        self.storage_files()
            .keys()
            .filter_map(|p| {
                let rest = p.strip_prefix("docker/registry/v2/blobs/sha256/")?;
                let hex = rest.strip_suffix("/data")?.split('/').nth(1)?;
                Some(format!("sha256:{hex}"))
            })
            .collect()
    }

    // ---------------------------------------------------------------------------------
    // The Distribution API, read back

    /// One request, with the test credentials when the registry has them.
    pub fn request(&self, method: &str, path: &str, accept: Option<&str>) -> HttpResponse {
        let auth = self
            .credentials
            .as_ref()
            .map(|(u, p)| format!("Basic {}", b64(&format!("{u}:{p}"))));
        if let Some(ca) = &self.ca {
            return http_curl(
                &self.host(),
                &ca.ca_cert,
                method,
                path,
                accept,
                auth.as_deref(),
            );
        }
        http_plain(self.port, method, path, accept, auth.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.host()))
    }

    /// `GET /v2/_catalog`: the repositories, sorted.
    pub fn catalog(&self) -> Vec<String> {
        let r = self.request("GET", "/v2/_catalog?n=1000", None);
        assert_eq!(r.status, 200, "GET /v2/_catalog: {}", r.text());
        let v: Value = serde_json::from_slice(&r.body).expect("catalog is JSON");
        let mut repos: Vec<String> = v["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        repos.sort();
        repos
    }

    /// `GET /v2/<repo>/tags/list`; none when the repository has no tags (404).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.request("GET", &format!("/v2/{repo}/tags/list"), None);
        if r.status == 404 {
            return Vec::new();
        }
        assert_eq!(r.status, 200, "tags of {repo}: {}", r.text());
        let v: Value = serde_json::from_slice(&r.body).expect("tags list is JSON");
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// `HEAD /v2/<repo>/blobs/<digest>` is 200.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let r = self.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), None);
        r.status == 200
    }

    /// The manifest bytes a tag or digest resolves to, exactly as stored.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let r = self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            Some(MANIFEST_ACCEPT),
        );
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("GET manifest {repo}:{reference}: {s} {}", r.text()),
        }
    }

    /// Every tag of every repository points at a complete image: its manifest, every
    /// child of an index, and every config and layer they name are there (by digest, in
    /// that repository). Returns `repo:tag → manifest digest`, or what is missing.
    pub fn tagged_images(&self) -> Result<BTreeMap<String, String>, String> {
        let (out, dangling) = self.tagged_images_and_dangling()?;
        match dangling.first() {
            Some(tag) => Err(format!("{tag} is listed but has no manifest")),
            None => Ok(out),
        }
    }

    /// Like [`Registry::tagged_images`], but a tag that resolves to nothing at all (listed,
    /// yet GET gives no manifest: the registry was killed between making the tag's
    /// directory and writing its link) is returned apart instead of failing: it serves no
    /// image, whole or not, and only the registry's crash made it.
    pub fn tagged_images_and_dangling(
        &self,
    ) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
        let mut out = BTreeMap::new();
        let mut dangling = Vec::new();
        for repo in self.catalog() {
            for tag in self.tags(&repo) {
                // A tag the registry cannot resolve: 404, or the 500 distribution answers for
                // a tag link file its own crash left empty (it writes links in place). Such a
                // tag names no image at all, so it is not a tag on an incomplete image; the
                // rerun puts it right.
                let r = self.request(
                    "GET",
                    &format!("/v2/{repo}/manifests/{tag}"),
                    Some(MANIFEST_ACCEPT),
                );
                let bytes = match r.status {
                    200 => r.body,
                    404 | 500 => {
                        dangling.push(format!("{repo}:{tag}"));
                        continue;
                    }
                    s => panic!("GET manifest {repo}:{tag}: {s} {}", r.text()),
                };
                self.check_complete(&repo, &bytes, &format!("{repo}:{tag}"))?;
                out.insert(format!("{repo}:{tag}"), sha256_hex(&bytes));
            }
        }
        Ok((out, dangling))
    }

    fn check_complete(&self, repo: &str, manifest: &[u8], what: &str) -> Result<(), String> {
        let v: Value = serde_json::from_slice(manifest)
            .map_err(|e| format!("{what}: manifest is not JSON: {e}"))?;
        if let Some(children) = v["manifests"].as_array() {
            for c in children {
                let d = c["digest"]
                    .as_str()
                    .ok_or(format!("{what}: child without digest"))?;
                let bytes = self
                    .manifest(repo, d)
                    .ok_or_else(|| format!("{what}: child manifest {d} is missing from {repo}"))?;
                if sha256_hex(&bytes) != d {
                    return Err(format!("{what}: child {d} has other bytes"));
                }
                self.check_complete(repo, &bytes, &format!("{what} → {d}"))?;
            }
            return Ok(());
        }
        let mut blobs: Vec<&str> = v["layers"]
            .as_array()
            .map(|a| a.iter().filter_map(|l| l["digest"].as_str()).collect())
            .unwrap_or_default();
        blobs.extend(v["config"]["digest"].as_str());
        if blobs.is_empty() {
            return Err(format!("{what}: a manifest with neither config nor layers"));
        }
        for d in blobs {
            if !self.blob_exists(repo, d) {
                return Err(format!("{what}: blob {d} is missing from {repo}"));
            }
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, i128)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.expect("dir entry");
        let m = std::fs::symlink_metadata(e.path()).expect("stat");
        if m.is_dir() {
            walk(root, &e.path(), out);
        } else {
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            out.insert(
                rel,
                (
                    m.len(),
                    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                ),
            );
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------------------
// HTTP

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// HTTP/1.0 over a plain socket: one request per connection, the body ends at close (no
/// chunked encoding to undo).
pub fn http_plain(
    port: u16,
    method: &str,
    path: &str,
    accept: Option<&str>,
    authorization: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    if let Some(a) = authorization {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head: bool) -> std::io::Result<HttpResponse> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head_text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head_text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = if head {
        Vec::new()
    } else {
        raw[end + 4..].to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn http_curl(
    host: &str,
    ca: &Path,
    method: &str,
    path: &str,
    accept: Option<&str>,
    authorization: Option<&str>,
) -> HttpResponse {
    let mut c = Command::new("curl");
    c.args(["-sS", "-i", "--max-time", "20", "--cacert"])
        .arg(ca);
    if method == "HEAD" {
        c.arg("-I");
    } else {
        c.args(["-X", method]);
    }
    if let Some(a) = accept {
        c.args(["-H", &format!("Accept: {a}")]);
    }
    if let Some(a) = authorization {
        c.args(["-H", &format!("Authorization: {a}")]);
    }
    c.arg(format!("https://{host}{path}"));
    let out = c.output().expect("run curl");
    assert!(
        out.status.success(),
        "curl {method} {path}: {}",
        out.stderr_text()
    );
    parse_response(&out.stdout, method == "HEAD").expect("curl printed an HTTP answer")
}

// ---------------------------------------------------------------------------------------
// skopeo, as a user reads the registry back

/// `skopeo inspect --raw` of `docker://REFERENCE` with extra flags (`--tls-verify=false`,
/// `--cert-dir`, `--creds`); the manifest bytes, or the failed output.
pub fn skopeo_raw(reference: &str, flags: &[&str]) -> Result<Vec<u8>, Output> {
    let mut args: Vec<String> = vec!["inspect".into(), "--raw".into()];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    args.push(format!("docker://{reference}"));
    let out = run("skopeo", &args);
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(out)
    }
}

/// The sha256 of what `skopeo inspect --raw` returns: the digest a client pulls.
#[track_caller]
pub fn skopeo_digest(reference: &str, flags: &[&str]) -> String {
    match skopeo_raw(reference, flags) {
        Ok(bytes) => sha256_hex(&bytes),
        Err(out) => panic!("skopeo inspect --raw docker://{reference}\n{}", out.dump()),
    }
}
