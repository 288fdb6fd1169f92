//! Layouts that are directories of their own (OCI image layouts, skopeo `dir:`): the file
//! that marks a directory as one, and the repository such a directory stands for. Detection
//! (`detect.rs`) and the two layout readers share these; keeping them here means the readers
//! never import detection, and detection never imports the readers.

use std::fs;
use std::path::Path;

use crate::error::MirrorError;

/// The file that makes a directory an OCI image layout (image-spec `image-layout.md`).
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The file that makes a directory a skopeo `dir:` layout, and how it starts.
pub const VERSION_FILE: &str = "version";
pub const VERSION_PREFIX: &[u8] = b"Directory Transport Version";

/// The repository a layout directory stands for: its path below the root, or, for the root
/// itself, the root's own directory name.
pub(crate) fn repository_for_dir(root: &Path, rel: &str) -> Result<String, MirrorError> {
    if !rel.is_empty() {
        return Ok(rel.to_string());
    }
    let canonical = fs::canonicalize(root).map_err(|e| MirrorError::io(root, e))?;
    canonical
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            MirrorError::malformed(root, "cannot name a repository after this directory")
        })
}
