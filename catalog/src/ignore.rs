//! `.indexignore`: gitignore-style patterns, as opm reads them (`github.com/joelanford/ignore`
//! in `alpha/declcfg/load.go`). A file's patterns are relative to the directory holding it
//! and apply to everything beneath; a deeper file's verdict overrides a shallower one, and
//! within a file the last matching pattern wins (`!` re-includes).

pub const INDEX_IGNORE: &str = ".indexignore";

#[derive(Debug, Clone)]
struct Pattern {
    negate: bool,
    dir_only: bool,
    /// A pattern with a `/` before its end matches from the file's directory; one without
    /// matches a name at any depth.
    anchored: bool,
    segments: Vec<String>,
}

/// All `.indexignore` files of a tree: (directory relative to the root, patterns).
#[derive(Debug, Default, Clone)]
pub struct Matcher {
    files: Vec<(Vec<String>, Vec<Pattern>)>,
}

impl Matcher {
    /// Adds the `.indexignore` found in `dir` (components relative to the root).
    pub fn add(&mut self, dir: &[String], text: &str) {
        let patterns = text.lines().filter_map(parse_line).collect();
        self.files.push((dir.to_vec(), patterns));
        // Shallower first, so a deeper file's verdict comes last and wins.
        self.files.sort_by_key(|(d, _)| d.len());
    }

    /// Whether the file at `path` (components relative to the root) is ignored.
    pub fn ignored(&self, path: &[String]) -> bool {
        let mut verdict = false;
        for (dir, patterns) in &self.files {
            let Some(rel) = path.strip_prefix(dir.as_slice()) else {
                continue;
            };
            for p in patterns {
                if p.matches(rel) {
                    verdict = !p.negate;
                }
            }
        }
        verdict
    }
}

fn parse_line(line: &str) -> Option<Pattern> {
    let line = line.trim_end();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (negate, line) = match line.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, line.strip_prefix('\\').unwrap_or(line)),
    };
    let (dir_only, line) = match line.strip_suffix('/') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let anchored = line.contains('/');
    let line = line.strip_prefix('/').unwrap_or(line);
    if line.is_empty() {
        return None;
    }
    Some(Pattern {
        negate,
        dir_only,
        anchored,
        segments: line.split('/').map(str::to_string).collect(),
    })
}

impl Pattern {
    /// Whether the pattern names `rel` or a directory above it.
    fn matches(&self, rel: &[String]) -> bool {
        if self.anchored {
            // Every prefix: the file itself, or a directory holding it.
            (1..=rel.len()).any(|n| {
                let is_dir = n < rel.len();
                (is_dir || !self.dir_only) && match_segments(&self.segments, &rel[..n])
            })
        } else {
            let glob = &self.segments[0];
            rel.iter().enumerate().any(|(i, name)| {
                let is_dir = i + 1 < rel.len();
                (is_dir || !self.dir_only) && match_glob(glob.as_bytes(), name.as_bytes())
            })
        }
    }
}

fn match_segments(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                match_glob(first.as_bytes(), name.as_bytes()) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// One path component against `*`, `?`, `[set]` / `[!set]` / `[a-z]`, `\x`.
fn match_glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| match_glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && match_glob(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some((&c, s_rest)) = s.split_first() else {
                return false;
            };
            let Some(end) = rest.iter().skip(1).position(|&b| b == b']').map(|i| i + 1) else {
                // No closing bracket: a literal `[`.
                return c == b'[' && match_glob(rest, s_rest);
            };
            let (set, after) = (&rest[..end], &rest[end + 1..]);
            let (negated, set) = match set.first() {
                Some(b'!') | Some(b'^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negated && match_glob(after, s_rest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            s.first() == Some(&rest[0]) && match_glob(&rest[1..], &s[1..])
        }
        Some((&b, rest)) => s.first() == Some(&b) && match_glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn gitignore_rules() {
        let mut m = Matcher::default();
        m.add(&[], "# comment\n*.md\n/top.json\nscratch/\n!keep.md\n");
        m.add(&path("pkg"), "sub/*.yaml\n");
        assert!(m.ignored(&path("README.md")));
        assert!(m.ignored(&path("pkg/deep/notes.md")));
        assert!(!m.ignored(&path("keep.md")));
        assert!(m.ignored(&path("top.json")));
        assert!(!m.ignored(&path("pkg/top.json")), "anchored to the root");
        assert!(
            m.ignored(&path("a/scratch/x.json")),
            "a directory at any depth"
        );
        assert!(!m.ignored(&path("a/scratch")), "dir-only pattern, a file");
        assert!(m.ignored(&path("pkg/sub/c.yaml")));
        assert!(
            !m.ignored(&path("sub/c.yaml")),
            "relative to its own directory"
        );
        assert!(!m.ignored(&path("pkg/sub/deeper/c.yaml")));
        assert!(!m.ignored(&path("pkg/catalog.json")));
    }

    #[test]
    fn deeper_file_overrides_and_globs() {
        let mut m = Matcher::default();
        m.add(&path("a"), "!x.json\n");
        m.add(&[], "x.json\n**/gen/[0-9]?.json\n");
        assert!(m.ignored(&path("x.json")));
        assert!(!m.ignored(&path("a/x.json")));
        assert!(m.ignored(&path("b/gen/1a.json")));
        assert!(m.ignored(&path("gen/2b.json")));
        assert!(!m.ignored(&path("gen/ab.json")));
    }
}
