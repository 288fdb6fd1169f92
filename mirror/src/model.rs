//! What a mirror is, whatever layout it was read from: the content-addressed blobs,
//! the images (top-level manifests with their tags and original references), and the
//! whole file tree, so the layout can be restored byte for byte.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use oci::Digest;

/// A media type as the model keeps it: a mirror has a handful of distinct ones, shared by
/// every manifest (one allocation per distinct type, not one per manifest).
pub type MediaType = Arc<str>;

/// The on-disk layouts ferry-pack reads (README.md "Input layouts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LayoutKind {
    /// `oc image mirror` / `oc adm catalog mirror … file://DIR`.
    OcFile,
    /// One or many OCI image layouts.
    Oci,
    /// A CNCF distribution registry's filesystem storage.
    RegistryStorage,
    /// One or many skopeo `dir:` layouts.
    SkopeoDir,
}

impl LayoutKind {
    /// The name used in the bundle manifest and in messages.
    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::OcFile => "oc-mirror",
            LayoutKind::Oci => "oci",
            LayoutKind::RegistryStorage => "registry-storage",
            LayoutKind::SkopeoDir => "skopeo-dir",
        }
    }
}

/// A file in the mirror whose name claims its content digest (`sha256:<hex>`).
/// The claim is checked by whoever reads the bytes (ferry-pack re-hashes every blob).
/// Where it is: [`Mirror::blob_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFile {
    pub size: u64,
    at: BlobAt,
}

/// Where a blob's file is. Nearly always a file of the tree, so a path per blob (at
/// 1.8×10^5 blobs, 17 MB) is kept only for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BlobAt {
    /// Entry `i` of [`Mirror::tree`] (read as [`Mirror::file_source`] says).
    Tree(u32),
    /// A path of its own: a file the tree does not list under that name (reached through
    /// a directory link, which the walk does not follow). Boxed again so that the common
    /// case, a tree entry, is 16 bytes a blob.
    Path(Box<PathBuf>),
}

impl BlobFile {
    /// A blob in the file at `path`.
    pub fn at_path(path: impl Into<PathBuf>, size: u64) -> BlobFile {
        BlobFile {
            size,
            at: BlobAt::Path(Box::new(path.into())),
        }
    }

    /// A blob in the file of tree entry `entry`.
    pub(crate) fn in_tree(entry: usize, size: u64) -> BlobFile {
        let at = u32::try_from(entry).expect("fewer than 2^32 tree entries");
        BlobFile {
            size,
            at: BlobAt::Tree(at),
        }
    }

    /// The entry of [`Mirror::tree`] whose file holds the blob, when one does (nearly
    /// always; else [`BlobFile::own_path`]).
    pub fn tree_entry(&self) -> Option<usize> {
        match self.at {
            BlobAt::Tree(i) => Some(i as usize),
            BlobAt::Path(_) => None,
        }
    }

    /// The path the blob keeps of its own, when it is not a tree entry's.
    pub fn own_path(&self) -> Option<&Path> {
        match &self.at {
            BlobAt::Tree(_) => None,
            BlobAt::Path(p) => Some(p.as_path()),
        }
    }
}

/// A top-level image: a manifest or index that a tag (or a digest-only reference) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Repository path inside the mirror, e.g. `efk-mirror/openshift4/ose-elasticsearch-proxy`.
    pub repository: String,
    /// Tags that point at `digest` in this repository, sorted. Empty for digest-only images.
    pub tags: Vec<String>,
    /// The top-level manifest or index (written `sha256:<hex>` in messages and files).
    pub digest: Digest,
    pub media_type: MediaType,
    /// The original reference the image was mirrored from, when the layout records it
    /// (e.g. `registry.redhat.io/openshift4/ose-elasticsearch-proxy@sha256:…`).
    pub source: Option<String>,
    /// Every blob the image needs, each once: the top-level manifest first, then for each
    /// manifest its children (for an index), config and layers, depth first.
    pub blobs: Vec<Digest>,
    /// A sparse index (`dev.ferry.platforms` in an OCI layout's index.json): the platforms
    /// (`os/arch[/variant]`, sorted) whose children `blobs` holds; the other children are
    /// left out. `None` when every child is there.
    pub platforms: Option<Vec<String>>,
    /// The repository path (without host) the image is to have at the destination, when the
    /// layout names one (`dev.ferry.target-repository` in an OCI layout's index.json: the
    /// image set's `targetRepo`). `None`: the destination follows the source's path.
    pub destination: Option<String>,
    /// For an operator catalog ferry pulled: the packages it holds (sorted, each once), when
    /// the layout records them (`dev.ferry.catalog-packages` in an OCI layout's index.json).
    pub packages: Option<Vec<String>>,
}

/// One entry of the mirror's file tree, relative to its root, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    Dir {
        path: String,
    },
    File {
        path: String,
        /// The content's digest: claimed by the name for blob files, computed for others.
        digest: Digest,
        size: u64,
        /// Unix permission bits.
        mode: u32,
        /// Where to read the bytes when that is not `<root>/<path>` (a file the reader
        /// synthesized elsewhere); `None`, the common case, costs nothing per file. Read it
        /// through [`Mirror::file_source`].
        source: Option<Box<Path>>,
    },
    Symlink {
        path: String,
        /// Relative target, never leaving the mirror.
        target: String,
    },
    /// Another name of a file listed earlier (oc hard-links manifests and shared blobs):
    /// restored as a hard link, so a catalog takes its space once, as it did.
    HardLink {
        path: String,
        /// Path of the earlier `File` entry.
        target: String,
    },
}

/// A mirror as read from disk.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub root: PathBuf,
    pub kind: LayoutKind,
    /// Every blob that some image needs, by digest (deduplicated across repositories).
    pub blobs: BTreeMap<Digest, BlobFile>,
    /// Media type of every manifest and index among `blobs`, by digest.
    pub manifest_types: BTreeMap<Digest, MediaType>,
    /// Images sorted by (repository, digest).
    pub images: Vec<Image>,
    /// Every directory, file and symlink below the root in sorted path order, leftovers excluded.
    pub tree: Vec<TreeEntry>,
    /// Leftovers of failed mirror runs that were skipped (`*.download`, `.tmp-*`), relative paths.
    pub skipped: Vec<String>,
    /// Images the layout itself names as operator catalogs (oc's `manifests-*/catalogSource.yaml`).
    pub catalogs: Vec<CatalogMark>,
    /// Catalogs the layout names that are not in it, each as a sentence for the user.
    pub unresolved_catalogs: Vec<String>,
}

/// An image that a file of the layout names as an operator catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogMark {
    /// Position in [`Mirror::images`].
    pub image: usize,
    /// The file that names it, relative to the mirror's root.
    pub file: String,
}

impl Mirror {
    /// Where to read blob `f` of this mirror.
    pub fn blob_path<'a>(&'a self, f: &'a BlobFile) -> Cow<'a, Path> {
        match &f.at {
            BlobAt::Tree(i) => self.file_source(&self.tree[*i as usize]),
            BlobAt::Path(p) => Cow::Borrowed(p.as_path()),
        }
    }

    /// Where to read the bytes of tree entry `entry` (a `File`): its own source when the
    /// reader gave it one, else `<root>/<path>`.
    pub fn file_source<'a>(&'a self, entry: &'a TreeEntry) -> Cow<'a, Path> {
        match entry {
            TreeEntry::File {
                source: Some(s), ..
            } => Cow::Borrowed(s),
            e => Cow::Owned(self.root.join(e.path())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At 1.8×10^5 blobs every byte of these records is 180 KB: they stay this small
    /// (binary digests, no path per tree file or blob).
    #[test]
    fn the_records_kept_per_blob_stay_small() {
        assert!(std::mem::size_of::<BlobFile>() <= 24);
        assert!(std::mem::size_of::<TreeEntry>() <= 88);
        assert_eq!(std::mem::size_of::<Digest>(), 32);
    }
}
