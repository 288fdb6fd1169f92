//! Small images for unit tests: blobs, manifests and indexes as bytes, by digest.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::digest::sha256_bytes;
use oci::media_type::{
    DOCKER_CONFIG, DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use oci::Digest;

#[derive(Default)]
pub struct Kit {
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

pub struct Made {
    pub digest: Digest,
    pub size: u64,
    /// The closure: this manifest, then (for an index) each child's, config, layers.
    pub closure: Vec<Digest>,
    pub media_type: &'static str,
}

impl Kit {
    pub fn blob(&mut self, bytes: &[u8]) -> (Digest, u64) {
        let d = sha256_bytes(bytes);
        self.blobs.insert(d, bytes.to_vec());
        (d, bytes.len() as u64)
    }

    /// A single-platform manifest with one config and `layers` layers (distinct by `seed`).
    pub fn image(&mut self, seed: &str, docker: bool, layers: usize) -> Made {
        let (cd, cs) = self.blob(format!("{{\"config\":\"{seed}\"}}").as_bytes());
        let mut ls = Vec::new();
        for i in 0..layers {
            ls.push(self.blob(format!("layer {seed} {i}").as_bytes()));
        }
        let (mt, ct, lt) = if docker {
            (
                DOCKER_MANIFEST,
                DOCKER_CONFIG,
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                OCI_MANIFEST,
                OCI_CONFIG,
                "application/vnd.oci.image.layer.v1.tar",
            )
        };
        let layers_json: Vec<String> = ls
            .iter()
            .map(|(d, s)| format!(r#"{{"mediaType":"{lt}","digest":"{d}","size":{s}}}"#))
            .collect();
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{ct}","digest":"{cd}","size":{cs}}},"layers":[{}]}}"#,
            layers_json.join(",")
        );
        let (d, s) = self.blob(json.as_bytes());
        let mut closure = vec![d, cd];
        closure.extend(ls.into_iter().map(|(d, _)| d));
        Made {
            digest: d,
            size: s,
            closure,
            media_type: mt,
        }
    }

    pub fn index(&mut self, docker: bool, children: &[&Made]) -> Made {
        let linux_amd64: Vec<(&Made, &str)> =
            children.iter().map(|c| (*c, "linux/amd64")).collect();
        self.index_of(docker, &linux_amd64)
    }

    /// An index whose children run on the given platforms (`os/arch[/variant]`).
    pub fn index_of(&mut self, docker: bool, children: &[(&Made, &str)]) -> Made {
        let mt = if docker { DOCKER_LIST } else { OCI_INDEX };
        let entries: Vec<String> = children
            .iter()
            .map(|(c, platform)| {
                let mut p = platform.split('/');
                let (os, arch) = (p.next().unwrap(), p.next().unwrap());
                let variant = p
                    .next()
                    .map(|v| format!(r#","variant":"{v}""#))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"{os}"{variant}}}}}"#,
                    c.media_type, c.digest, c.size
                )
            })
            .collect();
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","manifests":[{}]}}"#,
            entries.join(",")
        );
        let (d, s) = self.blob(json.as_bytes());
        let mut closure = vec![d];
        for (c, _) in children {
            for b in &c.closure {
                if !closure.contains(b) {
                    closure.push(*b);
                }
            }
        }
        Made {
            digest: d,
            size: s,
            closure,
            media_type: mt,
        }
    }

    pub fn bytes(&self, digest: &Digest) -> &[u8] {
        &self.blobs[digest]
    }
}

pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

pub fn hex(digest: &Digest) -> String {
    digest.hex()
}
