#!/usr/bin/env bash
# Makes a source tarball that builds with no network: the workspace plus every crate it
# needs (`cargo vendor`), for installing ferry-unpack on an air-gapped host.
#
#   scripts/vendor.sh [OUT.tar.gz]          # on the connected side
#   # carry OUT.tar.gz across, then on the air-gapped host (Rust toolchain installed):
#   tar xzf ferry-src.tar.gz && cd ferry && cargo install --path unpack --offline --locked
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$PWD/ferry-src.tar.gz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive --format=tar --prefix=ferry/ HEAD | tar -x -C "$work"
cd "$work/ferry"
mkdir -p .cargo
# cargo vendor prints the source replacement that makes cargo use the vendored copies.
cargo vendor --locked --versioned-dirs vendor > .cargo/config.toml
cd "$work"
tar czf "$out" ferry
echo "wrote $out ($(du -h "$out" | cut -f1)); inside: tar xzf $(basename "$out") && cd ferry && cargo install --path unpack --offline --locked"
