//! The cluster manifests `ferry-unpack push` writes, judged the way a cluster and `oc apply`
//! judge them: the README's `oc apply -f DIR/` form, run with
//! kubectl against a minimal fake API discovery endpoint; every object checked against the
//! facts the published CRD schemas state, and the Kubernetes name rules; no empty files;
//! CatalogSource names that are unique, bounded and independent of push options;
//! provenance annotations; and partial outputs when an image fails.
//!
//! The schema facts, from:
//! - openshift/api at 2a3d73913b5a7caec4c57d5c3d04f51106ec4da3:
//!   `config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_imagedigestmirrorsets.crd.yaml`,
//!   `…_imagetagmirrorsets.crd.yaml`, and
//!   `operator/v1alpha1/zz_generated.crd-manifests/0000_10_config-operator_01_imagecontentsourcepolicies.crd.yaml`;
//! - operator-framework/api at 3048ccdc52d1858783800c6d40305357aff66c8c:
//!   `crds/operators.coreos.com_catalogsources.yaml` and
//!   `pkg/operators/v1alpha1/catalogsource_types.go` (the sourceType values).
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tests::faults::{partial_files, Proc};
use tests::registry::*;
use tests::*;

// ---------------------------------------------------------------------------------------
// What the CRDs say

/// `^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$`
/// — the pattern of every `mirrors` item of IDMS and ITMS, and the second alternative of
/// `source` (the first, `^\*(?:\.label)+$`, is a wildcard ferry never writes).
fn crd_repository_pattern(s: &str) -> bool {
    let (host, path) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if !name.split('.').all(label)
        || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    // A component: [a-z0-9]+ runs joined by `.`, `_`, `__` or any number of `-`.
    let component = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                return false;
            }
        }
        true
    };
    path.is_none_or(|p| p.split('/').all(component))
}

/// Annotation and label keys: `[prefix/]name`, prefix a DNS-1123 subdomain, name at most 63
/// of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let b = name.as_bytes();
    prefix.is_none_or(dns1123_subdomain)
        && (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// Only these members, or the cluster prunes (or refuses) the rest.
#[track_caller]
fn only_members(v: &Value, allowed: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for k in obj.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "{what}: {k:?} is no field of the schema ({allowed:?})"
        );
    }
}

/// `metadata` of every object ferry writes: a valid name, ferry's label, and where it came
/// from (bundle id, ferry version, creation time).
#[track_caller]
fn check_metadata(doc: &Value, bundle_id: &str, what: &str) {
    let md = &doc["metadata"];
    let annotations = md["annotations"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: no annotations: {doc}"));
    for (k, v) in annotations
        .iter()
        .chain(md["labels"].as_object().into_iter().flatten())
    {
        assert!(qualified_name(k), "{what}: key {k:?}");
        assert!(v.is_string(), "{what}: {k} = {v} is not a string");
    }
    assert_eq!(annotations["ferry/bundle-id"], bundle_id, "{what}");
    assert_eq!(
        annotations["ferry/version"],
        env!("CARGO_PKG_VERSION"),
        "{what}"
    );
    let created = text(&annotations["ferry/created"], "ferry/created");
    let b = created.as_bytes();
    assert!(
        b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z',
        "{what}: ferry/created {created:?} is not RFC 3339 UTC"
    );
}

/// An IDMS or ITMS (`field` `imageDigestMirrors` / `imageTagMirrors`) as the CRD states it:
/// `spec` required; the list `atomic`; each item requires `source`, whose pattern is the
/// repository pattern; `mirrors` a `set` (no duplicates) of strings of that pattern;
/// `mirrorSourcePolicy` one of NeverContactSource, AllowContactingSource.
#[track_caller]
fn check_mirror_set(
    doc: &Value,
    kind: &str,
    field: &str,
    what: &str,
) -> Vec<(String, Vec<String>)> {
    assert_eq!(doc["apiVersion"], "config.openshift.io/v1", "{what}");
    assert_eq!(doc["kind"], kind, "{what}");
    only_members(doc, &["apiVersion", "kind", "metadata", "spec"], what);
    let name = text(&doc["metadata"]["name"], "metadata.name");
    assert!(dns1123_subdomain(name), "{what}: name {name:?}");
    assert!(
        doc["metadata"].get("namespace").is_none(),
        "{what}: scope is Cluster"
    );
    only_members(&doc["spec"], &[field], what);
    let items = doc["spec"][field]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: spec.{field} is not a list"));
    assert!(
        !items.is_empty(),
        "{what}: an object with nothing to mirror"
    );
    let mut out = Vec::new();
    for e in items {
        only_members(e, &["source", "mirrors", "mirrorSourcePolicy"], what);
        let source = text(&e["source"], "source (required)");
        assert!(crd_repository_pattern(source), "{what}: source {source:?}");
        if let Some(p) = e.get("mirrorSourcePolicy") {
            assert!(
                ["NeverContactSource", "AllowContactingSource"].contains(&text(p, "policy")),
                "{what}: mirrorSourcePolicy {p}"
            );
        }
        let mirrors: Vec<String> = e["mirrors"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: mirrors of {source}"))
            .iter()
            .map(|m| text(m, "mirror").to_owned())
            .collect();
        let set: BTreeSet<&String> = mirrors.iter().collect();
        assert_eq!(
            set.len(),
            mirrors.len(),
            "{what}: mirrors is a set: {mirrors:?}"
        );
        for m in &mirrors {
            assert!(crd_repository_pattern(m), "{what}: mirror {m:?}");
        }
        out.push((source.to_owned(), mirrors));
    }
    out
}

/// An ICSP: `spec` required; `repositoryDigestMirrors` items require `source`; `mirrors`
/// a list of strings; no other member (the v1alpha1 schema has no mirrorSourcePolicy).
#[track_caller]
fn check_icsp(doc: &Value, what: &str) -> Vec<(String, Vec<String>)> {
    assert_eq!(
        doc["apiVersion"], "operator.openshift.io/v1alpha1",
        "{what}"
    );
    assert_eq!(doc["kind"], "ImageContentSourcePolicy", "{what}");
    only_members(doc, &["apiVersion", "kind", "metadata", "spec"], what);
    let name = text(&doc["metadata"]["name"], "metadata.name");
    assert!(dns1123_subdomain(name), "{what}: name {name:?}");
    only_members(&doc["spec"], &["repositoryDigestMirrors"], what);
    let items = doc["spec"]["repositoryDigestMirrors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: repositoryDigestMirrors"));
    assert!(
        !items.is_empty(),
        "{what}: an object with nothing to mirror"
    );
    items
        .iter()
        .map(|e| {
            only_members(e, &["source", "mirrors"], what);
            let source = text(&e["source"], "source (required)").to_owned();
            let mirrors = e["mirrors"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: mirrors"))
                .iter()
                .map(|m| text(m, "mirror").to_owned())
                .collect();
            (source, mirrors)
        })
        .collect()
}

/// A CatalogSource: `metadata` and `spec` required, namespaced; `spec.sourceType` required,
/// one of internal, configmap, grpc (`image` is used only with grpc); `image`,
/// `displayName`, `publisher` strings; `secrets` a list of strings. Returns (name, image).
#[track_caller]
fn check_catalog_source(doc: &Value, what: &str) -> (String, String) {
    assert_eq!(doc["apiVersion"], "operators.coreos.com/v1alpha1", "{what}");
    assert_eq!(doc["kind"], "CatalogSource", "{what}");
    let name = text(&doc["metadata"]["name"], "metadata.name");
    assert!(
        dns1035_label(name),
        "{what}: name {name:?} is not a DNS-1035 label"
    );
    let ns = text(&doc["metadata"]["namespace"], "metadata.namespace");
    assert!(dns1123_label(ns), "{what}: namespace {ns:?}");
    let spec = &doc["spec"];
    only_members(
        spec,
        &["sourceType", "image", "displayName", "publisher", "secrets"],
        what,
    );
    assert_eq!(
        spec["sourceType"], "grpc",
        "{what}: image needs sourceType grpc"
    );
    for f in ["displayName", "publisher"] {
        text(&spec[f], f);
    }
    if let Some(s) = spec.get("secrets") {
        for x in s.as_array().unwrap_or_else(|| panic!("{what}: secrets")) {
            text(x, "secret");
        }
    }
    (
        name.to_owned(),
        text(&spec["image"], "spec.image").to_owned(),
    )
}

/// The OperatorHub patch (openshift/api `config/v1/types_operatorhub.go`): the cluster-scoped
/// singleton named `cluster`; `spec` holds only `disableAllDefaultSources: true` (so an
/// apply leaves `spec.sources` as they are).
#[track_caller]
fn check_operator_hub(doc: &Value, what: &str) {
    assert_eq!(doc["apiVersion"], "config.openshift.io/v1", "{what}");
    only_members(doc, &["apiVersion", "kind", "metadata", "spec"], what);
    assert_eq!(doc["metadata"]["name"], "cluster", "{what}: the singleton");
    assert!(
        doc["metadata"].get("namespace").is_none(),
        "{what}: scope is Cluster"
    );
    assert_eq!(
        doc["spec"],
        serde_json::json!({"disableAllDefaultSources": true}),
        "{what}"
    );
}

/// Every YAML document of a file; an empty file (which `oc apply` refuses) fails the test.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}\n{text}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect();
    assert!(
        !docs.is_empty(),
        "{} holds no object:\n{text}",
        path.display()
    );
    docs
}

// ---------------------------------------------------------------------------------------
// kubectl against a fake API discovery endpoint

/// The discovery a client-side `kubectl apply` needs (`/api`, `/apis`, each group version's
/// resources), for the three groups ferry writes to; every other GET is 404, so each object
/// is "created". Serves until the test ends.
fn fake_api_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = first
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_owned();
            let (status, body) = discovery(&path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A resource of the fake API: plural name, kind, namespaced.
type Resource = (&'static str, &'static str, bool);

/// Group, version, resources.
const GROUPS: [(&str, &str, &[Resource]); 3] = [
    (
        "config.openshift.io",
        "v1",
        &[
            ("imagedigestmirrorsets", "ImageDigestMirrorSet", false),
            ("imagetagmirrorsets", "ImageTagMirrorSet", false),
            ("operatorhubs", "OperatorHub", false),
        ],
    ),
    (
        "operator.openshift.io",
        "v1alpha1",
        &[(
            "imagecontentsourcepolicies",
            "ImageContentSourcePolicy",
            false,
        )],
    ),
    (
        "operators.coreos.com",
        "v1alpha1",
        &[("catalogsources", "CatalogSource", true)],
    ),
];

fn discovery(path: &str) -> (&'static str, String) {
    let ok = |v: Value| ("200 OK", v.to_string());
    match path {
        "/version" => {
            return ok(serde_json::json!({"major": "1", "minor": "27", "gitVersion": "v1.27.0"}))
        }
        "/api" => {
            return ok(
                serde_json::json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            )
        }
        "/api/v1" => {
            return ok(
                serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1",
                "resources": [{"name": "namespaces", "singularName": "namespace", "namespaced": false,
                    "kind": "Namespace", "verbs": ["get", "list"]}]}),
            )
        }
        "/apis" => {
            let groups: Vec<Value> = GROUPS
                .iter()
                .map(|(g, v, _)| {
                    let gv = serde_json::json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    serde_json::json!({"name": g, "versions": [gv], "preferredVersion": gv})
                })
                .collect();
            return ok(
                serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            );
        }
        _ => {}
    }
    for (g, v, resources) in GROUPS {
        if path == format!("/apis/{g}/{v}") {
            let list: Vec<Value> = resources
                .iter()
                .map(|(plural, kind, namespaced)| {
                    serde_json::json!({"name": plural, "singularName": plural.trim_end_matches('s'),
                        "namespaced": namespaced, "kind": kind,
                        "verbs": ["get", "list", "create", "update", "patch", "delete"]})
                })
                .collect();
            return ok(
                serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": format!("{g}/{v}"), "resources": list}),
            );
        }
    }
    (
        "404 Not Found",
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"})
        .to_string(),
    )
}

/// `kubectl apply --dry-run=client --validate=false -f DIR` (the README's `oc apply -f DIR/`)
/// against the fake discovery endpoint.
fn kubectl_apply(dir: &Path, port: u16, home: &Path) -> Output {
    let kubeconfig = home.join("kubeconfig");
    fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: \"http://127.0.0.1:{port}\"}}\n  name: fake\ncontexts:\n- context: {{cluster: fake, user: u}}\n  name: fake\ncurrent-context: fake\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .expect("kubeconfig");
    let mut c = Command::new("kubectl");
    c.args(["apply", "--dry-run=client", "--validate=false", "-f"])
        .arg(dir)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", home)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY");
    run_command(&mut c)
}

// ---------------------------------------------------------------------------------------

fn oc_mirror(size: &str) -> Site {
    Site::pack(&fixture("oc-mirror"), size)
}

fn bundle_id(site: &Site) -> String {
    let (_, m) = standalone_manifest(&site.out);
    text(&m["bundle_id"], "bundle_id").to_owned()
}

/// A site packed from `mirror` with extra ferry-pack options (`--origin …`).
fn site_with(mirror: &Path, size: &str, extra: &[&str]) -> Site {
    site_and_pack_output(mirror, size, extra).0
}

/// The same, with what ferry-pack printed.
fn site_and_pack_output(mirror: &Path, size: &str, extra: &[&str]) -> (Site, Output) {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    let packed = pack_ok(mirror, &out, size, &key, extra);
    let sandbox = Sandbox::new(tmp.path());
    let state = tmp.path().join("state");
    let site = Site {
        tmp,
        key,
        out,
        sandbox,
        state,
    };
    (site, packed)
}

/// Pack says which images it takes as catalogs and why — oc's own
/// catalogSource.yaml, or a catalog label — and says so when an oc layout holds none.
#[test]
fn pack_says_which_images_are_catalogs_and_why() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "k");
    let oc = pack_ok(
        &fixture("oc-mirror"),
        &tmp.path().join("a"),
        "1MiB",
        &key,
        &[],
    );
    assert_mentions(
        &oc,
        &[
            "catalog: efk-mirror/my-operator/my-operator-index:v1",
            "named by manifests-my-operator/my-operator-index-1600000600/catalogSource.yaml",
        ],
        "pack of the oc fixture",
    );
    let reg = pack_ok(
        &fixture("registry"),
        &tmp.path().join("b"),
        "1MiB",
        &key,
        &[],
    );
    assert_mentions(
        &reg,
        &[
            "catalog: my-operator/my-operator-index:v1",
            "label operators.operatorframework.io.index.configs.v1",
        ],
        "pack of the registry fixture",
    );
    assert_mentions(
        &reg,
        &["no original reference", "--origin"],
        "pack of a layout without originals",
    );

    // An oc layout whose catalog is gone, and whose catalogSource.yaml names it still.
    let mirror = copy_fixture("oc-mirror", tmp.path());
    fs::remove_dir_all(mirror.join("v2/efk-mirror/my-operator/my-operator-index/blobs"))
        .expect("rm");
    fs::remove_dir_all(mirror.join("v2/efk-mirror/my-operator/my-operator-index/manifests"))
        .expect("rm");
    let none = pack_ok(&mirror, &tmp.path().join("c"), "1MiB", &key, &[]);
    assert_mentions(
        &none,
        &[
            "no operator catalog found",
            "catalogSource.yaml names",
            "not in this mirror",
        ],
        "pack of an oc layout without its catalog",
    );
}

/// `oc apply -f DIR/` of each directory push writes applies (kubectl,
/// client side), and holds only objects for one range of cluster versions; receipt.json
/// and mapping.txt are beside, not inside. Each object is what the CRDs accept.
#[test]
fn each_apply_directory_applies_and_holds_what_the_crds_accept() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());
    let man = site.tmp.path().join("manifests");
    let out = site.push(
        &to,
        &[
            "--insecure",
            "--manifests-dir",
            man.to_str().expect("utf-8"),
            "--catalog-secret",
            "pull",
        ],
    );
    assert_ok(&out, "push");
    let id = bundle_id(&site);
    assert_mentions(
        &out,
        &[&format!("oc apply -f {}/", man.join("cluster").display())],
        "push says what to apply",
    );
    assert_eq!(
        names(&man),
        [
            "cluster",
            "cluster-before-4.13",
            "mapping.txt",
            "receipt.json"
        ]
    );

    let modern = man.join("cluster");
    let older = man.join("cluster-before-4.13");
    let mut kinds = BTreeSet::new();
    let mut idms_sources = BTreeSet::new();
    for f in names(&modern) {
        assert!(
            f.ends_with(".yaml"),
            "cluster/ holds {f}, which kubectl would decode"
        );
        for doc in yaml_docs(&modern.join(&f)) {
            let what = format!("cluster/{f}");
            check_metadata(&doc, &id, &what);
            assert!(doc["metadata"]["annotations"]
                .get("ferry/partial")
                .is_none());
            let kind = text(&doc["kind"], "kind").to_owned();
            match kind.as_str() {
                "ImageDigestMirrorSet" => {
                    for (s, mirrors) in check_mirror_set(&doc, &kind, "imageDigestMirrors", &what) {
                        assert!(mirrors.iter().all(|m| m.starts_with(&to)), "{mirrors:?}");
                        idms_sources.insert(s);
                    }
                }
                "ImageTagMirrorSet" => {
                    check_mirror_set(&doc, &kind, "imageTagMirrors", &what);
                }
                "OperatorHub" => check_operator_hub(&doc, &what),
                "CatalogSource" => {
                    let (name, image) = check_catalog_source(&doc, &what);
                    assert_eq!(name, "cs-my-operator-index-v1", "{doc}");
                    assert_eq!(image, format!("{to}/my-operator/my-operator-index:v1"));
                    assert_eq!(doc["spec"]["secrets"], serde_json::json!(["pull"]));
                }
                other => panic!("{what}: {other} does not belong in cluster/ (4.13 and later)"),
            }
            kinds.insert(kind);
        }
    }
    assert_eq!(
        kinds,
        BTreeSet::from(
            [
                "CatalogSource",
                "ImageDigestMirrorSet",
                "ImageTagMirrorSet",
                "OperatorHub",
            ]
            .map(String::from)
        )
    );
    let mut icsp_sources = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for f in names(&older) {
        for doc in yaml_docs(&older.join(&f)) {
            let what = format!("cluster-before-4.13/{f}");
            check_metadata(&doc, &id, &what);
            let kind = text(&doc["kind"], "kind").to_owned();
            match kind.as_str() {
                "ImageContentSourcePolicy" => {
                    icsp_sources.extend(check_icsp(&doc, &what).into_iter().map(|(s, _)| s));
                }
                "CatalogSource" => {
                    check_catalog_source(&doc, &what);
                }
                "OperatorHub" => check_operator_hub(&doc, &what),
                other => panic!("{what}: {other} cannot be applied before 4.13"),
            }
            kinds.insert(kind);
        }
    }
    assert_eq!(
        kinds,
        BTreeSet::from(
            ["CatalogSource", "ImageContentSourcePolicy", "OperatorHub"].map(String::from)
        )
    );
    assert_eq!(
        icsp_sources, idms_sources,
        "ICSP and IDMS mirror the same sources"
    );
    assert_eq!(idms_sources.len(), 6, "{idms_sources:?}");

    let port = fake_api_server();
    let home = site.tmp.path().join("kube");
    fs::create_dir_all(&home).expect("mkdir");
    for dir in [&modern, &older] {
        let applied = kubectl_apply(dir, port, &home);
        assert_ok(&applied, &format!("kubectl apply -f {}", dir.display()));
        let created = applied
            .stdout_text()
            .lines()
            .filter(|l| l.ends_with("created (dry run)"))
            .count();
        let objects: usize = names(dir)
            .iter()
            .map(|f| yaml_docs(&dir.join(f)).len())
            .sum();
        assert_eq!(created, objects, "every object applies\n{}", applied.dump());
    }
    // The form the README used to give fails, as kubectl decodes receipt.json: the reason
    // the receipt is no longer inside a directory that is applied.
    let top = kubectl_apply(&man, port, &home);
    assert_ne!(top.code(), 0, "{}", top.dump());
    assert_mentions(&top, &["receipt.json"], "kubectl decodes receipt.json");
}

/// A layout that records no original reference gets no empty mirror-set
/// files (push says why), and `ferry-pack --origin` names the original so it gets them.
#[test]
fn no_empty_files_and_origin_gives_mirror_sets_to_layouts_without_originals() {
    let reg = Registry::plain();
    let to = format!("{}/plain", reg.host());
    let site = Site::pack(&fixture("registry"), "64KiB");
    let man = site.tmp.path().join("m");
    let out = site.push(
        &to,
        &[
            "--insecure",
            "--manifests-dir",
            man.to_str().expect("utf-8"),
        ],
    );
    assert_ok(&out, "push of a registry-storage bundle");
    assert_eq!(
        names(&man.join("cluster")),
        ["catalogSource.yaml", "operatorHub.yaml"],
        "no mirror set without original references, and no empty file\n{}",
        out.dump()
    );
    assert_eq!(
        names(&man.join("cluster-before-4.13")),
        ["catalogSource.yaml", "operatorHub.yaml"]
    );
    assert_mentions(
        &out,
        &["no original reference", "registry-storage", "--origin"],
        "push says why there is no mirror set",
    );
    for f in [
        "cluster/catalogSource.yaml",
        "cluster-before-4.13/catalogSource.yaml",
    ] {
        yaml_docs(&man.join(f));
    }

    let site = site_with(
        &fixture("registry"),
        "64KiB",
        &["--origin", "registry.redhat.io"],
    );
    let to = format!("{}/origin", reg.host());
    let man = site.tmp.path().join("m");
    let out = site.push(
        &to,
        &[
            "--insecure",
            "--manifests-dir",
            man.to_str().expect("utf-8"),
        ],
    );
    assert_ok(&out, "push of a bundle packed with --origin");
    let id = bundle_id(&site);
    let idms = yaml_docs(&man.join("cluster/imageDigestMirrorSet.yaml"));
    let mut sources = BTreeSet::new();
    for doc in &idms {
        check_metadata(doc, &id, "IDMS");
        for (s, mirrors) in
            check_mirror_set(doc, "ImageDigestMirrorSet", "imageDigestMirrors", "IDMS")
        {
            let path = s
                .strip_prefix("registry.redhat.io/")
                .unwrap_or_else(|| panic!("{s}"));
            // ORIGIN/<repository path in the layout>, pushed to PREFIX/<that path>.
            assert_eq!(mirrors, [format!("{to}/{path}")], "{s}");
            sources.insert(path.to_owned());
        }
    }
    let expected: BTreeSet<String> = ORIGINAL_IMAGES.iter().map(|i| i.path.to_owned()).collect();
    assert_eq!(sources, expected);
    // The images were tagged: the original references are by tag, so an ITMS too.
    yaml_docs(&man.join("cluster/imageTagMirrorSet.yaml"));
    yaml_docs(&man.join("cluster-before-4.13/imageContentSourcePolicy.yaml"));
}

/// A push of one volume, whose images mostly wait on others,
/// writes no file without an object in it; every file there parses to at least one.
#[test]
fn a_push_that_waits_on_volumes_writes_no_empty_file() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let vols = site.volumes();
    let man = site.tmp.path().join("m");
    let out = site.push_volumes(
        &vols[vols.len() - 1..],
        &format!("{}/w", reg.host()),
        &[
            "--insecure",
            "--manifests-dir",
            man.to_str().expect("utf-8"),
        ],
    );
    assert_exit(&out, 3, "push of the last volume alone");
    for sub in ["cluster", "cluster-before-4.13"] {
        let dir = man.join(sub);
        for f in names(&dir) {
            assert!(file_size(&dir.join(&f)) > 0, "{sub}/{f} is empty");
            yaml_docs(&dir.join(&f));
        }
    }
    assert!(man.join("receipt.json").is_file());
}

/// The oc fixture with two more copies of the operator index at repositories whose last
/// component is the same long name (no original reference: their names come from it).
fn colliding_catalogs(dir: &Path, long: &str) -> PathBuf {
    let mirror = copy_fixture("oc-mirror", dir);
    let index = mirror.join("v2/efk-mirror/my-operator/my-operator-index");
    for team in ["team-a", "team-b"] {
        let to = mirror.join("v2").join(team).join(long);
        fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        copy_tree(&index, &to);
    }
    mirror
}

/// Two catalogs whose repositories end in the same component of
/// 60 characters made push spin forever; now each CatalogSource has a unique valid name,
/// and the names do not change with --max-components.
#[test]
fn long_colliding_catalog_names_end_unique_and_do_not_follow_max_components() {
    let long = "redhat-operator-index-for-a-team-with-a-very-long-repository";
    assert_eq!(long.len(), 60);
    let tmp = tempdir();
    let mirror = colliding_catalogs(tmp.path(), long);
    let site = site_with(&mirror, "1MiB", &[]);
    let reg = Registry::plain();
    let mut names_by_setting = Vec::new();
    for (prefix, max) in [("deep", "0"), ("flat", "2")] {
        let man = site.tmp.path().join(format!("m-{prefix}"));
        let args = site.push_args(
            std::slice::from_ref(&site.out),
            &format!("{}/{prefix}", reg.host()),
            &[
                "--insecure",
                "--max-components",
                max,
                "--manifests-dir",
                man.to_str().expect("utf-8"),
            ],
        );
        let (out, stderr) = Proc::spawn(site.sandbox.command(args)).wait(Duration::from_secs(120));
        let out = out.unwrap_or_else(|| {
            panic!("push --max-components {max} did not end in 120 s:\n{stderr}")
        });
        assert_ok(&out, &format!("push --max-components {max}"));
        let docs = yaml_docs(&man.join("cluster/catalogSource.yaml"));
        assert_eq!(docs.len(), 3, "three catalogs, three CatalogSources");
        let mut names = BTreeSet::new();
        for doc in &docs {
            let (name, _) = check_catalog_source(doc, "catalogSource.yaml");
            assert!(names.insert(name.clone()), "{name} twice");
        }
        assert!(
            names
                .iter()
                .filter(|n| n.starts_with("cs-redhat-operator-index-for-a-team"))
                .count()
                == 2,
            "{names:?}"
        );
        names_by_setting.push(names);
    }
    assert_eq!(
        names_by_setting[0], names_by_setting[1],
        "CatalogSource names changed with --max-components"
    );
}

/// `--manifests-dir FILE` is refused before anything is pushed, with a
/// message that says what is wrong; and item 1: a link planted at a name push writes is
/// refused, not followed, its target untouched.
#[test]
fn a_manifests_dir_that_cannot_take_the_outputs_is_refused_before_the_push() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let file = site.tmp.path().join("a-file");
    fs::write(&file, b"mine").expect("write");
    let out = site.push(
        &format!("{}/x", reg.host()),
        &[
            "--insecure",
            "--manifests-dir",
            file.to_str().expect("utf-8"),
        ],
    );
    assert_exit(&out, 2, "push --manifests-dir FILE");
    assert_mentions(
        &out,
        &["--manifests-dir", "not a directory", "nothing was pushed"],
        "the refusal",
    );
    assert!(
        reg.catalog().is_empty(),
        "pushed before refusing: {:?}",
        reg.catalog()
    );
    assert_eq!(fs::read(&file).expect("read"), b"mine");

    let man = site.tmp.path().join("m");
    fs::create_dir_all(man.join("cluster")).expect("mkdir");
    let victim = site.tmp.path().join("victim");
    fs::write(&victim, b"precious").expect("write");
    for planted in ["receipt.json", "cluster/imageDigestMirrorSet.yaml"] {
        let link = man.join(planted);
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let out = site.push(
            &format!("{}/y", reg.host()),
            &[
                "--insecure",
                "--manifests-dir",
                man.to_str().expect("utf-8"),
            ],
        );
        assert_exit(&out, 2, &format!("push with a link at {planted}"));
        assert_mentions(
            &out,
            &["symbolic link", planted],
            "the refusal names the link",
        );
        assert_eq!(fs::read(&victim).expect("read"), b"precious", "{planted}");
        assert!(reg.catalog().is_empty());
        fs::remove_file(&link).expect("rm");
    }
    // The temporary names push used to write first (`.<file>.partial`), planted as links:
    // never opened now (the temporaries have random names and are created exclusively).
    let old_temporaries = [
        ".receipt.json.partial",
        "cluster/.imageDigestMirrorSet.yaml.partial",
    ];
    for planted in old_temporaries {
        std::os::unix::fs::symlink(&victim, man.join(planted)).expect("symlink");
    }
    let ok = site.push(
        &format!("{}/y", reg.host()),
        &[
            "--insecure",
            "--manifests-dir",
            man.to_str().expect("utf-8"),
        ],
    );
    assert_ok(&ok, "push once the links are gone");
    assert_eq!(
        fs::read(&victim).expect("read"),
        b"precious",
        "written through a planted temporary"
    );
    yaml_docs(&man.join("cluster/imageDigestMirrorSet.yaml"));
    for planted in old_temporaries {
        fs::remove_file(man.join(planted)).expect("rm");
    }
    assert!(partial_files(&man).is_empty(), "{:?}", partial_files(&man));
}

/// A push where one image fails writes the manifests and receipt for the
/// images that went in, marked partial, into partial/, and leaves nothing there once a
/// later push is complete.
#[test]
fn a_push_where_one_image_fails_writes_partial_outputs() {
    let reg = Registry::plain();
    let site = oc_mirror("64KiB");
    let to = format!("{}/efk", reg.host());
    // A file where the registry keeps the fluentd repository: every write to it fails (500).
    let blocked = reg
        .storage()
        .join("docker/registry/v2/repositories/efk/openshift4/ose-logging-fluentd");
    fs::create_dir_all(blocked.parent().expect("parent")).expect("mkdir");
    fs::write(&blocked, b"not a directory").expect("write");
    let man = site.tmp.path().join("m");
    let m = man.to_str().expect("utf-8");
    let out = site.push(
        &to,
        &["--insecure", "--retry-for", "1", "--manifests-dir", m],
    );
    assert_exit(&out, 1, "push with one repository refused");
    assert_mentions(
        &out,
        &["PARTIAL", "partial"],
        "push says the outputs are partial",
    );
    let partial = man.join("partial");
    let id = bundle_id(&site);
    let idms = yaml_docs(&partial.join("cluster/imageDigestMirrorSet.yaml"));
    let mut sources = BTreeSet::new();
    for doc in &idms {
        check_metadata(doc, &id, "partial IDMS");
        assert_eq!(
            doc["metadata"]["annotations"]["ferry/partial"], "true",
            "{doc}"
        );
        sources.extend(
            check_mirror_set(doc, "ImageDigestMirrorSet", "imageDigestMirrors", "IDMS")
                .into_iter()
                .map(|(s, _)| s),
        );
    }
    assert!(
        !sources.iter().any(|s| s.ends_with("ose-logging-fluentd")),
        "{sources:?}"
    );
    assert!(
        fs::read_to_string(partial.join("cluster/imageDigestMirrorSet.yaml"))
            .expect("IDMS")
            .starts_with("# PARTIAL")
    );
    // Exactly the images that went in (images sharing a blob with fluentd fail with it).
    let receipt: Value =
        serde_json::from_slice(&fs::read(partial.join("receipt.json")).expect("receipt"))
            .expect("JSON");
    let went_in: BTreeSet<String> = receipt["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            let s = text(&i["source"], "source");
            s.split(['@'])
                .next()
                .map(|r| {
                    r.rsplit_once(':')
                        .filter(|(_, t)| !t.contains('/'))
                        .map_or(r, |(n, _)| n)
                })
                .unwrap_or(s)
                .to_owned()
        })
        .collect();
    assert!(!went_in.is_empty() && went_in.len() < 6, "{receipt}");
    assert_eq!(sources, went_in, "the partial IDMS covers what went in");
    let pushed = out
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("PUSHED "))
        .count();
    assert_eq!(pushed, went_in.len(), "{}", out.dump());
    assert!(
        !man.join("cluster").exists(),
        "no complete outputs from a failed push"
    );

    fs::remove_file(&blocked).expect("unblock");
    let again = site.push(&to, &["--insecure", "--manifests-dir", m]);
    assert_ok(&again, "push once the repository takes writes");
    assert!(
        !partial.exists(),
        "partial/ outlived a complete push: {:?}",
        names(&partial)
    );
    assert_eq!(
        yaml_docs(&man.join("cluster/imageDigestMirrorSet.yaml")).len(),
        1
    );
}

/// The repository of a reference (`host/path` without `:tag` or `@digest`).
fn repository_of(reference: &str) -> String {
    let r = reference.split('@').next().unwrap_or(reference);
    r.rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or(r, |(n, _)| n)
        .to_owned()
}

/// The IDMS and ITMS sources of a manifests directory's `cluster/`.
fn mirror_sources(man: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = man.join("cluster");
    let sources = |file: &str, kind: &str, field: &str| -> BTreeSet<String> {
        let path = dir.join(file);
        if !path.exists() {
            return BTreeSet::new();
        }
        yaml_docs(&path)
            .iter()
            .flat_map(|d| check_mirror_set(d, kind, field, file))
            .map(|(s, _)| s)
            .collect()
    };
    (
        sources(
            "imageDigestMirrorSet.yaml",
            "ImageDigestMirrorSet",
            "imageDigestMirrors",
        ),
        sources(
            "imageTagMirrorSet.yaml",
            "ImageTagMirrorSet",
            "imageTagMirrors",
        ),
    )
}

/// A delta bundle's push writes IDMS/ITMS for the whole image set, not only for what the
/// delta carries (oc-mirror #597: a delta's ICSP listed only the new images, and applying
/// it dropped the mirrors of the others). Set A is pushed; set A + one image is packed
/// against A's receipt and pushed: its mirror sets name every image of A + 1.
#[test]
fn a_delta_bundles_mirror_sets_cover_the_whole_set() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    const FLUENTD: &str = "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e";
    let layout = copy_fixture("oci", t.path());
    let index_path = layout.join("index.json");
    let full_index = fs::read(&index_path).expect("index.json");
    let mut index: Value = serde_json::from_slice(&full_index).expect("JSON");
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .retain(|d| d["digest"] != FLUENTD);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).expect("write");
    let origin = ["--origin", "registry.example.com"];
    let set_a = t.path().join("a");
    pack_ok(&layout, &set_a, "1MiB", &key, &origin);

    let reg = Registry::plain();
    let to = format!("{}/efk", reg.host());
    let push = |vols: &Path, run: &str| {
        let man = t.path().join(run);
        let o = unpack([
            OsStr::new("push"),
            vols.as_os_str(),
            OsStr::new("--trust"),
            key.public.as_os_str(),
            OsStr::new("--to"),
            OsStr::new(&to),
            OsStr::new("--insecure"),
            OsStr::new("--state"),
            t.path().join(format!("{run}-state")).as_os_str(),
            OsStr::new("--manifests-dir"),
            man.as_os_str(),
        ]);
        assert_ok(&o, &format!("push {run}"));
        man
    };
    let man_a = push(&set_a, "m-a");
    let (idms_a, _) = mirror_sources(&man_a);

    // Set A + fluentd, against A's receipt.
    fs::write(&index_path, &full_index).expect("write");
    let delta = t.path().join("delta");
    let receipt = man_a.join("receipt.json");
    let mut extra = origin.to_vec();
    extra.extend(["--base", receipt.to_str().expect("utf-8")]);
    let o = pack_ok(&layout, &delta, "1MiB", &key, &extra);
    assert_mentions(&o, &["left to the base"], "delta pack");
    let (_, m) = standalone_manifest(&delta);
    let all: BTreeSet<String> = m["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| repository_of(text(&i["source"], "source")))
        .collect();
    let by_tag: BTreeSet<String> = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| text(&i["source"], "source"))
        .filter(|s| !s.contains('@'))
        .map(repository_of)
        .collect();
    assert_eq!(all.len(), 6, "{all:?}");
    // What the delta carries beyond manifests: fluentd's layers and configs only.
    let carried_layers = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["encoding"] != "base" && b.get("media_type").is_none())
        .count();
    assert!(carried_layers > 0, "the delta carries fluentd's blobs");

    let man_delta = push(&delta, "m-delta");
    let (idms, itms) = mirror_sources(&man_delta);
    assert_eq!(idms, all, "the delta's IDMS names every image of the set");
    assert_eq!(
        itms, by_tag,
        "the delta's ITMS names every image pulled by tag"
    );
    assert!(
        idms.is_superset(&idms_a) && idms.len() == idms_a.len() + 1,
        "A: {idms_a:?}, A+1: {idms:?}"
    );
    let mapping = fs::read_to_string(man_delta.join("mapping.txt")).expect("mapping.txt");
    assert_eq!(mapping.lines().count(), 6, "{mapping}");
}
