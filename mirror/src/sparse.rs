//! Sparse indexes: a multi-arch index of which only some platforms' children are present.
//!
//! The pull cache keeps a multi-arch index byte-identical to the registry's (every digest
//! pinned to it keeps working) but, under `--platform`, fetches only the children of those
//! platforms, and says so with the index.json annotation `dev.ferry.platforms`
//! ([`FERRY_PLATFORMS`]: `os/arch[/variant]`, comma-separated, sorted). An image so
//! annotated takes, of its top-level index, only the children of those platforms: each of
//! them MUST be present (with its whole closure), the others are left out whether present
//! or not — so packing a set with `--platform` carries what it asked for even from a cache
//! that also holds the other children. Without the annotation every child is required.
//!
//! A listed platform matches a child as oc-mirror's filter does (and `imageset::Platform`):
//! os and architecture exactly; no variant matches every variant of them.

use std::path::Path;

use oci::{Descriptor, PlatformSpec};

use crate::error::MirrorError;

pub use oci::annotation::FERRY_PLATFORMS;

/// The platforms a `dev.ferry.platforms` annotation lists, normalized (sorted, each once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Platforms {
    specs: Vec<PlatformSpec>,
}

impl Platforms {
    /// Parses the annotation's value; `at` (the index.json) and `image` name it in errors.
    pub fn parse(value: &str, at: &Path, image: &str) -> Result<Platforms, MirrorError> {
        let mut specs = Vec::new();
        for part in value.split(',') {
            let spec = PlatformSpec::parse(part.trim()).map_err(|e| {
                MirrorError::malformed(
                    at,
                    format!("{image}: annotation {FERRY_PLATFORMS} {value:?}: {e}"),
                )
            })?;
            specs.push(spec);
        }
        Ok(Platforms::from_specs(specs))
    }

    fn from_specs(mut specs: Vec<PlatformSpec>) -> Platforms {
        specs.sort_by_key(|s| s.to_string());
        specs.dedup();
        Platforms { specs }
    }

    /// Both sets: what an image named by two descriptors, each sparse, needs.
    pub fn union(&self, other: &Platforms) -> Platforms {
        Platforms::from_specs(self.specs.iter().chain(&other.specs).cloned().collect())
    }

    /// `os/arch[/variant]` of each, sorted: what the image records.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.specs.iter().map(ToString::to_string).collect();
        names.sort();
        names
    }

    /// Whether index entry `d` is a child of a listed platform (oc-mirror's matching).
    pub fn keeps(&self, d: &Descriptor) -> bool {
        let Some(p) = &d.platform else { return false };
        self.specs.iter().any(|s| {
            s.os == p.os
                && s.architecture == p.architecture
                && s.variant
                    .as_ref()
                    .is_none_or(|v| Some(v) == p.variant.as_ref())
        })
    }

    /// Refuses a listed platform that no child of the index has: the annotation says which
    /// children are present, so one naming nothing is a damaged or foreign cache entry.
    pub fn check_listed(
        &self,
        children: &[Descriptor],
        at: &Path,
        image: &str,
    ) -> Result<(), MirrorError> {
        for s in &self.specs {
            let alone = Platforms {
                specs: vec![s.clone()],
            };
            if !children.iter().any(|c| alone.keeps(c)) {
                return Err(MirrorError::malformed(
                    at,
                    format!(
                        "{image}: annotation {FERRY_PLATFORMS} lists {s}, but the index has no child of that platform; pull the image again"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci::{Digest, Platform};

    fn child(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: None,
            digest: Digest::of(arch.as_bytes()),
            size: Some(1),
            urls: None,
            annotations: Default::default(),
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
                ..Platform::default()
            }),
            artifact_type: None,
        }
    }

    #[test]
    fn parses_normalizes_and_matches_like_oc_mirror() {
        let at = Path::new("index.json");
        let p = Platforms::parse("linux/s390x, linux/arm64,linux/arm64", at, "a:1").unwrap();
        assert_eq!(p.names(), ["linux/arm64", "linux/s390x"]);
        assert!(p.keeps(&child("linux", "arm64", Some("v8"))));
        assert!(p.keeps(&child("linux", "arm64", None)));
        assert!(!p.keeps(&child("linux", "amd64", None)));
        let mut none = child("linux", "arm64", None);
        none.platform = None;
        assert!(!p.keeps(&none));
        let v7 = Platforms::parse("linux/arm/v7", at, "a:1").unwrap();
        assert!(v7.keeps(&child("linux", "arm", Some("v7"))));
        assert!(!v7.keeps(&child("linux", "arm", Some("v6"))));
        assert_eq!(
            p.union(&v7).names(),
            ["linux/arm/v7", "linux/arm64", "linux/s390x"]
        );
        for bad in ["", "linux", "linux/amd64,", "linux/amd 64"] {
            let e = Platforms::parse(bad, at, "a:1").unwrap_err().to_string();
            assert!(
                e.starts_with("index.json: a:1: annotation dev.ferry.platforms"),
                "{bad:?}: {e}"
            );
        }
        let e = p
            .check_listed(&[child("linux", "arm64", None)], at, "a:1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lists linux/s390x"), "{e}");
        assert!(p
            .check_listed(
                &[child("linux", "arm64", None), child("linux", "s390x", None)],
                at,
                "a:1"
            )
            .is_ok());
    }
}
