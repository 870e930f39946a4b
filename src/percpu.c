/*
 * percpu.c - the per-CPU front end (docs/PERCPU.md): caches of free blocks
 * per (virtual) CPU and size class, taken and refilled with restartable
 * sequences (rseq.h), over a central page layer shared by every CPU.
 * Memory then grows with the number of CPUs, not of threads.
 *
 * MODES.  percpu:true puts every thread in per-CPU mode from its first
 * call; percpu:false never; percpu:auto (default) once more than 8 threads
 * per CPU the process may use live (thread heaps then cost memory per
 * thread for nothing, and per-CPU mode is faster too; below that thread
 * heaps are faster: docs/PERCPU.md has the measurements).  A thread in per-CPU mode points its TLS heap at the
 * sentinel alloy__heap_percpu: the thread-heap fast path misses there and
 * sends malloc here (fastpath.h); its own heap (tls_home) stays for
 * counting (thread.allocated, the event countdown, statistics), for large
 * and big blocks, and keeps whatever pages it had before (adopted, or made
 * before an auto switch) until they empty.  Where rseq is unavailable
 * (os_rseq_probe: no kernel support, seccomp) every thread keeps its
 * thread heap, as before.
 *
 * CENTRAL PAGES.  Pages of per-CPU blocks belong to no thread: their xheap
 * is alloy__heap_central, and each size class keeps them in two lists
 * under its own lock (central_t).  On such a page the remote bitmap is
 * reused as the CACHE bitmap: a block is
 *     free in its page    free bit set      (the central lists hand it out)
 *     in a CPU cache      cache bit set     (or in transit to or from one)
 *     live                neither
 * and never both, and a block moving between page and cache has at least
 * one bit set at every moment (the setter runs before the clearer).  Every
 * free of a central block, by any thread in any mode, comes here
 * (free_generic's hook): it sets the cache bit atomically, and a bit
 * already set, or a free bit set, is a double free (reported, as for
 * every other block).  malloc clears the bit atomically as it takes the
 * block out of the cache.  One atomic read-modify-write each way is the
 * price of hardening in this mode (measured in docs/PERCPU.md).
 * page->used counts blocks out of the page (live or cached), under the
 * class lock; remote_summary stays 0, so page_refill's collection of
 * remote frees never folds cache bits into free bits (and the thread-heap
 * free path, which reads a remote word only where remote_summary names it,
 * never reaches a central page: no thread's heap owns one).  For the same
 * reason a heap-profiler sample on a central page (XHEAP_SAMPLED in its
 * xheap, prof_table.c) is dropped here when its block is freed, not at a
 * fold (block_mark_cached).
 *
 * Lock order: drain_lock, then a class's lock, then the back end's.  No
 * lock is ever taken inside a restartable sequence, and nothing here waits
 * for another thread but on those locks.
 */
#include "internal.h"
#include "rseq.h"

#include <errno.h>
#include <string.h>

/* Cache capacity per class, by bytes: 32 KiB of blocks, at least 2 and at
 * most 128 of them; a refill or flush moves half of it. */
#define PCPU_CLASS_BYTES (32 * ALLOY_KiB)
#define PCPU_MIN_SLOTS 2
#define PCPU_MAX_CAP 128
#define PCPU_BATCH_MAX (PCPU_MAX_CAP / 2)
/* percpu:auto switches once more than this many threads per CPU live
 * (docs/PERCPU.md, "When per-CPU mode wins": below it thread heaps are
 * faster on every workload of the bench; above it per-CPU mode wins on
 * both time and memory). */
#define PCPU_AUTO_THREADS_PER_CPU 8
/* ... and only once the count stays over it: for this many thread starts in
 * a row (a burst of new threads switches early, before their thread heaps
 * take pages), or for this long (threads that come slowly).  Any start or
 * exit that finds the count at or below the threshold restarts both.  A
 * program that replaces its threads (each starts its successor, then exits,
 * as larson does) briefly counts both generations: 8 such chains on 2 CPUs
 * reached 17 live threads within 100 thread starts and switched at once,
 * which cost them twice the CPU time (bench larson_like_8: 3.5 s of CPU
 * against 1.7 with thread heaps). */
#define PCPU_AUTO_SUSTAIN_STARTS 16
#define PCPU_AUTO_SUSTAIN_MS 50

/* The per-CPU thread's TLS heap: no pages, so the fast path misses. */
heap_t alloy__heap_percpu = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
    .shared = true, /* as every sentinel (free_generic tests this) */
};
/* The owner of central pages (page->xheap): no thread's heap. */
heap_t alloy__heap_central = {
    .direct = {[0 ... DIRECT_SLOTS - 1] = &alloy__page_empty},
    .event_countdown = INT64_MAX,
    .shared = true,
};

static __thread heap_t *tls_home __attribute__((tls_model("initial-exec")));

/* What the fast paths read, on one line: set once at setup. */
static struct {
  intptr_t cs_off;  /* rseq_cs of the thread's area, from the thread pointer */
  intptr_t cpu_off; /* mm_cid (or cpu_id) of the area, from the thread pointer */
  uintptr_t base;   /* cache 0 */
  uint8_t class_of[DIRECT_SLOTS]; /* (size + 15) / 16 -> class, up to 1 KiB */
} fp __attribute__((aligned(64)));

enum { SETUP_NONE, SETUP_READY, SETUP_UNAVAILABLE };
static os_lock_t setup_lock = OS_LOCK_INIT;
static _Atomic(int) setup_state;
static os_rseq_info_t rseq_info;
static bool use_mm_cid;
static bool can_drain; /* membarrier works: idle caches can be drained from outside */
static unsigned ncaches;
static uint16_t slot_begin[SIZE_CLASSES], slot_end[SIZE_CLASSES], batch_size[SIZE_CLASSES];

static _Atomic(uint32_t) live_threads;   /* thread heaps made and not exited */
static _Atomic(uint32_t) percpu_threads; /* of which in per-CPU mode */
static _Atomic(uint64_t) percpu_threads_ever; /* threads that went per-CPU */
static _Atomic(bool) switched;           /* auto: threads go per-CPU from now on */
static _Atomic(unsigned) cpus_allowed;   /* at the first decision (auto); racing first deciders agree */
static _Atomic(uint64_t) over_since_ms;  /* auto: since when (+1) over the threshold; 0 not */
static _Atomic(uint32_t) over_starts;    /* auto: thread starts in a row over it */

/* Per cache, off the fast path. */
typedef struct {
  _Atomic(uint64_t) refills; /* slow-path visits: activity seen by decay */
  uint64_t last_sig;         /* the cache's signature at the previous decay pass */
  _Atomic(bool) used;
} cache_info_t;
static cache_info_t *info;
static os_lock_t drain_lock = OS_LOCK_INIT; /* one drainer at a time */
static _Atomic(uint64_t) last_decay_ms;
static _Atomic(uint64_t) drains;

/* A size class's pages. */
typedef struct {
  os_lock_t lock;
  page_queue_t avail; /* pages with free bits, used first to last */
  page_queue_t full;  /* pages whose blocks are all out (live or cached) */
  uint64_t retired_fills;
} __attribute__((aligned(64))) central_t;
static central_t central[SIZE_CLASSES];

/* ------------------------------------------------------------- caches */

static inline _Atomic(uint32_t) *cache_hdr(unsigned k, unsigned cls) {
  return (_Atomic(uint32_t) *)(fp.base + ((uintptr_t)k << PCPU_SHIFT)) + cls;
}
static inline void **cache_slots(unsigned k) {
  return (void **)(fp.base + ((uintptr_t)k << PCPU_SHIFT) + PCPU_SLOTS_OFF);
}
static inline uint32_t hdr_initial(unsigned cls) {
  return (uint32_t)slot_begin[cls] | (uint32_t)slot_end[cls] << 16;
}
/* Blocks a header says the cache holds (0 for "not set up" and stopped). */
static inline unsigned hdr_count(uint32_t h, unsigned cls) {
  unsigned cur = h & 0xffff;
  return h != 0 && h != PCPU_STOPPED && cur > slot_begin[cls] ? cur - slot_begin[cls] : 0;
}

/* TSan sees neither the sequences nor the order one CPU gives them: a
 * block pushed by one thread and popped by the next on the same CPU, or
 * taken out by a drainer after membarrier, is handed over as through a
 * lock.  The TSan build says so, per class (more order than there is:
 * that can hide a race, never invent one). */
#if defined(__SANITIZE_THREAD__)
#define PCPU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PCPU_TSAN 1
#endif
#endif
#ifdef PCPU_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_HANDOVER_RELEASE(cls) __tsan_release(&central[cls])
#define TSAN_HANDOVER_ACQUIRE(cls) __tsan_acquire(&central[cls])
#else
#define TSAN_HANDOVER_RELEASE(cls) ((void)0)
#define TSAN_HANDOVER_ACQUIRE(cls) ((void)0)
#endif

static inline void *cache_pop(unsigned cls) {
  void *p = rseq_pop(fp.cs_off, fp.cpu_off, fp.base, cls);
  if (p) TSAN_HANDOVER_ACQUIRE(cls);
  return p;
}
static inline int cache_push(unsigned cls, void *p) {
  TSAN_HANDOVER_RELEASE(cls);
  return rseq_push(fp.cs_off, fp.cpu_off, fp.base, cls, p);
}

/* The cache the calling thread is on now (it may move at once: only for
 * setting headers up and for counting). */
static unsigned cache_current(void) {
  uint32_t k = __atomic_load_n((const uint32_t *)(rseq_thread_pointer() + (uintptr_t)fp.cpu_off),
                               __ATOMIC_RELAXED);
  return k < ncaches ? k : 0;
}

/* A header reads 0 until its class is first used on that cache: both
 * sequences fail on it (slot -1 is a NULL in the header area; end 0), and
 * the slow path sets it up here. */
static void cache_setup_class(unsigned cls) {
  unsigned k = cache_current();
  uint32_t zero = 0;
  atomic_compare_exchange_strong(cache_hdr(k, cls), &zero, hdr_initial(cls));
  if (!atomic_load_explicit(&info[k].used, memory_order_relaxed))
    atomic_store_explicit(&info[k].used, true, memory_order_relaxed);
  atomic_fetch_add_explicit(&info[k].refills, 1, memory_order_relaxed);
}

/* --------------------------------------------------------- the central */

static uint64_t block_index(const page_t *page, const void *p) {
  return ((uint64_t)((const uint8_t *)p - page->start) * page->block_magic) >> MAGIC_BITS;
}

static NOINLINE void report_corrupt(const void *p) {
  report_fatal("alloy: per-CPU cache corrupted: %p is in a cache but not marked as cached", p);
}

static page_t *central_fresh_page(central_t *c, unsigned cls) {
  size_t bsize = size_class_size(cls);
  page_t *page = segment_alloc_class_page(size_class_central_slices(cls));
  if (page == NULL) return NULL;
  page_init(page, cls, bsize);
  atomic_store_explicit(&page->xheap, (uintptr_t)&alloy__heap_central, memory_order_release);
  page->list = LIST_QUEUE;
  page_queue_push_back(&c->avail, page);
  return page;
}

/* Up to n free blocks of class cls out of its pages, their cache bits set:
 * in a cache from here on.  Fewer only when memory is short. */
static unsigned central_take(unsigned cls, void **out, unsigned n) {
  central_t *c = &central[cls];
  unsigned got = 0;
  os_lock(&c->lock);
  page_t *page = c->avail.first;
  while (got < n) {
    if (page == NULL && (page = central_fresh_page(c, cls)) == NULL) break;
    if (page->free_summary == 0 && !page_refill(page)) {
      page_t *next = page->next;
      page_queue_remove(&c->avail, page);
      page->list = LIST_FULL;
      page_queue_push_back(&c->full, page);
      page = next;
      continue;
    }
    uint64_t w = ctz64(page->free_summary), word = page->free_bits[w].free, take = 0;
    unsigned want = n - got;
    for (uint64_t rest = word; rest && want; rest &= rest - 1, want--) take |= rest & (0 - rest);
    /* cache bits first: at every moment the block is free by one bit */
    uint64_t old = atomic_fetch_or_explicit(&page_bits(page)->word[w].remote, take, memory_order_acq_rel);
    uint64_t clash = old & take; /* being freed a second time right now: its freer reports it */
    take &= ~clash;
    page_word_taken(page, w, word & ~take);
    page->used += popcount64(take);
    uint8_t *base = page->start + w * 64 * page->block_size;
    for (; take; take &= take - 1) out[got++] = base + (size_t)__builtin_ctzll(take) * page->block_size;
    if (clash) page = page->next;
  }
  os_unlock(&c->lock);
  return got;
}

/* Blocks back into their pages (all of class cls): free bits set, then
 * cache bits cleared; pages that empty go back to the back end. */
static void central_give(unsigned cls, void *const *blocks, unsigned n) {
  central_t *c = &central[cls];
  os_lock(&c->lock);
  for (unsigned i = 0; i < n; i++) {
    void *p = blocks[i];
    page_t *page = segment_page_of(segment_of(p), p);
    uint64_t index = block_index(page, p), bit = (uint64_t)1 << (index % 64);
    uint64_t *word = &page_bits(page)->word[index / 64].free;
    __atomic_store_n(word, *word | bit, __ATOMIC_RELAXED);
    page->free_summary |= (uint64_t)1 << (index / 64);
    /* acquire: pairs with the freer's release (block_mark_cached), so what
     * the freer did with the block happens before the page is released */
    uint64_t old = atomic_fetch_and_explicit(&page_bits(page)->word[index / 64].remote, ~bit, memory_order_acq_rel);
    if (unlikely(!(old & bit))) report_corrupt(p);
    if (page->list == LIST_FULL) {
      page_queue_remove(&c->full, page);
      page->list = LIST_QUEUE;
      page_queue_push_back(&c->avail, page);
    }
    if (--page->used == 0) {
      page_queue_remove(&c->avail, page);
      c->retired_fills += page->capacity;
      atomic_store_explicit(&page->xheap, 0, memory_order_relaxed);
      segment_free_class_page(page);
    }
  }
  os_unlock(&c->lock);
}

/* ------------------------------------------------------------- set-up */

static void classes_setup(void) {
  unsigned slot = 1; /* slot 0: the NULL the stopped state pops */
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    size_t cap = PCPU_CLASS_BYTES / size_class_size(c);
    if (cap < PCPU_MIN_SLOTS) cap = PCPU_MIN_SLOTS;
    if (cap > PCPU_MAX_CAP) cap = PCPU_MAX_CAP;
    slot_begin[c] = (uint16_t)(slot + 1); /* slot `slot` stays NULL: class c's bottom */
    slot_end[c] = (uint16_t)(slot + 1 + cap);
    batch_size[c] = (uint16_t)(cap / 2 ? cap / 2 : 1);
    slot = slot_end[c];
  }
  _Static_assert(PCPU_SLOTS_OFF >= SIZE_CLASSES * 4 + 8, "headers, then slot -1, before the slots");
  if (slot > PCPU_MAX_SLOTS) report_fatal("alloy: per-CPU caches: %u slots do not fit", slot);
  for (size_t i = 0; i < DIRECT_SLOTS; i++) fp.class_of[i] = (uint8_t)size_class_of(i ? i * ALIGNMENT_MIN : 1);
}

/* Once per process, at the first thread that goes per-CPU. */
static bool percpu_setup(void) {
  int s = atomic_load_explicit(&setup_state, memory_order_acquire);
  if (likely(s != SETUP_NONE)) return s == SETUP_READY;
  os_lock(&setup_lock);
  s = atomic_load_explicit(&setup_state, memory_order_relaxed);
  if (s == SETUP_NONE) {
    s = SETUP_UNAVAILABLE;
    os_rseq_probe(&rseq_info, RSEQ_SIG);
    if (rseq_info.owner != OS_RSEQ_NONE) {
      use_mm_cid = rseq_info.feature_size >= RSEQ_FEATURE_MM_CID;
      ncaches = os_cpus_possible();
      info = meta_alloc(sizeof(cache_info_t) * ncaches);
      void *base = info ? meta_alloc((size_t)ncaches << PCPU_SHIFT) : NULL;
      if (base) {
        classes_setup();
        fp.cs_off = rseq_info.offset + RSEQ_OFF_CS;
        fp.cpu_off = rseq_info.offset + (use_mm_cid ? RSEQ_OFF_MM_CID : RSEQ_OFF_CPU_ID);
        fp.base = (uintptr_t)base;
        can_drain = os_rseq_fence();
        s = SETUP_READY;
      }
    }
    atomic_store_explicit(&setup_state, s, memory_order_release);
  }
  os_unlock(&setup_lock);
  return s == SETUP_READY;
}

/* ------------------------------------------------------- thread modes */

/* The calling thread's heap `heap` (just made, or its thread heap at an
 * event) goes per-CPU if it can. */
static bool percpu_enter(heap_t *heap) {
  if (!percpu_setup() || !os_rseq_thread_ready(&rseq_info, RSEQ_SIG)) return false;
  tls_home = heap;
  alloy__tls_heap = &alloy__heap_percpu;
  atomic_fetch_add_explicit(&percpu_threads, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&percpu_threads_ever, 1, memory_order_relaxed);
  return true;
}

static uint32_t auto_threshold(void) {
  unsigned n = atomic_load_explicit(&cpus_allowed, memory_order_relaxed);
  if (n == 0) atomic_store_explicit(&cpus_allowed, n = os_cpus_allowed(), memory_order_relaxed);
  return PCPU_AUTO_THREADS_PER_CPU * n;
}

static void auto_reset(void) {
  atomic_store_explicit(&over_since_ms, 0, memory_order_relaxed);
  atomic_store_explicit(&over_starts, 0, memory_order_relaxed);
}

/* percpu:auto with `live` threads now (`start`: at a thread start): true
 * once the count has stayed over the threshold long enough. */
static bool auto_sustained(uint32_t live, bool start) {
  if (atomic_load_explicit(&switched, memory_order_relaxed)) return true;
  if (live <= auto_threshold()) {
    auto_reset();
    return false;
  }
  bool due = start && atomic_fetch_add_explicit(&over_starts, 1, memory_order_relaxed) + 1 >=
                          PCPU_AUTO_SUSTAIN_STARTS;
  uint64_t now = os_now_ms() + 1, since = 0;
  if (!atomic_compare_exchange_strong_explicit(&over_since_ms, &since, now, memory_order_relaxed,
                                               memory_order_relaxed) &&
      now - since >= PCPU_AUTO_SUSTAIN_MS)
    due = true;
  if (due) atomic_store_explicit(&switched, true, memory_order_relaxed);
  return due;
}

static bool percpu_wanted(uint32_t live) {
  switch (alloy__options.percpu) {
  case PERCPU_OFF: return false;
  case PERCPU_ON: return true;
  default: return auto_sustained(live, true);
  }
}

bool percpu_thread_start(heap_t *heap) {
  uint32_t live = atomic_fetch_add_explicit(&live_threads, 1, memory_order_relaxed) + 1;
  return percpu_wanted(live) && percpu_enter(heap);
}

/* Thread exit (heap_thread_done, which then retires the heap as any
 * thread heap's): the thread is a thread-heap thread again until its TLS
 * heap becomes the exited threads' sentinel. */
void percpu_thread_exit(heap_t *heap) {
  uint32_t live = atomic_fetch_sub_explicit(&live_threads, 1, memory_order_relaxed) - 1;
  if (alloy__options.percpu == PERCPU_AUTO && live <= auto_threshold()) auto_reset();
  if (tls_home == heap) {
    if (alloy__tls_heap == &alloy__heap_percpu) alloy__tls_heap = heap;
    tls_home = NULL;
    atomic_fetch_sub_explicit(&percpu_threads, 1, memory_order_relaxed);
  }
}

heap_t *percpu_home(void) { return tls_home; }

/* ------------------------------------------------------------- malloc */

/* A block just taken out of a cache: its cache bit cleared, its charge
 * counted against the thread. */
static inline __attribute__((always_inline)) void *block_taken(void *p) {
  page_t *page = segment_page_of(segment_of(p), p);
  uint64_t index = block_index(page, p), bit = (uint64_t)1 << (index % 64);
  /* acquire: pairs with the release of the free that cached it, so the last
   * owner's use of the block happens before the new owner's (the same CPU
   * orders them anyway; this says so to the language and to TSan) */
  uint64_t old = atomic_fetch_and_explicit(&page_bits(page)->word[index / 64].remote, ~bit, memory_order_acquire);
  if (unlikely(!(old & bit))) report_corrupt(p);
  heap_t *home = tls_home;
  if (unlikely((home->event_countdown -= page->alloc_charge) < 0)) return event_run(home, p);
  return p;
}

/* The cache was empty (or not set up, or being drained): a batch from the
 * central pages, one for the caller, the rest into the cache the thread is
 * on by then; what does not fit goes back. */
static NOINLINE void *percpu_refill(unsigned cls) {
  void *blocks[PCPU_BATCH_MAX];
  cache_setup_class(cls);
  unsigned n = central_take(cls, blocks, batch_size[cls]);
  if (n == 0) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned i = 0;
  while (i + 1 < n && cache_push(cls, blocks[i])) i++;
  if (i + 1 < n) central_give(cls, blocks + i, n - 1 - i);
  return block_taken(blocks[n - 1]);
}

NOINLINE void *percpu_malloc(size_t size) {
  unsigned cls;
  if (likely(size <= DIRECT_MAX)) cls = fp.class_of[(size + ALIGNMENT_MIN - 1) / ALIGNMENT_MIN];
  else if (size <= MEDIUM_MAX) cls = size_class_of(size);
  else return heap_alloc(tls_home, size, 0);
  void *p = cache_pop(cls);
  if (unlikely(p == NULL)) return percpu_refill(cls);
  return block_taken(p);
}

void *percpu_alloc(size_t size, size_t align) {
  if (align <= ALIGNMENT_MIN && size <= MEDIUM_MAX) return percpu_malloc(size);
  return heap_alloc(tls_home, size, align);
}

/* --------------------------------------------------------------- free */

/* The cache was full (or not set up, or being drained): half of it goes
 * back to the pages with the block. */
static NOINLINE void percpu_overflow(unsigned cls, void *p) {
  void *blocks[PCPU_BATCH_MAX + 1];
  unsigned n = 0;
  if (heap_get() == &alloy__heap_percpu) {
    cache_setup_class(cls);
    if (cache_push(cls, p)) return;
    while (n < batch_size[cls] && (blocks[n] = cache_pop(cls)) != NULL) n++;
  }
  blocks[n++] = p;
  central_give(cls, blocks, n);
}

/* Marks block `index` of a central page as cached: false when it is free
 * already, in a cache (its cache bit) or in its page (its free bit): a
 * double free.  A heap-profiler sample (the page tagged XHEAP_SAMPLED in
 * `xheap`, its owner word as the caller read it) leaves the table here, as
 * free_owned drops a thread heap's: before the block can be handed out
 * again at the same address, and only here, since central pages never fold
 * remote bits (where other pages drop what other threads freed). */
static inline __attribute__((always_inline)) bool block_mark_cached(page_t *page, size_t index, uintptr_t xheap) {
  size_t w = index / 64;
  uint64_t bit = (uint64_t)1 << (index % 64);
  uint64_t old = atomic_fetch_or_explicit(&page_bits(page)->word[w].remote, bit, memory_order_acq_rel);
  if (unlikely(old & bit)) return false;
  if (unlikely(__atomic_load_n(&page_bits(page)->word[w].free, __ATOMIC_RELAXED) & bit)) {
    atomic_fetch_and_explicit(&page_bits(page)->word[w].remote, ~bit, memory_order_relaxed);
    return false;
  }
  if (unlikely(xheap & XHEAP_SAMPLED)) {
    uint8_t *p = page->start + index * page->block_size;
    if (prof_table_may_hold(p)) prof_table_free(page, p);
  }
  return true;
}

/* A free of block `index` of a central page, by any thread (free.c), the
 * block validated.  False when it is free already (the caller reports it). */
bool percpu_free_block(void *p, page_t *page, size_t index) {
  if (!block_mark_cached(page, index, atomic_load_explicit(&page->xheap, memory_order_relaxed))) return false;
  unsigned cls = page->size_class;
  heap_t *self = heap_get();
  /* under auto, a thread that only frees reaches no event to switch at:
   * it switches here, or every free of its would take a class lock */
  if (self != &alloy__heap_percpu && !heap_is_sentinel(self) &&
      atomic_load_explicit(&switched, memory_order_relaxed) && percpu_enter(self))
    self = &alloy__heap_percpu;
  if (likely(self == &alloy__heap_percpu) && cache_push(cls, p)) return true;
  percpu_overflow(cls, p);
  return true;
}

/* The free of a per-CPU thread (fastpath.h), the page map having vouched
 * for p and its page not the thread's (it has none): a valid block of a
 * central page, of `size` (a sized free's; 0 unknown) if it plainly is the
 * block's (as the thread-heap fast path accepts it), goes into the CPU's
 * cache; a double free is reported here.  False for anything else, which
 * the caller hands on as any thread's free: the generic path reports
 * misuse, and a sized free is checked there and comes back with size 0. */
NOINLINE bool percpu_free(void *p, page_t *page, size_t size) {
  uintptr_t xheap = atomic_load_explicit(&page->xheap, memory_order_relaxed);
  if (unlikely((heap_t *)(xheap & ~XHEAP_TAGS) != &alloy__heap_central)) return false;
  uint64_t m = (uint64_t)((uint8_t *)p - page->start) * page->block_magic;
  uint64_t index = m >> MAGIC_BITS;
  if (unlikely(page_offset_is_interior(m, page->block_magic))) return false;
  if (unlikely(index >= __atomic_load_n(&page->capacity, __ATOMIC_RELAXED))) return false;
  /* read before the push: once the block is in the cache, another thread
   * may take it to its page and give the page back */
  size_t bytes = page->block_size;
  unsigned cls = page->size_class;
  if (unlikely(size != 0 && (size > bytes || 2 * size < bytes))) return false;
  if (unlikely(!block_mark_cached(page, index, xheap))) {
    free_report_double(p, page);
    return true;
  }
  if (unlikely(!cache_push(cls, p))) percpu_overflow(cls, p);
  heap_t *home = tls_home;
  home->counters.freed_bytes += bytes;
  /* a thread that mostly frees reaches few events: fold here too (free_count) */
  if (unlikely(home->counters.freed_bytes - home->folded_freed > EVENT_INTERVAL_BYTES)) stats_fold(home);
  return true;
}

/* ------------------------------------------------------------ draining */

/* Changes whenever the cache is used, near enough (a malloc and a free
 * that leave every header where it was go unseen: draining such a cache
 * costs it one refill). */
static uint64_t cache_signature(unsigned k) {
  uint64_t sig = atomic_load_explicit(&info[k].refills, memory_order_relaxed);
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    sig = sig * 0x9E3779B97F4A7C15ULL + atomic_load_explicit(cache_hdr(k, c), memory_order_relaxed);
  return sig;
}

/* Empties cache k from any thread, under drain_lock: every class holding
 * blocks is stopped (its header swapped for PCPU_STOPPED, on which both
 * sequences fail), membarrier aborts every sequence that read the old
 * header and has not committed, and a header that changed meanwhile (a
 * commit landed between the swap and the fence) is swapped again, until
 * all stay stopped.  Then the blocks go back to their pages and the
 * headers are set up empty. */
static void cache_drain(unsigned k) {
  uint32_t held[SIZE_CLASSES];
  bool stopped[SIZE_CLASSES] = {false}, any = false;
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    _Atomic(uint32_t) *h = cache_hdr(k, c);
    uint32_t v = atomic_load_explicit(h, memory_order_relaxed);
    if (hdr_count(v, c) == 0) continue;
    if (atomic_compare_exchange_strong(h, &v, PCPU_STOPPED)) {
      held[c] = v;
      stopped[c] = any = true;
    }
  }
  if (!any) return;
  for (bool again = true; again;) {
    again = false;
    if (!os_rseq_fence()) { /* cannot be sure: put every header back as it was */
      for (unsigned c = 0; c < SIZE_CLASSES; c++) {
        uint32_t v = PCPU_STOPPED;
        if (stopped[c]) atomic_compare_exchange_strong(cache_hdr(k, c), &v, held[c]);
      }
      can_drain = false;
      return;
    }
    for (unsigned c = 0; c < SIZE_CLASSES; c++) {
      if (!stopped[c]) continue;
      _Atomic(uint32_t) *h = cache_hdr(k, c);
      uint32_t v = atomic_load_explicit(h, memory_order_acquire);
      if (v == PCPU_STOPPED) continue;
      again = true;
      if (atomic_compare_exchange_strong(h, &v, PCPU_STOPPED)) held[c] = v;
    }
  }
  void **slots = cache_slots(k);
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    if (!stopped[c]) continue;
    TSAN_HANDOVER_ACQUIRE(c);
    unsigned cur = held[c] & 0xffff;
    if (cur > slot_begin[c]) central_give(c, slots + slot_begin[c], cur - slot_begin[c]);
    TSAN_HANDOVER_RELEASE(c);
    atomic_store_explicit(cache_hdr(k, c), hdr_initial(c), memory_order_release);
  }
  atomic_fetch_add_explicit(&drains, 1, memory_order_relaxed);
}

static bool cache_holds(unsigned k) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    if (hdr_count(atomic_load_explicit(cache_hdr(k, c), memory_order_relaxed), c)) return true;
  return false;
}

/* The decay schedule: at most every half dirty_decay_ms, a cache unused
 * since the previous pass gives its blocks back (their pages then empty
 * and decay as every free page does). */
void percpu_decay(uint64_t now_ms) {
  if (atomic_load_explicit(&setup_state, memory_order_acquire) != SETUP_READY || !can_drain) return;
  int decay = options_decay_ms();
  if (decay < 0) return;
  uint64_t last = atomic_load_explicit(&last_decay_ms, memory_order_relaxed);
  if (now_ms - last < (uint64_t)decay / 2 ||
      !atomic_compare_exchange_strong(&last_decay_ms, &last, now_ms))
    return;
  if (!os_trylock(&drain_lock)) return;
  for (unsigned k = 0; k < ncaches; k++) {
    if (!atomic_load_explicit(&info[k].used, memory_order_relaxed)) continue;
    uint64_t sig = cache_signature(k);
    if (sig == info[k].last_sig && cache_holds(k)) {
      cache_drain(k);
      sig = cache_signature(k);
    }
    info[k].last_sig = sig;
  }
  os_unlock(&drain_lock);
}

/* alloy_collect, malloc_trim, arena.<i>.purge: every cache, now. */
void percpu_drain_all(void) {
  if (atomic_load_explicit(&setup_state, memory_order_acquire) != SETUP_READY || !can_drain) return;
  os_lock(&drain_lock);
  for (unsigned k = 0; k < ncaches; k++)
    if (atomic_load_explicit(&info[k].used, memory_order_relaxed)) cache_drain(k);
  os_unlock(&drain_lock);
}

/* The rare-event hook of a thread heap's owner (event.c): a per-CPU thread
 * gives back what emptied among the pages it kept and runs the caches'
 * decay; under percpu:auto a thread heap goes per-CPU once the switch is
 * made. */
void percpu_event(heap_t *heap) {
  if (heap_get() == &alloy__heap_percpu) {
    heap_release_empty(heap);
    percpu_decay(os_now_ms());
  } else if (heap_get() == heap && alloy__options.percpu == PERCPU_AUTO &&
             (atomic_load_explicit(&switched, memory_order_relaxed) ||
              (atomic_load_explicit(&over_since_ms, memory_order_relaxed) != 0 &&
               auto_sustained(atomic_load_explicit(&live_threads, memory_order_relaxed), false)))) {
    percpu_enter(heap); /* a thread heap's event: the switch was made, or is due now */
  }
}

/* ----------------------------------------------------------- statistics */

void percpu_stats(percpu_stats_t *s) {
  memset(s, 0, sizeof *s);
  int state = atomic_load_explicit(&setup_state, memory_order_acquire);
  /* what the probe wrote is read only once setup_state published it */
  s->mode = state == SETUP_READY ? rseq_info.owner : OS_RSEQ_NONE;
  s->error = state != SETUP_NONE ? rseq_info.error : 0;
  s->mm_cid = state == SETUP_READY && use_mm_cid;
  s->threads = atomic_load_explicit(&percpu_threads, memory_order_relaxed);
  s->threads_ever = atomic_load_explicit(&percpu_threads_ever, memory_order_relaxed);
  s->drains = atomic_load_explicit(&drains, memory_order_relaxed);
  s->probed = state != SETUP_NONE;
  if (state != SETUP_READY) return;
  s->ncaches = ncaches;
  for (unsigned k = 0; k < ncaches; k++) {
    if (!atomic_load_explicit(&info[k].used, memory_order_relaxed)) continue;
    s->caches_used++;
    for (unsigned c = 0; c < SIZE_CLASSES; c++)
      s->cached_bytes +=
          hdr_count(atomic_load_explicit(cache_hdr(k, c), memory_order_relaxed), c) * size_class_size(c);
  }
  s->metadata = (uint64_t)ncaches << PCPU_SHIFT;
}

/* The central pages in the bin statistics of arena 0 (curregs: live
 * blocks, so those in caches are taken off). */
void percpu_stats_add(heap_stats_t *sum) {
  if (atomic_load_explicit(&setup_state, memory_order_acquire) != SETUP_READY) return;
  size_t ps = os_page_size();
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    central_t *cc = &central[c];
    bin_stats_t *b = &sum->bins[c];
    os_lock(&cc->lock);
    for (int list = 0; list < 2; list++)
      for (page_t *p = list ? cc->full.first : cc->avail.first; p; p = p->next) {
        b->curregs += p->used;
        b->curslabs++;
        b->nonfull_slabs += p->used < p->reserved;
        b->nfills += p->capacity;
        sum->pactive += page_active_bytes(p) / ps;
      }
    b->nfills += cc->retired_fills;
    os_unlock(&cc->lock);
    for (unsigned k = 0; k < ncaches; k++) {
      unsigned n = hdr_count(atomic_load_explicit(cache_hdr(k, c), memory_order_relaxed), c);
      b->curregs -= n <= b->curregs ? n : b->curregs;
    }
  }
}

static const char *mode_name(int mode) {
  return mode == OS_RSEQ_GLIBC ? "glibc" : mode == OS_RSEQ_OWN ? "own" : "off";
}
const char *percpu_mode_name(void) {
  percpu_stats_t s;
  percpu_stats(&s);
  return mode_name(s.mode);
}

/* One line for the exit summary (alloy run --stats). */
size_t percpu_describe(char *buf, size_t cap) {
  percpu_stats_t s;
  percpu_stats(&s);
  const char *opt = alloy__percpu_names[alloy__options.percpu];
  if (s.mode != OS_RSEQ_NONE)
    return fmt_format(buf, cap,
                      "per-CPU caches (percpu:%s): rseq registered by %s, %u of %u caches used (%s), "
                      "%llu threads ran per-CPU, %llu KiB cached",
                      opt, s.mode == OS_RSEQ_GLIBC ? "glibc" : "alloy", s.caches_used, s.ncaches,
                      s.mm_cid ? "concurrency ids" : "CPU numbers", (unsigned long long)s.threads_ever,
                      (unsigned long long)(s.cached_bytes / 1024));
  if (s.probed)
    return fmt_format(buf, cap, "thread heaps (percpu:%s; rseq unavailable, errno %d)", opt, s.error);
  if (alloy__options.percpu == PERCPU_AUTO)
    return fmt_format(buf, cap, "thread heaps (percpu:auto; never more than %u threads per CPU for long)",
                      PCPU_AUTO_THREADS_PER_CPU);
  return fmt_format(buf, cap, "thread heaps (percpu:%s)", opt);
}

/* ------------------------------------------------------------------ fork */

/* Every lock of this file, in its order (a drain or a refill in progress
 * in a thread that does not exist in the child would leave one held).
 * A batch another thread held between a page and a cache at the fork is
 * lost to the child, as that thread's own memory is. */
void percpu_fork_prepare(void) {
  os_lock(&setup_lock);
  os_lock(&drain_lock);
  for (unsigned c = 0; c < SIZE_CLASSES; c++) os_lock(&central[c].lock);
}

void percpu_fork_release(void) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++) os_unlock(&central[c].lock);
  os_unlock(&drain_lock);
  os_unlock(&setup_lock);
}

/* In the child only the forking thread lives; its rseq registration (the
 * kernel keeps it across fork) and the caches, copied, serve as they are. */
void percpu_fork_child(void) {
  atomic_store_explicit(&live_threads, 1, memory_order_relaxed);
  atomic_store_explicit(&percpu_threads, heap_get() == &alloy__heap_percpu ? 1 : 0, memory_order_relaxed);
  percpu_fork_release();
}
