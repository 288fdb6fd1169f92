//! Which of the four layouts a directory holds (README.md "Input layouts").

use std::fs;
use std::io::Read;
use std::path::Path;

use walkdir::WalkDir;

use crate::error::MirrorError;
use crate::layout_dir::{OCI_LAYOUT_FILE, VERSION_FILE, VERSION_PREFIX};
use crate::model::LayoutKind;
use crate::oc_file::{self, OcRepo};
use crate::registry_storage::{self, RegistryRepo};
use crate::tree::is_dir_no_follow;
use crate::tree::relative;

/// What was looked for, in the words of the `NotAMirror` message.
pub const LOOKED_FOR: &str = "no v2/<repo>/manifests (oc file://), no oci-layout (OCI layout), \
no docker/registry/v2 (registry storage), no version file (skopeo dir:)";

/// A detected layout with what detection found.
pub(crate) enum Detected {
    OcFile(Vec<OcRepo>),
    /// Layout directories relative to the root (`""` = the root itself), sorted.
    Oci(Vec<String>),
    RegistryStorage(Vec<RegistryRepo>),
    /// `dir:` directories relative to the root (`""` = the root itself), sorted.
    SkopeoDir(Vec<String>),
}

impl Detected {
    pub fn kind(&self) -> LayoutKind {
        match self {
            Detected::OcFile(_) => LayoutKind::OcFile,
            Detected::Oci(_) => LayoutKind::Oci,
            Detected::RegistryStorage(_) => LayoutKind::RegistryStorage,
            Detected::SkopeoDir(_) => LayoutKind::SkopeoDir,
        }
    }
}

fn is_file_no_follow(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

fn is_skopeo_dir(dir: &Path) -> Result<bool, MirrorError> {
    let version = dir.join(VERSION_FILE);
    if !is_file_no_follow(&version) {
        return Ok(false);
    }
    let mut head = Vec::new();
    fs::File::open(&version)
        .and_then(|f| f.take(VERSION_PREFIX.len() as u64).read_to_end(&mut head))
        .map_err(|e| MirrorError::io(&version, e))?;
    Ok(head == VERSION_PREFIX)
}

/// OCI layouts and `dir:` layouts at or below `root`, relative and sorted. The search does
/// not follow symlinks nor descend into a layout it has found.
fn find_layout_dirs(root: &Path) -> Result<(Vec<String>, Vec<String>), MirrorError> {
    let mut oci = Vec::new();
    let mut dirs = Vec::new();
    let mut it = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(next) = it.next() {
        let entry = next.map_err(|e| MirrorError::walk(root, e))?;
        if !entry.file_type().is_dir() {
            continue;
        }
        let dir = entry.path();
        if is_file_no_follow(&dir.join(OCI_LAYOUT_FILE)) {
            oci.push(relative(root, dir)?);
            it.skip_current_dir();
        } else if is_skopeo_dir(dir)? {
            dirs.push(relative(root, dir)?);
            it.skip_current_dir();
        }
    }
    oci.sort();
    dirs.sort();
    Ok((oci, dirs))
}

pub(crate) fn detect(root: &Path) -> Result<Detected, MirrorError> {
    let meta = fs::metadata(root).map_err(|e| MirrorError::io(root, e))?;
    if !meta.is_dir() {
        return Err(MirrorError::NotAMirror {
            path: root.to_path_buf(),
            looked_for: format!("not a directory; {LOOKED_FOR}"),
        });
    }
    let oc = oc_file::find_repos(root)?;
    let registry = registry_storage::find_repos(root)?;
    match (oc.is_empty(), registry) {
        (false, Some(_)) => {
            return Err(MirrorError::AmbiguousLayout {
                path: root.to_path_buf(),
                found: "oc file:// v2/ and registry storage docker/registry/v2".into(),
            })
        }
        (false, None) => return Ok(Detected::OcFile(oc)),
        (true, Some(repos)) => return Ok(Detected::RegistryStorage(repos)),
        (true, None) => {}
    }
    match find_layout_dirs(root)? {
        (oci, dirs) if !oci.is_empty() && !dirs.is_empty() => Err(MirrorError::AmbiguousLayout {
            path: root.to_path_buf(),
            found: format!(
                "OCI layouts ({}) and skopeo dir: layouts ({})",
                shown(&oci),
                shown(&dirs)
            ),
        }),
        (oci, _) if !oci.is_empty() => Ok(Detected::Oci(oci)),
        (_, dirs) if !dirs.is_empty() => Ok(Detected::SkopeoDir(dirs)),
        _ => Err(MirrorError::NotAMirror {
            path: root.to_path_buf(),
            looked_for: format!("{LOOKED_FOR}{}", hint(root)),
        }),
    }
}

/// A pointer to the right directory when `root` looks like the inside of a mirror.
fn hint(root: &Path) -> &'static str {
    let has = |p: &str| is_dir_no_follow(&root.join(p));
    if (has("repositories") && has("blobs")) || has("v2/repositories") || has("registry/v2") {
        return "; this looks like part of registry storage: point at the directory that holds docker/registry/v2";
    }
    if has("blobs") && has("manifests") {
        return "; this looks like one oc file:// repository: point at the directory that holds v2/";
    }
    ". Point ferry-pack at the mirror's root directory"
}

fn shown(dirs: &[String]) -> String {
    let mut s: Vec<&str> = dirs
        .iter()
        .take(3)
        .map(|d| if d.is_empty() { "." } else { d.as_str() })
        .collect();
    if dirs.len() > 3 {
        s.push("…");
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_it_looked_for() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("v2")).unwrap();
        fs::write(t.path().join("version"), "not skopeo").unwrap();
        let e = detect(t.path()).err().unwrap();
        let msg = e.to_string();
        assert!(matches!(e, MirrorError::NotAMirror { .. }));
        assert!(msg.contains(&t.path().display().to_string()), "{msg}");
        for needle in [
            "v2/<repo>/manifests",
            "oci-layout",
            "docker/registry/v2",
            "version file",
        ] {
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn points_at_the_right_directory() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("v2/repositories")).unwrap();
        fs::create_dir_all(t.path().join("v2/blobs")).unwrap();
        let msg = detect(t.path()).err().unwrap().to_string();
        assert!(
            msg.ends_with("point at the directory that holds docker/registry/v2"),
            "{msg}"
        );

        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("blobs")).unwrap();
        fs::create_dir_all(t.path().join("manifests")).unwrap();
        let msg = detect(t.path()).err().unwrap().to_string();
        assert!(
            msg.ends_with("point at the directory that holds v2/"),
            "{msg}"
        );
    }

    #[test]
    fn detects_each_layout() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("v2/ns/app/blobs")).unwrap();
        fs::create_dir_all(r.join("v2/ns/app/manifests")).unwrap();
        fs::create_dir_all(r.join("v2/ns/app/sub/blobs")).unwrap();
        fs::create_dir_all(r.join("v2/ns/app/sub/manifests")).unwrap();
        match detect(r).unwrap() {
            Detected::OcFile(repos) => {
                let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
                assert_eq!(names, ["ns/app", "ns/app/sub"]);
            }
            d => panic!("{:?}", d.kind()),
        }

        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(
            t.path()
                .join("docker/registry/v2/repositories/a/b/_manifests"),
        )
        .unwrap();
        fs::create_dir_all(
            t.path()
                .join("docker/registry/v2/repositories/a/b/_layers/x/_manifests"),
        )
        .unwrap();
        match detect(t.path()).unwrap() {
            Detected::RegistryStorage(repos) => {
                let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
                assert_eq!(names, ["a/b"]);
            }
            d => panic!("{:?}", d.kind()),
        }

        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("x/y")).unwrap();
        fs::write(t.path().join("x/y/oci-layout"), OCI_LAYOUT_CONTENT_FOR_TEST).unwrap();
        fs::create_dir_all(t.path().join("z")).unwrap();
        fs::write(t.path().join("z/oci-layout"), OCI_LAYOUT_CONTENT_FOR_TEST).unwrap();
        match detect(t.path()).unwrap() {
            Detected::Oci(dirs) => assert_eq!(dirs, ["x/y", "z"]),
            d => panic!("{:?}", d.kind()),
        }

        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join("version"),
            "Directory Transport Version: 1.1\n",
        )
        .unwrap();
        match detect(t.path()).unwrap() {
            Detected::SkopeoDir(dirs) => assert_eq!(dirs, [""]),
            d => panic!("{:?}", d.kind()),
        }

        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a:1")).unwrap();
        fs::write(
            t.path().join("a:1/version"),
            "Directory Transport Version: 1.1\n",
        )
        .unwrap();
        fs::create_dir_all(t.path().join("b")).unwrap();
        fs::write(t.path().join("b/oci-layout"), OCI_LAYOUT_CONTENT_FOR_TEST).unwrap();
        assert!(matches!(
            detect(t.path()),
            Err(MirrorError::AmbiguousLayout { .. })
        ));
    }

    const OCI_LAYOUT_CONTENT_FOR_TEST: &[u8] = crate::oci_layout::OCI_LAYOUT_CONTENT;
}
