#!/bin/sh
# rseq_handlers.sh - ARM64 test: every restartable sequence of the per-CPU
# caches (src/rseq.h) built for ARM64 follows the kernel's contract: the
# four bytes before each abort handler are the signature glibc registers
# (BRK #0x45E0, 0xd428bc00) and the handler branches back to re-arm
# rseq_cs.  Read from the cross-built library in BUILD/arm64 (the build
# tests/arm64/run.sh makes), so it runs without qemu-user; under qemu-user
# rseq is not emulated and the per-CPU unit test runs on thread heaps, so
# this is what checks the ARM64 sequences.  Needs aarch64-linux-gnu-gcc
# and its objdump (Debian's gcc-aarch64-linux-gnu).  Env: ROOT, BUILD.
set -u
cd "${ROOT:-.}" || exit 2
B=${BUILD:-build}
A=$B/arm64
CROSS=${ARM64_CC:-aarch64-linux-gnu-gcc}
OBJDUMP=${ARM64_OBJDUMP:-aarch64-linux-gnu-objdump}
command -v "$CROSS" >/dev/null 2>&1 || { echo "SKIP: $CROSS not installed (gcc-aarch64-linux-gnu)"; exit 77; }
command -v "$OBJDUMP" >/dev/null 2>&1 || { echo "SKIP: $OBJDUMP not installed (binutils-aarch64-linux-gnu)"; exit 77; }
"${MAKE:-make}" -s --no-print-directory CC="$CROSS" BUILD="$A" "$A/liballoy.so" || { echo "FAILED: cross build"; exit 1; }
so=$A/liballoy.so
dis=$($OBJDUMP -d -j __rseq_failure "$so")
nsig=$(printf '%s\n' "$dis" | grep -c 'd428bc00')
nb=$(printf '%s\n' "$dis" | grep -cE '	b	')
size=$($OBJDUMP -h "$so" | awk '$2 == "__rseq_cs" {print $3}')
ncs=$((0x${size:-0} / 32)) # descriptors are 32 bytes
echo "ARM64: $nsig abort handlers, $nb branches back, $ncs descriptors"
[ "$nsig" -gt 0 ] && [ "$nsig" -eq "$nb" ] && [ "$nsig" -eq "${ncs:-0}" ] ||
  { echo "FAILED: every descriptor needs a signed abort handler"; printf '%s\n' "$dis"; exit 1; }
# the signature sits right before each abort label: pairs of (signature, branch)
printf '%s\n' "$dis" | awk '/d428bc00/ {sig = 1; next} /	b	/ {if (!sig) bad = 1; sig = 0} END {exit bad}' ||
  { echo "FAILED: an abort handler without its signature"; exit 1; }
echo "ok"
