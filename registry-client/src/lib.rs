//! A blocking client for the OCI Distribution API: the `ferry-unpack push` workers share
//! one [`Client`] to replay verified blobs and manifests into Quay, Harbor, OpenShift's
//! registry or CNCF distribution; the pull side downloads with it, and [`registries_conf`]
//! resolves where a reference is fetched from.
//!
//! What this crate must not do: know bundles or volumes, print, or let a credential reach
//! an output, a log or a host the user did not name (SECURITY.md).
//!
//! - Blobs: [`Client::blob_exists`], [`Client::mount_blob`] (a 202 is cancelled and reported
//!   as [`MountOutcome::NotMounted`]), [`Client::upload_blob`] (streamed monolithic `PUT`,
//!   chunked `PATCH` after a 413, restart of the whole blob when a session dies),
//!   [`Client::fetch_blob`] (a streamed `GET`, resumed with `Range` and its `Content-Range`
//!   checked; 416 or a range elsewhere is [`RegistryError::RangeNotResumable`]).
//! - Manifests: [`Client::put_manifest`], [`Client::manifest_exists`], [`Client::get_manifest`],
//!   every digest checked.
//! - Tags: [`Client::list_tags`], every page its `Link` header names.
//! - Auth: anonymous, Basic, Bearer tokens (scoped, cached, refreshed; identity tokens via
//!   OAuth2), from [`Credentials::from_auth_files`] (podman, docker, OpenShift pull secret).
//! - First contact: [`Client::connect`] probes `GET /v2/` once and names what is wrong
//!   (name, port, HTTP against HTTPS, not a registry, credentials refused).
//! - Transport: TLS with the system's roots plus an optional CA file; plain HTTP or
//!   unverified TLS only in insecure mode ([`Config::registry`] has the rules). Redirects
//!   are followed here, and credentials never go to another origin. Transient failures are
//!   retried within a [`RetryPolicy`], honouring `Retry-After`.
//!
//! Where distribution 2.8.2 departs from the distribution spec, the module that copes with
//! it says so in a comment (uploads: `upload.rs`; mounts and manifests: `client.rs`).
//!
//! # Security
//! Credentials, tokens and passwords never appear in `Debug` output or in errors; URLs in
//! errors lose user information and long query values. ureq logs requests at `debug` level
//! with sensitive headers redacted, but at `trace` level it logs the wire unredacted: never
//! enable `trace` for `ureq` on a machine whose logs leave it. Credentials go over plain
//! HTTP only in insecure mode and only to the registry's own host (a token server on
//! another host gets them over HTTPS only).
#![forbid(unsafe_code)]

mod auth;
mod challenge;
mod client;
mod config;
mod credential_helper;
pub mod credentials;
mod download;
mod endpoint;
pub mod error;
mod probe;
pub mod registries_conf;
mod retry;
mod tags;
mod transport;
mod upload;

pub use client::{
    Client, Manifest, ManifestInfo, MountOutcome, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES,
};
pub use config::{Config, Timeouts, UploadPolicy};
pub use credentials::{CredentialSource, Credentials};
pub use download::BlobStream;
pub use error::{RegistryError, RemoteError, RemoteErrors, Result};
/// Digests are oci's (sha256 only: a sha512 digest is refused by name wherever one is
/// parsed), so the digests a caller has are the ones it passes here.
pub use oci::Digest;
pub use retry::{RetryNotice, RetryObserver, RetryPolicy};
pub use upload::UploadReport;
