//! Where each image goes: the destination repository is the prefix plus the image's
//! original repository path, flattened to `--max-components` the way `oc image mirror`
//! does for registries without nested repositories (Quay organisations, Harbor projects).
//!
//! Hosts, path components and original references are checked with oci's grammar (the
//! distribution spec's), so a name no registry takes (`ab-`, `a..b`) is refused here,
//! before anything is sent. Original references are split as written, never normalised:
//! `busybox` goes to `PREFIX/busybox`, as it always did.

use std::fmt;

use oci::name::{check_host, check_path_component};
use oci::reference::DOCKER_HUB;
use oci::{Digest, Written};

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
/// (`user:password@host`) is replaced, since it may hold a password.
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
        // A host by its place in `--to`, so a name without `.` or `:port` (`h`) is one too.
        if let Err(e) = check_host(registry) {
            return Err(bad(&format!(
                "the registry host is not valid: {} (at byte {})",
                e.problem, e.at
            )));
        }
        let prefix: Vec<String> = parts.map(str::to_owned).collect();
        for c in &prefix {
            if let Err(e) = check_path_component(c) {
                return Err(bad(&format!(
                    "{c:?} is not a valid repository path component: {}",
                    e.problem
                )));
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

/// An original reference split into its parts: `registry.redhat.io/openshift4/ose-x@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// `registry.redhat.io`; `docker.io` when the reference names none.
    pub registry: String,
    /// `openshift4/ose-x`, as written: `busybox` stays `busybox` (no `library/`), so
    /// destinations and mirror-set sources are what they always were.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl SourceRef {
    /// Splits and checks an original reference with oci's parser, without normalising it
    /// (see [`SourceRef::path`]).
    pub fn parse(text: &str) -> Result<SourceRef, MappingError> {
        let w = Written::parse(text)
            .map_err(|e| MappingError(format!("original reference {text:?}: {e}")))?;
        Ok(SourceRef {
            registry: w.host.unwrap_or(DOCKER_HUB).to_owned(),
            path: w.path.to_owned(),
            tag: w.tag.map(str::to_owned),
            digest: w.digest,
        })
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
        if let Err(e) = check_path_component(p) {
            return Err(MappingError(format!(
                "destination component {p:?} of {source_path:?} is not a valid repository name: {}",
                e.problem
            )));
        }
    }
    let repo = parts.join("/");
    // replay's own rule, stricter than distribution's (since distribution/reference v0.6.0
    // its 255 counts the path alone, which oci checks): containers/image, which the
    // cluster's CRI-O pulls with, keeps a fork of the older parser (`docker/reference`
    // `Parse`) that caps the whole `host/path` at 255, so a longer destination could be
    // pushed and then never pulled.
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
        let d = Digest::of(b"x");
        let s = SourceRef::parse(&format!(
            "registry.redhat.io/openshift4/ose-elasticsearch-proxy@{d}"
        ))
        .unwrap();
        assert_eq!(s.registry, "registry.redhat.io");
        assert_eq!(s.path, "openshift4/ose-elasticsearch-proxy");
        assert_eq!(s.digest, Some(d));
        let s =
            SourceRef::parse("registry.example.com:5000/my-operator/my-operator-index:v1").unwrap();
        assert_eq!(s.registry, "registry.example.com:5000");
        assert_eq!(s.tag.as_deref(), Some("v1"));
        assert_eq!(
            SourceRef::parse("library/busybox:1").unwrap().registry,
            "docker.io"
        );
        // Split as written, never normalised: the destination and the mirror-set source
        // are what they were before references were oci's.
        for (text, repository) in [
            ("busybox", "docker.io/busybox"),
            ("busybox:1", "docker.io/busybox"),
            ("docker.io/busybox", "docker.io/busybox"),
            ("index.docker.io/x/y", "index.docker.io/x/y"),
            ("localhost:5000/a", "localhost:5000/a"),
        ] {
            assert_eq!(
                SourceRef::parse(text).unwrap().repository(),
                repository,
                "{text}"
            );
        }
        let t = Target::parse("quay.internal/org").unwrap();
        let path = SourceRef::parse("busybox:1").unwrap().path;
        assert_eq!(destination(&t, &path, 0).unwrap(), "org/busybox");
        // What a registry refuses is refused here, with the reason.
        for bad in [
            "registry.redhat.io/x@sha256:abc",
            "quay.io/a@sha512:00",
            "quay.io/ns/ab-:1",
            "quay.io/a:",
        ] {
            let e = SourceRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains("original reference") && e.contains(bad), "{e}");
        }
        assert!(SourceRef::parse("quay.io/a@sha512:00")
            .unwrap_err()
            .to_string()
            .contains("sha512 digests are not supported"));
    }

    /// Replay's own component check took `ab-`, which the distribution grammar
    /// (and format-spec's M10) refuses; a registry would refuse the push. Now one grammar.
    #[test]
    fn components_follow_the_distribution_grammar() {
        for bad in ["ab-", "a..b", "a___b", "a.-b", "_a", "a_"] {
            assert!(Target::parse(&format!("h/{bad}")).is_err(), "--to h/{bad}");
            let e = destination(&Target::parse("h").unwrap(), &format!("org/{bad}"), 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        let e = Target::parse("h/ab-").unwrap_err().to_string();
        assert!(
            e.contains("\"ab-\" is not a valid repository path component")
                && e.contains("ends with '-'"),
            "{e}"
        );
        for ok in ["efk-mirror", "a__b", "a--b", "a.b_c"] {
            assert_eq!(Target::parse(&format!("h/{ok}")).unwrap().prefix, [ok]);
        }
        // Hosts by the host grammar (replay took any of `[A-Za-z0-9-.:[]]`).
        for bad in ["a..b", "-a", "a:b:c", "[zz]", "h:0", "h:99999"] {
            assert!(Target::parse(bad).is_err(), "--to {bad}");
        }
        for ok in [
            "h",
            "127.0.0.1:5000",
            "[::1]:5000",
            "Registry.Internal:8443",
        ] {
            assert_eq!(Target::parse(ok).unwrap().registry, ok);
        }
    }

    /// replay's own rule beyond the distribution grammar: `host/path` at most 255
    /// characters, for containers/image (see `destination`).
    #[test]
    fn host_and_path_together_fit_in_255() {
        let host = format!("{}.example", "h".repeat(200));
        let t = Target::parse(&host).unwrap();
        let path = "a".repeat(255 - host.len() - 1);
        assert!(destination(&t, &path, 0).is_ok());
        let e = destination(&t, &format!("{path}a"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 255 characters"), "{e}");
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
