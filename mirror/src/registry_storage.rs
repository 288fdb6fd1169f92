//! A CNCF distribution registry's filesystem storage (distribution `registry/storage/paths.go`):
//!
//! ```text
//! docker/registry/v2/blobs/sha256/<hex[..2]>/<hex>/data
//! docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
//! docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
//! docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
//! docker/registry/v2/repositories/<name>/_uploads/<uuid>/…     unfinished uploads
//! ```
//!
//! Link files hold the bare `sha256:<hex>`. `_layers` also lists mounted and orphaned
//! blobs, so what an image needs is computed from its manifests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::closure::{existing_file, read_capped, Collector, Store};
use crate::digest;
use crate::error::MirrorError;
use crate::tree::{is_dir_no_follow, relative, sorted_dir, Class};

const V2: &str = "docker/registry/v2";

/// The registry's global blob store.
pub(crate) struct BlobStore {
    v2: PathBuf,
}

impl BlobStore {
    fn data(&self, hex: &str) -> PathBuf {
        self.v2
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Store for BlobStore {
    fn manifest_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        existing_file(self.data(hex))
    }
    fn blob_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        existing_file(self.data(hex))
    }
}

/// One repository: the directory holding `_manifests`.
#[derive(Debug, Clone)]
pub(crate) struct RegistryRepo {
    pub name: String,
    pub dir: PathBuf,
}

/// `None` when `root` is not registry storage; otherwise its repositories (maybe none).
/// As distribution's catalog walk does, a repository is a directory holding `_manifests`,
/// names starting with `_` are never path components, and repositories nest.
pub(crate) fn find_repos(root: &Path) -> Result<Option<Vec<RegistryRepo>>, MirrorError> {
    let v2 = root.join(V2);
    if !is_dir_no_follow(&v2) {
        return Ok(None);
    }
    let repositories = v2.join("repositories");
    let mut repos = Vec::new();
    if !is_dir_no_follow(&repositories) {
        return Ok(Some(repos));
    }
    let mut stack = vec![repositories.clone()];
    while let Some(dir) = stack.pop() {
        if dir != repositories && is_dir_no_follow(&dir.join("_manifests")) {
            repos.push(RegistryRepo {
                name: relative(&repositories, &dir)?,
                dir: dir.clone(),
            });
        }
        for entry in sorted_dir(&dir)? {
            let ft = entry
                .file_type()
                .map_err(|e| MirrorError::io(entry.path(), e))?;
            let underscore = entry
                .file_name()
                .to_str()
                .is_none_or(|n| n.starts_with('_'));
            if ft.is_dir() && !underscore {
                stack.push(entry.path());
            }
        }
    }
    repos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(repos))
}

/// Tree classification: `blobs/sha256/<xx>/<hex>/data` is a blob; whatever is inside a
/// repository's `_uploads/` is an unfinished upload (the empty `_uploads/` itself stays).
pub(crate) fn classify(rel: &str, is_dir: bool) -> Class {
    let Some(rest) = rel.strip_prefix(V2).and_then(|r| r.strip_prefix('/')) else {
        return Class::Plain;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["blobs", "sha256", prefix, hex, "data"]
            if !is_dir && hex.starts_with(prefix) && prefix.len() == 2 =>
        {
            match oci::Digest::from_hex(hex) {
                Ok(d) => Class::Blob(d),
                Err(_) => Class::Plain,
            }
        }
        ["repositories", .., "_uploads", _] => Class::Skip,
        _ => Class::Plain,
    }
}

/// The digest a link file holds.
fn read_link_file(path: &Path) -> Result<String, MirrorError> {
    let bytes = read_capped(path, 1024)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| MirrorError::malformed(path, "link file is not UTF-8"))?;
    digest::checked(path, text.trim()).map(|d| d.to_string())
}

/// Images of every repository: each tag's `current/link`, and each manifest revision that is
/// neither tagged nor a child of an index in the same repository.
pub(crate) fn read_images(
    root: &Path,
    repos: &[RegistryRepo],
    c: &mut Collector,
) -> Result<(), MirrorError> {
    let store = BlobStore { v2: root.join(V2) };
    for repo in repos {
        c.end_scope();
        let manifests = repo.dir.join("_manifests");
        let mut tags = Vec::new();
        let tags_dir = manifests.join("tags");
        if is_dir_no_follow(&tags_dir) {
            for entry in sorted_dir(&tags_dir)? {
                let link = entry.path().join("current/link");
                // A tag directory without current/link has been deleted.
                if existing_file(link.clone())?.is_none() {
                    continue;
                }
                let tag = entry
                    .file_name()
                    .to_str()
                    .ok_or_else(|| MirrorError::NonUtf8Path { path: entry.path() })?
                    .to_string();
                tags.push((tag, read_link_file(&link)?, link));
            }
        }
        let mut revisions = Vec::new();
        let revisions_dir = manifests.join("revisions/sha256");
        if is_dir_no_follow(&revisions_dir) {
            for entry in sorted_dir(&revisions_dir)? {
                let link = entry.path().join("link");
                // Deleting a manifest removes its link and leaves the directory.
                if existing_file(link.clone())?.is_none() {
                    continue;
                }
                let name = entry.file_name();
                let expected = format!("sha256:{}", name.to_string_lossy());
                let d = read_link_file(&link)?;
                if d != expected {
                    return Err(MirrorError::malformed(
                        &link,
                        format!("holds {d}, but its directory names {expected}"),
                    ));
                }
                revisions.push((d, link));
            }
        }
        let all: BTreeSet<String> = tags
            .iter()
            .map(|(_, d, _)| d.clone())
            .chain(revisions.iter().map(|(d, _)| d.clone()))
            .collect();
        let children = c.index_children(&store, &all)?;
        for (tag, d, link) in &tags {
            c.add_image(&store, &repo.name, Some(tag), d, None, None, link)?;
        }
        let tagged: BTreeSet<&str> = tags.iter().map(|(_, d, _)| d.as_str()).collect();
        for (d, link) in &revisions {
            if !tagged.contains(d.as_str()) && !children.contains(d) {
                c.add_image(&store, &repo.name, None, d, None, None, link)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn classifies() {
        let hex = format!("ab{}", "c".repeat(62));
        assert_eq!(
            classify(
                &format!("docker/registry/v2/blobs/sha256/ab/{hex}/data"),
                false
            ),
            Class::Blob(oci::Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(
            classify(
                &format!("docker/registry/v2/blobs/sha256/cd/{hex}/data"),
                false
            ),
            Class::Plain
        );
        assert_eq!(
            classify(
                "docker/registry/v2/repositories/a/b/_uploads/1234-uuid",
                true
            ),
            Class::Skip
        );
        assert_eq!(
            classify("docker/registry/v2/repositories/a/b/_uploads", true),
            Class::Plain
        );
        assert_eq!(
            classify(
                "docker/registry/v2/repositories/a/_manifests/tags/t/current/link",
                false
            ),
            Class::Plain
        );
    }

    use crate::read_mirror;
    use crate::testkit::{hex, write, Kit};

    fn put(root: &Path, kit: &Kit, digests: &[oci::Digest]) {
        for d in digests {
            let h = hex(d);
            write(
                &root
                    .join(V2)
                    .join("blobs/sha256")
                    .join(&h[..2])
                    .join(&h)
                    .join("data"),
                kit.bytes(d),
            );
        }
    }

    fn repo(root: &Path, name: &str) -> PathBuf {
        root.join(V2).join("repositories").join(name)
    }

    fn revision(root: &Path, name: &str, d: &oci::Digest) {
        write(
            &repo(root, name)
                .join("_manifests/revisions/sha256")
                .join(hex(d))
                .join("link"),
            d.to_string().as_bytes(),
        );
    }

    #[test]
    fn reads_nested_repositories_tags_and_untagged_revisions() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let b = kit.image("b", true, 2);
        let child = kit.image("child", false, 1);
        let list = kit.index(false, &[&child]);
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for m in [&a, &b, &child, &list] {
            put(root, &kit, &m.closure);
        }
        // ubi8 holds `a` tagged and `list` untagged (with its child); ubi8/minimal holds `b`.
        write(
            &repo(root, "ubi8").join("_manifests/tags/8.2/current/link"),
            a.digest.to_string().as_bytes(),
        );
        revision(root, "ubi8", &a.digest);
        revision(root, "ubi8", &list.digest);
        revision(root, "ubi8", &child.digest);
        // A deleted tag and a deleted revision leave empty directories.
        fs::create_dir_all(repo(root, "ubi8").join("_manifests/tags/old/index")).unwrap();
        fs::create_dir_all(
            repo(root, "ubi8").join(format!("_manifests/revisions/sha256/{}", "9".repeat(64))),
        )
        .unwrap();
        write(
            &repo(root, "ubi8/minimal").join("_manifests/tags/latest/current/link"),
            b.digest.to_string().as_bytes(),
        );

        let m = read_mirror(root).unwrap();
        let got: Vec<(&str, &[String], oci::Digest)> = m
            .images
            .iter()
            .map(|i| (i.repository.as_str(), i.tags.as_slice(), i.digest))
            .collect();
        let (t82, latest) = (["8.2".to_string()], ["latest".to_string()]);
        let mut want = vec![
            ("ubi8", &t82[..], a.digest),
            ("ubi8", &[][..], list.digest),
            ("ubi8/minimal", &latest[..], b.digest),
        ];
        want.sort_by_key(|w| (w.0, w.2));
        assert_eq!(got, want, "sorted by (repository, digest)");
        let l = m.images.iter().find(|i| i.digest == list.digest).unwrap();
        assert_eq!(l.blobs, list.closure);
        assert_eq!(
            &*m.manifest_types[&child.digest],
            oci::media_type::OCI_MANIFEST
        );
        assert_eq!(m.blobs.len(), 1 + 3 + 4 + 3);
    }

    #[test]
    fn a_revision_link_must_name_its_directory() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let t = tempfile::tempdir().unwrap();
        put(t.path(), &kit, &a.closure);
        let link = repo(t.path(), "r")
            .join("_manifests/revisions/sha256")
            .join("0".repeat(64))
            .join("link");
        write(&link, a.digest.to_string().as_bytes());
        let e = read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(&e, MirrorError::MalformedLayout { path, .. } if *path == link),
            "{e}"
        );
    }

    #[test]
    fn an_empty_registry_is_an_empty_mirror() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join(V2)).unwrap();
        let m = read_mirror(t.path()).unwrap();
        assert_eq!(m.kind, crate::LayoutKind::RegistryStorage);
        assert!(m.images.is_empty() && m.blobs.is_empty());
    }
}
