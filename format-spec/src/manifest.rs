//! The bundle manifest, `ferry/bundle.json.zst` (version 2) or `ferry/bundle.json`
//! (version 1) (SPEC.md §4): what the bundle holds and how its volumes fit together.
//! Signed; identical in every volume and beside the volumes.

use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::rule::Rule;
use crate::Digest;

mod canonical;
mod stored;

pub use stored::{compress_json, json_of, MAX_JSON, PADDING_MAGIC, ZSTD_MAGIC};

/// The version writers write unless told otherwise (SPEC.md §4.1): the canonical JSON in
/// one zstd frame.
pub const BUNDLE_VERSION: u32 = 2;
/// Every version this ferry reads (and can write: `ferry-pack --bundle-format 1` for an
/// older ferry-unpack inside, which reads only version 1).
pub const BUNDLE_VERSIONS: [u32; 2] = [1, 2];
/// Largest chunk a reader accepts; bounds every allocation a table can ask for.
pub const MAX_CHUNK_SIZE: u64 = 64 << 20;
/// The largest manifest or index a bundle may carry: registries refuse manifests over
/// 4 MiB; twice that leaves room without letting a lie about size fill memory (M24).
pub const MAX_MANIFEST_SIZE: u64 = 8 << 20;
/// The largest time an 11-digit octal ustar mtime holds (year 2242).
pub const MAX_CREATED: u64 = 0o77777777777;

/// Serialized through [`canonical::View`] (SPEC.md §4.3), so computing `bundle_id` needs no
/// copy of the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// Format version; first so a reader can refuse an unknown one before anything else.
    pub ferry_bundle: u32,
    /// SHA-256 of this document serialized with `bundle_id` all zeros (SPEC.md §4.3).
    pub bundle_id: Digest,
    pub creator: String,
    /// Seconds since the Unix epoch, UTC: from `SOURCE_DATE_EPOCH` or the mirror, never the clock.
    pub created: u64,
    /// Layout the bundle was packed from: `oc-mirror`, `oci`, `registry-storage`, `skopeo-dir`.
    pub source_layout: String,
    /// Fingerprint of the signing key (a hint for messages; trust comes from the signature).
    pub key: String,
    pub volume_size: u64,
    pub volume_count: u32,
    pub chunk_size: u64,
    /// Digest of `ferry/index.json`, the OCI index of every image (SPEC.md §6).
    pub index_json: Digest,
    pub blobs: Vec<Blob>,
    pub images: Vec<Image>,
    pub tree: Vec<TreeEntry>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Stored as is: gzip/zstd layers and anything zstd would not shrink.
    Raw,
    /// One zstd stream of the whole blob, cut into chunks.
    Zstd,
    /// Not carried: a delta bundle expects the registry to hold it already (SPEC.md §4.5).
    Base,
}

impl Encoding {
    /// The extension in chunk entry names.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Zstd => "zst",
            Encoding::Base => "base",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub encoding: Encoding,
    pub stored_size: u64,
    pub first_volume: u32,
    pub last_volume: u32,
    /// For manifests and indexes: their media type, needed to push them.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub media_type: Option<String>,
    /// For a `base` blob: the original repository path of an image that held it, where the
    /// push can mount it from when the destination repository lacks it.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: Digest,
    pub media_type: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<String>,
    /// Indexes into `blobs`: the manifest first, then everything it needs.
    pub blobs: Vec<u32>,
    /// An operator catalog (index) image: its config carries an
    /// `operators.operatorframework.io.index.*` label. Push writes a CatalogSource for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub catalog: bool,
    /// A sparse index: the platforms (`os/arch[/variant]`, sorted) whose children the bundle
    /// carries; the index's other children are not in the bundle (SPEC.md §4.2, M25).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub platforms: Option<Vec<String>>,
    /// The repository path (without host) the image is to have at the destination, from
    /// the image set's `targetRepo`: push puts it at `PREFIX/<destination>` instead of
    /// `PREFIX/<the source's path>` (SPEC.md §4.2, M10).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination: Option<String>,
    /// For an operator catalog ferry pulled (`catalog` is true): the packages it holds,
    /// sorted in byte order, each once, so `inspect` and `catalog list` name them without
    /// reading the catalog (SPEC.md §4.2, M26).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub packages: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TreeEntry {
    Dir {
        path: String,
    },
    File {
        path: String,
        blob: u32,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// Another name of the file at `target`, an earlier `file` entry (a hard link).
    Link {
        path: String,
        target: String,
    },
}

/// An optional member, when present, holds a value of its type: `null` is not a string
/// (M3), and the canonical form omits absent members rather than writing `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl TreeEntry {
    pub fn path(&self) -> &str {
        match self {
            TreeEntry::Dir { path }
            | TreeEntry::File { path, .. }
            | TreeEntry::Symlink { path, .. }
            | TreeEntry::Link { path, .. } => path,
        }
    }
}

impl BundleManifest {
    /// Sets `bundle_id` from the rest of the document.
    pub fn seal(&mut self) {
        self.bundle_id = self.content_id();
    }

    /// Parses stored bytes of either version and checks every MUST of SPEC.md §4.4, in the
    /// order §4.4 gives (the first rule broken is the one reported). Bytes that start with a
    /// zstd (or skippable) frame are version 2's form, anything else version 1's. Call only
    /// on signature-checked bytes.
    pub fn parse(bytes: &[u8]) -> Result<BundleManifest, Invalid> {
        if stored::is_compressed(bytes) {
            Self::parse_compressed(bytes, MAX_JSON)
        } else {
            Self::parse_json(bytes)
        }
    }

    /// Version 1: the canonical JSON, then only spaces.
    fn parse_json(bytes: &[u8]) -> Result<BundleManifest, Invalid> {
        let version = peek_version(bytes, "ferry_bundle", Rule::M1)?;
        check_version(version, 1)?;
        let m: BundleManifest = serde_json::from_slice(bytes)
            .map_err(|e| Invalid::new(Rule::M3, format!("bundle manifest: {e}")))?;
        m.validate()?;
        // M18: one document, one spelling — so one bundle_id names one signed text.
        if !m.json_is(unpadded_json(bytes)) {
            return Err(Invalid::new(
                Rule::M18,
                "bundle manifest: not in canonical form (compact JSON in the field order of SPEC.md §4.2, then only spaces)",
            ));
        }
        Ok(m)
    }

    /// Version 2: one zstd frame of the canonical JSON, then at most one padding frame
    /// (M27). Decompressed twice in a stream (bounded by [`MAX_JSON`]), never held whole:
    /// once to check the JSON and read the version (M1, M2), once into the manifest.
    fn parse_compressed(bytes: &[u8], limit: u64) -> Result<BundleManifest, Invalid> {
        let frame = stored::frame(bytes)?;
        let mut text = stored::Decompressed::new(frame, limit)?;
        let peek = serde_json::from_reader::<_, PeekBundle>(&mut text);
        let version = match peek {
            Err(e) if e.is_io() => return Err(stored::decode_error(e.into())),
            Err(e) => {
                text.drain()?;
                return Err(Invalid::new(
                    Rule::M1,
                    format!("ferry_bundle document is not valid JSON: {e}"),
                ));
            }
            Ok(_) if text.first_byte() != Some(b'{') => {
                return Err(Invalid::new(
                    Rule::M1,
                    "ferry_bundle document is not a JSON object",
                ))
            }
            Ok(p) => version_of(p.ferry_bundle, "ferry_bundle", Rule::M1)?,
        };
        check_version(version, 2)?;
        let (json_digest, json_len) = text.finish();
        let m: BundleManifest = serde_json::from_reader(stored::Decompressed::new(frame, limit)?)
            .map_err(|e| {
            if e.is_io() {
                stored::decode_error(e.into())
            } else {
                Invalid::new(Rule::M3, format!("bundle manifest: {e}"))
            }
        })?;
        m.validate()?;
        // M18, as for version 1 but with no padding inside the frame: the decompressed
        // text is exactly the canonical form (compared by SHA-256 and length).
        if m.json_digest() != (json_digest, json_len) {
            return Err(Invalid::new(
                Rule::M18,
                "bundle manifest: its zstd frame does not hold exactly the canonical form (compact JSON in the field order of SPEC.md §4.2)",
            ));
        }
        Ok(m)
    }

    /// A writer's check before it signs `stored` as this manifest's stored bytes: whether
    /// [`BundleManifest::parse`] of `stored` would succeed and give back `self`, found
    /// without building a second copy of the records (at 10^5 images that copy is tens
    /// of MB, and pack is at its peak then). `self` passes every MUST of SPEC.md §4.4
    /// about content (the same checks `parse` makes after deserializing), and `stored`
    /// holds exactly `self`'s canonical JSON in its version's stored form (M2, M18, M27),
    /// which is the one text that deserializes to `self`.
    pub fn check_stored(&self, stored: &[u8]) -> Result<(), Invalid> {
        self.validate()?;
        let same = if stored::is_compressed(stored) {
            check_version(self.ferry_bundle, 2)?;
            let mut text = stored::Decompressed::new(stored::frame(stored)?, MAX_JSON)?;
            text.drain()?;
            text.finish() == self.json_digest()
        } else {
            check_version(self.ferry_bundle, 1)?;
            self.json_is(unpadded_json(stored))
        };
        if !same {
            return Err(Invalid::new(
                Rule::M18,
                "bundle manifest: the stored bytes are not this manifest's canonical form",
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), Invalid> {
        let bad =
            |rule: Rule, what: String| Err(Invalid::new(rule, format!("bundle manifest: {what}")));
        let computed = self.content_id();
        if computed != self.bundle_id {
            return bad(
                Rule::M4,
                format!(
                    "bundle_id {} does not match its content ({computed})",
                    self.bundle_id
                ),
            );
        }
        if self.volume_count == 0 {
            return bad(Rule::M5, "volume_count is 0".into());
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return bad(
                Rule::M6,
                format!("chunk_size {} is out of range", self.chunk_size),
            );
        }
        if self.created > MAX_CREATED {
            return bad(
                Rule::M21,
                format!(
                    "created {} is past what a tar header can hold",
                    self.created
                ),
            );
        }
        let first_repeat = self.first_repeated_blob();
        for (i, b) in self.blobs.iter().enumerate() {
            if first_repeat == Some(i) {
                return bad(Rule::M7, format!("blob {} is listed twice", b.digest));
            }
            if b.encoding == Encoding::Raw && b.stored_size != b.size {
                return bad(Rule::M8, format!("raw blob {i} has stored_size != size"));
            }
            if b.media_type.is_some() && b.size > MAX_MANIFEST_SIZE {
                return bad(
                    Rule::M24,
                    format!(
                    "blob {} is a manifest of {} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
                    b.digest, b.size
                ),
                );
            }
            if b.encoding == Encoding::Base {
                // M23: carried by no volume, and only layers and configs may be left out.
                if b.stored_size != 0
                    || b.first_volume != 0
                    || b.last_volume != 0
                    || b.media_type.is_some()
                {
                    return bad(
                        Rule::M23,
                        format!(
                            "base blob {i} must have stored_size 0, volumes 0..0 and no media type"
                        ),
                    );
                }
                continue;
            }
            if b.at.is_some() {
                return bad(
                    Rule::M23,
                    format!("blob {i} is carried but names a base location"),
                );
            }
            if b.first_volume == 0
                || b.first_volume > b.last_volume
                || b.last_volume > self.volume_count
            {
                return bad(
                    Rule::M9,
                    format!(
                        "blob {i} has volumes {}..{} outside 1..{}",
                        b.first_volume, b.last_volume, self.volume_count
                    ),
                );
            }
        }
        let blob_count = self.blobs.len();
        let first_retag = self.first_repeated_tag();
        for (i, img) in self.images.iter().enumerate() {
            check_repository(&img.repository)?;
            if let Some(destination) = &img.destination {
                check_repository(destination).map_err(|e| {
                    Invalid::new(
                        Rule::M10,
                        format!("image {}: destination: {}", img.display_name(), e.detail),
                    )
                })?;
            }
            for (j, t) in img.tags.iter().enumerate() {
                check_tag(t)?;
                if first_retag == Some((i, j)) {
                    return bad(
                        Rule::M19,
                        format!("tag {}:{t} names two images", img.repository),
                    );
                }
            }
            if img.blobs.iter().any(|&b| b as usize >= blob_count) {
                return bad(
                    Rule::M12,
                    format!("image {} names a blob index out of range", img.repository),
                );
            }
            match img.blobs.first() {
                Some(&first) if self.blobs[first as usize].digest == img.digest => {}
                _ => {
                    return bad(
                        Rule::M13,
                        format!(
                            "image {}@{} does not list its manifest first",
                            img.repository, img.digest
                        ),
                    )
                }
            }
            if let Some(platforms) = &img.platforms {
                check_platforms(img, platforms)?;
            }
            if let Some(packages) = &img.packages {
                check_packages(img, packages)?;
            }
        }
        // Paths strictly increase (M15), so none repeats and an earlier entry is found by
        // binary search: no set of 10^5 paths is built.
        let mut previous: Option<&str> = None;
        for (i, entry) in self.tree.iter().enumerate() {
            let path = entry.path();
            check_relative_path(path)?;
            if previous.is_some_and(|p| p >= path) {
                return bad(
                    Rule::M15,
                    format!("tree entry {path:?} is out of order or repeated"),
                );
            }
            previous = Some(path);
            match entry {
                TreeEntry::File { blob, .. } if *blob as usize >= blob_count => {
                    return bad(
                        Rule::M16,
                        format!("tree entry {path:?} names a blob index out of range"),
                    );
                }
                TreeEntry::File { mode, .. } if *mode > 0o7777 => {
                    return bad(
                        Rule::M20,
                        format!("tree entry {path:?} has mode {mode:o}, beyond permission bits"),
                    );
                }
                TreeEntry::Symlink { target, .. } => check_symlink(path, target)?,
                // M22: a hard link names a regular file listed before it.
                TreeEntry::Link { target, .. } if !self.is_file_before(i, target) => {
                    return bad(Rule::M22, format!(
                        "tree entry {path:?} links to {target:?}, which is not a file listed before it"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The first position in `blobs` whose digest an earlier blob has (M7): a sort of 4-byte
    /// positions rather than a set of every digest (at 10^5 blobs, several MB at the peak of
    /// pack and of every reader).
    fn first_repeated_blob(&self) -> Option<usize> {
        let mut order: Vec<u32> = (0..self.blobs.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (self.blobs[i as usize].digest, i));
        order
            .windows(2)
            .filter(|w| self.blobs[w[0] as usize].digest == self.blobs[w[1] as usize].digest)
            .map(|w| w[1] as usize)
            .min()
    }

    /// The first (image, tag) position whose repository and tag an earlier one has (M19),
    /// found by sorting positions, as [`Self::first_repeated_blob`].
    fn first_repeated_tag(&self) -> Option<(usize, usize)> {
        let mut order: Vec<(u32, u32)> = self
            .images
            .iter()
            .enumerate()
            .flat_map(|(i, img)| (0..img.tags.len()).map(move |j| (i as u32, j as u32)))
            .collect();
        let key = |&(i, j): &(u32, u32)| {
            let img = &self.images[i as usize];
            (img.repository.as_str(), img.tags[j as usize].as_str())
        };
        order.sort_unstable_by(|a, b| key(a).cmp(&key(b)).then(a.cmp(b)));
        order
            .windows(2)
            .filter(|w| key(&w[0]) == key(&w[1]))
            .map(|w| (w[1].0 as usize, w[1].1 as usize))
            .min()
    }

    /// Whether a `file` entry at `path` comes before entry `i` of a tree whose entries up
    /// to `i` are in strictly increasing path order.
    fn is_file_before(&self, i: usize, path: &str) -> bool {
        let before = &self.tree[..i];
        before
            .binary_search_by(|e| e.path().cmp(path))
            .is_ok_and(|k| matches!(before[k], TreeEntry::File { .. }))
    }

    /// The next blob after `blob` that volumes carry (base blobs have no chunks).
    pub fn next_carried(&self, blob: u32) -> Option<u32> {
        (blob as usize + 1..self.blobs.len())
            .find(|&i| self.blobs[i].encoding != Encoding::Base)
            .map(|i| i as u32)
    }

    /// True when some blob is left for the base to provide (a delta bundle).
    pub fn is_delta(&self) -> bool {
        self.blobs.iter().any(|b| b.encoding == Encoding::Base)
    }

    /// Images (by index) that need blob `blob`.
    pub fn images_using(&self, blob: u32) -> Vec<usize> {
        self.images
            .iter()
            .enumerate()
            .filter(|(_, img)| img.blobs.contains(&blob))
            .map(|(i, _)| i)
            .collect()
    }
}

impl Image {
    /// `repository:tag` for the first tag, or `repository@digest`.
    pub fn display_name(&self) -> String {
        match self.tags.first() {
            Some(t) => format!("{}:{t}", self.repository),
            None => format!("{}@{}", self.repository, self.digest),
        }
    }
}

// Each document's peek knows only its own version member, so the other document's
// version member is an unknown member (M3, R5), not a malformed version.
#[derive(Deserialize)]
struct PeekBundle {
    ferry_bundle: Option<u64>,
}
#[derive(Deserialize)]
struct PeekVolume {
    ferry_volume: Option<u64>,
}

/// M2: the version is one this ferry reads, and the one the stored form implies
/// (`stored_as`: 1 for plain JSON, 2 for a zstd frame, SPEC.md §4.3).
/// A version-1 manifest's JSON without the spaces that pad it to its reservation.
fn unpadded_json(stored: &[u8]) -> &[u8] {
    &stored[..stored.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1)]
}

fn check_version(version: u32, stored_as: u32) -> Result<(), Invalid> {
    if !BUNDLE_VERSIONS.contains(&version) {
        return Err(Invalid::new(
            Rule::M2,
            format!(
            "bundle manifest version {version} is not supported (this ferry reads versions 1 and 2)"
        ),
        ));
    }
    if version != stored_as {
        let form = |v: u32| {
            if v == 1 {
                "plain JSON"
            } else {
                "one zstd frame"
            }
        };
        return Err(Invalid::new(
            Rule::M2,
            format!(
                "bundle manifest version {version} is stored as {}, but version {version} is stored as {} (SPEC.md §4.3)",
                form(stored_as),
                form(version)
            ),
        ));
    }
    Ok(())
}

fn version_of(v: Option<u64>, field: &str, rule: Rule) -> Result<u32, Invalid> {
    let v =
        v.ok_or_else(|| Invalid::new(rule, format!("document has no {field} version field")))?;
    u32::try_from(v)
        .map_err(|_| Invalid::new(rule, format!("{field} version {v} is not supported")))
}

/// Reads the version field before full parsing, so an unknown version gets its own message
/// instead of a complaint about unknown fields. Failures here break `rule` (M1 or R4): the
/// bytes are not one JSON object with one integer version member.
pub(crate) fn peek_version(bytes: &[u8], field: &str, rule: Rule) -> Result<u32, Invalid> {
    // A derived struct also accepts a JSON array; the version lives in an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Invalid::new(
            rule,
            format!("{field} document is not a JSON object"),
        ));
    }
    let not_json = |e: serde_json::Error| {
        Invalid::new(rule, format!("{field} document is not valid JSON: {e}"))
    };
    let v = if field == "ferry_bundle" {
        serde_json::from_slice::<PeekBundle>(bytes)
            .map_err(not_json)?
            .ferry_bundle
    } else {
        serde_json::from_slice::<PeekVolume>(bytes)
            .map_err(not_json)?
            .ferry_volume
    };
    version_of(v, field, rule)
}

/// M10: the repository path is the distribution spec's `<name>`, checked by the one
/// grammar every ferry crate shares. The message is oci's, which opens as this check's
/// always did (`repository name "…" is not valid`) and then says which byte breaks what.
fn check_repository(repo: &str) -> Result<(), Invalid> {
    oci::name::check_repository(repo).map_err(|e| Invalid::new(Rule::M10, e.to_string()))
}

/// M11: a tag of the distribution spec (`tag "…" is not valid: …`).
fn check_tag(tag: &str) -> Result<(), Invalid> {
    oci::name::check_tag(tag).map_err(|e| Invalid::new(Rule::M11, e.to_string()))
}

/// M25: a sparse index names its platforms once each, sorted, in `os/arch[/variant]`
/// form, and is an index (only an index has children to leave out).
fn check_platforms(img: &Image, platforms: &[String]) -> Result<(), Invalid> {
    let bad = |what: String| {
        Err(Invalid::new(
            Rule::M25,
            format!(
                "bundle manifest: image {}: platforms {what}",
                img.display_name()
            ),
        ))
    };
    if !oci::media_type::is_index(&img.media_type) {
        return bad(format!(
            "given, but its media type {} is not an index",
            img.media_type
        ));
    }
    if platforms.is_empty() {
        return bad("is empty".into());
    }
    for p in platforms {
        if let Err(e) = oci::PlatformSpec::parse(p) {
            return bad(format!("entry: {e}"));
        }
    }
    if platforms.windows(2).any(|w| w[0] >= w[1]) {
        return bad(format!(
            "{platforms:?} are not sorted, each once, in byte order"
        ));
    }
    Ok(())
}

/// M26: a catalog's packages are named once each, sorted, each a non-empty name without
/// `,` (the annotation of SPEC.md §6.3 joins them with it) or control characters; only a
/// catalog has packages. The list may be empty: a selection can keep none (every package
/// dropped for images that could not be pulled).
fn check_packages(img: &Image, packages: &[String]) -> Result<(), Invalid> {
    let bad = |what: String| {
        Err(Invalid::new(
            Rule::M26,
            format!(
                "bundle manifest: image {}: packages {what}",
                img.display_name()
            ),
        ))
    };
    if !img.catalog {
        return bad("given, but the image is not marked as a catalog".into());
    }
    if let Some(p) = packages
        .iter()
        .find(|p| p.is_empty() || p.chars().any(|c| c == ',' || c.is_control()))
    {
        return bad(format!(
            "entry {p:?} is not a package name (empty, or holds ',' or a control character)"
        ));
    }
    if packages.windows(2).any(|w| w[0] >= w[1]) {
        return bad(format!(
            "{packages:?} are not sorted, each once, in byte order"
        ));
    }
    Ok(())
}

/// A path taken from a bundle: relative, `/`-separated, no empty, `.` or `..` component, no NUL.
pub fn check_relative_path(path: &str) -> Result<(), Invalid> {
    let ok = !path.is_empty()
        && path.len() <= 4096
        && !path.starts_with('/')
        && !path.contains('\0')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            Rule::M14,
            format!("path {path:?} is not a safe relative path"),
        ))
    }
}

/// A symlink target must be relative and, resolved from the link's directory, stay inside the tree.
pub fn check_symlink(path: &str, target: &str) -> Result<(), Invalid> {
    let bad = || {
        Err(Invalid::new(
            Rule::M17,
            format!("symlink {path:?} -> {target:?} leaves the tree"),
        ))
    };
    if target.is_empty()
        || target.starts_with('/')
        || target.contains('\0')
        || target.contains('\\')
    {
        return bad();
    }
    let mut depth: i64 = path.matches('/').count() as i64;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return bad();
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(check_symlink("v2/a/manifests/latest", "sha256:00").is_ok());
        assert!(check_symlink("a/b", "../c").is_ok());
        assert!(check_symlink("a/b", "../../c").is_err());
        assert!(check_symlink("a", "/etc/passwd").is_err());
    }

    /// M10 and M11 are the distribution grammar (oci's): the rule is carried, the message
    /// opens as it always did and says where the name breaks.
    #[test]
    fn names_follow_the_distribution_grammar() {
        for ok in ["openshift4/ose-x", "a__b/c--d", "0"] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for (bad, reason) in [
            ("example/a..b", "at byte 9"),
            ("Example", "uppercase"),
            ("ab-", "at byte 2"),
            ("", "empty"),
        ] {
            let e = check_repository(bad).unwrap_err();
            assert_eq!(e.rule, Rule::M10, "{bad:?}");
            assert!(
                e.detail
                    .starts_with(&format!("repository name {bad:?} is not valid"))
                    && e.detail.contains(reason),
                "{e}"
            );
        }
        assert!(check_repository(&"a".repeat(255)).is_ok());
        assert_eq!(
            check_repository(&"a".repeat(256)).unwrap_err().rule,
            Rule::M10
        );
        assert!(check_tag(&"v".repeat(128)).is_ok());
        for bad in [".x", "-x", "a/b", "", &"v".repeat(129)] {
            let e = check_tag(bad).unwrap_err();
            assert_eq!(e.rule, Rule::M11, "{bad:?}");
            assert!(e.detail.starts_with("tag "), "{e}");
        }
    }

    /// Malformed JSON of any kind is M1 (§4.4), a well-formed document of the wrong shape
    /// M3, an unknown version M2.
    #[test]
    fn the_first_rules_split_json_from_shape() {
        let rule = |text: &str| BundleManifest::parse(text.as_bytes()).unwrap_err().rule;
        assert_eq!(rule("not json"), Rule::M1);
        assert_eq!(rule("[1]"), Rule::M1);
        assert_eq!(rule(r#"{"ferry_bundle":1"#), Rule::M1);
        assert_eq!(rule(r#"{"ferry_bundle":1} x"#), Rule::M1);
        assert_eq!(rule(r#"{"ferry_bundle":1,"ferry_bundle":1}"#), Rule::M1);
        assert_eq!(rule(r#"{"ferry_bundle":"1"}"#), Rule::M1);
        assert_eq!(rule(r#"{"ferry_bundle":4294967296}"#), Rule::M1);
        assert_eq!(rule(r#"{"creator":"x"}"#), Rule::M1);
        assert_eq!(rule(r#"{"ferry_bundle":2}"#), Rule::M2);
        assert_eq!(rule(r#"{"ferry_bundle":1}"#), Rule::M3);
        assert_eq!(rule(r#"{"ferry_bundle":1,"ferry_volume":"x"}"#), Rule::M3);
    }

    /// A one-image manifest, sealed, whose image goes to `destination`.
    fn with_destination(destination: Option<&str>) -> BundleManifest {
        let manifest = Digest([7; 32]);
        let mut m = BundleManifest {
            ferry_bundle: 1,
            bundle_id: Digest([0; 32]),
            creator: "ferry-pack test".into(),
            created: 1,
            source_layout: "oci".into(),
            key: "EH7D-DX5B-KSRG-CYTL".into(),
            volume_size: 1 << 20,
            volume_count: 1,
            chunk_size: 4 << 20,
            index_json: Digest([9; 32]),
            blobs: vec![Blob {
                digest: manifest,
                size: 10,
                encoding: Encoding::Raw,
                stored_size: 10,
                first_volume: 1,
                last_volume: 1,
                media_type: Some(oci::media_type::OCI_MANIFEST.into()),
                at: None,
            }],
            images: vec![Image {
                repository: "mirror/es-proxy".into(),
                tags: vec!["stable".into()],
                digest: manifest,
                media_type: oci::media_type::OCI_MANIFEST.into(),
                source: Some("registry.redhat.io/openshift4/ose-es-proxy:v4.6".into()),
                blobs: vec![0],
                catalog: false,
                platforms: None,
                destination: destination.map(str::to_owned),
                packages: None,
            }],
            tree: vec![],
        };
        m.seal();
        m
    }

    /// The image's optional `destination` (§4.2): last of the image object, omitted when
    /// absent, read back as written; checked as `repository` is (M10); `null` is M3.
    #[test]
    fn a_destination_round_trips_and_is_a_repository_path() {
        let m = with_destination(Some("mirror/es-proxy"));
        let bytes = m.to_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""blobs":[0],"destination":"mirror/es-proxy"}]"#),
            "{text}"
        );
        assert_eq!(BundleManifest::parse(&bytes).unwrap(), m);
        let without = with_destination(None).to_json();
        assert!(!String::from_utf8_lossy(&without).contains("destination"));
        assert_eq!(
            BundleManifest::parse(&without).unwrap().images[0].destination,
            None
        );

        for bad in ["Mirror/x", "mirror//x", "registry.example:5000/x", ""] {
            let bytes = with_destination(Some(bad)).to_json();
            let e = BundleManifest::parse(&bytes).unwrap_err();
            assert_eq!(e.rule, Rule::M10, "{bad:?}: {e}");
            assert!(
                e.detail
                    .contains("mirror/es-proxy:stable: destination: repository name"),
                "{e}"
            );
        }
        let null = text.replace(
            r#""destination":"mirror/es-proxy""#,
            r#""destination":null"#,
        );
        assert_eq!(
            BundleManifest::parse(null.as_bytes()).unwrap_err().rule,
            Rule::M3
        );
    }

    /// A catalog's optional `packages` (§4.2): after `destination`, omitted when absent (a
    /// bundle without it is what it was), read back as written; M26 refuses packages on an
    /// image not marked as a catalog, a bad name and an unsorted list.
    #[test]
    fn packages_round_trip_and_are_those_of_a_catalog() {
        let mut m = with_destination(None);
        m.images[0].catalog = true;
        m.seal();
        let plain = m.to_json();
        assert!(!String::from_utf8_lossy(&plain).contains("packages"));
        assert_eq!(
            BundleManifest::parse(&plain).unwrap().images[0].packages,
            None
        );
        m.images[0].packages = Some(vec![
            "cluster-logging".into(),
            "elasticsearch-operator".into(),
        ]);
        m.seal();
        let bytes = m.to_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(
                r#""catalog":true,"packages":["cluster-logging","elasticsearch-operator"]}]"#
            ),
            "{text}"
        );
        assert_eq!(BundleManifest::parse(&bytes).unwrap(), m);
        let null = text.replace(
            r#""packages":["cluster-logging","elasticsearch-operator"]"#,
            r#""packages":null"#,
        );
        assert_eq!(
            BundleManifest::parse(null.as_bytes()).unwrap_err().rule,
            Rule::M3
        );

        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let catalog = m.images[0].clone();
        let not_catalog = Image {
            catalog: false,
            ..catalog.clone()
        };
        assert!(check_packages(&catalog, &p(&["a", "b-c.d"])).is_ok());
        assert!(
            check_packages(&catalog, &p(&[])).is_ok(),
            "a catalog that kept none"
        );
        for (image, packages, says) in [
            (&not_catalog, p(&["a"]), "not marked as a catalog"),
            (&catalog, p(&[""]), "not a package name"),
            (&catalog, p(&["a,b"]), "not a package name"),
            (&catalog, p(&["a\nb"]), "not a package name"),
            (&catalog, p(&["b", "a"]), "not sorted"),
            (&catalog, p(&["a", "a"]), "not sorted"),
        ] {
            let e = check_packages(image, &packages).unwrap_err();
            assert_eq!(e.rule, Rule::M26, "{packages:?}");
            assert!(
                e.detail.contains(says) && e.detail.contains("mirror/es-proxy:stable"),
                "{packages:?}: {e}"
            );
        }
    }

    /// M25: a sparse index lists its platforms sorted, once, well formed; only an index can.
    #[test]
    fn platforms_are_those_of_a_sparse_index() {
        let img = |media_type: &str| Image {
            repository: "a".into(),
            tags: vec![],
            digest: Digest([1; 32]),
            media_type: media_type.into(),
            source: None,
            blobs: vec![0],
            catalog: false,
            platforms: None,
            destination: None,
            packages: None,
        };
        let index = img(oci::media_type::OCI_INDEX);
        let list = img(oci::media_type::DOCKER_LIST);
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_platforms(&index, &p(&["linux/amd64", "linux/arm/v7"])).is_ok());
        assert!(check_platforms(&list, &p(&["linux/arm64"])).is_ok());
        for (image, platforms, says) in [
            (
                &img(oci::media_type::OCI_MANIFEST),
                p(&["linux/amd64"]),
                "not an index",
            ),
            (&index, p(&[]), "is empty"),
            (&index, p(&["linux/amd64", "linux/amd64"]), "not sorted"),
            (&index, p(&["linux/arm64", "linux/amd64"]), "not sorted"),
            (&index, p(&["linux"]), "expected os/architecture"),
            (&index, p(&["linux/amd64/v2/x"]), "expected os/architecture"),
        ] {
            let e = check_platforms(image, &platforms).unwrap_err();
            assert_eq!(e.rule, Rule::M25, "{platforms:?}");
            assert!(e.detail.contains(says), "{platforms:?}: {e}");
        }
    }

    /// Version 2 (§4.3): one zstd frame of the canonical JSON, padded by one skippable
    /// frame of zeros; read back as written, alone or padded; `bundle_id` is that of the
    /// JSON, which differs from version 1's only in `ferry_bundle`.
    #[test]
    fn version_2_is_one_zstd_frame_padded_by_a_skippable_frame() {
        let mut m = with_destination(Some("mirror/es-proxy"));
        m.ferry_bundle = 2;
        m.seal();
        let plain = m.stored_bytes(0);
        assert!(plain.starts_with(&ZSTD_MAGIC));
        assert_eq!(plain.len(), m.stored_len());
        assert_eq!(zstd::decode_all(&plain[..]).unwrap(), m.to_json());
        assert_eq!(BundleManifest::parse(&plain).unwrap(), m);
        let padded = m.stored_bytes(plain.len() + 100);
        assert_eq!(padded.len(), plain.len() + 100);
        assert_eq!(&padded[..plain.len()], &plain[..]);
        assert_eq!(&padded[plain.len()..plain.len() + 4], &PADDING_MAGIC);
        assert_eq!(
            zstd::decode_all(&padded[..]).unwrap(),
            m.to_json(),
            "a zstd reader skips the padding"
        );
        assert_eq!(BundleManifest::parse(&padded).unwrap(), m);
        // A gap of 1–7 bytes cannot be padded: the planner grows past it (§5.3).
        let len = plain.len();
        assert_eq!(m.grown_reservation(len, len), None);
        assert_eq!(m.grown_reservation(len, len + 8), None);
        assert_eq!(m.grown_reservation(len, len + 7), Some(len + 8));
        assert_eq!(m.grown_reservation(len + 1, len), Some(len + 1));
        let mut v1 = m.clone();
        v1.ferry_bundle = 1;
        assert_eq!(v1.grown_reservation(len, len + 1), None);
        v1.seal();
        assert_ne!(v1.bundle_id, m.bundle_id);
        assert_eq!(
            BundleManifest::parse(&v1.stored_bytes(len + 3)).unwrap(),
            v1
        );
    }

    /// The writer's check (`check_stored`) agrees with a reader's `parse`: it takes the
    /// manifest's own stored bytes in either version, padded or not, and refuses bytes of
    /// another manifest, a form of the other version and a manifest breaking a rule.
    #[test]
    fn the_writers_check_agrees_with_parse() {
        let mut m = with_destination(Some("mirror/es-proxy"));
        for version in [1, 2] {
            m.ferry_bundle = version;
            m.seal();
            let plain = m.stored_bytes(0);
            for stored in [plain.clone(), m.stored_bytes(plain.len() + 64)] {
                m.check_stored(&stored).unwrap();
                assert_eq!(BundleManifest::parse(&stored).unwrap(), m);
            }
            let mut other = m.clone();
            other.created += 1;
            other.seal();
            let e = m.check_stored(&other.stored_bytes(0)).unwrap_err();
            assert_eq!(e.rule, Rule::M18, "version {version}: {e}");
            let mut flipped = m.clone();
            flipped.ferry_bundle = 3 - version;
            flipped.seal();
            let e = m.check_stored(&flipped.stored_bytes(0)).unwrap_err();
            assert_eq!(e.rule, Rule::M2, "version {version}: {e}");
            let mut twice = m.clone();
            twice.blobs.push(twice.blobs[0].clone());
            twice.seal();
            let e = twice.check_stored(&twice.stored_bytes(0)).unwrap_err();
            assert_eq!(e.rule, Rule::M7, "version {version}: {e}");
            assert_eq!(
                BundleManifest::parse(&twice.stored_bytes(0))
                    .unwrap_err()
                    .rule,
                Rule::M7
            );
        }
    }

    /// M27 and M2 for version 2: only one zstd frame, then at most one all-zero padding
    /// frame; the version matches the stored form; M18 on the decompressed text.
    #[test]
    fn version_2_refuses_every_other_stored_form() {
        let mut m = with_destination(None);
        m.ferry_bundle = 2;
        m.seal();
        let good = m.stored_bytes(0);
        let rule = |bytes: &[u8]| BundleManifest::parse(bytes).unwrap_err();
        let cat = |parts: &[&[u8]]| parts.concat();
        let pad = |n: u32, fill: u8| {
            let mut p = PADDING_MAGIC.to_vec();
            p.extend(n.to_le_bytes());
            p.resize(8 + n as usize, fill);
            p
        };
        for (bytes, rule_is, says) in [
            (
                good[..good.len() - 1].to_vec(),
                Rule::M27,
                "not one complete zstd frame",
            ),
            (cat(&[&good, &good]), Rule::M27, "not a padding frame"),
            (cat(&[&good, b"x"]), Rule::M27, "not a padding frame"),
            (cat(&[&good, &[0; 8]]), Rule::M27, "not a padding frame"),
            (cat(&[&good, &pad(4, 1)]), Rule::M27, "non-zero byte"),
            (
                cat(&[&good, &pad(4, 0), &pad(0, 0)]),
                Rule::M27,
                "declares 4 bytes",
            ),
            (
                cat(&[&pad(0, 0), &good]),
                Rule::M27,
                "does not start with a zstd frame",
            ),
            (
                zstd::encode_all(&b"{\"ferry_bundle\":2"[..], 3).unwrap(),
                Rule::M1,
                "not valid JSON",
            ),
            (
                zstd::encode_all(&b"[2]"[..], 3).unwrap(),
                Rule::M1,
                "not a JSON object",
            ),
            (
                zstd::encode_all(&m.to_json()[..], 3).unwrap()[..8]
                    .iter()
                    .chain(&[0xff; 20])
                    .copied()
                    .collect(),
                Rule::M27,
                "",
            ),
            (
                zstd::encode_all(&with_destination(None).to_json()[..], 3).unwrap(),
                Rule::M2,
                "version 1 is stored as one zstd frame",
            ),
            (
                zstd::encode_all(&[&m.to_json()[..], b" "].concat()[..], 3).unwrap(),
                Rule::M18,
                "canonical form",
            ),
        ] {
            let e = rule(&bytes);
            assert_eq!(e.rule, rule_is, "{says}: {e}");
            assert!(e.detail.contains(says), "{says}: {e}");
        }
        // Plain JSON of version 2 is refused too: version 2 is stored compressed.
        let e = rule(&m.to_json());
        assert_eq!(e.rule, Rule::M2, "{e}");
        assert!(e.detail.contains("stored as plain JSON"), "{e}");
    }

    /// A zstd bomb: the decompressed text is bounded (M27) while it is read, not after
    /// (here at 1 MiB, as `parse` bounds at [`MAX_JSON`], 1 GiB: the same code, cheaper).
    #[test]
    fn a_version_2_manifest_decompresses_to_at_most_its_bound() {
        let limit = 1 << 20;
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut enc, b"{\"ferry_bundle\":2").unwrap();
        std::io::Write::write_all(&mut enc, &vec![b' '; 4 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let e = BundleManifest::parse_compressed(&bomb, limit).unwrap_err();
        assert_eq!(e.rule, Rule::M27, "{e}");
        assert!(e.detail.contains("more than 1048576 bytes"), "{e}");
        assert_eq!(MAX_JSON, 1 << 30);
    }

    #[test]
    fn paths_must_be_plain_relative() {
        for bad in ["", "/a", "a//b", "a/../b", "./a", "a/.", "a\0b"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_relative_path("v2/a/blobs/sha256:00").is_ok());
    }
}

/// Where parsing a large manifest spends its time: `FERRY_MANIFEST=FILE cargo test --release
/// -p format-spec --lib -- --ignored parse_timing --nocapture`.
#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn parse_timing() {
        let Some(path) = std::env::var_os("FERRY_MANIFEST") else {
            panic!("set FERRY_MANIFEST to a stored manifest");
        };
        let bytes = std::fs::read(path).unwrap();
        let t = Instant::now();
        let frame = stored::frame(&bytes).unwrap();
        let mut text = stored::Decompressed::new(frame, MAX_JSON).unwrap();
        std::io::copy(&mut text, &mut std::io::sink()).unwrap();
        eprintln!("decompress+hash {:?}", t.elapsed());
        let t = Instant::now();
        let text = stored::Decompressed::new(frame, MAX_JSON).unwrap();
        let _ = serde_json::from_reader::<_, serde::de::IgnoredAny>(text).unwrap();
        eprintln!("peek pass {:?}", t.elapsed());
        let t = Instant::now();
        let m: BundleManifest =
            serde_json::from_reader(stored::Decompressed::new(frame, MAX_JSON).unwrap()).unwrap();
        eprintln!("typed pass {:?}", t.elapsed());
        let t = Instant::now();
        let json = json_of(&bytes).unwrap();
        let _: BundleManifest = serde_json::from_slice(&json).unwrap();
        eprintln!("decompress to a Vec + from_slice {:?}", t.elapsed());
        let t = Instant::now();
        m.validate().unwrap();
        eprintln!("validate {:?}", t.elapsed());
        let t = Instant::now();
        let _ = m.json_digest();
        eprintln!("json_digest {:?}", t.elapsed());
        let t = Instant::now();
        BundleManifest::parse(&bytes).unwrap();
        eprintln!("parse {:?}", t.elapsed());
    }
}
