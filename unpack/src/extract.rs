//! `extract`: every blob streamed out of its chunks (each chunk checked against its signed
//! table, each blob against its digest) into the layouts the `mirror` crate writes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use format_spec::bundle::{list, Bundle};
use format_spec::manifest::{BundleManifest, TreeEntry};
use format_spec::Digest;

use crate::cli::Layout;

/// Why a bundle cannot be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("bundle {bundle} has {volume_count} volumes; volume(s) {} are not given — extract needs them all", list(.missing))]
    VolumesMissing {
        bundle: Digest,
        volume_count: u32,
        missing: Vec<u32>,
    },
    #[error("bundle {bundle} is a delta bundle: {left} blob(s) are left to its base (a registry that already holds them), so it cannot be extracted on its own; push it into that registry instead")]
    Delta { bundle: Digest, left: usize },
    #[error("the OCI index rebuilt from the bundle manifest differs from the signed ferry/index.json; this ferry cannot extract this bundle as an OCI layout (use --layout original)")]
    IndexDiffers,
    /// Writing the layout failed, or a blob read from the volumes did not check.
    #[error(transparent)]
    Write(#[from] mirror::MirrorError),
}

pub fn extract(bundle: &Bundle, to: &Path, layout: Layout) -> Result<(), ExtractError> {
    let missing = bundle.missing_volumes();
    if !missing.is_empty() {
        return Err(ExtractError::VolumesMissing {
            bundle: bundle.manifest.bundle_id,
            volume_count: bundle.manifest.volume_count,
            missing,
        });
    }
    let m: &BundleManifest = &bundle.manifest;
    if m.is_delta() {
        let left = m
            .blobs
            .iter()
            .filter(|b| b.encoding == format_spec::manifest::Encoding::Base)
            .count();
        return Err(ExtractError::Delta {
            bundle: m.bundle_id,
            left,
        });
    }
    // Binary digests, sorted: 36 bytes a blob where a map of digest strings took ~130.
    let mut index_of: Vec<(Digest, u32)> = m
        .blobs
        .iter()
        .enumerate()
        .map(|(i, b)| (b.digest, i as u32))
        .collect();
    index_of.sort_unstable();
    let total: u64 = m.blobs.iter().map(|b| b.size).fold(0, u64::saturating_add);
    let bar = progress::Progress::new(progress::Mode::detect(false, false), "extract", total);
    let open = |digest: &str| -> Result<Box<dyn Read + '_>, String> {
        let i = Digest::parse(digest)
            .ok()
            .and_then(|d| {
                let at = index_of.binary_search_by_key(&d, |(d, _)| *d).ok()?;
                Some(index_of[at].1)
            })
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
            Ok(mirror::write_tree(to, &tree, open)?)
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
                    // A sparse index is written with `dev.ferry.platforms` (SPEC.md §6.3).
                    platforms: img.platforms.clone(),
                    // And where it goes, with `dev.ferry.target-repository` (SPEC.md §6.3).
                    destination: img.destination.clone(),
                    // And a catalog's packages, with `dev.ferry.catalog-packages` (§6.3).
                    packages: img.packages.clone(),
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
            let rebuilt = mirror::oci_index_json(&images, &types, &sizes)?;
            let signed = bundle
                .volumes
                .values()
                .next()
                .map(|v| v.index_bytes.as_slice());
            if signed != Some(rebuilt.as_slice()) {
                return Err(ExtractError::IndexDiffers);
            }
            Ok(mirror::write_oci_layout(to, &images, &types, &sizes, open)?)
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
