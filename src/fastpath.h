/*
 * fastpath.h - the malloc and free fast paths, inline, so that both the
 * prefixed API (alloc.c) and the standard names (override.c) are the whole
 * fast path with no extra call.  Each ends in a non-inlined slow path.
 * Their instruction counts are measured and recorded in docs/DESIGN.md.
 *
 * Neither reads nor writes the block itself: malloc takes the lowest set
 * bit of the lowest bitmap word its page's summary names; free validates the pointer
 * (page map, index, double free) against metadata only and sets its bit.
 * A free of a cold block costs no cache miss on the block.
 */
#ifndef ALLOY_FASTPATH_H
#define ALLOY_FASTPATH_H

#include "internal.h"

void *alloc_tier2(size_t size, heap_t *heap); /* alloc.c: the rest of malloc */
void *alloc_last(heap_t *heap, page_t *page, size_t size); /* alloc.c: the page's last block first */
void free_percpu_thread(void *p, page_t *page, size_t size); /* alloc.c: a per-CPU thread's free */

/* The page's last block, which the owner freed since it was handed out
 * (page->last tagged LAST_FREED): handed out again, as the bitmap path
 * would (its bit cleared, counted), true.  Its bit is checked, though only
 * a bug could have cleared it (every other way out of the bitmap sets
 * `last`): false then, with `last` untagged. */
static inline __attribute__((always_inline)) bool page_take_tagged(page_t *page, uint8_t *p) {
  uint64_t index = ((uint64_t)(p - page->start) * page->block_magic) >> MAGIC_BITS;
  uint64_t *word = &page->free_bits[index / 64].free, bit = (uint64_t)1 << (index % 64);
  uint64_t w = *word;
  page_note_last(page, (uintptr_t)p);
  if (unlikely(!(w & bit))) return false;
  /* page_word_taken, with the summary written only when the word
   * empties: rarely here, where a block comes and goes (4 instructions) */
  __atomic_store_n(word, w & ~bit, __ATOMIC_RELAXED);
  if (unlikely((w & ~bit) == 0)) page->free_summary &= ~((uint64_t)1 << (index / 64));
  page->used++;
  return true;
}

/* Free's side: the block freed is the page's last one handed out. */
static inline __attribute__((always_inline)) void page_free_last(page_t *page, void *p) {
  if (page_last_is(page, p)) page_note_last(page, (uintptr_t)p | LAST_FREED);
}

/* The bitmap path of malloc: the lowest free block of the page, from the
 * lowest word its summary names, else the next tiers.  The summary is
 * exact (page_pop_lowest), so the only test is the summary's: in a churn
 * of random frees a page's few free blocks lie in different words, and a
 * test of the word itself went either way at random. */
static inline __attribute__((always_inline)) void *malloc_from_word(heap_t *heap, page_t *page, size_t size) {
  uint64_t summary = page->free_summary;
  if (likely(summary != 0)) {
    void *block = page_pop_lowest(page, summary);
    if (unlikely((heap->event_countdown -= page->alloc_charge) < 0)) return event_run(heap, block);
    return block;
  }
  /* A per-CPU thread's heap has no pages: its small mallocs always land
   * here (its larger ones reach percpu_alloc from alloc_tier3, so that
   * the 1-64 KiB tier of thread heaps pays nothing for the mode). */
  if (heap == &alloy__heap_percpu) return percpu_malloc(size);
  return alloc_tier2(size, heap);
}

static inline __attribute__((always_inline)) void *fast_malloc(size_t size) {
  heap_t *heap = heap_get();
  if (likely(size <= DIRECT_MAX)) {
    page_t *page = heap->direct[(size + ALIGNMENT_MIN - 1) / ALIGNMENT_MIN];
    /* The tag reads the same stored or not (LAST_KEY keeps bit 0).  Taken
     * out of line, so that the bitmap path keeps its registers. */
    if (unlikely(page->last & LAST_FREED)) return alloc_last(heap, page, size);
    return malloc_from_word(heap, page, size);
  }
  return alloc_tier2(size, heap);
}

#ifdef ALLOY_UNCHECKED
/* The benchmark's alloy-insecure variant (Makefile): the same free without
 * the checks (page map, interior pointer, one past the blocks, double
 * free), to measure what they cost.  Never shipped. */
static inline __attribute__((always_inline)) void fast_free(void *p) {
  if (unlikely(p == NULL)) return;
  page_t *page = segment_page_of(segment_of(p), p);
  heap_t *heap = heap_get();
  if (likely(atomic_load_explicit(&page->xheap, memory_order_relaxed) == (uintptr_t)heap)) {
    uint64_t index = ((uint64_t)((uint8_t *)p - page->start) * page->block_magic) >> MAGIC_BITS;
    uint64_t *word = &page->free_bits[index / 64].free;
    __atomic_store_n(word, *word | (uint64_t)1 << (index % 64), __ATOMIC_RELAXED);
    page->free_summary |= (uint64_t)1 << (index / 64);
    page_free_last(page, p);
    heap->counters.freed_bytes += page->block_size;
    /* the page serving its class stays, as in the checked free below: the
     * two variants must differ in the checks only */
    if (unlikely(--page->used == 0) && heap->queues[page->size_class].first != page)
      heap_page_now_free(heap, page);
    return;
  }
  free_generic(p, NULL);
}
static inline __attribute__((always_inline)) void fast_free_sized(void *p, size_t size) {
  (void)size;
  fast_free(p);
}
#else

/* The owner's free of block `index` of its page (p), once p is known to
 * start a carved block: false when its bits say it is free already, here
 * or by another thread's free not yet folded in (the slow path reports
 * it).  The remote bit must be checked: setting the free bit of a block
 * another thread freed would let the owner hand it out before the remote
 * bit comes back and frees it a second time under its new owner.  Its
 * word is read only when the remote summary (in the descriptor line
 * already loaded) says the word may have bits: a cold free then misses in
 * one bitmap line, not two.  A word with remote bits always has its
 * summary bit set, by the freer that made it non-zero, before that free
 * returned (page.c).  `last`: p is the page's last block handed out,
 * which the next malloc of the class then takes first. */
static inline __attribute__((always_inline)) bool free_own_bit(heap_t *heap, page_t *page, void *p, uint64_t index,
                                                               bool last) {
  uint64_t w = index / 64, b = index % 64;
  /* free_bits: in the line just read, where computing the address from
   * the descriptor's is three more instructions */
  bit_pair_t *pair = &page->free_bits[w];
  uint64_t old = pair->free;
  bool remote = (atomic_load_explicit(&page->remote_summary, memory_order_relaxed) >> w & 1) &&
                (atomic_load_explicit(&pair->remote, memory_order_relaxed) >> b & 1);
  if (unlikely((old >> b & 1) | remote)) return false;
  __atomic_store_n(&pair->free, old | (uint64_t)1 << b, __ATOMIC_RELAXED);
  page->free_summary |= (uint64_t)1 << w;
  if (last) page_note_last(page, (uintptr_t)p | LAST_FREED);
  heap->counters.freed_bytes += page->block_size;
  /* An empty page goes back, unless it serves its class (checked here: a
   * malloc/free loop of one block empties it every time) */
  if (unlikely(--page->used == 0) && heap->queues[page->size_class].first != page) heap_page_now_free(heap, page);
  return true;
}

/* `size`: what a sized free (free_sized, sized delete, sdallocx) says the
 * block holds, 0 when unknown.  A size of the block's class, or at least
 * half its size (what realloc keeps in place), passes at once; any other
 * goes to alloy__free_checked_size, which decides and reports. */
static inline __attribute__((always_inline)) void fast_free_check(void *p, size_t size) {
  if (unlikely(!pagemap_owns(p))) {
    if (size) alloy__free_checked_size(p, size);
    else free_generic(p, NULL);
    return;
  }
  segment_t *seg = segment_of(p);
  page_t *page = segment_page_of(seg, p);
  heap_t *heap = heap_get();
  /* One compare: the page is this thread's and in its queues. */
  if (likely(atomic_load_explicit(&page->xheap, memory_order_relaxed) == (uintptr_t)heap)) {
    uint64_t m = (uint64_t)((uint8_t *)p - page->start) * page->block_magic;
    uint64_t index = m >> MAGIC_BITS;
    /* Misuse (an interior pointer, one past the blocks carved, a block
     * already free) goes to the slow path, which reports it. */
    bool size_ok = size == 0 || (size <= page->block_size && 2 * size >= page->block_size);
    /* The block this page handed out last, and its owner has not freed it
     * since (page->last untagged; only malloc sets it, to a block it hands
     * out, and page_init clears it): a block start among the carved ones,
     * so the interior and bound tests would pass (7 instructions off the
     * free of the block malloc just gave, as in a malloc/free pair).  Its
     * bits are checked as any block's: another path may have freed it. */
    if (page_last_is(page, p)) {
      if (likely(size_ok) && likely(free_own_bit(heap, page, p, index, true))) return;
    } else if (likely(!page_offset_is_interior(m, page->block_magic) & (index < page->capacity) & size_ok)) {
      if (likely(free_own_bit(heap, page, p, index, false))) return;
    }
  }
  /* A per-CPU thread owns no page: every free it makes lands here.  Out of
   * line, so that every other miss stays a tail call, as the hit path
   * stays without a stack frame. */
  if (heap == &alloy__heap_percpu) {
    free_percpu_thread(p, page, size);
    return;
  }
  if (size) alloy__free_checked_size(p, size);
  else free_generic(p, page);
}

static inline __attribute__((always_inline)) void fast_free(void *p) { fast_free_check(p, 0); }
static inline __attribute__((always_inline)) void fast_free_sized(void *p, size_t size) { fast_free_check(p, size); }
#endif

#endif /* ALLOY_FASTPATH_H */
