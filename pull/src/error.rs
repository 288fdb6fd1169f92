//! The errors of the pull: [`CacheError`] for the cache on disk, [`PullError`] for a run.
//! Failures of single images are not errors of the run: they are [`Failure`](crate::Failure)s
//! in the plan and the report, so one bad reference never hides the others.

use std::path::PathBuf;

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

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{0}")]
    Config(String),
    #[error("interrupted: {0}")]
    Interrupted(String),
}
