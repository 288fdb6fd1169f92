//! Other files of the mirror that hold a packed blob (copies in other repositories where
//! the mirror did not hard-link): each is re-hashed before anything is written, so every
//! file the bundle stands for is checked, not only the copy that is packed.

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
/// blob of `packed` — copies in other repositories where the mirror did not hard-link —
/// each distinct file once, so that every file the bundle stands for is re-hashed
/// ([`check_copies`]), not only the copy that is packed.
pub fn other_copies<'a>(
    packed: &[SourceBlob],
    files: impl IntoIterator<Item = (Digest, &'a Path)>,
) -> Vec<SourceBlob> {
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &Path| fs::metadata(p).ok().map(|md| (md.dev(), md.ino()));
    let mut seen: std::collections::HashSet<(u64, u64)> =
        packed.iter().filter_map(|b| inode(&b.path)).collect();
    let by_digest: std::collections::HashMap<Digest, &SourceBlob> =
        packed.iter().map(|b| (b.digest, b)).collect();
    let mut copies = Vec::new();
    for (digest, path) in files {
        let Some(packed) = by_digest.get(&digest) else {
            continue;
        };
        if packed.path == path || !inode(path).is_some_and(|i| seen.insert(i)) {
            continue;
        }
        copies.push(SourceBlob {
            path: path.to_path_buf(),
            ..(*packed).clone()
        });
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
        io::copy(&mut hashing, &mut io::sink()).map_err(FormatError::io(&blob.path))?;
        check_digest(blob, hashing.hasher, hashing.count)
    })
}
