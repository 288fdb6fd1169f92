//! The grammars against the examples of the specifications and of the reference
//! implementations, so that ferry's one grammar is theirs and not a fourth dialect.
//!
//! Sources, read at these commits:
//! - distribution/reference 0965666a6ade2e06035fe352e38344be1e68951a (2026-04-18):
//!   `reference_test.go` (TestReferenceParse, TestWithNameFailure), `normalize_test.go`
//!   (TestValidateReferenceName, TestValidateRemoteName, TestParseRepositoryInfo,
//!   TestParseReferenceWithTagAndDigest, TestParseAnyReference, TestNormalizedSplitHostname),
//!   `regexp_test.go` (TestDomainRegexp, TestFullNameRegexp, TestReferenceRegexp);
//! - opencontainers/distribution-spec 967efdc079b91785ad18c77cc4f8991a47feefbf, `spec.md`
//!   "Pulling manifests" (`<name>` and tag regular expressions);
//! - opencontainers/image-spec 13cff54902ec9ad6320cbc487a685b66fcd67171, `descriptor.md`
//!   "Digests" (grammar and example digests).
//!
//! distribution's `Parse` tests are given here as `ParseNormalizedNamed` reads them (ferry
//! always normalises): `test_com` is `docker.io/library/test_com`. Where ferry refuses what
//! distribution's regular expressions accept, the case sits in its own table with the reason.

use oci::name::{check_host, check_repository, check_tag, is_repository};
use oci::{Digest, DigestError, NameKind, Problem, Reference, ReferenceError};

const FF: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const BE: &str = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";

/// What parsing a reference must give: its full form, or the part that is wrong.
#[derive(Debug)]
enum Want {
    Full(String),
    Bad(Part),
}

#[derive(Debug, PartialEq)]
enum Part {
    Empty,
    ImageId,
    Name(NameKind),
    BadDigest,
}

use Part::*;

fn ok(full: &str) -> Want {
    Want::Full(full.to_owned())
}

fn check(input: &str, want: &Want) {
    let got = Reference::parse(input);
    match (want, got) {
        (Want::Full(full), Ok(r)) => {
            assert_eq!(&r.to_string(), full, "{input}");
            // Display round-trips, and so does the familiar form.
            assert_eq!(Reference::parse(full).unwrap(), r, "{input}");
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{input}");
        }
        (Want::Bad(part), Err(e)) => {
            let got = match &e {
                ReferenceError::Empty => Empty,
                ReferenceError::ImageId { .. } => ImageId,
                ReferenceError::Name { kind, .. } => Name(*kind),
                ReferenceError::Digest { .. } => BadDigest,
                other => panic!("{input}: unexpected {other:?}"),
            };
            assert_eq!(&got, part, "{input}: {e}");
        }
        (want, got) => panic!("{input}: wanted {want:?}, got {got:?}"),
    }
}

/// reference_test.go TestReferenceParse, every case.
#[test]
fn reference_parse_table() {
    let cases: Vec<(String, Want)> = vec![
        ("test_com".into(), ok("docker.io/library/test_com")),
        ("test.com:tag".into(), ok("docker.io/library/test.com:tag")),
        (
            "test.com:5000".into(),
            ok("docker.io/library/test.com:5000"),
        ),
        ("test.com/repo:tag".into(), ok("test.com/repo:tag")),
        ("test:5000/repo".into(), ok("test:5000/repo")),
        ("test:5000/repo:tag".into(), ok("test:5000/repo:tag")),
        (
            format!("test:5000/repo@{FF}"),
            ok(&format!("test:5000/repo@{FF}")),
        ),
        (
            format!("test:5000/repo:tag@{FF}"),
            ok(&format!("test:5000/repo:tag@{FF}")),
        ),
        ("".into(), Want::Bad(Empty)),
        (":justtag".into(), Want::Bad(Name(NameKind::Repository))),
        (format!("@{FF}"), Want::Bad(Name(NameKind::Repository))),
        (
            "repo@sha256:ffffffffffffffffffffffffffffffffff".into(),
            Want::Bad(BadDigest),
        ),
        (
            format!("validname@invaliddigest:{}", &FF[7..]),
            Want::Bad(BadDigest),
        ),
        (
            format!("validname@sha512:{}", "f".repeat(128)),
            Want::Bad(BadDigest),
        ),
        (
            "Uppercase:tag".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        // distribution's FIXME: "Uppercase" is taken for a host here, so this passes.
        (
            "Uppercase/lowercase:tag".into(),
            ok("Uppercase/lowercase:tag"),
        ),
        (
            "test:5000/Uppercase/lowercase:tag".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            "lowercase:Uppercase".into(),
            ok("docker.io/library/lowercase:Uppercase"),
        ),
        (
            format!("domain/{}:tag", "a".repeat(256)),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
            ok(&format!(
                "docker.io/{}a:tag-puts-this-over-max",
                "a/".repeat(127)
            )),
        ),
        (
            "aa/asdf$$^/aa".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux".into(),
            ok("sub-dom1.foo.com/bar/baz/quux"),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            ok("sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            ok("b.gcr.io/test.example.com/my-app:test.example.com"),
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            ok("xn--n3h.com/myimage:xn--n3h.com"),
        ),
        (
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{FF}"),
            ok(&format!("xn--7o8h.com/myimage:xn--7o8h.com@{FF}")),
        ),
        (
            "foo_bar.com:8080".into(),
            ok("docker.io/library/foo_bar.com:8080"),
        ),
        (
            "foo/foo_bar.com:8080".into(),
            ok("docker.io/foo/foo_bar.com:8080"),
        ),
        ("192.168.1.1".into(), ok("docker.io/library/192.168.1.1")),
        (
            "192.168.1.1:tag".into(),
            ok("docker.io/library/192.168.1.1:tag"),
        ),
        (
            "192.168.1.1:5000".into(),
            ok("docker.io/library/192.168.1.1:5000"),
        ),
        ("192.168.1.1/repo".into(), ok("192.168.1.1/repo")),
        ("192.168.1.1:5000/repo".into(), ok("192.168.1.1:5000/repo")),
        (
            "192.168.1.1:5000/repo:5050".into(),
            ok("192.168.1.1:5000/repo:5050"),
        ),
        (
            "[2001:db8::1]".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            "[2001:db8::1]:5000".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            "[2001:db8::1]:tag".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        ("[2001:db8::1]/repo".into(), ok("[2001:db8::1]/repo")),
        (
            "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
            ok("[2001:db8:1:2:3:4:5:6]/repo:tag"),
        ),
        (
            "[2001:db8::1]:5000/repo".into(),
            ok("[2001:db8::1]:5000/repo"),
        ),
        (
            "[2001:db8::1]:5000/repo:tag".into(),
            ok("[2001:db8::1]:5000/repo:tag"),
        ),
        (
            format!("[2001:db8::1]:5000/repo@{FF}"),
            ok(&format!("[2001:db8::1]:5000/repo@{FF}")),
        ),
        (
            format!("[2001:db8::1]:5000/repo:tag@{FF}"),
            ok(&format!("[2001:db8::1]:5000/repo:tag@{FF}")),
        ),
        (
            "[2001:db8::]:5000/repo".into(),
            ok("[2001:db8::]:5000/repo"),
        ),
        ("[::1]:5000/repo".into(), ok("[::1]:5000/repo")),
        (
            "[fe80::1%eth0]:5000/repo".into(),
            Want::Bad(Name(NameKind::Host)),
        ),
        // The `@` starts a digest before any host is looked for: what is left has no `/`.
        (
            "[fe80::1%@invalidzone]:5000/repo".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            format!("example.com/{}:tag", "a".repeat(255)),
            ok(&format!("example.com/{}:tag", "a".repeat(255))),
        ),
    ];
    for (input, want) in &cases {
        check(input, want);
    }
}

/// regexp_test.go TestReferenceRegexp, and reference_test.go TestWithNameFailure.
#[test]
fn reference_regexp_table() {
    let cases: Vec<(String, Want)> = vec![
        (
            "registry.com:8080/myapp:tag".into(),
            ok("registry.com:8080/myapp:tag"),
        ),
        (
            format!("registry.com:8080/myapp@{BE}"),
            ok(&format!("registry.com:8080/myapp@{BE}")),
        ),
        (
            format!("registry.com:8080/myapp:tag2@{BE}"),
            ok(&format!("registry.com:8080/myapp:tag2@{BE}")),
        ),
        (
            "registry.com:8080/myapp@sha256:badbadbadbad".into(),
            Want::Bad(BadDigest),
        ),
        (
            "registry.com:8080/myapp:invalid~tag".into(),
            Want::Bad(Name(NameKind::Tag)),
        ),
        (
            "bad_hostname.com:8080/myapp:tag".into(),
            Want::Bad(Name(NameKind::Host)),
        ),
        // localhost without a `/` is a repository; 8080 is its tag.
        (
            format!("localhost:8080@{BE}"),
            ok(&format!("docker.io/library/localhost:8080@{BE}")),
        ),
        (
            format!("localhost:8080/name@{BE}"),
            ok(&format!("localhost:8080/name@{BE}")),
        ),
        (
            format!("localhost:http/name@{BE}"),
            Want::Bad(Name(NameKind::Host)),
        ),
        (
            format!("localhost@{BE}"),
            ok(&format!("docker.io/library/localhost@{BE}")),
        ),
        ("registry.com:8080/myapp@bad".into(), Want::Bad(BadDigest)),
        ("registry.com:8080/myapp@2bad".into(), Want::Bad(BadDigest)),
        (
            "aa/asdf$$^/aa".into(),
            Want::Bad(Name(NameKind::Repository)),
        ),
        (
            format!("example.com/{}", "a".repeat(256)),
            Want::Bad(Name(NameKind::Repository)),
        ),
    ];
    for (input, want) in &cases {
        check(input, want);
    }
}

/// normalize_test.go TestValidateReferenceName and TestValidateRemoteName.
#[test]
fn normalized_names_table() {
    let long_namespace = "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker";
    let valid = [
        "docker/docker",
        "library/debian",
        "debian",
        "localhost/library/debian",
        "localhost/debian",
        "LOCALDOMAIN/library/debian",
        "LOCALDOMAIN/debian",
        "docker.io/docker/docker",
        "docker.io/library/debian",
        "docker.io/debian",
        "index.docker.io/docker/docker",
        "index.docker.io/library/debian",
        "index.docker.io/debian",
        "127.0.0.1:5000/docker/docker",
        "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
        // TestValidateRemoteName
        "docker-rules/docker",
        "docker---rules/docker",
        "doc/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
    ];
    for name in valid {
        assert!(
            Reference::parse(name).is_ok(),
            "{name}: {:?}",
            Reference::parse(name)
        );
    }
    let invalid = [
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        // TestValidateRemoteName
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        long_namespace,
    ];
    for name in invalid {
        assert!(
            Reference::parse(name).is_err(),
            "{name}: {:?}",
            Reference::parse(name)
        );
    }
    assert!(matches!(
        Reference::parse("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"),
        Err(ReferenceError::ImageId { .. })
    ));
    assert!(matches!(
        Reference::parse(long_namespace),
        Err(ReferenceError::Name {
            problem: Problem::RepositoryTooLong { len: 278 },
            ..
        })
    ));
}

/// normalize_test.go TestParseRepositoryInfo: (path, familiar, full, other spellings, host).
#[test]
fn repository_info_table() {
    let cases: &[(&str, &str, &str, &[&str], &str)] = &[
        ("fooo", "localhost/fooo", "localhost/fooo", &[], "localhost"),
        (
            "fooo/bar",
            "localhost/fooo/bar",
            "localhost/fooo/bar",
            &[],
            "localhost",
        ),
        (
            "fooo",
            "LOCALDOMAIN/fooo",
            "LOCALDOMAIN/fooo",
            &[],
            "LOCALDOMAIN",
        ),
        (
            "fooo/bar",
            "LOCALDOMAIN/fooo/bar",
            "LOCALDOMAIN/fooo/bar",
            &[],
            "LOCALDOMAIN",
        ),
        (
            "fooo/bar",
            "fooo/bar",
            "docker.io/fooo/bar",
            &["index.docker.io/fooo/bar"],
            "docker.io",
        ),
        (
            "library/ubuntu",
            "ubuntu",
            "docker.io/library/ubuntu",
            &["library/ubuntu"],
            "docker.io",
        ),
        (
            "nonlibrary/ubuntu",
            "nonlibrary/ubuntu",
            "docker.io/nonlibrary/ubuntu",
            &[],
            "docker.io",
        ),
        (
            "other/library",
            "other/library",
            "docker.io/other/library",
            &[],
            "docker.io",
        ),
        (
            "private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            &[],
            "127.0.0.1:8000",
        ),
        (
            "privatebase",
            "127.0.0.1:8000/privatebase",
            "127.0.0.1:8000/privatebase",
            &[],
            "127.0.0.1:8000",
        ),
        (
            "private/moonbase",
            "example.com/private/moonbase",
            "example.com/private/moonbase",
            &[],
            "example.com",
        ),
        (
            "privatebase",
            "example.com/privatebase",
            "example.com/privatebase",
            &[],
            "example.com",
        ),
        (
            "private/moonbase",
            "example.com:8000/private/moonbase",
            "example.com:8000/private/moonbase",
            &[],
            "example.com:8000",
        ),
        (
            "privatebasee",
            "example.com:8000/privatebasee",
            "example.com:8000/privatebasee",
            &[],
            "example.com:8000",
        ),
        (
            "library/ubuntu-12.04-base",
            "ubuntu-12.04-base",
            "docker.io/library/ubuntu-12.04-base",
            &["index.docker.io/library/ubuntu-12.04-base"],
            "docker.io",
        ),
        (
            "library/foo",
            "foo",
            "docker.io/library/foo",
            &["docker.io/foo"],
            "docker.io",
        ),
        (
            "library/foo/bar",
            "library/foo/bar",
            "docker.io/library/foo/bar",
            &[],
            "docker.io",
        ),
        (
            "store/foo/bar",
            "store/foo/bar",
            "docker.io/store/foo/bar",
            &[],
            "docker.io",
        ),
        ("bar", "Foo/bar", "Foo/bar", &[], "Foo"),
        ("bar", "FOO/bar", "FOO/bar", &[], "FOO"),
    ];
    for &(path, familiar, full, others, host) in cases {
        for text in [familiar, full].iter().chain(others) {
            let r = Reference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.path(), path, "{text}");
            assert_eq!(r.host(), host, "{text}");
            assert_eq!(r.to_string(), full, "{text}");
            assert_eq!(r.familiar(), familiar, "{text}");
        }
    }
    // TestParseReferenceWithTagAndDigest
    let short =
        "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    let r = Reference::parse(short).unwrap();
    assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
    assert_eq!(r.familiar(), short);
    assert_eq!(r.tag(), Some("latest"));
    assert!(r.digest().is_some());
    // TestParseAnyReference, the named cases.
    let redis = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    for (input, full) in [
        ("redis".to_string(), "docker.io/library/redis".to_string()),
        (
            "redis:latest".into(),
            "docker.io/library/redis:latest".into(),
        ),
        (
            format!("redis@{redis}"),
            format!("docker.io/library/redis@{redis}"),
        ),
        ("dmcgowan/myapp".into(), "docker.io/dmcgowan/myapp".into()),
        (
            "docker.io/mcgowan/myapp:latest".into(),
            "docker.io/mcgowan/myapp:latest".into(),
        ),
        (
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9".into(),
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9"
                .into(),
        ),
        ("dbcc1".into(), "docker.io/library/dbcc1".into()),
    ] {
        assert_eq!(
            Reference::parse(&input).unwrap().to_string(),
            full,
            "{input}"
        );
    }
    // TestNormalizedSplitHostname
    for (input, host, path) in [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    ] {
        let r = Reference::parse(input).unwrap();
        assert_eq!((r.host(), r.path()), (host, path), "{input}");
    }
}

/// distribution-spec `<name>`, with regexp_test.go TestFullNameRegexp's paths and the
/// separator cases where ferry's copies disagreed (`ab-`, `a__b`, `a___b`, `a--b`).
#[test]
fn repository_names_table() {
    let valid = [
        "short",
        "simple/name",
        "library/ubuntu",
        "docker/stevvooe/app",
        "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb",
        "a/a/a/a",
        "a",
        "a/aa",
        "a/aa/a",
        "foo.com",
        "aa-a/a",
        "foo_bar",
        "foo_bar.com",
        "some_separator__underscore/myimage",
        "xn--7o8h.com/myimage",
        "do__cker/docker",
        "test.example.com/my-app",
        "foo/project--id.module--name.ver---sion--name",
        "a__b",
        "a--b",
        "a-----b",
        "a.b_c__d---e/f0",
        "0",
        "ocp/release-images",
    ];
    for name in valid {
        assert!(
            check_repository(name).is_ok(),
            "{name}: {:?}",
            check_repository(name)
        );
    }
    let a255 = "a".repeat(255);
    assert!(is_repository(&a255));
    assert!(is_repository(&format!("{}a", "a/".repeat(127))));

    let invalid: Vec<(String, usize, Problem)> = vec![
        ("".into(), 0, Problem::EmptyRepository),
        ("ab-".into(), 2, Problem::ComponentEdge { found: '-' }),
        (
            "a___b".into(),
            1,
            Problem::BadSeparator {
                separator: "___".into(),
            },
        ),
        (
            "a..b".into(),
            1,
            Problem::BadSeparator {
                separator: "..".into(),
            },
        ),
        (
            "a._b".into(),
            1,
            Problem::BadSeparator {
                separator: "._".into(),
            },
        ),
        (
            "a-.b".into(),
            1,
            Problem::BadSeparator {
                separator: "-.".into(),
            },
        ),
        ("a/a/a/a/".into(), 8, Problem::EmptyComponent),
        ("a//a/a".into(), 2, Problem::EmptyComponent),
        ("/a".into(), 0, Problem::EmptyComponent),
        ("foo.com/".into(), 8, Problem::EmptyComponent),
        ("a^a".into(), 1, Problem::RepositoryChar { found: '^' }),
        (
            "aa/asdf$$^/aa".into(),
            7,
            Problem::RepositoryChar { found: '$' },
        ),
        ("a-/a/a/a".into(), 1, Problem::ComponentEdge { found: '-' }),
        ("-foo/bar".into(), 0, Problem::ComponentEdge { found: '-' }),
        ("foo/bar-".into(), 7, Problem::ComponentEdge { found: '-' }),
        ("foo/-bar".into(), 4, Problem::ComponentEdge { found: '-' }),
        ("_foo/bar".into(), 0, Problem::ComponentEdge { found: '_' }),
        ("____/____".into(), 0, Problem::ComponentEdge { found: '_' }),
        (
            "docker_/docker_".into(),
            6,
            Problem::ComponentEdge { found: '_' },
        ),
        (
            "__underscore/myimage".into(),
            0,
            Problem::ComponentEdge { found: '_' },
        ),
        (
            ".dots/myimage".into(),
            0,
            Problem::ComponentEdge { found: '.' },
        ),
        (
            "nodouble..dots/myimage".into(),
            8,
            Problem::BadSeparator {
                separator: "..".into(),
            },
        ),
        (
            "docker./docker".into(),
            6,
            Problem::ComponentEdge { found: '.' },
        ),
        ("Foo/FarB".into(), 0, Problem::Uppercase { found: 'F' }),
        (
            "library/Busybox".into(),
            8,
            Problem::Uppercase { found: 'B' },
        ),
        ("a:b".into(), 1, Problem::RepositoryChar { found: ':' }),
        ("a b".into(), 1, Problem::RepositoryChar { found: ' ' }),
        ("a%2fb".into(), 1, Problem::RepositoryChar { found: '%' }),
        ("a/../b".into(), 2, Problem::ComponentEdge { found: '.' }),
        ("..".into(), 0, Problem::ComponentEdge { found: '.' }),
        ("a?b".into(), 1, Problem::RepositoryChar { found: '?' }),
        ("a#b".into(), 1, Problem::RepositoryChar { found: '#' }),
        (
            format!("{a255}a"),
            255,
            Problem::RepositoryTooLong { len: 256 },
        ),
        (
            format!("{}a", "a/".repeat(128)),
            255,
            Problem::RepositoryTooLong { len: 257 },
        ),
    ];
    for (name, at, problem) in invalid {
        let e = check_repository(&name).unwrap_err();
        assert_eq!((e.at, &e.problem), (at, &problem), "{name:?}: {e}");
        assert_eq!(e.kind, NameKind::Repository);
    }
}

/// The path limit counts the path only (distribution/reference v0.6.0, "Exclude domain
/// from name length check"): a long host does not shorten the path allowed.
#[test]
fn length_limit_is_on_the_path() {
    let host = format!("{}.example.com:5000", "h".repeat(60));
    let r = Reference::parse(&format!("{host}/{}", "a".repeat(255))).unwrap();
    assert_eq!(r.path().len(), 255);
    assert!(r.name().len() > 255);
    // On Docker Hub the added `library/` counts: 248 characters are the most a one-component
    // name can have.
    assert!(Reference::parse(&"a".repeat(247)).is_ok());
    let e = Reference::parse(&"a".repeat(248)).unwrap_err();
    assert!(
        matches!(
            e,
            ReferenceError::Name {
                problem: Problem::RepositoryTooLong { len: 256 },
                ..
            }
        ),
        "{e:?}"
    );
}

/// distribution-spec tags: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[test]
fn tags_table() {
    for tag in [
        "latest",
        "_",
        "A",
        "Uppercase",
        "5000",
        "v4.14.0-x86_64",
        "test.example.com",
        "xn--n3h.com",
        "tag-puts-this-over-max",
        "__",
        "a..b",
    ] {
        assert!(check_tag(tag).is_ok(), "{tag}");
    }
    assert!(check_tag(&"a".repeat(128)).is_ok());
    for (tag, at, problem) in [
        ("".to_string(), 0, Problem::EmptyTag),
        (".hidden".into(), 0, Problem::TagStart { found: '.' }),
        ("-foo".into(), 0, Problem::TagStart { found: '-' }),
        ("invalid~tag".into(), 7, Problem::TagChar { found: '~' }),
        ("a/b".into(), 1, Problem::TagChar { found: '/' }),
        ("a:b".into(), 1, Problem::TagChar { found: ':' }),
        ("a+b".into(), 1, Problem::TagChar { found: '+' }),
        ("é".into(), 0, Problem::TagStart { found: 'é' }),
        ("a".repeat(129), 128, Problem::TagTooLong { len: 129 }),
    ] {
        let e = check_tag(&tag).unwrap_err();
        assert_eq!((e.at, &e.problem), (at, &problem), "{tag:?}");
    }
}

/// regexp_test.go TestDomainRegexp (hosts with ports).
#[test]
fn hosts_table() {
    for host in [
        "test.com",
        "test.com:10304",
        "localhost",
        "localhost:8080",
        "a",
        "a.b",
        "ab.cd.com",
        "a-b.com",
        "ab.c-om",
        "0101.com",
        "001a.com",
        "b.gbc.io:443",
        "b.gbc.io",
        "xn--n3h.com",
        "Asdf.com",
        "[fd00:1:2::3]:7505",
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:7505",
        "[::1]",
        "[::]:1",
        "127.0.0.1:65535",
    ] {
        assert!(check_host(host).is_ok(), "{host}: {:?}", check_host(host));
    }
    for host in [
        "test.com:http",
        "-ab.com",
        "ab-.com",
        "ab.-com",
        "ab.com-",
        "[fd00:1:2::3]75050",
        "[fd00:1:2::3]::75050",
        "[fd00:1:2::3%eth0]:75050",
        "fd00:1:2::3:75050",
        "",
        "a..b",
        "a.",
        "foo_bar.com",
        "[::1",
        "host:",
    ] {
        assert!(check_host(host).is_err(), "{host}");
    }
}

/// Accepted by distribution's regular expressions, which leave these to a later check
/// ("it will fail on validation", regexp_test.go); refused at once here.
#[test]
fn hosts_distribution_leaves_to_validation() {
    for (host, problem) in [
        ("192.168.1.1:75050", "outside 1-65535"),
        ("192.168.1.1:750050", "outside 1-65535"),
        ("[fd00:1:2::3]:75050", "outside 1-65535"),
        (
            "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505",
            "outside 1-65535",
        ),
        ("[fd00123123123]:75050", "not an IPv6 address"),
        ("localhost:0", "outside 1-65535"),
    ] {
        let e = check_host(host).unwrap_err().to_string();
        assert!(e.contains(problem), "{host}: {e}");
    }
}

/// image-spec descriptor.md: the example digests, and spellings that must not pass.
#[test]
fn digests_table() {
    let good = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    let d = Digest::parse(good).unwrap();
    assert_eq!(d.to_string(), good);
    assert_eq!(
        Reference::parse(&format!("quay.io/a@{good}"))
            .unwrap()
            .digest(),
        Some(d)
    );

    let sha512 = format!(
        "sha512:401b09eab3c013d4ca54922bb802bec8fd5318192b0a75f201d8b372742{}",
        "0".repeat(65)
    );
    assert!(matches!(
        Digest::parse(&sha512),
        Err(DigestError::Sha512 { .. })
    ));
    let e = Reference::parse(&format!("quay.io/a@{sha512}")).unwrap_err();
    assert!(matches!(
        e,
        ReferenceError::Digest {
            source: DigestError::Sha512 { .. },
            at: 10,
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("sha512 digests are not supported: ferry handles sha256 only"),
        "{e}"
    );

    for unregistered in [
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "blake3:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
    ] {
        assert!(
            matches!(
                Digest::parse(unregistered),
                Err(DigestError::UnsupportedAlgorithm { .. })
            ),
            "{unregistered}"
        );
    }
    let upper = format!("sha256:{}", good[7..].to_uppercase());
    assert!(matches!(
        Digest::parse(&upper),
        Err(DigestError::NotLowercaseHex {
            at: 8,
            found: 'C',
            ..
        })
    ));
    assert!(matches!(
        Digest::parse(&good[..good.len() - 1]),
        Err(DigestError::WrongLength { len: 63, .. })
    ));
    assert!(matches!(
        Digest::parse(&format!("{good}b")),
        Err(DigestError::WrongLength { len: 65, .. })
    ));
    assert!(matches!(
        Digest::parse(&good[7..]),
        Err(DigestError::NoAlgorithm { .. })
    ));
    assert!(matches!(
        Digest::parse(&good.replace("sha256", "SHA256")),
        Err(DigestError::MalformedAlgorithm { at: 0, .. })
    ));
}
