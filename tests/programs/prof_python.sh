#!/bin/sh
# prof_python.sh - the heap profiler on Debian's CPython (built without
# frame pointers: the stacks come from alloy's DWARF unwinder), on a JSON
# workload with PYTHONMALLOC=malloc so every object is a malloc:
#   - the script dumps a profile at its peak (prof.dump through ctypes) and
#     reads stats.allocated at the same moment: jeprof's and google-pprof's
#     totals are within 10% of it, and the two agree (1 sample per 64 KiB:
#     for about 150 MB of small objects the sampling error is about 2%; at
#     the default 512 KiB it would be 5%, too close to 10% for a test);
#   - the stacks are whole: Py_BytesMain (the interpreter's main) is under
#     >= 95% of the bytes, and the top functions have real names (none of
#     jeprof's top five is a bare address);
#   - lg_prof_interval:24 writes interval profiles (<prefix>.<pid>.<seq>.i<n>.heap)
#     while the program runs;
#   - `alloy flame` makes an SVG of it whose frames include PyEval_EvalCode.
# Env: ALLOY_SO, BUILD, TEST_TMP.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: /usr/bin/python3 not installed"; exit 77; }
"$PY" -c 'import ctypes' 2>/dev/null || { echo "SKIP: python3 has no ctypes"; exit 77; }
skip_unless jeprof
skip_unless google-pprof
ALLOY="$BUILD/alloy"
cat >"$T/work.py" <<'PYEOF'
import ctypes, json, sys
libc = ctypes.CDLL(None)
def mallctl_u64(name):
    v = ctypes.c_uint64(0); n = ctypes.c_size_t(8)
    e = ctypes.c_uint64(1)
    libc.mallctl(b"epoch", None, None, ctypes.byref(e), ctypes.c_size_t(8))
    libc.mallctl(name, ctypes.byref(v), ctypes.byref(n), None, ctypes.c_size_t(0))
    return v.value
def dump(path):
    name = ctypes.c_char_p(path.encode())
    return libc.mallctl(b"prof.dump", None, None, ctypes.byref(name), ctypes.c_size_t(ctypes.sizeof(name)))
docs = [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 7), "x" * (i % 50)],
         "score": i * 0.5} for i in range(150000)]
text = json.dumps(docs)
back = json.loads(text)
index = {d["name"]: d for d in back}
allocated = mallctl_u64(b"stats.allocated")
print("dump", dump(sys.argv[1]), "allocated", allocated)
PYEOF
out=$(env LD_PRELOAD="$ALLOY_SO" PYTHONMALLOC=malloc \
        ALLOY_CONF="prof:true,lg_prof_sample:16,lg_prof_interval:24,prof_prefix:$T/iv" "$PY" "$T/work.py" "$T/py.heap" 2>"$T/py.err")
echo "python: $out"
set -- $out
[ "${2:-}" = 0 ] || { bad "prof.dump from python: '$out'"; cat "$T/py.err"; finish; exit; }
allocated=$4
for tool in jeprof google-pprof; do
  "$tool" --text --show_bytes "$PY" "$T/py.heap" >"$T/$tool.txt" 2>"$T/$tool.err"
  t=$(sed -n 's/^Total: \([0-9]*\) B$/\1/p' "$T/$tool.txt")
  main=$(awk '$6 == "Py_BytesMain" { print $4 }' "$T/$tool.txt")
  echo "$tool: total $t B (stats.allocated $allocated), under Py_BytesMain ${main:-0} B; top:"
  sed -n '2,6p' "$T/$tool.txt"
  awk -v t="${t:-0}" -v a="$allocated" 'BEGIN { d = t - a; if (d < 0) d = -d; exit !(d <= 0.10 * a) }' ||
    bad "$tool: total ${t:-none}, more than 10% from stats.allocated $allocated"
  awk -v m="${main:-0}" -v t="${t:-1}" 'BEGIN { exit !(m >= 0.95 * t) }' ||
    bad "$tool: Py_BytesMain holds ${main:-0} of $t B: stacks cut short"
  sed -n '2,6p' "$T/$tool.txt" | awk '$6 ~ /^0x/ { exit 1 }' || bad "$tool: a top function has no name"
done
cmp -s "$T/jeprof.txt" "$T/google-pprof.txt" || bad "jeprof and google-pprof disagree"
n=$(ls "$T"/iv.*.i*.heap 2>/dev/null | wc -l)
echo "interval profiles (lg_prof_interval:24): $n"
[ "$n" -ge 2 ] || bad "lg_prof_interval:24 wrote $n interval profiles (>= 2 expected)"
"$ALLOY" flame "$T/py.heap" -o "$T/py.svg" || bad "alloy flame failed"
frames=$(grep -c '<rect x=' "$T/py.svg" 2>/dev/null)
echo "alloy flame: $frames frames"
grep -q '<title>PyEval_EvalCode ' "$T/py.svg" || bad "the flame graph has no PyEval_EvalCode frame"
[ "${frames:-0}" -ge 20 ] || bad "the flame graph has only ${frames:-0} frames"
finish
