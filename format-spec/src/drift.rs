//! How a planned bundle differs from an earlier one (`ferry-pack --only-volume N --like`):
//! a volume written again is only worth anything if it belongs to the bundle already on the
//! media, and any drift in the mirror or the options makes another bundle. Each difference
//! names the option or input that caused it.

use std::collections::BTreeSet;

use crate::manifest::{BundleManifest, Encoding};
use crate::size::human;

/// One way the planned bundle differs from the original, as a sentence naming its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift(pub String);

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every difference between `original` and `planned` that changes the bundle; empty when
/// they are the same bundle.
pub fn drift(original: &BundleManifest, planned: &BundleManifest) -> Vec<Drift> {
    let mut out = Vec::new();
    let mut say = |text: String| out.push(Drift(text));
    if original.ferry_bundle != planned.ferry_bundle {
        say(format!(
            "--bundle-format: the original is format {}, this run writes {} (add --bundle-format {})",
            original.ferry_bundle, planned.ferry_bundle, original.ferry_bundle
        ));
    }
    if original.volume_size != planned.volume_size {
        say(format!(
            "--volume-size: the original used {} ({} bytes), this run {} ({} bytes)",
            human(original.volume_size),
            original.volume_size,
            human(planned.volume_size),
            planned.volume_size
        ));
    }
    if original.key != planned.key {
        say(format!(
            "--key: the original was signed by key {}, this run's key is {}",
            original.key, planned.key
        ));
    }
    if original.created != planned.created {
        say(format!(
            "creation time: the original has {}, this run {} (set SOURCE_DATE_EPOCH={})",
            original.created, planned.created, original.created
        ));
    }
    if original.creator != planned.creator {
        say(format!(
            "ferry version: the original was written by {:?}, this is {:?} (use that version)",
            original.creator, planned.creator
        ));
    }
    if original.chunk_size != planned.chunk_size {
        say(format!(
            "chunk size: the original used {}, this run {} (another ferry version)",
            original.chunk_size, planned.chunk_size
        ));
    }
    if original.source_layout != planned.source_layout {
        say(format!(
            "the mirror's layout: the original was packed from {}, this mirror is {}",
            original.source_layout, planned.source_layout
        ));
    }
    let digests = |m: &BundleManifest| -> BTreeSet<String> {
        m.blobs.iter().map(|b| b.digest.to_string()).collect()
    };
    let (was, now) = (digests(original), digests(planned));
    let only_now = now.difference(&was).count();
    let only_was = was.difference(&now).count();
    if only_now + only_was > 0 {
        say(format!(
            "the mirror (source set): {only_now} blob(s) only in this mirror, {only_was} only in the original (pack the same mirror)"
        ));
    } else {
        let encoding = |m: &BundleManifest, d: &crate::digest::Digest| {
            m.blobs.iter().find(|b| b.digest == *d).map(|b| b.encoding)
        };
        let changed: Vec<(Encoding, Encoding)> = original
            .blobs
            .iter()
            .filter_map(|b| {
                let e = encoding(planned, &b.digest)?;
                (e != b.encoding).then_some((b.encoding, e))
            })
            .collect();
        let base = changed
            .iter()
            .filter(|(a, b)| (*a == Encoding::Base) != (*b == Encoding::Base))
            .count();
        if base > 0 {
            say(format!(
                "--base: {base} blob(s) are left to the base in one bundle and carried in the other (give the same --base as the original)"
            ));
        }
        if changed.len() > base {
            say(format!(
                "compression: {} blob(s) are stored with zstd in one bundle and as is in the other",
                changed.len() - base
            ));
        }
        if changed.is_empty() && original.blobs != planned.blobs {
            let order = original
                .blobs
                .iter()
                .zip(&planned.blobs)
                .any(|(a, b)| a.digest != b.digest);
            say(if order {
                "the mirror: the same blobs in another order (pack the same mirror)".into()
            } else {
                "the blobs' volumes differ (another --volume-size or ferry version)".into()
            });
        }
    }
    if original.images != planned.images {
        say("the mirror's images, tags or original references differ (another mirror, or another --origin)".into());
    }
    if original.tree != planned.tree || original.index_json != planned.index_json {
        say("the mirror's file tree differs".into());
    }
    if out.is_empty() && original.bundle_id != planned.bundle_id {
        out.push(Drift(format!(
            "the bundle id: the original is {}, this run makes {}",
            original.bundle_id, planned.bundle_id
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::manifest::{Blob, BUNDLE_VERSION};

    fn manifest() -> BundleManifest {
        let mut m = BundleManifest {
            ferry_bundle: BUNDLE_VERSION,
            bundle_id: Digest([0; 32]),
            creator: "ferry-pack 0.1.0".into(),
            created: 1_700_000_000,
            source_layout: "oci".into(),
            key: "AAAA-BBBB-CCCC-DDDD".into(),
            volume_size: 1 << 20,
            volume_count: 1,
            chunk_size: 4 << 20,
            index_json: Digest([1; 32]),
            blobs: vec![Blob {
                digest: Digest([2; 32]),
                size: 1000,
                encoding: Encoding::Zstd,
                stored_size: 100,
                first_volume: 1,
                last_volume: 1,
                media_type: None,
                at: None,
            }],
            images: Vec::new(),
            tree: Vec::new(),
        };
        m.seal();
        m
    }

    #[test]
    fn the_same_bundle_has_no_drift_and_each_change_names_its_cause() {
        let a = manifest();
        assert!(drift(&a, &a.clone()).is_empty());
        let mut b = a.clone();
        b.volume_size = 2 << 20;
        b.created += 1;
        b.blobs[0].encoding = Encoding::Raw;
        b.seal();
        let d: Vec<String> = drift(&a, &b).into_iter().map(|d| d.0).collect();
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            d[0].starts_with("--volume-size: the original used 1.00 MiB"),
            "{d:?}"
        );
        assert!(d[1].contains("SOURCE_DATE_EPOCH=1700000000"), "{d:?}");
        assert!(d[2].starts_with("compression: 1 blob(s)"), "{d:?}");
        let mut c = a.clone();
        c.blobs[0].digest = Digest([3; 32]);
        c.seal();
        assert!(drift(&a, &c)[0]
            .0
            .starts_with("the mirror (source set): 1 blob(s)"));
        let mut v1 = a.clone();
        v1.ferry_bundle = 1;
        v1.seal();
        let d = drift(&v1, &a);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].0
                .contains("the original is format 1, this run writes 2 (add --bundle-format 1)"),
            "{d:?}"
        );
    }
}
