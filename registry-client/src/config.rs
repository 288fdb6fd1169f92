//! How to reach and talk to one registry: [`Config`] and the timeouts and upload policy it
//! holds. Its own module so that the transport, the probe and the client all read it
//! without reaching into one another.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::credentials::Credentials;
use crate::retry::{RetryObserver, RetryPolicy};

/// How to reach and talk to one registry.
#[derive(Clone)]
pub struct Config {
    /// `host[:port]`, or `https://host[:port]`, or `http://host[:port]`. The scheme:
    /// - `https` by default, with the certificate verified against the system's roots
    ///   plus `ca_cert`;
    /// - with `insecure`: plain `http` first for a loopback host (`localhost`,
    ///   `127.0.0.0/8`, `[::1]`), `https` without certificate verification first for
    ///   other hosts; [`Client::connect`](crate::Client::connect) then uses the other scheme if the server speaks
    ///   only that one (as podman's `--tls-verify=false` does: in insecure mode a network
    ///   attacker can read and change everything anyway). `http://…` and `https://…` fix
    ///   the scheme;
    /// - without `insecure`: verified `https` only; `http://…` is refused. Nothing falls
    ///   back to plain HTTP.
    pub registry: String,
    pub insecure: bool,
    /// A PEM file of CA certificates trusted in addition to the system's.
    pub ca_cert: Option<PathBuf>,
    pub credentials: Option<Credentials>,
    pub user_agent: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub upload: UploadPolicy,
    /// Idle connections kept per host: at least the number of worker threads.
    pub max_idle_connections: usize,
    /// Honour `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY`.
    pub proxy_from_env: bool,
    /// A cancel flag (a binary sets it on Ctrl-C or SIGTERM). Once it is set, no new
    /// request starts (but the `DELETE`s that cancel upload sessions), a body being sent
    /// stops at its next read, the upload session it was for is cancelled, retry waits end,
    /// and calls return [`RegistryError::Cancelled`](crate::RegistryError::Cancelled).
    pub cancel: Option<&'static AtomicBool>,
    /// Told of every retry of a request (connection error, timeout, 5xx, 408, 429) before
    /// its wait, so that a caller can say so as it happens (the pull's `retry` events).
    /// Not told of the restarts of a blob upload. None: retries are silent.
    pub on_retry: Option<RetryObserver>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("registry", &self.registry)
            .field("insecure", &self.insecure)
            .field("ca_cert", &self.ca_cert)
            // Credentials' own Debug shows no secret.
            .field("credentials", &self.credentials)
            .field("user_agent", &self.user_agent)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("upload", &self.upload)
            .field("max_idle_connections", &self.max_idle_connections)
            .field("proxy_from_env", &self.proxy_from_env)
            .field("cancel", &self.cancel)
            .field("on_retry", &self.on_retry.as_ref().map(|_| "<observer>"))
            .finish()
    }
}

impl Config {
    /// Defaults for `registry`: verified TLS, no credentials, [`Timeouts::default`],
    /// [`RetryPolicy::default`], [`UploadPolicy::default`].
    pub fn new(registry: impl Into<String>) -> Config {
        Config {
            registry: registry.into(),
            insecure: false,
            ca_cert: None,
            credentials: None,
            user_agent: concat!("ferry-registry-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            upload: UploadPolicy::default(),
            max_idle_connections: 16,
            proxy_from_env: true,
            cancel: None,
            on_retry: None,
        }
    }
}

/// Network timeouts. `idle` bounds each wait for the peer (one read or write, including
/// the wait for an answer after a body), not a whole transfer: a large layer on a slow
/// link may take hours and still be healthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connection setup, TLS handshake included.
    pub connect: Duration,
    pub idle: Duration,
}

impl Default for Timeouts {
    /// 30 s to connect; 5 minutes of silence, since a registry may take minutes to move a
    /// finished multi-gigabyte upload into object storage before it answers the last PUT.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            idle: Duration::from_secs(300),
        }
    }
}

/// How blobs are sent.
///
/// Blobs go in one streamed `PUT` (distribution-spec "Pushing a blob monolithically"):
/// one request, no server-side appends. Chunked `PATCH` uploads are the fallback for
/// proxies that limit body sizes (an answer of 413), and are used from the start for
/// blobs above `max_monolithic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPolicy {
    /// Bytes per `PATCH`; raised to the registry's `OCI-Chunk-Min-Length` if that is more.
    pub chunk_size: u64,
    /// Blobs larger than this are sent in chunks from the start.
    pub max_monolithic: Option<u64>,
    /// After Ctrl-C, a request body with at most this many bytes still to send is finished
    /// rather than cut. Cutting a body races with the registry: distribution goes on
    /// writing the cut request's data and hash state after the connection closes, so a
    /// DELETE sent at once may find the session in flux (404) or be undone by that late
    /// write, and the session's files stay until the registry purges old uploads. A
    /// finished body leaves nothing behind; only bodies with more than this left are cut.
    pub finish_after_cancel: u64,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            chunk_size: 32 * 1024 * 1024,
            max_monolithic: None,
            finish_after_cancel: 32 * 1024 * 1024,
        }
    }
}
