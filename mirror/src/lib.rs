//! Image-mirror layouts: detecting and reading the four inputs of ferry-pack
//! (oc `file://`, OCI image layouts, distribution registry storage, skopeo `dir:`),
//! and writing the layouts ferry-unpack extracts to.
//!
//! What this crate must not do: know bundles or registries, or trust a byte of a mirror it
//! has not hashed (every blob is re-hashed and a mismatch names the file).
//!
//! - [`read_mirror`] detects the layout of a directory and reads it into a [`Mirror`]:
//!   blobs, manifest media types, images with their closures, and the whole file tree.
//! - [`read_oci_selection`] reads only some images of an OCI layout (the pull cache) as a
//!   mirror of their own, for packing one image set out of a cache holding many.
//! - [`write_tree`] restores a tree byte for byte; [`write_oci_layout`] writes one OCI
//!   layout holding every image, with the `index.json` from [`oci_index_json`].
#![forbid(unsafe_code)]

mod catalog;
mod closure;
mod detect;
pub mod digest;
pub mod error;
mod index_in;
mod layout_dir;
pub mod manifest;
pub mod model;
mod oc_file;
pub mod oci_layout;
mod registry_storage;
mod selection;
mod skopeo_dir;
mod sparse;
#[cfg(test)]
mod testkit;
mod tree;
pub mod write;

use std::collections::BTreeSet;
use std::path::Path;

pub use error::{MirrorError, MissingIn};
pub use model::{BlobFile, CatalogMark, Digest, Image, LayoutKind, MediaType, Mirror, TreeEntry};
pub use oci_layout::{
    oci_index_json, oci_index_json_sized, write_oci_index, write_oci_layout,
    write_oci_layout_with_index, IndexImage,
};
pub use selection::read_oci_selection;
pub use write::write_tree;

use closure::Collector;
use detect::Detected;

/// Detects which layout `root` holds and reads it (README.md "Input layouts").
///
/// Manifests are read, hashed against their digests and parsed; other blobs are only
/// located (ferry-pack re-hashes them). Files that are not blobs are hashed for the tree.
/// Every blob an image needs but the mirror lacks is collected first and reported in one
/// [`MirrorError::MissingBlobs`].
pub fn read_mirror(root: &Path) -> Result<Mirror, MirrorError> {
    let detected = detect::detect(root)?;
    let kind = detected.kind();
    let (tree, skipped) = match &detected {
        Detected::OcFile(_) => tree::walk(root, &oc_file::classify)?,
        Detected::RegistryStorage(_) => tree::walk(root, &registry_storage::classify)?,
        Detected::Oci(layouts) => {
            let set: BTreeSet<String> = layouts.iter().cloned().collect();
            tree::walk(root, &|rel: &str, is_dir: bool| {
                oci_layout::classify(&set, rel, is_dir)
            })?
        }
        Detected::SkopeoDir(dirs) => {
            let set: BTreeSet<String> = dirs.iter().cloned().collect();
            tree::walk(root, &|rel: &str, is_dir: bool| {
                skopeo_dir::classify(&set, rel, is_dir)
            })?
        }
    };
    let mut c = Collector::with_tree(root, &tree);
    match &detected {
        Detected::OcFile(repos) => oc_file::read_images(root, repos, &mut c)?,
        Detected::RegistryStorage(repos) => registry_storage::read_images(root, repos, &mut c)?,
        Detected::Oci(layouts) => oci_layout::read_images(root, layouts, &mut c)?,
        Detected::SkopeoDir(dirs) => skopeo_dir::read_images(root, dirs, &mut c)?,
    }
    let (blobs, manifest_types, images) = c.finish()?;
    let (catalogs, unresolved_catalogs) = match &detected {
        Detected::OcFile(_) => oc_file::catalog_marks(root, &images)?,
        _ => (Vec::new(), Vec::new()),
    };
    Ok(Mirror {
        root: root.to_path_buf(),
        kind,
        blobs,
        manifest_types,
        images,
        tree,
        skipped,
        catalogs,
        unresolved_catalogs,
    })
}
