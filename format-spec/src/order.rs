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
use std::path::Path;

use crate::digest::Digest;
use crate::pack::SourceBlob;

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

/// A file the order numbers: a blob of an image, or a file of the mirror's tree. It borrows
/// from the mirror's model: an image's list of them is one per blob reference (10^5 at a
/// full catalog), and only the blobs numbered get a path of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub digest: Digest,
    pub size: u64,
    /// Where to read the bytes.
    pub path: &'a Path,
    /// The media type, for a manifest or an index.
    pub media_type: Option<&'a str>,
}

/// The blobs in pack order, and each image's blobs by number.
#[derive(Debug, Clone)]
pub struct PackOrder {
    pub blobs: Vec<SourceBlob>,
    /// For each image given, the numbers of its blobs, in the order given.
    pub images: Vec<Vec<u32>>,
    numbers: HashMap<Digest, u32>,
}

impl PackOrder {
    /// The number of the blob with `digest`, if it was given.
    pub fn number(&self, digest: &Digest) -> Option<u32> {
        self.numbers.get(digest).copied()
    }
}

/// Numbers the blobs of `images` (each image's blobs in the order of its `blobs`, the
/// images in the mirror's order: by repository, then top-level digest), skipping blobs
/// already numbered, then the files of `tree` not numbered yet, in byte order of digest
/// (files with equal content share one blob; the first path given is read). Manifests are
/// always carried (they are small, and tags are pushed from them); layers and configs that
/// `base` holds are left to it; files of the tree alone are always carried.
pub fn pack_order(images: &[Vec<Candidate<'_>>], tree: &[Candidate<'_>], base: &Base) -> PackOrder {
    let mut order = PackOrder {
        blobs: Vec::new(),
        images: Vec::with_capacity(images.len()),
        numbers: HashMap::new(),
    };
    for blobs in images {
        let numbers = blobs.iter().map(|c| order.add(c, Some(base))).collect();
        order.images.push(numbers);
    }
    let mut rest: BTreeMap<Digest, &Candidate<'_>> = BTreeMap::new();
    for c in tree {
        if !order.numbers.contains_key(&c.digest) {
            rest.entry(c.digest).or_insert(c);
        }
    }
    for c in rest.into_values() {
        order.add(c, None);
    }
    // These live until the last volume is written: doubling's slack (up to half) is
    // returned rather than carried through pack's peak.
    order.blobs.shrink_to_fit();
    order.images.shrink_to_fit();
    order
}

impl PackOrder {
    /// The blob's number, adding it at the end the first time it is met.
    fn add(&mut self, c: &Candidate<'_>, base: Option<&Base>) -> u32 {
        if let Some(&i) = self.numbers.get(&c.digest) {
            return i;
        }
        let i = self.blobs.len() as u32;
        let base = match (c.media_type, base) {
            (None, Some(base)) => base.blobs.get(&c.digest).cloned(),
            _ => None,
        };
        self.blobs.push(SourceBlob {
            digest: c.digest,
            size: c.size,
            path: c.path.to_path_buf(),
            media_type: c.media_type.map(str::to_owned),
            base,
        });
        self.numbers.insert(c.digest, i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8, media_type: Option<&'static str>) -> Candidate<'static> {
        const PATHS: [&str; 10] = [
            "/m/0", "/m/1", "/m/2", "/m/3", "/m/4", "/m/5", "/m/6", "/m/7", "/m/8", "/m/9",
        ];
        Candidate {
            digest: Digest([n; 32]),
            size: u64::from(n),
            path: Path::new(PATHS[n as usize]),
            media_type,
        }
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
