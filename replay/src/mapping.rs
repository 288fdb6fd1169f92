//! Where each image goes: the destination repository is the prefix plus the image's
//! original repository path, flattened to `--max-components` the way `oc image mirror`
//! does for registries without nested repositories (Quay organisations, Harbor projects).

use std::fmt;

/// `[http://|https://]HOST[:PORT][/PREFIX]` as given to `--to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub registry: String,
    /// Path components under the registry, possibly empty.
    pub prefix: Vec<String>,
    /// The scheme, when `--to` named one (`http://` asks for plain HTTP, which push only
    /// uses with `--insecure`); `None` lets the registry client decide.
    pub scheme: Option<Scheme>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// `text` as it may be shown: user information before an `@` in the host part
/// (`user:password@host`) is replaced, since it may hold a password (issue 9 item 2).
pub fn shown_target(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), text),
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}<user information removed>{}", &rest[at..]),
        None => text.to_owned(),
    }
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, MappingError> {
        let shown = shown_target(text);
        let bad = |why: &str| {
            MappingError(format!("--to {shown:?}: {why} (expected [http://]HOST[:PORT][/PREFIX], e.g. registry.internal:8443/efk-mirror)"))
        };
        let t = text.trim().trim_end_matches('/');
        let (scheme, t) = if let Some(rest) = strip_prefix_ignore_case(t, "http://") {
            (Some(Scheme::Http), rest)
        } else if let Some(rest) = strip_prefix_ignore_case(t, "https://") {
            (Some(Scheme::Https), rest)
        } else if t.contains("://") {
            return Err(bad("only http:// and https:// registries exist"));
        } else {
            (None, t)
        };
        let mut parts = t.split('/');
        let registry = parts
            .next()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no registry host"))?;
        if registry.contains('@') {
            // Never repeated: what precedes `@` may be a password.
            return Err(bad(
                "the registry address holds user information (user:password@); never put a password on the command line: give credentials in an auth file (--authfile FILE, or `podman login` / `docker login`)",
            ));
        }
        if !registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(bad(
                "the registry host has characters a host name cannot have",
            ));
        }
        let prefix: Vec<String> = parts.map(str::to_owned).collect();
        for c in &prefix {
            if !valid_component(c) {
                return Err(bad(&format!("{c:?} is not a valid repository path component (lowercase letters, digits, '.', '_', '-')")));
            }
        }
        Ok(Target {
            registry: registry.to_owned(),
            prefix,
            scheme,
        })
    }

    /// The registry as the client is to be given it: `host[:port]`, with the scheme when
    /// `--to` named one.
    pub fn registry_address(&self) -> String {
        match self.scheme {
            Some(s) => format!("{}://{}", s.as_str(), self.registry),
            None => self.registry.clone(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.registry)?;
        for p in &self.prefix {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// An original reference split into its parts: `registry.redhat.io/openshift4/ose-x@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// `registry.redhat.io`; `docker.io` when the reference names none.
    pub registry: String,
    /// `openshift4/ose-x`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl SourceRef {
    pub fn parse(text: &str) -> SourceRef {
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => (r, Some(d.to_owned())),
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_owned())),
            None => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        SourceRef {
            registry,
            path,
            tag,
            digest,
        }
    }

    /// `registry/path`, the form mirror sets use as `source`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }
}

/// The destination repository (without the registry host) for a source path.
/// `max_components` 0 means unlimited; otherwise the first component is kept as the
/// namespace, components up to N−1 are kept, and the rest are joined with `-`
/// (`a/b/c/d` with 2 → `a/b-c-d`, as `oc image mirror --max-components`).
pub fn destination(
    target: &Target,
    source_path: &str,
    max_components: usize,
) -> Result<String, MappingError> {
    let mut parts: Vec<String> = target.prefix.clone();
    parts.extend(
        source_path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
    );
    if parts.is_empty() {
        return Err(MappingError(format!(
            "image {source_path:?} has an empty repository path"
        )));
    }
    if max_components == 1 {
        return Err(MappingError("--max-components 1 cannot name a repository under a namespace; use 0 (unlimited) or 2 and more".into()));
    }
    if max_components > 0 && parts.len() > max_components {
        let tail = parts.split_off(max_components - 1).join("-");
        parts.push(tail);
    }
    for p in &parts {
        if !valid_component(p) {
            return Err(MappingError(format!(
                "destination component {p:?} of {source_path:?} is not a valid repository name"
            )));
        }
    }
    let repo = parts.join("/");
    if target.registry.len() + 1 + repo.len() > 255 {
        return Err(MappingError(format!(
            "destination {}/{repo} is longer than 255 characters; use --max-components",
            target.registry
        )));
    }
    Ok(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("registry.internal:8443/efk-mirror").unwrap();
        assert_eq!(t.registry, "registry.internal:8443");
        assert_eq!(t.prefix, vec!["efk-mirror"]);
        assert_eq!(
            Target::parse("127.0.0.1:5000").unwrap().prefix,
            Vec::<String>::new()
        );
        let t = Target::parse("http://registry.lab:5000/mirror").unwrap();
        assert_eq!(t.scheme, Some(Scheme::Http));
        assert_eq!(t.registry, "registry.lab:5000");
        assert_eq!(t.to_string(), "registry.lab:5000/mirror");
        assert_eq!(t.registry_address(), "http://registry.lab:5000");
        assert_eq!(
            Target::parse("HTTPS://x").unwrap().registry_address(),
            "https://x"
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("/x").is_err());
        assert!(Target::parse("host/UPPER").is_err());
    }

    #[test]
    fn a_password_in_the_target_is_never_repeated() {
        for text in [
            "bob:hunter2@registry.internal:8443/efk",
            "http://bob:hunter2@registry.internal",
            "bob:hunter2@",
            "bob:hunter2@reg/UPPER",
            "b@b:hunter2@reg",
        ] {
            let e = Target::parse(text).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("--authfile"), "{e}");
        }
        assert_eq!(
            shown_target("http://a:pw@h:1/x@y"),
            "http://<user information removed>@h:1/x@y"
        );
        assert_eq!(shown_target("h/x@y"), "h/x@y");
    }

    #[test]
    fn source_refs() {
        let s =
            SourceRef::parse("registry.redhat.io/openshift4/ose-elasticsearch-proxy@sha256:abc");
        assert_eq!(s.registry, "registry.redhat.io");
        assert_eq!(s.path, "openshift4/ose-elasticsearch-proxy");
        assert_eq!(s.digest.as_deref(), Some("sha256:abc"));
        let s = SourceRef::parse("registry.example.com:5000/my-operator/my-operator-index:v1");
        assert_eq!(s.registry, "registry.example.com:5000");
        assert_eq!(s.tag.as_deref(), Some("v1"));
        assert_eq!(SourceRef::parse("library/busybox:1").registry, "docker.io");
    }

    #[test]
    fn flattening_like_oc() {
        let t = Target::parse("quay.internal/org").unwrap();
        assert_eq!(
            destination(&t, "openshift4/ose-x", 0).unwrap(),
            "org/openshift4/ose-x"
        );
        assert_eq!(
            destination(&t, "openshift4/ose-x", 2).unwrap(),
            "org/openshift4-ose-x"
        );
        assert_eq!(
            destination(&Target::parse("h").unwrap(), "a/b/c/d", 2).unwrap(),
            "a/b-c-d"
        );
        assert_eq!(
            destination(&Target::parse("h").unwrap(), "a/b/c/d", 3).unwrap(),
            "a/b/c-d"
        );
        assert!(destination(&t, "a/b", 1).is_err());
    }
}
