//! Blob downloads for the pull side: `GET /v2/<repo>/blobs/<digest>`, streamed, resumable
//! with `Range` (RFC 9110 section 14). The caller (the pull cache) hashes what it writes;
//! this module checks what HTTP can say: the status, `Content-Range` against the offset
//! asked for, and the length.
//!
//! Registries answer blob GETs with a redirect to their storage (S3, a CDN) more often than
//! not; the transport follows it and never sends the registry's credentials there. The
//! `Range` header goes along, and whoever finally answers decides: 206 with a matching
//! `Content-Range` resumes, 200 sends the whole blob again (the caller starts over), and
//! 416 or a `Content-Range` elsewhere is [`RegistryError::RangeNotResumable`].

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::auth::Scopes;
use crate::client::{check_repository, Client};
use crate::error::{RegistryError, Result};
use crate::transport::{Request, Response};
use oci::Digest;

/// The body of a blob being downloaded.
pub struct BlobStream {
    /// The offset of the first byte this stream yields: the offset asked for when the
    /// registry answered 206, 0 when it ignored `Range` and sent the whole blob (200).
    pub start: u64,
    /// How many bytes the stream yields, when the registry said (`Content-Length`).
    pub length: Option<u64>,
    pub(crate) reader: Box<dyn Read + Send>,
}

impl BlobStream {
    /// A stream over any reader: for callers' tests (a fake registry) and for sources
    /// that are not HTTP. `start` and `length` mean what the fields say.
    pub fn from_reader(
        start: u64,
        length: Option<u64>,
        reader: impl Read + Send + 'static,
    ) -> Self {
        BlobStream {
            start,
            length,
            reader: Box::new(reader),
        }
    }
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("start", &self.start)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

/// The body reader of a download, stopped by the client's cancel flag: the next read after
/// Ctrl-C fails at once instead of finishing a multi-gigabyte layer.
struct Cancellable<R> {
    inner: R,
    cancel: &'static AtomicBool,
}

impl<R: Read> Read for Cancellable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not `ErrorKind::Interrupted`: readers retry that one.
            return Err(io::Error::other("interrupted"));
        }
        self.inner.read(buf)
    }
}

/// `Content-Range: bytes <first>-<last>/<complete length or *>` (RFC 9110 section 14.4):
/// the first and last byte positions.
fn content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, _complete) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    (last >= first).then_some((first, last))
}

fn content_length(resp: &Response) -> Option<u64> {
    resp.header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
}

impl Client {
    /// `GET /v2/<repo>/blobs/<digest>`, with `Range: bytes=<offset>-` when `offset > 0`.
    /// `Ok(None)` on 404. Redirects (to a CDN) are followed without credentials; transient
    /// answers before the body starts are retried within the client's [`RetryPolicy`](crate::RetryPolicy).
    ///
    /// 200 gives a stream that starts at 0 (the registry ignored `Range`); 206 one that
    /// starts at `offset`, its `Content-Range` checked. 416, or a `Content-Range` that
    /// does not start at `offset`, is [`RegistryError::RangeNotResumable`]: ask again from 0.
    /// A read after the cancel flag is set fails.
    pub fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Option<BlobStream>> {
        check_repository(repo)?;
        let scopes = Scopes::pull(repo);
        let mut req = Request::new(
            "GET",
            self.url(&format!("/v2/{repo}/blobs/{digest}")),
            Some(scopes.clone()),
        );
        if offset > 0 {
            req = req.header("range", format!("bytes={offset}-"));
        }
        req.stream = true;
        let mut resp = self.transport.exchange(&mut req)?;
        let not_resumable = |resp: &Response, problem: String| RegistryError::RangeNotResumable {
            method: "GET".into(),
            url: resp.shown_url(),
            offset,
            status: resp.status,
            problem,
        };
        let (start, length) = match resp.status {
            200 => (0, content_length(&resp)),
            206 => {
                let raw = resp.header("content-range").unwrap_or_default();
                let Some((first, last)) = content_range(raw) else {
                    return Err(not_resumable(
                        &resp,
                        format!("answered 206 with an unusable Content-Range {raw:?}"),
                    ));
                };
                if first != offset {
                    return Err(not_resumable(
                        &resp,
                        format!("answered 206 with bytes {first}-{last}, not from byte {offset}"),
                    ));
                }
                let length = last - first + 1;
                if content_length(&resp).is_some_and(|n| n != length) {
                    return Err(not_resumable(
                        &resp,
                        format!(
                            "answered 206 with Content-Range {raw:?} but Content-Length {}",
                            content_length(&resp).unwrap_or_default()
                        ),
                    ));
                }
                (offset, Some(length))
            }
            404 => return Ok(None),
            416 => {
                return Err(not_resumable(
                    &resp,
                    "the registry refused the range (416)".into(),
                ))
            }
            _ => return Err(self.transport.error_from(&resp, Some(&scopes))),
        };
        resp.check_digest(digest)?;
        let body = resp
            .stream
            .take()
            .ok_or_else(|| resp.protocol("no body to stream"))?;
        Ok(Some(BlobStream {
            start,
            length,
            reader: Box::new(Cancellable {
                inner: body,
                cancel: self.transport.cancel,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, 199)));
        assert_eq!(content_range(" bytes 0-0/*"), Some((0, 0)));
        for bad in [
            "bytes 5-4/9",
            "bytes */200",
            "100-199/200",
            "bytes a-b/c",
            "",
        ] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }
}
