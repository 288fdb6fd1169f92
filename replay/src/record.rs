//! What the last push of a bundle left in the registry, as its own report recorded it in
//! the state directory (`last-push.json`, SPEC.md §6.4): for each image that was complete
//! at its end (`pushed` or `present`), where it went and under which tags.
//!
//! A repeat push uses it to ask less ([`crate::push`]'s probe): an image the record has
//! complete at the same destination, every tag of which the registry still lists, is not
//! asked for tag by tag. The record is this machine's own file, written after the push
//! it describes, so it is trusted as the staged chunks are; what it cannot know is what
//! happened in the registry since, which is why the tags are listed again.

use std::collections::HashMap;

use format_spec::Digest;
use serde::Deserialize;

use crate::push::ImageStatus;

/// The images a push recorded as complete, by destination and digest.
#[derive(Debug, Default)]
pub struct LastPush {
    /// The push's `--to`, as its report gives it (`Target`'s display form).
    target: String,
    /// (`registry/repository`, top manifest digest) → its tags then, sorted.
    complete: HashMap<(String, Digest), Vec<String>>,
}

/// The members of a push's report (`push::Report` as `last-push.json` holds it) read
/// back; the rest is skipped.
#[derive(Deserialize)]
struct StoredReport {
    target: String,
    images: Vec<StoredImage>,
}

#[derive(Deserialize)]
struct StoredImage {
    digest: Digest,
    destination: String,
    #[serde(default)]
    tags: Vec<String>,
    status: ImageStatus,
}

impl<'de> Deserialize<'de> for LastPush {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LastPush, D::Error> {
        let r = StoredReport::deserialize(d)?;
        let complete = r
            .images
            .into_iter()
            .filter(|i| i.status.in_registry())
            .map(|i| {
                let mut tags = i.tags;
                tags.sort_unstable();
                ((i.destination, i.digest), tags)
            })
            .collect();
        Ok(LastPush {
            target: r.target,
            complete,
        })
    }
}

impl LastPush {
    /// The push's `--to` (a record of another target says nothing of this one).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the push left the image `digest` complete at `destination`
    /// (`registry/repository`) with every one of `tags`.
    pub fn left_complete(&self, destination: &str, digest: &Digest, tags: &[String]) -> bool {
        self.complete
            .get(&(destination.to_owned(), *digest))
            .is_some_and(|had| tags.iter().all(|t| had.binary_search(t).is_ok()))
    }

    /// Images recorded complete.
    pub fn len(&self) -> usize {
        self.complete.len()
    }

    pub fn is_empty(&self) -> bool {
        self.complete.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_images_complete_at_the_end_of_the_push_are_recorded() {
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        let json = serde_json::json!({
            "bundle_id": Digest::of(b"bundle"), "target": "r:5000/x", "interrupted": false,
            "totals": {"blobs_uploaded": 1},
            "images": [
                {"image": "a", "digest": a, "destination": "r:5000/x/a", "tags": ["2", "1"], "status": "pushed"},
                {"image": "b", "digest": b, "destination": "r:5000/x/b", "tags": [], "status": "present"},
                {"image": "c", "digest": c, "destination": "r:5000/x/c", "tags": ["1"], "status": "failed", "error": "no"},
                {"image": "c", "digest": c, "destination": "r:5000/x/d", "tags": ["1"], "status": "waiting", "waiting_on": [2]},
            ]
        });
        let r: LastPush = serde_json::from_value(json).unwrap();
        assert_eq!((r.target(), r.len()), ("r:5000/x", 2));
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(r.left_complete("r:5000/x/a", &a, &tags(&["1", "2"])));
        assert!(r.left_complete("r:5000/x/a", &a, &tags(&["2"])));
        assert!(
            !r.left_complete("r:5000/x/a", &a, &tags(&["1", "3"])),
            "a tag it did not put"
        );
        assert!(
            !r.left_complete("r:5000/y/a", &a, &tags(&["1"])),
            "another destination"
        );
        assert!(!r.left_complete("r:5000/x/a", &b, &[]), "another image");
        assert!(r.left_complete("r:5000/x/b", &b, &[]));
        assert!(!r.left_complete("r:5000/x/c", &c, &tags(&["1"])), "failed");
        assert!(!r.left_complete("r:5000/x/d", &c, &tags(&["1"])), "waiting");
    }
}
