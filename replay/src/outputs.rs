//! What a push leaves for the cluster and for the next bundle: the OpenShift manifests and
//! mapping.txt (`openshift.rs`), and the receipt — what the registry now holds of the
//! bundle — from which the connected side builds a smaller bundle next time.
//!
//! The layout of the manifests directory (README "Cluster manifests"): `oc apply -f DIR`
//! decodes every `.json`/`.yaml` file of DIR, and a cluster refuses objects it has no kind
//! for (before 4.13: ImageDigestMirrorSet) or that conflict (some 4.13/4.14 releases: an
//! ImageContentSourcePolicy beside an ImageDigestMirrorSet). So each directory a user
//! applies holds only Kubernetes objects for one range of cluster versions, and the
//! receipt and mapping go beside them:
//!
//! ```text
//! ferry-manifests-<id>/
//!   cluster/               oc apply -f this (OpenShift 4.13 and later): IDMS, ITMS,
//!                          CatalogSource, OperatorHub (when the bundle has a catalog)
//!   cluster-before-4.13/   oc apply -f this on older clusters: ICSP, CatalogSource, OperatorHub
//!   mapping.txt            SRC=DST, one line per image
//!   receipt.json           what the registry holds (for `ferry-pack --base`)
//!   partial/               the same, from a push in which some image failed
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use format_spec::bundle::Bundle;
use format_spec::manifest::Image;
use format_spec::receipt::ImageRef;

use crate::mapping::SourceRef;
use crate::openshift::{self, CatalogKey, Pushed, Rendered};
use crate::push::{source_path, Report};

/// The directory to `oc apply -f` on OpenShift 4.13 and later.
pub const APPLY_DIR: &str = "cluster";
/// The directory to `oc apply -f` on clusters before 4.13 (no ImageDigestMirrorSet kind).
pub const APPLY_DIR_BEFORE_4_13: &str = "cluster-before-4.13";
/// Where a push in which some image failed writes its (partial) outputs, so that those of
/// the last complete push stay as they were.
pub const PARTIAL_DIR: &str = "partial";

pub const IDMS_FILE: &str = "imageDigestMirrorSet.yaml";
pub const ITMS_FILE: &str = "imageTagMirrorSet.yaml";
pub const ICSP_FILE: &str = "imageContentSourcePolicy.yaml";
pub const CATALOG_FILE: &str = "catalogSource.yaml";
/// The OperatorHub `cluster` object that disables the default catalog sources.
pub const OPERATOR_HUB_FILE: &str = "operatorHub.yaml";
pub const MAPPING_FILE: &str = "mapping.txt";
pub const RECEIPT_FILE: &str = "receipt.json";

/// The receipt (SPEC.md §6.5) is a ferry file: its type, writer and reader are the format
/// crate's; what goes into it is decided here, from what a push got in.
pub use format_spec::receipt::{Receipt, ReceiptImage};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{} exists and is not a directory: give a directory for the cluster manifests (it is created if missing)", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is a symbolic link; ferry does not write through links: remove it, or give another directory for the cluster manifests", .path.display())]
    Symlink { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The CatalogSource name of every catalog image of the bundle, by image position. Made
/// from the whole bundle (not only what one push got in), so a later push that brings
/// another catalog of the same name leaves the names already applied as they were.
fn catalog_names(bundle: &Bundle) -> BTreeMap<usize, String> {
    let m = &bundle.manifest;
    let (positions, keys): (Vec<usize>, Vec<CatalogKey>) = m
        .images
        .iter()
        .enumerate()
        .filter(|(_, img)| img.catalog)
        .map(|(i, img)| (i, catalog_key(img)))
        .unzip();
    positions
        .into_iter()
        .zip(openshift::catalog_names(&keys))
        .collect()
}

/// Everything from the original reference (or, without one, the image's path in the
/// bundle): never the push's destination, which `--to` and `--max-components` change. A
/// catalog ferry pulled (the bundle records its packages) or one the image set sends
/// elsewhere (`targetCatalog`) is named for where it goes instead: the last component of
/// its destination path (else its source's) and its tag in the bundle (`targetTag`, else
/// the source's tag), because its content is not the original's.
fn catalog_key(img: &Image) -> CatalogKey {
    // A source that does not parse never gets here: push refused it before sending anything.
    let path = source_path(img).unwrap_or_else(|_| img.repository.clone());
    let source = img.source.as_deref().and_then(|s| SourceRef::parse(s).ok());
    let hex = img.digest.hex();
    let short = || hex[..12.min(hex.len())].to_owned();
    let source_tag = source.as_ref().and_then(|s| s.tag.clone());
    let key = img
        .source
        .clone()
        .unwrap_or_else(|| format!("{}@{}", img.repository, img.digest));
    if is_ferry_catalog(img) {
        let at = img.destination.as_deref().unwrap_or(&path);
        return CatalogKey {
            image: at.rsplit('/').next().unwrap_or("catalog").to_owned(),
            tag: img
                .tags
                .first()
                .cloned()
                .or(source_tag)
                .unwrap_or_else(short),
            key: match &img.destination {
                Some(d) => format!("{key}={d}"),
                None => key,
            },
        };
    }
    CatalogKey {
        image: path.rsplit('/').next().unwrap_or("catalog").to_owned(),
        tag: source_tag
            .or_else(|| img.tags.first().cloned())
            .unwrap_or_else(short),
        key,
    }
}

/// A catalog named for where it goes (see [`catalog_key`]).
fn is_ferry_catalog(img: &Image) -> bool {
    img.catalog && (img.packages.is_some() || img.destination.is_some())
}

/// The CatalogSource `displayName` of a catalog named for where it goes: `<name> <tag>`
/// (`my-operator-index v1`), what the console lists; others keep their original reference.
fn display_name(img: &Image) -> Option<String> {
    is_ferry_catalog(img).then(|| {
        let k = catalog_key(img);
        format!("{} {}", k.image, k.tag)
    })
}

/// The images of a report that are in the registry now, for the cluster manifests.
pub fn pushed_images<'a>(bundle: &'a Bundle, report: &'a Report) -> Vec<Pushed<'a>> {
    let m = &bundle.manifest;
    let names = catalog_names(bundle);
    report
        .images
        .iter()
        .zip(&m.images)
        .enumerate()
        .filter(|(_, (o, _))| o.status.in_registry())
        .map(|(i, (o, img))| {
            let source = img.source.as_deref().and_then(|s| SourceRef::parse(s).ok());
            Pushed {
                source_repository: source.as_ref().map(SourceRef::repository),
                source_reference: img.source.as_deref(),
                source_by_tag: source
                    .as_ref()
                    .is_some_and(|s| s.tag.is_some() && s.digest.is_none()),
                destination: &o.destination,
                digest: img.digest,
                tags: &img.tags,
                catalog: names.get(&i).cloned(),
                display_name: display_name(img),
            }
        })
        .collect()
}

/// Writes the receipt of what `report` left in the registry (the text of a
/// [`Receipt`]) to `out`, from the bundle's records as they are, not copied into one.
pub fn write_receipt_json(
    out: impl Write,
    bundle: &Bundle,
    report: &Report,
    registry: &str,
) -> io::Result<()> {
    let m = &bundle.manifest;
    let images = || {
        report
            .images
            .iter()
            .zip(&m.images)
            .filter(|(o, _)| o.status.in_registry())
            .map(|(o, img)| ImageRef {
                destination: &o.destination,
                digest: img.digest,
                tags: &img.tags,
                source: img.source.as_deref(),
                blobs: &img.blobs,
                blobs_of: &m.blobs,
            })
    };
    format_spec::receipt::write_streamed(out, registry, m.bundle_id, images, &m.blobs)
}

/// A directory of ours: created if missing; refused when it is a link or not a directory.
fn own_dir(path: &Path) -> Result<(), OutputError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(OutputError::Symlink {
            path: path.to_path_buf(),
        }),
        Ok(m) if !m.is_dir() => Err(OutputError::NotADirectory {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir(path).map_err(io_at(path))
        }
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Checks, before anything is pushed, that the cluster manifests can be written into `dir`:
/// it is (or becomes) a directory ferry can create files in, and none of the directories
/// ferry writes inside it is a link or a file. The directory the user names may itself be
/// a link to a directory (their choice); what ferry creates inside is never followed.
pub fn prepare(dir: &Path) -> Result<(), OutputError> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(OutputError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(dir).is_ok() {
                // A dangling link: creating the directory would create its target.
                return Err(OutputError::Symlink {
                    path: dir.to_path_buf(),
                });
            }
            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        }
        Err(e) => return Err(io_at(dir)(e)),
    }
    for root in [dir.to_path_buf(), dir.join(PARTIAL_DIR)] {
        for sub in [PARTIAL_DIR, APPLY_DIR, APPLY_DIR_BEFORE_4_13] {
            let p = root.join(sub);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(OutputError::Symlink { path: p })
                }
                Ok(m) if !m.is_dir() => return Err(OutputError::NotADirectory { path: p }),
                _ => {}
            }
        }
    }
    // Every final name ferry writes: a link planted there is refused now, before the push,
    // rather than after it (durable-file refuses it again at the rename).
    for root in [dir.to_path_buf(), dir.join(PARTIAL_DIR)] {
        let names = [
            root.join(RECEIPT_FILE),
            root.join(MAPPING_FILE),
            root.join(APPLY_DIR).join(IDMS_FILE),
            root.join(APPLY_DIR).join(ITMS_FILE),
            root.join(APPLY_DIR).join(CATALOG_FILE),
            root.join(APPLY_DIR).join(OPERATOR_HUB_FILE),
            root.join(APPLY_DIR_BEFORE_4_13).join(ICSP_FILE),
            root.join(APPLY_DIR_BEFORE_4_13).join(CATALOG_FILE),
            root.join(APPLY_DIR_BEFORE_4_13).join(OPERATOR_HUB_FILE),
        ];
        for path in names {
            if durable_file::refuse_symlink(&path).is_err() {
                return Err(OutputError::Symlink { path });
            }
        }
    }
    // Can we create a file there at all (a read-only directory, a full disk)? A temporary
    // that is never committed is removed when dropped.
    let probe = dir.join(".ferry-write-check");
    durable_file::Partial::create(&probe).map_err(io_at(dir))?;
    Ok(())
}

/// What [`write_outputs`] wrote and why some kinds have no file.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The directory the outputs went into: the manifests directory, or its `partial/`.
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    pub notes: Vec<String>,
    /// How many images the outputs cover.
    pub images: usize,
}

/// Writes the cluster manifests, mapping.txt and receipt.json into `dir` (see the module
/// comment for the layout); every file through `durable-file` (never through a link,
/// complete or absent). With `opts.provenance.partial`, everything goes to `dir/partial/`
/// and the outputs of the last complete push stay; a complete push removes a stale
/// `partial/`. A kind with nothing to say gets no file (and a stale one of an earlier run
/// is removed, so `oc apply` never sees an empty or an outdated file); the notes say why.
/// When no image went in and the push is partial, nothing is written.
pub fn write_outputs(
    dir: &Path,
    bundle: &Bundle,
    report: &Report,
    registry: &str,
    opts: &openshift::Options,
) -> Result<Written, OutputError> {
    prepare(dir)?;
    let partial = opts.provenance.partial;
    let root = if partial {
        dir.join(PARTIAL_DIR)
    } else {
        dir.to_path_buf()
    };
    let images = pushed_images(bundle, report);
    let rendered: Rendered = openshift::render(&images, opts);
    let mut written = Written {
        root: root.clone(),
        files: Vec::new(),
        notes: rendered.notes.clone(),
        images: images.len(),
    };
    if partial && images.is_empty() {
        return Ok(written);
    }
    own_dir(&root)?;
    let apply = root.join(APPLY_DIR);
    let before = root.join(APPLY_DIR_BEFORE_4_13);
    own_dir(&apply)?;
    own_dir(&before)?;
    let header = if partial {
        format!(
            "# PARTIAL: {} image(s) of this bundle failed in this push; these objects cover only the {} that went in.\n# Run the push again: a run without failures writes the complete set one directory up.\n",
            report.failed(),
            images.len()
        )
    } else {
        String::new()
    };
    let yaml = |text: &Option<String>| text.as_ref().map(|t| format!("{header}{t}"));
    // A bundle with a catalog is for a cluster that uses only the catalogs brought in: the
    // default sources it cannot reach are switched off beside the CatalogSource.
    let hub = has_catalog(bundle).then(|| openshift::operator_hub(&opts.provenance));
    // Each text is made just before it is written and dropped after, so that at most one
    // (with the rendered objects) is in memory at a time: at 6x10^4 images the receipt
    // alone is tens of MB; it is streamed into its file instead of built as a string.
    let receipt_file = root.join(RECEIPT_FILE);
    let files: [(PathBuf, &dyn Fn() -> Option<String>); 7] = [
        (apply.join(IDMS_FILE), &|| {
            yaml(&rendered.digest_mirror_sets)
        }),
        (apply.join(ITMS_FILE), &|| yaml(&rendered.tag_mirror_sets)),
        (apply.join(CATALOG_FILE), &|| {
            yaml(&rendered.catalog_sources)
        }),
        (apply.join(OPERATOR_HUB_FILE), &|| yaml(&hub)),
        (before.join(ICSP_FILE), &|| {
            yaml(&rendered.content_source_policies)
        }),
        (before.join(CATALOG_FILE), &|| {
            yaml(&rendered.catalog_sources)
        }),
        (before.join(OPERATOR_HUB_FILE), &|| yaml(&hub)),
    ];
    let refused = |path: &Path| {
        let path = path.to_path_buf();
        move |e: io::Error| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                OutputError::Symlink { path }
            } else {
                io_at(&path)(e)
            }
        }
    };
    for (path, text) in files {
        match text() {
            Some(text) => {
                durable_file::write(&path, text.as_bytes()).map_err(refused(&path))?;
                written.files.push(path);
            }
            None => remove_stale(&path)?,
        }
    }
    drop(rendered);
    // mapping.txt and the receipt, a line or a record per image, are streamed into their
    // files; the images' view is gone before the receipt, which reads the records itself.
    let mapping_file = root.join(MAPPING_FILE);
    durable_file::write_streamed(&mapping_file, |w| openshift::write_mapping(w, &images))
        .map_err(refused(&mapping_file))?;
    written.files.push(mapping_file);
    drop(images);
    durable_file::write_streamed(&receipt_file, |w| {
        write_receipt_json(w, bundle, report, registry)
    })
    .map_err(refused(&receipt_file))?;
    written.files.push(receipt_file);
    if !partial {
        clear_partial(&dir.join(PARTIAL_DIR))?;
    }
    Ok(written)
}

/// The receipt's file, the bytes `write` gives (a receipt's text), streamed into it.
/// Whether any image of the bundle is an operator catalog (not only those pushed now).
fn has_catalog(bundle: &Bundle) -> bool {
    bundle.manifest.images.iter().any(|i| i.catalog)
}

/// Removes a file (or a link: the link, never its target) ferry wrote in an earlier run
/// and has nothing for now.
fn remove_stale(path: &Path) -> Result<(), OutputError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(path).map_err(io_at(path)),
        _ => Ok(()),
    }
}

/// A complete push supersedes the partial outputs of an earlier failed one: only the
/// files ferry writes there are removed, and the directories if that empties them.
fn clear_partial(p: &Path) -> Result<(), OutputError> {
    if !std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    for (sub, names) in [
        (
            APPLY_DIR,
            &[IDMS_FILE, ITMS_FILE, CATALOG_FILE, OPERATOR_HUB_FILE][..],
        ),
        (
            APPLY_DIR_BEFORE_4_13,
            &[ICSP_FILE, CATALOG_FILE, OPERATOR_HUB_FILE][..],
        ),
        ("", &[MAPPING_FILE, RECEIPT_FILE][..]),
    ] {
        let d = if sub.is_empty() {
            p.to_path_buf()
        } else {
            p.join(sub)
        };
        if !std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        for n in names {
            remove_stale(&d.join(n))?;
        }
        if !sub.is_empty() {
            let _ = std::fs::remove_dir(&d);
        }
    }
    let _ = std::fs::remove_dir(p);
    Ok(())
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-12-01T08:05:04Z`), for annotations.
pub fn rfc3339(secs: u64) -> String {
    format_spec::time::Utc::from_unix(secs).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(source: &str, tags: &[&str], destination: Option<&str>, packages: bool) -> Image {
        Image {
            repository: "mirror/index".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            digest: format_spec::Digest([0xab; 32]),
            media_type: oci::media_type::OCI_INDEX.into(),
            source: Some(source.into()),
            blobs: vec![0],
            catalog: true,
            platforms: None,
            destination: destination.map(str::to_owned),
            packages: packages.then(|| vec!["a".to_string()]),
        }
    }

    /// A catalog ferry pulled, or one sent elsewhere by targetCatalog, is named and
    /// displayed for where it goes (its destination's last component, its tag in the
    /// bundle); any other keeps the name from its original reference and displays that.
    #[test]
    fn catalog_names_and_display_names() {
        let source = "registry.redhat.io/redhat/redhat-operator-index:v4.8";
        let rebuilt = catalog(source, &["v1"], Some("mirror/my-operator-index"), true);
        let k = catalog_key(&rebuilt);
        assert_eq!(
            (k.image.as_str(), k.tag.as_str()),
            ("my-operator-index", "v1")
        );
        assert_eq!(
            display_name(&rebuilt).as_deref(),
            Some("my-operator-index v1")
        );
        // Pulled, no targetCatalog: the source's path, the bundle's tag (targetTag).
        let pulled = catalog(source, &["filtered"], None, true);
        assert_eq!(
            display_name(&pulled).as_deref(),
            Some("redhat-operator-index filtered")
        );
        // By digest only, no tag anywhere: a digest prefix.
        let pinned = catalog(
            &format!(
                "registry.redhat.io/redhat/redhat-operator-index@sha256:{}",
                "ab".repeat(32)
            ),
            &[],
            None,
            true,
        );
        assert_eq!(
            display_name(&pinned).as_deref(),
            Some("redhat-operator-index abababababab")
        );
        // Two rebuilt catalogs of one source going to two places are told apart.
        let other = catalog(source, &["v1"], Some("team2/my-operator-index"), true);
        assert_ne!(catalog_key(&rebuilt).key, catalog_key(&other).key);
        // A catalog from an oc layout: as before.
        let plain = catalog(source, &["v1"], None, false);
        let k = catalog_key(&plain);
        assert_eq!(
            (k.image.as_str(), k.tag.as_str()),
            ("redhat-operator-index", "v4.8")
        );
        assert_eq!(display_name(&plain), None);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_112_304), "2026-12-01T08:05:04Z");
    }

    /// The receipt streamed into its file is byte for byte what `Receipt::to_json` says
    /// (what `ferry-pack --base` reads back), and it never writes through a link.
    #[test]
    fn a_streamed_receipt_is_the_receipt_text_and_not_written_through_a_link() {
        let t = tempfile::tempdir().unwrap();
        let d = |s: &[u8]| format_spec::Digest::of(s);
        let receipt = Receipt {
            ferry_receipt: format_spec::receipt::RECEIPT_VERSION,
            registry: "registry.test:5000".into(),
            bundle_id: d(b"bundle"),
            images: vec![ReceiptImage {
                destination: "registry.test:5000/mirror/app".into(),
                digest: d(b"manifest"),
                tags: vec!["v1".into(), "latest".into()],
                source: Some("quay.io/ns/app:v1".into()),
                blobs: vec![d(b"manifest"), d(b"config"), d(b"layer")],
            }],
            blobs: vec![d(b"config"), d(b"layer"), d(b"manifest")],
        };
        let path = t.path().join(RECEIPT_FILE);
        durable_file::write_streamed(&path, |w| receipt.write_json(w)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), receipt.to_json());
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink(t.path().join("elsewhere"), &link).unwrap();
        assert!(durable_file::write_streamed(&link, |w| receipt.write_json(w)).is_err());
        assert!(!t.path().join("elsewhere").exists());
    }

    #[test]
    fn prepare_refuses_a_file_and_links_and_creates_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = prepare(&file).unwrap_err();
        assert!(matches!(e, OutputError::NotADirectory { .. }), "{e}");
        assert!(e.to_string().contains("not a directory"), "{e}");

        let dir = t.path().join("new/manifests");
        prepare(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the probe stays"
        );

        // A link planted where ferry writes: refused, the target untouched.
        let target = t.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(APPLY_DIR)).unwrap();
        let e = prepare(&dir).unwrap_err();
        assert!(matches!(e, OutputError::Symlink { .. }), "{e}");
        std::fs::remove_file(dir.join(APPLY_DIR)).unwrap();
        std::os::unix::fs::symlink(t.path().join("victim"), dir.join(RECEIPT_FILE)).unwrap();
        assert!(matches!(
            prepare(&dir).unwrap_err(),
            OutputError::Symlink { .. }
        ));
        assert!(!t.path().join("victim").exists());

        let dangling = t.path().join("dangling");
        std::os::unix::fs::symlink(t.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            prepare(&dangling).unwrap_err(),
            OutputError::Symlink { .. }
        ));
        assert!(!t.path().join("nowhere").exists());
    }
}
