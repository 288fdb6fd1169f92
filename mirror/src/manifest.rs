//! Manifests and indexes read from a mirror's files: oci's parser (the kind told from the
//! bytes when the layout stores no media type, every descriptor's digest checked, schema 1
//! refused), with this crate's size cap and errors that name the file.

use std::path::Path;

use oci::ManifestError;
pub use oci::{Descriptor, Manifest};

use crate::error::MirrorError;

/// The largest manifest a mirror reader reads (this crate's policy): registries refuse
/// manifests above 4 MiB; more is allowed, but never unbounded input.
pub const MAX_MANIFEST_SIZE: u64 = 16 * 1024 * 1024;

/// Parses a manifest or index read from `path` (named in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, MirrorError> {
    oci::manifest::parse(bytes).map_err(|e| match e {
        ManifestError::Json(source) => MirrorError::InvalidJson {
            path: path.to_path_buf(),
            source,
        },
        ManifestError::Digest { digest, source, .. } => MirrorError::UnsupportedDigest {
            path: path.to_path_buf(),
            digest,
            reason: source,
        },
        other => MirrorError::UnsupportedManifest {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci::media_type::{OCI_CONFIG, OCI_MANIFEST};

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    /// The kinds themselves are oci's tests; here, that each error names the file.
    #[test]
    fn errors_name_the_file() {
        let at = Path::new("m.json");
        let j = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}},"layers":[{{"digest":"{}","size":2}}]}}"#,
            d('a'),
            d('b')
        );
        let m = parse(at, j.as_bytes()).unwrap();
        assert_eq!((m.media_type(), m.layers.len()), (OCI_MANIFEST, 1));

        let e = parse(
            at,
            br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#,
        )
        .unwrap_err();
        assert!(matches!(e, MirrorError::UnsupportedManifest { .. }));
        let e = e.to_string();
        assert!(e.starts_with("m.json: ") && e.contains("schema 1"), "{e}");
        assert!(matches!(
            parse(at, br#"{"architecture":"amd64"}"#),
            Err(MirrorError::UnsupportedManifest { .. })
        ));
        assert!(matches!(
            parse(at, b"not json"),
            Err(MirrorError::InvalidJson { .. })
        ));
        let j = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"sha512:{}","size":1}}}}"#,
            "a".repeat(128)
        );
        let e = parse(at, j.as_bytes()).unwrap_err();
        assert!(matches!(e, MirrorError::UnsupportedDigest { .. }));
        assert!(e.to_string().contains("sha512"), "{e}");
    }
}
