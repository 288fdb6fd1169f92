//! A ferry volume taken apart and put together again, re-signed: the way to make a volume
//! that is validly signed yet breaks a rule (SPEC.md §5.2 is the layout written here).
//! format-spec's vectors, the hostile volumes of the end-to-end tests and the fuzz targets
//! all make their volumes with [`Parts`].
//!
//! Read a good volume ([`Parts::read`]), change what the case needs (the manifest, the
//! table, chunk data, extra entries), then [`Parts::write`]: the table's offsets and
//! document digests are recomputed to match the file unless [`Parts::write_with`] is told
//! to lie, and every document is signed again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use format_spec::digest::Digest;
use format_spec::key::{PrivateKey, PublicKey};
use format_spec::manifest::{compress_json, json_of, BundleManifest};
use format_spec::read::Volume;
use format_spec::table::VolumeTable;
use format_spec::volume::{self, entry_len, BLOCK};

/// What signs the documents of a re-made volume: a [`PrivateKey`], or a signer of the
/// caller's own (the fuzz targets cache the signatures of documents that do not change).
pub trait Sign {
    fn sign(&self, message: &[u8]) -> [u8; 64];
}

impl Sign for PrivateKey {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        PrivateKey::sign(self, message)
    }
}

/// One tar entry as ferry writes it: header, data, zero padding to the next block.
pub fn entry(out: &mut Vec<u8>, name: &str, data: &[u8], mtime: u64) {
    out.extend_from_slice(&volume::header(name, data.len() as u64, mtime));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK as usize) * BLOCK as usize, 0);
}

/// Points `table` at documents of these bytes and lays its chunks out after them, one
/// after another: what a writer would sign for a manifest and index of these lengths.
pub fn relocate(table: &mut VolumeTable, manifest: &[u8], index: &[u8]) {
    table.bundle_manifest.digest = Digest::of(manifest);
    table.bundle_manifest.size = manifest.len() as u64;
    table.index.digest = Digest::of(index);
    table.index.size = index.len() as u64;
    let mut offset = volume::head_len(manifest.len() as u64, index.len() as u64);
    for c in &mut table.chunks {
        c.offset = offset;
        offset = offset.saturating_add(entry_len(c.size));
    }
}

/// A volume's parts, to be written again after a change and re-signed.
#[derive(Clone)]
pub struct Parts {
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
    pub table: VolumeTable,
    /// Chunk data, in table order.
    pub chunks: Vec<Vec<u8>>,
    /// Chunk entry names, in table order.
    pub names: Vec<String>,
    pub mtime: u64,
    /// Entries written after the chunks and before the table, which the table does not name.
    pub unnamed: Vec<(String, Vec<u8>)>,
    /// The manifest's entry name: the one of the table's version as read
    /// (`ferry/bundle.json.zst` for 2, `ferry/bundle.json` for 1); its signature's entry
    /// is this name and `.sig`.
    pub manifest_name: String,
    /// A second manifest entry right after the first.
    pub duplicate_manifest: bool,
    /// The manifest as read: [`Parts::name_chunks`] names chunks after it when the
    /// manifest bytes were changed into something that does not parse.
    pub original: Arc<BundleManifest>,
}

impl Parts {
    /// Opens a volume signed by `trusted` (it must be a good one) and takes it apart.
    pub fn read(path: &Path, trusted: &PublicKey) -> Parts {
        let v = Volume::open(path, std::slice::from_ref(trusted))
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let chunks = v
            .table
            .chunks
            .iter()
            .map(|c| v.read_chunk(c).expect("read a good chunk"))
            .collect();
        let names = v
            .table
            .chunks
            .iter()
            .map(|c| {
                let b = &v.manifest.blobs[c.blob as usize];
                volume::chunk_name(&b.digest, b.encoding, c.stream_offset)
            })
            .collect();
        Parts {
            manifest: v.manifest_bytes.to_vec(),
            index: v.index_bytes().expect("the index reads as it was verified"),
            table: v.table.clone(),
            chunks,
            names,
            mtime: v.manifest.created,
            unnamed: Vec::new(),
            manifest_name: volume::bundle_name(v.table.ferry_volume).to_string(),
            duplicate_manifest: false,
            original: v.manifest.clone(),
        }
    }

    /// The manifest bytes, parsed (they must parse; version 2's are decompressed first).
    pub fn manifest(&self) -> BundleManifest {
        serde_json::from_slice(&self.manifest_json()).expect("a parseable manifest")
    }

    /// The manifest's JSON text: the stored bytes of version 1, version 2's decompressed.
    pub fn manifest_json(&self) -> Vec<u8> {
        json_of(&self.manifest).expect("a decompressible manifest")
    }

    /// Makes `json` the manifest's text, stored in the form of the manifest's version as
    /// read (compressed for 2, as is for 1), without sealing or checking it: for
    /// manifests that must break a rule.
    pub fn put_manifest_json(&mut self, json: &[u8]) {
        self.manifest = if self.original.ferry_bundle == 1 {
            json.to_vec()
        } else {
            compress_json(json)
        };
    }

    /// Seals a changed manifest (bundle_id recomputed) and makes it the volume's, with the
    /// table's `bundle_id` and the entries' mtime following it. Nothing else changes: a
    /// table that disagrees with the manifest in other ways keeps disagreeing.
    pub fn put_manifest(&mut self, m: &mut BundleManifest) {
        m.seal();
        self.manifest = m.stored_bytes(0);
        self.table.bundle_id = m.bundle_id;
        self.mtime = m.created;
    }

    /// As [`Parts::put_manifest`], and the table's `volume_count` and the chunk names
    /// follow the manifest too (a chunk of a blob it no longer has takes the first name).
    pub fn set_manifest(&mut self, m: &mut BundleManifest) {
        self.put_manifest(m);
        self.table.volume_count = m.volume_count;
        self.names = self
            .table
            .chunks
            .iter()
            .map(|c| match m.blobs.get(c.blob as usize) {
                Some(b) => volume::chunk_name(&b.digest, b.encoding, c.stream_offset),
                None => self.names[0].clone(),
            })
            .collect();
    }

    /// Names every chunk of the table after the blob the manifest gives it (the manifest
    /// as read when the bytes do not parse; blob 0 for a blob the manifest lacks, so the
    /// name keeps its shape).
    pub fn name_chunks(&mut self) {
        let m: BundleManifest = json_of(&self.manifest)
            .ok()
            .and_then(|j| serde_json::from_slice(&j).ok())
            .unwrap_or_else(|| (*self.original).clone());
        self.names = self
            .table
            .chunks
            .iter()
            .map(|c| {
                let b = m.blobs.get(c.blob as usize).unwrap_or(&m.blobs[0]);
                volume::chunk_name(&b.digest, b.encoding, c.stream_offset)
            })
            .collect();
    }

    /// Written and signed by `key` throughout, the table's offsets and document
    /// references recomputed to match the file.
    pub fn write(&self, key: &dyn Sign) -> Vec<u8> {
        self.write_with(key, key, &|_| {}, &|b| b)
    }

    /// As [`Parts::write`], with the table signed by `table_key`, the manifest and index
    /// by `docs_key`; `edit` changes the table after its offsets were computed (a lie the
    /// file does not match) and `raw` its bytes before they are signed. The table's entry
    /// is named after `table.volume` whatever `raw` returns.
    pub fn write_with(
        &self,
        table_key: &dyn Sign,
        docs_key: &dyn Sign,
        edit: &dyn Fn(&mut VolumeTable),
        raw: &dyn Fn(Vec<u8>) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mtime = self.mtime;
        entry(&mut out, &self.manifest_name, &self.manifest, mtime);
        if self.duplicate_manifest {
            entry(&mut out, &self.manifest_name, &self.manifest, mtime);
        }
        entry(
            &mut out,
            &format!("{}.sig", self.manifest_name),
            &docs_key.sign(&self.manifest),
            mtime,
        );
        entry(&mut out, volume::INDEX_NAME, &self.index, mtime);
        entry(
            &mut out,
            volume::INDEX_SIG_NAME,
            &docs_key.sign(&self.index),
            mtime,
        );
        let mut table = self.table.clone();
        table.bundle_manifest.digest = Digest::of(&self.manifest);
        table.bundle_manifest.size = self.manifest.len() as u64;
        table.index.digest = Digest::of(&self.index);
        table.index.size = self.index.len() as u64;
        for ((c, data), name) in table.chunks.iter_mut().zip(&self.chunks).zip(&self.names) {
            c.offset = out.len() as u64;
            entry(&mut out, name, data, mtime);
        }
        for (name, data) in &self.unnamed {
            entry(&mut out, name, data, mtime);
        }
        edit(&mut table);
        let table_bytes = raw(table.to_bytes());
        let table_offset = out.len() as u64;
        entry(
            &mut out,
            &volume::table_name(self.table.volume),
            &table_bytes,
            mtime,
        );
        entry(
            &mut out,
            &volume::table_sig_name(self.table.volume),
            &table_key.sign(&table_bytes),
            mtime,
        );
        entry(
            &mut out,
            volume::TRAILER_NAME,
            &volume::trailer(table_offset, table_bytes.len() as u64),
            mtime,
        );
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// Every volume of a bundle signed by `key`, with its manifest changed by `edit`, sealed
/// and re-signed by `key` ([`Parts::set_manifest`]): (file name, bytes).
pub fn resign_volumes(
    paths: &[PathBuf],
    key: &PrivateKey,
    edit: &dyn Fn(&mut BundleManifest),
) -> Vec<(String, Vec<u8>)> {
    paths
        .iter()
        .map(|p| {
            let mut parts = Parts::read(p, &key.public());
            let mut m = parts.manifest();
            edit(&mut m);
            parts.set_manifest(&mut m);
            let name = p
                .file_name()
                .expect("a volume file name")
                .to_string_lossy()
                .into_owned();
            (name, parts.write(key))
        })
        .collect()
}
