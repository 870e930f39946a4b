/*
 * test_segment.c - the back end (src/segment.c, src/pagemap.c):
 *
 *   map        the page map knows alloy's frames and nothing else (stack,
 *              globals, glibc's heap, NULL, addresses beyond the address
 *              space); no block lives in a header or bitmap slice
 *   large      large blocks are page-granular and slice-aligned; any thread
 *              frees them; one grows in place into free slices after it
 *   big        big blocks take runs of frames; a freed one becomes a free
 *              run that the next big block reuses (no new mapping, no
 *              system call); neighbours join; a bigger request splits a run
 *              and its tail stays free; the run is purged after the decay
 *              period (fake clock) and kept (retained), not unmapped
 *   cache      a thread's freed large blocks (up to 256 KiB) stay in its
 *              heap: its next large block of as many slices takes the span
 *              back; the block is freed meanwhile for every query; the
 *              decay pass and the thread's exit give the spans back
 *   shared     pages one thread gave back are another thread's at once: no
 *              new segment for the second thread
 *   failure    a failing OS gives NULL and ENOMEM, no damage; retained
 *              frames are unmapped to make room when a mapping fails
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MiB ALLOY_MiB

static int global_object;

static void test_map(void) {
  int local = 0;
  void *small = alloy_malloc(100);
  REQUIRE(small != NULL);
  CHECK(pagemap_owns(small));
  CHECK(!pagemap_owns(&local));
  CHECK(!pagemap_owns(&global_object));
  CHECK(!pagemap_owns(NULL));
  void *libc_block = malloc(100); /* glibc's, in this test */
  CHECK(!pagemap_owns(libc_block));
  free(libc_block);
  CHECK(!pagemap_owns((void *)~(uintptr_t)0)); /* beyond the address space */
  CHECK_EQ(pagemap_lookup((void *)~(uintptr_t)0), 0);
  CHECK_GE((uintptr_t)small - (uintptr_t)segment_of(small), CLASS_FIRST_SLICE * SLICE_SIZE);
  page_t *page = segment_page_of(segment_of(small), small);
  CHECK_EQ(page->kind, PAGE_SMALL);
  CHECK_ALIGNED(page->start, SLICE_SIZE);
  alloy_free(small);
}

static void *free_elsewhere(void *p) {
  alloy_free(p);
  return NULL;
}

static void test_large(void) {
  size_t ps = os_page_size();
  void *large = alloy_malloc(100 * 1024 + 1);
  REQUIRE(large != NULL);
  page_t *page = segment_page_lookup(large);
  CHECK_EQ(page->kind, PAGE_LARGE);
  CHECK_ALIGNED(large, SLICE_SIZE);
  CHECK_GE((uintptr_t)large - (uintptr_t)segment_of(large), LARGE_FIRST_SLICE * SLICE_SIZE);
  CHECK_EQ(alloy_usable_size(large), (100 * 1024 + 1 + ps - 1) / ps * ps);
  /* grows in place while the slices after it are free */
  void *grown = alloy_realloc(large, 300 * 1024);
  CHECK_EQ_PTR(grown, large);
  CHECK_EQ(alloy_usable_size(grown), 300 * 1024);
  pthread_t t; /* freed by another thread, directly into the back end */
  pthread_create(&t, NULL, free_elsewhere, grown);
  pthread_join(t, NULL);
  CHECK(segment_was_freed(grown));
}

static void *large_round_trip(void *arg) {
  (void)arg;
  char *p = alloy_malloc(200 * 1024);
  if (p) memset(p, 3, 200 * 1024);
  alloy_free(p); /* cached in this thread's heap, which the exit empties */
  return NULL;
}

/* Threads that each cache 4 spans of 256 KiB and wait: together they
 * would keep 32 MiB, over LARGE_CACHE_TOTAL_MAX. */
enum { CAP_THREADS = 32 };
static heap_t *cap_heaps[CAP_THREADS];
static pthread_barrier_t cap_filled, cap_checked;
static void *cache_four(void *arg) {
  void *p[4];
  for (int i = 0; i < 4; i++) p[i] = alloy_malloc(LARGE_CACHE_BLOCK_MAX);
  for (int i = 0; i < 4; i++) alloy_free(p[i]);
  cap_heaps[(uintptr_t)arg] = heap_get();
  pthread_barrier_wait(&cap_filled);
  pthread_barrier_wait(&cap_checked);
  return NULL;
}

static void test_large_cache(void) {
  alloy_collect();
  alloy_stats_t s0, s1;
  char *a = alloy_malloc(100 * 1024);
  REQUIRE(a != NULL);
  memset(a, 1, 100 * 1024);
  alloy_stats_get(&s0);
  alloy_free(a);
  alloy_stats_get(&s1);
  CHECK(segment_was_freed(a)); /* no block: a second free is a double free */
  CHECK_EQ(s0.allocated - s1.allocated, 100 * 1024);
  CHECK_EQ(heap_get()->large_cached, 1);
  char *b = alloy_malloc(97 * 1024); /* as many slices (of 32 or 64 KiB): the span again */
  CHECK_EQ_PTR(b, a);
  CHECK_EQ(alloy_usable_size(b), large_usable(97 * 1024));
  CHECK_EQ(heap_get()->large_cached, 0);
  char *c = alloy_malloc(200 * 1024);
  alloy_free(b);
  char *d = alloy_malloc(200 * 1024); /* more slices: not b's span */
  CHECK(d != b);
  alloy_free(c);
  alloy_free(d);
  /* a block above LARGE_CACHE_BLOCK_MAX goes straight back */
  char *e = alloy_malloc(LARGE_CACHE_BLOCK_MAX + 1);
  unsigned n = heap_get()->large_cached;
  alloy_free(e);
  CHECK_EQ(heap_get()->large_cached, n);
  /* tcache:false: nothing kept */
  alloy__options.tcache = false;
  char *f = alloy_malloc(100 * 1024);
  alloy_free(f);
  CHECK_EQ(heap_get()->large_cached, n);
  alloy__options.tcache = true;
  /* a block shrunk in place gives its slices back (segment.c,
   * large_resize_locked): freed, its span is the new size's, kept */
  char *g = alloy_malloc(1024 * 1024);
  char *h = alloy_realloc(g, 100 * 1024);
  CHECK_EQ_PTR(h, g);
  CHECK_EQ(segment_page_lookup(h)->slice_count, (100 * 1024 + SLICE_SIZE - 1) / SLICE_SIZE);
  n = heap_get()->large_cached;
  alloy_free(h);
  CHECK_EQ(heap_get()->large_cached, n + 1);
  /* a cache that serves nothing over 8 of the heap's rare events goes back */
  alloy_free(alloy_malloc(100 * 1024));
  CHECK_GE(heap_get()->large_cached, 1);
  for (int i = 0; i < 4096; i++) alloy_free(alloy_malloc(1024)); /* 4 MiB: 16 events */
  CHECK_EQ(heap_get()->large_cached, 0);
  /* a thread's exit gives its spans back: 500 threads that each keep a
   * 200 KiB span would hold 125 MiB of slices otherwise */
  alloy_collect();
  size_t mapped0 = os_mapped_bytes();
  for (int i = 0; i < 500; i++) {
    pthread_t t;
    pthread_create(&t, NULL, large_round_trip, NULL);
    pthread_join(t, NULL);
  }
  CHECK_LE(os_mapped_bytes(), mapped0 + 16 * MiB);
}

static void test_big(void) {
  alloy_collect();
  size_t mapped0 = os_mapped_bytes();
  char *a = alloy_malloc(10 * MiB);
  REQUIRE(a != NULL);
  CHECK_EQ(segment_page_lookup(a)->kind, PAGE_BIG);
  CHECK_EQ(segment_page_lookup(a + 9 * MiB), segment_page_lookup(a)); /* every frame of it */
  CHECK_GE(os_mapped_bytes(), mapped0 + 10 * MiB);
  memset(a, 1, 10 * MiB);
  alloy_free(a);
  CHECK(segment_was_freed(a)); /* a second free would be reported */
  size_t mapped1 = os_mapped_bytes();
  /* the freed run is reused: same place, no new mapping */
  char *b = alloy_malloc(6 * MiB);
  CHECK_EQ_PTR(b, a);
  CHECK_EQ(os_mapped_bytes(), mapped1);
  /* the rest of the run (the split tail) serves the next one */
  char *c = alloy_malloc(3 * MiB);
  CHECK_GE((uintptr_t)c, (uintptr_t)b + 6 * MiB);
  CHECK_LT((uintptr_t)c, (uintptr_t)a + 12 * MiB);
  CHECK_EQ(os_mapped_bytes(), mapped1);
  alloy_free(b);
  alloy_free(c); /* joins b's run again: one run of at least 12 MiB */
  char *d = alloy_malloc(11 * MiB);
  CHECK_EQ_PTR(d, a);
  CHECK_EQ(os_mapped_bytes(), mapped1);
  alloy_free(d);
}

static uint64_t fake_ms = 1000000;
static uint64_t fake_clock(void) { return fake_ms; }

static void test_decay_retains(void) {
  os_set_clock(fake_clock);
  alloy_collect();
  char *a = alloy_malloc(20 * MiB);
  memset(a, 2, 20 * MiB);
  alloy_free(a);
  segment_totals_t t0, t1;
  segment_totals(&t0);
  CHECK_GE(t0.dirty, 20 * MiB);
  size_t mapped = os_mapped_bytes();
  fake_ms += 600;
  segment_decay(fake_ms, false);
  fake_ms += 600;
  segment_decay(fake_ms, false); /* freed more than dirty_decay_ms ago */
  segment_totals(&t1);
  CHECK_LE(t1.dirty + 20 * MiB, t0.dirty);
  CHECK_GE(t1.retained, 20 * MiB);
  CHECK_EQ(os_mapped_bytes(), mapped); /* purged, kept */
  /* reused purged: zero (calloc trusts it) */
  char *z = alloy_calloc(1, 18 * MiB);
  bool zero = true;
  for (size_t i = 0; i < 18 * MiB; i += 4096) zero &= z[i] == 0 && z[i + 4095] == 0;
  CHECK(zero);
  alloy_free(z);
  os_set_clock(NULL);
}

/* Holes between class pages (free slices one-slice pages left) are purged
 * when the pool grows for pages of more slices, which they cannot hold
 * (segment.c, purge_holes): without it they stayed resident until decay.
 * Only holes that were holes at the previous growth too: the growth right
 * after the holes appear leaves them (a program still building its live
 * set takes such holes back at once).  The clock stands still, so no decay
 * pass purges anything here. */
static size_t resident_bytes(const void *p, size_t n) {
  static unsigned char vec[SLICE_SIZE / 4096];
  size_t ps = os_page_size(), r = 0;
  if (mincore((void *)p, n, vec) != 0) return n;
  for (size_t i = 0; i < n / ps; i++) r += (vec[i] & 1) * ps;
  return r;
}

/* Bytes resident in the free slices of `seg`. */
static size_t holes_resident(const segment_t *seg) {
  size_t r = 0;
  for (size_t s = CLASS_FIRST_SLICE; s < SLICES_PER_SEGMENT; s++)
    if (seg->free_slices & ((uint64_t)1 << s)) r += resident_bytes((const uint8_t *)seg + s * SLICE_SIZE, SLICE_SIZE);
  return r;
}

/* Allocates medium blocks (4 of 20000 B a page: several slices) into
 * v[*n...] until the pool grows once; false when `max` did not do it. */
static bool medium_until_growth(char **v, int *n, int max) {
  segment_totals_t t;
  segment_totals(&t);
  uint64_t segments = t.segments;
  while (*n < max && t.segments == segments) {
    v[(*n)++] = alloy_malloc(20000);
    segment_totals(&t);
  }
  return t.segments > segments;
}

static void test_holes_purged(void) {
  os_set_clock(fake_clock);
  alloy_collect();
  enum { SMALL = 2000, MEDIUM = 2000 };
  static char *small[SMALL], *medium[MEDIUM];
  for (int i = 0; i < SMALL; i++) {
    small[i] = alloy_malloc(4000); /* 8 a page of 32 KiB, 16 of 64 KiB */
    memset(small[i], 1, 4000);
  }
  segment_t *a = segment_of(small[0]);
  for (int i = 0; i < SMALL; i++) /* every other page of the first segment empties */
    if (segment_of(small[i]) == a && (((uintptr_t)small[i] >> SLICE_SHIFT) & 1)) {
      alloy_free(small[i]);
      small[i] = NULL;
    }
  size_t holes = holes_resident(a);
  CHECK_GE(holes, 20 * SLICE_SIZE); /* resident, dirty */
  /* `a`'s holes are still resident after the growth right after them ... */
  int m = 0;
  CHECK_MSG(medium_until_growth(medium, &m, MEDIUM), "the pool did not grow for %d medium blocks", m);
  size_t kept = holes_resident(a);
  CHECK_MSG(kept == holes, "%zu of %zu bytes of holes resident after one growth", kept, holes);
  /* ... and purged by the next one. */
  CHECK_MSG(medium_until_growth(medium, &m, MEDIUM), "the pool did not grow again for %d medium blocks", m);
  size_t left = holes_resident(a);
  CHECK_MSG(left == 0, "%zu of %zu bytes of holes still resident", left, holes);
  for (int i = 0; i < MEDIUM; i++) alloy_free(medium[i]);
  for (int i = 0; i < SMALL; i++) alloy_free(small[i]);
  os_set_clock(NULL);
}

/* An aligned large request that no empty large segment can hold (with
 * 32 KiB slices: 1 MiB alignment past 1 MiB, 128 KiB alignment at
 * LARGE_MAX) is a big block, sized as nallocx says, and leaves no segment
 * behind: span_alloc kept the empty segment it made for it, one per call
 * (400 MiB mapped after 200 calls). */
static void test_aligned_large_no_leak(void) {
  static const size_t cases[][2] = {{1 * MiB, 1100 * 1024}, {128 * 1024, LARGE_MAX}, {512 * 1024, LARGE_MAX - 4096}};
  alloy_collect();
  alloy_stats_t s0, s1;
  alloy_stats_get(&s0);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int i = 0; i < 50; i++) {
      size_t align = cases[c][0], size = cases[c][1];
      char *p = alloy_aligned_alloc(align, size);
      REQUIRE(p != NULL);
      CHECK_EQ((uintptr_t)p % align, 0);
      CHECK_EQ(alloy_usable_size(p), alloy_nallocx(size, ALLOY_MALLOCX_LG_ALIGN(__builtin_ctzll(align))));
      p[size - 1] = 1;
      alloy_free(p);
    }
  alloy_collect();
  alloy_stats_get(&s1);
  CHECK_LE(s1.segments, s0.segments + 2);
}

/* Pages one thread gave back serve another thread without a new segment. */
enum { N = 30000 };
static void *v[N];
static void *fill(void *arg) {
  for (int i = 0; i < N; i++) v[i] = alloy_malloc((size_t)(uintptr_t)arg);
  for (int i = 0; i < N; i++) alloy_free(v[i]);
  return NULL;
}

static void test_shared_between_threads(void) {
  pthread_t t;
  pthread_create(&t, NULL, fill, (void *)(uintptr_t)200);
  pthread_join(t, NULL);
  alloy_collect(); /* the exited thread's heap adopted, its empty pages given back */
  alloy_stats_t s0, s1;
  alloy_stats_get(&s0);
  pthread_create(&t, NULL, fill, (void *)(uintptr_t)1000);
  pthread_join(t, NULL);
  alloy_stats_get(&s1);
  CHECK_LE(s1.segments, s0.segments + 1);
}

static void test_os_failure(void) {
  void *keep = alloy_malloc(64);
  alloy_collect();
  segment_totals_t t;
  segment_totals(&t);
  os_set_fail_after(0);
  errno = 0;
  void *big = alloy_malloc(t.retained + t.dirty + 64 * MiB); /* no free run is big enough */
  CHECK_NULL(big);
  CHECK_ERRNO(ENOMEM);
  void *many[64];
  int got = 0;
  for (int i = 0; i < 64; i++) { /* exhausts what is free, then needs new frames */
    many[i] = alloy_malloc(MiB);
    if (many[i]) got++;
    else CHECK_ERRNO(ENOMEM);
  }
  os_set_fail_after(-1);
  void *again = alloy_malloc(3 * MiB);
  CHECK_NOT_NULL(again);
  memset(again, 1, 3 * MiB);
  alloy_free(again);
  for (int i = 0; i < 64; i++) alloy_free(many[i]);
  CHECK_GT(got, 0);
  alloy_free(keep);
}

/* A mapping that fails (as for want of address space under a limit) makes
 * the back end unmap its retained frames and ask again. */
static void test_retained_given_back(void) {
  alloy_collect();
  char *a = alloy_malloc(64 * MiB);
  REQUIRE(a != NULL);
  alloy_free(a);
  alloy_collect(); /* purged: retained */
  segment_totals_t t0, t1;
  segment_totals(&t0);
  CHECK_GE(t0.retained, 64 * MiB);
  os_set_fail_count(1); /* the next mapping fails, the one after succeeds */
  char *b = alloy_malloc(t0.retained + 64 * MiB); /* bigger than any free run */
  os_set_fail_count(0);
  CHECK_NOT_NULL(b);
  segment_totals(&t1);
  CHECK_LT(t1.retained, 64 * MiB);
  alloy_free(b);
}

/* The lextent of a size (statistics of large and big blocks) is the first
 * whose size holds it, for every size at and around each boundary. */
static void test_lextent_of(void) {
  for (unsigned j = 0; j < LEXTENTS; j++) {
    size_t b = segment_lextent_size(j);
    for (size_t size = b - 4097; size <= b + 4097; size += 512) {
      unsigned want = 0;
      while (want < LEXTENTS - 1 && segment_lextent_size(want) < size) want++;
      CHECK_MSG(segment_lextent_of(size) == want, "lextent_of(%zu) = %u, want %u", size,
                segment_lextent_of(size), want);
    }
  }
  CHECK(segment_lextent_of(1) == 0 && segment_lextent_of((size_t)1 << 40) == LEXTENTS - 1);
}

/* All heaps together keep at most LARGE_CACHE_TOTAL_MAX (last: 32 MiB of
 * large blocks reshape the pool the other tests count on). */
static void test_large_cache_cap(void) {
  pthread_barrier_init(&cap_filled, NULL, CAP_THREADS + 1);
  pthread_barrier_init(&cap_checked, NULL, CAP_THREADS + 1);
  pthread_t th[CAP_THREADS];
  for (uintptr_t i = 0; i < CAP_THREADS; i++) pthread_create(&th[i], NULL, cache_four, (void *)i);
  pthread_barrier_wait(&cap_filled);
  size_t cached = 0;
  char per_thread[CAP_THREADS + 1];
  for (int i = 0; i < CAP_THREADS; i++) {
    cached += cap_heaps[i]->large_cached * LARGE_CACHE_BLOCK_MAX;
    per_thread[i] = (char)('0' + cap_heaps[i]->large_cached);
  }
  per_thread[CAP_THREADS] = 0;
  CHECK_LE(cached, LARGE_CACHE_TOTAL_MAX);
  /* and does keep (seen once below half, in one of many runs under ASan,
   * not reproduced: the message says where the reservations were) */
  CHECK_MSG(cached >= LARGE_CACHE_TOTAL_MAX / 2, "cached %zu, reserved %lld, spans a thread: %s", cached,
            (long long)heap_large_cached_bytes(), per_thread);
  pthread_barrier_wait(&cap_checked);
  for (int i = 0; i < CAP_THREADS; i++) pthread_join(th[i], NULL);
}

int main(void) {
  test_lextent_of();
  test_map();
  test_large();
  test_large_cache();
  test_big();
  test_decay_retains();
  test_holes_purged();
  test_aligned_large_no_leak();
  test_shared_between_threads();
  test_os_failure();
  test_retained_given_back();
  test_large_cache_cap();
  return check_done();
}
