//! Test vectors (SPEC.md §10): every directory under `format-spec/vectors/` holds `key.pub`,
//! volume files and `expected.json`; a reader must reach the expected outcome.
//!
//! Two halves. The driver (`committed_vectors_reach_their_expected_outcome`) knows nothing
//! of how a vector was made: it reads each directory's committed files and
//! `expected.json`, runs the operation named there (`verify` or `extract`, SPEC.md §10.1)
//! and asserts the outcome and the rule reported — as an independent reader would.
//!
//! The generator (`vectors_are_current`) makes the vectors from a tiny synthetic bundle
//! and requires the committed files to be exactly what it makes, so a change to the
//! format or to packing cannot slip in without new vectors. Regenerate after a deliberate
//! change with `FERRY_REGENERATE_VECTORS=1 cargo test -p format-spec --test vectors`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use format_spec::bundle::Bundle;
use format_spec::digest::Digest;
use format_spec::error::rule_of_io;
use format_spec::key::{PrivateKey, PublicKey};
use format_spec::manifest::{BundleManifest, Encoding, Image, TreeEntry};
use format_spec::pack::{self, Options, Source, SourceBlob};
use format_spec::read::Volume;
use format_spec::rule::Rule;
use format_spec::table::VolumeTable;
use format_spec::verify::{self as verify_op, Inputs, VolumeStatus};
use format_spec::volume::{self, entry_len};
use test_support::resign::Parts;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// The vector signing key: a published test key, never to be trusted for anything else.
fn vector_key() -> PrivateKey {
    PrivateKey::load(&vectors_dir().join("vector-key.pem")).expect("vectors/vector-key.pem")
}

/// A second key, to sign what the trusted key did not.
fn other_key() -> PrivateKey {
    PrivateKey::load(&vectors_dir().join("other-key.pem")).expect("vectors/other-key.pem")
}

/// Deterministic bytes: a tiny xorshift, so vectors need no randomness.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Three blobs (a "gzip" layer that is stored raw, a compressible config, a manifest),
/// one image, a small tree; laid into 12 KiB volumes so blobs span volumes; a bundle of
/// format `bundle_format` (SPEC.md §9).
fn build_valid(dir: &Path, bundle_format: u32) -> Vec<PathBuf> {
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    let mut layer = vec![0x1f, 0x8b, 0x08, 0x00];
    layer.extend(noise(7, 9000));
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"history\":[{}]}}",
        vec!["{\"created_by\":\"RUN make && make install\"}"; 60].join(",")
    )
    .into_bytes();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{}\",\"size\":{}}}]}}",
        Digest::of(&config), config.len(), Digest::of(&layer), layer.len()
    )
    .into_bytes();
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let mut blobs = Vec::new();
    for (name, bytes, media) in [
        ("manifest", &manifest, Some(manifest_type.to_string())),
        ("config", &config, None),
        ("layer", &layer, None),
    ] {
        let path = src.join(name);
        fs::write(&path, bytes).unwrap();
        blobs.push(SourceBlob {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            at: path.into(),
            media_type: media,
            base: None,
        });
    }
    let image = Image {
        repository: "example/app".into(),
        tags: vec!["v1".into()],
        digest: Digest::of(&manifest),
        media_type: manifest_type.into(),
        source: Some("registry.example.com/example/app:v1".into()),
        blobs: vec![0, 1, 2],
        catalog: false,
        platforms: None,
        destination: None,
        packages: None,
    };
    let index = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{{\"mediaType\":\"{manifest_type}\",\"digest\":\"{}\",\"size\":{},\"annotations\":{{\"io.containerd.image.name\":\"registry.example.com/example/app:v1\",\"org.opencontainers.image.ref.name\":\"example/app:v1\"}}}}]}}",
        Digest::of(&manifest), manifest.len()
    )
    .into_bytes();
    let source = Source {
        source_layout: "oci".into(),
        blobs,
        images: vec![image],
        tree: vec![
            TreeEntry::Dir {
                path: "blobs".into(),
            },
            TreeEntry::File {
                path: "blobs/m".into(),
                blob: 0,
                mode: 0o644,
            },
            TreeEntry::Symlink {
                path: "latest".into(),
                target: "blobs/m".into(),
            },
        ],
        index_json: format_spec::pack::IndexBytes::new(&index),
    };
    let options = Options {
        volume_size: 12 << 10,
        chunk_size: 4096,
        created: 1_700_000_000,
        creator: "ferry vectors".into(),
        bundle_format,
    };
    let key = vector_key();
    let prepared =
        pack::prepare(&source.blobs, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    let plan = pack::make_plan(&source, &prepared, &options, &key).unwrap();
    let out = dir.join("out");
    let written = pack::write_volumes(
        &plan,
        &source.blobs,
        &prepared,
        &key,
        &mut |_| Ok(out.clone()),
        &[],
        &|_| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    written.into_iter().map(|w| w.path).collect()
}

/// A volume of the valid bundle taken apart (the test kit's [`Parts`]), to be put together
/// again after a change and re-signed: the way to make a volume that is validly signed yet
/// breaks a rule.
fn read_parts(path: &Path) -> Parts {
    Parts::read(path, &vector_key().public())
}

/// The volume written and signed by `key`, chunks named after the manifest as it is now;
/// offsets and document digests are recomputed unless `raw_table` gives the exact table
/// bytes to sign.
fn resigned(p: &Parts, key: &PrivateKey, raw_table: Option<Vec<u8>>) -> Vec<u8> {
    let mut p = p.clone();
    p.name_chunks();
    p.write_with(key, key, &|_| {}, &|table| {
        raw_table.clone().unwrap_or(table)
    })
}

fn flip(bytes: &mut [u8], at: usize) {
    bytes[at] ^= 0x20;
}

/// A vector's expected outcome and its volume files (name, bytes).
type Vector = (serde_json::Value, Vec<(String, Vec<u8>)>);

/// Every vector: name → (expected, volume files). `rule` names the SPEC.md rule. The
/// vectors of version 1 keep their names; those of version 2 start with `v2-`.
fn generate() -> BTreeMap<String, Vector> {
    let mut all = generate_v1();
    all.extend(generate_v2());
    all
}

/// A valid bundle of several volumes in `version`: its directory (kept alive by the
/// caller), the volumes' paths, file names and bytes.
fn valid_set(version: u32) -> (tempfile::TempDir, Vec<PathBuf>, Vec<String>, Vec<Vec<u8>>) {
    let tmp = tempfile::tempdir().unwrap();
    let paths = build_valid(tmp.path(), version);
    assert!(paths.len() >= 3, "vectors need a bundle of several volumes");
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let bytes: Vec<Vec<u8>> = paths.iter().map(|p| fs::read(p).unwrap()).collect();
    (tmp, paths, names, bytes)
}

/// The vectors of a version-1 bundle (`ferry-pack --bundle-format 1`): readers keep
/// reading it, so every one of them stays.
fn generate_v1() -> BTreeMap<String, Vector> {
    let (_tmp, paths, names, bytes) = valid_set(1);
    let key = vector_key();
    let mut out = BTreeMap::new();
    let mut add = |name: &str,
                   outcome: &str,
                   rule: &str,
                   contains: &str,
                   description: &str,
                   files: Vec<(String, Vec<u8>)>| {
        let expected = serde_json::json!({
            "operation": "verify", "outcome": outcome, "rule": rule, "error_contains": contains, "description": description,
        });
        out.insert(name.to_string(), (expected, files));
    };
    let one = |i: usize, data: Vec<u8>| vec![(names[i].clone(), data)];
    let all: Vec<(String, Vec<u8>)> = names.iter().cloned().zip(bytes.iter().cloned()).collect();

    add(
        "valid-bundle",
        "ok",
        "",
        "",
        "every volume of a bundle whose blobs span volumes",
        all.clone(),
    );
    add(
        "valid-single-volume",
        "ok",
        "",
        "",
        "one volume alone verifies; the others are missing",
        one(1, bytes[1].clone()),
    );

    let v0 = &bytes[0];
    let p0 = read_parts(&paths[0]);
    let first_chunk = p0.table.chunks[0];
    let (table_offset, table_bytes) = {
        let v = Volume::open(&paths[0], &[key.public()]).unwrap();
        let (o, t) = v.table_location();
        (o as usize, t.to_vec())
    };

    let mut b = v0.clone();
    flip(&mut b, first_chunk.offset as usize + 512 + 10);
    add(
        "chunk-data-flipped",
        "reject",
        "R25",
        "chunk data",
        "one bit of chunk data changed",
        one(0, b),
    );
    let mut b = v0.clone();
    flip(&mut b, first_chunk.offset as usize + 3);
    add(
        "chunk-header-flipped",
        "reject",
        "R24",
        "tar header",
        "a chunk's tar header changed",
        one(0, b),
    );
    let mut b = v0.clone();
    let pad_at = (first_chunk.offset + 512 + first_chunk.size) as usize;
    if !first_chunk.size.is_multiple_of(512) {
        b[pad_at] = 1;
        add(
            "chunk-padding-nonzero",
            "reject",
            "R26",
            "padding",
            "non-zero bytes in a chunk's padding",
            one(0, b),
        );
    }
    let mut b = v0.clone();
    flip(&mut b, table_offset + 512 + 20);
    add(
        "table-flipped",
        "reject",
        "R3",
        "signature",
        "one bit of the volume table changed",
        one(0, b),
    );
    let mut b = v0.clone();
    let len = b.len();
    flip(&mut b, len - 1024 - 512 + 30);
    add(
        "trailer-flipped",
        "reject",
        "R1",
        "trailer",
        "the trailer's text changed",
        one(0, b),
    );
    let mut b = v0.clone();
    b.truncate(b.len() - 512);
    add(
        "truncated-block",
        "reject",
        "R1",
        "truncated",
        "the last block is missing",
        one(0, b),
    );
    let mut b = v0.clone();
    b.truncate(b.len() / 2 + 7);
    add(
        "truncated-odd",
        "reject",
        "R1",
        "512-byte blocks",
        "cut in the middle, not at a block",
        one(0, b),
    );
    let mut b = v0.clone();
    let len = b.len();
    b[len - 5] = 1;
    add(
        "end-of-archive-nonzero",
        "reject",
        "R1",
        "end-of-archive",
        "the end-of-archive blocks are not zero",
        one(0, b),
    );
    let mut b = v0.clone();
    flip(&mut b, 512 + 40);
    add(
        "manifest-flipped",
        "reject",
        "R9",
        "bundle.json",
        "one bit of the bundle manifest changed",
        one(0, b),
    );
    let mut b = v0.clone();
    let sig_at = entry_len(p0.manifest.len() as u64) as usize + 512;
    flip(&mut b, sig_at + 5);
    add(
        "manifest-signature-flipped",
        "reject",
        "R10",
        "signature",
        "the bundle manifest's signature changed",
        one(0, b),
    );
    let mut b = v0.clone();
    let index_at = (entry_len(p0.manifest.len() as u64) + entry_len(64)) as usize + 512;
    flip(&mut b, index_at + 5);
    add(
        "index-flipped",
        "reject",
        "R12",
        "index.json",
        "one bit of the OCI index changed",
        one(0, b),
    );
    let mut b = v0.clone();
    flip(&mut b, table_offset + 1);
    add(
        "table-header-flipped",
        "reject",
        "R23",
        "damaged",
        "the table's tar header changed",
        one(0, b),
    );

    add(
        "untrusted-key",
        "reject",
        "R3",
        "not signed by any trusted key",
        "signed by a key that is not trusted",
        one(0, resigned(&p0, &other_key(), None)),
    );

    let resign = |f: &dyn Fn(&mut Parts)| {
        let mut p = read_parts(&paths[0]);
        f(&mut p);
        resigned(&p, &key, None)
    };
    let resign_typed = |f: &dyn Fn(&mut VolumeTable)| {
        let p = read_parts(&paths[0]);
        let mut t = VolumeTable::parse(&table_bytes).unwrap();
        f(&mut t);
        resigned(&p, &key, Some(t.to_bytes()))
    };
    let resign_raw = |f: &dyn Fn(&mut serde_json::Value)| {
        let p = read_parts(&paths[0]);
        let mut t: serde_json::Value = serde_json::from_slice(&table_bytes).unwrap();
        f(&mut t);
        resigned(&p, &key, Some(serde_json::to_vec(&t).unwrap()))
    };
    add(
        "table-version-3",
        "reject",
        "R4",
        "version 3 is not supported",
        "validly signed table of an unknown version",
        one(0, resign_raw(&|t| t["ferry_volume"] = 3.into())),
    );
    add(
        "table-version-2-with-a-v1-manifest",
        "reject",
        "R35",
        "volume table version 2 holds a bundle manifest of version 1",
        "validly signed table of version 2 (whose manifest would be ferry/bundle.json.zst) in a volume of a version-1 bundle",
        one(0, {
            // As text: the table stays canonical, members in order (R5 holds).
            let text = String::from_utf8(table_bytes.clone()).unwrap();
            let t = text.replacen("{\"ferry_volume\":1,", "{\"ferry_volume\":2,", 1);
            assert_ne!(t, text);
            resigned(&read_parts(&paths[0]), &key, Some(t.into_bytes()))
        }),
    );
    add(
        "table-unknown-field",
        "reject",
        "R5",
        "unknown field",
        "validly signed table with a field this version does not define",
        one(0, resign_raw(&|t| t["compression"] = "lz4".into())),
    );
    add(
        "table-chunk-offset-outside",
        "reject",
        "R15",
        "expected at offset",
        "a chunk offset pointing elsewhere in or beyond the file",
        one(0, resign_typed(&|t| t.chunks[0].offset = 1u64 << 40)),
    );
    add(
        "table-chunk-too-large",
        "reject",
        "R7",
        "over the",
        "a chunk declaring 2^63 bytes",
        one(0, resign_typed(&|t| t.chunks[0].size = 1u64 << 63)),
    );
    add(
        "table-chunk-blob-out-of-range",
        "reject",
        "R16",
        "blob the manifest does not have",
        "a chunk naming a blob the manifest lacks",
        one(0, resign(&|p| p.table.chunks[0].blob = 99)),
    );
    add(
        "table-chunk-duplicated",
        "reject",
        "R20",
        "out of order, overlapping",
        "the same chunk listed twice",
        one(
            0,
            resign(&|p| {
                let c = p.table.chunks[0];
                let d = p.chunks[0].clone();
                p.table.chunks.insert(1, c);
                p.chunks.insert(1, d);
            }),
        ),
    );
    add(
        "table-unnamed-entry",
        "reject",
        "R22",
        "missing or unnamed",
        "a tar entry the table does not name",
        one(
            0,
            resign_typed(&|t| {
                t.chunks.pop();
            }),
        ),
    );
    add(
        "table-volume-out-of-range",
        "reject",
        "R6",
        "out of range",
        "volume number beyond the count",
        one(0, resign(&|p| p.table.volume = p.table.volume_count + 1)),
    );

    let with_manifest = |f: &dyn Fn(&mut BundleManifest)| {
        resign(&|p| {
            let mut m: BundleManifest = serde_json::from_slice(&p.manifest).unwrap();
            f(&mut m);
            p.put_manifest(&mut m);
        })
    };
    add(
        "manifest-duplicate-blob",
        "reject",
        "M7",
        "listed twice",
        "the same blob listed twice",
        one(
            0,
            with_manifest(&|m| {
                let b = m.blobs[0].clone();
                m.blobs.push(b);
            }),
        ),
    );
    add(
        "manifest-dotdot-path",
        "reject",
        "M14",
        "safe relative path",
        "a tree path with ..",
        one(
            0,
            with_manifest(&|m| {
                m.tree.push(TreeEntry::File {
                    path: "../../etc/cron.d/x".into(),
                    blob: 0,
                    mode: 0o644,
                })
            }),
        ),
    );
    add(
        "manifest-absolute-path",
        "reject",
        "M14",
        "safe relative path",
        "an absolute tree path",
        one(
            0,
            with_manifest(&|m| {
                m.tree.insert(
                    0,
                    TreeEntry::Dir {
                        path: "/etc".into(),
                    },
                )
            }),
        ),
    );
    add(
        "manifest-symlink-escape",
        "reject",
        "M17",
        "leaves the tree",
        "a symlink pointing outside the tree",
        one(
            0,
            with_manifest(&|m| {
                m.tree.push(TreeEntry::Symlink {
                    path: "zz".into(),
                    target: "../../../etc/passwd".into(),
                })
            }),
        ),
    );
    add(
        "manifest-bad-tag",
        "reject",
        "M11",
        "tag",
        "a tag that is not a valid tag",
        one(
            0,
            with_manifest(&|m| m.images[0].tags = vec!["../x".into()]),
        ),
    );
    add(
        "manifest-platforms-unsorted",
        "reject",
        "M25",
        "platforms",
        "a sparse index whose platforms are not sorted",
        one(
            0,
            with_manifest(&|m| {
                m.images[0].media_type = "application/vnd.oci.image.index.v1+json".into();
                m.images[0].platforms = Some(vec!["linux/arm64".into(), "linux/amd64".into()]);
            }),
        ),
    );
    add(
        "manifest-packages-unsorted",
        "reject",
        "M26",
        "packages",
        "a catalog whose packages are not sorted",
        one(
            0,
            with_manifest(&|m| {
                m.images[0].catalog = true;
                m.images[0].packages = Some(vec!["logging".into(), "elasticsearch".into()]);
            }),
        ),
    );
    add(
        "manifest-raw-size-lie",
        "reject",
        "M8",
        "stored_size",
        "a raw blob whose stored size differs from its size",
        one(
            0,
            with_manifest(&|m| {
                let b = m
                    .blobs
                    .iter_mut()
                    .find(|b| b.encoding == Encoding::Raw)
                    .unwrap();
                b.size += 1;
            }),
        ),
    );
    add(
        "manifest-bundle-id-mismatch",
        "reject",
        "M4",
        "bundle_id",
        "bundle_id does not match the content",
        one(
            0,
            resign(&|p| {
                let mut m: BundleManifest = serde_json::from_slice(&p.manifest).unwrap();
                m.seal();
                m.creator.push('!');
                p.manifest = serde_json::to_vec(&m).unwrap();
            }),
        ),
    );
    add(
        "manifest-version-3",
        "reject",
        "M2",
        "version 3 is not supported",
        "a validly signed manifest of an unknown version",
        one(
            0,
            resign(&|p| {
                let mut m: serde_json::Value = serde_json::from_slice(&p.manifest).unwrap();
                m["ferry_bundle"] = 3.into();
                p.manifest = serde_json::to_vec(&m).unwrap();
            }),
        ),
    );
    add(
        "manifest-version-2-as-plain-json",
        "reject",
        "M2",
        "version 2 is stored as plain JSON",
        "a validly signed manifest of version 2 stored as JSON, not as a zstd frame",
        one(
            0,
            resign(&|p| {
                let mut m: serde_json::Value = serde_json::from_slice(&p.manifest).unwrap();
                m["ferry_bundle"] = 2.into();
                p.manifest = serde_json::to_vec(&m).unwrap();
            }),
        ),
    );
    add(
        "table-not-canonical",
        "reject",
        "R5",
        "canonical",
        "a validly signed table with its members in another order",
        one(0, resign_raw(&|t| t["volume"] = t["volume"].clone())),
    );
    add(
        "manifest-not-canonical",
        "reject",
        "M18",
        "canonical",
        "a validly signed manifest with extra whitespace",
        one(
            0,
            resign(&|p| {
                let mut m: BundleManifest = serde_json::from_slice(&p.manifest).unwrap();
                m.seal();
                p.manifest = serde_json::to_vec_pretty(&m).unwrap();
            }),
        ),
    );
    add(
        "manifest-duplicate-tag",
        "reject",
        "M19",
        "names two images",
        "one repository:tag naming two images",
        one(
            0,
            with_manifest(&|m| {
                let mut i = m.images[0].clone();
                i.blobs = vec![i.blobs[0]];
                m.images.push(i);
            }),
        ),
    );
    add(
        "manifest-mode-beyond-permissions",
        "reject",
        "M20",
        "mode",
        "a tree file mode beyond permission bits",
        one(
            0,
            with_manifest(&|m| {
                if let Some(TreeEntry::File { mode, .. }) = m
                    .tree
                    .iter_mut()
                    .find(|e| matches!(e, TreeEntry::File { .. }))
                {
                    *mode = 0o170644;
                }
            }),
        ),
    );
    add(
        "manifest-created-too-late",
        "reject",
        "M21",
        "past what a tar header",
        "a creation time a ustar header cannot hold",
        one(0, with_manifest(&|m| m.created = 1 << 34)),
    );
    add(
        "manifest-bad-repository",
        "reject",
        "M10",
        "repository name",
        "a repository name the distribution spec forbids",
        one(
            0,
            with_manifest(&|m| m.images[0].repository = "example/a..b".into()),
        ),
    );
    add(
        "manifest-bad-destination",
        "reject",
        "M10",
        "destination: repository name",
        "an image destination (targetRepo) that is not a repository path: it names a registry host",
        one(
            0,
            with_manifest(&|m| {
                m.images[0].destination = Some("registry.example.com:5000/app".into())
            }),
        ),
    );
    add(
        "manifest-wrong-key-named",
        "reject",
        "R33",
        "names key",
        "a manifest naming another key than the one that signed it",
        one(0, with_manifest(&|m| m.key = "AAAA-BBBB-CCCC-DDDD".into())),
    );
    add(
        "volume-larger-than-volume-size",
        "reject",
        "R34",
        "larger than the bundle's volume size",
        "a volume file larger than the bundle's volume size",
        one(0, with_manifest(&|m| m.volume_size = 4096)),
    );
    add(
        "manifest-link-to-nothing",
        "reject",
        "M22",
        "not a file listed before it",
        "a hard link naming a path that is no earlier file",
        one(
            0,
            with_manifest(&|m| {
                m.tree.push(TreeEntry::Link {
                    path: "zz".into(),
                    target: "etc/shadow".into(),
                })
            }),
        ),
    );
    // One vector for each remaining MUST-reject rule a single volume can show.
    let more: Vec<(&str, &str, &str, &str, Vec<u8>)> = vec![
        (
            "manifest-volume-count-zero",
            "M5",
            "volume_count is 0",
            "a manifest saying the bundle has no volumes",
            with_manifest(&|m| m.volume_count = 0),
        ),
        (
            "manifest-chunk-size-zero",
            "M6",
            "chunk_size 0 is out of range",
            "a chunk size of zero",
            with_manifest(&|m| m.chunk_size = 0),
        ),
        (
            "manifest-blob-volume-zero",
            "M9",
            "outside 1..",
            "a carried blob said to be in volume 0",
            with_manifest(&|m| {
                let b = m
                    .blobs
                    .iter_mut()
                    .find(|b| b.encoding != Encoding::Base)
                    .unwrap();
                b.first_volume = 0;
            }),
        ),
        (
            "manifest-image-blob-out-of-range",
            "M12",
            "blob index out of range",
            "an image naming a blob the manifest lacks",
            with_manifest(&|m| m.images[0].blobs.push(999)),
        ),
        (
            "manifest-image-manifest-not-first",
            "M13",
            "does not list its manifest first",
            "an image whose first blob is not its manifest",
            with_manifest(&|m| m.images[0].blobs.rotate_left(1)),
        ),
        (
            "manifest-tree-out-of-order",
            "M15",
            "out of order or repeated",
            "tree entries out of order",
            with_manifest(&|m| m.tree.reverse()),
        ),
        (
            "manifest-file-blob-out-of-range",
            "M16",
            "names a blob index out of range",
            "a tree file naming a blob the manifest lacks",
            with_manifest(&|m| {
                m.tree.push(TreeEntry::File {
                    path: "zz-file".into(),
                    blob: 999,
                    mode: 0o644,
                })
            }),
        ),
        (
            "manifest-base-blob-with-volumes",
            "M23",
            "base blob",
            "a blob left to the base that still claims volumes",
            with_manifest(&|m| m.blobs.last_mut().unwrap().encoding = Encoding::Base),
        ),
        (
            "manifest-manifest-too-large",
            "M24",
            "8388608-byte limit",
            "a manifest declared larger than registries accept",
            with_manifest(&|m| {
                let b = m.blobs.iter_mut().find(|b| b.media_type.is_some()).unwrap();
                b.size = 9 << 20;
            }),
        ),
        (
            "index-signature-flipped",
            "R13",
            "image index signature",
            "the OCI index's signature changed",
            {
                let mut b = v0.clone();
                let at = (entry_len(p0.manifest.len() as u64)
                    + entry_len(64)
                    + entry_len(p0.index.len() as u64)) as usize
                    + 512;
                flip(&mut b, at + 5);
                b
            },
        ),
        (
            "table-other-bundle-id",
            "R14",
            "belong to different bundles",
            "a table naming another bundle than its manifest",
            resign(&|p| p.table.bundle_id = Digest([7; 32])),
        ),
        (
            "table-chunk-over-chunk-size",
            "R17",
            "over the chunk size",
            "a chunk larger than the bundle's chunk size",
            resign_typed(&|t| t.chunks[0].size = 8192),
        ),
        (
            "table-chunk-past-blob-end",
            "R18",
            "reaches past the end of its blob",
            "a chunk reaching past its blob's stored size",
            resign_typed(&|t| t.chunks[0].stream_offset = 1 << 40),
        ),
    ];
    for (name, rule, contains, description, bytes) in more {
        add(name, "reject", rule, contains, description, one(0, bytes));
    }
    // A blob whose zstd stream decodes to more than its signed size: the reader must stop
    // at the signed size + 1 (a decompression bomb in miniature). Built from the whole
    // bundle so that reading the blob is reached.
    {
        let mut files = Vec::new();
        let mut bomb_found = false;
        for (i, p) in paths.iter().enumerate() {
            let mut parts = read_parts(p);
            let mut m: BundleManifest = serde_json::from_slice(&parts.manifest).unwrap();
            // The config, not the manifest: the index names the manifest's size, and an
            // extract refuses an index that does not match before it reads any blob.
            if let Some(b) = m
                .blobs
                .iter_mut()
                .find(|b| b.encoding == Encoding::Zstd && b.media_type.is_none())
            {
                b.size -= 100;
                bomb_found = true;
            }
            parts.put_manifest(&mut m);
            files.push((names[i].clone(), resigned(&parts, &key, None)));
        }
        assert!(bomb_found, "the vector bundle must hold a zstd blob");
        add(
            "zstd-decodes-past-signed-size",
            "reject",
            "R31",
            "more than its signed size",
            "a compressed blob decoding past its signed size",
            files,
        );
    }
    add(
        "foreign-volume",
        "reject",
        "R27",
        "belongs to bundle",
        "volumes of two bundles given together",
        {
            let mut files = all.clone();
            let mut p = read_parts(&paths[1]);
            let mut m: BundleManifest = serde_json::from_slice(&p.manifest).unwrap();
            m.created += 1;
            p.put_manifest(&mut m);
            files[1].1 = resigned(&p, &key, None);
            files
        },
    );
    // Volume `i` (0-based) taken apart, changed and signed again.
    let resign_at = |i: usize, f: &dyn Fn(&mut Parts)| {
        let mut p = read_parts(&paths[i]);
        f(&mut p);
        resigned(&p, &key, None)
    };
    // Every volume with the same change to the manifest, so they still form one bundle.
    let every_volume = |f: &dyn Fn(&mut BundleManifest), change: &dyn Fn(usize, &mut Parts)| {
        let mut files = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let mut parts = read_parts(p);
            let mut m: BundleManifest = serde_json::from_slice(&parts.manifest).unwrap();
            f(&mut m);
            parts.put_manifest(&mut m);
            change(i, &mut parts);
            files.push((names[i].clone(), resigned(&parts, &key, None)));
        }
        files
    };
    let raw_manifest = |f: &dyn Fn(&mut serde_json::Value)| {
        resign(&|p| {
            let mut m: serde_json::Value = serde_json::from_slice(&p.manifest).unwrap();
            f(&mut m);
            p.manifest = serde_json::to_vec(&m).unwrap();
        })
    };
    let more: Vec<(&str, &str, &str, &str, Vec<u8>)> = vec![
        (
            "manifest-not-json",
            "M1",
            "not valid JSON",
            "a validly signed bundle manifest that is not JSON",
            resign(&|p| p.manifest = b"{\"ferry_bundle\":1,".to_vec()),
        ),
        (
            "manifest-unknown-member",
            "M3",
            "unknown field",
            "a validly signed manifest with a member this version does not define",
            raw_manifest(&|m| m["compression"] = "lz4".into()),
        ),
        (
            "manifest-null-member",
            "M3",
            "invalid type: null",
            "an optional member written as null instead of being left out",
            raw_manifest(&|m| m["blobs"][1]["media_type"] = serde_json::Value::Null),
        ),
        (
            "trailer-wrong-offset",
            "R2",
            "does not end where the file does",
            "a well-formed trailer placing the table one block early",
            {
                let mut b = v0.clone();
                let at = b.len() - 1536;
                let t = volume::trailer(
                    table_offset as u64 - 512,
                    table_bytes.len() as u64,
                );
                b[at..at + 512].copy_from_slice(&t);
                b
            },
        ),
        (
            "table-manifest-too-large",
            "R8",
            "over the size limit",
            "a table declaring a 512 MiB bundle manifest",
            resign_typed(&|t| t.bundle_manifest.size = 512 << 20),
        ),
        (
            "table-chunk-blob-elsewhere",
            "R19",
            "not listed in this volume",
            "a chunk of a blob the manifest places in other volumes",
            with_manifest(&|m| {
                m.blobs[0].first_volume = 2;
                m.blobs[0].last_volume = 2;
            }),
        ),
        (
            "two-defects-manifest",
            "M5",
            "volume_count is 0",
            "two defects, volume_count 0 (M5) and a link to nothing (M22): the first rule in order is reported",
            with_manifest(&|m| {
                m.volume_count = 0;
                m.tree.push(TreeEntry::Link {
                    path: "zz".into(),
                    target: "nothing".into(),
                })
            }),
        ),
        (
            "two-defects-image-and-tree",
            "M10",
            "repository name",
            "two defects, a bad repository (M10) and an absolute path (M14): images are checked before the tree",
            with_manifest(&|m| {
                m.images[0].repository = "Example".into();
                m.tree.insert(
                    0,
                    TreeEntry::Dir {
                        path: "/etc".into(),
                    },
                )
            }),
        ),
        (
            "two-defects-blob-loop",
            "M24",
            "8388608-byte limit",
            "two defects, blob 0 too large a manifest (M24) and blob 1 a duplicate (M7): rules apply blob by blob",
            with_manifest(&|m| {
                m.blobs[0].size = 9 << 20;
                m.blobs[1].digest = m.blobs[0].digest;
            }),
        ),
        (
            "two-defects-header-and-size",
            "R23",
            "is damaged",
            "two defects, the trailer's tar header changed (R23) and a volume_size too small (R34): R23 comes first",
            {
                let mut b = with_manifest(&|m| m.volume_size = 4096);
                let at = b.len() - 2048 + 3;
                flip(&mut b, at);
                b
            },
        ),
    ];
    for (name, rule, contains, description, bytes) in more {
        add(name, "reject", rule, contains, description, one(0, bytes));
    }
    // Volume 2 ends in the middle of the layer; the manifest says no later volume has more.
    {
        let layer = p0.table.chunks.len() as u32; // blob 2: the first blob after volume 1's
        add(
            "table-blob-left-unfinished",
            "reject",
            "R21",
            "no later volume holds the rest",
            "the last chunk leaves its blob unfinished, and the manifest ends the blob in this volume",
            vec![(
                names[1].clone(),
                resign_at(1, &|p| {
                    let mut m: BundleManifest = serde_json::from_slice(&p.manifest).unwrap();
                    m.blobs[layer as usize].last_volume = 2;
                    p.put_manifest(&mut m);
                }),
            )],
        );
    }
    add(
        "volume-padding-differs",
        "reject",
        "R27",
        "not byte-identical",
        "one volume's bundle.json has two more spaces of padding: same bundle_id, not the same bytes",
        {
            let mut files = all.clone();
            files[2].1 = resign_at(2, &|p| p.manifest.extend_from_slice(b"  "));
            files
        },
    );
    add(
        "extract-padding-differs",
        "reject",
        "R27",
        "not byte-identical",
        "as volume-padding-differs, extracted: the odd volume is refused before any blob is read",
        {
            let mut files = all.clone();
            files[2].1 = resign_at(2, &|p| p.manifest.extend_from_slice(b"  "));
            files
        },
    );
    add(
        "extract-volume-missing",
        "reject",
        "R28",
        "not given",
        "every volume but the third: extract needs every blob, so every volume",
        {
            let mut files = all.clone();
            files.remove(2);
            files
        },
    );
    add(
        "extract-chunks-overlap",
        "reject",
        "R29",
        "does not continue the blob",
        "each volume is valid alone, but the third continues the layer 512 bytes before the second stopped",
        {
            let mut files = all.clone();
            files[2].1 = resign_at(2, &|p| p.table.chunks[0].stream_offset -= 512);
            files
        },
    );
    add(
        "extract-chunk-data-flipped",
        "reject",
        "R30",
        "chunk data does not match the signed table",
        "one bit of chunk data changed, found when the chunk is read for use",
        {
            let mut files = all.clone();
            flip(&mut files[0].1, first_chunk.offset as usize + 512 + 10);
            files
        },
    );
    add(
        "extract-blob-digest-wrong",
        "reject",
        "R32",
        "damaged",
        "the layer's chunks are intact and signed, but its bytes do not hash to its digest",
        every_volume(&|m| m.blobs[2].digest = Digest([9; 32]), &|_, _| {}),
    );
    // An empty blob (stored size 0) gets one chunk of size 0 (§5.3); a table that leaves
    // it out breaks R20 when a chunk follows, and R29 when it was the bundle's last blob.
    let empty_blob = |volume: u32| format_spec::manifest::Blob {
        digest: Digest::of(b""),
        size: 0,
        encoding: Encoding::Raw,
        stored_size: 0,
        first_volume: volume,
        last_volume: volume,
        media_type: None,
        at: None,
    };
    add(
        "table-empty-blob-skipped",
        "reject",
        "R20",
        "out of order, overlapping",
        "an empty blob between the manifest and the config, and no chunk of it in the table",
        one(
            0,
            resign(&|p| {
                // Insert as blob 1: later blob numbers move up by one everywhere.
                let mut m: BundleManifest = serde_json::from_slice(&p.manifest).unwrap();
                m.blobs.insert(1, empty_blob(1));
                for c in p.table.chunks.iter_mut().filter(|c| c.blob >= 1) {
                    c.blob += 1;
                }
                for i in &mut m.images {
                    for b in i.blobs.iter_mut().filter(|b| **b >= 1) {
                        *b += 1;
                    }
                }
                for e in &mut m.tree {
                    if let TreeEntry::File { blob, .. } = e {
                        if *blob >= 1 {
                            *blob += 1;
                        }
                    }
                }
                p.put_manifest(&mut m);
            }),
        ),
    );
    add(
        "extract-empty-blob-without-chunk",
        "reject",
        "R29",
        "no volume holds a chunk of it",
        "an empty blob the image needs, said to be in the last volume, with no chunk anywhere: each volume verifies",
        every_volume(
            &|m| {
                let last = m.volume_count;
                m.blobs.push(empty_blob(last));
                let n = m.blobs.len() as u32 - 1;
                m.images[0].blobs.push(n);
            },
            &|_, _| {},
        ),
    );
    // The config's zstd stream (blob 1, volume 1's second chunk) changed into framings a
    // permissive decoder reads to the same bytes; a reader takes exactly one frame.
    let reframed = |stream: Vec<u8>| {
        let c = p0.table.chunks[1];
        assert_eq!(c.blob, 1, "volume 1's second chunk is the config");
        let len = stream.len() as u64;
        every_volume(&|m| m.blobs[1].stored_size = len, &|i, p| {
            if i == 0 {
                p.chunks[1] = stream.clone();
                p.table.chunks[1].size = len;
                p.table.chunks[1].sha256 = Digest::of(&stream);
            }
        })
    };
    let config_stream = p0.chunks[1].clone();
    add(
        "zstd-two-frames",
        "reject",
        "R31",
        "bytes after its one frame",
        "a zstd stream of the blob's frame followed by a second frame (of nothing)",
        reframed(
            [
                config_stream.clone(),
                zstd::encode_all(&b""[..], 3).unwrap(),
            ]
            .concat(),
        ),
    );
    add(
        "zstd-skippable-frame",
        "reject",
        "R31",
        "does not start with a zstd frame",
        "a zstd stream that starts with an empty skippable frame (RFC 8878 §3.1.2)",
        reframed([&[0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0][..], &config_stream].concat()),
    );
    for name in [
        "extract-empty-blob-without-chunk",
        "extract-padding-differs",
        "zstd-two-frames",
        "zstd-skippable-frame",
        "valid-bundle",
        "zstd-decodes-past-signed-size",
        "extract-volume-missing",
        "extract-chunks-overlap",
        "extract-chunk-data-flipped",
        "extract-blob-digest-wrong",
    ] {
        out.get_mut(name).unwrap().0["operation"] = "extract".into();
    }
    out
}

/// `expected.json` (SPEC.md §10.1).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    operation: Operation,
    outcome: Outcome,
    rule: String,
    error_contains: String,
    description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Operation {
    Verify,
    Extract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Ok,
    Reject,
}

/// The vectors of a version-2 bundle (the default): its manifest a zstd frame in
/// `ferry/bundle.json.zst` (SPEC.md §4.3), then the rejects only version 2 has.
fn generate_v2() -> BTreeMap<String, Vector> {
    use format_spec::manifest::{compress_json, PADDING_MAGIC};
    let (_tmp, paths, names, bytes) = valid_set(2);
    let key = vector_key();
    let mut out = BTreeMap::new();
    let mut add = |name: &str,
                   outcome: &str,
                   rule: &str,
                   contains: &str,
                   description: &str,
                   files: Vec<(String, Vec<u8>)>| {
        let expected = serde_json::json!({
            "operation": "verify", "outcome": outcome, "rule": rule, "error_contains": contains, "description": description,
        });
        out.insert(format!("v2-{name}"), (expected, files));
    };
    let one = |i: usize, data: Vec<u8>| vec![(names[i].clone(), data)];
    let all: Vec<(String, Vec<u8>)> = names.iter().cloned().zip(bytes.iter().cloned()).collect();
    let p0 = read_parts(&paths[0]);
    assert!(p0.manifest.starts_with(&format_spec::manifest::ZSTD_MAGIC));
    assert_eq!(p0.manifest_name, "ferry/bundle.json.zst");
    let resign = |f: &dyn Fn(&mut Parts)| {
        let mut p = read_parts(&paths[0]);
        f(&mut p);
        resigned(&p, &key, None)
    };
    // The manifest's stored bytes replaced, as they are (no sealing, no compression).
    let stored = |f: &dyn Fn(&mut Vec<u8>)| resign(&|p| f(&mut p.manifest));
    // The frame alone (a valid bundle's manifest may already be padded).
    let frame = {
        let m = p0.manifest();
        m.stored_bytes(0)
    };
    let padding = |n: u32, fill: u8| {
        let mut p = PADDING_MAGIC.to_vec();
        p.extend(n.to_le_bytes());
        p.resize(8 + n as usize, fill);
        p
    };

    add(
        "valid-bundle",
        "ok",
        "",
        "",
        "every volume of a version-2 bundle (manifest in ferry/bundle.json.zst) whose blobs span volumes",
        all.clone(),
    );
    add(
        "valid-single-volume",
        "ok",
        "",
        "",
        "one volume of a version-2 bundle alone verifies; the others are missing",
        one(1, bytes[1].clone()),
    );
    add(
        "manifest-padded",
        "ok",
        "",
        "",
        "the manifest's zstd frame followed by a padding frame (skippable, magic 0x184D2A50) of 24 zero bytes, re-signed",
        one(0, stored(&|m| {
            *m = frame.clone();
            m.extend(padding(24, 0));
        })),
    );
    let mut b = bytes[0].clone();
    flip(&mut b, 512 + 20);
    add(
        "manifest-flipped",
        "reject",
        "R9",
        "bundle.json.zst",
        "one bit of the compressed bundle manifest changed",
        one(0, b),
    );
    add(
        "manifest-truncated-frame",
        "reject",
        "M27",
        "not one complete zstd frame",
        "a validly signed manifest whose zstd frame lacks its last 3 bytes",
        one(
            0,
            stored(&|m| {
                *m = frame.clone();
                m.truncate(m.len() - 3);
            }),
        ),
    );
    add(
        "manifest-bad-zstd",
        "reject",
        "M27",
        "zstd",
        "a validly signed manifest whose first zstd block is of the reserved type 3",
        one(
            0,
            stored(&|m| {
                *m = frame.clone();
                // Frame header: magic, descriptor 0x00 (no content size, no dictionary, not
                // single-segment), window descriptor; then the first block header.
                assert_eq!(
                    m[4] & 0b0010_0111,
                    0,
                    "the frame header this vector expects"
                );
                m[6] |= 0b110;
            }),
        ),
    );
    add(
        "manifest-two-frames",
        "reject",
        "M27",
        "not a padding frame",
        "a validly signed manifest of two zstd frames (the second the same as the first)",
        one(0, stored(&|m| *m = [&frame[..], &frame[..]].concat())),
    );
    add(
        "manifest-bytes-after-frame",
        "reject",
        "M27",
        "not a padding frame",
        "a validly signed manifest with 16 zero bytes after its zstd frame, not framed as padding",
        one(0, stored(&|m| *m = [&frame[..], &[0u8; 16][..]].concat())),
    );
    add(
        "manifest-padding-nonzero",
        "reject",
        "M27",
        "non-zero byte",
        "a validly signed manifest whose padding frame holds a byte 0x01",
        one(
            0,
            stored(&|m| {
                let mut pad = padding(24, 0);
                pad[20] = 1;
                *m = [&frame[..], &pad[..]].concat();
            }),
        ),
    );
    add(
        "manifest-padding-first",
        "reject",
        "M27",
        "does not start with a zstd frame",
        "a validly signed manifest whose padding frame comes before its zstd frame",
        one(
            0,
            stored(&|m| *m = [&padding(24, 0)[..], &frame[..]].concat()),
        ),
    );
    add(
        "manifest-not-canonical",
        "reject",
        "M18",
        "canonical form",
        "a validly signed zstd frame of the manifest pretty-printed (bundle_id right)",
        one(
            0,
            stored(&|m| {
                let manifest = p0.manifest();
                *m = compress_json(&serde_json::to_vec_pretty(&manifest).unwrap());
            }),
        ),
    );
    add(
        "manifest-padded-inside",
        "reject",
        "M18",
        "canonical form",
        "a validly signed zstd frame of the canonical JSON and two spaces: version 2 pads outside the frame",
        one(0, stored(&|m| {
            *m = compress_json(&[&p0.manifest().to_json()[..], b"  "].concat());
        })),
    );
    add(
        "manifest-plain-json",
        "reject",
        "M2",
        "version 2 is stored as plain JSON",
        "a validly signed version-2 manifest stored as its JSON, not as a zstd frame",
        one(0, stored(&|m| *m = p0.manifest().to_json())),
    );
    add(
        "manifest-version-1-compressed",
        "reject",
        "M2",
        "version 1 is stored as one zstd frame",
        "a validly signed zstd frame of a sealed version-1 manifest",
        one(
            0,
            stored(&|m| {
                let mut manifest = p0.manifest();
                manifest.ferry_bundle = 1;
                manifest.seal();
                *m = compress_json(&manifest.to_json());
            }),
        ),
    );
    add(
        "manifest-duplicate-blob",
        "reject",
        "M7",
        "listed twice",
        "a sealed version-2 manifest listing a blob twice: the rules of §4.4 apply to the decompressed manifest",
        one(0, resign(&|p| {
            let mut m = p.manifest();
            let first = m.blobs[0].clone();
            m.blobs.push(first);
            p.put_manifest(&mut m);
        })),
    );
    add(
        "v1-entry-name",
        "reject",
        "R23",
        "entry ferry/bundle.json.zst at offset 0 is damaged",
        "a version-2 volume whose manifest entry is named ferry/bundle.json (version 1's name)",
        one(0, resign(&|p| p.manifest_name = "ferry/bundle.json".into())),
    );
    let table_bytes = {
        let v = Volume::open(&paths[0], &[key.public()]).unwrap();
        v.table_location().1.to_vec()
    };
    add(
        "table-version-1",
        "reject",
        "R35",
        "volume table version 1 holds a bundle manifest of version 2",
        "a validly signed table of version 1 in a volume of a version-2 bundle",
        one(0, {
            // As text: the table stays canonical, members in order (R5 holds).
            let text = String::from_utf8(table_bytes.clone()).unwrap();
            let t = text.replacen("{\"ferry_volume\":2,", "{\"ferry_volume\":1,", 1);
            assert_ne!(t, text);
            resigned(&read_parts(&paths[0]), &key, Some(t.into_bytes()))
        }),
    );
    out
}

/// What a reader concluded: `None` when it accepted, else the rule it reports and its words.
type Finding = Option<(Option<Rule>, String)>;

fn volume_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    files.sort();
    files
}

/// `verify` (SPEC.md §6.1) over every volume of the directory, through the same library
/// call the binary makes: the first volume that is not `ok` gives the finding.
fn run_verify(files: Vec<PathBuf>, key: &PublicKey) -> Finding {
    let inputs = Inputs {
        volumes: files,
        manifests: Vec::new(),
    };
    let report = verify_op::verify(&inputs, std::slice::from_ref(key), &|_| {});
    if report.ok {
        return None;
    }
    let v = report
        .volumes
        .iter()
        .find(|v| v.status != VolumeStatus::Ok)
        .expect("a report that is not ok has a volume that is not ok");
    Some(match v.damage.first() {
        Some(d) if v.status == VolumeStatus::Damaged => (d.rule, d.what.clone()),
        _ => (v.rule, v.error.clone().unwrap_or_default()),
    })
}

/// `extract` (SPEC.md §6.2) without writing: every volume opened, combined, and every
/// blob read back whole.
fn run_extract(files: Vec<PathBuf>, key: &PublicKey) -> Finding {
    let failed = |e: format_spec::FormatError| Some((e.rule(), e.to_string()));
    let mut volumes = Vec::new();
    for f in &files {
        match Volume::open(f, std::slice::from_ref(key)) {
            Ok(v) => volumes.push(v),
            Err(e) => return failed(e),
        }
    }
    let bundle = match Bundle::new(volumes) {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    for i in 0..bundle.manifest.blobs.len() as u32 {
        let mut r = match bundle.open_blob(i) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        if let Err(e) = std::io::copy(&mut r, &mut std::io::sink()) {
            return Some((rule_of_io(&e), e.to_string()));
        }
    }
    None
}

/// Every directory of `vectors/`: its committed files and `expected.json`, nothing else.
#[test]
fn committed_vectors_reach_their_expected_outcome() {
    let mut checked = 0;
    for entry in fs::read_dir(vectors_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(dir.join("expected.json"))
            .unwrap_or_else(|e| panic!("vector {name}: expected.json: {e}"));
        let expected: Expected = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("vector {name}: expected.json: {e}"));
        assert!(
            !expected.description.is_empty(),
            "vector {name}: no description"
        );
        let key = PublicKey::load(&dir.join("key.pub")).unwrap();
        let files = volume_files(&dir);
        assert!(!files.is_empty(), "vector {name} has no volume");
        let finding = match expected.operation {
            Operation::Verify => run_verify(files, &key),
            Operation::Extract => run_extract(files, &key),
        };
        match (expected.outcome, finding) {
            (Outcome::Ok, None) => {
                assert!(expected.rule.is_empty(), "vector {name}: ok with a rule")
            }
            (Outcome::Ok, Some((rule, err))) => {
                panic!("vector {name} should be accepted, got {rule:?}: {err}")
            }
            (Outcome::Reject, None) => {
                panic!(
                    "vector {name} should be rejected ({})",
                    expected.description
                )
            }
            (Outcome::Reject, Some((rule, err))) => {
                let want: Rule = expected
                    .rule
                    .parse()
                    .unwrap_or_else(|e| panic!("vector {name}: {e}"));
                assert_eq!(
                    rule,
                    Some(want),
                    "vector {name}: wrong rule reported; error: {err}"
                );
                // ferry's own words; other readers ignore `error_contains`.
                assert!(
                    err.contains(&expected.error_contains),
                    "vector {name}: error {err:?} does not mention {:?}",
                    expected.error_contains
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} vectors found");
    eprintln!("{checked} vectors checked");
}

/// MUST-reject rules no vector can show, and why. Every other rule has a vector.
const NO_VECTOR: &[(Rule, &str)] = &[
    // Findings through R11 name the M rule broken; every M rule has its vector.
    (Rule::R11, "reported as the M rule of §4.4 it names"),
];

#[test]
fn every_rule_has_a_vector_or_a_reason() {
    let mut named = std::collections::BTreeSet::new();
    for entry in fs::read_dir(vectors_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if let Ok(text) = fs::read_to_string(dir.join("expected.json")) {
            let e: Expected = serde_json::from_str(&text).unwrap();
            if !e.rule.is_empty() {
                named.insert(e.rule.parse::<Rule>().unwrap());
            }
        }
    }
    for rule in Rule::ALL {
        let excused = NO_VECTOR.iter().any(|(r, _)| r == rule);
        assert!(
            named.contains(rule) != excused,
            "rule {rule}: {}",
            if excused {
                "has a vector, so take it off NO_VECTOR"
            } else {
                "has no vector: add one, or say on NO_VECTOR why it cannot have one"
            }
        );
    }
}

/// The generator makes exactly the committed files (or, with FERRY_REGENERATE_VECTORS
/// set, writes them).
#[test]
fn vectors_are_current() {
    let dir = vectors_dir();
    let generated = generate();
    let public = vector_key().public().to_pem();
    let expected_text =
        |expected: &serde_json::Value| serde_json::to_string_pretty(expected).unwrap() + "\n";
    if std::env::var_os("FERRY_REGENERATE_VECTORS").is_some() {
        for entry in fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                fs::remove_dir_all(&p).unwrap();
            }
        }
        for (name, (expected, files)) in &generated {
            let d = dir.join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("expected.json"), expected_text(expected)).unwrap();
            fs::write(d.join("key.pub"), &public).unwrap();
            for (f, bytes) in files {
                fs::write(d.join(f), bytes).unwrap();
            }
        }
    }
    for (name, (expected, files)) in &generated {
        let d = dir.join(name);
        let committed = fs::read_to_string(d.join("expected.json"))
            .unwrap_or_else(|_| panic!("vector {name} missing: regenerate (see module docs)"));
        assert_eq!(
            committed,
            expected_text(expected),
            "vector {name}/expected.json"
        );
        assert_eq!(
            fs::read_to_string(d.join("key.pub")).unwrap(),
            public,
            "{name}/key.pub"
        );
        let on_disk: Vec<String> = volume_files(&d)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let made: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(on_disk, made, "vector {name}: volume files");
        for (f, bytes) in files {
            let committed = fs::read(d.join(f)).unwrap();
            assert!(committed == *bytes, "vector {name}/{f} differs from what this code writes: the format changed, or packing is not reproducible");
        }
    }
    let on_disk = fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(
        on_disk,
        generated.len(),
        "vectors/ holds directories this test does not generate"
    );
}

/// R27 in `verify`: the volume whose manifest bytes differ is the one reported, even when
/// it is given first.
#[test]
fn verify_names_the_odd_volume_out() {
    let dir = vectors_dir().join("volume-padding-differs");
    let key = PublicKey::load(&dir.join("key.pub")).unwrap();
    let mut files = volume_files(&dir);
    let odd = files.remove(2);
    files.insert(0, odd.clone());
    let inputs = Inputs {
        volumes: files,
        manifests: Vec::new(),
    };
    let report = verify_op::verify(&inputs, std::slice::from_ref(&key), &|_| {});
    for v in &report.volumes {
        let want = if v.path == odd {
            VolumeStatus::Foreign
        } else {
            VolumeStatus::Ok
        };
        assert_eq!(v.status, want, "{}: {:?}", v.path.display(), v.error);
    }
    assert_eq!(report.volumes[0].rule, Some(Rule::R27));
}
