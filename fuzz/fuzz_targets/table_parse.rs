//! `VolumeTable::parse` on any bytes (SPEC.md §5.6, R4–R7): never panics, and what it
//! accepts is exactly its canonical form.
#![no_main]

use format_spec::manifest::MAX_CHUNK_SIZE;
use format_spec::table::VolumeTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = VolumeTable::parse(data) {
        assert_eq!(t.to_bytes(), data, "accepted a table that is not canonical");
        assert!(t.volume >= 1 && t.volume <= t.volume_count, "R6");
        assert!(t.chunks.iter().all(|c| c.size <= MAX_CHUNK_SIZE), "R7");
    }
});
