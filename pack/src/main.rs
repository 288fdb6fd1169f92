//! ferry-pack: thin glue over the `mirror` reader and the format writer.
#![forbid(unsafe_code)]

mod base;
mod cli;
mod like;
mod source;
mod space;
mod stopped;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use ferry_format::key::PrivateKey;
use ferry_format::manifest::Encoding;
use ferry_format::media::Kept;
use ferry_format::pack::{self, Options};
use ferry_format::plan::{Plan, VolumePlan};
use ferry_format::size::{human, parse_size};

use cli::{Cli, Command, PackArgs};

fn main() -> ExitCode {
    cli_support::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Keygen { key }) => keygen(&key).map_err(Failure::from),
        None => run_pack(&cli.pack),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            eprintln!("ferry-pack: error: {message}");
            ExitCode::from(code)
        }
    }
}

fn keygen(path: &std::path::Path) -> Result<(), String> {
    let key = PrivateKey::generate().map_err(|e| e.to_string())?;
    let public = key.save_new(path).map_err(|e| e.to_string())?;
    println!(
        "private key: {} (keep it on the connected side, mode 0600)",
        path.display()
    );
    println!(
        "public key:  {} (give it to the air-gapped side: --trust)",
        public.display()
    );
    println!("fingerprint: {}", key.public().fingerprint());
    Ok(())
}

/// How a pack run failed: what to say, and the exit status (1, or 130 after Ctrl-C).
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, code: 1 }
    }
}

fn run_pack(args: &PackArgs) -> Result<(), Failure> {
    let (Some(mirror_dir), Some(size_text), Some(key_path)) =
        (&args.mirror, &args.volume_size, &args.key)
    else {
        unreachable!("clap requires these arguments");
    };
    let cancel = cli_support::interrupt_flag();
    let started = Instant::now();
    let volume_size = parse_size(size_text).map_err(|e| e.to_string())?;
    let key = PrivateKey::load(key_path).map_err(|e| e.to_string())?;
    for out in &args.out {
        space::check_out(out)?;
    }
    let say = |text: String| {
        if !args.quiet && !args.json {
            eprintln!("ferry-pack: {text}");
        }
    };
    let base = base::Base::load(&args.base)?;
    let mut mirror = mirror::read_mirror(mirror_dir).map_err(|e| e.to_string())?;
    let named = match &args.origin {
        Some(origin) => Some(source::apply_origin(&mut mirror, origin).map_err(|e| e.0)?),
        None => None,
    };
    let source = source::to_source(&mirror, &base).map_err(|e| e.0)?;
    let total: u64 = source.blobs.iter().map(|b| b.size).sum();
    let repos: std::collections::BTreeSet<&str> = mirror
        .images
        .iter()
        .map(|i| i.repository.as_str())
        .collect();
    say(format!(
        "{}: {} layout, {} images in {} repositories, {} blobs, {}",
        mirror_dir.display(),
        mirror.kind.name(),
        mirror.images.len(),
        repos.len(),
        source.blobs.len(),
        human(total)
    ));
    if let (Some(n), Some(origin)) = (named, &args.origin) {
        say(format!(
            "--origin {origin}: {n} image(s) without a recorded original are recorded as {origin}/<repository>"
        ));
    } else {
        let unknown = mirror.images.iter().filter(|i| i.source.is_none()).count();
        if unknown > 0 {
            say(format!(
                "{unknown} of {} image(s) have no original reference in this layout: push can write no mirror set for them; give --origin REGISTRY to name where they came from",
                mirror.images.len()
            ));
        }
    }
    for line in source::catalog_report(&mirror, &source) {
        say(line);
    }
    if !mirror.skipped.is_empty() {
        // Shown even with --quiet: the operator must know the mirror run had failures.
        eprintln!(
            "ferry-pack: skipped {} leftover(s) of failed mirror runs (not packed): {}",
            mirror.skipped.len(),
            mirror.skipped.join(", ")
        );
    }
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"))?,
        Err(_) => source::newest_mtime(&source),
    };
    let options = Options {
        volume_size,
        chunk_size: pack::DEFAULT_CHUNK_SIZE,
        created,
        creator: format!("ferry-pack {}", env!("CARGO_PKG_VERSION")),
    };
    let hashing = Instant::now();
    pack::check_copies(&source::other_copies(&mirror, &source)).map_err(|e| e.to_string())?;
    let prepared = pack::prepare(&source.blobs, cancel).map_err(|e| match e {
        ferry_format::FormatError::Interrupted => Failure {
            message: "interrupted while sizing the mirror's blobs; nothing was written".into(),
            code: 130,
        },
        e => e.to_string().into(),
    })?;
    let prepare_secs = hashing.elapsed().as_secs_f64();
    let plan = pack::make_plan(&source, &prepared, &options, &key).map_err(|e| e.to_string())?;
    // Self-check: what we are about to sign must pass every rule a reader applies.
    ferry_format::manifest::BundleManifest::parse(&plan.manifest_bytes)
        .map_err(|e| format!("the mirror cannot be packed: {e}"))?;
    let m = &plan.manifest;
    if let Some(n) = args
        .only_volume
        .iter()
        .find(|&&n| n == 0 || n > m.volume_count)
    {
        return Err(format!(
            "--only-volume {n}: the bundle has {} volumes (1 to {})",
            m.volume_count, m.volume_count
        )
        .into());
    }
    like::check(args, &plan)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(Failure {
            message: "interrupted before anything was written".into(),
            code: 130,
        });
    }
    // A rerun (after Ctrl-C, a full disk, or a complete run): its complete volumes are
    // checked and kept; its own temporaries and damaged volumes make room.
    let found =
        ferry_format::media::find(&plan, &key.public(), &args.out).map_err(|e| e.to_string())?;
    let kept: Vec<&Kept> = found
        .kept
        .iter()
        .filter(|k| args.only_volume.is_empty() || args.only_volume.contains(&k.volume))
        .collect();
    let selected: Vec<&VolumePlan> = plan
        .volumes
        .iter()
        .filter(|v| args.only_volume.is_empty() || args.only_volume.contains(&v.volume))
        .filter(|v| !kept.iter().any(|k| k.volume == v.volume))
        .collect();
    let replaced: Vec<&ferry_format::media::Damaged> = found
        .damaged
        .iter()
        .filter(|d| selected.iter().any(|v| v.volume == d.volume))
        .collect();
    let manifest_name = ferry_format::volume::manifest_file_name(&m.bundle_id);
    let manifest_size = pack::manifest_copy_size(&plan);
    let room = space::Room {
        manifest: args
            .out
            .iter()
            .map(|d| space::manifest_room(d, &manifest_name, manifest_size))
            .collect(),
        reclaim: args
            .out
            .iter()
            .map(|d| {
                let partials = found
                    .partials
                    .iter()
                    .filter(|(p, _)| p.parent() == Some(d))
                    .map(|(_, n)| n)
                    .sum::<u64>();
                let damaged = replaced
                    .iter()
                    .filter(|x| x.path.parent() == Some(d))
                    .map(|x| x.size)
                    .sum::<u64>();
                partials + damaged
            })
            .collect(),
    };
    if !args.plan {
        for (p, _) in &found.partials {
            say(format!(
                "removing {}, left by an interrupted run",
                p.display()
            ));
            let _ = std::fs::remove_file(p);
        }
        for d in &replaced {
            say(format!(
                "volume {} at {} is not intact ({}): it is written again",
                d.volume,
                d.path.display(),
                d.reason
            ));
            let _ = std::fs::remove_file(&d.path);
        }
    }
    for k in &kept {
        say(format!(
            "volume {} is already complete at {} (checked): kept",
            k.volume,
            k.path.display()
        ));
    }
    let (assignment, shortfall) = space::assign(&args.out, &selected, &room)
        .map_err(|e| format!("checking free space: {e}"))?;
    let destinations =
        space::Destinations::new(args.out.clone(), manifest_name, manifest_size, cancel);
    if args.plan {
        print_plan(
            &plan,
            &selected,
            &kept,
            &assignment,
            &args.out,
            prepare_secs,
            total,
        );
        if let Some(s) = &shortfall {
            // As the real run would: a plan that does not fit is a failure for scripts too.
            return Err(format!(
                "the bundle does not fit the outputs given: volume {} onwards has no room ({}). Give more --out directories (one per disk), free space, or choose another --volume-size",
                s.volume,
                s.describe(&args.out)
            )
            .into());
        }
        return Ok(());
    }
    if let Some(s) = &shortfall {
        if !destinations.interactive() {
            let need: u64 = selected.iter().map(|v| v.file_size).sum();
            let free: Vec<String> = args
                .out
                .iter()
                .map(|d| {
                    format!(
                        "{} ({} free)",
                        d.display(),
                        human(space::free_space(d).unwrap_or(0))
                    )
                })
                .collect();
            return Err(format!(
                "the bundle does not fit: {} volume(s) to write, {} in all, and volume {} onwards has no room ({}; outputs: {}). Nothing was written. \
                 Give more --out directories (one per disk), free space, or choose another --volume-size; --plan shows the layout",
                selected.len(),
                human(need),
                s.volume,
                s.describe(&args.out),
                free.join(", ")
            )
            .into());
        }
    }
    say(format!(
        "bundle {} — {} volume(s) of at most {}, {} stored ({} compressed with zstd{}), key {}",
        m.bundle_id,
        m.volume_count,
        human(volume_size),
        human(m.blobs.iter().map(|b| b.stored_size).sum()),
        m.blobs
            .iter()
            .filter(|b| b.encoding == Encoding::Zstd)
            .count(),
        if m.is_delta() {
            format!(
                "; {} left to the base",
                m.blobs
                    .iter()
                    .filter(|b| b.encoding == Encoding::Base)
                    .count()
            )
        } else {
            String::new()
        },
        m.key
    ));
    let to_write: u64 = selected.iter().map(|v| v.file_size).sum();
    let bar = progress::Progress::new(
        progress::Mode::detect(args.quiet, args.json),
        "pack",
        to_write,
    );
    let written_so_far = AtomicU64::new(0);
    let progress = |n: u64| {
        bar.add(n);
        written_so_far.fetch_add(n, Ordering::Relaxed);
    };
    let mut destinations = destinations;
    let only: Vec<u32> = selected.iter().map(|v| v.volume).collect();
    let result = if only.is_empty() {
        Ok(Vec::new())
    } else {
        pack::write_volumes(
            &plan,
            &source.blobs,
            &prepared,
            &key,
            &mut |v| {
                bar.message(&format!(
                    "volume {} of {}",
                    v.volume, plan.manifest.volume_count
                ));
                destinations.next(v, &bar)
            },
            &only,
            &progress,
            cancel,
        )
    };
    bar.finish();
    let written = match result {
        Ok(w) => w,
        Err(stopped) => return Err(stopped::message(&plan, &kept, &only, stopped)),
    };
    // Media that only hold kept volumes get the standalone manifest too (when missing).
    let mut kept_dirs: Vec<&Path> = kept.iter().filter_map(|k| k.path.parent()).collect();
    kept_dirs.dedup();
    for dir in kept_dirs {
        pack::write_manifest_copy(&plan, &key, dir).map_err(|e| e.to_string())?;
    }
    let mut all: Vec<(u32, &Path, u64, bool)> = written
        .iter()
        .map(|w| (w.volume, w.path.as_path(), w.size, false))
        .chain(
            kept.iter()
                .map(|k| (k.volume, k.path.as_path(), k.size, true)),
        )
        .collect();
    all.sort_by_key(|a| a.0);
    let events = progress::Events::new(args.json);
    if args.json {
        for (volume, path, size, kept) in &all {
            events.emit(
                "volume_written",
                &serde_json::json!({"path": path, "volume": volume, "size": size, "kept": kept}),
            );
        }
        events.emit(
            "summary",
            &serde_json::json!({
                "bundle_id": m.bundle_id, "volume_count": m.volume_count, "volumes_written": all.len(),
                "volumes_kept": kept.len(),
                "bytes_written": written_so_far.load(Ordering::Relaxed), "key": m.key,
                "seconds": started.elapsed().as_secs_f64(),
            }),
        );
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    for (_, path, size, _) in &all {
        let _ = writeln!(stdout, "{}\t{}", path.display(), size);
    }
    say(format!(
        "wrote {} volume(s){} in {:.1}s; the standalone manifest {} is beside them",
        written.len(),
        if kept.is_empty() {
            String::new()
        } else {
            format!(", kept {} already complete", kept.len())
        },
        started.elapsed().as_secs_f64(),
        ferry_format::volume::manifest_file_name(&m.bundle_id)
    ));
    Ok(())
}

/// `--plan`: the layout, the split, whether it fits, and how long writing takes.
fn print_plan(
    plan: &Plan,
    selected: &[&VolumePlan],
    kept: &[&Kept],
    assignment: &[Option<usize>],
    outs: &[PathBuf],
    prepare_secs: f64,
    total: u64,
) {
    let m = &plan.manifest;
    let sum = |e: Encoding, f: fn(&ferry_format::manifest::Blob) -> u64| -> u64 {
        m.blobs.iter().filter(|b| b.encoding == e).map(f).sum()
    };
    println!("bundle {}", m.bundle_id);
    println!(
        "{} volume(s) of at most {} ({} bytes):",
        m.volume_count,
        human(m.volume_size),
        m.volume_size
    );
    for k in kept {
        println!(
            "  volume {:>3}  {:>12}  already complete -> {} (kept)",
            k.volume,
            human(k.size),
            k.path.display()
        );
    }
    for (v, at) in selected.iter().zip(assignment) {
        let dest = match at {
            Some(i) => outs[*i].display().to_string(),
            None => "DOES NOT FIT".into(),
        };
        println!(
            "  volume {:>3}  {:>12}  {:>5} chunks  -> {dest}",
            v.volume,
            human(v.file_size),
            v.chunks.len()
        );
    }
    println!(
        "stored as is:     {} ({} blobs: gzip/zstd layers and what zstd would not shrink)",
        human(sum(Encoding::Raw, |b| b.stored_size)),
        m.blobs
            .iter()
            .filter(|b| b.encoding == Encoding::Raw)
            .count()
    );
    println!(
        "zstd-compressed:  {} from {} ({} blobs: configs, manifests, uncompressed layers)",
        human(sum(Encoding::Zstd, |b| b.stored_size)),
        human(sum(Encoding::Zstd, |b| b.size)),
        m.blobs
            .iter()
            .filter(|b| b.encoding == Encoding::Zstd)
            .count()
    );
    if m.is_delta() {
        println!(
            "left to the base: {} ({} blobs the inside already holds)",
            human(sum(Encoding::Base, |b| b.size)),
            m.blobs
                .iter()
                .filter(|b| b.encoding == Encoding::Base)
                .count()
        );
    }
    for (i, out) in outs.iter().enumerate() {
        let need: u64 = selected
            .iter()
            .zip(assignment)
            .filter(|(_, a)| **a == Some(i))
            .map(|(v, _)| v.file_size)
            .sum();
        println!(
            "output {}: {} free, {} planned there{}",
            out.display(),
            human(space::free_space(out).unwrap_or(0)),
            human(need),
            if need > 0 {
                format!(
                    " + {} for the bundle manifest and its signature",
                    human(pack::manifest_copy_size(plan))
                )
            } else {
                String::new()
            }
        );
    }
    let bytes: u64 = selected.iter().map(|v| v.file_size).sum();
    if assignment.iter().any(Option::is_none) {
        println!("does not fit the outputs given: give more --out directories (one per disk) or more space");
    }
    let at = |mbps: f64| {
        let s = bytes as f64 / (mbps * 1e6);
        if s >= 120.0 {
            format!("{:.0} min", s / 60.0)
        } else {
            format!("{s:.0} s")
        }
    };
    println!(
        "expected time: sizing what zstd compresses took {prepare_secs:.1}s for a {} mirror here; writing {} takes about {} at 30 MB/s (USB 2), {} at 100 MB/s (USB 3 stick), {} at 400 MB/s (SSD)",
        human(total),
        human(bytes),
        at(30.0),
        at(100.0),
        at(400.0)
    );
}
