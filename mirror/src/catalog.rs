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
    /// child's) carries a catalog label. Decided at pack time, where every blob is at hand,
    /// and recorded in the bundle, so a push that has only some of the disks still knows.
    pub fn catalog_reason(&self, k: usize) -> Option<String> {
        if let Some(mark) = self.catalogs.iter().find(|c| c.image == k) {
            return Some(format!("named by {}", mark.file));
        }
        let img = &self.images[k];
        let read = |d: &str| -> Option<serde_json::Value> {
            let f = self.blobs.get(d)?;
            serde_json::from_slice(&std::fs::read(&f.path).ok()?).ok()
        };
        let mut doc = read(&img.digest)?;
        if let Some(child) = doc["manifests"][0]["digest"].as_str() {
            doc = read(child)?;
        }
        let config = doc["config"]["digest"].as_str().and_then(read)?;
        CATALOG_LABELS
            .iter()
            .find(|l| config["config"]["Labels"][**l].is_string())
            .map(|l| format!("its config carries the label {l}"))
    }
}
