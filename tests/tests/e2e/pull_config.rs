//! What the user gives and what the pull says: bad image sets (file, line, column and
//! field named; exit 2; nothing written), bad options, `--plan` (manifests only), the
//! `--json` events of docs/events.md, `-q`.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;

use serde_json::Value;
use tests::registry::*;
use tests::source::*;
use tests::*;

use crate::pull::{assert_members, events, image_blobs, of_type, text, Connected};

const HEAD: &str = "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n";

/// Every way an image set is refused: exit 2, the message names the file, the line and
/// column, and the field; nothing is written (not even the cache directory).
#[test]
fn bad_image_sets_are_refused_naming_file_line_column_and_field() {
    let tmp = tempdir();
    let sandbox = Sandbox::new(tmp.path());
    let conf = write_registries_conf(
        &tmp.path().join("registries.conf"),
        &[("registry.redhat.io", "127.0.0.1:9")],
    );
    let one = "mirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi9/ubi:9.4\n";
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "unknown field",
            format!("{HEAD}mirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi9/ubi:9.4\n    colour: red\n"),
            &[":6:", "colour"],
        ),
        (
            "wrong kind",
            format!("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfig\n{one}"),
            &[":2:", "kind", "ImageSetConfig"],
        ),
        (
            "wrong apiVersion",
            format!("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\n{one}"),
            &[":1:", "apiVersion", "v1alpha2"],
        ),
        (
            "a value of the wrong type",
            format!("{HEAD}mirror:\n  additionalImages: registry.redhat.io/ubi9/ubi:9.4\n"),
            &[":4:", "additionalImages"],
        ),
        (
            "malformed reference",
            format!("{HEAD}mirror:\n  additionalImages:\n  - name: registry.redhat.io/UBI9/ubi:9.4\n"),
            &[":5:", "name", "UBI9"],
        ),
        (
            // Operator catalogs are pulled (issue 12), but only from a registry.
            "a catalog from an OCI layout",
            format!("{HEAD}{one}  operators:\n  - catalog: oci:///srv/catalog-layout\n"),
            &[":7:", "catalog", "from a registry only"],
        ),
        (
            "platform",
            format!("{HEAD}{one}  platform:\n    channels:\n    - name: stable-4.14\n"),
            &[":6:", "platform"],
        ),
        (
            "helm",
            format!("{HEAD}{one}  helm:\n    repositories:\n    - name: podinfo\n      url: https://stefanprodan.github.io/podinfo\n"),
            &[":6:", "helm"],
        ),
        (
            "empty additionalImages",
            format!("{HEAD}mirror:\n  additionalImages: []\n"),
            // Named at the empty list itself (line 4), not at `mirror:`.
            &[":4:3:", "mirror.additionalImages: no images to pull"],
        ),
        (
            "every image blocked",
            format!("{HEAD}{one}  blockedImages:\n  - name: ubi9/ubi\n"),
            &[":6:", "blockedImages"],
        ),
    ];
    for (what, yaml, needles) in cases {
        let set = tmp.path().join(format!("{}.yaml", what.replace(' ', "-")));
        fs::write(&set, &yaml).expect("write the image set");
        let cache = tmp.path().join(format!("cache-{}", what.replace(' ', "-")));
        let out = run_command(&mut sandbox.pack_command([
            OsStr::new("pull"),
            OsStr::new("--config"),
            set.as_os_str(),
            OsStr::new("--cache"),
            cache.as_os_str(),
            OsStr::new("--registries-conf"),
            conf.as_os_str(),
        ]));
        assert_exit(&out, 2, what);
        let file = set.display().to_string();
        let err = out.stderr_text();
        assert!(
            err.contains(&file),
            "{what}: the file is named\n{yaml}\n{}",
            out.dump()
        );
        for n in needles {
            let n = if n.starts_with(':') {
                format!("{file}{n}")
            } else {
                (*n).to_owned()
            };
            assert!(
                err.contains(&n),
                "{what}: the message does not say {n:?}\n{yaml}\n{}",
                out.dump()
            );
        }
        assert!(
            !cache.exists(),
            "{what}: the cache was created for a refused set"
        );
    }
}

/// Bad options of the pull: a `--platform` that is not OS/ARCH[/VARIANT], `--platform` to
/// a mirror-directory pack (it would mean nothing there), a registries.conf that does not
/// parse: exit 2, each named.
#[test]
fn bad_pull_options_are_refused() {
    let tmp = tempdir();
    let sandbox = Sandbox::new(tmp.path());
    let set =
        ImageSet::of(&["registry.redhat.io/ubi9/ubi:9.4"]).write(&tmp.path().join("set.yaml"));
    let conf = write_registries_conf(
        &tmp.path().join("registries.conf"),
        &[("registry.redhat.io", "127.0.0.1:9")],
    );
    let cache = tmp.path().join("cache");
    let pull = |extra: &[&OsStr]| {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("pull"),
            OsStr::new("--config"),
            set.as_os_str(),
            OsStr::new("--cache"),
            cache.as_os_str(),
        ];
        args.extend_from_slice(extra);
        run_command(&mut sandbox.pack_command(args))
    };
    for bad in [
        "linux",
        "linux/",
        "/amd64",
        "linux/amd64/v8/x",
        "Linux AMD64",
    ] {
        let out = pull(&[
            OsStr::new("--registries-conf"),
            conf.as_os_str(),
            OsStr::new("--platform"),
            OsStr::new(bad),
        ]);
        assert_exit(&out, 2, &format!("--platform {bad}"));
        assert_mentions(&out, &["--platform", bad], "the bad value is named");
    }

    let missing = tmp.path().join("no-such-auth.json");
    let junk = tmp.path().join("a-file");
    fs::write(&junk, "not a directory").expect("write");
    let bad_values: [(&str, Vec<&OsStr>, &[&str]); 3] = [
        (
            "--jobs 0",
            vec![OsStr::new("--jobs"), OsStr::new("0")],
            &["--jobs"],
        ),
        (
            "--retry-for soon",
            vec![OsStr::new("--retry-for"), OsStr::new("soon")],
            &["--retry-for", "soon"],
        ),
        (
            "--authfile missing",
            vec![OsStr::new("--authfile"), missing.as_os_str()],
            &["--authfile", "no-such-auth.json"],
        ),
    ];
    for (what, extra, needles) in bad_values {
        let mut args = vec![OsStr::new("--registries-conf"), conf.as_os_str()];
        args.extend(extra);
        let out = pull(&args);
        assert_exit(&out, 2, what);
        assert_mentions(&out, needles, what);
    }
    let out = run_command(&mut sandbox.pack_command([
        OsStr::new("pull"),
        OsStr::new("--config"),
        set.as_os_str(),
        OsStr::new("--cache"),
        junk.as_os_str(),
        OsStr::new("--registries-conf"),
        conf.as_os_str(),
    ]));
    assert_exit(&out, 2, "--cache names a file");
    assert_mentions(&out, &[junk.to_str().expect("utf-8")], "the cache is named");
    assert_eq!(
        fs::read_to_string(&junk).ok().as_deref(),
        Some("not a directory")
    );
    let prune = run_command(&mut sandbox.pack_command([
        OsStr::new("cache"),
        OsStr::new("prune"),
        OsStr::new("--config"),
        set.as_os_str(),
        OsStr::new("--cache"),
        tmp.path().as_os_str(),
    ]));
    assert_exit(&prune, 2, "cache prune of a directory that is not a cache");
    assert_mentions(&prune, &["not a ferry pull cache"], "prune refuses");

    let broken = tmp.path().join("broken.conf");
    fs::write(
        &broken,
        "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \n",
    )
    .expect("write");
    let out = pull(&[OsStr::new("--registries-conf"), broken.as_os_str()]);
    assert_exit(&out, 2, "a registries.conf that does not parse");
    assert_mentions(
        &out,
        &[broken.to_str().expect("utf-8")],
        "the file is named",
    );

    let key = keygen(tmp.path(), "k");
    let out = pack_with(
        &fixture("oci"),
        &tmp.path().join("vols"),
        "64MiB",
        &key.private,
        &["--platform", "linux/amd64"],
    );
    assert_exit(&out, 2, "--platform to a mirror directory");
    assert_mentions(
        &out,
        &["--platform", "--config"],
        "says it applies to pulling",
    );
    assert!(!tmp.path().join("vols").exists() || volumes(&tmp.path().join("vols")).is_empty());
}

/// `catalog list`'s command line: a reference that is not one, or has neither tag nor
/// digest, `--allow-missing` (it applies to pulling a set), a bad `--platform`: exit 2,
/// each named. A catalog that cannot be pulled is exit 1 naming it, and the temporary
/// cache (no `--cache`) is removed.
#[test]
fn catalog_list_refuses_bad_arguments_and_removes_its_temporary_cache() {
    let tmp = tempdir();
    let sandbox = Sandbox::new(tmp.path());
    let conf = write_registries_conf(
        &tmp.path().join("registries.conf"),
        &[("registry.redhat.io", "127.0.0.1:9")],
    );
    let scratch = tmp.path().join("tmpdir");
    fs::create_dir_all(&scratch).expect("mkdir");
    let list = |args: &[&str]| {
        let mut c = sandbox.pack_command(
            ["catalog", "list"]
                .iter()
                .map(OsStr::new)
                .chain(args.iter().map(OsStr::new))
                .chain([OsStr::new("--registries-conf"), conf.as_os_str()]),
        );
        c.env("TMPDIR", &scratch);
        run_command(&mut c)
    };
    let index = "registry.redhat.io/redhat/redhat-operator-index:v4.16";
    let cases: [(&str, Vec<&str>, &[&str]); 4] = [
        (
            "a malformed reference",
            vec!["registry.redhat.io/Redhat/index:v4.16"],
            &["Redhat/index", "not an image reference"],
        ),
        (
            "neither tag nor digest",
            vec!["registry.redhat.io/redhat/redhat-operator-index"],
            &["neither a tag nor a digest"],
        ),
        (
            "--allow-missing",
            vec![index, "--allow-missing"],
            &["--allow-missing", "not to catalog list"],
        ),
        (
            "a bad --platform",
            vec![index, "--platform", "linux"],
            &["--platform", "linux"],
        ),
    ];
    for (what, args, needles) in cases {
        let out = list(&args);
        assert_exit(&out, 2, what);
        assert_mentions(&out, needles, what);
    }
    let out = run_command(&mut sandbox.pack_command(["catalog", "list"]));
    assert_exit(&out, 2, "no reference");
    // Nothing listens on 127.0.0.1:9: the catalog cannot be pulled (exit 1, named).
    let out = list(&[index, "--retry-for", "1s"]);
    assert_exit(&out, 1, "an unreachable catalog");
    assert_mentions(
        &out,
        &[index, "127.0.0.1:9"],
        "the catalog and registry are named",
    );
    let left: Vec<_> = fs::read_dir(&scratch).expect("read TMPDIR").collect();
    assert!(left.is_empty(), "the temporary cache is left: {left:?}");
}

/// `--plan` resolves manifests only: each image with the digest its tag resolved to, what
/// is cached and what is to download, and no config or layer in the cache. `--json`
/// prints the documented events (docs/events.md): the plan; then on a real pull each
/// image resolved and pulled, and the summary.
#[test]
fn plan_fetches_manifests_only_and_json_carries_the_documented_members() {
    let source = SourceRegistry::start();
    let picked: Vec<SourceImage> = [
        "openshift4/ose-logging-fluentd:v4.6",
        "openshift4/ose-elasticsearch-proxy:v4.6",
        "openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
    ]
    .iter()
    .map(|s| source.image(s).clone())
    .collect();
    let refs: Vec<&str> = picked.iter().map(|i| i.reference.as_str()).collect();
    let c = Connected::new(&source, &ImageSet::of(&refs));
    let mut manifests = BTreeSet::new();
    let mut others = BTreeSet::new();
    for i in &picked {
        let (m, o) = image_blobs(&source.registry, i, |_| true);
        manifests.extend(m);
        others.extend(o);
    }

    let plan = c.pull(&["--plan"]);
    assert_ok(&plan, "pull --plan");
    let stdout = plan.stdout_text();
    for i in &picked {
        let line = format!("{} -> {}", i.reference, i.digest);
        assert!(
            stdout.contains(&line),
            "the plan names {line}\n{}",
            plan.dump()
        );
    }
    assert_mentions(
        &plan,
        &["0 cached", "to download", "free"],
        "cached and to download",
    );
    assert_eq!(
        c.blobs(),
        manifests,
        "--plan wrote the manifests, no config or layer"
    );

    let plan_json = c.pull(&["--plan", "--json"]);
    assert_ok(&plan_json, "pull --plan --json");
    let ev = events(&plan_json);
    let plans = of_type(&ev, "plan");
    assert_eq!(plans.len(), 1, "{}", plan_json.dump());
    let p = plans[0];
    assert_members(
        p,
        &[
            "cache",
            "images",
            "failed",
            "blobs_total",
            "bytes_total",
            "blobs_cached",
            "bytes_cached",
            "bytes_partial",
            "bytes_to_fetch",
            "cache_free",
            "fits",
        ],
    );
    assert_eq!(p["blobs_total"], others.len());
    assert_eq!(p["blobs_cached"], 0);
    assert_eq!(p["fits"], true);
    assert_eq!(p["failed"], serde_json::json!([]));
    let image_members = [
        "source",
        "digest",
        "media_type",
        "name",
        "endpoint",
        "resolved_at",
        "platforms_available",
        "platforms_kept",
        "blobs",
        "bytes",
    ];
    let images = p["images"].as_array().expect("images");
    assert_eq!(images.len(), picked.len());
    for (img, want) in images.iter().zip(&picked) {
        assert_members(img, &image_members);
        assert_eq!(img["source"], want.reference.as_str());
        assert_eq!(img["digest"], want.digest.as_str());
        assert_eq!(img["endpoint"], source.registry.host());
        assert_eq!(img["resolved_at"].is_string(), want.by_tag(), "{img}");
        assert_eq!(
            img["platforms_available"].as_array().map_or(0, Vec::len),
            want.children.len(),
            "{img}"
        );
    }
    assert!(of_type(&ev, "summary").is_empty(), "no summary with --plan");
    assert_eq!(c.blobs(), manifests, "--plan --json wrote no layer either");

    let pulled = c.pull(&["--json"]);
    assert_ok(&pulled, "pull --json");
    let ev = events(&pulled);
    let resolved = of_type(&ev, "image_resolved");
    assert_eq!(resolved.len(), picked.len(), "{}", pulled.dump());
    for r in &resolved {
        assert_members(r, &image_members);
    }
    let done = of_type(&ev, "image_pulled");
    assert_eq!(done.len(), picked.len(), "{}", pulled.dump());
    let done: BTreeMap<String, String> = done
        .iter()
        .map(|e| {
            assert_members(e, &["source", "digest", "name"]);
            (text(&e["source"]).to_owned(), text(&e["digest"]).to_owned())
        })
        .collect();
    for i in &picked {
        assert_eq!(done.get(&i.reference), Some(&i.digest), "{}", pulled.dump());
    }
    let summary = of_type(&ev, "summary");
    assert_eq!(summary.len(), 1);
    let s = summary[0];
    assert_members(
        s,
        &[
            "cache",
            "images",
            "pulled",
            "failed",
            "blobs_fetched",
            "bytes_fetched",
            "seconds",
        ],
    );
    assert_eq!(s["images"], picked.len());
    assert_eq!(s["pulled"], picked.len());
    assert_eq!(s["failed"], serde_json::json!([]));
    assert_eq!(s["blobs_fetched"], others.len());
    assert_eq!(ev.last().map(|e| &e["type"]), Some(&Value::from("summary")));
    let all: BTreeSet<String> = manifests.union(&others).cloned().collect();
    assert_eq!(c.blobs(), all);

    let again = c.pull(&["--plan", "--json"]);
    let p = of_type(&events(&again), "plan")[0].clone();
    assert_eq!(p["bytes_to_fetch"], 0);
    assert_eq!(p["blobs_cached"], p["blobs_total"]);
}

/// `ferry-pack --config … --json` (docs/events.md): the pull's events, then the pack's; two
/// `summary` events, the pull's first (it has `pulled`), the pack's last (`bundle_id`).
#[test]
fn pack_with_config_json_prints_the_pulls_events_then_the_packs() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    let vols = c.path("vols");
    let out = c.pack(&vols, &["--json"]);
    assert_ok(&out, "pack --config --json");
    let ev = events(&out);
    let kinds: Vec<&str> = ev.iter().map(|e| text(&e["type"])).collect();
    let summaries: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "summary")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(summaries.len(), 2, "{kinds:?}");
    let (pull_summary, pack_summary) = (&ev[summaries[0]], &ev[summaries[1]]);
    assert_eq!(
        summaries[1],
        ev.len() - 1,
        "the pack's summary is last: {kinds:?}"
    );
    assert_eq!(pull_summary["pulled"], 1, "{pull_summary}");
    assert!(pack_summary["bundle_id"].is_string(), "{pack_summary}");
    let first_volume = kinds.iter().position(|k| *k == "volume_written");
    let last_pull = kinds
        .iter()
        .rposition(|k| ["image_resolved", "image_pulled"].contains(k));
    assert!(
        matches!((first_volume, last_pull), (Some(v), Some(p)) if p < summaries[0] && summaries[0] < v),
        "the pull's events come before the pack's: {kinds:?}"
    );
}

/// `-q`: a pull that works prints nothing; one that fails prints only the error.
#[test]
fn quiet_pull_prints_only_failures() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    let out = c.pull(&["-q"]);
    assert_ok(&out, "pull -q");
    assert_eq!(
        out.text().trim(),
        "",
        "pull -q printed something\n{}",
        out.dump()
    );
    let missing = "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v9.9";
    let bad = Connected::new(&source, &ImageSet::of(&[missing]));
    let out = bad.pull(&["-q"]);
    assert_exit(&out, 1, "pull -q of a missing image");
    assert!(out.stdout_text().is_empty(), "{}", out.dump());
    assert_mentions(&out, &[missing, "error"], "the failure is said");
}

/// `ferry-pack --config … --plan`: with blobs still to download, the pull's plan and what
/// to run first (no layer fetched, nothing in --out); with the cache full, the bundle's
/// plan too (volumes), and still nothing written.
#[test]
fn pack_with_config_plan_writes_nothing() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    let vols = c.path("vols");
    let out = c.pack(&vols, &["--plan"]);
    assert_ok(&out, "pack --config --plan, the cache empty");
    assert_mentions(
        &out,
        &[&image.digest, "to download", "ferry-pack pull --config"],
        "the pull's plan, and what to run first",
    );
    let (manifests, _) = image_blobs(&source.registry, &image, |_| true);
    assert_eq!(
        crate::pull::cache_blobs(&c.cache),
        manifests,
        "no layer fetched"
    );
    assert!(volumes(&vols).is_empty());

    assert_ok(&c.pull(&[]), "pull");
    let out = c.pack(&vols, &["--plan"]);
    assert_ok(&out, "pack --config --plan, the cache full");
    assert_mentions(&out, &["volume"], "the bundle's plan");
    assert!(volumes(&vols).is_empty(), "--plan wrote volumes");
    assert!(
        !vols.exists() || names(&vols).is_empty(),
        "--plan wrote into --out: {:?}",
        names(&vols)
    );
}
