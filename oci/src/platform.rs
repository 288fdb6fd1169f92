//! `--platform os/arch[/variant]`: parsing it, and which index entries it matches, as
//! containers/image `internal/pkg/platform/platform_matcher.go` decides (`WantedPlatforms`,
//! `MatchesPlatform`) when the user names the architecture:
//!
//! - os and architecture match exactly; `os.version` and `os.features` are not looked at;
//! - without a variant, an entry with no variant matches, then every variant known for
//!   the architecture (`arm64`: `v8`; `arm`: `v8`, `v7`, `v6`, `v5`);
//! - with a known variant, that variant and the older ones it can run, then no variant
//!   (`arm/v7` runs `v7`, `v6`, `v5`, none); with an unknown one, exactly it, then none.
//!
//! So `linux/arm64` matches variant `v8` or none. Nothing here looks at the machine ferry
//! runs on: the platform is always the one given.

use std::fmt;
use std::str::FromStr;

use crate::digest::quoted;
use crate::manifest::{Descriptor, Platform};

/// For an architecture, its variants from most to least capable (containers/image
/// `compatibility`). Architectures without variants have no entry.
const COMPATIBILITY: &[(&str, &[&str])] = &[("arm", &["v8", "v7", "v6", "v5"]), ("arm64", &["v8"])];

/// A wanted platform, as given to `--platform`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Why a `--platform` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {text:?}: {problem} (expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8)")]
pub struct PlatformError {
    pub text: String,
    pub problem: String,
}

impl PlatformSpec {
    pub fn parse(text: &str) -> Result<PlatformSpec, PlatformError> {
        let bad = |problem: String| PlatformError {
            text: quoted(text),
            problem,
        };
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad(format!(
                "has {} `/`-separated parts, not 2 or 3",
                parts.len()
            )));
        }
        for (part, what) in parts.iter().zip(["os", "architecture", "variant"]) {
            if part.is_empty() {
                return Err(bad(format!("the {what} is empty")));
            }
            if let Some(c) = part
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            {
                return Err(bad(format!("{c:?} cannot appear in the {what}")));
            }
        }
        Ok(PlatformSpec {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }

    /// The variants this platform accepts, best first; `""` is "no variant".
    pub fn variants(&self) -> Vec<&str> {
        let known = COMPATIBILITY
            .iter()
            .find(|(arch, _)| *arch == self.architecture)
            .map(|(_, v)| *v);
        match &self.variant {
            Some(wanted) => {
                let mut out: Vec<&str> =
                    match known.and_then(|v| v.iter().position(|x| x == wanted).map(|i| &v[i..])) {
                        Some(compatible) => compatible.to_vec(),
                        None => vec![wanted.as_str()],
                    };
                out.push("");
                out
            }
            None => {
                let mut out = vec![""];
                out.extend(known.unwrap_or_default());
                out
            }
        }
    }

    /// How well `platform` fits: 0 is best, `None` is no match.
    pub fn rank(&self, platform: &Platform) -> Option<usize> {
        if platform.os != self.os || platform.architecture != self.architecture {
            return None;
        }
        let variant = platform.variant.as_deref().unwrap_or("");
        self.variants().iter().position(|v| *v == variant)
    }

    pub fn matches(&self, platform: &Platform) -> bool {
        self.rank(platform).is_some()
    }

    /// The entry of an index to use for this platform, as containers/image chooses one from
    /// an OCI index: the best rank, the earliest entry among equals, and an entry without a
    /// platform only when no entry matches. (containers/image also prefers zstd instances
    /// among equals; ferry takes what the index lists first.)
    pub fn choose<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        manifests
            .iter()
            .filter_map(|d| match &d.platform {
                Some(p) => self.rank(p).map(|r| (r, d)),
                None => Some((usize::MAX, d)),
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for PlatformSpec {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlatformSpec::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
            ..Platform::default()
        }
    }

    fn spec(s: &str) -> PlatformSpec {
        PlatformSpec::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let s = spec("linux/arm64/v8");
        assert_eq!((s.os.as_str(), s.architecture.as_str()), ("linux", "arm64"));
        assert_eq!(s.variant.as_deref(), Some("v8"));
        assert_eq!(s.to_string(), "linux/arm64/v8");
        assert_eq!(spec("linux/amd64").to_string(), "linux/amd64");
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/",
            "a/b/c/d",
            "linux/amd 64",
        ] {
            let e = PlatformSpec::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("expected os/architecture"),
                "{bad}: {e}"
            );
        }
    }

    /// containers/image `platform_matcher_test.go: TestWantedPlatforms`, the cases where the
    /// architecture is chosen.
    #[test]
    fn variants_as_containers_image_wants_them() {
        assert_eq!(spec("linux/amd64").variants(), [""]);
        assert_eq!(spec("linux/arm/v6").variants(), ["v6", "v5", ""]);
        assert_eq!(spec("linux/arm").variants(), ["", "v8", "v7", "v6", "v5"]);
        assert_eq!(spec("linux/arm64").variants(), ["", "v8"]);
        assert_eq!(spec("freeBSD/armel/custom").variants(), ["custom", ""]);
    }

    #[test]
    fn matching() {
        let arm64 = spec("linux/arm64");
        assert!(arm64.matches(&p("linux", "arm64", Some("v8"))));
        assert!(arm64.matches(&p("linux", "arm64", None)));
        assert!(!arm64.matches(&p("linux", "arm64", Some("v9"))));
        assert!(!arm64.matches(&p("linux", "amd64", None)));
        assert!(!arm64.matches(&p("windows", "arm64", None)));
        assert!(spec("linux/arm64/v8").matches(&p("linux", "arm64", None)));
        assert!(spec("linux/amd64").matches(&p("linux", "amd64", None)));
        assert!(!spec("linux/amd64").matches(&p("linux", "amd64", Some("v2"))));
        let v7 = spec("linux/arm/v7");
        assert!(v7.matches(&p("linux", "arm", Some("v6"))));
        assert!(!v7.matches(&p("linux", "arm", Some("v8"))));
        // os.version and os.features are not looked at.
        let mut w = p("windows", "amd64", None);
        w.os_version = Some("10.0.17763.1234".into());
        assert!(spec("windows/amd64").matches(&w));
    }

    #[test]
    fn chooses_like_containers_image() {
        let entry = |n: u8, platform: Option<Platform>| Descriptor {
            media_type: None,
            digest: Digest::of(&[n]),
            size: Some(1),
            urls: None,
            annotations: Default::default(),
            platform,
            artifact_type: None,
        };
        let list = [
            entry(0, Some(p("linux", "amd64", None))),
            entry(1, None),
            entry(2, Some(p("linux", "arm", Some("v6")))),
            entry(3, Some(p("linux", "arm", Some("v7")))),
            entry(4, Some(p("linux", "arm", Some("v7")))),
        ];
        let pick = |s: &str| spec(s).choose(&list).map(|d| d.digest);
        assert_eq!(pick("linux/arm/v7"), Some(Digest::of(&[3])));
        assert_eq!(pick("linux/arm/v6"), Some(Digest::of(&[2])));
        assert_eq!(pick("linux/amd64"), Some(Digest::of(&[0])));
        // No entry matches: the one without a platform.
        assert_eq!(pick("linux/s390x"), Some(Digest::of(&[1])));
        assert_eq!(spec("linux/s390x").choose(&list[2..]), None);
    }
}
