//! A docker credential helper for tests: `docker-credential-test`, a shell script that
//! answers `get` for one server the way docker/docker-credential-helpers do, and a docker
//! `config.json` whose `credHelpers` send a host to it.
//!
//! The protocol (docker-credential-helpers `client/client.go`): the program is run with
//! `get`, reads the server on standard input, and prints
//! `{"ServerURL":…,"Username":…,"Secret":…}`; for a server it has nothing for it prints
//! `credentials not found in native keychain` and exits 1.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The helper's name as `credHelpers`/`credsStore` spell it (`docker-credential-test`).
pub const HELPER_NAME: &str = "test";

/// A `docker-credential-test` written by [`CredentialHelper::write`].
pub struct CredentialHelper {
    /// The directory holding the program: put it first on `PATH` ([`Self::path_env`]).
    pub bin_dir: PathBuf,
    /// The program itself.
    pub program: PathBuf,
    /// Every server it was asked for, one a line, in order.
    pub log: PathBuf,
}

impl CredentialHelper {
    /// Writes `<dir>/bin/docker-credential-test`, which answers `get` for `host`
    /// (`127.0.0.1:PORT`; also as `http://…`, `https://…` or with a trailing `/`, as
    /// docker may spell it) with `user` and `secret`, and "credentials not found in native
    /// keychain" (exit 1) for any other server. Any other command exits 1 with a message.
    pub fn write(dir: &Path, host: &str, user: &str, secret: &str) -> CredentialHelper {
        let bin_dir = dir.join("bin");
        std::fs::create_dir_all(&bin_dir).expect("mkdir the helper's bin");
        let program = bin_dir.join(format!("docker-credential-{HELPER_NAME}"));
        let log = dir.join(format!("docker-credential-{HELPER_NAME}.log"));
        let answer =
            serde_json::json!({"ServerURL": host, "Username": user, "Secret": secret}).to_string();
        let script = format!(
            "#!/bin/sh\n\
             # docker-credential-{HELPER_NAME}, written by ferry's test kit (test-support).\n\
             if [ \"$1\" != get ]; then\n\
             \x20 echo \"docker-credential-{HELPER_NAME}: only get is supported, not $1\" >&2\n\
             \x20 exit 1\n\
             fi\n\
             server=$(cat)\n\
             printf '%s\\n' \"$server\" >> {log}\n\
             case \"$server\" in\n\
             \x20 {h}|{h}/|http://{h}|http://{h}/|https://{h}|https://{h}/)\n\
             \x20   printf '%s\\n' {answer} ;;\n\
             \x20 *)\n\
             \x20   echo 'credentials not found in native keychain'\n\
             \x20   exit 1 ;;\n\
             esac\n",
            log = sh_quote(&log.to_string_lossy()),
            h = sh_quote(host),
            answer = sh_quote(&answer),
        );
        std::fs::write(&program, script).expect("write docker-credential-test");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))
            .expect("chmod docker-credential-test");
        CredentialHelper {
            bin_dir,
            program,
            log,
        }
    }

    /// `PATH` with the helper's directory first, for the process that is to find it.
    pub fn path_env(&self) -> OsString {
        let mut p = self.bin_dir.as_os_str().to_owned();
        p.push(":");
        p.push(std::env::var_os("PATH").unwrap_or_default());
        p
    }

    /// The servers it was asked for, in order.
    pub fn asked(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Writes `<dir>/config.json`, a docker config whose `credHelpers` map each host to a
/// helper name (usually [`HELPER_NAME`]); point `DOCKER_CONFIG` at `dir`, or pass the file
/// as an auth file. Its path.
pub fn write_docker_config(dir: &Path, cred_helpers: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir the docker config dir");
    let helpers: serde_json::Map<String, serde_json::Value> = cred_helpers
        .iter()
        .map(|(host, name)| ((*host).to_owned(), serde_json::Value::from(*name)))
        .collect();
    let doc = serde_json::json!({"auths": {}, "credHelpers": helpers});
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&doc).expect("config.json is JSON"),
    )
    .expect("write config.json");
    path
}

/// `'…'` for sh, a `'` inside written as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
