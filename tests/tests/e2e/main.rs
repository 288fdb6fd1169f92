//! The end-to-end tests as one test binary (ripgrep's `tests/tests.rs` pattern): every
//! file here is a module, so the suite links once instead of once per file. Run one part
//! with its module name, e.g. `cargo test -p tests --test e2e -- push_faults::`.
//!
//! Run `cargo build -p pack -p unpack` first: the tests drive the real binaries (see
//! tests/src/lib.rs). A new file of tests goes here, with a `mod` line below.

mod catalog;
mod catalog_fixture;
mod cluster_manifests;
mod damage;
mod faults;
mod hostile;
mod inspect;
mod media;
mod memory;
mod messages;
mod pack_input;
mod pack_media;
mod pack_spool;
mod pull;
mod pull_config;
mod pull_faults;
mod pull_sources;
mod push;
mod push_credentials;
mod push_faults;
mod push_hosts;
mod push_probe;
mod recovery;
mod round_trip;
mod sparse;
mod state;
mod unpack_catalogs;
mod vectors;
mod volumes;
