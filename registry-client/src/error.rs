//! What can go wrong talking to a registry, as findings: every variant that involves a
//! request names it (method and URL, with user information and long query values cut,
//! see `endpoint::display_url`), and registry answers show the decoded error body
//! (distribution-spec "Error Codes": `{"errors":[{"code","message","detail"}]}`).
//!
//! No variant ever holds a password, identity token or bearer token.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use oci::Digest;

/// One entry of a registry's `{"errors":[…]}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    pub code: String,
    pub message: String,
    /// `detail` as compact JSON, cut to 300 characters.
    pub detail: Option<String>,
}

/// The decoded error body of an answer (empty when there was none, as for `HEAD`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteErrors(pub Vec<RemoteError>);

impl RemoteErrors {
    pub fn first_code(&self) -> Option<&str> {
        self.0.first().map(|e| e.code.as_str())
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.0.iter().any(|e| e.code == code)
    }
}

impl fmt::Display for RemoteErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no error body");
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}", e.code)?;
            if !e.message.is_empty() {
                write!(f, ": {}", e.message)?;
            }
            if let Some(d) = &e.detail {
                write!(f, " ({d})")?;
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// Decodes a registry error body; `None` when the bytes are not one.
pub(crate) fn decode_error_body(body: &[u8]) -> Option<RemoteErrors> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let entries = parsed
        .errors
        .into_iter()
        .take(20)
        .map(|e| RemoteError {
            code: cut(&e.code, 80),
            message: cut(&e.message, 300),
            detail: e
                .detail
                .filter(|d| !d.is_null())
                .map(|d| cut(&d.to_string(), 300)),
        })
        .collect();
    Some(RemoteErrors(entries))
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The start of a body that is not what was expected, printable: at most 200 characters,
/// control characters escaped.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(800)]);
    let mut out = String::new();
    for c in text.chars() {
        if out.chars().count() >= 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What went wrong with a docker credential helper.
#[derive(Debug)]
pub struct HelperFailure {
    /// `docker-credential-<name>`.
    pub helper: String,
    /// The auth file that names it.
    pub config: PathBuf,
    /// `credsStore` or `credHelpers`.
    pub setting: &'static str,
    /// The server it was asked for.
    pub server: String,
    pub problem: String,
}

impl fmt::Display for HelperFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HelperFailure {
            helper,
            config,
            setting,
            server,
            problem,
        } = self;
        write!(
            f,
            "credential helper {helper} (named by `{setting}` in {}), asked for {server}: {problem}. Install or fix it, or give credentials another way: an auth file with an `auths` entry for {server} (--authfile FILE; `podman login --authfile FILE {server}` writes one)",
            config.display()
        )
    }
}

fn began(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!("; its answer began {excerpt:?}")
    }
}

/// Errors of the registry client.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error status and (usually) an error body.
    #[error("{method} {url}: registry answered {status}: {errors}")]
    Registry {
        method: String,
        url: String,
        status: u16,
        errors: RemoteErrors,
    },

    /// 401: no credentials, wrong credentials, or a token that does not grant the scope.
    #[error("{method} {url}: unauthorized ({status}): {hint}; registry said: {errors}")]
    Unauthorized {
        method: String,
        url: String,
        status: u16,
        hint: String,
        errors: RemoteErrors,
    },

    /// 403: authenticated, but not allowed.
    #[error("{method} {url}: access denied ({status}): {hint}; registry said: {errors}")]
    Denied {
        method: String,
        url: String,
        status: u16,
        hint: String,
        errors: RemoteErrors,
    },

    /// The server answered with a body that is neither what was asked for nor a registry
    /// error (an HTML page from a proxy, a truncated or non-JSON reply).
    #[error("{method} {url}: answered {status} with a body that is not a registry answer: {body_excerpt:?}")]
    Garbage {
        method: String,
        url: String,
        status: u16,
        body_excerpt: String,
    },

    /// The answer breaks the protocol in another way (no `Location` on 202, an unexpected
    /// status, a redirect that cannot be followed).
    #[error("{method} {url}: {problem}")]
    Protocol {
        method: String,
        url: String,
        status: u16,
        problem: String,
    },

    /// The registry's digest of what it stored is not the digest asked for.
    #[error("{method} {url}: digest mismatch: expected {expected}, the registry reports {actual}")]
    DigestMismatch {
        method: String,
        url: String,
        expected: Digest,
        actual: String,
    },

    /// No connection, a reset, a broken TLS stream, a malformed HTTP answer.
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The server went silent for longer than the configured timeout.
    #[error("{method} {url}: timed out ({phase})")]
    Timeout {
        method: String,
        url: String,
        phase: String,
    },

    /// The TLS handshake failed: the certificate is not trusted or does not match.
    #[error("{method} {url}: TLS: {problem}{hint}")]
    Tls {
        method: String,
        url: String,
        problem: String,
        hint: String,
    },

    /// Retryable failures went on past the retry policy; `last` is the final one.
    #[error("gave up after {attempts} attempts over {:.1} s: {last}", elapsed.as_secs_f64())]
    RetriesExhausted {
        attempts: u32,
        elapsed: Duration,
        last: Box<RegistryError>,
    },

    /// A download resumed with `Range` cannot go on from where it stopped: the registry
    /// answered 416, or a `Content-Range` that does not start at the offset asked for.
    /// What was kept is of no use with this answer: fetch the blob again from byte 0.
    #[error("{method} {url}: cannot resume at byte {offset}: {problem}")]
    RangeNotResumable {
        method: String,
        url: String,
        offset: u64,
        status: u16,
        problem: String,
    },

    /// The caller's reader for a blob failed (a disk error, a pulled medium). Not retried:
    /// the registry did nothing wrong.
    #[error("reading blob {digest} to upload it: {source}")]
    BlobRead {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },

    /// The caller's reader for a blob ended before the declared size.
    #[error("blob {digest}: its reader gave {actual} bytes, but its size is {expected}")]
    BlobLength {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    /// A repository name, tag or digest that cannot be put in a request: `reason` says
    /// what breaks the grammar and where.
    #[error("{value:?} is not a valid {what}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: String,
    },

    /// The registry's host name does not resolve (checked before the first request).
    #[error("the registry's name {host} does not resolve ({problem})")]
    NameNotResolved { host: String, problem: String },

    /// Nothing listens on the registry's port.
    #[error("GET {url}: connection refused: nothing listens on that port")]
    ConnectionRefused { url: String },

    /// HTTPS was asked for, and the server speaks plain HTTP (it answered there as a
    /// registry).
    #[error("{asked}: the registry speaks plain HTTP, not HTTPS (it answers at {url})")]
    PlainHttpRegistry { url: String, asked: String },

    /// Plain HTTP was asked for, and the server speaks HTTPS.
    #[error("{asked}: the registry speaks HTTPS (TLS), not plain HTTP (it answers at {url})")]
    TlsRegistry { url: String, asked: String },

    /// Something answered `GET /v2/`, but not as a registry does.
    #[error(
        "GET {url}: this is not a container registry: it {problem}{}",
        began(body_excerpt)
    )]
    NotARegistry {
        url: String,
        problem: String,
        body_excerpt: String,
    },

    /// The registry's token server is reached over plain HTTP where credentials may not go.
    #[error("the registry {registry} sends logins to the token server {realm} over plain HTTP: {why}. Credentials were not sent. Serve the token server over HTTPS (credentials then go to it, as docker and podman send them), or on the registry's host")]
    CredentialsWithheld {
        registry: String,
        realm: String,
        why: String,
    },

    /// The cancel flag was set (Ctrl-C): the request was not sent, or its body was cut
    /// short and its upload session cancelled.
    #[error("interrupted")]
    Cancelled,

    /// The client configuration cannot work (address, scheme).
    #[error("registry configuration: {problem}")]
    Config { problem: String },

    /// The CA certificate file given to trust cannot be used.
    #[error("CA certificate {}: {problem}", path.display())]
    CaCert { path: PathBuf, problem: String },

    /// A docker credential helper named in an auth file is missing or failed.
    #[error("{0}")]
    CredentialHelper(Box<HelperFailure>),

    /// An auth file cannot be read or parsed.
    #[error("auth file {}: {problem}", path.display())]
    AuthFile { path: PathBuf, problem: String },
}

impl RegistryError {
    /// The HTTP status of the answer this error reports, if it reports one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Registry { status, .. }
            | RegistryError::Unauthorized { status, .. }
            | RegistryError::Denied { status, .. }
            | RegistryError::Garbage { status, .. }
            | RegistryError::Protocol { status, .. }
            | RegistryError::RangeNotResumable { status, .. } => Some(*status).filter(|&s| s != 0),
            RegistryError::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The registry's error codes (`BLOB_UNKNOWN`, `DENIED`, …), if it sent any.
    pub fn remote_errors(&self) -> Option<&RemoteErrors> {
        match self {
            RegistryError::Registry { errors, .. }
            | RegistryError::Unauthorized { errors, .. }
            | RegistryError::Denied { errors, .. } => Some(errors),
            RegistryError::RetriesExhausted { last, .. } => last.remote_errors(),
            _ => None,
        }
    }

    /// Whether the registry sent error code `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.remote_errors().is_some_and(|e| e.has_code(code))
    }

    /// Failures worth trying again: transport trouble, timeouts, 5xx, 408 and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } | RegistryError::Timeout { .. } => true,
            RegistryError::Registry { status, .. } | RegistryError::Garbage { status, .. } => {
                is_transient_status(*status)
            }
            _ => false,
        }
    }
}

/// Statuses that are retried (RFC 9110: 408 and 5xx; RFC 6585: 429). 501 and 505 say the
/// server will never do it, so they are not.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && !matches!(status, 501 | 505)
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_decode_and_print() {
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:ab"},{"code":"DENIED","message":""}]}"#;
        let errs = decode_error_body(body).unwrap();
        assert_eq!(errs.first_code(), Some("MANIFEST_BLOB_UNKNOWN"));
        assert!(errs.has_code("DENIED"));
        assert_eq!(
            errs.to_string(),
            r#"MANIFEST_BLOB_UNKNOWN: blob unknown to registry ("sha256:ab"); DENIED"#
        );
        assert!(decode_error_body(b"<html>502</html>").is_none());
        assert!(decode_error_body(b"{\"error\":\"x\"}").is_none());
        assert_eq!(RemoteErrors::default().to_string(), "no error body");
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        let e = excerpt(b"<html>\r\n\x1b[31mbad gateway</html>");
        assert_eq!(e, "<html>\\r\\n\\u{1b}[31mbad gateway</html>");
        assert_eq!(excerpt(&[b'x'; 5000]).chars().count(), 201);
        assert_eq!(excerpt(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 416, 501, 505] {
            assert!(!is_transient_status(s), "{s}");
        }
    }
}
