//! `status`: where a site stands with each bundle — volumes seen and verified, images in the
//! registry, images waiting and on which volumes, pieces staged — from the state directory.

use std::path::Path;

use ferry_format::digest::Digest;
use ferry_format::manifest::BundleManifest;
use ferry_format::size::human;
use ferry_format::stage::Stage;

use crate::Outcome;

pub fn status(state: &Path, json: bool) -> Outcome {
    let entries = match std::fs::read_dir(state) {
        Ok(entries) => entries,
        // A fresh machine: nothing has been verified or pushed with this state directory.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !json {
                println!(
                    "nothing pushed or verified yet: {} does not exist (push, and verify --state, record their progress there)",
                    state.display()
                );
            }
            return Ok(0);
        }
        Err(e) => return Err((2, format!("state directory {}: {e}", state.display()))),
    };
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("bundle.json").is_file())
        .collect();
    dirs.sort();
    let mut all = Vec::new();
    for dir in dirs {
        let Some(id) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| Digest::from_hex(n).ok())
        else {
            continue;
        };
        let stage = Stage::new(state, &id);
        // Local state, written by push from verified volumes: shown, not re-verified.
        let manifest = std::fs::read(dir.join("bundle.json"))
            .ok()
            .and_then(|b| BundleManifest::parse(&b).ok());
        let Some(m) = manifest else { continue };
        let seen = stage.volumes_seen();
        let missing: Vec<u32> = (1..=m.volume_count).filter(|n| !seen.contains(n)).collect();
        let (staged_files, staged_bytes) = stage.staged();
        let last: Option<serde_json::Value> = std::fs::read(dir.join("last-push.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        all.push(serde_json::json!({
            "bundle_id": m.bundle_id, "created": m.created, "volume_count": m.volume_count,
            "volumes_seen": seen, "volumes_not_seen": missing,
            "staged_chunks": staged_files, "staged_bytes": staged_bytes,
            "last_push": last,
        }));
    }
    if json {
        let events = progress::Events::new(true);
        for b in &all {
            events.emit("bundle", b);
        }
        return Ok(0);
    }
    if all.is_empty() {
        println!(
            "no bundle recorded in {} yet (push records its progress there)",
            state.display()
        );
        return Ok(0);
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
                    let wait = if status == "waiting" {
                        format!(" (waits on {})", volumes(&numbers(&img["waiting_on"])))
                    } else {
                        String::new()
                    };
                    println!("    {:<8} {}{wait}", status.to_uppercase(), references(img));
                }
            }
        }
    }
    Ok(0)
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
