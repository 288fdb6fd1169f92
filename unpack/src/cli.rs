// The command line of ferry-unpack.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
pub use cli_support::RetryFor;

#[derive(Debug, Parser)]
#[command(
    name = "ferry-unpack",
    version,
    about = "Verify ferry volumes at the gap; push them into a registry inside (or extract them).",
    after_help = "Exit status: 0 success; 1 verification failed (or, for push, an image failed); \
2 usage or I/O error, or (push) the registry cannot be reached as given; 3 (push) everything given \
went in but some images wait on volumes not given; 130 interrupted (Ctrl-C, SIGTERM): run the same \
command again to resume.

The EFK operators case (README), inside:
  ferry-unpack verify /media/usb1 --trust site.key.pub
  ferry-unpack push /media/usb1 --trust site.key.pub --to registry.internal:8443/efk-mirror \\
      --authfile pull-secret.json --ca-cert internal-ca.pem
  ferry-unpack push /media/usb2 --trust site.key.pub --to registry.internal:8443/efk-mirror \\
      --authfile pull-secret.json --ca-cert internal-ca.pem
  oc apply -f ferry-manifests-<bundle id>/cluster/              # OpenShift 4.13 and later
  oc apply -f ferry-manifests-<bundle id>/cluster-before-4.13/  # older clusters instead
  ferry-unpack status

Other:
  ferry-unpack verify vols/*.tar --trust site.key.pub --json > audit.json
  ferry-unpack push /media/usb1 --trust site.key.pub --to quay.internal/org \\
      --max-components 2 --dry-run
  ferry-unpack extract /media/usb1 /media/usb2 --trust site.key.pub --to ./mirror --layout original
  ferry-unpack inspect /media/usb1
  ferry-unpack catalog list /media/usb1 --trust site.key.pub"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Show no progress (results and errors are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check volumes: signatures against trusted keys first, then every byte. Never writes.
    Verify {
        /// Volume files, or directories holding them (several mount points are fine).
        #[arg(required = true, value_name = "VOL")]
        volumes: Vec<PathBuf>,
        /// Public key to trust (repeat for several); from `ferry-pack keygen` or `openssl pkey -pubout`.
        #[arg(long, required = true, value_name = "PUB")]
        trust: Vec<PathBuf>,
        /// Print the report as one JSON object on stdout (for audit logs).
        #[arg(long)]
        json: bool,
        /// Record the volumes that verified in this state directory (for `status` and a later
        /// push); nothing is ever written next to the volumes.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
    /// Restore the images from all volumes of a bundle into a directory.
    Extract {
        #[arg(required = true, value_name = "VOL")]
        volumes: Vec<PathBuf>,
        #[arg(long, required = true, value_name = "PUB")]
        trust: Vec<PathBuf>,
        /// Directory to create (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// `oci`: one OCI image layout with every image; `original`: the layout the bundle
        /// was packed from, byte for byte.
        #[arg(long, value_enum, default_value_t = Layout::Oci)]
        layout: Layout,
    },
    /// Push what the volumes hold into a registry, straight from the media; resumable.
    Push(PushArgs),
    /// Print what the registry holds of the bundle's images (JSON), for building the next,
    /// smaller bundle (`ferry-pack --base`).
    Receipt(RegistryArgs),
    /// Where this site stands: volumes seen, images in the registry, images waiting and on
    /// which volumes, pieces staged (from the state directory push keeps).
    Status {
        /// The state directory (default: as for push).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List a bundle's volumes, images, sizes and signing key.
    Inspect {
        #[arg(required = true, value_name = "VOL")]
        volumes: Vec<PathBuf>,
        /// Check signatures with these keys too; without it nothing shown is verified.
        #[arg(long, value_name = "PUB")]
        trust: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The operator catalogs a bundle carries (`catalog list`).
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// What each operator catalog of the bundle offers (packages, channels, versions).
    ///
    /// Its packages with their default channel, channels with their head and versions, and
    /// with --package the bundles of one package, read from the catalog image in the volumes (only its manifests, config
    /// and the layer holding the catalog). When the volumes holding those are not given
    /// (or the bundle is a delta whose base holds them), the packages the bundle records
    /// are listed instead, and it says what is missing.
    #[command(
        after_help = "Exit status: 0 listed (a catalog whose content cannot be read \
from the volumes given is listed by the packages the bundle records); 1 a catalog could not be \
read and the bundle records no packages for it, or its content is damaged; 2 usage or I/O error: \
no catalog in the bundle, no catalog named by --catalog, no package named by --package.

  ferry-unpack catalog list /media/usb1 /media/usb2 --trust site.key.pub
  ferry-unpack catalog list /media/usb1 --package elasticsearch-operator --json
  ferry-unpack catalog list /media/usb1 --recorded"
    )]
    List(CatalogListArgs),
}

#[derive(Debug, clap::Args)]
pub struct CatalogListArgs {
    /// Volume files, or directories holding them.
    #[arg(required = true, value_name = "VOL")]
    pub volumes: Vec<PathBuf>,
    /// Check signatures with these keys too; without it nothing shown is verified.
    #[arg(long, value_name = "PUB")]
    pub trust: Vec<PathBuf>,
    /// Only this package: its channels, and its bundles with their versions and images.
    #[arg(long, value_name = "P")]
    pub package: Option<String>,
    /// Only this catalog (its name in the bundle `REPOSITORY[:TAG]`, its original reference,
    /// or its destination path); default: every catalog of the bundle.
    #[arg(long, value_name = "NAME")]
    pub catalog: Option<String>,
    /// Only the packages the bundle records: no catalog content is read (any one volume
    /// does).
    #[arg(long)]
    pub recorded: bool,
    /// One `catalog_list` event per catalog on stdout (JSON Lines, docs/events.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    Oci,
    Original,
}

/// How to reach the registry, shared by `push` and `receipt`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Volume files, or directories holding them.
    #[arg(required = true, value_name = "VOL")]
    pub volumes: Vec<PathBuf>,
    #[arg(long, required = true, value_name = "PUB")]
    pub trust: Vec<PathBuf>,
    /// Destination: HOST[:PORT][/PREFIX]; each image goes to PREFIX/<its original repository path>.
    /// `http://HOST…` asks for plain HTTP (with --insecure). Never put a password here: give
    /// credentials in --authfile.
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    pub to: String,
    /// Credentials file (containers auth.json, docker config.json, OpenShift pull-secret.json);
    /// default: $REGISTRY_AUTH_FILE, then podman's and docker's usual places.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for the registry's TLS certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain HTTP or unverified TLS, only when you mean it: TLS is tried first
    /// (plain HTTP first for loopback hosts) and the other is used if the registry speaks
    /// only that; push says which. `http://` or `https://` in --to fixes the scheme.
    #[arg(long)]
    pub insecure: bool,
    /// Flatten destination paths to at most N components, as `oc image mirror` does
    /// (2 for Quay organisations and Harbor projects); 0 = unlimited.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_components: usize,
    /// How long to keep retrying a registry that fails (5xx, 429, connection errors) before
    /// giving up on a request (seconds, or 30s, 10m, 2h); running the command again resumes.
    #[arg(long, value_name = "DURATION", default_value = "60")]
    pub retry_for: RetryFor,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Requests to the registry at once (blob HEADs, mounts and uploads, manifest and tag
    /// HEADs and PUTs). The default keeps a local registry on two cores busy: per image the
    /// registry's own work, not the round trips, is then the limit (bench/push.sh).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub jobs: usize,
    /// Where to keep what later runs need (signed tables of volumes seen, pieces of blobs
    /// that span into volumes not yet given). Default: $XDG_STATE_HOME/ferry or ~/.local/state/ferry.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Where to write the cluster manifests (default: ./ferry-manifests-<bundle id>; checked
    /// before anything is pushed). DIR/cluster/ holds only objects for OpenShift 4.13 and
    /// later (imageDigestMirrorSet.yaml, imageTagMirrorSet.yaml, catalogSource.yaml, and
    /// operatorHub.yaml, which disables the default catalog sources, when the bundle has a
    /// catalog): `oc apply -f DIR/cluster/`. DIR/cluster-before-4.13/ holds the same as
    /// imageContentSourcePolicy.yaml, catalogSource.yaml and operatorHub.yaml for older
    /// clusters: apply one directory, never both. mapping.txt and receipt.json (for `ferry-pack --base`) are in
    /// DIR itself. A kind with nothing to mirror gets no file (push says why). When some
    /// image fails, the outputs for those that went in go to DIR/partial/ (marked partial),
    /// and DIR keeps those of the last complete push.
    #[arg(long, value_name = "DIR")]
    pub manifests_dir: Option<PathBuf>,
    /// Pull secrets to name in every CatalogSource (`spec.secrets`); repeat for several.
    #[arg(long, value_name = "NAME")]
    pub catalog_secret: Vec<String>,
    /// The publisher every CatalogSource names (`spec.publisher`, shown in the OperatorHub
    /// console).
    #[arg(long, value_name = "NAME", default_value = "ferry")]
    pub catalog_publisher: String,
    /// Show the mapping and what would be uploaded; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Look at every blob of every image, even of those whose tags already name them. By
    /// default an image whose tag is in place is taken as whole (ferry puts a tag only after
    /// the image's every part, and the registry refuses a manifest whose parts it lacks); use
    /// this after the registry lost data (a restored or damaged storage) to put back what is
    /// missing. Without it, a repeat push takes the images the last push from this --state
    /// left complete as they are when the registry still lists their tags (one tag list a
    /// repository); with it, every tag is asked for and a moved one put back.
    #[arg(long)]
    pub recheck: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The state directory when `--state` is not given: `$XDG_STATE_HOME/ferry`, else
/// `~/.local/state/ferry`.
pub fn default_state() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("ferry");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/ferry"),
        None => PathBuf::from(".ferry-state"),
    }
}
