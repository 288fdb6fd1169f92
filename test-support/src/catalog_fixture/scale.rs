//! The benchmark's catalog (issue 12 "Must reach"): N packages × M bundles (500 × 10 =
//! 5,000 by default) with `olm.bundle.object` data sized so the FBC JSON is over 100 MB,
//! built as an FBC catalog image (an index of linux/amd64 and linux/arm64, base +
//! configs + cache layers, as [`super::generate`] builds one). Bundle and related images
//! are named by digest; only those of the channel heads of the first
//! [`ScaleOptions::real_packages`] packages (and the shared proxy) are built, so a pull of
//! those packages can fetch everything it needs while the catalog stays 5,000 bundles.
//!
//! Streamed: each package's file is made, written into the layer and dropped, so the
//! generator's memory stays that of one package.

use std::io;
use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use super::layout::{sha256, Layout, AMD64, ARM64};
use super::{base_layer, cache_layer, fbc_config, record, small_image, FixtureImage, REGISTRY};

#[derive(Debug, Clone)]
pub struct ScaleOptions {
    pub packages: usize,
    pub bundles_per_package: usize,
    /// Bytes of filler in each bundle's `olm.bundle.object` before base64 (×4/3 in JSON).
    pub object_bytes: usize,
    pub seed: u64,
    /// `org.opencontainers.image.ref.name` of the catalog in the layout.
    pub ref_name: String,
    /// Packages (the first ones) whose head bundle's images are built.
    pub real_packages: usize,
}

impl Default for ScaleOptions {
    fn default() -> ScaleOptions {
        ScaleOptions {
            packages: 500,
            bundles_per_package: 10,
            // 5,000 × 16 KiB × 4/3 = 109 MB of base64, plus the rest of each object.
            object_bytes: 16 * 1024,
            seed: 12,
            ref_name: "scale-index-v1".to_owned(),
            real_packages: 10,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    pub packages: usize,
    pub bundles: usize,
    /// The uncompressed size of every `catalog.json`.
    pub json_bytes: u64,
    /// The catalog image's index digest.
    pub digest: String,
    pub ref_name: String,
    /// Its configs layer (compressed size).
    pub configs_layer_size: u64,
    /// The package names, sorted.
    pub package_names: Vec<String>,
    /// The images built besides the catalog (to push beside it).
    pub images: Vec<FixtureImage>,
}

/// `pkg-0000`, … : the name of package `i`.
pub fn package_name(i: usize) -> String {
    format!("pkg-{i:04}")
}

/// Writes the catalog as an OCI layout at `dir`.
pub fn generate(dir: &Path, opts: &ScaleOptions) -> io::Result<ScaleReport> {
    let mut layout = Layout::create(dir)?;
    let mut rng = SplitMix64(opts.seed);
    let mut images = Vec::new();
    let proxy = small_image(&layout, "kube-rbac-proxy", "scale", &[AMD64, ARM64], true)?;
    let proxy = record(&mut layout, "fixture/scale/kube-rbac-proxy", None, proxy)?;
    let proxy_ref = proxy.reference.clone();
    images.push(proxy);
    let mut w = layout.layer_writer()?;
    w.dir("configs/")?;
    let mut json_bytes = 0u64;
    let mut names = Vec::new();
    for i in 0..opts.packages {
        let package = package_name(i);
        // The head's images, built for the first packages (what the bench pulls).
        let head_images = if i < opts.real_packages && opts.bundles_per_package > 0 {
            let version = format!("1.0.{}", opts.bundles_per_package - 1);
            let op = small_image(&layout, &package, &version, &[AMD64], false)?;
            let op = record(&mut layout, &format!("fixture/scale/{package}"), None, op)?;
            let bundle = small_image(
                &layout,
                &format!("{package}-bundle"),
                &version,
                &[AMD64],
                false,
            )?;
            let bundle = record(
                &mut layout,
                &format!("fixture/scale/{package}-bundle"),
                None,
                bundle,
            )?;
            let refs = (bundle.reference.clone(), op.reference.clone());
            images.extend([bundle, op]);
            Some(refs)
        } else {
            None
        };
        let file = package_file(&package, opts, &mut rng, &proxy_ref, head_images)?;
        json_bytes += file.len() as u64;
        w.dir(&format!("configs/{package}/"))?;
        w.file(&format!("configs/{package}/catalog.json"), 0o644, &file)?;
        names.push(package);
    }
    let configs = w.finish()?;
    let cache = cache_layer(&layout, &configs.descriptor.digest)?;
    let mut children = Vec::new();
    for p in [AMD64, ARM64] {
        let base = base_layer(&layout, p)?;
        children.push((
            layout.image(p, &[base, configs.clone(), cache.clone()], &fbc_config())?,
            p,
        ));
    }
    let index = layout.index(&children)?;
    layout.name(&opts.ref_name, &index);
    layout.finish()?;
    Ok(ScaleReport {
        packages: opts.packages,
        bundles: opts.packages * opts.bundles_per_package,
        json_bytes,
        digest: index.digest,
        ref_name: opts.ref_name.clone(),
        configs_layer_size: configs.descriptor.size,
        package_names: names,
        images,
    })
}

/// One package's `catalog.json`: the package, channels `stable` (every bundle, a
/// `replaces` chain) and `fast` (the last three), and its bundles.
/// `head_images`: the (bundle, operator) references of the head when they were built.
fn package_file(
    package: &str,
    opts: &ScaleOptions,
    rng: &mut SplitMix64,
    proxy: &str,
    head_images: Option<(String, String)>,
) -> io::Result<Vec<u8>> {
    let n = opts.bundles_per_package;
    let bundle = |j: usize| format!("{package}.v1.0.{j}");
    let entries = |from: usize| -> Vec<Value> {
        (from..n)
            .map(|j| {
                let mut e = json!({"name": bundle(j)});
                if j > 0 {
                    e["replaces"] = Value::from(bundle(j - 1));
                }
                e
            })
            .collect()
    };
    let mut docs = vec![
        json!({"schema": "olm.package", "name": package, "defaultChannel": "stable"}),
        json!({"schema": "olm.channel", "package": package, "name": "stable", "entries": entries(0)}),
    ];
    if n > 3 {
        docs.push(json!({"schema": "olm.channel", "package": package, "name": "fast", "entries": entries(n - 3)}));
    }
    let reference = |repo: &str, what: &str| {
        format!(
            "{REGISTRY}/fixture/scale/{repo}@{}",
            sha256(what.as_bytes())
        )
    };
    for j in 0..n {
        let name = bundle(j);
        let mut filler = vec![0u8; opts.object_bytes];
        rng.fill(&mut filler);
        let data = base64::engine::general_purpose::STANDARD.encode(&filler);
        let (image, operator) = match (&head_images, j + 1 == n) {
            (Some((b, o)), true) => (b.clone(), o.clone()),
            _ => (
                reference(&format!("{package}-bundle"), &name),
                reference(package, &name),
            ),
        };
        docs.push(json!({
            "schema": "olm.bundle",
            "name": name,
            "package": package,
            "image": image,
            "properties": [
                {"type": "olm.package", "value": {"packageName": package, "version": format!("1.0.{j}")}},
                {"type": "olm.gvk", "value": {"group": format!("{package}.scale.io"), "version": "v1", "kind": "Thing"}},
                {"type": "olm.bundle.object", "value": {"data": data}},
            ],
            "relatedImages": [
                {"name": "", "image": image},
                {"name": "operator", "image": operator},
                {"name": "proxy", "image": proxy},
            ],
        }));
    }
    let mut out = Vec::new();
    for d in &docs {
        out.extend(serde_json::to_vec_pretty(d).map_err(io::Error::other)?);
        out.push(b'\n');
    }
    Ok(out)
}

/// A small seeded generator (SplitMix64): filler that gzip cannot shrink away, the same
/// for the same seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
