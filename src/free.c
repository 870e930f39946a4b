/*
 * free.c - freeing a block: the local fast path, the remote path, and the
 * delayed-free handshake that brings full pages back to their heap.
 *
 * Never takes a lock.  The fast path (alloy__free) reads the segment map, the
 * slice map and the page's owner word; when the page is the calling thread's
 * and not full, the block goes on local_free with plain stores.
 *
 * Remote frees and the memory-ordering argument
 * ---------------------------------------------
 * Another thread's free pushes the block onto page->thread_free with a CAS
 * (release), after writing block->next; the owner detaches the whole list
 * with a CAS (acquire) before walking it (page.c), so it sees every next
 * pointer.  The low two bits of thread_free carry a state:
 *
 *   PLAIN      push and leave.
 *   NOTIFY     the page sits in its heap's full queue, which the allocation
 *              path never walks.  The first remote freer changes the state to
 *              NOTIFYING instead of pushing, pushes the block onto the owning
 *              heap's delayed_free list (CAS, release), then sets PLAIN.
 *              The owner drains delayed_free (exchange, acquire) on its slow
 *              path and frees those blocks locally, which moves the page back
 *              to its class queue.  The freer's last write (back to PLAIN)
 *              touches the page after the owner may already hold the block,
 *              so the owner first waits for NOTIFYING to end
 *              (page_wait_notify_done): it never releases a page a freer is
 *              still writing to.
 *   NOTIFYING  a freer is between reading the page's heap and pushing onto
 *              it: others just push onto thread_free.  Only that freer leaves
 *              this state, and the owner never changes the page's heap, nor
 *              sets NOTIFY or NEVER, while it lasts (page_set_tf_state), so
 *              the heap pointer the freer read stays the page's owner.
 *              Heaps are never unmapped, so the pointer is always valid
 *              memory whatever happens later.
 *   NEVER      the heap is abandoned or the page is moving between heaps:
 *              push only.  The adopter collects thread_free when it takes
 *              the page.
 *
 * The freer's CAS into NOTIFYING is acq_rel so it synchronises with the
 * owner's release of NOTIFY, which was made after it stored the heap in
 * page->xheap: the freer reads the right heap.
 */
#include "internal.h"

#include <errno.h>

/* Links a block into a free list headed by `head` and marks it free. */
static inline void block_push(const page_t *page, block_t *block, const block_t *head) {
  block_set_next(page, block, head);
  block->free_mark = block_free_mark(page, block);
}

/* Returns a block freed by the owner thread to its page, fixing up the page's
 * place in the heap (full -> queue, empty -> released).  Not counted here:
 * the caller counts the free against the thread that made it. */
void free_local(heap_t *heap, page_t *page, block_t *block) {
  block_push(page, block, page->local_free);
  page->local_free = block;
  if (--page->used == 0)
    heap_page_now_free(heap, page);
  else if (page_is_full(page))
    heap_page_unfull(heap, page);
}

static void delayed_push(heap_t *owner, const page_t *page, block_t *block) {
  block_t *head = atomic_load_explicit(&owner->delayed_free, memory_order_relaxed);
  do {
    block_set_next(page, block, head);
  } while (!atomic_compare_exchange_weak_explicit(&owner->delayed_free, &head, block,
                                                  memory_order_release, memory_order_relaxed));
}

/* Freers that may be between NOTIFYING and PLAIN right now, counted from
 * before their CAS into NOTIFYING to after their last write: a fork child
 * with a non-zero count repairs the states they left (heap_fork_child). */
static _Atomic(uint32_t) notifiers;

bool free_fork_child_notifying(void) {
  return atomic_exchange_explicit(&notifiers, 0, memory_order_relaxed) != 0;
}

static void free_remote(page_t *page, block_t *block) {
  block->free_mark = block_free_mark(page, block);
  uintptr_t old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  uintptr_t state, want;
  bool counted = false;
  do {
    state = old & TF_STATE_MASK;
    if (state == TF_NOTIFY) {
      if (!counted) {
        atomic_fetch_add_explicit(&notifiers, 1, memory_order_relaxed);
        counted = true;
      }
      want = (old & ~TF_STATE_MASK) | TF_NOTIFYING;
    } else {
      block_set_next(page, block, (block_t *)(old & ~TF_STATE_MASK));
      want = (uintptr_t)block | state;
    }
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &old, want,
                                                  memory_order_acq_rel, memory_order_relaxed));
  if (state == TF_NOTIFY) {
    os_test_point(TEST_NOTIFYING, page);
    delayed_push(page_heap(page), page, block);
    old = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &old,
                                                  (old & ~TF_STATE_MASK) | TF_PLAIN,
                                                  memory_order_release, memory_order_relaxed)) {
    }
  }
  if (counted) atomic_fetch_sub_explicit(&notifiers, 1, memory_order_relaxed);
}

/* Counts a free against the calling thread (its heap, or the process total
 * for a thread that never allocated). */
static void count_free(heap_t *heap, size_t bytes) {
  if (heap_is_sentinel(heap)) {
    stats_orphan_free(bytes);
  } else {
    heap->counters.freed_bytes += bytes;
    /* A thread that mostly frees others' blocks rarely reaches an event:
     * fold here too, or the process total overstates what is in use. */
    if (unlikely(heap->counters.freed_bytes - heap->folded_freed > EVENT_INTERVAL_BYTES))
      stats_fold(heap);
  }
}

/* Says what kind of block p was, for a double-free report. */
static void report_double_free(const void *p, const page_t *page) {
  if (page == NULL)
    report_misuse_fmt("alloy: double free of %p (huge block, already unmapped or cached)", p);
  else if (page->kind == PAGE_LARGE || page->slice_count == 0)
    report_misuse_fmt("alloy: double free of %p (large block, its pages already released)", p);
  else
    report_misuse_fmt("alloy: double free of %p (size class %zu)", p, page->block_size);
}

/* Everything the fast path did not handle: NULL, foreign pointers, huge
 * blocks, pages in the full queue, large blocks, other threads' pages, and
 * misuse, which is reported here. */
NOINLINE void free_generic(void *p, page_t *page) {
  if (page == NULL) {
    if (p == NULL) return;
    page = segment_page_lookup(p);
    if (page == NULL) {
      if (segment_huge_recently_freed(p)) report_double_free(p, NULL);
      else report_misuse("free of a pointer alloy never allocated", p, "not in any alloy segment");
      return;
    }
  }
  const char *bad = page_check_block(page, p);
  if (unlikely(bad != NULL)) {
    /* A freed large block's slices are no page any more; it started one. */
    if (page_was_large_block(page, p)) report_double_free(p, page);
    else report_misuse("free of an invalid pointer", p, bad);
    return;
  }
  block_t *block = p;
  if (unlikely(page->kind != PAGE_HUGE && block_is_marked_free(page, block))) {
    report_double_free(p, page);
    return;
  }
  heap_t *heap = heap_get();
  if (unlikely(heap == &alloy__heap_bound)) heap = arena_home_heap(); /* counted for the thread */
  count_free(heap, page->block_size);
  if (page->kind == PAGE_HUGE) {
    segment_huge_free(segment_of(page));
    return;
  }
  if (page_heap(page) == heap)
    free_local(heap, page, block);
  else
    free_remote(page, block);
}
