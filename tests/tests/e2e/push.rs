//! `ferry-unpack push` into a real registry (CNCF distribution 2.8.2, Debian's
//! `docker-registry`), read back the way a user would: skopeo, the Distribution API, and
//! the YAML handed to the cluster. Where each image lands and with which digest, a second
//! run that sends nothing, the OpenShift manifests, flattened paths, dry runs, TLS, Basic
//! auth and the receipt.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use tests::registry::*;
use tests::*;

/// skopeo reads the plain-HTTP test registries with this.
const NO_TLS: &[&str] = &["--tls-verify=false"];

fn oc_mirror(size: &str) -> Site {
    Site::pack(&fixture("oc-mirror"), size)
}

/// Every image of the fixture is at `repo_of(image)` by its tag and by its digest, and the
/// manifest skopeo reads hashes to the source digest.
#[track_caller]
fn assert_images_at(reg: &Registry, repo_of: impl Fn(&OriginalImage) -> String, flags: &[&str]) {
    for img in &ORIGINAL_IMAGES {
        let repo = format!("{}/{}", reg.host(), repo_of(img));
        let by_tag = format!("{repo}:{}", img.tag);
        assert_eq!(skopeo_digest(&by_tag, flags), img.digest, "{by_tag}");
        let by_digest = format!("{repo}@{}", img.digest);
        assert_eq!(skopeo_digest(&by_digest, flags), img.digest, "{by_digest}");
    }
}

/// Every digest the bundle's images use (layers, configs and manifests), from the
/// standalone manifest. (The bundle also carries the mirror's other files, such as oc's
/// mapping.txt, as blobs that are no image's and never go to a registry.)
fn image_blobs(site: &Site) -> BTreeSet<String> {
    let (_, m) = standalone_manifest(&site.out);
    let blobs = m["blobs"].as_array().expect("blobs");
    m["images"]
        .as_array()
        .expect("images")
        .iter()
        .flat_map(|i| i["blobs"].as_array().expect("image blobs").iter())
        .map(|b| {
            let i = usize::try_from(b.as_u64().expect("blob index")).expect("fits");
            blobs[i]["digest"].as_str().expect("digest").to_owned()
        })
        .collect()
}

fn image_by_source_repository(source: &str) -> &'static OriginalImage {
    ORIGINAL_IMAGES
        .iter()
        .find(|i| i.source_repository() == source)
        .unwrap_or_else(|| panic!("{source:?} is no original repository of the fixture"))
}

/// Every YAML document of a file, as JSON values (`---` separates objects).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}\n{text}", path.display()))
        })
        .collect()
}

fn text_of(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------

#[test]
fn every_image_lands_at_prefix_plus_its_original_path_with_the_source_digest() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    assert!(
        site.volumes().len() >= 3,
        "64KiB volumes: expected several, got {:?}",
        site.volumes()
    );
    let to = format!("{}/efk", reg.host());
    let man = site.path("manifests");
    let out = site.push(&to, &["--insecure", "--manifests-dir", &man]);
    assert_ok(&out, "push of the whole bundle");
    for img in &ORIGINAL_IMAGES {
        assert_mentions(
            &out,
            &[&format!("{to}/{}", img.path)],
            "the report names each destination",
        );
    }

    // Prefix + the original repository path; never the mirror's own path
    // (efk-mirror/my-operator/my-operator-index/openshift4/...).
    let expected: BTreeSet<String> = ORIGINAL_IMAGES
        .iter()
        .map(|i| format!("efk/{}", i.path))
        .collect();
    let catalog = reg.catalog();
    assert_eq!(
        catalog.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "repositories in the registry"
    );
    assert!(
        catalog.iter().all(|r| !r.contains("efk-mirror")),
        "{catalog:?}"
    );
    assert_images_at(&reg, |i| format!("efk/{}", i.path), NO_TLS);

    // Each tag is the image's only tag, and a complete image (every child of the fluentd
    // list, every config and layer, in its own repository).
    let tagged = reg.tagged_images().unwrap_or_else(|e| panic!("{e}"));
    let want: BTreeMap<String, String> = ORIGINAL_IMAGES
        .iter()
        .map(|i| (format!("efk/{}:{}", i.path, i.tag), i.digest.to_owned()))
        .collect();
    assert_eq!(tagged, want, "tags in the registry");

    // A user copies the OCI-typed image out of the registry. --preserve-digests: without it
    // skopeo gzips the uncompressed layer (fixtures/README.md), which is skopeo's choice.
    let dst = site.tmp.path().join("proxy-oci");
    let copy = skopeo([
        "copy".to_owned(),
        "--all".to_owned(),
        "--preserve-digests".to_owned(),
        "--tls-verify=false".to_owned(),
        format!("docker://{to}/openshift4/ose-elasticsearch-proxy:v4.6"),
        format!("oci:{}:proxy", dst.display()),
    ]);
    assert_ok(&copy, "skopeo copy --all docker://… oci:…");
    let index: Value =
        serde_json::from_slice(&fs::read(dst.join("index.json")).expect("index.json"))
            .expect("JSON");
    assert_eq!(index["manifests"][0]["digest"], PROXY_DIGEST, "{index}");
    let hex = PROXY_DIGEST.strip_prefix("sha256:").expect("sha256");
    let copied = fs::read(dst.join("blobs/sha256").join(hex)).expect("copied manifest");
    let source = fs::read(fixture("oci").join("blobs/sha256").join(hex)).expect("source manifest");
    assert_eq!(
        copied, source,
        "the manifest skopeo copied is the source's, byte for byte"
    );
    let manifest: Value = serde_json::from_slice(&copied).expect("manifest JSON");
    let mut digests: Vec<&str> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest"))
        .collect();
    assert!(digests.contains(&SHARED_BASE_LAYER), "{manifest}");
    digests.push(manifest["config"]["digest"].as_str().expect("config"));
    for d in digests {
        let path = dst
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").expect("sha256"));
        assert_eq!(
            file_sha256(&path),
            d,
            "{} as copied by skopeo",
            path.display()
        );
    }

    // No --catalog-secret: the CatalogSource names no secrets.
    let cs = yaml_docs(&Path::new(&man).join("cluster/catalogSource.yaml"));
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert!(cs[0]["spec"].get("secrets").is_none(), "{}", cs[0]);
}

#[test]
fn a_second_push_sends_nothing_and_leaves_the_storage_as_it_was() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());
    let first = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m1")]);
    assert_ok(&first, "first push");
    // The registry holds exactly the bundle's blobs, each once.
    assert_eq!(
        reg.stored_blobs().into_iter().collect::<BTreeSet<_>>(),
        image_blobs(&site),
        "blobs in the registry's storage"
    );
    let before = reg.storage_files();

    let again = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m2")]);
    assert_ok(&again, "second push");
    assert_mentions(
        &again,
        &[
            "0 blob(s) uploaded (0 B), 0 mounted,",
            "already there; 0 manifest(s) and 0 tag(s) pushed",
            // Every image has a tag: the repeat lists tags, it asks for none one by one.
            "6 image(s) present as the last push from this state directory left them",
        ],
        "second push",
    );
    let stderr = again.stderr_text();
    assert!(
        !stderr.contains("uploaded sha256") && !stderr.contains("mounted sha256"),
        "second push sent something:\n{}",
        again.dump()
    );
    let present = again
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("PRESENT "))
        .count();
    assert_eq!(
        present,
        6,
        "every image is reported present\n{}",
        again.dump()
    );

    let third = site.push(
        &to,
        &["--insecure", "--json", "--manifests-dir", &site.path("m3")],
    );
    assert_ok(&third, "third push, --json");
    let report = push_report(&third);
    let totals = &report.totals;
    for field in [
        "blobs_uploaded",
        "bytes_uploaded",
        "blobs_mounted",
        "manifests_pushed",
        "tags_pushed",
    ] {
        assert_eq!(totals[field], 0, "{field} in {totals}");
    }
    assert!(
        totals["blobs_present"].as_u64().expect("blobs_present") > 0,
        "{totals}"
    );
    assert_eq!(totals["images_as_recorded"], 6, "{totals}");
    assert_eq!(report.images.len(), 6, "image events");
    for i in &report.images {
        assert_eq!(i["status"], "present", "{i}");
    }

    // HEADs only: not a file of the storage was added, removed or rewritten.
    assert_eq!(
        reg.storage_files(),
        before,
        "the registry's storage changed"
    );
}

/// A repeat push takes the last push's record only for tags the registry still lists: a
/// tag removed from the storage since (an administrator's clean-up) is found missing in its
/// repository's tag list, its image found whole by digest, and the tag put back; the other
/// images are left as recorded. `--recheck` asks for every tag again.
#[test]
fn a_tag_removed_since_the_last_push_is_put_back_by_the_repeat() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());
    let first = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m1")]);
    assert_ok(&first, "first push");
    let img = image_by_source_repository("registry.redhat.io/openshift4/ose-logging-fluentd");
    let tag_dir = reg.storage().join(format!(
        "docker/registry/v2/repositories/efk/{}/_manifests/tags/{}",
        img.path, img.tag
    ));
    std::fs::remove_dir_all(&tag_dir).expect("remove the tag from the storage");
    let by_tag = format!("/v2/efk/{}/manifests/{}", img.path, img.tag);
    assert_eq!(
        reg.request("HEAD", &by_tag, None).status,
        404,
        "the tag is gone"
    );

    let again = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m2")]);
    assert_ok(&again, "the repeat push");
    assert_mentions(
        &again,
        &[
            "0 blob(s) uploaded (0 B), 0 mounted,",
            "0 manifest(s) and 1 tag(s) pushed",
            "5 image(s) present as the last push from this state directory left them",
        ],
        "the repeat push",
    );
    let stdout = again.stdout_text();
    let pushed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("PUSHED "))
        .collect::<Vec<_>>();
    assert!(
        pushed.len() == 1 && pushed[0].contains(img.path),
        "only the image whose tag was removed is pushed\n{}",
        again.dump()
    );
    let head = reg.request("HEAD", &by_tag, None);
    assert_eq!(head.status, 200, "the tag is back");
    assert_images_at(&reg, |i| format!("efk/{}", i.path), NO_TLS);

    let recheck = site.push(
        &to,
        &[
            "--insecure",
            "--recheck",
            "--json",
            "--manifests-dir",
            &site.path("m3"),
        ],
    );
    assert_ok(&recheck, "--recheck");
    assert_eq!(push_report(&recheck).totals["images_as_recorded"], 0);
}

#[test]
fn the_cluster_manifests_name_original_sources_valid_names_and_mirrors_that_work() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let host = reg.host();
    let to = format!("{host}/efk");
    let man = site.path("manifests");
    let out = site.push(
        &to,
        &[
            "--insecure",
            "--manifests-dir",
            &man,
            "--catalog-secret",
            "foo",
        ],
    );
    assert_ok(&out, "push --catalog-secret foo");
    let man = Path::new(&man);
    assert_eq!(
        names(man),
        [
            "cluster",
            "cluster-before-4.13",
            "mapping.txt",
            "receipt.json"
        ],
        "files in --manifests-dir (and nothing half-written)"
    );
    assert_eq!(
        names(&man.join("cluster")),
        [
            "catalogSource.yaml",
            "imageDigestMirrorSet.yaml",
            "imageTagMirrorSet.yaml",
            "operatorHub.yaml"
        ],
        "the directory for OpenShift 4.13 and later"
    );
    assert_eq!(
        names(&man.join("cluster-before-4.13")),
        [
            "catalogSource.yaml",
            "imageContentSourcePolicy.yaml",
            "operatorHub.yaml"
        ],
        "the directory for clusters before 4.13"
    );

    let all: BTreeSet<&str> = ORIGINAL_IMAGES
        .iter()
        .map(|i| i.source_repository())
        .collect();
    let by_tag: BTreeSet<&str> = ORIGINAL_IMAGES
        .iter()
        .filter(|i| i.by_tag)
        .map(|i| i.source_repository())
        .collect();
    for (file, api, kind, field, want) in [
        (
            "cluster/imageDigestMirrorSet.yaml",
            "config.openshift.io/v1",
            "ImageDigestMirrorSet",
            "imageDigestMirrors",
            &all,
        ),
        (
            "cluster/imageTagMirrorSet.yaml",
            "config.openshift.io/v1",
            "ImageTagMirrorSet",
            "imageTagMirrors",
            &by_tag,
        ),
        (
            "cluster-before-4.13/imageContentSourcePolicy.yaml",
            "operator.openshift.io/v1alpha1",
            "ImageContentSourcePolicy",
            "repositoryDigestMirrors",
            &all,
        ),
    ] {
        let docs = yaml_docs(&man.join(file));
        assert!(!docs.is_empty(), "{file} holds no object");
        let mut sources = BTreeSet::new();
        for doc in &docs {
            assert_eq!(doc["apiVersion"], api, "{file}: {doc}");
            assert_eq!(doc["kind"], kind, "{file}: {doc}");
            let name = text_of(&doc["metadata"]["name"], "metadata.name");
            assert!(
                dns1123_subdomain(&name) && !name.contains('/'),
                "{file}: {name:?} is not a valid object name (DNS-1123 subdomain)"
            );
            for entry in doc["spec"][field]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: spec.{field}: {doc}"))
            {
                let source = text_of(&entry["source"], "source");
                assert!(
                    (source.starts_with("registry.redhat.io/")
                        || source.starts_with("registry.example.com:5000/"))
                        && !source.contains("efk-mirror"),
                    "{file}: source {source:?} is not an original registry path"
                );
                let img = image_by_source_repository(&source);
                let mirrors = entry["mirrors"].as_array().expect("mirrors");
                assert_eq!(
                    mirrors
                        .iter()
                        .map(|m| text_of(m, "mirror"))
                        .collect::<Vec<_>>(),
                    [format!("{to}/{}", img.path)],
                    "{file}: mirrors of {source}"
                );
                // The cluster pulls source@digest from mirror@digest (IDMS, ICSP), or
                // source:tag from mirror:tag (ITMS): both must work.
                let reference = if kind == "ImageTagMirrorSet" {
                    format!("{to}/{}:{}", img.path, img.tag)
                } else {
                    format!("{to}/{}@{}", img.path, img.digest)
                };
                assert_eq!(
                    skopeo_digest(&reference, NO_TLS),
                    img.digest,
                    "{file}: {reference}"
                );
                assert!(
                    sources.insert(source.clone()),
                    "{file}: {source} listed twice"
                );
            }
        }
        let sources: BTreeSet<&str> = sources.iter().map(String::as_str).collect();
        assert_eq!(&sources, want, "{file}: sources");
    }

    let cs = yaml_docs(&man.join("cluster/catalogSource.yaml"));
    assert_eq!(cs.len(), 1, "one operator index, one CatalogSource: {cs:?}");
    let cs = &cs[0];
    assert_eq!(cs["apiVersion"], "operators.coreos.com/v1alpha1", "{cs}");
    assert_eq!(cs["kind"], "CatalogSource", "{cs}");
    let name = text_of(&cs["metadata"]["name"], "CatalogSource name");
    assert!(
        dns1035_label(&name) && !name.contains('/'),
        "CatalogSource name {name:?} is not a DNS-1035 label"
    );
    assert_eq!(cs["metadata"]["namespace"], "openshift-marketplace", "{cs}");
    assert_eq!(cs["spec"]["sourceType"], "grpc", "{cs}");
    let index = &ORIGINAL_IMAGES[0];
    let image = text_of(&cs["spec"]["image"], "spec.image");
    assert!(
        image == format!("{to}/{}:{}", index.path, index.tag)
            || image == format!("{to}/{}@{}", index.path, index.digest),
        "CatalogSource image {image:?} is not the pushed index"
    );
    assert_eq!(
        skopeo_digest(&image, NO_TLS),
        index.digest,
        "CatalogSource image"
    );
    assert_eq!(cs["spec"]["secrets"], serde_json::json!(["foo"]), "{cs}");

    // mapping.txt: one SRC=DST line per image, from the original reference to where it is.
    let mapping = fs::read_to_string(man.join("mapping.txt")).expect("mapping.txt");
    let lines: Vec<&str> = mapping.lines().collect();
    assert_eq!(lines.len(), 6, "mapping.txt:\n{mapping}");
    let mut seen = BTreeSet::new();
    for line in lines {
        let (src, dst) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not SRC=DST: {line}"));
        let img = ORIGINAL_IMAGES
            .iter()
            .find(|i| i.source == src)
            .unwrap_or_else(|| panic!("mapping.txt source {src:?} is not an original reference"));
        assert_eq!(
            dst,
            format!("{to}/{}:{}", img.path, img.tag),
            "mapping.txt: {line}"
        );
        assert_eq!(skopeo_digest(dst, NO_TLS), img.digest, "mapping.txt: {dst}");
        assert!(seen.insert(src), "mapping.txt names {src} twice");
    }

    // receipt.json: every image and every blob of the bundle.
    let receipt: Value =
        serde_json::from_slice(&fs::read(man.join("receipt.json")).expect("receipt.json"))
            .expect("JSON");
    assert_receipt_lists_everything(&receipt, &site, &to);
}

/// A receipt names the six images where they were pushed, and all of the bundle's blobs.
#[track_caller]
fn assert_receipt_lists_everything(receipt: &Value, site: &Site, to: &str) {
    assert_eq!(receipt["ferry_receipt"], 1, "{receipt}");
    let (_, m) = standalone_manifest(&site.out);
    assert_eq!(receipt["bundle_id"], m["bundle_id"], "receipt bundle id");
    let images = receipt["images"].as_array().expect("images");
    assert_eq!(images.len(), 6, "{receipt}");
    for img in &ORIGINAL_IMAGES {
        let r = images
            .iter()
            .find(|r| r["digest"] == img.digest)
            .unwrap_or_else(|| panic!("receipt lacks {}: {receipt}", img.digest));
        assert_eq!(r["destination"], format!("{to}/{}", img.path), "{r}");
        assert_eq!(r["tags"], serde_json::json!([img.tag]), "{r}");
        assert_eq!(r["source"], img.source, "{r}");
    }
    let blobs: BTreeSet<String> = receipt["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .map(|b| text_of(b, "blob"))
        .collect();
    assert_eq!(blobs, image_blobs(site), "receipt blobs");
}

#[test]
fn max_components_flattens_paths_and_the_mirror_sets_follow() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());
    let man = site.path("manifests");
    let out = site.push(
        &to,
        &[
            "--insecure",
            "--max-components",
            "2",
            "--manifests-dir",
            &man,
        ],
    );
    assert_ok(&out, "push --max-components 2");
    let flat = |i: &OriginalImage| format!("efk/{}", i.path.replace('/', "-"));
    assert_eq!(
        reg.catalog().into_iter().collect::<BTreeSet<_>>(),
        ORIGINAL_IMAGES.iter().map(flat).collect::<BTreeSet<_>>(),
        "flattened repositories (e.g. efk/openshift4-ose-elasticsearch-proxy)"
    );
    assert!(reg.catalog().iter().all(|r| r.split('/').count() <= 2));
    assert_images_at(&reg, flat, NO_TLS);
    for file in [
        "cluster/imageDigestMirrorSet.yaml",
        "cluster-before-4.13/imageContentSourcePolicy.yaml",
    ] {
        let docs = yaml_docs(&Path::new(&man).join(file));
        let mut n = 0;
        for doc in &docs {
            let field = if file.starts_with("cluster/") {
                "imageDigestMirrors"
            } else {
                "repositoryDigestMirrors"
            };
            for entry in doc["spec"][field].as_array().expect("entries") {
                let img = image_by_source_repository(&text_of(&entry["source"], "source"));
                assert_eq!(
                    entry["mirrors"],
                    serde_json::json!([format!("{}/{}", reg.host(), flat(img))]),
                    "{file}: {entry}"
                );
                n += 1;
            }
        }
        assert_eq!(n, 6, "{file}: one entry per source");
    }
    let cs = yaml_docs(&Path::new(&man).join("cluster/catalogSource.yaml"));
    assert_eq!(
        cs[0]["spec"]["image"],
        format!("{}/efk/my-operator-my-operator-index:v1", reg.host()),
        "{}",
        cs[0]
    );
}

#[test]
fn dry_run_prints_the_mapping_and_touches_nothing() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());
    let man = site.path("manifests");
    let out = site.push(&to, &["--insecure", "--dry-run", "--manifests-dir", &man]);
    assert_ok(&out, "push --dry-run");
    for img in &ORIGINAL_IMAGES {
        assert_mentions(
            &out,
            &[&format!("{to}/{}", img.path)],
            "dry run: the mapping",
        );
    }
    assert_mentions(&out, &["would upload", "nothing was written"], "dry run");
    assert_eq!(
        reg.catalog(),
        Vec::<String>::new(),
        "dry run: repositories created"
    );
    assert!(
        !reg.storage()
            .join("docker/registry/v2/repositories")
            .exists(),
        "dry run: the registry stored something: {:?}",
        reg.storage_files()
    );
    assert!(!Path::new(&man).exists(), "dry run wrote {man}");
    assert!(!site.state.exists(), "dry run wrote the state directory");
    assert_eq!(
        names(&site.sandbox.dir),
        ["home"],
        "dry run wrote into the working directory"
    );

    // After the real push, a dry run has nothing left to send.
    assert_ok(
        &site.push(&to, &["--insecure", "--manifests-dir", &man]),
        "push",
    );
    let again = site.push(&to, &["--insecure", "--dry-run", "--json"]);
    assert_ok(&again, "dry run after the push");
    let totals = &push_report(&again).totals;
    assert_eq!(totals["would_upload"], 0, "{totals}");
}

// ---------------------------------------------------------------------------------------
// TLS and credentials

#[test]
fn tls_with_a_private_ca_needs_ca_cert() {
    let reg = Registry::tls();
    let ca = reg.ca.as_ref().expect("TLS registry has a CA");
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());

    let refused = site.push(&to, &["--manifests-dir", &site.path("m0")]);
    assert_ne!(
        refused.code(),
        0,
        "push to an unknown CA succeeded\n{}",
        refused.dump()
    );
    let text = refused.text().to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls"),
        "the refusal does not say it is about the certificate\n{}",
        refused.dump()
    );
    assert_mentions(&refused, &[&reg.host()], "the refusal names the registry");
    assert!(!refused.text().contains("panicked"), "{}", refused.dump());
    assert_eq!(
        reg.catalog(),
        Vec::<String>::new(),
        "nothing may go in over unverified TLS"
    );

    let ca_cert = ca.ca_cert.to_str().expect("utf-8");
    let ok = site.push(
        &to,
        &["--ca-cert", ca_cert, "--manifests-dir", &site.path("m1")],
    );
    assert_ok(&ok, "push --ca-cert ca.pem");
    let cert_dir = ca.cert_dir();
    let flags = ["--cert-dir", cert_dir.to_str().expect("utf-8")];
    assert_images_at(&reg, |i| format!("efk/{}", i.path), &flags);
    reg.tagged_images().unwrap_or_else(|e| panic!("{e}"));
}

const USER: &str = "ferry-pusher";
const PASSWORD: &str = "Corr3ct-Horse-4711";
const WRONG: &str = "Wr0ng-Battery-0815";

/// A containers auth.json for one registry.
fn auth_file(dir: &Path, name: &str, host: &str, user: &str, password: &str) -> String {
    let path = dir.join(name);
    let doc =
        serde_json::json!({ "auths": { host: { "auth": b64(&format!("{user}:{password}")) } } });
    fs::write(&path, serde_json::to_vec_pretty(&doc).expect("JSON")).expect("write auth file");
    path.to_str().expect("utf-8").to_owned()
}

/// Neither password, nor the base64 the auth file holds, shows in anything printed.
#[track_caller]
fn assert_no_secret(out: &std::process::Output, what: &str) {
    let text = out.text();
    for secret in [
        PASSWORD.to_owned(),
        WRONG.to_owned(),
        b64(&format!("{USER}:{PASSWORD}")),
        b64(&format!("{USER}:{WRONG}")),
    ] {
        assert!(
            !text.contains(&secret),
            "{what}: output shows a secret ({secret})\n{}",
            out.dump()
        );
    }
}

#[test]
fn basic_auth_from_an_auth_file_and_never_a_password_in_the_output() {
    let reg = Registry::htpasswd(USER, PASSWORD);
    let site = oc_mirror("64KiB");
    let host = reg.host();
    let good = auth_file(site.tmp.path(), "auth.json", &host, USER, PASSWORD);
    let bad = auth_file(site.tmp.path(), "bad-auth.json", &host, USER, WRONG);
    let creds = format!("{USER}:{PASSWORD}");
    let flags = ["--tls-verify=false", "--creds", creds.as_str()];

    let out = site.push(
        &format!("{host}/efk"),
        &[
            "--insecure",
            "--authfile",
            &good,
            "--manifests-dir",
            &site.path("m1"),
        ],
    );
    assert_ok(&out, "push --authfile");
    assert_no_secret(&out, "push --authfile");
    assert_images_at(&reg, |i| format!("efk/{}", i.path), &flags);

    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["--insecure", "--authfile", bad.as_str(), "--manifests-dir"];
        let m = site.path("m2");
        args.push(&m);
        args.extend(extra);
        let refused = site.push(&format!("{host}/wrong"), &args);
        // The first contact (GET /v2/ with the credentials, as `docker login` checks them)
        // says it once, exit 2, before anything is tried.
        assert_exit(&refused, 2, &format!("wrong password {extra:?}"));
        assert_eq!(
            refused.text().matches("unauthorized (401)").count(),
            1,
            "the refusal {extra:?} does not say unauthorized once\n{}",
            refused.dump()
        );
        assert_mentions(
            &refused,
            &[&format!("the registry rejected user \"{USER}\"")],
            "names the user",
        );
        assert_no_secret(&refused, &format!("wrong password {extra:?}"));
    }
    assert!(
        reg.catalog().iter().all(|r| !r.starts_with("wrong/")),
        "something went in with a wrong password: {:?}",
        reg.catalog()
    );

    let anonymous = site.push(
        &format!("{host}/anon"),
        &["--insecure", "--manifests-dir", &site.path("m3")],
    );
    assert_ne!(anonymous.code(), 0, "{}", anonymous.dump());
    assert!(
        anonymous.text().to_lowercase().contains("unauthorized"),
        "{}",
        anonymous.dump()
    );

    // $REGISTRY_AUTH_FILE, as podman and skopeo read it.
    let args = site.push_args(
        std::slice::from_ref(&site.out),
        &format!("{host}/env"),
        &["--insecure", "--json", "--manifests-dir", &site.path("m4")],
    );
    let via_env = site
        .sandbox
        .run_env(args, &[("REGISTRY_AUTH_FILE", OsStr::new(&good))]);
    assert_ok(&via_env, "push with REGISTRY_AUTH_FILE");
    assert_no_secret(&via_env, "push --json with REGISTRY_AUTH_FILE");
    assert_images_at(&reg, |i| format!("env/{}", i.path), &flags);
}

#[test]
fn a_failed_push_keeps_the_manifests_of_the_last_good_one() {
    let reg = Registry::htpasswd(USER, PASSWORD);
    let site = oc_mirror("64KiB");
    let host = reg.host();
    let to = format!("{host}/efk");
    let good = auth_file(site.tmp.path(), "auth.json", &host, USER, PASSWORD);
    let bad = auth_file(site.tmp.path(), "bad-auth.json", &host, USER, WRONG);
    let man = site.path("manifests");
    assert_ok(
        &site.push(
            &to,
            &["--insecure", "--authfile", &good, "--manifests-dir", &man],
        ),
        "good push",
    );
    let idms = fs::read_to_string(Path::new(&man).join("cluster/imageDigestMirrorSet.yaml"))
        .expect("IDMS");
    let failed = site.push(
        &to,
        &["--insecure", "--authfile", &bad, "--manifests-dir", &man],
    );
    assert_exit(&failed, 2, "push with a wrong password");
    let after = fs::read_to_string(Path::new(&man).join("cluster/imageDigestMirrorSet.yaml"))
        .expect("IDMS");
    assert_eq!(
        after, idms,
        "the failed run rewrote imageDigestMirrorSet.yaml"
    );
    let receipt: Value =
        serde_json::from_slice(&fs::read(Path::new(&man).join("receipt.json")).expect("receipt"))
            .expect("JSON");
    assert_receipt_lists_everything(&receipt, &site, &to);
}

// ---------------------------------------------------------------------------------------
// Receipt

#[test]
fn receipt_lists_what_the_registry_holds() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());

    let before = site.receipt(&to, &["--insecure"]);
    assert_ok(&before, "receipt before any push");
    assert_eq!(
        json(&before)["images"],
        serde_json::json!([]),
        "nothing is there yet"
    );

    assert_ok(
        &site.push(&to, &["--insecure", "--manifests-dir", &site.path("m")]),
        "push",
    );
    let after = site.receipt(&to, &["--insecure"]);
    assert_ok(&after, "receipt after the push");
    assert_receipt_lists_everything(&json(&after), &site, &to);
    assert_eq!(reg.catalog().len(), 6, "receipt wrote into the registry");
}
