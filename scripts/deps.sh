#!/usr/bin/env bash
# Installs what ferry's demo and tests need on a fresh Debian machine, only when missing:
# the Rust toolchain is expected (rustup); the rest comes from Debian packages.
set -euo pipefail

need=()
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# tmux renders what a terminal shows (the pack prompt test reads the screen at 80 and 220 columns).
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# A fault test stops ferry-pack at an exact point (tests/src/faults.rs StoppedAt).
command -v strace >/dev/null 2>&1 || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found: install Rust (https://rustup.rs) and run again" >&2
  exit 2
fi
