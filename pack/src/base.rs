//! `--base`: what the inside already holds, from a receipt (`ferry-unpack receipt`, or the
//! receipt.json a push writes) or an earlier bundle's manifest. Layers and configs listed
//! there are left out of a delta bundle, each with the repository an image that held it
//! was pushed under (its destination, else its original repository path), so the push can
//! mount it from there.

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
                // Where that push put it, below the receipt's `--to` (so a destination
                // from targetRepo or --max-components counts); else its source's path.
                let at = pushed_path(&receipt.registry, &img.destination)
                    .or_else(|| img.source.as_deref().and_then(repository_path));
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
            "neither a receipt (ferry-unpack receipt) nor a bundle manifest (ferry-*.bundle.json.zst, or version 1's ferry-*.bundle.json)"
                .into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

/// The path of a receipt's `destination` (`HOST[:PORT]/PREFIX/path`) below its `registry`
/// (`HOST[:PORT][/PREFIX]`): what a push to the same `--to` maps to the same repository.
fn pushed_path(registry: &str, destination: &str) -> Option<String> {
    destination
        .strip_prefix(registry.trim_end_matches('/'))?
        .strip_prefix('/')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
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
    use super::{load, pushed_path, repository_path};

    #[test]
    fn pushed_paths_are_below_the_receipts_registry() {
        let p = |r: &str, d: &str| pushed_path(r, d);
        assert_eq!(
            p("reg:5000/efk", "reg:5000/efk/mirror/es-proxy").as_deref(),
            Some("mirror/es-proxy")
        );
        assert_eq!(p("reg:5000", "reg:5000/a/b").as_deref(), Some("a/b"));
        assert_eq!(p("reg:5000/efk", "reg:5000/efkx/a"), None);
        assert_eq!(p("reg:5000/efk", "other/efk/a"), None);
        assert_eq!(p("reg:5000/efk", "reg:5000/efk"), None);
    }
    use format_spec::manifest::{Blob, BundleManifest, Encoding, Image};
    use format_spec::receipt::Receipt;
    use format_spec::Digest;

    /// `--bundle-format`'s default (a literal in cli.rs, which also builds the man page)
    /// is the version the format crate writes; 1 and 2 are taken, 0 and 3 refused.
    #[test]
    fn the_bundle_format_option_defaults_to_the_written_version() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut args = vec!["ferry-pack", "M", "--out", "O", "--volume-size", "4GiB"];
            args.extend(["--key", "K"]);
            args.extend(extra);
            crate::cli::Cli::try_parse_from(args).map(|c| c.pack.bundle_format)
        };
        assert_eq!(parse(&[]).unwrap(), format_spec::manifest::BUNDLE_VERSION);
        assert_eq!(parse(&["--bundle-format", "1"]).unwrap(), 1);
        assert_eq!(parse(&["--bundle-format", "2"]).unwrap(), 2);
        assert!(parse(&["--bundle-format", "0"]).is_err());
        assert!(parse(&["--bundle-format", "3"]).is_err());
    }

    /// A base bundle whose image had a `destination` (targetRepo): its blobs are where
    /// that push put them, PREFIX/<destination>, not under the source's path.
    #[test]
    fn a_base_image_with_a_destination_holds_its_blobs_there() {
        let blob = |digest: Digest, media_type: Option<&str>| Blob {
            digest,
            size: 10,
            encoding: Encoding::Raw,
            stored_size: 10,
            first_volume: 1,
            last_volume: 1,
            media_type: media_type.map(str::to_owned),
            at: None,
        };
        let (manifest, layer) = (Digest([1; 32]), Digest([2; 32]));
        let mut m = BundleManifest {
            ferry_bundle: 1,
            bundle_id: Digest([0; 32]),
            creator: "ferry-pack test".into(),
            created: 1,
            source_layout: "oci".into(),
            key: "EH7D-DX5B-KSRG-CYTL".into(),
            volume_size: 1 << 20,
            volume_count: 1,
            chunk_size: 4 << 20,
            index_json: Digest([9; 32]),
            blobs: vec![
                blob(manifest, Some(oci::media_type::OCI_MANIFEST)),
                blob(layer, None),
            ],
            images: vec![Image {
                repository: "mirror/es-proxy".into(),
                tags: vec!["stable".into()],
                digest: manifest,
                media_type: oci::media_type::OCI_MANIFEST.into(),
                source: Some("registry.redhat.io/openshift4/ose-es-proxy:v4.6".into()),
                blobs: vec![0, 1],
                catalog: false,
                platforms: None,
                destination: Some("mirror/es-proxy".into()),
                packages: None,
            }],
            tree: vec![],
        };
        let t = tempfile::tempdir().unwrap();
        // Either version's standalone manifest is a base (the stored bytes as written).
        let at = |m: &mut BundleManifest| {
            let mut found = Vec::new();
            for version in format_spec::manifest::BUNDLE_VERSIONS {
                m.ferry_bundle = version;
                m.seal();
                let path = t.path().join(format_spec::volume::manifest_file_name(
                    &m.bundle_id,
                    version,
                ));
                std::fs::write(&path, m.stored_bytes(0)).unwrap();
                found.push(load(&[path]).unwrap().blobs[&layer].clone());
            }
            assert_eq!(found[0], found[1], "version 1 and 2 read alike");
            found.remove(0)
        };
        assert_eq!(at(&mut m).as_deref(), Some("mirror/es-proxy"));
        m.images[0].destination = None;
        assert_eq!(at(&mut m).as_deref(), Some("openshift4/ose-es-proxy"));

        // The receipt of that push: where it went, below the receipt's registry.
        let receipt = Receipt {
            ferry_receipt: format_spec::receipt::RECEIPT_VERSION,
            registry: "reg.internal:5000/efk".into(),
            bundle_id: Digest([3; 32]),
            images: vec![format_spec::receipt::ReceiptImage {
                destination: "reg.internal:5000/efk/mirror/es-proxy".into(),
                digest: manifest,
                tags: vec!["stable".into()],
                source: Some("registry.redhat.io/openshift4/ose-es-proxy:v4.6".into()),
                blobs: vec![manifest, layer],
            }],
            blobs: vec![manifest, layer],
        };
        let path = t.path().join("receipt.json");
        std::fs::write(&path, receipt.to_json()).unwrap();
        assert_eq!(
            load(&[path]).unwrap().blobs[&layer].as_deref(),
            Some("mirror/es-proxy")
        );
    }

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
