//! The `oc image mirror` / `oc adm catalog mirror … file://DIR` layout
//! (openshift/oc `pkg/cli/image/imagesource/file.go`):
//!
//! ```text
//! v2/<repo>/blobs/sha256:<hex>        every blob, manifests included
//! v2/<repo>/manifests/sha256:<hex>    manifests, hard links of the blobs
//! v2/<repo>/manifests/<tag>           symlink → sha256:<hex>
//! manifests-<name>-<ts>/mapping.txt   SRC=DST lines: the original references
//! manifests-<name>-<ts>/catalogSource.yaml   the catalog oc mirrored (spec.image)
//! ```
//!
//! No media types are stored; they are guessed from the JSON. Writes go to `*.download`
//! and unknown-digest uploads to `blobs/.tmp-*`; both are leftovers when a run fails.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci::{Reference, ReferenceError, Written};
use walkdir::WalkDir;

use crate::closure::{existing_file, read_capped, Collector, Store};
use crate::digest;
use crate::error::MirrorError;
use crate::model::{CatalogMark, Image};
use crate::tree::{is_dir_no_follow, relative, sorted_dir, Class};

/// Cap on a mapping.txt: a full operator catalog maps ~10^4 images in a few MB.
const MAX_MAPPING_SIZE: u64 = 256 * 1024 * 1024;

/// One repository, `v2/<name>/`.
#[derive(Debug, Clone)]
pub(crate) struct OcRepo {
    pub name: String,
    pub dir: PathBuf,
}

impl Store for OcRepo {
    fn manifest_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        let name = format!("sha256:{hex}");
        match existing_file(self.dir.join("manifests").join(&name))? {
            Some(found) => Ok(Some(found)),
            // oc writes manifests to blobs/ first and links them into manifests/.
            None => existing_file(self.dir.join("blobs").join(&name)),
        }
    }

    fn blob_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError> {
        existing_file(self.dir.join("blobs").join(format!("sha256:{hex}")))
    }
}

/// The repositories below `root/v2`: directories holding both `blobs/` and `manifests/`.
/// Repositories nest (`ubi8` and `ubi8/ubi-minimal`), so the search goes on below one.
/// Empty when `root` is not this layout.
pub(crate) fn find_repos(root: &Path) -> Result<Vec<OcRepo>, MirrorError> {
    let v2 = root.join("v2");
    let mut repos = Vec::new();
    if !is_dir_no_follow(&v2) {
        return Ok(repos);
    }
    let mut stack = vec![v2.clone()];
    while let Some(dir) = stack.pop() {
        let is_repo = dir != v2
            && is_dir_no_follow(&dir.join("blobs"))
            && is_dir_no_follow(&dir.join("manifests"));
        if is_repo {
            repos.push(OcRepo {
                name: relative(&v2, &dir)?,
                dir: dir.clone(),
            });
        }
        for entry in sorted_dir(&dir)? {
            let ft = entry
                .file_type()
                .map_err(|e| MirrorError::io(entry.path(), e))?;
            if !ft.is_dir()
                || (is_repo && (entry.file_name() == "blobs" || entry.file_name() == "manifests"))
            {
                continue;
            }
            stack.push(entry.path());
        }
    }
    repos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(repos)
}

/// Tree classification: digest-named files in `blobs/` and `manifests/` are blobs;
/// `*.download` and `blobs/.tmp-*` are leftovers.
pub(crate) fn classify(rel: &str, is_dir: bool) -> Class {
    if !rel.starts_with("v2/") {
        return Class::Plain;
    }
    let Some((parent, name)) = rel.rsplit_once('/') else {
        return Class::Plain;
    };
    let parent_name = parent.rsplit('/').next().unwrap_or(parent);
    if parent_name != "blobs" && parent_name != "manifests" {
        return Class::Plain;
    }
    if name.ends_with(".download") || (parent_name == "blobs" && name.starts_with(".tmp-")) {
        return Class::Skip;
    }
    if !is_dir {
        if let Ok(d) = oci::Digest::parse(name) {
            return Class::Blob(d);
        }
    }
    Class::Plain
}

/// Images of every repository: each tag symlink, and each manifest that is neither tagged
/// nor a child of an index in the same repository. Then original references from
/// `manifests-*/mapping.txt`.
pub(crate) fn read_images(
    root: &Path,
    repos: &[OcRepo],
    c: &mut Collector,
) -> Result<(), MirrorError> {
    for repo in repos {
        c.end_scope();
        let manifests_dir = repo.dir.join("manifests");
        let mut digests = BTreeSet::new();
        let mut tags = Vec::new();
        for entry in sorted_dir(&manifests_dir)? {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(MirrorError::NonUtf8Path { path });
            };
            if name.ends_with(".download") {
                continue;
            }
            let ft = entry.file_type().map_err(|e| MirrorError::io(&path, e))?;
            if digest::is_digest(&name) {
                if !ft.is_dir() {
                    digests.insert(name);
                }
            } else if ft.is_symlink() {
                // oc takes the digest from the target's base name (fileTagStore.Get).
                let target = fs::read_link(&path).map_err(|e| MirrorError::io(&path, e))?;
                let base = target
                    .file_name()
                    .and_then(|b| b.to_str())
                    .filter(|b| digest::is_digest(b))
                    .ok_or_else(|| {
                        MirrorError::malformed(
                            &path,
                            format!(
                                "tag symlink target {} does not name a sha256 digest",
                                target.display()
                            ),
                        )
                    })?;
                tags.push((name, base.to_string(), path));
            }
            // Other plain files are not tags to oc either (fileTagStore.All lists symlinks
            // only); they are still carried in the tree.
        }
        let tagged: BTreeSet<&str> = tags.iter().map(|(_, d, _)| d.as_str()).collect();
        let children = c.index_children(repo, &digests)?;
        for (tag, digest, path) in &tags {
            c.add_image(repo, &repo.name, Some(tag), digest, None, None, path)?;
        }
        for d in &digests {
            if !tagged.contains(d.as_str()) && !children.contains(d) {
                c.add_image(
                    repo,
                    &repo.name,
                    None,
                    d,
                    None,
                    None,
                    &manifests_dir.join(d),
                )?;
            }
        }
    }
    for file in manifests_files(root, "mapping.txt")? {
        apply_mapping(&file, c)?;
    }
    Ok(())
}

/// Every file called `name` under a top-level `manifests-*` directory (its name holds the
/// catalog's path, so it may be nested), sorted.
fn manifests_files(root: &Path, name: &str) -> Result<Vec<PathBuf>, MirrorError> {
    let mut files = Vec::new();
    for entry in sorted_dir(root)? {
        let is_manifests_dir = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("manifests-"))
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_manifests_dir {
            continue;
        }
        for e in WalkDir::new(entry.path())
            .follow_links(false)
            .sort_by_file_name()
        {
            let e = e.map_err(|e| MirrorError::walk(root, e))?;
            if e.file_type().is_file() && e.file_name() == name {
                files.push(e.into_path());
            }
        }
    }
    Ok(files)
}

/// `SRC=DST` or `SRC DST…` pairs of one mapping file, as `oc image mirror -f` reads them
/// (openshift/oc `pkg/cli/image/mirror/mappings.go`): `#` starts a comment.
pub(crate) fn parse_mapping(path: &Path, text: &str) -> Result<Vec<(String, String)>, MirrorError> {
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut plain = Vec::new();
        let mut with_eq = Vec::new();
        for arg in line.split_whitespace() {
            match arg.split_once('=') {
                Some((s, d)) if !s.is_empty() && !d.is_empty() => with_eq.push((s, d)),
                Some(_) => {
                    return Err(MirrorError::malformed(
                        path,
                        format!("line {}: {arg:?} is not a SRC=DST mapping", i + 1),
                    ))
                }
                None => plain.push(arg),
            }
        }
        if with_eq.is_empty() {
            if plain.len() < 2 {
                return Err(MirrorError::malformed(
                    path,
                    format!("line {}: expected SRC=DST or SRC DST", i + 1),
                ));
            }
            pairs.extend(
                plain[1..]
                    .iter()
                    .map(|d| (plain[0].to_string(), d.to_string())),
            );
        } else {
            pairs.extend(with_eq.iter().map(|(s, d)| (s.to_string(), d.to_string())));
        }
    }
    Ok(pairs)
}

fn apply_mapping(path: &Path, c: &mut Collector) -> Result<(), MirrorError> {
    let bytes = read_capped(path, MAX_MAPPING_SIZE)?;
    let text =
        String::from_utf8(bytes).map_err(|_| MirrorError::malformed(path, "not UTF-8 text"))?;
    for (src, dst) in parse_mapping(path, &text)? {
        let Some(dst) = dst.strip_prefix("file://") else {
            continue; // a registry destination: not in this mirror
        };
        if src.contains("://") {
            continue; // copied from another local store: the original is not known here
        }
        // `file:///x` loses one leading slash (imagesource.ParseReference).
        let dst = dst.strip_prefix('/').unwrap_or(dst);
        // oc wrote both sides with distribution's parser: a side that does not parse is
        // not oc's, and would name a repository no registry takes.
        let bad = |side: &str, e: ReferenceError| {
            MirrorError::malformed(path, format!("{side} of {src}={dst}: {e}"))
        };
        let d = Written::parse(dst).map_err(|e| bad("the destination", e))?;
        let s = Written::parse(&src).map_err(|e| bad("the source", e))?;
        // A destination without a tag takes the source's (mappings.go parseArgs).
        let digest = match d.tag.or(s.tag) {
            Some(tag) => c.tagged(d.path, tag).map(|d| d.to_string()),
            None => d.digest.or(s.digest).map(|d| d.to_string()),
        };
        if let Some(digest) = digest {
            let source = qualify_source(&src).map_err(|e| bad("the source", e))?;
            c.add_source(d.path, &digest, source);
        }
    }
    Ok(())
}

/// Cap on a catalogSource.yaml: one small object.
const MAX_CATALOG_SOURCE_SIZE: u64 = 1024 * 1024;

/// The images oc's own `manifests-*/catalogSource.yaml` files name as catalogs, and a
/// sentence for each such file whose image is not in this mirror.
///
/// `spec.image` is where oc put the catalog: this mirror (`file://…`), or a registry, in
/// which case the `mapping.txt` beside the file says what was copied there — from this
/// mirror (`file://…=DST`) or from the original (`SRC=DST`, SRC as recorded for an image).
pub(crate) fn catalog_marks(
    root: &Path,
    images: &[Image],
) -> Result<(Vec<CatalogMark>, Vec<String>), MirrorError> {
    let mut marks: Vec<CatalogMark> = Vec::new();
    let mut unresolved = Vec::new();
    for file in manifests_files(root, "catalogSource.yaml")? {
        let rel = relative(root, &file)?;
        let bytes = read_capped(&file, MAX_CATALOG_SOURCE_SIZE)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| MirrorError::malformed(&file, "not UTF-8 text"))?;
        let Some(image) = spec_image(&text) else {
            unresolved.push(format!("{rel} names no spec.image; not taken as a catalog"));
            continue;
        };
        let mut candidates = vec![image.clone()];
        let mapping = file.with_file_name("mapping.txt");
        if mapping.is_file() {
            let bytes = read_capped(&mapping, MAX_MAPPING_SIZE)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| MirrorError::malformed(&mapping, "not UTF-8 text"))?;
            for (src, dst) in parse_mapping(&mapping, &text)? {
                if dst == image || dst.strip_prefix("docker://") == Some(image.as_str()) {
                    candidates.push(src);
                }
            }
        }
        let found: Vec<usize> = (0..images.len())
            .filter(|&i| candidates.iter().any(|c| names_image(c, &images[i])))
            .collect();
        if found.is_empty() {
            unresolved.push(format!(
                "{rel} names {image} as its catalog, which is not in this mirror"
            ));
        }
        for image in found {
            if !marks.iter().any(|m| m.image == image) {
                marks.push(CatalogMark {
                    image,
                    file: rel.clone(),
                });
            }
        }
    }
    marks.sort_by_key(|m| m.image);
    Ok((marks, unresolved))
}

/// `spec.image` of the CatalogSource oc writes (openshift/oc
/// `pkg/cli/admin/catalog/mirror.go` writes it with `yaml.Marshal`: block style, one
/// `image:` key under `spec:`). A line scan, so no YAML parser is needed for one scalar.
fn spec_image(text: &str) -> Option<String> {
    let mut in_spec = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent == 0 && !t.is_empty() {
            in_spec = t == "spec:";
            continue;
        }
        if in_spec {
            if let Some(v) = t.strip_prefix("image:") {
                let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                return (!v.is_empty()).then(|| v.to_owned());
            }
        }
    }
    None
}

/// Whether `reference` names `img`: a `file://` reference (or a bare path) by its
/// repository in this mirror and its tag or digest; another by the image's recorded source.
fn names_image(reference: &str, img: &Image) -> bool {
    let local = reference
        .strip_prefix("file://")
        .map(|r| r.strip_prefix('/').unwrap_or(r));
    // A reference that does not parse names no image.
    let Ok(r) = Written::parse(local.unwrap_or(reference)) else {
        return false;
    };
    let path = match r.host {
        Some(h) => format!("{h}/{}", r.path),
        None => r.path.to_owned(),
    };
    let same_version = match (r.tag, r.digest) {
        (_, Some(d)) => d == img.digest,
        (Some(t), None) => img.tags.iter().any(|x| x == t),
        (None, None) => true,
    };
    if local.is_some() || img.source.is_none() {
        return (path == img.repository || r.path == img.repository) && same_version;
    }
    img.source
        .as_deref()
        .is_some_and(|s| s == reference || qualify_source(reference).is_ok_and(|q| q == s))
}

/// The source reference as a bundle records it. Kept as written when it names its
/// registry (`index.docker.io/x` stays so); otherwise Docker Hub's host is added the way
/// docker reads it (`busybox:1` → `docker.io/library/busybox:1`). This is what mirrors
/// recorded before the references were oci's: oci's parser validates and splits here,
/// it does not respell what bundles record.
fn qualify_source(s: &str) -> Result<String, ReferenceError> {
    if Written::parse(s)?.host.is_some() {
        Ok(s.to_string())
    } else {
        Ok(Reference::parse(s)?.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_blobs_and_leftovers() {
        let hex = "a".repeat(64);
        assert_eq!(
            classify(&format!("v2/a/b/blobs/sha256:{hex}"), false),
            Class::Blob(oci::Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(
            classify(&format!("v2/a/manifests/sha256:{hex}"), false),
            Class::Blob(oci::Digest::from_hex(&hex).unwrap())
        );
        assert_eq!(
            classify(&format!("v2/a/blobs/sha256:{hex}.download"), false),
            Class::Skip
        );
        assert_eq!(classify("v2/a/blobs/.tmp-12345", false), Class::Skip);
        assert_eq!(classify("v2/a/manifests/latest", false), Class::Plain);
        assert_eq!(classify("manifests-x/mapping.txt", false), Class::Plain);
        assert_eq!(
            classify(&format!("other/blobs/sha256:{hex}"), false),
            Class::Plain
        );
    }

    #[test]
    fn parses_mapping_forms() {
        let text = "# comment\nquay.io/a/b:1=file://x/b:1\n\nquay.io/c@sha256:00 file://x/c:t file://y/c:t # trailing\n";
        let pairs = parse_mapping(Path::new("mapping.txt"), text).unwrap();
        assert_eq!(
            pairs,
            [
                ("quay.io/a/b:1".to_string(), "file://x/b:1".to_string()),
                (
                    "quay.io/c@sha256:00".to_string(),
                    "file://x/c:t".to_string()
                ),
                (
                    "quay.io/c@sha256:00".to_string(),
                    "file://y/c:t".to_string()
                ),
            ]
        );
        let e = parse_mapping(Path::new("m.txt"), "onlyone\n").unwrap_err();
        assert!(
            e.to_string().contains("m.txt") && e.to_string().contains("line 1"),
            "{e}"
        );
    }

    use crate::digest::sha256_bytes;
    use crate::testkit::{write, Kit, Made};

    /// Writes `made` into repository `repo` the way oc does: blobs, manifests as hard
    /// links, and a tag symlink when `tag` is given.
    fn put(
        root: &Path,
        kit: &Kit,
        repo: &str,
        made: &Made,
        manifests: &[&oci::Digest],
        tag: Option<&str>,
    ) {
        let dir = root.join("v2").join(repo);
        for b in &made.closure {
            let blob = dir.join("blobs").join(b.to_string());
            if !blob.exists() {
                write(&blob, kit.bytes(b));
            }
            if manifests.contains(&b) {
                fs::create_dir_all(dir.join("manifests")).unwrap();
                let m = dir.join("manifests").join(b.to_string());
                if !m.exists() {
                    fs::hard_link(&blob, m).unwrap();
                }
            }
        }
        if let Some(tag) = tag {
            std::os::unix::fs::symlink(made.digest.to_string(), dir.join("manifests").join(tag))
                .unwrap();
        }
    }

    #[test]
    fn reads_tags_digest_only_manifests_and_mapping_sources() {
        let mut kit = Kit::default();
        let a = kit.image("a", true, 2);
        let c = kit.image("c", true, 1);
        let list = kit.index(true, &[&c]);
        let lone = kit.image("lone", false, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        put(root, &kit, "m/app", &a, &[&a.digest], Some("v1"));
        put(
            root,
            &kit,
            "m/app",
            &list,
            &[&list.digest, &c.digest],
            Some("multi"),
        );
        put(root, &kit, "m/app", &lone, &[&lone.digest], None);
        write(
            &root.join("manifests-app-1/mapping.txt"),
            format!(
                "# oc image mirror -f form\nquay.io/ns/app:v1 file://m/app\nfile://elsewhere/x:multi=file://m/app:multi\nns/lone@{} file://m/app\n",
                lone.digest
            )
            .as_bytes(),
        );
        let m = crate::read_mirror(root).unwrap();
        let got: Vec<(&[String], oci::Digest, Option<&str>)> = m
            .images
            .iter()
            .map(|i| (i.tags.as_slice(), i.digest, i.source.as_deref()))
            .collect();
        let lone_src = format!("docker.io/ns/lone@{}", lone.digest);
        let (v1, multi) = (["v1".to_string()], ["multi".to_string()]);
        let mut want = vec![
            (&v1[..], a.digest, Some("quay.io/ns/app:v1")),
            (&multi[..], list.digest, None),
            (&[][..], lone.digest, Some(lone_src.as_str())),
        ];
        want.sort_by_key(|w| w.1);
        assert_eq!(got, want);
        assert!(m.images.iter().all(|i| i.repository == "m/app"));
        let l = m.images.iter().find(|i| i.digest == list.digest).unwrap();
        assert_eq!(l.blobs, list.closure);
    }

    /// What a bundle records as an image's source is what mirrors recorded before the
    /// references were oci's: as written when it names a registry, else docker's reading.
    #[test]
    fn sources_are_recorded_as_before() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (written, recorded) in [
            ("quay.io/a/b:1", "quay.io/a/b:1".to_string()),
            ("index.docker.io/x:1", "index.docker.io/x:1".to_string()),
            ("docker.io/busybox", "docker.io/busybox".to_string()),
            ("localhost:5000/a", "localhost:5000/a".to_string()),
            ("busybox:1", "docker.io/library/busybox:1".to_string()),
            ("busybox", "docker.io/library/busybox".to_string()),
            (&format!("a/b@{d}"), format!("docker.io/a/b@{d}")),
            // An uppercase first component is a host, as distribution reads it (it was
            // `docker.io/Ab/c` before, a name no registry takes).
            ("Ab/c", "Ab/c".to_string()),
        ] {
            assert_eq!(qualify_source(written).unwrap(), recorded, "{written}");
        }
        for bad in ["quay.io/ns/ab-:1", "a/b@sha256:abc", "a@sha512:00", "a/B"] {
            assert!(qualify_source(bad).is_err(), "{bad}");
        }
    }

    /// oc writes both sides of mapping.txt with distribution's parser: a side that breaks
    /// the grammar is refused, naming the file and the line's references.
    #[test]
    fn a_mapping_line_that_does_not_parse_is_refused() {
        let mut kit = Kit::default();
        let a = kit.image("a", true, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        put(root, &kit, "m/app", &a, &[&a.digest], Some("v1"));
        let mapping = root.join("manifests-app-1/mapping.txt");
        write(&mapping, b"quay.io/ns/ab-:v1=file://m/app:v1\n");
        let e = crate::read_mirror(root).unwrap_err();
        assert!(matches!(e, MirrorError::MalformedLayout { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("mapping.txt")
                && e.contains("quay.io/ns/ab-:v1")
                && e.contains("at byte 13"),
            "{e}"
        );
        // The same line with a name registries take is the image's source.
        write(&mapping, b"quay.io/ns/ab:v1=file://m/app:v1\n");
        let m = crate::read_mirror(root).unwrap();
        assert_eq!(m.images[0].source.as_deref(), Some("quay.io/ns/ab:v1"));
    }

    #[test]
    fn catalog_source_yaml_naming_an_absent_image_is_said() {
        let mut kit = Kit::default();
        let a = kit.image("a", true, 1);
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        put(root, &kit, "m/index", &a, &[&a.digest], Some("v2"));
        write(
            &root.join("manifests-index-1/catalogSource.yaml"),
            b"apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: index\nspec:\n  image: \"file://m/index:v1\"\n  sourceType: grpc\n",
        );
        write(
            &root.join("manifests-index-2/catalogSource.yaml"),
            b"apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  image: reg.example:5000/x/index:v2\n",
        );
        write(
            &root.join("manifests-index-2/mapping.txt"),
            b"file://m/index:v2=reg.example:5000/x/index:v2\n",
        );
        let m = crate::read_mirror(root).unwrap();
        assert_eq!(
            m.catalogs,
            [CatalogMark {
                image: 0,
                file: "manifests-index-2/catalogSource.yaml".into()
            }]
        );
        assert_eq!(
            m.unresolved_catalogs.len(),
            1,
            "{:?}",
            m.unresolved_catalogs
        );
        let said = &m.unresolved_catalogs[0];
        assert!(
            said.contains("manifests-index-1/catalogSource.yaml")
                && said.contains("file://m/index:v1")
                && said.contains("not in this mirror"),
            "{said}"
        );
    }

    #[test]
    fn schema1_manifests_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let body = br#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[],"history":[]}"#;
        let d = sha256_bytes(body);
        let path = t.path().join("v2/r/manifests").join(d.to_string());
        write(&path, body);
        fs::create_dir_all(t.path().join("v2/r/blobs")).unwrap();
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(
            matches!(&e, MirrorError::UnsupportedManifest { path: p, .. } if *p == path),
            "{e}"
        );
        assert!(e.to_string().contains("schema 1"), "{e}");
    }

    #[test]
    fn absent_foreign_layers_are_not_missing() {
        let mut kit = Kit::default();
        let (cd, cs) = kit.blob(b"{}");
        let foreign = oci::Digest([0xff; 32]);
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cd}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{foreign}","size":9,"urls":["https://example.com/l"]}}]}}"#,
            oci::media_type::DOCKER_MANIFEST,
            oci::media_type::DOCKER_CONFIG
        );
        let (d, s) = kit.blob(json.as_bytes());
        let made = Made {
            digest: d,
            size: s,
            closure: vec![d, cd],
            media_type: oci::media_type::DOCKER_MANIFEST,
        };
        let t = tempfile::tempdir().unwrap();
        put(t.path(), &kit, "win", &made, &[&d], Some("ltsc"));
        let m = crate::read_mirror(t.path()).unwrap();
        assert_eq!(m.images[0].blobs, [d, cd]);
    }

    #[test]
    fn a_tag_symlink_must_name_a_digest() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("v2/r/blobs")).unwrap();
        fs::create_dir_all(t.path().join("v2/r/manifests")).unwrap();
        std::os::unix::fs::symlink("not-a-digest", t.path().join("v2/r/manifests/latest")).unwrap();
        let e = crate::read_mirror(t.path()).unwrap_err();
        assert!(matches!(e, MirrorError::MalformedLayout { .. }), "{e}");
        assert!(e.to_string().contains("manifests/latest"), "{e}");
    }
}
