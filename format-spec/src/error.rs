//! Errors of the format library. Each variant reads as a finding and says where.

use std::path::PathBuf;

pub use crate::rule::Rule;

/// A document or structure that breaks a MUST-reject rule of SPEC.md: `rule` says which,
/// `detail` says what and where in words for people (it is the whole message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
#[non_exhaustive]
pub struct Invalid {
    pub rule: Rule,
    pub detail: String,
}

impl Invalid {
    pub fn new(rule: Rule, detail: impl Into<String>) -> Invalid {
        Invalid {
            rule,
            detail: detail.into(),
        }
    }

    /// As an I/O error, so a `Read` can report it and [`rule_of_io`] find it again.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] crate::key::KeyError),
    /// Not a ferry volume, or not one of this bundle: R1, R2 (the frame of the file) or
    /// R27 (volumes of two bundles).
    #[error("{path}: {reason}")]
    NotAVolume {
        path: PathBuf,
        rule: Rule,
        reason: String,
    },
    /// A signature check failed: R3, R10, R13.
    #[error("{path}: not signed by any trusted key ({detail})")]
    Untrusted {
        path: PathBuf,
        rule: Rule,
        detail: String,
    },
    #[error("{path}: {invalid}")]
    Invalid { path: PathBuf, invalid: Invalid },
    #[error("blob {digest} read from {path} has digest {actual}: the mirror is damaged (re-mirror this blob)")]
    InputDigestMismatch {
        path: PathBuf,
        digest: String,
        actual: String,
    },
    #[error("{path} changed while ferry-pack read it (size or time differs): finish the mirror run first, then pack again")]
    InputChanged { path: PathBuf },
    #[error("the spool in {dir} (ferry-pack's temporary file of compressed blobs) gave back other bytes for blob {digest} than were written to it: the disk under {dir} is failing. Those bytes reached no volume (each block is checked before use); run pack again with TMPDIR set to a directory on another disk")]
    SpoolChanged { dir: PathBuf, digest: String },
    #[error("the spool in {dir} (ferry-pack's temporary file of compressed blobs) could not be read for blob {digest}: {error}. Nothing unread reached a volume; run pack again with TMPDIR set to a directory on another disk")]
    SpoolUnreadable {
        dir: PathBuf,
        digest: String,
        error: std::io::Error,
    },
    #[error("volume size {size} is too small: {reason}")]
    VolumeTooSmall { size: u64, reason: String },
    #[error("{0}")]
    Plan(String),
    /// A blob that cannot be read from the volumes: `rule` is R28–R32 when a rule says
    /// why, `None` for a base blob of a delta bundle (SPEC.md §4.5), which no volume holds.
    #[error("{what}: {reason}")]
    Blob {
        what: String,
        rule: Option<Rule>,
        reason: String,
    },
    /// The cancel flag was set (Ctrl-C, SIGTERM): stopped at a safe point.
    #[error("interrupted")]
    Interrupted,
    #[error("another ferry-unpack{} is using state directory {}; wait for it to finish, or use another --state", .holder.map(|p| format!(" (pid {p})")).unwrap_or_default(), .dir.display())]
    StateBusy { dir: PathBuf, holder: Option<u32> },
}

impl FormatError {
    /// The SPEC.md rule this error reports a breach of, if it is a finding about the input
    /// (I/O errors and pack-time errors carry none).
    pub fn rule(&self) -> Option<Rule> {
        match self {
            FormatError::NotAVolume { rule, .. } | FormatError::Untrusted { rule, .. } => {
                Some(*rule)
            }
            FormatError::Invalid { invalid, .. } => Some(invalid.rule),
            FormatError::Blob { rule, .. } => *rule,
            _ => None,
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FormatError {
        let path = path.into();
        move |source| FormatError::Io { path, source }
    }
}

/// The rule an I/O error of a blob reader reports (decoding and digest checks report
/// through `std::io::Read`), if it carries a finding.
pub fn rule_of_io(e: &std::io::Error) -> Option<Rule> {
    let inner = e.get_ref()?;
    inner.downcast_ref::<Invalid>().map(|i| i.rule).or_else(|| {
        inner
            .downcast_ref::<FormatError>()
            .and_then(FormatError::rule)
    })
}
