//! Parts 3 and 4: sizes that lie (in tar headers, the re-signed table, the trailer and
//! the re-signed manifest), and a table pointing outside the file.

use format_spec::manifest::Encoding;
use format_spec::volume::entry_len;

use super::case::Cases;
use super::fixture::Good;
use super::tar::{set_size, with_trailer};

/// What R2 says of a table that does not end where the file does.
const R2: &str = "does not end where the file does";

/// Sizes that lie, then offsets outside the file.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    lies(cs, g);
    outside(cs, g);
}

/// Sizes that lie: in tar headers, the re-signed table, the trailer, the re-signed manifest.
fn lies(cs: &mut Cases, g: &Good) {
    let (l, good) = (&g.l, g.bytes());
    let (first, mid) = (g.first(), g.mid());
    // 3. Sizes that lie: in tar headers…
    let lies: [(&str, u64); 4] = [
        ("declared larger", first.size + 1024),
        ("declared smaller", first.size - 1),
        ("declared 0", 0),
        ("declared 2^63 (base-256)", 1 << 63),
    ];
    for (what, size) in lies {
        cs.damaged(
            "size lie: tar header",
            &format!("a chunk's tar header size {what}"),
            g.chunk_header(&|h| set_size(h, size)),
            g.says_header(),
        );
    }
    cs.invalid(
        "size lie: tar header",
        "the table's tar header size declared 2^63",
        g.meta(l.table_offset, &|h| set_size(h, 1 << 63)),
        &[&g.table_says()],
    );
    cs.invalid(
        "size lie: tar header",
        "ferry/bundle.json.zst's tar header size declared larger",
        g.meta(0, &|h| set_size(h, l.b + 512)),
        &["entry ferry/bundle.json.zst at offset 0 is damaged"],
    );
    cs.invalid(
        "size lie: tar header",
        "the trailer's tar header size declared smaller",
        g.meta(l.trailer_header(), &|h| set_size(h, 89)),
        &[&g.trailer_says()],
    );
    // …in the re-signed table (the file is left as it is)…
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 512 larger",
        g.table_lie(&|t| t.chunks[mid].size += 512),
        &["volume table: "],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 1 smaller",
        g.table_lie(&|t| t.chunks[mid].size -= 1),
        &["volume table: "],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 2^63",
        g.table_lie(&|t| t.chunks[mid].size = 1 << 63),
        &["volume table: chunk at offset", "over the"],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 2^64-1",
        g.table_lie(&|t| t.chunks[mid].size = u64::MAX),
        &["volume table: chunk at offset", "over the"],
    );
    cs.invalid(
        "size lie: table",
        "a chunk's size declared 0",
        g.table_lie(&|t| t.chunks[mid].size = 0),
        &["volume table: chunk at offset"],
    );
    cs.invalid(
        "size lie: table",
        "the manifest's size declared 1 larger",
        g.table_lie(&|t| t.bundle_manifest.size += 1),
        &["ferry/bundle.json.zst at offset 0 does not match the digest"],
    );
    cs.invalid(
        "size lie: table",
        "the manifest's size declared 2^63",
        g.table_lie(&|t| t.bundle_manifest.size = 1 << 63),
        &["over the size limit"],
    );
    cs.invalid(
        "size lie: table",
        "the index's size declared 1 smaller",
        g.table_lie(&|t| t.index.size -= 1),
        &["ferry/index.json does not match the digest"],
    );
    cs.invalid(
        "size lie: table",
        "the index's size declared 2^63",
        g.table_lie(&|t| t.index.size = 1 << 63),
        &["over the size limit"],
    );
    // …in the trailer (unsigned, but only its exact form is read)…
    // One byte more still ends where the file does unless it needs another block (R2);
    // then the signature is checked over bytes that are not the table (R3).
    let one_more = if entry_len(l.t + 1) == entry_len(l.t) {
        "volume table signature does not verify"
    } else {
        R2
    };
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 1 larger",
        with_trailer(good, l.table_offset, l.t + 1),
        &[one_more],
    );
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 512 smaller",
        with_trailer(good, l.table_offset, l.t - 512),
        &[R2],
    );
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 2^63",
        with_trailer(good, l.table_offset, 1 << 63),
        &[R2],
    );
    cs.invalid(
        "size lie: trailer",
        "the trailer's table size declared 2^64-1",
        with_trailer(good, l.table_offset, u64::MAX),
        &[R2],
    );
    // …and in the re-signed manifest.
    cs.invalid(
        "size lie: manifest",
        "a raw blob's size declared 1 larger than its stored size",
        g.with_manifest(&|m| {
            let b = m
                .blobs
                .iter_mut()
                .find(|b| b.encoding == Encoding::Raw)
                .unwrap();
            b.size += 1;
        }),
        &["stored_size"],
    );
    let ends_here = l
        .chunks
        .iter()
        .map(|c| c.blob)
        .find(|&i| {
            let b = &l.manifest.blobs[i as usize];
            b.first_volume == 1 && b.last_volume == 1
        })
        .expect("a blob wholly in volume 1");
    cs.invalid(
        "size lie: manifest",
        "a blob's stored size declared 512 larger than its chunks",
        g.with_manifest(&|m| {
            let b = &mut m.blobs[ends_here as usize];
            b.stored_size += 512;
            if b.encoding == Encoding::Raw {
                b.size += 512;
            }
        }),
        &["volume table"],
    );
    cs.invalid(
        "size lie: manifest",
        "chunk_size declared 2^63",
        g.with_manifest(&|m| m.chunk_size = 1 << 63),
        &["chunk_size"],
    );
    cs.invalid(
        "size lie: manifest",
        "volume_size declared smaller than the volume",
        g.with_manifest(&|m| m.volume_size = 4096),
        &["larger than the bundle's volume size"],
    );
    cs.invalid(
        "size lie: manifest",
        "created declared 2^63",
        g.with_manifest(&|m| m.created = 1 << 63),
        &["past what a tar header"],
    );
}

/// A table pointing outside the file.
fn outside(cs: &mut Cases, g: &Good) {
    let (l, good, mid) = (&g.l, g.bytes(), g.mid());
    // 4. A table pointing outside the file.
    cs.invalid(
        "outside the file",
        "a chunk's offset 2^40 (re-signed)",
        g.table_lie(&|t| t.chunks[mid].offset = 1 << 40),
        &[
            "volume table: chunk at offset 1099511627776",
            "expected at offset",
        ],
    );
    cs.invalid(
        "outside the file",
        "a chunk's offset 2^64-512 (re-signed)",
        g.table_lie(&|t| t.chunks[0].offset = u64::MAX - 511),
        &["expected at offset"],
    );
    cs.invalid(
        "outside the file",
        "a chunk's offset 0, over the manifest (re-signed)",
        g.table_lie(&|t| t.chunks[0].offset = 0),
        &["volume table: chunk at offset 0", "expected at offset"],
    );
    cs.invalid(
        "outside the file",
        "a manifest as large as the volume (re-signed)",
        g.table_lie(&|t| t.bundle_manifest.size = l.size),
        &["larger than the volume"],
    );
    cs.invalid(
        "outside the file",
        "the trailer's table offset past the end",
        with_trailer(good, l.size * 2, l.t),
        &[R2],
    );
    cs.invalid(
        "outside the file",
        "the trailer's table offset 2^64-1",
        with_trailer(good, u64::MAX, l.t),
        &[R2],
    );
}
