//! The wording of the errors users meet most: each says what happened, where,
//! and what to do next. Changing one of these is a user-visible change: update the README's
//! troubleshooting table with it.

use tests::*;

/// The fingerprint `inspect` shows for a bundle signed with the key whose public half is
/// at `public` (what `keygen` printed on the connected side).
fn fingerprint(public: &std::path::Path) -> String {
    format_spec::key::PublicKey::load(public)
        .expect("a public key")
        .fingerprint()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn common_errors_say_what_where_and_what_next() {
    let t = tempdir();
    let key = keygen(t.path(), "k");
    let other = keygen(t.path(), "other");

    // Not a mirror: where, what was looked for, what to do.
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = pack_with(&empty, &t.path().join("o1"), "1MiB", &key.private, &[]);
    assert_exit(&o, 1, "pack of an empty directory");
    let e = stderr(&o);
    assert!(e.contains(&format!("{}: not an image mirror: no v2/<repo>/manifests (oc file://), no oci-layout (OCI layout), no docker/registry/v2 (registry storage), no version file (skopeo dir:)", empty.display())), "{e}");
    assert!(
        e.contains("Point ferry-pack at the mirror's root directory"),
        "{e}"
    );

    // A size without a unit.
    let o = pack_with(
        &fixture("oci"),
        &t.path().join("o2"),
        "4",
        &key.private,
        &[],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("volume size \"4\": no unit (write e.g. 4GiB, 4.7GB, 700MiB, or a preset: fat32, dvd, dvd-dl, bd25, bd50, bd100)"), "{}", stderr(&o));

    // A damaged blob in the mirror: which file, which digest, what to do.
    let m = copy_fixture("oci", t.path());
    let layer = m.join("blobs/sha256").join(&SHARED_BASE_LAYER[7..]);
    flip_byte(&layer, 100);
    let o = pack_with(&m, &t.path().join("o3"), "1MiB", &key.private, &[]);
    assert_exit(&o, 1, "pack of a damaged mirror");
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "blob {SHARED_BASE_LAYER} read from {} has digest sha256:",
            layer.display()
        )),
        "{e}"
    );
    assert!(
        e.contains("the mirror is damaged (re-mirror this blob)"),
        "{e}"
    );

    // Volumes: the wrong key, a truncated volume.
    let out = t.path().join("vols");
    pack_ok(&fixture("oci"), &out, "64KiB", &key, &[]);
    let vols = volumes(&out);
    let o = unpack([
        "verify".as_ref(),
        vols[0].as_os_str(),
        "--trust".as_ref(),
        other.public.as_os_str(),
    ]);
    assert_exit(&o, 1, "verify with another key");
    let text = String::from_utf8_lossy(&o.stdout);
    // The key does not match: say so, name both fingerprints, and do not send the operator
    // to rewrite media that may be perfect.
    let (signer, trusted) = (fingerprint(&key.public), fingerprint(&other.public));
    assert!(text.contains(&format!("signed by key {signer} (the key the volume names), not by a trusted key ({trusted}): the --trust key does not match")), "{text}");
    assert!(text.contains(&format!("1 of 1 volume(s) signed by a key that is not trusted: the key does not match (signed by {signer}; trusted: {trusted})")), "{text}");
    assert!(!text.contains("rewrite"), "{text}");
    assert!(!text.contains("--only-volume"), "{text}");
    // One stick alone: the others are not given, not damaged; no repair command.
    let o = unpack([
        "verify".as_ref(),
        vols[0].as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
    ]);
    assert_exit(&o, 0, "verify of one volume alone");
    let text = String::from_utf8_lossy(&o.stdout);
    let rest: Vec<String> = (2..=vols.len()).map(|n| n.to_string()).collect();
    assert!(
        text.contains(&format!(
            "volumes {} of {} not given: verify them when they arrive",
            rest.join(", "),
            vols.len()
        )),
        "{text}"
    );
    assert!(!text.contains("--only-volume"), "{text}");
    truncate(&vols[1], file_size(&vols[1]) - 4096);
    let o = unpack([
        "verify".as_ref(),
        vols[1].as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
    ]);
    assert_exit(&o, 1, "verify of a truncated volume");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("truncated, or not a ferry volume (copy it again, or write it again with ferry-pack --only-volume)"), "{text}");
    assert!(
        text.contains("rewrite them on the connected side with `ferry-pack … --only-volume N`"),
        "{text}"
    );
    // The repair command names the damaged volume only, not the volumes not given.
    let o = unpack([
        "verify".as_ref(),
        vols[0].as_os_str(),
        vols[1].as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
        "--json".as_ref(),
    ]);
    let summary = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary event\n{}", String::from_utf8_lossy(&o.stdout)));
    let repair = summary["repair_command"].as_str().unwrap_or_default();
    assert!(repair.ends_with(" --only-volume 2"), "{summary}");
    assert_eq!(
        summary["missing_volumes"].as_array().map(Vec::len),
        Some(vols.len() - 2),
        "{summary}"
    );

    // Extract without every volume: which volumes.
    let o = unpack([
        "extract".as_ref(),
        vols[0].as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
        "--to".as_ref(),
        t.path().join("x").as_os_str(),
    ]);
    assert_exit(&o, 1, "extract of one volume");
    assert!(
        stderr(&o).contains("are not given — extract needs them all"),
        "{}",
        stderr(&o)
    );

    // A registry that is not there: the URL, and that running again resumes.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = unpack([
        "push".as_ref(),
        vols[0].as_os_str(),
        "--trust".as_ref(),
        key.public.as_os_str(),
        "--to".as_ref(),
        format!("127.0.0.1:{port}/x").as_ref(),
        "--insecure".as_ref(),
        "--retry-for".as_ref(),
        "1".as_ref(),
        "--state".as_ref(),
        t.path().join("s").as_os_str(),
        "--manifests-dir".as_ref(),
        t.path().join("m").as_os_str(),
    ]);
    assert_ne!(o.status.code(), Some(0), "push to nothing");
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        all.contains(&format!("http://127.0.0.1:{port}/v2/")),
        "{all}"
    );
}
