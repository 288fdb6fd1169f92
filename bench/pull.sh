#!/usr/bin/env bash
# Pull benchmark (issue 11 "Must reach"): on a >= 1 GiB mirror served by a local
# docker-registry, in one run, `ferry-pack pull` into an empty cache and again with the
# cache full, `ferry-pack CACHE` (pack of the cache), and `ferry-pack --config … --out …`
# (config to volumes in one command), against `skopeo sync --src docker --dest dir --all`
# and `skopeo copy --all docker://… oci:…` per image over the same images. Every command
# is timed BENCH_RUNS times, round-robin; the report gives medians, peak RSS, the ratios
# and the targets, and writes $BENCH_DIR/results-pull.{md,txt}. See bench/README.md.
#
# Usage: bench/pull.sh [-h]      (settings are environment variables, listed by -h)
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C

usage() {
  cat <<'EOF'
Usage: bench/pull.sh [-h]

Environment (all optional):
  BENCH_SIZE=1GiB          source size (fixtures/generate.py bench --size; >= 1GiB for real numbers)
  BENCH_SMALL_IMAGES=300   extra operator-bundle-like images of a few KiB (generate.py --small-images),
                           referenced by digest in the image set, as catalogs pin bundles
  BENCH_RUNS=3             timed runs per command; the report shows the median
  BENCH_DIR=/tmp/ferry-bench
                           the source registry's storage is generated once into
                           $BENCH_DIR/pull-source-<size>-small<N>/ and reused; outputs go to
                           $BENCH_DIR/pull-work/ (peak: about 3x the size, plus the source)
  BENCH_ONLY=all           all, skopeo (only the skopeo half) or ferry (only the ferry half)
  BENCH_JOBS=              ferry-pack pull --jobs (unset: ferry's default)
  BENCH_KEEP=0             1 keeps the last run's outputs in $BENCH_DIR/pull-work/
  FERRY_BIN_DIR=DIR        use ferry-pack from DIR; skips `cargo build --release -p pack`;
                           refused when older than the newest source file

The ferry half needs `ferry-pack pull`; with a ferry-pack that has none it is skipped with
a message and the skopeo half still runs.

Examples:
  bench/pull.sh                                              # the real run
  BENCH_DIR=/dev/shm/ferry-bench bench/pull.sh               # on tmpfs, when the disk is short
  BENCH_SIZE=64MiB BENCH_SMALL_IMAGES=40 BENCH_RUNS=1 bench/pull.sh   # smoke test
EOF
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND="$(for v in BENCH_SIZE BENCH_SMALL_IMAGES BENCH_RUNS BENCH_DIR BENCH_ONLY BENCH_JOBS; do
  [ -z "${!v:-}" ] || printf '%s=%q ' "$v" "${!v}"; done)bench/pull.sh"
SIZE=${BENCH_SIZE:-1GiB}
SMALL=${BENCH_SMALL_IMAGES:-300}
RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
ONLY=${BENCH_ONLY:-all}
KEEP=${BENCH_KEEP:-0}
VOLUME=4GiB
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench-pull: BENCH_RUNS must be a positive integer" >&2; exit 2; }
[[ $SMALL =~ ^[0-9]+$ ]] || { echo "bench-pull: BENCH_SMALL_IMAGES must be a number" >&2; exit 2; }
case "$ONLY" in all|skopeo|ferry) ;; *) echo "bench-pull: BENCH_ONLY is all, skopeo or ferry" >&2; exit 2 ;; esac

say() { echo "bench-pull: $*" >&2; }
die() { echo "bench-pull: error: $*" >&2; exit 2; }
BENCH_NAME=bench-pull
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------------------- set-up

ensure_tools() {
  # shellcheck disable=SC2046 # one word per package
  install_missing $(missing_packages time python3 skopeo docker-registry)
}

# Whether this ferry-pack has the pull subcommand: its own help must speak of --cache (an
# older binary would take `pull` for a mirror path, and --help would print the main help).
has_pull() {
  "$BIN/ferry-pack" pull --help 2>&1 | grep -q -- '--cache'
}

# The source: distribution's storage as generate.py writes it (the `registry` layout is
# what docker-registry 2.8.2 holds after skopeo pushed the images, checked file for file,
# fixtures/README.md), generated once and reused (lib.sh cached).
source_storage() {
  SOURCE=$(generated "pull-source-${SIZE// /}-small$SMALL" bench --size "$SIZE" --layout registry \
    --small-images "$SMALL")
}

REG_PID=
stop_registry() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  REG_PID=
}
trap stop_registry EXIT

start_registry() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$W/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $SOURCE}}
http: {addr: 127.0.0.1:$PORT, secret: bench-pull-secret}
YML
  docker-registry serve "$W/registry.yml" >"$W/logs/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 1 200); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/', timeout=1)" 2>/dev/null && return 0
    kill -0 "$REG_PID" 2>/dev/null || break
    sleep 0.05
  done
  die "docker-registry did not start: $(cat "$W/logs/registry.log")"
}

# The images, from the storage's tags, checked through the API (each manifest GET by tag
# hashes to the tag's link). Writes:
#   images.tsv    repository, tag, digest, by (tag|digest)
#   repos.txt     one repository a line (skopeo sync takes each with all its tags)
#   imageset.yaml additionalImages: registry.redhat.io/<repo>:<tag>, or @<digest> for the
#                 small images, as catalogs pin bundles
#   registries.conf  registry.redhat.io -> 127.0.0.1:PORT, insecure
list_images() {
  python3 - "$SOURCE" "$PORT" "$W" <<'PY'
import hashlib, json, os, sys, urllib.request
src, port, w = sys.argv[1], sys.argv[2], sys.argv[3]
repos_root = os.path.join(src, "docker", "registry", "v2", "repositories")
accept = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])
rows = []
for d, dirs, files in os.walk(repos_root):
    dirs.sort()
    if os.path.basename(d) == "_manifests":
        repo = os.path.relpath(os.path.dirname(d), repos_root)
        tags = os.path.join(d, "tags")
        for tag in sorted(os.listdir(tags)) if os.path.isdir(tags) else []:
            link = open(os.path.join(tags, tag, "current", "link")).read().strip()
            rows.append((repo, tag, link))
        dirs[:] = []
bad = 0
multi = 0
for repo, tag, digest in rows:
    req = urllib.request.Request("http://127.0.0.1:%s/v2/%s/manifests/%s" % (port, repo, tag),
                                 headers={"Accept": accept})
    body = urllib.request.urlopen(req, timeout=30).read()
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        bad += 1
    multi += b'"manifests"' in body
if bad:
    sys.exit("bench-pull: %d images are not served as stored" % bad)
q = lambda s: json.dumps(s)
with open(os.path.join(w, "images.tsv"), "w") as f, open(os.path.join(w, "imageset.yaml"), "w") as y:
    y.write("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n"
            "mirror:\n  additionalImages:\n")
    for repo, tag, digest in rows:
        by = "digest" if repo.startswith("bench-operators/") else "tag"
        f.write("%s\t%s\t%s\t%s\n" % (repo, tag, digest, by))
        ref = "registry.redhat.io/%s%s" % (repo, "@" + digest if by == "digest" else ":" + tag)
        y.write("  - name: %s\n" % q(ref))
with open(os.path.join(w, "repos.txt"), "w") as f:
    for r in sorted({r for r, _, _ in rows}):
        f.write(r + "\n")
with open(os.path.join(w, "registries.conf"), "w") as f:
    f.write('unqualified-search-registries = []\n\n[[registry]]\nprefix = "registry.redhat.io"\n'
            'location = "127.0.0.1:%s"\ninsecure = true\n' % port)
print("%d %d %d" % (len(rows), len({r for r, _, _ in rows}), multi))
PY
}

# ---------------------------------------------------------------------------- measuring

fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }


# The skopeo commands, as scripts so that one measurement covers every image.
write_skopeo_scripts() {
  cat >"$W/skopeo-sync.sh" <<EOF
#!/bin/sh
# skopeo sync --src docker --dest dir --all, one repository (all its tags) at a time.
set -e
while read -r repo; do
  skopeo sync --all --preserve-digests --retry-times 3 --src docker --dest dir \\
    --src-tls-verify=false "127.0.0.1:$PORT/\$repo" "\$1"
done <"$W/repos.txt"
EOF
  cat >"$W/skopeo-copy.sh" <<EOF
#!/bin/sh
# skopeo copy --all docker://… oci:… per image, every image into one OCI layout (its
# blobs shared, as a cache would be). No --preserve-digests: skopeo 1.9.3 refuses it for a
# docker manifest list going to oci: (it must convert it), so it converts docker manifests
# to OCI and gzips uncompressed layers, as oc-mirror v2's OCI cache gets them.
set -e
while IFS='	' read -r repo tag digest by; do
  if [ "\$by" = digest ]; then at="@\$digest"; else at=":\$tag"; fi
  skopeo copy --all --retry-times 3 --src-tls-verify=false -q \\
    "docker://127.0.0.1:$PORT/\$repo\$at" "oci:\$1:\$repo\$at"
done <"$W/images.tsv"
EOF
  chmod +x "$W/skopeo-sync.sh" "$W/skopeo-copy.sh"
}

# ---------------------------------------------------------------------------- main

ensure_tools
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/pull-work
fresh_workdir "$W" .ferry-bench-pull
FACTS=$W/facts TSV=$W/measurements.tsv
: >"$FACTS"; : >"$TSV"

FERRY=0 FERRY_NOTE=
if [ "$ONLY" != skopeo ]; then
  ferry_binaries ferry-pack
  if has_pull; then
    FERRY=1
  else
    FERRY_NOTE="skipped: $BIN/ferry-pack has no \`pull\` subcommand yet (\`ferry-pack pull --help\` does not mention --cache); build a ferry-pack that has it and run again"
    say "ferry steps $FERRY_NOTE"
  fi
fi
[ "$ONLY" != ferry ] || [ "$FERRY" = 1 ] || die "BENCH_ONLY=ferry, but $FERRY_NOTE"

source_storage
start_registry
read -r NIMAGES NREPOS NMULTI < <(list_images)
BLOB_BYTES=$(find "$SOURCE/docker/registry/v2/blobs" -name data -type f -printf '%s\n' | awk '{s += $1} END {print s}')
say "source on 127.0.0.1:$PORT: $NIMAGES images ($NMULTI multi-arch) in $NREPOS repositories, $BLOB_BYTES blob bytes"
write_skopeo_scripts

fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
fact cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
fact nproc "$(nproc)"
fact memory "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
fact kernel "$(uname -r)"
fact filesystem "$(df -T "$W" | awk 'NR == 2 {print $2 " (" $1 ")"}')"
fact load "$(cut -d' ' -f1-3 /proc/loadavg)"
fact skopeo "$(skopeo --version)"
fact registry "$(docker-registry --version 2>&1 | head -1)"
fact ferry "$([ -n "${BIN:-}" ] && "$BIN/ferry-pack" --version 2>/dev/null || echo none); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
fact images "$NIMAGES"; fact repos "$NREPOS"; fact multi "$NMULTI"; fact small "$SMALL"
fact blob_bytes "$BLOB_BYTES"; fact runs "$RUNS"; fact command "$COMMAND"
fact ferry_note "$FERRY_NOTE"; fact only "$ONLY"; fact jobs "${BENCH_JOBS:-}"

JOBS=(); [ -z "${BENCH_JOBS:-}" ] || JOBS=(--jobs "$BENCH_JOBS")
PULL_FLAGS=(--config "$W/imageset.yaml" --registries-conf "$W/registries.conf" -q "${JOBS[@]}")
KEY=$W/bench.key
[ "$FERRY" = 0 ] || "$BIN/ferry-pack" keygen "$KEY" >/dev/null

say "warm-up (untimed): cat the source's storage; all runs are warm-cache"
find "$SOURCE" -type f -print0 | xargs -0 cat >/dev/null

CACHE=$W/cache CACHE2=$W/cache-one OUT=$W/vols OUT2=$W/vols-one
for run in $(seq 1 "$RUNS"); do
  if [ "$ONLY" != ferry ]; then
    measure skopeo_sync "$run" "$W/sync" -- "$W/skopeo-sync.sh" "$W/sync"
    rm -rf "$W/sync"
    measure skopeo_copy "$run" "$W/oci" -- "$W/skopeo-copy.sh" "$W/oci"
    rm -rf "$W/oci"
  fi
  if [ "$FERRY" = 1 ]; then
    measure pull_first "$run" "$CACHE" -- "$BIN/ferry-pack" pull --cache "$CACHE" "${PULL_FLAGS[@]}"
    measure pull_again "$run" - -- "$BIN/ferry-pack" pull --cache "$CACHE" "${PULL_FLAGS[@]}"
    measure pack_cache "$run" "$OUT" -- \
      "$BIN/ferry-pack" "$CACHE" --out "$OUT" --volume-size "$VOLUME" --key "$KEY" -q
    rm -rf "$CACHE" "$OUT"
    measure one_command "$run" "$CACHE2" -- "$BIN/ferry-pack" --cache "$CACHE2" \
      --out "$OUT2" --volume-size "$VOLUME" --key "$KEY" "${PULL_FLAGS[@]}"
    [ "$KEEP" = 1 ] && [ "$run" = "$RUNS" ] || rm -rf "$CACHE2" "$OUT2"
  fi
done
stop_registry

# ---------------------------------------------------------------------------- report
python3 - "$FACTS" "$TSV" "$BENCH_DIR/results-pull.md" "$BENCH_DIR/results-pull.txt" <<'PY'
import statistics, sys
facts_f, tsv_f, md_f, txt_f = sys.argv[1:]
F = dict(l.rstrip("\n").split("=", 1) for l in open(facts_f) if "=" in l)
runs = {}
for l in open(tsv_f):
    i, run, wall, e, rss = l.split()
    runs.setdefault(i, []).append((float(wall), int(rss)))
med = {i: statistics.median(w for w, _ in v) for i, v in runs.items()}
peak = {i: max(r for _, r in v) / 1024 for i, v in runs.items()}
nbytes = int(F["blob_bytes"])
labels = [
    ("skopeo_sync", "skopeo sync --src docker --dest dir --all (per repository)"),
    ("skopeo_copy", "skopeo copy --all docker://… oci:… (per image, one layout)"),
    ("pull_first", "ferry-pack pull (empty cache)"),
    ("pull_again", "ferry-pack pull (cache full)"),
    ("pack_cache", "ferry-pack CACHE --volume-size 4GiB"),
    ("one_command", "ferry-pack --config … --out … (empty cache)"),
]
table = [(lab, "%.3f" % med[i], "%.0f" % (nbytes / 1e6 / med[i]) if med[i] > 0 else "-",
          "%.1f" % peak[i]) for i, lab in labels if i in runs]

def have(*ids):
    return all(i in med for i in ids)

targets = []
if have("pull_first", "skopeo_sync", "skopeo_copy"):
    best = min(med["skopeo_sync"], med["skopeo_copy"])
    r = best / med["pull_first"]
    targets.append(("first pull vs the faster skopeo", "%.2f× faster" % r, "≥ 1.5× faster", r >= 1.5))
if have("pull_first", "pull_again"):
    r = med["pull_again"] / med["pull_first"]
    targets.append(("second pull (cache full) vs first", "%.1f%% of its time" % (100 * r), "< 5%", r < 0.05))
if have("one_command", "pull_first", "pack_cache"):
    # Each round runs the three back to back, so the ratio of a round sees one state of
    # a shared, drifting machine; the median of those is the figure (the ratio of the
    # medians mixes rounds: one slow round of one command moves it). Best-of is shown too.
    per_round = [o / (p + k) for (p, _), (k, _), (o, _) in
                 zip(runs["pull_first"], runs["pack_cache"], runs["one_command"])]
    r = statistics.median(per_round)
    best = min(w for w, _ in runs["one_command"]) / (
        min(w for w, _ in runs["pull_first"]) + min(w for w, _ in runs["pack_cache"]))
    targets.append(("config → volumes in one command vs pull + pack",
                    "%.2f× their sum (rounds: %s; best-of %.2f×)"
                    % (r, ", ".join("%.2f" % x for x in per_round), best), "≤ 1.3×", r <= 1.3))
ferry_ids = [i for i in ("pull_first", "pull_again", "one_command") if i in peak]
if ferry_ids:
    m = max(peak[i] for i in ferry_ids)
    targets.append(("peak memory, pull", "%.1f MiB" % m, "< 200 MiB", m < 200))

machine = "%s, %s cores, %s RAM, Linux %s; %s; load average at start %s" % (
    F["cpu"], F["nproc"], F["memory"], F["kernel"], F["filesystem"], F["load"])
source = ("%s images (%s multi-arch, %s small images by digest) in %s repositories, %.1f MiB of "
          "blobs, generated by fixtures/generate.py bench --layout registry, served by %s"
          % (F["images"], F["multi"], F["small"], F["repos"], nbytes / 2**20, F["registry"]))

def txt_table(head, body):
    w = [max(len(str(r[k])) for r in [head] + body) for k in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w[k]) if k == 0 else str(c).rjust(w[k])
                              for k, c in enumerate(r)).rstrip()
    return "\n".join([fmt(head), fmt(["-" * x for x in w])] + [fmt(r) for r in body])

def md_table(head, body):
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in body])

head = ["command", "median s", "MB/s", "peak RSS MiB"]
t = ["ferry pull benchmark, %s" % F["date"], "machine: " + machine, "source:  " + source,
     "tools:   %s; ferry: %s" % (F["skopeo"], F["ferry"]),
     "median of %s run(s) each, warm cache; MB/s = source blob bytes (10^6) per second" % F["runs"],
     "", txt_table(head, table), ""]
if targets:
    t.append(txt_table(["target", "measured", "goal", "result"],
                       [(a, b, c, "PASS" if d else "FAIL") for a, b, c, d in targets]))
if F.get("ferry_note"):
    t.append("ferry steps " + F["ferry_note"])
if nbytes < 1 << 30:
    t.append("note: the source is smaller than 1 GiB: a smoke test, not numbers for BENCHMARKS.md")
text = "\n".join(t)
print(text)
open(txt_f, "w").write(text + "\n")
md = ["### Pull, %s, %s" % (F["date"], F["cpu"]), "", "- Machine: " + machine,
      "- Source: " + source, "- Tools: %s; ferry: %s" % (F["skopeo"], F["ferry"]),
      "- Median of %s run(s) per command, round-robin, all in one run of `%s`; warm cache; "
      "`skopeo sync` with `--preserve-digests`, `skopeo copy` without (skopeo 1.9.3 cannot keep a "
      "docker manifest list's digest in `oci:`; it converts to OCI and gzips uncompressed layers); peak RSS is the highest of the runs (`/usr/bin/time %%M`, "
      "the largest single process for the skopeo loops)." % (F["runs"], F["command"]), "",
      md_table(head, [("`%s`" % a,) + tuple(r) for a, *r in table])]
if targets:
    md += ["", md_table(["target", "measured", "goal", "result"],
                        [(a, b, c, "PASS" if d else "**FAIL**") for a, b, c, d in targets])]
if F.get("ferry_note"):
    md += ["", "ferry steps " + F["ferry_note"]]
open(md_f, "w").write("\n".join(md) + "\n")
print("\nwrote %s and %s" % (md_f, txt_f))
PY
