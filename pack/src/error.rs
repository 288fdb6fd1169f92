//! How a ferry-pack run fails: each variant is a kind of failure with its message, and
//! [`PackError::exit_code`] says what the process exits with: 1 for every failure (a
//! script needs no more: the message says what to do), 130 when Ctrl-C or SIGTERM stopped
//! the run, as a shell reports it. clap's own usage errors exit 2 before any of this runs.

use format_spec::key::KeyError;
use format_spec::size::BadSize;
use format_spec::FormatError;
use mirror::MirrorError;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
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
        let stopped = |interrupted| PackError::Stopped {
            message: "x".into(),
            interrupted,
        };
        assert_eq!(stopped(true).exit_code(), 130);
        assert_eq!(stopped(false).exit_code(), 1);
    }
}
