#!/bin/sh
# cross_arm64.sh - edge test: the library builds for ARM64 with the per-CPU
# caches' sequences (src/rseq.h), and every abort handler of the result
# follows the kernel's contract: the four bytes before it are the signature
# glibc registers (BRK #0x45E0, 0xd428bc00) and it branches back to re-arm
# rseq_cs.  Needs aarch64-linux-gnu-gcc (Debian's gcc-aarch64-linux-gnu);
# skipped without it.  Env: ROOT, BUILD.
set -u
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
OBJDUMP=${CROSS_OBJDUMP:-aarch64-linux-gnu-objdump}
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: $CC not installed (gcc-aarch64-linux-gnu)"; exit 77; }
cd "$ROOT" || exit 1
out="$BUILD/tests/cross_arm64"
rm -rf "$out"
mkdir -p "$out"
srcs=$(sed -n 's/^\(CORE_SRC\|API_SRC\) *:= *//p; s/^ *\(src\/.*\)/\1/p' sources.mk | tr -d '\\' | tr ' ' '\n' | grep '\.c$')
for f in $srcs; do
  $CC -std=gnu11 -Wall -Wextra -Werror -Iinclude -D_GNU_SOURCE -fvisibility=hidden -ftls-model=initial-exec \
    -fno-builtin-malloc -fno-stack-protector -O2 -fPIC -c "$f" -o "$out/$(basename "$f" .c).o" ||
    { echo "FAILED: $f does not build for ARM64"; exit 1; }
done
$CC -shared -o "$out/liballoy.so" "$out"/*.o -pthread || { echo "FAILED: link"; exit 1; }
dis=$($OBJDUMP -d -j __rseq_failure "$out/liballoy.so")
nsig=$(printf '%s\n' "$dis" | grep -c 'd428bc00')
nb=$(printf '%s\n' "$dis" | grep -cE '	b	')
size=$($OBJDUMP -h "$out/liballoy.so" | awk '$2 == "__rseq_cs" {print $3}')
ncs=$((0x${size:-0} / 32)) # descriptors are 32 bytes
echo "ARM64: $nsig abort handlers, $nb branches back, $ncs descriptors"
[ "$nsig" -gt 0 ] && [ "$nsig" -eq "$nb" ] && [ "$nsig" -eq "${ncs:-0}" ] ||
  { echo "FAILED: every descriptor needs a signed abort handler"; printf '%s\n' "$dis"; exit 1; }
# the signature sits right before each abort label: pairs of (signature, branch)
printf '%s\n' "$dis" | awk '/d428bc00/ {sig = 1; next} /	b	/ {if (!sig) bad = 1; sig = 0} END {exit bad}' ||
  { echo "FAILED: an abort handler without its signature"; exit 1; }
echo "ok"
