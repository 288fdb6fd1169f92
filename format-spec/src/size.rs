//! Volume sizes with explicit units and media presets (SPEC.md §5.1).

/// Presets for common media. Optical presets leave room for the UDF/ISO 9660 file system
/// that the disc needs beside the file: the figure is the disc's user capacity less 16 MiB
/// (DVD) or 64 MiB (Blu-ray), so a volume of that size fits once burned.
pub const PRESETS: &[(&str, u64, &str)] = &[
    (
        "fat32",
        4 * GIB - 1,
        "largest file FAT32 can hold (4 GiB - 1 byte)",
    ),
    (
        "dvd",
        4_700_372_992 - 16 * MIB,
        "DVD±R single layer, 4.7 GB",
    ),
    (
        "dvd-dl",
        8_543_666_176 - 16 * MIB,
        "DVD±R dual layer, 8.5 GB",
    ),
    (
        "bd25",
        25_025_314_816 - 64 * MIB,
        "BD-R single layer, 25 GB",
    ),
    ("bd50", 50_050_629_632 - 64 * MIB, "BD-R dual layer, 50 GB"),
    (
        "bd100",
        100_103_356_416 - 64 * MIB,
        "BD-R XL triple layer, 100 GB",
    ),
];

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("volume size {text:?}: {reason} (write e.g. 4GiB, 4.7GB, 700MiB, or a preset: {presets})")]
pub struct BadSize {
    pub text: String,
    pub reason: String,
    pub presets: String,
}

/// Parses `4GiB`, `4.7GB`, `700MiB`, `123B`, or a preset name. A bare number is refused:
/// whether "4" means GB or GiB is exactly the confusion units are there to avoid.
pub fn parse_size(text: &str) -> Result<u64, BadSize> {
    let bad = |reason: &str| BadSize {
        text: text.to_owned(),
        reason: reason.to_owned(),
        presets: PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", "),
    };
    let t = text.trim();
    if let Some(p) = PRESETS.iter().find(|p| p.0.eq_ignore_ascii_case(t)) {
        return Ok(p.1);
    }
    // The two mistakes met in the field, said as what they are rather than "unknown unit".
    if let Some(rest) = t
        .strip_prefix('-')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
    {
        return Err(BadSize {
            reason: format!("a size cannot be negative (did you mean {rest}?)"),
            ..bad("")
        });
    }
    if t.contains(',') {
        return Err(BadSize {
            reason: format!(
                "a decimal comma; sizes take a decimal point ({})",
                t.replace(',', ".")
            ),
            ..bad("")
        });
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| bad("no unit"))?;
    let (number, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "B" => 1,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "TiB" => 1 << 40,
        _ => return Err(bad("unknown unit")),
    };
    if number.is_empty() || number.matches('.').count() > 1 {
        return Err(bad("not a number"));
    }
    // Decimal arithmetic on the digits, not f64, so 4.7GB is exactly 4_700_000_000.
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.len() > 9 {
        return Err(bad("too many decimals"));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad("not a number"))?
    };
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad("not a number"))?
    };
    let scale = 10u64.pow(frac.len() as u32);
    let bytes = whole
        .checked_mul(multiplier)
        .and_then(|w| {
            let f = u128::from(frac_value) * u128::from(multiplier) / u128::from(scale);
            w.checked_add(u64::try_from(f).ok()?)
        })
        .ok_or_else(|| bad("too large"))?;
    if bytes == 0 {
        return Err(bad("must be more than zero"));
    }
    Ok(bytes)
}

/// `4294967295` → `4.00 GiB`, for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_presets() {
        assert_eq!(parse_size("4GiB"), Ok(4 * GIB));
        assert_eq!(parse_size("4.7GB"), Ok(4_700_000_000));
        assert_eq!(parse_size("700MiB"), Ok(700 * MIB));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("fat32"), Ok(4 * GIB - 1));
        assert_eq!(parse_size("FAT32"), Ok(4 * GIB - 1));
        assert!(parse_size("bd25").unwrap() < 25_025_314_816);
    }

    #[test]
    fn a_decimal_comma_and_a_minus_sign_are_named() {
        let e = parse_size("1,5GB").unwrap_err().to_string();
        assert!(
            e.contains("a decimal comma; sizes take a decimal point (1.5GB)"),
            "{e}"
        );
        let e = parse_size("-1MiB").unwrap_err().to_string();
        assert!(
            e.contains("a size cannot be negative (did you mean 1MiB?)"),
            "{e}"
        );
    }

    #[test]
    fn refuses_what_is_ambiguous_or_wrong() {
        for bad in [
            "4",
            "4G",
            "4gib",
            "",
            "GiB",
            "1.2.3GB",
            "0B",
            "99999999999TiB",
            "-1GB",
            "1,5GB",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.to_string().contains("fat32"), "{err}");
        }
    }
}
