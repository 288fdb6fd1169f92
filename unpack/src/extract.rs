//! `extract`: every blob streamed out of its chunks (each chunk checked against its signed
//! table, each blob against its digest) into the layouts the `mirror` crate writes.

use std::io::{Read, Write};
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
    /// The signed ferry/index.json could not be read again as it was verified.
    #[error(transparent)]
    Volume(#[from] format_spec::FormatError),
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
    let open = |digest: &Digest| -> Result<Box<dyn Read + '_>, String> {
        let i = index_of
            .binary_search_by_key(digest, |(d, _)| *d)
            .map(|at| index_of[at].1)
            .map_err(|_| format!("blob {digest} is not in the bundle"))?;
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
                            digest: b.digest,
                            size: b.size,
                            mode: *mode,
                            source: None,
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
            // Each image seen through its bundle record: no mirror::Image values, no tables
            // keyed by digest strings (the manifests' types and sizes come from the blobs).
            let blob_of = |d: &Digest| {
                let at = index_of.binary_search_by_key(d, |(d, _)| *d).ok()?;
                Some(&m.blobs[index_of[at].1 as usize])
            };
            let view = |i: usize| {
                let img = &m.images[i];
                let blob = blob_of(&img.digest);
                mirror::IndexImage {
                    repository: &img.repository,
                    tags: &img.tags,
                    digest: img.digest,
                    media_type: blob
                        .and_then(|b| b.media_type.as_deref())
                        .or(Some(img.media_type.as_str()).filter(|t| !t.is_empty())),
                    size: blob.map(|b| b.size),
                    source: img.source.as_deref(),
                    // A sparse index is written with `dev.ferry.platforms` (SPEC.md §6.3).
                    platforms: img.platforms.as_deref(),
                    // And where it goes, with `dev.ferry.target-repository` (SPEC.md §6.3).
                    destination: img.destination.as_deref(),
                    // And a catalog's packages, with `dev.ferry.catalog-packages` (§6.3).
                    packages: img.packages.as_deref(),
                }
            };
            // The index written must be the one that was signed (SPEC.md §6.3): the rebuilt
            // one is compared as it is serialized, and then the signed bytes are written.
            let signed = bundle
                .volumes
                .values()
                .next()
                .ok_or(ExtractError::IndexDiffers)?
                .index_bytes()?;
            let mut same = SameAs {
                rest: &signed,
                differs: false,
            };
            mirror::write_oci_index(m.images.len(), &view, &mut same)?;
            if same.differs || !same.rest.is_empty() {
                return Err(ExtractError::IndexDiffers);
            }
            // Every blob of every image, each once, in digest order.
            let mut used = vec![false; m.blobs.len()];
            for img in &m.images {
                for &b in &img.blobs {
                    used[b as usize] = true;
                }
            }
            let blobs = index_of
                .iter()
                .filter(|(_, i)| used[*i as usize])
                .map(|(d, i)| (*d, m.blobs[*i as usize].size));
            Ok(mirror::write_oci_layout_with_index(
                to, blobs, &signed, open,
            )?)
        }
    }
}

/// A writer that checks what is written against `rest`, byte for byte.
struct SameAs<'a> {
    rest: &'a [u8],
    differs: bool,
}

impl Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(buf) {
            Some(rest) if !self.differs => self.rest = rest,
            _ => self.differs = true,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn same(signed: &[u8], chunks: &[&[u8]]) -> bool {
        let mut w = SameAs {
            rest: signed,
            differs: false,
        };
        for c in chunks {
            w.write_all(c).unwrap();
        }
        !w.differs && w.rest.is_empty()
    }

    /// The rebuilt index is compared as it is written, in whatever pieces serde writes.
    #[test]
    fn only_the_very_bytes_of_the_signed_index_are_the_same() {
        let signed = br#"{"a":[1,2]}"#;
        assert!(same(signed, &[b"{\"a\"", b":[1,2]}"]));
        assert!(same(signed, &[signed]));
        assert!(!same(signed, &[b"{\"a\":[1,2]"]), "shorter");
        assert!(!same(signed, &[signed, b" "]), "longer");
        assert!(!same(signed, &[b"{\"b\"", b":[1,2]}"]), "one byte differs");
        // A difference is not forgotten when later pieces match again.
        assert!(!same(signed, &[b"{\"b\"", b"\"a\":[1,2]}"]));
        assert!(!same(b"", &[b"x"]));
        assert!(same(b"", &[]));
    }
}
