//! Credentials of `ferry-unpack push`: a password on the command
//! line is never repeated, and docker's credential helpers (`credsStore`, `credHelpers`
//! in `~/.docker/config.json`) are asked — with their secret never printed, and a clear
//! message naming the helper when it is missing or fails — instead of being ignored.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use tests::registry::*;
use tests::*;

const USER: &str = "helper-user";
const PASSWORD: &str = "Kr3dential-Helper-Secret-31337";

fn site() -> Site {
    Site::pack(&fixture("oc-mirror"), "64KiB")
}

/// Nothing printed holds `secret`, nor its base64 with the user.
#[track_caller]
fn assert_never_shown(out: &Output, secret: &str, what: &str) {
    let text = out.text();
    assert!(
        !text.contains(secret),
        "{what}: the secret is shown\n{}",
        out.dump()
    );
    let b64 = b64(&format!("{USER}:{secret}"));
    assert!(
        !text.contains(&b64),
        "{what}: its base64 is shown\n{}",
        out.dump()
    );
}

/// Every file under `dir` that holds `secret`.
fn files_holding(dir: &Path, secret: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_holding(&p, secret));
        } else if fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(secret)) {
            found.push(p);
        }
    }
    found
}

/// `docker-credential-test` in `dir`: logs the server it is asked for to `asked.log`,
/// answers `answer` (a shell fragment run after reading stdin).
fn helper(dir: &Path, name: &str, answer: &str) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    let log = dir.join("asked.log");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\nprintf '%s\\n' \"$server\" >> '{}'\n{answer}\n",
        log.display()
    );
    let path = bin.join(format!("docker-credential-{name}"));
    fs::write(&path, script).expect("write helper");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod helper");
    bin
}

/// `~/.docker/config.json` in the sandbox's home.
fn docker_config(site: &Site, doc: serde_json::Value) {
    let dir = site.sandbox.dir.join("home/.docker");
    fs::create_dir_all(&dir).expect("mkdir .docker");
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&doc).expect("JSON"),
    )
    .expect("write config.json");
}

fn path_with(bin: &Path) -> OsString {
    let mut p = bin.as_os_str().to_owned();
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p
}

fn push_with_path(site: &Site, to: &str, extra: &[&str], bin: &Path) -> Output {
    let mut flags = vec!["--insecure", "--manifests-dir", "m"];
    flags.extend_from_slice(extra);
    let args = site.push_args(std::slice::from_ref(&site.out), to, &flags);
    site.sandbox.run_env(args, &[("PATH", &path_with(bin))])
}

#[test]
fn a_creds_store_helper_gives_the_credentials_and_its_secret_is_never_shown() {
    let reg = Registry::htpasswd(USER, PASSWORD);
    let site = site();
    let tmp = tempdir();
    let bin = helper(
        tmp.path(),
        "test",
        &format!(
            "printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\""
        ),
    );
    docker_config(
        &site,
        serde_json::json!({"auths": {reg.host(): {}}, "credsStore": "test"}),
    );
    let to = format!("{}/efk", reg.host());
    let out = push_with_path(&site, &to, &["--json"], &bin);
    assert_ok(&out, "push with credentials from docker-credential-test");
    assert_never_shown(&out, PASSWORD, "push --json");
    assert_eq!(
        fs::read_to_string(tmp.path().join("asked.log")).expect("the helper was run"),
        format!("{}\n", reg.host()),
        "the helper is asked for the registry's host[:port]"
    );
    assert!(!reg.catalog().is_empty(), "images went in");
    let leaks = files_holding(site.tmp.path(), PASSWORD);
    assert!(leaks.is_empty(), "files holding the secret: {leaks:?}");

    // A helper in credHelpers for this host wins over credsStore.
    let reg2 = Registry::htpasswd(USER, PASSWORD);
    let bin2 = helper(
        tmp.path(),
        "per-host",
        &format!("printf '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'"),
    );
    docker_config(
        &site,
        serde_json::json!({"credsStore": "absent-store", "credHelpers": {reg2.host(): "per-host"}}),
    );
    let out = push_with_path(&site, &format!("{}/efk", reg2.host()), &[], &bin2);
    assert_ok(&out, "push with credentials from credHelpers");
    assert_never_shown(&out, PASSWORD, "push with credHelpers");
}

#[test]
fn a_missing_or_failing_helper_is_named_with_what_to_do() {
    let reg = Registry::htpasswd(USER, PASSWORD);
    let site = site();
    let tmp = tempdir();
    let to = format!("{}/efk", reg.host());

    // Not installed.
    docker_config(&site, serde_json::json!({"credsStore": "nowhere"}));
    let out = push_with_path(&site, &to, &[], &tmp.path().join("bin"));
    assert_exit(&out, 2, "credsStore helper not installed");
    assert_mentions(
        &out,
        &[
            "credential helper docker-credential-nowhere (named by `credsStore` in ",
            "is not installed",
            "--authfile FILE",
        ],
        "names the helper and what to do",
    );
    assert!(
        !out.text().contains("no credentials were given"),
        "{}",
        out.dump()
    );

    // Failing with a message of its own.
    let bin = helper(tmp.path(), "broken", "echo 'keyring is locked' >&2; exit 1");
    docker_config(
        &site,
        serde_json::json!({"credHelpers": {reg.host(): "broken"}}),
    );
    let out = push_with_path(&site, &to, &[], &bin);
    assert_exit(&out, 2, "failing helper");
    assert_mentions(
        &out,
        &[
            "docker-credential-broken",
            "keyring is locked",
            "`credHelpers`",
        ],
        "names the helper and quotes it",
    );

    // Nothing stored for this registry: then no credentials, said as such.
    let bin = helper(
        tmp.path(),
        "empty",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    docker_config(&site, serde_json::json!({"credsStore": "empty"}));
    let out = push_with_path(&site, &to, &[], &bin);
    assert_exit(&out, 2, "helper without an entry");
    assert_mentions(
        &out,
        &[
            "no credentials were given",
            "give credentials for",
            "Searched: ",
        ],
        "says so, where it looked and how to give them",
    );
    assert_eq!(reg.catalog(), Vec::<String>::new(), "nothing went in");
}

#[test]
fn a_password_in_to_is_never_repeated() {
    // `--to user:pass@host` is refused without echoing the password, in
    // every output form, and nothing is written that holds it.
    let reg = Registry::htpasswd(USER, PASSWORD);
    let site = site();
    for extra in [&[][..], &["--json"][..], &["--dry-run"][..]] {
        let to = format!("{USER}:{PASSWORD}@{}/efk", reg.host());
        let out = push_with_path(&site, &to, extra, Path::new("/nonexistent"));
        assert_exit(&out, 2, &format!("--to with a password {extra:?}"));
        assert_never_shown(&out, PASSWORD, &format!("push {extra:?}"));
        assert_mentions(
            &out,
            &["user information", "--authfile"],
            "says why and what to do",
        );
        let out = site.receipt(&to, &["--insecure"]);
        assert_exit(&out, 2, "receipt --to with a password");
        assert_never_shown(&out, PASSWORD, "receipt");
    }
    let leaks = files_holding(site.tmp.path(), PASSWORD);
    assert!(leaks.is_empty(), "files holding the password: {leaks:?}");
}
