/*
 * arena.c - explicit arenas (jemalloc's arenas.create): heaps that no thread
 * owns, each behind its own lock, so memory allocated "in arena n" is that
 * arena's alone and goes away at once with arena.<n>.reset or .destroy.
 *
 * Arena 0 is every thread heap together (jemalloc's automatic arenas);
 * explicit arenas are numbered from 1.  An arena is a heap_t plus a lock:
 * allocation (MALLOCX_ARENA, or a thread bound with thread.arena) takes the
 * lock and runs the ordinary slow path on the arena's heap.  Frees need no
 * lock: no thread's TLS heap is an arena's heap, so the free fast path's
 * owner compare fails and the block takes the remote path (page
 * thread_free, or the arena's delayed_free for full pages), which the arena
 * collects under its lock when it next allocates.
 *
 * Huge blocks live in mappings of their own; an arena links its huge
 * segments (seg->heap = the arena's heap) so reset can unmap them, and
 * segment_huge_free unlinks one under the lock.
 *
 * Arena structures are never unmapped (a remote freer may still read the
 * heap word of a page); a destroyed arena's slot and structure are reused
 * by the next arenas.create, as jemalloc reuses the index.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

typedef struct arena_s {
  heap_t heap; /* first: page->xheap points at it, 64-aligned */
  os_lock_t lock;
  segment_t *huge;      /* huge blocks allocated here */
  _Atomic(uint32_t) nthreads; /* threads bound with thread.arena */
  bool live;            /* created and not destroyed */
} arena_t;

static os_lock_t arenas_lock = OS_LOCK_INIT; /* the table and arenas_count */
static arena_t *arenas[ARENAS_MAX];
static _Atomic(unsigned) arenas_count = 1; /* arena 0 is the thread heaps */

/* A thread bound to an explicit arena points its TLS heap here: a heap with
 * no pages, so every malloc reaches the slow path, which sends it to the
 * arena (heap_malloc_generic), and no block is ever "local" to it. */
heap_t alloy__heap_bound = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
};
static __thread arena_t *tls_arena;   /* the arena the thread is bound to */
static __thread heap_t *tls_home;     /* its own heap while it is bound */

unsigned arena_count(void) { return atomic_load_explicit(&arenas_count, memory_order_acquire); }

static arena_t *arena_get(unsigned index) {
  if (index == 0 || index >= arena_count()) return NULL;
  arena_t *a = __atomic_load_n(&arenas[index], __ATOMIC_ACQUIRE);
  return a && a->live ? a : NULL;
}

heap_t *arena_heap(unsigned index) {
  arena_t *a = arena_get(index);
  return a ? &a->heap : NULL;
}

static void arena_heap_init(arena_t *a, unsigned index) {
  heap_reset(&a->heap);
  a->heap.arena_index = index;
  a->heap.in_use = true;
  a->huge = NULL;
}

/* arenas.create: a new arena's index, reusing a destroyed one's slot; 0 when
 * the table is full or memory is short. */
unsigned arena_create(void) {
  process_init();
  os_lock(&arenas_lock);
  unsigned n = arena_count(), index = 0;
  for (unsigned i = 1; i < n && index == 0; i++)
    if (arenas[i] && !arenas[i]->live) index = i;
  if (index == 0 && n < ARENAS_MAX) index = n;
  arena_t *a = index ? arenas[index] : NULL;
  if (index && a == NULL) a = os_meta_alloc(sizeof(arena_t));
  if (a) {
    os_lock(&a->lock);
    arena_heap_init(a, index);
    a->live = true;
    os_unlock(&a->lock);
    __atomic_store_n(&arenas[index], a, __ATOMIC_RELEASE);
    if (index == n) atomic_store_explicit(&arenas_count, n + 1, memory_order_release);
  }
  os_unlock(&arenas_lock);
  return a ? index : 0;
}

/* Allocation in arena `index` from any thread; NULL and EFAULT-less ENOMEM
 * as malloc when the arena does not exist (jemalloc's behaviour is undefined
 * there: failing is the safe choice). */
void *arena_malloc(unsigned index, size_t size, size_t align) {
  arena_t *a = arena_get(index);
  if (a == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  os_lock(&a->lock);
  void *p = NULL;
  if (likely(a->live)) p = heap_malloc_generic(size, &a->heap, align); /* destroyed meanwhile? */
  else errno = ENOMEM;
  os_unlock(&a->lock);
  /* Counted against the calling thread too (thread.allocated), apart from
   * the totals, which the arena's own heap feeds. */
  heap_t *home = arena_home_heap();
  if (p && !heap_is_sentinel(home)) home->arena_alloc_bytes += alloy__usable_size(p);
  return p;
}

/* The slow path's call for a thread bound with thread.arena. */
void *arena_malloc_bound(size_t size, size_t align) {
  arena_t *a = tls_arena;
  return arena_malloc(a ? a->heap.arena_index : 0, size, align);
}

/* A huge block just allocated by the arena's heap (lock held). */
void arena_track_huge(heap_t *heap, void *block) {
  arena_t *a = (arena_t *)heap;
  segment_t *seg = segment_of(segment_page_lookup(block));
  seg->heap = heap;
  seg->prev = NULL;
  seg->next = a->huge;
  if (a->huge) a->huge->prev = seg;
  a->huge = seg;
}

/* A huge block of an arena is being freed (any thread). */
void arena_untrack_huge(segment_t *seg) {
  arena_t *a = (arena_t *)seg->heap;
  os_lock(&a->lock);
  if (seg->prev) seg->prev->next = seg->next;
  else a->huge = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  seg->heap = NULL;
  os_unlock(&a->lock);
}

/* arena.<i>.reset (and destroy): every block of the arena is discarded at
 * once, its segments and huge mappings go back to the OS.  EFAULT for arena
 * 0 (thread heaps cannot be discarded under their threads) and for an arena
 * that does not exist; destroy also when threads are still bound to it. */
int arena_reset(unsigned index, bool destroy) {
  arena_t *a = arena_get(index);
  if (a == NULL) return EFAULT;
  os_lock(&a->lock);
  if (!a->live || (destroy && atomic_load_explicit(&a->nthreads, memory_order_relaxed) != 0)) {
    os_unlock(&a->lock);
    return EFAULT;
  }
  /* The discarded blocks count as freed, or stats.allocated keeps them. */
  uint64_t live = heap_live_bytes(&a->heap);
  while (a->huge) {
    segment_t *seg = a->huge;
    a->huge = seg->next;
    seg->heap = NULL;
    live += seg->pages[0].block_size;
    segment_huge_discard(seg);
  }
  segment_discard_all(&a->heap);
  stats_fold(&a->heap);
  stats_orphan_free(live);
  arena_heap_init(a, index);
  if (destroy) a->live = false;
  os_unlock(&a->lock);
  return 0;
}

/* arenas.lookup: the arena of a live block; -1 when p is not alloy's. */
int arena_of(const void *p) {
  page_t *page = segment_page_lookup(p);
  if (page == NULL || page_check_block(page, p) != NULL) return -1;
  if (page->kind == PAGE_HUGE) {
    heap_t *owner = segment_of(page)->heap;
    return owner ? (int)owner->arena_index : 0;
  }
  return (int)page_heap(page)->arena_index;
}

/* thread.arena: moves the calling thread's future allocations to arena
 * `index` (0: back to its own heap).  EFAULT when the arena does not exist. */
int arena_bind_thread(unsigned index) {
  arena_t *to = index ? arena_get(index) : NULL;
  if (index && to == NULL) return EFAULT;
  if (index >= arena_count()) return EFAULT;
  if (heap_for_thread() == NULL) return EAGAIN; /* also registers the exit hook */
  heap_t *heap = heap_get();
  if (to) { /* counted under the lock destroy checks it under */
    os_lock(&to->lock);
    bool live = to->live;
    if (live) atomic_fetch_add_explicit(&to->nthreads, 1, memory_order_relaxed);
    os_unlock(&to->lock);
    if (!live) return EFAULT;
  }
  if (tls_arena) atomic_fetch_sub_explicit(&tls_arena->nthreads, 1, memory_order_relaxed);
  if (heap != &alloy__heap_bound) tls_home = heap;
  tls_arena = to;
  alloy__tls_heap = to ? &alloy__heap_bound : (tls_home ? tls_home : &alloy__heap_empty);
  return 0;
}

/* The calling thread's own heap, even while it is bound to an arena. */
heap_t *arena_home_heap(void) {
  heap_t *heap = heap_get();
  return heap == &alloy__heap_bound ? tls_home : heap;
}

unsigned arena_thread_index(void) { return tls_arena ? tls_arena->heap.arena_index : 0; }

unsigned arena_nthreads(unsigned index) {
  arena_t *a = arena_get(index);
  return a ? atomic_load_explicit(&a->nthreads, memory_order_relaxed) : 0;
}

/* Runs fn on an arena's heap under its lock (statistics, purging). */
bool arena_with_heap(unsigned index, void (*fn)(heap_t *heap, void *arg), void *arg) {
  arena_t *a = arena_get(index);
  if (a == NULL) return false;
  os_lock(&a->lock);
  fn(&a->heap, arg);
  os_unlock(&a->lock);
  return true;
}

/* fork: no arena lock may be held by a thread that does not exist in the
 * child.  Taken in index order. */
void arena_fork_prepare(void) {
  os_lock(&arenas_lock);
  for (unsigned i = 1; i < arena_count(); i++)
    if (arenas[i]) os_lock(&arenas[i]->lock);
}

void arena_fork_release(void) {
  for (unsigned i = 1; i < arena_count(); i++)
    if (arenas[i]) os_unlock(&arenas[i]->lock);
  os_unlock(&arenas_lock);
}

/* Calls fn on every page of every explicit arena (a fork child's repairs:
 * the forking thread holds every arena lock then). */
void arena_for_each_heap(void (*fn)(heap_t *heap, page_t *page, void *arg)) {
  for (unsigned i = 1; i < arena_count(); i++)
    if (arenas[i]) heap_visit_pages(&arenas[i]->heap, fn, NULL);
}

/* In the child only the forking thread exists: it alone may be bound. */
void arena_fork_child(void) {
  for (unsigned i = 1; i < arena_count(); i++)
    if (arenas[i]) atomic_store_explicit(&arenas[i]->nthreads, 0, memory_order_relaxed);
  if (tls_arena) atomic_store_explicit(&tls_arena->nthreads, 1, memory_order_relaxed);
  arena_fork_release();
}

/* --------------------------------------------------------- statistics */

static void heap_stats_add_cb(heap_t *heap, void *arg) { stats_heap_add(heap, arg); }

static void arena_publish_cb(heap_t *heap, void *arg) {
  arena_stats_t *out = arg;
  arena_t *a = (arena_t *)heap;
  stats_publish(heap);
  stats_heap_add(heap, &out->heap);
  for (segment_t *seg = a->huge; seg; seg = seg->next) {
    out->huge_count++;
    out->huge_bytes += __atomic_load_n(&seg->pages[0].block_size, __ATOMIC_RELAXED); /* realloc may resize it */
  }
}

/* One explicit arena's statistics, taken now under its lock. */
static bool arena_stats_explicit(unsigned index, arena_stats_t *out) {
  if (!arena_with_heap(index, arena_publish_cb, out)) return false;
  out->nthreads += arena_nthreads(index);
  return true;
}

/* stats.arenas.<i>: arena 0 is the thread heaps (their snapshots as of
 * their last event after an `epoch` write) plus every huge block no explicit
 * arena holds; ARENAS_ALL adds every explicit arena.  False when the arena
 * does not exist. */
static bool arena_stats_collect(unsigned index, arena_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (index != 0 && index != ARENAS_ALL) return arena_stats_explicit(index, out);
  arena_stats_t explicit_sum;
  memset(&explicit_sum, 0, sizeof explicit_sum);
  for (unsigned i = 1; i < arena_count(); i++) arena_stats_explicit(i, &explicit_sum);
  heap_for_each(heap_stats_add_cb, &out->heap);
  uint64_t in_use, abandoned;
  heap_count_threads(&in_use, &abandoned);
  out->nthreads = (uint32_t)in_use;
  uint64_t live, bytes, nmalloc;
  segment_huge_totals(&live, &bytes, &nmalloc);
  /* The explicit arenas were summed first: a block freed since may make
   * them exceed the totals for a moment. */
  out->huge_count = live > explicit_sum.huge_count ? live - explicit_sum.huge_count : 0;
  out->huge_bytes = bytes > explicit_sum.huge_bytes ? bytes - explicit_sum.huge_bytes : 0;
  out->huge_nmalloc = nmalloc; /* not split by arena */
  if (index == ARENAS_ALL) {
    const uint64_t *src = (const uint64_t *)&explicit_sum.heap;
    uint64_t *dst = (uint64_t *)&out->heap;
    for (size_t i = 0; i < sizeof out->heap / sizeof(uint64_t); i++) dst[i] += src[i];
    out->huge_count += explicit_sum.huge_count;
    out->huge_bytes += explicit_sum.huge_bytes;
    out->nthreads += explicit_sum.nthreads;
  }
  return true;
}

/* The totals jemalloc reports beside the bins: bins' nmalloc counts
 * blocks carved, so ndalloc is what is not live of them. */
static void arena_stats_derive(arena_stats_t *st) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    st->small_allocated += st->heap.bins[c].curregs * size_class_size(c);
    st->small_nmalloc += st->heap.bins[c].nfills;
    st->small_ndalloc += st->heap.bins[c].nfills - st->heap.bins[c].curregs;
  }
  st->large_allocated = st->heap.large_allocated + st->huge_bytes;
  st->large_nmalloc = st->heap.large_nmalloc + st->huge_nmalloc;
  uint64_t huge_freed = st->huge_nmalloc >= st->huge_count ? st->huge_nmalloc - st->huge_count : 0;
  st->large_ndalloc = st->heap.large_ndalloc + huge_freed;
  st->pactive = st->heap.pactive + st->huge_bytes / os_page_size();
}

bool arena_stats(unsigned index, arena_stats_t *out) {
  if (!arena_stats_collect(index, out)) return false;
  arena_stats_derive(out);
  return true;
}
