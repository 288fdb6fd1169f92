//! OCI image layouts (image-spec `image-layout.md`): reading one
//! or many, and writing one that holds every image of a bundle.
//!
//! ```text
//! <layout>/oci-layout      {"imageLayoutVersion":"1.0.0"}
//! <layout>/index.json      an image index; its descriptors are the images
//! <layout>/blobs/sha256/<hex>
//! ```
//!
//! Naming, on read, per index.json descriptor:
//! - a ref.name that is a whole reference (`repo:tag`, `host/repo:tag`, `repo@sha256:…`)
//!   names the image; a host in it makes it the source;
//! - else, when `io.containerd.image.name` is there (containerd, `docker save` ≥ 25 write
//!   the full name there and only the tag in ref.name), its path is the repository, the
//!   bare ref.name (or its own tag) the tag;
//! - else a bare ref.name (skopeo `oci:DIR:TAG`) is a tag of the repository named after
//!   the layout directory (its path below the mirror root, or the root's own name), and a
//!   descriptor with no name at all is a digest-only image of that repository.
//!
//! `io.containerd.image.name`, when present, is always the source (original reference).
//! `dev.ferry.platforms` marks a sparse index: only those platforms' children are taken
//! (`sparse.rs`), on read and, for an image that records it, again on write.
//! `dev.ferry.target-repository` names the repository path the image is to have at the
//! destination (the image set's `targetRepo`); checked with oci's repository grammar on
//! read, and written again for an image that has one.
//! `dev.ferry.catalog-packages` names the packages of an operator catalog ferry pulled
//! (sorted, comma-separated); checked on read, written again for an image that has them.
//!
//! Naming, on write: ref.name is `<repository>:<tag>` for each tag, or
//! `<repository>@sha256:<hex>` for an image without tags; both match skopeo's `oci:DIR:NAME`
//! name grammar (containers/image `oci/internal` refRegexp, which follows the image-spec
//! ref.name grammar), so `skopeo copy oci:DIR:<repository>:<tag>` reads exactly one image.
//! Descriptors keep the manifest's own media type, since converting would change digests.
//! containers/image (skopeo 1.9.3 and later) selects by ref.name only descriptors typed
//! as OCI manifest or index, so Docker schema 2 images in the layout are there for
//! crane, containerd, oras and ferry itself, but not selectable by `skopeo … oci:DIR:NAME`;
//! extract those to `dir:` or to the original layout instead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::closure::{existing_file, read_capped, Collector, Store};
use crate::digest;
use crate::error::MirrorError;
use crate::index_in::for_each_descriptor;
use crate::layout_dir::repository_for_dir;
use crate::model::{Image, MediaType};
use crate::sparse::Platforms;
use crate::tree::Class;
use crate::write::{finish_sync, prepare_dest, sync_at_end, write_verified, BoxError, Commit};
use oci::media_type::OCI_INDEX;
use oci::Digest;
use oci::Written;

pub use crate::layout_dir::OCI_LAYOUT_FILE;
pub use oci::annotation::{
    CONTAINERD_NAME, FERRY_CATALOG_PACKAGES, FERRY_TARGET_REPOSITORY, REF_NAME,
};
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// index.json of a full catalog lists ~10^4 descriptors: a few MB.
pub(crate) const MAX_INDEX_SIZE: u64 = 256 * 1024 * 1024;

pub(crate) struct OciStore {
    pub dir: PathBuf,
}

impl Store for OciStore {
    fn manifest_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        self.blob_file(hex)
    }
    fn blob_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        existing_file(self.dir.join("blobs/sha256").join(hex))
    }
}

#[derive(Deserialize)]
struct LayoutVersion {
    #[serde(rename = "imageLayoutVersion")]
    version: String,
}

/// Tree classification for the layouts at `layouts` (relative paths, `""` = the root):
/// `blobs/sha256/<hex>` files are blobs; `oci-put-blob*` temporaries that containers/image
/// leaves in a layout's directory when a copy fails are leftovers.
pub(crate) fn classify(layouts: &BTreeSet<String>, rel: &str, is_dir: bool) -> Class {
    let parts: Vec<&str> = rel.split('/').collect();
    let n = parts.len();
    if let Some((last, parent)) = parts.split_last() {
        if last.starts_with("oci-put-blob") && layouts.contains(&parent.join("/")) {
            return Class::Skip;
        }
    }
    if n >= 3
        && !is_dir
        && parts[n - 3] == "blobs"
        && parts[n - 2] == "sha256"
        && layouts.contains(&parts[..n - 3].join("/"))
    {
        if let Ok(d) = oci::Digest::from_hex(parts[n - 1]) {
            return Class::Blob(d);
        }
    }
    Class::Plain
}

/// Repository, tag and source of one index.json descriptor (see the module docs).
pub(crate) fn name_image(
    layout_repo: &str,
    ref_name: Option<&str>,
    containerd_name: Option<&str>,
    digest: &str,
    index: &Path,
) -> Result<(String, Option<String>, Option<String>), MirrorError> {
    let ref_name = ref_name.filter(|r| !r.is_empty());
    let containerd_name = containerd_name.filter(|r| !r.is_empty());
    let bare_tag = ref_name.filter(|r| !r.contains('/') && !r.contains(':') && !r.contains('@'));
    let full = match (ref_name, bare_tag) {
        (Some(r), None) => Some(r),
        _ => None,
    };
    if let Some(r) = full {
        let p = parse_full(r, digest, index)?;
        let source = containerd_name.or(p.host.map(|_| r)).map(str::to_string);
        return Ok((p.path.to_string(), p.tag.map(str::to_string), source));
    }
    if let Some(c) = containerd_name {
        // containerd and docker save: ref.name is the tag, the full name is here.
        let p = Written::parse(c).map_err(|e| {
            MirrorError::malformed(
                index,
                format!("{CONTAINERD_NAME} {c:?} is not a reference: {e}"),
            )
        })?;
        let tag = bare_tag.or(p.tag).map(str::to_string);
        return Ok((p.path.to_string(), tag, Some(c.to_string())));
    }
    Ok((layout_repo.to_string(), bare_tag.map(str::to_string), None))
}

/// A ref.name that is a whole reference; one pinned to a digest must pin this descriptor's.
fn parse_full<'a>(r: &'a str, digest: &str, index: &Path) -> Result<Written<'a>, MirrorError> {
    let p = Written::parse(r).map_err(|e| {
        MirrorError::malformed(index, format!("ref.name {r:?} is not a reference: {e}"))
    })?;
    if let Some(pinned) = p.digest {
        if pinned.to_string() != digest {
            return Err(MirrorError::malformed(
                index,
                format!("ref.name {r:?} pins {pinned}, but its descriptor is {digest}"),
            ));
        }
    }
    Ok(p)
}

/// The `dev.ferry.target-repository` of a descriptor (of `image`, in `index`), checked to
/// be a repository path without host, tag or digest: it becomes part of a push's
/// destination, so a name no registry takes is refused here, naming where it was found.
pub(crate) fn target_repository(
    value: Option<&str>,
    index: &Path,
    image: &str,
) -> Result<Option<String>, MirrorError> {
    let Some(v) = value else {
        return Ok(None);
    };
    oci::name::check_repository(v).map_err(|e| {
        MirrorError::malformed(
            index,
            format!("{image}: annotation {FERRY_TARGET_REPOSITORY}: {e} (it is the repository path at the destination, without registry host)"),
        )
    })?;
    Ok(Some(v.to_owned()))
}

/// The `dev.ferry.catalog-packages` of a descriptor (of `image`, in `index`): package names
/// joined by `,`, sorted, each once, none empty or holding a control character, as the
/// bundle requires them (SPEC.md §4.2, M26), so a cache that says otherwise is refused
/// here, naming where, rather than producing a bundle no reader takes. The empty string is
/// a catalog that holds no package (a selection that kept none).
pub(crate) fn catalog_packages(
    value: Option<&str>,
    index: &Path,
    image: &str,
) -> Result<Option<Vec<String>>, MirrorError> {
    let Some(v) = value else {
        return Ok(None);
    };
    let bad = |why: &str| {
        MirrorError::malformed(
            index,
            format!("{image}: annotation {FERRY_CATALOG_PACKAGES} {v:?}: {why} (it lists the catalog's packages, sorted, comma-separated)"),
        )
    };
    if v.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let packages: Vec<String> = v.split(',').map(str::to_owned).collect();
    if packages
        .iter()
        .any(|p| p.is_empty() || p.chars().any(char::is_control))
    {
        return Err(bad("an empty name or a control character"));
    }
    if packages.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("not sorted, each once, in byte order"));
    }
    Ok(Some(packages))
}

/// Refuses a layout whose `oci-layout` is not image layout version 1.x.
pub(crate) fn check_layout_version(dir: &Path) -> Result<(), MirrorError> {
    let layout_file = dir.join(OCI_LAYOUT_FILE);
    let v: LayoutVersion =
        serde_json::from_slice(&read_capped(&layout_file, 4096)?).map_err(|e| {
            MirrorError::InvalidJson {
                path: layout_file.clone(),
                source: e,
            }
        })?;
    if !v.version.starts_with("1.") {
        return Err(MirrorError::malformed(
            &layout_file,
            format!(
                "image layout version {:?} is not supported (1.x is)",
                v.version
            ),
        ));
    }
    Ok(())
}

pub(crate) fn read_images(
    root: &Path,
    layouts: &[String],
    c: &mut Collector,
) -> Result<(), MirrorError> {
    for rel in layouts {
        c.end_scope();
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        check_layout_version(&dir)?;
        let index_path = dir.join("index.json");
        // The whole index first, as one that does not parse is refused before any image
        // is read; then again, each descriptor read and dropped in turn.
        for_each_descriptor(&index_path, MAX_INDEX_SIZE, |_| Ok(()))?;
        let repo = repository_for_dir(root, rel)?;
        let store = OciStore { dir: dir.clone() };
        for_each_descriptor(&index_path, MAX_INDEX_SIZE, |d| {
            digest::checked(&index_path, &d.digest)?;
            let a = &d.annotations;
            let (repository, tag, source) = name_image(
                &repo,
                a.ref_name.as_deref(),
                a.containerd_name.as_deref(),
                &d.digest,
                &index_path,
            )?;
            let sparse = match &a.platforms {
                Some(v) => {
                    let image = format!("{repository}@{}", d.digest);
                    Some(Platforms::parse(v, &index_path, &image)?)
                }
                None => None,
            };
            c.add_sparse_image(
                &store,
                &repository,
                tag.as_deref(),
                &d.digest,
                d.size,
                source,
                &index_path,
                sparse,
            )?;
            let image = || format!("{repository}@{}", d.digest);
            if let Some(to) =
                target_repository(a.target_repository.as_deref(), &index_path, &image())?
            {
                c.set_destination(&repository, &d.digest, to, &index_path)?;
            }
            if let Some(packages) =
                catalog_packages(a.catalog_packages.as_deref(), &index_path, &image())?
            {
                c.set_packages(&repository, &d.digest, packages, &index_path)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// One image as the `index.json` writer sees it, borrowed from the caller's own records
/// (a mirror's [`Image`] values or a bundle's), so that nothing is copied per image.
pub struct IndexImage<'a> {
    pub repository: &'a str,
    pub tags: &'a [String],
    /// The top-level manifest or index.
    pub digest: Digest,
    /// The manifest's media type, `None` when unknown (an error).
    pub media_type: Option<&'a str>,
    /// The manifest's size, `None` when unknown (an error).
    pub size: Option<u64>,
    pub source: Option<&'a str>,
    pub platforms: Option<&'a [String]>,
    pub destination: Option<&'a str>,
    pub packages: Option<&'a [String]>,
}

#[derive(Serialize)]
struct IndexOut<M> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: M,
}

#[derive(Serialize)]
struct DescriptorOut<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    digest: Digest,
    size: u64,
    annotations: AnnotationsOut<'a>,
}

/// The annotations of one descriptor, declared in byte order of their keys (as a sorted map
/// of them would be written), without a map per descriptor.
#[derive(Serialize)]
struct AnnotationsOut<'a> {
    // What a catalog holds, so the packages are named again when it is packed.
    #[serde(
        rename = "dev.ferry.catalog-packages",
        skip_serializing_if = "Option::is_none"
    )]
    packages: Option<String>,
    // A sparse index says so again, so that reading this layout back (or pushing it with
    // other tools' knowledge of ferry) knows which children are missing.
    #[serde(
        rename = "dev.ferry.platforms",
        skip_serializing_if = "Option::is_none"
    )]
    platforms: Option<String>,
    // Where the image goes, so that a layout extracted from a bundle packs again to the
    // same destination.
    #[serde(
        rename = "dev.ferry.target-repository",
        skip_serializing_if = "Option::is_none"
    )]
    destination: Option<&'a str>,
    #[serde(
        rename = "io.containerd.image.name",
        skip_serializing_if = "Option::is_none"
    )]
    source: Option<&'a str>,
    #[serde(rename = "org.opencontainers.image.ref.name")]
    ref_name: &'a str,
}

/// The descriptors, in ref.name order: each name with the image it comes from.
struct Descriptors<'f, 'a> {
    named: Vec<(String, u32)>,
    image: &'f dyn Fn(usize) -> IndexImage<'a>,
}

impl Serialize for Descriptors<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.named.len()))?;
        for (name, i) in &self.named {
            let image = (self.image)(*i as usize);
            // Both were checked when the names were collected.
            seq.serialize_element(&DescriptorOut {
                media_type: image.media_type.unwrap_or_default(),
                digest: image.digest,
                size: image.size.unwrap_or_default(),
                annotations: AnnotationsOut {
                    packages: image.packages.map(|p| p.join(",")),
                    platforms: image.platforms.map(|p| p.join(",")),
                    destination: image.destination,
                    source: image.source,
                    ref_name: name,
                },
            })?;
        }
        seq.end()
    }
}

/// The `index.json` of an OCI layout holding `images`: one descriptor per (image, tag), or
/// one per tagless image, sorted by ref.name (see the module docs for the names), with
/// `io.containerd.image.name` set to the original reference when known. A pure function of
/// its inputs: compact JSON, sorted keys, no trailing newline.
///
/// Media types come from `manifest_types`, else `Image::media_type`; sizes from `sizes`.
pub fn oci_index_json(
    images: &[Image],
    manifest_types: &BTreeMap<Digest, MediaType>,
    sizes: &BTreeMap<Digest, u64>,
) -> Result<Vec<u8>, MirrorError> {
    oci_index_json_sized(images, manifest_types, &|d| sizes.get(d).copied())
}

/// As [`oci_index_json`], with each blob's size from `size_of` (a digest's size, when
/// known), so that a caller holding the sizes in its own map need not copy them.
pub fn oci_index_json_sized(
    images: &[Image],
    manifest_types: &BTreeMap<Digest, MediaType>,
    size_of: &dyn Fn(&Digest) -> Option<u64>,
) -> Result<Vec<u8>, MirrorError> {
    let view = |i: usize| {
        let image = &images[i];
        IndexImage {
            repository: &image.repository,
            tags: &image.tags,
            digest: image.digest,
            media_type: manifest_types
                .get(&image.digest)
                .map(|t| &**t)
                .or(Some(&*image.media_type).filter(|t| !t.is_empty())),
            size: size_of(&image.digest),
            source: image.source.as_deref(),
            platforms: image.platforms.as_deref(),
            destination: image.destination.as_deref(),
            packages: image.packages.as_deref(),
        }
    };
    let mut out = Vec::new();
    write_oci_index(images.len(), &view, &mut out)?;
    Ok(out)
}

/// Writes the `index.json` of [`oci_index_json`] for `count` images, image `i` seen through
/// `image(i)`, into `out`. What it holds meanwhile is one name and index per descriptor.
pub fn write_oci_index<'a>(
    count: usize,
    image: &dyn Fn(usize) -> IndexImage<'a>,
    out: impl Write,
) -> Result<(), MirrorError> {
    let mut named: Vec<(String, u32)> = Vec::with_capacity(count);
    for i in 0..count {
        let img = image(i);
        let label = || format!("{}@{}", img.repository, img.digest);
        if img.media_type.is_none() {
            return Err(MirrorError::MissingMetadata {
                image: label(),
                what: "media type",
                digest: img.digest.to_string(),
            });
        }
        if img.size.is_none() {
            return Err(MirrorError::MissingMetadata {
                image: label(),
                what: "size",
                digest: img.digest.to_string(),
            });
        }
        if img.tags.is_empty() {
            named.push((format!("{}@{}", img.repository, img.digest), i as u32));
        } else {
            for t in img.tags {
                named.push((format!("{}:{t}", img.repository), i as u32));
            }
        }
    }
    // Stable: of one name, the images stay in their order, and the last one is written
    // (as a map keyed by name, filled in image order, would keep it).
    named.sort_by(|a, b| a.0.cmp(&b.0));
    // One name for two digests: the conflict met first in image order is the one reported,
    // against the image that held the name before it.
    let mut conflict: Option<(usize, u32, u32)> = None;
    for (at, w) in named.windows(2).enumerate() {
        let ((a, i), (b, j)) = (&w[0], &w[1]);
        if a == b
            && image(*i as usize).digest != image(*j as usize).digest
            && conflict.is_none_or(|(_, _, k)| *j < k)
        {
            conflict = Some((at, *i, *j));
        }
    }
    if let Some((at, i, j)) = conflict {
        let name = &named[at].0;
        let (repository, tag) = name.rsplit_once(':').unwrap_or((name, ""));
        return Err(MirrorError::DuplicateTag {
            path: PathBuf::from("index.json"),
            repository: repository.to_string(),
            tag: tag.to_string(),
            first: image(i as usize).digest.to_string(),
            second: image(j as usize).digest.to_string(),
        });
    }
    named.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 = later.1;
            true
        } else {
            false
        }
    });
    let index = IndexOut {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: Descriptors { named, image },
    };
    serde_json::to_writer(out, &index).map_err(|e| MirrorError::InvalidJson {
        path: PathBuf::from("index.json"),
        source: e,
    })
}

/// Writes one OCI image layout at `dest` (absent or empty) holding every image:
/// `oci-layout`, `blobs/sha256/<hex>` for every blob of every image (each once, streamed
/// from `open(digest)` and checked against its size and digest), and last `index.json`
/// from [`oci_index_json`], so an interrupted write leaves no index.
pub fn write_oci_layout<R, E>(
    dest: &Path,
    images: &[Image],
    manifest_types: &BTreeMap<Digest, MediaType>,
    blob_sizes: &BTreeMap<Digest, u64>,
    open: impl FnMut(&Digest) -> Result<R, E>,
) -> Result<(), MirrorError>
where
    R: Read,
    E: Into<BoxError>,
{
    let index = oci_index_json(images, manifest_types, blob_sizes)?;
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    for image in images {
        for b in &image.blobs {
            let size = *blob_sizes
                .get(b)
                .ok_or_else(|| MirrorError::MissingMetadata {
                    image: format!("{}@{}", image.repository, image.digest),
                    what: "size",
                    digest: b.to_string(),
                })?;
            blobs.insert(*b, size);
        }
    }
    write_oci_layout_with_index(dest, blobs, &index, open)
}

/// Writes an OCI image layout at `dest` (absent or empty): `oci-layout`, then
/// `blobs/sha256/<hex>` for each of `blobs` (checked digests, each once, with their
/// sizes; each streamed from `open(digest)` and checked), and last `index` as `index.json`,
/// so an interrupted write leaves no index. For a caller that has the index already (a
/// bundle's signed one) and its blobs in its own records.
pub fn write_oci_layout_with_index<R, E>(
    dest: &Path,
    blobs: impl IntoIterator<Item = (Digest, u64)>,
    index: &[u8],
    mut open: impl FnMut(&Digest) -> Result<R, E>,
) -> Result<(), MirrorError>
where
    R: Read,
    E: Into<BoxError>,
{
    prepare_dest(dest)?;
    let sync = sync_at_end(dest)?;
    let put = |rel: &str, bytes: &[u8], commit: Commit| {
        write_verified(
            dest,
            rel,
            &digest::sha256_bytes(bytes),
            bytes.len() as u64,
            0o644,
            Cursor::new(bytes),
            commit,
        )
    };
    put(OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT, Commit::AtEnd)?;
    for d in ["blobs", "blobs/sha256"] {
        let p = dest.join(d);
        std::fs::create_dir(&p).map_err(|e| MirrorError::io(p, e))?;
    }
    for (d, size) in blobs {
        let hex = d.hex();
        let reader = open(&d).map_err(|err| MirrorError::Open {
            entry: format!("blobs/sha256/{hex}"),
            digest: d.to_string(),
            source: err.into(),
        })?;
        write_verified(
            dest,
            &format!("blobs/sha256/{hex}"),
            &d,
            size,
            0o644,
            reader,
            Commit::AtEnd,
        )?;
    }
    // Every blob durable first: then the index that names them (module write, Durability).
    finish_sync(sync, dest)?;
    put("index.json", index, Commit::Now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_images_from_ref_name() {
        let d = format!("sha256:{}", "a".repeat(64));
        let p = Path::new("index.json");
        let n = |r: Option<&str>| name_image("layout/dir", r, None, &d, p);
        assert_eq!(n(None).unwrap(), ("layout/dir".into(), None, None));
        assert_eq!(
            n(Some("v1")).unwrap(),
            ("layout/dir".into(), Some("v1".into()), None)
        );
        assert_eq!(
            n(Some("a/b:v1")).unwrap(),
            ("a/b".into(), Some("v1".into()), None)
        );
        assert_eq!(
            n(Some("b:v1")).unwrap(),
            ("b".into(), Some("v1".into()), None)
        );
        assert_eq!(
            n(Some("quay.io/a/b:v1")).unwrap(),
            (
                "a/b".into(),
                Some("v1".into()),
                Some("quay.io/a/b:v1".into())
            )
        );
        assert_eq!(
            n(Some(&format!("a/b@{d}"))).unwrap(),
            ("a/b".into(), None, None)
        );
        let other = format!("a/b@sha256:{}", "b".repeat(64));
        assert!(matches!(
            n(Some(&other)),
            Err(MirrorError::MalformedLayout { .. })
        ));
    }

    #[test]
    fn containerd_name_names_images_without_a_full_ref_name() {
        let d = format!("sha256:{}", "a".repeat(64));
        let p = Path::new("index.json");
        // docker save >= 25: ref.name is the tag.
        assert_eq!(
            name_image(
                "x",
                Some("latest"),
                Some("docker.io/library/busybox:latest"),
                &d,
                p
            )
            .unwrap(),
            (
                "library/busybox".into(),
                Some("latest".into()),
                Some("docker.io/library/busybox:latest".into())
            )
        );
        // No ref.name: a digest-only image known by its full name.
        let c = format!("registry.redhat.io/ns/app@{d}");
        assert_eq!(
            name_image("x", None, Some(&c), &d, p).unwrap(),
            ("ns/app".into(), None, Some(c.clone()))
        );
        // A full ref.name wins for the name; containerd's is the source.
        assert_eq!(
            name_image("x", Some("ns/app:1"), Some("quay.io/ns/app:1"), &d, p).unwrap(),
            (
                "ns/app".into(),
                Some("1".into()),
                Some("quay.io/ns/app:1".into())
            )
        );
    }

    #[test]
    fn classifies_per_layout() {
        let layouts: BTreeSet<String> = ["".to_string(), "x/y".to_string()].into();
        let hex = "f".repeat(64);
        assert_eq!(
            classify(&layouts, &format!("blobs/sha256/{hex}"), false),
            Class::Blob(Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(
            classify(&layouts, &format!("x/y/blobs/sha256/{hex}"), false),
            Class::Blob(Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(
            classify(&layouts, &format!("x/blobs/sha256/{hex}"), false),
            Class::Plain
        );
        assert_eq!(
            classify(&layouts, "x/y/oci-put-blob123", false),
            Class::Skip
        );
        assert_eq!(classify(&layouts, "x/oci-put-blob123", false), Class::Plain);
    }

    fn image(repo: &str, tags: &[&str], d: char, source: Option<&str>) -> Image {
        Image {
            repository: repo.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            digest: Digest([d.to_digit(16).unwrap() as u8 * 0x11; 32]),
            media_type: oci::media_type::OCI_MANIFEST.into(),
            source: source.map(str::to_string),
            blobs: vec![],
            platforms: None,
            destination: None,
            packages: None,
        }
    }

    #[test]
    fn index_json_is_deterministic_and_names_every_tag() {
        let imgs = [
            image("b/repo", &["2", "1"], 'b', Some("quay.io/b/repo:1")),
            image("a", &[], 'a', None),
        ];
        let sizes: BTreeMap<Digest, u64> = imgs.iter().map(|i| (i.digest, 7)).collect();
        let types = BTreeMap::new();
        let j = oci_index_json(&imgs, &types, &sizes).unwrap();
        let mut rev = imgs.clone();
        rev.reverse();
        assert_eq!(j, oci_index_json(&rev, &types, &sizes).unwrap());
        let s = String::from_utf8(j).unwrap();
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let expected = format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#,
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{a}","size":7,"annotations":{{"org.opencontainers.image.ref.name":"a@{a}"}}}},"#,
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{b}","size":7,"annotations":{{"io.containerd.image.name":"quay.io/b/repo:1","org.opencontainers.image.ref.name":"b/repo:1"}}}},"#,
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{b}","size":7,"annotations":{{"io.containerd.image.name":"quay.io/b/repo:1","org.opencontainers.image.ref.name":"b/repo:2"}}}}]}}"#
            ),
            a = a,
            b = b
        );
        assert_eq!(s, expected);
    }

    #[test]
    fn index_json_refuses_gaps_and_conflicts() {
        let imgs = [image("r", &["t"], 'a', None), image("r", &["t"], 'b', None)];
        let sizes: BTreeMap<Digest, u64> = imgs.iter().map(|i| (i.digest, 1)).collect();
        let e = oci_index_json(&imgs, &BTreeMap::new(), &sizes).unwrap_err();
        assert!(matches!(e, MirrorError::DuplicateTag { .. }), "{e}");
        let e = oci_index_json(&imgs[..1], &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(e, MirrorError::MissingMetadata { what: "size", .. }),
            "{e}"
        );
        // A digest that is not sha256 hex (`sha256:../../etc`) cannot be an image's: the
        // model's digests are binary. Messages spell them as files do.
        let e = oci_index_json(&imgs[1..], &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "image r@sha256:{}: no size known for sha256:{}",
                "b".repeat(64),
                "b".repeat(64)
            )
        );
    }

    use crate::testkit::{hex, write, Kit};

    fn layout(dir: &Path, kit: &Kit, made: &[(&crate::testkit::Made, &str)]) {
        write(&dir.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT);
        let mut descs = Vec::new();
        for (m, annotations) in made {
            for b in &m.closure {
                write(&dir.join("blobs/sha256").join(hex(b)), kit.bytes(b));
            }
            descs.push(format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{{annotations}}}}}"#,
                m.media_type, m.digest, m.size
            ));
        }
        write(
            &dir.join("index.json"),
            format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, descs.join(",")).as_bytes(),
        );
    }

    #[test]
    fn reads_many_layouts_named_by_their_directories() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", true, 1);
        let t = tempfile::tempdir().unwrap();
        layout(
            &t.path().join("x/app"),
            &kit,
            &[(&a, r#""org.opencontainers.image.ref.name":"1.0""#)],
        );
        layout(&t.path().join("y"), &kit, &[(&b, "")]);
        let m = crate::read_mirror(t.path()).unwrap();
        assert_eq!(m.kind, crate::LayoutKind::Oci);
        let got: Vec<(&str, &[String], Digest)> = m
            .images
            .iter()
            .map(|i| (i.repository.as_str(), i.tags.as_slice(), i.digest))
            .collect();
        assert_eq!(
            got,
            [
                ("x/app", &["1.0".to_string()][..], a.digest),
                ("y", &[][..], b.digest)
            ]
        );
        assert_eq!(m.images[1].blobs, b.closure);
    }

    #[test]
    fn a_root_layout_is_named_after_the_root() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("busybox");
        layout(
            &root,
            &kit,
            &[(&a, r#""org.opencontainers.image.ref.name":"latest""#)],
        );
        let m = crate::read_mirror(&root).unwrap();
        assert_eq!(
            (m.images[0].repository.as_str(), m.images[0].tags.as_slice()),
            ("busybox", &["latest".to_string()][..])
        );
    }

    #[test]
    fn one_tag_for_two_digests_is_refused() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", false, 1);
        let t = tempfile::tempdir().unwrap();
        let ann = r#""org.opencontainers.image.ref.name":"r:t""#;
        layout(t.path(), &kit, &[(&a, ann), (&b, ann)]);
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(e, MirrorError::DuplicateTag { ref tag, .. } if tag == "t"),
            "{e}"
        );
        assert!(e.to_string().contains("index.json"), "{e}");

        // Also when the first image's manifest is absent: the tag is still taken (and the
        // error names both digests as `sha256:<hex>`).
        let t = tempfile::tempdir().unwrap();
        layout(t.path(), &kit, &[(&a, ann), (&b, ann)]);
        std::fs::remove_file(t.path().join("blobs/sha256").join(hex(&a.digest))).unwrap();
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(&e, MirrorError::DuplicateTag { first, second, .. }
                if *first == a.digest.to_string() && *second == b.digest.to_string()),
            "{e}"
        );
        assert!(
            e.to_string().ends_with(&format!(
                "tag r:t names both sha256:{} and sha256:{}",
                a.digest.hex(),
                b.digest.hex()
            )),
            "{e}"
        );
        // Named once, absent: the missing manifest is what is said.
        layout(t.path(), &kit, &[(&a, ann)]);
        std::fs::remove_file(t.path().join("blobs/sha256").join(hex(&a.digest))).unwrap();
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(&e, MirrorError::MissingBlobs { missing } if missing[0].missing == [a.digest]),
            "{e}"
        );
    }

    fn indexed(repository: &str, tags: &[&str], hex: char) -> Image {
        Image {
            repository: repository.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            digest: Digest([hex.to_digit(16).unwrap() as u8 * 0x11; 32]),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            source: None,
            blobs: Vec::new(),
            platforms: None,
            destination: None,
            packages: None,
        }
    }

    /// The index is written without a map per descriptor; its bytes are what a sorted map
    /// of names and of annotation keys gave (bundles signed by an older ferry hold them).
    #[test]
    fn the_index_has_sorted_names_and_annotation_keys() {
        let mut a = indexed("r", &["v2", "v1"], 'a');
        a.source = Some("quay.io/r:v1".into());
        a.platforms = Some(vec!["linux/amd64".into(), "linux/arm64".into()]);
        a.destination = Some("d/r".into());
        a.packages = Some(vec!["p".into(), "q".into()]);
        let b = indexed("b", &[], 'b');
        let sizes = |_: &Digest| Some(7);
        let json = oci_index_json_sized(&[a, b], &BTreeMap::new(), &sizes).unwrap();
        let (ha, hb) = ("a".repeat(64), "b".repeat(64));
        let mt = "application/vnd.oci.image.manifest.v1+json";
        let full = |name: &str| {
            format!(
                r#"{{"mediaType":"{mt}","digest":"sha256:{ha}","size":7,"annotations":{{"dev.ferry.catalog-packages":"p,q","dev.ferry.platforms":"linux/amd64,linux/arm64","dev.ferry.target-repository":"d/r","io.containerd.image.name":"quay.io/r:v1","org.opencontainers.image.ref.name":"{name}"}}}}"#
            )
        };
        let expected = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{mt}","digest":"sha256:{hb}","size":7,"annotations":{{"org.opencontainers.image.ref.name":"b@sha256:{hb}"}}}},{},{}]}}"#,
            full("r:v1"),
            full("r:v2")
        );
        assert_eq!(String::from_utf8(json).unwrap(), expected);
    }

    /// Of two images with one name, the later one's descriptor is written when they agree
    /// on the digest; when they do not, the first conflict in image order is reported.
    #[test]
    fn one_name_twice_keeps_the_later_image_or_names_the_conflict() {
        let a = indexed("r", &["t"], 'a');
        let mut again = indexed("r", &["t"], 'a');
        again.source = Some("x.io/r:t".into());
        let sizes = |_: &Digest| Some(1);
        let json = oci_index_json_sized(&[a.clone(), again], &BTreeMap::new(), &sizes).unwrap();
        let json = String::from_utf8(json).unwrap();
        assert_eq!(json.matches("ref.name").count(), 1, "{json}");
        assert!(json.contains("x.io/r:t"), "{json}");

        let images = [
            indexed("s", &["u"], 'c'),
            a,
            indexed("s", &["u"], 'd'),
            indexed("r", &["t"], 'b'),
        ];
        let e = oci_index_json_sized(&images, &BTreeMap::new(), &sizes).unwrap_err();
        match e {
            MirrorError::DuplicateTag {
                repository,
                tag,
                first,
                second,
                ..
            } => {
                assert_eq!((repository.as_str(), tag.as_str()), ("s", "u"));
                assert_eq!(first, format!("sha256:{}", "c".repeat(64)));
                assert_eq!(second, format!("sha256:{}", "d".repeat(64)));
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn unknown_layout_versions_are_refused() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let t = tempfile::tempdir().unwrap();
        layout(t.path(), &kit, &[(&a, "")]);
        write(
            &t.path().join(OCI_LAYOUT_FILE),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        );
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(matches!(e, MirrorError::MalformedLayout { .. }), "{e}");
        assert!(e.to_string().contains("2.0.0"), "{e}");
    }

    #[test]
    fn sizes_that_lie_are_refused() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let t = tempfile::tempdir().unwrap();
        layout(t.path(), &kit, &[(&a, "")]);
        // Grow the layer: the manifest still declares the old size.
        let layer = t.path().join("blobs/sha256").join(hex(&a.closure[2]));
        write(&layer, b"a longer layer than declared");
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(&e, MirrorError::SizeMismatch { path, .. } if *path == layer),
            "{e}"
        );
    }

    #[test]
    fn writes_a_layout_that_reads_back() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 2);
        let c = kit.image("c", true, 1);
        let list = kit.index(true, &[&a, &c]);
        let t = tempfile::tempdir().unwrap();
        layout(
            &t.path().join("in"),
            &kit,
            &[
                (&list, r#""org.opencontainers.image.ref.name":"ns/app:v1""#),
                (&a, ""),
            ],
        );
        let m = crate::read_mirror(&t.path().join("in")).unwrap();
        let sizes: BTreeMap<Digest, u64> = m.blobs.iter().map(|(d, b)| (*d, b.size)).collect();
        let out = t.path().join("out");
        let blobs = kit.blobs.clone();
        write_oci_layout(&out, &m.images, &m.manifest_types, &sizes, |d: &Digest| {
            blobs
                .get(d)
                .map(|b| Box::new(Cursor::new(b.clone())) as Box<dyn Read>)
                .ok_or("absent")
        })
        .unwrap();
        let back = crate::read_mirror(&out).unwrap();
        assert_eq!(back.images, m.images);
        assert_eq!(
            std::fs::read(out.join(OCI_LAYOUT_FILE)).unwrap(),
            OCI_LAYOUT_CONTENT
        );
        // One file per blob, no temporaries.
        assert_eq!(
            std::fs::read_dir(out.join("blobs/sha256")).unwrap().count(),
            kit.blobs.len()
        );
    }

    /// `dev.ferry.target-repository` (a pull cache's `targetRepo`) is the image's
    /// destination, written again on write; not a repository path, or two of them for one
    /// image, is refused naming the index.json and the image.
    #[test]
    fn a_target_repository_is_the_destination() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", false, 1);
        let t = tempfile::tempdir().unwrap();
        let src = r#""io.containerd.image.name":"registry.redhat.io/openshift4/app:v1","#;
        let named = |to: &str, tag: &str| {
            format!(
                r#"{src}"dev.ferry.target-repository":"{to}","org.opencontainers.image.ref.name":"{to}:{tag}""#
            )
        };
        let dir = t.path().join("ok");
        layout(
            &dir,
            &kit,
            &[
                (&a, &named("mirror/app", "stable")),
                (&b, r#""org.opencontainers.image.ref.name":"ns/b:1""#),
            ],
        );
        let m = crate::read_mirror(&dir).unwrap();
        let got: Vec<(&str, Option<&str>)> = m
            .images
            .iter()
            .map(|i| (i.repository.as_str(), i.destination.as_deref()))
            .collect();
        assert_eq!(got, [("mirror/app", Some("mirror/app")), ("ns/b", None)]);
        let sizes: BTreeMap<Digest, u64> = m.blobs.iter().map(|(d, b)| (*d, b.size)).collect();
        let index =
            String::from_utf8(oci_index_json(&m.images, &m.manifest_types, &sizes).unwrap())
                .unwrap();
        assert!(
            index.contains(
                r#""dev.ferry.target-repository":"mirror/app","io.containerd.image.name""#
            ),
            "{index}"
        );
        assert_eq!(index.matches(FERRY_TARGET_REPOSITORY).count(), 1, "{index}");

        for (bad, says) in [
            ("Mirror/app", "dev.ferry.target-repository"),
            ("quay.io:443/app", "dev.ferry.target-repository"),
            ("", "dev.ferry.target-repository"),
        ] {
            let dir = t.path().join(format!("bad{}", bad.len()));
            let ann = format!(
                r#""dev.ferry.target-repository":"{bad}","org.opencontainers.image.ref.name":"ns/a:1""#
            );
            layout(&dir, &kit, &[(&a, &ann)]);
            let e = crate::read_mirror(&dir).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("ns/a@") && e.contains("index.json"),
                "{bad:?}: {e}"
            );
        }
        // One image, two descriptors, two destinations: ambiguous.
        let dir = t.path().join("two");
        let one =
            r#""dev.ferry.target-repository":"x/one","org.opencontainers.image.ref.name":"ns/a:1""#;
        let two =
            r#""dev.ferry.target-repository":"x/two","org.opencontainers.image.ref.name":"ns/a:2""#;
        layout(&dir, &kit, &[(&a, one), (&a, two)]);
        let e = crate::read_mirror(&dir).unwrap_err().to_string();
        assert!(
            e.contains(r#"names both "x/one""#) && e.contains(r#""x/two""#),
            "{e}"
        );
    }

    /// `dev.ferry.catalog-packages` (a pull cache's rebuilt catalog) is read into the
    /// image's packages and written again on write (so an extracted layout packs again with
    /// them); names not sorted, empty or repeated, or two lists for one image, are refused
    /// naming the index.json and the image.
    #[test]
    fn catalog_packages_round_trip() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", false, 1);
        let t = tempfile::tempdir().unwrap();
        let named = |packages: &str, tag: &str| {
            format!(
                r#""dev.ferry.catalog-packages":"{packages}","org.opencontainers.image.ref.name":"ns/index:{tag}""#
            )
        };
        let dir = t.path().join("ok");
        layout(
            &dir,
            &kit,
            &[
                (&a, &named("cluster-logging,elasticsearch-operator", "v1")),
                (&b, r#""org.opencontainers.image.ref.name":"ns/b:1""#),
            ],
        );
        let m = crate::read_mirror(&dir).unwrap();
        let got: Vec<(&str, Option<Vec<String>>)> = m
            .images
            .iter()
            .map(|i| (i.repository.as_str(), i.packages.clone()))
            .collect();
        let both = vec![
            "cluster-logging".to_string(),
            "elasticsearch-operator".to_string(),
        ];
        assert_eq!(got, [("ns/b", None), ("ns/index", Some(both.clone()))]);
        let k = m.images.iter().position(|i| i.packages.is_some()).unwrap();
        let why = m
            .catalog_reason(k)
            .expect("a layout naming packages names a catalog");
        assert!(why.contains(FERRY_CATALOG_PACKAGES), "{why}");
        let sizes: BTreeMap<Digest, u64> = m.blobs.iter().map(|(d, b)| (*d, b.size)).collect();
        let index =
            String::from_utf8(oci_index_json(&m.images, &m.manifest_types, &sizes).unwrap())
                .unwrap();
        assert!(
            index.contains(r#"{"dev.ferry.catalog-packages":"cluster-logging,elasticsearch-operator","org.opencontainers.image.ref.name":"ns/index:v1"}"#),
            "{index}"
        );
        assert_eq!(index.matches(FERRY_CATALOG_PACKAGES).count(), 1, "{index}");
        // Written, then read back: the same packages.
        let again = t.path().join("again");
        write_oci_layout(
            &again,
            &m.images,
            &m.manifest_types,
            &sizes,
            |d: &Digest| std::fs::File::open(m.blob_path(&m.blobs[d])),
        )
        .unwrap();
        let back = crate::read_mirror(&again).unwrap();
        assert_eq!(back.images[k].packages, Some(both));

        for (n, (bad, says)) in [
            ("b,a", "not sorted"),
            ("a,a", "not sorted"),
            ("a,,b", "an empty name"),
            ("a\\u0007", "control character"),
        ]
        .into_iter()
        .enumerate()
        {
            let dir = t.path().join(format!("bad{n}"));
            layout(&dir, &kit, &[(&a, &named(bad, "v1"))]);
            let e = crate::read_mirror(&dir).unwrap_err().to_string();
            assert!(
                e.contains(says)
                    && e.contains(FERRY_CATALOG_PACKAGES)
                    && e.contains("ns/index@")
                    && e.contains("index.json"),
                "{bad:?}: {e}"
            );
        }
        // The empty string: a catalog that kept no package, and it says so again.
        let dir = t.path().join("empty");
        layout(&dir, &kit, &[(&a, &named("", "v1"))]);
        let m = crate::read_mirror(&dir).unwrap();
        assert_eq!(m.images[0].packages, Some(Vec::new()));
        let sizes: BTreeMap<Digest, u64> = m.blobs.iter().map(|(d, b)| (*d, b.size)).collect();
        let index =
            String::from_utf8(oci_index_json(&m.images, &m.manifest_types, &sizes).unwrap())
                .unwrap();
        assert!(
            index.contains(r#""dev.ferry.catalog-packages":"","#),
            "{index}"
        );

        let dir = t.path().join("two");
        layout(
            &dir,
            &kit,
            &[(&a, &named("x", "1")), (&a, &named("y", "2"))],
        );
        let e = crate::read_mirror(&dir).unwrap_err().to_string();
        assert!(
            e.contains(r#"names both "x""#) && e.contains(r#""y""#),
            "{e}"
        );
    }

    /// A multi-arch index with an amd64 and an arm64 child, and a layout holding it.
    fn two_platforms(
        kit: &mut Kit,
    ) -> (
        crate::testkit::Made,
        crate::testkit::Made,
        crate::testkit::Made,
    ) {
        let amd = kit.image("amd", false, 1);
        let arm = kit.image("arm", false, 2);
        let list = kit.index_of(false, &[(&amd, "linux/amd64"), (&arm, "linux/arm64/v8")]);
        (list, amd, arm)
    }

    fn drop_blobs(dir: &Path, made: &crate::testkit::Made) {
        for b in &made.closure {
            std::fs::remove_file(dir.join("blobs/sha256").join(hex(b))).unwrap();
        }
    }

    #[test]
    fn a_sparse_index_takes_only_the_children_of_its_platforms() {
        let mut kit = Kit::default();
        let (list, amd, arm) = two_platforms(&mut kit);
        let t = tempfile::tempdir().unwrap();
        let ann = r#""dev.ferry.platforms":"linux/amd64","org.opencontainers.image.ref.name":"ns/app:v1""#;
        layout(t.path(), &kit, &[(&list, ann)]);
        drop_blobs(t.path(), &arm);
        let m = crate::read_mirror(t.path()).unwrap();
        let img = &m.images[0];
        assert_eq!(
            img.platforms.as_deref(),
            Some(&["linux/amd64".to_string()][..])
        );
        let mut expected = vec![list.digest];
        expected.extend(amd.closure.iter().cloned());
        assert_eq!(img.blobs, expected);
        assert!(!m.blobs.contains_key(&arm.digest));

        // Written out again, the layout says so, and reads back the same.
        let sizes: BTreeMap<Digest, u64> = m.blobs.iter().map(|(d, b)| (*d, b.size)).collect();
        let index =
            String::from_utf8(oci_index_json(&m.images, &m.manifest_types, &sizes).unwrap())
                .unwrap();
        assert!(
            index.contains(r#""annotations":{"dev.ferry.platforms":"linux/amd64","org.opencontainers.image.ref.name":"ns/app:v1"}"#),
            "{index}"
        );
        let out = t.path().join("out");
        let blobs = kit.blobs.clone();
        write_oci_layout(&out, &m.images, &m.manifest_types, &sizes, |d: &Digest| {
            blobs
                .get(d)
                .map(|b| Box::new(Cursor::new(b.clone())) as Box<dyn Read>)
                .ok_or("absent")
        })
        .unwrap();
        assert_eq!(crate::read_mirror(&out).unwrap().images, m.images);
    }

    #[test]
    fn without_the_annotation_a_missing_child_is_still_an_error() {
        let mut kit = Kit::default();
        let (list, _, arm) = two_platforms(&mut kit);
        let t = tempfile::tempdir().unwrap();
        layout(
            t.path(),
            &kit,
            &[(&list, r#""org.opencontainers.image.ref.name":"ns/app:v1""#)],
        );
        drop_blobs(t.path(), &arm);
        let e = crate::read_mirror(t.path()).unwrap_err();
        match &e {
            MirrorError::MissingBlobs { missing } => {
                assert_eq!(missing[0].missing, std::slice::from_ref(&arm.digest), "{e}")
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_listed_platform_must_be_there_whole() {
        let mut kit = Kit::default();
        let (list, _, arm) = two_platforms(&mut kit);
        let t = tempfile::tempdir().unwrap();
        // arm64 is listed (without its variant: every variant) but one of its layers is gone.
        let ann = r#""dev.ferry.platforms":"linux/amd64,linux/arm64","org.opencontainers.image.ref.name":"ns/app:v1""#;
        layout(t.path(), &kit, &[(&list, ann)]);
        std::fs::remove_file(t.path().join("blobs/sha256").join(hex(&arm.closure[3]))).unwrap();
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(&e, MirrorError::MissingBlobs { missing } if missing[0].missing == [arm.closure[3]]),
            "{e}"
        );
        // A platform the index does not have at all is refused, naming it.
        let ann = r#""dev.ferry.platforms":"linux/amd64,linux/s390x","org.opencontainers.image.ref.name":"ns/app:v1""#;
        layout(t.path(), &kit, &[(&list, ann)]);
        let e = crate::read_mirror(t.path()).unwrap_err().to_string();
        assert!(
            e.contains("lists linux/s390x") && e.contains("index.json"),
            "{e}"
        );
        let ann =
            r#""dev.ferry.platforms":"linux","org.opencontainers.image.ref.name":"ns/app:v1""#;
        layout(t.path(), &kit, &[(&list, ann)]);
        let e = crate::read_mirror(t.path()).unwrap_err().to_string();
        assert!(e.contains("dev.ferry.platforms \"linux\""), "{e}");
    }

    #[test]
    fn sparse_means_a_child_was_left_out() {
        let mut kit = Kit::default();
        let (list, amd, arm) = two_platforms(&mut kit);
        let t = tempfile::tempdir().unwrap();
        // Every child is present, but only amd64 is asked for: arm64 stays out of the image.
        let ann = r#""dev.ferry.platforms":"linux/amd64","org.opencontainers.image.ref.name":"ns/app:v1""#;
        layout(t.path(), &kit, &[(&list, ann)]);
        let m = crate::read_mirror(t.path()).unwrap();
        assert_eq!(m.images[0].platforms, Some(vec!["linux/amd64".to_string()]));
        assert!(!m.images[0].blobs.contains(&arm.digest));
        // Every platform listed: nothing left out, not sparse.
        let ann = r#""dev.ferry.platforms":"linux/arm64/v8,linux/amd64","org.opencontainers.image.ref.name":"ns/app:v1""#;
        layout(t.path(), &kit, &[(&list, ann)]);
        let m = crate::read_mirror(t.path()).unwrap();
        assert_eq!(m.images[0].platforms, None);
        assert_eq!(m.images[0].blobs, list.closure);
        // Two names for one image: one of them whole makes the image whole.
        let sparse = r#""dev.ferry.platforms":"linux/amd64","org.opencontainers.image.ref.name":"ns/app:v1""#;
        let whole = r#""org.opencontainers.image.ref.name":"ns/app:v2""#;
        layout(t.path(), &kit, &[(&list, sparse), (&list, whole)]);
        let m = crate::read_mirror(t.path()).unwrap();
        assert_eq!((m.images.len(), m.images[0].platforms.clone()), (1, None));
        assert_eq!(m.images[0].blobs, list.closure);
        // Two sparse names: the children of both platforms.
        let arm_only = r#""dev.ferry.platforms":"linux/arm64","org.opencontainers.image.ref.name":"ns/app:v2""#;
        layout(t.path(), &kit, &[(&list, sparse), (&list, arm_only)]);
        let m = crate::read_mirror(t.path()).unwrap();
        assert_eq!(
            m.images[0].platforms, None,
            "both platforms: nothing left out"
        );
        assert_eq!(m.images[0].blobs, list.closure);
        let _ = amd;
    }
}
