//! How ferry writes every file it leaves behind (volumes, bundle manifests, cluster
//! manifests, receipts, the state directory, extracted mirrors).
//!
//! A bundle id is reproducible, so every name ferry writes is known in advance; a plain
//! `File::create` of a predictable temporary name lets anyone who can write the directory
//! plant a symbolic link there and have ferry overwrite the link's target. So:
//! - the temporary is created with `O_CREAT|O_EXCL` (`create_new`), which never follows a
//!   link, under a name with a random suffix, in the destination's own directory (so the
//!   final rename stays on one filesystem and is atomic);
//! - a final name that exists as a symbolic link is refused, not replaced and not followed;
//! - the data is fsynced before the rename and the directory after it, so a name that
//!   exists names complete bytes even after a power cut (a writer of thousands of files
//!   commits them unsynced and makes them durable together with one [`SyncAtEnd`]);
//! - a temporary that is not committed (an error, a panic, a full disk) is removed.
//!
//! This crate does no other I/O and knows nothing of ferry's formats.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The ending of every temporary this crate creates: `.<name>.<16 hex>.partial`.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A file being written under a temporary name; [`Partial::commit`] gives it its final name.
/// Dropped without a commit, the temporary is removed.
#[derive(Debug)]
pub struct Partial {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Partial {
    /// Creates the temporary for `dest` (mode 0644 on Unix, less the umask).
    pub fn create(dest: &Path) -> io::Result<Partial> {
        Self::create_with_mode(dest, 0o644)
    }

    /// Creates the temporary for `dest` with the given Unix permission bits.
    pub fn create_with_mode(dest: &Path, mode: u32) -> io::Result<Partial> {
        refuse_symlink(dest)?;
        let (dir, name) = split(dest)?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        // A collision of 64 random bits means someone is guessing; a few tries, then give up.
        let mut last = None;
        for _ in 0..4 {
            let tmp = dir.join(format!(".{name}.{}{PARTIAL_SUFFIX}", random_hex()?));
            match opts.open(&tmp) {
                Ok(file) => {
                    return Ok(Partial {
                        file: Some(file),
                        tmp,
                        dest: dest.to_path_buf(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a Partial holds its file until commit")
    }

    /// The temporary's path (for messages).
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The final name this file will get.
    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// fsyncs the data, renames the temporary to its final name (refusing a symlink there)
    /// and fsyncs the directory. On failure the temporary is removed.
    pub fn commit(mut self) -> io::Result<()> {
        self.file().sync_all()?;
        self.rename_into_place()?;
        // The rename is durable only once the directory is: best effort, as some
        // filesystems (FAT on some kernels) refuse fsync on a directory.
        if let Some(dir) = self.dest.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Renames the temporary to its final name (refusing a symlink there) without syncing
    /// anything: the bytes and the name become durable when the [`SyncAtEnd`] begun before
    /// this file was written finishes. A kill cannot leave a short file under the final name
    /// (every byte was written before the rename); only a power cut before that finish can.
    /// Where there is no `syncfs` (not Linux) this is [`Partial::commit`].
    pub fn commit_unsynced(mut self) -> io::Result<()> {
        if !cfg!(target_os = "linux") {
            return self.commit();
        }
        self.rename_into_place()
    }

    /// Closes the file and gives the temporary its final name, refusing a symlink there; from
    /// then on there is no temporary for `Drop` to remove (on failure there still is).
    fn rename_into_place(&mut self) -> io::Result<()> {
        drop(self.file.take().expect("commit is called once"));
        refuse_symlink(&self.dest)?;
        fs::rename(&self.tmp, &self.dest)?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

/// Many files made durable together, for a writer of thousands of files (extract writes one
/// per blob: 1.8×10^5 at a full catalog) where a commit's two fsyncs each (data, directory)
/// took five times as long as the writing. Begin it before the first
/// [`Partial::commit_unsynced`]; [`SyncAtEnd::finish`] is one `syncfs(2)` of the filesystem
/// holding the directory, after which every one of those files and names is durable.
/// A writer that marks completeness with a last file (an OCI layout's `index.json`) writes
/// that one with [`Partial::commit`] after the finish.
#[derive(Debug)]
pub struct SyncAtEnd {
    dir: File,
}

impl SyncAtEnd {
    /// Opens `dir` (which must exist). Opening it first matters: `syncfs` reports a write-back
    /// error (a failing disk) that happened on the filesystem after this open, not before.
    pub fn begin(dir: &Path) -> io::Result<SyncAtEnd> {
        Ok(SyncAtEnd {
            dir: File::open(dir)?,
        })
    }

    /// Writes every dirty page of the filesystem back and waits for it; an I/O error of the
    /// write-back since [`SyncAtEnd::begin`] is returned here.
    pub fn finish(self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        rustix::fs::syncfs(&self.dir)?;
        // Elsewhere each file was committed with its own fsyncs; the directory is what is left.
        #[cfg(not(target_os = "linux"))]
        let _ = self.dir.sync_all();
        Ok(())
    }
}

impl Write for Partial {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file.take();
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` as one durable, link-safe replacement.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, 0o644)
}

/// [`write`] of bytes made as they are written (a serializer's output, tens of MB that
/// need not be held whole): `make` writes them through a buffer into the temporary, which
/// is committed when it returns `Ok` and removed otherwise.
pub fn write_streamed(
    path: &Path,
    make: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut p = Partial::create(path)?;
    let mut out = io::BufWriter::with_capacity(1 << 16, &mut p);
    make(&mut out)?;
    out.flush()?;
    drop(out);
    p.commit()
}

/// [`write`] with the given Unix permission bits.
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut p = Partial::create_with_mode(path, mode)?;
    p.file().write_all(bytes)?;
    p.commit()
}

/// An error when `path` exists as a symbolic link (ferry never writes through one).
pub fn refuse_symlink(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is a symbolic link; ferry does not write through links: remove it, or write elsewhere",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether `file_name` is a temporary this crate made for a destination named `dest_name`
/// (a rerun may remove its own leftovers after a kill).
pub fn is_partial_of(file_name: &str, dest_name: &str) -> bool {
    let Some(rest) = file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(dest_name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(PARTIAL_SUFFIX))
    else {
        return false;
    };
    rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit())
}

fn split(dest: &Path) -> io::Result<(PathBuf, String)> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", dest.display()),
            )
        })?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

fn random_hex() -> io::Result<String> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(hex::encode(b))
}

/// The nearest existing directory at or above `dir` (which may be yet to be created).
pub fn nearest_existing(dir: &Path) -> &Path {
    let mut probe = dir;
    while !probe.exists() {
        probe = match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    probe
}

/// Free bytes for an unprivileged writer on the file system holding `dir` (or the nearest
/// existing parent, when `dir` is yet to be created).
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(nearest_existing(dir)).map_err(io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn unsynced_commits_are_in_place_after_the_finish_and_refuse_links() {
        let t = tempfile::tempdir().unwrap();
        let batch = SyncAtEnd::begin(t.path()).unwrap();
        for (name, bytes) in [("a", &b"one"[..]), ("b", b"two")] {
            let mut p = Partial::create(&t.path().join(name)).unwrap();
            p.write_all(bytes).unwrap();
            p.commit_unsynced().unwrap();
        }
        #[cfg(unix)]
        {
            let target = t.path().join("victim");
            fs::write(&target, b"precious").unwrap();
            let q = t.path().join("c");
            let mut p = Partial::create(&q).unwrap();
            p.write_all(b"blob").unwrap();
            std::os::unix::fs::symlink(&target, &q).unwrap();
            assert!(p.commit_unsynced().is_err());
            assert_eq!(fs::read(&target).unwrap(), b"precious");
            fs::remove_file(&q).unwrap();
            fs::remove_file(&target).unwrap();
        }
        batch.finish().unwrap();
        assert_eq!(fs::read(t.path().join("a")).unwrap(), b"one");
        assert_eq!(fs::read(t.path().join("b")).unwrap(), b"two");
        assert_eq!(names(t.path()), ["a", "b"]);
        assert!(SyncAtEnd::begin(&t.path().join("absent")).is_err());
    }

    #[test]
    fn writes_and_leaves_no_temporary() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a.json");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(names(t.path()), ["a.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_symlink_at_the_final_name_and_leaves_its_target_alone() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("victim");
        fs::write(&target, b"precious").unwrap();
        let p = t.path().join("out.tar");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let e = write(&p, b"volume").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        // A link planted after the temporary was made is refused at commit, too.
        let q = t.path().join("later.tar");
        let mut part = Partial::create(&q).unwrap();
        part.write_all(b"volume").unwrap();
        std::os::unix::fs::symlink(&target, &q).unwrap();
        assert!(part.commit().is_err());
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        assert_eq!(names(t.path()), ["later.tar", "out.tar", "victim"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_old_predictable_temporary_name_is_never_touched() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("victim");
        fs::write(&target, b"precious").unwrap();
        std::os::unix::fs::symlink(&target, t.path().join(".out.tar.partial")).unwrap();
        write(&t.path().join("out.tar"), b"volume").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn an_uncommitted_partial_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        {
            let mut part = Partial::create(&p).unwrap();
            part.write_all(b"half").unwrap();
            assert!(part.path().exists());
            assert!(is_partial_of(
                &part.path().file_name().unwrap().to_string_lossy(),
                "x"
            ));
        }
        assert!(names(t.path()).is_empty());
    }

    #[test]
    fn recognises_only_its_own_temporaries() {
        assert!(is_partial_of(".v.tar.0123456789abcdef.partial", "v.tar"));
        assert!(!is_partial_of(".v.tar.partial", "v.tar"));
        assert!(!is_partial_of(".v.tar.0123456789abcdeg.partial", "v.tar"));
        assert!(!is_partial_of(".w.tar.0123456789abcdef.partial", "v.tar"));
    }
}
