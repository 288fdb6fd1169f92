//! Names the Distribution API puts in URLs: repository names, tags and digests.
//!
//! Everything that goes into a URL path is checked against the grammar of
//! distribution-spec "Pulling manifests" / "Pushing" (`<name>`, `<reference>`), so a
//! name can never smuggle `..`, `?` or `#` into a request.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

/// A content digest, `algorithm:hex`: `sha256:` with 64 or `sha512:` with 128 lowercase
/// hex digits (image-spec descriptor.md "Registered algorithms").
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// Why a string is not a digest this client accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{text:?} is not a digest (expected `sha256:` + 64 or `sha512:` + 128 lowercase hex digits)"
)]
pub struct BadDigest {
    pub text: String,
}

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, BadDigest> {
        let bad = || BadDigest {
            text: text.chars().take(140).collect(),
        };
        let (algorithm, hex_part) = text.split_once(':').ok_or_else(bad)?;
        let want = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(bad()),
        };
        // Uppercase hex is rejected so that one digest has one spelling.
        if hex_part.len() != want
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        Ok(Digest(text.to_owned()))
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn recompute(&self, bytes: &[u8]) -> Digest {
        match self.algorithm() {
            "sha512" => Digest(format!("sha512:{}", hex::encode(Sha512::digest(bytes)))),
            _ => Digest::sha256(bytes),
        }
    }

    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub(crate) fn parse(text: &str) -> Option<Reference> {
        if text.contains(':') {
            Digest::parse(text).ok().map(Reference::Digest)
        } else if is_tag(text) {
            Some(Reference::Tag(text.to_owned()))
        } else {
            None
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) => t,
            Reference::Digest(d) => d.as_str(),
        }
    }
}

/// The rule quoted in errors about repository names.
pub(crate) const REPOSITORY_RULE: &str =
    "lowercase path components [a-z0-9]+ joined by `.`, `_`, `__` or `-`, separated by `/`, at most 255 characters";
/// The rule quoted in errors about tags.
pub(crate) const TAG_RULE: &str = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}, or a digest";

/// `<name>`: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
/// (distribution-spec "Pulling manifests"). The length cap is the one distribution applies
/// to the whole name.
pub(crate) fn is_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(is_path_component)
}

fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        // Separator: `.`, `_`, `__` or one or more `-`.
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (distribution-spec "Pulling manifests").
pub(crate) fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = Digest::sha256(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex().len(), 64);
        let long = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            Digest::parse(&long).unwrap().recompute(b"").algorithm(),
            "sha512"
        );
        for bad in [
            "",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../../../etc/passwd",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/busybox",
            "ocp/release-images",
            "a.b_c__d---e/f0",
            "x/y/z/w",
        ] {
            assert!(is_repository(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a/../b", "..", "a..b", "a___b", "a-", "_a", "a?b", "a#b",
            "a b", "a%2fb",
        ] {
            assert!(!is_repository(bad), "{bad}");
        }
        assert!(!is_repository(&"a".repeat(256)));
    }

    #[test]
    fn tags_and_references() {
        assert!(is_tag("v4.14.0-x86_64"));
        assert!(is_tag("_"));
        assert!(is_tag(&"a".repeat(128)));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(!is_tag(".hidden"));
        assert!(!is_tag("-x"));
        assert!(!is_tag("a/b"));
        assert_eq!(
            Reference::parse("latest"),
            Some(Reference::Tag("latest".into()))
        );
        assert!(matches!(
            Reference::parse(Digest::sha256(b"x").as_str()),
            Some(Reference::Digest(_))
        ));
        assert_eq!(Reference::parse("sha256:nothex"), None);
        assert_eq!(Reference::parse("a?b"), None);
    }
}
