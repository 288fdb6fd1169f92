//! Other files of the mirror that hold a packed blob (copies in other repositories where
//! the mirror did not hard-link): each is re-hashed before anything is written, so every
//! file the bundle stands for is checked, not only the copy that is packed.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::input::{check_digest, open_checked, HashingReader};
use super::SourceBlob;
use crate::digest::Digest;
use crate::error::FormatError;

/// Other files among `files` (the mirror's tree, by digest and path) that claim to hold a
/// blob of `packed` (found by `number`, the pack order's) — copies in other repositories
/// where the mirror did not hard-link — each distinct file once, so that every file the
/// bundle stands for is re-hashed ([`check_copies`]), not only the copy that is packed.
/// Only files at another path than their packed blob's are looked at (in most layouts
/// none is): no set of every blob's inode is built.
pub fn other_copies<'a>(
    packed: &[SourceBlob],
    number: impl Fn(&Digest) -> Option<u32>,
    files: impl IntoIterator<Item = (Digest, Cow<'a, Path>)>,
) -> Vec<SourceBlob> {
    use std::os::unix::fs::MetadataExt;
    let others: Vec<(&SourceBlob, Cow<'a, Path>)> = files
        .into_iter()
        .filter_map(|(digest, path)| {
            let blob = &packed[number(&digest)? as usize];
            (blob.path() != path).then_some((blob, path))
        })
        .collect();
    let inode = |p: &Path| fs::metadata(p).ok().map(|md| (md.dev(), md.ino()));
    // A hard link to the packed file is that file; it is read once.
    let mut seen: std::collections::HashSet<(u64, u64)> = others
        .iter()
        .filter_map(|(b, _)| inode(&b.path()))
        .collect();
    let mut copies = Vec::new();
    for (blob, path) in others {
        if inode(&path).is_some_and(|i| seen.insert(i)) {
            copies.push(SourceBlob {
                at: path.into_owned().into(),
                ..blob.clone()
            });
        }
    }
    copies
}

/// Re-hashes files that hold the same blob as a packed one (copies the mirror did not
/// hard-link), both cores at once; a copy that differs fails the pack naming the file.
pub fn check_copies(copies: &[SourceBlob]) -> Result<(), FormatError> {
    copies.par_iter().try_for_each(|blob| {
        let file = open_checked(blob)?;
        let mut hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            count: 0,
        };
        io::copy(&mut hashing, &mut io::sink()).map_err(FormatError::io(blob.path()))?;
        check_digest(blob, hashing.hasher, hashing.count)
    })
}
