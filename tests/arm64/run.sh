#!/bin/sh
# tests/arm64/run.sh TEST [PAGE_SIZE] - one test of alloy's ARM64 build,
# cross-compiled with Debian's gcc-aarch64-linux-gnu and run under
# qemu-user (qemu-aarch64 -L /usr/aarch64-linux-gnu).  TEST is a unit test
# (tests/unit/TEST.c, linked with the cross-built liballoy_core.a) or
# "stress" (tests/stress/stress.c, 8 threads, 4 rounds).  PAGE_SIZE makes
# qemu report that OS page size to the program (-p: 65536 for 64 KiB
# pages; alloy reads it at run time).  The ARM64 build lives in BUILD/arm64
# and is made by the first test that needs it.  Env: ROOT, BUILD.
set -u
t=${1:?usage: run.sh TEST [PAGE_SIZE]}
page=${2:-}
cd "${ROOT:-.}" || exit 2
B=${BUILD:-build}
A=$B/arm64
CROSS=${ARM64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
SYSROOT=${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}
command -v "$CROSS" >/dev/null 2>&1 || { echo "SKIP: $CROSS not installed (gcc-aarch64-linux-gnu)"; exit 77; }
command -v "$QEMU" >/dev/null 2>&1 || { echo "SKIP: $QEMU not installed (qemu-user)"; exit 77; }
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || { echo "SKIP: no ARM64 C library in $SYSROOT (libc6-arm64-cross)"; exit 77; }

# What qemu-user cannot emulate faithfully: these run natively only.
case $t in
  test_fork) echo "SKIP: under qemu-user a guest that forks while other threads run makes qemu abort on its own assertion (cpu_exec: cpu == current_cpu)"; exit 77 ;;
  test_thp|test_thp_auto) echo "SKIP: under qemu-user the guest's madvise(MADV_HUGEPAGE) never reaches the kernel: smaps shows no THP eligibility to check"; exit 77 ;;
  test_thread_churn) echo "SKIP: qemu-user keeps emulation state for every guest thread it ran: its RSS grew past 5 GiB over the test's 20000 threads, which the test bounds at 200 MiB"; exit 77 ;;
esac

MAKE=${MAKE:-make}
if [ "$t" = stress ]; then bin=$A/tests/stress/stress; else bin=$A/tests/unit/$t; fi
"$MAKE" -s --no-print-directory CC="$CROSS" BUILD="$A" "$A/liballoy_core.a" &&
  "$MAKE" -s --no-print-directory -f tests/tests.mk CC="$CROSS" BUILD="$A" "$bin" || { echo "FAILED: cross build"; exit 1; }
file "$bin" 2>/dev/null | grep -q 'ARM aarch64' || { echo "FAILED: $bin is not an ARM64 program"; exit 1; }
set -- -L "$SYSROOT"
[ -n "$page" ] && set -- "$@" -p "$page"
echo "$QEMU $* $bin"
if [ "$t" = stress ]; then
  exec "$QEMU" "$@" "$bin" -t 8 -r 4 -n 15000
fi
exec "$QEMU" "$@" "$bin"
