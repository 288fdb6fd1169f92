//! `--retry-for`, as push and pull take it.

/// `--retry-for`: seconds, or a number with `s`, `m` or `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryFor(pub std::time::Duration);

impl std::str::FromStr for RetryFor {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => t.split_at(i),
            None => (t, "s"),
        };
        let n: u64 = number.parse().map_err(|_| {
            format!("{text:?} is not a duration: give seconds (60) or 30s, 10m, 2h")
        })?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(format!("{text:?}: unknown unit {unit:?}; use s, m or h")),
        };
        n.checked_mul(scale)
            .map(|s| RetryFor(std::time::Duration::from_secs(s)))
            .ok_or_else(|| format!("{text:?} is too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::RetryFor;
    use std::time::Duration;

    #[test]
    fn retry_for_takes_seconds_and_units() {
        let d = |t: &str| t.parse::<RetryFor>().map(|r| r.0);
        assert_eq!(d("60"), Ok(Duration::from_secs(60)));
        assert_eq!(d("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(d("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(d("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "-1", "1.5m", "10d", "99999999999999999999h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }
}
