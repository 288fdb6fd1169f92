//! What can be wrong with a mirror, or with a tree we are asked to write. Every variant
//! names the file (or tree entry) it is about.

use std::fmt::Write as _;
use std::path::PathBuf;

/// The blobs one manifest (or tag, or index.json) references that the mirror lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingIn {
    /// The file that references the missing blobs: a manifest, a tag symlink or link file,
    /// an `index.json`, a skopeo `dir:` `manifest.json`.
    pub manifest: PathBuf,
    pub repository: String,
    /// The missing digests, sorted (`sha256:<hex>` in the message).
    pub missing: Vec<oci::Digest>,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{}: not an image mirror: {looked_for}", path.display())]
    NotAMirror { path: PathBuf, looked_for: String },

    #[error("{}: holds more than one kind of mirror ({found}); point at one of them", path.display())]
    AmbiguousLayout { path: PathBuf, found: String },

    #[error("{}: content hashes to {actual}, but the mirror names it {expected}", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("{}", describe_missing(missing))]
    MissingBlobs { missing: Vec<MissingIn> },

    #[error("{}: {digest} is {actual} bytes, but {} declares {expected}", path.display(), manifest.display())]
    SizeMismatch {
        /// The blob file.
        path: PathBuf,
        /// The manifest whose descriptor declares the size.
        manifest: PathBuf,
        digest: String,
        expected: u64,
        actual: u64,
    },

    #[error("{}: unsupported manifest: {reason}", path.display())]
    UnsupportedManifest { path: PathBuf, reason: String },

    /// `reason` quotes the digest and says what is wrong with it (sha512 by name).
    #[error("{}: {reason}", path.display())]
    UnsupportedDigest {
        path: PathBuf,
        digest: String,
        reason: oci::DigestError,
    },

    #[error("{}: not valid JSON: {source}", path.display())]
    InvalidJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}: symlink to {target:?} is absolute or leaves the tree", path.display())]
    UnsafeSymlink { path: PathBuf, target: String },

    #[error("{}: unsupported file type ({kind}); only directories, regular files and symlinks are carried", path.display())]
    UnsupportedFile { path: PathBuf, kind: String },

    #[error("{}: file name is not UTF-8", path.display())]
    NonUtf8Path { path: PathBuf },

    #[error("{}: {reason}", path.display())]
    MalformedLayout { path: PathBuf, reason: String },

    #[error("{}: tag {repository}:{tag} names both {first} and {second}", path.display())]
    DuplicateTag {
        path: PathBuf,
        repository: String,
        tag: String,
        first: String,
        second: String,
    },

    #[error("tree entry {entry:?}: unsafe path: {reason}")]
    UnsafePath { entry: String, reason: String },

    #[error("{}: destination must be absent or an empty directory", path.display())]
    DestinationNotEmpty { path: PathBuf },

    #[error("tree entry {entry:?}: content of {digest}: {reason}")]
    ContentMismatch {
        entry: String,
        digest: String,
        reason: String,
    },

    #[error("{digest}: cannot open content for {entry:?}: {source}")]
    Open {
        entry: String,
        digest: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("image {image}: no {what} known for {digest}")]
    MissingMetadata {
        image: String,
        what: &'static str,
        digest: String,
    },

    /// Images asked for by ref.name that the pull cache's index.json does not list.
    #[error("{} not in the cache {}: {}; run `ferry-pack pull --config … --cache {}` first", plural(absent.len()), cache.display(), absent.join(", "), cache.display())]
    NotInCache { cache: PathBuf, absent: Vec<String> },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MirrorError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MirrorError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        MirrorError::MalformedLayout {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// A directory walk that failed below `root`: the entry it failed at, and why (a
    /// loop of directories is the one failure walkdir reports without an I/O error).
    pub(crate) fn walk(root: &std::path::Path, e: walkdir::Error) -> Self {
        let path = e.path().unwrap_or(root).to_path_buf();
        match e.into_io_error() {
            Some(io) => MirrorError::io(path, io),
            None => MirrorError::malformed(path, "filesystem loop"),
        }
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 image is".into()
    } else {
        format!("{n} images are")
    }
}

fn describe_missing(missing: &[MissingIn]) -> String {
    let blobs: std::collections::BTreeSet<&oci::Digest> =
        missing.iter().flat_map(|m| &m.missing).collect();
    let mut out = format!(
        "{} blob(s) missing from the mirror, referenced by {} file(s):",
        blobs.len(),
        missing.len()
    );
    for m in missing {
        let _ = write!(out, "\n  {} ({}):", m.manifest.display(), m.repository);
        for d in &m.missing {
            let _ = write!(out, "\n    {d}");
        }
    }
    out
}
