//! The first contact with a registry: one `GET /v2/` before anything else, so that a wrong
//! address is said once, plainly, instead of as a failure of every request after it.
//!
//! distribution-spec "Determining support": a registry answers `GET /v2/` with 200 (or 401
//! when it wants credentials) and sends `Docker-Distribution-API-Version: registry/2.0`.
//! What the probe tells apart:
//! - the name does not resolve, or nothing listens on the port (connection refused);
//! - the server speaks plain HTTP where HTTPS was asked for, or the reverse: an anonymous
//!   `GET /v2/` over the other scheme shows which. In insecure mode, without a scheme in
//!   the address, the client then uses the other scheme (as podman and skopeo do with
//!   `--tls-verify=false`); otherwise it says so. Nothing is ever sent over plain HTTP
//!   with credentials unless insecure mode allows it;
//! - the server answers, but is not a registry (no header, another status).

use std::io;
use std::net::ToSocketAddrs;

use crate::auth::Scopes;
use crate::client::Client;
use crate::config::Config;
use crate::endpoint::{Origin, Scheme};
use crate::error::{excerpt, is_transient_status, RegistryError, Result};
use crate::retry::{Backoff, RetryPolicy};
use crate::transport::{registry_origin, scheme_given, Request, Response, Transport};

/// The header every Distribution API answer carries.
const API_VERSION_HEADER: &str = "docker-distribution-api-version";

impl Client {
    /// A client whose registry answered `GET /v2/` as a registry, with the credentials
    /// accepted. The scheme may differ from the one [`Config::registry`] implies: in
    /// insecure mode and without a scheme in the address, a server that speaks only the
    /// other one is reached with it ([`Client::base_url`] says which).
    ///
    /// Errors name what is wrong: [`RegistryError::NameNotResolved`],
    /// [`RegistryError::ConnectionRefused`], [`RegistryError::PlainHttpRegistry`],
    /// [`RegistryError::TlsRegistry`], [`RegistryError::NotARegistry`], or what the
    /// request itself met (TLS certificate, timeout, 401).
    pub fn connect(config: Config) -> Result<Client> {
        let preferred = registry_origin(&config.registry, config.insecure)?;
        resolve(&config, &preferred)?;
        let client = Client {
            transport: Transport::with_origin(&config, preferred.clone())?,
            upload: config.upload.clone(),
        };
        let first = match client.probe() {
            Ok(()) => return Ok(client),
            Err(e) => e,
        };
        if !may_be_the_other_scheme(&first) {
            return Err(first);
        }
        let other_scheme = match preferred.scheme {
            Scheme::Https => Scheme::Http,
            Scheme::Http => Scheme::Https,
        };
        let Some(other) = Origin::from_authority(other_scheme, authority(&config.registry)) else {
            return Err(first);
        };
        match what_answers(&config, &other) {
            Speaks::Registry => {}
            // The TLS handshake failed for want of TLS (not for a certificate), and no
            // registry answers plain HTTP there either: something else listens.
            Speaks::OtherHttp(status) if other_scheme == Scheme::Http && !certificate(&first) => {
                return Err(RegistryError::NotARegistry {
                    url: format!("{}/v2/", preferred.base()),
                    problem: format!(
                        "speaks neither TLS nor the Distribution API (over plain HTTP it answered {status})"
                    ),
                    body_excerpt: String::new(),
                })
            }
            Speaks::Nothing if other_scheme == Scheme::Http && !certificate(&first) => {
                return Err(RegistryError::NotARegistry {
                    url: format!("{}/v2/", preferred.base()),
                    problem: "speaks neither TLS nor HTTP".into(),
                    body_excerpt: String::new(),
                })
            }
            _ => return Err(first),
        }
        let explicit = scheme_given(&config.registry);
        match other_scheme {
            Scheme::Http if !config.insecure || explicit => Err(RegistryError::PlainHttpRegistry {
                url: format!("{}/v2/", other.base()),
                asked: format!("{}/v2/", preferred.base()),
            }),
            Scheme::Https if explicit => Err(RegistryError::TlsRegistry {
                url: format!("{}/v2/", other.base()),
                asked: format!("{}/v2/", preferred.base()),
            }),
            _ => {
                let client = Client {
                    transport: Transport::with_origin(&config, other)?,
                    upload: config.upload.clone(),
                };
                client.probe()?;
                Ok(client)
            }
        }
    }

    /// `GET /v2/`: anonymous first, to see what answers; then, if it asks for them, with
    /// the credentials. Transient answers (5xx, 429) are retried within the policy;
    /// transport failures are not (a wrong address should be said at once).
    fn probe(&self) -> Result<()> {
        let t = &self.transport;
        let mut backoff = Backoff::new(&t.retry);
        let resp = loop {
            let mut req = Request::new("GET", self.url("/v2/"), None);
            req.retry = false;
            let resp = t.exchange(&mut req).map_err(refused)?;
            if is_transient_status(resp.status) {
                let error = || t.error_from(&resp, None).to_string();
                if t.wait_to_retry(&mut backoff, resp.retry_after(), "GET", &req.url, error) {
                    continue;
                }
                if t.cancelled() {
                    return Err(RegistryError::Cancelled);
                }
                let last = t.error_from(&resp, None);
                return Err(if backoff.attempts() <= 1 {
                    last
                } else {
                    RegistryError::RetriesExhausted {
                        attempts: backoff.attempts(),
                        elapsed: backoff.elapsed(),
                        last: Box::new(last),
                    }
                });
            }
            break resp;
        };
        let has_header = resp.header(API_VERSION_HEADER).is_some();
        let challenged = resp.headers.get("www-authenticate").is_some();
        match resp.status {
            200 if has_header => Ok(()),
            401 if has_header || challenged => {
                // A registry that wants credentials: the usual exchange learns the
                // challenge, fetches a token if it must, and says what was refused.
                let mut req = Request::new("GET", self.url("/v2/"), Some(Scopes::default()));
                req.retry = false;
                let resp = t.exchange(&mut req).map_err(refused)?;
                match resp.status {
                    200 => Ok(()),
                    _ => Err(t.error_from(&resp, None)),
                }
            }
            _ => Err(not_a_registry(&resp, has_header)),
        }
    }
}

fn not_a_registry(resp: &Response, has_header: bool) -> RegistryError {
    let problem = match (resp.status, has_header) {
        (200, false) | (401, false) => format!(
            "answered {} without the Docker-Distribution-API-Version header every registry sends",
            resp.status
        ),
        (404, _) => "answered 404: no Distribution API (v2) here".to_owned(),
        (status, _) => format!("answered {status}, where a registry answers 200 or 401"),
    };
    let body = excerpt(&resp.body);
    RegistryError::NotARegistry {
        url: resp.shown_url(),
        problem,
        body_excerpt: body,
    }
}

/// A refused connection, named as such: the port is wrong or the registry is not running.
/// An answer that is not HTTP at all: something else listens there.
fn refused(e: RegistryError) -> RegistryError {
    match &e {
        RegistryError::Transport { url, source, .. }
            if url.starts_with("http://")
                && matches!(
                    source.downcast_ref::<ureq::Error>(),
                    Some(ureq::Error::Protocol(_))
                ) =>
        {
            RegistryError::NotARegistry {
                url: url.clone(),
                problem: format!("answered with something that is not HTTP ({source})"),
                body_excerpt: String::new(),
            }
        }
        RegistryError::Transport { url, source, .. }
            if io_kind(source.as_ref()) == Some(io::ErrorKind::ConnectionRefused) =>
        {
            RegistryError::ConnectionRefused { url: url.clone() }
        }
        _ => e,
    }
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        if let Some(ureq::Error::Io(io)) = err.downcast_ref::<ureq::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

/// Failures that a server speaking the other scheme produces: a TLS handshake answered by
/// plain HTTP, a plain request answered by a TLS server (an HTTP 400 from Go or nginx, or
/// a closed connection), garbage.
fn may_be_the_other_scheme(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Tls { .. }
            | RegistryError::Transport { .. }
            | RegistryError::NotARegistry { .. }
            | RegistryError::Garbage { .. }
            | RegistryError::Protocol { .. }
    )
}

/// What an anonymous `GET /v2/` over `origin` meets.
enum Speaks {
    Registry,
    /// An HTTP answer, not a registry's.
    OtherHttp(u16),
    /// No HTTP answer (not HTTP, or a TLS handshake that failed).
    Nothing,
}

/// Asks anonymously over `origin`, never with credentials and with TLS unverified: it only
/// finds out what the server speaks.
fn what_answers(config: &Config, origin: &Origin) -> Speaks {
    let mut quiet = config.clone();
    quiet.credentials = None;
    quiet.insecure = true;
    quiet.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let Ok(t) = Transport::with_origin(&quiet, origin.clone()) else {
        return Speaks::Nothing;
    };
    let mut req = Request::new("GET", format!("{}/v2/", origin.base()), None);
    req.retry = false;
    match t.exchange(&mut req) {
        Ok(resp)
            if matches!(resp.status, 200 | 401) && resp.header(API_VERSION_HEADER).is_some() =>
        {
            Speaks::Registry
        }
        Ok(resp) => Speaks::OtherHttp(resp.status),
        Err(_) => Speaks::Nothing,
    }
}

/// A TLS failure about the certificate (the server does speak TLS).
fn certificate(e: &RegistryError) -> bool {
    match e {
        RegistryError::Tls { problem, .. } => {
            let p = problem.to_ascii_lowercase();
            p.contains("certificate") || p.contains("issuer") || p.contains("notvalidforname")
        }
        _ => false,
    }
}

/// `host[:port]` of a registry address, without its scheme.
fn authority(registry: &str) -> &str {
    let t = registry.trim().trim_end_matches('/');
    t.split_once("://").map_or(t, |(_, rest)| rest)
}

/// Resolves the registry's name first, so that a typo is said as such. Skipped when a
/// proxy is in use: then the proxy resolves it.
fn resolve(config: &Config, origin: &Origin) -> Result<()> {
    if config.proxy_from_env && ureq::Proxy::try_from_env().is_some() {
        return Ok(());
    }
    let host = origin.host.trim_start_matches('[').trim_end_matches(']');
    let unresolved = |problem: String| RegistryError::NameNotResolved {
        host: origin.host.clone(),
        problem,
    };
    match (host, origin.port).to_socket_addrs() {
        Ok(addrs) if addrs.len() > 0 => Ok(()),
        Ok(_) => Err(unresolved("no address".into())),
        Err(e) => Err(unresolved(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(authority("http://r.lab:5000/"), "r.lab:5000");
        assert_eq!(authority("r.lab"), "r.lab");
    }
}
