//! The cluster side: ImageDigestMirrorSet, ImageTagMirrorSet, ImageContentSourcePolicy
//! (clusters before 4.13), CatalogSource for operator index images, the OperatorHub patch
//! that disables the default (unreachable) catalog sources, and mapping.txt.
//! Right the first time: every `source` is the original registry path (never a local
//! directory), every object name is valid (never a `/` in it) — the two hand fixes of
//! the seed guide (README "OpenShift") — and a kind with nothing to say gets no object
//! (an empty file is refused by `oc apply`), with the reason in [`Rendered::notes`].
//!
//! Which directory each kind goes into (so that one `oc apply -f DIR` suits one cluster
//! version) is `outputs.rs`'s business.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;

use format_spec::Digest;

use sha2::{Digest as _, Sha256};

/// An image as pushed, for the cluster manifests. It borrows from the bundle's records and
/// the push report rather than copying them: at 6x10^4 images the copies were the peak of
/// a push's memory.
#[derive(Debug, Clone)]
pub struct Pushed<'a> {
    /// `registry.redhat.io/openshift4/ose-x` when the bundle knows the original; None otherwise.
    pub source_repository: Option<String>,
    /// The original reference as recorded (`…@sha256:…` or `…:tag`).
    pub source_reference: Option<&'a str>,
    /// True when the original reference pulled by tag (so a tag mirror is needed too).
    pub source_by_tag: bool,
    /// `registry.internal:8443/efk-mirror/openshift4/ose-x`.
    pub destination: &'a str,
    pub digest: Digest,
    pub tags: &'a [String],
    /// For an operator index image: the name of its CatalogSource (see [`catalog_names`]).
    pub catalog: Option<String>,
    /// For a catalog: the CatalogSource's `displayName` when it is not the original
    /// reference (a catalog ferry rebuilt is not the original: see `outputs.rs`).
    pub display_name: Option<String>,
}

/// Where the objects came from: written as annotations on every object, as oc-mirror
/// marks its own, so `oc get idms -o yaml` on the cluster leads back to the bundle.
#[derive(Debug, Clone)]
pub struct Provenance<'a> {
    /// `sha256:<hex>` of the bundle.
    pub bundle_id: &'a str,
    pub ferry_version: &'a str,
    /// When push wrote the objects, RFC 3339 UTC.
    pub created: &'a str,
    /// Some image of the bundle failed in this push: the objects cover only those that went in.
    pub partial: bool,
}

pub struct Options<'a> {
    /// Object name base, e.g. `ferry-3f2a9c1b7e00`.
    pub name: &'a str,
    pub catalog_secrets: &'a [String],
    pub publisher: &'a str,
    /// The layout the bundle was packed from (`oc-mirror`, `oci`, …), for the notes.
    pub layout: &'a str,
    pub provenance: Provenance<'a>,
}

/// The annotation keys on every object ferry writes.
pub const ANNOTATION_BUNDLE: &str = "ferry/bundle-id";
pub const ANNOTATION_VERSION: &str = "ferry/version";
pub const ANNOTATION_CREATED: &str = "ferry/created";
pub const ANNOTATION_PARTIAL: &str = "ferry/partial";

/// What [`render`] makes: each kind's YAML (None when there is nothing to say) and why a
/// kind has no object. mapping.txt, a line per image, is streamed by [`write_mapping`].
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub digest_mirror_sets: Option<String>,
    pub tag_mirror_sets: Option<String>,
    pub content_source_policies: Option<String>,
    pub catalog_sources: Option<String>,
    pub notes: Vec<String>,
}

/// oc splits its mirror sets to stay under this size per object; so do we.
const MAX_OBJECT_BYTES: usize = 250_000;

pub fn render(images: &[Pushed], opts: &Options) -> Rendered {
    let mut digest_mirrors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut tag_mirrors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut unknown_origin = 0;
    for i in images {
        match &i.source_repository {
            Some(src) if src != i.destination => {
                digest_mirrors.entry(src).or_default().insert(i.destination);
                if i.source_by_tag {
                    tag_mirrors.entry(src).or_default().insert(i.destination);
                }
            }
            Some(_) => {}
            None => unknown_origin += 1,
        }
    }
    let mut out = Rendered::default();
    if images.is_empty() {
        out.notes.push(
            "no image of the bundle is in the registry yet: no mirror set or CatalogSource to write"
                .into(),
        );
    } else {
        if unknown_origin > 0 {
            out.notes.push(format!(
                "{unknown_origin} of {} image(s) have no original reference in the bundle (a {} layout records none), so no mirror set names them; pack with `ferry-pack --origin REGISTRY` to name where they came from",
                images.len(),
                opts.layout
            ));
        }
        if digest_mirrors.is_empty() && unknown_origin < images.len() {
            out.notes.push(
                "every image was pushed to its original repository: no mirror set is needed".into(),
            );
        }
        if !digest_mirrors.is_empty() && tag_mirrors.is_empty() {
            out.notes.push(
                "no original reference is by tag: no ImageTagMirrorSet is needed (imageTagMirrorSet.yaml not written)"
                    .into(),
            );
        }
    }
    let sets = |api, kind, field, mirrors: &BTreeMap<&str, BTreeSet<&str>>| {
        (!mirrors.is_empty()).then(|| mirror_sets(opts, api, kind, field, mirrors))
    };
    out.digest_mirror_sets = sets(
        "config.openshift.io/v1",
        "ImageDigestMirrorSet",
        "imageDigestMirrors",
        &digest_mirrors,
    );
    out.tag_mirror_sets = sets(
        "config.openshift.io/v1",
        "ImageTagMirrorSet",
        "imageTagMirrors",
        &tag_mirrors,
    );
    out.content_source_policies = sets(
        "operator.openshift.io/v1alpha1",
        "ImageContentSourcePolicy",
        "repositoryDigestMirrors",
        &digest_mirrors,
    );
    let catalogs: Vec<&Pushed> = images.iter().filter(|i| i.catalog.is_some()).collect();
    if catalogs.is_empty() {
        if !images.is_empty() {
            out.notes.push(
                "no operator catalog (index image) among the images that went in: no CatalogSource"
                    .into(),
            );
        }
    } else {
        out.catalog_sources = Some(catalog_sources(&catalogs, opts));
    }
    out
}

/// mapping.txt, `source=destination` a line per image (oc's format): the original reference
/// (or the destination by digest when none is recorded) and the destination by its first
/// tag (or by digest).
pub fn write_mapping(out: &mut dyn io::Write, images: &[Pushed]) -> io::Result<()> {
    for i in images {
        match i.source_reference {
            Some(src) => write!(out, "{src}=")?,
            None => write!(out, "{}@{}=", i.destination, i.digest)?,
        }
        match i.tags.first() {
            Some(t) => writeln!(out, "{}:{t}", i.destination)?,
            None => writeln!(out, "{}@{}", i.destination, i.digest)?,
        }
    }
    Ok(())
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// `metadata:` of an object: its name, ferry's label, and where it came from.
fn metadata(name: &str, namespace: Option<&str>, p: &Provenance) -> String {
    let mut m = format!("metadata:\n  name: {}\n", q(name));
    if let Some(ns) = namespace {
        let _ = writeln!(m, "  namespace: {}", q(ns));
    }
    m.push_str("  labels:\n    app.kubernetes.io/created-by: \"ferry\"\n  annotations:\n");
    let _ = writeln!(m, "    {ANNOTATION_BUNDLE}: {}", q(p.bundle_id));
    let _ = writeln!(m, "    {ANNOTATION_VERSION}: {}", q(p.ferry_version));
    let _ = writeln!(m, "    {ANNOTATION_CREATED}: {}", q(p.created));
    if p.partial {
        let _ = writeln!(m, "    {ANNOTATION_PARTIAL}: \"true\"");
    }
    m
}

fn mirror_sets(
    opts: &Options,
    api: &str,
    kind: &str,
    field: &str,
    mirrors: &BTreeMap<&str, BTreeSet<&str>>,
) -> String {
    let mut objects: Vec<String> = Vec::new();
    let mut entries = String::new();
    let flush = |entries: &mut String, objects: &mut Vec<String>| {
        let n = objects.len();
        let object_name = if n == 0 {
            opts.name.to_owned()
        } else {
            format!("{}-{n}", opts.name)
        };
        objects.push(format!(
            "apiVersion: {api}\nkind: {kind}\n{}spec:\n  {field}:\n{entries}",
            metadata(&object_name, None, &opts.provenance)
        ));
        entries.clear();
    };
    for (source, dests) in mirrors {
        let mut e = String::from("  - mirrors:\n");
        for d in dests {
            let _ = writeln!(e, "    - {}", q(d));
        }
        let _ = writeln!(e, "    source: {}", q(source));
        if kind != "ImageContentSourcePolicy" {
            // Mirrors are tried first and the source stays a fallback, as oc-mirror does.
            e.push_str("    mirrorSourcePolicy: \"AllowContactingSource\"\n");
        }
        if !entries.is_empty() && entries.len() + e.len() > MAX_OBJECT_BYTES - 1000 {
            flush(&mut entries, &mut objects);
        }
        entries.push_str(&e);
    }
    if !entries.is_empty() {
        flush(&mut entries, &mut objects);
    }
    objects.join("---\n")
}

fn catalog_sources(catalogs: &[&Pushed], opts: &Options) -> String {
    let mut out = Vec::new();
    for c in catalogs {
        let name = c.catalog.as_deref().unwrap_or("cs-catalog");
        let image = match c.tags.first() {
            Some(t) => format!("{}:{t}", c.destination),
            None => format!("{}@{}", c.destination, c.digest),
        };
        let display = c
            .display_name
            .as_deref()
            .or(c.source_reference)
            .unwrap_or(&image);
        let mut o = format!(
            "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\n{}spec:\n  sourceType: grpc\n  image: {}\n  displayName: {}\n  publisher: {}\n",
            metadata(name, Some("openshift-marketplace"), &opts.provenance),
            q(&image),
            q(display),
            q(opts.publisher)
        );
        if !opts.catalog_secrets.is_empty() {
            o.push_str("  secrets:\n");
            for s in opts.catalog_secrets {
                let _ = writeln!(o, "  - {}", q(s));
            }
        }
        out.push(o);
    }
    out.join("---\n")
}

/// The OperatorHub `cluster` object with `spec.disableAllDefaultSources: true`: a
/// disconnected cluster cannot reach the default catalogs (redhat-operators, certified,
/// community, marketplace), whose pods then fail to pull; the seed guide's first step. As
/// `oc apply` merges it, the rest of the object (`spec.sources`) stays as it is.
pub fn operator_hub(p: &Provenance) -> String {
    format!(
        "apiVersion: config.openshift.io/v1\nkind: OperatorHub\n{}spec:\n  disableAllDefaultSources: true\n",
        metadata("cluster", None, p)
    )
}

/// What a catalog's CatalogSource name is made of: the last component of its original
/// repository path (of its path in the bundle when no original is recorded), the original
/// tag (or the image's tag, or a digest prefix), and a key that tells two catalogs apart
/// (the original reference, or repository@digest). Nothing here depends on where or how
/// the image is pushed (`--to`, `--max-components`): pushing again with other options
/// updates the same CatalogSource instead of adding a second one.
#[derive(Debug, Clone)]
pub struct CatalogKey {
    pub image: String,
    pub tag: String,
    pub key: String,
}

/// The CatalogSource names of a bundle's catalogs, in the order given (the bundle's), each
/// a unique DNS-1035 label. The first catalog with a base name keeps it; a later one with
/// the same base gets the base cut short and `-<8 hex of SHA-256 of its key>` appended,
/// and should that be taken too (two entries with the same key), `-<n>` instead. Every
/// candidate is at most 63 characters before it is compared, so the cut can never remove
/// what makes it unique, and at most `keys.len() + 2` candidates are tried per catalog.
pub fn catalog_names(keys: &[CatalogKey]) -> Vec<String> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut names = Vec::with_capacity(keys.len());
    for k in keys {
        let base = catalog_name(&k.image, &k.tag);
        let hash = hex::encode(&Sha256::digest(k.key.as_bytes())[..4]);
        let candidates = std::iter::once(base.clone())
            .chain(std::iter::once(with_suffix(&base, &hash)))
            .chain((2..=keys.len() + 1).map(|n| with_suffix(&base, &format!("{hash}-{n}"))));
        let mut chosen = None;
        for c in candidates {
            if used.insert(c.clone()) {
                chosen = Some(c);
                break;
            }
        }
        // keys.len() + 2 distinct candidates against at most keys.len() - 1 names used: one is free.
        names.push(chosen.expect("a free name among more candidates than names used"));
    }
    names
}

/// `base` cut so that `-suffix` fits in 63 characters, then `-suffix`.
fn with_suffix(base: &str, suffix: &str) -> String {
    let room = 63 - 1 - suffix.len();
    let cut = base[..base.len().min(room)].trim_end_matches('-');
    format!("{cut}-{suffix}")
}

/// A DNS-1035 label (OLM derives a Service name from it): `cs-<image>-<tag>`, lowercase,
/// other characters as `-`, at most 63 characters, starting with a letter.
pub fn catalog_name(image: &str, tag: &str) -> String {
    let raw = format!("cs-{image}-{tag}").to_ascii_lowercase();
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// Kubernetes object names: DNS-1123 subdomain.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && !name.is_empty() && name.split('.').all(is_dns1123_label)
}

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1035 label: a DNS-1123 label that starts with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVENANCE: Provenance<'static> = Provenance {
        bundle_id: "sha256:0123",
        ferry_version: "0.1.0",
        created: "2026-12-01T08:00:00Z",
        partial: false,
    };

    fn opts() -> Options<'static> {
        Options {
            name: "ferry-0123456789ab",
            catalog_secrets: &[],
            publisher: "ferry",
            layout: "oc-mirror",
            provenance: PROVENANCE,
        }
    }

    /// A pushed image; what it borrows is leaked (a test's few bytes).
    fn pushed(src: &str, dest: &'static str, catalog: Option<&str>) -> Pushed<'static> {
        let reference = format!("{src}@sha256:{}", "a".repeat(64));
        Pushed {
            source_repository: Some(src.into()),
            source_reference: Some(Box::leak(reference.into_boxed_str())),
            source_by_tag: false,
            destination: dest,
            digest: Digest([0xaa; 32]),
            tags: Box::leak(Box::new(["v4.6".to_owned()])),
            catalog: catalog.map(str::to_owned),
            display_name: None,
        }
    }

    #[test]
    fn sources_are_original_registry_paths_and_names_are_valid() {
        let images = vec![
            pushed(
                "registry.redhat.io/openshift4/ose-elasticsearch-proxy",
                "reg:8443/efk/openshift4/ose-elasticsearch-proxy",
                None,
            ),
            pushed(
                "registry.example.com:5000/my-operator/my-operator-index",
                "reg:8443/efk/my-operator/my-operator-index",
                Some("cs-my-operator-index-v4-6"),
            ),
        ];
        let r = render(&images, &opts());
        let idms = r.digest_mirror_sets.as_deref().expect("IDMS");
        assert!(
            idms.contains("source: \"registry.redhat.io/openshift4/ose-elasticsearch-proxy\""),
            "{idms}"
        );
        assert!(idms.contains("- \"reg:8443/efk/openshift4/ose-elasticsearch-proxy\""));
        assert!(idms.contains("ferry/bundle-id: \"sha256:0123\""), "{idms}");
        assert!(!idms.contains("ferry/partial"), "{idms}");
        let cs = r.catalog_sources.as_deref().expect("CatalogSource");
        assert!(cs.contains("name: \"cs-my-operator-index-v4-6\""), "{cs}");
        // By digest only: no tag mirror set, and the notes say why.
        assert!(r.tag_mirror_sets.is_none());
        assert!(
            r.notes.iter().any(|n| n.contains("ImageTagMirrorSet")),
            "{:?}",
            r.notes
        );
        assert!(!is_dns1123_subdomain("my-operator/my-operator-index"));
    }

    #[test]
    fn nothing_to_mirror_writes_no_object_and_says_why() {
        let r = render(&[], &opts());
        assert!(r.digest_mirror_sets.is_none() && r.content_source_policies.is_none());
        assert!(r.tag_mirror_sets.is_none() && r.catalog_sources.is_none());
        assert!(r.notes[0].contains("no image"), "{:?}", r.notes);

        let mut anonymous = pushed("x", "reg/x", None);
        anonymous.source_repository = None;
        anonymous.source_reference = None;
        let r = render(
            std::slice::from_ref(&anonymous),
            &Options {
                layout: "registry-storage",
                ..opts()
            },
        );
        assert!(r.digest_mirror_sets.is_none());
        let all = r.notes.join("\n");
        assert!(
            all.contains("registry-storage") && all.contains("--origin"),
            "{all}"
        );
        let mut mapping = Vec::new();
        write_mapping(&mut mapping, &[anonymous]).unwrap();
        assert_eq!(
            String::from_utf8(mapping).unwrap(),
            format!("reg/x@sha256:{0}=reg/x:v4.6\n", "a".repeat(64))
        );
    }

    #[test]
    fn partial_objects_say_so() {
        let images = [pushed("quay.io/a/b", "reg/a/b", None)];
        let o = Options {
            provenance: Provenance {
                partial: true,
                ..PROVENANCE
            },
            ..opts()
        };
        let idms = render(&images, &o).digest_mirror_sets.expect("IDMS");
        assert!(idms.contains("ferry/partial: \"true\""), "{idms}");
    }

    /// A catalog's displayName is the one given (a rebuilt catalog's), else its original
    /// reference; the publisher is the option's.
    #[test]
    fn catalog_sources_name_display_and_publisher() {
        let mut rebuilt = pushed(
            "registry.redhat.io/redhat/redhat-operator-index",
            "reg/efk/mirror/my-operator-index",
            Some("cs-my-operator-index-v1"),
        );
        rebuilt.display_name = Some("my-operator-index v1".into());
        let original = pushed(
            "registry.example.com/ns/other-index",
            "reg/efk/ns/other-index",
            Some("cs-other-index-v4-6"),
        );
        let o = Options {
            publisher: "ACME IT",
            ..opts()
        };
        let cs = render(&[rebuilt, original], &o).catalog_sources.unwrap();
        assert!(cs.contains("displayName: \"my-operator-index v1\""), "{cs}");
        assert!(
            cs.contains(&format!(
                "displayName: \"registry.example.com/ns/other-index@sha256:{}\"",
                "a".repeat(64)
            )),
            "{cs}"
        );
        assert_eq!(cs.matches("publisher: \"ACME IT\"").count(), 2, "{cs}");
    }

    /// The OperatorHub patch: the cluster-scoped singleton `cluster`, default sources off.
    #[test]
    fn operator_hub_disables_the_default_sources() {
        let hub = operator_hub(&PROVENANCE);
        assert!(
            hub.starts_with("apiVersion: config.openshift.io/v1\nkind: OperatorHub\nmetadata:\n  name: \"cluster\"\n"),
            "{hub}"
        );
        assert!(!hub.contains("namespace"), "{hub}");
        assert!(
            hub.ends_with("spec:\n  disableAllDefaultSources: true\n"),
            "{hub}"
        );
        assert!(hub.contains("ferry/bundle-id: \"sha256:0123\""), "{hub}");
    }

    #[test]
    fn catalog_names_are_dns1035() {
        for (image, tag) in [
            ("My_Index", "v1.2"),
            ("x", &"long".repeat(30)),
            ("9lives", "latest"),
            ("--", "--"),
        ] {
            let n = catalog_name(image, tag);
            assert!(is_dns1035_label(&n), "{n}");
        }
    }

    /// Two catalogs whose paths end in the same long component made the
    /// unique-name search loop forever (the cut to 63 removed the suffix).
    #[test]
    fn long_colliding_catalog_names_end_and_stay_unique() {
        let long = "redhat-operator-index-with-a-very-long-name-that-goes-on-and-on";
        assert!(long.len() >= 55);
        let keys: Vec<CatalogKey> = (0..40)
            .map(|i| CatalogKey {
                image: long.into(),
                tag: "v4.14".into(),
                key: if i == 39 {
                    // The same key twice: the hash is the same, the counter decides.
                    "registry.example.com/team0/x:v4.14".into()
                } else {
                    format!("registry.example.com/team{i}/x:v4.14")
                },
            })
            .collect();
        let names = catalog_names(&keys);
        assert_eq!(names.len(), 40);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), 40, "{names:?}");
        for n in &names {
            assert!(is_dns1035_label(n), "{n:?} ({} chars)", n.len());
        }
        // The first keeps the plain name; the names do not depend on anything but the keys.
        assert_eq!(names[0], catalog_name(long, "v4.14"));
        assert_eq!(catalog_names(&keys), names);
    }
}
