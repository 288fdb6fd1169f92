#!/usr/bin/env bash
# ferry benchmark: ferry-pack and ferry-unpack verify against what users run today
# (tar czf, tar -I 'zstd -T0', tar cf, sha256sum) on the same generated mirror, in one run.
# Every command is timed BENCH_RUNS times, round-robin; the report gives the median wall
# time, the peak RSS, MB/s and the targets from the issue, and writes a Markdown snippet
# for BENCHMARKS.md to $BENCH_DIR/results.md. See bench/README.md.
#
# Usage: bench/run.sh [-h]      (settings are environment variables, listed by -h)
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C                  # "." in $EPOCHREALTIME and in numbers

usage() {
  cat <<'EOF'
Usage: bench/run.sh [-h]

Environment (all optional):
  BENCH_SIZE=1GiB        mirror size for fixtures/generate.py bench --size (>= 1GiB for real numbers)
  BENCH_RUNS=3           timed runs per command; the report shows the median
  BENCH_DIR=/tmp/ferry-bench
                         cache and work directory: the generated mirror is kept in
                         $BENCH_DIR/mirror-<layout>-<size>/ and reused by later runs; outputs go
                         to $BENCH_DIR/work/ (same filesystem); results in $BENCH_DIR/results.{md,txt}
  BENCH_LAYOUT=oci       generator layout: oci, oc, registry or dir
  BENCH_MIRROR=DIR       use this existing mirror instead of generating one (BENCH_SIZE and
                         BENCH_LAYOUT are then ignored), e.g. BENCH_MIRROR=/tmp/bench-oci
  BENCH_SPLIT_VOLUME=300MiB
                         volume size of the second, multi-volume pack (when unset and the mirror
                         holds less than 3 x 300MiB, a quarter of the mirror is used instead)
  BENCH_KEEP=0           1 keeps the outputs in $BENCH_DIR/work/ (several times the mirror size)
  FERRY_BIN_DIR=DIR      use ferry-pack and ferry-unpack from DIR; skips `cargo build --release`;
                         refused when older than the newest source file
The push benchmark is bench/push.sh.

Examples:
  bench/run.sh                                         # the real run: 1 GiB, 3 runs each
  BENCH_MIRROR=/tmp/bench-oci bench/run.sh             # reuse an existing 1 GiB mirror
  BENCH_SIZE=64MiB BENCH_RUNS=1 FERRY_BIN_DIR=target/release bench/run.sh   # smoke test
EOF
}
case "$#:${1:-}" in
  0:) ;;
  1:-h|1:--help) usage; exit 0 ;;
  *) echo "bench: unknown argument '$1' (settings are environment variables)" >&2; usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND="$(for v in BENCH_SIZE BENCH_RUNS BENCH_DIR BENCH_LAYOUT BENCH_MIRROR BENCH_SPLIT_VOLUME; do
  [ -z "${!v:-}" ] || printf '%s=%q ' "$v" "${!v}"; done)bench/run.sh"
SIZE=${BENCH_SIZE:-1GiB}
RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/ferry-bench}
LAYOUT=${BENCH_LAYOUT:-oci}
BIG_VOLUME=4GiB
KEEP=${BENCH_KEEP:-0}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_RUNS must be a positive integer" >&2; exit 2; }

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 2; }
BENCH_NAME=bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------------------- set-up

ensure_tools() {
  # shellcheck disable=SC2046 # one word per package
  install_missing $(missing_packages time zstd python3)
}

to_bytes() {  # 300MiB -> 314572800 (the units ferry-pack and the generator accept)
  python3 - "$1" <<'PY'
import re, sys
m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?i?B)?\s*", sys.argv[1], re.I)
if not m:
    sys.exit("bench: cannot read size %r" % sys.argv[1])
u = (m.group(2) or "B").upper()
mult = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
        "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}[u]
print(int(float(m.group(1)) * mult))
PY
}

# bench_mirror SUFFIX ARGS...: generates (or reuses) $BENCH_DIR/mirror-<layout>-<size><SUFFIX>
# with generate.py bench and the extra ARGS. Prints the mirror path.
bench_mirror() {
  local suffix=$1; shift
  generated "mirror-$LAYOUT-${SIZE// /}$suffix" bench --size "$SIZE" --layout "$LAYOUT" "$@"
}

# Bytes of a mirror and the list of its blob files (NUL-separated, one path per blob, the
# files sha256sum reads). Prints "layout mirror_bytes blob_bytes blob_count".
# mirror_bytes: every regular file once per inode (what tar reads).
scan_mirror() {
  python3 - "$1" "$2" <<'PY'
import os, re, sys
root, listfile = sys.argv[1], sys.argv[2]
if os.path.exists(os.path.join(root, "oci-layout")):
    layout = "oci"
elif os.path.isdir(os.path.join(root, "docker", "registry", "v2")):
    layout = "registry"
elif os.path.isdir(os.path.join(root, "v2")):
    layout = "oc"
else:
    layout = "dir"
HEX = re.compile(r"[0-9a-f]{64}")
seen_inode, blobs, mirror_bytes = set(), {}, 0
for d, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        st = os.lstat(p)
        if not os.path.isfile(p) or os.path.islink(p):
            continue
        if (st.st_dev, st.st_ino) not in seen_inode:
            seen_inode.add((st.st_dev, st.st_ino))
            mirror_bytes += st.st_size
        rel = os.path.relpath(p, root).split(os.sep)
        key = None
        if layout == "oci" and rel[0] == "blobs" and len(rel) == 3:
            key = rel[2]
        elif layout == "registry" and f == "data" and "blobs" in rel:
            key = rel[-2]
        elif layout == "oc" and "blobs" in rel and f.startswith("sha256:"):
            key = f[7:]                                   # hard-linked across repositories
        elif layout == "dir":
            name = f[:-len(".manifest.json")] if f.endswith(".manifest.json") else f
            if HEX.fullmatch(name):
                key = name
            elif f == "manifest.json":
                key = ("inode", st.st_dev, st.st_ino)
        if key is not None and key not in blobs:
            blobs[key] = (p, st.st_size)
with open(listfile, "wb") as out:
    for p, _ in blobs.values():
        out.write(p.encode() + b"\0")
print(layout, mirror_bytes, sum(s for _, s in blobs.values()), len(blobs))
PY
}

# What ferry-pack wrote to OUT. Prints "bundle_bytes volume_bytes volumes stored_blob_bytes
# raw_blob_bytes": bundle = every file in OUT (volumes and the bundle.json side copy);
# stored = sizes of the blobs/ members in the volumes' tar listings; raw = the sizes the
# bundle's own bundle.json records (a cross-check of the mirror scan).
scan_bundle() {
  python3 - "$1" <<'PY'
import glob, json, os, subprocess, sys, tarfile
out = sys.argv[1]
files = [os.path.join(out, f) for f in os.listdir(out) if os.path.isfile(os.path.join(out, f))]
vols = sorted(glob.glob(os.path.join(out, "*.tar")))
stored = 0
for v in vols:
    with tarfile.open(v) as t:
        stored += sum(m.size for m in t if m.isfile() and m.name.startswith("blobs/"))
raw = 0
# The standalone manifest: format 2's zstd frame (zstd -d, which skips the padding frame),
# or format 1's plain JSON.
for j in glob.glob(os.path.join(out, "*.bundle.json.zst")) + glob.glob(os.path.join(out, "*.bundle.json")):
    text = subprocess.run(["zstd", "-d", "-q", "-c", j], check=True, capture_output=True).stdout \
        if j.endswith(".zst") else open(j, "rb").read()
    raw = sum(b["size"] for b in json.loads(text)["blobs"])
print(sum(os.path.getsize(f) for f in files), sum(os.path.getsize(v) for v in vols),
      len(vols), stored, raw)
PY
}

machine_facts() {
  fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
  fact cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  fact nproc "$(nproc)"
  fact memory "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  fact kernel "$(uname -sr)"
  fact load "$(cut -d' ' -f1-3 /proc/loadavg)"
  fact filesystem "$(df -PT "$BENCH_DIR" | awk 'NR==2 {print $2 " (" $1 ")"}')"
  fact ferry "$("$BIN/ferry-pack" --version 2>&1 | head -1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  fact tools "$(tar --version | head -1), $(gzip --version | head -1), zstd $(zstd -V | grep -o 'v[0-9.]*' | head -1), sha256sum $(sha256sum --version | head -1 | awk '{print $NF}')"
}

fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }

# ---------------------------------------------------------------------------- timing

# row ID LABEL INPUT_BYTES OUTPUT: declares a table row (OUTPUT: a file or directory whose
# size is reported, or "-").
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$ROWS"; }


# ---------------------------------------------------------------------------- main

ensure_tools
ferry_binaries
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/work
fresh_workdir "$W" .ferry-bench
FACTS=$W/facts ROWS=$W/rows TSV=$W/measurements.tsv
: >"$FACTS"; : >"$ROWS"; : >"$TSV"

if [ -n "${BENCH_MIRROR:-}" ]; then
  MIRROR=$(cd "$BENCH_MIRROR" && pwd)
  say "using the existing mirror $MIRROR"
else
  MIRROR=$(bench_mirror "")
fi
scan=$(scan_mirror "$MIRROR" "$W/blob-files")
read -r MLAYOUT MIRROR_BYTES BLOB_BYTES BLOB_COUNT <<<"$scan"
say "mirror: $MLAYOUT layout, $BLOB_COUNT blobs, $BLOB_BYTES blob bytes, $MIRROR_BYTES bytes in all"
if [ "$(stat -c %d "$MIRROR")" != "$(stat -c %d "$W")" ]; then
  say "warning: the mirror and $W are on different filesystems"
fi

if [ -n "${BENCH_SPLIT_VOLUME:-}" ]; then
  SPLIT=$BENCH_SPLIT_VOLUME; SPLIT_NOTE=
elif [ "$BLOB_BYTES" -ge $((3 * 300 * 1048576)) ]; then
  SPLIT=300MiB; SPLIT_NOTE=
else
  SPLIT="$(( BLOB_BYTES / 4 / 1048576 > 1 ? BLOB_BYTES / 4 / 1048576 : 1 ))MiB"
  SPLIT_NOTE="scaled down from 300MiB: the mirror is small"
  say "split volume size $SPLIT ($SPLIT_NOTE)"
fi

KEY=$BENCH_DIR/bench.key
bench_key "$KEY"

machine_facts
fact mirror "$MIRROR"
fact mirror_layout "$MLAYOUT"
fact mirror_bytes "$MIRROR_BYTES"
fact blob_bytes "$BLOB_BYTES"
fact blob_count "$BLOB_COUNT"
fact runs "$RUNS"
fact big_volume "$BIG_VOLUME"
fact split_volume "$SPLIT"
fact split_note "$SPLIT_NOTE"
if [ -f "$MIRROR.stamp" ]; then
  fact generated "$(sed -n 's/^# bench: \([0-9]* images in [0-9]* repositories\).*/\1/p' "$MIRROR.stamp")$(sed -n 's/^command=python3 \(.*\) --out .*/, generated by \1/p' "$MIRROR.stamp")"
fi
fact command "$COMMAND"

OUT_BIG=$W/pack-big OUT_SPLIT=$W/pack-split
row pack_big   "ferry-pack --volume-size $BIG_VOLUME"           "$MIRROR_BYTES" "$OUT_BIG"
row pack_split "ferry-pack --volume-size $SPLIT"                "$MIRROR_BYTES" "$OUT_SPLIT"
row tar_czf    "tar czf"                                        "$MIRROR_BYTES" "$W/mirror.tar.gz"
row tar_zstd   "tar -I 'zstd -T0' -cf"                          "$MIRROR_BYTES" "$W/mirror.tar.zst"
row tar_cf     "tar cf"                                         "$MIRROR_BYTES" "$W/mirror.tar"
# ferry-pack fsyncs each volume before naming it complete; this is tar with the same promise.
row tar_cf_sync "tar cf + sync (durable, as ferry-pack)"        "$MIRROR_BYTES" "$W/mirror-sync.tar"
# input bytes of the verify rows are filled in once the volumes exist (VOL_* below)

say "warm-up (untimed): cat every file of the mirror; all runs are warm-cache"
find "$MIRROR" -type f -print0 | xargs -0 cat >/dev/null

for run in $(seq 1 "$RUNS"); do
  measure pack_big "$run" "$OUT_BIG" -- \
    "$BIN/ferry-pack" "$MIRROR" --out "$OUT_BIG" --volume-size "$BIG_VOLUME" --key "$KEY" -q
  measure verify_big "$run" - -- "$BIN/ferry-unpack" verify "$OUT_BIG" --trust "$KEY.pub"
  measure sha_volumes "$run" - -- sha256sum "$OUT_BIG"/*.tar
  measure pack_split "$run" "$OUT_SPLIT" -- \
    "$BIN/ferry-pack" "$MIRROR" --out "$OUT_SPLIT" --volume-size "$SPLIT" --key "$KEY" -q
  measure verify_split "$run" - -- "$BIN/ferry-unpack" verify "$OUT_SPLIT" --trust "$KEY.pub"
  measure tar_cf "$run" "$W/mirror.tar" -- tar cf "$W/mirror.tar" -C "$MIRROR" .
  # shellcheck disable=SC2016 # the sh -c script's own $1 and $2
  measure tar_cf_sync "$run" "$W/mirror-sync.tar" -- \
    sh -c 'tar cf "$1" -C "$2" . && sync "$1"' tar-sync "$W/mirror-sync.tar" "$MIRROR"
  measure tar_czf "$run" "$W/mirror.tar.gz" -- tar czf "$W/mirror.tar.gz" -C "$MIRROR" .
  measure tar_zstd "$run" "$W/mirror.tar.zst" -- \
    tar -I 'zstd -T0' -cf "$W/mirror.tar.zst" -C "$MIRROR" .
  measure sha_blobs "$run" - -- xargs -0 -a "$W/blob-files" sha256sum
done

scan=$(scan_bundle "$OUT_BIG")
read -r BUNDLE_BYTES VOL_BYTES VOLS STORED RAW <<<"$scan"
scan=$(scan_bundle "$OUT_SPLIT")
read -r SPLIT_BUNDLE_BYTES SPLIT_VOL_BYTES SPLIT_VOLS SPLIT_STORED _ <<<"$scan"
row verify_big   "ferry-unpack verify ($VOLS volume$([ "$VOLS" = 1 ] || echo s))" "$VOL_BYTES" -
row verify_split "ferry-unpack verify ($SPLIT_VOLS volumes)"                      "$SPLIT_VOL_BYTES" -
row sha_volumes  "sha256sum (the same $VOLS volume$([ "$VOLS" = 1 ] || echo s))"  "$VOL_BYTES" -
row sha_blobs    "sha256sum (mirror blobs)"                                        "$BLOB_BYTES" -
fact bundle_bytes "$BUNDLE_BYTES"; fact volume_bytes "$VOL_BYTES"; fact volumes "$VOLS"
fact stored_bytes "$STORED"; fact bundle_raw_bytes "$RAW"
fact split_bundle_bytes "$SPLIT_BUNDLE_BYTES"; fact split_volumes "$SPLIT_VOLS"
fact split_stored_bytes "$SPLIT_STORED"

# Overhead of the format itself on a mirror whose blobs ferry stores as they are: from a
# gzip-only variant when the generator can make one, otherwise from this bundle's tar listing.
if python3 "$ROOT/fixtures/generate.py" bench --help | grep -q -- '--uncompressed-share'; then
  GZ_MIRROR=$(bench_mirror -gzip-only --uncompressed-share 0)
  scan=$(scan_mirror "$GZ_MIRROR" "$W/gz-blob-files")
  read -r _ _ GZ_BLOB_BYTES _ <<<"$scan"
  rm -rf "$W/pack-gzip-only"
  "$BIN/ferry-pack" "$GZ_MIRROR" --out "$W/pack-gzip-only" --volume-size "$BIG_VOLUME" \
    --key "$KEY" -q >"$W/logs/pack-gzip-only.log" 2>&1
  scan=$(scan_bundle "$W/pack-gzip-only")
  read -r GZ_BUNDLE_BYTES _ _ _ _ <<<"$scan"
  fact overhead_method "gzip-only mirror (generate.py bench --uncompressed-share 0): (bundle bytes - blob bytes) / blob bytes"
  fact overhead_num "$((GZ_BUNDLE_BYTES - GZ_BLOB_BYTES))"; fact overhead_den "$GZ_BLOB_BYTES"
else
  fact overhead_method "generate.py has no --uncompressed-share: (bundle bytes - stored blob bytes from the volumes' tar listing) / mirror blob bytes, on this mirror"
  fact overhead_num "$((BUNDLE_BYTES - STORED))"; fact overhead_den "$BLOB_BYTES"
fi

# ---------------------------------------------------------------------------- report
python3 - "$FACTS" "$ROWS" "$TSV" "$BENCH_DIR/results.md" "$BENCH_DIR/results.txt" <<'PY'
import os, statistics, sys
facts_f, rows_f, tsv_f, md_f, txt_f = sys.argv[1:]
F = dict(l.rstrip("\n").split("=", 1) for l in open(facts_f) if "=" in l)
rows = [l.rstrip("\n").split("\t") for l in open(rows_f) if l.strip()]
runs = {}
for l in open(tsv_f):
    i, run, wall, e, rss = l.split()
    runs.setdefault(i, []).append((float(wall), int(rss)))
MiB = 1 << 20

def size_of(p):
    if p == "-" or not os.path.exists(p):
        return None
    if os.path.isdir(p):
        return sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p))
    return os.path.getsize(p)

med = {i: statistics.median(w for w, _ in v) for i, v in runs.items()}
peak = {i: max(r for _, r in v) / 1024 for i, v in runs.items()}   # KiB -> MiB
order = ["pack_big", "pack_split", "tar_czf", "tar_zstd", "tar_cf", "tar_cf_sync",
         "verify_big", "verify_split", "sha_volumes", "sha_blobs"]
rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
table = []
for i, label, nbytes, out in rows:
    if i not in runs:
        continue
    s = med[i]
    o = size_of(out)
    table.append((label, "%.3f" % s, "%.0f" % (int(nbytes) / 1e6 / s) if s > 0 else "-",
                  "%.1f" % peak[i], "%.1f" % (o / MiB) if o is not None else ""))

def faster(r):
    return "%.2f× faster" % r if r >= 1 else "%.2f× slower" % (1 / r)

def ratio(a, b):
    return med[a] / med[b] if med.get(b) else float("inf")

blob, bundle = int(F["blob_bytes"]), int(F["bundle_bytes"])
pk_mem = max(peak["pack_big"], peak["pack_split"])
vf_mem = max(peak["verify_big"], peak["verify_split"])
targets = [
    ("pack vs tar czf", faster(ratio("tar_czf", "pack_big")), "≥ 10× faster",
     ratio("tar_czf", "pack_big") >= 10),
    ("pack vs tar cf", "%.2f× its time" % ratio("pack_big", "tar_cf"), "≤ 1.2× its time",
     ratio("pack_big", "tar_cf") <= 1.2),
    ("verify vs sha256sum (same volumes)", faster(ratio("sha_volumes", "verify_big")),
     "≥ 5× faster", ratio("sha_volumes", "verify_big") >= 5),
    ("peak memory, pack", "%.1f MiB" % pk_mem, "< 200 MiB", pk_mem < 200),
    ("peak memory, verify", "%.1f MiB" % vf_mem, "< 200 MiB", vf_mem < 200),
    ("bundle bytes vs mirror blob bytes", "%d vs %d (%+.2f%%)" % (bundle, blob, 100 * (bundle - blob) / blob),
     "smaller", bundle < blob),
]
on, od = int(F["overhead_num"]), int(F["overhead_den"])
split_b = int(F["split_bundle_bytes"])
info = [
    ("format overhead", "%d bytes = %.3f%% of blob bytes" % (on, 100 * on / od), F["overhead_method"]),
    ("multi-volume cost", "%s volumes: %.2f× the time of %s volume(s), %+d bytes"
     % (F["split_volumes"], ratio("pack_split", "pack_big"), F["volumes"], split_b - bundle),
     "--volume-size %s vs %s%s" % (F["split_volume"], F["big_volume"],
                                     "; " + F["split_note"] if F["split_note"] else "")),
    ("pack vs tar cf + sync (the same durability)", "%.2f× its time" % ratio("pack_big", "tar_cf_sync"), ""),
    ("pack vs tar -I 'zstd -T0'", faster(ratio("tar_zstd", "pack_big")), ""),
    ("verify vs sha256sum of the mirror blobs", faster(ratio("sha_blobs", "verify_big")), ""),
]
if F.get("bundle_raw_bytes") and int(F["bundle_raw_bytes"]) != blob:
    info.append(("note", "the bundle's bundle.json records %s bytes of content, the mirror's "
                 "blob files hold %d (the rest is non-blob files such as index.json)"
                 % (F["bundle_raw_bytes"], blob), ""))
if int(F["blob_bytes"]) < 1 << 30:
    info.append(("note", "the mirror is smaller than 1 GiB: a smoke test, not numbers for "
                 "BENCHMARKS.md", ""))

def md_table(head, body):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(lines)

def txt_table(head, body):
    w = [max(len(str(r[k])) for r in [head] + body) for k in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w[k]) if k == 0 else str(c).rjust(w[k])
                              for k, c in enumerate(r)).rstrip()
    return "\n".join([fmt(head), fmt(["-" * x for x in w])] + [fmt(r) for r in body])

head = ["tool", "median s", "MB/s", "peak RSS MiB", "output MiB"]
passed = sum(1 for t in targets if t[3])
machine = ("%s, %s cores, %s RAM, %s; %s; load average at start %s"
           % (F["cpu"], F["nproc"], F["memory"], F["kernel"], F["filesystem"], F["load"]))
mirror = ("%s layout, %d blobs, %.1f MiB of blobs (%.1f MiB in all)%s"
          % (F["mirror_layout"], int(F["blob_count"]), blob / MiB, int(F["mirror_bytes"]) / MiB,
             "; " + F["generated"] if F.get("generated") else ""))
txt = []
txt.append("ferry benchmark, %s" % F["date"])
txt.append("machine: " + machine)
txt.append("mirror:  %s: %s" % (F["mirror"], mirror))
txt.append("ferry:   " + F["ferry"])
txt.append("tools:   " + F["tools"])
txt.append("median of %s run(s) each, all warm-cache (nothing dropped from the page cache; "
           "one untimed cat of the mirror first); MB = 10^6 bytes of input" % F["runs"])
txt.append("")
txt.append(txt_table(head, table))
txt.append("")
txt.append(txt_table(["target", "measured", "goal", "result"],
                     [(a, b, c, "PASS" if d else "FAIL") for a, b, c, d in targets]))
txt.append("")
for a, b, c in info:
    txt.append("%s: %s%s" % (a, b, "  (%s)" % c if c else ""))
txt.append("")
txt.append("%d of %d targets pass" % (passed, len(targets)))
text = "\n".join(txt)
print(text)
open(txt_f, "w").write(text + "\n")

md = []
md.append("### %s, %s" % (F["date"], F["cpu"]))
md.append("")
md.append("- Machine: " + machine)
md.append("- Mirror: " + mirror)
md.append("- ferry: " + F["ferry"] + "; " + F["tools"])
md.append("- Median of %s run(s) per command, all in one run of `%s`; warm cache throughout "
          "(no `drop_caches`; one untimed `cat` of the mirror first); outputs on the same "
          "filesystem; MB/s is input bytes (10^6) per second; peak RSS is the highest of the "
          "runs (`/usr/bin/time %%M`, includes child processes such as gzip and zstd)."
          % (F["runs"], F["command"]))
md.append("")
def code(label):   # `command` (note)
    cmd, sep, note = label.partition(" (")
    return "`%s`%s" % (cmd, " (" + note if sep else "")
md.append(md_table(head, [(code(r[0]),) + r[1:] for r in table]))
md.append("")
md.append(md_table(["target", "measured", "goal", "result"],
                   [(a, b, c, "PASS" if d else "**FAIL**") for a, b, c, d in targets]))
md.append("")
for a, b, c in info:
    md.append("- %s: %s%s" % (a[0].upper() + a[1:], b, " (%s)" % c if c else ""))
open(md_f, "w").write("\n".join(md) + "\n")
print("\nwrote %s and %s" % (md_f, txt_f))
PY

if [ "$KEEP" != 1 ]; then
  rm -rf "$OUT_BIG" "$OUT_SPLIT" "$W/pack-gzip-only" "$W"/mirror.tar* "$W"/mirror-sync.tar
fi
