//! `push` and `receipt`: glue between the volumes, the registry client and the replay engine.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use format_spec::bundle::Bundle;
use format_spec::key::PublicKey;
use format_spec::size::human;
use format_spec::state::StateDir;
use format_spec::volume_set::{self, OpenBundle, SetError, StateUse, Unopened};
use registry_client::{Client, Config, Credentials, RegistryError};
use replay::mapping::Target;
use replay::push::{self, Event, ImageStatus, Options};

use crate::cli::{PushArgs, RegistryArgs};
use crate::error::{Error, Exit};
use crate::{load_keys, Outcome};

/// Opens the volumes given as one bundle; those that fail are named and left out (a push
/// uses what it can).
fn open_bundle(
    args: &RegistryArgs,
    keys: &[PublicKey],
    state: Option<StateUse<'_>>,
) -> Result<OpenBundle, Error> {
    let opened = volume_set::open_bundle(&args.volumes, keys, Unopened::LeaveOut, state);
    if let Err(SetError::State { left_out, .. }) = &opened {
        // Said before the state directory was tried, as they were found.
        for l in left_out {
            eprintln!("ferry-unpack: {l}");
        }
    }
    let opened = opened?;
    for l in &opened.left_out {
        eprintln!("ferry-unpack: {l}");
    }
    Ok(opened)
}

/// The registry client, after one `GET /v2/` showed a registry there:
/// what is wrong with the address is said here, once, with exit 2.
fn client(
    args: &RegistryArgs,
    target: &Target,
    jobs: usize,
    cancel: &'static AtomicBool,
) -> Result<Client, Error> {
    let credentials: Option<Credentials> =
        Credentials::from_auth_files(&target.registry, args.authfile.as_deref())
            .map_err(|e| Error::Credentials(Box::new(e)))?;
    if let (None, Some(file)) = (&credentials, &args.authfile) {
        eprintln!(
            "ferry-unpack: warning: {} has no entry for {} (its `auths` keys are registry hosts, as `podman login` writes them): pushing without credentials",
            file.display(),
            target.registry
        );
    }
    let mut config = Config::new(target.registry_address());
    config.insecure = args.insecure;
    config.ca_cert = args.ca_cert.clone();
    let anonymous = credentials.is_none();
    config.credentials = credentials;
    config.user_agent = format!("ferry-unpack/{}", env!("CARGO_PKG_VERSION"));
    config.max_idle_connections = config.max_idle_connections.max(jobs * 2);
    config.retry.max_elapsed = args.retry_for.0;
    config.cancel = Some(cancel);
    let client = Client::connect(config).map_err(|e| match e {
        RegistryError::Cancelled => Error::InterruptedBeforeSending,
        // A registry that is there but keeps failing (5xx, 429 past --retry-for) or does
        // not answer in time: like an outage in the middle of a push, exit 1 and resume.
        e if matches!(
            e,
            RegistryError::RetriesExhausted { .. } | RegistryError::Timeout { .. }
        ) || e.is_transient() =>
        {
            Error::RegistryNotAnswering {
                source: Box::new(e),
            }
        }
        e => Error::Connect {
            advice: connect_advice(&e, args, target, anonymous),
            source: Box::new(e),
        },
    })?;
    if args.insecure {
        // Say which of the two things --insecure allows is in use.
        let base = client.base_url();
        if base.starts_with("http://") {
            eprintln!(
                "ferry-unpack: --insecure: pushing to {base} over plain HTTP: nothing is encrypted, credentials included"
            );
        } else {
            eprintln!(
                "ferry-unpack: --insecure: {base} speaks TLS; its certificate is not verified"
            );
        }
    }
    Ok(client)
}

/// What to do about the error of the first contact, when there is something to say.
fn connect_advice(
    e: &RegistryError,
    args: &RegistryArgs,
    target: &Target,
    anonymous: bool,
) -> Option<String> {
    use replay::mapping::Scheme;
    let to = target.to_string();
    let advice = match e {
        RegistryError::NameNotResolved { .. } => format!(
            "check the host name in --to {to} (spelling; /etc/hosts or the DNS server this machine uses)"
        ),
        RegistryError::ConnectionRefused { .. } => format!(
            "check the port in --to {to}, and that the registry is running and listens there"
        ),
        RegistryError::PlainHttpRegistry { .. } if target.scheme == Some(Scheme::Https) => {
            "drop https:// from --to, and give --insecure to push over plain HTTP".to_owned()
        }
        RegistryError::PlainHttpRegistry { .. } => format!(
            "to push over plain HTTP (nothing encrypted, credentials included), give --insecure: ferry-unpack push … --to {to} --insecure"
        ),
        RegistryError::TlsRegistry { .. } => {
            let tls = if args.insecure {
                "with --insecure, TLS is then used without verifying the certificate"
            } else {
                "give --ca-cert FILE if its certificate is signed by your own CA"
            };
            format!("drop http:// from --to ({tls})")
        }
        RegistryError::NotARegistry { .. } => format!(
            "check the host and port in --to {to}: they must be the registry's own (for OpenShift's, the route of image-registry)"
        ),
        RegistryError::Unauthorized { .. } if anonymous => {
            let searched: Vec<String> = match &args.authfile {
                Some(f) => vec![f.display().to_string()],
                None => Credentials::auth_file_search_path()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            };
            format!(
                "give credentials for {}: --authfile FILE (a containers auth.json, docker config.json or OpenShift pull secret with an `auths` entry for it; `podman login --authfile FILE {}` writes one). Searched: {}",
                target.registry,
                target.registry,
                searched.join(", ")
            )
        }
        RegistryError::Tls { .. } if !args.insecure => {
            "give the registry's CA certificate with --ca-cert FILE (or --insecure to skip verification, only on a network you trust)".to_owned()
        }
        _ => return None,
    };
    Some(advice)
}

/// The command line of this run, quoted for a POSIX shell: what to run to resume.
fn same_command() -> String {
    std::env::args_os()
        .map(|a| {
            let a = a.to_string_lossy().into_owned();
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run_push(args: &PushArgs) -> Outcome {
    let started = Instant::now();
    let r = &args.registry;
    let target = Target::parse(&r.to)?;
    let keys = load_keys(&r.trust)?;
    let state = StateDir::new(args.state.clone().unwrap_or_else(crate::cli::default_state));
    // A dry run only reads the state (and must not create it).
    let state_use = if args.dry_run {
        StateUse::Read(&state)
    } else {
        StateUse::Write(&state)
    };
    let OpenBundle {
        mut bundle,
        left_out,
        state_problems,
        lock: _one_run_at_a_time,
    } = open_bundle(r, &keys, Some(state_use))?;
    for p in &state_problems {
        eprintln!("ferry-unpack: state: {p}");
    }
    let id12 = &bundle.manifest.bundle_id.hex()[..12];
    let manifests_dir = args
        .manifests_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("ferry-manifests-{id12}")));
    if !args.dry_run {
        // Before anything is sent: a --manifests-dir that cannot take the outputs must not
        // fail only after the whole push.
        replay::outputs::prepare(&manifests_dir).map_err(|source| Error::ManifestsDir {
            dir: manifests_dir.clone(),
            source,
        })?;
    }
    let cancel = cli_support::interrupt_flag();
    let client = client(r, &target, args.jobs, cancel)?;
    let opts = Options {
        target: target.clone(),
        max_components: r.max_components,
        jobs: args.jobs.max(1),
        dry_run: args.dry_run,
        recheck: args.recheck,
        // What this state directory's last push of the bundle left complete: a repeat
        // asks for its images by one tag list a repository (`push::Run::probe`).
        last_push: bundle
            .stage
            .as_ref()
            .filter(|_| !args.recheck)
            .and_then(|s| s.last_push()),
    };
    let stream = progress::Events::new(args.json);
    let total: u64 = bundle
        .manifest
        .blobs
        .iter()
        .enumerate()
        .filter(|(i, b)| {
            b.media_type.is_none() && bundle.blob_missing_volumes(*i as u32).is_empty()
        })
        .map(|(_, b)| b.size)
        .fold(0, u64::saturating_add);
    let mode = progress::Mode::detect(args.dry_run, args.json);
    let bar = progress::Progress::new(mode, "push", total);
    let verbose = mode == progress::Mode::Plain;
    let events = |e: Event<'_>| match e {
        Event::BlobUploaded {
            digest,
            repo,
            bytes,
        } => {
            bar.add(bytes);
            bar.message(repo);
            stream.emit(
                "blob_uploaded",
                &serde_json::json!({"digest": digest, "repository": repo, "bytes": bytes}),
            );
            if verbose {
                eprintln!(
                    "ferry-unpack: uploaded {digest} ({}) to {repo}",
                    human(bytes)
                );
            }
        }
        Event::BlobMounted { digest, repo, from } => {
            stream.emit(
                "blob_mounted",
                &serde_json::json!({"digest": digest, "repository": repo, "from": from}),
            );
            if verbose {
                eprintln!("ferry-unpack: mounted {digest} into {repo} from {from}");
            }
        }
        Event::ImageDone { outcome } => stream.emit("image", outcome),
    };
    if !args.dry_run {
        // What `status` shows later: the manifest and every volume seen.
        if let Some(stage) = &bundle.stage {
            let _ = stage.save_manifest(&bundle.manifest_bytes);
            for v in bundle.volumes.values() {
                let _ = stage.save_table(v);
            }
        }
    }
    // Saved above what the state needs of them: the push needs no tree nor stored bytes.
    bundle.drop_tree_and_stored_bytes();
    let report = push::push(&bundle, &client, &opts, &events, cancel)
        .map_err(|e| Error::Push(Box::new(e)))?;
    bar.finish();
    let mut outputs = Vec::new();
    let mut applied = None;
    let mut notes = Vec::new();
    if report.interrupted {
        // Nothing is written for the cluster: the run did not finish.
    } else if !args.dry_run {
        let written = write_cluster_outputs(args, &manifests_dir, &bundle, &report, &target)?;
        outputs = written.files;
        notes = written.notes;
        applied = Some(written.root).filter(|_| !outputs.is_empty());
    }
    if let (false, Some(stage)) = (args.dry_run, &bundle.stage) {
        let record = |w: &mut dyn std::io::Write| {
            serde_json::to_writer_pretty(w, &report).map_err(std::io::Error::from)
        };
        if let Err(e) = stage.save_last_push_with(record) {
            eprintln!(
                "ferry-unpack: warning: could not record the push in the state directory: {e}"
            );
        }
    }
    if args.json {
        stream.emit(
            "summary",
            &serde_json::json!({
                "bundle_id": report.bundle_id, "target": report.target, "totals": report.totals,
                "outputs": outputs, "manifests_notes": notes,
                "manifests_partial": !args.dry_run && report.failed() > 0 && !outputs.is_empty(),
                "left_out": left_out.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "dry_run": args.dry_run,
                "failed": report.failed(), "waiting": report.waiting(),
                "interrupted": report.interrupted, "stopped_by": report.stopped_by,
            }),
        );
    } else {
        print_report(
            &report,
            &outputs,
            applied.as_deref(),
            args.dry_run,
            started.elapsed().as_secs_f64(),
        );
    }
    if report.interrupted {
        let done = report
            .images
            .iter()
            .filter(|i| i.status.in_registry())
            .count();
        eprintln!(
            "ferry-unpack: interrupted: {done} of {} image(s) are in the registry, {} blob(s) were uploaded; the uploads in flight were cancelled. To resume, run the same command again:\n  {}",
            report.images.len(),
            report.totals.blobs_uploaded,
            same_command()
        );
        return Ok(Exit::Interrupted);
    }
    Ok(if report.failed() > 0 || !left_out.is_empty() {
        Exit::Failed
    } else if report.waiting() > 0 {
        Exit::Incomplete
    } else {
        Exit::Success
    })
}

/// The cluster manifests, mapping and receipt for the images that went in (into
/// `partial/` when some image failed), and on stderr why a kind has no file.
fn write_cluster_outputs(
    args: &PushArgs,
    dir: &Path,
    bundle: &Bundle,
    report: &push::Report,
    target: &Target,
) -> Result<replay::outputs::Written, Error> {
    let id12 = &bundle.manifest.bundle_id.hex()[..12];
    let name = format!("ferry-{id12}");
    let bundle_id = bundle.manifest.bundle_id.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let created = replay::outputs::rfc3339(now);
    let os = replay::openshift::Options {
        name: &name,
        catalog_secrets: &args.catalog_secret,
        publisher: &args.catalog_publisher,
        layout: &bundle.manifest.source_layout,
        provenance: replay::openshift::Provenance {
            bundle_id: &bundle_id,
            ferry_version: env!("CARGO_PKG_VERSION"),
            created: &created,
            partial: report.failed() > 0,
        },
    };
    let written = replay::outputs::write_outputs(dir, bundle, report, &target.to_string(), &os)
        .map_err(|source| Error::Outputs {
            dir: dir.to_owned(),
            source,
        })?;
    for n in &written.notes {
        eprintln!("ferry-unpack: cluster manifests: {n}");
    }
    if report.failed() > 0 {
        if written.files.is_empty() {
            eprintln!(
                "ferry-unpack: cluster manifests and receipt not written: no image went in ({} failed)",
                report.failed()
            );
        } else {
            eprintln!(
                "ferry-unpack: {} image(s) failed: the manifests and receipt in {} are PARTIAL (the {} image(s) that went in); {} keeps those of the last complete push",
                report.failed(),
                written.root.display(),
                written.images,
                dir.display()
            );
        }
    }
    Ok(written)
}

fn print_report(
    report: &push::Report,
    outputs: &[PathBuf],
    root: Option<&Path>,
    dry_run: bool,
    secs: f64,
) {
    // Images left by an interrupt or a registry that stopped answering are counted once
    // below, not listed one by one with the same reason.
    let left = |i: &push::ImageOutcome| matches!(i.error.as_deref(), Some(e) if e == push::NOT_TRIED || e == push::NOT_FINISHED);
    for i in report.images.iter().filter(|i| !left(i)) {
        let tags = if i.tags.is_empty() {
            String::new()
        } else {
            format!(" :{}", i.tags.join(","))
        };
        println!(
            "{:<8} {} -> {}{tags}",
            i.status.as_str().to_uppercase(),
            i.image,
            i.destination
        );
        if !i.waiting_on.is_empty() {
            println!(
                "         waits on volume(s) {}",
                format_spec::bundle::list(&i.waiting_on)
            );
        }
        if let Some(e) = &i.error {
            println!("         {e}");
        }
    }
    let t = &report.totals;
    if dry_run {
        println!(
            "dry run: would upload {} blob(s) ({}) and mount the rest; nothing was written",
            t.would_upload,
            human(t.would_upload_bytes)
        );
    } else {
        println!(
            "{} blob(s) uploaded ({}), {} mounted, {} already there; {} manifest(s) and {} tag(s) pushed; {} staged for later volumes; {secs:.1}s",
            t.blobs_uploaded,
            human(t.bytes_uploaded),
            t.blobs_mounted,
            t.blobs_present,
            t.manifests_pushed,
            t.tags_pushed,
            human(t.bytes_staged)
        );
    }
    if t.images_as_recorded > 0 {
        println!(
            "{} image(s) present as the last push from this state directory left them: the registry still lists each of their tags (--recheck asks for every image)",
            t.images_as_recorded
        );
    }
    for o in outputs {
        println!("wrote {}", o.display());
    }
    if let Some(root) = root {
        use replay::outputs::{APPLY_DIR, APPLY_DIR_BEFORE_4_13};
        let has = |sub: &str| outputs.iter().any(|o| o.parent() == Some(&root.join(sub)));
        if has(APPLY_DIR) {
            println!(
                "on the cluster (OpenShift 4.13 and later): oc apply -f {}/",
                root.join(APPLY_DIR).display()
            );
        }
        if has(APPLY_DIR_BEFORE_4_13) {
            println!(
                "on a cluster before 4.13 instead: oc apply -f {}/",
                root.join(APPLY_DIR_BEFORE_4_13).display()
            );
        }
    }
    let count = |what: &str| {
        report
            .images
            .iter()
            .filter(|i| i.error.as_deref() == Some(what))
            .count()
    };
    if let Some(why) = &report.stopped_by {
        println!(
            "the registry stopped answering ({why}); {} image(s) not tried",
            count(push::NOT_TRIED)
        );
    }
    if report.interrupted {
        println!(
            "{} image(s) not finished: interrupted",
            count(push::NOT_FINISHED)
        );
    }
    if report.failed() > 0 && !report.interrupted {
        // A registry that refuses sparse indexes refuses them again: say so rather than
        // send the operator round the same loop.
        let sparse = report
            .images
            .iter()
            .filter(|i| {
                i.error
                    .as_deref()
                    .is_some_and(|e| e.contains("refused the sparse multi-arch image"))
            })
            .count();
        let others = report.failed() - sparse;
        if others > 0 {
            println!("{others} image(s) failed: run the same command again to resume");
        }
        if sparse > 0 {
            println!(
                "{sparse} sparse multi-arch image(s) refused by this registry: running again will not help (see above for the cure)"
            );
        }
    }
}

pub fn run_receipt(args: &RegistryArgs) -> Outcome {
    let target = Target::parse(&args.to)?;
    let keys = load_keys(&args.trust)?;
    let mut bundle = open_bundle(args, &keys, None)?.bundle;
    bundle.drop_tree_and_stored_bytes();
    let cancel = cli_support::interrupt_flag();
    // As many requests at once as a push makes by default (`PushArgs::jobs`).
    const JOBS: usize = 16;
    let client = client(args, &target, JOBS, cancel)?;
    let opts = Options {
        target: target.clone(),
        max_components: args.max_components,
        jobs: JOBS,
        dry_run: true,
        recheck: false,
        // A receipt says what the registry holds now: it asks, whatever was recorded.
        last_push: None,
    };
    let repos = push::map_images(&bundle.manifest, &opts)?;
    let mut report = push::push(&bundle, &client, &opts, &|_| {}, cancel)
        .map_err(|e| Error::ReceiptPush(Box::new(e)))?;
    if report.interrupted {
        return Err(Error::ReceiptInterrupted);
    }
    // A dry run says "planned"; the receipt wants what is there: the manifest by digest,
    // asked JOBS at a time.
    let per = report.images.len().div_ceil(JOBS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = report
            .images
            .chunks_mut(per)
            .zip(repos.chunks(per))
            .map(|(outcomes, repos)| {
                let client = &client;
                scope.spawn(move || -> Result<(), Error> {
                    for (o, repo) in outcomes.iter_mut().zip(repos) {
                        let there = replay::registry::Registry::manifest_digest(
                            client,
                            repo,
                            &o.digest.to_string(),
                        )
                        .map_err(|e| Error::ReceiptRegistry(Box::new(e)))?;
                        o.status = if there.is_some() {
                            ImageStatus::Present
                        } else {
                            ImageStatus::Absent
                        };
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a receipt worker panicked"))
    })?;
    // Streamed from the bundle's records, not built (tens of MB at 6×10^4 images); an
    // error as println!'s, which the broken-pipe hook knows.
    replay::outputs::write_receipt_json(
        std::io::stdout().lock(),
        &bundle,
        &report,
        &target.to_string(),
    )
    .unwrap_or_else(|e| panic!("failed printing to stdout: {e}"));
    Ok(Exit::Success)
}
