//! The checks a catalog must pass before OLM serves it (catalog-filter's `newChannel` and
//! opm's model validation): every channel has entries, exactly one head (the entry no
//! other entry replaces or skips), no cycle in its upgrade graph, every entry a bundle of
//! the package, and a default channel that exists.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::{Catalog, Channel, PackageContent};

/// A finding; each names the package, and the channel and bundles where it applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    #[error("package {package:?}, channel {channel:?}: the channel has no entries")]
    NoEntries { package: String, channel: String },
    #[error("package {package:?}, channel {channel:?}: entry {bundle:?} is listed twice")]
    DuplicateEntry {
        package: String,
        channel: String,
        bundle: String,
    },
    #[error("package {package:?}, channel {channel:?}: entry {bundle:?} replaces or skips itself")]
    SelfEdge {
        package: String,
        channel: String,
        bundle: String,
    },
    #[error("package {package:?}, channel {channel:?}: no head (every entry is replaced or skipped by another: a cycle)")]
    NoHead { package: String, channel: String },
    #[error("package {package:?}, channel {channel:?}: more than one head: {heads:?} (each is replaced or skipped by no other entry)")]
    MultipleHeads {
        package: String,
        channel: String,
        heads: Vec<String>,
    },
    #[error("package {package:?}, channel {channel:?}: a cycle in the upgrade graph through {bundles:?}")]
    Cycle {
        package: String,
        channel: String,
        bundles: Vec<String>,
    },
    #[error("package {package:?}, channel {channel:?}: entry {bundle:?} has no olm.bundle in the package")]
    MissingBundle {
        package: String,
        channel: String,
        bundle: String,
    },
    #[error("package {package:?}: the default channel {channel:?} is not in the catalog (it has {channels:?})")]
    MissingDefaultChannel {
        package: String,
        channel: String,
        channels: Vec<String>,
    },
    #[error("package {package:?}: no default channel")]
    NoDefaultChannel { package: String },
    #[error("package {package:?}: no channels")]
    NoChannels { package: String },
}

/// The head of `channel`, after the checks of catalog-filter's `newChannel`.
pub fn channel_head(channel: &Channel) -> Result<&str, Vec<ValidationError>> {
    let (package, name) = (channel.package.clone(), channel.name.clone());
    if channel.entries.is_empty() {
        return Err(vec![ValidationError::NoEntries {
            package,
            channel: name,
        }]);
    }
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    // incoming[x] = the entries whose replaces or skips name x.
    let mut incoming: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &channel.entries {
        if !seen.insert(e.name.as_str()) {
            errors.push(ValidationError::DuplicateEntry {
                package: package.clone(),
                channel: name.clone(),
                bundle: e.name.clone(),
            });
            continue;
        }
        for target in e.replaces.iter().chain(&e.skips) {
            if *target == e.name {
                errors.push(ValidationError::SelfEdge {
                    package: package.clone(),
                    channel: name.clone(),
                    bundle: e.name.clone(),
                });
            }
            incoming
                .entry(target.as_str())
                .or_default()
                .insert(e.name.as_str());
            edges
                .entry(e.name.as_str())
                .or_default()
                .push(target.as_str());
        }
    }
    let mut heads: Vec<&str> = Vec::new();
    for e in &channel.entries {
        if incoming.get(e.name.as_str()).is_none_or(|s| s.is_empty())
            && !heads.contains(&e.name.as_str())
        {
            heads.push(&e.name);
        }
    }
    match heads.len() {
        0 => errors.push(ValidationError::NoHead {
            package: package.clone(),
            channel: name.clone(),
        }),
        1 => {}
        _ => {
            let mut names: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
            names.sort();
            errors.push(ValidationError::MultipleHeads {
                package: package.clone(),
                channel: name.clone(),
                heads: names,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Kahn's walk from the head: what keeps an incoming edge lies on a cycle.
    let head = heads[0];
    let mut queue = VecDeque::from([head]);
    while let Some(cur) = queue.pop_front() {
        for &target in edges.get(cur).map(Vec::as_slice).unwrap_or_default() {
            if let Some(from) = incoming.get_mut(target) {
                if from.remove(cur) && from.is_empty() {
                    incoming.remove(target);
                    queue.push_back(target);
                }
            }
        }
    }
    if !incoming.is_empty() {
        return Err(vec![ValidationError::Cycle {
            package,
            channel: name,
            bundles: incoming.keys().map(|k| k.to_string()).collect(),
        }]);
    }
    Ok(head)
}

/// Every finding in `catalog`, package by package; empty when it is valid.
pub fn validate(catalog: &Catalog) -> Vec<ValidationError> {
    catalog
        .packages
        .values()
        .flat_map(validate_package)
        .collect()
}

pub fn validate_package(content: &PackageContent) -> Vec<ValidationError> {
    let package = &content.package.name;
    let mut errors = Vec::new();
    if content.channels.is_empty() {
        errors.push(ValidationError::NoChannels {
            package: package.clone(),
        });
    }
    match &content.package.default_channel {
        Some(d) if !content.channels.contains_key(d) && !content.channels.is_empty() => errors
            .push(ValidationError::MissingDefaultChannel {
                package: package.clone(),
                channel: d.clone(),
                channels: content.channels.keys().cloned().collect(),
            }),
        None if !content.channels.is_empty() => errors.push(ValidationError::NoDefaultChannel {
            package: package.clone(),
        }),
        _ => {}
    }
    for channel in content.channels.values() {
        if let Err(e) = channel_head(channel) {
            errors.extend(e);
        }
        for e in &channel.entries {
            if !content.bundles.contains_key(&e.name) {
                errors.push(ValidationError::MissingBundle {
                    package: package.clone(),
                    channel: channel.name.clone(),
                    bundle: e.name.clone(),
                });
            }
        }
    }
    errors
}
