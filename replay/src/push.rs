//! The push: blobs first (HEAD, then mount from a repository that has it, else a streamed
//! upload straight from the volumes), then each complete image's manifests by digest,
//! children before their index, and its tags last — so a tag never points at an
//! incomplete image. Running it again finishes what a stopped run left: what the registry
//! holds is found with HEAD and never sent twice. Before any blob, one HEAD per tag says
//! which images are whole already ([`Run::probe`]): nothing more of them is looked at.
//! Every step runs `--jobs` requests at once, so that the registry, not the round trips,
//! sets the pace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use format_spec::bundle::Bundle;
use format_spec::manifest::{BundleManifest, Image};
use format_spec::Digest;
use serde::{Deserialize, Serialize};

use crate::mapping::{destination, MappingError, SourceRef, Target};
use crate::record::LastPush;
use crate::registry::{Registry, RegistryFailure};

pub struct Options {
    pub target: Target,
    pub max_components: usize,
    pub jobs: usize,
    pub dry_run: bool,
    /// Look at every blob of every image, even of images whose tags name them already
    /// (`--recheck`): for a registry that lost data after a push, which a tag in place does
    /// not reveal ([`Run::probe`]). The record of the last push is then not used either.
    pub recheck: bool,
    /// What the last push of this bundle from this state directory recorded as complete
    /// ([`crate::record`]): its images whose tags the registry still lists are not asked
    /// for one by one ([`Run::probe`]).
    pub last_push: Option<LastPush>,
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
    pub status: ImageStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where an image stands after a push (its `status` in reports and `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    /// Something was sent for it (a manifest or a tag); it is complete in the registry.
    Pushed,
    /// It was complete in the registry already: nothing needed sending.
    Present,
    /// Blobs or manifests of it are on volumes not given (`waiting_on`).
    Waiting,
    /// It did not go in (`error` says why).
    Failed,
    /// A dry run: what a push would do.
    Planned,
    /// `receipt`: its manifest is not in the registry.
    Absent,
}

impl ImageStatus {
    /// The word of reports and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Pushed => "pushed",
            ImageStatus::Present => "present",
            ImageStatus::Waiting => "waiting",
            ImageStatus::Failed => "failed",
            ImageStatus::Planned => "planned",
            ImageStatus::Absent => "absent",
        }
    }

    /// Complete in the registry now (what the cluster manifests and the receipt list).
    pub fn in_registry(self) -> bool {
        matches!(self, ImageStatus::Pushed | ImageStatus::Present)
    }
}

impl std::fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Images found complete as the last push recorded them, every tag of theirs still
    /// in the registry's tag list: not asked for tag by tag ([`Run::probe`]).
    pub images_as_recorded: usize,
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
        self.images
            .iter()
            .filter(|i| i.status == ImageStatus::Failed)
            .count()
    }
    pub fn waiting(&self) -> usize {
        self.images
            .iter()
            .filter(|i| i.status == ImageStatus::Waiting)
            .count()
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
    BaseCheck(#[source] RegistryFailure),
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
        .map(|img| destination(&opts.target, &destination_path(img)?, opts.max_components))
        .collect()
}

/// The path the destination is built from (under `--to`'s prefix, flattened by
/// `--max-components`): the image's `destination` when the bundle records one (the image
/// set's `targetRepo`, SPEC.md §4.2), else its source's path ([`source_path`]).
pub fn destination_path(img: &Image) -> Result<String, MappingError> {
    match &img.destination {
        Some(d) => Ok(d.clone()),
        None => source_path(img),
    }
}

/// The original repository without its registry, or the repository the image had in the
/// mirror when no original is recorded. What the destination follows unless the image
/// names its own, and what names a catalog (whatever its destination).
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
            status: ImageStatus::Planned,
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
    let (names, image_repo) = intern(&repos);
    drop(repos);
    let run = Run {
        bundle,
        registry,
        opts,
        events,
        cancel,
        names,
        image_repo,
        hints,
        totals: Mutex::new(Totals::default()),
        stop: AtomicBool::new(false),
        first_failure: Mutex::new(None),
        big_uploads: Slots::new(BIG_UPLOADS_AT_ONCE),
    };
    run.check_base()?;
    let known = run.probe();
    let blobs = run.blobs(&known);
    for (i, r) in run.images(&blobs, &known).into_iter().enumerate() {
        match r {
            Ok(Done::Status(status)) => outcomes[i].status = status,
            Ok(Done::Waiting(volumes)) => {
                outcomes[i].status = ImageStatus::Waiting;
                outcomes[i].waiting_on = volumes;
            }
            Err(e) => {
                outcomes[i].status = ImageStatus::Failed;
                outcomes[i].error = Some(e);
            }
        }
        events(Event::ImageDone {
            outcome: &outcomes[i],
        });
    }
    let interrupted = outcomes
        .iter()
        .any(|o| o.error.as_deref() == Some(NOT_FINISHED));
    Ok(Report {
        bundle_id: m.bundle_id,
        target: opts.target.to_string(),
        images: outcomes,
        totals: run.totals.into_inner().expect("totals"),
        interrupted,
        stopped_by: run.first_failure.into_inner().expect("failure"),
    })
}

/// One push: what its blob and image jobs share, on every worker thread.
struct Run<'a> {
    bundle: &'a Bundle,
    registry: &'a dyn Registry,
    opts: &'a Options,
    events: &'a (dyn Fn(Event<'_>) + Sync),
    cancel: &'a AtomicBool,
    /// The destination repositories, each once, in the order images first name them.
    names: Vec<String>,
    /// Each image's destination repository, an index into `names`, in manifest order:
    /// a `u32` per image rather than a `String` per image and per blob.
    image_repo: Vec<u32>,
    /// Where a delta bundle's base put each base blob, to mount it from.
    hints: BTreeMap<u32, String>,
    totals: Mutex<Totals>,
    /// Set once the registry stops answering (after the client's own retries): the jobs
    /// left are not tried, as waiting for it again per blob would only delay the message.
    stop: AtomicBool,
    /// What the registry said when it stopped answering.
    first_failure: Mutex<Option<String>>,
    /// Taken by each upload of a blob of at least [`BIG_UPLOAD`] bytes.
    big_uploads: Slots,
}

/// A blob at least this large is a "big" upload: its reader holds a whole chunk of the
/// volume (4 MiB by default, up to 64 MiB) and its decoder's buffers while it streams.
const BIG_UPLOAD: u64 = 1 << 20;

/// Big uploads at once, whatever `--jobs` says: memory stays bounded by a few chunks
/// however many requests are in flight, and four streams already keep a local registry's
/// disk and the volumes busy. Small blobs, HEADs and manifests are not held back.
const BIG_UPLOADS_AT_ONCE: usize = 4;

/// A counting semaphore.
struct Slots {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits for a free slot; it is given back when the guard is dropped.
    fn take(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().expect("slots");
        while *free == 0 {
            free = self.freed.wait(free).expect("slots");
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("slots") += 1;
        self.0.freed.notify_one();
    }
}

/// The destination repositories, each once, and each image's as an index among them.
fn intern(repos: &[String]) -> (Vec<String>, Vec<u32>) {
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let per_image = repos
        .iter()
        .map(|r| {
            *index.entry(r.as_str()).or_insert_with(|| {
                names.push(r.clone());
                (names.len() - 1) as u32
            })
        })
        .collect();
    (names, per_image)
}

/// A (blob, repository) pair as one sortable number: the blob in the high half, so the
/// pairs of one blob are next to each other once sorted.
fn pair(blob: u32, repo: u32) -> u64 {
    (u64::from(blob) << 32) | u64::from(repo)
}

fn pair_blob(p: u64) -> u32 {
    (p >> 32) as u32
}

fn pair_repo(p: u64) -> u32 {
    p as u32
}

/// Runs `job(i)` for every `i` in `0..n` on `jobs` threads; the results in index order.
fn parallel<T: Send>(jobs: usize, n: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.clamp(1, n.max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, job(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a push worker panicked"))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// What the probe learnt of an image before any blob is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// Its top manifest is in its repository by digest: its whole closure is (see
    /// [`Run::probe`]). Its tags that do not name that manifest yet are listed (by their
    /// index in `tags`), to be put.
    Complete { untagged: Vec<usize> },
    /// Not known to be complete: every blob and manifest of it is looked at, and every
    /// tag of it is put once they are in (none names its top manifest now).
    Unknown,
}

/// What the blob jobs left for the image jobs.
struct Blobs {
    /// Blobs that did not go in, with why.
    failed: BTreeMap<u32, String>,
    /// [`pair`]s the registry holds now (in a dry run: would hold), sorted: looked at by
    /// the blob jobs or implied by a complete image of the same repository.
    present: Vec<u64>,
}

impl Blobs {
    fn has(&self, blob: u32, repo: u32) -> bool {
        self.present.binary_search(&pair(blob, repo)).is_ok()
    }
}

/// How an image's manifests went.
enum Done {
    Status(ImageStatus),
    /// A manifest or blob is neither in the registry nor on the volumes at hand.
    Waiting(Vec<u32>),
}

impl Run<'_> {
    /// Stops the run at the first failure that says the registry is gone.
    fn give_up(&self, e: &RegistryFailure) {
        if e.unreachable() && !e.interrupted() {
            self.first_failure
                .lock()
                .expect("failure")
                .get_or_insert_with(|| e.to_string());
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Why a job is not started, if it is not.
    fn halted(&self) -> Option<String> {
        if self.cancel.load(Ordering::Relaxed) {
            Some(NOT_FINISHED.to_owned())
        } else if self.stop.load(Ordering::Relaxed) {
            Some(NOT_TRIED.to_owned())
        } else {
            None
        }
    }

    /// What an image's error says of a registry failure.
    fn image_error(&self, e: RegistryFailure) -> String {
        self.give_up(&e);
        if e.interrupted() {
            NOT_FINISHED.to_owned()
        } else {
            e.to_string()
        }
    }

    fn repo_of(&self, image: usize) -> &str {
        &self.names[self.image_repo[image] as usize]
    }

    /// Before any blob: which images are complete in the registry already, with as few
    /// requests as is safe — a `HEAD` of each tag (tags are always checked: one may have
    /// been moved), or of the top manifest by digest for an image without tags; for an
    /// image the last push recorded complete at this destination, one tag list of its
    /// repository instead ([`Run::listed_as_recorded`]).
    ///
    /// A top manifest that is in the image's repository by digest means the image's whole
    /// closure is there, so none of its blobs or child manifests is looked at: ferry puts a
    /// manifest only after every blob and child it names is in (this module's order), and
    /// the registry refuses one whose blobs or children it lacks (distribution 2.8:
    /// `MANIFEST_BLOB_UNKNOWN`), so whoever put it — this push, another host's, or another
    /// tool — put it complete; and a registry's garbage collection keeps what a manifest
    /// names. Not for a sparse index (SPEC.md §4.2 `platforms`): a registry that accepts it
    /// without its children says nothing of them, so its children are looked at as before.
    /// A failed `HEAD` is only "not known": the image then goes the long way, which meets
    /// the failure again and reports it. What this cannot see is a registry that lost
    /// data after the image was put (a blob link emptied under a tagged image), or, for an
    /// image taken as recorded, a tag moved to another image since: `--recheck`
    /// (`Options::recheck`) looks at every image the long way for that.
    fn probe(&self) -> Vec<Known> {
        let m = &*self.bundle.manifest;
        let listed = self.listed_as_recorded();
        let known = parallel(self.opts.jobs, m.images.len(), |i| {
            let img = &m.images[i];
            if self.opts.recheck || img.platforms.is_some() || self.halted().is_some() {
                return Known::Unknown;
            }
            if listed[i] {
                return Known::Complete {
                    untagged: Vec::new(),
                };
            }
            let repo = self.repo_of(i);
            let top = m.blobs[img.blobs[0] as usize].digest;
            let at = |reference: &str| match self.registry.manifest_digest(repo, reference) {
                Ok(d) => d,
                Err(e) => {
                    self.give_up(&e);
                    None
                }
            };
            if img.tags.is_empty() {
                return match at(&top.to_string()) {
                    Some(d) if d == top => Known::Complete {
                        untagged: Vec::new(),
                    },
                    _ => Known::Unknown,
                };
            }
            let untagged: Vec<usize> = (0..img.tags.len())
                .filter(|&t| at(&img.tags[t]) != Some(top))
                .collect();
            if untagged.len() < img.tags.len() {
                // One tag names the top manifest: it is in the repository.
                return Known::Complete { untagged };
            }
            Known::Unknown
        });
        self.totals.lock().expect("totals").images_as_recorded =
            listed.iter().filter(|&&l| l).count();
        known
    }

    /// For each image: whether the last push recorded it complete at this destination,
    /// with these tags, and the registry still lists every one of them — one
    /// `GET …/tags/list` per repository rather than a `HEAD` per tag (at 2×10^4 images in
    /// 10^3 repositories, 1/20 of the requests: the repeat went from 5.8 % of the first
    /// push's time to 1.5 %, BENCHMARKS.md). A tag gone, a repository gone (a registry
    /// wiped and set up again answers 404), or a list that fails sends the image the usual
    /// way. Images without tags are not listed: they are asked for by digest as before.
    fn listed_as_recorded(&self) -> Vec<bool> {
        let m = &*self.bundle.manifest;
        let n = m.images.len();
        let record = match &self.opts.last_push {
            Some(r) if !self.opts.recheck && r.target() == self.opts.target.to_string() => r,
            _ => return vec![false; n],
        };
        let host = &self.opts.target.registry;
        let recorded: Vec<bool> = (0..n)
            .map(|i| {
                let img = &m.images[i];
                let destination = format!("{host}/{}", self.repo_of(i));
                !img.tags.is_empty()
                    && img.platforms.is_none()
                    && record.left_complete(&destination, &img.digest, &img.tags)
            })
            .collect();
        let mut repos: Vec<u32> = (0..n)
            .filter(|&i| recorded[i])
            .map(|i| self.image_repo[i])
            .collect();
        repos.sort_unstable();
        repos.dedup();
        let lists = parallel(self.opts.jobs, repos.len(), |k| {
            if self.halted().is_some() {
                return None;
            }
            match self.registry.list_tags(&self.names[repos[k] as usize]) {
                Ok(Some(tags)) => Some(tags.into_iter().collect::<std::collections::HashSet<_>>()),
                Ok(None) => None,
                Err(e) => {
                    self.give_up(&e);
                    None
                }
            }
        });
        (0..n)
            .map(|i| {
                recorded[i] && {
                    let k = repos.binary_search(&self.image_repo[i]).expect("listed");
                    lists[k]
                        .as_ref()
                        .is_some_and(|tags| m.images[i].tags.iter().all(|t| tags.contains(t)))
                }
            })
            .collect()
    }

    /// One job per blob digest (configs and layers): every repository that needs it, for
    /// every image not known complete, whether the image can complete now or not: what a
    /// disk holds goes in now, so an image whose other blobs come on a later disk
    /// completes then, with this disk gone. A blob in a repository where a complete image
    /// has it is not looked at there.
    fn blobs(&self, known: &[Known]) -> Blobs {
        let m = &*self.bundle.manifest;
        let (mut implied, mut wanted) = (Vec::new(), Vec::new());
        for (i, img) in m.images.iter().enumerate() {
            let into = match known[i] {
                Known::Complete { .. } => &mut implied,
                Known::Unknown => &mut wanted,
            };
            let repo = self.image_repo[i];
            into.extend(
                img.blobs
                    .iter()
                    .filter(|&&b| m.blobs[b as usize].media_type.is_none())
                    .map(|&b| pair(b, repo)),
            );
        }
        for v in [&mut implied, &mut wanted] {
            v.sort_unstable();
            v.dedup();
        }
        wanted.retain(|p| implied.binary_search(p).is_err());
        // A complete image's repository holding the blob: where to mount it from.
        let holder = |blob: u32| {
            let at = implied.partition_point(|&p| pair_blob(p) < blob);
            implied
                .get(at)
                .filter(|&&p| pair_blob(p) == blob)
                .map(|&p| pair_repo(p))
        };
        let mut jobs: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
        for (k, &p) in wanted.iter().enumerate() {
            match jobs.last_mut() {
                Some((b, range)) if *b == pair_blob(p) => range.end = k + 1,
                _ => jobs.push((pair_blob(p), k..k + 1)),
            }
        }
        // Largest first, so the two cores and the network stay busy to the end.
        jobs.sort_by_key(|(b, _)| std::cmp::Reverse(m.blobs[*b as usize].size));
        let results = parallel(self.opts.jobs, jobs.len(), |k| {
            let (blob, range) = &jobs[k];
            if let Some(why) = self.halted() {
                return Err(why);
            }
            let repos: Vec<u32> = wanted[range.clone()]
                .iter()
                .map(|&p| pair_repo(p))
                .collect();
            self.blob_job(*blob, &repos, holder(*blob))
                .map_err(|e| self.image_error(e))
        });
        let mut failed = BTreeMap::new();
        let mut present = implied;
        self.totals.lock().expect("totals").blobs_present += present.len();
        for ((blob, _), r) in jobs.iter().zip(results) {
            match r {
                Ok(there) => present.extend(there.into_iter().map(|r| pair(*blob, r))),
                Err(e) => {
                    failed.insert(*blob, e);
                }
            }
        }
        present.sort_unstable();
        Blobs { failed, present }
    }

    /// Manifests and tags of every image whose blobs are all in the registry now; the
    /// outcome of each image, in manifest order.
    fn images(&self, blobs: &Blobs, known: &[Known]) -> Vec<Result<Done, String>> {
        let m = &*self.bundle.manifest;
        parallel(self.opts.jobs, m.images.len(), |k| match self.halted() {
            Some(why) => Err(why),
            None => self.image(k, blobs, &known[k]),
        })
    }

    /// One image, once the blob jobs are done: its manifests and tags if all its blobs are
    /// in, else what it waits for (its manifests on this disk kept for a later run).
    fn image(&self, k: usize, blobs: &Blobs, known: &Known) -> Result<Done, String> {
        let (bundle, m) = (self.bundle, &*self.bundle.manifest);
        let img = &m.images[k];
        let (repo_index, repo) = (self.image_repo[k], self.repo_of(k));
        let done = match known {
            Known::Complete { untagged } => self
                .tag_job(img, repo, untagged, None)
                .map_err(|e| self.image_error(e)),
            Known::Unknown => {
                let layers: Vec<u32> = img
                    .blobs
                    .iter()
                    .copied()
                    .filter(|&b| m.blobs[b as usize].media_type.is_none())
                    .collect();
                if let Some(e) = layers.iter().find_map(|b| blobs.failed.get(b)) {
                    return Err(if e == NOT_FINISHED || e == NOT_TRIED {
                        e.clone()
                    } else {
                        format!("a blob did not upload: {e}")
                    });
                }
                let absent: BTreeSet<u32> = layers
                    .iter()
                    .filter(|&&b| !blobs.has(b, repo_index))
                    .flat_map(|&b| bundle.blob_missing_volumes(b))
                    .collect();
                if absent.is_empty() {
                    self.image_job(img, repo).map_err(|e| self.image_error(e))
                } else {
                    Ok(Done::Waiting(absent.into_iter().collect()))
                }
            }
        };
        if let Ok(Done::Status(_)) = &done {
            // In the registry now: staged copies of its manifests are done with.
            for &b in img
                .blobs
                .iter()
                .filter(|&&b| m.blobs[b as usize].media_type.is_some())
            {
                self.forget_staged(b);
            }
        }
        match done {
            // Its manifests cannot go in before its blobs; keep the ones this disk holds
            // (they are small) so the run with the last disk can finish it.
            Ok(Done::Waiting(volumes)) if !self.opts.dry_run => {
                self.stage_manifests(img, repo, volumes.into_iter().collect())
            }
            other => other,
        }
    }

    /// Removes the staged chunks of a blob that is in the registry now.
    fn forget_staged(&self, blob: u32) {
        let bundle = self.bundle;
        let Some(stage) = &bundle.stage else { return };
        if let Ok(chunks) = bundle.chunks_of(blob) {
            for (_, c) in chunks {
                stage.forget_chunk(&bundle.chunk_name(&c));
            }
        }
    }

    /// Puts one blob into every repository that needs it, as far as the volumes at hand
    /// allow. Returns the repositories that hold it afterwards (in a dry run: would hold it).
    /// `known_holder` is a repository a complete image has it in (from the probe).
    fn blob_job(
        &self,
        blob: u32,
        repos: &[u32],
        known_holder: Option<u32>,
    ) -> Result<Vec<u32>, RegistryFailure> {
        let (bundle, registry, dry_run) = (self.bundle, self.registry, self.opts.dry_run);
        let b = &bundle.manifest.blobs[blob as usize];
        let name = |r: u32| self.names[r as usize].as_str();
        let mut holder: Option<&str> = known_holder.map(name);
        let mut there = Vec::new();
        let mut missing = Vec::new();
        for &r in repos {
            let repo = name(r);
            // A registry that crashed can answer 500 for a blob whose link file it left
            // empty; sending the blob again rewrites the link, so a resume can finish.
            let exists = match registry.blob_exists(repo, &b.digest) {
                Err(e) if e.server_error() => false,
                other => other?,
            };
            if exists {
                holder.get_or_insert(repo);
                there.push(r);
                self.totals.lock().expect("totals").blobs_present += 1;
            } else {
                missing.push(r);
            }
        }
        if missing.is_empty() {
            return Ok(there);
        }
        if bundle.is_base(blob) {
            // Not on any volume: mount it from a repository of this push or where the base
            // put it.
            let from = holder
                .map(str::to_owned)
                .or_else(|| self.hints.get(&blob).cloned())
                .ok_or(RegistryFailure::BaseNowhere { digest: b.digest })?;
            for r in missing {
                let repo = name(r);
                if dry_run {
                    there.push(r);
                    continue;
                }
                if !registry.mount_blob(repo, &b.digest, &from)? {
                    return Err(RegistryFailure::MountDeclined {
                        digest: b.digest,
                        repo: repo.to_owned(),
                        from,
                    });
                }
                self.totals.lock().expect("totals").blobs_mounted += 1;
                (self.events)(Event::BlobMounted {
                    digest: &b.digest,
                    repo,
                    from: &from,
                });
                there.push(r);
            }
            return Ok(there);
        }
        let available = bundle.blob_missing_volumes(blob).is_empty();
        if dry_run {
            if available {
                let mut t = self.totals.lock().expect("totals");
                if holder.is_none() {
                    t.would_upload += 1;
                    t.would_upload_bytes += b.size;
                }
                there.extend(missing);
            }
            return Ok(there);
        }
        if !available {
            // Part of it may be on this disk: keep those chunks for the run that brings the rest.
            if bundle.blob_missing_volumes(blob).len()
                < (b.last_volume - b.first_volume + 1) as usize
            {
                let n = bundle.stage_present_chunks(blob).map_err(|source| {
                    RegistryFailure::Staging {
                        digest: b.digest,
                        source,
                    }
                })?;
                self.totals.lock().expect("totals").bytes_staged += n;
            }
            return Ok(there);
        }
        for r in missing {
            let repo = name(r);
            if let Some(from) = holder {
                if registry.mount_blob(repo, &b.digest, from)? {
                    self.totals.lock().expect("totals").blobs_mounted += 1;
                    (self.events)(Event::BlobMounted {
                        digest: &b.digest,
                        repo,
                        from,
                    });
                    there.push(r);
                    continue;
                }
            }
            let open = || -> Result<Box<dyn Read + '_>, RegistryFailure> {
                bundle
                    .open_blob_for_upload(blob)
                    .map(|r| Box::new(r) as Box<dyn Read>)
                    .map_err(RegistryFailure::Volumes)
            };
            let _slot = (b.size >= BIG_UPLOAD).then(|| self.big_uploads.take());
            registry.upload_blob(repo, &b.digest, b.size, &open)?;
            {
                let mut t = self.totals.lock().expect("totals");
                t.blobs_uploaded += 1;
                t.bytes_uploaded += b.size;
            }
            (self.events)(Event::BlobUploaded {
                digest: &b.digest,
                repo,
                bytes: b.size,
            });
            holder = Some(repo);
            there.push(r);
        }
        // Staged pieces of this blob are no longer needed once it is in the registry.
        self.forget_staged(blob);
        Ok(there)
    }

    /// PUTs a manifest whose blobs and children were found in the registry (or put there)
    /// just before. A refusal that another host's push of the same parts can cause
    /// ([`RegistryFailure::may_be_a_concurrent_put`]) is tried again a few times, over about
    /// 1.5 s; a part that is really missing is refused each time, and that answer returned.
    fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryFailure> {
        let mut pause = std::time::Duration::from_millis(100);
        for _ in 0..4 {
            match self
                .registry
                .put_manifest(repo, reference, media_type, bytes)
            {
                Err(e) if e.may_be_a_concurrent_put() && !self.cancel.load(Ordering::Relaxed) => {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                other => return other,
            }
        }
        self.registry
            .put_manifest(repo, reference, media_type, bytes)
    }

    /// A manifest's bytes: from the volumes at hand (or the state directory), else the copy
    /// another host's push handed over in the repository as a blob (see
    /// [`Run::stage_manifests`]), checked against the signed digest and size; `None` when
    /// neither has it.
    fn manifest_bytes(&self, repo: &str, b: u32) -> Result<Option<Vec<u8>>, RegistryFailure> {
        let (bundle, registry) = (self.bundle, self.registry);
        if bundle.blob_missing_volumes(b).is_empty() {
            return read_small(bundle, b).map(Some);
        }
        let blob = &bundle.manifest.blobs[b as usize];
        let got = match registry.get_blob(repo, &blob.digest, blob.size) {
            Err(e) if e.server_error() => None,
            other => other?,
        };
        // Not the signed bytes (a registry that does not check digests, a blob being
        // written): as if not there; the push that has the disk puts it in.
        Ok(got.filter(|bytes| bytes.len() as u64 == blob.size && Digest::of(bytes) == blob.digest))
    }

    /// Keeps verified copies of an image's manifests that are on the volumes at hand.
    /// `waiting` holds the volumes its layers not yet in the registry need; the result adds
    /// those its manifests need.
    /// It also hands each of them over in the image's repository, as a blob of the same
    /// digest: the push of another host (another `--state`) whose disks lack it reads it
    /// from there and puts the manifest in, so no image needs one host to hold all its disks.
    fn stage_manifests(
        &self,
        img: &Image,
        repo: &str,
        mut waiting: BTreeSet<u32>,
    ) -> Result<Done, String> {
        let (bundle, m) = (self.bundle, &*self.bundle.manifest);
        for &b in &img.blobs {
            if m.blobs[b as usize].media_type.is_none() {
                continue;
            }
            let missing = bundle.blob_missing_volumes(b);
            if missing.is_empty() {
                let n = bundle
                    .stage_present_chunks(b)
                    .map_err(|e| format!("staging manifest {}: {e}", m.blobs[b as usize].digest))?;
                self.totals.lock().expect("totals").bytes_staged += n;
                self.hand_over(repo, b)
                    .map_err(|e| match self.image_error(e) {
                        // Said as every interrupted image says it (the exit status reads it).
                        stopped if stopped == NOT_FINISHED => stopped,
                        e => format!(
                            "handing manifest {} over in {repo}: {e}",
                            m.blobs[b as usize].digest
                        ),
                    })?;
            }
            waiting.extend(missing);
        }
        Ok(Done::Waiting(waiting.into_iter().collect()))
    }

    /// Uploads manifest `b` (on the volumes at hand) as a blob of `repo`, unless it is there.
    fn hand_over(&self, repo: &str, b: u32) -> Result<(), RegistryFailure> {
        let (bundle, registry) = (self.bundle, self.registry);
        let blob = &bundle.manifest.blobs[b as usize];
        let there = match registry.blob_exists(repo, &blob.digest) {
            Err(e) if e.server_error() => false,
            other => other?,
        };
        if there {
            return Ok(());
        }
        let bytes = read_small(bundle, b)?;
        let open = || -> Result<Box<dyn Read + '_>, RegistryFailure> {
            Ok(Box::new(std::io::Cursor::new(bytes.as_slice())))
        };
        registry.upload_blob(repo, &blob.digest, blob.size, &open)
    }

    /// Refuses a delta bundle whose base is not in the registry (read-only: HEAD only).
    fn check_base(&self) -> Result<(), PushError> {
        let (bundle, m) = (self.bundle, &*self.bundle.manifest);
        if !m.is_delta() {
            return Ok(());
        }
        let host = &self.opts.target.registry;
        let mut needed: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, img) in m.images.iter().enumerate() {
            for &b in img.blobs.iter().filter(|&&b| bundle.is_base(b)) {
                needed.entry(b).or_default().push(i);
            }
        }
        let mut missing = Vec::new();
        for (b, images) in needed {
            let digest = &m.blobs[b as usize].digest;
            let mut places: Vec<&String> = images
                .iter()
                .map(|&i| &self.names[self.image_repo[i] as usize])
                .collect();
            places.sort_unstable();
            places.dedup();
            if let Some(h) = self.hints.get(&b).filter(|h| !places.contains(h)) {
                places.push(h);
            }
            let mut found = false;
            for repo in &places {
                if self
                    .registry
                    .blob_exists(repo, digest)
                    .map_err(PushError::BaseCheck)?
                {
                    found = true;
                    break;
                }
            }
            if !found {
                let names: Vec<String> =
                    images.iter().map(|&i| m.images[i].display_name()).collect();
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

    /// A refused PUT of a sparse index, told as such: the registry wants children the
    /// bundle does not carry (by design), so the cure is another registry or a full pack.
    fn sparse_refusal(&self, img: &Image, blob: u32, e: RegistryFailure) -> RegistryFailure {
        match (e, &img.platforms) {
            (RegistryFailure::Registry(source), Some(platforms))
                if img.blobs.first() == Some(&blob)
                    && RegistryFailure::refuses_missing_children(&source) =>
            {
                RegistryFailure::SparseRefused {
                    image: img.display_name(),
                    platforms: platforms.clone(),
                    registry: self.opts.target.registry.clone(),
                    source: Box::new(source),
                }
            }
            (e, _) => e,
        }
    }

    /// Manifests bottom-up by digest, then tags (only once every manifest is in).
    /// A sparse index's children not in the bundle are not in `img.blobs`: they are not sent.
    /// The probe found no tag of it naming its top manifest: every tag is put.
    fn image_job(&self, img: &Image, repo: &str) -> Result<Done, RegistryFailure> {
        let (bundle, registry, dry_run) = (self.bundle, self.registry, self.opts.dry_run);
        let m = &*bundle.manifest;
        let mut sent = false;
        let mut top_bytes = None;
        let mut untagged: Vec<usize> = (0..img.tags.len()).collect();
        for b in manifests_bottom_up(m, img) {
            let blob = &m.blobs[b as usize];
            let reference = blob.digest.to_string();
            // As for blobs: a 500 for one manifest is answered by putting it again.
            let there = match registry.manifest_digest(repo, &reference) {
                Err(e) if e.server_error() => None,
                other => other?,
            };
            if there.is_some() {
                continue;
            }
            let Some(bytes) = self.manifest_bytes(repo, b)? else {
                return Ok(Done::Waiting(bundle.blob_missing_volumes(b)));
            };
            if dry_run {
                continue;
            }
            // The top manifest of a tagged image goes in by its first tag: one PUT that
            // stores it and names it, as `docker push` does, rather than a PUT by digest and
            // another by tag (distribution writes and syncs the manifest's revision link at
            // each). Safe at this point as a tag always is: every blob and child it names is
            // in, and the registry refuses it otherwise.
            let by_tag = b == img.blobs[0] && !img.tags.is_empty();
            let at = if by_tag { &img.tags[0] } else { &reference };
            let media_type = blob.media_type.as_deref().unwrap_or(&img.media_type);
            self.put_manifest(repo, at, media_type, &bytes)
                .map_err(|e| self.sparse_refusal(img, b, e))?;
            let mut totals = self.totals.lock().expect("totals");
            totals.manifests_pushed += 1;
            if by_tag {
                totals.tags_pushed += 1;
                untagged.remove(0);
            }
            drop(totals);
            sent = true;
            if b == img.blobs[0] {
                top_bytes = Some(bytes);
            }
        }
        match self.tag_job(img, repo, &untagged, top_bytes)? {
            Done::Status(ImageStatus::Present) if sent => Ok(Done::Status(ImageStatus::Pushed)),
            other => Ok(other),
        }
    }

    /// Puts the tags `untagged` (indices into `img.tags`) of an image whose top manifest
    /// is in the registry: the last step, so a tag never names an incomplete image.
    /// `top_bytes`: the top manifest's bytes, when the caller has them at hand.
    fn tag_job(
        &self,
        img: &Image,
        repo: &str,
        untagged: &[usize],
        mut top_bytes: Option<Vec<u8>>,
    ) -> Result<Done, RegistryFailure> {
        let (bundle, dry_run) = (self.bundle, self.opts.dry_run);
        let m = &*bundle.manifest;
        if dry_run {
            return Ok(Done::Status(ImageStatus::Planned));
        }
        let top = &m.blobs[img.blobs[0] as usize];
        let media_type = top.media_type.as_deref().unwrap_or(&img.media_type);
        for &t in untagged {
            if top_bytes.is_none() {
                // The top manifest is in the registry (above), but its bytes may be on
                // another host's disk: that host tags it (or a later run here, once it
                // handed them over).
                let Some(bytes) = self.manifest_bytes(repo, img.blobs[0])? else {
                    return Ok(Done::Waiting(bundle.blob_missing_volumes(img.blobs[0])));
                };
                top_bytes = Some(bytes);
            }
            let bytes = top_bytes.as_deref().expect("read above");
            self.put_manifest(repo, &img.tags[t], media_type, bytes)?;
            self.totals.lock().expect("totals").tags_pushed += 1;
        }
        Ok(Done::Status(if untagged.is_empty() {
            ImageStatus::Present
        } else {
            ImageStatus::Pushed
        }))
    }
}

/// Manifests are small (registries cap them at 4 MiB); read them whole.
fn read_small(bundle: &Bundle, blob: u32) -> Result<Vec<u8>, RegistryFailure> {
    let r = bundle.open_blob(blob).map_err(RegistryFailure::Volumes)?;
    let mut out = Vec::new();
    // Bounded here too, whatever the manifest declares (M24 caps it at validation).
    r.take(format_spec::manifest::MAX_MANIFEST_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(RegistryFailure::Read)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use format_spec::key::PublicKey;
    use format_spec::volume_set::{open_bundle, Unopened};

    use super::*;
    use crate::registry::fake::FakeRegistry;

    /// The committed five-volume bundle of the format's test vectors.
    fn bundle() -> Bundle {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors/valid-bundle");
        let keys = vec![PublicKey::load(&dir.join("key.pub")).unwrap()];
        open_bundle(&[dir], &keys, Unopened::Refuse, None)
            .unwrap()
            .bundle
    }

    fn options() -> Options {
        Options {
            target: Target::parse("registry.test/mirror").unwrap(),
            max_components: 0,
            jobs: 2,
            dry_run: false,
            recheck: false,
            last_push: None,
        }
    }

    fn run(bundle: &Bundle, registry: &FakeRegistry) -> Report {
        push(
            bundle,
            registry,
            &options(),
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap()
    }

    #[test]
    fn a_push_puts_every_image_in_and_a_second_finds_them_present() {
        let bundle = bundle();
        let registry = FakeRegistry::default();
        let first = run(&bundle, &registry);
        assert!(!first.images.is_empty());
        assert!(
            first.images.iter().all(|i| i.status == ImageStatus::Pushed),
            "{:?}",
            first.images
        );
        assert_eq!(first.failed() + first.waiting(), 0);
        // Every tag names the image's top manifest.
        let tags = registry.tags();
        for (img, o) in bundle.manifest.images.iter().zip(&first.images) {
            let repo = o.destination.strip_prefix("registry.test/").unwrap();
            for t in &img.tags {
                assert_eq!(tags.get(&(repo.to_owned(), t.clone())), Some(&img.digest));
            }
        }
        let second = run(&bundle, &registry);
        assert!(second
            .images
            .iter()
            .all(|i| i.status == ImageStatus::Present));
        assert_eq!(second.totals.blobs_uploaded, 0);
        assert_eq!(second.totals.manifests_pushed, 0);
    }

    /// However many workers want one, no more than the slots given hold one at once.
    #[test]
    fn slots_bound_how_many_hold_one_at_once() {
        let slots = Slots::new(BIG_UPLOADS_AT_ONCE);
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        parallel(16, 64, |_| {
            let _slot = slots.take();
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            now.fetch_sub(1, Ordering::SeqCst);
        });
        assert_eq!(most.load(Ordering::SeqCst), BIG_UPLOADS_AT_ONCE);
        assert_eq!(
            *slots.free.lock().unwrap(),
            BIG_UPLOADS_AT_ONCE,
            "all given back"
        );
    }

    /// Where in the log each image's parts went in: every blob of it before any of its
    /// manifests is put, children before the index, and its tags after all of them.
    fn assert_in_order(bundle: &Bundle, registry: &FakeRegistry) {
        let m = &*bundle.manifest;
        let log = registry.log.lock().unwrap().clone();
        let repos = map_images(m, &options()).unwrap();
        let last = |what: &[&str], repo: &str, reference: &str| {
            log.iter()
                .rposition(|(w, r, d)| what.contains(w) && r == repo && d == reference)
        };
        let first = |what: &str, repo: &str, reference: &str| {
            log.iter()
                .position(|(w, r, d)| *w == what && r == repo && d == reference)
        };
        for (img, repo) in m.images.iter().zip(&repos) {
            let mut put_manifests = Vec::new();
            for b in manifests_bottom_up(m, img) {
                let d = m.blobs[b as usize].digest.to_string();
                // The top manifest of a tagged image goes in by a tag.
                let by_tag = || {
                    img.tags
                        .iter()
                        .filter_map(|t| first("PUT manifest", repo, t))
                        .min()
                };
                let at = first("PUT manifest", repo, &d);
                let at = if b == img.blobs[0] {
                    at.or_else(by_tag)
                } else {
                    at
                };
                if let Some(at) = at {
                    put_manifests.push((b, at));
                }
            }
            let first_put = put_manifests.iter().map(|(_, at)| *at).min();
            for &b in &img.blobs {
                let blob = &m.blobs[b as usize];
                if blob.media_type.is_some() {
                    continue;
                }
                let d = blob.digest.to_string();
                if let (Some(sent), Some(put)) = (last(&["upload", "mount"], repo, &d), first_put) {
                    assert!(
                        sent < put,
                        "{d} went into {repo} after a manifest naming it"
                    );
                }
            }
            // Bottom-up: the log order of the puts follows `manifests_bottom_up`.
            assert!(
                put_manifests.windows(2).all(|w| w[0].1 < w[1].1),
                "{}: manifests not children first: {put_manifests:?}",
                img.display_name()
            );
            // Every tag after the top manifest went in (the put by a tag that stored it is
            // that tag's first), and so after its children (bottom-up, above).
            let top_put = put_manifests
                .iter()
                .find(|(b, _)| *b == img.blobs[0])
                .map(|(_, at)| *at);
            for t in &img.tags {
                if let (Some(tagged), Some(put)) = (first("PUT manifest", repo, t), top_put) {
                    assert!(
                        put <= tagged,
                        "{repo}:{t} tagged before its manifest went in"
                    );
                }
            }
        }
    }

    #[test]
    fn a_push_puts_blobs_then_manifests_children_first_then_tags() {
        let bundle = bundle();
        let registry = FakeRegistry::default();
        let report = run(&bundle, &registry);
        assert_eq!(report.failed() + report.waiting(), 0, "{:?}", report.images);
        assert!(registry.count("PUT manifest") > 0 && registry.count("upload") > 0);
        assert_in_order(&bundle, &registry);
    }

    /// A repeat push learns that an image is whole from a HEAD of each of its tags (of its
    /// top manifest by digest when it has none): no blob and no child manifest is looked
    /// at, and nothing is put.
    #[test]
    fn a_repeat_push_asks_only_for_the_tags() {
        let bundle = bundle();
        let m = &*bundle.manifest;
        let registry = FakeRegistry::default();
        run(&bundle, &registry);
        registry.log.lock().unwrap().clear();
        let second = run(&bundle, &registry);
        assert!(
            second
                .images
                .iter()
                .all(|i| i.status == ImageStatus::Present),
            "{:?}",
            second.images
        );
        let sparse: Vec<&Image> = m.images.iter().filter(|i| i.platforms.is_some()).collect();
        let asked: usize = m.images.iter().map(|i| i.tags.len().max(1)).sum::<usize>();
        let log = registry.log.lock().unwrap().clone();
        if sparse.is_empty() {
            assert_eq!(registry.count("HEAD blob"), 0, "{log:?}");
            assert_eq!(log.len(), asked, "one HEAD per tag: {log:?}");
        }
        assert!(log.len() >= asked, "{log:?}");
        for what in ["upload", "mount", "PUT manifest"] {
            assert_eq!(registry.count(what), 0, "{what}: {log:?}");
        }
        assert_eq!(
            second.totals.manifests_pushed + second.totals.tags_pushed,
            0
        );
        assert!(second.totals.blobs_present > 0, "{:?}", second.totals);
    }

    /// The record of a push as a repeat reads it back from the state directory.
    fn recorded(report: &Report) -> LastPush {
        serde_json::from_slice(&serde_json::to_vec(report).unwrap()).unwrap()
    }

    fn run_after(bundle: &Bundle, registry: &FakeRegistry, last: &Report, recheck: bool) -> Report {
        let opts = Options {
            last_push: Some(recorded(last)),
            recheck,
            ..options()
        };
        push(bundle, registry, &opts, &|_| {}, &AtomicBool::new(false)).unwrap()
    }

    /// Images the record can vouch for: tagged, not sparse.
    fn listable(m: &BundleManifest) -> Vec<usize> {
        (0..m.images.len())
            .filter(|&i| !m.images[i].tags.is_empty() && m.images[i].platforms.is_none())
            .collect()
    }

    /// With the last push's record, a repeat lists each repository's tags once and asks
    /// for no tag of an image the record has complete.
    #[test]
    fn a_repeat_push_with_the_record_lists_each_repository_once() {
        let bundle = bundle();
        let m = &*bundle.manifest;
        let registry = FakeRegistry::default();
        let first = run(&bundle, &registry);
        let listable = listable(m);
        assert!(!listable.is_empty(), "the vector has tagged images");
        registry.log.lock().unwrap().clear();
        let second = run_after(&bundle, &registry, &first, false);
        assert!(
            second
                .images
                .iter()
                .all(|i| i.status == ImageStatus::Present),
            "{:?}",
            second.images
        );
        assert_eq!(second.totals.images_as_recorded, listable.len());
        let repos: BTreeSet<&str> = listable
            .iter()
            .map(|&i| &*first.images[i].destination)
            .collect();
        let log = registry.log.lock().unwrap().clone();
        assert_eq!(registry.count("GET tags"), repos.len(), "{log:?}");
        for &i in &listable {
            let repo = first.images[i]
                .destination
                .strip_prefix("registry.test/")
                .unwrap();
            for t in &m.images[i].tags {
                assert!(
                    !log.iter()
                        .any(|(w, r, d)| *w == "HEAD manifest" && r == repo && d == t),
                    "a recorded image's tag was asked for: {log:?}"
                );
            }
        }
        if listable.len() == m.images.len() {
            assert_eq!(log.len(), repos.len(), "only the tag lists: {log:?}");
        }
        for what in ["upload", "mount", "PUT manifest"] {
            assert_eq!(registry.count(what), 0, "{what}: {log:?}");
        }
        // Without the record (another state directory), one HEAD per tag as before.
        registry.log.lock().unwrap().clear();
        let third = run(&bundle, &registry);
        assert_eq!(third.totals.images_as_recorded, 0);
        assert_eq!(registry.count("GET tags"), 0);
    }

    /// What the record cannot see is asked again: a tag gone since is found missing in the
    /// tag list and put back; a registry wiped and set up again (its repositories unknown)
    /// gets everything; a record of another target, or `--recheck`, is not used. A tag
    /// moved since is left as the record has it unless `--recheck` (SPEC.md §6.4).
    #[test]
    fn what_the_record_cannot_vouch_for_is_asked_again() {
        let bundle = bundle();
        let m = &*bundle.manifest;
        let registry = FakeRegistry::default();
        let first = run(&bundle, &registry);
        let listable = listable(m);
        let repo_of = |i: usize| {
            first.images[i]
                .destination
                .strip_prefix("registry.test/")
                .unwrap()
                .to_owned()
        };
        let dropped = listable[0];
        for t in &m.images[dropped].tags {
            registry.drop_tag(&repo_of(dropped), t);
        }
        registry.log.lock().unwrap().clear();
        let second = run_after(&bundle, &registry, &first, false);
        assert_eq!(second.images[dropped].status, ImageStatus::Pushed);
        for t in &m.images[dropped].tags {
            assert_eq!(
                registry.tags().get(&(repo_of(dropped), t.clone())),
                Some(&m.images[dropped].digest)
            );
        }
        assert_eq!(registry.count("upload") + registry.count("mount"), 0);

        let moved = *listable.last().unwrap();
        let elsewhere = Digest::of(b"something else");
        let tag = (repo_of(moved), m.images[moved].tags[0].clone());
        registry.move_tag(&tag.0, &tag.1, elsewhere);
        let third = run_after(&bundle, &registry, &second, false);
        assert_eq!(third.images[moved].status, ImageStatus::Present);
        assert_eq!(registry.tags().get(&tag), Some(&elsewhere), "left as it is");
        let fourth = run_after(&bundle, &registry, &third, true);
        assert_eq!(fourth.totals.images_as_recorded, 0);
        assert_eq!(fourth.images[moved].status, ImageStatus::Pushed);
        assert_eq!(
            registry.tags().get(&tag),
            Some(&m.images[moved].digest),
            "put back"
        );

        let wiped = FakeRegistry::default();
        let again = run_after(&bundle, &wiped, &fourth, false);
        assert_eq!(again.totals.images_as_recorded, 0);
        assert!(
            again.images.iter().all(|i| i.status == ImageStatus::Pushed),
            "{:?}",
            again.images
        );

        let other = FakeRegistry::default();
        let opts = Options {
            target: Target::parse("other.test/mirror").unwrap(),
            last_push: Some(recorded(&first)),
            ..options()
        };
        let r = push(&bundle, &other, &opts, &|_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(
            other.count("GET tags"),
            0,
            "a record of registry.test/mirror"
        );
        assert_eq!(
            r.totals.images_as_recorded, 0,
            "a record of registry.test/mirror"
        );
    }

    /// A tag moved to something else, or removed, is put back by a repeat push, after its
    /// image is found whole (by digest, its blobs and children), never before.
    #[test]
    fn a_moved_or_removed_tag_is_put_back_once_its_image_is_found_whole() {
        let bundle = bundle();
        let m = &*bundle.manifest;
        let registry = FakeRegistry::default();
        let first = run(&bundle, &registry);
        let tagged: Vec<usize> = (0..m.images.len())
            .filter(|&i| !m.images[i].tags.is_empty())
            .collect();
        assert!(!tagged.is_empty(), "the vector has tagged images");
        let repo_of = |i: usize| {
            first.images[i]
                .destination
                .strip_prefix("registry.test/")
                .unwrap()
                .to_owned()
        };
        let moved = tagged[0];
        let removed = *tagged.last().unwrap();
        for t in &m.images[moved].tags {
            registry.move_tag(&repo_of(moved), t, Digest::of(b"something else"));
        }
        for t in &m.images[removed].tags {
            registry.drop_tag(&repo_of(removed), t);
        }
        registry.log.lock().unwrap().clear();
        let second = run(&bundle, &registry);
        for i in [moved, removed] {
            assert_eq!(
                second.images[i].status,
                ImageStatus::Pushed,
                "{:?}",
                second.images[i]
            );
            for t in &m.images[i].tags {
                assert_eq!(
                    registry.tags().get(&(repo_of(i), t.clone())),
                    Some(&m.images[i].digest)
                );
            }
        }
        assert_eq!(registry.count("upload") + registry.count("mount"), 0);
        assert_in_order(&bundle, &registry);
        // Its blobs were each found in the registry before the tag (which stores the top
        // manifest again) went in.
        let log = registry.log.lock().unwrap().clone();
        let tag = &m.images[moved].tags[0];
        let put = log
            .iter()
            .position(|(w, r, d)| *w == "PUT manifest" && *r == repo_of(moved) && d == tag)
            .expect("the moved tag is put back");
        for &b in &m.images[moved].blobs[1..] {
            let d = m.blobs[b as usize].digest.to_string();
            let head = log.iter().position(|(w, r, x)| {
                (*w == "HEAD blob" || *w == "HEAD manifest") && *r == repo_of(moved) && *x == d
            });
            assert!(matches!(head, Some(h) if h < put), "{d}: {log:?}");
        }
    }

    /// An image with a `destination` (the image set's `targetRepo`) goes to
    /// PREFIX/<destination>, flattened by `--max-components` as any other; the mirror sets
    /// map its original repository there. Without one, PREFIX/<source path>, as always.
    #[test]
    fn a_destination_names_where_the_image_goes_and_what_the_mirror_sets_map_to() {
        let mut bundle = bundle();
        let mut m = (*bundle.manifest).clone();
        let source = m.images[0]
            .source
            .clone()
            .expect("the vector records its source");
        let source_repo = crate::mapping::SourceRef::parse(&source)
            .unwrap()
            .repository();
        let source_path = source_path(&m.images[0]).unwrap();
        assert_eq!(
            map_images(&m, &options()).unwrap()[0],
            format!("mirror/{source_path}"),
            "no destination: the source's path"
        );
        m.images[0].destination = Some("team/mirrored/es-proxy".into());
        let flat = Options {
            max_components: 2,
            ..options()
        };
        assert_eq!(
            map_images(&m, &flat).unwrap()[0],
            "mirror/team-mirrored-es-proxy"
        );
        bundle.manifest = std::sync::Arc::new(m);

        let registry = FakeRegistry::default();
        let report = run(&bundle, &registry);
        let to = "registry.test/mirror/team/mirrored/es-proxy";
        assert_eq!(report.images[0].destination, to);
        assert_eq!(report.images[0].status, ImageStatus::Pushed);
        let pushed = crate::outputs::pushed_images(&bundle, &report);
        let rendered = crate::openshift::render(
            &pushed,
            &crate::openshift::Options {
                name: "ferry-0123456789ab",
                catalog_secrets: &[],
                publisher: "ferry",
                layout: "oci",
                provenance: crate::openshift::Provenance {
                    bundle_id: "sha256:0123",
                    ferry_version: "0.1.0",
                    created: "2026-12-01T08:00:00Z",
                    partial: false,
                },
            },
        );
        let idms = rendered.digest_mirror_sets.expect("an IDMS");
        assert!(
            idms.contains(&format!("source: \"{source_repo}\""))
                && idms.contains(&format!("- \"{to}\"")),
            "{idms}"
        );
        assert_eq!(
            idms.matches("registry.test/").count(),
            1,
            "one mirror: {idms}"
        );
        let mut mapping = Vec::new();
        crate::openshift::write_mapping(&mut mapping, &pushed).unwrap();
        let mapping = String::from_utf8(mapping).unwrap();
        assert!(mapping.starts_with(&format!("{source}={to}:")), "{mapping}");
    }

    /// Another host's push left an image's blobs in the registry and its manifests as
    /// blobs (it lacked a disk): a push without the disks that hold those manifests finishes
    /// the image from them. Bytes that are not the signed ones are not used: it waits.
    #[test]
    fn a_manifest_another_host_handed_over_finishes_the_image_and_a_forged_one_does_not() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors/valid-bundle");
        let keys = vec![PublicKey::load(&dir.join("key.pub")).unwrap()];
        let all = bundle();
        let m = &*all.manifest;
        let img = &m.images[0];
        let top = &m.blobs[img.blobs[0] as usize];
        let volumes: Vec<std::path::PathBuf> = (1..=m.volume_count)
            .filter(|v| !(top.first_volume..=top.last_volume).contains(v))
            .map(|v| {
                let name = format!(
                    "ferry-{}-{v:03}-of-{:03}.tar",
                    &m.bundle_id.hex()[..12],
                    m.volume_count
                );
                dir.join(name)
            })
            .collect();
        assert!(
            !volumes.is_empty(),
            "the image's manifest is on every volume"
        );
        let part = open_bundle(&volumes, &keys, Unopened::Refuse, None)
            .unwrap()
            .bundle;
        let repo = map_images(m, &options()).unwrap()[0].clone();
        let other_host = |forged: bool| {
            let registry = FakeRegistry::default();
            for &b in &img.blobs {
                let blob = &m.blobs[b as usize];
                let mut bytes = read_small(&all, b).unwrap();
                if forged && blob.media_type.is_some() {
                    bytes.push(b' ');
                }
                registry.put_blob(&repo, blob.digest, bytes);
            }
            registry
        };

        let registry = other_host(false);
        let report = run(&part, &registry);
        assert_eq!(
            report.images[0].status,
            ImageStatus::Pushed,
            "{:?}",
            report.images[0]
        );
        for t in &img.tags {
            assert_eq!(
                registry.tags().get(&(repo.clone(), t.clone())),
                Some(&img.digest)
            );
        }

        let registry = other_host(true);
        let report = run(&part, &registry);
        assert_eq!(
            report.images[0].status,
            ImageStatus::Waiting,
            "{:?}",
            report.images[0]
        );
        assert!(registry.tags().keys().all(|(r, _)| r != &repo), "no tag");
    }

    /// While another host puts the same parts, distribution refuses a manifest naming them
    /// for a moment: the push tries again and the image goes in; a refusal that lasts is
    /// the image's error.
    #[test]
    fn a_manifest_refused_for_a_moment_goes_in_and_one_always_refused_fails_the_image() {
        let bundle = bundle();
        let registry = FakeRegistry::default();
        registry.refuse_puts.store(3, Ordering::SeqCst);
        let report = run(&bundle, &registry);
        assert!(
            report
                .images
                .iter()
                .all(|i| i.status == ImageStatus::Pushed),
            "{:?}",
            report.images
        );

        let registry = FakeRegistry::default();
        registry.refuse_puts.store(usize::MAX, Ordering::SeqCst);
        let report = run(&bundle, &registry);
        for i in &report.images {
            assert_eq!(i.status, ImageStatus::Failed, "{i:?}");
            assert!(
                i.error
                    .as_deref()
                    .unwrap_or_default()
                    .contains("MANIFEST_BLOB_UNKNOWN"),
                "{i:?}"
            );
        }
        assert!(registry.tags().is_empty(), "no tag");
    }

    #[test]
    fn a_registry_that_is_down_stops_the_push_once_with_what_it_said() {
        let bundle = bundle();
        let registry = FakeRegistry::default();
        registry.down.store(true, Ordering::Relaxed);
        let report = run(&bundle, &registry);
        let said = report.stopped_by.as_deref().expect("stopped");
        assert!(said.contains("http://registry.test/v2/"), "{said}");
        assert!(report
            .images
            .iter()
            .all(|i| i.status == ImageStatus::Failed));
        // Said once, above: each image only says it was not tried.
        for i in &report.images {
            assert_eq!(i.error.as_deref(), Some(NOT_TRIED), "{i:?}");
        }
    }

    #[test]
    fn registry_failures_keep_what_the_registry_said_as_their_source() {
        use registry_client::{RegistryError, RemoteErrors};
        let answered = |status| {
            RegistryFailure::Registry(RegistryError::Registry {
                method: "HEAD".into(),
                url: "https://r/v2/x/blobs/sha256:0".into(),
                status,
                errors: RemoteErrors::default(),
            })
        };
        let e = answered(500);
        assert!(e.server_error() && !e.unreachable() && !e.interrupted());
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<RegistryError>().is_some());
        assert_eq!(e.to_string(), source.to_string());
        assert!(!answered(404).server_error() && !answered(404).unreachable());
        let cancelled = RegistryFailure::Registry(RegistryError::Cancelled);
        assert!(cancelled.interrupted());
        let gone = RegistryFailure::Registry(RegistryError::Timeout {
            method: "PUT".into(),
            url: "https://r/v2/".into(),
            phase: "reading the answer".into(),
        });
        assert!(gone.unreachable() && !gone.server_error());
    }

    /// What distribution 2.8 answers for an index whose children it lacks is a refusal
    /// for missing children; an auth or server failure is not.
    #[test]
    fn a_refused_sparse_index_says_what_and_what_to_do() {
        use registry_client::{RegistryError, RemoteError, RemoteErrors};
        let answered = |status, code: &str| RegistryError::Registry {
            method: "PUT".into(),
            url: "http://127.0.0.1:5000/v2/ns/app/manifests/sha256:00".into(),
            status,
            errors: RemoteErrors(vec![RemoteError {
                code: code.into(),
                message: "blob unknown to registry".into(),
                detail: Some("\"sha256:11\"".into()),
            }]),
        };
        assert!(RegistryFailure::refuses_missing_children(&answered(
            400,
            "MANIFEST_BLOB_UNKNOWN"
        )));
        assert!(!RegistryFailure::refuses_missing_children(&answered(
            500,
            "MANIFEST_BLOB_UNKNOWN"
        )));
        assert!(!RegistryFailure::refuses_missing_children(&answered(
            403, "DENIED"
        )));
        let e = RegistryFailure::SparseRefused {
            image: "ns/app:v1".into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            registry: "127.0.0.1:5000".into(),
            source: Box::new(answered(400, "MANIFEST_BLOB_UNKNOWN")),
        };
        let text = e.to_string();
        for part in [
            "127.0.0.1:5000 refused the sparse multi-arch image ns/app:v1",
            "only its linux/amd64, linux/arm64 children",
            "MANIFEST_BLOB_UNKNOWN",
            "registry that accepts sparse indexes",
            "without --platform",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        assert!(!e.server_error() && !e.unreachable());
    }

    /// Reports, `--json` and the state directory's last-push.json carry these words.
    #[test]
    fn image_statuses_serialize_as_the_words_reports_use() {
        for (status, word) in [
            (ImageStatus::Pushed, "pushed"),
            (ImageStatus::Present, "present"),
            (ImageStatus::Waiting, "waiting"),
            (ImageStatus::Failed, "failed"),
            (ImageStatus::Planned, "planned"),
            (ImageStatus::Absent, "absent"),
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), word);
            assert_eq!(status.as_str(), word);
            assert_eq!(
                serde_json::from_value::<ImageStatus>(word.into()).unwrap(),
                status
            );
            assert_eq!(status.in_registry(), matches!(word, "pushed" | "present"));
        }
    }
}
