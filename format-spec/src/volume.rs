//! The byte layout of a volume (SPEC.md §5.2): a POSIX ustar archive whose entries are, in
//! order, the bundle manifest and its signature, the OCI index and its signature, the
//! chunks, the volume table and its signature, and a fixed-size trailer that locates the
//! table, then the end-of-archive blocks.

use crate::digest::Digest;
use crate::manifest::Encoding;

pub const BLOCK: u64 = 512;
pub const END_OF_ARCHIVE: u64 = 2 * BLOCK;
pub const TRAILER_SIZE: u64 = BLOCK;
pub const SIGNATURE_SIZE: u64 = 64;
/// Bytes from the trailer's header to the end of the file.
pub const TAIL_FIXED: u64 = entry_len(SIGNATURE_SIZE) + entry_len(TRAILER_SIZE) + END_OF_ARCHIVE;
/// Largest table or manifest a reader will load; bounds allocation before any signature check.
pub const MAX_DOCUMENT: u64 = 256 << 20;

/// The manifest's entry in a volume of a version-2 bundle (SPEC.md §5.2): zstd, by name.
pub const BUNDLE_NAME: &str = "ferry/bundle.json.zst";
pub const BUNDLE_SIG_NAME: &str = "ferry/bundle.json.zst.sig";
/// The manifest's entry in a volume of a version-1 bundle.
pub const BUNDLE_NAME_V1: &str = "ferry/bundle.json";
pub const BUNDLE_SIG_NAME_V1: &str = "ferry/bundle.json.sig";
pub const INDEX_NAME: &str = "ferry/index.json";
pub const INDEX_SIG_NAME: &str = "ferry/index.json.sig";
pub const TRAILER_NAME: &str = "ferry/trailer";
const TRAILER_MAGIC: &str = "ferry-volume-trailer 1";

/// A tar entry's length: header plus data rounded up to the block.
pub const fn entry_len(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// The manifest's entry name for a bundle (and table) of `version` (SPEC.md §5.2, §9): the
/// table's `ferry_volume` says it before the manifest is read.
pub fn bundle_name(version: u32) -> &'static str {
    if version == 1 {
        BUNDLE_NAME_V1
    } else {
        BUNDLE_NAME
    }
}

/// The name of the manifest's signature entry for a bundle of `version`.
pub fn bundle_sig_name(version: u32) -> &'static str {
    if version == 1 {
        BUNDLE_SIG_NAME_V1
    } else {
        BUNDLE_SIG_NAME
    }
}

pub fn table_name(volume: u32) -> String {
    format!("ferry/volume-{volume:04}.json")
}

pub fn table_sig_name(volume: u32) -> String {
    format!("{}.sig", table_name(volume))
}

/// `blobs/sha256/<hex>.<raw|zst>.<16 hex digits of stream offset>`: after `tar xf`,
/// `cat blobs/sha256/<hex>.zst.*` yields the stored stream in order (SPEC.md §5.5).
pub fn chunk_name(blob: &Digest, encoding: Encoding, stream_offset: u64) -> String {
    format!(
        "blobs/sha256/{}.{}.{stream_offset:016x}",
        blob.hex(),
        encoding.extension()
    )
}

/// The ustar header ferry writes for an entry: everything fixed but name, size and mtime,
/// so a reader can rebuild it and compare every byte (SPEC.md §5.2).
pub fn header(name: &str, size: u64, mtime: u64) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .expect("ferry entry names fit a ustar header");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    *h.as_bytes()
}

/// The trailer's 512 bytes: text a person can read with `tail -c 1536 VOL | head -c 512`.
pub fn trailer(table_offset: u64, table_size: u64) -> [u8; 512] {
    let text =
        format!("{TRAILER_MAGIC}\ntable-offset {table_offset:020}\ntable-size {table_size:020}\n");
    let mut out = [b'\n'; 512];
    out[..text.len()].copy_from_slice(text.as_bytes());
    out
}

/// Reads a trailer back; `None` unless it is exactly what [`trailer`] writes.
pub fn parse_trailer(bytes: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(bytes.get(..512)?).ok()?;
    let mut lines = text.lines();
    if lines.next()? != TRAILER_MAGIC {
        return None;
    }
    let offset = lines.next()?.strip_prefix("table-offset ")?.parse().ok()?;
    let size = lines.next()?.strip_prefix("table-size ")?.parse().ok()?;
    (trailer(offset, size)[..] == bytes[..512]).then_some((offset, size))
}

/// Where the fixed leading entries end and chunks begin.
pub fn head_len(bundle_size: u64, index_size: u64) -> u64 {
    entry_len(bundle_size)
        + entry_len(SIGNATURE_SIZE)
        + entry_len(index_size)
        + entry_len(SIGNATURE_SIZE)
}

/// Bytes from the table's header to the end of the file.
pub fn tail_len(table_size: u64) -> u64 {
    entry_len(table_size) + TAIL_FIXED
}

/// `ferry-<first 12 hex of bundle id>-003-of-007.tar`.
pub fn volume_file_name(bundle_id: &Digest, volume: u32, count: u32) -> String {
    format!(
        "ferry-{}-{volume:03}-of-{count:03}.tar",
        &bundle_id.hex()[..12]
    )
}

/// The standalone copy of the bundle manifest written beside the volumes:
/// `ferry-<id12>.bundle.json.zst` for version 2, `….bundle.json` for version 1.
pub fn manifest_file_name(bundle_id: &Digest, version: u32) -> String {
    let ext = if version == 1 { "" } else { ".zst" };
    format!("ferry-{}.bundle.json{ext}", &bundle_id.hex()[..12])
}

/// Whether a file name is that of a standalone manifest of either version
/// (`*.bundle.json.zst` or `*.bundle.json`); readers take the version from the bytes.
pub fn is_manifest_path_name(name: &str) -> bool {
    name.ends_with(".bundle.json") || name.ends_with(".bundle.json.zst")
}

/// Whether a file name is that of some bundle's standalone manifest (`ferry-*.bundle.json`
/// or `ferry-*.bundle.json.zst`).
pub fn is_manifest_file_name(name: &str) -> bool {
    name.starts_with("ferry-") && is_manifest_path_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_is_strict() {
        let t = trailer(123456, 789);
        assert_eq!(parse_trailer(&t), Some((123456, 789)));
        let mut bad = t;
        bad[100] = b'x';
        assert_eq!(parse_trailer(&bad), None);
    }

    #[test]
    fn chunk_names_fit_ustar_without_extensions() {
        let name = chunk_name(&Digest([0xab; 32]), Encoding::Zstd, u64::MAX);
        assert!(name.len() <= 100, "{}", name.len());
        let h = header(&name, 5, 0);
        assert_eq!(&h[257..263], b"ustar\0");
    }
}
