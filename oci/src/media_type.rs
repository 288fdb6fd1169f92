//! Media types of manifests, configs and layers (OCI image-spec `media-types.md`; Docker's
//! from distribution `docs/spec/manifest-v2-2.md` as containers/image
//! `internal/manifest/manifest.go` names them).

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The empty descriptor's type, for artifacts without a config (image-spec `manifest.md`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Layers with distribution restrictions (deprecated in image-spec 1.1, still met).
pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// The prefix every nondistributable OCI layer type starts with.
pub const OCI_LAYER_NONDISTRIBUTABLE_PREFIX: &str =
    "application/vnd.oci.image.layer.nondistributable.";

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list, schema 2.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Not in Docker's schema 2 document, but written by moby and containerd for zstd layers.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Foreign layers: fetched from their `urls`, not from the registry.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Docker schema 1, unsigned. Recognised only so that it can be refused by name: schema 1
/// manifests are signed over a re-encoding and cannot be carried byte for byte.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1, signed (JWS).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type a registry may answer with, for `Accept` headers: the four ferry
/// carries, then schema 1 so that a registry holding only that says so instead of
/// answering 404.
pub const MANIFEST_TYPES: [&str; 6] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// True for the two index types: OCI index and Docker manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// True for the two image manifest types ferry carries.
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// True for both Docker schema 1 types.
pub fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED
}

/// True for layers fetched from their URLs rather than the registry (Docker foreign layers
/// and OCI nondistributable ones).
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == DOCKER_FOREIGN_LAYER
        || media_type == DOCKER_FOREIGN_LAYER_GZIP
        || media_type.starts_with(OCI_LAYER_NONDISTRIBUTABLE_PREFIX)
}

/// `Content-Type` without parameters (`; charset=utf-8`) or surrounding spaces: registries
/// may add parameters, and clients ignore them (distribution-spec "Pulling manifests").
pub fn without_parameters(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_LIST) && !is_index(OCI_MANIFEST));
        assert!(is_image_manifest(DOCKER_MANIFEST) && !is_image_manifest(DOCKER_SCHEMA1));
        assert!(is_schema1(DOCKER_SCHEMA1_SIGNED));
        assert!(is_foreign_layer(DOCKER_FOREIGN_LAYER_GZIP));
        assert!(is_foreign_layer(OCI_LAYER_NONDISTRIBUTABLE_ZSTD));
        assert!(!is_foreign_layer(OCI_LAYER_ZSTD));
        assert_eq!(
            without_parameters("application/vnd.oci.image.index.v1+json; charset=utf-8"),
            OCI_INDEX
        );
        assert_eq!(without_parameters(""), "");
    }
}
