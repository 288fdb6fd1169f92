//! A minimal image reference check: `[host[:port]/]path[:tag][@sha256:<64 hex>]`, with
//! Docker Hub's defaults (`ubuntu` is `docker.io/library/ubuntu`), as distribution's
//! `reference` grammar has it (containers/image `docker/reference/regexp.go`).
// replaced by oci::Reference when that crate lands

use std::fmt;

/// Docker Hub's canonical host name (what `ubuntu` is short for).
pub const DOCKER_HUB: &str = "docker.io";
/// distribution caps a name (`host/path`) at 255 characters.
const MAX_NAME: usize = 255;

/// A parsed, checked reference. `Display` gives the canonical form
/// (`docker.io/library/ubuntu:22.04`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `host[:port]`, `docker.io` when the reference names none.
    pub registry: String,
    /// The repository path (`library/ubuntu`, `ubi8/ubi`).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 lowercase hex>`.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference; `None` of tag and digest is allowed here (the caller decides
    /// whether it needs one).
    pub fn parse(s: &str) -> Result<Reference, String> {
        if s.is_empty() {
            return Err("empty reference".into());
        }
        if s.trim() != s {
            return Err("leading or trailing white space".into());
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(parse_digest(d)?)),
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (
                    &name_tag[..at],
                    Some(check_tag(&name_tag[at + 1..])?.to_string()),
                )
            }
            None => (name_tag, None),
        };
        if name.len() > MAX_NAME {
            return Err(format!("the name is longer than {MAX_NAME} characters"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (check_host(first)?, rest),
            _ => (DOCKER_HUB.to_string(), name),
        };
        check_path(path)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `host/repository`, without tag or digest: what registries.conf prefixes match.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// distribution's rule: the first component is a host when it has a `.` or a `:`, or is
/// `localhost`.
fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn check_host(host: &str) -> Result<String, String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || !name.split('.').all(label_ok) {
        return Err(format!("{host:?} is not a registry host name"));
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(format!("{host:?} has a bad port"));
        }
    }
    Ok(host.to_string())
}

/// `path-component := [a-z0-9]+ (separator [a-z0-9]+)*`, `separator := [._] | __ | -+`.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty repository name".into());
    }
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err("empty path component (`//` or a trailing `/`)".into());
        }
        if comp.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("{comp:?}: repository names must be lowercase"));
        }
        if !path_component_ok(comp) {
            return Err(format!(
                "{comp:?} is not a repository path component \
                 (lowercase letters and digits, separated by `.`, `_`, `__` or dashes)"
            ));
        }
    }
    Ok(())
}

fn path_component_ok(comp: &str) -> bool {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let s = &comp[sep..i];
        if !(s == "." || s == "_" || s == "__" || s.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
}

/// `tag := [\w][\w.-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> Result<&str, String> {
    if tag.is_empty() {
        return Err("empty tag".into());
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    if tag.len() > 128 || !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(format!(
            "tag {tag:?} is not a tag (letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`)"
        ));
    }
    Ok(tag)
}

fn parse_digest(d: &str) -> Result<String, String> {
    let hex = d.strip_prefix("sha256:").ok_or_else(|| {
        format!("digest {d:?} is not sha256:<64 hex digits> (the only algorithm registries use)")
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "digest {d:?} is not sha256:<64 lowercase hex digits>"
        ));
    }
    Ok(d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:61b8f5e1a3b5dbd9e2c35fd448dc5106337d7a299873dd3a6f0cd8d4891ecc27";

    #[test]
    fn docker_hub_defaults() {
        let r = Reference::parse("ubuntu:22.04").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:22.04");
        let r = Reference::parse("bitnami/redis").unwrap();
        assert_eq!(r.to_string(), "docker.io/bitnami/redis");
        assert_eq!(r.tag, None);
        // A first component without `.`/`:` is a namespace, not a host.
        let r = Reference::parse("myhost/repo:1").unwrap();
        assert_eq!(r.registry, "docker.io");
    }

    #[test]
    fn hosts_ports_tags_digests() {
        let r = Reference::parse("localhost:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let s = format!("quay.io/openshifttest/hello-openshift@{D}");
        let r = Reference::parse(&s).unwrap();
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.to_string(), s);
        let s = format!("registry.redhat.io/ubi8/ubi:8.9@{D}");
        let r = Reference::parse(&s).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("8.9"), Some(D))
        );
        assert_eq!(r.name(), "registry.redhat.io/ubi8/ubi");
    }

    #[test]
    fn malformed() {
        for (s, why) in [
            ("registry.redhat.io/ubi8:", "empty tag"),
            ("registry.redhat.io/UBI8:1", "lowercase"),
            ("registry.redhat.io//ubi8:1", "empty path component"),
            ("registry.redhat.io/ubi8@sha256:abc", "64 lowercase hex"),
            ("registry.redhat.io/ubi8@md5:abc", "sha256"),
            ("registry.redhat.io:99999/ubi8:1", "bad port"),
            ("-bad.io/x:1", "not a registry host"),
            ("a/b:-x", "is not a tag"),
            ("a/b-:1", "not a repository path component"),
            ("", "empty reference"),
            (" a:1", "white space"),
        ] {
            let e = Reference::parse(s).unwrap_err();
            assert!(e.contains(why), "{s:?}: {e}");
        }
    }
}
