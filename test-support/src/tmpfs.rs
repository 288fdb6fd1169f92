//! Small disks: a tmpfs of a fixed size, mounted on a fresh temporary directory (root
//! needed, as in CI), for the tests of what ferry does when a disk fills up.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::cmd::{run, tempdir, OutputExt};

/// Whether this process runs as root (mounting a tmpfs needs it).
pub fn is_root() -> bool {
    run("id", ["-u"]).stdout_text().trim() == "0"
}

/// A tmpfs of a fixed size, mounted on a fresh temporary directory; unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: TempDir,
}

impl Tmpfs {
    /// `mount -t tmpfs -o size=SIZE`; the reason when it cannot be mounted (not root, no
    /// CAP_SYS_ADMIN in this container, …).
    pub fn mount(size: &str) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not root: mounting a tmpfs needs root".into());
        }
        let dir = tempdir();
        let path = dir.path().join("mnt");
        fs::create_dir(&path).map_err(|e| e.to_string())?;
        let opts = format!("size={size},mode=0755");
        let out = run(
            "mount",
            [
                OsStr::new("-t"),
                OsStr::new("tmpfs"),
                OsStr::new("-o"),
                OsStr::new(&opts),
                OsStr::new("tmpfs"),
                path.as_os_str(),
            ],
        );
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", out.text().trim()));
        }
        Ok(Tmpfs { path, _dir: dir })
    }

    /// [`Tmpfs::mount`], or a panic that says why not: a test that cannot get its small
    /// disk must fail, never pass without testing (README "Tests": run them as root).
    #[track_caller]
    pub fn require(size: &str) -> Tmpfs {
        Tmpfs::mount(size).unwrap_or_else(|why| {
            panic!("this test needs a {size} tmpfs and could not mount one ({why}): run the tests as root, as CI does (README \"Tests\")")
        })
    }

    /// Writes junk into `<tmpfs>/junk` until the file system is full; bytes written.
    pub fn fill(&self) -> u64 {
        fill(&self.path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = run("umount", [self.path.as_os_str()]);
        if !out.status.success() {
            let _ = run("umount", [OsStr::new("-l"), self.path.as_os_str()]);
        }
    }
}

/// Writes junk into `<dir>/junk` until a write fails (the disk is full); bytes written.
pub fn fill(dir: &Path) -> u64 {
    let Ok(mut f) = fs::File::create(dir.join("junk")) else {
        return 0;
    };
    let buf = [0xA5u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        match f.write(&buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    total
}
