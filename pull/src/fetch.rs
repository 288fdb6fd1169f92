//! The blobs of a plan into the cache: each missing blob once, largest first, `--jobs` at
//! a time, from the endpoint that served its image (the next one when that endpoint has
//! not got it). A download that breaks off is resumed from its partial after a backoff,
//! for as long as `--retry-for` allows without progress (an attempt that received bytes
//! starts the time again: a big layer on a slow link may run for hours); bytes that do
//! not hash to their digest are fetched once more from zero, then refused naming the
//! image, the blob and the registry. An image is recorded in `index.json` once its last blob
//! is in, in batches (see [`Unrecorded`]): an interrupted run keeps every blob it finished,
//! and the next run records each image whose blobs are all in before downloading anything.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci::Digest;
use registry_client::RegistryError;

use crate::cache::{Cache, CachedImage, DownloadError, Downloaded};
use crate::error::{bytes, PullError, RunStop};
use crate::event::Event;
use crate::options::Options;
use crate::plan::{Failure, Plan, Report, ResolvedImage};
use crate::sources::{endpoint_name, every_endpoint, Attempt, Sources};

/// The first wait after a broken download; it doubles after each one, up to the longest.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(16);

/// One blob to download and the images (indexes into the plan) that need it.
struct Job {
    digest: Digest,
    size: u64,
    images: Vec<usize>,
}

/// How one blob's download ended badly.
pub(crate) enum BlobEnd {
    /// Every endpoint failed, or the bytes were wrong: the images needing it fail.
    Failed {
        registry: String,
        error: String,
    },
    Cancelled,
    Run(PullError),
}

/// Progress of the images, under one lock (it also serializes `index.json` writes).
struct Images {
    /// Blobs each image still waits for.
    remaining: Vec<usize>,
    failed: Vec<Option<Failure>>,
    pulled: Vec<bool>,
    unrecorded: Unrecorded,
}

/// Images whose every blob is in, not yet named by `index.json`.
///
/// Writing the index reads, sorts and rewrites all of it, so writing it after each image
/// made a pull of n images cost O(n²): 5,000 small images took 70 s and 48 CPU s (35 s and
/// 14 CPU s in batches), and 6×10^4 would have taken hours. The batch is written when it has
/// grown to an eighth of what the index already names (the first images one by one; the
/// rewrites then add up to about nine times the final index, about 100 of them at 6×10^4
/// images), when [`Unrecorded::EVERY`] has passed, and at the end of the run whatever ended
/// it. Killed in between, the run loses no download: the blobs are in the cache, and the
/// next run records those images before it fetches anything.
struct Unrecorded {
    images: Vec<usize>,
    recorded: usize,
    since: Instant,
}

impl Unrecorded {
    /// The longest an image waits to be recorded while the run goes on.
    const EVERY: Duration = Duration::from_secs(5);

    fn new() -> Unrecorded {
        Unrecorded {
            images: Vec::new(),
            recorded: 0,
            since: Instant::now(),
        }
    }

    /// The batch to write now; the next one counts from here.
    fn take(&mut self) -> Vec<usize> {
        self.since = Instant::now();
        self.recorded += self.images.len();
        std::mem::take(&mut self.images)
    }

    fn due(&self) -> bool {
        !self.images.is_empty()
            && (self.images.len() >= (self.recorded / 8).max(1)
                || self.since.elapsed() >= Self::EVERY)
    }
}

pub(crate) fn fetch(
    cache: &Cache,
    plan: &Plan,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Report, PullError> {
    let started = Instant::now();
    let sources = Sources::load(options)?;
    sources.reporting_retries(events, || {
        fetch_with(cache, &sources, plan, options, events, started)
    })
}

fn fetch_with(
    cache: &Cache,
    sources: &Sources<'_>,
    plan: &Plan,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
    started: Instant,
) -> Result<Report, PullError> {
    let images = &plan.images;

    let mut wanted: BTreeMap<Digest, Job> = BTreeMap::new();
    for (i, image) in images.iter().enumerate() {
        for (d, size) in &image.blobs {
            let job = wanted.entry(*d).or_insert_with(|| Job {
                digest: *d,
                size: *size,
                images: Vec::new(),
            });
            // Images come in order: a repeat within one image is the last entry (a base
            // layer shared by 10^4 images made `contains` quadratic).
            if job.images.last() != Some(&i) {
                job.images.push(i);
            }
        }
    }
    let mut jobs: Vec<Job> = wanted
        .into_values()
        .filter(|j| cache.has_blob(&j.digest).is_none())
        .collect();
    let needed: u64 = jobs
        .iter()
        .map(|j| j.size.saturating_sub(cache.partial_len(&j.digest)))
        .sum();
    let free = cache.free_space()?;
    if needed > free {
        return Err(PullError::NoSpace {
            path: cache.root().to_path_buf(),
            needed,
            free,
        });
    }
    // Largest first: the long downloads start at once, the short ones fill the gaps.
    jobs.sort_by(|a, b| b.size.cmp(&a.size).then(a.digest.cmp(&b.digest)));

    let mut state = Images {
        remaining: vec![0; images.len()],
        failed: vec![None; images.len()],
        pulled: vec![false; images.len()],
        unrecorded: Unrecorded::new(),
    };
    for job in &jobs {
        for &i in &job.images {
            state.remaining[i] += 1;
        }
    }
    // A manifest gone since the plan (a prune in between) would make index.json lie.
    for (i, image) in images.iter().enumerate() {
        if let Some((d, _)) = image
            .manifests
            .iter()
            .find(|(d, _)| cache.has_blob(d).is_none())
        {
            let f = Failure {
                reference: image.source.clone(),
                registry: image.endpoint.clone(),
                error: format!("its manifest {d} is no longer in the cache: plan again"),
            };
            events(Event::Failed(&f));
            state.failed[i] = Some(f);
        }
    }
    state.unrecorded.images = (0..images.len())
        .filter(|&i| state.remaining[i] == 0 && state.failed[i].is_none())
        .collect();
    for &i in &record(cache, images, &mut state)? {
        events(Event::Pulled(&images[i]));
    }

    let state = Mutex::new(state);
    let next = AtomicUsize::new(0);
    let run = RunStop::default();
    let blobs_fetched = AtomicUsize::new(0);
    let bytes_fetched = AtomicU64::new(0);
    let threads = options.jobs.clamp(1, jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if run.stopped() || options.cancel.load(Ordering::Relaxed) {
                    return;
                }
                let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                // Another blob of every image needing this one failed: nothing to gain.
                {
                    let st = state.lock().unwrap_or_else(|p| p.into_inner());
                    if job.images.iter().all(|&i| st.failed[i].is_some()) {
                        continue;
                    }
                }
                let first = &images[job.images[0]];
                let outcome = download(cache, sources, job, first, options, events);
                let mut done = Vec::new();
                let mut failures = Vec::new();
                {
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Ok(d) => {
                            blobs_fetched.fetch_add(1, Ordering::Relaxed);
                            bytes_fetched.fetch_add(d.fetched, Ordering::Relaxed);
                            for &i in &job.images {
                                st.remaining[i] -= 1;
                                if st.remaining[i] == 0 && st.failed[i].is_none() {
                                    st.unrecorded.images.push(i);
                                }
                            }
                            if st.unrecorded.due() {
                                match record(cache, images, &mut st) {
                                    Ok(recorded) => done = recorded,
                                    Err(e) => {
                                        run.fail(e);
                                        return;
                                    }
                                }
                            }
                        }
                        Err(BlobEnd::Failed { registry, error }) => {
                            for &i in &job.images {
                                if st.failed[i].is_none() {
                                    let f = Failure {
                                        reference: images[i].source.clone(),
                                        registry: registry.clone(),
                                        error: format!("blob {}: {error}", job.digest),
                                    };
                                    failures.push(f.clone());
                                    st.failed[i] = Some(f);
                                }
                            }
                        }
                        Err(BlobEnd::Cancelled) => return,
                        Err(BlobEnd::Run(e)) => {
                            run.fail(e);
                            return;
                        }
                    }
                }
                for f in &failures {
                    events(Event::Failed(f));
                }
                for &i in &done {
                    events(Event::Pulled(&images[i]));
                }
            });
        }
    });
    // What the last batch left, however the run ended (a failed run keeps what it finished).
    let mut state = state.into_inner().unwrap_or_else(|p| p.into_inner());
    let last = record(cache, images, &mut state);
    run.finish()?;
    for &i in &last? {
        events(Event::Pulled(&images[i]));
    }
    let pulled: Vec<usize> = (0..images.len()).filter(|&i| state.pulled[i]).collect();
    let blobs_fetched = blobs_fetched.into_inner();
    let bytes_fetched = bytes_fetched.into_inner();
    let unfinished = images.len() - pulled.len() - state.failed.iter().flatten().count();
    if unfinished > 0 && options.cancel.load(Ordering::Relaxed) {
        return Err(PullError::Interrupted(format!(
            "{} of {} images pulled, {blobs_fetched} blobs ({}) fetched; what was downloaded is kept: run the same command again to finish",
            pulled.len(),
            images.len(),
            bytes(bytes_fetched)
        )));
    }
    let failed: Vec<Failure> = state.failed.into_iter().flatten().collect();
    Ok(Report {
        pulled,
        failed,
        blobs_fetched,
        bytes_fetched,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Records the unrecorded images (every blob in) in `index.json`; returns them.
fn record(
    cache: &Cache,
    images: &[ResolvedImage],
    state: &mut Images,
) -> Result<Vec<usize>, PullError> {
    let which = state.unrecorded.take();
    if which.is_empty() {
        return Ok(which);
    }
    let entries: Vec<CachedImage> = which.iter().map(|&i| cached_image(&images[i])).collect();
    cache.record(&entries)?;
    for &i in &which {
        state.pulled[i] = true;
    }
    Ok(which)
}

/// The `index.json` entry of a resolved image.
pub(crate) fn cached_image(image: &ResolvedImage) -> CachedImage {
    CachedImage {
        ref_name: image.ref_name.clone(),
        source: image.source.clone(),
        digest: image.digest,
        media_type: image.media_type.clone(),
        size: image.size,
        resolved_at: image.resolved_at.clone(),
        platforms: image.platforms_kept.clone(),
        target_repository: image.target_repository.clone(),
        catalog_packages: image.catalog_packages.clone(),
    }
}

/// Exponential backoff with jitter, bounded by `--retry-for` from the first failure since
/// the last progress: `--retry-for` bounds how long a download keeps trying without
/// receiving a byte, not how long it may take.
struct Backoff {
    /// The first failure since the last progress (None: none yet).
    started: Option<Instant>,
    limit: Duration,
    attempts: u32,
}

impl Backoff {
    fn new(limit: Duration) -> Backoff {
        Backoff {
            started: None,
            limit,
            attempts: 1,
        }
    }

    /// An attempt received bytes before it failed: the time and the waits start again.
    fn progressed(&mut self) {
        self.started = None;
        self.attempts = 1;
    }

    /// After a failed attempt: the wait before the next one, or None: the time is up.
    fn next(&mut self) -> Option<Duration> {
        self.next_at(Instant::now())
    }

    /// [`Backoff::next`] at time `now` (tests pass a clock of their own).
    fn next_at(&mut self, now: Instant) -> Option<Duration> {
        let started = *self.started.get_or_insert(now);
        let left = self
            .limit
            .saturating_sub(now.saturating_duration_since(started));
        if left.is_zero() {
            return None;
        }
        let base = FIRST_WAIT
            .saturating_mul(1u32 << self.attempts.saturating_sub(1).min(20))
            .min(LONGEST_WAIT);
        // 50–100% of the base: workers that broke off together do not return together.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(self.attempts);
        let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        self.attempts += 1;
        Some(base.mul_f64(0.5 + 0.5 * unit).min(left))
    }
}

/// Sleeps `d` in short steps; false when cancelled meanwhile.
fn sleep_unless_cancelled(d: Duration, cancel: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    !cancel.load(Ordering::Relaxed)
}

/// Downloads one blob of `image` outside a plan's fetch (a catalog's layer, read as the
/// plan reads the catalog), as a fetch downloads each: its endpoints in order, retried.
pub(crate) fn download_blob(
    cache: &Cache,
    sources: &Sources<'_>,
    digest: Digest,
    size: u64,
    image: &ResolvedImage,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Downloaded, BlobEnd> {
    let job = Job {
        digest,
        size,
        images: Vec::new(),
    };
    download(cache, sources, &job, image, options, events)
}

/// Downloads one blob, trying the endpoints of `image` in order.
fn download(
    cache: &Cache,
    sources: &Sources<'_>,
    job: &Job,
    image: &ResolvedImage,
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Downloaded, BlobEnd> {
    let what = format!("blob {} of {}", job.digest, image.source);
    sources.working_on(&what);
    // Bytes received by the current attempt: one that made progress restarts the backoff.
    let received = Cell::new(0u64);
    let progress = |n: u64| {
        received.set(received.get().saturating_add(n));
        events(Event::Bytes(n));
    };
    let mut attempts: Vec<Attempt> = Vec::new();
    for endpoint in &image.endpoints {
        let name = endpoint_name(endpoint);
        let client = match sources.client(endpoint) {
            Ok(c) => c,
            Err(e) if matches!(*e, RegistryError::Cancelled) => return Err(BlobEnd::Cancelled),
            Err(e) => {
                attempts.push(Attempt {
                    endpoint: name,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let mut backoff = Backoff::new(options.retry_for);
        let mut mismatches = 0;
        let mut attempt = 1;
        let error = loop {
            let mut again_at_once = false;
            received.set(0);
            let mut open =
                |offset: u64| client.fetch_blob(&endpoint.repository, &job.digest, offset);
            let e = match cache.download(
                &job.digest,
                job.size,
                &mut open,
                &progress,
                options.cancel,
            ) {
                Ok(d) => return Ok(d),
                Err(
                    DownloadError::Cancelled | DownloadError::Registry(RegistryError::Cancelled),
                ) => return Err(BlobEnd::Cancelled),
                Err(DownloadError::Cache(e)) => return Err(BlobEnd::Run(e.into())),
                Err(DownloadError::NotFound(_)) => {
                    break format!("no blob {} in {} (404)", job.digest, endpoint.repository)
                }
                Err(DownloadError::Mismatch { expected, actual }) => {
                    mismatches += 1;
                    let e = format!(
                        "the bytes {} served for {expected} are wrong: {actual}",
                        endpoint.host
                    );
                    if mismatches > 1 {
                        return Err(BlobEnd::Failed {
                            registry: endpoint.host.clone(),
                            error: format!(
                                "{e}, twice: {} (or something between it and ferry) serves wrong bytes for {}; nothing of it was kept",
                                endpoint.host, image.source
                            ),
                        });
                    }
                    // Once more from zero: the partial was deleted with the bad bytes.
                    again_at_once = true;
                    e
                }
                Err(e @ DownloadError::BrokenOff { .. }) => e.to_string(),
                Err(DownloadError::Registry(e)) if e.is_transient() => e.to_string(),
                Err(DownloadError::Registry(e)) => break e.to_string(),
            };
            let wait = if again_at_once {
                Some(Duration::ZERO)
            } else {
                // Bytes arrived before it broke (kept in the partial): the link works, so
                // the time restarts.
                if received.get() > 0 {
                    backoff.progressed();
                }
                backoff.next()
            };
            let Some(wait) = wait else { break e };
            attempt += 1;
            events(Event::Retry {
                what: what.clone(),
                attempt,
                wait,
                error: e.clone(),
            });
            if !sleep_unless_cancelled(wait, options.cancel) {
                return Err(BlobEnd::Cancelled);
            }
        };
        attempts.push(Attempt {
            endpoint: name,
            error,
        });
    }
    let (registry, error) = every_endpoint(&attempts);
    Err(BlobEnd::Failed { registry, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_written_a_logarithmic_number_of_times() {
        // Every image completes one after the other, as in a pull of many small images:
        // count the batches `due` asks for (time never runs out in this test).
        let mut u = Unrecorded::new();
        let mut writes = 0;
        let mut batches = Vec::new();
        for i in 0..60_000 {
            u.images.push(i);
            if u.due() {
                writes += 1;
                batches.push(u.take().len());
            }
        }
        // The first images go in one by one (an interrupted small pull keeps each), then the
        // batch grows with the index: about 100 rewrites at 6×10^4 images, not 6×10^4.
        assert_eq!(batches[..8], [1; 8]);
        assert!((60..=140).contains(&writes), "{writes} index writes");
        assert!(u.images.len() <= u.recorded / 8, "{} left", u.images.len());
        // Nothing waiting is nothing due; anything waiting past the time is.
        let mut idle = Unrecorded::new();
        assert!(!idle.due());
        idle.recorded = 1_000_000;
        idle.images.push(0);
        assert!(!idle.due());
        idle.since = Instant::now() - Unrecorded::EVERY;
        assert!(idle.due());
    }

    #[test]
    fn backoff_doubles_and_ends_with_the_time() {
        let mut b = Backoff::new(Duration::from_secs(3600));
        let waits: Vec<Duration> = (0..8).map(|_| b.next().unwrap()).collect();
        for (w, cap) in waits
            .iter()
            .zip([500u64, 1000, 2000, 4000, 8000, 16000, 16000, 16000])
        {
            assert!(
                *w >= Duration::from_millis(cap / 2) && *w <= Duration::from_millis(cap),
                "{w:?} for {cap}"
            );
        }
        let mut b = Backoff::new(Duration::ZERO);
        assert_eq!(b.next(), None);
        let mut b = Backoff::new(Duration::from_millis(100));
        assert!(b.next().unwrap() <= Duration::from_millis(100));
    }

    #[test]
    fn the_time_counts_from_the_first_failure_and_restarts_with_progress() {
        let limit = Duration::from_secs(10);
        let mut b = Backoff::new(limit);
        // An hour of downloading before the first failure: the whole time is left.
        let t0 = Instant::now() + Duration::from_secs(3600);
        let first = b.next_at(t0).unwrap();
        assert!(first <= Duration::from_millis(500), "{first:?}");
        // Failures without progress: until the time is up, the last wait cut to end there.
        let mut now = t0;
        while let Some(w) = b.next_at(now) {
            now += w;
        }
        assert_eq!(now - t0, limit);
        // An attempt that received bytes: the time and the waits start again.
        b.progressed();
        let later = now + Duration::from_secs(600);
        let w = b.next_at(later).expect("retried after progress");
        assert!(w <= Duration::from_millis(500), "{w:?}");
        assert_eq!(b.next_at(later + limit), None);
    }
}
