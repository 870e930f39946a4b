# lib.sh - sourced by tests/programs/*.sh: run a real program twice, on
# glibc's malloc and under LD_PRELOAD=liballoy.so, and compare.
#   ref NAME CMD...    run on glibc: stdout to $T/NAME.ref; exit 0 required
#   on_alloy NAME CMD...  the same run preloaded: stdout to $T/NAME.alloy;
#                      exit 0 required, no loader complaint, no alloy report
#   same NAME          the two outputs are identical
#   finish             exit status of the script
# Env from tests/run.sh: ALLOY_SO, TEST_TMP, BUILD.
set -u
T=${TEST_TMP:?TEST_TMP not set}
fails=0

bad() {
  echo "FAILED: $*"
  fails=$((fails + 1))
}

now() { date +%s.%N 2>/dev/null | cut -c1-14; }

# _run MODE NAME CMD...
_run() {
  mode=$1
  name=$2
  shift 2
  t0=$(now)
  if [ "$mode" = ref ]; then
    "$@" >"$T/$name.ref" 2>"$T/$name.ref.err"
    rc=$?
  else
    env LD_PRELOAD="$ALLOY_SO" "$@" >"$T/$name.alloy" 2>"$T/$name.alloy.err"
    rc=$?
  fi
  t1=$(now)
  echo "$name on $mode: exit $rc, $(echo "$t1 - $t0" | awk '{printf "%.1f", $1 - $3}') s"
  if [ "$rc" -ne 0 ]; then
    bad "$name on $mode exited with status $rc; stderr:"
    tail -n 20 "$T/$name.$mode.err"
  fi
  if [ "$mode" = alloy ]; then
    if grep -q 'cannot be preloaded' "$T/$name.alloy.err"; then
      bad "$name: the loader ignored LD_PRELOAD"
    fi
    if grep -q '^alloy:' "$T/$name.alloy.err"; then
      bad "$name: alloy reported a problem:"
      grep '^alloy:' "$T/$name.alloy.err" | head -n 10
    fi
  fi
  return 0
}

ref() { _run ref "$@"; }
on_alloy() { _run alloy "$@"; }

same() {
  if [ ! -s "$T/$1.ref" ]; then
    bad "$1: the reference run printed nothing"
  elif cmp -s "$T/$1.ref" "$T/$1.alloy"; then
    echo "$1: outputs identical ($(wc -c <"$T/$1.ref") bytes)"
  else
    bad "$1: output on alloy differs from glibc's:"
    diff "$T/$1.ref" "$T/$1.alloy" | head -n 20
  fi
}

# both NAME CMD...: ref, on_alloy, same
both() {
  ref "$@"
  on_alloy "$@"
  same "$1"
}

skip_unless() { # TOOL
  command -v "$1" >/dev/null 2>&1 || {
    echo "SKIP: $1 not installed"
    exit 77
  }
}

finish() {
  [ "$fails" -eq 0 ] && echo "ok"
  [ "$fails" -eq 0 ]
}
