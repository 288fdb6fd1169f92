#!/usr/bin/env bash
# Issue 13's "Done when": runs the benchmarks that measure the issue's table with the settings
# it names, then prints every goal with ferry's figure, the peer's figure from the same run,
# the ratio or value, the limit and PASS/FAIL; exits 1 when any goal fails or was not measured.
#
#   bench/field.sh   FIELD_SIZE=2GB, the many-images series 2x10^3..6x10^4 (memory of every
#                    path, the bundle manifest's size), pack vs tar cf + sync;
#   bench/field.sh   FIELD_SIZE=8GB FIELD_ONLY=catalog: pack vs tar cf + sync at 8 GB;
#   bench/push.sh    push vs skopeo sync --all --preserve-digests into docker-registry, the
#                    small-images push and the repeat push (its own goal rows).
# Each script appends rows `goal<TAB>ferry<TAB>peer<TAB>value<TAB>limit<TAB>PASS|FAIL` to
# $BENCH_DIR/goals-<script>.tsv; this script empties those files first, so the table is of
# this run only.
#
# Usage: bench/goals.sh [-h]      (settings are environment variables, listed by -h)
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C

usage() {
  cat <<'EOF'
Usage: bench/goals.sh [-h]

Environment (all optional):
  GOALS_RUNS=5           rounds of each catalog-mirror and push comparison
  GOALS_IMAGES="2000 5000 20000 60000"
                         the many-images series (the issue's table: 2000, 20000, 60000)
  GOALS_PUSH_MAX=60000   push, receipt and pull back in the series up to this many images
                         (the goal is every path; 60000 takes about 25 min with the registry's
                         storage on tmpfs, field.sh's FIELD_REG_STORAGE)
  GOALS_SIZES="2GB 8GB"  catalog mirror sizes for pack vs tar cf + sync
  GOALS_SKIP=            space-separated parts not to run: field, field-8GB, push (their goals
                         then show as NOT RUN and the exit status is 1)
  BENCH_DIR=/tmp/ferry-bench
                         caches, work directories, results; the table goes to
                         $BENCH_DIR/goals.{txt,md}
  FERRY_BIN_DIR=DIR      use ferry-pack/ferry-unpack from DIR instead of building; refused when
                         older than the newest source file
Other settings of bench/push.sh (its BENCH_* variables) pass through.

Disk: about 25 GB at most (the 8 GB mirror with its volumes, the cached 2 GB and many-images
mirrors). Time: an hour or more (most of it pushes, and generating mirrors the first time).
EOF
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${GOALS_RUNS:-5}
IMAGES=${GOALS_IMAGES-2000 5000 20000 60000}
PUSH_MAX=${GOALS_PUSH_MAX:-60000}
SIZES=${GOALS_SIZES-2GB 8GB}
SKIP=" ${GOALS_SKIP:-} "
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "goals: GOALS_RUNS must be a positive integer" >&2; exit 2; }

say() { echo "goals: $*" >&2; }
die() { echo "goals: error: $*" >&2; exit 2; }
BENCH_NAME=goals
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

if [ -n "${FERRY_BIN_DIR:-}" ]; then
  BIN=$(cd "$FERRY_BIN_DIR" && pwd)
else
  say "cargo build --release -p pack -p unpack"
  (cd "$ROOT" && cargo build --release -p pack -p unpack)
  # cargo just found them fresh, but does not relink a binary that a change elsewhere (a
  # crate it does not use) leaves as it is: mark them as checked now for refuse_stale.
  touch "${CARGO_TARGET_DIR:-$ROOT/target}/release/ferry-pack" "${CARGO_TARGET_DIR:-$ROOT/target}/release/ferry-unpack"
  BIN=$(cd "${CARGO_TARGET_DIR:-$ROOT/target}/release" && pwd)
fi
refuse_stale "$BIN"
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
export BENCH_DIR FERRY_BIN_DIR=$BIN
: >"$BENCH_DIR/goals-field.tsv"
: >"$BENCH_DIR/goals-push.tsv"
LOG=$BENCH_DIR/goals.log
: >"$LOG"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
failed_parts=()

# part NAME COMMAND...: runs one benchmark, its output to the terminal and goals.log; a
# benchmark that fails is recorded (its goals then show as missing), the others still run.
part() {
  local name=$1; shift
  case "$SKIP" in *" $name "*) say "skipping $name (GOALS_SKIP)"; return 0 ;; esac
  say "running $name: $*"
  if ! "$@" 2>&1 | tee -a "$LOG"; then
    say "$name failed (above; whole output in $LOG)"
    failed_parts+=("$name")
  fi
}

first=1
for size in $SIZES; do
  if [ "$first" = 1 ]; then
    part field env FIELD_SIZE="$size" FIELD_RUNS="$RUNS" FIELD_IMAGES="$IMAGES" \
      FIELD_PUSH_MAX="$PUSH_MAX" FIELD_RESULTS="results-field-$size" "$ROOT/bench/field.sh"
    first=0
  else
    # Only the catalog mirror, and no extract: the goal at this size is pack's speed, and
    # extracting would need another FIELD_SIZE of disk.
    part "field-$size" env FIELD_SIZE="$size" FIELD_RUNS="$RUNS" FIELD_ONLY=catalog \
      FIELD_EXTRACT=0 FIELD_RESULTS="results-field-$size" "$ROOT/bench/field.sh"
  fi
done
part push env BENCH_RUNS="${BENCH_RUNS:-$RUNS}" "$ROOT/bench/push.sh"

python3 - "$BENCH_DIR" "$started" "$IMAGES" "$SIZES" "${failed_parts[*]:-}" <<'PY'
import os, sys
bench_dir, started, images, sizes, failed = sys.argv[1:]
rows = []
for script in ["field", "push"]:
    path = os.path.join(bench_dir, "goals-%s.tsv" % script)
    for l in open(path) if os.path.exists(path) else []:
        f = l.rstrip("\n").split("\t")
        if len(f) == 6:
            rows.append([script] + f)
# The issue's table, row by row, whatever the settings: a run that leaves a row out (fewer
# image counts, other sizes, a part skipped) shows it MISSING and does not pass.
need = []
for n in ("2000", "20000", "60000"):
    for op in ("pack", "verify", "inspect"):
        need.append("peak memory, %s, %s images" % (op, n))
# "Every path" at the largest count: the unpack side, and the connected side (pull of every
# image back out of the registry the push filled, pack --config of that cache).
for op in ("extract", "push", "receipt", "status", "pull", "pack --config of the pulled cache"):
    need.append("peak memory, %s, 60000 images" % op)
need += ["bundle manifest, 60000 images", "bundle manifest, 60000 images, share of a 4 GiB volume"]
for s in ("2GB", "8GB"):
    need.append("pack vs tar cf+sync, %s catalog mirror" % s)
have = {r[1] for r in rows}
for g in need:
    if g not in have:
        rows.append(["field", g, "-", "-", "-", "-", "MISSING"])
if not any(r[0] == "push" for r in rows):
    rows.append(["push", "push goals (bench/push.sh: vs skopeo sync, small images, repeat push)",
                 "-", "-", "-", "-", "MISSING"])
head = ["goal", "ferry", "peer (same run)", "value", "limit", "result"]
body = [r[1:] for r in rows]
w = [max(len(x[k]) for x in [head] + body) for k in range(6)]
fmt = lambda r: "  ".join(c.ljust(w[k]) for k, c in enumerate(r)).rstrip()
txt = ["issue 13 goals, run started %s (machine and settings: results-field-*.txt, results-push.md)"
       % started, ""]
txt += [fmt(head), fmt(["-" * x for x in w])] + [fmt(r) for r in body]
bad = [r for r in body if r[5] != "PASS"]
txt += ["", "%d of %d goals pass%s" % (len(body) - len(bad), len(body),
        "" if not failed else "; benchmarks that failed: %s (bench_dir/goals.log)" % failed)]
md = ["| " + " | ".join(head) + " |", "|" + "---|" * 6] + \
     ["| " + " | ".join(r) + " |" for r in body]
open(os.path.join(bench_dir, "goals.txt"), "w").write("\n".join(txt) + "\n")
open(os.path.join(bench_dir, "goals.md"), "w").write("\n".join(txt[:2] + md + txt[-2:]) + "\n")
print("\n".join(txt))
sys.exit(1 if bad or failed else 0)
PY
