//! Chunk buffers handed back by the writer once a chunk is in the volume, for the workers
//! to fill again: a fresh buffer per chunk cost pack a zero-fill of every byte it wrote
//! and a page fault per 4 KiB of it (~7% of its CPU on a 2 GB mirror, issue 13). No more
//! are kept than chunks can be in flight between the workers and the writer, so memory
//! stays what it was at its peak.

use std::sync::Mutex;

pub(super) struct Buffers {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl Buffers {
    /// Spares for `keep` chunks in flight at most.
    pub(super) const fn new(keep: usize) -> Buffers {
        Buffers {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// A buffer of `size` bytes whose contents are whatever it held before: its taker
    /// fills every byte (or fails, and hands it on nowhere).
    pub(super) fn take(&self, size: usize) -> Vec<u8> {
        let mut buf = self
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        buf.resize(size, 0);
        buf
    }

    /// `buf` is written and may be filled again.
    pub(super) fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_at_the_size_asked_and_the_spares_are_bounded() {
        let spare = Buffers::new(3);
        let a = spare.take(1000);
        assert_eq!(a.len(), 1000);
        let at = a.as_ptr();
        spare.give(a);
        let b = spare.take(10);
        assert_eq!(
            (b.len(), b.as_ptr()),
            (10, at),
            "the same allocation, shorter"
        );
        spare.give(b);
        for _ in 0..5 {
            spare.give(vec![1; 8]);
        }
        assert_eq!(spare.free.lock().unwrap().len(), 3);
    }
}
