//! Image references, `[host[:port]/]path[:tag][@sha256:<hex>]`, read as distribution's
//! `reference.ParseNormalizedNamed` reads them (distribution/reference `normalize.go`):
//!
//! - the first `/`-separated component is the registry host when it is `localhost`,
//!   contains `.` or `:`, or has an uppercase letter ([`marks_host`]); otherwise the
//!   reference is on Docker Hub, `docker.io`;
//! - `index.docker.io` is Docker Hub's old name and becomes `docker.io`;
//! - a one-component path on Docker Hub is an official image: `ubuntu` is
//!   `docker.io/library/ubuntu`;
//! - a bare 64-hex-digit string is an image ID, not a name, and is refused.
//!
//! [`Written`] splits and checks a reference the same way without normalising it, for
//! callers that must keep what a mirror or a user wrote (`busybox` stays `busybox`).
//!
//! No tag is added when none is given (distribution's `TagNameOnly` is a separate step
//! that ferry does not take: a missing tag is a decision for the caller).
//!
//! Where ferry is stricter than distribution, it refuses what distribution would accept
//! only to fail later: a first component that looks like a host but is not a valid one
//! (`foo_bar.com/x`, which distribution reads as a path with no host at all), ports outside
//! 1-65535, IPv6 addresses that do not parse, digests other than sha256.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{quoted, Digest, DigestError};
use crate::name::{self, marks_host, NameError, NameKind, Problem, REPOSITORY_MAX};

/// Docker Hub's canonical name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's older name, normalised to [`DOCKER_HUB`].
pub const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The host that serves Docker Hub's registry API (distribution `normalize.go`: "the actual
/// domain of Docker Hub's registry is registry-1.docker.io").
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_NAMESPACE: &str = "library";

/// A parsed, normalised image reference. Host and path are always present; tag and digest
/// each may be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    host: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference. `at` is a byte offset into `text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("the image reference is empty")]
    Empty,
    #[error("{text:?} is an image ID, not a reference: write <repository>@sha256:{text}")]
    ImageId { text: String },
    #[error("image reference {text:?}: the {kind} at byte {at}: {problem} (expected {})", .kind.rule())]
    Name {
        text: String,
        at: usize,
        kind: NameKind,
        problem: Problem,
    },
    #[error("image reference {text:?}: the digest at byte {at}: {source}")]
    Digest {
        text: String,
        at: usize,
        #[source]
        source: DigestError,
    },
    #[error("registry host {host:?} would be read back as the first component of a repository path: give a host with a `.` or a `:port`, or `localhost`")]
    HostNotMarked { host: String },
}

impl ReferenceError {
    fn name(text: &str, kind: NameKind, (at, problem): (usize, Problem)) -> ReferenceError {
        ReferenceError::Name {
            text: quoted(text),
            at,
            kind,
            problem,
        }
    }
}

/// A reference split as written: host, path, tag and digest checked exactly as
/// [`Reference::parse`] checks them, but nothing normalised: no `docker.io` is added where
/// no host is written, no `library/`, and `index.docker.io` stays as it is.
///
/// For callers that record, compare or map references as a mirror or a user wrote them:
/// what a bundle records and where an image goes must not change with the spelling ferry
/// would have chosen. [`Reference::parse`] of the same text is the reference it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<'a> {
    /// The registry host with its port, when the reference names one.
    pub host: Option<&'a str>,
    /// The repository path as written (`busybox`, not `library/busybox`).
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<Digest>,
}

/// The parts of a reference before they are checked beyond their grammar's shape: the
/// host and the path's grammar are checked; the path's length, the tag and the digest not
/// yet, so that each caller checks the length of the path it keeps, in the same order.
struct Pieces<'a> {
    host: Option<&'a str>,
    path: &'a str,
    /// Byte offset of the path in the text.
    path_at: usize,
    tag: Option<(&'a str, usize)>,
    digest: Option<(&'a str, usize)>,
}

fn pieces(text: &str) -> Result<Pieces<'_>, ReferenceError> {
    if text.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceError::ImageId { text: text.into() });
    }
    // Neither name nor tag can hold `@`: the first one starts the digest.
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((n, d)) => (n, Some((d, n.len() + 1))),
        None => (text, None),
    };
    let (host, rest, path_at) = match name_and_tag.split_once('/') {
        Some((first, rest)) if marks_host(first) => {
            if let Some(p) = name::host_problem(first) {
                return Err(ReferenceError::name(text, NameKind::Host, p));
            }
            (Some(first), rest, first.len() + 1)
        }
        _ => (None, name_and_tag, 0),
    };
    // A path holds no `:`, so the first one after the host starts the tag.
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some((t, path_at + p.len() + 1))),
        None => (rest, None),
    };
    if let Some((at, problem)) = name::repository_problem(path) {
        // The length is checked by the caller, on the path it keeps.
        if !matches!(problem, Problem::RepositoryTooLong { .. }) {
            return Err(ReferenceError::name(
                text,
                NameKind::Repository,
                (path_at + at, problem),
            ));
        }
    }
    Ok(Pieces {
        host,
        path,
        path_at,
        tag,
        digest,
    })
}

impl<'a> Pieces<'a> {
    fn checked_tag(&self, text: &str) -> Result<Option<&'a str>, ReferenceError> {
        match self.tag {
            None => Ok(None),
            Some((t, at)) => match name::tag_problem(t) {
                Some((i, problem)) => {
                    Err(ReferenceError::name(text, NameKind::Tag, (at + i, problem)))
                }
                None => Ok(Some(t)),
            },
        }
    }

    fn checked_digest(&self, text: &str) -> Result<Option<Digest>, ReferenceError> {
        match self.digest {
            None => Ok(None),
            Some((d, at)) => Digest::parse(d)
                .map(Some)
                .map_err(|source| ReferenceError::Digest {
                    text: quoted(text),
                    at: at + source.at(),
                    source,
                }),
        }
    }
}

impl<'a> Written<'a> {
    /// Splits and checks `text` (see [`Reference::parse`] for what is refused); the path's
    /// 255-character limit applies to the path as written.
    pub fn parse(text: &'a str) -> Result<Written<'a>, ReferenceError> {
        let p = pieces(text)?;
        if p.path.len() > REPOSITORY_MAX {
            return Err(ReferenceError::name(
                text,
                NameKind::Repository,
                (
                    p.path_at + REPOSITORY_MAX,
                    Problem::RepositoryTooLong { len: p.path.len() },
                ),
            ));
        }
        Ok(Written {
            host: p.host,
            path: p.path,
            tag: p.checked_tag(text)?,
            digest: p.checked_digest(text)?,
        })
    }
}

/// A one-component path on Docker Hub is an official image, in `library/`.
fn normalized_path(host: &str, written: &str) -> String {
    if host == DOCKER_HUB && !written.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{written}")
    } else {
        written.to_owned()
    }
}

impl Reference {
    /// Parses and normalises a reference (see the module documentation).
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let p = pieces(text)?;
        let host = match p.host {
            // Docker Hub's old name is normalised; no host at all is Docker Hub.
            None | Some(DOCKER_HUB_LEGACY) => DOCKER_HUB,
            Some(h) => h,
        };
        let path = normalized_path(host, p.path);
        if path.len() > REPOSITORY_MAX {
            let added = path.len() - p.path.len();
            return Err(ReferenceError::name(
                text,
                NameKind::Repository,
                (
                    p.path_at + REPOSITORY_MAX.saturating_sub(added),
                    Problem::RepositoryTooLong { len: path.len() },
                ),
            ));
        }
        let tag = p.checked_tag(text)?.map(str::to_owned);
        let digest = p.checked_digest(text)?;
        Ok(Reference {
            host: host.to_owned(),
            path,
            tag,
            digest,
        })
    }

    /// A reference to repository `path` on registry `host`, normalised as [`Reference::parse`]
    /// would normalise `host/path`. The host must be one `parse` reads back as a host.
    pub fn new(host: &str, path: &str) -> Result<Reference, ReferenceError> {
        let text = format!("{host}/{path}");
        name::check_host(host)
            .map_err(|e| ReferenceError::name(&text, e.kind, (e.at, e.problem)))?;
        if !marks_host(host) {
            return Err(ReferenceError::HostNotMarked { host: quoted(host) });
        }
        // Checked here so that a `:` or `@` in `path` is an error, not a tag or a digest.
        if let Some((at, problem)) = name::repository_problem(path) {
            return Err(ReferenceError::name(
                &text,
                NameKind::Repository,
                (host.len() + 1 + at, problem),
            ));
        }
        Reference::parse(&text)
    }

    /// The same repository with `tag` (replacing any tag; the digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, NameError> {
        name::check_tag(tag)?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same repository with `digest` (replacing any digest; the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository without tag or digest.
    pub fn repository_only(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The registry host with its port, as written (`docker.io` for Docker Hub).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host to send registry API requests to: `registry-1.docker.io` for Docker Hub,
    /// the host itself otherwise.
    pub fn api_host(&self) -> &str {
        if self.host == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.host
        }
    }

    /// The repository path, without host (`library/ubuntu`): the `<name>` of the
    /// distribution API's URLs.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// `host/path`, without tag or digest (distribution's `Name()`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.path)
    }

    /// The short form people type: Docker Hub's host and its `library/` namespace left out
    /// (`ubuntu:22.04`, `user/app`), other registries unchanged (distribution's
    /// `FamiliarString`).
    pub fn familiar(&self) -> String {
        let mut out = if self.host == DOCKER_HUB {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        };
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(&d.to_string());
        }
    }
}

/// The `<reference>` of the distribution API's manifest URLs: a tag or a digest
/// (distribution-spec "Pulling manifests": "MUST NOT be in any other format").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagOrDigest {
    Tag(String),
    Digest(Digest),
}

/// Why a string is neither a tag nor a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagOrDigestError {
    #[error(transparent)]
    Tag(#[from] NameError),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

impl TagOrDigest {
    /// A tag has no `:`, so anything with one is read as a digest.
    pub fn parse(text: &str) -> Result<TagOrDigest, TagOrDigestError> {
        if text.contains(':') {
            Ok(TagOrDigest::Digest(Digest::parse(text)?))
        } else {
            name::check_tag(text)?;
            Ok(TagOrDigest::Tag(text.to_owned()))
        }
    }
}

impl fmt::Display for TagOrDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagOrDigest::Tag(t) => f.write_str(t),
            TagOrDigest::Digest(d) => fmt::Display::fmt(d, f),
        }
    }
}

/// The full form, `host/path[:tag][@digest]`, which [`Reference::parse`] reads back to an
/// equal reference.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reference::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn docker_hub_defaults() {
        let r = Reference::parse("ubuntu").unwrap();
        assert_eq!((r.host(), r.path()), ("docker.io", "library/ubuntu"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.to_string(), "docker.io/library/ubuntu");
        assert_eq!(r.familiar(), "ubuntu");
        let r = Reference::parse("user/x:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/x:1");
        assert_eq!(r.familiar(), "user/x:1");
        let r = Reference::parse("index.docker.io/debian").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/debian");
        let r = Reference::parse("quay.io/a/b:1").unwrap();
        assert_eq!(r.api_host(), "quay.io");
        assert_eq!(r.familiar(), "quay.io/a/b:1");
    }

    #[test]
    fn errors_point_into_the_whole_string() {
        let e = Reference::parse("quay.io/ns/ab-:1").unwrap_err();
        assert_eq!(
            e,
            ReferenceError::Name {
                text: "quay.io/ns/ab-:1".into(),
                at: 13,
                kind: NameKind::Repository,
                problem: Problem::ComponentEdge { found: '-' }
            }
        );
        let shown = e.to_string();
        assert!(
            shown.contains("at byte 13") && shown.contains("repository name"),
            "{shown}"
        );
        let e = Reference::parse("quay.io/a:b/c").unwrap_err();
        assert!(
            matches!(
                e,
                ReferenceError::Name {
                    kind: NameKind::Tag,
                    at: 11,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = Reference::parse(&format!("quay.io/a@{}", &D[..40])).unwrap_err();
        assert!(
            matches!(
                e,
                ReferenceError::Digest {
                    at: 17,
                    source: DigestError::WrongLength { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        let e = Reference::parse(&format!(
            "quay.io/a@{}",
            D.to_uppercase().replace("SHA", "sha")
        ))
        .unwrap_err();
        assert!(matches!(e, ReferenceError::Digest { at: 17, .. }), "{e:?}");
        let e = Reference::parse("a@sha512:00").unwrap_err();
        assert!(e.to_string().contains("ferry handles sha256 only"), "{e}");
        let e = Reference::parse("foo_bar.com/x").unwrap_err();
        assert!(
            matches!(
                e,
                ReferenceError::Name {
                    kind: NameKind::Host,
                    at: 3,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn written_keeps_the_spelling_and_checks_the_same() {
        let d = Digest::of(b"x");
        let text = format!("busybox:1@{d}");
        let w = Written::parse(&text).unwrap();
        assert_eq!(
            w,
            Written {
                host: None,
                path: "busybox",
                tag: Some("1"),
                digest: Some(d)
            }
        );
        let w = Written::parse("index.docker.io/debian").unwrap();
        assert_eq!((w.host, w.path), (Some("index.docker.io"), "debian"));
        let w = Written::parse("localhost:5000/a/b:t").unwrap();
        assert_eq!(
            (w.host, w.path, w.tag),
            (Some("localhost:5000"), "a/b", Some("t"))
        );
        // Refused as Reference::parse refuses, with the same error.
        for bad in [
            "",
            "quay.io/ns/ab-:1",
            "a:",
            "a@sha256:abc",
            "a@sha512:00",
            "foo_bar.com/x",
        ] {
            assert_eq!(
                Written::parse(bad).unwrap_err(),
                Reference::parse(bad).unwrap_err(),
                "{bad:?}"
            );
        }
        // The length limit is on the path kept: as written, 248 characters fit; normalised,
        // `library/` takes them past 255.
        let long = "a".repeat(248);
        assert_eq!(Written::parse(&long).unwrap().path, long);
        assert!(Reference::parse(&long).is_err());
        assert!(matches!(
            Written::parse(&"a".repeat(256)),
            Err(ReferenceError::Name {
                at: 255,
                problem: Problem::RepositoryTooLong { len: 256 },
                ..
            })
        ));
    }

    #[test]
    fn tag_or_digest() {
        assert_eq!(
            TagOrDigest::parse("latest").unwrap(),
            TagOrDigest::Tag("latest".into())
        );
        let d = Digest::of(b"x");
        assert_eq!(
            TagOrDigest::parse(&d.to_string()).unwrap(),
            TagOrDigest::Digest(d)
        );
        assert_eq!(
            TagOrDigest::parse(&d.to_string()).unwrap().to_string(),
            d.to_string()
        );
        assert!(matches!(
            TagOrDigest::parse("sha256:nothex"),
            Err(TagOrDigestError::Digest(_))
        ));
        assert!(matches!(
            TagOrDigest::parse("a?b"),
            Err(TagOrDigestError::Tag(_))
        ));
        assert!(matches!(
            TagOrDigest::parse(""),
            Err(TagOrDigestError::Tag(_))
        ));
    }

    #[test]
    fn builds_and_round_trips() {
        let r = Reference::new("registry.internal:8443", "efk/es").unwrap();
        assert_eq!(r.to_string(), "registry.internal:8443/efk/es");
        let r = r.with_tag("v1").unwrap().with_digest(Digest::of(b"x"));
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        assert_eq!(
            r.repository_only().to_string(),
            "registry.internal:8443/efk/es"
        );
        assert!(r.with_tag("-x").is_err());
        assert_eq!(
            Reference::new("docker.io", "ubuntu").unwrap().path(),
            "library/ubuntu"
        );
        assert!(matches!(
            Reference::new("registry", "x"),
            Err(ReferenceError::HostNotMarked { .. })
        ));
        assert!(matches!(
            Reference::new("quay.io", "a:b"),
            Err(ReferenceError::Name { at: 9, .. })
        ));
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Reference>(&j).unwrap(), r);
    }
}
