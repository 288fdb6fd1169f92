//! Parts 7 and 8: validly signed documents that break the format: unknown versions and
//! fields, and hostile paths in the manifest (M14, M17, M22).

use format_spec::manifest::TreeEntry;
use serde_json::Value;

use super::case::Cases;
use super::fixture::Good;

/// Unknown versions and fields, then hostile paths.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    versions(cs, g);
    paths(cs, g);
}

/// Unknown versions and fields, validly signed.
fn versions(cs: &mut Cases, g: &Good) {
    let (fx, good) = (g.fx, g.bytes());
    // 7. Unknown versions and fields, validly signed.
    let table_raw = |f: &dyn Fn(&mut Value)| {
        g.parts.write_with(&fx.secret, &fx.secret, &|_| {}, &|b| {
            let mut v: Value = serde_json::from_slice(&b).unwrap();
            f(&mut v);
            serde_json::to_vec(&v).unwrap()
        })
    };
    let table_text = |from: &'static str, to: &'static str| {
        g.parts
            .write_with(&fx.secret, &fx.secret, &|_| {}, &move |b| {
                let s = String::from_utf8(b).unwrap();
                assert!(s.contains(from), "table text has {from}");
                s.replacen(from, to, 1).into_bytes()
            })
    };
    cs.invalid(
        "version or field",
        "table version 3",
        table_text("{\"ferry_volume\":2,", "{\"ferry_volume\":3,"),
        &["volume table version 3 is not supported"],
    );
    cs.invalid(
        "version or field",
        "table version 1 holding a version-2 manifest",
        table_text("{\"ferry_volume\":2,", "{\"ferry_volume\":1,"),
        &["volume table version 1 holds a bundle manifest of version 2"],
    );
    cs.invalid(
        "version or field",
        "table version 2^32",
        table_text("{\"ferry_volume\":2,", "{\"ferry_volume\":4294967296,"),
        &["ferry_volume version 4294967296 is not supported"],
    );
    cs.invalid(
        "version or field",
        "table version missing",
        table_text("{\"ferry_volume\":2,", "{"),
        &["no ferry_volume version field"],
    );
    cs.invalid(
        "version or field",
        "table with an unknown member",
        table_raw(&|t| t["compression"] = "lz4".into()),
        &["volume table", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "table chunk with an unknown member",
        table_text(
            "\"stream_offset\":0,",
            "\"stream_offset\":0,\"encrypted\":false,",
        ),
        &["volume table", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "table with a member twice",
        table_text("\"volume\":1,", "\"volume\":1,\"volume\":1,"),
        &["volume table", "duplicate field"],
    );
    // The manifest's text edited (version 2's decompressed, edited, compressed again).
    let manifest_text = |from: &'static str, to: &'static str| {
        let mut p = g.parts.clone();
        let s = String::from_utf8(p.manifest_json()).unwrap();
        assert!(s.contains(from), "manifest text has {from}");
        p.put_manifest_json(s.replacen(from, to, 1).as_bytes());
        p.write(&fx.secret)
    };
    cs.invalid(
        "version or field",
        "manifest version 3",
        manifest_text("{\"ferry_bundle\":2,", "{\"ferry_bundle\":3,"),
        &["bundle manifest version 3 is not supported"],
    );
    cs.invalid(
        "version or field",
        "manifest version 1 in a zstd frame",
        manifest_text("{\"ferry_bundle\":2,", "{\"ferry_bundle\":1,"),
        &["bundle manifest version 1 is stored as one zstd frame"],
    );
    // Version 2's stored form (M27): only one zstd frame, then one all-zero padding frame.
    let stored = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = g.parts.clone();
        f(&mut p.manifest);
        p.write(&fx.secret)
    };
    cs.invalid(
        "version or field",
        "manifest as two zstd frames",
        stored(&|m| {
            let again = m.clone();
            m.extend_from_slice(&again)
        }),
        &["bytes after its zstd frame that are not a padding frame"],
    );
    cs.invalid(
        "version or field",
        "manifest padding frame with a non-zero byte",
        stored(&|m| {
            m.extend_from_slice(&format_spec::manifest::PADDING_MAGIC);
            m.extend_from_slice(&[4, 0, 0, 0, 0, 0, 7, 0]);
        }),
        &["padding frame holds a non-zero byte"],
    );
    cs.invalid(
        "version or field",
        "manifest as plain JSON in a version-2 volume",
        {
            let mut p = g.parts.clone();
            p.manifest = p.manifest_json();
            p.write(&fx.secret)
        },
        &["bundle manifest version 2 is stored as plain JSON"],
    );
    cs.invalid(
        "version or field",
        "manifest with an unknown member",
        manifest_text(
            "{\"ferry_bundle\":2,",
            "{\"ferry_bundle\":2,\"signed_by\":\"nobody\",",
        ),
        &["bundle manifest", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "manifest blob with an unknown member",
        manifest_text("\"encoding\":", "\"compression\":\"lz4\",\"encoding\":"),
        &["bundle manifest", "unknown field"],
    );
    cs.invalid(
        "version or field",
        "manifest tree entry of an unknown kind",
        manifest_text("{\"kind\":\"dir\",", "{\"kind\":\"fifo\","),
        &["bundle manifest", "unknown variant"],
    );
    let mut b = good.clone();
    let n = b.len();
    b[n - 1536 + 21] = b'2';
    cs.invalid(
        "version or field",
        "trailer version 2",
        b,
        &["no ferry trailer"],
    );
}

/// Hostile paths in the signed manifest, re-signed.
fn paths(cs: &mut Cases, g: &Good) {
    // 8. Hostile paths in the signed manifest (M14, M17, M22), re-signed.
    cs.invalid(
        "manifest path",
        "a tree file ../../etc/cron.d/x",
        g.with_manifest(&|m| {
            m.tree.push(TreeEntry::File {
                path: "../../etc/cron.d/x".into(),
                blob: 0,
                mode: 0o644,
            })
        }),
        &["not a safe relative path"],
    );
    cs.invalid(
        "manifest path",
        "a tree directory /etc",
        g.with_manifest(&|m| {
            m.tree.insert(
                0,
                TreeEntry::Dir {
                    path: "/etc".into(),
                },
            )
        }),
        &["not a safe relative path"],
    );
    cs.invalid(
        "manifest path",
        "a tree symlink to ../../../etc/passwd",
        g.with_manifest(&|m| {
            m.tree.push(TreeEntry::Symlink {
                path: "zz".into(),
                target: "../../../etc/passwd".into(),
            })
        }),
        &["leaves the tree"],
    );
    cs.invalid(
        "manifest path",
        "a tree hard link to /etc/shadow",
        g.with_manifest(&|m| {
            m.tree.push(TreeEntry::Link {
                path: "zz".into(),
                target: "/etc/shadow".into(),
            })
        }),
        &["not a file listed before it"],
    );
}
