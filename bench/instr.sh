#!/bin/sh
# bench/instr.sh - instructions per malloc+free under callgrind (make bench-instr).
# Environment: BUILD=dir (default build), ITERS=N (default 1000000), ALLOCATORS=a,b.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
. bench/peers.sh
missing=$(peers_missing)
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
install_missing bench-instr "$missing"
make -s -f bench/Makefile BUILD="$BUILD"
PY=python3
command -v python3 >/dev/null 2>&1 || PY=/usr/bin/python3
exec "$PY" bench/instr.py
