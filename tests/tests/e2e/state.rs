//! The state directory as a site lives with it: `status` on a
//! fresh machine, with some volumes seen, and after a push; and two runs sharing one
//! `--state` at once (the second refuses, naming the first, instead of splitting the work).

use std::ffi::OsStr;
use std::time::Duration;

use tests::faults::{expected_images, Proc};
use tests::registry::*;
use tests::*;

/// Every file and directory under `dir` with its size, time, mode and inode.
fn tree(dir: &std::path::Path) -> Vec<(String, (u64, i128, u32, u64))> {
    let mut out: Vec<_> = snapshot(dir)
        .into_iter()
        .map(|(k, v)| (format!("{}/{k}", dir.display()), v))
        .collect();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(tree(&e.path()));
        }
    }
    out
}

fn status(state: &std::path::Path) -> std::process::Output {
    unpack([
        OsStr::new("status"),
        OsStr::new("--state"),
        state.as_os_str(),
    ])
}

#[test]
fn status_on_a_fresh_machine_says_nothing_was_pushed_yet() {
    let t = tempdir();
    let o = status(&t.path().join("never-made"));
    assert_ok(&o, "status before anything was pushed");
    assert_mentions(
        &o,
        &[
            "nothing pushed or verified yet",
            "never-made does not exist",
        ],
        "status on a fresh machine",
    );
    assert!(!o.text().contains("No such file"), "{}", o.dump());
}

#[test]
fn status_says_how_many_volumes_were_seen_and_which_and_shows_the_tags_pushed() {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "48KiB");
    let vols = site.volumes();
    let n = vols.len();
    assert!(n >= 3, "{n} volumes");
    let to = format!("{}/efk", reg.host());
    let last = vols.last().expect("a volume").clone();
    let o = site.push_volumes(
        &[last],
        &to,
        &["--insecure", "--manifests-dir", &site.path("m1")],
    );
    assert!(
        matches!(o.code(), 0 | 3),
        "push of the last volume alone\n{}",
        o.dump()
    );
    let st = status(&site.state);
    assert_ok(&st, "status after one volume");
    let rest: Vec<String> = (1..n).map(|k| k.to_string()).collect();
    // A count and volume numbers, never "N of N" for one volume out of N.
    assert_mentions(
        &st,
        &[&format!(
            "volumes seen and verified: 1 of {n} (volume {n}); not yet seen: volumes {}",
            rest.join(", ")
        )],
        "status after the last volume alone",
    );

    let o = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m2")]);
    assert_ok(&o, "push of every volume");
    let st = status(&site.state);
    assert_mentions(
        &st,
        &[&format!("volumes seen and verified: {n} of {n} (all)")],
        "status after every volume",
    );
    assert!(!st.text().contains("not yet seen"), "{}", st.dump());
    // Each image as a user would pull it: repository and tag.
    let expected = expected_images(&site.out, &site.key.public, "efk");
    for tag in expected.keys() {
        assert_mentions(
            &st,
            &[&format!("{}/{tag}", reg.host())],
            "status names every tag pushed",
        );
    }
}

#[test]
fn two_pushes_sharing_one_state_directory_at_once_the_second_refuses_naming_the_first() {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "48KiB");
    let to = format!("{}/efk", reg.host());
    let first = Proc::spawn(site.sandbox.command(site.push_args(
        std::slice::from_ref(&site.out),
        &to,
        &["--insecure", "--manifests-dir", &site.path("m1")],
    )));
    assert!(
        first.wait_for_lines("ferry-unpack: uploaded ", 1, Duration::from_secs(60)),
        "the first push never uploaded anything"
    );
    // Held still mid-push, so the second one certainly meets it.
    first.signal("STOP");
    let held = tree(&site.state);
    let second = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m2")]);
    let pid = first.pid();
    assert_exit(&second, 2, "a second push on the same --state");
    assert_mentions(
        &second,
        &[&format!(
            "another ferry-unpack (pid {pid}) is using state directory {}; wait for it to finish, or use another --state",
            site.state.display()
        )],
        "the second push names the first and what to do",
    );
    assert!(
        !second.text().contains("uploaded"),
        "the second push did work\n{}",
        second.dump()
    );
    // verify --state records into the same directory: refused the same way.
    let v = unpack([
        OsStr::new("verify"),
        site.out.as_os_str(),
        OsStr::new("--trust"),
        site.key.public.as_os_str(),
        OsStr::new("--state"),
        site.state.as_os_str(),
    ]);
    assert_exit(&v, 2, "verify --state while a push holds it");
    assert_mentions(&v, &[&format!("(pid {pid})")], "verify names the push");
    assert_eq!(
        tree(&site.state),
        held,
        "the refused runs changed the state"
    );
    first.signal("CONT");
    let (out, stderr) = first.wait(Duration::from_secs(120));
    let out = out.unwrap_or_else(|| panic!("the first push never finished\n{stderr}"));
    assert_ok(&out, "the first push, let go on");
    // A lock file left by a run that was killed (its pid written, no process holds it)
    // blocks nothing: the lock is the kernel's, and ends with the process.
    std::fs::write(site.state.join("lock"), "4194304\n").expect("a stale lock file");
    let again = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m3")]);
    assert_ok(&again, "the second push once the first is done");
    let expected = expected_images(&site.out, &site.key.public, "efk");
    tests::faults::assert_exactly_the_images(
        &reg,
        &expected,
        "after both pushes",
        tests::faults::Skopeo::Sample(2),
    );
}

/// Item 1: the state directory's names are predictable (the bundle id is reproducible); a
/// link planted at one is refused, never followed, and what it points at is left alone.
#[test]
fn a_link_planted_in_the_state_directory_is_not_written_through() {
    let reg = Registry::plain();
    let site = Site::pack(&fixture("oc-mirror"), "16MiB");
    let (_, manifest) = standalone_manifest(&site.out);
    let id = manifest["bundle_id"].as_str().expect("bundle_id");
    let bundle_dir = site.state.join(id.strip_prefix("sha256:").expect("sha256"));
    std::fs::create_dir_all(&bundle_dir).unwrap();
    let victim = site.tmp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, bundle_dir.join("last-push.json")).unwrap();
    // The names the state directory used for its temporaries before: `.NAME.PID.N.partial`.
    for pid in 1..64 {
        std::os::unix::fs::symlink(
            &victim,
            bundle_dir.join(format!(".bundle.json.{pid}.0.partial")),
        )
        .unwrap();
    }
    let to = format!("{}/efk", reg.host());
    let o = site.push(&to, &["--insecure", "--manifests-dir", &site.path("m")]);
    assert_ok(&o, "a push with links planted in its state directory");
    assert_mentions(
        &o,
        &[
            "could not record the push",
            "last-push.json is a symbolic link",
        ],
        "the push says the record was refused",
    );
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "the link's target was written"
    );
    assert!(
        std::fs::symlink_metadata(bundle_dir.join("last-push.json"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert!(
        bundle_dir.join("bundle.json").is_file(),
        "the manifest is kept as a file"
    );
}
