//! Reading the catalog from the one layer that holds it.
//!
//! Which layer: the image config's `history` is matched to the layers (each entry that is
//! not an `empty_layer` stands for the next layer); the layers whose entry adds the path
//! (`ADD … in /configs`, opm's generated Dockerfile) are tried first, then those that
//! otherwise mention it, then the others, each group from the top down (a layer above
//! those named whose entry is empty goes first: see [`Child::search_order`]). The first
//! holding files under the path is the one. A layer tried is read only until its first
//! such file, then read again for the catalog; layers not needed are never opened
//! (through the pull cache: never fetched).
//!
//! Limitation, as in the design (only one layer may hold the catalog): a layer above the
//! one found that also holds the path is not looked for here; [`super::rebuild`], which
//! reads every layer anyway, refuses such an image ([`ImageError::SpreadOver`]).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci::manifest::{Descriptor, ImageManifest, Index, ManifestKind};
use oci::Digest;
use serde::Deserialize;

use super::content::components;
use super::layers::{self, place, Place, BUFFER, WHITEOUT};
use super::{Blobs, Content, ImageError, Kind, Source};
use crate::fbc::{RawBundles, ReadOptions};
use crate::model::Catalog;

/// Manifests and indexes larger than this are refused (registries refuse more than 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;
/// Image configs larger than this are refused (a long history is a few hundred kB).
const CONFIG_LIMIT: u64 = 16 << 20;

/// A catalog as read from its image.
#[derive(Debug)]
pub struct Loaded {
    pub kind: Kind,
    pub content: Content,
    /// The child manifest read (for an index: linux/amd64 when kept, else the first kept
    /// child), and its config digest.
    pub manifest: Digest,
    pub config: Digest,
    /// The layer the catalog was read from (its digest as stored).
    pub layer: Digest,
    /// Read without raw bundles (memory follows the selection: see [`fill_raw`]).
    pub catalog: Catalog,
    /// SQLite: the database, extracted under the scratch directory given to [`read`].
    pub database: Option<PathBuf>,
}

/// Reads the catalog of `source`: its config's labels, then the layers in the order that
/// finds the content soonest (history naming the path first, then from the top down),
/// opening each through `blobs` until one holds files under the path. FBC objects are read
/// without raw bundles; a SQLite database is written to a file under `scratch` and read.
pub fn read(blobs: &dyn Blobs, source: &Source<'_>, scratch: &Path) -> Result<Loaded, ImageError> {
    let top = top(blobs, source)?;
    let chosen = top
        .children
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .unwrap_or(&top.children[0]);
    let child = child(blobs, &chosen.digest, chosen.media_type.as_deref())?;
    let content = child.content.clone();
    for i in child.search_order() {
        if child.manifest.layers[i].is_foreign() {
            continue; // fetched from its URLs, never from the registry: no catalog there
        }
        let layer = &child.manifest.layers[i].digest;
        match content.kind {
            Kind::Fbc => {
                if !holds_catalog_files(layers::open(blobs, layer)?, layer, &content)? {
                    continue;
                }
                let stream = layers::open(blobs, layer)?;
                let catalog = crate::fbc::read_tar(
                    stream,
                    &format!("/{}", content.path),
                    ReadOptions {
                        raw_bundles: RawBundles::None,
                    },
                )
                .map_err(|source| in_layer(layer, source))?;
                return Ok(Loaded {
                    kind: Kind::Fbc,
                    content,
                    manifest: chosen.digest,
                    config: child.manifest.config.digest,
                    layer: *layer,
                    catalog,
                    database: None,
                });
            }
            Kind::Sqlite => {
                let dest = scratch.join(format!("index-{}.db", &layer.hex()[..16]));
                if !extract_file(layers::open(blobs, layer)?, layer, &content.path, &dest)? {
                    continue;
                }
                let index = crate::sqlite::open(&dest)?;
                let catalog = crate::sqlite::read(&index)?;
                return Ok(Loaded {
                    kind: Kind::Sqlite,
                    content,
                    manifest: chosen.digest,
                    config: child.manifest.config.digest,
                    layer: *layer,
                    catalog,
                    database: Some(dest),
                });
            }
        }
    }
    Err(ImageError::NoContent {
        digest: chosen.digest,
        path: format!("/{}", content.path),
    })
}

/// Gives the bundles of `catalog` (a selection of `loaded.catalog`) their raw objects,
/// reading `loaded.layer` once more. SQLite: nothing to do.
pub fn fill_raw(
    blobs: &dyn Blobs,
    loaded: &Loaded,
    catalog: &mut Catalog,
) -> Result<(), ImageError> {
    if loaded.kind == Kind::Sqlite {
        return Ok(());
    }
    let stream = layers::open(blobs, &loaded.layer)?;
    crate::fbc::fill_raw_tar(stream, &format!("/{}", loaded.content.path), catalog)
        .map_err(|source| in_layer(&loaded.layer, source))
}

fn in_layer(layer: &Digest, source: crate::fbc::ReadError) -> ImageError {
    ImageError::Catalog {
        layer: *layer,
        source: Box::new(source),
    }
}

/// Whether the tar stream holds a file (not a directory, not a whiteout) under the
/// catalog path; read only as far as the first.
fn holds_catalog_files(
    layer: impl Read,
    digest: &Digest,
    content: &Content,
) -> Result<bool, ImageError> {
    let err = |e| layers::tar_error(digest, e);
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries().map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path().map_err(err)?;
        let path = path.to_string_lossy();
        let comps = components(&path);
        if comps.contains(&"..")
            || comps.last().is_none_or(|n| n.starts_with(WHITEOUT))
            || entry.header().entry_type().is_dir()
        {
            continue;
        }
        if place(&comps, false, content) == Place::Catalog {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes the regular file at `path` in the tar stream to `dest`; false when the stream
/// has none. Links are not followed: the database must be the file itself. A path written
/// twice is the later entry, as extraction leaves it (and as `read_tar` reads the FBC).
fn extract_file(
    layer: impl Read,
    digest: &Digest,
    path: &str,
    dest: &Path,
) -> Result<bool, ImageError> {
    let err = |e| layers::tar_error(digest, e);
    let wanted = components(path);
    let mut archive = tar::Archive::new(layer);
    let mut found = false;
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let comps_text = entry.path().map_err(err)?.to_string_lossy().into_owned();
        if components(&comps_text) != wanted {
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(ImageError::Layer {
                digest: *digest,
                what: format!(
                    "/{path} is a {}, not a regular file: ferry reads the database file itself (follows no link)",
                    if kind.is_symlink() || kind.is_hard_link() {
                        "link"
                    } else if kind.is_dir() {
                        "directory"
                    } else {
                        "special file"
                    }
                ),
            });
        }
        let io_err = |source| ImageError::Io {
            path: dest.to_path_buf(),
            source,
        };
        // The header's size bounds what the entry gives (a gzip bomb cannot write more),
        // but it is the registry's to choose: a database larger than the scratch
        // directory's free space is refused before a byte is written, not left to fill
        // the disk the cache shares with everything else.
        let size = entry.header().size().map_err(err)?;
        let free = durable_file::free_space(dest.parent().unwrap_or(dest)).map_err(io_err)?;
        if size.saturating_add(SCRATCH_MARGIN) > free {
            return Err(ImageError::NoRoom {
                layer: *digest,
                path: format!("/{path}"),
                size,
                dir: dest.parent().unwrap_or(dest).to_path_buf(),
                free,
            });
        }
        let mut partial = durable_file::Partial::create(dest).map_err(io_err)?;
        copy(&mut entry, &mut partial).map_err(|e| match e {
            CopyError::Read(e) => err(e),
            CopyError::Write(e) => io_err(e),
        })?;
        partial.commit().map_err(io_err)?;
        found = true;
    }
    Ok(found)
}

/// Room left beside an extracted database (the pruned copy is written beside it, and the
/// filesystem is shared with the cache's blobs).
const SCRATCH_MARGIN: u64 = 64 << 20;

pub(super) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy` with a large buffer, telling a read failure from a write failure.
pub(super) fn copy(from: &mut dyn Read, to: &mut dyn io::Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// A blob small enough to hold (a manifest or a config), refused past `limit`.
pub(super) fn small(blobs: &dyn Blobs, digest: &Digest, limit: u64) -> Result<Vec<u8>, ImageError> {
    let blob = |source| ImageError::Blob {
        digest: *digest,
        source,
    };
    let mut bytes = Vec::new();
    blobs
        .open(digest)
        .map_err(blob)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(blob)?;
    if bytes.len() as u64 > limit {
        return Err(ImageError::Malformed {
            digest: *digest,
            what: format!("larger than {limit} bytes, more than a manifest or config can be"),
        });
    }
    Ok(bytes)
}

/// The image named by a [`Source`]: its top manifest or index, and the children taken.
pub(super) struct Top {
    pub kind: ManifestKind,
    /// The index, when the top is one.
    pub index: Option<Index>,
    /// The children taken, in index order; for a single manifest, itself.
    pub children: Vec<Descriptor>,
}

fn malformed(digest: &Digest, what: impl Into<String>) -> ImageError {
    ImageError::Malformed {
        digest: *digest,
        what: what.into(),
    }
}

/// The kind of manifest `bytes` are: as `media_type` says when it names one of the four,
/// else from the bytes.
fn kind_of(
    digest: &Digest,
    media_type: Option<&str>,
    bytes: &[u8],
) -> Result<ManifestKind, ImageError> {
    if let Some(kind) = media_type.and_then(ManifestKind::from_media_type) {
        return Ok(kind);
    }
    oci::manifest::guess_kind(bytes).map_err(|e| malformed(digest, e.to_string()))
}

pub(super) fn top(blobs: &dyn Blobs, source: &Source<'_>) -> Result<Top, ImageError> {
    let digest = &source.digest;
    let bytes = small(blobs, digest, MANIFEST_LIMIT)?;
    let kind = kind_of(digest, Some(source.media_type), &bytes)?;
    if !kind.is_index() {
        return Ok(Top {
            kind,
            index: None,
            children: vec![Descriptor {
                media_type: Some(kind.media_type().to_string()),
                digest: *digest,
                size: Some(bytes.len() as u64),
                urls: None,
                annotations: Default::default(),
                platform: None,
                artifact_type: None,
            }],
        });
    }
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        malformed(
            digest,
            format!("not an image index ({}): {e}", kind.media_type()),
        )
    })?;
    let children: Vec<Descriptor> = match source.kept {
        None => index.manifests.clone(),
        Some(kept) => {
            if let Some(missing) = kept
                .iter()
                .find(|k| !index.manifests.iter().any(|m| m.digest == **k))
            {
                return Err(malformed(
                    digest,
                    format!("the index has no child {missing} (asked to keep it)"),
                ));
            }
            index
                .manifests
                .iter()
                .filter(|m| kept.contains(&m.digest))
                .cloned()
                .collect()
        }
    };
    if children.is_empty() {
        return Err(malformed(digest, "the index lists no image to read"));
    }
    if let Some(d) = children.iter().find(|d| {
        d.media_type
            .as_deref()
            .is_some_and(|t| ManifestKind::from_media_type(t).is_some_and(ManifestKind::is_index))
    }) {
        return Err(malformed(
            digest,
            format!(
                "its child {} is an index itself; a catalog image's index lists image manifests",
                d.digest
            ),
        ));
    }
    Ok(Top {
        kind,
        index: Some(index),
        children,
    })
}

/// One image of a catalog: its manifest, config (raw and read) and content.
pub(super) struct Child {
    pub kind: ManifestKind,
    pub manifest: ImageManifest,
    pub config: serde_json::Value,
    pub content: Content,
    /// The layer each `history` entry that is not an empty layer stands for, in order:
    /// None when the history does not match the layers.
    pub history: Option<Vec<HistoryEntry>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct HistoryEntry {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: Option<bool>,
}

impl Child {
    /// The order layers are tried in: those whose history adds something at the path
    /// (`ADD`/`COPY`, or ferry's own comment), then those whose history otherwise mentions
    /// it (opm's `RUN /bin/opm serve /configs --cache-only` layer holds the cache), then
    /// the others; each group from the top down. Layers above the highest one named so
    /// whose history says nothing (an empty `created_by`: appended by a tool such as
    /// oc-mirror, whose rebuild whites out `/configs` and adds a new one) come first, as
    /// the content they may hold replaces what is below.
    pub fn search_order(&self) -> Vec<usize> {
        let n = self.manifest.layers.len();
        let path = format!("/{}", self.content.path);
        // SQLite: opm's Dockerfile adds the database directory (`ADD database /database`).
        let parent = match self.content.kind {
            Kind::Sqlite => path
                .rsplit_once('/')
                .map(|(p, _)| p)
                .filter(|p| !p.is_empty()),
            Kind::Fbc => None,
        };
        let mentions = |t: &str| t.contains(&path) || parent.is_some_and(|p| t.contains(p));
        const UNKNOWN: u8 = 0;
        const ADDS: u8 = 1;
        const MENTIONS: u8 = 2;
        const OTHER: u8 = 3;
        let entries: Vec<Option<&HistoryEntry>> = (0..n)
            .map(|i| {
                self.history.as_ref().and_then(|history| {
                    history
                        .iter()
                        .filter(|h| h.empty_layer != Some(true))
                        .nth(i)
                })
            })
            .collect();
        let mut tiers: Vec<u8> = entries
            .iter()
            .map(|h| {
                let Some(h) = h else {
                    return OTHER;
                };
                let created_by = h.created_by.as_deref().unwrap_or_default();
                let adds = created_by
                    .split_whitespace()
                    .any(|w| w == "ADD" || w == "COPY");
                if (adds && mentions(created_by)) || h.comment.as_deref().is_some_and(mentions) {
                    ADDS
                } else if mentions(created_by) {
                    MENTIONS
                } else {
                    OTHER
                }
            })
            .collect();
        if let Some(named) = (0..n)
            .rev()
            .find(|&i| tiers[i] == ADDS || tiers[i] == MENTIONS)
        {
            for i in named + 1..n {
                let silent = entries[i].is_some_and(|h| {
                    h.created_by
                        .as_deref()
                        .unwrap_or_default()
                        .trim()
                        .is_empty()
                        && h.comment.as_deref().unwrap_or_default().trim().is_empty()
                });
                if silent {
                    tiers[i] = UNKNOWN;
                }
            }
        }
        let mut order: Vec<usize> = (0..n).rev().collect();
        // Stable: the top-down order is kept within each tier.
        order.sort_by_key(|&i| tiers[i]);
        order
    }
}

pub(super) fn child(
    blobs: &dyn Blobs,
    digest: &Digest,
    media_type: Option<&str>,
) -> Result<Child, ImageError> {
    let bytes = small(blobs, digest, MANIFEST_LIMIT)?;
    let kind = kind_of(digest, media_type, &bytes)?;
    if kind.is_index() {
        return Err(malformed(
            digest,
            "an index where an image manifest was expected",
        ));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
        malformed(
            digest,
            format!("not an image manifest ({}): {e}", kind.media_type()),
        )
    })?;
    let config_digest = manifest.config.digest;
    let config_bytes = small(blobs, &config_digest, CONFIG_LIMIT)?;
    let content = super::content_of(&config_bytes)
        .map_err(|what| malformed(&config_digest, what))?
        .ok_or(ImageError::NotACatalog { digest: *digest })?;
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| malformed(&config_digest, format!("not an image config: {e}")))?;
    let history: Option<Vec<HistoryEntry>> = config
        .get("history")
        .and_then(|h| serde_json::from_value::<Vec<HistoryEntry>>(h.clone()).ok())
        .filter(|h| {
            h.iter().filter(|e| e.empty_layer != Some(true)).count() == manifest.layers.len()
        });
    Ok(Child {
        kind,
        manifest,
        config,
        content,
        history,
    })
}
