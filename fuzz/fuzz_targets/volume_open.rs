//! The volume reader on any file: `Volume::open` with the vector key trusted (the
//! signature will mostly fail), `Volume::open_unverified` (what `inspect` reads, hostile
//! too), `verify_chunks`, then every blob read back. Never panics; a volume accepted with
//! the trusted key is exactly what its signed parts rebuild.
#![no_main]

use ferry_fuzz::{put, read_everything, trusted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = put("open.tar", data);
    read_everything(std::slice::from_ref(&p), &[data], Some(trusted()));
    read_everything(std::slice::from_ref(&p), &[data], None);
});
