//! Errors of the format library. Each variant reads as a finding and says where.

use std::path::PathBuf;

/// A document or structure that breaks a MUST of SPEC.md; the text says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(text: impl Into<String>) -> Invalid {
        Invalid(text.into())
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
    #[error("{path}: {reason}")]
    NotAVolume { path: PathBuf, reason: String },
    #[error("{path}: not signed by any trusted key ({detail})")]
    Untrusted { path: PathBuf, detail: String },
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
    #[error("volume size {size} is too small: {reason}")]
    VolumeTooSmall { size: u64, reason: String },
    #[error("{0}")]
    Plan(String),
    #[error("{what}: {reason}")]
    Blob { what: String, reason: String },
    /// The cancel flag was set (Ctrl-C, SIGTERM): stopped at a safe point.
    #[error("interrupted")]
    Interrupted,
    #[error("another ferry-unpack{} is using state directory {}; wait for it to finish, or use another --state", .holder.map(|p| format!(" (pid {p})")).unwrap_or_default(), .dir.display())]
    StateBusy { dir: PathBuf, holder: Option<u32> },
}

impl FormatError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FormatError {
        let path = path.into();
        move |source| FormatError::Io { path, source }
    }
}
