#!/bin/sh
# redis.sh - Debian's redis-server (linked against libjemalloc: it reads its
# memory figures with mallctl, purges with arena.<narenas>.purge and prints
# malloc_stats_print for MEMORY MALLOC-STATS) preloaded with alloy, which must
# then answer all of these itself:
#   - INFO memory: allocator_allocated <= allocator_active <= allocator_resident,
#     all > 0, and they follow the data set (DEBUG POPULATE of 500,000 keys
#     adds >= 50 MB to allocator_allocated, within 0.9-1.3x of used_memory);
#     Redis's ratios read right: allocator_frag_ratio (active/allocated) at
#     most 1.5 on the empty instance and 1.2 with the data set (jemalloc:
#     1.08 and 1.03), allocator_rss_ratio (resident/active) at most 3 and
#     1.5 (jemalloc: 2.4 and 1.04);
#   - DEBUG MALLCTL-STR version and MEMORY MALLOC-STATS are alloy's;
#   - after FLUSHALL ASYNC (a background thread frees the data set), MEMORY
#     PURGE answers OK and used_memory_rss falls by at least half of what the
#     data set added (ALLOY_CONF=dirty_decay_ms:-1, so only the purge returns
#     memory); a synchronous FLUSHALL, which purges by itself, does the same;
#   - MEMORY STATS and MEMORY DOCTOR answer; the server shuts down cleanly.
# PRELOAD= (empty) runs the same checks on Debian's jemalloc itself
# (MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1), which validates them;
# PRELOAD=path preloads another library.  Env: ALLOY_SO, TEST_TMP (both
# optional when run by hand: build/liballoy.so and a fresh temporary folder).
HERE=$(cd "$(dirname "$0")" && pwd)
: "${ALLOY_SO:=$HERE/../../build/liballoy.so}"
own_tmp=""
if [ -z "${TEST_TMP:-}" ]; then
  TEST_TMP=$(mktemp -d)
  own_tmp=$TEST_TMP
  export TEST_TMP
fi
. "$HERE/lib.sh"
skip_unless redis-server
skip_unless redis-cli
PRELOAD=${PRELOAD-$ALLOY_SO}
if [ -n "$PRELOAD" ]; then
  expect=alloy
  conf=ALLOY_CONF=dirty_decay_ms:-1
  [ -f "$PRELOAD" ] || { bad "$PRELOAD does not exist"; finish; exit; }
else
  expect=jemalloc
  conf=MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1
fi
echo "redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') on $expect${PRELOAD:+ ($PRELOAD)}"

pid=""
port=""
cli() { timeout 20 redis-cli -p "$port" "$@" 2>&1 | tr -d '\r'; }
stop_redis() {
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    timeout 10 redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -9 "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  status=$?
  pid=""
  return "$status"
}
at_exit() {
  rc=$?
  stop_redis
  if [ -n "$own_tmp" ]; then
    if [ "$rc" -eq 0 ]; then rm -rf "$own_tmp"; else echo "(logs in $own_tmp)"; fi
  fi
  exit "$rc"
}
trap at_exit EXIT
trap 'exit 130' INT TERM HUP

# Start on a random free port in 20000-39999 (retry when it is taken).
for _ in 1 2 3 4 5; do
  port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000))
  : >"$T/redis.log"
  env LD_PRELOAD="$PRELOAD" "$conf" \
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --enable-debug-command yes --dir "$T" --logfile "$T/redis.log" \
    >"$T/redis.out" 2>"$T/redis.err" </dev/null &
  pid=$!
  up=""
  i=0
  while [ "$i" -lt 100 ]; do
    if [ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null | tr -d '\r')" = PONG ]; then
      up=yes
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  [ -n "$up" ] && break
  if grep -q 'Address already in use' "$T/redis.log"; then
    wait "$pid" 2>/dev/null
    pid=""
    continue
  fi
  bad "redis-server did not answer PING (port $port); its log and stderr:"
  tail -n 20 "$T/redis.log" "$T/redis.err"
  finish
  exit
done
if [ -z "$up" ]; then
  bad "no free port found in 5 attempts"
  finish
  exit
fi
served=$(cli info server | sed -n 's/^process_id://p')
[ "$served" = "$pid" ] || { bad "port $port is served by pid '$served', not by ours ($pid)"; finish; exit; }
if grep -q 'liballoy' "/proc/$pid/maps"; then
  [ "$expect" = alloy ] || bad "liballoy is mapped in redis-server, which should run on jemalloc"
else
  [ "$expect" = jemalloc ] || bad "liballoy is not mapped in redis-server (LD_PRELOAD ignored?)"
fi

# field NAME: from INFO memory (sampled by serverCron every 100 ms)
field() { printf '%s\n' "$info" | sed -n "s/^$1://p"; }
snapshot() { # LABEL
  sleep 0.5
  info=$(cli info memory)
  alloc=$(field allocator_allocated)
  active=$(field allocator_active)
  resident=$(field allocator_resident)
  used=$(field used_memory)
  rss=$(field used_memory_rss)
  echo "$1: used_memory $used, used_memory_rss $rss, allocator_allocated $alloc, allocator_active $active, allocator_resident $resident"
  case "$alloc$active$resident$used$rss" in
    *[!0-9]* | "") bad "INFO memory lacks a field:"; printf '%s\n' "$info" | head -n 40; return 1 ;;
  esac
  return 0
}
mb() { echo $(($1 / 1000000)); }

# ratio A B MAX LABEL: A/B <= MAX, else a failure naming Redis's field LABEL
ratio() {
  awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { exit !(b > 0 && a / b <= m) }' ||
    bad "$4 = $1/$2 = $(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }') (at most $3 expected)"
}

snapshot "at start" || { finish; exit; }
alloc0=$alloc rss0=$rss
ratio "$active" "$alloc" 1.5 "allocator_frag_ratio at start"
ratio "$resident" "$active" 3 "allocator_rss_ratio at start"
[ "$alloc" -gt 0 ] && [ "$active" -gt 0 ] && [ "$resident" -gt 0 ] ||
  bad "allocator figures not all > 0"
[ "$alloc" -le "$active" ] && [ "$active" -le "$resident" ] ||
  bad "not allocator_allocated <= allocator_active <= allocator_resident"

version=$(cli debug mallctl-str version)
echo "DEBUG MALLCTL-STR version: $version"
case "$expect:$version" in
  alloy:*alloy*) ;;
  jemalloc:5.3.0-0-g*) ;;
  *) bad "mallctl(\"version\") in redis-server is '$version', not $expect's" ;;
esac
for name in stats.allocated stats.active stats.resident; do
  v=$(cli debug mallctl "$name")
  case "$v" in
    '' | *[!0-9]*) bad "DEBUG MALLCTL $name: '$v'" ;;
  esac
done

r=$(cli debug populate 500000 key 100)
[ "$r" = OK ] || bad "DEBUG POPULATE: $r"
snapshot "after DEBUG POPULATE 500000" || { finish; exit; }
alloc1=$alloc rss1=$rss
grown=$((alloc1 - alloc0))
[ "$grown" -ge 50000000 ] || bad "allocator_allocated grew by $(mb "$grown") MB after DEBUG POPULATE (>= 50 expected): not the allocator that holds the data"
if ! awk -v a="$alloc1" -v u="$used" 'BEGIN { exit !(a >= u * 0.9 && a <= u * 1.3) }'; then
  bad "allocator_allocated $alloc1 not within 0.9-1.3x of used_memory $used"
fi
ratio "$active" "$alloc" 1.2 "allocator_frag_ratio with the data set"
ratio "$resident" "$active" 1.5 "allocator_rss_ratio with the data set"
[ "$alloc" -le "$active" ] && [ "$active" -le "$resident" ] ||
  bad "after POPULATE: not allocator_allocated <= allocator_active <= allocator_resident"
u=$(cli memory usage key:1)
case "$u" in '' | *[!0-9]*) bad "MEMORY USAGE key:1: '$u'" ;; esac

cli memory malloc-stats >"$T/malloc-stats.txt"
first=$(grep -m 1 . "$T/malloc-stats.txt")
echo "MEMORY MALLOC-STATS: $(wc -l <"$T/malloc-stats.txt") lines, first: $first"
case "$first" in
  *"Begin $expect statistics"*) ;;
  *) bad "MEMORY MALLOC-STATS is not $expect's report (first line '$first')" ;;
esac
stats=$(cli memory stats)
case "$stats" in
  *allocator.allocated*) ;;
  *) bad "MEMORY STATS: $(printf '%s\n' "$stats" | head -n 3)" ;;
esac
doctor=$(cli memory doctor)
case "$doctor" in
  '' | ERR*) bad "MEMORY DOCTOR: '$doctor'" ;;
  *) echo "MEMORY DOCTOR: $(printf '%s\n' "$doctor" | head -n 1 | cut -c1-100)" ;;
esac

# FLUSHALL ASYNC: a background thread frees the data set and nothing
# purges (a synchronous FLUSHALL calls jemalloc_purge itself, checked below).
r=$(cli flushall async)
[ "$r" = OK ] || bad "FLUSHALL ASYNC: $r"
i=0
while [ "$(cli info memory | sed -n 's/^lazyfree_pending_objects://p')" != 0 ] && [ "$i" -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
snapshot "after FLUSHALL ASYNC" || { finish; exit; }
rss2=$rss resident2=$resident
r=$(cli memory purge)
[ "$r" = OK ] || bad "MEMORY PURGE: '$r'"
snapshot "after MEMORY PURGE" || { finish; exit; }
rss3=$rss resident3=$resident
added=$((rss1 - rss0))
returned=$((rss2 - rss3))
echo "the data set added $(mb "$added") MB of RSS; MEMORY PURGE returned $(mb "$returned") MB"
[ "$added" -gt 0 ] && [ "$returned" -ge $((added / 2)) ] ||
  bad "MEMORY PURGE returned $(mb "$returned") MB of RSS, less than half of the $(mb "$added") MB the data set added"
[ $((resident2 - resident3)) -ge $((grown / 2)) ] ||
  bad "allocator_resident fell by $(mb $((resident2 - resident3))) MB on MEMORY PURGE (>= $(mb $((grown / 2))) expected)"

# Again with a synchronous FLUSHALL, which purges through arena.<narenas>.purge.
r=$(cli debug populate 500000 key 100)
[ "$r" = OK ] || bad "DEBUG POPULATE: $r"
snapshot "after DEBUG POPULATE 500000" || { finish; exit; }
rss4=$rss
r=$(cli flushall sync)
[ "$r" = OK ] || bad "FLUSHALL SYNC: $r"
snapshot "after FLUSHALL SYNC" || { finish; exit; }
returned=$((rss4 - rss))
echo "FLUSHALL SYNC returned $(mb "$returned") MB of RSS"
[ "$returned" -ge $((added / 2)) ] ||
  bad "FLUSHALL SYNC returned $(mb "$returned") MB of RSS, less than half of the $(mb "$added") MB the data set added"

stop_redis
rc=$?
[ "$rc" -eq 0 ] || bad "redis-server exited with status $rc on SHUTDOWN"
if grep -q '^alloy:' "$T/redis.err"; then
  bad "alloy reported a problem:"
  grep '^alloy:' "$T/redis.err" | head -n 10
fi
finish
