//! Digests in mirror files. What a digest is, is oci's [`Digest`] (sha256, lowercase hex:
//! one blob has one name; sha512 refused by name). A mirror's model keeps digests as the
//! text it read, so this module checks that text and says which file held a bad one, and
//! hashes files with its own read loop.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use oci::{Digest, Sha256};

use crate::error::MirrorError;

pub(crate) use oci::digest::SHA256_PREFIX;

/// Checks a digest taken from a file at `path`, returning it unchanged.
pub(crate) fn checked(path: &Path, digest: &str) -> Result<String, MirrorError> {
    hex_of(path, digest).map(|_| digest.to_string())
}

/// Checks a digest taken from a file at `path`, returning its hex part (layouts name their
/// blob files by it).
pub(crate) fn hex_of<'a>(path: &Path, digest: &'a str) -> Result<&'a str, MirrorError> {
    match Digest::parse(digest) {
        Ok(_) => Ok(&digest[SHA256_PREFIX.len()..]),
        Err(reason) => Err(MirrorError::UnsupportedDigest {
            path: path.to_path_buf(),
            digest: digest.to_string(),
            reason,
        }),
    }
}

/// Whether `text` is a digest (file names in `blobs/` and `manifests/`).
pub(crate) fn is_digest(text: &str) -> bool {
    Digest::parse(text).is_ok()
}

/// Whether `text` is the 64 hex digits of a sha256 digest (file names in layouts that
/// name blobs by hex).
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    Digest::from_hex(text).is_ok()
}

/// The digest of `bytes` as the model keeps it, `sha256:<hex>`.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

/// Streams `reader` through SHA-256; returns the digest and the byte count. A 256 KiB
/// buffer, not `io::copy`'s 8 KiB: hashing whole layers is where a pack spends its time.
pub(crate) fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
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
    Ok((hasher.finish().to_string(), total))
}

pub(crate) fn sha256_file(path: &Path) -> Result<(String, u64), MirrorError> {
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
        assert_eq!(hex_of(at, &format!("sha256:{hex}")).unwrap(), hex);
        assert!(is_digest(&format!("sha256:{hex}")));
        assert!(is_sha256_hex(&hex));
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}g", "a".repeat(63)),
            hex.clone(),
        ] {
            assert!(hex_of(at, &bad).is_err(), "{bad}");
            assert!(!is_digest(&bad), "{bad}");
        }
        assert!(!is_sha256_hex(&"A".repeat(64)));
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
            sha256_bytes(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (d, n) = sha256_reader(&b""[..]).unwrap();
        assert_eq!((d.as_str(), n), (sha256_bytes(b"").as_str(), 0));
        let big = vec![7u8; 600 * 1024];
        let (d, n) = sha256_reader(&big[..]).unwrap();
        assert_eq!((d, n), (sha256_bytes(&big), big.len() as u64));
    }
}
