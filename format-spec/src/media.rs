//! What a rerun of the same pack finds on its media (after Ctrl-C, a full disk, or a run
//! that completed): complete volumes of the same bundle, which are checked and kept, and
//! the temporaries of an interrupted run, which are removed and written again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::FormatError;
use crate::key::PublicKey;
use crate::plan::{Plan, VolumePlan};
use crate::read::Volume;
use crate::volume;

/// A volume of this very bundle found complete on a medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub volume: u32,
    pub path: PathBuf,
    pub size: u64,
}

/// A file under a volume's name that is not that volume (truncated, damaged): it is
/// replaced when that volume is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub volume: u32,
    pub path: PathBuf,
    pub size: u64,
    pub reason: String,
}

/// What is already on the media for `plan`.
#[derive(Debug, Default)]
pub struct Found {
    pub kept: Vec<Kept>,
    pub damaged: Vec<Damaged>,
    /// Temporaries of an interrupted run of this bundle, with their sizes.
    pub partials: Vec<(PathBuf, u64)>,
}

/// What a run does with what it found: the volumes it writes, the complete ones it keeps,
/// and the files it removes first (its temporaries, and damaged volumes it writes again).
#[derive(Debug)]
pub struct Selection<'a> {
    pub kept: Vec<&'a Kept>,
    pub write: Vec<&'a VolumePlan>,
    pub replace: Vec<&'a Damaged>,
    pub partials: &'a [(PathBuf, u64)],
}

impl Found {
    /// The volumes of `plan` a run writes: those in `only` (all when it is empty) that are
    /// not kept.
    pub fn select<'a>(&'a self, plan: &'a Plan, only: &[u32]) -> Selection<'a> {
        let wanted = |n: u32| only.is_empty() || only.contains(&n);
        let kept: Vec<&Kept> = self.kept.iter().filter(|k| wanted(k.volume)).collect();
        let write: Vec<&VolumePlan> = plan
            .volumes
            .iter()
            .filter(|v| wanted(v.volume))
            .filter(|v| !kept.iter().any(|k| k.volume == v.volume))
            .collect();
        let replace = self
            .damaged
            .iter()
            .filter(|d| write.iter().any(|v| v.volume == d.volume))
            .collect();
        Selection {
            kept,
            write,
            replace,
            partials: &self.partials,
        }
    }
}

impl Selection<'_> {
    /// Bytes removing this run's leftovers frees on `dir` before anything is written.
    pub fn reclaim(&self, dir: &Path) -> u64 {
        let partials: u64 = self
            .partials
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(_, n)| n)
            .sum();
        let damaged: u64 = self
            .replace
            .iter()
            .filter(|x| x.path.parent() == Some(dir))
            .map(|x| x.size)
            .sum();
        partials + damaged
    }
}

/// The standalone manifests (`ferry-*.bundle.json.zst`, or `.bundle.json` of version 1) in `dirs`, sorted: the bundles
/// already on the media.
pub fn standalone_manifests(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if volume::is_manifest_file_name(&name) {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

/// Looks in `dirs` for the volumes of `plan` and for its leftover temporaries. A complete
/// volume is kept only if it proves to be exactly the planned one: signed by `key`, the same
/// bundle id and manifest bytes, the planned size and chunks, and every chunk's bytes
/// checking against the signed table. A volume's name that is a symbolic link is refused:
/// ferry never reads or writes through a link it did not make.
pub fn find(plan: &Plan, key: &PublicKey, dirs: &[PathBuf]) -> Result<Found, FormatError> {
    let m = &plan.manifest;
    let mut found = Found::default();
    let names: Vec<String> = plan
        .volumes
        .iter()
        .map(|v| volume::volume_file_name(&m.bundle_id, v.volume, m.volume_count))
        .collect();
    let manifest_name = volume::manifest_file_name(&m.bundle_id, m.ferry_bundle);
    let sig_name = format!("{manifest_name}.sig");
    for dir in dirs {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FormatError::io(dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(FormatError::io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(FormatError::io(&path))?;
            let ours = names
                .iter()
                .chain([&manifest_name, &sig_name])
                .any(|n| durable_file::is_partial_of(&name, n) || old_partial_of(&name, n));
            if ours && meta.is_file() {
                found.partials.push((path, meta.len()));
                continue;
            }
            if (name == manifest_name || name == sig_name) && meta.file_type().is_symlink() {
                return Err(FormatError::io(&path)(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a symbolic link stands where this bundle's standalone manifest goes; ferry does not write through links: remove it",
                )));
            }
            let Some(i) = names.iter().position(|n| *n == name) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                return Err(FormatError::io(&path)(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a symbolic link stands where a volume of this bundle goes; ferry does not read or write through links: remove it",
                )));
            }
            let planned = &plan.volumes[i];
            match check(plan, key, planned, &path) {
                Ok(()) => found.kept.push(Kept {
                    volume: planned.volume,
                    path,
                    size: meta.len(),
                }),
                Err(reason) => found.damaged.push(Damaged {
                    volume: planned.volume,
                    path,
                    size: meta.len(),
                    reason,
                }),
            }
        }
    }
    found.kept.sort_by_key(|k| k.volume);
    found.kept.dedup_by_key(|k| k.volume);
    Ok(found)
}

/// Temporaries of ferry-pack before durable-file: `.NAME.partial`.
fn old_partial_of(file_name: &str, dest_name: &str) -> bool {
    file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(dest_name))
        == Some(durable_file::PARTIAL_SUFFIX)
}

fn check(plan: &Plan, key: &PublicKey, planned: &VolumePlan, path: &Path) -> Result<(), String> {
    let vol = Volume::open(path, std::slice::from_ref(key)).map_err(|e| e.to_string())?;
    let same_chunks = vol.table.chunks.len() == planned.chunks.len()
        && vol.table.chunks.iter().zip(&planned.chunks).all(|(a, b)| {
            (a.blob, a.stream_offset, a.size, a.offset)
                == (b.blob, b.stream_offset, b.size, b.offset)
        });
    if vol.table.bundle_id != plan.manifest.bundle_id
        || vol.table.volume != planned.volume
        || vol.size != planned.file_size
        || *vol.manifest_bytes != plan.manifest_bytes
        || vol.index_id() != (plan.index.len(), plan.index.digest())
        || !same_chunks
    {
        return Err("not the volume this bundle plans (another bundle's, or changed)".into());
    }
    let damage = vol.verify_chunks(&|_| {});
    if let Some(d) = damage.first() {
        return Err(format!(
            "{} damaged at offset {} ({} place(s) in all)",
            d.what,
            d.offset,
            damage.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_its_old_and_new_temporaries() {
        let v = "ferry-ab-001-of-004.tar";
        assert!(old_partial_of(".ferry-ab-001-of-004.tar.partial", v));
        assert!(!old_partial_of("ferry-ab-001-of-004.tar", v));
        assert!(!old_partial_of(".ferry-ab-001-of-004.tar.partial.x", v));
    }
}
