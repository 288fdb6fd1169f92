//! Part 6: keys: volumes signed by a key not trusted, documents signed by two keys, a
//! malleable and a zeroed signature.

use std::fs;

use format_spec::volume::BLOCK;

use super::case::{Case, Cases, CaughtBy};
use super::fixture::{file_name, Good};

/// Untrusted keys and forged signatures.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    let (fx, l, good) = (g.fx, &g.l, g.bytes());
    // 6. Keys.
    let untrusted_says = &["not signed by any trusted key", "volume table signature"];
    // Whole volumes that name a key not trusted: the key does not match.
    let other_key_says = &["not by a trusted key", "the --trust key does not match"];
    let f = file_name(&fx.untrusted[0]);
    cs.alone(
        "untrusted key",
        "a bundle's volume signed by an untrusted key",
        &f,
        fs::read(&fx.untrusted[0]).unwrap(),
        "untrusted",
        other_key_says.iter().map(|s| s.to_string()).collect(),
        Vec::new(),
    );
    cs.out.push(Case {
        name: "every volume of a bundle signed by an untrusted key".into(),
        category: "untrusted key",
        files: fx
            .untrusted
            .iter()
            .map(|p| (file_name(p), fs::read(p).unwrap()))
            .collect(),
        hostile: fx.untrusted.iter().map(|p| file_name(p)).collect(),
        status: "untrusted",
        says: other_key_says.iter().map(|s| s.to_string()).collect(),
        absent: Vec::new(),
        vouched: Vec::new(),
        caught_by: CaughtBy::Verify,
    });
    cs.invalid(
        "untrusted key",
        "this volume re-signed throughout by an untrusted key",
        g.parts.write(&fx.other_secret),
        untrusted_says,
    );
    cs.invalid(
        "untrusted key",
        "table signed by the trusted key, manifest and index by an untrusted one",
        g.parts
            .write_with(&fx.secret, &fx.other_secret, &|_| {}, &|b| b),
        &["bundle manifest signature does not verify"],
    );
    cs.invalid(
        "untrusted key",
        "manifest and index signed by the trusted key, table by an untrusted one",
        g.parts
            .write_with(&fx.other_secret, &fx.secret, &|_| {}, &|b| b),
        untrusted_says,
    );
    let mut b = good.clone();
    let at = (l.table_sig() + BLOCK) as usize;
    malleate(&mut b[at..at + 64]);
    cs.invalid(
        "untrusted key",
        "the table's signature made malleable (S + l)",
        b,
        untrusted_says,
    );
    let mut b = good.clone();
    b[at..at + 64].fill(0);
    cs.invalid(
        "untrusted key",
        "the table's signature all zero",
        b,
        untrusted_says,
    );
}

/// Ed25519's group order ℓ, little-endian: S + ℓ is the malleable twin of a signature.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn malleate(sig: &mut [u8]) {
    let mut carry = 0u16;
    for (s, l) in sig[32..64].iter_mut().zip(ELL) {
        let v = u16::from(*s) + u16::from(l) + carry;
        *s = v as u8;
        carry = v >> 8;
    }
}
