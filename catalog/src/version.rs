//! OLM versions and version ranges.
//!
//! A bundle's version is the `version` of its `olm.package` property: semver 2.0, parsed
//! strictly as opm does. The bounds a user writes (`minVersion: 4.18`) are parsed the
//! tolerant way of blang/semver's `ParseTolerant`, which OLM uses: whitespace and a leading
//! `v` are dropped, leading zeros are trimmed, and a short version is padded (`4.18` →
//! `4.18.0`).
//!
//! A [`Range`] is what `catalog_handler.go` builds from `minVersion`/`maxVersion`
//! (`">=min <=max"`) and what `olm.package.required` carries: comparators (`>=`, `>`, `<=`,
//! `<`, `=`, `==`, `!=`, or a bare version meaning `=`) joined by spaces or commas (all must
//! hold), alternatives joined by `||` (one must hold).

use std::fmt;

pub use semver::Version;

/// Why a version or a range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{text:?} is not a semantic version (major.minor.patch[-pre][+build]): {reason}")]
    Version { text: String, reason: String },
    #[error("{text:?} is not a version range: {reason}")]
    Range { text: String, reason: String },
}

/// A bundle's version, as opm reads it (strict semver 2.0).
pub fn parse_strict(text: &str) -> Result<Version, VersionError> {
    Version::parse(text).map_err(|e| VersionError::Version {
        text: text.to_string(),
        reason: e.to_string(),
    })
}

/// A version as a user writes it, read like blang/semver's `ParseTolerant`.
pub fn parse_tolerant(text: &str) -> Result<Version, VersionError> {
    let bad = |reason: &str| VersionError::Version {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let s = text.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts: Vec<String> = s.splitn(3, '.').map(str::to_string).collect();
    for p in parts.iter_mut() {
        if p.len() > 1 {
            let trimmed = p.trim_start_matches('0');
            *p = if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
                trimmed.to_string()
            } else {
                format!("0{trimmed}")
            };
        }
    }
    if parts.len() < 3 {
        if parts
            .last()
            .is_some_and(|p| p.contains('+') || p.contains('-'))
        {
            return Err(bad(
                "a short version cannot carry a pre-release or build suffix",
            ));
        }
        while parts.len() < 3 {
            parts.push("0".to_string());
        }
    }
    Version::parse(&parts.join(".")).map_err(|e| bad(&e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
}

/// Which of the two range dialects OLM's tools use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Masterminds/semver, which catalog-filter uses for `minVersion`/`maxVersion`: a
    /// comparator whose own version has no pre-release never matches a pre-release version
    /// (`>=1.0.0` does not take `1.5.0-rc.1`).
    Masterminds,
    /// blang/semver, which OLM uses for `olm.package.required`: plain semver ordering.
    Blang,
}

/// A version range: alternatives (`||`) of conjunctions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    text: String,
    dialect: Dialect,
    any_of: Vec<Vec<Comparator>>,
}

impl Range {
    /// Parses `text` in `dialect`.
    pub fn parse(text: &str, dialect: Dialect) -> Result<Range, VersionError> {
        let bad = |reason: String| VersionError::Range {
            text: text.to_string(),
            reason,
        };
        let mut any_of = Vec::new();
        for alternative in text.split("||") {
            let mut all = Vec::new();
            for word in alternative
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
            {
                let (op, rest) = split_op(word);
                let version = parse_tolerant(rest).map_err(|e| bad(e.to_string()))?;
                all.push(Comparator { op, version });
            }
            if all.is_empty() {
                return Err(bad("an alternative holds no comparator".to_string()));
            }
            any_of.push(all);
        }
        Ok(Range {
            text: text.to_string(),
            dialect,
            any_of,
        })
    }

    /// The range oc-mirror's `catalog_handler.go` builds: `">=min"`, `" <=max"`, or both.
    /// `None` when neither bound is given.
    pub fn from_bounds(
        min: Option<&str>,
        max: Option<&str>,
    ) -> Option<Result<Range, VersionError>> {
        let min = min.filter(|s| !s.is_empty());
        let max = max.filter(|s| !s.is_empty());
        let text = match (min, max) {
            (None, None) => return None,
            (Some(a), None) => format!(">={a}"),
            (None, Some(b)) => format!("<={b}"),
            (Some(a), Some(b)) => format!(">={a} <={b}"),
        };
        Some(Range::parse(&text, Dialect::Masterminds))
    }

    /// Whether `v` is in the range.
    pub fn contains(&self, v: &Version) -> bool {
        self.any_of
            .iter()
            .any(|all| all.iter().all(|c| self.holds(c, v)))
    }

    fn holds(&self, c: &Comparator, v: &Version) -> bool {
        if self.dialect == Dialect::Masterminds && !v.pre.is_empty() && c.version.pre.is_empty() {
            return false;
        }
        let ord = v.cmp_precedence(&c.version);
        use std::cmp::Ordering::*;
        match c.op {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_op(word: &str) -> (Op, &str) {
    for (prefix, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ] {
        if let Some(rest) = word.strip_prefix(prefix) {
            return (op, rest);
        }
    }
    (Op::Eq, word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn tolerant_pads_trims_and_drops_v() {
        assert_eq!(parse_tolerant("4.18").unwrap(), v("4.18.0"));
        assert_eq!(parse_tolerant("4").unwrap(), v("4.0.0"));
        assert_eq!(parse_tolerant(" v1.02.3 ").unwrap(), v("1.2.3"));
        assert_eq!(parse_tolerant("1.2.3-rc.1").unwrap(), v("1.2.3-rc.1"));
        assert!(parse_tolerant("4.18-rc").is_err());
        assert!(parse_tolerant("four").is_err());
    }

    #[test]
    fn strict_refuses_short_versions() {
        assert!(parse_strict("4.18").is_err());
        assert_eq!(parse_strict("4.18.1").unwrap(), v("4.18.1"));
    }

    #[test]
    fn bounds_make_oc_mirror_ranges() {
        let r = Range::from_bounds(Some("1.1"), Some("1.3.0"))
            .unwrap()
            .unwrap();
        assert_eq!(r.as_str(), ">=1.1 <=1.3.0");
        assert!(!r.contains(&v("1.0.9")));
        assert!(r.contains(&v("1.1.0")));
        assert!(r.contains(&v("1.3.0")));
        assert!(!r.contains(&v("1.3.1")));
        let min = Range::from_bounds(Some("2.0"), None).unwrap().unwrap();
        assert!(min.contains(&v("9.0.0")) && !min.contains(&v("1.9.9")));
        let max = Range::from_bounds(None, Some("2.0")).unwrap().unwrap();
        assert!(max.contains(&v("0.1.0")) && !max.contains(&v("2.0.1")));
        assert!(Range::from_bounds(None, Some("")).is_none());
        assert!(Range::from_bounds(Some("x.y"), None).unwrap().is_err());
    }

    #[test]
    fn masterminds_excludes_prereleases_blang_does_not() {
        let m = Range::parse(">=1.0.0 <2.0.0", Dialect::Masterminds).unwrap();
        let b = Range::parse(">=1.0.0 <2.0.0", Dialect::Blang).unwrap();
        assert!(!m.contains(&v("1.5.0-rc.1")));
        assert!(b.contains(&v("1.5.0-rc.1")));
    }

    #[test]
    fn alternatives_and_operators() {
        let r = Range::parse("<1.0.0 || >=2.0.0, !=2.1.0", Dialect::Blang).unwrap();
        assert!(r.contains(&v("0.9.0")));
        assert!(!r.contains(&v("1.5.0")));
        assert!(r.contains(&v("2.0.0")));
        assert!(!r.contains(&v("2.1.0")));
        assert!(Range::parse("1.2.3", Dialect::Blang)
            .unwrap()
            .contains(&v("1.2.3")));
        assert!(Range::parse(">=1 ||", Dialect::Blang).is_err());
    }
}
