//! containers-registries.conf(5), version 2 (TOML): where an image is really pulled from.
//! This is how skopeo and podman, and so oc-mirror, turn `registry.redhat.io/…` into a list
//! of mirrors to try and then the registry itself, and how ferry's tests point
//! `registry.redhat.io` at a local registry.
//!
//! Followed: containers/image@df7e80d2d19872b61f352a8a182ec934dc0c2346,
//! `pkg/sysregistriesv2/system_registries_v2.go` (loading, merging, `FindRegistry`,
//! `PullSourcesFromReference`), `docker/docker_image_src.go` and `docker/docker_client.go`
//! (which name is matched, where `blocked` and `insecure` apply), and
//! `docs/containers-registries.conf.5.md`.
//!
//! # Which files
//! - `--registries-conf F` ([`SearchPaths::new`] with `explicit`): that file only, and it
//!   must exist. containers/image still reads the drop-in directories next to an explicit
//!   file; ferry does not, so that what one file says is all that applies (a test, or an
//!   operator reproducing a run, gets exactly what they wrote).
//! - Otherwise, as containers/image: `$HOME/.config/containers/registries.conf` if it
//!   exists, with the drop-ins of `$HOME/.config/containers/registries.conf.d/` only; else
//!   `/etc/containers/registries.conf` (missing is fine: no configuration), then the drop-ins
//!   of `/etc/containers/registries.conf.d/`, then those of the user's directory.
//! - Drop-ins: the `*.conf` files of each directory (not its subdirectories), in name order,
//!   each in the v2 format. A drop-in's `[[registry]]` replaces the one with the same
//!   `prefix`; its `unqualified-search-registries` (even `[]`) replaces the list.
//!
//! # Keys
//! `unqualified-search-registries`, `[[registry]]` (`prefix`, `location`, `insecure`,
//! `blocked`, `mirror-by-digest-only`) and `[[registry.mirror]]` (`location`, `insecure`,
//! `pull-from-mirror` = `all` | `digest-only` | `tag-only`) are used. `credential-helpers`,
//! `short-name-mode`, `[aliases]` and `additional-layer-store-auth-helper` are checked and
//! kept but do not change resolution: ferry, like skopeo's `docker://` transport, reads
//! short names as Docker Hub names (`ubuntu` is `docker.io/library/ubuntu`), never through
//! the search list. A v1 file (`[registries.search]`, `[registries.insecure]`,
//! `[registries.block]`) is converted as containers/image converts it. Unlike
//! containers/image, which logs unknown keys at debug level and goes on, an unknown key is
//! an error naming the file, line and key: a misspelt `insecure` must not pass unnoticed.
//!
//! # Resolution ([`RegistriesConf::resolve`])
//! The `[[registry]]` whose `prefix` is the longest match of the reference's name (host and
//! repository, no tag or digest; `*.example.com` matches any subdomain of example.com) gives
//! the mirrors, in order, then its `location`; the reference is rewritten by replacing the
//! prefix with each location. Mirrors are skipped for tag pulls under
//! `mirror-by-digest-only` or `pull-from-mirror = "digest-only"`, and for digest pulls under
//! `"tag-only"`. An endpoint whose own name falls under a `blocked = true` registry is left
//! out (so a blocked registry with mirrors is reached only through its mirrors); when none
//! is left, [`RegistriesConfError::Blocked`] names the registry and the file.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use oci::{Reference, ReferenceError, Written};
use serde::Deserialize;
use toml::Spanned;

/// The system-wide file and drop-in directory (containers/image `paths_common.go`).
pub const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
pub const SYSTEM_DIR: &str = "/etc/containers/registries.conf.d";
/// Relative to `$HOME`.
pub const USER_FILE: &str = ".config/containers/registries.conf";
pub const USER_DIR: &str = ".config/containers/registries.conf.d";
/// A registries.conf is a short hand-written file; a larger one is refused, not read whole.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Something wrong with a registries.conf file, or a reference it cannot resolve.
#[derive(Debug, thiserror::Error)]
pub enum RegistriesConfError {
    #[error("{}: cannot read the registries configuration: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not TOML, an unknown key, a value of the wrong type.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key whose value containers/image refuses too.
    #[error("{}{}: {key}: {message}", file.display(), at_line(*line))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        /// `registry[2].mirror[0].pull-from-mirror`.
        key: String,
        message: String,
    },
    /// The reference to resolve does not parse (oci's message names it, where and why).
    #[error("{source}")]
    BadReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    /// Every endpoint for the reference is under a `blocked = true` registry.
    #[error("{reference} is blocked: registry prefix {prefix:?} has blocked = true in {}, and no mirror serves a pull by {} (remove blocked, or add a [[registry.mirror]] that does)", file.display(), if *by_digest { "digest" } else { "tag" })]
    Blocked {
        reference: String,
        prefix: String,
        file: PathBuf,
        by_digest: bool,
    },
    /// Replacing the prefix by a location gave something that is not a reference.
    #[error("{}: {key}: {detail}", file.display())]
    Rewrite {
        file: PathBuf,
        key: String,
        /// `"location" rewrites REF to "REWRITTEN", which is not a reference: why`.
        detail: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map_or(String::new(), |l| format!(":{l}"))
}

/// `pull-from-mirror`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullFromMirror {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// One `[[registry.mirror]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from_mirror: PullFromMirror,
}

/// One `[[registry]]`, normalised (`prefix` defaults to `location`, trailing `/` dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    pub prefix: String,
    /// Empty only for a `*.example.com` prefix: no rewriting.
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<Mirror>,
    /// The file this entry came from, and its index among that file's `[[registry]]`.
    pub file: PathBuf,
    pub index: usize,
}

/// Where to look ([`SearchPaths::new`] builds the standard list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPaths {
    pub main: PathBuf,
    /// An explicit file must exist; the default ones may be missing.
    pub main_required: bool,
    pub drop_in_dirs: Vec<PathBuf>,
}

impl SearchPaths {
    /// The files containers/image would read (see the module docs), or only `explicit`.
    /// `home` is `$HOME` (`None`: no per-user files).
    pub fn new(explicit: Option<&Path>, home: Option<&Path>) -> SearchPaths {
        SearchPaths::with_system(
            explicit,
            home,
            Path::new(SYSTEM_FILE),
            Path::new(SYSTEM_DIR),
        )
    }

    /// As [`SearchPaths::new`] with another system file and directory (tests).
    pub fn with_system(
        explicit: Option<&Path>,
        home: Option<&Path>,
        system_file: &Path,
        system_dir: &Path,
    ) -> SearchPaths {
        if let Some(f) = explicit {
            return SearchPaths {
                main: f.to_path_buf(),
                main_required: true,
                drop_in_dirs: Vec::new(),
            };
        }
        let user = home.map(|h| (h.join(USER_FILE), h.join(USER_DIR)));
        match user {
            Some((file, dir)) if file.exists() => SearchPaths {
                main: file,
                main_required: false,
                drop_in_dirs: vec![dir],
            },
            user => SearchPaths {
                main: system_file.to_path_buf(),
                main_required: false,
                drop_in_dirs: std::iter::once(system_dir.to_path_buf())
                    .chain(user.map(|(_, dir)| dir))
                    .collect(),
            },
        }
    }
}

/// The merged configuration.
#[derive(Clone, Debug, Default)]
pub struct RegistriesConf {
    /// Sorted by prefix, one per prefix (containers/image keeps them so).
    registries: Vec<Registry>,
    unqualified_search_registries: Vec<String>,
    credential_helpers: Vec<String>,
    /// Every file read, in order.
    files: Vec<PathBuf>,
}

/// One place to try, in order. Credentials are looked up for each endpoint's own host:
/// containers/image never sends credentials meant for the source to a mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` as configured (`docker.io` is served by `registry-1.docker.io`: the
    /// client maps it, as containers/image does).
    pub host: String,
    /// The repository path at that host, after rewriting.
    pub repository: String,
    /// Allow plain HTTP and unverified TLS for this endpoint.
    pub insecure: bool,
    /// A `[[registry.mirror]]` (false for the registry's own location).
    pub mirror: bool,
    /// The rewritten reference, with the tag and/or digest.
    pub reference: String,
}

/// The endpoints to try for one reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The reference the user wrote, in canonical form (`docker.io/library/ubuntu:22.04`):
    /// what a bundle records as the source, whichever endpoint served it.
    pub reference: String,
    /// Mirrors in order, then the location.
    pub endpoints: Vec<Endpoint>,
    /// The `[[registry]]` that matched: its prefix and file.
    pub registry: Option<(String, PathBuf)>,
    /// Endpoints left out because their name is under `blocked = true`.
    pub blocked: Vec<String>,
}

impl RegistriesConf {
    /// Loads the files of [`SearchPaths::new`]`(explicit, home)`.
    pub fn load(
        explicit: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<RegistriesConf, RegistriesConfError> {
        RegistriesConf::load_from(&SearchPaths::new(explicit, home))
    }

    pub fn load_from(paths: &SearchPaths) -> Result<RegistriesConf, RegistriesConfError> {
        let mut conf = RegistriesConf::default();
        let mut by_prefix: BTreeMap<String, Registry> = BTreeMap::new();
        match read_capped(&paths.main) {
            Ok(text) => {
                let parsed = parse_file(&paths.main, &text, false)?;
                conf.merge(&mut by_prefix, parsed, &paths.main);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !paths.main_required => {}
            Err(source) => {
                return Err(RegistriesConfError::Read {
                    file: paths.main.clone(),
                    source,
                })
            }
        }
        for dir in &paths.drop_in_dirs {
            for file in drop_ins(dir)? {
                let text = match read_capped(&file) {
                    Ok(t) => t,
                    // Removed since the listing: containers/image ignores that race too.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(RegistriesConfError::Read { file, source }),
                };
                let parsed = parse_file(&file, &text, true)?;
                conf.merge(&mut by_prefix, parsed, &file);
            }
        }
        conf.registries = by_prefix.into_values().collect();
        Ok(conf)
    }

    /// Parses one file's text as the whole configuration (`file` names it in errors).
    pub fn parse(file: &Path, text: &str) -> Result<RegistriesConf, RegistriesConfError> {
        let mut conf = RegistriesConf::default();
        let mut by_prefix = BTreeMap::new();
        let parsed = parse_file(file, text, false)?;
        conf.merge(&mut by_prefix, parsed, file);
        conf.registries = by_prefix.into_values().collect();
        Ok(conf)
    }

    fn merge(
        &mut self,
        by_prefix: &mut BTreeMap<String, Registry>,
        parsed: ParsedFile,
        file: &Path,
    ) {
        for r in parsed.registries {
            by_prefix.insert(r.prefix.clone(), r);
        }
        if let Some(u) = parsed.unqualified {
            self.unqualified_search_registries = u;
        }
        if let Some(c) = parsed.credential_helpers {
            self.credential_helpers = c;
        }
        self.files.push(file.to_path_buf());
    }

    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    /// `unqualified-search-registries` (not used to resolve: see the module docs).
    pub fn unqualified_search_registries(&self) -> &[String] {
        &self.unqualified_search_registries
    }

    /// `credential-helpers`; empty means containers/image's default, `containers-auth.json`.
    pub fn credential_helpers(&self) -> &[String] {
        &self.credential_helpers
    }

    /// The files that were read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// containers/image `FindRegistry`: the entry with the longest prefix matching `name`
    /// (`host/repository`).
    pub fn find_registry(&self, name: &str) -> Option<&Registry> {
        let mut best: Option<&Registry> = None;
        for r in &self.registries {
            if matching_prefix_len(name, &r.prefix).is_some()
                && best.is_none_or(|b| r.prefix.len() > b.prefix.len())
            {
                best = Some(r);
            }
        }
        best
    }

    /// The endpoints to try for `reference`, in order. `by_digest`: this access is by
    /// digest (also implied by a reference that carries one), which decides the
    /// digest-only and tag-only mirrors.
    pub fn resolve(
        &self,
        reference: &str,
        by_digest: bool,
    ) -> Result<Resolved, RegistriesConfError> {
        // skopeo's transport prefix; what follows is the reference.
        let written = reference.strip_prefix("docker://").unwrap_or(reference);
        let r = Reference::parse(written).map_err(|source| RegistriesConfError::BadReference {
            reference: reference.to_string(),
            source,
        })?;
        let digested = by_digest || r.digest().is_some();
        // Prefixes match the canonical name and rewrite the canonical reference.
        let full = r.to_string();
        let Some(reg) = self.find_registry(&r.name()) else {
            return Ok(Resolved {
                reference: full.clone(),
                endpoints: vec![Endpoint {
                    host: r.host().to_string(),
                    repository: r.path().to_string(),
                    insecure: false,
                    mirror: false,
                    reference: full,
                }],
                registry: None,
                blocked: Vec::new(),
            });
        };
        // PullSourcesFromReference: the mirrors that apply, then the registry itself.
        let mut sources: Vec<(String, &str, bool, bool)> = Vec::new();
        for (j, m) in reg.mirrors.iter().enumerate() {
            let applies = if reg.mirror_by_digest_only {
                digested
            } else {
                match m.pull_from_mirror {
                    PullFromMirror::All => true,
                    PullFromMirror::DigestOnly => digested,
                    PullFromMirror::TagOnly => !digested,
                }
            };
            if applies {
                let key = format!("registry[{}].mirror[{j}].location", reg.index);
                sources.push((key, &m.location, m.insecure, true));
            }
        }
        sources.push((
            format!("registry[{}].location", reg.index),
            &reg.location,
            reg.insecure,
            false,
        ));

        let mut endpoints = Vec::new();
        let mut blocked = Vec::new();
        let mut blocked_by: Option<&Registry> = None;
        for (key, location, insecure, mirror) in sources {
            let rewritten = rewrite(&full, &reg.prefix, location);
            // A rewritten reference must name its host: one read as a Docker Hub short
            // name would send the pull somewhere the file never said.
            let physical = Written::parse(&rewritten)
                .ok()
                .filter(|w| w.host.is_some())
                .and_then(|_| Reference::parse(&rewritten).ok())
                .ok_or_else(|| RegistriesConfError::Rewrite {
                    file: reg.file.clone(),
                    key: key.clone(),
                    detail: format!(
                        "{location:?} rewrites {} to {rewritten:?}, which is not a reference: \
                         the location must start with a registry host (host[:port][/path])",
                        full
                    ),
                })?;
            // docker_client.go: `blocked` is looked up for each endpoint's own name.
            if let Some(b) = self.find_registry(&physical.name()).filter(|b| b.blocked) {
                blocked.push(physical.to_string());
                blocked_by.get_or_insert(b);
                continue;
            }
            endpoints.push(Endpoint {
                host: physical.host().to_string(),
                repository: physical.path().to_string(),
                insecure,
                mirror,
                reference: physical.to_string(),
            });
        }
        if endpoints.is_empty() {
            let b = blocked_by.unwrap_or(reg);
            return Err(RegistriesConfError::Blocked {
                reference: full,
                prefix: b.prefix.clone(),
                file: b.file.clone(),
                by_digest: digested,
            });
        }
        Ok(Resolved {
            reference: full,
            endpoints,
            registry: Some((reg.prefix.clone(), reg.file.clone())),
            blocked,
        })
    }
}

/// `location + ref[len(matched prefix):]`; an empty location (wildcard prefix) keeps the
/// reference as it is.
fn rewrite(full: &str, prefix: &str, location: &str) -> String {
    if location.is_empty() {
        return full.to_string();
    }
    match matching_prefix_len(full, prefix) {
        Some(n) => format!("{location}{}", &full[n..]),
        None => full.to_string(),
    }
}

/// containers/image `refMatchingPrefix`: the length of `reference` that `prefix` matches,
/// which must end at the end or at `:`, `/` or `@`.
fn matching_prefix_len(reference: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix('*') {
        // refMatchingSubdomainPrefix: `.example.com` inside the host part.
        let index = reference.find(domain)?;
        if reference[..index].contains('/') {
            return None;
        }
        let end = index + domain.len();
        return match reference.as_bytes().get(end) {
            None | Some(b':' | b'/' | b'@') => Some(end),
            Some(_) => None,
        };
    }
    let rest = reference.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        None | Some(b':' | b'/' | b'@') => Some(prefix.len()),
        Some(_) => None,
    }
}

fn read_capped(file: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(file)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a registries.conf",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(text)
}

/// A drop-in directory's `*.conf` files, sorted by name; a missing directory has none.
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>, RegistriesConfError> {
    let read_err = |source| RegistriesConfError::Read {
        file: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let is_conf = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".conf"));
        // A directory named x.conf is not a drop-in (containers/image skips directories).
        if is_conf && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

// ---- One file ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    unqualified_search_registries: Option<Vec<Spanned<String>>>,
    credential_helpers: Option<Vec<String>>,
    short_name_mode: Option<Spanned<String>>,
    additional_layer_store_auth_helper: Option<String>,
    aliases: Option<BTreeMap<String, String>>,
    #[serde(default)]
    registry: Vec<Spanned<RawRegistry>>,
    /// The v1 format: `[registries.search]`, `[registries.insecure]`, `[registries.block]`.
    registries: Option<Spanned<RawV1>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<Spanned<String>>,
    location: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<Spanned<RawMirror>>,
    /// Only valid on a mirror; read so that the error can say so.
    pull_from_mirror: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMirror {
    location: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawV1 {
    search: Option<RawV1List>,
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

struct ParsedFile {
    registries: Vec<Registry>,
    unqualified: Option<Vec<String>>,
    credential_helpers: Option<Vec<String>>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

fn parse_file(file: &Path, text: &str, drop_in: bool) -> Result<ParsedFile, RegistriesConfError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |s: Range<usize>| line_col(text, s.start));
        RegistriesConfError::Syntax {
            file: file.to_path_buf(),
            line,
            column,
            message: e.message().trim_end().to_string(),
        }
    })?;
    let invalid =
        |span: Option<Range<usize>>, key: String, message: String| RegistriesConfError::Invalid {
            file: file.to_path_buf(),
            line: span.map(|s| line_col(text, s.start).0),
            key,
            message,
        };

    if let Some(mode) = &raw.short_name_mode {
        if !["disabled", "enforcing", "permissive"].contains(&mode.get_ref().as_str()) {
            return Err(invalid(
                Some(mode.span()),
                "short-name-mode".into(),
                format!(
                    "{:?} is not disabled, enforcing or permissive",
                    mode.get_ref()
                ),
            ));
        }
    }
    let _ = (&raw.aliases, &raw.additional_layer_store_auth_helper);

    let mut registries = Vec::new();
    let mut unqualified = None;
    if let Some(v1) = &raw.registries {
        if drop_in {
            return Err(invalid(
                Some(v1.span()),
                "registries".into(),
                "a drop-in must be in the v2 format ([[registry]]), not v1 ([registries.search] …)"
                    .into(),
            ));
        }
        if !raw.registry.is_empty() || raw.unqualified_search_registries.is_some() {
            return Err(invalid(Some(v1.span()), "registries".into(), "mixes the v1 format ([registries.*]) with v2 ([[registry]], unqualified-search-registries): use v2 only".into()));
        }
        let v1 = v1.get_ref();
        let list = |l: &Option<RawV1List>| l.as_ref().map_or(Vec::new(), |l| l.registries.clone());
        // ConvertToV2: one [[registry]] per location, blocked before insecure, in order.
        let mut order: Vec<String> = Vec::new();
        let mut flags: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for (locations, is_block) in [(list(&v1.block), true), (list(&v1.insecure), false)] {
            for l in locations {
                let l = parse_location(&l).map_err(|m| invalid(None, "registries".into(), m))?;
                let f = flags.entry(l.clone()).or_insert_with(|| {
                    order.push(l.clone());
                    (false, false)
                });
                if is_block {
                    f.0 = true;
                } else {
                    f.1 = true;
                }
            }
        }
        for (index, l) in order.into_iter().enumerate() {
            let (blocked, insecure) = flags[&l];
            registries.push(Registry {
                prefix: l.clone(),
                location: l,
                insecure,
                blocked,
                mirror_by_digest_only: false,
                mirrors: Vec::new(),
                file: file.to_path_buf(),
                index,
            });
        }
        unqualified = v1.search.as_ref().map(|s| s.registries.clone());
    }

    for (i, spanned) in raw.registry.iter().enumerate() {
        let r = spanned.get_ref();
        let key = |k: &str| format!("registry[{i}].{k}");
        let span_of =
            |s: &Option<Spanned<String>>| s.as_ref().map(|s| s.span()).or(Some(spanned.span()));
        let location = match &r.location {
            Some(l) => parse_location(l.get_ref())
                .map_err(|m| invalid(Some(l.span()), key("location"), m))?,
            None => String::new(),
        };
        let prefix = match r.prefix.as_ref().filter(|p| !p.get_ref().is_empty()) {
            None if location.is_empty() => {
                return Err(invalid(
                    Some(spanned.span()),
                    format!("registry[{i}]"),
                    "has neither prefix nor location".into(),
                ))
            }
            None => location.clone(),
            Some(p) => {
                let prefix = parse_location(p.get_ref())
                    .map_err(|m| invalid(Some(p.span()), key("prefix"), m))?;
                let wildcard = prefix.starts_with("*.");
                if wildcard && prefix.contains(['/', '@', ':']) {
                    return Err(invalid(Some(p.span()), key("prefix"), format!("{prefix:?}: a wildcard prefix is *.example.com, without port, path, tag or digest")));
                }
                if !wildcard && location.is_empty() {
                    return Err(invalid(
                        span_of(&r.location),
                        key("location"),
                        "is empty, which only a wildcard prefix (*.example.com) allows".into(),
                    ));
                }
                prefix
            }
        };
        if let Some(p) = &r.pull_from_mirror {
            return Err(invalid(
                Some(p.span()),
                key("pull-from-mirror"),
                "belongs in a [[registry.mirror]], not in the [[registry]] itself".into(),
            ));
        }
        let mut mirrors = Vec::new();
        for (j, m) in r.mirror.iter().enumerate() {
            let mk = |k: &str| format!("registry[{i}].mirror[{j}].{k}");
            let mr = m.get_ref();
            let location = match &mr.location {
                Some(l) => parse_location(l.get_ref())
                    .map_err(|e| invalid(Some(l.span()), mk("location"), e))?,
                None => String::new(),
            };
            if location.is_empty() {
                return Err(invalid(
                    Some(m.span()),
                    mk("location"),
                    "a mirror needs a location".into(),
                ));
            }
            let pull_from_mirror = match &mr.pull_from_mirror {
                None => PullFromMirror::All,
                Some(p) => {
                    if r.mirror_by_digest_only {
                        return Err(invalid(Some(p.span()), mk("pull-from-mirror"), format!("cannot be set when the registry ({prefix:?}) has mirror-by-digest-only")));
                    }
                    match p.get_ref().as_str() {
                        "" | "all" => PullFromMirror::All,
                        "digest-only" => PullFromMirror::DigestOnly,
                        "tag-only" => PullFromMirror::TagOnly,
                        other => {
                            return Err(invalid(
                                Some(p.span()),
                                mk("pull-from-mirror"),
                                format!("{other:?} is not all, digest-only or tag-only"),
                            ))
                        }
                    }
                }
            };
            mirrors.push(Mirror {
                location,
                insecure: mr.insecure,
                pull_from_mirror,
            });
        }
        registries.push(Registry {
            prefix,
            location,
            insecure: r.insecure,
            blocked: r.blocked,
            mirror_by_digest_only: r.mirror_by_digest_only,
            mirrors,
            file: file.to_path_buf(),
            index: i,
        });
    }

    // One location (or wildcard prefix) configured twice must agree on insecure and blocked.
    for (i, a) in registries.iter().enumerate() {
        let id = |r: &Registry| {
            if r.location.is_empty() {
                r.prefix.clone()
            } else {
                r.location.clone()
            }
        };
        if let Some(b) = registries[..i].iter().find(|b| id(b) == id(a)) {
            for (what, x, y) in [
                ("insecure", a.insecure, b.insecure),
                ("blocked", a.blocked, b.blocked),
            ] {
                if x != y {
                    let line = raw.registry.get(a.index).map(|s| s.span());
                    return Err(invalid(line, format!("registry[{}].{what}", a.index), format!("{:?} is configured twice (also registry[{}]) with different {what} settings", id(a), b.index)));
                }
            }
        }
    }
    // The first of the same prefix wins within a file (postProcessRegistries).
    let mut seen = std::collections::HashSet::new();
    registries.retain(|r| seen.insert(r.prefix.clone()));

    if let Some(list) = &raw.unqualified_search_registries {
        let mut hosts = Vec::new();
        for (k, h) in list.iter().enumerate() {
            let host = parse_location(h.get_ref()).map_err(|m| {
                invalid(
                    Some(h.span()),
                    format!("unqualified-search-registries[{k}]"),
                    m,
                )
            })?;
            if !is_host(&host) {
                return Err(invalid(
                    Some(h.span()),
                    format!("unqualified-search-registries[{k}]"),
                    format!("{host:?} is not host[:port]"),
                ));
            }
            hosts.push(host);
        }
        unqualified = Some(hosts);
    }
    Ok(ParsedFile {
        registries,
        unqualified,
        credential_helpers: raw.credential_helpers,
    })
}

/// containers/image `parseLocation`: trailing `/` dropped; URL schemes refused.
fn parse_location(input: &str) -> Result<String, String> {
    let trimmed = input.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(format!("{input:?}: URI schemes are not supported (write host[:port][/path]; insecure = true allows plain HTTP)"));
    }
    Ok(trimmed.to_string())
}

/// distribution's `DomainRegexp`, simply: labels of letters, digits and `-`, an optional
/// numeric port.
fn is_host(s: &str) -> bool {
    let (name, port) = s.rsplit_once(':').map_or((s, None), |(n, p)| (n, Some(p)));
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    !name.is_empty()
        && name.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for PullFromMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullFromMirror::All => "all",
            PullFromMirror::DigestOnly => "digest-only",
            PullFromMirror::TagOnly => "tag-only",
        })
    }
}

#[cfg(test)]
#[path = "registries_conf_tests.rs"]
mod tests;
