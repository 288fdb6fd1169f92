//! The spool: compressed streams kept from sizing until they are written, when they are too
//! many or too large for memory, so that each blob is compressed once (issue 13).
//!
//! It is one unnamed temporary file (`O_TMPFILE` where the file system has it, else a
//! random name removed at once), so nothing is left behind whatever way the run ends. Its
//! directory and bound are the caller's choice (ferry-pack: pack/src/spool.rs, off the
//! media, [`SPOOL_SHARE`] of the free space there and at most [`SPOOL_MAX`]); a stream that
//! finds it full is made again while writing (as every stream was before there was a
//! spool). Each stream's blocks are hashed as they are written and checked as they are
//! read back (`prepare.rs`, `Kept::read_at`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::FormatError;

/// The spool takes at most this share (1/n) of its disk's free space...
pub const SPOOL_SHARE: u64 = 16;
/// ...and at most this many bytes.
pub const SPOOL_MAX: u64 = 4 << 30;

#[derive(Debug)]
pub struct Spool {
    file: File,
    dir: PathBuf,
    /// The end of what is written (and reserved) so far.
    end: Mutex<u64>,
    limit: u64,
    full: AtomicBool,
}

impl Spool {
    /// A spool in `dir` (or its nearest existing parent), holding at most `limit` bytes, or
    /// [`SPOOL_SHARE`] of the free space there and [`SPOOL_MAX`] when `limit` is `None`.
    pub fn new(dir: &Path, limit: Option<u64>) -> Result<Spool, FormatError> {
        let dir = durable_file::nearest_existing(dir).to_path_buf();
        let limit = match limit {
            Some(l) => l,
            None => {
                let free = durable_file::free_space(&dir).map_err(FormatError::io(&dir))?;
                (free / SPOOL_SHARE).min(SPOOL_MAX)
            }
        };
        let file = tempfile::tempfile_in(&dir).map_err(FormatError::io(&dir))?;
        Ok(Spool {
            file,
            dir,
            end: Mutex::new(0),
            limit,
            full: AtomicBool::new(false),
        })
    }

    /// Bytes written to the spool so far.
    pub fn len(&self) -> u64 {
        *self.end.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether nothing was spooled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `bytes` at the end: where they went, or `None` when the spool is full. A
    /// write that fails (the disk is full after all) makes it full: the spool only saves
    /// work, and the streams it did not take are made again while writing.
    pub(super) fn append(&self, bytes: &[u8]) -> Option<u64> {
        if self.full.load(Ordering::Relaxed) {
            return None;
        }
        let offset = {
            let mut end = self.end.lock().unwrap_or_else(|e| e.into_inner());
            if *end + bytes.len() as u64 > self.limit {
                return None;
            }
            let at = *end;
            *end += bytes.len() as u64;
            at
        };
        // Outside the lock: each writer has its own range.
        if self.file.write_all_at(bytes, offset).is_err() {
            self.full.store(true, Ordering::Relaxed);
            return None;
        }
        Some(offset)
    }

    pub(super) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// The spool file itself, for tests that damage it.
    #[cfg(test)]
    pub(super) fn file(&self) -> &File {
        &self.file
    }

    /// The directory the spool is in (for messages).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
