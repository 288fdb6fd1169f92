//! Credentials and the auth files that hold them.
//!
//! Format (containers-auth.json(5), docker `config.json`, an OpenShift `pull-secret.json`):
//!
//! ```json
//! {"auths": {"quay.example": {"auth": "base64(user:password)", "identitytoken": "…", "email": "…"}}}
//! ```
//!
//! Keys are normalised as containers/image `pkg/docker/config/config.go` does: a key with
//! a scheme (`https://quay.example/v1/`, the docker legacy form) stands for its host, and
//! `docker.io`, `index.docker.io` and `registry-1.docker.io` are one registry. Keys may name
//! a namespace or repository (`quay.example/ocp/release`, podman); the most specific key
//! that matches wins.
//!
//! Docker's credential helpers are asked first when the file names one: `credHelpers`
//! for the registry's host, else `credsStore` (docker `cli/config/credentials`); when the
//! helper has nothing for the registry, the `auths` entry (if any) is used. A helper that
//! is missing or fails is an error naming it (`credential_helper.rs`), never a silent
//! "no credentials".
//!
//! A secret is never shown: `Debug` prints the user name and `<redacted>`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::credential_helper::{self, HelperAnswer};
use crate::error::RegistryError;

/// A user name with a password, or an identity token (a docker `identitytoken`, which is an
/// OAuth2 refresh token for the registry's token server).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    secret: Secret,
    source: Option<CredentialSource>,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    Password(String),
    IdentityToken(String),
}

/// Where credentials were found: the file, and the key of `auths` that matched (or the
/// registry host a credential helper was asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSource {
    pub path: PathBuf,
    pub key: String,
    /// `docker-credential-<name>` when a credential helper gave them.
    pub helper: Option<String>,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.helper {
            Some(h) => write!(
                f,
                "credential helper {h} (named in {}) for {:?}",
                self.path.display(),
                self.key
            ),
            None => write!(f, "{} (key {:?})", self.path.display(), self.key),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.secret {
            Secret::Password(_) => "password",
            Secret::IdentityToken(_) => "identity token",
        };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field(kind, &format_args!("<redacted>"))
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: Secret::Password(password.into()),
            source: None,
        }
    }

    /// An identity token, exchanged at the token server with an OAuth2
    /// `grant_type=refresh_token` request.
    pub fn identity_token(username: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: Secret::IdentityToken(token.into()),
            source: None,
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn is_identity_token(&self) -> bool {
        matches!(self.secret, Secret::IdentityToken(_))
    }

    /// The auth file these came from, when they came from one.
    pub fn source(&self) -> Option<&CredentialSource> {
        self.source.as_ref()
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// How to name these credentials in a message: user, and the file they came from.
    pub(crate) fn describe(&self) -> String {
        let what = match self.secret {
            Secret::Password(_) => format!("user {:?}", self.username),
            Secret::IdentityToken(_) => format!("the identity token of user {:?}", self.username),
        };
        match &self.source {
            Some(s) => format!("{what} from {s}"),
            None => what,
        }
    }

    /// Finds credentials for `registry` (`host[:port]`, optionally followed by
    /// `/namespace/repository` so that podman's per-repository keys can match).
    ///
    /// With `explicit` (`--authfile`), only that file is read and it must exist. Otherwise
    /// the first of these files that has a matching entry wins: `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`
    /// (`~/.config` by default), `$DOCKER_CONFIG/config.json` (`~/.docker` by default).
    /// Missing files are skipped; a file that cannot be read or parsed is an error.
    pub fn from_auth_files(
        registry: &str,
        explicit: Option<&Path>,
    ) -> Result<Option<Credentials>, RegistryError> {
        match explicit {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| RegistryError::AuthFile {
                    path: path.to_owned(),
                    problem: format!("cannot be read: {e}"),
                })?;
                Credentials::from_auth_json(&bytes, path, registry)
            }
            None => {
                for path in auth_file_search_path(&Env::from_process()) {
                    let bytes = match std::fs::read(&path) {
                        Ok(b) => b,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(RegistryError::AuthFile {
                                path,
                                problem: format!("cannot be read: {e}"),
                            })
                        }
                    };
                    if let Some(c) = Credentials::from_auth_json(&bytes, &path, registry)? {
                        return Ok(Some(c));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The files [`Credentials::from_auth_files`] searches when no file is given, in order.
    pub fn auth_file_search_path() -> Vec<PathBuf> {
        auth_file_search_path(&Env::from_process())
    }

    /// Finds credentials for `registry` in the bytes of one auth file (`path` is for
    /// messages and [`Credentials::source`]), running the credential helper the file
    /// names for it, if any.
    pub fn from_auth_json(
        bytes: &[u8],
        path: &Path,
        registry: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        let bad = |problem: String| RegistryError::AuthFile {
            path: path.to_owned(),
            problem,
        };
        // serde_json's messages give a line and column, never the text around them.
        let file: AuthFile =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("is not an auth file: {e}")))?;
        let full = normalise_key(registry);
        let host = full.split('/').next().unwrap_or_default().to_owned();
        let helper = file
            .cred_helpers
            .iter()
            .filter(|(k, _)| normalise_key(k) == host)
            .map(|(_, name)| (name.clone(), "credHelpers"))
            .min()
            .or_else(|| {
                file.creds_store
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(|s| (s, "credsStore"))
            });
        if let Some((name, setting)) = helper {
            // Docker Hub's helpers store it under its legacy URL, as `docker login` did.
            let server = if host == "docker.io" {
                "https://index.docker.io/v1/"
            } else {
                host.as_str()
            };
            if let HelperAnswer::Found(c) = credential_helper::get(&name, server, path, setting)? {
                return Ok(Some(Credentials {
                    source: Some(CredentialSource {
                        path: path.to_owned(),
                        key: server.to_owned(),
                        helper: Some(format!("docker-credential-{name}")),
                    }),
                    ..c
                }));
            }
        }
        let mut by_key: HashMap<String, Vec<(&String, &AuthEntry)>> = HashMap::new();
        for (key, entry) in &file.auths {
            by_key
                .entry(normalise_key(key))
                .or_default()
                .push((key, entry));
        }
        for candidate in lookup_candidates(registry) {
            let Some(entries) = by_key.get_mut(&candidate) else {
                continue;
            };
            // Two raw keys may normalise alike (`quay.example` and `https://quay.example/v1/`):
            // prefer the one written exactly as the candidate, then the first by name.
            entries.sort_by_key(|(k, _)| (**k != candidate, (*k).clone()));
            for (key, entry) in entries.iter() {
                if let Some(c) = entry.credentials(key).map_err(bad)? {
                    return Ok(Some(Credentials {
                        source: Some(CredentialSource {
                            path: path.to_owned(),
                            key: (*key).clone(),
                            helper: None,
                        }),
                        ..c
                    }));
                }
            }
        }
        Ok(None)
    }
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthEntry {
    /// `None` for an entry without secrets (podman leaves `{}` after a logout).
    fn credentials(&self, key: &str) -> Result<Option<Credentials>, String> {
        let pair = match self.auth.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b64) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok());
                // The message never quotes the value: it is the secret.
                let Some(text) = decoded else {
                    return Err(format!(
                        "entry {key:?}: `auth` is not base64 of user:password"
                    ));
                };
                let Some((user, password)) = text.split_once(':') else {
                    return Err(format!(
                        "entry {key:?}: `auth` decodes to no `user:password` pair"
                    ));
                };
                Some((user.to_owned(), password.to_owned()))
            }
        };
        Ok(match (self.identitytoken.as_deref(), pair) {
            (Some(token), pair) if !token.is_empty() => Some(Credentials::identity_token(
                pair.map(|(u, _)| u).unwrap_or_default(),
                token,
            )),
            (_, Some((user, password))) => Some(Credentials::basic(user, password)),
            _ => None,
        })
    }
}

/// The process environment the search path depends on; a value so tests need not
/// change the real one.
#[derive(Default)]
pub(crate) struct Env {
    pub(crate) registry_auth_file: Option<PathBuf>,
    pub(crate) xdg_runtime_dir: Option<PathBuf>,
    pub(crate) xdg_config_home: Option<PathBuf>,
    pub(crate) docker_config: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
}

impl Env {
    fn from_process() -> Env {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            docker_config: var("DOCKER_CONFIG"),
            home: var("HOME"),
        }
    }
}

pub(crate) fn auth_file_search_path(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    out.extend(env.registry_auth_file.clone());
    if let Some(d) = &env.xdg_runtime_dir {
        out.push(d.join("containers/auth.json"));
    }
    if let Some(d) = env
        .xdg_config_home
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join(".config")))
    {
        out.push(d.join("containers/auth.json"));
    }
    if let Some(d) = env
        .docker_config
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join(".docker")))
    {
        out.push(d.join("config.json"));
    }
    out
}

fn normalise_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

/// `https://quay.example/v1/` → `quay.example`; `Quay.Example/NS/app` → `quay.example/NS/app`;
/// docker.io aliases → `docker.io`.
pub(crate) fn normalise_key(key: &str) -> String {
    let key = key.trim();
    if let Some((_, rest)) = key.split_once("://") {
        // A URL key names a host; its path is docker's legacy `/v1/`, not a namespace.
        let host = &rest[..rest.find('/').unwrap_or(rest.len())];
        return normalise_host(host);
    }
    let key = key.trim_end_matches('/');
    match key.split_once('/') {
        Some((host, path)) => format!("{}/{path}", normalise_host(host)),
        None => normalise_host(key),
    }
}

/// `host/ns/app` → `host/ns/app`, `host/ns`, `host`: most specific first.
fn lookup_candidates(registry: &str) -> Vec<String> {
    let full = normalise_key(registry);
    let mut out = vec![full.clone()];
    let mut rest = full.as_str();
    while let Some((parent, _)) = rest.rsplit_once('/') {
        out.push(parent.to_owned());
        rest = parent;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn lookup(json: &str, registry: &str) -> Option<Credentials> {
        Credentials::from_auth_json(json.as_bytes(), Path::new("/x/auth.json"), registry).unwrap()
    }

    #[test]
    fn key_normalisation() {
        assert_eq!(normalise_key("https://quay.example/v1/"), "quay.example");
        assert_eq!(
            normalise_key("http://Quay.Example:8443"),
            "quay.example:8443"
        );
        assert_eq!(normalise_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise_key("registry-1.docker.io"), "docker.io");
        assert_eq!(
            normalise_key("Quay.Example/ocp/Release/"),
            "quay.example/ocp/Release"
        );
        assert_eq!(
            lookup_candidates("quay.example:8443/ocp/release"),
            [
                "quay.example:8443/ocp/release",
                "quay.example:8443/ocp",
                "quay.example:8443"
            ]
        );
    }

    #[test]
    fn docker_podman_and_pull_secret_entries() {
        // An OpenShift pull secret: the same format plus `email`.
        let json = format!(
            r#"{{"auths":{{
                "https://quay.example/v1/":{{"auth":"{}","email":"a@example.com"}},
                "quay.example/ocp":{{"auth":"{}"}},
                "quay.example/ocp/release":{{"auth":"{}"}},
                "docker.io":{{"auth":"{}"}},
                "id.example":{{"auth":"{}","identitytoken":"refresh-me"}},
                "empty.example":{{}}
            }},"credHelpers":{{"ecr.example":"ecr-login"}}}}"#,
            b64("legacy:one"),
            b64("ns:two"),
            b64("repo:three:with:colons"),
            b64("hub:four"),
            b64("<token>:"),
        );
        let c = lookup(&json, "quay.example").unwrap();
        assert_eq!(c.username(), "legacy");
        assert_eq!(c.source().unwrap().key, "https://quay.example/v1/");
        assert_eq!(
            lookup(&json, "quay.example/other/app").unwrap().username(),
            "legacy"
        );
        assert_eq!(
            lookup(&json, "quay.example/ocp/x").unwrap().username(),
            "ns"
        );
        let repo = lookup(&json, "quay.example/ocp/release").unwrap();
        assert_eq!(repo.username(), "repo");
        assert!(repo.secret == Secret::Password("three:with:colons".into()));
        assert_eq!(lookup(&json, "index.docker.io").unwrap().username(), "hub");
        let id = lookup(&json, "id.example").unwrap();
        assert!(id.is_identity_token());
        assert!(id.secret == Secret::IdentityToken("refresh-me".into()));
        assert!(lookup(&json, "empty.example").is_none());
        // A credential helper that is not installed: said, naming it, never ignored.
        let e =
            Credentials::from_auth_json(json.as_bytes(), Path::new("/x/auth.json"), "ecr.example")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("docker-credential-ecr-login") && e.contains("not installed"),
            "{e}"
        );
        assert!(lookup(&json, "quay.example:5000").is_none());
    }

    #[test]
    fn exact_key_beats_legacy_form() {
        let json = format!(
            r#"{{"auths":{{"https://r.example/v1/":{{"auth":"{}"}},"r.example":{{"auth":"{}"}}}}}}"#,
            b64("old:1"),
            b64("new:2")
        );
        assert_eq!(lookup(&json, "r.example").unwrap().username(), "new");
    }

    #[test]
    fn malformed_files_name_the_file_but_never_the_secret() {
        let e = Credentials::from_auth_json(b"{not json", Path::new("/x/a.json"), "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/a.json"), "{e}");
        let secret = "c2VjcmV0LXdpdGhvdXQtY29sb24"; // base64 of "secret-without-colon"
        let json = format!(r#"{{"auths":{{"h":{{"auth":"{secret}"}}}}}}"#);
        let e = Credentials::from_auth_json(json.as_bytes(), Path::new("/x/a.json"), "h")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains(secret) && !e.contains("secret-without-colon"),
            "{e}"
        );
        let json = r#"{"auths":{"h":{"auth":"!!!not base64!!!"}}}"#;
        let e = Credentials::from_auth_json(json.as_bytes(), Path::new("/x/a.json"), "h")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("!!!not"), "{e}");
    }

    #[test]
    fn search_order() {
        let env = Env {
            registry_auth_file: Some("/etc/ferry/auth.json".into()),
            xdg_runtime_dir: Some("/run/user/1000".into()),
            home: Some("/home/op".into()),
            ..Env::default()
        };
        assert_eq!(
            auth_file_search_path(&env),
            [
                PathBuf::from("/etc/ferry/auth.json"),
                "/run/user/1000/containers/auth.json".into(),
                "/home/op/.config/containers/auth.json".into(),
                "/home/op/.docker/config.json".into(),
            ]
        );
        let env = Env {
            xdg_config_home: Some("/cfg".into()),
            docker_config: Some("/dock".into()),
            ..Env::default()
        };
        assert_eq!(
            auth_file_search_path(&env),
            [
                PathBuf::from("/cfg/containers/auth.json"),
                "/dock/config.json".into()
            ]
        );
    }

    #[test]
    fn explicit_file_must_exist_and_is_the_only_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let e = Credentials::from_auth_files("h", Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("nope.json"), "{e}");
        let file = dir.path().join("auth.json");
        std::fs::write(
            &file,
            format!(r#"{{"auths":{{"h:5000":{{"auth":"{}"}}}}}}"#, b64("u:p")),
        )
        .unwrap();
        let c = Credentials::from_auth_files("h:5000/ns/app", Some(&file))
            .unwrap()
            .unwrap();
        assert_eq!(c.username(), "u");
        assert_eq!(c.source().unwrap().path, file);
        assert!(Credentials::from_auth_files("other", Some(&file))
            .unwrap()
            .is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credentials::basic("alice", "hunter2-secret");
        let shown = format!("{c:?} {c:#?} {}", c.describe());
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        let c = Credentials::identity_token("bob", "refresh-secret");
        let shown = format!("{c:?} {}", c.describe());
        assert!(!shown.contains("refresh-secret"), "{shown}");
    }
}
