//! Memory that does not grow with the bundle (issue 13 item 2): a bundle of 6×10^4 small
//! images (1.8×10^5 blobs, `fixtures/generate.py many`) verifies and extracts under a memory
//! cap the test sets itself, each keeping its peak resident memory within the goal of
//! 200 MiB, after packing it under the same cap and within the same goal.
//!
//! The cap is RLIMIT_DATA, set on the child by `prlimit --data=` before it starts
//! (test-support's `memcap` says why not RLIMIT_AS or a cgroup): private writable memory,
//! what a growing heap is made of, and what neither reserved address space nor the page cache
//! of the volumes written counts against. It sits at [`CAP`], above the 200 MiB goal, because
//! it counts memory made writable but never touched (a thread's whole stack, the unused part
//! of a malloc arena); the goal itself is asserted on the peak RSS the kernel reports. When the
//! cap cannot be set (no prlimit, no GNU time, a limit that did not take) the test fails,
//! saying so: it never passes without having run under its cap.
//!
//! The mirror (0.7 GB in 1.8×10^5 files) and the volumes are on a 2 GB tmpfs the test mounts
//! (root, as the disk-full tests need). The binaries are the debug build the suite runs (our code unoptimised, dependencies at
//! opt-level 3): slower than a release build, the same data structures. ferry-pack runs on
//! mimalloc (its allocator; see pack/src/main.rs), whose segments the cap counts once mapped,
//! touched or not: the release build packed within a cap of 256 MiB too (2026-12-01). Times
//! are printed as the test runs.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use test_support::memcap::{check_cap_works, run_capped, Capped};
use test_support::tmpfs::Tmpfs;
use tests::*;

/// Images in the mirror: the full catalog, 6×10^4 images, 1.86×10^5 blobs.
const IMAGES: u32 = 60_000;
/// The goal, peak resident memory of every path (issue 13's table).
const GOAL_MIB: f64 = 200.0;
/// The cap on private writable memory (see the module comment for why above the goal).
const CAP: u64 = 320 << 20;

/// Runs `program` under the cap in `scratch`, says how long it took and its peak, and
/// asserts it succeeded within the goal.
fn run_within<I, S>(program: &Path, args: I, scratch: &Path, what: &str) -> Capped
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let t = Instant::now();
    let run = run_capped(program, args, CAP, scratch);
    eprintln!(
        "memory: {what} (debug build): {:.1?}, peak RSS {:.1} MiB",
        t.elapsed(),
        run.peak_rss_mib()
    );
    assert_within(&run, what);
    run
}

fn assert_within(run: &Capped, what: &str) {
    assert!(run.output.status.success(), "{}", run.describe(what));
    assert!(
        run.peak_rss_mib() <= GOAL_MIB,
        "{what}: peak RSS {:.1} MiB, over the goal of {GOAL_MIB} MiB at {IMAGES} images \
         (it ran within the cap of {} MiB of private writable memory)",
        run.peak_rss_mib(),
        CAP >> 20
    );
}

/// A tmpfs with the mirror of [`IMAGES`] images and a key on it, and where the volumes go.
///
/// On a tmpfs: the 1.8×10^5 small files are created and removed at memory speed, not at
/// the shared disk's metadata speed (deleting them from ext4 took minutes on a busy
/// machine), and the test leaves nothing behind. Its pages are no memory of ferry's.
fn mirror_on_tmpfs() -> (Tmpfs, PathBuf, Key, PathBuf) {
    check_cap_works(CAP);
    let disk = Tmpfs::require("2G");
    let dir = disk.path.clone();
    let mirror = dir.join("many");
    let t = Instant::now();
    let gen = run(
        "python3",
        [
            workspace().join("fixtures/generate.py").as_os_str(),
            OsStr::new("many"),
            OsStr::new("--out"),
            mirror.as_os_str(),
            OsStr::new("--images"),
            OsStr::new(&IMAGES.to_string()),
        ],
    );
    assert_ok(&gen, "fixtures/generate.py many");
    eprintln!(
        "memory: generate.py many --images {IMAGES}: {:.1?}",
        t.elapsed()
    );
    let key = keygen(&dir, "site.key");
    (disk, mirror, key, dir.join("vols"))
}

fn pack_args<'a>(mirror: &'a Path, out: &'a Path, key: &'a Key) -> [&'a OsStr; 8] {
    [
        mirror.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--volume-size"),
        OsStr::new("4GiB"),
        OsStr::new("--key"),
        key.private.as_os_str(),
        OsStr::new("-q"),
    ]
}

/// Pack, verify and extract (which opens the bundle the same way and writes 1.8×10^5
/// files) of 6×10^4 images, each under the cap and within the goal. One test, so the mirror
/// is generated once.
#[test]
fn sixty_thousand_images_pack_verify_and_extract_under_a_memory_cap() {
    let (disk, mirror, key, out) = mirror_on_tmpfs();
    let dir = disk.path.as_path();
    run_within(
        &ferry_pack_bin(),
        pack_args(&mirror, &out, &key),
        dir,
        "ferry-pack of 6×10^4 images",
    );
    // The mirror's pages are not needed any more: room on the tmpfs for the extract.
    std::fs::remove_dir_all(&mirror).expect("remove the mirror");

    let verify = run_within(
        &ferry_unpack_bin(),
        [
            OsStr::new("verify"),
            out.as_os_str(),
            OsStr::new("--trust"),
            key.public.as_os_str(),
        ],
        dir,
        "ferry-unpack verify of 6×10^4 images",
    );
    // What a user reads: the bundle with every image, and every volume OK.
    let text = verify.output.stdout_text();
    assert!(
        text.contains(&format!(", {IMAGES} images, ")),
        "verify does not report {IMAGES} images:\n{}",
        verify.output.dump()
    );
    let volumes: Vec<&str> = text.lines().filter(|l| l.contains(" volume ")).collect();
    assert!(
        !volumes.is_empty() && volumes.iter().all(|l| l.starts_with("OK ")),
        "verify does not report every volume OK:\n{}",
        verify.output.dump()
    );

    let layout = dir.join("layout");
    run_within(
        &ferry_unpack_bin(),
        [
            OsStr::new("extract"),
            out.as_os_str(),
            OsStr::new("--trust"),
            key.public.as_os_str(),
            OsStr::new("--to"),
            layout.as_os_str(),
        ],
        dir,
        "ferry-unpack extract of 6×10^4 images",
    );
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("index.json")).expect("the extracted index.json"),
    )
    .expect("index.json is JSON");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(IMAGES as usize),
        "the extracted layout names every image"
    );
}
