//! The annotation keys ferry reads and writes on the descriptors of an OCI layout's
//! `index.json`. The first two are the ecosystem's (image-spec `annotations.md`,
//! containerd); the `dev.ferry.*` keys are ferry's own, written by the pull cache and read
//! back by the `mirror` reader, so the same constant serves both sides.

/// image-spec: the name of the image within the layout (a tag, or ferry's
/// `<repository>:<tag>` / `<repository>@sha256:<hex>`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd (and `docker save` ≥ 25): the full original reference of the image.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// ferry: since when the tag of the original reference has resolved to this descriptor's
/// digest (RFC 3339, UTC, seconds): the first pull that found it there; a pull finding the
/// same digest again keeps the time, so the cache's bytes do not change. Absent for an
/// image pulled by digest.
pub const FERRY_RESOLVED_AT: &str = "dev.ferry.resolved-at";
/// ferry: the platforms (`os/arch[/variant]`, sorted, comma-separated) whose children of
/// this multi-arch index are present; absent when every child is. The index itself is
/// byte-identical to the registry's: only children not listed here may be missing.
pub const FERRY_PLATFORMS: &str = "dev.ferry.platforms";
/// ferry: the repository path (without host) the image is to have at the destination,
/// when the image set named one (oc-mirror's `targetRepo`); a push puts the image at
/// `PREFIX/<this>` instead of `PREFIX/<the source's path>`. Absent: the source's path.
pub const FERRY_TARGET_REPOSITORY: &str = "dev.ferry.target-repository";
/// ferry: on a rebuilt operator catalog (index) image, the packages it holds (sorted,
/// comma-separated; package names have no comma). The bundle records them (image member
/// `packages`), so `ferry-unpack inspect` and `catalog list` can name them inside.
pub const FERRY_CATALOG_PACKAGES: &str = "dev.ferry.catalog-packages";
