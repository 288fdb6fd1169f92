//! What ferry's pull takes from an image set: `mirror.additionalImages` less
//! `mirror.blockedImages`, and the catalogs of `mirror.operators` (read, selected and
//! rebuilt by `pull`; their images are known only then). Every section it cannot pull is
//! refused by name, never skipped: `platform` (release payloads), `helm`, `samples`.

use std::collections::HashMap;
use std::fmt;

use crate::blocked::BlockList;
use crate::error::ImageSetError;
use crate::load::ImageSet;
use crate::locate::Seg;
use crate::platform::Platform;
use crate::schema::{ImageName, ImageSource, Operator};

/// The images to pull, in file order, duplicates merged.
#[derive(Debug)]
pub struct PullSet {
    pub images: Vec<PullImage>,
    /// `mirror.operators[]`: the catalogs, each to be read, filtered and rebuilt; their
    /// bundles' and related images join `images` once the catalog is read (`pull`).
    pub operators: Vec<PullOperator>,
    /// The `blockedImages` patterns, for the images a catalog names (known only once it
    /// is read).
    pub block: BlockList,
    /// Images the `blockedImages` patterns removed, with the pattern that did.
    pub blocked: Vec<(ImageName, String)>,
    /// Things the user should hear about (ignored oc-mirror settings, merged duplicates).
    pub notes: Vec<Note>,
}

/// One `additionalImages[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullImage {
    pub name: ImageName,
    /// `targetRepo`: the repository path to use at the destination instead of the source's.
    pub target_repo: Option<String>,
    /// `targetTag`: the tag at the destination.
    pub target_tag: Option<String>,
    /// The entry's own `platforms` (empty: not restricted by the file).
    pub platforms: Vec<Platform>,
    /// Its position in `additionalImages` ([`ImageSet::image_at`] gives the line and
    /// column: found only when a message needs it, since finding one walks the file again).
    pub index: usize,
}

impl PullImage {
    /// The platforms to keep: the entry's own list when it has one (the more specific
    /// setting wins), else `--platform`'s; empty keeps every child of an index.
    pub fn platforms_or<'a>(&'a self, cli: &'a [Platform]) -> &'a [Platform] {
        own_or(&self.platforms, cli)
    }
}

/// One `mirror.operators[]` entry.
#[derive(Debug, Clone)]
pub struct PullOperator {
    /// The catalog (index) image.
    pub catalog: ImageName,
    /// `targetCatalog`: the repository path of the rebuilt catalog at the destination.
    pub target_catalog: Option<String>,
    /// `targetTag`: its tag at the destination.
    pub target_tag: Option<String>,
    /// The entry's own `platforms` (empty: not restricted by the file).
    pub platforms: Vec<Platform>,
    /// The entry as written, for the selection (`catalog::Filter::from_operator`).
    pub config: Operator,
    /// Its position in `operators` ([`ImageSet::operator_at`]).
    pub index: usize,
}

impl PullOperator {
    /// As [`PullImage::platforms_or`].
    pub fn platforms_or<'a>(&'a self, cli: &'a [Platform]) -> &'a [Platform] {
        own_or(&self.platforms, cli)
    }
}

/// The first malformed `platforms[]` item of the entry at `path`: where, and why.
fn platform_problem<'a>(
    path: &[Seg<'a>],
    platforms: &[Platform],
) -> Option<(Vec<Seg<'a>>, String)> {
    platforms.iter().enumerate().find_map(|(j, p)| {
        let (field, why) = p.problem()?;
        let at = [
            path,
            &[Seg::Key("platforms"), Seg::Index(j), Seg::Key(field)],
        ]
        .concat();
        Some((at, why))
    })
}

/// An entry's own platforms when it has some, else the command line's.
fn own_or<'a>(own: &'a [Platform], cli: &'a [Platform]) -> &'a [Platform] {
    if own.is_empty() {
        cli
    } else {
        own
    }
}

/// A remark about the file, shown as `file:line:col: note: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: std::path::PathBuf,
    pub at: Option<(usize, usize)>,
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((l, c)) => write!(f, "{}:{l}:{c}: note: {}", self.file.display(), self.text),
            None => write!(f, "{}: note: {}", self.file.display(), self.text),
        }
    }
}

const AI: &str = "additionalImages";
const OPS: &str = "operators";

/// Where an entry puts its image: the source, `targetRepo`, `targetTag`.
type PlaceKey = (oci::Reference, Option<String>, Option<String>);

impl ImageSet {
    /// The 1-based line and column of `mirror.additionalImages[index]`.
    pub fn image_at(&self, index: usize) -> Option<(usize, usize)> {
        self.locate(&[Seg::Key("mirror"), Seg::Key(AI), Seg::Index(index)])
    }

    /// The 1-based line and column of `mirror.operators[index]`.
    pub fn operator_at(&self, index: usize) -> Option<(usize, usize)> {
        self.locate(&[Seg::Key("mirror"), Seg::Key(OPS), Seg::Index(index)])
    }

    /// An error about `mirror.operators[index]` (then `field`, e.g. `["packages", "0"]`
    /// as [`Seg`]s), found once the catalog is read: `file:line:col: path: why`.
    pub fn operator_error(&self, index: usize, field: &[Seg], why: &str) -> ImageSetError {
        let path = [
            &[Seg::Key("mirror"), Seg::Key(OPS), Seg::Index(index)][..],
            field,
        ]
        .concat();
        let (at, detail) = self.finding(&path, why);
        ImageSetError::Invalid {
            file: self.file.clone(),
            at,
            detail,
        }
    }

    /// Checks that everything the file asks for is something ferry pulls today, and returns
    /// it. Errors name the file, line, column and field.
    pub fn validate_for_pull(&self) -> Result<PullSet, ImageSetError> {
        let m = &self.config.mirror;
        let unsupported = |key: &'static str, why: &str| {
            let (at, detail) = self.finding(&[Seg::Key("mirror"), Seg::Key(key)], why);
            ImageSetError::Unsupported {
                file: self.file.clone(),
                at,
                detail,
            }
        };
        if m.platform.is_set() {
            return Err(unsupported(
                "platform",
                "OpenShift release payloads are not supported by ferry: mirror them with oc-mirror, or list the images under additionalImages",
            ));
        }
        if m.helm.is_set() {
            return Err(unsupported(
                "helm",
                "Helm charts are not supported by ferry: list the charts' images under additionalImages",
            ));
        }
        if !m.samples.is_empty() {
            return Err(unsupported(
                "samples",
                "samples are not supported (oc-mirror does not implement them either)",
            ));
        }
        let invalid = |path: &[Seg], why: &str| {
            let (at, detail) = self.finding(path, why);
            ImageSetError::Invalid {
                file: self.file.clone(),
                at,
                detail,
            }
        };
        let mut notes = Vec::new();
        let mut note = |path: &[Seg], text: String| {
            notes.push(Note {
                file: self.file.clone(),
                at: self.locate(path),
                text,
            })
        };
        if let Some(size) = self.config.archive_size {
            note(
                &[Seg::Key("archiveSize")],
                format!("archiveSize: {size} is oc-mirror's archive segment size; ferry ignores it and splits the bundle by --volume-size"),
            );
        }
        if m.additional_images.is_empty() && m.operators.is_empty() {
            // At the empty list when the file has one (`additionalImages: []`), else at `mirror`.
            let list = [Seg::Key("mirror"), Seg::Key(AI)];
            let at: &[Seg] = if self.locate(&list).is_some() {
                &list
            } else {
                &list[..1]
            };
            return Err(invalid(
                at,
                "no images to pull: list them under mirror.additionalImages (- name: host/repository:tag) or a catalog under mirror.operators (- catalog: host/repository:tag)",
            ));
        }
        let blocklist = BlockList::new(&m.blocked_images);
        let mut images: Vec<PullImage> = Vec::new();
        let mut seen: HashMap<PlaceKey, usize> = HashMap::new();
        let mut blocked = Vec::new();
        for (i, entry) in m.additional_images.iter().enumerate() {
            let path = [Seg::Key("mirror"), Seg::Key(AI), Seg::Index(i)];
            if let Some((at, why)) = platform_problem(&path, &entry.platforms) {
                return Err(invalid(&at, &why));
            }
            if let Some(p) = blocklist.blocking(&entry.name) {
                blocked.push((entry.name.clone(), p.as_str().to_string()));
                continue;
            }
            let r = &entry.name.reference;
            if r.tag().is_some() && r.digest().is_some() {
                note(
                    &[&path[..], &[Seg::Key("name")]].concat(),
                    format!("{} has a tag and a digest: pulled by the digest, the tag is kept as the name (as oc-mirror does)", entry.name.written),
                );
            }
            let image = PullImage {
                name: entry.name.clone(),
                target_repo: entry.target_repo.as_ref().map(|t| t.0.clone()),
                target_tag: entry.target_tag.as_ref().map(|t| t.0.clone()),
                platforms: entry.platforms.clone(),
                index: i,
            };
            // One map lookup per entry: a catalog's set lists 10^4 images.
            let place = (
                image.name.reference.clone(),
                image.target_repo.clone(),
                image.target_tag.clone(),
            );
            let same_place = seen.get(&place).map(|&k| &images[k]);
            match same_place {
                Some(o) if o.platforms == image.platforms => {
                    let first = self
                        .image_at(o.index)
                        .map_or(String::new(), |(l, _)| format!(" (line {l})"));
                    note(
                        &path,
                        format!("{} is listed twice{first}; pulled once", entry.name),
                    );
                }
                Some(o) => {
                    let first = self
                        .image_at(o.index)
                        .map_or(String::new(), |(l, _)| format!(" on line {l}"));
                    return Err(invalid(
                        &path,
                        &format!("{} is listed again{first} with other platforms: list it once with every platform it needs", entry.name),
                    ));
                }
                None => {
                    seen.insert(place, images.len());
                    images.push(image);
                }
            }
        }
        let operators = self.operators_for_pull(&mut note)?;
        if images.is_empty() && operators.is_empty() {
            return Err(invalid(
                &[Seg::Key("mirror"), Seg::Key("blockedImages")],
                "every image of additionalImages is blocked: nothing is left to pull",
            ));
        }
        Ok(PullSet {
            images,
            operators,
            block: blocklist,
            blocked,
            notes,
        })
    }
}

impl ImageSet {
    /// `mirror.operators[]`, checked as far as the file alone allows (the selection's own
    /// rules are checked against the catalog, by `catalog::Filter`).
    fn operators_for_pull(
        &self,
        note: &mut dyn FnMut(&[Seg], String),
    ) -> Result<Vec<PullOperator>, ImageSetError> {
        let invalid = |path: &[Seg], why: &str| {
            let (at, detail) = self.finding(path, why);
            ImageSetError::Invalid {
                file: self.file.clone(),
                at,
                detail,
            }
        };
        let mut out: Vec<PullOperator> = Vec::new();
        for (i, op) in self.config.mirror.operators.iter().enumerate() {
            let path = [Seg::Key("mirror"), Seg::Key(OPS), Seg::Index(i)];
            let at = |field: &'static str| [&path[..], &[Seg::Key(field)]].concat();
            let catalog = match &op.catalog {
                ImageSource::Registry(name) => name.clone(),
                ImageSource::OciLayout(dir) => {
                    return Err(invalid(
                        &at("catalog"),
                        &format!("oci://{dir}: ferry reads catalogs from a registry only; push the layout into a registry first (skopeo copy oci:{dir} docker://HOST/REPO:TAG) and name that"),
                    ))
                }
            };
            if let Some((at, why)) = platform_problem(&path, &op.platforms) {
                return Err(invalid(&at, &why));
            }
            if op.skip_dependencies {
                note(
                    &at("skipDependencies"),
                    "skipDependencies is declared by oc-mirror but not read by it, nor by ferry: dependencies are reported, and kept only with includeDependencies: true".into(),
                );
            }
            if op.target_catalog_source_template.is_some() {
                note(
                    &at("targetCatalogSourceTemplate"),
                    "targetCatalogSourceTemplate is not read by ferry: ferry-unpack push writes the CatalogSource (its name from targetCatalog; --catalog-publisher sets the publisher)".into(),
                );
            }
            let target_catalog = op.target_catalog.as_ref().map(|t| t.0.clone());
            let target_tag = op.target_tag.as_ref().map(|t| t.0.clone());
            if let Some(o) = out.iter().find(|o| {
                o.catalog.reference == catalog.reference
                    && o.target_catalog == target_catalog
                    && o.target_tag == target_tag
            }) {
                let line = self
                    .operator_at(o.index)
                    .map_or(String::new(), |(l, _)| format!(" on line {l}"));
                return Err(invalid(
                    &path,
                    &format!("the catalog {catalog} is listed again{line} with the same destination: list its packages in one entry, or give one of them another targetCatalog or targetTag"),
                ));
            }
            out.push(PullOperator {
                catalog,
                target_catalog,
                target_tag,
                platforms: op.platforms.clone(),
                config: op.clone(),
                index: i,
            });
        }
        Ok(out)
    }
}
