#!/usr/bin/env bash
# Fuzzes the volume reader with cargo-fuzz and libFuzzer: each target runs for
# ${FUZZ_SECONDS:-30} seconds, seeded from the test vectors (format-spec/vectors/*/).
#
#   scripts/fuzz.sh                           # every target, 30 s each
#   FUZZ_SECONDS=3600 scripts/fuzz.sh         # an hour each (overnight: FUZZ_SECONDS=28800)
#   scripts/fuzz.sh volume_resigned           # one target
#   FUZZ_JOBS=2 FUZZ_SECONDS=600 scripts/fuzz.sh table_parse   # two processes in parallel
#
# Targets (fuzz/fuzz_targets/):
#   manifest_parse   BundleManifest::parse, v1 and v2; what it accepts is canonical (M1–M27)
#   table_parse      VolumeTable::parse; what it accepts is canonical (R4–R7)
#   trailer_parse    volume::parse_trailer; only the exact trailer text (R1)
#   volume_open      Volume::open with the vector key trusted, open_unverified, verify_chunks,
#                    every blob read back; an accepted volume is exactly what its signed parts
#                    rebuild (no changed byte is accepted)
#   volume_resigned  a fuzzed table (and manifest) put into the valid vector bundle and
#                    re-signed with the vector key, so R4–R34 and blob reading are reached
#
# libFuzzer needs nightly compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 allows
# them. A crash is saved in fuzz/artifacts/<target>/ and the script exits non-zero; replay
# it with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>`, then
# turn it into a regression test (format-spec/tests or tests/tests/e2e/hostile.rs).
# The corpus grows in fuzz/corpus/<target>/ (not committed); delete it to start afresh.
# fuzz/ferry.dict gives libFuzzer the JSON members and boundary numbers (2^32, 2^63, 2^64-1).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
all=(manifest_parse table_parse trailer_parse volume_open volume_resigned)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# Seeds from the vectors, made afresh each run (they are derived, so never committed).
seed() {
  local corpus=fuzz/corpus
  mkdir -p "$corpus"/{manifest_parse,table_parse,trailer_parse,volume_open,volume_resigned}
  local tmp n=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-seed.XXXXXX")
  for vol in format-spec/vectors/*/*.tar; do
    n=$((n + 1))
    cp "$vol" "$corpus/volume_open/vector-$n.tar"
    tail -c 1536 "$vol" | head -c 512 > "$corpus/trailer_parse/vector-$n" || true
    # The documents, where tar can read them (damaged vectors may not extract).
    rm -rf "$tmp/x" && mkdir "$tmp/x"
    tar -xf "$vol" -C "$tmp/x" 2>/dev/null || true
    # The manifest as stored (version 2's zstd frame, version 1's JSON), and as JSON text
    # for volume_resigned (which seals JSON that parses).
    local m=
    for f in "$tmp/x/ferry/bundle.json.zst" "$tmp/x/ferry/bundle.json"; do [ -f "$f" ] && m=$f; done
    rm -f "$tmp/manifest.json"
    if [ -n "$m" ]; then
      cp "$m" "$corpus/manifest_parse/vector-$n"
      case $m in
        *.zst) zstd -d -q -c "$m" > "$tmp/manifest.json" 2>/dev/null || rm -f "$tmp/manifest.json" ;;
        *) cp "$m" "$tmp/manifest.json" ;;
      esac
    fi
    for t in "$tmp"/x/ferry/volume-*.json; do
      [ -f "$t" ] || continue
      cp "$t" "$corpus/table_parse/vector-$n"
      # volume_resigned: [flags] TABLE 0xFF MANIFEST; flags pick the volume and whether
      # documents that parse are canonicalized (see the target's documentation).
      local number flags
      number=$(basename "$t" .json); number=$((10#${number#volume-}))
      for f in 0 64 128 192; do
        flags=$(( f | ((number - 1) % 5) ))
        {
          printf "\\$(printf '%03o' "$flags")"
          cat "$t"
          if [ -f "$tmp/manifest.json" ]; then printf '\377'; cat "$tmp/manifest.json"; fi
        } > "$corpus/volume_resigned/vector-$n-$f"
      done
    done
  done
  rm -rf "$tmp"
}
seed

status=0
parallel=()
[ "$jobs" -le 1 ] || parallel=(-jobs="$jobs" -workers="$jobs")
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s" >&2
  # -rss_limit_mb: the reader must stay small whatever the input (SPEC.md §2).
  # -detect_leaks=0: LeakSanitizer reports glibc's thread-exit bookkeeping
  # (__cxa_thread_atexit_impl, 32 bytes) for verify_chunks' threads; not ferry's memory.
  set +e
  cargo fuzz run "$t" --release -- \
    -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=20 -detect_leaks=0 -print_final_stats=1 -dict="$PWD/fuzz/ferry.dict" \
    "${parallel[@]}" > "fuzz/$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|==[0-9]+== ?ERROR|.*panicked at)' "fuzz/$t.log" >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t stopped with status $rc (a crash, a leak or a timeout); see fuzz/$t.log and fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit $status
