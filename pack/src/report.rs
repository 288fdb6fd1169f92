//! What ferry-pack prints: the `--plan` view, the bundle line, and the result of a run
//! (one line per volume on stdout, or JSON Lines events with `--json`, docs/events.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use format_spec::manifest::{BundleManifest, Encoding};
use format_spec::media::Kept;
use format_spec::pack::{self, Written};
use format_spec::plan::{Plan, VolumePlan};
use format_spec::room::{free_space, Shortfall};
use format_spec::size::human;

/// "bundle sha256:… — N volume(s) of at most …, … stored (… compressed with zstd), key …".
pub fn bundle_line(m: &BundleManifest, volume_size: u64) -> String {
    format!(
        "bundle {} — {} volume(s) of at most {}, {} stored ({} compressed with zstd{}), key {}",
        m.bundle_id,
        m.volume_count,
        human(volume_size),
        human(m.blobs.iter().map(|b| b.stored_size).sum()),
        m.blobs
            .iter()
            .filter(|b| b.encoding == Encoding::Zstd)
            .count(),
        if m.is_delta() {
            format!(
                "; {} left to the base",
                m.blobs
                    .iter()
                    .filter(|b| b.encoding == Encoding::Base)
                    .count()
            )
        } else {
            String::new()
        },
        m.key
    )
}

/// `--plan` when some volume has no room: the first that does not fit, and the arithmetic.
pub fn plan_does_not_fit(s: &Shortfall, outs: &[PathBuf]) -> String {
    format!(
        "the bundle does not fit the outputs given: volume {} onwards has no room ({}). Give more --out directories (one per disk), free space, or choose another --volume-size",
        s.volume,
        s.describe(outs)
    )
}

/// A run (not on a terminal, so no other medium can be asked for) whose volumes do not
/// fit: how much is to be written, where it fails, and what each output has free.
pub fn does_not_fit(selected: &[&VolumePlan], s: &Shortfall, outs: &[PathBuf]) -> String {
    let need: u64 = selected.iter().map(|v| v.file_size).sum();
    let free: Vec<String> = outs
        .iter()
        .map(|d| {
            format!(
                "{} ({} free)",
                d.display(),
                human(free_space(d).unwrap_or(0))
            )
        })
        .collect();
    format!(
        "the bundle does not fit: {} volume(s) to write, {} in all, and volume {} onwards has no room ({}; outputs: {}). Nothing was written. \
         Give more --out directories (one per disk), free space, or choose another --volume-size; --plan shows the layout",
        selected.len(),
        human(need),
        s.volume,
        s.describe(outs),
        free.join(", ")
    )
}

/// A finished run: the volumes written and kept, how many bytes, how long.
pub struct Done<'a> {
    pub manifest: &'a BundleManifest,
    pub written: &'a [Written],
    pub kept: &'a [&'a Kept],
    pub bytes_written: u64,
    pub seconds: f64,
}

impl Done<'_> {
    /// Every volume of the run, written or kept, by number: (volume, path, size, kept).
    fn all(&self) -> Vec<(u32, &Path, u64, bool)> {
        let mut all: Vec<(u32, &Path, u64, bool)> = self
            .written
            .iter()
            .map(|w| (w.volume, w.path.as_path(), w.size, false))
            .chain(
                self.kept
                    .iter()
                    .map(|k| (k.volume, k.path.as_path(), k.size, true)),
            )
            .collect();
        all.sort_by_key(|a| a.0);
        all
    }

    /// `--json`: a `volume_written` event per volume, then the `summary`.
    pub fn emit_json(&self) {
        let m = self.manifest;
        let all = self.all();
        let events = progress::Events::new(true);
        for (volume, path, size, kept) in &all {
            events.emit(
                "volume_written",
                &serde_json::json!({"path": path, "volume": volume, "size": size, "kept": kept}),
            );
        }
        events.emit(
            "summary",
            &serde_json::json!({
                "bundle_id": m.bundle_id, "volume_count": m.volume_count, "volumes_written": all.len(),
                "volumes_kept": self.kept.len(),
                "bytes_written": self.bytes_written, "key": m.key,
                "seconds": self.seconds,
            }),
        );
    }

    /// PATH<TAB>SIZE of every volume on stdout.
    pub fn print_volumes(&self) {
        let mut stdout = std::io::stdout().lock();
        for (_, path, size, _) in &self.all() {
            let _ = writeln!(stdout, "{}\t{}", path.display(), size);
        }
    }

    /// "wrote N volume(s) in …s; the standalone manifest … is beside them".
    pub fn summary_line(&self) -> String {
        format!(
            "wrote {} volume(s){} in {:.1}s; the standalone manifest {} is beside them",
            self.written.len(),
            if self.kept.is_empty() {
                String::new()
            } else {
                format!(", kept {} already complete", self.kept.len())
            },
            self.seconds,
            format_spec::volume::manifest_file_name(
                &self.manifest.bundle_id,
                self.manifest.ferry_bundle
            )
        )
    }
}

/// `--plan`: the layout, the split, whether it fits, and how long writing takes.
pub fn print_plan(
    plan: &Plan,
    selected: &[&VolumePlan],
    kept: &[&Kept],
    assignment: &[Option<usize>],
    outs: &[PathBuf],
    prepare_secs: f64,
    total: u64,
) {
    let m = &plan.manifest;
    let sum = |e: Encoding, f: fn(&format_spec::manifest::Blob) -> u64| -> u64 {
        m.blobs.iter().filter(|b| b.encoding == e).map(f).sum()
    };
    println!("bundle {}", m.bundle_id);
    println!(
        "{} volume(s) of at most {} ({} bytes):",
        m.volume_count,
        human(m.volume_size),
        m.volume_size
    );
    for k in kept {
        println!(
            "  volume {:>3}  {:>12}  already complete -> {} (kept)",
            k.volume,
            human(k.size),
            k.path.display()
        );
    }
    for (v, at) in selected.iter().zip(assignment) {
        let dest = match at {
            Some(i) => outs[*i].display().to_string(),
            None => "DOES NOT FIT".into(),
        };
        println!(
            "  volume {:>3}  {:>12}  {:>5} chunks  -> {dest}",
            v.volume,
            human(v.file_size),
            v.chunks.len()
        );
    }
    println!(
        "stored as is:     {} ({} blobs: gzip/zstd layers and what zstd would not shrink)",
        human(sum(Encoding::Raw, |b| b.stored_size)),
        m.blobs
            .iter()
            .filter(|b| b.encoding == Encoding::Raw)
            .count()
    );
    println!(
        "zstd-compressed:  {} from {} ({} blobs: configs, manifests, uncompressed layers)",
        human(sum(Encoding::Zstd, |b| b.stored_size)),
        human(sum(Encoding::Zstd, |b| b.size)),
        m.blobs
            .iter()
            .filter(|b| b.encoding == Encoding::Zstd)
            .count()
    );
    if m.is_delta() {
        println!(
            "left to the base: {} ({} blobs the inside already holds)",
            human(sum(Encoding::Base, |b| b.size)),
            m.blobs
                .iter()
                .filter(|b| b.encoding == Encoding::Base)
                .count()
        );
    }
    for (i, out) in outs.iter().enumerate() {
        let need: u64 = selected
            .iter()
            .zip(assignment)
            .filter(|(_, a)| **a == Some(i))
            .map(|(v, _)| v.file_size)
            .sum();
        println!(
            "output {}: {} free, {} planned there{}",
            out.display(),
            human(free_space(out).unwrap_or(0)),
            human(need),
            if need > 0 {
                format!(
                    " + {} for the bundle manifest and its signature",
                    human(pack::manifest_copy_size(plan))
                )
            } else {
                String::new()
            }
        );
    }
    let bytes: u64 = selected.iter().map(|v| v.file_size).sum();
    if assignment.iter().any(Option::is_none) {
        println!("does not fit the outputs given: give more --out directories (one per disk) or more space");
    }
    let at = |mbps: f64| {
        let s = bytes as f64 / (mbps * 1e6);
        if s >= 120.0 {
            format!("{:.0} min", s / 60.0)
        } else {
            format!("{s:.0} s")
        }
    };
    println!(
        "expected time: sizing what zstd compresses took {prepare_secs:.1}s for a {} mirror here; writing {} takes about {} at 30 MB/s (USB 2), {} at 100 MB/s (USB 3 stick), {} at 400 MB/s (SSD)",
        human(total),
        human(bytes),
        at(30.0),
        at(100.0),
        at(400.0)
    );
}
