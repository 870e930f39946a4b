/*
 * test_sparse.c - the decay of mostly empty class pages (heap.c,
 * heap_sweep_sparse; page.c, page_purge_free), against a fake clock: the
 * free OS pages of a page with a quarter or less of its blocks live, and
 * no malloc taking from it, go back to the OS at the second sweep (half a
 * dirty_decay_ms apart) that finds it so, never at the first, never with
 * dirty_decay_ms:-1 or sparse_purge:false, at once on alloy_collect, and
 * no more often than every 10 ms with dirty_decay_ms:0; live blocks keep
 * their bytes, and the purged blocks serve mallocs again.
 */
#include "check.h"
#include "fake_clock.h"
#include "internal.h"

#include <alloy.h>
#include <sys/mman.h>

/* 4 MiB of 2 KiB blocks, one in 16 kept: one-slice pages of 16 or 32 blocks
 * keep one or two live, and 7 OS pages of every 8 hold none. */
enum { BLOCK = 2048, NBLOCKS = 4 * 1024 * 1024 / BLOCK, KEEP_EVERY = 16 };
static unsigned char *blocks[NBLOCKS];

/* OS pages of the freed blocks' memory (between the kept blocks) that are
 * resident: 14 a page before a purge. */
static size_t freed_resident_pages(void) {
  size_t ps = os_page_size(), n = 0;
  unsigned char vec[1];
  for (int i = 0; i + KEEP_EVERY < NBLOCKS; i += KEEP_EVERY) {
    uintptr_t a = ((uintptr_t)blocks[i] + BLOCK + ps - 1) & ~(ps - 1);
    uintptr_t b = (uintptr_t)blocks[i + KEEP_EVERY] & ~(ps - 1);
    if (b <= a || b - a > (size_t)KEEP_EVERY * BLOCK) continue; /* not neighbours in one page */
    for (uintptr_t q = a; q < b; q += ps)
      if (mincore((void *)q, ps, vec) == 0 && (vec[0] & 1)) n++;
  }
  return n;
}

/* Makes the pages sparse; returns freed_resident_pages(), checked to be
 * many (the memset made them resident: 6 OS pages between kept
 * neighbours), so that no later "still resident" check holds vacuously. */
static size_t make_sparse(void) {
  for (int i = 0; i < NBLOCKS; i++) {
    blocks[i] = alloy_malloc(BLOCK);
    REQUIRE(blocks[i] != NULL);
    memset(blocks[i], 0x5a, BLOCK);
  }
  for (int i = 0; i < NBLOCKS; i++)
    if (i % KEEP_EVERY != 0) {
      alloy_free(blocks[i]);
      blocks[i] = NULL;
    } else {
      memset(blocks[i], (unsigned char)i, BLOCK);
    }
  size_t resident = freed_resident_pages();
  CHECK_GE(resident, 40 * 6);
  return resident;
}

static void free_kept(void) {
  for (int i = 0; i < NBLOCKS; i += KEEP_EVERY) {
    alloy_free(blocks[i]);
    blocks[i] = NULL;
  }
}

/* The kept blocks still hold what was written. */
static void check_kept(void) {
  for (int i = 0; i < NBLOCKS; i += KEEP_EVERY)
    for (int j = 0; j < BLOCK; j++)
      if (blocks[i][j] != (unsigned char)i) {
        CHECK_MSG(0, "block %d byte %d changed to %#x", i, j, blocks[i][j]);
        return;
      }
}

static void test_two_sweeps(void) {
  alloy__options.dirty_decay_ms = 1000;
  fake_ms += 10000;
  run_events(); /* a sweep now: it finds no sparse page of ours */
  size_t before = make_sparse();
  uint64_t p0 = purged();
  fake_ms += 100; /* within half a period: no sweep */
  run_events();
  fake_ms += 500; /* first sweep: finds the pages, purges nothing */
  run_events();
  CHECK_EQ(freed_resident_pages(), before);
  CHECK_LT(purged() - p0, 8 * SLICE_SIZE); /* free slices run_events left may go */
  uint64_t p1 = purged();
  fake_ms += 500; /* second sweep: still sparse and idle, purged */
  run_events();
  size_t after = freed_resident_pages();
  CHECK_MSG(after * 4 < before, "%zu of %zu OS pages of freed blocks still resident", after, before);
  CHECK_GE(purged() - p1, (uint64_t)(before - after) * os_page_size());
  check_kept();
  /* the purged blocks serve again: written, read back */
  static unsigned char *again[NBLOCKS];
  for (int i = 0; i < NBLOCKS; i++) {
    again[i] = alloy_malloc(BLOCK);
    REQUIRE(again[i] != NULL);
    memset(again[i], 0xa5, BLOCK);
  }
  check_kept();
  for (int i = 0; i < NBLOCKS; i++) {
    CHECK_EQ(again[i][0], 0xa5);
    CHECK_EQ(again[i][BLOCK - 1], 0xa5);
    alloy_free(again[i]);
  }
  /* having served their class again (each was first in its queue), the
   * pages start over: mostly empty again at the same use, they are purged
   * again (a stale mark of the last purge would keep them) */
  size_t refilled = freed_resident_pages();
  CHECK_GE(refilled, before / 2);
  fake_ms += 500;
  run_events();
  fake_ms += 500;
  run_events();
  after = freed_resident_pages();
  CHECK_MSG(after * 4 < refilled, "%zu of %zu OS pages still resident after the second purge", after, refilled);
  check_kept();
  free_kept();
}

static void test_never(bool decay_never) {
  alloy__options.dirty_decay_ms = decay_never ? -1 : 1000;
  alloy__options.sparse_purge = decay_never;
  size_t before = make_sparse();
  for (int i = 0; i < 4; i++) {
    fake_ms += 10000;
    run_events();
  }
  CHECK_EQ(freed_resident_pages(), before);
  check_kept();
  free_kept();
  alloy__options.sparse_purge = true;
}

static void test_collect(void) {
  alloy__options.dirty_decay_ms = 1000;
  size_t before = make_sparse();
  alloy_collect(); /* at once */
  size_t after = freed_resident_pages();
  CHECK_MSG(after * 4 < before, "%zu of %zu OS pages of freed blocks still resident", after, before);
  check_kept();
  free_kept();
}

/* With dirty_decay_ms 0 (or 1), sweeps still come at most every
 * SPARSE_SWEEP_MIN_MS (10 ms), not at every event: each walks every page
 * of the heap's queues. */
static void test_sweep_floor(void) {
  alloy__options.dirty_decay_ms = 0;
  heap_t *heap = heap_get();
  fake_ms += 10000;
  run_events();
  uint64_t swept = heap->sweep_ms;
  CHECK_EQ(swept, fake_ms);
  fake_ms += 5;
  run_events();
  CHECK_EQ(heap->sweep_ms, swept); /* 5 ms later: no sweep */
  fake_ms += 5;
  run_events();
  CHECK_EQ(heap->sweep_ms, fake_ms); /* 10 ms: one */
  /* and pages still go: a mostly empty page is purged within two sweeps */
  size_t before = make_sparse();
  for (int i = 0; i < 3; i++) {
    fake_ms += 10;
    run_events();
  }
  size_t after = freed_resident_pages();
  CHECK_MSG(after * 4 < before, "%zu of %zu OS pages of freed blocks still resident", after, before);
  check_kept();
  free_kept();
  alloy__options.dirty_decay_ms = 1000;
}

int main(void) {
  os_set_clock(fake_clock);
  fake_ms = 1000000;
  alloy_free(alloy_malloc(1)); /* the thread's heap exists before the clock matters */
  test_two_sweeps();
  test_never(true);
  test_never(false);
  test_collect();
  test_sweep_floor();
  os_set_clock(NULL);
  return check_done();
}
