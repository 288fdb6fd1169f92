//! `--like`: a volume written again (`--only-volume N`) must belong to the bundle already on
//! the media. Any drift in the mirror or the options makes another bundle, whose volume N
//! is useless beside the others; so compare the planned manifest with the original's and
//! refuse, naming what differs.

use std::path::{Path, PathBuf};

use format_spec::drift::drift;
use format_spec::manifest::BundleManifest;
use format_spec::media::standalone_manifests;
use format_spec::plan::Plan;

use crate::cli::PackArgs;
use crate::error::PackError;

/// The originals to compare with: `--like`, or with `--only-volume` the standalone
/// manifests (`ferry-*.bundle.json.zst`, or version 1's `ferry-*.bundle.json`) on the `--out`
/// directories.
fn originals(args: &PackArgs) -> Vec<PathBuf> {
    if let Some(like) = &args.like {
        return vec![like.clone()];
    }
    if args.only_volume.is_empty() {
        return Vec::new();
    }
    standalone_manifests(&args.out)
}

fn read(path: &Path) -> Result<BundleManifest, PackError> {
    let bytes = std::fs::read(path)
        .map_err(|e| PackError::Input(format!("--like {}: {e}", path.display())))?;
    // Read to compare, never to trust: a match only means this run makes the same bytes.
    BundleManifest::parse(&bytes).map_err(|e| {
        PackError::Input(format!(
            "--like {}: not a ferry bundle manifest ({e}); give the ferry-<id>.bundle.json.zst (version 1: ferry-<id>.bundle.json) written beside the original volumes",
            path.display()
        ))
    })
}

/// Refuses when this run would make another bundle than the original(s) found.
pub fn check(args: &PackArgs, plan: &Plan) -> Result<(), PackError> {
    let paths = originals(args);
    if paths.is_empty() {
        return Ok(());
    }
    let mut reports = Vec::new();
    for path in &paths {
        let original = read(path)?;
        if original.bundle_id == plan.manifest.bundle_id {
            return Ok(());
        }
        let lines: Vec<String> = drift(&original, &plan.manifest)
            .into_iter()
            .map(|d| format!("  - {d}"))
            .collect();
        reports.push(format!(
            "{} (bundle {}) differs in:\n{}",
            path.display(),
            original.bundle_id,
            lines.join("\n")
        ));
    }
    let what = if args.only_volume.is_empty() {
        "this run".to_string()
    } else {
        format!(
            "--only-volume {}",
            format_spec::bundle::list(&args.only_volume)
        )
    };
    Err(PackError::OtherBundle(format!(
        "{what} would write volumes of bundle {}, not of the original bundle, so they would not fit with the original's other volumes. Nothing was written.\n{}\nRun with the original's mirror and options (the repair command `ferry-unpack verify` prints has them){}",
        plan.manifest.bundle_id,
        reports.join("\n"),
        if args.like.is_none() {
            " (a manifest found on --out was used; if that directory holds another bundle on purpose, write elsewhere)"
        } else {
            ""
        }
    )))
}
