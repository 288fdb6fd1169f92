//! The four fixture mirrors (`fixtures/generate.py small`) hold the same six images; every
//! reader must see them, every tree must restore byte for byte, and the OCI layout we write
//! must be readable by ferry and by skopeo.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use mirror::{
    read_mirror, write_oci_layout, write_tree, Digest, Image, LayoutKind, Mirror, MirrorError,
    TreeEntry,
};
use oci::Written;

const LAYOUTS: [(&str, LayoutKind); 4] = [
    ("oc-mirror", LayoutKind::OcFile),
    ("oci", LayoutKind::Oci),
    ("registry", LayoutKind::RegistryStorage),
    ("skopeo-dir", LayoutKind::SkopeoDir),
];

const OAUTH: &str = "sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81";
const BUNDLE: &str = "sha256:a51f0ec8d7063a8a19592bfd391f9e1afc740adfc31e436f0e746d33121380b2";
const FLUENTD: &str = "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e";
const OC_PREFIX: &str = "efk-mirror/my-operator/my-operator-index";

/// One of the digests above.
fn dg(text: &str) -> Digest {
    Digest::parse(text).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn read(name: &str) -> Mirror {
    read_mirror(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (repository, tags, digest, media type, closure): what must agree across layouts.
type Key = (String, Vec<String>, String, String, Vec<String>);

fn key(i: &Image) -> Key {
    (
        i.repository.clone(),
        i.tags.clone(),
        i.digest.to_string(),
        i.media_type.to_string(),
        i.blobs.iter().map(ToString::to_string).collect(),
    )
}

/// oc file:// renames repositories (under the index's name) and tags digest-only images
/// with an FNV hash; the original name is in the source that mapping.txt gives.
fn oc_as_original(i: &Image) -> Key {
    let source = i
        .source
        .as_deref()
        .unwrap_or_else(|| panic!("{} has no source", i.repository));
    let r = Written::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let mut k = key(i);
    k.0 = r.path.to_string();
    k.1 = r.tag.map(|t| vec![t.to_string()]).unwrap_or_default();
    k
}

#[test]
fn all_layouts_read_to_the_same_images_and_blobs() {
    let mirrors: Vec<Mirror> = LAYOUTS.iter().map(|(n, _)| read(n)).collect();
    for ((name, kind), m) in LAYOUTS.iter().zip(&mirrors) {
        assert_eq!(m.kind, *kind, "{name}");
        assert_eq!(m.images.len(), 6, "{name}: {:#?}", m.images);
        assert!(m.skipped.is_empty(), "{name}: {:?}", m.skipped);
    }
    let oc: BTreeSet<Key> = mirrors[0].images.iter().map(oc_as_original).collect();
    let expected: BTreeSet<Key> = mirrors[1].images.iter().map(key).collect();
    assert_eq!(oc, expected, "oc-mirror vs oci");
    for ((name, _), m) in LAYOUTS.iter().zip(&mirrors).skip(2) {
        let got: BTreeSet<Key> = m.images.iter().map(key).collect();
        assert_eq!(got, expected, "{name} vs oci");
    }
    let blobs: BTreeSet<&Digest> = mirrors[1].blobs.keys().collect();
    for ((name, _), m) in LAYOUTS.iter().zip(&mirrors) {
        assert_eq!(m.blobs.keys().collect::<BTreeSet<_>>(), blobs, "{name}");
        assert_eq!(m.manifest_types, mirrors[1].manifest_types, "{name}");
        for (d, b) in &m.blobs {
            let path = m.blob_path(b);
            assert_eq!(fs::metadata(&path).unwrap().len(), b.size, "{name} {d}");
            // Every blob file is a file of the tree, found by its path there.
            assert!(
                m.tree.iter().any(|e| m.root.join(e.path()) == *path),
                "{name} {d}: {}",
                path.display()
            );
        }
        // Images sorted by (repository, digest).
        let order: Vec<(&str, Digest)> = m
            .images
            .iter()
            .map(|i| (i.repository.as_str(), i.digest))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{name}");
    }
    // The manifest list: list first, then each child with its config and layers.
    let fluentd = mirrors[1]
        .images
        .iter()
        .find(|i| i.digest == dg(FLUENTD))
        .unwrap();
    assert_eq!(&*fluentd.media_type, oci::media_type::DOCKER_LIST);
    assert_eq!(fluentd.blobs[0], dg(FLUENTD));
    assert_eq!(
        fluentd.blobs.len(),
        1 + 2 * (1 + 1 + 2),
        "{:#?}",
        fluentd.blobs
    );
    // Digest-only images have no tags in the layouts that can say so.
    for m in &mirrors[1..] {
        for d in [OAUTH, BUNDLE] {
            let i = m.images.iter().find(|i| i.digest == dg(d)).unwrap();
            assert!(i.tags.is_empty(), "{:?} {i:?}", m.kind);
            assert!(
                i.repository.starts_with("openshift4/"),
                "{:?} {i:?}",
                m.kind
            );
        }
    }
}

#[test]
fn oc_sources_come_from_mapping_txt() {
    let m = read("oc-mirror");
    let sources: BTreeMap<String, (&str, &str)> = m
        .images
        .iter()
        .map(|i| {
            (
                i.digest.to_string(),
                (
                    i.repository.as_str(),
                    i.source.as_deref().unwrap_or("<none>"),
                ),
            )
        })
        .collect();
    assert_eq!(
        sources[OAUTH],
        (
            &*format!("{OC_PREFIX}/openshift4/ose-oauth-proxy"),
            &*format!("registry.redhat.io/openshift4/ose-oauth-proxy@{OAUTH}")
        )
    );
    assert_eq!(
        sources[FLUENTD],
        (
            &*format!("{OC_PREFIX}/openshift4/ose-logging-fluentd"),
            "registry.redhat.io/openshift4/ose-logging-fluentd:v4.6"
        )
    );
    let index = m.images.iter().find(|i| i.repository == OC_PREFIX).unwrap();
    assert_eq!(index.tags, ["v1"]);
    assert_eq!(
        index.source.as_deref(),
        Some("registry.example.com:5000/my-operator/my-operator-index:v1")
    );
    // oc tags digest-only sources with the FNV-32a of the source reference.
    let oauth = m.images.iter().find(|i| i.digest == dg(OAUTH)).unwrap();
    assert_eq!(oauth.tags, ["4da28fba"]);
}

#[test]
fn oci_sources_come_from_containerd_annotations() {
    let m = read("oci");
    let oauth = m.images.iter().find(|i| i.digest == dg(OAUTH)).unwrap();
    assert_eq!(oauth.repository, "openshift4/ose-oauth-proxy");
    assert_eq!(
        oauth.source.as_deref(),
        Some(&*format!(
            "registry.redhat.io/openshift4/ose-oauth-proxy@{OAUTH}"
        ))
    );
    let bundle = m.images.iter().find(|i| i.digest == dg(BUNDLE)).unwrap();
    assert_eq!(bundle.source, None);
}

/// Opens tree content by digest from the mirror's own files.
fn opener(m: &Mirror) -> impl FnMut(&Digest) -> Result<Box<dyn Read>, std::io::Error> {
    let by_digest: BTreeMap<Digest, PathBuf> = m
        .tree
        .iter()
        .filter_map(|e| match e {
            TreeEntry::File { digest, .. } => Some((*digest, m.file_source(e).into_owned())),
            _ => None,
        })
        .collect();
    move |d: &Digest| {
        let p = by_digest
            .get(d)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, d.to_string()))?;
        Ok(Box::new(File::open(p)?) as Box<dyn Read>)
    }
}

fn diff_clean(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .output()
        .expect("diff runs");
    assert!(
        out.status.success(),
        "diff -r {} {}:\n{}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn write_tree_restores_every_fixture_byte_for_byte() {
    for (name, _) in LAYOUTS {
        let m = read(name);
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("restored");
        write_tree(&dest, &m.tree, opener(&m)).unwrap_or_else(|e| panic!("{name}: {e}"));
        diff_clean(&fixture(name), &dest);
        // Modes survive too.
        for e in &m.tree {
            if let TreeEntry::File { path, mode, .. } = e {
                use std::os::unix::fs::PermissionsExt;
                let got = fs::metadata(dest.join(path)).unwrap().permissions().mode() & 0o777;
                assert_eq!(got, *mode, "{name}/{path}");
            }
        }
        // And the copy reads back as the same mirror.
        let again = read_mirror(&dest).unwrap();
        assert_eq!(again.images, m.images, "{name}");
    }
}

fn skopeo() -> bool {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skopeo not installed: skipping the skopeo half of this test");
    }
    ok
}

fn sizes(m: &Mirror) -> BTreeMap<Digest, u64> {
    m.blobs.iter().map(|(d, b)| (*d, b.size)).collect()
}

fn blob_opener(m: &Mirror) -> impl FnMut(&Digest) -> Result<Box<dyn Read>, std::io::Error> + '_ {
    move |d: &Digest| {
        let b = m
            .blobs
            .get(d)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, d.to_string()))?;
        Ok(Box::new(File::open(m.blob_path(b))?) as Box<dyn Read>)
    }
}

#[test]
fn oci_layout_output_reads_back_and_skopeo_reads_it() {
    let have_skopeo = skopeo();
    for (name, _) in LAYOUTS {
        let m = read(name);
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("oci");
        write_oci_layout(
            &dest,
            &m.images,
            &m.manifest_types,
            &sizes(&m),
            blob_opener(&m),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = read_mirror(&dest).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.kind, LayoutKind::Oci);
        assert_eq!(
            back.images, m.images,
            "{name}: images survive the OCI layout"
        );
        assert_eq!(back.manifest_types, m.manifest_types);
        // index.json is exactly the pure function's output.
        let index = mirror::oci_index_json(&m.images, &m.manifest_types, &sizes(&m)).unwrap();
        assert_eq!(fs::read(dest.join("index.json")).unwrap(), index);
        if !have_skopeo {
            continue;
        }
        let mut checked = 0;
        for i in &m.images {
            // containers/image selects only OCI-typed descriptors by name (module docs).
            if !i.media_type.starts_with("application/vnd.oci.") {
                continue;
            }
            let names: Vec<String> = if i.tags.is_empty() {
                vec![format!("{}@{}", i.repository, i.digest)]
            } else {
                i.tags
                    .iter()
                    .map(|t| format!("{}:{t}", i.repository))
                    .collect()
            };
            for n in names {
                let reference = format!("oci:{}:{n}", dest.display());
                let out = Command::new("skopeo")
                    .args(["inspect", "--raw", &reference])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{reference}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(
                    mirror::digest::sha256_bytes(&out.stdout),
                    i.digest,
                    "{reference}"
                );
                let copy = t.path().join(format!("copy{checked}"));
                let out = Command::new("skopeo")
                    .args(["copy", "--all", "--quiet", &reference])
                    .arg(format!("dir:{}", copy.display()))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{reference}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let copied = fs::read(copy.join("manifest.json")).unwrap();
                assert_eq!(
                    mirror::digest::sha256_bytes(&copied),
                    i.digest,
                    "{reference}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3, "{name}: proxy, bundle and index are OCI-typed");
    }
}

/// A scratch copy of a fixture (cp -a keeps symlinks).
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join(name);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(fixture(name))
        .arg(&dest)
        .status()
        .unwrap();
    assert!(ok.success());
    (t, dest)
}

#[test]
fn missing_blobs_are_all_named_at_once() {
    let (_t, root) = scratch("registry");
    let v2 = root.join("docker/registry/v2/blobs/sha256");
    let m = read("registry");
    let fluentd = m.images.iter().find(|i| i.digest == dg(FLUENTD)).unwrap();
    let bundle = m.images.iter().find(|i| i.digest == dg(BUNDLE)).unwrap();
    // A layer of the arm64 child and the bundle's config.
    let gone = [*fluentd.blobs.last().unwrap(), bundle.blobs[1]];
    for d in &gone {
        let hex = d.hex();
        fs::remove_file(v2.join(&hex[..2]).join(&hex).join("data")).unwrap();
    }
    let e = read_mirror(&root).unwrap_err();
    let MirrorError::MissingBlobs { missing } = &e else {
        panic!("{e}")
    };
    let all: BTreeSet<&Digest> = missing.iter().flat_map(|m| &m.missing).collect();
    assert_eq!(all, gone.iter().collect(), "{e}");
    let msg = e.to_string();
    // Binary in the model, `sha256:<hex>` in the message, one per line.
    for d in &gone {
        assert!(msg.contains(&format!("\n    sha256:{}", d.hex())), "{msg}");
    }
    for m in missing {
        assert!(msg.contains(&m.manifest.display().to_string()), "{msg}");
        assert!(
            m.manifest.ends_with("data"),
            "names the manifest file: {}",
            m.manifest.display()
        );
    }
    assert!(
        msg.contains("openshift4/ose-logging-fluentd")
            && msg.contains("openshift4/ose-elasticsearch-operator-bundle"),
        "{msg}"
    );
}

#[test]
fn a_missing_top_level_manifest_names_the_tag() {
    let (_t, root) = scratch("oc-mirror");
    let repo = root.join(format!("v2/{OC_PREFIX}/openshift4/ose-elasticsearch-proxy"));
    let m = read("oc-mirror");
    let proxy = m
        .images
        .iter()
        .find(|i| i.repository.ends_with("ose-elasticsearch-proxy"))
        .unwrap();
    fs::remove_file(repo.join("manifests").join(proxy.digest.to_string())).unwrap();
    fs::remove_file(repo.join("blobs").join(proxy.digest.to_string())).unwrap();
    let e = read_mirror(&root).unwrap_err();
    let MirrorError::MissingBlobs { missing } = &e else {
        panic!("{e}")
    };
    assert_eq!(missing.len(), 1, "{e}");
    assert_eq!(missing[0].manifest, repo.join("manifests/v4.6"));
    assert_eq!(missing[0].missing, std::slice::from_ref(&proxy.digest));
}

#[test]
fn digest_mismatch_names_the_file() {
    let (_t, root) = scratch("skopeo-dir");
    let dir = root.join("openshift4/ose-logging-fluentd:v4.6");
    let child = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .unwrap();
    let mut bytes = fs::read(&child).unwrap();
    bytes.push(b' ');
    fs::write(&child, bytes).unwrap();
    let e = read_mirror(&root).unwrap_err();
    assert!(
        matches!(&e, MirrorError::DigestMismatch { path, .. } if *path == child),
        "{e}"
    );
    assert!(e.to_string().contains(&child.display().to_string()));
}

#[test]
fn not_a_mirror_says_what_was_looked_for() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("README"), "hello").unwrap();
    let e = read_mirror(t.path()).unwrap_err();
    assert!(matches!(e, MirrorError::NotAMirror { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: not an image mirror: no v2/<repo>/manifests (oc file://), no oci-layout (OCI layout), \
             no docker/registry/v2 (registry storage), no version file (skopeo dir:). \
             Point ferry-pack at the mirror's root directory",
            t.path().display()
        )
    );
}

#[test]
fn absolute_and_escaping_symlinks_are_refused() {
    for target in ["/etc/passwd", "../../../../outside"] {
        let (_t, root) = scratch("oci");
        let link = root.join("blobs/sha256/evil");
        std::os::unix::fs::symlink(target, &link).unwrap();
        let e = read_mirror(&root).unwrap_err();
        assert!(
            matches!(&e, MirrorError::UnsafeSymlink { path, .. } if *path == link),
            "{e}"
        );
    }
}

#[test]
fn leftovers_are_skipped_and_reported() {
    let (_t, root) = scratch("oc-mirror");
    let repo = root.join(format!("v2/{OC_PREFIX}/openshift4/ose-oauth-proxy"));
    fs::write(repo.join("blobs/.tmp-123456"), "partial").unwrap();
    fs::write(
        repo.join(format!("blobs/sha256:{}.download", "e".repeat(64))),
        "partial",
    )
    .unwrap();
    fs::write(repo.join("manifests/v9.download"), "partial").unwrap();
    let m = read_mirror(&root).unwrap();
    let prefix = format!("v2/{OC_PREFIX}/openshift4/ose-oauth-proxy");
    assert_eq!(
        m.skipped,
        [
            format!("{prefix}/blobs/.tmp-123456"),
            format!("{prefix}/blobs/sha256:{}.download", "e".repeat(64)),
            format!("{prefix}/manifests/v9.download"),
        ]
    );
    assert!(m
        .tree
        .iter()
        .all(|e| !m.skipped.iter().any(|s| s == e.path())));
    assert_eq!(m.images.len(), 6);

    let (_t, root) = scratch("registry");
    let uploads = root.join("docker/registry/v2/repositories/openshift4/ose-oauth-proxy/_uploads");
    fs::create_dir_all(uploads.join("0c8e-uuid/hashstates/sha256")).unwrap();
    fs::write(uploads.join("0c8e-uuid/data"), "partial").unwrap();
    fs::write(uploads.join("0c8e-uuid/startedat"), "2020-09-13T12:26:40Z").unwrap();
    let m = read_mirror(&root).unwrap();
    assert_eq!(
        m.skipped,
        ["docker/registry/v2/repositories/openshift4/ose-oauth-proxy/_uploads/0c8e-uuid"]
    );
    assert!(m.tree.iter().all(|e| !e.path().contains("0c8e-uuid")));
    assert!(m
        .tree
        .iter()
        .any(|e| e.path().ends_with("ose-oauth-proxy/_uploads")));
}

#[test]
fn untagged_oc_manifests_are_images_unless_index_children() {
    let (_t, root) = scratch("oc-mirror");
    let repo = root.join(format!("v2/{OC_PREFIX}/openshift4/ose-oauth-proxy"));
    fs::remove_file(repo.join("manifests/4da28fba")).unwrap();
    let m = read_mirror(&root).unwrap();
    let oauth = m.images.iter().find(|i| i.digest == dg(OAUTH)).unwrap();
    assert!(oauth.tags.is_empty());
    // Its mapping.txt line named the removed tag, so nothing says where it came from.
    assert_eq!(oauth.source, None);
    // The manifest list's children stay inside it.
    assert_eq!(m.images.len(), 6);
}

#[test]
fn write_tree_refuses_dot_dot_entries_from_a_real_tree() {
    let m = read("skopeo-dir");
    let mut tree = m.tree.clone();
    let TreeEntry::File {
        digest,
        size,
        mode,
        source,
        ..
    } = tree
        .iter()
        .find(|e| matches!(e, TreeEntry::File { .. }))
        .unwrap()
        .clone()
    else {
        unreachable!()
    };
    tree.push(TreeEntry::File {
        path: "openshift4/../../escaped".into(),
        digest,
        size,
        mode,
        source,
    });
    let t = tempfile::tempdir().unwrap();
    let e = write_tree(&t.path().join("x"), &tree, opener(&m)).unwrap_err();
    assert!(
        matches!(&e, MirrorError::UnsafePath { entry, .. } if entry == "openshift4/../../escaped"),
        "{e}"
    );
    assert!(!t.path().join("x").exists() || fs::read_dir(t.path().join("x")).unwrap().count() == 0);
    assert!(!t.path().join("escaped").exists());
}

/// oc's own `manifests-*/catalogSource.yaml` names the catalog (here through
/// the registry destination and the mapping.txt beside it); the other layouts name none.
#[test]
fn oc_catalog_source_yaml_marks_the_index_image() {
    let m = read("oc-mirror");
    assert_eq!(m.catalogs.len(), 1, "{:?}", m.catalogs);
    let img = &m.images[m.catalogs[0].image];
    assert_eq!(img.repository, OC_PREFIX, "{img:?}");
    assert_eq!(img.tags, ["v1"]);
    assert_eq!(
        m.catalogs[0].file,
        "manifests-my-operator/my-operator-index-1600000600/catalogSource.yaml"
    );
    assert!(
        m.unresolved_catalogs.is_empty(),
        "{:?}",
        m.unresolved_catalogs
    );
    for (name, _) in &LAYOUTS[1..] {
        assert!(read(name).catalogs.is_empty(), "{name}");
    }
}
