//! Running commands and reading what they did.

use std::ffi::OsStr;
use std::process::{Command, Output};

use tempfile::TempDir;

/// Runs `cmd args…` and returns what it did; never panics on a non-zero exit.
/// SOURCE_DATE_EPOCH is removed so a developer's environment cannot change the bytes.
pub fn run<I, S>(cmd: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(cmd.as_ref());
    c.args(args).env_remove("SOURCE_DATE_EPOCH");
    run_command(&mut c)
}

/// Runs a prepared command (for extra environment or a working directory).
pub fn run_command(c: &mut Command) -> Output {
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
}

/// Readable views of an [`Output`] for assertions and failure messages.
pub trait OutputExt {
    fn code(&self) -> i32;
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    /// stdout and stderr together: where a message goes is not what most tests pin.
    fn text(&self) -> String;
    /// Everything, for a panic message.
    fn dump(&self) -> String;
}

impl OutputExt for Output {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn text(&self) -> String {
        format!("{}{}", self.stdout_text(), self.stderr_text())
    }
    fn dump(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status.code(),
            self.stdout_text(),
            self.stderr_text()
        )
    }
}

/// Panics with the whole output unless the command exited with `code`.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.code(),
        code,
        "{what}: expected exit {code}\n{}",
        out.dump()
    );
}

/// Panics unless the command succeeded.
#[track_caller]
pub fn assert_ok(out: &Output, what: &str) {
    assert_exit(out, 0, what);
}

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("ferry-test-")
        .tempdir()
        .expect("create a temporary directory")
}
