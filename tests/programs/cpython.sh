#!/bin/sh
# cpython.sh - a selection of CPython's own regression tests (Debian's
# libpython3.11-testsuite) run on alloy with PYTHONMALLOC=malloc, so every
# Python object is allocated and freed through alloy's malloc and free.
# Passes when the test runner reports success and alloy reported nothing.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import test.test_dict' 2>/dev/null; then
  echo "SKIP: CPython's test suite is not installed (apt-get install libpython3.$("$PY" -c 'import sys; print(sys.version_info[1])')-testsuite)"
  exit 77
fi
TESTS="test_dict test_list test_set test_json test_re test_unicode test_bytes test_tuple
test_deque test_heapq test_bisect test_collections test_itertools test_functools test_string
test_format test_long test_float test_pickle test_array test_sort test_struct test_weakref
test_gc test_memoryview test_userdict test_userlist test_userstring test_textwrap test_csv
test_difflib test_statistics test_enum test_dataclasses test_copy test_operator test_ordered_dict"
cd "$T" || exit 1
# shellcheck disable=SC2086
env PYTHONMALLOC=malloc LD_PRELOAD="$ALLOY_SO" "$PY" -m test $TESTS >"$T/cpython.out" 2>&1
rc=$?
tail -n 8 "$T/cpython.out"
[ "$rc" -eq 0 ] || bad "CPython's tests failed on alloy (exit $rc)"
grep -q 'Tests result: SUCCESS' "$T/cpython.out" || bad "no 'Tests result: SUCCESS' line"
if grep -q '^alloy:' "$T/cpython.out"; then
  bad "alloy reported a problem:"
  grep '^alloy:' "$T/cpython.out" | head -5
fi
finish
