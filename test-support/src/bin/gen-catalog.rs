//! `gen-catalog`: writes an operator catalog fixture as an OCI image layout, for the
//! benchmark (bench/catalog.sh) and by hand.
//!
//! ```text
//! gen-catalog scale DIR [--packages N] [--bundles M] [--object-bytes B] [--seed S]
//!                       [--ref NAME] [--real-packages K]
//! gen-catalog fixture DIR
//! ```
//! `scale` prints one JSON line: packages, bundles, json_bytes, configs_layer_size, digest,
//! ref_name, and images (ref_name, path, digest, reference of each image built beside the
//! catalog: the heads of the first K packages and the shared proxy).
//! `fixture` writes the end-to-end tests' catalogs and images (fixtures/README.md
//! "Operator catalogs") and prints each image's ref.name and reference.

use std::path::PathBuf;
use std::process::ExitCode;

use test_support::catalog_fixture::{generate, scale};

fn usage() -> ExitCode {
    eprintln!(
        "usage: gen-catalog scale DIR [--packages N] [--bundles M] [--object-bytes B] [--seed S] [--ref NAME] [--real-packages K]\n       gen-catalog fixture DIR"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(dir)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let dir = PathBuf::from(dir);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        eprintln!(
            "gen-catalog: {} exists and is not empty; give a new directory",
            dir.display()
        );
        return ExitCode::from(2);
    }
    match mode.as_str() {
        "scale" => {
            let mut opts = scale::ScaleOptions::default();
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let Some(value) = rest.next() else {
                    eprintln!("gen-catalog: {flag} needs a value");
                    return usage();
                };
                let number = || value.parse::<usize>();
                let ok = match flag.as_str() {
                    "--packages" => number().map(|n| opts.packages = n).is_ok(),
                    "--bundles" => number().map(|n| opts.bundles_per_package = n).is_ok(),
                    "--object-bytes" => number().map(|n| opts.object_bytes = n).is_ok(),
                    "--seed" => value.parse().map(|n| opts.seed = n).is_ok(),
                    "--real-packages" => number().map(|n| opts.real_packages = n).is_ok(),
                    "--ref" => {
                        opts.ref_name = value.clone();
                        true
                    }
                    _ => {
                        eprintln!("gen-catalog: unknown option {flag}");
                        return usage();
                    }
                };
                if !ok {
                    eprintln!("gen-catalog: {flag} {value}: not a number");
                    return usage();
                }
            }
            match scale::generate(&dir, &opts) {
                Ok(r) => {
                    let images: Vec<serde_json::Value> = r
                        .images
                        .iter()
                        .map(|i| {
                            serde_json::json!({"ref_name": i.ref_name, "path": i.path, "digest": i.digest, "reference": i.reference})
                        })
                        .collect();
                    let line = serde_json::json!({
                        "packages": r.packages,
                        "bundles": r.bundles,
                        "json_bytes": r.json_bytes,
                        "configs_layer_size": r.configs_layer_size,
                        "digest": r.digest,
                        "ref_name": r.ref_name,
                        "images": images,
                    });
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gen-catalog: writing {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            }
        }
        "fixture" if args.len() == 2 => match generate(&dir) {
            Ok(f) => {
                for i in f.images.iter().chain([&f.fbc, &f.sqlite]) {
                    println!("{}\t{}", i.ref_name, i.reference);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen-catalog: writing {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        _ => usage(),
    }
}
