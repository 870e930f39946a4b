/*
 * test_percpu.c - per-CPU mode (docs/PERCPU.md).  The mode is chosen at a
 * process's first call and never changes, so every case runs in a child
 * started afresh (exec of this program) with the environment it needs:
 *
 *   modes    the stress below under each registration: glibc's, alloy's own
 *            (GLIBC_TUNABLES=glibc.pthread.rseq=0), none (rseq refused by a
 *            seccomp filter: thread heaps), percpu:false, and percpu:auto
 *            (thread heaps until threads outnumber the CPUs, then per-CPU);
 *            each checks that stats.percpu.mode says the mode it ran in
 *   stress   many more threads than CPUs replacing blocks of 16 B - 96 KiB,
 *            one free in eight of a block another thread made (an exchange
 *            array); a migrator moving the workers between CPUs
 *            (sched_setaffinity in a loop); a signaller interrupting them
 *            with SIGUSR1 (critical sections abort and restart); the main
 *            thread draining every cache (alloy_collect) meanwhile.  Each
 *            block carries its size and a key and is checked when freed.
 *   misuse   double frees of a block in a cache, of one back in its page
 *            (after a drain), and from another thread; an interior pointer:
 *            each reported and aborted
 *   fork     children forked while threads allocate allocate and check
 *   drain    idle caches are drained on the decay schedule (background
 *            thread, dirty_decay_ms:20), and alloy_collect drains all
 *   stats    bin statistics count live blocks of central pages exactly
 *   prof     a heap-profiler sample freed through a cache leaves the table
 *            (prof:true), whoever frees it, with free or free_sized
 *   sized    free_sized of a per-CPU thread: the right size lands in the
 *            cache, a wrong one is reported
 *
 * TSan cannot see restartable sequences: what the sanitizer builds check is
 * that everything around them stays race-free.
 *
 * Where the kernel has no rseq at all (qemu-user: tests/arm64), only the
 * fallback runs: the stress under percpu:true on thread heaps, in-process.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "check.h"
#include "mallctl_util.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define KiB ((size_t)1024)

static const char *self_path;

/* ------------------------------------------------------------ helpers */

static const char *percpu_mode(void) {
  const char *mode = NULL;
  size_t len = sizeof mode;
  if (alloy_mallctl("stats.percpu.mode", &mode, &len, NULL, 0) != 0) return "?";
  return mode;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
  nanosleep(&ts, NULL);
}

/* A block: its size and key in the first 16 bytes, then key ^ offset. */
static unsigned char *block_new(size_t n, uint64_t key) {
  unsigned char *p = alloy_malloc(n);
  if (!p) return NULL;
  memcpy(p, &n, 8);
  memcpy(p + 8, &key, 8);
  xor_words_fill(p, 16, n, key);
  return p;
}

static bool block_ok(const unsigned char *p) {
  size_t n;
  uint64_t key;
  memcpy(&n, p, 8);
  memcpy(&key, p + 8, 8);
  return n >= 16 && n <= 200 * KiB && xor_words_ok(p, 16, n, key);
}

/* ------------------------------------------------------------- stress */

#define CELLS 256
static _Atomic(unsigned char *) cells[CELLS];
static _Atomic(int) stop_helpers, release_workers, finished_workers;
static _Atomic(unsigned long) signals_seen, bad_blocks, null_blocks;
static pthread_t *workers;
static int nworkers;

static void on_signal(int sig) {
  (void)sig;
  atomic_fetch_add_explicit(&signals_seen, 1, memory_order_relaxed); /* never the allocator */
}

static size_t stress_size(uint64_t r) {
  if (r % 97 == 0) return 64 * KiB + r % (32 * KiB); /* large blocks: the home heap's */
  if (r % 13 == 0) return 4 * KiB + r % (60 * KiB);
  return 16 + r % 2000;
}

static void *stress_worker(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  unsigned ops = SANITIZED ? 3000 : 40000;
  unsigned char *slot[48] = {0};
  for (unsigned k = 0; k < ops; k++) {
    uint64_t r = mix64(seed * 1000003u + k);
    unsigned i = (unsigned)(r % 48);
    unsigned char *old = slot[i];
    if (old && (r >> 20) % 8 == 0) old = atomic_exchange(&cells[(r >> 24) % CELLS], old);
    if (old) {
      if (!block_ok(old)) atomic_fetch_add(&bad_blocks, 1);
      alloy_free(old);
    }
    slot[i] = block_new(stress_size(r >> 8), r);
    if (!slot[i]) atomic_fetch_add(&null_blocks, 1);
    if ((k & 63) == 63) sched_yield();
  }
  for (unsigned i = 0; i < 48; i++)
    if (slot[i]) {
      if (!block_ok(slot[i])) atomic_fetch_add(&bad_blocks, 1);
      alloy_free(slot[i]);
    }
  return NULL;
}

/* A stress worker that stays alive (signals and affinity changes may still
 * target it) until the helpers are stopped. */
static void *stress_thread(void *arg) {
  stress_worker(arg);
  atomic_fetch_add(&finished_workers, 1);
  while (!atomic_load(&release_workers)) sleep_us(1000);
  return NULL;
}

/* Moves the workers between CPUs: each one alone, then all of them. */
static void *migrator(void *arg) {
  (void)arg;
  cpu_set_t allowed;
  sched_getaffinity(0, sizeof allowed, &allowed);
  int ncpu = CPU_COUNT(&allowed);
  for (unsigned round = 0; !atomic_load(&stop_helpers); round++) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int want = (int)(round % (unsigned)(ncpu + 1)); /* ncpu: all of them */
    for (int c = 0, seen = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &allowed) && (want == ncpu || seen++ == want)) CPU_SET(c, &set);
    for (int w = 0; w < nworkers; w++) pthread_setaffinity_np(workers[w], sizeof set, &set);
    sleep_us(300);
  }
  for (int w = 0; w < nworkers; w++) pthread_setaffinity_np(workers[w], sizeof allowed, &allowed);
  return NULL;
}

static void *signaller(void *arg) {
  (void)arg;
  for (unsigned i = 0; !atomic_load(&stop_helpers); i++) {
    pthread_kill(workers[i % (unsigned)nworkers], SIGUSR1);
    sleep_us(50);
  }
  return NULL;
}

/* Returns the number of per-CPU threads seen while the workers ran. */
static uint64_t stress_run(int nthreads) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  nworkers = nthreads;
  workers = calloc((size_t)nthreads, sizeof *workers); /* libc's: not under test */
  atomic_store(&stop_helpers, 0);
  atomic_store(&release_workers, 0);
  atomic_store(&finished_workers, 0);
  for (int w = 0; w < nthreads; w++)
    REQUIRE(pthread_create(&workers[w], NULL, stress_thread, (void *)(uintptr_t)(w + 1)) == 0);
  pthread_t mig, sig;
  REQUIRE(pthread_create(&mig, NULL, migrator, NULL) == 0);
  REQUIRE(pthread_create(&sig, NULL, signaller, NULL) == 0);
  uint64_t most = 0;
  while (atomic_load(&finished_workers) < nthreads) { /* drains racing the workers' sequences */
    sleep_us(20000);
    alloy_collect();
    uint64_t n = ctl_u64("stats.percpu.threads");
    if (n > most) most = n;
  }
  atomic_store(&stop_helpers, 1);
  pthread_join(mig, NULL);
  pthread_join(sig, NULL);
  atomic_store(&release_workers, 1);
  for (int w = 0; w < nthreads; w++) pthread_join(workers[w], NULL);
  for (int c = 0; c < CELLS; c++) {
    unsigned char *p = atomic_exchange(&cells[c], NULL);
    if (p) {
      if (!block_ok(p)) atomic_fetch_add(&bad_blocks, 1);
      alloy_free(p);
    }
  }
  free(workers);
  CHECK_EQ(atomic_load(&bad_blocks), 0);
  CHECK_EQ(atomic_load(&null_blocks), 0);
  CHECK_GT(atomic_load(&signals_seen), 0);
  return most;
}

/* A mode: the stress, then the mode it ran in, as expected. */
static int case_mode(const char *expect) {
  bool auto_mode = strcmp(expect, "auto") == 0;
  void *first = alloy_malloc(100); /* the main thread, alone */
  if (auto_mode) CHECK_MSG(strcmp(percpu_mode(), "off") == 0, "one thread: %s", percpu_mode());
  /* auto goes per-CPU beyond 8 threads per CPU (percpu.c) */
  cpu_set_t allowed;
  sched_getaffinity(0, sizeof allowed, &allowed);
  int nthreads = auto_mode ? 8 * CPU_COUNT(&allowed) + 4 : 24;
  if (nthreads > 256) {
    fprintf(stderr, "SKIP: %d CPUs: too many threads to make auto switch\n", CPU_COUNT(&allowed));
    nthreads = 24;
    auto_mode = false;
    expect = "any";
  }
  uint64_t most = stress_run(nthreads);
  const char *mode = percpu_mode();
  if (strcmp(expect, "any") == 0) {
  } else if (auto_mode) {
    CHECK_MSG(strcmp(mode, "off") != 0, "24 threads on a few CPUs, still %s", mode);
    CHECK_GT(most, 0);
  } else {
    CHECK_MSG(strcmp(mode, expect) == 0, "mode %s, expected %s", mode, expect);
    if (strcmp(expect, "off") != 0) CHECK_GT(most, 0);
    else CHECK_EQ(most, 0);
  }
  fprintf(stderr, "ran in mode %s: %llu per-CPU threads at most, %lu signals delivered\n", mode,
          (unsigned long long)most, atomic_load(&signals_seen));
  alloy_free(first);
  alloy_collect();
  CHECK_EQ(ctl_size("stats.percpu.cached"), 0);
  return check_done();
}

/* ------------------------------------------------------------- misuse */

static void *free_arg(void *p) {
  alloy_free(p);
  return NULL;
}

static int case_misuse(const char *which) {
  unsigned char *p = alloy_malloc(64);
  void *keep = alloy_malloc(64); /* keeps the page from emptying when p goes back to it */
  (void)keep;
  if (strcmp(which, "cached") == 0) {
    alloy_free(p);
    alloy_free(p);
  } else if (strcmp(which, "inpage") == 0) {
    alloy_free(p);
    alloy_collect(); /* p back in its page */
    alloy_free(p);
  } else if (strcmp(which, "thread") == 0) {
    alloy_free(p);
    pthread_t t;
    pthread_create(&t, NULL, free_arg, p);
    pthread_join(t, NULL);
  } else if (strcmp(which, "interior") == 0) {
    alloy_free(p + 16);
  }
  return 0; /* not reached: the misuse aborts */
}

/* ---------------------------------------------------------------- fork */

static void *fork_churn(void *arg) {
  stress_worker(arg);
  return NULL;
}

static int case_fork(void) {
  unsigned char *inherited = block_new(300, 42);
  pthread_t t[6];
  for (int i = 0; i < 6; i++) pthread_create(&t[i], NULL, fork_churn, (void *)(uintptr_t)(i + 100));
  int bad = 0;
  for (int f = 0; f < (SANITIZED ? 4 : 20); f++) {
    sleep_us(5000);
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      unsigned char *v[500];
      for (int i = 0; i < 500; i++)
        if (!(v[i] = block_new(16 + (size_t)mix64((uint64_t)i) % 3000, (uint64_t)i))) _exit(1);
      for (int i = 0; i < 500; i++) {
        if (!block_ok(v[i])) _exit(2);
        alloy_free(v[i]);
      }
      if (!block_ok(inherited)) _exit(3);
      alloy_free(inherited);
      alloy_collect();
      _exit(strcmp(percpu_mode(), "off") == 0 ? 4 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork child %d: status %#x\n", f, status);
      bad++;
    }
  }
  for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
  CHECK_EQ(bad, 0);
  CHECK(block_ok(inherited));
  alloy_free(inherited);
  return check_done();
}

/* --------------------------------------------------------------- drain */

static int case_drain(void) {
  bool on = true;
  CHECK_EQ(alloy_mallctl("background_thread", NULL, NULL, &on, sizeof on), 0);
  void *v[2000];
  for (int i = 0; i < 2000; i++) v[i] = alloy_malloc(64 + (size_t)(i % 8) * 16);
  for (int i = 0; i < 2000; i++) alloy_free(v[i]);
  CHECK_GT(ctl_size("stats.percpu.cached"), 0);
  uint64_t drains = ctl_u64("stats.percpu.drains");
  /* idle: the background thread's decay passes drain the caches (a drain
   * stops a cache's headers, which then read empty, before it counts
   * itself: wait for both) */
  for (int i = 0; i < 300 && (ctl_size("stats.percpu.cached") != 0 || ctl_u64("stats.percpu.drains") == drains); i++)
    sleep_us(10000);
  CHECK_EQ(ctl_size("stats.percpu.cached"), 0);
  CHECK_GT(ctl_u64("stats.percpu.drains"), drains);
  for (int i = 0; i < 2000; i++) v[i] = alloy_malloc(64);
  for (int i = 0; i < 2000; i++) alloy_free(v[i]);
  alloy_collect();
  CHECK_EQ(ctl_size("stats.percpu.cached"), 0);
  return check_done();
}

/* --------------------------------------------------------------- stats */

static uint64_t curregs(unsigned bin) {
  ctl_refresh();
  return ctl_fmt_u64("stats.arenas.0.bins.%u.curregs", bin);
}

static int case_stats(void) {
  enum { N = 5000 };
  static void *v[N];
  unsigned bin = 3; /* 64 bytes */
  uint64_t before = curregs(bin);
  for (int i = 0; i < N; i++) v[i] = alloy_malloc(64);
  CHECK_EQ(curregs(bin), before + N);
  for (int i = 0; i < N; i += 2) alloy_free(v[i]);
  CHECK_EQ(curregs(bin), before + N / 2); /* those in a cache are not live */
  for (int i = 1; i < N; i += 2) alloy_free(v[i]);
  alloy_collect();
  CHECK_EQ(curregs(bin), before);
  CHECK_EQ(ctl_u64("stats.percpu.threads"), 1);
  CHECK_GT(ctl_unsigned("stats.percpu.caches"), 0);
  return check_done();
}

/* ---------------------------------------------------------------- prof */

static void *free_arg_sized(void *p) {
  alloy_free_sized(p, 100);
  return NULL;
}

/* With prof:true and lg_prof_sample:0 every allocation is a heap-profiler
 * sample.  A sample on a central page must leave the table when its block
 * is freed into a cache (no fold of remote bits ever sees central pages):
 * else, once the block is handed out again, the table counts it live under
 * its old call stack.  prof.active goes off after each sample so that the
 * block's next allocation is no sample of its own. */
static int case_prof(void) {
  bool on = true, off = false;
  int reused = 0;
  for (int round = 0; round < 200; round++) {
    CHECK_EQ(alloy_mallctl("prof.active", NULL, NULL, &on, sizeof on), 0);
    void *p = alloy_malloc(100);
    CHECK_EQ(ctl_u64("stats.prof.samples"), 1);
    CHECK_EQ(alloy_mallctl("prof.active", NULL, NULL, &off, sizeof off), 0);
    if (round % 3 == 0) {
      alloy_free(p);
    } else if (round % 3 == 1) {
      alloy_free_sized(p, 100);
    } else { /* another per-CPU thread's free */
      pthread_t t;
      pthread_create(&t, NULL, free_arg_sized, p);
      pthread_join(t, NULL);
    }
    void *q = alloy_malloc(100); /* p again, when the thread stayed on its CPU */
    reused += q == p;
    CHECK_EQ(ctl_u64("stats.prof.samples"), 0);
    alloy_free(q);
  }
  CHECK_GT(reused, 0);
  if (strcmp(percpu_mode(), "off") != 0) CHECK_EQ(ctl_u64("stats.percpu.threads"), 1);
  return check_done();
}

/* A sized free of a per-CPU thread: the right size lands in the cache, a
 * wrong one is reported (and aborts). */
static int case_sized(const char *which) {
  void *keep = alloy_malloc(64);
  (void)keep;
  void *p = alloy_malloc(64);
  size_t cached = ctl_size("stats.percpu.cached");
  if (strcmp(which, "right") == 0) {
    alloy_free_sized(p, 60);
    CHECK_EQ(ctl_size("stats.percpu.cached"), cached + 64);
    return check_done();
  }
  alloy_free_sized(p, 200);
  return 0; /* not reached: the misuse aborts */
}

/* ------------------------------------------------------------- driver */

/* Makes rseq fail with ENOSYS in this process and what it executes. */
static bool refuse_rseq(void) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rseq, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

typedef struct {
  const char *name;   /* argv[1] of the child */
  const char *arg;    /* argv[2] */
  const char *conf;   /* ALLOY_CONF */
  const char *tunables; /* GLIBC_TUNABLES, or NULL */
  bool seccomp;       /* rseq refused */
  const char *abort_message; /* expected SIGABRT and this on stderr; NULL: exit 0 */
} child_case_t;

static const child_case_t cases[] = {
    {"mode", "glibc", "percpu:true", NULL, false, NULL},
    {"mode", "own", "percpu:true", "glibc.pthread.rseq=0", false, NULL},
    {"mode", "off", "percpu:true", NULL, true, NULL},
    {"mode", "off", "percpu:false", NULL, false, NULL},
    {"mode", "auto", "percpu:auto", NULL, false, NULL},
    {"misuse", "cached", "percpu:true", NULL, false, "double free"},
    {"misuse", "inpage", "percpu:true", NULL, false, "double free"},
    {"misuse", "thread", "percpu:true", NULL, false, "double free"},
    {"misuse", "interior", "percpu:true", NULL, false, "interior pointer"},
    {"misuse", "cached", "percpu:true", "glibc.pthread.rseq=0", false, "double free"},
    {"fork", "", "percpu:true", NULL, false, NULL},
    {"fork", "", "percpu:true", "glibc.pthread.rseq=0", false, NULL},
    {"drain", "", "percpu:true,dirty_decay_ms:20,background_thread:true", NULL, false, NULL},
    {"stats", "", "percpu:true", NULL, false, NULL},
    {"prof", "", "percpu:true,prof:true,lg_prof_sample:0", NULL, false, NULL},
    {"sized", "right", "percpu:true", NULL, false, NULL},
    {"sized", "wrong", "percpu:true", NULL, false, "wrong size"},
};

/* Runs one case in a child; true when it ended as expected. */
static bool run_child(const child_case_t *c) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    setenv("ALLOY_CONF", c->conf, 1);
    if (c->tunables) setenv("GLIBC_TUNABLES", c->tunables, 1);
    if (c->seccomp && !refuse_rseq()) _exit(77);
    execl(self_path, self_path, c->name, c->arg, (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  char out[8192];
  size_t len = 0;
  ssize_t r;
  while ((r = read(pipefd[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)r;
  out[len] = 0;
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  bool ok;
  if (c->abort_message)
    ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(out, c->abort_message) != NULL;
  else
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    fprintf(stderr, "%s %s: seccomp unavailable, skipped\n", c->name, c->arg);
    return true;
  }
  fprintf(stderr, "%s %-8s %-45s %s%s: %s\n", c->name, c->arg, c->conf, c->tunables ? c->tunables : "",
          c->seccomp ? " (seccomp: no rseq)" : "", ok ? "ok" : "FAILED");
  if (!ok) fprintf(stderr, "  status %#x, output:\n%s\n", status, out);
  else if (strncmp(c->name, "mode", 4) == 0) fprintf(stderr, "  %s", out);
  return ok;
}

/* No rseq system call at all (qemu-user does not emulate it, nor do
 * kernels before 4.18). */
static bool rseq_missing(void) { return syscall(SYS_rseq, NULL, 0, 0, 0) == -1 && errno == ENOSYS; }

int main(int argc, char **argv) {
  self_path = "/proc/self/exe";
  if (argc >= 2) {
    const char *arg = argc >= 3 ? argv[2] : "";
    if (strcmp(argv[1], "mode") == 0) return case_mode(arg);
    if (strcmp(argv[1], "misuse") == 0) return case_misuse(arg);
    if (strcmp(argv[1], "fork") == 0) return case_fork();
    if (strcmp(argv[1], "drain") == 0) return case_drain();
    if (strcmp(argv[1], "stats") == 0) return case_stats();
    if (strcmp(argv[1], "prof") == 0) return case_prof();
    if (strcmp(argv[1], "sized") == 0) return case_sized(arg);
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
  }
  /* Without rseq every case would run on thread heaps and say nothing of
   * the caches: what is left to check is the fallback itself, here, with
   * percpu:true (read at the first alloy call, still to come).  Under
   * qemu-user (tests/arm64) the children could not run anyway: qemu cannot
   * exec an ARM64 program from its guest without binfmt_misc. */
  if (rseq_missing()) {
    fprintf(stderr, "no rseq system call here (ENOSYS): the fallback to thread heaps only\n");
    setenv("ALLOY_CONF", "percpu:true", 1);
    return case_mode("off");
  }
  /* the children must reach a real path: /proc/self/exe is this program */
  static char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  REQUIRE(n > 0);
  path[n] = 0;
  self_path = path;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) CHECK(run_child(&cases[i]));
  return check_done();
}
