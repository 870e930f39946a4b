/*
 * test_arena.c - explicit arenas and tcaches (src/arena.c, src/tcache.c)
 * through the prefixed API: arenas.create, MALLOCX_ARENA from several
 * threads, arenas.lookup, frees from other threads, arena.<i>.reset and
 * .destroy giving the memory back, index reuse, thread.arena binding,
 * explicit tcaches (reuse, flush, double free still caught), and the
 * statistics names that describe all of it (stats.arenas.<i>.*, stats.*).
 */
#include "check.h"
#include "mallctl_util.h"
#include "internal.h"

#include <alloy.h>
#include <pthread.h>
#include <sys/types.h>


static unsigned arena_new(void) {
  unsigned a = 0;
  size_t len = sizeof a;
  CHECK_EQ(alloy_mallctl("arenas.create", &a, &len, NULL, 0), 0);
  CHECK_GE(a, 1);
  return a;
}

static unsigned lookup(void *p) {
  unsigned a = 9999;
  size_t len = sizeof a;
  CHECK_EQ(alloy_mallctl("arenas.lookup", &a, &len, &p, sizeof p), 0);
  return a;
}

static int arena_op(unsigned a, const char *op) {
  char name[64];
  snprintf(name, sizeof name, "arena.%u.%s", a, op);
  return alloy_mallctl(name, NULL, NULL, NULL, 0);
}


/* Blocks of every kind land in the arena, lookups say so, and the arena's
 * statistics count them; the thread's own blocks stay in arena 0. */
static void test_create_and_lookup(void) {
  unsigned a = arena_new();
  unsigned n = 0;
  size_t len = sizeof n;
  CHECK_EQ(alloy_mallctl("arenas.narenas", &n, &len, NULL, 0), 0);
  CHECK_GT(n, a);
  size_t sizes[] = {16, 100, 4000, 30000, 200000, 3 << 20};
  void *p[6];
  for (int i = 0; i < 6; i++) {
    p[i] = alloy_mallocx(sizes[i], ARENA(a) | TCACHE_NONE);
    REQUIRE(p[i] != NULL);
    memset(p[i], 0x5a, sizes[i]);
    CHECK_EQ(lookup(p[i]), a);
  }
  void *mine = alloy_malloc(100);
  CHECK_EQ(lookup(mine), 0);
  void *aligned = alloy_mallocx(1000, ARENA(a) | 12 /* MALLOCX_LG_ALIGN(12) */);
  CHECK_ALIGNED(aligned, 4096);
  CHECK_EQ(lookup(aligned), a);
  void *z = alloy_mallocx(5000, ARENA(a) | 0x40);
  for (size_t i = 0; i < 5000; i++) CHECK_EQ(((unsigned char *)z)[i], 0);
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.bins.%u.curregs", a, size_class_of(100)), 1);
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.small.allocated", a, 0),
           16 + size_class_size(size_class_of(100)) + size_class_size(size_class_of(4000)) +
               size_class_size(size_class_of(30000)) + size_class_size(size_class_of(4096)) +
               size_class_size(size_class_of(5000)));
  CHECK_GE(ctl_fmt_u64("stats.arenas.%u.large.allocated", a, 0), 200000 + (3 << 20));
  CHECK_GE(ctl_fmt_u64("stats.arenas.%u.pactive", a, 0), 4);
  /* rallocx with the arena flag keeps the block in the arena when it moves. */
  void *r = alloy_rallocx(p[1], 50000, ARENA(a));
  REQUIRE(r != NULL);
  CHECK_EQ(((unsigned char *)r)[99], 0x5a);
  CHECK_EQ(lookup(r), a);
  p[1] = r;
  for (int i = 0; i < 6; i++) alloy_dallocx(p[i], ARENA(a));
  alloy_free(aligned);
  alloy_free(z);
  alloy_free(mine);
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.small.allocated", a, 0), 0);
  CHECK_EQ(arena_op(a, "destroy"), 0);
}

/* Threads allocate in one arena at once and free each other's blocks. */
#define THREADS 4
#define PER_THREAD 20000
static unsigned shared_arena;
static void *slots[THREADS][PER_THREAD];

static void *arena_worker(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < PER_THREAD; i++) {
    size_t size = 16 + (size_t)((i * 7919 + t * 104729) % 3000);
    slots[t][i] = alloy_mallocx(size, ARENA(shared_arena));
    if (slots[t][i]) memset(slots[t][i], t, 16);
  }
  return NULL;
}

static void *free_worker(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < PER_THREAD; i++) alloy_free(slots[(t + 1) % THREADS][i]);
  return NULL;
}

static void test_threads(void) {
  shared_arena = arena_new();
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, arena_worker, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < PER_THREAD; i += 997) {
      REQUIRE(slots[t][i] != NULL);
      CHECK_EQ(((unsigned char *)slots[t][i])[15], t);
      CHECK_EQ(lookup(slots[t][i]), shared_arena);
    }
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, free_worker, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  /* Every block was freed by a thread that does not own the arena: the
   * statistics count them freed, and a purge gives their pages back. */
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.small.allocated", shared_arena, 0), 0);
  CHECK_EQ(arena_op(shared_arena, "purge"), 0);
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.pactive", shared_arena, 0), 0);
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.pdirty", shared_arena, 0), 0);
  void *q = alloy_mallocx(64, ARENA(shared_arena));
  CHECK_EQ(lookup(q), shared_arena);
  alloy_free(q);
  CHECK_EQ(arena_op(shared_arena, "destroy"), 0);
}

static size_t stat_now(const char *name) {
  ctl_refresh();
  return ctl_size(name);
}

/* reset and destroy discard live blocks: they leave stats.allocated and
 * stats.active at once, and the memory goes back to the OS when purged
 * (the back end keeps the frames, purged, for reuse); the index is reused. */
static void test_reset_destroy(void) {
  unsigned a = arena_new();
  size_t allocated0 = stat_now("stats.allocated"), active0 = stat_now("stats.active");
  for (int i = 0; i < 2000; i++) CHECK_NOT_NULL(alloy_mallocx(8000, ARENA(a)));
  void *huge = alloy_mallocx(8 << 20, ARENA(a));
  CHECK_NOT_NULL(huge);
  CHECK_GE(stat_now("stats.allocated"), allocated0 + 2000 * 8000 + (8 << 20));
  CHECK_GE(stat_now("stats.active"), active0 + 2000 * 8000 + (8 << 20));
  CHECK_EQ(arena_op(a, "reset"), 0);
  CHECK_LE(stat_now("stats.allocated"), allocated0 + 256 * 1024);
  CHECK_LE(stat_now("stats.active"), active0 + 256 * 1024);
  size_t resident_before_purge = stat_now("stats.resident");
  CHECK_EQ(alloy_mallctl("arena.4096.purge", NULL, NULL, NULL, 0), 0);
  CHECK_LE(stat_now("stats.resident") + 16 * ALLOY_MiB, resident_before_purge);
  /* Still usable after reset. */
  void *p = alloy_mallocx(100, ARENA(a));
  CHECK_EQ(lookup(p), a);
  CHECK_EQ(arena_op(a, "destroy"), 0);
  /* A destroyed arena: operations fail with EFAULT, allocation fails, the
   * discarded block is no longer alloy's, and its index comes back. */
  CHECK_EQ(arena_op(a, "purge"), 0); /* as jemalloc: nothing to purge */
  CHECK_EQ(arena_op(a, "reset"), EFAULT);
  CHECK_NULL(alloy_mallocx(100, ARENA(a)));
  CHECK_EQ(segment_page_lookup(huge) == NULL, 1);
  CHECK_EQ(arena_new(), a);
  CHECK_EQ(arena_op(a, "destroy"), 0);
  CHECK_EQ(arena_op(0, "reset"), EFAULT);
  CHECK_EQ(arena_op(0, "destroy"), EFAULT);
}

/* thread.arena moves the thread's plain malloc calls; binding back restores
 * its own heap. */
static void test_thread_arena(void) {
  unsigned a = arena_new(), cur = 77;
  size_t len = sizeof cur;
  CHECK_EQ(alloy_mallctl("thread.arena", &cur, &len, &a, sizeof a), 0);
  CHECK_EQ(cur, 0);
  void *p = alloy_malloc(200);
  void *q = alloy_malloc(300000);
  CHECK_EQ(lookup(p), a);
  CHECK_EQ(lookup(q), a);
  CHECK_EQ(alloy_mallctl("thread.arena", &cur, &len, NULL, 0), 0);
  CHECK_EQ(cur, a);
  unsigned nthreads = 0;
  char name[64];
  snprintf(name, sizeof name, "stats.arenas.%u.nthreads", a);
  len = sizeof nthreads;
  CHECK_EQ(alloy_mallctl(name, &nthreads, &len, NULL, 0), 0);
  CHECK_EQ(nthreads, 1);
  CHECK_EQ(arena_op(a, "destroy"), EFAULT); /* a thread is bound to it */
  unsigned zero = 0, bad = 4000;
  CHECK_EQ(alloy_mallctl("thread.arena", NULL, NULL, &bad, sizeof bad), EFAULT);
  CHECK_EQ(alloy_mallctl("thread.arena", NULL, NULL, &zero, sizeof zero), 0);
  void *r = alloy_malloc(200);
  CHECK_EQ(lookup(r), 0);
  alloy_free(p);
  alloy_free(q);
  alloy_free(r);
  CHECK_EQ(arena_op(a, "destroy"), 0);
}

/* Explicit tcaches hand a freed block back, flush returns blocks to their
 * pages, and a block parked in a tcache is still caught when freed again. */
static void test_tcache(void) {
  unsigned tc = 99;
  size_t len = sizeof tc;
  CHECK_EQ(alloy_mallctl("tcache.create", &tc, &len, NULL, 0), 0);
  void *p = alloy_mallocx(48, TCACHE(tc));
  REQUIRE(p != NULL);
  alloy_dallocx(p, TCACHE(tc));
  void *q = alloy_mallocx(40, TCACHE(tc));
  CHECK_EQ_PTR(q, p); /* same class: the parked block */
  alloy_sdallocx(q, 40, TCACHE(tc));
  CHECK_EQ(alloy_mallctl("tcache.flush", NULL, NULL, &tc, sizeof tc), 0);
  CHECK_EQ(alloy_mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc), 0);
  CHECK_EQ(alloy_mallctl("tcache.flush", NULL, NULL, &tc, sizeof tc), EFAULT);
  CHECK_EQ(alloy_mallctl("tcache.flush", NULL, NULL, &tc, 1), EINVAL);
  unsigned tc2 = 99;
  CHECK_EQ(alloy_mallctl("tcache.create", &tc2, &len, NULL, 0), 0);
  CHECK_EQ(tc2, tc); /* identifiers are reused */
  CHECK_EQ(alloy_mallctl("tcache.destroy", NULL, NULL, &tc2, sizeof tc2), 0);
}

static void test_thread_names(void) {
  uint64_t *ap = NULL, *dp = NULL;
  size_t len = sizeof ap;
  CHECK_EQ(alloy_mallctl("thread.allocatedp", &ap, &len, NULL, 0), 0);
  CHECK_EQ(alloy_mallctl("thread.deallocatedp", &dp, &len, NULL, 0), 0);
  REQUIRE(ap != NULL && dp != NULL);
  uint64_t a0 = *ap, d0 = *dp;
  for (int i = 0; i < 100; i++) alloy_free(alloy_malloc(10000));
  CHECK_GE(*dp - d0, 100 * 10000);
  CHECK_GE(*ap - a0, 100 * 10000 - 256 * 1024); /* brought up to date at events */
  CHECK_EQ(alloy_mallctl("thread.peak.reset", NULL, NULL, NULL, 0), 0);
  void *big = alloy_malloc(3 << 20);
  uint64_t peak = 0;
  len = sizeof peak;
  CHECK_EQ(alloy_mallctl("thread.peak.read", &peak, &len, NULL, 0), 0);
  CHECK_GE(peak, 3 << 20);
  alloy_free(big);
  CHECK_EQ(alloy_mallctl("thread.peak.read", &peak, &len, NULL, 0), 0);
  CHECK_GE(peak, 3 << 20); /* a peak stays until reset */
  bool on = false;
  len = sizeof on;
  CHECK_EQ(alloy_mallctl("thread.tcache.enabled", &on, &len, NULL, 0), 0);
  CHECK(on);
  CHECK_EQ(alloy_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
  CHECK_EQ(alloy_mallctl("thread.tcache.flush", &on, &len, NULL, 0), EPERM);
}

/* The process totals keep jemalloc's order, and resident falls after a
 * purge of freed memory. */
static void test_memory_stats(void) {
  void *blocks[64];
  for (int i = 0; i < 64; i++) {
    blocks[i] = alloy_malloc(1 << 20);
    memset(blocks[i], 1, 1 << 20);
  }
  ctl_refresh();
  uint64_t allocated = ctl_fmt_u64("stats.allocated", 0, 0), active = ctl_fmt_u64("stats.active", 0, 0);
  uint64_t resident = ctl_fmt_u64("stats.resident", 0, 0), mapped = ctl_fmt_u64("stats.mapped", 0, 0);
  uint64_t metadata = ctl_fmt_u64("stats.metadata", 0, 0);
  CHECK_GE(allocated, 64u << 20);
  CHECK_LE(allocated, active);
  CHECK_LE(active, resident);
  CHECK_LE(resident, mapped);
  CHECK_GT(metadata, 0);
  CHECK_GE(ctl_fmt_u64("stats.arenas.%u.lextents.%u.curlextents", 0, segment_lextent_of(1 << 20)), 64);
  uint64_t purged = ctl_fmt_u64("stats.arenas.%u.dirty_purged", 4096, 0);
  for (int i = 1; i < 64; i++) alloy_free(blocks[i]); /* blocks[0] keeps its segment */
  CHECK_EQ(alloy_mallctl("arena.0.purge", NULL, NULL, NULL, 0), 0);
  ctl_refresh();
  CHECK_LT(ctl_fmt_u64("stats.resident", 0, 0), resident - (48u << 20));
  CHECK_GT(ctl_fmt_u64("stats.arenas.%u.dirty_purged", 4096, 0), purged);
  CHECK_EQ(ctl_fmt_u64("stats.arenas.%u.pdirty", 0, 0), 0);
  alloy_free(blocks[0]);
  size_t v = 0, len = sizeof v;
  CHECK_EQ(alloy_mallctl("stats.arenas.3000.pactive", &v, &len, NULL, 0), ENOENT);
  CHECK_EQ(alloy_mallctl("arena.3000.purge", NULL, NULL, NULL, 0), ENOENT);
}

int main(void) {
  test_create_and_lookup();
  test_threads();
  test_reset_destroy();
  test_thread_arena();
  test_tcache();
  test_thread_names();
  test_memory_stats();
  return check_done();
}
