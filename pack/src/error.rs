//! How a ferry-pack run fails: each variant is a kind of failure with its message, and
//! [`PackError::exit_code`] says what the process exits with: 1 for every failure of a
//! pack (a script needs no more: the message says what to do) and for images a pull could
//! not pull; 2 for what the connected side's commands take from the user (a bad option
//! value, image set, registries.conf, auth file or cache), as clap's own usage errors; 130
//! when Ctrl-C or SIGTERM stopped the run, as a shell reports it.

use format_spec::key::KeyError;
use format_spec::size::BadSize;
use format_spec::FormatError;
use mirror::MirrorError;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// An option value clap cannot check (`--platform`, `--retry-for`, a file that is not there).
    #[error("{0}")]
    Usage(String),
    /// The image set cannot be used.
    #[error(transparent)]
    ImageSet(#[from] imageset::ImageSetError),
    /// The pull could not run (the cache, registries.conf, an auth file) or was interrupted.
    #[error(transparent)]
    Pull(#[from] pull::PullError),
    /// Some images could not be pulled; each is named.
    #[error("{0}")]
    NotPulled(String),
    /// A value given on the command line, or a file named there, that cannot be used:
    /// `--out`, `--origin`, `--base`, `SOURCE_DATE_EPOCH`.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Size(#[from] BadSize),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The mirror cannot be read.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// The mirror, as read, cannot be made into a bundle.
    #[error("{0}")]
    Unpackable(String),
    #[error(transparent)]
    Format(#[from] FormatError),
    /// `--like` (or a manifest found on `--out`): this run makes another bundle than the
    /// original, so its volumes would not fit with the original's.
    #[error("{0}")]
    OtherBundle(String),
    #[error("checking free space: {0}")]
    FreeSpace(std::io::Error),
    /// The bundle does not fit the outputs given; nothing was written.
    #[error("{0}")]
    DoesNotFit(String),
    /// Ctrl-C or SIGTERM before anything was written.
    #[error("{0}")]
    Interrupted(String),
    /// Writing stopped part-way (a full disk, Ctrl-C, a medium refused): what is complete,
    /// and the command that writes the rest.
    #[error("{message}")]
    Stopped { message: String, interrupted: bool },
}

impl PackError {
    pub fn exit_code(&self) -> u8 {
        match self {
            PackError::Interrupted(_)
            | PackError::Stopped {
                interrupted: true, ..
            } => 130,
            PackError::Pull(pull::PullError::Interrupted(_)) => 130,
            // The image could not be pulled or is no catalog: as a pull's failed images.
            PackError::Pull(pull::PullError::Failed(_)) => 1,
            PackError::Usage(_) | PackError::ImageSet(_) | PackError::Pull(_) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(PackError::Input("x".into()).exit_code(), 1);
        assert_eq!(PackError::DoesNotFit("x".into()).exit_code(), 1);
        assert_eq!(PackError::Interrupted("x".into()).exit_code(), 130);
        assert_eq!(PackError::NotPulled("x".into()).exit_code(), 1);
        assert_eq!(PackError::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            PackError::Pull(pull::PullError::Config("x".into())).exit_code(),
            2
        );
        assert_eq!(
            PackError::Pull(pull::PullError::Interrupted("x".into())).exit_code(),
            130
        );
        // catalog list: the catalog cannot be pulled or is none.
        let failed = pull::PullError::Failed(pull::Failure {
            reference: "r".into(),
            registry: "h".into(),
            error: "e".into(),
        });
        assert_eq!(PackError::Pull(failed).exit_code(), 1);
        // A selection the catalog cannot give is the image set's (located by the CLI).
        let op = pull::PullError::Operator {
            index: 0,
            field: Vec::new(),
            catalog: "c".into(),
            message: "m".into(),
        };
        assert_eq!(PackError::Pull(op).exit_code(), 2);
        let stopped = |interrupted| PackError::Stopped {
            message: "x".into(),
            interrupted,
        };
        assert_eq!(stopped(true).exit_code(), 130);
        assert_eq!(stopped(false).exit_code(), 1);
    }
}
