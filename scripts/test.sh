#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test, builds and
# checks the static executables offered for air-gapped hosts, and fuzzes each parser briefly
# (FUZZ_SECONDS, default 10; scripts/fuzz.sh runs them longer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# The disk-full tests mount small tmpfs file systems and fail (never skip) when they cannot:
# say so before minutes of building, not after.
probe=$(mktemp -d)
if ! mount -t tmpfs -o size=64k tmpfs "$probe" 2>/dev/null; then
  rmdir "$probe"
  echo "test: cannot mount a tmpfs (mount -t tmpfs): the disk-full tests need it; run as root (CI does), in a container with CAP_SYS_ADMIN" >&2
  exit 2
fi
umount "$probe" && rmdir "$probe"
# The memory-capped test (tests/tests/e2e/memory.rs) caps ferry with util-linux prlimit and
# reads its peak RSS from GNU time; it fails without them, so install time when missing.
if [ ! -x /usr/bin/time ]; then
  echo "test: installing GNU time (the memory-capped test measures peak RSS with it)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null
fi
if ! /usr/bin/prlimit --data=$((320 << 20)) true; then
  echo "test: cannot set a memory cap (prlimit --data): the memory-capped test needs util-linux prlimit" >&2
  exit 2
fi
cargo build --workspace --locked
cargo test --workspace --locked
scripts/static.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
