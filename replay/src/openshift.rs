//! The cluster side: ImageDigestMirrorSet, ImageTagMirrorSet, ImageContentSourcePolicy
//! (clusters before 4.13), CatalogSource for operator index images, and mapping.txt.
//! Right the first time: every `source` is the original registry path (never a local
//! directory), and every object name is valid (never a `/` in it) — the two hand fixes of
//! the seed guide (README "OpenShift").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// An image as pushed, for the cluster manifests.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `registry.redhat.io/openshift4/ose-x` when the bundle knows the original; None otherwise.
    pub source_repository: Option<String>,
    /// The original reference as recorded (`…@sha256:…` or `…:tag`).
    pub source_reference: Option<String>,
    /// True when the original reference pulled by tag (so a tag mirror is needed too).
    pub source_by_tag: bool,
    /// `registry.internal:8443/efk-mirror/openshift4/ose-x`.
    pub destination: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// Set for operator index images: the catalog's name components.
    pub catalog: bool,
}

pub struct Options<'a> {
    /// Object name base, e.g. `ferry-3f2a9c1b7e00`.
    pub name: &'a str,
    pub catalog_secrets: &'a [String],
    pub publisher: &'a str,
}

/// oc splits its mirror sets to stay under this size per object; so do we.
const MAX_OBJECT_BYTES: usize = 250_000;

/// File name → contents.
pub fn render(images: &[Pushed], opts: &Options) -> BTreeMap<String, String> {
    let mut digest_mirrors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut tag_mirrors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in images {
        if let Some(src) = &i.source_repository {
            if src != &i.destination {
                digest_mirrors
                    .entry(src)
                    .or_default()
                    .insert(&i.destination);
                if i.source_by_tag {
                    tag_mirrors.entry(src).or_default().insert(&i.destination);
                }
            }
        }
    }
    let mut files = BTreeMap::new();
    files.insert(
        "imageDigestMirrorSet.yaml".into(),
        mirror_sets(
            opts.name,
            "config.openshift.io/v1",
            "ImageDigestMirrorSet",
            "imageDigestMirrors",
            &digest_mirrors,
        ),
    );
    files.insert(
        "imageTagMirrorSet.yaml".into(),
        mirror_sets(
            opts.name,
            "config.openshift.io/v1",
            "ImageTagMirrorSet",
            "imageTagMirrors",
            &tag_mirrors,
        ),
    );
    files.insert(
        "imageContentSourcePolicy.yaml".into(),
        mirror_sets(
            opts.name,
            "operator.openshift.io/v1alpha1",
            "ImageContentSourcePolicy",
            "repositoryDigestMirrors",
            &digest_mirrors,
        ),
    );
    let catalogs: Vec<&Pushed> = images.iter().filter(|i| i.catalog).collect();
    if !catalogs.is_empty() {
        files.insert(
            "catalogSource.yaml".into(),
            catalog_sources(&catalogs, opts),
        );
    }
    let mut mapping = String::new();
    for i in images {
        let dest = match i.tags.first() {
            Some(t) => format!("{}:{t}", i.destination),
            None => format!("{}@{}", i.destination, i.digest),
        };
        let src = i
            .source_reference
            .clone()
            .unwrap_or_else(|| format!("{}@{}", i.destination, i.digest));
        let _ = writeln!(mapping, "{src}={dest}");
    }
    files.insert("mapping.txt".into(), mapping);
    files
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn mirror_sets(
    name: &str,
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
            name.to_owned()
        } else {
            format!("{name}-{n}")
        };
        objects.push(format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {}\n  labels:\n    app.kubernetes.io/created-by: ferry\nspec:\n  {field}:\n{entries}",
            q(&object_name)
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
        if !entries.is_empty() && entries.len() + e.len() > MAX_OBJECT_BYTES - 500 {
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
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for c in catalogs {
        let last = c.destination.rsplit('/').next().unwrap_or("catalog");
        let tag = c
            .tags
            .first()
            .map(String::as_str)
            .unwrap_or(&c.digest[7..19]);
        let mut name = catalog_name(last, tag);
        let mut n = 1;
        while !used.insert(name.clone()) {
            n += 1;
            name = catalog_name(last, &format!("{tag}-{n}"));
        }
        let image = match c.tags.first() {
            Some(t) => format!("{}:{t}", c.destination),
            None => format!("{}@{}", c.destination, c.digest),
        };
        let mut o = format!(
            "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: {}\n  namespace: openshift-marketplace\nspec:\n  sourceType: grpc\n  image: {}\n  displayName: {}\n  publisher: {}\n",
            q(&name),
            q(&image),
            q(&format!("{last} {tag}")),
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

/// A DNS-1035 label (OLM derives a Service name from it): `cs-<image>-<tag>`, lowercase,
/// other characters as `-`, at most 63 characters, starting with a letter.
pub fn catalog_name(image: &str, tag: &str) -> String {
    let raw = format!("cs-{image}-{tag}").to_ascii_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
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

    fn pushed(src: &str, dest: &str, catalog: bool) -> Pushed {
        Pushed {
            source_repository: Some(src.into()),
            source_reference: Some(format!("{src}@sha256:{}", "a".repeat(64))),
            source_by_tag: false,
            destination: dest.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            tags: vec!["v4.6".into()],
            catalog,
        }
    }

    #[test]
    fn sources_are_original_registry_paths_and_names_are_valid() {
        let images = vec![
            pushed(
                "registry.redhat.io/openshift4/ose-elasticsearch-proxy",
                "reg:8443/efk/openshift4/ose-elasticsearch-proxy",
                false,
            ),
            pushed(
                "registry.example.com:5000/my-operator/my-operator-index",
                "reg:8443/efk/my-operator/my-operator-index",
                true,
            ),
        ];
        let files = render(
            &images,
            &Options {
                name: "ferry-0123456789ab",
                catalog_secrets: &[],
                publisher: "ferry",
            },
        );
        let idms = &files["imageDigestMirrorSet.yaml"];
        assert!(
            idms.contains("source: \"registry.redhat.io/openshift4/ose-elasticsearch-proxy\""),
            "{idms}"
        );
        assert!(idms.contains("- \"reg:8443/efk/openshift4/ose-elasticsearch-proxy\""));
        let cs = &files["catalogSource.yaml"];
        assert!(cs.contains("name: \"cs-my-operator-index-v4-6\""), "{cs}");
        assert!(is_dns1035_label("cs-my-operator-index-v4-6"));
        assert!(!is_dns1123_subdomain("my-operator/my-operator-index"));
    }

    #[test]
    fn catalog_names_are_dns1035() {
        for (image, tag) in [
            ("My_Index", "v1.2"),
            ("x", &"long".repeat(30)),
            ("9lives", "latest"),
        ] {
            let n = catalog_name(image, tag);
            assert!(is_dns1035_label(&n), "{n}");
        }
    }
}
