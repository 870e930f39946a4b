#!/bin/sh
# bench/instr.sh - instructions per malloc+free under callgrind (make bench-instr).
# Environment: BUILD=dir (default build), ITERS=N (default 1000000), ALLOCATORS=a,b.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
LIB=/usr/lib/x86_64-linux-gnu
missing=""
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
[ -e "$LIB/libjemalloc.so.2" ] || missing="$missing libjemalloc2"
[ -e "$LIB/libmimalloc.so.2" ] || missing="$missing libmimalloc2.0"
[ -e "$LIB/libtcmalloc_minimal.so.4" ] || missing="$missing libtcmalloc-minimal4"
if [ -n "$missing" ]; then
    echo "bench-instr: installing missing packages:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
make -s -f bench/Makefile BUILD="$BUILD"
PY=python3
command -v python3 >/dev/null 2>&1 || PY=/usr/bin/python3
exec "$PY" bench/instr.py
