/*
 * test_page.c - one page (src/page.c) on a buffer of its own: lazy carving in
 * address order, the three free lists, collection of remote frees pushed
 * concurrently, the state bits of thread_free, and block validation.  Then,
 * through the API, remote frees from another thread are reused by the owner
 * both for pages in the queue and for pages parked in the full queue.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>
#include <pthread.h>

static page_t page;
static _Alignas(65536) uint8_t area[SLICE_SIZE];

static void remote_push(page_t *pg, block_t *b) {
  uintptr_t old = atomic_load(&pg->thread_free);
  do {
    block_set_next(pg, b, (block_t *)(old & ~TF_STATE_MASK));
  } while (!atomic_compare_exchange_weak(&pg->thread_free, &old, (uintptr_t)b | (old & TF_STATE_MASK)));
}

static void *pusher(void *arg) {
  block_t **blocks = arg;
  for (int i = 0; i < 100; i++) remote_push(&page, blocks[i]);
  return NULL;
}

static void test_page_lists(void) {
  page.slice_count = 1;
  page.start = area;
  page_init(&page, size_class_of(64), 64);
  CHECK_EQ(page.reserved, SLICE_SIZE / 64);
  CHECK(page_extend_free(&page));
  CHECK_GT(page.capacity, 0);
  CHECK_LE(page.capacity * 64, 8192); /* carved lazily, not the whole page */
  uint8_t *expect = area;
  uint32_t n = 0;
  for (block_t *b = page.free; b; b = block_next(&page, b), expect += 64, n++) CHECK_EQ_PTR(b, expect);
  CHECK_EQ(n, page.capacity);

  /* take 200 blocks */
  block_t *taken[200];
  for (int i = 0; i < 200; i++) {
    if (!page.free) REQUIRE(page_extend_free(&page));
    taken[i] = page.free;
    page.free = block_next(&page, taken[i]);
    page.used++;
  }
  CHECK_EQ(page.used, 200);
  CHECK(page_check_block(&page, taken[5]) == NULL);
  CHECK(page_check_block(&page, (uint8_t *)taken[5] + 8) != NULL);
  CHECK(page_check_block(&page, area + (size_t)page.capacity * 64) != NULL);

  /* 100 remote frees pushed by two threads at once, state bits preserved */
  page_set_tf_state(&page, TF_NEVER);
  pthread_t t1, t2;
  pthread_create(&t1, NULL, pusher, taken);
  pthread_create(&t2, NULL, pusher, taken + 100);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  CHECK_EQ(atomic_load(&page.thread_free) & TF_STATE_MASK, TF_NEVER);
  CHECK_EQ(page_take_thread_free(&page), 200);
  CHECK_EQ(page.used, 0);
  CHECK_EQ(atomic_load(&page.thread_free), TF_NEVER);
  page_set_tf_state(&page, TF_PLAIN);
  CHECK_EQ(atomic_load(&page.thread_free), TF_PLAIN);

  /* local_free becomes the allocation list only when that one is empty */
  page.free = NULL;
  page_collect(&page);
  n = 0;
  for (block_t *b = page.free; b; b = block_next(&page, b)) n++;
  CHECK_EQ(n, 200);
  CHECK_NULL(page.local_free);
}

/* --- through the API: the owner reuses what another thread freed --- */
#define NBLOCKS 20000
static void *blocks[NBLOCKS];

static void *free_all(void *arg) {
  (void)arg;
  for (int i = 0; i < NBLOCKS; i++) alloy_free(blocks[i]);
  return NULL;
}

static page_t *page_of_block(void *p) { return segment_page_of(segment_of(p), p); }

static bool page_in(page_t *pg, page_t **pages, int n) {
  for (int i = 0; i < n; i++)
    if (pages[i] == pg) return true;
  return false;
}

static void test_remote_reuse(void) {
  /* 20000 x 48 B fill about 15 pages: all but the last go to the full queue,
   * so reuse needs both the notify path and thread_free collection. */
  for (int i = 0; i < NBLOCKS; i++) blocks[i] = alloy_malloc(48);
  page_t *pages[64];
  int npages = 0;
  for (int i = 0; i < NBLOCKS; i++)
    if (!page_in(page_of_block(blocks[i]), pages, npages) && npages < 64)
      pages[npages++] = page_of_block(blocks[i]);
  CHECK_GT(npages, 10);
  pthread_t t;
  pthread_create(&t, NULL, free_all, NULL);
  pthread_join(t, NULL);
  int elsewhere = 0;
  for (int i = 0; i < NBLOCKS; i++) {
    blocks[i] = alloy_malloc(48);
    elsewhere += !page_in(page_of_block(blocks[i]), pages, npages);
  }
  CHECK_MSG(elsewhere == 0, "%d of %d blocks came from new pages instead of remotely freed ones",
            elsewhere, NBLOCKS);
  for (int i = 0; i < NBLOCKS; i++) alloy_free(blocks[i]);
}

int main(void) {
  size_class_init();
  test_page_lists();
  test_remote_reuse();
  return check_done();
}
