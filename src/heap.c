/*
 * heap.c - thread heaps: the allocation slow path, page queues, the full
 * and pending lists, large and big blocks, thread start (a heap for the
 * thread), thread exit (abandon) and adoption of abandoned heaps, and the
 * decay of its mostly empty pages.
 *
 * A heap is used by the thread that owns it (or under its arena's lock).
 * Other threads touch it in one place only: a free into one of its full
 * pages moves that page to `pending` under the heap's pages_lock
 * (heap_wake_page), a leaf lock taken once per page and full episode.
 * heaps_lock guards the process-wide lists: the registry of every heap ever
 * made, the abandoned heaps waiting for an adopter, and idle heaps ready for
 * a new thread.  Lock order: exit_lock, heaps_lock, pages_locks (registry
 * order, under heaps_lock when more than one), then the back end's.  Heap
 * structures are never unmapped (a remote freer may still read one).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

__thread heap_t *alloy__tls_heap __attribute__((tls_model("initial-exec"))) = &alloy__heap_empty;

/* The sentinel page: its summaries are always zero, so the fast path and
 * its second tier find nothing there and fall to the slow path. */
page_t alloy__page_empty;
heap_t alloy__heap_empty = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
    .shared = true, /* as every sentinel: no thread owns it (free_generic tests this) */
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
    .shared = true,
};
/* A thread bound to an explicit arena (arena.c, thread.arena) points its TLS
 * heap here: a heap with no pages, so every malloc reaches the slow path,
 * which sends it to the arena (alloc_slow), and no block is ever "local" to
 * it.  Its own heap is kept aside meanwhile (tls_bound_home). */
heap_t alloy__heap_bound = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
    .shared = true,
};
static __thread heap_t *tls_bound_home; /* a bound thread's own heap */

heap_t *heap_bound_home(void) { return tls_bound_home; }
void heap_bound_home_set(heap_t *home) { tls_bound_home = home; }

/* The calling thread's own heap, whatever its TLS points at: the heap kept
 * aside while it is bound to an arena, the per-CPU thread's home. */
heap_t *heap_home(void) {
  heap_t *heap = heap_get();
  if (heap == &alloy__heap_bound) heap = tls_bound_home;
  return heap == &alloy__heap_percpu ? percpu_home() : heap;
}

static os_lock_t exit_lock = OS_LOCK_INIT;
static heap_t *exit_heap; /* registered, never a thread's: never abandoned */

static os_lock_t heaps_lock = OS_LOCK_INIT;
static heap_t *registry;
static heap_t *abandoned;                 /* newest first */
static _Atomic(size_t) abandoned_count;   /* read without the lock as a hint */
static heap_t *idle;
/* Counts rare events process-wide: the age of an abandoned heap. */
static _Atomic(uint64_t) event_clock;

uint64_t heap_event_clock(void) { return atomic_fetch_add_explicit(&event_clock, 1, memory_order_relaxed); }

/* ----------------------------------------------------------- page queues */

/* Appends all of `from` to `to`. */
static void queue_append(page_queue_t *to, page_queue_t *from) {
  if (from->first == NULL) return;
  if (to->last) {
    to->last->next = from->first;
    from->first->prev = to->last;
  } else {
    to->first = from->first;
  }
  to->last = from->last;
  from->first = from->last = NULL;
}

/* The first page of class `cls`'s queue, the one mallocs take from,
 * changed (every path that changes it calls this): the direct slots point
 * at it, and it starts over in the decay of mostly empty pages (served
 * again, it is not idle, and refilled it may be purged anew). */
static void heap_direct_update(heap_t *heap, unsigned cls) {
  page_t *first = heap->queues[cls].first;
  if (first) {
    first->sparse_seen = 0;
    first->purged_used = PAGE_NOT_PURGED;
  }
  size_t size = size_class_size(cls);
  if (size > DIRECT_MAX) return;
  page_t *page = first ? first : &alloy__page_empty;
  size_t lo = cls == 0 ? 0 : size_class_size(cls - 1) / ALIGNMENT_MIN + 1;
  for (size_t w = lo; w <= size / ALIGNMENT_MIN; w++) heap->direct[w] = page;
}

static void class_queue_remove(heap_t *heap, page_t *page) {
  page_queue_t *q = &heap->queues[page->size_class];
  bool was_first = q->first == page;
  page_queue_remove(q, page);
  page->list = LIST_NONE;
  if (was_first) heap_direct_update(heap, page->size_class);
}

static void class_queue_add(heap_t *heap, page_t *page, bool front) {
  page_queue_t *q = &heap->queues[page->size_class];
  page_t *first = q->first;
  if (front) page_queue_push_front(q, page);
  else page_queue_push_back(q, page);
  page->list = LIST_QUEUE;
  if (q->first != first) heap_direct_update(heap, page->size_class);
}

/* With the heap profiler on, any thread may set or clear XHEAP_SAMPLED
 * meanwhile (prof_table.c): a compare-and-swap that keeps it, on paths that
 * run once per page state change. */
static void page_set_owner(page_t *page, heap_t *heap, bool full) {
  uintptr_t want = (uintptr_t)heap | (full ? XHEAP_FULL : 0);
  if (likely(!alloy__options.prof)) {
    atomic_store_explicit(&page->xheap, want, memory_order_relaxed);
    return;
  }
  uintptr_t old = atomic_load_explicit(&page->xheap, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&page->xheap, &old, want | (old & XHEAP_SAMPLED),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* ------------------------------------------------------- full and pending */

/* Parks a page with nothing free in the full list, where the allocation
 * path no longer sees it.  Another thread's free into it then moves it to
 * pending (heap_wake_page).  The mark is set before the remote summary is
 * read, and a freer sets the summary before it reads the mark (both
 * seq_cst): either the owner sees the free and keeps the page, or the
 * freer sees the mark and wakes it.  The mark is or-ed in (xheap is
 * `heap`, with the profiler's tag perhaps, which another thread may change
 * at any time); a seq_cst read-modify-write orders as the seq_cst store
 * did.  False when the page got frees meanwhile and stays in the queue (at
 * its end). */
static bool heap_page_to_full(heap_t *heap, page_t *page) {
  class_queue_remove(heap, page);
  os_lock(&heap->pages_lock);
  atomic_fetch_or_explicit(&page->xheap, XHEAP_FULL, memory_order_seq_cst);
  bool freed = atomic_load_explicit(&page->remote_summary, memory_order_seq_cst) != 0;
  if (!freed) {
    page->list = LIST_FULL;
    page_queue_push_back(&heap->full, page);
  }
  if (freed) page_set_owner(page, heap, false);
  os_unlock(&heap->pages_lock);
  if (freed) class_queue_add(heap, page, false);
  return !freed;
}

/* Takes a page out of the full list or pending, back into its class queue
 * (its heap's pages_lock held; released here). */
void heap_page_unfull_locked(heap_t *heap, page_t *page) {
  page_queue_remove(page->list == LIST_PENDING ? &heap->pending : &heap->full, page);
  page_set_owner(page, heap, false);
  os_unlock(&heap->pages_lock);
  class_queue_add(heap, page, false);
}

/* A thread heap is idle when its last event is HEAP_IDLE_EVENTS events of
 * the whole process behind (each 256 KiB allocated by the other threads)
 * and either HEAP_IDLE_MS behind too, or its thread is blocked and used no
 * CPU time over HEAP_IDLE_CPU_EVENTS more: a thread that built data and
 * now waits (in a join, on a lock or a socket) while others replace it.
 * Its pending pages (full pages other threads freed into) would wait for
 * its next allocation; an active thread takes them at one of its events
 * (heap_take_idle_pending).  Taken at every wake instead, with the event
 * clock alone, they moved from workers that had only lost their CPU for a
 * while: rptest_like held 28 to 36 MiB.  The CPU time alone does not tell
 * them apart either (a thread ready to run but given no CPU uses none:
 * 35 MiB with these thresholds, against 27); with the thread's state too,
 * it does.  The 200 ms alone came too late for a program whose workers
 * replace the main thread's data at once: its peak was that data twice
 * (104 MB; 73 MB now, jemalloc 61).  An exited thread's heap is left to
 * adoption. */
#define HEAP_IDLE_EVENTS 16
#define HEAP_IDLE_MS 200
#define HEAP_IDLE_CPU_EVENTS 16
/* Each look that finds the thread was not blocked after all (its CPU time
 * grew, or it stood still but the thread is ready to run) doubles the
 * events before the next look at that heap, up to this: on 2 cores, the
 * 4 threads of mstress_like, each often descheduled for a millisecond or
 * blocked on a lock for less (16 events apart was about a millisecond
 * there), made 4,990 clock reads and 736 state reads in 0.7 s, under
 * heaps_lock: 10-12% of its time (the same with the pages left where
 * they were: the queries, not the moves); with the back-off, 323 and 10,
 * 0.89-0.92x the time, for larson_like_8's peak RSS 1.01-1.13x (fewer
 * descheduled owners found blocked).  A look that finds the thread idle
 * resets it.  The 200 ms rule does not back off: a thread that looked
 * busy and is now idle is found by it at the latest. */
#define HEAP_IDLE_CPU_EVENTS_MAX 1024
/* System calls per scan, at most: threads' CPU clocks read, and their
 * states read when a clock stood still, so that a scan's cost under
 * heaps_lock does not grow with the threads.  200 thread heaps on 2 cores
 * (threads_200 with percpu:false: each thread's last event is always far
 * behind, most have pending pages) use all 4 looks at every scan, about
 * 6,400 clock reads a run: 1.00x the time of the same build without the
 * CPU rule (10 interleaved pairs, range 0.93-1.19). */
#define HEAP_IDLE_CPU_LOOKS 4
#define HEAP_IDLE_CPU_PROBES 4

typedef struct {
  unsigned looks, probes;
  heap_t *resume; /* the first heap this scan had no look left for */
} idle_scan_t;
static heap_t *idle_resume; /* where the next scan starts (heaps_lock; heaps stay registered) */

void heap_note_active(heap_t *heap, uint64_t now, uint64_t ms) {
  atomic_store_explicit(&heap->active_at, now, memory_order_relaxed);
  atomic_store_explicit(&heap->active_ms, ms, memory_order_relaxed);
}

/* The owner of `heap` used no CPU time since a look at least its
 * spacing ago (HEAP_IDLE_CPU_EVENTS, doubled at each false alarm up to
 * HEAP_IDLE_CPU_EVENTS_MAX) and is blocked now; else that look is now
 * (heaps_lock held).  A heap is looked at once per its spacing at most,
 * and a scan makes at most HEAP_IDLE_CPU_LOOKS looks (its thread's
 * CPU clock) and HEAP_IDLE_CPU_PROBES state reads; the next scan starts
 * at the first heap left without a look. */
static bool heap_cpu_stopped(heap_t *heap, uint64_t now, idle_scan_t *scan) {
  if (heap->idle_cpu_at != 0 && now - heap->idle_cpu_at < heap->idle_cpu_spacing) return false;
  if (scan->looks >= HEAP_IDLE_CPU_LOOKS) {
    if (scan->resume == NULL) scan->resume = heap;
    return false;
  }
  scan->looks++;
  if (unlikely(alloy__test_hook != NULL)) alloy__test_hook(TEST_IDLE_LOOK, heap);
  uint64_t cpu = os_thread_cpu_ns(heap->thread_id);
  if (cpu == UINT64_MAX) return false;
  if (heap->idle_cpu_at != 0) {
    if (cpu == heap->idle_cpu_ns) {
      if (scan->probes >= HEAP_IDLE_CPU_PROBES) return false; /* keep the look: due at the next scan */
      scan->probes++;
      if (os_thread_waiting(heap->thread_id) == 1) {
        heap->idle_cpu_spacing = HEAP_IDLE_CPU_EVENTS; /* idle indeed: its next wait is found as fast */
        return true;
      }
    }
    /* not blocked after all: look less often */
    if (heap->idle_cpu_spacing < HEAP_IDLE_CPU_EVENTS_MAX) heap->idle_cpu_spacing *= 2;
  }
  heap->idle_cpu_ns = cpu;
  heap->idle_cpu_at = now;
  return false;
}

/* `heap` is in use by a live thread (heaps_lock held: an exited thread's
 * heap is not, and is left to adoption). */
static bool heap_is_idle(heap_t *heap, idle_scan_t *scan) {
  uint64_t at = atomic_load_explicit(&heap->active_at, memory_order_relaxed);
  uint64_t now = atomic_load_explicit(&event_clock, memory_order_relaxed);
  if (now < at || now - at < HEAP_IDLE_EVENTS) return false; /* (relaxed loads: `at` may be the newer) */
  uint64_t ms = atomic_load_explicit(&heap->active_ms, memory_order_relaxed);
  return os_now_ms() - ms >= HEAP_IDLE_MS || heap_cpu_stopped(heap, now, scan);
}

/* Another thread freed into a page whose remote summary was empty and
 * which is marked full: move it to its owner's pending list.  The owner may
 * change meanwhile (adoption): read it again under its lock.  A page the
 * owner already took back (or released: the caller's count keeps its frame
 * mapped) is left alone. */
void heap_wake_page(page_t *page) {
  for (;;) {
    heap_t *heap = (heap_t *)(atomic_load_explicit(&page->xheap, memory_order_acquire) & ~XHEAP_TAGS);
    if (heap == NULL) return;
    os_lock(&heap->pages_lock);
    uintptr_t x = atomic_load_explicit(&page->xheap, memory_order_relaxed);
    if ((heap_t *)(x & ~XHEAP_TAGS) != heap) {
      os_unlock(&heap->pages_lock);
      continue;
    }
    if ((x & XHEAP_FULL) && page->list == LIST_FULL) {
      page_queue_remove(&heap->full, page);
      page->list = LIST_PENDING;
      page_queue_push_back(&heap->pending, page);
      atomic_store_explicit(&heap->has_pending, true, memory_order_release);
    }
    os_unlock(&heap->pages_lock);
    return;
  }
}

static void heap_release_page(heap_t *heap, page_t *page);

/* Moves `from`'s pending pages to the end of `got`, owned by `to` from now
 * on (`from`'s pages_lock held): a freer that reads the page's owner next
 * sees `to`, without the full mark. */
static void pending_detach(heap_t *from, heap_t *to, page_queue_t *got) {
  for (page_t *p = from->pending.first; p; p = p->next) page_set_owner(p, to, false);
  queue_append(got, &from->pending);
  atomic_store_explicit(&from->has_pending, false, memory_order_relaxed);
}

/* Puts pages just detached into `heap`'s queues, after folding in the
 * frees that woke them, or gives back those that emptied. */
static void pending_settle(heap_t *heap, page_queue_t got) {
  for (page_t *page = got.first, *next; page; page = next) {
    next = page->next;
    page->next = page->prev = NULL;
    page->list = LIST_NONE;
    page_collect_remote(page);
    if (page->used == 0) heap_release_page(heap, page);
    else class_queue_add(heap, page, false);
  }
}

/* Takes the pending pages of idle thread heaps into `me` (an active thread
 * heap, at one of its events): their blocks freed by other threads become
 * usable again.  The idle owner may still free into such a page:
 * free_owned checks under the same lock that the page is still its own. */
void heap_take_idle_pending(heap_t *me) {
  page_queue_t got = {NULL, NULL};
  idle_scan_t scan = {0, 0, NULL};
  os_lock(&heaps_lock);
  heap_t *start = idle_resume ? idle_resume : registry, *h = start;
  do { /* once round the registry, from where the last scan stopped looking */
    if (h != me && h->in_use && !h->shared && h->arena_index == 0 &&
        atomic_load_explicit(&h->has_pending, memory_order_acquire) && heap_is_idle(h, &scan)) {
      os_lock(&h->pages_lock);
      pending_detach(h, me, &got);
      os_unlock(&h->pages_lock);
    }
    h = h->registry_next ? h->registry_next : registry;
  } while (h != start);
  idle_resume = scan.resume;
  os_unlock(&heaps_lock);
  pending_settle(me, got);
}

/* The owner takes back the pages other threads freed into. */
void heap_take_pending(heap_t *heap) {
  if (!atomic_load_explicit(&heap->has_pending, memory_order_acquire)) return;
  page_queue_t got = {NULL, NULL};
  os_lock(&heap->pages_lock);
  pending_detach(heap, heap, &got);
  os_unlock(&heap->pages_lock);
  pending_settle(heap, got);
}

/* Gives an empty page back to the back end, remembering the blocks it made
 * available (the bin statistics' nmalloc, stats.c). */
static void heap_release_page(heap_t *heap, page_t *page) {
  heap->retired_fills[page->size_class] += page->capacity;
  page_set_owner(page, NULL, false);
  segment_free_class_page(page);
}

/* A page whose last block came back.  The page serving its class stays (a
 * malloc/free loop around one block must not take and give back a page
 * each time); any other goes back to the back end. */
void heap_page_now_free(heap_t *heap, page_t *page) {
  if (heap->queues[page->size_class].first == page) return;
  if (page->list == LIST_QUEUE) {
    class_queue_remove(heap, page);
  } else {
    os_lock(&heap->pages_lock);
    page_queue_remove(page->list == LIST_PENDING ? &heap->pending : &heap->full, page);
    os_unlock(&heap->pages_lock);
  }
  heap_release_page(heap, page);
}

/* ------------------------------------------------------------ heap lists */

/* Empties a heap; its statistics snapshot (never freed), its place in the
 * registry, its pages_lock and its arena_index stay.  The lock's word is
 * never written here: a remote freer may be spinning on it
 * (heap_wake_page), and a zero written under the holder (a memset, then the
 * saved value put back) let that freer in beside it (found by TSan: memset
 * against os_lock).  arena_index, beside it, is read by remote freers
 * without a lock (free.c); it is 0 for every heap that is ever reset after
 * it was published. */
_Static_assert(offsetof(heap_t, arena_index) >= offsetof(heap_t, pages_lock) + sizeof(os_lock_t),
               "heap_reset skips the lock and arena_index as one range");
void heap_reset(heap_t *heap) {
  heap_stats_t *published = heap->published;
  heap_t *registry_link = heap->registry_next;
  size_t lock_at = offsetof(heap_t, pages_lock), lock_end = offsetof(heap_t, arena_index) + sizeof heap->arena_index;
  memset(heap, 0, lock_at);
  memset((char *)heap + lock_end, 0, sizeof *heap - lock_end);
  heap->registry_next = registry_link;
  heap->published = published;
  if (published) memset(published, 0, sizeof *published);
  for (size_t w = 0; w < DIRECT_SLOTS; w++) heap->direct[w] = &alloy__page_empty;
  heap->event_countdown = heap->event_period = prof_sample_period(heap, 0, stats_event_interval());
  heap->large_stats = &alloy__large_stats;
}

/* in_use, shared, registry_next and a heap's reset change under
 * heaps_lock: the fork handlers, the background thread, statistics readers
 * and the idle-page scan walk the registry under it. */
static void heap_set_thread(heap_t *heap, uint64_t thread_id) {
  heap->thread_id = thread_id;
  heap->idle_cpu_ns = heap->idle_cpu_at = 0; /* no look at that thread yet */
  heap->idle_cpu_spacing = HEAP_IDLE_CPU_EVENTS;
}

static void heap_claim(heap_t *heap, bool shared, uint64_t thread_id) {
  if (!shared) segment_count_thread_heaps(1);
  heap->in_use = true;
  heap->shared = shared;
  heap_set_thread(heap, shared ? 0 : thread_id);
}

static heap_t *heap_new(bool shared) {
  uint64_t thread_id = shared ? 0 : os_thread_id();
  os_lock(&heaps_lock);
  heap_t *heap = idle;
  if (heap) {
    idle = heap->pool_next;
    heap_claim(heap, shared, thread_id);
  }
  os_unlock(&heaps_lock);
  if (!heap) {
    heap = meta_alloc(sizeof(heap_t));
    if (!heap) return NULL;
    heap_reset(heap);
    os_lock(&heaps_lock);
    heap_claim(heap, shared, thread_id);
    heap->registry_next = registry;
    registry = heap;
    os_unlock(&heaps_lock);
  }
  heap_note_active(heap, atomic_load_explicit(&event_clock, memory_order_relaxed), os_now_ms());
  return heap;
}

/* Empties a heap for the next thread, keeping its place in the registry.
 * Under its pages_lock: a remote freer holding it reads the heap's lists. */
static void heap_recycle(heap_t *heap) {
  os_lock(&heaps_lock);
  os_lock(&heap->pages_lock);
  stats_retire_heap(heap);
  heap_reset(heap); /* in_use false */
  heap->pool_next = idle;
  idle = heap;
  os_unlock(&heap->pages_lock);
  os_unlock(&heaps_lock);
}

/* A heap no thread owns: the exited threads' heap, or made by the caller
 * for an arena (arena.c embeds its own). */
heap_t *heap_new_shared(void) { return heap_new(true); }

static bool heap_adopt_one(heap_t *heap);

/* A new thread takes over what one exited thread left (if any): with threads
 * replaced one for one, each inherits a predecessor's memory.  Adopting more
 * whenever a page runs short instead let the first new thread take every
 * abandoned heap while its siblings took fresh memory (measured: RSS grew
 * without bound on a workload that recreates 4 threads per round). */
heap_t *heap_init_thread(void) {
  process_init();
  heap_t *heap = heap_new(false);
  if (!heap) return NULL;
  alloy__tls_heap = heap;
  VG_HOOK(arena_route_thread(heap)); /* memcheck: every malloc and free off the fast paths */
  os_thread_key_set(heap_thread_done, heap);
  if (!percpu_thread_start(heap)) heap_adopt_one(heap); /* a per-CPU thread's heap only counts */
  return heap;
}

/* The calling thread's own heap (not an arena it is bound to), made now if
 * it has none yet; NULL when memory is short or the thread already passed
 * its exit hook (a heap made then would never be abandoned). */
heap_t *heap_for_thread(void) {
  heap_t *heap = heap_home();
  if (heap == &alloy__heap_empty) heap = heap_init_thread();
  return heap_is_sentinel(heap) ? NULL : heap;
}

/* ------------------------------------------------------------- visiting */

/* Calls fn on every class page of the heap (full and pending under the
 * heap's lock); fn must not move pages. */
void heap_visit_pages(heap_t *heap, void (*fn)(heap_t *heap, page_t *page, void *arg), void *arg) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    for (page_t *p = heap->queues[c].first; p; p = p->next) fn(heap, p, arg);
  os_lock(&heap->pages_lock);
  for (page_t *p = heap->full.first; p; p = p->next) fn(heap, p, arg);
  for (page_t *p = heap->pending.first; p; p = p->next) fn(heap, p, arg);
  os_unlock(&heap->pages_lock);
}

static bool heap_has_pages(heap_t *heap) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    if (heap->queues[c].first) return true;
  os_lock(&heap->pages_lock);
  bool any = heap->full.first || heap->pending.first;
  os_unlock(&heap->pages_lock);
  return any;
}

/* Gives the empty pages back and the cached large spans; with `keep_one`,
 * one empty page per class stays, last in its queue, so that the partly
 * used pages are filled first.  A thread's heap keeps them when it exits,
 * for the next thread that adopts it: 40,000 threads of 100 blocks each
 * (bench thread_churn) took and gave back 40 pages apiece: a third of the
 * process's instructions.  Put first, the kept pages served the next
 * thread's mallocs while the partly used ones waited, and thread_pass held
 * 4 MiB more. */
static void heap_release_pages(heap_t *heap, bool keep_one) {
  heap_flush_large(heap);
  heap_take_pending(heap);
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    page_queue_t *q = &heap->queues[c];
    page_t *first = q->first, *kept = NULL;
    for (page_t *page = first, *next; page; page = next) {
      next = page->next;
      page_collect_remote(page);
      if (page->used != 0) continue;
      page_queue_remove(q, page);
      page->list = LIST_NONE;
      if (keep_one && kept == NULL) kept = page;
      else heap_release_page(heap, page);
    }
    if (kept) {
      page_queue_push_back(q, kept);
      kept->list = LIST_QUEUE;
    }
    if (q->first != first) heap_direct_update(heap, c); /* once per class */
  }
}

/* Gives every empty page back (the page serving each class too), and the
 * cached large spans. */
void heap_release_empty(heap_t *heap) { heap_release_pages(heap, false); }

/* Folds other threads' frees into every page (statistics then count a
 * block another thread freed as freed, as jemalloc does) and gives pages
 * that emptied back, but for the page serving each class.  An explicit
 * arena's blocks are all freed this way: this is what returns them. */
void heap_collect_remote(heap_t *heap) {
  heap_take_pending(heap);
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    for (page_t *page = heap->queues[c].first, *next; page; page = next) {
      next = page->next;
      page_collect_remote(page);
      if (page->used == 0) heap_page_now_free(heap, page);
    }
}

/* ------------------------------------------------------------- adoption */

/* Moves every page of `src` to `dst`: both pages_locks held, under
 * heaps_lock (so the fork handler, which takes them all, cannot interleave). */
static void heap_move_pages(heap_t *src, heap_t *dst) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    for (page_t *p = src->queues[c].first; p; p = p->next) page_set_owner(p, dst, false);
    if (src->queues[c].first == NULL) continue;
    queue_append(&dst->queues[c], &src->queues[c]);
    heap_direct_update(dst, c);
  }
  for (page_t *p = src->full.first; p; p = p->next) page_set_owner(p, dst, true);
  for (page_t *p = src->pending.first; p; p = p->next) page_set_owner(p, dst, true);
  queue_append(&dst->full, &src->full);
  if (src->pending.first) atomic_store_explicit(&dst->has_pending, true, memory_order_release);
  queue_append(&dst->pending, &src->pending);
}

/* Takes every page of one abandoned heap abandoned at or before event
 * `before` and millisecond `before_ms` (the oldest first), if there is one. */
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
    os_lock(&src->pages_lock);
    os_lock(&heap->pages_lock);
    heap_move_pages(src, heap);
    os_unlock(&heap->pages_lock);
    os_unlock(&src->pages_lock);
  }
  os_unlock(&heaps_lock);
  if (!src) return false;
  heap_recycle(src);
  /* What other threads freed since the exit may have emptied more pages.
   * (Keeping them all for a new thread, which skips this pass, held 2 MiB
   * more on thread_pass for 5% fewer instructions on thread_churn.) */
  heap_release_pages(heap, true);
  return true;
}

bool heap_adopt_old(heap_t *heap, uint64_t before_event, uint64_t before_ms) {
  return heap_adopt_one_when(heap, before_event, before_ms);
}

static bool heap_adopt_one(heap_t *heap) { return heap_adopt_one_when(heap, UINT64_MAX, UINT64_MAX); }

/* Thread exit: take back what others freed, release what is empty, and
 * leave the rest for an adopter.  Nothing needs telling: other threads'
 * frees never depend on the owner being alive. */
void heap_thread_done(void *arg) {
  heap_t *heap = arg;
  if (heap_is_sentinel(heap)) return;
  remote_flush(heap); /* first: what it publishes may empty its own pages */
  if (!heap->shared) segment_count_thread_heaps(-1);
  if (alloy__tls_heap == &alloy__heap_bound) arena_bind_thread(0);
  percpu_thread_exit(heap);
  heap_release_pages(heap, true);
  stats_fold(heap);
  stats_publish(heap); /* its last figures stay readable until it is adopted */
  alloy__tls_heap = &alloy__heap_exited;
  remote_flush(heap); /* anything freed on the way here: from now on, frees publish at once */
  if (!heap_has_pages(heap)) {
    heap_recycle(heap);
    return;
  }
  os_lock(&heaps_lock);
  heap->in_use = false;
  heap->abandoned_at = atomic_load_explicit(&event_clock, memory_order_relaxed);
  heap->abandoned_ms = os_now_ms();
  heap->pool_next = abandoned;
  abandoned = heap;
  atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
  os_unlock(&heaps_lock);
}

static void heap_sweep_sparse(heap_t *heap, bool all, uint64_t now_ms);
static bool sparse_purge_on(void) { return alloy__options.sparse_purge && options_decay_ms() >= 0; }

/* alloy_collect and malloc_trim: adopt what exited threads left, give back
 * everything empty, and purge every free page now, and the free OS pages
 * of mostly empty ones. */
void heap_collect(heap_t *heap) {
  if (heap_is_sentinel(heap)) return;
  remote_flush(heap);
  percpu_drain_all();
  while (heap_adopt_one(heap)) {
  }
  heap_release_empty(heap);
  if (sparse_purge_on()) heap_sweep_sparse(heap, true, os_now_ms());
  segment_decay(os_now_ms(), true);
}

/* ---------------------------------------------------- mostly empty pages */

/* A class page that is mostly free (page_is_sparse) and idle (not first in
 * its queue: no malloc takes from it) holds blocks of sizes the program has
 * moved away from: strings grown past them, a dataset refilled with larger
 * values.  A few live blocks pin it, so it rarely empties and its slices
 * never reach the decay of free slices.  Its free OS pages decay instead:
 * a sweep every half dirty_decay_ms (the owner's events) notes the epoch
 * (the time in half periods) at which it first finds a page mostly empty
 * and idle, and a sweep in a later epoch purges it (page_purge_free): as
 * free slices, it goes between one half and about one whole period after
 * it became so.  Epochs, not a count of the heap's sweeps, since pages
 * move between heaps (adoption): with per-heap counts, the heaps of new
 * threads matched stale marks at once (larson_like_8 2.3x the time).  A
 * page that serves its class again (first in its queue) starts over.
 *
 * Purging at once instead, when the heap grows by a page (tried): bench
 * realloc_grow kept 119 MB resident instead of 155 MB but ran 2.3x longer,
 * since every round refilled the pages the previous one had purged. */
static void heap_sweep_sparse(heap_t *heap, bool all, uint64_t now_ms) {
  int decay = options_decay_ms();
  uint32_t epoch = (uint32_t)(now_ms / (decay >= 2 ? (uint64_t)decay / 2 : 1)) + 1;
  for (unsigned cls = 0; cls < SIZE_CLASSES; cls++) {
    page_t *first = heap->queues[cls].first;
    for (page_t *page = first ? first->next : NULL; page; page = page->next) {
      if (!page_is_sparse(page)) page->sparse_seen = 0;
      else if (all || (page->sparse_seen != 0 && page->sparse_seen != epoch)) page_purge_free(page);
      else if (page->sparse_seen == 0) page->sparse_seen = epoch;
    }
  }
}

/* Sweeps no more often than this, whatever dirty_decay_ms: with 0 or 1 a
 * sweep ran at every event (every 256 KiB allocated) and walked every
 * page of the heap's queues: a churn beside 8,000 half-full pages took 8x
 * its time (found in review). */
#define SPARSE_SWEEP_MIN_MS 10

/* The owner's event: a sweep when half a decay period went by. */
void heap_sparse_decay(heap_t *heap, uint64_t now_ms) {
  int decay = options_decay_ms();
  uint64_t interval = (uint64_t)decay / 2 > SPARSE_SWEEP_MIN_MS ? (uint64_t)decay / 2 : SPARSE_SWEEP_MIN_MS;
  if (!sparse_purge_on() || now_ms - heap->sweep_ms < interval) return;
  heap->sweep_ms = now_ms;
  heap_sweep_sparse(heap, false, now_ms);
}

/* ------------------------------------------------------------ slow path */

static page_t *heap_fresh_page(heap_t *heap, unsigned cls) {
  size_t bsize = size_class_size(cls);
  page_t *page = segment_alloc_class_page(size_class_page_slices(cls));
  if (!page) return NULL;
  page_init(page, cls, bsize);
  page_set_owner(page, heap, false);
  class_queue_add(heap, page, true);
  return page;
}

/* The first page of class `cls` with a free block, folding in other
 * threads' frees on the way; pages with nothing free go to the full list,
 * so each page is passed over at most once per time it fills up. */
static page_t *heap_find_page(heap_t *heap, unsigned cls) {
  heap_take_pending(heap);
  page_queue_t *q = &heap->queues[cls];
  for (page_t *page = q->first, *next; page; page = next) {
    next = page->next;
    if (page->free_summary != 0 || page_refill(page)) {
      if (q->first != page) {
        page_queue_remove(q, page);
        page_queue_push_front(q, page);
        heap_direct_update(heap, cls);
      }
      return page;
    }
    if (!heap_page_to_full(heap, page) && next == NULL) next = q->last; /* frees came: look again */
  }
  return heap_fresh_page(heap, cls);
}


static inline void *heap_charged(heap_t *heap, void *block, size_t usable) {
  if (unlikely(usable >= CHARGE_MAX_BYTES)) { /* would overflow the charge: count directly */
    heap->counters.alloc_bytes += usable;
    heap->counters.nmalloc++;
    return event_run(heap, block);
  }
  if (unlikely((heap->event_countdown -= alloc_charge_of(usable)) < 0)) return event_run(heap, block);
  return block;
}

/* The third tier for sizes up to 64 KiB: the class's current page, whose
 * own bits may be empty while other threads' frees or uncarved blocks wait
 * (page_refill), else the whole search. */
void *heap_alloc_small(heap_t *heap, size_t size) {
  unsigned cls = size_class_of(size);
  page_t *page = heap->queues[cls].first;
  if (unlikely(page == NULL || (page->free_summary == 0 && !page_refill(page)))) {
    /* its own remote frees first: they may be what another thread, or this
     * one (an adopted page), is about to look for */
    remote_flush(heap);
    page = heap_find_page(heap, cls);
    if (page == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  void *block = page_pop_lowest(page, page->free_summary);
  if (unlikely((heap->event_countdown -= page->alloc_charge) < 0)) return event_run(heap, block);
  return block;
}

/* ----------------------------------------------------- large span cache */

/* A thread that frees large blocks (spans up to LARGE_CACHE_BLOCK_MAX)
 * keeps the last few, whoever allocated them, and takes its next large
 * blocks of as many slices from them: a malloc/free pair of large blocks
 * took the back end's lock twice (mixed_mt: 276,000 large blocks, the lock
 * and the span bookkeeping a tenth of its time).  At most 4 spans (1 MiB) a
 * heap and LARGE_CACHE_TOTAL_MAX in all heaps (200 threads that each free
 * a buffer now and then must not keep 200 MiB); given back when the cache
 * served nothing over 8 of the heap's rare events (heap_large_idle: a
 * decay pass is won by one thread, so it cannot be what empties every
 * heap's cache), when the thread exits, and on thread.tcache.flush and
 * malloc_trim.  Not under guard:true (guarded blocks are protected when
 * freed), not for explicit arenas (their blocks are listed for
 * arena.<i>.reset), not for per-CPU threads (their large blocks come from
 * the per-CPU path), not under tcache:false. */
#define LARGE_CACHE_IDLE_EVENTS 8
static _Atomic(int64_t) large_cached_bytes; /* in every heap's cache */

int64_t heap_large_cached_bytes(void) { return atomic_load_explicit(&large_cached_bytes, memory_order_relaxed); }

static bool heap_caches_large(const heap_t *heap) {
  return heap == alloy__tls_heap && !heap->shared && heap->arena_index == 0 && !alloy__options.guard &&
         alloy__options.tcache;
}

static int64_t span_bytes(const page_t *page) { return (int64_t)page->slice_count * (int64_t)SLICE_SIZE; }

/* Reserves `bytes` of LARGE_CACHE_TOTAL_MAX, or says there is no room: an
 * add that overshoots is taken back (a load, then an add, let two threads
 * both take the last room: 16.25 MiB cached, ASan CI run). */
static bool large_cache_reserve(int64_t bytes) {
  int64_t before = atomic_fetch_add_explicit(&large_cached_bytes, bytes, memory_order_relaxed);
  if (before + bytes <= (int64_t)LARGE_CACHE_TOTAL_MAX) return true;
  atomic_fetch_sub_explicit(&large_cached_bytes, bytes, memory_order_relaxed);
  return false;
}

/* A large block's free, by its freer's heap.  The bound is on the span, not
 * the block. */
bool heap_cache_large(heap_t *heap, page_t *page, large_stats_t *stats) {
  int64_t bytes = span_bytes(page);
  if (!heap_caches_large(heap) || page->arena != 0 || bytes > (int64_t)LARGE_CACHE_BLOCK_MAX ||
      heap->large_cached == LARGE_CACHE_SLOTS || !large_cache_reserve(bytes))
    return segment_free_large(page, stats);
  if (!segment_cache_large(page, stats)) {
    atomic_fetch_sub_explicit(&large_cached_bytes, bytes, memory_order_relaxed);
    return false;
  }
  heap->large_cache[heap->large_cached++] = page;
  return true;
}

/* A cached span of the slices a large block of `size` takes, made that
 * block, or NULL. */
static page_t *heap_uncache_large(heap_t *heap, size_t size) {
  size_t usable = large_usable(size);
  size_t slices = (usable + SLICE_SIZE - 1) / SLICE_SIZE;
  for (uint32_t i = 0; i < heap->large_cached; i++) {
    page_t *page = heap->large_cache[i];
    if (page->slice_count != slices) continue;
    heap->large_cache[i] = heap->large_cache[--heap->large_cached];
    heap->large_cache_idle = 0;
    atomic_fetch_sub_explicit(&large_cached_bytes, span_bytes(page), memory_order_relaxed);
    segment_uncache_large(page, usable, heap->large_stats);
    return page;
  }
  return NULL;
}

void heap_flush_large(heap_t *heap) {
  while (heap->large_cached) {
    page_t *page = heap->large_cache[--heap->large_cached];
    atomic_fetch_sub_explicit(&large_cached_bytes, span_bytes(page), memory_order_relaxed);
    segment_release_cached_large(page);
  }
  heap->large_cache_idle = 0;
}

/* At each of the heap's rare events: a cache that served no block over
 * the last LARGE_CACHE_IDLE_EVENTS (2 MiB allocated by the thread) goes
 * back.  After 2 events it kept 123,000 of mixed_mt's 167,000 hits, after 8
 * all but 200. */
void heap_large_idle(heap_t *heap) {
  if (heap->large_cached == 0) return;
  if (++heap->large_cache_idle >= LARGE_CACHE_IDLE_EVENTS) heap_flush_large(heap);
}

/* Large and big blocks come from the back end (large ones first from the
 * heap's cache); an explicit arena keeps a list of its own, for
 * arena.<i>.reset. */
static void *heap_alloc_block(heap_t *heap, size_t size, size_t align) {
  page_t *page = NULL;
  bool guard = alloy__options.guard;
  if (heap->large_cached && size <= LARGE_CACHE_BLOCK_MAX && align <= SLICE_SIZE && heap_caches_large(heap)) {
    page = heap_uncache_large(heap, size);
    if (page) return heap_charged(heap, page->start, page->block_size);
  }
  if (segment_large_fits(size, align)) {
    page = segment_alloc_large(size, align, heap->arena_index, heap->large_stats);
    if (page == NULL && align >= SLICE_SIZE) page = segment_alloc_big(size, align, heap->arena_index, heap->large_stats, guard);
  } else {
    page = segment_alloc_big(size, align, heap->arena_index, heap->large_stats, guard);
  }
  if (page == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (heap->arena_index != 0) page_queue_push_back(&heap->blocks, page);
  return heap_charged(heap, page->start, page->block_size);
}

/* Everything the malloc fast path did not serve, for a real heap.  `align`
 * is at most ALIGNMENT_MIN except from alloy__aligned for large and big
 * blocks. */
void *heap_alloc(heap_t *heap, size_t size, size_t align) {
  VG_HOOK(vg_alloc_begin());
  size_t n = size ? size : 1; /* a unique block, even when large or big for its alignment */
  void *p = n <= MEDIUM_MAX && align <= ALIGNMENT_MIN ? heap_alloc_small(heap, n) : heap_alloc_block(heap, n, align);
  VG_HOOK(p = vg_allocated(p, size));
  return p;
}

/* An allocation by a thread past its exit (see alloy__heap_exited). */
void *heap_alloc_exited(size_t size, size_t align) {
  os_lock(&exit_lock);
  if (exit_heap == NULL) exit_heap = heap_new_shared();
  void *p = exit_heap ? heap_alloc(exit_heap, size, align) : NULL;
  os_unlock(&exit_lock);
  if (p == NULL) errno = ENOMEM;
  return p;
}

/* arena.<i>.reset: every class page goes back, live blocks and all. */
void heap_discard(heap_t *heap) {
  heap_take_pending(heap);
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    while (heap->queues[c].first) {
      page_t *page = heap->queues[c].first;
      class_queue_remove(heap, page);
      heap_release_page(heap, page);
    }
  os_lock(&heap->pages_lock);
  page_queue_t full = heap->full;
  heap->full.first = heap->full.last = NULL;
  os_unlock(&heap->pages_lock);
  for (page_t *page = full.first, *next; page; page = next) {
    next = page->next;
    heap_release_page(heap, page);
  }
}

/* ------------------------------------------------------------------ fork */

/* Every lock a thread heap's operations take, in the one order used
 * everywhere: the exited threads' heap, the heap lists, then each heap's
 * pages_lock.  Held across fork, so the child never inherits one taken by a
 * thread that does not exist there. */
void heap_fork_prepare(void) {
  os_lock(&exit_lock);
  os_lock(&heaps_lock);
  for (heap_t *h = registry; h; h = h->registry_next) os_lock(&h->pages_lock);
}

/* Parent and child: the other threads' heaps stay registered in the child,
 * never adopted there (their threads do not exist in the child, so they
 * never exit and never abandon them). */
void heap_fork_release(void) {
  for (heap_t *h = registry; h; h = h->registry_next) os_unlock(&h->pages_lock);
  os_unlock(&heaps_lock);
  os_unlock(&exit_lock);
}

/* The child: the forking thread has an id of its own there (the idle
 * owners' rule asks the OS about a heap's thread by it). */
void heap_fork_child(void) {
  heap_t *heap = heap_home();
  if (!heap_is_sentinel(heap) && !heap->shared) heap_set_thread(heap, os_thread_id());
  heap_fork_release();
}

/* -------------------------------------------------------------- queries */

/* Visits every heap some thread owns or left (not explicit arenas). */
void heap_for_each(void (*fn)(heap_t *heap, void *arg), void *arg) {
  os_lock(&heaps_lock);
  for (heap_t *h = registry; h; h = h->registry_next) fn(h, arg);
  os_unlock(&heaps_lock);
}

void heap_count_threads(uint64_t *in_use, uint64_t *n_abandoned) {
  *in_use = 0;
  os_lock(&heaps_lock);
  for (heap_t *h = registry; h; h = h->registry_next) *in_use += h->in_use && !h->shared;
  *n_abandoned = atomic_load_explicit(&abandoned_count, memory_order_relaxed);
  os_unlock(&heaps_lock);
}
