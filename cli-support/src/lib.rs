//! What `ferry-pack` and `ferry-unpack` share at their edge, and nothing else: no format,
//! no network. Libraries never depend on this crate; they take a cancel flag as an
//! argument (`&AtomicBool`) so they stay usable without signals.
#![forbid(unsafe_code)]

mod retry_for;

pub use retry_for::RetryFor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// A broken pipe on stdout (`ferry-unpack inspect | head`) ends the program with exit 0, as
/// ripgrep and the coreutils do, instead of a panic message.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Exit code of a process ended by a second Ctrl-C (128 + SIGINT, as a shell reports it).
pub const SECOND_INTERRUPT_EXIT: i32 = 130;

/// Turns SIGINT and SIGTERM into a flag: the first one sets it (the work stops at the next
/// safe point, cleans up and says how to go on); a second one while the flag is set ends
/// the process at once, so an operator is never stuck with a program that ignores Ctrl-C.
/// Returns the flag; calling it again returns the same flag.
pub fn interrupt_flag() -> &'static AtomicBool {
    INTERRUPTED.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first, so it sees the flag before the second hook sets it.
            let _ = signal_hook::flag::register_conditional_shutdown(
                sig,
                SECOND_INTERRUPT_EXIT,
                Arc::clone(&flag),
            );
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
}

/// Whether an interrupt arrived (false when [`interrupt_flag`] was never installed).
pub fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
