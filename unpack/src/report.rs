//! What ferry-unpack prints for people: the verify report and `inspect`.

use std::path::PathBuf;

use format_spec::size::human;
use format_spec::verify::{Report, VolumeReport, VolumeStatus};
use format_spec::volume_set::{open_every, Trust};

use crate::error::Exit;
use crate::{load_keys, Outcome};

pub fn print_verify(r: &Report) {
    if let Some(b) = &r.bundle {
        println!(
            "bundle {} created {} — {} volume(s), {} images, {} blobs{}",
            b.bundle_id,
            utc(b.created),
            b.volume_count,
            b.images,
            b.blobs,
            b.signed_by
                .as_ref()
                .map(|k| format!(", signed by {k}"))
                .unwrap_or_default()
        );
    }
    for v in &r.volumes {
        let number = match (v.volume.or(v.named_volume), &r.bundle) {
            (Some(n), Some(b)) => format!("volume {n}/{}", b.volume_count),
            (Some(n), None) => format!("volume {n}"),
            _ => "volume ?".into(),
        };
        println!(
            "{:<10} {number:<14} {}",
            v.status.as_str().to_uppercase(),
            v.path.display()
        );
        if let Some(e) = &v.error {
            println!("           {e}");
        }
        for d in &v.damage {
            match (&d.blob, d.stream_offset) {
                (Some(blob), Some(at)) => println!(
                    "           {} damaged at offset {} (blob {blob}, bytes from {at})",
                    d.what, d.offset
                ),
                _ => println!("           {} damaged at offset {}", d.what, d.offset),
            }
        }
        if !v.images_hurt.is_empty() {
            println!("           images hurt: {}", v.images_hurt.join(", "));
        }
    }
    if !r.missing_volumes.is_empty() {
        // Not given is not damaged: sticks arrive one at a time, each verified where it is.
        let unverifiable = r
            .volumes
            .iter()
            .any(|v| v.volume.is_none() && v.named_volume.is_none());
        let n = r.missing_volumes.len();
        println!(
            "{} {} of {} not given{}: verify {} when {} arrive",
            if n == 1 { "volume" } else { "volumes" },
            format_spec::bundle::list(&r.missing_volumes),
            r.bundle.as_ref().map_or(0, |b| b.volume_count),
            if unverifiable {
                " (or among the unverifiable files above)"
            } else {
                ""
            },
            if n == 1 { "it" } else { "them" },
            if n == 1 { "it" } else { "they" },
        );
    }
    for p in &r.problems {
        println!("note: {p}");
    }
    if let Some(cmd) = &r.repair_command {
        println!("to write the damaged volumes again, on the connected side, with the same mirror, key and ferry version:");
        println!("  {cmd}");
    }
    let untrusted: Vec<&VolumeReport> = r
        .volumes
        .iter()
        .filter(|v| v.status == VolumeStatus::Untrusted)
        .collect();
    let bad = r
        .volumes
        .iter()
        .filter(|v| !matches!(v.status, VolumeStatus::Ok | VolumeStatus::Untrusted))
        .count();
    if r.ok {
        println!("all {} volume(s) given verified", r.volumes.len());
    }
    if bad > 0 {
        println!(
            "{bad} of {} volume(s) failed verification: do not push from them; rewrite them on the connected side with `ferry-pack … --only-volume N`",
            r.volumes.len()
        );
    }
    if !untrusted.is_empty() {
        // The media may be perfect: the key is what does not match, so rewriting would not help.
        let mut found: Vec<&str> = untrusted
            .iter()
            .filter_map(|v| v.key_found.as_deref())
            .collect();
        found.sort_unstable();
        found.dedup();
        println!(
            "{} of {} volume(s) signed by a key that is not trusted: the key does not match (signed by {}; trusted: {}): give --trust the public key of the key that packed them, comparing fingerprints with the connected side; the volumes themselves may be fine",
            untrusted.len(),
            r.volumes.len(),
            found.join(", "),
            if r.trusted_keys.is_empty() {
                "none".to_string()
            } else {
                r.trusted_keys.join(", ")
            }
        );
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    format_spec::time::Utc::from_unix(secs).human()
}

pub fn inspect(volumes: &[PathBuf], trust: &[PathBuf], json: bool) -> Outcome {
    let keys = load_keys(trust)?;
    let trust = if keys.is_empty() {
        Trust::Unverified
    } else {
        Trust::Keys(&keys)
    };
    let opened = open_every(volumes, trust)?;
    let first = &opened[0]; // open_every gives one volume at least
    let m = &first.manifest;
    if json {
        // JSON Lines (docs/events.md): the `bundle`, then each `volume` and `image`.
        let events = progress::Events::new(true);
        events.emit(
            "bundle",
            &serde_json::json!({
                "verified": !keys.is_empty(),
                "bundle_id": m.bundle_id, "created": m.created, "creator": m.creator,
                "source_layout": m.source_layout, "key": m.key,
                "volume_size": m.volume_size, "volume_count": m.volume_count,
                "delta": m.is_delta(), "format": m.ferry_bundle,
                "manifest_stored_bytes": first.manifest_bytes.len(),
            }),
        );
        for v in &opened {
            events.emit(
                "volume",
                &serde_json::json!({
                    "path": v.path, "volume": v.table.volume, "size": v.size,
                    "bundle_id": v.table.bundle_id, "chunks": v.table.chunks.len(),
                    "signed_by": v.signed_by,
                }),
            );
        }
        for i in &m.images {
            events.emit(
                "image",
                &serde_json::json!({
                    "repository": i.repository, "tags": i.tags, "digest": i.digest,
                    "media_type": i.media_type, "source": i.source,
                    "platforms": i.platforms, "destination": i.destination,
                    "catalog": i.catalog, "packages": i.packages,
                    "size": i.blobs.iter().map(|&b| m.blobs[b as usize].size).fold(0u64, u64::saturating_add),
                }),
            );
        }
        return Ok(Exit::Success);
    }
    let raw: u64 = m.blobs.iter().map(|b| b.size).fold(0, u64::saturating_add);
    let stored: u64 = m
        .blobs
        .iter()
        .map(|b| b.stored_size)
        .fold(0, u64::saturating_add);
    println!("bundle      {}", m.bundle_id);
    println!("created     {} by {}", utc(m.created), m.creator);
    println!("packed from {} layout", m.source_layout);
    // Version 1 is what an older ferry-unpack reads; the manifest is in every volume.
    println!(
        "format      {} (manifest {} in each volume{})",
        m.ferry_bundle,
        human(first.manifest_bytes.len() as u64),
        if m.ferry_bundle == 1 {
            ", plain JSON"
        } else {
            ", zstd"
        }
    );
    println!(
        "key         {}{}",
        m.key,
        if keys.is_empty() {
            " (claimed; signatures not checked: pass --trust to check)"
        } else {
            " (signatures checked)"
        }
    );
    println!(
        "volumes     {} of at most {}; {} blobs, {} ({} stored)",
        m.volume_count,
        human(m.volume_size),
        m.blobs.len(),
        human(raw),
        human(stored)
    );
    for v in &opened {
        println!(
            "  volume {:>3}  {:>12}  {} chunks  {}",
            v.table.volume,
            human(v.size),
            v.table.chunks.len(),
            v.path.display()
        );
    }
    println!("images      {}", m.images.len());
    for i in &m.images {
        let size: u64 = i
            .blobs
            .iter()
            .map(|&b| m.blobs[b as usize].size)
            .fold(0, u64::saturating_add);
        println!(
            "  {}  {}  {}{}",
            i.display_name(),
            i.digest,
            human(size),
            i.source
                .as_ref()
                .map(|s| format!("  from {s}"))
                .unwrap_or_default()
        );
        if let Some(d) = &i.destination {
            println!("    goes to PREFIX/{d} (the image set's targetRepo)");
        }
        if i.catalog {
            match &i.packages {
                Some(p) if p.is_empty() => println!(
                    "    operator catalog holding no package (the selection kept none)"
                ),
                Some(p) => println!(
                    "    operator catalog, {} package(s): {}",
                    p.len(),
                    p.join(", ")
                ),
                None => println!(
                    "    operator catalog (its packages are not recorded: `ferry-unpack catalog list` reads them from the volumes)"
                ),
            }
        }
        if let Some(p) = &i.platforms {
            println!(
                "    sparse index: only the {} children are carried (a registry must accept sparse indexes to take it)",
                p.join(", ")
            );
        }
    }
    Ok(Exit::Success)
}
