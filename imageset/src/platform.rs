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
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// `OS/ARCH[/VARIANT]`, as `--platform` takes it.
impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
        if !ok {
            return Err(format!(
                "{s:?} is not a platform: write OS/ARCH or OS/ARCH/VARIANT (linux/amd64, linux/arm/v7)"
            ));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
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
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
