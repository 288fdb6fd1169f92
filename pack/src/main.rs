//! ferry-pack: thin glue over the `mirror` reader and the format writer.
#![forbid(unsafe_code)]

mod cli;
mod source;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use ferry_format::key::PrivateKey;
use ferry_format::pack::{self, Options};
use ferry_format::size::{human, parse_size};

use cli::{Cli, Command, PackArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Keygen { key }) => keygen(&key),
        None => run_pack(&cli.pack),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ferry-pack: error: {message}");
            ExitCode::from(1)
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

fn run_pack(args: &PackArgs) -> Result<(), String> {
    let (Some(mirror_dir), Some(out), Some(size_text), Some(key_path)) =
        (&args.mirror, &args.out, &args.volume_size, &args.key)
    else {
        unreachable!("clap requires these arguments");
    };
    let started = Instant::now();
    let volume_size = parse_size(size_text).map_err(|e| e.to_string())?;
    let key = PrivateKey::load(key_path).map_err(|e| e.to_string())?;
    let say = |text: String| {
        if !args.quiet {
            eprintln!("ferry-pack: {text}");
        }
    };
    let mirror = mirror::read_mirror(mirror_dir).map_err(|e| e.to_string())?;
    let source = source::to_source(&mirror).map_err(|e| e.0)?;
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
    if !mirror.skipped.is_empty() {
        say(format!(
            "skipped {} leftover(s) of failed mirror runs (not packed): {}",
            mirror.skipped.len(),
            mirror.skipped.join(", ")
        ));
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
    pack::check_copies(&source::other_copies(&mirror, &source)).map_err(|e| e.to_string())?;
    let prepared = pack::prepare(&source.blobs).map_err(|e| e.to_string())?;
    let plan = pack::make_plan(&source, &prepared, &options, &key).map_err(|e| e.to_string())?;
    // Self-check: what we are about to sign must pass every rule a reader applies.
    ferry_format::manifest::BundleManifest::parse(&plan.manifest_bytes)
        .map_err(|e| format!("the mirror cannot be packed: {e}"))?;
    let m = &plan.manifest;
    let stored: u64 = m.blobs.iter().map(|b| b.stored_size).sum();
    say(format!(
        "bundle {} — {} volume(s) of at most {}, {} stored ({} compressed with zstd), key {}",
        m.bundle_id,
        m.volume_count,
        human(volume_size),
        human(stored),
        m.blobs
            .iter()
            .filter(|b| b.encoding == ferry_format::manifest::Encoding::Zstd)
            .count(),
        m.key
    ));
    if let Some(n) = args.only_volume {
        // A volume rewritten alone must belong to the bundle already on the media: the same
        // mirror, options, key, time and ferry version. Say so when another bundle's manifest is there.
        let mine = ferry_format::volume::manifest_file_name(&m.bundle_id);
        if let Ok(entries) = std::fs::read_dir(out) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".bundle.json") && !name.starts_with('.') && name != mine {
                    eprintln!(
                        "ferry-pack: warning: {} holds {name}, another bundle; volume {n} written now belongs to bundle {} — check the mirror, --volume-size, key and SOURCE_DATE_EPOCH match the first run",
                        out.display(),
                        m.bundle_id
                    );
                }
            }
        }
    }
    let done = AtomicU64::new(0);
    let last_report = std::sync::Mutex::new(Instant::now());
    let to_write: u64 = plan
        .volumes
        .iter()
        .filter(|v| args.only_volume.is_none_or(|n| n == v.volume))
        .map(|v| v.file_size)
        .sum();
    let progress = |n: u64| {
        let now = done.fetch_add(n, Ordering::Relaxed) + n;
        let mut last = last_report.lock().expect("progress lock");
        if !args.quiet && last.elapsed().as_secs() >= 5 {
            *last = Instant::now();
            eprintln!("ferry-pack: {} of {} written", human(now), human(to_write));
        }
    };
    let written = pack::write_volumes(&plan, &source.blobs, &key, out, args.only_volume, &progress)
        .map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    for w in &written {
        let _ = writeln!(stdout, "{}\t{}", w.path.display(), w.size);
    }
    say(format!(
        "wrote {} volume(s) in {:.1}s; standalone manifest {}",
        written.len(),
        started.elapsed().as_secs_f64(),
        out.join(ferry_format::volume::manifest_file_name(&m.bundle_id))
            .display()
    ));
    Ok(())
}
