//! What a push leaves for the cluster and for the next bundle: the OpenShift manifests and
//! mapping.txt (`openshift.rs`), and the receipt — what the registry now holds of the
//! bundle — from which the connected side builds a smaller bundle next time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_format::bundle::Bundle;
use ferry_format::Digest;
use serde::{Deserialize, Serialize};

use crate::mapping::SourceRef;
use crate::openshift::{self, Pushed};
use crate::push::Report;

/// The receipt, version 1: what a registry holds of a bundle's images.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub ferry_receipt: u32,
    pub registry: String,
    pub bundle_id: Digest,
    pub images: Vec<ReceiptImage>,
    /// Every blob (layers, configs, manifests) of the images held, sorted.
    pub blobs: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptImage {
    pub destination: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The image's blobs, so a delta bundle knows where each can be mounted from.
    pub blobs: Vec<Digest>,
}

/// The images of a report that are in the registry now, for the cluster manifests.
pub fn pushed_images(bundle: &Bundle, report: &Report) -> Vec<Pushed> {
    let m = &bundle.manifest;
    report
        .images
        .iter()
        .zip(&m.images)
        .filter(|(o, _)| o.status == "pushed" || o.status == "present")
        .map(|(o, img)| {
            let source = img.source.as_deref().map(SourceRef::parse);
            Pushed {
                source_repository: source.as_ref().map(SourceRef::repository),
                source_reference: img.source.clone(),
                source_by_tag: source
                    .as_ref()
                    .is_some_and(|s| s.tag.is_some() && s.digest.is_none()),
                destination: o.destination.clone(),
                digest: img.digest.to_string(),
                tags: img.tags.clone(),
                catalog: img.catalog,
            }
        })
        .collect()
}

pub fn receipt(bundle: &Bundle, report: &Report, registry: &str) -> Receipt {
    let m = &bundle.manifest;
    let mut images = Vec::new();
    let mut blobs = std::collections::BTreeSet::new();
    for (o, img) in report.images.iter().zip(&m.images) {
        if o.status == "pushed" || o.status == "present" {
            images.push(ReceiptImage {
                destination: o.destination.clone(),
                digest: img.digest,
                tags: img.tags.clone(),
                source: img.source.clone(),
                blobs: img
                    .blobs
                    .iter()
                    .map(|&b| m.blobs[b as usize].digest)
                    .collect(),
            });
            blobs.extend(img.blobs.iter().map(|&b| m.blobs[b as usize].digest));
        }
    }
    Receipt {
        ferry_receipt: 1,
        registry: registry.to_owned(),
        bundle_id: m.bundle_id,
        images,
        blobs: blobs.into_iter().collect(),
    }
}

/// Writes the cluster manifests, mapping.txt and receipt.json into `dir`; returns the paths.
pub fn write_outputs(
    dir: &Path,
    bundle: &Bundle,
    report: &Report,
    registry: &str,
    opts: &openshift::Options,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files: BTreeMap<String, String> =
        openshift::render(&pushed_images(bundle, report), opts);
    let r = receipt(bundle, report, registry);
    files.insert(
        "receipt.json".into(),
        serde_json::to_string_pretty(&r).expect("receipt serializes") + "\n",
    );
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.partial"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}
