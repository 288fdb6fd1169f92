#!/usr/bin/env bash
# The README's main job on a shipped fixture: generate a key, pack the oc `file://` mirror
# fixture into several volumes, verify each volume alone, then extract the bundle both as
# one OCI layout (read back with skopeo) and as the original layout (compared with diff -r).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p pack -p unpack --locked
bin=target/release
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
echo "== working in $work"
mirror=${1:-fixtures/oc-mirror}

"$bin/ferry-pack" keygen "$work/site.key"
echo "== pack $mirror into 256 KiB volumes"
"$bin/ferry-pack" "$mirror" --out "$work/volumes" --volume-size 256KiB --key "$work/site.key"
echo "== verify each volume alone, as at the gap"
for v in "$work"/volumes/*.tar; do
  "$bin/ferry-unpack" verify "$v" --trust "$work/site.key.pub" | grep -E '^(OK|DAMAGED|FOREIGN|INVALID|UNREADABLE)'
done
echo "== verify all volumes together"
"$bin/ferry-unpack" verify "$work/volumes" --trust "$work/site.key.pub"
echo "== extract as the original layout and compare"
"$bin/ferry-unpack" extract "$work/volumes" --trust "$work/site.key.pub" --to "$work/original" --layout original
diff -r "$mirror" "$work/original" && echo "identical to $mirror"
echo "== extract as one OCI layout and read it with skopeo"
"$bin/ferry-unpack" extract "$work/volumes" --trust "$work/site.key.pub" --to "$work/oci" --layout oci
name=$("$bin/ferry-unpack" inspect "$work/volumes" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
i = next(i for i in d["images"] if i["repository"].endswith("ose-elasticsearch-proxy"))
print(i["repository"] + ":" + i["tags"][0])')
skopeo inspect "oci:$work/oci:$name" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("skopeo reads", d["Name"] if d.get("Name") else "", d["Digest"])'
echo "== done: volumes in $work/volumes"
