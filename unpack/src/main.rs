//! ferry-unpack: thin glue over the format reader and the `mirror` writers.
#![forbid(unsafe_code)]

mod catalog_list;
mod cli;
mod error;
mod extract;
mod push;
mod report;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use format_spec::key::PublicKey;
use format_spec::state::StateDir;
use format_spec::verify::{record_verified, verify_set, VolumeStatus};
use format_spec::volume_set::{open_bundle, Trust, Unopened, VolumeSet};

use cli::{CatalogCommand, Cli, Command};
use error::{Error, Exit};

/// mimalloc rather than glibc's allocator, as ferry-pack: opening a bundle frees the
/// table's and index's bytes (45 MB at 6×10^4 images) before the manifest's parse, the
/// peak, and glibc kept those pages, fragmented by what lived on among them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli_support::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    progress::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Verify {
            volumes,
            trust,
            json,
            state,
        } => run_verify(&volumes, &trust, json, state.as_deref()),
        Command::Extract {
            volumes,
            trust,
            to,
            layout,
        } => run_extract(&volumes, &trust, &to, layout),
        Command::Inspect {
            volumes,
            trust,
            json,
        } => report::inspect(&volumes, &trust, json),
        Command::Catalog(CatalogCommand::List(args)) => catalog_list::run(&args),
        Command::Push(args) => push::run_push(&args),
        Command::Receipt(args) => push::run_receipt(&args),
        Command::Status { state, json } => status::status(
            &StateDir::new(state.unwrap_or_else(cli::default_state)),
            json,
        ),
    };
    match result {
        Ok(exit) => ExitCode::from(exit.exit_code()),
        Err(e) => {
            eprintln!("ferry-unpack: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

type Outcome = Result<Exit, Error>;

pub(crate) fn load_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, Error> {
    paths
        .iter()
        .map(|p| PublicKey::load(p).map_err(Error::from))
        .collect()
}

fn run_verify(volumes: &[PathBuf], trust: &[PathBuf], json: bool, state: Option<&Path>) -> Outcome {
    let keys = load_keys(trust)?;
    let state = state.map(StateDir::new);
    let _one_run_at_a_time = state
        .as_ref()
        .map(StateDir::lock)
        .transpose()
        .map_err(Error::State)?;
    let set = VolumeSet::open(volumes, Trust::Keys(&keys))?;
    let total: u64 = set
        .given
        .iter()
        .filter_map(|g| std::fs::metadata(&g.path).ok())
        .map(|m| m.len())
        .fold(0, u64::saturating_add);
    let bar = progress::Progress::new(progress::Mode::detect(false, json), "verify", total);
    let report = verify_set(&set, &keys, &|n| bar.add(n));
    bar.finish();
    if let Some(state) = &state {
        // Keeps the signed tables of the volumes that verified, for `status` and later pushes.
        for e in record_verified(&set, &report, state) {
            eprintln!("ferry-unpack: warning: {e}");
        }
    }
    if json {
        // JSON Lines (docs/events.md): one `volume` event per volume, then the `summary`.
        let events = progress::Events::new(true);
        for v in &report.volumes {
            events.emit("volume", v);
        }
        events.emit(
            "summary",
            &serde_json::json!({
                "bundle": report.bundle, "missing_volumes": report.missing_volumes,
                "ok": report.ok, "problems": report.problems, "repair_command": report.repair_command,
                "trusted_keys": report.trusted_keys,
            }),
        );
    } else {
        report::print_verify(&report);
    }
    // Exit 2 only when nothing failed verification and something could not be read.
    let io_only = report
        .volumes
        .iter()
        .all(|v| matches!(v.status, VolumeStatus::Ok | VolumeStatus::Unreadable));
    Ok(if report.ok {
        Exit::Success
    } else if io_only {
        Exit::Unreadable
    } else {
        Exit::Failed
    })
}

fn run_extract(volumes: &[PathBuf], trust: &[PathBuf], to: &Path, layout: cli::Layout) -> Outcome {
    let keys = load_keys(trust)?;
    let bundle = open_bundle(volumes, &keys, Unopened::Refuse, None)?.bundle;
    extract::extract(&bundle, to, layout)?;
    eprintln!(
        "ferry-unpack: extracted {} images ({} blobs) to {}",
        bundle.manifest.images.len(),
        bundle.manifest.blobs.len(),
        to.display()
    );
    Ok(Exit::Success)
}
