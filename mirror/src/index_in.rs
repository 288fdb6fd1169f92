//! Reading an OCI layout's `index.json` one descriptor at a time: a full catalog's lists
//! 6×10^4 of them (14 MB), and reading it whole held the bytes and a map of annotations
//! per descriptor (~0.5 KiB each) at once — the largest term of a read. Here the file is
//! streamed, each descriptor handed on as it is parsed, and of its annotations only those
//! the reader uses are kept.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::MirrorError;
use oci::annotation::{
    CONTAINERD_NAME, FERRY_CATALOG_PACKAGES, FERRY_PLATFORMS, FERRY_TARGET_REPOSITORY, REF_NAME,
};

/// One descriptor of `manifests`, as the layout reader needs it.
#[derive(Deserialize)]
pub(crate) struct DescriptorIn {
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub annotations: AnnotationsIn,
}

/// The annotations the reader uses. Every value must still be a string, as when they
/// were read into a map; of a key given twice, the last value counts, as it did.
#[derive(Default)]
pub(crate) struct AnnotationsIn {
    pub ref_name: Option<String>,
    pub containerd_name: Option<String>,
    pub platforms: Option<String>,
    pub target_repository: Option<String>,
    pub catalog_packages: Option<String>,
}

impl<'de> Deserialize<'de> for AnnotationsIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Annotations;
        impl<'de> Visitor<'de> for Annotations {
            type Value = AnnotationsIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnnotationsIn, A::Error> {
                let mut out = AnnotationsIn::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let slot = match key.as_str() {
                        REF_NAME => &mut out.ref_name,
                        CONTAINERD_NAME => &mut out.containerd_name,
                        FERRY_PLATFORMS => &mut out.platforms,
                        FERRY_TARGET_REPOSITORY => &mut out.target_repository,
                        FERRY_CATALOG_PACKAGES => &mut out.catalog_packages,
                        _ => continue,
                    };
                    *slot = Some(value);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Annotations)
    }
}

/// Parses `index.json` at `path` (at most `cap` bytes), handing each descriptor of its
/// `manifests` to `each` in order. Errors as reading it whole gave: the file, then its
/// JSON; an error of `each` stops the reading and is returned.
pub(crate) fn for_each_descriptor(
    path: &Path,
    cap: u64,
    each: impl FnMut(DescriptorIn) -> Result<(), MirrorError>,
) -> Result<(), MirrorError> {
    for_each_manifest(path, cap, each)
}

/// Checks that `index.json` at `path` is an image index as [`oci::Index`] reads one
/// (required members, their types), holding one descriptor at a time.
pub(crate) fn check_index(path: &Path, cap: u64) -> Result<(), MirrorError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)] // read to be checked, then dropped
    struct Shape {
        schema_version: u32,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        artifact_type: Option<String>,
        #[serde(deserialize_with = "each_dropped")]
        manifests: (),
        #[serde(default)]
        subject: Option<oci::Descriptor>,
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    fn each_dropped<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of descriptors")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element::<oci::Descriptor>()?.is_some() {}
                Ok(())
            }
        }
        d.deserialize_seq(Each)
    }
    parse(path, cap, |de| Shape::deserialize(de).map(drop))
}

/// As [`for_each_descriptor`], each descriptor read as `T`.
pub(crate) fn for_each_manifest<T: serde::de::DeserializeOwned>(
    path: &Path,
    cap: u64,
    mut each: impl FnMut(T) -> Result<(), MirrorError>,
) -> Result<(), MirrorError> {
    let mut failed = None;
    let r = parse(path, cap, |de| {
        Index {
            each: &mut each,
            failed: &mut failed,
            element: std::marker::PhantomData,
        }
        .deserialize(de)
    });
    match failed {
        Some(e) => Err(e),
        None => r,
    }
}

type Json = serde_json::Deserializer<serde_json::de::IoRead<BufReader<std::io::Take<File>>>>;

/// Streams `path` (at most `cap` bytes) through `read`, then checks nothing follows.
fn parse(
    path: &Path,
    cap: u64,
    read: impl FnOnce(&mut Json) -> Result<(), serde_json::Error>,
) -> Result<(), MirrorError> {
    let file = File::open(path).map_err(|e| MirrorError::io(path, e))?;
    let len = file.metadata().map_err(|e| MirrorError::io(path, e))?.len();
    if len > cap {
        return Err(MirrorError::malformed(
            path,
            format!("larger than {cap} bytes; not a manifest or metadata file"),
        ));
    }
    let reader = BufReader::with_capacity(256 * 1024, file.take(cap.saturating_add(1)));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = read(&mut de).and_then(|()| de.end());
    parsed.map_err(|e| {
        if e.is_io() {
            MirrorError::io(path, e.into())
        } else {
            MirrorError::InvalidJson {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// The index object: `manifests` streamed, every other member skipped.
struct Index<'a, F, T> {
    each: &'a mut F,
    failed: &'a mut Option<MirrorError>,
    element: std::marker::PhantomData<T>,
}

impl<'de, F, T: Deserialize<'de>> DeserializeSeed<'de> for Index<'_, F, T>
where
    F: FnMut(T) -> Result<(), MirrorError>,
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F, T: Deserialize<'de>> Visitor<'de> for Index<'_, F, T>
where
    F: FnMut(T) -> Result<(), MirrorError>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an image index")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "manifests" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if seen {
                return Err(de::Error::duplicate_field("manifests"));
            }
            seen = true;
            map.next_value_seed(Manifests {
                each: &mut *self.each,
                failed: &mut *self.failed,
                element: std::marker::PhantomData,
            })?;
        }
        Ok(())
    }
}

/// The `manifests` array: each descriptor handed on, then dropped.
struct Manifests<'a, F, T> {
    each: &'a mut F,
    failed: &'a mut Option<MirrorError>,
    element: std::marker::PhantomData<T>,
}

impl<'de, F, T: Deserialize<'de>> DeserializeSeed<'de> for Manifests<'_, F, T>
where
    F: FnMut(T) -> Result<(), MirrorError>,
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F, T: Deserialize<'de>> Visitor<'de> for Manifests<'_, F, T>
where
    F: FnMut(T) -> Result<(), MirrorError>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence of descriptors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(d) = seq.next_element::<T>()? {
            if let Err(e) = (self.each)(d) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Digest, ref.name and platforms of each descriptor.
    type Seen = (String, Option<String>, Option<String>);

    fn read(json: &str) -> Result<Vec<Seen>, MirrorError> {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("index.json");
        std::fs::write(&path, json).unwrap();
        let mut got = Vec::new();
        for_each_descriptor(&path, 1 << 20, |d| {
            got.push((d.digest, d.annotations.ref_name, d.annotations.platforms));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn streams_descriptors_and_keeps_the_annotations_used() {
        let got = read(
            r#"{"schemaVersion":2,"manifests":[{"digest":"a","annotations":{"x":"1","org.opencontainers.image.ref.name":"r:1","org.opencontainers.image.ref.name":"r:2"}},{"digest":"b","size":3,"annotations":{"dev.ferry.platforms":"linux/amd64"}}],"annotations":{"k":"v"}}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("a".into(), Some("r:2".into()), None),
                ("b".into(), None, Some("linux/amd64".into()))
            ]
        );
        assert!(read(r#"{"schemaVersion":2}"#).unwrap().is_empty());
        // What a whole read refused is refused.
        for bad in [
            r#"{"manifests":[{"size":1}]}"#,
            r#"{"manifests":[{"digest":"a","annotations":{"x":1}}]}"#,
            r#"{"manifests":[{"digest":"a","annotations":null}]}"#,
            r#"{"manifests":[],"manifests":[]}"#,
            r#"{"manifests":[]} trailing"#,
            r#"{"manifests":[{"digest":"a"}"#,
            "[]",
        ] {
            assert!(
                matches!(read(bad), Err(MirrorError::InvalidJson { .. })),
                "{bad}"
            );
        }
    }

    /// What `oci::Index` refuses, the check refuses; what it takes, the check takes.
    #[test]
    fn the_check_reads_an_index_as_oci_does() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("index.json");
        let d = format!("sha256:{}", "a".repeat(64));
        let good = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{d}","size":1,"annotations":{{"k":"v"}}}}],"extra":[1]}}"#
        );
        for (json, ok) in [
            (good.clone(), true),
            (r#"{"schemaVersion":2,"manifests":[]}"#.to_string(), true),
            (r#"{"manifests":[]}"#.to_string(), false),
            (r#"{"schemaVersion":2}"#.to_string(), false),
            (
                r#"{"schemaVersion":2,"manifests":[{"size":1}]}"#.to_string(),
                false,
            ),
            (
                r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:00","size":1}]}"#.to_string(),
                false,
            ),
            (format!("{good} x"), false),
        ] {
            std::fs::write(&path, &json).unwrap();
            let whole = serde_json::from_str::<oci::Index>(&json).is_ok();
            let checked = check_index(&path, 1 << 20);
            assert_eq!(whole, ok, "{json}");
            assert_eq!(checked.is_ok(), ok, "{json}: {checked:?}");
            if let Err(e) = checked {
                assert!(matches!(e, MirrorError::InvalidJson { .. }), "{e}");
            }
        }
    }

    #[test]
    fn an_error_of_the_reader_stops_the_reading_and_a_cap_holds() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("index.json");
        std::fs::write(&path, r#"{"manifests":[{"digest":"a"},{"digest":"b"}]}"#).unwrap();
        let mut seen = 0;
        let e = for_each_descriptor(&path, 1 << 20, |_| {
            seen += 1;
            Err(MirrorError::malformed("x", "no"))
        })
        .unwrap_err();
        assert_eq!((seen, e.to_string()), (1, "x: no".to_string()));
        let e = for_each_descriptor(&path, 10, |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("larger than 10 bytes"), "{e}");
    }
}
