//! A small OCI image layout writer (image-spec `image-layout.md`): blobs under
//! `blobs/sha256/`, `oci-layout`, and an `index.json` whose descriptors carry
//! `org.opencontainers.image.ref.name`, so `skopeo copy oci:DIR:NAME …` finds each image.
//!
//! Layers are real tar streams, gzip-compressed; their `diff_id` (the digest of the
//! uncompressed tar) is computed on the way, so configs carry consistent `rootfs.diff_ids`.
//! Everything is deterministic: fixed tar headers (mtime [`MTIME`], uid/gid 0, no user
//! names), gzip without a time, JSON with sorted keys (serde_json's map).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The mtime of every tar entry (2024-01-01T00:00:00Z): fixed, so layers are byte-identical
/// from run to run, and not 0, as a real build's files are not.
pub const MTIME: u64 = 1_704_067_200;
/// The `created` of every config and history entry.
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// A blob written to the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    pub fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A gzip layer: its descriptor and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: String,
}

/// `os/architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
}

pub const AMD64: Platform = Platform {
    os: "linux",
    architecture: "amd64",
};
pub const ARM64: Platform = Platform {
    os: "linux",
    architecture: "arm64",
};

impl Platform {
    pub fn text(&self) -> String {
        format!("{}/{}", self.os, self.architecture)
    }
}

/// One entry of a layer.
pub enum Entry<'a> {
    Dir(&'a str),
    /// Path, mode, contents.
    File(&'a str, u32, &'a [u8]),
}

/// What a single-platform image's config says, beyond its layers.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub labels: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    /// `created_by` of each history entry and whether it made a layer (`empty_layer`
    /// false); the non-empty ones must be as many as the layers, in order.
    pub history: Vec<(String, bool)>,
}

/// An OCI layout being written.
pub struct Layout {
    root: PathBuf,
    refs: Vec<(String, Descriptor)>,
}

impl Layout {
    /// Creates `root` (which must not hold a layout yet) with `oci-layout` and `blobs/sha256`.
    pub fn create(root: &Path) -> io::Result<Layout> {
        fs::create_dir_all(root.join("blobs/sha256"))?;
        fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(Layout {
            root: root.to_owned(),
            refs: Vec::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap_or(digest))
    }

    /// Writes `bytes` as a blob; its descriptor.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> io::Result<Descriptor> {
        let digest = sha256(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            fs::write(&path, bytes)?;
        }
        Ok(Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size: bytes.len() as u64,
        })
    }

    /// Writes `value` as compact JSON (sorted keys); its descriptor.
    pub fn put_json(&self, media_type: &str, value: &Value) -> io::Result<Descriptor> {
        self.put(
            media_type,
            &serde_json::to_vec(value).map_err(io::Error::other)?,
        )
    }

    /// A gzip tar layer of `entries`, in the order given.
    pub fn layer(&self, entries: &[Entry<'_>]) -> io::Result<Layer> {
        let mut w = self.layer_writer()?;
        for e in entries {
            match e {
                Entry::Dir(path) => w.dir(path)?,
                Entry::File(path, mode, bytes) => w.file(path, *mode, bytes)?,
            }
        }
        w.finish()
    }

    /// A layer written entry by entry (for large ones: nothing is held in memory).
    pub fn layer_writer(&self) -> io::Result<LayerWriter> {
        // Unique per writer, so layers may be written side by side.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join(format!(
            "blobs/sha256/.layer-{}-{n}.partial",
            std::process::id()
        ));
        let file = BufWriter::new(File::create(&tmp)?);
        let gz = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Hashing::new(file), Compression::new(6));
        Ok(LayerWriter {
            tar: tar::Builder::new(Hashing::new(gz)),
            tmp,
            dir: self.root.join("blobs/sha256"),
        })
    }

    /// A single-platform image: config and manifest written; the manifest's descriptor.
    pub fn image(
        &self,
        platform: Platform,
        layers: &[Layer],
        config: &ImageConfig,
    ) -> io::Result<Descriptor> {
        let made: usize = config.history.iter().filter(|(_, e)| *e).count();
        assert_eq!(
            made,
            layers.len(),
            "history entries with layers must be as many as the layers"
        );
        let mut c = serde_json::Map::new();
        if !config.labels.is_empty() {
            let labels: serde_json::Map<String, Value> = config
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            c.insert("Labels".into(), Value::Object(labels));
        }
        if let Some(e) = &config.entrypoint {
            c.insert("Entrypoint".into(), json!(e));
        }
        if let Some(cmd) = &config.cmd {
            c.insert("Cmd".into(), json!(cmd));
        }
        let mut env =
            vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()];
        env.extend(config.env.iter().cloned());
        c.insert("Env".into(), json!(env));
        let history: Vec<Value> = config
            .history
            .iter()
            .map(|(by, layer)| {
                let mut h = json!({"created": CREATED, "created_by": by});
                if !layer {
                    h["empty_layer"] = Value::Bool(true);
                }
                h
            })
            .collect();
        let cfg = json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "created": CREATED,
            "config": Value::Object(c),
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": history,
        });
        let cfg = self.put_json(OCI_CONFIG, &cfg)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": cfg.json(),
            "layers": layers.iter().map(|l| l.descriptor.json()).collect::<Vec<_>>(),
        });
        self.put_json(OCI_MANIFEST, &manifest)
    }

    /// An image index of `children` (manifest, platform); its descriptor.
    pub fn index(&self, children: &[(Descriptor, Platform)]) -> io::Result<Descriptor> {
        let manifests: Vec<Value> = children
            .iter()
            .map(|(d, p)| {
                let mut v = d.json();
                v["platform"] = json!({"os": p.os, "architecture": p.architecture});
                v
            })
            .collect();
        self.put_json(
            OCI_INDEX,
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
        )
    }

    /// Names `descriptor` `ref_name` in index.json (written by [`Layout::finish`]).
    pub fn name(&mut self, ref_name: &str, descriptor: &Descriptor) {
        assert!(
            !self.refs.iter().any(|(n, _)| n == ref_name),
            "{ref_name} named twice"
        );
        self.refs.push((ref_name.to_owned(), descriptor.clone()));
    }

    /// Writes index.json.
    pub fn finish(&self) -> io::Result<()> {
        let manifests: Vec<Value> = self
            .refs
            .iter()
            .map(|(name, d)| {
                let mut v = d.json();
                v["annotations"] = json!({ REF_NAME: name });
                v
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        fs::write(
            self.root.join("index.json"),
            serde_json::to_vec_pretty(&index).map_err(io::Error::other)?,
        )
    }
}

/// A layer being written: tar → hash (diff_id) → gzip → hash (digest) → file.
pub struct LayerWriter {
    tar: tar::Builder<Hashing<GzEncoder<Hashing<BufWriter<File>>>>>,
    tmp: PathBuf,
    dir: PathBuf,
}

impl LayerWriter {
    fn header(path: &str, mode: u32, size: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        // Paths here are short and ASCII (the fixture's own); set_path checks that.
        h.set_path(path)
            .expect("a fixture path fits a ustar header");
        h.set_cksum();
        h
    }

    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let h = Self::header(path, 0o755, 0, tar::EntryType::Directory);
        self.tar.append(&h, io::empty())
    }

    pub fn file(&mut self, path: &str, mode: u32, bytes: &[u8]) -> io::Result<()> {
        let h = Self::header(path, mode, bytes.len() as u64, tar::EntryType::Regular);
        self.tar.append(&h, bytes)
    }

    /// Ends the tar and the gzip stream, renames the file to its digest.
    pub fn finish(self) -> io::Result<Layer> {
        let hashing_tar = self.tar.into_inner()?;
        let (gz, diff_id, _) = hashing_tar.finish();
        let hashing_file = gz.finish()?;
        let (mut file, digest, size) = hashing_file.finish();
        file.flush()?;
        drop(file);
        let dest = self
            .dir
            .join(digest.strip_prefix("sha256:").expect("sha256"));
        fs::rename(&self.tmp, dest)?;
        Ok(Layer {
            descriptor: Descriptor {
                media_type: OCI_LAYER_GZIP.to_owned(),
                digest,
                size,
            },
            diff_id,
        })
    }
}

/// A writer that hashes and counts what passes through.
pub struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hash: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, `sha256:<hex>` and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hash.finalize())),
            self.size,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
