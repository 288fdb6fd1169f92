//! Where volumes go: the `--out` directories, checked before anything is read, filled in
//! turn (the room on each is `format_spec::room`'s), and on a terminal whatever medium
//! the operator provides when the last one is full.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use format_spec::plan::VolumePlan;
use format_spec::room::{free_space, manifest_room, nearest_existing, MARGIN};
use format_spec::size::human;
use format_spec::FormatError;

use crate::error::PackError;

/// Refuses an `--out` that cannot take volumes, before anything is read or written: a file
/// given where a directory goes, or a directory this process cannot write (a read-only
/// mount, a directory of another user). Without this both come out as "does not fit".
pub fn check_out(dir: &Path) -> Result<(), PackError> {
    out_problem(dir).map_err(PackError::Input)
}

fn out_problem(dir: &Path) -> Result<(), String> {
    if let Ok(m) = std::fs::metadata(dir) {
        if !m.is_dir() {
            return Err(format!(
                "--out {}: is a file, not a directory. Give a directory to write the volumes into (it is created if missing), e.g. the mount point of the medium",
                dir.display()
            ));
        }
    }
    let probe = nearest_existing(dir);
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
