//! What the pusher needs of a registry ([`Registry`]), and the real one: a
//! `registry_client::Client`, adapted at the end of this module.

use std::io::Read;

use format_spec::{Digest, FormatError};
use registry_client::{Client, MountOutcome, RegistryError};

/// Why one registry operation of a push failed, worded for the operator (URL, status,
/// registry message); what the registry said stays the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryFailure {
    /// The registry refused or failed the request (after the client's own retries).
    #[error("{0}")]
    Registry(#[source] RegistryError),
    /// A blob's bytes could not be read from the volumes, or did not match their tables.
    #[error("{0}")]
    Volumes(#[source] FormatError),
    /// Reading a manifest from the volumes failed part way.
    #[error("{0}")]
    Read(#[source] std::io::Error),
    /// A delta bundle's base blob is in no repository it could be mounted from.
    #[error("base blob {digest} is in none of the repositories that need it")]
    BaseNowhere { digest: Digest },
    #[error("base blob {digest} could not be mounted into {repo} from {from}")]
    MountDeclined {
        digest: Digest,
        repo: String,
        from: String,
    },
    /// Keeping a blob's chunks in the state directory for a later run failed.
    #[error("staging chunks of blob {digest}: {source}")]
    Staging { digest: Digest, source: FormatError },
    /// The registry refused a sparse index (SPEC.md §4.2 `platforms`) for the children the
    /// bundle does not carry, as CNCF distribution 2.8 does (`MANIFEST_BLOB_UNKNOWN`).
    #[error("{registry} refused the sparse multi-arch image {image}: the bundle carries only its {} children, and this registry accepts an index only with every child in it ({source}). Push it to a registry that accepts sparse indexes (README \"Sparse multi-arch images\": e.g. distribution 3 with validation.manifests.indexes.platforms set to none or list, Quay with FEATURE_SPARSE_INDEX), or pack it without --platform", platforms.join(", "))]
    SparseRefused {
        image: String,
        platforms: Vec<String>,
        registry: String,
        /// Boxed: the other variants stay small, and this one is rare.
        source: Box<RegistryError>,
    },
}

impl RegistryFailure {
    /// The registry answered with a server error (5xx) for this one request.
    pub fn server_error(&self) -> bool {
        matches!(self, RegistryFailure::Registry(e) if e.status().is_some_and(|s| s >= 500))
    }

    /// The registry could not be reached, or kept failing after every retry: the rest of
    /// the run would only wait for it too, so the push stops and says to run it again.
    pub fn unreachable(&self) -> bool {
        // No answer at all (connection refused, reset, timeout, even after retries): the
        // registry is down. A 5xx for one request is that request's trouble, not the registry's.
        match self {
            RegistryFailure::Registry(e) => {
                !self.server_error()
                    && (e.is_transient() || matches!(e, RegistryError::RetriesExhausted { .. }))
            }
            _ => false,
        }
    }

    /// Whether the registry's refusal of an index's PUT is one that missing children
    /// cause: a child manifest unknown to the registry (distribution 2.8 answers 400
    /// `MANIFEST_BLOB_UNKNOWN`; others name the child `MANIFEST_UNKNOWN` or `BLOB_UNKNOWN`,
    /// or call the index `MANIFEST_INVALID`).
    pub fn refuses_missing_children(e: &RegistryError) -> bool {
        match e {
            RegistryError::Registry { status, errors, .. } => {
                (400..500).contains(status)
                    && [
                        "MANIFEST_BLOB_UNKNOWN",
                        "MANIFEST_UNKNOWN",
                        "BLOB_UNKNOWN",
                        "MANIFEST_INVALID",
                    ]
                    .iter()
                    .any(|c| errors.has_code(c))
            }
            _ => false,
        }
    }

    /// Whether a refused manifest PUT may be another push's doing, not a missing part:
    /// distribution rewrites a link file in place when a blob or manifest is put again, so
    /// while another host puts the same one, a manifest naming it is refused for a moment
    /// (400 `MANIFEST_BLOB_UNKNOWN`, or `DIGEST_INVALID` for the half-written link).
    pub fn may_be_a_concurrent_put(&self) -> bool {
        match self {
            RegistryFailure::Registry(e @ RegistryError::Registry { errors, .. }) => {
                RegistryFailure::refuses_missing_children(e) || errors.has_code("DIGEST_INVALID")
            }
            _ => false,
        }
    }

    /// The cancel flag was set (Ctrl-C): the request was not sent, or was cut short and
    /// its upload session cancelled.
    pub fn interrupted(&self) -> bool {
        matches!(self, RegistryFailure::Registry(RegistryError::Cancelled))
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
    /// The repository's tags (every page), or `None` when the registry does not know it.
    fn list_tags(&self, repo: &str) -> Result<Option<Vec<String>>, RegistryFailure>;
    /// A small blob's bytes (at most `max`; more is an error), if the repository has it.
    /// What another host's push left there for this one: a manifest it held (see
    /// `push`'s hand-over of manifests).
    fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        max: u64,
    ) -> Result<Option<Vec<u8>>, RegistryFailure>;
}

impl Registry for Client {
    fn blob_exists(&self, repo: &str, d: &Digest) -> Result<bool, RegistryFailure> {
        Client::blob_exists(self, repo, d)
            .map(|s| s.is_some())
            .map_err(RegistryFailure::Registry)
    }

    fn mount_blob(&self, repo: &str, d: &Digest, from: &str) -> Result<bool, RegistryFailure> {
        Client::mount_blob(self, repo, d, from)
            .map(|o| o == MountOutcome::Mounted)
            .map_err(RegistryFailure::Registry)
    }

    fn upload_blob(
        &self,
        repo: &str,
        d: &Digest,
        size: u64,
        open: &OpenBody<'_>,
    ) -> Result<(), RegistryFailure> {
        let opener = || -> std::io::Result<Box<dyn Read + '_>> {
            open().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
        };
        Client::upload_blob(self, repo, d, size, opener)
            .map(|_| ())
            .map_err(RegistryFailure::Registry)
    }

    fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryFailure> {
        let info =
            Client::manifest_exists(self, repo, reference).map_err(RegistryFailure::Registry)?;
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
            .map_err(RegistryFailure::Registry)
    }

    fn list_tags(&self, repo: &str) -> Result<Option<Vec<String>>, RegistryFailure> {
        Client::list_tags(self, repo).map_err(RegistryFailure::Registry)
    }

    fn get_blob(
        &self,
        repo: &str,
        d: &Digest,
        max: u64,
    ) -> Result<Option<Vec<u8>>, RegistryFailure> {
        let Some(stream) =
            Client::fetch_blob(self, repo, d, 0).map_err(RegistryFailure::Registry)?
        else {
            return Ok(None);
        };
        let mut out = Vec::new();
        stream
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(RegistryFailure::Read)?;
        Ok(Some(out))
    }
}

/// An in-memory registry for the pusher's unit tests: blobs and manifests by repository,
/// and a switch that makes every request fail as a registry that is down would.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct FakeRegistry {
        blobs: Mutex<BTreeSet<(String, Digest)>>,
        /// What was uploaded, for `get_blob`.
        contents: Mutex<BTreeMap<(String, Digest), Vec<u8>>>,
        /// (repository, tag or digest) → the digest of the manifest it names.
        manifests: Mutex<BTreeMap<(String, String), Digest>>,
        /// Every request fails with no connection, as after the client's retries.
        pub down: AtomicBool,
        /// The next this many manifest PUTs are refused as distribution refuses one while
        /// another push rewrites a link it names (400 `MANIFEST_BLOB_UNKNOWN`).
        pub refuse_puts: std::sync::atomic::AtomicUsize,
        /// Every request, in the order they came: (what, repository, digest or tag), what
        /// being `HEAD blob`, `mount`, `upload`, `HEAD manifest`, `PUT manifest`, `GET blob`,
        /// `GET tags`.
        pub log: Mutex<Vec<(&'static str, String, String)>>,
    }

    impl FakeRegistry {
        fn up(
            &self,
            what: &'static str,
            repo: &str,
            reference: &str,
        ) -> Result<(), RegistryFailure> {
            self.log
                .lock()
                .unwrap()
                .push((what, repo.to_owned(), reference.to_owned()));
            if self.down.load(Ordering::Relaxed) {
                return Err(RegistryFailure::Registry(RegistryError::Transport {
                    method: "HEAD".into(),
                    url: "http://registry.test/v2/".into(),
                    source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                }));
            }
            Ok(())
        }

        /// A blob as another host's push (or something else) left it, bytes and all.
        pub fn put_blob(&self, repo: &str, d: Digest, bytes: Vec<u8>) {
            self.blobs.lock().unwrap().insert((repo.to_owned(), d));
            self.contents
                .lock()
                .unwrap()
                .insert((repo.to_owned(), d), bytes);
        }

        /// Points a tag at another digest (as a push of something else would).
        pub fn move_tag(&self, repo: &str, tag: &str, to: Digest) {
            let mut m = self.manifests.lock().unwrap();
            m.insert((repo.to_owned(), tag.to_owned()), to);
        }

        /// Removes a tag (as `skopeo delete` of the tag alone, or a push stopped before it).
        pub fn drop_tag(&self, repo: &str, tag: &str) {
            let mut m = self.manifests.lock().unwrap();
            m.remove(&(repo.to_owned(), tag.to_owned()));
        }

        /// How many requests of `what` were made.
        pub fn count(&self, what: &str) -> usize {
            self.log
                .lock()
                .unwrap()
                .iter()
                .filter(|(w, _, _)| *w == what)
                .count()
        }

        pub fn tags(&self) -> BTreeMap<(String, String), Digest> {
            let m = self.manifests.lock().unwrap();
            m.iter()
                .filter(|((_, r), _)| !r.starts_with("sha256:"))
                .map(|(k, d)| (k.clone(), *d))
                .collect()
        }
    }

    impl Registry for FakeRegistry {
        fn blob_exists(&self, repo: &str, d: &Digest) -> Result<bool, RegistryFailure> {
            self.up("HEAD blob", repo, &d.to_string())?;
            Ok(self.blobs.lock().unwrap().contains(&(repo.to_owned(), *d)))
        }

        fn mount_blob(&self, repo: &str, d: &Digest, from: &str) -> Result<bool, RegistryFailure> {
            self.up("mount", repo, &d.to_string())?;
            let mut blobs = self.blobs.lock().unwrap();
            let there = blobs.contains(&(from.to_owned(), *d));
            if there {
                blobs.insert((repo.to_owned(), *d));
            }
            Ok(there)
        }

        fn upload_blob(
            &self,
            repo: &str,
            d: &Digest,
            size: u64,
            open: &OpenBody<'_>,
        ) -> Result<(), RegistryFailure> {
            self.up("upload", repo, &d.to_string())?;
            let mut bytes = Vec::new();
            open()?
                .read_to_end(&mut bytes)
                .map_err(RegistryFailure::Read)?;
            // What a registry checks before it keeps a blob.
            assert_eq!((bytes.len() as u64, Digest::of(&bytes)), (size, *d));
            self.blobs.lock().unwrap().insert((repo.to_owned(), *d));
            self.contents
                .lock()
                .unwrap()
                .insert((repo.to_owned(), *d), bytes);
            Ok(())
        }

        fn manifest_digest(
            &self,
            repo: &str,
            reference: &str,
        ) -> Result<Option<Digest>, RegistryFailure> {
            self.up("HEAD manifest", repo, reference)?;
            let m = self.manifests.lock().unwrap();
            Ok(m.get(&(repo.to_owned(), reference.to_owned())).copied())
        }

        fn put_manifest(
            &self,
            repo: &str,
            reference: &str,
            _media_type: &str,
            bytes: &[u8],
        ) -> Result<(), RegistryFailure> {
            self.up("PUT manifest", repo, reference)?;
            let refuse = self
                .refuse_puts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if refuse.is_ok() {
                return Err(RegistryFailure::Registry(RegistryError::Registry {
                    method: "PUT".into(),
                    url: format!("http://registry.test/v2/{repo}/manifests/{reference}"),
                    status: 400,
                    errors: registry_client::RemoteErrors(vec![registry_client::RemoteError {
                        code: "MANIFEST_BLOB_UNKNOWN".into(),
                        message: "blob unknown to registry".into(),
                        detail: None,
                    }]),
                }));
            }
            let mut m = self.manifests.lock().unwrap();
            let d = Digest::of(bytes);
            m.insert((repo.to_owned(), reference.to_owned()), d);
            // Put by tag, a manifest is there by digest too.
            m.insert((repo.to_owned(), d.to_string()), d);
            Ok(())
        }

        fn list_tags(&self, repo: &str) -> Result<Option<Vec<String>>, RegistryFailure> {
            self.up("GET tags", repo, "")?;
            let m = self.manifests.lock().unwrap();
            let tags: Vec<String> = m
                .keys()
                .filter(|(r, t)| r == repo && !t.starts_with("sha256:"))
                .map(|(_, t)| t.clone())
                .collect();
            let known = m.keys().any(|(r, _)| r == repo);
            Ok(known.then_some(tags))
        }

        fn get_blob(
            &self,
            repo: &str,
            d: &Digest,
            _max: u64,
        ) -> Result<Option<Vec<u8>>, RegistryFailure> {
            self.up("GET blob", repo, &d.to_string())?;
            Ok(self
                .contents
                .lock()
                .unwrap()
                .get(&(repo.to_owned(), *d))
                .cloned())
        }
    }
}
