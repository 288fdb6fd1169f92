//! SQLite operator catalogs (OpenShift 4.6–4.10): the `/database/index.db` that
//! operator-registry's `opm index add` builds (`pkg/sqlite/migrations`, the schema of its
//! last migration; label `operators.operatorframework.io.index.database.v1`).
//!
//! - [`open`]: the database, read-only, checked to be an operator-registry index.
//! - [`read`]: its packages, channels and bundles in the crate's [`model`](crate::model),
//!   so [`list`](crate::list) works on it unchanged. Bundles carry no raw object (there
//!   is none: a SQLite catalog is never written as FBC).
//! - [`select`]: package-level selection as `opm index prune` makes it (every bundle of
//!   each kept package), and the images `oc adm catalog mirror` takes for it: every
//!   `operatorbundle.bundlepath` and `related_image.image`. Channel, version and
//!   default-channel filters need a file-based catalog and are refused.
//! - [`prune`]: a copy of the database with the other packages deleted, every row that
//!   refers to them with them (and stranded bundles, in no channel, as opm drops them),
//!   then `VACUUM`. Same input and packages → same bytes (the
//!   SQLite that writes it is compiled in, so its version is fixed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::filter::{Filter, Filtered};
use crate::model::*;
use crate::version;

/// The tables an operator-registry index has; ferry reads the first five.
pub const REQUIRED_TABLES: &[&str] = &[
    "package",
    "channel",
    "channel_entry",
    "operatorbundle",
    "related_image",
    "schema_migrations",
];

/// Why a SQLite catalog cannot be read, selected or pruned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    #[error("{}: cannot open the SQLite catalog: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: not an operator-registry index database: it has no table {missing:?} (an index.db from `opm index add` has {REQUIRED_TABLES:?}); is this a file-based catalog image (configs/)?", path.display())]
    NotIndex { path: PathBuf, missing: Vec<String> },
    /// Triggers would run inside ferry's prune: re-insert what it deletes (the rebuilt
    /// catalog then names bundles whose images were never pulled) or write without end.
    #[error("{}: the database holds triggers ({names:?}), which an operator-registry index.db never has; ferry does not run code from a catalog: use an index built by opm", path.display())]
    Triggers { path: PathBuf, names: Vec<String> },
    #[error("{}: not a SQLite database (an operator-registry index.db is one); is this a file-based catalog image (configs/)?", path.display())]
    NotSqlite { path: PathBuf },
    #[error("{}: column {column:?} missing from table {table:?}: the database is older than operator-registry's final schema, which ferry reads", path.display())]
    MissingColumn {
        path: PathBuf,
        table: String,
        column: String,
    },
    #[error("{}: reading the SQLite catalog: {source}", path.display())]
    Query {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: package {package:?}, bundle {bundle:?} is in the channels of package {other:?} too; ferry cannot tell which package it belongs to", path.display())]
    BundleInTwoPackages {
        path: PathBuf,
        bundle: String,
        package: String,
        other: String,
    },
    #[error("the catalog has no package {missing:?}; it has {available:?}")]
    MissingPackages {
        missing: Vec<String>,
        available: Vec<String>,
    },
    #[error("package {package:?}: {what} needs a file-based catalog (OpenShift 4.11 and later); a SQLite catalog is selected by package only, as `opm index prune` does (every bundle of each listed package). Drop {what}, or mirror a 4.11+ catalog")]
    NotPackageLevel { package: String, what: &'static str },
    #[error("package {package:?} is listed twice under packages")]
    DuplicatePackage { package: String },
    #[error(transparent)]
    Filter(#[from] crate::filter::FilterError),
    #[error("{}: reading the SQLite catalog to copy it: {source}", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: writing the pruned catalog: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: pruning the SQLite catalog: {source}", path.display())]
    Prune {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// An operator-registry index database, open read-only.
pub struct Index {
    path: PathBuf,
    conn: Connection,
}

/// Opens `path` read-only and checks it is an operator-registry index database.
pub fn open(path: &Path) -> Result<Index, SqliteError> {
    // Read-only and no mutex: ferry never writes the original, and one thread reads it.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| SqliteError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let index = Index {
        path: path.to_path_buf(),
        conn,
    };
    let tables = index.tables()?;
    let missing: Vec<String> = REQUIRED_TABLES
        .iter()
        .filter(|t| !tables.contains(**t))
        .map(|t| t.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(SqliteError::NotIndex {
            path: index.path,
            missing,
        });
    }
    let triggers = index.triggers()?;
    if !triggers.is_empty() {
        return Err(SqliteError::Triggers {
            path: index.path,
            names: triggers,
        });
    }
    for (table, column) in [
        ("operatorbundle", "version"),
        ("operatorbundle", "bundlepath"),
        ("operatorbundle", "replaces"),
        ("operatorbundle", "skips"),
        ("operatorbundle", "skiprange"),
    ] {
        if !index.has_column(table, column)? {
            return Err(SqliteError::MissingColumn {
                path: index.path,
                table: table.to_string(),
                column: column.to_string(),
            });
        }
    }
    Ok(index)
}

impl Index {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn query_err(&self) -> impl Fn(rusqlite::Error) -> SqliteError + '_ {
        |source| match source {
            // A file that is not SQLite opens fine and fails at the first read.
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::NotADatabase => {
                SqliteError::NotSqlite {
                    path: self.path.clone(),
                }
            }
            source => SqliteError::Query {
                path: self.path.clone(),
                source,
            },
        }
    }

    fn tables(&self) -> Result<BTreeSet<String>, SqliteError> {
        tables(&self.conn).map_err(self.query_err())
    }

    fn triggers(&self) -> Result<Vec<String>, SqliteError> {
        let names = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            names.collect()
        };
        names().map_err(self.query_err())
    }

    fn has_column(&self, table: &str, column: &str) -> Result<bool, SqliteError> {
        self.conn
            .query_row(
                "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(self.query_err())
    }
}

fn tables(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// The catalog `index` holds, in the crate's model.
///
/// A bundle belongs to the package whose channels list it (operatorbundle has no package
/// column); a bundle in no channel is left out, as opm's gRPC API does not serve it.
/// An entry's `replaces` and `skips` are the bundle's (`operatorbundle.replaces`,
/// comma-separated `operatorbundle.skips`), as `opm migrate` reads them.
pub fn read(index: &Index) -> Result<Catalog, SqliteError> {
    let err = index.query_err();
    let conn = &index.conn;
    let mut catalog = Catalog::default();

    let mut stmt = conn
        .prepare("SELECT name, default_channel FROM package ORDER BY name")
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .map_err(&err)?;
    for row in rows {
        let (name, default_channel) = row.map_err(&err)?;
        catalog.packages.insert(
            name.clone(),
            PackageContent {
                package: Package {
                    name,
                    default_channel: default_channel.filter(|c| !c.is_empty()),
                    icon: None,
                    description: None,
                    properties: None,
                },
                channels: BTreeMap::new(),
                bundles: BTreeMap::new(),
                deprecation: None,
            },
        );
    }

    let mut stmt = conn
        .prepare("SELECT name, package_name FROM channel ORDER BY package_name, name")
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(&err)?;
    for row in rows {
        let (name, package) = row.map_err(&err)?;
        if let Some(content) = catalog.packages.get_mut(&package) {
            content.channels.insert(
                name.clone(),
                Channel {
                    package,
                    name,
                    entries: Vec::new(),
                    properties: None,
                },
            );
        }
    }

    // One entry per (channel, bundle): opm writes a channel_entry row per edge (one per
    // replaced or skipped bundle), all naming the same bundle.
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT e.package_name, e.channel_name, e.operatorbundle_name,
                    b.replaces, b.skips, b.skiprange, b.version, b.bundlepath
             FROM channel_entry e JOIN operatorbundle b ON b.name = e.operatorbundle_name
             ORDER BY e.package_name, e.channel_name, e.operatorbundle_name",
        )
        .map_err(&err)?;
    type EntryRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows = stmt
        .query_map([], |r| -> rusqlite::Result<EntryRow> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .map_err(&err)?;
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for row in rows {
        let (package, channel, bundle, replaces, skips, skip_range, version_text, image) =
            row.map_err(&err)?;
        let Some(content) = catalog.packages.get_mut(&package) else {
            continue;
        };
        if let Some(other) = owner.get(&bundle).filter(|o| **o != package) {
            return Err(SqliteError::BundleInTwoPackages {
                path: index.path.clone(),
                bundle,
                package,
                other: other.clone(),
            });
        }
        owner.insert(bundle.clone(), package.clone());
        if let Some(ch) = content.channels.get_mut(&channel) {
            ch.entries.push(ChannelEntry {
                name: bundle.clone(),
                replaces: replaces.filter(|r| !r.is_empty()),
                skips: skips
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                skip_range: skip_range.filter(|s| !s.is_empty()),
            });
        }
        content
            .bundles
            .entry(bundle.clone())
            .or_insert_with(|| Bundle {
                name: bundle,
                package,
                image: image.unwrap_or_default(),
                version: version_text
                    .as_deref()
                    .and_then(|v| version::parse_strict(v).ok()),
                version_text: version_text.filter(|v| !v.is_empty()),
                related_images: Vec::new(),
                provides: Vec::new(),
                requires_packages: Vec::new(),
                requires_gvks: Vec::new(),
                raw: None,
            });
    }

    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT operatorbundle_name, image FROM related_image
             WHERE image IS NOT NULL AND image != '' ORDER BY operatorbundle_name, image",
        )
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(&err)?;
    for row in rows {
        let (bundle, image) = row.map_err(&err)?;
        if let Some(b) = owner
            .get(&bundle)
            .and_then(|p| catalog.packages.get_mut(p))
            .and_then(|c| c.bundles.get_mut(&bundle))
        {
            b.related_images.push(RelatedImage {
                name: String::new(),
                image,
            });
        }
    }

    let present = index.tables()?;
    for (table, provides) in [("api_provider", true), ("api_requirer", false)] {
        if !present.contains(table) {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!(
                "SELECT DISTINCT operatorbundle_name, group_name, version, kind FROM {table}
                 ORDER BY operatorbundle_name, group_name, version, kind"
            ))
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Gvk {
                        group: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        version: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        kind: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    },
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (bundle, gvk) = row.map_err(&err)?;
            if let Some(b) = owner
                .get(&bundle)
                .and_then(|p| catalog.packages.get_mut(p))
                .and_then(|c| c.bundles.get_mut(&bundle))
            {
                if provides {
                    b.provides.push(gvk);
                } else {
                    b.requires_gvks.push(gvk);
                }
            }
        }
    }
    Ok(catalog)
}

/// The kept package names of `filter` on `catalog` (all of them when it lists none),
/// refusing what a SQLite catalog cannot do.
fn kept_packages(catalog: &Catalog, filter: &Filter) -> Result<Vec<String>, SqliteError> {
    let mut names = BTreeSet::new();
    for p in &filter.packages {
        if !names.insert(p.name.clone()) {
            return Err(SqliteError::DuplicatePackage {
                package: p.name.clone(),
            });
        }
        let what = if !p.channels.is_empty() {
            Some("selecting channels")
        } else if p.range.is_some() {
            Some("minVersion/maxVersion")
        } else if p.default_channel.is_some() {
            Some("defaultChannel")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(SqliteError::NotPackageLevel {
                package: p.name.clone(),
                what,
            });
        }
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !catalog.packages.contains_key(*n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(SqliteError::MissingPackages {
            missing,
            available: catalog.package_names(),
        });
    }
    if names.is_empty() {
        return Ok(catalog.package_names());
    }
    Ok(names.into_iter().collect())
}

/// The selection from a SQLite `catalog`: every bundle of each package `filter` lists
/// (`full` changes nothing: a prune keeps whole packages); no packages keeps the catalog
/// as it is (`unchanged`). The images are every kept bundle's `bundlepath` and related
/// images.
pub fn select(mut catalog: Catalog, filter: &Filter) -> Result<Filtered, SqliteError> {
    let kept: BTreeSet<String> = kept_packages(&catalog, filter)?.into_iter().collect();
    catalog.packages.retain(|name, _| kept.contains(name));
    let images = crate::filter::images(&catalog)?;
    Ok(Filtered {
        catalog,
        unchanged: filter.packages.is_empty(),
        warnings: Vec::new(),
        dependencies: Vec::new(),
        images,
    })
}

/// Writes to `dest` a copy of `index` holding only `packages` (`opm index prune -p`),
/// every row that refers to another package deleted, then `VACUUM`ed so no free page is
/// left. `dest` is written through a temporary beside it and renamed; a symlink there is
/// refused. The same database and packages give the same bytes.
pub fn prune(index: &Index, packages: &[String], dest: &Path) -> Result<(), SqliteError> {
    let catalog = read(index)?;
    let mut filter = Filter::default();
    for p in packages {
        filter.packages.push(crate::filter::PackageFilter {
            name: p.clone(),
            ..Default::default()
        });
    }
    let kept = kept_packages(&catalog, &filter)?;
    let werr = |source: std::io::Error| SqliteError::Write {
        path: dest.to_path_buf(),
        source,
    };
    durable_file::refuse_symlink(dest).map_err(werr)?;
    let rerr = |source: std::io::Error| SqliteError::Copy {
        path: index.path.clone(),
        source,
    };
    // Streamed: a real index.db is hundreds of MB.
    let mut original = std::fs::File::open(&index.path).map_err(rerr)?;
    let mut partial = durable_file::Partial::create(dest).map_err(werr)?;
    std::io::copy(&mut original, partial.file()).map_err(werr)?;
    partial.flush().map_err(werr)?;
    {
        let perr = |source: rusqlite::Error| SqliteError::Prune {
            path: dest.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            partial.path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(perr)?;
        // The journal stays in memory: the temporary is thrown away on failure anyway,
        // and no -journal file is left beside it.
        conn.pragma_update(None, "journal_mode", "MEMORY")
            .map_err(perr)?;
        // Deletes are explicit, not left to ON DELETE CASCADE, whose reach varies with
        // the migration the database was built by.
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(perr)?;
        delete_other_packages(&conn, &kept).map_err(perr)?;
        conn.execute_batch("VACUUM").map_err(perr)?;
        conn.close().map_err(|(_, e)| perr(e))?;
    }
    partial.commit().map_err(werr)
}

fn delete_other_packages(conn: &Connection, kept: &[String]) -> rusqlite::Result<()> {
    let present = tables(conn)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch("CREATE TEMP TABLE ferry_kept(name TEXT PRIMARY KEY)")?;
    for k in kept {
        tx.execute("INSERT INTO ferry_kept(name) VALUES (?1)", [k])?;
    }
    // The bundles kept: those the kept packages' channels list. Every other bundle goes,
    // a stranded one (in no channel) too, as opm's RemoveStrandedBundles does after
    // RemovePackage; so do rows naming a bundle that is not there.
    tx.execute_batch(
        "CREATE TEMP TABLE ferry_bundles(name TEXT PRIMARY KEY);
         INSERT OR IGNORE INTO ferry_bundles(name)
           SELECT operatorbundle_name FROM channel_entry
           WHERE package_name IN (SELECT name FROM ferry_kept)
             AND operatorbundle_name IS NOT NULL;",
    )?;
    let bundle_tables = [
        ("related_image", "operatorbundle_name"),
        ("api_provider", "operatorbundle_name"),
        ("api_requirer", "operatorbundle_name"),
        ("properties", "operatorbundle_name"),
        ("dependencies", "operatorbundle_name"),
        ("deprecated", "operatorbundle_name"),
        ("operatorbundle", "name"),
    ];
    for (table, column) in bundle_tables {
        if present.contains(table) {
            tx.execute_batch(&format!(
                "DELETE FROM {table}
                 WHERE {column} IS NULL OR {column} NOT IN (SELECT name FROM ferry_bundles)"
            ))?;
        }
    }
    for (table, column) in [
        ("channel_entry", "package_name"),
        ("channel", "package_name"),
        ("package", "name"),
    ] {
        tx.execute_batch(&format!(
            "DELETE FROM {table} WHERE {column} NOT IN (SELECT name FROM ferry_kept)"
        ))?;
    }
    if present.contains("api") {
        let mut users = Vec::new();
        for t in ["api_provider", "api_requirer"] {
            if present.contains(t) {
                users.push(format!(
                    "EXISTS (SELECT 1 FROM {t} u WHERE u.group_name = api.group_name
                     AND u.version = api.version AND u.kind = api.kind)"
                ));
            }
        }
        let keep = if users.is_empty() {
            "0".to_string()
        } else {
            users.join(" OR ")
        };
        tx.execute_batch(&format!("DELETE FROM api WHERE NOT ({keep})"))?;
    }
    tx.execute_batch("DROP TABLE temp.ferry_kept; DROP TABLE temp.ferry_bundles;")?;
    tx.commit()
}

#[cfg(test)]
pub(crate) mod tests;
