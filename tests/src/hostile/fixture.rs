//! The good material every case is made from: bundles packed at test time from
//! `fixtures/` ([`Fixture`]), and volume 1 of the good one with the ways of damaging it
//! that several parts share ([`Good`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use format_spec::key::{PrivateKey, PublicKey};
use format_spec::manifest::BundleManifest;
use format_spec::read::Volume;
use format_spec::table::{Chunk, VolumeTable};
use tempfile::TempDir;
use test_support::resign::{resign_volumes, Parts};

use crate::{
    ferry_pack_bin, fixture, keygen, pack_ok, run_command, tempdir, volumes, Key, OutputExt,
};

use super::layout::Layout;
use super::tar::rewrite_header;
use super::{OLDER_EPOCH, VOLUME_SIZE};

/// Everything the cases are made from, in one temporary directory.
pub struct Fixture {
    pub dir: TempDir,
    /// The trusted key (`--trust key.public`), also used to re-sign changed documents.
    pub key: Key,
    pub secret: PrivateKey,
    pub public: PublicKey,
    /// A key nobody trusts.
    pub other: Key,
    pub other_secret: PrivateKey,
    /// `fixtures/oci` packed into 64 KiB volumes: the bundle the cases damage.
    pub good: Vec<PathBuf>,
    /// The same mirror packed with an earlier SOURCE_DATE_EPOCH: another, older bundle.
    pub older: Vec<PathBuf>,
    /// `fixtures/skopeo-dir` packed with the same key: another bundle, same signer.
    pub other_bundle: Vec<PathBuf>,
    /// `fixtures/oci` packed with the untrusted key.
    pub untrusted: Vec<PathBuf>,
    /// Digests of every blob the good bundle's signed manifest lists.
    pub vouched: BTreeSet<String>,
    /// Those some image needs (what a push of the good bundle uploads).
    pub image_blobs: BTreeSet<String>,
}

impl Fixture {
    pub fn build() -> Fixture {
        let dir = tempdir();
        let key = keygen(dir.path(), "site.key");
        let other = keygen(dir.path(), "other.key");
        let secret = PrivateKey::load(&key.private).expect("load the test key");
        let public = secret.public();
        let other_secret = PrivateKey::load(&other.private).expect("load the other key");
        let oci = fixture("oci");
        let good_dir = dir.path().join("good");
        pack_ok(&oci, &good_dir, VOLUME_SIZE, &key, &[]);
        let older_dir = dir.path().join("older");
        let mut c = Command::new(ferry_pack_bin());
        c.arg(&oci)
            .arg("--out")
            .arg(&older_dir)
            .args(["--volume-size", VOLUME_SIZE, "--key"])
            .arg(&key.private)
            .env("SOURCE_DATE_EPOCH", OLDER_EPOCH);
        let out = run_command(&mut c);
        assert_eq!(out.code(), 0, "pack the older bundle\n{}", out.dump());
        let other_dir = dir.path().join("other-bundle");
        pack_ok(&fixture("skopeo-dir"), &other_dir, VOLUME_SIZE, &key, &[]);
        let untrusted_dir = dir.path().join("untrusted");
        pack_ok(&oci, &untrusted_dir, VOLUME_SIZE, &other, &[]);
        let good = volumes(&good_dir);
        assert!(
            good.len() >= 3,
            "the fixture must pack into several volumes: {good:?}"
        );
        let v = Volume::open(&good[0], std::slice::from_ref(&public)).expect("good volume 1");
        let vouched = v
            .manifest
            .blobs
            .iter()
            .map(|b| b.digest.to_string())
            .collect();
        let image_blobs = v
            .manifest
            .images
            .iter()
            .flat_map(|i| &i.blobs)
            .map(|&b| v.manifest.blobs[b as usize].digest.to_string())
            .collect();
        Fixture {
            key,
            secret,
            public,
            other,
            other_secret,
            good,
            older: volumes(&older_dir),
            other_bundle: volumes(&other_dir),
            untrusted: volumes(&untrusted_dir),
            vouched,
            image_blobs,
            dir,
        }
    }

    pub(super) fn open(&self, path: &Path) -> Volume {
        Volume::open(path, std::slice::from_ref(&self.public))
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    }
}

pub(super) fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every volume of a bundle with its manifest changed by `edit`, sealed and re-signed.
pub(super) fn resign_bundle(
    fx: &Fixture,
    paths: &[PathBuf],
    edit: &dyn Fn(&mut BundleManifest),
) -> Vec<(String, Vec<u8>)> {
    resign_volumes(paths, &fx.secret, edit)
}

/// Volume 1 of the good bundle, as every case made from it starts, and the damage several
/// parts do to it.
pub(super) struct Good<'a> {
    pub(super) fx: &'a Fixture,
    pub(super) l: Layout,
    /// Volume 1 taken apart, to be changed and re-signed.
    pub(super) parts: Parts,
    /// Volume 1's file name.
    pub(super) vol1: String,
}

impl<'a> Good<'a> {
    pub(super) fn new(fx: &'a Fixture) -> Good<'a> {
        Good {
            fx,
            l: Layout::of(fx, &fx.good[0]),
            parts: Parts::read(&fx.good[0], &fx.public),
            vol1: file_name(&fx.good[0]),
        }
    }

    /// Volume 1's bytes.
    pub(super) fn bytes(&self) -> &Vec<u8> {
        &self.l.bytes
    }

    /// Volume 1's first chunk.
    pub(super) fn first(&self) -> Chunk {
        self.l.chunks[0]
    }

    /// The index of a chunk in the middle of volume 1's table.
    pub(super) fn mid(&self) -> usize {
        self.l.chunks.len() / 2
    }

    /// Volume 1 with the tar header at `at` rewritten by `f` (checksum fixed).
    pub(super) fn meta(&self, at: u64, f: &dyn Fn(&mut [u8])) -> Vec<u8> {
        let mut b = self.bytes().clone();
        rewrite_header(&mut b, at, f);
        b
    }

    /// Volume 1 with its first chunk's tar header rewritten by `f`.
    pub(super) fn chunk_header(&self, f: &dyn Fn(&mut [u8])) -> Vec<u8> {
        self.meta(self.first().offset, f)
    }

    /// What verify says of the first chunk's damaged header.
    pub(super) fn says_header(&self) -> Vec<String> {
        vec![format!(
            "tar header damaged at offset {}",
            self.first().offset
        )]
    }

    /// What verify says of the volume table's damaged entry.
    pub(super) fn table_says(&self) -> String {
        format!(
            "entry ferry/volume-0001.json at offset {} is damaged",
            self.l.table_offset
        )
    }

    /// What verify says of the trailer's damaged entry.
    pub(super) fn trailer_says(&self) -> String {
        format!(
            "entry ferry/trailer at offset {} is damaged",
            self.l.trailer_header()
        )
    }

    /// Volume 1 re-signed, its table changed by `f` after the offsets were computed (the
    /// file is left as it is).
    pub(super) fn table_lie(&self, f: &dyn Fn(&mut VolumeTable)) -> Vec<u8> {
        self.parts
            .write_with(&self.fx.secret, &self.fx.secret, f, &|b| b)
    }

    /// Volume 1 with its manifest changed by `f`, sealed and re-signed.
    pub(super) fn with_manifest(&self, f: &dyn Fn(&mut BundleManifest)) -> Vec<u8> {
        let mut p = self.parts.clone();
        let mut m = p.manifest();
        f(&mut m);
        p.set_manifest(&mut m);
        p.write(&self.fx.secret)
    }
}
