//! How a manifest is stored (SPEC.md §4.3): version 1 as its canonical JSON followed by
//! spaces; version 2 as one zstd frame of its canonical JSON followed, when the planner
//! reserved more, by one skippable frame of zero bytes (`zstd -d` skips it). Version 2
//! makes the 75 MB manifest of 6×10^4 images about a quarter of that (issue 13 item 3).

use std::io::{self, BufReader, Read};

use sha2::{Digest as _, Sha256};

use super::canonical::CountWriter;
use super::BundleManifest;
use crate::error::Invalid;
use crate::rule::Rule;
use crate::Digest;

/// The magic number of a zstd frame (RFC 8878 §3.1.1), 0xFD2FB528 little-endian.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The skippable frame a version-2 manifest is padded with: magic 0x184D2A50,
/// little-endian (RFC 8878 §3.1.2; the first of the sixteen skippable magics).
pub const PADDING_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];
/// A skippable frame's header: magic and a 4-byte little-endian length. A gap shorter than
/// this cannot be padded, so the planner grows its reservation past it (SPEC.md §5.3).
pub const PADDING_HEADER: usize = 8;
/// The largest canonical JSON a version-2 manifest may decompress to (M27): far above the
/// 75 MB of a full catalog, and a bound a zstd bomb cannot pass.
pub const MAX_JSON: u64 = 1 << 30;
/// The zstd level writers use (as for blobs, SPEC.md §5.5).
pub const LEVEL: i32 = 3;

impl BundleManifest {
    /// The bytes stored as the volume's manifest entry and the standalone copy, padded to
    /// `pad_to` (SPEC.md §4.3, §5.3), in the form of the manifest's version: the planner
    /// reserves room with it and writes it, so it is the one place that decides how a
    /// manifest is stored. Panics if the padding cannot be made (see
    /// [`grown_reservation`](Self::grown_reservation)).
    pub fn stored_bytes(&self, pad_to: usize) -> Vec<u8> {
        // The planner gives the measured length as `pad_to`: the bytes (tens of MB at 10^5
        // images, kept all run) are written once into room of that size, not grown by
        // doubling.
        let mut out = Vec::with_capacity(pad_to);
        if self.ferry_bundle == 1 {
            self.write_json(&mut out).expect("manifest serializes");
        } else {
            let mut enc =
                zstd::stream::write::Encoder::new(out, LEVEL).expect("zstd encoder starts");
            self.write_json(&mut enc).expect("manifest compresses");
            out = enc.finish().expect("manifest compresses");
        }
        let gap = pad_to.saturating_sub(out.len());
        if gap > 0 {
            if self.ferry_bundle == 1 {
                out.resize(pad_to, b' ');
            } else {
                assert!(
                    gap >= PADDING_HEADER,
                    "a gap of {gap} bytes cannot hold a skippable frame"
                );
                out.extend_from_slice(&PADDING_MAGIC);
                out.extend_from_slice(&((gap - PADDING_HEADER) as u32).to_le_bytes());
                out.resize(pad_to, 0);
            }
        }
        out
    }

    /// The length [`stored_bytes`](Self::stored_bytes) would have without padding,
    /// counted without holding the bytes.
    pub fn stored_len(&self) -> usize {
        let mut count = CountWriter::default();
        if self.ferry_bundle == 1 {
            self.write_json(&mut count).expect("manifest serializes");
        } else {
            let mut enc =
                zstd::stream::write::Encoder::new(&mut count, LEVEL).expect("zstd encoder starts");
            self.write_json(&mut enc).expect("manifest compresses");
            enc.finish().expect("manifest compresses");
        }
        count.0 as usize
    }

    /// For the planner's fixed point (SPEC.md §5.3): `None` when stored bytes of `len` can
    /// be padded to `reserve`, else the reservation to try next. Version 1 pads any gap;
    /// version 2 pads with a skippable frame, which cannot be 1–7 bytes long.
    pub fn grown_reservation(&self, len: usize, reserve: usize) -> Option<usize> {
        if len > reserve {
            Some(len)
        } else if self.ferry_bundle != 1 && reserve > len && reserve - len < PADDING_HEADER {
            Some(len + PADDING_HEADER)
        } else {
            None
        }
    }
}

/// Whether stored bytes are in version 2's form: they start with a zstd frame or a
/// skippable frame (which M27 then refuses), never with JSON.
pub(super) fn is_compressed(stored: &[u8]) -> bool {
    stored.starts_with(&ZSTD_MAGIC)
        || (stored.len() >= 4 && stored[0] & 0xf0 == 0x50 && stored[1..4] == PADDING_MAGIC[1..])
}

fn m27(what: String) -> Invalid {
    Invalid::new(Rule::M27, format!("bundle manifest: {what}"))
}

/// M27's frame structure: one zstd frame, then nothing or exactly one padding frame of
/// zero bytes to the end. Returns the zstd frame.
pub(super) fn frame(stored: &[u8]) -> Result<&[u8], Invalid> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Err(m27(
            "does not start with a zstd frame (RFC 8878 §3.1.1; a skippable frame is refused even first)".into(),
        ));
    }
    let len = zstd::zstd_safe::find_frame_compressed_size(stored).map_err(|code| {
        m27(format!(
            "is not one complete zstd frame: {}",
            zstd::zstd_safe::get_error_name(code)
        ))
    })?;
    let (frame, rest) = stored.split_at(len);
    if rest.is_empty() {
        return Ok(frame);
    }
    if rest.len() < PADDING_HEADER || rest[..4] != PADDING_MAGIC {
        return Err(m27(format!(
            "holds {} bytes after its zstd frame that are not a padding frame (a skippable frame of magic 0x184D2A50)",
            rest.len()
        )));
    }
    let declared = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
    let content = &rest[PADDING_HEADER..];
    if declared != content.len() {
        return Err(m27(format!(
            "its padding frame declares {declared} bytes but {} follow: padding must run to the end, once",
            content.len()
        )));
    }
    if let Some(i) = content.iter().position(|&b| b != 0) {
        return Err(m27(format!(
            "its padding frame holds a non-zero byte at offset {}",
            len + PADDING_HEADER + i
        )));
    }
    Ok(frame)
}

/// The decompressed text of a frame, read in a stream: bounded by [`MAX_JSON`], hashed
/// and counted as it is read (M18 compares the hash with the canonical form's), and
/// remembering its first byte that is not JSON whitespace (M1: the value is an object).
pub(super) struct Decompressed<'a> {
    inner: BufReader<Counted<'a>>,
}

struct Counted<'a> {
    decoder: zstd::stream::read::Decoder<'static, &'a [u8]>,
    limit: u64,
    hasher: Sha256,
    len: u64,
    first: Option<u8>,
}

impl<'a> Decompressed<'a> {
    /// `limit` is [`MAX_JSON`] but in tests, which bound a small bomb the same way.
    pub(super) fn new(frame: &'a [u8], limit: u64) -> Result<Decompressed<'a>, Invalid> {
        let decoder = zstd::stream::read::Decoder::with_buffer(frame)
            .map_err(|e| m27(format!("zstd: {e}")))?
            .single_frame();
        let counted = Counted {
            decoder,
            limit,
            hasher: Sha256::new(),
            len: 0,
            first: None,
        };
        Ok(Decompressed {
            inner: BufReader::with_capacity(64 << 10, counted),
        })
    }

    /// Reads what is left, so a decoding failure after the point where JSON stopped
    /// being valid is still found (M27 comes before M1).
    pub(super) fn drain(&mut self) -> Result<(), Invalid> {
        io::copy(&mut self.inner, &mut io::sink())
            .map(|_| ())
            .map_err(decode_error)
    }

    pub(super) fn first_byte(&self) -> Option<u8> {
        self.inner.get_ref().first
    }

    /// SHA-256 and length of everything decompressed.
    pub(super) fn finish(self) -> (Digest, u64) {
        let c = self.inner.into_inner();
        (Digest(c.hasher.finalize().into()), c.len)
    }
}

impl Read for Decompressed<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out)
    }
}

impl io::BufRead for Decompressed<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

impl Read for Counted<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(out)?;
        self.len += n as u64;
        if self.len > self.limit {
            return Err(io::Error::other(format!(
                "decompresses to more than {} bytes",
                self.limit
            )));
        }
        self.hasher.update(&out[..n]);
        if self.first.is_none() {
            self.first = out[..n]
                .iter()
                .copied()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        }
        Ok(n)
    }
}

/// A failure while decompressing, met through serde_json or directly: M27.
pub(super) fn decode_error(e: io::Error) -> Invalid {
    m27(format!("its zstd frame does not decompress: {e}"))
}

/// The JSON text of stored bytes of either version, unchecked (signature, rules and all):
/// for tools and tests that take a volume apart and edit its manifest. Version 2's frame
/// is decompressed (at most [`MAX_JSON`] bytes, padding skipped); version 1's bytes are
/// returned as they are. Never use what it returns as trusted.
pub fn json_of(stored: &[u8]) -> io::Result<Vec<u8>> {
    if !is_compressed(stored) {
        return Ok(stored.to_vec());
    }
    let decoder = zstd::stream::read::Decoder::with_buffer(stored)?;
    let mut out = Vec::new();
    decoder.take(MAX_JSON + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_JSON {
        return Err(io::Error::other(format!(
            "decompresses to more than {MAX_JSON} bytes"
        )));
    }
    Ok(out)
}

/// One zstd frame of `json` as writers make it (level 3), unpadded: version 2's stored
/// form of any text, for tools and tests that must store a manifest breaking a rule
/// (a sealed manifest is stored by [`BundleManifest::stored_bytes`]).
pub fn compress_json(json: &[u8]) -> Vec<u8> {
    let mut enc =
        zstd::stream::write::Encoder::new(Vec::new(), LEVEL).expect("zstd encoder starts");
    io::Write::write_all(&mut enc, json).expect("compresses into memory");
    enc.finish().expect("compresses into memory")
}
