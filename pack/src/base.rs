//! `--base`: what the inside already holds, from a receipt (`ferry-unpack receipt`, or the
//! receipt.json a push writes) or an earlier bundle's manifest. Layers and configs listed
//! there are left out of a delta bundle, each with the original repository of an image
//! that held it, so the push can mount it from there.

use std::collections::HashMap;
use std::path::Path;

use ferry_format::Digest;

/// Blob digest → original repository path of an image holding it (when known).
#[derive(Debug, Default)]
pub struct Base {
    pub blobs: HashMap<Digest, Option<String>>,
}

/// The repository path of an original reference: `registry.redhat.io/a/b:tag` → `a/b`.
fn source_path(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    };
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest.to_owned()
        }
        _ => name.to_owned(),
    }
}

impl Base {
    pub fn load(paths: &[std::path::PathBuf]) -> Result<Base, String> {
        let mut base = Base::default();
        for p in paths {
            base.add(p)?;
        }
        Ok(base)
    }

    fn add(&mut self, path: &Path) -> Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("--base {}: {e}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("--base {}: not JSON: {e}", path.display()))?;
        let digest = |v: &serde_json::Value| v.as_str().and_then(|s| Digest::parse(s).ok());
        if doc.get("ferry_receipt").is_some() {
            let images = doc["images"].as_array().cloned().unwrap_or_default();
            for img in &images {
                let at = img["source"].as_str().map(source_path);
                for b in img["blobs"].as_array().into_iter().flatten() {
                    if let Some(d) = digest(b) {
                        let entry = self.blobs.entry(d).or_insert(None);
                        if entry.is_none() {
                            entry.clone_from(&at);
                        }
                    }
                }
            }
            // Receipts list every blob held, even where no image says which.
            for b in doc["blobs"].as_array().into_iter().flatten() {
                if let Some(d) = digest(b) {
                    self.blobs.entry(d).or_insert(None);
                }
            }
            return Ok(());
        }
        if doc.get("ferry_bundle").is_some() {
            let m = ferry_format::manifest::BundleManifest::parse(&bytes)
                .map_err(|e| format!("--base {}: {e}", path.display()))?;
            for img in &m.images {
                let at = Some(
                    img.source
                        .as_deref()
                        .map_or_else(|| img.repository.clone(), source_path),
                );
                for &b in &img.blobs {
                    let blob = &m.blobs[b as usize];
                    let entry = self.blobs.entry(blob.digest).or_insert(None);
                    if entry.is_none() {
                        entry.clone_from(&at);
                    }
                }
            }
            return Ok(());
        }
        Err(format!(
            "--base {}: neither a receipt (ferry-unpack receipt) nor a bundle manifest (ferry-*.bundle.json)",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::source_path;

    #[test]
    fn source_paths() {
        assert_eq!(
            source_path("registry.redhat.io/openshift4/x@sha256:00"),
            "openshift4/x"
        );
        assert_eq!(source_path("registry.example.com:5000/a/b:v1"), "a/b");
        assert_eq!(source_path("library/busybox:1"), "library/busybox");
    }
}
