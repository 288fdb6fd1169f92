//! One HTTP exchange with the registry, as the Distribution API needs it: the agent
//! (TLS roots, timeouts, no automatic redirects), redirects followed here so that
//! credentials never leave the registry's origin, 401 answered once by learning the
//! challenge, and transient failures retried with backoff when the body can be sent again.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ureq::http;

use crate::auth::{AuthState, Scopes};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::endpoint::{display_url, join_location, Origin, Scheme};
use crate::error::{decode_error_body, excerpt, is_transient_status, RegistryError, Result};
use crate::retry::{
    parse_retry_after, sleep_unless_cancelled, Backoff, RetryNotice, RetryObserver, RetryPolicy,
};
use oci::Digest;

/// Error bodies, token answers: anything longer is cut (and the connection dropped).
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// How many redirects one request follows.
const MAX_REDIRECTS: u32 = 5;

pub(crate) struct Transport {
    pub(crate) agent: ureq::Agent,
    pub(crate) origin: Origin,
    pub(crate) insecure: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) auth: Mutex<AuthState>,
    /// Held while a token is fetched, so N workers that miss the cache fetch it once.
    pub(crate) token_fetch: Mutex<()>,
    pub(crate) cancel: &'static AtomicBool,
    /// See `UploadPolicy::finish_after_cancel`.
    pub(crate) finish_after_cancel: u64,
    /// See `Config::on_retry`.
    pub(crate) on_retry: Option<RetryObserver>,
}

/// The cancel flag of a client that was given none: never set.
static NEVER_CANCELLED: AtomicBool = AtomicBool::new(false);

pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A blob (or a piece of one) streamed from the caller's reader: sent once, never
    /// replayed here (the upload restarts the blob with a fresh reader instead).
    Reader {
        reader: &'a mut dyn Read,
        len: u64,
        digest: &'a Digest,
    },
}

impl Body<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Reader { .. })
    }
}

pub(crate) struct Request<'a> {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body<'a>,
    /// Registry credentials for these scopes are attached while the URL is on the
    /// registry's origin; `None` sends none (token requests).
    pub(crate) scopes: Option<Scopes>,
    /// An explicit `Authorization` (Basic to a token realm), attached only while the URL
    /// is on the origin of `url`.
    pub(crate) authorization: Option<String>,
    pub(crate) max_body: usize,
    /// Retry transient failures here (only done for replayable bodies).
    pub(crate) retry: bool,
    /// Keep the body of a 200 or 206 answer unread, as [`Response::stream`] (a blob
    /// download); every other answer's body is read as usual.
    pub(crate) stream: bool,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: &'static str, url: String, scopes: Option<Scopes>) -> Request<'a> {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            scopes,
            authorization: None,
            max_body: SMALL_BODY,
            retry: true,
            stream: false,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

pub(crate) struct Response {
    pub(crate) method: &'static str,
    /// The URL that answered (after redirects).
    pub(crate) url: String,
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The unread body, for a streamed request answered 200 or 206 (`body` is then empty).
    pub(crate) stream: Option<ureq::BodyReader<'static>>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    }

    pub(crate) fn shown_url(&self) -> String {
        display_url(&self.url)
    }

    /// The `Location` of this answer, resolved against its URL.
    pub(crate) fn location(&self) -> Result<String> {
        let raw = self
            .header("location")
            .ok_or_else(|| self.protocol("no Location header"))?;
        join_location(&self.url, raw).ok_or_else(|| {
            self.protocol(&format!("unusable Location {:?}", excerpt(raw.as_bytes())))
        })
    }

    pub(crate) fn protocol(&self, problem: &str) -> RegistryError {
        RegistryError::Protocol {
            method: self.method.to_owned(),
            url: self.shown_url(),
            status: self.status,
            problem: format!("answered {}: {problem}", self.status),
        }
    }

    /// Checks `Docker-Content-Digest` against the digest asked for, when it is sent with
    /// the same algorithm (a registry may report another algorithm's digest of the same
    /// bytes, which cannot be compared).
    pub(crate) fn check_digest(&self, expected: &Digest) -> Result<()> {
        let same_algorithm =
            |actual: &str| actual.split_once(':').map(|(a, _)| a) == Some(expected.algorithm());
        match self.header("docker-content-digest").map(str::trim) {
            Some(actual)
                if actual != expected.to_string()
                    && (same_algorithm(actual) || !actual.contains(':')) =>
            {
                Err(RegistryError::DigestMismatch {
                    method: self.method.to_owned(),
                    url: self.shown_url(),
                    expected: *expected,
                    actual: excerpt(actual.as_bytes()),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Reads a blob for a request, keeping what went wrong on our side apart from what went
/// wrong on the wire: ureq sees only an `io::Error` either way.
struct GuardedReader<'a> {
    inner: &'a mut dyn Read,
    remaining: u64,
    sent: u64,
    failure: Option<io::Error>,
    ended_early: bool,
    cancel: &'a AtomicBool,
    cancelled: bool,
    /// Bytes still to send at or below which a cancelled body is finished, not cut.
    finish_after_cancel: u64,
}

impl Read for GuardedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining > self.finish_after_cancel && self.cancel.load(Ordering::Relaxed) {
            // Cuts the body: the request fails and the upload session is cancelled.
            self.cancelled = true;
            return Err(io::Error::other("interrupted"));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                self.ended_early = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob reader ended early",
                ))
            }
            Ok(n) => {
                self.remaining -= n as u64;
                self.sent += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.failure = Some(e);
                Err(io::Error::new(kind, "blob reader failed"))
            }
        }
    }
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

impl Transport {
    pub(crate) fn new(config: &Config) -> Result<Transport> {
        let origin = registry_origin(&config.registry, config.insecure)?;
        Transport::with_origin(config, origin)
    }

    /// A transport for `origin` rather than the one `config.registry` names (the probe
    /// tries the other scheme with it).
    pub(crate) fn with_origin(config: &Config, origin: Origin) -> Result<Transport> {
        let tls = tls_config(config, &origin)?;
        let agent = ureq::Agent::config_builder()
            // Registry errors are answers to read, not failures of the call.
            .http_status_as_error(false)
            // Redirects are followed here, where the Authorization rule is enforced.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(config.user_agent.as_str())
            .timeout_connect(Some(config.timeouts.connect))
            // Idle limits, not totals: a multi-gigabyte layer may take an hour to send.
            .timeout_per_read(Some(config.timeouts.idle))
            .timeout_per_write(Some(config.timeouts.idle))
            .max_idle_connections(config.max_idle_connections.max(1))
            .max_idle_connections_per_host(config.max_idle_connections.max(1))
            .proxy(if config.proxy_from_env {
                ureq::Proxy::try_from_env()
            } else {
                None
            })
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Transport {
            agent,
            origin,
            insecure: config.insecure,
            retry: config.retry.clone(),
            credentials: config.credentials.clone(),
            auth: Mutex::new(AuthState::default()),
            token_fetch: Mutex::new(()),
            cancel: config.cancel.unwrap_or(&NEVER_CANCELLED),
            finish_after_cancel: config.upload.finish_after_cancel,
            on_retry: config.on_retry.clone(),
        })
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// After a transient failure of `method url`: tells the observer (if any) of the retry,
    /// then waits for it. `false` means give up (the time is up, or cancelled).
    pub(crate) fn wait_to_retry(
        &self,
        backoff: &mut Backoff<'_>,
        retry_after: Option<Duration>,
        method: &str,
        url: &str,
        error: impl FnOnce() -> String,
    ) -> bool {
        if self.cancelled() {
            return false;
        }
        let Some(wait) = backoff.next_delay(retry_after) else {
            return false;
        };
        if let Some(observer) = &self.on_retry {
            observer(&RetryNotice {
                method: method.to_owned(),
                url: display_url(url),
                attempt: backoff.attempts(),
                wait,
                error: error(),
            });
        }
        sleep_unless_cancelled(wait, self.cancel)
    }

    /// Sends a request: credentials, redirects, one retry after a 401 challenge, and
    /// backoff on transient failures when the body is replayable and `retry` is set.
    /// Error statuses other than 401 (and exhausted transient ones) come back as answers.
    pub(crate) fn exchange(&self, req: &mut Request<'_>) -> Result<Response> {
        let replayable = req.body.replayable();
        let mut backoff = Backoff::new(&self.retry);
        let mut auth_retried = false;
        loop {
            // After Ctrl-C only the DELETEs that cancel upload sessions still go out (and
            // the token request one of them may need: the only requests without scopes).
            if self.cancelled() && req.method != "DELETE" && req.scopes.is_some() {
                return Err(RegistryError::Cancelled);
            }
            let (result, sent_auth) = self.attempt(req, replayable);
            match result {
                Ok(resp)
                    if resp.status == 401
                        && req.scopes.is_some()
                        && self.is_registry(&resp.url) =>
                {
                    let retry = match req.scopes.as_mut() {
                        Some(scopes) => self.learn_challenge(&resp, scopes, sent_auth),
                        None => false,
                    };
                    if retry && !auth_retried && replayable {
                        auth_retried = true;
                        continue;
                    }
                    return Err(self.error_from(&resp, req.scopes.as_ref()));
                }
                Ok(resp) if req.retry && replayable && is_transient_status(resp.status) => {
                    let error = || self.error_from(&resp, req.scopes.as_ref()).to_string();
                    if self.wait_to_retry(
                        &mut backoff,
                        resp.retry_after(),
                        req.method,
                        &req.url,
                        error,
                    ) {
                        continue;
                    }
                    if self.cancelled() {
                        return Err(RegistryError::Cancelled);
                    }
                    return Err(gave_up(
                        &backoff,
                        self.error_from(&resp, req.scopes.as_ref()),
                    ));
                }
                Ok(resp) => return Ok(resp),
                Err(e) if req.retry && replayable && e.is_transient() => {
                    if self
                        .wait_to_retry(&mut backoff, None, req.method, &req.url, || e.to_string())
                    {
                        continue;
                    }
                    if self.cancelled() {
                        return Err(RegistryError::Cancelled);
                    }
                    return Err(gave_up(&backoff, e));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt, following redirects. Also says whether registry credentials went out.
    fn attempt(&self, req: &mut Request<'_>, replayable: bool) -> (Result<Response>, bool) {
        let first_origin = Origin::of_url(&req.url);
        let mut url = req.url.clone();
        let mut sent_registry_auth = false;
        for _ in 0..=MAX_REDIRECTS {
            let here = Origin::of_url(&url);
            let authorization =
                if here.is_some() && here == first_origin && req.authorization.is_some() {
                    req.authorization.clone()
                } else if here.as_ref() == Some(&self.origin) {
                    match req.scopes.as_ref().map(|s| self.authorization(s)) {
                        Some(Err(e)) => return (Err(e), sent_registry_auth),
                        Some(Ok(a)) => {
                            sent_registry_auth = a.is_some();
                            a
                        }
                        None => None,
                    }
                } else {
                    None
                };
            let resp = match self.send_once(req, &url, authorization.as_deref()) {
                Ok(r) => r,
                Err(e) => return (Err(e), sent_registry_auth),
            };
            let followable = matches!(req.method, "GET" | "HEAD")
                || (matches!(resp.status, 307 | 308) && replayable);
            if !(is_redirect(resp.status) && followable && resp.header("location").is_some()) {
                return (Ok(resp), sent_registry_auth);
            }
            let next = match resp.location() {
                Ok(n) => n,
                Err(e) => return (Err(e), sent_registry_auth),
            };
            let downgrade = here.as_ref().is_some_and(|o| o.scheme == Scheme::Https)
                && Origin::of_url(&next).is_some_and(|o| o.scheme == Scheme::Http);
            if downgrade && !self.insecure {
                return (
                    Err(resp.protocol(&format!(
                        "redirect from https to plain http ({}) refused",
                        display_url(&next)
                    ))),
                    sent_registry_auth,
                );
            }
            url = next;
        }
        (
            Err(RegistryError::Protocol {
                method: req.method.to_owned(),
                url: display_url(&req.url),
                status: 0,
                problem: format!("more than {MAX_REDIRECTS} redirects"),
            }),
            sent_registry_auth,
        )
    }

    fn send_once(
        &self,
        req: &mut Request<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Response> {
        let method = req.method;
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(a) = authorization {
            let mut value =
                http::HeaderValue::from_str(a).map_err(|_| RegistryError::Protocol {
                    method: method.to_owned(),
                    url: display_url(url),
                    status: 0,
                    // Never the value: it is a credential.
                    problem:
                        "the credentials or token cannot be sent in a header (control characters)"
                            .into(),
                })?;
            value.set_sensitive(true);
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        let bad_request = |e: http::Error| RegistryError::Protocol {
            method: method.to_owned(),
            url: display_url(url),
            status: 0,
            problem: format!("cannot build the request: {e}"),
        };
        let sent = match &mut req.body {
            Body::Empty if matches!(method, "POST" | "PUT" | "PATCH") => {
                // `Content-Length: 0` rather than no length: some proxies demand one.
                self.agent.run(builder.body(&[][..]).map_err(bad_request)?)
            }
            Body::Empty => self.agent.run(builder.body(()).map_err(bad_request)?),
            Body::Bytes(bytes) => self.agent.run(builder.body(*bytes).map_err(bad_request)?),
            Body::Reader {
                reader,
                len,
                digest,
            } => {
                let mut guard = GuardedReader {
                    inner: &mut **reader,
                    remaining: *len,
                    sent: 0,
                    failure: None,
                    ended_early: false,
                    cancel: self.cancel,
                    cancelled: false,
                    finish_after_cancel: self.finish_after_cancel,
                };
                let request = builder
                    .header(http::header::CONTENT_LENGTH, *len)
                    .body(ureq::SendBody::from_reader(&mut guard))
                    .map_err(bad_request)?;
                let result = self.agent.run(request);
                if guard.cancelled {
                    return Err(RegistryError::Cancelled);
                }
                if let Some(source) = guard.failure.take() {
                    return Err(RegistryError::BlobRead {
                        digest: **digest,
                        source,
                    });
                }
                if guard.ended_early {
                    return Err(RegistryError::BlobLength {
                        digest: **digest,
                        expected: *len,
                        actual: guard.sent,
                    });
                }
                result
            }
        };
        let mut resp = sent.map_err(|e| transport_error(method, url, e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if req.stream && method == "GET" && matches!(status, 200 | 206) {
            // No limit: the caller counts the bytes against the size it expects.
            return Ok(Response {
                method,
                url: url.to_owned(),
                status,
                headers,
                body: Vec::new(),
                stream: Some(resp.into_body().into_reader()),
            });
        }
        let mut body = Vec::new();
        if method != "HEAD" {
            let limit = req.max_body as u64 + 1;
            let read = resp
                .body_mut()
                .as_reader()
                .take(limit)
                .read_to_end(&mut body);
            match read {
                Ok(_) => {}
                // distribution 2.8.2 answers a blob GET whose Range starts past the end
                // with 416, the whole blob's Content-Length and no body (tested): the status
                // is the answer, and the broken connection is not reused.
                Err(_) if req.stream && status == 416 => {}
                Err(e) => return Err(io_error(method, url, e)),
            }
            // What is past the limit is left unread; ureq then drops the connection.
            body.truncate(req.max_body);
        }
        Ok(Response {
            method,
            url: url.to_owned(),
            status,
            headers,
            body,
            stream: None,
        })
    }

    pub(crate) fn is_registry(&self, url: &str) -> bool {
        Origin::of_url(url).as_ref() == Some(&self.origin)
    }

    /// The error an unwanted answer stands for.
    pub(crate) fn error_from(&self, resp: &Response, scopes: Option<&Scopes>) -> RegistryError {
        let method = resp.method.to_owned();
        let url = resp.shown_url();
        let status = resp.status;
        let errors = if resp.body.iter().all(u8::is_ascii_whitespace) {
            Some(Default::default())
        } else {
            decode_error_body(&resp.body)
        };
        match (status, errors) {
            (401, errors) => RegistryError::Unauthorized {
                method,
                url,
                status,
                hint: self.unauthorized_hint(scopes),
                errors: errors.unwrap_or_default(),
            },
            (403, errors) => RegistryError::Denied {
                method,
                url,
                status,
                hint: match &self.credentials {
                    Some(c) => format!("{} may not do this", c.describe()),
                    None => {
                        "anonymous access may not do this, and no credentials were given".into()
                    }
                },
                errors: errors.unwrap_or_default(),
            },
            (_, Some(errors)) => RegistryError::Registry {
                method,
                url,
                status,
                errors,
            },
            (_, None) => RegistryError::Garbage {
                method,
                url,
                status,
                body_excerpt: excerpt(&resp.body),
            },
        }
    }
}

fn gave_up(backoff: &Backoff<'_>, last: RegistryError) -> RegistryError {
    if backoff.attempts() <= 1 {
        return last;
    }
    RegistryError::RetriesExhausted {
        attempts: backoff.attempts(),
        elapsed: backoff.elapsed(),
        last: Box::new(last),
    }
}

fn transport_error(method: &str, url: &str, e: ureq::Error) -> RegistryError {
    let method = method.to_owned();
    let shown = display_url(url);
    match e {
        ureq::Error::Timeout(phase) => RegistryError::Timeout {
            method,
            url: shown,
            phase: phase.to_string(),
        },
        ureq::Error::Io(io) => io_error(&method, url, io),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            let problem = e.to_string();
            RegistryError::Tls {
                method,
                url: shown,
                hint: tls_hint(&problem),
                problem,
            }
        }
        other => RegistryError::Transport {
            method,
            url: shown,
            source: Box::new(other),
        },
    }
}

fn io_error(method: &str, url: &str, e: io::Error) -> RegistryError {
    // ureq hands its own errors (a timeout inside a body read) through io::Error.
    if e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
        let kind = e.kind();
        return match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
            Some(Ok(inner)) => transport_error(method, url, *inner),
            _ => RegistryError::Transport {
                method: method.to_owned(),
                url: display_url(url),
                source: Box::new(io::Error::from(kind)),
            },
        };
    }
    let text = e.to_string();
    // rustls reports certificate trouble through io::Error during the handshake.
    if text.contains("certificate") || text.contains("InvalidCertificate") {
        return RegistryError::Tls {
            method: method.to_owned(),
            url: display_url(url),
            hint: tls_hint(&text),
            problem: text,
        };
    }
    RegistryError::Transport {
        method: method.to_owned(),
        url: display_url(url),
        source: Box::new(e),
    }
}

fn tls_hint(problem: &str) -> String {
    if problem.contains("UnknownIssuer") || problem.contains("unknown issuer") {
        " (the certificate is not signed by a trusted CA: give the registry's CA certificate, or use insecure mode on a trusted network)".into()
    } else if problem.contains("NotValidForName") || problem.contains("not valid for name") {
        " (the certificate does not name this host: use the name or address the certificate was issued for)".into()
    } else {
        String::new()
    }
}

/// Whether `config.registry` names its scheme (`http://…`, `https://…`).
pub(crate) fn scheme_given(registry: &str) -> bool {
    registry.trim().contains("://")
}

/// `host[:port]`, or `http://…`/`https://…`, to the registry's origin (see
/// [`Config::registry`] for the rules).
pub(crate) fn registry_origin(registry: &str, insecure: bool) -> Result<Origin> {
    let text = registry.trim().trim_end_matches('/');
    let bad = |problem: String| RegistryError::Config { problem };
    if text.contains('@') {
        // The address is not repeated: what precedes `@` may be a password.
        return Err(bad(
            "the registry address contains user information (`user:password@`); give credentials in an auth file instead".into(),
        ));
    }
    let (scheme, authority) = if let Some(rest) = strip_prefix_ignore_case(text, "https://") {
        (Some(Scheme::Https), rest)
    } else if let Some(rest) = strip_prefix_ignore_case(text, "http://") {
        (Some(Scheme::Http), rest)
    } else if text.contains("://") {
        return Err(bad(format!(
            "{text:?}: only http:// and https:// registries exist"
        )));
    } else {
        (None, text)
    };
    if authority.contains('/') {
        return Err(bad(format!(
            "{text:?} has a path; give only host[:port] (repositories are named per request)"
        )));
    }
    let parsed = Origin::from_authority(Scheme::Https, authority)
        .ok_or_else(|| bad(format!("{text:?} is not host[:port]")))?;
    let scheme = match scheme {
        Some(Scheme::Http) if !insecure => {
            return Err(bad(format!(
                "{text:?} is plain HTTP, which is only used in insecure mode (--insecure)"
            )))
        }
        Some(s) => s,
        None if insecure && parsed.is_loopback() => Scheme::Http,
        None => Scheme::Https,
    };
    Origin::from_authority(scheme, authority)
        .ok_or_else(|| bad(format!("{text:?} is not host[:port]")))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn tls_config(config: &Config, origin: &Origin) -> Result<ureq::tls::TlsConfig> {
    let builder = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
    if config.insecure {
        return Ok(builder.disable_verification(true).build());
    }
    let mut roots: Vec<ureq::tls::Certificate<'static>> = Vec::new();
    if let Some(path) = &config.ca_cert {
        let bad = |problem: String| RegistryError::CaCert {
            path: path.clone(),
            problem,
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c),
                Ok(_) => {}
                Err(e) => return Err(bad(format!("is not valid PEM: {e}"))),
            }
        }
        if roots.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
    }
    if origin.scheme == Scheme::Https {
        // Partial failures (an unreadable file in /etc/ssl/certs) leave the rest usable;
        // no roots at all shows up as an UnknownIssuer error naming the registry.
        let native = rustls_native_certs::load_native_certs();
        roots.extend(
            native
                .certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()),
        );
    }
    Ok(builder
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_rules() {
        let o = |r: &str, insecure: bool| registry_origin(r, insecure).map(|o| o.base());
        assert_eq!(o("quay.example", false).unwrap(), "https://quay.example");
        assert_eq!(
            o("quay.example:8443/", false).unwrap(),
            "https://quay.example:8443"
        );
        assert_eq!(
            o("127.0.0.1:5000", false).unwrap(),
            "https://127.0.0.1:5000"
        );
        // insecure: plain HTTP on loopback and when asked with http://, else unverified TLS.
        assert_eq!(o("127.0.0.1:5000", true).unwrap(), "http://127.0.0.1:5000");
        assert_eq!(o("localhost:5000", true).unwrap(), "http://localhost:5000");
        assert_eq!(o("quay.example", true).unwrap(), "https://quay.example");
        assert_eq!(
            o("http://10.1.2.3:5000", true).unwrap(),
            "http://10.1.2.3:5000"
        );
        assert_eq!(
            o("HTTPS://127.0.0.1:5000", true).unwrap(),
            "https://127.0.0.1:5000"
        );
        assert!(o("http://10.1.2.3:5000", false)
            .unwrap_err()
            .to_string()
            .contains("insecure"));
        for bad in ["", "quay.example/ns", "ftp://x", "host:notaport", "a b"] {
            assert!(o(bad, true).is_err(), "{bad}");
        }
        let e = o("bob:hunter2@quay.example", false)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
