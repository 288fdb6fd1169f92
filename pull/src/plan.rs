//! From an image set to images by digest ([`plan`]: manifests only), to images in the
//! cache ([`fetch`]: the blobs), and what a set no longer needs ([`prune`]). The work is in
//! `resolve.rs` (manifests), `sources.rs` (endpoints and clients), `fetch.rs` (blobs) and
//! `prune.rs`; this module holds the types the CLI reads.

use std::collections::BTreeMap;

use imageset::PullSet;
use oci::Digest;
use registry_client::registries_conf::Endpoint;

use crate::cache::{Cache, PruneReport};
use crate::error::PullError;
use crate::event::Event;
use crate::operators::{plan_operators, CatalogPlan};
use crate::options::Options;
use crate::sources::Sources;

/// One image of the set, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference as the image set wrote it, canonical (`registry.redhat.io/ubi8/ubi:8.9`):
    /// what the bundle records as the source, whichever endpoint served it.
    pub source: String,
    /// The repository path at the destination (`targetRepo`, else the source's path).
    pub repository: String,
    /// `targetRepo` when the set gave one (then also `repository`): recorded in the cache, so
    /// the bundle says where the image goes rather than leaving it to the source's path.
    pub target_repository: Option<String>,
    /// The tag at the destination (`targetTag`, else the source's tag); None: by digest only.
    pub tag: Option<String>,
    /// The cache's `ref.name` for it (`<repository>:<tag>` or `<repository>@<digest>`).
    pub ref_name: String,
    /// The top manifest or index.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Since when the tag has resolved to this digest (RFC 3339): the time the cache
    /// recorded when it already had the tag at this digest, else now. None for a digest
    /// reference.
    pub resolved_at: Option<String>,
    /// The endpoint that answered (`host[:port]`, a mirror's or the registry's own). For
    /// an image resolved from the cache alone, the first endpoint its blobs are asked of.
    pub endpoint: String,
    /// Where the blobs are fetched from, in order: the endpoint that served the manifests,
    /// then the others registries.conf gives for a pull by digest. Each has its own host
    /// and repository (a mirror's path after rewriting).
    pub endpoints: Vec<Endpoint>,
    /// Resolved from the cache without asking a registry (a digest reference whose
    /// manifests were all cached).
    pub offline: bool,
    /// For an index: every child's platform (`os/arch[/variant]`), in index order.
    pub platforms_available: Vec<String>,
    /// For an index of which only some children are kept: those (sorted). None: all kept.
    pub platforms_kept: Option<Vec<String>>,
    /// Every manifest of the image, the top one first, then the children kept, with sizes.
    /// All are in the cache once planned.
    pub manifests: Vec<(Digest, u64)>,
    /// Every blob the image needs that is not a manifest (configs, layers), each once,
    /// with its size. Manifests are already in the cache once planned.
    pub blobs: Vec<(Digest, u64)>,
    /// For an operator catalog (rebuilt, or carried whole for `full: true` without
    /// packages): the packages it holds, sorted. Recorded as `dev.ferry.catalog-packages`.
    pub catalog_packages: Option<Vec<String>>,
}

/// One image that could not be resolved or pulled, with the registry's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reference as the image set wrote it, canonical (as [`ResolvedImage::source`]).
    pub reference: String,
    /// The endpoint(s) tried, `host[:port]`, comma-separated in the order tried.
    pub registry: String,
    /// What went wrong; when several endpoints were tried, each with its own error.
    pub error: String,
}

/// What [`plan`] found: manifests resolved (and cached), no layer fetched but those of
/// the operator catalog images (read to select from them and rebuild them).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `additionalImages`, then for each catalog its image (rebuilt, or the original for
    /// `full: true` without packages) and the bundle and related images it needs; each
    /// cache name once.
    pub images: Vec<ResolvedImage>,
    pub failed: Vec<Failure>,
    /// What each `mirror.operators[]` entry selected, in file order.
    pub catalogs: Vec<CatalogPlan>,
    /// Distinct non-manifest blobs the set needs, and their bytes.
    pub blobs_total: usize,
    pub bytes_total: u64,
    /// Of those, already complete in the cache.
    pub blobs_cached: usize,
    pub bytes_cached: u64,
    /// Bytes of interrupted downloads that will be resumed.
    pub bytes_partial: u64,
    /// Bytes still to download (total − cached − partial).
    pub bytes_to_fetch: u64,
    /// Free bytes on the cache's filesystem now.
    pub cache_free: u64,
}

/// What [`fetch`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The images now recorded in the cache's `index.json`: their places in
    /// [`Plan::images`], in order (not copies: at 6×10^4 images those were 60 MB).
    pub pulled: Vec<usize>,
    /// The images of the plan the fetch could not pull (a blob missing everywhere, wrong
    /// bytes, a registry gone). The plan's own failures are in [`Plan::failed`], not here:
    /// everything was pulled when both are empty.
    pub failed: Vec<Failure>,
    pub blobs_fetched: usize,
    pub bytes_fetched: u64,
    pub seconds: f64,
}

/// Resolves every image of `set` (tags to digests, indexes to the children kept) and
/// stores their manifests in the cache; downloads no layer but those of each operator
/// catalog image (its catalog layer is read to make the selection, and the rebuild reads
/// the other layers' tar headers to tell which hold only catalog content), and writes
/// each rebuilt catalog's new blobs. An image that cannot be resolved is a [`Failure`]; an error is for
/// the run (the cache, registries.conf, an auth file, a selection the catalog cannot
/// give: [`PullError::Operator`]).
pub fn plan(
    cache: &Cache,
    set: &PullSet,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Plan, PullError> {
    let sources = Sources::load(options)?;
    let (outcomes, operators) = sources.reporting_retries(events, || {
        let outcomes = crate::resolve::resolve_all(cache, &sources, &set.images, options, events)?;
        let operators = plan_operators(cache, &sources, set, options, events)?;
        Ok::<_, PullError>((outcomes, operators))
    })?;
    let mut plan = Plan::default();
    // Collected in place (the outcomes' buffer becomes the images'): pushing into a new
    // vector held both, 50 MB at 6×10^4 images, at the end of planning, a pull's peak.
    let failed = &mut plan.failed;
    plan.images = outcomes
        .into_iter()
        .filter_map(|o| match o {
            Ok(image) => Some(image),
            Err(f) => {
                failed.push(f);
                None
            }
        })
        .collect();
    // An image two catalogs (or a catalog and additionalImages) need is pulled once. A
    // name taken by another image (two catalogs sent to one targetCatalog and tag, or a
    // catalog to where an additional image goes) is an error of the entry: the cache
    // keeps one image per name, so the later one would be left out without a word.
    // Only when a catalog brings images: a map of every name is not needed otherwise.
    let mut names: std::collections::HashMap<String, (Digest, String)> =
        match operators.images.is_empty() {
            true => Default::default(),
            false => plan
                .images
                .iter()
                .map(|i| (i.ref_name.clone(), (i.digest, i.source.clone())))
                .collect(),
        };
    for image in operators.images {
        match names.get(&image.ref_name) {
            None => {
                names.insert(image.ref_name.clone(), (image.digest, image.source.clone()));
                plan.images.push(image);
            }
            Some((digest, _)) if *digest == image.digest => {}
            Some((digest, first)) => {
                let message = format!(
                    "its destination {} is also that of {first} ({digest}), another image of the set; give this catalog a targetCatalog or targetTag of its own",
                    image.ref_name
                );
                match operators
                    .catalogs
                    .iter()
                    .find(|c| c.ref_name == image.ref_name && c.digest == image.digest)
                {
                    Some(c) => {
                        return Err(PullError::Operator {
                            index: c.index,
                            field: Vec::new(),
                            catalog: c.catalog.clone(),
                            message,
                        })
                    }
                    // Not a catalog: an image a bundle needs, under a name another
                    // image of the set has.
                    None => plan.failed.push(Failure {
                        reference: image.source.clone(),
                        registry: image.endpoint.clone(),
                        error: format!(
                            "its cache name {} is also that of {first} ({digest}), another image of the set",
                            image.ref_name
                        ),
                    }),
                }
            }
        }
    }
    plan.failed.extend(operators.failed);
    plan.catalogs = operators.catalogs;
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    for image in &plan.images {
        for (d, size) in &image.blobs {
            blobs.entry(*d).or_insert(*size);
        }
    }
    plan.blobs_total = blobs.len();
    for (d, size) in &blobs {
        plan.bytes_total += size;
        if cache.has_blob(d).is_some() {
            plan.blobs_cached += 1;
            plan.bytes_cached += size;
        } else {
            plan.bytes_partial += cache.partial_len(d).min(*size);
        }
    }
    plan.bytes_to_fetch = plan
        .bytes_total
        .saturating_sub(plan.bytes_cached)
        .saturating_sub(plan.bytes_partial);
    plan.cache_free = cache.free_space()?;
    Ok(plan)
}

/// Downloads what the plan's images lack (largest blobs first, `options.jobs` at once,
/// transient failures retried), then records each complete image in `index.json`.
/// Refuses to start when the cache's filesystem lacks the room.
pub fn fetch(
    cache: &Cache,
    plan: &Plan,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Report, PullError> {
    crate::fetch::fetch(cache, plan, options, events)
}

/// Removes from the cache what `set` does not need, reading only the cache (tags resolve
/// to what the cache recorded for them).
pub fn prune(cache: &Cache, set: &PullSet, options: &Options) -> Result<PruneReport, PullError> {
    crate::prune::prune(cache, set, options)
}
