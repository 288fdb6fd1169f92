//! A state directory's share of a bundle (SPEC.md §6.4): the signed tables of volumes seen,
//! and verified copies of the chunks of blobs that span into volumes not at hand, so disks
//! can arrive one at a time, in any order, without extracting anything else.
//!
//! ```text
//! STATE/<bundle id hex>/tables/volume-NNNN.json(.sig)   exact signed bytes
//! STATE/<bundle id hex>/chunks/<chunk entry name's file part>
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::key::PublicKey;
use crate::read::Volume;
use crate::table::VolumeTable;

pub struct Stage {
    pub dir: PathBuf,
}

impl Stage {
    /// The bundle's directory under the state root (created on first write).
    pub fn new(root: &Path, bundle_id: &Digest) -> Stage {
        Stage {
            dir: root.join(bundle_id.hex()),
        }
    }

    fn tables(&self) -> PathBuf {
        self.dir.join("tables")
    }

    fn chunks(&self) -> PathBuf {
        self.dir.join("chunks")
    }

    /// Keeps a volume's signed table, so later runs know its chunks without the disk.
    pub fn save_table(&self, v: &Volume) -> Result<(), FormatError> {
        let (bytes, sig) = v.signed_table();
        let dir = self.tables();
        let name = format!("volume-{:04}.json", v.table.volume);
        write_atomic(&dir.join(&name), bytes)?;
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

    /// Keeps the bundle manifest (for `status`) and a JSON record of the last push.
    pub fn save_manifest(&self, bytes: &[u8]) -> Result<(), FormatError> {
        write_atomic(&self.dir.join("bundle.json"), bytes)
    }

    pub fn save_record(&self, name: &str, bytes: &[u8]) -> Result<(), FormatError> {
        write_atomic(&self.dir.join(name), bytes)
    }

    /// Volume numbers whose signed tables were kept.
    pub fn volumes_seen(&self) -> Vec<u32> {
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
    pub fn staged(&self) -> (usize, u64) {
        fs::read_dir(self.chunks())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
    }

    /// Where a staged chunk lives (whether or not it exists).
    pub fn chunk_path(&self, entry_name: &str) -> PathBuf {
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

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FormatError> {
    let dir = path.parent().expect("stage paths have a parent");
    fs::create_dir_all(dir).map_err(FormatError::io(dir))?;
    let name = path
        .file_name()
        .expect("stage paths have a name")
        .to_string_lossy();
    // Worker threads may write the same file at once: each writes its own temporary file,
    // and the renames (of identical content) replace one another atomically.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.partial", std::process::id()));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(FormatError::io(&tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(FormatError::io(path)));
    if written.is_err() {
        // A full disk must not also keep the half-written file.
        let _ = fs::remove_file(&tmp);
    }
    written
}
