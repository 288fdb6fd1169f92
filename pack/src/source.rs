//! From a mirror as read by the `mirror` crate to what the format writer packs: the
//! mirror's images, blobs and tree in the format's terms, numbered in the pack order
//! (`format_spec::order`), with the OCI index every volume carries (built by the `mirror`
//! crate, which writes the same index into the OCI layouts `extract` makes).

use std::collections::BTreeMap;

use format_spec::manifest::{Image, TreeEntry};
use format_spec::order::{pack_order, Base, Candidate};
use format_spec::pack::Source;
use format_spec::Digest;
use mirror::Mirror;

use crate::error::PackError;

/// The mirror in pack order, ready for the writer; `files` are the files of its tree (for
/// [`Source::other_copies`]).
pub fn to_source(m: &Mirror, base: &Base) -> Result<(Source, Vec<Candidate>), PackError> {
    let candidate = |digest: &str, size: u64, path: &std::path::Path| {
        Ok(Candidate {
            digest: parse(digest)?,
            size,
            path: path.to_path_buf(),
            media_type: m.manifest_types.get(digest).cloned(),
        })
    };
    let mut images = Vec::with_capacity(m.images.len());
    for img in &m.images {
        let blobs = img
            .blobs
            .iter()
            .map(|d| {
                let f = m.blobs.get(d).ok_or_else(|| {
                    PackError::Unpackable(format!(
                        "image {} needs blob {d}, which the mirror reader did not list",
                        img.repository
                    ))
                })?;
                candidate(d, f.size, &f.path)
            })
            .collect::<Result<Vec<_>, PackError>>()?;
        images.push(blobs);
    }
    let files = m
        .tree
        .iter()
        .filter_map(|e| match e {
            mirror::TreeEntry::File {
                digest,
                size,
                source,
                ..
            } => Some(candidate(digest, *size, source)),
            _ => None,
        })
        .collect::<Result<Vec<_>, PackError>>()?;
    let order = pack_order(&images, &files, base);
    let images = m
        .images
        .iter()
        .zip(order.images.iter())
        .enumerate()
        .map(|(k, (img, blobs))| {
            Ok(Image {
                repository: img.repository.clone(),
                tags: img.tags.clone(),
                digest: parse(&img.digest)?,
                media_type: img.media_type.clone(),
                source: img.source.clone(),
                blobs: blobs.clone(),
                catalog: m.catalog_reason(k).is_some(),
                // The mirror reader keeps them sorted and each once (SPEC.md M25).
                platforms: img.platforms.clone(),
            })
        })
        .collect::<Result<Vec<_>, PackError>>()?;
    // `files` holds the tree's files in tree order, each already numbered.
    let mut numbered = files.iter().map(|f| order.number(&f.digest));
    let tree = m
        .tree
        .iter()
        .map(|e| match e {
            mirror::TreeEntry::Dir { path } => TreeEntry::Dir { path: path.clone() },
            mirror::TreeEntry::File { path, mode, .. } => TreeEntry::File {
                path: path.clone(),
                blob: numbered
                    .next()
                    .flatten()
                    .expect("every file of the tree is numbered"),
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
    let index_json = mirror::oci_index_json(&m.images, &m.manifest_types, &sizes)?;
    let source = Source {
        source_layout: m.kind.name().to_owned(),
        blobs: order.blobs,
        images,
        tree,
        index_json,
    };
    Ok((source, files))
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
            let why = m.catalog_reason(k).unwrap_or_default();
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

fn parse(d: &str) -> Result<Digest, PackError> {
    Digest::parse(d).map_err(|e| PackError::Unpackable(e.to_string()))
}

#[cfg(test)]
mod tests {
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
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            source: source.map(str::to_owned),
            blobs: Vec::new(),
            platforms: None,
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
}
