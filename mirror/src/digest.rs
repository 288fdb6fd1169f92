//! `sha256:<hex>` digests: strict parsing of digests taken from input, and hashing.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::MirrorError;

pub(crate) const SHA256_PREFIX: &str = "sha256:";

/// The hex part of a canonical `sha256:<64 lowercase hex>` digest, or `None`.
/// Upper-case hex is rejected as go-digest does: the digest must be canonical so that one
/// blob has one name.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix(SHA256_PREFIX)?;
    is_sha256_hex(hex).then_some(hex)
}

/// True for exactly 64 lowercase hex characters.
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a digest taken from a file at `path`, returning it unchanged.
pub(crate) fn checked(path: &Path, digest: &str) -> Result<String, MirrorError> {
    match sha256_hex(digest) {
        Some(_) => Ok(digest.to_string()),
        None => Err(MirrorError::UnsupportedDigest {
            path: path.to_path_buf(),
            digest: digest.to_string(),
        }),
    }
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// Streams `reader` through SHA-256; returns the digest and the byte count.
pub(crate) fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total = total.saturating_add(n as u64);
    }
    Ok((
        format!("{SHA256_PREFIX}{}", hex::encode(hasher.finalize())),
        total,
    ))
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
        assert_eq!(sha256_hex(&format!("sha256:{hex}")), Some(hex.as_str()));
        assert_eq!(sha256_hex(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(sha256_hex(&format!("sha256:{}", "a".repeat(63))), None);
        assert_eq!(sha256_hex(&format!("sha512:{hex}")), None);
        assert_eq!(sha256_hex(&hex), None);
        assert_eq!(sha256_hex(&format!("sha256:{}g", "a".repeat(63))), None);
    }

    #[test]
    fn hashes_empty_input() {
        assert_eq!(
            sha256_bytes(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (d, n) = sha256_reader(&b""[..]).unwrap();
        assert_eq!((d.as_str(), n), (sha256_bytes(b"").as_str(), 0));
    }
}
