//! Where every chunk goes (SPEC.md §5.3). The plan is a pure function of the blobs' stored
//! sizes and the options, so packing twice, or writing one volume again, gives the same bytes.

use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::BundleManifest;
use crate::table::{Chunk, FileRef, VolumeTable, TABLE_VERSION};
use crate::volume::{entry_len, head_len, tail_len, BLOCK};

/// A blob as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct PlanBlob {
    pub stored_size: u64,
    /// False for base blobs of a delta bundle: no volume carries them.
    pub carried: bool,
}

/// A chunk as planned: where it goes. Its SHA-256 is known once it is written
/// ([`PlanChunk::hashed`]); the plan does not carry room for it (at 1.86×10^5 chunks, 6 MB
/// at pack's peak).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanChunk {
    /// Index into the bundle manifest's `blobs`.
    pub blob: u32,
    /// Where the chunk starts in the blob's stored stream.
    pub stream_offset: u64,
    pub size: u64,
    /// Offset of the chunk's tar header in the volume.
    pub offset: u64,
}

impl PlanChunk {
    /// The chunk as its volume's table lists it.
    pub fn hashed(&self, sha256: Digest) -> Chunk {
        Chunk {
            blob: self.blob,
            stream_offset: self.stream_offset,
            size: self.size,
            offset: self.offset,
            sha256,
        }
    }
}

/// One volume's chunks, with the table's size known in advance (hashes are fixed-width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePlan {
    pub volume: u32,
    pub chunks: Vec<PlanChunk>,
    pub table_size: u64,
    /// Offset of the table's tar header.
    pub table_offset: u64,
    /// Size of the volume file.
    pub file_size: u64,
}

/// Sizes that every volume's table mentions and that must be fixed before layout.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub volume_size: u64,
    pub chunk_size: u64,
    pub bundle_size: u64,
    pub index_size: u64,
    /// The volume count the tables are laid out with (its digits change table sizes).
    pub volume_count: u32,
}

/// A table with placeholder hashes: the same length as the final one.
fn skeleton(volume: u32, frame: &Frame) -> VolumeTable {
    VolumeTable {
        ferry_volume: TABLE_VERSION,
        bundle_id: Digest([0; 32]),
        volume,
        volume_count: frame.volume_count,
        bundle_manifest: FileRef {
            digest: Digest([0; 32]),
            size: frame.bundle_size,
        },
        index: FileRef {
            digest: Digest([0; 32]),
            size: frame.index_size,
        },
        chunks: Vec::new(),
    }
}

fn json_len<T: serde::Serialize>(value: &T) -> u64 {
    serde_json::to_vec(value).expect("serializes").len() as u64
}

/// Lays blobs, in the order given, into volumes: each chunk as large as `chunk_size`, the
/// last chunk of a volume cut to fill it, so every volume but the last ends less than
/// 1536 bytes short of `volume_size` (SPEC.md §5.3).
pub fn layout(blobs: &[PlanBlob], frame: &Frame) -> Result<Vec<VolumePlan>, FormatError> {
    let head = head_len(frame.bundle_size, frame.index_size);
    let start = |volume: u32| {
        let t = skeleton(volume, frame);
        (head, json_len(&t), Vec::<PlanChunk>::new())
    };
    let mut volumes = Vec::new();
    let mut volume: u32 = 1;
    let (mut offset, mut table_size, mut chunks) = start(volume);
    for (index, blob) in blobs.iter().enumerate() {
        if !blob.carried {
            continue;
        }
        let mut pos = 0u64;
        loop {
            let want = (blob.stored_size - pos).min(frame.chunk_size);
            let mut chunk = Chunk {
                blob: index as u32,
                stream_offset: pos,
                size: want,
                offset,
                sha256: Digest([0; 32]),
            };
            let comma = u64::from(!chunks.is_empty());
            let grown = table_size + json_len(&chunk) + comma;
            let budget = i128::from(frame.volume_size)
                - i128::from(offset)
                - i128::from(BLOCK)
                - i128::from(tail_len(grown));
            let padded = want.div_ceil(BLOCK) * BLOCK;
            let take = if budget >= i128::from(padded) {
                want
            } else if budget >= i128::from(BLOCK) && want > BLOCK {
                // Cut the chunk at a block boundary so the volume is filled to the block.
                (budget as u64 / BLOCK) * BLOCK
            } else {
                if chunks.is_empty() {
                    return Err(FormatError::VolumeTooSmall {
                        size: frame.volume_size,
                        reason: format!(
                            "the bundle manifest, index and table alone take {} bytes per volume",
                            offset + tail_len(table_size)
                        ),
                    });
                }
                volumes.push(finish(volume, chunks, table_size, offset));
                volume = volume
                    .checked_add(1)
                    .ok_or_else(|| FormatError::Plan("more than 2^32 volumes".into()))?;
                (offset, table_size, chunks) = start(volume);
                continue;
            };
            chunk.size = take;
            table_size += json_len(&chunk) + comma;
            offset += entry_len(take);
            chunks.push(PlanChunk {
                blob: chunk.blob,
                stream_offset: chunk.stream_offset,
                size: chunk.size,
                offset: chunk.offset,
            });
            pos += take;
            if pos >= blob.stored_size {
                break;
            }
        }
    }
    volumes.push(finish(volume, chunks, table_size, offset));
    Ok(volumes)
}

fn finish(
    volume: u32,
    mut chunks: Vec<PlanChunk>,
    table_size: u64,
    table_offset: u64,
) -> VolumePlan {
    // The last round's volumes live until they are written: without doubling's slack.
    chunks.shrink_to_fit();
    VolumePlan {
        volume,
        chunks,
        table_size,
        table_offset,
        file_size: table_offset + tail_len(table_size),
    }
}

/// The whole plan: the final manifest bytes and the volumes, found by iterating until the
/// manifest's own size (which depends on the volume count) is stable (SPEC.md §5.3).
pub struct Plan {
    pub manifest: BundleManifest,
    /// Exactly the manifest's stored bytes (may end in padding, SPEC.md §4.3).
    pub manifest_bytes: Vec<u8>,
    /// `ferry/index.json`, as every volume carries it.
    pub index: IndexBytes,
    pub volumes: Vec<VolumePlan>,
}

/// `ferry/index.json` between planning and each volume's write: kept compressed (at 6×10^4
/// images 18 MB of JSON, 1–2 MB in zstd, held through pack's peak) and made again for
/// each volume; its length and digest are known without that.
#[derive(Debug, Clone)]
pub struct IndexBytes {
    compressed: Vec<u8>,
    len: u64,
    digest: Digest,
}

impl IndexBytes {
    pub fn new(bytes: &[u8]) -> IndexBytes {
        let mut compressed = zstd::bulk::compress(bytes, 1).expect("zstd compresses into memory");
        compressed.shrink_to_fit();
        IndexBytes {
            compressed,
            len: bytes.len() as u64,
            digest: Digest::of(bytes),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The bytes, made again.
    pub fn bytes(&self) -> Vec<u8> {
        let bytes = zstd::bulk::decompress(&self.compressed, self.len as usize)
            .expect("the index decompresses as it was compressed");
        debug_assert_eq!(Digest::of(&bytes), self.digest);
        bytes
    }
}

impl Plan {
    /// Frees what writing the volumes does not read once the manifest's stored bytes are
    /// made and checked: its images and tree (tens of MB at 10^5 images, at pack's peak).
    /// The header fields and blobs stay (chunk names, encodings, the report); the stored
    /// bytes keep everything. After it the manifest is no longer the bundle's: its
    /// `content_id`, `stored_len` and `to_json` describe another document, and a
    /// comparison of its images or tree (`drift`) sees none.
    pub fn drop_unwritten_records(&mut self) {
        self.manifest.images = Vec::new();
        self.manifest.tree = Vec::new();
    }

    /// Refuses a volume selection (`--only-volume`) naming a volume the bundle lacks.
    pub fn check_only(&self, only: &[u32]) -> Result<(), FormatError> {
        let count = self.volumes.len();
        match only.iter().find(|&&n| n == 0 || n as usize > count) {
            Some(n) => Err(FormatError::Plan(format!(
                "--only-volume {n}: the bundle has {count} volumes (1 to {count})"
            ))),
            None => Ok(()),
        }
    }
}

/// `manifest` has everything but `volume_count`, the blobs' volumes and `bundle_id`.
///
/// The manifest's stored bytes are costly to make (a serialization, and in format 2 a
/// compression), so they are made as few times as the fixed point needs: once to reserve
/// room, again only when a layout changed what the manifest says (the volume count, a
/// blob's volumes), and once at the end. The manifest is changed in place, never copied.
pub fn plan(
    mut manifest: BundleManifest,
    index: IndexBytes,
    volume_size: u64,
) -> Result<Plan, FormatError> {
    let blobs: Vec<PlanBlob> = manifest
        .blobs
        .iter()
        .map(|b| PlanBlob {
            stored_size: b.stored_size,
            carried: b.encoding != crate::manifest::Encoding::Base,
        })
        .collect();
    let index_size = index.len();
    manifest.volume_count = 1;
    manifest.seal();
    let mut reserve = manifest.stored_len();
    // Whether `reserve` was measured on the manifest as it now is.
    let mut measured = true;
    let mut count = 1u32;
    for _ in 0..32 {
        let frame = Frame {
            volume_size,
            chunk_size: manifest.chunk_size,
            bundle_size: reserve as u64,
            index_size,
            volume_count: count,
        };
        let volumes = layout(&blobs, &frame)?;
        let changed = place(&mut manifest, &volumes);
        if changed {
            manifest.seal();
            measured = false;
        }
        if manifest.volume_count != count {
            count = manifest.volume_count;
            continue;
        }
        if !measured {
            let len = manifest.stored_len();
            measured = true;
            if let Some(grown) = manifest.grown_reservation(len, reserve) {
                reserve = grown;
                continue;
            }
        }
        let mut manifest_bytes = manifest.stored_bytes(reserve);
        // Kept for the whole run: without the slack of the Vec's growth.
        manifest_bytes.shrink_to_fit();
        return Ok(Plan {
            manifest,
            manifest_bytes,
            index,
            volumes,
        });
    }
    Err(FormatError::Plan(
        "volume layout did not settle (please report this with the volume size used)".into(),
    ))
}

/// Writes what `volumes` decide into the manifest (its volume count and each blob's first
/// and last volume, 0 for a blob no volume carries); whether anything changed.
fn place(manifest: &mut BundleManifest, volumes: &[VolumePlan]) -> bool {
    let mut placed = vec![(0u32, 0u32); manifest.blobs.len()];
    for v in volumes {
        for c in &v.chunks {
            let p = &mut placed[c.blob as usize];
            if p.0 == 0 {
                p.0 = v.volume;
            }
            p.1 = v.volume;
        }
    }
    let mut changed = manifest.volume_count != volumes.len() as u32;
    manifest.volume_count = volumes.len() as u32;
    for (b, (first, last)) in manifest.blobs.iter_mut().zip(placed) {
        changed |= (b.first_volume, b.last_volume) != (first, last);
        (b.first_volume, b.last_volume) = (first, last);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(volume_size: u64) -> Frame {
        Frame {
            volume_size,
            chunk_size: 4 << 20,
            bundle_size: 3000,
            index_size: 700,
            volume_count: 9,
        }
    }

    #[test]
    fn fills_every_volume_but_the_last_and_never_overflows() {
        let blobs: Vec<PlanBlob> = [10_000_000u64, 1, 0, 513, 25_000_000, 3_000_000, 7]
            .iter()
            .map(|&s| PlanBlob {
                stored_size: s,
                carried: true,
            })
            .collect();
        let f = frame(5_000_000);
        let vols = layout(&blobs, &f).unwrap();
        assert!(vols.len() >= 8);
        for (i, v) in vols.iter().enumerate() {
            assert!(v.file_size <= f.volume_size);
            if i + 1 < vols.len() {
                assert!(
                    f.volume_size - v.file_size < 1 << 20,
                    "volume {i} underfilled"
                );
            }
        }
        // Every byte of every blob is placed exactly once, in order.
        for (b, blob) in blobs.iter().enumerate() {
            let mut next = 0;
            for c in vols
                .iter()
                .flat_map(|v| &v.chunks)
                .filter(|c| c.blob as usize == b)
            {
                assert_eq!(c.stream_offset, next);
                next += c.size;
            }
            assert_eq!(next, blob.stored_size);
        }
    }

    #[test]
    fn too_small_volume_is_an_error() {
        let err = layout(
            &[PlanBlob {
                stored_size: 10,
                carried: true,
            }],
            &frame(4096),
        )
        .unwrap_err();
        assert!(err.to_string().contains("too small"), "{err}");
    }
}
