//! Image manifests and indexes, as far as a mirror reader needs them: the media type
//! (guessed from the JSON when the layout stores none) and the descriptors they reference.

use std::path::Path;

use serde::Deserialize;

use crate::digest;
use crate::error::MirrorError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Registries refuse manifests above 4 MiB; we allow more but never read unbounded input.
pub const MAX_MANIFEST_SIZE: u64 = 16 * 1024 * 1024;

/// A descriptor as found in `manifests`, `config` or `layers`.
#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(default, rename = "mediaType")]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    /// Foreign (non-distributable) layers are fetched from their URLs, not from the
    /// registry; mirrors normally leave them out.
    pub fn is_foreign(&self) -> bool {
        let foreign_type = self.media_type.as_deref().is_some_and(|t| {
            t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
                || t.starts_with("application/vnd.oci.image.layer.nondistributable.")
        });
        foreign_type || self.urls.as_ref().is_some_and(|u| !u.is_empty())
    }
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    #[serde(default, rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// What a manifest or index references.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    /// Child manifests of an index, in order.
    pub manifests: Vec<Descriptor>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Parses a manifest or index read from `path` (named in errors). Digests in descriptors are
/// checked to be canonical sha256; Docker schema 1 is refused.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, MirrorError> {
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| MirrorError::InvalidJson {
        path: path.to_path_buf(),
        source: e,
    })?;
    let media_type = guess_media_type(&raw).map_err(|reason| MirrorError::UnsupportedManifest {
        path: path.to_path_buf(),
        reason,
    })?;
    let manifests = raw.manifests.unwrap_or_default();
    let layers = raw.layers.unwrap_or_default();
    for d in manifests
        .iter()
        .chain(raw.config.iter())
        .chain(layers.iter())
    {
        digest::checked(path, &d.digest)?;
    }
    Ok(Manifest {
        media_type,
        manifests,
        config: raw.config,
        layers,
    })
}

/// The media type of a manifest, following containers/image
/// `internal/manifest/manifest.go: GuessMIMEType`: a recognised `mediaType` field, else by
/// `schemaVersion`, then `config.mediaType`, then the presence of `manifests`.
fn guess_media_type(raw: &RawManifest) -> Result<String, String> {
    const SCHEMA1: &str =
        "Docker schema 1 manifest; convert the image to schema 2 or OCI (skopeo copy --format v2s2) and mirror it again";
    match raw.media_type.as_deref() {
        Some(t @ (OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST)) => {
            return Ok(t.to_string())
        }
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) => return Err(SCHEMA1.to_string()),
        Some(DOCKER_CONFIG | OCI_CONFIG) => {
            return Err("this is an image config, not a manifest".to_string())
        }
        _ => {}
    }
    match raw.schema_version {
        Some(1) => Err(SCHEMA1.to_string()),
        Some(2) => {
            let config_type = raw.config.as_ref().and_then(|c| c.media_type.as_deref());
            match config_type {
                Some(OCI_CONFIG) => return Ok(OCI_MANIFEST.to_string()),
                Some(DOCKER_CONFIG) => return Ok(DOCKER_MANIFEST.to_string()),
                _ => {}
            }
            if raw.manifests.as_ref().is_some_and(|m| !m.is_empty()) {
                // GuessMIMEType returns the config type here when there is one; a manifest
                // with both `config` and `manifests` is not something we can push as-is.
                return match config_type {
                    None => Ok(OCI_INDEX.to_string()),
                    Some(t) => Err(format!(
                        "has both a config ({t}) and child manifests; not a manifest or an index"
                    )),
                };
            }
            // Most likely an OCI artifact with a custom config media type.
            Ok(OCI_MANIFEST.to_string())
        }
        Some(v) => Err(format!("schemaVersion {v} is not known")),
        None => Err("no schemaVersion or known mediaType; not an image manifest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(json: &str) -> Result<String, MirrorError> {
        parse(Path::new("m.json"), json.as_bytes()).map(|m| m.media_type)
    }

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn uses_media_type_field_first() {
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}},"layers":[]}}"#,
            d('a')
        );
        assert_eq!(guess(&j).unwrap(), DOCKER_MANIFEST);
    }

    #[test]
    fn guesses_oci_manifest_from_config_type() {
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}},"layers":[{{"digest":"{}","size":2}}]}}"#,
            d('a'),
            d('b')
        );
        let m = parse(Path::new("m"), j.as_bytes()).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.layers.len(), 1);
        assert!(!m.is_index());
    }

    #[test]
    fn guesses_docker_manifest_from_config_type() {
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":1}}}}"#,
            d('a')
        );
        assert_eq!(guess(&j).unwrap(), DOCKER_MANIFEST);
    }

    #[test]
    fn guesses_index_from_manifests() {
        let j = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":3}}]}}"#,
            d('c')
        );
        let m = parse(Path::new("m"), j.as_bytes()).unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
        assert!(m.is_index());
    }

    #[test]
    fn artifact_with_custom_config_is_oci_manifest() {
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-custom","digest":"{}","size":1}}}}"#,
            d('a')
        );
        assert_eq!(guess(&j).unwrap(), OCI_MANIFEST);
    }

    #[test]
    fn refuses_schema1() {
        let e = guess(r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#).unwrap_err();
        assert!(matches!(e, MirrorError::UnsupportedManifest { .. }));
        assert!(e.to_string().contains("m.json"), "{e}");
        let e = guess(&format!(r#"{{"mediaType":"{DOCKER_SCHEMA1_SIGNED}"}}"#)).unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
    }

    #[test]
    fn refuses_non_manifests() {
        assert!(matches!(
            guess(r#"{"architecture":"amd64"}"#),
            Err(MirrorError::UnsupportedManifest { .. })
        ));
        assert!(matches!(
            guess("not json"),
            Err(MirrorError::InvalidJson { .. })
        ));
    }

    #[test]
    fn refuses_non_sha256_descriptors() {
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"sha512:{}","size":1}}}}"#,
            "a".repeat(128)
        );
        assert!(matches!(
            guess(&j),
            Err(MirrorError::UnsupportedDigest { .. })
        ));
    }

    #[test]
    fn foreign_layers() {
        let l: Descriptor = serde_json::from_str(&format!(
            r#"{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":1,"urls":["https://x"]}}"#,
            d('a')
        ))
        .unwrap();
        assert!(l.is_foreign());
    }
}
