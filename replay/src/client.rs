//! The pusher's view of a real registry, through `registry_client::Client`.

use std::io::Read;

use ferry_format::Digest;
use registry_client::{Client, MountOutcome};

use crate::registry::{OpenBody, Registry, RegistryFailure};

fn fail(e: registry_client::RegistryError) -> RegistryFailure {
    let server_error = e.status().is_some_and(|s| s >= 500);
    // No answer at all (connection refused, reset, timeout, even after retries): the
    // registry is down. A 5xx for one request is that request's trouble, not the registry's.
    let unreachable = !server_error
        && (e.is_transient()
            || matches!(e, registry_client::RegistryError::RetriesExhausted { .. }));
    RegistryFailure {
        interrupted: matches!(e, registry_client::RegistryError::Cancelled),
        message: e.to_string(),
        unreachable,
        server_error,
    }
}

impl Registry for Client {
    fn blob_exists(&self, repo: &str, d: &Digest) -> Result<bool, RegistryFailure> {
        Client::blob_exists(self, repo, d)
            .map(|s| s.is_some())
            .map_err(fail)
    }

    fn mount_blob(&self, repo: &str, d: &Digest, from: &str) -> Result<bool, RegistryFailure> {
        Client::mount_blob(self, repo, d, from)
            .map(|o| o == MountOutcome::Mounted)
            .map_err(fail)
    }

    fn upload_blob(
        &self,
        repo: &str,
        d: &Digest,
        size: u64,
        open: &OpenBody<'_>,
    ) -> Result<(), RegistryFailure> {
        let opener = || -> std::io::Result<Box<dyn Read + '_>> {
            open().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.message))
        };
        Client::upload_blob(self, repo, d, size, opener)
            .map(|_| ())
            .map_err(fail)
    }

    fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryFailure> {
        let info = Client::manifest_exists(self, repo, reference).map_err(fail)?;
        Ok(info.map(|i| i.digest))
    }

    fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryFailure> {
        Client::put_manifest(self, repo, reference, media_type, bytes)
            .map(|_| ())
            .map_err(fail)
    }
}
