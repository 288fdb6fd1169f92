//! `BundleManifest::parse` on any bytes (SPEC.md §4.4, M1–M22): never panics, and what it
//! accepts is canonical (serializing it again gives the same bytes less padding).
#![no_main]

use format_spec::manifest::BundleManifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = BundleManifest::parse(data) {
        let canonical = m.to_bytes(0);
        let trimmed = &data[..data.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1)];
        assert_eq!(
            canonical, trimmed,
            "accepted a manifest that is not canonical"
        );
        let again = BundleManifest::parse(&canonical).expect("canonical form parses again");
        assert_eq!(again, m);
        let mut sealed = m.clone();
        sealed.seal();
        assert_eq!(sealed.bundle_id, m.bundle_id, "accepted a wrong bundle_id");
    }
});
