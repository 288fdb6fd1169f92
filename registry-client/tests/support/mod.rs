//! registry-client's side of the test kit: the servers are the workspace's
//! ([`test_support::registry::Registry`], the real CNCF distribution 2.8.2, and
//! [`test_support::mock::MockServer`], a scripted HTTP/1.1 server), re-exported here; this
//! module adds client configurations for them and the content the tests push.
// Each test binary (mock.rs, registry.rs) uses a part of this module.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use registry_client::{Client, Config, Digest, RetryPolicy, Timeouts};

pub use test_support::mock::*;
pub use test_support::registry::{Registry, RegistryOptions};

/// The test user of htpasswd registries ([`Registry::htpasswd`]).
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-Pa55";

/// A client for a registry of the kit.
pub trait ClientFor {
    /// A configuration for this registry: plain HTTP unless it has TLS, in which case its
    /// CA is trusted. Retries are quick so failing tests fail fast.
    fn config(&self) -> Config;
    fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }
}

impl ClientFor for Registry {
    fn config(&self) -> Config {
        let mut c = Config::new(self.host());
        c.insecure = self.ca.is_none();
        c.ca_cert = self.ca.as_ref().map(|ca| ca.ca_cert.clone());
        c.retry = quick_retries(3);
        c.proxy_from_env = false;
        c
    }
}

pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_secs(20),
    }
}

/// A configuration for a mock server: plain HTTP on loopback, quick retries, short
/// timeouts.
pub fn mock_config(server: &MockServer) -> Config {
    let mut c = Config::new(server.host());
    c.insecure = true;
    c.retry = quick_retries(4);
    c.proxy_from_env = false;
    c.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_secs(10),
    };
    c
}

// ---------------------------------------------------------------------------------------
// Content

/// Deterministic pseudo-random bytes (xorshift), so large blobs need no fixtures.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256(data: &[u8]) -> Digest {
    Digest::of(data)
}

/// The body closure `upload_blob` wants, over bytes in memory.
pub fn reader_of(data: &[u8]) -> impl FnMut() -> std::io::Result<std::io::Cursor<Vec<u8>>> + '_ {
    move || Ok(std::io::Cursor::new(data.to_vec()))
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub fn image_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layer_descs: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"{OCI_LAYER}","digest":"{}","size":{}}}"#,
                sha256(l),
                l.len()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{}]}}"#,
        sha256(config),
        config.len(),
        layer_descs.join(",")
    )
    .into_bytes()
}

pub fn image_config() -> Vec<u8> {
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#
        .to_vec()
}
