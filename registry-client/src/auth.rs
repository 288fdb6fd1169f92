//! Registry authentication: anonymous, Basic, and Bearer tokens
//! (distribution `docs/spec/auth/token.md`, `oauth.md`, `scope.md`).
//!
//! The scheme is learnt from the first 401's `WWW-Authenticate`. `Basic` means sending
//! Basic credentials with every request. `Bearer` means fetching a token for the scopes a
//! request needs from the realm (`GET realm?service=…&scope=…&scope=…` with Basic
//! credentials if there are any; an OAuth2 `POST grant_type=refresh_token` with an
//! identity token), caching it per scope set until shortly before `expires_in` runs out.
//! A mount asks for `repository:<dst>:pull,push` and `repository:<from>:pull` in one
//! token, since distribution checks pull access to the source.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::challenge;
use crate::credentials::Secret;
use crate::endpoint::{display_url, encode_query_value, with_query, Origin, Scheme};
use crate::error::{excerpt, RegistryError, Result};
use crate::transport::{Body, Request, Response, Transport};

/// Resource scopes a token must grant: `repository:ns/app` → `{pull, push}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scopes(BTreeMap<String, BTreeSet<String>>);

impl Scopes {
    pub(crate) fn repository(name: &str, actions: &[&str]) -> Scopes {
        let mut s = Scopes::default();
        s.add(&format!("repository:{name}"), actions.iter().copied());
        s
    }

    pub(crate) fn pull(name: &str) -> Scopes {
        Scopes::repository(name, &["pull"])
    }

    pub(crate) fn push(name: &str) -> Scopes {
        Scopes::repository(name, &["pull", "push"])
    }

    pub(crate) fn and(mut self, other: Scopes) -> Scopes {
        for (resource, actions) in other.0 {
            self.0.entry(resource).or_default().extend(actions);
        }
        self
    }

    fn add<'a>(&mut self, resource: &str, actions: impl IntoIterator<Item = &'a str>) {
        self.0
            .entry(resource.to_owned())
            .or_default()
            .extend(actions.into_iter().map(str::to_owned));
    }

    /// Adds the scopes of a challenge's `scope` parameter (space-separated
    /// `type:name:action,action`).
    pub(crate) fn add_challenge_scopes(&mut self, param: &str) {
        for scope in param.split_whitespace() {
            if let Some((resource, actions)) = scope.rsplit_once(':') {
                if resource.contains(':') {
                    self.add(resource, actions.split(',').filter(|a| !a.is_empty()));
                }
            }
        }
    }

    pub(crate) fn covers(&self, wanted: &Scopes) -> bool {
        wanted.0.iter().all(|(res, actions)| {
            self.0
                .get(res)
                .is_some_and(|have| have.is_superset(actions))
        })
    }

    /// One `scope` value per resource: `repository:ns/app:pull,push`.
    pub(crate) fn params(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, actions)| !actions.is_empty())
            .map(|(res, actions)| {
                let list: Vec<&str> = actions.iter().map(String::as_str).collect();
                format!("{res}:{}", list.join(","))
            })
            .collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum AuthScheme {
    /// No 401 seen yet: requests go out without credentials.
    #[default]
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct Token {
    scopes: Scopes,
    /// The bearer token itself: never printed.
    value: String,
    refresh_at: Instant,
}

#[derive(Default)]
pub(crate) struct AuthState {
    scheme: AuthScheme,
    tokens: Vec<Token>,
}

/// More tokens than this means scope sets are not being reused; the oldest go.
const MAX_CACHED_TOKENS: usize = 256;
/// `expires_in` when the token server leaves it out (token.md "Token Response Fields").
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<f64>,
}

/// When to fetch a new token: a quarter of its life (at most a minute) before it expires,
/// so a request never starts with a token about to lapse.
fn refresh_at(fetched: Instant, lifetime: Duration) -> Instant {
    fetched + lifetime - (lifetime / 4).min(Duration::from_secs(60))
}

impl Transport {
    /// The `Authorization` value for a request needing `scopes`, fetching a token if the
    /// registry uses Bearer auth and none is cached.
    pub(crate) fn authorization(&self, scopes: &Scopes) -> Result<Option<String>> {
        let scheme = self.lock_auth().scheme.clone();
        match scheme {
            AuthScheme::Unknown => Ok(None),
            AuthScheme::Basic => Ok(self.basic_header()),
            AuthScheme::Bearer { realm, service } => {
                if let Some(t) = self.cached_token(scopes) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let _one_fetch = self
                    .token_fetch
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(t) = self.cached_token(scopes) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                let header = format!("Bearer {}", token.value);
                let mut state = self.lock_auth();
                let now = Instant::now();
                state.tokens.retain(|t| t.refresh_at > now);
                if state.tokens.len() >= MAX_CACHED_TOKENS {
                    state.tokens.remove(0);
                }
                state.tokens.push(token);
                Ok(Some(header))
            }
        }
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // The state stays consistent through a panic elsewhere: every update is one step.
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached_token(&self, scopes: &Scopes) -> Option<String> {
        let now = Instant::now();
        self.lock_auth()
            .tokens
            .iter()
            .rev()
            .find(|t| t.refresh_at > now && t.scopes.covers(scopes))
            .map(|t| t.value.clone())
    }

    fn basic_header(&self) -> Option<String> {
        match self
            .credentials
            .as_ref()
            .map(|c| (c.username(), c.secret()))
        {
            Some((user, Secret::Password(password))) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            _ => None,
        }
    }

    /// Learns from a 401 how to authenticate; `true` if sending the request again can
    /// succeed. `scopes` grows by the scopes the challenge names.
    pub(crate) fn learn_challenge(
        &self,
        resp: &Response,
        scopes: &mut Scopes,
        sent_auth: bool,
    ) -> bool {
        let challenges: Vec<challenge::Challenge> = resp
            .headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(challenge::parse)
            .collect();
        let bearer = challenges
            .iter()
            .find(|c| c.scheme == "bearer" && c.param("realm").is_some_and(|r| !r.is_empty()));
        let mut state = self.lock_auth();
        if let Some(ch) = bearer {
            if let Some(scope) = ch.param("scope") {
                let mut wanted = scopes.clone();
                wanted.add_challenge_scopes(scope);
                *scopes = wanted;
            }
            state.scheme = AuthScheme::Bearer {
                realm: ch.param("realm").unwrap_or_default().to_owned(),
                service: ch.param("service").map(str::to_owned),
            };
            if sent_auth {
                // The token we sent was refused (expired early, revoked): never reuse it.
                state.tokens.retain(|t| !t.scopes.covers(scopes));
            }
            return true;
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            state.scheme = AuthScheme::Basic;
            // Decided by what this request sent, not by the shared state: another worker
            // may have learnt Basic while this request was on its way without it.
            return !sent_auth && self.basic_header().is_some();
        }
        false
    }

    /// What a 401 means, given what was sent.
    pub(crate) fn unauthorized_hint(&self, scopes: Option<&Scopes>) -> String {
        let scheme = self.lock_auth().scheme.clone();
        let wanted = scopes.map(|s| s.params().join(" ")).unwrap_or_default();
        match (&self.credentials, scheme) {
            (None, _) => format!(
                "no credentials were given for {}, and anonymous access is not allowed",
                self.origin.base()
            ),
            (Some(c), AuthScheme::Basic) if c.is_identity_token() => format!(
                "the registry wants Basic credentials, but only {} was given",
                c.describe()
            ),
            (Some(c), AuthScheme::Basic) => format!("the registry rejected {}", c.describe()),
            (Some(c), AuthScheme::Bearer { .. }) => format!(
                "the token issued for {} does not grant {wanted}",
                c.describe()
            ),
            (Some(c), AuthScheme::Unknown) => format!(
                "the registry sent no usable challenge (WWW-Authenticate), so {} could not be used",
                c.describe()
            ),
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &Scopes) -> Result<Token> {
        let realm_origin = Origin::of_url(realm).ok_or_else(|| RegistryError::Protocol {
            method: "GET".into(),
            url: self.origin.base(),
            status: 401,
            problem: format!(
                "the token realm {:?} is not an http(s) URL",
                excerpt(realm.as_bytes())
            ),
        })?;
        let creds = self.credentials.as_ref();
        if creds.is_some() && realm_origin.scheme == Scheme::Http {
            check_plain_http_realm(&self.origin, &realm_origin, self.insecure, realm)?;
        }
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s.to_owned()));
        }
        let scope_params = scopes.params();
        let started = Instant::now();
        let (mut req, form) = match creds.map(|c| c.secret()) {
            Some(Secret::IdentityToken(refresh)) => {
                // oauth.md "Refresh token format": the identity token is a refresh token.
                query.push(("grant_type", "refresh_token".into()));
                query.push(("refresh_token", refresh.clone()));
                query.push(("client_id", "ferry".into()));
                if !scope_params.is_empty() {
                    query.push(("scope", scope_params.join(" ")));
                }
                let form: Vec<String> = query
                    .iter()
                    .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
                    .collect();
                let req = Request::new("POST", realm.to_owned(), None)
                    .header("content-type", "application/x-www-form-urlencoded");
                (req, Some(form.join("&")))
            }
            _ => {
                let mut url = realm.to_owned();
                for (k, v) in &query {
                    url = with_query(&url, k, v);
                }
                for s in &scope_params {
                    url = with_query(&url, "scope", s);
                }
                let mut req = Request::new("GET", url, None);
                req.authorization = self.basic_header();
                (req, None)
            }
        };
        if let Some(form) = &form {
            req.body = Body::Bytes(form.as_bytes());
        }
        let resp = self.exchange(&mut req)?;
        let describe = || match creds {
            Some(c) => format!("the token server refused {}", c.describe()),
            None => {
                "the token server refuses anonymous access, and no credentials were given".into()
            }
        };
        match resp.status {
            200 => {}
            401 => {
                return Err(RegistryError::Unauthorized {
                    method: resp.method.into(),
                    url: resp.shown_url(),
                    status: 401,
                    hint: describe(),
                    errors: crate::error::decode_error_body(&resp.body).unwrap_or_default(),
                })
            }
            _ => return Err(self.error_from(&resp, None)),
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&resp.body).map_err(|_| RegistryError::Garbage {
                method: resp.method.into(),
                url: resp.shown_url(),
                status: resp.status,
                body_excerpt: excerpt(&resp.body),
            })?;
        let value = answer
            .token
            .filter(|t| !t.is_empty())
            .or(answer.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                resp.protocol("the token answer holds neither `token` nor `access_token`")
            })?;
        let lifetime = answer
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TOKEN_LIFETIME, |s| {
                Duration::from_secs_f64(s.min(86_400.0))
            });
        Ok(Token {
            scopes: scopes.clone(),
            value,
            refresh_at: refresh_at(started, lifetime),
        })
    }
}

/// Whether credentials may go to a token server over plain HTTP. Over
/// HTTPS they go to the realm wherever it is, as docker and podman send them. Over plain
/// HTTP anyone on the way reads them, so only with `--insecure` (the operator accepted
/// that for the registry) and only to the host the operator named: a registry must not
/// be able to send them in the clear to a host of its choosing.
pub(crate) fn check_plain_http_realm(
    registry: &Origin,
    realm: &Origin,
    insecure: bool,
    realm_url: &str,
) -> Result<()> {
    if insecure && realm.host == registry.host {
        return Ok(());
    }
    let why = if insecure {
        format!(
            "that is another host than {}, the one named in --to; ferry sends credentials over plain HTTP to no other host",
            registry.host
        )
    } else {
        "credentials go over plain HTTP only with --insecure, and only to the registry's own host"
            .to_owned()
    };
    Err(RegistryError::CredentialsWithheld {
        registry: registry.base(),
        realm: display_url(realm_url),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_realms_get_credentials_only_on_the_named_host() {
        let o = |u: &str| Origin::of_url(u).unwrap();
        let reg = o("http://registry.lab:5000");
        let url = "http://auth.lab:5001/token";
        assert!(check_plain_http_realm(&reg, &o("http://registry.lab:5001"), true, url).is_ok());
        let e = check_plain_http_realm(&reg, &o(url), true, url).unwrap_err();
        assert!(e.to_string().contains("another host"), "{e}");
        let e =
            check_plain_http_realm(&reg, &o("http://registry.lab:5001"), false, url).unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
    }

    #[test]
    fn scope_sets() {
        let mount = Scopes::push("dst/app").and(Scopes::pull("src/app"));
        assert_eq!(
            mount.params(),
            ["repository:dst/app:pull,push", "repository:src/app:pull"]
        );
        assert!(mount.covers(&Scopes::pull("dst/app")));
        assert!(mount.covers(&Scopes::push("dst/app")));
        assert!(!mount.covers(&Scopes::push("src/app")));
        assert!(mount.covers(&Scopes::default()));
        let mut s = Scopes::pull("a");
        s.add_challenge_scopes("repository:a:push repository:b:pull registry:catalog:* junk");
        assert_eq!(
            s.params(),
            [
                "registry:catalog:*",
                "repository:a:pull,push",
                "repository:b:pull"
            ]
        );
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let t0 = Instant::now();
        assert_eq!(
            refresh_at(t0, Duration::from_secs(60)),
            t0 + Duration::from_secs(45)
        );
        assert_eq!(
            refresh_at(t0, Duration::from_secs(3600)),
            t0 + Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_at(t0, Duration::from_secs(4)),
            t0 + Duration::from_secs(3)
        );
    }
}
