//! Ed25519 keys and signatures (SPEC.md §7).
//!
//! Keys are PEM files OpenSSL reads and writes: private keys PKCS#8 v1 ("PRIVATE KEY",
//! exactly what `openssl genpkey -algorithm ed25519` writes), public keys SPKI
//! ("PUBLIC KEY"). Signatures are raw 64-byte Ed25519 over the exact stored bytes, so
//! `openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in FILE -sigfile FILE.sig` checks them.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest as _, Sha256};

pub const SIGNATURE_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; refusing to overwrite a key (move it away or choose another name)"
    )]
    Exists { path: PathBuf },
    #[error("{path} is not an Ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519` writes one): {reason}")]
    BadPrivate { path: PathBuf, reason: String },
    #[error("{path} is {found}; ferry signs with Ed25519 keys in PKCS#8 PEM only. Make one with `ferry-pack keygen KEY` (or `openssl genpkey -algorithm ed25519 -out KEY`) and give it to --key")]
    NotEd25519 { path: PathBuf, found: String },
    #[error("{path} is a public key; --key takes the private key (KEY, not KEY.pub: KEY.pub goes to `ferry-unpack --trust`)")]
    PublicGiven { path: PathBuf },
    #[error("{path} is encrypted with a passphrase; ferry reads unencrypted keys: decrypt it with `openssl pkey -in KEY -out PLAIN` (keep PLAIN mode 0600), or make a new key with `ferry-pack keygen KEY`")]
    Encrypted { path: PathBuf },
    #[error(
        "{path} is not an Ed25519 public key in PEM (`openssl pkey -pubout` writes one): {reason}"
    )]
    BadPublic { path: PathBuf, reason: String },
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
}

/// A trusted (or claimed) public key with its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

/// A private key able to sign bundles.
pub struct PrivateKey {
    key: SigningKey,
}

/// Shows the fingerprint only: a private key must never reach a log.
impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.public().fingerprint())
    }
}

impl PublicKey {
    pub fn from_pem(text: &str, path: &Path) -> Result<PublicKey, KeyError> {
        let key =
            VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| KeyError::BadPublic {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(PublicKey { key })
    }

    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        PublicKey::from_pem(&text, path)
    }

    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 SPKI always encodes")
    }

    /// Short enough to read aloud over a phone: the first 80 bits of SHA-256 of the raw
    /// public key in RFC 4648 base32, as four groups of four (SPEC.md §7.3).
    pub fn fingerprint(&self) -> String {
        fingerprint_of(self.key.as_bytes())
    }

    /// Checks `signature` over exactly `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        // verify_strict rejects the malleable and small-order cases that plain verify allows.
        self.key.verify_strict(message, &sig).is_ok() && self.key.verify(message, &sig).is_ok()
    }
}

impl PrivateKey {
    pub fn generate() -> Result<PrivateKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(PrivateKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn from_pem(text: &str, path: &Path) -> Result<PrivateKey, KeyError> {
        let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| {
            let path = path.to_owned();
            match pem_label(text) {
                Some("PUBLIC KEY") => return KeyError::PublicGiven { path },
                Some("ENCRYPTED PRIVATE KEY") => return KeyError::Encrypted { path },
                _ => {}
            }
            match other_key_kind(text) {
                Some(found) => KeyError::NotEd25519 { path, found },
                None => KeyError::BadPrivate {
                    path,
                    reason: e.to_string(),
                },
            }
        })?;
        Ok(PrivateKey { key })
    }

    pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        PrivateKey::from_pem(&text, path)
    }

    /// PKCS#8 v1 without the embedded public key: OpenSSL 3.0 rejects the v2 form that
    /// `SigningKey::to_pkcs8_pem` writes (OpenSSL reads and writes the same PKCS#8 v1 form).
    pub fn to_pem(&self) -> String {
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 PKCS#8 v1 document always encodes")
            .to_string()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(message).to_bytes()
    }

    /// Writes `path` (mode 0600, never overwriting, never through a link) and `path.pub`,
    /// creating a missing parent directory (mode 0700: it holds a private key).
    pub fn save_new(&self, path: &Path) -> Result<PathBuf, KeyError> {
        let pub_path = public_path_for(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                use std::os::unix::fs::DirBuilderExt;
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| KeyError::Write {
                        path: dir.to_owned(),
                        source,
                    })?;
            }
        }
        for p in [path, pub_path.as_path()] {
            if p.symlink_metadata().is_ok() {
                return Err(KeyError::Exists { path: p.to_owned() });
            }
        }
        write_new(path, self.to_pem().as_bytes(), 0o600)?;
        write_new(&pub_path, self.public().to_pem().as_bytes(), 0o644)?;
        Ok(pub_path)
    }
}

/// The label of a PEM file's first `-----BEGIN LABEL-----` line.
fn pem_label(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
}

/// What kind of key a PEM file holds when it is not an Ed25519 PKCS#8 key: the decoder's
/// own error names the OID it expected (Ed25519's), which misleads; name the one found.
fn other_key_kind(text: &str) -> Option<String> {
    use ed25519_dalek::pkcs8::spki::der::pem;
    let label = pem_label(text)?;
    let by_label = match label {
        "RSA PRIVATE KEY" => Some("an RSA private key (PKCS#1)"),
        "EC PRIVATE KEY" => Some("an EC (ECDSA) private key"),
        "DSA PRIVATE KEY" => Some("a DSA private key"),
        "OPENSSH PRIVATE KEY" => Some("an OpenSSH private key (the ssh-keygen format)"),
        _ => None,
    };
    if let Some(kind) = by_label {
        return Some(kind.to_owned());
    }
    if label != "PRIVATE KEY" {
        return None;
    }
    let (_, der) = pem::decode_vec(text.trim().as_bytes()).ok()?;
    let info = ed25519_dalek::pkcs8::PrivateKeyInfo::try_from(der.as_slice()).ok()?;
    let oid = info.algorithm.oid.to_string();
    let name = match oid.as_str() {
        "1.3.101.112" => return None,
        "1.2.840.113549.1.1.1" => "an RSA private key",
        "1.2.840.113549.1.1.10" => "an RSA-PSS private key",
        "1.2.840.10045.2.1" => "an EC (ECDSA) private key",
        "1.3.101.113" => "an Ed448 private key",
        "1.3.101.110" => "an X25519 private key",
        "1.3.101.111" => "an X448 private key",
        "1.2.840.10040.4.1" => "a DSA private key",
        _ => "a private key",
    };
    Some(format!("{name} (algorithm OID {oid})"))
}

/// `KEY` → `KEY.pub`.
pub fn public_path_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Exclusive temporary beside the key, renamed into place (durable-file): never through a
/// link, and never a half-written key under the final name.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    durable_file::write_with_mode(path, bytes, mode).map_err(|source| KeyError::Write {
        path: path.to_owned(),
        source,
    })
}

pub fn fingerprint_of(raw_public: &[u8; 32]) -> String {
    let hash = Sha256::digest(raw_public);
    let text = base32(&hash[..10]);
    let groups: Vec<&str> = (0..4).map(|i| &text[i * 4..i * 4 + 4]).collect();
    groups.join("-")
}

/// RFC 4648 base32 without padding; its alphabet has no 0/1/8 to confuse with O/I/B.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
    }

    #[test]
    fn pem_round_trip_and_signatures() {
        let key = PrivateKey::generate().unwrap();
        let again = PrivateKey::from_pem(&key.to_pem(), Path::new("k")).unwrap();
        assert_eq!(again.public(), key.public());
        assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        let public = PublicKey::from_pem(&key.public().to_pem(), Path::new("k.pub")).unwrap();
        let sig = key.sign(b"hello");
        assert!(public.verify(b"hello", &sig));
        assert!(!public.verify(b"hellO", &sig));
        assert!(!public.verify(b"hello", &sig[..63]));
        let fp = public.fingerprint();
        assert_eq!(fp.len(), 19);
        assert_eq!(fp.matches('-').count(), 3);
    }

    #[test]
    fn a_public_key_given_as_the_private_key_is_named_so() {
        let key = PrivateKey::generate().unwrap();
        let e = PrivateKey::from_pem(&key.public().to_pem(), Path::new("k.pub")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("k.pub is a public key; --key takes the private key"),
            "{e}"
        );
    }

    #[test]
    fn rejects_non_keys_naming_the_file() {
        let err = PrivateKey::from_pem("hello", Path::new("/x/key")).unwrap_err();
        assert!(err.to_string().contains("/x/key"), "{err}");
        let err = PublicKey::from_pem("hello", Path::new("/x/key.pub")).unwrap_err();
        assert!(err.to_string().contains("/x/key.pub"), "{err}");
    }
}
