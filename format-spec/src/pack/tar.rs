//! The volume file being written: tar entries (SPEC.md §5.2) through a large buffer, with
//! the medium asked to write back as it goes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::sync_channel;

use crate::error::FormatError;
use crate::volume::{self, entry_len, BLOCK};

pub(super) struct TarWriter<'a> {
    pub(super) out: BufWriter<&'a mut File>,
    pub(super) offset: u64,
    pub(super) mtime: u64,
    pub(super) path: &'a Path,
    pub(super) syncer: Option<Syncer>,
    pub(super) synced_at: u64,
}

/// Starts writing a volume back to the medium while it is still being written, so the
/// final `fsync` (a volume is durable before it is renamed complete) finds little left to do.
const SYNC_EVERY: u64 = 32 << 20;

pub(super) struct Syncer {
    tx: std::sync::mpsc::SyncSender<()>,
    handle: std::thread::JoinHandle<()>,
}

impl Syncer {
    pub(super) fn start(file: &File) -> Option<Syncer> {
        let clone = file.try_clone().ok()?;
        // A queue of one: a request while a sync runs is dropped, not queued.
        let (tx, rx) = sync_channel::<()>(1);
        let handle = std::thread::spawn(move || {
            for () in rx {
                let _ = clone.sync_data();
            }
        });
        Some(Syncer { tx, handle })
    }

    fn poke(&self) {
        let _ = self.tx.try_send(());
    }

    pub(super) fn finish(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}

impl TarWriter<'_> {
    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.out
            .write_all(bytes)
            .map_err(FormatError::io(self.path))?;
        self.offset += bytes.len() as u64;
        if self.offset - self.synced_at >= SYNC_EVERY {
            self.synced_at = self.offset;
            if let Some(s) = &self.syncer {
                s.poke();
            }
        }
        Ok(())
    }

    pub(super) fn entry(&mut self, name: &str, data: &[u8]) -> Result<(), FormatError> {
        let size = data.len() as u64;
        self.write(&volume::header(name, size, self.mtime))?;
        self.write(data)?;
        let pad = (entry_len(size) - BLOCK - size) as usize;
        self.write(&[0u8; BLOCK as usize][..pad])
    }
}
