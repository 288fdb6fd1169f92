//! What ferry shows: progress (a bar with bytes, rate and ETA on a terminal; a plain line
//! every few seconds elsewhere; nothing with `--quiet` or `--json`), and the JSON Lines
//! event stream of `--json` (docs/events.md): one object per line on stdout, each with a
//! `type`. Progress goes to stderr, so stdout stays clean for machines.
//!
//! What this crate must not do: decide anything, or write anything but stderr (progress)
//! and stdout (events).
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How a command talks: to a person on a terminal, to a log, or to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Terminal,
    Plain,
    Quiet,
}

/// Set once from a command's global `--quiet`, so every job of the run stays silent.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

impl Mode {
    /// `quiet`, `json` or [`set_quiet`] silence progress; otherwise a terminal gets a bar
    /// and anything else periodic lines.
    pub fn detect(quiet: bool, json: bool) -> Mode {
        if quiet || json || QUIET.load(std::sync::atomic::Ordering::Relaxed) {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

/// Progress of one long job, in bytes. Cheap to update from several threads.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Mutex<Plain>>,
}

struct Plain {
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
    message: String,
}

/// How often a non-terminal gets a progress line.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    pub fn new(mode: Mode, what: &str, total: u64) -> Progress {
        match mode {
            Mode::Quiet => Progress {
                bar: None,
                plain: None,
            },
            Mode::Terminal => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                // NO_COLOR (no-color.org): the template then has no colour codes at all.
                let template = if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
                } else {
                    "{prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .expect("the template is valid")
                        .progress_chars("=> "),
                );
                bar.set_prefix(what.to_owned());
                bar.enable_steady_tick(Duration::from_millis(200));
                Progress {
                    bar: Some(bar),
                    plain: None,
                }
            }
            Mode::Plain => Progress {
                bar: None,
                plain: Some(Mutex::new(Plain {
                    what: what.to_owned(),
                    total,
                    done: 0,
                    started: Instant::now(),
                    last: Instant::now(),
                    message: String::new(),
                })),
            },
        }
    }

    pub fn add(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        if let Some(p) = &self.plain {
            let mut p = p.lock().expect("progress lock");
            p.done += bytes;
            if p.last.elapsed() >= PLAIN_EVERY {
                p.last = Instant::now();
                let secs = p.started.elapsed().as_secs_f64().max(0.001);
                let _ = writeln!(
                    std::io::stderr(),
                    "{}: {} of {} ({:.0}%), {}/s{}",
                    p.what,
                    HumanBytes(p.done),
                    HumanBytes(p.total),
                    100.0 * p.done as f64 / p.total.max(1) as f64,
                    HumanBytes((p.done as f64 / secs) as u64),
                    if p.message.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", p.message)
                    }
                );
            }
        }
    }

    /// What is being worked on now (a volume, an image).
    pub fn message(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
        if let Some(p) = &self.plain {
            p.lock().expect("progress lock").message = text.to_owned();
        }
    }

    /// Removes the bar (results are printed after it).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Runs `f` with the bar hidden, for a question to the operator.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Prints a line above the bar (or plainly), for notes while work goes on.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Drop for Progress {
    /// A bar never outlives its job, whichever way the job ends.
    fn drop(&mut self) {
        self.finish();
    }
}

/// The JSON Lines event stream: one JSON object per line on stdout, `type` first.
pub struct Events {
    on: bool,
    lock: Mutex<()>,
}

impl Events {
    pub fn new(on: bool) -> Events {
        Events {
            on,
            lock: Mutex::new(()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.on
    }

    /// Writes `{"type": kind, ...fields}`; `fields` must serialize to an object.
    pub fn emit(&self, kind: &str, fields: &impl Serialize) {
        if !self.on {
            return;
        }
        let mut object = serde_json::Map::new();
        object.insert("type".into(), kind.into());
        match serde_json::to_value(fields).expect("events serialize") {
            serde_json::Value::Object(map) => object.extend(map),
            other => {
                object.insert("value".into(), other);
            }
        }
        let line =
            serde_json::to_string(&serde_json::Value::Object(object)).expect("events serialize");
        let _guard = self.lock.lock().expect("event lock");
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) ends the stream; the command still finishes.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_progress_does_nothing_and_events_off_write_nothing() {
        let p = Progress::new(Mode::Quiet, "pack", 10);
        p.add(5);
        p.message("volume 1");
        p.finish();
        Events::new(false).emit("x", &serde_json::json!({"a": 1}));
    }
}
