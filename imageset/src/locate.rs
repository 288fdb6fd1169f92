//! Finding the line and column of a field path (`mirror.additionalImages[2].platforms`) for
//! the findings made after the file is read (refused sections, duplicates).
//!
//! serde_norway keeps no positions in its values, but it attaches the position of the
//! event being read to any error raised there. So the document is walked again, along the
//! path only, and a marker error is raised at the wanted key (or sequence item): its
//! location is the answer. One YAML reader for everything, no second parser to disagree.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

const MARKER: &str = "ferry-imageset-locate-marker";

/// One step of a field path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Renders a path as serde_norway does (`mirror.additionalImages[2].name`).
pub fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The 1-based line and column of the key (or sequence item) at `path`, if it is there.
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let err = Probe { path }
        .deserialize(serde_norway::Deserializer::from_str(text))
        .err()?;
    let msg = err.to_string();
    if !msg.contains(MARKER) {
        return None;
    }
    err.location().map(|l| (l.line(), l.column()))
}

struct Probe<'p, 'a> {
    path: &'p [Seg<'a>],
}

impl<'de> DeserializeSeed<'de> for Probe<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.path.split_first() else {
            return drain_map(map);
        };
        while let Some(hit) = map.next_key_seed(KeyProbe {
            want,
            last: rest.is_empty(),
        })? {
            if hit {
                map.next_value_seed(Probe { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.path.split_first() else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let mut i = 0;
        loop {
            let found = if i == *want {
                if rest.is_empty() {
                    seq.next_element_seed(Here)?
                } else {
                    seq.next_element_seed(Probe { path: rest })?
                }
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if found.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads a mapping key: `Ok(true)` when it is the wanted one, and the marker error when it
/// is also the end of the path.
struct KeyProbe<'a> {
    want: &'a str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyProbe<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if v == self.want && self.last {
            return Err(E::custom(MARKER));
        }
        Ok(v == self.want)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// The wanted sequence item: fails at once, at the item's position.
struct Here;

impl<'de> DeserializeSeed<'de> for Here {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Here)
    }
}

impl<'de> Visitor<'de> for Here {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(MARKER))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(MARKER))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let text = "kind: X\nmirror:\n  additionalImages:\n  - name: a:1\n  - name: b:1\n    platforms:\n    - os: linux\n  operators:\n  - catalog: c:1\n";
        let k = |p: &[Seg]| locate(text, p);
        assert_eq!(k(&[Seg::Key("kind")]), Some((1, 1)));
        assert_eq!(
            k(&[Seg::Key("mirror"), Seg::Key("operators")]),
            Some((8, 3))
        );
        let item1 = [
            Seg::Key("mirror"),
            Seg::Key("additionalImages"),
            Seg::Index(1),
        ];
        assert_eq!(k(&item1), Some((5, 5)));
        let os = [
            Seg::Key("mirror"),
            Seg::Key("additionalImages"),
            Seg::Index(1),
            Seg::Key("platforms"),
            Seg::Index(0),
            Seg::Key("os"),
        ];
        assert_eq!(k(&os), Some((7, 7)));
        assert_eq!(render(&os), "mirror.additionalImages[1].platforms[0].os");
        assert_eq!(k(&[Seg::Key("mirror"), Seg::Key("helm")]), None);
        assert_eq!(
            k(&[
                Seg::Key("mirror"),
                Seg::Key("additionalImages"),
                Seg::Index(7)
            ]),
            None
        );
    }
}
