//! Where volumes go: one or several output directories (one per disk), filled in turn,
//! each checked for free space before a volume is started; on a terminal, the next medium
//! is asked for when the last one is full.
//!
//! Everything written to a medium is counted: the volumes, the standalone bundle manifest
//! and its signature written beside them (it grows with the bundle), and some slack for the
//! file system's own bookkeeping.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_format::plan::VolumePlan;
use ferry_format::size::human;
use ferry_format::FormatError;

/// Room left free on each medium for the file system's own bookkeeping.
pub const MARGIN: u64 = 64 << 10;

/// The nearest existing directory at or above `dir` (which may be yet to be created).
fn existing(dir: &Path) -> &Path {
    let mut probe = dir;
    while !probe.exists() {
        probe = match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    probe
}

/// Free bytes for an unprivileged writer on the file system holding `dir` (or the nearest
/// existing parent, when `dir` is yet to be created).
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(existing(dir)).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Refuses an `--out` that cannot take volumes, before anything is read or written: a file
/// given where a directory goes, or a directory this process cannot write (a read-only
/// mount, a directory of another user). Without this both come out as "does not fit".
pub fn check_out(dir: &Path) -> Result<(), String> {
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            return Err(format!(
                "--out {}: is a file, not a directory. Give a directory to write the volumes into (it is created if missing), e.g. the mount point of the medium",
                dir.display()
            ));
        }
    }
    let probe = existing(dir);
    if !probe.is_dir() {
        return Err(format!(
            "--out {}: {} is a file, so the directory cannot be created there. Give a directory",
            dir.display(),
            probe.display()
        ));
    }
    match rustix::fs::access(probe, rustix::fs::Access::WRITE_OK) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::ROFS) => Err(format!(
            "--out {}: the file system is mounted read-only, so nothing can be written there. Remount it read-write (or unlock the medium's write-protect switch), or give another --out",
            dir.display()
        )),
        Err(e) => Err(format!(
            "--out {}: {} is not writable by this user ({}). Give a directory you can write, or fix its permissions",
            dir.display(),
            probe.display(),
            std::io::Error::from(e)
        )),
    }
}

/// What each medium has to hold besides the volumes assigned to it.
#[derive(Debug, Clone)]
pub struct Room {
    /// Bytes of the standalone manifest and its signature, where they are not there yet.
    pub manifest: Vec<u64>,
    /// Bytes a rerun will free before writing (its own temporaries, damaged volumes).
    pub reclaim: Vec<u64>,
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

pub struct Destinations {
    pub dirs: Vec<PathBuf>,
    current: usize,
    interactive: bool,
    /// The standalone manifest (its file name) and its size with the signature, written
    /// beside the volumes at the end.
    manifest_name: String,
    manifest: u64,
    /// Ctrl-C while the question waits for an answer ends the wait.
    cancel: &'static AtomicBool,
}

impl Destinations {
    pub fn new(
        dirs: Vec<PathBuf>,
        manifest_name: String,
        manifest: u64,
        cancel: &'static AtomicBool,
    ) -> Destinations {
        Destinations {
            dirs,
            manifest_name,
            manifest,
            cancel,
            current: 0,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// The directory for volume `v`: the current one if it has room (for the volume and
    /// then the manifest), else the next one given, else (on a terminal) whatever medium the
    /// operator provides. The question is asked with the progress bar hidden, so the bar's
    /// next redraw cannot erase it while the operator changes media.
    pub fn next(
        &mut self,
        v: &VolumePlan,
        bar: &progress::Progress,
    ) -> Result<PathBuf, FormatError> {
        loop {
            let dir = self.dirs[self.current].clone();
            let free = free_space(&dir).map_err(FormatError::io(&dir))?;
            let manifest = manifest_room(&dir, &self.manifest_name, self.manifest);
            if free >= v.file_size + manifest + MARGIN {
                return Ok(dir);
            }
            if self.current + 1 < self.dirs.len() {
                self.current += 1;
                continue;
            }
            if !self.interactive {
                return Err(FormatError::Plan(format!(
                    "volume {} ({}) does not fit on {} ({} free, needs {} + {} for the bundle manifest): stopped",
                    v.volume,
                    human(v.file_size),
                    dir.display(),
                    human(free),
                    human(v.file_size + MARGIN),
                    human(manifest),
                )));
            }
            let answer = bar.suspend(|| {
                eprint!(
                    "ferry-pack: volume {} ({}) does not fit on {} ({} free).\n  Insert the next medium and press Enter to write there again, type another directory, or q to stop: ",
                    v.volume,
                    human(v.file_size),
                    dir.display(),
                    human(free)
                );
                let _ = std::io::stderr().flush();
                read_answer(self.cancel)
            });
            let Some(line) = answer.map_err(FormatError::io("standard input"))? else {
                eprintln!();
                return Err(FormatError::Interrupted);
            };
            let answer = line.trim();
            if answer == "q" || line.is_empty() {
                return Err(FormatError::Plan(format!(
                    "stopped before volume {} (asked to)",
                    v.volume
                )));
            }
            if !answer.is_empty() {
                let next = PathBuf::from(answer);
                if let Err(e) = check_out(&next) {
                    bar.note(&format!("ferry-pack: {e}"));
                    continue;
                }
                self.dirs.push(next);
                self.current = self.dirs.len() - 1;
            }
        }
    }
}

/// A line from standard input, or `None` once `cancel` is set: the wait polls, because a
/// signal handler that restarts system calls would leave a plain read blocked through Ctrl-C.
fn read_answer(cancel: &AtomicBool) -> std::io::Result<Option<String>> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdin = std::io::stdin();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        match poll(&mut fds, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(Some(line))
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
