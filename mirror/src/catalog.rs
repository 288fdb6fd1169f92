//! Which images of a mirror are operator catalogs (operator indexes), and why: push writes
//! a CatalogSource for each, so the bundle records the answer for every image.

use crate::model::Mirror;

/// Labels an operator index (catalog) image carries in its config.
const CATALOG_LABELS: [&str; 2] = [
    "operators.operatorframework.io.index.configs.v1",
    "operators.operatorframework.io.index.database.v1",
];

impl Mirror {
    /// Why image `k` is an operator catalog, or None when it is not: the mirror names it so
    /// (oc's `manifests-*/catalogSource.yaml`), or its config (for an index, its first
    /// child's that the image carries: a sparse index may lack the first) carries a
    /// catalog label. Decided at pack time, where every blob is at hand,
    /// and recorded in the bundle, so a push that has only some of the disks still knows.
    pub fn catalog_reason(&self, k: usize) -> Option<String> {
        if let Some(mark) = self.catalogs.iter().find(|c| c.image == k) {
            return Some(format!("named by {}", mark.file));
        }
        let img = &self.images[k];
        self.catalog_label(k).or_else(|| {
            // The pull cache names the packages of the catalogs it pulled (only those).
            img.packages.as_ref().map(|_| {
                format!(
                    "its layout records its packages ({})",
                    oci::annotation::FERRY_CATALOG_PACKAGES
                )
            })
        })
    }

    /// The catalog label image `k`'s config (for an index, its first carried child's) carries.
    fn catalog_label(&self, k: usize) -> Option<String> {
        let img = &self.images[k];
        let read = |d: &oci::Digest| -> Option<serde_json::Value> {
            let f = self.blobs.get(d)?;
            serde_json::from_slice(&std::fs::read(self.blob_path(f)).ok()?).ok()
        };
        let parse = |v: &serde_json::Value| oci::Digest::parse(v.as_str()?).ok();
        let mut doc = read(&img.digest)?;
        if let Some(children) = doc["manifests"].as_array() {
            let child = children
                .iter()
                .filter_map(|c| parse(&c["digest"]))
                .find(|d| img.blobs.contains(d))?;
            doc = read(&child)?;
        }
        let config = parse(&doc["config"]["digest"]).and_then(|d| read(&d))?;
        CATALOG_LABELS
            .iter()
            .find(|l| config["config"]["Labels"][**l].is_string())
            .map(|l| format!("its config carries the label {l}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::{hex, write, Kit, Made};
    use oci::media_type::{OCI_CONFIG, OCI_MANIFEST};

    /// An image whose config carries the catalog label.
    fn catalog_child(kit: &mut Kit) -> Made {
        let (cd, cs) = kit.blob(
            br#"{"config":{"Labels":{"operators.operatorframework.io.index.configs.v1":"/configs"}}}"#,
        );
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{cd}","size":{cs}}},"layers":[]}}"#
        );
        let (d, s) = kit.blob(json.as_bytes());
        Made {
            digest: d,
            size: s,
            closure: vec![d, cd],
            media_type: OCI_MANIFEST,
        }
    }

    /// A catalog pulled for arm64 only: its first child (amd64) is not there, the label is
    /// read from the child that is.
    #[test]
    fn a_sparse_catalog_is_known_by_a_child_it_carries() {
        let mut kit = Kit::default();
        let amd = catalog_child(&mut kit);
        let mut arm = catalog_child(&mut kit);
        // Another manifest for arm64 (same config): distinct by its layers list.
        let json = String::from_utf8(kit.bytes(&arm.digest).to_vec())
            .unwrap()
            .replace(r#""layers":[]"#, r#""layers":[],"annotations":{"a":"arm"}"#);
        let (d, s) = kit.blob(json.as_bytes());
        arm.closure[0] = d;
        (arm.digest, arm.size) = (d, s);
        let list = kit.index_of(false, &[(&amd, "linux/amd64"), (&arm, "linux/arm64")]);
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(
            &root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        for b in list.closure.iter().filter(|b| **b != amd.digest) {
            write(&root.join("blobs/sha256").join(hex(b)), kit.bytes(b));
        }
        write(
            &root.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{"dev.ferry.platforms":"linux/arm64","org.opencontainers.image.ref.name":"ns/index:v1"}}}}]}}"#,
                list.media_type, list.digest, list.size
            )
            .as_bytes(),
        );
        let m = crate::read_mirror(root).unwrap();
        assert_eq!(m.images[0].platforms, Some(vec!["linux/arm64".to_string()]));
        let why = m.catalog_reason(0).expect("a catalog");
        assert!(why.contains("index.configs.v1"), "{why}");
    }
}
