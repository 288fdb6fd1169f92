//! `status`: where a site stands with each bundle — volumes seen and verified, images in the
//! registry, images waiting and on which volumes, pieces staged — from the state directory.

use format_spec::size::human;
use format_spec::state::{Recorded, StateDir};
use replay::push::ImageStatus;

use crate::error::{Error, Exit};
use crate::Outcome;

pub fn status(state: &StateDir, json: bool) -> Outcome {
    let recorded = state.bundles().map_err(|source| Error::StateUnreadable {
        dir: state.root().to_owned(),
        source,
    })?;
    let Some(recorded) = recorded else {
        // A fresh machine: nothing has been verified or pushed with this state directory.
        if !json {
            println!(
                "nothing pushed or verified yet: {} does not exist (push, and verify --state, record their progress there)",
                state.root().display()
            );
        }
        return Ok(Exit::Success);
    };
    if json {
        // One bundle at a time: its last push (tens of MB at 6×10^4 images) is read for its
        // event and let go before the next.
        for r in &recorded {
            let m = &r.manifest;
            let serde_json::Value::Object(mut event) = serde_json::json!({
                "type": "bundle",
                "bundle_id": m.bundle_id, "created": m.created, "volume_count": m.volume_count,
                "volumes_seen": r.volumes_seen, "volumes_not_seen": not_seen(r),
                "staged_chunks": r.staged_chunks, "staged_bytes": r.staged_bytes,
            }) else {
                unreachable!("an object")
            };
            // Moved in, not copied (json! would copy it), and the line written as it is
            // made: the event `progress::Events::emit` writes, without its two extra copies.
            event.insert(
                "last_push".into(),
                r.last_push().unwrap_or(serde_json::Value::Null),
            );
            write_event(&serde_json::Value::Object(event));
        }
        return Ok(Exit::Success);
    }
    if recorded.is_empty() {
        println!(
            "no bundle recorded in {} yet (push records its progress there)",
            state.root().display()
        );
        return Ok(Exit::Success);
    }
    for r in &recorded {
        let m = &r.manifest;
        println!(
            "bundle {} (created {})",
            m.bundle_id,
            crate::report::utc(m.created)
        );
        // A count, then volume numbers, each named as such: "1 of 3 (volume 3)", never
        // "3 of 3" for one volume seen out of three.
        let seen: Vec<u64> = r.volumes_seen.iter().map(|&n| u64::from(n)).collect();
        let not_seen: Vec<u64> = not_seen(r).into_iter().map(u64::from).collect();
        println!(
            "  volumes seen and verified: {} of {}{}{}",
            seen.len(),
            m.volume_count,
            match seen.len() {
                0 => String::new(),
                _ if not_seen.is_empty() => " (all)".into(),
                _ => format!(" ({})", volumes(&seen)),
            },
            if not_seen.is_empty() {
                String::new()
            } else {
                format!("; not yet seen: {}", volumes(&not_seen))
            }
        );
        println!(
            "  staged for later volumes: {} chunk file(s), {}",
            r.staged_chunks,
            human(r.staged_bytes)
        );
        match r.last_push::<LastPush>() {
            None => println!("  not pushed yet"),
            Some(p) => {
                println!("  last push to {}:", p.target.as_deref().unwrap_or("?"));
                for img in &p.images {
                    let status = img.status.as_deref().unwrap_or("?");
                    let wait = if status == ImageStatus::Waiting.as_str() {
                        format!(" (waits on {})", volumes(&img.waiting_on))
                    } else {
                        String::new()
                    };
                    println!("    {:<8} {}{wait}", status.to_uppercase(), references(img));
                }
            }
        }
    }
    Ok(Exit::Success)
}

/// What the text of `status` shows of the last push's record (its report, as push wrote
/// it): only these members, so memory follows them, not the whole record as JSON values.
#[derive(serde::Deserialize)]
struct LastPush {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    images: Vec<PushedImage>,
}

#[derive(serde::Deserialize)]
struct PushedImage {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    waiting_on: Vec<u64>,
}

/// One JSON Lines event on stdout; a reader that went away (`| head`) ends the stream.
fn write_event(event: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer(&mut out, event)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
}

/// The bundle's volumes whose tables were not kept.
fn not_seen(r: &Recorded) -> Vec<u32> {
    (1..=r.manifest.volume_count)
        .filter(|n| !r.volumes_seen.contains(n))
        .collect()
}

/// `volume 3`, `volumes 1, 2`.
fn volumes(ns: &[u64]) -> String {
    let list: Vec<String> = ns.iter().map(u64::to_string).collect();
    match ns.len() {
        1 => format!("volume {}", list[0]),
        _ => format!("volumes {}", list.join(", ")),
    }
}

/// What an image went in as: every `repository:tag`, or `repository@digest` when it has
/// no tag (what a user would pull).
fn references(img: &PushedImage) -> String {
    let dest = img.destination.as_deref().unwrap_or("?");
    if img.tags.is_empty() {
        format!("{dest}@{}", img.digest.as_deref().unwrap_or("?"))
    } else {
        img.tags
            .iter()
            .map(|t| format!("{dest}:{t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
