/*
 * heap.c - thread heaps: the allocation slow path, page queues, the full
 * queue, large blocks, thread start (a heap for the thread), thread exit
 * (abandon) and adoption of abandoned heaps.
 *
 * A heap is touched only by the thread that owns it, except for its
 * delayed_free list (atomic, free.c).  The only lock here, heaps_lock,
 * guards the process-wide lists of heaps: the registry of every heap ever
 * made, the abandoned heaps waiting for an adopter, and idle heaps ready for
 * a new thread.  Heap structures are never unmapped (free.c relies on it).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

__thread heap_t *alloy__tls_heap __attribute__((tls_model("initial-exec"))) = &alloy__heap_empty;

page_t alloy__page_empty;
page_t alloy__page_invalid;
heap_t alloy__heap_empty = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
};

/* A thread whose heap was abandoned at its exit (the TLS destructor) may
 * still allocate from a later TLS destructor, in every round glibc runs
 * them: it gets this sentinel, and its allocations are served from one heap
 * shared by all exiting threads, under exit_lock (a heap of its own would
 * never be abandoned again: measured, 200 such threads kept 201 heaps and
 * 1.6 GB mapped). */
heap_t alloy__heap_exited = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
};
static os_lock_t exit_lock = OS_LOCK_INIT;
static heap_t *exit_heap; /* registered, never a thread's: never abandoned */

static os_lock_t heaps_lock = OS_LOCK_INIT;
static heap_t *registry;
static heap_t *abandoned;                 /* newest first */
static _Atomic(size_t) abandoned_count;   /* read without the lock as a hint */
static heap_t *idle;
/* Counts rare events process-wide: the age of an abandoned heap. */
static _Atomic(uint64_t) event_clock;
/* A long-lived thread adopts an abandoned heap at its events only once this
 * many events (x 256 KiB allocated) passed since the heap was abandoned:
 * a new thread should get it first. */
#define ADOPT_AGE_EVENTS 64

/* ----------------------------------------------------------- page queues */

static void queue_remove(page_queue_t *q, page_t *page) {
  if (page->prev) page->prev->next = page->next;
  else q->first = page->next;
  if (page->next) page->next->prev = page->prev;
  else q->last = page->prev;
  page->next = page->prev = NULL;
}

static void queue_push_front(page_queue_t *q, page_t *page) {
  page->prev = NULL;
  page->next = q->first;
  if (q->first) q->first->prev = page;
  else q->last = page;
  q->first = page;
}

static void queue_push_back(page_queue_t *q, page_t *page) {
  page->next = NULL;
  page->prev = q->last;
  if (q->last) q->last->next = page;
  else q->first = page;
  q->last = page;
}

/* Points the direct slots of class `cls` at the first page of its queue. */
static void heap_direct_update(heap_t *heap, unsigned cls) {
  size_t size = size_class_size(cls);
  if (size > DIRECT_MAX) return;
  page_t *page = heap->queues[cls].first ? heap->queues[cls].first : &alloy__page_empty;
  size_t lo = cls == 0 ? 0 : size_class_size(cls - 1) / ALIGNMENT_MIN + 1;
  for (size_t w = lo; w <= size / ALIGNMENT_MIN; w++) heap->direct[w] = page;
}

static void class_queue_remove(heap_t *heap, page_t *page) {
  page_queue_t *q = &heap->queues[page->size_class];
  bool was_first = q->first == page;
  queue_remove(q, page);
  if (was_first) heap_direct_update(heap, page->size_class);
}

static void class_queue_add(heap_t *heap, page_t *page, bool front) {
  page_queue_t *q = &heap->queues[page->size_class];
  page_t *first = q->first;
  if (front) queue_push_front(q, page);
  else queue_push_back(q, page);
  if (q->first != first) heap_direct_update(heap, page->size_class);
}

/* ------------------------------------------------------- full pages */

static void page_set_owner(page_t *page, heap_t *heap, bool full) {
  atomic_store_explicit(&page->xheap, (uintptr_t)heap | (full ? XHEAP_FULL : 0),
                        memory_order_relaxed);
}

/* Parks a page with nothing free in the full queue, where the allocation path
 * no longer sees it, and asks remote freers to tell the heap (free.c). */
static void heap_page_to_full(heap_t *heap, page_t *page) {
  class_queue_remove(heap, page);
  queue_push_back(&heap->full, page);
  page_set_owner(page, heap, true);
  page_set_tf_state(page, TF_NOTIFY);
  /* A remote free that landed between our last collect and NOTIFY did not
   * notify: look once more, now that every later one will. */
  if (atomic_load_explicit(&page->thread_free, memory_order_acquire) & ~TF_STATE_MASK) {
    page_take_thread_free(page);
    if (page->used == 0) heap_page_now_free(heap, page);
    else heap_page_unfull(heap, page);
  }
}

void heap_page_unfull(heap_t *heap, page_t *page) {
  queue_remove(&heap->full, page);
  page_set_owner(page, heap, false);
  page_set_tf_state(page, TF_PLAIN);
  class_queue_add(heap, page, false);
}

/* Gives an empty page back to its segment, remembering how many blocks it
 * carved (the bin statistics' nmalloc, stats.c). */
static void heap_release_page(heap_t *heap, page_t *page) {
  if (page->kind <= PAGE_MEDIUM) heap->retired_carved[page->size_class] += page->capacity;
  else heap->large_ndalloc++;
  segment_free_page(heap, page);
}

/* A page whose last block came back.  The page serving its class now stays
 * (a malloc/free loop around one block must not map and unmap a page each
 * time); any other goes back to its segment. */
void heap_page_now_free(heap_t *heap, page_t *page) {
  /* Tested first: a malloc/free loop on one block comes here on every free.
   * (A large or full page is never the first of a class queue.) */
  if (heap->queues[page->size_class].first == page) return;
  if (page->kind == PAGE_LARGE && alloy__options.guard)
    os_protect(page->start + page->block_size, os_page_size(), true);
  if (page->kind == PAGE_LARGE) queue_remove(&heap->large, page);
  else if (page_is_full(page)) queue_remove(&heap->full, page);
  else class_queue_remove(heap, page);
  heap_release_page(heap, page);
}

void heap_collect_delayed(heap_t *heap) {
  if (atomic_load_explicit(&heap->delayed_free, memory_order_relaxed) == NULL) return;
  block_t *b = atomic_exchange_explicit(&heap->delayed_free, NULL, memory_order_acquire);
  while (b) {
    page_t *page = segment_page_of(segment_of(b), b);
    block_t *next = block_next(page, b);
    page_wait_notify_done(page);
    free_local(heap, page, b);
    b = next;
  }
}

/* ------------------------------------------------------------ heap lists */

/* Empties a heap; its statistics snapshot (never freed) and its place in
 * the registry stay: the registry is walked (under heaps_lock) by the fork
 * handlers, the background thread and statistics readers. */
void heap_reset(heap_t *heap) {
  heap_stats_t *published = heap->published;
  heap_t *registry_link = heap->registry_next;
  memset(heap, 0, sizeof *heap);
  heap->registry_next = registry_link;
  heap->published = published;
  if (published) memset(published, 0, sizeof *published);
  for (size_t w = 0; w < DIRECT_SLOTS; w++) heap->direct[w] = &alloy__page_empty;
  heap->event_countdown = heap->event_period = stats_event_interval();
}

/* in_use, registry_next and a heap's reset change under heaps_lock: the
 * background thread and statistics readers walk the registry under it. */
static heap_t *heap_new(void) {
  os_lock(&heaps_lock);
  heap_t *heap = idle;
  if (heap) {
    idle = heap->pool_next;
    heap->in_use = true;
  }
  os_unlock(&heaps_lock);
  if (!heap) {
    heap = os_meta_alloc(sizeof(heap_t));
    if (!heap) return NULL;
    heap_reset(heap);
    os_lock(&heaps_lock);
    heap->in_use = true;
    heap->registry_next = registry;
    registry = heap;
    os_unlock(&heaps_lock);
  }
  return heap;
}

/* Empties a heap for the next thread, keeping its place in the registry.
 * Lock order is heaps_lock, then seg_locks (the fork handlers and the
 * background thread take them so), never the reverse: the heap first
 * leaves the set the background thread visits (in_use false, under
 * heaps_lock), then a pass that may still be purging its (already empty)
 * segment lists is waited out on its seg_lock, then it is reset. */
static void heap_recycle(heap_t *heap) {
  os_lock(&heaps_lock);
  heap->in_use = false;
  os_unlock(&heaps_lock);
  os_lock(&heap->seg_lock);
  os_unlock(&heap->seg_lock);
  os_lock(&heaps_lock);
  heap_reset(heap); /* in_use false */
  heap->pool_next = idle;
  idle = heap;
  os_unlock(&heaps_lock);
}

static bool heap_adopt_one(heap_t *heap);
static bool heap_adopt_one_before(heap_t *heap, uint64_t before);

/* A new thread takes over what one exited thread left (if any): with threads
 * replaced one for one, each inherits a predecessor's memory.  Adopting more
 * whenever a page runs short instead let the first new thread take every
 * abandoned heap while its siblings mapped fresh memory (measured: RSS grew
 * without bound on a workload that recreates 4 threads per round). */
heap_t *heap_init_thread(void) {
  process_init();
  heap_t *heap = heap_new();
  if (!heap) return NULL;
  alloy__tls_heap = heap;
  init_thread_register(heap);
  heap_adopt_one(heap);
  return heap;
}

/* The calling thread's own heap (not an arena it is bound to), made now if
 * it has none yet; NULL when memory is short or the thread already passed
 * its exit hook (a heap made then would never be abandoned). */
heap_t *heap_for_thread(void) {
  heap_t *heap = arena_home_heap();
  if (heap == &alloy__heap_empty) heap = heap_init_thread();
  return heap_is_sentinel(heap) ? NULL : heap;
}

/* ------------------------------------------------------------- adoption */

/* Calls fn on every page of the heap; fn may move or free the page. */
void heap_visit_pages(heap_t *heap, void (*fn)(heap_t *heap, page_t *page, void *arg), void *arg) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    for (page_t *p = heap->queues[c].first, *next; p; p = next) {
      next = p->next;
      fn(heap, p, arg);
    }
  for (page_t *p = heap->full.first, *next; p; p = next) {
    next = p->next;
    fn(heap, p, arg);
  }
  for (page_t *p = heap->large.first, *next; p; p = next) {
    next = p->next;
    fn(heap, p, arg);
  }
}

static void page_abandon(heap_t *heap, page_t *page, void *arg) {
  (void)heap;
  (void)arg;
  page_set_tf_state(page, TF_NEVER);
}

/* Moves one page of an abandoned heap into `dst` (arg).  Its state is NEVER,
 * so no remote freer reads its heap while we change it. */
static void page_adopt(heap_t *src, page_t *page, void *arg) {
  heap_t *dst = arg;
  bool large = page->kind == PAGE_LARGE;
  if (large) queue_remove(&src->large, page);
  else if (page_is_full(page)) queue_remove(&src->full, page);
  else queue_remove(&src->queues[page->size_class], page);
  page_set_owner(page, dst, large);
  page_take_thread_free(page);
  if (large) {
    queue_push_back(&dst->large, page);
    page_set_tf_state(page, TF_NOTIFY);
    /* A free pushed before NOTIFY took effect is collected here. */
    if (page->used != 0) page_take_thread_free(page);
  } else {
    class_queue_add(dst, page, false);
    page_set_tf_state(page, TF_PLAIN);
  }
  if (page->used == 0) heap_page_now_free(dst, page);
}

/* Takes every page and segment of one abandoned heap abandoned at or before
 * event `before` and millisecond `before_ms` (the oldest first), if there is
 * one. */
static bool heap_adopt_one_when(heap_t *heap, uint64_t before, uint64_t before_ms) {
  if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return false;
  os_lock(&heaps_lock);
  heap_t **oldest = NULL;
  for (heap_t **link = &abandoned; *link; link = &(*link)->pool_next)
    if ((*link)->abandoned_at <= before && (*link)->abandoned_ms <= before_ms) oldest = link;
  heap_t *src = oldest ? *oldest : NULL;
  if (src) {
    *oldest = src->pool_next;
    atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
    /* Two seg_locks at once: under heaps_lock, so that the fork handler,
     * which takes every seg_lock under heaps_lock, cannot interleave. */
    segment_move_all(src, heap);
  }
  os_unlock(&heaps_lock);
  if (!src) return false;
  heap_visit_pages(src, page_adopt, heap);
  heap_recycle(src);
  return true;
}

static bool heap_adopt_one_before(heap_t *heap, uint64_t before) {
  return heap_adopt_one_when(heap, before, UINT64_MAX);
}

static bool heap_adopt_one(heap_t *heap) { return heap_adopt_one_before(heap, UINT64_MAX); }

static void page_release_if_empty(heap_t *heap, page_t *page, void *arg) {
  (void)arg;
  if (page->kind == PAGE_LARGE) return;
  page_take_thread_free(page);
  if (page->used != 0) {
    /* a remote free that raced with NOTIFY: its block must be allocatable */
    if (page_is_full(page) && page->local_free != NULL) heap_page_unfull(heap, page);
    return;
  }
  if (page_is_full(page)) queue_remove(&heap->full, page);
  else class_queue_remove(heap, page);
  heap_release_page(heap, page);
}

/* Gives every empty page back to its segment and empty segments to the OS. */
static void heap_release_empty(heap_t *heap) {
  heap_collect_delayed(heap);
  heap_visit_pages(heap, page_release_if_empty, NULL);
  segment_release_spare(heap);
}

/* Thread exit: stop remote freers from notifying, take what they already
 * handed over, release what is empty, and leave the rest for an adopter. */
void heap_thread_done(heap_t *heap) {
  if (heap_is_sentinel(heap)) return;
  if (alloy__tls_heap == &alloy__heap_bound) arena_bind_thread(0);
  heap_collect_delayed(heap);
  heap_visit_pages(heap, page_abandon, NULL);
  heap_release_empty(heap); /* also takes blocks handed over before NEVER took effect */
  stats_fold(heap);
  stats_publish(heap); /* its last figures stay readable until it is adopted */
  alloy__tls_heap = &alloy__heap_exited;
  if (!segment_heap_has_any(heap)) {
    heap_recycle(heap);
  } else {
    os_lock(&heaps_lock);
    heap->in_use = false;
    heap->abandoned_at = atomic_load_explicit(&event_clock, memory_order_relaxed);
    heap->abandoned_ms = os_now_ms();
    heap->pool_next = abandoned;
    abandoned = heap;
    atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
    os_unlock(&heaps_lock);
  }
}

/* alloy_collect and malloc_trim: adopt what exited threads left, then give
 * back everything empty. */
void heap_collect(heap_t *heap) {
  if (heap_is_sentinel(heap)) return;
  while (heap_adopt_one(heap)) {
  }
  heap_release_empty(heap);
  huge_cache_flush();
}

/* ------------------------------------------------------------ slow path */

static size_t class_page_slices(size_t block_size) {
  return block_size <= SMALL_MAX ? 1 : MEDIUM_PAGE_SLICES;
}

static page_t *heap_fresh_page(heap_t *heap, unsigned cls) {
  size_t bsize = size_class_size(cls);
  page_t *page = segment_alloc_page(heap, class_page_slices(bsize), 1, SEGMENTS_CLASS);
  if (!page) return NULL;
  page_init(page, cls, bsize);
  page_set_owner(page, heap, false);
  page_extend_free(page);
  class_queue_add(heap, page, true);
  return page;
}

/* The first page of class `cls` with a free block, collecting remote and
 * local frees on the way; pages with nothing free go to the full queue, so
 * each page is passed over at most once per time it fills up. */
static page_t *heap_find_page(heap_t *heap, unsigned cls) {
  page_queue_t *q = &heap->queues[cls];
  for (page_t *page = q->first, *next; page; page = next) {
    next = page->next;
    page_collect(page);
    if (page->free == NULL) page_extend_free(page);
    if (page->free) {
      if (q->first != page) {
        queue_remove(q, page);
        queue_push_front(q, page);
        heap_direct_update(heap, cls);
      }
      return page;
    }
    heap_page_to_full(heap, page);
  }
  return heap_fresh_page(heap, cls);
}

static void *heap_alloc_small(heap_t *heap, size_t size) {
  unsigned cls = size_class_of(size);
  page_t *page = heap_find_page(heap, cls);
  if (!page) return NULL;
  return page_pop_free(page);
}

size_t alloy__large_usable(size_t size) {
  size_t ps = os_page_size();
  return (size + ps - 1) & ~(ps - 1);
}

static void *heap_alloc_large(heap_t *heap, size_t size, size_t align) {
  size_t usable = alloy__large_usable(size);
  size_t guard = alloy__options.guard ? os_page_size() : 0; /* an inaccessible page after it */
  size_t slices = (usable + guard + SLICE_SIZE - 1) / SLICE_SIZE;
  size_t align_slices = align > SLICE_SIZE ? align / SLICE_SIZE : 1;
  page_t *page = segment_alloc_page(heap, slices, align_slices, SEGMENTS_LARGE);
  if (!page) return NULL;
  page->kind = PAGE_LARGE;
  page->block_size = usable;
  page_set_key(page);
  ((block_t *)page->start)->free_mark = 0; /* recycled memory may hold anything */
  if (guard) os_protect(page->start + usable, guard, false);
  page->alloc_charge = alloc_charge_of(usable);
  page->reserved = page->capacity = page->used = 1;
  segment_count_active((int64_t)usable);
  heap->large_nmalloc++;
  page_set_owner(page, heap, true);
  atomic_store_explicit(&page->thread_free, TF_NOTIFY, memory_order_release);
  queue_push_back(&heap->large, page);
  return page->start;
}

/* Everything the malloc fast path did not serve.  `align` is at most
 * ALIGNMENT_MIN except from alloy__aligned for large and huge blocks. */
/* The second-tier fast path, for sizes up to 64 KiB: the class's current
 * page, whose allocation list may be empty while its owner's frees wait on
 * local_free (a malloc/free loop on a few blocks lands here every few
 * calls): swap them in without the whole slow path. */
static inline void *heap_malloc_current(size_t size, heap_t *heap) {
  page_t *page = size <= DIRECT_MAX ? heap->direct[(size + ALIGNMENT_MIN - 1) / ALIGNMENT_MIN]
                                    : heap->queues[size_class_of(size)].first;
  if (page == NULL) return NULL;
  if (page->free == NULL) {
    if (page->local_free == NULL) return NULL;
    page->free = page->local_free;
    page->local_free = NULL;
    /* A working set that fills exactly the blocks carved so far would swap
     * one block here on every malloc (measured: 63 instructions a malloc
     * instead of 22 on a loop with 64 blocks live): then carve more, so the
     * next swap brings many.  Only then: carving whenever the page could
     * grow made mixed_mt touch 35% more memory. */
    if (block_next(page, page->free) == NULL && page->capacity < page->reserved) page_extend_free(page);
  }
  block_t *block = page_pop_free(page);
  if (unlikely((heap->event_countdown -= page->alloc_charge) < 0)) return heap_event(heap, block, size);
  return block;
}

static NOINLINE void *heap_malloc_slow(size_t size, heap_t *heap, size_t align);

/* fast_malloc's second tier for sizes up to 64 KiB: a small function, so
 * the common case (a block ready in the class's page, or local frees to
 * swap in) does not pay the whole slow path's prologue (measured: 4 KiB
 * blocks with 64 live, 81 -> 71 instructions a malloc). */
NOINLINE void *heap_malloc_small(size_t size, heap_t *heap) {
  void *p = heap_malloc_current(size, heap); /* the empty heap's pages have nothing: NULL */
  if (likely(p != NULL)) return p;
  return heap_malloc_slow(size, heap, 0);
}

NOINLINE void *heap_malloc_generic(size_t size, heap_t *heap, size_t align) {
  if (likely(size <= MEDIUM_MAX && align <= ALIGNMENT_MIN)) return heap_malloc_small(size, heap);
  return heap_malloc_slow(size, heap, align);
}

/* An allocation by a thread past its exit (see alloy__heap_exited). */
static void *heap_malloc_exited(size_t size, size_t align) {
  os_lock(&exit_lock);
  if (exit_heap == NULL && (exit_heap = heap_new()) != NULL) exit_heap->shared = true;
  void *p = exit_heap ? heap_malloc_generic(size, exit_heap, align) : NULL;
  os_unlock(&exit_lock);
  if (p == NULL) errno = ENOMEM;
  return p;
}

static NOINLINE void *heap_malloc_slow(size_t size, heap_t *heap, size_t align) {
  if (unlikely(heap == &alloy__heap_bound)) return arena_malloc_bound(size, align);
  if (unlikely(heap == &alloy__heap_exited)) return heap_malloc_exited(size, align);
  if (unlikely(heap == &alloy__heap_empty)) {
    heap = heap_init_thread();
    if (!heap) {
      errno = ENOMEM;
      return NULL;
    }
  }
  heap_collect_delayed(heap);
  if (size == 0) size = 1; /* a unique block, even when large or huge for its alignment */
  void *p;
  size_t usable;
  if (size > LARGE_MAX || align >= LARGE_MAX) {
    p = segment_huge_alloc(size, align, alloy__options.guard);
    usable = p ? segment_page_lookup(p)->block_size : 0;
  } else if (size > MEDIUM_MAX || align > ALIGNMENT_MIN) {
    p = heap_alloc_large(heap, size, align);
    if (!p && align >= SLICE_SIZE) p = segment_huge_alloc(size, align, alloy__options.guard);
    usable = p ? alloy__large_usable(size) : 0;
  } else {
    p = heap_alloc_small(heap, size);
    usable = size_class_size(size_class_of(size));
  }
  if (unlikely(!p)) {
    errno = ENOMEM;
    return NULL;
  }
  if (unlikely(heap->arena_index != 0) && segment_of(segment_page_lookup(p))->kind == SEGMENT_HUGE)
    arena_track_huge(heap, p);
  if (unlikely(usable >= CHARGE_MAX_BYTES)) { /* would overflow the charge: count directly */
    heap->counters.alloc_bytes += usable;
    heap->counters.nmalloc++;
    return heap_event(heap, p, size);
  }
  if (unlikely((heap->event_countdown -= alloc_charge_of(usable)) < 0)) return heap_event(heap, p, size);
  return p;
}

/* The rare-event hook: runs once every EVENT_INTERVAL bytes of allocation. */
/* guard_sample: about one allocation in every guard_sample bytes is moved to
 * a mapping of its own that ends against an inaccessible page (and becomes
 * inaccessible when freed), catching overflows and uses after free in
 * production at the cost of one mapping per sample. */
static void *heap_sample_guarded(heap_t *heap, void *block, size_t size) {
  if (heap->counters.alloc_bytes - heap->sampled_at < (uint64_t)alloy__options.guard_sample)
    return block;
  page_t *page = segment_page_lookup(block);
  if (page->kind > PAGE_MEDIUM) return block; /* large and huge blocks have the `guard` option */
  heap->sampled_at = heap->counters.alloc_bytes;
  /* The replacement keeps every alignment the block had: the request may
   * have asked for it (aligned_alloc, memalign, MALLOCX_LG_ALIGN), and a
   * block of a class is aligned to at most its page's 64 KiB. */
  size_t align = (uintptr_t)block & (0 - (uintptr_t)block);
  if (align > SLICE_SIZE) align = SLICE_SIZE;
  void *guarded = segment_huge_alloc(size, align, true);
  if (guarded == NULL) return block;
  free_local(heap, page, block);
  return guarded;
}

NOINLINE void *heap_event(heap_t *heap, void *block, size_t size) {
  stats_fold(heap);
  stats_maybe_publish(heap);
  /* Threads that exited leave memory others may have freed since: reclaim
   * it even when no new thread comes to take it.  Not into an explicit
   * arena, whose memory is its own. */
  uint64_t now = atomic_fetch_add_explicit(&event_clock, 1, memory_order_relaxed);
  bool thread_heap = heap->arena_index == 0 && !heap->shared;
  if (thread_heap) {
    if (alloy__options.guard_sample > 0) block = heap_sample_guarded(heap, block, size);
    if (now >= ADOPT_AGE_EVENTS) heap_adopt_one_before(heap, now - ADOPT_AGE_EVENTS);
  }
  if (heap_decay_due(heap, os_now_ms())) {
    segment_decay(heap, __atomic_load_n(&alloy__options.dirty_decay_ms, __ATOMIC_RELAXED) == 0);
    huge_cache_expire();
  }
  if (unlikely(thread_heap && background_wanted())) background_start();
  return block;
}

/* Decay passes every half dirty_decay_ms: a slice free at two passes in a
 * row is purged, between one half and one whole period after its free.
 * The owner (at its events) and the background thread (on an idle heap)
 * claim the next pass here, so passes never come closer together. */
bool heap_decay_due(heap_t *heap, uint64_t now_ms) {
  int decay = __atomic_load_n(&alloy__options.dirty_decay_ms, __ATOMIC_RELAXED);
  if (decay < 0) return false;
  uint64_t last = atomic_load_explicit(&heap->last_decay_ms, memory_order_relaxed);
  if (now_ms - last < (uint64_t)decay / 2) return false;
  return atomic_compare_exchange_strong_explicit(&heap->last_decay_ms, &last, now_ms,
                                                 memory_order_relaxed, memory_order_relaxed);
}

/* ------------------------------------------------------ background pass */

/* One pass of the background thread (background.c), whose own heap is
 * `self`: it adopts heaps abandoned more than a decay period ago (a new
 * thread would have taken them by then) and gives back what is empty in
 * them, then runs a due decay pass on every live heap whose owner is not in
 * a page operation right now.  An idle program's RSS thus falls without any
 * allocation to trigger it. */
void heap_background_pass(heap_t *self, uint64_t now_ms) {
  int decay = __atomic_load_n(&alloy__options.dirty_decay_ms, __ATOMIC_RELAXED);
  if (decay < 0) return;
  while (heap_adopt_one_when(self, UINT64_MAX, now_ms - (uint64_t)decay)) {
  }
  heap_release_empty(self);
  if (heap_decay_due(self, now_ms)) segment_decay(self, decay == 0);
  stats_publish(self); /* what it adopted stays in the statistics */
  /* One heap at a time: heaps_lock is held only to step through the
   * registry and to take the heap's seg_lock while it is surely in use (a
   * heap is reset only under both locks), never across the purge. */
  for (heap_t *h = NULL;;) {
    os_lock(&heaps_lock);
    h = h ? h->registry_next : registry;
    while (h && (!h->in_use || h == self || !os_trylock(&h->seg_lock))) h = h->registry_next;
    os_unlock(&heaps_lock);
    if (h == NULL) break;
    if (heap_decay_due(h, now_ms)) segment_decay_locked(h);
    os_unlock(&h->seg_lock);
  }
}

/* ------------------------------------------------------------------ fork */

/* Every lock a thread heap's operations take, in the one order used
 * everywhere: the exited threads' heap, the heap lists, then each heap's
 * seg_lock (the background thread may hold any of them in a decay pass, and
 * an owner holds its own across a page operation).  Held across fork, so
 * the child never inherits one taken by a thread that does not exist there. */
void heap_fork_prepare(void) {
  os_lock(&exit_lock);
  os_lock(&heaps_lock);
  for (heap_t *h = registry; h; h = h->registry_next) os_lock(&h->seg_lock);
}

static void heap_fork_release(void) {
  for (heap_t *h = registry; h; h = h->registry_next) os_unlock(&h->seg_lock);
  os_unlock(&heaps_lock);
  os_unlock(&exit_lock);
}

void heap_fork_parent(void) { heap_fork_release(); }

/* Only the forking thread lives on; the other threads' heaps stay
 * registered (their state may be mid-update, so they are not adopted). */
void heap_fork_child(void) {
  heap_fork_release();
  /* A remote freer caught by the fork between NOTIFYING and PLAIN left that
   * state on a page the child's heaps may wait on: nobody will end it. */
  if (free_fork_child_notifying()) {
    heap_t *own = arena_home_heap();
    if (!heap_is_sentinel(own)) heap_visit_pages(own, page_end_orphan_notify, NULL);
    if (exit_heap) heap_visit_pages(exit_heap, page_end_orphan_notify, NULL);
    arena_for_each_heap(page_end_orphan_notify);
  }
}

/* Bytes in the heap's live blocks, after collecting every remote free (so
 * nothing is counted both as freed and as live): arena.<i>.reset. */
static void page_add_live(heap_t *heap, page_t *page, void *arg) {
  (void)heap;
  *(uint64_t *)arg += (uint64_t)page->used * page->block_size;
}

static void page_take_remote(heap_t *heap, page_t *page, void *arg) {
  (void)arg;
  /* A full page's remote frees arrive through delayed_free; taking them
   * here would leave free blocks in a page the allocation path skips. */
  if (page->kind == PAGE_LARGE || page_is_full(page)) return;
  page_take_thread_free(page);
  if (page->used == 0) heap_page_now_free(heap, page);
}

/* Brings every remote free into the heap's counts (statistics then count a
 * block freed by another thread as freed at once, as jemalloc does) and
 * gives pages that became empty back to their segments.  An explicit
 * arena's blocks are all freed this way: this is what returns them. */
void heap_collect_remote(heap_t *heap) {
  heap_collect_delayed(heap);
  heap_visit_pages(heap, page_take_remote, NULL);
}

uint64_t heap_live_bytes(heap_t *heap) {
  heap_collect_remote(heap);
  uint64_t live = 0;
  heap_visit_pages(heap, page_add_live, &live);
  return live;
}

/* Visits every heap some thread owns or left (not explicit arenas). */
void heap_for_each(void (*fn)(heap_t *heap, void *arg), void *arg) {
  os_lock(&heaps_lock);
  for (heap_t *h = registry; h; h = h->registry_next) fn(h, arg);
  os_unlock(&heaps_lock);
}

/* thread.tcache.flush: alloy's thread cache is the heap itself; flushing
 * gives its empty pages back to their segments and empty segments to the OS. */
void heap_flush(heap_t *heap) {
  if (!heap_is_sentinel(heap)) heap_release_empty(heap);
}

void heap_count_threads(uint64_t *in_use, uint64_t *n_abandoned) {
  *in_use = *n_abandoned = 0;
  os_lock(&heaps_lock);
  for (heap_t *h = registry; h; h = h->registry_next) *in_use += h->in_use && !h->shared;
  *n_abandoned = atomic_load_explicit(&abandoned_count, memory_order_relaxed);
  os_unlock(&heaps_lock);
}
