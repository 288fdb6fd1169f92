//! Content digests, `sha256:<64 lowercase hex>`, and the hasher that makes them.
//!
//! The grammar is the OCI image-spec's (descriptor.md "Digests"):
//!
//! ```text
//! digest                ::= algorithm ":" encoded
//! algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
//! algorithm-component   ::= [a-z0-9]+
//! algorithm-separator   ::= [+._-]
//! encoded               ::= [a-zA-Z0-9=_-]+
//! ```
//!
//! and for `sha256` the encoded part "MUST match `/[a-f0-9]{64}/`" ("SHA-256"). ferry holds
//! only sha256: a string that follows the grammar with another algorithm is a digest ferry
//! cannot check, so it is refused by name (`sha512` gets its own error, being the one other
//! algorithm registries actually send). Uppercase hex is refused so that one digest has one
//! spelling, and two spellings never name two copies of one blob.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// The algorithm prefix, with its `:`.
pub const SHA256_PREFIX: &str = "sha256:";

/// Input is quoted in errors up to this many characters: enough to recognise, not enough
/// to flood a terminal with a hostile file.
pub(crate) const QUOTE_LIMIT: usize = 140;

pub(crate) fn quoted(text: &str) -> String {
    text.chars().take(QUOTE_LIMIT).collect()
}

/// A SHA-256 digest: 32 bytes, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

/// Why a string is not a digest ferry accepts. `at` is a byte offset into `text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("{text:?} is not a digest: it has no `:` between the algorithm and the value (expected sha256:<64 lowercase hex digits>)")]
    NoAlgorithm { text: String },
    #[error("{text:?} is not a digest: {found:?} at byte {at} does not belong in the algorithm (lowercase letters and digits, joined by `+`, `.`, `_` or `-`)")]
    MalformedAlgorithm {
        text: String,
        at: usize,
        found: char,
    },
    #[error("{text:?} is not a digest: {found:?} at byte {at} does not belong in the encoded value (letters, digits, `=`, `_`, `-`)")]
    MalformedEncoded {
        text: String,
        at: usize,
        found: char,
    },
    #[error("{text:?} is not a digest: the value after the algorithm is empty")]
    EmptyEncoded { text: String },
    #[error("{text:?}: sha512 digests are not supported: ferry handles sha256 only")]
    Sha512 { text: String },
    #[error(
        "{text:?}: digest algorithm {algorithm:?} is not supported: ferry handles sha256 only"
    )]
    UnsupportedAlgorithm { text: String, algorithm: String },
    #[error("{text:?} is not a sha256 digest: it has {len} hex digits after `sha256:`, not 64")]
    WrongLength { text: String, len: usize },
    #[error("{text:?} is not a sha256 digest: {found:?} at byte {at} is not a lowercase hex digit (sha256 digests are written in 0-9 and a-f only)")]
    NotLowercaseHex {
        text: String,
        at: usize,
        found: char,
    },
}

impl DigestError {
    /// The byte offset in the text where the problem starts.
    pub fn at(&self) -> usize {
        match self {
            DigestError::MalformedAlgorithm { at, .. }
            | DigestError::MalformedEncoded { at, .. }
            | DigestError::NotLowercaseHex { at, .. } => *at,
            DigestError::WrongLength { .. } => SHA256_PREFIX.len(),
            DigestError::EmptyEncoded { text } => text.len(),
            DigestError::NoAlgorithm { .. }
            | DigestError::Sha512 { .. }
            | DigestError::UnsupportedAlgorithm { .. } => 0,
        }
    }
}

/// The first character at byte `at` of `text` (always a character boundary here: every
/// byte before it was ASCII).
fn char_at(text: &str, at: usize) -> char {
    text[at..].chars().next().unwrap_or('\0')
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<64 lowercase hex>` (see the module documentation for what is refused).
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, encoded)) = text.split_once(':') else {
            return Err(DigestError::NoAlgorithm { text: quoted(text) });
        };
        check_algorithm(text, algorithm)?;
        let base = algorithm.len() + 1;
        if encoded.is_empty() {
            return Err(DigestError::EmptyEncoded { text: quoted(text) });
        }
        if let Some(i) = encoded
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-')))
        {
            return Err(DigestError::MalformedEncoded {
                text: quoted(text),
                at: base + i,
                found: char_at(encoded, i),
            });
        }
        match algorithm {
            "sha256" => Digest::from_hex_in(text, encoded, base),
            "sha512" => Err(DigestError::Sha512 { text: quoted(text) }),
            _ => Err(DigestError::UnsupportedAlgorithm {
                text: quoted(text),
                algorithm: quoted(algorithm),
            }),
        }
    }

    /// Parses 64 lowercase hex digits without the `sha256:` prefix (chunk hashes in ferry's
    /// tables are written bare).
    pub fn from_hex(hex_part: &str) -> Result<Digest, DigestError> {
        Digest::from_hex_in(hex_part, hex_part, 0)
    }

    /// `encoded` is the hex part of `text`, starting at byte `base`.
    fn from_hex_in(text: &str, encoded: &str, base: usize) -> Result<Digest, DigestError> {
        // Length first, as go-digest does (ErrDigestInvalidLength before the characters).
        if encoded.len() != 64 {
            return Err(DigestError::WrongLength {
                text: quoted(text),
                len: encoded.len(),
            });
        }
        if let Some(i) = encoded
            .bytes()
            .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::NotLowercaseHex {
                text: quoted(text),
                at: base + i,
                found: char_at(encoded, i),
            });
        }
        let mut out = [0u8; 32];
        // Cannot fail: 64 characters, all hex, checked above.
        hex::decode_to_slice(encoded, &mut out).map_err(|_| DigestError::WrongLength {
            text: quoted(text),
            len: encoded.len(),
        })?;
        Ok(Digest(out))
    }

    /// The 64 lowercase hex digits, without the prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }
}

/// `algorithm-component (algorithm-separator algorithm-component)*`.
fn check_algorithm(text: &str, algorithm: &str) -> Result<(), DigestError> {
    let bad = |at: usize| {
        Err(DigestError::MalformedAlgorithm {
            text: quoted(text),
            at,
            found: if at < algorithm.len() {
                char_at(algorithm, at)
            } else {
                ':'
            },
        })
    };
    let component = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = algorithm.as_bytes();
    let mut previous_was_separator = true; // the first byte must start a component
    for (i, &b) in bytes.iter().enumerate() {
        if component(b) {
            previous_was_separator = false;
        } else if matches!(b, b'+' | b'.' | b'_' | b'-') && !previous_was_separator {
            previous_was_separator = true;
        } else {
            return bad(i);
        }
    }
    if previous_was_separator {
        // Empty, or ends in a separator: the `:` is where a component was due.
        return bad(bytes.len());
    }
    Ok(())
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHA256_PREFIX)?;
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the input.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
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

/// Serde for a digest written as bare hex (ferry's chunk tables: chunk hashes are not OCI
/// descriptors, so they carry no algorithm). Use with `#[serde(with = "oci::digest::bare_hex")]`.
pub mod bare_hex {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&text).map_err(|_| {
            serde::de::Error::custom(format!("{text:?} is not 64 lowercase hex digits"))
        })
    }
}

/// A SHA-256 hasher that yields a [`Digest`]. It does no I/O itself; it implements
/// [`io::Write`] so a caller can `io::copy` into it, or feed it with its own read loop
/// (a large buffer reads faster than `io::copy`'s 8 KiB).
#[derive(Clone, Default)]
pub struct Sha256 {
    inner: sha2::Sha256,
    len: u64,
}

impl Sha256 {
    pub fn new() -> Sha256 {
        Sha256::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len = self.len.saturating_add(bytes.len() as u64);
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest(self.inner.finalize().into())
    }
}

impl io::Write for Sha256 {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_and_round_trips() {
        let d = Digest::of(b"abc");
        assert_eq!(d.to_string(), ABC);
        assert_eq!(format!("{d:?}"), ABC);
        assert_eq!(Digest::parse(ABC).unwrap(), d);
        assert_eq!(ABC.parse::<Digest>().unwrap(), d);
        assert_eq!(d.hex(), &ABC[7..]);
        assert_eq!(Digest::from_hex(&ABC[7..]).unwrap(), d);
        assert_eq!(Digest::of(b"").to_string(), EMPTY);

        let mut h = Sha256::new();
        h.update(b"a");
        io::Write::write_all(&mut h, b"bc").unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h.finish(), d);
        let mut h = Sha256::new();
        io::copy(&mut &b"abc"[..], &mut h).unwrap();
        assert_eq!(h.finish(), d);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d = Digest::of(b"abc");
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{ABC}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&format!("\"{ABC}\"")).unwrap(),
            d
        );
        let e = serde_json::from_str::<Digest>(&format!("\"{}\"", ABC.to_uppercase()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a digest") || e.contains("lowercase"), "{e}");

        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Chunk {
            #[serde(with = "bare_hex")]
            hash: Digest,
        }
        let c = Chunk { hash: d };
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, format!(r#"{{"hash":"{}"}}"#, &ABC[7..]));
        assert_eq!(serde_json::from_str::<Chunk>(&j).unwrap(), c);
        assert!(serde_json::from_str::<Chunk>(&format!(r#"{{"hash":"{ABC}"}}"#)).is_err());
    }

    #[test]
    fn refuses_other_spellings_with_the_reason_and_where() {
        let upper = format!("sha256:{}", ABC[7..].to_uppercase());
        assert_eq!(
            Digest::parse(&upper),
            Err(DigestError::NotLowercaseHex {
                text: upper.clone(),
                at: 7,
                found: 'B'
            })
        );
        let mixed = format!("{}F", &ABC[..70]);
        assert!(matches!(
            Digest::parse(&mixed),
            Err(DigestError::NotLowercaseHex {
                at: 70,
                found: 'F',
                ..
            })
        ));
        let short = &ABC[..70];
        assert!(matches!(
            Digest::parse(short),
            Err(DigestError::WrongLength { len: 63, .. })
        ));
        let long = format!("{ABC}0");
        assert!(matches!(
            Digest::parse(&long),
            Err(DigestError::WrongLength { len: 65, .. })
        ));
        let e = Digest::parse(short).unwrap_err().to_string();
        assert!(e.contains("63 hex digits") && e.contains("not 64"), "{e}");
        assert!(matches!(
            Digest::parse(&ABC[7..]),
            Err(DigestError::NoAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse("sha256:"),
            Err(DigestError::EmptyEncoded { .. })
        ));
        assert!(matches!(
            Digest::parse("sha256:../../../../etc/passwd"),
            Err(DigestError::MalformedEncoded {
                at: 7,
                found: '.',
                ..
            })
        ));
        let g = format!("sha256:{}g", &ABC[7..70]);
        assert!(matches!(
            Digest::parse(&g),
            Err(DigestError::NotLowercaseHex {
                at: 70,
                found: 'g',
                ..
            })
        ));
    }

    #[test]
    fn refuses_sha512_by_name() {
        let d = format!("sha512:{}", "a".repeat(128));
        let e = Digest::parse(&d).unwrap_err();
        assert_eq!(e, DigestError::Sha512 { text: quoted(&d) });
        assert!(
            e.to_string()
                .contains("sha512 digests are not supported: ferry handles sha256 only"),
            "{e}"
        );
        // Whatever its length: the algorithm is the reason.
        assert!(matches!(
            Digest::parse("sha512:00"),
            Err(DigestError::Sha512 { .. })
        ));
    }

    #[test]
    fn other_algorithms_follow_the_image_spec_grammar() {
        // descriptor.md's own examples: grammatical, but not sha256.
        for (text, algorithm) in [
            (
                "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                "multihash+base58",
            ),
            (
                "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
                "sha256+b64u",
            ),
            (
                "blake3:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "blake3",
            ),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", "md5"),
        ] {
            match Digest::parse(text) {
                Err(DigestError::UnsupportedAlgorithm { algorithm: a, .. }) => {
                    assert_eq!(a, algorithm, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for (text, at) in [
            ("SHA256:abc", 0),
            ("sha-:abc", 4),
            ("+sha:abc", 0),
            ("sha..256:abc", 4),
            (":abc", 0),
            ("sha 256:abc", 3),
        ] {
            match Digest::parse(text) {
                Err(e @ DigestError::MalformedAlgorithm { .. }) => assert_eq!(e.at(), at, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            Digest::parse("sha256:abc/def"),
            Err(DigestError::MalformedEncoded {
                at: 10,
                found: '/',
                ..
            })
        ));
    }

    #[test]
    fn quotes_hostile_input_briefly() {
        let long = format!("x:{}", "é".repeat(1000));
        let e = Digest::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 600, "{}", e.len());
        assert!(matches!(
            Digest::parse(&long),
            Err(DigestError::MalformedEncoded {
                at: 2,
                found: 'é',
                ..
            })
        ));
    }
}
