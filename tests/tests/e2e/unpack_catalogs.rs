//! Operator catalogs on the inside: the packages a pulled catalog holds travel in the
//! bundle (SPEC.md §4.2 `packages`, from the cache's `dev.ferry.catalog-packages`), and
//! `inspect`, `catalog list`, `extract` and `push` (CatalogSource, operatorHub.yaml) use
//! them. The OCI fixture stands for a pull cache: its catalog `my-operator/my-operator-index:v1`
//! gets the annotation a pull writes on a rebuilt catalog.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tests::registry::*;
use tests::*;

const CATALOG_DIGEST: &str =
    "sha256:e12b2ade23232d56f3870bd31732b064540cb4c204dcd4555846be0c44996124";
const PACKAGES: &str = "cluster-logging,elasticsearch-operator";

/// The OCI fixture copied under `dir`, its index.json's descriptors changed by `edit`.
fn oci_fixture_with(dir: &Path, edit: impl Fn(&mut Vec<Value>)) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir");
    let layout = copy_fixture("oci", dir);
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).expect("read")).unwrap();
    edit(index["manifests"].as_array_mut().expect("manifests"));
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).expect("write");
    layout
}

/// The fixture as a pull cache leaves a rebuilt catalog: its descriptor names its packages.
fn pulled_catalog(dir: &Path) -> PathBuf {
    oci_fixture_with(dir, |descriptors| {
        let d = descriptors
            .iter_mut()
            .find(|d| d["digest"] == CATALOG_DIGEST)
            .expect("the catalog's descriptor");
        d["annotations"]["dev.ferry.catalog-packages"] = PACKAGES.into();
    })
}

fn catalog_list(vols: &[&Path], extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![OsStr::new("catalog"), OsStr::new("list")];
    args.extend(vols.iter().map(|v| v.as_os_str()));
    args.extend(extra.iter().map(OsStr::new));
    unpack(args)
}

/// The `catalog_list` events of `catalog list --json`: every stdout line one, nothing else.
fn catalog_events(out: &Output) -> Vec<Value> {
    out.stdout_text()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", out.dump()));
            assert_eq!(v["type"], "catalog_list", "{l}");
            v
        })
        .collect()
}

/// inspect names a pulled catalog's packages (text and JSON), and marks catalogs in JSON;
/// extract --layout oci writes the annotation again (the signed index holds it: extract
/// checks its index against the signed one).
#[test]
fn inspect_and_extract_carry_a_pulled_catalogs_packages() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    let o = pack_ok(&pulled_catalog(tmp.path()), &out, "64KiB", &key, &[]);
    assert_mentions(
        &o,
        &[
            "catalog: my-operator/my-operator-index:v1",
            "2 package(s) recorded",
        ],
        "pack names the catalog and its packages",
    );

    let text = unpack([OsStr::new("inspect"), out.as_os_str()]);
    assert_ok(&text, "inspect");
    assert_mentions(
        &text,
        &["operator catalog, 2 package(s): cluster-logging, elasticsearch-operator"],
        "inspect text",
    );
    let j = unpack([OsStr::new("inspect"), out.as_os_str(), OsStr::new("--json")]);
    assert_ok(&j, "inspect --json");
    let images = json(&j)["images"].as_array().expect("images").clone();
    assert_eq!(images.len(), 6);
    for i in &images {
        if i["digest"] == CATALOG_DIGEST {
            assert_eq!(i["catalog"], true, "{i}");
            assert_eq!(
                i["packages"],
                serde_json::json!(["cluster-logging", "elasticsearch-operator"]),
                "{i}"
            );
        } else {
            assert_eq!(i["catalog"], false, "{i}");
            assert!(i["packages"].is_null(), "{i}");
        }
    }

    let to = tmp.path().join("extracted");
    extract_ok(&out, &key, &to, "oci");
    let index: Value =
        serde_json::from_slice(&fs::read(to.join("index.json")).expect("index.json")).unwrap();
    let d = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["digest"] == CATALOG_DIGEST)
        .expect("the catalog in the extracted layout")
        .clone();
    assert_eq!(
        d["annotations"]["dev.ferry.catalog-packages"], PACKAGES,
        "{d}"
    );
    // And packed again, the bundle names the same packages.
    let again = tmp.path().join("again");
    pack_ok(&to, &again, "64KiB", &key, &[]);
    let (_, m) = standalone_manifest(&again);
    let catalog = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == CATALOG_DIGEST)
        .unwrap()
        .clone();
    assert_eq!(
        catalog["packages"],
        serde_json::json!(["cluster-logging", "elasticsearch-operator"])
    );

    // A catalog from a layout that records no packages: marked, and inspect says where
    // its packages can be read.
    let plain = tmp.path().join("plain");
    pack_ok(&fixture("oci"), &plain, "64KiB", &key, &[]);
    let text = unpack([OsStr::new("inspect"), plain.as_os_str()]);
    assert_mentions(
        &text,
        &["operator catalog (its packages are not recorded: `ferry-unpack catalog list`"],
        "inspect of a catalog without packages",
    );
}

/// `catalog list --recorded` lists the packages the bundle records from any one volume;
/// --package and --catalog that name nothing, and a bundle without a catalog, are usage
/// errors (exit 2) that say what there is.
#[test]
fn catalog_list_names_recorded_packages_and_refuses_what_is_not_there() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    pack_ok(&pulled_catalog(tmp.path()), &out, "64KiB", &key, &[]);
    let vols = volumes(&out);
    assert!(vols.len() > 2, "{vols:?}");
    let trust = key.public.to_str().expect("utf-8");

    // Any one volume: the record is in every volume's manifest.
    let last = vols.last().unwrap();
    let o = catalog_list(&[last], &["--recorded", "--trust", trust]);
    assert_ok(&o, "catalog list --recorded");
    assert_mentions(
        &o,
        &[
            "catalog my-operator/my-operator-index:v1",
            CATALOG_DIGEST,
            "packages: 2 (as the bundle records them)",
            "cluster-logging",
            "elasticsearch-operator",
        ],
        "catalog list --recorded",
    );
    let o = catalog_list(&[last], &["--recorded", "--json"]);
    assert_ok(&o, "catalog list --recorded --json");
    let events = catalog_events(&o);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["image"], "my-operator/my-operator-index:v1");
    assert_eq!(e["digest"], CATALOG_DIGEST);
    assert_eq!(
        e["recorded_packages"],
        serde_json::json!(["cluster-logging", "elasticsearch-operator"])
    );
    assert!(e["kind"].is_null(), "{e}");
    // The recorded names as a listing without channels.
    assert_eq!(
        e["packages"],
        serde_json::json!([
            {"name": "cluster-logging", "defaultChannel": null, "channels": []},
            {"name": "elasticsearch-operator", "defaultChannel": null, "channels": []},
        ]),
        "{e}"
    );
    assert!(
        e["not_read"].as_str().unwrap_or("").contains("--recorded"),
        "{e}"
    );
    // --package narrows the recorded names.
    let o = catalog_list(&[&out], &["--recorded", "--package", "cluster-logging"]);
    assert_ok(&o, "catalog list --recorded --package");
    assert_mentions(&o, &["packages: 1", "cluster-logging"], "--package");
    assert!(
        !o.stdout_text().contains("elasticsearch-operator"),
        "{}",
        o.dump()
    );

    let o = catalog_list(&[&out], &["--recorded", "--package", "nope"]);
    assert_exit(&o, 2, "--package naming no package");
    assert_mentions(
        &o,
        &[
            "--package nope",
            "no catalog listed holds it",
            "cluster-logging, elasticsearch-operator",
        ],
        "--package naming no package",
    );
    let o = catalog_list(&[&out], &["--recorded", "--catalog", "ns/nope:v1"]);
    assert_exit(&o, 2, "--catalog naming no catalog");
    assert_mentions(
        &o,
        &["--catalog ns/nope:v1", "my-operator/my-operator-index:v1"],
        "--catalog naming no catalog",
    );
    // Named by its path, its tag, or its digest.
    for name in [
        "my-operator/my-operator-index",
        "my-operator/my-operator-index:v1",
        CATALOG_DIGEST,
    ] {
        let o = catalog_list(&[&out], &["--recorded", "--catalog", name]);
        assert_ok(&o, &format!("--catalog {name}"));
    }

    // A volume not holding the catalog's manifest: the recorded packages, and on stderr
    // which volume the rest needs.
    let holders = blob_volumes(&vols);
    let manifest_on = &holders[CATALOG_DIGEST.trim_start_matches("sha256:")];
    let elsewhere = (1..=vols.len())
        .find(|n| !manifest_on.contains(n))
        .expect("a volume without the catalog's manifest");
    let o = catalog_list(&[&vols[elsewhere - 1]], &["--trust", trust]);
    assert_ok(&o, "catalog list of a volume without the catalog");
    assert_mentions(
        &o,
        &[
            "packages: 2 (as the bundle records them)",
            "channels and versions not read",
            "which are not given",
        ],
        "catalog list without the catalog's volumes",
    );

    // A catalog that records no packages, on a volume without its manifest: nothing to
    // list for it, exit 1, naming the volume to give.
    let plain = tmp.path().join("vols-plain");
    pack_ok(&fixture("oci"), &plain, "64KiB", &key, &[]);
    let plain_vols = volumes(&plain);
    let on = &blob_volumes(&plain_vols)[CATALOG_DIGEST.trim_start_matches("sha256:")];
    let elsewhere = (1..=plain_vols.len())
        .find(|n| !on.contains(n))
        .expect("a volume without the catalog's manifest");
    let o = catalog_list(&[&plain_vols[elsewhere - 1]], &[]);
    assert_exit(&o, 1, "a catalog neither readable nor recorded");
    let first = on.iter().next().expect("a volume holds it").to_string();
    assert_mentions(
        &o,
        &[
            "the bundle records no packages for it",
            &format!("needs volume(s) {first} which are not given"),
        ],
        "a catalog neither readable nor recorded",
    );

    // A bundle without a catalog.
    let none = oci_fixture_with(&tmp.path().join("none"), |descriptors| {
        descriptors.retain(|d| d["digest"] != CATALOG_DIGEST)
    });
    let out_none = tmp.path().join("vols-none");
    pack_ok(&none, &out_none, "64KiB", &key, &[]);
    let o = catalog_list(&[&out_none], &["--trust", trust]);
    assert_exit(&o, 2, "catalog list of a bundle without a catalog");
    assert_mentions(
        &o,
        &["holds no operator catalog", "ferry-unpack inspect"],
        "catalog list of a bundle without a catalog",
    );
    // Volumes of another key: refused as inspect refuses them.
    let other = keygen(tmp.path(), "other.key");
    let o = catalog_list(
        &[&out],
        &["--recorded", "--trust", other.public.to_str().unwrap()],
    );
    assert_exit(&o, 1, "catalog list with a key that did not sign");
}

/// Two catalogs in one bundle: each is listed (read from the volumes, or by the packages
/// recorded), `--catalog` picks one, and `--package` keeps the catalogs that hold it.
#[test]
fn several_catalogs_are_each_listed_and_catalog_picks_one() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let layout = oci_fixture_with(tmp.path(), |descriptors| {
        let first = descriptors
            .iter_mut()
            .find(|d| d["digest"] == CATALOG_DIGEST)
            .expect("the catalog's descriptor");
        first["annotations"]["dev.ferry.catalog-packages"] = PACKAGES.into();
        let mut second = first.clone();
        second["annotations"] = serde_json::json!({
            "dev.ferry.catalog-packages": "etcd",
            "io.containerd.image.name": "quay.io/team/other-index:v2",
            "org.opencontainers.image.ref.name": "team/other-index:v2",
        });
        descriptors.push(second);
    });
    let out = tmp.path().join("vols");
    pack_ok(&layout, &out, "64KiB", &key, &[]);
    let trust = key.public.to_str().expect("utf-8");

    let o = catalog_list(&[&out], &["--trust", trust, "--recorded", "--json"]);
    assert_ok(&o, "catalog list of two catalogs");
    let events = catalog_events(&o);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["my-operator/my-operator-index:v1", "team/other-index:v2"],
        "{events:?}"
    );
    assert_eq!(events[1]["recorded_packages"], serde_json::json!(["etcd"]));

    for pick in ["team/other-index:v2", "quay.io/team/other-index:v2"] {
        let o = catalog_list(&[&out], &["--recorded", "--json", "--catalog", pick]);
        assert_ok(&o, &format!("--catalog {pick}"));
        let events = catalog_events(&o);
        assert_eq!(events.len(), 1, "{pick}: {events:?}");
        assert_eq!(events[0]["image"], "team/other-index:v2");
    }
    // Read from the volumes, the second (the same image) lists what the image holds.
    let o = catalog_list(
        &[&out],
        &["--trust", trust, "--package", "elasticsearch-operator"],
    );
    assert_ok(&o, "--package held by both");
    assert_eq!(
        o.stdout_text().matches("bundles: 1").count(),
        2,
        "{}",
        o.dump()
    );
    let o = catalog_list(&[&out], &["--recorded", "--package", "etcd"]);
    assert_ok(&o, "--package held by one");
    assert_mentions(
        &o,
        &["catalog team/other-index:v2", "etcd"],
        "--package etcd",
    );
    assert!(
        !o.stdout_text().contains("my-operator-index"),
        "{}",
        o.dump()
    );
}

/// With every volume, `catalog list` reads the catalog out of the volumes: packages,
/// channels, heads and versions, and --package the bundles with their images.
#[test]
fn catalog_list_reads_the_catalog_from_the_volumes() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    pack_ok(&pulled_catalog(tmp.path()), &out, "64KiB", &key, &[]);
    let trust = key.public.to_str().expect("utf-8");
    let o = catalog_list(&[&out], &["--trust", trust, "--json"]);
    assert_ok(&o, "catalog list --json");
    let events = catalog_events(&o);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["kind"], "fbc", "{e}");
    assert!(e["not_read"].is_null(), "{e}");
    assert_eq!(e["image"], "my-operator/my-operator-index:v1", "{e}");
    assert_eq!(e["digest"], CATALOG_DIGEST, "{e}");
    assert_eq!(
        e["recorded_packages"],
        serde_json::json!(["cluster-logging", "elasticsearch-operator"])
    );
    let packages = e["packages"].as_array().expect("packages");
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["elasticsearch-operator"], "{e}");
    let channels = packages[0]["channels"].as_array().expect("channels");
    assert!(!channels.is_empty(), "{e}");
    for c in channels {
        assert!(c["head"].is_string(), "{c}");
    }

    let o = catalog_list(
        &[&out],
        &["--trust", trust, "--package", "elasticsearch-operator"],
    );
    assert_ok(&o, "catalog list --package");
    assert_mentions(
        &o,
        &[
            "packages: 1",
            "  elasticsearch-operator (default channel: 4.6)",
            "    channel 4.6: head elasticsearch-operator.4.6.0-202009131226; versions 4.6.0-202009131226",
            "bundles: 1",
            "registry.redhat.io/openshift4/ose-elasticsearch-operator-bundle@sha256:a51f0ec8",
        ],
        "catalog list --package",
    );
}

fn push(vols: &Path, key: &Key, to: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![
        "push".into(),
        vols.display().to_string(),
        "--trust".into(),
        key.public.display().to_string(),
        "--to".into(),
        to.into(),
        "--insecure".into(),
        "--state".into(),
        dir.join("state").display().to_string(),
        "--manifests-dir".into(),
        dir.join("manifests").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    unpack(&args)
}

/// The single YAML document of a file.
fn yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// A push of a bundle with a catalog writes operatorHub.yaml beside each catalogSource.yaml
/// (the OperatorHub `cluster` object, default sources off); a pulled catalog's
/// CatalogSource is named and displayed for where it goes, with --catalog-publisher's
/// publisher. A bundle without a catalog gets neither file.
#[test]
fn push_writes_operator_hub_beside_the_catalog_source() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    pack_ok(&pulled_catalog(tmp.path()), &out, "64KiB", &key, &[]);
    let reg = Registry::plain();
    let to = format!("{}/inside", reg.host());
    let run = tmp.path().join("run");
    let o = push(&out, &key, &to, &run, &["--catalog-publisher", "ACME IT"]);
    assert_ok(&o, "push");
    let man = run.join("manifests");
    for dir in ["cluster", "cluster-before-4.13"] {
        let hub = yaml(&man.join(dir).join("operatorHub.yaml"));
        assert_eq!(hub["apiVersion"], "config.openshift.io/v1", "{hub}");
        assert_eq!(hub["kind"], "OperatorHub", "{hub}");
        assert_eq!(hub["metadata"]["name"], "cluster", "{hub}");
        assert!(hub["metadata"].get("namespace").is_none(), "{hub}");
        assert_eq!(
            hub["spec"],
            serde_json::json!({"disableAllDefaultSources": true}),
            "{hub}"
        );
        let cs = yaml(&man.join(dir).join("catalogSource.yaml"));
        assert_eq!(cs["metadata"]["name"], "cs-my-operator-index-v1", "{cs}");
        assert_eq!(cs["spec"]["displayName"], "my-operator-index v1", "{cs}");
        assert_eq!(cs["spec"]["publisher"], "ACME IT", "{cs}");
        assert_eq!(
            cs["spec"]["image"],
            format!("{to}/my-operator/my-operator-index:v1"),
            "{cs}"
        );
    }

    // A delta against that push leaves the catalog's layers to its base: `catalog list`
    // names the recorded packages and says the base holds the rest; its push writes
    // operatorHub.yaml again (the bundle still has the catalog).
    let delta = tmp.path().join("delta");
    let receipt = man.join("receipt.json");
    pack_ok(
        &pulled_catalog(&tmp.path().join("again")),
        &delta,
        "64KiB",
        &key,
        &["--base", receipt.to_str().expect("utf-8")],
    );
    let o = catalog_list(&[&delta], &[]);
    assert_ok(&o, "catalog list of a delta");
    assert_mentions(
        &o,
        &[
            "packages: 2 (as the bundle records them)",
            "not in this delta bundle (its base holds it)",
        ],
        "catalog list of a delta",
    );
    let run = tmp.path().join("run-delta");
    assert_ok(&push(&delta, &key, &to, &run, &[]), "push of the delta");
    assert!(run.join("manifests/cluster/operatorHub.yaml").is_file());

    let none = oci_fixture_with(&tmp.path().join("none"), |descriptors| {
        descriptors.retain(|d| d["digest"] != CATALOG_DIGEST)
    });
    let out_none = tmp.path().join("vols-none");
    pack_ok(&none, &out_none, "64KiB", &key, &[]);
    let run = tmp.path().join("run-none");
    assert_ok(
        &push(&out_none, &key, &to, &run, &[]),
        "push without a catalog",
    );
    for dir in ["cluster", "cluster-before-4.13"] {
        let files = names(&run.join("manifests").join(dir));
        assert!(
            !files
                .iter()
                .any(|f| f == "operatorHub.yaml" || f == "catalogSource.yaml"),
            "{dir}: {files:?}"
        );
    }
}
