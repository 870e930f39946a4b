/*
 * test_thp_auto.c - thp:auto (src/segment.c): class segments
 * made while the process holds less than 32 MiB of segments keep 4 KiB
 * pages (a small process stays small), and so do those made while there
 * are fewer than 4 segments per thread heap (many threads' partly used
 * pages); other class segments are advised HUGEPAGE before their first
 * write, and where the kernel can (THP on, faults allowed to compact for
 * advised ranges) are backed by huge pages; large blocks' segments never
 * are (a buffer written in one OS page must not make 2 MiB resident); a
 * huge segment given back loses its advice.  stats.thp.segments counts
 * the huge segments.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>
#include <pthread.h>

#include "thp_smaps.h"

enum { BLOCK = 1000, PART = 48 << 20, N = PART / BLOCK, MAX_SEGS = 3 * PART / SEGMENT_SIZE + 16 };
enum { THREADS = 20 };

static void *blocks[3][N];
static segment_t *segs[MAX_SEGS]; /* in the order they first served a block */
static size_t nsegs;

static void note_segment(segment_t *seg) {
  for (size_t i = 0; i < nsegs; i++)
    if (segs[i] == seg) return;
  if (nsegs < MAX_SEGS) segs[nsegs++] = seg;
}

/* PART bytes of blocks, written; returns the index of the first segment
 * they took that the process did not have before */
static size_t fill(void **b) {
  size_t first = nsegs;
  for (size_t i = 0; i < N; i++) {
    b[i] = alloy_malloc(BLOCK);
    REQUIRE(b[i] != NULL);
    memset(b[i], 1, BLOCK);
    note_segment(segment_of(b[i]));
  }
  return first;
}

/* stats.thp.segments: the live segments advised HUGEPAGE */
static uint64_t huge_stat(void) {
  uint64_t n = UINT64_MAX;
  size_t len = sizeof n;
  CHECK_EQ(alloy_mallctl("stats.thp.segments", &n, &len, NULL, 0), 0);
  return n;
}

static size_t count_huge(size_t from, size_t to) {
  size_t n = 0;
  for (size_t i = from; i < to; i++) n += segs[i]->huge;
  return n;
}

static pthread_barrier_t parked, release;

static void *holder(void *arg) { /* a thread heap in use until released */
  void *p = alloy_malloc(64);
  pthread_barrier_wait(&parked);
  pthread_barrier_wait(&release);
  alloy_free(p);
  return arg;
}

int main(void) {
  CHECK_EQ(alloy__options.thp, THP_DEFAULT); /* the default: the system's policy */
  alloy__options.thp = THP_AUTO;            /* before the first allocation sets up the process */
  char policy[32];
  bool madvise_policy = strcmp(thp_setting("enabled", policy, sizeof policy), "madvise") == 0;
  const size_t threshold = (size_t)(32 << 20) / SEGMENT_SIZE;

  /* one thread: the first 32 MiB of segments without huge pages, then
   * every class segment with them */
  fill(blocks[0]);
  size_t small = 0;
  while (small < nsegs && !segs[small]->huge) small++;
  CHECK_LE(1, small);
  CHECK_LE(small, threshold);
  CHECK_LE(threshold - 1, small); /* the test's own segments: none else */
  CHECK_EQ(count_huge(small, nsegs), nsegs - small);
  CHECK_LE(4u, nsegs - small);
  CHECK_EQ(huge_stat(), nsegs - small); /* the process's only huge segments are the test's */
  if (madvise_policy) CHECK_EQ(anon_huge_kb(segs[0]), 0);
  long huge_kb = process_anon_huge_kb();
  if (thp_fault_huge() && huge_kb >= 0) CHECK_LE(2048L * (long)(nsegs - small - 1), huge_kb);

  /* a large block's segment: never huge, however big the process */
  void *large = alloy_malloc(256 << 10);
  REQUIRE(large != NULL);
  CHECK_EQ(segment_of(large)->huge, 0);
  alloy_free(large);

  /* many thread heaps: fewer than 4 segments each, no huge segment */
  pthread_t t[THREADS];
  REQUIRE(pthread_barrier_init(&parked, NULL, THREADS + 1) == 0);
  REQUIRE(pthread_barrier_init(&release, NULL, THREADS + 1) == 0);
  for (int i = 0; i < THREADS; i++) REQUIRE(pthread_create(&t[i], NULL, holder, NULL) == 0);
  pthread_barrier_wait(&parked);
  CHECK_LE((uint64_t)THREADS + 1, segment_thread_heaps());
  size_t crowded = fill(blocks[1]);
  CHECK_LE(nsegs + 1, 4 * (size_t)(THREADS + 1)); /* still fewer than 4 a heap */
  CHECK_EQ(count_huge(crowded, nsegs), 0);
  pthread_barrier_wait(&release);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  CHECK_LE(segment_thread_heaps(), 1);

  /* the threads gone: huge again */
  size_t alone = fill(blocks[2]);
  CHECK_EQ(count_huge(alone, nsegs), nsegs - alone);
  CHECK_LE(4u, nsegs - alone);

  /* given back, a huge segment's frame is advised against huge pages, so
   * that a big block carved from it later is not made resident whole */
  segment_t *last = segs[nsegs - 1];
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < N; i++) alloy_free(blocks[k][i]);
  alloy_collect();
  if (thp_eligible(last) >= 0) CHECK_EQ(thp_eligible(last), 0); /* NOHUGEPAGE: 0 under any policy */
  CHECK_LE(huge_stat(), 1); /* all given back, but for a spare segment kept */
  printf("segments: %zu with 4 KiB pages first, %zu made beside %d threads, %zu after; policy %s\n",
         small, alone - crowded, THREADS, nsegs - alone, policy);
  return check_done();
}
