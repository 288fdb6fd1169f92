//! `volume::parse_trailer` on any bytes (SPEC.md §5.2, R1): never panics, and accepts only
//! the exact text `volume::trailer` writes.
#![no_main]

use format_spec::volume;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((offset, size)) = volume::parse_trailer(data) {
        assert_eq!(
            volume::trailer(offset, size)[..],
            data[..512],
            "accepted a trailer that is not the canonical text"
        );
    }
});
