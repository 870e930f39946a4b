#!/usr/bin/env python3
"""Instruction counts per malloc+free for alloy and the peers (make bench-instr).

Runs build/bench/oploop under valgrind --tool=callgrind with
--toggle-collect='measured_*' (only the measured loops are counted, not the
warm-up, start-up or exit) and reads the inclusive counts of the wrappers
bench_malloc and bench_free with callgrind_annotate.  Standard library only.

Environment: BUILD=dir (default build), ITERS=N (default 1000000),
ALLOCATORS=a,b (default alloy,glibc,jemalloc,mimalloc,tcmalloc; also
alloy-prof: alloy with ALLOY_CONF=prof:true, and alloy-base: the build at
$ALLOY_BASE_LIB), RESULTS=dir.
"""
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
LIBS = {"alloy": None, "alloy-prof": None, "alloy-base": os.environ.get("ALLOY_BASE_LIB"), "glibc": None,
        "jemalloc": LIBDIR + "/libjemalloc.so.2", "mimalloc": LIBDIR + "/libmimalloc.so.2",
        "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4"}
CONF = {"alloy-prof": "prof:true"}  # ALLOY_CONF of a variant
MODES = ["16", "64", "512", "4096", "xthread"]


def annotate(path):
    """Return (total, {function: inclusive}) from a callgrind output file."""
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or (total is None and line.startswith("summary:")):
                total = int(line.split()[1])
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    incl = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*?):([^\s:]+)\s+\[", line)
        if m:
            fn = m.group(3)
            incl[fn] = incl.get(fn, 0) + int(m.group(1).replace(",", ""))
    return total, incl


def main():
    build = os.environ.get("BUILD") or "build"
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    iters = int(float(os.environ.get("ITERS") or "1000000"))
    want = [a for a in (os.environ.get("ALLOCATORS") or "alloy,glibc,jemalloc,mimalloc,tcmalloc").split(",") if a]
    results_dir = os.environ.get("RESULTS") or os.path.join(ROOT, "bench", "results")
    tmp = tempfile.mkdtemp(prefix="alloy-instr-")
    try:
        oploop = os.path.join(tmp, "oploop")
        shutil.copy2(os.path.join(build, "bench", "oploop"), oploop)
        libs = {}
        alloy_sha = None
        for a in want:
            if a not in LIBS:
                sys.exit("unknown allocator %r" % a)
            lib = LIBS[a]
            if a in ("alloy", "alloy-prof"):
                src = os.path.join(build, "liballoy.so")
                if not os.path.exists(src):
                    print("WARNING: %s not built: peers only" % src, flush=True)
                    continue
                lib = os.path.join(tmp, "liballoy.so")
                shutil.copy2(src, lib)
                with open(lib, "rb") as f:
                    alloy_sha = hashlib.sha256(f.read()).hexdigest()[:16]
            if lib and not os.path.exists(lib):
                sys.exit("%s: %s missing" % (a, lib))
            libs[a] = lib
        rows = {}
        fails = []
        alloy_note = ("liballoy.so sha256 %s" % alloy_sha) if "alloy" in libs else "alloy not measured"
        for a, lib in libs.items():
            for mode in MODES:
                out = os.path.join(tmp, "cg.%s.%s" % (a, mode))
                env = dict(os.environ)
                env.pop("LD_PRELOAD", None)
                env.pop("ALLOY_CONF", None)
                if a in CONF:
                    env["ALLOY_CONF"] = CONF[a]
                if lib:
                    env["LD_PRELOAD"] = lib
                cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                       "--toggle-collect=measured_*", oploop, mode, str(iters)]
                p = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if p.returncode != 0 or not os.path.exists(out):
                    fails.append((a, mode, p.returncode, p.stderr.strip().splitlines()[-5:]))
                    print("FAIL %s %s: exit %d" % (a, mode, p.returncode), flush=True)
                    continue
                total, incl = annotate(out)
                mal = incl.get("bench_malloc", 0)
                fre = incl.get("bench_free", 0)
                rows[(a, mode)] = (total / iters, mal / iters, fre / iters)
                print("%-9s %-8s total %7.1f  malloc %7.1f  free %7.1f  instructions/op" % (
                    a, mode, total / iters, mal / iters, fre / iters), flush=True)
        allocs = list(libs)
        L = ["# Instructions per malloc+free (callgrind)", "",
             "- date: %s, %s, %d measured operations per cell after a warm-up; %s" % (
                 datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
                 subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(), iters,
                 alloy_note),
             "- SIZE columns: a loop of p = malloc(SIZE); p[0] = 1; free(p).  xthread: one thread mallocs "
             "batches of 100 64-byte blocks, a second thread frees them (every free is a cross-thread free).",
             "- Each cell: total / malloc / free instructions per operation.  total is everything counted in "
             "the measured loop (loop, wrappers, hand-off); malloc and free are the inclusive counts of the "
             "out-of-line wrappers bench_malloc and bench_free (the call through the PLT included, about 5 "
             "instructions each).", ""]
        head = ["mode"] + allocs
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "|".join(["---"] + ["---:"] * len(allocs)) + "|")
        for mode in MODES:
            row = [mode if mode == "xthread" else mode + " B"]
            for a in allocs:
                v = rows.get((a, mode))
                row.append("%.0f / %.0f / %.0f" % v if v else "FAIL")
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        for a, mode, rc, tail in fails:
            L.append("- FAIL %s %s: exit %d: %s" % (a, mode, rc, " | ".join(tail)))
        text = "\n".join(L) + "\n"
        print()
        print(text)
        os.makedirs(results_dir, exist_ok=True)
        with open(os.path.join(results_dir, "instr.md"), "w") as f:
            f.write(text)
        print("wrote %s/instr.md" % results_dir)
        return 1 if fails else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
