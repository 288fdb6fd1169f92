//! What ferry-pack says when writing stopped part-way (a full disk, Ctrl-C, a medium
//! refused): the partial volume is gone, which volumes are complete and where, and a
//! command that writes the rest.

use std::path::{Path, PathBuf};

use format_spec::media::Kept;
use format_spec::pack;
use format_spec::plan::Plan;

use crate::error::PackError;

/// What to say when writing stopped part-way (a full disk, Ctrl-C, a medium refused): the
/// partial volume is gone, which volumes are complete and where, and the command that
/// writes the rest.
pub fn message(plan: &Plan, kept: &[&Kept], only: &[u32], stopped: pack::Stopped) -> PackError {
    use format_spec::FormatError;
    if matches!(
        stopped.error,
        FormatError::InputDigestMismatch { .. } | FormatError::InputChanged { .. }
    ) {
        return PackError::Stopped {
            message: format!(
                "{}. The volumes of this run were removed: they belong to a bundle that cannot be finished",
                stopped.error
            ),
            interrupted: false,
        };
    }
    let interrupted = matches!(stopped.error, FormatError::Interrupted);
    let mut complete: Vec<(u32, PathBuf)> = stopped
        .written
        .iter()
        .map(|w| (w.volume, w.path.clone()))
        .chain(kept.iter().map(|k| (k.volume, k.path.clone())))
        .collect();
    complete.sort();
    let rest: Vec<u32> = only
        .iter()
        .copied()
        .filter(|n| !complete.iter().any(|(c, _)| c == n))
        .collect();
    let mut text = if rest.is_empty() {
        // Every volume was complete: what failed came after them (the manifest copy).
        format!("{}. Every volume was written", stopped.error)
    } else if interrupted {
        "interrupted: nothing half-written is left (a volume in progress is removed)".to_string()
    } else {
        format!(
            "{}. The volume being written was not complete, and its temporary file was removed",
            stopped.error
        )
    };
    if complete.is_empty() {
        text.push_str(". No volume is complete yet");
    } else {
        let mut by_dir: Vec<(PathBuf, Vec<u32>)> = Vec::new();
        for (n, p) in &complete {
            let dir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
            match by_dir.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, v)) => v.push(*n),
                None => by_dir.push((dir, vec![*n])),
            }
        }
        let places: Vec<String> = by_dir
            .iter()
            .map(|(d, v)| {
                format!(
                    "volume(s) {} on {}",
                    format_spec::bundle::list(v),
                    d.display()
                )
            })
            .collect();
        text.push_str(&format!(
            ". Complete and good: {} (of {} in the bundle)",
            places.join("; "),
            plan.manifest.volume_count
        ));
    }
    if !rest.is_empty() {
        let command = resume_command(plan.manifest.created, &rest);
        if interrupted {
            text.push_str(&format!(
                ". To finish, run the same command again (complete volumes are checked and kept), or write the rest on another disk:\n  {command}"
            ));
        } else {
            text.push_str(&format!(
                ". To write the rest (volume(s) {}) on another disk, mount it and run:\n  {command}",
                format_spec::bundle::list(&rest)
            ));
        }
    }
    PackError::Stopped {
        message: text,
        interrupted,
    }
}

/// This very command line with `--out NEWDIR --only-volume <rest>` in place of its outputs
/// and volume selection, and the creation time fixed, so that it makes the same bundle
/// (whatever other options it had stay as they were).
fn resume_command(created: u64, rest: &[u32]) -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut words = vec![
        format!("SOURCE_DATE_EPOCH={created}"),
        "ferry-pack".to_string(),
    ];
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--out" || a == "--only-volume" {
            i += 2;
            continue;
        }
        if a.starts_with("--out=") || a.starts_with("--only-volume=") || a == "--plan" {
            i += 1;
            continue;
        }
        words.push(shell_quote(a));
        i += 1;
    }
    let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
    words.extend([
        "--out".into(),
        "NEWDIR".into(),
        "--only-volume".into(),
        rest.join(","),
    ]);
    words.join(" ")
}

/// A word as a POSIX shell reads it back: bare when it is plain, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
