//! `WWW-Authenticate` challenges (RFC 9110 section 11.6.1; distribution
//! `docs/spec/auth/token.md` "How to authenticate").
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! One header may hold several challenges separated by commas, and quoted values may
//! hold commas themselves (`scope="repository:a:pull,push"`).

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// Lowercase: schemes are case-insensitive.
    pub(crate) scheme: String,
    /// Parameter names lowercase, values unquoted.
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parses every challenge in one header value. Malformed parts end the parse: what was
/// read before them is kept, since a registry error is better shown than hidden behind
/// a parse error.
pub(crate) fn parse(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> Option<String> {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        (*i > start).then(|| header[start..*i].to_owned())
    };
    loop {
        // Separators between items: whitespace and commas.
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let Some(name) = token(&mut i) else { break };
        let after_name = i;
        skip_ws(&mut i);
        if i < b.len() && b[i] == b'=' {
            // `name=`: an auth-param of the current challenge, or token68 padding.
            i += 1;
            skip_ws(&mut i);
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                let mut closed = false;
                while i < b.len() {
                    match b[i] {
                        b'\\' if i + 1 < b.len() => {
                            v.push(header[i + 1..].chars().next().unwrap_or('\\'));
                            i += 1 + header[i + 1..].chars().next().map_or(1, char::len_utf8);
                        }
                        b'"' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        _ => {
                            let c = header[i..].chars().next().unwrap_or('\u{fffd}');
                            v.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                if !closed {
                    break;
                }
                Some(v)
            } else {
                token(&mut i)
            };
            match (value, out.last_mut()) {
                (Some(v), Some(ch)) => ch.params.push((name.to_ascii_lowercase(), v)),
                // token68 (`Negotiate abc==`) or a parameter before any scheme: skip.
                _ => {
                    while i < b.len() && b[i] != b',' {
                        i += 1;
                    }
                }
            }
        } else {
            i = after_name;
            out.push(Challenge {
                scheme: name.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_bearer_challenge() {
        // As distribution's token auth answers a push.
        let ch = parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:ns/app:pull,push""#,
        );
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].scheme, "bearer");
        assert_eq!(ch[0].param("realm"), Some("https://auth.example/token"));
        assert_eq!(ch[0].param("service"), Some("registry.example"));
        assert_eq!(ch[0].param("scope"), Some("repository:ns/app:pull,push"));
        assert_eq!(ch[0].param("error"), None);
    }

    #[test]
    fn basic_and_several_challenges() {
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            vec![Challenge {
                scheme: "basic".into(),
                params: vec![("realm".into(), "Registry Realm".into())]
            }]
        );
        let ch = parse(
            r#"Negotiate abc==, BASIC realm=simple, Bearer realm="https://a/t", error="invalid_token", scope="repository:a:pull repository:b:pull""#,
        );
        let schemes: Vec<_> = ch.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["negotiate", "basic", "bearer"]);
        assert_eq!(ch[1].param("realm"), Some("simple"));
        assert_eq!(ch[2].param("error"), Some("invalid_token"));
        assert_eq!(
            ch[2].param("scope"),
            Some("repository:a:pull repository:b:pull")
        );
    }

    #[test]
    fn spacing_case_and_escapes() {
        let ch = parse(r#"  bearer   Realm = "http://h/t?a=1,b=2" ,service="s\"q\\",scope=x  "#);
        assert_eq!(ch[0].param("realm"), Some("http://h/t?a=1,b=2"));
        assert_eq!(ch[0].param("service"), Some(r#"s"q\"#));
        assert_eq!(ch[0].param("scope"), Some("x"));
    }

    #[test]
    fn malformed_input_does_not_panic() {
        for h in [
            "",
            ",,,",
            "=",
            "Bearer realm=\"unterminated",
            "Bearer realm=",
            "Bearer =x",
            "Bearer realm=\"é\\",
            "\u{1F600}",
            "Bearer r=\"\\",
        ] {
            let _ = parse(h);
        }
        assert_eq!(parse("Bearer realm=\"unterminated")[0].params, vec![]);
    }
}
