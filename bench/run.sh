#!/bin/sh
# bench/run.sh - alloy's side-by-side benchmark (make bench / make bench QUICK=1).
#
# Installs missing peer allocators and real programs from Debian's packages,
# builds the workloads into $BUILD/bench/, then runs bench/harness.py, which
# writes bench/results/latest.md, latest.svg and latest.json.
#
# Environment: QUICK=1, ROUNDS=N, BUILD=dir (default build), ALLOCATORS=a,b,
# WORKLOADS=a,b, REAL=0 (skip real programs), RESULTS=dir, SNMALLOC_SO=lib,
# STRACE=1 (syscall counts, see bench/syscalls.sh).  See bench/README.md.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD

. bench/peers.sh
missing=$(peers_missing)
if [ "${REAL:-1}" != 0 ]; then
    command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
    command -v redis-benchmark >/dev/null 2>&1 || missing="$missing redis-tools"
    command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"
    [ -x /usr/bin/python3 ] || missing="$missing python3"
fi
# syscall count mode (STRACE=1, as bench/syscalls.sh sets): strace is needed
if [ "${STRACE:-0}" != 0 ]; then
    command -v strace >/dev/null 2>&1 || missing="$missing strace"
fi
install_missing bench "$missing"

# Debian's redis-server package starts a system instance on port 6379; the
# benchmark never uses it (it starts its own server on a random loopback port).

make -s -f bench/Makefile BUILD="$BUILD"

if [ ! -e "$BUILD/liballoy.so" ]; then
    echo "bench: WARNING: $BUILD/liballoy.so is missing (run make first); benchmarking the peers only"
fi

PY=python3
command -v python3 >/dev/null 2>&1 || PY=/usr/bin/python3
exec "$PY" bench/harness.py
