//! The SQLite catalog's `index.db`, in operator-registry's schema, as `opm index add`
//! leaves it: one `operatorbundle` row per bundle (its `replaces`, `skips`, `skiprange`,
//! `bundlepath`), `channel_entry` rows per edge, related images, APIs provided and
//! required, properties, dependencies, and the deprecated bundles.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection};

use super::spec::{self, bundle_name, PACKAGES};
use super::FixtureBundle;

/// operator-registry's schema, the DDL catalog's own SQLite tests use.
const SCHEMA: &str = include_str!("../../../catalog/src/sqlite/opm_schema.sql");

/// Writes `index.db` at `path` holding `bundles` (the FBC's, same content).
pub fn build(path: &Path, bundles: &[FixtureBundle]) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    // package names its default channel before that channel row exists, as opm's loader
    // writes it.
    conn.pragma_update(None, "foreign_keys", false)?;
    // A fixed page size and no WAL: the same rows give the same file.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.execute_batch(SCHEMA)?;
    let tx = conn.unchecked_transaction()?;
    let image_of: BTreeMap<&str, &FixtureBundle> =
        bundles.iter().map(|b| (b.name.as_str(), b)).collect();
    for bs in spec::BUNDLES {
        let name = bs.name();
        let fb = image_of[name.as_str()];
        let p = spec::package(bs.package);
        let csv = format!(
            "{{\"apiVersion\":\"operators.coreos.com/v1alpha1\",\"kind\":\"ClusterServiceVersion\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{{\"version\":\"{}\"}}}}",
            bs.version
        );
        tx.execute(
            "INSERT INTO operatorbundle(name, csv, bundle, bundlepath, version, skiprange, replaces, skips)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                name,
                csv,
                format!("[{csv}]"),
                fb.image,
                bs.version,
                bs.skip_range,
                bs.replaces.map(|r| bundle_name(bs.package, r)),
                bs.skips
                    .iter()
                    .map(|s| bundle_name(bs.package, s))
                    .collect::<Vec<_>>()
                    .join(","),
            ],
        )?;
        for r in &fb.related {
            tx.execute(
                "INSERT INTO related_image(image, operatorbundle_name) VALUES (?1, ?2)",
                params![r, name],
            )?;
        }
        let prop = |kind: &str, value: String| {
            tx.execute(
                "INSERT INTO properties(type, value, operatorbundle_name, operatorbundle_version, operatorbundle_path)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, value, name, bs.version, fb.image],
            )
        };
        prop(
            "olm.package",
            format!(
                "{{\"packageName\":\"{}\",\"version\":\"{}\"}}",
                bs.package, bs.version
            ),
        )?;
        for (g, v, k) in p.provides {
            prop(
                "olm.gvk",
                format!("{{\"group\":\"{g}\",\"kind\":\"{k}\",\"version\":\"{v}\"}}"),
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO api(group_name, version, kind, plural) VALUES (?1, ?2, ?3, ?4)",
                params![g, v, k, format!("{}s", k.to_lowercase())],
            )?;
            tx.execute(
                "INSERT INTO api_provider VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![g, v, k, name, bs.version, fb.image],
            )?;
        }
        for (pkg, range) in bs.requires_packages {
            tx.execute(
                "INSERT INTO dependencies VALUES ('olm.package', ?1, ?2, ?3, ?4)",
                params![
                    format!("{{\"packageName\":\"{pkg}\",\"version\":\"{range}\"}}"),
                    name,
                    bs.version,
                    fb.image
                ],
            )?;
        }
        for (g, v, k) in bs.requires_gvks {
            tx.execute(
                "INSERT INTO dependencies VALUES ('olm.gvk', ?1, ?2, ?3, ?4)",
                params![
                    format!("{{\"group\":\"{g}\",\"kind\":\"{k}\",\"version\":\"{v}\"}}"),
                    name,
                    bs.version,
                    fb.image
                ],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO api(group_name, version, kind, plural) VALUES (?1, ?2, ?3, ?4)",
                params![g, v, k, format!("{}s", k.to_lowercase())],
            )?;
            tx.execute(
                "INSERT INTO api_requirer VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![g, v, k, name, bs.version, fb.image],
            )?;
        }
    }
    for p in PACKAGES {
        tx.execute(
            "INSERT INTO package(name, default_channel) VALUES (?1, ?2)",
            params![p.name, p.default_channel],
        )?;
        for channel in p.channels {
            tx.execute(
                "INSERT INTO channel(name, package_name, head_operatorbundle_name) VALUES (?1, ?2, ?3)",
                params![channel, p.name, head(p.name, channel)],
            )?;
            // Tail first, so `replaces` points at an entry already written.
            let mut entry_of: BTreeMap<String, i64> = BTreeMap::new();
            for bs in spec::bundles_of(p.name).filter(|b| b.channels.contains(channel)) {
                let replaces = bs
                    .replaces
                    .and_then(|r| entry_of.get(&bundle_name(p.name, r)).copied());
                tx.execute(
                    "INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, replaces, depth)
                     VALUES (?1, ?2, ?3, ?4, 0)",
                    params![channel, p.name, bs.name(), replaces],
                )?;
                entry_of.insert(bs.name(), tx.last_insert_rowid());
                // opm writes one more row per skipped bundle: the same bundle, another edge.
                for _ in bs.skips {
                    tx.execute(
                        "INSERT INTO channel_entry(channel_name, package_name, operatorbundle_name, replaces, depth)
                         VALUES (?1, ?2, ?3, NULL, 0)",
                        params![channel, p.name, bs.name()],
                    )?;
                }
            }
        }
        for (schema, name, _) in p.deprecations {
            if *schema == "olm.bundle" {
                tx.execute("INSERT INTO deprecated VALUES (?1)", [name])?;
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("VACUUM")?;
    Ok(())
}

/// The one entry of `channel` that no other entry replaces or skips.
pub fn head(package: &str, channel: &str) -> String {
    let entries: Vec<&spec::BundleSpec> = spec::bundles_of(package)
        .filter(|b| b.channels.contains(&channel))
        .collect();
    let heads: Vec<String> = entries
        .iter()
        .filter(|e| {
            !entries
                .iter()
                .any(|o| o.replaces == Some(e.version) || o.skips.contains(&e.version))
        })
        .map(|e| e.name())
        .collect();
    assert_eq!(
        heads.len(),
        1,
        "{package}/{channel} has one head: {heads:?}"
    );
    heads[0].clone()
}
