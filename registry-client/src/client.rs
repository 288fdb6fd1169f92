//! The client: existence checks, mounts, manifests. Its configuration is in `config.rs`,
//! blob uploads are in `upload.rs`.

use crate::auth::Scopes;
use crate::config::{Config, UploadPolicy};
use crate::endpoint::{display_url, with_query};
use crate::error::{RegistryError, Result};
use crate::transport::{Body, Request, Transport};
use oci::name::{REPOSITORY_RULE, TAG_RULE};
use oci::{media_type, Digest, TagOrDigest, TagOrDigestError};

/// The manifest media types asked for (`Accept`) when checking or fetching a manifest:
/// OCI manifests and indexes (image-spec `media-types.md`), docker schema 2 manifests and
/// lists, and docker schema 1 so that old content is still found.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &media_type::MANIFEST_TYPES;

/// The largest manifest fetched (this client's policy). distribution refuses manifests over 4 MiB; twice that
/// leaves room for registries that allow more without letting a server fill memory.
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// What a cross-repository mount did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountOutcome {
    /// 201: the blob is now in the destination repository.
    Mounted,
    /// 202: the registry would not mount (the blob is not in the source, or mounting is
    /// off); the upload session it opened instead was cancelled. Upload the blob.
    NotMounted,
}

/// A manifest's identity, as a `HEAD` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A fetched manifest, its digest verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A blocking Distribution API client for one registry. `Send + Sync`: share one (in an
/// `Arc`, or by reference in scoped threads) between the worker threads of a push; they
/// share its connection pool and token cache.
pub struct Client {
    pub(crate) transport: Transport,
    pub(crate) upload: UploadPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.transport.origin.base())
            .field("credentials", &self.transport.credentials)
            .finish_non_exhaustive()
    }
}

/// Everything that goes into a URL path is checked against the distribution spec's grammar
/// first (oci's), so a name can never smuggle `..`, `?` or `#` into a request.
pub(crate) fn check_repository(repo: &str) -> Result<()> {
    oci::name::check_repository(repo).map_err(|e| RegistryError::InvalidName {
        what: "repository name",
        value: repo.chars().take(300).collect(),
        reason: format!(
            "{} (at byte {}; expected {REPOSITORY_RULE})",
            e.problem, e.at
        ),
    })
}

/// The `<reference>` of a manifest URL: a tag, or a digest (sha256; sha512 is refused by
/// name).
fn check_reference(reference: &str) -> Result<TagOrDigest> {
    TagOrDigest::parse(reference).map_err(|e| RegistryError::InvalidName {
        what: "tag or digest",
        value: reference.chars().take(300).collect(),
        reason: match e {
            TagOrDigestError::Tag(e) => format!(
                "{} (at byte {}; expected a tag, {TAG_RULE}, or a digest)",
                e.problem, e.at
            ),
            TagOrDigestError::Digest(e) => e.to_string(),
            other => other.to_string(),
        },
    })
}

/// `Content-Type` without parameters (`; charset=utf-8`).
fn media_type_of(content_type: Option<&str>) -> String {
    media_type::without_parameters(content_type.unwrap_or_default()).to_owned()
}

impl Client {
    pub fn new(config: Config) -> Result<Client> {
        Ok(Client {
            transport: Transport::new(&config)?,
            upload: config.upload,
        })
    }

    /// `scheme://host[:port]` of the registry, as requests use it.
    pub fn base_url(&self) -> String {
        self.transport.origin.base()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.transport.origin.base())
    }

    /// `GET /v2/`: checks that the registry speaks the Distribution API and that the
    /// credentials are accepted (a token without scopes is fetched for Bearer registries).
    pub fn ping(&self) -> Result<()> {
        let mut req = Request::new("GET", self.url("/v2/"), Some(Scopes::default()));
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            200 => Ok(()),
            404 => Err(resp.protocol("this is not a Distribution API (v2) registry")),
            _ => Err(self.transport.error_from(&resp, None)),
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: the blob's size if the repository has it.
    pub fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        self.head_blob(repo, digest, true)
    }

    /// [`Client::blob_exists`] without retries.
    pub(crate) fn blob_exists_once(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        self.head_blob(repo, digest, false)
    }

    fn head_blob(&self, repo: &str, digest: &Digest, retry: bool) -> Result<Option<u64>> {
        check_repository(repo)?;
        let scopes = Scopes::pull(repo);
        let mut req = Request::new(
            "HEAD",
            self.url(&format!("/v2/{repo}/blobs/{digest}")),
            Some(scopes.clone()),
        );
        req.retry = retry;
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            200 => {
                resp.check_digest(digest)?;
                let size = resp
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| resp.protocol("no Content-Length for an existing blob"))?;
                Ok(Some(size))
            }
            404 => Ok(None),
            _ => Err(self.transport.error_from(&resp, Some(&scopes))),
        }
    }

    /// `POST /v2/<dst>/blobs/uploads/?mount=<digest>&from=<from>`. A 202 (the registry
    /// opened an upload session instead) is cancelled with `DELETE` and reported as
    /// [`MountOutcome::NotMounted`]. A registry that refuses the mount outright (401/403,
    /// typically no pull access to `from`) gives an error; uploading may still work.
    pub fn mount_blob(
        &self,
        dst_repo: &str,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<MountOutcome> {
        check_repository(dst_repo)?;
        check_repository(from_repo)?;
        // distribution checks pull on `from` too: one token for both.
        let scopes = Scopes::push(dst_repo).and(Scopes::pull(from_repo));
        let url = with_query(
            &with_query(
                &self.url(&format!("/v2/{dst_repo}/blobs/uploads/")),
                "mount",
                &digest.to_string(),
            ),
            "from",
            from_repo,
        );
        let mut req = Request::new("POST", url, Some(scopes.clone()));
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            201 => {
                resp.check_digest(digest)?;
                Ok(MountOutcome::Mounted)
            }
            202 => {
                let location = resp.location()?;
                self.delete_upload(dst_repo, &location)?;
                Ok(MountOutcome::NotMounted)
            }
            _ => Err(self.transport.error_from(&resp, Some(&scopes))),
        }
    }

    /// `DELETE <location>`: cancels an upload session. A session the registry no longer
    /// knows (404) counts as cancelled.
    pub fn delete_upload(&self, repo: &str, location: &str) -> Result<()> {
        check_repository(repo)?;
        let scopes = Scopes::push(repo);
        let mut req = Request::new("DELETE", location.to_owned(), Some(scopes.clone()));
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.transport.error_from(&resp, Some(&scopes))),
        }
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with `Content-Type: media_type` (which must
    /// equal the manifest's `mediaType`: distribution answers 400 otherwise). Returns the
    /// digest of `bytes`, checked against the reference when it is a digest (before
    /// sending) and against the registry's `Docker-Content-Digest`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        check_repository(repo)?;
        let reference = check_reference(reference)?;
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let digest = Digest::of(bytes);
        if let TagOrDigest::Digest(d) = &reference {
            if &digest != d {
                return Err(RegistryError::DigestMismatch {
                    method: "PUT".into(),
                    url: display_url(&url),
                    expected: *d,
                    actual: format!("{digest} (the bytes given, not sent)"),
                });
            }
        }
        if media_type.is_empty() || media_type.bytes().any(|b| b.is_ascii_control()) {
            return Err(RegistryError::InvalidName {
                what: "media type",
                value: media_type.chars().take(300).collect(),
                reason: "expected a non-empty media type such as application/vnd.oci.image.manifest.v1+json".into(),
            });
        }
        let scopes = Scopes::push(repo);
        let mut req = Request::new("PUT", url, Some(scopes.clone()))
            .header("content-type", media_type)
            .body(Body::Bytes(bytes));
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            201 => {
                resp.check_digest(&digest)?;
                Ok(digest)
            }
            _ => Err(self.transport.error_from(&resp, Some(&scopes))),
        }
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`, accepting every manifest media type.
    pub fn manifest_exists(&self, repo: &str, reference: &str) -> Result<Option<ManifestInfo>> {
        check_repository(repo)?;
        let reference = check_reference(reference)?;
        let scopes = Scopes::pull(repo);
        let mut req = Request::new(
            "HEAD",
            self.url(&format!("/v2/{repo}/manifests/{reference}")),
            Some(scopes.clone()),
        )
        .header("accept", MANIFEST_MEDIA_TYPES.join(", "));
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.transport.error_from(&resp, Some(&scopes))),
        }
        let header_digest = resp
            .header("docker-content-digest")
            .and_then(|v| Digest::parse(v.trim()).ok());
        let digest = match (&reference, header_digest) {
            (TagOrDigest::Digest(d), _) => {
                resp.check_digest(d)?;
                *d
            }
            (TagOrDigest::Tag(_), Some(d)) => d,
            // No digest header for a tag: fetch the manifest and hash it.
            (TagOrDigest::Tag(_), None) => {
                return Ok(self
                    .get_manifest(repo, &reference.to_string())?
                    .map(|m| ManifestInfo {
                        size: m.bytes.len() as u64,
                        digest: m.digest,
                        media_type: m.media_type,
                    }))
            }
        };
        let size = resp
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| resp.protocol("no Content-Length for an existing manifest"))?;
        Ok(Some(ManifestInfo {
            digest,
            media_type: media_type_of(resp.header("content-type")),
            size,
        }))
    }

    /// `GET /v2/<repo>/manifests/<reference>`: the bytes exactly as stored, at most
    /// [`MAX_MANIFEST_BYTES`], hashed and checked against a digest reference and the
    /// registry's `Docker-Content-Digest`.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<Manifest>> {
        check_repository(repo)?;
        let reference = check_reference(reference)?;
        let scopes = Scopes::pull(repo);
        let mut req = Request::new(
            "GET",
            self.url(&format!("/v2/{repo}/manifests/{reference}")),
            Some(scopes.clone()),
        )
        .header("accept", MANIFEST_MEDIA_TYPES.join(", "));
        req.max_body = MAX_MANIFEST_BYTES + 1;
        let resp = self.transport.exchange(&mut req)?;
        match resp.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.transport.error_from(&resp, Some(&scopes))),
        }
        if resp.body.len() > MAX_MANIFEST_BYTES {
            return Err(resp.protocol(&format!(
                "the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let digest = Digest::of(&resp.body);
        if let TagOrDigest::Digest(d) = &reference {
            if &digest != d {
                return Err(RegistryError::DigestMismatch {
                    method: "GET".into(),
                    url: resp.shown_url(),
                    expected: *d,
                    actual: format!("{digest} (hash of the bytes received)"),
                });
            }
        }
        resp.check_digest(&digest)?;
        Ok(Some(Manifest {
            digest,
            media_type: media_type_of(resp.header("content-type")),
            bytes: resp.body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Client>();
    }

    #[test]
    fn names_are_checked_before_any_request() {
        // Port 9 (discard) on loopback: nothing may be sent, so nothing must listen.
        let client = Client::new(Config::new("127.0.0.1:9")).unwrap();
        let d = Digest::of(b"x");
        for bad in ["../etc", "A", "a?b=c", ""] {
            let e = client.blob_exists(bad, &d).unwrap_err();
            assert!(matches!(e, RegistryError::InvalidName { .. }), "{e}");
        }
        let e = client
            .put_manifest("a", "tag/../x", "t", b"{}")
            .unwrap_err();
        assert!(matches!(e, RegistryError::InvalidName { .. }), "{e}");
        let e = client
            .put_manifest("a", &Digest::of(b"other").to_string(), "t", b"{}")
            .unwrap_err();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
        let e = client
            .put_manifest("a", "t", "bad\ntype", b"{}")
            .unwrap_err();
        assert!(matches!(e, RegistryError::InvalidName { .. }), "{e}");
        // The reason is said: which byte breaks which rule, and sha512 by name (this
        // client verified sha512 digests before it used oci's; ferry carries sha256 only).
        let e = client.blob_exists("ns/ab-", &d).unwrap_err().to_string();
        assert!(
            e.contains("at byte 5") && e.contains("repository name"),
            "{e}"
        );
        let sha512 = format!("sha512:{}", "a".repeat(128));
        for e in [
            client.get_manifest("a", &sha512).unwrap_err(),
            client.manifest_exists("a", &sha512).unwrap_err(),
            client.put_manifest("a", &sha512, "t", b"{}").unwrap_err(),
        ] {
            assert!(matches!(e, RegistryError::InvalidName { .. }), "{e}");
            assert!(
                e.to_string().contains("sha512 digests are not supported"),
                "{e}"
            );
        }
    }

    #[test]
    fn media_types_lose_parameters() {
        assert_eq!(
            media_type_of(Some(
                "application/vnd.oci.image.index.v1+json; charset=utf-8"
            )),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(media_type_of(None), "");
    }
}
