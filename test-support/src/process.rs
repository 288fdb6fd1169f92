//! A process in the background: its stderr watched line by line as it comes, signalled,
//! waited for with a deadline (killed at it), or stopped at an exact point of its run.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::cmd::{assert_ok, run, tempdir};

/// A command running in the background whose stderr lines can be counted as they come,
/// and that can be sent a signal.
pub struct Proc {
    child: Child,
    line_rx: mpsc::Receiver<String>,
    stderr_lines: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(mut c: Command) -> Proc {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {c:?}: {e}"));
        let stderr_lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stdout: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (tx, line_rx) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        let lines = stderr_lines.clone();
        let r1 = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let buf = stdout.clone();
        let r2 = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            buf.lock().expect("stdout").extend(v);
        });
        Proc {
            child,
            line_rx,
            stderr_lines,
            stdout,
            readers: vec![r1, r2],
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -SIG PID` (`INT`, `TERM`, …).
    pub fn signal(&self, sig: &str) {
        let out = run("kill", [format!("-{sig}"), self.pid().to_string()]);
        assert_ok(&out, &format!("kill -{sig} {}", self.pid()));
    }

    /// Waits until `n` more stderr lines containing `needle` have come; false at the
    /// deadline or when the process closed stderr first.
    pub fn wait_for_lines(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        while seen < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line_rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => seen += 1,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits for one more stderr line containing `needle`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for_lines(needle, 1, timeout)
    }

    /// Polls `cond` every 2 ms until it holds (true), the process exits or the deadline
    /// passes (false).
    pub fn wait_until(&mut self, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            if !self.running() || Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit; `None` (after SIGKILL) when it took longer than `timeout`.
    /// Also the stderr seen, for messages.
    pub fn wait(mut self, timeout: Duration) -> (Option<Output>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(s) => break Some(s),
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stderr = self.stderr_lines.lock().expect("lines").join("\n");
        let stdout = std::mem::take(&mut *self.stdout.lock().expect("stdout"));
        let output = status.map(|status| Output {
            status,
            stdout,
            stderr: stderr.clone().into_bytes(),
        });
        (output, stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// A process stopped at an exact point

/// A command run under `strace`, which stops it (SIGSTOP to the whole process) when the
/// first of `syscalls` naming `path` returns: a deterministic point between two steps of
/// the program, where a test can change the world (fill a disk) before it goes on.
pub struct StoppedAt {
    pub proc: Proc,
    log: PathBuf,
    _dir: TempDir,
}

impl StoppedAt {
    /// Panics (the test cannot run) when strace is missing: scripts/deps.sh installs it.
    #[track_caller]
    pub fn spawn(c: &Command, syscalls: &str, path: &Path) -> StoppedAt {
        let found = Command::new("strace").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "this test needs strace (Debian package strace; scripts/deps.sh installs it)"
        );
        let dir = tempdir();
        let log = dir.path().join("strace.log");
        let mut s = Command::new("strace");
        s.args(["-f", "-qq", "-o"])
            .arg(&log)
            .arg("-P")
            .arg(path)
            .arg(format!("-etrace={syscalls}"))
            .arg(format!("-einject={syscalls}:signal=SIGSTOP:when=1"))
            .arg("--")
            .arg(c.get_program())
            .args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => s.env(k, v),
                None => s.env_remove(k),
            };
        }
        if let Some(d) = c.get_current_dir() {
            s.current_dir(d);
        }
        StoppedAt {
            proc: Proc::spawn(s),
            log,
            _dir: dir,
        }
    }

    /// Waits until the program is stopped at that point; its pid, or `None` when it ended
    /// or the deadline passed first (the strace log, for the message, in `Err`).
    pub fn wait_stopped(&mut self, timeout: Duration) -> Result<u32, String> {
        let log = self.log.clone();
        let stopped = || {
            fs::read_to_string(&log).is_ok_and(|t| {
                t.contains("--- SIGSTOP") && t.contains("--- stopped by SIGSTOP ---")
            })
        };
        if !self.proc.wait_until(timeout, stopped) {
            return Err(fs::read_to_string(&log).unwrap_or_default());
        }
        // strace's only child is the program.
        let strace = self.proc.pid();
        let children = fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
            .map_err(|e| format!("the traced process: {e}"))?;
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| "strace has no child".to_string())
    }
}
