#!/usr/bin/env python3
"""Instructions of whole benchmark workloads under alloy's variants
(make bench-workloads-instr): what a change costs, measured by a count that
machine load cannot blur, as wall and CPU times on a shared 2-core machine
do (bench/results/*/latest.md: spreads of 50-150%).

Runs each workload of bench/harness.py at its QUICK size, and bench/real/
pyalloc.py (CPython, PYTHONMALLOC=malloc) at a small size, under valgrind
--tool=cachegrind (no cache simulation: the instruction count only), once
per variant: alloy-base ($ALLOY_BASE_LIB, another build, say the parent
revision's), alloy (BUILD/liballoy.so) and alloy-prof (the same with
ALLOY_CONF=prof:true), and writes a table of millions of instructions and
each variant's difference from the first.  Multi-threaded workloads run
serialized under valgrind; those that wait by spinning (prodcons,
thread_pass, false_share) vary by a few percent from run to run whatever
the allocator.  Standard library only.

Environment: BUILD=dir (default build), ALLOY_BASE_LIB, RUNS=n (default 3:
the median of n runs per cell, for the multi-threaded workloads whose
counts vary with valgrind's thread schedule), VARIANTS=a,b
(default alloy-base,alloy,alloy-prof, without alloy-base when
ALLOY_BASE_LIB is unset), WORKLOADS=a,b, RESULTS=dir (default bench/results).
"""
import datetime
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402  (its WORKLOADS table: one list of sizes)


def variants(build):
    base = os.environ.get("ALLOY_BASE_LIB")
    lib = os.path.join(build, "liballoy.so")
    known = {"alloy-base": (base, None), "alloy": (lib, None), "alloy-prof": (lib, "prof:true")}
    want = os.environ.get("VARIANTS") or ("alloy-base,alloy,alloy-prof" if base else "alloy,alloy-prof")
    out = []
    for v in want.split(","):
        if v not in known or not known[v][0] or not os.path.exists(known[v][0]):
            sys.exit("variant %s: no library (ALLOY_BASE_LIB, BUILD)" % v)
        out.append((v,) + known[v])
    return out


def count_once(argv, lib, conf, extra_env=None):
    env = dict(os.environ, LD_PRELOAD=lib)
    env.pop("ALLOY_CONF", None)
    if conf:
        env["ALLOY_CONF"] = conf
    if extra_env:
        env.update(extra_env)
    p = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"] + argv,
                       env=env, capture_output=True, text=True)
    m = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
    if p.returncode != 0 or not m:
        return None
    return int(m.group(1).replace(",", ""))


def count(argv, lib, conf, extra_env, runs):
    got = [count_once(argv, lib, conf, extra_env) for _ in range(runs)]
    if any(c is None for c in got):
        return None
    return sorted(got)[len(got) // 2]


def main():
    build = os.environ.get("BUILD") or "build"
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    vs = variants(build)
    runs = int(os.environ.get("RUNS") or "3")
    names = [w for w in (os.environ.get("WORKLOADS") or ",".join(list(harness.WORKLOADS) + ["python"])).split(",") if w]
    rows = []
    for w in names:
        if w == "python":
            argv = ["/usr/bin/python3", os.path.join(ROOT, "bench", "real", "pyalloc.py"), "4000"]
            extra = {"PYTHONMALLOC": "malloc"}
        else:
            argv = [os.path.join(build, "bench", harness.workload_bin(w))] + harness.WORKLOADS[w][1]
            extra = None
        counts = [count(argv, lib, conf, extra, runs) for _, lib, conf in vs]
        rows.append((w, counts))
        print("%-14s %s" % (w, "  ".join("%s %s" % (v[0], "%.1fM" % (c / 1e6) if c else "FAIL")
                                            for v, c in zip(vs, counts))), flush=True)
    first = vs[0][0]
    L = ["# Instructions per workload (cachegrind)", "",
         "- date: %s; %s; QUICK sizes; python: bench/real/pyalloc.py 4000 with PYTHONMALLOC=malloc" % (
             datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
             subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()),
         "- variants: " + ", ".join("%s (%s%s)" % (v, lib, ", ALLOY_CONF=" + conf if conf else "") for v, lib, conf in vs),
         "- millions of instructions of the whole process, median of %d runs; in brackets the difference from %s" % (
             runs, first), ""]
    L.append("| workload | " + " | ".join(v[0] for v in vs) + " |")
    L.append("|---|" + "---:|" * len(vs))
    for w, counts in rows:
        cells = []
        for i, c in enumerate(counts):
            if c is None:
                cells.append("FAIL")
            elif i == 0 or counts[0] is None:
                cells.append("%.1f" % (c / 1e6))
            else:
                cells.append("%.1f (%+.2f%%)" % (c / 1e6, 100.0 * (c - counts[0]) / counts[0]))
        L.append("| %s | %s |" % (w, " | ".join(cells)))
    text = "\n".join(L) + "\n"
    print()
    print(text)
    results = os.environ.get("RESULTS") or os.path.join(ROOT, "bench", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "instr_workloads.md"), "w") as f:
        f.write(text)
    print("wrote %s/instr_workloads.md" % results)
    return 1 if any(c is None for _, cs in rows for c in cs) else 0


if __name__ == "__main__":
    sys.exit(main())
