//! The rebuilt catalog image: per platform of the original (the children kept), the
//! original layers minus those holding only catalog content or opm's cache, plus one new
//! layer holding only the new content; a new config (labels kept, `Cmd` without
//! `--cache-dir`, `rootfs.diff_ids` and `history` consistent), manifest and index.
//! Deterministic: the same original and the same new content give the same digest.
//!
//! Every layer of every child is scanned (its tar headers, [`super::layers`]): a layer
//! holding only the catalog path, opm's cache directory and the directories above them
//! is dropped; a kept layer that also holds some of them is whited out by the new layer
//! (`configs/.wh..wh..opq`: the directory's lower content is hidden, the new layer's
//! own files stay; `tmp/.wh.cache`: the cache directory is removed). More than one layer
//! holding files under the catalog path (not counting those a later layer's whiteout
//! hides) is refused ([`ImageError::SpreadOver`]). The new layer is built once and
//! shared by every child: the whiteouts any child needs are in it (a whiteout of what a
//! platform lacks removes nothing).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oci::manifest::{Descriptor, ManifestKind};
use oci::media_type::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP};
use oci::Digest;
use serde_json::{json, Value};

use super::layers::{self, Holds, OPAQUE, WHITEOUT};
use super::read::{self, Child};
use super::targz::{self, Data};
use super::{Blobs, Content, ImageError, Kind, Loaded, Sink, Source};
use crate::model::Catalog;

/// The content of the new layer.
pub enum NewContent<'a> {
    /// `configs/<package>/catalog.json` from [`crate::write()`] (bundles must have their
    /// raw objects: [`super::fill_raw`]).
    Fbc(&'a Catalog),
    /// The pruned database file ([`crate::sqlite::prune`]), put at the labelled path.
    Sqlite(&'a Path),
}

/// What [`rebuild`] made; every blob listed is in the sink or (original layers) in `blobs`.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The new top index (or manifest, when the original was a single manifest).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Every manifest of the new image, the top one first, then each child, with sizes.
    pub manifests: Vec<(Digest, u64)>,
    /// Every config and layer the new image needs, each once, with sizes (original
    /// layers kept, new configs, the new layer).
    pub blobs: Vec<(Digest, u64)>,
    /// Original layers left out, with why (`holds only /configs`, `holds only opm's cache
    /// /tmp/cache`), for the report.
    pub dropped_layers: Vec<(Digest, String)>,
    /// `os/arch[/variant]` of each child, in index order.
    pub platforms: Vec<String>,
}

/// The `opm serve` flags about its cache, removed from a rebuilt FBC image's command line
/// (the cache is dropped with its layer; opm serve then builds its own at start).
const CACHE_FLAGS: [&str; 3] = ["--cache-dir", "--cache-only", "--cache-enforce-integrity"];

/// Builds the rebuilt image of `source` (read as `loaded`) with `new` as its catalog,
/// writing the new blobs through `sink`. `history` is the `created_by` of the new layer's
/// history entry (it names the kept packages).
pub fn rebuild(
    blobs: &dyn Blobs,
    sink: &dyn Sink,
    source: &Source<'_>,
    loaded: &Loaded,
    new: NewContent<'_>,
    history: &str,
) -> Result<Rebuilt, ImageError> {
    let given = match new {
        NewContent::Fbc(_) => Kind::Fbc,
        NewContent::Sqlite(_) => Kind::Sqlite,
    };
    if given != loaded.kind {
        return Err(ImageError::ContentKind {
            digest: source.digest,
            image: loaded.kind,
            given,
        });
    }
    let top = read::top(blobs, source)?;
    let mut children = Vec::new();
    for d in &top.children {
        let child = read::child(blobs, &d.digest, d.media_type.as_deref())?;
        if child.content.kind != loaded.kind || child.content.path != loaded.content.path {
            return Err(ImageError::Malformed {
                digest: d.digest,
                what: format!(
                    "its config labels its catalog {:?} at /{}, the image read ({}) at /{} ({:?}); the platforms of a catalog image hold one catalog",
                    child.content.kind, child.content.path, loaded.manifest, loaded.content.path, loaded.kind
                ),
            });
        }
        children.push((d, child));
    }
    let holds = scan_all(blobs, &children)?;

    // What each child keeps, and the whiteouts the new layer needs for all of them.
    let path = &loaded.content.path;
    let mut plans = Vec::new();
    let mut opaque = false;
    let mut cache_whiteouts = BTreeSet::new();
    let mut dropped_layers: Vec<(Digest, String)> = Vec::new();
    for (d, child) in &children {
        let content = &child.content;
        let mut holding: Vec<Digest> = Vec::new();
        let mut kept = Vec::new();
        for (i, layer) in child.manifest.layers.iter().enumerate() {
            let Some(h) = holds.get(&(layer.digest, content.cache_dir.clone())) else {
                kept.push(i); // foreign: not read, kept as it is
                continue;
            };
            if h.hides_catalog {
                holding.clear();
            }
            if h.catalog_files {
                holding.push(layer.digest);
            }
            if h.only_catalog_or_cache() {
                if !dropped_layers.iter().any(|(g, _)| *g == layer.digest) {
                    dropped_layers.push((layer.digest, why_dropped(h, content)));
                }
                continue;
            }
            kept.push(i);
            // A directory entry or a whiteout under the path hides nothing of the new
            // layer's; a file would show through beside the new catalog.
            if h.catalog_files && content.kind == Kind::Fbc {
                opaque = true;
            }
            if h.cache {
                if let Some(c) = &content.cache_dir {
                    cache_whiteouts.insert(whiteout_of(c));
                }
            }
        }
        if holding.len() > 1 {
            return Err(ImageError::SpreadOver {
                digest: d.digest,
                path: format!("/{path}"),
                layers: holding,
            });
        }
        // The catalog selected from must be the one the image serves: read() stops at the
        // first layer holding files there, which a layer above may have removed (a
        // whiteout) or replaced.
        if d.digest == loaded.manifest && !holding.contains(&loaded.layer) {
            return Err(ImageError::Hidden {
                digest: d.digest,
                path: format!("/{path}"),
                layer: loaded.layer,
                serving: match holding.first() {
                    Some(l) => format!("the catalog it serves is in layer {l}"),
                    None => "the image serves none".to_string(),
                },
            });
        }
        plans.push(kept);
    }

    // The new layer, once.
    let mut whiteouts: Vec<String> = cache_whiteouts.into_iter().collect();
    if opaque {
        whiteouts.push(format!("{path}/{OPAQUE}"));
    }
    let written;
    let files: Vec<(String, Data<'_>)> = match new {
        NewContent::Fbc(catalog) => {
            written = crate::write::write(catalog)?;
            written
                .iter()
                .map(|f| {
                    // write() names them under configs/; the label may name another place.
                    let rel = f.path.strip_prefix("configs/").unwrap_or(&f.path);
                    (format!("{path}/{rel}"), Data::Bytes(&f.bytes))
                })
                .collect()
        }
        NewContent::Sqlite(db) => vec![(path.clone(), Data::File(db))],
    };
    let layer = targz::build(&files, &whiteouts)?;
    drop(files);
    put(sink, &layer.digest, &layer.gz)?;
    let layer_size = layer.gz.len() as u64;

    let mut manifests = Vec::new();
    let mut all_blobs: Vec<(Digest, u64)> = Vec::new();
    let mut add_blob = |d: Digest, size: u64| {
        if !all_blobs.iter().any(|(g, _)| *g == d) {
            all_blobs.push((d, size));
        }
    };
    let mut new_children = Vec::new();
    let mut platforms = Vec::new();
    for ((d, child), kept) in children.iter().zip(&plans) {
        let config = new_config(child, kept, &layer.diff_id, history, &d.digest)?;
        let config_bytes = serde_json::to_vec(&config).expect("a JSON value serializes");
        let config_digest = Digest::of(&config_bytes);
        put(sink, &config_digest, &config_bytes)?;
        add_blob(config_digest, config_bytes.len() as u64);

        let mut manifest = child.manifest.clone();
        manifest.config.digest = config_digest;
        manifest.config.size = Some(config_bytes.len() as u64);
        let mut layers_out = Vec::new();
        for &i in kept {
            let l = &child.manifest.layers[i];
            let size = l.size.ok_or_else(|| ImageError::Malformed {
                digest: d.digest,
                what: format!("its layer {} has no size", l.digest),
            })?;
            if !l.is_foreign() {
                add_blob(l.digest, size);
            }
            layers_out.push(l.clone());
        }
        let layer_type = match child.kind {
            ManifestKind::DockerManifest => DOCKER_LAYER_GZIP,
            _ => OCI_LAYER_GZIP,
        };
        layers_out.push(Descriptor {
            media_type: Some(layer_type.to_string()),
            digest: layer.digest,
            size: Some(layer_size),
            urls: None,
            annotations: Default::default(),
            platform: None,
            artifact_type: None,
        });
        add_blob(layer.digest, layer_size);
        manifest.layers = layers_out;
        let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let digest = Digest::of(&bytes);
        put(sink, &digest, &bytes)?;
        manifests.push((digest, bytes.len() as u64));
        platforms.push(platform_of(d, &child.config));
        let mut descriptor = (*d).clone();
        descriptor.digest = digest;
        descriptor.size = Some(bytes.len() as u64);
        new_children.push(descriptor);
    }

    let (digest, media_type, size) = match top.index {
        None => {
            let (digest, size) = manifests[0];
            (digest, top.kind.media_type().to_string(), size)
        }
        Some(mut index) => {
            index.manifests = new_children;
            let bytes = serde_json::to_vec(&index).expect("an index serializes");
            let digest = Digest::of(&bytes);
            put(sink, &digest, &bytes)?;
            manifests.insert(0, (digest, bytes.len() as u64));
            (
                digest,
                top.kind.media_type().to_string(),
                bytes.len() as u64,
            )
        }
    };
    Ok(Rebuilt {
        digest,
        media_type,
        size,
        manifests,
        blobs: all_blobs,
        dropped_layers,
        platforms,
    })
}

fn put(sink: &dyn Sink, digest: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
    sink.put(digest, bytes).map_err(|source| ImageError::Blob {
        digest: *digest,
        source,
    })
}

fn why_dropped(h: &Holds, content: &Content) -> String {
    let cache = content.cache_dir.as_deref().unwrap_or_default();
    match (h.catalog, h.cache) {
        (true, true) => format!("holds only /{} and opm's cache /{cache}", content.path),
        (true, false) => format!("holds only /{}", content.path),
        _ => format!("holds only opm's cache /{cache}"),
    }
}

/// `<parent>/.wh.<name>` of a relative path.
fn whiteout_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/{WHITEOUT}{name}"),
        None => format!("{WHITEOUT}{path}"),
    }
}

/// Scans every distinct layer of the children (two at a time: the machine's cores,
/// and decompression is the cost). Foreign layers are not read.
fn scan_all(
    blobs: &dyn Blobs,
    children: &[(&Descriptor, Child)],
) -> Result<HashMap<(Digest, Option<String>), Holds>, ImageError> {
    let mut jobs: Vec<(Digest, &Content)> = Vec::new();
    for (_, child) in children {
        for l in &child.manifest.layers {
            if l.is_foreign() {
                continue;
            }
            if !jobs
                .iter()
                .any(|(d, c)| *d == l.digest && c.cache_dir == child.content.cache_dir)
            {
                jobs.push((l.digest, &child.content));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Holds, ImageError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((digest, content)) = jobs.get(i) else {
            return;
        };
        let r = layers::open(blobs, digest).and_then(|s| layers::scan(s, digest, content));
        let failed = r.is_err();
        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
        if failed {
            // The others need not be read: the first error in job order is reported.
            next.store(jobs.len(), Ordering::Relaxed);
            return;
        }
    };
    std::thread::scope(|s| {
        if jobs.len() > 1 {
            s.spawn(work);
        }
        work();
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = HashMap::new();
    // In job order: the first error is reported; a job left undone (None) comes only
    // after an error, which is returned first.
    for ((digest, content), r) in jobs.iter().zip(results).filter_map(|(j, r)| Some((j, r?))) {
        out.insert((*digest, content.cache_dir.clone()), r?);
    }
    Ok(out)
}

/// The child's config for the kept layers plus the new one.
fn new_config(
    child: &Child,
    kept: &[usize],
    diff_id: &Digest,
    history: &str,
    manifest: &Digest,
) -> Result<Value, ImageError> {
    let config_digest = child.manifest.config.digest;
    let malformed = |what: String| ImageError::Malformed {
        digest: config_digest,
        what,
    };
    let mut config = child.config.clone();
    let n = child.manifest.layers.len();
    let Some(obj) = config.as_object_mut() else {
        return Err(malformed("the config is not a JSON object".into()));
    };

    // rootfs.diff_ids: position-matched to the manifest's layers.
    let diff_ids = obj
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("it has no rootfs.diff_ids".into()))?;
    if diff_ids.len() != n {
        return Err(malformed(format!(
            "rootfs.diff_ids has {} entries, the manifest {manifest} has {n} layers",
            diff_ids.len()
        )));
    }
    let mut new_ids: Vec<Value> = kept.iter().map(|&i| diff_ids[i].clone()).collect();
    new_ids.push(Value::String(diff_id.to_string()));
    obj["rootfs"]["diff_ids"] = Value::Array(new_ids);

    // history: each entry that is not an empty layer stands for the next layer.
    let created = obj.get("created").cloned();
    if let Some(entries) = obj.get("history").and_then(Value::as_array).cloned() {
        let is_empty = |e: &Value| e.get("empty_layer").and_then(Value::as_bool) == Some(true);
        if entries.iter().filter(|e| !is_empty(e)).count() == n {
            let mut out = Vec::new();
            let mut layer = 0;
            for e in entries {
                if is_empty(&e) {
                    out.push(e);
                    continue;
                }
                if kept.contains(&layer) {
                    out.push(e);
                }
                layer += 1;
            }
            let mut entry = json!({
                "created_by": history,
                // read() tries first the layers whose history names the path: this one.
                "comment": format!("ferry: the catalog at /{}", child.content.path),
            });
            if let Some(created) = created {
                entry["created"] = created;
            }
            out.push(entry);
            obj.insert("history".into(), Value::Array(out));
        } else {
            // The history does not say which entry is which layer, so no entry can be
            // removed with its layer; a history that lies about the layers is worse than
            // none (image-spec: history is optional).
            obj.remove("history");
        }
    }

    if child.content.kind == Kind::Fbc {
        if let Some(run) = obj.get_mut("config").and_then(Value::as_object_mut) {
            for key in ["Cmd", "Entrypoint"] {
                if let Some(args) = run.get_mut(key).and_then(Value::as_array_mut) {
                    *args = without_cache_flags(args);
                }
            }
        }
    }
    Ok(config)
}

/// `args` without opm serve's cache flags (`--cache-dir X`, `--cache-dir=X`,
/// `--cache-only`, `--cache-enforce-integrity[=B]`).
fn without_cache_flags(args: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let Some(s) = a.as_str() else {
            out.push(a.clone());
            continue;
        };
        let flag = CACHE_FLAGS
            .iter()
            .find(|f| s == **f || s.strip_prefix(**f).is_some_and(|r| r.starts_with('=')));
        match flag {
            // Only --cache-dir takes its value as the next argument; the others are
            // booleans, whose value must be joined with `=`.
            Some(&f) if s == f && f == super::content::CACHE_DIR_FLAG => skip_next = true,
            Some(_) => {}
            None => out.push(a.clone()),
        }
    }
    out
}

fn platform_of(d: &Descriptor, config: &Value) -> String {
    let (os, arch, variant) = match &d.platform {
        Some(p) => (p.os.clone(), p.architecture.clone(), p.variant.clone()),
        None => {
            let s = |k: &str| config.get(k).and_then(Value::as_str).map(str::to_string);
            (
                s("os").unwrap_or_default(),
                s("architecture").unwrap_or_default(),
                s("variant"),
            )
        }
    };
    match variant.filter(|v| !v.is_empty()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_flags_are_removed_with_their_values() {
        let args: Vec<Value> = serde_json::from_str(
            r#"["serve", "/configs", "--cache-dir", "/tmp/cache", "--cache-only", "--cache-enforce-integrity=false",
                "--cache-dir=/x", "--port", "50051", "--cache-enforce-integrity", "--cache-directory-like=1"]"#,
        )
        .unwrap();
        let out = without_cache_flags(&args);
        let out: Vec<&str> = out.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(
            out,
            [
                "serve",
                "/configs",
                "--port",
                "50051",
                "--cache-directory-like=1"
            ]
        );
        assert_eq!(whiteout_of("tmp/cache"), "tmp/.wh.cache");
        assert_eq!(whiteout_of("cache"), ".wh.cache");
    }
}
