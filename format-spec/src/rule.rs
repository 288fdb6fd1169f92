//! The MUST-reject rules of SPEC.md by their ids (§4.4 `M1`…, §5.6 `R1`…), so a finding
//! says which rule it breaks and tests can assert the rule, not a phrase of the message.

use std::fmt;
use std::str::FromStr;

macro_rules! rules {
    ($($id:ident),* $(,)?) => {
        /// A rule of SPEC.md. New rules come with new format versions or new checks, so
        /// matches must allow for variants added later.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Rule {
            $($id),*
        }

        impl Rule {
            /// Every rule, manifest rules first, each group in numeric order.
            pub const ALL: &'static [Rule] = &[$(Rule::$id),*];

            /// The id as SPEC.md writes it: `M5`, `R13`.
            pub fn id(self) -> &'static str {
                match self {
                    $(Rule::$id => stringify!($id)),*
                }
            }
        }
    };
}

rules!(
    M1, M2, M3, M4, M5, M6, M7, M8, M9, M10, M11, M12, M13, M14, M15, M16, M17, M18, M19, M20, M21,
    M22, M23, M24, M25, M26, M27, //
    R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, R11, R12, R13, R14, R15, R16, R17, R18, R19, R20, R21,
    R22, R23, R24, R25, R26, R27, R28, R29, R30, R31, R32, R33, R34, R35,
);

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Not the id of a rule of SPEC.md.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rule of SPEC.md")]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Rule, UnknownRule> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.id() == s)
            .ok_or_else(|| UnknownRule(s.to_string()))
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enum and SPEC.md's rule tables list the same rules: a rule added to one and not
    /// the other fails here.
    #[test]
    fn every_rule_of_the_spec_and_no_other() {
        let spec = include_str!("../SPEC.md");
        let mut in_spec: Vec<Rule> = spec
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(" |").next())
            .filter(|id| {
                id.len() >= 2
                    && (id.starts_with('M') || id.starts_with('R'))
                    && id[1..].bytes().all(|b| b.is_ascii_digit())
            })
            .map(|id| id.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        in_spec.sort();
        assert_eq!(in_spec, Rule::ALL, "SPEC.md's rule tables and Rule differ");
    }

    #[test]
    fn ids_round_trip() {
        for r in Rule::ALL {
            assert_eq!(r.id().parse::<Rule>(), Ok(*r));
        }
        assert!("M0".parse::<Rule>().is_err());
        assert!("R36".parse::<Rule>().is_err());
    }
}
