//! What the pusher needs of a registry. The real one is `registry_client::Client`
//! (adapted in `client.rs`); tests use an in-memory fake.

use std::io::Read;

use ferry_format::Digest;

/// A registry failure, already worded for the operator (URL, status, registry message).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RegistryFailure(pub String);

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
