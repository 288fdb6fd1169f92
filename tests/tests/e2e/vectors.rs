//! The binaries agree with the format vectors (SPEC.md §10): `ferry-unpack verify --json`
//! reports each `verify` vector's rule, and `ferry-unpack extract` accepts or refuses each
//! `extract` vector (in both layouts when it is valid) with ferry's words for it. The
//! format crate's driver checks the library; this checks what users run.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::*;

fn vector_dirs() -> Vec<PathBuf> {
    let root = workspace().join("format-spec/vectors");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 70,
        "only {} vectors in {}",
        dirs.len(),
        root.display()
    );
    dirs
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The rule of the first volume that is not ok, as `verify --json` reports it.
fn reported_rule(report: &Value) -> Option<String> {
    let v = report["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["status"] != "ok")?;
    let rule = if v["status"] == "damaged" {
        &v["damage"][0]["rule"]
    } else {
        &v["rule"]
    };
    rule.as_str().map(str::to_owned)
}

fn check(dir: &Path, scratch: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ok = expected["outcome"] == "ok";
    let key = dir.join("key.pub");
    match expected["operation"].as_str() {
        Some("verify") => {
            let o = unpack([
                "verify".as_ref(),
                dir.as_os_str(),
                "--trust".as_ref(),
                key.as_os_str(),
                "--json".as_ref(),
            ]);
            let want_code = if ok { 0 } else { 1 };
            if o.status.code() != Some(want_code) {
                return Err(format!(
                    "{name}: verify exited {:?}, not {want_code}: {}",
                    o.status.code(),
                    stderr(&o)
                ));
            }
            if !ok {
                let got = reported_rule(&json(&o));
                if got.as_deref() != expected["rule"].as_str() {
                    return Err(format!(
                        "{name}: verify --json reports rule {got:?}, the vector names {}",
                        expected["rule"]
                    ));
                }
            }
        }
        Some("extract") => {
            let layouts: &[&str] = if ok { &["oci", "original"] } else { &["oci"] };
            for layout in layouts {
                let to = scratch.join(format!("{name}-{layout}"));
                let o = unpack([
                    "extract".as_ref(),
                    dir.as_os_str(),
                    "--trust".as_ref(),
                    key.as_os_str(),
                    "--to".as_ref(),
                    to.as_os_str(),
                    "--layout".as_ref(),
                    layout.as_ref(),
                ]);
                let want = expected["error_contains"].as_str().unwrap();
                match (ok, o.status.code()) {
                    (true, Some(0)) => {}
                    (false, Some(c)) if c != 0 && stderr(&o).contains(want) => {}
                    _ => {
                        return Err(format!(
                            "{name}: extract --layout {layout} exited {:?} (the vector says {}, {want:?}): {}",
                            o.status.code(),
                            expected["outcome"],
                            stderr(&o)
                        ))
                    }
                }
            }
        }
        other => return Err(format!("{name}: unknown operation {other:?}")),
    }
    Ok(())
}

#[test]
fn binaries_reach_every_vectors_outcome_and_rule() {
    let scratch = tempdir();
    let problems: Vec<String> = vector_dirs()
        .iter()
        .filter_map(|d| check(d, scratch.path()).err())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
