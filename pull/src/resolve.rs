//! From a reference to the manifests of an image: a tag is resolved to a digest (`HEAD`,
//! then `GET` only for manifests the cache lacks), an index is cut to the children of the
//! platforms asked for, and every manifest kept is stored in the cache. A reference by
//! digest whose manifests are all cached is resolved without asking any registry, so that
//! a second run over a full cache is cheap.
//!
//! Endpoints are tried in registries.conf's order (mirrors, then the registry): one that
//! cannot be reached, has no such manifest or keeps failing gives way to the next, and when
//! all fail the [`Failure`] names each with its own error. What is wrong with the image
//! itself (Docker schema 1, no child for the platforms, not a manifest) is said at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use imageset::{Platform, PullImage};
use oci::manifest::{self, ManifestError};
use oci::{media_type, Descriptor, Digest};
use registry_client::registries_conf::Endpoint;
use registry_client::{Client, RegistryError, MAX_MANIFEST_BYTES};

use crate::cache::Cache;
use crate::error::{PullError, RunStop};
use crate::event::Event;
use crate::options::Options;
use crate::plan::{Failure, ResolvedImage};
use crate::sources::{self, endpoint_name, every_endpoint, Attempt, Sources};

/// Index inside index inside index: deeper than any real image; a loop is refused.
const MAX_DEPTH: usize = 4;

/// Why resolving at one endpoint stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// This endpoint failed (unreachable, 404, 5xx after retries, refused): try the next.
    Endpoint(String),
    /// The image itself cannot be carried: every endpoint would say the same.
    Final(String),
    /// (Resolving from the cache alone) a manifest is not cached: ask a registry.
    NotCached,
    Cancelled,
    Run(PullError),
}

impl From<RegistryError> for Stop {
    fn from(e: RegistryError) -> Stop {
        match e {
            RegistryError::Cancelled => Stop::Cancelled,
            e if sources::is_run_error(&e) => Stop::Run(PullError::Config(e.to_string())),
            e => Stop::Endpoint(e.to_string()),
        }
    }
}

/// `<repository>:<tag>`, or `<repository>@sha256:<hex>` for an image without a tag: the
/// cache's `org.opencontainers.image.ref.name`.
pub(crate) fn ref_name(repository: &str, tag: Option<&str>, digest: &Digest) -> String {
    match tag {
        Some(t) => format!("{repository}:{t}"),
        None => format!("{repository}@{digest}"),
    }
}

/// The destination naming of an image of the set: `targetRepo`, else the source's path;
/// `targetTag`, else the source's tag.
pub(crate) fn destination(image: &PullImage) -> (String, Option<String>) {
    let r = &image.name.reference;
    let repository = image
        .target_repo
        .clone()
        .unwrap_or_else(|| r.path().to_owned());
    let tag = image
        .target_tag
        .clone()
        .or_else(|| r.tag().map(str::to_owned));
    (repository, tag)
}

/// RFC 3339 in UTC to the second (`2026-12-01T08:05:04Z`), from seconds since the epoch.
pub(crate) fn rfc3339(secs: u64) -> String {
    oci::time::Utc::from_unix(secs).rfc3339()
}

pub(crate) fn now_rfc3339() -> String {
    rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// `os/arch[/variant]` of an index child (`unknown` for a child without a platform, as
/// attestation manifests have).
pub(crate) fn platform_name(p: Option<&oci::Platform>) -> String {
    match p {
        None => "unknown".to_owned(),
        Some(p) => {
            let mut s = format!("{}/{}", p.os, p.architecture);
            if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
                s.push('/');
                s.push_str(v);
            }
            s
        }
    }
}

/// The children of an index that are kept for `platforms` (empty: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    pub(crate) kept: Vec<Descriptor>,
    /// Every child's platform, in index order.
    pub(crate) available: Vec<String>,
    /// Sorted platforms of the kept children, when some were left out.
    pub(crate) kept_platforms: Option<Vec<String>>,
}

/// oc-mirror's filter ([`Platform::matches`]): a child is kept when any platform matches
/// it. None matching is an error naming what the index has.
pub(crate) fn select_children(
    children: &[Descriptor],
    platforms: &[Platform],
) -> Result<Selection, String> {
    let available: Vec<String> = children
        .iter()
        .map(|c| platform_name(c.platform.as_ref()))
        .collect();
    if platforms.is_empty() {
        return Ok(Selection {
            kept: children.to_vec(),
            available,
            kept_platforms: None,
        });
    }
    let kept: Vec<Descriptor> = children
        .iter()
        .filter(|c| {
            c.platform.as_ref().is_some_and(|p| {
                platforms
                    .iter()
                    .any(|w| w.matches(&p.os, &p.architecture, p.variant.as_deref()))
            })
        })
        .cloned()
        .collect();
    if kept.is_empty() {
        let wanted: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
        return Err(format!(
            "no image of the index is for {} (it has {}): ask for one of those with --platform or the image's platforms",
            wanted.join(", "),
            if available.is_empty() {
                "no children".to_owned()
            } else {
                available.join(", ")
            }
        ));
    }
    let kept_platforms = (kept.len() < children.len()).then(|| {
        let mut k: Vec<String> = kept
            .iter()
            .map(|c| platform_name(c.platform.as_ref()))
            .collect();
        k.sort();
        k.dedup();
        k
    });
    Ok(Selection {
        kept,
        available,
        kept_platforms,
    })
}

/// The manifest a registry or the cache gave, checked to be one ferry carries. `media_type`
/// is the answer's `Content-Type` (None from the cache). Schema 1 is refused by name.
pub(crate) fn check_manifest(
    reference: &str,
    media_type: Option<&str>,
    bytes: &[u8],
) -> Result<manifest::Manifest, Stop> {
    let schema1 = || {
        Stop::Final(format!(
            "{reference} is a Docker schema 1 manifest, which ferry does not carry (schema 1 is \
             deprecated and signed over a re-encoding, so it cannot be carried byte for byte; \
             current docker and containerd refuse it too): ask for a schema 2/OCI image, or \
             convert with `skopeo copy --format v2s2 docker://… docker://…` and pull the copy"
        ))
    };
    if media_type.is_some_and(media_type::is_schema1) {
        return Err(schema1());
    }
    match manifest::parse(bytes) {
        Ok(m) => Ok(m),
        Err(ManifestError::Schema1) => Err(schema1()),
        Err(e) => Err(Stop::Final(format!(
            "{reference} is not an image manifest or index ferry carries{}: {e}",
            media_type
                .filter(|t| !t.is_empty())
                .map(|t| format!(" (served as {t})"))
                .unwrap_or_default()
        ))),
    }
}

/// The manifests of one image, walked.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) media_type: String,
    pub(crate) platforms_available: Vec<String>,
    pub(crate) platforms_kept: Option<Vec<String>>,
    /// Every manifest (top first), with its size.
    pub(crate) manifests: Vec<(Digest, u64)>,
    /// Configs and layers, each once, in manifest order.
    pub(crate) blobs: Vec<(Digest, u64)>,
    /// Manifests that came over the network, to store in the cache.
    pub(crate) fetched: Vec<(Digest, Vec<u8>)>,
}

/// Where child manifests come from: `Ok((bytes, fetched))`, `fetched` when they came over
/// the network (to be stored).
type GetManifest<'a> = dyn FnMut(&Digest) -> Result<(Vec<u8>, bool), Stop> + 'a;

/// Walks an image from its top manifest: the children kept for `platforms`, and the
/// configs and layers of every image manifest (foreign layers are left out: they are
/// fetched from their URLs, never from the registry).
pub(crate) fn walk(
    reference: &str,
    top: (&Digest, &[u8], Option<&str>),
    platforms: &[Platform],
    get: &mut GetManifest<'_>,
) -> Result<Tree, Stop> {
    let (digest, bytes, media_type) = top;
    let m = check_manifest(reference, media_type, bytes)?;
    let mut tree = Tree {
        media_type: m.media_type().to_owned(),
        ..Tree::default()
    };
    tree.manifests.push((*digest, bytes.len() as u64));
    let mut seen = HashSet::new();
    if m.is_index() {
        let sel = select_children(&m.manifests, platforms)
            .map_err(|e| Stop::Final(format!("{reference}: {e}")))?;
        tree.platforms_available = sel.available;
        tree.platforms_kept = sel.kept_platforms;
        let mut chain = vec![*digest];
        for child in &sel.kept {
            walk_child(reference, child, &mut chain, &mut tree, &mut seen, get)?;
        }
    } else {
        collect_blobs(reference, &m, &mut tree, &mut seen)?;
    }
    Ok(tree)
}

fn walk_child(
    reference: &str,
    child: &Descriptor,
    chain: &mut Vec<Digest>,
    tree: &mut Tree,
    seen: &mut HashSet<Digest>,
    get: &mut GetManifest<'_>,
) -> Result<(), Stop> {
    if chain.contains(&child.digest) || chain.len() > MAX_DEPTH {
        return Err(Stop::Final(format!(
            "{reference}: the index nests {} too deep (or loops)",
            child.digest
        )));
    }
    if tree.manifests.iter().any(|(d, _)| *d == child.digest) {
        return Ok(());
    }
    let (bytes, fetched) = get(&child.digest)?;
    if child.size.is_some_and(|s| s != bytes.len() as u64) {
        return Err(Stop::Endpoint(format!(
            "the child manifest {} of {reference} is {} bytes, where the index says {}",
            child.digest,
            bytes.len(),
            child.size.unwrap_or_default()
        )));
    }
    let what = format!("{reference} (child {})", child.digest);
    let m = check_manifest(&what, child.media_type.as_deref(), &bytes)?;
    tree.manifests.push((child.digest, bytes.len() as u64));
    if fetched {
        tree.fetched.push((child.digest, bytes));
    }
    if m.is_index() {
        // A nested index keeps every child: platforms choose at the top only.
        chain.push(child.digest);
        for grandchild in &m.manifests {
            walk_child(reference, grandchild, chain, tree, seen, get)?;
        }
        chain.pop();
    } else {
        collect_blobs(&what, &m, tree, seen)?;
    }
    Ok(())
}

fn collect_blobs(
    what: &str,
    m: &manifest::Manifest,
    tree: &mut Tree,
    seen: &mut HashSet<Digest>,
) -> Result<(), Stop> {
    for (i, d) in m.config.iter().chain(m.layers.iter()).enumerate() {
        if d.is_foreign() || !seen.insert(d.digest) {
            continue;
        }
        let field = if m.config.is_some() && i == 0 {
            "config".to_owned()
        } else {
            format!("layers[{}]", i - usize::from(m.config.is_some()))
        };
        let size = d.size.ok_or_else(|| {
            Stop::Final(format!(
                "{what}: the descriptor of {field} ({}) has no size",
                d.digest
            ))
        })?;
        tree.blobs.push((d.digest, size));
    }
    Ok(())
}

/// What one image needs from the run.
struct Ctx<'a> {
    cache: &'a Cache,
    sources: &'a Sources<'a>,
    /// What `index.json` recorded before this run: ref.name → (digest, resolved-at).
    recorded: HashMap<String, (Digest, Option<String>)>,
}

impl Ctx<'_> {
    /// `dev.ferry.resolved-at` of a tag just resolved to `digest`: the time the cache
    /// recorded when the tag already named that digest there (the annotation means
    /// "resolved to this digest since", so a pull that changes nothing changes no byte of
    /// index.json, and packing the same set again makes the same bundle), else `now`.
    fn resolved_at(&self, ref_name: &str, digest: &Digest, now: String) -> String {
        match self.recorded.get(ref_name) {
            Some((d, Some(at))) if d == digest => at.clone(),
            _ => now,
        }
    }
}

/// How the top manifest is asked for.
enum Want<'r> {
    Tag(&'r str),
    Digest(Digest),
}

/// Resolves the images of `images` with `jobs` threads, emitting an event for each as it
/// ends; results in the order of `images`. Stops starting images when cancelled.
pub(crate) fn resolve_all(
    cache: &Cache,
    sources: &Sources<'_>,
    images: &[PullImage],
    options: &Options,
    events: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<Result<ResolvedImage, Failure>>, PullError> {
    let recorded = cache
        .images()?
        .into_iter()
        .map(|i| (i.ref_name, (i.digest, i.resolved_at)))
        .collect();
    let ctx = Ctx {
        cache,
        sources,
        recorded,
    };
    let next = AtomicUsize::new(0);
    let run = RunStop::default();
    let results: Mutex<Vec<Option<Result<ResolvedImage, Failure>>>> =
        Mutex::new(vec![None; images.len()]);
    let threads = options.jobs.clamp(1, images.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if run.stopped() || options.cancel.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(image) = images.get(i) else { return };
                let platforms = image.platforms_or(&options.platforms);
                let outcome = match resolve_one(&ctx, image, platforms) {
                    Ok(r) => {
                        events(Event::Resolved(&r));
                        Ok(r)
                    }
                    Err(One::Failed(f)) => {
                        events(Event::Failed(&f));
                        Err(f)
                    }
                    Err(One::Cancelled) => return,
                    Err(One::Run(e)) => {
                        run.fail(e);
                        return;
                    }
                };
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
            });
        }
    });
    run.finish()?;
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let done = results.iter().filter(|r| r.is_some()).count();
    if done < images.len() {
        return Err(PullError::Interrupted(format!(
            "{done} of {} images resolved; run the same command again to go on",
            images.len()
        )));
    }
    Ok(results.into_iter().flatten().collect())
}

enum One {
    Failed(Failure),
    Cancelled,
    Run(PullError),
}

fn resolve_one(
    ctx: &Ctx<'_>,
    image: &PullImage,
    platforms: &[Platform],
) -> Result<ResolvedImage, One> {
    let reference = &image.name.reference;
    let written = reference.to_string();
    ctx.sources.working_on(&written);
    let failed = |registry: String, error: String| {
        One::Failed(Failure {
            reference: written.clone(),
            registry,
            error,
        })
    };
    // A tag and a digest: pulled by the digest (the tag is only the name).
    let want = match (reference.digest(), reference.tag()) {
        (Some(d), _) => Want::Digest(d),
        (None, Some(t)) => Want::Tag(t),
        (None, None) => {
            return Err(failed(
                reference.host().to_owned(),
                format!(
                    "{written} has neither a tag nor a digest: add one (:latest is not assumed)"
                ),
            ))
        }
    };
    let by_digest = matches!(want, Want::Digest(_));
    let resolved = ctx
        .sources
        .resolve(&written, by_digest)
        .map_err(|e| failed(reference.host().to_owned(), e))?;
    let source = resolved.reference.clone();
    let (repository, tag) = destination(image);
    // Blobs are fetched by digest: the endpoints that serve digest pulls, the one that
    // served the manifest first.
    let blob_endpoints = |serving: &Endpoint| -> Vec<Endpoint> {
        let mut list = vec![serving.clone()];
        if let Ok(r) = ctx.sources.resolve(&source, true) {
            for e in r.endpoints {
                if !(e.host == serving.host && e.repository == serving.repository) {
                    list.push(e);
                }
            }
        }
        list
    };
    let finish =
        |mut tree: Tree, digest: Digest, serving: &Endpoint, offline: bool, at: Option<String>| {
            for (d, bytes) in &tree.fetched {
                ctx.cache
                    .put_blob(d, bytes)
                    .map_err(|e| One::Run(e.into()))?;
            }
            let ref_name = ref_name(&repository, tag.as_deref(), &digest);
            let resolved_at = at.map(|now| ctx.resolved_at(&ref_name, &digest, now));
            // The plan holds every image until the pack: no slack in its lists (grown a
            // descriptor at a time, a third of them was spare capacity).
            tree.platforms_available.shrink_to_fit();
            tree.manifests.shrink_to_fit();
            tree.blobs.shrink_to_fit();
            Ok(ResolvedImage {
                source: source.clone(),
                repository: repository.clone(),
                target_repository: image.target_repo.clone(),
                tag: tag.clone(),
                ref_name,
                digest,
                media_type: tree.media_type,
                size: tree.manifests[0].1,
                resolved_at,
                endpoint: serving.host.clone(),
                endpoints: blob_endpoints(serving),
                offline,
                platforms_available: tree.platforms_available,
                platforms_kept: tree.platforms_kept,
                manifests: tree.manifests,
                blobs: tree.blobs,
                catalog_packages: None,
            })
        };

    if let Want::Digest(d) = &want {
        match from_cache(ctx.cache, &written, d, platforms) {
            Ok(tree) => return finish(tree, *d, &resolved.endpoints[0], true, None),
            Err(Stop::NotCached) => {}
            Err(Stop::Final(e)) => return Err(failed(resolved.endpoints[0].host.clone(), e)),
            Err(Stop::Run(e)) => return Err(One::Run(e)),
            Err(Stop::Cancelled) => return Err(One::Cancelled),
            Err(Stop::Endpoint(e)) => return Err(failed(resolved.endpoints[0].host.clone(), e)),
        }
    }

    let mut attempts = Vec::new();
    for endpoint in &resolved.endpoints {
        let name = endpoint_name(endpoint);
        let client = match ctx.sources.client(endpoint) {
            Ok(c) => c,
            Err(e) => match Stop::from(clone_error(&e)) {
                Stop::Cancelled => return Err(One::Cancelled),
                Stop::Run(e) => return Err(One::Run(e)),
                _ => {
                    attempts.push(Attempt {
                        endpoint: name,
                        error: e.to_string(),
                    });
                    continue;
                }
            },
        };
        let at = matches!(want, Want::Tag(_)).then(now_rfc3339);
        match from_endpoint(ctx.cache, &client, endpoint, &written, &want, platforms) {
            Ok((digest, tree)) => return finish(tree, digest, endpoint, false, at),
            Err(Stop::Endpoint(error)) => attempts.push(Attempt {
                endpoint: name,
                error,
            }),
            Err(Stop::Final(e)) => return Err(failed(endpoint.host.clone(), e)),
            Err(Stop::Cancelled) => return Err(One::Cancelled),
            Err(Stop::Run(e)) => return Err(One::Run(e)),
            Err(Stop::NotCached) => unreachable!("only the cache walk says NotCached"),
        }
    }
    let (registry, error) = every_endpoint(&attempts);
    Err(failed(registry, error))
}

/// The errors a shared failed connection holds are not `Clone`: what decides the next
/// step is only whether it was a cancel or an auth-file problem.
fn clone_error(e: &RegistryError) -> RegistryError {
    match e {
        RegistryError::Cancelled => RegistryError::Cancelled,
        RegistryError::AuthFile { path, problem } => RegistryError::AuthFile {
            path: path.clone(),
            problem: problem.clone(),
        },
        other => RegistryError::Config {
            problem: other.to_string(),
        },
    }
}

/// A digest reference whose every manifest the cache holds: no network.
fn from_cache(
    cache: &Cache,
    reference: &str,
    digest: &Digest,
    platforms: &[Platform],
) -> Result<Tree, Stop> {
    let read = |d: &Digest| -> Result<Vec<u8>, Stop> {
        if cache.has_blob(d).is_none() {
            return Err(Stop::NotCached);
        }
        cache
            .read_blob(d, MAX_MANIFEST_BYTES)
            .map_err(|e| Stop::Run(e.into()))
    };
    let top = read(digest)?;
    walk(reference, (digest, &top, None), platforms, &mut |d| {
        read(d).map(|b| (b, false))
    })
}

/// Resolves at one endpoint: the top manifest (by tag: `HEAD` for the digest, then the
/// cache or `GET`), then the children kept, from the cache where it has them.
fn from_endpoint(
    cache: &Cache,
    client: &Client,
    endpoint: &Endpoint,
    reference: &str,
    want: &Want<'_>,
    platforms: &[Platform],
) -> Result<(Digest, Tree), Stop> {
    let repo = &endpoint.repository;
    let cached = |d: &Digest| -> Result<Option<Vec<u8>>, Stop> {
        if cache.has_blob(d).is_none() {
            return Ok(None);
        }
        cache
            .read_blob(d, MAX_MANIFEST_BYTES)
            .map(Some)
            .map_err(|e| Stop::Run(e.into()))
    };
    let get = |d: &Digest, what: &str| -> Result<(Vec<u8>, Option<String>), Stop> {
        match client.get_manifest(repo, &d.to_string())? {
            Some(m) => Ok((m.bytes, Some(m.media_type))),
            None => Err(Stop::Endpoint(format!("{what} {d} is not in {repo} (404)"))),
        }
    };
    // Children: from the cache where it has them.
    let mut child = |d: &Digest| -> Result<(Vec<u8>, bool), Stop> {
        match cached(d)? {
            Some(b) => Ok((b, false)),
            None => get(d, "the child manifest").map(|(b, _)| (b, true)),
        }
    };
    let (digest, top, top_type, top_fetched) = match want {
        Want::Digest(d) => match cached(d)? {
            Some(b) => (*d, b, None, false),
            None => {
                let (b, t) = get(d, "the manifest")?;
                (*d, b, t, true)
            }
        },
        Want::Tag(tag) => {
            let head = match client.manifest_exists(repo, tag) {
                // A registry (or proxy) that does not allow HEAD: one GET says it all.
                Err(e) if e.status() == Some(405) => {
                    let Some(m) = client.get_manifest(repo, tag)? else {
                        return Err(Stop::Endpoint(format!(
                            "no manifest for tag {tag} in {repo} (404)"
                        )));
                    };
                    let digest = m.digest;
                    let mut tree = walk(
                        reference,
                        (&digest, &m.bytes, Some(&m.media_type)),
                        platforms,
                        &mut child,
                    )?;
                    tree.fetched.insert(0, (digest, m.bytes));
                    return Ok((digest, tree));
                }
                other => other?,
            };
            let Some(info) = head else {
                return Err(Stop::Endpoint(format!(
                    "no manifest for tag {tag} in {repo} (404)"
                )));
            };
            if media_type::is_schema1(&info.media_type) {
                check_manifest(reference, Some(&info.media_type), b"")?;
            }
            match cached(&info.digest)? {
                Some(b) => (info.digest, b, None, false),
                None => {
                    let (b, t) = get(&info.digest, &format!("the manifest of tag {tag},"))?;
                    (info.digest, b, t, true)
                }
            }
        }
    };
    let mut tree = walk(
        reference,
        (&digest, &top, top_type.as_deref()),
        platforms,
        &mut child,
    )?;
    if top_fetched {
        tree.fetched.insert(0, (digest, top));
    }
    Ok((digest, tree))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(digest_of: &str, platform: Option<(&str, &str, Option<&str>)>) -> Descriptor {
        Descriptor {
            media_type: Some(media_type::OCI_MANIFEST.into()),
            digest: Digest::of(digest_of.as_bytes()),
            size: Some(10),
            urls: None,
            annotations: Default::default(),
            platform: platform.map(|(os, arch, variant)| oci::Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
                ..oci::Platform::default()
            }),
            artifact_type: None,
        }
    }

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn an_index_keeps_the_children_of_the_platforms_asked_for() {
        let children = vec![
            child("amd64", Some(("linux", "amd64", None))),
            child("arm64", Some(("linux", "arm64", Some("v8")))),
            child("arm7", Some(("linux", "arm", Some("v7")))),
            child("attestation", None),
        ];
        // No platforms: every child, and the index is not sparse.
        let all = select_children(&children, &[]).unwrap();
        assert_eq!(all.kept, children);
        assert_eq!(all.kept_platforms, None);
        assert_eq!(
            all.available,
            ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "unknown"]
        );
        // oc-mirror's matching: no variant keeps every variant of that os/arch.
        let some = select_children(&children, &[p("linux/arm64"), p("linux/amd64")]).unwrap();
        assert_eq!(some.kept, vec![children[0].clone(), children[1].clone()]);
        assert_eq!(
            some.kept_platforms.as_deref(),
            Some(&["linux/amd64".to_owned(), "linux/arm64/v8".to_owned()][..])
        );
        let arm = select_children(&children, &[p("linux/arm/v7")]).unwrap();
        assert_eq!(arm.kept, vec![children[2].clone()]);
        // Nothing matching names what there is.
        let e = select_children(&children, &[p("linux/s390x"), p("linux/arm/v6")]).unwrap_err();
        assert_eq!(
            e,
            "no image of the index is for linux/s390x, linux/arm/v6 (it has linux/amd64, linux/arm64/v8, linux/arm/v7, unknown): ask for one of those with --platform or the image's platforms"
        );
        // Every child kept by name: not sparse.
        let two = &children[..2];
        let both = select_children(two, &[p("linux/amd64"), p("linux/arm64")]).unwrap();
        assert_eq!(both.kept_platforms, None);
    }

    #[test]
    fn ref_names_follow_the_destination() {
        let d = Digest::of(b"m");
        assert_eq!(ref_name("ubi8/ubi", Some("8.9"), &d), "ubi8/ubi:8.9");
        assert_eq!(ref_name("ubi8/ubi", None, &d), format!("ubi8/ubi@{d}"));
        let image = |name: &str, repo: Option<&str>, tag: Option<&str>| PullImage {
            name: imageset::ImageName::parse(name).unwrap(),
            target_repo: repo.map(Into::into),
            target_tag: tag.map(Into::into),
            platforms: vec![],
            index: 0,
        };
        let hex = "a".repeat(64);
        assert_eq!(
            destination(&image("registry.redhat.io/ubi8/ubi:8.9", None, None)),
            ("ubi8/ubi".to_owned(), Some("8.9".to_owned()))
        );
        assert_eq!(
            destination(&image("ubuntu:22.04", None, None)),
            ("library/ubuntu".to_owned(), Some("22.04".to_owned()))
        );
        assert_eq!(
            destination(&image(
                &format!("quay.io/a/b@sha256:{hex}"),
                Some("mirror/b"),
                None
            )),
            ("mirror/b".to_owned(), None)
        );
        // A tag and a digest: the tag names it (it is pulled by the digest).
        assert_eq!(
            destination(&image(
                &format!("quay.io/a/b:v1@sha256:{hex}"),
                None,
                Some("v1-mirrored")
            )),
            ("a/b".to_owned(), Some("v1-mirrored".to_owned()))
        );
    }

    #[test]
    fn schema1_is_refused_by_name() {
        let signed = br#"{"schemaVersion":1,"name":"a/b","tag":"1","fsLayers":[],"history":[],"signatures":[]}"#;
        for (content_type, bytes) in [
            (Some(media_type::DOCKER_SCHEMA1_SIGNED), &signed[..]),
            (Some(media_type::DOCKER_SCHEMA1), &b"{}"[..]),
            // A registry that sends no useful Content-Type: told from the bytes.
            (Some("application/json"), &signed[..]),
            (None, &signed[..]),
        ] {
            let Err(Stop::Final(e)) = check_manifest("quay.io/a/b:1", content_type, bytes) else {
                panic!("schema 1 not refused for {content_type:?}");
            };
            assert!(
                e.starts_with(
                    "quay.io/a/b:1 is a Docker schema 1 manifest, which ferry does not carry"
                ),
                "{e}"
            );
            assert!(e.contains("skopeo copy --format v2s2"), "{e}");
        }
        let Err(Stop::Final(e)) = check_manifest("quay.io/a/b:1", Some("text/html"), b"<html>")
        else {
            panic!()
        };
        assert!(
            e.starts_with("quay.io/a/b:1 is not an image manifest or index ferry carries (served as text/html): not valid manifest JSON"),
            "{e}"
        );
    }

    #[test]
    fn a_walk_collects_each_blob_once_and_skips_foreign_layers() {
        let layer = |s: &str, t: &str| {
            format!(
                r#"{{"mediaType":"{t}","digest":"{}","size":{}}}"#,
                Digest::of(s.as_bytes()),
                s.len()
            )
        };
        let image = |config: &str, layers: &[String]| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}}"#,
                media_type::OCI_MANIFEST,
                layer(config, media_type::OCI_CONFIG),
                layers.join(",")
            )
        };
        let base = layer("base", media_type::OCI_LAYER_GZIP);
        let amd = image(
            "c-amd",
            &[base.clone(), layer("amd", media_type::OCI_LAYER_GZIP)],
        );
        let arm = image(
            "c-arm",
            &[base.clone(), layer("win", media_type::DOCKER_FOREIGN_LAYER)],
        );
        let entry = |m: &str, arch: &str| {
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"{arch}"}}}}"#,
                media_type::OCI_MANIFEST,
                Digest::of(m.as_bytes()),
                m.len()
            )
        };
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{},{}]}}"#,
            media_type::OCI_INDEX,
            entry(&amd, "amd64"),
            entry(&arm, "arm64")
        );
        let top = Digest::of(index.as_bytes());
        let mut asked = Vec::new();
        let mut get = |d: &Digest| -> Result<(Vec<u8>, bool), Stop> {
            asked.push(*d);
            [&amd, &arm]
                .into_iter()
                .find(|m| Digest::of(m.as_bytes()) == *d)
                .map(|m| (m.as_bytes().to_vec(), true))
                .ok_or(Stop::Endpoint("404".into()))
        };
        let tree = walk("r/x:1", (&top, index.as_bytes(), None), &[], &mut get).unwrap();
        let names: Vec<Digest> = tree.blobs.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            names,
            ["c-amd", "base", "amd", "c-arm"].map(|s| Digest::of(s.as_bytes()))
        );
        assert_eq!(tree.manifests.len(), 3);
        assert_eq!(tree.fetched.len(), 2);
        assert_eq!(tree.media_type, media_type::OCI_INDEX);
        // One platform: one child asked for, only its blobs.
        let tree = walk(
            "r/x:1",
            (&top, index.as_bytes(), None),
            &[p("linux/arm64")],
            &mut get,
        )
        .unwrap();
        assert_eq!(tree.blobs.len(), 2);
        assert_eq!(tree.platforms_kept, Some(vec!["linux/arm64".to_owned()]));
        assert_eq!(asked.last(), Some(&Digest::of(arm.as_bytes())));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_112_304), "2026-12-01T08:05:04Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
