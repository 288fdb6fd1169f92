//! ferry-unpack: thin glue over the format reader and the `mirror` writers.
#![forbid(unsafe_code)]

mod cli;
mod extract;
mod push;
mod report;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferry_format::bundle::Bundle;
use ferry_format::key::PublicKey;
use ferry_format::read::Volume;
use ferry_format::verify::{collect_inputs, verify, VolumeStatus};

use cli::{Cli, Command};

/// Exit codes (README "Exit status"): 0 ok, 1 verification failed, 2 usage or I/O error.
const FAILED: u8 = 1;
const USAGE_OR_IO: u8 = 2;

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
        Command::Push(args) => push::run_push(&args),
        Command::Receipt(args) => push::run_receipt(&args),
        Command::Status { state, json } => {
            status::status(&state.unwrap_or_else(push::default_state), json)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            eprintln!("ferry-unpack: error: {message}");
            ExitCode::from(code)
        }
    }
}

type Outcome = Result<u8, (u8, String)>;

pub(crate) fn load_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, (u8, String)> {
    paths
        .iter()
        .map(|p| PublicKey::load(p).map_err(|e| (USAGE_OR_IO, e.to_string())))
        .collect()
}

fn run_verify(
    volumes: &[PathBuf],
    trust: &[PathBuf],
    json: bool,
    state: Option<&std::path::Path>,
) -> Outcome {
    let keys = load_keys(trust)?;
    let _one_run_at_a_time = state
        .map(ferry_format::stage::StateLock::acquire)
        .transpose()
        .map_err(|e| (USAGE_OR_IO, e.to_string()))?;
    let inputs = collect_inputs(volumes).map_err(|e| (USAGE_OR_IO, e.to_string()))?;
    if inputs.volumes.is_empty() {
        return Err((
            USAGE_OR_IO,
            "no volume files (*.tar) among the paths given".into(),
        ));
    }
    let total: u64 = inputs
        .volumes
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .fold(0, u64::saturating_add);
    let bar = progress::Progress::new(progress::Mode::detect(false, json), "verify", total);
    let report = verify(&inputs, &keys, &|n| bar.add(n));
    bar.finish();
    if let Some(state) = state {
        record_verified(state, &report, &keys);
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
        0
    } else if io_only {
        USAGE_OR_IO
    } else {
        FAILED
    })
}

/// Keeps the signed tables of the volumes that verified, for `status` and later pushes.
fn record_verified(
    state: &std::path::Path,
    report: &ferry_format::verify::Report,
    keys: &[PublicKey],
) {
    for v in report
        .volumes
        .iter()
        .filter(|v| v.status == VolumeStatus::Ok)
    {
        let Ok(vol) = Volume::open(&v.path, keys) else {
            continue;
        };
        let stage = ferry_format::stage::Stage::new(state, &vol.manifest.bundle_id);
        let saved = stage
            .save_manifest(&vol.manifest_bytes)
            .and_then(|()| stage.save_table(&vol));
        if let Err(e) = saved {
            eprintln!(
                "ferry-unpack: warning: could not record {} in {}: {e}",
                v.path.display(),
                state.display()
            );
        }
    }
}

fn run_extract(
    volumes: &[PathBuf],
    trust: &[PathBuf],
    to: &std::path::Path,
    layout: cli::Layout,
) -> Outcome {
    let keys = load_keys(trust)?;
    let inputs = collect_inputs(volumes).map_err(|e| (USAGE_OR_IO, e.to_string()))?;
    let mut opened = Vec::new();
    for p in &inputs.volumes {
        opened.push(Volume::open(p, &keys).map_err(|e| (FAILED, e.to_string()))?);
    }
    if opened.is_empty() {
        return Err((
            USAGE_OR_IO,
            "no volume files (*.tar) among the paths given".into(),
        ));
    }
    let bundle = Bundle::new(opened).map_err(|e| (FAILED, e.to_string()))?;
    extract::extract(&bundle, to, layout).map_err(|e| (FAILED, e))?;
    eprintln!(
        "ferry-unpack: extracted {} images ({} blobs) to {}",
        bundle.manifest.images.len(),
        bundle.manifest.blobs.len(),
        to.display()
    );
    Ok(0)
}
