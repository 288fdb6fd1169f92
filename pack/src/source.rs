//! From a mirror as read by the `mirror` crate to what the format writer packs: pack order,
//! blob indexes, and the OCI index every volume carries.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use ferry_format::manifest::{Image, TreeEntry};
use ferry_format::pack::{Source, SourceBlob};
use ferry_format::Digest;
use mirror::Mirror;

use crate::base::Base;

#[derive(Debug)]
pub struct SourceError(pub String);

/// Blobs go in image order (each image's manifest, config and layers together) so that a
/// volume holds whole images where it can and pushing it alone completes them; files that
/// no image needs (mapping.txt, index.json, link files …) follow, by digest.
pub fn to_source(m: &Mirror, base: &Base) -> Result<Source, SourceError> {
    let mut order = Order {
        blobs: Vec::new(),
        index_of: HashMap::new(),
        mirror: m,
        base,
    };
    let mut images = Vec::new();
    for (k, img) in m.images.iter().enumerate() {
        let mut indexes = Vec::new();
        for d in &img.blobs {
            let f = m.blobs.get(d).ok_or_else(|| {
                SourceError(format!(
                    "image {} needs blob {d}, which the mirror reader did not list",
                    img.repository
                ))
            })?;
            indexes.push(order.add(d, f.size, f.path.clone())?);
        }
        images.push(Image {
            repository: img.repository.clone(),
            tags: img.tags.clone(),
            digest: parse(&img.digest)?,
            media_type: img.media_type.clone(),
            source: img.source.clone(),
            blobs: indexes,
            catalog: catalog_reason(m, k).is_some(),
        });
    }
    let mut extra: BTreeMap<&str, (u64, PathBuf)> = BTreeMap::new();
    for e in &m.tree {
        if let mirror::TreeEntry::File {
            digest,
            size,
            source,
            ..
        } = e
        {
            if !order.index_of.contains_key(digest) {
                extra.entry(digest).or_insert((*size, source.clone()));
            }
        }
    }
    for (d, (size, path)) in extra {
        order.add(d, size, path)?;
    }
    let tree = m
        .tree
        .iter()
        .map(|e| match e {
            mirror::TreeEntry::Dir { path } => TreeEntry::Dir { path: path.clone() },
            mirror::TreeEntry::File {
                path, digest, mode, ..
            } => TreeEntry::File {
                path: path.clone(),
                blob: order.index_of[digest.as_str()],
                mode: *mode,
            },
            mirror::TreeEntry::Symlink { path, target } => TreeEntry::Symlink {
                path: path.clone(),
                target: target.clone(),
            },
            mirror::TreeEntry::HardLink { path, target } => TreeEntry::Link {
                path: path.clone(),
                target: target.clone(),
            },
        })
        .collect();
    let sizes: BTreeMap<String, u64> = m.blobs.iter().map(|(d, f)| (d.clone(), f.size)).collect();
    let index_json = mirror::oci_index_json(&m.images, &m.manifest_types, &sizes)
        .map_err(|e| SourceError(e.to_string()))?;
    Ok(Source {
        source_layout: m.kind.name().to_owned(),
        blobs: order.blobs,
        images,
        tree,
        index_json,
    })
}

/// Labels an operator index (catalog) image carries in its config.
const CATALOG_LABELS: [&str; 2] = [
    "operators.operatorframework.io.index.configs.v1",
    "operators.operatorframework.io.index.database.v1",
];

/// Why image `k` of the mirror is an operator catalog, or None when it is not: the mirror
/// names it so (oc's `manifests-*/catalogSource.yaml`), or its config (for an index, its
/// first child's) carries a catalog label. Decided here, where every blob is at hand, and
/// recorded in the bundle, so a push that has only some of the disks still knows.
pub fn catalog_reason(m: &Mirror, k: usize) -> Option<String> {
    if let Some(mark) = m.catalogs.iter().find(|c| c.image == k) {
        return Some(format!("named by {}", mark.file));
    }
    let img = &m.images[k];
    let read = |d: &str| -> Option<serde_json::Value> {
        let f = m.blobs.get(d)?;
        serde_json::from_slice(&std::fs::read(&f.path).ok()?).ok()
    };
    let mut doc = read(&img.digest)?;
    if let Some(child) = doc["manifests"][0]["digest"].as_str() {
        doc = read(child)?;
    }
    let config = doc["config"]["digest"].as_str().and_then(read)?;
    CATALOG_LABELS
        .iter()
        .find(|l| config["config"]["Labels"][**l].is_string())
        .map(|l| format!("its config carries the label {l}"))
}

/// What pack says about catalogs: each image taken as one and why, or, for an oc layout
/// (which is how operator catalogs are mirrored), that none was found.
pub fn catalog_report(m: &Mirror, source: &Source) -> Vec<String> {
    let mut lines: Vec<String> = source
        .images
        .iter()
        .enumerate()
        .filter(|(_, i)| i.catalog)
        .map(|(k, i)| {
            let why = catalog_reason(m, k).unwrap_or_default();
            format!(
                "catalog: {} ({why}): push writes a CatalogSource for it",
                i.display_name()
            )
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
pub fn apply_origin(m: &mut Mirror, origin: &str) -> Result<usize, SourceError> {
    let o = origin.trim().trim_end_matches('/');
    let bad = |why: &str| {
        SourceError(format!(
            "--origin {origin:?}: {why} (expected HOST[:PORT][/PREFIX], e.g. registry.redhat.io or quay.io/myorg)"
        ))
    };
    if o.contains("://") {
        return Err(bad("give the registry without a scheme"));
    }
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

struct Order<'a> {
    blobs: Vec<SourceBlob>,
    index_of: HashMap<String, u32>,
    mirror: &'a Mirror,
    base: &'a Base,
}

impl Order<'_> {
    /// The blob's index, adding it at the end the first time it is met.
    fn add(&mut self, digest: &str, size: u64, path: PathBuf) -> Result<u32, SourceError> {
        if let Some(&i) = self.index_of.get(digest) {
            return Ok(i);
        }
        let i = self.blobs.len() as u32;
        let d = parse(digest)?;
        let media_type = self.mirror.manifest_types.get(digest).cloned();
        // Manifests are always carried (they are small, and tags are pushed from them);
        // layers and configs the base holds are left out.
        let base = match media_type {
            None if self.images_need(digest) => self.base.blobs.get(&d).cloned(),
            _ => None,
        };
        self.blobs.push(SourceBlob {
            digest: d,
            size,
            path,
            media_type,
            base,
        });
        self.index_of.insert(digest.to_owned(), i);
        Ok(i)
    }
}

impl Order<'_> {
    /// Only blobs of images are left to the base; files of the tree are always carried.
    fn images_need(&self, digest: &str) -> bool {
        self.mirror.blobs.contains_key(digest)
    }
}

fn parse(d: &str) -> Result<Digest, SourceError> {
    Digest::parse(d).map_err(|e| SourceError(e.to_string()))
}

/// The newest modification time of any file packed: the bundle's time when
/// SOURCE_DATE_EPOCH is not set, so packing the same mirror twice gives the same bytes.
pub fn newest_mtime(source: &Source) -> u64 {
    source
        .blobs
        .iter()
        .filter_map(|b| std::fs::metadata(&b.path).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .max()
        .unwrap_or(0)
}

/// Other files in the tree that claim to hold a packed blob — copies in other repositories
/// where the mirror did not hard-link — each distinct file once, so that every file the
/// bundle stands for is re-hashed, not only the copy that is packed.
pub fn other_copies(m: &Mirror, source: &Source) -> Vec<SourceBlob> {
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &std::path::Path| std::fs::metadata(p).ok().map(|md| (md.dev(), md.ino()));
    let mut seen: std::collections::HashSet<(u64, u64)> =
        source.blobs.iter().filter_map(|b| inode(&b.path)).collect();
    let by_digest: HashMap<String, &SourceBlob> = source
        .blobs
        .iter()
        .map(|b| (b.digest.to_string(), b))
        .collect();
    let mut copies = Vec::new();
    for e in &m.tree {
        if let mirror::TreeEntry::File {
            digest,
            source: path,
            ..
        } = e
        {
            let Some(packed) = by_digest.get(digest.as_str()) else {
                continue;
            };
            if packed.path == *path || !inode(path).is_some_and(|i| seen.insert(i)) {
                continue;
            }
            copies.push(SourceBlob {
                path: path.clone(),
                ..(*packed).clone()
            });
        }
    }
    copies
}

#[cfg(test)]
mod tests {
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
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            source: source.map(str::to_owned),
            blobs: Vec::new(),
        }
    }

    /// Issue 9 item 16: `--origin` gives layouts without originals ORIGIN/<repository>.
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
            assert!(e.0.contains("--origin"), "{bad}: {}", e.0);
        }
        let mut m = mirror_of(vec![image("a/b", &["t"], None)]);
        apply_origin(&mut m, "localhost:5000/mirror").unwrap();
        assert_eq!(
            m.images[0].source.as_deref(),
            Some("localhost:5000/mirror/a/b:t")
        );
    }
}
