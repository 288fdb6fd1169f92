//! `extract`: every blob streamed out of its chunks (each chunk checked against its signed
//! table, each blob against its digest) into the layouts the `mirror` crate writes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ferry_format::bundle::Bundle;
use ferry_format::manifest::{BundleManifest, TreeEntry};

use crate::cli::Layout;

pub fn extract(bundle: &Bundle, to: &Path, layout: Layout) -> Result<(), String> {
    let missing = bundle.missing_volumes();
    if !missing.is_empty() {
        return Err(format!(
            "bundle {} has {} volumes; volume(s) {} are not given — extract needs them all",
            bundle.manifest.bundle_id,
            bundle.manifest.volume_count,
            ferry_format::bundle::list(&missing)
        ));
    }
    let m: &BundleManifest = &bundle.manifest;
    if m.is_delta() {
        let left = m
            .blobs
            .iter()
            .filter(|b| b.encoding == ferry_format::manifest::Encoding::Base)
            .count();
        return Err(format!(
            "bundle {} is a delta bundle: {left} blob(s) are left to its base (a registry that already holds them), so it cannot be extracted on its own; push it into that registry instead",
            m.bundle_id
        ));
    }
    let index_of: BTreeMap<String, u32> = m
        .blobs
        .iter()
        .enumerate()
        .map(|(i, b)| (b.digest.to_string(), i as u32))
        .collect();
    let total: u64 = m.blobs.iter().map(|b| b.size).fold(0, u64::saturating_add);
    let bar = progress::Progress::new(progress::Mode::detect(false, false), "extract", total);
    let open = |digest: &str| -> Result<Box<dyn Read + '_>, String> {
        let i = *index_of
            .get(digest)
            .ok_or_else(|| format!("blob {digest} is not in the bundle"))?;
        let reader = bundle.open_blob(i).map_err(|e| e.to_string())?;
        Ok(Box::new(Counted {
            inner: reader,
            bar: &bar,
        }))
    };
    match layout {
        Layout::Original => {
            let tree: Vec<mirror::TreeEntry> = m
                .tree
                .iter()
                .map(|e| match e {
                    TreeEntry::Dir { path } => mirror::TreeEntry::Dir { path: path.clone() },
                    TreeEntry::File { path, blob, mode } => {
                        let b = &m.blobs[*blob as usize];
                        mirror::TreeEntry::File {
                            path: path.clone(),
                            digest: b.digest.to_string(),
                            size: b.size,
                            mode: *mode,
                            source: Default::default(),
                        }
                    }
                    TreeEntry::Symlink { path, target } => mirror::TreeEntry::Symlink {
                        path: path.clone(),
                        target: target.clone(),
                    },
                    TreeEntry::Link { path, target } => mirror::TreeEntry::HardLink {
                        path: path.clone(),
                        target: target.clone(),
                    },
                })
                .collect();
            mirror::write_tree(to, &tree, open).map_err(|e| e.to_string())
        }
        Layout::Oci => {
            let images: Vec<mirror::Image> = m
                .images
                .iter()
                .map(|img| mirror::Image {
                    repository: img.repository.clone(),
                    tags: img.tags.clone(),
                    digest: img.digest.to_string(),
                    media_type: img.media_type.clone(),
                    source: img.source.clone(),
                    blobs: img
                        .blobs
                        .iter()
                        .map(|&b| m.blobs[b as usize].digest.to_string())
                        .collect(),
                })
                .collect();
            let types: BTreeMap<String, String> = m
                .blobs
                .iter()
                .filter_map(|b| Some((b.digest.to_string(), b.media_type.clone()?)))
                .collect();
            let sizes: BTreeMap<String, u64> = m
                .blobs
                .iter()
                .map(|b| (b.digest.to_string(), b.size))
                .collect();
            // The index written must be the one that was signed (SPEC.md §6.3).
            let rebuilt =
                mirror::oci_index_json(&images, &types, &sizes).map_err(|e| e.to_string())?;
            let signed = bundle
                .volumes
                .values()
                .next()
                .map(|v| v.index_bytes.as_slice());
            if signed != Some(rebuilt.as_slice()) {
                return Err("the OCI index rebuilt from the bundle manifest differs from the signed ferry/index.json; this ferry cannot extract this bundle as an OCI layout (use --layout original)".into());
            }
            mirror::write_oci_layout(to, &images, &types, &sizes, open).map_err(|e| e.to_string())
        }
    }
}

/// Counts what is read, for the progress display.
struct Counted<'a, R> {
    inner: R,
    bar: &'a progress::Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }
}
