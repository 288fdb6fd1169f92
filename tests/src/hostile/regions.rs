//! Part 1: every region of a volume (SPEC.md §5.2) with a bit flipped, cut short at a
//! block, and with a block inserted; and a few cuts and insertions off the blocks.

use format_spec::volume::BLOCK;

use super::case::Cases;
use super::fixture::Good;
use super::layout::{end_rule, regions};
use super::tar::insert;

/// Every region damaged three ways.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    let (l, good, vol1) = (&g.l, g.bytes(), &g.vol1);
    // 1. Every region: a flipped bit, a truncation, an insertion.
    for r in regions(l) {
        let mid = r.start + r.len / 2;
        let mut b = good.clone();
        b[mid as usize] ^= 0x01;
        cs.alone(
            "region: flipped bit",
            format!("{}: bit 0 of byte {mid} flipped", r.name),
            vol1,
            b,
            r.status,
            r.says.clone(),
            r.damages.iter().cloned().collect(),
        );
        let cut = mid / BLOCK * BLOCK;
        let b = good[..cut as usize].to_vec();
        let says = vec![end_rule(&b).to_string(), "truncated".to_string()];
        cs.alone(
            "region: truncation",
            format!("{}: cut at byte {cut}", r.name),
            vol1,
            b,
            "invalid",
            says,
            Vec::new(),
        );
        let b = insert(good, mid, &[0x55; 512]);
        let says = vec![end_rule(&b).to_string()];
        cs.alone(
            "region: insertion",
            format!("{}: 512 bytes inserted at byte {mid}", r.name),
            vol1,
            b,
            "invalid",
            says,
            Vec::new(),
        );
    }
    let first = l.chunks[0];
    let odd = first.offset + BLOCK + 100;
    cs.invalid(
        "region: truncation",
        "chunk data: cut at an odd byte",
        good[..odd as usize].to_vec(),
        &["512-byte blocks", "truncated"],
    );
    cs.invalid(
        "region: truncation",
        "empty file",
        Vec::new(),
        &["512-byte blocks"],
    );
    cs.invalid(
        "region: insertion",
        "7 bytes inserted into chunk data",
        insert(good, first.offset + BLOCK + 3, b"ferry!!"),
        &["512-byte blocks"],
    );
}
