#!/usr/bin/env bash
# Push benchmark: `ferry-unpack push` of a packed bundle against `skopeo sync`
# of the same images (their skopeo dir: layout, `--all --preserve-digests`), each into a
# fresh local docker-registry (CNCF distribution) on 127.0.0.1, in one run; then a second
# push of the same bundle into the filled registry. Medians of BENCH_RUNS rounds.
#
#   bench/push.sh                     # 1 GiB mirror, 3 rounds
#   BENCH_SIZE=64MiB BENCH_RUNS=1 bench/push.sh
#
# Environment: BENCH_DIR (default /tmp/ferry-bench: cached mirror, work files, results-push.md),
# BENCH_SIZE (1GiB), BENCH_RUNS (3), BENCH_JOBS (ferry --jobs, 4), FERRY_BIN_DIR (skip the build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
SIZE=${BENCH_SIZE:-1GiB}
RUNS=${BENCH_RUNS:-3}
JOBS=${BENCH_JOBS:-4}
say() { echo "bench-push: $*" >&2; }
die() { say "error: $*"; exit 1; }

"$ROOT/scripts/deps.sh"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ -n "${FERRY_BIN_DIR:-}" ]; then BIN=$FERRY_BIN_DIR; else
  (cd "$ROOT" && cargo build --release -q -p pack -p unpack); BIN=$ROOT/target/release; fi
mkdir -p "$BENCH_DIR"
MIRROR=$BENCH_DIR/mirror-dir-$SIZE
if [ ! -f "$MIRROR.stamp" ]; then
  rm -rf "$MIRROR"
  say "generating a $SIZE mirror in skopeo dir: layout at $MIRROR"
  python3 "$ROOT/fixtures/generate.py" bench --out "$MIRROR" --size "$SIZE" --layout dir >&2
  date -u +%FT%TZ >"$MIRROR.stamp"
fi
W=$BENCH_DIR/push-work
rm -rf "$W"; mkdir -p "$W/logs"
KEY=$W/bench.key
"$BIN/ferry-pack" keygen "$KEY" >/dev/null
say "packing (untimed)"
"$BIN/ferry-pack" "$MIRROR" --out "$W/vols" --volume-size 4GiB --key "$KEY" -q >/dev/null
say "warm-up (untimed): cat the volumes and the mirror"
cat "$W"/vols/*.tar >/dev/null; find "$MIRROR" -type f -print0 | xargs -0 cat >/dev/null

REG_PID=
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() {  # fresh storage each time
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir/data"
  PORT=$(free_port)
  cat >"$dir/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/data}}
http: {addr: 127.0.0.1:$PORT, secret: bench-secret}
YML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return 0
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/')" 2>/dev/null && return 0
    sleep 0.1
  done
  die "registry did not start: $(cat "$dir/log")"
}
stop_registry() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; REG_PID=; }
trap stop_registry EXIT

TSV=$W/times.tsv; : >"$TSV"
measure() {  # ID RUN -- COMMAND...
  local id=$1 run=$2; shift 3
  local t0=$EPOCHREALTIME rc=0
  /usr/bin/time -f '%M' -o "$W/logs/$id.$run.rss" "$@" >"$W/logs/$id.$run.log" 2>&1 || rc=$?
  local t1=$EPOCHREALTIME
  # Only a complete run is a timed success: a push that exits 3 (some image incomplete)
  # or any other failure ends the benchmark, naming it.
  [ "$rc" -eq 0 ] || { tail -20 "$W/logs/$id.$run.log" >&2; die "$id exited $rc (not a timed success)"; }
  local us=$(( 10#${t1/./} - 10#${t0/./} ))
  printf '%s\t%s\t%d.%06d\t%s\n' "$id" "$run" $((us / 1000000)) $((us % 1000000)) "$(tail -1 "$W/logs/$id.$run.rss")" >>"$TSV"
  say "run $run $id $(tail -1 "$TSV" | cut -f3) s"
}

# check_registry ID NAMING: every image of the mirror is in the registry by its manifest's
# digest and, for a tagged one, by its tag too, under bench/<its repository path> (NAMING
# `path`: ferry) or bench/<its last path component> (`basename`: skopeo sync from a dir:
# tree names each image by its directory's name alone); run after each tool, untimed, so a
# tool that skipped an image does not pass as fast.
check_registry() {
  python3 - "$MIRROR" "127.0.0.1:$PORT" "$1" "$2" <<'PY' || die "$1: the registry lacks images (above)"
import hashlib, os, sys, urllib.request
mirror, reg, who, naming = sys.argv[1:]
accept = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])
def digest_at(repo, ref):
    req = urllib.request.Request("http://%s/v2/bench/%s/manifests/%s" % (reg, repo, ref),
                                 method="HEAD", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req) as r:
            return r.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as e:
        return "HTTP %d" % e.code
images = missing = 0
for d, _, files in os.walk(mirror):
    if "manifest.json" not in files:
        continue
    images += 1
    name = os.path.relpath(d, mirror)
    digest = "sha256:" + hashlib.sha256(open(os.path.join(d, "manifest.json"), "rb").read()).hexdigest()
    repo, tag = (name.split("@")[0], None) if "@" in name else name.rsplit(":", 1)
    if naming == "basename":
        repo = repo.rsplit("/", 1)[-1]
    for ref in [digest] + ([tag] if tag else []):
        got = digest_at(repo, ref)
        if got != digest:
            missing += 1
            print("%s: bench/%s@%s: %s (want %s)" % (who, repo, ref, got, digest), file=sys.stderr)
print("%s: %d image(s) checked in the registry, %d missing" % (who, images, missing), file=sys.stderr)
sys.exit(1 if missing or not images else 0)
PY
}

for run in $(seq 1 "$RUNS"); do
  sync
  start_registry "$W/reg-ferry"
  measure ferry_first "$run" -- "$BIN/ferry-unpack" push "$W/vols" --trust "$KEY.pub" \
    --to "127.0.0.1:$PORT/bench" --insecure --jobs "$JOBS" --state "$W/state" --manifests-dir "$W/manifests"
  check_registry ferry_first path
  measure ferry_repeat "$run" -- "$BIN/ferry-unpack" push "$W/vols" --trust "$KEY.pub" \
    --to "127.0.0.1:$PORT/bench" --insecure --jobs "$JOBS" --state "$W/state" --manifests-dir "$W/manifests"
  check_registry ferry_repeat path
  stop_registry
  sync
  start_registry "$W/reg-skopeo"
  measure skopeo_sync "$run" -- skopeo sync --all --preserve-digests --src dir --dest docker \
    --dest-tls-verify=false "$MIRROR" "127.0.0.1:$PORT/bench"
  check_registry skopeo_sync basename
  stop_registry
done

BLOB_BYTES=$(du -sb --apparent-size "$MIRROR" | cut -f1)
python3 - "$TSV" "$BENCH_DIR/results-push.md" "$SIZE" "$BLOB_BYTES" "$JOBS" <<'PY'
import statistics, sys, datetime, os, subprocess
tsv, out, size, nbytes, jobs = sys.argv[1:]
runs = {}
for l in open(tsv):
    i, r, s, rss = l.split("\t")
    runs.setdefault(i, []).append((float(s), int(rss) / 1024))
med = {i: statistics.median(s for s, _ in v) for i, v in runs.items()}
peak = {i: max(m for _, m in v) for i, v in runs.items()}
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
lines = ["### Push, %s, %s, %d cores" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), cpu, os.cpu_count()),
         "", "- Mirror: %s generated by `fixtures/generate.py bench --layout dir` (%d bytes); ferry pushes its bundle (one 4 GiB volume), skopeo syncs the dir: layout." % (size, int(nbytes)),
         "- Each into a fresh docker-registry 2.8.2 on 127.0.0.1; median of %d rounds; ferry `--jobs %s`." % (len(runs["ferry_first"]), jobs), "",
         "| command | median s | MB/s | peak RSS MiB |", "|---|---|---|---|"]
for i, label in [("ferry_first", "ferry-unpack push (first)"), ("ferry_repeat", "ferry-unpack push (repeat, all present)"), ("skopeo_sync", "skopeo sync --all --preserve-digests")]:
    lines.append("| `%s` | %.3f | %.0f | %.1f |" % (label, med[i], int(nbytes) / 1e6 / med[i], peak[i]))
first, rep, sk = med["ferry_first"], med["ferry_repeat"], med["skopeo_sync"]
t = [("first push vs skopeo sync", "%.2f× faster" % (sk / first), "≥ 1.5× faster", sk / first >= 1.5),
     ("repeat push vs first push", "%.1f%% of its time" % (100 * rep / first), "< 5%", rep / first < 0.05),
     ("peak memory, push", "%.1f MiB" % max(peak["ferry_first"], peak["ferry_repeat"]), "< 200 MiB", max(peak["ferry_first"], peak["ferry_repeat"]) < 200)]
lines += ["", "| target | measured | goal | result |", "|---|---|---|---|"]
lines += ["| %s | %s | %s | %s |" % (a, b, c, "PASS" if d else "**FAIL**") for a, b, c, d in t]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
say "wrote $BENCH_DIR/results-push.md"
