//! The objects of a file-based catalog (operator-registry `alpha/declcfg/declcfg.go`), as
//! ferry holds them: the fields selection needs, parsed; everything else raw.
//!
//! An `olm.bundle` is carried as the exact bytes it was read as ([`Bundle::raw`]); only its
//! name, package, image, related images and the four properties selection reads
//! (`olm.package`, `olm.package.required`, `olm.gvk`, `olm.gvk.required`) are decoded.
//! `olm.bundle.object` (a base64 manifest, often hundreds of kB) is never decoded.
//!
//! `olm.package`, `olm.channel` and `olm.deprecations` are decoded into declcfg's fields
//! (their raw members, `icon` and `properties`, stay raw) and written from them, so a
//! member declcfg does not define is not carried, as it is not by `opm render`. Objects of
//! other schemas are carried whole ([`Other`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::version::Version;

pub const SCHEMA_PACKAGE: &str = "olm.package";
pub const SCHEMA_CHANNEL: &str = "olm.channel";
pub const SCHEMA_BUNDLE: &str = "olm.bundle";
pub const SCHEMA_DEPRECATIONS: &str = "olm.deprecations";

/// A whole catalog, by package (sorted by name, so every walk is deterministic).
#[derive(Debug, Default)]
pub struct Catalog {
    pub packages: BTreeMap<String, PackageContent>,
    /// Objects of schemas ferry does not know, carried unchanged (opm's `Others`).
    pub others: Vec<Other>,
}

/// One package and everything that names it.
#[derive(Debug)]
pub struct PackageContent {
    pub package: Package,
    pub channels: BTreeMap<String, Channel>,
    pub bundles: BTreeMap<String, Bundle>,
    pub deprecation: Option<Deprecation>,
}

/// `olm.package`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_channel: Option<String>,
    /// `{base64data, mediatype}`, carried byte-exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Box<RawValue>>,
}

/// `olm.channel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Channel {
    pub package: String,
    pub name: String,
    pub entries: Vec<ChannelEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Box<RawValue>>,
}

/// One `entries[]` item of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_range: Option<String>,
}

/// `olm.bundle`: what selection reads, and the object itself.
#[derive(Debug)]
pub struct Bundle {
    pub name: String,
    pub package: String,
    pub image: String,
    /// The `olm.package` property's `version` as written.
    pub version_text: Option<String>,
    /// That version parsed (strict semver, as opm); `None` when absent or not semver.
    pub version: Option<Version>,
    pub related_images: Vec<RelatedImage>,
    /// `olm.gvk` properties: the APIs the bundle provides.
    pub provides: Vec<Gvk>,
    /// `olm.package.required` properties.
    pub requires_packages: Vec<PackageRequired>,
    /// `olm.gvk.required` properties.
    pub requires_gvks: Vec<Gvk>,
    /// The object as read (JSON; a YAML document re-encoded as JSON once), written back
    /// unchanged. `None` when the catalog was read without raw bundles (listing).
    pub raw: Option<Box<RawValue>>,
}

/// `relatedImages[]` of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedImage {
    #[serde(default)]
    pub name: String,
    pub image: String,
}

/// An API: `olm.gvk` / `olm.gvk.required` value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// `olm.package.required` value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRequired {
    pub package_name: String,
    pub version_range: String,
}

/// `olm.deprecations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deprecation {
    pub package: String,
    pub entries: Vec<DeprecationEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeprecationEntry {
    pub reference: DeprecationReference,
    pub message: String,
}

/// What is deprecated: the package (`olm.package`, no name), a channel or a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeprecationReference {
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An object of another schema, carried unchanged.
#[derive(Debug)]
pub struct Other {
    pub schema: String,
    pub package: Option<String>,
    pub raw: Box<RawValue>,
}

impl Catalog {
    pub fn package(&self, name: &str) -> Option<&PackageContent> {
        self.packages.get(name)
    }

    /// Names of the packages, sorted.
    pub fn package_names(&self) -> Vec<String> {
        self.packages.keys().cloned().collect()
    }
}
