//! Blob uploads (distribution-spec "Pushing blobs").
//!
//! `POST /v2/<repo>/blobs/uploads/` opens a session (202 + `Location`, possibly relative
//! and already carrying a query). Then either one streamed `PUT <location>&digest=<d>` with
//! the whole blob and its `Content-Length`, or `PATCH`es with `Content-Range: a-b`
//! (inclusive), each answered by 202 with `Range: 0-b` and a new `Location`, closed by an
//! empty `PUT …&digest=`. 201 ends both, with `Docker-Content-Digest` checked when sent.
//!
//! A session that dies (404 `BLOB_UPLOAD_UNKNOWN`/`BLOB_UPLOAD_INVALID`, a reset in the
//! middle of a body, 5xx, 416) is not resumed: on distribution 2.8.2 a `PATCH` cut short
//! cannot be resumed (it answers 416 or keeps bytes it never acknowledged). The blob starts over
//! in a new session with a fresh reader from the caller, after a backoff wait, and only
//! after a `HEAD` shows the blob did not arrive anyway. Memory stays bounded: bodies are
//! streamed from the caller's reader, never buffered.

use std::io::Read;
use std::time::Duration;

use crate::auth::Scopes;
use crate::client::{check_repository, Client};
use crate::endpoint::{display_url, with_query, Origin, Scheme};
use crate::error::{is_transient_status, RegistryError, Result};
use crate::retry::Backoff;
use crate::transport::{Body, Request, Response};
use oci::Digest;

/// Bodies at least this large are sent with `Expect: 100-continue`, so a registry or proxy
/// that refuses them (401, 404, 413) says so before the bytes go out.
const EXPECT_CONTINUE_MIN: u64 = 1024 * 1024;
/// After a 413 for a body this small, halving stops: something refuses all bodies.
const MIN_CHUNK: u64 = 1024 * 1024;

/// What an upload took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// How often the blob was started over (dead session, network failure, 413).
    pub restarts: u32,
    /// Whether the blob finally went in chunks.
    pub chunked: bool,
}

/// Why one try of an upload ended without the blob.
enum Failure {
    /// Start over after a backoff wait. Boxed so that a `Result<_, Failure>` stays small.
    Restart {
        error: Box<RegistryError>,
        retry_after: Option<Duration>,
    },
    /// 413: the body was too large for something on the way.
    TooLarge(RegistryError),
    Fatal(RegistryError),
}

impl Client {
    /// Uploads blob `digest` of `size` bytes into `repo`. `open` gives a reader positioned
    /// at the blob's first byte; it is called again for every restart. The reader must
    /// give exactly `size` bytes; the registry checks the digest.
    pub fn upload_blob<F, R>(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        mut open: F,
    ) -> Result<UploadReport>
    where
        F: FnMut() -> std::io::Result<R>,
        R: Read,
    {
        check_repository(repo)?;
        let policy = &self.upload;
        let mut backoff = Backoff::new(&self.transport.retry);
        let mut report = UploadReport::default();
        let mut chunk = policy
            .max_monolithic
            .filter(|&max| size > max)
            .map(|_| policy.chunk_size.max(1));
        let mut auth_restarted = false;
        loop {
            report.chunked = chunk.is_some() && size > 0;
            let (error, retry_after) = match self.upload_once(repo, digest, size, &mut open, chunk)
            {
                Ok(()) => return Ok(report),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::TooLarge(e)) => {
                    // Halve until a body fits; give up once one of MIN_CHUNK was refused.
                    let refused = chunk.unwrap_or(size);
                    if refused <= MIN_CHUNK {
                        return Err(e);
                    }
                    chunk = Some(match chunk {
                        None => policy.chunk_size.clamp(1, size.div_ceil(2)),
                        Some(c) => c / 2,
                    });
                    report.restarts += 1;
                    continue;
                }
                Err(Failure::Restart { error, retry_after }) => (*error, retry_after),
            };
            if matches!(error, RegistryError::Unauthorized { .. }) {
                // The token lapsed during a long body: the challenge was learnt, go again once.
                if auth_restarted {
                    return Err(error);
                }
                auth_restarted = true;
            } else if !backoff.wait(retry_after, self.transport.cancel) {
                if self.transport.cancelled() {
                    return Err(RegistryError::Cancelled);
                }
                return Err(if backoff.attempts() <= 1 {
                    error
                } else {
                    RegistryError::RetriesExhausted {
                        attempts: backoff.attempts(),
                        elapsed: backoff.elapsed(),
                        last: Box::new(error),
                    }
                });
            }
            report.restarts += 1;
            // The answer to the last PUT may have been lost after the blob was stored. One
            // try: retrying is this loop's job, within the one time bound of the upload.
            if let Ok(Some(found)) = self.blob_exists_once(repo, digest) {
                if found == size {
                    return Ok(report);
                }
            }
        }
    }

    fn upload_once<F, R>(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        open: &mut F,
        chunk: Option<u64>,
    ) -> Result<(), Failure>
    where
        F: FnMut() -> std::io::Result<R>,
        R: Read,
    {
        let t = &self.transport;
        let scopes = Scopes::push(repo);
        let mut req = Request::new(
            "POST",
            self.url(&format!("/v2/{repo}/blobs/uploads/")),
            Some(scopes.clone()),
        );
        // Transient failures start the blob over in `upload_blob`'s loop, whose backoff
        // is the only one: retries nested in it would outlast the time bound.
        req.retry = false;
        let transient = |error: RegistryError, retry_after| {
            if error.is_transient() {
                Failure::Restart {
                    error: Box::new(error),
                    retry_after,
                }
            } else {
                Failure::Fatal(error)
            }
        };
        let resp = t.exchange(&mut req).map_err(|e| transient(e, None))?;
        if resp.status != 202 {
            let retry_after = resp.retry_after();
            return Err(transient(t.error_from(&resp, Some(&scopes)), retry_after));
        }
        let mut location = self.upload_location(&resp).map_err(Failure::Fatal)?;
        let min_chunk = resp
            .header("oci-chunk-min-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let open_reader = |open: &mut F| {
            open().map_err(|source| {
                Failure::Fatal(RegistryError::BlobRead {
                    digest: *digest,
                    source,
                })
            })
        };

        let chunk = match chunk {
            Some(c) if size > 0 => c.max(min_chunk).max(1),
            _ => {
                let mut reader = open_reader(open)?;
                let mut req = Request::new(
                    "PUT",
                    with_query(&location, "digest", &digest.to_string()),
                    Some(scopes.clone()),
                )
                .header("content-type", "application/octet-stream")
                .body(Body::Reader {
                    reader: &mut reader,
                    len: size,
                    digest,
                });
                if size >= EXPECT_CONTINUE_MIN {
                    req = req.header("expect", "100-continue");
                }
                let result = t.exchange(&mut req);
                return self.finish(repo, &location, result, digest);
            }
        };

        let mut reader = open_reader(open)?;
        let mut offset = 0u64;
        while offset < size {
            let n = chunk.min(size - offset);
            let mut piece = (&mut reader).take(n);
            let mut req = Request::new("PATCH", location.clone(), Some(scopes.clone()))
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{offset}-{}", offset + n - 1))
                .body(Body::Reader {
                    reader: &mut piece,
                    len: n,
                    digest,
                });
            if n >= EXPECT_CONTINUE_MIN {
                req = req.header("expect", "100-continue");
            }
            let resp = match t.exchange(&mut req) {
                Ok(r) => r,
                Err(e) => return Err(self.failed(repo, &location, e, None)),
            };
            if resp.status != 202 {
                return Err(self.refused(repo, &location, &resp));
            }
            // `Range: 0-<last byte held>`; distribution 2.8.2 says `0-0` for 0 and 1 bytes,
            // which never matters here: no chunk is empty.
            let held = resp.header("range").and_then(range_end);
            if let Some(end) = held {
                if end + 1 != offset + n {
                    let error = resp.protocol(&format!(
                        "the registry holds bytes 0-{end} after a chunk ending at byte {}",
                        offset + n - 1
                    ));
                    return Err(self.failed(repo, &location, error, None));
                }
            }
            if resp.header("location").is_some() {
                location = self.upload_location(&resp).map_err(Failure::Fatal)?;
            }
            offset += n;
        }
        let mut req = Request::new(
            "PUT",
            with_query(&location, "digest", &digest.to_string()),
            Some(scopes),
        );
        // Not retried here: a PUT that reached the registry cannot be told from one that
        // did not; the restart's HEAD can.
        req.retry = false;
        let result = t.exchange(&mut req);
        self.finish(repo, &location, result, digest)
    }

    /// A `Location` for the rest of an upload: resolved, and never a downgrade to plain HTTP.
    fn upload_location(&self, resp: &Response) -> Result<String> {
        let location = resp.location()?;
        let https = self.transport.origin.scheme == Scheme::Https;
        let plain = Origin::of_url(&location).is_some_and(|o| o.scheme == Scheme::Http);
        if https && plain && !self.transport.insecure {
            return Err(resp.protocol(&format!(
                "upload Location {} switches to plain HTTP",
                display_url(&location)
            )));
        }
        Ok(location)
    }

    /// The last request of an upload answered: 201, or why not.
    fn finish(
        &self,
        repo: &str,
        location: &str,
        result: Result<Response>,
        digest: &Digest,
    ) -> Result<(), Failure> {
        match result {
            Ok(resp) if resp.status == 201 => resp.check_digest(digest).map_err(Failure::Fatal),
            Ok(resp) => Err(self.refused(repo, location, &resp)),
            Err(e) => Err(self.failed(repo, location, e, None)),
        }
    }

    /// An error status during an upload, sorted into start over, smaller bodies, or stop.
    fn refused(&self, repo: &str, location: &str, resp: &Response) -> Failure {
        let error = self.transport.error_from(resp, Some(&Scopes::push(repo)));
        let dead_session = resp.status == 404
            && (error.has_code("BLOB_UPLOAD_UNKNOWN")
                || error.has_code("BLOB_UPLOAD_INVALID")
                || error.remote_errors().is_some_and(|e| e.0.is_empty()));
        if resp.status == 413 {
            self.cancel(repo, location);
            Failure::TooLarge(error)
        } else if dead_session {
            Failure::Restart {
                error: Box::new(error),
                retry_after: None,
            }
        } else if is_transient_status(resp.status) || resp.status == 416 {
            let retry_after = resp.retry_after();
            self.failed(repo, location, error, retry_after)
        } else {
            Failure::Fatal(error)
        }
    }

    /// A failure during an upload: our reader's failures stop it; the rest restart it.
    fn failed(
        &self,
        repo: &str,
        location: &str,
        error: RegistryError,
        retry_after: Option<Duration>,
    ) -> Failure {
        match error {
            RegistryError::BlobRead { .. } | RegistryError::BlobLength { .. } => {
                Failure::Fatal(error)
            }
            RegistryError::Cancelled => {
                // Interrupted: the session would stay open in the registry until it expires.
                // A body cut short may still be in the registry's hands for a moment (see
                // `UploadPolicy::finish_after_cancel`): give it that moment first.
                std::thread::sleep(CUT_SETTLE);
                self.cancel(repo, location);
                Failure::Fatal(error)
            }
            RegistryError::Unauthorized { .. } => Failure::Restart {
                error: Box::new(error),
                retry_after: None,
            },
            e if e.is_transient()
                || matches!(
                    e,
                    RegistryError::Protocol { .. } | RegistryError::Registry { status: 416, .. }
                ) =>
            {
                self.cancel(repo, location);
                Failure::Restart {
                    error: Box::new(e),
                    retry_after,
                }
            }
            e => Failure::Fatal(e),
        }
    }

    /// Cancels a session that will not be used again, so the registry can drop its
    /// partial data. Best effort: a session that is already dead is the usual case.
    fn cancel(&self, repo: &str, location: &str) {
        let mut req = Request::new("DELETE", location.to_owned(), Some(Scopes::push(repo)));
        req.retry = false;
        let _ = self.transport.exchange(&mut req);
    }
}

/// How long a cancelled upload waits before its DELETE, so that the registry has seen the
/// connection of a cut body close and stopped writing to the session.
const CUT_SETTLE: Duration = Duration::from_millis(250);

/// The last byte of `Range: 0-<end>` (also `bytes=0-<end>`).
fn range_end(value: &str) -> Option<u64> {
    let v = value.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, end) = v.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range_end("0-1023"), Some(1023));
        assert_eq!(range_end("bytes=0-5"), Some(5));
        assert_eq!(range_end("0-0"), Some(0));
        assert_eq!(range_end("5-9"), None);
        assert_eq!(range_end("garbage"), None);
    }
}
