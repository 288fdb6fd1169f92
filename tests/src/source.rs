//! The pull tests' source side: a real docker-registry holding the fixtures' six images,
//! pushed there by skopeo, that stands for `registry.redhat.io` (and a second name,
//! `quay.io`) through a registries.conf; and the ImageSetConfiguration a user would write
//! for them.
//!
//! The six images come from `fixtures/oci` (fixtures/README.md "Images"; the same digests
//! as in `fixtures/oc-mirror`, whose mapping.txt gives their original references, kept in
//! [`ORIGINAL_IMAGES`](crate::registry::ORIGINAL_IMAGES)). skopeo cannot select a
//! docker-typed image by name in an OCI layout, so each is pushed from a one-descriptor
//! view of the layout (fixtures/README.md `oci/`), with `--preserve-digests`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::registry::{Registry, ORIGINAL_IMAGES};
use crate::{assert_ok, fixture, run, tempdir};

/// Where the second name's images sit in the source registry: `quay.io/X` is
/// `127.0.0.1:PORT/quay/X`, so a test can tell which name a pull went through.
pub const QUAY_NAMESPACE: &str = "quay";

/// One image in the source registry.
#[derive(Clone, Debug)]
pub struct SourceImage {
    /// As a user writes it in an image set: `registry.redhat.io/openshift4/ose-x:v4.6`,
    /// or `…@sha256:<hex>` for an image pulled by digest.
    pub reference: String,
    /// Its registry host as written: `registry.redhat.io`, `registry.example.com:5000`,
    /// `quay.io`.
    pub registry_name: String,
    /// Its repository path as written (no host): `openshift4/ose-x`.
    pub path: String,
    /// The tag, for an image referenced by tag.
    pub tag: Option<String>,
    /// Where the registry keeps it: `127.0.0.1:PORT/openshift4/ose-x:v4.6` (or `@sha256:`).
    pub location: String,
    /// Its repository in the registry: `openshift4/ose-x`, `quay/ferry-test/ose-x`.
    pub stored_repository: String,
    /// The top-level manifest's digest.
    pub digest: String,
    pub media_type: String,
    /// The digests of the children of an index or manifest list (empty otherwise).
    pub children: Vec<String>,
}

impl SourceImage {
    pub fn is_multi_arch(&self) -> bool {
        !self.children.is_empty()
    }

    pub fn by_tag(&self) -> bool {
        self.tag.is_some()
    }

    /// The reference by digest, whatever it was written with: `name@sha256:<hex>`.
    pub fn by_digest(&self) -> String {
        format!("{}/{}@{}", self.registry_name, self.path, self.digest)
    }
}

/// A docker-registry holding the fixture images, and what was pushed into it.
pub struct SourceRegistry {
    pub registry: Registry,
    /// Every image pushed, the six originals first (in [`ORIGINAL_IMAGES`] order), then
    /// the `quay.io` copies of the multi-arch fluentd list and the OCI proxy image.
    pub images: Vec<SourceImage>,
}

impl SourceRegistry {
    /// A plain-HTTP registry holding the fixture images.
    pub fn start() -> SourceRegistry {
        SourceRegistry::fill(Registry::plain())
    }

    /// Pushes the fixture images into `registry` (plain, TLS or htpasswd: skopeo is given
    /// its CA or credentials).
    pub fn fill(registry: Registry) -> SourceRegistry {
        let tmp = tempdir();
        let index: Value = serde_json::from_slice(
            &fs::read(fixture("oci").join("index.json")).expect("read fixtures/oci/index.json"),
        )
        .expect("fixtures/oci/index.json is JSON");
        let descriptors = index["manifests"].as_array().expect("manifests").clone();
        let mut images = Vec::new();
        let mut plan: Vec<(&'static str, String, String, Option<String>)> = ORIGINAL_IMAGES
            .iter()
            .map(|o| {
                let (name, path) = o.source_repository().split_once('/').expect("host/path");
                let tag = o.by_tag.then(|| o.tag.to_owned());
                (o.digest, name.to_owned(), path.to_owned(), tag)
            })
            .collect();
        for (digest, path) in [
            (
                "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e",
                "ferry-test/ose-logging-fluentd",
            ),
            (crate::PROXY_DIGEST, "ferry-test/ose-elasticsearch-proxy"),
        ] {
            plan.push((
                digest,
                "quay.io".to_owned(),
                path.to_owned(),
                Some("v4.6".to_owned()),
            ));
        }
        let mut pushes = Vec::new();
        for (i, (digest, name, path, tag)) in plan.into_iter().enumerate() {
            let descriptor = descriptors
                .iter()
                .find(|d| d["digest"] == digest)
                .unwrap_or_else(|| panic!("{digest} is not in fixtures/oci"))
                .clone();
            let view = one_descriptor_view(&tmp.path().join(format!("view-{i}")), &descriptor);
            let stored_repository = if name == "quay.io" {
                format!("{QUAY_NAMESPACE}/{path}")
            } else {
                path.clone()
            };
            let at = match &tag {
                Some(t) => format!(":{t}"),
                None => format!("@{digest}"),
            };
            let location = format!("{}/{stored_repository}{at}", registry.host());
            let bytes = fs::read(
                fixture("oci")
                    .join("blobs/sha256")
                    .join(digest.strip_prefix("sha256:").expect("sha256")),
            )
            .expect("the manifest blob");
            let doc: Value = serde_json::from_slice(&bytes).expect("manifest JSON");
            let children = doc["manifests"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["digest"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            images.push(SourceImage {
                reference: format!("{name}/{path}{at}"),
                registry_name: name,
                path,
                tag,
                location: location.clone(),
                stored_repository,
                digest: digest.to_owned(),
                media_type: descriptor["mediaType"]
                    .as_str()
                    .expect("mediaType")
                    .to_owned(),
                children,
            });
            pushes.push((view, location));
        }
        // The pushes run side by side: eight skopeo processes, a fraction of a second each.
        let flags = skopeo_dest_flags(&registry);
        let threads: Vec<_> = pushes
            .into_iter()
            .map(|(view, location)| {
                let flags = flags.clone();
                std::thread::spawn(move || {
                    let mut args = vec![
                        "copy".to_owned(),
                        "--all".to_owned(),
                        "--preserve-digests".to_owned(),
                        "--retry-times=3".to_owned(),
                    ];
                    args.extend(flags);
                    args.push(format!("oci:{}", view.display()));
                    args.push(format!("docker://{location}"));
                    let out = run("skopeo", &args);
                    assert_ok(&out, &format!("skopeo copy into the source: {location}"));
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a push thread panicked");
        }
        drop(tmp);
        SourceRegistry { registry, images }
    }

    /// Every reference pushed, as a user writes it.
    pub fn references(&self) -> Vec<String> {
        self.images.iter().map(|i| i.reference.clone()).collect()
    }

    /// The image whose reference ends with `suffix` (`ose-logging-fluentd:v4.6`); panics
    /// unless exactly one does.
    #[track_caller]
    pub fn image(&self, suffix: &str) -> &SourceImage {
        let found: Vec<&SourceImage> = self
            .images
            .iter()
            .filter(|i| i.reference.ends_with(suffix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "images ending with {suffix:?}: {:?}",
            self.references()
        );
        found[0]
    }

    /// The multi-arch docker manifest list (fluentd, amd64 and arm64/v8), as
    /// `registry.redhat.io` serves it.
    pub fn multi_arch(&self) -> &SourceImage {
        self.image("registry.redhat.io/openshift4/ose-logging-fluentd:v4.6")
    }

    /// Writes a registries.conf at `path` that sends every name the images use to this
    /// registry, `insecure = true` (plain HTTP). Its path.
    pub fn registries_conf(&self, path: &Path) -> PathBuf {
        self.registries_conf_via(path, &self.registry.host())
    }

    /// The same, with every name sent to `host` instead (a [`Proxy`] in front of this
    /// registry: `proxy.host()`).
    ///
    /// [`Proxy`]: test_support::proxy::Proxy
    pub fn registries_conf_via(&self, path: &Path, host: &str) -> PathBuf {
        let quay = format!("{host}/{QUAY_NAMESPACE}");
        write_registries_conf(
            path,
            &[
                ("registry.redhat.io", host),
                ("registry.example.com:5000", host),
                ("quay.io", &quay),
            ],
        )
    }
}

/// A directory that is an OCI layout holding only `descriptor`, its blobs those of
/// `fixtures/oci` (a symlink): the form in which skopeo reads a docker-typed image.
fn one_descriptor_view(dir: &Path, descriptor: &Value) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir view");
    fs::copy(fixture("oci").join("oci-layout"), dir.join("oci-layout")).expect("copy oci-layout");
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]});
    fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::os::unix::fs::symlink(fixture("oci").join("blobs"), dir.join("blobs"))
        .expect("symlink blobs");
    dir.to_owned()
}

/// skopeo's flags to push into `registry`: its CA or no TLS, and its credentials.
fn skopeo_dest_flags(registry: &Registry) -> Vec<String> {
    let mut flags = Vec::new();
    match &registry.ca {
        Some(ca) => flags.push(format!("--dest-cert-dir={}", ca.cert_dir().display())),
        None => flags.push("--dest-tls-verify=false".to_owned()),
    }
    if let Some((u, p)) = &registry.credentials {
        flags.push(format!("--dest-creds={u}:{p}"));
    }
    flags
}

/// Writes a containers-registries.conf(5) (v2) at `path`: one `[[registry]]` per
/// `(prefix, location)`, `insecure = true`, and no unqualified-search registries (so a
/// short name can never reach the network). Its path.
pub fn write_registries_conf(path: &Path, entries: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from(
        "# Written by ferry's e2e kit (tests/src/source.rs): these names are served on 127.0.0.1.\n\
         unqualified-search-registries = []\n",
    );
    for (prefix, location) in entries {
        text.push_str(&format!(
            "\n[[registry]]\nprefix = {}\nlocation = {}\ninsecure = true\n",
            toml_string(prefix),
            toml_string(location)
        ));
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir for registries.conf");
    }
    fs::write(path, text).expect("write registries.conf");
    path.to_owned()
}

/// A TOML basic string (JSON's escapes are TOML's for what a test writes).
fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

// ---------------------------------------------------------------------------------------
// ImageSetConfiguration

/// One `mirror.additionalImages[]` entry.
#[derive(Clone, Debug, Default)]
pub struct AdditionalImage {
    pub name: String,
    pub target_repo: Option<String>,
    pub target_tag: Option<String>,
    /// `os/architecture[/variant]`, written as `platforms: [{os, architecture, variant}]`.
    pub platforms: Vec<String>,
}

impl AdditionalImage {
    pub fn new(name: &str) -> AdditionalImage {
        AdditionalImage {
            name: name.to_owned(),
            ..AdditionalImage::default()
        }
    }
}

/// An oc-mirror v2 ImageSetConfiguration (`apiVersion: mirror.openshift.io/v2alpha1`,
/// `kind: ImageSetConfiguration`) with `mirror.additionalImages` and
/// `mirror.blockedImages`, as text a user would write.
#[derive(Clone, Debug, Default)]
pub struct ImageSet {
    pub additional_images: Vec<AdditionalImage>,
    pub blocked_images: Vec<String>,
}

impl ImageSet {
    /// `additionalImages` naming these references.
    pub fn of<S: AsRef<str>>(names: &[S]) -> ImageSet {
        ImageSet {
            additional_images: names
                .iter()
                .map(|n| AdditionalImage::new(n.as_ref()))
                .collect(),
            blocked_images: Vec::new(),
        }
    }

    /// The YAML text. Every scalar is double-quoted (JSON's escapes are YAML's).
    pub fn yaml(&self) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let mut y = String::from(
            "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n",
        );
        if !self.additional_images.is_empty() {
            y.push_str("  additionalImages:\n");
        }
        for i in &self.additional_images {
            y.push_str(&format!("  - name: {}\n", q(&i.name)));
            if let Some(r) = &i.target_repo {
                y.push_str(&format!("    targetRepo: {}\n", q(r)));
            }
            if let Some(t) = &i.target_tag {
                y.push_str(&format!("    targetTag: {}\n", q(t)));
            }
            if !i.platforms.is_empty() {
                y.push_str("    platforms:\n");
            }
            for p in &i.platforms {
                let mut parts = p.split('/');
                let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
                y.push_str(&format!(
                    "    - os: {}\n      architecture: {}\n",
                    q(os.unwrap_or_default()),
                    q(arch.unwrap_or_default())
                ));
                if let Some(v) = variant {
                    y.push_str(&format!("      variant: {}\n", q(v)));
                }
            }
        }
        if !self.blocked_images.is_empty() {
            y.push_str("  blockedImages:\n");
        }
        for b in &self.blocked_images {
            y.push_str(&format!("  - name: {}\n", q(b)));
        }
        y
    }

    /// Writes [`Self::yaml`] at `path`; its path.
    pub fn write(&self, path: &Path) -> PathBuf {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("mkdir for the image set");
        }
        fs::write(path, self.yaml()).expect("write the image set");
        path.to_owned()
    }
}

/// The text of an image set whose `additionalImages` are `names`.
pub fn imageset_yaml<S: AsRef<str>>(names: &[S]) -> String {
    ImageSet::of(names).yaml()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::skopeo_digest;

    /// What the pull tests stand on: every image is in the source by its digest, whole,
    /// and skopeo finds it by the name a user writes, through the registries.conf.
    #[test]
    fn the_source_serves_every_fixture_image_under_its_original_name() {
        let source = SourceRegistry::start();
        assert_eq!(source.images.len(), 8, "{:?}", source.references());
        let (tagged, dangling) = source
            .registry
            .tagged_images_and_dangling()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(dangling.is_empty(), "{dangling:?}");
        let tmp = tempdir();
        let conf = source.registries_conf(&tmp.path().join("registries.conf"));
        for image in &source.images {
            // Where the registry keeps it, and by the name the user writes.
            assert_eq!(
                skopeo_digest(&image.location, &["--tls-verify=false"]),
                image.digest,
                "{}",
                image.location
            );
            let out = run(
                "skopeo",
                [
                    "--registries-conf".to_owned(),
                    conf.display().to_string(),
                    "inspect".to_owned(),
                    "--raw".to_owned(),
                    format!("docker://{}", image.reference),
                ],
            );
            assert_ok(&out, &format!("skopeo inspect {}", image.reference));
            assert_eq!(
                test_support::registry::sha256_hex(&out.stdout),
                image.digest,
                "{}",
                image.reference
            );
            if let Some(tag) = &image.tag {
                assert_eq!(
                    tagged.get(&format!("{}:{tag}", image.stored_repository)),
                    Some(&image.digest)
                );
            }
            for child in &image.children {
                assert!(source
                    .registry
                    .manifest(&image.stored_repository, child)
                    .is_some());
            }
        }
        let multi = source.multi_arch();
        assert_eq!(multi.children.len(), 2);
        assert_eq!(
            multi.media_type,
            "application/vnd.docker.distribution.manifest.list.v2+json"
        );
        assert!(source
            .images
            .iter()
            .any(|i| !i.by_tag() && i.reference.contains("@sha256:")));
        let quay = source.image("quay.io/ferry-test/ose-logging-fluentd:v4.6");
        assert_eq!(quay.digest, multi.digest);
        assert!(quay.location.contains("/quay/ferry-test/"));
        let text = fs::read_to_string(&conf).unwrap();
        assert!(text.contains("prefix = \"registry.redhat.io\""), "{text}");
        assert!(text.contains("insecure = true"), "{text}");
    }

    #[test]
    fn a_source_behind_htpasswd_is_filled_with_its_credentials() {
        let source = SourceRegistry::fill(Registry::htpasswd("src-user", "src-Pa55"));
        let image = source.multi_arch();
        assert!(
            crate::registry::skopeo_raw(&image.location, &["--tls-verify=false"]).is_err(),
            "anonymous reads are refused"
        );
        assert_eq!(
            skopeo_digest(
                &image.location,
                &["--tls-verify=false", "--creds=src-user:src-Pa55"]
            ),
            image.digest
        );
    }

    #[test]
    fn a_sandboxed_ferry_pack_sees_none_of_the_developers_settings() {
        let tmp = tempdir();
        let sandbox = crate::registry::Sandbox::new(tmp.path());
        let c = sandbox.pack_command(["pull"]);
        let envs: Vec<_> = c.get_envs().collect();
        for v in [
            "REGISTRY_AUTH_FILE",
            "CONTAINERS_REGISTRIES_CONF",
            "DOCKER_CONFIG",
        ] {
            assert!(
                envs.iter().any(|(k, val)| *k == v && val.is_none()),
                "{v} is removed"
            );
        }
        assert_eq!(c.get_program(), crate::bin_dir().join("ferry-pack"));
    }

    #[test]
    fn an_image_set_is_the_yaml_oc_mirror_reads() {
        let mut set = ImageSet::of(&["registry.redhat.io/ubi8/ubi:8.9", "quay.io/a/b@sha256:00"]);
        set.additional_images[0].platforms = vec!["linux/arm64/v8".into(), "linux/amd64".into()];
        set.additional_images[1].target_repo = Some("mirror/b".into());
        set.blocked_images = vec!["quay.io/a/blocked.*".into()];
        assert_eq!(
            set.yaml(),
            "apiVersion: mirror.openshift.io/v2alpha1\n\
             kind: ImageSetConfiguration\n\
             mirror:\n\
             \x20 additionalImages:\n\
             \x20 - name: \"registry.redhat.io/ubi8/ubi:8.9\"\n\
             \x20   platforms:\n\
             \x20   - os: \"linux\"\n\
             \x20     architecture: \"arm64\"\n\
             \x20     variant: \"v8\"\n\
             \x20   - os: \"linux\"\n\
             \x20     architecture: \"amd64\"\n\
             \x20 - name: \"quay.io/a/b@sha256:00\"\n\
             \x20   targetRepo: \"mirror/b\"\n\
             \x20 blockedImages:\n\
             \x20 - name: \"quay.io/a/blocked.*\"\n"
        );
        // The YAML a YAML parser reads back, field for field.
        let v: serde_json::Value = serde_norway::from_str(&set.yaml()).expect("YAML");
        assert_eq!(v["kind"], "ImageSetConfiguration");
        assert_eq!(
            v["mirror"]["additionalImages"][0]["platforms"][0]["architecture"],
            "arm64"
        );
        assert_eq!(
            v["mirror"]["blockedImages"][0]["name"],
            "quay.io/a/blocked.*"
        );
    }
}
