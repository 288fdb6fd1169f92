//! Where in a `mirror.operators[]` entry a selection error belongs: the package or
//! channel it names, as a path the binary locates in the file (line and column).

use catalog::sqlite::SqliteError;
use catalog::FilterError;
use imageset::PullOperator;

use crate::error::Field;

/// Where in `op` a package (and channel) the finding names is: `packages[i]`,
/// `packages[i].channels[j]`, or `packages[i].defaultChannel`; empty when it names none
/// the entry lists (then the entry itself is named).
fn package_field(
    op: &PullOperator,
    package: &str,
    channel: Option<&str>,
    last: bool,
    key: Option<&'static str>,
) -> Vec<Field> {
    let packages = &op.config.packages;
    let found = if last {
        packages.iter().rposition(|p| p.name == package)
    } else {
        packages.iter().position(|p| p.name == package)
    };
    let Some(i) = found else {
        return Vec::new();
    };
    let mut field = vec![Field::Key("packages"), Field::Index(i)];
    if let Some(j) = channel.and_then(|c| packages[i].channels.iter().position(|x| x.name == c)) {
        field.extend([Field::Key("channels"), Field::Index(j)]);
    } else if let Some(k) = key {
        field.push(Field::Key(k));
    }
    field
}

pub(super) fn filter_field(op: &PullOperator, e: &FilterError) -> Vec<Field> {
    let at = |package: &str| package_field(op, package, None, false, None);
    match e {
        FilterError::Range {
            package, channel, ..
        } => package_field(op, package, channel.as_deref(), false, None),
        FilterError::RangeOnBoth { package, channel }
        | FilterError::MissingChannel {
            package, channel, ..
        } => package_field(op, package, Some(channel), false, None),
        FilterError::DuplicatePackage { package } => package_field(op, package, None, true, None),
        FilterError::MissingPackages { missing, .. } => {
            missing.first().map(|p| at(p)).unwrap_or_default()
        }
        FilterError::DefaultChannelNotKept { package, .. } => {
            package_field(op, package, None, false, Some("defaultChannel"))
        }
        FilterError::FullWithRange { package }
        | FilterError::BundleVersion { package, .. }
        | FilterError::NothingLeft { package, .. }
        | FilterError::DefaultChannelLost { package, .. }
        | FilterError::BadImage { package, .. } => at(package),
        _ => Vec::new(),
    }
}

pub(super) fn sqlite_field(op: &PullOperator, e: &SqliteError) -> Vec<Field> {
    match e {
        SqliteError::NotPackageLevel { package, .. } => {
            package_field(op, package, None, false, None)
        }
        SqliteError::DuplicatePackage { package } => package_field(op, package, None, true, None),
        SqliteError::MissingPackages { missing, .. } => missing
            .first()
            .map(|p| package_field(op, p, None, false, None))
            .unwrap_or_default(),
        SqliteError::Filter(e) => filter_field(op, e),
        _ => Vec::new(),
    }
}
