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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use catalog::filter::{BundleId, Dependency, ImageUse, Warning};
use catalog::image::{self as cimage, Blobs, Kind, Loaded, NewContent, Sink, Source};
use catalog::sqlite::SqliteError;
use catalog::{Catalog, Filter, FilterError, FilterOptions, Filtered};
use imageset::schema::ImageName;
use imageset::{PullImage, PullOperator, PullSet};
use oci::{manifest, Digest, Reference};
use registry_client::MAX_MANIFEST_BYTES;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::error::{CacheError, Field, PullError};
use crate::event::Event;
use crate::fetch::{download_blob, BlobEnd};
use crate::options::Options;
use crate::plan::{Failure, ResolvedImage};
use crate::resolve::{now_rfc3339, ref_name, resolve_all};
use crate::sources::Sources;

/// Where the catalog of each entry is read and pruned (removed once the entry is done).
const SCRATCH_DIR: &str = "catalogs";
/// The cache names each `mirror.operators[]` entry's last plan produced, for `cache prune`.
const RECORDS_DIR: &str = "operators";

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

/// The record of `CACHE/.ferry/operators/<key>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    catalog: String,
    target_catalog: Option<String>,
    target_tag: Option<String>,
    /// The cache's ref.names the entry's last plan produced.
    refs: Vec<String>,
}

/// The blobs of a catalog image, from the cache; one it lacks is downloaded first from the
/// image's endpoints, with the retries of a fetch.
struct CacheBlobs<'a> {
    cache: &'a Cache,
    sources: &'a Sources<'a>,
    image: &'a ResolvedImage,
    sizes: HashMap<Digest, u64>,
    options: &'a Options,
    events: &'a (dyn Fn(Event<'_>) + Sync),
    /// An error of the run met while downloading (the cache's disk), returned as such
    /// rather than as a catalog's failure.
    run_error: Mutex<Option<PullError>>,
    /// Held while a blob is downloaded: the reader may open blobs from two threads, and
    /// the cache lets one worker download a digest at a time (a second is refused).
    downloading: Mutex<()>,
}

impl<'a> CacheBlobs<'a> {
    fn new(
        cache: &'a Cache,
        sources: &'a Sources<'a>,
        image: &'a ResolvedImage,
        options: &'a Options,
        events: &'a (dyn Fn(Event<'_>) + Sync),
    ) -> CacheBlobs<'a> {
        CacheBlobs {
            cache,
            sources,
            image,
            sizes: image
                .blobs
                .iter()
                .chain(&image.manifests)
                .copied()
                .collect(),
            options,
            events,
            run_error: Mutex::new(None),
            downloading: Mutex::new(()),
        }
    }

    /// The error to return for a read that failed: the run's own, an interrupt, or None
    /// (the image's failure).
    fn run_error(&self) -> Option<PullError> {
        if let Some(e) = self
            .run_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Some(e);
        }
        self.options.cancel.load(Ordering::Relaxed).then(|| {
            PullError::Interrupted(format!(
                "while reading the catalog {}; run the same command again to go on (what was downloaded is kept)",
                self.image.source
            ))
        })
    }
}

impl Blobs for CacheBlobs<'_> {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send + '_>> {
        let _one = (self.cache.has_blob(digest).is_none())
            .then(|| self.downloading.lock().unwrap_or_else(|p| p.into_inner()));
        if self.cache.has_blob(digest).is_none() {
            let Some(&size) = self.sizes.get(digest) else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "not a blob of {} as planned (not in its manifests)",
                        self.image.source
                    ),
                ));
            };
            match download_blob(
                self.cache,
                self.sources,
                *digest,
                size,
                self.image,
                self.options,
                self.events,
            ) {
                Ok(_) => {}
                Err(BlobEnd::Failed { registry, error }) => {
                    return Err(io::Error::other(format!("{error} (from {registry})")))
                }
                Err(BlobEnd::Cancelled) => {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
                }
                Err(BlobEnd::Run(e)) => {
                    let text = e.to_string();
                    self.run_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    return Err(io::Error::other(text));
                }
            }
        }
        // The cache renames a blob in only after its digest was checked.
        let file = fs::File::open(self.cache.blob_path(digest))?;
        Ok(Box::new(file))
    }
}

/// New blobs of a rebuilt catalog go straight into the cache.
struct CacheSink<'a>(&'a Cache);

impl Sink for CacheSink<'_> {
    fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        self.0
            .put_blob(digest, bytes)
            .map_err(|e| io::Error::other(e.to_string()))
    }
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
        let present = |id: &BundleId| {
            filtered
                .catalog
                .packages
                .get(&id.package)
                .is_some_and(|c| c.bundles.contains_key(&id.bundle))
        };
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
    let present = |id: &BundleId| {
        filtered
            .catalog
            .packages
            .get(&id.package)
            .is_some_and(|c| c.bundles.contains_key(&id.bundle))
    };
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

/// Where in `op` a package (and channel) the finding names is: `packages[i]`,
/// `packages[i].channels[j]`, or `packages[i].defaultChannel`; empty when it names none
/// the entry lists (then the entry itself is named).
fn package_field(
    op: &PullOperator,
    package: &str,
    channel: Option<&str>,
    last: bool,
    key: Option<&'static str>,
) -> Vec<Field> {
    let packages = &op.config.packages;
    let found = if last {
        packages.iter().rposition(|p| p.name == package)
    } else {
        packages.iter().position(|p| p.name == package)
    };
    let Some(i) = found else {
        return Vec::new();
    };
    let mut field = vec![Field::Key("packages"), Field::Index(i)];
    if let Some(j) = channel.and_then(|c| packages[i].channels.iter().position(|x| x.name == c)) {
        field.extend([Field::Key("channels"), Field::Index(j)]);
    } else if let Some(k) = key {
        field.push(Field::Key(k));
    }
    field
}

fn filter_field(op: &PullOperator, e: &FilterError) -> Vec<Field> {
    let at = |package: &str| package_field(op, package, None, false, None);
    match e {
        FilterError::Range {
            package, channel, ..
        } => package_field(op, package, channel.as_deref(), false, None),
        FilterError::RangeOnBoth { package, channel }
        | FilterError::MissingChannel {
            package, channel, ..
        } => package_field(op, package, Some(channel), false, None),
        FilterError::DuplicatePackage { package } => package_field(op, package, None, true, None),
        FilterError::MissingPackages { missing, .. } => {
            missing.first().map(|p| at(p)).unwrap_or_default()
        }
        FilterError::DefaultChannelNotKept { package, .. } => {
            package_field(op, package, None, false, Some("defaultChannel"))
        }
        FilterError::FullWithRange { package }
        | FilterError::BundleVersion { package, .. }
        | FilterError::NothingLeft { package, .. }
        | FilterError::DefaultChannelLost { package, .. }
        | FilterError::BadImage { package, .. } => at(package),
        _ => Vec::new(),
    }
}

fn sqlite_field(op: &PullOperator, e: &SqliteError) -> Vec<Field> {
    match e {
        SqliteError::NotPackageLevel { package, .. } => {
            package_field(op, package, None, false, None)
        }
        SqliteError::DuplicatePackage { package } => package_field(op, package, None, true, None),
        SqliteError::MissingPackages { missing, .. } => missing
            .first()
            .map(|p| package_field(op, p, None, false, None))
            .unwrap_or_default(),
        SqliteError::Filter(e) => filter_field(op, e),
        _ => Vec::new(),
    }
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
    // Deterministic: the same packages give the same history, so the same digest.
    let history = format!("ferry: the operator catalog of {}", packages.join(","));
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
        return Err(errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "));
    }
    Ok(emptied)
}

/// `CACHE/.ferry/operators/<sha256 of the entry's catalog and destination>.json`.
fn record_path(cache: &Cache, op: &PullOperator) -> PathBuf {
    let key = format!(
        "{}\n{}\n{}",
        op.catalog.reference,
        op.target_catalog.as_deref().unwrap_or(""),
        op.target_tag.as_deref().unwrap_or("")
    );
    cache
        .root()
        .join(".ferry")
        .join(RECORDS_DIR)
        .join(format!("{}.json", Digest::of(key.as_bytes()).hex()))
}

fn write_record(cache: &Cache, op: &PullOperator, refs: Vec<String>) -> Result<(), PullError> {
    let path = record_path(cache, op);
    let io = |e| {
        PullError::Cache(CacheError::Io {
            path: path.clone(),
            source: e,
        })
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let record = Record {
        catalog: op.catalog.reference.to_string(),
        target_catalog: op.target_catalog.clone(),
        target_tag: op.target_tag.clone(),
        refs,
    };
    let mut bytes = serde_json::to_vec_pretty(&record).expect("a record serializes");
    bytes.push(b'\n');
    durable_file::write(&path, &bytes).map_err(io)
}

/// The cache names the last plan of `op` produced (none when it was never planned).
pub(crate) fn recorded_refs(cache: &Cache, op: &PullOperator) -> Result<Vec<String>, PullError> {
    let path = record_path(cache, op);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PullError::Cache(CacheError::Io { path, source: e }));
        }
    };
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
        PullError::Cache(CacheError::Invalid {
            path: path.clone(),
            detail: format!(
                "is not a record of ferry's catalog pull ({e}); remove it and pull again"
            ),
        })
    })?;
    Ok(record.refs)
}

/// Removes the records of entries `ops` does not hold (a prune for a set without them:
/// nothing of theirs is kept, so their records would only name what is gone).
pub(crate) fn forget_other_records(cache: &Cache, ops: &[PullOperator]) -> Result<(), PullError> {
    let dir = cache.root().join(".ferry").join(RECORDS_DIR);
    let io = |path: &Path, e| {
        PullError::Cache(CacheError::Io {
            path: path.to_owned(),
            source: e,
        })
    };
    let keep: HashSet<PathBuf> = ops.iter().map(|op| record_path(cache, op)).collect();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| io(&dir, e))?.path();
        if !keep.contains(&path) && path.extension().is_some_and(|x| x == "json") {
            fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests;
