//! Image references as mirrors record them: `[host/]path[:tag][@sha256:<hex>]`.
//!
//! Only the splitting mirrors need; validation of repository names is the registry's job.

/// A reference split into its parts. Nothing is normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The registry host (`quay.io`, `localhost:5000`), when the first component looks like one.
    pub host: Option<&'a str>,
    /// The repository path without the host.
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Whether a first path component names a registry rather than a namespace: it contains
/// `.` or `:`, or is `localhost` (distribution `reference` and openshift/library-go agree).
pub fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// Splits `name[:tag]` at the last `:` that follows the last `/`.
pub fn split_tag(name: &str) -> (&str, Option<&str>) {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    }
}

impl<'a> Reference<'a> {
    pub fn parse(s: &'a str) -> Reference<'a> {
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        let (name, tag) = split_tag(name);
        let (host, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (Some(first), rest),
            _ => (None, name),
        };
        Reference {
            host,
            path,
            tag,
            digest,
        }
    }
}

/// The fully qualified form of a source reference: kept verbatim when it names its registry,
/// otherwise qualified the way docker does (`busybox:1` → `docker.io/library/busybox:1`).
pub fn qualify_source(s: &str) -> String {
    let r = Reference::parse(s);
    if r.host.is_some() {
        return s.to_string();
    }
    if r.path.contains('/') {
        format!("docker.io/{s}")
    } else {
        format!("docker.io/library/{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_references() {
        let r = Reference::parse("registry.redhat.io/openshift4/ose-cli:v4.14");
        assert_eq!(r.host, Some("registry.redhat.io"));
        assert_eq!(r.path, "openshift4/ose-cli");
        assert_eq!(r.tag, Some("v4.14"));
        assert_eq!(r.digest, None);

        let r = Reference::parse("localhost:5000/a/b@sha256:abc");
        assert_eq!(
            (r.host, r.path, r.tag, r.digest),
            (Some("localhost:5000"), "a/b", None, Some("sha256:abc"))
        );

        let r = Reference::parse("ns/name");
        assert_eq!((r.host, r.path, r.tag), (None, "ns/name", None));

        let r = Reference::parse("localhost/x:1");
        assert_eq!((r.host, r.path, r.tag), (Some("localhost"), "x", Some("1")));

        // A lone host-looking name without a path is a repository.
        let r = Reference::parse("example.com");
        assert_eq!((r.host, r.path), (None, "example.com"));
    }

    #[test]
    fn tag_split_ignores_port() {
        assert_eq!(split_tag("host:5000/repo"), ("host:5000/repo", None));
        assert_eq!(split_tag("host:5000/repo:t"), ("host:5000/repo", Some("t")));
    }

    #[test]
    fn qualifies_sources() {
        assert_eq!(qualify_source("quay.io/a/b:1"), "quay.io/a/b:1");
        assert_eq!(qualify_source("busybox:1"), "docker.io/library/busybox:1");
        assert_eq!(qualify_source("a/b@sha256:x"), "docker.io/a/b@sha256:x");
    }
}
