//! The push tests' side of the registry: the registry itself is the kit's
//! ([`test_support::registry`], re-exported here), and this module adds what only ferry's
//! tests need: a sandbox for `ferry-unpack`, the oc-mirror fixture's images as a push
//! should leave them, a packed site to push from, and `push --json` read back.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

pub use test_support::registry::*;

use crate::{tempdir, OutputExt};

// ---------------------------------------------------------------------------------------
// Running ferry-unpack apart from the developer's environment

/// A scratch home for `ferry-unpack`: it runs there (the default manifests directory is
/// relative), with HOME and XDG_* inside it and no auth file, proxy or state of the
/// developer's leaking in.
pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(dir: &Path) -> Sandbox {
        let dir = dir.join("sandbox");
        std::fs::create_dir_all(dir.join("home")).expect("mkdir sandbox");
        Sandbox { dir }
    }

    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command_of(crate::ferry_unpack_bin(), args)
    }

    /// `ferry-pack ARGS` in the sandbox, as [`Sandbox::command`] runs ferry-unpack: what
    /// the pull tests run (`ferry-pack pull …`), so that no auth file, credential helper,
    /// registries.conf or proxy of the developer's can answer for the test's.
    pub fn pack_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command_of(crate::ferry_pack_bin(), args)
    }

    fn command_of<I, S>(&self, program: PathBuf, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(program);
        c.args(args).current_dir(&self.dir);
        for v in [
            "REGISTRY_AUTH_FILE",
            "CONTAINERS_REGISTRIES_CONF",
            "CONTAINERS_AUTH_FILE",
            "DOCKER_CONFIG",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
            "SOURCE_DATE_EPOCH",
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        c.env("HOME", self.dir.join("home"));
        c
    }

    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        crate::run_command(&mut self.command(args))
    }

    pub fn run_env<I, S>(&self, args: I, env: &[(&str, &OsStr)]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        crate::run_command(&mut c)
    }
}

// ---------------------------------------------------------------------------------------
// The oc-mirror fixture as a push should leave it

/// One of the six images, as `fixtures/oc-mirror/.../mapping.txt` records its origin.
pub struct OriginalImage {
    /// The reference it was mirrored from (`mapping.txt` left side).
    pub source: &'static str,
    /// Its repository path at the source, without the registry: where a push puts it
    /// under the `--to` prefix.
    pub path: &'static str,
    /// The tag the mirror gave it (oc's FNV-32a tag for digest-only sources).
    pub tag: &'static str,
    pub digest: &'static str,
    /// The source pulled it by tag (so an ImageTagMirrorSet must name it too).
    pub by_tag: bool,
}

impl OriginalImage {
    /// `registry.redhat.io/openshift4/ose-x`: a mirror set's `source`.
    pub fn source_repository(&self) -> &'static str {
        let end = self.source.find('@').unwrap_or_else(|| {
            let slash = self.source.rfind('/').expect("a path");
            slash + self.source[slash..].find(':').expect("a tag")
        });
        &self.source[..end]
    }
}

pub const ORIGINAL_IMAGES: [OriginalImage; 6] = [
    OriginalImage {
        source: "registry.example.com:5000/my-operator/my-operator-index:v1",
        path: "my-operator/my-operator-index",
        tag: "v1",
        digest: "sha256:e12b2ade23232d56f3870bd31732b064540cb4c204dcd4555846be0c44996124",
        by_tag: true,
    },
    OriginalImage {
        source: "registry.redhat.io/openshift4/ose-elasticsearch-operator:v4.6",
        path: "openshift4/ose-elasticsearch-operator",
        tag: "v4.6",
        digest: "sha256:b9dce18ae0e4fb237ac76ff3051431a83476269408639faf1a672474dfeff292",
        by_tag: true,
    },
    OriginalImage {
        source: "registry.redhat.io/openshift4/ose-elasticsearch-operator-bundle@sha256:a51f0ec8d7063a8a19592bfd391f9e1afc740adfc31e436f0e746d33121380b2",
        path: "openshift4/ose-elasticsearch-operator-bundle",
        tag: "d8b93495",
        digest: "sha256:a51f0ec8d7063a8a19592bfd391f9e1afc740adfc31e436f0e746d33121380b2",
        by_tag: false,
    },
    OriginalImage {
        source: "registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6",
        path: "openshift4/ose-elasticsearch-proxy",
        tag: "v4.6",
        digest: "sha256:239bcd202d2332541948d67d5864c9d34a21fee1d7626e6ce174e7da73e0f218",
        by_tag: true,
    },
    OriginalImage {
        source: "registry.redhat.io/openshift4/ose-logging-fluentd:v4.6",
        path: "openshift4/ose-logging-fluentd",
        tag: "v4.6",
        digest: "sha256:254625cd8a35cbd0e1fa7b06c202155d6e6b6852320db6340913814a5c33f18e",
        by_tag: true,
    },
    OriginalImage {
        source: "registry.redhat.io/openshift4/ose-oauth-proxy@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
        path: "openshift4/ose-oauth-proxy",
        tag: "4da28fba",
        digest: "sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81",
        by_tag: false,
    },
];

/// A packed bundle and what pushing it needs: key, volumes, a sandbox to run in, a state
/// directory of its own.
pub struct Site {
    pub tmp: TempDir,
    pub key: crate::Key,
    /// `--out` of ferry-pack: the volumes and the standalone manifest.
    pub out: PathBuf,
    pub sandbox: Sandbox,
    pub state: PathBuf,
}

impl Site {
    /// `ferry-pack MIRROR --volume-size SIZE` into a fresh temporary directory.
    pub fn pack(mirror: &Path, size: &str) -> Site {
        let tmp = tempdir();
        let key = crate::keygen(tmp.path(), "site.key");
        let out = tmp.path().join("vols");
        crate::pack_ok(mirror, &out, size, &key, &[]);
        let sandbox = Sandbox::new(tmp.path());
        let state = tmp.path().join("state");
        Site {
            tmp,
            key,
            out,
            sandbox,
            state,
        }
    }

    pub fn volumes(&self) -> Vec<PathBuf> {
        crate::volumes(&self.out)
    }

    /// A path in this site's temporary directory (for manifests dirs and the like), as
    /// text for an argument list.
    pub fn path(&self, name: &str) -> String {
        self.tmp
            .path()
            .join(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_owned()
    }

    /// `ferry-unpack push VOLS --trust PUB --to TO --state STATE EXTRA…`.
    pub fn push_args(&self, vols: &[PathBuf], to: &str, extra: &[&str]) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec!["push".into()];
        a.extend(vols.iter().map(|v| v.clone().into_os_string()));
        a.extend([
            "--trust".into(),
            self.key.public.clone().into_os_string(),
            "--to".into(),
            to.into(),
            "--state".into(),
            self.state.clone().into_os_string(),
        ]);
        a.extend(extra.iter().map(|e| e.into()));
        a
    }

    /// Pushes every volume (the `--out` directory).
    pub fn push(&self, to: &str, extra: &[&str]) -> Output {
        self.sandbox
            .run(self.push_args(std::slice::from_ref(&self.out), to, extra))
    }

    pub fn push_volumes(&self, vols: &[PathBuf], to: &str, extra: &[&str]) -> Output {
        self.sandbox.run(self.push_args(vols, to, extra))
    }

    /// `ferry-unpack receipt OUT --trust PUB --to TO EXTRA…`.
    pub fn receipt(&self, to: &str, extra: &[&str]) -> Output {
        let mut a: Vec<&OsStr> = vec![
            OsStr::new("receipt"),
            self.out.as_os_str(),
            OsStr::new("--trust"),
            self.key.public.as_os_str(),
            OsStr::new("--to"),
            OsStr::new(to),
        ];
        a.extend(extra.iter().map(OsStr::new));
        self.sandbox.run(a)
    }
}

/// What `push --json` reported: the totals and every image's outcome.
pub struct PushReport {
    pub totals: Value,
    /// One object per image: `image`, `destination`, `digest`, `tags`, `status`, ….
    pub images: Vec<Value>,
}

/// Reads `push --json` output: the JSON Lines event stream (`image` events and the final
/// `summary`), or the single `{"report": …}` object that earlier versions printed.
#[track_caller]
pub fn push_report(out: &Output) -> PushReport {
    let text = out.stdout_text();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        if let Some(r) = v.get("report") {
            return PushReport {
                totals: r["totals"].clone(),
                images: r["images"].as_array().cloned().unwrap_or_default(),
            };
        }
    }
    let events: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("--json line is not JSON ({e}): {l}\n{}", out.dump()))
        })
        .collect();
    let summary = events
        .iter()
        .rev()
        .find(|e| e["type"] == "summary")
        .unwrap_or_else(|| panic!("--json printed no summary\n{}", out.dump()));
    PushReport {
        totals: summary["totals"].clone(),
        images: events
            .iter()
            .filter(|e| e["type"] == "image")
            .cloned()
            .collect(),
    }
}
