//! Tar header surgery, as a forger would do it: fields rewritten and the checksum fixed,
//! whole entries made, bytes inserted, the trailer rewritten in its exact form.

use test_support::resign::entry;

/// Rewrites the 512-byte header at `at` and fixes its checksum, as a forger would.
pub(super) fn rewrite_header(bytes: &mut [u8], at: u64, f: impl FnOnce(&mut [u8])) {
    let h = &mut bytes[at as usize..at as usize + 512];
    f(h);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
}

pub(super) fn set_field(h: &mut [u8], at: usize, len: usize, value: &[u8]) {
    h[at..at + len].fill(0);
    h[at..at + value.len()].copy_from_slice(value);
}

pub(super) fn set_name(h: &mut [u8], name: &str) {
    set_field(h, 0, 100, name.as_bytes());
}

pub(super) fn set_link(h: &mut [u8], kind: u8, target: &str) {
    h[156] = kind;
    set_field(h, 157, 100, target.as_bytes());
}

pub(super) fn set_size(h: &mut [u8], size: u64) {
    if size < 8u64.pow(11) {
        set_field(h, 124, 12, format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256: 0x80, then the value big-endian in the remaining 11 bytes.
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[4..].copy_from_slice(&size.to_be_bytes());
        h[124..136].copy_from_slice(&f);
    }
}

pub(super) fn set_device(h: &mut [u8], kind: u8, major: u32, minor: u32) {
    h[156] = kind;
    set_size(h, 0);
    set_field(h, 329, 8, format!("{major:07o}\0").as_bytes());
    set_field(h, 337, 8, format!("{minor:07o}\0").as_bytes());
}

/// A whole tar entry (header, data, padding) as a plain tar would write it.
pub(super) fn tar_entry(name: &str, data: &[u8], mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    entry(&mut out, name, data, mtime);
    out
}

pub(super) fn insert(bytes: &[u8], at: u64, what: &[u8]) -> Vec<u8> {
    let mut out = bytes[..at as usize].to_vec();
    out.extend_from_slice(what);
    out.extend_from_slice(&bytes[at as usize..]);
    out
}

/// The trailer text for other numbers, exact in form (so only R2 can refuse it).
pub(super) fn with_trailer(bytes: &[u8], offset: u64, size: u64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let n = b.len();
    let text =
        format!("ferry-volume-trailer 1\ntable-offset {offset:020}\ntable-size {size:020}\n");
    let mut t = [b'\n'; 512];
    t[..text.len()].copy_from_slice(text.as_bytes());
    b[n - 1536..n - 1024].copy_from_slice(&t);
    b
}
