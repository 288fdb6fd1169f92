//! The cases of the copies this crate replaces (format-spec `digest.rs`/`manifest.rs`,
//! registry-client `reference.rs`, mirror `digest.rs`/`reference.rs`/`manifest.rs`, replay
//! `mapping.rs`), run against the one grammar: where a copy agreed, the same answer; where
//! copies drifted, the answer chosen, with the copy that answered otherwise named.

use oci::name::{check_host, check_path_component, check_repository, check_tag, is_repository};
use oci::{Digest, DigestError, Reference, TagOrDigest, Written};

/// format-spec `digest.rs` round_trips_and_rejects_other_spellings: unchanged.
#[test]
fn format_spec_digest() {
    let d = Digest::of(b"abc");
    let text = d.to_string();
    assert_eq!(
        text,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(Digest::parse(&text).unwrap(), d);
    assert!(Digest::parse(&text.to_uppercase()).is_err());
    assert!(Digest::parse(&text[..70]).is_err());
    assert!(Digest::parse("sha512:00").is_err());
    assert!(Digest::parse(&text.replace("sha256:", "")).is_err());
    // `Digest([0; 32])` and `.0` still work: the bundle seal uses them.
    assert_eq!(Digest([0; 32]).hex(), "0".repeat(64));
}

/// registry-client `reference.rs` tests. One change: sha512 digests, which
/// registry-client accepted (and verified with SHA-512), are refused.
#[test]
fn registry_client_names() {
    for ok in [
        "a",
        "library/busybox",
        "ocp/release-images",
        "a.b_c__d---e/f0",
        "x/y/z/w",
    ] {
        assert!(is_repository(ok), "{ok}");
    }
    for bad in [
        "", "A", "a/", "/a", "a//b", "a/../b", "..", "a..b", "a___b", "a-", "_a", "a?b", "a#b",
        "a b", "a%2fb",
    ] {
        assert!(!is_repository(bad), "{bad}");
    }
    assert!(!is_repository(&"a".repeat(256)));
    assert!(check_tag("v4.14.0-x86_64").is_ok());
    assert!(check_tag("_").is_ok());
    assert!(check_tag(&"a".repeat(128)).is_ok());
    assert!(check_tag(&"a".repeat(129)).is_err());
    assert!(check_tag(".hidden").is_err());
    assert!(check_tag("-x").is_err());
    assert!(check_tag("a/b").is_err());
    assert_eq!(
        TagOrDigest::parse("latest").unwrap(),
        TagOrDigest::Tag("latest".into())
    );
    for bad in [
        "",
        "sha256:",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "sha256:../../../../etc/passwd",
    ] {
        assert!(Digest::parse(bad).is_err(), "{bad}");
    }
    // Changed: registry-client took this one.
    let sha512 = format!("sha512:{}", "a".repeat(128));
    assert!(matches!(
        Digest::parse(&sha512),
        Err(DigestError::Sha512 { .. })
    ));
    assert!(TagOrDigest::parse(&sha512).is_err());
}

/// mirror `reference.rs` splits_references / qualifies_sources. mirror splits with
/// [`Written`] (nothing normalised, as its copy did): same hosts, paths and tags; what
/// changed is that digests are checked (mirror kept `sha256:abc` as text). [`Reference`]
/// gives what `qualify_source` added for names without a host.
#[test]
fn mirror_references() {
    let w = Written::parse("ns/name").unwrap();
    assert_eq!((w.host, w.path), (None, "ns/name"));
    let w = Written::parse("example.com").unwrap();
    assert_eq!((w.host, w.path), (None, "example.com"));
    assert!(Written::parse("localhost:5000/a/b@sha256:abc").is_err());
    let r = Reference::parse("registry.redhat.io/openshift4/ose-cli:v4.14").unwrap();
    assert_eq!(
        (r.host(), r.path(), r.tag()),
        ("registry.redhat.io", "openshift4/ose-cli", Some("v4.14"))
    );
    assert_eq!(r.digest(), None);
    let d = Digest::of(b"m");
    let r = Reference::parse(&format!("localhost:5000/a/b@{d}")).unwrap();
    assert_eq!(
        (r.host(), r.path(), r.tag(), r.digest()),
        ("localhost:5000", "a/b", None, Some(d))
    );
    assert!(Reference::parse("localhost:5000/a/b@sha256:abc").is_err());
    let r = Reference::parse("ns/name").unwrap();
    assert_eq!((r.host(), r.path()), ("docker.io", "ns/name"));
    let r = Reference::parse("localhost/x:1").unwrap();
    assert_eq!((r.host(), r.path(), r.tag()), ("localhost", "x", Some("1")));
    // A lone host-looking name without a path is a repository (mirror agreed).
    let r = Reference::parse("example.com").unwrap();
    assert_eq!((r.host(), r.path()), ("docker.io", "library/example.com"));
    // The port is not a tag.
    let r = Reference::parse("host:5000/repo").unwrap();
    assert_eq!((r.host(), r.tag()), ("host:5000", None));
    let r = Reference::parse("host:5000/repo:t").unwrap();
    assert_eq!((r.host(), r.tag()), ("host:5000", Some("t")));
    // qualify_source
    assert_eq!(
        Reference::parse("quay.io/a/b:1").unwrap().to_string(),
        "quay.io/a/b:1"
    );
    assert_eq!(
        Reference::parse("busybox:1").unwrap().to_string(),
        "docker.io/library/busybox:1"
    );
    assert_eq!(
        Reference::parse(&format!("a/b@{d}")).unwrap().to_string(),
        format!("docker.io/a/b@{d}")
    );
}

/// replay `mapping.rs`: where the copies had drifted apart. replay's component check accepted
/// what the distribution grammar (and format-spec) refuses.
#[test]
fn replay_components_follow_the_one_grammar() {
    for drifted in ["ab-", "a..b", "a___b", "a.-b", "a_"] {
        assert!(
            check_path_component(drifted).is_err(),
            "{drifted} is not a repository path component"
        );
        assert!(check_repository(&format!("org/{drifted}")).is_err());
    }
    for ok in ["efk-mirror", "a__b", "a--b", "openshift4-ose-x"] {
        assert!(check_path_component(ok).is_ok(), "{ok}");
    }
    // Target hosts: the ones replay's tests use.
    for host in [
        "registry.internal:8443",
        "127.0.0.1:5000",
        "quay.internal",
        "h",
    ] {
        assert!(check_host(host).is_ok(), "{host}");
    }
    // replay took any of `[a-zA-Z0-9-.:[]]`; these are not hosts.
    for host in ["a..b", "-a", "a:b:c", "[zz]", "::1"] {
        assert!(check_host(host).is_err(), "{host}");
    }
    // SourceRef: registries and paths as replay split them. replay splits with `Written`,
    // so `busybox` stays `busybox` (destinations do not move); normalised, a Docker Hub
    // official image gains `library/`.
    let w = Written::parse("busybox:1").unwrap();
    assert_eq!((w.host, w.path, w.tag), (None, "busybox", Some("1")));
    let r = Reference::parse("registry.example.com:5000/my-operator/my-operator-index:v1").unwrap();
    assert_eq!(
        (r.host(), r.path(), r.tag()),
        (
            "registry.example.com:5000",
            "my-operator/my-operator-index",
            Some("v1")
        )
    );
    assert_eq!(
        Reference::parse("library/busybox:1").unwrap().host(),
        "docker.io"
    );
    assert_eq!(
        Reference::parse("busybox").unwrap().path(),
        "library/busybox"
    );
}
