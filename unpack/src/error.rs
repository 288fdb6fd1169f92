//! What a ferry-unpack command ends with: how it finished ([`Exit`]) or why it could not
//! ([`Error`]), each with its exit status (README "Exit status"; the tests pin them).

use std::path::PathBuf;

use format_spec::key::KeyError;
use format_spec::volume_set::SetError;
use format_spec::FormatError;
use registry_client::RegistryError;
use replay::mapping::MappingError;
use replay::outputs::OutputError;
use replay::push::PushError;
use replay::registry::RegistryFailure;

use crate::extract::ExtractError;

/// 1: verification failed, or (push) an image failed or a volume was left out.
const FAILED: u8 = 1;
/// 2: a usage or I/O error, or (push) the registry cannot be reached as given.
const USAGE_OR_IO: u8 = 2;
/// 3: (push) everything given went in, but some images wait on volumes not given.
const INCOMPLETE: u8 = 3;
/// 130: Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports a process it ended).
const INTERRUPTED: u8 = 130;

/// How a command that ran to its end went; its findings are already printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// A volume failed verification; (push) an image failed or a volume was left out.
    Failed,
    /// (verify) Nothing failed verification, but something could not be read.
    Unreadable,
    /// (push) Everything given went in; some images wait on volumes not given.
    Incomplete,
    /// Ctrl-C or SIGTERM: what is done is said; running the command again resumes.
    Interrupted,
}

impl Exit {
    pub fn exit_code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => FAILED,
            Exit::Unreadable => USAGE_OR_IO,
            Exit::Incomplete => INCOMPLETE,
            Exit::Interrupted => INTERRUPTED,
        }
    }
}

/// Why a command stopped; printed as `ferry-unpack: error: …`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--trust` key cannot be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The volumes given make no bundle (or none opened).
    #[error(transparent)]
    Volumes(#[from] SetError),
    /// `verify --state`: the state directory cannot be locked.
    #[error(transparent)]
    State(FormatError),
    /// `status`: the state directory cannot be read.
    #[error("state directory {}: {source}", .dir.display())]
    StateUnreadable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// `--to` does not name a destination, or an image has none under it.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("--manifests-dir {}: {source}; nothing was pushed", .dir.display())]
    ManifestsDir { dir: PathBuf, source: OutputError },
    /// The credentials files cannot be read.
    #[error(transparent)]
    Credentials(Box<RegistryError>),
    #[error("interrupted before anything was sent to the registry")]
    InterruptedBeforeSending,
    /// A registry that is there but keeps failing (5xx, 429 past --retry-for) or does
    /// not answer in time: like an outage in the middle of a push, resumed by a rerun.
    #[error("{source}\n  the registry is not answering as it should: run the same command again to resume (a longer --retry-for waits longer); nothing was pushed")]
    RegistryNotAnswering { source: Box<RegistryError> },
    /// The first contact with the registry failed: the address, scheme, TLS or
    /// credentials given are wrong; `advice` says what to change.
    #[error("{source}{}", .advice.as_ref().map(|a| format!("\n  {a}")).unwrap_or_default())]
    Connect {
        source: Box<RegistryError>,
        advice: Option<String>,
    },
    #[error(transparent)]
    Push(Box<PushError>),
    #[error("writing the cluster manifests into {}: {source}", .dir.display())]
    Outputs { dir: PathBuf, source: OutputError },
    /// `receipt`: its dry run could not be made.
    #[error(transparent)]
    ReceiptPush(Box<PushError>),
    /// `receipt`: the registry could not say whether it holds an image.
    #[error(transparent)]
    ReceiptRegistry(Box<RegistryFailure>),
    #[error("interrupted; no receipt printed")]
    ReceiptInterrupted,
    /// `catalog list`: no image of the bundle is an operator catalog.
    #[error("bundle {bundle} holds no operator catalog (no image is marked as one): nothing to list; `ferry-unpack inspect` lists its images")]
    NoCatalog { bundle: format_spec::Digest },
    /// `catalog list --catalog NAME`: no catalog of the bundle has that name.
    #[error("--catalog {name}: no operator catalog of the bundle is named so; it has {}", .available.join(", "))]
    NoSuchCatalog {
        name: String,
        available: Vec<String>,
    },
    /// `catalog list --package P`: no catalog listed holds it.
    #[error("--package {package}: no catalog listed holds it; they hold {}", if .available.is_empty() { "none that ferry could name".to_string() } else { .available.join(", ") })]
    NoSuchPackage {
        package: String,
        available: Vec<String>,
    },
    /// `catalog list`: the catalog image in the volumes cannot be read (damaged, or not
    /// a catalog ferry reads).
    #[error("catalog {image}: {source}")]
    CatalogUnreadable {
        image: String,
        source: Box<catalog::image::ImageError>,
    },
    /// `catalog list`: no scratch directory for the catalog's layer.
    #[error("creating a scratch directory (TMPDIR) for the catalog's content: {source}")]
    Scratch { source: std::io::Error },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Volumes(e) => match e {
                SetError::Inputs(_) | SetError::NoVolumeFiles | SetError::State { .. } => {
                    USAGE_OR_IO
                }
                _ => FAILED,
            },
            Error::Extract(_)
            | Error::RegistryNotAnswering { .. }
            | Error::CatalogUnreadable { .. } => FAILED,
            Error::Push(e) if matches!(**e, PushError::Mapping(_)) => USAGE_OR_IO,
            Error::Push(_) => FAILED,
            Error::InterruptedBeforeSending | Error::ReceiptInterrupted => INTERRUPTED,
            Error::Key(_)
            | Error::State(_)
            | Error::StateUnreadable { .. }
            | Error::Mapping(_)
            | Error::ManifestsDir { .. }
            | Error::Credentials(_)
            | Error::Connect { .. }
            | Error::Outputs { .. }
            | Error::ReceiptPush(_)
            | Error::ReceiptRegistry(_)
            | Error::NoCatalog { .. }
            | Error::NoSuchCatalog { .. }
            | Error::NoSuchPackage { .. }
            | Error::Scratch { .. } => USAGE_OR_IO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README "Exit status": the numbers scripts test for.
    #[test]
    fn exit_statuses_are_those_the_readme_gives() {
        assert_eq!(Exit::Success.exit_code(), 0);
        assert_eq!(Exit::Failed.exit_code(), 1);
        assert_eq!(Exit::Unreadable.exit_code(), 2);
        assert_eq!(Exit::Incomplete.exit_code(), 3);
        assert_eq!(Exit::Interrupted.exit_code(), 130);
        assert_eq!(Error::from(SetError::NoVolumeFiles).exit_code(), 2);
        let none = SetError::NoneOpened {
            left_out: Vec::new(),
        };
        assert_eq!(Error::from(none).exit_code(), 1);
        assert_eq!(Error::InterruptedBeforeSending.exit_code(), 130);
        assert_eq!(Error::ReceiptInterrupted.exit_code(), 130);
        let mapping = || MappingError("bad".into());
        assert_eq!(Error::Mapping(mapping()).exit_code(), 2);
        assert_eq!(
            Error::Push(Box::new(PushError::Mapping(mapping()))).exit_code(),
            2
        );
        let missing = PushError::BaseMissing {
            registry: "r".into(),
            missing: Vec::new(),
        };
        assert_eq!(Error::Push(Box::new(missing)).exit_code(), 1);
        // catalog list: asking for what the bundle does not hold is a usage error.
        let none = Error::NoCatalog {
            bundle: format_spec::Digest([0; 32]),
        };
        assert_eq!(none.exit_code(), 2);
        assert!(none.to_string().contains("no operator catalog"), "{none}");
        let package = Error::NoSuchPackage {
            package: "x".into(),
            available: vec!["a".into(), "b".into()],
        };
        assert_eq!(package.exit_code(), 2);
        assert!(package.to_string().ends_with("they hold a, b"), "{package}");
    }
}
