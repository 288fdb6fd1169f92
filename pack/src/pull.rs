//! The connected side's glue: `ferry-pack pull`, `ferry-pack cache prune`, and the pull
//! that `ferry-pack --config … --cache …` runs before it packs. The work is the `pull`
//! crate's; this module turns the command line into its options, its events into
//! progress, lines and JSON, and its reports into messages and exit codes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use format_spec::size::human;
use imageset::{ImageSet, Platform, PullSet};
use pull::{Cache, CatalogPlan, Event, Failure, Plan, Report, ResolvedImage};
use serde_json::json;

use crate::cli::{CatalogListCommand, PullCommand, PullOptions, DEFAULT_JOBS, DEFAULT_RETRY_FOR};
use crate::error::PackError;

/// The cache `ferry-pack --config` packs from, locked (`Cache::open`'s flock) from its
/// pull until the process exits.
static PACKING_FROM: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();

/// Where a pack with `--config` finds the images it packs.
pub struct Pulled {
    /// The cache's names of the set's images, in the set's order.
    pub ref_names: Vec<String>,
}

/// The pull options as the `pull` crate takes them. Bad values are usage errors (exit 2).
fn options(o: &PullOptions) -> Result<pull::Options, PackError> {
    let platforms = o
        .platform
        .iter()
        .map(|p| {
            p.parse::<Platform>()
                .map_err(|e| PackError::Usage(format!("--platform: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if o.jobs == 0 {
        return Err(PackError::Usage(
            "--jobs 0: give at least 1 (blobs downloaded at once)".into(),
        ));
    }
    for (flag, file) in [
        ("--authfile", &o.authfile),
        ("--registries-conf", &o.registries_conf),
        ("--ca-cert", &o.ca_cert),
    ] {
        if let Some(f) = file {
            if !f.is_file() {
                return Err(PackError::Usage(format!(
                    "{flag} {}: no such file",
                    f.display()
                )));
            }
        }
    }
    Ok(pull::Options {
        platforms,
        authfile: o.authfile.clone(),
        registries_conf: o.registries_conf.clone(),
        home: std::env::var_os("HOME").map(Into::into),
        ca_cert: o.ca_cert.clone(),
        insecure: o.insecure,
        jobs: o.jobs,
        retry_for: o.retry_for.0,
        cancel: cli_support::interrupt_flag(),
        allow_missing: o.allow_missing,
    })
}

/// The pull options mean nothing for a mirror directory: refuse them rather than ignore them.
pub fn refuse_without_config(o: &PullOptions) -> Result<(), PackError> {
    let given: Vec<&str> = [
        ("--platform", !o.platform.is_empty()),
        ("--authfile", o.authfile.is_some()),
        ("--registries-conf", o.registries_conf.is_some()),
        ("--ca-cert", o.ca_cert.is_some()),
        ("--insecure", o.insecure),
        ("--allow-missing", o.allow_missing),
        ("--jobs", o.jobs != DEFAULT_JOBS),
        (
            "--retry-for",
            Ok(o.retry_for) != DEFAULT_RETRY_FOR.parse::<cli_support::RetryFor>(),
        ),
    ]
    .into_iter()
    .filter_map(|(flag, on)| on.then_some(flag))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(PackError::Usage(format!(
        "{} appl{} to pulling (--config IMAGESET --cache DIR), not to packing a mirror directory: leave {} out, or pull with --config",
        given.join(", "),
        if given.len() == 1 { "ies" } else { "y" },
        if given.len() == 1 { "it" } else { "them" }
    )))
}

/// Reads and checks the image set, telling the user what it notes and what it blocks.
/// The file is kept to locate what the catalogs find wrong with it once read.
fn load_set(config: &Path, say: &dyn Fn(String)) -> Result<(ImageSet, PullSet), PackError> {
    let mut file = ImageSet::from_file(config)?;
    let set = file.validate_for_pull()?;
    file.forget_parsed();
    for note in &set.notes {
        say(note.to_string());
    }
    for (name, pattern) in &set.blocked {
        say(format!(
            "{}: {name} is blocked by blockedImages {pattern:?}: not pulled",
            config.display()
        ));
    }
    Ok((file, set))
}

/// A selection the catalog cannot give is the image set's error: located in the file.
fn located(e: pull::PullError, file: &ImageSet) -> PackError {
    match e {
        pull::PullError::Operator {
            index,
            field,
            message,
            ..
        } => {
            let field: Vec<imageset::locate::Seg> = field
                .iter()
                .map(|f| match f {
                    pull::Field::Key(k) => imageset::locate::Seg::Key(k),
                    pull::Field::Index(i) => imageset::locate::Seg::Index(*i),
                })
                .collect();
            PackError::ImageSet(file.operator_error(index, &field, &message))
        }
        e => e.into(),
    }
}

/// What the user sees while a pull runs, whichever the mode.
struct Show<'a> {
    json: progress::Events,
    bar: Mutex<Option<progress::Progress>>,
    quiet: bool,
    /// Say each catalog's report as it comes (not for `--plan`, whose report lists them).
    catalog_notes: bool,
    resolved: AtomicUsize,
    pulled: AtomicUsize,
    /// The images of the set; a catalog's are known once it is read (then 0 until the
    /// plan is made, and the count is said without a total).
    total_images: AtomicUsize,
    say: &'a (dyn Fn(String) + Sync),
}

impl Show<'_> {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Resolved(i) => {
                let n = self.resolved.fetch_add(1, Ordering::Relaxed) + 1;
                self.json.emit("image_resolved", &image_json(i));
                if let Some(bar) = &*self.bar.lock().expect("bar") {
                    match self.total_images.load(Ordering::Relaxed) {
                        0 => bar.message(&format!("resolved {n} images")),
                        total => bar.message(&format!("resolved {n} of {total} images")),
                    }
                }
            }
            Event::Bytes(n) => {
                if let Some(bar) = &*self.bar.lock().expect("bar") {
                    bar.add(n);
                }
            }
            Event::Retry {
                what,
                attempt,
                wait,
                error,
            } => {
                self.json.emit(
                    "retry",
                    &json!({"what": what, "attempt": attempt, "wait_seconds": wait.as_secs_f64(), "error": error}),
                );
                self.note(format!(
                    "retrying {what} in {:.1}s (attempt {attempt}): {error}",
                    wait.as_secs_f64()
                ));
            }
            Event::Pulled(i) => {
                let n = self.pulled.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(bar) = &*self.bar.lock().expect("bar") {
                    bar.message(&format!(
                        "{n} of {} images in the cache",
                        self.total_images.load(Ordering::Relaxed)
                    ));
                }
                self.json.emit(
                    "image_pulled",
                    &json!({"source": i.source, "digest": i.digest.to_string(), "name": i.ref_name}),
                );
            }
            Event::Failed(f) => {
                self.json.emit("image_failed", &failure_json(f));
                self.note(failure_line(f));
            }
            Event::Catalog(c) => {
                self.json.emit("catalog", c);
                if self.catalog_notes {
                    for line in catalog_lines(c) {
                        self.note(line);
                    }
                }
            }
        }
    }

    /// A line above the bar, or plainly; nothing with `--json` or `-q`.
    fn note(&self, text: String) {
        if self.json.enabled() || self.quiet {
            return;
        }
        match &*self.bar.lock().expect("bar") {
            Some(bar) => bar.note(&format!("ferry-pack: {text}")),
            None => (self.say)(text),
        }
    }
}

fn image_json(i: &ResolvedImage) -> serde_json::Value {
    json!({
        "source": i.source,
        "digest": i.digest.to_string(),
        "media_type": i.media_type,
        "name": i.ref_name,
        "endpoint": i.endpoint,
        "resolved_at": i.resolved_at,
        "platforms_available": i.platforms_available,
        "platforms_kept": i.platforms_kept,
        "blobs": i.blobs.len(),
        "bytes": i.blobs.iter().map(|(_, s)| s).sum::<u64>(),
    })
}

/// What a catalog's selection kept, needs and left out, one line each.
fn catalog_lines(c: &CatalogPlan) -> Vec<String> {
    let kind = match c.kind {
        catalog::image::Kind::Fbc => "file-based",
        catalog::image::Kind::Sqlite => "SQLite",
    };
    let what = if c.unchanged {
        format!("carried unchanged as {}", c.ref_name)
    } else {
        format!("rebuilt as {} ({})", c.ref_name, c.digest)
    };
    let mut lines = vec![format!(
        "catalog {} ({kind}): {} package(s) kept ({}), {} bundle(s), {} image(s) needed; {what}",
        c.catalog,
        c.packages.len(),
        c.packages.join(", "),
        c.bundles,
        c.images.len(),
    )];
    for w in &c.warnings {
        lines.push(format!("catalog {}: warning: {w}", c.catalog));
    }
    for d in &c.dependencies {
        let by = format!(
            "bundle {} (package {}) requires {}",
            d.needed_by.bundle, d.needed_by.package, d.requirement
        );
        lines.push(match &d.resolution {
            catalog::filter::Resolution::Unmet { reason } => {
                format!("catalog {}: unmet dependency: {by}: {reason}", c.catalog)
            }
            catalog::filter::Resolution::Added {
                package,
                channel,
                bundle,
            } => format!(
                "catalog {}: dependency added: {by}: added {bundle}, the head of channel {channel} of package {package}",
                c.catalog
            ),
        });
    }
    for (image, pattern) in &c.blocked {
        lines.push(format!(
            "catalog {}: {image} is blocked by blockedImages {pattern:?}: not pulled",
            c.catalog
        ));
    }
    for b in &c.dropped {
        let missing: Vec<String> = b
            .missing
            .iter()
            .map(|(image, error)| format!("{image} ({error})"))
            .collect();
        lines.push(format!(
            "catalog {}: --allow-missing: dropped bundle {} of package {}: cannot pull {}",
            c.catalog,
            b.bundle,
            b.package,
            missing.join(", ")
        ));
    }
    for p in &c.dropped_packages {
        lines.push(format!(
            "catalog {}: --allow-missing: dropped package {p} (nothing of it is left{})",
            c.catalog,
            if c.kind == catalog::image::Kind::Sqlite {
                ", or a SQLite catalog, pruned by package only"
            } else {
                ""
            }
        ));
    }
    lines
}

fn failure_json(f: &Failure) -> serde_json::Value {
    json!({"reference": f.reference, "registry": f.registry, "error": f.error})
}

fn failure_line(f: &Failure) -> String {
    // The client says what is wrong in its own terms; the flag that cures it is ours.
    let cure = if f.error.contains("not signed by a trusted CA") {
        " — give the registry's CA certificate with --ca-cert FILE (or --insecure, only on a network you trust)"
    } else {
        ""
    };
    format!(
        "cannot pull {} from {}: {}{cure}",
        f.reference, f.registry, f.error
    )
}

/// What [`run`] did, and the cache it still holds.
struct Ran {
    plan: Plan,
    /// None for `plan_only`.
    report: Option<Report>,
    cache: Cache,
    options: pull::Options,
}

/// Runs the pull of `config` into `cache`: the plan (manifests), then, unless `plan_only`,
/// the blobs. Prints the plan for `plan_only`.
fn run(
    config: &Path,
    cache_dir: &Path,
    o: &PullOptions,
    plan_only: bool,
    quiet: bool,
    json_out: bool,
) -> Result<Ran, PackError> {
    let say = |text: String| {
        if !quiet && !json_out {
            eprintln!("ferry-pack: {text}");
        }
    };
    let options = options(o)?;
    let (file, set) = load_set(config, &say)?;
    let cache = Cache::open(cache_dir).map_err(pull::PullError::from)?;
    let show = Show {
        json: progress::Events::new(json_out),
        bar: Mutex::new(None),
        quiet,
        catalog_notes: !plan_only,
        resolved: AtomicUsize::new(0),
        pulled: AtomicUsize::new(0),
        total_images: AtomicUsize::new(if set.operators.is_empty() {
            set.images.len()
        } else {
            0
        }),
        say: &say,
    };
    say(format!(
        "{}: {} image(s){} to resolve{}",
        config.display(),
        set.images.len(),
        match set.operators.len() {
            0 => String::new(),
            n => format!(" and {n} operator catalog(s) (each catalog image is downloaded first, to select from it and rebuild it)"),
        },
        platforms_text(&options.platforms)
    ));
    let events = |e: Event<'_>| show.event(e);
    let plan = pull::plan(&cache, &set, &options, &events)
        .map_err(|e| located(e, &file))
        .map_err(|e| match e {
            PackError::Pull(e) => no_room(e, cache_dir),
            e => e,
        })?;
    show.total_images
        .store(plan.images.len() + plan.failed.len(), Ordering::Relaxed);
    // The plan holds all the fetch needs: the set as parsed (about 1 KB an image, 60 MB
    // at 6×10^4) is not kept through the download.
    let set_images = set.images.len();
    drop(set);
    drop(file);
    if plan_only {
        print_plan(&plan, &cache, &show.json);
        return Ok(Ran {
            plan,
            report: None,
            cache,
            options,
        });
    }
    say(format!(
        "{} image(s) resolved: {} blob(s), {}; {} in the cache, {} to download",
        plan.images.len(),
        plan.blobs_total,
        human(plan.bytes_total),
        human(plan.bytes_cached),
        human(plan.bytes_to_fetch + plan.bytes_partial)
    ));
    *show.bar.lock().expect("bar") = Some(progress::Progress::new(
        progress::Mode::detect(quiet, json_out),
        "pull",
        plan.bytes_to_fetch + plan.bytes_partial,
    ));
    let report = pull::fetch(&cache, &plan, &options, &events);
    if let Some(bar) = show.bar.lock().expect("bar").take() {
        bar.finish();
    }
    let report = report.map_err(|e| no_room(e, cache_dir))?;
    let failed: Vec<&Failure> = plan.failed.iter().chain(&report.failed).collect();
    show.json.emit(
        "summary",
        &json!({
            "cache": cache_dir,
            "images": set_images,
            "pulled": report.pulled.len(),
            "failed": failed.iter().map(|f| failure_json(f)).collect::<Vec<_>>(),
            "blobs_fetched": report.blobs_fetched,
            "bytes_fetched": report.bytes_fetched,
            "seconds": report.seconds,
        }),
    );
    say(format!(
        "pulled {} of {} image(s) into {}: {} blob(s), {} downloaded in {:.1}s",
        report.pulled.len(),
        plan.images.len() + plan.failed.len(),
        cache_dir.display(),
        report.blobs_fetched,
        human(report.bytes_fetched),
        report.seconds
    ));
    Ok(Ran {
        plan,
        report: Some(report),
        cache,
        options,
    })
}

/// A cache without room, found before the first layer or when the disk fills up during
/// the run, is the same finding as `--plan`'s and pack's own "does not fit" (exit 1), with
/// what to do; every other error of the run is as the pull crate says it.
fn no_room(e: pull::PullError, cache: &Path) -> PackError {
    match e {
        e @ pull::PullError::NoSpace { .. } => PackError::DoesNotFit(e.to_string()),
        pull::PullError::Cache(pull::CacheError::Io { path, source })
            if source.kind() == std::io::ErrorKind::StorageFull =>
        {
            PackError::DoesNotFit(format!(
                "{}: {source}: the disk of the cache {} is full; free space there (or copy the cache to a bigger disk and give that as --cache) and run the same command again: every blob downloaded is kept, and the interrupted ones resume",
                path.display(),
                cache.display()
            ))
        }
        e => e.into(),
    }
}

fn platforms_text(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        String::new()
    } else {
        let p: Vec<String> = platforms.iter().map(ToString::to_string).collect();
        format!(" (platforms {})", p.join(", "))
    }
}

/// The `--plan` of a pull: every image with its digest and platforms, what is cached and
/// what is still to download, and whether the cache's filesystem has the room.
fn print_plan(plan: &Plan, cache: &Cache, events: &progress::Events) {
    let fits = plan.bytes_to_fetch <= plan.cache_free;
    if events.enabled() {
        events.emit(
            "plan",
            &json!({
                "cache": cache.root(),
                "images": plan.images.iter().map(image_json).collect::<Vec<_>>(),
                "failed": plan.failed.iter().map(failure_json).collect::<Vec<_>>(),
                "catalogs": plan.catalogs,
                "blobs_total": plan.blobs_total,
                "bytes_total": plan.bytes_total,
                "blobs_cached": plan.blobs_cached,
                "bytes_cached": plan.bytes_cached,
                "bytes_partial": plan.bytes_partial,
                "bytes_to_fetch": plan.bytes_to_fetch,
                "cache_free": plan.cache_free,
                "fits": fits,
            }),
        );
        return;
    }
    println!("images: {}", plan.images.len());
    for i in &plan.images {
        let what = match &i.platforms_kept {
            Some(kept) => format!(
                ", {} of {} platforms: {}",
                kept.len(),
                i.platforms_available.len(),
                kept.join(", ")
            ),
            None if !i.platforms_available.is_empty() => {
                format!(", all {} platforms", i.platforms_available.len())
            }
            None => String::new(),
        };
        let bytes: u64 = i.blobs.iter().map(|(_, s)| s).sum();
        println!(
            "  {} -> {} ({}{what}), {} in {} blob(s), from {}",
            i.source,
            i.digest,
            i.ref_name,
            human(bytes),
            i.blobs.len(),
            i.endpoint
        );
    }
    for f in &plan.failed {
        println!("  FAILED {}", failure_line(f));
    }
    if !plan.catalogs.is_empty() {
        println!("catalogs: {}", plan.catalogs.len());
        for c in &plan.catalogs {
            for line in catalog_lines(c) {
                println!("  {line}");
            }
        }
    }
    println!(
        "blobs: {} ({}): {} cached ({}), {} of interrupted downloads to resume, {} to download",
        plan.blobs_total,
        human(plan.bytes_total),
        plan.blobs_cached,
        human(plan.bytes_cached),
        human(plan.bytes_partial),
        human(plan.bytes_to_fetch)
    );
    println!(
        "cache {}: {} free, {}",
        cache.root().display(),
        human(plan.cache_free),
        if fits {
            "enough".to_string()
        } else {
            format!(
                "NOT enough: {} missing",
                human(plan.bytes_to_fetch - plan.cache_free)
            )
        }
    );
}

/// The failures of a pull as one error (exit 1), each named.
fn not_pulled(failed: &[&Failure], cache: &Path, packing: bool) -> PackError {
    let lines: Vec<String> = failed
        .iter()
        .map(|f| format!("  {}", failure_line(f)))
        .collect();
    PackError::NotPulled(format!(
        "{} image(s) could not be pulled into {}{}:\n{}\nrun the same command again to retry them (what is in the cache is kept and never fetched again)",
        failed.len(),
        cache.display(),
        if packing { "; nothing was packed" } else { "" },
        lines.join("\n")
    ))
}

/// Every image that could not be resolved (the plan's) or pulled (the fetch's).
fn all_failed<'a>(plan: &'a Plan, report: Option<&'a Report>) -> Vec<&'a Failure> {
    plan.failed
        .iter()
        .chain(report.into_iter().flat_map(|r| &r.failed))
        .collect()
}

/// `ferry-pack pull`.
pub fn run_pull(cmd: &PullCommand) -> Result<(), PackError> {
    let Ran { plan, report, .. } = run(
        &cmd.config,
        &cmd.cache,
        &cmd.pull,
        cmd.plan,
        cmd.quiet,
        cmd.json,
    )?;
    let failed = all_failed(&plan, report.as_ref());
    if !failed.is_empty() {
        return Err(not_pulled(&failed, &cmd.cache, false));
    }
    if let Some(short) = cache_short(&plan, &cmd.cache).filter(|_| cmd.plan) {
        return Err(PackError::DoesNotFit(short));
    }
    Ok(())
}

/// The pull of `ferry-pack --config … --cache …`: every image of the set in the cache, or
/// an error naming those that are not. With `plan_only`, `None` when the cache lacks
/// blobs (the pack plan then cannot be made; the pull plan was printed).
#[allow(clippy::too_many_arguments)]
pub fn pull_for_pack(
    config: &Path,
    cache: &Path,
    o: &PullOptions,
    plan_only: bool,
    quiet: bool,
    json_out: bool,
    outs: &[PathBuf],
    volume_size: u64,
) -> Result<Option<Pulled>, PackError> {
    let Ran {
        plan,
        report,
        cache: held,
        options,
    } = run(config, cache, o, plan_only, quiet, json_out)?;
    let failed = all_failed(&plan, report.as_ref());
    if !failed.is_empty() {
        return Err(not_pulled(&failed, cache, !plan_only));
    }
    if plan_only && plan.bytes_to_fetch + plan.bytes_partial > 0 {
        if !json_out {
            print_bundle_estimate(&plan, outs, volume_size);
        }
        if let Some(short) = cache_short(&plan, cache) {
            return Err(PackError::DoesNotFit(short));
        }
        return Ok(None);
    }
    if plan_only {
        // Every blob is cached: recording the images is all a fetch does, and it lets the
        // pack plan read them.
        let report = pull::fetch(&held, &plan, &options, &|_| {})?;
        if let Some(f) = report.failed.first() {
            return Err(not_pulled(&[f], held.root(), false));
        }
    }
    // The pack reads the cache after this returns: the lock stays held until the process
    // ends, so that no `cache prune` (or other run) removes a blob the pack is reading.
    let _ = PACKING_FROM.set(held);
    Ok(Some(Pulled {
        ref_names: plan.images.iter().map(|i| i.ref_name.clone()).collect(),
    }))
}

/// The most the bundle can take: every blob as it is (zstd only makes configs, manifests
/// and uncompressed layers smaller) plus one 4 KiB tar header per chunk and the manifests
/// at the end of each volume, a few per mille of the whole.
fn bundle_bound(plan: &Plan) -> u64 {
    let manifests: u64 = plan
        .images
        .iter()
        .flat_map(|i| i.manifests.iter().map(|(_, s)| s))
        .sum();
    let raw = plan.bytes_total + manifests;
    raw + raw / 200 + 1024 * 1024
}

/// What a `--config … --plan` can say of the bundle before the blobs are in the cache:
/// an upper bound of its size and volumes, and whether the outputs can take that much.
fn print_bundle_estimate(plan: &Plan, outs: &[PathBuf], volume_size: u64) {
    let bound = bundle_bound(plan);
    let volumes = bound.div_ceil(volume_size.max(1));
    println!(
        "bundle: at most {} in at most {volumes} volume(s) of {} (the exact size and volumes once every blob is in the cache: zstd shrinks configs and uncompressed layers)",
        human(bound),
        human(volume_size)
    );
    let free: u64 = outs
        .iter()
        .map(|o| format_spec::room::free_space(o).unwrap_or(0))
        .sum();
    println!(
        "outputs: {} free on {} output(s), {}",
        human(free),
        outs.len(),
        if free >= bound {
            "enough".to_string()
        } else {
            format!("perhaps not enough: up to {} missing", human(bound - free))
        }
    );
}

/// A plan whose cache cannot take the download, as the message naming how much is missing
/// (a `--plan` that would not fit fails for scripts, as the real run would).
fn cache_short(plan: &Plan, cache: &Path) -> Option<String> {
    (plan.bytes_to_fetch > plan.cache_free).then(|| {
        format!(
            "the pull needs {} more than {} has free",
            human(plan.bytes_to_fetch - plan.cache_free),
            cache.display()
        )
    })
}

/// A blob of the cache whose bytes are not its digest (the disk damaged it after the pull
/// checked it): the pull only ever renames whole, checked blobs in, so the file is wrong
/// beyond doubt. It is removed (this run holds the cache's lock), so that the same command
/// fetches it again; other errors pass through.
pub fn damaged_cache_blob(e: format_spec::FormatError, cache: &Path) -> PackError {
    let format_spec::FormatError::InputDigestMismatch {
        path,
        digest,
        actual,
    } = &e
    else {
        return e.into();
    };
    let in_cache = path
        .parent()
        .is_some_and(|p| p == cache.join("blobs").join("sha256"));
    if !in_cache {
        return e.into();
    }
    let removed = match std::fs::remove_file(path) {
        Ok(()) => "removed it".to_string(),
        Err(err) => format!("could not remove it ({err}): delete it by hand"),
    };
    PackError::Input(format!(
        "the cache's blob {digest} at {} is damaged (its bytes hash to {actual}; the disk changed it after the pull checked it): {removed}; run the same command again to fetch it anew (nothing was packed)",
        path.display()
    ))
}

/// `ferry-pack cache prune`.
pub fn run_prune(config: &Path, cache_dir: &Path) -> Result<(), PackError> {
    let say = |text: String| eprintln!("ferry-pack: {text}");
    let (_, set) = load_set(config, &say)?;
    if !cache_dir.join("oci-layout").is_file() {
        return Err(PackError::Usage(format!(
            "{} is not a ferry pull cache (no oci-layout): nothing to prune",
            cache_dir.display()
        )));
    }
    let cache = Cache::open(cache_dir).map_err(pull::PullError::from)?;
    let options = pull::Options::offline(cli_support::interrupt_flag());
    let r = pull::prune(&cache, &set, &options)?;
    for name in &r.images_removed {
        say(format!("removed {name} (not in {})", config.display()));
    }
    say(format!(
        "pruned {}: {} image(s), {} blob(s) and {} interrupted download(s) removed, {} freed",
        cache_dir.display(),
        r.images_removed.len(),
        r.blobs_removed,
        r.partials_removed,
        human(r.bytes_freed)
    ));
    Ok(())
}

/// A directory removed when dropped: `catalog list`'s cache when no `--cache` is given.
struct TempCache(PathBuf);

impl TempCache {
    fn create() -> Result<TempCache, PackError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ferry-catalog-list-{}-{nanos:09}",
            std::process::id()
        ));
        // Exclusive: a directory already there (someone else's) is not taken over.
        std::fs::create_dir(&dir).map_err(|e| {
            PackError::Input(format!(
                "cannot create a temporary cache at {}: {e}; give one with --cache DIR",
                dir.display()
            ))
        })?;
        Ok(TempCache(dir))
    }
}

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ferry-pack catalog list`.
pub fn run_catalog_list(cmd: &CatalogListCommand) -> Result<(), PackError> {
    if cmd.pull.allow_missing {
        return Err(PackError::Usage(
            "--allow-missing applies to pulling an image set (pull --config, or --config … --out), not to catalog list: leave it out".into(),
        ));
    }
    let written = cmd
        .reference
        .strip_prefix("docker://")
        .unwrap_or(&cmd.reference);
    let reference = oci::Reference::parse(written).map_err(|e| {
        PackError::Usage(format!(
            "{written:?} is not an image reference ({e}): give HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:DIGEST"
        ))
    })?;
    if reference.tag().is_none() && reference.digest().is_none() {
        return Err(PackError::Usage(format!(
            "{written} has neither a tag nor a digest: add one (:latest is not assumed)"
        )));
    }
    let options = options(&cmd.pull)?;
    let say = |text: String| {
        if !cmd.quiet && !cmd.json {
            eprintln!("ferry-pack: {text}");
        }
    };
    let temporary = match &cmd.cache {
        Some(_) => None,
        None => Some(TempCache::create()?),
    };
    let dir = match (&cmd.cache, &temporary) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.0.clone(),
        (None, None) => unreachable!("a temporary cache is made without --cache"),
    };
    let cache = Cache::open(&dir).map_err(pull::PullError::from)?;
    let show = Show {
        json: progress::Events::new(false),
        bar: Mutex::new(None),
        quiet: cmd.quiet || cmd.json,
        catalog_notes: false,
        resolved: AtomicUsize::new(0),
        pulled: AtomicUsize::new(0),
        total_images: AtomicUsize::new(1),
        say: &say,
    };
    // A failure is the error this command ends with: not said twice.
    let events = |e: Event<'_>| {
        if !matches!(e, Event::Failed(_)) {
            show.event(e)
        }
    };
    say(format!("reading the catalog of {reference}"));
    let listed = pull::list_catalog(&cache, &reference, &options, &events)?;
    let listing = catalog::list(&listed.loaded.catalog, cmd.package.as_deref())
        .map_err(|e| PackError::Input(format!("{reference}: {e}")))?;
    let kind = listed.loaded.kind;
    if cmd.json {
        let events = progress::Events::new(true);
        let mut value = serde_json::to_value(&listing).expect("a listing serializes");
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("reference".into(), json!(listed.image.source));
            map.insert("digest".into(), json!(listed.image.digest.to_string()));
            map.insert("kind".into(), json!(kind));
        }
        events.emit("catalog_list", &value);
        return Ok(());
    }
    print_listing(&listing, &listed.image, kind);
    Ok(())
}

/// `catalog list` as text: each package with its default channel, each channel with its
/// head and versions; with `--package`, its bundles.
fn print_listing(listing: &catalog::Listing, image: &ResolvedImage, kind: catalog::image::Kind) {
    let kind = match kind {
        catalog::image::Kind::Fbc => "file-based catalog",
        catalog::image::Kind::Sqlite => "SQLite catalog",
    };
    println!("{} ({kind}, {})", image.source, image.digest);
    print!("{listing}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::filter::{BundleId, Dependency, Requirement, Resolution, Warning};
    use catalog::model::PackageRequired;
    use oci::Digest;

    fn plan() -> CatalogPlan {
        CatalogPlan {
            catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.16".into(),
            index: 0,
            kind: catalog::image::Kind::Fbc,
            source_digest: Digest::of(b"original"),
            ref_name: "mirror/ops:v4.16".into(),
            digest: Digest::of(b"rebuilt"),
            unchanged: false,
            packages: vec!["cluster-logging".into(), "elasticsearch-operator".into()],
            bundles: 3,
            warnings: vec![Warning::OutOfRange {
                package: "cluster-logging".into(),
                channel: "stable".into(),
                bundle: "cl.5.7".into(),
                version: Some("5.7.0".into()),
                range: ">=5.8.0".into(),
            }],
            dependencies: vec![Dependency {
                needed_by: BundleId {
                    package: "cluster-logging".into(),
                    bundle: "cl.5.8".into(),
                },
                requirement: Requirement::Package(PackageRequired {
                    package_name: "loki-operator".into(),
                    version_range: ">=5.8.0".into(),
                }),
                resolution: Resolution::Unmet {
                    reason: "not in the selection (includeDependencies adds it)".into(),
                },
            }],
            images: vec!["a".into(), "b".into()],
            blocked: vec![("quay.io/x/y:1".into(), "x/y".into())],
            dropped: vec![pull::DroppedBundle {
                package: "elasticsearch-operator".into(),
                bundle: "eo.5.8".into(),
                missing: vec![("quay.io/x/gone@sha256:00".into(), "404".into())],
            }],
            dropped_packages: Vec::new(),
            dropped_layers: Vec::new(),
        }
    }

    /// The report of a catalog says what was kept, rebuilt as what, and each warning,
    /// unmet dependency, blocked image and dropped bundle on a line of its own.
    #[test]
    fn a_catalogs_report_names_everything_it_left_out() {
        let c = plan();
        let lines = catalog_lines(&c);
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert_eq!(
            lines[0],
            format!(
                "catalog {} (file-based): 2 package(s) kept (cluster-logging, elasticsearch-operator), 3 bundle(s), 2 image(s) needed; rebuilt as mirror/ops:v4.16 ({})",
                c.catalog, c.digest
            )
        );
        assert!(
            lines[1].contains("warning: package \"cluster-logging\""),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("unmet dependency: bundle cl.5.8 (package cluster-logging) requires package \"loki-operator\" >=5.8.0"),
            "{}",
            lines[2]
        );
        assert!(lines[3].contains("quay.io/x/y:1 is blocked by blockedImages \"x/y\""));
        assert!(
            lines[4].contains("--allow-missing: dropped bundle eo.5.8 of package elasticsearch-operator: cannot pull quay.io/x/gone@sha256:00 (404)"),
            "{}",
            lines[4]
        );
        let unchanged = CatalogPlan {
            unchanged: true,
            ref_name: "redhat/redhat-operator-index:v4.16".into(),
            ..plan()
        };
        assert!(catalog_lines(&unchanged)[0]
            .ends_with("carried unchanged as redhat/redhat-operator-index:v4.16"));
    }
}
