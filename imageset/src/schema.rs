//! The ImageSetConfiguration schema, field for field as oc-mirror v2 declares it in
//! `internal/pkg/api/v2alpha1/type_config.go`, `type_config_include.go` and
//! `type_platform.go` at openshift/oc-mirror@855b64a3c9c03634bcab6210b641274772050cda
//! (2026-08-21).
//!
//! oc-mirror decodes with `DisallowUnknownFields` (`internal/pkg/config/load.go`), so every
//! struct here denies unknown fields too: a file oc-mirror accepts parses here, and a typo
//! is an error rather than a silently ignored setting. Two ways in which ferry reads more
//! strictly or more widely than oc-mirror, both documented in the crate's README:
//! - Go's JSON decoder matches field names case-insensitively; ferry wants the exact
//!   spelling (`additionalImages`, not `additionalimages`).
//! - A YAML scalar read into a string field (`targetTag: 1.0`) is taken as written; Go's
//!   YAML-to-JSON step turns it into a number and refuses it.
//!
//! Leaf values that must be well formed (references, tags, repository paths, patterns) are
//! checked while they are read, so that serde_norway's error carries their line, column and
//! field path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use oci::name::{self, NameError};
use oci::{Reference, ReferenceError};

use crate::platform::Platform;

/// The whole file: `apiVersion`, `kind` (checked before this is read, see `load.rs`),
/// `mirror` (required, as in oc-mirror) and `archiveSize`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSetConfiguration {
    pub api_version: String,
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub mirror: Mirror,
    /// oc-mirror's archive segment size in GB (`ArchiveSize int64`). ferry splits its
    /// bundle with `--volume-size` instead, so the value is read, noted and not used.
    #[serde(default)]
    pub archive_size: Option<i64>,
}

/// `mirror:` (`type Mirror`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mirror {
    #[serde(default, deserialize_with = "nullable")]
    pub platform: ReleasePlatform,
    #[serde(default, deserialize_with = "nullable")]
    pub operators: Vec<Operator>,
    #[serde(default, deserialize_with = "nullable")]
    pub additional_images: Vec<AdditionalImage>,
    #[serde(default, deserialize_with = "nullable")]
    pub helm: Helm,
    #[serde(default, deserialize_with = "nullable")]
    pub blocked_images: Vec<BlockedImage>,
    /// "This is currently not implemented" in oc-mirror either.
    #[serde(default, deserialize_with = "nullable")]
    pub samples: Vec<SampleImage>,
}

/// `mirror.platform` (`type Platform`): OpenShift/OKD release payloads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleasePlatform {
    #[serde(default)]
    pub graph: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub channels: Vec<ReleaseChannel>,
    /// Deprecated in oc-mirror in favour of `platforms`; the two are mutually exclusive.
    #[serde(default, deserialize_with = "nullable")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub platforms: Vec<Platform>,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub kube_virt_container: bool,
}

impl ReleasePlatform {
    /// Whether any field is set (oc-mirror's `omitzero`).
    pub fn is_set(&self) -> bool {
        self.graph
            || !self.channels.is_empty()
            || !self.architectures.is_empty()
            || !self.platforms.is_empty()
            || self.release.as_deref().is_some_and(|r| !r.is_empty())
            || self.kube_virt_container
    }
}

/// `platform.channels[]` (`type ReleaseChannel`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseChannel {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<ReleaseType>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub shortest_path: bool,
    #[serde(default)]
    pub full: bool,
}

/// `PlatformType`: `ocp` (the default) or `okd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseType {
    Ocp,
    Okd,
}

/// `mirror.operators[]` (`type Operator`, with `IncludeConfig` inlined).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Operator {
    pub catalog: ImageSource,
    #[serde(default)]
    pub target_catalog: Option<TargetRepo>,
    #[serde(default)]
    pub target_tag: Option<Tag>,
    #[serde(default)]
    pub full: bool,
    /// Declared by oc-mirror but never read there (its catalog filter takes no such input).
    #[serde(default)]
    pub skip_dependencies: bool,
    /// ferry's extension (oc-mirror has no such field and would refuse the file): for each
    /// dependency of a kept bundle (`olm.package.required`, `olm.gvk.required`) that the
    /// selection leaves unmet, also keep the head of a channel that satisfies it.
    #[serde(default)]
    pub include_dependencies: bool,
    #[serde(default)]
    pub target_catalog_source_template: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub platforms: Vec<Platform>,
    #[serde(default, deserialize_with = "nullable")]
    pub packages: Vec<IncludePackage>,
}

/// `packages[]` (`type IncludePackage`, with `IncludeBundle` inlined).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IncludePackage {
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub channels: Vec<IncludeChannel>,
    #[serde(default)]
    pub default_channel: Option<String>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

/// `channels[]` (`type IncludeChannel`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IncludeChannel {
    pub name: String,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

/// `mirror.additionalImages[]` (`type AdditionalImage`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdditionalImage {
    pub name: ImageName,
    /// Replaces the repository path at the destination (`target-repo = [namespace '/']
    /// target-name`).
    #[serde(default)]
    pub target_repo: Option<TargetRepo>,
    #[serde(default)]
    pub target_tag: Option<Tag>,
    /// Which children of a multi-platform index to keep; empty keeps all (oc-mirror:
    /// "If empty, mirrors all platforms").
    #[serde(default, deserialize_with = "nullable")]
    pub platforms: Vec<Platform>,
}

/// `mirror.blockedImages[]` (`type BlockedImage`): `name` is a regular expression.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedImage {
    pub name: Pattern,
}

/// `mirror.samples[]` (`type SampleImage`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleImage {
    pub name: String,
}

/// `mirror.helm` (`type Helm`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    #[serde(default, deserialize_with = "nullable")]
    pub repositories: Vec<HelmRepository>,
    #[serde(default, deserialize_with = "nullable")]
    pub local: Vec<HelmChart>,
}

impl Helm {
    pub fn is_set(&self) -> bool {
        !self.repositories.is_empty() || !self.local.is_empty()
    }
}

/// `helm.repositories[]` (`type Repository`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmRepository {
    pub url: String,
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub charts: Vec<HelmChart>,
}

/// A chart (`type Chart`), in a repository or local.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmChart {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub image_paths: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub platforms: Vec<Platform>,
}

/// An image reference as written (`docker://` stripped, as oc-mirror's `ParseRef` does)
/// and parsed. oc-mirror refuses a name with neither tag nor digest ("tag and digest are
/// empty"), and so does ferry: a bundle must say which image it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// What the user wrote, without `docker://`.
    pub written: String,
    pub reference: Reference,
}

impl ImageName {
    pub fn parse(s: &str) -> Result<ImageName, ImageNameError> {
        let written = s.strip_prefix("docker://").unwrap_or(s);
        if let Some((transport, _)) = written.split_once("://") {
            return Err(ImageNameError::Transport {
                text: s.to_string(),
                transport: transport.to_string(),
            });
        }
        let reference = Reference::parse(written).map_err(|source| ImageNameError::Reference {
            text: s.to_string(),
            source,
        })?;
        if reference.tag().is_none() && reference.digest().is_none() {
            return Err(ImageNameError::NoTagOrDigest {
                text: s.to_string(),
            });
        }
        Ok(ImageName {
            written: written.to_string(),
            reference,
        })
    }
}

/// Why an image set's image name is refused. `text` is the value as the file has it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageNameError {
    #[error("{text:?} is not a reference: the {transport}:// transport is not supported: ferry pulls from registries (write host/repository:tag or host/repository@sha256:...)")]
    Transport { text: String, transport: String },
    /// oci's finding, told without repeating the reference the message opens with.
    #[error("{text:?} is not a reference: {}", finding(source))]
    Reference {
        text: String,
        #[source]
        source: ReferenceError,
    },
    #[error("{text:?} is not a reference: no tag or digest (write :latest if that is the image you mean)")]
    NoTagOrDigest { text: String },
}

/// What oci found wrong and where, without the `image reference "…":` it opens with.
fn finding(e: &ReferenceError) -> String {
    match e {
        ReferenceError::Name {
            at, kind, problem, ..
        } => format!(
            "the {kind} at byte {at}: {problem} (expected {})",
            kind.rule()
        ),
        ReferenceError::Digest { at, source, .. } => format!("the digest at byte {at}: {source}"),
        other => other.to_string(),
    }
}

/// A name's problem and where, without the `<kind> "…" is not valid:` it opens with.
fn name_finding(e: &NameError) -> String {
    format!(
        "{} (at byte {}; expected {})",
        e.problem,
        e.at,
        e.kind.rule()
    )
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reference.fmt(f)
    }
}

/// A catalog: a registry image, or (oc-mirror's `oci://` form) a local OCI layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Registry(ImageName),
    OciLayout(String),
}

impl ImageSource {
    fn parse(s: &str) -> Result<ImageSource, String> {
        match s.strip_prefix("oci://") {
            Some(path) if !path.is_empty() => Ok(ImageSource::OciLayout(path.to_string())),
            Some(_) => Err(format!("{s:?} names no OCI layout directory")),
            None => ImageName::parse(s)
                .map(ImageSource::Registry)
                .map_err(|e| e.to_string()),
        }
    }
}

/// `targetRepo` / `targetCatalog`: one or more lowercase path components
/// (`IsValidPathComponent` in type_config.go), no tag, no digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetRepo(pub String);

/// `targetTag`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(pub String);

/// A `blockedImages[].name`: compiled once, matched unanchored (see `blocked.rs`).
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl Pattern {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Reads a string and checks it inside serde_norway's visitor, so that a refusal carries
/// the scalar's line, column and field path.
struct Checked<T>(&'static str, fn(&str) -> Result<T, String>, PhantomData<T>);

impl<T> Visitor<'_> for Checked<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
}

fn checked<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    d.deserialize_str(Checked(expecting, check, PhantomData))
}

impl<'de> Deserialize<'de> for ImageName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, "an image reference", |s| {
            ImageName::parse(s).map_err(|e| e.to_string())
        })
    }
}

impl<'de> Deserialize<'de> for ImageSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, "a catalog image reference", ImageSource::parse)
    }
}

impl<'de> Deserialize<'de> for TargetRepo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, "a repository path", |s| {
            name::check_repository(s)
                .map(|()| TargetRepo(s.to_string()))
                .map_err(|e| {
                    format!(
                        "{s:?} is not a repository path (no host, tag or digest): {}",
                        name_finding(&e)
                    )
                })
        })
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, "a tag", |s| {
            name::check_tag(s)
                .map(|()| Tag(s.to_string()))
                .map_err(|e| format!("tag {s:?} is not a tag: {}", name_finding(&e)))
        })
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked(d, "a regular expression", |s| {
            // oc-mirror rejects a pattern that does not compile (validateBlockedImages).
            regex::Regex::new(s)
                .map(Pattern)
                .map_err(|e| format!("{s:?} is not a regular expression: {e}"))
        })
    }
}

/// `key:` with no value (YAML null) means "none", as Go's decoder has it; serde's
/// `default` alone would refuse the null.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
