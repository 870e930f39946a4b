/*
 * test_thread_churn.c - 20,000 short-lived threads, 4 alive at a time, that
 * free each other's memory (prefixed API).
 *
 * Each thread allocates and frees a few blocks of its own (mostly small, some
 * medium and large), then takes the block a previous thread left in one of 8
 * shared slots (atomic exchange), checks its contents and frees it (a remote
 * free into a heap whose thread has usually exited: an abandoned or adopted
 * heap), leaves a block of its own in its place and exits.  So every exited
 * heap still owns a live block that a later thread frees.
 *
 * Checks: every block keeps its contents until another thread frees it; the
 * process's RSS (/proc/self/statm) stays below 200 MiB throughout (sampled
 * every 250 threads) and so do alloy's mapped bytes; at the end, with the
 * slots emptied, alloy_stats_get().allocated is within 1 MiB of its value
 * before the threads ran, and the number of heaps left abandoned is small.
 *
 * First, successors: 64 threads one after the other, each allocating and
 * freeing 300 blocks of 48 bytes, must reuse the page the first one left
 * (an exiting heap keeps one empty page per class for the thread that
 * adopts it): the class's blocks made available (bins.<j>.nmalloc) grow by
 * about one thread's worth, not 64 (each fresh page carves its blocks
 * again), and the class holds one page at the end, not 0 or 64.
 *
 * Then exited heaps' kept pages go back: 16 threads, 8 at a time, each
 * allocate and free 3,000 blocks of 16-1000 B and exit; a decay period
 * later, the main thread's own allocations reclaim the heaps left
 * abandoned: stats.active falls to what one heap keeps (under 1.5 MiB,
 * from up to 6 MiB when the threads are gone).
 *
 * Then an idle owner: the main thread allocates 48 MiB of 1 KiB blocks and
 * sleeps while a worker frees 7 in 8 of them, sleeps past the idle delay
 * and allocates as much again: the worker must take the main thread's
 * pages (stats.active grows by less than 3/4 of the table), where they used
 * to wait for the main thread's next allocation.  In a second round the
 * main thread frees the blocks it kept while the worker takes its pages:
 * every block keeps its contents (and TSan sees the handover).
 *
 * The rule rests on two questions to the OS (os.h), checked first: a
 * thread blocked in a read is waiting and its CPU time stands still, a
 * spinning one is not and its CPU time grows, the caller runs, and an id
 * that names no thread is unknown.
 *
 * Then a blocked owner, with the clock stopped (os_set_clock) so that the
 * 200 ms of the rule above never pass: the main thread allocates 32 MiB of
 * 1 KiB blocks and waits in pthread_join while a worker frees 7 in 8 of
 * them and at once allocates as many: the main thread, blocked and using
 * no CPU time, is idle, and the worker takes its pages (stats.active grows
 * by less than 3/4 of what it allocated, where it grew by all of it).
 *
 * Then a busy owner, the clock stopped again: a worker fills pages of
 * 512 B blocks, one of which the main thread frees (so the worker's heap
 * has a pending page), and spins without allocating while the main thread
 * allocates 64 MiB (256 events): its thread runs, so every look at its CPU
 * clock is a false alarm, and the looks back off (at most 8; 15 at a fixed
 * 16 events apart, and at least 2: the scan did look), and its blocks
 * keep their contents.
 *
 * Under the sanitizers (clang ASan/TSan builds) fewer threads run (5,000) and RSS is
 * not checked (shadow memory); CHURN_THREADS=N in the environment overrides
 * the count.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "check.h"
#include "mallctl_util.h"
#include "os.h"       /* os_set_clock, alloy__test_hook */
#include "testutil.h" /* mix64 */

#ifdef CHECK_SANITIZED
#define UNDER_SANITIZER 1
#endif

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define NSLOTS 8
#define AT_ONCE 4
#define RSS_LIMIT (200 * MiB)

static _Atomic(uintptr_t) slots[NSLOTS];
static atomic_int bad_blocks, failed_allocs;

/* A block: its size in the first 8 bytes, then bytes derived from it and
 * from its address. */
static unsigned char *blk_new(size_t size)
{
  if (size < 16)
    size = 16;
  unsigned char *p = alloy_malloc(size);
  if (!p) {
    atomic_fetch_add(&failed_allocs, 1);
    return NULL;
  }
  memcpy(p, &size, 8);
  uint64_t k = mix64((uintptr_t)p ^ size);
  size_t i = 8;
  for (; i + 8 <= size; i += 8) {
    uint64_t w = k + i;
    memcpy(p + i, &w, 8);
  }
  return p;
}

static void blk_free(unsigned char *p)
{
  if (!p)
    return;
  size_t size;
  memcpy(&size, p, 8);
  bool ok = size >= 16 && size <= 4 * MiB;
  uint64_t k = mix64((uintptr_t)p ^ size);
  for (size_t i = 8; ok && i + 8 <= size; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    ok = w == k + i;
  }
  if (!ok) {
    atomic_fetch_add(&bad_blocks, 1);
    return; /* leave it: freeing a damaged block could mask the report */
  }
  if (size % 3 == 0)
    alloy_free_sized(p, size);
  else
    alloy_free(p);
}

static size_t size_for(uint64_t r)
{
  unsigned k = (unsigned)(r % 100);
  if (k < 85)
    return 16 + (size_t)(r >> 8) % 1000;
  if (k < 98)
    return 1024 + (size_t)(r >> 8) % (60 * KiB);
  return 64 * KiB + (size_t)(r >> 8) % (400 * KiB);
}

static void *thread_main(void *arg)
{
  uint64_t id = (uint64_t)(uintptr_t)arg, r = mix64(id + 1);
  unsigned char *own[12];
  for (int i = 0; i < 12; i++) {
    r = mix64(r);
    own[i] = blk_new(size_for(r));
  }
  for (int i = 11; i >= 0; i -= 2)
    blk_free(own[i]);
  /* Free what an earlier thread left, leave a block of our own. */
  r = mix64(r);
  unsigned char *mine = blk_new(size_for(r));
  blk_free((unsigned char *)atomic_exchange(&slots[id % NSLOTS], (uintptr_t)mine));
  for (int i = 0; i < 12; i += 2)
    blk_free(own[i]);
  return NULL;
}

static size_t rss_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

#define SUCCESSORS 64
#define SUCCESSOR_BLOCKS 300

static void *successor_main(void *arg)
{
  (void)arg;
  unsigned char *b[SUCCESSOR_BLOCKS];
  for (int i = 0; i < SUCCESSOR_BLOCKS; i++) {
    b[i] = alloy_malloc(48);
    if (b[i])
      memset(b[i], i, 48);
  }
  for (int i = 0; i < SUCCESSOR_BLOCKS; i++)
    alloy_free(b[i]);
  return NULL;
}

/* The bin of 48-byte blocks (no other block of this test has that class). */
static unsigned bin_of_48(void)
{
  unsigned nbins = ctl_unsigned("arenas.nbins");
  for (unsigned j = 0; j < nbins; j++)
    if (ctl_fmt_u64("arenas.bin.%u.size", j) == 48)
      return j;
  CHECK_MSG(0, "no bin of 48 bytes");
  return 0;
}

static void check_successors_reuse_pages(void)
{
  unsigned j = bin_of_48();
  ctl_refresh();
  uint64_t made0 = ctl_fmt_u64("stats.arenas.0.bins.%u.nmalloc", j);
  for (int i = 0; i < SUCCESSORS; i++) {
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, successor_main, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
  }
  ctl_refresh();
  uint64_t made = ctl_fmt_u64("stats.arenas.0.bins.%u.nmalloc", j) - made0;
  size_t pages = ctl_fmt_u64("stats.arenas.0.bins.%u.curslabs", j);
  printf("successors: %d threads of %d blocks made %" PRIu64 " blocks available, %zu page(s) kept\n",
         SUCCESSORS, SUCCESSOR_BLOCKS, made, pages);
  CHECK_MSG(made >= SUCCESSOR_BLOCKS && made < 4 * SUCCESSOR_BLOCKS,
            "%" PRIu64 " blocks made available for %d threads of %d blocks", made, SUCCESSORS,
            SUCCESSOR_BLOCKS);
  CHECK_MSG(pages == 1, "%zu pages of the class kept", pages);
}

static size_t active_now(void);

static void *exiter_main(void *arg)
{
  uint64_t r = mix64((uint64_t)(uintptr_t)arg + 99);
  static _Thread_local void *b[3000];
  for (int i = 0; i < 3000; i++) {
    r = mix64(r);
    b[i] = alloy_malloc(16 + (size_t)(r % 985));
  }
  for (int i = 0; i < 3000; i++)
    alloy_free(b[i]);
  return NULL;
}

static void check_exited_pages_reclaimed(void)
{
  pthread_t t[8];
  size_t before = active_now();
  for (int wave = 0; wave < 2; wave++) {
    for (int i = 0; i < 8; i++)
      REQUIRE(pthread_create(&t[i], NULL, exiter_main, (void *)(uintptr_t)(wave * 8 + i)) == 0);
    for (int i = 0; i < 8; i++)
      REQUIRE(pthread_join(t[i], NULL) == 0);
  }
  size_t held = active_now();
  usleep(1200 * 1000); /* past dirty_decay_ms (1 s by default) */
  static void *mine[20000];
  for (int i = 0; i < 20000; i++)
    mine[i] = alloy_malloc(100); /* 2 MB: a few events of this thread */
  for (int i = 0; i < 20000; i++)
    alloy_free(mine[i]);
  size_t left = active_now();
  printf("exited heaps: %.2f MiB active before the threads, %.2f MiB after, %.2f MiB a decay period later\n",
         before / (double)MiB, held / (double)MiB, left / (double)MiB);
  /* The heaps the threads left are adopted: what stays is the empty page
   * per class that one heap keeps (about 0.8 MiB here), not one per heap
   * left (up to 6 MiB after the threads).  The last threads' events may
   * have adopted most of them already when `held` is read. */
  CHECK_MSG(left < 3 * MiB / 2, "stats.active %zu, was %zu before the threads and %zu after", left, before, held);
}

#define IDLE_BLOCKS 49152
#define IDLE_SIZE 1024
#define IDLE_KEPT 8 /* the main thread keeps every 8th block */
static unsigned char *idle_table[IDLE_BLOCKS], *idle_new[IDLE_BLOCKS];
static long long idle_grew; /* stats.active after - before (the main thread's pages may go back) */
static atomic_int idle_phase; /* 1: the worker allocates, 2: it is done */

/* (No CHECK here: the check counters are not atomic.) */
static size_t active_now(void)
{
  uint64_t e = 1;
  size_t v = 0, len = sizeof v;
  if (alloy_mallctl("epoch", NULL, NULL, &e, sizeof e) != 0 || alloy_mallctl("stats.active", &v, &len, NULL, 0) != 0)
    return 0;
  return v;
}

static void *idle_worker(void *arg)
{
  (void)arg;
  for (int i = 0; i < IDLE_BLOCKS; i++)
    if (i % IDLE_KEPT != 0)
      alloy_free(idle_table[i]);
  usleep(300 * 1000); /* the main thread, sleeping, is idle */
  size_t before = active_now();
  atomic_store(&idle_phase, 1);
  for (int i = 0; i < IDLE_BLOCKS; i++) {
    idle_new[i] = alloy_malloc(IDLE_SIZE);
    if (idle_new[i])
      memset(idle_new[i], i & 0xff, IDLE_SIZE);
  }
  idle_grew = (long long)active_now() - (long long)before;
  atomic_store(&idle_phase, 2);
  return NULL;
}

/* One round: the main thread fills the table, a worker frees 7 blocks in 8
 * and, past the idle delay, allocates as many again.  The main thread frees
 * the blocks it kept after the worker (`racing`: while the worker allocates
 * and may take its pages, so these frees land in pages that change owner
 * under them).  Returns the number of damaged blocks. */
static int idle_round(bool racing)
{
  for (int i = 0; i < IDLE_BLOCKS; i++) {
    idle_table[i] = alloy_malloc(IDLE_SIZE);
    REQUIRE(idle_table[i] != NULL);
    memset(idle_table[i], 3, IDLE_SIZE);
  }
  atomic_store(&idle_phase, 0);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, idle_worker, NULL) == 0);
  while (atomic_load(&idle_phase) < (racing ? 1 : 2))
    usleep(1000);
  int damaged = 0;
  for (int i = 0; i < IDLE_BLOCKS; i += IDLE_KEPT) {
    damaged += idle_table[i][0] != 3 || idle_table[i][IDLE_SIZE - 1] != 3;
    alloy_free(idle_table[i]);
  }
  REQUIRE(pthread_join(t, NULL) == 0);
  for (int i = 0; i < IDLE_BLOCKS; i++) {
    damaged += idle_new[i] == NULL || idle_new[i][0] != (i & 0xff) || idle_new[i][IDLE_SIZE - 1] != (i & 0xff);
    alloy_free(idle_new[i]);
  }
  return damaged;
}

static void check_idle_owner_pages_reused(void)
{
  int damaged = idle_round(false);
  size_t table = (size_t)IDLE_BLOCKS * IDLE_SIZE;
  printf("idle owner: a worker's %zu MiB of blocks grew stats.active by %.1f MiB\n", table / MiB,
         idle_grew / (double)MiB);
  CHECK_MSG(idle_grew < (long long)(table / 4 * 3), "stats.active grew by %lld bytes for a table of %zu", idle_grew, table);
  damaged += idle_round(true);
  CHECK_MSG(damaged == 0, "%d blocks damaged", damaged);
}

static int os_pipe[2];
static _Atomic(uint64_t) os_tid;
static atomic_int os_spin;

static void *os_reader(void *arg)
{
  (void)arg;
  atomic_store(&os_tid, os_thread_id());
  char c;
  return (void *)(intptr_t)read(os_pipe[0], &c, 1);
}

static void *os_spinner(void *arg)
{
  (void)arg;
  atomic_store(&os_tid, os_thread_id());
  while (atomic_load(&os_spin))
    ;
  return NULL;
}

static uint64_t wait_tid(void)
{
  uint64_t t;
  while ((t = atomic_load(&os_tid)) == 0)
    usleep(1000);
  return t;
}

static void check_os_thread_queries(void)
{
  CHECK_EQ(os_thread_waiting(os_thread_id()), 0);
  CHECK(os_thread_cpu_ns(os_thread_id()) != UINT64_MAX);
  CHECK_EQ(os_thread_waiting(INT32_MAX), -1);
  CHECK(os_thread_cpu_ns(INT32_MAX) == UINT64_MAX);
  CHECK(os_thread_cpu_ns(0) == UINT64_MAX);
  errno = 0; /* failed queries (no such thread: ENOENT, EINVAL) leave errno alone */
  CHECK_EQ(os_thread_waiting(4194305), -1); /* above pid_max's 2^22 limit: no thread, but asked */
  CHECK(os_thread_cpu_ns(4194305) == UINT64_MAX);
  CHECK_EQ(errno, 0);

  REQUIRE(pipe(os_pipe) == 0);
  pthread_t t;
  atomic_store(&os_tid, 0);
  REQUIRE(pthread_create(&t, NULL, os_reader, NULL) == 0);
  uint64_t tid = wait_tid();
  int waiting = 0;
  for (int i = 0; i < 2000 && (waiting = os_thread_waiting(tid)) != 1; i++)
    usleep(1000);
  CHECK_EQ(waiting, 1);
  uint64_t c1 = os_thread_cpu_ns(tid);
  usleep(30 * 1000);
  CHECK(c1 != UINT64_MAX && os_thread_cpu_ns(tid) == c1);
  REQUIRE(write(os_pipe[1], "x", 1) == 1);
  REQUIRE(pthread_join(t, NULL) == 0);
  close(os_pipe[0]);
  close(os_pipe[1]);

  atomic_store(&os_tid, 0);
  atomic_store(&os_spin, 1);
  REQUIRE(pthread_create(&t, NULL, os_spinner, NULL) == 0);
  tid = wait_tid();
  c1 = os_thread_cpu_ns(tid);
  int running = 0;
  for (int i = 0; i < 2000 && !running; i++) {
    usleep(1000);
    running = os_thread_waiting(tid) == 0 && os_thread_cpu_ns(tid) > c1;
  }
  CHECK(running);
  atomic_store(&os_spin, 0);
  REQUIRE(pthread_join(t, NULL) == 0);
}

#define BLOCKED_BLOCKS 32768
static unsigned char *blocked_table[BLOCKED_BLOCKS];
static long long blocked_grew, blocked_freed;
static int blocked_damaged;

static uint64_t frozen_ms;
static uint64_t frozen_clock(void) { return frozen_ms; }

static void *blocked_worker(void *arg)
{
  (void)arg;
  static unsigned char *mine[BLOCKED_BLOCKS];
  for (int i = 0; i < BLOCKED_BLOCKS; i++)
    if (i % IDLE_KEPT != 0) {
      blocked_damaged += blocked_table[i][0] != 5 || blocked_table[i][IDLE_SIZE - 1] != 5;
      alloy_free(blocked_table[i]);
      blocked_freed += IDLE_SIZE;
    }
  size_t before = active_now();
  for (int i = 0; i < BLOCKED_BLOCKS; i++)
    if (i % IDLE_KEPT != 0) {
      mine[i] = alloy_malloc(IDLE_SIZE);
      if (mine[i])
        memset(mine[i], 6, IDLE_SIZE);
    }
  blocked_grew = (long long)active_now() - (long long)before;
  for (int i = 0; i < BLOCKED_BLOCKS; i++)
    if (i % IDLE_KEPT != 0) {
      blocked_damaged += mine[i] == NULL || mine[i][0] != 6 || mine[i][IDLE_SIZE - 1] != 6;
      alloy_free(mine[i]);
    }
  return NULL;
}

static void check_blocked_owner_pages_reused(void)
{
  frozen_ms = os_now_ms();
  os_set_clock(frozen_clock);
  for (int i = 0; i < BLOCKED_BLOCKS; i++) {
    blocked_table[i] = alloy_malloc(IDLE_SIZE);
    REQUIRE(blocked_table[i] != NULL);
    memset(blocked_table[i], 5, IDLE_SIZE);
  }
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, blocked_worker, NULL) == 0);
  REQUIRE(pthread_join(t, NULL) == 0);
  os_set_clock(NULL);
  for (int i = 0; i < BLOCKED_BLOCKS; i += IDLE_KEPT) {
    blocked_damaged += blocked_table[i][0] != 5 || blocked_table[i][IDLE_SIZE - 1] != 5;
    alloy_free(blocked_table[i]);
  }
  printf("blocked owner: a worker's %.1f MiB of blocks grew stats.active by %.1f MiB\n",
         blocked_freed / (double)MiB, blocked_grew / (double)MiB);
  CHECK_MSG(blocked_grew < blocked_freed / 4 * 3, "stats.active grew by %lld bytes for %lld allocated",
            blocked_grew, blocked_freed);
  CHECK_MSG(blocked_damaged == 0, "%d blocks damaged", blocked_damaged);
}

#define BUSY_BLOCKS 256
#define BUSY_SIZE 512
static unsigned char *busy_blocks[BUSY_BLOCKS];
static atomic_int busy_ready, busy_stop, busy_damaged, idle_looks;

static void count_looks(int point, const void *obj)
{
  (void)obj;
  if (point == TEST_IDLE_LOOK)
    atomic_fetch_add(&idle_looks, 1);
}

static void *busy_worker(void *arg)
{
  (void)arg;
  for (int i = 0; i < BUSY_BLOCKS; i++) {
    busy_blocks[i] = alloy_malloc(BUSY_SIZE);
    if (busy_blocks[i] == NULL)
      abort(); /* (REQUIRE's count is the main thread's) */
    memset(busy_blocks[i], 7, BUSY_SIZE);
  }
  atomic_store(&busy_ready, 1);
  volatile uint64_t spins = 0;
  while (!atomic_load(&busy_stop))
    spins++;
  for (int i = 1; i < BUSY_BLOCKS; i++) {
    if (busy_blocks[i][0] != 7 || busy_blocks[i][BUSY_SIZE - 1] != 7)
      atomic_fetch_add(&busy_damaged, 1);
    alloy_free(busy_blocks[i]);
  }
  return NULL;
}

static void check_busy_owner_looked_at_less(void)
{
  frozen_ms = os_now_ms();
  os_set_clock(frozen_clock);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, busy_worker, NULL) == 0);
  while (!atomic_load(&busy_ready))
    sched_yield();
  alloy_free(busy_blocks[0]); /* into a full page of the worker's: pending */
  alloy__test_hook = count_looks;
  for (int i = 0; i < 16384; i++) { /* 64 MiB: 256 events of 256 KiB */
    unsigned char *p = alloy_malloc(4096);
    REQUIRE(p != NULL);
    p[0] = (unsigned char)i;
    alloy_free(p);
  }
  alloy__test_hook = NULL;
  atomic_store(&busy_stop, 1);
  REQUIRE(pthread_join(t, NULL) == 0);
  os_set_clock(NULL);
  int looks = atomic_load(&idle_looks);
  printf("busy owner: %d looks at its CPU clock over 256 events\n", looks);
  CHECK_MSG(looks >= 2, "the scan looked at the busy owner %d times (no pending page?)", looks);
  CHECK_MSG(looks <= 8, "the scan looked at the busy owner %d times: no back-off", looks);
  CHECK_MSG(atomic_load(&busy_damaged) == 0, "%d of the busy owner's blocks damaged", atomic_load(&busy_damaged));
}

int main(void)
{
  check_successors_reuse_pages();
  check_exited_pages_reclaimed();
  check_idle_owner_pages_reused();
  check_os_thread_queries();
  check_blocked_owner_pages_reused();
  check_busy_owner_looked_at_less();

#ifdef UNDER_SANITIZER
  long nthreads = 5000;
#else
  long nthreads = 20000;
#endif
  const char *env = getenv("CHURN_THREADS");
  if (env && atol(env) > 0)
    nthreads = atol(env);

  /* Warm up this thread's heap, then take the baseline. */
  alloy_free(alloy_malloc(100));
  alloy_stats_t s0, s;
  alloy_stats_get(&s0);
  size_t rss_max = rss_bytes(), mapped_max = s0.mapped;

  for (long base = 0; base < nthreads; base += AT_ONCE) {
    pthread_t t[AT_ONCE];
    int n = 0;
    for (long i = base; i < base + AT_ONCE && i < nthreads; i++, n++)
      REQUIRE(pthread_create(&t[n], NULL, thread_main, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < n; i++)
      REQUIRE(pthread_join(t[i], NULL) == 0);
    if (base % 248 == 0 || base + AT_ONCE >= nthreads) {
      size_t rss = rss_bytes();
      alloy_stats_get(&s);
      if (rss > rss_max)
        rss_max = rss;
      if (s.mapped > mapped_max)
        mapped_max = s.mapped;
      if (base % 4960 == 0)
        printf("after %5ld threads: rss %6.1f MiB, mapped %6.1f MiB, heaps in use %" PRIu64
               ", abandoned %" PRIu64 "\n",
               base + n, rss / (double)MiB, s.mapped / (double)MiB, s.threads, s.abandoned);
    }
  }
  for (int i = 0; i < NSLOTS; i++)
    blk_free((unsigned char *)atomic_exchange(&slots[i], 0));
  alloy_collect();
  alloy_stats_get(&s);
  int64_t drift = (int64_t)s.allocated - (int64_t)s0.allocated;
  printf("%ld threads: max rss %.1f MiB, max mapped %.1f MiB; at the end allocated %" PRIu64
         " (baseline %" PRIu64 ", drift %" PRId64 "), mapped %.1f MiB, heaps in use %" PRIu64
         ", abandoned %" PRIu64 "\n",
         nthreads, rss_max / (double)MiB, mapped_max / (double)MiB, s.allocated, s0.allocated,
         drift, s.mapped / (double)MiB, s.threads, s.abandoned);
  CHECK_EQ(atomic_load(&bad_blocks), 0);
  CHECK_EQ(atomic_load(&failed_allocs), 0);
#ifndef UNDER_SANITIZER
  CHECK_MSG(rss_max < RSS_LIMIT, "RSS reached %zu MiB (limit %zu MiB)", rss_max / MiB,
            RSS_LIMIT / MiB);
#endif
  CHECK_MSG(mapped_max < RSS_LIMIT, "alloy mapped %zu MiB (limit %zu MiB)", mapped_max / MiB,
            RSS_LIMIT / MiB);
  CHECK_MSG(drift >= -(int64_t)MiB && drift <= (int64_t)MiB,
            "allocated %" PRIu64 " is not within 1 MiB of its baseline %" PRIu64, s.allocated,
            s0.allocated);
  CHECK_MSG(s.abandoned <= 64, "%" PRIu64 " heaps left abandoned", s.abandoned);
  CHECK_LE(s.threads, 1);
  /* Still working. */
  unsigned char *p = blk_new(1000);
  CHECK_NOT_NULL(p);
  blk_free(p);
  return check_done();
}
