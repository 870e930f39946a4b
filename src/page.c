/*
 * page.c - one page: its three free lists (see types.h), lazy carving of
 * blocks, collection of remote frees, and the state word that tells remote
 * freers what to do.
 *
 * Every function here runs on the owning heap's thread, except that remote
 * threads push onto thread_free concurrently (free.c): the only field shared
 * across threads is the atomic thread_free word.
 */
#include "internal.h"

#define EXTEND_BYTES (4 * ALLOY_KiB) /* carve about one OS page of blocks at a time */
#define EXTEND_MIN 4

/* A key of its own for each page: knowing one page's key (from a leaked
 * free-list word) tells nothing about another's. */
void page_set_key(page_t *page) {
  if (alloy__secret == 0) {
    page->key = 0;
    return;
  }
  /* A new key for every page lifetime: marks left in recycled memory by an
   * earlier page at the same address never match. */
  static _Atomic(uint64_t) page_serial;
  uint64_t k = alloy__secret ^ (uint64_t)(uintptr_t)page->start ^
               (atomic_fetch_add_explicit(&page_serial, 1, memory_order_relaxed) << 40);
  k ^= k >> 31;
  k *= 0x9e3779b97f4a7c15ULL;
  k ^= k >> 29;
  page->key = (uintptr_t)k;
}

void page_init(page_t *page, unsigned cls, size_t block_size) {
  size_t area = (size_t)page->slice_count * SLICE_SIZE;
  page->block_size = block_size;
  page_set_key(page);
  page->block_magic = (((uint64_t)1 << MAGIC_BITS) + block_size - 1) / block_size;
  page->alloc_charge = alloc_charge_of(block_size);
  page->size_class = (uint8_t)cls;
  page->kind = block_size <= SMALL_MAX ? PAGE_SMALL : PAGE_MEDIUM;
  page->reserved = (uint32_t)(area / block_size);
  page->capacity = 0;
  page->used = 0;
  page->free = NULL;
  page->local_free = NULL;
  atomic_store_explicit(&page->thread_free, TF_PLAIN, memory_order_relaxed);
}

/* Carves the next few untouched blocks into the (empty) free list, in address
 * order.  Touching only ~4 KiB at a time keeps a barely used page from
 * becoming resident whole. */
bool page_extend_free(page_t *page) {
  uint32_t left = page->reserved - page->capacity;
  if (left == 0) return false;
  size_t bsize = page->block_size;
  uint32_t n = (uint32_t)(EXTEND_BYTES / bsize);
  if (n < EXTEND_MIN) n = EXTEND_MIN;
  if (n > left) n = left;
  uint8_t *first = page->start + (size_t)page->capacity * bsize;
  uint8_t *p = first;
  for (uint32_t i = 1; i < n; i++, p += bsize) block_set_next(page, (block_t *)p, (block_t *)(p + bsize));
  block_set_next(page, (block_t *)p, page->free);
  page->free = (block_t *)first;
  size_t active_before = page_active_bytes(page);
  __atomic_store_n(&page->capacity, page->capacity + n, __ATOMIC_RELAXED);
  segment_count_active((int64_t)(page_active_bytes(page) - active_before));
  return true;
}

/* Detaches the remote-free list, keeping the state bits; returns it.
 * Acquire pairs with the freers' release CAS: their writes of block->next are
 * visible before we walk the list. */
static block_t *page_detach_thread_free(page_t *page) {
  uintptr_t old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  do {
    if ((old & ~TF_STATE_MASK) == 0) return NULL;
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &old, old & TF_STATE_MASK,
                                                  memory_order_acquire, memory_order_relaxed));
  return (block_t *)(old & ~TF_STATE_MASK);
}

/* Moves remote frees to local_free, then local_free to free when free is
 * empty.  Returns the number of remote frees collected. */
uint32_t page_take_thread_free(page_t *page) {
  block_t *list = page_detach_thread_free(page);
  if (!list) return 0;
  uint32_t n = 1;
  block_t *tail = list;
  for (block_t *next; (next = block_next(page, tail)) != NULL; tail = next) {
    if (unlikely(page_check_block(page, next) != NULL))
      report_fatal("alloy: corrupted free list in page %p: link %p (heap overflow or use "
                   "after free in the program)", (void *)page->start, (void *)next);
    n++;
  }
  block_set_next(page, tail, page->local_free);
  page->local_free = list;
  page->used -= n;
  return n;
}

void page_collect(page_t *page) {
  page_take_thread_free(page);
  if (page->free == NULL) {
    page->free = page->local_free;
    page->local_free = NULL;
  }
}

/* Sets the state remote freers see.  A NOTIFYING freer is between reading the
 * page's heap and handing it the block: the owner waits it out before any
 * change that could make the heap pointer stale (NOTIFY again, NEVER), and
 * leaves it alone for PLAIN (the freer ends in PLAIN itself). */
void page_set_tf_state(page_t *page, tf_state_t state) {
  uintptr_t old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  for (;;) {
    if ((old & TF_STATE_MASK) == TF_NOTIFYING) {
      if (state == TF_PLAIN) return;
      os_yield();
      old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
      continue;
    }
    if ((old & TF_STATE_MASK) == (uintptr_t)state) return;
    uintptr_t want = (old & ~TF_STATE_MASK) | (uintptr_t)state;
    if (atomic_compare_exchange_weak_explicit(&page->thread_free, &old, want, memory_order_acq_rel,
                                              memory_order_relaxed))
      return;
  }
}

/* In a fork child: a NOTIFYING state left by a freer that was caught by the
 * fork mid-handover, and so does not exist in the child, goes back to
 * NOTIFY (the page is still full: its block either reached the heap's
 * delayed_free list, which unfulls the page when collected, or is lost to
 * the child), so the owner never waits for it. */
void page_end_orphan_notify(heap_t *heap, page_t *page, void *arg) {
  (void)heap;
  (void)arg;
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  if ((tf & TF_STATE_MASK) == TF_NOTIFYING)
    atomic_store_explicit(&page->thread_free, (tf & ~TF_STATE_MASK) | TF_NOTIFY, memory_order_relaxed);
}

/* Waits until no remote freer is between NOTIFYING and PLAIN on this page.
 * The owner calls it before freeing a block handed over through
 * delayed_free: that freer's last step is a write to this page's state, so
 * the page must not be released (or reused) before it. */
void page_wait_notify_done(page_t *page) {
  while ((atomic_load_explicit(&page->thread_free, memory_order_acquire) & TF_STATE_MASK) ==
         TF_NOTIFYING)
    os_yield();
}

/* Why p is not a block of this page, or NULL when it is the start of one
 * (live or free: telling those apart is the hardening layer's job). */
const char *page_check_block(const page_t *page, const void *p) {
  if (page->slice_count == 0) return "inside an alloy region, in no page";
  if ((const uint8_t *)p < page->start) return "outside the blocks of its page";
  size_t off = (size_t)((const uint8_t *)p - page->start);
  /* Pages of a size class divide by multiplying (block_magic, see
   * block_offset_is_interior): realloc and remote frees pass here. */
  bool classed = page->kind <= PAGE_MEDIUM && page->block_magic != 0;
  size_t index = classed ? (size_t)((off * page->block_magic) >> MAGIC_BITS) : off / page->block_size;
  /* capacity grows on the owner's thread while others free: read atomically */
  if (index >= __atomic_load_n(&page->capacity, __ATOMIC_RELAXED))
    return "outside the blocks of its page";
  if (classed ? block_offset_is_interior(page, off) : off % page->block_size != 0)
    return "not the start of a block (interior pointer)";
  return NULL;
}
