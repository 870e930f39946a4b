#!/bin/sh
# bench/syscalls.sh WORKLOAD[,WORKLOAD...] [ALLOCATORS] - count the
# memory-mapping system calls (mmap, munmap, mremap, madvise, mprotect; brk
# shown separately) of a workload under each allocator with strace -f -c, per
# 100k of the workload's own operations.  Full sizes unless QUICK=1;
# ALLOCATORS defaults to the harness's default set.  Installs strace (Debian
# package) if it is missing.  Prints a markdown table; writes no files.
#
#     bench/syscalls.sh big_random
#     bench/syscalls.sh big_random,big_pass alloy,glibc,tcmalloc
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/syscalls.sh WORKLOAD[,WORKLOAD...] [ALLOCATORS]" >&2; exit 2; }
BUILD=${BUILD:-build}
export BUILD

. bench/peers.sh
missing=$(peers_missing)
command -v strace >/dev/null 2>&1 || missing="$missing strace"
install_missing syscalls "$missing"
command -v strace >/dev/null 2>&1 || { echo "syscalls: strace is not available" >&2; exit 1; }

make -s -f bench/Makefile BUILD="$BUILD"

WORKLOADS=$1
export WORKLOADS
if [ $# -ge 2 ]; then
    ALLOCATORS=$2
    export ALLOCATORS
fi
STRACE=1
export STRACE
PY=python3
command -v python3 >/dev/null 2>&1 || PY=/usr/bin/python3
exec "$PY" bench/harness.py
