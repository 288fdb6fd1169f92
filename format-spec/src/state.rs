//! The state directory (SPEC.md §6.4): what a reader keeps between runs so disks can
//! arrive one at a time, in any order, without extracting anything else — the signed tables
//! of volumes seen, verified copies of the chunks of blobs that span into volumes not at
//! hand, the bundle manifest and the record of the last push (for `status`), and the lock
//! that keeps it to one run at a time. This module alone knows the names of its files:
//!
//! ```text
//! STATE/lock                                              held by the one run using STATE
//! STATE/<bundle id hex>/tables/volume-NNNN.json(.sig)   exact signed bytes
//! STATE/<bundle id hex>/chunks/<chunk entry name's file part>
//! STATE/<bundle id hex>/bundle.json                      the manifest as stored (v1 or v2), for `status`
//! STATE/<bundle id hex>/last-push.json                   the report of the last push
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PublicKey;
use crate::read::Volume;
use crate::table::VolumeTable;

/// The name of the lock file in a state directory's root.
const LOCK_NAME: &str = "lock";
const TABLES_DIR: &str = "tables";
const CHUNKS_DIR: &str = "chunks";
const MANIFEST_NAME: &str = "bundle.json";
const LAST_PUSH_NAME: &str = "last-push.json";

/// A state directory: its root, and the bundles recorded under it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// What a state directory holds of one bundle, as `status` shows it: local records,
/// written from verified volumes, shown without being verified again.
#[derive(Debug)]
pub struct Recorded {
    /// What `status` shows of the kept manifest.
    pub manifest: RecordedManifest,
    /// Volume numbers whose signed tables were kept.
    pub volumes_seen: Vec<u32>,
    /// Staged chunk files and their total size.
    pub staged_chunks: usize,
    pub staged_bytes: u64,
    /// Where the bundle's records are; the last push's is read on demand
    /// ([`Recorded::last_push`]): at 6×10^4 images it is tens of MB of JSON.
    pub stage: Stage,
}

impl Recorded {
    /// The record of the last push (its report) as `T`, when there was one and it reads
    /// as one; read streaming, so memory is that of `T` alone.
    pub fn last_push<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.stage.last_push()
    }
}

/// The members of a kept bundle manifest that `status` shows. Read streaming, skipping the
/// images, blobs and tree: a whole parse would hold the largest document of the bundle
/// (some 300 MB at 6×10^4 images) to print three numbers.
#[derive(Debug, serde::Deserialize)]
pub struct RecordedManifest {
    /// The bundle manifest version (`ferry_bundle`).
    #[serde(rename = "ferry_bundle")]
    pub version: u32,
    pub bundle_id: Digest,
    pub created: u64,
    pub volume_count: u32,
}

impl RecordedManifest {
    /// Reads the kept manifest at `path` (its stored bytes, as a volume carries them: JSON
    /// padded with spaces, or one zstd frame of it padded with a skippable frame). `None`
    /// when it does not read as a manifest of bundle `id`.
    fn read(path: &Path, id: &Digest) -> Option<RecordedManifest> {
        use std::io::{BufReader, Read};
        let mut file = BufReader::new(fs::File::open(path).ok()?);
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic).ok()?;
        let head = io::Cursor::new(magic).chain(file);
        let m: RecordedManifest = if magic == ZSTD_MAGIC {
            serde_json::from_reader(zstd::stream::read::Decoder::new(head).ok()?).ok()?
        } else {
            serde_json::from_reader(head).ok()?
        };
        (m.bundle_id == *id).then_some(m)
    }
}

/// The magic number of a zstd frame (RFC 8878 §3.1.1), as a stored manifest may start.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the lock on this state directory (see [`StateLock::acquire`]).
    pub fn lock(&self) -> Result<StateLock, FormatError> {
        StateLock::acquire(&self.root)
    }

    /// The share of one bundle (its directory is created on first write).
    pub fn stage(&self, bundle_id: &Digest) -> Stage {
        Stage {
            dir: self.root.join(bundle_id.hex()),
        }
    }

    /// Every bundle recorded (one whose manifest was kept and parses), by bundle id.
    /// `None` when the state directory does not exist: nothing was recorded yet.
    pub fn bundles(&self) -> io::Result<Option<Vec<Recorded>>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(MANIFEST_NAME).is_file())
            .collect();
        dirs.sort();
        let mut out = Vec::new();
        for dir in dirs {
            let Some(id) = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                continue;
            };
            let stage = self.stage(&id);
            let Some(manifest) = RecordedManifest::read(&stage.dir.join(MANIFEST_NAME), &id) else {
                continue;
            };
            let (staged_chunks, staged_bytes) = stage.staged();
            out.push(Recorded {
                manifest,
                volumes_seen: stage.volumes_seen(),
                staged_chunks,
                staged_bytes,
                stage,
            });
        }
        Ok(Some(out))
    }
}

/// A state directory's share of one bundle: its signed tables, staged chunks and records.
#[derive(Debug)]
pub struct Stage {
    dir: PathBuf,
}

impl Stage {
    /// The bundle's directory under the state root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn tables(&self) -> PathBuf {
        self.dir.join(TABLES_DIR)
    }

    fn chunks(&self) -> PathBuf {
        self.dir.join(CHUNKS_DIR)
    }
    /// Keeps a volume's signed table, so later runs know its chunks without the disk.
    pub fn save_table(&self, v: &Volume) -> Result<(), FormatError> {
        let (bytes, sig) = v.signed_table()?;
        let dir = self.tables();
        let name = format!("volume-{:04}.json", v.table.volume);
        write_atomic(&dir.join(&name), &bytes)?;
        write_atomic(&dir.join(format!("{name}.sig")), sig)
    }

    /// Tables kept by earlier runs, each checked against the trusted keys again (the state
    /// directory is not trusted more than the media). Unverifiable ones are skipped and named.
    pub fn load_tables(
        &self,
        trusted: &[PublicKey],
        bundle_id: &Digest,
    ) -> (BTreeMap<u32, VolumeTable>, Vec<String>) {
        let mut tables = BTreeMap::new();
        let mut problems = Vec::new();
        let Ok(entries) = fs::read_dir(self.tables()) else {
            return (tables, problems);
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            let mut sig_path = p.clone().into_os_string();
            sig_path.push(".sig");
            let (Ok(bytes), Ok(sig)) = (fs::read(&p), fs::read(&sig_path)) else {
                problems.push(format!("{}: unreadable", p.display()));
                continue;
            };
            if !trusted.iter().any(|k| k.verify(&bytes, &sig)) {
                problems.push(format!(
                    "{}: signature does not verify; ignored",
                    p.display()
                ));
                continue;
            }
            match VolumeTable::parse(&bytes) {
                Ok(t) if t.bundle_id == *bundle_id => {
                    tables.insert(t.volume, t);
                }
                Ok(_) => problems.push(format!(
                    "{}: belongs to another bundle; ignored",
                    p.display()
                )),
                Err(e) => problems.push(format!("{}: {e}", p.display())),
            }
        }
        (tables, problems)
    }

    /// Keeps the bundle manifest, for `status`.
    pub fn save_manifest(&self, bytes: &[u8]) -> Result<(), FormatError> {
        write_atomic(&self.dir.join(MANIFEST_NAME), bytes)
    }

    /// Keeps the report of a push (JSON; its fields are the pusher's, not the format's).
    pub fn save_last_push(&self, bytes: &[u8]) -> Result<(), FormatError> {
        write_atomic(&self.dir.join(LAST_PUSH_NAME), bytes)
    }

    /// As [`Stage::save_last_push`], the bytes `write` gives streamed into the file as it
    /// makes them (a push of 6×10^4 images reports 20 MB of JSON, not worth holding whole).
    pub fn save_last_push_with(
        &self,
        write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<(), FormatError> {
        let path = self.dir.join(LAST_PUSH_NAME);
        let dir = path.parent().expect("stage paths have a parent");
        fs::create_dir_all(dir).map_err(FormatError::io(dir))?;
        durable_file::write_streamed(&path, write).map_err(FormatError::io(&path))
    }

    /// The report the last push kept, if it reads as `T` (e.g. `serde_json::Value`).
    pub fn last_push<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let file = fs::File::open(self.dir.join(LAST_PUSH_NAME)).ok()?;
        serde_json::from_reader(io::BufReader::new(file)).ok()
    }

    /// Volume numbers whose signed tables were kept.
    fn volumes_seen(&self) -> Vec<u32> {
        let mut out: Vec<u32> = fs::read_dir(self.tables())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("volume-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Staged chunk files and their total size.
    fn staged(&self) -> (usize, u64) {
        fs::read_dir(self.chunks())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
    }

    /// Where a staged chunk lives (whether or not it exists).
    pub(crate) fn chunk_path(&self, entry_name: &str) -> PathBuf {
        let file = entry_name.rsplit('/').next().unwrap_or(entry_name);
        self.chunks().join(file)
    }

    /// Keeps a verified copy of a chunk's stored bytes.
    pub fn stage_chunk(&self, entry_name: &str, data: &[u8]) -> Result<(), FormatError> {
        write_atomic(&self.chunk_path(entry_name), data)
    }

    /// Removes staged chunks of a blob once it is safely in the registry.
    pub fn forget_chunk(&self, entry_name: &str) {
        let _ = fs::remove_file(self.chunk_path(entry_name));
    }
}

/// The state directory held by this process alone (`STATE/lock`, an exclusive `flock`),
/// released when dropped or when the process ends however it ends, so a crash or a kill
/// leaves no stale lock behind. Two pushes sharing one state directory would otherwise
/// each see the other's staged chunks come and go, and split the work between them.
#[derive(Debug)]
pub struct StateLock {
    _file: fs::File,
}

impl StateLock {
    /// Takes the lock on the state directory `root` (created if need be), or says which
    /// process holds it. Does not wait: the user decides whether to wait or use another.
    pub fn acquire(root: &Path) -> Result<StateLock, FormatError> {
        use rustix::fs::{flock, FlockOperation, Mode, OFlags};
        fs::create_dir_all(root).map_err(FormatError::io(root))?;
        let path = root.join(LOCK_NAME);
        // NOFOLLOW: a link planted at the lock's name is refused, not opened (and written).
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| {
            let e = match e {
                rustix::io::Errno::LOOP => durable_file::refuse_symlink(&path)
                    .err()
                    .unwrap_or_else(|| e.into()),
                e => e.into(),
            };
            FormatError::io(&path)(e)
        })?;
        let mut file = fs::File::from(fd);
        if !file.metadata().map_err(FormatError::io(&path))?.is_file() {
            return Err(FormatError::io(&path)(std::io::Error::other(
                "not a regular file; remove it",
            )));
        }
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                // The holder wrote its pid after taking the lock; it may not have yet.
                let holder = fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok());
                return Err(FormatError::StateBusy {
                    dir: root.to_owned(),
                    holder,
                });
            }
            Err(e) => return Err(FormatError::io(&path)(e.into())),
        }
        // The pid is for the message of a run that finds the lock taken; not for locking.
        use std::io::{Seek, Write};
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(FormatError::io(&path))?;
        Ok(StateLock { _file: file })
    }
}

/// Every state file goes through `durable_file`: an exclusive temporary with a random name
/// (a link planted at a predictable name is never followed), fsynced, renamed; a final
/// name that is a symbolic link is refused; a failed write (a full disk) leaves nothing.
/// Worker threads may write the same file at once: each has its own temporary, and the
/// renames (of identical content) replace one another atomically.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FormatError> {
    let dir = path.parent().expect("stage paths have a parent");
    fs::create_dir_all(dir).map_err(FormatError::io(dir))?;
    durable_file::write(path, bytes).map_err(FormatError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(root: &Path) -> Stage {
        StateDir::new(root).stage(&Digest::of(b"a bundle"))
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_a_state_file_or_its_old_temporary_name_is_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let s = stage(&t.path().join("state"));
        fs::create_dir_all(&s.dir).unwrap();
        // The names the state directory used before: `.NAME.PID.N.partial`.
        for n in 0..8 {
            let old = s.dir.join(format!(
                ".last-push.json.{}.{n}.partial",
                std::process::id()
            ));
            std::os::unix::fs::symlink(&victim, old).unwrap();
        }
        s.save_last_push(b"{}").unwrap();
        s.save_last_push_with(|w| w.write_all(br#"{"streamed":true}"#))
            .unwrap();
        assert_eq!(
            s.last_push::<serde_json::Value>(),
            Some(serde_json::json!({"streamed": true}))
        );
        s.save_last_push(b"{}").unwrap();
        assert_eq!(fs::read(s.dir.join("last-push.json")).unwrap(), b"{}");
        // A link at the final name is refused, and what it points at is left alone.
        std::os::unix::fs::symlink(&victim, s.dir.join("bundle.json")).unwrap();
        let e = s.save_manifest(b"manifest").unwrap_err().to_string();
        assert!(
            e.contains("bundle.json") && e.contains("symbolic link"),
            "{e}"
        );
        fs::create_dir_all(s.chunks()).unwrap();
        std::os::unix::fs::symlink(&victim, s.chunk_path("chunks/c.0001")).unwrap();
        assert!(s.stage_chunk("chunks/c.0001", b"chunk").is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(s.staged(), (0, 0), "no temporary left among the chunks");
    }

    /// What `verify --state` and a push keep is what `status` reads back.
    #[test]
    fn status_reads_back_what_verify_and_push_recorded() {
        use crate::verify::{record_verified, verify_set};
        use crate::volume_set::{Trust, VolumeSet};
        let t = tempfile::tempdir().unwrap();
        let state = StateDir::new(t.path().join("state"));
        assert!(state.bundles().unwrap().is_none(), "no state directory yet");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/valid-single-volume");
        let keys = vec![PublicKey::load(&dir.join("key.pub")).unwrap()];
        let set = VolumeSet::open(&[dir], Trust::Keys(&keys)).unwrap();
        let report = verify_set(&set, &keys, &|_| {});
        assert!(report.ok);
        assert!(record_verified(&set, &report, &state).is_empty());
        // A directory without a kept manifest is not a bundle of the state directory.
        fs::create_dir_all(state.root().join("not-a-bundle")).unwrap();
        let bundles = state.bundles().unwrap().expect("recorded");
        assert_eq!(bundles.len(), 1);
        let b = &bundles[0];
        let v = set.given[0].volume.as_ref().unwrap();
        assert_eq!(b.manifest.bundle_id, v.manifest.bundle_id);
        assert_eq!(b.volumes_seen, vec![v.table.volume]);
        assert_eq!((b.staged_chunks, b.staged_bytes), (0, 0));
        assert!(b.last_push::<serde_json::Value>().is_none());
        state
            .stage(&v.manifest.bundle_id)
            .save_last_push(br#"{"target":"r/x"}"#)
            .unwrap();
        let bundles = state.bundles().unwrap().expect("recorded");
        let kept: serde_json::Value = bundles[0].last_push().unwrap();
        assert_eq!(kept["target"], "r/x");
    }

    /// `status` reads the kept manifest's bundle, date and volume count without parsing it
    /// whole, in either stored form (JSON padded with spaces; one zstd frame padded with a
    /// skippable frame); one that names another bundle than its directory is not shown.
    #[test]
    fn status_reads_a_kept_manifest_in_either_stored_form_and_only_under_its_own_id() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/valid-single-volume");
        let v = Volume::open_unverified(&dir.join("ferry-772623e2e1fa-002-of-005.tar")).unwrap();
        let m = &v.manifest;
        let mut json = v.manifest_bytes.to_vec();
        json.extend_from_slice(b"    ");
        let mut framed = zstd::encode_all(&json[..], 3).unwrap();
        // A skippable frame (RFC 8878 §3.1.2): magic 0x184D2A50, length, that many bytes.
        framed.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 0, 0, 0]);
        for stored in [json, framed] {
            let t = tempfile::tempdir().unwrap();
            let state = StateDir::new(t.path());
            state.stage(&m.bundle_id).save_manifest(&stored).unwrap();
            // The same manifest kept under another bundle's directory.
            let other = Digest([9; 32]);
            state.stage(&other).save_manifest(&stored).unwrap();
            let bundles = state.bundles().unwrap().expect("recorded");
            assert_eq!(bundles.len(), 1, "{bundles:?}");
            let r = &bundles[0].manifest;
            assert_eq!(
                (r.version, r.bundle_id, r.created, r.volume_count),
                (1, m.bundle_id, m.created, m.volume_count)
            );
            // Not a manifest at all: not shown either.
            state
                .stage(&m.bundle_id)
                .save_manifest(b"{\"ferry_bundle\":1}")
                .unwrap();
            assert!(state.bundles().unwrap().expect("recorded").is_empty());
        }
    }

    /// A volume keeps only its table's digest: the table kept is read again, and a medium
    /// that reads differently since it was verified is an error, not a table kept.
    #[test]
    fn a_table_kept_is_the_one_verified() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/valid-single-volume");
        let t = tempfile::tempdir().unwrap();
        let copy = t.path().join("ferry-772623e2e1fa-002-of-005.tar");
        fs::copy(dir.join("ferry-772623e2e1fa-002-of-005.tar"), &copy).unwrap();
        let v = Volume::open_unverified(&copy).unwrap();
        let (offset, table) = v.table_location();
        let s = stage(&t.path().join("state"));
        s.save_table(&v).unwrap();
        assert_eq!(
            fs::read(s.tables().join("volume-0002.json")).unwrap(),
            table
        );
        // One byte of the table changes on the medium after it was verified.
        let mut bytes = fs::read(&copy).unwrap();
        bytes[offset as usize + 512 + 20] ^= 1;
        fs::write(&copy, bytes).unwrap();
        let e = s.save_table(&v).unwrap_err().to_string();
        assert!(
            e.contains("reads differently than when it was verified"),
            "{e}"
        );
        assert_eq!(
            fs::read(s.tables().join("volume-0002.json")).unwrap(),
            table,
            "the table kept before stays"
        );
    }

    #[test]
    fn one_run_at_a_time_holds_a_state_directory() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("state");
        let held = StateLock::acquire(&root).unwrap();
        // flock belongs to the open file: a second open in this process is a second run.
        match StateLock::acquire(&root) {
            Err(e @ FormatError::StateBusy { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
                let text = e.to_string();
                assert!(
                    text.contains(&format!(
                        "another ferry-unpack (pid {}) is using state directory {}",
                        std::process::id(),
                        root.display()
                    )),
                    "{text}"
                );
            }
            other => panic!("a second lock was not refused: {other:?}"),
        }
        drop(held);
        StateLock::acquire(&root).expect("free again once the first run ends");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_lock_name_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let root = t.path().join("state");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&victim, root.join(LOCK_NAME)).unwrap();
        let e = StateLock::acquire(&root).unwrap_err().to_string();
        assert!(e.contains("lock is a symbolic link"), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }
}
