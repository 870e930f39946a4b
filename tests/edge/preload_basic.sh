#!/bin/sh
# preload_basic.sh - edge test (a): programs start and exit 0 under
# LD_PRELOAD=liballoy.so: a program whose shared library's constructor (and
# .preinit_array) allocates before main (ctor_main, which checks that memory in
# main), /bin/true and `ls -la /usr/lib` (output equal to the glibc run);
# with the argument "python": `python3 -c 'print(1)'` prints 1, also with
# PYTHONMALLOC=malloc.  Env: BUILD, ALLOY_SO, TEST_TMP (from tests/run.sh).
set -u
T=${TEST_TMP:-/tmp}
fails=0

# check NAME CMD...: runs CMD preloaded; exit 0 and no loader complaint
check() {
  what=$1
  shift
  env LD_PRELOAD="$ALLOY_SO" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  if grep -q 'cannot be preloaded' "$T/err"; then
    echo "FAILED: $what: the loader ignored LD_PRELOAD:"
    cat "$T/err"
    fails=$((fails + 1))
  elif [ "$rc" -ne 0 ]; then
    echo "FAILED: $what: exit status $rc; stderr:"
    tail -n 20 "$T/err"
    fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}

# same_output NAME CMD...: the preloaded run printed what glibc's run prints
same_output() {
  what=$1
  shift
  "$@" >"$T/ref" 2>/dev/null
  if cmp -s "$T/ref" "$T/out"; then
    echo "ok: $what output matches glibc's"
  else
    echo "FAILED: $what: output differs from the glibc run:"
    diff "$T/ref" "$T/out" | head -n 20
    fails=$((fails + 1))
  fi
}

if [ "${1:-}" = python ]; then
  py=/usr/bin/python3
  [ -x "$py" ] || py=$(command -v python3 || true)
  [ -n "$py" ] || { echo "SKIP: python3 not installed"; exit 77; }
  check "python3 -c 'print(1)'" "$py" -c 'print(1)'
  if [ "$(cat "$T/out")" != 1 ]; then
    echo "FAILED: python3 printed '$(cat "$T/out")', not 1"
    fails=$((fails + 1))
  fi
  check "PYTHONMALLOC=malloc python3 -c 'print(1)'" env PYTHONMALLOC=malloc "$py" -c 'print(1)'
else
  check "ctor_main (allocation in constructors)" "$BUILD/tests/edge/ctor_main"
  check "/bin/true" /bin/true
  check "ls -la /usr/lib" ls -la /usr/lib
  same_output "ls -la /usr/lib" ls -la /usr/lib
fi
[ "$fails" -eq 0 ]
