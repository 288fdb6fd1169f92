//! The names of the distribution spec: repository paths, tags, and the registry host in
//! front of them.
//!
//! - Repository path (distribution-spec `spec.md` "Pulling manifests", `<name>`):
//!   `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most
//!   255 characters — distribution's `reference.RepositoryNameTotalLengthMax`, which since
//!   distribution/reference v0.6.0 counts the path only, not the host in front of it.
//! - Tag (same section): `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
//! - Host (distribution/reference `regexp.go`, `domainAndPort`): DNS-style labels
//!   `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`, or an IPv6 address in
//!   brackets (no zone, no embedded IPv4), then an optional `:port`.
//!
//! Checking happens by hand, not with a regular expression, so that an error can say which
//! byte breaks which rule.

use std::fmt;

use crate::digest::quoted;

/// Longest repository path (distribution/reference `RepositoryNameTotalLengthMax`).
pub const REPOSITORY_MAX: usize = 255;
/// Longest tag (distribution-spec "Pulling manifests").
pub const TAG_MAX: usize = 128;

/// The rules, as quoted in messages that tell a user what to write instead.
pub const REPOSITORY_RULE: &str = "lowercase letters and digits, joined inside a path component by `.`, `_`, `__` or a run of `-`; components separated by `/`; at most 255 characters";
pub const TAG_RULE: &str =
    "a letter, digit or `_`, then up to 127 letters, digits, `_`, `.` or `-`";
pub const HOST_RULE: &str = "a host name (letters, digits and `-`, labels joined by `.`) or an IPv6 address in brackets, then an optional `:port`";

/// Which kind of name an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Repository,
    Tag,
    Host,
}

impl NameKind {
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Repository => REPOSITORY_RULE,
            NameKind::Tag => TAG_RULE,
            NameKind::Host => HOST_RULE,
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Repository => "repository name",
            NameKind::Tag => "tag",
            NameKind::Host => "registry host",
        })
    }
}

/// What is wrong with a name; where it is wrong is said by the error that carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("the repository path is empty")]
    EmptyRepository,
    #[error("the repository path has {len} characters, more than the {REPOSITORY_MAX} allowed")]
    RepositoryTooLong { len: usize },
    #[error("{found:?} is uppercase, and repository paths are lowercase")]
    Uppercase { found: char },
    #[error("a path component is empty (a `/` at an end, or two in a row)")]
    EmptyComponent,
    #[error("a path component starts or ends with {found:?}; it must start and end with a lowercase letter or digit")]
    ComponentEdge { found: char },
    #[error("{separator:?} cannot join two parts of a path component; only `.`, `_`, `__` or a run of `-` can")]
    BadSeparator { separator: String },
    #[error("{found:?} cannot appear in a repository path")]
    RepositoryChar { found: char },
    #[error("the tag is empty")]
    EmptyTag,
    #[error("the tag has {len} characters, more than the {TAG_MAX} allowed")]
    TagTooLong { len: usize },
    #[error("a tag cannot start with {found:?}")]
    TagStart { found: char },
    #[error("{found:?} cannot appear in a tag")]
    TagChar { found: char },
    #[error("the registry host is empty")]
    EmptyHost,
    #[error("a label of the host name is empty (a `.` at an end, or two in a row)")]
    EmptyHostLabel,
    #[error("a label of the host name starts or ends with `-`")]
    HostLabelEdge,
    #[error("{found:?} cannot appear in a host name")]
    HostChar { found: char },
    #[error("the port is empty")]
    EmptyPort,
    #[error("{found:?} cannot appear in a port, which is decimal digits")]
    PortChar { found: char },
    #[error("port {port} is outside 1-65535")]
    PortRange { port: String },
    #[error("the IPv6 address has no closing `]`")]
    Ipv6Unclosed,
    #[error("{found:?} cannot appear in an IPv6 address in brackets (hex digits and `:` only: no zone, no embedded IPv4)")]
    Ipv6Char { found: char },
    #[error("{address:?} is not an IPv6 address")]
    Ipv6Invalid { address: String },
    #[error("{found:?} follows the IPv6 address; only `:port` can")]
    AfterIpv6 { found: char },
}

/// A name that breaks its grammar: what kind of name, the name, the byte where it breaks,
/// and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name:?} is not valid: {problem} (at byte {at}; expected {})", .kind.rule())]
pub struct NameError {
    pub kind: NameKind,
    pub name: String,
    pub at: usize,
    pub problem: Problem,
}

fn name_error(kind: NameKind, name: &str, (at, problem): (usize, Problem)) -> NameError {
    NameError {
        kind,
        name: quoted(name),
        at,
        problem,
    }
}

/// The character at byte `at` (a boundary: the scanners stop at the first non-ASCII byte).
fn char_at(text: &str, at: usize) -> char {
    text.get(at..)
        .and_then(|t| t.chars().next())
        .unwrap_or('\0')
}

/// Checks a repository path (`library/busybox`, without host, tag or digest).
pub fn check_repository(path: &str) -> Result<(), NameError> {
    match repository_problem(path) {
        None => Ok(()),
        Some(p) => Err(name_error(NameKind::Repository, path, p)),
    }
}

/// Checks one component of a repository path (no `/`).
pub fn check_path_component(component: &str) -> Result<(), NameError> {
    let found = component_problem(component, 0).or_else(|| {
        component
            .find('/')
            .map(|at| (at, Problem::RepositoryChar { found: '/' }))
    });
    match found {
        None => Ok(()),
        Some(p) => Err(name_error(NameKind::Repository, component, p)),
    }
}

/// Checks a tag.
pub fn check_tag(tag: &str) -> Result<(), NameError> {
    match tag_problem(tag) {
        None => Ok(()),
        Some(p) => Err(name_error(NameKind::Tag, tag, p)),
    }
}

/// Checks a registry host with its optional port (`quay.io`, `localhost:5000`, `[::1]:5000`).
pub fn check_host(host: &str) -> Result<(), NameError> {
    match host_problem(host) {
        None => Ok(()),
        Some(p) => Err(name_error(NameKind::Host, host, p)),
    }
}

pub fn is_repository(path: &str) -> bool {
    repository_problem(path).is_none()
}

pub fn is_tag(tag: &str) -> bool {
    tag_problem(tag).is_none()
}

pub fn is_host(host: &str) -> bool {
    host_problem(host).is_none()
}

/// Whether the first `/`-separated component of a reference names a registry rather than
/// the first part of a repository path: `localhost`, anything with a `.` or `:`, or
/// anything with an uppercase letter (repository paths have none) — distribution/reference
/// `normalize.go: splitDockerDomain`.
pub fn marks_host(component: &str) -> bool {
    component == "localhost"
        || component.contains(['.', ':'])
        || component.bytes().any(|b| b.is_ascii_uppercase())
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// The first problem in `path` and its byte offset, or `None`.
pub(crate) fn repository_problem(path: &str) -> Option<(usize, Problem)> {
    if path.is_empty() {
        return Some((0, Problem::EmptyRepository));
    }
    let mut start = 0;
    for component in path.split('/') {
        if let Some(p) = component_problem(component, start) {
            return Some(p);
        }
        start += component.len() + 1;
    }
    // Grammar before length, as distribution's Parse: the length error is then the only one.
    if path.len() > REPOSITORY_MAX {
        return Some((
            REPOSITORY_MAX,
            Problem::RepositoryTooLong { len: path.len() },
        ));
    }
    None
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, for a component starting at byte `base` of its path.
fn component_problem(c: &str, base: usize) -> Option<(usize, Problem)> {
    let b = c.as_bytes();
    let other = |i: usize| {
        let found = char_at(c, i);
        let problem = if found.is_ascii_uppercase() {
            Problem::Uppercase { found }
        } else {
            Problem::RepositoryChar { found }
        };
        Some((base + i, problem))
    };
    if b.is_empty() {
        return Some((base, Problem::EmptyComponent));
    }
    let is_separator = |x: u8| matches!(x, b'.' | b'_' | b'-');
    if is_separator(b[0]) {
        return Some((
            base,
            Problem::ComponentEdge {
                found: b[0] as char,
            },
        ));
    }
    let mut i = 0;
    while i < b.len() {
        if lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        if !is_separator(b[i]) {
            return other(i);
        }
        let run = i;
        while i < b.len() && is_separator(b[i]) {
            i += 1;
        }
        let separator = &c[run..i];
        if i == b.len() {
            return Some((
                base + run,
                Problem::ComponentEdge {
                    found: b[i - 1] as char,
                },
            ));
        }
        let allowed = matches!(separator, "." | "_" | "__") || separator.bytes().all(|x| x == b'-');
        if !allowed {
            return Some((
                base + run,
                Problem::BadSeparator {
                    separator: separator.to_owned(),
                },
            ));
        }
    }
    None
}

pub(crate) fn tag_problem(tag: &str) -> Option<(usize, Problem)> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let Some(&first) = b.first() else {
        return Some((0, Problem::EmptyTag));
    };
    if !word(first) {
        return Some((
            0,
            Problem::TagStart {
                found: char_at(tag, 0),
            },
        ));
    }
    if let Some(i) = b.iter().position(|&x| !(word(x) || x == b'.' || x == b'-')) {
        return Some((
            i,
            Problem::TagChar {
                found: char_at(tag, i),
            },
        ));
    }
    if b.len() > TAG_MAX {
        return Some((TAG_MAX, Problem::TagTooLong { len: b.len() }));
    }
    None
}

pub(crate) fn host_problem(host: &str) -> Option<(usize, Problem)> {
    if host.is_empty() {
        return Some((0, Problem::EmptyHost));
    }
    let port_at = if let Some(inside) = host.strip_prefix('[') {
        let Some(close) = inside.find(']') else {
            return Some((host.len(), Problem::Ipv6Unclosed));
        };
        let address = &inside[..close];
        if let Some(i) = address
            .bytes()
            .position(|x| !(x.is_ascii_hexdigit() || x == b':'))
        {
            return Some((
                1 + i,
                Problem::Ipv6Char {
                    found: char_at(address, i),
                },
            ));
        }
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Some((
                1,
                Problem::Ipv6Invalid {
                    address: address.to_owned(),
                },
            ));
        }
        let after = close + 2;
        match host.as_bytes().get(after) {
            None => return None,
            Some(b':') => after,
            Some(_) => {
                return Some((
                    after,
                    Problem::AfterIpv6 {
                        found: char_at(host, after),
                    },
                ))
            }
        }
    } else {
        let name_end = host.find(':').unwrap_or(host.len());
        if let Some(p) = domain_name_problem(&host[..name_end]) {
            return Some(p);
        }
        if name_end == host.len() {
            return None;
        }
        name_end
    };
    port_problem(&host[port_at + 1..], port_at + 1)
}

/// `domain-component ('.' domain-component)*`.
fn domain_name_problem(name: &str) -> Option<(usize, Problem)> {
    let mut start = 0;
    for label in name.split('.') {
        let b = label.as_bytes();
        if b.is_empty() {
            return Some((start, Problem::EmptyHostLabel));
        }
        if let Some(i) = b
            .iter()
            .position(|&x| !(x.is_ascii_alphanumeric() || x == b'-'))
        {
            return Some((
                start + i,
                Problem::HostChar {
                    found: char_at(label, i),
                },
            ));
        }
        if b[0] == b'-' {
            return Some((start, Problem::HostLabelEdge));
        }
        if b[b.len() - 1] == b'-' {
            return Some((start + b.len() - 1, Problem::HostLabelEdge));
        }
        start += label.len() + 1;
    }
    None
}

/// Decimal digits naming a TCP port. distribution's regular expression takes any digits
/// and leaves the range to a later URL check; here the range is checked at once, so a
/// typo never reaches a connection attempt.
fn port_problem(port: &str, base: usize) -> Option<(usize, Problem)> {
    if port.is_empty() {
        return Some((base, Problem::EmptyPort));
    }
    if let Some(i) = port.bytes().position(|x| !x.is_ascii_digit()) {
        return Some((
            base + i,
            Problem::PortChar {
                found: char_at(port, i),
            },
        ));
    }
    let in_range = port.len() <= 5 && matches!(port.parse::<u32>(), Ok(1..=65535));
    if !in_range {
        return Some((base, Problem::PortRange { port: quoted(port) }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_and_where() {
        let e = check_repository("ab-").unwrap_err();
        assert_eq!(e.at, 2);
        assert_eq!(e.problem, Problem::ComponentEdge { found: '-' });
        let text = e.to_string();
        assert!(
            text.contains("\"ab-\"") && text.contains("at byte 2"),
            "{text}"
        );

        let e = check_repository("ns/a___b").unwrap_err();
        assert_eq!(
            (e.at, e.problem),
            (
                4,
                Problem::BadSeparator {
                    separator: "___".into()
                }
            )
        );
        let e = check_repository("ns/Busybox").unwrap_err();
        assert_eq!((e.at, e.problem), (3, Problem::Uppercase { found: 'B' }));
        let e = check_repository(&"a".repeat(256)).unwrap_err();
        assert_eq!(e.problem, Problem::RepositoryTooLong { len: 256 });
        let e = check_repository("a//b").unwrap_err();
        assert_eq!((e.at, e.problem), (2, Problem::EmptyComponent));
        let e = check_repository("a/ü").unwrap_err();
        assert_eq!(
            (e.at, e.problem),
            (2, Problem::RepositoryChar { found: 'ü' })
        );

        let e = check_tag(".hidden").unwrap_err();
        assert_eq!((e.at, e.problem), (0, Problem::TagStart { found: '.' }));
        let e = check_tag("v1/2").unwrap_err();
        assert_eq!((e.at, e.problem), (2, Problem::TagChar { found: '/' }));
        assert_eq!(check_tag("").unwrap_err().problem, Problem::EmptyTag);

        let e = check_host("registry.internal:80a").unwrap_err();
        assert_eq!((e.at, e.problem), (20, Problem::PortChar { found: 'a' }));
        let e = check_host("[::1]5000").unwrap_err();
        assert_eq!((e.at, e.problem), (5, Problem::AfterIpv6 { found: '5' }));
        assert!(check_host("quay.io:99999")
            .unwrap_err()
            .to_string()
            .contains("outside 1-65535"));
    }

    #[test]
    fn path_components() {
        assert!(check_path_component("efk-mirror").is_ok());
        assert!(check_path_component("a/b").is_err());
        assert!(check_path_component("ab-").is_err());
        assert!(check_path_component("").is_err());
    }

    #[test]
    fn host_markers() {
        for host in ["localhost", "quay.io", "host:5000", "[::1]:5000", "Foo"] {
            assert!(marks_host(host), "{host}");
        }
        for path in ["library", "ns", "a-b", "localhostx"] {
            assert!(!marks_host(path), "{path}");
        }
    }
}
