//! Where an image is pulled from: registries.conf gives the endpoints of a reference
//! (mirrors in order, then the registry's own location, blocked ones left out), and each
//! endpoint gets a [`Client`] of its own, made once and shared by every thread.
//!
//! Credentials are looked up for each endpoint's own host and repository, as
//! containers/image does: a mirror never gets the credentials meant for the source.
//!
//! The clients retry transient failures themselves; each retry is told to [`Retries`] and
//! becomes an [`Event::Retry`] as it happens, while the request waits
//! ([`Sources::reporting_retries`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use oci::Reference;
use registry_client::registries_conf::{Endpoint, RegistriesConf, Resolved};
use registry_client::{Client, Config, Credentials, RegistryError, RetryNotice};

use crate::error::PullError;
use crate::event::Event;
use crate::options::Options;

/// One client per (API host, insecure, credentials): the connection pool and token cache
/// of a registry are shared by every image and thread that goes there.
type ClientSlot = Arc<OnceLock<Result<Arc<Client>, Arc<RegistryError>>>>;
/// What an auth-file lookup found (shared, with its error, by every image asking again).
type Found = Result<Option<Credentials>, Arc<RegistryError>>;
/// The clients of one API host and insecure setting, one per set of credentials.
type Clients = HashMap<(String, bool), Vec<(Option<Credentials>, ClientSlot)>>;

/// The endpoints and clients of one run.
pub(crate) struct Sources<'o> {
    conf: RegistriesConf,
    options: &'o Options,
    /// Credential lookups by `host/repository` (a credential helper runs once per key).
    credentials: Mutex<HashMap<String, Found>>,
    clients: Mutex<Clients>,
    retries: Arc<Retries>,
}

/// The clients' retries of one run, queued by the thread that waits to retry (the client's
/// observer must be `'static`, the caller's event callback is not) until the reporter of
/// [`Sources::reporting_retries`] turns them into events.
#[derive(Default)]
struct Retries {
    queue: Mutex<Vec<(ThreadId, RetryNotice)>>,
    arrived: Condvar,
    /// What each worker thread is fetching, to name it in its retries.
    doing: Mutex<HashMap<ThreadId, String>>,
}

/// How long the reporter sleeps when no retry arrives (it also ends within this).
const REPORT_POLL: Duration = Duration::from_millis(100);

impl Retries {
    fn push(&self, notice: &RetryNotice) {
        let id = std::thread::current().id();
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, notice.clone()));
        self.arrived.notify_one();
    }

    /// What has arrived, waiting up to `wait` for something when nothing has.
    fn take(&self, wait: Duration) -> Vec<(ThreadId, RetryNotice)> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.is_empty() && !wait.is_zero() {
            queue = self
                .arrived
                .wait_timeout(queue, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::take(&mut *queue)
    }

    /// The event of a retry: named by what its thread was fetching, else by its request.
    fn event(&self, thread: ThreadId, n: RetryNotice) -> (String, RetryNotice) {
        let what = self
            .doing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&thread)
            .cloned()
            .unwrap_or_else(|| format!("{} {}", n.method, n.url));
        (what, n)
    }
}

/// Sets the flag when dropped: the reporter ends even if the work panics.
struct SetOnDrop<'a>(&'a AtomicBool, &'a Condvar);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        self.1.notify_all();
    }
}

/// One endpoint that failed, and why: kept to name every endpoint in the failure.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// `host[:port]/repository`, and `(mirror)` for a mirror.
    pub(crate) endpoint: String,
    pub(crate) error: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.endpoint, self.error)
    }
}

/// How an endpoint is named in messages.
pub(crate) fn endpoint_name(e: &Endpoint) -> String {
    format!(
        "{}/{}{}",
        e.host,
        e.repository,
        if e.mirror { " (mirror)" } else { "" }
    )
}

/// The `registry` and `error` of a [`Failure`](crate::Failure) after every endpoint failed:
/// each endpoint with its own error, in the order tried.
pub(crate) fn every_endpoint(attempts: &[Attempt]) -> (String, String) {
    let registry = attempts
        .iter()
        .map(|a| a.endpoint.split('/').next().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let error = match attempts {
        [one] => one.error.clone(),
        many => format!(
            "every endpoint failed: {}",
            many.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    (registry, error)
}

/// The host to send API requests to: `registry-1.docker.io` for Docker Hub.
pub(crate) fn api_host(e: &Endpoint) -> String {
    Reference::parse(&e.reference)
        .map(|r| r.api_host().to_owned())
        .unwrap_or_else(|_| e.host.clone())
}

/// Whether an error is about the run rather than one endpoint: an auth file that cannot be
/// read applies to every registry.
pub(crate) fn is_run_error(e: &RegistryError) -> bool {
    matches!(e, RegistryError::AuthFile { .. })
}

impl<'o> Sources<'o> {
    /// Reads registries.conf (`--registries-conf`, else the standard files).
    pub(crate) fn load(options: &'o Options) -> Result<Sources<'o>, PullError> {
        let conf =
            RegistriesConf::load(options.registries_conf.as_deref(), options.home.as_deref())
                .map_err(|e| PullError::Config(e.to_string()))?;
        Ok(Sources::with_conf(conf, options))
    }

    pub(crate) fn with_conf(conf: RegistriesConf, options: &'o Options) -> Sources<'o> {
        Sources {
            conf,
            options,
            credentials: Mutex::default(),
            clients: Mutex::default(),
            retries: Arc::default(),
        }
    }

    /// Names what this thread fetches from now on, for the retry events of its requests
    /// (`registry.redhat.io/ubi8/ubi:8.9`, `blob sha256:… of …`).
    pub(crate) fn working_on(&self, what: &str) {
        self.retries
            .doing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(std::thread::current().id(), what.to_owned());
    }

    /// Runs `work` while a reporter thread turns the clients' retries into
    /// [`Event::Retry`] as they happen (before each wait, not after the request is done).
    pub(crate) fn reporting_retries<R>(
        &self,
        events: &(dyn Fn(Event<'_>) + Sync),
        work: impl FnOnce() -> R,
    ) -> R {
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| loop {
                // Read before taking: once the work is done, one last take gets every retry.
                let finished = done.load(Ordering::Acquire);
                let batch = self.retries.take(if finished {
                    Duration::ZERO
                } else {
                    REPORT_POLL
                });
                for (thread, notice) in batch {
                    let (what, n) = self.retries.event(thread, notice);
                    events(Event::Retry {
                        what,
                        attempt: n.attempt,
                        wait: n.wait,
                        error: n.error,
                    });
                }
                if finished {
                    return;
                }
            });
            let _end = SetOnDrop(&done, &self.retries.arrived);
            work()
        })
    }

    /// The endpoints of `reference` (canonical, with its tag and/or digest).
    pub(crate) fn resolve(&self, reference: &str, by_digest: bool) -> Result<Resolved, String> {
        self.conf
            .resolve(reference, by_digest)
            .map_err(|e| e.to_string())
    }

    fn credentials_for(&self, e: &Endpoint) -> Found {
        // podman's keys may name a repository: look up host/repository, which falls back
        // to the host's entry.
        let key = format!("{}/{}", e.host, e.repository);
        let mut map = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = map.get(&key) {
            return found.clone();
        }
        let found =
            Credentials::from_auth_files(&key, self.options.authfile.as_deref()).map_err(Arc::new);
        map.insert(key, found.clone());
        found
    }

    /// The client for `e`, connected (one `GET /v2/`) on first use. A failed connection is
    /// remembered: the next image does not wait for the same dead registry again.
    pub(crate) fn client(&self, e: &Endpoint) -> Result<Arc<Client>, Arc<RegistryError>> {
        let credentials = self.credentials_for(e)?;
        let insecure = self.options.insecure || e.insecure;
        let host = api_host(e);
        let slot = {
            let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let list = map.entry((host.clone(), insecure)).or_default();
            match list.iter().find(|(c, _)| *c == credentials) {
                Some((_, slot)) => slot.clone(),
                None => {
                    let slot = ClientSlot::default();
                    list.push((credentials.clone(), slot.clone()));
                    slot
                }
            }
        };
        // OnceLock: a second thread asking for the same registry waits for this connect.
        slot.get_or_init(|| {
            let mut config = Config::new(host);
            config.insecure = insecure;
            config.ca_cert = self.options.ca_cert.clone();
            config.credentials = credentials;
            config.user_agent = concat!("ferry-pack/", env!("CARGO_PKG_VERSION")).to_owned();
            config.max_idle_connections = config.max_idle_connections.max(self.options.jobs * 2);
            config.retry.max_elapsed = self.options.retry_for;
            config.cancel = Some(self.options.cancel);
            let retries = self.retries.clone();
            config.on_retry = Some(Arc::new(move |n: &RetryNotice| retries.push(n)));
            Client::connect(config).map(Arc::new).map_err(Arc::new)
        })
        .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn ep(host: &str, repo: &str, mirror: bool) -> Endpoint {
        Endpoint {
            host: host.into(),
            repository: repo.into(),
            insecure: false,
            mirror,
            reference: format!("{host}/{repo}:1"),
        }
    }

    #[test]
    fn docker_hub_is_reached_at_registry_1() {
        assert_eq!(
            api_host(&ep("docker.io", "library/ubuntu", false)),
            "registry-1.docker.io"
        );
        assert_eq!(api_host(&ep("quay.io", "a/b", false)), "quay.io");
        assert_eq!(
            api_host(&ep("127.0.0.1:5000", "a/b", true)),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn a_failure_names_every_endpoint_with_its_error() {
        let attempts = vec![
            Attempt {
                endpoint: endpoint_name(&ep("mirror.lab:5000", "rh/ubi8/ubi", true)),
                error: "GET http://mirror.lab:5000/v2/: connection refused".into(),
            },
            Attempt {
                endpoint: endpoint_name(&ep("registry.redhat.io", "ubi8/ubi", false)),
                error: "no manifest 8.9 in ubi8/ubi (404)".into(),
            },
        ];
        let (registry, error) = every_endpoint(&attempts);
        assert_eq!(registry, "mirror.lab:5000, registry.redhat.io");
        assert_eq!(
            error,
            "every endpoint failed: mirror.lab:5000/rh/ubi8/ubi (mirror): GET http://mirror.lab:5000/v2/: connection refused; \
             registry.redhat.io/ubi8/ubi: no manifest 8.9 in ubi8/ubi (404)"
        );
        let (registry, error) = every_endpoint(&attempts[1..]);
        assert_eq!(registry, "registry.redhat.io");
        assert_eq!(error, "no manifest 8.9 in ubi8/ubi (404)");
    }

    #[test]
    fn mirrors_come_first_and_keep_their_own_host() {
        let conf = RegistriesConf::parse(
            Path::new("test.conf"),
            r#"
[[registry]]
prefix = "registry.redhat.io"
location = "127.0.0.1:1"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:2/rh"
insecure = true
"#,
        )
        .unwrap();
        let options = crate::options::tests::options();
        let s = Sources::with_conf(conf, &options);
        let r = s.resolve("registry.redhat.io/ubi8/ubi:8.9", false).unwrap();
        assert_eq!(r.reference, "registry.redhat.io/ubi8/ubi:8.9");
        let names: Vec<String> = r.endpoints.iter().map(endpoint_name).collect();
        assert_eq!(
            names,
            ["127.0.0.1:2/rh/ubi8/ubi (mirror)", "127.0.0.1:1/ubi8/ubi"]
        );
    }
}
