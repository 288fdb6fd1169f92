//! Restoring a mirror's file tree (`ferry-unpack extract`).
//!
//! # Security
//! The tree comes from a bundle and is hostile until proven otherwise. Before anything is
//! written every entry is checked: relative, no empty, `.` or `..` components, no NUL, no
//! duplicates, its parent listed earlier as a directory (so nothing is ever written through
//! a symlink, including one the tree itself created), and every symlink target resolving
//! inside the destination. The destination must be absent or empty, and is re-checked
//! while writing: an existing name or a parent that is not a real directory is refused.
//! File content is written to a temporary name, checked against the entry's size and
//! SHA-256 (reading at most one byte more than the size), and only then renamed.
//!
//! # Durability
//! A tree or layout is made durable once, at its end (`durable_file::SyncAtEnd`: one
//! `syncfs`), not file by file: two fsyncs per file made extracting 6×10^4 images
//! (1.8×10^5 files) take 356 s against `tar xf`'s 69 s. The call returns only after that
//! sync, and an OCI layout's `index.json` (what makes it a layout) is written after it with
//! its own fsyncs, so a power cut never leaves an index naming a blob that is not on disk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use oci::{Digest, Sha256};

use crate::error::MirrorError;
use crate::model::TreeEntry;
use crate::tree::{symlink_stays_inside, unsafe_path_reason};

/// What an `open` callback's error becomes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates `dest` if absent; refuses it unless it is an empty directory.
pub(crate) fn prepare_dest(dest: &Path) -> Result<(), MirrorError> {
    match fs::metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).map_err(|e| MirrorError::io(dest, e))
        }
        Err(e) => Err(MirrorError::io(dest, e)),
        Ok(m) if !m.is_dir() => Err(MirrorError::DestinationNotEmpty {
            path: dest.to_path_buf(),
        }),
        Ok(_) => {
            let mut it = fs::read_dir(dest).map_err(|e| MirrorError::io(dest, e))?;
            if it.next().is_some() {
                return Err(MirrorError::DestinationNotEmpty {
                    path: dest.to_path_buf(),
                });
            }
            Ok(())
        }
    }
}

fn unsafe_entry(entry: &str, reason: impl Into<String>) -> MirrorError {
    MirrorError::UnsafePath {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

#[derive(PartialEq)]
enum Kind {
    Dir,
    File,
    Other,
}

/// Checks the whole tree before anything is written.
fn validate(tree: &[TreeEntry]) -> Result<(), MirrorError> {
    let mut seen: HashMap<&str, Kind> = HashMap::with_capacity(tree.len());
    for e in tree {
        let path = e.path();
        if let Some(reason) = unsafe_path_reason(path) {
            return Err(unsafe_entry(path, reason));
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            match seen.get(parent) {
                Some(Kind::Dir) => {}
                Some(Kind::Other | Kind::File) => {
                    return Err(unsafe_entry(
                        path,
                        format!("parent {parent:?} is not a directory"),
                    ))
                }
                None => {
                    return Err(unsafe_entry(
                        path,
                        format!("parent directory {parent:?} is not listed before it"),
                    ))
                }
            }
        }
        match e {
            TreeEntry::Symlink { target, .. } if !symlink_stays_inside(path, target) => {
                return Err(MirrorError::UnsafeSymlink {
                    path: path.into(),
                    target: target.clone(),
                })
            }
            TreeEntry::HardLink { target, .. }
                if !matches!(seen.get(target.as_str()), Some(Kind::File)) =>
            {
                return Err(unsafe_entry(
                    path,
                    format!("hard link to {target:?}, which is not a file listed before it"),
                ))
            }
            _ => {}
        }
        let kind = match e {
            TreeEntry::Dir { .. } => Kind::Dir,
            TreeEntry::File { .. } => Kind::File,
            _ => Kind::Other,
        };
        if seen.insert(path, kind).is_some() {
            return Err(unsafe_entry(path, "listed twice"));
        }
    }
    Ok(())
}

/// Refuses to create `target` unless its parent is a real directory (not a symlink) and
/// the name is free.
fn check_slot(dest: &Path, rel: &str) -> Result<(), MirrorError> {
    let target = dest.join(rel);
    if let Some((parent, _)) = rel.rsplit_once('/') {
        let p = dest.join(parent);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(unsafe_entry(
                    rel,
                    format!("{} is not a real directory", p.display()),
                ))
            }
            Err(e) => return Err(MirrorError::io(p, e)),
        }
    }
    match fs::symlink_metadata(&target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MirrorError::io(target, e)),
        Ok(_) => Err(unsafe_entry(
            rel,
            format!("{} already exists", target.display()),
        )),
    }
}

/// When a file written by [`write_verified`] is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Its own fsyncs before the call returns (a file that marks the whole as complete).
    Now,
    /// With every other file of the write, by the `SyncAtEnd` the caller finishes.
    AtEnd,
}

/// Streams `reader` into `dest/rel` through a temporary name, checking that exactly `size`
/// bytes hashing to `digest` arrive, then sets `mode` and renames into place.
pub(crate) fn write_verified(
    dest: &Path,
    rel: &str,
    digest: &Digest,
    size: u64,
    mode: u32,
    reader: impl Read,
    commit: Commit,
) -> Result<(), MirrorError> {
    check_slot(dest, rel)?;
    let target = dest.join(rel);
    // The temporary is exclusive and random-named (durable-file), so neither a tree entry
    // named like it nor a link planted in advance is ever written through.
    let mut partial = durable_file::Partial::create_with_mode(&target, 0o600)
        .map_err(|e| MirrorError::io(&target, e))?;
    let tmp = partial.path().to_path_buf();
    copy_checked(partial.file(), reader, rel, digest, size, mode, &tmp)?;
    match commit {
        Commit::Now => partial.commit(),
        Commit::AtEnd => partial.commit_unsynced(),
    }
    .map_err(|e| MirrorError::io(&target, e))
}

/// Begins the one sync of a write into `dest` (which exists).
pub(crate) fn sync_at_end(dest: &Path) -> Result<durable_file::SyncAtEnd, MirrorError> {
    durable_file::SyncAtEnd::begin(dest).map_err(|e| MirrorError::io(dest, e))
}

/// Finishes it: every file committed `AtEnd` is durable, or the write-back's error is named.
pub(crate) fn finish_sync(sync: durable_file::SyncAtEnd, dest: &Path) -> Result<(), MirrorError> {
    sync.finish().map_err(|e| MirrorError::io(dest, e))
}

fn copy_checked(
    file: &mut File,
    reader: impl Read,
    rel: &str,
    digest: &Digest,
    size: u64,
    mode: u32,
    tmp: &Path,
) -> Result<(), MirrorError> {
    let mut limited = reader.take(size.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut written: u64 = 0;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(MirrorError::Open {
                    entry: rel.to_string(),
                    digest: digest.to_string(),
                    source: Box::new(e),
                })
            }
        };
        written = written.saturating_add(n as u64);
        if written > size {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| MirrorError::io(tmp, e))?;
    }
    let mismatch = |reason: String| MirrorError::ContentMismatch {
        entry: rel.to_string(),
        digest: digest.to_string(),
        reason,
    };
    if written > size {
        return Err(mismatch(format!("more than the declared {size} bytes")));
    }
    if written < size {
        return Err(mismatch(format!("{written} bytes, but {size} declared")));
    }
    let actual = hasher.finish();
    if actual != *digest {
        return Err(mismatch(format!("content hashes to {actual}")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o777))
            .map_err(|e| MirrorError::io(tmp, e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.flush().map_err(|e| MirrorError::io(tmp, e))
}

/// Recreates `tree` below `dest` (absent or empty): directories, files (content streamed
/// from `open(digest)` and checked against the entry's size and digest), symlinks and
/// file modes. `TreeEntry::File::source` is ignored. See the module's Security notes.
pub fn write_tree<R, E>(
    dest: &Path,
    tree: &[TreeEntry],
    mut open: impl FnMut(&Digest) -> Result<R, E>,
) -> Result<(), MirrorError>
where
    R: Read,
    E: Into<BoxError>,
{
    validate(tree)?;
    prepare_dest(dest)?;
    let sync = sync_at_end(dest)?;
    for e in tree {
        let rel = e.path();
        match e {
            TreeEntry::Dir { .. } => {
                check_slot(dest, rel)?;
                let p = dest.join(rel);
                fs::create_dir(&p).map_err(|e| MirrorError::io(p, e))?;
            }
            TreeEntry::File {
                digest, size, mode, ..
            } => {
                let reader = open(digest).map_err(|err| MirrorError::Open {
                    entry: rel.to_string(),
                    digest: digest.to_string(),
                    source: err.into(),
                })?;
                write_verified(dest, rel, digest, *size, *mode, reader, Commit::AtEnd)?;
            }
            TreeEntry::Symlink { target, .. } => {
                check_slot(dest, rel)?;
                make_symlink(target, &dest.join(rel))?;
            }
            TreeEntry::HardLink { target, .. } => {
                check_slot(dest, rel)?;
                // validate() made sure the target is a regular file this call wrote.
                let (from, to) = (dest.join(target), dest.join(rel));
                fs::hard_link(&from, &to).map_err(|e| MirrorError::io(to, e))?;
            }
        }
    }
    finish_sync(sync, dest)
}

#[cfg(unix)]
fn make_symlink(target: &str, at: &Path) -> Result<(), MirrorError> {
    std::os::unix::fs::symlink(target, at).map_err(|e| MirrorError::io(at, e))
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, at: &Path) -> Result<(), MirrorError> {
    Err(MirrorError::io(
        at,
        io::Error::new(io::ErrorKind::Unsupported, "symlinks need a Unix system"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_bytes;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn file(path: &str, content: &[u8]) -> TreeEntry {
        TreeEntry::File {
            path: path.into(),
            digest: sha256_bytes(content),
            size: content.len() as u64,
            mode: 0o640,
            source: None,
        }
    }

    fn dir(path: &str) -> TreeEntry {
        TreeEntry::Dir { path: path.into() }
    }

    fn link(path: &str, target: &str) -> TreeEntry {
        TreeEntry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }

    fn store(contents: &[&[u8]]) -> BTreeMap<Digest, Vec<u8>> {
        contents
            .iter()
            .map(|c| (sha256_bytes(c), c.to_vec()))
            .collect()
    }

    fn write(
        dest: &Path,
        tree: &[TreeEntry],
        s: &BTreeMap<Digest, Vec<u8>>,
    ) -> Result<(), MirrorError> {
        write_tree(dest, tree, |d| {
            s.get(d)
                .map(|b| Box::new(io::Cursor::new(b.clone())) as Box<dyn Read>)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such blob"))
        })
    }

    #[test]
    fn writes_dirs_files_symlinks_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("out");
        let tree = [
            dir("a"),
            file("a/f", b"hello"),
            link("a/l", "f"),
            file("top", b""),
        ];
        write(&dest, &tree, &store(&[b"hello", b""])).unwrap();
        assert_eq!(fs::read(dest.join("a/f")).unwrap(), b"hello");
        assert_eq!(fs::read_link(dest.join("a/l")).unwrap(), PathBuf::from("f"));
        assert_eq!(fs::read(dest.join("top")).unwrap(), b"");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = fs::metadata(dest.join("a/f")).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o640);
        }
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dest.join("a")).unwrap().count(), 2);
    }

    #[test]
    fn refuses_hostile_paths_before_writing() {
        let s = store(&[b"x"]);
        for (tree, what) in [
            (vec![file("../evil", b"x")], "'.' or '..'"),
            (vec![file("/etc/evil", b"x")], "absolute"),
            (vec![dir("a"), file("a//b", b"x")], "empty component"),
            (vec![file("a/b", b"x")], "not listed before"),
            (vec![file("a", b"x"), file("a", b"x")], "listed twice"),
            (vec![link("l", "."), file("l/x", b"x")], "not a directory"),
            (vec![file("a\0b", b"x")], "NUL"),
        ] {
            let t = tempfile::tempdir().unwrap();
            let e = write(t.path(), &tree, &s).unwrap_err();
            assert!(matches!(e, MirrorError::UnsafePath { .. }), "{e}");
            assert!(e.to_string().contains(what), "{e} / {what}");
            assert_eq!(
                fs::read_dir(t.path()).unwrap().count(),
                0,
                "nothing written"
            );
        }
        for target in ["/etc/passwd", "../x", "a/../../x", ""] {
            let t = tempfile::tempdir().unwrap();
            let e = write(t.path(), &[link("l", target)], &s).unwrap_err();
            assert!(
                matches!(e, MirrorError::UnsafeSymlink { .. }),
                "{target}: {e}"
            );
            assert!(e.to_string().contains("l:"), "{e}");
        }
    }

    /// Extract's temporary names were predictable (`.NAME.ferry-partial`);
    /// a link planted there (or at the final name) must never be written through.
    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_old_temporary_name_or_the_final_name_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let dest = t.path().join("o");
        fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(&victim, dest.join(".f.ferry-partial")).unwrap();
        let blob = b"blob bytes";
        let digest = sha256_bytes(blob);
        write_verified(
            &dest,
            "f",
            &digest,
            blob.len() as u64,
            0o644,
            &blob[..],
            Commit::Now,
        )
        .unwrap();
        assert_eq!(fs::read(dest.join("f")).unwrap(), blob);
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        std::os::unix::fs::symlink(&victim, dest.join("g")).unwrap();
        let e = write_verified(
            &dest,
            "g",
            &digest,
            blob.len() as u64,
            0o644,
            &blob[..],
            Commit::AtEnd,
        )
        .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let mut left: Vec<String> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".f.ferry-partial", "f", "g"]);
    }

    #[test]
    fn a_tree_entry_named_like_the_temporary_is_no_obstacle() {
        let t = tempfile::tempdir().unwrap();
        let tree = [file(".f.ferry-partial", b"mine"), file("f", b"yours")];
        write(&t.path().join("o"), &tree, &store(&[b"mine", b"yours"])).unwrap();
        assert_eq!(
            fs::read(t.path().join("o/.f.ferry-partial")).unwrap(),
            b"mine"
        );
        assert_eq!(fs::read(t.path().join("o/f")).unwrap(), b"yours");
    }

    #[test]
    fn refuses_non_empty_destination() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("x"), b"").unwrap();
        let e = write(t.path(), &[dir("a")], &store(&[])).unwrap_err();
        assert!(matches!(e, MirrorError::DestinationNotEmpty { .. }), "{e}");
    }

    #[test]
    fn refuses_content_that_lies() {
        let t = tempfile::tempdir().unwrap();
        let mut s = store(&[]);
        let claimed = sha256_bytes(b"good");
        s.insert(claimed, b"evil".to_vec());
        let e = write(&t.path().join("o"), &[file("f", b"good")], &s).unwrap_err();
        assert!(matches!(e, MirrorError::ContentMismatch { .. }), "{e}");
        // Digests are binary in the model; messages still spell them `sha256:<hex>`.
        assert_eq!(
            e.to_string(),
            format!(
                "tree entry \"f\": content of sha256:{}: content hashes to sha256:{}",
                claimed.hex(),
                sha256_bytes(b"evil").hex()
            )
        );
        assert!(!t.path().join("o/f").exists());
        assert_eq!(
            fs::read_dir(t.path().join("o")).unwrap().count(),
            0,
            "temp removed"
        );

        let t = tempfile::tempdir().unwrap();
        let mut s = store(&[]);
        s.insert(claimed, b"good and more".to_vec());
        let e = write(&t.path().join("o"), &[file("f", b"good")], &s).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");

        let t = tempfile::tempdir().unwrap();
        let e = write(&t.path().join("o"), &[file("f", b"good")], &store(&[])).unwrap_err();
        assert!(matches!(e, MirrorError::Open { .. }), "{e}");
        assert!(e.to_string().contains("no such blob"), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("sha256:{}: cannot open", claimed.hex())),
            "{e}"
        );
    }
}
