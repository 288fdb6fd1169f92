//! Where the pull's images come from and with what credentials (README "Pull from
//! registries"): Basic auth from every place an auth file is looked for and from a docker
//! credential helper, Bearer tokens from a token server (and renewed when they run out),
//! wrong credentials refused by name and never shown; registries.conf mirrors tried before
//! the location and never given the source's credentials; Docker Hub short names; TLS
//! with `--ca-cert`, plain HTTP only with `--insecure`.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use test_support::credential_helper::{write_docker_config, CredentialHelper, HELPER_NAME};
use test_support::proxy::{Proxy, ProxyOptions};
use tests::registry::*;
use tests::source::*;
use tests::*;

use crate::pull::{
    assert_pulled, bundle_images, cache_blobs, conf_text, events, image_blobs, of_type, text,
    Connected,
};

/// Standard base64 (RFC 4648 §4), for auth files.
fn b64(input: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A podman/docker auth.json with `user:password` for `host`.
fn authfile(path: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    let doc = serde_json::json!({"auths": {host: {"auth": b64(&format!("{user}:{password}"))}}});
    fs::write(path, doc.to_string()).expect("write auth.json");
    path.to_owned()
}

/// Panics if the output shows the password or the `user:password` pair in any form.
#[track_caller]
fn assert_no_secret(out: &Output, user: &str, password: &str) {
    let t = out.text();
    for secret in [password.to_owned(), b64(&format!("{user}:{password}"))] {
        assert!(
            !t.contains(&secret),
            "the output shows a credential\n{}",
            out.dump()
        );
    }
}

/// Wrong credentials: exit 1, the image and the registry named, the refusal said, the
/// secret never shown, nothing recorded.
#[track_caller]
fn assert_refused(
    c: &Connected,
    out: &Output,
    host: &str,
    from: &str,
    (user, password): (&str, &str),
) {
    assert_exit(out, 1, "wrong credentials");
    let t = out.text();
    assert!(t.contains(host), "the registry is named\n{}", out.dump());
    assert!(
        t.contains("rejected") || t.contains("refused"),
        "the message says the credentials were refused\n{}",
        out.dump()
    );
    assert!(
        t.contains(&format!("{user:?}")),
        "which credentials\n{}",
        out.dump()
    );
    assert!(
        t.contains(from),
        "where they came from ({from})\n{}",
        out.dump()
    );
    assert_no_secret(out, user, password);
    assert!(c.index().is_empty(), "nothing recorded: {:?}", c.index());
}

/// Basic auth (distribution's htpasswd) with `--authfile` (an auth.json, an OpenShift
/// pull-secret.json, a key with a scheme), `$REGISTRY_AUTH_FILE` and podman's
/// `~/.config/containers/auth.json`, then with a docker credential
/// helper named in `credHelpers` of `$DOCKER_CONFIG/config.json`; wrong credentials each
/// way are refused by name.
#[test]
fn basic_auth_from_an_authfile_and_from_a_credential_helper() {
    let (user, password) = ("src-user", "src-Pa55-w0rd");
    let source = SourceRegistry::fill(Registry::htpasswd(user, password));
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let host = source.registry.host();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));

    let anonymous = c.pull(&[]);
    assert_exit(
        &anonymous,
        1,
        "no credentials for a registry that wants them",
    );
    assert_mentions(&anonymous, &[&host, "no credentials"], "anonymous refused");

    let bad = authfile(&c.path("bad-auth.json"), &host, user, "not-the-password");
    let out = c.pull(&["--authfile", bad.to_str().expect("utf-8")]);
    assert_refused(
        &c,
        &out,
        &host,
        bad.to_str().expect("utf-8"),
        (user, "not-the-password"),
    );

    let good = authfile(&c.path("auth.json"), &host, user, password);
    let out = c.pull(&["--authfile", good.to_str().expect("utf-8")]);
    assert_no_secret(&out, user, password);
    assert_pulled(&c, &image, &out, "pull --authfile (Basic)");

    // An OpenShift pull-secret.json (other registries beside, an email per entry) and a
    // docker config.json whose key has a scheme (`https://host`, as `docker login` writes
    // some) work as --authfile too.
    let secret = c.path("pull-secret.json");
    let auth = b64(&format!("{user}:{password}"));
    fs::write(
        &secret,
        serde_json::json!({"auths": {
            "cloud.openshift.com": {"auth": b64("x:y"), "email": "someone@example.com"},
            host.clone(): {"auth": auth, "email": "someone@example.com"},
        }})
        .to_string(),
    )
    .expect("write pull-secret.json");
    let scheme = c.path("config-scheme.json");
    fs::write(
        &scheme,
        serde_json::json!({"auths": {format!("https://{host}"): {"auth": auth}}}).to_string(),
    )
    .expect("write config-scheme.json");
    for (what, file) in [("pull-secret.json", &secret), ("an https:// key", &scheme)] {
        let fresh = Connected::new(&source, &ImageSet::of(&[&image.reference]));
        let out = fresh.pull(&["--authfile", file.to_str().expect("utf-8")]);
        assert_no_secret(&out, user, password);
        assert_pulled(&fresh, &image, &out, &format!("pull --authfile {what}"));
    }

    // The same file found the other ways: $REGISTRY_AUTH_FILE, then podman's place in HOME.
    let by_env = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    let mut cmd = by_env.pull_command(&[]);
    cmd.env("REGISTRY_AUTH_FILE", &good);
    let out = run_command(&mut cmd);
    assert_no_secret(&out, user, password);
    assert_pulled(&by_env, &image, &out, "pull with $REGISTRY_AUTH_FILE");
    let by_home = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    let podman = by_home.sandbox.dir.join("home/.config/containers");
    fs::create_dir_all(&podman).expect("mkdir");
    fs::copy(&good, podman.join("auth.json")).expect("copy auth.json");
    let out = by_home.pull(&[]);
    assert_no_secret(&out, user, password);
    assert_pulled(
        &by_home,
        &image,
        &out,
        "pull with ~/.config/containers/auth.json",
    );

    // A credential helper, in a fresh cache.
    let helped = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    let docker = helped.path("docker");
    write_docker_config(&docker, &[(&host, HELPER_NAME)]);
    let run_helped = |helper: &CredentialHelper| {
        let mut cmd = helped.pull_command(&[]);
        cmd.env("DOCKER_CONFIG", &docker)
            .env("PATH", helper.path_env());
        run_command(&mut cmd)
    };
    let wrong = CredentialHelper::write(&helped.path("wrong"), &host, user, "helper-wrong");
    let out = run_helped(&wrong);
    assert_refused(
        &helped,
        &out,
        &host,
        "docker-credential-test",
        (user, "helper-wrong"),
    );
    let helper = CredentialHelper::write(&helped.path("right"), &host, user, password);
    let out = run_helped(&helper);
    assert_no_secret(&out, user, password);
    assert_pulled(&helped, &image, &out, "pull with docker-credential-test");
    assert!(
        helper.asked().iter().any(|s| s.contains(&host)),
        "the helper was asked for {host}: {:?}",
        helper.asked()
    );
}

/// Bearer tokens: the proxy in front of the source demands tokens from its own token
/// server, which issues them against `--authfile`'s credentials; wrong ones are refused.
#[test]
fn bearer_auth_with_a_token_server() {
    let (user, password) = ("token-user", "t0ken-Secret");
    let source = SourceRegistry::start();
    let proxy = Proxy::start(&source.registry.host(), ProxyOptions::default());
    proxy.require_bearer(user, password);
    let image = source.multi_arch().clone();
    let c = Connected::via(&source, &proxy.host(), &ImageSet::of(&[&image.reference]));

    let bad = authfile(&c.path("bad-auth.json"), &proxy.host(), user, "wrong-t0ken");
    let out = c.pull(&["--authfile", bad.to_str().expect("utf-8")]);
    assert_refused(
        &c,
        &out,
        &proxy.host(),
        bad.to_str().expect("utf-8"),
        (user, "wrong-t0ken"),
    );
    assert_eq!(proxy.tokens_issued(), 0);

    let good = authfile(&c.path("auth.json"), &proxy.host(), user, password);
    let out = c.pull(&["--authfile", good.to_str().expect("utf-8")]);
    assert_no_secret(&out, user, password);
    assert_pulled(&c, &image, &out, "pull --authfile (Bearer)");
    assert!(proxy.tokens_issued() > 0, "tokens were asked for");
    let (_, blobs) = image_blobs(&source.registry, &image, |_| true);
    for b in &blobs {
        let gets = proxy.blob_gets(b);
        assert!(
            gets.iter().any(|r| r.status == Some(200)),
            "{b} was fetched with a token: {gets:?}"
        );
        assert!(c.blobs().contains(b), "{b} is in the cache");
    }
}

/// `[[registry.mirror]]` is tried before the location: with the mirror up, it serves
/// manifests and blobs (and `image_resolved` names it); with the mirror down, the location
/// does, soon. Either way the bundle records the source as the set wrote it.
#[test]
fn a_registries_conf_mirror_is_tried_first_and_the_location_after_it() {
    let source = SourceRegistry::start();
    let mirror = Proxy::start(&source.registry.host(), ProxyOptions::default());
    let images = [
        source.multi_arch().clone(),
        source
            .image("openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81")
            .clone(),
    ];
    let refs: Vec<&str> = images.iter().map(|i| i.reference.as_str()).collect();
    let c = Connected::new(&source, &ImageSet::of(&refs));
    conf_text(
        &c.conf,
        &format!(
            "\n[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \"{}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            source.registry.host(),
            mirror.host()
        ),
    );
    let out = c.pull(&["--json"]);
    assert_ok(&out, "pull through the mirror");
    let ev = events(&out);
    for r in of_type(&ev, "image_resolved") {
        assert_eq!(r["endpoint"], mirror.host(), "the mirror answered: {r}");
    }
    for i in &images {
        let (_, blobs) = image_blobs(&source.registry, i, |_| true);
        for b in &blobs {
            assert!(!mirror.blob_gets(b).is_empty(), "{b} came from the mirror");
        }
    }

    // The mirror gone: a fresh cache fills from the location.
    mirror.set_down(true);
    let mut fresh = Connected::new(&source, &ImageSet::of(&refs));
    fresh.conf = c.conf.clone();
    let started = std::time::Instant::now();
    let out = fresh.pull(&["--json"]);
    assert_ok(&out, "pull with the mirror down");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "a mirror that is down held the pull {:?}",
        started.elapsed()
    );
    for r in of_type(&events(&out), "image_resolved") {
        assert_eq!(
            r["endpoint"],
            source.registry.host(),
            "the location answered: {r}"
        );
    }
    let vols = fresh.path("vols");
    assert_ok(&fresh.pack(&vols, &[]), "pack");
    let sources: BTreeSet<String> = bundle_images(&vols)
        .iter()
        .map(|i| text(&i["source"]).to_owned())
        .collect();
    let want: BTreeSet<String> = refs.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(sources, want, "the sources are as the set wrote them");
}

/// A Docker Hub short name (`busybox:1.36`) means `docker.io/library/busybox:1.36`: the
/// registries.conf entry for `docker.io` is what serves it, and that is the name recorded.
#[test]
fn a_docker_hub_short_name_is_docker_io_library() {
    let source = SourceRegistry::start();
    let from = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let hub = format!("{}/library/busybox:1.36", source.registry.host());
    let copy = skopeo([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}", from.location),
        &format!("docker://{hub}"),
    ]);
    assert_ok(&copy, "skopeo copy into library/busybox");
    let c = Connected::new(&source, &ImageSet::of(&["busybox:1.36"]));
    write_registries_conf(&c.conf, &[("docker.io", &source.registry.host())]);
    let out = c.pull(&["--json"]);
    assert_ok(&out, "pull busybox:1.36");
    let ev = events(&out);
    let resolved = of_type(&ev, "image_resolved");
    assert_eq!(resolved.len(), 1, "{}", out.dump());
    assert_eq!(resolved[0]["source"], "docker.io/library/busybox:1.36");
    assert_eq!(resolved[0]["digest"], from.digest.as_str());
    let vols = c.path("vols");
    assert_ok(&c.pack(&vols, &[]), "pack");
    let images = bundle_images(&vols);
    assert_eq!(images[0]["source"], "docker.io/library/busybox:1.36");
}

/// A source over TLS with a CA of its own: without `--ca-cert` the certificate is refused
/// (exit 1, naming the registry and TLS); with it the pull works.
#[test]
fn a_tls_source_needs_its_ca_and_works_with_ca_cert() {
    let source = SourceRegistry::fill(Registry::tls());
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    // Verified TLS: no `insecure` here.
    conf_text(
        &c.conf,
        &format!(
            "\n[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \"{}\"\n",
            source.registry.host()
        ),
    );
    let out = c.pull(&["--retry-for", "1s"]);
    assert_exit(&out, 1, "a certificate from an unknown CA");
    assert_mentions(
        &out,
        &[
            &source.registry.host(),
            "TLS",
            "not signed by a trusted CA",
            "--ca-cert FILE",
        ],
        "TLS is named, and the flag that cures it",
    );
    let ca = &source
        .registry
        .ca
        .as_ref()
        .expect("a TLS registry has a CA")
        .ca_cert;
    let out = c.pull(&["--ca-cert", ca.to_str().expect("utf-8")]);
    assert_pulled(&c, &image, &out, "pull --ca-cert");
}

/// A plain-HTTP source that registries.conf does not mark `insecure`: refused without
/// `--insecure`, naming the registry and plain HTTP (nothing is sent in the clear
/// unasked); with `--insecure` the pull works.
#[test]
fn a_plain_http_source_needs_insecure() {
    let source = SourceRegistry::start();
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    conf_text(
        &c.conf,
        &format!(
            "\n[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \"{}\"\n",
            source.registry.host()
        ),
    );
    let out = c.pull(&["--retry-for", "1s"]);
    assert_exit(&out, 1, "plain HTTP without --insecure");
    assert_mentions(
        &out,
        &[&source.registry.host(), "plain HTTP"],
        "the registry and plain HTTP are named",
    );
    assert!(c.index().is_empty());
    let out = c.pull(&["--insecure"]);
    assert_pulled(&c, &image, &out, "pull --insecure");
}

/// Tokens that run out mid-pull (the token server forgets them) are asked for again; the
/// pull finishes.
#[test]
fn bearer_tokens_that_run_out_mid_pull_are_renewed() {
    let (user, password) = ("token-user", "t0ken-Secret");
    let source = SourceRegistry::start();
    let proxy = Proxy::start(
        &source.registry.host(),
        ProxyOptions {
            bytes_per_second: Some(60_000),
            ..ProxyOptions::default()
        },
    );
    proxy.require_bearer(user, password);
    let c = Connected::via(&source, &proxy.host(), &ImageSet::of(&source.references()));
    let auth = authfile(&c.path("auth.json"), &proxy.host(), user, password);
    let mut p =
        tests::faults::Proc::spawn(c.pull_command(&["--authfile", auth.to_str().expect("utf-8")]));
    let target = proxy.bytes_sent() + 40_000;
    assert!(
        p.wait_until(std::time::Duration::from_secs(30), || proxy.bytes_sent()
            >= target),
        "the pull did not get going"
    );
    let before = proxy.tokens_issued();
    proxy.expire_tokens();
    proxy.throttle(None);
    let (out, stderr) = p.wait(std::time::Duration::from_secs(60));
    let out = out.unwrap_or_else(|| panic!("the pull hung: {stderr}"));
    assert_ok(&out, "a pull whose tokens ran out");
    assert!(
        proxy.tokens_issued() > before,
        "no new token was asked for ({before} before, {} after)",
        proxy.tokens_issued()
    );
    assert_eq!(c.index().len(), source.images.len());
    cache_blobs(&c.cache);
}

/// Credentials are looked up for each endpoint's own host: a registries.conf mirror never
/// gets the source's credentials, even when it serves the images.
#[test]
fn a_mirror_never_gets_the_sources_credentials() {
    let (user, password) = ("src-user", "src-Pa55-w0rd");
    let source = SourceRegistry::fill(Registry::htpasswd(user, password));
    // The mirror: a proxy that lets anyone read (its requests reach the registry with the
    // client's own Authorization, which the test reads from its log).
    let mirror = Proxy::start(&source.registry.host(), ProxyOptions::default());
    let image = source
        .image("openshift4/ose-elasticsearch-proxy:v4.6")
        .clone();
    let c = Connected::new(&source, &ImageSet::of(&[&image.reference]));
    conf_text(
        &c.conf,
        &format!(
            "\n[[registry]]\nprefix = \"registry.redhat.io\"\nlocation = \"{}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            source.registry.host(),
            mirror.host()
        ),
    );
    let auth = authfile(
        &c.path("auth.json"),
        &source.registry.host(),
        user,
        password,
    );
    let out = c.pull(&["--authfile", auth.to_str().expect("utf-8")]);
    // The mirror cannot answer without credentials (the registry behind it wants them),
    // so the location serves; either way the mirror saw no credentials of the source.
    assert_pulled(
        &c,
        &image,
        &out,
        "pull with a mirror and the source's credentials",
    );
    assert!(!mirror.requests().is_empty(), "the mirror was tried first");
    for r in mirror.requests() {
        assert!(
            r.header("authorization").is_none(),
            "the mirror got credentials: {} {} with {:?}",
            r.method,
            r.target,
            r.header("authorization")
        );
    }
}
