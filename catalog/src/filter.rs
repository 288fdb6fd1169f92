//! Selection from `mirror.operators[]`, as oc-mirror v2 does it through catalog-filter
//! (`pkg/filter/mirror-config/v1alpha1/mirror-filter.go` and `channel.go` at
//! sherine-k/catalog-filter@2d0c61b; the ranges built by oc-mirror's
//! `internal/pkg/operator/catalog_handler.go`):
//!
//! - no packages: the head of every channel of every package; with `full`, everything;
//! - a package alone: the heads of all its channels; with `full`, all its bundles;
//! - listed channels: only those, each as above;
//! - a version range (`minVersion`/`maxVersion`, on the package or on a channel, never
//!   both, never with `full`): one segment of the `replaces` chain with the in-range
//!   `skips` of its members; out-of-range bundles on that segment are kept with a
//!   [`Warning`]; `skipRange` is not walked;
//! - channels left empty are dropped; a default channel that is lost is an error unless
//!   `defaultChannel` names a kept one; when a single channel is kept it becomes the
//!   default (ferry's addition: oc-mirror refuses, #453, #538);
//! - deprecations are trimmed to what is kept; the result is validated.
//!
//! Where ferry is stricter than catalog-filter, which ignores them silently: a package or
//! a channel the catalog lacks is an error naming what it has; a duplicate package in the
//! configuration is an error; a kept bundle is always an entry of a kept channel
//! (catalog-filter can keep a skipped bundle that is in no kept channel, which opm refuses).
//!
//! Dependencies (`olm.package.required`, `olm.gvk.required`) are not resolved by
//! oc-mirror; ferry reports each one the selection leaves unmet, and with
//! [`FilterOptions::include_dependencies`] adds the head of a channel that satisfies it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::*;
use crate::validate::{self, ValidationError};
use crate::version::{self, Dialect, Range, Version, VersionError};

/// What to select: one `mirror.operators[]` entry, its ranges parsed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub full: bool,
    pub packages: Vec<PackageFilter>,
}

#[derive(Debug, Clone, Default)]
pub struct PackageFilter {
    pub name: String,
    pub default_channel: Option<String>,
    pub range: Option<Range>,
    pub channels: Vec<ChannelFilter>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelFilter {
    pub name: String,
    pub range: Option<Range>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FilterOptions {
    /// Add, for each unmet dependency, the head of a channel that satisfies it (ferry's
    /// `includeDependencies`).
    pub include_dependencies: bool,
}

/// Why a selection cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    #[error("package {package:?}: minVersion/maxVersion: {source}")]
    Range {
        package: String,
        channel: Option<String>,
        #[source]
        source: VersionError,
    },
    #[error("package {package:?}: a version range on the package and on its channel {channel:?}: set it on one of them (oc-mirror refuses both)")]
    RangeOnBoth { package: String, channel: String },
    #[error(
        "package {package:?}: full: true cannot be mixed with minVersion/maxVersion (drop one)"
    )]
    FullWithRange { package: String },
    #[error("package {package:?} is listed twice under packages")]
    DuplicatePackage { package: String },
    #[error("the catalog has no package {missing:?}; it has {available:?}")]
    MissingPackages {
        missing: Vec<String>,
        available: Vec<String>,
    },
    #[error("package {package:?} has no channel {channel:?}; it has {available:?}")]
    MissingChannel {
        package: String,
        channel: String,
        available: Vec<String>,
    },
    #[error("package {package:?}, bundle {bundle:?}: version {version:?} is not semver, so the version range cannot be applied")]
    BundleVersion {
        package: String,
        bundle: String,
        version: String,
    },
    #[error("package {package:?}: no channel is left after filtering (range {range:?} matches no bundle)")]
    NothingLeft {
        package: String,
        range: Option<String>,
    },
    #[error("package {package:?}: the default channel {channel:?} was filtered out; set defaultChannel to one of the kept channels {kept:?}")]
    DefaultChannelLost {
        package: String,
        channel: String,
        kept: Vec<String>,
    },
    #[error(
        "package {package:?}: defaultChannel {channel:?} is not among the kept channels {kept:?}"
    )]
    DefaultChannelNotKept {
        package: String,
        channel: String,
        kept: Vec<String>,
    },
    #[error(
        "package {package:?}, bundle {bundle:?}: image {image:?} is not a reference: {reason}"
    )]
    BadImage {
        package: String,
        bundle: String,
        image: String,
        reason: String,
    },
    #[error("the catalog as selected is not valid: {}", join(.0))]
    Invalid(Vec<ValidationError>),
}

fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Filter {
    /// The filter oc-mirror builds from an image set's `mirror.operators[]` entry.
    pub fn from_operator(op: &imageset::schema::Operator) -> Result<Filter, FilterError> {
        let mut f = Filter {
            full: op.full,
            packages: Vec::new(),
        };
        for p in &op.packages {
            let range = |min: &Option<String>, max: &Option<String>, ch: Option<&str>| {
                Range::from_bounds(min.as_deref(), max.as_deref())
                    .transpose()
                    .map_err(|source| FilterError::Range {
                        package: p.name.clone(),
                        channel: ch.map(str::to_string),
                        source,
                    })
            };
            let mut pf = PackageFilter {
                name: p.name.clone(),
                default_channel: p.default_channel.clone().filter(|c| !c.is_empty()),
                range: range(&p.min_version, &p.max_version, None)?,
                channels: Vec::new(),
            };
            for c in &p.channels {
                pf.channels.push(ChannelFilter {
                    name: c.name.clone(),
                    range: range(&c.min_version, &c.max_version, Some(&c.name))?,
                });
            }
            f.packages.push(pf);
        }
        f.check()?;
        Ok(f)
    }

    /// The configuration rules of catalog-filter's `Validate` and `FilterCatalog`.
    pub fn check(&self) -> Result<(), FilterError> {
        let mut names = BTreeSet::new();
        for p in &self.packages {
            if !names.insert(&p.name) {
                return Err(FilterError::DuplicatePackage {
                    package: p.name.clone(),
                });
            }
            if p.range.is_some() {
                if let Some(c) = p.channels.iter().find(|c| c.range.is_some()) {
                    return Err(FilterError::RangeOnBoth {
                        package: p.name.clone(),
                        channel: c.name.clone(),
                    });
                }
            }
            if self.full && (p.range.is_some() || p.channels.iter().any(|c| c.range.is_some())) {
                return Err(FilterError::FullWithRange {
                    package: p.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A package and bundle name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BundleId {
    pub package: String,
    pub bundle: String,
}

/// Something kept that the user did not ask for, said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// A bundle outside the range on the kept `replaces` segment (catalog-filter's
    /// "required to ensure inclusion of all bundles in the range").
    OutOfRange {
        package: String,
        channel: String,
        bundle: String,
        version: Option<String>,
        range: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::OutOfRange {
                package,
                channel,
                bundle,
                version: Some(v),
                range,
            } => write!(f, "package {package:?}, channel {channel:?}: including bundle {bundle:?} with version {v}: it falls outside the range {range:?} but the channel needs it to reach the bundles in the range"),
            Warning::OutOfRange {
                package,
                channel,
                bundle,
                version: None,
                range,
            } => write!(f, "package {package:?}, channel {channel:?}: including bundle {bundle:?}: it has no version but the channel needs it to reach the bundles in the range {range:?}"),
        }
    }
}

/// A dependency of a kept bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type")]
pub enum Requirement {
    #[serde(rename = "olm.package.required")]
    Package(PackageRequired),
    #[serde(rename = "olm.gvk.required")]
    Gvk(Gvk),
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requirement::Package(p) => {
                write!(f, "package {:?} {}", p.package_name, p.version_range)
            }
            Requirement::Gvk(g) => write!(f, "API {}/{} {}", g.group, g.version, g.kind),
        }
    }
}

/// A dependency the selection did not satisfy, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub needed_by: BundleId,
    pub requirement: Requirement,
    pub resolution: Resolution,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "resolution", rename_all = "kebab-case")]
pub enum Resolution {
    /// Left unmet (dependencies not included, or nothing in the catalog satisfies it).
    Unmet { reason: String },
    /// Satisfied by adding the head of this channel.
    Added {
        package: String,
        channel: String,
        bundle: String,
    },
}

/// An image the selection needs, with the bundles that need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUse {
    /// As the catalog writes it.
    pub image: String,
    /// Pinned by digest (a tag must be resolved, and both recorded).
    pub by_digest: bool,
    pub needed_by: Vec<BundleId>,
}

/// The selection.
#[derive(Debug)]
pub struct Filtered {
    pub catalog: Catalog,
    /// `full: true` with no packages: the catalog as it was, to be carried byte-identical.
    pub unchanged: bool,
    pub warnings: Vec<Warning>,
    pub dependencies: Vec<Dependency>,
    /// Bundle images and related images of every kept bundle, sorted, deduplicated.
    pub images: Vec<ImageUse>,
}

/// What is kept of one package while the selection is made.
#[derive(Debug, Default)]
struct Kept {
    channels: BTreeMap<String, Vec<ChannelEntry>>,
    default_channel: Option<String>,
}

/// Selects from `catalog` what `filter` asks for.
pub fn filter(
    mut catalog: Catalog,
    filter: &Filter,
    opts: FilterOptions,
) -> Result<Filtered, FilterError> {
    filter.check()?;
    let mut warnings = Vec::new();
    let mut kept: BTreeMap<String, Kept> = BTreeMap::new();
    let unchanged = filter.full && filter.packages.is_empty();
    if unchanged {
        for (name, content) in &catalog.packages {
            kept.insert(
                name.clone(),
                Kept {
                    channels: content
                        .channels
                        .iter()
                        .map(|(n, c)| (n.clone(), c.entries.clone()))
                        .collect(),
                    default_channel: content.package.default_channel.clone(),
                },
            );
        }
    } else {
        let implicit: Vec<PackageFilter>;
        let selected: &[PackageFilter] = if filter.packages.is_empty() {
            implicit = catalog
                .packages
                .keys()
                .map(|name| PackageFilter {
                    name: name.clone(),
                    ..Default::default()
                })
                .collect();
            &implicit
        } else {
            &filter.packages
        };
        let missing: Vec<String> = selected
            .iter()
            .filter(|p| !catalog.packages.contains_key(&p.name))
            .map(|p| p.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(FilterError::MissingPackages {
                missing,
                available: catalog.package_names(),
            });
        }
        for pf in selected {
            let content = &catalog.packages[&pf.name];
            let k = select_package(content, pf, filter.full, &mut warnings)?;
            kept.insert(pf.name.clone(), k);
        }
    }

    let dependencies = dependencies(&catalog, &mut kept, opts);

    // Move what is kept out of the catalog: raw bundles are never copied.
    let mut out = Catalog::default();
    for (name, k) in kept {
        let Some(mut content) = catalog.packages.remove(&name) else {
            continue;
        };
        let mut channels = BTreeMap::new();
        for (cname, entries) in k.channels {
            let mut channel = content.channels.remove(&cname).unwrap_or_else(|| Channel {
                package: name.clone(),
                name: cname.clone(),
                entries: Vec::new(),
                properties: None,
            });
            channel.entries = entries;
            channels.insert(cname, channel);
        }
        let keep: BTreeSet<&str> = channels
            .values()
            .flat_map(|c: &Channel| c.entries.iter().map(|e| e.name.as_str()))
            .collect();
        content.bundles.retain(|b, _| keep.contains(b.as_str()));
        content.deprecation = content.deprecation.take().and_then(|mut d| {
            d.entries
                .retain(|e| match (e.reference.schema.as_str(), &e.reference.name) {
                    (SCHEMA_BUNDLE, Some(n)) => content.bundles.contains_key(n),
                    (SCHEMA_CHANNEL, Some(n)) => channels.contains_key(n),
                    _ => true,
                });
            (!d.entries.is_empty()).then_some(d)
        });
        content.channels = channels;
        content.package.default_channel = k.default_channel;
        out.packages.insert(name, content);
    }
    out.others = catalog
        .others
        .into_iter()
        .filter(|o| {
            o.package
                .as_ref()
                .is_none_or(|p| out.packages.contains_key(p))
        })
        .collect();

    let errors = validate::validate(&out);
    if !errors.is_empty() {
        return Err(FilterError::Invalid(errors));
    }
    let images = images(&out)?;
    Ok(Filtered {
        catalog: out,
        unchanged,
        warnings,
        dependencies,
        images,
    })
}

fn select_package(
    content: &PackageContent,
    pf: &PackageFilter,
    full: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Kept, FilterError> {
    let package = &content.package.name;
    let mut wanted: Vec<(&Channel, Option<&Range>)> = Vec::new();
    if pf.channels.is_empty() {
        for c in content.channels.values() {
            wanted.push((c, pf.range.as_ref()));
        }
    } else {
        for cf in &pf.channels {
            let Some(c) = content.channels.get(&cf.name) else {
                return Err(FilterError::MissingChannel {
                    package: package.clone(),
                    channel: cf.name.clone(),
                    available: content.channels.keys().cloned().collect(),
                });
            };
            wanted.push((c, cf.range.as_ref().or(pf.range.as_ref())));
        }
    }
    let mut kept = Kept::default();
    for (channel, range) in wanted {
        let entries: Vec<ChannelEntry> = match (full, range) {
            (true, Some(_)) => {
                return Err(FilterError::FullWithRange {
                    package: package.clone(),
                })
            }
            (true, None) => channel.entries.clone(),
            (false, Some(range)) => {
                let keep = range_segment(content, channel, range, warnings)?;
                channel
                    .entries
                    .iter()
                    .filter(|e| keep.contains(e.name.as_str()))
                    .cloned()
                    .collect()
            }
            (false, None) => {
                let head = validate::channel_head(channel)
                    .map_err(FilterError::Invalid)?
                    .to_string();
                channel
                    .entries
                    .iter()
                    .filter(|e| e.name == head)
                    .take(1)
                    .cloned()
                    .collect()
            }
        };
        if !entries.is_empty() {
            kept.channels.insert(channel.name.clone(), entries);
        }
    }
    let kept_names: Vec<String> = kept.channels.keys().cloned().collect();
    if kept_names.is_empty() {
        return Err(FilterError::NothingLeft {
            package: package.clone(),
            range: pf
                .range
                .as_ref()
                .or(pf.channels.iter().find_map(|c| c.range.as_ref()))
                .map(|r| r.to_string()),
        });
    }
    kept.default_channel = Some(match &pf.default_channel {
        Some(d) if kept.channels.contains_key(d) => d.clone(),
        Some(d) => {
            return Err(FilterError::DefaultChannelNotKept {
                package: package.clone(),
                channel: d.clone(),
                kept: kept_names,
            })
        }
        None => match &content.package.default_channel {
            Some(d) if kept.channels.contains_key(d) => d.clone(),
            _ if kept_names.len() == 1 => kept_names[0].clone(),
            original => {
                return Err(FilterError::DefaultChannelLost {
                    package: package.clone(),
                    channel: original.clone().unwrap_or_default(),
                    kept: kept_names,
                })
            }
        },
    });
    Ok(kept)
}

/// catalog-filter's `filterByVersionRange`: the names to keep of `channel`.
///
/// Along the `replaces` chain from the head, each member counts the in-range bundles at or
/// below it (itself, its skips, and its `replaces` successor's count), each bundle counted
/// once, by the lowest member that reaches it. The new head is the lowest member with the
/// highest count; the tail is the first member with a count of 0 (not kept). Every member
/// from head to tail is kept, with its in-range skips.
fn range_segment<'a>(
    content: &'a PackageContent,
    channel: &'a Channel,
    range: &Range,
    warnings: &mut Vec<Warning>,
) -> Result<BTreeSet<&'a str>, FilterError> {
    let package = &content.package.name;
    let mut versions: BTreeMap<&str, Option<Version>> = BTreeMap::new();
    for b in content.bundles.values() {
        let v = match &b.version_text {
            Some(text) => {
                Some(
                    version::parse_strict(text).map_err(|_| FilterError::BundleVersion {
                        package: package.clone(),
                        bundle: b.name.clone(),
                        version: text.clone(),
                    })?,
                )
            }
            None => None,
        };
        versions.insert(&b.name, v);
    }
    let in_range = |name: &str| {
        versions
            .get(name)
            .and_then(|v| v.as_ref())
            .is_some_and(|v| range.contains(v))
    };
    let head = validate::channel_head(channel).map_err(FilterError::Invalid)?;
    let entries: BTreeMap<&str, &ChannelEntry> = channel
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e))
        .collect();
    let skips = |name: &str| -> &'a [String] {
        entries
            .get(name)
            .map(|e| e.skips.as_slice())
            .unwrap_or_default()
    };
    // The replaces chain, head first (validation has ruled out cycles; the guard is for
    // chains that leave the channel and loop among absent names).
    let mut chain: Vec<&str> = vec![head];
    let mut on_chain: BTreeSet<&str> = BTreeSet::from([head]);
    while let Some(next) = entries
        .get(chain[chain.len() - 1])
        .and_then(|e| e.replaces.as_deref())
    {
        if !on_chain.insert(next) {
            break;
        }
        chain.push(next);
    }
    let mut counts = vec![0usize; chain.len()];
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for i in (0..chain.len()).rev() {
        let mut count = counts.get(i + 1).copied().unwrap_or(0);
        let name = chain[i];
        if !seen.contains(name) && in_range(name) {
            seen.insert(name);
            count += 1;
        }
        for s in skips(name) {
            if !seen.contains(s.as_str()) && in_range(s) {
                seen.insert(s);
                count += 1;
            }
        }
        counts[i] = count;
    }
    let mut new_head = 0;
    let mut tail = chain.len();
    let mut max = None;
    for (i, &count) in counts.iter().enumerate() {
        if max.is_none_or(|m| count >= m) {
            new_head = i;
            max = Some(count);
        }
        if count == 0 {
            tail = i;
            break;
        }
    }
    let mut keep = BTreeSet::new();
    for &name in chain.iter().take(tail).skip(new_head) {
        if !in_range(name) {
            warnings.push(Warning::OutOfRange {
                package: package.clone(),
                channel: channel.name.clone(),
                bundle: name.to_string(),
                version: content
                    .bundles
                    .get(name)
                    .and_then(|b| b.version_text.clone()),
                range: range.to_string(),
            });
        }
        keep.insert(name);
        for s in skips(name) {
            if in_range(s) {
                keep.insert(s.as_str());
            }
        }
    }
    Ok(keep)
}

/// The unmet dependencies of the kept bundles; with `include_dependencies`, each is
/// satisfied (when the catalog can) by adding a channel head, until nothing changes.
fn dependencies(
    catalog: &Catalog,
    kept: &mut BTreeMap<String, Kept>,
    opts: FilterOptions,
) -> Vec<Dependency> {
    let mut report: BTreeMap<(BundleId, Requirement), Resolution> = BTreeMap::new();
    loop {
        let mut added = false;
        let snapshot: Vec<&Bundle> = kept_bundles(catalog, kept);
        // What satisfies a requirement: the snapshot, refreshed after each addition.
        let mut current = snapshot.clone();
        let mut needs = Vec::new();
        for b in &snapshot {
            for p in &b.requires_packages {
                needs.push((b, Requirement::Package(p.clone())));
            }
            for g in &b.requires_gvks {
                needs.push((b, Requirement::Gvk(g.clone())));
            }
        }
        for (b, req) in needs {
            let id = BundleId {
                package: b.package.clone(),
                bundle: b.name.clone(),
            };
            let key = (id, req.clone());
            if report.contains_key(&key) {
                continue;
            }
            let satisfied = match satisfies(&req) {
                Ok(test) => current.iter().any(|k| test(k)),
                Err(reason) => {
                    report.insert(key, Resolution::Unmet { reason });
                    continue;
                }
            };
            if satisfied {
                continue;
            }
            if !opts.include_dependencies {
                report.insert(
                    key,
                    Resolution::Unmet {
                        reason: "not in the selection (includeDependencies adds it)".to_string(),
                    },
                );
                continue;
            }
            let resolution = match add_head(catalog, kept, &req) {
                Some((package, channel, bundle)) => {
                    added = true;
                    current = kept_bundles(catalog, kept);
                    Resolution::Added {
                        package,
                        channel,
                        bundle,
                    }
                }
                None => Resolution::Unmet {
                    reason: "no channel head in the catalog satisfies it that can be added"
                        .to_string(),
                },
            };
            report.insert(key, resolution);
        }
        if !added {
            break;
        }
    }
    report
        .into_iter()
        .map(|((needed_by, requirement), resolution)| Dependency {
            needed_by,
            requirement,
            resolution,
        })
        .collect()
}

fn kept_bundles<'a>(catalog: &'a Catalog, kept: &BTreeMap<String, Kept>) -> Vec<&'a Bundle> {
    let mut out = Vec::new();
    for (package, k) in kept {
        let Some(content) = catalog.packages.get(package) else {
            continue;
        };
        let names: BTreeSet<&str> = k
            .channels
            .values()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        out.extend(names.into_iter().filter_map(|n| content.bundles.get(n)));
    }
    out
}

type Test = Box<dyn Fn(&Bundle) -> bool>;

fn satisfies(req: &Requirement) -> Result<Test, String> {
    match req {
        Requirement::Package(p) => {
            let range = Range::parse(&p.version_range, Dialect::Blang)
                .map_err(|e| format!("its versionRange is unreadable: {e}"))?;
            let name = p.package_name.clone();
            Ok(Box::new(move |b: &Bundle| {
                b.package == name && b.version.as_ref().is_some_and(|v| range.contains(v))
            }))
        }
        Requirement::Gvk(g) => {
            let g = g.clone();
            Ok(Box::new(move |b: &Bundle| b.provides.contains(&g)))
        }
    }
}

/// Adds the head of the first channel (packages by name, the default channel first) whose
/// head satisfies `req` and can be added without giving a kept channel a second head.
fn add_head(
    catalog: &Catalog,
    kept: &mut BTreeMap<String, Kept>,
    req: &Requirement,
) -> Option<(String, String, String)> {
    let test = satisfies(req).ok()?;
    let packages: Vec<&PackageContent> = match req {
        Requirement::Package(p) => catalog.packages.get(&p.package_name).into_iter().collect(),
        Requirement::Gvk(_) => catalog.packages.values().collect(),
    };
    for content in packages {
        let default = content.package.default_channel.as_deref();
        let mut channels: Vec<&Channel> = content.channels.values().collect();
        channels.sort_by_key(|c| (Some(c.name.as_str()) != default, c.name.clone()));
        for channel in channels {
            let Ok(head) = validate::channel_head(channel) else {
                continue;
            };
            let Some(bundle) = content.bundles.get(head) else {
                continue;
            };
            if !test(bundle) {
                continue;
            }
            let Some(entry) = channel.entries.iter().find(|e| e.name == head) else {
                continue;
            };
            let name = content.package.name.clone();
            match kept.get_mut(&name) {
                None => {
                    let mut k = Kept::default();
                    k.channels.insert(channel.name.clone(), vec![entry.clone()]);
                    k.default_channel = Some(channel.name.clone());
                    kept.insert(name.clone(), k);
                }
                Some(k) => match k.channels.get(&channel.name) {
                    None => {
                        k.channels.insert(channel.name.clone(), vec![entry.clone()]);
                    }
                    // Kept already, without its head: adding it would make two heads.
                    Some(_) => continue,
                },
            }
            return Some((name, channel.name.clone(), head.to_string()));
        }
    }
    None
}

/// Every bundle image and related image of `catalog`.
pub(crate) fn images(catalog: &Catalog) -> Result<Vec<ImageUse>, FilterError> {
    let mut by_image: BTreeMap<&str, BTreeSet<BundleId>> = BTreeMap::new();
    for content in catalog.packages.values() {
        for b in content.bundles.values() {
            let id = BundleId {
                package: b.package.clone(),
                bundle: b.name.clone(),
            };
            let related = b.related_images.iter().map(|r| r.image.as_str());
            for image in std::iter::once(b.image.as_str()).chain(related) {
                if !image.is_empty() {
                    by_image.entry(image).or_default().insert(id.clone());
                }
            }
        }
    }
    by_image
        .into_iter()
        .map(|(image, needed_by)| {
            let reference = oci::Reference::parse(image).map_err(|e| {
                let first = needed_by.iter().next().cloned().unwrap_or(BundleId {
                    package: String::new(),
                    bundle: String::new(),
                });
                FilterError::BadImage {
                    package: first.package,
                    bundle: first.bundle,
                    image: image.to_string(),
                    reason: e.to_string(),
                }
            })?;
            Ok(ImageUse {
                image: image.to_string(),
                by_digest: reference.digest().is_some(),
                needed_by: needed_by.into_iter().collect(),
            })
        })
        .collect()
}
