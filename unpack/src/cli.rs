//! The command line of ferry-unpack.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ferry-unpack",
    version,
    about = "Verify ferry volumes at the gap; extract them inside.",
    after_help = "Exit status: 0 all given volumes verified, 1 verification failed, 2 usage or I/O error.

Examples:
  ferry-unpack verify /media/usb1 --trust site.key.pub
  ferry-unpack verify vols/*.tar --trust site.key.pub --json > audit.json
  ferry-unpack extract /media/usb1 /media/usb2 --trust site.key.pub --to ./mirror --layout oci
  ferry-unpack inspect /media/usb1"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    Oci,
    Original,
}
