//! Part 9: signed lies only reading the blob reveals (the whole bundle re-signed), and zstd
//! bombs: verify passes them (SPEC.md §6.1), extract or push must refuse them.

use format_spec::digest::Digest;
use format_spec::manifest::{BundleManifest, Encoding};

use super::case::{Case, Cases, CaughtBy};
use super::fixture::{resign_bundle, Good};
use super::scratch::{
    image_blobs, raw_blob, scratch_bundle, zstd_zeros, ScratchBlob, OCI_MANIFEST,
};
use super::{BOMB_DECODED, BOMB_SIGNED_SIZE};

/// Signed lies caught when read, and bombs.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    let (fx, l) = (g.fx, &g.l);
    // 9. Signed lies only reading the blob reveals (whole bundle re-signed).
    // A layer or config: a manifest's size is also in the signed index, which extract
    // compares first.
    let zstd = l
        .manifest
        .blobs
        .iter()
        .position(|b| b.encoding == Encoding::Zstd && b.media_type.is_none())
        .expect("a zstd layer or config in the bundle") as u32;
    let zstd_digest = l.manifest.blobs[zstd as usize].digest.to_string();
    let read_lie = |name: &str, edit: &dyn Fn(&mut BundleManifest), says: &[&str]| Case {
        name: name.into(),
        category: "signed lie caught when read",
        files: resign_bundle(fx, &fx.good, edit),
        hostile: Vec::new(),
        status: "ok",
        says: says.iter().map(|s| s.to_string()).collect(),
        absent: vec![zstd_digest.clone()],
        vouched: Vec::new(),
        caught_by: CaughtBy::Extract,
    };
    let more = format!("blob {zstd_digest} decodes to more than its signed size");
    cs.out.push(read_lie(
        "a zstd blob's size declared 100 smaller than it decodes to",
        &|m| m.blobs[zstd as usize].size -= 100,
        &[&more],
    ));
    cs.out.push(read_lie(
        "a zstd blob's size declared 2^63",
        &|m| m.blobs[zstd as usize].size = 1 << 63,
        &[&zstd_digest],
    ));
    cs.out.push(read_lie(
        "a zstd blob's size declared 2^64-1",
        &|m| m.blobs[zstd as usize].size = u64::MAX,
        &[&zstd_digest],
    ));

    // A zstd bomb: 8 GiB of zeros in a 256 KiB stream, signed as a 1000-byte layer.
    let bomb_digest = Digest::of(&[0u8; BOMB_SIGNED_SIZE as usize]);
    let (manifest, config) = image_blobs(bomb_digest, BOMB_SIGNED_SIZE);
    let blobs = [
        raw_blob(manifest, Some(OCI_MANIFEST)),
        raw_blob(config, None),
        ScratchBlob {
            digest: bomb_digest,
            size: BOMB_SIGNED_SIZE,
            encoding: "zstd",
            stored: zstd_zeros(BOMB_DECODED),
            media_type: None,
        },
    ];
    let honest: Vec<String> = blobs[..2].iter().map(|b| b.digest.to_string()).collect();
    cs.out.push(Case {
        name: format!(
            "a zstd bomb: a {} KiB stream decoding to {} GiB, signed as {BOMB_SIGNED_SIZE} bytes",
            blobs[2].stored.len() >> 10,
            BOMB_DECODED >> 30
        ),
        category: "zstd bomb",
        files: vec![(
            "ferry-bomb-001-of-001.tar".into(),
            scratch_bundle(&fx.secret, &blobs),
        )],
        hostile: Vec::new(),
        status: "ok",
        says: vec![format!(
            "blob {bomb_digest} decodes to more than its signed size {BOMB_SIGNED_SIZE}"
        )],
        absent: vec![bomb_digest.to_string()],
        vouched: honest,
        caught_by: CaughtBy::Extract,
    });
    // The same bomb as the image manifest, which push reads into memory, declared 2^63.
    let (manifest, config) = image_blobs(Digest::of(b"layer"), 5);
    let blobs = [
        ScratchBlob {
            digest: Digest::of(&manifest),
            size: 1 << 63,
            encoding: "zstd",
            stored: zstd_zeros(3 << 29),
            media_type: Some(OCI_MANIFEST),
        },
        raw_blob(config, None),
        raw_blob(b"layer".to_vec(), None),
    ];
    let manifest_digest = blobs[0].digest.to_string();
    cs.out.push(Case {
        name: "a zstd bomb as the image manifest (1.5 GiB of zeros), declared 2^63 bytes".into(),
        category: "zstd bomb",
        files: vec![(
            "ferry-bomb-001-of-001.tar".into(),
            scratch_bundle(&fx.secret, &blobs),
        )],
        // A manifest over 8 MiB breaks M24, so the manifest itself is refused.
        hostile: vec!["ferry-bomb-001-of-001.tar".into()],
        status: "invalid",
        says: vec![manifest_digest.clone(), "8388608-byte limit".into()],
        absent: vec![manifest_digest],
        vouched: Vec::new(),
        caught_by: CaughtBy::Verify,
    });
}
