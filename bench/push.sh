#!/usr/bin/env bash
# Push benchmark (issue 13 item 5): `ferry-unpack push` of a packed bundle against `skopeo
# sync --all --preserve-digests` of the same images (a skopeo dir: tree), each into a fresh
# local docker-registry (CNCF distribution) on 127.0.0.1, in one run, on each set of images:
#
#   catalog  the operator-catalog-shaped mirror (`fixtures/generate.py catalog`, 2GB)
#   small    N small images (`fixtures/generate.py many`, 2x10^4): what the registry can take
#   bench    the older 1 GiB `generate.py bench` mirror (not run unless asked)
#
# Each round: a fresh registry, ferry's first push, its repeat push (everything present),
# then a fresh registry and skopeo. Every image is checked in the registry (by digest and by
# tag, through the API) after each tool, untimed. Ratios are paired per round (ferry / skopeo
# of the same round) and given as median with the spread (min-max). The registry's own CPU
# seconds (utime+stime of the docker-registry process, /proc/PID/stat) are measured for each
# command, beside ferry's (and skopeo's) from /usr/bin/time. The goal rows are appended to
# $BENCH_DIR/goals-push.tsv (goal, ferry, peer, value, limit, PASS|FAIL).
#
#   bench/push.sh                                         # catalog 3 rounds, small 1 round
#   BENCH_SETS=small BENCH_SMALL_IMAGES=2000 bench/push.sh
#   bench/push.sh -h                                      # all settings
#
# Usage: bench/push.sh [-h]      (settings are environment variables, listed by -h)
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C                  # "." in $EPOCHREALTIME and in numbers

usage() {
  cat <<'EOF'
Usage: bench/push.sh [-h]

Environment (all optional):
  BENCH_SETS="catalog small"
                         the sets of images, of: catalog, small, bench (see the script's head)
  BENCH_RUNS=3           rounds of catalog and of bench
  BENCH_SMALL_RUNS=1     rounds of small
  BENCH_CATALOG_SIZE=2GB catalog's mirror size (generate.py catalog --size)
  BENCH_SIZE=1GiB        bench's mirror size (generate.py bench --size)
  BENCH_SMALL_IMAGES=20000
                         images of the small set (generate.py many --images)
  BENCH_SMALL_PEER=1     0: no skopeo sync on the small set (it takes long)
  BENCH_SMALL_STORAGE=tmpfs
                         where the small set's registries keep their storage: tmpfs
                         (/dev/shm) or disk (BENCH_DIR). distribution syncs every file it
                         writes (about 12 fsyncs a small blob); on a disk whose syncs are
                         slow, as this VM's, the disk then sets the pace of any client, and
                         the registry's CPU (what the goal measures) shows only on tmpfs
  BENCH_JOBS=            ferry-unpack push --jobs (unset: ferry's own default)
  BENCH_DIR=/tmp/ferry-bench
                         cache and work directory: mirrors are kept as catalog-dir-<size>/,
                         mirror-dir-<size>/ and many-<N>/ (reused while their .stamp exists);
                         work files in push-work/; results in results-push.md; goal rows
                         appended to goals-push.tsv
  FERRY_BIN_DIR=DIR      use ferry-pack/ferry-unpack from DIR instead of building; refused when
                         older than the newest source file (no stale binary is ever timed)

Examples:
  bench/push.sh                                        # catalog 3 rounds, small 1 round
  BENCH_SETS=small BENCH_SMALL_IMAGES=2000 bench/push.sh
  BENCH_SETS=small BENCH_SMALL_IMAGES=300 BENCH_SMALL_PEER=0 bench/push.sh   # smoke test
EOF
}
case "$#:${1:-}" in
  0:) ;;
  1:-h|1:--help) usage; exit 0 ;;
  *) echo "bench-push: unknown argument '$1' (settings are environment variables)" >&2; usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
SETS=${BENCH_SETS-catalog small}
RUNS=${BENCH_RUNS:-3}
SMALL_RUNS=${BENCH_SMALL_RUNS:-1}
CATALOG_SIZE=${BENCH_CATALOG_SIZE:-2GB}
BENCH_SIZE=${BENCH_SIZE:-1GiB}
SMALL_IMAGES=${BENCH_SMALL_IMAGES:-20000}
SMALL_PEER=${BENCH_SMALL_PEER:-1}
SMALL_STORAGE=${BENCH_SMALL_STORAGE:-tmpfs}
JOBS=${BENCH_JOBS:-}
bad() { echo "bench-push: $*" >&2; exit 2; }
for v in RUNS SMALL_RUNS SMALL_IMAGES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bad "BENCH_$v must be a positive integer"
done
[ -z "$JOBS" ] || [[ $JOBS =~ ^[1-9][0-9]*$ ]] || bad "BENCH_JOBS must be a positive integer"
case "$SMALL_PEER" in 0|1) ;; *) bad "BENCH_SMALL_PEER must be 0 or 1" ;; esac
case "$SMALL_STORAGE" in
  disk) ;;
  tmpfs) [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] ||
    bad "BENCH_SMALL_STORAGE=tmpfs: /dev/shm is not a tmpfs here (give BENCH_SMALL_STORAGE=disk)" ;;
  *) bad "BENCH_SMALL_STORAGE must be tmpfs or disk" ;;
esac
[ -n "${SETS// /}" ] || bad "BENCH_SETS is empty (catalog, small, bench)"
for set in $SETS; do
  case "$set" in catalog|small|bench) ;; *) bad "BENCH_SETS: unknown set $set (catalog, small, bench)" ;; esac
done

say() { echo "bench-push: $*" >&2; }
die() { say "error: $*"; exit 1; }
BENCH_NAME=bench-push
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

"$ROOT/scripts/deps.sh"
mapfile -t need < <(missing_packages time)
install_missing "${need[@]}"
ferry_binaries
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/push-work
# One push benchmark per BENCH_DIR at a time: a second would empty the first's work
# directory under it (and both would time each other's load).
exec 9>"$BENCH_DIR/push.lock"
flock -n 9 || die "another bench/push.sh uses $BENCH_DIR (give another BENCH_DIR, or wait for it)"
rm -rf "$W"; mkdir -p "$W/logs"
KEY=$W/bench.key
"$BIN/ferry-pack" keygen "$KEY" >/dev/null
JOBS_FLAG=(); [ -z "$JOBS" ] || JOBS_FLAG=(--jobs "$JOBS")

# small_images N OUT: N small images as an OCI layout OUT/oci, and the same images as a
# skopeo dir: tree OUT/dir (blobs hard-linked) for skopeo sync.
small_images() {
  python3 "$ROOT/fixtures/generate.py" many --out "$2/oci" --images "$1" &&
    python3 - "$2/oci" "$2/dir" <<'PY'
import json, os, sys
oci, out = sys.argv[1:]
blobs = os.path.join(oci, "blobs", "sha256")
for m in json.load(open(os.path.join(oci, "index.json")))["manifests"]:
    d = os.path.join(out, *m["annotations"]["org.opencontainers.image.ref.name"].split("/"))
    os.makedirs(d)
    man = json.load(open(os.path.join(blobs, m["digest"][7:]), "rb"))
    for b in [man["config"]] + man["layers"]:
        os.link(os.path.join(blobs, b["digest"][7:]), os.path.join(d, b["digest"][7:]))
    os.link(os.path.join(blobs, m["digest"][7:]), os.path.join(d, "manifest.json"))
    with open(os.path.join(d, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
PY
}

# mirror SET: prints "PACK_SOURCE SKOPEO_DIR_TREE" of the set, generated once (kept under
# BENCH_DIR with a stamp: lib.sh's cached).
mirror() {
  local m
  case "$1" in
    catalog) m=$(generated "catalog-dir-$CATALOG_SIZE" catalog --size "$CATALOG_SIZE" --layout dir)
      echo "$m $m" ;;
    bench) m=$(generated "mirror-dir-$BENCH_SIZE" bench --size "$BENCH_SIZE" --layout dir)
      echo "$m $m" ;;
    small) m=$(cached "many-$SMALL_IMAGES" small_images "$SMALL_IMAGES")
      echo "$m/oci $m/dir" ;;
  esac
}

# expect TREE OUT: one line per image of a skopeo dir: tree, "repository<TAB>tag<TAB>digest"
# (tag empty for a digest-only image), what check_registry looks for.
expect() {
  python3 - "$1" "$2" <<'PY'
import hashlib, os, sys
tree, out = sys.argv[1:]
with open(out, "w") as f:
    for d, _, files in os.walk(tree):
        if "manifest.json" not in files:
            continue
        name = os.path.relpath(d, tree)
        digest = "sha256:" + hashlib.sha256(open(os.path.join(d, "manifest.json"), "rb").read()).hexdigest()
        repo, tag = (name.split("@")[0], "") if "@" in name else name.rsplit(":", 1)
        f.write("%s\t%s\t%s\n" % (repo, tag, digest))
PY
}

# reg_dir SET: where the registries of SET keep their storage.
TMPFS_REG=/dev/shm/ferry-bench-push-reg.$$
reg_dir() {
  if [ "$1" = small ] && [ "$SMALL_STORAGE" = tmpfs ]; then
    echo "$TMPFS_REG"
  else
    echo "$W/reg"
  fi
}
trap 'stop_registry; rm -rf "$TMPFS_REG"' EXIT

TSV=$W/times.tsv; : >"$TSV"
# pmeasure SET ID RUN -- COMMAND...: wall, the command's CPU, its peak RSS, the registry's CPU.
pmeasure() {
  local set=$1 id=$2 run=$3; shift 4
  local log="$W/logs/$set.$id.$run.log" tf="$W/logs/$set.$id.$run.time"
  local c0 c1 t0 t1 rc=0
  c0=$(cpu_seconds "$REG_PID"); t0=$EPOCHREALTIME
  /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME; c1=$(cpu_seconds "$REG_PID")
  # Only a complete run is a timed success: a push that exits 3 (some image incomplete)
  # or any other failure ends the benchmark, naming it.
  [ "$rc" -eq 0 ] || { tail -20 "$log" >&2; die "$set $id exited $rc (not a timed success)"; }
  local wall user sys rss
  wall=$(elapsed "$t0" "$t1")
  read -r user sys rss < <(tail -n 1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$id" "$run" "$wall" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" "$rss" \
    "$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" >>"$TSV"
  say "$set run $run $id: $(tail -1 "$TSV" | cut -f4) s, own CPU $(tail -1 "$TSV" | cut -f5) s, registry CPU $(tail -1 "$TSV" | cut -f7) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

# check_registry WHO NAMING EXPECT: every image is in the registry by its manifest's
# digest and, for a tagged one, by its tag too, under bench/<its repository path> (NAMING
# `path`: ferry) or bench/<its last path component> (`basename`: skopeo sync from a dir:
# tree names each image by its directory's name alone); run after each tool, untimed, so a
# tool that skipped an image does not pass as fast.
check_registry() {
  python3 - "127.0.0.1:$PORT" "$1" "$2" "$3" <<'PY' || die "$1: the registry lacks images (above)"
import sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
reg, who, naming, expect = sys.argv[1:]
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
checks = []
for line in open(expect):
    repo, tag, digest = line.rstrip("\n").split("\t")
    if naming == "basename":
        repo = repo.rsplit("/", 1)[-1]
    checks += [(repo, ref, digest) for ref in [digest] + ([tag] if tag else [])]
def check(c):
    got = digest_at(c[0], c[1])
    return None if got == c[2] else "%s: bench/%s@%s: %s (want %s)" % (who, c[0], c[1], got, c[2])
with ThreadPoolExecutor(8) as pool:
    bad = [b for b in pool.map(check, checks) if b]
for b in bad[:20]:
    print(b, file=sys.stderr)
images = sum(1 for _ in open(expect))
print("%s: %d image(s) checked in the registry (%d references), %d missing"
      % (who, images, len(checks), len(bad)), file=sys.stderr)
sys.exit(1 if bad or not images else 0)
PY
}

ferry_push() {  # SET ID RUN
  pmeasure "$1" "$2" "$3" -- "$BIN/ferry-unpack" push "$W/$1/vols" --trust "$KEY.pub" \
    --to "127.0.0.1:$PORT/bench" --insecure "${JOBS_FLAG[@]}" --state "$W/$1/state" \
    --manifests-dir "$W/$1/manifests"
}

for set in $SETS; do
  pair=$(mirror "$set")
  read -r SRC TREE <<<"$pair"
  mkdir -p "$W/$set"
  expect "$TREE" "$W/$set/expect.tsv"
  say "$set: $(wc -l <"$W/$set/expect.tsv") images; packing (untimed)"
  "$BIN/ferry-pack" "$SRC" --out "$W/$set/vols" --volume-size 8GiB --key "$KEY" -q >/dev/null
  say "$set: warm-up (untimed): cat the volumes and the mirror"
  cat "$W/$set"/vols/*.tar >/dev/null; find "$TREE" -type f -print0 | xargs -0 cat >/dev/null
  rounds=$RUNS; [ "$set" != small ] || rounds=$SMALL_RUNS
  for run in $(seq 1 "$rounds"); do
    rm -rf "$W/$set/state" "$W/$set/manifests"
    sync
    start_registry "$(reg_dir "$set")"
    ferry_push "$set" ferry_first "$run"
    check_registry "$set ferry_first" path "$W/$set/expect.tsv"
    ferry_push "$set" ferry_repeat "$run"
    check_registry "$set ferry_repeat" path "$W/$set/expect.tsv"
    stop_registry
    if [ "$set" != small ] || [ "$SMALL_PEER" = 1 ]; then
      sync
      start_registry "$(reg_dir "$set")"
      pmeasure "$set" skopeo_sync "$run" -- skopeo sync --all --preserve-digests --src dir --dest docker \
        --dest-tls-verify=false "$TREE" "127.0.0.1:$PORT/bench"
      check_registry "$set skopeo_sync" basename "$W/$set/expect.tsv"
      stop_registry
    fi
  done
  rm -rf "$(reg_dir "$set")"
done

python3 - "$TSV" "$BENCH_DIR/results-push.md" "$BENCH_DIR/goals-push.tsv" "${JOBS:-default}" \
  "$CATALOG_SIZE" "$SMALL_IMAGES" "$W" "$SMALL_STORAGE" <<'PY'
import datetime, os, statistics, sys
tsv, out, goals, jobs, catalog_size, small_images, work, small_storage = sys.argv[1:]
rows = {}
for l in open(tsv):
    s, i, r, wall, cpu, rss, reg = l.rstrip("\n").split("\t")
    rows.setdefault(s, {}).setdefault(i, {})[int(r)] = (float(wall), float(cpu), int(rss) / 1024, float(reg))
def images(s):
    return sum(1 for _ in open(os.path.join(work, s, "expect.tsv")))
def spread(v, fmt):
    v = sorted(v)
    med = statistics.median(v)
    return med, (fmt % med) + ("" if len(v) == 1 else " (" + fmt % v[0] + "–" + fmt % v[-1] + ")")
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
load = open("/proc/loadavg").read().split()[:3]
lines = ["### Push, %s, %s, %d cores (load average at the end %s)" % (
    datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), cpu, os.cpu_count(), " ".join(load)), "",
    "Each tool into a fresh docker-registry (CNCF distribution 2.8) on 127.0.0.1; ferry `--jobs %s`; "
    "ratios paired per round, median (min–max). CPU s: the command's user+system; registry CPU s: "
    "the docker-registry process's during the command." % jobs, "",
    "| set | command | rounds | wall s | CPU s | registry CPU s | busy cores | images/s | peak RSS MiB |",
    "|---|---|---|---|---|---|---|---|---|"]
goal_rows = []
names = {"catalog": "%s catalog mirror" % catalog_size,
         "small": "%s small images (registry storage on %s)" % (small_images, small_storage),
         "bench": "bench mirror"}
for s, ids in rows.items():
    n = images(s)
    for i in ["ferry_first", "ferry_repeat", "skopeo_sync"]:
        if i not in ids:
            continue
        v = list(ids[i].values())
        med = lambda k: statistics.median(x[k] for x in v)
        busy = statistics.median((x[1] + x[3]) / x[0] for x in v)
        lines.append("| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.0f | %.1f |" % (
            names[s], i, len(v), med(0), med(1), med(3), busy, n / med(0), max(x[2] for x in v)))
    first, rep = ids["ferry_first"], ids["ferry_repeat"]
    rounds = sorted(first)
    if "skopeo_sync" in ids:
        sk = ids["skopeo_sync"]
        m, text = spread([first[r][0] / sk[r][0] for r in rounds if r in sk], "%.2f×")
        limit = 0.5 if s == "catalog" else None
        goal_rows.append(("push vs skopeo sync --all --preserve-digests, %s" % names[s],
                          "%.2f s" % statistics.median(first[r][0] for r in rounds),
                          "%.2f s" % statistics.median(sk[r][0] for r in sk), text,
                          "<=0.5x" if limit else "-", ("PASS" if m <= limit else "FAIL") if limit else "-"))
    m, text = spread([100 * rep[r][0] / first[r][0] for r in rounds], "%.1f%%")
    goal_rows.append(("repeat push (everything present) vs first push, %s" % names[s],
                      "%.2f s" % statistics.median(rep[r][0] for r in rounds),
                      "%.2f s" % statistics.median(first[r][0] for r in rounds), text, "<5%",
                      "PASS" if m < 5 else "FAIL"))
    if s == "small":
        # Both cores busy: ferry's CPU and the registry's together over the wall time.
        v = [first[r] for r in rounds]
        busy = statistics.median((x[1] + x[3]) / x[0] for x in v)
        goal_rows.append(("push, %s: the registry is the limit (both cores busy)" % names[s],
                          "%.0f images/s, ferry %.1f CPU s" % (n / statistics.median(x[0] for x in v),
                                                              statistics.median(x[1] for x in v)),
                          "registry %.1f CPU s" % statistics.median(x[3] for x in v),
                          "%.2f cores" % busy, ">=1.6 cores", "PASS" if busy >= 1.6 else "FAIL"))
    peak = max(x[2] for i in ["ferry_first", "ferry_repeat"] for x in ids[i].values())
    goal_rows.append(("peak memory, push, %s" % names[s], "%.1f MiB" % peak, "-", "%.1f MiB" % peak,
                      "<=200 MiB", "PASS" if peak <= 200 else "FAIL"))
lines += ["", "| goal | ferry | peer | value | limit | result |", "|---|---|---|---|---|---|"]
lines += ["| %s |" % " | ".join(g) for g in goal_rows]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
with open(goals, "a") as f:
    for g in goal_rows:
        f.write("\t".join(g) + "\n")
print(text)
PY
say "wrote $BENCH_DIR/results-push.md and appended to $BENCH_DIR/goals-push.tsv"
