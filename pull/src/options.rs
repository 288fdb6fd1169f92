//! How a pull reaches registries and how hard it tries.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use imageset::Platform;

/// The pull options of both `ferry-pack pull` and `ferry-pack --config`.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--platform` (repeatable): the children of multi-arch indexes to keep. An image's
    /// own `platforms` in the image set win over these; empty keeps every child.
    pub platforms: Vec<Platform>,
    /// `--authfile`: the only auth file read (otherwise the standard search path).
    pub authfile: Option<PathBuf>,
    /// `--registries-conf`: the only registries.conf read (otherwise the standard files).
    pub registries_conf: Option<PathBuf>,
    /// `$HOME`, for the per-user registries.conf (None: none).
    pub home: Option<PathBuf>,
    /// `--ca-cert`: a PEM file of CAs trusted in addition to the system's, for every registry.
    pub ca_cert: Option<PathBuf>,
    /// `--insecure`: plain HTTP / unverified TLS for every registry (registries.conf can
    /// also say it per registry).
    pub insecure: bool,
    /// `--jobs`: blobs downloaded at once.
    pub jobs: usize,
    /// `--retry-for`: how long one request keeps retrying transient failures without
    /// progress (a blob download that received bytes starts its time again).
    pub retry_for: Duration,
    /// Set on Ctrl-C / SIGTERM: no new request starts, downloads stop at their next read
    /// (the partial is kept for the next run to resume).
    pub cancel: &'static AtomicBool,
    /// `--allow-missing`: a bundle or related image of a catalog that cannot be pulled
    /// drops the bundles that need it from the rebuilt catalog (each named in the
    /// catalog's report) instead of failing the image.
    pub allow_missing: bool,
}

impl Options {
    /// Options for work that reads only the cache (`prune`): no files, no platforms, one
    /// job, no retries.
    pub fn offline(cancel: &'static AtomicBool) -> Options {
        Options {
            platforms: Vec::new(),
            authfile: None,
            registries_conf: None,
            home: None,
            ca_cert: None,
            insecure: false,
            jobs: 1,
            retry_for: Duration::ZERO,
            cancel,
            allow_missing: false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Options for unit tests: no files, one job, short retries.
    pub(crate) fn options() -> Options {
        static CANCEL: AtomicBool = AtomicBool::new(false);
        Options {
            retry_for: Duration::from_secs(1),
            ..Options::offline(&CANCEL)
        }
    }
}
