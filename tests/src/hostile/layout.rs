//! Where things are in a volume (SPEC.md §5.2): the byte layout of a good one, its
//! regions, and what verify says when a file's end moved.

use std::fs;
use std::path::Path;

use format_spec::manifest::BundleManifest;
use format_spec::table::Chunk;
use format_spec::volume;
use format_spec::volume::{entry_len, BLOCK, SIGNATURE_SIZE};

use super::fixture::Fixture;

/// The byte layout of one good volume.
pub struct Layout {
    pub bytes: Vec<u8>,
    pub size: u64,
    /// B, I, T: lengths of manifest, index, table.
    pub b: u64,
    pub i: u64,
    pub t: u64,
    /// O: offset of the table's header.
    pub table_offset: u64,
    pub chunks: Vec<Chunk>,
    pub manifest: BundleManifest,
}

impl Layout {
    pub(super) fn of(fx: &Fixture, path: &Path) -> Layout {
        let v = fx.open(path);
        let (o, table) = v.table_location();
        Layout {
            bytes: fs::read(path).unwrap(),
            size: v.size,
            b: v.manifest_bytes.len() as u64,
            i: v.index_id().0,
            t: table.len() as u64,
            table_offset: o,
            chunks: v.table.chunks.clone(),
            manifest: (*v.manifest).clone(),
        }
    }

    pub(super) fn manifest_sig(&self) -> u64 {
        entry_len(self.b)
    }
    pub(super) fn index_header(&self) -> u64 {
        entry_len(self.b) + entry_len(SIGNATURE_SIZE)
    }
    pub(super) fn index_sig(&self) -> u64 {
        self.index_header() + entry_len(self.i)
    }
    pub(super) fn table_sig(&self) -> u64 {
        self.table_offset + entry_len(self.t)
    }
    pub(super) fn trailer_header(&self) -> u64 {
        self.size - 2048
    }
    pub(super) fn blob_of(&self, c: &Chunk) -> String {
        self.manifest.blobs[c.blob as usize].digest.to_string()
    }
}

/// A stretch of a volume: what it is called, where it starts, how long it is, and what
/// `verify` says when one of its bits is flipped.
pub(super) struct Region {
    pub(super) name: String,
    pub(super) start: u64,
    pub(super) len: u64,
    /// `invalid` or `damaged`.
    pub(super) status: &'static str,
    pub(super) says: Vec<String>,
    /// A blob whose bytes the flip damages.
    pub(super) damages: Option<String>,
}

pub(super) fn regions(l: &Layout) -> Vec<Region> {
    let first = l.chunks[0];
    let padded = *l
        .chunks
        .iter()
        .find(|c| c.size % BLOCK != 0)
        .expect("a chunk that does not fill its last block");
    let invalid = |name: &str, start: u64, len: u64, says: Vec<String>| Region {
        name: name.into(),
        start,
        len,
        status: "invalid",
        says,
        damages: None,
    };
    let s = |x: &str| x.to_string();
    vec![
        invalid(
            "tar header of ferry/bundle.json.zst",
            0,
            BLOCK,
            vec![s("entry ferry/bundle.json.zst at offset 0 is damaged")],
        ),
        invalid(
            "bundle manifest",
            BLOCK,
            l.b,
            vec![s(
                "ferry/bundle.json.zst at offset 0 does not match the digest",
            )],
        ),
        invalid(
            "bundle manifest signature",
            l.manifest_sig() + BLOCK,
            SIGNATURE_SIZE,
            vec![s("bundle manifest signature does not verify")],
        ),
        invalid(
            "OCI index",
            l.index_header() + BLOCK,
            l.i,
            vec![s("ferry/index.json does not match the digest")],
        ),
        invalid(
            "index signature",
            l.index_sig() + BLOCK,
            SIGNATURE_SIZE,
            vec![s("image index signature does not verify")],
        ),
        invalid(
            "padding after the index signature",
            l.index_sig() + BLOCK + SIGNATURE_SIZE,
            BLOCK - SIGNATURE_SIZE,
            vec![format!(
                "entry ferry/index.json.sig at offset {} is damaged",
                l.index_sig()
            )],
        ),
        Region {
            name: "tar header of a chunk".into(),
            start: first.offset,
            len: BLOCK,
            status: "damaged",
            says: vec![format!("tar header damaged at offset {}", first.offset)],
            damages: None,
        },
        Region {
            name: "chunk data".into(),
            start: first.offset + BLOCK,
            len: first.size,
            status: "damaged",
            says: vec![format!("chunk data damaged at offset {}", first.offset)],
            damages: Some(l.blob_of(&first)),
        },
        Region {
            name: "padding after a chunk".into(),
            start: padded.offset + BLOCK + padded.size,
            len: entry_len(padded.size) - BLOCK - padded.size,
            status: "damaged",
            says: vec![format!(
                "padding after chunk damaged at offset {}",
                padded.offset
            )],
            damages: None,
        },
        invalid(
            "tar header of the volume table",
            l.table_offset,
            BLOCK,
            vec![format!(
                "entry ferry/volume-0001.json at offset {} is damaged",
                l.table_offset
            )],
        ),
        invalid(
            "volume table",
            l.table_offset + BLOCK,
            l.t,
            vec![s("volume table signature does not verify")],
        ),
        invalid(
            "volume table signature",
            l.table_sig() + BLOCK,
            SIGNATURE_SIZE,
            vec![s("volume table signature does not verify")],
        ),
        invalid(
            "tar header of the trailer",
            l.trailer_header(),
            BLOCK,
            vec![format!(
                "entry ferry/trailer at offset {} is damaged",
                l.trailer_header()
            )],
        ),
        invalid("trailer", l.size - 1536, BLOCK, vec![s("no ferry trailer")]),
        invalid(
            "end of archive",
            l.size - 1024,
            1024,
            vec![s("no end-of-archive blocks")],
        ),
    ]
}

/// What R1/R2 say about a file whose end moved (SPEC.md §5.6: the first rule broken).
pub(super) fn end_rule(bytes: &[u8]) -> &'static str {
    let n = bytes.len();
    if n < 6656 || n & 511 != 0 {
        "512-byte blocks"
    } else if bytes[n - 1024..].iter().any(|&b| b != 0) {
        "no end-of-archive blocks"
    } else if volume::parse_trailer(&bytes[n - 1536..n - 1024]).is_none() {
        "no ferry trailer"
    } else {
        "does not end where the file does"
    }
}
