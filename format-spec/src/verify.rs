//! `verify` over any set of volume files: each volume checked alone, then grouped into
//! bundles, so a report can say per volume ok / damaged / foreign / unreadable, which
//! images damage hurts, and which volumes are still missing (SPEC.md §6.1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{FormatError, Invalid};
use crate::key::PublicKey;
use crate::read::Volume;
use crate::rule::Rule;
use crate::state::StateDir;
use crate::volume_set::{Trust, VolumeSet};

// Where the volumes given are found and opened; kept here too for callers of `verify`.
pub use crate::volume_set::{collect_inputs, Inputs};

#[derive(Debug, Serialize)]
pub struct Report {
    /// The bundle the volumes were checked as part of.
    pub bundle: Option<BundleSummary>,
    pub volumes: Vec<VolumeReport>,
    /// Volumes of the bundle not among those given that verified (a given volume that
    /// could not be read or verified cannot be told apart from a missing one).
    pub missing_volumes: Vec<u32>,
    /// True when every volume given verified.
    pub ok: bool,
    /// Standalone manifests that did not verify, and similar findings outside volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The command that rewrites the damaged volumes on the connected side (not those
    /// merely not given, nor those signed by a key that was not trusted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_command: Option<String>,
    /// Fingerprints of the keys given to trust, for a report that says they do not match.
    pub trusted_keys: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BundleSummary {
    pub bundle_id: Digest,
    pub created: u64,
    pub volume_count: u32,
    pub images: usize,
    pub blobs: usize,
    pub signed_by: Option<String>,
}

/// What `verify` found of one volume (SPEC.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VolumeStatus {
    /// R1–R23, R33, R34 held and every chunk passed R24–R26.
    Ok,
    /// The volume verified, but some chunks failed R24–R26 or could not be read.
    Damaged,
    /// The volume verified but belongs to another bundle than "this" one (R27).
    Foreign,
    /// Whole and well formed, but signed by a key that is not trusted (R13): the `--trust`
    /// key does not match.
    Untrusted,
    /// A rule of R1–R23, R33, R34 failed: nothing in it can be trusted.
    Invalid,
    /// An I/O error stopped the reading; nothing is known about the volume.
    Unreadable,
}

impl VolumeStatus {
    /// The word of SPEC.md §6.1 and of `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeStatus::Ok => "ok",
            VolumeStatus::Damaged => "damaged",
            VolumeStatus::Foreign => "foreign",
            VolumeStatus::Untrusted => "untrusted",
            VolumeStatus::Invalid => "invalid",
            VolumeStatus::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for VolumeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Serialize)]
pub struct VolumeReport {
    pub path: PathBuf,
    pub volume: Option<u32>,
    pub bundle_id: Option<Digest>,
    /// `ok`, `damaged`, `foreign` (another bundle), `untrusted` (whole, but it names a
    /// signing key that is not among the trusted ones: the `--trust` key does not match),
    /// `invalid` (cannot be verified: truncated, a damaged or forged table, not a ferry
    /// volume) or `unreadable` (an I/O error).
    pub status: VolumeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The SPEC.md rule `error` reports (for `invalid` and `foreign` volumes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// For a volume that could not be verified: the number its file name claims
    /// (`ferry-<id>-NNN-of-MMM.tar`), unverified, so the report does not call it missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_volume: Option<u32>,
    /// For an `untrusted` volume: the fingerprint of the key its bundle manifest names as
    /// the signer (unverified: no trusted key can check it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_found: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damage: Vec<DamageReport>,
    /// Images that cannot be restored because of this volume's damage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images_hurt: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DamageReport {
    pub offset: u64,
    pub what: String,
    /// R24, R25 or R26; absent for an entry that could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_offset: Option<u64>,
}

/// Verifies every volume alone (signatures first, then every byte) and groups them.
pub fn verify(inputs: &Inputs, trusted: &[PublicKey], progress: &(dyn Fn(u64) + Sync)) -> Report {
    let inputs = Inputs {
        volumes: inputs.volumes.clone(),
        manifests: inputs.manifests.clone(),
    };
    verify_set(
        &VolumeSet::from_inputs(inputs, Trust::Keys(trusted)),
        trusted,
        progress,
    )
}

/// [`verify`] over volumes already opened with the keys `trusted`: every byte of each
/// one that opened, then the grouping into "this" bundle.
pub fn verify_set(
    set: &VolumeSet,
    trusted: &[PublicKey],
    progress: &(dyn Fn(u64) + Sync),
) -> Report {
    let mut reports = Vec::new();
    let mut opened: Vec<(usize, &Volume)> = Vec::new();
    for crate::volume_set::Given { path, volume } in &set.given {
        match volume {
            Ok(v) => {
                let damage = v.verify_chunks(progress);
                let m = &v.manifest;
                let mut hurt: Vec<String> = damage
                    .iter()
                    .filter_map(|d| d.chunk)
                    .flat_map(|c| m.images_using(c.blob))
                    .map(|i| m.images[i].display_name())
                    .collect();
                hurt.sort();
                hurt.dedup();
                reports.push(VolumeReport {
                    path: path.clone(),
                    volume: Some(v.table.volume),
                    bundle_id: Some(v.table.bundle_id),
                    status: if damage.is_empty() {
                        VolumeStatus::Ok
                    } else {
                        VolumeStatus::Damaged
                    },
                    error: None,
                    rule: None,
                    named_volume: None,
                    key_found: None,
                    damage: damage
                        .into_iter()
                        .map(|d| DamageReport {
                            offset: d.offset,
                            what: d.what,
                            rule: d.rule,
                            blob: d.chunk.map(|c| m.blobs[c.blob as usize].digest),
                            stream_offset: d.chunk.map(|c| c.stream_offset),
                        })
                        .collect(),
                    images_hurt: hurt,
                });
                opened.push((reports.len() - 1, v));
            }
            Err(e) => {
                let mut r = VolumeReport {
                    path: path.clone(),
                    volume: None,
                    bundle_id: None,
                    // An I/O error says nothing about the volume; anything else means it
                    // cannot be trusted (truncated, damaged table, forged, not a volume).
                    status: if matches!(e, FormatError::Io { .. }) {
                        VolumeStatus::Unreadable
                    } else {
                        VolumeStatus::Invalid
                    },
                    rule: e.rule(),
                    error: Some(e.to_string()),
                    named_volume: None,
                    key_found: None,
                    damage: Vec::new(),
                    images_hurt: Vec::new(),
                };
                if matches!(e, FormatError::Untrusted { .. }) {
                    signed_by_another_key(&mut r, trusted);
                }
                reports.push(r);
            }
        }
    }
    // Which bundle is "this" one: the standalone manifest's if one was given and verifies,
    // else the bundle most volumes belong to (the newest on a tie).
    let mut problems = Vec::new();
    let standalone = set
        .manifests
        .iter()
        .filter_map(|p| match standalone_summary(p, trusted, &opened) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(format!("standalone manifest ignored: {e}"));
                None
            }
        })
        .max_by_key(|m| m.created);
    let mut counts: BTreeMap<Digest, (usize, u64)> = BTreeMap::new();
    for (_, v) in &opened {
        let e = counts
            .entry(v.table.bundle_id)
            .or_insert((0, v.manifest.created));
        e.0 += 1;
    }
    let chosen = standalone.as_ref().map(|m| m.bundle_id).or_else(|| {
        counts
            .iter()
            .max_by_key(|(_, (n, created))| (*n, *created))
            .map(|(id, _)| *id)
    });
    // R27: "this" bundle's volumes carry byte-identical manifests, padding included, as
    // extract requires. The bytes most of them carry are the reference (ties: the first
    // given), so the report names the odd volume out, not the others.
    let mut spellings: Vec<(&[u8], usize)> = Vec::new();
    for (_, v) in opened
        .iter()
        .filter(|(_, v)| Some(v.table.bundle_id) == chosen)
    {
        let bytes = v.manifest_bytes.as_slice();
        match spellings.iter_mut().find(|(b, _)| *b == bytes) {
            Some((_, n)) => *n += 1,
            None => spellings.push((bytes, 1)),
        }
    }
    let most = spellings.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let reference: Option<&[u8]> = spellings.iter().find(|(_, n)| *n == most).map(|(b, _)| *b);
    let mut seen = std::collections::BTreeSet::new();
    let mut summary = None;
    for (i, v) in &opened {
        let same_bytes = reference == Some(v.manifest_bytes.as_slice());
        if Some(v.table.bundle_id) == chosen && !same_bytes {
            let r = &mut reports[*i];
            r.status = VolumeStatus::Foreign;
            r.rule = Some(Rule::R27);
            r.error = Some(crate::bundle::padding_differs(&v.table.bundle_id));
        } else if Some(v.table.bundle_id) == chosen {
            seen.insert(v.table.volume);
            summary.get_or_insert_with(|| BundleSummary {
                bundle_id: v.manifest.bundle_id,
                created: v.manifest.created,
                volume_count: v.manifest.volume_count,
                images: v.manifest.images.len(),
                blobs: v.manifest.blobs.len(),
                signed_by: v.signed_by.clone(),
            });
        } else {
            let r = &mut reports[*i];
            r.status = VolumeStatus::Foreign;
            r.rule = Some(Rule::R27);
            r.error = Some(format!(
                "belongs to bundle {} (created {}), not bundle {}",
                v.table.bundle_id,
                v.manifest.created,
                chosen.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
    }
    if summary.is_none() {
        if let Some(m) = &standalone {
            summary = Some(BundleSummary {
                bundle_id: m.bundle_id,
                created: m.created,
                volume_count: m.volume_count,
                images: m.images,
                blobs: m.blobs,
                signed_by: None,
            });
        }
    }
    if let Some(s) = &summary {
        let prefix = format!("ferry-{}-", &s.bundle_id.hex()[..12]);
        // (An `untrusted` volume keeps the number its table claims, and is not counted.)
        for r in reports
            .iter_mut()
            .filter(|r| r.volume.is_none() && r.status != VolumeStatus::Untrusted)
        {
            r.named_volume = named_volume(&r.path, &prefix);
            seen.extend(r.named_volume);
        }
    }
    let missing_volumes: Vec<u32> = summary
        .as_ref()
        .map(|s| (1..=s.volume_count).filter(|n| !seen.contains(n)).collect())
        .unwrap_or_default();
    let ok = !reports.is_empty() && reports.iter().all(|r| r.status == VolumeStatus::Ok);
    let repair_command = summary.as_ref().and_then(|s| {
        // Only what is known to be damaged: a volume not given may be fine where it is, and
        // one signed by another key is a question of which key to trust, not of the medium.
        let mut redo: Vec<u32> = reports
            .iter()
            .filter(|r| matches!(r.status, VolumeStatus::Damaged | VolumeStatus::Invalid))
            .filter_map(|r| r.volume.or(r.named_volume))
            .collect();
        redo.sort_unstable();
        redo.dedup();
        if redo.is_empty() {
            return None;
        }
        let m = opened.iter().map(|(_, v)| &v.manifest).find(|m| m.bundle_id == s.bundle_id);
        let (size, delta) = m.map_or((0, false), |m| (m.volume_size, m.is_delta()));
        Some(format!(
            "SOURCE_DATE_EPOCH={} ferry-pack <MIRROR> --out <DIR> --volume-size {size}B --key <KEY>{} --only-volume {}",
            s.created,
            if delta { " --base <THE SAME --base FILES>" } else { "" },
            redo.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
        ))
    });
    Report {
        bundle: summary,
        volumes: reports,
        missing_volumes,
        ok,
        problems,
        repair_command,
        trusted_keys: trusted.iter().map(PublicKey::fingerprint).collect(),
    }
}

/// A volume `verify --state` could not record, and why.
#[derive(Debug, thiserror::Error)]
#[error("could not record {} in {}: {error}", .path.display(), .state.display())]
pub struct NotRecorded {
    pub path: PathBuf,
    pub state: PathBuf,
    pub error: FormatError,
}

/// Keeps, in the state directory, the manifest and signed table of every volume of `set`
/// that `report` found `ok`, for `status` and later pushes (SPEC.md §6.4).
pub fn record_verified(set: &VolumeSet, report: &Report, state: &StateDir) -> Vec<NotRecorded> {
    let mut not_recorded = Vec::new();
    for (given, r) in set.given.iter().zip(&report.volumes) {
        let (VolumeStatus::Ok, Ok(v)) = (r.status, &given.volume) else {
            continue;
        };
        let stage = state.stage(&v.manifest.bundle_id);
        if let Err(error) = stage
            .save_manifest(&v.manifest_bytes)
            .and_then(|()| stage.save_table(v))
        {
            not_recorded.push(NotRecorded {
                path: given.path.clone(),
                state: state.root().to_owned(),
                error,
            });
        }
    }
    not_recorded
}

/// A volume whose signatures do not verify with any trusted key: when the volume is whole
/// and names a signing key that is not trusted, the `--trust` key simply does not match
/// (status `untrusted`, the key named); when it names a trusted key, the signature itself
/// is wrong (damaged or forged) and the volume stays `invalid`.
fn signed_by_another_key(r: &mut VolumeReport, trusted: &[PublicKey]) {
    let Ok(v) = Volume::open_unverified(&r.path) else {
        return;
    };
    let found = v.manifest.key.clone();
    if trusted.iter().any(|k| k.fingerprint() == found) {
        return;
    }
    let trusted: Vec<String> = trusted.iter().map(PublicKey::fingerprint).collect();
    r.status = VolumeStatus::Untrusted;
    r.error = Some(format!(
        "signed by key {found} (the key the volume names), not by a trusted key ({}): the --trust key does not match",
        if trusted.is_empty() { "none given".to_string() } else { trusted.join(", ") }
    ));
    // Unverified, like a file name: only so that the report does not call it missing.
    r.named_volume = Some(v.table.volume);
    r.key_found = Some(found);
}

/// `ferry-<id12>-003-of-007.tar` → 3, when the prefix is this bundle's.
fn named_volume(path: &Path, prefix: &str) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix(prefix)?.strip_suffix(".tar")?;
    rest.split_once("-of-")?.0.parse().ok()
}

/// What `verify` takes from a standalone manifest: the bundle it names, and its counts.
struct Standalone {
    bundle_id: Digest,
    created: u64,
    volume_count: u32,
    images: usize,
    blobs: usize,
}

impl Standalone {
    fn of(m: &crate::manifest::BundleManifest) -> Standalone {
        Standalone {
            bundle_id: m.bundle_id,
            created: m.created,
            volume_count: m.volume_count,
            images: m.images.len(),
            blobs: m.blobs.len(),
        }
    }
}

/// Reads a standalone manifest for what `verify` reports of it. A bundle's own standalone
/// copy holds the very bytes its volumes carry: then the manifest a volume given already
/// parsed (and checked) stands for it, and only the copy's signature is checked — a second
/// parse of the same text would double the peak memory of `verify` (it is the largest
/// thing verify holds). Any other file is read and parsed whole ([`read_standalone`]).
fn standalone_summary(
    path: &Path,
    trusted: &[PublicKey],
    opened: &[(usize, &Volume)],
) -> Result<Standalone, FormatError> {
    let len = std::fs::metadata(path)
        .map_err(FormatError::io(path))?
        .len();
    for (_, v) in opened {
        if v.manifest_bytes.len() as u64 != len || !file_holds(path, &v.manifest_bytes)? {
            continue;
        }
        let mut sig_path = path.as_os_str().to_owned();
        sig_path.push(".sig");
        let sig = std::fs::read(&sig_path).map_err(FormatError::io(PathBuf::from(&sig_path)))?;
        // The same words as read_standalone's: the same finding either way.
        if !trusted.iter().any(|k| k.verify(&v.manifest_bytes, &sig)) {
            return Err(FormatError::Untrusted {
                path: path.to_owned(),
                rule: Rule::R10,
                detail: "the bundle manifest signature does not verify".into(),
            });
        }
        return Ok(Standalone::of(&v.manifest));
    }
    read_standalone(path, trusted).map(|m| Standalone::of(&m))
}

/// Whether the file at `path` holds exactly `bytes`, read a block at a time.
fn file_holds(path: &Path, bytes: &[u8]) -> Result<bool, FormatError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(FormatError::io(path))?;
    let mut block = vec![0u8; 1 << 20];
    let mut rest = bytes;
    loop {
        let n = file.read(&mut block).map_err(FormatError::io(path))?;
        if n == 0 {
            return Ok(rest.is_empty());
        }
        match rest.strip_prefix(&block[..n]) {
            Some(r) => rest = r,
            None => return Ok(false),
        }
    }
}

/// Reads a standalone manifest (`*.bundle.json.zst`, or version 1's `*.bundle.json`; the
/// version comes from the bytes, never the name), checking `<name>.sig` beside it. Bounded
/// as a volume's manifest entry is (R8) before anything is read.
pub fn read_standalone(
    path: &Path,
    trusted: &[PublicKey],
) -> Result<crate::manifest::BundleManifest, FormatError> {
    let size = std::fs::metadata(path)
        .map_err(FormatError::io(path))?
        .len();
    if size > crate::volume::MAX_DOCUMENT {
        return Err(FormatError::Invalid {
            path: path.to_owned(),
            invalid: Invalid::new(
                Rule::R8,
                format!(
                    "standalone bundle manifest is {size} bytes, over the {}-byte limit",
                    crate::volume::MAX_DOCUMENT
                ),
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(FormatError::io(path))?;
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    let sig = std::fs::read(&sig_path).map_err(FormatError::io(PathBuf::from(&sig_path)))?;
    if !trusted.iter().any(|k| k.verify(&bytes, &sig)) {
        return Err(FormatError::Untrusted {
            path: path.to_owned(),
            rule: Rule::R10,
            detail: "the bundle manifest signature does not verify".into(),
        });
    }
    crate::manifest::BundleManifest::parse(&bytes).map_err(|invalid| FormatError::Invalid {
        path: path.to_owned(),
        invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PrivateKey;

    /// The single-volume vector, its key, and a directory holding a copy of its volume
    /// with the manifest it carries beside it as a standalone copy, signed by `signer`.
    fn with_standalone(signer: &str, bytes: impl FnOnce(&[u8]) -> Vec<u8>) -> tempfile::TempDir {
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
        let dir = vectors.join("valid-single-volume");
        let t = tempfile::tempdir().unwrap();
        let name = "ferry-772623e2e1fa-002-of-005.tar";
        std::fs::copy(dir.join(name), t.path().join(name)).unwrap();
        let v = Volume::open_unverified(&dir.join(name)).unwrap();
        let copy = bytes(&v.manifest_bytes);
        let key = PrivateKey::load(&vectors.join(signer)).unwrap();
        let standalone = t.path().join("ferry-772623e2e1fa.bundle.json");
        std::fs::write(&standalone, &copy).unwrap();
        std::fs::write(
            t.path().join("ferry-772623e2e1fa.bundle.json.sig"),
            key.sign(&copy),
        )
        .unwrap();
        t
    }

    fn keys() -> Vec<PublicKey> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/valid-single-volume");
        vec![PublicKey::load(&dir.join("key.pub")).unwrap()]
    }

    fn report(t: &tempfile::TempDir) -> Report {
        let keys = keys();
        let set = VolumeSet::open(&[t.path().to_owned()], Trust::Keys(&keys)).unwrap();
        assert_eq!(set.manifests.len(), 1);
        verify_set(&set, &keys, &|_| {})
    }

    /// The bundle's own standalone copy (the bytes its volume carries) is taken from the
    /// volume's parsed manifest, its own signature still checked.
    #[test]
    fn a_standalone_copy_of_the_volumes_manifest_is_checked_by_its_signature() {
        let t = with_standalone("vector-key.pem", <[u8]>::to_vec);
        let r = report(&t);
        assert!(r.ok && r.problems.is_empty(), "{:?}", r.problems);
        let b = r.bundle.as_ref().unwrap();
        assert_eq!((b.volume_count, r.missing_volumes.len()), (5, 4));
        // The same bytes signed by another key: ignored, and said so.
        let t = with_standalone("other-key.pem", <[u8]>::to_vec);
        let r = report(&t);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0].starts_with("standalone manifest ignored: ")
                && r.problems[0].contains("the bundle manifest signature does not verify"),
            "{}",
            r.problems[0]
        );
    }

    /// A standalone file that is not the volume's bytes is parsed on its own, not taken
    /// from the volume: refused when it is not a manifest, read when it is one (here the
    /// same manifest with more padding).
    #[test]
    fn a_standalone_file_with_other_bytes_is_read_on_its_own() {
        let t = with_standalone("vector-key.pem", |b| {
            let mut b = b.to_vec();
            b[1] = b'!';
            b
        });
        let r = report(&t);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0].starts_with("standalone manifest ignored: ")
                && r.problems[0].contains("is not valid JSON"),
            "{}",
            r.problems[0]
        );
        assert!(r.ok, "the volume itself is fine");
        let t = with_standalone("vector-key.pem", |b| [b, b"   "].concat());
        let r = report(&t);
        assert!(r.ok && r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.bundle.as_ref().unwrap().volume_count, 5);
    }
}
