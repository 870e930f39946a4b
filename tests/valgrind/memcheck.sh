#!/bin/sh
# tests/valgrind/memcheck.sh CASE - memcheck on a program alloy serves:
# statically linked with liballoy.a (tests/tests.mk) and run with
# --soname-synonyms=somalloc=nouserintercepts, so valgrind leaves malloc to
# alloy and learns about its blocks from alloy's client requests (src/vg.h).
#   clean          tests/valgrind/clean.c: no error, no leak, no warning
#   uaf, overflow, overflow_class, overflow_large, leak, leak_large,
#   uninit, double tests/valgrind/bugs.c: memcheck's report of that error
# Environment: BUILD (the build directory, from tests/run.sh).
set -u
case_=${1:?usage: memcheck.sh CASE}
B=${BUILD:-build}
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
# The library must have the client requests (sources.mk finds
# <valgrind/memcheck.h>, which Debian's valgrind package installs).
if ! nm "$B/liballoy.a" 2>/dev/null | grep -q 'alloy__vg_memcheck'; then
  echo "FAIL: $B/liballoy.a was built without valgrind's client requests (no <valgrind/memcheck.h> at build time?)"
  exit 1
fi
out=${TEST_TMP:-/tmp}/memcheck.$$.txt
prog=$B/tests/valgrind/bugs
[ "$case_" = clean ] && prog=$B/tests/valgrind/clean
valgrind --soname-synonyms=somalloc=nouserintercepts --leak-check=full --error-exitcode=99 \
  "$prog" $( [ "$case_" = clean ] || echo "$case_" ) >"$out" 2>&1
rc=$?
cat "$out"
fail() { echo "FAIL: $*"; rm -f "$out"; exit 1; }
has() { grep -q -- "$1" "$out" || fail "memcheck did not report: $1"; }

if [ "$case_" = clean ]; then
  [ "$rc" -eq 0 ] || fail "exit status $rc (99: memcheck found errors)"
  has "ERROR SUMMARY: 0 errors from 0 contexts"
  has "All heap blocks were freed -- no leaks are possible"
  has "clean: done"
  if grep -q "WARNING" "$out"; then fail "memcheck printed a warning"; fi
  # valgrind's own malloc was not used: the blocks it counts are alloy's
  has "total heap usage: [1-9]"
  rm -f "$out"
  echo "memcheck: clean program, no error"
  exit 0
fi

[ "$rc" -ne 0 ] || fail "memcheck found nothing (exit status 0)"
if grep -q "is not alloy's" "$out"; then fail "malloc was not alloy's"; fi
case $case_ in
  uaf) has "Invalid write of size 1"; has "free'd" ;;
  overflow) has "Invalid write of size 1"; has "0 bytes after a.*block of size 100 alloc'd" ;;
  overflow_class) has "Invalid write of size 1"; has "0 bytes after a.*block of size 64 alloc'd" ;;
  overflow_large) has "Invalid write of size 1"; has "0 bytes after a.*block of size 100,000" ;;
  leak) has "100 bytes in 1 blocks are definitely lost" ;;
  leak_large) has "300,000 bytes in 1 blocks are definitely lost" ;;
  uninit) has "Conditional jump or move depends on uninitialised value" ;;
  double) has "Invalid free()"; has "alloy: double free of" ;;
  *) fail "unknown case $case_" ;;
esac
has "ERROR SUMMARY: 1 errors from 1 contexts"
rm -f "$out"
echo "memcheck: $case_ reported"
