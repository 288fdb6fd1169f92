//! Where a catalog image keeps its catalog: the labels opm writes into the image config
//! (operator-registry `pkg/containertools/labels.go`: `ConfigsLocationLabel`,
//! `DbLocationLabel`) and the cache directory opm serve is told about.

use serde::Deserialize;

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

/// The flag of `opm serve` that names its cache directory.
pub(super) const CACHE_DIR_FLAG: &str = "--cache-dir";

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

/// The parts of an image config (image-spec `config.md`) read here.
#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize, Default)]
struct RunConfig {
    #[serde(default, rename = "Labels")]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, rename = "Cmd")]
    cmd: Option<Vec<String>>,
    #[serde(default, rename = "WorkingDir")]
    working_dir: Option<String>,
}

/// The catalog content a config (the image config JSON) announces; None when it carries
/// neither label. A label whose value is not an absolute path is an error.
///
/// A config carrying both labels is read as file-based: the configs directory is what
/// opm serves from 4.11 on, and what oc-mirror v2 reads.
pub fn content_of(config: &[u8]) -> Result<Option<Content>, String> {
    let parsed: ImageConfig = serde_json::from_slice(config)
        .map_err(|e| format!("not an image config (JSON with config.Labels): {e}"))?;
    let run = parsed.config.unwrap_or_default();
    let labels = run.labels.unwrap_or_default();
    let (kind, label, value) = if let Some(v) = labels.get(CONFIGS_LABEL) {
        (Kind::Fbc, CONFIGS_LABEL, v)
    } else if let Some(v) = labels.get(DATABASE_LABEL) {
        (Kind::Sqlite, DATABASE_LABEL, v)
    } else {
        return Ok(None);
    };
    let path = absolute(value).map_err(|why| format!("label {label}={value:?}: {why}"))?;
    let cache_dir = match kind {
        Kind::Sqlite => None,
        Kind::Fbc => {
            let args: Vec<&str> = run
                .entrypoint
                .iter()
                .chain(run.cmd.iter())
                .flatten()
                .map(String::as_str)
                .collect();
            match cache_arg(&args) {
                None | Some("") => None,
                Some(dir) => {
                    // opm resolves a relative --cache-dir against its working directory.
                    let full = if dir.starts_with('/') {
                        dir.to_string()
                    } else {
                        format!("{}/{dir}", run.working_dir.as_deref().unwrap_or("/"))
                    };
                    Some(absolute(&full).map_err(|why| {
                        format!("the command line's {CACHE_DIR_FLAG} {dir:?}: {why}")
                    })?)
                }
            }
        }
    };
    Ok(Some(Content {
        kind,
        path,
        cache_dir,
    }))
}

/// The value of the last `--cache-dir=X` or `--cache-dir X` (the last wins, as with
/// opm's flag parser).
fn cache_arg<'a>(args: &[&'a str]) -> Option<&'a str> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix(CACHE_DIR_FLAG) {
            if let Some(v) = v.strip_prefix('=') {
                found = Some(v);
            } else if v.is_empty() {
                found = args.get(i + 1).copied();
                i += 1;
            }
        }
        i += 1;
    }
    found
}

/// `value` as a path relative to the root without leading or trailing `/`; it must be
/// absolute, name something below the root and not climb (`..`).
pub(super) fn absolute(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err("not an absolute path (opm writes /configs or /database/index.db)".into());
    }
    let mut comps = Vec::new();
    for c in value.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("the path climbs with `..`".into()),
            c => comps.push(c),
        }
    }
    if comps.is_empty() {
        return Err("the path names the root directory".into());
    }
    Ok(comps.join("/"))
}

/// The components of a path inside a layer: no leading `/`, `.` or empty parts.
pub(super) fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}
