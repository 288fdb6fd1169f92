//! Each blob's stored stream (raw or zstd, SPEC.md §5.5) in plan order, chunk by chunk.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::input::{check_digest, open_checked, read_full, ZstdStream, READ_BUFFER};
use super::{Prepared, SourceBlob};
use crate::error::FormatError;
use crate::manifest::Encoding;
use crate::plan::Plan;
use crate::table::Chunk;

/// Produces the stored stream of each blob in plan order. A blob's stream continues from
/// one chunk to the next (and across volumes); writing a single volume starts a stream
/// mid-way by seeking (raw) or by compressing and discarding the beginning (zstd).
pub(super) struct StreamReader<'a> {
    plan: &'a Plan,
    sources: &'a [SourceBlob],
    prepared: &'a [Prepared],
    pub(super) current: Option<OpenStream<'a>>,
}

pub(super) struct OpenStream<'a> {
    pub(super) blob: u32,
    pos: u64,
    kind: StreamKind<'a>,
    modified: Option<SystemTime>,
}

/// Every stream hashes its blob from the first byte, even when writing starts mid-blob
/// (`--only-volume`), so no run signs bytes it did not check against the blob's digest.
enum StreamKind<'a> {
    Raw { file: File, hasher: Sha256 },
    Zstd { stream: ZstdStream<'a> },
}

impl<'a> StreamReader<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        sources: &'a [SourceBlob],
        prepared: &'a [Prepared],
    ) -> StreamReader<'a> {
        StreamReader {
            plan,
            sources,
            prepared,
            current: None,
        }
    }

    pub(super) fn read_chunk(&mut self, c: &Chunk) -> Result<Vec<u8>, FormatError> {
        if let Some(cached) = &self.prepared[c.blob as usize].cached {
            // Compressed and checked against its digest while sizing.
            let start = c.stream_offset as usize;
            return cached
                .get(start..start + c.size as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| FormatError::Plan("cached stream shorter than planned".into()));
        }
        let source = &self.sources[c.blob as usize];
        let blob = &self.plan.manifest.blobs[c.blob as usize];
        let reuse =
            matches!(&self.current, Some(s) if s.blob == c.blob && s.pos == c.stream_offset);
        if !reuse {
            self.current = Some(self.open(c, source, blob.encoding)?);
        }
        let s = self.current.as_mut().expect("stream is open");
        let mut data = vec![0u8; c.size as usize];
        let n = match &mut s.kind {
            StreamKind::Raw { file, hasher } => {
                let n = read_full(file, &mut data).map_err(FormatError::io(&source.path))?;
                hasher.update(&data[..n]);
                n
            }
            StreamKind::Zstd { stream } => {
                read_full(stream, &mut data).map_err(FormatError::io(&source.path))?
            }
        };
        if n as u64 != c.size {
            return Err(FormatError::InputChanged {
                path: source.path.clone(),
            });
        }
        s.pos += c.size;
        if s.pos == blob.stored_size {
            let s = self.current.take().expect("stream is open");
            s.close(source)?;
        }
        Ok(data)
    }

    fn open(
        &self,
        c: &Chunk,
        source: &'a SourceBlob,
        encoding: Encoding,
    ) -> Result<OpenStream<'a>, FormatError> {
        let mut file = open_checked(source)?;
        let modified = file.metadata().ok().and_then(|m| m.modified().ok());
        let kind = match encoding {
            Encoding::Raw => {
                // Starting mid-blob: hash the part before, which an earlier volume holds.
                let mut hasher = Sha256::new();
                let mut head = (&mut file).take(c.stream_offset);
                let mut buf = vec![0u8; READ_BUFFER];
                loop {
                    let n =
                        read_full(&mut head, &mut buf).map_err(FormatError::io(&source.path))?;
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
                io::copy(&mut (&mut stream).take(c.stream_offset), &mut io::sink())
                    .map_err(FormatError::io(&source.path))?;
                StreamKind::Zstd { stream }
            }
        };
        Ok(OpenStream {
            blob: c.blob,
            pos: c.stream_offset,
            kind,
            modified,
        })
    }
}

impl OpenStream<'_> {
    /// At the end of a blob's stream: nothing may follow and the digest must match.
    fn close(self, source: &SourceBlob) -> Result<(), FormatError> {
        let changed = || FormatError::InputChanged {
            path: source.path.clone(),
        };
        match self.kind {
            StreamKind::Raw { mut file, hasher } => {
                let mut probe = [0u8; 1];
                if read_full(&mut file, &mut probe).map_err(FormatError::io(&source.path))? != 0 {
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
                if read_full(&mut stream, &mut probe).map_err(FormatError::io(&source.path))? != 0 {
                    return Err(changed());
                }
                stream.finish()?;
            }
        }
        Ok(())
    }

    /// When writing stops mid-blob (`--only-volume`): reads the rest only to check the digest.
    pub(super) fn drain(mut self, source: &SourceBlob) -> Result<(), FormatError> {
        let rest = match &mut self.kind {
            StreamKind::Raw { file, hasher } => {
                let mut buf = vec![0u8; READ_BUFFER];
                let mut total = 0u64;
                loop {
                    let n = read_full(file, &mut buf).map_err(FormatError::io(&source.path))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
                total
            }
            StreamKind::Zstd { stream } => {
                io::copy(stream, &mut io::sink()).map_err(FormatError::io(&source.path))?
            }
        };
        self.pos += rest;
        match &mut self.kind {
            StreamKind::Raw { file, .. } => {
                file.seek(SeekFrom::Start(source.size))
                    .map_err(FormatError::io(&source.path))?;
            }
            StreamKind::Zstd { .. } => {}
        }
        self.close(source)
    }
}
