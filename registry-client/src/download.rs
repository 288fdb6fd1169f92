//! Blob downloads for the pull side: `GET /v2/<repo>/blobs/<digest>`, streamed, resumable
//! with `Range`. The caller (the pull cache) hashes what it writes; this module checks what
//! HTTP can say: the status, `Content-Range` against the offset asked for, and the length.
//
// SKELETON (integrator): the signatures below are the contract the `pull` crate codes
// against; the bodies are filled in by the registry-client/pull-cache work.

use std::io::Read;

use crate::client::Client;
use crate::error::Result;
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

impl Client {
    /// `GET /v2/<repo>/blobs/<digest>`, with `Range: bytes=<offset>-` when `offset > 0`.
    /// `Ok(None)` on 404. Redirects (to a CDN) are followed without credentials; transient
    /// answers before the body starts are retried within the client's [`RetryPolicy`](crate::RetryPolicy).
    pub fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Option<BlobStream>> {
        let _ = (repo, digest, offset);
        todo!("fetch_blob: streamed GET with Range")
    }
}
