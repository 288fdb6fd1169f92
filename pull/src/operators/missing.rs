//! `--allow-missing`: the bundles that need an image that cannot be pulled are dropped
//! from the selection (a SQLite catalog, pruned by package only, loses their packages),
//! and what is left must still be a valid catalog.

use std::collections::{BTreeMap, BTreeSet};

use catalog::filter::{BundleId, ImageUse};
use catalog::image::Kind;
use catalog::{Catalog, Filtered};

use super::DroppedBundle;
use crate::plan::Failure;

/// `--allow-missing`: removes from the selection the bundles that need a missing image (a
/// SQLite catalog: their packages), then validates what is left. Returns the bundles
/// dropped (with what each lacked) and the packages dropped whole.
pub(crate) fn drop_for_missing(
    filtered: &mut Filtered,
    kind: Kind,
    missing: &[(&ImageUse, Failure)],
) -> Result<(Vec<DroppedBundle>, Vec<String>), String> {
    let mut lacking: BTreeMap<BundleId, Vec<(String, String)>> = BTreeMap::new();
    for (u, f) in missing {
        for id in &u.needed_by {
            lacking
                .entry(id.clone())
                .or_default()
                .push((u.image.clone(), f.error.clone()));
        }
    }
    let drop: BTreeSet<BundleId> = lacking.keys().cloned().collect();
    let packages = match kind {
        Kind::Fbc => drop_bundles(&mut filtered.catalog, &drop)?,
        // `opm index prune` keeps whole packages: a bundle cannot go alone.
        Kind::Sqlite => {
            let names: BTreeSet<String> = drop.iter().map(|b| b.package.clone()).collect();
            filtered.catalog.packages.retain(|p, _| !names.contains(p));
            names.into_iter().collect()
        }
    };
    // Dropping anything changes the catalog: it is rebuilt, not carried whole.
    filtered.unchanged = false;
    let dropped = lacking
        .into_iter()
        .map(|(id, missing)| DroppedBundle {
            package: id.package,
            bundle: id.bundle,
            missing,
        })
        .collect();
    Ok((dropped, packages))
}

/// Removes `drop` from `catalog`: each bundle and its channel entries; channels left
/// empty; packages left without channels (returned). A default channel that is lost
/// becomes the one channel left, or is an error; the result must validate.
pub(crate) fn drop_bundles(
    catalog: &mut Catalog,
    drop: &BTreeSet<BundleId>,
) -> Result<Vec<String>, String> {
    let mut emptied = Vec::new();
    for (name, content) in catalog.packages.iter_mut() {
        let gone: BTreeSet<&str> = drop
            .iter()
            .filter(|b| b.package == *name)
            .map(|b| b.bundle.as_str())
            .collect();
        if gone.is_empty() {
            continue;
        }
        content.bundles.retain(|b, _| !gone.contains(b.as_str()));
        for channel in content.channels.values_mut() {
            channel.entries.retain(|e| !gone.contains(e.name.as_str()));
        }
        content.channels.retain(|_, c| !c.entries.is_empty());
        if content.channels.is_empty() {
            emptied.push(name.clone());
            continue;
        }
        let default_lost = content
            .package
            .default_channel
            .as_ref()
            .is_none_or(|d| !content.channels.contains_key(d));
        if default_lost {
            if content.channels.len() == 1 {
                content.package.default_channel = content.channels.keys().next().cloned();
            } else {
                return Err(format!(
                    "package {name:?} loses its default channel {:?}; set defaultChannel to one of {:?}, or mirror the missing images",
                    content.package.default_channel.clone().unwrap_or_default(),
                    content.channels.keys().collect::<Vec<_>>()
                ));
            }
        }
        let channels: BTreeSet<String> = content.channels.keys().cloned().collect();
        let bundles: BTreeSet<String> = content.bundles.keys().cloned().collect();
        content.deprecation = content.deprecation.take().and_then(|mut d| {
            d.entries
                .retain(|e| match (e.reference.schema.as_str(), &e.reference.name) {
                    (catalog::model::SCHEMA_BUNDLE, Some(n)) => bundles.contains(n),
                    (catalog::model::SCHEMA_CHANNEL, Some(n)) => channels.contains(n),
                    _ => true,
                });
            (!d.entries.is_empty()).then_some(d)
        });
    }
    for name in &emptied {
        catalog.packages.remove(name);
    }
    catalog.others.retain(|o| {
        o.package
            .as_ref()
            .is_none_or(|p| catalog.packages.contains_key(p))
    });
    let errors = catalog::validate(catalog);
    if !errors.is_empty() {
        let found = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        // Mostly a bundle dropped from the middle of a `replaces` chain: what is below it
        // no longer leads to the head.
        return Err(format!(
            "{found}; without the dropped bundles the channel's upgrade chain breaks: mirror their images, or select above them (minVersion) so the selection does not need them"
        ));
    }
    Ok(emptied)
}
