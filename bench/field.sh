#!/usr/bin/env bash
# ferry benchmark on field-shaped mirrors (issue 13 item 1): an operator-catalog-shaped mirror
# (fixtures/generate.py catalog) and a series of many-small-images mirrors (generate.py many).
#
# Catalog mirror, FIELD_RUNS rounds, round-robin: ferry-pack, ferry-unpack verify, ferry-unpack
# inspect, sha256sum of the same volumes, tar cf, tar cf + sync. Each ratio is paired per round
# (ferry round i against the peer's round i) and reported as median and min-max over rounds.
# Many-images series: pack, verify, inspect once per image count; peak RSS and time against
# images, as a table and (with gnuplot) a PNG.
#
# Usage: bench/field.sh [-h]      (settings are environment variables, listed by -h)
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C

usage() {
  cat <<'EOF'
Usage: bench/field.sh [-h]

Environment (all optional):
  FIELD_SIZE=2GB         catalog mirror size (generate.py catalog --size; the issue asks 2GB and 8GB)
  FIELD_RUNS=3           rounds on the catalog mirror
  FIELD_IMAGES="1000 5000 20000"
                         image counts of the many-images series ("" skips it; up to 60000)
  FIELD_ONLY=            "catalog" or "many": run only that part
  BENCH_DIR=/tmp/ferry-bench
                         cache and work directory: mirrors are kept as field-catalog-<size>/ and
                         field-many-<N>/ (reused while their .stamp exists); results in
                         $BENCH_DIR/results-field.{txt,md,png}
  FERRY_BIN_DIR=DIR      use ferry-pack/ferry-unpack from DIR instead of building; refused when
                         older than the newest source file (no stale binary is ever timed)

Disk: the catalog mirror plus one output at a time (volumes or a tar), about 2.1x FIELD_SIZE.
EOF
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${FIELD_SIZE:-2GB}
RUNS=${FIELD_RUNS:-3}
IMAGES=${FIELD_IMAGES-1000 5000 20000}
ONLY=${FIELD_ONLY:-}
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "field: FIELD_RUNS must be a positive integer" >&2; exit 2; }
case "$ONLY" in ""|catalog|many) ;; *) echo "field: FIELD_ONLY must be catalog or many" >&2; exit 2 ;; esac
COMMAND="$(for v in FIELD_SIZE FIELD_RUNS FIELD_IMAGES FIELD_ONLY BENCH_DIR; do
  [ -z "${!v+x}" ] || printf '%s=%q ' "$v" "${!v}"; done)bench/field.sh"

say() { echo "field: $*" >&2; }
die() { echo "field: error: $*" >&2; exit 2; }
BENCH_NAME=field
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# fmeasure ID RUN -- COMMAND...: like lib.sh measure, and also user and system CPU seconds
# (how many cores the command kept busy). Rows: id run wall rss_kib user sys.
fmeasure() {
  local id=$1 run=$2; shift 3
  local log="$W/logs/$id.$run.log" tf="$W/logs/$id.$run.time"
  sync
  local t0=$EPOCHREALTIME rc=0
  /usr/bin/time -f '%M %U %S' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
  local t1=$EPOCHREALTIME
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$log" >&2
    die "$id (run $run) exited with status $rc: $*"
  fi
  local wall rss u s
  wall=$(elapsed "$t0" "$t1")
  read -r rss u s < <(tail -n 1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$run" "$wall" "$rss" "$u" "$s" >>"$TSV"
  printf 'field: %-6s %-16s %9.3f s %8.1f MiB  cpu %6.2f s\n' "$run" "$id" "$wall" \
    "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}')" >&2
}

# ---------------------------------------------------------------------------- set-up

mapfile -t need < <(missing_packages time python3 gnuplot)
install_missing "${need[@]}" || say "could not install ${need[*]}: the plot is left out if gnuplot is missing"

# The newest source file that goes into the binaries: any .rs, Cargo.toml or Cargo.lock of the
# workspace outside target/.
newest_source() {
  find "$ROOT" -path "$ROOT/target" -prune -o -path "$ROOT/.git" -prune -o \
    \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -type f -printf '%T@ %p\n' |
    sort -n | tail -1
}
if [ -n "${FERRY_BIN_DIR:-}" ]; then
  BIN=$(cd "$FERRY_BIN_DIR" && pwd)
  say "using binaries in $BIN (FERRY_BIN_DIR set: not building)"
else
  say "cargo build --release -p pack -p unpack"
  (cd "$ROOT" && cargo build --release -p pack -p unpack)
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
[ -x "$BIN/ferry-pack" ] && [ -x "$BIN/ferry-unpack" ] || die "no ferry-pack/ferry-unpack in $BIN"
read -r SRC_T SRC_F < <(newest_source)
for b in ferry-pack ferry-unpack; do
  bt=$(stat -c %Y "$BIN/$b")
  if awk -v b="$bt" -v s="$SRC_T" 'BEGIN {exit !(b < s)}'; then
    die "$BIN/$b ($(date -u -d "@$bt" '+%F %T')) is older than $SRC_F: a stale binary; build first"
  fi
done
say "binaries newer than the newest source file ($SRC_F)"

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/field-work
fresh_workdir "$W" .ferry-bench
FACTS=$W/facts TSV=$W/measurements.tsv
: >"$FACTS"; : >"$TSV"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }

KEY=$BENCH_DIR/bench.key
[ -f "$KEY" ] && [ -f "$KEY.pub" ] || { rm -f "$KEY" "$KEY.pub"; "$BIN/ferry-pack" keygen "$KEY" >/dev/null; }

# cached MODE NAME ARGS...: generates (or reuses) $BENCH_DIR/NAME with generate.py MODE ARGS;
# the stamp is written last, so an interrupted generation is never reused. Prints the path.
cached() {
  local mode=$1 name=$2; shift 2
  local dir="$BENCH_DIR/$name" stamp="$BENCH_DIR/$name.stamp"
  if [ -f "$stamp" ] && [ -d "$dir" ]; then
    say "reusing $dir"
  else
    rm -rf "$dir" "$dir.partial"
    say "generating $dir (generate.py $mode $*)"
    python3 "$ROOT/fixtures/generate.py" "$mode" --out "$dir.partial" "$@" >"$BENCH_DIR/$name.log"
    mv "$dir.partial" "$dir"
    { echo "args=$mode $*"; echo "generated=$(date -u +%FT%TZ)"; sed 's/^/# /' "$BENCH_DIR/$name.log"; } >"$stamp"
    sed 's/^/  /' "$BENCH_DIR/$name.log" >&2
  fi
  echo "$dir"
}

mirror_stats() {  # "files bytes blobs": every regular file once per inode, and blobs/sha256/*
  find "$1" -type f -printf '%i %s %P\n' | awk '!seen[$1]++ {n++; b += $2; if ($3 ~ /^blobs\/sha256\//) k++}
    END {printf "%d %d %d\n", n, b, k}'
}

fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
fact cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
fact nproc "$(nproc)"
fact memory "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
fact kernel "$(uname -sr)"
fact load "$(cut -d' ' -f1-3 /proc/loadavg)"
fact filesystem "$(df -PT "$BENCH_DIR" | awk 'NR==2 {print $2 " (" $1 ")"}')"
fact ferry "$("$BIN/ferry-pack" --version 2>&1 | head -1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- . ':!BENCHMARKS.md' 2>/dev/null || echo ' + uncommitted changes')"
fact shani "$(grep -q -m1 -w sha_ni /proc/cpuinfo && echo 'the CPU has SHA-NI' || echo 'the CPU has no SHA-NI')"
fact sha256sum "$(sha256sum --version | head -1), $(ldd "$(command -v sha256sum)" | grep -q libcrypto && echo 'linked to OpenSSL' || echo 'portable C (not linked to OpenSSL)'), one thread"
fact tools "$(tar --version | head -1)"
fact command "$COMMAND"
fact runs "$RUNS"

# ---------------------------------------------------------------------------- catalog mirror

if [ "$ONLY" != many ]; then
  MIRROR=$(cached catalog "field-catalog-$SIZE" --size "$SIZE")
  read -r MFILES MBYTES MBLOBS < <(mirror_stats "$MIRROR")
  fact mirror "$MIRROR"; fact mirror_bytes "$MBYTES"; fact mirror_blobs "$MBLOBS"
  fact mirror_files "$MFILES"
  fact generated "$(sed -n 's/^# catalog: \([0-9]* images in [0-9]* repositories\).*/\1/p; s/^# catalog: \([0-9]* operand .*\)/\1/p' "$BENCH_DIR/field-catalog-$SIZE.stamp" | paste -sd ';' - | sed 's/;\([^ ]\)/; \1/g')"
  say "catalog mirror: $MBLOBS blobs, $MBYTES bytes in $MFILES files"
  say "warm-up (untimed): cat every file of the mirror; all runs are warm-cache"
  find "$MIRROR" -type f -print0 | xargs -0 cat >/dev/null
  OUT=$W/pack
  for run in $(seq 1 "$RUNS"); do
    rm -rf "$OUT"
    fmeasure pack "$run" -- "$BIN/ferry-pack" "$MIRROR" --out "$OUT" --volume-size 4GiB --key "$KEY" -q
    fmeasure verify "$run" -- "$BIN/ferry-unpack" verify "$OUT" --trust "$KEY.pub"
    fmeasure inspect "$run" -- "$BIN/ferry-unpack" inspect "$OUT" --trust "$KEY.pub"
    fmeasure sha_volumes "$run" -- sha256sum "$OUT"/*.tar
    if [ "$run" = "$RUNS" ]; then
      fact bundle_bytes "$(du -cb "$OUT"/* | tail -1 | cut -f1)"
      fact volume_bytes "$(du -cb "$OUT"/*.tar | tail -1 | cut -f1)"
    fi
    rm -rf "$OUT"
    fmeasure tar_cf "$run" -- tar cf "$W/mirror.tar" -C "$MIRROR" .
    rm -f "$W/mirror.tar"
    fmeasure tar_cf_sync "$run" -- sh -c 'tar cf "$1" -C "$2" . && sync "$1"' tar-sync "$W/mirror.tar" "$MIRROR"
    rm -f "$W/mirror.tar"
  done
fi

# ---------------------------------------------------------------------------- many images

if [ "$ONLY" != catalog ] && [ -n "$IMAGES" ]; then
  for n in $IMAGES; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "FIELD_IMAGES: $n is not a count"
    M=$(cached many "field-many-$n" --images "$n")
    read -r _ _ blobs < <(mirror_stats "$M")
    fact "many_blobs_$n" "$blobs"
    find "$M" -type f -print0 | xargs -0 cat >/dev/null
    OUT=$W/many
    rm -rf "$OUT"
    fmeasure "many_pack_$n" 1 -- "$BIN/ferry-pack" "$M" --out "$OUT" --volume-size 4GiB --key "$KEY" -q
    fmeasure "many_verify_$n" 1 -- "$BIN/ferry-unpack" verify "$OUT" --trust "$KEY.pub"
    fmeasure "many_inspect_$n" 1 -- "$BIN/ferry-unpack" inspect "$OUT" --trust "$KEY.pub"
    fact "many_manifest_$n" "$(stat -c %s "$OUT"/*.bundle.json)"
    rm -rf "$OUT"
  done
fi
fact images "$IMAGES"
fact only "$ONLY"
fact load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------- report
python3 - "$FACTS" "$TSV" "$BENCH_DIR/results-field" <<'PY'
import statistics, subprocess, shutil, sys
facts_f, tsv_f, base = sys.argv[1:]
F = dict(l.rstrip("\n").split("=", 1) for l in open(facts_f) if "=" in l)
R = {}
for l in open(tsv_f):
    i, run, wall, rss, u, s = l.split()
    R.setdefault(i, {})[int(run)] = (float(wall), int(rss) / 1024, float(u) + float(s))
MiB = 1 << 20
out, md = [], []

def both(line=""):
    out.append(line); md.append(line)

def spread(xs):
    return "%.2f× (%.2f–%.2f)" % (statistics.median(xs), min(xs), max(xs))

def table(head, body):
    w = [max(len(str(r[k])) for r in [head] + body) for k in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w[k]) if k == 0 else str(c).rjust(w[k])
                              for k, c in enumerate(r)).rstrip()
    out.extend([fmt(head), fmt(["-" * x for x in w])] + [fmt(r) for r in body])
    md.extend(["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
              + ["| " + " | ".join(str(c) for c in r) + " |" for r in body])

machine = ("%s, %s cores, %s RAM, %s; %s; load average at start %s, at the end %s"
           % (F["cpu"], F["nproc"], F["memory"], F["kernel"], F["filesystem"], F["load"],
              F["load_end"]))
both("ferry field-shaped benchmark (issue 13), %s" % F["date"])
both("")
both("- machine: " + machine)
both("- ferry: %s (release build, not older than any source file)" % F["ferry"])
both("- hashing: %s; ferry-pack and verify hash with SHA-NI (sha2 crate, runtime-detected) on "
     "both cores, so the sha256sum ratio compares tools, not hashing code; %s" % (F["sha256sum"], F["shani"]))
both("- command: `%s`; warm cache (the mirror read once with cat first, nothing dropped)" % F["command"])
goals = []
if "pack" in R:
    runs = sorted(R["pack"])
    both("- catalog mirror: %s: %d blobs, %.1f MiB in %s files (%s)"
         % (F["mirror"], int(F["mirror_blobs"]), int(F["mirror_bytes"]) / MiB, F["mirror_files"],
            F.get("generated", "")))
    both("- bundle: %.1f MiB (volumes %.1f MiB)" % (int(F["bundle_bytes"]) / MiB, int(F["volume_bytes"]) / MiB))
    both("")
    both("Catalog mirror, %d rounds (median wall s; min–max; peak RSS over rounds; CPU s = user+sys, median):" % len(runs))
    both("")
    body = []
    for i in ["pack", "verify", "inspect", "sha_volumes", "tar_cf", "tar_cf_sync"]:
        w = [R[i][r][0] for r in runs]
        body.append((i, "%.3f" % statistics.median(w), "%.3f–%.3f" % (min(w), max(w)),
                     "%.1f" % max(R[i][r][1] for r in runs),
                     "%.2f" % statistics.median(R[i][r][2] for r in runs),
                     "%.0f" % (int(F["mirror_bytes"]) / 1e6 / statistics.median(w))))
    table(["command", "median s", "min–max s", "peak RSS MiB", "CPU s", "MB/s of mirror"], body)
    both("")
    pr = lambda a, b: [R[a][r][0] / R[b][r][0] for r in runs]
    p_sync, p_cf = pr("pack", "tar_cf_sync"), pr("pack", "tar_cf")
    v_sha = pr("sha_volumes", "verify")
    both("Ratios paired per round (ferry round i / peer round i), median (min–max):")
    both("")
    body = [("pack / (tar cf + sync)", spread(p_sync), "≤ 1.2×",
             "PASS" if statistics.median(p_sync) <= 1.2 else "FAIL",
             "all rounds" if max(p_sync) <= 1.2 else ("no round" if min(p_sync) > 1.2 else "some rounds")),
            ("pack / tar cf", spread(p_cf), "(info)", "", ""),
            ("sha256sum of the volumes / verify", spread(v_sha), "(info)", "", "")]
    for i in ["pack", "verify", "inspect"]:
        m = max(R[i][r][1] for r in runs)
        body.append(("peak memory, %s" % i, "%.1f MiB" % m, "≤ 200 MiB", "PASS" if m <= 200 else "FAIL", ""))
    table(["measure", "measured", "goal", "result", "within the goal"], body)
    both("")
    goals += [b for b in body if b[3]]
counts = [int(n) for n in F.get("images", "").split() if "many_pack_%s" % n in R]
if counts:
    both("Many small images (generate.py many: 3 blobs of a few KiB per image, 20 shared bases), one run each:")
    both("")
    body = []
    for n in counts:
        row = [str(n), F["many_blobs_%d" % n], "%.2f" % (int(F["many_manifest_%d" % n]) / 1e6)]
        for op in ["pack", "verify", "inspect"]:
            wall, rss, cpu = R["many_%s_%d" % (op, n)][1]
            row += ["%.2f" % wall, "%.1f" % rss]
        body.append(row)
        for op in ["pack", "verify", "inspect"]:
            m = R["many_%s_%d" % (op, n)][1][1]
            goals.append(("peak memory, %s, %d images" % (op, n), "%.1f MiB" % m, "≤ 200 MiB",
                          "PASS" if m <= 200 else "FAIL", ""))
    table(["images", "blobs", "bundle.json MB", "pack s", "pack MiB", "verify s", "verify MiB",
           "inspect s", "inspect MiB"], body)
    both("")
    dat = base + ".dat"
    with open(dat, "w") as f:
        for n, r in zip(counts, body):
            f.write("%d %s\n" % (n, " ".join(r[3:])))
    if shutil.which("gnuplot"):
        png = base + ".png"
        gp = """set terminal pngcairo size 1100,450
set output '%s'
set multiplot layout 1,2 title 'ferry, many small images (%s)'
set xlabel 'images'; set key left top; set grid
set ylabel 'peak RSS MiB'
plot '%s' u 1:3 w lp t 'pack', '' u 1:5 w lp t 'verify', '' u 1:7 w lp t 'inspect', 200 w l dt 2 t 'goal 200 MiB'
set ylabel 'wall s'
plot '%s' u 1:2 w lp t 'pack', '' u 1:4 w lp t 'verify', '' u 1:6 w lp t 'inspect'
unset multiplot
""" % (png, F["date"], dat, dat)
        subprocess.run(["gnuplot"], input=gp.encode(), check=True)
        both("Plot: %s (peak RSS and wall time against images)." % png)
    else:
        both("No plot: gnuplot is not installed and could not be installed; the table is all.")
    both("")
passed = sum(1 for g in goals if g[3] == "PASS")
both("%d of %d goals pass" % (passed, len(goals)))
open(base + ".txt", "w").write("\n".join(out) + "\n")
open(base + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(out))
print("\nwrote %s.txt and %s.md" % (base, base))
PY
