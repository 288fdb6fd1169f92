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

/// A table's canonical bytes, made as its chunks are written
/// ([`VolumeTable::bytes_chunk_by_chunk`]).
pub struct TableBytes {
    bytes: Vec<u8>,
    chunks: usize,
}

impl TableBytes {
    pub fn push(&mut self, chunk: &Chunk) {
        if self.chunks > 0 {
            self.bytes.push(b',');
        }
        serde_json::to_writer(&mut self.bytes, chunk).expect("chunk serializes");
        self.chunks += 1;
    }

    /// The table's bytes, exactly [`VolumeTable::to_bytes`] of the table with the chunks.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(b"]}");
        self.bytes
    }
}

/// A writer that fails as soon as what is written departs from `rest`, and consumes it.
struct SameAs<'a> {
    rest: &'a [u8],
}

impl std::io::Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(buf) {
            Some(rest) => {
                self.rest = rest;
                Ok(buf.len())
            }
            None => Err(std::io::Error::other("differs")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl VolumeTable {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("table serializes")
    }

    /// The canonical bytes of this table (its chunks left out) followed by chunks given one
    /// at a time ([`TableBytes::push`]): what a writer builds as it writes a volume, so the
    /// chunks need not be kept beside their JSON (a table of 1.86×10^5 chunks is ~30 MB
    /// of JSON and 12 MB of records). `capacity`: the planned size, so the bytes are
    /// written once into room of that size.
    pub fn bytes_chunk_by_chunk(&self, capacity: usize) -> TableBytes {
        debug_assert!(self.chunks.is_empty());
        let mut bytes = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut bytes, self).expect("table serializes");
        // `chunks` is the last member and empty: the text ends in `[]}`.
        debug_assert!(bytes.ends_with(b"[]}"));
        bytes.truncate(bytes.len() - 2);
        TableBytes { bytes, chunks: 0 }
    }

    /// Whether `bytes` are exactly this table's canonical serialization. Compared as it is
    /// written, without building it: a table of 1.86×10^5 chunks is ~33 MB of JSON, which
    /// a whole second copy would add to every reader's peak.
    fn spelled_as(&self, bytes: &[u8]) -> bool {
        let mut same = SameAs { rest: bytes };
        // An error is the writer's "differs" (or a serializer failure, which cannot match).
        serde_json::to_writer(&mut same, self).is_ok() && same.rest.is_empty()
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
        let mut t: VolumeTable = serde_json::from_slice(bytes)
            .map_err(|e| Invalid::new(Rule::R5, format!("volume table: {e}")))?;
        // Held as long as the volume is open: without the slack the vector grew with.
        t.chunks.shrink_to_fit();
        if !t.spelled_as(bytes) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> VolumeTable {
        let file = FileRef {
            digest: Digest([1; 32]),
            size: 10,
        };
        VolumeTable {
            ferry_volume: TABLE_VERSION,
            bundle_id: Digest([2; 32]),
            volume: 1,
            volume_count: 1,
            bundle_manifest: file,
            index: file,
            chunks: (0..3)
                .map(|i| Chunk {
                    blob: i,
                    stream_offset: 0,
                    size: 7,
                    offset: 4096 + 1024 * u64::from(i),
                    sha256: Digest([3; 32]),
                })
                .collect(),
        }
    }

    /// A writer's table made chunk by chunk is the table's canonical bytes, with any
    /// number of chunks (none, one, several).
    #[test]
    fn chunk_by_chunk_is_the_canonical_bytes() {
        for n in [0, 1, 3] {
            let mut t = table();
            t.chunks.truncate(n);
            let header = VolumeTable {
                chunks: Vec::new(),
                ..t.clone()
            };
            let mut made = header.bytes_chunk_by_chunk(0);
            for c in &t.chunks {
                made.push(c);
            }
            assert_eq!(made.finish(), t.to_bytes(), "{n} chunks");
        }
    }

    /// R5: only the canonical spelling is a table, checked without a second copy of it.
    #[test]
    fn only_the_canonical_spelling_parses() {
        let t = table();
        let bytes = t.to_bytes();
        assert_eq!(VolumeTable::parse(&bytes).unwrap(), t);
        let text = String::from_utf8(bytes).unwrap();
        let other = [
            format!("{text} "),
            text.replacen(",\"volume\":", ", \"volume\":", 1),
            text.replacen("\"size\":7", "\"size\":7.0", 1),
            // The same hex digit, escaped: the same value, another spelling.
            text.replacen("\"sha256\":\"03", "\"sha256\":\"\\u00303", 1),
        ];
        for spelled in other {
            match VolumeTable::parse(spelled.as_bytes()) {
                Err(e) => assert_eq!(e.rule, Rule::R5, "{spelled}: {e}"),
                Ok(_) => panic!("accepted {spelled}"),
            }
        }
        // A prefix of the canonical text (the rest cut off) is not it either.
        let cut = text.replacen("]}", "]", 1);
        assert!(VolumeTable::parse(cut.as_bytes()).is_err());
        assert!(!t.spelled_as(&text.as_bytes()[..text.len() - 1]));
        assert!(!t.spelled_as(format!("{text}}}").as_bytes()));
    }
}
