//! `mirror.blockedImages`, matched as oc-mirror v2 matches it: each `name` is a Go regular
//! expression (RE2 syntax; a pattern that does not compile is an error,
//! `internal/pkg/config/validate.go` validateBlockedImages), applied with
//! `regexp.MatchString`, i.e. **unanchored** (`ubi` blocks `registry.redhat.io/ubi8/ubi:8.9`),
//! to every collected image, with any `docker://` transport stripped
//! (`internal/pkg/cli/executor.go` excludeImages, oc-mirror@855b64a). A blocked image is
//! dropped from the set, not an error.
//!
//! oc-mirror matches the reference as written and its destination in the mirror
//! (`localhost:55000/<repo>:<tag>` or the target registry). ferry has no destination
//! registry at this point (push decides it inside), so it matches the reference as written
//! and its canonical form (`ubuntu:22.04` is also tried as `docker.io/library/ubuntu:22.04`),
//! so that `^docker\.io/` blocks short names too.

use oci::Reference;

use crate::schema::{BlockedImage, ImageName, Pattern};

/// The compiled `blockedImages` patterns, in file order.
#[derive(Debug, Clone, Default)]
pub struct BlockList {
    patterns: Vec<Pattern>,
}

impl BlockList {
    pub fn new(blocked: &[BlockedImage]) -> BlockList {
        BlockList {
            patterns: blocked.iter().map(|b| b.name.clone()).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The first pattern that blocks an image of the set.
    pub fn blocking(&self, name: &ImageName) -> Option<&Pattern> {
        let canonical = name.reference.to_string();
        self.patterns
            .iter()
            .find(|p| p.0.is_match(&name.written) || p.0.is_match(&canonical))
    }

    /// The first pattern that blocks a reference given as text (a catalog's related image,
    /// say): as written without `docker://`, and canonical when it parses.
    pub fn blocking_str(&self, reference: &str) -> Option<&Pattern> {
        let written = reference.strip_prefix("docker://").unwrap_or(reference);
        let canonical = Reference::parse(written).ok().map(|r| r.to_string());
        self.patterns.iter().find(|p| {
            p.0.is_match(written) || canonical.as_deref().is_some_and(|c| p.0.is_match(c))
        })
    }

    /// Splits references into those kept and those blocked (with the pattern's text).
    pub fn partition<T: AsRef<str>>(
        &self,
        refs: impl IntoIterator<Item = T>,
    ) -> (Vec<T>, Vec<(T, String)>) {
        let mut kept = Vec::new();
        let mut blocked = Vec::new();
        for r in refs {
            match self.blocking_str(r.as_ref()) {
                Some(p) => {
                    let p = p.as_str().to_string();
                    blocked.push((r, p));
                }
                None => kept.push(r),
            }
        }
        (kept, blocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> BlockList {
        BlockList {
            patterns: patterns
                .iter()
                .map(|p| Pattern(regex::Regex::new(p).unwrap()))
                .collect(),
        }
    }

    #[test]
    fn unanchored_regex_as_oc_mirror() {
        // oc-mirror's own e2e case 83582 blocks "(aws|gcp|azure|ibm|openstack)".
        let b = list(&["(aws|gcp|azure|ibm|openstack)"]);
        let (kept, blocked) = b.partition([
            "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "quay.io/openshift/aws-ebs-csi-driver:4.18",
            "docker://registry.redhat.io/openstack/cinder:1",
            "registry.redhat.io/ubi8/ubi:8.9",
        ]);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(blocked.len(), 2);
        assert_eq!(blocked[0].1, "(aws|gcp|azure|ibm|openstack)");
        // Anchors work as in Go.
        let b = list(&["^registry\\.redhat\\.io/ubi8/"]);
        assert!(b.blocking_str("registry.redhat.io/ubi8/ubi:8.9").is_some());
        assert!(b
            .blocking_str("quay.io/registry.redhat.io/ubi8/x:1")
            .is_none());
    }

    #[test]
    fn canonical_form_is_tried_too() {
        let b = list(&["^docker\\.io/library/"]);
        let n = ImageName::parse("ubuntu:22.04").unwrap();
        assert_eq!(
            b.blocking(&n).map(|p| p.as_str()),
            Some("^docker\\.io/library/")
        );
        assert!(b.blocking_str("ubuntu:22.04").is_some());
        assert!(b.blocking_str("quay.io/ubuntu:22.04").is_none());
        // A pattern on the written form alone still matches.
        let b = list(&["^ubuntu:"]);
        assert!(b.blocking(&n).is_some());
    }
}
