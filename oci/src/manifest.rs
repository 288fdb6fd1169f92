//! Image manifests, indexes and their descriptors (OCI image-spec `descriptor.md`,
//! `manifest.md`, `image-index.md`; Docker schema 2 has the same fields), and telling which
//! kind a manifest is from its bytes when no media type was stored with it.
//!
//! The structs read what Go tools (containers/image, distribution) write, so they are as
//! lenient as Go's `encoding/json` where the spec requires a field but those tools tolerate
//! its absence: a descriptor's `mediaType` and `size`, a platform's `os` and
//! `architecture` may be missing. Unknown fields are ignored, as the image-spec requires.
//! Digests must be sha256 ([`Digest`]).
//!
//! A manifest's digest is over its original bytes: these types are for reading fields, never
//! for re-encoding a manifest that is then pushed or hashed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, DigestError};
use crate::media_type::{
    self, DOCKER_CONFIG, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED,
    OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};

/// A reference to content: what it is, its digest and size (image-spec `descriptor.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// Foreign (non-distributable) layers are fetched from their URLs, not from the
    /// registry; mirrors normally leave them out. A descriptor with URLs counts as foreign
    /// whatever its type.
    pub fn is_foreign(&self) -> bool {
        self.media_type
            .as_deref()
            .is_some_and(media_type::is_foreign_layer)
            || self.urls.as_ref().is_some_and(|u| !u.is_empty())
    }
}

/// The platform an image in an index runs on (image-spec `image-index.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) or Docker schema 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index: OCI (`application/vnd.oci.image.index.v1+json`) or a Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The four kinds of manifest ferry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerList,
}

impl ManifestKind {
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => OCI_MANIFEST,
            ManifestKind::OciIndex => OCI_INDEX,
            ManifestKind::DockerManifest => DOCKER_MANIFEST,
            ManifestKind::DockerList => DOCKER_LIST,
        }
    }

    /// The kind a media type names, if it is one of the four.
    pub fn from_media_type(media_type: &str) -> Option<ManifestKind> {
        match media_type {
            OCI_MANIFEST => Some(ManifestKind::OciManifest),
            OCI_INDEX => Some(ManifestKind::OciIndex),
            DOCKER_MANIFEST => Some(ManifestKind::DockerManifest),
            DOCKER_LIST => Some(ManifestKind::DockerList),
            _ => None,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerList)
    }
}

/// Why bytes are not a manifest ferry can carry. The texts are reasons, to follow the name
/// of the file or URL the bytes came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("not valid manifest JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("Docker schema 1 manifest; convert the image to schema 2 or OCI (skopeo copy --format v2s2) and mirror it again")]
    Schema1,
    #[error("this is an image config, not a manifest")]
    Config,
    #[error("has both a config ({config_type}) and child manifests; not a manifest or an index")]
    ConfigAndManifests { config_type: String },
    #[error("schemaVersion {0} is not known")]
    UnknownSchemaVersion(i64),
    #[error("no schemaVersion or known mediaType; not an image manifest")]
    NotAManifest,
    /// `field` names the descriptor: `config`, `layers[2]`, `manifests[0]`.
    #[error("{field}: {source}")]
    Digest {
        field: String,
        digest: String,
        #[source]
        source: DigestError,
    },
}

/// What a manifest or index references, read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub kind: ManifestKind,
    /// Child manifests of an index, in order.
    pub manifests: Vec<Descriptor>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    pub fn media_type(&self) -> &'static str {
        self.kind.media_type()
    }

    pub fn is_index(&self) -> bool {
        self.kind.is_index()
    }
}

/// The fields the kind is told from, and the descriptors with their digests still text, so
/// that a bad digest is reported after the kind (schema 1 first: it is the likelier story).
#[derive(Deserialize)]
struct Raw {
    #[serde(default, rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    urls: Option<Vec<String>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    artifact_type: Option<String>,
}

impl RawDescriptor {
    fn checked(self, field: String) -> Result<Descriptor, ManifestError> {
        let digest = Digest::parse(&self.digest).map_err(|source| ManifestError::Digest {
            field,
            digest: self.digest.chars().take(140).collect(),
            source,
        })?;
        Ok(Descriptor {
            media_type: self.media_type,
            digest,
            size: self.size,
            urls: self.urls,
            annotations: self.annotations,
            platform: self.platform,
            artifact_type: self.artifact_type,
        })
    }
}

/// Reads a manifest or index: its kind ([`guess_kind`]'s rules) and the descriptors it
/// lists, every digest checked to be sha256. Docker schema 1 is refused.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
    let kind = kind_of(&raw)?;
    let list = |items: Option<Vec<RawDescriptor>>, name: &str| {
        items
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.checked(format!("{name}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
    };
    // Checked in document order: manifests, config, layers.
    let manifests = list(raw.manifests, "manifests")?;
    let config = raw.config.map(|c| c.checked("config".into())).transpose()?;
    let layers = list(raw.layers, "layers")?;
    Ok(Manifest {
        kind,
        manifests,
        config,
        layers,
    })
}

/// The kind of a manifest from its bytes alone, following containers/image
/// `internal/manifest/manifest.go: GuessMIMEType`: a recognised `mediaType` field, else
/// by `schemaVersion`, then `config.mediaType`, then the presence of `manifests`.
pub fn guess_kind(bytes: &[u8]) -> Result<ManifestKind, ManifestError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
    kind_of(&raw)
}

fn kind_of(raw: &Raw) -> Result<ManifestKind, ManifestError> {
    if let Some(kind) = raw
        .media_type
        .as_deref()
        .and_then(ManifestKind::from_media_type)
    {
        return Ok(kind);
    }
    match raw.media_type.as_deref() {
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) => return Err(ManifestError::Schema1),
        Some(DOCKER_CONFIG | OCI_CONFIG) => return Err(ManifestError::Config),
        _ => {}
    }
    match raw.schema_version {
        Some(1) => Err(ManifestError::Schema1),
        Some(2) => {
            let config_type = raw.config.as_ref().and_then(|c| c.media_type.as_deref());
            match config_type {
                Some(OCI_CONFIG) => return Ok(ManifestKind::OciManifest),
                Some(DOCKER_CONFIG) => return Ok(ManifestKind::DockerManifest),
                _ => {}
            }
            if raw.manifests.as_ref().is_some_and(|m| !m.is_empty()) {
                // GuessMIMEType returns the config type here when there is one; a manifest
                // with both `config` and `manifests` is not something that can be pushed as is.
                return match config_type {
                    None => Ok(ManifestKind::OciIndex),
                    Some(t) => Err(ManifestError::ConfigAndManifests {
                        config_type: t.chars().take(140).collect(),
                    }),
                };
            }
            // Most likely an OCI artifact with a custom config media type.
            Ok(ManifestKind::OciManifest)
        }
        Some(v) => Err(ManifestError::UnknownSchemaVersion(v)),
        None => Err(ManifestError::NotAManifest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::DOCKER_FOREIGN_LAYER_GZIP;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    fn guess(json: &str) -> Result<&'static str, ManifestError> {
        parse(json.as_bytes()).map(|m| m.media_type())
    }

    #[test]
    fn uses_media_type_field_first() {
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}},"layers":[]}}"#,
            d('a')
        );
        assert_eq!(guess(&j).unwrap(), DOCKER_MANIFEST);
        assert_eq!(
            guess_kind(j.as_bytes()).unwrap(),
            ManifestKind::DockerManifest
        );
    }

    #[test]
    fn guesses_from_config_type_and_manifests() {
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}},"layers":[{{"digest":"{}","size":2}}]}}"#,
            d('a'),
            d('b')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, Some(2));
        assert!(!m.is_index());

        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":1}}}}"#,
            d('a')
        );
        assert_eq!(guess(&j).unwrap(), DOCKER_MANIFEST);

        let j = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":3}}]}}"#,
            d('c')
        );
        let m = parse(j.as_bytes()).unwrap();
        assert_eq!(m.media_type(), OCI_INDEX);
        assert!(m.is_index());

        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-custom","digest":"{}","size":1}}}}"#,
            d('a')
        );
        assert_eq!(guess(&j).unwrap(), OCI_MANIFEST);

        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-custom","digest":"{}","size":1}},"manifests":[{{"digest":"{}","size":3}}]}}"#,
            d('a'),
            d('b')
        );
        assert!(matches!(
            guess(&j),
            Err(ManifestError::ConfigAndManifests { config_type }) if config_type == "application/x-custom"
        ));
    }

    #[test]
    fn refuses_schema1_configs_and_non_manifests() {
        let e = guess(r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#).unwrap_err();
        assert!(matches!(e, ManifestError::Schema1));
        assert!(e.to_string().contains("schema 1"), "{e}");
        let e = guess(&format!(r#"{{"mediaType":"{DOCKER_SCHEMA1_SIGNED}"}}"#)).unwrap_err();
        assert!(matches!(e, ManifestError::Schema1));
        assert!(matches!(
            guess(&format!(r#"{{"mediaType":"{OCI_CONFIG}"}}"#)),
            Err(ManifestError::Config)
        ));
        assert!(matches!(
            guess(r#"{"architecture":"amd64"}"#),
            Err(ManifestError::NotAManifest)
        ));
        assert!(matches!(
            guess(r#"{"schemaVersion":3}"#),
            Err(ManifestError::UnknownSchemaVersion(3))
        ));
        assert!(matches!(guess("not json"), Err(ManifestError::Json(_))));
    }

    #[test]
    fn refuses_non_sha256_descriptors_naming_the_field() {
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"{}","size":1}},"layers":[{{"digest":"{}","size":1}},{{"digest":"sha512:{}","size":1}}]}}"#,
            d('a'),
            d('b'),
            "a".repeat(128)
        );
        match guess(&j) {
            Err(e @ ManifestError::Digest { .. }) => {
                let ManifestError::Digest { field, source, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(field, "layers[1]");
                assert!(matches!(source, DigestError::Sha512 { .. }));
                assert!(e.to_string().starts_with("layers[1]: "), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // Schema 1 is the reason given even when its digests are odd too.
        let j = r#"{"schemaVersion":1,"manifests":[{"digest":"md5:00"}]}"#;
        assert!(matches!(guess(j), Err(ManifestError::Schema1)));
    }

    #[test]
    fn foreign_layers() {
        let l: Descriptor = serde_json::from_str(&format!(
            r#"{{"mediaType":"{DOCKER_FOREIGN_LAYER_GZIP}","digest":"{}","size":1,"urls":["https://x"]}}"#,
            d('a')
        ))
        .unwrap();
        assert!(l.is_foreign());
        let l: Descriptor = serde_json::from_str(&format!(
            r#"{{"digest":"{}","urls":["https://x"]}}"#,
            d('a')
        ))
        .unwrap();
        assert!(l.is_foreign());
        let l: Descriptor = serde_json::from_str(&format!(r#"{{"digest":"{}"}}"#, d('a'))).unwrap();
        assert!(!l.is_foreign());
    }

    #[test]
    fn index_and_manifest_types_read_and_write_the_spec_fields() {
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":7,"platform":{{"architecture":"arm64","os":"linux","variant":"v8","os.version":"1","os.features":["x"]}},"annotations":{{"org.opencontainers.image.ref.name":"1"}}}}],"annotations":{{"a":"b"}},"unknown":1}}"#,
            d('a')
        );
        let i: Index = serde_json::from_str(&j).unwrap();
        let p = i.manifests[0].platform.as_ref().unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        assert_eq!(p.os_version.as_deref(), Some("1"));
        assert_eq!(p.os_features.as_deref(), Some(&["x".to_string()][..]));
        let out = serde_json::to_string(&i).unwrap();
        assert!(
            out.contains(r#""os.version":"1""#) && out.contains(r#""mediaType""#),
            "{out}"
        );
        assert_eq!(serde_json::from_str::<Index>(&out).unwrap(), i);

        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3}}}}"#,
            d('a'),
            d('b')
        );
        let m: ImageManifest = serde_json::from_str(&j).unwrap();
        assert_eq!(m.subject.unwrap().digest.to_string(), d('b'));
        assert!(serde_json::from_str::<ImageManifest>(&j.replace(&d('b'), "sha256:B")).is_err());
    }
}
