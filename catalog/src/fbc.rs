//! Reading a file-based catalog: the image's `/configs` as a directory tree
//! ([`read_dir`]) or as the entries of one layer's tar stream ([`read_tar`]).
//!
//! As opm does (`alpha/declcfg/load.go`): every file of the tree is read in lexical path
//! order, except `.indexignore` files and what their gitignore-style patterns exclude
//! ([`crate::ignore`]). Each file is a stream of JSON objects (`.json`) or YAML documents
//! (`.yaml`, `.yml`); a file with another name is read as opm's YAML-or-JSON decoder
//! reads it: JSON when its first non-blank byte is `{`, YAML otherwise.
//!
//! Memory: objects are taken one at a time. A bundle is kept as its raw bytes (or not at
//! not at all, see [`RawBundles`]) plus the few fields selection reads.

use std::cell::{Cell, RefCell};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ignore::{Matcher, INDEX_IGNORE};
use crate::model::*;
use crate::version;

/// The most one JSON object may take (a bundle with its manifests inlined is a few MB):
/// the catalog comes from a registry, and a file of one endless object (a gzip bomb's)
/// would otherwise be held whole.
pub const OBJECT_LIMIT: usize = 64 << 20;
/// The most a YAML catalog file may take (YAML files are read whole; large catalogs are
/// written as JSON).
pub const YAML_LIMIT: u64 = 64 << 20;
/// The most an `.indexignore` file may take (a few patterns).
pub const INDEX_IGNORE_LIMIT: u64 = 1 << 20;

/// What to keep while reading.
#[derive(Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    pub raw_bundles: RawBundles<'a>,
}

/// Which bundles keep their raw object. A listing needs none; writing a selection needs
/// only the kept ones, so a caller with a large catalog reads it once with `None`,
/// selects, and fetches the raw objects of what it kept with [`fill_raw_dir`] /
/// [`fill_raw_tar`]: memory then follows the selection, not the catalog.
#[derive(Clone, Copy, Default)]
pub enum RawBundles<'a> {
    #[default]
    All,
    None,
    /// Those for which the function of (package, bundle) says yes.
    Only(&'a dyn Fn(&str, &str) -> bool),
}

impl RawBundles<'_> {
    fn keep(&self, package: &str, bundle: &str) -> bool {
        match self {
            RawBundles::All => true,
            RawBundles::None => false,
            RawBundles::Only(f) => f(package, bundle),
        }
    }
}

impl fmt::Debug for RawBundles<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawBundles::All => "All",
            RawBundles::None => "None",
            RawBundles::Only(_) => "Only(..)",
        })
    }
}

/// Gives every bundle of `catalog` that lacks its raw object the one read from `root`
/// (the tree `catalog` was read from).
pub fn fill_raw_dir(root: &Path, catalog: &mut Catalog) -> Result<(), ReadError> {
    let wanted = wanted(catalog);
    let keep = |p: &str, b: &str| wanted.contains(&(p.to_string(), b.to_string()));
    let from = read_dir(
        root,
        ReadOptions {
            raw_bundles: RawBundles::Only(&keep),
        },
    )?;
    attach(catalog, from);
    Ok(())
}

/// As [`fill_raw_dir`], from the layer `catalog` was read from.
pub fn fill_raw_tar<R: Read>(
    layer: R,
    configs_dir: &str,
    catalog: &mut Catalog,
) -> Result<(), ReadError> {
    let wanted = wanted(catalog);
    let keep = |p: &str, b: &str| wanted.contains(&(p.to_string(), b.to_string()));
    let from = read_tar(
        layer,
        configs_dir,
        ReadOptions {
            raw_bundles: RawBundles::Only(&keep),
        },
    )?;
    attach(catalog, from);
    Ok(())
}

fn wanted(catalog: &Catalog) -> std::collections::BTreeSet<(String, String)> {
    catalog
        .packages
        .values()
        .flat_map(|c| c.bundles.values())
        .filter(|b| b.raw.is_none())
        .map(|b| (b.package.clone(), b.name.clone()))
        .collect()
}

fn attach(catalog: &mut Catalog, mut from: Catalog) {
    for (name, content) in catalog.packages.iter_mut() {
        let Some(source) = from.packages.get_mut(name) else {
            continue;
        };
        for (bname, bundle) in content.bundles.iter_mut() {
            if bundle.raw.is_none() {
                bundle.raw = source.bundles.get_mut(bname).and_then(|b| b.raw.take());
            }
        }
    }
}

/// Where in the catalog an object is: its file (relative to the configs root), its place
/// in that file (the first object is 1) and the line it starts on, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub object: usize,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, object {}", self.file, self.object)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// Why a catalog could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("reading the catalog at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog file {at}: not a JSON object stream: {source}")]
    Json {
        at: Location,
        #[source]
        source: serde_json::Error,
    },
    #[error("catalog file {at}: not YAML: {message}")]
    Yaml { at: Location, message: String },
    #[error("catalog file {at}: {problem}")]
    Object { at: Location, problem: String },
    #[error("catalog file {at}: a second {what} (the first is in {first})")]
    Duplicate {
        at: Location,
        what: String,
        first: String,
    },
    #[error(
        "catalog file {at}: {what} belongs to package {package:?}, which has no olm.package object"
    )]
    NoPackage {
        at: Location,
        what: String,
        package: String,
    },
    #[error("catalog file {path}: a {kind} in the catalog tree: ferry reads regular files only (replace it with the file it points to)")]
    NotAFile { path: String, kind: &'static str },
    #[error("catalog file {file}: larger than {limit} bytes, more than ferry reads whole (YAML and .indexignore files are; write a large catalog as JSON)")]
    TooLarge { file: String, limit: u64 },
    #[error("reading the layer's tar stream: {source}")]
    Tar {
        #[source]
        source: std::io::Error,
    },
}

/// Reads the catalog rooted at `root` (the image's `/configs`, extracted).
pub fn read_dir(root: &Path, opts: ReadOptions<'_>) -> Result<Catalog, ReadError> {
    let io = |path: &Path, source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Every `.indexignore` is known before any file is read: one may sort after the files
    // it excludes.
    let mut files: Vec<Vec<String>> = Vec::new();
    let mut matcher = Matcher::default();
    let mut stack = vec![Vec::<String>::new()];
    while let Some(dir) = stack.pop() {
        let dir_path = join(root, &dir);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir_path).map_err(|e| io(&dir_path, e))? {
            let entry = entry.map_err(|e| io(&dir_path, e))?;
            names.push(entry);
        }
        names.sort_by_key(|e| e.file_name());
        // Pushed in reverse so directories are walked in order.
        let mut subdirs = Vec::new();
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut rel = dir.clone();
            rel.push(name.clone());
            let kind = entry.file_type().map_err(|e| io(&entry.path(), e))?;
            if kind.is_dir() {
                subdirs.push(rel);
            } else if kind.is_file() {
                if name == INDEX_IGNORE {
                    let file = File::open(entry.path()).map_err(|e| io(&entry.path(), e))?;
                    let text = read_bounded(
                        file,
                        INDEX_IGNORE_LIMIT,
                        &entry.path().display().to_string(),
                    )?;
                    matcher.add(&dir, &text);
                } else {
                    files.push(rel);
                }
            } else {
                return Err(ReadError::NotAFile {
                    path: rel.join("/"),
                    kind: if kind.is_symlink() {
                        "symbolic link"
                    } else {
                        "special file"
                    },
                });
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    files.sort();
    let mut builder = Builder::new(opts);
    for rel in files {
        if matcher.ignored(&rel) {
            continue;
        }
        let path = join(root, &rel);
        let file = File::open(&path).map_err(|e| io(&path, e))?;
        builder.read_file(&rel.join("/"), file)?;
    }
    builder.finish()
}

/// Reads the catalog held by one layer: only the tar entries under `configs_dir` (the
/// image's `operators.operatorframework.io.index.configs.v1` label, e.g. `/configs`) are
/// read, the others skipped unread. Whiteouts (`.wh.*`) are not catalog content and are
/// skipped; merging layers is the caller's work.
pub fn read_tar<R: Read>(
    layer: R,
    configs_dir: &str,
    opts: ReadOptions<'_>,
) -> Result<Catalog, ReadError> {
    let tar_err = |source| ReadError::Tar { source };
    let prefix: Vec<String> = components(configs_dir);
    let mut archive = tar::Archive::new(layer);
    let mut matcher = Matcher::default();
    // Entries come in archive order and a `.indexignore` may follow what it excludes, so
    // each file is parsed as it streams by and the verdicts are applied at the end.
    // By path: a later entry for the same path replaces the earlier one, as extraction
    // would leave it.
    let mut parsed: BTreeMap<Vec<String>, Result<Builder, ReadError>> = BTreeMap::new();
    for entry in archive.entries().map_err(tar_err)? {
        let entry = entry.map_err(tar_err)?;
        let path = entry.path().map_err(tar_err)?;
        let comps = components(&path.to_string_lossy());
        // `..` would climb out of the configs directory; extraction refuses it, so it is
        // no catalog content.
        if comps.iter().any(|c| c == "..") {
            continue;
        }
        let Some(rel) = comps.strip_prefix(prefix.as_slice()) else {
            continue;
        };
        if rel.is_empty() {
            // The catalog directory itself: a link or a file there would leave the layer
            // looking like a catalog with no package in it.
            let kind = entry.header().entry_type();
            if !kind.is_dir() {
                return Err(ReadError::NotAFile {
                    path: format!("/{} itself", prefix.join("/")),
                    kind: if kind.is_symlink() || kind.is_hard_link() {
                        "link"
                    } else {
                        "file, not a directory,"
                    },
                });
            }
            continue;
        }
        let name = rel[rel.len() - 1].as_str();
        if name.starts_with(".wh.") {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(ReadError::NotAFile {
                path: rel.join("/"),
                kind: if kind.is_symlink() || kind.is_hard_link() {
                    "link"
                } else {
                    "special file"
                },
            });
        }
        let rel = rel.to_vec();
        if name == INDEX_IGNORE {
            let text = read_bounded(entry, INDEX_IGNORE_LIMIT, &rel.join("/"))?;
            matcher.add(&rel[..rel.len() - 1], &text);
            continue;
        }
        // A file that fails to parse may yet be ignored: its error waits for the verdict.
        let mut one = Builder::new(opts);
        let result = one.read_file(&rel.join("/"), entry);
        parsed.insert(rel, result.map(|()| one));
    }
    let mut builder = Builder::new(opts);
    for (rel, one) in parsed {
        if !matcher.ignored(&rel) {
            builder.absorb(one?);
        }
    }
    builder.finish()
}

/// The deepest nesting of YAML flow collections ([`flow_too_deep`]) read: the YAML parser
/// (libyaml's scanner) takes time in the square of it, so a registry's file of brackets
/// would hold ferry for hours; it refuses past 128 levels anyway.
const YAML_FLOW_DEPTH: usize = 1000;

/// The line on which `text`'s flow collections (`[`, `{`) nest deeper than `limit`, if
/// they do. A lexer of just what the nesting needs: quoted scalars (begun after an
/// indicator, a space or a line start) and comments (`#` after a space or a line start)
/// hide brackets; outside a flow collection a bracket opens one only where a node starts,
/// and a block scalar's (`|`, `>`) more indented lines are text; inside one every bracket
/// outside quotes opens or closes, as YAML reads them.
fn flow_too_deep(text: &str, limit: usize) -> Option<usize> {
    let b = text.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1usize, 0usize);
    // The last byte that was not a space or tab, or b'\n' at a line start; the
    // indentation of the current line.
    let mut prev = b'\n';
    let mut indent = 0usize;
    let node_start = |p: u8| matches!(p, b'\n' | b':' | b'-' | b'[' | b'{' | b',' | b'?');
    while i < b.len() {
        let c = b[i];
        if prev == b'\n' && c == b' ' {
            indent += 1;
            i += 1;
            continue;
        }
        match c {
            b'\n' => {
                line += 1;
                indent = 0;
                prev = b'\n';
                i += 1;
                continue;
            }
            b'#' if matches!(
                i.checked_sub(1).map_or(b'\n', |j| b[j]),
                b' ' | b'\t' | b'\n' | b'\r'
            ) =>
            {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if node_start(prev) => {
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\n' => line += 1,
                        b'\\' if c == b'"' => i += 1,
                        b'\'' if c == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 1,
                        q if q == c => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'|' | b'>' if depth == 0 && node_start(prev) => {
                // A block scalar: the rest of this line, then every line blank or more
                // indented than this one.
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                while i < b.len() {
                    let rest = &b[i + 1..];
                    let spaces = rest.iter().take_while(|&&x| x == b' ').count();
                    let blank = matches!(rest.get(spaces), None | Some(b'\n') | Some(b'\r'));
                    if !(blank || spaces > indent) || rest.is_empty() {
                        break;
                    }
                    line += 1;
                    i += 1 + rest.iter().position(|&x| x == b'\n').unwrap_or(rest.len());
                }
                continue;
            }
            b'[' | b'{' if depth > 0 || node_start(prev) => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b']' | b'}' if depth > 0 => depth -= 1,
            _ => {}
        }
        if c != b' ' && c != b'\t' {
            prev = c;
        }
        i += 1;
    }
    None
}

/// The whole text of a file read at once, refused past `limit` bytes (it is held whole).
fn read_bounded(r: impl Read, limit: u64, file: &str) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: PathBuf::from(file),
        source,
    };
    let mut bytes = Vec::new();
    r.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            file: file.to_string(),
            limit,
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn join(root: &Path, rel: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(rel);
    p
}

/// Path components without `.`, empty parts and a leading `/`.
fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// serde_json's finding in an object, placed: its line counts from the object's first,
/// so it is added to where the object starts and left out of the message.
fn finding(at: &Location, what: &str, e: &serde_json::Error) -> ReadError {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    ReadError::Object {
        at: Location {
            line: at
                .line
                .map(|l| l + e.line().saturating_sub(1))
                .or(Some(e.line())),
            ..at.clone()
        },
        problem: format!("{what}: {message}"),
    }
}

/// The newlines a JSON stream has gone past, to give each object the line it starts on.
/// Only those the parser has not reached yet are kept (at most a buffer's worth): the
/// objects' end offsets only grow.
#[derive(Debug)]
struct Newlines {
    record: bool,
    /// Offsets of newlines read into the buffer, not yet before an object's end.
    pending: VecDeque<usize>,
    /// Newlines before the last object's end.
    passed: usize,
}

impl Default for Newlines {
    fn default() -> Self {
        Newlines {
            record: true,
            pending: VecDeque::new(),
            passed: 0,
        }
    }
}

impl Newlines {
    /// The line an object that ends at byte `end` and reads `raw` starts on.
    fn start_line(&mut self, end: usize, raw: &str) -> usize {
        while self.pending.front().is_some_and(|&at| at < end) {
            self.pending.pop_front();
            self.passed += 1;
        }
        (self.passed + 1).saturating_sub(raw.bytes().filter(|&b| b == b'\n').count())
    }
}

/// Counts newlines as the buffer fills, so serde_json keeps its fast buffered reads.
/// Also refuses an object longer than [`OBJECT_LIMIT`]: `object_start` is where the
/// object being parsed began (the last one's end; usize::MAX: no bound here).
struct Counting<R> {
    inner: R,
    offset: usize,
    newlines: Rc<RefCell<Newlines>>,
    object_start: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.object_start.get();
        if start != usize::MAX && self.offset.saturating_sub(start) > OBJECT_LIMIT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an object longer than {OBJECT_LIMIT} bytes, more than a catalog object can be (a bundle with its manifests is a few MB)"),
            ));
        }
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        if newlines.record {
            let base = self.offset;
            newlines.pending.extend(
                buf[..n]
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == b'\n')
                    .map(|(i, _)| base + i),
            );
        }
        self.offset += n;
        Ok(n)
    }
}

/// The line (from 1) each YAML document of `text` starts on: the `---` markers at column
/// 0, and line 1 when content comes before the first marker. Used to place errors found
/// after a document parsed (a missing `schema`), which the YAML parser cannot place.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut content_before_marker = false;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ");
        if is_marker {
            starts.push(i + 1);
        } else if starts.is_empty() && !line.trim().is_empty() && !line.starts_with('#') {
            content_before_marker = true;
        }
    }
    if content_before_marker {
        starts.insert(0, 1);
    }
    starts
}

/// The first three fields every object has (`declcfg.Meta`).
#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    package: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleIn<'a> {
    name: String,
    package: String,
    #[serde(default)]
    image: String,
    #[serde(default, borrow)]
    properties: Vec<PropertyIn<'a>>,
    #[serde(default)]
    related_images: Option<Vec<RelatedImage>>,
}

#[derive(Deserialize)]
struct PropertyIn<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    value: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackageProperty {
    #[serde(default)]
    version: Option<String>,
}

/// One parsed object, remembered with where it came from.
enum Object {
    Package(Package),
    Channel(Channel),
    Bundle(Bundle),
    Deprecation(Deprecation),
    Other(Other),
}

/// Collects objects into a [`Catalog`], refusing duplicates as opm does.
struct Builder<'a> {
    opts: ReadOptions<'a>,
    objects: Vec<(Location, Object)>,
}

impl<'a> Builder<'a> {
    fn new(opts: ReadOptions<'a>) -> Builder<'a> {
        Builder {
            opts,
            objects: Vec::new(),
        }
    }

    fn absorb(&mut self, other: Builder<'a>) {
        self.objects.extend(other.objects);
    }

    fn read_file<R: Read>(&mut self, file: &str, r: R) -> Result<(), ReadError> {
        let io = |source| ReadError::Io {
            path: PathBuf::from(file),
            source,
        };
        let newlines = Rc::new(RefCell::new(Newlines::default()));
        let object_start = Rc::new(Cell::new(0));
        let mut r = BufReader::new(Counting {
            inner: r,
            offset: 0,
            newlines: Rc::clone(&newlines),
            object_start: Rc::clone(&object_start),
        });
        // Bytes consumed before serde_json sees the stream (its offsets start after them).
        let mut skipped = 0;
        let json = if file.ends_with(".json") {
            true
        } else if file.ends_with(".yaml") || file.ends_with(".yml") {
            false
        } else {
            // opm's YAMLOrJSONDecoder sniffs the first non-blank byte.
            loop {
                let buf = r.fill_buf().map_err(io)?;
                if buf.is_empty() {
                    break false;
                }
                match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                    Some(i) => break buf[i] == b'{',
                    None => {
                        let n = buf.len();
                        r.consume(n);
                        skipped += n;
                    }
                }
            }
        };
        if json {
            let mut stream = serde_json::Deserializer::from_reader(r).into_iter::<Box<RawValue>>();
            let mut object = 0;
            while let Some(raw) = stream.next() {
                object += 1;
                let mut at = Location {
                    file: file.to_string(),
                    object,
                    line: None,
                };
                let raw = raw.map_err(|source| match source.is_io() {
                    // Counting's refusal of an endless object, or the layer's read failure.
                    true => ReadError::Object {
                        at: at.clone(),
                        problem: source.to_string(),
                    },
                    false => ReadError::Json {
                        at: at.clone(),
                        source,
                    },
                })?;
                let end = skipped + stream.byte_offset();
                object_start.set(end);
                at.line = Some(newlines.borrow_mut().start_line(end, raw.get()));
                self.add(at, raw)?;
            }
        } else {
            // The YAML parser places its own errors; no need to remember every newline.
            newlines.borrow_mut().record = false;
            object_start.set(usize::MAX); // read whole, bounded below
            let text = read_bounded(r, YAML_LIMIT, file)?;
            if let Some(line) = flow_too_deep(&text, YAML_FLOW_DEPTH) {
                return Err(ReadError::Yaml {
                    at: Location {
                        file: file.to_string(),
                        object: 1,
                        line: Some(line),
                    },
                    message: format!("flow collections ([ or {{) nested more than {YAML_FLOW_DEPTH} deep, more than a catalog holds (the YAML parser's time grows with the square of the depth)"),
                });
            }
            let starts = document_lines(&text);
            for (object, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
                let at = Location {
                    file: file.to_string(),
                    object: object + 1,
                    line: starts.get(object).copied(),
                };
                let value = serde_json::Value::deserialize(doc).map_err(|e| ReadError::Yaml {
                    at: Location {
                        line: e.location().map(|l| l.line()).or(at.line),
                        ..at.clone()
                    },
                    message: e.to_string(),
                })?;
                if value.is_null() {
                    continue; // an empty document (`---` at the end)
                }
                let raw =
                    serde_json::value::to_raw_value(&value).map_err(|source| ReadError::Json {
                        at: at.clone(),
                        source,
                    })?;
                self.add(at, raw)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, at: Location, raw: Box<RawValue>) -> Result<(), ReadError> {
        let problem = |p: String| ReadError::Object {
            at: at.clone(),
            problem: p,
        };
        if !raw.get().trim_start().starts_with('{') {
            return Err(problem("not an object".to_string()));
        }
        let meta: Meta = serde_json::from_str(raw.get())
            .map_err(|e| finding(&at, "unreadable schema or package", &e))?;
        let schema = meta
            .schema
            .filter(|s| !s.is_empty())
            .ok_or_else(|| problem("the object has no \"schema\"".to_string()))?;
        let typed = |what: &str, e: serde_json::Error| finding(&at, &format!("not an {what}"), &e);
        let object = match schema.as_str() {
            SCHEMA_PACKAGE => Object::Package(
                serde_json::from_str(raw.get()).map_err(|e| typed(SCHEMA_PACKAGE, e))?,
            ),
            SCHEMA_CHANNEL => Object::Channel(
                serde_json::from_str(raw.get()).map_err(|e| typed(SCHEMA_CHANNEL, e))?,
            ),
            SCHEMA_DEPRECATIONS => Object::Deprecation(
                serde_json::from_str(raw.get()).map_err(|e| typed(SCHEMA_DEPRECATIONS, e))?,
            ),
            SCHEMA_BUNDLE => Object::Bundle(self.bundle(&at, raw)?),
            _ => Object::Other(Other {
                schema,
                package: meta.package.filter(|p| !p.is_empty()),
                raw,
            }),
        };
        self.objects.push((at, object));
        Ok(())
    }

    fn bundle(&self, at: &Location, raw: Box<RawValue>) -> Result<Bundle, ReadError> {
        let problem = |p: String| ReadError::Object {
            at: at.clone(),
            problem: p,
        };
        let b: BundleIn =
            serde_json::from_str(raw.get()).map_err(|e| finding(at, "not an olm.bundle", &e))?;
        let mut bundle = Bundle {
            name: b.name,
            package: b.package,
            image: b.image,
            version_text: None,
            version: None,
            related_images: b.related_images.unwrap_or_default(),
            provides: Vec::new(),
            requires_packages: Vec::new(),
            requires_gvks: Vec::new(),
            raw: None,
        };
        let value = |p: &PropertyIn, e: serde_json::Error| {
            problem(format!(
                "bundle {:?}: its {} property: {e}",
                bundle.name, p.kind
            ))
        };
        for p in &b.properties {
            match p.kind.as_str() {
                "olm.package" => {
                    let v: PackageProperty =
                        serde_json::from_str(p.value.get()).map_err(|e| value(p, e))?;
                    if bundle.version_text.is_some() {
                        return Err(problem(format!(
                            "bundle {:?} has more than one olm.package property",
                            bundle.name
                        )));
                    }
                    bundle.version = v
                        .version
                        .as_deref()
                        .and_then(|t| version::parse_strict(t).ok());
                    bundle.version_text = v.version;
                }
                "olm.gvk" => bundle
                    .provides
                    .push(serde_json::from_str(p.value.get()).map_err(|e| value(p, e))?),
                "olm.gvk.required" => bundle
                    .requires_gvks
                    .push(serde_json::from_str(p.value.get()).map_err(|e| value(p, e))?),
                "olm.package.required" => bundle
                    .requires_packages
                    .push(serde_json::from_str(p.value.get()).map_err(|e| value(p, e))?),
                _ => {}
            }
        }
        if self.opts.raw_bundles.keep(&bundle.package, &bundle.name) {
            bundle.raw = Some(raw);
        }
        Ok(bundle)
    }

    fn finish(self) -> Result<Catalog, ReadError> {
        let mut catalog = Catalog::default();
        let mut first: std::collections::HashMap<String, Location> = Default::default();
        let mut pending = Vec::new();
        // Packages first: the other objects may come before theirs.
        for (at, object) in self.objects {
            match object {
                Object::Package(p) => {
                    let key = format!("olm.package {:?}", p.name);
                    if let Some(f) = first.get(&key) {
                        return Err(ReadError::Duplicate {
                            at,
                            what: key,
                            first: f.to_string(),
                        });
                    }
                    first.insert(key, at);
                    catalog.packages.insert(
                        p.name.clone(),
                        PackageContent {
                            package: p,
                            channels: Default::default(),
                            bundles: Default::default(),
                            deprecation: None,
                        },
                    );
                }
                Object::Other(o) => catalog.others.push(o),
                other => pending.push((at, other)),
            }
        }
        for (at, object) in pending {
            let (package, what) = match &object {
                Object::Channel(c) => (c.package.clone(), format!("olm.channel {:?}", c.name)),
                Object::Bundle(b) => (b.package.clone(), format!("olm.bundle {:?}", b.name)),
                Object::Deprecation(d) => (d.package.clone(), "olm.deprecations".to_string()),
                Object::Package(_) | Object::Other(_) => unreachable!("placed above"),
            };
            let Some(content) = catalog.packages.get_mut(&package) else {
                return Err(ReadError::NoPackage { at, what, package });
            };
            let dup = |at: Location, first: &Location| ReadError::Duplicate {
                at,
                what: format!("{what} of package {package:?}"),
                first: first.to_string(),
            };
            let key = format!("{package}\0{what}");
            if let Some(f) = first.get(&key) {
                return Err(dup(at, f));
            }
            first.insert(key, at);
            match object {
                Object::Channel(c) => {
                    if let Entry::Vacant(v) = content.channels.entry(c.name.clone()) {
                        v.insert(c);
                    }
                }
                Object::Bundle(b) => {
                    if let Entry::Vacant(v) = content.bundles.entry(b.name.clone()) {
                        v.insert(b);
                    }
                }
                Object::Deprecation(d) => content.deprecation = Some(d),
                Object::Package(_) | Object::Other(_) => unreachable!("placed above"),
            }
        }
        Ok(catalog)
    }
}
