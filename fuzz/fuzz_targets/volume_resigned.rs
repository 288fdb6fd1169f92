//! Past the signature check: the input replaces the volume table (and optionally the
//! bundle manifest) of one volume of the valid vector bundle, and everything is re-signed
//! with the vector key, which the reader trusts. So the fuzzer reaches R4–R34 and blob
//! reading (R27–R32, the decompression bound) with documents a signer would never write.
//!
//! Input: `[flags] TABLE [0xFF MANIFEST]`. `flags & 7` (mod 5) picks the volume.
//! `flags & 0x80`: a TABLE that parses is written in canonical form with offsets and
//! document digests recomputed (as a writer would), so checks past R5/R15 are reached.
//! `flags & 0x40`: a MANIFEST that parses is sealed (bundle_id recomputed), written in
//! canonical form and put into every volume, so checks past M4/M18 and R27 are reached.
//! 0xFF never occurs in UTF-8 JSON, so it separates the two documents.
//! Volume k is read alone unless a sealed manifest went into every volume.
#![no_main]

use std::sync::OnceLock;

use format_spec::manifest::BundleManifest;
use format_spec::table::VolumeTable;
use ferry_fuzz::{
    parts_of, put, read_everything, relocate, trusted, Parts, VectorKey, VALID_BUNDLE,
};
use libfuzzer_sys::fuzz_target;

fn parts() -> &'static Vec<Parts> {
    static P: OnceLock<Vec<Parts>> = OnceLock::new();
    P.get_or_init(|| VALID_BUNDLE.iter().map(|b| parts_of(b)).collect())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (table, manifest) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let k = usize::from(flags & 7) % VALID_BUNDLE.len();
    let mut vols: Vec<Parts> = parts().clone();
    if let Some(m) = manifest {
        let sealed = (flags & 0x40 != 0)
            .then(|| serde_json::from_slice::<BundleManifest>(m).ok())
            .flatten()
            // A sealed manifest keeps the version of the bundle, so its entry name holds.
            .map(|mut m| {
                m.ferry_bundle = vols[k].original.ferry_bundle;
                Some(m)
            })
            .flatten();
        match sealed {
            Some(mut m) => {
                m.seal();
                let bytes = m.stored_bytes(0);
                // Each table follows the manifest; writing recomputes its offsets and
                // document digests (as `relocate` does for the fuzzed table below).
                for v in &mut vols {
                    v.table.bundle_id = m.bundle_id;
                    v.table.volume_count = m.volume_count;
                    v.manifest = bytes.clone();
                    v.mtime = m.created;
                }
            }
            None => vols[k].manifest = m.to_vec(),
        }
    }
    let canonical = (flags & 0x80 != 0)
        .then(|| serde_json::from_slice::<VolumeTable>(table).ok())
        .flatten();
    let table_k = match canonical {
        Some(mut t) => {
            relocate(&mut t, &vols[k].manifest, &vols[k].index);
            t.to_bytes()
        }
        None => table.to_vec(),
    };
    // The table entry is named for the volume the fuzzed table claims to be, if it says.
    vols[k].table.volume = serde_json::from_slice::<VolumeTable>(&table_k)
        .map(|t| t.volume)
        .unwrap_or(k as u32 + 1);
    // With only the table changed, volume k alone is read (and the blobs it holds whole):
    // opening all five costs five times the signature checks. A sealed manifest goes into
    // every volume, and then the whole bundle is read (R27–R32 across volumes).
    let all = manifest.is_some() && flags & 0x40 != 0;
    let datas: Vec<Vec<u8>> = vols
        .iter()
        .enumerate()
        .filter(|(i, _)| all || *i == k)
        .map(|(i, v)| {
            if i == k {
                v.write_with(&VectorKey, &VectorKey, &|_| {}, &|_| table_k.clone())
            } else {
                v.write(&VectorKey)
            }
        })
        .collect();
    let paths: Vec<_> = datas
        .iter()
        .enumerate()
        .map(|(i, d)| put(&format!("resigned-{i}.tar"), d))
        .collect();
    let refs: Vec<&[u8]> = datas.iter().map(Vec::as_slice).collect();
    read_everything(&paths, &refs, Some(trusted()));
});
