//! Operator catalogs (`mirror.operators[]`, issue 12) in the plan: each catalog image is
//! resolved like an `additionalImages` entry, its catalog read from the one layer that
//! holds it (fetched into the cache on first open, as a fetch downloads any blob), the
//! selection made (`catalog::filter` for a file-based catalog, `catalog::sqlite::select`
//! for a SQLite one), the images the selection needs resolved like `additionalImages`
//! (blocked ones left out and named), and the catalog rebuilt holding only what is kept
//! (`catalog::image::rebuild`: its new blobs go straight into the cache; its base layers
//! are the original's, fetched by [`crate::fetch`] like any blob).
//!
//! What the plan packs for a catalog is the rebuilt image, named for the destination
//! (`targetCatalog`, else the source's path; `targetTag`, else the source's tag, none for a
//! catalog by digest), recorded with `dev.ferry.catalog-packages`. `full: true` without
//! packages carries the original image as it is (byte-identical, so its signature stays
//! valid). The original is otherwise not recorded: its blobs stay in the cache until
//! `cache prune`.
//!
//! Bundle and related images go to their source path: by digest as `repo@sha256:…`, by
//! tag resolved and recorded by tag. One that cannot be pulled fails, naming the bundles
//! that need it; with [`Options::allow_missing`] those bundles are dropped from the
//! rebuilt catalog instead (their channel entries with them, channels left empty dropped,
//! a package left with nothing dropped, the result validated again), and named in the
//! catalog's [`CatalogPlan`]. A SQLite catalog is pruned by package only, so there the
//! packages of those bundles are dropped whole.
//!
//! For `cache prune`, which reads only the cache, each entry's plan writes the cache names
//! it produced (the catalog image, its bundle and related images) to
//! `CACHE/.ferry/operators/<key>.json` (see [`crate::cache`]).
//!
//! Beside this module: `blobs.rs` (the cache as the catalog reader's `Blobs` and `Sink`),
//! `missing.rs` (`--allow-missing`), `records.rs` (what `cache prune` keeps) and
//! `fields.rs` (where in the entry a selection error belongs).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use catalog::filter::{BundleId, Dependency, ImageUse, Warning};
use catalog::image::{self as cimage, Kind, Loaded, NewContent, Source};
use catalog::{Filter, FilterError, FilterOptions, Filtered};
use imageset::schema::ImageName;
use imageset::{PullImage, PullOperator, PullSet};
use oci::{manifest, Digest, Reference};
use registry_client::MAX_MANIFEST_BYTES;
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{CacheError, Field, PullError};
use crate::event::Event;
use crate::options::Options;
use crate::plan::{Failure, ResolvedImage};
use crate::resolve::{now_rfc3339, ref_name, resolve_all};
use crate::sources::Sources;

/// Where the catalog of each entry is read and pruned (removed once the entry is done).
const SCRATCH_DIR: &str = "catalogs";

/// What the plan made of one `mirror.operators[]` entry.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogPlan {
    /// The catalog reference as the image set wrote it, canonical.
    pub catalog: String,
    /// Its position in `mirror.operators`.
    pub index: usize,
    pub kind: Kind,
    /// The original image's top digest.
    pub source_digest: Digest,
    /// The cache name of the catalog image that is packed (rebuilt, or the original).
    pub ref_name: String,
    /// Its digest.
    pub digest: Digest,
    /// `full: true` with no packages: the original carried byte-identical.
    pub unchanged: bool,
    /// The packages kept, sorted.
    pub packages: Vec<String>,
    /// Bundles kept (over every package).
    pub bundles: usize,
    pub warnings: Vec<Warning>,
    /// The dependencies the selection leaves unmet, or that `includeDependencies` added.
    pub dependencies: Vec<Dependency>,
    /// The bundle and related images the kept bundles need (as the catalog writes them),
    /// blocked ones left out.
    pub images: Vec<String>,
    /// Images the catalog names that `blockedImages` blocks: (image, pattern).
    pub blocked: Vec<(String, String)>,
    /// `--allow-missing`: the bundles dropped because an image they need could not be
    /// pulled.
    pub dropped: Vec<DroppedBundle>,
    /// Packages dropped whole by `--allow-missing` (every bundle lost, or a SQLite
    /// catalog, which is pruned by package only).
    pub dropped_packages: Vec<String>,
    /// Original layers the rebuilt image leaves out, with why.
    pub dropped_layers: Vec<(Digest, String)>,
}

/// A bundle `--allow-missing` dropped, and the images it lacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedBundle {
    pub package: String,
    pub bundle: String,
    /// Each image that could not be pulled, with the error.
    pub missing: Vec<(String, String)>,
}

/// What the operators of a set add to the plan.
#[derive(Debug, Default)]
pub(crate) struct Operators {
    pub(crate) images: Vec<ResolvedImage>,
    pub(crate) failed: Vec<Failure>,
    pub(crate) catalogs: Vec<CatalogPlan>,
}

/// The destination of a catalog entry's image: `targetCatalog`, else the source's path;
/// `targetTag`, else the source's tag (none for a catalog by digest alone).
pub(crate) fn catalog_destination(op: &PullOperator) -> (String, Option<String>) {
    let r = &op.catalog.reference;
    let repository = op
        .target_catalog
        .clone()
        .unwrap_or_else(|| r.path().to_owned());
    let tag = op.target_tag.clone().or_else(|| r.tag().map(str::to_owned));
    (repository, tag)
}

/// The entry of the set that resolves a catalog image (or a bundle or related image).
fn entry_for(name: ImageName, platforms: Vec<imageset::Platform>, index: usize) -> PullImage {
    PullImage {
        name,
        target_repo: None,
        target_tag: None,
        platforms,
        index,
    }
}

/// A bundle or related image as the catalog writes it, as an entry resolved to its source
/// path: one with a digest is pulled and named by the digest alone (`repo@sha256:…`),
/// one with only a tag by its tag.
pub(crate) fn needed_entry(
    image: &str,
    platforms: &[imageset::Platform],
    index: usize,
) -> Result<PullImage, String> {
    let name = ImageName::parse(image).map_err(|e| e.to_string())?;
    let name = match name.reference.digest() {
        Some(d) if name.reference.tag().is_some() => {
            let reference = name.reference.repository_only().with_digest(d);
            ImageName {
                written: reference.to_string(),
                reference,
            }
        }
        _ => name,
    };
    Ok(entry_for(name, platforms.to_vec(), index))
}

/// `needed by bundle b1 (package p), bundle b2 (package p)`.
fn needed_by_text(ids: &[BundleId]) -> String {
    let names: Vec<String> = ids
        .iter()
        .map(|b| format!("bundle {} (package {})", b.bundle, b.package))
        .collect();
    format!("needed by {}", names.join(", "))
}

/// Plans every `mirror.operators[]` entry of `set`, one catalog after the other (the
/// images of each are resolved `options.jobs` at a time).
pub(crate) fn plan_operators(
    cache: &Cache,
    sources: &Sources<'_>,
    set: &PullSet,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Operators, PullError> {
    let mut out = Operators::default();
    for op in &set.operators {
        plan_one(cache, sources, set, op, options, events, &mut out)?;
    }
    Ok(out)
}

/// The children of `image`'s index that the plan kept (None: all, or not an index).
fn kept_children(cache: &Cache, image: &ResolvedImage) -> Result<Option<Vec<Digest>>, PullError> {
    if image.platforms_kept.is_none() {
        return Ok(None);
    }
    let bytes = cache.read_blob(&image.digest, MAX_MANIFEST_BYTES)?;
    let m = manifest::parse(&bytes).map_err(|e| {
        PullError::Cache(CacheError::Invalid {
            path: cache.blob_path(&image.digest),
            detail: format!("the index of {} does not parse: {e}", image.source),
        })
    })?;
    let planned: HashSet<Digest> = image.manifests.iter().map(|(d, _)| *d).collect();
    Ok(Some(
        m.manifests
            .iter()
            .map(|c| c.digest)
            .filter(|d| planned.contains(d))
            .collect(),
    ))
}

/// A fresh scratch directory for the catalog of `digest`.
fn scratch_dir(cache: &Cache, digest: &Digest, prefix: &str) -> Result<PathBuf, PullError> {
    let dir = cache
        .root()
        .join(".ferry")
        .join(SCRATCH_DIR)
        .join(format!("{prefix}{}", digest.hex()));
    let io = |e| {
        PullError::Cache(CacheError::Io {
            path: dir.clone(),
            source: e,
        })
    };
    // A killed run's leftovers are not reused: the read writes them anew.
    match fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    fs::create_dir_all(&dir).map_err(io)?;
    Ok(dir)
}

/// The catalog read from `image` (resolved), or why not: a failure of the image, or an
/// error of the run.
fn read_catalog(
    blobs: &CacheBlobs<'_>,
    image: &ResolvedImage,
    kept: Option<&[Digest]>,
    scratch: &Path,
) -> Result<Result<Loaded, Failure>, PullError> {
    let source = Source {
        digest: image.digest,
        media_type: &image.media_type,
        kept,
    };
    match cimage::read(blobs, &source, scratch) {
        Ok(l) => Ok(Ok(l)),
        Err(e) => match blobs.run_error() {
            Some(run) => Err(run),
            None => Ok(Err(Failure {
                reference: image.source.clone(),
                registry: image.endpoint.clone(),
                error: format!("cannot read the operator catalog: {e}"),
            })),
        },
    }
}

/// Resolves the one image of `entry`; its failure is told as an event and returned.
fn resolve_single(
    cache: &Cache,
    sources: &Sources<'_>,
    entry: PullImage,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Result<ResolvedImage, Failure>, PullError> {
    // The original catalog is no image of the plan: its resolution is not told as one.
    let quiet = |e: Event<'_>| {
        if !matches!(e, Event::Resolved(_)) {
            events(e)
        }
    };
    let mut results = resolve_all(
        cache,
        sources,
        std::slice::from_ref(&entry),
        options,
        &quiet,
    )?;
    Ok(results.pop().expect("one result for one image"))
}

fn plan_one(
    cache: &Cache,
    sources: &Sources<'_>,
    set: &PullSet,
    op: &PullOperator,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
    out: &mut Operators,
) -> Result<(), PullError> {
    let entry = entry_for(op.catalog.clone(), op.platforms.clone(), op.index);
    let original = match resolve_single(cache, sources, entry, options, events)? {
        Ok(r) => r,
        Err(f) => {
            out.failed.push(f);
            return Ok(());
        }
    };
    let fail = |out: &mut Operators, f: Failure| {
        events(Event::Failed(&f));
        out.failed.push(f);
    };
    let kept = kept_children(cache, &original)?;
    let scratch = scratch_dir(cache, &original.digest, "")?;
    let blobs = CacheBlobs::new(cache, sources, &original, options, events);
    let mut loaded = match read_catalog(&blobs, &original, kept.as_deref(), &scratch)? {
        Ok(l) => l,
        Err(f) => {
            let _ = fs::remove_dir_all(&scratch);
            fail(out, f);
            return Ok(());
        }
    };
    let op_error = |field: Vec<Field>, message: String| PullError::Operator {
        index: op.index,
        field,
        catalog: op.catalog.reference.to_string(),
        message,
    };
    let filter_error = |e: FilterError| op_error(filter_field(op, &e), e.to_string());
    let filter = Filter::from_operator(&op.config).map_err(filter_error)?;
    let mut filtered = match loaded.kind {
        Kind::Fbc => catalog::filter(
            std::mem::take(&mut loaded.catalog),
            &filter,
            FilterOptions {
                include_dependencies: op.config.include_dependencies,
            },
        )
        .map_err(filter_error)?,
        Kind::Sqlite => catalog::sqlite::select(std::mem::take(&mut loaded.catalog), &filter)
            .map_err(|e| op_error(sqlite_field(op, &e), e.to_string()))?,
    };

    // The images the selection needs, blocked ones left out (taken out of `filtered`,
    // which `--allow-missing` may change).
    let images = std::mem::take(&mut filtered.images);
    let platforms = op.platforms_or(&options.platforms).to_vec();
    let mut blocked = Vec::new();
    let mut uses: Vec<&ImageUse> = Vec::new();
    let mut entries: Vec<PullImage> = Vec::new();
    let mut missing: Vec<(&ImageUse, Failure)> = Vec::new();
    for u in &images {
        if let Some(p) = set.block.blocking_str(&u.image) {
            blocked.push((u.image.clone(), p.as_str().to_owned()));
            continue;
        }
        match needed_entry(&u.image, &platforms, op.index) {
            Ok(e) => {
                uses.push(u);
                entries.push(e);
            }
            Err(error) => missing.push((
                u,
                Failure {
                    reference: u.image.clone(),
                    registry: String::new(),
                    error,
                },
            )),
        }
    }
    // Their failures are told below, with the bundles that need them.
    let no_failures = |e: Event<'_>| {
        if !matches!(e, Event::Failed(_)) {
            events(e)
        }
    };
    let results = resolve_all(cache, sources, &entries, options, &no_failures)?;
    let mut resolved: Vec<(&ImageUse, ResolvedImage)> = Vec::new();
    for (u, r) in uses.into_iter().zip(results) {
        match r {
            Ok(image) => resolved.push((u, image)),
            Err(f) => missing.push((u, f)),
        }
    }

    let mut dropped = Vec::new();
    let mut dropped_packages = Vec::new();
    if !missing.is_empty() && options.allow_missing {
        let (bundles, packages) =
            drop_for_missing(&mut filtered, loaded.kind, &missing).map_err(|why| {
                op_error(
                    Vec::new(),
                    format!(
                        "--allow-missing cannot drop the bundles whose images are missing: {why}"
                    ),
                )
            })?;
        dropped = bundles;
        dropped_packages = packages;
        if filtered.catalog.packages.is_empty() {
            let _ = fs::remove_dir_all(&scratch);
            fail(
                out,
                Failure {
                    reference: original.source.clone(),
                    registry: original.endpoint.clone(),
                    error: format!(
                        "every package of the selection lost its bundles to missing images ({}): nothing is left to rebuild the catalog with",
                        missing
                            .iter()
                            .map(|(u, _)| u.image.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            );
            return Ok(());
        }
        let present = |id: &BundleId| still_holds(&filtered, id);
        resolved.retain(|(u, _)| u.needed_by.iter().any(present));
    } else {
        for (u, f) in missing {
            fail(
                out,
                Failure {
                    error: format!("{}; {}", f.error, needed_by_text(&u.needed_by)),
                    ..f
                },
            );
        }
    }

    // The catalog image to pack.
    let packages = filtered.catalog.package_names();
    // The names are the registry's; the cache and the bundle record them joined with `,`
    // (SPEC.md §4.2, M26), so one holding it, or a control character, cannot be recorded:
    // it would come back as other packages, or stop the pack far from its cause.
    if let Some(bad) = packages
        .iter()
        .find(|p| p.is_empty() || p.chars().any(|c| c == ',' || c.is_control()))
    {
        let _ = fs::remove_dir_all(&scratch);
        fail(
            out,
            Failure {
                reference: original.source.clone(),
                registry: original.endpoint.clone(),
                error: format!(
                    "the catalog's package {bad:?} cannot be recorded (a package name that is empty or holds ',' or a control character); select the other packages by name (packages:) to leave it out"
                ),
            },
        );
        return Ok(());
    }
    let (repository, tag) = catalog_destination(op);
    let image = if filtered.unchanged {
        let mut image = original.clone();
        image.ref_name = ref_name(&repository, tag.as_deref(), &image.digest);
        image.repository = repository;
        image.tag = tag;
        image.target_repository = op.target_catalog.clone();
        image.catalog_packages = Some(packages.clone());
        image.resolved_at = match &image.tag {
            Some(_) => Some(resolved_at(cache, &image.ref_name, &image.digest)?),
            None => None,
        };
        (image, Vec::new())
    } else {
        let source = Source {
            digest: original.digest,
            media_type: &original.media_type,
            kept: kept.as_deref(),
        };
        let rebuilt = match rebuild(
            &blobs,
            cache,
            &source,
            &loaded,
            &mut filtered,
            &packages,
            &scratch,
        ) {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_dir_all(&scratch);
                if let Some(run) = blobs.run_error() {
                    return Err(run);
                }
                fail(
                    out,
                    Failure {
                        reference: original.source.clone(),
                        registry: original.endpoint.clone(),
                        error: format!("cannot rebuild the operator catalog: {e}"),
                    },
                );
                return Ok(());
            }
        };
        let name = ref_name(&repository, tag.as_deref(), &rebuilt.digest);
        let at = match &tag {
            Some(_) => Some(resolved_at(cache, &name, &rebuilt.digest)?),
            None => None,
        };
        let image = ResolvedImage {
            source: original.source.clone(),
            repository,
            target_repository: op.target_catalog.clone(),
            tag,
            ref_name: name,
            digest: rebuilt.digest,
            media_type: rebuilt.media_type.clone(),
            size: rebuilt.size,
            resolved_at: at,
            endpoint: original.endpoint.clone(),
            endpoints: original.endpoints.clone(),
            offline: original.offline,
            // As for any image: an index's children; none for a single manifest.
            platforms_available: if oci::media_type::is_index(&rebuilt.media_type) {
                rebuilt.platforms.clone()
            } else {
                Vec::new()
            },
            // The rebuilt index holds only the kept children: never sparse.
            platforms_kept: None,
            manifests: rebuilt.manifests.clone(),
            blobs: rebuilt.blobs.clone(),
            catalog_packages: Some(packages.clone()),
        };
        (image, rebuilt.dropped_layers)
    };
    let _ = fs::remove_dir_all(&scratch);
    let (image, dropped_layers) = image;

    let needed: Vec<ResolvedImage> = resolved.into_iter().map(|(_, r)| r).collect();
    let mut refs: Vec<String> = std::iter::once(image.ref_name.clone())
        .chain(needed.iter().map(|i| i.ref_name.clone()))
        .collect();
    refs.sort();
    refs.dedup();
    write_record(cache, op, refs)?;

    let bundles = filtered
        .catalog
        .packages
        .values()
        .map(|c| c.bundles.len())
        .sum();
    let present = |id: &BundleId| still_holds(&filtered, id);
    let report = CatalogPlan {
        catalog: original.source.clone(),
        index: op.index,
        kind: loaded.kind,
        source_digest: original.digest,
        ref_name: image.ref_name.clone(),
        digest: image.digest,
        unchanged: filtered.unchanged,
        packages,
        bundles,
        warnings: filtered.warnings.clone(),
        dependencies: filtered.dependencies.clone(),
        images: images
            .iter()
            .filter(|u| u.needed_by.iter().any(present))
            .filter(|u| !blocked.iter().any(|(b, _)| *b == u.image))
            .map(|u| u.image.clone())
            .collect(),
        blocked,
        dropped,
        dropped_packages,
        dropped_layers,
    };
    events(Event::Catalog(&report));
    events(Event::Resolved(&image));
    out.catalogs.push(report);
    out.images.push(image);
    out.images.extend(needed);
    Ok(())
}

/// `dev.ferry.resolved-at` of a catalog image by tag: kept from the cache when it
/// already named this digest there, else now.
fn resolved_at(cache: &Cache, ref_name: &str, digest: &Digest) -> Result<String, PullError> {
    Ok(cache
        .images()?
        .into_iter()
        .find(|i| i.ref_name == ref_name && i.digest == *digest)
        .and_then(|i| i.resolved_at)
        .unwrap_or_else(now_rfc3339))
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
enum RebuildError {
    #[error(transparent)]
    Image(#[from] cimage::ImageError),
    #[error(transparent)]
    Sqlite(#[from] catalog::sqlite::SqliteError),
    #[error("the SQLite catalog was read without its database file")]
    NoDatabase,
}

/// The rebuilt catalog image of the selection: FBC from the kept objects (their raw bytes
/// read again from the catalog's layer), SQLite from the database pruned to `packages`.
fn rebuild(
    blobs: &CacheBlobs<'_>,
    cache: &Cache,
    source: &Source<'_>,
    loaded: &Loaded,
    filtered: &mut Filtered,
    packages: &[String],
    scratch: &Path,
) -> Result<cimage::Rebuilt, RebuildError> {
    // Deterministic: the same packages give the same history, so the same digest. A
    // catalog kept whole names hundreds of packages: the first few say what it is, and
    // the bundle (member `packages`) lists them all.
    const NAMED: usize = 10;
    let history = if packages.len() <= NAMED {
        format!("ferry: the operator catalog of {}", packages.join(","))
    } else {
        format!(
            "ferry: the operator catalog of {} packages: {},…",
            packages.len(),
            packages[..NAMED].join(",")
        )
    };
    let sink = CacheSink(cache);
    match loaded.kind {
        Kind::Fbc => {
            cimage::fill_raw(blobs, loaded, &mut filtered.catalog)?;
            Ok(cimage::rebuild(
                blobs,
                &sink,
                source,
                loaded,
                NewContent::Fbc(&filtered.catalog),
                &history,
            )?)
        }
        Kind::Sqlite => {
            let db = loaded.database.as_deref().ok_or(RebuildError::NoDatabase)?;
            let index = catalog::sqlite::open(db)?;
            let pruned = scratch.join("pruned.db");
            catalog::sqlite::prune(&index, packages, &pruned)?;
            Ok(cimage::rebuild(
                blobs,
                &sink,
                source,
                loaded,
                NewContent::Sqlite(&pruned),
                &history,
            )?)
        }
    }
}

/// A catalog image, resolved and its catalog read (for `catalog list`).
#[derive(Debug)]
pub struct Listed {
    pub image: ResolvedImage,
    /// Read without raw bundles; `database` is None (the scratch file is removed).
    pub loaded: Loaded,
}

/// Resolves `reference` (platforms: `options.platforms`) and reads its catalog, fetching
/// only the blobs read: the manifests, the config and the layer that holds the catalog.
/// An image that cannot be resolved or is no catalog is [`PullError::Failed`].
pub fn list_catalog(
    cache: &Cache,
    reference: &Reference,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Listed, PullError> {
    let sources = Sources::load(options)?;
    sources.reporting_retries(events, || {
        let name = ImageName {
            written: reference.to_string(),
            reference: reference.clone(),
        };
        let entry = entry_for(name, Vec::new(), 0);
        let image =
            resolve_single(cache, &sources, entry, options, events)?.map_err(PullError::Failed)?;
        events(Event::Resolved(&image));
        let kept = kept_children(cache, &image)?;
        let scratch = scratch_dir(cache, &image.digest, "list-")?;
        let blobs = CacheBlobs::new(cache, &sources, &image, options, events);
        let read = read_catalog(&blobs, &image, kept.as_deref(), &scratch);
        let _ = fs::remove_dir_all(&scratch);
        let mut loaded = read?.map_err(PullError::Failed)?;
        loaded.database = None;
        Ok(Listed { image, loaded })
    })
}

mod blobs;
mod fields;
mod missing;
mod records;
#[cfg(test)]
mod tests;

use blobs::{CacheBlobs, CacheSink};
use fields::{filter_field, sqlite_field};
use missing::drop_for_missing;
use records::write_record;
pub(crate) use records::{forget_other_records, recorded_refs};

/// Whether the selection still holds bundle `id` (after `--allow-missing` dropped some).
fn still_holds(filtered: &Filtered, id: &BundleId) -> bool {
    filtered
        .catalog
        .packages
        .get(&id.package)
        .is_some_and(|c| c.bundles.contains_key(&id.bundle))
}
