//! Platforms: the `platforms[]` entries of an image set (oc-mirror's
//! `InstancePlatformFilter{os, architecture}`, `type_platform.go` at oc-mirror@855b64a) and
//! ferry's `--platform OS/ARCH[/VARIANT]`.
//!
//! oc-mirror's filter has no variant and keeps every variant of a matching
//! `os/architecture` (`linux/arm64` keeps `linux/arm64/v8`). ferry accepts `variant` in the
//! file as an extension (oc-mirror would refuse the unknown field), so that the file can say
//! what `--platform linux/arm/v7` says.

use std::fmt;
use std::str::FromStr;

use oci::{PlatformError, PlatformSpec};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// ferry extension; `None` matches every variant.
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Whether an index child of this `os`, `architecture` and `variant` is kept.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && self.variant.as_deref().is_none_or(|v| Some(v) == variant)
    }

    /// The same platform as oci's `--platform` value (`linux/arm/v7`).
    pub fn spec(&self) -> PlatformSpec {
        PlatformSpec {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }

    /// oc-mirror's `Validate`: neither `os` nor `architecture` may be empty.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        if self.os.is_empty() {
            Some(("os", "the operating system is empty (e.g. linux)".into()))
        } else if self.architecture.is_empty() {
            Some((
                "architecture",
                "the architecture is empty (e.g. amd64, arm64)".into(),
            ))
        } else if self.variant.as_deref() == Some("") {
            Some((
                "variant",
                "the variant is empty (leave it out to keep every variant)".into(),
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec().fmt(f)
    }
}

/// `OS/ARCH[/VARIANT]`, as `--platform` takes it: oci's grammar, the one every ferry
/// `--platform` reads. Only the matching differs (oc-mirror's filter, [`Platform::matches`]).
impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let PlatformSpec {
            os,
            architecture,
            variant,
        } = PlatformSpec::parse(s)?;
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert!(p.matches("linux", "arm", Some("v7")));
        assert!(!p.matches("linux", "arm", Some("v6")));
        assert!(!p.matches("linux", "arm", None));
        assert_eq!(p.to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "", "linux/amd 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        // oci's grammar and message, as every ferry --platform.
        assert_eq!(
            "linux/".parse::<Platform>().unwrap_err().to_string(),
            "platform \"linux/\": the architecture is empty (expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8)"
        );
    }
}
