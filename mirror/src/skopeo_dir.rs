//! skopeo `dir:` layouts (containers/image `directory/`):
//!
//! ```text
//! <dir>/version                 "Directory Transport Version: 1.1\n"
//! <dir>/manifest.json           the top-level manifest or index
//! <dir>/<hex>.manifest.json     child manifests of an index (skopeo copy --all)
//! <dir>/<hex>                   configs and layers
//! <dir>/signature-N, <hex>.signature-N
//! ```
//!
//! Every `dir:` is one image. Its path below the mirror root names it: `repo/path:tag`,
//! split at the last `:` of the last component (or `@sha256:…` for digest-only); when the
//! first component looks like a registry host it is the original registry, so
//! `quay.io/ns/app:1.0` is repository `ns/app`, tag `1.0`, source `quay.io/ns/app:1.0`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::closure::{existing_file, read_capped, Collector, Store};
use crate::digest;
use crate::error::MirrorError;
use crate::layout_dir::repository_for_dir;
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::tree::Class;
use oci::Written;

struct DirStore {
    dir: PathBuf,
    /// hex of `manifest.json`, whose name does not carry it.
    top_hex: String,
}

impl Store for DirStore {
    fn manifest_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        if hex == self.top_hex {
            return existing_file(self.dir.join("manifest.json"));
        }
        match existing_file(self.dir.join(format!("{hex}.manifest.json")))? {
            Some(found) => Ok(Some(found)),
            None => existing_file(self.dir.join(hex)),
        }
    }
    fn blob_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        existing_file(self.dir.join(hex))
    }
}

/// Tree classification for the `dir:` layouts at `dirs` (relative; `""` = the root):
/// `<hex>` and `<hex>.manifest.json` are blobs; `dir-put-blob*` temporaries are leftovers.
pub(crate) fn classify(dirs: &BTreeSet<String>, rel: &str, is_dir: bool) -> Class {
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    if !dirs.contains(parent) {
        return Class::Plain;
    }
    if name.starts_with("dir-put-blob") {
        return Class::Skip;
    }
    let hex = name.strip_suffix(".manifest.json").unwrap_or(name);
    if !is_dir {
        if let Ok(d) = oci::Digest::from_hex(hex) {
            return Class::Blob(d);
        }
    }
    Class::Plain
}

/// Repository, tag and source of the `dir:` at `rel` (see the module docs).
fn name_dir(
    root: &Path,
    rel: &str,
) -> Result<(String, Option<String>, Option<String>), MirrorError> {
    let full = if rel.is_empty() {
        repository_for_dir(root, rel)?
    } else {
        rel.to_string()
    };
    let path = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let r = Written::parse(&full).map_err(|e| {
        MirrorError::malformed(
            path,
            format!("cannot name an image from the directory name {full:?}: {e}"),
        )
    })?;
    let source = r.host.map(|_| full.clone());
    Ok((r.path.to_string(), r.tag.map(str::to_string), source))
}

pub(crate) fn read_images(
    root: &Path,
    dirs: &[String],
    c: &mut Collector,
) -> Result<(), MirrorError> {
    for rel in dirs {
        c.end_scope();
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let manifest = dir.join("manifest.json");
        let bytes = read_capped(&manifest, MAX_MANIFEST_SIZE)?;
        let top = digest::sha256_bytes(&bytes);
        let store = DirStore {
            dir: dir.clone(),
            top_hex: top.hex(),
        };
        let (repository, tag, source) = name_dir(root, rel)?;
        c.add_image(
            &store,
            &repository,
            tag.as_deref(),
            &top.to_string(),
            None,
            source,
            &manifest,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout_dir::VERSION_FILE;

    #[test]
    fn names_dirs() {
        let root = Path::new("/nonexistent");
        assert_eq!(
            name_dir(root, "quay.io/ns/app:1.0").unwrap(),
            (
                "ns/app".into(),
                Some("1.0".into()),
                Some("quay.io/ns/app:1.0".into())
            )
        );
        assert_eq!(
            name_dir(root, "ns/app:1.0").unwrap(),
            ("ns/app".into(), Some("1.0".into()), None)
        );
        assert_eq!(
            name_dir(root, "ns/app").unwrap(),
            ("ns/app".into(), None, None)
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            name_dir(root, &format!("localhost:5000/app@{d}")).unwrap(),
            ("app".into(), None, Some(format!("localhost:5000/app@{d}")))
        );
        assert!(name_dir(root, "app:").is_err());
    }

    #[test]
    fn classifies() {
        let dirs: BTreeSet<String> = ["a/b:1".to_string()].into();
        let hex = "0".repeat(64);
        assert_eq!(
            classify(&dirs, &format!("a/b:1/{hex}"), false),
            Class::Blob(oci::Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(
            classify(&dirs, &format!("a/b:1/{hex}.manifest.json"), false),
            Class::Blob(oci::Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(classify(&dirs, "a/b:1/manifest.json", false), Class::Plain);
        assert_eq!(classify(&dirs, "a/b:1/dir-put-blob999", false), Class::Skip);
        assert_eq!(classify(&dirs, &format!("a/{hex}"), false), Class::Plain);
    }

    use crate::testkit::{hex, write, Kit};

    fn dir_layout(
        dir: &Path,
        kit: &Kit,
        top: &crate::testkit::Made,
        children: &[&crate::testkit::Made],
    ) {
        write(
            &dir.join(VERSION_FILE),
            b"Directory Transport Version: 1.1\n",
        );
        write(&dir.join("manifest.json"), kit.bytes(&top.digest));
        for c in children {
            write(
                &dir.join(format!("{}.manifest.json", hex(&c.digest))),
                kit.bytes(&c.digest),
            );
        }
        let manifests: Vec<oci::Digest> = std::iter::once(top)
            .chain(children.iter().copied())
            .map(|m| m.digest)
            .collect();
        for b in &top.closure {
            if !manifests.contains(b) {
                write(&dir.join(hex(b)), kit.bytes(b));
            }
        }
    }

    #[test]
    fn reads_a_root_dir_and_registry_named_dirs() {
        let mut kit = Kit::default();
        let a = kit.image("a", false, 1);
        let c1 = kit.image("c1", true, 1);
        let c2 = kit.image("c2", true, 1);
        let list = kit.index(true, &[&c1, &c2]);
        let t = tempfile::tempdir().unwrap();

        let root = t.path().join("app:1.0");
        dir_layout(&root, &kit, &a, &[]);
        let m = crate::read_mirror(&root).unwrap();
        assert_eq!(m.kind, crate::LayoutKind::SkopeoDir);
        assert_eq!(
            (m.images[0].repository.as_str(), m.images[0].tags.as_slice()),
            ("app", &["1.0".to_string()][..])
        );
        assert_eq!(m.images[0].digest, a.digest);

        let root = t.path().join("many");
        dir_layout(&root.join("quay.io/ns/multi:v2"), &kit, &list, &[&c1, &c2]);
        dir_layout(&root.join(format!("ns/app@{}", a.digest)), &kit, &a, &[]);
        let m = crate::read_mirror(&root).unwrap();
        let got: Vec<(&str, &[String], Option<&str>)> = m
            .images
            .iter()
            .map(|i| {
                (
                    i.repository.as_str(),
                    i.tags.as_slice(),
                    i.source.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ns/app", &[][..], None),
                (
                    "ns/multi",
                    &["v2".to_string()][..],
                    Some("quay.io/ns/multi:v2")
                ),
            ]
        );
        assert_eq!(m.images[1].blobs, list.closure);
        assert_eq!(&*m.images[1].media_type, oci::media_type::DOCKER_LIST);
    }
}
