//! The test kit of the ferry workspace: what more than one test suite needs, once.
//! It must not ship (publish = false) nor reach any address but 127.0.0.1.
//!
//! - [`cmd`]: running a command and reading what it did ([`cmd::OutputExt`]), temporary
//!   directories;
//! - [`credential_helper`]: `docker-credential-test`, a credential helper script for one
//!   server, and a docker `config.json` whose `credHelpers` name it;
//! - [`process`]: a command in the background whose stderr is watched line by line and that
//!   can be signalled ([`process::Proc`]), or stopped at an exact system call
//!   ([`process::StoppedAt`]);
//! - [`registry`]: a real registry, Debian's `docker-registry` (CNCF distribution 2.8.2) on
//!   127.0.0.1 — plain HTTP, TLS with a test CA made by `openssl`, or htpasswd Basic auth —
//!   and a reader of what it holds, through the Distribution API;
//! - [`memcap`]: a command under a memory cap (RLIMIT_DATA) with its peak RSS;
//! - [`mock`]: a scripted HTTP/1.1 server for what a real registry will not do on demand;
//! - [`proxy`]: a forwarding proxy in front of a real registry that counts what passes and
//!   breaks it on demand (a flipped byte, a cut with a reset, a throttle, down and up again,
//!   Bearer tokens from a token server of its own);
//! - [`catalog_fixture`] (feature `catalog-fixture`): operator catalogs (FBC and SQLite)
//!   with their bundle and related images as an OCI layout skopeo pushes, and the
//!   benchmark's 5,000-bundle catalog;
//! - [`tmpfs`]: a small disk that fills up;
//! - [`resign`]: a ferry volume taken apart and put together again, re-signed, to make
//!   volumes that are validly signed yet break a rule.
//!
//! Used by registry-client's tests, format-spec's vector tests, the end-to-end tests
//! (`tests/`) and the fuzz targets (`fuzz/`). Test code only: it panics on anything
//! unexpected, with a message, and is never a dependency of a shipped crate.

#[cfg(feature = "catalog-fixture")]
pub mod catalog_fixture;
pub mod cmd;
pub mod credential_helper;
pub mod memcap;
pub mod mock;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod resign;
pub mod tmpfs;
