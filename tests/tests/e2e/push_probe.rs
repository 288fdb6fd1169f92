//! The first contact of `ferry-unpack push` with the registry: one
//! `GET /v2/` before anything else, and a wrong address said once, plainly, with exit 2 —
//! not "the registry stopped answering … run the same command again" once per image.
//! Every case against a real listener on 127.0.0.1: docker-registry plain and TLS, a TCP
//! listener that speaks something else, an HTTP server that is not a registry, a port
//! nothing listens on, and a name that does not resolve.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use tests::registry::*;
use tests::*;

fn site() -> Site {
    Site::pack(&fixture("oc-mirror"), "64KiB")
}

/// Pushes every volume to `to` with `extra` flags; returns the output and how long it took.
fn push(site: &Site, to: &str, extra: &[&str]) -> (Output, Duration) {
    let mut args = vec!["--manifests-dir", "m"];
    args.extend_from_slice(extra);
    let t0 = Instant::now();
    let out = site.push(to, &args);
    (out, t0.elapsed())
}

/// Exit 2, `needle` said exactly once, no per-image line, no panic, and quickly.
#[track_caller]
fn assert_said_once(out: &Output, took: Duration, needle: &str, what: &str) {
    assert_exit(out, 2, what);
    let text = out.text();
    assert_eq!(
        text.matches(needle).count(),
        1,
        "{what}: {needle:?} is not said exactly once\n{}",
        out.dump()
    );
    for noise in [
        "stopped answering",
        "FAILED",
        "panicked",
        "run the same command",
    ] {
        assert!(
            !text.contains(noise),
            "{what}: says {noise:?}\n{}",
            out.dump()
        );
    }
    assert!(
        took < Duration::from_secs(20),
        "{what}: took {took:?} to say so\n{}",
        out.dump()
    );
}

#[test]
fn a_plain_http_registry_without_insecure_says_to_give_insecure() {
    let reg = Registry::plain();
    let site = site();
    let (out, took) = push(&site, &format!("{}/x", reg.host()), &[]);
    assert_said_once(
        &out,
        took,
        "the registry speaks plain HTTP, not HTTPS",
        "plain registry, no --insecure",
    );
    assert_mentions(&out, &["give --insecure"], "what to do");
    assert_eq!(reg.catalog(), Vec::<String>::new(), "nothing went in");
}

#[test]
fn a_plain_http_registry_reached_by_name_is_usable_with_insecure() {
    let reg = Registry::plain();
    let site = site();
    // `127.1` is a name the client does not take for loopback (it is neither `localhost`
    // nor a dotted quad), so it is treated like a lab registry's DNS name: TLS first, then
    // plain HTTP. The resolver maps it to 127.0.0.1 (inet_aton's short form).
    let to = format!("127.1:{}/x", reg.port);
    let (out, _) = push(&site, &to, &["--insecure"]);
    assert_ok(&out, "plain registry by name, --insecure");
    assert_mentions(
        &out,
        &[&format!(
            "pushing to http://127.1:{} over plain HTTP",
            reg.port
        )],
        "says plain HTTP is in use",
    );
    assert!(!reg.catalog().is_empty(), "images went in");

    // And by an explicit http:// (without the fallback), the same.
    let reg = Registry::plain();
    let (out, _) = push(
        &site,
        &format!("http://127.1:{}/y", reg.port),
        &["--insecure"],
    );
    assert_ok(&out, "http:// and --insecure");
    assert!(!reg.catalog().is_empty(), "images went in");

    // http:// without --insecure: refused before anything is sent.
    let (out, took) = push(&site, &format!("http://127.1:{}/z", reg.port), &[]);
    assert_said_once(
        &out,
        took,
        "only used in insecure mode (--insecure)",
        "http:// alone",
    );
}

#[test]
fn a_tls_registry_with_insecure_is_reached_over_unverified_tls_and_says_so() {
    let reg = Registry::tls();
    let site = site();
    // `localhost` is loopback: plain HTTP is tried first, the server answers as a TLS
    // server does, and TLS (unverified: --insecure) is used instead.
    let (out, _) = push(&site, &format!("localhost:{}/x", reg.port), &["--insecure"]);
    assert_ok(&out, "TLS registry, --insecure");
    assert_mentions(
        &out,
        &[&format!(
            "https://localhost:{} speaks TLS; its certificate is not verified",
            reg.port
        )],
        "says which of the two --insecure allows is in use",
    );

    // Plain HTTP asked for explicitly: said, with what to do.
    let (out, took) = push(
        &site,
        &format!("http://localhost:{}/y", reg.port),
        &["--insecure"],
    );
    assert_said_once(
        &out,
        took,
        "the registry speaks HTTPS (TLS), not plain HTTP",
        "http:// to a TLS registry",
    );
    assert_mentions(&out, &["drop http:// from --to"], "what to do");
}

/// A listener that answers every connection with `reply` (after reading what comes),
/// until dropped with the test.
fn listener(reply: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply);
            });
        }
    });
    port
}

#[test]
fn a_port_that_is_not_a_registry_is_named_as_such() {
    let site = site();
    // Something that is not HTTP (an SSH server's greeting), with and without --insecure.
    let ssh = listener(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    for extra in [&[][..], &["--insecure"][..]] {
        let (out, took) = push(&site, &format!("127.0.0.1:{ssh}/x"), extra);
        assert_said_once(
            &out,
            took,
            "this is not a container registry",
            &format!("an SSH port {extra:?}"),
        );
        assert_mentions(&out, &["check the host and port in --to"], "what to do");
    }
    // A web server that is not a registry.
    let web = listener(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 22\r\nConnection: close\r\n\r\n<html>not here</html>\n",
    );
    let (out, took) = push(&site, &format!("127.0.0.1:{web}/x"), &["--insecure"]);
    assert_said_once(
        &out,
        took,
        "this is not a container registry",
        "a web server",
    );
    assert_mentions(&out, &["no Distribution API (v2) here"], "why");
}

#[test]
fn a_refused_connection_and_an_unknown_name_are_said_once() {
    let site = site();
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    // --retry-for 60 (the default): refusal at the first contact is said at once, not
    // after a minute of retries.
    let (out, took) = push(&site, &format!("127.0.0.1:{port}/x"), &["--insecure"]);
    assert_said_once(
        &out,
        took,
        "connection refused: nothing listens on that port",
        "refused",
    );
    assert_mentions(
        &out,
        &[&format!("http://127.0.0.1:{port}/v2/"), "check the port"],
        "names the URL and what to do",
    );

    let (out, took) = push(&site, "nonexistent.invalid:5000/x", &[]);
    assert_said_once(
        &out,
        took,
        "the registry's name nonexistent.invalid does not resolve",
        "unknown name",
    );
    assert_mentions(&out, &["check the host name in --to"], "what to do");
}
