#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test, builds and
# checks the static executables offered for air-gapped hosts, and fuzzes each parser briefly
# (FUZZ_SECONDS, default 10; scripts/fuzz.sh runs them longer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --workspace --locked
cargo test --workspace --locked
scripts/static.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
