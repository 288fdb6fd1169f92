//! The pack order (SPEC.md §5.3 "Pack order"): the number each blob of a bundle gets, which
//! with the planner decides where every byte goes. Blobs go in image order (each image's
//! manifest, config and layers together) so that a volume holds whole images where it can
//! and pushing it alone completes them; files that no image needs (mapping.txt, index.json,
//! link files …) follow, by digest. For a delta bundle (SPEC.md §4.5) the order also
//! decides which blobs are left to the base.
//!
//! The input is what a mirror reader lists, in the format's terms; reading the mirror is
//! the caller's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::digest::Digest;
use crate::pack::{BlobPaths, SourceBlob};

/// What the inside already holds (`ferry-pack --base`): blob digest → the original
/// repository path of an image that held it, when known (where a push can mount it from).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Base {
    pub blobs: HashMap<Digest, Option<String>>,
}

impl Base {
    /// Records that the inside holds `digest`; the first place known for it is kept.
    pub fn hold(&mut self, digest: Digest, at: Option<&str>) {
        let entry = self.blobs.entry(digest).or_insert(None);
        if entry.is_none() {
            *entry = at.map(str::to_owned);
        }
    }
}

/// A file the order numbers: a blob of an image, or a file of the mirror's tree. Built only
/// for a blob the order has not numbered yet (see [`PackOrder::number`]), so its path and
/// media type move into the pack order's [`SourceBlob`] rather than being copied: at a
/// full catalog there are 10^5 of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: Digest,
    pub size: u64,
    /// Where to read the bytes.
    pub path: PathBuf,
    /// The media type, for a manifest or an index.
    pub media_type: Option<String>,
}

/// The blobs in pack order, and each image's blobs by number. Built image by image
/// ([`PackOrder::add_image`]), then the tree's other files ([`PackOrder::add_files`]),
/// in that order: each image's blobs in the order given (its manifest, config and layers),
/// the images in the mirror's order (by repository, then top-level digest), skipping blobs
/// already numbered; then the files no image needs, in byte order of digest (files with
/// equal content share one blob; the first path given is read). Manifests are always
/// carried (they are small, and tags are pushed from them); layers and configs that the
/// base holds are left to it; files of the tree alone are always carried.
#[derive(Debug, Clone, Default)]
pub struct PackOrder {
    pub blobs: Vec<SourceBlob>,
    /// For each image added, the numbers of its blobs, in the order given.
    pub images: Vec<Vec<u32>>,
    numbers: HashMap<Digest, u32>,
    /// The texts the blobs' paths share (see [`BlobPaths`]).
    paths: BlobPaths,
}

impl PackOrder {
    /// An order with room for `blobs` blobs: at 10^5 blobs, growing by doubling would
    /// carry up to half again of the records and, while a table grows, two tables at once.
    pub fn with_capacity(blobs: usize) -> PackOrder {
        PackOrder {
            blobs: Vec::with_capacity(blobs),
            images: Vec::new(),
            numbers: HashMap::with_capacity(blobs),
            paths: BlobPaths::default(),
        }
    }

    /// The number of the blob with `digest`, if it was given.
    pub fn number(&self, digest: &Digest) -> Option<u32> {
        self.numbers.get(digest).copied()
    }

    /// Numbers one image's blobs, given by digest; `locate` is asked for each blob not
    /// numbered yet (once per blob of the whole order), and its error stops the image.
    pub fn add_image<E>(
        &mut self,
        blobs: impl ExactSizeIterator<Item = Digest>,
        base: &Base,
        mut locate: impl FnMut(&Digest) -> Result<Candidate, E>,
    ) -> Result<(), E> {
        let mut numbers = Vec::with_capacity(blobs.len());
        for digest in blobs {
            let n = match self.number(&digest) {
                Some(n) => n,
                None => self.add(locate(&digest)?, Some(base)),
            };
            numbers.push(n);
        }
        self.images.push(numbers);
        Ok(())
    }

    /// Numbers the tree's files that no image needs, in byte order of digest, the first of
    /// equal digests read; files already numbered are skipped.
    pub fn add_files(&mut self, files: impl IntoIterator<Item = Candidate>) {
        let mut rest: BTreeMap<Digest, Candidate> = BTreeMap::new();
        for c in files {
            if !self.numbers.contains_key(&c.digest) {
                rest.entry(c.digest).or_insert(c);
            }
        }
        for c in rest.into_values() {
            self.add(c, None);
        }
    }

    /// The order, complete. It lives until the last volume is written: doubling's slack
    /// (up to half) is returned rather than carried through pack's peak.
    pub fn finish(mut self) -> PackOrder {
        self.blobs.shrink_to_fit();
        self.images.shrink_to_fit();
        // The blobs hold the texts they share; nothing more is added.
        self.paths = BlobPaths::default();
        self
    }

    /// The blob's number, adding it at the end.
    fn add(&mut self, c: Candidate, base: Option<&Base>) -> u32 {
        let i = self.blobs.len() as u32;
        let base = match (&c.media_type, base) {
            (None, Some(base)) => base.blobs.get(&c.digest).cloned(),
            _ => None,
        };
        self.numbers.insert(c.digest, i);
        self.blobs.push(SourceBlob {
            digest: c.digest,
            size: c.size,
            at: self.paths.hold(c.path, &c.digest),
            media_type: c.media_type,
            base,
        });
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8, media_type: Option<&'static str>) -> Candidate {
        Candidate {
            digest: Digest([n; 32]),
            size: u64::from(n),
            path: PathBuf::from(format!("/m/{n}")),
            media_type: media_type.map(str::to_owned),
        }
    }

    /// The order of `images` then `tree`, as a mirror reader would give them; `locate` is
    /// asked once per blob.
    fn pack_order(images: &[Vec<Candidate>], tree: &[Candidate], base: &Base) -> PackOrder {
        let mut order = PackOrder::default();
        let mut asked = std::collections::HashSet::new();
        for blobs in images {
            let locate = |d: &Digest| {
                assert!(asked.insert(*d), "{d} located twice");
                Ok::<_, ()>(blobs.iter().find(|c| c.digest == *d).unwrap().clone())
            };
            order
                .add_image(blobs.iter().map(|c| c.digest), base, locate)
                .unwrap();
        }
        order.add_files(tree.iter().cloned());
        order.finish()
    }

    #[test]
    fn images_first_each_blob_once_then_tree_files_by_digest() {
        let m = Some("application/vnd.oci.image.manifest.v1+json");
        let images = vec![
            vec![file(9, m), file(3, None), file(4, None)],
            vec![file(8, m), file(4, None), file(5, None)],
        ];
        let tree = vec![file(7, None), file(3, None), file(1, None), file(7, None)];
        let o = pack_order(&images, &tree, &Base::default());
        let digests: Vec<u8> = o.blobs.iter().map(|b| b.digest.0[0]).collect();
        assert_eq!(digests, [9, 3, 4, 8, 5, 1, 7]);
        assert_eq!(o.images, [vec![0, 1, 2], vec![3, 2, 4]]);
        assert_eq!(o.number(&Digest([7; 32])), Some(6));
        assert_eq!(o.number(&Digest([2; 32])), None);
    }

    #[test]
    fn the_base_takes_layers_and_configs_never_manifests_or_tree_files() {
        let m = Some("application/vnd.oci.image.manifest.v1+json");
        let mut base = Base::default();
        for n in [9, 3, 7] {
            base.hold(Digest([n; 32]), Some("first/place"));
        }
        base.hold(Digest([3; 32]), Some("second/place"));
        let images = vec![vec![file(9, m), file(3, None), file(4, None)]];
        let o = pack_order(&images, &[file(7, None)], &base);
        let left: Vec<Option<Option<String>>> = o.blobs.iter().map(|b| b.base.clone()).collect();
        assert_eq!(
            left,
            [None, Some(Some("first/place".to_owned())), None, None]
        );
    }
}
