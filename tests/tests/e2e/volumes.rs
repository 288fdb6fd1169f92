//! Many volumes: blobs that span them, each volume verified alone and in any order, volume
//! sizes filled to the block, and byte-identical volumes from run to run.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::*;

/// With the fixtures' 340 KiB, 64 KiB volumes give 8 volumes (200 KiB gives only 2).
const SMALL: &str = "64KiB";
const SMALL_BYTES: u64 = 64 * 1024;

fn verify_json(vols: &[&Path], key: &Key) -> (std::process::Output, serde_json::Value) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("verify")];
    args.extend(vols.iter().map(|v| v.as_os_str()));
    args.extend([
        OsStr::new("--trust"),
        key.public.as_os_str(),
        OsStr::new("--json"),
    ]);
    let out = unpack(args);
    let v = json(&out);
    (out, v)
}

#[test]
fn blobs_span_volumes_and_each_volume_verifies_alone_and_in_any_order() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let out = tmp.path().join("vols");
    pack_ok(&fixture("oci"), &out, SMALL, &key, &[]);
    let vols = volumes(&out);
    let n = vols.len();
    assert!(n >= 5, "{SMALL} volumes: expected at least 5, got {n}");

    // `tar tf` lists every volume; some blob has chunks in two (or more) volumes, and a
    // later volume continues it at a non-zero stream offset.
    let spans = blob_volumes(&vols);
    let spanning: Vec<_> = spans.iter().filter(|(_, v)| v.len() >= 2).collect();
    assert!(!spanning.is_empty(), "no blob spans volumes: {spans:?}");
    let continued = vols.iter().skip(1).any(|v| {
        tar_list(v)
            .iter()
            .filter_map(|name| parse_chunk_name(name))
            .next()
            .is_some_and(|c| c.stream_offset > 0)
    });
    assert!(
        continued,
        "no volume starts with the continuation of a blob"
    );

    // Each volume alone: OK, and the others reported missing.
    for (i, v) in vols.iter().enumerate() {
        let (o, report) = verify_json(&[v], &key);
        assert_ok(&o, &format!("verify volume {} alone", i + 1));
        assert_eq!(report["ok"], true);
        assert_eq!(report["volumes"][0]["volume"], i + 1);
        assert_eq!(report["volumes"][0]["status"], "ok");
        let missing: Vec<u64> = report["missing_volumes"]
            .as_array()
            .expect("missing_volumes")
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let others: Vec<u64> = (1..=n as u64).filter(|&k| k != i as u64 + 1).collect();
        assert_eq!(missing, others, "volume {} alone", i + 1);
    }
    // The same in words, for one of them.
    let o = unpack([
        OsStr::new("verify"),
        vols[1].as_os_str(),
        OsStr::new("--trust"),
        key.public.as_os_str(),
    ]);
    assert_ok(&o, "verify volume 2 alone (text)");
    let others: Vec<String> = (1..=n).filter(|&k| k != 2).map(|k| k.to_string()).collect();
    assert_mentions(
        &o,
        &[
            &format!("volume 2/{n}"),
            &format!(
                "volumes {} of {n} not given: verify them when they arrive",
                others.join(", ")
            ),
            "all 1 volume(s) given verified",
        ],
        "verify volume 2 alone",
    );

    // All volumes, shuffled: each recognised by its own number, none missing.
    // Reversed and rotated: a permutation whatever n is (a stride of 3 was not once the
    // smaller version-2 manifest made n a multiple of 3).
    let mut order: Vec<usize> = (0..n).rev().collect();
    order.rotate_left(2);
    assert_eq!(
        order.iter().collect::<BTreeSet<_>>().len(),
        n,
        "a permutation"
    );
    let shuffled: Vec<&Path> = order.iter().map(|&i| vols[i].as_path()).collect();
    let (o, report) = verify_json(&shuffled, &key);
    assert_ok(&o, "verify shuffled");
    assert_eq!(report["ok"], true);
    assert_eq!(report["missing_volumes"].as_array().unwrap().len(), 0);
    for (pos, &i) in order.iter().enumerate() {
        assert_eq!(
            report["volumes"][pos]["path"],
            vols[i].to_string_lossy().as_ref()
        );
        assert_eq!(report["volumes"][pos]["volume"], i + 1);
        assert_eq!(report["volumes"][pos]["status"], "ok");
    }

    // Shuffled volumes also extract, to the same tree.
    let to = tmp.path().join("original");
    let mut args: Vec<&OsStr> = vec![OsStr::new("extract")];
    args.extend(shuffled.iter().map(|v| v.as_os_str()));
    args.extend([
        OsStr::new("--trust"),
        key.public.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
        OsStr::new("--layout"),
        OsStr::new("original"),
    ]);
    assert_ok(&unpack(args), "extract shuffled");
    let diff = diff_r(&fixture("oci"), &to);
    assert!(
        diff.code() == 0,
        "extract from shuffled volumes differs:\n{}",
        diff.dump()
    );
}

/// No volume exceeds --volume-size; every one but the last is filled to within 1 KiB: the
/// planner cuts chunks at block boundaries, so what is left unused is less than the next
/// chunk's header block plus the block its table entry may add (SPEC.md §5.3).
#[test]
fn volumes_fill_to_the_block_and_never_exceed_the_size() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    for (size, bytes) in [
        (SMALL, SMALL_BYTES),
        ("200KiB", 200 * 1024),
        ("100KB", 100_000),
    ] {
        let out = tmp.path().join(size);
        pack_ok(&fixture("registry"), &out, size, &key, &[]);
        let vols = volumes(&out);
        assert!(vols.len() >= 2, "{size}: {vols:?}");
        for (i, v) in vols.iter().enumerate() {
            let len = file_size(v);
            assert!(len <= bytes, "{size}: volume {} is {len} bytes", i + 1);
            assert_eq!(
                len % BLOCK,
                0,
                "{size}: volume {} is not whole tar blocks",
                i + 1
            );
            if i + 1 < vols.len() {
                assert!(
                    bytes - len < 1 << 20,
                    "{size}: volume {} under-filled by over 1 MiB",
                    i + 1
                );
                assert!(
                    bytes - len <= 1024,
                    "{size}: volume {} is {len} bytes, {} short",
                    i + 1,
                    bytes - len
                );
            }
        }
    }
}

fn pack_env(mirror: &Path, out: &Path, key: &Key, epoch: Option<&str>, extra: &[&str]) {
    let mut c = Command::new(ferry_pack_bin());
    c.arg(mirror)
        .arg("--out")
        .arg(out)
        .args(["--volume-size", SMALL, "--key"])
        .arg(&key.private)
        .args(extra)
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(e) = epoch {
        c.env("SOURCE_DATE_EPOCH", e);
    }
    let o = run_command(&mut c);
    assert_ok(
        &o,
        &format!("ferry-pack (SOURCE_DATE_EPOCH={epoch:?}) {extra:?}"),
    );
}

#[test]
fn packing_twice_gives_identical_volumes() {
    let tmp = tempdir();
    let key = keygen(tmp.path(), "site.key");
    let d = |name: &str| -> PathBuf { tmp.path().join(name) };

    // Without SOURCE_DATE_EPOCH the bundle time is the newest mtime in the mirror; a copy
    // elsewhere (cp -a keeps mtimes) packs to the same bytes: no path or clock leaks in.
    pack_env(&fixture("oci"), &d("a"), &key, None, &[]);
    pack_env(&fixture("oci"), &d("b"), &key, None, &[]);
    assert_same_files(&d("a"), &d("b"));
    let copy = copy_fixture("oci", tmp.path());
    pack_env(&copy, &d("c"), &key, None, &[]);
    assert_same_files(&d("a"), &d("c"));
    assert!(volumes(&d("a")).len() >= 3);

    // With SOURCE_DATE_EPOCH: identical again, and that time is the bundle's.
    pack_env(&fixture("oci"), &d("e1"), &key, Some("1700000000"), &[]);
    pack_env(&fixture("oci"), &d("e2"), &key, Some("1700000000"), &[]);
    assert_same_files(&d("e1"), &d("e2"));
    let (_, m) = standalone_manifest(&d("e1"));
    assert_eq!(m["created"], 1_700_000_000u64);
    // Without it, the newest mtime among the files packed (every file of an OCI layout;
    // 1600000000 where the generator ran, the checkout time in a fresh clone).
    let (_, m) = standalone_manifest(&d("a"));
    assert_eq!(
        m["created"],
        newest_mtime(&fixture("oci")),
        "bundle time without SOURCE_DATE_EPOCH"
    );

    // --only-volume 3 into an empty directory: the same bytes as volume 3 of the full run.
    for (full, epoch) in [("a", None), ("e1", Some("1700000000"))] {
        let only = d(&format!("only3-{full}"));
        pack_env(&fixture("oci"), &only, &key, epoch, &["--only-volume", "3"]);
        let written = volumes(&only);
        assert_eq!(
            written.len(),
            1,
            "--only-volume 3 writes one volume: {written:?}"
        );
        let full_vols = volumes(&d(full));
        assert_eq!(written[0].file_name(), full_vols[2].file_name());
        assert_eq!(
            std::fs::read(&written[0]).unwrap(),
            std::fs::read(&full_vols[2]).unwrap(),
            "--only-volume 3 differs from volume 3 of the full run ({full})"
        );
    }

    // A volume number past the end is refused, naming the count, and nothing is written.
    let vols = volumes(&d("a"));
    let past = (vols.len() + 1).to_string();
    let o = pack_with(
        &fixture("oci"),
        &d("past"),
        SMALL,
        &key.private,
        &["--only-volume", &past],
    );
    assert_ne!(o.code(), 0, "{}", o.dump());
    assert_mentions(
        &o,
        &[&format!("the bundle has {} volumes", vols.len())],
        "--only-volume past the end",
    );
    assert!(volumes(&d("past")).is_empty());
}

/// The newest mtime (whole seconds) of any regular file under `dir`.
fn newest_mtime(dir: &Path) -> u64 {
    let mut newest = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            newest = newest.max(newest_mtime(&e.path()));
        } else if meta.is_file() {
            let t = meta
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            newest = newest.max(t.as_secs());
        }
    }
    newest
}
