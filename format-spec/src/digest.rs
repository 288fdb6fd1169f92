//! SHA-256 digests as they appear in the format: `sha256:<64 lowercase hex>` (SPEC.md §3).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest. Only `sha256` is written or read by format version 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{text:?} is not a sha256 digest (expected `sha256:` and 64 lowercase hex digits)")]
pub struct BadDigest {
    pub text: String,
}

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<hex>`; uppercase hex is rejected so that one digest has one spelling.
    pub fn parse(text: &str) -> Result<Digest, BadDigest> {
        let bad = || BadDigest {
            text: text.chars().take(100).collect(),
        };
        let hex_part = text.strip_prefix("sha256:").ok_or_else(bad)?;
        Digest::from_hex(hex_part).ok_or_else(bad)
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(hex_part: &str) -> Option<Digest> {
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).ok()?;
        Some(Digest(out))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Digest {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Chunk hashes are written as bare hex in tables (they are not OCI digests).
pub mod bare_hex {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not 64 lowercase hex digits"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_spellings() {
        let d = Digest::of(b"abc");
        let text = d.to_string();
        assert_eq!(
            text,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&text).unwrap(), d);
        assert!(Digest::parse(&text.to_uppercase()).is_err());
        assert!(Digest::parse(&text[..70]).is_err());
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&text.replace("sha256:", "")).is_err());
    }
}
