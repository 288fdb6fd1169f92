//! The closure of an image: its manifest, then depth first each child manifest, config and
//! layer it references, each once. Shared by every layout reader, which only says where a
//! digest's file lives (a [`Store`]) and which manifests are images.
//!
//! Manifests are read, checked against their digest and parsed; other blobs are only
//! located and their size compared with the descriptor (ferry-pack re-hashes them).
//! A blob that is absent is recorded, not fatal, so that one error can list every gap.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use oci::Digest;

use crate::digest;
use crate::error::{MirrorError, MissingIn};
use crate::manifest::{self, Manifest};
use crate::model::{BlobFile, Image, MediaType, TreeEntry};
use crate::sparse::Platforms;

/// Where one scope (an oc repository, an OCI layout, the registry blob store, a `dir:`)
/// keeps the files for a digest. `hex` is always 64 lowercase hex characters.
pub(crate) trait Store {
    fn manifest_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError>;
    fn blob_file(&self, hex: &str) -> Result<Option<(PathBuf, u64)>, MirrorError>;
}

/// `path` with its size if it is a regular file (following symlinks, which the tree walk
/// has already confined to the root); `None` if absent.
pub(crate) fn existing_file(path: PathBuf) -> Result<Option<(PathBuf, u64)>, MirrorError> {
    match fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Some((path, m.len()))),
        Ok(_) => Err(MirrorError::malformed(path, "expected a regular file")),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(MirrorError::io(path, e)),
    }
}

/// Reads a small file (manifest, index.json, link) with a size cap, so hostile input
/// cannot make us allocate without bound.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, MirrorError> {
    let file = File::open(path).map_err(|e| MirrorError::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| MirrorError::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(MirrorError::malformed(
            path,
            format!("larger than {cap} bytes; not a manifest or metadata file"),
        ));
    }
    Ok(bytes)
}

/// What only the reading needs of an image being collected (the rest is its [`Image`],
/// built in place: no second copy of every image when the reading ends).
struct Draft {
    /// Original references, sorted, each once.
    sources: Vec<String>,
    /// What few images have, boxed so that the others pay a pointer for it.
    rare: Option<Box<Rare>>,
    /// The next image whose digest starts with the same 8 bytes ([`NONE`] ends the chain).
    next: u32,
    /// Whether `platforms` left a child out (only then is the image sparse).
    left_out: bool,
    /// Named, but its top-level manifest is absent (recorded as missing, so the reading
    /// fails): kept only for its tags, which later descriptors must not contradict.
    absent: bool,
}

#[derive(Default)]
struct Rare {
    /// For a sparse index: the platforms whose children it takes (`None`: every child).
    platforms: Option<Platforms>,
    /// The file that named the image's destination, when one did.
    destination_at: Option<Box<Path>>,
    /// The file that named the catalog's packages, when one did.
    packages_at: Option<Box<Path>>,
}

impl Draft {
    fn platforms(&self) -> Option<&Platforms> {
        self.rare.as_ref()?.platforms.as_ref()
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }
}

/// Where (repository, tag) is looked up: a hash of both (a string pair per tag was the
/// largest transient term of a read), the image holding the tag saying whether it is them.
fn tag_hash(repository: &str, tag: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (repository, tag).hash(&mut h);
    h.finish()
}

/// The end of a chain of [`Draft::next`].
const NONE: u32 = u32::MAX;

/// The first 8 bytes of a digest: what the images are found by (digests are uniform, so
/// the chains are one image long but for images of one digest in several repositories).
fn prefix(d: &Digest) -> u64 {
    let b = d.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Inserts `value` into sorted, deduplicated `list`.
fn insert_sorted(list: &mut Vec<String>, value: String) {
    if let Err(at) = list.binary_search(&value) {
        // Exactly one more: most lists hold one name, and growth would reserve four.
        list.reserve_exact(1);
        list.insert(at, value);
    }
}

/// What the closure of one image came to.
struct Closure {
    blobs: Vec<Digest>,
    media_type: MediaType,
    /// A sparse index left children out.
    left_out: bool,
}

/// What a layout reader has found so far.
#[derive(Default)]
pub(crate) struct Collector<'t> {
    /// The mirror's root and its tree (sorted by path), when walked: a blob file found
    /// there is kept as its entry's number, not as a path of its own.
    tree: Option<(&'t Path, &'t [TreeEntry])>,
    blobs: BTreeMap<Digest, BlobFile>,
    manifest_types: BTreeMap<Digest, MediaType>,
    /// The distinct media types met, each allocated once and shared.
    media_types: BTreeSet<MediaType>,
    /// Indexes already read and verified, by file.
    parsed: HashMap<PathBuf, (Rc<Manifest>, u64)>,
    /// Missing digests by the file that references them.
    missing: BTreeMap<PathBuf, (String, BTreeSet<Digest>)>,
    /// The images in the order added, and beside each what only the reading needs.
    images: Vec<Image>,
    drafts: Vec<Draft>,
    /// The first image of each digest prefix ([`prefix`]; the rest chained by `next`).
    by_prefix: HashMap<u64, u32>,
    /// (repository, tag) → the image holding it, by [`tag_hash`]; a tag whose hash another
    /// tag has already is in `tag_collisions`.
    tags: HashMap<u64, u32>,
    tag_collisions: BTreeMap<(String, String), u32>,
}

enum Want {
    Manifest,
    Blob { foreign: bool },
}

struct Item {
    digest: Digest,
    size: Option<u64>,
    want: Want,
    referrer: PathBuf,
}

impl<'t> Collector<'t> {
    /// A collector for the mirror at `root` whose walked tree is `tree`.
    pub fn with_tree(root: &'t Path, tree: &'t [TreeEntry]) -> Collector<'t> {
        Collector {
            tree: Some((root, tree)),
            ..Collector::default()
        }
    }

    /// Blob file `path` of `size` bytes: the tree entry of that path, if there is one.
    fn blob_file(&self, path: PathBuf, size: u64) -> BlobFile {
        let entry = self.tree.and_then(|(root, tree)| {
            let rel = path.strip_prefix(root).ok()?.to_str()?;
            tree.binary_search_by(|e| e.path().cmp(rel)).ok()
        });
        match entry {
            Some(i) => BlobFile::in_tree(i, size),
            None => BlobFile::at_path(path, size),
        }
    }

    /// Where image `repository` `digest` is in `images`, if it was added.
    fn find(&self, repository: &str, digest: &Digest) -> Option<usize> {
        let mut at = *self.by_prefix.get(&prefix(digest))?;
        while at != NONE {
            let image = &self.images[at as usize];
            if image.digest == *digest && image.repository == repository {
                return Some(at as usize);
            }
            at = self.drafts[at as usize].next;
        }
        None
    }

    /// Adds image `repository` `digest` (absent so far), returning where it is.
    fn insert(&mut self, repository: &str, digest: Digest) -> usize {
        let at = self.images.len();
        let slot = self.by_prefix.entry(prefix(&digest)).or_insert(NONE);
        let next = std::mem::replace(slot, at as u32);
        self.images.push(Image {
            repository: repository.to_string(),
            tags: Vec::new(),
            digest,
            media_type: MediaType::from(""),
            source: None,
            blobs: Vec::new(),
            platforms: None,
            destination: None,
            packages: None,
        });
        self.drafts.push(Draft {
            sources: Vec::new(),
            rare: None,
            next,
            left_out: false,
            absent: false,
        });
        at
    }

    /// The image holding `repository:tag`, if one does.
    fn tagged_at(&self, repository: &str, tag: &str) -> Option<usize> {
        if let Some(&at) = self.tags.get(&tag_hash(repository, tag)) {
            let image = &self.images[at as usize];
            if image.repository == repository
                && image.tags.binary_search_by(|t| t.as_str().cmp(tag)).is_ok()
            {
                return Some(at as usize);
            }
        }
        self.tag_collisions
            .get(&(repository.to_string(), tag.to_string()))
            .map(|&at| at as usize)
    }

    /// Gives image `at` `tag` (which no image has yet).
    fn add_tag(&mut self, at: usize, tag: &str) {
        let repository = &self.images[at].repository;
        match self.tags.entry(tag_hash(repository, tag)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(at as u32);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.tag_collisions
                    .insert((repository.clone(), tag.to_string()), at as u32);
            }
        }
        insert_sorted(&mut self.images[at].tags, tag.to_string());
    }

    /// Where image `repository` `digest` is, if it was added and is there.
    fn find_present(&self, repository: &str, digest: &Digest) -> Option<usize> {
        self.find(repository, digest)
            .filter(|&at| !self.drafts[at].absent)
    }

    /// Reads, verifies and parses the manifest stored at `path`, which must hash to `digest`.
    pub fn manifest_at(
        &mut self,
        path: &Path,
        digest: &Digest,
    ) -> Result<Rc<Manifest>, MirrorError> {
        Ok(self.read_manifest(path, digest)?.0)
    }

    /// `media_type` as a shared [`MediaType`], allocated the first time it is met.
    fn intern(&mut self, media_type: &str) -> MediaType {
        if let Some(t) = self.media_types.get(media_type) {
            return Arc::clone(t);
        }
        let t: MediaType = Arc::from(media_type);
        self.media_types.insert(Arc::clone(&t));
        t
    }

    fn read_manifest(
        &mut self,
        path: &Path,
        digest: &Digest,
    ) -> Result<(Rc<Manifest>, u64), MirrorError> {
        if let Some((m, len)) = self.parsed.get(path) {
            return Ok((Rc::clone(m), *len));
        }
        let bytes = read_capped(path, manifest::MAX_MANIFEST_SIZE)?;
        let actual = digest::sha256_bytes(&bytes);
        if actual != *digest {
            return Err(MirrorError::DigestMismatch {
                path: path.to_path_buf(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let m = Rc::new(manifest::parse(path, &bytes)?);
        let len = bytes.len() as u64;
        if !self.blobs.contains_key(digest) {
            let file = self.blob_file(path.to_path_buf(), len);
            self.blobs.insert(*digest, file);
        }
        let media_type = self.intern(m.media_type());
        self.manifest_types.insert(*digest, media_type);
        // Only indexes are kept: they are what is read again (their children listed
        // before their closure is walked, children shared between indexes). An image
        // manifest is read once per image, and keeping every one parsed for the whole
        // scope was the largest term of pack's peak (~1 KiB per image).
        if m.is_index() {
            self.parsed.insert(path.to_path_buf(), (Rc::clone(&m), len));
        }
        Ok((m, len))
    }

    pub fn record_missing(&mut self, referrer: &Path, repository: &str, digest: Digest) {
        self.missing
            .entry(referrer.to_path_buf())
            .or_insert_with(|| (repository.to_string(), BTreeSet::new()))
            .1
            .insert(digest);
    }

    /// Digests of the child manifests of every index among `digests` in `store`
    /// (absent ones are skipped here; the closure reports them).
    pub fn index_children(
        &mut self,
        store: &dyn Store,
        digests: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, MirrorError> {
        let mut children = BTreeSet::new();
        for d in digests {
            let Ok(parsed) = Digest::parse(d) else {
                continue;
            };
            let Some((path, _)) = store.manifest_file(&d[digest::SHA256_PREFIX.len()..])? else {
                continue;
            };
            let m = self.manifest_at(&path, &parsed)?;
            if m.is_index() {
                children.extend(m.manifests.iter().map(|c| c.digest.to_string()));
            }
        }
        Ok(children)
    }

    /// The closure of `top` in `store`: `None` if `top` itself is absent (recorded as
    /// missing against `referrer`). With `sparse`, a top-level index takes only the
    /// children of those platforms (`sparse.rs`).
    fn closure(
        &mut self,
        store: &dyn Store,
        repository: &str,
        top: Digest,
        top_size: Option<u64>,
        referrer: &Path,
        sparse: Option<&Platforms>,
    ) -> Result<Option<Closure>, MirrorError> {
        let mut stack = vec![Item {
            digest: top,
            size: top_size,
            want: Want::Manifest,
            referrer: referrer.to_path_buf(),
        }];
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut top_type = None;
        let mut left_out = false;
        let mut hex = [0u8; 64];
        while let Some(item) = stack.pop() {
            if !seen.insert(item.digest) {
                continue;
            }
            let hex = digest::hex_in(&item.digest, &mut hex);
            match item.want {
                Want::Manifest => {
                    let Some((path, _)) = store.manifest_file(hex)? else {
                        self.record_missing(&item.referrer, repository, item.digest);
                        continue;
                    };
                    let (m, len) = self.read_manifest(&path, &item.digest)?;
                    check_size(&path, &item, len)?;
                    let is_top = top_type.is_none();
                    if is_top {
                        top_type = Some(self.intern(m.media_type()));
                    }
                    out.push(item.digest);
                    // Only the top-level index is sparse: a child index kept is kept whole.
                    let keep = match sparse.filter(|_| is_top && m.is_index()) {
                        Some(p) => {
                            let image = format!("{repository}@{top}");
                            p.check_listed(&m.manifests, referrer, &image)?;
                            Some(p)
                        }
                        None => None,
                    };
                    let mut next = Vec::new();
                    for c in &m.manifests {
                        if keep.is_some_and(|p| !p.keeps(c)) {
                            left_out = true;
                            continue;
                        }
                        next.push(Item {
                            digest: c.digest,
                            size: c.size,
                            want: Want::Manifest,
                            referrer: path.clone(),
                        });
                    }
                    for b in m.config.iter().chain(m.layers.iter()) {
                        next.push(Item {
                            digest: b.digest,
                            size: b.size,
                            want: Want::Blob {
                                foreign: b.is_foreign(),
                            },
                            referrer: path.clone(),
                        });
                    }
                    stack.extend(next.into_iter().rev());
                }
                Want::Blob { foreign } => match store.blob_file(hex)? {
                    // Non-distributable layers are fetched from their URLs; mirrors omit them.
                    None if foreign => {}
                    None => self.record_missing(&item.referrer, repository, item.digest),
                    Some((path, len)) => {
                        check_size(&path, &item, len)?;
                        if !self.blobs.contains_key(&item.digest) {
                            let file = self.blob_file(path, len);
                            self.blobs.insert(item.digest, file);
                        }
                        out.push(item.digest);
                    }
                },
            }
        }
        // Kept for the image's life: without the slack of its growth.
        out.shrink_to_fit();
        Ok(top_type.map(|media_type| Closure {
            blobs: out,
            media_type,
            left_out,
        }))
    }

    /// Adds `repository` `digest` as an image (with `tag`, if any). `referrer` is the file
    /// that names it (tag symlink, link file, index.json, …); `size` the size it declares.
    #[allow(clippy::too_many_arguments)]
    pub fn add_image(
        &mut self,
        store: &dyn Store,
        repository: &str,
        tag: Option<&str>,
        digest: &str,
        size: Option<u64>,
        source: Option<String>,
        referrer: &Path,
    ) -> Result<(), MirrorError> {
        self.add_sparse_image(store, repository, tag, digest, size, source, referrer, None)
    }

    /// [`Collector::add_image`] for a descriptor that may be a sparse index: `sparse` is
    /// its `dev.ferry.platforms` (`None`: every child is needed). An image named by several
    /// descriptors needs what any of them does: every child if one is not sparse, else the
    /// children of all their platforms.
    #[allow(clippy::too_many_arguments)]
    pub fn add_sparse_image(
        &mut self,
        store: &dyn Store,
        repository: &str,
        tag: Option<&str>,
        digest: &str,
        size: Option<u64>,
        source: Option<String>,
        referrer: &Path,
        sparse: Option<Platforms>,
    ) -> Result<(), MirrorError> {
        let digest = digest::checked(referrer, digest)?;
        if repository.is_empty() {
            return Err(MirrorError::malformed(
                referrer,
                "names an image without a repository",
            ));
        }
        if let Some(tag) = tag {
            if let Some(at) = self.tagged_at(repository, tag) {
                let first = self.images[at].digest;
                if first != digest {
                    return Err(MirrorError::DuplicateTag {
                        path: referrer.to_path_buf(),
                        repository: repository.to_string(),
                        tag: tag.to_string(),
                        first: first.to_string(),
                        second: digest.to_string(),
                    });
                }
            }
        }
        let found = self.find(repository, &digest);
        // The platforms the image needs now, when that differs from what its closure was
        // built for (or it has none yet, or its top-level manifest was absent).
        let wanted = match found.map(|at| &self.drafts[at]).filter(|d| !d.absent) {
            None => Some(sparse),
            Some(d) => match (d.platforms(), sparse) {
                (None, _) => None,
                (Some(_), None) => Some(None),
                (Some(had), Some(new)) => {
                    let both = had.union(&new);
                    (both != *had).then_some(Some(both))
                }
            },
        };
        if let Some(platforms) = wanted {
            let closure = self.closure(
                store,
                repository,
                digest,
                size,
                referrer,
                platforms.as_ref(),
            )?;
            let at = found.unwrap_or_else(|| self.insert(repository, digest));
            match closure {
                // Recorded as missing: the reading fails, but the tag stays taken.
                None => self.drafts[at].absent = true,
                Some(closure) => {
                    let image = &mut self.images[at];
                    image.media_type = closure.media_type;
                    image.blobs = closure.blobs;
                    let draft = &mut self.drafts[at];
                    draft.absent = false;
                    draft.left_out = closure.left_out;
                    if platforms.is_some() || draft.rare.is_some() {
                        draft.rare().platforms = platforms;
                    }
                }
            }
        }
        if let Some(at) = self.find(repository, &digest) {
            if let Some(tag) = tag {
                if self.tagged_at(repository, tag).is_none() {
                    self.add_tag(at, tag);
                }
            }
            if !self.drafts[at].absent {
                if let Some(source) = source {
                    insert_sorted(&mut self.drafts[at].sources, source);
                }
            }
        }
        Ok(())
    }

    /// Records where image `repository` `digest` (added before) goes at the destination,
    /// as a descriptor at `referrer` named it. Two descriptors of one image naming two
    /// destinations are ambiguous: refused, as a tag naming two images is. A descriptor
    /// that names none leaves the one another named.
    pub fn set_destination(
        &mut self,
        repository: &str,
        digest: &str,
        destination: String,
        referrer: &Path,
    ) -> Result<(), MirrorError> {
        // No image has a digest that does not parse: nothing to record.
        let Ok(parsed) = Digest::parse(digest) else {
            return Ok(());
        };
        let Some(at) = self.find_present(repository, &parsed) else {
            return Ok(());
        };
        set_once(
            &mut self.images[at].destination,
            &mut self.drafts[at].rare().destination_at,
            destination,
            referrer,
            |first, at, again| {
                format!(
                    "{repository}@{digest}: annotation {} names both {first:?} (in {at}) and {again:?}",
                    oci::annotation::FERRY_TARGET_REPOSITORY,
                )
            },
        )
    }

    /// Records the packages catalog image `repository` `digest` (added before) holds, as a
    /// descriptor at `referrer` named them. Two descriptors of one image naming other
    /// packages are ambiguous: refused, as two destinations are.
    pub fn set_packages(
        &mut self,
        repository: &str,
        digest: &str,
        packages: Vec<String>,
        referrer: &Path,
    ) -> Result<(), MirrorError> {
        // No image has a digest that does not parse: nothing to record.
        let Ok(parsed) = Digest::parse(digest) else {
            return Ok(());
        };
        let Some(at) = self.find_present(repository, &parsed) else {
            return Ok(());
        };
        set_once(
            &mut self.images[at].packages,
            &mut self.drafts[at].rare().packages_at,
            packages,
            referrer,
            |first, at, again| {
                format!(
                    "{repository}@{digest}: annotation {} names both {:?} (in {at}) and {:?}",
                    oci::annotation::FERRY_CATALOG_PACKAGES,
                    first.join(","),
                    again.join(","),
                )
            },
        )
    }

    /// Forgets parsed manifests once a scope (repository, layout, `dir:`) is done, so
    /// memory follows the largest scope rather than the whole mirror.
    pub fn end_scope(&mut self) {
        self.parsed.clear();
    }

    /// The digest `repository:tag` names, if that tag was added.
    pub fn tagged(&self, repository: &str, tag: &str) -> Option<Digest> {
        self.tagged_at(repository, tag)
            .map(|at| self.images[at].digest)
    }

    /// Records `source` as an original reference of image `repository` `digest`, if that
    /// image exists. Returns whether it does.
    pub fn add_source(&mut self, repository: &str, digest: &str, source: String) -> bool {
        let Ok(digest) = Digest::parse(digest) else {
            return false;
        };
        match self.find_present(repository, &digest) {
            Some(at) => {
                insert_sorted(&mut self.drafts[at].sources, source);
                true
            }
            None => false,
        }
    }

    /// Fails with every missing blob, or returns blobs, manifest types and images sorted
    /// by (repository, digest).
    #[allow(clippy::type_complexity)]
    pub fn finish(
        mut self,
    ) -> Result<
        (
            BTreeMap<Digest, BlobFile>,
            BTreeMap<Digest, MediaType>,
            Vec<Image>,
        ),
        MirrorError,
    > {
        if !self.missing.is_empty() {
            return Err(MirrorError::MissingBlobs {
                missing: self
                    .missing
                    .into_iter()
                    .map(|(manifest, (repository, missing))| MissingIn {
                        manifest,
                        repository,
                        missing: missing.into_iter().collect(),
                    })
                    .collect(),
            });
        }
        // What the reading kept beside each image goes before the images are sorted.
        drop(self.by_prefix);
        drop(self.tags);
        drop(self.tag_collisions);
        drop(self.parsed);
        for (image, d) in self.images.iter_mut().zip(std::mem::take(&mut self.drafts)) {
            // One source per image: the one pinned to this digest, else the first.
            let pinned = format!("@{}", image.digest);
            let at = d.sources.iter().position(|s| s.ends_with(&pinned));
            let mut sources = d.sources;
            image.source = match at {
                Some(at) => Some(sources.swap_remove(at)),
                None if !sources.is_empty() => Some(sources.swap_remove(0)),
                None => None,
            };
            let platforms = d.rare.and_then(|r| r.platforms);
            image.platforms = platforms.filter(|_| d.left_out).map(|p| p.names());
        }
        // Each (repository, digest) once: an unstable sort gives the one order, in place.
        let mut images = self.images;
        images.sort_unstable_by(|a, b| (&a.repository, &a.digest).cmp(&(&b.repository, &b.digest)));
        images.shrink_to_fit();
        Ok((self.blobs, self.manifest_types, images))
    }
}

fn check_size(path: &Path, item: &Item, actual: u64) -> Result<(), MirrorError> {
    match item.size {
        Some(expected) if expected != actual => Err(MirrorError::SizeMismatch {
            path: path.to_path_buf(),
            manifest: item.referrer.clone(),
            digest: item.digest.to_string(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// Sets a value that descriptors of one image must agree on (where it goes, the packages
/// of a catalog), remembering which file set it first: the same value again is fine,
/// another is refused with `message(first, where first, this one)`, naming `referrer`.
fn set_once<T: PartialEq>(
    slot: &mut Option<T>,
    set_at: &mut Option<Box<Path>>,
    value: T,
    referrer: &Path,
    message: impl FnOnce(&T, std::path::Display<'_>, &T) -> String,
) -> Result<(), MirrorError> {
    match (&*slot, &*set_at) {
        (Some(first), Some(at)) if *first != value => Err(MirrorError::malformed(
            referrer,
            message(first, at.display(), &value),
        )),
        (Some(_), _) => Ok(()),
        (None, _) => {
            *slot = Some(value);
            *set_at = Some(referrer.into());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob file the tree lists is kept as that entry (no path per blob); one it does not
    /// list (reached through a link the walk does not follow) keeps its path.
    #[test]
    fn blob_files_are_tree_entries_when_the_tree_has_them() {
        let root = Path::new("/m");
        let tree = [
            TreeEntry::Dir {
                path: "blobs".into(),
            },
            TreeEntry::File {
                path: "blobs/a".into(),
                digest: Digest::of(b"a"),
                size: 1,
                mode: 0o644,
                source: None,
            },
            TreeEntry::File {
                path: "blobs/b".into(),
                digest: Digest::of(b"b"),
                size: 1,
                mode: 0o644,
                source: Some(Path::new("/elsewhere/b").into()),
            },
        ];
        let c = Collector::with_tree(root, &tree);
        let a = c.blob_file(PathBuf::from("/m/blobs/a"), 1);
        assert_eq!((a.own_path(), a.size), (None, 1));
        let b = c.blob_file(PathBuf::from("/m/blobs/b"), 1);
        assert_eq!(b.own_path(), None);
        let other = c.blob_file(PathBuf::from("/m/linked/blobs/a"), 1);
        assert_eq!(other.own_path(), Some(Path::new("/m/linked/blobs/a")));
        let outside = c.blob_file(PathBuf::from("/n/blobs/a"), 1);
        assert_eq!(outside.own_path(), Some(Path::new("/n/blobs/a")));

        let m = crate::Mirror {
            root: root.into(),
            kind: crate::LayoutKind::Oci,
            blobs: [
                (Digest::of(b"a"), a),
                (Digest::of(b"b"), b),
                (Digest::of(b"x"), other),
            ]
            .into(),
            manifest_types: BTreeMap::new(),
            images: Vec::new(),
            tree: tree.to_vec(),
            skipped: Vec::new(),
            catalogs: Vec::new(),
            unresolved_catalogs: Vec::new(),
        };
        let path = |d: &[u8]| m.blob_path(&m.blobs[&Digest::of(d)]).into_owned();
        assert_eq!(path(b"a"), Path::new("/m/blobs/a"));
        // An entry with a source of its own is read from there.
        assert_eq!(path(b"b"), Path::new("/elsewhere/b"));
        assert_eq!(path(b"x"), Path::new("/m/linked/blobs/a"));
    }

    /// Tags are found by a hash of (repository, tag), checked against the image holding
    /// them; a tag whose hash another took is still found, and the other as well.
    #[test]
    fn tags_whose_hashes_collide_are_both_found() {
        let mut c = Collector::default();
        let (da, db) = (Digest::of(b"a"), Digest::of(b"b"));
        let a = c.insert("r", da);
        c.add_tag(a, "t1");
        let b = c.insert("r", db);
        // As if r:t2 hashed where an image not holding it is.
        c.tags.insert(tag_hash("r", "t2"), a as u32);
        c.add_tag(b, "t2");
        assert_eq!(c.tag_collisions.len(), 1);
        assert_eq!(c.tagged("r", "t1"), Some(da));
        assert_eq!(c.tagged("r", "t2"), Some(db));
        assert_eq!(c.tagged("r", "t3"), None);
        assert_eq!(c.tagged("s", "t1"), None);
        assert_eq!(c.find("r", &db), Some(b));
        assert_eq!(c.find("s", &db), None);
        // Images of one digest in two repositories are both found.
        let b2 = c.insert("s", db);
        assert_eq!((c.find("r", &db), c.find("s", &db)), (Some(b), Some(b2)));
    }
}
