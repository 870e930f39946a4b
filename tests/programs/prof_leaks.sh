#!/bin/sh
# prof_leaks.sh - leak reports from the heap profiler, on prof_sites.c's
# "leaks" mode, which leaks 1,000 x 1,000 B at leak_small (1,024,000 B of
# blocks) and 50 x 100 KiB at leak_large (5,120,000 B) and frees the rest
# (400 MB of churn, blocks passed between threads):
#   - prof_leak:true with prof_final:true prints the summary at exit, its
#     estimate within 10% of 6,144,000 B, and writes the final profile,
#     which google-pprof attributes to leak_small and leak_large;
#   - prof_leak_error:true makes the process exit with status 1; a program
#     that leaks nothing (mode "clean") gets a small estimate and status 0;
#   - `alloy run --leaks` prints the call stacks, leak_large first then
#     leak_small, with function names, and writes the profile and a flame
#     graph naming both; `alloy run --prof` writes a profile and flame
#     graph; `alloy leaks PROFILE` prints the report on its own;
#   - a bad lg_prof_sample or prof_unwind is reported by name.
# Env: ALLOY_SO, BUILD, TEST_TMP.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
ALLOY="$BUILD/alloy"
skip_unless "$CC"
[ -x "$ALLOY" ] || { bad "$ALLOY does not exist"; finish; exit; }
"$CC" -std=gnu11 -O2 -g -o "$T/prof_sites" "$HERE/prof_sites.c" -pthread -ldl || { bad "cannot build prof_sites.c"; finish; exit; }
LEAKED=6144000

# 1. the library's own summary
env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF="prof:true,prof_final:true,prof_leak:true,lg_prof_sample:12,prof_prefix:$T/lib" \
  "$T/prof_sites" leaks 2>"$T/lib.err"
rc=$?
cat "$T/lib.err"
[ "$rc" -eq 0 ] || bad "prof_sites leaks exited with $rc"
est=$(sed -n 's/^alloy: leak summary: ~\([0-9]*\) bytes.*/\1/p' "$T/lib.err")
[ -n "$est" ] || bad "no leak summary on stderr"
awk -v e="${est:-0}" -v w="$LEAKED" 'BEGIN { d = e - w; if (d < 0) d = -d; exit !(d <= 0.10 * w) }' ||
  bad "leak summary: ~$est bytes, more than 10% from $LEAKED"
final=$(ls "$T"/lib.*.f.heap 2>/dev/null | head -n 1)
[ -n "$final" ] || bad "no final profile $T/lib.<pid>.<seq>.f.heap"
grep -q "leak profile: $final" "$T/lib.err" || bad "the summary does not name the final profile $final"
if command -v google-pprof >/dev/null 2>&1 && [ -n "$final" ]; then
  google-pprof --text --show_bytes "$T/prof_sites" "$final" >"$T/lib.txt" 2>/dev/null
  for f in leak_small leak_large; do
    grep -q " $f\$" "$T/lib.txt" || bad "google-pprof does not show $f in the final profile"
  done
  grep -q " churn\$" "$T/lib.txt" && bad "google-pprof shows churn, whose blocks were all freed"
fi

# 2. prof_leak_error, and a program that leaks nothing
env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF="prof:true,prof_final:true,prof_leak_error:true,lg_prof_sample:12,prof_prefix:$T/err" \
  "$T/prof_sites" leaks 2>/dev/null
rc=$?
[ "$rc" -eq 1 ] && echo "prof_leak_error: exit status 1" || bad "prof_leak_error: exit status $rc, 1 expected"
env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF="prof:true,prof_final:true,prof_leak:true,lg_prof_sample:12,prof_prefix:$T/clean" \
  "$T/prof_sites" clean 2>"$T/clean.err"
rc=$?
cat "$T/clean.err"
[ "$rc" -eq 0 ] || bad "prof_sites clean exited with $rc"
clean=$(sed -n 's/^alloy: leak summary: ~\([0-9]*\) bytes.*/\1/p' "$T/clean.err")
[ "${clean:-0}" -lt 200000 ] || bad "a program that frees everything: ~$clean bytes reported"

# 3. the launcher
(cd "$T" && "$ALLOY" run --leaks --prefix "$T/run" -- "$T/prof_sites" leaks) 2>"$T/run.err"
rc=$?
cat "$T/run.err"
[ "$rc" -eq 0 ] || bad "alloy run --leaks: exit status $rc"
first=$(grep -n -m 1 'leak_large' "$T/run.err" | cut -d: -f1)
second=$(grep -n -m 1 'leak_small' "$T/run.err" | cut -d: -f1)
[ -n "$first" ] && [ -n "$second" ] && [ "$first" -lt "$second" ] ||
  bad "alloy run --leaks: leak_large then leak_small expected in the report"
grep -q '#1 .* allocated at' "$T/run.err" || bad "alloy run --leaks: no call stack report"
grep -q 'main ' "$T/run.err" || bad "alloy run --leaks: main is not in the stacks"
svg=$(sed -n 's/^alloy: flame graph: //p' "$T/run.err")
[ -n "$svg" ] && [ -s "$svg" ] || bad "alloy run --leaks: no flame graph"
for f in leak_small leak_large; do
  [ -n "$svg" ] && grep -q "<title>$f " "$svg" || bad "the flame graph has no frame $f"
done
prof=$(sed -n 's/^alloy: heap profile: \([^ ]*\) .*/\1/p' "$T/run.err")
[ -n "$prof" ] && [ -s "$prof" ] || bad "alloy run --leaks: no heap profile"
if [ -n "$prof" ]; then
  "$ALLOY" leaks "$prof" -n 2 >"$T/leaks.txt" || bad "alloy leaks $prof failed"
  grep -q 'leak_large' "$T/leaks.txt" || bad "alloy leaks does not show leak_large"
fi
"$ALLOY" run --prof --prefix "$T/p" -- "$T/prof_sites" clean 2>"$T/prof.err"
[ "$?" -eq 0 ] || bad "alloy run --prof: non-zero status"
ls "$T"/p.*.f.heap.svg >/dev/null 2>&1 || bad "alloy run --prof: no flame graph beside the profile"

# 4. bad configuration is reported
env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF="prof:true,lg_prof_sample:64,prof_unwind:magic" "$T/prof_sites" clean 2>"$T/bad.err"
grep -q "bad value '64' for option 'lg_prof_sample'" "$T/bad.err" || bad "lg_prof_sample:64 not reported"
grep -q "bad value 'magic' for option 'prof_unwind'" "$T/bad.err" || bad "prof_unwind:magic not reported"
finish
