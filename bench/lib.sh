# Shared by the benchmark scripts (sourced): installing what is missing, timing one
# command. The caller sets W (its work directory, with logs/), TSV (one row per
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
