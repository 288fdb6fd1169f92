//! What an image set still needs of the cache, from the cache alone: each image of the set
//! is found in `index.json` by its `ref.name` (named as the resolver names it, so a tag
//! means what the cache recorded for it, not what the registry says today), and its
//! manifests are walked to the configs and layers. Each `mirror.operators[]` entry keeps
//! what its last plan recorded it produced (`.ferry/operators/`: the catalog image and its
//! bundle and related images). Everything else goes, the original catalog images among
//! them (the next plan fetches their catalog layer again).

use std::collections::{BTreeSet, HashMap};

use imageset::PullSet;
use oci::manifest;
use oci::Digest;
use registry_client::MAX_MANIFEST_BYTES;

use crate::cache::{Cache, CachedImage, PruneReport};
use crate::error::{CacheError, PullError};
use crate::options::Options;
use crate::resolve::{destination, platform_name, ref_name};

pub(crate) fn prune(
    cache: &Cache,
    set: &PullSet,
    options: &Options,
) -> Result<PruneReport, PullError> {
    let _ = options;
    let recorded = cache.images()?;
    let by_ref: HashMap<&str, &CachedImage> =
        recorded.iter().map(|i| (i.ref_name.as_str(), i)).collect();
    let mut keep_refs = BTreeSet::new();
    let mut keep_blobs = BTreeSet::new();
    for image in &set.images {
        let (repository, tag) = destination(image);
        let name = match (tag.as_deref(), image.name.reference.digest()) {
            // A tag names the image whatever digest it had: the one recorded is kept.
            (Some(t), d) => ref_name(&repository, Some(t), &d.unwrap_or(Digest([0; 32]))),
            (None, Some(d)) => ref_name(&repository, None, &d),
            // No tag and no digest: never resolved, never recorded.
            (None, None) => continue,
        };
        let Some(cached) = by_ref.get(name.as_str()) else {
            continue;
        };
        keep_refs.insert(name);
        walk(cache, cached, &mut keep_blobs)?;
    }
    for op in &set.operators {
        for name in crate::operators::recorded_refs(cache, op)? {
            let Some(cached) = by_ref.get(name.as_str()) else {
                continue;
            };
            if keep_refs.insert(name) {
                walk(cache, cached, &mut keep_blobs)?;
            }
        }
    }
    let report = cache.prune(&keep_refs, &keep_blobs)?;
    crate::operators::forget_other_records(cache, &set.operators)?;
    Ok(report)
}

/// Adds every blob of a recorded image to `keep`: its manifests, and the configs and
/// layers of the children present (for a sparse index, those of `dev.ferry.platforms`).
fn walk(cache: &Cache, image: &CachedImage, keep: &mut BTreeSet<Digest>) -> Result<(), PullError> {
    let mut stack = vec![(image.digest, 0usize)];
    while let Some((digest, depth)) = stack.pop() {
        if !keep.insert(digest) || depth > 4 {
            continue;
        }
        let bytes = cache.read_blob(&digest, MAX_MANIFEST_BYTES)?;
        let m = manifest::parse(&bytes).map_err(|e| {
            PullError::Cache(CacheError::Invalid {
                path: cache.blob_path(&digest),
                detail: format!(
                    "the manifest of {} ({}) does not parse: {e}",
                    image.ref_name, image.source
                ),
            })
        })?;
        for child in &m.manifests {
            let wanted = match (&image.platforms, depth) {
                (Some(kept), 0) => kept.contains(&platform_name(child.platform.as_ref())),
                _ => true,
            };
            // A sparse index lacks the other children by design.
            if wanted && cache.has_blob(&child.digest).is_some() {
                stack.push((child.digest, depth + 1));
            }
        }
        for d in m.config.iter().chain(m.layers.iter()) {
            if !d.is_foreign() {
                keep.insert(d.digest);
            }
        }
    }
    Ok(())
}
