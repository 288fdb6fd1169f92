//! `BundleManifest::parse` on any bytes (SPEC.md §4.4, M1–M27), either stored form: never
//! panics, and what it accepts is canonical — version 1's bytes are the canonical JSON and
//! spaces, version 2's one zstd frame of exactly the canonical JSON and at most one
//! all-zero padding frame — and parses again from the bytes a writer would store.
#![no_main]

use format_spec::manifest::{json_of, BundleManifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = BundleManifest::parse(data) {
        let canonical = m.to_json();
        if m.ferry_bundle == 1 {
            let trimmed = &data[..data.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1)];
            assert_eq!(canonical, trimmed, "accepted a manifest that is not canonical");
        } else {
            let text = json_of(data).expect("an accepted frame decompresses");
            assert_eq!(canonical, text, "accepted a frame that does not hold the canonical form");
        }
        // As a writer stores it, unpadded and padded (a gap a stored form can pad).
        let len = m.stored_len();
        let pad = len + 8 + data.len() % 64;
        for stored in [m.stored_bytes(0), m.stored_bytes(pad)] {
            let again = BundleManifest::parse(&stored).expect("the stored form parses again");
            assert_eq!(again, m);
        }
        assert_eq!(m.content_id(), m.bundle_id, "accepted a wrong bundle_id");
    }
});
