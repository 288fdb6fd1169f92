# shellcheck shell=bash
# Shared by the benchmark scripts (sourced): installing what is missing, generated mirrors
# cached between runs, timing one command, a local registry. The caller sets ROOT (the
# checkout), BENCH_DIR (the cache), W (its work directory, with logs/), TSV (one row per
# measurement), RUNS, BENCH_NAME (the prefix of its progress lines), and defines say() and
# die().

# install_missing PACKAGE...: the Debian packages a script found missing (none: nothing).
install_missing() {
  [ $# -gt 0 ] || return 0
  say "installing $*"
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# missing_packages COMMAND...: the Debian packages of the commands that are not here (GNU
# time is /usr/bin/time, not the shell keyword; gnuplot comes as gnuplot-nox).
missing_packages() {
  local c
  for c in "$@"; do
    case "$c" in
      time) [ -x /usr/bin/time ] || echo time ;;
      gnuplot) command -v gnuplot >/dev/null 2>&1 || echo gnuplot-nox ;;
      *) command -v "$c" >/dev/null 2>&1 || echo "$c" ;;
    esac
  done
}

# fresh_workdir DIR STAMP: DIR emptied for this run, with DIR/logs. It is removed only when
# an earlier run of the same script made it (STAMP is inside), never a directory somebody
# else keeps at that path.
fresh_workdir() {
  local dir=$1 stamp=$2
  if [ -e "$dir" ]; then
    [ -f "$dir/$stamp" ] || die "$dir exists but was not made by this script; move it away"
    rm -rf "$dir"
  fi
  mkdir -p "$dir/logs"
  touch "$dir/$stamp"
}

# cached NAME COMMAND...: prints $BENCH_DIR/NAME, made by `COMMAND... $BENCH_DIR/NAME.partial`
# (the directory to make is COMMAND's last argument) unless an earlier run made it. The stamp
# $BENCH_DIR/NAME.stamp is written last, so an interrupted or failed run is never reused; it
# holds the command, when and how long, the generator's SHA-256 and the command's output
# (stdout, as `# ` lines: scripts read facts from them), which goes to stderr too.
cached() {
  local name=$1; shift
  local dir="$BENCH_DIR/$name" stamp="$BENCH_DIR/$name.stamp" log="$BENCH_DIR/$name.log"
  local what="${*//"$ROOT/"/} $dir.partial"
  if [ -f "$stamp" ] && [ -d "$dir" ]; then
    say "reusing $dir (generated $(date -u -r "$stamp" +%FT%TZ))"
  else
    rm -rf "$dir" "$dir.partial" "$stamp"
    say "generating $dir ($what)"
    local t0=$EPOCHREALTIME
    "$@" "$dir.partial" >"$log" || {
      sed 's/^/  /' "$log" >&2
      rm -rf "$dir.partial"
      die "generating $dir failed: $what (its output above; nothing is kept)"
    }
    mv "$dir.partial" "$dir"
    {
      echo "command=$what"
      echo "generated=$(date -u +%FT%TZ)"
      echo "seconds=$(elapsed "$t0" "$EPOCHREALTIME")"
      echo "generator_sha256=$(sha256sum "$ROOT/fixtures/generate.py" | cut -d' ' -f1)"
      sed 's/^/# /' "$log"
    } >"$stamp"
    sed 's/^/  /' "$log" >&2
  fi
  echo "$dir"
}

# generated NAME MODE ARGS...: cached NAME made by `fixtures/generate.py MODE ARGS... --out`.
generated() {
  local name=$1; shift
  cached "$name" python3 "$ROOT/fixtures/generate.py" "$@" --out
}

elapsed() {  # two $EPOCHREALTIME values -> seconds with 6 decimals
  local us=$(( 10#${2/./} - 10#${1/./} ))
  printf '%d.%06d\n' $((us / 1000000)) $((us % 1000000))
}

# measure ID RUN CLEAN -- COMMAND...: removes CLEAN (an output path, or "-"), flushes dirty
# pages from earlier runs (untimed), then runs COMMAND under /usr/bin/time. Wall time comes
# from $EPOCHREALTIME (microseconds; %e only has 10 ms steps), peak RSS from %M.
measure() {
  local id=$1 run=$2 clean=$3; shift 4
  local log="$W/logs/$id.$run.log" tf="$W/logs/$id.$run.time"
  [ "$clean" = - ] || rm -rf "$clean"
  sync
  local t0=$EPOCHREALTIME rc=0
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
  local t1=$EPOCHREALTIME
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$log" >&2
    die "$id (run $run) exited with status $rc: $*"
  fi
  local wall e rss
  wall=$(elapsed "$t0" "$t1")
  read -r e rss < <(tail -n 1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$run" "$wall" "$e" "$rss" >>"$TSV"
  printf '%s: run %s/%s  %-22s %9.3f s %8.1f MiB\n' "$BENCH_NAME" "$run" "$RUNS" "$id" "$wall" \
    "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" >&2
}

# start_registry DIR: a fresh docker-registry (CNCF distribution, Debian's package) on
# 127.0.0.1 with its storage in DIR/data, emptied first. Sets PORT and REG_PID; the caller
# traps stop_registry on EXIT so no registry outlives the script.
REG_PID=
start_registry() {
  local dir=$1
  stop_registry
  rm -rf "$dir"; mkdir -p "$dir/data"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$PORT, secret: bench-secret}
YML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REG_PID=$!
  local _
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/')" 2>/dev/null && return 0
    sleep 0.1
  done
  die "docker-registry did not start: $(cat "$dir/log")"
}
stop_registry() {
  [ -n "$REG_PID" ] || return 0
  kill "$REG_PID" 2>/dev/null || true
  wait "$REG_PID" 2>/dev/null || true
  REG_PID=
}

# cpu_seconds PID: user+system CPU seconds a running process has used (the registry's own
# CPU during a push is the floor of the push's time: say it).
cpu_seconds() {
  awk -v t="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t}' "/proc/$1/stat"
}

# bundle_manifest DIR: the standalone bundle manifest beside the volumes (v1
# `ferry-<id>.bundle.json`, v2 `ferry-<id>.bundle.json.zst`), or nothing.
bundle_manifest() {
  local f
  for f in "$1"/ferry-*.bundle.json.zst "$1"/ferry-*.bundle.json; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 0
}

# newest_source: "mtime path" of the newest file that goes into the binaries (any .rs,
# Cargo.toml or Cargo.lock of the workspace at $ROOT outside target/ and .git/, but not the
# test-only code cargo does not link into them: tests/ folders, tests.rs modules, the
# tests, test-support and fuzz crates — a change there leaves the binaries as they are, and
# cargo does not relink them, so counting it would refuse a fresh binary).
newest_source() {
  find "$ROOT" \( -path "$ROOT/target" -o -path "$ROOT/.git" -o -path "$ROOT/tests" \
    -o -path "$ROOT/test-support" -o -path "$ROOT/fuzz" -o -path '*/tests' \) -prune -o \
    \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) ! -name tests.rs -type f \
    -printf '%T@ %p\n' | sort -n | tail -1
}

# bench_key KEY: the signing key pair KEY and KEY.pub, made unless both are there.
bench_key() {
  if [ ! -f "$1" ] || [ ! -f "$1.pub" ]; then
    rm -f "$1" "$1.pub"
    "$BIN/ferry-pack" keygen "$1" >/dev/null
  fi
}

# ferry_binaries [BINARY...]: sets BIN to the directory of the binaries (default ferry-pack and
# ferry-unpack): FERRY_BIN_DIR as it is, or the release build of their packages, made first;
# either way refused when older than the newest source file, so no benchmark times a stale
# binary.
ferry_binaries() {
  [ $# -gt 0 ] || set -- ferry-pack ferry-unpack
  if [ -n "${FERRY_BIN_DIR:-}" ]; then
    BIN=$(cd "$FERRY_BIN_DIR" && pwd)
    say "using binaries in $BIN (FERRY_BIN_DIR set: not building)"
  else
    local b packages=()
    for b in "$@"; do packages+=(-p "${b#ferry-}"); done
    say "cargo build --release ${packages[*]}"
    (cd "$ROOT" && cargo build --release "${packages[@]}")
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
    # cargo just found them fresh, but does not relink a binary that a change elsewhere (a
    # crate it does not use) leaves as it is: mark them as checked now for refuse_stale.
    for b in "$@"; do touch "$BIN/$b"; done
  fi
  refuse_stale "$BIN" "$@"
}

# refuse_stale BIN [BINARY...]: dies unless BIN holds the binaries (default ferry-pack and
# ferry-unpack), each newer than every source file: no benchmark times a stale binary.
refuse_stale() {
  local bin=$1 b bt src_t src_f; shift
  [ $# -gt 0 ] || set -- ferry-pack ferry-unpack
  for b in "$@"; do [ -x "$bin/$b" ] || die "no $b in $bin"; done
  read -r src_t src_f < <(newest_source)
  for b in "$@"; do
    bt=$(stat -c %Y "$bin/$b")
    if awk -v b="$bt" -v s="$src_t" 'BEGIN {exit !(b < s)}'; then
      die "$bin/$b ($(date -u -d "@$bt" '+%F %T')) is older than $src_f: a stale binary; build first"
    fi
  done
  say "binaries in $bin newer than the newest source file ($src_f)"
}
