//! The deterministic layer: tar entries sorted by path, uid/gid 0, modes 0755 (directories)
//! and 0644 (files), mtime 0, no user or group names; gzip without a time or a name.
//!
//! Sorted by path component by component, a directory before what it holds and, within a
//! directory, whiteouts (`.wh.*`) before the other entries. Every directory above a file
//! has its own entry (not those above a whiteout only: see [`build`]). Headers are GNU (tar-rs's; a path too long for the header gets
//! GNU's long-name entry, itself deterministic). The same entries give the same bytes:
//! gzip's level, OS byte and time are fixed (the compressor is compiled in, so its
//! version does not change between runs of one ferry).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use oci::{Digest, Sha256};

use super::layers::WHITEOUT;
use super::ImageError;

/// gzip's OS byte: 255, "unknown", as Go's compress/gzip writes it.
const GZIP_OS_UNKNOWN: u8 = 255;
/// gzip's level: 6, zlib's default, a fair trade for a layer pulled once per cluster.
const GZIP_LEVEL: u32 = 6;

/// What one file of the layer holds.
pub(super) enum Data<'a> {
    Bytes(&'a [u8]),
    /// Streamed from this file (a database can be hundreds of MB).
    File(&'a Path),
}

/// The new layer: compressed bytes, their digest, and the uncompressed tar's digest.
#[derive(Debug, Clone)]
pub(super) struct NewLayer {
    pub gz: Vec<u8>,
    pub digest: Digest,
    pub diff_id: Digest,
}

/// Builds the layer of `files` (relative `/`-separated paths) and `whiteouts` (empty
/// files named `.wh.*`), with the directories above the files.
pub(super) fn build(
    files: &[(String, Data<'_>)],
    whiteouts: &[String],
) -> Result<NewLayer, ImageError> {
    enum What<'b> {
        Dir,
        File(&'b Data<'b>),
        Whiteout,
    }
    let mut entries: Vec<(Vec<&str>, What)> = Vec::new();
    let mut dirs: std::collections::BTreeSet<Vec<&str>> = Default::default();
    for (path, data) in files {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for i in 1..comps.len() {
            dirs.insert(comps[..i].to_vec());
        }
        entries.push((comps, What::File(data)));
    }
    // A whiteout's directory gets no entry of its own: it exists below (it held what is
    // removed), and an entry would change its mode (`/tmp` is 1777; opm serve without a
    // cache directory builds its cache in a temporary directory there).
    for path in whiteouts {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        entries.push((comps, What::Whiteout));
    }
    entries.extend(dirs.into_iter().map(|d| (d, What::Dir)));
    let key = |comps: &[&str]| -> Vec<(bool, String)> {
        comps
            .iter()
            .map(|c| (!c.starts_with(WHITEOUT), c.to_string()))
            .collect()
    };
    entries.sort_by_cached_key(|(comps, _)| key(comps));
    entries.dedup_by(|a, b| a.0 == b.0);

    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(Hashing {
        inner: gz,
        sha: Sha256::new(),
    });
    let tar_err = |e: io::Error| ImageError::Io {
        path: PathBuf::from("(the new catalog layer)"),
        source: e,
    };
    for (comps, what) in &entries {
        let path = comps.join("/");
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match what {
            What::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                // `configs/`: a directory's name ends in `/`, as tar and Docker write it
                // (tar-rs's path setter drops the slash, so it is written here when it fits).
                let name = format!("{path}/");
                if name.len() < h.as_old().name.len() {
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    tar.append(&h, io::empty()).map_err(tar_err)?;
                } else {
                    tar.append_data(&mut h, &path, io::empty())
                        .map_err(tar_err)?;
                }
            }
            What::Whiteout => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                tar.append_data(&mut h, &path, io::empty())
                    .map_err(tar_err)?;
            }
            What::File(Data::Bytes(bytes)) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &path, *bytes).map_err(tar_err)?;
            }
            What::File(Data::File(file)) => {
                let io_err = |source| ImageError::Io {
                    path: file.to_path_buf(),
                    source,
                };
                let f = File::open(file).map_err(io_err)?;
                let len = f.metadata().map_err(io_err)?.len();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(len);
                let mut exact = Exact {
                    inner: io::BufReader::with_capacity(super::layers::BUFFER, f).take(len),
                    left: len,
                };
                tar.append_data(&mut h, &path, &mut exact).map_err(io_err)?;
            }
        }
    }
    let hashing = tar.into_inner().map_err(tar_err)?;
    let diff_id = hashing.sha.finish();
    let gz = hashing.inner.finish().map_err(tar_err)?;
    Ok(NewLayer {
        digest: Digest::of(&gz),
        gz,
        diff_id,
    })
}

/// Hashes what goes through it: the uncompressed tar, for the layer's diff_id.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Exactly `left` bytes, or an error: a file that shrinks while it is read would
/// otherwise give a tar entry shorter than its header says.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ended {} bytes early (changed while read)",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_get_gnu_long_names_and_the_bytes_do_not_change() {
        let long = format!("configs/{}/catalog.json", "p".repeat(140));
        let files = [
            (long.clone(), Data::Bytes(b"{}\n")),
            ("configs/a/catalog.json".to_string(), Data::Bytes(b"{}")),
        ];
        let whiteouts = ["tmp/.wh.cache".to_string()];
        let one = build(&files, &whiteouts).unwrap();
        let two = build(&files, &whiteouts).unwrap();
        assert_eq!((one.digest, &one.gz), (two.digest, &two.gz));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&one.gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(one.diff_id, Digest::of(&tar));
        let mut archive = tar::Archive::new(&tar[..]);
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let p = e.path().unwrap().to_string_lossy().into_owned();
                p.trim_end_matches('/').to_string()
            })
            .collect();
        let long_dir = long.rsplit_once('/').unwrap().0.to_string();
        assert_eq!(
            paths,
            [
                "configs".to_string(),
                "configs/a".into(),
                "configs/a/catalog.json".into(),
                long_dir,
                long,
                "tmp/.wh.cache".into(),
            ]
        );
    }
}
