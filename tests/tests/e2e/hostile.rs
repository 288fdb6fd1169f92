//! Hostile volumes (SPEC.md §2): every region of a volume damaged three ways,
//! crafted tar entries, lying sizes, a table pointing outside the file, foreign and
//! replayed bundles, untrusted keys, unknown versions and fields, zstd bombs. Each is
//! given to the real `ferry-unpack` under a 1 GiB address-space cap and pushed into a
//! real `docker-registry`; see `tests/src/hostile/` for what is asserted.
//!
//! Needs `cargo build -p pack -p unpack`, `docker-registry` and `prlimit` (util-linux).
//! `FERRY_HOSTILE_FILTER=text` runs only the cases whose name contains `text`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use tests::hostile::{
    cases, run_case, stored_blobs, unpack_capped, zstd_zeros, CaughtBy, Fixture, MEMORY_CAP,
};
use tests::registry::Registry;
use tests::{run, OutputExt};

#[test]
fn hostile_volumes_are_all_rejected() {
    let fx = Fixture::build();
    preflight(&fx);
    let all = cases(&fx);
    let filter = std::env::var("FERRY_HOSTILE_FILTER").unwrap_or_default();
    let work = fx.dir.path().join("cases");
    let mut failures = Vec::new();
    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    let mut verify_passed = Vec::new();
    let mut n = 0;
    for (i, case) in all.iter().enumerate() {
        if !case.name.contains(&filter) {
            continue;
        }
        n += 1;
        *categories.entry(case.category).or_default() += 1;
        match run_case(&fx, case, &work.join(format!("{i:03}"))) {
            Ok(o) => {
                println!(
                    "rejected {i:3} [{}] {} (verify exit {}, {} verified blob(s) in the registry)",
                    case.category, case.name, o.verify_exit, o.pushed_blobs
                );
                if case.caught_by != CaughtBy::Verify && o.verify_exit == 0 {
                    verify_passed.push(case.name.clone());
                }
            }
            Err(e) => {
                println!("FAILED   {i:3} [{}] {}", case.category, case.name);
                failures.push(format!("case {i} [{}] {}:\n{e}", case.category, case.name));
            }
        }
    }
    println!("{n} hostile cases by category:");
    for (c, k) in &categories {
        println!("  {k:3}  {c}");
    }
    if !verify_passed.is_empty() {
        println!(
            "verify passed these signed lies, which SPEC.md §6.1 leaves to reading (R31, R32); extract or push refused them:"
        );
        for name in &verify_passed {
            println!("  {name}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} hostile cases were not rejected as SPEC.md requires (the test directory {} is kept):\n\n{}",
        failures.len(),
        fx.dir.path().display(),
        failures.join("\n\n")
    );
    assert!(n > 0, "FERRY_HOSTILE_FILTER={filter:?} matches no case");
    println!("all {n} rejected");
}

/// The binaries work normally under the memory cap, and the two documented limits hold:
/// an older bundle, and another bundle by the same key, verify alone (SPEC.md §2).
fn preflight(fx: &Fixture) {
    let home = fx.dir.path().join("preflight");
    std::fs::create_dir_all(&home).unwrap();
    let trust = [OsString::from("--trust"), fx.key.public.clone().into()];
    for (what, vols) in [
        ("the good bundle", &fx.good),
        ("the older bundle alone", &fx.older),
        ("another bundle by the same key, alone", &fx.other_bundle),
    ] {
        let mut args = vec![OsString::from("verify")];
        args.extend(vols.iter().map(|p| p.clone().into_os_string()));
        args.extend(trust.iter().cloned());
        let out = unpack_capped(&args, &home);
        assert_eq!(
            out.code(),
            0,
            "verify of {what} under a {} MiB cap\n{}",
            MEMORY_CAP >> 20,
            out.dump()
        );
    }
    let registry = Registry::plain();
    let mut args = vec![OsString::from("push")];
    args.extend(fx.good.iter().map(|p| p.clone().into_os_string()));
    args.extend(trust.iter().cloned());
    args.extend([
        "--to".into(),
        format!("127.0.0.1:{}/good", registry.port).into(),
        "--insecure".into(),
        "--state".into(),
        home.join("state").into(),
        "--manifests-dir".into(),
        home.join("manifests").into(),
    ]);
    let out = unpack_capped(&args, &home);
    assert_eq!(
        out.code(),
        0,
        "push of the good bundle under the cap\n{}",
        out.dump()
    );
    let stored: BTreeSet<String> = stored_blobs(&registry.storage())
        .into_iter()
        .map(|(hex, actual)| {
            assert_eq!(hex, actual, "a blob of the good push hashes wrong");
            format!("sha256:{hex}")
        })
        .collect();
    assert!(
        stored == fx.image_blobs,
        "the good push did not upload exactly the blobs of the images: missing {:?}, extra {:?}",
        fx.image_blobs.difference(&stored).collect::<Vec<_>>(),
        stored.difference(&fx.image_blobs).collect::<Vec<_>>()
    );
}

#[test]
fn every_case_changes_the_good_bytes_and_names_are_unique() {
    let fx = Fixture::build();
    let all = cases(&fx);
    let good: Vec<Vec<u8>> = fx.good.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let mut names = BTreeSet::new();
    for c in &all {
        assert!(names.insert(&c.name), "two cases are called {:?}", c.name);
        assert!(!c.files.is_empty(), "{}: no file", c.name);
        for h in &c.hostile {
            let (_, bytes) = c
                .files
                .iter()
                .find(|(n, _)| n == h)
                .expect("hostile file given");
            assert!(!good.contains(bytes), "{}: {h} is a good volume", c.name);
        }
    }
    let categories: BTreeSet<&str> = all.iter().map(|c| c.category).collect();
    for want in [
        "region: flipped bit",
        "region: truncation",
        "region: insertion",
        "tar entry",
        "unnamed entry",
        "duplicate entry",
        "size lie: tar header",
        "size lie: table",
        "size lie: manifest",
        "outside the file",
        "foreign",
        "untrusted key",
        "version or field",
        "zstd bomb",
    ] {
        assert!(categories.contains(want), "no case of {want}");
    }
}

/// The bomb really is one: the `zstd` tool decodes the hand-made frame to its length.
#[test]
fn zstd_bomb_frame_decodes_to_its_length() {
    let dir = tests::tempdir();
    let n: u64 = (3 << 17) + 12345;
    let frame = dir.path().join("bomb.zst");
    std::fs::write(&frame, zstd_zeros(n)).unwrap();
    let out = run("zstd", ["-d", "-q", "-c", frame.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "zstd -d\n{}", out.dump());
    assert_eq!(out.stdout.len() as u64, n);
    assert!(out.stdout.iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------------------------------
// A deterministic mutation fuzz test (runs everywhere; `scripts/fuzz.sh` fuzzes longer)

/// xorshift64*: a fixed PRNG, so a failure names a reproducible iteration.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random change: flip a bit, set a byte, insert, delete, truncate, copy a block over
/// another, or rewrite a decimal digit (sizes and offsets in the trailer and tables).
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let n = bytes.len();
    match rng.below(7) {
        0 => {
            let i = rng.below(n);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(n);
            bytes[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(n + 1);
            let k = [1, 7, 512, 1024][rng.below(4)];
            let fill = rng.next() as u8;
            bytes.splice(i..i, std::iter::repeat_n(fill, k));
        }
        3 => {
            let i = rng.below(n);
            let k = [1, 64, 512][rng.below(3)].min(n - i);
            bytes.drain(i..i + k);
        }
        4 => bytes.truncate(rng.below(n)),
        5 if n >= 512 => {
            let blocks = n / 512;
            let (a, b) = (rng.below(blocks) * 512, rng.below(blocks) * 512);
            let block = bytes[a..a + 512].to_vec();
            bytes[b..b + 512].copy_from_slice(&block);
        }
        _ => {
            let digits: Vec<usize> = (0..n).filter(|&i| bytes[i].is_ascii_digit()).collect();
            if let Some(&i) = digits.get(rng.below(digits.len())) {
                bytes[i] = b'0' + rng.below(10) as u8;
            }
        }
    }
}

/// Thousands of mutated copies of the vector bundle's volumes: the reader never panics,
/// and never accepts (opens with the trusted key and finds every chunk intact) a volume
/// whose bytes changed. Mutations of the table text are also re-signed with the vector
/// key, so the rules after the signature check are reached; an accepted re-signed table
/// must then be the original one.
#[test]
fn mutated_vector_volumes_are_never_accepted() {
    use format_spec::key::PrivateKey;
    use format_spec::read::Volume;
    use format_spec::volume::{self, entry_len};
    use test_support::resign::entry;

    let vectors = tests::workspace().join("format-spec/vectors");
    let key = PrivateKey::load(&vectors.join("vector-key.pem")).unwrap();
    let trusted = [key.public()];
    let mut originals: Vec<Vec<u8>> = std::fs::read_dir(vectors.join("valid-bundle"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    originals.sort();
    let dir = tests::tempdir();
    let path = dir.path().join("mutant.tar");
    let iterations: usize = std::env::var("FERRY_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    let mut rng = Rng(0x5eed_f0e5_a11c_e5ed);
    let (mut opened, mut resigned_opened) = (0, 0);
    for i in 0..iterations {
        let original = &originals[rng.below(originals.len())];
        let resign = i % 3 == 2;
        let mut bytes = original.clone();
        let mut table_changed = false;
        if resign {
            // Change the table's text, then sign it again: only the trailer moves with it.
            std::fs::write(&path, original).unwrap();
            let v = Volume::open(&path, &trusted).unwrap();
            let (offset, table) = v.table_location();
            let mut t = table.to_vec();
            for _ in 0..=rng.below(2) {
                let digits: Vec<usize> = (0..t.len()).filter(|&j| t[j].is_ascii_digit()).collect();
                let j = digits[rng.below(digits.len())];
                t[j] = b'0' + rng.below(10) as u8;
            }
            table_changed = t != table;
            let mtime = v.manifest.created;
            let number = v.table.volume;
            let mut out = original[..offset as usize].to_vec();
            for (name, data) in [
                (volume::table_name(number), t.clone()),
                (volume::table_sig_name(number), key.sign(&t).to_vec()),
                (
                    volume::TRAILER_NAME.to_string(),
                    volume::trailer(offset, t.len() as u64).to_vec(),
                ),
            ] {
                entry(&mut out, &name, &data, mtime);
            }
            out.extend_from_slice(&[0u8; 1024]);
            assert_eq!(out.len() as u64, offset + entry_len(t.len() as u64) + 3072);
            bytes = out;
        } else {
            for _ in 0..=rng.below(3) {
                if !bytes.is_empty() {
                    mutate(&mut rng, &mut bytes);
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        // A failing mutant is kept outside the temporary directory for a regression test.
        let keep = || {
            let kept = std::env::temp_dir().join(format!("ferry-mutant-{i}.tar"));
            std::fs::copy(&path, &kept).unwrap();
            kept.display().to_string()
        };
        let result = std::panic::catch_unwind(|| {
            // What `inspect` reads is hostile too: no panic there either.
            if let Ok(u) = Volume::open_unverified(&path) {
                u.verify_chunks(&|_| {});
            }
            let v = Volume::open(&path, &trusted).ok()?;
            Some(v.verify_chunks(&|_| {}).is_empty())
        });
        match result {
            Err(_) => panic!(
                "iteration {i}: the reader panicked (mutant kept at {})",
                keep()
            ),
            Ok(Some(true)) => {
                if resign {
                    resigned_opened += 1;
                    assert!(
                        !table_changed,
                        "iteration {i}: a re-signed table that differs from the original was accepted (mutant at {})",
                        keep()
                    );
                } else {
                    opened += 1;
                    assert!(
                        bytes == *original,
                        "iteration {i}: a changed volume was accepted (mutant at {})",
                        keep()
                    );
                }
            }
            Ok(_) => {}
        }
    }
    println!(
        "{iterations} mutants; {opened} unchanged ones and {resigned_opened} re-signed unchanged tables accepted, every changed one refused"
    );
}

// ---------------------------------------------------------------------------------------
// Regression tests of what the hostile cases found, at the library level

/// A blob whose signed `size` is 2^64−1 (M-rules allow any u64): reading it must fail
/// with an error, not overflow `size + 1` (the R31 bound) and panic, in `extract` and
/// `push` alike (both read through `Bundle::open_blob`).
#[test]
fn blob_declared_u64_max_is_refused_without_panic() {
    use format_spec::bundle::Bundle;
    use format_spec::key::PrivateKey;
    use format_spec::manifest::Encoding;
    use format_spec::read::Volume;
    use std::io::Read;

    let vectors = tests::workspace().join("format-spec/vectors");
    let key = PrivateKey::load(&vectors.join("vector-key.pem")).unwrap();
    let mut paths: Vec<_> = std::fs::read_dir(vectors.join("valid-bundle"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    paths.sort();
    let dir = tests::tempdir();
    let files = tests::hostile::resign_volumes(&paths, &key, &|m| {
        let b = m
            .blobs
            .iter_mut()
            .find(|b| b.encoding == Encoding::Zstd && b.media_type.is_none())
            .unwrap();
        b.size = u64::MAX;
    });
    let volumes: Vec<Volume> = files
        .iter()
        .map(|(name, bytes)| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            Volume::open(&p, &[key.public()]).expect("a validly signed volume opens")
        })
        .collect();
    let bundle = Bundle::new(volumes).unwrap();
    let blob = bundle
        .manifest
        .blobs
        .iter()
        .position(|b| b.size == u64::MAX)
        .unwrap() as u32;
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = bundle.open_blob(blob).map_err(|e| e.to_string())?;
        std::io::copy(&mut r.by_ref().take(1 << 20), &mut std::io::sink())
            .map_err(|e| e.to_string())
    }));
    match read {
        Err(_) => panic!("Bundle::open_blob panicked on a blob declared 2^64-1 bytes (format-spec/src/bundle.rs: `b.size + 1`)"),
        Ok(Ok(n)) => panic!("a blob declared 2^64-1 bytes read back {n} bytes without error"),
        Ok(Err(_)) => {}
    }
}
