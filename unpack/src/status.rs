//! `status`: where a site stands with each bundle — volumes seen and verified, images in the
//! registry, images waiting and on which volumes, pieces staged — from the state directory.

use format_spec::size::human;
use format_spec::state::StateDir;
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
    let all: Vec<serde_json::Value> = recorded
        .into_iter()
        .map(|r| {
            let m = &r.manifest;
            let missing: Vec<u32> = (1..=m.volume_count)
                .filter(|n| !r.volumes_seen.contains(n))
                .collect();
            serde_json::json!({
                "bundle_id": m.bundle_id, "created": m.created, "volume_count": m.volume_count,
                "volumes_seen": r.volumes_seen, "volumes_not_seen": missing,
                "staged_chunks": r.staged_chunks, "staged_bytes": r.staged_bytes,
                "last_push": r.last_push,
            })
        })
        .collect();
    if json {
        let events = progress::Events::new(true);
        for b in &all {
            events.emit("bundle", b);
        }
        return Ok(Exit::Success);
    }
    if all.is_empty() {
        println!(
            "no bundle recorded in {} yet (push records its progress there)",
            state.root().display()
        );
        return Ok(Exit::Success);
    }
    for b in &all {
        println!(
            "bundle {} (created {})",
            b["bundle_id"].as_str().unwrap_or("?"),
            crate::report::utc(b["created"].as_u64().unwrap_or(0))
        );
        // A count, then volume numbers, each named as such: "1 of 3 (volume 3)", never
        // "3 of 3" for one volume seen out of three.
        let seen = numbers(&b["volumes_seen"]);
        let not_seen = numbers(&b["volumes_not_seen"]);
        println!(
            "  volumes seen and verified: {} of {}{}{}",
            seen.len(),
            b["volume_count"],
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
            b["staged_chunks"],
            human(b["staged_bytes"].as_u64().unwrap_or(0))
        );
        match b["last_push"].as_object() {
            None => println!("  not pushed yet"),
            Some(p) => {
                println!("  last push to {}:", p["target"].as_str().unwrap_or("?"));
                for img in p["images"].as_array().into_iter().flatten() {
                    let status = img["status"].as_str().unwrap_or("?");
                    let wait = if status == ImageStatus::Waiting.as_str() {
                        format!(" (waits on {})", volumes(&numbers(&img["waiting_on"])))
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

fn numbers(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_u64())
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
fn references(img: &serde_json::Value) -> String {
    let dest = img["destination"].as_str().unwrap_or("?");
    let tags: Vec<String> = img["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .map(|t| format!("{dest}:{t}"))
        .collect();
    if tags.is_empty() {
        format!("{dest}@{}", img["digest"].as_str().unwrap_or("?"))
    } else {
        tags.join(", ")
    }
}
