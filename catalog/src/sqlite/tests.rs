//! Against a small index.db built here with operator-registry's final schema (the CREATE
//! TABLE statements of `pkg/sqlite/migrations`, 000 through 014, as the last migration
//! leaves them). [`build`] is shared: the catalog image tests put its database in a layer.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::*;
use crate::filter::{ChannelFilter, PackageFilter};
use crate::version::Range;

/// operator-registry's schema (shared with the fixture generator in test-support).
const SCHEMA: &str = include_str!("opm_schema.sql");

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn bundle_image(name: &str, n: u8) -> String {
    format!("quay.io/ops/{name}-bundle@{}", digest(n))
}

struct B {
    package: &'static str,
    name: &'static str,
    version: &'static str,
    replaces: Option<&'static str>,
    skips: &'static str,
    channels: &'static [&'static str],
    related: &'static [&'static str],
    n: u8,
}

const BUNDLES: &[B] = &[
    B { package: "alpha", name: "alpha.v1.0.0", version: "1.0.0", replaces: None, skips: "", channels: &["stable"], related: &["quay.io/ops/alpha@sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"], n: 1 },
    B { package: "alpha", name: "alpha.v1.1.0", version: "1.1.0", replaces: Some("alpha.v1.0.0"), skips: "", channels: &["stable"], related: &["quay.io/ops/alpha@sha256:a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2"], n: 2 },
    B { package: "alpha", name: "alpha.v1.2.0", version: "1.2.0", replaces: Some("alpha.v1.1.0"), skips: "alpha.v1.1.5,alpha.v1.1.6", channels: &["stable", "fast"], related: &["quay.io/ops/alpha@sha256:a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3", "registry.example/shared/proxy:1.0"], n: 3 },
    B { package: "alpha", name: "alpha.v2.0.0", version: "2.0.0", replaces: Some("alpha.v1.2.0"), skips: "", channels: &["fast"], related: &[], n: 4 },
    B { package: "beta", name: "beta.v0.1.0", version: "0.1.0", replaces: None, skips: "", channels: &["stable"], related: &["registry.example/beta/operand:0.1"], n: 5 },
    B { package: "beta", name: "beta.v0.2.0", version: "0.2.0", replaces: Some("beta.v0.1.0"), skips: "", channels: &["stable"], related: &["registry.example/beta/operand:0.2", "registry.example/shared/proxy:1.0"], n: 6 },
    B { package: "gamma", name: "gamma.v3.0.0", version: "3.0.0", replaces: None, skips: "", channels: &["candidate"], related: &["registry.example/gamma/operand@sha256:c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"], n: 7 },
];

/// (package, default channel, [(channel, head)]).
type PackageRow = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const PACKAGES: &[PackageRow] = &[
    (
        "alpha",
        "stable",
        &[("stable", "alpha.v1.2.0"), ("fast", "alpha.v2.0.0")],
    ),
    ("beta", "stable", &[("stable", "beta.v0.2.0")]),
    ("gamma", "candidate", &[("candidate", "gamma.v3.0.0")]),
];

/// An index.db as `opm index add` leaves it: channel_entry rows per edge, APIs, properties
/// (gamma's large, so its pages are many), dependencies, a deprecated bundle.
pub(crate) fn build(path: &Path) {
    let conn = Connection::open(path).unwrap();
    // rusqlite's bundled SQLite enforces foreign keys by default; package names its
    // default channel before that channel row exists.
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    for b in BUNDLES {
        let image = bundle_image(b.package, b.n);
        conn.execute(
            "INSERT INTO operatorbundle(name, csv, bundle, bundlepath, version, replaces, skips, skiprange)
             VALUES (?1, '{}', '[]', ?2, ?3, ?4, ?5, NULL)",
            rusqlite::params![b.name, image, b.version, b.replaces, b.skips],
        )
        .unwrap();
        for r in b.related {
            conn.execute(
                "INSERT INTO related_image(image, operatorbundle_name) VALUES (?1, ?2)",
                [r, b.name],
            )
            .unwrap();
        }
        let big = if b.package == "gamma" {
            "x".repeat(64 * 1024)
        } else {
            String::new()
        };
        conn.execute(
            "INSERT INTO properties(type, value, operatorbundle_name, operatorbundle_version, operatorbundle_path)
             VALUES ('olm.package', ?1, ?2, ?3, ?4)",
            rusqlite::params![
                format!("{{\"packageName\":\"{}\",\"version\":\"{}\"{big}}}", b.package, b.version),
                b.name,
                b.version,
                image
            ],
        )
        .unwrap();
    }
    // A stranded bundle (in no channel): opm's gRPC API does not serve it, and its
    // RemoveStrandedBundles deletes it.
    conn.execute_batch(&format!(
        "INSERT INTO operatorbundle(name, bundlepath, version) VALUES ('stranded.v0.0.1', '{s}', '0.0.1');
         INSERT INTO related_image VALUES ('registry.example/stranded/operand:1', 'stranded.v0.0.1');
         INSERT INTO properties VALUES ('olm.package', '{{}}', 'stranded.v0.0.1', '0.0.1', '{s}');",
        s = bundle_image("stranded", 8)
    ))
    .unwrap();
    let mut entry_of = std::collections::BTreeMap::new();
    for (package, default, channels) in PACKAGES {
        conn.execute(
            "INSERT INTO package(name, default_channel) VALUES (?1, ?2)",
            [package, default],
        )
        .unwrap();
        for (channel, head) in *channels {
            conn.execute(
                "INSERT INTO channel(name, package_name, head_operatorbundle_name) VALUES (?1, ?2, ?3)",
                [channel, package, head],
            )
            .unwrap();
            // Tail first, so replaces points at an existing entry id.
            for b in BUNDLES
                .iter()
                .filter(|b| b.package == *package && b.channels.contains(channel))
            {
                let replaces: Option<i64> = b
                    .replaces
                    .and_then(|r| entry_of.get(&(channel.to_string(), r.to_string())).copied());
                conn.execute(
                    "INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, replaces, depth)
                     VALUES (?1, ?2, ?3, ?4, 0)",
                    rusqlite::params![channel, package, b.name, replaces],
                )
                .unwrap();
                entry_of.insert(
                    (channel.to_string(), b.name.to_string()),
                    conn.last_insert_rowid(),
                );
                // opm writes one more row per skipped bundle: the same bundle, another edge.
                for _ in b.skips.split(',').filter(|s| !s.is_empty()) {
                    conn.execute(
                        "INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, replaces, depth)
                         VALUES (?1, ?2, ?3, NULL, 0)",
                        [channel, package, &b.name],
                    )
                    .unwrap();
                }
            }
        }
    }
    conn.execute_batch(&format!(
        "INSERT INTO api VALUES ('example.com', 'v1', 'Widget', 'widgets');
         INSERT INTO api VALUES ('gamma.io', 'v1', 'Gadget', 'gadgets');
         INSERT INTO api VALUES ('orphan.io', 'v1', 'Nobody', 'nobodies');
         INSERT INTO api_provider VALUES ('example.com', 'v1', 'Widget', 'alpha.v2.0.0', '2.0.0', '{a}');
         INSERT INTO api_requirer VALUES ('example.com', 'v1', 'Widget', 'beta.v0.2.0', '0.2.0', '{b}');
         INSERT INTO api_provider VALUES ('gamma.io', 'v1', 'Gadget', 'gamma.v3.0.0', '3.0.0', '{g}');
         INSERT INTO dependencies VALUES ('olm.gvk', '{{\"group\":\"example.com\",\"kind\":\"Widget\",\"version\":\"v1\"}}', 'beta.v0.2.0', '0.2.0', '{b}');
         INSERT INTO dependencies VALUES ('olm.package', '{{\"packageName\":\"beta\",\"version\":\">=0.1.0\"}}', 'gamma.v3.0.0', '3.0.0', '{g}');
         INSERT INTO deprecated VALUES ('gamma.v3.0.0');
         INSERT INTO deprecated VALUES ('alpha.v1.0.0');",
        a = bundle_image("alpha", 4),
        b = bundle_image("beta", 6),
        g = bundle_image("gamma", 7),
    ))
    .unwrap();
}

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    build(&path);
    (dir, path)
}

fn packages(names: &[&str]) -> Filter {
    Filter {
        full: false,
        packages: names
            .iter()
            .map(|n| PackageFilter {
                name: n.to_string(),
                ..Default::default()
            })
            .collect(),
    }
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn read_gives_packages_channels_heads_and_bundles_to_list() {
    let (_dir, path) = fixture();
    let catalog = read(&open(&path).unwrap()).unwrap();
    let listing = crate::list(&catalog, None).unwrap();
    type ChannelSummary = (String, Option<String>, Vec<String>);
    let summary: Vec<(String, Option<String>, Vec<ChannelSummary>)> = listing
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.default_channel.clone(),
                p.channels
                    .iter()
                    .map(|c| (c.name.clone(), c.head.clone(), c.versions.clone()))
                    .collect(),
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary,
        vec![
            (
                "alpha".into(),
                Some("stable".into()),
                vec![
                    (
                        "fast".into(),
                        Some("alpha.v2.0.0".into()),
                        s(&["1.2.0", "2.0.0"])
                    ),
                    (
                        "stable".into(),
                        Some("alpha.v1.2.0".into()),
                        s(&["1.0.0", "1.1.0", "1.2.0"])
                    ),
                ]
            ),
            (
                "beta".into(),
                Some("stable".into()),
                vec![(
                    "stable".into(),
                    Some("beta.v0.2.0".into()),
                    s(&["0.1.0", "0.2.0"])
                )]
            ),
            (
                "gamma".into(),
                Some("candidate".into()),
                vec![(
                    "candidate".into(),
                    Some("gamma.v3.0.0".into()),
                    s(&["3.0.0"])
                )]
            ),
        ]
    );
    assert!(listing
        .packages
        .iter()
        .all(|p| p.channels.iter().all(|c| c.error.is_none())));

    let alpha = crate::list(&catalog, Some("alpha")).unwrap();
    let bundles = alpha.bundles.unwrap();
    assert_eq!(
        bundles.len(),
        4,
        "one bundle per name despite one channel_entry row per edge"
    );
    let v12 = bundles.iter().find(|b| b.name == "alpha.v1.2.0").unwrap();
    assert_eq!(v12.image, bundle_image("alpha", 3));
    assert_eq!(v12.version.as_deref(), Some("1.2.0"));
    assert_eq!(v12.channels, s(&["fast", "stable"]));

    let content = catalog.package("alpha").unwrap();
    let entry = content.channels["stable"]
        .entries
        .iter()
        .find(|e| e.name == "alpha.v1.2.0")
        .unwrap();
    assert_eq!(entry.replaces.as_deref(), Some("alpha.v1.1.0"));
    assert_eq!(entry.skips, s(&["alpha.v1.1.5", "alpha.v1.1.6"]));
    assert_eq!(content.bundles["alpha.v2.0.0"].provides.len(), 1);
    assert_eq!(
        catalog.package("beta").unwrap().bundles["beta.v0.2.0"].requires_gvks[0].kind,
        "Widget"
    );

    let err = crate::list(&catalog, Some("delta")).unwrap_err();
    assert_eq!(err.available, s(&["alpha", "beta", "gamma"]));
}

#[test]
fn select_takes_every_bundlepath_and_related_image_of_the_kept_packages() {
    let (_dir, path) = fixture();
    let catalog = read(&open(&path).unwrap()).unwrap();
    let selected = select(catalog, &packages(&["beta", "gamma"])).unwrap();
    assert!(!selected.unchanged);
    assert_eq!(selected.catalog.package_names(), vec!["beta", "gamma"]);
    let images: Vec<&str> = selected.images.iter().map(|i| i.image.as_str()).collect();
    let mut expected = vec![
        bundle_image("beta", 5),
        bundle_image("beta", 6),
        bundle_image("gamma", 7),
        "registry.example/beta/operand:0.1".to_string(),
        "registry.example/beta/operand:0.2".to_string(),
        "registry.example/gamma/operand@sha256:c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0".to_string(),
        "registry.example/shared/proxy:1.0".to_string(),
    ];
    expected.sort();
    assert_eq!(images, expected);
    let proxy = selected
        .images
        .iter()
        .find(|i| i.image == "registry.example/shared/proxy:1.0")
        .unwrap();
    assert!(!proxy.by_digest);
    assert_eq!(
        proxy.needed_by.len(),
        1,
        "alpha's use is not counted: alpha is not kept"
    );

    // No packages: every package, the database carried as it is.
    let all = select(read(&open(&path).unwrap()).unwrap(), &Filter::default()).unwrap();
    assert!(all.unchanged);
    assert_eq!(all.catalog.package_names().len(), 3);
    // 7 bundle images and 7 distinct related images; the stranded bundle's are not.
    assert_eq!(all.images.len(), 14);
    assert!(all.images.iter().all(|i| !i.image.contains("stranded")));
}

#[test]
fn channel_version_and_default_channel_filters_are_refused_on_sqlite() {
    let (_dir, path) = fixture();
    let index = open(&path).unwrap();
    let mut f = packages(&["alpha"]);
    f.packages[0].channels.push(ChannelFilter {
        name: "stable".into(),
        range: None,
    });
    let err = select(read(&index).unwrap(), &f).unwrap_err();
    assert!(matches!(err, SqliteError::NotPackageLevel { ref package, .. } if package == "alpha"));
    assert!(
        err.to_string().contains("needs a file-based catalog"),
        "{err}"
    );

    let mut f = packages(&["alpha"]);
    f.packages[0].range = Range::from_bounds(Some("1.1.0"), None).transpose().unwrap();
    let err = select(read(&index).unwrap(), &f).unwrap_err();
    assert!(
        err.to_string()
            .contains("minVersion/maxVersion needs a file-based catalog"),
        "{err}"
    );

    let mut f = packages(&["alpha"]);
    f.packages[0].default_channel = Some("fast".into());
    let err = select(read(&index).unwrap(), &f).unwrap_err();
    assert!(
        err.to_string()
            .contains("defaultChannel needs a file-based catalog"),
        "{err}"
    );

    let dest = path.with_file_name("pruned.db");
    let err = prune(&index, &["alpha".into(), "alpha".into()], &dest).unwrap_err();
    assert!(matches!(err, SqliteError::DuplicatePackage { .. }), "{err}");
    assert!(!dest.exists());
}

#[test]
fn a_package_the_catalog_lacks_is_an_error_naming_those_it_has() {
    let (_dir, path) = fixture();
    let index = open(&path).unwrap();
    let err = select(read(&index).unwrap(), &packages(&["beta", "delta"])).unwrap_err();
    let SqliteError::MissingPackages { missing, available } = &err else {
        panic!("{err}");
    };
    assert_eq!(missing, &["delta"]);
    assert_eq!(available, &["alpha", "beta", "gamma"]);
    assert!(
        err.to_string()
            .contains("it has [\"alpha\", \"beta\", \"gamma\"]"),
        "{err}"
    );

    let dest = path.with_file_name("pruned.db");
    let err = prune(&index, &["delta".into()], &dest).unwrap_err();
    assert!(matches!(err, SqliteError::MissingPackages { .. }), "{err}");
    assert!(!dest.exists(), "nothing written on error");
}

#[test]
fn prune_deletes_the_other_packages_and_every_row_that_refers_to_them() {
    let (dir, path) = fixture();
    let before = Connection::open(&path).unwrap();
    let kept_rows = |c: &Connection| {
        [
            "SELECT count(*) FROM operatorbundle WHERE name LIKE 'alpha%' OR name LIKE 'beta%'",
            "SELECT count(*) FROM channel_entry WHERE package_name IN ('alpha', 'beta')",
            "SELECT count(*) FROM related_image WHERE operatorbundle_name LIKE 'alpha%' OR operatorbundle_name LIKE 'beta%'",
            "SELECT count(*) FROM properties WHERE operatorbundle_name LIKE 'alpha%' OR operatorbundle_name LIKE 'beta%'",
        ]
        .map(|q| count(c, q))
    };
    let expected_kept = kept_rows(&before);
    drop(before);

    let dest = dir.path().join("pruned.db");
    prune(
        &open(&path).unwrap(),
        &["beta".into(), "alpha".into()],
        &dest,
    )
    .unwrap();
    let after = Connection::open(&dest).unwrap();
    for (table, column) in [
        ("package", "name"),
        ("channel", "package_name"),
        ("channel_entry", "package_name"),
    ] {
        assert_eq!(
            count(
                &after,
                &format!("SELECT count(*) FROM {table} WHERE {column} = 'gamma'")
            ),
            0,
            "{table}"
        );
    }
    for table in [
        "related_image",
        "api_provider",
        "api_requirer",
        "properties",
        "dependencies",
        "deprecated",
    ] {
        assert_eq!(
            count(
                &after,
                &format!("SELECT count(*) FROM {table} WHERE operatorbundle_name LIKE 'gamma%'")
            ),
            0,
            "{table}"
        );
    }
    assert_eq!(
        count(
            &after,
            "SELECT count(*) FROM operatorbundle WHERE name LIKE 'gamma%'"
        ),
        0
    );
    // APIs: Widget is still provided and required; Gadget was gamma's only; Nobody was
    // referenced by no bundle before either.
    let apis: Vec<String> = after
        .prepare("SELECT kind FROM api ORDER BY kind")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(apis, ["Widget"]);
    assert_eq!(
        kept_rows(&after),
        expected_kept,
        "the kept packages' rows are intact"
    );
    assert_eq!(expected_kept[0], 6, "alpha's 4 bundles and beta's 2");
    for table in ["related_image", "properties"] {
        assert_eq!(
            count(
                &after,
                &format!("SELECT count(*) FROM {table} WHERE operatorbundle_name LIKE 'stranded%'")
            ),
            0,
            "{table}: the stranded bundle's rows go with it"
        );
    }
    assert_eq!(count(&after, "SELECT count(*) FROM operatorbundle"), 6);
    assert_eq!(count(&after, "SELECT count(*) FROM deprecated"), 1);
    assert_eq!(count(&after, "SELECT count(*) FROM dependencies"), 1);
    assert_eq!(count(&after, "SELECT count(*) FROM schema_migrations"), 1);
    assert_eq!(
        count(&after, "PRAGMA freelist_count"),
        0,
        "VACUUM left no free page"
    );
    assert_eq!(
        after
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    assert!(
        std::fs::metadata(&dest).unwrap().len() < std::fs::metadata(&path).unwrap().len(),
        "gamma's 64 KiB property is gone from the file"
    );
    drop(after);

    // Read back, the pruned catalog lists as the original does without gamma.
    let pruned = read(&open(&dest).unwrap()).unwrap();
    let original = read(&open(&path).unwrap()).unwrap();
    let mut expected = crate::list(&original, None).unwrap();
    expected.packages.retain(|p| p.name != "gamma");
    assert_eq!(crate::list(&pruned, None).unwrap(), expected);
    // No temporary or journal left beside it.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["index.db", "pruned.db"]);
}

#[test]
fn prune_is_byte_identical_run_after_run_and_leaves_the_original_untouched() {
    let (dir, path) = fixture();
    let original = std::fs::read(&path).unwrap();
    let index = open(&path).unwrap();
    let (one, two) = (dir.path().join("one.db"), dir.path().join("two.db"));
    prune(&index, &["alpha".into()], &one).unwrap();
    prune(&index, &["alpha".into()], &two).unwrap();
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
    // Package order in the request does not matter either.
    prune(&index, &["beta".into(), "alpha".into()], &one).unwrap();
    prune(&index, &["alpha".into(), "beta".into()], &two).unwrap();
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
    // A second database built the same way (another file, another time) prunes to the
    // same bytes too.
    let other = dir.path().join("other").join("index.db");
    std::fs::create_dir(other.parent().unwrap()).unwrap();
    build(&other);
    let three = dir.path().join("three.db");
    prune(
        &open(&other).unwrap(),
        &["alpha".into(), "beta".into()],
        &three,
    )
    .unwrap();
    assert_eq!(std::fs::read(&three).unwrap(), std::fs::read(&two).unwrap());
    drop(index);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        original,
        "the original is only read"
    );
}

#[test]
fn prune_refuses_a_symlink_at_the_destination() {
    let (dir, path) = fixture();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let dest = dir.path().join("pruned.db");
    std::os::unix::fs::symlink(&victim, &dest).unwrap();
    let err = prune(&open(&path).unwrap(), &["alpha".into()], &dest).unwrap_err();
    assert!(matches!(err, SqliteError::Write { .. }), "{err}");
    assert!(err.to_string().contains("pruned.db"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
}

#[test]
fn open_names_the_file_and_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();

    let absent = dir.path().join("absent.db");
    let err = open(&absent).err().unwrap();
    assert!(matches!(err, SqliteError::Open { .. }), "{err}");
    assert!(err.to_string().contains("absent.db"), "{err}");
    assert!(!absent.exists(), "opening read-only creates nothing");

    let text = dir.path().join("catalog.json");
    std::fs::write(&text, b"{\"schema\": \"olm.package\"}\n").unwrap();
    let err = open(&text).err().unwrap();
    assert!(matches!(err, SqliteError::NotSqlite { .. }), "{err}");
    assert!(err.to_string().contains("catalog.json"), "{err}");

    let other = dir.path().join("other.db");
    let conn = Connection::open(&other).unwrap();
    conn.execute_batch(
        "CREATE TABLE package (name TEXT PRIMARY KEY, default_channel TEXT);
         CREATE TABLE channel (name TEXT, package_name TEXT, head_operatorbundle_name TEXT);",
    )
    .unwrap();
    drop(conn);
    let err = open(&other).err().unwrap();
    let SqliteError::NotIndex { path, missing } = &err else {
        panic!("{err}");
    };
    assert_eq!(path, &other);
    assert_eq!(
        missing,
        &[
            "channel_entry",
            "operatorbundle",
            "related_image",
            "schema_migrations"
        ]
    );
    assert!(err.to_string().contains("other.db"), "{err}");

    let old = dir.path().join("old.db");
    let conn = Connection::open(&old).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER NOT NULL);
         CREATE TABLE package (name TEXT PRIMARY KEY, default_channel TEXT);
         CREATE TABLE channel (name TEXT, package_name TEXT, head_operatorbundle_name TEXT);
         CREATE TABLE channel_entry (entry_id INTEGER PRIMARY KEY, channel_name TEXT, package_name TEXT, operatorbundle_name TEXT, replaces INTEGER, depth INTEGER);
         CREATE TABLE operatorbundle (name TEXT PRIMARY KEY, csv TEXT, bundle TEXT, bundlepath TEXT);
         CREATE TABLE related_image (image TEXT, operatorbundle_name TEXT);",
    )
    .unwrap();
    drop(conn);
    let err = open(&old).err().unwrap();
    assert!(
        matches!(&err, SqliteError::MissingColumn { table, column, .. } if table == "operatorbundle" && column == "version"),
        "{err}"
    );
}

#[test]
fn a_bundle_in_the_channels_of_two_packages_is_an_error_naming_both() {
    let (_dir, path) = fixture();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, replaces, depth)
         VALUES ('candidate', 'gamma', 'beta.v0.1.0', NULL, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = read(&open(&path).unwrap()).unwrap_err();
    let SqliteError::BundleInTwoPackages {
        bundle,
        package,
        other,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(
        (bundle.as_str(), package.as_str(), other.as_str()),
        ("beta.v0.1.0", "gamma", "beta")
    );
    assert!(err.to_string().contains("index.db"), "{err}");
}

#[test]
fn full_changes_nothing_on_sqlite_whole_packages_are_kept() {
    let (_dir, path) = fixture();
    let index = open(&path).unwrap();
    let mut f = packages(&["alpha"]);
    let plain = select(read(&index).unwrap(), &f).unwrap();
    f.full = true;
    let full = select(read(&index).unwrap(), &f).unwrap();
    assert_eq!(
        crate::list(&plain.catalog, Some("alpha")).unwrap(),
        crate::list(&full.catalog, Some("alpha")).unwrap()
    );
    assert_eq!(plain.images, full.images);
    assert_eq!(
        plain.catalog.package("alpha").unwrap().bundles.len(),
        4,
        "every bundle, not only the channel heads"
    );
}

/// A database from a registry with a trigger (one that puts back what prune deletes, so
/// the rebuilt catalog would name bundles whose images were never pulled) is refused at
/// open, naming the file and the trigger; prune never runs it.
#[test]
fn a_database_with_triggers_is_refused() {
    let (_dir, path) = fixture();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE keep_me AS SELECT * FROM package;
             CREATE TRIGGER resurrect AFTER DELETE ON package
             BEGIN INSERT INTO package SELECT * FROM keep_me WHERE name = OLD.name; END;",
        )
        .unwrap();
    let e = open(&path).err().expect("refused");
    let text = e.to_string();
    assert!(matches!(e, SqliteError::Triggers { .. }), "{text}");
    assert!(
        text.contains(&path.display().to_string()) && text.contains("\"resurrect\""),
        "{text}"
    );
}
