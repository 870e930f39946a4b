#!/bin/sh
# prof_redis.sh - the heap profiler in Debian's redis-server (no frame
# pointers; linked against libjemalloc, whose mallctl alloy answers under
# LD_PRELOAD), under a scripted load through redis-cli: 200,000 keys by
# DEBUG POPULATE, 1,000 SETs of 10 KB values (half deleted again), RPUSH
# of 50,000 list elements.  Then, through Redis's own DEBUG MALLCTL-STR:
#   - prof.dump writes a profile; jeprof's and google-pprof's totals are
#     within 10% of stats.allocated read at the same moment (1 sample per
#     16 KiB: about 2% sampling error on 45 MB);
#   - the stacks are whole: main is under >= 95% of the bytes, and what
#     allocated shows up: debugCommand (POPULATE) holds most of it, the 500
#     SET values left (5 MB) are under processMultibulkBuffer (they are the
#     parsed arguments), the list under pushGenericCommand;
#   - prof.active switched off at run time (DEBUG MALLCTL prof.active 0)
#     stops new samples while keys are added, and switched on again resumes
#     them; the server shuts down cleanly.
# Env: ALLOY_SO, TEST_TMP.
. "$(dirname "$0")/lib.sh"
skip_unless redis-server
skip_unless redis-cli
skip_unless jeprof
skip_unless google-pprof
SERVER=$(command -v redis-server)
pid="" port=""
cli() { timeout 30 redis-cli -p "$port" "$@" 2>&1 | tr -d '\r'; }
stop() {
  [ -n "$pid" ] || return 0
  timeout 10 redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  pid=""
  return "$rc"
}
trap 'stop' EXIT
for _ in 1 2 3 4 5; do # a random free port
  port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000))
  env LD_PRELOAD="$ALLOY_SO" ALLOY_CONF=prof:true,lg_prof_sample:14 \
    "$SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --enable-debug-command yes --dir "$T" --logfile "$T/redis.log" >"$T/redis.out" 2>"$T/redis.err" </dev/null &
  pid=$!
  i=0
  while [ "$i" -lt 100 ] && [ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null | tr -d '\r')" != PONG ]; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  [ "$(cli ping)" = PONG ] && break
  wait "$pid" 2>/dev/null
  pid=""
done
[ -n "$pid" ] || { bad "redis-server did not start"; tail -n 20 "$T/redis.log" "$T/redis.err"; finish; exit; }

[ "$(cli debug populate 200000 key 100)" = OK ] || bad "DEBUG POPULATE failed"
value=$(head -c 10000 /dev/zero | tr '\0' v)
awk -v v="$value" 'BEGIN { for (i = 0; i < 1000; i++) print "SET big:" i " " v }' | cli >/dev/null
awk 'BEGIN { for (i = 0; i < 500; i++) { s = "RPUSH list"; for (j = 0; j < 100; j++) s = s " e" i "_" j; print s } }' |
  cli >/dev/null
awk 'BEGIN { for (i = 0; i < 1000; i += 2) print "DEL big:" i }' | cli >/dev/null
echo "keys: $(cli dbsize), list: $(cli llen list)"

cli debug mallctl epoch 1 >/dev/null
allocated=$(cli debug mallctl stats.allocated)
r=$(cli debug mallctl-str prof.dump "$T/redis.heap")
[ "$r" = OK ] || bad "DEBUG MALLCTL-STR prof.dump: $r"
for tool in jeprof google-pprof; do
  "$tool" --text --show_bytes "$SERVER" "$T/redis.heap" >"$T/$tool.txt" 2>"$T/$tool.err"
  t=$(sed -n 's/^Total: \([0-9]*\) B$/\1/p' "$T/$tool.txt")
  c() { awk -v n="$1" '$6 == n { print $4; f = 1 } END { if (!f) print 0 }' "$T/$tool.txt"; }
  echo "$tool: total $t B (stats.allocated $allocated); main $(c main), debugCommand $(c debugCommand), processMultibulkBuffer $(c processMultibulkBuffer), pushGenericCommand $(c pushGenericCommand)"
  awk -v t="${t:-0}" -v a="$allocated" 'BEGIN { d = t - a; if (d < 0) d = -d; exit !(d <= 0.10 * a) }' ||
    bad "$tool: total ${t:-none}, more than 10% from stats.allocated $allocated"
  awk -v m="$(c main)" -v t="${t:-1}" 'BEGIN { exit !(m >= 0.95 * t) }' || bad "$tool: main holds $(c main) of $t B"
  awk -v d="$(c debugCommand)" -v t="${t:-1}" 'BEGIN { exit !(d >= 0.5 * t) }' ||
    bad "$tool: debugCommand holds $(c debugCommand) of $t B"
  awk -v v="$(c processMultibulkBuffer)" 'BEGIN { exit !(v >= 2500000 && v <= 7500000) }' ||
    bad "$tool: processMultibulkBuffer holds $(c processMultibulkBuffer) B, about 5,120,000 expected"
  [ "$(c pushGenericCommand)" -gt 0 ] || bad "$tool: nothing allocated under pushGenericCommand"
done
cmp -s "$T/jeprof.txt" "$T/google-pprof.txt" || bad "jeprof and google-pprof disagree"

# prof.active at run time
before=$(cli debug mallctl stats.prof.samples)
old=$(cli debug mallctl prof.active 0)
[ "$old" = 1 ] || bad "DEBUG MALLCTL prof.active 0 answered '$old' (the old value, 1, expected)"
cli debug populate 100000 off 100 >/dev/null
off=$(cli debug mallctl stats.prof.samples)
cli debug mallctl prof.active 1 >/dev/null
cli debug populate 100000 on 100 >/dev/null
on=$(cli debug mallctl stats.prof.samples)
echo "live samples: $before, after 100,000 keys with prof.active off $off, and on again $on"
[ "$off" -le "$before" ] || bad "samples taken while prof.active was off ($before -> $off)"
[ "$on" -ge $((off + 50)) ] || bad "sampling did not resume with prof.active on ($off -> $on)"
stop || bad "redis-server exited with status $? on SHUTDOWN"
grep -q '^alloy:' "$T/redis.err" && { bad "alloy reported a problem:"; grep '^alloy:' "$T/redis.err" | head; }
finish
