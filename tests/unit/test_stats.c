/*
 * test_stats.c - the process statistics jemalloc programs read (Redis's
 * INFO memory is computed from them):
 *
 *   exact       right after an `epoch`, stats.allocated counts the calling
 *               thread's blocks exactly (their usable sizes), and other
 *               threads' once they exited; stats.active covers the live
 *               blocks and stays close to them (it counts carved pages, not
 *               whole 64 KiB slices: an empty Redis read 3.22 as
 *               active/allocated); resident >= active > 0, mapped >=
 *               resident, retained = mapped - resident.
 *   history     a bin's nmalloc (blocks made available) never goes back
 *               when a thread exits, whether its heap is adopted by the
 *               next thread or recycled empty.
 *   readers     every statistics reader (epoch, stats.*, stats.arenas.*,
 *               the report in text and JSON, thread.*, alloy_stats_get)
 *               runs while other threads allocate, free each other's
 *               blocks and resize huge blocks in place, with the background
 *               thread on: under TSan this finds any data race.
 */
#include "check.h"
#include "mallctl_util.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

typedef struct {
  size_t allocated, active, resident, mapped, retained;
} mem_t;

static mem_t mem_now(void) {
  ctl_refresh();
  mem_t m = {ctl_size("stats.allocated"), ctl_size("stats.active"), ctl_size("stats.resident"),
             ctl_size("stats.mapped"), ctl_size("stats.retained")};
  return m;
}

static void check_consistent(const mem_t *m, const char *when) {
  CHECK_MSG(m->active >= m->allocated, "%s: active %zu < allocated %zu", when, m->active, m->allocated);
  CHECK_MSG(m->resident >= m->active && m->resident > 0, "%s: resident %zu, active %zu", when, m->resident,
            m->active); /* (alloy has mapped memory: a block is live) */
  CHECK_MSG(m->mapped >= m->resident, "%s: mapped %zu < resident %zu", when, m->mapped, m->resident);
  CHECK_MSG(m->retained == m->mapped - m->resident, "%s: retained %zu != mapped - resident", when, m->retained);
}

enum { N = 100 };
static void *blocks[N];

static void *alloc_in_thread(void *arg) {
  size_t *sum = arg;
  for (int i = 0; i < N; i++) {
    blocks[i] = alloy_malloc(10000);
    *sum += alloy_usable_size(blocks[i]);
  }
  return NULL;
}

static void *free_in_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) alloy_free(blocks[i]);
  return NULL;
}

static void run(void *(*fn)(void *), void *arg) {
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, fn, arg) == 0);
  pthread_join(t, NULL);
}

static void test_exact(void) {
  void *first = alloy_malloc(100); /* so alloy has mapped something */
  mem_t base = mem_now();
  check_consistent(&base, "start");
  void *v[N + 3];
  size_t sum = 0;
  for (int i = 0; i < N; i++) sum += alloy_usable_size(v[i] = alloy_malloc(1000));
  sum += alloy_usable_size(v[N] = alloy_malloc(100000));
  sum += alloy_usable_size(v[N + 1] = alloy_malloc(5 * MiB));
  v[N + 2] = NULL;
  mem_t m = mem_now();
  CHECK_EQ(m.allocated - base.allocated, sum);
  check_consistent(&m, "after allocating");
  CHECK_LE(m.active - m.allocated, base.active - base.allocated + 256 * KiB);
  /* a huge block resized in place */
  size_t before = alloy_usable_size(v[N + 1]);
  void *grown = alloy_realloc(v[N + 1], 9 * MiB);
  REQUIRE(grown != NULL);
  v[N + 1] = grown;
  m = mem_now();
  CHECK_EQ(m.allocated - base.allocated, sum - before + alloy_usable_size(grown));
  for (int i = 0; i < N + 2; i++) alloy_free(v[i]);
  m = mem_now();
  CHECK_EQ(m.allocated, base.allocated);
  check_consistent(&m, "after freeing");

  /* one block in each of 40 size classes: active grows by the pages carved
   * (a few KiB a class), not by a whole 64 KiB slice each (an empty Redis,
   * a few blocks in many classes, read 3.22 as active/allocated) */
  void *one[40];
  for (int i = 0; i < 40; i++) one[i] = alloy_malloc(16 + (size_t)i * 100);
  m = mem_now();
  CHECK_LE(m.active - base.active, 40 * 8 * KiB);
  for (int i = 0; i < 40; i++) alloy_free(one[i]);

  /* another thread's blocks: counted once it exited; freed by a third */
  size_t theirs = 0;
  run(alloc_in_thread, &theirs);
  m = mem_now();
  CHECK_EQ(m.allocated - base.allocated, theirs);
  run(free_in_thread, NULL);
  m = mem_now();
  CHECK_EQ(m.allocated, base.allocated);
  check_consistent(&m, "after other threads");
  alloy_free(first);
}

/* ---------------------------------------------------------------- readers */

static atomic_bool stop;
static _Atomic(uintptr_t) shared[256];

static unsigned arena; /* an explicit arena: its statistics read its huge blocks' sizes */

static void *churn(void *arg) {
  uint64_t r = (uint64_t)(uintptr_t)arg;
  int flags = r == 1 ? ALLOY_MALLOCX_ARENA(arena) : 0;
  void *huge = alloy_mallocx(3 * MiB, flags);
  for (uint64_t i = 0; !atomic_load(&stop); i++) {
    r = mix64(r + i);
    size_t n = r % 50 == 0 ? 200 * KiB : 16 + r % 4000;
    uintptr_t old = atomic_exchange(&shared[r % 256], (uintptr_t)alloy_malloc(n));
    if (old) alloy_free((void *)old); /* mostly another thread's block */
    if (i % 64 == 0) {
      void *h = alloy_realloc(huge, (i / 64) % 2 ? 7 * MiB : 3 * MiB); /* in place, mostly */
      if (h) huge = h;
    }
  }
  alloy_free(huge);
  return NULL;
}

static char report_buf[256 * KiB];
static size_t report_len;

static void report_write(void *opaque, const char *s) {
  (void)opaque;
  size_t n = strlen(s);
  if (report_len + n < sizeof report_buf) {
    memcpy(report_buf + report_len, s, n);
    report_len += n;
  }
}

static void test_readers(void) {
  bool on = true;
  CHECK_EQ(alloy_mallctl("background_thread", NULL, NULL, &on, sizeof on), 0);
  size_t len = sizeof arena;
  REQUIRE(alloy_mallctl("arenas.create", &arena, &len, NULL, 0) == 0);
  char arena_large[64];
  snprintf(arena_large, sizeof arena_large, "stats.arenas.%u.large.allocated", arena);
  pthread_t t[3];
  for (uintptr_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 1));
  static const char *names[] = {"stats.allocated", "stats.active", "stats.resident", "stats.mapped",
                                "stats.retained", "stats.metadata", "stats.arenas.0.pactive",
                                "stats.arenas.0.pdirty", "stats.arenas.4096.small.allocated",
                                "stats.arenas.4096.large.allocated", "stats.arenas.0.bins.3.curregs",
                                "stats.arenas.0.lextents.0.curlextents"};
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned reads = 0;
  do {
    ctl_refresh();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      size_t v, len = sizeof v;
      CHECK_EQ(alloy_mallctl(names[i], &v, &len, NULL, 0), 0);
    }
    ctl_size(arena_large);
    ctl_u64("thread.allocated");
    ctl_u64("stats.background_thread.num_runs");
    alloy_stats_t s;
    alloy_stats_get(&s);
    report_len = 0;
    alloy_malloc_stats_print(report_write, NULL, reads % 2 ? "J" : "");
    CHECK_GT(report_len, 100);
    reads++;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9 < 1.5);
  atomic_store(&stop, true);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 256; i++) alloy_free((void *)atomic_exchange(&shared[i], 0));
  fprintf(stderr, "readers: %u rounds of every statistic while 3 threads churned\n", reads);
  CHECK_GT(reads, 5);
  mem_t m = mem_now();
  check_consistent(&m, "after the churn");
}

/* A thread that makes 1000 blocks of 80 bytes available, frees them and
 * gives its pages back (`flush`: its heap is then recycled at exit, not
 * abandoned with the page kept for the next thread). */
static void *fill_80(void *arg) {
  bool flush = arg != NULL;
  void *b[1000];
  for (int i = 0; i < 1000; i++) b[i] = alloy_malloc(80);
  for (int i = 0; i < 1000; i++) alloy_free(b[i]);
  if (flush) CHECK_EQ(alloy_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
  return NULL;
}

static uint64_t bin_80_made(void) {
  unsigned nbins = ctl_unsigned("arenas.nbins"), j = 0;
  while (j < nbins && ctl_fmt_u64("arenas.bin.%u.size", j) != 80) j++;
  CHECK(j < nbins);
  ctl_refresh();
  return ctl_fmt_u64("stats.arenas.0.bins.%u.nmalloc", j);
}

static void test_history(void) {
  uint64_t made0 = bin_80_made();
  run(fill_80, NULL);
  uint64_t made1 = bin_80_made();
  run(fill_80, (void *)1);
  uint64_t made2 = bin_80_made();
  printf("history: bin of 80 B made %" PRIu64 ", %" PRIu64 ", %" PRIu64 " blocks available\n", made0, made1, made2);
  CHECK_MSG(made1 >= made0 + 1000, "nmalloc %" PRIu64 " after a thread made 1000 blocks (before: %" PRIu64 ")", made1, made0);
  CHECK_MSG(made2 >= made1, "nmalloc went back from %" PRIu64 " to %" PRIu64 " when a thread exited", made1, made2);
}

int main(void) {
  test_history();
  test_exact();
  test_readers();
  return check_done();
}
