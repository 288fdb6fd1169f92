//! The write path end to end on a small source: streams kept from sizing (in memory, in the
//! spool) give the bytes that compressing again gives, one volume written alone gives the
//! bytes of writing them all, and a blob changed after sizing is caught whichever way it
//! is hashed, and so is a spool that gives back other bytes than were written to it.

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::*;
use crate::key::PrivateKey;
use crate::read::Volume;

/// Deterministic bytes (xorshift), `mask`ed: 0x7f gives text-like bytes zstd saves ~12% on.
fn noise(seed: u64, n: usize, mask: u8) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 & mask
        })
        .collect()
}

const CHUNK: u64 = 1 << 20;
/// Volumes small enough that the large streams span several.
const VOLUME: u64 = 3 << 20;

/// Five blobs: a manifest (too small to compress), a compressible layer whose zstd stream (~10.5 MiB) is too large
/// for memory, a small compressible config, a gzip layer of several chunks and a gzip layer
/// of one chunk.
fn source(dir: &Path) -> Source {
    let gzip = |seed, n| {
        let mut b = vec![0x1f, 0x8b, 0x08, 0x00];
        b.extend(noise(seed, n, 0xff));
        b
    };
    let config = format!(
        "{{\"architecture\":\"amd64\",\"history\":[{}]}}",
        vec!["{\"created_by\":\"RUN make\"}"; 80].join(",")
    )
    .into_bytes();
    let contents: Vec<(Vec<u8>, Option<String>)> = vec![
        (
            b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}"
                .to_vec(),
            Some("application/vnd.oci.image.manifest.v1+json".into()),
        ),
        (noise(3, 12 << 20, 0x7f), None),
        (config, None),
        (gzip(5, 3 << 20 | 777), None),
        (gzip(9, 100_000), None),
    ];
    let blobs = contents
        .into_iter()
        .enumerate()
        .map(|(i, (bytes, media_type))| {
            let path = dir.join(format!("blob{i}"));
            fs::write(&path, &bytes).unwrap();
            SourceBlob {
                digest: Digest::of(&bytes),
                size: bytes.len() as u64,
                at: path.into(),
                media_type,
                base: None,
            }
        })
        .collect();
    Source {
        source_layout: "oci".into(),
        blobs,
        images: Vec::new(),
        tree: Vec::new(),
        index_json: super::IndexBytes::new(b"{}"),
    }
}

fn options() -> Options {
    Options {
        volume_size: VOLUME,
        chunk_size: CHUNK,
        created: 1_700_000_000,
        creator: "test".into(),
        bundle_format: crate::manifest::BUNDLE_VERSION,
    }
}

/// Writes `only` (all when empty) into `out`; the volumes' names and bytes, each checked
/// chunk by chunk against its signed table.
fn write(
    source: &Source,
    prepared: &[Prepared],
    key: &PrivateKey,
    out: &Path,
    only: &[u32],
) -> Result<Vec<(String, Vec<u8>)>, Stopped> {
    let plan = make_plan(source, prepared, &options(), key).unwrap();
    let written = write_volumes(
        &plan,
        &source.blobs,
        prepared,
        key,
        &mut |_| Ok(out.to_path_buf()),
        only,
        &|_| {},
        &AtomicBool::new(false),
    )?;
    Ok(written
        .iter()
        .map(|w| {
            let v = Volume::open(&w.path, &[key.public()]).unwrap();
            let damage = v.verify_chunks(&|_| {});
            assert!(damage.is_empty(), "{}: {damage:?}", w.path.display());
            let name = w.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&w.path).unwrap())
        })
        .collect())
}

fn kept(p: &Prepared) -> &'static str {
    match &p.kept {
        None => "none",
        Some(Kept::Memory(_)) => "memory",
        Some(Kept::Spooled { .. }) => "spool",
    }
}

#[test]
fn each_blob_is_compressed_once_and_the_volumes_are_those_of_compressing_again() {
    let t = tempfile::tempdir().unwrap();
    let source = source(t.path());
    let key = PrivateKey::generate().unwrap();
    let cancel = AtomicBool::new(false);

    // Memory only: the large stream is made again while writing (as before the spool).
    let again = prepare(&source.blobs, &cancel).unwrap();
    let encodings: Vec<Encoding> = again.iter().map(|p| p.encoding).collect();
    use crate::manifest::Encoding;
    assert_eq!(
        encodings,
        [
            Encoding::Raw,
            Encoding::Zstd,
            Encoding::Zstd,
            Encoding::Raw,
            Encoding::Raw
        ]
    );
    assert_eq!(
        again.iter().map(kept).collect::<Vec<_>>(),
        ["none", "none", "memory", "none", "none"]
    );
    assert!(again[1].stored_size > 8 << 20, "{}", again[1].stored_size);
    let out_again = t.path().join("again");
    let reference = write(&source, &again, &key, &out_again, &[]).unwrap();
    assert!(reference.len() >= 3, "{} volumes", reference.len());

    // With a spool: every compressed stream is kept, and written from there.
    let spool = Arc::new(Spool::new(t.path(), None).unwrap());
    let once = prepare_spooled(&source.blobs, Some(&spool), &cancel).unwrap();
    assert_eq!(
        once.iter().map(kept).collect::<Vec<_>>(),
        ["none", "spool", "memory", "none", "none"]
    );
    assert_eq!(spool.len(), once[1].stored_size);
    let out_once = t.path().join("once");
    assert_eq!(
        write(&source, &once, &key, &out_once, &[]).unwrap(),
        reference
    );

    // A spool too small for the stream: it is made again while writing, same bytes.
    let small = Arc::new(Spool::new(t.path(), Some(1 << 20)).unwrap());
    let full = prepare_spooled(&source.blobs, Some(&small), &cancel).unwrap();
    assert_eq!(kept(&full[1]), "none");
    let out_full = t.path().join("full");
    assert_eq!(
        write(&source, &full, &key, &out_full, &[]).unwrap(),
        reference
    );
    // The spool is a file without a name: nothing is left in the directory it is in.
    drop((spool, small, once, full));
    let mut left: Vec<String> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["again", "blob0", "blob1", "blob2", "blob3", "blob4", "full", "once"]
    );
}

#[test]
fn volumes_written_alone_or_apart_are_those_of_writing_them_all() {
    let t = tempfile::tempdir().unwrap();
    let source = source(t.path());
    let key = PrivateKey::generate().unwrap();
    let cancel = AtomicBool::new(false);
    let spool = Arc::new(Spool::new(t.path(), None).unwrap());
    let prepared = prepare_spooled(&source.blobs, Some(&spool), &cancel).unwrap();
    let all = write(&source, &prepared, &key, &t.path().join("all"), &[]).unwrap();
    let n = all.len() as u32;
    assert!(n >= 4, "{n} volumes");
    // Volumes 1 and 3 without 2: the streams that run through 2 are started again, and
    // each blob is still checked whole.
    let apart = write(&source, &prepared, &key, &t.path().join("apart"), &[1, 3]).unwrap();
    assert_eq!(apart, [all[0].clone(), all[2].clone()]);
    // The last volume alone: its streams start mid-way (raw seeks, zstd is made again
    // and its start discarded; a kept stream is read from where it starts).
    let again = prepare(&source.blobs, &cancel).unwrap();
    for prepared in [&prepared, &again] {
        let last = write(
            &source,
            prepared,
            &key,
            &t.path().join(format!("last{}", kept(&prepared[1]))),
            &[n],
        )
        .unwrap();
        assert_eq!(last, [all[n as usize - 1].clone()]);
    }
}

/// `blob` changed in place (same size, other bytes) after sizing: writing fails naming the
/// file, and no volume is left.
fn changed_after_sizing_is_caught(blob: usize, what: &str) {
    let t = tempfile::tempdir().unwrap();
    let source = source(t.path());
    let key = PrivateKey::generate().unwrap();
    let prepared = prepare(&source.blobs, &AtomicBool::new(false)).unwrap();
    let path = &source.blobs[blob].path();
    let mut bytes = fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(path, &bytes).unwrap();
    let out = t.path().join("out");
    let stopped = write(&source, &prepared, &key, &out, &[]).unwrap_err();
    assert!(
        matches!(&stopped.error, FormatError::InputDigestMismatch { path: p, .. } if p == path),
        "{what}: {}",
        stopped.error
    );
    assert!(stopped.written.is_empty(), "{what}: {:?}", stopped.written);
    let left: Vec<_> = fs::read_dir(&out).map(|d| d.count()).into_iter().collect();
    assert!(
        left.iter().all(|&n| n == 0),
        "{what}: files left in {}",
        out.display()
    );
}

#[test]
fn a_blob_changed_after_sizing_is_caught_when_hashed_once_and_when_hashed_twice() {
    // One chunk whole: its chunk hash is the blob digest, so it is hashed once.
    changed_after_sizing_is_caught(4, "a layer of one chunk");
    // Several chunks: the blob and each chunk hashed side by side.
    changed_after_sizing_is_caught(3, "a layer of several chunks");
    // Compressed again while writing (memory only, too large to keep).
    changed_after_sizing_is_caught(1, "a compressible layer made again");
}

/// The spool's disk gave back other bytes, or fewer, than were written to it: writing fails
/// naming the spool and the blob before any byte of the damaged block reaches a volume, so
/// every volume it completed holds no chunk of that blob (and is good). Writing only the
/// volume of the blob's end reads only the part of the stream it holds: damage there is
/// caught, damage elsewhere does not touch it.
#[test]
fn a_spool_that_changed_or_shrank_is_caught_before_its_bytes_reach_a_volume() {
    use std::os::unix::fs::FileExt;
    let t = tempfile::tempdir().unwrap();
    let source = source(t.path());
    let key = PrivateKey::generate().unwrap();
    let cancel = AtomicBool::new(false);
    let digest = source.blobs[1].digest.to_string();
    let flip = |spool: &Spool, at: u64| {
        let mut byte = [0u8; 1];
        spool.file().read_exact_at(&mut byte, at).unwrap();
        spool.file().write_all_at(&[byte[0] ^ 4], at).unwrap();
    };
    let spooled = || {
        let spool = Arc::new(Spool::new(t.path(), None).unwrap());
        let prepared = prepare_spooled(&source.blobs, Some(&spool), &cancel).unwrap();
        assert_eq!(kept(&prepared[1]), "spool");
        // Only blob 1 is spooled: spool offsets are its stream's offsets.
        assert_eq!(spool.len(), prepared[1].stored_size);
        let plan = make_plan(&source, &prepared, &options(), &key).unwrap();
        (spool, prepared, plan)
    };
    let changed = |stopped: &Stopped, case: &str| match &stopped.error {
        FormatError::SpoolChanged { dir, digest: d } => {
            assert_eq!((dir.as_path(), d), (t.path(), &digest), "{case}");
            assert!(stopped.error.to_string().contains("TMPDIR"), "{case}");
        }
        e => panic!("{case}: {e}"),
    };

    // All volumes, one bit flipped in the stream's first block.
    let (spool, prepared, plan) = spooled();
    let first = plan.manifest.blobs[1].first_volume;
    flip(&spool, 1000);
    let stopped = write(&source, &prepared, &key, &t.path().join("all"), &[]).unwrap_err();
    changed(&stopped, "all volumes");
    assert!(
        stopped.written.iter().all(|w| w.volume < first),
        "{:?} written, blob 1 starts in volume {first}",
        stopped.written
    );

    // The volume holding blob 1's end, alone: damage in the part it holds is caught;
    // damage before that part is not read, and the volume is the one it always is.
    let (spool, prepared, plan) = spooled();
    let last = plan.manifest.blobs[1].last_volume;
    let start = plan.volumes[last as usize - 1]
        .chunks
        .iter()
        .find(|c| c.blob == 1)
        .expect("its last volume holds a chunk of blob 1")
        .stream_offset;
    assert!(start > 0, "blob 1 spans volumes");
    let reference = write(&source, &prepared, &key, &t.path().join("ref"), &[last]).unwrap();
    flip(&spool, 1000);
    let alone = write(&source, &prepared, &key, &t.path().join("alone"), &[last]).unwrap();
    assert_eq!(alone, reference, "damage outside the volume's part");
    flip(&spool, start + 10);
    let stopped = write(&source, &prepared, &key, &t.path().join("last"), &[last]).unwrap_err();
    changed(&stopped, "the volume of its end");
    assert!(stopped.written.is_empty(), "{:?}", stopped.written);

    // A spool shorter than what was written to it: unreadable, named as such.
    let (spool, prepared, _) = spooled();
    spool.file().set_len(spool.len() / 2).unwrap();
    let stopped = write(&source, &prepared, &key, &t.path().join("short"), &[]).unwrap_err();
    assert!(
        matches!(&stopped.error, FormatError::SpoolUnreadable { digest: d, .. } if *d == digest),
        "{}",
        stopped.error
    );
    assert!(
        stopped.written.iter().all(|w| w.volume <= first),
        "{:?}",
        stopped.written
    );
}
