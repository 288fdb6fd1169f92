//! Damaged, truncated, foreign and wrongly signed volumes: what `verify` and `extract`
//! say about each, with which exit code, and that verify never writes next to volumes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::*;

/// Images that contain the shared base layer (fixtures/README.md "Blob sharing"), as
/// ferry names them when packed from the OCI fixture.
const HURT_BY_BASE: [&str; 4] = [
    "openshift4/ose-elasticsearch-operator:v4.6",
    "openshift4/ose-elasticsearch-proxy:v4.6",
    "openshift4/ose-logging-fluentd:v4.6",
    "openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
];
const NOT_HURT_BY_BASE: [&str; 2] = [
    "my-operator/my-operator-index:v1",
    "openshift4/ose-elasticsearch-operator-bundle@sha256:a51f0ec8",
];

struct Packed {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
    key: Key,
}

/// The OCI fixture in 64 KiB volumes (8 of them).
fn packed() -> Packed {
    let tmp = tempdir();
    let root = tmp.path().to_path_buf();
    let key = keygen(&root, "site.key");
    let out = root.join("vols");
    pack_ok(&fixture("oci"), &out, "64KiB", &key, &[]);
    Packed {
        _tmp: tmp,
        root,
        out,
        key,
    }
}

fn verify(paths: &[&Path], trust: &Path, json: bool) -> Output {
    let mut args: Vec<&OsStr> = vec![OsStr::new("verify")];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    args.extend([OsStr::new("--trust"), trust.as_os_str()]);
    if json {
        args.push(OsStr::new("--json"));
    }
    unpack(args)
}

fn extract(paths: &[&Path], trust: &Path, to: &Path) -> Output {
    let mut args: Vec<&OsStr> = vec![OsStr::new("extract")];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    args.extend([
        OsStr::new("--trust"),
        trust.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
    ]);
    unpack(args)
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The report entry for `path` in `verify --json` output.
fn entry<'a>(report: &'a serde_json::Value, path: &Path) -> &'a serde_json::Value {
    report["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["path"] == path.to_string_lossy().as_ref())
        .unwrap_or_else(|| panic!("{} not in the report: {report:#}", path.display()))
}

#[test]
fn flipped_byte_in_chunk_data_names_volume_blob_and_images() {
    let p = packed();
    let (vol, data, size) = chunk_of(&p.out, SHARED_BASE_LAYER);
    flip_byte(&vol, data + size / 2);

    let o = verify(&[&p.out], &p.key.public, false);
    assert_exit(&o, 1, "verify with a damaged chunk");
    let mut needles = vec![
        file_name(&vol),
        "DAMAGED".into(),
        "chunk data damaged".into(),
        SHARED_BASE_LAYER.into(),
    ];
    needles.extend(HURT_BY_BASE.iter().map(|s| s.to_string()));
    assert_mentions(
        &o,
        &needles.iter().map(String::as_str).collect::<Vec<_>>(),
        "damaged chunk",
    );
    let hurt_line = o
        .stdout_text()
        .lines()
        .find(|l| l.contains("images hurt:"))
        .unwrap_or_else(|| panic!("no images hurt line\n{}", o.dump()))
        .to_owned();
    for spared in NOT_HURT_BY_BASE {
        assert!(
            !hurt_line.contains(spared),
            "{spared} is not hurt: {hurt_line}"
        );
    }
    // The other volumes are fine and say so.
    let ok_lines = o
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("OK "))
        .count();
    assert_eq!(ok_lines, volumes(&p.out).len() - 1, "{}", o.dump());

    let o = verify(&[&p.out], &p.key.public, true);
    assert_exit(&o, 1, "verify --json with a damaged chunk");
    let report = json(&o);
    assert_eq!(report["ok"], false);
    let e = entry(&report, &vol);
    assert_eq!(e["status"], "damaged");
    assert_eq!(e["damage"][0]["blob"], SHARED_BASE_LAYER);
    assert_eq!(e["damage"][0]["what"], "chunk data");
    let hurt: Vec<&str> = e["images_hurt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(hurt, HURT_BY_BASE, "images_hurt");
    for v in volumes(&p.out).iter().filter(|v| **v != vol) {
        assert_eq!(entry(&report, v)["status"], "ok");
    }
}

#[test]
fn flipped_byte_in_chunk_tar_header_is_damage() {
    let p = packed();
    let (vol, data, _) = chunk_of(&p.out, SHARED_BASE_LAYER);
    flip_byte(&vol, data - BLOCK + 20); // inside the entry's name field
    let o = verify(&[&vol], &p.key.public, false);
    assert_exit(&o, 1, "verify with a damaged chunk header");
    assert_mentions(
        &o,
        &["DAMAGED", "tar header damaged", SHARED_BASE_LAYER],
        "damaged header",
    );
}

/// The signed table is what everything else is checked against: damage to it must come
/// out as a signature failure, naming the volume.
#[test]
fn flipped_byte_in_volume_table_fails_the_signature() {
    let p = packed();
    let vol = volumes(&p.out)[1].clone();
    flip_byte(&vol, table_data_offset(&vol) + 40);
    let o = verify(&[&p.out], &p.key.public, false);
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &[
            &file_name(&vol),
            "not signed by any trusted key",
            "volume table signature does not verify",
        ],
        "damaged table",
    );
    let report = json(&verify(&[&p.out], &p.key.public, true));
    assert_eq!(report["ok"], false);
    assert_ne!(entry(&report, &vol)["status"], "ok");
}

#[test]
fn truncated_volume_is_reported_truncated() {
    let p = packed();
    let vols = volumes(&p.out);
    // Cut the last 4096 bytes (the table's tail is gone) and cut in the middle.
    let cut_end = vols[0].clone();
    truncate(&cut_end, file_size(&cut_end) - 4096);
    let cut_middle = vols[2].clone();
    truncate(&cut_middle, file_size(&cut_middle) / 2 + 100);
    for vol in [&cut_end, &cut_middle] {
        let o = verify(&[vol], &p.key.public, false);
        assert_ne!(o.code(), 0, "{}", o.dump());
        assert_mentions(&o, &[&file_name(vol), "truncated"], "truncated volume");
    }
    // Among the good ones, the rest still verify.
    let o = verify(&[&p.out], &p.key.public, true);
    assert_ne!(o.code(), 0, "{}", o.dump());
    let report = json(&o);
    for v in &vols[3..] {
        assert_eq!(entry(&report, v)["status"], "ok");
    }
}

#[test]
fn volume_of_another_bundle_is_foreign() {
    let p = packed();
    let other = p.root.join("other");
    pack_ok(&fixture("skopeo-dir"), &other, "64KiB", &p.key, &[]);
    let stranger = volumes(&other)[0].clone();
    let mut given: Vec<PathBuf> = volumes(&p.out);
    given.insert(2, stranger.clone());
    let given: Vec<&Path> = given.iter().map(PathBuf::as_path).collect();

    let o = verify(&given, &p.key.public, false);
    assert_exit(&o, 1, "verify with a foreign volume");
    let line = o
        .stdout_text()
        .lines()
        .find(|l| l.contains(&file_name(&stranger)))
        .unwrap_or_else(|| panic!("the foreign volume is not named\n{}", o.dump()))
        .to_owned();
    assert!(line.starts_with("FOREIGN"), "{line}");
    assert_mentions(&o, &["belongs to bundle"], "foreign");

    let report = json(&verify(&given, &p.key.public, true));
    assert_eq!(report["ok"], false);
    assert_eq!(entry(&report, &stranger)["status"], "foreign");
    for v in volumes(&p.out) {
        assert_eq!(entry(&report, &v)["status"], "ok");
    }
    assert_eq!(report["missing_volumes"].as_array().unwrap().len(), 0);
}

#[test]
fn wrong_key_is_not_trusted_and_the_fingerprint_is_shown() {
    let p = packed();
    let other = keygen(&p.root, "other.key");
    assert_ne!(other.fingerprint, p.key.fingerprint);
    let o = verify(&[&p.out], &other.public, false);
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &["not signed by any trusted key", &other.fingerprint],
        "wrong key",
    );
    assert!(
        !o.text().contains("\nOK "),
        "nothing verifies with the wrong key\n{}",
        o.dump()
    );
}

/// Exit codes are documented as 0 ok, 1 verification failed, 2 usage or I/O error. A bad
/// signature, a truncated volume and a wrong key are verification failures.
#[test]
fn signature_truncation_and_wrong_key_exit_1() {
    let p = packed();
    let other = keygen(&p.root, "other.key");
    let o = verify(&[&p.out], &other.public, false);
    assert_exit(&o, 1, "verify with the wrong key");

    let vols = volumes(&p.out);
    flip_byte(&vols[1], table_data_offset(&vols[1]) + 40);
    assert_exit(
        &verify(&[&vols[1]], &p.key.public, false),
        1,
        "verify with a damaged table",
    );
    assert_exit(
        &verify(&[&p.out], &p.key.public, false),
        1,
        "verify all, one table damaged",
    );

    truncate(&vols[0], file_size(&vols[0]) - 4096);
    assert_exit(
        &verify(&[&vols[0]], &p.key.public, false),
        1,
        "verify a truncated volume",
    );
    truncate(&vols[2], file_size(&vols[2]) / 2);
    assert_exit(
        &verify(&[&vols[2]], &p.key.public, false),
        1,
        "verify a volume cut in the middle",
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let p = packed();
    let o = verify(&[&p.root.join("no-such-volume.tar")], &p.key.public, false);
    assert_exit(&o, 2, "verify a path that does not exist");
    assert_mentions(&o, &["no-such-volume.tar"], "missing path");
    let o = verify(&[&p.out], &p.root.join("no-such.pub"), false);
    assert_exit(&o, 2, "verify with a key file that does not exist");
    assert_mentions(&o, &["no-such.pub"], "missing key");
    let empty = p.root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = verify(&[&empty], &p.key.public, false);
    assert_exit(&o, 2, "verify a directory without volumes");
    assert_mentions(&o, &["no volume files"], "empty dir");
    let o = unpack(["verify", "--trust", "x.pub"]);
    assert_exit(&o, 2, "verify without volumes");
}

/// Read-only media must work, and verify must not leave anything behind. Tests run as
/// root, which ignores 0555, so the directory is also compared entry by entry.
#[test]
fn verify_and_inspect_never_write_next_to_the_volumes() {
    let p = packed();
    // One copy intact, one with a damaged chunk, so both report paths run.
    let damaged = p.root.join("damaged");
    copy_tree(&p.out, &damaged);
    let (vol, data, _) = chunk_of(&damaged, SHARED_BASE_LAYER);
    flip_byte(&vol, data + 7);
    let cwd = p.root.join("cwd");
    std::fs::create_dir(&cwd).unwrap();

    for dir in [&p.out, &damaged] {
        for v in volumes(dir) {
            set_mode(&v, 0o444);
        }
        set_mode(dir, 0o555);
        let before = snapshot(dir);
        for args in [
            vec!["verify", "--trust"],
            vec!["verify", "--json", "--trust"],
            vec!["inspect", "--trust"],
            vec!["inspect", "--json", "--trust"],
        ] {
            let mut c = Command::new(ferry_unpack_bin());
            c.args(&args).arg(&p.key.public).arg(dir).current_dir(&cwd);
            let o = run_command(&mut c);
            let expected = if dir == &damaged && args[0] == "verify" {
                1
            } else {
                0
            };
            assert_exit(
                &o,
                expected,
                &format!("{args:?} on read-only {}", dir.display()),
            );
            assert_eq!(snapshot(dir), before, "{args:?} changed {}", dir.display());
            assert!(
                names(&cwd).is_empty(),
                "{args:?} wrote into its working directory"
            );
        }
        set_mode(dir, 0o755);
    }
}

#[test]
fn extract_with_missing_volumes_names_them() {
    let p = packed();
    let vols = volumes(&p.out);
    let given: Vec<&Path> = vols
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 3)
        .map(|(_, v)| v.as_path())
        .collect();
    let to = p.root.join("extracted");
    let o = extract(&given, &p.key.public, &to);
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &["volume(s) 2, 4 are not given"],
        "extract with volumes 2 and 4 missing",
    );
    assert!(names(&to).is_empty(), "nothing extracted: {:?}", names(&to));
}

#[test]
fn extract_with_a_damaged_chunk_names_the_blob() {
    let p = packed();
    let (vol, data, size) = chunk_of(&p.out, SHARED_BASE_LAYER);
    flip_byte(&vol, data + size - 1);
    let to = p.root.join("extracted");
    let o = extract(&[&p.out], &p.key.public, &to);
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &[SHARED_BASE_LAYER, "damaged", &file_name(&vol)],
        "extract with a damaged chunk",
    );
}

/// A volume that was given but cannot be verified is damaged, not "not given": the report
/// must not send the operator looking for a disk that is in the drive. (`missing_volumes`
/// is documented as "volumes of the bundle not among those given".)
#[test]
fn unverifiable_volume_is_not_reported_as_not_given() {
    let p = packed();
    let vols = volumes(&p.out);
    flip_byte(&vols[1], BLOCK + 100); // inside ferry/bundle.json.zst of volume 2
    let o = verify(&[&p.out], &p.key.public, false);
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert!(
        !o.stdout_text().contains("not given"),
        "all volumes were given\n{}",
        o.dump()
    );
    let report = json(&verify(&[&p.out], &p.key.public, true));
    assert_eq!(
        report["missing_volumes"].as_array().unwrap().len(),
        0,
        "{report:#}"
    );
}
