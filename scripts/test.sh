#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test, then
# builds and checks the static executables offered for air-gapped hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --workspace --locked
cargo test --workspace --locked
scripts/static.sh
