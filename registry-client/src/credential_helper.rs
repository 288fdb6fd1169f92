//! Docker credential helpers (`credsStore`, `credHelpers` in `config.json`): the protocol
//! of docker/docker-credential-helpers — run `docker-credential-<name> get`, write the
//! server address on its standard input, read `{"ServerURL","Username","Secret"}` from its
//! standard output. `Username` `<token>` means `Secret` is an identity token. A helper
//! that has nothing for the server exits non-zero and prints "credentials not found".
//!
//! The secret is never shown: not in errors (a helper's output is quoted only when it
//! failed, and then it holds its message, not a secret), not in `Debug`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::credentials::Credentials;
use crate::error::{excerpt, HelperFailure, RegistryError};

/// A helper that has not answered by then is stuck (waiting for a keyring unlock that no
/// one will type, say).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// What a helper said.
pub(crate) enum HelperAnswer {
    Found(Credentials),
    NotFound,
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<name> get` for `server`. `config` and `setting` (`credsStore`
/// or `credHelpers`) are for messages.
pub(crate) fn get(
    name: &str,
    server: &str,
    config: &Path,
    setting: &'static str,
) -> Result<HelperAnswer, RegistryError> {
    let program = format!("docker-credential-{name}");
    let fail = |problem: String| {
        RegistryError::CredentialHelper(Box::new(HelperFailure {
            helper: program.clone(),
            config: config.to_owned(),
            setting,
            server: server.to_owned(),
            problem,
        }))
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(fail(format!(
            "{:?} is not a helper name (letters, digits, '-', '_', '.')",
            excerpt(name.as_bytes())
        )));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not installed (not found on PATH)")
            } else {
                format!("{program} cannot be run: {e}")
            })
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives a broken pipe: its exit says more.
        let _ = stdin.write_all(server.as_bytes());
    }
    // Read both pipes on threads, so a helper that fills one is not blocked by us.
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.take(1 << 20).read_to_end(&mut v);
        }
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.take(1 << 16).read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(format!("cannot be waited for: {e}"))),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() {
        let said = String::from_utf8_lossy(&stdout).to_string() + &String::from_utf8_lossy(&stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(HelperAnswer::NotFound);
        }
        return Err(fail(format!(
            "failed ({status}): {}",
            excerpt(said.trim().as_bytes())
        )));
    }
    // Never quoted: on success the output holds the secret.
    let answer: HelperOutput = serde_json::from_slice(&stdout).map_err(|_| {
        fail("answered with something that is not {\"Username\", \"Secret\"} JSON".into())
    })?;
    if answer.secret.is_empty() {
        return Ok(HelperAnswer::NotFound);
    }
    Ok(HelperAnswer::Found(if answer.username == "<token>" {
        Credentials::identity_token(answer.username, answer.secret)
    } else {
        Credentials::basic(answer.username, answer.secret)
    }))
}
