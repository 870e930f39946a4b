/*
 * arena.c - explicit arenas (jemalloc's arenas.create): heaps that no thread
 * owns, each behind its own lock, so memory allocated "in arena n" is that
 * arena's alone and goes away at once with arena.<n>.reset or .destroy.
 *
 * Arena 0 is every thread heap together (jemalloc's automatic arenas);
 * explicit arenas are numbered from 1.  An arena is a heap plus a lock:
 * allocation (MALLOCX_ARENA, or a thread bound with thread.arena) takes the
 * lock and runs the ordinary slow path on the arena's heap.  Frees need no
 * lock: no thread's TLS heap is an arena's heap, so a free of an arena's
 * block is a remote free (its page's remote bits), which the arena folds in
 * when it next allocates.  Its large and big blocks are listed in its heap
 * (heap.blocks, under the lock) so reset can free them; a free from any
 * thread unlinks one under the lock (arena_block_freed).
 *
 * Arena structures are never unmapped (a remote freer may still read the
 * heap of a page); a destroyed arena's slot and structure are reused by the
 * next arenas.create, as jemalloc reuses the index.  Lock order: an
 * arena's lock, then its heap's pages_lock, then the back end's.
 */
#include "prof.h"

#include <errno.h>
#include <string.h>

typedef struct arena_s {
  heap_t heap; /* first: page->xheap points at it, 64-aligned */
  os_lock_t lock;
  large_stats_t large;        /* its large and big blocks */
  _Atomic(uint32_t) nthreads; /* threads bound with thread.arena */
  bool live;                  /* created and not destroyed */
} arena_t;

static os_lock_t arenas_lock = OS_LOCK_INIT; /* the table and arenas_count */
static arena_t *arenas[ARENAS_MAX];
static _Atomic(unsigned) arenas_count = 1; /* arena 0 is the thread heaps */

static __thread arena_t *tls_arena; /* the arena the thread is bound to */

unsigned arena_count(void) { return atomic_load_explicit(&arenas_count, memory_order_acquire); }

static arena_t *arena_get(unsigned index) {
  if (index == 0 || index >= arena_count()) return NULL;
  arena_t *a = __atomic_load_n(&arenas[index], __ATOMIC_ACQUIRE);
  return a && a->live ? a : NULL;
}

bool arena_exists(unsigned index) { return arena_get(index) != NULL; }

large_stats_t *arena_large_stats(unsigned index) {
  arena_t *a = index < ARENAS_MAX ? __atomic_load_n(&arenas[index], __ATOMIC_ACQUIRE) : NULL;
  return a ? &a->large : &alloy__large_stats;
}

static void arena_heap_init(arena_t *a, unsigned index) {
  heap_reset(&a->heap);
  a->heap.arena_index = index;
  a->heap.in_use = true;
  a->heap.shared = true;
  a->heap.large_stats = &a->large;
  memset(&a->large, 0, sizeof a->large);
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
  if (index && a == NULL) a = meta_alloc(sizeof(arena_t));
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

/* Allocation in arena `index` from any thread; NULL with ENOMEM as malloc
 * when the arena does not exist (jemalloc's behaviour is undefined there:
 * failing is the safe choice). */
void *arena_malloc(unsigned index, size_t size, size_t align) {
  arena_t *a = arena_get(index);
  if (a == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  os_lock(&a->lock);
  void *p = NULL;
  if (likely(a->live)) p = heap_alloc(&a->heap, size, align); /* destroyed meanwhile? */
  else errno = ENOMEM;
  os_unlock(&a->lock);
  if (unlikely(alloy__options.prof)) prof_record_pending(); /* a block sampled under the lock */
  /* Counted against the calling thread too (thread.allocated), apart from
   * the totals, which the arena's own heap feeds. */
  heap_t *home = heap_home();
  if (p && !heap_is_sentinel(home)) home->arena_alloc_bytes += alloy__usable_size(p);
  return p;
}

/* The slow path's call for a thread bound with thread.arena, or routed
 * for memcheck (bound to no arena: its own heap, off the fast paths). */
void *arena_malloc_bound(size_t size, size_t align) {
  arena_t *a = tls_arena;
  heap_t *home = heap_bound_home();
  if (a == NULL && home) return heap_alloc(home, size, align);
  return arena_malloc(a ? a->heap.arena_index : 0, size, align);
}

/* Under memcheck (vg.h) a thread points its TLS at the bound sentinel with
 * no arena, as if bound, so that its mallocs reach heap_alloc and its frees
 * free_generic, where memcheck is told; its own heap serves them. */
void arena_route_thread(heap_t *home) {
  heap_bound_home_set(home);
  tls_arena = NULL;
  alloy__tls_heap = &alloy__heap_bound;
}

/* A large or big block of an explicit arena is being freed (any thread). */
void arena_block_freed(page_t *page) {
  arena_t *a = __atomic_load_n(&arenas[page->arena], __ATOMIC_ACQUIRE);
  os_lock(&a->lock);
  if (page->next || page->prev || a->heap.blocks.first == page) {
    if (page->prev) page->prev->next = page->next;
    else a->heap.blocks.first = page->next;
    if (page->next) page->next->prev = page->prev;
    else a->heap.blocks.last = page->prev;
    page->next = page->prev = NULL;
  }
  os_unlock(&a->lock);
}

static void page_add_live(heap_t *heap, page_t *page, void *arg) {
  (void)heap;
  page_collect_remote(page);
  *(uint64_t *)arg += (uint64_t)page->used * page->block_size;
}

/* arena.<i>.reset (and destroy): every block of the arena is discarded at
 * once, its pages and blocks go back to the back end.  EFAULT for arena 0
 * (thread heaps cannot be discarded under their threads) and for an arena
 * that does not exist; destroy also when threads are still bound to it. */
int arena_reset(unsigned index, bool destroy) {
  arena_t *a = arena_get(index);
  if (a == NULL) return EFAULT;
  os_lock(&a->lock);
  if (!a->live || (destroy && atomic_load_explicit(&a->nthreads, memory_order_relaxed) != 0)) {
    os_unlock(&a->lock);
    return EFAULT;
  }
  if (alloy__options.prof) prof_forget_heap(&a->heap); /* the samples of the blocks discarded */
  /* The discarded blocks count as freed, or stats.allocated keeps them. */
  uint64_t live = 0;
  heap_take_pending(&a->heap);
  heap_visit_pages(&a->heap, page_add_live, &live);
  VG_HOOK(heap_visit_pages(&a->heap, vg_page_discard, NULL)); /* memcheck: the blocks go too */
  while (a->heap.blocks.first) {
    page_t *page = a->heap.blocks.first;
    a->heap.blocks.first = page->next;
    page->next = page->prev = NULL;
    VG_HOOK(vg_freed(page->start));
    live += page->block_size;
    if (page->kind == PAGE_LARGE) segment_free_large(page, &a->large);
    else segment_free_big(page, &a->large);
  }
  heap_discard(&a->heap);
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
  if (page->kind >= PAGE_LARGE) return page->arena;
  heap_t *owner = page_heap(page);
  return owner ? (int)owner->arena_index : 0;
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
  if (heap != &alloy__heap_bound) heap_bound_home_set(heap);
  tls_arena = to;
  heap_t *home = heap_bound_home();
  alloy__tls_heap = to ? &alloy__heap_bound : (home ? home : &alloy__heap_empty);
  VG_HOOK(if (!to && home) alloy__tls_heap = &alloy__heap_bound); /* stays routed (vg.h) */
  return 0;
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

/* fork: no arena lock, nor an arena heap's pages_lock (which freeing
 * threads take), may be held by a thread that does not exist in the child.
 * Taken in index order. */
void arena_fork_prepare(void) {
  os_lock(&arenas_lock);
  for (unsigned i = 1; i < arena_count(); i++)
    if (arenas[i]) {
      os_lock(&arenas[i]->lock);
      os_lock(&arenas[i]->heap.pages_lock);
    }
}

void arena_fork_release(void) {
  for (unsigned i = 1; i < arena_count(); i++)
    if (arenas[i]) {
      os_unlock(&arenas[i]->heap.pages_lock);
      os_unlock(&arenas[i]->lock);
    }
  os_unlock(&arenas_lock);
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
  stats_publish(heap);
  stats_heap_add(heap, arg);
}

static void large_add(arena_stats_t *out, const large_stats_t *l) {
  for (unsigned j = 0; j < LEXTENTS; j++)
    out->curlextents[j] += atomic_load_explicit(&l->curlextents[j], memory_order_relaxed);
  out->large_allocated += atomic_load_explicit(&l->allocated, memory_order_relaxed);
  out->large_count += atomic_load_explicit(&l->count, memory_order_relaxed);
  out->large_nmalloc += atomic_load_explicit(&l->nmalloc, memory_order_relaxed);
  out->large_ndalloc += atomic_load_explicit(&l->ndalloc, memory_order_relaxed);
}

/* One explicit arena's statistics, taken now under its lock. */
static bool arena_stats_explicit(unsigned index, arena_stats_t *out) {
  if (!arena_with_heap(index, arena_publish_cb, &out->heap)) return false;
  large_add(out, &arenas[index]->large);
  out->nthreads += arena_nthreads(index);
  return true;
}

/* stats.arenas.<i>: arena 0 is the thread heaps (their snapshots as of
 * their last event after an `epoch` write) and their large and big blocks;
 * ARENAS_ALL adds every explicit arena.  The back end's free pages (pdirty)
 * are everybody's: counted in arena 0 and "all".  False when the arena does
 * not exist. */
static bool arena_stats_collect(unsigned index, arena_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (index != 0 && index != ARENAS_ALL) return arena_stats_explicit(index, out);
  heap_for_each(heap_stats_add_cb, &out->heap);
  percpu_stats_add(&out->heap);
  stats_exited_add(&out->heap);
  large_add(out, &alloy__large_stats);
  uint64_t in_use, abandoned;
  heap_count_threads(&in_use, &abandoned);
  out->nthreads = in_use;
  segment_totals_t t;
  segment_totals(&t);
  out->pdirty = t.dirty / os_page_size();
  if (index == ARENAS_ALL)
    for (unsigned i = 1; i < arena_count(); i++) arena_stats_explicit(i, out);
  return true;
}

/* The totals jemalloc reports beside the bins: bins' nmalloc counts blocks
 * made available, so ndalloc is what is not live of them. */
static void arena_stats_derive(arena_stats_t *st) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    st->small_allocated += st->heap.bins[c].curregs * size_class_size(c);
    st->small_nmalloc += st->heap.bins[c].nfills;
    st->small_ndalloc += st->heap.bins[c].nfills - st->heap.bins[c].curregs;
  }
  st->pactive = st->heap.pactive + st->large_allocated / os_page_size();
}

bool arena_stats(unsigned index, arena_stats_t *out) {
  if (!arena_stats_collect(index, out)) return false;
  arena_stats_derive(out);
  return true;
}
