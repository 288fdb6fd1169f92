//! The one error type: every finding names the file, the line and column when known, and
//! the field path, in the `file:line:col: path: what` form compilers use.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageSetError {
    #[error("{}: cannot read the image set: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid ImageSetConfiguration (YAML, schema, or a value).
    #[error("{}", located(file, *at, detail))]
    Invalid {
        file: PathBuf,
        /// 1-based line and column.
        at: Option<(usize, usize)>,
        /// `path: what is wrong` (serde_norway's wording for what it finds).
        detail: String,
    },
    /// A valid section that this ferry does not pull (operators, platform, helm, samples).
    #[error("{}", located(file, *at, detail))]
    Unsupported {
        file: PathBuf,
        at: Option<(usize, usize)>,
        detail: String,
    },
}

impl ImageSetError {
    /// The 1-based line and column of the finding, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            ImageSetError::Read { .. } => None,
            ImageSetError::Invalid { at, .. } | ImageSetError::Unsupported { at, .. } => *at,
        }
    }
}

fn located(file: &std::path::Path, at: Option<(usize, usize)>, detail: &str) -> String {
    match at {
        Some((line, col)) => format!("{}:{line}:{col}: {detail}", file.display()),
        None => format!("{}: {detail}", file.display()),
    }
}
