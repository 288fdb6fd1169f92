//! From a mirror as read by the `mirror` crate to what the format writer packs: the
//! mirror's images, blobs and tree in the format's terms, numbered in the pack order
//! (`format_spec::order`), with the OCI index every volume carries (built by the `mirror`
//! crate, which writes the same index into the OCI layouts `extract` makes).

use format_spec::manifest::{Image, TreeEntry};
use format_spec::order::{Base, Candidate, PackOrder};
use format_spec::pack::{Source, SourceBlob};
use mirror::Mirror;

use crate::error::PackError;

/// What pack takes from a mirror: the blobs, images and tree in pack order, ready for the
/// writer; the other files of the mirror holding a packed blob (to re-hash); and what pack
/// says about its catalogs.
pub struct Packable {
    pub source: Source,
    /// Other files of the mirror holding a packed blob ([`format_spec::pack::other_copies`]).
    pub copies: Vec<SourceBlob>,
    /// What pack says about catalogs ([`catalog_report`]).
    pub catalog_lines: Vec<String>,
}

/// The mirror in pack order, ready for the writer. The mirror is consumed: its strings and
/// paths move into the bundle's records rather than being copied (at 10^5 images the model
/// is tens of MB, and this is where pack's memory would peak), and it is gone before
/// planning starts.
pub fn to_source(mut m: Mirror, base: &Base) -> Result<Packable, PackError> {
    // Catalog marks read image configs from disk: once, for the records and the report.
    let reasons: Vec<Option<String>> = (0..m.images.len()).map(|k| m.catalog_reason(k)).collect();
    let catalog_lines = catalog_report(&m, &reasons);
    // Kept for the whole run (every volume carries it), compressed.
    let index_json = format_spec::pack::IndexBytes::new(&mirror::oci_index_json_sized(
        &m.images,
        &m.manifest_types,
        &|d| m.blobs.get(d).map(|f| f.size),
    )?);
    // Room for every blob an image needs and the tree's files no image needs.
    let tree_only = m
        .tree
        .iter()
        .filter(|e| matches!(e, mirror::TreeEntry::File { digest, .. } if !m.blobs.contains_key(digest)))
        .count();
    let mut order = PackOrder::with_capacity(m.blobs.len() + tree_only);
    for img in &m.images {
        // A blob's path and media type are made for the pack order the first time an
        // image needs it; the order knows it from then on.
        order.add_image(img.blobs.iter().copied(), base, |d| {
            let f = m.blobs.get(d).ok_or_else(|| {
                PackError::Unpackable(format!(
                    "image {} needs blob {d}, which the mirror reader did not list",
                    img.repository
                ))
            })?;
            Ok::<_, PackError>(Candidate {
                digest: *d,
                size: f.size,
                path: m.blob_path(f).into_owned(),
                media_type: m.manifest_types.get(d).map(|t| t.to_string()),
            })
        })?;
    }
    // The tree's files no image needs are numbered too, by digest.
    let mut rest = Vec::new();
    for e in &m.tree {
        if let mirror::TreeEntry::File { digest, size, .. } = e {
            if order.number(digest).is_none() {
                rest.push(Candidate {
                    digest: *digest,
                    size: *size,
                    path: m.file_source(e).into_owned(),
                    media_type: m.manifest_types.get(digest).map(|t| t.to_string()),
                });
            }
        }
    }
    order.add_files(rest);
    let order = order.finish();
    // What the order took from them is in it now.
    drop((
        std::mem::take(&mut m.blobs),
        std::mem::take(&mut m.manifest_types),
    ));
    // Each tree file's number, in tree order; and the other files holding a packed blob,
    // to be re-hashed.
    let tree_files = || {
        m.tree.iter().filter_map(|e| match e {
            mirror::TreeEntry::File { digest, .. } => Some((*digest, e)),
            _ => None,
        })
    };
    let file_numbers: Vec<u32> = tree_files()
        .map(|(d, _)| {
            order
                .number(&d)
                .expect("every file of the tree is numbered")
        })
        .collect();
    let copies = format_spec::pack::other_copies(
        &order.blobs,
        |d| order.number(d),
        tree_files().map(|(d, e)| (d, m.file_source(e))),
    );
    let PackOrder {
        blobs,
        images: image_blobs,
        ..
    } = order;
    let images = std::mem::take(&mut m.images)
        .into_iter()
        .zip(image_blobs)
        .zip(&reasons)
        .map(|((img, blobs), reason)| {
            Ok(Image {
                digest: img.digest,
                repository: img.repository,
                tags: img.tags,
                media_type: img.media_type.to_string(),
                source: img.source,
                blobs,
                catalog: reason.is_some(),
                // The mirror reader keeps them sorted and each once (SPEC.md M25).
                platforms: img.platforms,
                // Checked as a repository path by the mirror reader (SPEC.md M10).
                destination: img.destination,
                // Checked by the mirror reader as SPEC.md M26 requires; a layout that
                // records packages marks the image as a catalog.
                packages: img.packages,
            })
        })
        .collect::<Result<Vec<_>, PackError>>()?;
    let mut numbered = file_numbers.into_iter();
    let tree = std::mem::take(&mut m.tree)
        .into_iter()
        .map(|e| match e {
            mirror::TreeEntry::Dir { path } => TreeEntry::Dir { path },
            mirror::TreeEntry::File { path, mode, .. } => TreeEntry::File {
                path,
                blob: numbered.next().expect("every file of the tree is numbered"),
                mode,
            },
            mirror::TreeEntry::Symlink { path, target } => TreeEntry::Symlink { path, target },
            mirror::TreeEntry::HardLink { path, target } => TreeEntry::Link { path, target },
        })
        .collect();
    let source = Source {
        source_layout: m.kind.name().to_owned(),
        blobs,
        images,
        tree,
        index_json,
    };
    Ok(Packable {
        source,
        copies,
        catalog_lines,
    })
}

/// What pack says about catalogs (`reasons`: why each image is taken as one, if it is):
/// each catalog and why, or, for an oc layout (which is how operator catalogs are
/// mirrored), that none was found.
fn catalog_report(m: &Mirror, reasons: &[Option<String>]) -> Vec<String> {
    let mut lines: Vec<String> = m
        .images
        .iter()
        .zip(reasons)
        .filter_map(|(i, why)| Some((i, why.as_ref()?)))
        .map(|(i, why)| {
            let holding = i
                .packages
                .as_ref()
                .map(|p| format!(", {} package(s) recorded", p.len()))
                .unwrap_or_default();
            let name = match i.tags.first() {
                Some(t) => format!("{}:{t}", i.repository),
                None => format!("{}@{}", i.repository, i.digest),
            };
            format!("catalog: {name} ({why}{holding}): push writes a CatalogSource for it")
        })
        .collect();
    if lines.is_empty() && m.kind == mirror::LayoutKind::OcFile {
        lines.push(
            "no operator catalog found (no manifests-*/catalogSource.yaml names an image here, and no image config carries an operators.operatorframework.io.index label): push writes no CatalogSource".into(),
        );
    }
    lines.extend(m.unresolved_catalogs.iter().cloned());
    lines
}

/// `--origin HOST[:PORT][/PREFIX]`: the registry the images of a layout that records no
/// original references came from. Each image without a recorded original gets
/// `ORIGIN/<its repository path in the layout>` with its first tag (or its digest), so push
/// can write mirror sets for it; recorded originals (oc's mapping.txt, containerd's
/// annotation) are kept. Returns how many images got one.
pub fn apply_origin(m: &mut Mirror, origin: &str) -> Result<usize, PackError> {
    let o = origin.trim().trim_end_matches('/');
    let bad = |why: &str| {
        PackError::Input(format!(
            "--origin {origin:?}: {why} (expected HOST[:PORT][/PREFIX], e.g. registry.redhat.io or quay.io/myorg)"
        ))
    };
    if o.contains("://") {
        return Err(bad("give the registry without a scheme"));
    }
    // The grammar of references (`oci::name`), so that push reads ORIGIN/<path> back as
    // this host and this path.
    let mut parts = o.split('/');
    let host = parts.next().unwrap_or_default();
    // The host and path grammars are oci's (the distribution spec's), as push reads them.
    if !(oci::name::marks_host(host) && oci::name::is_host(host)) {
        return Err(bad(&format!(
            "{host:?} is not a registry host (a host has a '.' or a ':port', or is localhost)"
        )));
    }
    for c in parts {
        if let Err(e) = oci::name::check_path_component(c) {
            return Err(bad(&format!(
                "{c:?} is not a valid repository path component: {}",
                e.problem
            )));
        }
    }
    let mut n = 0;
    for img in m.images.iter_mut().filter(|i| i.source.is_none()) {
        img.source = Some(match img.tags.first() {
            Some(t) => format!("{o}/{}:{t}", img.repository),
            None => format!("{o}/{}@{}", img.repository, img.digest),
        });
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use format_spec::Digest;
    use std::path::PathBuf;

    use super::*;

    fn mirror_of(images: Vec<mirror::Image>) -> Mirror {
        Mirror {
            root: PathBuf::from("/m"),
            kind: mirror::LayoutKind::RegistryStorage,
            blobs: BTreeMap::new(),
            manifest_types: BTreeMap::new(),
            images,
            tree: Vec::new(),
            skipped: Vec::new(),
            catalogs: Vec::new(),
            unresolved_catalogs: Vec::new(),
        }
    }

    fn image(repository: &str, tags: &[&str], source: Option<&str>) -> mirror::Image {
        mirror::Image {
            repository: repository.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            digest: Digest([0xaa; 32]),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            source: source.map(str::to_owned),
            blobs: Vec::new(),
            platforms: None,
            destination: None,
            packages: None,
        }
    }

    /// `--origin` gives layouts without originals ORIGIN/<repository>.
    #[test]
    fn origin_names_images_without_a_recorded_original() {
        let mut m = mirror_of(vec![
            image("openshift4/ose-x", &["v4.6"], None),
            image("ubi8/ubi", &[], None),
            image("kept/one", &["1"], Some("quay.io/kept/one:1")),
        ]);
        assert_eq!(apply_origin(&mut m, "registry.redhat.io/").unwrap(), 2);
        let sources: Vec<&str> = m
            .images
            .iter()
            .filter_map(|i| i.source.as_deref())
            .collect();
        assert_eq!(
            sources,
            [
                "registry.redhat.io/openshift4/ose-x:v4.6",
                &format!("registry.redhat.io/ubi8/ubi@sha256:{}", "a".repeat(64)),
                "quay.io/kept/one:1",
            ]
        );
        for bad in [
            "redhat",
            "https://quay.io",
            "quay.io/Org",
            "quay.io//x",
            "a b.io",
            "quay.io/ab-",
        ] {
            let e = apply_origin(&mut mirror_of(Vec::new()), bad).unwrap_err();
            assert!(e.to_string().contains("--origin"), "{bad}: {e}");
        }
        let mut m = mirror_of(vec![image("a/b", &["t"], None)]);
        apply_origin(&mut m, "localhost:5000/mirror").unwrap();
        assert_eq!(
            m.images[0].source.as_deref(),
            Some("localhost:5000/mirror/a/b:t")
        );
    }

    /// Packing an image set from the pull cache: the same cache and the same set give the
    /// same bundle, whatever else the cache gains meanwhile, and a sparse index stays one.
    #[test]
    fn a_selection_of_the_cache_packs_to_the_same_bundle_every_time() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/oci");
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        // cp -a keeps the fixture's mtimes, as a cache keeps those of its downloads.
        let cp = std::process::Command::new("cp")
            .arg("-a")
            .arg(&fixture)
            .arg(&cache)
            .status()
            .unwrap();
        assert!(cp.success());
        let arm64 = "c862ee143091d00facbfe6184f0434218b093f606054ab00249798f5d935a994";
        std::fs::remove_file(cache.join("blobs/sha256").join(arm64)).unwrap();
        let index_path = cache.join("index.json");
        let index = std::fs::read_to_string(&index_path).unwrap().replace(
            r#""org.opencontainers.image.ref.name":"openshift4/ose-logging-fluentd:v4.6""#,
            r#""dev.ferry.platforms":"linux/amd64","org.opencontainers.image.ref.name":"openshift4/ose-logging-fluentd:v4.6""#,
        );
        assert!(index.contains("dev.ferry.platforms"), "{index}");
        std::fs::write(&index_path, &index).unwrap();
        let set = [
            "openshift4/ose-logging-fluentd:v4.6".to_string(),
            "openshift4/ose-elasticsearch-proxy:v4.6".to_string(),
        ];
        let views = cache.join(".ferry/views");
        let key = format_spec::key::PrivateKey::generate().unwrap();
        let bundle = |m: &Mirror| {
            let source = to_source(m.clone(), &Base::default()).unwrap().source;
            let cancel = std::sync::atomic::AtomicBool::new(false);
            let prepared = format_spec::pack::prepare(&source.blobs, &cancel).unwrap();
            let options = format_spec::pack::Options {
                volume_size: 64 << 20,
                chunk_size: 4 << 20,
                created: source.newest_mtime(),
                creator: "test".into(),
                bundle_format: format_spec::manifest::BUNDLE_VERSION,
            };
            format_spec::pack::make_plan(&source, &prepared, &options, &key)
                .unwrap()
                .manifest
        };

        let first = mirror::read_oci_selection(&cache, &set, &views).unwrap();
        // Date the view back: written again, it would be the newest file packed and
        // change `created`, hence the bundle.
        let view = std::fs::read_dir(&views)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(&view)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let a = bundle(&first);
        let fluentd = a
            .images
            .iter()
            .find(|i| i.repository == "openshift4/ose-logging-fluentd")
            .unwrap();
        assert_eq!(
            fluentd.digest.to_string(),
            "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e",
            "the index is the registry's"
        );
        assert_eq!(fluentd.platforms, Some(vec!["linux/amd64".to_string()]));
        assert_eq!(a.images.len(), 2, "only the set's images");

        // Another set is pulled into the cache meanwhile: index.json is rewritten.
        std::fs::write(&index_path, index.replace("]}", "]}\n")).unwrap();
        let again = mirror::read_oci_selection(&cache, &set, &views).unwrap();
        let b = bundle(&again);
        assert_eq!(a.bundle_id, b.bundle_id);
        assert_eq!(a.created, b.created);
        assert_eq!(std::fs::read_dir(&views).unwrap().count(), 1);
    }
}
