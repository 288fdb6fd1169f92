//! Part 2: tar entries crafted by rewriting headers (so the signed table no longer
//! matches), entries no table names, and duplicate entries.

use format_spec::volume;
use format_spec::volume::entry_len;

use super::case::{Cases, Craft};
use super::fixture::Good;
use super::layout::end_rule;
use super::tar::{insert, set_device, set_link, set_name, set_size, tar_entry};

/// Crafted, unnamed and duplicate entries.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    let (fx, l, good) = (g.fx, &g.l, g.bytes());
    let first = g.first();
    // 2. Tar entries crafted by rewriting headers: the signed table no longer matches.
    let crafted: [Craft<'_>; 9] = [
        ("a chunk renamed ../../../../etc/cron.d/ferry", &|h| {
            set_name(h, "../../../../etc/cron.d/ferry")
        }),
        ("a chunk renamed to the absolute /etc/passwd", &|h| {
            set_name(h, "/etc/passwd")
        }),
        ("a chunk turned into a symlink to /etc/shadow", &|h| {
            set_link(h, b'2', "/etc/shadow");
            set_size(h, 0);
        }),
        (
            "a chunk turned into a hard link to ferry/bundle.json.zst",
            &|h| {
                set_link(h, b'1', "ferry/bundle.json.zst");
                set_size(h, 0);
            },
        ),
        ("a chunk turned into the character device 1:3", &|h| {
            set_name(h, "dev/null");
            set_device(h, b'3', 1, 3);
        }),
        ("a chunk turned into the block device 8:0", &|h| {
            set_name(h, "dev/sda");
            set_device(h, b'4', 8, 0);
        }),
        ("a chunk turned into a FIFO", &|h| set_device(h, b'6', 0, 0)),
        ("a chunk turned into a pax extended header", &|h| {
            h[156] = b'x'
        }),
        ("a chunk turned into a directory ../../", &|h| {
            set_name(h, "../../");
            h[156] = b'5';
            set_size(h, 0);
        }),
    ];
    for (name, f) in crafted {
        cs.damaged("tar entry", name, g.chunk_header(f), g.says_header());
    }
    cs.invalid(
        "tar entry",
        "ferry/bundle.json.zst renamed ../../ferry/bundle.json.zst",
        g.meta(0, &|h| set_name(h, "../../ferry/bundle.json.zst")),
        &["entry ferry/bundle.json.zst at offset 0 is damaged"],
    );
    cs.invalid(
        "tar entry",
        "ferry/bundle.json.zst renamed to the absolute /ferry/bundle.json.zst",
        g.meta(0, &|h| set_name(h, "/ferry/bundle.json.zst")),
        &["entry ferry/bundle.json.zst at offset 0 is damaged"],
    );
    cs.invalid(
        "tar entry",
        "the volume table's entry turned into a symlink to /etc/passwd",
        g.meta(l.table_offset, &|h| set_link(h, b'2', "/etc/passwd")),
        &[&g.table_says()],
    );
    cs.invalid(
        "tar entry",
        "the trailer's entry turned into a hard link to /etc/shadow",
        g.meta(l.trailer_header(), &|h| set_link(h, b'1', "/etc/shadow")),
        &[&g.trailer_says()],
    );
    cs.invalid(
        "tar entry",
        "the index signature's entry turned into a device",
        g.meta(l.index_sig(), &|h| set_device(h, b'3', 1, 3)),
        &[&format!(
            "entry ferry/index.json.sig at offset {} is damaged",
            l.index_sig()
        )],
    );

    // Entries no table names.
    let evil = tar_entry("evil.sh", b"#!/bin/sh\nrm -rf /\n", l.manifest.created);
    let b = insert(good, l.table_offset, &evil);
    let rule = end_rule(&b);
    cs.invalid(
        "unnamed entry",
        "an entry evil.sh inserted before the table",
        b,
        &[rule],
    );
    let mut p = g.parts.clone();
    p.unnamed
        .push(("evil.sh".into(), b"#!/bin/sh\nrm -rf /\n".to_vec()));
    cs.invalid(
        "unnamed entry",
        "an entry evil.sh before the table, table re-signed without it",
        p.write(&fx.secret),
        &["entries are missing or unnamed"],
    );
    let mut p = g.parts.clone();
    p.unnamed.push((
        volume::table_name(1),
        br#"{"ferry_volume":1,"chunks":[]}"#.to_vec(),
    ));
    cs.invalid(
        "unnamed entry",
        "a second ferry/volume-0001.json entry before the real table (re-signed)",
        p.write(&fx.secret),
        &["entries are missing or unnamed"],
    );
    let mut b = good.clone();
    b.extend_from_slice(&evil);
    cs.invalid(
        "unnamed entry",
        "an entry appended after the end-of-archive",
        b,
        &["no end-of-archive blocks"],
    );
    let mut b = good.clone();
    b.extend_from_slice(&evil);
    b.extend_from_slice(&[0u8; 1024]);
    cs.invalid(
        "unnamed entry",
        "an entry and a new end-of-archive appended",
        b,
        &["no ferry trailer"],
    );
    cs.invalid(
        "unnamed entry",
        "the last chunk left out of the re-signed table",
        g.parts.write_with(
            &fx.secret,
            &fx.secret,
            &|t| {
                t.chunks.pop();
            },
            &|b| b,
        ),
        &["entries are missing or unnamed"],
    );

    // Duplicate entries.
    let whole_first =
        good[first.offset as usize..(first.offset + entry_len(first.size)) as usize].to_vec();
    let b = insert(good, first.offset + entry_len(first.size), &whole_first);
    let rule = end_rule(&b);
    cs.invalid(
        "duplicate entry",
        "the first chunk's entry twice",
        b,
        &[rule],
    );
    let mut p = g.parts.clone();
    p.table.chunks.insert(1, p.table.chunks[0]);
    p.chunks.insert(1, p.chunks[0].clone());
    p.names.insert(1, p.names[0].clone());
    cs.invalid(
        "duplicate entry",
        "the first chunk twice, in the file and the re-signed table",
        p.write(&fx.secret),
        &["volume table: chunk at offset"],
    );
    let mut p = g.parts.clone();
    p.duplicate_manifest = true;
    // R10 comes first: the signature is read where the first copy's entry ends.
    cs.invalid(
        "duplicate entry",
        "ferry/bundle.json.zst twice (table re-signed)",
        p.write(&fx.secret),
        &["bundle manifest signature does not verify"],
    );
    let b = insert(good, 0, &good[..entry_len(l.b) as usize]);
    let rule = end_rule(&b);
    cs.invalid(
        "duplicate entry",
        "ferry/bundle.json.zst twice (not re-signed)",
        b,
        &[rule],
    );
}
