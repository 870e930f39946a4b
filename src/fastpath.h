/*
 * fastpath.h - the malloc and free fast paths, inline, so that both the
 * prefixed API (alloc.c) and the standard names (override.c) are the whole
 * fast path with no extra call.  Each ends in a non-inlined slow path.
 * Their instruction counts are measured and recorded in docs/DESIGN.md.
 */
#ifndef ALLOY_FASTPATH_H
#define ALLOY_FASTPATH_H

#include "internal.h"

static inline __attribute__((always_inline)) void *fast_malloc(size_t size) {
  heap_t *heap = heap_get();
  if (likely(size <= DIRECT_MAX)) {
    page_t *page = heap->direct[(size + ALIGNMENT_MIN - 1) / ALIGNMENT_MIN];
    if (likely(page->free != NULL)) {
      block_t *block = page_pop_free(page);
      if (unlikely((heap->event_countdown -= page->alloc_charge) < 0))
        return heap_event(heap, block, size);
      return block;
    }
  }
  if (likely(size <= MEDIUM_MAX)) return heap_malloc_small(size, heap);
  return heap_malloc_generic(size, heap, 0);
}

static inline __attribute__((always_inline)) void fast_free(void *p) {
  if (unlikely(!segment_map_has(p))) {
    free_generic(p, NULL);
    return;
  }
  page_t *page = segment_page_of(segment_of(p), p);
  heap_t *heap = heap_get();
  /* One compare: the page is this thread's and not in the full queue. */
  if (likely(atomic_load_explicit(&page->xheap, memory_order_relaxed) == (uintptr_t)heap)) {
    block_t *block = p;
    /* Misuse (an interior pointer, a block already free) goes to the slow
     * path, which reports it; one branch for both, whatever `secure` says. */
    if (unlikely((unsigned)block_offset_is_interior(page, (uintptr_t)p - (uintptr_t)page->start) |
                 (unsigned)block_is_marked_free(page, block))) {
      free_generic(p, page);
      return;
    }
    block->free_mark = block_free_mark(page, block);
    block_set_next(page, block, page->local_free);
    page->local_free = block;
    heap->counters.freed_bytes += page->block_size;
    if (unlikely(--page->used == 0)) heap_page_now_free(heap, page);
    return;
  }
  free_generic(p, page);
}

#endif /* ALLOY_FASTPATH_H */
