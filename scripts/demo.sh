#!/usr/bin/env bash
# The README's main job on a shipped fixture: generate a key, pack the oc `file://` mirror
# fixture into several volumes, verify each volume alone, push them into a local registry
# this script starts (docker-registry on 127.0.0.1, storage in a temp dir) and read the
# images back with skopeo, show the OpenShift manifests, then extract the bundle as the
# original layout (compared with diff -r) and as one OCI layout. Then the connected side
# from registries: a second local registry stands for registry.redhat.io (a registries.conf
# points the name at it), and one command pulls an image set from it into a cache and packs
# it; the volumes are verified, pushed inside, and read back by their original digests.
# The set includes an operator catalog (test-support's generated fixture, file-based and
# SQLite, with its bundle and related images): listed without podman or grpcurl, filtered
# to two packages, rebuilt, packed with every image its bundles need, pushed inside with
# its CatalogSource, and listed again from the volumes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p pack -p unpack --locked
cargo build --release -p test-support --features catalog-fixture --bin gen-catalog --locked
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
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
# start_registry NAME: a docker-registry on 127.0.0.1, storage under $work/NAME; sets $port.
start_registry() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/$1"
  cat >"$work/$1/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/$1/data}}
http: {addr: 127.0.0.1:$port, secret: ferry-demo}
YML
  docker-registry serve "$work/$1/config.yml" >"$work/$1/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && return
    sleep 0.1
  done
  echo "docker-registry did not start: $(cat "$work/$1/log")" >&2
  exit 1
}
echo "== start a local registry and push the volumes into it, one disk at a time"
start_registry registry
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

echo "== the connected side from registries: a registry standing for registry.redhat.io"
inside=$port
start_registry source
source=$port
for image in ose-elasticsearch-proxy:v4.6 ose-logging-fluentd:v4.6 ose-elasticsearch-operator:v4.6; do
  skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
    "dir:fixtures/skopeo-dir/openshift4/$image" "docker://127.0.0.1:$source/openshift4/$image"
done
echo "-- an operator catalog and its images (generated: fixtures/README.md \"Operator catalogs\")"
"$bin/gen-catalog" fixture "$work/catalog-fixture" >"$work/catalog-fixture.txt"
while read -r name reference; do
  skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
    "oci:$work/catalog-fixture:$name" "docker://127.0.0.1:$source/${reference#registry.redhat.io/}"
done <"$work/catalog-fixture.txt"
echo "   $(wc -l <"$work/catalog-fixture.txt") images pushed"
cat >"$work/registries.conf" <<CONF
# registry.redhat.io is served by the local registry (how a site mirror is named, too)
[[registry]]
prefix = "registry.redhat.io"
location = "127.0.0.1:$source"
insecure = true
CONF
cat >"$work/imageset.yaml" <<YAML
apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  additionalImages:
  - name: registry.redhat.io/openshift4/ose-elasticsearch-proxy:v4.6
  - name: registry.redhat.io/openshift4/ose-logging-fluentd:v4.6
  - name: registry.redhat.io/openshift4/ose-elasticsearch-operator@sha256:b9dce18ae0e4fb237ac76ff3051431a83476269408639faf1a672474dfeff292
  operators:
  - catalog: registry.redhat.io/fixture/operator-index:v4.16
    targetCatalog: demo/operator-index
    targetTag: filtered
    packages:
    - name: beta-operator
    - name: gamma-operator
      channels:
      - name: preview
        minVersion: 0.2.0
YAML
echo "-- what the catalog holds, without podman or grpcurl (only its configs layer is fetched)"
"$bin/ferry-pack" catalog list registry.redhat.io/fixture/operator-index:v4.16 \
  --registries-conf "$work/registries.conf"
echo "-- the same content as a SQLite catalog (OpenShift 4.6-4.10), one package with its bundles"
"$bin/ferry-pack" catalog list registry.redhat.io/fixture/operator-index:v4.8 \
  --registries-conf "$work/registries.conf" --package gamma-operator
cat "$work/imageset.yaml"
echo "-- plan: manifests only (with --platform linux/amd64 the fluentd index would be carried sparse)"
"$bin/ferry-pack" pull --config "$work/imageset.yaml" --cache "$work/cache" \
  --registries-conf "$work/registries.conf" --platform linux/amd64 --plan
echo "-- pull into the cache and pack the set, in one command"
"$bin/ferry-pack" --config "$work/imageset.yaml" --cache "$work/cache" \
  --registries-conf "$work/registries.conf" \
  --out "$work/pulled-volumes" --volume-size 256KiB --key "$work/site.key"
echo "-- the same command again: nothing is downloaded, the volumes are checked and kept"
"$bin/ferry-pack" --config "$work/imageset.yaml" --cache "$work/cache" \
  --registries-conf "$work/registries.conf" \
  --out "$work/pulled-volumes" --volume-size 256KiB --key "$work/site.key" -q
"$bin/ferry-unpack" verify "$work/pulled-volumes" --trust "$work/site.key.pub"
echo "-- push inside"
"$bin/ferry-unpack" push "$work/pulled-volumes" --trust "$work/site.key.pub" --to "127.0.0.1:$inside/pulled" \
  --insecure --state "$work/state" --manifests-dir "$work/pulled-manifests"
skopeo inspect --no-tags --tls-verify=false \
  "docker://127.0.0.1:$inside/pulled/openshift4/ose-elasticsearch-operator@sha256:b9dce18ae0e4fb237ac76ff3051431a83476269408639faf1a672474dfeff292" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print("inside, by its original digest:", d["Name"], d["Digest"])'
echo "-- the mirror set names the real source, not the registry that served the pull"
grep -B2 -A1 'source: "registry.redhat.io/openshift4' "$work/pulled-manifests/cluster/imageDigestMirrorSet.yaml"
echo "-- the rebuilt catalog, listed from the volumes, and its CatalogSource"
"$bin/ferry-unpack" catalog list "$work/pulled-volumes" --trust "$work/site.key.pub"
grep -A4 '^spec:' "$work/pulled-manifests/cluster/catalogSource.yaml"
echo "== done: volumes in $work/volumes, pulled volumes in $work/pulled-volumes"
