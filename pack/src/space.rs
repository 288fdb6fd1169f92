//! Where volumes go: one or several output directories (one per disk), filled in turn,
//! each checked for free space before a volume is started; on a terminal, the next medium
//! is asked for when the last one is full.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use ferry_format::plan::VolumePlan;
use ferry_format::size::human;
use ferry_format::FormatError;

/// Room left beside a volume for the file system's own bookkeeping.
const MARGIN: u64 = 64 << 10;

/// Free bytes for an unprivileged writer on the file system holding `dir` (or the nearest
/// existing parent, when `dir` is yet to be created).
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let mut probe = dir;
    while !probe.exists() {
        probe = match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    let st = rustix::fs::statvfs(probe).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Which directory each volume goes to, given the free space now: `None` for those that
/// fit nowhere (the disks given are too small).
pub fn assign(outs: &[PathBuf], volumes: &[&VolumePlan]) -> std::io::Result<Vec<Option<usize>>> {
    let mut free: Vec<u64> = outs
        .iter()
        .map(|d| free_space(d))
        .collect::<Result<_, _>>()?;
    let mut current = 0;
    let mut out = Vec::new();
    for v in volumes {
        while current < outs.len() && free[current] < v.file_size + MARGIN {
            current += 1;
        }
        if current < outs.len() {
            free[current] -= v.file_size;
            out.push(Some(current));
        } else {
            out.push(None);
        }
    }
    Ok(out)
}

pub struct Destinations {
    pub dirs: Vec<PathBuf>,
    current: usize,
    interactive: bool,
    /// The bundle's volume count, to name what is left when the disks run out.
    count: u32,
}

impl Destinations {
    pub fn new(dirs: Vec<PathBuf>, count: u32) -> Destinations {
        Destinations {
            dirs,
            count,
            current: 0,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// The directory for volume `v`: the current one if it has room, else the next one
    /// given, else (on a terminal) whatever medium the operator provides.
    pub fn next(&mut self, v: &VolumePlan) -> Result<PathBuf, FormatError> {
        loop {
            let dir = self.dirs[self.current].clone();
            let free = free_space(&dir).map_err(FormatError::io(&dir))?;
            if free >= v.file_size + MARGIN {
                return Ok(dir);
            }
            if self.current + 1 < self.dirs.len() {
                self.current += 1;
                continue;
            }
            if !self.interactive {
                return Err(FormatError::Plan(format!(
                    "volume {} ({}) does not fit on {} ({} free): stopped; the volumes written so far are complete. Continue on another disk with the same command and --out NEWDIR --only-volume {}",
                    v.volume,
                    human(v.file_size),
                    dir.display(),
                    human(free),
                    (v.volume..=self.count.max(v.volume))
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )));
            }
            eprint!(
                "ferry-pack: volume {} ({}) does not fit on {} ({} free).\n  Insert the next medium and press Enter to write there again, type another directory, or q to stop: ",
                v.volume,
                human(v.file_size),
                dir.display(),
                human(free)
            );
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(FormatError::io("standard input"))?;
            let answer = line.trim();
            if answer == "q" || line.is_empty() {
                return Err(FormatError::Plan(format!(
                    "stopped before volume {}; the volumes written so far are complete",
                    v.volume
                )));
            }
            if !answer.is_empty() {
                self.dirs.push(PathBuf::from(answer));
                self.current = self.dirs.len() - 1;
            }
        }
    }
}
