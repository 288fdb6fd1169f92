//! registries.conf: real files from containers/image and ferry's tests (`testdata/`), and
//! temporary configurations for loading, merging and every refusal.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

const D: &str = "sha256:61b8f5e1a3b5dbd9e2c35fd448dc5106337d7a299873dd3a6f0cd8d4891ecc27";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/registries-conf")
        .join(name)
}

fn conf(text: &str) -> RegistriesConf {
    RegistriesConf::parse(Path::new("r.conf"), text).unwrap()
}

fn err(text: &str) -> String {
    RegistriesConf::parse(Path::new("r.conf"), text)
        .unwrap_err()
        .to_string()
}

fn hosts(r: &Resolved) -> Vec<String> {
    r.endpoints
        .iter()
        .map(|e| format!("{}|{}|{}", e.host, e.repository, e.insecure))
        .collect()
}

#[test]
fn ferry_test_config_points_redhat_at_the_local_registry() {
    let c = RegistriesConf::load(Some(&testdata("ferry-test-redhat.conf")), None).unwrap();
    assert_eq!(
        c.unqualified_search_registries(),
        ["registry.access.redhat.com", "docker.io"]
    );
    let r = c
        .resolve(
            "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6",
            false,
        )
        .unwrap();
    // The primary is blocked: only the mirror is left, and the source stays the real name.
    assert_eq!(
        hosts(&r),
        ["127.0.0.1:5000|openshift4/ose-elasticsearch-proxy|true"]
    );
    assert_eq!(
        r.reference,
        "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6"
    );
    assert_eq!(
        r.endpoints[0].reference,
        "127.0.0.1:5000/openshift4/ose-elasticsearch-proxy:v4.6"
    );
    assert!(r.endpoints[0].mirror);
    assert_eq!(
        r.blocked,
        ["registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6"]
    );
    // A digest-only mirror does not serve a tag pull of a blocked registry.
    let c2 = conf("[[registry]]\nlocation = \"registry.redhat.io\"\nblocked = true\n[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\npull-from-mirror = \"digest-only\"\n");
    let e = c2
        .resolve("registry.redhat.io/ubi8/ubi:8.9", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has blocked = true in r.conf, and no mirror serves a pull by tag"),
        "{e}"
    );
    assert_eq!(
        c2.resolve("registry.redhat.io/ubi8/ubi:8.9", true)
            .unwrap()
            .endpoints[0]
            .host,
        "127.0.0.1:5000"
    );
    // A namespace prefix with a port, rewritten to a location with a path.
    let r = c
        .resolve(
            "registry.example.com:5000/my-operator/my-operator-index:v1",
            false,
        )
        .unwrap();
    assert_eq!(
        hosts(&r),
        ["127.0.0.1:5000|my-operator/my-operator-index|true"]
    );
    // Unconfigured registries are reached as named, securely; Docker Hub short names too.
    let r = c.resolve("ubuntu:22.04", false).unwrap();
    assert_eq!(r.reference, "docker.io/library/ubuntu:22.04");
    assert_eq!(hosts(&r), ["docker.io|library/ubuntu|false"]);
    assert!(r.registry.is_none());
}

#[test]
fn containers_image_find_registry_cases() {
    // Expectations from containers/image's TestFindRegistry (system_registries_v2_test.go).
    let c = RegistriesConf::load(Some(&testdata("find-registry.conf")), None).unwrap();
    let loc = |name: &str| c.find_registry(name).map(|r| r.location.clone());
    assert_eq!(
        loc("simple-prefix.com/foo/bar:latest").as_deref(),
        Some("registry.com:5000")
    );
    assert_eq!(
        loc("complex-prefix.com:4000/with/path/and/beyond:tag").as_deref(),
        Some("another-registry.com:5000")
    );
    assert_eq!(
        loc("no-prefix.com/foo:tag").as_deref(),
        Some("no-prefix.com")
    );
    assert_eq!(
        loc("empty-prefix.com/foo:tag").as_deref(),
        Some("empty-prefix.com")
    );
    assert_eq!(
        loc("a.so.simple-prefix.com/foo/bar:latest").as_deref(),
        Some("subdomain-prefix.com")
    );
    assert_eq!(
        loc("a.b.c.d.so.simple-prefix.com/foo/bar:latest").as_deref(),
        Some("subdomain-prefix.com")
    );
    assert_eq!(
        loc("a.simple-prefix.com/foo/bar:latest").as_deref(),
        Some("subdomain-prefix-2.com")
    );
    // "there's a longer match with *.bar.docker.io which gets used"
    assert_eq!(
        loc("foo.bar.docker.io:5000/omg/wtf/bbq:foo").as_deref(),
        Some("subdomain-prefix-4.com")
    );
    // bar.docker.io itself is no subdomain of bar.docker.io.
    assert_eq!(
        loc("bar.docker.io/foo/bar:latest").as_deref(),
        Some("subdomain-prefix-2.com")
    );
    assert_eq!(
        loc("foo.bar.example.com:5000/foo/bar:latest").as_deref(),
        Some("subdomain-prefix-5.com")
    );
    assert_eq!(
        loc("foo.bar.example.com/foo/bar:latest").as_deref(),
        Some("subdomain-prefix-3.com")
    );
    assert_eq!(loc("simple-prefix.com.evil.example/foo:1"), None);
    assert_eq!(loc("not-matching.org/foo:1"), None);
    // Wildcard with no location: matched, not rewritten.
    let r = c.resolve("a.internal.registry.com/foo:1", false).unwrap();
    assert_eq!(hosts(&r), ["a.internal.registry.com|foo|false"]);
    // A prefix replaced by a location.
    let r = c
        .resolve("simple-prefix.com/foo/bar:latest", false)
        .unwrap();
    assert_eq!(r.endpoints[0].reference, "registry.com:5000/foo/bar:latest");
}

#[test]
fn mirrors_in_order_then_location() {
    let c = RegistriesConf::load(Some(&testdata("mirrors.conf")), None).unwrap();
    let r = c.resolve("registry.com/image:tag", false).unwrap();
    assert_eq!(
        hosts(&r),
        [
            "mirror-1.registry.com|image|false",
            "mirror-2.registry.com|image|true",
            "registry.com|image|false"
        ]
    );
    assert!(r.endpoints[0].mirror && !r.endpoints[2].mirror);
    let e = c
        .resolve("blocked.registry.com/image:tag", false)
        .unwrap_err();
    assert!(matches!(e, RegistriesConfError::Blocked { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("registry prefix \"blocked.registry.com\" has blocked = true in"),
        "{msg}"
    );
    assert!(msg.contains("mirrors.conf"), "{msg}");
}

#[test]
fn digest_only_and_tag_only_mirrors() {
    let c = conf(
        r#"
[[registry]]
location = "example.com/ns"
[[registry.mirror]]
location = "digest.mirror/x"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tag.mirror"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "all.mirror"

[[registry]]
location = "strict.example.com"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.local:5000"
"#,
    );
    let tag = c.resolve("example.com/ns/app:1", false).unwrap();
    assert_eq!(
        hosts(&tag),
        [
            "tag.mirror|app|false",
            "all.mirror|app|false",
            "example.com|ns/app|false"
        ]
    );
    let by_digest = c.resolve("example.com/ns/app:1", true).unwrap();
    assert_eq!(by_digest.endpoints[0].reference, "digest.mirror/x/app:1");
    assert_eq!(by_digest.endpoints.len(), 3);
    let digest_ref = c
        .resolve(&format!("example.com/ns/app@{D}"), false)
        .unwrap();
    assert_eq!(digest_ref.endpoints[0].host, "digest.mirror");
    assert_eq!(
        c.resolve("strict.example.com/a:1", false)
            .unwrap()
            .endpoints
            .len(),
        1
    );
    let r = c
        .resolve(&format!("strict.example.com/a@{D}"), false)
        .unwrap();
    assert_eq!(
        hosts(&r),
        ["m.local:5000|a|false", "strict.example.com|a|false"]
    );
    // The prefix must end at a separator: example.com/nsx is not under example.com/ns.
    assert!(c
        .resolve("example.com/nsx/app:1", false)
        .unwrap()
        .registry
        .is_none());
}

#[test]
fn docker_hub_names_and_longest_prefix() {
    let c = conf(
        r#"
[[registry]]
prefix = "docker.io"
location = "hub.mirror.local"
[[registry]]
prefix = "docker.io/library/busybox"
location = "bb.local/busybox"
insecure = true
"#,
    );
    let r = c.resolve("ubuntu:22.04", false).unwrap();
    assert_eq!(
        r.endpoints[0].reference,
        "hub.mirror.local/library/ubuntu:22.04"
    );
    let r = c
        .resolve("index.docker.io/library/busybox:1", false)
        .unwrap();
    assert_eq!(hosts(&r), ["bb.local|busybox|true"]);
    assert_eq!(r.reference, "docker.io/library/busybox:1");
    // busybox2 is not under the busybox prefix.
    let r = c.resolve("busybox2:1", false).unwrap();
    assert_eq!(r.endpoints[0].host, "hub.mirror.local");
    let e = c.resolve("Ubuntu:1", false).unwrap_err();
    assert!(matches!(e, RegistriesConfError::BadReference { .. }), "{e}");
    let e = c.resolve("quay.io/a/b:", false).unwrap_err().to_string();
    assert!(e.contains("the tag is empty"), "{e}");
}

#[test]
fn default_search_and_drop_ins_merge_like_containers_image() {
    let tmp = tempfile::tempdir().unwrap();
    let sys_file = tmp.path().join("etc/registries.conf");
    let sys_dir = tmp.path().join("etc/registries.conf.d");
    let home = tmp.path().join("home");
    fs::create_dir_all(&sys_dir).unwrap();
    fs::create_dir_all(home.join(USER_DIR)).unwrap();
    fs::write(
        &sys_file,
        "unqualified-search-registries = [\"a.io\"]\n[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"old.mirror\"\n",
    )
    .unwrap();
    // 20 sorts after 10: its quay.io entry replaces both the main file's and 10's.
    fs::write(
        sys_dir.join("10-a.conf"),
        "[[registry]]\nlocation = \"quay.io\"\ninsecure = true\n",
    )
    .unwrap();
    fs::write(
        sys_dir.join("20-b.conf"),
        "[[registry]]\nlocation = \"quay.io\"\n[[registry.mirror]]\nlocation = \"new.mirror\"\n",
    )
    .unwrap();
    fs::write(sys_dir.join("30-ignored.txt"), "not toml [[[").unwrap();
    fs::create_dir(sys_dir.join("40-dir.conf")).unwrap();
    fs::write(
        home.join(USER_DIR).join("50-user.conf"),
        "unqualified-search-registries = []\n",
    )
    .unwrap();
    let paths = SearchPaths::with_system(None, Some(&home), &sys_file, &sys_dir);
    assert_eq!(paths.drop_in_dirs, [sys_dir.clone(), home.join(USER_DIR)]);
    let c = RegistriesConf::load_from(&paths).unwrap();
    assert_eq!(c.files().len(), 4);
    let r = c.resolve("quay.io/a/b:1", false).unwrap();
    assert_eq!(hosts(&r), ["new.mirror|a/b|false", "quay.io|a/b|false"]);
    // An empty list in a drop-in replaces the list.
    assert!(c.unqualified_search_registries().is_empty());

    // A user registries.conf replaces the system file and directory.
    fs::write(
        home.join(USER_FILE),
        "[[registry]]\nlocation = \"quay.io\"\nblocked = true\n",
    )
    .unwrap();
    let paths = SearchPaths::with_system(None, Some(&home), &sys_file, &sys_dir);
    assert_eq!(paths.main, home.join(USER_FILE));
    assert_eq!(paths.drop_in_dirs, [home.join(USER_DIR)]);
    let e = RegistriesConf::load_from(&paths)
        .unwrap()
        .resolve("quay.io/a/b:1", false)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&home.join(USER_FILE).display().to_string()),
        "{e}"
    );

    // --registries-conf: that file alone, and it must exist.
    let only = tmp.path().join("only.conf");
    fs::write(&only, "").unwrap();
    let c = RegistriesConf::load(Some(&only), Some(&home)).unwrap();
    assert!(c.registries().is_empty());
    assert_eq!(c.files(), std::slice::from_ref(&only));
    let e = RegistriesConf::load(Some(&tmp.path().join("missing.conf")), None).unwrap_err();
    assert!(matches!(e, RegistriesConfError::Read { .. }), "{e}");

    let big = tmp.path().join("big.conf");
    fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
    let e = RegistriesConf::load(Some(&big), None)
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("big.conf: cannot read the registries configuration: larger than 1 MiB: not a registries.conf"), "{e}");

    // No files at all: nothing configured, which is not an error.
    let none = SearchPaths::with_system(
        None,
        None,
        &tmp.path().join("x.conf"),
        &tmp.path().join("x.d"),
    );
    assert!(RegistriesConf::load_from(&none)
        .unwrap()
        .registries()
        .is_empty());

    // A broken drop-in is named.
    fs::write(
        sys_dir.join("60-bad.conf"),
        "[[registry]]\nlocaton = \"x.io\"\n",
    )
    .unwrap();
    fs::remove_file(home.join(USER_FILE)).unwrap();
    let paths = SearchPaths::with_system(None, Some(&home), &sys_file, &sys_dir);
    let e = RegistriesConf::load_from(&paths).unwrap_err().to_string();
    assert!(
        e.contains("60-bad.conf:2:1: unknown field `locaton`"),
        "{e}"
    );
}

#[test]
fn shipped_file_and_v1_format() {
    let c = RegistriesConf::load(Some(&testdata("shipped-registries.conf")), None).unwrap();
    assert!(c.registries().is_empty());
    let c = conf(
        "[registries.search]\nregistries = [\"registry.access.redhat.com\"]\n[registries.insecure]\nregistries = [\"local:5000\"]\n[registries.block]\nregistries = [\"docker.io\"]\n",
    );
    assert_eq!(
        c.unqualified_search_registries(),
        ["registry.access.redhat.com"]
    );
    assert!(c.resolve("local:5000/a:1", false).unwrap().endpoints[0].insecure);
    assert!(matches!(
        c.resolve("ubuntu:1", false),
        Err(RegistriesConfError::Blocked { .. })
    ));
    let e = err("unqualified-search-registries = []\n[registries.search]\nregistries = []\n");
    assert!(e.contains("mixes the v1 format"), "{e}");
}

#[test]
fn refusals_name_file_line_and_key() {
    let cases = [
        ("[[registry]]\nlocation = \"a.io\"\ninsecur = true\n", "r.conf:3:1: unknown field `insecur`"),
        ("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"\n", "r.conf:5: registry[0].mirror[0].pull-from-mirror: \"sometimes\" is not all, digest-only or tag-only"),
        ("[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"tag-only\"\n", "r.conf:6: registry[0].mirror[0].pull-from-mirror: cannot be set when the registry (\"a.io\") has mirror-by-digest-only"),
        ("[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n", "r.conf:3: registry[0].pull-from-mirror: belongs in a [[registry.mirror]]"),
        ("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n", "r.conf:3: registry[0].mirror[0].location: a mirror needs a location"),
        ("[[registry]]\ninsecure = true\n", "r.conf:1: registry[0]: has neither prefix nor location"),
        ("[[registry]]\nprefix = \"a.io\"\n", "r.conf:1: registry[0].location: is empty, which only a wildcard prefix"),
        ("[[registry]]\nprefix = \"*.a.io:5000\"\n", "r.conf:2: registry[0].prefix: \"*.a.io:5000\": a wildcard prefix is *.example.com"),
        ("[[registry]]\nlocation = \"https://a.io\"\n", "r.conf:2: registry[0].location: \"https://a.io\": URI schemes are not supported"),
        ("[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"b.io\"\nlocation = \"a.io\"\ninsecure = true\n", "registry[1].insecure: \"a.io\" is configured twice (also registry[0]) with different insecure settings"),
        ("unqualified-search-registries = [\"a.io/ns\"]\n", "r.conf:1: unqualified-search-registries[0]: \"a.io/ns\" is not host[:port]"),
        ("short-name-mode = \"loud\"\n", "r.conf:1: short-name-mode: \"loud\" is not disabled"),
        ("[[registry]\n", "r.conf:1:"),
        ("[[registry]]\nlocation = 5\n", "r.conf:2:12: invalid type: integer `5`, expected a string"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "{text:?}\n got: {e}\nwant: {want}");
    }
    // Known keys ferry does not use are accepted.
    conf("credential-helpers = [\"containers-auth.json\"]\nshort-name-mode = \"enforcing\"\nadditional-layer-store-auth-helper = \"x\"\n[aliases]\n\"fedora\" = \"registry.fedoraproject.org/fedora\"\n");
    // Same prefix twice in one file: the first wins.
    let c = conf("[[registry]]\nlocation = \"a.io\"\n[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n");
    assert_eq!(c.resolve("a.io/x:1", false).unwrap().endpoints.len(), 1);
    // A location that is no host cannot be rewritten to.
    let c = conf("[[registry]]\nprefix = \"a.io\"\nlocation = \"nohost\"\n");
    let e = c.resolve("a.io/x:1", false).unwrap_err().to_string();
    assert!(
        e.contains("r.conf: registry[0].location: \"nohost\" rewrites a.io/x:1 to \"nohost/x:1\""),
        "{e}"
    );
}

/// The reference is read by oci (skopeo's `docker://` dropped first), and a location that
/// rewrites it into a name without a host is refused, not read as a Docker Hub short name.
#[test]
fn references_are_read_by_oci_and_rewrites_must_name_a_host() {
    let c = conf(
        r#"
[[registry]]
prefix = "quay.io/a"
location = "mirror"
[[registry]]
prefix = "quay.io/ok"
location = "docker.io/busybox"
"#,
    );
    let e = c.resolve("quay.io/a/b:1", false).unwrap_err().to_string();
    assert_eq!(
        e,
        "r.conf: registry[0].location: \"mirror\" rewrites quay.io/a/b:1 to \"mirror/b:1\", which is not a reference: the location must start with a registry host (host[:port][/path])"
    );
    // The rewritten reference is normalised as the pull will read it: Docker Hub's library/.
    let r = c.resolve("docker://quay.io/ok:2", false).unwrap();
    assert_eq!(r.reference, "quay.io/ok:2");
    assert_eq!(r.endpoints[0].reference, "docker.io/library/busybox:2");
    assert_eq!(hosts(&r), ["docker.io|library/busybox|false"]);
    let e = c.resolve("quay.io/a/b:", false).unwrap_err().to_string();
    assert!(
        e.starts_with("image reference \"quay.io/a/b:\": the tag at byte 12: the tag is empty"),
        "{e}"
    );
}
