/*
 * test_page.c - one page (src/page.c) on a buffer of its own: blocks carved
 * lazily (about 4 KiB at a time) and handed out in address order from the
 * bitmaps, words skipped and refilled, other threads' frees (remote bits,
 * set concurrently by several threads) folded in without touching a block,
 * a block freed twice across the two bitmaps reported and counted once,
 * block validation.  Then, through the API: blocks freed by another thread
 * come back to the owner both from pages in its queues and from pages it
 * had parked full (the wake-up protocol), and none of it reads the blocks.
 */
#include "check.h"
#include "internal.h"
#include "fastpath.h"
#include "testutil.h"

#include <alloy.h>
#include <pthread.h>
#include <stdatomic.h>

/* A segment-sized buffer laid out as a class segment is (header, bitmap
 * slice, then the page at slice 2): a page finds its bitmaps from where its
 * descriptor sits (page_bits). */
static segment_t *seg;
static page_t *page;
static uint8_t *area;
static page_bits_t *bits;

/* What heap.c does on malloc: the lowest free block of the page. */
static void *pop(page_t *pg) {
  if (pg->free_summary == 0 && !page_refill(pg)) return NULL;
  return page_pop_lowest(pg, pg->free_summary);
}

/* What fast_malloc does first: the page's last block when tagged freed. */
static void *page_take_last(page_t *pg) {
  if (!(pg->last & LAST_FREED)) return NULL;
  uint8_t *p = page_last_freed_block(pg);
  return page_take_tagged(pg, p) ? p : NULL;
}

static size_t index_of(const page_t *pg, const void *p) { return (size_t)((const uint8_t *)p - pg->start) / pg->block_size; }

/* What publishing another thread's free does (remote.c): its remote bit and summary. */
static void publish_remote(page_t *pg, const void *p) {
  size_t i = index_of(pg, p);
  uint64_t old = atomic_fetch_or(&page_bits(pg)->word[i / 64].remote, (uint64_t)1 << (i % 64));
  if (old == 0) atomic_fetch_or(&pg->remote_summary, (uint64_t)1 << (i / 64));
}

static void fresh_page(size_t bsize) {
  if (seg == NULL) {
    seg = aligned_alloc(SEGMENT_SIZE, SEGMENT_SIZE);
    REQUIRE(seg != NULL);
    page = &seg->pages[CLASS_FIRST_SLICE];
    area = (uint8_t *)seg + CLASS_FIRST_SLICE * SLICE_SIZE;
    bits = (page_bits_t *)((uint8_t *)seg + SLICE_SIZE) + CLASS_FIRST_SLICE;
  }
  REQUIRE(page_bits(page) == bits);
  memset(page, 0, sizeof *page);
  page->slice_count = 1;
  page->slice_index = CLASS_FIRST_SLICE;
  page->start = area;
  page_init(page, size_class_of(bsize), bsize);
}

static void test_carving_order(void) {
  fresh_page(64);
  CHECK_EQ(page->reserved, SLICE_SIZE / 64);
  CHECK_EQ(page->capacity, 4096 / 64); /* one OS page's worth carved */
  for (size_t i = 0; i < page->reserved; i++) {
    uint8_t *p = pop(page);
    REQUIRE(p != NULL);
    CHECK_EQ_PTR(p, area + i * 64); /* address order, carving as it goes */
  }
  CHECK_EQ(page->capacity, page->reserved);
  CHECK_NULL(pop(page)); /* full */
  CHECK_EQ(page->used, page->reserved);
  CHECK(!page_has_free(page));
  /* a few owner frees, then the lowest comes first again */
  size_t freed[] = {300, 3, 64, SLICE_SIZE / 64 - 1};
  for (size_t k = 0; k < 4; k++) {
    size_t i = freed[k];
    bits->word[i / 64].free |= (uint64_t)1 << (i % 64);
    page->free_summary |= (uint64_t)1 << (i / 64);
    page->used--;
  }
  /* they come back, each once (the current word's first: it is in cache) */
  uint64_t seen = 0;
  for (int k = 0; k < 4; k++) {
    uint8_t *p = pop(page);
    REQUIRE(p != NULL);
    for (size_t j = 0; j < 4; j++)
      if (p == area + freed[j] * 64) seen |= 1u << j;
  }
  CHECK_EQ(seen, 15);
  CHECK_NULL(pop(page));
}

static void test_large_class_carving(void) {
  fresh_page(5120); /* 6 blocks in 32 KiB (12 in 64 KiB); at least four carved at a time */
  CHECK_EQ(page->reserved, SLICE_SIZE / 5120);
  CHECK_EQ(page->capacity, 4);
  for (size_t i = 0; i < SLICE_SIZE / 5120; i++) CHECK_NOT_NULL(pop(page));
  CHECK_EQ(page->capacity, SLICE_SIZE / 5120);
  CHECK_NULL(pop(page));
}

/* Several threads free blocks of the page at once through the remote bits;
 * the owner folds them all in, each exactly once. */
enum { NB64 = SLICE_SIZE / 64 }; /* blocks of 64 bytes in a page */
enum { PUSHERS = 4 };
static void *blocks_to_free[NB64];
static atomic_int go;

static void *pusher(void *arg) {
  size_t t = (size_t)(uintptr_t)arg;
  while (!atomic_load(&go)) {
  }
  for (size_t i = t; i < NB64; i += PUSHERS) publish_remote(page, blocks_to_free[i]);
  return NULL;
}

static void test_remote_collect(void) {
  fresh_page(64);
  for (size_t i = 0; i < NB64; i++) blocks_to_free[i] = pop(page);
  CHECK_EQ(page->used, NB64);
  pthread_t t[PUSHERS];
  for (uintptr_t i = 0; i < PUSHERS; i++) pthread_create(&t[i], NULL, pusher, (void *)i);
  atomic_store(&go, 1);
  uint32_t collected = 0;
  for (int spins = 0; collected < NB64 && spins < 1000000; spins++) collected += page_collect_remote(page);
  for (int i = 0; i < PUSHERS; i++) pthread_join(t[i], NULL);
  collected += page_collect_remote(page);
  CHECK_EQ(collected, NB64);
  CHECK_EQ(page->used, 0);
  static uint8_t back[NB64]; /* all back, each once */
  for (size_t i = 0; i < NB64; i++) {
    uint8_t *p = pop(page);
    REQUIRE(p != NULL);
    back[index_of(page, p)]++;
  }
  for (size_t i = 0; i < NB64; i++) CHECK_EQ(back[i], 1);
  CHECK_NULL(pop(page));
}

/* A block freed by the owner and again by another thread: the second free
 * is found when the owner folds remote bits in, reported, counted once. */
static void test_double_across_bitmaps(void) {
  fresh_page(256);
  void *a = pop(page), *b = pop(page);
  size_t ia = index_of(page, a);
  bits->word[ia / 64].free |= (uint64_t)1 << (ia % 64); /* the owner's free of a */
  page->free_summary |= 1;
  page->used--;
  publish_remote(page, a); /* ... and another thread's: a double free */
  publish_remote(page, b); /* a legitimate one */
  report_set_abort(false);
  CHECK_EQ(page_collect_remote(page), 1); /* b only */
  report_set_abort(true);
  CHECK_EQ(page->used, 0);
}

/* The hint of the last block (page->last, fastpath.h): taken back only
 * when tagged freed and its free bit is set; any other state leaves the
 * bitmap alone and returns NULL. */
static void test_last_block_hint(void) {
  fresh_page(256);
  uint8_t *a = pop(page), *b = pop(page);
  size_t ib = index_of(page, b);
  page_note_last(page, (uintptr_t)b);
  CHECK_NULL(page_take_last(page)); /* handed out, not freed since */
  page_free_last(page, a);          /* not the last one: no change */
  CHECK_EQ(page->last, (uintptr_t)b ^ LAST_KEY);
  bits->word[ib / 64].free |= (uint64_t)1 << (ib % 64); /* the owner frees b */
  page->free_summary |= (uint64_t)1 << (ib / 64);
  page->used--;
  page_free_last(page, b);
  CHECK_EQ(page->last, ((uintptr_t)b | LAST_FREED) ^ LAST_KEY);
  uint32_t used = page->used;
  CHECK_EQ_PTR(page_take_last(page), b); /* back first, though lower blocks are free */
  CHECK_EQ(page->last, (uintptr_t)b ^ LAST_KEY);
  CHECK_EQ(page->used, used + 1);
  CHECK(!(bits->word[ib / 64].free & (uint64_t)1 << (ib % 64)));
  /* a tag on a block whose bit is clear (it cannot happen: every other
   * way out of the bitmap moves `last`) hands nothing out */
  page_note_last(page, (uintptr_t)b | LAST_FREED);
  CHECK_NULL(page_take_last(page));
  CHECK_EQ(page->used, used + 1);
  CHECK_EQ(page->last, (uintptr_t)b ^ LAST_KEY);
}

/* The free summary is exact: bit w set exactly when free word w has a
 * free block, whichever way a block went (malloc's lowest block, the hint,
 * an owner's free), so malloc's word is never empty; and malloc hands out
 * the lowest free block of the page. */
static bool summary_exact(const page_t *pg) {
  for (unsigned w = 0; w < BITMAP_WORDS; w++)
    if ((bool)(pg->free_summary >> w & 1) != (bits->word[w].free != 0)) return false;
  return true;
}
static size_t lowest_free(void) {
  for (size_t i = 0; i < NB64; i++)
    if (bits->word[i / 64].free >> (i % 64) & 1) return i;
  return NB64;
}
static void test_summary_exact(void) {
  fresh_page(64);
  static uint8_t live[NB64];
  memset(live, 0, sizeof live);
  uint64_t x = 88172645463325252ull; /* xorshift */
  int bad = 0, wrong_block = 0, hints = 0;
  size_t last = 0; /* the block handed out last: often freed next (LIFO use, the hint's case) */
  for (int step = 0; step < 40000; step++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t i = x & 4 ? last : (size_t)(x >> 20) % NB64;
    if ((x & 3) != 0 && live[i]) { /* the owner frees block i */
      bits->word[i / 64].free |= (uint64_t)1 << (i % 64);
      page->free_summary |= (uint64_t)1 << (i / 64);
      page->used--;
      live[i] = 0;
      page_free_last(page, area + i * 64);
    } else if (page->last & LAST_FREED) {
      uint8_t *p = page_take_last(page);
      REQUIRE(p != NULL);
      live[last = index_of(page, p)] = 1;
      hints++;
    } else {
      size_t want = lowest_free();
      uint8_t *p = pop(page);
      if (p == NULL) continue; /* all 512 live (the page is carved whole by now) */
      if (page->capacity == page->reserved && index_of(page, p) != want) wrong_block++;
      live[last = index_of(page, p)] = 1;
    }
    if (!summary_exact(page)) bad++;
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(wrong_block, 0);
  CHECK(hints > 1000); /* the hint's path ran, and kept the summary too */
}

static void test_validation(void) {
  fresh_page(96);
  void *p = pop(page);
  CHECK_NULL(page_check_block(page, p));
  CHECK_NOT_NULL(page_check_block(page, (uint8_t *)p + 16));            /* interior */
  CHECK_NOT_NULL(page_check_block(page, area + 96 * page->capacity));   /* not carved yet */
  CHECK_NOT_NULL(page_check_block(page, area + 96 * page->reserved));   /* past the blocks */
  CHECK_NOT_NULL(page_check_block(page, (uint8_t *)(uintptr_t)((uintptr_t)area - 96))); /* before the page */
}

/* ------------------------------------------------ through the allocator */

enum { N = 20000 };
static void *v[N];

static void *free_all(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) alloy_free(v[i]); /* every free is another thread's */
  return NULL;
}

/* The owner's pages fill up (parked full), another thread frees every
 * block, the owner allocates again: it gets its own memory back (pages
 * woken from the full list, remote bits folded in), no new segment. */
static void test_remote_reuse_through_api(void) {
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) v[i] = alloy_malloc(100);
    alloy_stats_t s0, s1;
    alloy_stats_get(&s0);
    pthread_t t;
    pthread_create(&t, NULL, free_all, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++) v[i] = alloy_malloc(100);
    alloy_stats_get(&s1);
    CHECK_MSG(s1.segments <= s0.segments, "round %d: segments %llu -> %llu: the freed pages were not reused", round,
              (unsigned long long)s0.segments, (unsigned long long)s1.segments);
    for (int i = 0; i < N; i++) alloy_free(v[i]);
  }
}

/* Through the API: the block handed out last and freed comes back first,
 * before lower free blocks of its page; then the bitmap's lowest.  48 B
 * takes the fast path's direct slot, 4000 B the second tier's class page. */
static void last_block_comes_back(size_t size) {
  enum { K = 40 };
  uint8_t *x[K], *lo = NULL, *hi = NULL;
  int n = 0;
  /* two neighbours of one page, the higher allocated last (a pair that
   * straddles two pages is kept aside and another one taken) */
  while (n + 2 <= K) {
    lo = alloy_malloc(size);
    hi = alloy_malloc(size);
    if (segment_page_lookup(lo) == segment_page_lookup(hi) && lo < hi) break;
    x[n++] = lo;
    x[n++] = hi;
    lo = hi = NULL;
  }
  REQUIRE(lo != NULL);
  alloy_free(lo);
  alloy_free(hi);
  CHECK_EQ_PTR(alloy_malloc(size), hi);
  CHECK_EQ_PTR(alloy_malloc(size), lo);
  alloy_free(lo);
  alloy_free(hi);
  for (int i = 0; i < n; i++) alloy_free(x[i]);
}

static void test_last_block_through_api(void) {
  last_block_comes_back(48);
  last_block_comes_back(4000);
}

int main(void) {
  process_init();
  test_carving_order();
  test_large_class_carving();
  test_remote_collect();
  test_double_across_bitmaps();
  test_last_block_hint();
  test_summary_exact();
  test_validation();
  test_remote_reuse_through_api();
  test_last_block_through_api();
  return check_done();
}
