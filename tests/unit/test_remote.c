/*
 * test_remote.c - other threads' frees gathered by the freeing thread
 * (src/remote.c): a thread that frees blocks of another thread's page holds
 * them (no remote bit, the page's remote summary untouched) until it has
 * gathered REMOTE_BATCH of them, reaches a slow event, calls alloy_collect
 * or thread.tcache.flush, or exits; then each block's remote bit is set once.  A block the thread frees twice is found in its table at once;
 * an explicit arena's blocks are published at once, and so are a thread's
 * remote frees for a while after they landed one per bitmap word.  Misuse reports (a
 * block freed by its owner while another thread held it) are in
 * tests/misuse/.
 */
#include "check.h"
#include "internal.h"
#include "testutil.h"

#include <alloy.h>
#include <pthread.h>
#include <stdatomic.h>

/* Is p's remote bit set (published)? */
static bool published(const void *p) {
  page_t *page = segment_page_lookup(p);
  REQUIRE(page != NULL && page->kind < PAGE_LARGE);
  size_t i = (size_t)((const uint8_t *)p - page->start) / page->block_size;
  return atomic_load(&page_bits(page)->word[i / 64].remote) >> (i % 64) & 1;
}

static size_t count_published(void **blocks, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += published(blocks[i]);
  return k;
}

/* A helper thread that runs one step at a time, when told, and stays alive
 * between the steps (its table is kept across them). */
typedef enum { STEP_NONE, STEP_FREE, STEP_COLLECT, STEP_TCACHE_FLUSH, STEP_EXIT } step_t;
static _Atomic(int) step, done_steps;
static void **step_blocks;
static size_t step_from, step_to;
static heap_t *helper_heap; /* read by the main thread between steps */

static void *helper(void *arg) {
  (void)arg;
  /* a heap of its own first: a thread's first free, made before it has
   * one, is published at once */
  alloy_free(alloy_malloc(32));
  helper_heap = heap_for_thread();
  atomic_fetch_add(&done_steps, 1);
  for (;;) {
    int s;
    while ((s = atomic_load(&step)) == STEP_NONE) sched_yield();
    if (s == STEP_FREE)
      for (size_t i = step_from; i < step_to; i++) alloy_free(step_blocks[i]);
    else if (s == STEP_COLLECT)
      alloy_collect();
    else if (s == STEP_TCACHE_FLUSH)
      REQUIRE(alloy_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0) == 0);
    atomic_store(&step, STEP_NONE);
    atomic_fetch_add(&done_steps, 1);
    if (s == STEP_EXIT) return NULL;
  }
}

static void run_step(step_t s) {
  int before = atomic_load(&done_steps);
  atomic_store(&step, (int)s);
  while (atomic_load(&done_steps) == before) sched_yield();
}

static pthread_t helper_start(void) {
  pthread_t t;
  atomic_store(&done_steps, 0);
  REQUIRE(pthread_create(&t, NULL, helper, NULL) == 0);
  while (atomic_load(&done_steps) == 0) sched_yield();
  return t;
}

static void helper_free(void **blocks, size_t from, size_t to) {
  step_blocks = blocks;
  step_from = from;
  step_to = to;
  run_step(STEP_FREE);
}

static void helper_exit(pthread_t t) {
  run_step(STEP_EXIT);
  pthread_join(t, NULL);
}

#define N 400

static size_t index_of(const page_t *page, const void *p) {
  return (size_t)((const uint8_t *)p - page->start) / page->block_size;
}

/* n 64-byte blocks of this thread, then the 64 of them that make one
 * bitmap word into `word` (in address order): one entry of the freeing
 * thread's table, which no other entry can displace when it is the only
 * one.  Every block's index is read back from its page. */
static void alloc_blocks(void **b, size_t n, void **word) {
  for (size_t i = 0; i < n; i++) b[i] = alloy_malloc(64);
  if (word == NULL) return;
  for (size_t i = 0; i < n; i++) {
    page_t *page = segment_page_lookup(b[i]);
    if (index_of(page, b[i]) % 64 != 0) continue;
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
      page_t *pj = segment_page_lookup(b[j]);
      if (pj == page && index_of(pj, b[j]) / 64 == index_of(page, b[i]) / 64)
        word[index_of(pj, b[j]) % 64] = b[j], k++;
    }
    if (k == 64) return;
  }
  REQUIRE(!"no whole bitmap word among the blocks");
}

static void test_held_until_collect(void) {
  void *b[N], *w[64];
  alloc_blocks(b, 200, w);
  pthread_t t = helper_start();
  helper_free(w, 0, 50);
  CHECK_EQ(count_published(w, 50), 0); /* held by the helper */
  page_t *page = segment_page_lookup(w[0]);
  size_t word = index_of(page, w[0]) / 64;
  CHECK_EQ(atomic_load(&page->remote_summary) >> word & 1, 0);
  run_step(STEP_COLLECT);
  CHECK_EQ(count_published(w, 50), 50);
  CHECK_EQ(atomic_load(&page->remote_summary) >> word & 1, 1);
  CHECK_EQ(count_published(w + 50, 14), 0);
  helper_free(w, 50, 60);
  CHECK_EQ(count_published(w + 50, 10), 0);
  run_step(STEP_TCACHE_FLUSH); /* jemalloc's flush of the thread's cache */
  CHECK_EQ(count_published(w + 50, 10), 10);
  helper_free(w, 60, 64);
  CHECK_EQ(count_published(w + 60, 4), 0);
  helper_exit(t); /* its exit publishes what it holds */
  CHECK_EQ(count_published(w, 64), 64);
  for (size_t i = 0; i < 200; i++)
    if (!published(b[i])) alloy_free(b[i]);
}

static void test_batch_bound(void) {
  void *b[N];
  alloc_blocks(b, N, NULL);
  pthread_t t = helper_start();
  helper_free(b, 0, REMOTE_BATCH - 1);
  /* entries displaced by others may have gone early: not all are held,
   * but at most REMOTE_BATCH - 1 are, and after one more none */
  CHECK_LT(count_published(b, REMOTE_BATCH - 1), REMOTE_BATCH - 1);
  helper_free(b, REMOTE_BATCH - 1, REMOTE_BATCH);
  CHECK_EQ(count_published(b, REMOTE_BATCH), REMOTE_BATCH);
  helper_free(b, REMOTE_BATCH, N);
  helper_exit(t);
  CHECK_EQ(count_published(b, N), N);
}

/* An explicit arena's block: published at once (arena.<i>.reset releases
 * its pages whatever other threads hold). */
static void test_arena_at_once(void) {
  unsigned a = 0;
  size_t len = sizeof a;
  REQUIRE(alloy_mallctl("arenas.create", &a, &len, NULL, 0) == 0);
  void *b[4];
  for (int i = 0; i < 4; i++) b[i] = alloy_mallocx(64, (int)((a + 1) << 20));
  pthread_t t = helper_start();
  helper_free(b, 0, 4);
  CHECK_EQ(count_published(b, 4), 4);
  helper_exit(t);
}

/* Frees that land one per bitmap word gain nothing from the table: once a
 * review sees that, the next REMOTE_DIRECT_FREES remote frees are
 * published at once (none held), then the table gathers again. */
#define SCATTER (3 * REMOTE_REVIEW_WORDS)
static void *all[64 * (SCATTER + 64)];
static void *scattered[SCATTER], *rest[64 * (SCATTER + 64)];
static void test_direct_when_scattered(void) {
  size_t n = sizeof all / sizeof all[0], ns = 0, nr = 0;
  void *w[64];
  alloc_blocks(all, n, w);
  for (size_t i = 0; i < n; i++) {
    bool in_w = false;
    for (size_t j = 0; j < 64; j++) in_w |= all[i] == w[j];
    if (in_w) continue;
    page_t *page = segment_page_lookup(all[i]);
    if (index_of(page, all[i]) % 64 == 0 && ns < SCATTER) scattered[ns++] = all[i]; /* one a word */
    else rest[nr++] = all[i];
  }
  REQUIRE(ns == SCATTER && nr >= REMOTE_DIRECT_FREES);
  pthread_t t = helper_start();
  CHECK_EQ(helper_heap->remote_direct, 0);
  helper_free(scattered, 0, ns);
  CHECK_GT(helper_heap->remote_direct, 0);
  CHECK_EQ(helper_heap->remote_held, 0);
  CHECK_EQ(count_published(scattered, ns), ns); /* the table flushed when it gave up */
  helper_free(w, 0, 10); /* one word: held, were the table in use */
  CHECK_EQ(count_published(w, 10), 10);
  size_t left = helper_heap->remote_direct;
  helper_free(rest, 0, left);
  CHECK_EQ(count_published(rest, left), left);
  CHECK_EQ(helper_heap->remote_direct, 0);
  helper_free(w, 10, 20); /* gathered again */
  CHECK_EQ(count_published(w + 10, 10), 0);
  helper_exit(t);
  CHECK_EQ(count_published(w, 20), 20);
  for (size_t i = left; i < nr; i++) alloy_free(rest[i]);
  for (size_t i = 20; i < 64; i++) alloy_free(w[i]);
}

/* The table, driven directly: a second free of a block it holds is found
 * there, and a block published twice comes back as freed twice. */
static void test_table(void) {
  heap_t *heap = heap_for_thread();
  REQUIRE(heap != NULL);
  void *b[N], *w[64];
  alloc_blocks(b, 200, w);
  page_t *page = segment_page_lookup(w[0]);
  size_t i0 = index_of(page, w[0]), word = i0 / 64;
  remote_flush(heap);
  CHECK_EQ(heap->remote_held, 0);
  CHECK(remote_gather(heap, page, i0));
  CHECK_EQ(heap->remote_held, 1);
  CHECK(!remote_gather(heap, page, i0)); /* twice: refused, not counted */
  CHECK_EQ(heap->remote_held, 1);
  CHECK(remote_gather(heap, page, i0 + 1));
  CHECK_EQ(heap->remote_held, 2);
  CHECK(!published(w[0]) && !published(w[1]));
  remote_flush(heap);
  CHECK_EQ(heap->remote_held, 0);
  CHECK(published(w[0]) && published(w[1]));
  CHECK(!published(w[2]));
  CHECK_EQ(remote_publish(page, word, 1), 1); /* w[0] again */
  CHECK_EQ(remote_publish(page, word, 4), 0); /* w[2]: first time */
  /* the owner folds the three in; the rest goes back by the API */
  page_collect_remote(page);
  for (size_t i = 0; i < 200; i++)
    if (b[i] != w[0] && b[i] != w[1] && b[i] != w[2]) alloy_free(b[i]);
}

int main(void) {
  process_init();
  test_table();
  test_held_until_collect();
  test_batch_bound();
  test_arena_at_once();
  test_direct_when_scattered();
  return check_done();
}
