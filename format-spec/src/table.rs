//! The volume table, `ferry/volume-NNNN.json` (SPEC.md §5.4): the signed list of what one
//! volume holds, so the volume can be verified and pushed alone.

use serde::{Deserialize, Serialize};

use crate::digest::{bare_hex, Digest};
use crate::error::Invalid;
use crate::manifest::{peek_version, MAX_CHUNK_SIZE};
use crate::rule::Rule;

/// The table version of a version-2 bundle: the table's version is its bundle's, so a
/// reader knows the manifest's entry name (`ferry/bundle.json.zst` or `ferry/bundle.json`)
/// before reading it (SPEC.md §5.4, §9). Both have the same members.
pub const TABLE_VERSION: u32 = 2;
/// Every table version read.
pub const TABLE_VERSIONS: [u32; 2] = [1, 2];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VolumeTable {
    pub ferry_volume: u32,
    pub bundle_id: Digest,
    /// 1-based.
    pub volume: u32,
    pub volume_count: u32,
    /// The bundle manifest as stored in this volume.
    pub bundle_manifest: FileRef,
    /// `ferry/index.json` as stored in this volume.
    pub index: FileRef,
    pub chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// Index into the bundle manifest's `blobs`.
    pub blob: u32,
    /// Where the chunk starts in the blob's stored stream.
    pub stream_offset: u64,
    pub size: u64,
    /// Offset of the chunk's tar header in the volume.
    pub offset: u64,
    /// SHA-256 of the chunk's stored bytes.
    #[serde(with = "bare_hex")]
    pub sha256: Digest,
}

impl VolumeTable {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("table serializes")
    }

    /// Parses and checks the rules that need no other document (SPEC.md §5.6).
    /// Call only on signature-checked bytes.
    pub fn parse(bytes: &[u8]) -> Result<VolumeTable, Invalid> {
        let version = peek_version(bytes, "ferry_volume", Rule::R4)?;
        if !TABLE_VERSIONS.contains(&version) {
            return Err(Invalid::new(Rule::R4, format!(
                "volume table version {version} is not supported (this ferry reads versions 1 and 2)"
            )));
        }
        let t: VolumeTable = serde_json::from_slice(bytes)
            .map_err(|e| Invalid::new(Rule::R5, format!("volume table: {e}")))?;
        if t.to_bytes() != bytes {
            return Err(Invalid::new(
                Rule::R5,
                "volume table: not in canonical form (compact JSON in the field order of SPEC.md §5.4)",
            ));
        }
        if t.volume == 0 || t.volume > t.volume_count {
            return Err(Invalid::new(
                Rule::R6,
                format!(
                    "volume table: volume {} of {} is out of range",
                    t.volume, t.volume_count
                ),
            ));
        }
        for c in &t.chunks {
            if c.size > MAX_CHUNK_SIZE {
                return Err(Invalid::new(
                    Rule::R7,
                    format!(
                        "volume table: chunk at offset {} declares {} bytes, over the {} limit",
                        c.offset, c.size, MAX_CHUNK_SIZE
                    ),
                ));
            }
        }
        Ok(t)
    }
}
