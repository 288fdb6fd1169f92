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
/// volumes and `*.bundle.json` manifests.
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
                } else if name.ends_with(".bundle.json") {
                    inputs.manifests.push(n);
                }
            }
        } else if p.to_string_lossy().ends_with(".bundle.json") {
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
    fn open(self, path: &Path) -> Result<Volume, FormatError> {
        match self {
            Trust::Keys(keys) => Volume::open(path, keys),
            Trust::Unverified => Volume::open_unverified(path),
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
    /// Standalone `*.bundle.json` manifests found among the paths.
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
        let given = inputs
            .volumes
            .into_iter()
            .map(|path| Given {
                volume: trust.open(&path),
                path,
            })
            .collect();
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
        opened.push(trust.open(p).map_err(SetError::Refused)?);
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
