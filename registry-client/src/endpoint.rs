//! URLs: the registry's origin, `Location` headers (absolute or relative, often already
//! carrying a query), query values, and the form of a URL that may appear in errors.
//!
//! Only `http` and `https` URLs are handled; that is all the Distribution API and its
//! token realms use. Origins decide where credentials may go (RFC 6454 "same origin":
//! scheme, host and port).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Scheme, host (lowercase; IPv6 in brackets) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)://` URL; `None` for anything else, including
    /// URLs with user information (`user:pass@host`), which this client never follows.
    pub(crate) fn of_url(url: &str) -> Option<Origin> {
        let (scheme, rest) = split_scheme(url)?;
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        Origin::from_authority(scheme, authority)
    }

    /// Parses `host[:port]` (`[v6]:port` for IPv6).
    pub(crate) fn from_authority(scheme: Scheme, authority: &str) -> Option<Origin> {
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']')?;
            let host = &authority[..end + 2];
            match &v6[end + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let valid_host = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
            });
        if !valid_host {
            return None;
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u16>().ok().filter(|&p| p != 0)?
            }
            Some(_) => return None,
        };
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether the host is a loopback name or address.
    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "[::1]"
            || self
                .host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `scheme://host[:port]`, the port left out when it is the scheme's default.
    pub(crate) fn base(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

fn split_scheme(url: &str) -> Option<(Scheme, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return None;
    };
    Some((scheme, rest))
}

/// Resolves a `Location` header against the URL of the request that returned it
/// (RFC 9110 section 10.2.2 allows relative references; distribution-spec "Pushing a blob
/// monolithically" notes they occur). `None` when the result is not an http(s) URL.
pub(crate) fn join_location(request_url: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.is_empty() || location.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return None;
    }
    let absolute = if split_scheme(location).is_some() {
        location.to_owned()
    } else if location.contains("://") {
        return None;
    } else {
        let origin = Origin::of_url(request_url)?;
        if let Some(rest) = location.strip_prefix("//") {
            format!("{}://{rest}", origin.scheme.as_str())
        } else if location.starts_with('/') {
            format!("{origin}{location}")
        } else {
            // A path relative to the request's directory, or only a query.
            let (_, after_scheme) = split_scheme(request_url)?;
            let path_start = after_scheme
                .find('/')
                .map(|i| i + request_url.len() - after_scheme.len());
            let path_and_query = path_start.map_or("/", |i| &request_url[i..]);
            let path = &path_and_query[..path_and_query
                .find(['?', '#'])
                .unwrap_or(path_and_query.len())];
            if location.starts_with('?') {
                format!("{origin}{path}{location}")
            } else {
                let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
                format!("{origin}{dir}{location}")
            }
        }
    };
    Origin::of_url(&absolute)?;
    // A fragment is never sent.
    Some(match absolute.find('#') {
        Some(i) => absolute[..i].to_owned(),
        None => absolute,
    })
}

/// Adds `key=value` to a URL that may already carry a query (upload `Location`s carry
/// `_state`). `value` is percent-encoded here.
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", encode_query_value(value))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Query parameters of the Distribution API whose values are shown whole in errors.
const SHOWN_WHOLE: &[&str] = &["digest", "mount", "from", "scope", "service", "n", "last"];

/// The form of a URL shown in errors: user information dropped, and other query values
/// longer than 24 characters cut (upload `_state` blobs, presigned-URL signatures).
pub(crate) fn display_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return url.chars().take(300).collect(),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = &rest[authority_end..];
    let tail = &tail[..tail.find('#').unwrap_or(tail.len())];
    let mut out = format!("{scheme}://{host}");
    match tail.split_once('?') {
        None => out.push_str(tail),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((k, v)) if v.chars().count() > 24 && !SHOWN_WHOLE.contains(&k) => {
                        let cut: String = v.chars().take(12).collect();
                        out.push_str(&format!("{k}={cut}…"));
                    }
                    _ => out.push_str(pair),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = Origin::of_url("https://Quay.Example:443/v2/").unwrap();
        assert_eq!(o.host, "quay.example");
        assert_eq!(o.port, 443);
        assert_eq!(o.base(), "https://quay.example");
        assert_eq!(
            Origin::of_url("http://127.0.0.1:5000?x").unwrap().base(),
            "http://127.0.0.1:5000"
        );
        let v6 = Origin::of_url("http://[::1]:5000/v2/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", 5000));
        assert!(v6.is_loopback());
        assert!(Origin::of_url("http://127.3.2.1/").unwrap().is_loopback());
        assert!(!Origin::of_url("http://10.0.0.1/").unwrap().is_loopback());
        for bad in [
            "ftp://x/",
            "https://user:pw@host/",
            "https:///v2/",
            "https://host:99999/",
            "https://host:0/",
            "https://host:x/",
            "https://ho st/",
            "host:5000",
        ] {
            assert_eq!(Origin::of_url(bad), None, "{bad}");
        }
        assert_ne!(
            Origin::of_url("http://127.0.0.1:5000/"),
            Origin::of_url("http://127.0.0.1:5001/")
        );
    }

    #[test]
    fn location_joining() {
        let req = "https://r.example:5000/v2/a/b/blobs/uploads/";
        // distribution 2.8.2 answers with an absolute URL carrying `_state`.
        assert_eq!(
            join_location(
                req,
                "https://r.example:5000/v2/a/b/blobs/uploads/u1?_state=xyz"
            )
            .unwrap(),
            "https://r.example:5000/v2/a/b/blobs/uploads/u1?_state=xyz"
        );
        // Relative forms some registries send.
        assert_eq!(
            join_location(req, "/v2/a/b/blobs/uploads/u1?_state=xyz").unwrap(),
            "https://r.example:5000/v2/a/b/blobs/uploads/u1?_state=xyz"
        );
        assert_eq!(
            join_location(req, "u2?s=1").unwrap(),
            "https://r.example:5000/v2/a/b/blobs/uploads/u2?s=1"
        );
        assert_eq!(
            join_location("https://r.example/v2/a/blobs/uploads/u1?old=1", "?new=2").unwrap(),
            "https://r.example/v2/a/blobs/uploads/u1?new=2"
        );
        assert_eq!(
            join_location(req, "//other.example/up").unwrap(),
            "https://other.example/up"
        );
        assert_eq!(
            join_location(req, "/up#frag").unwrap(),
            "https://r.example:5000/up"
        );
        assert_eq!(join_location(req, "ftp://x/y"), None);
        assert_eq!(join_location(req, "https://u:p@x/y"), None);
        assert_eq!(join_location(req, ""), None);
        assert_eq!(join_location(req, "/a\r\nInjected: 1"), None);
    }

    #[test]
    fn queries() {
        let digest = "sha256:abc";
        assert_eq!(
            with_query("http://h/v2/r/blobs/uploads/u?_state=s", "digest", digest),
            "http://h/v2/r/blobs/uploads/u?_state=s&digest=sha256%3Aabc"
        );
        assert_eq!(
            with_query("http://h/u", "digest", digest),
            "http://h/u?digest=sha256%3Aabc"
        );
        assert_eq!(
            encode_query_value("repository:ns/a:pull,push"),
            "repository%3Ans%2Fa%3Apull%2Cpush"
        );
        assert_eq!(encode_query_value("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn urls_in_errors_lose_credentials_and_long_state() {
        let shown = display_url(
            "https://bob:hunter2@r.example/v2/x/blobs/uploads/u?_state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&digest=sha256%3A1234567890123456789012345678901234567890",
        );
        assert_eq!(
            shown,
            "https://r.example/v2/x/blobs/uploads/u?_state=AAAAAAAAAAAA…&digest=sha256%3A1234567890123456789012345678901234567890"
        );
        assert!(!shown.contains("hunter2"));
    }
}
