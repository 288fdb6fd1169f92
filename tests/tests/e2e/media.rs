//! Removable media in practice: a plan before writing, disks that are too small,
//! several disks filled in turn, volumes pushed one at a time in any order across a registry
//! restart, `status`, deltas against what the inside holds, and repair of one disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tests::registry::Registry;
use tests::*;

fn push(
    vols: &[&Path],
    key: &Key,
    to: &str,
    state: &Path,
    manifests: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args: Vec<String> = vec!["push".into()];
    args.extend(vols.iter().map(|v| v.display().to_string()));
    for a in [
        "--trust",
        &key.public.display().to_string(),
        "--to",
        to,
        "--insecure",
        "--state",
        &state.display().to_string(),
        "--manifests-dir",
        &manifests.display().to_string(),
    ] {
        args.push(a.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    unpack(&args)
}

/// Every image of the oc-mirror fixture, by original repository path and tag, with digest.
fn expected_images(out: &Path) -> Vec<(String, String, String)> {
    let v = json(&unpack([
        "inspect".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ]));
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let source = i["source"].as_str().unwrap();
            let name = source.split('@').next().unwrap();
            let name = match name.rfind(':') {
                Some(c) if c > name.rfind('/').unwrap_or(0) => &name[..c],
                _ => name,
            };
            let path = name.split_once('/').unwrap().1.to_owned();
            (
                path,
                i["tags"][0].as_str().unwrap().to_owned(),
                i["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Checks every image is in the registry with the right digest (skopeo reads it back).
fn assert_all_pushed(reg: &Registry, prefix: &str, images: &[(String, String, String)]) {
    for (path, tag, digest) in images {
        let name = format!("docker://{}/{prefix}/{path}:{tag}", reg.host());
        let o = skopeo(["inspect", "--raw", "--tls-verify=false", &name]);
        assert_ok(&o, &format!("skopeo inspect {name}"));
        let got = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&o.stdout))
        );
        assert_eq!(&got, digest, "{name}");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

const NEEDS_ROOT: &str = "this test needs root, to mount a small tmpfs (mount -t tmpfs): run the tests as root, as CI does (README \"Tests\")";

/// A small tmpfs (root only), so "does not fit" can be tested for real; unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn new(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn plan_says_how_many_volumes_and_writes_nothing() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let out = t.path().join("out");
    let o = pack_ok(&fixture("oci"), &out, "100KiB", &key, &["--plan"]);
    assert_mentions(
        &o,
        &[
            "4 volume(s) of at most",
            "volume   1",
            "zstd-compressed",
            "stored as is",
            "expected time",
        ],
        "--plan",
    );
    assert!(!out.exists(), "--plan wrote {}", out.display());
}

#[test]
fn a_bundle_that_does_not_fit_is_refused_before_writing_and_two_disks_are_filled_in_turn() {
    // A test that cannot run fails: it must never pass without testing (README "Tests").
    assert!(is_root(), "{NEEDS_ROOT}");
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let (Some(a), Some(b)) = (
        SmallDisk::new(&t.path().join("disk1"), "300k"),
        SmallDisk::new(&t.path().join("disk2"), "300k"),
    ) else {
        panic!("mounting a tmpfs failed although running as root");
    };
    // One 300 KiB disk cannot take four 100 KiB volumes: refused, nothing written.
    let o = pack_with(&fixture("oci"), &a.0, "100KiB", &key.private, &[]);
    assert_exit(&o, 1, "pack onto a disk too small");
    assert_mentions(
        &o,
        &["does not fit", "Nothing was written", "--out"],
        "pack onto a disk too small",
    );
    assert!(names(&a.0).is_empty(), "{:?}", names(&a.0));
    let o = pack_with(&fixture("oci"), &a.0, "100KiB", &key.private, &["--plan"]);
    assert_mentions(&o, &["DOES NOT FIT"], "--plan onto a disk too small");
    // Two such disks take it: volumes go to the first until it is full, then the second.
    let o = pack_with(
        &fixture("oci"),
        &a.0,
        "100KiB",
        &key.private,
        &["--out", &b.0.display().to_string()],
    );
    assert_ok(&o, "pack onto two disks");
    let (va, vb) = (volumes(&a.0), volumes(&b.0));
    assert_eq!((va.len(), vb.len()), (2, 2), "{va:?} {vb:?}");
    assert!(
        names(&b.0).iter().any(|n| n.ends_with(".bundle.json.zst")),
        "standalone manifest on every disk"
    );
    let o = unpack([
        "verify".as_ref(),
        a.0.as_os_str(),
        b.0.as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
    ]);
    assert_ok(&o, "verify both disks");
}

#[test]
fn volumes_pushed_one_at_a_time_in_any_order_across_a_registry_restart() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let out = t.path().join("vols");
    pack_ok(&fixture("oc-mirror"), &out, "48KiB", &key, &[]);
    let vols = volumes(&out);
    assert!(vols.len() >= 5, "{} volumes", vols.len());
    let spanning = blob_volumes(&vols).values().filter(|v| v.len() > 1).count();
    assert!(spanning > 0, "some blob must span volumes");
    let mut reg = Registry::plain();
    let state = t.path().join("state");
    let man = t.path().join("manifests");
    // A fixed shuffle: the last volume first, the first volume in the middle.
    let mut order: Vec<usize> = (0..vols.len()).rev().collect();
    order.swap(1, vols.len() / 2);
    for (step, &i) in order.iter().enumerate() {
        if step == vols.len() / 2 {
            reg.restart();
        }
        let o = push(
            &[&vols[i]],
            &key,
            &format!("{}/efk", reg.host()),
            &state,
            &man,
            &[],
        );
        let last = step + 1 == vols.len();
        assert_exit(
            &o,
            if last { 0 } else { 3 },
            &format!("push of volume {} alone (step {step})", i + 1),
        );
        if !last {
            assert_mentions(&o, &["waits on volume(s)"], "a partial push");
            let st = unpack(["status", "--state", &state.display().to_string()]);
            assert_mentions(&st, &["volumes seen and verified", "WAITING"], "status");
        }
    }
    assert_all_pushed(&reg, "efk", &expected_images(&out));
    let st = json(&unpack([
        "status",
        "--state",
        &state.display().to_string(),
        "--json",
    ]));
    assert_eq!(
        st["volumes_not_seen"].as_array().unwrap().len(),
        0,
        "{st:#}"
    );
}

#[test]
fn a_delta_carries_only_what_the_inside_lacks_and_refuses_without_its_base() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let full = t.path().join("full");
    pack_ok(&fixture("oc-mirror"), &full, "1MiB", &key, &[]);
    let reg = Registry::plain();
    let to = format!("{}/efk", reg.host());
    let man = t.path().join("m1");
    assert_ok(
        &push(&[&full], &key, &to, &t.path().join("s1"), &man, &[]),
        "full push",
    );
    let receipt = man.join("receipt.json");
    // Delta against the receipt: layers and configs left out, manifests carried.
    let delta = t.path().join("delta");
    let o = pack_ok(
        &fixture("oc-mirror"),
        &delta,
        "1MiB",
        &key,
        &["--base", &receipt.display().to_string()],
    );
    assert_mentions(&o, &["left to the base"], "delta pack");
    let size = |d: &Path| volumes(d).iter().map(|v| file_size(v)).sum::<u64>();
    assert!(
        size(&delta) * 4 < size(&full),
        "delta {} vs full {}",
        size(&delta),
        size(&full)
    );
    // Pushed where the base is: completes, nothing uploaded but manifests.
    let o = push(
        &[&delta],
        &key,
        &to,
        &t.path().join("s2"),
        &t.path().join("m2"),
        &[],
    );
    assert_ok(&o, "delta push onto its base");
    assert_all_pushed(&reg, "efk", &expected_images(&full));
    // Pushed where the base is not: refused before anything is sent.
    let empty = Registry::plain();
    let o = push(
        &[&delta],
        &key,
        &format!("{}/efk", empty.host()),
        &t.path().join("s3"),
        &t.path().join("m3"),
        &[],
    );
    assert_exit(&o, 1, "delta push without its base");
    assert_mentions(
        &o,
        &[
            "delta bundle needs blobs its base",
            "nothing was pushed",
            "sha256:",
        ],
        "delta push without its base",
    );
    assert!(empty.catalog().is_empty(), "{:?}", empty.catalog());
    // An earlier bundle's manifest works as a base too.
    let (manifest, _) = standalone_manifest(&full);
    let delta2 = t.path().join("delta2");
    pack_ok(
        &fixture("oc-mirror"),
        &delta2,
        "1MiB",
        &key,
        &["--base", &manifest.display().to_string()],
    );
    assert!(size(&delta2) * 4 < size(&full));
    // A delta cannot be extracted on its own.
    let o = unpack([
        "extract".as_ref(),
        delta.as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
        "--to".as_ref(),
        t.path().join("x").as_os_str(),
    ]);
    assert_exit(&o, 1, "extract of a delta");
    assert_mentions(&o, &["delta bundle"], "extract of a delta");
}

#[test]
fn a_damaged_volume_is_rewritten_alone_with_the_command_verify_prints() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let out = t.path().join("vols");
    pack_ok(&fixture("oci"), &out, "64KiB", &key, &[]);
    let vols = volumes(&out);
    let before = file_sha256(&vols[1]);
    flip_byte(&vols[1], 6000);
    let o = unpack([
        "verify".as_ref(),
        out.as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_exit(&o, 1, "verify of a damaged volume");
    let cmd = json(&o)["repair_command"].as_str().unwrap().to_owned();
    assert!(cmd.contains("--only-volume 2"), "{cmd}");
    // Run exactly what verify printed, with the placeholders filled in.
    let mut words = cmd.split_whitespace();
    let env = words.next().unwrap();
    let (var, value) = env.split_once('=').unwrap();
    assert_eq!(var, "SOURCE_DATE_EPOCH");
    assert_eq!(words.next(), Some("ferry-pack"));
    let args: Vec<String> = words
        .map(|w| match w {
            "<MIRROR>" => fixture("oci").display().to_string(),
            "<DIR>" => out.display().to_string(),
            "<KEY>" => key.private.display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    let o = run_command(
        Command::new(ferry_pack_bin())
            .args(&args)
            .env("SOURCE_DATE_EPOCH", value),
    );
    assert_ok(&o, "the repair command");
    assert_eq!(
        file_sha256(&vols[1]),
        before,
        "the rewritten volume is the original"
    );
    let o = unpack([
        "verify".as_ref(),
        out.as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
    ]);
    assert_ok(&o, "verify after repair");
    let reg = Registry::plain();
    let o = push(
        &[&out],
        &key,
        &format!("{}/x", reg.host()),
        &t.path().join("s"),
        &t.path().join("m"),
        &[],
    );
    assert_ok(&o, "push after repair");
}

/// On a terminal, a full disk is not the end: ferry-pack asks for the next medium (here the
/// operator types another directory). `script` gives the command a terminal.
#[test]
fn on_a_terminal_a_full_disk_asks_for_the_next_medium() {
    // A test that cannot run fails: it must never pass without testing (README "Tests").
    assert!(is_root(), "{NEEDS_ROOT}");
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let Some(disk) = SmallDisk::new(&t.path().join("disk"), "300k") else {
        panic!("mounting a tmpfs failed although running as root");
    };
    let next = t.path().join("next-medium");
    let cmd = format!(
        "{} {} --out {} --volume-size 100KiB --key {}",
        ferry_pack_bin().display(),
        fixture("oci").display(),
        disk.0.display(),
        key.private.display()
    );
    let mut child = Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", next.display()).as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("does not fit on") && text.contains("Insert the next medium"),
        "{text}"
    );
    assert_eq!(
        (volumes(&disk.0).len(), volumes(&next).len()),
        (2, 2),
        "{text}"
    );
    let o = unpack([
        "verify".as_ref(),
        disk.0.as_os_str(),
        next.as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
    ]);
    assert_ok(&o, "verify both media");
}
