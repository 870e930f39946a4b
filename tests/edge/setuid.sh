#!/bin/sh
# setuid.sh - edge test: a set-user-ID program ignores the configuration in
# its environment (the invoking user's) and keeps the one compiled into it
# (the malloc_conf symbol).  tests/edge/setuid_prog.c, linked with
# liballoy.a, is made set-user-ID root and run as the user nobody with
# ALLOY_CONF/MALLOC_CONF asking to survive a double free and to change the
# decay time: the double free must still abort (SIGABRT) and the decay time
# stay the program's own.  The same binary without the set-user-ID bit
# obeys the environment (the control).  Needs root and setpriv; skipped
# where the temporary folder is mounted nosuid.
# Env: BUILD, ROOT, TEST_TMP (from tests/run.sh).
set -u
ROOT=${ROOT:-$(pwd)}
BUILD=${BUILD:-$ROOT/build}
CC=${CC:-cc}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (to make a set-user-ID root program)"; exit 77; }
command -v setpriv >/dev/null 2>&1 || { echo "SKIP: setpriv (util-linux) not installed"; exit 77; }
[ -f "$BUILD/liballoy.a" ] || { echo "FAILED: $BUILD/liballoy.a does not exist (run make)"; exit 1; }
ulimit -c 0 2>/dev/null
D=$(mktemp -d /tmp/alloy-setuid.XXXXXX)
trap 'rm -rf "$D"' EXIT
chmod 755 "$D"
"$CC" -O1 -o "$D/prog" "$ROOT/tests/edge/setuid_prog.c" "$BUILD/liballoy.a" -pthread || {
  echo "FAILED: cannot build setuid_prog"; exit 1; }
cp "$D/prog" "$D/plain"
chown root:root "$D/prog" "$D/plain"
chmod 4755 "$D/prog"
chmod 755 "$D/plain"
fails=0
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }
as_nobody() { # PROGRAM ARG: run as nobody with hostile configuration
  env ALLOY_CONF=abort_on_error:false,dirty_decay_ms:5 MALLOC_CONF=abort:false \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

out=$(as_nobody "$D/prog" conf 2>&1)
case "$out" in
  *"decay=1234 abort=1"*) echo "set-user-ID: $out (the environment ignored)" ;;
  *"decay="*) bad "set-user-ID program obeyed the environment: $out" ;;
  *) echo "SKIP: the set-user-ID bit had no effect here ($out)"; exit 77 ;;
esac
out=$(as_nobody "$D/plain" conf 2>&1)
case "$out" in
  *"decay=5 abort=0"*) echo "plain: $out (the environment applies)" ;;
  *) bad "plain program did not obey the environment: $out" ;;
esac

as_nobody "$D/prog" double >"$D/out" 2>"$D/err"
rc=$?
if [ "$rc" -eq 134 ] && grep -q 'double free' "$D/err"; then
  echo "set-user-ID: a double free aborts: $(grep 'alloy:' "$D/err" | head -n 1)"
else
  bad "set-user-ID program survived a double free (status $rc): $(cat "$D/out" "$D/err" | head -n 3)"
fi
as_nobody "$D/plain" double >"$D/out" 2>"$D/err"
rc=$?
[ "$rc" -eq 0 ] && grep -q survived "$D/out" ||
  bad "plain program with abort_on_error:false did not survive the reported double free (status $rc)"
[ "$fails" -eq 0 ] && echo "setuid: ok"
[ "$fails" -eq 0 ]
