#!/bin/sh
# conf.sh - edge test: jemalloc-compatible configuration (src/options.c).
# The sources are read in the order malloc_conf symbol, MALLOC_CONF,
# ALLOY_CONF, a later one overriding an earlier one; the program's
# malloc_conf is found when it links -lalloy, when it links liballoy.a, and
# when alloy is preloaded over a program linked with jemalloc (the real one
# if installed, and conf_jelib.c standing for it); an unknown key or a bad
# value is reported with its source and the program goes on, unless
# abort_conf:true, which aborts (SIGABRT) after reporting; jemalloc keys alloy
# does not implement are reported as such and are never fatal; stats_print
# prints the report at exit (JSON with stats_print_opts:J); the new options
# are stored (read back from alloy__options by conf_dump.c).
# Env: BUILD, ALLOY_SO, ROOT, TEST_TMP (from tests/run.sh).
set -u
T=${TEST_TMP:-/tmp/alloy-conf-test}
ROOT=${ROOT:-$(pwd)}
BUILD=${BUILD:-$ROOT/build}
ALLOY_SO=${ALLOY_SO:-$BUILD/liballoy.so}
CC=${CC:-cc}
E="$ROOT/tests/edge"
mkdir -p "$T"
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC)"; exit 77; }
[ -f "$ALLOY_SO" ] || { echo "FAILED: $ALLOY_SO does not exist (run make)"; exit 1; }
[ -f "$BUILD/liballoy.a" ] || { echo "FAILED: $BUILD/liballoy.a does not exist (run make)"; exit 1; }
unset MALLOC_CONF ALLOY_CONF LD_PRELOAD
ulimit -c 0 2>/dev/null # the abort_conf cases die of SIGABRT: no core files
fails=0
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }

# ------------------------------------------------------------------ builds
CFLAGS="-std=gnu11 -O1 -g -Wall -D_GNU_SOURCE -fno-builtin-malloc -fno-builtin-free"
cc_or_fail() { # OUT SRC FLAGS...: compile; a failure fails the test
  out=$1
  shift
  if ! "$CC" $CFLAGS -o "$out" "$@" >"$T/cc.log" 2>&1; then
    echo "FAILED: cannot build $out:"
    cat "$T/cc.log"
    exit 1
  fi
}
link_alloy="-I$ROOT/include -L$BUILD -Wl,-rpath,$BUILD -Wl,--no-as-needed -lalloy -ldl"
cc_or_fail "$T/ctl" "$E/conf_ctl.c" $link_alloy
cc_or_fail "$T/ctl_sym" "$E/conf_ctl.c" '-DCONF="dirty_decay_ms:77,stats_print_opts:Jg"' $link_alloy
cc_or_fail "$T/ctl_symbad" "$E/conf_ctl.c" '-DCONF="nosuchkey:1"' $link_alloy
cc_or_fail "$T/libjelib.so" "$E/conf_jelib.c" -shared -fPIC
cc_or_fail "$T/ctl_je_fake" "$E/conf_ctl.c" '-DCONF="dirty_decay_ms:66"' \
  -L"$T" -Wl,-rpath,"$T" -Wl,--no-as-needed -ljelib -ldl
dump_flags="-I$ROOT/include -I$ROOT/src $BUILD/liballoy.a -pthread"
cc_or_fail "$T/dump" "$E/conf_dump.c" $dump_flags
cc_or_fail "$T/dump_sym" "$E/conf_dump.c" '-DCONF="stats_print_opts:Jg,muzzy_decay_ms:5"' $dump_flags
# The real jemalloc, when its development files are installed.
have_jemalloc=""
if "$CC" $CFLAGS -o "$T/ctl_je" "$E/conf_ctl.c" '-DCONF="dirty_decay_ms:55"' \
  -Wl,--no-as-needed -ljemalloc -ldl >"$T/cc_je.log" 2>&1; then
  have_jemalloc=yes
fi

# ------------------------------------------------------------------ checks
# run VAR=VALUE... -- PROG...: the environment (env(1) syntax), then the
# program; sets rc, and the output in $T/out and $T/err.
run() {
  envs=""
  while [ "$1" != -- ]; do
    envs="$envs $1"
    shift
  done
  shift
  env $envs "$@" >"$T/out" 2>"$T/err"
  rc=$?
}
show() { echo "    stdout: $(head -c 300 "$T/out")"; echo "    stderr: $(head -c 600 "$T/err")"; }
# expect WHAT RC [STDOUT_TEXT [STDERR_TEXT]]: checks the last run (fixed strings)
expect() {
  what=$1
  ok=yes
  [ "$rc" -eq "$2" ] || { bad "$what: exit status $rc, want $2"; ok=""; }
  if [ -n "${3:-}" ] && ! grep -qF -- "$3" "$T/out"; then
    bad "$what: stdout lacks '$3'"
    ok=""
  fi
  if [ -n "${4:-}" ] && ! grep -qF -- "$4" "$T/err"; then
    bad "$what: stderr lacks '$4'"
    ok=""
  fi
  if [ -n "$ok" ]; then echo "ok: $what"; else show; fi
}
quiet_stderr() { # WHAT: the last run wrote nothing on stderr
  [ -s "$T/err" ] && { bad "$1: unexpected stderr: $(head -c 300 "$T/err")"; return; }
  echo "ok: $1: nothing on stderr"
}

# Defaults, and nothing said when nothing is configured.
run -- "$T/ctl"
expect "default dirty_decay_ms" 0 "dirty_decay_ms=1000"
quiet_stderr "no configuration"
run -- "$T/dump"
expect "defaults of the new options" 0 \
  "muzzy_decay_ms=0 narenas=0 tcache=1 background_thread=0 purge=0 abort_conf=0 stats_print=0 stats_print_opts=[]"

# The environment variables, and their order.
run MALLOC_CONF=dirty_decay_ms:-1 -- "$T/ctl"
expect "MALLOC_CONF=dirty_decay_ms:-1" 0 "dirty_decay_ms=-1"
quiet_stderr "MALLOC_CONF=dirty_decay_ms:-1"
run MALLOC_CONF=dirty_decay_ms:-1 ALLOY_CONF=dirty_decay_ms:5 -- "$T/ctl"
expect "ALLOY_CONF overrides MALLOC_CONF" 0 "dirty_decay_ms=5"
run MALLOC_CONF=dirty_decay_ms:-1 LD_PRELOAD="$ALLOY_SO" -- "$T/ctl_je_fake"
expect "MALLOC_CONF under LD_PRELOAD (overrides the symbol)" 0 "dirty_decay_ms=-1"

# The malloc_conf symbol.
run -- "$T/ctl_sym"
expect "malloc_conf symbol, -lalloy" 0 "dirty_decay_ms=77"
run MALLOC_CONF=dirty_decay_ms:88 -- "$T/ctl_sym"
expect "MALLOC_CONF overrides malloc_conf" 0 "dirty_decay_ms=88"
run LD_PRELOAD="$ALLOY_SO" -- "$T/ctl_je_fake"
expect "malloc_conf symbol, LD_PRELOAD over a program linked with a jemalloc stand-in" 0 \
  "dirty_decay_ms=66"
if [ -n "$have_jemalloc" ]; then
  run LD_PRELOAD="$ALLOY_SO" -- "$T/ctl_je"
  expect "malloc_conf symbol, LD_PRELOAD over a program linked with libjemalloc" 0 \
    "dirty_decay_ms=55"
else
  echo "note: libjemalloc not installed: the stand-in alone was checked"
fi
run -- "$T/dump_sym"
expect "malloc_conf symbol, static link with liballoy.a" 0 "muzzy_decay_ms=5"
run MALLOC_CONF=stats_print_opts:gbq -- "$T/dump_sym"
expect "stats_print_opts letters add up over the sources (jemalloc's rule)" 0 \
  "stats_print_opts=[Jgb]"

# The new options are parsed and stored.
run MALLOC_CONF=muzzy_decay_ms:-1,narenas:4,tcache:false,background_thread:true,purge:free -- "$T/dump"
expect "new options stored" 0 "muzzy_decay_ms=-1 narenas=4 tcache=0 background_thread=1 purge=1"
quiet_stderr "new options"
run ALLOY_CONF=purge:dontneed,abort_conf:false,muzzy_decay_ms:250 MALLOC_CONF=purge:free -- "$T/dump"
expect "purge:dontneed, muzzy_decay_ms:250" 0 "muzzy_decay_ms=250 narenas=0 tcache=1 background_thread=0 purge=0"

# Unknown keys and bad values: reported with their source, then ignored.
run MALLOC_CONF=foo:1,dirty_decay_ms:3 -- "$T/ctl"
expect "unknown key in MALLOC_CONF: reported, the rest applies" 0 "dirty_decay_ms=3" \
  "alloy: unknown option 'foo' in MALLOC_CONF (ignored)"
run ALLOY_CONF=bar -- "$T/ctl"
expect "unknown key in ALLOY_CONF" 0 "dirty_decay_ms=1000" \
  "alloy: unknown option 'bar' in ALLOY_CONF (ignored)"
run -- "$T/ctl_symbad"
expect "unknown key in malloc_conf" 0 "dirty_decay_ms=1000" \
  "alloy: unknown option 'nosuchkey' in malloc_conf (ignored)"
run MALLOC_CONF=purge:maybe,narenas:0,dirty_decay_ms:-2 -- "$T/dump"
expect "bad values reported" 0 "dirty_decay_ms=1000 muzzy_decay_ms=0 narenas=0 tcache=1 background_thread=0 purge=0" \
  "alloy: bad value 'maybe' for option 'purge' in MALLOC_CONF (ignored)"
for v in "'0' for option 'narenas'" "'-2' for option 'dirty_decay_ms'"; do
  grep -qF "bad value $v" "$T/err" && echo "ok: bad value $v reported" || bad "no report of bad value $v"
done

# abort_conf:true makes them fatal, wherever it is set.
run MALLOC_CONF=abort_conf:true,foo:1 -- "$T/ctl"
expect "abort_conf:true with an unknown key aborts" 134 "" \
  "alloy: unknown option 'foo' in MALLOC_CONF (ignored)"
grep -q abort_conf "$T/err" && echo "ok: the abort names abort_conf" || bad "the abort does not name abort_conf: $(cat "$T/err")"
[ -s "$T/out" ] && bad "abort_conf: the program ran on: $(cat "$T/out")"
run MALLOC_CONF=foo:1 ALLOY_CONF=abort_conf:true -- "$T/ctl"
expect "abort_conf:true set after the unknown key, in a later source" 134 "" "unknown option 'foo'"
run MALLOC_CONF=abort_conf:true,tcache:perhaps -- "$T/ctl"
expect "abort_conf:true with a bad value aborts" 134 "" "bad value 'perhaps' for option 'tcache'"
run MALLOC_CONF=abort_conf:true,foo:1 ALLOY_CONF=abort_conf:false -- "$T/ctl"
expect "abort_conf:false later wins" 0 "dirty_decay_ms=1000" "unknown option 'foo'"

# jemalloc's keys alloy does not implement: reported, never fatal.
run MALLOC_CONF=abort_conf:true,lg_tcache_max:16,percpu_arena:percpu,dirty_decay_ms:9 -- "$T/ctl"
expect "jemalloc-only keys under abort_conf:true" 0 "dirty_decay_ms=9" \
  "alloy: option 'lg_tcache_max' (jemalloc) in MALLOC_CONF is not supported by alloy (ignored)"
grep -qF "option 'percpu_arena' (jemalloc)" "$T/err" && echo "ok: percpu_arena reported" ||
  bad "percpu_arena not reported: $(cat "$T/err")"

# stats_print: the report at exit.
run MALLOC_CONF=stats_print:true -- "$T/ctl"
expect "stats_print:true prints the report at exit" 0 "dirty_decay_ms=1000" "___ Begin alloy statistics ___"
grep -qF "___ End alloy statistics ___" "$T/err" && echo "ok: the report is complete" || bad "no end of report"
run ALLOY_CONF=stats_print:true,stats_print_opts:J -- "$T/ctl"
expect "stats_print_opts:J prints JSON" 0 "" '"jemalloc": {'
# (Not with coreutils: their atexit handler closes stderr before the report.)
run MALLOC_CONF=stats_print:true LD_PRELOAD="$ALLOY_SO" -- "$T/ctl_je_fake"
expect "stats_print:true under LD_PRELOAD" 0 "dirty_decay_ms=66" "___ Begin alloy statistics ___"
run -- "$T/ctl"
grep -q "alloy statistics" "$T/err" && bad "report printed without stats_print" ||
  echo "ok: no report without stats_print"

[ "$fails" -eq 0 ] && echo "conf: ok"
[ "$fails" -eq 0 ]
