//! `catalog list`: what the operator catalogs of a bundle offer, on the inside, without
//! podman or grpcurl. The packages the bundle records (image member `packages`, SPEC.md
//! §4.2) are always at hand; the full listing reads the catalog image out of the volumes
//! through [`catalog::image::Blobs`], which opens only what the reader asks for (the
//! manifests, the config and the layer holding the catalog), each streamed out of its
//! chunks and checked against its digest, as extract and push read blobs.

use std::io::{self, Cursor, Read, Seek};
use std::path::Path;
use std::sync::Mutex;

use catalog::image::{Blobs, ImageError, Source};
use catalog::Listing;
use format_spec::bundle::Bundle;
use format_spec::manifest::Image;
use format_spec::volume_set::{open_every, SetError, Trust};
use format_spec::Digest;

use crate::cli::CatalogListArgs;
use crate::error::{Error, Exit};
use crate::{load_keys, Outcome};

/// Blobs up to this size are read into memory; larger ones (catalog layers) are spooled to
/// an unnamed file in the scratch directory, so memory does not follow the layer's size.
const IN_MEMORY: u64 = 1 << 20;

/// The blobs of a bundle, as the catalog image reader asks for them.
struct BundleBlobs<'a> {
    bundle: &'a Bundle,
    scratch: &'a Path,
    /// Blobs up to this size are read into memory ([`IN_MEMORY`]; tests lower it).
    in_memory: u64,
    /// Why the last blob that is not at hand could not be opened (volumes not given, or
    /// left to a delta's base): then the listing falls back to the recorded packages.
    not_at_hand: Mutex<Option<String>>,
}

impl<'a> BundleBlobs<'a> {
    fn new(bundle: &'a Bundle, scratch: &'a Path) -> BundleBlobs<'a> {
        BundleBlobs {
            bundle,
            scratch,
            in_memory: IN_MEMORY,
            not_at_hand: Mutex::new(None),
        }
    }

    fn not_at_hand(&self) -> Option<String> {
        self.not_at_hand
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Blobs for BundleBlobs<'_> {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send + '_>> {
        let missing = |why: String| {
            *self.not_at_hand.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
            io::Error::new(io::ErrorKind::NotFound, why)
        };
        // A scan, not a map of every blob: the reader asks for a handful (the catalog
        // image's manifests, config and layers), and a map would hold 1.86×10^5 entries.
        let Some(i) = self
            .bundle
            .manifest
            .blobs
            .iter()
            .position(|b| b.digest == *digest)
            .map(|i| i as u32)
        else {
            return Err(missing(format!("blob {digest} is not in the bundle")));
        };
        if self.bundle.is_base(i) {
            return Err(missing(format!(
                "blob {digest} is not in this delta bundle (its base holds it)"
            )));
        }
        let waiting = self.bundle.blob_missing_volumes(i);
        if !waiting.is_empty() {
            return Err(missing(format!(
                "blob {digest} needs volume(s) {} which are not given",
                format_spec::bundle::list(&waiting)
            )));
        }
        let mut reader = self
            .bundle
            .open_blob(i)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        // Read to its end here: the reader checks the digest there (a damaged chunk is an
        // error now, not a truncated catalog later).
        if self.bundle.manifest.blobs[i as usize].size <= self.in_memory {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes)?;
            Ok(Box::new(Cursor::new(bytes)))
        } else {
            let mut file = tempfile::tempfile_in(self.scratch)?;
            io::copy(&mut reader, &mut file)?;
            file.rewind()?;
            Ok(Box::new(file))
        }
    }
}

/// What one catalog of the bundle came to.
struct Listed<'a> {
    image: &'a Image,
    kind: Option<catalog::image::Kind>,
    listing: Option<Listing>,
    /// Why the content was not read (not at hand, or `--recorded`).
    not_read: Option<String>,
    /// Every package of the catalog, as read (or as the bundle records them).
    names: Vec<String>,
}

pub fn run(args: &CatalogListArgs) -> Outcome {
    let keys = load_keys(&args.trust)?;
    let trust = if keys.is_empty() {
        Trust::Unverified
    } else {
        Trust::Keys(&keys)
    };
    let bundle = Bundle::new(open_every(&args.volumes, trust)?).map_err(SetError::Mixed)?;
    let m = &bundle.manifest;
    let catalogs: Vec<&Image> = m.images.iter().filter(|i| i.catalog).collect();
    if catalogs.is_empty() {
        return Err(Error::NoCatalog {
            bundle: m.bundle_id,
        });
    }
    let chosen: Vec<&Image> = match &args.catalog {
        None => catalogs.clone(),
        Some(name) => catalogs
            .iter()
            .copied()
            .filter(|i| names(i, name))
            .collect(),
    };
    if chosen.is_empty() {
        return Err(Error::NoSuchCatalog {
            name: args.catalog.clone().unwrap_or_default(),
            available: catalogs.iter().map(|i| i.display_name()).collect(),
        });
    }
    let scratch = tempfile::tempdir().map_err(|source| Error::Scratch { source })?;
    let mut listed = Vec::with_capacity(chosen.len());
    for img in chosen {
        listed.push(list_one(&bundle, img, args, scratch.path())?);
    }
    if let Some(p) = &args.package {
        // A package only one of several catalogs holds: list that one; none: an error.
        let has = |l: &Listed| match (&l.listing, &l.image.packages) {
            (Some(listing), _) => !listing.packages.is_empty(),
            (None, Some(recorded)) => recorded.iter().any(|r| r == p),
            (None, None) => true,
        };
        if !listed.iter().any(has) {
            let mut available: Vec<String> = listed.iter().flat_map(|l| l.names.clone()).collect();
            available.sort();
            available.dedup();
            return Err(Error::NoSuchPackage {
                package: p.clone(),
                available,
            });
        }
        listed.retain(has);
    }
    let blind = listed
        .iter()
        .filter(|l| l.listing.is_none() && l.image.packages.is_none())
        .count();
    if args.json {
        let events = progress::Events::new(true);
        for l in &listed {
            // As `ferry-pack catalog list --json` prints a listing (its members flattened,
            // the image's beside them), so one reader serves both sides. Not read: the
            // recorded names, without channels, and `not_read` says why.
            let listing = match &l.listing {
                Some(listing) => listing.clone(),
                None => recorded_listing(l.image, args.package.as_deref()),
            };
            let mut value = serde_json::to_value(&listing).expect("a listing serializes");
            if let serde_json::Value::Object(map) = &mut value {
                for (k, v) in [
                    ("image", serde_json::json!(l.image.display_name())),
                    ("digest", serde_json::json!(l.image.digest)),
                    ("source", serde_json::json!(l.image.source)),
                    ("destination", serde_json::json!(l.image.destination)),
                    ("kind", serde_json::json!(l.kind)),
                    ("recorded_packages", serde_json::json!(l.image.packages)),
                    ("not_read", serde_json::json!(l.not_read)),
                ] {
                    map.insert(k.into(), v);
                }
            }
            events.emit("catalog_list", &value);
        }
    } else {
        for l in &listed {
            print_text(l, args.package.as_deref());
        }
    }
    for l in listed
        .iter()
        .filter(|l| l.listing.is_none() && !args.recorded)
    {
        eprintln!(
            "ferry-unpack: catalog {}: {}: {}",
            l.image.display_name(),
            if l.image.packages.is_some() {
                "channels and versions not read"
            } else {
                "not read, and the bundle records no packages for it"
            },
            l.not_read.as_deref().unwrap_or("unknown")
        );
    }
    Ok(if blind > 0 {
        Exit::Failed
    } else {
        Exit::Success
    })
}

/// The listing of what the bundle records of `img`: each package by name only.
fn recorded_listing(img: &Image, package: Option<&str>) -> Listing {
    Listing {
        packages: img
            .packages
            .iter()
            .flatten()
            .filter(|n| package.is_none_or(|p| p == n.as_str()))
            .map(|n| catalog::write::PackageListing {
                name: n.clone(),
                default_channel: None,
                channels: Vec::new(),
            })
            .collect(),
        bundles: None,
    }
}

/// Whether `name` names catalog `img`: its name in the bundle (with or without a tag, or
/// by digest), its original reference, or its destination path.
fn names(img: &Image, name: &str) -> bool {
    name == img.repository
        || name == img.digest.to_string()
        || name == format!("{}@{}", img.repository, img.digest)
        || img
            .tags
            .iter()
            .any(|t| name == format!("{}:{t}", img.repository))
        || img.source.as_deref() == Some(name)
        || img.destination.as_deref() == Some(name)
}

fn list_one<'a>(
    bundle: &Bundle,
    img: &'a Image,
    args: &CatalogListArgs,
    scratch: &Path,
) -> Result<Listed<'a>, Error> {
    let unread = |why: String| Listed {
        image: img,
        kind: None,
        listing: None,
        not_read: Some(why),
        names: img.packages.clone().unwrap_or_default(),
    };
    if args.recorded {
        return Ok(unread(
            "--recorded: only the packages the bundle records".into(),
        ));
    }
    let blobs = BundleBlobs::new(bundle, scratch);
    // Without its top manifest nothing of the image can be read: say which volume has it.
    if let Err(e) = blobs.open(&img.digest) {
        if let Some(why) = blobs.not_at_hand() {
            return Ok(unread(why));
        }
        return Err(Error::CatalogUnreadable {
            image: img.display_name(),
            source: Box::new(ImageError::Blob {
                digest: img.digest,
                source: e,
            }),
        });
    }
    let unreadable = |source: ImageError| Error::CatalogUnreadable {
        image: img.display_name(),
        source: Box::new(source),
    };
    let kept = kept_children(bundle, img);
    let source = Source {
        digest: img.digest,
        media_type: &img.media_type,
        kept: kept.as_deref(),
    };
    let loaded = match catalog::image::read(&blobs, &source, scratch) {
        Ok(l) => l,
        Err(e) => {
            return match blobs.not_at_hand() {
                Some(why) => Ok(unread(why)),
                None => Err(unreadable(e)),
            }
        }
    };
    let listing = match catalog::list(&loaded.catalog, args.package.as_deref()) {
        Ok(l) => l,
        // Not in this catalog: an empty listing (another catalog may hold it).
        Err(_) => Listing {
            packages: Vec::new(),
            bundles: None,
        },
    };
    Ok(Listed {
        image: img,
        kind: Some(loaded.kind),
        listing: Some(listing),
        not_read: None,
        names: loaded.catalog.package_names(),
    })
}

/// For a sparse index (SPEC.md §4.2 `platforms`), the children the bundle carries, so the
/// reader takes one of those: the manifests among the image's blobs after its own (the
/// bundle manifest types them; no index is parsed here). None for any other image.
fn kept_children(bundle: &Bundle, img: &Image) -> Option<Vec<Digest>> {
    img.platforms.as_ref()?;
    let m = &bundle.manifest;
    Some(
        img.blobs
            .iter()
            .skip(1)
            .map(|&b| &m.blobs[b as usize])
            .filter(|b| b.media_type.is_some())
            .map(|b| b.digest)
            .collect(),
    )
}

fn print_text(l: &Listed<'_>, package: Option<&str>) {
    let img = l.image;
    let kind = match l.kind {
        Some(catalog::image::Kind::Fbc) => "file-based catalog, ",
        Some(catalog::image::Kind::Sqlite) => "SQLite catalog, ",
        None => "",
    };
    println!(
        "catalog {} ({kind}{}){}",
        img.display_name(),
        img.digest,
        img.source
            .as_ref()
            .map(|s| format!(" from {s}"))
            .unwrap_or_default()
    );
    let Some(listing) = &l.listing else {
        match &img.packages {
            Some(_) => {
                let recorded = recorded_listing(img, package);
                println!(
                    "packages: {} (as the bundle records them)",
                    recorded.packages.len()
                );
                for p in &recorded.packages {
                    println!("  {}", p.name);
                }
            }
            None => println!(
                "  not read ({}), and the bundle records no packages for it",
                l.not_read.as_deref().unwrap_or("unknown")
            ),
        }
        return;
    };
    // The same lines as `ferry-pack catalog list`.
    print!("{listing}");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use format_spec::key::PublicKey;
    use sha2::{Digest as _, Sha256};

    use super::*;

    /// The committed valid vector (format-spec/vectors/valid-bundle): 3 blobs over 5 volumes.
    fn vector() -> (Vec<PathBuf>, PublicKey) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors/valid-bundle");
        let mut vols: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "tar"))
            .collect();
        vols.sort();
        (vols, PublicKey::load(&dir.join("key.pub")).unwrap())
    }

    fn open(paths: &[PathBuf], key: &PublicKey) -> Bundle {
        Bundle::new(open_every(paths, Trust::Keys(std::slice::from_ref(key))).unwrap()).unwrap()
    }

    /// Every blob reads back to its digest, from memory or spooled to the scratch directory.
    #[test]
    fn blobs_read_whole_from_memory_or_spooled() {
        let (vols, key) = vector();
        let bundle = open(&vols, &key);
        let scratch = tempfile::tempdir().unwrap();
        for in_memory in [0, IN_MEMORY] {
            let mut blobs = BundleBlobs::new(&bundle, scratch.path());
            blobs.in_memory = in_memory;
            for b in &bundle.manifest.blobs {
                let mut bytes = Vec::new();
                blobs
                    .open(&b.digest)
                    .unwrap()
                    .read_to_end(&mut bytes)
                    .unwrap();
                assert_eq!(bytes.len() as u64, b.size);
                assert_eq!(Sha256::digest(&bytes).as_slice(), b.digest.0.as_slice());
            }
            assert_eq!(blobs.not_at_hand(), None);
        }
        // Spooled files are unnamed: nothing is left in the scratch directory.
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }

    /// A blob whose volumes are not given is not at hand, and says which volumes it needs;
    /// a digest the bundle lacks says so too.
    #[test]
    fn a_blob_not_at_hand_names_its_volumes() {
        let (vols, key) = vector();
        let bundle = open(&vols[..1], &key);
        let scratch = tempfile::tempdir().unwrap();
        let blobs = BundleBlobs::new(&bundle, scratch.path());
        let waiting = bundle
            .manifest
            .blobs
            .iter()
            .enumerate()
            .find(|(i, _)| !bundle.blob_missing_volumes(*i as u32).is_empty())
            .map(|(_, b)| b.digest)
            .expect("a blob beyond volume 1");
        let e = blobs.open(&waiting).err().expect("not at hand");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let why = blobs.not_at_hand().expect("recorded");
        assert!(
            why.contains("which are not given") && why.contains(&waiting.to_string()),
            "{why}"
        );
        let absent = Digest([0x42; 32]);
        assert!(blobs.open(&absent).is_err());
        assert!(blobs
            .not_at_hand()
            .unwrap()
            .contains("is not in the bundle"));
    }
}
