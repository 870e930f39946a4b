#!/bin/sh
# python.sh - an allocation-heavy Python script (dicts, lists, strings, a json
# round trip) under glibc and under alloy with PYTHONMALLOC=malloc (so every
# object is a malloc), printing a checksum; outputs must be identical.
# Then a buffer of twice RAM + swap: MemoryError on both (alloy once returned
# a pointer there, and the OOM killer ended the process later), unless the
# kernel is set to overcommit anything (overcommit_memory=1).
# Then address-space limits: the smallest `ulimit -v` (to 8 MiB) at which a
# script with 8 threads runs on glibc is found by bisection, and the script
# must run on alloy at that same limit (alloy once reserved 33 MB of map and
# 4 MiB per thread, and CPython failed or hung where glibc ran).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: /usr/bin/python3 not installed"; exit 77; }
cat >"$T/work.py" <<'PYEOF'
import hashlib, json

h = hashlib.sha256()
for rnd in range(6):
    d = {}
    for i in range(60000):
        k = "k%d_%d" % (i * 7919 % 100003, rnd)
        d[k] = [i, str(i) * (i % 7), {"x": i % 13, "y": [j for j in range(i % 9)]}]
    for i in range(0, 60000, 3):
        d.pop("k%d_%d" % (i * 7919 % 100003, rnd), None)
    s = json.dumps(d, sort_keys=True)
    back = json.loads(s)
    assert back == d
    h.update(s.encode())
    words = s.split(",")
    words.sort()
    h.update(("|".join(words[::97])).encode())
    lst = [w.upper() + w[::-1] for w in words[:100000]]
    h.update(str(len(lst)).encode())
    parts = []
    for i in range(50000):
        parts.append("%x" % (i * i))
        if len(parts) > 1000:
            h.update("".join(parts).encode())
            parts = parts[500:]
    tup = tuple(sorted(set(lst[:20000])))
    h.update(repr(tup[:50]).encode())
    del d, back, words, lst, tup
print(h.hexdigest())
PYEOF
export PYTHONHASHSEED=0
ref python "$PY" "$T/work.py"
on_alloy python env PYTHONMALLOC=malloc "$PY" "$T/work.py"
same python

if [ "$(cat /proc/sys/vm/overcommit_memory 2>/dev/null)" != 1 ]; then
  cat >"$T/toobig.py" <<'PYEOF'
import os
swap = 0
for line in open("/proc/meminfo"):
    if line.startswith("SwapTotal:"):
        swap = int(line.split()[1]) * 1024
n = 2 * (os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") + swap)
try:
    b = bytearray(n)
    print("allocated", len(b))
except MemoryError:
    print("MemoryError")
PYEOF
  ref toobig "$PY" "$T/toobig.py"
  on_alloy toobig "$PY" "$T/toobig.py"
  same toobig
  grep -q MemoryError "$T/toobig.alloy" || bad "a buffer beyond RAM + swap did not raise MemoryError on alloy"
fi
cat >"$T/threads.py" <<'PYEOF'
import threading
out = []
def work(k):
    d = {i: str(i) * (i % 5) for i in range(20000)}
    out.append(sum(len(v) for v in d.values()) + k)
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out))
PYEOF
# runs_at PRELOAD KIB: the threaded script runs under `ulimit -v KIB`, in
# 60 s (it takes 1-3).  Python on glibc can hang near its smallest limit (a
# CI run timed out in this search; 1 of 54 runs at 106144 KiB hung here):
# a hang counts as not running, so the search goes on above it.
runs_at() {
  (ulimit -v "$2" && timeout 60 env LD_PRELOAD="$1" PYTHONMALLOC=malloc "$PY" "$T/threads.py") >/dev/null 2>&1
}
lo=16384 hi=4194304 # KiB: fails at lo (too small for any Python), runs at hi
if runs_at "" "$hi"; then
  while [ $((hi - lo)) -gt 8192 ]; do
    mid=$(((lo + hi) / 2))
    if runs_at "" "$mid"; then hi=$mid; else lo=$mid; fi
  done
  echo "threads: glibc runs at ulimit -v $hi KiB"
  runs_at "$ALLOY_SO" "$hi" || bad "threads: 8 Python threads run on glibc under ulimit -v $hi KiB but not on alloy"
else
  echo "threads: the script does not run on glibc even at $hi KiB: limit check skipped"
fi
finish
