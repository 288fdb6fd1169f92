//! What each `mirror.operators[]` entry's last plan produced, for `cache prune` (which
//! reads only the cache, and cannot know a catalog's images without reading it):
//! `CACHE/.ferry/operators/<hex>.json`, `<hex>` the SHA-256 of the entry's catalog
//! reference, targetCatalog and targetTag (see [`crate::cache`]).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use imageset::PullOperator;
use oci::Digest;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::error::{CacheError, PullError};

/// The cache names each `mirror.operators[]` entry's last plan produced.
const RECORDS_DIR: &str = "operators";

/// The record of `CACHE/.ferry/operators/<key>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    catalog: String,
    target_catalog: Option<String>,
    target_tag: Option<String>,
    /// The cache's ref.names the entry's last plan produced.
    refs: Vec<String>,
}

/// `CACHE/.ferry/operators/<sha256 of the entry's catalog and destination>.json`.
pub(super) fn record_path(cache: &Cache, op: &PullOperator) -> PathBuf {
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

pub(super) fn write_record(
    cache: &Cache,
    op: &PullOperator,
    refs: Vec<String>,
) -> Result<(), PullError> {
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
