// The command line of ferry-pack (clap derive); build.rs makes the man pages and
// completions from it, so it is plain comments here (the file is included there).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ferry-pack",
    version,
    about = "Pack an image mirror into signed, chunked volumes sized for removable media.",
    long_about = "Pack an image mirror into signed, chunked, content-addressed volumes sized for \
removable media. Reads the oc `file://` layout (oc adm catalog mirror … file://DIR), OCI image \
layouts, a registry's storage directory, or skopeo dir: layouts, re-hashes every blob, and writes \
volumes that ferry-unpack can verify and push one at a time, in any order. With --config and \
--cache it pulls an oc-mirror v2 ImageSetConfiguration's images from registries itself, into a \
resumable OCI-layout cache, and packs exactly those.",
    after_help = "From registries (an oc-mirror v2 ImageSetConfiguration), in one command:
  ferry-pack --config imageset.yaml --cache ~/ferry-cache --out /media/usb1 --volume-size fat32 --key ~/.ferry/site.key
  ferry-pack pull --config imageset.yaml --cache ~/ferry-cache --plan
  ferry-pack cache prune --config imageset.yaml --cache ~/ferry-cache
  ferry-pack catalog list registry.redhat.io/redhat/redhat-operator-index:v4.16 --package cluster-logging

The EFK operators case (README), from an oc mirror directory:
  oc adm catalog mirror -a pull-secret.json registry.local:5000/my-operator/my-operator-index:v1 \\
      file:///efk-mirror --index-filter-by-os=linux/amd64
  ferry-pack keygen ~/.ferry/site.key
  ferry-pack ./efk-mirror --out /media/usb1 --volume-size fat32 --key ~/.ferry/site.key --plan
  ferry-pack ./efk-mirror --out /media/usb1 --out /media/usb2 --volume-size fat32 --key ~/.ferry/site.key

Other:
  ferry-pack ./efk-mirror --out ./vols --volume-size 4.7GB --key site.key --only-volume 3
  ferry-pack ./efk-mirror --out /media/new --volume-size 4.7GB --key site.key --only-volume 3 \\
      --like /media/usb1/ferry-<id>.bundle.json
  ferry-pack ./efk-mirror --out /media/usb1 --volume-size fat32 --key site.key --base receipt.json
  ferry-pack ./registry-storage --origin registry.redhat.io --out ./vols --volume-size 4.7GB --key site.key

Sizes need a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or a preset: fat32 (4 GiB - 1 B),
dvd, dvd-dl, bd25, bd50, bd100. Set SOURCE_DATE_EPOCH to fix the bundle's creation time;
otherwise the newest file time in the mirror is used, never the clock.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub pack: PackArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a signing key: KEY (PKCS#8 PEM, mode 0600) and KEY.pub; print the fingerprint.
    Keygen {
        /// Where to write the private key; the public key goes to KEY.pub.
        key: PathBuf,
    },
    /// Pull the images of an image set into a cache (an OCI layout), resumably: what is
    /// there is never fetched again, an interrupted blob resumes. Exit 0 when every image
    /// is in the cache, 1 when some could not be pulled (each is named with the
    /// registry's words), 2 for a bad command line, image set or cache.
    Pull(PullCommand),
    /// Look after a pull cache.
    Cache {
        #[command(subcommand)]
        action: CacheCommand,
    },
    /// Read an operator catalog image in a registry (what podman and grpcurl did).
    Catalog {
        #[command(subcommand)]
        action: CatalogCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List an operator catalog's packages (default channel, channels with their head and
    /// versions), or with --package one package's channels and bundles. Reads only the
    /// catalog's content (the FBC configs directory or the SQLite database), fetching only
    /// the manifests, the config and the layer that holds it. Exit 0 when listed, 1 when
    /// the image cannot be pulled, is no operator catalog or lacks the package (the
    /// message names the packages it has), 2 for a bad command line.
    #[command(after_help = "Examples:
  ferry-pack catalog list registry.redhat.io/redhat/redhat-operator-index:v4.16
  ferry-pack catalog list registry.redhat.io/redhat/redhat-operator-index:v4.16 --package cluster-logging
  ferry-pack catalog list registry.redhat.io/redhat/redhat-operator-index:v4.8 --json --cache ~/ferry-cache")]
    List(CatalogListCommand),
}

#[derive(Debug, clap::Args)]
pub struct CatalogListCommand {
    /// The catalog (index) image: HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:DIGEST.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// List this package's channels and bundles (name, version, image).
    #[arg(long, value_name = "P")]
    pub package: Option<String>,
    /// Print one JSON object on stdout (type catalog_list: the image's reference, digest
    /// and kind, then the listing; docs/events.md).
    #[arg(long)]
    pub json: bool,
    /// The pull cache to fetch into (what is there is not fetched again; a later pull
    /// with the same cache reuses the catalog's layer). Default: a temporary directory,
    /// removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub pull: PullOptions,
    /// Print no progress, only the listing.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove from the cache every image, blob and interrupted download that the image set
    /// does not need (reads only the cache: tags keep the digest they were pulled at).
    Prune {
        /// The image set to keep (oc-mirror v2 ImageSetConfiguration).
        #[arg(long, value_name = "IMAGESET")]
        config: PathBuf,
        /// The cache directory.
        #[arg(long, value_name = "DIR")]
        cache: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct PullCommand {
    /// The image set: an oc-mirror v2 ImageSetConfiguration (apiVersion:
    /// mirror.openshift.io/v2alpha1), mirror.additionalImages, mirror.operators and
    /// mirror.blockedImages.
    #[arg(long, value_name = "IMAGESET")]
    pub config: PathBuf,
    /// The cache directory (an OCI image layout; created if missing).
    #[arg(long, value_name = "DIR")]
    pub cache: PathBuf,
    /// Resolve manifests only (no layer is downloaded) and say what the pull would fetch
    /// and whether it fits. An operator catalog image is downloaded even so (the
    /// selection is made from its catalog layer, and the rebuild reads its other layers
    /// to tell which hold only catalog content), and its rebuilt catalog is written to the
    /// cache.
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub pull: PullOptions,
    /// Print no progress, only the result.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print JSON Lines events on stdout instead (docs/events.md).
    #[arg(long)]
    pub json: bool,
}

/// `--jobs`'s default for a pull (pull.rs also tells a given value from it).
pub const DEFAULT_JOBS: usize = 6;
/// `--retry-for`'s default for a pull.
pub const DEFAULT_RETRY_FOR: &str = "60";

/// How to reach the registries an image set names (`pull`, and pack with `--config`).
#[derive(Debug, Clone, clap::Args)]
pub struct PullOptions {
    /// Keep only these platforms' images of a multi-arch index (OS/ARCH[/VARIANT]; repeat
    /// for several; no variant keeps every variant). The index itself is kept byte for
    /// byte, so references by its digest keep working; the bundle records it as sparse.
    /// An image's own `platforms` in the image set wins. Default: every platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Vec<String>,
    /// Credentials file (podman/docker auth.json, or an OpenShift pull-secret.json). Default:
    /// $REGISTRY_AUTH_FILE, then podman's and docker's usual places; credential helpers
    /// (credHelpers, credsStore) are run as docker runs them.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// The registries.conf to use (containers-registries.conf(5): prefix, location,
    /// mirrors, insecure, blocked). Default: ~/.config/containers/registries.conf or
    /// /etc/containers/registries.conf, with their registries.conf.d/.
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for the registries' TLS certificates.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain HTTP or unverified TLS for every registry (registries.conf can say it
    /// for one registry: insecure = true).
    #[arg(long)]
    pub insecure: bool,
    /// Blobs downloaded at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS)]
    pub jobs: usize,
    /// How long to keep retrying a registry that fails (5xx, 429, connection errors)
    /// without progress before giving up on a request (seconds, or 30s, 10m, 2h): a
    /// download that received bytes before it broke off resumes and its time starts again,
    /// so this bounds the retrying, not how long a large layer may take. Running again
    /// resumes.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_RETRY_FOR)]
    pub retry_for: cli_support::RetryFor,
    /// When a bundle or related image of an operator catalog cannot be pulled, drop the
    /// bundles that need it from the rebuilt catalog (their channel entries too; a package
    /// left with nothing is dropped; a SQLite catalog drops the whole package) and name
    /// them, instead of failing. Without it such an image fails the run (exit 1), naming
    /// the bundles that need it.
    #[arg(long)]
    pub allow_missing: bool,
}

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// The mirror directory to pack (or give --config and --cache to pull from registries).
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    pub mirror: Option<PathBuf>,
    /// Pull the images of this image set (oc-mirror v2 ImageSetConfiguration) into --cache,
    /// then pack exactly those images from the cache (not everything the cache holds).
    #[arg(long, value_name = "IMAGESET", requires = "cache")]
    pub config: Option<PathBuf>,
    /// The pull cache for --config (an OCI image layout; created if missing).
    #[arg(long, value_name = "DIR", requires = "config")]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub pull: PullOptions,
    /// Directory to write volumes into (created if missing). Give it several times to fill
    /// several disks in turn (one mount point each); on a terminal, ferry-pack asks for the
    /// next medium when the last one is full.
    #[arg(long, required = true, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// Largest volume file, with a unit (4GiB, 4.7GB, 700MiB) or a preset (fat32, dvd, dvd-dl, bd25, bd50, bd100).
    #[arg(long, required = true, value_name = "SIZE", allow_hyphen_values = true)]
    pub volume_size: Option<String>,
    /// Private key to sign with (from `ferry-pack keygen` or `openssl genpkey -algorithm ed25519`).
    #[arg(long, required = true)]
    pub key: Option<PathBuf>,
    /// Write only these volumes (to replace lost or damaged ones): `--only-volume 3` or
    /// `--only-volume 2,5`. They are identical to the first time when the mirror, options,
    /// key and SOURCE_DATE_EPOCH are the same.
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub only_volume: Vec<u32>,
    /// The standalone manifest of the bundle being repaired (`ferry-<id>.bundle.json`, from
    /// any of its media): refuse, naming what differs (--volume-size, the mirror, the key,
    /// SOURCE_DATE_EPOCH, ferry's version…), unless this run makes exactly that bundle. With
    /// --only-volume and no --like, a manifest found on the --out is used.
    #[arg(long, value_name = "BUNDLE_JSON")]
    pub like: Option<PathBuf>,
    /// Say how many volumes of what size the bundle needs, how much is compressed, whether it
    /// fits the output, and how long writing takes; write nothing.
    #[arg(long)]
    pub plan: bool,
    /// Pack only what the inside lacks: a receipt from `ferry-unpack receipt` (or the
    /// receipt.json a push writes), or an earlier bundle's manifest (`ferry-*.bundle.json`).
    /// Layers and configs found there are left out; the bundle records that it needs them.
    #[arg(long, value_name = "RECEIPT_OR_MANIFEST")]
    pub base: Vec<PathBuf>,
    /// The registry the images came from, for layouts that record no original reference (a
    /// registry's storage directory, skopeo dir:, an OCI layout without containerd names, an
    /// oc layout without mapping.txt): each such image is recorded as
    /// ORIGIN/<its repository path in the layout>:<tag>, so push can write the mirror sets
    /// (ImageDigestMirrorSet …) for it. Originals the layout records are kept.
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]", conflicts_with = "config")]
    pub origin: Option<String>,
    /// The bundle format to write (SPEC.md §9): 2 (default) stores the manifest as one zstd
    /// frame, `ferry-<id>.bundle.json.zst`, a quarter of the size; 1 stores it as plain JSON,
    /// for an older ferry-unpack inside, which reads only version 1. Any ferry-unpack of
    /// this version reads both.
    // 2 is format_spec::manifest::BUNDLE_VERSION (this file also builds the man page,
    // without the format crate); base.rs tests hold them equal.
    #[arg(long, value_name = "1|2", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=2))]
    pub bundle_format: u32,
    /// Print no progress, only the result.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print JSON Lines events on stdout instead (docs/events.md): each volume written, then a summary.
    #[arg(long)]
    pub json: bool,
}
