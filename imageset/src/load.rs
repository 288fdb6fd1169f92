//! Reading an image set file: the kind and apiVersion first (so that an oc-mirror v1 file
//! or a DeleteImageSetConfiguration gets a message that says so, not a list of unknown
//! fields), then the whole schema.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ImageSetError;
use crate::locate::{self, Seg};
use crate::schema::ImageSetConfiguration;

pub const API_VERSION: &str = "mirror.openshift.io/v2alpha1";
pub const KIND: &str = "ImageSetConfiguration";
/// An image set is a hand-written list; anything larger is not one (and is not read whole).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// An image set file, read and checked against the schema. What ferry's pull does with it
/// is decided by [`ImageSet::validate_for_pull`].
#[derive(Debug)]
pub struct ImageSet {
    pub file: PathBuf,
    pub config: ImageSetConfiguration,
    text: String,
}

/// Only the two fields that say what the document is; anything else is looked at later.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "apiVersion")]
    api_version: Option<serde_norway::Value>,
    kind: Option<serde_norway::Value>,
}

impl ImageSet {
    /// Reads and parses `file`.
    pub fn from_file(file: &Path) -> Result<ImageSet, ImageSetError> {
        let read_err = |source| ImageSetError::Read {
            file: file.to_path_buf(),
            source,
        };
        let mut text = String::new();
        let f = std::fs::File::open(file).map_err(read_err)?;
        std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_FILE_BYTES + 1), &mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(ImageSetError::Invalid {
                file: file.to_path_buf(),
                at: None,
                detail: format!("larger than {} MiB: not an image set", MAX_FILE_BYTES >> 20),
            });
        }
        ImageSet::parse(text, file)
    }

    /// Parses `text`; `file` is the name errors give.
    pub fn parse(text: String, file: &Path) -> Result<ImageSet, ImageSetError> {
        // An empty document (or only comments) reads as null, and as a Header of Nones.
        let whole: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| yaml_error(file, &text, e))?;
        if whole.is_null() {
            return Err(yaml_error(file, "", serde::de::Error::custom("empty")));
        }
        let header: Header =
            serde_norway::from_str(&text).map_err(|e| yaml_error(file, &text, e))?;
        let at = |key| locate::locate(&text, &[Seg::Key(key)]);
        let invalid = |key: &'static str, detail: String| ImageSetError::Invalid {
            file: file.to_path_buf(),
            at: at(key),
            detail,
        };
        let start =
            format!("an image set starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`");
        match header.kind.as_ref().map(|v| v.as_str()) {
            None => {
                return Err(ImageSetError::Invalid {
                    file: file.to_path_buf(),
                    at: None,
                    detail: format!("kind: missing: {start}"),
                })
            }
            Some(Some(KIND)) => {}
            Some(Some("DeleteImageSetConfiguration")) => {
                return Err(invalid(
                    "kind",
                    format!("kind: DeleteImageSetConfiguration is oc-mirror's list of images to delete from a registry, not an image set to pull: {start}"),
                ))
            }
            Some(other) => {
                return Err(invalid(
                    "kind",
                    format!("kind: {} is not an image set: {start}", shown(other)),
                ))
            }
        }
        match header.api_version.as_ref().map(|v| v.as_str()) {
            None => {
                return Err(ImageSetError::Invalid {
                    file: file.to_path_buf(),
                    at: None,
                    detail: format!("apiVersion: missing: {start}"),
                })
            }
            Some(Some(API_VERSION)) => {}
            Some(Some(v1 @ ("mirror.openshift.io/v1alpha2" | "mirror.openshift.io/v1alpha1"))) => {
                return Err(invalid(
                    "apiVersion",
                    format!("apiVersion: {v1} is oc-mirror v1's format; ferry reads oc-mirror v2's {API_VERSION} (drop storageConfig and write apiVersion: {API_VERSION}; the mirror section is mostly the same)"),
                ))
            }
            Some(other) => {
                return Err(invalid(
                    "apiVersion",
                    format!("apiVersion: {} is not supported: ferry reads {API_VERSION}", shown(other)),
                ))
            }
        }
        let config: ImageSetConfiguration =
            serde_norway::from_str(&text).map_err(|e| yaml_error(file, &text, e))?;
        Ok(ImageSet {
            file: file.to_path_buf(),
            config,
            text,
        })
    }

    /// The line and column of a field path in the file.
    /// Lets go of the parsed document once [`ImageSet::validate_for_pull`] has made what a
    /// pull reads: what is kept (the text) still locates errors, which is all a pull asks
    /// of the file later. An image set of 6×10^4 images held 30 MB this way.
    pub fn forget_parsed(&mut self) {
        self.config.mirror = crate::schema::Mirror::default();
    }

    pub fn locate(&self, path: &[Seg]) -> Option<(usize, usize)> {
        locate::locate(&self.text, path)
    }

    pub(crate) fn finding(&self, path: &[Seg], what: &str) -> (Option<(usize, usize)>, String) {
        (
            self.locate(path),
            format!("{}: {what}", locate::render(path)),
        )
    }
}

fn shown(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(not a string)".into(),
    }
}

/// serde_norway says `path: what at line L column C`; ferry puts the position in front.
fn yaml_error(file: &Path, text: &str, e: serde_norway::Error) -> ImageSetError {
    let at = e.location().map(|l| (l.line(), l.column()));
    let mut detail = e.to_string();
    if let Some((l, c)) = at {
        detail = detail.replacen(&format!(" at line {l} column {c}"), "", 1);
    }
    // The two structs are ferry's names; the user knows the document as an image set.
    detail = detail
        .replace("struct Header", "an image set (a mapping)")
        .replace("struct ImageSetConfiguration", "an image set (a mapping)");
    if text.trim().is_empty() || detail == "EOF while parsing a value" {
        detail = format!("the file is empty: an image set starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`");
    }
    ImageSetError::Invalid {
        file: file.to_path_buf(),
        at,
        detail,
    }
}
