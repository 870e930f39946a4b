/*
 * free.c - freeing a block, whoever frees it: the owner's slow path (pages
 * in the full list, the last block of a page), other threads' frees of
 * class blocks (handed to remote.c, which gathers and publishes them as
 * remote bits), large and big blocks (the back end, from any thread), and
 * every misuse report.  A small block's free takes a lock
 * only at page events, never per block: heap_wake_page and
 * heap_page_unfull_locked (pages_lock) once per page and full episode, and the
 * back end's lock when a page empties and goes back.
 *
 * The fast path (fastpath.h) handles the common case: the block's page is
 * the calling thread's and in its queues.  A double free is a bit already
 * set; an interior or foreign pointer fails the page map or the index
 * check.  None of it reads or writes the freed block.
 */
#include "internal.h"

#include <errno.h>

/* Counts a free against the calling thread (its heap, or the process total
 * for a thread that has none). */
void free_count(heap_t *heap, size_t bytes) {
  /* A thread that frees before it ever allocates (a consumer of another
   * thread's blocks) gets a heap to count in: counting each of its frees in
   * a process-wide atomic cost 9% of a producer/consumer workload. */
  if (heap == &alloy__heap_empty) heap = heap_init_thread();
  /* heap is free_generic's: a thread's own or a sentinel (every sentinel is
   * shared), never an arena's; one test where heap_is_sentinel makes four */
  if (heap == NULL || heap->shared) {
    stats_orphan_free(bytes);
  } else {
    heap->counters.freed_bytes += bytes;
    /* A thread that mostly frees others' blocks rarely reaches an event:
     * fold here too, or the process total overstates what is in use. */
    if (unlikely(heap->counters.freed_bytes - heap->folded_freed > EVENT_INTERVAL_BYTES)) stats_fold(heap);
  }
}

/* Says what kind of block p was, for a double-free report. */
void free_report_double(const void *p, const page_t *page) {
  process_init(); /* a bad free can be the program's first call: read the options */
  if (page == NULL || page->kind == PAGE_BIG)
    report_misuse_fmt("alloy: double free of %p (big block, already freed)", p);
  else if (page->kind == PAGE_LARGE || page->slice_count == 0)
    report_misuse_fmt("alloy: double free of %p (large block, its pages already released)", p);
  else
    report_misuse_fmt("alloy: double free of %p (size class %zu)", p, page->block_size);
}

/* Reports the lowest block of `twice` (word w of a class page's bitmaps,
 * non-zero) as freed twice: one report per word, as whoever found them
 * (the owner's fold, another thread's publish) cannot tell which free was
 * the second of the rest. */
void free_report_double_word(const page_t *page, size_t w, uint64_t twice) {
  size_t index = w * 64 + (size_t)ctz64(twice);
  free_report_double(page->start + index * page->block_size, page);
}

static void report_invalid(const void *p, const char *detail) {
  process_init();
  report_misuse("free of an invalid pointer", p, detail);
}

typedef enum { FREED, FREED_TWICE, NOT_MINE } owned_free_t;

/* The owner's free on its slow path: the page is in the full list (or
 * pending), or holds a heap-profiler sample (whose block may be this one),
 * or it is the page's last block.  A full page (in the full list or pending)
 * may be taken by another thread meanwhile when this one is idle
 * (heap_take_idle_pending, under the heap's pages_lock): its block is then
 * freed as another thread's (NOT_MINE). */
static owned_free_t free_owned(heap_t *heap, page_t *page, size_t index) {
  size_t w = index / 64;
  uint64_t bit = (uint64_t)1 << (index % 64);
  /* One read for both: the page may have been taken since the caller read
   * its owner, and a taken page has no FULL tag (found in review: with two
   * reads, the tags of the new owner's word let this thread write the bits
   * of a page that was no longer its own).  A page that reads as this heap's
   * without the tag is in its queues, which no other thread takes from. */
  uintptr_t x = atomic_load_explicit(&page->xheap, memory_order_relaxed);
  if ((heap_t *)(x & ~XHEAP_TAGS) != heap) return NOT_MINE;
  uintptr_t tags = x & XHEAP_TAGS;
  if (tags & XHEAP_FULL) {
    os_lock(&heap->pages_lock);
    if (page_heap(page) != heap) {
      os_unlock(&heap->pages_lock);
      return NOT_MINE;
    }
  }
  if ((page_bits(page)->word[w].free | atomic_load_explicit(&page_bits(page)->word[w].remote, memory_order_relaxed)) & bit) {
    if (tags & XHEAP_FULL) os_unlock(&heap->pages_lock);
    return FREED_TWICE;
  }
  if (unlikely(tags & XHEAP_SAMPLED)) {
    uint8_t *p = page->start + index * page->block_size;
    if (prof_table_may_hold(p)) prof_table_free(page, p);
  }
  __atomic_store_n(&page_bits(page)->word[w].free, page_bits(page)->word[w].free | bit, __ATOMIC_RELAXED);
  page->free_summary |= (uint64_t)1 << w;
  if (tags & XHEAP_FULL) heap_page_unfull_locked(heap, page);
  if (--page->used == 0) heap_page_now_free(heap, page);
  return FREED;
}

/* A large or big block: given back to the back end by whoever frees it. */
static void free_block(heap_t *heap, page_t *page, void *p) {
  if (p != page->start) {
    report_invalid(p, "not the start of a block (interior pointer)");
    return;
  }
  size_t bytes = page->block_size;
  if (unlikely(page->prof_samples != 0)) prof_table_free(page, p); /* a heap-profiler sample */
  if (page->arena != 0) arena_block_freed(page);
  large_stats_t *stats = page->arena != 0 ? arena_large_stats(page->arena) : &alloy__large_stats;
  bool freed = page->kind == PAGE_LARGE ? heap_cache_large(heap, page, stats) : segment_free_big(page, stats);
  if (!freed) {
    free_report_double(p, page);
    return;
  }
  free_count(heap, bytes);
}

/* Everything the fast path did not handle: NULL, foreign pointers, large
 * and big blocks, pages in the full list, other threads' pages, and misuse,
 * which is reported here. */
NOINLINE void free_generic(void *p, page_t *page) {
  if (page == NULL) {
    if (p == NULL) return;
    page = segment_page_lookup(p);
    if (page == NULL) {
      if (segment_was_freed(p)) free_report_double(p, NULL);
      else {
        process_init();
        report_misuse("free of a pointer alloy never allocated", p, "not in any alloy segment");
      }
      return;
    }
  }
  heap_t *heap = heap_get();
  /* where another thread's block waits to be published (remote.c): the
   * thread's own heap, none for a sentinel (then at once) */
  heap_t *gather = heap->shared ? NULL : heap;
  if (unlikely(heap->shared)) { /* a sentinel: bound to an arena, per-CPU, not started, exited, or memcheck's */
    VG_HOOK(if (vg_freed(p)) return);
    if (heap == &alloy__heap_bound || heap == &alloy__heap_percpu)
      heap = heap_home(); /* counted for the thread */
  }
  if (page->kind >= PAGE_LARGE) {
    free_block(heap, page, p);
    return;
  }
  uint64_t m = (uint64_t)((uint8_t *)p - page->start) * page->block_magic;
  size_t index = (size_t)(m >> MAGIC_BITS);
  if (unlikely(page_offset_is_interior(m, page->block_magic) ||
               index >= __atomic_load_n(&page->capacity, __ATOMIC_RELAXED) || (uint8_t *)p < page->start)) {
    if (segment_was_freed(p)) free_report_double(p, page);
    else report_invalid(p, page_check_block(page, p));
    return;
  }
  size_t bytes = page->block_size;
  heap_t *owner = page_heap(page); /* without the tags (XHEAP_FULL, XHEAP_SAMPLED) */
  if (owner == heap) {
    owned_free_t r = free_owned(heap, page, index);
    if (unlikely(r == FREED_TWICE)) {
      free_report_double(p, page);
      return;
    }
    if (likely(r == FREED)) {
      /* the page's owner is a real heap that allocates (folded at its events),
       * as on the fast path: the owner's frees of a page holding a heap-profiler
       * sample come this way, about one in eight of a live set's with prof:true */
      heap->counters.freed_bytes += bytes;
      return;
    }
    owner = page_heap(page); /* another thread took the page: a remote free */
  }
  /* a per-CPU block (percpu.c), freed by any thread in any mode */
  /* An explicit arena's blocks are published at once: arena.<i>.reset and
   * destroy release its pages whatever other threads still gather, and its
   * statistics count those frees when read. */
  if (owner != NULL && owner->arena_index != 0) gather = NULL;
  bool ok = owner == &alloy__heap_central ? percpu_free_block(p, page, index) : remote_free(gather, page, index);
  if (!ok) {
    free_report_double(p, page);
    return;
  }
  free_count(heap, bytes);
}

/* Undoes an allocation just made from an owned page (a sampled block
 * replaced by a guarded one). */
void free_owned_block(heap_t *heap, page_t *page, void *p) {
  size_t index = (size_t)(((uint64_t)((uint8_t *)p - page->start) * page->block_magic) >> MAGIC_BITS);
  if (page_heap(page) == &alloy__heap_central) percpu_free_block(p, page, index);
  else (void)free_owned(heap, page, index); /* its page serves mallocs: not full, not taken */
}
