//! What a registry's storage holds after a case's push (the registry is
//! [`crate::registry::Registry`]).

use std::fs;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// Every blob stored under a registry's storage root: (hex digest, sha256 of its content).
pub fn stored_blobs(storage: &Path) -> Vec<(String, String)> {
    let root = storage.join("docker/registry/v2/blobs/sha256");
    let mut out = Vec::new();
    let Ok(prefixes) = fs::read_dir(&root) else {
        return out;
    };
    for p in prefixes {
        for b in fs::read_dir(p.unwrap().path()).unwrap() {
            let b = b.unwrap().path();
            let data = b.join("data");
            if data.is_file() {
                let content = fs::read(&data).unwrap();
                out.push((
                    b.file_name().unwrap().to_string_lossy().into_owned(),
                    hex::encode(Sha256::digest(&content)),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Links repositories received (layers and manifests); 0 when nothing was pushed.
pub fn repository_links(storage: &Path) -> usize {
    walk_count(&storage.join("docker/registry/v2/repositories"), "_layers")
        + walk_count(
            &storage.join("docker/registry/v2/repositories"),
            "_manifests",
        )
}

pub(super) fn walk_count(dir: &Path, name: &str) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if e.file_name() == name {
                n += fs::read_dir(&p).map(|r| r.count()).unwrap_or(0);
            } else {
                n += walk_count(&p, name);
            }
        }
    }
    n
}
