//! The errors of the pull: [`CacheError`] for the cache on disk, [`PullError`] for a run.
//! Failures of single images are not errors of the run: they are [`Failure`](crate::Failure)s
//! in the plan and the report, so one bad reference never hides the others.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another run holds the cache.
    #[error("the cache {} is in use by another ferry-pack{}; wait for it to finish, or give another --cache", path.display(), holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Busy {
        path: PathBuf,
        holder: Option<String>,
    },
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// One step of a path inside a `mirror.operators[]` entry (as `imageset::locate::Seg`,
/// owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Key(&'static str),
    Index(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{0}")]
    Config(String),
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The selection `mirror.operators[index]` asks for cannot be made from the catalog as
    /// it is (a package or channel it lacks, a lost default channel, an invalid result):
    /// an error of the image set, found once the catalog is read. The binary locates it in
    /// the file (`ImageSet::operator_error(index, …)`).
    #[error("mirror.operators[{index}] (catalog {catalog}): {message}")]
    Operator {
        index: usize,
        /// Where in the entry, when the finding names a package or channel of it
        /// (`packages[1].channels[0]`); empty: the entry.
        field: Vec<Field>,
        catalog: String,
        message: String,
    },
    /// The one image a command needs (`catalog list`'s catalog) could not be resolved or
    /// read.
    #[error("{}: {} (from {})", .0.reference, .0.error, .0.registry)]
    Failed(crate::plan::Failure),
    /// The cache's filesystem lacks room for what is still to download: refused before the
    /// first byte.
    #[error("the cache {} needs {} for the blobs still to download, but its filesystem has {} free: free {} more there, or give another --cache", path.display(), bytes(*needed), bytes(*free), human(needed.saturating_sub(*free)))]
    NoSpace {
        path: PathBuf,
        needed: u64,
        free: u64,
    },
}

/// `1.5 GiB (1610612736 bytes)`: people read the first, scripts the second.
pub(crate) fn bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} bytes");
    }
    format!("{} ({n} bytes)", human(n))
}

/// `1.5 GiB`.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_says_how_much_is_missing() {
        let e = PullError::NoSpace {
            path: PathBuf::from("/c"),
            needed: 3 << 30,
            free: 1 << 30,
        };
        assert_eq!(
            e.to_string(),
            "the cache /c needs 3.0 GiB (3221225472 bytes) for the blobs still to download, but its filesystem has 1.0 GiB (1073741824 bytes) free: free 2.0 GiB more there, or give another --cache"
        );
        assert_eq!(bytes(5), "5 bytes");
    }
}

/// The first error of a run among its worker threads: it stops the others (they look at
/// [`RunStop::stopped`] before each piece of work) and is what the run returns.
#[derive(Default)]
pub(crate) struct RunStop {
    stop: AtomicBool,
    error: Mutex<Option<PullError>>,
}

impl RunStop {
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records `e` unless an earlier error was, and stops the workers.
    pub(crate) fn fail(&self, e: PullError) {
        self.stop.store(true, Ordering::Relaxed);
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    }

    /// The run's result once its workers have ended.
    pub(crate) fn finish(self) -> Result<(), PullError> {
        match self.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
