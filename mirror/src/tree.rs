//! The file tree of a mirror: every directory, file and symlink below the root, so the
//! layout can be restored byte for byte, and the path rules that keep a tree inside its root.

use std::fs;
use std::path::{Component, Path};

use walkdir::WalkDir;

use oci::Digest;

use crate::digest;
use crate::error::MirrorError;
use crate::model::TreeEntry;

/// How a layout sees one path below its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    /// An ordinary file or directory: files are hashed.
    Plain,
    /// A file whose name claims its content digest; not hashed here.
    Blob(Digest),
    /// A leftover of a failed run: left out of the tree (with everything below it) and
    /// reported.
    Skip,
}

impl TreeEntry {
    /// The entry's path relative to the mirror root, `/`-separated.
    pub fn path(&self) -> &str {
        match self {
            TreeEntry::Dir { path }
            | TreeEntry::File { path, .. }
            | TreeEntry::Symlink { path, .. }
            | TreeEntry::HardLink { path, .. } => path,
        }
    }
}

/// The `/`-separated form of `path` relative to `root`. Every component must be UTF-8,
/// because tree paths travel in JSON and tar headers.
pub(crate) fn relative(root: &Path, path: &Path) -> Result<String, MirrorError> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| MirrorError::malformed(path, "is not below the mirror root"))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => {
                parts.push(s.to_str().ok_or_else(|| MirrorError::NonUtf8Path {
                    path: path.to_path_buf(),
                })?)
            }
            _ => return Err(MirrorError::malformed(path, "unexpected path component")),
        }
    }
    Ok(parts.join("/"))
}

/// Whether a relative symlink stored at `link_path` (relative, `/`-separated) with
/// `target` resolves, lexically, to a place inside the tree. Every symlink in a tree is
/// checked this way and walks never follow links, so no chain of links can leave either.
pub(crate) fn symlink_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut depth: Vec<&str> = link_path.split('/').collect();
    depth.pop(); // the link itself
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            name => depth.push(name),
        }
    }
    true
}

/// Why `path` is not a safe relative tree path, or `None` when it is: no empty, `.` or `..`
/// components, not absolute, no NUL, no trailing slash.
pub(crate) fn unsafe_path_reason(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    if path.contains('\0') {
        return Some("contains NUL");
    }
    if path.starts_with('/') {
        return Some("absolute path");
    }
    for c in path.split('/') {
        match c {
            "" => return Some("empty component (// or trailing /)"),
            "." | ".." => return Some("'.' or '..' component"),
            _ => {}
        }
    }
    None
}

#[cfg(unix)]
pub(crate) fn permission_bits(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
pub(crate) fn permission_bits(meta: &std::fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "unknown"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "unknown"
}

/// Walks everything below `root` (not following symlinks), sorted by path. Files that
/// `classify` calls blobs carry their claimed digest; other files are hashed. Returns the
/// tree and the skipped leftovers (relative paths, sorted).
pub(crate) fn walk(
    root: &Path,
    classify: &dyn Fn(&str, bool) -> Class,
) -> Result<(Vec<TreeEntry>, Vec<String>), MirrorError> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    // Files with more than one name: (device, inode) by path, to turn later names into links.
    let mut inodes: std::collections::HashMap<String, (u64, u64)> =
        std::collections::HashMap::new();
    let mut it = WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(next) = it.next() {
        let entry = next.map_err(|e| MirrorError::walk(root, e))?;
        let path = entry.path();
        let rel = relative(root, path)?;
        let ft = entry.file_type();
        let class = classify(&rel, ft.is_dir());
        if class == Class::Skip {
            skipped.push(rel);
            if ft.is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        if ft.is_dir() {
            entries.push(TreeEntry::Dir { path: rel });
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| MirrorError::io(path, e))?;
            let target = target.to_str().ok_or_else(|| MirrorError::NonUtf8Path {
                path: path.to_path_buf(),
            })?;
            if !symlink_stays_inside(&rel, target) {
                return Err(MirrorError::UnsafeSymlink {
                    path: path.to_path_buf(),
                    target: target.to_string(),
                });
            }
            entries.push(TreeEntry::Symlink {
                path: rel,
                target: target.to_string(),
            });
        } else if ft.is_file() {
            let meta = entry.metadata().map_err(|e| {
                MirrorError::io(
                    path,
                    e.into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("metadata")),
                )
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                if meta.nlink() > 1 {
                    inodes.insert(rel.clone(), (meta.dev(), meta.ino()));
                }
            }
            let (digest, size) = match class {
                Class::Blob(d) => (d, meta.len()),
                _ => digest::sha256_file(path)?,
            };
            // Read from `<root>/<path>`: no second path kept per file.
            entries.push(TreeEntry::File {
                path: rel,
                digest,
                size,
                mode: permission_bits(&meta),
                source: None,
            });
        } else {
            return Err(MirrorError::UnsupportedFile {
                path: path.to_path_buf(),
                kind: special_kind(&ft).to_string(),
            });
        }
    }
    // Paths are unique: an unstable sort gives the same order, in place (a stable one
    // takes a buffer of half the tree).
    entries.sort_unstable_by(|a, b| a.path().cmp(b.path()));
    // Kept for the whole run: without the slack of its growth.
    entries.shrink_to_fit();
    // The first name of a multiply-linked file (in path order) stays a file; later names
    // become links to it, so restoring keeps one copy and the first name exists first.
    let mut first: std::collections::HashMap<(u64, u64), String> = std::collections::HashMap::new();
    for e in &mut entries {
        let TreeEntry::File { path, .. } = e else {
            continue;
        };
        let Some(id) = inodes.get(path.as_str()) else {
            continue;
        };
        match first.get(id) {
            Some(target) => {
                *e = TreeEntry::HardLink {
                    path: path.clone(),
                    target: target.clone(),
                }
            }
            None => {
                first.insert(*id, path.clone());
            }
        }
    }
    skipped.sort();
    Ok((entries, skipped))
}

/// Whether `path` is a directory itself, not a link to one (layouts are read without
/// following links out of the mirror).
pub(crate) fn is_dir_no_follow(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// A directory's entries in name order, so every reader sees a layout the same way.
pub(crate) fn sorted_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, MirrorError> {
    let mut entries = fs::read_dir(dir)
        .map_err(|e| MirrorError::io(dir, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MirrorError::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn symlink_rules() {
        assert!(symlink_stays_inside("v2/r/manifests/latest", "sha256:abc"));
        assert!(symlink_stays_inside("a/b/c", "../../x"));
        assert!(symlink_stays_inside("a/b", ".."));
        assert!(!symlink_stays_inside("a/b", "../.."));
        assert!(!symlink_stays_inside("a", "../x"));
        assert!(!symlink_stays_inside("a", "/etc/passwd"));
        assert!(!symlink_stays_inside("a", ""));
        assert!(!symlink_stays_inside("a/b", "c/../../../x"));
        assert!(symlink_stays_inside("a/b", "./c/./d"));
    }

    #[test]
    fn path_rules() {
        assert_eq!(unsafe_path_reason("a/b"), None);
        assert!(unsafe_path_reason("").is_some());
        assert!(unsafe_path_reason("/a").is_some());
        assert!(unsafe_path_reason("a/../b").is_some());
        assert!(unsafe_path_reason("./a").is_some());
        assert!(unsafe_path_reason("a//b").is_some());
        assert!(unsafe_path_reason("a/").is_some());
        assert!(unsafe_path_reason("a\0b").is_some());
    }

    #[test]
    fn walks_sorted_hashes_plain_files_and_skips() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::create_dir_all(r.join("a-c")).unwrap();
        fs::write(r.join("a/b/f"), b"hello").unwrap();
        fs::write(r.join("a/blob"), b"xx").unwrap();
        fs::write(r.join("a/junk.download"), b"partial").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("b/f", r.join("a/link")).unwrap();
        let classify = |rel: &str, _dir: bool| {
            if rel.ends_with(".download") {
                Class::Skip
            } else if rel == "a/blob" {
                Class::Blob(Digest::of(b"claimed"))
            } else {
                Class::Plain
            }
        };
        let (tree, skipped) = walk(r, &classify).unwrap();
        let paths: Vec<&str> = tree.iter().map(|e| e.path()).collect();
        assert_eq!(paths, ["a", "a-c", "a/b", "a/b/f", "a/blob", "a/link"]);
        assert_eq!(skipped, ["a/junk.download"]);
        match &tree[3] {
            TreeEntry::File {
                digest,
                size,
                source,
                ..
            } => {
                assert_eq!(digest, &digest::sha256_bytes(b"hello"));
                assert_eq!(*source, None, "read from <root>/<path>");
                assert_eq!(*size, 5);
            }
            e => panic!("{e:?}"),
        }
        assert!(
            matches!(&tree[4], TreeEntry::File { digest, size: 2, .. } if *digest == Digest::of(b"claimed"))
        );
        assert!(matches!(&tree[5], TreeEntry::Symlink { target, .. } if target == "b/f"));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_escaping_symlinks_and_fifos() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("abs")).unwrap();
        let e = walk(t.path(), &|_, _| Class::Plain).unwrap_err();
        assert!(
            matches!(e, MirrorError::UnsafeSymlink { ref target, .. } if target == "/etc/passwd"),
            "{e}"
        );
        assert!(e.to_string().contains("abs"));

        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("d")).unwrap();
        std::os::unix::fs::symlink("../../x", t.path().join("d/up")).unwrap();
        assert!(matches!(
            walk(t.path(), &|_, _| Class::Plain),
            Err(MirrorError::UnsafeSymlink { .. })
        ));

        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success());
        if ok.unwrap_or(false) {
            let e = walk(t.path(), &|_, _| Class::Plain).unwrap_err();
            assert!(
                matches!(e, MirrorError::UnsupportedFile { ref kind, .. } if kind == "fifo"),
                "{e}"
            );
        }
    }
}
