//! The push: blobs first (HEAD, then mount from a repository that has it, else a streamed
//! upload straight from the volumes), then each complete image's manifests by digest,
//! children before their index, and its tags last — so a tag never points at an
//! incomplete image. Running it again finishes what a stopped run left: what the registry
//! holds is found with HEAD and never sent twice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use ferry_format::bundle::Bundle;
use ferry_format::manifest::{BundleManifest, Image};
use ferry_format::Digest;
use serde::Serialize;

use crate::mapping::{destination, MappingError, SourceRef, Target};
use crate::registry::{Registry, RegistryFailure};

pub struct Options {
    pub target: Target,
    pub max_components: usize,
    pub jobs: usize,
    pub dry_run: bool,
}

/// What happened to one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageOutcome {
    pub image: String,
    pub digest: Digest,
    /// `registry/repo` it was pushed to.
    pub destination: String,
    pub tags: Vec<String>,
    pub source: Option<String>,
    /// `pushed`, `present` (nothing needed sending), `waiting` (volumes missing), `failed`,
    /// or `planned` (dry run).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Totals {
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub manifests_pushed: usize,
    pub tags_pushed: usize,
    pub bytes_staged: u64,
    /// Dry run: blobs (per repository) and bytes that a push would send.
    pub would_upload: usize,
    pub would_upload_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bundle_id: Digest,
    pub target: String,
    pub images: Vec<ImageOutcome>,
    pub totals: Totals,
    /// The cancel flag was set: work in flight was stopped (upload sessions cancelled) and
    /// nothing more was started; images not finished are `failed` with [`NOT_FINISHED`].
    pub interrupted: bool,
    /// Why the rest of the run was not tried, when the registry stopped answering: said
    /// once here; the images not tried carry [`NOT_TRIED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

/// The error of an image left because of an interrupt.
pub const NOT_FINISHED: &str = "not finished: interrupted";
/// The error of an image not tried because the registry stopped answering.
pub const NOT_TRIED: &str = "not tried: the registry stopped answering";

impl Report {
    pub fn failed(&self) -> usize {
        self.images.iter().filter(|i| i.status == "failed").count()
    }
    pub fn waiting(&self) -> usize {
        self.images.iter().filter(|i| i.status == "waiting").count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("this delta bundle needs blobs its base should have put in the registry, and {} lacks them; nothing was pushed. Push the base bundle first (or pack a full bundle). Missing:\n{}", .registry, .missing.join("\n"))]
    BaseMissing {
        registry: String,
        missing: Vec<String>,
    },
    #[error("checking the delta bundle's base in the registry: {0}")]
    BaseCheck(String),
}

/// Progress the caller may show.
pub enum Event<'a> {
    BlobUploaded {
        digest: &'a Digest,
        repo: &'a str,
        bytes: u64,
    },
    BlobMounted {
        digest: &'a Digest,
        repo: &'a str,
        from: &'a str,
    },
    ImageDone {
        outcome: &'a ImageOutcome,
    },
}

/// Destination repository (without host) for each image, in manifest order.
pub fn map_images(m: &BundleManifest, opts: &Options) -> Result<Vec<String>, MappingError> {
    m.images
        .iter()
        .map(|img| destination(&opts.target, &source_path(img)?, opts.max_components))
        .collect()
}

/// The path the destination is built from: the original repository without its registry,
/// or the repository the image had in the mirror when no original is recorded.
pub fn source_path(img: &Image) -> Result<String, MappingError> {
    match &img.source {
        Some(s) => SourceRef::parse(s).map(|s| s.path),
        None => Ok(img.repository.clone()),
    }
}

/// Manifests of an image, children before the manifests that list them.
fn manifests_bottom_up(m: &BundleManifest, img: &Image) -> Vec<u32> {
    let mut out: Vec<u32> = img
        .blobs
        .iter()
        .copied()
        .filter(|&b| m.blobs[b as usize].media_type.is_some())
        .collect();
    out.reverse();
    out
}

/// Pushes what the bundle's volumes hold. Once `cancel` is set no new blob or image is
/// started; the registry client stops the transfers in flight (it holds the same flag).
pub fn push(
    bundle: &Bundle,
    registry: &dyn Registry,
    opts: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
    cancel: &AtomicBool,
) -> Result<Report, PushError> {
    let m = &*bundle.manifest;
    let repos = map_images(m, opts)?;
    let host = &opts.target.registry;
    let totals = Mutex::new(Totals::default());
    let mut outcomes: Vec<ImageOutcome> = m
        .images
        .iter()
        .zip(&repos)
        .map(|(img, repo)| ImageOutcome {
            image: img.display_name(),
            digest: img.digest,
            destination: format!("{host}/{repo}"),
            tags: img.tags.clone(),
            source: img.source.clone(),
            status: "planned",
            waiting_on: Vec::new(),
            error: None,
        })
        .collect();

    // A delta bundle: every blob it leaves to its base must be in the registry — in the
    // image's repository, or where the base put it (to mount from) — before anything is sent.
    let hints: BTreeMap<u32, String> = m
        .blobs
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let at = b.at.as_deref()?;
            Some((
                i as u32,
                destination(&opts.target, at, opts.max_components).ok()?,
            ))
        })
        .collect();
    check_base(bundle, registry, &repos, &hints, host)?;

    // One job per blob digest (configs and layers): every repository that needs it, for
    // every image, complete or not: what a disk holds goes in now, so an image whose other
    // blobs come on a later disk completes then, with this disk gone.
    let mut wanted: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (i, img) in m.images.iter().enumerate() {
        for &b in &img.blobs {
            if m.blobs[b as usize].media_type.is_none() {
                let list = wanted.entry(b).or_default();
                if !list.contains(&repos[i]) {
                    list.push(repos[i].clone());
                }
            }
        }
    }
    let mut jobs: Vec<(u32, Vec<String>)> = wanted.into_iter().collect();
    // Largest first, so the two cores and the network stay busy to the end.
    jobs.sort_by_key(|(b, _)| std::cmp::Reverse(m.blobs[*b as usize].size));
    let failed_blobs: Mutex<BTreeMap<u32, String>> = Mutex::new(BTreeMap::new());
    let present: Mutex<BTreeSet<(String, u32)>> = Mutex::new(BTreeSet::new());
    // Once the registry stops answering (after the client's own retries), the remaining
    // jobs are not tried: waiting for it again per blob would only delay the message.
    let stop = AtomicBool::new(false);
    let first_failure: Mutex<Option<String>> = Mutex::new(None);
    let give_up = |e: &RegistryFailure| {
        if e.unreachable && !e.interrupted {
            first_failure
                .lock()
                .expect("failure")
                .get_or_insert_with(|| e.message.clone());
            stop.store(true, Ordering::Relaxed);
        }
    };
    // Why a job is not started, if it is not.
    let halted = || {
        if cancel.load(Ordering::Relaxed) {
            Some(NOT_FINISHED.to_owned())
        } else if stop.load(Ordering::Relaxed) {
            Some(NOT_TRIED.to_owned())
        } else {
            None
        }
    };
    let next = AtomicUsize::new(0);
    let uploaded_bytes = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((blob, repos)) = jobs.get(k) else {
                    return;
                };
                if let Some(why) = halted() {
                    failed_blobs.lock().expect("failures").insert(*blob, why);
                    continue;
                }
                match blob_job(
                    bundle,
                    registry,
                    *blob,
                    repos,
                    hints.get(blob),
                    opts.dry_run,
                    &totals,
                    &uploaded_bytes,
                    events,
                ) {
                    Ok(there) => {
                        let mut p = present.lock().expect("present");
                        p.extend(there.into_iter().map(|r| (r, *blob)));
                    }
                    Err(e) => {
                        give_up(&e);
                        let message = if e.interrupted {
                            NOT_FINISHED.to_owned()
                        } else {
                            e.message
                        };
                        failed_blobs
                            .lock()
                            .expect("failures")
                            .insert(*blob, message);
                    }
                }
            });
        }
    });
    let failed_blobs = failed_blobs.into_inner().expect("failures");
    let present = present.into_inner().expect("present");

    // Manifests and tags of every image whose blobs are all in the registry now.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Done, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(img) = m.images.get(k) else { return };
                if let Some(why) = halted() {
                    results.lock().expect("results").push((k, Err(why)));
                    continue;
                }
                let repo = &repos[k];
                let layers: Vec<u32> = img
                    .blobs
                    .iter()
                    .copied()
                    .filter(|&b| m.blobs[b as usize].media_type.is_none())
                    .collect();
                let r = if let Some(e) = layers.iter().find_map(|b| failed_blobs.get(b)) {
                    Err(if e == NOT_FINISHED || e == NOT_TRIED {
                        e.clone()
                    } else {
                        format!("a blob did not upload: {e}")
                    })
                } else {
                    let absent: BTreeSet<u32> = layers
                        .iter()
                        .filter(|&&b| !present.contains(&(repo.clone(), b)))
                        .flat_map(|&b| bundle.blob_missing_volumes(b))
                        .collect();
                    let done = if absent.is_empty() {
                        image_job(bundle, registry, img, repo, opts.dry_run, &totals).map_err(|e| {
                            give_up(&e);
                            if e.interrupted {
                                NOT_FINISHED.to_owned()
                            } else {
                                e.message
                            }
                        })
                    } else {
                        Ok(Done::Waiting(absent.into_iter().collect()))
                    };
                    if let (Ok(Done::Status(_)), Some(stage)) = (&done, &bundle.stage) {
                        // In the registry now: staged copies of its manifests are done with.
                        for &b in img
                            .blobs
                            .iter()
                            .filter(|&&b| m.blobs[b as usize].media_type.is_some())
                        {
                            if let Ok(chunks) = bundle.chunks_of(b) {
                                for (_, c) in chunks {
                                    stage.forget_chunk(&bundle.chunk_name(&c));
                                }
                            }
                        }
                    }
                    match done {
                        // Its manifests cannot go in before its blobs; keep the ones this disk
                        // holds (they are small) so the run with the last disk can finish it.
                        Ok(Done::Waiting(volumes)) if !opts.dry_run => {
                            stage_manifests(bundle, img, &totals, volumes.into_iter().collect())
                        }
                        other => other,
                    }
                };
                results.lock().expect("results").push((k, r));
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(i, _)| *i);
    for (i, r) in results {
        match r {
            Ok(Done::Status(status)) => outcomes[i].status = status,
            Ok(Done::Waiting(volumes)) => {
                outcomes[i].status = "waiting";
                outcomes[i].waiting_on = volumes;
            }
            Err(e) => {
                outcomes[i].status = "failed";
                outcomes[i].error = Some(e);
            }
        }
        events(Event::ImageDone {
            outcome: &outcomes[i],
        });
    }
    let totals = totals.into_inner().expect("totals");
    let interrupted = outcomes
        .iter()
        .any(|o| o.error.as_deref() == Some(NOT_FINISHED));
    Ok(Report {
        bundle_id: m.bundle_id,
        target: opts.target.to_string(),
        images: outcomes,
        totals,
        interrupted,
        stopped_by: first_failure.into_inner().expect("failure"),
    })
}

/// Puts one blob into every repository that needs it, as far as the volumes at hand allow.
/// Returns the repositories that hold it afterwards (in a dry run: would hold it).
#[allow(clippy::too_many_arguments)]
fn blob_job(
    bundle: &Bundle,
    registry: &dyn Registry,
    blob: u32,
    repos: &[String],
    hint: Option<&String>,
    dry_run: bool,
    totals: &Mutex<Totals>,
    uploaded: &AtomicU64,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<String>, RegistryFailure> {
    let b = &bundle.manifest.blobs[blob as usize];
    let mut holder: Option<&str> = None;
    let mut there = Vec::new();
    let mut missing = Vec::new();
    for repo in repos {
        // A registry that crashed can answer 500 for a blob whose link file it left empty;
        // sending the blob again rewrites the link, so a resume can finish.
        let exists = match registry.blob_exists(repo, &b.digest) {
            Err(e) if e.server_error => false,
            other => other?,
        };
        if exists {
            holder.get_or_insert(repo);
            there.push(repo.clone());
            totals.lock().expect("totals").blobs_present += 1;
        } else {
            missing.push(repo.as_str());
        }
    }
    if missing.is_empty() {
        return Ok(there);
    }
    if bundle.is_base(blob) {
        // Not on any volume: mount it from a repository of this push or where the base put it.
        let from = holder
            .map(str::to_owned)
            .or_else(|| hint.cloned())
            .ok_or_else(|| {
                RegistryFailure::new(format!(
                    "base blob {} is in none of the repositories that need it",
                    b.digest
                ))
            })?;
        for repo in missing {
            if dry_run {
                there.push(repo.to_string());
                continue;
            }
            if !registry.mount_blob(repo, &b.digest, &from)? {
                return Err(RegistryFailure::new(format!(
                    "base blob {} could not be mounted into {repo} from {from}",
                    b.digest
                )));
            }
            totals.lock().expect("totals").blobs_mounted += 1;
            events(Event::BlobMounted {
                digest: &b.digest,
                repo,
                from: &from,
            });
            there.push(repo.to_string());
        }
        return Ok(there);
    }
    let available = bundle.blob_missing_volumes(blob).is_empty();
    if dry_run {
        if available {
            let mut t = totals.lock().expect("totals");
            if holder.is_none() {
                t.would_upload += 1;
                t.would_upload_bytes += b.size;
            }
            there.extend(missing.iter().map(|r| r.to_string()));
        }
        return Ok(there);
    }
    if !available {
        // Part of it may be on this disk: keep those chunks for the run that brings the rest.
        if bundle.blob_missing_volumes(blob).len() < (b.last_volume - b.first_volume + 1) as usize {
            let n = bundle.stage_present_chunks(blob).map_err(|e| {
                RegistryFailure::new(format!("staging chunks of blob {}: {e}", b.digest))
            })?;
            totals.lock().expect("totals").bytes_staged += n;
        }
        return Ok(there);
    }
    for repo in missing {
        if let Some(from) = holder {
            if registry.mount_blob(repo, &b.digest, from)? {
                totals.lock().expect("totals").blobs_mounted += 1;
                events(Event::BlobMounted {
                    digest: &b.digest,
                    repo,
                    from,
                });
                there.push(repo.to_string());
                continue;
            }
        }
        let open = || -> Result<Box<dyn Read + '_>, RegistryFailure> {
            bundle
                .open_blob_for_upload(blob)
                .map(|r| Box::new(r) as Box<dyn Read>)
                .map_err(|e| RegistryFailure::new(e.to_string()))
        };
        registry.upload_blob(repo, &b.digest, b.size, &open)?;
        uploaded.fetch_add(b.size, Ordering::Relaxed);
        {
            let mut t = totals.lock().expect("totals");
            t.blobs_uploaded += 1;
            t.bytes_uploaded += b.size;
        }
        events(Event::BlobUploaded {
            digest: &b.digest,
            repo,
            bytes: b.size,
        });
        holder = Some(repo);
        there.push(repo.to_string());
    }
    // Staged pieces of this blob are no longer needed once it is in the registry.
    if let Some(stage) = &bundle.stage {
        if let Ok(chunks) = bundle.chunks_of(blob) {
            for (_, c) in chunks {
                stage.forget_chunk(&bundle.chunk_name(&c));
            }
        }
    }
    Ok(there)
}

/// Keeps verified copies of an image's manifests that are on the volumes at hand.
/// `waiting` holds the volumes its layers not yet in the registry need; the result adds
/// those its manifests need.
fn stage_manifests(
    bundle: &Bundle,
    img: &Image,
    totals: &Mutex<Totals>,
    mut waiting: BTreeSet<u32>,
) -> Result<Done, String> {
    let m = &*bundle.manifest;
    for &b in &img.blobs {
        if m.blobs[b as usize].media_type.is_none() {
            continue;
        }
        let missing = bundle.blob_missing_volumes(b);
        if missing.is_empty() {
            let n = bundle
                .stage_present_chunks(b)
                .map_err(|e| format!("staging manifest {}: {e}", m.blobs[b as usize].digest))?;
            totals.lock().expect("totals").bytes_staged += n;
        }
        waiting.extend(missing);
    }
    Ok(Done::Waiting(waiting.into_iter().collect()))
}

/// Refuses a delta bundle whose base is not in the registry (read-only: HEAD only).
fn check_base(
    bundle: &Bundle,
    registry: &dyn Registry,
    repos: &[String],
    hints: &BTreeMap<u32, String>,
    host: &str,
) -> Result<(), PushError> {
    let m = &*bundle.manifest;
    if !m.is_delta() {
        return Ok(());
    }
    let mut needed: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, img) in m.images.iter().enumerate() {
        for &b in img.blobs.iter().filter(|&&b| bundle.is_base(b)) {
            needed.entry(b).or_default().push(i);
        }
    }
    let mut missing = Vec::new();
    for (b, images) in needed {
        let digest = &m.blobs[b as usize].digest;
        let mut places: Vec<&String> = images.iter().map(|&i| &repos[i]).collect();
        places.extend(hints.get(&b));
        places.dedup();
        let mut found = false;
        for repo in &places {
            if registry
                .blob_exists(repo, digest)
                .map_err(|e| PushError::BaseCheck(e.message))?
            {
                found = true;
                break;
            }
        }
        if !found {
            let names: Vec<String> = images.iter().map(|&i| m.images[i].display_name()).collect();
            missing.push(format!(
                "  {digest} (needed by {}; looked in {})",
                names.join(", "),
                places
                    .iter()
                    .map(|r| format!("{host}/{r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        let total = missing.len();
        if total > 20 {
            missing.truncate(20);
            missing.push(format!("  … and {} more", total - 20));
        }
        Err(PushError::BaseMissing {
            registry: host.to_owned(),
            missing,
        })
    }
}

/// How an image's manifests went.
enum Done {
    Status(&'static str),
    /// A manifest or blob is neither in the registry nor on the volumes at hand.
    Waiting(Vec<u32>),
}

/// Manifests bottom-up by digest, then tags (only once every manifest is in).
fn image_job(
    bundle: &Bundle,
    registry: &dyn Registry,
    img: &Image,
    repo: &str,
    dry_run: bool,
    totals: &Mutex<Totals>,
) -> Result<Done, RegistryFailure> {
    let m = &*bundle.manifest;
    let mut sent = false;
    for b in manifests_bottom_up(m, img) {
        let blob = &m.blobs[b as usize];
        let reference = blob.digest.to_string();
        // As for blobs: a 500 for one manifest is answered by putting it again.
        let there = match registry.manifest_digest(repo, &reference) {
            Err(e) if e.server_error => None,
            other => other?,
        };
        if there.is_some() {
            continue;
        }
        let missing = bundle.blob_missing_volumes(b);
        if !missing.is_empty() {
            return Ok(Done::Waiting(missing));
        }
        if dry_run {
            continue;
        }
        let bytes = read_small(bundle, b)?;
        let media_type = blob.media_type.as_deref().unwrap_or_default();
        registry.put_manifest(repo, &reference, media_type, &bytes)?;
        totals.lock().expect("totals").manifests_pushed += 1;
        sent = true;
    }
    let top = &m.blobs[img.blobs[0] as usize];
    for tag in &img.tags {
        let tagged = match registry.manifest_digest(repo, tag) {
            Err(e) if e.server_error => None,
            other => other?,
        };
        if dry_run || tagged == Some(top.digest) {
            continue;
        }
        let bytes = read_small(bundle, img.blobs[0])?;
        let media_type = top.media_type.as_deref().unwrap_or(&img.media_type);
        registry.put_manifest(repo, tag, media_type, &bytes)?;
        totals.lock().expect("totals").tags_pushed += 1;
        sent = true;
    }
    Ok(Done::Status(if dry_run {
        "planned"
    } else if sent {
        "pushed"
    } else {
        "present"
    }))
}

/// Manifests are small (registries cap them at 4 MiB); read them whole.
fn read_small(bundle: &Bundle, blob: u32) -> Result<Vec<u8>, RegistryFailure> {
    let r = bundle
        .open_blob(blob)
        .map_err(|e| RegistryFailure::new(e.to_string()))?;
    let mut out = Vec::new();
    // Bounded here too, whatever the manifest declares (M24 caps it at validation).
    r.take(ferry_format::manifest::MAX_MANIFEST_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(|e| RegistryFailure::new(e.to_string()))?;
    Ok(out)
}
