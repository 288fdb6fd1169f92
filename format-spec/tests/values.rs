//! The values of SPEC.md §10.2, and the key-file details of §7.1, pinned: an independent
//! reader checks itself against the same table.

use std::path::Path;

use ed25519_dalek::Verifier as _;
use format_spec::digest::Digest;
use format_spec::key::{fingerprint_of, PrivateKey, PublicKey};
use format_spec::size::parse_size;
use format_spec::volume::{self, entry_len};
use sha2::{Digest as _, Sha256};

#[test]
fn digest_of_abc() {
    assert_eq!(
        Digest::of(b"abc").to_string(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn fingerprint_of_rfc8032_test_1() {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        &mut raw,
    )
    .unwrap();
    assert_eq!(fingerprint_of(&raw), "EH7D-DX5B-KSRG-CYTL");
}

#[test]
fn entry_lengths_and_the_smallest_volume() {
    let e: Vec<u64> = [0, 64, 512, 513].into_iter().map(entry_len).collect();
    assert_eq!(e, [512, 1024, 1024, 1536]);
    let smallest = entry_len(0) * 3 + entry_len(64) * 3 + entry_len(512) + 1024;
    assert_eq!(smallest, 6656);
    assert_eq!(volume::head_len(0, 0) + volume::tail_len(0), 6656);
}

#[test]
fn trailer_text_and_digest() {
    let t = volume::trailer(254976, 3555);
    let mut want = b"ferry-volume-trailer 1\ntable-offset 00000000000000254976\ntable-size 00000000000000003555\n".to_vec();
    assert_eq!(want.len(), 89);
    want.resize(512, b'\n');
    assert_eq!(t[..], want[..]);
    assert_eq!(
        hex::encode(Sha256::digest(t)),
        "58daf5450acdc75b27b4dac5e22d2cf55315b654ebd18274308d6b404f41c235"
    );
}

#[test]
fn header_fields() {
    let h = volume::header("ferry/trailer", 512, 1600000000);
    assert_eq!(&h[124..136], b"00000001000\0");
    assert_eq!(&h[136..148], b"13727410000\0");
    assert_eq!(&h[148..156], b"0010501\0");
}

#[test]
fn layout_offsets() {
    let (b, i, t, s) = (11275u64, 2142u64, 3555u64, 262144u64);
    let index_header = entry_len(b) + 1024;
    let h = volume::head_len(b, i);
    let o = s - volume::tail_len(t);
    let trailer_header = o + entry_len(t) + 1024;
    assert_eq!(
        (index_header, h, o, trailer_header),
        (13312, 17408, 254976, 260096)
    );
    assert_eq!(trailer_header, s - 2048);
}

#[test]
fn sizes() {
    assert_eq!(parse_size("4.7GB").unwrap(), 4700000000);
    assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
    assert_eq!(parse_size("fat32").unwrap(), 4294967295);
    assert!(parse_size("4").is_err());
    assert!(parse_size("4gib").is_err());
}

/// §7.1: key files whose lines end in CRLF (a file edited on Windows) read as with LF.
#[test]
fn key_files_with_crlf_line_ends() {
    let key = PrivateKey::generate().unwrap();
    let crlf = |pem: &str| pem.replace('\n', "\r\n");
    let private = PrivateKey::from_pem(&crlf(&key.to_pem()), Path::new("k")).unwrap();
    assert_eq!(private.public(), key.public());
    let public = PublicKey::from_pem(&crlf(&key.public().to_pem()), Path::new("k.pub")).unwrap();
    assert_eq!(public, key.public());
}

/// §7.2: verification is ed25519-dalek's `verify_strict`: a non-canonical S and a
/// small-order key are refused, though RFC 8032's equation alone accepts both.
#[test]
fn signatures_are_verified_strictly() {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::EncodePublicKey;

    let key = PrivateKey::generate().unwrap();
    let public = key.public();
    let sig = key.sign(b"message");
    assert!(public.verify(b"message", &sig));
    // S + L: the same scalar mod L, not below L.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut malleated = sig;
    let mut carry = 0u16;
    for (s, l) in malleated[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    assert!(!public.verify(b"message", &malleated), "S ≥ L accepted");
    // The identity as public key: R = identity, S = 0 satisfies [S]B = R + [k]A for every
    // message, so only the small-order check refuses it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    assert!(
        weak.verify(
            b"anything",
            &ed25519_dalek::Signature::from_bytes(&{
                let mut s = [0u8; 64];
                s[0] = 1;
                s
            })
        )
        .is_ok(),
        "the cofactorless equation alone accepts it"
    );
    let pem = weak.to_public_key_pem(LineEnding::LF).unwrap();
    let weak = PublicKey::from_pem(&pem, Path::new("weak.pub")).unwrap();
    let mut forged = [0u8; 64];
    forged[0] = 1;
    assert!(
        !weak.verify(b"anything", &forged),
        "a small-order key accepted"
    );
}
