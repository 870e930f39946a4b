#!/bin/sh
# tests/run.sh - alloy's test runner.  Usage: sh tests/run.sh BUILD_DIR
#
# Builds every test (tests/tests.mk), runs each as a separate process under a
# timeout and prints one line per test:
#   PASS name | FAIL name (reason) | SKIP name (reason)
# with the last 30 lines of a failed test's output, and ends with the summary
#   N passed, N failed, N skipped
# The exit status is non-zero when a test failed.  TESTS=REGEX (grep -E, matched
# against the names, e.g. TESTS='unit/|edge/fork') runs a subset; the names are
# listed by TESTS_LIST=1.  Logs are kept in BUILD_DIR/tests/logs/ (times.txt:
# seconds per test).
#
# Groups: unit/* (tests/unit/test_*.c on the prefixed API), stress/* (threads;
# stress/opt_* under each option of OPTION_MATRIX),
# asan/* and tsan/* (sanitizer builds), edge/* (preloaded corner cases; and
# edge/layers: no file calls a higher layer of src/internal.h's list),
# misuse/* (double, invalid and wrong-size frees reported and aborted:
# tests/misuse/; misuse/opt_* under each option of OPTION_MATRIX), oom/* (out of memory: address-space limit and injected
# mapping failures, tests/oom/), programs/* (real programs on glibc and on
# alloy, outputs compared; programs/prof_* the heap profiler read by jeprof
# and google-pprof), valgrind/* (memcheck on programs alloy serves:
# tests/valgrind/), pkg/* (packaging: make install and pkg-config, the man
# pages, the Debian package, the Rust crate: tests/pkg/), arm64/* (the unit
# tests and the stress test cross-compiled for ARM64 and run under
# qemu-user, with 4 KiB and 64 KiB pages: tests/arm64/run.sh; and the
# per-CPU caches' ARM64 abort handlers: tests/arm64/rseq_handlers.sh), fuzz/smoke
# (fuzz/run.sh with a fixed seed: 40,000 inputs or 60 s, whichever ends first)
# and fuzz/opt_* (the same under each option set of FUZZ_CONFS: 10,000 inputs
# or 20 s).
# A test script exits 77 after printing "SKIP: reason" when a tool it needs is
# missing; so does the runner for tests whose tools are not installed.

BUILD_ARG=${1:-build}
mkdir -p "$BUILD_ARG" || exit 2
B=$(cd "$BUILD_ARG" && pwd)
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
MAKE=${MAKE:-make}
LOGS="$B/tests/logs"
TMPBASE="$B/tests/tmp"
rm -rf "$LOGS" "$TMPBASE"
mkdir -p "$LOGS" "$TMPBASE"

export BUILD="$B" ALLOY_SO="$B/liballoy.so" ROOT
# The sanitizers: fail on the first error, with a useful report.
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=0:halt_on_error=1:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66"

npass=0
nfail=0
nskip=0
start_all=$(date +%s)

# ------------------------------------------------------------ test catalogue
# name|timeout|kind|arg   (kind: unit, san, stress, stress-preload, edge-bin,
# edge-sh, misuse, oom, prog-sh, valgrind, pkg-sh, fuzz); tools it needs are
# checked in needs() or by the test itself (exit 77).
UNITS=$(ls tests/unit/test_*.c 2>/dev/null | sed 's|tests/unit/||; s|\.c$||')
# The option matrix: the preloaded stress test (contents, alignment, a peak
# RSS bound) and the misuse cases run again under each of these.
OPTION_MATRIX="guard:true guard_sample:1 background_thread:true purge:free secure:false thp:always percpu:true"
# fuzz/opt_*: fuzz/run.sh under each of these (20 s or 10,000 inputs each):
# guarded sampling's usable sizes and guarded big blocks' nallocx were found
# this way (docs/NEXT.md), the per-CPU caches and eager purging are other
# paths the default options never take.
FUZZ_CONFS="guard_sample:16,dirty_decay_ms:0 guard:true,thp:always percpu:true purge:free,dirty_decay_ms:0,tcache:false"
# The unit tests that also run with 64 KiB pages under qemu (-p 65536); the
# others state 4 KiB page figures in their checks (usable sizes rounded to
# 4 KiB, stats.active bounds, grown-in-place tails) or measure RSS, which
# qemu's page-size emulation inflates.
ARM64_64K="test_aligned test_arena test_background test_bad_sizes test_big test_ctl test_decay test_page
           test_size_class test_stats_print test_usable_size"

catalogue() {
  for u in $UNITS; do echo "unit/$u|120|unit|$u"; done
  echo "stress/alloy|240|stress|"
  echo "stress/preload|240|stress-preload|"
  for u in $UNITS; do echo "asan/$u|300|san|asan $u"; done
  echo "asan/stress|300|san-stress|asan"
  for u in $UNITS; do echo "tsan/$u|300|san|tsan $u"; done
  echo "tsan/stress|300|san-stress|tsan"
  echo "edge/preload_basic|120|edge-sh|preload_basic"
  echo "edge/preload_python|120|edge-sh|preload_basic python"
  echo "edge/thread_exit|120|edge-bin|thread_exit"
  echo "edge/fork|180|edge-bin|fork"
  echo "edge/fork_handlers|120|edge-bin|fork_handlers"
  echo "edge/dlopen|120|edge-bin|dlopen"
  echo "edge/badfree|60|edge-bin|badfree"
  echo "edge/mallinfo|60|edge-bin|mallinfo"
  echo "edge/guard|60|edge-bin|guard"
  echo "edge/cxx|120|edge-bin|cxx"
  echo "edge/exports|60|edge-sh|exports"
  echo "edge/layers|120|edge-sh|layers"
  echo "edge/conf|120|edge-sh|conf"
  echo "edge/setuid|60|edge-sh|setuid"
  echo "edge/launcher|120|edge-sh|launcher basic"
  echo "edge/launcher_stats|120|edge-sh|launcher stats"
  echo "edge/launcher_cli|60|edge-sh|launcher cli"
  for o in $OPTION_MATRIX; do echo "stress/opt_${o%%:*}|240|stress-opt|$o"; done
  echo "misuse/core|180|misuse|core"
  echo "misuse/preload|180|misuse|preload"
  echo "misuse/cxx|120|misuse|cxx"
  for o in $OPTION_MATRIX; do echo "misuse/opt_${o%%:*}|180|misuse-opt|$o"; done
  echo "oom/rlimit|180|oom|rlimit"
  echo "oom/inject|120|oom|inject"
  for p in python sort gcc git sqlite cpython bind9 redis jemalloc_api; do echo "programs/$p|240|prog-sh|$p"; done
  for p in prof_shares prof_leaks prof_python prof_redis; do echo "programs/$p|240|prog-sh|$p"; done
  for v in clean uaf overflow overflow_class overflow_large leak leak_large uninit double; do
    echo "valgrind/$v|180|valgrind|$v"
  done
  echo "pkg/man|60|pkg-sh|man"
  echo "pkg/install|120|pkg-sh|install"
  echo "pkg/deb|600|pkg-sh|deb"
  echo "pkg/rust|600|pkg-sh|rust"
  for u in $UNITS; do echo "arm64/$u|300|arm64|$u"; done
  echo "arm64/stress|300|arm64|stress"
  for u in $ARM64_64K; do echo "arm64/64k_$u|300|arm64|$u 65536"; done
  echo "arm64/64k_stress|300|arm64|stress 65536"
  echo "arm64/rseq_handlers|180|arm64|rseq_handlers"
  echo "fuzz/smoke|300|fuzz|60"
  # the option sets under which the fuzzer found bugs the defaults hide
  for c in $FUZZ_CONFS; do echo "fuzz/opt_${c%%:*}|120|fuzz|20 $c"; done
}

if [ -n "${TESTS_LIST:-}" ]; then
  catalogue | cut -d'|' -f1
  exit 0
fi

selected() {
  [ -z "${TESTS:-}" ] || printf '%s\n' "$1" | grep -Eq -- "$TESTS"
}

# ------------------------------------------------------------- tool checks
have() { command -v "$1" >/dev/null 2>&1; }

san_cc=${SAN_CC:-clang}
san_ok=""   # cache: "asan:yes tsan:no ..."
san_usable() { # $1 = asan | tsan; sets why
  case " $san_ok " in *" $1:yes "*) return 0 ;; *" $1:no "*) why="clang cannot build -fsanitize ($1)"; return 1 ;; esac
  if ! have "$san_cc"; then
    why="$san_cc not installed"
    san_ok="$san_ok $1:no"
    return 1
  fi
  if [ "$1" = asan ]; then f="-fsanitize=address,undefined"; else f="-fsanitize=thread"; fi
  if printf 'int main(void){return 0;}\n' | "$san_cc" $f -x c - -o "$TMPBASE/san_probe_$1" >/dev/null 2>&1 &&
    "$TMPBASE/san_probe_$1"; then
    san_ok="$san_ok $1:yes"
    return 0
  fi
  why="$san_cc cannot link/run $f (sanitizer runtime, libclang-rt-14-dev, missing?)"
  san_ok="$san_ok $1:no"
  return 1
}

# needs NAME KIND ARG: 0 when runnable, else sets why
needs() {
  why=""
  case "$2" in
    san|san-stress) san_usable "${3%% *}" || return 1 ;;
  esac
  case "$1" in
    edge/cxx|misuse/cxx) have "${CXX:-g++}" || { why="g++ not installed"; return 1; } ;;
    edge/exports) { have nm && have readelf; } || { why="binutils (nm, readelf) not installed"; return 1; } ;;
    edge/layers) have nm || { why="binutils (nm) not installed"; return 1; } ;;
  esac
  return 0
}

# ------------------------------------------------------------------ helpers
describe_status() { # $1 = exit status, $2 = timeout
  if [ "$1" -eq 124 ]; then
    echo "timed out after $2 s"
  elif [ "$1" -eq 137 ]; then
    echo "killed by SIGKILL (timed out after $2 s?)"
  elif [ "$1" -gt 128 ]; then
    sig=$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))
    echo "killed by signal SIG$sig"
  else
    echo "exit status $1"
  fi
}

# build TARGET...: make the test's binaries; output to the test's log
build() {
  "$MAKE" -s --no-print-directory -f tests/tests.mk BUILD="$B" "$@" >>"$log" 2>&1
}

pass() { npass=$((npass + 1)); echo "PASS $name"; }
skip() { nskip=$((nskip + 1)); echo "SKIP $name ($1)"; }
fail() {
  nfail=$((nfail + 1))
  echo "FAIL $name ($1)"
  echo "---- last 30 lines of $log:"
  tail -n 30 "$log" | sed 's/^/    /'
  echo "----"
}

# run_cmd TIMEOUT CMD...: runs with the test's log; sets rc
run_cmd() {
  t=$1
  shift
  timeout -k 10 "$t" "$@" >>"$log" 2>&1 </dev/null
  rc=$?
}

preload_ready() {
  if [ ! -f "$ALLOY_SO" ]; then
    why="$ALLOY_SO does not exist"
    return 1
  fi
  return 0
}

# ------------------------------------------------------------------ running
run_one() { # name timeout kind arg
  name=$1
  tmo=$2
  kind=$3
  arg=$4
  log="$LOGS/$(echo "$name" | tr '/' '_').log"
  : >"$log"
  if ! needs "$name" "$kind" "$arg"; then
    skip "$why"
    return
  fi
  TEST_TMP="$TMPBASE/$(echo "$name" | tr '/' '_')"
  rm -rf "$TEST_TMP"
  mkdir -p "$TEST_TMP"
  export TEST_TMP
  t0=$(date +%s)
  case "$kind" in
    unit)
      build "$B/tests/unit/$arg" || { fail "build failed"; return; }
      run_cmd "$tmo" "$B/tests/unit/$arg"
      ;;
    stress)
      build "$B/tests/stress/stress" || { fail "build failed"; return; }
      run_cmd "$tmo" "$B/tests/stress/stress"
      ;;
    stress-preload)
      preload_ready || { fail "$why"; return; }
      build "$B/tests/stress/stress_libc" || { fail "build failed"; return; }
      run_cmd "$tmo" env LD_PRELOAD="$ALLOY_SO" STRESS_REQUIRE_ALLOY=1 "$B/tests/stress/stress_libc"
      ;;
    stress-opt)
      preload_ready || { fail "$why"; return; }
      build "$B/tests/stress/stress_libc" || { fail "build failed"; return; }
      run_cmd "$tmo" env LD_PRELOAD="$ALLOY_SO" STRESS_REQUIRE_ALLOY=1 ALLOY_CONF="$arg" \
        "$B/tests/stress/stress_libc" -t 4 -r 4 -n 20000 -M 400
      ;;
    misuse-opt)
      build "$B/tests/misuse/misuse" || { fail "build failed"; return; }
      run_cmd "$tmo" env MISUSE_EXTRA_CONF="$arg" "$B/tests/misuse/misuse"
      ;;
    san)
      set -- $arg
      build "$B/$1/$2" || { fail "build failed"; return; }
      run_cmd "$tmo" "$B/$1/$2"
      ;;
    san-stress)
      build "$B/$arg/stress" || { fail "build failed"; return; }
      if [ "$arg" = tsan ]; then
        run_cmd "$tmo" "$B/tsan/stress" -t 8 -r 10 -n 4000 -S 1024
      else
        run_cmd "$tmo" "$B/asan/stress" -t 8 -r 10 -n 12000
      fi
      ;;
    edge-bin)
      preload_ready || { fail "$why"; return; }
      set -- "$B/tests/edge/$arg"
      [ "$arg" = dlopen ] && set -- "$@" "$B/tests/edge/libdl_lib.so"
      build "$@" || { fail "build failed"; return; }
      run_cmd "$tmo" env LD_PRELOAD="$ALLOY_SO" "$@"
      ;;
    edge-sh)
      set -- $arg
      case "$1" in
        exports | layers) ;; # they read the library's symbols; the others run ctor_main
        *) build "$B/tests/edge/ctor_main" || { fail "build failed"; return; } ;;
      esac
      script=$1
      shift
      run_cmd "$tmo" sh "tests/edge/$script.sh" "$@"
      ;;
    prog-sh)
      preload_ready || { fail "$why"; return; }
      run_cmd "$tmo" sh "tests/programs/$arg.sh"
      ;;
    misuse)
      M="$B/tests/misuse"
      case "$arg" in
        core)
          build "$M/misuse" || { fail "build failed"; return; }
          run_cmd "$tmo" "$M/misuse"
          ;;
        preload)
          preload_ready || { fail "$why"; return; }
          build "$M/misuse_preload" || { fail "build failed"; return; }
          run_cmd "$tmo" env LD_PRELOAD="$ALLOY_SO" "$M/misuse_preload"
          ;;
        cxx)
          preload_ready || { fail "$why"; return; }
          build "$M/misuse_preload" "$M/misuse_cxx" || { fail "build failed"; return; }
          run_cmd "$tmo" env LD_PRELOAD="$ALLOY_SO" "$M/misuse_preload" --cxx "$M/misuse_cxx"
          ;;
      esac
      ;;
    oom)
      build "$B/tests/oom/$arg" || { fail "build failed"; return; }
      run_cmd "$tmo" "$B/tests/oom/$arg"
      ;;
    arm64) # builds BUILD/arm64 first; exits 77 without the cross compiler or qemu-user
      if [ "$arg" = rseq_handlers ]; then # reads the cross-built library: no qemu
        run_cmd "$tmo" sh tests/arm64/rseq_handlers.sh
      else
        run_cmd "$tmo" sh tests/arm64/run.sh $arg
      fi
      ;;
    pkg-sh) # tests/pkg/NAME.sh; each exits 77 when its tools are missing
      run_cmd "$tmo" sh "tests/pkg/$arg.sh"
      ;;
    valgrind) # the script exits 77 without valgrind
      build "$B/tests/valgrind/bugs" "$B/tests/valgrind/clean" || { fail "build failed"; return; }
      run_cmd "$tmo" sh tests/valgrind/memcheck.sh "$arg"
      ;;
    fuzz) # fuzz/run.sh builds into $BUILD/fuzz and exits 77 without libFuzzer.
      # A fixed seed: the test suite replays the same mutations run after run
      # (a finding reproduces); `make fuzz` explores with a fresh seed each time.
      set -- $arg # seconds, then the options (none for the smoke run)
      runs=40000
      [ $# -gt 1 ] && runs=10000
      run_cmd "$tmo" env FUZZ_CONF="${2:-}" FUZZ_ARGS="${FUZZ_ARGS:--seed=1 -runs=$runs}" sh fuzz/run.sh "$1"
      ;;
  esac
  secs=$(($(date +%s) - t0))
  echo "$secs $name" >>"$LOGS/times.txt"
  if [ "$rc" -eq 0 ]; then
    pass
    rm -rf "$TEST_TMP"
  elif [ "$rc" -eq 77 ]; then
    reason=$(grep '^SKIP:' "$log" | tail -n 1 | sed 's/^SKIP: *//')
    skip "${reason:-skipped by the test}"
    rm -rf "$TEST_TMP"
  else
    fail "$(describe_status "$rc" "$tmo")"
  fi
}

# Build everything up front, in parallel, when the whole suite runs; each test
# still runs its own (then no-op) build so that a build error lands in its log.
if [ -z "${TESTS:-}" ]; then
  jobs=$(nproc 2>/dev/null || echo 2)
  targets="unit stress edge misuse oom valgrind"
  have "${CXX:-g++}" && targets="$targets cxx misuse-cxx"
  log="$LOGS/build.log"
  san_usable asan && targets="$targets asan"
  san_usable tsan && targets="$targets tsan"
  "$MAKE" -k -j"$jobs" -s --no-print-directory -f tests/tests.mk BUILD="$B" $targets \
    >"$log" 2>&1 || echo "(some test builds failed; see the tests concerned)"
fi

catalogue >"$TMPBASE/catalogue"
while IFS='|' read -r n t k a; do
  selected "$n" || continue
  run_one "$n" "$t" "$k" "$a"
done <"$TMPBASE/catalogue"

total=$(($(date +%s) - start_all))
if [ -s "$LOGS/times.txt" ]; then
  slowest=$(sort -rn "$LOGS/times.txt" | head -n 5 | awk '{printf "%s%s %ss", (NR > 1 ? ", " : ""), $2, $1}')
  echo "time: ${total}s in all; slowest: $slowest"
fi
if [ "$nskip" -gt 0 ]; then
  echo "$npass passed, $nfail failed, $nskip skipped"
else
  echo "$npass passed, $nfail failed"
fi
[ "$nfail" -eq 0 ]
