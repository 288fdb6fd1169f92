//! Part 5: another bundle by the same key, and an older bundle replayed: each verifies
//! alone (SPEC.md §2), but given with this bundle's volumes it is foreign (R27).

use std::fs;
use std::path::Path;

use test_support::resign::Parts;

use super::case::{Case, Cases, CaughtBy};
use super::fixture::{file_name, Good};

/// Foreign and replayed volumes.
pub(super) fn add(cs: &mut Cases, g: &Good) {
    let fx = g.fx;
    // 5. Another bundle by the same key, and an older bundle replayed: each verifies
    //    alone (SPEC.md §2), but given with this bundle's volumes it is foreign (R27).
    let mixed = |foreign: &Path, drop: Option<usize>| {
        let mut files: Vec<(String, Vec<u8>)> = fx
            .good
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != drop)
            .map(|(_, p)| (file_name(p), fs::read(p).unwrap()))
            .collect();
        let name = format!("foreign-{}", file_name(foreign));
        files.push((name.clone(), fs::read(foreign).unwrap()));
        (files, name)
    };
    let foreign_case = |name: &str, files: Vec<(String, Vec<u8>)>, hostile: String| Case {
        name: name.into(),
        category: "foreign",
        files,
        hostile: vec![hostile],
        status: "foreign",
        says: vec!["belongs to bundle".into()],
        absent: Vec::new(),
        vouched: Vec::new(),
        caught_by: CaughtBy::Verify,
    };
    let (files, h) = mixed(&fx.other_bundle[0], None);
    cs.out.push(foreign_case(
        "volume 1 of another bundle signed by the same key, with this bundle's volumes",
        files,
        h,
    ));
    let (files, h) = mixed(&fx.older[1], Some(1));
    cs.out.push(foreign_case(
        "volume 2 of an older bundle of the same mirror, in place of this bundle's volume 2",
        files,
        h,
    ));
    let files = vec![
        (file_name(&fx.older[0]), fs::read(&fx.older[0]).unwrap()),
        (file_name(&fx.good[1]), fs::read(&fx.good[1]).unwrap()),
    ];
    cs.out.push(foreign_case(
        "volume 1 of the older bundle and volume 2 of the newer (a tie: the newer wins)",
        files,
        file_name(&fx.older[0]),
    ));
    let (mut files, _) = mixed(&fx.good[1], Some(1));
    files.pop();
    let mut p = Parts::read(&fx.good[1], &fx.public);
    let mut m = p.manifest();
    m.created -= 1;
    p.set_manifest(&mut m);
    let name = format!("resealed-{}", file_name(&fx.good[1]));
    files.push((name.clone(), p.write(&fx.secret)));
    cs.out.push(foreign_case(
        "volume 2 re-signed into another bundle (created one second earlier)",
        files,
        name,
    ));
}
