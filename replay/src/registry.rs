//! What the pusher needs of a registry. The real one is `registry_client::Client`
//! (adapted in `client.rs`); tests use an in-memory fake.

use std::io::Read;

use ferry_format::Digest;

/// A registry failure, already worded for the operator (URL, status, registry message).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RegistryFailure {
    pub message: String,
    /// The registry could not be reached, or kept failing after every retry: the rest of
    /// the run would only wait for it too, so the push stops and says to run it again.
    pub unreachable: bool,
    /// The registry answered with a server error (5xx) for this one request.
    pub server_error: bool,
    /// The cancel flag was set (Ctrl-C): the request was not sent, or was cut short and
    /// its upload session cancelled.
    pub interrupted: bool,
}

impl RegistryFailure {
    pub fn new(message: impl Into<String>) -> RegistryFailure {
        RegistryFailure {
            message: message.into(),
            unreachable: false,
            server_error: false,
            interrupted: false,
        }
    }
}

/// Opens the blob's bytes afresh (for each attempt).
pub type OpenBody<'a> = dyn Fn() -> Result<Box<dyn Read + 'a>, RegistryFailure> + 'a;

pub trait Registry: Sync {
    fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryFailure>;
    /// True when mounted; false when the registry declined (the caller uploads instead).
    fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool, RegistryFailure>;
    fn upload_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        open: &OpenBody<'_>,
    ) -> Result<(), RegistryFailure>;
    /// The digest a tag or digest reference resolves to, if the manifest exists.
    fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryFailure>;
    fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryFailure>;
}
