//! Some images of an OCI layout as a mirror of their own: what `ferry-pack --config … --cache
//! DIR` packs, the images of one image set out of a pull cache that may hold many sets.
//!
//! The layout is read as `oci_layout.rs` reads one (same naming, same closures, sparse
//! indexes allowed where `dev.ferry.platforms` says so, `dev.ferry.target-repository` as
//! the image's destination), but only the index.json
//! descriptors named, and the tree is not walked: it is made of exactly what those images
//! need, so nothing else of the cache (other images' blobs, `.ferry/`) is carried.
//!
//! ```text
//! oci-layout                the cache's
//! index.json                only the named descriptors, in the order named (VIEW/index-<hex>.json)
//! blobs/ blobs/sha256/      directories
//! blobs/sha256/<hex>        each blob those images need, once
//! ```
//!
//! The index is synthesized, so it is written to a file of its own (named by its SHA-256
//! under `view_dir`, written once and left alone afterwards): the packer reads every tree
//! file from disk, and the bundle's `created` is the newest modification time of what it
//! packs, so the same cache and the same names pack to the same bundle every time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use oci::media_type::OCI_INDEX;
use oci::Descriptor;

use crate::closure::{read_capped, Collector};
use crate::digest;
use crate::error::MirrorError;
use crate::index_in::{check_index, for_each_manifest};
use crate::layout_dir::{repository_for_dir, OCI_LAYOUT_FILE};
use crate::model::{BlobFile, LayoutKind, Mirror, TreeEntry};
use crate::oci_layout::{
    catalog_packages, check_layout_version, name_image, target_repository, OciStore,
    FERRY_CATALOG_PACKAGES, FERRY_TARGET_REPOSITORY, MAX_INDEX_SIZE,
};
use crate::sparse::{Platforms, FERRY_PLATFORMS};
use crate::tree::permission_bits;
use oci::annotation::{CONTAINERD_NAME, REF_NAME};
use serde_json::value::RawValue;

/// Reads the images of the OCI layout at `root` whose `org.opencontainers.image.ref.name`
/// is one of `ref_names`, as a [`Mirror`] of kind OCI holding only them (module docs). Names
/// the layout lacks are refused all at once ([`MirrorError::NotInCache`]); a name given
/// twice counts once. The synthesized index.json is kept in `view_dir` (created if absent).
pub fn read_oci_selection(
    root: &Path,
    ref_names: &[String],
    view_dir: &Path,
) -> Result<Mirror, MirrorError> {
    check_layout_version(root)?;
    let index_path = root.join("index.json");
    // A cache's index lists every image it holds: read one descriptor at a time (the
    // whole index first checked as one, so errors come as when it was read whole).
    check_index(&index_path, MAX_INDEX_SIZE)?;
    let asked: BTreeSet<&str> = ref_names.iter().map(String::as_str).collect();
    // Every ref.name's digest: the same name for two digests is ambiguous, refused as any
    // layout reader refuses one tag naming two images. Of the names asked for, the
    // descriptor (the last one of a name, as a map filled in order keeps).
    let mut digests: BTreeMap<String, oci::Digest> = BTreeMap::new();
    // Each descriptor kept as its compact text, not parsed: a descriptor's map of
    // annotations is about 1 KB on the heap, its text 400 bytes, and at 6×10^4 images the
    // parsed ones were 60 MB held through the whole read (the peak of `--config`).
    let mut by_name: BTreeMap<String, Box<RawValue>> = BTreeMap::new();
    for_each_manifest(&index_path, MAX_INDEX_SIZE, |d: Descriptor| {
        let Some(name) = d.annotations.get(REF_NAME) else {
            return Ok(());
        };
        match digests.get(name) {
            Some(first) if *first != d.digest => {
                let (repository, tag) = name.rsplit_once(':').unwrap_or((name, ""));
                return Err(MirrorError::DuplicateTag {
                    path: index_path.clone(),
                    repository: repository.to_string(),
                    tag: tag.to_string(),
                    first: first.to_string(),
                    second: d.digest.to_string(),
                });
            }
            Some(_) => {}
            None => {
                digests.insert(name.clone(), d.digest);
            }
        }
        if asked.contains(name.as_str()) {
            by_name.insert(name.clone(), as_text(&d));
        }
        Ok(())
    })?;
    drop(digests);
    // Each name once, in the order asked (a set, not `contains`: 6×10^4 names were 10^9
    // comparisons), each descriptor moved out of the map rather than copied.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut selected: Vec<Box<RawValue>> = Vec::with_capacity(by_name.len());
    let mut absent = Vec::new();
    for name in ref_names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        match by_name.remove(name.as_str()) {
            Some(d) => selected.push(d),
            None => absent.push(name.clone()),
        }
    }
    drop(by_name);
    if !absent.is_empty() {
        return Err(MirrorError::NotInCache {
            cache: root.to_path_buf(),
            absent,
        });
    }

    let store = OciStore {
        dir: root.to_path_buf(),
    };
    let layout_repo = repository_for_dir(root, "")?;
    let mut c = Collector::default();
    for text in &selected {
        let d = &parsed(text);
        let digest = d.digest.to_string();
        let annotation = |key: &str| d.annotations.get(key).map(String::as_str);
        let (repository, tag, source) = name_image(
            &layout_repo,
            annotation(REF_NAME),
            annotation(CONTAINERD_NAME),
            &digest,
            &index_path,
        )?;
        let sparse = match annotation(FERRY_PLATFORMS) {
            Some(v) => Some(Platforms::parse(
                v,
                &index_path,
                &format!("{repository}@{digest}"),
            )?),
            None => None,
        };
        c.add_sparse_image(
            &store,
            &repository,
            tag.as_deref(),
            &digest,
            d.size,
            source,
            &index_path,
            sparse,
        )?;
        let image = format!("{repository}@{digest}");
        if let Some(to) =
            target_repository(annotation(FERRY_TARGET_REPOSITORY), &index_path, &image)?
        {
            c.set_destination(&repository, &digest, to, &index_path)?;
        }
        if let Some(packages) =
            catalog_packages(annotation(FERRY_CATALOG_PACKAGES), &index_path, &image)?
        {
            c.set_packages(&repository, &digest, packages, &index_path)?;
        }
    }
    let (blobs, manifest_types, images) = c.finish()?;

    let view = write_view(view_dir, &selected)?;
    let (view_digest, view_size) = view.1;
    let layout_file = root.join(OCI_LAYOUT_FILE);
    let layout_bytes = read_capped(&layout_file, 4096)?;
    let mut tree = vec![
        TreeEntry::Dir {
            path: "blobs".into(),
        },
        TreeEntry::Dir {
            path: "blobs/sha256".into(),
        },
    ];
    // `blobs` is keyed by digest, so the blob files come in path order.
    // Each is `<root>/<path>` (the store is the cache's own `blobs/sha256`): no source kept.
    // And each blob is then that entry of the tree, not a path of its own.
    let mut blobs = blobs;
    for (d, f) in blobs.iter_mut() {
        let path = f
            .own_path()
            .expect("read without a tree: every blob has its path");
        let mode = mode_of(path)?;
        *f = BlobFile::in_tree(tree.len(), f.size);
        tree.push(TreeEntry::File {
            path: format!("blobs/sha256/{}", d.hex()),
            digest: *d,
            size: f.size,
            mode,
            source: None,
        });
    }
    tree.push(TreeEntry::File {
        path: "index.json".into(),
        digest: view_digest,
        size: view_size,
        mode: 0o644,
        // Not the cache's index.json: the view written for this selection.
        source: Some(view.0.into_boxed_path()),
    });
    tree.push(TreeEntry::File {
        path: OCI_LAYOUT_FILE.into(),
        digest: digest::sha256_bytes(&layout_bytes),
        size: layout_bytes.len() as u64,
        mode: mode_of(&layout_file)?,
        source: None,
    });
    Ok(Mirror {
        root: root.to_path_buf(),
        kind: LayoutKind::Oci,
        blobs,
        manifest_types,
        images,
        tree,
        skipped: Vec::new(),
        catalogs: Vec::new(),
        unresolved_catalogs: Vec::new(),
    })
}

/// The selection's index.json (compact, the descriptors as the cache has them, in the
/// order named) at `view_dir/index-<hex>.json`: written only when that file is absent or
/// holds other bytes, so its modification time stays that of the first pack of this set.
/// Returns the path, the digest and the size.
#[allow(clippy::type_complexity)]
fn write_view(
    view_dir: &Path,
    selected: &[Box<RawValue>],
) -> Result<(std::path::PathBuf, (oci::Digest, u64)), MirrorError> {
    // Serialized twice rather than held: once to learn its digest (the file's name), once
    // into the file when it is not there yet. At 6×10^4 images the bytes are 25 MB, the
    // descriptors as many again, next to the model the pack is about to take.
    let view = View {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: selected,
    };
    let json_error = |e| MirrorError::InvalidJson {
        path: view_dir.join("index.json"),
        source: e,
    };
    let mut hashing = oci::Sha256::new();
    serde_json::to_writer(&mut hashing, &view).map_err(json_error)?;
    let size = hashing.len();
    let d = hashing.finish();
    let path = view_dir.join(format!("index-{}.json", d.hex()));
    fs::create_dir_all(view_dir).map_err(|e| MirrorError::io(view_dir, e))?;
    durable_file::refuse_symlink(&path).map_err(|e| MirrorError::io(&path, e))?;
    let same = match fs::File::open(&path) {
        Ok(f) => {
            digest::sha256_reader(f.take(size + 1)).map_err(|e| MirrorError::io(&path, e))?
                == (d, size)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(MirrorError::io(&path, e)),
    };
    if !same {
        // The same serialization succeeded above: what can fail now is the writing.
        durable_file::write_streamed(&path, |w| {
            serde_json::to_writer(w, &view).map_err(std::io::Error::from)
        })
        .map_err(|e| MirrorError::io(&path, e))?;
    }
    Ok((path, (d, size)))
}

/// The view's index.json: the fields of an [`oci::Index`] that a view has, in its order, so the
/// bytes are those `serde_json::to_vec(&Index { .. })` makes, from the descriptors' texts.
#[derive(serde::Serialize)]
struct View<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: &'a [Box<RawValue>],
}

/// A descriptor's compact text, as the view writes it (serde_json's, as `to_vec` makes).
fn as_text(d: &Descriptor) -> Box<RawValue> {
    // Strings, numbers and maps of strings: nothing in a descriptor fails to serialize.
    serde_json::value::to_raw_value(d).expect("a descriptor serializes")
}

/// The descriptor of a text [`as_text`] made.
fn parsed(text: &RawValue) -> Descriptor {
    serde_json::from_str(text.get()).expect("a descriptor's own text parses")
}

fn mode_of(path: &Path) -> Result<u32, MirrorError> {
    let meta = fs::metadata(path).map_err(|e| MirrorError::io(path, e))?;
    Ok(permission_bits(&meta))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::oci_layout::OCI_LAYOUT_CONTENT;
    use crate::testkit::{hex, write, Kit, Made};
    use oci::Index;

    /// A pull cache: oci-layout, blobs, bookkeeping under `.ferry/`, and an index.json
    /// whose descriptors carry the cache's annotations.
    fn cache(root: &Path, kit: &Kit, entries: &[(&Made, &str)]) {
        write(&root.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT);
        write(&root.join(".ferry/lock"), b"123");
        write(
            &root.join(".ferry/partial").join("f".repeat(64)),
            b"half a blob",
        );
        let mut descs = Vec::new();
        for (m, annotations) in entries {
            for b in &m.closure {
                write(&root.join("blobs/sha256").join(hex(b)), kit.bytes(b));
            }
            descs.push(format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{{annotations}}}}}"#,
                m.media_type, m.digest, m.size
            ));
        }
        write(
            &root.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
                descs.join(",")
            )
            .as_bytes(),
        );
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn paths(m: &Mirror) -> Vec<&str> {
        m.tree.iter().map(TreeEntry::path).collect()
    }

    /// A cache entry pulled with `targetRepo` keeps its destination in the selection.
    #[test]
    fn a_selection_keeps_the_target_repository() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", false, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        cache(
            &root,
            &kit,
            &[
                (
                    &a,
                    r#""dev.ferry.target-repository":"mirror/a","io.containerd.image.name":"quay.io/ns/a:1","org.opencontainers.image.ref.name":"mirror/a:stable""#,
                ),
                (&b, r#""org.opencontainers.image.ref.name":"ns/b:1""#),
            ],
        );
        let views = root.join(".ferry/views");
        let m = read_oci_selection(&root, &names(&["mirror/a:stable", "ns/b:1"]), &views).unwrap();
        let got: Vec<(&str, Option<&str>)> = m
            .images
            .iter()
            .map(|i| (i.repository.as_str(), i.destination.as_deref()))
            .collect();
        assert_eq!(got, [("mirror/a", Some("mirror/a")), ("ns/b", None)]);
        // Not a repository path: refused, naming the cache's index and the image.
        let bad = t.path().join("bad");
        cache(
            &bad,
            &kit,
            &[(
                &a,
                r#""dev.ferry.target-repository":"mirror/A","org.opencontainers.image.ref.name":"mirror/a:stable""#,
            )],
        );
        let e = read_oci_selection(&bad, &names(&["mirror/a:stable"]), &views)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dev.ferry.target-repository") && e.contains("mirror/a@"),
            "{e}"
        );
    }

    /// A rebuilt catalog in the cache keeps the packages it holds in the selection.
    #[test]
    fn a_selection_keeps_the_catalog_packages() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        cache(
            &root,
            &kit,
            &[(
                &a,
                r#""dev.ferry.catalog-packages":"a-operator,b-operator","io.containerd.image.name":"quay.io/ns/index:v1","org.opencontainers.image.ref.name":"ns/index:v1""#,
            )],
        );
        let views = root.join(".ferry/views");
        let m = read_oci_selection(&root, &names(&["ns/index:v1"]), &views).unwrap();
        assert_eq!(
            m.images[0].packages,
            Some(vec!["a-operator".to_string(), "b-operator".to_string()])
        );
        let bad = t.path().join("bad");
        cache(
            &bad,
            &kit,
            &[(
                &a,
                r#""dev.ferry.catalog-packages":"b-operator,a-operator","org.opencontainers.image.ref.name":"ns/index:v1""#,
            )],
        );
        let e = read_oci_selection(&bad, &names(&["ns/index:v1"]), &views)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dev.ferry.catalog-packages") && e.contains("not sorted"),
            "{e}"
        );
    }

    #[test]
    fn a_selection_holds_exactly_its_images() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 2);
        let b = kit.image("b", true, 1);
        let c = kit.image("c", false, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        let src = r#""io.containerd.image.name":"quay.io/ns/b:1","dev.ferry.resolved-at":"2026-01-01T00:00:00Z","#;
        cache(
            &root,
            &kit,
            &[
                (&a, r#""org.opencontainers.image.ref.name":"ns/a:1""#),
                (
                    &b,
                    &format!(r#"{src}"org.opencontainers.image.ref.name":"ns/b:1""#),
                ),
                (&c, r#""org.opencontainers.image.ref.name":"ns/c:1""#),
            ],
        );
        let views = root.join(".ferry/views");
        let m = read_oci_selection(&root, &names(&["ns/b:1", "ns/a:1", "ns/b:1"]), &views).unwrap();
        assert_eq!(m.kind, LayoutKind::Oci);
        let got: Vec<(&str, &[String], Option<&str>)> = m
            .images
            .iter()
            .map(|i| {
                (
                    i.repository.as_str(),
                    i.tags.as_slice(),
                    i.source.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ns/a", &["1".to_string()][..], None),
                ("ns/b", &["1".to_string()][..], Some("quay.io/ns/b:1"))
            ]
        );
        // Only a's and b's blobs, and no .ferry/ bookkeeping.
        let mut blobs: Vec<oci::Digest> = a.closure.iter().chain(&b.closure).cloned().collect();
        blobs.sort();
        assert_eq!(m.blobs.keys().cloned().collect::<Vec<_>>(), blobs);
        let mut expected = vec!["blobs".to_string(), "blobs/sha256".to_string()];
        expected.extend(blobs.iter().map(|d| format!("blobs/sha256/{}", hex(d))));
        expected.extend(["index.json".to_string(), OCI_LAYOUT_FILE.to_string()]);
        assert_eq!(paths(&m), expected);

        // The index: those descriptors, annotations kept, in the order named.
        let TreeEntry::File {
            source: Some(source),
            digest,
            ..
        } = &m.tree[m.tree.len() - 2]
        else {
            panic!("index.json is a file with a source of its own");
        };
        // Every other file is read from `<root>/<path>`.
        for e in m.tree.iter().filter(|e| e.path() != "index.json") {
            if let TreeEntry::File { source, .. } = e {
                assert_eq!(*source, None, "{}", e.path());
                assert_eq!(m.file_source(e), root.join(e.path()));
            }
        }
        assert_eq!(m.file_source(&m.tree[m.tree.len() - 2]), &**source);
        let bytes = fs::read(source).unwrap();
        assert_eq!(*digest, digest::sha256_bytes(&bytes));
        assert_eq!(
            source.file_name().unwrap().to_str().unwrap(),
            format!("index-{}.json", digest.hex())
        );
        assert!(source.starts_with(&views));
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            format!(
                concat!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","manifests":["#,
                    r#"{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{"dev.ferry.resolved-at":"2026-01-01T00:00:00Z","io.containerd.image.name":"quay.io/ns/b:1","org.opencontainers.image.ref.name":"ns/b:1"}}}},"#,
                    r#"{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"ns/a:1"}}}}]}}"#
                ),
                OCI_INDEX, b.media_type, b.digest, b.size, a.media_type, a.digest, a.size
            )
        );

        // The same selection again: the same tree, and the index file is not rewritten.
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(source)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let again = read_oci_selection(&root, &names(&["ns/b:1", "ns/a:1"]), &views).unwrap();
        assert_eq!(again.tree, m.tree);
        assert_eq!(fs::metadata(source).unwrap().modified().unwrap(), old);
        // Damaged, it is written again.
        fs::write(source, b"{}").unwrap();
        read_oci_selection(&root, &names(&["ns/b:1", "ns/a:1"]), &views).unwrap();
        assert_eq!(fs::read_to_string(source).unwrap(), text);

        // The tree is an OCI layout holding exactly these images.
        let out = t.path().join("out");
        crate::write_tree(&out, &m.tree, |d: &oci::Digest| {
            let f = m.tree.iter().find_map(|e| match e {
                TreeEntry::File { digest, .. } if digest == d => Some(m.file_source(e)),
                _ => None,
            });
            f.map(|p| Cursor::new(fs::read(p).unwrap())).ok_or("absent")
        })
        .unwrap();
        assert_eq!(crate::read_mirror(&out).unwrap().images, m.images);
    }

    /// One name for two digests in the cache is refused (naming both, in the order the
    /// index has them), even when another name is asked for; one name twice for one digest
    /// takes the later descriptor.
    #[test]
    fn one_name_for_two_digests_is_refused_and_the_later_of_one_digest_is_taken() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", false, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cache");
        let views = root.join(".ferry/views");
        let name = r#""org.opencontainers.image.ref.name":"ns/a:1""#;
        let other = r#""org.opencontainers.image.ref.name":"ns/b:1""#;
        cache(&root, &kit, &[(&b, other), (&a, name), (&b, name)]);
        let e = read_oci_selection(&root, &names(&["ns/b:1"]), &views).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: tag ns/a:1 names both {} and {}",
                root.join("index.json").display(),
                a.digest,
                b.digest
            )
        );
        let later = r#""io.containerd.image.name":"quay.io/ns/a:1","org.opencontainers.image.ref.name":"ns/a:1""#;
        cache(&root, &kit, &[(&a, name), (&a, later)]);
        let m = read_oci_selection(&root, &names(&["ns/a:1"]), &views).unwrap();
        assert_eq!(m.images[0].source.as_deref(), Some("quay.io/ns/a:1"));
    }

    #[test]
    fn names_the_cache_lacks_are_refused_together() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let t = tempfile::tempdir().unwrap();
        cache(
            t.path(),
            &kit,
            &[(&a, r#""org.opencontainers.image.ref.name":"ns/a:1""#)],
        );
        let views = t.path().join(".ferry/views");
        let e = read_oci_selection(
            t.path(),
            &names(&["ns/x:1", "ns/a:1", "ns/y@sha256:00"]),
            &views,
        )
        .unwrap_err();
        assert!(
            matches!(&e, MirrorError::NotInCache { absent, .. } if *absent == names(&["ns/x:1", "ns/y@sha256:00"])),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("2 images are not in the cache ")
                && text.contains("ns/x:1, ns/y@sha256:00")
                && text.contains("run `ferry-pack pull --config"),
            "{text}"
        );
        assert!(!views.exists(), "nothing written for a refused selection");
        // A blob of a named image missing from the cache: named, as any mirror's would be.
        fs::remove_file(t.path().join("blobs/sha256").join(hex(&a.closure[2]))).unwrap();
        let e = read_oci_selection(t.path(), &names(&["ns/a:1"]), &views).unwrap_err();
        assert!(matches!(e, MirrorError::MissingBlobs { .. }), "{e}");
    }

    #[test]
    fn a_sparse_image_of_the_cache_is_selected_sparse() {
        let mut kit = Kit::default();
        let amd = kit.image("amd", false, 1);
        let arm = kit.image("arm", false, 1);
        let list = kit.index_of(false, &[(&amd, "linux/amd64"), (&arm, "linux/arm64")]);
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        cache(
            root,
            &kit,
            &[(
                &list,
                r#""dev.ferry.platforms":"linux/arm64","org.opencontainers.image.ref.name":"ns/app:v1""#,
            )],
        );
        for b in &amd.closure {
            fs::remove_file(root.join("blobs/sha256").join(hex(b))).unwrap();
        }
        let m =
            read_oci_selection(root, &names(&["ns/app:v1"]), &root.join(".ferry/views")).unwrap();
        assert_eq!(m.images[0].platforms, Some(names(&["linux/arm64"])));
        let mut expected = vec![list.digest];
        expected.extend(arm.closure.iter().cloned());
        assert_eq!(m.images[0].blobs, expected);
        assert_eq!(m.blobs.len(), expected.len());
    }

    /// The view streamed from borrowed descriptors is byte for byte the index a pack of
    /// the same set wrote before (so a set packs to the bundle it packed to), and a view
    /// already there with other bytes is written again.
    #[test]
    fn the_view_is_the_index_of_the_selection_and_written_once() {
        let d: Vec<Descriptor> = serde_json::from_str(&format!(
            r#"[{{"mediaType":"{OCI_INDEX}","digest":"sha256:{}","size":7,"annotations":{{"b":"2","a":"1"}},"platform":{{"os":"linux","architecture":"amd64"}}}},
               {{"digest":"sha256:{}","size":9,"urls":["http://x"]}}]"#,
            "a".repeat(64),
            "b".repeat(64)
        ))
        .unwrap();
        let whole = serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: d.clone(),
            subject: None,
            annotations: BTreeMap::new(),
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The texts a selection holds: the view made of them is the index made of the
        // descriptors, byte for byte.
        let d: Vec<Box<RawValue>> = d.iter().map(as_text).collect();
        let (path, (digest, size)) = write_view(dir.path(), &d).unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole);
        assert_eq!(
            (digest, size),
            (digest::sha256_bytes(&whole), whole.len() as u64)
        );
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("index-{}.json", digest.hex())
        );
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_view(dir.path(), &d).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().modified().unwrap(),
            modified,
            "the same view is not rewritten"
        );
        fs::write(&path, b"{}").unwrap();
        write_view(dir.path(), &d).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            whole,
            "a damaged view is written again"
        );
    }
}
