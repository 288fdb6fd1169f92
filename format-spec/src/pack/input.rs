//! Reading a mirror's file to pack it: opened only at the size the mirror listed, and
//! hashed on the read that packs it, so no run signs bytes it did not check against the
//! blob's digest. The zstd stream is made one way, for sizing and for writing alike.

use std::fs::File;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::SourceBlob;
use crate::digest::Digest;
use crate::error::FormatError;

/// zstd level for compressible blobs: level 3 is zstd's default and runs at several
/// hundred MB/s per core; higher levels cost more time than the media they save.
pub const ZSTD_LEVEL: i32 = 3;
/// Reads from the mirror go in pieces of this size.
pub(super) const READ_BUFFER: usize = 1 << 20;

pub(super) fn open_checked(blob: &SourceBlob) -> Result<File, FormatError> {
    let path = blob.path();
    let file = File::open(&path).map_err(FormatError::io(&*path))?;
    let len = file.metadata().map_err(FormatError::io(&*path))?.len();
    if len != blob.size {
        return Err(FormatError::InputChanged {
            path: path.into_owned(),
        });
    }
    Ok(file)
}

pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hashes what passes through, so a blob's digest is checked on the read that packs it.
pub(super) struct HashingReader<R> {
    pub(super) inner: R,
    pub(super) hasher: Sha256,
    pub(super) count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The one way a blob's zstd stream is made, used both to size it and to write it, so the
/// two agree byte for byte.
pub(super) struct ZstdStream<'a> {
    encoder: zstd::stream::read::Encoder<'static, io::BufReader<HashingReader<File>>>,
    blob: &'a SourceBlob,
}

impl<'a> ZstdStream<'a> {
    pub(super) fn new(file: File, blob: &'a SourceBlob) -> Result<ZstdStream<'a>, FormatError> {
        let hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            count: 0,
        };
        let reader = io::BufReader::with_capacity(READ_BUFFER, hashing);
        let encoder = zstd::stream::read::Encoder::with_buffer(reader, ZSTD_LEVEL)
            .map_err(FormatError::io(blob.path()))?;
        Ok(ZstdStream { encoder, blob })
    }

    /// After the stream is drained: checks the input was exactly the blob.
    pub(super) fn finish(self) -> Result<(), FormatError> {
        let hashing = self.encoder.finish().into_inner();
        check_digest(self.blob, hashing.hasher, hashing.count)
    }
}

impl Read for ZstdStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.encoder.read(buf)
    }
}

pub(super) fn check_digest(
    blob: &SourceBlob,
    hasher: Sha256,
    count: u64,
) -> Result<(), FormatError> {
    let actual = Digest(hasher.finalize().into());
    if count != blob.size {
        return Err(FormatError::InputChanged {
            path: blob.path().into_owned(),
        });
    }
    if actual != blob.digest {
        return Err(FormatError::InputDigestMismatch {
            path: blob.path().into_owned(),
            digest: blob.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}
