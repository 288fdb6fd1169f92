#!/usr/bin/env bash
# The README's main job on a shipped fixture: generate a key, pack the oc `file://` mirror
# fixture into several volumes, verify each volume alone, push them into a local registry
# this script starts (docker-registry on 127.0.0.1, storage in a temp dir) and read the
# images back with skopeo, show the OpenShift manifests, then extract the bundle as the
# original layout (compared with diff -r) and as one OCI layout.
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
echo "== start a local registry and push the volumes into it, one disk at a time"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry/data}}
http: {addr: 127.0.0.1:$port, secret: ferry-demo}
YML
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
  sleep 0.1
done
status=0
for v in $(ls "$work"/volumes/*.tar | sort -r); do
  echo "-- push $(basename "$v")"
  "$bin/ferry-unpack" push "$v" --trust "$work/site.key.pub" --to "127.0.0.1:$port/efk" --insecure \
    --state "$work/state" --manifests-dir "$work/manifests" || status=$?
  [ "$status" = 0 ] || [ "$status" = 3 ] || exit "$status"
done
echo "== read an image back from the registry with skopeo"
skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/efk/openshift4/ose-elasticsearch-proxy:v4.6" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print("registry holds", d["Name"], d["Digest"])'
echo "== OpenShift manifests to apply (oc apply -f $work/manifests/cluster/; before 4.13: cluster-before-4.13/)"
head -20 "$work/manifests/cluster/imageDigestMirrorSet.yaml"
cat "$work/manifests/cluster/catalogSource.yaml"
echo "== extract as the original layout and compare"
"$bin/ferry-unpack" extract "$work/volumes" --trust "$work/site.key.pub" --to "$work/original" --layout original
diff -r "$mirror" "$work/original" && echo "identical to $mirror"
echo "== extract as one OCI layout and read it with skopeo"
"$bin/ferry-unpack" extract "$work/volumes" --trust "$work/site.key.pub" --to "$work/oci" --layout oci
# --json is a JSON Lines event stream (docs/events.md): one object per line, with a type.
name=$("$bin/ferry-unpack" inspect "$work/volumes" --json | python3 -c '
import json, sys
events = [json.loads(line) for line in sys.stdin if line.strip()]
i = next(e for e in events if e["type"] == "image" and e["repository"].endswith("ose-elasticsearch-proxy"))
print(i["repository"] + ":" + i["tags"][0])')
skopeo inspect "oci:$work/oci:$name" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("skopeo reads", d["Name"] if d.get("Name") else "", d["Digest"])'
echo "== done: volumes in $work/volumes"
