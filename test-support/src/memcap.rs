//! A command run under a memory cap it cannot lift, with its peak resident memory.
//!
//! The cap is RLIMIT_DATA (private writable memory: the heap, malloc's arenas as they are
//! made writable, thread stacks), set by util-linux `prlimit --data=L:L`, which sets soft
//! and hard limit and then executes the command, so the limit holds from its first
//! instruction and no code of the command can raise it. An allocation beyond it fails:
//! Rust prints `memory allocation of N bytes failed` and aborts (signal 6).
//!
//! Why not the others: RLIMIT_AS counts every mapping (reserved thread stacks and malloc
//! arenas, the read-only maps of whole volumes), so it caps address space, not memory; a
//! cgroup (v2 with the memory controller, or v1 `memory.limit_in_bytes` with swap off)
//! also charges the page cache of the gigabytes a pack writes, needs root and a hierarchy
//! this machine has only in v1, and kills with the OOM killer instead of failing an
//! allocation. RLIMIT_DATA needs neither root nor a mount.
//!
//! The peak resident set comes from GNU time (`/usr/bin/time -f %M`, the kernel's
//! `ru_maxrss` of the command as wait4 reports it), which runs under the same cap (a few
//! hundred KiB of its own).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cmd::OutputExt;

const PRLIMIT: &str = "/usr/bin/prlimit";
const TIME: &str = "/usr/bin/time";
/// The line GNU time writes to its -o file, after any "Command exited…" line of its own.
const PEAK_PREFIX: &str = "ferry-memcap-peak-rss-kib ";

/// What a capped run did.
pub struct Capped {
    pub output: Output,
    /// Peak resident set of the command, KiB (`ru_maxrss`).
    pub peak_rss_kib: u64,
    /// The cap it ran under, bytes of private writable memory.
    pub data_limit: u64,
    /// What GNU time said of the command (its status or signal), for failure messages.
    pub time_report: String,
}

impl Capped {
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    /// Whether the command died of the cap (an allocation failed and Rust aborted).
    pub fn hit_cap(&self) -> bool {
        // Rust's allocator aborts with the first; a failed mmap or read surfaces as ENOMEM,
        // which ferry reports as the second.
        let err = self.output.stderr_text();
        err.contains("memory allocation of")
            || err.contains("out of memory")
            || self.time_report.contains("signal 6")
    }

    /// A message for a failed run: what ran, under which cap, how it ended.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}: {} under the memory cap (RLIMIT_DATA {} MiB), peak RSS {:.1} MiB; {}\n{}",
            if self.hit_cap() {
                "ran out of memory"
            } else {
                "failed"
            },
            self.data_limit >> 20,
            self.peak_rss_mib(),
            self.time_report.trim(),
            self.output.dump()
        )
    }
}

/// Panics (never skips) unless `prlimit` and GNU time are here and a command started under
/// `prlimit --data=L:L` really has L as its soft and hard RLIMIT_DATA: the caller's test is
/// about the cap, and a cap that did not take is no test.
pub fn check_cap_works(data_limit: u64) {
    for tool in [PRLIMIT, TIME] {
        assert!(
            Path::new(tool).is_file(),
            "{tool} not found: the memory-capped test needs util-linux prlimit and GNU time \
             (apt-get install util-linux time); it cannot set or measure its cap without them"
        );
    }
    let out = Command::new(PRLIMIT)
        .arg(format!("--data={data_limit}:{data_limit}"))
        .args(["--", "cat", "/proc/self/limits"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PRLIMIT}: {e}"));
    assert!(
        out.status.success(),
        "cannot set the memory cap (prlimit --data={data_limit}): {}",
        out.dump()
    );
    let text = out.stdout_text();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max data size"))
        .unwrap_or_else(|| panic!("no `Max data size` in /proc/self/limits:\n{text}"));
    let fields: Vec<&str> = line["Max data size".len()..].split_whitespace().collect();
    assert_eq!(
        fields.get(..2),
        Some(
            &[
                data_limit.to_string().as_str(),
                data_limit.to_string().as_str()
            ][..]
        ),
        "the memory cap did not take: a command under prlimit --data={data_limit} has {line:?}"
    );
}

/// Runs `program args…` under RLIMIT_DATA `data_limit` (soft and hard) and measures its peak
/// RSS. `scratch` is a directory for GNU time's report. Never panics on the command's exit.
pub fn run_capped<I, S>(program: &Path, args: I, data_limit: u64, scratch: &Path) -> Capped
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let report: PathBuf = scratch.join(format!(
        "memcap-{}-{}.time",
        program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let output = Command::new(PRLIMIT)
        .arg(format!("--data={data_limit}:{data_limit}"))
        .arg("--")
        .arg(TIME)
        .arg("-f")
        .arg(format!("{PEAK_PREFIX}%M"))
        .arg("-o")
        .arg(&report)
        .arg(program)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PRLIMIT} … {}: {e}", program.display()));
    let time_report = fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "GNU time wrote no report at {} ({e}): {}",
            report.display(),
            output.dump()
        )
    });
    let _ = fs::remove_file(&report);
    let peak_rss_kib = time_report
        .lines()
        .find_map(|l| l.strip_prefix(PEAK_PREFIX))
        .and_then(|k| k.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in GNU time's report:\n{time_report}"));
    Capped {
        output,
        peak_rss_kib,
        data_limit,
        time_report,
    }
}
