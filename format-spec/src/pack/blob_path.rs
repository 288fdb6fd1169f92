//! Where a blob to pack is read from, held in few bytes: pack keeps the path of every blob
//! until the last volume is written, and at 1.8×10^5 blobs a path of its own each (about
//! 130 bytes on the heap) was 24 MB, the largest single item of pack's peak memory.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::Digest;

/// Where a blob's bytes are read. Every layout ferry reads names a blob's file by the hex
/// of its digest (`blobs/sha256/<hex>`, registry storage's `…/sha256/ab/<hex>/data`, oc's
/// `…/blobs/sha256:<hex>`), so such a path is held as the text before the hex and the text
/// after it, each shared with every other blob that has the same ([`BlobPaths`]). A path
/// that does not name its blob's hex, or is not UTF-8, is kept whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPath {
    Around { before: Arc<str>, after: Arc<str> },
    Whole(PathBuf),
}

impl BlobPath {
    /// The path of the blob with `digest` (the one this path was made for).
    pub fn of(&self, digest: &Digest) -> Cow<'_, Path> {
        match self {
            BlobPath::Around { before, after } => {
                let hex = digest.hex();
                let mut s = String::with_capacity(before.len() + hex.len() + after.len());
                s.push_str(before);
                s.push_str(&hex);
                s.push_str(after);
                Cow::Owned(PathBuf::from(s))
            }
            BlobPath::Whole(p) => Cow::Borrowed(p),
        }
    }
}

impl From<PathBuf> for BlobPath {
    fn from(path: PathBuf) -> BlobPath {
        BlobPath::Whole(path)
    }
}

/// Makes [`BlobPath`]s, each text around a digest held once however many blobs share it.
#[derive(Debug, Clone, Default)]
pub struct BlobPaths {
    texts: HashSet<Arc<str>>,
}

impl BlobPaths {
    /// `path`, the file of the blob with `digest`, held compactly where it can be.
    pub fn hold(&mut self, path: PathBuf, digest: &Digest) -> BlobPath {
        let hex = digest.hex();
        let Some((at, s)) = path.to_str().and_then(|s| Some((s.rfind(&hex)?, s))) else {
            return BlobPath::Whole(path);
        };
        BlobPath::Around {
            before: self.share(&s[..at]),
            after: self.share(&s[at + hex.len()..]),
        }
    }

    fn share(&mut self, text: &str) -> Arc<str> {
        if let Some(t) = self.texts.get(text) {
            return Arc::clone(t);
        }
        let t: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&t));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_naming_its_digest_is_held_around_it_and_comes_back_the_same() {
        let d = Digest::of(b"blob");
        let e = Digest::of(b"other");
        let mut paths = BlobPaths::default();
        let oci = |d: &Digest| PathBuf::from(format!("/m/blobs/sha256/{}", d.hex()));
        let storage = PathBuf::from(format!(
            "/r/docker/registry/v2/blobs/sha256/{}/{}/data",
            &d.hex()[..2],
            d.hex()
        ));
        for (path, digest) in [(oci(&d), &d), (oci(&e), &e), (storage.clone(), &d)] {
            let held = paths.hold(path.clone(), digest);
            assert!(matches!(held, BlobPath::Around { .. }), "{held:?}");
            assert_eq!(held.of(digest), path);
        }
        // The OCI directory's text is one allocation for both blobs.
        let (a, b) = (paths.hold(oci(&d), &d), paths.hold(oci(&e), &e));
        let (BlobPath::Around { before: a, .. }, BlobPath::Around { before: b, .. }) = (a, b)
        else {
            unreachable!()
        };
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_path_that_does_not_name_its_digest_is_kept_whole() {
        let d = Digest::of(b"blob");
        let path = PathBuf::from("/m/v2/ns/app/manifests/latest");
        let held = BlobPaths::default().hold(path.clone(), &d);
        assert_eq!(held, BlobPath::Whole(path.clone()));
        assert_eq!(held.of(&d), path);
    }
}
