#!/bin/sh
# fuzz/run.sh [SECONDS] - build alloy's libFuzzer harness and run it.
#
# Builds build/fuzz/fuzz_alloc (fuzz/fuzz.mk: clang -fsanitize=fuzzer,address,
# undefined over the allocator's core sources), then fuzzes for SECONDS of
# wall time (default 60) starting from the seeds in fuzz/corpus/.  New inputs
# go to build/fuzz/corpus/ (fuzz/corpus/ stays as committed), crashes to
# build/fuzz/artifacts/; libFuzzer's output is kept in build/fuzz/fuzz.log.
# Prints the number of executions and exits non-zero when the fuzzer found a
# crash (the report and the reproducer's name are printed).
#
# Environment: BUILD (default build), FUZZ_CC (default clang), FUZZ_ARGS
# (extra libFuzzer flags), FUZZ_VERBOSE=1 (show libFuzzer's whole output),
# FUZZ_CONF (options for the library under test, as ALLOY_CONF: the whole
# run is fuzzed under them; by default none, whatever ALLOY_CONF says).
# Exits 77 after "SKIP: reason" when clang cannot link -fsanitize=fuzzer
# (Debian: the package libclang-rt-14-dev).
#
# Reproduce a crash:  build/fuzz/fuzz_alloc build/fuzz/artifacts/crash-...
set -u
SECS=${1:-60}
cd "$(dirname "$0")/.." || exit 2
B=${BUILD:-build}
CC_FUZZ=${FUZZ_CC:-clang}
OUT="$B/fuzz"
mkdir -p "$OUT/corpus" "$OUT/artifacts" || exit 2

if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
  echo "SKIP: $CC_FUZZ not installed"
  exit 77
fi
probe="$OUT/probe"
if ! printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
  "$CC_FUZZ" -fsanitize=fuzzer,address -x c - -o "$probe" >/dev/null 2>&1; then
  echo "SKIP: $CC_FUZZ cannot link -fsanitize=fuzzer (libFuzzer runtime: libclang-rt-14-dev on Debian)"
  exit 77
fi
rm -f "$probe"

echo "fuzz: building $OUT/fuzz_alloc"
if ! ${MAKE:-make} -s --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" -f fuzz/fuzz.mk \
  BUILD="$B" FUZZ_CC="$CC_FUZZ" fuzz-build; then
  echo "fuzz: build failed"
  exit 2
fi

# The library reports its own errors (wrong sizes, double frees) and aborts:
# any such report is a finding too.  Leak detection is off: alloy's memory
# comes from mmap, libFuzzer's own from glibc/ASan.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:abort_on_error=0:handle_abort=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
unset ALLOY_CONF
conf_tag=
if [ -n "${FUZZ_CONF:-}" ]; then
  export ALLOY_CONF="$FUZZ_CONF"
  conf_tag=" under $FUZZ_CONF"
fi

log="$OUT/fuzz${FUZZ_CONF:+-$(printf '%s' "$FUZZ_CONF" | tr -c 'A-Za-z0-9_\n' '_')}.log"
# The corpus grows from run to run; libFuzzer replays all of it at start-up,
# so past 3000 inputs it is merged down to the ones that add coverage.
if [ "$(ls "$OUT/corpus" | wc -l)" -gt 3000 ]; then
  rm -rf "$OUT/corpus.min"
  mkdir -p "$OUT/corpus.min"
  if "$OUT/fuzz_alloc" -merge=1 -rss_limit_mb=2048 "$OUT/corpus.min" "$OUT/corpus" >"$log" 2>&1; then
    rm -rf "$OUT/corpus"
    mv "$OUT/corpus.min" "$OUT/corpus"
    echo "fuzz: corpus merged down to $(ls "$OUT/corpus" | wc -l) inputs"
  fi
fi
echo "fuzz: running for ${SECS}s$conf_tag (seeds: fuzz/corpus/, new inputs: $OUT/corpus/)"
# -timeout: one input taking 25 s is a hang; -max_len 4096 bytes is ~1000 operations.
"$OUT/fuzz_alloc" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=25 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$OUT/artifacts/" ${FUZZ_ARGS:-} \
  "$OUT/corpus" fuzz/corpus >"$log" 2>&1
rc=$?

if [ "${FUZZ_VERBOSE:-0}" = 1 ]; then
  cat "$log"
else
  grep -E '^(INFO: (Seed|Loaded)|#[0-9]+ +(INITED|DONE))' "$log" | head -n 6
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
units=$(ls "$OUT/corpus" | wc -l)
echo "fuzz: ${execs:-?} executions in ${SECS}s$conf_tag (${rate:-?} exec/s), peak RSS ${rss:-?} MiB, corpus $units inputs"
if [ "$rc" -ne 0 ]; then
  echo "fuzz: FAILED (libFuzzer exit status $rc); the end of $log:"
  grep -v '^#[0-9]' "$log" | tail -n 60
  crash=$(ls -t "$OUT"/artifacts/* 2>/dev/null | head -n 1)
  [ -n "$crash" ] && echo "fuzz: reproduce with: ${FUZZ_CONF:+ALLOY_CONF=$FUZZ_CONF }$OUT/fuzz_alloc $crash"
  exit 1
fi
echo "fuzz: ok"
exit 0
