//! Running a case: `verify`, `extract` and `push` under the memory cap, and every way the
//! binaries' answers fall short.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::registry::Registry;
use crate::{ferry_unpack_bin, run_command, OutputExt};

use super::case::{Case, CaughtBy};
use super::fixture::Fixture;
use super::storage::{repository_links, stored_blobs};
use super::MEMORY_CAP;

/// `prlimit --as=MEMORY_CAP -- ferry-unpack ARGS`, with a clean environment: no
/// SOURCE_DATE_EPOCH, no proxies, no credentials but none (HOME is `home`).
pub fn unpack_capped(args: &[OsString], home: &Path) -> Output {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={MEMORY_CAP}"))
        .arg("--")
        .arg(ferry_unpack_bin())
        .args(args)
        .env("HOME", home)
        .env("NO_PROXY", "*");
    for v in [
        "SOURCE_DATE_EPOCH",
        "REGISTRY_AUTH_FILE",
        "DOCKER_CONFIG",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    run_command(&mut c)
}

pub(super) fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_owned()
}

/// No panic, no death by signal (an allocation failing under the cap aborts).
pub(super) fn sane(out: &Output, what: &str) -> Result<(), String> {
    if out.stderr_text().contains("panicked") {
        return Err(format!("{what} panicked\n{}", out.dump()));
    }
    let text = out.text();
    if text.contains("out of memory") || text.contains("memory allocation") {
        return Err(format!(
            "{what} tried to allocate past the {} MiB cap (memory must be bounded before it is asked for, SPEC.md §2)\n{}",
            MEMORY_CAP >> 20,
            out.dump()
        ));
    }
    if out.status.code().is_none() {
        return Err(format!(
            "{what} was killed ({:?}): a crash or an allocation past the {} MiB cap\n{}",
            out.status,
            MEMORY_CAP >> 20,
            out.dump()
        ));
    }
    Ok(())
}

/// What a case did, for the summary line.
pub struct Outcome {
    pub verify_exit: i32,
    pub pushed_blobs: usize,
}

/// Runs one case in `dir` (made here). Returns what happened, or every way it failed.
pub fn run_case(fx: &Fixture, case: &Case, dir: &Path) -> Result<Outcome, String> {
    fs::create_dir_all(dir).unwrap();
    let vols = dir.join("volumes");
    fs::create_dir_all(&vols).unwrap();
    let mut paths = Vec::new();
    for (name, bytes) in &case.files {
        let p = vols.join(name);
        fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    let hostile: Vec<PathBuf> = case.hostile.iter().map(|h| vols.join(h)).collect();
    let trust = [os("--trust"), os(&fx.key.public)];
    let mut problems = Vec::new();

    // verify: exit 1, the path and the region or rule named, the right status.
    let mut args = vec![os("verify")];
    args.extend(paths.iter().map(os));
    args.extend(trust.iter().cloned());
    let out = unpack_capped(&args, dir);
    let verify_exit = out.code();
    if let Err(e) = sane(&out, "verify") {
        problems.push(e);
    }
    if case.caught_by == CaughtBy::Verify {
        if out.code() != 1 {
            problems.push(format!("verify: expected exit 1\n{}", out.dump()));
        }
        let text = out.text();
        for h in &hostile {
            let p = h.display().to_string();
            if !text.contains(&p) {
                problems.push(format!(
                    "verify does not name the volume {p}\n{}",
                    out.dump()
                ));
            }
        }
        for s in &case.says {
            if !text.contains(s.as_str()) {
                problems.push(format!("verify does not say {s:?}\n{}", out.dump()));
            }
        }
    }
    args.push(os("--json"));
    let out = unpack_capped(&args, dir);
    if let Err(e) = sane(&out, "verify --json") {
        problems.push(e);
    }
    // verify --json is a JSON Lines stream (docs/events.md); crate::json folds it.
    match Ok::<Value, String>(crate::json(&out)) {
        Ok(report) => {
            for v in report["volumes"].as_array().into_iter().flatten() {
                let path = PathBuf::from(v["path"].as_str().unwrap_or_default());
                let want = if hostile.contains(&path) {
                    case.status
                } else {
                    "ok"
                };
                if v["status"] != want {
                    problems.push(format!(
                        "verify --json: {} is {}, expected {want}",
                        path.display(),
                        v["status"]
                    ));
                }
            }
        }
        Err(e) => problems.push(format!(
            "verify --json printed no JSON ({e})\n{}",
            out.dump()
        )),
    }

    // extract, for the lies only decoding reveals.
    if case.caught_by == CaughtBy::Extract {
        let mut args = vec![os("extract")];
        args.extend(paths.iter().map(os));
        args.extend(trust.iter().cloned());
        args.extend([os("--to"), os(dir.join("extracted"))]);
        let out = unpack_capped(&args, dir);
        if let Err(e) = sane(&out, "extract") {
            problems.push(e);
        } else if out.code() != 1 {
            problems.push(format!("extract: expected exit 1\n{}", out.dump()));
        }
        for s in &case.says {
            if !out.text().contains(s.as_str()) {
                problems.push(format!("extract does not say {s:?}\n{}", out.dump()));
            }
        }
        let _ = fs::remove_dir_all(dir.join("extracted"));
    }

    // push into a fresh registry: nothing the signature does not vouch for arrives.
    let registry = Registry::plain();
    let mut args = vec![os("push")];
    args.extend(paths.iter().map(os));
    args.extend(trust.iter().cloned());
    args.extend([
        os("--to"),
        os(format!("127.0.0.1:{}/hostile", registry.port)),
        os("--insecure"),
        os("--state"),
        os(dir.join("state")),
        os("--manifests-dir"),
        os(dir.join("manifests")),
        os("--jobs"),
        os("2"),
    ]);
    let out = unpack_capped(&args, dir);
    if let Err(e) = sane(&out, "push") {
        problems.push(e);
    } else if out.code() == 0 || out.code() == 2 {
        // 0 = everything went in, 2 = usage or I/O: neither fits a hostile input.
        problems.push(format!("push: expected exit 1 or 3\n{}", out.dump()));
    }
    if case.caught_by == CaughtBy::Push {
        if out.code() != 1 {
            problems.push(format!("push: expected exit 1\n{}", out.dump()));
        }
        for s in &case.says {
            if !out.text().contains(s.as_str()) {
                problems.push(format!("push does not say {s:?}\n{}", out.dump()));
            }
        }
    }
    let blobs = stored_blobs(&registry.storage());
    for (hex, actual) in &blobs {
        let digest = format!("sha256:{hex}");
        if hex != actual {
            problems.push(format!(
                "the registry holds {digest} whose content is sha256:{actual}"
            ));
        }
        if !fx.vouched.contains(&digest) && !case.vouched.contains(&digest) {
            problems.push(format!(
                "push uploaded {digest}, which no trusted signature vouches for"
            ));
        }
        if case.absent.contains(&digest) {
            problems.push(format!("push uploaded the damaged or lying blob {digest}"));
        }
    }
    // Volumes that are all invalid or of two bundles give push nothing to use.
    let refused_whole = case.caught_by == CaughtBy::Verify
        && (case.status == "foreign"
            || (matches!(case.status, "invalid" | "untrusted")
                && case.hostile.len() == case.files.len()));
    if refused_whole && (!blobs.is_empty() || repository_links(&registry.storage()) > 0) {
        problems.push(format!(
            "push wrote into the registry from volumes it must refuse whole: {} blob(s)\n{}",
            blobs.len(),
            out.dump()
        ));
    }
    drop(registry);
    if problems.is_empty() {
        let _ = fs::remove_dir_all(dir);
        Ok(Outcome {
            verify_exit,
            pushed_blobs: blobs.len(),
        })
    } else {
        Err(problems.join("\n"))
    }
}
