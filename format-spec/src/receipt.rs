//! The receipt `receipt.json` (SPEC.md §6.5): what a registry holds of a bundle's images.
//! A push writes it (and `ferry-unpack receipt` prints it) on the inside; `ferry-pack --base`
//! reads it on the connected side to leave out what the inside already holds (§4.5).
//!
//! It is not signed: it can only make a bundle larger (a blob it omits is carried) or a
//! push refuse (a blob it claims but the registry lacks is named before anything is sent).
//! So it is read strictly for shape, to catch a wrong file, not for trust.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::manifest::Blob;

/// The receipt version this ferry writes and reads.
pub const RECEIPT_VERSION: u32 = 1;

/// A receipt, version 1 (SPEC.md §6.5; the members in that order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub ferry_receipt: u32,
    /// `HOST[:PORT][/PREFIX]` pushed to.
    pub registry: String,
    pub bundle_id: Digest,
    /// Each image the registry holds.
    pub images: Vec<ReceiptImage>,
    /// Every blob (layers, configs, manifests) of the images held, sorted.
    pub blobs: Vec<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptImage {
    /// Where the image is in the registry (`HOST[:PORT]/path`).
    pub destination: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    /// The original reference, when the bundle recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The image's blobs, so a delta bundle knows where each can be mounted from.
    pub blobs: Vec<Digest>,
}

/// Why bytes are not a receipt this ferry reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// A ferry bundle manifest (it has `ferry_bundle`), which is not a receipt.
    #[error("a bundle manifest, not a receipt")]
    BundleManifest,
    /// JSON without a `ferry_receipt` member.
    #[error("not a receipt (it has no ferry_receipt member)")]
    NotAReceipt,
    #[error("receipt version {found} is not supported (this ferry reads version {RECEIPT_VERSION}; use the ferry that wrote it)")]
    UnknownVersion { found: serde_json::Value },
    #[error("not a valid receipt: {0}")]
    Invalid(serde_json::Error),
}

impl Receipt {
    /// Reads a receipt: one JSON object, version [`RECEIPT_VERSION`], exactly the members
    /// of SPEC.md §6.5 with well-formed digests. The version is read first, so a receipt of
    /// another version is named as such rather than as one with unknown members.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        // A version-2 bundle manifest is a zstd frame, never JSON (SPEC.md §4.3).
        if bytes.starts_with(&crate::manifest::ZSTD_MAGIC) {
            return Err(ReceiptError::BundleManifest);
        }
        serde_json::from_slice::<IgnoredAny>(bytes).map_err(ReceiptError::NotJson)?;
        // A derived struct also accepts a JSON array; a receipt is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ReceiptError::NotAReceipt);
        }
        #[derive(Deserialize)]
        struct Peek {
            ferry_receipt: Option<serde_json::Value>,
            ferry_bundle: Option<IgnoredAny>,
        }
        let peek: Peek = serde_json::from_slice(bytes).map_err(ReceiptError::Invalid)?;
        let version = match (peek.ferry_receipt, peek.ferry_bundle) {
            (Some(v), _) => v,
            (None, Some(_)) => return Err(ReceiptError::BundleManifest),
            (None, None) => return Err(ReceiptError::NotAReceipt),
        };
        if version.as_u64() != Some(u64::from(RECEIPT_VERSION)) {
            return Err(ReceiptError::UnknownVersion { found: version });
        }
        serde_json::from_slice(bytes).map_err(ReceiptError::Invalid)
    }

    /// The file's text: pretty-printed JSON and a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a receipt serializes") + "\n"
    }

    /// Writes [`Receipt::to_json`]'s text to `out` as it is made, for printing: at 6×10^4
    /// images it is tens of MB that need not be held whole.
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(out);
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// One image of a receipt, borrowed from the bundle manifest it came from: what
/// [`write_streamed`] writes as a [`ReceiptImage`].
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    pub destination: &'a str,
    pub digest: Digest,
    pub tags: &'a [String],
    pub source: Option<&'a str>,
    /// The image's blobs: indices into `blobs_of`, the bundle manifest's blobs.
    pub blobs: &'a [u32],
    pub blobs_of: &'a [Blob],
}

/// A sequence serialized from an iterator, once.
struct Seq<I>(std::cell::RefCell<Option<I>>);
impl<I: Iterator<Item = T>, T: Serialize> Serialize for Seq<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.borrow_mut().take().expect("serialized once");
        s.collect_seq(items)
    }
}

impl Serialize for ImageRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The members of ReceiptImage, in its order, `source` left out when absent.
        let blobs_of = self.blobs_of;
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ReceiptImage", 5)?;
        st.serialize_field("destination", self.destination)?;
        st.serialize_field("digest", &self.digest)?;
        st.serialize_field("tags", self.tags)?;
        if let Some(source) = self.source {
            st.serialize_field("source", source)?;
        }
        let blobs = self.blobs.iter().map(|&b| blobs_of[b as usize].digest);
        st.serialize_field("blobs", &Seq(std::cell::RefCell::new(Some(blobs))))?;
        st.end()
    }
}

/// Writes the text [`Receipt::to_json`] would give for these images to `out`, without
/// making the [`Receipt`]: at 6×10^4 images the records it copies were 40 MB next to the
/// bundle they are copied from. `images` is called once. The receipt's `blobs` (every
/// blob of the images, sorted, each once) are found first, as indices.
pub fn write_streamed<'a, I>(
    out: impl std::io::Write,
    registry: &str,
    bundle_id: Digest,
    images: impl Fn() -> I,
    blobs_of: &'a [Blob],
) -> std::io::Result<()>
where
    I: Iterator<Item = ImageRef<'a>>,
{
    use serde::ser::{SerializeStruct, Serializer};
    use std::cell::RefCell;
    use std::io::Write as _;

    let mut held = vec![false; blobs_of.len()];
    for image in images() {
        for &b in image.blobs {
            held[b as usize] = true;
        }
    }
    let mut all: Vec<u32> = (0..blobs_of.len() as u32)
        .filter(|&b| held[b as usize])
        .collect();
    drop(held);
    all.sort_unstable_by_key(|&b| blobs_of[b as usize].digest);
    all.dedup_by_key(|b| blobs_of[*b as usize].digest);

    struct Whole<'r, A, B> {
        registry: &'r str,
        bundle_id: Digest,
        images: Seq<A>,
        blobs: Seq<B>,
    }
    impl<A, B> Serialize for Whole<'_, A, B>
    where
        Seq<A>: Serialize,
        Seq<B>: Serialize,
    {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            // The members of Receipt, in its order.
            let mut st = s.serialize_struct("Receipt", 5)?;
            st.serialize_field("ferry_receipt", &RECEIPT_VERSION)?;
            st.serialize_field("registry", self.registry)?;
            st.serialize_field("bundle_id", &self.bundle_id)?;
            st.serialize_field("images", &self.images)?;
            st.serialize_field("blobs", &self.blobs)?;
            st.end()
        }
    }
    let whole = Whole {
        registry,
        bundle_id,
        images: Seq(RefCell::new(Some(images()))),
        blobs: Seq(RefCell::new(Some(
            all.iter().map(|&b| blobs_of[b as usize].digest),
        ))),
    };
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &whole)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Receipt {
        let d = |n: u8| Digest([n; 32]);
        Receipt {
            ferry_receipt: RECEIPT_VERSION,
            registry: "registry.local:5000/efk".into(),
            bundle_id: d(1),
            images: vec![ReceiptImage {
                destination: "registry.local:5000/efk/openshift4/x".into(),
                digest: d(2),
                tags: vec!["v4.6".into()],
                source: Some("registry.redhat.io/openshift4/x:v4.6".into()),
                blobs: vec![d(2), d(3)],
            }],
            blobs: vec![d(2), d(3)],
        }
    }

    #[test]
    fn reads_what_it_writes() {
        let r = sample();
        let text = r.to_json();
        assert!(text.starts_with("{\n  \"ferry_receipt\": 1,\n"), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(Receipt::parse(text.as_bytes()).unwrap(), r);
        let mut streamed = Vec::new();
        r.write_json(&mut streamed).unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            text,
            "printed as written"
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let text = sample().to_json();
        let err = |s: &str| Receipt::parse(s.as_bytes()).unwrap_err();
        assert!(matches!(err("{"), ReceiptError::NotJson(_)));
        assert!(matches!(err("[1, 2]"), ReceiptError::NotAReceipt));
        assert!(matches!(err(r#"{"a": 1}"#), ReceiptError::NotAReceipt));
        assert!(matches!(
            err(r#"{"ferry_bundle": 1, "blobs": []}"#),
            ReceiptError::BundleManifest
        ));
        let v2 = text.replace("\"ferry_receipt\": 1", "\"ferry_receipt\": 2");
        let e = err(&v2);
        assert!(matches!(e, ReceiptError::UnknownVersion { .. }), "{e}");
        assert!(e.to_string().contains("receipt version 2"), "{e}");
        let e = err(&text.replace("\"tags\"", "\"labels\""));
        assert!(matches!(e, ReceiptError::Invalid(_)), "{e}");
        assert!(e.to_string().contains("labels"), "{e}");
        let e = err(&text.replace("sha256:0303", "sha256:03x3"));
        assert!(matches!(e, ReceiptError::Invalid(_)), "{e}");
    }

    /// The receipt written from borrowed records is byte for byte the one a [`Receipt`]
    /// gives: what `ferry-pack --base` reads back. Blobs shared by images, and a blob of
    /// the bundle no image held, are as a receipt has them.
    #[test]
    fn a_streamed_receipt_is_the_receipt_text() {
        let d = |n: u8| Digest([n; 32]);
        let blob = |n: u8| Blob {
            digest: d(n),
            size: 1,
            encoding: crate::manifest::Encoding::Raw,
            stored_size: 1,
            first_volume: 1,
            last_volume: 1,
            media_type: None,
            at: None,
        };
        // Not in digest order, as a pack orders them; 9 is held by no image written.
        let table = [blob(5), blob(2), blob(9), blob(3), blob(4)];
        let tags = [vec!["v4.6".to_string()], vec![]];
        let images = || {
            [
                ImageRef {
                    destination: "registry.local:5000/efk/x",
                    digest: d(5),
                    tags: &tags[0],
                    source: Some("registry.redhat.io/x:v4.6"),
                    blobs: &[0, 3, 1],
                    blobs_of: &table,
                },
                ImageRef {
                    destination: "registry.local:5000/efk/y",
                    digest: d(4),
                    tags: &tags[1],
                    source: None,
                    blobs: &[4, 1],
                    blobs_of: &table,
                },
            ]
            .into_iter()
        };
        let mut streamed = Vec::new();
        write_streamed(
            &mut streamed,
            "registry.local:5000/efk",
            d(1),
            images,
            &table,
        )
        .unwrap();
        let whole = Receipt {
            ferry_receipt: RECEIPT_VERSION,
            registry: "registry.local:5000/efk".into(),
            bundle_id: d(1),
            images: vec![
                ReceiptImage {
                    destination: "registry.local:5000/efk/x".into(),
                    digest: d(5),
                    tags: vec!["v4.6".into()],
                    source: Some("registry.redhat.io/x:v4.6".into()),
                    blobs: vec![d(5), d(3), d(2)],
                },
                ReceiptImage {
                    destination: "registry.local:5000/efk/y".into(),
                    digest: d(4),
                    tags: vec![],
                    source: None,
                    blobs: vec![d(4), d(2)],
                },
            ],
            blobs: vec![d(2), d(3), d(4), d(5)],
        };
        assert_eq!(String::from_utf8(streamed).unwrap(), whole.to_json());
    }
}
