//! A catalog image's blobs for `catalog::image`: read from the cache, and one the cache
//! lacks downloaded first from the image's endpoints as a fetch downloads any blob (in
//! order, retried, hashed as it streams); the rebuilt image's new blobs go straight in.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use catalog::image::{Blobs, Sink};
use oci::Digest;

use crate::cache::Cache;
use crate::error::PullError;
use crate::event::Event;
use crate::fetch::{download_blob, BlobEnd};
use crate::options::Options;
use crate::plan::ResolvedImage;
use crate::sources::Sources;

/// The blobs of a catalog image, from the cache; one it lacks is downloaded first from the
/// image's endpoints, with the retries of a fetch.
pub(super) struct CacheBlobs<'a> {
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
    pub(super) fn new(
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
    pub(super) fn run_error(&self) -> Option<PullError> {
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
pub(super) struct CacheSink<'a>(pub(super) &'a Cache);

impl Sink for CacheSink<'_> {
    fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        self.0
            .put_blob(digest, bytes)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}
