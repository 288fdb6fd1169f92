//! The synthetic catalog's content, as tables (fixtures/README.md "Operator catalogs"
//! describes them and what each selection rule keeps).
//!
//! Every bundle has the same `replaces`, `skips` and `skipRange` in each channel it is in,
//! as a SQLite index can only say (its `operatorbundle` row holds them), so the FBC and
//! the SQLite catalog have the same listing.

/// `group/version/kind`.
pub type Gvk = (&'static str, &'static str, &'static str);

/// How a package's file is written under `configs/<package>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Json,
    Yaml,
}

pub struct PackageSpec {
    pub name: &'static str,
    pub default_channel: &'static str,
    pub channels: &'static [&'static str],
    pub file: FileKind,
    /// APIs every bundle of the package provides (`olm.gvk`).
    pub provides: &'static [Gvk],
    /// `olm.deprecations` entries: (schema, name, message); name "" for the package.
    pub deprecations: &'static [(&'static str, &'static str, &'static str)],
    /// Its operator images are indexes of linux/amd64 and linux/arm64.
    pub multi_arch_operator: bool,
    /// Its bundle images are indexes of linux/amd64 and linux/arm64.
    pub multi_arch_bundle: bool,
}

/// A related image beyond the bundle's own operator image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// `fixture/kube-rbac-proxy@sha256:…`, shared by several bundles (multi-arch).
    Proxy,
    /// `fixture/tagged-helper:v1`: the one related image given by tag.
    Tagged,
    /// `fixture/zeta-operand@sha256:…`, what the `--allow-missing` test leaves out.
    ZetaOperand,
}

pub struct BundleSpec {
    pub package: &'static str,
    pub version: &'static str,
    /// The version of the bundle it replaces.
    pub replaces: Option<&'static str>,
    /// Versions of the bundles it skips.
    pub skips: &'static [&'static str],
    pub skip_range: Option<&'static str>,
    pub channels: &'static [&'static str],
    /// `olm.package.required`: (package, versionRange).
    pub requires_packages: &'static [(&'static str, &'static str)],
    /// `olm.gvk.required`.
    pub requires_gvks: &'static [Gvk],
    pub extra: &'static [Extra],
}

impl BundleSpec {
    pub fn name(&self) -> String {
        bundle_name(self.package, self.version)
    }
}

/// `<package>.v<version>`, as operator bundles are named.
pub fn bundle_name(package: &str, version: &str) -> String {
    format!("{package}.v{version}")
}

pub const WIDGET: Gvk = ("alpha.fixture.io", "v1", "Widget");
pub const GADGET: Gvk = ("gamma.fixture.io", "v1", "Gadget");
pub const THING: Gvk = ("epsilon.fixture.io", "v1beta1", "Thing");

pub const PACKAGES: &[PackageSpec] = &[
    PackageSpec {
        name: "alpha-operator",
        default_channel: "stable",
        channels: &["candidate", "fast", "stable"],
        file: FileKind::Json,
        provides: &[WIDGET],
        deprecations: &[
            (
                "olm.channel",
                "candidate",
                "candidate is going away: use fast",
            ),
            (
                "olm.bundle",
                "alpha-operator.v1.0.0",
                "alpha-operator 1.0.0 is deprecated: upgrade to 1.2",
            ),
        ],
        multi_arch_operator: true,
        multi_arch_bundle: false,
    },
    PackageSpec {
        name: "beta-operator",
        default_channel: "stable-v2",
        channels: &["stable-v1", "stable-v2"],
        file: FileKind::Json,
        provides: &[],
        deprecations: &[],
        multi_arch_operator: false,
        multi_arch_bundle: false,
    },
    PackageSpec {
        name: "delta-operator",
        default_channel: "stable",
        channels: &["eus", "stable"],
        file: FileKind::Json,
        provides: &[],
        deprecations: &[],
        multi_arch_operator: false,
        multi_arch_bundle: false,
    },
    PackageSpec {
        name: "epsilon-operator",
        default_channel: "stable",
        channels: &["stable"],
        file: FileKind::Yaml,
        provides: &[THING],
        deprecations: &[(
            "olm.package",
            "",
            "epsilon-operator is deprecated: it will leave the catalog",
        )],
        multi_arch_operator: false,
        multi_arch_bundle: true,
    },
    PackageSpec {
        name: "gamma-operator",
        default_channel: "preview",
        channels: &["preview"],
        file: FileKind::Json,
        provides: &[GADGET],
        deprecations: &[],
        multi_arch_operator: false,
        multi_arch_bundle: false,
    },
    PackageSpec {
        name: "zeta-operator",
        default_channel: "stable",
        channels: &["stable"],
        file: FileKind::Json,
        provides: &[],
        deprecations: &[],
        multi_arch_operator: false,
        multi_arch_bundle: false,
    },
];

const fn b(
    package: &'static str,
    version: &'static str,
    replaces: Option<&'static str>,
    skips: &'static [&'static str],
    channels: &'static [&'static str],
) -> BundleSpec {
    BundleSpec {
        package,
        version,
        replaces,
        skips,
        skip_range: None,
        channels,
        requires_packages: &[],
        requires_gvks: &[],
        extra: &[],
    }
}

pub const BUNDLES: &[BundleSpec] = &[
    // alpha: stable 1.0.0 → 1.1.0 → 1.2.0 (skips 1.1.1, skipRange); fast adds 1.1.1 and
    // 2.0.0; candidate 2.0.0 → 2.1.0.
    BundleSpec {
        extra: &[Extra::Proxy],
        ..b("alpha-operator", "1.0.0", None, &[], &["fast", "stable"])
    },
    BundleSpec {
        extra: &[Extra::Proxy],
        ..b(
            "alpha-operator",
            "1.1.0",
            Some("1.0.0"),
            &[],
            &["fast", "stable"],
        )
    },
    b("alpha-operator", "1.1.1", Some("1.1.0"), &[], &["fast"]),
    BundleSpec {
        skip_range: Some(">=1.0.0 <1.2.0"),
        extra: &[Extra::Proxy],
        ..b(
            "alpha-operator",
            "1.2.0",
            Some("1.1.0"),
            &["1.1.1"],
            &["fast", "stable"],
        )
    },
    BundleSpec {
        extra: &[Extra::Proxy],
        ..b(
            "alpha-operator",
            "2.0.0",
            Some("1.2.0"),
            &[],
            &["candidate", "fast"],
        )
    },
    b(
        "alpha-operator",
        "2.1.0",
        Some("2.0.0"),
        &[],
        &["candidate"],
    ),
    // beta: stable-v1 1.0.0 → 1.1.0; stable-v2 2.0.0 → 2.1.0 (skipRange), 2.x needs alpha
    // (by package and version range) and gamma's Gadget (by API).
    b("beta-operator", "1.0.0", None, &[], &["stable-v1"]),
    b("beta-operator", "1.1.0", Some("1.0.0"), &[], &["stable-v1"]),
    BundleSpec {
        requires_packages: &[("alpha-operator", ">=1.2.0 <3.0.0")],
        ..b("beta-operator", "2.0.0", Some("1.1.0"), &[], &["stable-v2"])
    },
    BundleSpec {
        skip_range: Some(">=1.0.0 <2.1.0"),
        requires_packages: &[("alpha-operator", ">=1.2.0 <3.0.0")],
        requires_gvks: &[GADGET],
        ..b("beta-operator", "2.1.0", Some("2.0.0"), &[], &["stable-v2"])
    },
    // delta: a long stable chain for version ranges; eus 3.0.0 and 3.2.0 (which skips
    // 3.0.0).
    b("delta-operator", "3.0.0", None, &[], &["eus", "stable"]),
    b("delta-operator", "3.1.0", Some("3.0.0"), &[], &["stable"]),
    b("delta-operator", "3.1.1", Some("3.1.0"), &[], &["stable"]),
    BundleSpec {
        extra: &[Extra::Proxy],
        ..b(
            "delta-operator",
            "3.2.0",
            Some("3.1.1"),
            &["3.0.0"],
            &["eus", "stable"],
        )
    },
    b("delta-operator", "3.3.0", Some("3.2.0"), &[], &["stable"]),
    b("delta-operator", "3.3.1", Some("3.3.0"), &[], &["stable"]),
    BundleSpec {
        skip_range: Some(">=3.3.0 <3.4.0"),
        ..b(
            "delta-operator",
            "3.4.0",
            Some("3.3.0"),
            &["3.3.1"],
            &["stable"],
        )
    },
    // epsilon (a YAML file, multi-arch bundle images, a deprecated package).
    b("epsilon-operator", "0.9.0", None, &[], &["stable"]),
    BundleSpec {
        requires_gvks: &[WIDGET],
        ..b("epsilon-operator", "1.0.0", Some("0.9.0"), &[], &["stable"])
    },
    // gamma: 0.3.0 replaces 0.1.0 and skips 0.2.0; it names the tagged helper.
    b("gamma-operator", "0.1.0", None, &[], &["preview"]),
    b("gamma-operator", "0.2.0", Some("0.1.0"), &[], &["preview"]),
    BundleSpec {
        extra: &[Extra::Tagged],
        ..b(
            "gamma-operator",
            "0.3.0",
            Some("0.1.0"),
            &["0.2.0"],
            &["preview"],
        )
    },
    // zeta: one bundle with one more operand (left out by the --allow-missing test).
    BundleSpec {
        extra: &[Extra::ZetaOperand],
        ..b("zeta-operator", "1.0.0", None, &[], &["stable"])
    },
];

pub fn package(name: &str) -> &'static PackageSpec {
    PACKAGES
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no package {name} in the fixture"))
}

/// The bundles of `package`, in table order (lowest version first).
pub fn bundles_of(package: &str) -> impl Iterator<Item = &'static BundleSpec> + '_ {
    BUNDLES.iter().filter(move |b| b.package == package)
}
