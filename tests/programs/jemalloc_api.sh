#!/bin/sh
# jemalloc_api.sh - alloy as a link-time replacement for libjemalloc:
# tests/programs/jemalloc_api.c, compiled against Debian's
# <jemalloc/jemalloc.h>, is linked once with -ljemalloc (the reference: its
# checks must all hold on jemalloc, which keeps the test honest) and once with
# -lalloy instead.  The alloy build must not load libjemalloc (ldd), its
# jemalloc symbols must resolve to liballoy.so (the program checks with dladdr,
# and LD_DEBUG=bindings must show mallctl bound to liballoy), and every check
# of the extended API, mallctl, MIBs, error codes, malloc_stats_print and the
# redis and bind9 call sequences must pass.  Env: ALLOY_SO, TEST_TMP.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
skip_unless "$CC"
if [ ! -f /usr/include/jemalloc/jemalloc.h ]; then
  echo "SKIP: /usr/include/jemalloc/jemalloc.h missing (libjemalloc-dev not installed)"
  exit 77
fi
LIBDIR=$(cd "$(dirname "$ALLOY_SO")" && pwd)
CFLAGS="-std=gnu11 -Wall -Wextra -O1 -g"
SRC="$HERE/jemalloc_api.c"

# build_run NAME EXPECT LABEL ARGS...: builds the source into $T/NAME with
# the extra compiler ARGS and runs it expecting EXPECT's behaviour (alloy or
# jemalloc); every check must pass.
build_run() {
  name=$1 expect=$2 label=$3
  shift 3
  if ! "$CC" $CFLAGS -o "$T/$name" "$SRC" "$@" -ldl >"$T/$name.build.log" 2>&1; then
    bad "cannot build jemalloc_api.c $label:"
    tail -n 20 "$T/$name.build.log"
  elif JEMALLOC_API_EXPECT=$expect "$T/$name" >"$T/$name.out" 2>&1; then
    echo "$label: $(tail -n 1 "$T/$name.out")"
  else
    bad "$label, the checks fail:"
    grep -E '^FAIL|checks' "$T/$name.out" | head -n 20
  fi
}

# The reference, on jemalloc (libjemalloc-dev provides libjemalloc.so): the
# checks must hold there, which keeps the test honest.
build_run api_jemalloc jemalloc "with -ljemalloc (the reference)" -ljemalloc

# The same source linked with -lalloy instead.
if ! "$CC" $CFLAGS -o "$T/api_alloy" "$SRC" -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lalloy -ldl \
  >"$T/build_alloy.log" 2>&1; then
  bad "cannot link jemalloc_api.c with -lalloy instead of -ljemalloc:"
  grep -o "undefined reference to \`[^']*'" "$T/build_alloy.log" | sort -u | head -n 20
  finish
  exit
fi
libs=$(ldd "$T/api_alloy")
if printf '%s\n' "$libs" | grep -q 'libjemalloc'; then
  bad "the -lalloy build loads libjemalloc:"
  printf '%s\n' "$libs" | grep libjemalloc
fi
if ! printf '%s\n' "$libs" | grep -q "$LIBDIR/liballoy.so"; then
  bad "the -lalloy build does not load $LIBDIR/liballoy.so:"
  printf '%s\n' "$libs"
fi
JEMALLOC_API_EXPECT=alloy "$T/api_alloy" >"$T/alloy.out" 2>"$T/alloy.err"
rc=$?
cat "$T/alloy.out"
if [ "$rc" -ne 0 ]; then
  bad "jemalloc_api on alloy exited with status $rc"
  tail -n 20 "$T/alloy.err"
fi
if grep -q '^alloy:' "$T/alloy.err"; then
  bad "alloy reported a problem:"
  grep '^alloy:' "$T/alloy.err" | head -n 10
fi
# The loader's own word on where mallctl and mallocx are bound.
LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/bindings" JEMALLOC_API_EXPECT=alloy "$T/api_alloy" \
  >/dev/null 2>&1
for sym in mallctl mallocx malloc_stats_print; do
  to=$(cat "$T"/bindings.* 2>/dev/null | grep "normal symbol \`$sym'" |
    sed -n "s/.* to \([^ ]*\) \[.*/\1/p" | sort -u)
  case "$to" in
    *liballoy.so*) echo "$sym bound to $to" ;;
    *) bad "$sym bound to '${to:-nothing}', not to liballoy.so" ;;
  esac
done
# The same source against alloy's own <jemalloc/jemalloc.h> (include/), as
# on a machine without libjemalloc-dev.
build_run api_alloy_h alloy "with alloy's include/jemalloc/jemalloc.h" -I"$ROOT/include" \
  -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lalloy
finish
