#!/usr/bin/env python3
"""alloy's benchmark harness: runs every workload and real program under alloy
and the peer allocators, interleaved, and writes bench/results/latest.{md,svg,json}.

Normally started by bench/run.sh (make bench / make bench QUICK=1).  Only the
Python standard library is used.

Environment:
  QUICK=1          one round, small sizes
  ROUNDS=N         rounds (default 5; QUICK default 1)
  BUILD=dir        build directory (default build)
  ALLOCATORS=a,b   only these allocators (default alloy,alloy-insecure,glibc,jemalloc,mimalloc,
                   tcmalloc, and snmalloc when SNMALLOC_SO is set)
  SNMALLOC_SO=lib  an snmalloc build (libsnmallocshim.so) to add as the optional peer "snmalloc"
  WORKLOADS=a,b    only these workloads / real programs (names as in the tables)
  REAL=0           skip the real programs
  RESULTS=dir      where latest.* go (default bench/results)
  GDB=0            do not re-run crashed programs under gdb for a backtrace
  STRACE=1         syscall count mode (bench/syscalls.sh): run WORKLOADS once per allocator under
                   strace -f -c and print the memory-mapping system calls per 100k operations
"""
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

# name -> (preload library or None, Debian package providing it or None)
ALLOCATORS = {
    "alloy": (None, None),  # filled in main(): BUILD/liballoy.so
    # alloy with hardening off by default (BUILD/liballoy-insecure.so): part of
    # the default set, so that every report shows what hardening costs
    "alloy-insecure": (None, None),
    # alloy that never purges (BUILD/liballoy-nopurge.so): what purging costs
    "alloy-nopurge": (None, None),
    # alloy with percpu:false (thread heaps only) and percpu:true (per-CPU
    # caches whatever the thread count) by default: what each mode does
    "alloy-threadheaps": (None, None),
    "alloy-percpu": (None, None),
    # alloy with the heap profiler on at its default rate (ALLOY_CONF=prof:true,
    # the same library): what profiling costs
    "alloy-prof": (None, None),
    # another build of alloy, $ALLOY_BASE_LIB (say, the parent revision's):
    # what a change costs, interleaved with it
    "alloy-base": (None, None),
    "glibc": (None, None),
    "jemalloc": (LIBDIR + "/libjemalloc.so.2", "libjemalloc2"),
    "mimalloc": (LIBDIR + "/libmimalloc.so.2", "libmimalloc2.0"),
    "tcmalloc": (LIBDIR + "/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    # optional, never installed by the harness (not a Debian package): the
    # library named by $SNMALLOC_SO, e.g. snmalloc's libsnmallocshim.so
    "snmalloc": (os.environ.get("SNMALLOC_SO") or None, None),
}
ORDER = ["alloy", "alloy-insecure", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
if os.environ.get("SNMALLOC_SO") and os.path.exists(os.environ["SNMALLOC_SO"]):
    ORDER.append("snmalloc")
# alloy is compared ("alloy ÷ best peer") with these only, never with its own variants
PEERS = ("glibc", "jemalloc", "mimalloc", "tcmalloc", "snmalloc")
# alloy's variants built from the same sources: (file in BUILD, what they measure)
ALLOY_VARIANTS = {"alloy": "liballoy.so", "alloy-insecure": "liballoy-insecure.so",
                  "alloy-nopurge": "liballoy-nopurge.so", "alloy-threadheaps": "liballoy-threadheaps.so",
                  "alloy-percpu": "liballoy-percpu.so", "alloy-prof": "liballoy.so"}
# Environment a variant adds to the programs it runs.
ALLOC_ENV = {"alloy-prof": {"ALLOY_CONF": "prof:true"}}

# workload -> (full args, quick args, own metrics shown in the metrics table)
WORKLOADS = {
    "churn_liveset": (["25e6", "100000"], ["5e6", "50000"], ["ops_per_s"]),
    "pairs": (["40e6"], ["8e6"], ["ns16", "ns64", "ns512"]),
    "pareto_live": (["8e6", "2e6"], ["2e6", "5e5"], ["ops_per_s", "live_rss_kb"]),
    "server_gen": (["4", "60", "300000", "4000"], ["4", "15", "150000", "4000"], ["ops_per_s"]),
    "prodcons": (["20e6"], ["4e6"], ["ops_per_s"]),
    "thread_pass": (["4", "300", "20000", "4000"], ["4", "80", "20000", "4000"], ["ops_per_s"]),
    "false_share": (["2", "4e6", "40", "8"], ["2", "1e6", "40", "8"], ["active_s", "passive_s"]),
    "realloc_grow": (["20000", "4096", "8"], ["10000", "4096", "3"], ["ops_per_s", "moved_pct"]),
    "big_blocks": (["800", "4"], ["200", "4"], ["mib_per_s"]),
    "thread_churn": (["40000"], ["8000"], ["threads_per_s", "rss_kb"]),
    "phases": (["1g", "20", "2"], ["200m", "20", "2"], ["build_s", "free_s", "rss_after_kb", "rss_after_pct"]),
    "mixed_mt": (["4", "8e6"], ["4", "2e6"], ["ops_per_s"]),
    "warm_churn": (["1", "30e6", "2000", "21", "1"], ["1", "8e6", "2000", "21", "1"], ["ops_per_s"]),
    # shapes an outside evaluation measured (see bench/README.md)
    "cold_churn": (["20e6", "100000", "1"], ["4e6", "100000", "1"], ["ops_per_s", "live_rss_kb"]),
    "cold_churn_mt": (["10e6", "100000", "2"], ["2.5e6", "100000", "2"], ["ops_per_s", "live_rss_kb"]),
    "prodcons_batch": (["8e6"], ["2e6"], ["ops_per_s"]),
    "larson_like": (["2", "1000", "20000"], ["2", "200", "20000"], ["ops_per_s"]),
    "larson_like_8": (["8", "250", "20000"], ["8", "50", "20000"], ["ops_per_s"]),
    "larson_sized": (["2", "1000", "20000"], ["2", "200", "20000"], ["ops_per_s"]),
    "mstress_like": (["4", "15000"], ["4", "4000"], ["ops_per_s"]),
    "rptest_like": (["4", "4e6"], ["4", "1e6"], ["ops_per_s"]),
    "xmalloc_like": (["4e6"], ["1e6"], ["ops_per_s"]),
    "big_random": (["1e6"], ["200000"], ["ops_per_s"]),
    "big_pass": (["4", "3000"], ["4", "800"], ["ops_per_s", "mib_per_s"]),
    "str_append": (["7e6", "10000", "32768"], ["1.5e6", "5000", "32768"], ["ops_per_s", "moved_pct", "live_rss_kb"]),
    "threads_200": (["200", "40000"], ["200", "10000"], ["ops_per_s"]),
}
# workloads registered under another name than their program's
WORKLOAD_BIN = {"cold_churn_mt": "cold_churn", "larson_like_8": "larson_like", "warm_churn": "mixed_mt"}


def workload_bin(name):
    return WORKLOAD_BIN.get(name, name)


# real program -> (full size, quick size)
REAL = {
    "redis": (300000, 50000),      # requests per redis-benchmark test
    "sqlite3": (1000000, 200000),  # rows inserted
    "python": (80000, 20000),      # records per round of bench/real/pyalloc.py
    "gcc": (160, 40),              # generated functions compiled with gcc -O2 -c
    "redis_frag": (150000, 30000), # string keys of the scripted redis dataset (bench/README.md)
}
REAL_METRICS = {
    "redis": ["rps_geomean", "rps_set", "rps_get", "rps_lpush", "rps_lpop", "used_memory_rss_kb"],
    "sqlite3": [],
    "python": [],
    "gcc": [],
    "redis_frag": ["mem_fragmentation_ratio", "allocator_frag_ratio", "used_memory_kb", "used_memory_rss_kb",
                   "load_s"],
}

# workloads whose "RSS after" (memory kept once the work is done) gets its own column
RSS_AFTER_KEY = {"phases": "rss_after_kb", "redis": "used_memory_rss_kb", "redis_frag": "used_memory_rss_kb"}


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- running


class Run:
    """One process run: wall time, peak RSS (wait4 ru_maxrss), parsed metrics."""

    def __init__(self):
        self.ok = True
        self.wall = None
        self.cpu = None
        self.maxrss_kb = None
        self.metrics = {}
        self.error = None
        self.output = ""

    def as_dict(self):
        return {"ok": self.ok, "wall_s": self.wall, "cpu_s": self.cpu, "maxrss_kb": self.maxrss_kb,
                "metrics": self.metrics, "error": self.error}


def child_env(preload, extra=None):
    """Environment for a program started through the launcher, which sets
    LD_PRELOAD=$BENCH_PRELOAD in the program only."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("LD_PRELOAD", "BENCH_PRELOAD", "MALLOC_", "GLIBC_TUNABLES", "MIMALLOC_", "JE_MALLOC",
                         "TCMALLOC_")):
            del env[k]
    if preload:
        env["BENCH_PRELOAD"] = preload
    if extra:
        env.update(extra)
    return env


def describe_result(res):
    if res.get("signal"):
        sig = int(res["signal"])
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return "killed by signal %d (%s)%s" % (sig, name, ", core dumped" if res.get("core") else "")
    return "exit status %d" % int(res.get("status", -1))


def read_launch_result(path):
    try:
        with open(path) as f:
            return parse_kv(f.read())
    except OSError:
        return None


def start_launched(ctx, argv, env, stdin=None, stdout=None, stderr=None, cwd=None):
    """Start argv under the launcher in a new session; returns (Popen, result path)."""
    fd, res_path = tempfile.mkstemp(prefix="alloy-bench-", suffix=".res")
    os.close(fd)
    os.unlink(res_path)
    p = subprocess.Popen([ctx["launcher"], res_path] + argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                         stdout=stdout, stderr=stderr, env=env, cwd=cwd, start_new_session=True)
    return p, res_path


def finish_launched(r, res_path, timed_out, timeout):
    """Fill r from the launcher's result file."""
    res = read_launch_result(res_path)
    try:
        os.unlink(res_path)
    except OSError:
        pass
    if timed_out:
        r.ok = False
        r.error = "timed out after %ds" % timeout
        return
    if res is None:
        r.ok = False
        r.error = "launcher wrote no result"
        return
    r.wall = res["wall_s"]
    r.cpu = res.get("cpu_s")
    r.maxrss_kb = res["maxrss_kb"]
    if res.get("signal") or res.get("status") != 0:
        r.ok = False
        r.error = describe_result(res)


def run_process(ctx, argv, env, timeout, stdin_path=None, cwd=None):
    """Run argv through the launcher; return (Run, stdout, stderr)."""
    r = Run()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        fin = open(stdin_path, "rb") if stdin_path else None
        try:
            p, res_path = start_launched(ctx, argv, env, stdin=fin, stdout=out, stderr=err, cwd=cwd)
            try:
                p.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        finally:
            if fin:
                fin.close()
        out.seek(0)
        err.seek(0)
        so = out.read().decode("utf-8", "replace")
        se = err.read().decode("utf-8", "replace")
    finish_launched(r, res_path, timed_out, timeout)
    if not r.ok:
        tail = (se.strip().splitlines() or so.strip().splitlines())[-3:]
        if tail:
            r.error += "; " + " | ".join(tail)
    return r, so, se


def parse_kv(line):
    d = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                d[k] = float(v)
            except ValueError:
                d[k] = v
    return d


def gdb_backtrace(ctx, argv, preload, stdin_path=None, env_extra=None, cwd=None):
    """Re-run a crashed command once under gdb and return its backtraces (or None)."""
    gdb = shutil.which("gdb")
    if not gdb:
        return None
    cmd = [gdb, "-q", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"]
    if preload:
        cmd += ["-ex", "set environment LD_PRELOAD=%s" % preload]
    for k, v in (env_extra or {}).items():
        cmd += ["-ex", "set environment %s=%s" % (k, v)]
    cmd += ["-ex", "run" + (" < %s" % stdin_path if stdin_path else ""), "-ex", "info signal", "-ex",
            "thread apply all bt 25", "--args"] + argv
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=ctx["timeout"] * 2, cwd=cwd,
                           env=child_env(None))
    except subprocess.TimeoutExpired:
        return "(gdb re-run timed out)"
    out = p.stdout + p.stderr
    keep = [l for l in out.splitlines() if l.startswith(("#", "Thread ", "Program received", "Program terminated"))
            or "signal SIG" in l]
    if not any(l.startswith("#") for l in keep):
        return "(the crash did not recur under gdb)\n" + "\n".join(out.splitlines()[-5:])
    return "\n".join(keep[:80])


def maybe_backtrace(ctx, r, argv, alloc, stdin_path=None, env_extra=None, cwd=None):
    if not r.ok and r.error and "killed by signal" in r.error and not ctx.get("no_gdb"):
        log("  re-running under gdb for a backtrace ...")
        r.backtrace = gdb_backtrace(ctx, argv, ctx["preload"].get(alloc), stdin_path, env_extra, cwd)


def run_workload(ctx, name, alloc):
    full, quick, _ = WORKLOADS[name]
    args = quick if ctx["quick"] else full
    argv = [os.path.join(ctx["bindir"], workload_bin(name))] + args
    r, so, _ = run_process(ctx, argv, child_env(ctx["preload"][alloc], ALLOC_ENV.get(alloc)), ctx["timeout"])
    r.argv = argv
    maybe_backtrace(ctx, r, argv, alloc)
    if r.ok:
        lines = [l for l in so.splitlines() if "time_s=" in l]
        if not lines or "check=ok" not in lines[-1]:
            r.ok = False
            r.error = "no result line / check failed: %r" % so.strip()[-300:]
        else:
            r.metrics = parse_kv(lines[-1])
    return r


# ---------------------------------------------------------------- real programs


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def real_preload(ctx, prog, alloc):
    pre = ctx["preload"][alloc]
    if prog in ("redis", "redis_frag"):
        # Debian's redis-server is linked against libjemalloc: the jemalloc column
        # needs no preload, and glibc's malloc is selected by preloading libc itself
        # (a preloaded object comes first in symbol lookup).
        if alloc == "jemalloc":
            return None
        if alloc == "glibc":
            return LIBC
    return pre


class RedisServer:
    """redis-server under an allocator (through the launcher) on a random
    loopback port, for the redis real programs; clients run without preload."""

    def __init__(self, ctx, prog, alloc):
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="alloy-redis-")
        env = child_env(real_preload(ctx, prog, alloc), ALLOC_ENV.get(alloc))
        self.argv = [ctx["tools"]["redis-server"], "--bind", "127.0.0.1", "--port", str(self.port),
                     "--protected-mode", "yes", "--save", "", "--appendonly", "no", "--dir", self.workdir,
                     "--loglevel", "warning", "--daemonize", "no"]
        self.log_path = os.path.join(self.workdir, "server.log")
        self.logf = open(self.log_path, "wb")
        self.srv, self.res_path = start_launched(ctx, self.argv, env, stdout=self.logf, stderr=subprocess.STDOUT)
        self.cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        self.clean_env = child_env(None)
        self.ended = False

    def wait_ready(self):
        deadline = time.time() + 20
        while True:
            if self.srv.poll() is not None:
                self.ended = True
                res = read_launch_result(self.res_path) or {}
                raise RuntimeError("redis-server exited at start: %s" % describe_result(res))
            pr = subprocess.run(self.cli + ["ping"], capture_output=True, text=True, env=self.clean_env)
            if pr.stdout.strip() == "PONG":
                return
            if time.time() > deadline:
                raise RuntimeError("redis-server did not answer PING within 20 s")
            time.sleep(0.05)

    def info_memory(self):
        info = subprocess.run(self.cli + ["INFO", "memory"], capture_output=True, text=True, env=self.clean_env)
        d = {}
        for line in info.stdout.splitlines():
            if ":" in line:
                k, v = line.strip().split(":", 1)
                d[k] = v
        if "used_memory_rss" not in d:
            raise RuntimeError("no used_memory_rss in INFO memory (server gone?)")
        return d

    def shutdown(self, r):
        """SHUTDOWN NOSAVE, wait, and fill r's peak RSS / CPU from the launcher."""
        subprocess.run(self.cli + ["shutdown", "nosave"], capture_output=True, env=self.clean_env)
        try:
            self.srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise RuntimeError("redis-server did not stop within 20 s of SHUTDOWN")
        self.ended = True
        finish_launched(r, self.res_path, False, 0)
        if not r.ok:
            raise RuntimeError("redis-server ended with " + r.error)

    def fail(self, r, e):
        r.ok = False
        r.error = str(e)
        try:
            with open(self.log_path, "rb") as f:
                tail = f.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            if tail:
                r.error += "; server log: " + " | ".join(tail)
        except OSError:
            pass

    def cleanup(self):
        if not self.ended:
            try:
                os.killpg(self.srv.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.srv.wait()
        try:
            os.unlink(self.res_path)
        except OSError:
            pass
        self.logf.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_redis(ctx, alloc, n):
    """redis-benchmark against redis-server under the allocator."""
    r = Run()
    srv = RedisServer(ctx, "redis", alloc)
    try:
        srv.wait_ready()
        t0 = time.perf_counter()
        bench = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port), "-q", "-n", str(n),
                                "-t", "set,get,lpush,lpop", "-P", "16"],
                               capture_output=True, text=True, env=srv.clean_env, timeout=ctx["timeout"])
        wall = time.perf_counter() - t0
        if bench.returncode != 0:
            raise RuntimeError("redis-benchmark failed: %s" % bench.stderr.strip()[-300:])
        rps = {}
        # lines like "SET: 1234567.00 requests per second, p50=0.3 msec"; -q output uses \r updates
        for m in re.finditer(r"([A-Z]+)[^:\r\n]*:\s*([0-9.]+) requests per second", bench.stdout):
            rps[m.group(1).lower()] = float(m.group(2))
        for t in ("set", "get", "lpush", "lpop"):
            if t not in rps:
                raise RuntimeError("no %s result in redis-benchmark output: %r" % (t, bench.stdout[-300:]))
            r.metrics["rps_" + t] = rps[t]
        r.metrics["rps_geomean"] = math.exp(sum(math.log(v) for v in rps.values()) / len(rps))
        info = srv.info_memory()
        r.metrics["used_memory_rss_kb"] = int(info["used_memory_rss"]) / 1024.0
        srv.shutdown(r)
        r.wall = wall
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        srv.fail(r, e)
    finally:
        srv.cleanup()
    r.argv = srv.argv
    return r


# ---------------------------------------------------------------- redis_frag

def resp(*args):
    """One command in RESP (bytes)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespConn:
    """Minimal pipelined RESP client over a socket: send many commands, then
    read exactly that many replies (so neither side's buffers fill up)."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise RuntimeError("redis closed the connection")
        self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b":"):
            return rest
        if t == b"-":
            raise RuntimeError("redis error reply: %s" % rest.decode("utf-8", "replace"))
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return v
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("unexpected RESP reply %r" % line[:40])

    def pipeline(self, cmds):
        """Send a list of encoded commands; return their replies."""
        self.sock.sendall(b"".join(cmds))
        return [self.reply() for _ in cmds]


def frag_size(rng, scale=1):
    """Value sizes of the redis_frag dataset: 10 B-4 KiB, skewed small
    (70% 10-100 B, 25% 101-1000 B, 5% 1001-4096 B), times scale."""
    u = rng.random()
    if u < 0.70:
        n = rng.randint(10, 100)
    elif u < 0.95:
        n = rng.randint(101, 1000)
    else:
        n = rng.randint(1001, 4096)
    return n * scale


def redis_frag_script(n):
    """The redis_frag dataset as a generator of command batches (lists of
    encoded commands), deterministic for a given n, plus the expected final
    values of sampled string keys and the expected key count.  n is the
    number of string keys; the other types scale with it."""
    import random
    rng = random.Random(20261129)
    pool = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(1 << 16))
    pool = pool * 2

    def val(size):  # size <= 64 KiB
        off = rng.randrange(0, 1 << 16)
        return pool[off:off + size]

    nh, nl, nz, ns = n // 30, n // 75, n // 75, n // 75
    strings = ["s:%d" % i for i in range(n)]
    hashes = ["h:%d" % i for i in range(nh)]
    lists = ["l:%d" % i for i in range(nl)]
    zsets = ["z:%d" % i for i in range(nz)]
    sets = ["t:%d" % i for i in range(ns)]
    sample = set(strings[::max(1, n // 400)])
    expect = {}
    hfields = {}
    llen = {}
    batches = []
    B = 1000

    def flush(cmds):
        for i in range(0, len(cmds), B):
            batches.append(cmds[i:i + B])

    # 1. load: strings, hashes (small ones stay listpacks, every tenth is a
    # big hashtable), lists, sorted sets, sets of strings and sets of integers
    cmds = []
    for k in strings:
        v = val(frag_size(rng))
        if k in sample:
            expect[k] = v
        cmds.append(resp(b"SET", k, v))
    for i, k in enumerate(hashes):
        nf = 200 if i % 10 == 0 else 20
        hfields[k] = nf
        args = [b"HSET", k]
        for f in range(nf):
            args += [b"f%d" % f, val(rng.randint(5, 200))]
        cmds.append(resp(*args))
    for k in lists:
        llen[k] = 60
        for _ in range(2):
            cmds.append(resp(b"RPUSH", k, *[val(rng.randint(10, 300)) for _ in range(30)]))
    for i, k in enumerate(zsets):
        nm = 300 if i % 10 == 0 else 50
        args = [b"ZADD", k]
        for m in range(nm):
            args += [b"%.6f" % rng.random(), b"m%d:" % m + val(rng.randint(10, 40))]
        cmds.append(resp(*args))
    for i, k in enumerate(sets):
        if i % 2:
            cmds.append(resp(b"SADD", k, *[b"%d" % rng.randrange(1 << 40) for _ in range(40)]))
        else:
            cmds.append(resp(b"SADD", k, *[val(rng.randint(8, 40)) for _ in range(40)]))
    rng.shuffle(cmds)  # interleave the types in memory
    flush(cmds)

    # 2. delete a random half of all keys
    keys = strings + hashes + lists + zsets + sets
    dead = set(rng.sample(keys, len(keys) // 2))
    cmds = [resp(b"DEL", *[k for k in keys[i:i + 20] if k in dead])
            for i in range(0, len(keys), 20) if any(k in dead for k in keys[i:i + 20])]
    rng.shuffle(cmds)
    flush(cmds)
    for k in dead:
        expect.pop(k, None)
    live_strings = [k for k in strings if k not in dead]

    # 3. refill: as many new strings as were deleted, values three times larger
    nd = sum(1 for k in strings if k in dead)
    cmds = []
    for i in range(nd):
        cmds.append(resp(b"SET", "r:%d" % i, val(frag_size(rng, 3))))
    flush(cmds)

    # 4. grow and shrink the survivors: APPEND to strings, LPOP from lists,
    # HDEL half the fields of hashes
    ops = []
    for _ in range(len(live_strings) // 2):
        k = rng.choice(live_strings)
        v = val(rng.randint(10, 200))
        ops.append((k, v, resp(b"APPEND", k, v)))
    for k in lists:
        if k not in dead:
            ops.append((None, None, resp(b"LPOP", k, b"25")))
    for k in hashes:
        if k not in dead:
            ops.append((None, None, resp(b"HDEL", k, *[b"f%d" % f for f in range(0, hfields[k], 2)])))
    rng.shuffle(ops)
    for k, v, _ in ops:
        if k in expect:
            expect[k] = expect[k] + v
    flush([c for _, _, c in ops])
    nkeys = len(keys) - len(dead) + nd
    return batches, expect, nkeys


def run_redis_frag(ctx, alloc, n):
    """Loads the scripted dataset into redis-server under the allocator and
    reports INFO memory's fragmentation figures (see bench/README.md)."""
    r = Run()
    if ctx.get("frag_script", (None,))[0] != n:
        ctx["frag_script"] = (n, redis_frag_script(n))
    batches, expect, nkeys = ctx["frag_script"][1]
    srv = RedisServer(ctx, "redis_frag", alloc)
    conn = None
    try:
        srv.wait_ready()
        conn = RespConn(srv.port, ctx["timeout"])
        t0 = time.perf_counter()
        for b in batches:
            conn.pipeline(b)
        wall = time.perf_counter() - t0
        # check the data: the key count and the sampled strings
        got = int(conn.pipeline([resp(b"DBSIZE")])[0])
        if got != nkeys:
            raise RuntimeError("DBSIZE %d, expected %d" % (got, nkeys))
        ks = sorted(expect)
        vals = conn.pipeline([resp(b"GET", k) for k in ks])
        bad = [k for k, v in zip(ks, vals) if v != expect[k]]
        if bad:
            raise RuntimeError("%d sampled strings differ (e.g. %s)" % (len(bad), bad[0]))
        conn.close()
        conn = None
        # INFO's RSS figure is refreshed by the server's cron (10 Hz): let it
        # run, the same 1 s under every allocator
        time.sleep(1.0)
        info = srv.info_memory()
        r.metrics["used_memory_kb"] = int(info["used_memory"]) / 1024.0
        r.metrics["used_memory_rss_kb"] = int(info["used_memory_rss"]) / 1024.0
        r.metrics["mem_fragmentation_ratio"] = float(info["mem_fragmentation_ratio"])
        if "allocator_frag_ratio" in info:
            r.metrics["allocator_frag_ratio"] = float(info["allocator_frag_ratio"])
        r.metrics["load_s"] = wall
        srv.shutdown(r)
        r.wall = wall
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        srv.fail(r, e)
    finally:
        if conn:
            conn.close()
        srv.cleanup()
    r.argv = srv.argv
    return r


def gen_sql(path, rows):
    with open(path, "w") as f:
        f.write("PRAGMA cache_size=-100000;\n")
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT, f REAL);\nBEGIN;\n")
        for b in range(1, rows + 1, 10):
            vals = ",".join("(%d,'row-%d-%x',%d.%d)" % ((i * 7919) % 100003, i, (i * 2654435761) & 0xFFFFFFFF,
                                                         i % 1000, i % 7)
                            for i in range(b, min(b + 10, rows + 1)))
            f.write("INSERT INTO t(k,s,f) VALUES" + vals + ";\n")
        f.write("COMMIT;\n")
        f.write("""CREATE INDEX t_k ON t(k);
CREATE INDEX t_s ON t(s);
SELECT count(*), sum(k), round(sum(f), 1) FROM t;
SELECT k % 10, count(*), round(avg(f), 3) FROM t GROUP BY k % 10 ORDER BY 1;
SELECT s FROM t ORDER BY s DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON b.id = a.k WHERE a.id % 10 = 0;
SELECT count(DISTINCT substr(s, 1, 7)) FROM t;
UPDATE t SET s = s || '-u' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(s)) FROM t;
SELECT group_concat(id) FROM (SELECT id FROM t WHERE k < 50 ORDER BY id LIMIT 20);
""")


def gen_c(path, nfuncs):
    out = ["/* generated by alloy's bench/harness.py: a compile-time workload */",
           "#include <stddef.h>", "struct node { int key; double val; struct node *next; };", ""]
    for i in range(nfuncs):
        nc = i % 8 + 1
        out.append("static int table_%d[64] = { %s };" % (i, ", ".join(str((i * 31 + k * 7) % 251) for k in range(64))))
        out.append("struct rec_%d { int a; long b; double c[%d]; struct node *n; };" % (i, nc))
        out.append("int func_%d(int x, struct rec_%d *r, struct node *list)\n{\n    int acc = %d;" % (i, i, i))
        out.append("    for (int k = 0; k < 64; k++) {\n        acc += table_%d[k] * (x ^ k);" % i)
        out.append("        if ((acc & %d) == 0) acc -= k * %d;\n    }\n    switch (x & 15) {" % (i % 31 + 1, i % 17))
        for c in range(16):
            out.append("    case %d: acc = acc * %d + (int)r->c[%d]; r->b += acc >> %d; break;"
                       % (c, c + i % 5 + 1, c % nc, c % 7))
        out.append("    }\n    for (struct node *n = list; n; n = n->next) {")
        out.append("        if (n->key == acc %% %d) acc += (int)(n->val * %d.5);" % (i + 97, i % 9 + 1))
        out.append("        else acc ^= n->key << %d;\n    }\n    r->a = acc;" % (i % 5))
        out.append("    return acc + (x > %d ? func_%d(x - 1, (void *)r, list) : 0);\n}\n" % (i, max(i - 1, 0)))
    out.append("int run_all(int x, void *r, struct node *l)\n{\n    int s = 0;")
    for i in range(nfuncs):
        out.append("    s += func_%d(x + %d, r, l);" % (i, i))
    out.append("    return s;\n}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def unsnap(ctx, path):
    """Map a path in the private snapshot back to the file it was copied from."""
    if not path:
        return path
    snap = ctx["bindir"]
    if path in ctx.get("snap_src", {}):
        return ctx["snap_src"][path]
    if path.startswith(ctx["realdir"] + os.sep):
        return os.path.join(ctx["kept_dir"], os.path.basename(path))
    if path.startswith(snap + os.sep):
        return os.path.join(ctx["src_bindir"], os.path.basename(path))
    return path


def keep_inputs(ctx, results):
    """Copy the generated inputs of failed real-program runs out of the snapshot."""
    for runs in results.values():
        for r in runs:
            if r.ok:
                continue
            for p in ([getattr(r, "stdin", None)] + list(getattr(r, "inputs", []))):
                if p and os.path.exists(p):
                    os.makedirs(ctx["kept_dir"], exist_ok=True)
                    shutil.copy2(p, os.path.join(ctx["kept_dir"], os.path.basename(p)))


def check_output(ctx, prog, alloc, so, r):
    """Real programs must print the same thing under every allocator."""
    key = prog
    ref = ctx["ref_out"].get(key)
    if ref is None:
        ctx["ref_out"][key] = (alloc, so)
    elif so != ref[1]:
        r.ok = False
        r.error = "output differs from the %s run (%d vs %d bytes)" % (ref[0], len(so), len(ref[1]))


def run_real(ctx, prog, alloc):
    n = REAL[prog][1 if ctx["quick"] else 0]
    env = child_env(real_preload(ctx, prog, alloc), ALLOC_ENV.get(alloc))
    rd = ctx["realdir"]
    if prog == "redis":
        return run_redis(ctx, alloc, n)
    if prog == "redis_frag":
        return run_redis_frag(ctx, alloc, n)
    if prog == "sqlite3":
        sql = os.path.join(rd, "sqlite_%d.sql" % n)
        if not os.path.exists(sql):
            gen_sql(sql + ".tmp", n)
            os.rename(sql + ".tmp", sql)
        argv = [ctx["tools"]["sqlite3"], ":memory:"]
        r, so, _ = run_process(ctx, argv, env, ctx["timeout"], stdin_path=sql)
        r.stdin = sql
        maybe_backtrace(ctx, r, argv, alloc, stdin_path=sql)
    elif prog == "python":
        # not -I or -E: those make Python ignore PYTHONMALLOC
        for k in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONDEVMODE"):
            env.pop(k, None)
        env["PYTHONMALLOC"] = "malloc"
        argv = [ctx["tools"]["python"], "-s", "-S", os.path.join(ROOT, "bench", "real", "pyalloc.py"), str(n)]
        r, so, _ = run_process(ctx, argv, env, ctx["timeout"])
        r.env_note = "PYTHONMALLOC=malloc "
        maybe_backtrace(ctx, r, argv, alloc, env_extra={"PYTHONMALLOC": "malloc"})
    elif prog == "gcc":
        src = os.path.join(rd, "gen_%d.c" % n)
        if not os.path.exists(src):
            gen_c(src + ".tmp", n)
            os.rename(src + ".tmp", src)
        argv = [ctx["tools"]["gcc"], "-O2", "-c", src, "-o", "/dev/null"]
        r, so, _ = run_process(ctx, argv, env, ctx["timeout"], cwd=rd)
        r.inputs = [src]
    else:
        raise ValueError(prog)
    r.argv = argv
    if r.ok:
        check_output(ctx, prog, alloc, so, r)
    return r


# ---------------------------------------------------------------- statistics


def med_min_max(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return (statistics.median(vals), min(vals), max(vals))


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def fmt_num(v, digits=3):
    if v is None:
        return "-"
    if abs(v) >= 1e9:
        return "%.2fG" % (v / 1e9)
    if abs(v) >= 1e6:
        return "%.2fM" % (v / 1e6)
    if abs(v) >= 1e4:
        return "%.1fk" % (v / 1e3)
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 100:
        return "%.1f" % v
    return ("%%.%dg" % digits) % v if abs(v) < 1 else "%.2f" % v


def fmt_cell(s, scale=1.0, digits=3):
    if s is None:
        return "-"
    m, lo, hi = (x * scale for x in s)
    if lo == hi:
        return fmt_num(m, digits)
    return "%s [%s–%s]" % (fmt_num(m, digits), fmt_num(lo, digits), fmt_num(hi, digits))


def spread_pct(s):
    if s is None or not s[0]:
        return None
    return 100.0 * (s[2] - s[1]) / s[0]


def verdict(a, b, rounds, lower="faster", higher="slower"):
    """Compare alloy's summary a with the best peer's b (lower is better)."""
    if a is None or b is None:
        return "-"
    ratio = a[0] / b[0] if b[0] else float("inf")
    if rounds < 2:
        return "%.2f×, no spread (1 round)" % ratio
    if a[1] <= b[2] and b[1] <= a[2]:
        return "%.2f× within noise" % ratio
    return "%.2f× %s" % (ratio, lower if a[0] < b[0] else higher)


# ---------------------------------------------------------------- report


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info(ctx):
    info = {}
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu"] = model
    info["cores"] = os.cpu_count()
    info["kernel"] = platform.release()
    try:
        info["glibc"] = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        info["glibc"] = "?"
    try:
        with open("/proc/meminfo") as f:
            info["memory"] = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    except (OSError, ValueError, IndexError):
        info["memory"] = "?"
    pk = {}
    for pkg in ["libjemalloc2", "libmimalloc2.0", "libtcmalloc-minimal4", "libc6", "redis-server", "sqlite3",
                "python3.11", "gcc-12", "valgrind"]:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        pk[pkg] = q.stdout.strip() if q.returncode == 0 and q.stdout.strip() else "not installed"
    info["packages"] = pk
    # read-only git queries; GIT_OPTIONAL_LOCKS=0 keeps git status from rewriting the index
    genv = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         env=genv)
    if rev.returncode == 0:
        st = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "src",
                             "include", "Makefile"], capture_output=True, text=True, env=genv)
        info["alloy_revision"] = rev.stdout.strip() + (" + uncommitted changes" if st.stdout.strip() else "")
    else:
        info["alloy_revision"] = "(no commit yet)"
    info["date"] = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    info["loadavg_start"] = loadavg()
    return info


def summarize(ctx, results):
    """results[(bench, alloc)] -> list of Run; returns per-cell summaries."""
    S = {}
    for (b, a), runs in results.items():
        good = [r for r in runs if r.ok]
        cell = {
            "time": med_min_max([r.wall for r in good]),
            "cpu": med_min_max([r.cpu for r in good]),
            "rss": med_min_max([r.maxrss_kb for r in good]),
            "n_ok": len(good),
            "n_fail": len(runs) - len(good),
            "metrics": {},
        }
        keys = set()
        for r in good:
            keys.update(k for k, v in r.metrics.items() if isinstance(v, float))
        for k in keys:
            cell["metrics"][k] = med_min_max([r.metrics.get(k) for r in good])
        S[(b, a)] = cell
    return S


def hardening_table(L, S, benches, rounds):
    """What hardening costs: alloy (secure by default) ÷ alloy-insecure, per workload."""
    L.append("## Hardening cost (alloy ÷ alloy-insecure, median; > 1.00 = hardening is slower)")
    L.append("")
    L.append("alloy-insecure is the same source built without the free path's checks (`-DALLOY_UNCHECKED`: "
             "page map, interior pointer, double free).  Each cell is alloy's "
             "median divided by alloy-insecure's, with \"within noise\" when their min–max ranges overlap "
             "(no verdict from one round).")
    L.append("")
    L.append("| workload | wall | CPU | peak RSS |")
    L.append("|---|---:|---:|---:|")
    gm = {"time": [], "cpu": [], "rss": []}
    for b in benches:
        row = [b]
        for key in ("time", "cpu", "rss"):
            x = S.get((b, "alloy"), {}).get(key)
            y = S.get((b, "alloy-insecure"), {}).get(key)
            if not x or not y or not y[0]:
                row.append("-")
                continue
            ratio = x[0] / y[0]
            gm[key].append(ratio)
            if rounds < 2:
                row.append("%.2f" % ratio)
            elif x[1] <= y[2] and y[1] <= x[2]:
                row.append("%.2f (within noise)" % ratio)
            else:
                row.append("**%.2f**" % ratio)
        L.append("| " + " | ".join(row) + " |")
    L.append("| **geomean** | " + " | ".join(("%.2f" % geomean(gm[k])) if geomean(gm[k]) else "-"
                                            for k in ("time", "cpu", "rss")) + " |")
    L.append("")
    L.append("Bold: the min–max ranges do not overlap.")
    L.append("")


def build_report(ctx, results, info):
    S = summarize(ctx, results)
    allocs = ctx["allocators"]
    benches = ctx["benches"]
    # alloy is compared with the peers only, never with its own variants;
    # "best" (the ÷ best ratios, the geomean row, the SVG) is over alloy and
    # the peers, so a variant's ratio can be below 1.00
    peers = [a for a in allocs if a in PEERS]
    ranked = [a for a in allocs if a == "alloy" or a in PEERS] or list(allocs)
    has_alloy = "alloy" in allocs
    rounds = ctx["rounds"]
    L = []
    L.append("# alloy benchmark results")
    L.append("")
    L.append("- date: %s" % info["date"])
    L.append("- mode: %s, %d round%s, allocators interleaved in the order %s, rotated by one at each workload and round" % (
        "QUICK (small sizes)" if ctx["quick"] else "full", rounds, "" if rounds == 1 else "s", ", ".join(allocs)))
    L.append("- machine: %s, %s cores, %s RAM, kernel %s, %s" % (info["cpu"], info["cores"], info["memory"],
                                                               info["kernel"], info["glibc"]))
    L.append("- packages: " + ", ".join("%s %s" % kv for kv in info["packages"].items()))
    L.append("- load average (1/5/15 min) at start: %s, at end: %s; duration %.0f s" % (
        info["loadavg_start"], info.get("loadavg_end", "?"), info.get("duration_s", 0)))
    L.append("- alloy revision: %s%s" % (info["alloy_revision"], (", liballoy.so sha256 %s" % ctx["alloy_sha"])
                                          if ctx.get("alloy_sha") else " (alloy not benchmarked)"))
    if ctx.get("variant_sha", {}).get("alloy-insecure"):
        L.append("- alloy-insecure: %s (built without the free path's checks), sha256 %s" % (
            ctx["snap_src"].get(ctx["preload"]["alloy-insecure"], "?"), ctx["variant_sha"]["alloy-insecure"]))
    if ctx.get("snmalloc_lib"):
        L.append("- snmalloc: %s (from SNMALLOC_SO), sha256 %s" % (ctx["snmalloc_lib"], ctx["snmalloc_sha"]))
    L.append("")
    L.append("Cells are median [min–max] over the rounds.  Time is the wall time of the whole process "
             "(for redis: of the redis-benchmark run; for redis_frag: of the scripted load); peak RSS is "
             "the kernel's ru_maxrss from wait4 (for redis and redis_frag: of redis-server).  \"alloy ÷ best "
             "peer\" compares alloy's median with the best peer's (%s; never with alloy's own variants); it "
             "says \"within noise\" when the two min–max ranges overlap, and claims nothing from a single "
             "round.  The geomean row is the geometric mean over the workloads of each allocator's median "
             "divided by the best median of that workload among alloy and the peers (1.00 = best "
             "everywhere; a variant such as alloy-insecure can be below 1.00)." % (", ".join(peers) or "none"))
    L.append("")

    def table(title, key, unit_scale, unit, better_low=("faster", "slower")):
        L.append("## %s" % title)
        L.append("")
        head = ["workload"] + allocs + (["alloy ÷ best peer", "spread (max-min)/median"] if has_alloy else
                                        ["spread (max-min)/median"])
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        ratios = {a: [] for a in allocs}
        alloy_vs_peer = []
        for b in benches:
            row = [b]
            cells = {a: S.get((b, a), {}).get(key) for a in allocs}
            best = min((cells[a][0] for a in ranked if cells.get(a)), default=None)
            for a in allocs:
                c = S.get((b, a))
                if c is None:
                    row.append("-")
                elif c["n_ok"] == 0:
                    row.append("FAIL")
                else:
                    txt = fmt_cell(cells[a], unit_scale)
                    if c["n_fail"]:
                        txt += " (%d FAIL)" % c["n_fail"]
                    row.append(txt)
                    if best:
                        ratios[a].append(cells[a][0] / best)
            if has_alloy:
                pc = [(cells[a], a) for a in peers if cells.get(a)]
                if pc and cells.get("alloy"):
                    bp = min(pc, key=lambda x: x[0][0])
                    row.append("vs %s: %s" % (bp[1], verdict(cells["alloy"], bp[0], rounds, *better_low)))
                    alloy_vs_peer.append(cells["alloy"][0] / bp[0][0])
                else:
                    row.append("-")
            sp = [spread_pct(cells[a]) for a in allocs if cells.get(a)]
            sp = [x for x in sp if x is not None]
            row.append(("%.0f%%–%.0f%%" % (min(sp), max(sp))) if sp and rounds > 1 else "-")
            L.append("| " + " | ".join(row) + " |")
        g = ["**geomean ÷ best**"] + [("%.2f" % geomean(ratios[a])) if geomean(ratios[a]) else "-" for a in allocs]
        if has_alloy:
            gm = geomean(alloy_vs_peer)
            g.append(("%.2f× alloy ÷ best peer" % gm) if gm else "-")
        g.append("")
        L.append("| " + " | ".join(g) + " |")
        L.append("")
        L.append("Unit: %s." % unit)
        L.append("")
        return ratios

    time_ratios = table("Time (s, lower is better)", "time", 1.0, "seconds")
    table("Peak RSS (MiB, lower is better)", "rss", 1.0 / 1024.0, "MiB (ru_maxrss)", ("smaller", "larger"))
    table("CPU time (s, user + system of the process and its children, lower is better)", "cpu", 1.0,
          "seconds of CPU; less sensitive than wall time to other load on a shared machine, but it also "
          "counts spinning, and for redis it is the server's alone (the client is not included)")

    if has_alloy and "alloy-insecure" in allocs:
        hardening_table(L, S, benches, rounds)

    # RSS after
    ra = [b for b in benches if b in RSS_AFTER_KEY]
    if ra:
        L.append("## RSS after (MiB, lower is better)")
        L.append("")
        L.append("Memory the process still holds once its work is done: for `phases`, /proc/self/statm "
                 "resident after freeing 95% and 2 s of light activity (and that as % of the peak RSS); for "
                 "`redis`, `used_memory_rss` from `INFO memory` after the benchmark; for `redis_frag`, the "
                 "same after the scripted load, deletes and rewrites.")
        L.append("")
        head = ["workload"] + allocs + (["alloy ÷ best peer"] if has_alloy else [])
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for b in ra:
            key = RSS_AFTER_KEY[b]
            row = [b]
            cells = {}
            for a in allocs:
                c = S.get((b, a))
                m = c["metrics"].get(key) if c else None
                cells[a] = m
                txt = fmt_cell(m, 1.0 / 1024.0)
                pct = c["metrics"].get("rss_after_pct") if c else None
                if pct:
                    txt += " (%.0f%% of peak)" % pct[0]
                row.append(txt if c and c["n_ok"] else ("FAIL" if c else "-"))
            if has_alloy:
                pc = [(cells[a], a) for a in peers if cells.get(a)]
                if pc and cells.get("alloy"):
                    bp = min(pc, key=lambda x: x[0][0])
                    row.append("vs %s: %s" % (bp[1], verdict(cells["alloy"], bp[0], rounds, "smaller", "larger")))
                else:
                    row.append("-")
            L.append("| " + " | ".join(row) + " |")
        L.append("")

    # workload-specific metrics
    L.append("## Workloads' own metrics (median [min–max])")
    L.append("")
    head = ["workload", "metric"] + allocs
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "|".join(["---", "---"] + ["---:"] * len(allocs)) + "|")
    for b in benches:
        keys = WORKLOADS[b][2] if b in WORKLOADS else REAL_METRICS.get(b, [])
        for k in keys:
            row = [b, k]
            for a in allocs:
                c = S.get((b, a))
                row.append(fmt_cell(c["metrics"].get(k)) if c and c["n_ok"] else "-")
            L.append("| " + " | ".join(row) + " |")
    L.append("")

    # arguments
    L.append("## What ran")
    L.append("")
    for b in benches:
        if b in WORKLOADS:
            prog = workload_bin(b)
            L.append("- %s`%s %s`" % ("" if prog == b else "%s: " % b, prog,
                                      " ".join(WORKLOADS[b][1 if ctx["quick"] else 0])))
        else:
            L.append("- %s: size %d (see bench/README.md)" % (b, REAL[b][1 if ctx["quick"] else 0]))
    L.append("")

    # failures
    fails = [(b, a, r) for (b, a), runs in results.items() for r in runs if not r.ok]
    if fails:
        L.append("## Failures")
        L.append("")
        L.append("Commands name the built files (the run itself used copies); generated inputs of failed "
                 "runs are kept in %s." % ctx["kept_dir"])
        L.append("")
        for b, a, r in fails:
            pre = real_preload(ctx, b, a) if b in REAL else ctx["preload"].get(a)
            cmd = " ".join(unsnap(ctx, x) for x in (getattr(r, "argv", []) or []))
            if getattr(r, "stdin", None):
                cmd += " < " + unsnap(ctx, r.stdin)
            L.append("- **%s under %s**: %s  \n  command: `%s%s%s`" % (
                b, a, r.error, getattr(r, "env_note", ""), ("LD_PRELOAD=%s " % unsnap(ctx, pre)) if pre else "", cmd))
            if getattr(r, "backtrace", None):
                L.append("")
                L.append("  ```")
                L.extend("  " + l for l in r.backtrace.splitlines())
                L.append("  ```")
        L.append("")
    return "\n".join(L) + "\n", S, time_ratios


COLORS = {"alloy": "#d62728", "glibc": "#7f7f7f", "jemalloc": "#1f77b4", "mimalloc": "#2ca02c",
          "tcmalloc": "#ff7f0e", "alloy-insecure": "#9467bd", "alloy-nopurge": "#8c564b", "snmalloc": "#17becf",
          "alloy-prof": "#bcbd22", "alloy-base": "#c7c7c7", "alloy-threadheaps": "#dbdb8d", "alloy-percpu": "#e377c2"}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_svg(ctx, S):
    allocs = ctx["allocators"]
    benches = [b for b in ctx["benches"] if any(S.get((b, a), {}).get("time") for a in allocs)]
    vals = {}
    ranked = [a for a in allocs if a == "alloy" or a in PEERS] or list(allocs)
    for b in benches:
        tb = [S[(b, a)]["time"][0] for a in ranked if S.get((b, a), {}).get("time")]
        if not tb:
            tb = [S[(b, a)]["time"][0] for a in allocs if S.get((b, a), {}).get("time")]
        best = min(tb)
        for a in allocs:
            t = S.get((b, a), {}).get("time")
            if t:
                vals[(b, a)] = tuple(x / best for x in t)
    top = max([v[0] for v in vals.values()] + [1.0])
    ymax = min(max(1.5, math.ceil(top * 4) / 4.0), 4.0)
    W_group = 22 * len(allocs) + 26
    left, right, topm, bottom = 70, 20, 80, 100
    width = max(760, left + right + max(1, len(benches)) * W_group)
    height = 480
    ph = height - topm - bottom

    def y(v):
        return topm + ph - (min(v, ymax) / ymax) * ph

    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="12">' % (width, height, width, height),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="22" font-size="15" font-weight="bold">alloy vs peers: time ÷ best allocator per '
         'workload (median; whiskers min–max; lower is better)</text>' % left,
         '<text x="%d" y="40" fill="#555">%s, %d round(s), %s</text>' % (
             left, "QUICK" if ctx["quick"] else "full", ctx["rounds"], esc(ctx["info"]["date"]))]
    # grid + y axis
    step = 0.25 if ymax <= 2 else 0.5
    v = 0.0
    while v <= ymax + 1e-9:
        yy = y(v)
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>' % (
            left, yy, width - right, yy, "#000" if abs(v - 1.0) < 1e-9 else "#ddd"))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (left - 6, yy + 4, v))
        v += step
    o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000"/>' % (left, topm, left, topm + ph))
    o.append('<text transform="translate(18,%d) rotate(-90)" text-anchor="middle">time ÷ best allocator '
             '(1.00 = fastest)</text>' % (topm + ph // 2))
    o.append('<text x="%d" y="%d" text-anchor="middle">workload</text>' % (
        left + (width - left - right) // 2, height - 12))
    for i, b in enumerate(benches):
        x0 = left + i * W_group + 13
        for j, a in enumerate(allocs):
            r = vals.get((b, a))
            x = x0 + j * 22
            if r is None:
                o.append('<text x="%d" y="%.1f" font-size="9" text-anchor="middle" fill="%s">×</text>' % (
                    x + 9, y(0) - 3, COLORS.get(a, "#000")))
                continue
            yt = y(r[0])
            o.append('<rect x="%d" y="%.1f" width="18" height="%.1f" fill="%s"><title>%s / %s: %.3f '
                     '(min %.3f, max %.3f)</title></rect>' % (x, yt, y(0) - yt, COLORS.get(a, "#000"),
                                                               esc(b), a, r[0], r[1], r[2]))
            if r[2] > r[1]:
                o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000"/>' % (
                    x + 9, y(r[1]), x + 9, y(r[2])))
            if r[0] > ymax:
                o.append('<text x="%d" y="%.1f" font-size="9" text-anchor="middle">%.1f</text>' % (
                    x + 9, topm - 4, r[0]))
        cx = x0 + len(allocs) * 11
        o.append('<text transform="translate(%d,%d) rotate(-35)" text-anchor="end">%s</text>' % (
            cx, topm + ph + 14, esc(b)))
    # legend
    lx = left
    for a in allocs:
        o.append('<rect x="%d" y="50" width="12" height="12" fill="%s"/>' % (lx, COLORS.get(a, "#000")))
        o.append('<text x="%d" y="60">%s</text>' % (lx + 16, esc(a)))
        lx += 95
    o.append("</svg>")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------- main


def main():
    quick = os.environ.get("QUICK", "") not in ("", "0")
    rounds = int(os.environ.get("ROUNDS") or ("1" if quick else "5"))
    if rounds < 1:
        sys.exit("ROUNDS must be >= 1")
    build = os.environ.get("BUILD") or "build"
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    results_dir = os.environ.get("RESULTS") or os.path.join(ROOT, "bench", "results")
    # Everything a run executes is snapshotted into a private directory first, so
    # that a rebuild (or make clean) of BUILD during a long run changes nothing.
    snap = tempfile.mkdtemp(prefix="alloy-bench-")
    try:
        if os.environ.get("STRACE", "") not in ("", "0"):
            return run_syscalls(quick, build, snap)
        return run_all(quick, rounds, build, results_dir, snap)
    finally:
        shutil.rmtree(snap, ignore_errors=True)


# ---------------------------------------------------------------- syscall counts

SYSCALLS = ["mmap", "munmap", "mremap", "madvise", "mprotect"]
SYSCALLS_EXTRA = ["brk"]  # glibc grows its main heap with brk: shown, not in the total


def parse_strace_summary(path):
    """calls per system call from `strace -c -o path` output."""
    counts = {}
    with open(path) as f:
        for line in f:
            t = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(t) >= 5 and t[0][0].isdigit() and t[3].isdigit() and t[-1] != "total":
                counts[t[-1]] = int(t[3])
    return counts


def run_syscalls(quick, build, snap):
    """STRACE=1 (bench/syscalls.sh): each workload of WORKLOADS once per
    allocator under strace -f -c; memory-mapping system calls per 100k of the
    workload's own operations (its ops= output)."""
    strace = shutil.which("strace")
    if not strace:
        sys.exit("strace is not installed (bench/syscalls.sh installs it)")
    wl = [w.strip() for w in os.environ.get("WORKLOADS", "").split(",") if w.strip()]
    if not wl:
        sys.exit("STRACE=1 needs WORKLOADS=name[,name...]")
    for w in wl:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (syscall counts are for the synthetic workloads)" % w)
    copy_programs(build, snap)
    ctx = {"bindir": snap}
    setup_allocators(ctx, build, snap)
    names = SYSCALLS + SYSCALLS_EXTRA
    log("syscall counts: %s, allocators: %s, %s sizes, load average %s" % (
        ", ".join(wl), ", ".join(ctx["allocators"]), "QUICK" if quick else "full", loadavg()))
    L = ["", "| workload | allocator | ops | " + " | ".join(names) + " | total (%s) | per 100k ops: %s | total |"
         % ("+".join(SYSCALLS), " / ".join(SYSCALLS)),
         "|---|---|" + "---:|" * (len(names) + 3 + 1)]
    failed = False
    for w in wl:
        full, qargs, _ = WORKLOADS[w]
        argv = [os.path.join(snap, workload_bin(w))] + (qargs if quick else full)
        for a in ctx["allocators"]:
            fd, out = tempfile.mkstemp(prefix="alloy-strace-", suffix=".txt")
            os.close(fd)
            cmd = [strace, "-f", "-c", "-o", out, "-e", "trace=" + ",".join(names)]
            if ctx["preload"].get(a):
                cmd += ["-E", "LD_PRELOAD=" + ctx["preload"][a]]
            p = subprocess.run(cmd + argv, capture_output=True, text=True, env=child_env(None))
            lines = [l for l in p.stdout.splitlines() if "time_s=" in l]
            m = parse_kv(lines[-1]) if lines else {}
            if p.returncode != 0 or "check=ok" not in (lines[-1] if lines else ""):
                failed = True
                log("FAIL %s under %s: exit %d %s" % (w, a, p.returncode, p.stderr.strip()[-300:]))
                os.unlink(out)
                continue
            c = parse_strace_summary(out)
            os.unlink(out)
            ops = m.get("ops")
            tot = sum(c.get(n, 0) for n in SYSCALLS)
            per = (lambda v: "%.1f" % (v * 1e5 / ops)) if ops else (lambda v: "-")
            L.append("| %s | %s | %s | %s | %d | %s | %s |" % (
                w, a, fmt_num(ops) if ops else "-", " | ".join(str(c.get(n, 0)) for n in names), tot,
                " / ".join(per(c.get(n, 0)) for n in SYSCALLS), per(tot)))
            log("  %s %s: %s" % (w, a, ", ".join("%s %d" % (n, c.get(n, 0)) for n in names)))
    L.append("")
    L.append("Counts from `strace -f -c` over the whole process (start-up and exit included); \"ops\" is the "
             "workload's own operation count; brk is shown but not in the totals.  Load average at the end: "
             "%s." % loadavg())
    log("\n".join(L))
    return 1 if failed else 0


def setup_allocators(ctx, build, snap):
    """Fills ctx["allocators"] (in interleaving order) and ctx["preload"]
    (allocator -> library to preload, None for glibc).  alloy's builds are
    copied into the snapshot directory first."""
    explicit = bool(os.environ.get("ALLOCATORS"))
    want = [a.strip() for a in (os.environ.get("ALLOCATORS") or ",".join(ORDER)).split(",") if a.strip()]
    preload = {}
    allocs = []
    ctx.setdefault("snap_src", {})
    for a in want:
        if a not in ALLOCATORS:
            sys.exit("unknown allocator %r (known: %s)" % (a, ", ".join(list(ALLOCATORS))))
        lib = (os.path.join(build, ALLOY_VARIANTS[a]) if a in ALLOY_VARIANTS else
               os.environ.get("ALLOY_BASE_LIB", "") if a == "alloy-base" else ALLOCATORS[a][0])
        if a == "alloy-base" and not lib:
            sys.exit("alloy-base: set ALLOY_BASE_LIB to another build's liballoy.so")
        if a == "snmalloc" and not lib:
            sys.exit("snmalloc: set SNMALLOC_SO to an snmalloc shim library (libsnmallocshim.so)")
        if lib and not os.path.exists(lib):
            if a in ALLOY_VARIANTS and not explicit:
                log("WARNING: %s not built: benchmarking without %s" % (lib, a))
                continue
            sys.exit("%s: %s is missing" % (a, lib))
        if a in ALLOY_VARIANTS:
            src = lib
            lib = os.path.join(snap, ALLOY_VARIANTS[a])
            shutil.copy2(src, lib)
            ctx["snap_src"][lib] = src
            with open(lib, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()[:16]
            if a == "alloy":
                ctx["alloy_lib"] = src
                ctx["alloy_sha"] = sha
            ctx.setdefault("variant_sha", {})[a] = sha
        if a == "snmalloc":
            with open(lib, "rb") as f:
                ctx["snmalloc_sha"] = hashlib.sha256(f.read()).hexdigest()[:16]
            ctx["snmalloc_lib"] = lib
        if lib:
            env = dict(os.environ, LD_PRELOAD=lib)
            smoke = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True)
            if smoke.returncode != 0 or smoke.stderr.strip():
                sys.exit("%s: LD_PRELOAD=%s /bin/true fails: %s" % (a, lib, smoke.stderr.strip()))
        preload[a] = lib
        allocs.append(a)
    ctx["allocators"] = allocs
    ctx["preload"] = preload


def copy_programs(build, snap):
    src_bindir = os.path.join(build, "bench")
    for name in sorted(set(workload_bin(w) for w in WORKLOADS)) + ["launch"]:
        src = os.path.join(src_bindir, name)
        if not os.access(src, os.X_OK):
            sys.exit("%s is not built (make -f bench/Makefile)" % src)
        shutil.copy2(src, os.path.join(snap, name))
    return src_bindir


def run_all(quick, rounds, build, results_dir, snap):
    src_bindir = copy_programs(build, snap)
    ctx = {"quick": quick, "rounds": rounds, "bindir": snap, "realdir": os.path.join(snap, "real"),
           "timeout": 120 if quick else 300, "ref_out": {}, "launcher": os.path.join(snap, "launch"),
           "src_bindir": src_bindir, "kept_dir": os.path.join(src_bindir, "failed-inputs"),
           "no_gdb": os.environ.get("GDB", "1") == "0"}
    os.makedirs(ctx["realdir"], exist_ok=True)

    setup_allocators(ctx, build, snap)
    allocs = ctx["allocators"]

    tools = {"sqlite3": shutil.which("sqlite3"), "gcc": shutil.which("gcc"),
             "python": "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None,
             "redis": shutil.which("redis-server") and shutil.which("redis-benchmark") and shutil.which("redis-cli"),
             "redis_frag": shutil.which("redis-server") and shutil.which("redis-cli"),
             "redis-server": shutil.which("redis-server")}
    if tools["python"]:
        tools["python"] = os.path.realpath(tools["python"])  # the interpreter itself, not a wrapper
    ctx["tools"] = tools

    wl_filter = [w.strip() for w in os.environ.get("WORKLOADS", "").split(",") if w.strip()]
    benches = [w for w in WORKLOADS if not wl_filter or w in wl_filter]
    real = []
    if os.environ.get("REAL", "1") != "0":
        for p in REAL:
            if wl_filter and p not in wl_filter:
                continue
            if not tools[p]:
                log("SKIP real program %s: not installed" % p)
                continue
            real.append(p)
    ctx["benches"] = benches + real
    for w in wl_filter:
        if w not in WORKLOADS and w not in REAL:
            sys.exit("unknown workload %r" % w)

    ctx["info"] = machine_info(ctx)
    log("alloy bench: %s, %d round(s), allocators: %s" % ("QUICK" if quick else "full", rounds, ", ".join(allocs)))
    log("workloads: %s" % ", ".join(ctx["benches"]))
    results = {}
    t_start = time.time()
    for rd in range(rounds):
        for bi, b in enumerate(ctx["benches"]):
            line = []
            # The order rotates from one workload and round to the next: the
            # first run after the previous workload's last process can pay
            # for its teardown (a loaded machine: 2x on `phases`, always for
            # the allocator listed first, when the order was fixed).
            k = (rd + bi) % len(allocs)
            done = {}
            for a in allocs[k:] + allocs[:k]:
                done[a] = run_workload(ctx, b, a) if b in WORKLOADS else run_real(ctx, b, a)
            for a in allocs:
                r = done[a]
                results.setdefault((b, a), []).append(r)
                if r.ok:
                    line.append("%s %.2fs %.0fMiB" % (a, r.wall, (r.maxrss_kb or 0) / 1024.0))
                else:
                    line.append("%s FAIL" % a)
                    log("  FAIL %s under %s: %s" % (b, a, r.error))
            log("[round %d/%d %6.0fs] %-14s %s" % (rd + 1, rounds, time.time() - t_start, b, " | ".join(line)))

    keep_inputs(ctx, results)
    ctx["info"]["loadavg_end"] = loadavg()
    ctx["info"]["duration_s"] = time.time() - t_start
    report, S, _ = build_report(ctx, results, ctx["info"])
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "latest.md"), "w") as f:
        f.write(report)
    with open(os.path.join(results_dir, "latest.svg"), "w") as f:
        f.write(build_svg(ctx, S))
    raw = {"info": ctx["info"], "quick": quick, "rounds": rounds, "allocators": allocs,
           "preload": ctx["preload"], "benches": ctx["benches"],
           "runs": {"%s/%s" % k: [r.as_dict() for r in v] for k, v in results.items()}}
    with open(os.path.join(results_dir, "latest.json"), "w") as f:
        json.dump(raw, f, indent=1)
    log("")
    log(report)
    log("wrote %s/latest.md, latest.svg, latest.json (%.0f s in all)" % (results_dir, time.time() - t_start))
    if any(not r.ok for runs in results.values() for r in runs):
        log("SOME RUNS FAILED: see the Failures section above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
