use super::fields::{filter_field, sqlite_field};
use super::missing::drop_bundles;
use super::records::{record_path, write_record};
use super::*;
use catalog::sqlite::SqliteError;
use catalog::Catalog;
use std::collections::BTreeSet;

/// A small file-based catalog: package `etcd` with channels `stable` (a → b → c, c the
/// head) and `fast` (c only), default `stable`; package `logging` with channel `stable`
/// (l1 only); a deprecation of bundle etcd.b.
fn catalog() -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let bundle = |pkg: &str, name: &str, version: &str, image: &str, related: &str| {
        format!(
            r#"{{"schema":"olm.bundle","name":"{name}","package":"{pkg}","image":"{image}","relatedImages":[{{"name":"r","image":"{related}"}}],"properties":[{{"type":"olm.package","value":{{"packageName":"{pkg}","version":"{version}"}}}}]}}"#
        )
    };
    let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let etcd = [
        r#"{"schema":"olm.package","name":"etcd","defaultChannel":"stable"}"#.to_owned(),
        r#"{"schema":"olm.channel","name":"stable","package":"etcd","entries":[{"name":"etcd.a"},{"name":"etcd.b","replaces":"etcd.a"},{"name":"etcd.c","replaces":"etcd.b"}]}"#.to_owned(),
        r#"{"schema":"olm.channel","name":"fast","package":"etcd","entries":[{"name":"etcd.c"}]}"#.to_owned(),
        bundle("etcd", "etcd.a", "1.0.0", &format!("quay.io/e/bundle@{}", d('a')), &format!("quay.io/e/op@{}", d('1'))),
        bundle("etcd", "etcd.b", "1.1.0", &format!("quay.io/e/bundle@{}", d('b')), &format!("quay.io/e/op@{}", d('2'))),
        bundle("etcd", "etcd.c", "1.2.0", &format!("quay.io/e/bundle@{}", d('c')), "quay.io/e/op:v1.2"),
        r#"{"schema":"olm.deprecations","package":"etcd","entries":[{"reference":{"schema":"olm.bundle","name":"etcd.b"},"message":"old"}]}"#.to_owned(),
    ];
    let logging = [
        r#"{"schema":"olm.package","name":"logging","defaultChannel":"stable"}"#.to_owned(),
        r#"{"schema":"olm.channel","name":"stable","package":"logging","entries":[{"name":"l1"}]}"#
            .to_owned(),
        bundle(
            "logging",
            "l1",
            "5.0.0",
            &format!("quay.io/l/bundle@{}", d('d')),
            &format!("quay.io/l/op@{}", d('3')),
        ),
    ];
    for (name, objects) in [("etcd", &etcd[..]), ("logging", &logging[..])] {
        let p = dir.path().join("configs").join(name);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("catalog.json"), objects.join("\n")).unwrap();
    }
    catalog::read_dir(&dir.path().join("configs"), catalog::ReadOptions::default()).unwrap()
}

fn id(package: &str, bundle: &str) -> BundleId {
    BundleId {
        package: package.into(),
        bundle: bundle.into(),
    }
}

fn entries(c: &Catalog, package: &str, channel: &str) -> Vec<String> {
    c.packages[package].channels[channel]
        .entries
        .iter()
        .map(|e| e.name.clone())
        .collect()
}

#[test]
fn dropping_a_tail_bundle_keeps_the_channel_valid() {
    let mut c = catalog();
    let emptied = drop_bundles(&mut c, &BTreeSet::from([id("etcd", "etcd.a")])).unwrap();
    assert!(emptied.is_empty());
    assert_eq!(entries(&c, "etcd", "stable"), ["etcd.b", "etcd.c"]);
    assert!(!c.packages["etcd"].bundles.contains_key("etcd.a"));
    assert!(catalog::validate(&c).is_empty());
}

#[test]
fn dropping_the_only_bundle_of_a_channel_drops_the_channel_and_moves_the_default() {
    let mut c = catalog();
    // etcd.c is the head of both channels; `fast` holds nothing else.
    let emptied = drop_bundles(&mut c, &BTreeSet::from([id("etcd", "etcd.c")])).unwrap();
    assert!(emptied.is_empty());
    assert_eq!(
        c.packages["etcd"].channels.keys().collect::<Vec<_>>(),
        ["stable"]
    );
    assert_eq!(entries(&c, "etcd", "stable"), ["etcd.a", "etcd.b"]);
    assert_eq!(
        c.packages["etcd"].package.default_channel.as_deref(),
        Some("stable")
    );
    // The deprecation of a kept bundle is kept.
    assert!(c.packages["etcd"].deprecation.is_some());
    // A bundle deprecated and dropped takes its deprecation entry with it.
    drop_bundles(&mut c, &BTreeSet::from([id("etcd", "etcd.b")])).unwrap();
    assert!(c.packages["etcd"].deprecation.is_none());
}

#[test]
fn a_package_that_loses_everything_is_dropped_and_named() {
    let mut c = catalog();
    let emptied = drop_bundles(&mut c, &BTreeSet::from([id("logging", "l1")])).unwrap();
    assert_eq!(emptied, ["logging"]);
    assert_eq!(c.package_names(), ["etcd"]);
}

#[test]
fn a_lost_default_with_several_channels_left_is_an_error_saying_what_to_do() {
    let mut c = catalog();
    // Default `fast` (which holds etcd.c only); drop etcd.c: `stable` is left alone and
    // becomes the default. With a third channel, the choice is the user's.
    c.packages.get_mut("etcd").unwrap().package.default_channel = Some("fast".into());
    let mut extra = c.packages["etcd"].channels["stable"].clone();
    extra.name = "extra".into();
    c.packages
        .get_mut("etcd")
        .unwrap()
        .channels
        .insert("extra".into(), extra);
    let e = drop_bundles(&mut c, &BTreeSet::from([id("etcd", "etcd.c")])).unwrap_err();
    assert!(
        e.contains("package \"etcd\" loses its default channel \"fast\"")
            && e.contains("set defaultChannel"),
        "{e}"
    );
}

#[test]
fn allow_missing_drops_the_bundles_that_need_a_missing_image() {
    let c = catalog();
    let filter = Filter::default();
    let mut filtered = catalog::filter(c, &filter, FilterOptions::default()).unwrap();
    // Heads only: etcd.c (stable and fast), l1.
    let images = std::mem::take(&mut filtered.images);
    let op = images
        .iter()
        .find(|u| u.image == "quay.io/e/op:v1.2")
        .unwrap();
    assert!(!op.by_digest);
    assert_eq!(op.needed_by, [id("etcd", "etcd.c")]);
    let failure = Failure {
        reference: "quay.io/e/op:v1.2".into(),
        registry: "quay.io".into(),
        error: "no manifest for tag v1.2 (404)".into(),
    };
    let missing = vec![(op, failure)];
    let (dropped, packages) = drop_for_missing(&mut filtered, Kind::Fbc, &missing).unwrap();
    assert_eq!(
        dropped,
        [DroppedBundle {
            package: "etcd".into(),
            bundle: "etcd.c".into(),
            missing: vec![(
                "quay.io/e/op:v1.2".into(),
                "no manifest for tag v1.2 (404)".into()
            )],
        }]
    );
    // etcd had only its heads: it loses everything.
    assert_eq!(packages, ["etcd"]);
    assert_eq!(filtered.catalog.package_names(), ["logging"]);
    assert!(!filtered.unchanged);

    // SQLite: pruned by package only, so the package goes whole.
    let mut filtered =
        catalog::filter(catalog(), &Filter::default(), FilterOptions::default()).unwrap();
    let images = std::mem::take(&mut filtered.images);
    let l = images
        .iter()
        .find(|u| u.needed_by == [id("logging", "l1")])
        .unwrap();
    let f = Failure {
        reference: l.image.clone(),
        registry: "quay.io".into(),
        error: "404".into(),
    };
    let (_, packages) = drop_for_missing(&mut filtered, Kind::Sqlite, &[(l, f)]).unwrap();
    assert_eq!(packages, ["logging"]);
    assert_eq!(filtered.catalog.package_names(), ["etcd"]);
}

#[test]
fn needed_images_go_to_their_source_path_by_digest_or_by_tag() {
    let hex = "a".repeat(64);
    let by_digest = needed_entry(&format!("quay.io/e/op@sha256:{hex}"), &[], 3).unwrap();
    assert_eq!(
        crate::resolve::destination(&by_digest),
        ("e/op".to_owned(), None)
    );
    assert_eq!(by_digest.index, 3);
    // A tag and a digest: pulled and named by the digest alone.
    let both = needed_entry(&format!("quay.io/e/op:v1@sha256:{hex}"), &[], 0).unwrap();
    assert_eq!(both.name.reference.tag(), None);
    assert_eq!(both.name.written, format!("quay.io/e/op@sha256:{hex}"));
    assert_eq!(
        crate::resolve::destination(&both),
        ("e/op".to_owned(), None)
    );
    // By tag: resolved, named by the tag.
    let tag = needed_entry("registry.redhat.io/ubi8/ubi:8.9", &[], 0).unwrap();
    assert_eq!(
        crate::resolve::destination(&tag),
        ("ubi8/ubi".to_owned(), Some("8.9".to_owned()))
    );
    // Neither: refused, as additionalImages refuses it.
    let e = needed_entry("quay.io/e/op", &[], 0).unwrap_err();
    assert!(e.contains("quay.io/e/op"), "{e}");
    assert_eq!(
        needed_by_text(&[id("etcd", "etcd.c"), id("logging", "l1")]),
        "needed by bundle etcd.c (package etcd), bundle l1 (package logging)"
    );
}

fn operator(catalog: &str, target_catalog: Option<&str>, target_tag: Option<&str>) -> PullOperator {
    PullOperator {
        catalog: ImageName::parse(catalog).unwrap(),
        target_catalog: target_catalog.map(Into::into),
        target_tag: target_tag.map(Into::into),
        platforms: Vec::new(),
        config: serde_json::from_value(serde_json::json!({ "catalog": catalog })).unwrap(),
        index: 0,
    }
}

#[test]
fn the_rebuilt_catalog_goes_to_target_catalog_and_tag_else_the_source() {
    let hex = "b".repeat(64);
    assert_eq!(
        catalog_destination(&operator(
            "registry.redhat.io/redhat/redhat-operator-index:v4.16",
            None,
            None
        )),
        (
            "redhat/redhat-operator-index".to_owned(),
            Some("v4.16".to_owned())
        )
    );
    assert_eq!(
        catalog_destination(&operator(
            "registry.redhat.io/redhat/redhat-operator-index:v4.16",
            Some("mirror/ops"),
            Some("site")
        )),
        ("mirror/ops".to_owned(), Some("site".to_owned()))
    );
    // By digest, no targetTag: by digest only.
    assert_eq!(
        catalog_destination(&operator(
            &format!("registry.redhat.io/redhat/redhat-operator-index@sha256:{hex}"),
            Some("mirror/ops"),
            None
        )),
        ("mirror/ops".to_owned(), None)
    );
}

#[test]
fn each_entry_records_its_refs_for_prune() {
    let t = tempfile::tempdir().unwrap();
    let cache = Cache::open(t.path()).unwrap();
    let a = operator(
        "registry.redhat.io/redhat/redhat-operator-index:v4.16",
        None,
        None,
    );
    let b = operator(
        "registry.redhat.io/redhat/redhat-operator-index:v4.16",
        Some("mirror/ops"),
        None,
    );
    assert!(
        recorded_refs(&cache, &a).unwrap().is_empty(),
        "never planned"
    );
    write_record(&cache, &a, vec!["x:1".into(), "y@sha256:00".into()]).unwrap();
    write_record(&cache, &b, vec!["mirror/ops:v4.16".into()]).unwrap();
    assert_eq!(recorded_refs(&cache, &a).unwrap(), ["x:1", "y@sha256:00"]);
    assert_eq!(recorded_refs(&cache, &b).unwrap(), ["mirror/ops:v4.16"]);
    // The next plan of the entry replaces what it recorded.
    write_record(&cache, &a, vec!["x:1".into()]).unwrap();
    assert_eq!(recorded_refs(&cache, &a).unwrap(), ["x:1"]);
    fs::write(record_path(&cache, &a), b"not json").unwrap();
    let e = recorded_refs(&cache, &a).unwrap_err().to_string();
    assert!(e.contains("remove it and pull again"), "{e}");
}

#[test]
fn a_selection_error_names_the_package_or_channel_of_the_entry() {
    let mut op = operator(
        "registry.redhat.io/redhat/redhat-operator-index:v4.16",
        None,
        None,
    );
    op.config = serde_json::from_value(serde_json::json!({
        "catalog": "registry.redhat.io/redhat/redhat-operator-index:v4.16",
        "packages": [
            {"name": "etcd"},
            {"name": "logging", "channels": [{"name": "stable"}, {"name": "fast"}]},
            {"name": "etcd"},
        ],
    }))
    .unwrap();
    let p = |i| vec![Field::Key("packages"), Field::Index(i)];
    let missing = FilterError::MissingChannel {
        package: "logging".into(),
        channel: "fast".into(),
        available: vec!["stable".into()],
    };
    assert_eq!(
        filter_field(&op, &missing),
        [p(1), vec![Field::Key("channels"), Field::Index(1)]].concat()
    );
    // A duplicate is named at its second listing.
    let dup = FilterError::DuplicatePackage {
        package: "etcd".into(),
    };
    assert_eq!(filter_field(&op, &dup), p(2));
    let not_kept = FilterError::DefaultChannelNotKept {
        package: "logging".into(),
        channel: "x".into(),
        kept: vec![],
    };
    assert_eq!(
        filter_field(&op, &not_kept),
        [p(1), vec![Field::Key("defaultChannel")]].concat()
    );
    let sqlite = SqliteError::NotPackageLevel {
        package: "logging".into(),
        what: "selecting channels",
    };
    assert_eq!(sqlite_field(&op, &sqlite), p(1));
    // A package the entry does not list (added by a dependency): the entry itself.
    let other = FilterError::NothingLeft {
        package: "other".into(),
        range: None,
    };
    assert!(filter_field(&op, &other).is_empty());
}

/// A bundle dropped from the middle of a chain splits the channel (two heads): the error
/// names the channel and says what to do.
#[test]
fn dropping_a_bundle_in_the_middle_of_a_chain_says_what_to_do() {
    let mut c = catalog();
    let e = drop_bundles(&mut c, &BTreeSet::from([id("etcd", "etcd.b")])).unwrap_err();
    assert!(
        e.contains("stable") && e.contains("etcd.a") && e.contains("minVersion"),
        "{e}"
    );
}
