//! ferry-pack on real media, as operators meet it: links planted at the names it writes, the
//! bundle manifest that did not fit, reruns onto media that hold complete volumes, the
//! next-medium prompt on a terminal, a disk filled mid-run, Ctrl-C, `--only-volume` drifting
//! into another bundle, keygen's directory, and the messages for bad outputs, sizes and keys.
//!
//! Disk-full cases use a small tmpfs and need root; a test that cannot mount one fails.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::faults::Tmpfs;
use tests::*;

fn tmpfs(size: &str) -> Tmpfs {
    Tmpfs::mount(size)
        .unwrap_or_else(|e| panic!("this test needs a small tmpfs (run as root, as CI does): {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The bundle id's 12-hex prefix, as file names carry it, from `--plan`.
fn short_id(mirror: &Path, size: &str, key: &Key) -> String {
    let t = tempdir();
    let o = pack_with(mirror, &t.path().join("x"), size, &key.private, &["--plan"]);
    assert_ok(&o, "--plan");
    let text = String::from_utf8_lossy(&o.stdout);
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix("bundle sha256:"))
        .unwrap_or_else(|| panic!("--plan names no bundle\n{text}"));
    hex[..12].to_owned()
}

fn symlink(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn partials(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

fn pack_command(mirror: &Path, out: &Path, size: &str, key: &Key) -> Command {
    let mut c = Command::new(ferry_pack_bin());
    c.arg(mirror)
        .arg("--out")
        .arg(out)
        .args(["--volume-size", size, "--key"])
        .arg(&key.private)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits until `child` has completed a volume in `out` and holds the temporary of another
/// open (it is writing it), then stops it with SIGSTOP; false if it ended first.
fn stop_while_writing(child: &mut Child, out: &Path) -> bool {
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if volumes(out).is_empty() {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            continue;
        }
        if let Ok(entries) = fs::read_dir(&fds) {
            let writing = entries.flatten().any(|e| {
                fs::read_link(e.path()).is_ok_and(|t| {
                    let t = t.to_string_lossy();
                    t.ends_with(".partial") && t.contains(".tar.")
                })
            });
            if writing {
                signal(child, "STOP");
                return true;
            }
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
    }
    false
}

/// Runs `command` until one run is caught (stopped) while it writes a volume into `out`,
/// at most ATTEMPTS times: the whole pack takes tens of milliseconds, and polling `/proc`
/// can miss the window. Each missed run is cleared away (its volumes removed) before the
/// next; a test that never catches one fails, it does not pass.
/// The oc-mirror fixture packed at this size makes 17 volumes, enough that a run is caught
/// mid-way (format 2's compressed manifest leaves more room per volume: at format 1's
/// 48KiB it is only 9, and a stop often came after the last write).
const OC_MIRROR_SIZE: &str = "32KiB";
const OC_MIRROR_VOLUMES: u32 = 17;

fn spawn_stopped_while_writing(out: &Path, command: impl Fn() -> Command) -> Child {
    const ATTEMPTS: usize = 10;
    for _ in 0..ATTEMPTS {
        let mut child = command().spawn().unwrap();
        if stop_while_writing(&mut child, out) {
            return child;
        }
        let _ = child.kill();
        let _ = child.wait();
        if let Ok(entries) = fs::read_dir(out) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    panic!("ferry-pack ended before it could be caught writing a volume, {ATTEMPTS} times");
}

fn signal(child: &Child, sig: &str) {
    let o = run("kill", [format!("-{sig}"), child.id().to_string()]);
    assert_ok(&o, &format!("kill -{sig}"));
}

/// The `SOURCE_DATE_EPOCH=… ferry-pack …` line a stopped pack printed.
fn printed_command(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("SOURCE_DATE_EPOCH=") && l.contains(" ferry-pack "))
        .unwrap_or_else(|| panic!("no command to go on printed:\n{text}"))
        .to_owned()
}

/// Runs a printed command line through the shell, NEWDIR filled in, ferry-pack on PATH.
fn run_printed(command: &str, newdir: &Path) -> Output {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_command(
        Command::new("sh")
            .arg("-c")
            .arg(command.replace("NEWDIR", &newdir.display().to_string()))
            .env("PATH", path),
    )
}

fn verify_ok(dirs: &[&Path], key: &Key, what: &str) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("verify")];
    args.extend(dirs.iter().map(|d| d.as_os_str()));
    args.extend([OsStr::new("--trust"), key.public.as_os_str()]);
    assert_ok(&unpack(args), what);
}

/// Volume numbers of the `*.tar` files in `dir`.
fn volume_numbers(dir: &Path) -> Vec<u32> {
    volumes(dir)
        .iter()
        .map(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.rsplit('-').nth(2).unwrap().parse().unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

/// The temporary names were predictable (`.ferry-<id>-NNN-of-MMM.tar.partial`,
/// `.ferry-<id>.bundle.json.zst.partial`) and opened with a plain create, so a link planted
/// there made ferry-pack overwrite its target; a link at a final name was followed too.
#[test]
fn links_at_the_old_temporary_names_are_not_followed_and_links_at_final_names_are_refused() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let mirror = fixture("oci");
    let id = short_id(&mirror, "100KiB", &key);
    let victim = t.path().join("victim");
    fs::write(&victim, b"precious").unwrap();

    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut planted = Vec::new();
    for n in 1..=4 {
        planted.push(format!(".ferry-{id}-{n:03}-of-004.tar.partial"));
    }
    planted.push(format!(".ferry-{id}.bundle.json.zst.partial"));
    planted.push(format!(".ferry-{id}.bundle.json.zst.sig.partial"));
    for p in &planted {
        symlink(&victim, &out.join(p));
    }
    pack_ok(&mirror, &out, "100KiB", &key, &[]);
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"precious",
        "the link target was written"
    );
    assert_eq!(volumes(&out).len(), 4);
    for p in &planted {
        assert!(
            fs::symlink_metadata(out.join(p))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{p}"
        );
    }
    verify_ok(&[&out], &key, "volumes written beside planted links");

    // A link where a volume, the standalone manifest or its signature goes: refused before
    // anything is written, the target untouched.
    for final_name in [
        format!("ferry-{id}-002-of-004.tar"),
        format!("ferry-{id}.bundle.json.zst"),
        format!("ferry-{id}.bundle.json.zst.sig"),
    ] {
        let out = t.path().join(format!("out-{final_name}"));
        fs::create_dir(&out).unwrap();
        symlink(&victim, &out.join(&final_name));
        let o = pack_with(&mirror, &out, "100KiB", &key.private, &[]);
        assert_exit(&o, 1, &format!("pack with a link at {final_name}"));
        let e = stderr(&o);
        assert!(
            e.contains(&final_name) && e.contains("symbolic link") && e.contains("remove it"),
            "{e}"
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious", "{final_name}");
        assert_eq!(
            names(&out),
            std::slice::from_ref(&final_name),
            "nothing else written"
        );
    }
}

/// An OCI layout of `n` tiny images: a bundle manifest of a few hundred KiB, larger than
/// the slack the free-space check leaves per volume.
fn many_images(dir: &Path, n: usize) -> PathBuf {
    use sha2::{Digest, Sha256};
    let root = dir.join("many");
    let blobs = root.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = hex::encode(Sha256::digest(bytes));
        fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut manifests = Vec::new();
    for i in 0..n {
        let mut layer = vec![0x1f, 0x8b, 0x08, 0x00];
        layer.extend(format!("layer {i}").as_bytes());
        let (ld, ls) = put(&layer);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"n":"{i}"}}}},"rootfs":{{"type":"layers","diff_ids":["{ld}"]}}}}"#
        );
        let (cd, cs) = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{ld}","size":{ls}}}]}}"#
        );
        let (md, ms) = put(manifest.as_bytes());
        manifests.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"team/app-{i}:v1"}}}}"#
        ));
    }
    fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        root.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            manifests.join(",")
        ),
    )
    .unwrap();
    root
}

fn remount(disk: &Tmpfs, opts: &str) {
    let o = run(
        "mount",
        [
            OsStr::new("-o"),
            OsStr::new(&format!("remount,{opts}")),
            disk.path.as_os_str(),
        ],
    );
    assert_ok(&o, &format!("mount -o remount,{opts}"));
}

/// The free-space check and `--plan` ignored the standalone manifest
/// written into every --out, so a medium that held the volumes but not the manifest was
/// "fit", got every volume, then failed with ENOSPC; and `--plan` exited 0 for a bundle
/// that does not fit.
#[test]
fn the_space_check_and_plan_count_the_bundle_manifest_on_every_medium() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let mirror = many_images(t.path(), 300);
    // Learn the exact sizes from a run without limits.
    let scratch = t.path().join("scratch");
    pack_ok(&mirror, &scratch, "8MiB", &key, &[]);
    let vols = volumes(&scratch);
    assert_eq!(vols.len(), 1);
    let volume = file_size(&vols[0]);
    let (manifest, _) = standalone_manifest(&scratch);
    let manifest = file_size(&manifest) + 64;
    // Compressed (format 2), 300 images' manifest is still larger than the slack below.
    assert!(manifest > 32 << 10, "the manifest is {manifest} bytes");
    let page = |n: u64| n.div_ceil(4096) * 4096;
    // Room for the volume and the 64 KiB slack, not for the manifest.
    let disk = tmpfs(&format!("{}", page(volume) + (64 << 10) + (16 << 10)));
    let o = pack_with(&mirror, &disk.path, "8MiB", &key.private, &["--plan"]);
    assert_exit(&o, 1, "--plan for a medium without room for the manifest");
    assert_mentions(&o, &["DOES NOT FIT", "for the bundle manifest"], "--plan");
    let o = pack_with(&mirror, &disk.path, "8MiB", &key.private, &[]);
    assert_exit(&o, 1, "pack onto a medium without room for the manifest");
    let e = stderr(&o);
    assert!(e.contains("Nothing was written"), "{e}");
    let margin = format!(
        "free, needs {} for 1 volume(s) + {} for the bundle manifest",
        format_spec::size::human(volume),
        format_spec::size::human(manifest)
    );
    assert!(e.contains(&margin), "wanted {margin:?} in\n{e}");
    assert!(names(&disk.path).is_empty(), "{:?}", names(&disk.path));
    // With room for the manifest as well, the same command fits, plans 0 and writes.
    remount(
        &disk,
        &format!(
            "size={}",
            page(volume) + (64 << 10) + page(manifest) + (8 << 10)
        ),
    );
    let o = pack_with(&mirror, &disk.path, "8MiB", &key.private, &["--plan"]);
    assert_ok(&o, "--plan with room for the manifest");
    let o = pack_with(&mirror, &disk.path, "8MiB", &key.private, &[]);
    assert_ok(&o, "pack with room for the manifest");
    assert!(partials(&disk.path).is_empty());
    verify_ok(&[&disk.path], &key, "the medium");
    standalone_manifest(&disk.path);
}

/// Rerunning the same pack on media that hold its complete volumes said
/// "does not fit": it counted neither its own volumes nor its own temporaries.
#[test]
fn a_rerun_keeps_complete_volumes_and_replaces_its_own_partials_and_damaged_volumes() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let (a, b) = (tmpfs("300k"), tmpfs("300k"));
    let mirror = fixture("oci");
    let extra = ["--out", b.path.to_str().unwrap()];
    pack_ok(&mirror, &a.path, "100KiB", &key, &extra);
    let all: Vec<PathBuf> = volumes(&a.path)
        .into_iter()
        .chain(volumes(&b.path))
        .collect();
    assert_eq!(all.len(), 4);
    let ids = |v: &[PathBuf]| -> Vec<(u64, i64, String)> {
        v.iter()
            .map(|p| {
                let m = fs::metadata(p).unwrap();
                (m.ino(), m.mtime_nsec(), file_sha256(p))
            })
            .collect()
    };
    let before = ids(&all);
    // After a complete run: nothing to do, every volume checked and kept as it is.
    let o = pack_with(&mirror, &a.path, "100KiB", &key.private, &extra);
    assert_ok(&o, "rerun after a complete run");
    assert_mentions(&o, &["already complete", "kept"], "rerun");
    assert_eq!(ids(&all), before, "kept volumes were rewritten");

    // As after a kill while volume 4 was written: its temporary on disk 2, no volume 4.
    let v4 = all[3].clone();
    let name4 = v4.file_name().unwrap().to_string_lossy().into_owned();
    fs::remove_file(&v4).unwrap();
    let leftover = b.path.join(format!(".{name4}.0123456789abcdef.partial"));
    fs::write(&leftover, vec![0x5a; 80 << 10]).unwrap();
    let o = pack_with(&mirror, &a.path, "100KiB", &key.private, &extra);
    assert_ok(&o, "rerun after a kill");
    assert_mentions(&o, &["left by an interrupted run"], "rerun after a kill");
    assert!(!leftover.exists() && partials(&b.path).is_empty());
    assert_eq!(ids(&all)[..3], before[..3]);
    assert_eq!(
        file_sha256(&v4),
        before[3].2,
        "volume 4 written again, the same bytes"
    );

    // A damaged volume is not kept: it is written again.
    flip_byte(&all[0], 6000);
    let o = pack_with(&mirror, &a.path, "100KiB", &key.private, &extra);
    assert_ok(&o, "rerun over a damaged volume");
    assert_mentions(&o, &["is not intact", "written again"], "damaged volume");
    assert_eq!(file_sha256(&all[0]), before[0].2);
    verify_ok(&[&a.path, &b.path], &key, "both disks after the reruns");
}

/// tmux renders what an operator sees: `capture-pane` gives the screen as drawn.
struct Screen {
    socket: String,
}

impl Screen {
    fn start(columns: u32, command: &str) -> Screen {
        let socket = format!("ferry-pack-media-{}-{columns}", std::process::id());
        let o = run(
            "tmux",
            [
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &columns.to_string(),
                "-y",
                "30",
                command,
            ],
        );
        assert_ok(&o, "tmux new-session (install tmux: scripts/deps.sh)");
        Screen { socket }
    }

    fn text(&self) -> String {
        let o = run(
            "tmux",
            ["-L", &self.socket, "capture-pane", "-p", "-J", "-t", "t"],
        );
        assert_ok(&o, "tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "{needle:?} never shown:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &str) {
        let o = run("tmux", ["-L", &self.socket, "send-keys", "-t", "t", keys]);
        assert_ok(&o, "tmux send-keys");
    }

    fn type_line(&self, line: &str) {
        let o = run(
            "tmux",
            ["-L", &self.socket, "send-keys", "-t", "t", "-l", line],
        );
        assert_ok(&o, "tmux send-keys");
        let o = run(
            "tmux",
            ["-L", &self.socket, "send-keys", "-t", "t", "Enter"],
        );
        assert_ok(&o, "tmux send-keys Enter");
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = run("tmux", ["-L", &self.socket, "kill-server"]);
    }
}

/// On a terminal the "Insert the next medium" question was erased by the
/// progress bar's next redraw, leaving the operator a stalled bar.
#[test]
fn on_a_terminal_the_next_medium_question_stays_on_screen_until_answered() {
    for columns in [80, 220] {
        let t = tempdir();
        let key = keygen(t.path(), "k");
        let disk = tmpfs("300k");
        let next = t.path().join("next-medium");
        let command = format!(
            "{} {} --out {} --volume-size 100KiB --key {}; echo EXIT=$?; sleep 60",
            ferry_pack_bin().display(),
            fixture("oci").display(),
            disk.path.display(),
            key.private.display()
        );
        let screen = Screen::start(columns, &command);
        screen.wait_for("or q to stop");
        // Several redraws of the bar (every 200 ms) later, the question is still there,
        // and it is the last thing on the screen, where the operator types.
        std::thread::sleep(Duration::from_millis(1500));
        let text = screen.text();
        assert!(
            text.contains("does not fit on") && text.contains("Insert the next medium"),
            "{columns} columns: the question was erased:\n{text}"
        );
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        assert!(
            last.trim_end().ends_with("or q to stop:"),
            "{columns} columns: the last line is {last:?}:\n{text}"
        );
        screen.type_line(&next.display().to_string());
        let text = screen.wait_for("EXIT=");
        assert!(text.contains("EXIT=0"), "{columns} columns:\n{text}");
        assert_eq!(
            (volumes(&disk.path).len(), volumes(&next).len()),
            (2, 2),
            "{text}"
        );
        verify_ok(&[&disk.path, &next], &key, "both media");
    }
    // Ctrl-C while the question waits: it ends the wait, says what is complete, exit 130.
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let disk = tmpfs("300k");
    let command = format!(
        "{} {} --out {} --volume-size 100KiB --key {}; echo EXIT=$?; sleep 60",
        ferry_pack_bin().display(),
        fixture("oci").display(),
        disk.path.display(),
        key.private.display()
    );
    let screen = Screen::start(80, &command);
    screen.wait_for("or q to stop");
    screen.keys("C-c");
    let text = screen.wait_for("EXIT=");
    assert!(
        text.contains("EXIT=130")
            && text.contains("interrupted")
            && text.contains("Complete and good: volume(s) 1, 2"),
        "{text}"
    );
    assert_eq!(volumes(&disk.path).len(), 2, "{text}");
    assert!(partials(&disk.path).is_empty());
    standalone_manifest(&disk.path);
}

/// A disk filled by someone else mid-run removed the partial but did not
/// say what was complete, nor how to go on.
#[test]
fn a_disk_filled_mid_run_says_what_is_complete_and_the_command_that_finishes() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let disk = tmpfs("2m");
    let mirror = fixture("oc-mirror");
    let child = spawn_stopped_while_writing(&disk.path, || {
        pack_command(&mirror, &disk.path, OC_MIRROR_SIZE, &key)
    });
    let filled = disk.fill();
    assert!(filled > 0);
    signal(&child, "CONT");
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 1, "pack onto a disk filled mid-run");
    let e = stderr(&o);
    assert!(partials(&disk.path).is_empty(), "{:?}", names(&disk.path));
    let done = volume_numbers(&disk.path);
    assert!(
        !done.is_empty(),
        "the test stopped pack before volume 1 was complete\n{e}"
    );
    assert!(
        e.contains(&format!(
            "Complete and good: volume(s) {} on {}",
            format_spec::bundle::list(&done),
            disk.path.display()
        )),
        "{e}"
    );
    assert!(e.contains("on another disk, mount it and run:"), "{e}");
    let command = printed_command(&e);
    let rest: Vec<String> = (done.len() as u32 + 1..=OC_MIRROR_VOLUMES)
        .map(|n| n.to_string())
        .collect();
    assert!(
        command.ends_with(&format!("--out NEWDIR --only-volume {}", rest.join(","))),
        "{command}"
    );
    // The command works as printed: the rest of the same bundle.
    let newdir = t.path().join("second-disk");
    let o = run_printed(&command, &newdir);
    assert_ok(&o, "the printed command");
    assert_eq!(
        done.len() + volumes(&newdir).len(),
        OC_MIRROR_VOLUMES as usize
    );
    verify_ok(
        &[&disk.path, &newdir],
        &key,
        "the full disk and the new one",
    );
    println!(
        "disk filled after volume(s) {}: stopped by {}",
        format_spec::bundle::list(&done),
        if e.contains("No space left on device") {
            "ENOSPC while writing"
        } else {
            "the free-space check before the next volume"
        }
    );
}

/// Ctrl-C (SIGINT) left the partial volume behind and printed nothing;
/// SIGTERM (a service manager, `timeout`) is the same.
#[test]
fn ctrl_c_removes_the_partial_and_running_the_same_command_again_finishes() {
    for sig in ["INT", "TERM"] {
        interrupted_by(sig);
    }
}

fn interrupted_by(sig: &str) {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let out = t.path().join("out");
    let mirror = fixture("oc-mirror");
    let child =
        spawn_stopped_while_writing(&out, || pack_command(&mirror, &out, OC_MIRROR_SIZE, &key));
    signal(&child, sig);
    signal(&child, "CONT");
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 130, &format!("pack after SIG{sig}"));
    let e = stderr(&o);
    assert!(partials(&out).is_empty(), "{:?}", names(&out));
    assert!(e.contains("interrupted"), "{e}");
    assert!(e.contains("nothing half-written is left"), "{e}");
    assert!(e.contains("run the same command again"), "{e}");
    let done = volume_numbers(&out);
    assert!(
        !done.is_empty() && done.len() < OC_MIRROR_VOLUMES as usize,
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "Complete and good: volume(s) {} on {}",
            format_spec::bundle::list(&done),
            out.display()
        )),
        "{e}"
    );
    printed_command(&e);
    let o = pack_with(&mirror, &out, OC_MIRROR_SIZE, &key.private, &[]);
    assert_ok(&o, "the same command again");
    assert_eq!(volumes(&out).len(), OC_MIRROR_VOLUMES as usize);
    verify_ok(&[&out], &key, "after Ctrl-C and a rerun");
}

/// `--only-volume N` with other options silently wrote volume N of
/// another bundle.
#[test]
fn only_volume_refuses_to_write_a_volume_of_another_bundle_naming_what_differs() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let other = keygen(t.path(), "other");
    let mirror = fixture("oci");
    let vols = t.path().join("vols");
    pack_ok(&mirror, &vols, "64KiB", &key, &[]);
    let (manifest, _) = standalone_manifest(&vols);
    let original: Vec<(String, String)> = volumes(&vols)
        .iter()
        .map(|v| (v.display().to_string(), file_sha256(v)))
        .collect();
    let like = manifest.display().to_string();

    // Another --volume-size, the manifest found on --out by itself.
    let o = pack_with(
        &mirror,
        &vols,
        "100KiB",
        &key.private,
        &["--only-volume", "2"],
    );
    assert_exit(&o, 1, "--only-volume with another --volume-size");
    let e = stderr(&o);
    assert!(
        e.contains("--only-volume 2 would write volumes of bundle")
            && e.contains("Nothing was written")
            && e.contains(
                "--volume-size: the original used 64.00 KiB (65536 bytes), this run 100.00 KiB"
            ),
        "{e}"
    );
    // Only what differs is named: the same mirror's images and tree are not blamed.
    assert!(
        !e.contains("images, tags or original references differ")
            && !e.contains("file tree differs"),
        "{e}"
    );
    let after: Vec<(String, String)> = volumes(&vols)
        .iter()
        .map(|v| (v.display().to_string(), file_sha256(v)))
        .collect();
    assert_eq!(after, original);

    // Another creation time and another key, against --like, onto an empty medium.
    let new = t.path().join("new");
    let o = run_command(
        Command::new(ferry_pack_bin())
            .arg(&mirror)
            .args([
                "--out",
                new.to_str().unwrap(),
                "--volume-size",
                "64KiB",
                "--key",
            ])
            .arg(&other.private)
            .args(["--only-volume", "2", "--like", &like])
            .env("SOURCE_DATE_EPOCH", "1000"),
    );
    assert_exit(&o, 1, "--only-volume with another key and time");
    let e = stderr(&o);
    assert!(e.contains("--key: the original was signed by key"), "{e}");
    assert!(e.contains("creation time: the original has"), "{e}");
    assert!(volumes(&new).is_empty());

    // The same options: volume 2 again, byte for byte.
    let o = pack_with(
        &mirror,
        &new,
        "64KiB",
        &key.private,
        &["--only-volume", "2", "--like", &like],
    );
    assert_ok(&o, "--only-volume 2 --like, same options");
    let again = volumes(&new);
    assert_eq!(again.len(), 1);
    assert_eq!(file_sha256(&again[0]), original[1].1);
}

/// `keygen ~/.ferry/site.key`, the README's own step, failed when
/// ~/.ferry did not exist.
#[test]
fn keygen_creates_a_missing_directory_0700_and_never_writes_through_a_link() {
    let t = tempdir();
    let key = t.path().join("home/.ferry/site.key");
    let o = pack([OsStr::new("keygen"), key.as_os_str()]);
    assert_ok(&o, "keygen into a missing directory");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(
        names(key.parent().unwrap()),
        ["site.key", "site.key.pub"],
        "no temporary left"
    );
    // A link at the key's name (even a dangling one) is refused; its target is not created.
    let target = t.path().join("elsewhere");
    let link = t.path().join("link.key");
    symlink(&target, &link);
    let o = pack([OsStr::new("keygen"), link.as_os_str()]);
    assert_exit(&o, 1, "keygen onto a link");
    assert_mentions(
        &o,
        &["already exists", "refusing to overwrite"],
        "keygen onto a link",
    );
    assert!(!target.exists());
}

/// Each of these came out as a misleading message ("does not fit",
/// "unknown unit", "unsupported algorithm OID: 1.3.101.112", the Ed25519 OID itself).
#[test]
fn bad_outputs_sizes_and_keys_say_what_is_wrong_and_what_to_do() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let mirror = fixture("oci");

    let file = t.path().join("a-file");
    fs::write(&file, b"mine").unwrap();
    let o = pack_with(&mirror, &file, "1MiB", &key.private, &[]);
    assert_exit(&o, 1, "--out FILE");
    assert!(
        stderr(&o).contains(&format!(
            "--out {}: is a file, not a directory. Give a directory",
            file.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(&file).unwrap(), b"mine");

    for (size, says) in [
        (
            "1,5GB",
            "a decimal comma; sizes take a decimal point (1.5GB)",
        ),
        ("-1MiB", "a size cannot be negative (did you mean 1MiB?)"),
    ] {
        let out = t.path().join("o");
        let o = pack_with(&mirror, &out, size, &key.private, &[]);
        assert_exit(&o, 1, size);
        let e = stderr(&o);
        assert!(e.contains(says), "{size}: {e}");
        assert!(e.contains("write e.g. 4GiB, 4.7GB, 700MiB"), "{size}: {e}");
        assert!(!out.exists());
    }
    // `--volume-size=-1MiB` is the same value.
    let o = pack([
        mirror.as_os_str(),
        OsStr::new("--out"),
        t.path().join("o").as_os_str(),
        OsStr::new("--volume-size=-1MiB"),
        OsStr::new("--key"),
        key.private.as_os_str(),
    ]);
    assert_exit(&o, 1, "--volume-size=-1MiB");
    assert!(stderr(&o).contains("cannot be negative"), "{}", stderr(&o));

    for (algorithm, opts, found) in [
        (
            "RSA",
            "rsa_keygen_bits:2048",
            "is an RSA private key (algorithm OID 1.2.840.113549.1.1.1)",
        ),
        (
            "EC",
            "ec_paramgen_curve:P-256",
            "is an EC (ECDSA) private key",
        ),
    ] {
        let pem = t.path().join(format!("{algorithm}.pem"));
        let o = run(
            "openssl",
            [
                OsStr::new("genpkey"),
                OsStr::new("-algorithm"),
                OsStr::new(algorithm),
                OsStr::new("-pkeyopt"),
                OsStr::new(opts),
                OsStr::new("-out"),
                pem.as_os_str(),
            ],
        );
        assert_ok(&o, "openssl genpkey");
        let o = pack_with(&mirror, &t.path().join("o"), "1MiB", &pem, &[]);
        assert_exit(&o, 1, &format!("an {algorithm} key"));
        let e = stderr(&o);
        assert!(e.contains(found), "{e}");
        assert!(
            e.contains("ferry signs with Ed25519 keys in PKCS#8 PEM only. Make one with `ferry-pack keygen KEY` (or `openssl genpkey -algorithm ed25519 -out KEY`)"),
            "{e}"
        );
        assert!(!e.contains("1.3.101.112"), "{e}");
    }

    // The public half given as --key.
    let o = pack_with(&mirror, &t.path().join("o"), "1MiB", &key.public, &[]);
    assert_exit(&o, 1, "the public key as --key");
    assert!(
        stderr(&o).contains("is a public key; --key takes the private key (KEY, not KEY.pub"),
        "{}",
        stderr(&o)
    );

    let disk = tmpfs("1m");
    remount(&disk, "ro");
    let o = pack_with(&mirror, &disk.path, "100KiB", &key.private, &[]);
    assert_exit(&o, 1, "a read-only --out");
    let e = stderr(&o);
    assert!(
        e.contains("the file system is mounted read-only") && e.contains("Remount it read-write"),
        "{e}"
    );
    assert!(!e.contains("does not fit"), "{e}");
}
