//! Digests in mirror files. What a digest is, is oci's [`Digest`] (sha256, lowercase hex:
//! one blob has one name; sha512 refused by name). A mirror's model keeps digests binary
//! (32 bytes, no allocation: at 1.8×10^5 blobs the text took tens of MB); this module
//! parses the text a file holds and says which file held a bad one, and hashes files
//! with its own read loop. Every message and file still spells a digest `sha256:<hex>`
//! ([`Digest`]'s `Display`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use oci::{Digest, Sha256};

use crate::error::MirrorError;

pub(crate) use oci::digest::SHA256_PREFIX;

/// Parses a digest taken from a file at `path` (named in the error).
pub(crate) fn checked(path: &Path, digest: &str) -> Result<Digest, MirrorError> {
    Digest::parse(digest).map_err(|reason| MirrorError::UnsupportedDigest {
        path: path.to_path_buf(),
        digest: digest.to_string(),
        reason,
    })
}

/// The 64 lowercase hex digits of `d`, written into `buf` (layouts name blob files by
/// them; no allocation per lookup).
pub(crate) fn hex_in<'b>(d: &Digest, buf: &'b mut [u8; 64]) -> &'b str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in d.as_bytes().iter().enumerate() {
        buf[2 * i] = HEX[(b >> 4) as usize];
        buf[2 * i + 1] = HEX[(b & 15) as usize];
    }
    std::str::from_utf8(buf).expect("hex digits are ASCII")
}

/// Whether `text` is a digest (file names in `blobs/` and `manifests/`).
pub(crate) fn is_digest(text: &str) -> bool {
    Digest::parse(text).is_ok()
}

/// The digest of `bytes`.
pub fn sha256_bytes(bytes: &[u8]) -> Digest {
    Digest::of(bytes)
}

/// Streams `reader` through SHA-256; returns the digest and the byte count. A 256 KiB
/// buffer, not `io::copy`'s 8 KiB: hashing whole layers is where a pack spends its time.
pub(crate) fn sha256_reader(mut reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    let total = hasher.len();
    Ok((hasher.finish(), total))
}

pub(crate) fn sha256_file(path: &Path) -> Result<(Digest, u64), MirrorError> {
    let file = File::open(path).map_err(|e| MirrorError::io(path, e))?;
    sha256_reader(file).map_err(|e| MirrorError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_digests_only() {
        let hex = "a".repeat(64);
        let at = Path::new("m.json");
        assert_eq!(checked(at, &format!("sha256:{hex}")).unwrap().hex(), hex);
        assert!(is_digest(&format!("sha256:{hex}")));
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}g", "a".repeat(63)),
            hex.clone(),
        ] {
            assert!(checked(at, &bad).is_err(), "{bad}");
            assert!(!is_digest(&bad), "{bad}");
        }
        // sha512 is refused by name, and the file is named.
        let e = checked(at, &format!("sha512:{}", "a".repeat(128))).unwrap_err();
        assert!(matches!(e, MirrorError::UnsupportedDigest { .. }));
        let e = e.to_string();
        assert!(
            e.starts_with("m.json: ") && e.contains("sha512 digests are not supported"),
            "{e}"
        );
    }

    #[test]
    fn hashes_empty_input() {
        assert_eq!(
            sha256_bytes(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut buf = [0; 64];
        assert_eq!(
            hex_in(&sha256_bytes(b""), &mut buf),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (d, n) = sha256_reader(&b""[..]).unwrap();
        assert_eq!((d, n), (sha256_bytes(b""), 0));
        let big = vec![7u8; 600 * 1024];
        let (d, n) = sha256_reader(&big[..]).unwrap();
        assert_eq!((d, n), (sha256_bytes(&big), big.len() as u64));
    }
}
