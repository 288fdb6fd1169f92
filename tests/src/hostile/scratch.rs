//! Bundles made from nothing, signed lies no packer would write, and the zstd bomb: a
//! frame of RLE blocks, each 4 bytes standing for 128 KiB of zeros.

use format_spec::digest::Digest;
use format_spec::key::PrivateKey;
use format_spec::manifest::BundleManifest;
use format_spec::table::VolumeTable;
use format_spec::volume;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use test_support::resign::Parts;

/// One zstd frame (RFC 8878) decoding to `decoded` zero bytes, without content size.
pub fn zstd_zeros(decoded: u64) -> Vec<u8> {
    const BLOCK_MAX: u64 = 128 << 10;
    // Magic, frame header descriptor 0 (no content size, window descriptor follows),
    // window 2^17 = 128 KiB.
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let blocks = decoded.div_ceil(BLOCK_MAX).max(1);
    for i in 0..blocks {
        let last = i + 1 == blocks;
        let size = if last {
            decoded - i * BLOCK_MAX
        } else {
            BLOCK_MAX
        };
        // Block header: last flag, type 1 (RLE), size; then the byte to repeat.
        let h = (size << 3) | (1 << 1) | u64::from(last);
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

/// A blob of a bundle made from scratch.
pub(super) struct ScratchBlob {
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) encoding: &'static str,
    pub(super) stored: Vec<u8>,
    pub(super) media_type: Option<&'static str>,
}

pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A one-volume bundle holding one image `hostile/bomb:v1` whose blobs are `blobs`
/// (manifest first), signed by `key`: signed lies no packer would write.
pub(super) fn scratch_bundle(key: &PrivateKey, blobs: &[ScratchBlob]) -> Vec<u8> {
    let created = 1_600_000_000u64;
    let chunk_size: u64 = 4 << 20;
    let index = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{}\",\"size\":{},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"hostile/bomb:v1\"}}}}]}}",
        blobs[0].digest, blobs[0].size
    )
    .into_bytes();
    let blob_values: Vec<Value> = blobs
        .iter()
        .map(|b| {
            let mut v = json!({
                "digest": b.digest.to_string(), "size": b.size, "encoding": b.encoding,
                "stored_size": b.stored.len(), "first_volume": 1, "last_volume": 1,
            });
            if let Some(t) = b.media_type {
                v["media_type"] = t.into();
            }
            v
        })
        .collect();
    let mut m: BundleManifest = serde_json::from_value(json!({
        "ferry_bundle": format_spec::manifest::BUNDLE_VERSION,
        "bundle_id": Digest([0; 32]).to_string(),
        "creator": "hostile test",
        "created": created,
        "source_layout": "oci",
        "key": key.public().fingerprint(),
        "volume_size": 1u64 << 30,
        "volume_count": 1,
        "chunk_size": chunk_size,
        "index_json": Digest::of(&index).to_string(),
        "blobs": blob_values,
        "images": [{
            "repository": "hostile/bomb", "tags": ["v1"], "digest": blobs[0].digest.to_string(),
            "media_type": OCI_MANIFEST, "blobs": (0..blobs.len()).collect::<Vec<_>>(),
        }],
        "tree": [],
    }))
    .expect("a manifest the format library reads");
    m.seal();
    let mut chunks = Vec::new();
    let mut datas = Vec::new();
    let mut names = Vec::new();
    for (i, b) in m.blobs.iter().enumerate() {
        let stored = &blobs[i].stored;
        let mut pos = 0usize;
        loop {
            let end = (pos + chunk_size as usize).min(stored.len());
            let data = stored[pos..end].to_vec();
            chunks.push(json!({
                "blob": i, "stream_offset": pos, "size": data.len(), "offset": 0,
                "sha256": hex::encode(Sha256::digest(&data)),
            }));
            names.push(volume::chunk_name(&b.digest, b.encoding, pos as u64));
            datas.push(data);
            pos = end;
            if pos >= stored.len() {
                break;
            }
        }
    }
    let zero = Digest([0; 32]).to_string();
    let table: VolumeTable = serde_json::from_value(json!({
        "ferry_volume": m.ferry_bundle, "bundle_id": m.bundle_id.to_string(), "volume": 1, "volume_count": 1,
        "bundle_manifest": {"digest": zero, "size": 0}, "index": {"digest": zero, "size": 0},
        "chunks": chunks,
    }))
    .expect("a table the format library reads");
    Parts {
        manifest: m.stored_bytes(0),
        index,
        table,
        chunks: datas,
        names,
        mtime: created,
        unnamed: Vec::new(),
        manifest_name: volume::bundle_name(m.ferry_bundle).to_string(),
        duplicate_manifest: false,
        original: std::sync::Arc::new(m),
    }
    .write(key)
}

/// An image whose layer is `layer` (digest and size as signed).
pub(super) fn image_blobs(layer_digest: Digest, layer_size: u64) -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#.to_vec();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"{layer_digest}\",\"size\":{layer_size}}}]}}",
        Digest::of(&config),
        config.len()
    )
    .into_bytes();
    (manifest, config)
}

pub(super) fn raw_blob(bytes: Vec<u8>, media_type: Option<&'static str>) -> ScratchBlob {
    ScratchBlob {
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        encoding: "raw",
        stored: bytes,
        media_type,
    }
}
