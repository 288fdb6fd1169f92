#!/usr/bin/env bash
# Delta benchmark: how large is the second bundle of a mirror in which about 10% of
# the images changed, packed with --base against the first bundle? Makes mirror A
# (generate.py bench, OCI layout), mirror B = A with every tenth image's largest own layer
# replaced by new random content, packs A, packs B against A's manifest, prints the sizes.
#   bench/delta.sh                  # 256MiB mirror
#   BENCH_SIZE=64MiB bench/delta.sh
#
# Usage: bench/delta.sh [-h]      (settings are environment variables, listed by -h)
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/delta.sh [-h]

Environment (all optional):
  BENCH_SIZE=256MiB      size of mirror A (generate.py bench --size)
  BENCH_DIR=/tmp/ferry-bench
                         work directory: everything goes to $BENCH_DIR/delta/, emptied first
  FERRY_BIN_DIR=DIR      use ferry-pack from DIR (default target/release, built when missing)
EOF
}
case "$#:${1:-}" in
  0:) ;;
  1:-h|1:--help) usage; exit 0 ;;
  *) echo "bench-delta: unknown argument '$1' (settings are environment variables)" >&2; usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${BENCH_SIZE:-256MiB}
W=${BENCH_DIR:-/tmp/ferry-bench}/delta
BIN=${FERRY_BIN_DIR:-$ROOT/target/release}
[ -x "$BIN/ferry-pack" ] || (cd "$ROOT" && cargo build --release -q -p pack -p unpack)
rm -rf "$W"; mkdir -p "$W"
python3 "$ROOT/fixtures/generate.py" bench --out "$W/a" --size "$SIZE" --layout oci >/dev/null
cp -a "$W/a" "$W/b"
python3 - "$W/b" <<'PY'
import gzip, hashlib, io, json, os, random, sys
root = sys.argv[1]
blob = lambda d: os.path.join(root, "blobs", "sha256", d.split(":")[1])
index = json.load(open(os.path.join(root, "index.json")))
single = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
tops = [m for m in index["manifests"] if m["mediaType"] in single]
# How many images use each layer: only an image's own layers change.
uses = {}
for m in tops:
    for l in json.load(open(blob(m["digest"])))["layers"]:
        uses[l["digest"]] = uses.get(l["digest"], 0) + 1
rng = random.Random(4242)
changed = 0
for m in tops[::10] + tops[5::10][: max(0, len(index["manifests"]) // 10 - len(tops[::10]))]:
    doc = json.load(open(blob(m["digest"])))
    own = [l for l in doc["layers"] if uses[l["digest"]] == 1]
    if not own:
        continue
    layer = max(own, key=lambda l: l["size"])
    data = gzip.compress(rng.randbytes(layer["size"]), compresslevel=1, mtime=0)
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob(d), "wb").write(data)
    layer["digest"], layer["size"] = d, len(data)
    raw = json.dumps(doc, separators=(",", ":")).encode()
    md = "sha256:" + hashlib.sha256(raw).hexdigest()
    open(blob(md), "wb").write(raw)
    m["digest"], m["size"] = md, len(raw)
    changed += 1
json.dump(index, open(os.path.join(root, "index.json"), "w"), separators=(",", ":"))
print(f"changed {changed} of {len(index['manifests'])} images", file=sys.stderr)
PY
"$BIN/ferry-pack" keygen "$W/k" >/dev/null
SOURCE_DATE_EPOCH=1 "$BIN/ferry-pack" "$W/a" --out "$W/full-a" --volume-size 4GiB --key "$W/k" -q >/dev/null
SOURCE_DATE_EPOCH=2 "$BIN/ferry-pack" "$W/b" --out "$W/full-b" --volume-size 4GiB --key "$W/k" -q >/dev/null
SOURCE_DATE_EPOCH=2 "$BIN/ferry-pack" "$W/b" --out "$W/delta-b" --volume-size 4GiB --key "$W/k" -q \
  --base "$(ls "$W"/full-a/*.bundle.json*)" >/dev/null
size() { du -cb "$1"/*.tar | tail -1 | cut -f1; }
full=$(size "$W/full-b"); delta=$(size "$W/delta-b")
python3 -c "import sys; f, d = int(sys.argv[1]), int(sys.argv[2]); print(f'full bundle of B: {f} bytes; delta of B against A: {d} bytes = {100 * d / f:.1f}% of the full bundle')" "$full" "$delta"
