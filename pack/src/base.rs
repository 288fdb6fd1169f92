//! `--base`: what the inside already holds, from a receipt (`ferry-unpack receipt`, or the
//! receipt.json a push writes) or an earlier bundle's manifest. Layers and configs listed
//! there are left out of a delta bundle, each with the original repository of an image
//! that held it, so the push can mount it from there.

use std::path::{Path, PathBuf};

use format_spec::manifest::BundleManifest;
use format_spec::order::Base;
use format_spec::receipt::{Receipt, ReceiptError};

use crate::error::PackError;

/// Every `--base` file, in the order given (the first place known for a blob is kept).
pub fn load(paths: &[PathBuf]) -> Result<Base, PackError> {
    let mut base = Base::default();
    for p in paths {
        add(&mut base, p)
            .map_err(|why| PackError::Input(format!("--base {}: {why}", p.display())))?;
    }
    Ok(base)
}

fn add(base: &mut Base, path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    match Receipt::parse(&bytes) {
        Ok(receipt) => {
            for img in &receipt.images {
                let at = img.source.as_deref().and_then(repository_path);
                for &d in &img.blobs {
                    base.hold(d, at.as_deref());
                }
            }
            // Receipts list every blob held, even where no image says which.
            for &d in &receipt.blobs {
                base.hold(d, None);
            }
            Ok(())
        }
        Err(ReceiptError::BundleManifest) => {
            let m = BundleManifest::parse(&bytes).map_err(|e| e.to_string())?;
            for img in &m.images {
                // Where the base's push put it: its destination (targetRepo) when it
                // named one, else its source's path, as push maps them.
                let at = match (&img.destination, img.source.as_deref()) {
                    (Some(d), _) => Some(d.clone()),
                    (None, Some(s)) => repository_path(s),
                    (None, None) => Some(img.repository.clone()),
                };
                for &b in &img.blobs {
                    base.hold(m.blobs[b as usize].digest, at.as_deref());
                }
            }
            Ok(())
        }
        Err(ReceiptError::NotAReceipt) => Err(
            "neither a receipt (ferry-unpack receipt) nor a bundle manifest (ferry-*.bundle.json)"
                .into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

/// The repository path of an original reference (`registry.redhat.io/a/b:tag` → `a/b`),
/// where a push of the base put the image's blobs; none when it is not a reference.
/// As written (`busybox` stays `busybox`), because push maps the path as written.
fn repository_path(reference: &str) -> Option<String> {
    oci::Written::parse(reference)
        .ok()
        .map(|r| r.path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::repository_path;

    #[test]
    fn repository_paths() {
        let hex = "0".repeat(64);
        assert_eq!(
            repository_path(&format!("registry.redhat.io/openshift4/x@sha256:{hex}")).as_deref(),
            Some("openshift4/x")
        );
        assert_eq!(
            repository_path("registry.example.com:5000/a/b:v1").as_deref(),
            Some("a/b")
        );
        assert_eq!(
            repository_path("library/busybox:1").as_deref(),
            Some("library/busybox")
        );
        assert_eq!(repository_path("busybox:1").as_deref(), Some("busybox"));
        assert_eq!(repository_path("not a reference"), None);
    }
}
