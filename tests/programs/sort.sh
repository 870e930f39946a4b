#!/bin/sh
# sort.sh - GNU sort of a generated ~50 MB file (-S 200M, default buffer, and
# numeric on two threads with a small buffer, i.e. temporary files) under
# glibc and under alloy; sorted outputs must be identical.
. "$(dirname "$0")/lib.sh"
skip_unless sort
skip_unless awk
awk 'BEGIN { x = 12345;
  for (i = 0; i < 1900000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    printf "%d line-%x %s\n", x % 1000003, x, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1, x % 9 + 1)
  } }' >"$T/in.txt"
echo "input: $(wc -c <"$T/in.txt") bytes, $(wc -l <"$T/in.txt") lines"
export LC_ALL=C
both sort_S200M sort -S 200M -T "$T" "$T/in.txt"
both sort_default sort -T "$T" "$T/in.txt"
both sort_numeric sort -n -k1,1 -k2 --parallel=2 -S 8M -T "$T" "$T/in.txt"
rm -f "$T/in.txt"
finish
