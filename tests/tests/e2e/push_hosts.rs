//! Several hosts at once (issue 13 item 6): three `ferry-unpack push` processes, each with its
//! own `--state` directory, push into one registry at the same time — each given its own
//! disks of one bundle, or all of them (the same images racing). While they run a checker
//! reads every tag the registry lists and fails on one that names an incomplete image; at
//! the end, after at most one more run of each push that said images wait, skopeo reads
//! every image by tag and by digest.
//!
//! Run `cargo build -p pack -p unpack` first (see tests/src/lib.rs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tests::faults::{assert_exactly_the_images, expected_images, Skopeo};
use tests::registry::*;
use tests::*;

/// The oc-mirror fixture (six images sharing a base layer, a two-platform fluentd list) in
/// volumes this small: several disks, blobs and the fluentd children spread over them.
const VOLUME_SIZE: &str = "64KiB";

/// One host's push: its disks (of `site`'s bundle) and its own state directory.
struct Host<'a> {
    site: &'a Site,
    name: &'static str,
    volumes: Vec<PathBuf>,
    state: PathBuf,
}

impl Host<'_> {
    fn args(&self, to: &str) -> Vec<std::ffi::OsString> {
        let site = self.site;
        let mut a: Vec<std::ffi::OsString> = vec!["push".into()];
        a.extend(self.volumes.iter().map(|v| v.clone().into_os_string()));
        a.extend([
            "--trust".into(),
            site.key.public.clone().into_os_string(),
            "--to".into(),
            to.into(),
            "--insecure".into(),
            "--state".into(),
            self.state.clone().into_os_string(),
            "--manifests-dir".into(),
            site.path(&format!("manifests-{}", self.name)).into(),
        ]);
        a
    }
}

/// Starts every host's push at once and waits for all of them.
fn push_all_at_once(hosts: &[Host], to: &str) -> Vec<Output> {
    let children: Vec<_> = hosts
        .iter()
        .map(|h| {
            h.site
                .sandbox
                .command(h.args(to))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn push of {}: {e}", h.name))
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for push"))
        .collect()
}

/// A push that ended: 0 (all in) or 3 (some images wait on volumes not given, and it says
/// which). Returns whether it said images wait.
#[track_caller]
fn ended_well(out: &Output, what: &str) -> bool {
    match out.status.code() {
        Some(0) => false,
        Some(3) => {
            assert_mentions(out, &["waits on volume"], what);
            true
        }
        _ => panic!("{what}: neither complete nor waiting\n{}", out.dump()),
    }
}

/// The pushes of `hosts` at once, a checker reading the registry's tags throughout, then one
/// more run of each push that said images wait; ends with every image whole in the registry.
fn hosts_at_once(hosts: &[Host]) {
    let reg = Registry::plain();
    let to = format!("{}/efk", reg.host());
    let mut expected = BTreeMap::new();
    for h in hosts {
        for (tag, digest) in expected_images(&h.site.out, &h.site.key.public, "efk") {
            let before = expected.insert(tag.clone(), digest.clone());
            assert!(
                before.is_none() || before == Some(digest),
                "{tag}: two bundles disagree"
            );
        }
    }
    let done = AtomicBool::new(false);
    let checks = AtomicUsize::new(0);
    let seen = Mutex::new(Vec::new());
    let second = std::thread::scope(|s| {
        // Stops the checker however the pushes end (a failed assertion included).
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let checker = s.spawn(|| {
            // Every listed tag must name a complete image (manifest, children, configs and
            // layers there, in its repository) with the bundle's digest, at every moment.
            while !done.load(Ordering::SeqCst) {
                let tagged = reg
                    .tagged_images_and_dangling()
                    .unwrap_or_else(|e| panic!("during the pushes: {e}"));
                for (tag, digest) in &tagged.0 {
                    assert_eq!(expected.get(tag), Some(digest), "{tag} during the pushes");
                }
                seen.lock().unwrap().push(tagged.0.len());
                checks.fetch_add(1, Ordering::SeqCst);
            }
        });
        let stop = Done(&done);
        let first = push_all_at_once(hosts, &to);
        let waited: Vec<&Host> = hosts
            .iter()
            .zip(&first)
            .filter(|(h, out)| ended_well(out, &format!("first push of {}", h.name)))
            .map(|(h, _)| h)
            .collect();
        // At most one more run of the pushes that said images wait, again all at once:
        // it finishes them, whatever order they go in.
        let again: Vec<Host> = waited
            .iter()
            .map(|h| Host {
                site: h.site,
                name: h.name,
                volumes: h.volumes.clone(),
                state: h.state.clone(),
            })
            .collect();
        for (h, out) in again.iter().zip(push_all_at_once(&again, &to)) {
            assert_ok(&out, &format!("second push of {}", h.name));
        }
        drop(stop);
        checker
            .join()
            .expect("the checker saw a tag on an incomplete image (its panic is above)");
        again.iter().map(|h| h.name).collect::<Vec<_>>()
    });
    assert!(
        checks.load(Ordering::SeqCst) >= 2,
        "the checker ran while the pushes did"
    );
    eprintln!(
        "{} checks of the tags (tagged images seen: {:?}); pushed again: {second:?}",
        checks.load(Ordering::SeqCst),
        seen.lock().unwrap()
    );
    assert_exactly_the_images(&reg, &expected, "after the pushes", Skopeo::All);
    // And by digest, every image (a list's children were checked whole above).
    for (tag, digest) in &expected {
        let repo = tag.rsplit_once(':').expect("repo:tag").0;
        let by_digest = format!("{}/{repo}@{digest}", reg.host());
        assert_eq!(
            &skopeo_digest(&by_digest, &["--tls-verify=false"]),
            digest,
            "{by_digest}"
        );
    }
}

/// `site`'s disks dealt to `n` hosts as README's "Several hosts at once" says: each a run of
/// consecutive disks, and the disks on which a blob that starts on its last one continues.
fn deal(site: &Site, n: usize) -> Vec<Vec<PathBuf>> {
    let vols = site.volumes();
    let (_, manifest) = standalone_manifest(&site.out);
    let spans: Vec<(usize, usize)> = manifest["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .map(|b| {
            let n = |k: &str| usize::try_from(b[k].as_u64().expect("volume")).expect("fits");
            (n("first_volume"), n("last_volume"))
        })
        .collect();
    let per_host = vols.len().div_ceil(n);
    (0..n)
        .map(|k| {
            let first = k * per_host + 1;
            let own_last = ((k + 1) * per_host).min(vols.len());
            let last = spans
                .iter()
                .filter(|(f, _)| (first..=own_last).contains(f))
                .map(|&(_, l)| l)
                .max()
                .unwrap_or(own_last)
                .max(own_last);
            vols[first - 1..last].to_vec()
        })
        .collect()
}

#[test]
fn three_hosts_pushing_different_disks_at_once_end_with_every_image_whole() {
    let site = Site::pack(&fixture("oc-mirror"), VOLUME_SIZE);
    let vols = site.volumes();
    assert!(vols.len() >= 3, "want at least three disks: {vols:?}");
    let runs = deal(&site, 3);
    let hosts: Vec<Host> = ["a", "b", "c"]
        .into_iter()
        .zip(runs)
        .map(|(name, volumes)| Host {
            site: &site,
            name,
            volumes,
            state: site.tmp.path().join(format!("state-{name}")),
        })
        .collect();
    eprintln!(
        "disks: {:?}",
        hosts.iter().map(|h| h.volumes.len()).collect::<Vec<_>>()
    );
    hosts_at_once(&hosts);
}

#[test]
fn three_hosts_pushing_the_same_disks_at_once_end_with_every_image_whole() {
    let site = Site::pack(&fixture("oc-mirror"), VOLUME_SIZE);
    let hosts: Vec<Host> = ["a", "b", "c"]
        .into_iter()
        .map(|name| Host {
            site: &site,
            name,
            volumes: site.volumes(),
            state: site.tmp.path().join(format!("state-{name}")),
        })
        .collect();
    hosts_at_once(&hosts);
}

/// Two bundles at once: the oc-mirror fixture's disks on two hosts, and a bundle of the oci
/// fixture (images of the same shape, built from the same base layers) on a third, all into
/// one registry.
#[test]
fn three_hosts_pushing_two_bundles_at_once_end_with_every_image_whole() {
    let efk = Site::pack(&fixture("oc-mirror"), VOLUME_SIZE);
    let oci = Site::pack(&fixture("oci"), VOLUME_SIZE);
    let [first, second] = <[Vec<PathBuf>; 2]>::try_from(deal(&efk, 2)).expect("two runs");
    let hosts = [
        Host {
            site: &efk,
            name: "a",
            volumes: first,
            state: efk.tmp.path().join("state-a"),
        },
        Host {
            site: &efk,
            name: "b",
            volumes: second,
            state: efk.tmp.path().join("state-b"),
        },
        Host {
            site: &oci,
            name: "c",
            volumes: oci.volumes(),
            state: oci.tmp.path().join("state-c"),
        },
    ];
    hosts_at_once(&hosts);
}
