//! One blob's stored stream (raw or zstd, SPEC.md §5.5), chunk by chunk, each chunk with its
//! SHA-256. A blob's stream continues from one chunk to the next (and across volumes);
//! writing a single volume starts a stream mid-way by seeking (raw) or by compressing and
//! discarding the beginning (zstd).
//!
//! Hashing, as little as safety allows: a blob read from the mirror is hashed from its first
//! byte, whatever part of it is written, so no run signs bytes it did not check against the
//! blob's digest (SPEC.md §5.3 "Writing"). A raw blob that is one chunk whole is hashed once:
//! its chunk's SHA-256 *is* the blob's digest, once the stream's end has checked the bytes
//! against it. Other raw chunks need both hashes; they run on two cores at once. A stream
//! kept from sizing ([`Kept`]) was compressed from bytes checked then; only its chunks are
//! hashed; one kept in the spool (a file on a local disk) is checked block by block against
//! the hashes it was written with as it is read, so no run signs bytes the disk changed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::input::{check_digest, open_checked, read_full, ZstdStream, READ_BUFFER};
use super::prepare::{Kept, KeptError};
use super::{Prepared, SourceBlob};
use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::Encoding;

/// A chunk's bytes and their SHA-256.
pub(super) type HashedChunk = (Vec<u8>, Digest);

pub(super) struct BlobStream<'a> {
    source: &'a SourceBlob,
    stored_size: u64,
    pos: u64,
    kind: StreamKind<'a>,
    modified: Option<SystemTime>,
}

enum StreamKind<'a> {
    /// Compressed while sizing, kept in memory or in the spool file.
    Kept(&'a Kept),
    Raw {
        file: File,
        hasher: Sha256,
    },
    Zstd {
        stream: ZstdStream<'a>,
    },
}

impl<'a> BlobStream<'a> {
    /// The stream of `source`, positioned at `at`.
    pub(super) fn open(
        source: &'a SourceBlob,
        prepared: &'a Prepared,
        encoding: Encoding,
        at: u64,
    ) -> Result<BlobStream<'a>, FormatError> {
        let stored_size = prepared.stored_size;
        if let Some(kept) = &prepared.kept {
            return Ok(BlobStream {
                source,
                stored_size,
                pos: at,
                kind: StreamKind::Kept(kept),
                modified: None,
            });
        }
        let mut file = open_checked(source)?;
        let modified = file.metadata().ok().and_then(|m| m.modified().ok());
        let kind = match encoding {
            Encoding::Raw => {
                // Starting mid-blob: hash the part before, which an earlier volume holds.
                let mut hasher = Sha256::new();
                let mut head = (&mut file).take(at);
                let mut buf = vec![0u8; READ_BUFFER];
                loop {
                    let n =
                        read_full(&mut head, &mut buf).map_err(FormatError::io(source.path()))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                StreamKind::Raw { file, hasher }
            }
            Encoding::Base => unreachable!("the plan gives base blobs no chunks"),
            Encoding::Zstd => {
                let mut stream = ZstdStream::new(file, source)?;
                io::copy(&mut (&mut stream).take(at), &mut io::sink())
                    .map_err(FormatError::io(source.path()))?;
                StreamKind::Zstd { stream }
            }
        };
        Ok(BlobStream {
            source,
            stored_size,
            pos: at,
            kind,
            modified,
        })
    }

    /// The next `data.len()` bytes of the stream, read into `data` (every byte of it is
    /// overwritten), and their SHA-256. A raw blob read whole as one chunk gets the blob's
    /// digest, which [`BlobStream::finish`] checks: its caller must finish the stream
    /// before it passes such a chunk on.
    pub(super) fn next_chunk(&mut self, mut data: Vec<u8>) -> Result<HashedChunk, FormatError> {
        let path: &std::path::Path = &self.source.path();
        let size = data.len() as u64;
        let sha256 = match &mut self.kind {
            StreamKind::Kept(kept) => {
                read_kept(kept, self.source, self.pos, &mut data)?;
                chunk_digest(&data)
            }
            StreamKind::Raw { file, hasher } => {
                let n = read_full(file, &mut data).map_err(FormatError::io(path))?;
                if n as u64 != size {
                    return Err(FormatError::InputChanged {
                        path: path.to_path_buf(),
                    });
                }
                if self.pos == 0 && size == self.source.size {
                    hasher.update(&data);
                    self.source.digest
                } else {
                    // Both hashes of the same bytes, on two cores.
                    rayon::join(|| hasher.update(&data), || chunk_digest(&data)).1
                }
            }
            StreamKind::Zstd { stream } => {
                let n = read_full(stream, &mut data).map_err(FormatError::io(path))?;
                if n as u64 != size {
                    return Err(FormatError::InputChanged {
                        path: path.to_path_buf(),
                    });
                }
                chunk_digest(&data)
            }
        };
        self.pos += size;
        Ok((data, sha256))
    }

    /// After the last chunk written of this blob: checks the blob whole against its digest,
    /// reading the rest of it first when the stream goes on into a volume this run does not
    /// write (`--only-volume`), so every byte written was checked.
    pub(super) fn finish(mut self) -> Result<(), FormatError> {
        let source = self.source;
        let changed = || FormatError::InputChanged {
            path: source.path().into_owned(),
        };
        if self.pos < self.stored_size {
            match &mut self.kind {
                StreamKind::Kept(_) => {}
                StreamKind::Raw { file, hasher } => {
                    let mut buf = vec![0u8; READ_BUFFER];
                    loop {
                        let n =
                            read_full(file, &mut buf).map_err(FormatError::io(source.path()))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                    }
                    // The probe below must find the end where the blob's size says.
                    file.seek(SeekFrom::Start(source.size))
                        .map_err(FormatError::io(source.path()))?;
                }
                StreamKind::Zstd { stream } => {
                    io::copy(stream, &mut io::sink()).map_err(FormatError::io(source.path()))?;
                }
            }
        }
        match self.kind {
            StreamKind::Kept(_) => {}
            StreamKind::Raw { mut file, hasher } => {
                let mut probe = [0u8; 1];
                if read_full(&mut file, &mut probe).map_err(FormatError::io(source.path()))? != 0 {
                    return Err(changed());
                }
                check_digest(source, hasher, source.size)?;
                let now = file.metadata().ok().and_then(|m| m.modified().ok());
                if now != self.modified {
                    return Err(changed());
                }
            }
            StreamKind::Zstd { mut stream } => {
                let mut probe = [0u8; 1];
                if read_full(&mut stream, &mut probe).map_err(FormatError::io(source.path()))? != 0
                {
                    return Err(changed());
                }
                stream.finish()?;
            }
        }
        Ok(())
    }
}

/// Fills `buf` from the kept stream at `pos`. A spool that cannot be read is the local disk's
/// failing, named as such; a stream in memory shorter than planned is a bug.
fn read_kept(
    kept: &Kept,
    source: &SourceBlob,
    pos: u64,
    buf: &mut [u8],
) -> Result<(), FormatError> {
    kept.read_at(pos, buf).map_err(|e| match (kept, e) {
        (Kept::Spooled { spool, .. }, KeptError::Changed) => FormatError::SpoolChanged {
            dir: spool.dir().to_path_buf(),
            digest: source.digest.to_string(),
        },
        (Kept::Spooled { spool, .. }, KeptError::Io(e)) => FormatError::SpoolUnreadable {
            dir: spool.dir().to_path_buf(),
            digest: source.digest.to_string(),
            error: e,
        },
        (Kept::Memory(_), e) => FormatError::Plan(format!(
            "kept stream of {}: {e} (please report this)",
            source.path().display()
        )),
    })
}

fn chunk_digest(data: &[u8]) -> Digest {
    Digest(Sha256::digest(data).into())
}
