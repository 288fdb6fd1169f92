#!/usr/bin/env bash
# Builds ferry-pack and ferry-unpack as static executables (glibc, crt-static: no shared
# libraries needed on the host), and checks that they are static and run.
#   scripts/static.sh [TARGET_DIR]   → TARGET_DIR/x86_64-unknown-linux-gnu/release/ferry-{pack,unpack}
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${1:-$root/target/static}
triple=$(rustc -vV | sed -n 's/^host: //p')
cd "$root"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
  cargo build --release --locked --target "$triple" -p pack -p unpack
for b in ferry-pack ferry-unpack; do
  exe=$target_dir/$triple/release/$b
  if ldd "$exe" >/dev/null 2>&1 && ! ldd "$exe" 2>&1 | grep -q "statically linked"; then
    echo "static.sh: $exe is dynamically linked:" >&2; ldd "$exe" >&2; exit 1
  fi
  "$exe" --version
done
echo "static.sh: static executables in $target_dir/$triple/release/"
