//! Where a catalog image keeps its catalog: the labels opm writes into the image config
//! (operator-registry `pkg/containertools/labels.go`: `ConfigsLocationLabel`,
//! `DbLocationLabel`) and the cache directory opm serve is told about.

/// The two kinds of operator catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// File-based catalog: a directory of JSON/YAML (OpenShift 4.11 and later).
    Fbc,
    /// SQLite index database (OpenShift 4.6–4.10).
    Sqlite,
}

pub const CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";
pub const DATABASE_LABEL: &str = "operators.operatorframework.io.index.database.v1";

/// What a catalog image's config says about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub kind: Kind,
    /// The labelled path, relative to the root, no leading or trailing `/`
    /// (`configs`, `database/index.db`).
    pub path: String,
    /// opm's cache directory, relative, when the command line names one
    /// (`--cache-dir=/tmp/cache` → `tmp/cache`). FBC only.
    pub cache_dir: Option<String>,
}

/// The catalog content a config (the image config JSON) announces; None when it carries
/// neither label. A label whose value is not an absolute path is an error.
pub fn content_of(config: &[u8]) -> Result<Option<Content>, String> {
    let _ = config;
    todo!("issue 12: labels and --cache-dir")
}
