//! A bundle as assembled from whichever of its volumes are at hand: which blobs can be
//! read whole, and a reader that streams a blob out of its chunks, checking each chunk
//! against its signed table and the blob against its digest (SPEC.md §6).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::{BundleManifest, Encoding};
use crate::read::Volume;
use crate::table::Chunk;

/// Volumes of one bundle, by number.
pub struct Bundle {
    pub manifest: Arc<BundleManifest>,
    pub manifest_bytes: Arc<Vec<u8>>,
    pub volumes: BTreeMap<u32, Volume>,
}

impl Bundle {
    /// Groups volumes of one bundle. Every volume must carry the same manifest bytes.
    pub fn new(volumes: Vec<Volume>) -> Result<Bundle, FormatError> {
        let mut iter = volumes.into_iter();
        let first = iter
            .next()
            .ok_or_else(|| FormatError::Plan("no volumes given".into()))?;
        let manifest = Arc::clone(&first.manifest);
        let manifest_bytes = Arc::clone(&first.manifest_bytes);
        let mut by_number = BTreeMap::new();
        by_number.insert(first.table.volume, first);
        for v in iter {
            if v.manifest_bytes != manifest_bytes {
                return Err(FormatError::NotAVolume {
                    path: v.path.clone(),
                    reason: format!(
                        "belongs to bundle {}, not {} like the others",
                        v.manifest.bundle_id, manifest.bundle_id
                    ),
                });
            }
            if let Some(other) = by_number.get(&v.table.volume) {
                if other.path != v.path {
                    // The same volume twice (a copy on two disks) is harmless: keep one.
                    continue;
                }
            }
            by_number.insert(v.table.volume, v);
        }
        Ok(Bundle {
            manifest,
            manifest_bytes,
            volumes: by_number,
        })
    }

    /// Volume numbers of the bundle that are not at hand.
    pub fn missing_volumes(&self) -> Vec<u32> {
        (1..=self.manifest.volume_count)
            .filter(|n| !self.volumes.contains_key(n))
            .collect()
    }

    /// The volumes blob `blob` needs that are not at hand.
    pub fn blob_missing_volumes(&self, blob: u32) -> Vec<u32> {
        let b = &self.manifest.blobs[blob as usize];
        (b.first_volume..=b.last_volume)
            .filter(|n| !self.volumes.contains_key(n))
            .collect()
    }

    /// The chunks of a blob in stream order, with the volume holding each, or the volumes
    /// still needed.
    pub fn chunks_of(&self, blob: u32) -> Result<Vec<(&Volume, Chunk)>, Vec<u32>> {
        let missing = self.blob_missing_volumes(blob);
        if !missing.is_empty() {
            return Err(missing);
        }
        let b = &self.manifest.blobs[blob as usize];
        let mut out = Vec::new();
        for n in b.first_volume..=b.last_volume {
            let v = &self.volumes[&n];
            // Chunks are sorted by blob: find this blob's run.
            let start = v.table.chunks.partition_point(|c| c.blob < blob);
            out.extend(
                v.table.chunks[start..]
                    .iter()
                    .take_while(|c| c.blob == blob)
                    .map(|c| (v, *c)),
            );
        }
        Ok(out)
    }

    /// A reader of blob `blob`'s original bytes. Fails with the volumes still needed.
    pub fn open_blob(&self, blob: u32) -> Result<BlobReader<'_>, FormatError> {
        let chunks = self.chunks_of(blob).map_err(|missing| FormatError::Blob {
            what: format!("blob {}", self.manifest.blobs[blob as usize].digest),
            reason: format!("needs volume(s) {} which are not given", list(&missing)),
        })?;
        let b = &self.manifest.blobs[blob as usize];
        // Chunks must tile the stored stream exactly (each volume checked its own part).
        let mut next = 0;
        for (v, c) in &chunks {
            if c.stream_offset != next {
                return Err(FormatError::Blob {
                    what: format!("blob {}", b.digest),
                    reason: format!(
                        "volume {} does not continue the blob where the previous volume stopped",
                        v.path.display()
                    ),
                });
            }
            next += c.size;
        }
        if next != b.stored_size {
            return Err(FormatError::Blob {
                what: format!("blob {}", b.digest),
                reason: "its chunks do not add up to its stored size".into(),
            });
        }
        let stored = StoredReader {
            chunks,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        };
        let inner: Box<dyn Read + '_> = match b.encoding {
            Encoding::Raw => Box::new(stored),
            Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(stored).map_err(|e| {
                FormatError::Blob {
                    what: format!("blob {}", b.digest),
                    reason: e.to_string(),
                }
            })?),
        };
        Ok(BlobReader {
            // One byte more than the signed size, so a stream that decodes larger is caught
            // without decoding more than that (a zstd bomb stops here).
            inner: inner.take(b.size + 1),
            hasher: Sha256::new(),
            count: 0,
            size: b.size,
            digest: b.digest,
            done: false,
        })
    }
}

pub fn list(numbers: &[u32]) -> String {
    numbers
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

struct StoredReader<'a> {
    chunks: Vec<(&'a Volume, Chunk)>,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for StoredReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some((v, c)) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.buf = v
                .read_chunk(c)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams a blob's original bytes; at the end, fails unless size and digest match.
pub struct BlobReader<'a> {
    inner: io::Take<Box<dyn Read + 'a>>,
    hasher: Sha256,
    count: u64,
    size: u64,
    digest: Digest,
    done: bool,
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        self.count += n as u64;
        if self.count > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} decodes to more than its signed size {}",
                    self.digest, self.size
                ),
            ));
        }
        if n == 0 || (out.is_empty() && self.count == self.size) {
            self.done = true;
            let actual = Digest(std::mem::take(&mut self.hasher).finalize().into());
            if self.count != self.size || actual != self.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} reassembled to {} bytes with digest {actual}: damaged",
                        self.digest, self.count
                    ),
                ));
            }
        }
        Ok(n)
    }
}
