//! The wording of the errors users meet most (issue 6): each says what happened, where,
//! and what to do next. Changing one of these is a user-visible change: update the README's
//! troubleshooting table with it.

use tests::*;

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
    assert!(text.contains("not signed by any trusted key (the volume table signature does not verify with trusted key(s)"), "{text}");
    assert!(text.contains("`ferry-unpack inspect` shows the key it claims, compare fingerprints with the connected side"), "{text}");
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
