#!/bin/sh
# prof_shares.sh - the heap profile of a program whose call sites hold known
# bytes (prof_sites.c shares: 6.4 MB at site_small, 16.4 MB at site_medium,
# 41.9 MB at site_large; 416 MB of churn and 5 MB passed between threads,
# all freed), dumped with prof.dump and read by Debian's jeprof
# (libjemalloc-dev) and google-pprof (google-perftools) with --text
# --show_bytes:
#   - each site's bytes are attributed to its own function, within 4.5
#     standard deviations of the sampling error (a Poisson count of samples)
#     at 1 sample per 32 KiB, and freed blocks (churn) are not there;
#   - the total is within 10% of the truth at 1 per 32 KiB, and at the
#     default 1 per 512 KiB on the "big" variant (213 MB, mostly 4 MiB
#     blocks, which are all sampled: the total's sampling error is about 2%,
#     where 6.4 MB of 64-byte blocks alone make about 12 samples and would
#     not allow a 10% bound);
#   - the stacks are whole: main is on >= 99% of the bytes;
#   - with prof_accum:true the profile also counts what was allocated and
#     freed: --alloc_space shows churn's 1,000,000 x 416 B within 10%.
# Also the alternative unwinders give the same attribution: opt.prof_unwind
# libgcc (glibc's backtrace), and fp on a build of the program with frame
# pointers (on the build without, fp stacks stop short of main: that is why
# cfi is the default).  Env: ALLOY_SO, TEST_TMP.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
skip_unless "$CC"
skip_unless jeprof
skip_unless google-pprof
"$CC" -std=gnu11 -O2 -g -o "$T/prof_sites" "$HERE/prof_sites.c" -pthread -ldl &&
  "$CC" -std=gnu11 -O2 -g -fno-omit-frame-pointer -o "$T/prof_sites_fp" "$HERE/prof_sites.c" -pthread -ldl ||
  { bad "cannot build prof_sites.c"; finish; exit; }

# value FILE NAME: the flat bytes of function NAME in a --text report
flat() { awk -v n="$2" '$6 == n { print $1; found = 1 } END { if (!found) print 0 }' "$1"; }
cum() { awk -v n="$2" '$6 == n { print $4; found = 1 } END { if (!found) print 0 }' "$1"; }
total() { sed -n 's/^Total: \([0-9]*\) B$/\1/p' "$1"; }

# within NAME GOT WANT REL_SAMPLES_PER_BYTE: |got - want| <= 4.5 sigma, where
# the relative sigma of a site is 1/sqrt(expected samples)
check_site() { # REPORT TOOL NAME WANT BLOCK_SIZE RATE
  got=$(flat "$1" "$3")
  if awk -v g="$got" -v w="$4" -v s="$5" -v r="$6" 'BEGIN {
        n = w / s; p = 1 - exp(-s / r); samples = n * p;
        sigma = w / sqrt(samples); if (sigma > w) sigma = w;
        d = g - w; if (d < 0) d = -d;
        printf "    %s: %d bytes (true %d, %.1f sigma)\n", ENVIRON["SITE"], g, w, d / sigma;
        exit !(d <= 4.5 * sigma) }'; then :; else
    bad "$2 attributes $got bytes to $3, $4 expected (outside 4.5 sigma)"
  fi
}

run_case() { # LABEL LG UNWIND [PROGRAM [big]]
  label=$1 lg=$2 unwind=$3 prog=$T/${4:-prof_sites} size=${5:-}
  out="$T/$label.heap"
  res=$(env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF="prof:true,lg_prof_sample:$lg,prof_unwind:$unwind" \
        "$prog" shares "$out" $size 2>"$T/$label.err")
  [ "$res" = "dump 0" ] || { bad "$label: prof.dump answered '$res'"; cat "$T/$label.err"; return; }
  rate=$((1 << lg))
  want_total=$((6400000 + 16384000 + 41943040))
  [ "$size" = big ] && want_total=$((12800000 + 32768000 + 167772160))
  for tool in jeprof google-pprof; do
    rep="$T/$label.$tool.txt"
    "$tool" --text --show_bytes "$prog" "$out" >"$rep" 2>"$rep.err"
    t=$(total "$rep")
    echo "$label, $tool: total $t B (true $want_total), main on $(cum "$rep" main) B"
    [ -n "$t" ] || { bad "$tool printed no total:"; head -n 5 "$rep" "$rep.err"; continue; }
    awk -v t="$t" -v w="$want_total" 'BEGIN { d = t - w; if (d < 0) d = -d; exit !(d <= 0.10 * w) }' ||
      bad "$label, $tool: total $t B, more than 10% from $want_total"
    awk -v m="$(cum "$rep" main)" -v t="$t" 'BEGIN { exit !(m >= 0.99 * t) }' ||
      bad "$label, $tool: main holds only $(cum "$rep" main) of $t B: stacks cut short"
    [ "$(flat "$rep" churn)" = 0 ] || bad "$label, $tool: freed blocks of churn are in the profile"
    if [ "$lg" -le 15 ]; then
      SITE=site_small check_site "$rep" "$tool" site_small 6400000 64 "$rate"
      SITE=site_medium check_site "$rep" "$tool" site_medium 16384000 8192 "$rate"
      SITE=site_large check_site "$rep" "$tool" site_large 41943040 1048576 "$rate"
    fi
  done
  cmp -s "$T/$label.jeprof.txt" "$T/$label.google-pprof.txt" ||
    bad "$label: jeprof and google-pprof disagree"
}

run_case fine 15 cfi
run_case default 19 cfi prof_sites big
run_case fp 15 fp prof_sites_fp

# prof_accum: cumulative counts (400-byte requests get 416-byte blocks)
env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF="prof:true,lg_prof_sample:15,prof_accum:true" \
  "$T/prof_sites" shares "$T/accum.heap" >/dev/null 2>&1
google-pprof --text --show_bytes --alloc_space "$T/prof_sites" "$T/accum.heap" >"$T/accum.txt" 2>/dev/null
churn=$(flat "$T/accum.txt" churn)
echo "prof_accum: churn allocated $churn B in all (true 416000000)"
awk -v c="${churn:-0}" 'BEGIN { d = c - 416000000; if (d < 0) d = -d; exit !(d <= 41600000) }' ||
  bad "prof_accum: churn's cumulative bytes $churn, more than 10% from 416000000"
run_case libgcc 15 libgcc
finish
