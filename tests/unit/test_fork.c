/*
 * test_fork.c - fork never leaves a child hung on a lock or a state that a
 * thread which does not exist in the child was holding.
 *
 *   background   the case found by adversarial testing: the background
 *                thread purges (holding a heap's seg_lock) while the main
 *                thread frees 1 MiB blocks and forks at random moments; each
 *                child allocates and frees a few hundred blocks.
 *   every_lock   the family: a test hook (alloy__test_hook, called with every
 *                lock just taken) pauses another thread the first time it
 *                takes each distinct lock, and the main thread forks right
 *                then.  Workers and the background thread exercise every
 *                path that takes a lock (pages, large and huge blocks, the
 *                huge cache, arenas, tcaches, statistics, thread exit and
 *                adoption).  A prepare handler that does not take the lock
 *                lets the fork through while it is held, and the child hangs
 *                on it (an alarm turns that into a failure); one that takes
 *                it waits until the pause ends.
 *   remote_wake  a free from another thread into one of the owner's full
 *                pages, paused at the lock it takes to hand the page back
 *                (the owner's pages_lock) while the owner forks: the child's
 *                owner takes the page back and fills it again without
 *                waiting for anyone.
 *   thread_id    the child's heap names the child's thread (the idle
 *                owners' rule asks the OS about a heap's thread by its id).
 *   handlers     fork handlers registered before alloy's (a constructor of
 *                higher priority than alloy's) allocate and free: the
 *                prepare one runs after alloy's took every lock, the parent
 *                and child ones before alloy's release them.  They hung on
 *                alloy's own locks until the forking thread was let
 *                through them (os_fork_window_open).
 *
 * Every child checks its blocks' contents and exits 0 within an alarm.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "check.h"
#include "mallctl_util.h"
#include "internal.h" /* alloy__test_hook, TEST_LOCK_TAKEN, os_trylock */
#include "testutil.h"

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

static pid_t parent_pid;
static _Atomic(int) hook_mode; /* 0 off, 1 every lock, 2 the remote freer's first lock */
static __thread int is_main;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ----------------------------------------------------------- the child */

static unsigned char *filled(size_t n, uint64_t k) {
  unsigned char *p = alloy_malloc(n);
  if (p) xor_words_fill(p, 0, n, k);
  return p;
}

/* What a forked child does: checks that the lock another thread held at
 * the fork is free here (the prepare handler must have taken it: a held
 * lock in a child is a hang waiting for its first user), then allocates a
 * few hundred blocks of every kind, checks and frees them, and frees a
 * block inherited from the parent.  Exits 0, or 3 for a held lock, 1 for
 * anything else; an alarm kills it if it hangs. */
static void child_body(void *inherited, const void *held) {
  alarm(10);
  if (held != NULL && atomic_load(&hook_mode) == 1) {
    if (!os_trylock((os_lock_t *)held)) {
      fprintf(stderr, "lock %p is held in the child\n", held);
      _exit(3);
    }
    os_unlock((os_lock_t *)held);
  }
  static unsigned char *v[400];
  static size_t sz[400];
  for (int i = 0; i < 400; i++) {
    uint64_t r = mix64((uint64_t)i * 7919 + (uint64_t)getpid());
    sz[i] = i % 50 == 0 ? 300 * KiB : i % 97 == 0 ? 3 * MiB : 16 + r % 3000;
    v[i] = filled(sz[i], r);
    if (!v[i]) _exit(1);
  }
  for (int i = 0; i < 400; i++) {
    if (!xor_words_ok(v[i], 0, sz[i], mix64((uint64_t)i * 7919 + (uint64_t)getpid()))) _exit(1);
    alloy_free(v[i]);
  }
  if (inherited) alloy_free(inherited);
  /* the remote_wake case: fill the inherited full page again, so the owner
   * parks it in its full list once more */
  for (int i = 0; i < 300; i++) v[i] = alloy_malloc(1024);
  for (int i = 0; i < 300; i++) alloy_free(v[i]);
  alloy_collect();
  _exit(0);
}

/* Forks; the child runs child_body.  Returns true when it exited 0. */
static bool fork_and_check(void *inherited, const void *held, const char *what) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) child_body(inherited, held);
  int status = 0;
  waitpid(pid, &status, 0);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok)
    fprintf(stderr, "child forked %s: %s %d\n", what,
            WIFSIGNALED(status) ? "killed by signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  return ok;
}

/* ----------------------------------------------------------- background */

static void test_background(void) {
  bool on = true;
  CHECK_EQ(alloy_mallctl("background_thread", NULL, NULL, &on, sizeof on), 0);
  int failures = 0;
  for (int i = 0; i < 60; i++) {
    void *big[8];
    for (int j = 0; j < 8; j++) big[j] = filled(MiB, (uint64_t)j);
    for (int j = 0; j < 8; j++) alloy_free(big[j]);
    sleep_ms((long)(mix64((uint64_t)i) % 31));
    if (!fork_and_check(NULL, NULL, "after freeing 1 MiB blocks")) failures++;
  }
  uint64_t runs = 0;
  size_t len = sizeof runs;
  alloy_mallctl("stats.background_thread.num_runs", &runs, &len, NULL, 0);
  fprintf(stderr, "background: %llu background passes during the forks\n", (unsigned long long)runs);
  CHECK_GT(runs, 20);
  CHECK_EQ(failures, 0);
}

/* ----------------------------------------------------------- every lock */

#define MAX_LOCKS 4096
static const void *_Atomic seen[MAX_LOCKS];
static _Atomic(unsigned) nseen;
static const void *_Atomic paused_at; /* the lock (or page) a thread is paused at */
static atomic_bool forked_now;        /* the main thread forked: resume */
static atomic_bool main_ready;        /* the main thread waits to fork */
static _Atomic(unsigned long) worker_rounds; /* the workers' iterations, all told */

static bool first_time(const void *obj) {
  unsigned n = atomic_load(&nseen);
  for (unsigned i = 0; i < n && i < MAX_LOCKS; i++)
    if (atomic_load(&seen[i]) == obj) return false;
  unsigned slot = atomic_fetch_add(&nseen, 1);
  if (slot >= MAX_LOCKS) return false;
  atomic_store(&seen[slot], obj);
  return true;
}

/* Runs inside the allocator with a lock held: atomics and nanosleep only.
 * Pauses (up to 300 ms) so that the main thread forks meanwhile; a fork
 * whose prepare handler takes this lock waits for the pause to end. */
static void hook(int point, const void *obj) {
  if (is_main || getpid() != parent_pid) return;
  if (atomic_load(&hook_mode) == 0 || point != TEST_LOCK_TAKEN) return;
  if (!atomic_load(&main_ready) || atomic_load(&paused_at) != NULL) return;
  const void *none = NULL;
  if (!atomic_compare_exchange_strong(&paused_at, &none, obj)) return;
  if (!first_time(obj)) {
    atomic_store(&paused_at, NULL);
    return;
  }
  atomic_store(&forked_now, false);
  for (int i = 0; i < 300 && !atomic_load(&forked_now); i++) sleep_ms(1);
  atomic_store(&paused_at, NULL);
}

static atomic_bool stop_workers;
static _Atomic(uintptr_t) passed[64];

/* Every path that takes a lock: pages and segments of all sizes, the huge
 * cache, arenas, tcaches, statistics, blocks passed between threads. */
static void *worker(void *arg) {
  uint64_t r = (uint64_t)(uintptr_t)arg;
  unsigned arena = 0;
  size_t len = sizeof arena;
  alloy_mallctl("arenas.create", &arena, &len, NULL, 0);
  for (uint64_t i = 0; !atomic_load(&stop_workers); i++) {
    atomic_fetch_add_explicit(&worker_rounds, 1, memory_order_relaxed);
    r = mix64(r + i);
    size_t n = r % 8 == 0 ? 200 * KiB : r % 61 == 0 ? 5 * MiB : 16 + r % 5000;
    void *p = alloy_malloc(n);
    uintptr_t old = atomic_exchange(&passed[r % 64], (uintptr_t)p);
    if (old) alloy_free((void *)old);
    if (i % 97 == 0) { /* an arena, a tcache, statistics */
      void *q = alloy_mallocx(n, ARENA(arena));
      alloy_dallocx(q, 0);
      unsigned tc = 0;
      len = sizeof tc;
      if (alloy_mallctl("tcache.create", &tc, &len, NULL, 0) == 0) {
        q = alloy_mallocx(64, TCACHE(tc));
        alloy_dallocx(q, TCACHE(tc));
        alloy_mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
      }
      uint64_t e = 1;
      alloy_mallctl("epoch", NULL, NULL, &e, sizeof e);
      size_t active;
      len = sizeof active;
      alloy_mallctl("stats.arenas.4096.pactive", &active, &len, NULL, 0);
    }
    if (i % 5000 == 0) alloy_collect();
  }
  return NULL;
}

static void *short_lived(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) alloy_free(alloy_malloc(100 + (size_t)i));
  void *keep = alloy_malloc(5000); /* left for whoever adopts the heap */
  uintptr_t old = atomic_exchange(&passed[0], (uintptr_t)keep);
  if (old) alloy_free((void *)old);
  return NULL;
}

/* Forks each time another thread pauses holding a lock it had not held
 * before; stops when 40 rounds in a row bring no new lock though the
 * workers ran QUIET_ITERATIONS iterations in each (every rare path, taken
 * once in 97, at least twice) and 10 locks were found, or after 60 s.
 * With 20 ms a round whatever the workers did, and no minimum, a loaded
 * machine (a parallel test run) stopped the test at 8 forks. */
#define QUIET_ITERATIONS 400
static void test_every_lock(void) {
  atomic_store(&hook_mode, 1);
  pthread_t w[2];
  for (uintptr_t i = 0; i < 2; i++) pthread_create(&w[i], NULL, worker, (void *)(i + 1));
  int forks = 0, failures = 0;
  double start = now_s();
  for (int quiet = 0; (quiet < 40 || forks < 10) && forks < 60 && now_s() - start < 60;) {
    pthread_t t;
    pthread_create(&t, NULL, short_lived, NULL); /* thread exit, adoption */
    unsigned long ran = atomic_load(&worker_rounds);
    atomic_store(&main_ready, true);
    for (int wait = 0; wait < 1000 && atomic_load(&paused_at) == NULL &&
                       (wait < 20 || atomic_load(&worker_rounds) - ran < QUIET_ITERATIONS);
         wait++)
      sleep_ms(1);
    if (atomic_load(&paused_at) != NULL) {
      quiet = 0;
      forks++;
      bool ok = fork_and_check(NULL, atomic_load(&paused_at), "while another thread held a lock");
      atomic_store(&forked_now, true);
      if (!ok) failures++;
    } else if (atomic_load(&worker_rounds) - ran >= QUIET_ITERATIONS) {
      quiet++;
    }
    atomic_store(&main_ready, false);
    while (atomic_load(&paused_at) != NULL) sleep_ms(1);
    pthread_join(t, NULL);
  }
  atomic_store(&hook_mode, 0);
  atomic_store(&stop_workers, true);
  for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
  for (int i = 0; i < 64; i++) alloy_free((void *)atomic_exchange(&passed[i], 0));
  fprintf(stderr, "every_lock: %d forks, each while another thread held a lock it had not held before\n",
          forks);
  /* heaps_lock, seg_locks, arena table and arena locks, huge cache,
   * tcache table, metadata */
  CHECK_GE(forks, 10);
  CHECK_EQ(failures, 0);
}

/* ---------------------------------------------------------- remote wake */

static void *free_one(void *p) {
  alloy_free(p);
  return NULL;
}

static void test_remote_wake(void) {
  int failures = 0, forks = 0;
  for (int round = 0; round < 5; round++) {
    enum { N = 300 };
    static void *v[N];
    for (int i = 0; i < N; i++) v[i] = filled(1024, (uint64_t)i); /* pages fill up: NOTIFY */
    atomic_store(&nseen, 0);
    atomic_store(&hook_mode, 2);
    atomic_store(&main_ready, true);
    pthread_t t;
    pthread_create(&t, NULL, free_one, v[0]); /* a remote free into a full page */
    for (int wait = 0; wait < 1000 && atomic_load(&paused_at) == NULL; wait++) sleep_ms(1);
    if (atomic_load(&paused_at) != NULL) {
      forks++;
      /* the child frees blocks of the full page and allocates the class */
      if (!fork_and_check(v[1], NULL, "while another thread handed a full page back")) failures++;
      atomic_store(&forked_now, true);
    }
    atomic_store(&main_ready, false);
    pthread_join(t, NULL);
    atomic_store(&hook_mode, 0);
    for (int i = 1; i < N; i++) alloy_free(v[i]);
  }
  CHECK_EQ(forks, 5);
  CHECK_EQ(failures, 0);
}

static void test_thread_id(void) {
  alloy_free(alloy_malloc(64));
  CHECK_EQ(heap_home()->thread_id, os_thread_id());
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    alarm(20);
    int ok = heap_home()->thread_id == os_thread_id() && heap_home()->thread_id != 0;
    alloy_free(alloy_malloc(64));
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child's heap names the parent's thread (status %#x)", status);
}

/* ------------------------------------------------------------- handlers */

static _Atomic(int) handlers_on;
static unsigned handler_runs[3]; /* prepare, parent, child: runs whose blocks came back right */
static void *handler_kept[6];   /* kept from one handler to the next, across the forks */
static uint64_t handler_key[6]; /* what each was filled with */
static void *handler_remote;    /* a block another thread allocated, freed by the prepare handler */

/* Checks the blocks the previous handler left (in the child: the parent's
 * prepare handler's), frees them, allocates new ones of every tier. */
static int handler_work(int which) {
  static const size_t sizes[] = {16, 700, 20000, 100000, 300 * KiB, 3 * MiB};
  int ok = 1;
  for (int i = 0; i < 6; i++) {
    if (handler_kept[i]) ok &= xor_words_ok(handler_kept[i], 0, sizes[i], handler_key[i]);
    alloy_free(handler_kept[i]);
    handler_key[i] = mix64((uint64_t)(which * 6 + i) + (uint64_t)getpid());
    handler_kept[i] = filled(sizes[i], handler_key[i]);
    ok &= handler_kept[i] != NULL;
  }
  void *r = alloy_realloc(alloy_calloc(10, 100), 50000);
  ok &= r != NULL;
  alloy_free(r);
  return ok;
}

static void handler_prepare(void) {
  if (!atomic_load(&handlers_on)) return;
  alloy_free(handler_remote);
  handler_remote = NULL;
  handler_runs[0] += handler_work(0);
}
static void handler_parent(void) {
  if (atomic_load(&handlers_on)) handler_runs[1] += handler_work(1);
}
static void handler_child(void) {
  if (atomic_load(&handlers_on)) handler_runs[2] += handler_work(2);
}

/* Before alloy's constructor (default priority), which registers alloy's. */
__attribute__((constructor(101))) static void register_handlers(void) {
  pthread_atfork(handler_prepare, handler_parent, handler_child);
}

static void *remote_block(void *arg) {
  (void)arg;
  return alloy_malloc(2000);
}

static void test_handlers(void) {
  atomic_store(&handlers_on, 1);
  alarm(30); /* a prepare or parent handler that hangs kills the test */
  int failures = 0;
  for (int i = 0; i < 5; i++) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, remote_block, NULL) == 0);
    REQUIRE(pthread_join(t, &handler_remote) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      alarm(20);
      _exit(handler_runs[2] == 1 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  alarm(0);
  atomic_store(&handlers_on, 0);
  CHECK_EQ(failures, 0);
  CHECK_EQ(handler_runs[0], 5);
  CHECK_EQ(handler_runs[1], 5);
  for (int i = 0; i < 6; i++) alloy_free(handler_kept[i]);
}

int main(void) {
#ifdef CHECK_TSAN
  printf("SKIP: fork with threads running (TSan does not support threads in a child)\n");
  return 77;
#endif
  setenv("ALLOY_CONF", "dirty_decay_ms:20", 1);
  parent_pid = getpid();
  is_main = 1;
  alloy__test_hook = hook;
  double t0 = now_s();
  test_background();
  double t1 = now_s();
  test_every_lock();
  double t2 = now_s();
  test_remote_wake();
  test_thread_id();
  test_handlers();
  fprintf(stderr, "times: background %.1f s, every_lock %.1f s, remote_wake %.1f s\n", t1 - t0, t2 - t1,
          now_s() - t2);
  return check_done();
}
