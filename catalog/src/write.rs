//! A catalog written back as files, deterministically: the same catalog gives the same
//! bytes, whatever order it was read in.
//!
//! One `configs/<package>/catalog.json` per package, a stream of JSON objects as
//! `opm render -o json` writes them (four-space indent, one object after another): the
//! `olm.package`, its `olm.channel`s by name (entries by name), its `olm.bundle`s by name
//! (each the bytes it was read as), its `olm.deprecations` (entries in catalog order),
//! then objects of other schemas that name the package, in catalog order. Objects of
//! other schemas that name no package go to `configs/others.json`.
//!
//! [`list`] is what `ferry-pack catalog list` prints.

use std::io::Write as _;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::*;
use crate::validate;

/// One file of a written catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFile {
    /// Relative, `/`-separated, starting with `configs/`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Why a catalog cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("package {package:?}: the name cannot be a directory name (it holds '/', a NUL, starts with the whiteout prefix .wh., or is '.', '..' or empty), so ferry cannot write configs/<package>/catalog.json")]
    PackageName { package: String },
    #[error("package {package:?}, bundle {bundle:?}: the catalog was read without raw bundles, so it cannot be written (fill them in with fill_raw_dir or fill_raw_tar)")]
    NoRaw { package: String, bundle: String },
}

pub const OTHERS_FILE: &str = "configs/others.json";

/// The files of `catalog`, sorted by path.
pub fn write(catalog: &Catalog) -> Result<Vec<CatalogFile>, WriteError> {
    let mut files = Vec::new();
    for (name, content) in &catalog.packages {
        // `.wh.`: a layer's whiteout prefix (OCI image-spec), which runtimes act on.
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains(['/', '\0'])
            || name.starts_with(".wh.")
        {
            return Err(WriteError::PackageName {
                package: name.clone(),
            });
        }
        let mut out = Vec::new();
        object(&mut out, &PackageOut::new(&content.package));
        for channel in content.channels.values() {
            let mut entries = channel.entries.clone();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            object(
                &mut out,
                &ChannelOut {
                    schema: SCHEMA_CHANNEL,
                    name: &channel.name,
                    package: &channel.package,
                    entries,
                    properties: channel.properties.as_deref(),
                },
            );
        }
        for bundle in content.bundles.values() {
            let raw = bundle.raw.as_ref().ok_or_else(|| WriteError::NoRaw {
                package: name.clone(),
                bundle: bundle.name.clone(),
            })?;
            out.extend_from_slice(raw.get().as_bytes());
            out.push(b'\n');
        }
        if let Some(d) = &content.deprecation {
            object(
                &mut out,
                &DeprecationOut {
                    schema: SCHEMA_DEPRECATIONS,
                    package: &d.package,
                    entries: &d.entries,
                },
            );
        }
        for other in catalog
            .others
            .iter()
            .filter(|o| o.package.as_deref() == Some(name))
        {
            out.extend_from_slice(other.raw.get().as_bytes());
            out.push(b'\n');
        }
        files.push(CatalogFile {
            path: format!("configs/{name}/catalog.json"),
            bytes: out,
        });
    }
    let mut out = Vec::new();
    for other in catalog.others.iter().filter(|o| {
        o.package
            .as_ref()
            .is_none_or(|p| !catalog.packages.contains_key(p))
    }) {
        out.extend_from_slice(other.raw.get().as_bytes());
        out.push(b'\n');
    }
    if !out.is_empty() {
        files.push(CatalogFile {
            path: OTHERS_FILE.to_string(),
            bytes: out,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn object<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    let mut ser = serde_json::Serializer::with_formatter(
        &mut *out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    // Serializing these plain structs into a Vec cannot fail.
    value
        .serialize(&mut ser)
        .expect("catalog objects serialize");
    let _ = writeln!(out);
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PackageOut<'a> {
    schema: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a RawValue>,
}

impl<'a> PackageOut<'a> {
    fn new(p: &'a Package) -> Self {
        PackageOut {
            schema: SCHEMA_PACKAGE,
            name: &p.name,
            default_channel: p.default_channel.as_deref(),
            icon: p.icon.as_deref(),
            description: p.description.as_deref(),
            properties: p.properties.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct ChannelOut<'a> {
    schema: &'static str,
    name: &'a str,
    package: &'a str,
    entries: Vec<ChannelEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct DeprecationOut<'a> {
    schema: &'static str,
    package: &'a str,
    entries: &'a [DeprecationEntry],
}

/// `catalog list`: packages with their default channel, channels with head and versions,
/// and the bundles of one package when asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub packages: Vec<PackageListing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundles: Option<Vec<BundleListing>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageListing {
    pub name: String,
    pub default_channel: Option<String>,
    pub channels: Vec<ChannelListing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelListing {
    pub name: String,
    /// `None` when the channel has no single head (the error says why).
    pub head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The versions of its entries, lowest first (semver order; unversioned left out).
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleListing {
    pub name: String,
    pub version: Option<String>,
    pub image: String,
    pub channels: Vec<String>,
}

/// The listing as people read it (both `catalog list` commands print this): each package
/// with its default channel, each channel with its head and versions; then the bundles of
/// the package asked for.
impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "packages: {}", self.packages.len())?;
        for p in &self.packages {
            writeln!(
                f,
                "  {} (default channel: {})",
                p.name,
                p.default_channel.as_deref().unwrap_or("none")
            )?;
            for c in &p.channels {
                let head = match (&c.head, &c.error) {
                    (Some(h), _) => format!("head {h}"),
                    (None, Some(e)) => format!("no head: {e}"),
                    (None, None) => "no head".to_owned(),
                };
                let versions = if c.versions.is_empty() {
                    "none".to_owned()
                } else {
                    c.versions.join(", ")
                };
                writeln!(f, "    channel {}: {head}; versions {versions}", c.name)?;
            }
        }
        if let Some(bundles) = &self.bundles {
            writeln!(f, "bundles: {}", bundles.len())?;
            for b in bundles {
                writeln!(
                    f,
                    "  {} {} {} (channels {})",
                    b.name,
                    b.version.as_deref().unwrap_or("(no version)"),
                    b.image,
                    b.channels.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

/// Why a listing cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the catalog has no package {package:?}; it has {available:?}")]
pub struct NoSuchPackage {
    pub package: String,
    pub available: Vec<String>,
}

/// The listing of `catalog`: only `package` when given, with its bundles.
pub fn list(catalog: &Catalog, package: Option<&str>) -> Result<Listing, NoSuchPackage> {
    let contents: Vec<&PackageContent> = match package {
        Some(p) => vec![catalog.packages.get(p).ok_or_else(|| NoSuchPackage {
            package: p.to_string(),
            available: catalog.package_names(),
        })?],
        None => catalog.packages.values().collect(),
    };
    let packages = contents
        .iter()
        .map(|c| PackageListing {
            name: c.package.name.clone(),
            default_channel: c.package.default_channel.clone(),
            channels: c
                .channels
                .values()
                .map(|ch| {
                    let head = validate::channel_head(ch);
                    let mut versions: Vec<&crate::version::Version> = ch
                        .entries
                        .iter()
                        .filter_map(|e| c.bundles.get(&e.name)?.version.as_ref())
                        .collect();
                    versions.sort_by(|a, b| a.cmp_precedence(b).then_with(|| a.cmp(b)));
                    versions.dedup();
                    ChannelListing {
                        name: ch.name.clone(),
                        head: head.as_ref().ok().map(|h| h.to_string()),
                        error: head.err().map(|e| {
                            e.iter()
                                .map(|e| e.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        }),
                        versions: versions.iter().map(|v| v.to_string()).collect(),
                    }
                })
                .collect(),
        })
        .collect();
    let bundles = package.map(|_| {
        let c = contents[0];
        c.bundles
            .values()
            .map(|b| BundleListing {
                name: b.name.clone(),
                version: b.version_text.clone(),
                image: b.image.clone(),
                channels: c
                    .channels
                    .values()
                    .filter(|ch| ch.entries.iter().any(|e| e.name == b.name))
                    .map(|ch| ch.name.clone())
                    .collect(),
            })
            .collect()
    });
    Ok(Listing { packages, bundles })
}
