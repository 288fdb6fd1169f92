//! ferry-pack: thin glue over the `mirror` reader and the format writer.
#![forbid(unsafe_code)]

mod base;
mod cli;
mod destinations;
mod error;
mod like;
mod pull;
mod report;
mod source;
mod spool;
mod stopped;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use format_spec::key::PrivateKey;
use format_spec::media::Selection;
use format_spec::pack::{self, Options};
use format_spec::room::{self, Room};
use format_spec::size::{human, parse_size};

use cli::{CacheCommand, CatalogCommand, Cli, Command, PackArgs};
use destinations::Destinations;
use error::PackError;

/// mimalloc rather than glibc's allocator: pack frees a mirror's model (millions of small
/// strings, interleaved with what lives on) between phases, and glibc keeps every page that
/// still holds one live object; at 6×10^4 images that was 350 MiB resident for 230 MiB in
/// use. mimalloc keeps objects of one size together and returns pages that empty.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli_support::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Keygen { key }) => keygen(&key),
        Some(Command::Pull(cmd)) => pull::run_pull(&cmd),
        Some(Command::Cache {
            action: CacheCommand::Prune { config, cache },
        }) => pull::run_prune(&config, &cache),
        Some(Command::Catalog {
            action: CatalogCommand::List(cmd),
        }) => pull::run_catalog_list(&cmd),
        None => run_pack(&cli.pack),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-pack: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn keygen(path: &Path) -> Result<(), PackError> {
    let key = PrivateKey::generate()?;
    let public = key.save_new(path)?;
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

fn run_pack(args: &PackArgs) -> Result<(), PackError> {
    let (Some(size_text), Some(key_path)) = (&args.volume_size, &args.key) else {
        unreachable!("clap requires these arguments");
    };
    if args.mirror.is_some() {
        pull::refuse_without_config(&args.pull)?;
    }
    let cancel = cli_support::interrupt_flag();
    let started = Instant::now();
    let volume_size = parse_size(size_text)?;
    let key = PrivateKey::load(key_path)?;
    for out in &args.out {
        destinations::check_out(out)?;
    }
    let say = |text: String| {
        if !args.quiet && !args.json {
            eprintln!("ferry-pack: {text}");
        }
    };
    let Some(packable) = read_source(args, volume_size, &say)? else {
        // `--config … --plan` with blobs still to download: the pull plan was printed;
        // a bundle plan needs the blobs (their compressed sizes) in the cache.
        return Ok(());
    };
    let source::Packable {
        mut source, copies, ..
    } = packable;
    let total: u64 = source.blobs.iter().map(|b| b.size).sum();
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            PackError::Input(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"
            ))
        })?,
        Err(_) => source.newest_mtime(),
    };
    let options = Options {
        volume_size,
        chunk_size: pack::DEFAULT_CHUNK_SIZE,
        created,
        creator: format!("ferry-pack {}", env!("CARGO_PKG_VERSION")),
        bundle_format: args.bundle_format,
    };
    let hashing = Instant::now();
    pack::check_copies(&copies)?;
    drop(copies);
    // Compressed streams that memory does not hold go to a spool on a local disk, so each
    // blob is compressed once (spool.rs says where, and when there is none). A plan only
    // needs the sizes: it spools nothing.
    let spool = if args.plan {
        None
    } else {
        spool::open(&args.out, &source.blobs, options.chunk_size, volume_size)
    };
    let prepared =
        pack::prepare_spooled(&source.blobs, spool.as_ref(), cancel).map_err(|e| match e {
            format_spec::FormatError::Interrupted => PackError::Interrupted(
                "interrupted while sizing the mirror's blobs; nothing was written".into(),
            ),
            e => match &args.cache {
                Some(cache) => pull::damaged_cache_blob(e, cache),
                None => e.into(),
            },
        })?;
    let prepare_secs = hashing.elapsed().as_secs_f64();
    if let Some(spool) = spool.as_ref().filter(|s| !s.is_empty()) {
        say(format!(
            "{} of compressed streams kept in {} until written (a temporary file without a name, gone when pack ends)",
            format_spec::size::human(spool.len()),
            spool.dir().display()
        ));
    }
    let mut plan = pack::make_plan_taking(&mut source, &prepared, &options, &key)?;
    // Self-check: what we are about to sign must pass every rule a reader applies (checked
    // on the planned records and the stored bytes, without parsing a second copy).
    plan.manifest
        .check_stored(&plan.manifest_bytes)
        .map_err(|e| PackError::Unpackable(format!("the mirror cannot be packed: {e}")))?;
    plan.check_only(&args.only_volume)?;
    // Before the records go: `--like` says which of them differ from the original's.
    like::check(args, &plan)?;
    plan.drop_unwritten_records();
    let m = &plan.manifest;
    if cancel.load(Ordering::Relaxed) {
        return Err(PackError::Interrupted(
            "interrupted before anything was written".into(),
        ));
    }
    // A rerun (after Ctrl-C, a full disk, or a complete run): its complete volumes are
    // checked and kept; its own temporaries and damaged volumes make room.
    let found = format_spec::media::find(&plan, &key.public(), &args.out)?;
    let selection = found.select(&plan, &args.only_volume);
    let (kept, selected) = (&selection.kept, &selection.write);
    let manifest_name = format_spec::volume::manifest_file_name(&m.bundle_id, m.ferry_bundle);
    let manifest_size = pack::manifest_copy_size(&plan);
    let room = Room::new(&args.out, &selection, &manifest_name, manifest_size);
    if !args.plan {
        clear_leftovers(&selection, &say);
    }
    for k in kept {
        say(format!(
            "volume {} is already complete at {} (checked): kept",
            k.volume,
            k.path.display()
        ));
    }
    let (assignment, shortfall) =
        room::assign(&args.out, selected, &room).map_err(PackError::FreeSpace)?;
    let destinations = Destinations::new(args.out.clone(), manifest_name, manifest_size, cancel);
    if args.plan {
        report::print_plan(
            &plan,
            selected,
            kept,
            &assignment,
            &args.out,
            prepare_secs,
            total,
        );
        if let Some(s) = &shortfall {
            // As the real run would: a plan that does not fit is a failure for scripts too.
            return Err(PackError::DoesNotFit(report::plan_does_not_fit(
                s, &args.out,
            )));
        }
        return Ok(());
    }
    if let Some(s) = &shortfall {
        if !destinations.interactive() {
            return Err(PackError::DoesNotFit(report::does_not_fit(
                selected, s, &args.out,
            )));
        }
    }
    say(report::bundle_line(m, volume_size));
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
        Err(stopped) => return Err(stopped::message(&plan, kept, &only, stopped)),
    };
    // Media that only hold kept volumes get the standalone manifest too (when missing).
    let mut kept_dirs: Vec<&Path> = kept.iter().filter_map(|k| k.path.parent()).collect();
    kept_dirs.dedup();
    for dir in kept_dirs {
        pack::write_manifest_copy(&plan, &key, dir)?;
    }
    let done = report::Done {
        manifest: m,
        written: &written,
        kept,
        bytes_written: written_so_far.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        done.emit_json();
    } else {
        done.print_volumes();
        say(done.summary_line());
    }
    Ok(())
}

/// The mirror, read and put in pack order (with `--origin` and `--base` applied), and what
/// pack says about it. With `--config`, the image set's images pulled into `--cache` and
/// read from there; `None` for a `--plan` whose blobs are not all in the cache yet.
fn read_source(
    args: &PackArgs,
    volume_size: u64,
    say: &dyn Fn(String),
) -> Result<Option<source::Packable>, PackError> {
    let base = base::load(&args.base)?;
    let (mut mirror, mirror_dir) = match (&args.mirror, &args.config, &args.cache) {
        (Some(dir), _, _) => (mirror::read_mirror(dir)?, dir.clone()),
        (None, Some(config), Some(cache)) => {
            let Some(pulled) = pull::pull_for_pack(
                config,
                cache,
                &args.pull,
                args.plan,
                args.quiet,
                args.json,
                &args.out,
                volume_size,
            )?
            else {
                say(format!(
                    "the bundle's size and volumes can be planned once every blob is in {}: run `ferry-pack pull --config {} --cache {}` first",
                    cache.display(),
                    config.display(),
                    cache.display()
                ));
                return Ok(None);
            };
            let views = cache.join(".ferry").join("views");
            let m = mirror::read_oci_selection(cache, &pulled.ref_names, &views)?;
            (m, cache.clone())
        }
        _ => unreachable!("clap requires a mirror or --config with --cache"),
    };
    let mirror_dir = mirror_dir.as_path();
    let named = match &args.origin {
        Some(origin) => Some(source::apply_origin(&mut mirror, origin)?),
        None => None,
    };
    // What is said of the mirror's model is taken from it before it is consumed.
    let kind = mirror.kind;
    let image_count = mirror.images.len();
    let repos = mirror
        .images
        .iter()
        .map(|i| i.repository.as_str())
        .collect::<std::collections::BTreeSet<&str>>()
        .len();
    let unknown = mirror.images.iter().filter(|i| i.source.is_none()).count();
    let skipped = std::mem::take(&mut mirror.skipped);
    let packable = source::to_source(mirror, &base)?;
    let source = &packable.source;
    let total: u64 = source.blobs.iter().map(|b| b.size).sum();
    say(format!(
        "{}: {} layout, {} images in {} repositories, {} blobs, {}",
        mirror_dir.display(),
        kind.name(),
        image_count,
        repos,
        source.blobs.len(),
        human(total)
    ));
    if let (Some(n), Some(origin)) = (named, &args.origin) {
        say(format!(
            "--origin {origin}: {n} image(s) without a recorded original are recorded as {origin}/<repository>"
        ));
    } else if unknown > 0 {
        say(format!(
            "{unknown} of {image_count} image(s) have no original reference in this layout: push can write no mirror set for them; give --origin REGISTRY to name where they came from"
        ));
    }
    for line in &packable.catalog_lines {
        say(line.clone());
    }
    if !skipped.is_empty() {
        // Shown even with --quiet: the operator must know the mirror run had failures.
        eprintln!(
            "ferry-pack: skipped {} leftover(s) of failed mirror runs (not packed): {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    Ok(Some(packable))
}

/// Removes what an earlier run left (its temporaries, damaged volumes this run writes
/// again), saying so, before free space is counted.
fn clear_leftovers(selection: &Selection<'_>, say: &dyn Fn(String)) {
    for (p, _) in selection.partials {
        say(format!(
            "removing {}, left by an interrupted run",
            p.display()
        ));
        let _ = std::fs::remove_file(p);
    }
    for d in &selection.replace {
        say(format!(
            "volume {} at {} is not intact ({}): it is written again",
            d.volume,
            d.path.display(),
            d.reason
        ));
        let _ = std::fs::remove_file(&d.path);
    }
}
