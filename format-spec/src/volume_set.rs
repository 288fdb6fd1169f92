//! Opening the volumes a user gives (SPEC.md §5.6, §6): the volume files found among the
//! paths, each opened and checked under a trust policy, grouped into one bundle, with what a
//! state directory (§6.4) kept of the volumes not at hand. `verify`, `extract`, `inspect`,
//! `push` and `receipt` all start here, so they agree on which volume counts and say the
//! same of one that does not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PublicKey;
use crate::read::Volume;
use crate::rule::Rule;
use crate::state::{StateDir, StateLock};

/// Volume files and standalone manifests found among the paths given.
#[derive(Debug, Default)]
pub struct Inputs {
    pub volumes: Vec<PathBuf>,
    pub manifests: Vec<PathBuf>,
}

/// Files are taken as given; directories are searched (not recursively) for `*.tar`
/// volumes and `*.bundle.json.zst` (or version 1's `*.bundle.json`) manifests.
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Inputs, FormatError> {
    let mut inputs = Inputs::default();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(FormatError::io(p))?;
        if meta.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(FormatError::io(p))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            names.sort();
            for n in names {
                let name = n
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') {
                    continue; // .partial files of an unfinished pack
                }
                if name.ends_with(".tar") {
                    inputs.volumes.push(n);
                } else if crate::volume::is_manifest_path_name(&name) {
                    inputs.manifests.push(n);
                }
            }
        } else if crate::volume::is_manifest_path_name(&p.to_string_lossy()) {
            inputs.manifests.push(p.clone());
        } else {
            inputs.volumes.push(p.clone());
        }
    }
    Ok(inputs)
}

/// How the volumes given are checked.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'k> {
    /// Every signature against these keys (R3, R10, R13, R33), then the structure.
    Keys(&'k [PublicKey]),
    /// No signature checked (`inspect` without `--trust`): nothing read may be trusted.
    Unverified,
}

impl Trust<'_> {
    /// Opens `path`, sharing the manifest of an `earlier` volume that carries the same one
    /// ([`Volume::open_beside`]): one copy, not one per volume given.
    fn open(self, path: &Path, earlier: &[&Volume]) -> Result<Volume, FormatError> {
        match self {
            Trust::Keys(keys) => Volume::open_beside(path, Some(keys), earlier),
            Trust::Unverified => Volume::open_beside(path, None, earlier),
        }
    }
}

/// What is done with a volume given that does not open (unreadable, not a volume, a damaged
/// or forged table, signed by a key not trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unopened {
    /// The whole set is refused with that volume's error (`extract`, `inspect`): their
    /// output would otherwise miss what the volume holds without saying so.
    Refuse,
    /// It is left out and named (`push`, `receipt`): what the others hold can go in now.
    LeaveOut,
}

/// A volume given that the bundle goes without, and why.
#[derive(Debug, thiserror::Error)]
#[error("left out: {error}")]
pub struct LeftOut {
    pub path: PathBuf,
    /// Why it did not open; carries the SPEC.md rule broken, if one was.
    pub error: FormatError,
}

impl LeftOut {
    pub fn rule(&self) -> Option<Rule> {
        self.error.rule()
    }
}

/// Why a set of volumes gives no bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// A path given cannot be read.
    #[error(transparent)]
    Inputs(FormatError),
    #[error("no volume files (*.tar) among the paths given")]
    NoVolumeFiles,
    /// A volume did not open, and every volume given must ([`Unopened::Refuse`]).
    #[error(transparent)]
    Refused(FormatError),
    /// Not one volume given opened ([`Unopened::LeaveOut`]).
    #[error("no volume could be opened{}", .left_out.iter().map(|l| format!("\n  {l}")).collect::<String>())]
    NoneOpened { left_out: Vec<LeftOut> },
    /// The volumes that opened belong to several bundles (R27): which to use is the user's
    /// choice, not ours.
    #[error("the volumes given belong to {} bundles ({}); push one bundle at a time", .bundles.len(), .bundles.iter().map(Digest::to_string).collect::<Vec<_>>().join(", "))]
    SeveralBundles { bundles: Vec<Digest> },
    /// The volumes do not make one bundle (R27: manifests not byte-identical).
    #[error(transparent)]
    Mixed(FormatError),
    /// The state directory cannot be used (its lock is held by another run, or it cannot
    /// be created); `left_out` are the volumes left out before it was tried.
    #[error("{source}")]
    State {
        source: FormatError,
        left_out: Vec<LeftOut>,
    },
}

/// Every volume file found among the paths, each with the outcome of opening it, in the
/// order found (`verify` reports each of them).
#[derive(Debug)]
pub struct VolumeSet {
    pub given: Vec<Given>,
    /// Standalone manifests (`*.bundle.json.zst`, `*.bundle.json`) found among the paths.
    pub manifests: Vec<PathBuf>,
}

/// One volume file given, and what opening it found.
#[derive(Debug)]
pub struct Given {
    pub path: PathBuf,
    pub volume: Result<Volume, FormatError>,
}

impl VolumeSet {
    /// Finds the volume files among `paths` and opens each under `trust`. Fails only when
    /// a path cannot be read, or when no volume file is among them.
    pub fn open(paths: &[PathBuf], trust: Trust<'_>) -> Result<VolumeSet, SetError> {
        let inputs = collect_inputs(paths).map_err(SetError::Inputs)?;
        if inputs.volumes.is_empty() {
            return Err(SetError::NoVolumeFiles);
        }
        Ok(VolumeSet::from_inputs(inputs, trust))
    }

    /// Opens each volume file of `inputs` under `trust`.
    pub fn from_inputs(inputs: Inputs, trust: Trust<'_>) -> VolumeSet {
        let mut given: Vec<Given> = Vec::with_capacity(inputs.volumes.len());
        for path in inputs.volumes {
            let earlier: Vec<&Volume> = given
                .iter()
                .filter_map(|g| g.volume.as_ref().ok())
                .collect();
            let volume = trust.open(&path, &earlier);
            given.push(Given { path, volume });
        }
        VolumeSet {
            given,
            manifests: inputs.manifests,
        }
    }

    /// The volumes that opened, with their place among those given.
    pub fn opened(&self) -> impl Iterator<Item = (usize, &Volume)> {
        self.given
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.volume.as_ref().ok().map(|v| (i, v)))
    }
}

/// Opens every volume file among `paths`; the first that does not open is the error
/// ([`Unopened::Refuse`]). For `inspect`, which lists volumes of any bundle as they are.
pub fn open_every(paths: &[PathBuf], trust: Trust<'_>) -> Result<Vec<Volume>, SetError> {
    let inputs = collect_inputs(paths).map_err(SetError::Inputs)?;
    let mut opened = Vec::with_capacity(inputs.volumes.len());
    for p in &inputs.volumes {
        // Stops at the first: the rest would not change the answer.
        let earlier: Vec<&Volume> = opened.iter().collect();
        let v = trust.open(p, &earlier).map_err(SetError::Refused)?;
        opened.push(v);
    }
    if opened.is_empty() {
        return Err(SetError::NoVolumeFiles);
    }
    Ok(opened)
}

/// How a bundle uses a state directory.
#[derive(Debug, Clone, Copy)]
pub enum StateUse<'a> {
    /// Reads what it kept, creates and writes nothing (a dry run).
    Read(&'a StateDir),
    /// Reads and writes it, holding its lock ([`StateLock`]) as long as the result lives.
    Write(&'a StateDir),
}

/// A bundle opened from the volumes given, and what was left out.
pub struct OpenBundle {
    /// The volumes that opened, by number, with what the state directory kept of others.
    pub bundle: Bundle,
    /// Volumes given that did not open ([`Unopened::LeaveOut`]).
    pub left_out: Vec<LeftOut>,
    /// Records of the state directory that were ignored (unverifiable, of another bundle,
    /// not fitting the manifest), each named.
    pub state_problems: Vec<String>,
    /// The state directory's lock, for [`StateUse::Write`]: held until this is dropped.
    pub lock: Option<StateLock>,
}

/// Opens the volumes among `paths` with the keys `trusted` as one bundle: each checked
/// (SPEC.md §5.6), all of one bundle with byte-identical manifests (R27), a volume given
/// twice kept once; with a state directory, the tables and chunks it kept of volumes not
/// at hand are added, each verified again (§6.4).
pub fn open_bundle(
    paths: &[PathBuf],
    trusted: &[PublicKey],
    unopened: Unopened,
    state: Option<StateUse<'_>>,
) -> Result<OpenBundle, SetError> {
    let (opened, left_out) = match unopened {
        Unopened::Refuse => (open_every(paths, Trust::Keys(trusted))?, Vec::new()),
        Unopened::LeaveOut => {
            let set = match VolumeSet::open(paths, Trust::Keys(trusted)) {
                Err(SetError::NoVolumeFiles) => {
                    return Err(SetError::NoneOpened {
                        left_out: Vec::new(),
                    })
                }
                other => other?,
            };
            let mut opened = Vec::new();
            let mut left_out = Vec::new();
            for g in set.given {
                match g.volume {
                    Ok(v) => opened.push(v),
                    Err(error) => left_out.push(LeftOut {
                        path: g.path,
                        error,
                    }),
                }
            }
            if opened.is_empty() {
                return Err(SetError::NoneOpened { left_out });
            }
            let bundles: BTreeSet<Digest> = opened.iter().map(|v| v.table.bundle_id).collect();
            if bundles.len() > 1 {
                return Err(SetError::SeveralBundles {
                    bundles: bundles.into_iter().collect(),
                });
            }
            (opened, left_out)
        }
    };
    let bundle = Bundle::new(opened).map_err(SetError::Mixed)?;
    let Some(state) = state else {
        return Ok(OpenBundle {
            bundle,
            left_out,
            state_problems: Vec::new(),
            lock: None,
        });
    };
    let (dir, lock) = match state {
        StateUse::Read(dir) => (dir, None),
        StateUse::Write(dir) => match dir.lock() {
            Ok(lock) => (dir, Some(lock)),
            Err(source) => return Err(SetError::State { source, left_out }),
        },
    };
    let stage = dir.stage(&bundle.manifest.bundle_id);
    let (bundle, state_problems) = bundle.with_stage(stage, trusted);
    Ok(OpenBundle {
        bundle,
        left_out,
        state_problems,
        lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A committed test vector (SPEC.md §10): its directory and its trusted key.
    fn vector(name: &str) -> (PathBuf, Vec<PublicKey>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("vectors")
            .join(name);
        let key = PublicKey::load(&dir.join("key.pub")).unwrap();
        (dir, vec![key])
    }

    /// A file named like a volume that is not one.
    fn garbage(t: &tempfile::TempDir) -> PathBuf {
        let p = t.path().join("ferry-000000000000-009-of-009.tar");
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        p
    }

    /// A push lets go of the tree and the stored bytes: the bundle and its volumes still
    /// share one manifest, with every blob and image, and every blob still reads whole.
    #[test]
    fn a_bundle_without_its_tree_still_reads_every_blob() {
        let (dir, keys) = vector("valid-bundle");
        let mut bundle = open_bundle(&[dir], &keys, Unopened::Refuse, None)
            .unwrap()
            .bundle;
        let before = (*bundle.manifest).clone();
        assert!(!before.tree.is_empty());
        bundle.drop_tree_and_stored_bytes();
        assert!(bundle.manifest.tree.is_empty() && bundle.manifest_bytes.is_empty());
        assert_eq!(bundle.manifest.blobs, before.blobs);
        assert_eq!(bundle.manifest.images, before.images);
        assert_eq!(bundle.manifest.bundle_id, before.bundle_id);
        for v in bundle.volumes.values() {
            assert!(Arc::ptr_eq(&v.manifest, &bundle.manifest));
            assert!(v.manifest_bytes.is_empty());
        }
        for (i, b) in before.blobs.iter().enumerate() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut bundle.open_blob(i as u32).unwrap(), &mut bytes)
                .unwrap();
            assert_eq!(crate::Digest::of(&bytes), b.digest);
        }
    }

    /// Five volumes of one bundle hold one manifest between them, not five; volumes whose
    /// manifests differ (in padding only) keep their own.
    #[test]
    fn volumes_of_one_bundle_share_one_manifest() {
        let (dir, keys) = vector("valid-bundle");
        let set = VolumeSet::open(std::slice::from_ref(&dir), Trust::Keys(&keys)).unwrap();
        let opened: Vec<&Volume> = set.opened().map(|(_, v)| v).collect();
        assert_eq!(opened.len(), 5);
        for v in &opened[1..] {
            assert!(Arc::ptr_eq(&v.manifest, &opened[0].manifest));
            assert!(Arc::ptr_eq(&v.manifest_bytes, &opened[0].manifest_bytes));
        }
        let every = open_every(&[dir], Trust::Unverified).unwrap();
        assert!(every[1..]
            .iter()
            .all(|v| Arc::ptr_eq(&v.manifest, &every[0].manifest)));
        let (dir, keys) = vector("volume-padding-differs");
        let set = VolumeSet::open(&[dir], Trust::Keys(&keys)).unwrap();
        let opened: Vec<&Volume> = set.opened().map(|(_, v)| v).collect();
        assert!(opened.len() >= 2);
        assert!(opened[1..]
            .iter()
            .any(|v| !Arc::ptr_eq(&v.manifest, &opened[0].manifest)));
    }

    #[test]
    fn a_push_leaves_out_what_does_not_open_and_names_it_with_its_rule() {
        let (dir, keys) = vector("valid-bundle");
        let t = tempfile::tempdir().unwrap();
        let bad = garbage(&t);
        let o = open_bundle(&[dir, bad.clone()], &keys, Unopened::LeaveOut, None).unwrap();
        assert_eq!(o.bundle.volumes.len(), 5);
        assert!(o.bundle.missing_volumes().is_empty());
        assert_eq!(o.left_out.len(), 1);
        assert_eq!(o.left_out[0].path, bad);
        assert!(o.left_out[0].rule().is_some(), "{:?}", o.left_out[0]);
        let text = o.left_out[0].to_string();
        assert!(
            text.starts_with("left out: ") && text.contains(&bad.display().to_string()),
            "{text}"
        );
        assert!(o.lock.is_none() && o.bundle.stage.is_none());
    }

    #[test]
    fn extract_refuses_the_set_for_one_volume_that_does_not_open() {
        let (dir, keys) = vector("valid-bundle");
        let t = tempfile::tempdir().unwrap();
        let bad = garbage(&t);
        match open_bundle(&[dir, bad.clone()], &keys, Unopened::Refuse, None) {
            Err(SetError::Refused(e)) => {
                assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
            }
            other => panic!("not refused: {:?}", other.err()),
        }
    }

    #[test]
    fn nothing_opened_and_nothing_given_are_told_apart_by_policy() {
        let (dir, keys) = vector("untrusted-key");
        match open_bundle(&[dir], &keys, Unopened::LeaveOut, None) {
            Err(e @ SetError::NoneOpened { .. }) => {
                let SetError::NoneOpened { left_out } = &e else {
                    unreachable!()
                };
                assert_eq!(left_out.len(), 1);
                assert_eq!(left_out[0].rule(), Some(Rule::R3));
                let text = e.to_string();
                assert!(
                    text.starts_with("no volume could be opened\n  left out: "),
                    "{text}"
                );
            }
            other => panic!("{:?}", other.err()),
        }
        let empty = tempfile::tempdir().unwrap();
        let paths = [empty.path().to_owned()];
        assert!(matches!(
            open_bundle(&paths, &keys, Unopened::LeaveOut, None).err(),
            Some(SetError::NoneOpened { left_out }) if left_out.is_empty()
        ));
        assert!(matches!(
            open_bundle(&paths, &keys, Unopened::Refuse, None).err(),
            Some(SetError::NoVolumeFiles)
        ));
        assert!(matches!(
            open_every(&paths, Trust::Unverified).err(),
            Some(SetError::NoVolumeFiles)
        ));
        assert!(matches!(
            VolumeSet::open(&[empty.path().join("gone")], Trust::Keys(&keys)).err(),
            Some(SetError::Inputs(FormatError::Io { .. }))
        ));
    }

    #[test]
    fn volumes_of_two_bundles_are_refused_naming_both() {
        let (dir, keys) = vector("foreign-volume");
        match open_bundle(&[dir], &keys, Unopened::LeaveOut, None) {
            Err(e @ SetError::SeveralBundles { .. }) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("the volumes given belong to 2 bundles (sha256:")
                        && text.ends_with("); push one bundle at a time"),
                    "{text}"
                );
            }
            other => panic!("{:?}", other.err()),
        }
        // Same bundle id, other padding: R27 from the grouping itself.
        let (dir, keys) = vector("volume-padding-differs");
        match open_bundle(&[dir], &keys, Unopened::Refuse, None) {
            Err(SetError::Mixed(e)) => {
                assert_eq!(e.rule(), Some(Rule::R27));
                assert!(e.to_string().contains("not byte-identical"), "{e}");
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn inspect_opens_unverified_without_keys_and_verified_with_them() {
        let (dir, keys) = vector("untrusted-key");
        let v = open_every(std::slice::from_ref(&dir), Trust::Unverified).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].signed_by.is_none());
        assert!(matches!(
            open_every(&[dir], Trust::Keys(&keys)).err(),
            Some(SetError::Refused(FormatError::Untrusted { .. }))
        ));
    }

    #[test]
    fn a_push_takes_the_state_lock_after_the_volumes_and_a_dry_run_creates_nothing() {
        let (dir, keys) = vector("valid-single-volume");
        let t = tempfile::tempdir().unwrap();
        let state = StateDir::new(t.path().join("state"));
        let paths = [dir];
        let read = open_bundle(
            &paths,
            &keys,
            Unopened::LeaveOut,
            Some(StateUse::Read(&state)),
        )
        .unwrap();
        assert!(read.lock.is_none() && read.bundle.stage.is_some());
        assert!(
            !state.root().exists(),
            "a dry run created the state directory"
        );
        let held = open_bundle(
            &paths,
            &keys,
            Unopened::LeaveOut,
            Some(StateUse::Write(&state)),
        )
        .unwrap();
        assert!(held.lock.is_some());
        // A second run meets the lock; the volumes it left out are still its to name.
        let bad = garbage(&t);
        let both = [paths[0].clone(), bad.clone()];
        match open_bundle(
            &both,
            &keys,
            Unopened::LeaveOut,
            Some(StateUse::Write(&state)),
        ) {
            Err(SetError::State {
                source: FormatError::StateBusy { .. },
                left_out,
            }) => {
                assert_eq!(left_out.len(), 1);
                assert_eq!(left_out[0].path, bad);
            }
            other => panic!("{:?}", other.err()),
        }
        // Volumes that do not open are said before the state directory is touched.
        drop(held);
        let (untrusted, _) = vector("untrusted-key");
        let fresh = StateDir::new(t.path().join("fresh"));
        assert!(open_bundle(
            &[untrusted],
            &keys,
            Unopened::LeaveOut,
            Some(StateUse::Write(&fresh))
        )
        .is_err());
        assert!(!fresh.root().exists(), "a refused push created its state");
    }
}
