//! Room on the media: a bundle goes to one or several output directories (one per disk),
//! filled in turn, and each is checked for free space before a volume is started.
//!
//! Everything written to a medium is counted: the volumes, the standalone bundle manifest
//! and its signature written beside them (it grows with the bundle), and some slack for the
//! file system's own bookkeeping.

use std::path::{Path, PathBuf};

use crate::media::Selection;
use crate::plan::VolumePlan;
use crate::size::human;

/// Room left free on each medium for the file system's own bookkeeping.
pub const MARGIN: u64 = 64 << 10;

// Where the free space is asked: one function for every crate (durable-file).
pub use durable_file::{free_space, nearest_existing};

/// What each medium has to hold besides the volumes assigned to it.
#[derive(Debug, Clone)]
pub struct Room {
    /// Bytes of the standalone manifest and its signature, where they are not there yet.
    pub manifest: Vec<u64>,
    /// Bytes a rerun will free before writing (its own temporaries, damaged volumes).
    pub reclaim: Vec<u64>,
}

impl Room {
    /// For each of `outs`: the standalone manifest (`manifest_name`, `manifest_size` bytes
    /// with its signature) unless an identical copy is there, and what `selection` frees.
    pub fn new(
        outs: &[PathBuf],
        selection: &Selection<'_>,
        manifest_name: &str,
        manifest_size: u64,
    ) -> Room {
        Room {
            manifest: outs
                .iter()
                .map(|d| manifest_room(d, manifest_name, manifest_size))
                .collect(),
            reclaim: outs.iter().map(|d| selection.reclaim(d)).collect(),
        }
    }
}

/// Why a volume has no room: the last medium it was tried on, and the arithmetic.
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub volume: u32,
    pub dir: usize,
    pub free: u64,
    /// The volumes that would be on that medium, this one included.
    pub volumes: u64,
    pub count: u64,
    pub manifest: u64,
}

impl Shortfall {
    /// "12.00 MiB free, needs 12.00 MiB + 124.00 KiB for the bundle manifest (…)".
    pub fn describe(&self, outs: &[PathBuf]) -> String {
        format!(
            "{}: {} free, needs {} for {} volume(s) + {} for the bundle manifest and its signature (and {} of slack for the file system)",
            outs[self.dir].display(),
            human(self.free),
            human(self.volumes),
            self.count,
            human(self.manifest),
            human(MARGIN)
        )
    }
}

/// Which directory each volume goes to, given the free space now: `None` for those that
/// fit nowhere (the disks given are too small), and why the first of those does not fit.
pub fn assign(
    outs: &[PathBuf],
    volumes: &[&VolumePlan],
    room: &Room,
) -> std::io::Result<(Vec<Option<usize>>, Option<Shortfall>)> {
    let free: Vec<u64> = outs
        .iter()
        .zip(&room.reclaim)
        .map(|(d, r)| free_space(d).map(|f| f + r))
        .collect::<Result<_, _>>()?;
    let mut used = vec![0u64; outs.len()];
    let mut count = vec![0u64; outs.len()];
    let mut current = 0;
    let mut out = Vec::new();
    let mut shortfall = None;
    // The slack is kept once per medium, after everything written there.
    let need = |i: usize, used: &[u64], size: u64| used[i] + size + room.manifest[i] + MARGIN;
    for v in volumes {
        while current < outs.len() && free[current] < need(current, &used, v.file_size) {
            if current + 1 == outs.len() && shortfall.is_none() {
                shortfall = Some(Shortfall {
                    volume: v.volume,
                    dir: current,
                    free: free[current],
                    volumes: used[current] + v.file_size,
                    count: count[current] + 1,
                    manifest: room.manifest[current],
                });
            }
            current += 1;
        }
        if current < outs.len() {
            used[current] += v.file_size;
            count[current] += 1;
            out.push(Some(current));
        } else {
            out.push(None);
        }
    }
    Ok((out, shortfall))
}

/// Room the standalone manifest still needs on `dir`: none when a copy of the same size is
/// there already (a rerun leaves an identical copy as it is).
pub fn manifest_room(dir: &Path, name: &str, size: u64) -> u64 {
    let copy = dir.join(name);
    let sig = dir.join(format!("{name}.sig"));
    let len = |p: &Path| {
        std::fs::symlink_metadata(p)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    match (len(&copy), len(&sig)) {
        (Some(a), Some(b)) if a + b == size => 0,
        _ => size,
    }
}
