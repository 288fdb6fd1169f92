#!/usr/bin/env bash
# ferry benchmark on field-shaped mirrors (issue 13 item 1): an operator-catalog-shaped mirror
# (fixtures/generate.py catalog) and a series of many-small-images mirrors (generate.py many).
#
# Catalog mirror, FIELD_RUNS rounds, round-robin: ferry-pack, ferry-unpack verify, ferry-unpack
# inspect, sha256sum of the same volumes, ferry-unpack extract, tar xf of the same volumes,
# tar cf, tar cf + sync. Each ratio is paired per round (ferry round i against the peer's
# round i) and reported as median and min-max over rounds.
# Many-images series, once per image count: pack, verify, inspect, extract (and tar xf of the
# volume), push into a fresh docker-registry on 127.0.0.1 (up to FIELD_PUSH_MAX images;
# the push's comparison with skopeo sync is bench/push.sh's), receipt against that registry
# (which also checks every image is there), ferry-pack pull of every image back out of it and
# ferry-pack --config of that cache (the connected side), status of the state directory; peak
# RSS and time against images, as a table and (with gnuplot) a PNG.
# Goal rows (issue 13's table) are appended to $BENCH_DIR/goals-field.tsv for bench/goals.sh.
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
  FIELD_PUSH_MAX=5000    push and receipt in the many-images series only up to this many
                         images (0: never; a push of 6x10^4 small images takes about 12 min)
  FIELD_PULL=1           after each push of the series, ferry-pack pull of every image back
                         from that registry into an empty cache, then ferry-pack --config of
                         the full cache into volumes (memory of the connected side); 0: no pull
  FIELD_REG_STORAGE=tmpfs
                         where the series' registry keeps its storage: tmpfs (/dev/shm) or
                         disk (BENCH_DIR). distribution fsyncs every file it writes, so on this
                         kind of disk the registry, not ferry, sets the push's pace; the
                         figures the series is for (memory) are the same either way
  FIELD_EXTRACT=1        0: no extract and tar xf on the catalog mirror (saves FIELD_SIZE
                         of disk: bench/goals.sh sets it for 8GB, where it is no goal)
  FIELD_ONLY=            "catalog" or "many": run only that part
  FIELD_RESULTS=results-field
                         name of the result files in $BENCH_DIR (.txt, .md, .png, .dat)
  BENCH_DIR=/tmp/ferry-bench
                         cache and work directory: mirrors are kept as field-catalog-<size>/ and
                         field-many-<N>/ (reused while their .stamp exists); results in
                         $BENCH_DIR/$FIELD_RESULTS.{txt,md,png}; goal rows appended to
                         $BENCH_DIR/goals-field.tsv (bench/goals.sh empties it first)
  FERRY_BIN_DIR=DIR      use ferry-pack/ferry-unpack from DIR instead of building; refused when
                         older than the newest source file (no stale binary is ever timed)

Disk: the catalog mirror, its volumes and one extracted copy at a time, about 3.1x FIELD_SIZE
(25 GB at 8GB); the many-images series about 2 GB at 60000 images (mirror, volume, extracted
copy, registry storage).
EOF
}
case "$#:${1:-}" in
  0:) ;;
  1:-h|1:--help) usage; exit 0 ;;
  *) echo "field: unknown argument '$1' (settings are environment variables)" >&2; usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${FIELD_SIZE:-2GB}
RUNS=${FIELD_RUNS:-3}
IMAGES=${FIELD_IMAGES-1000 5000 20000}
PUSH_MAX=${FIELD_PUSH_MAX:-5000}
EXTRACT=${FIELD_EXTRACT:-1}
PULL=${FIELD_PULL:-1}
REG_STORAGE=${FIELD_REG_STORAGE:-tmpfs}
ONLY=${FIELD_ONLY:-}
RESULTS=${FIELD_RESULTS:-results-field}
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "field: FIELD_RUNS must be a positive integer" >&2; exit 2; }
case "$EXTRACT" in 0|1) ;; *) echo "field: FIELD_EXTRACT must be 0 or 1" >&2; exit 2 ;; esac
case "$PULL" in 0|1) ;; *) echo "field: FIELD_PULL must be 0 or 1" >&2; exit 2 ;; esac
case "$REG_STORAGE" in
  disk) ;;
  tmpfs) [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] ||
    { echo "field: FIELD_REG_STORAGE=tmpfs: /dev/shm is not a tmpfs here (give FIELD_REG_STORAGE=disk)" >&2; exit 2; } ;;
  *) echo "field: FIELD_REG_STORAGE must be tmpfs or disk" >&2; exit 2 ;;
esac
[[ $PUSH_MAX =~ ^[0-9]+$ ]] || { echo "field: FIELD_PUSH_MAX must be a count" >&2; exit 2; }
[[ $RESULTS =~ ^[A-Za-z0-9._-]+$ ]] || { echo "field: FIELD_RESULTS must be a plain file name" >&2; exit 2; }
case "$ONLY" in ""|catalog|many) ;; *) echo "field: FIELD_ONLY must be catalog or many" >&2; exit 2 ;; esac
COMMAND="$(for v in FIELD_SIZE FIELD_RUNS FIELD_IMAGES FIELD_PUSH_MAX FIELD_PULL FIELD_REG_STORAGE FIELD_EXTRACT FIELD_ONLY BENCH_DIR; do
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

mapfile -t need < <(missing_packages time python3 gnuplot docker-registry)
install_missing "${need[@]}" || say "could not install ${need[*]}: the plot is left out if gnuplot is missing"

ferry_binaries

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/field-work
fresh_workdir "$W" .ferry-bench
FACTS=$W/facts TSV=$W/measurements.tsv
: >"$FACTS"; : >"$TSV"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }
if [ "$REG_STORAGE" = tmpfs ]; then REG_DIR=/dev/shm/ferry-bench-field-reg.$$; else REG_DIR=$W/registry; fi
trap 'stop_registry; rm -rf "$REG_DIR"' EXIT

KEY=$BENCH_DIR/bench.key
bench_key "$KEY"

mirror_stats() {  # "files bytes blobs": every regular file once per inode, and blobs/sha256/*
  find "$1" -type f -printf '%i %s %P\n' | awk '!seen[$1]++ {n++; b += $2; if ($3 ~ /^blobs\/sha256\//) k++}
    END {printf "%.0f %.0f %.0f\n", n, b, k}'
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
fact bin "$BIN"
fact runs "$RUNS"
fact size "$SIZE"
fact push_max "$PUSH_MAX"
fact pull "$PULL"
fact reg_storage "$REG_STORAGE"

# ---------------------------------------------------------------------------- catalog mirror

if [ "$ONLY" != many ]; then
  MIRROR=$(generated "field-catalog-$SIZE" catalog --size "$SIZE")
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
    if [ "$EXTRACT" = 1 ]; then
      rm -rf "$W/extract"
      fmeasure extract "$run" -- "$BIN/ferry-unpack" extract "$OUT" --trust "$KEY.pub" --to "$W/extract" -q
      rm -rf "$W/extract"; mkdir "$W/extract"
      # shellcheck disable=SC2016 # the sh -c script's own $1 and $2
      fmeasure tar_xf "$run" -- sh -c 'for v in "$1"/*.tar; do tar xf "$v" -C "$2" || exit; done' \
        tar-xf "$OUT" "$W/extract"
      rm -rf "$W/extract"
    fi
    if [ "$run" = "$RUNS" ]; then
      fact bundle_bytes "$(du -cb "$OUT"/* | tail -1 | cut -f1)"
      fact volume_bytes "$(du -cb "$OUT"/*.tar | tail -1 | cut -f1)"
    fi
    rm -rf "$OUT"
    fmeasure tar_cf "$run" -- tar cf "$W/mirror.tar" -C "$MIRROR" .
    rm -f "$W/mirror.tar"
    # shellcheck disable=SC2016 # the sh -c script's own $1 and $2
    fmeasure tar_cf_sync "$run" -- sh -c 'tar cf "$1" -C "$2" . && sync "$1"' tar-sync "$W/mirror.tar" "$MIRROR"
    rm -f "$W/mirror.tar"
  done
fi

# ---------------------------------------------------------------------------- many images

# pull_back N MIRROR: the connected side at N images. Every image the series just pushed is
# named by tag in an image set (registry.redhat.io/bench/<repository>:<tag>, registries.conf
# sending registry.redhat.io to the series' registry, as bench/pull.sh does); ferry-pack pull
# fills an empty cache with them, then ferry-pack --config packs that full cache into
# volumes, which must verify with N images.
pull_back() {
  local n=$1 m=$2
  python3 - "$m/index.json" "$W/imageset.yaml" <<'PY'
import json, sys
idx, out = sys.argv[1:]
with open(out, "w") as y:
    y.write("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
            "  additionalImages:\n")
    for m in json.load(open(idx))["manifests"]:
        y.write("  - name: registry.redhat.io/bench/%s\n"
                % m["annotations"]["org.opencontainers.image.ref.name"])
PY
  printf 'unqualified-search-registries = []\n\n[[registry]]\nprefix = "registry.redhat.io"\nlocation = "127.0.0.1:%s"\ninsecure = true\n' \
    "$PORT" >"$W/registries.conf"
  local flags=(--config "$W/imageset.yaml" --registries-conf "$W/registries.conf" -q)
  rm -rf "$W/cache" "$W/pulled"
  fmeasure "many_pull_$n" 1 -- "$BIN/ferry-pack" pull --cache "$W/cache" "${flags[@]}"
  fmeasure "many_packcfg_$n" 1 -- "$BIN/ferry-pack" --cache "$W/cache" --out "$W/pulled" \
    --volume-size 4GiB --key "$KEY" "${flags[@]}"
  local v
  v=$("$BIN/ferry-unpack" verify "$W/pulled" --trust "$KEY.pub" 2>&1) ||
    die "verify of the bundle packed from the pulled cache failed: $v"
  grep -q ", $n images, " <<<"$v" ||
    die "the bundle packed from the pulled cache does not hold $n images: $(head -1 <<<"$v")"
  rm -rf "$W/cache" "$W/pulled"
}

if [ "$ONLY" != catalog ] && [ -n "$IMAGES" ]; then
  for n in $IMAGES; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "FIELD_IMAGES: $n is not a count"
    M=$(generated "field-many-$n" many --images "$n")
    read -r _ _ blobs < <(mirror_stats "$M")
    fact "many_blobs_$n" "$blobs"
    find "$M" -type f -print0 | xargs -0 cat >/dev/null
    OUT=$W/many
    rm -rf "$OUT"
    fmeasure "many_pack_$n" 1 -- "$BIN/ferry-pack" "$M" --out "$OUT" --volume-size 4GiB --key "$KEY" -q
    fmeasure "many_verify_$n" 1 -- "$BIN/ferry-unpack" verify "$OUT" --trust "$KEY.pub"
    grep -q ", $n images, " "$W/logs/many_verify_$n.1.log" ||
      die "verify of $n images does not report $n images: $(head -1 "$W/logs/many_verify_$n.1.log")"
    fmeasure "many_inspect_$n" 1 -- "$BIN/ferry-unpack" inspect "$OUT" --trust "$KEY.pub"
    mf=$(bundle_manifest "$OUT")
    [ -n "$mf" ] || die "no ferry-*.bundle.json(.zst) beside the volumes in $OUT"
    fact "many_manifest_$n" "$(stat -c %s "$mf")"
    fact "many_manifest_name_$n" "${mf##*/}"
    rm -rf "$W/extract"
    fmeasure "many_extract_$n" 1 -- "$BIN/ferry-unpack" extract "$OUT" --trust "$KEY.pub" --to "$W/extract" -q
    rm -rf "$W/extract"; mkdir "$W/extract"
    # shellcheck disable=SC2016 # the sh -c script's own $1 and $2
    fmeasure "many_tar_xf_$n" 1 -- sh -c 'for v in "$1"/*.tar; do tar xf "$v" -C "$2" || exit; done' \
      tar-xf "$OUT" "$W/extract"
    rm -rf "$W/extract" "$W/state"
    if [ "$n" -le "$PUSH_MAX" ]; then
      start_registry "$REG_DIR"
      c0=$(cpu_seconds "$REG_PID")
      # fmeasure ends the benchmark on any non-zero exit: a push that exits 3 (incomplete) is
      # no timed success.
      fmeasure "many_push_$n" 1 -- "$BIN/ferry-unpack" push "$OUT" --trust "$KEY.pub" \
        --to "127.0.0.1:$PORT/bench" --insecure --state "$W/state" --manifests-dir "$W/manifests" -q
      fact "many_push_registry_cpu_$n" "$(awk -v a="$c0" -v b="$(cpu_seconds "$REG_PID")" 'BEGIN {printf "%.2f", b - a}')"
      # The receipt is what the registry holds of the bundle: every image must be in it.
      fmeasure "many_receipt_$n" 1 -- "$BIN/ferry-unpack" receipt "$OUT" --trust "$KEY.pub" \
        --to "127.0.0.1:$PORT/bench" --insecure
      got=$(python3 -c 'import json,sys; t=open(sys.argv[1]).read()
print(len(json.JSONDecoder().raw_decode(t[t.index("{"):])[0]["images"]))' \
        "$W/logs/many_receipt_$n.1.log" 2>/dev/null) || got="no receipt JSON"
      [ "$got" = "$n" ] || die "after the push of $n images the registry holds $got of them (receipt)"
      if [ "$PULL" = 1 ]; then pull_back "$n" "$M"; fi
      stop_registry
      rm -rf "$REG_DIR" "$W/manifests"
    else
      say "no push or receipt at $n images (FIELD_PUSH_MAX=$PUSH_MAX); status from verify --state"
      "$BIN/ferry-unpack" verify "$OUT" --trust "$KEY.pub" --state "$W/state" -q >/dev/null
    fi
    fmeasure "many_status_$n" 1 -- "$BIN/ferry-unpack" status --state "$W/state"
    rm -rf "$OUT" "$W/state"
  done
fi
fact images "$IMAGES"
fact only "$ONLY"
fact load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------- report
python3 - "$FACTS" "$TSV" "$BENCH_DIR/$RESULTS" "$BENCH_DIR/goals-field.tsv" <<'PY'
import statistics, subprocess, shutil, sys
facts_f, tsv_f, base, goals_f = sys.argv[1:]
F = dict(l.rstrip("\n").split("=", 1) for l in open(facts_f) if "=" in l)
R = {}
for l in open(tsv_f):
    i, run, wall, rss, u, s = l.split()
    R.setdefault(i, {})[int(run)] = (float(wall), int(rss) / 1024, float(u) + float(s))
MiB = 1 << 20
GOAL_MIB = 200
out, md = [], []
# Goal rows for bench/goals.sh: goal, ferry, peer, value, limit, PASS|FAIL (COMMON format).
goal_rows = []

def goal(name, ferry, peer, value, limit, ok):
    goal_rows.append((name, ferry, peer, value, limit, "PASS" if ok else "FAIL"))

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
both("- ferry: %s, binaries in %s (not older than any source file)" % (F["ferry"], F["bin"]))
both("- hashing: %s; ferry-pack and verify hash with SHA-NI (sha2 crate, runtime-detected) on "
     "both cores, so the sha256sum ratio compares tools, not hashing code; %s" % (F["sha256sum"], F["shani"]))
both("- command: `%s`; warm cache (the mirror read once with cat first, nothing dropped)" % F["command"])
goals = []
if "pack" in R:
    runs = sorted(R["pack"])
    size = F["size"]
    both("- catalog mirror: %s: %d blobs, %.1f MiB in %s files (%s)"
         % (F["mirror"], int(F["mirror_blobs"]), int(F["mirror_bytes"]) / MiB, F["mirror_files"],
            F.get("generated", "")))
    both("- bundle: %.1f MiB (volumes %.1f MiB)" % (int(F["bundle_bytes"]) / MiB, int(F["volume_bytes"]) / MiB))
    both("")
    both("Catalog mirror, %d rounds (median wall s; min–max; peak RSS over rounds; CPU s = user+sys, median):" % len(runs))
    both("")
    body = []
    ext = "extract" in R
    for i in ["pack", "verify", "inspect", "sha_volumes"] + (["extract", "tar_xf"] if ext else []) + ["tar_cf", "tar_cf_sync"]:
        w = [R[i][r][0] for r in runs]
        body.append((i, "%.3f" % statistics.median(w), "%.3f–%.3f" % (min(w), max(w)),
                     "%.1f" % max(R[i][r][1] for r in runs),
                     "%.2f" % statistics.median(R[i][r][2] for r in runs),
                     "%.0f" % (int(F["mirror_bytes"]) / 1e6 / statistics.median(w))))
    table(["command", "median s", "min–max s", "peak RSS MiB", "CPU s", "MB/s of mirror"], body)
    both("")
    pr = lambda a, b: [R[a][r][0] / R[b][r][0] for r in runs]
    med = lambda i: statistics.median(R[i][r][0] for r in runs)
    p_sync, p_cf = pr("pack", "tar_cf_sync"), pr("pack", "tar_cf")
    v_sha = pr("sha_volumes", "verify")
    e_xf = pr("extract", "tar_xf") if ext else None
    both("Ratios paired per round (ferry round i / peer round i), median (min–max):")
    both("")
    body = [("pack / (tar cf + sync)", spread(p_sync), "≤ 1.2×",
             "PASS" if statistics.median(p_sync) <= 1.2 else "FAIL",
             "all rounds" if max(p_sync) <= 1.2 else ("no round" if min(p_sync) > 1.2 else "some rounds")),
            ("pack / tar cf", spread(p_cf), "(info)", "", ""),
            ("sha256sum of the volumes / verify", spread(v_sha), "(info)", "", "")]
    if ext:
        body.append(("extract / tar xf of the volumes", spread(e_xf), "(info)", "", ""))
    goal("pack vs tar cf+sync, %s catalog mirror" % size, "%.2f s" % med("pack"),
         "%.2f s" % med("tar_cf_sync"), spread(p_sync), "<=1.2x", statistics.median(p_sync) <= 1.2)
    for i, peer in [("pack", "tar_cf"), ("verify", "sha_volumes"), ("inspect", None)] + (
            [("extract", "tar_xf")] if ext else []):
        m = max(R[i][r][1] for r in runs)
        body.append(("peak memory, %s" % i, "%.1f MiB" % m, "≤ 200 MiB", "PASS" if m <= GOAL_MIB else "FAIL", ""))
        goal("peak memory, %s, %s catalog mirror" % (i, size), "%.1f MiB" % m,
             "%.1f MiB" % max(R[peer][r][1] for r in runs) if peer else "-",
             "%.1f MiB" % m, "<=200 MiB", m <= GOAL_MIB)
    table(["measure", "measured", "goal", "result", "within the goal"], body)
    both("")
    goals += [b for b in body if b[3]]
OPS = ["pack", "verify", "inspect", "extract", "push", "receipt", "status", "pull", "packcfg"]
# What each op is, in the goal rows (packcfg: ferry-pack --config of the full pulled cache).
OP_NAME = {"packcfg": "pack --config of the pulled cache"}
PEER = {"extract": "tar_xf"}
counts = [int(n) for n in F.get("images", "").split() if "many_pack_%s" % n in R]
if counts:
    both("Many small images (generate.py many: 3 blobs of a few KiB per image, 20 shared bases), one run each; "
         "push into a fresh docker-registry on 127.0.0.1 (storage on %s) up to %s images, receipt against it, "
         "%sstatus of the push's state directory (of `verify --state` where there was no push); tar xf is "
         "extract's peer:"
         % (F["reg_storage"], F["push_max"],
            "ferry-pack pull of every image back into an empty cache and ferry-pack --config of that cache "
            "into volumes (packcfg), " if F["pull"] == "1" else ""))
    both("")
    body = []
    def cell(op, n):
        r = R.get("many_%s_%d" % (op, n))
        return r[1] if r else None
    for n in counts:
        row = [str(n), F["many_blobs_%d" % n], "%.2f" % (int(F["many_manifest_%d" % n]) / 1e6)]
        for op in OPS + ["tar_xf"]:
            c = cell(op, n)
            row += ["%.2f" % c[0], "%.1f" % c[1]] if c else ["–", "–"]
        reg = F.get("many_push_registry_cpu_%d" % n)
        row.append(reg if reg else "–")
        body.append(row)
        for op in OPS:
            c = cell(op, n)
            name = "peak memory, %s, %d images" % (OP_NAME.get(op, op), n)
            if c is None:
                goal_rows.append((name, "not run", "-", "-", "<=200 MiB", "NOT RUN"))
                continue
            peer = cell(PEER[op], n) if op in PEER else None
            goal(name, "%.1f MiB" % c[1], "%.1f MiB" % peer[1] if peer else "-",
                 "%.1f MiB" % c[1], "<=200 MiB", c[1] <= GOAL_MIB)
            goals.append((name, "%.1f MiB" % c[1], "≤ 200 MiB", "PASS" if c[1] <= GOAL_MIB else "FAIL", ""))
        mb = int(F["many_manifest_%d" % n])
        mname = F["many_manifest_name_%d" % n]
        goal("bundle manifest, %d images" % n, "%.2f MB (%s)" % (mb / 1e6, mname), "-",
             "%.2f MB" % (mb / 1e6), "<=25 MB", mb <= 25e6)
        goal("bundle manifest, %d images, share of a 4 GiB volume" % n, "%.2f MB" % (mb / 1e6), "-",
             "%.2f%%" % (100.0 * mb / (4 << 30)), "<=1%", mb <= 0.01 * (4 << 30))
    head = ["images", "blobs", "manifest MB"]
    for op in OPS + ["tar xf"]:
        head += ["%s s" % op, "%s MiB" % op]
    table(head + ["registry CPU s"], body)
    both("")
    dat = base + ".dat"
    with open(dat, "w") as f:
        f.write("# images " + " ".join("%s_s %s_MiB" % (o, o) for o in OPS + ["tar_xf"]) + "\n")
        for n, r in zip(counts, body):
            f.write("%d %s\n" % (n, " ".join("NaN" if c == "–" else c for c in r[3:-1])))
    if shutil.which("gnuplot"):
        png = base + ".png"
        mem = ", ".join("'%s' u 1:%d w lp t '%s'" % (dat if k == 0 else "", 3 + 2 * k, o)
                        for k, o in enumerate(OPS))
        tim = ", ".join("'%s' u 1:%d w lp t '%s'" % (dat if k == 0 else "", 2 + 2 * k, o)
                        for k, o in enumerate(OPS))
        gp = """set terminal pngcairo size 1100,450
set output '%s'
set datafile missing 'NaN'
set multiplot layout 1,2 title 'ferry, many small images (%s)'
set xlabel 'images'; set key left top; set grid
set ylabel 'peak RSS MiB'
plot %s, 200 w l dt 2 t 'goal 200 MiB'
set ylabel 'wall s'
plot %s
unset multiplot
""" % (png, F["date"], mem, tim)
        subprocess.run(["gnuplot"], input=gp.encode(), check=True)
        both("Plot: %s (peak RSS and wall time against images)." % png)
    else:
        both("No plot: gnuplot is not installed and could not be installed; the table is all.")
    both("")
passed = sum(1 for g in goals if g[3] == "PASS")
both("%d of %d goals pass" % (passed, len(goals)))
open(base + ".txt", "w").write("\n".join(out) + "\n")
open(base + ".md", "w").write("\n".join(md) + "\n")
with open(goals_f, "a") as f:
    for g in goal_rows:
        f.write("\t".join(g) + "\n")
print("\n".join(out))
print("\nwrote %s.txt and %s.md; %d goal rows appended to %s" % (base, base, len(goal_rows), goals_f))
PY
