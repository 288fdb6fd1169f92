//! Hostile volumes: a generator of malformed bundles, made at test time from a
//! good bundle of `fixtures/oci` (no committed opaque blobs), and a runner that gives each
//! one to the real `ferry-unpack verify`, `extract` and `push` under a memory cap.
//!
//! SPEC.md §2 is the contract: every byte of a volume is checked, nothing unverified is
//! used, sizes are checked before allocation. So for every case `verify` must exit 1 and
//! say what is wrong and where (the volume's path and the region or rule), no binary may
//! panic or be killed, and `push` into a real registry must upload nothing the signature
//! does not vouch for. The few lies only a trusted signer can tell and only reading the
//! blob reveals (R31, R32: §6.1 has `verify` check volumes, not decode blobs) are refused
//! by `extract` or `push` instead; [`Case::caught_by`] says which.
//!
//! Every case pushes into its own fresh registry ([`crate::registry::Registry`]), so a blob
//! found there came from that case's push.
//!
//! Cases that change a signed document are re-signed with the test's own trusted key, with
//! the test kit's `Parts` (test-support/src/resign.rs, which also makes format-spec's
//! vectors): take the volume apart with the format library, change it, put it together
//! and sign it again.
//!
//! The cases come in parts, one module each, in the order they run: `regions` (every
//! stretch of a volume damaged three ways), `entries` (crafted tar entries, entries no
//! table names, duplicates), `sizes` (sizes that lie, a table pointing outside the file),
//! `foreign` (other and older bundles), `keys` (untrusted keys, forged signatures),
//! `documents` (unknown versions and fields, hostile paths, validly signed) and
//! `decoding` (signed lies only reading a blob reveals, zstd bombs). They are made from
//! the [`Fixture`] by way of `fixture::Good` (volume 1 and the damage several parts
//! share), with `layout` (where things are in a volume), `tar` (header surgery) and
//! `scratch` (a bundle made from nothing); `run` gives each case to the binaries and
//! `storage` reads what reached the registry.

mod case;
mod decoding;
mod documents;
mod entries;
mod fixture;
mod foreign;
mod keys;
mod layout;
mod regions;
mod run;
mod scratch;
mod sizes;
mod storage;
mod tar;

pub use case::{Case, CaughtBy};
pub use fixture::Fixture;
pub use layout::Layout;
pub use run::{run_case, unpack_capped, Outcome};
pub use scratch::zstd_zeros;
pub use storage::{repository_links, stored_blobs};
pub use test_support::resign::{resign_volumes, Parts};

use case::Cases;
use fixture::Good;

/// Address space for every binary run here (`prlimit --as`): an allocation proportional
/// to a declared 2^63 size, or an unbounded decompression into memory, fails under it.
pub const MEMORY_CAP: u64 = 1 << 30;
/// Small volumes so the fixture makes a bundle of several volumes with blobs spanning them.
pub const VOLUME_SIZE: &str = "64KiB";
/// `created` of the older bundle (the good one takes the fixture's mtime, 1600000000).
pub const OLDER_EPOCH: &str = "1500000000";
/// How far the zstd bomb decodes (its signed size is [`BOMB_SIGNED_SIZE`]).
pub const BOMB_DECODED: u64 = 8 << 30;
pub const BOMB_SIGNED_SIZE: u64 = 1000;

/// Every hostile case, made from the fixture's good bundle, part by part.
pub fn cases(fx: &Fixture) -> Vec<Case> {
    let mut cs = Cases {
        fx,
        out: Vec::new(),
    };
    let g = Good::new(fx);
    regions::add(&mut cs, &g);
    entries::add(&mut cs, &g);
    sizes::add(&mut cs, &g);
    foreign::add(&mut cs, &g);
    keys::add(&mut cs, &g);
    documents::add(&mut cs, &g);
    decoding::add(&mut cs, &g);
    cs.out
}
