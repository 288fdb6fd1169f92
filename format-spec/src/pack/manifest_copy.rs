//! The standalone `ferry-<id>.bundle.json.zst` (version 1: `.bundle.json`) and its signature, written beside the volumes
//! on every medium (SPEC.md §5.3 "Writing", §5.7).

use std::fs;
use std::path::Path;

use crate::error::FormatError;
use crate::key::PrivateKey;
use crate::plan::Plan;
use crate::volume;

/// Bytes the standalone manifest and its signature take on each medium.
pub fn manifest_copy_size(plan: &Plan) -> u64 {
    plan.manifest_bytes.len() as u64 + crate::key::SIGNATURE_LEN as u64
}

/// The standalone `ferry-<id>.bundle.json` and its signature, beside the volumes. A copy
/// already there with the same bytes is left as it is (a rerun on a full medium).
pub fn write_manifest_copy(plan: &Plan, key: &PrivateKey, out: &Path) -> Result<(), FormatError> {
    let name = volume::manifest_file_name(&plan.manifest.bundle_id, plan.manifest.ferry_bundle);
    let sig = key.sign(&plan.manifest_bytes);
    for (path, bytes) in [
        (out.join(&name), &plan.manifest_bytes[..]),
        (out.join(format!("{name}.sig")), &sig[..]),
    ] {
        durable_file::refuse_symlink(&path).map_err(FormatError::io(&path))?;
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        durable_file::write(&path, bytes).map_err(FormatError::io(&path))?;
    }
    Ok(())
}
