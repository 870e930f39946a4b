/*
 * internal.h - what the modules of alloy tell each other: cross-file
 * functions (alloy__ prefix or module_verb_object), the thread's heap, and
 * the few inline helpers both the fast paths and the slow paths need.
 */
#ifndef ALLOY_INTERNAL_H
#define ALLOY_INTERNAL_H

#include "types.h"
#include <stdarg.h>
#include <stddef.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define INTERNAL __attribute__((visibility("hidden")))

size_t os_page_size(void); /* (the platform layer, below) */

/* ------------------------------------------------------------- heap (TLS) */
extern __thread heap_t *alloy__tls_heap __attribute__((tls_model("initial-exec")));
extern heap_t alloy__heap_empty;  /* every thread starts here */
extern page_t alloy__page_empty;  /* no free blocks: direct[] of the empty heap */
extern page_t alloy__page_invalid; /* descriptor of free slices */

static inline heap_t *heap_get(void) { return alloy__tls_heap; }
extern heap_t alloy__heap_bound; /* TLS heap of a thread bound to an explicit arena (arena.c) */
extern heap_t alloy__heap_exited; /* TLS heap of a thread past its exit hook (heap.c) */
/* The shared heaps a TLS pointer may hold that own nothing and must never
 * be written. */
static inline bool heap_is_sentinel(const heap_t *heap) {
  return heap == &alloy__heap_empty || heap == &alloy__heap_bound || heap == &alloy__heap_exited;
}

heap_t *heap_init_thread(void);            /* the calling thread's real heap, or NULL */
heap_t *heap_for_thread(void);             /* the same, made if need be; NULL once the thread exited */
void heap_thread_done(heap_t *heap);       /* thread exit: abandon */
/* Argument order matches the fast path's registers (size stays in rdi). */
void *heap_malloc_generic(size_t size, heap_t *heap, size_t align);
void *heap_malloc_small(size_t size, heap_t *heap); /* size <= MEDIUM_MAX */
void *heap_event(heap_t *heap, void *block, size_t size);
void heap_page_now_free(heap_t *heap, page_t *page);
void heap_page_unfull(heap_t *heap, page_t *page);
void heap_collect_delayed(heap_t *heap);
void heap_collect(heap_t *heap);
void heap_fork_prepare(void);
void heap_fork_parent(void);
void heap_fork_child(void);
void heap_count_threads(uint64_t *in_use, uint64_t *abandoned);
void heap_reset(heap_t *heap);
void heap_visit_pages(heap_t *heap, void (*fn)(heap_t *heap, page_t *page, void *arg), void *arg);
void heap_for_each(void (*fn)(heap_t *heap, void *arg), void *arg);
uint64_t heap_live_bytes(heap_t *heap);
void heap_collect_remote(heap_t *heap);
bool heap_decay_due(heap_t *heap, uint64_t now_ms);
void heap_background_pass(heap_t *self, uint64_t now_ms);

/* ------------------------------------------------------------- background */
bool background_wanted(void);  /* enabled and not running: start it */
void background_start(void);
int background_set(bool on);   /* the `background_thread` mallctl */
bool background_running(void);
bool background_enabled(void);
void background_counts(uint64_t *threads, uint64_t *runs, uint64_t *avg_interval_ns);
void background_fork_child(void);
void heap_flush(heap_t *heap);

/* ------------------------------------------------------------------ arena */
#define ARENAS_MAX 4096       /* explicit arenas are 1..ARENAS_MAX-1 */
#define ARENAS_ALL 4096       /* MALLCTL_ARENAS_ALL */
unsigned arena_count(void);      /* arenas.narenas: 1 + explicit arenas ever made */
unsigned arena_create(void);     /* 0: none could be made */
heap_t *arena_heap(unsigned index);
void *arena_malloc(unsigned index, size_t size, size_t align);
void *arena_malloc_bound(size_t size, size_t align);
void arena_track_huge(heap_t *heap, void *block);
void arena_untrack_huge(segment_t *seg);
int arena_reset(unsigned index, bool destroy);
int arena_of(const void *p);
int arena_bind_thread(unsigned index);
heap_t *arena_home_heap(void);
unsigned arena_thread_index(void);
unsigned arena_nthreads(unsigned index);
bool arena_with_heap(unsigned index, void (*fn)(heap_t *heap, void *arg), void *arg);
typedef struct {
  heap_stats_t heap;     /* pages: bins, large blocks, pactive, pdirty */
  uint64_t huge_count;   /* live huge blocks */
  uint64_t huge_bytes;
  uint64_t huge_nmalloc; /* ever (arena 0 and all only) */
  uint32_t nthreads;
  /* Derived (arena_stats fills them): jemalloc's small.* and large.*
   * (large includes huge blocks), and pactive with the huge mappings. */
  uint64_t small_allocated, small_nmalloc, small_ndalloc;
  uint64_t large_allocated, large_nmalloc, large_ndalloc;
  uint64_t pactive;
} arena_stats_t;
bool arena_stats(unsigned index, arena_stats_t *out);
void arena_fork_prepare(void);
void arena_fork_release(void);
void arena_fork_child(void);
void arena_for_each_heap(void (*fn)(heap_t *heap, page_t *page, void *arg));

/* ----------------------------------------------------------------- tcache */
#define TCACHES_MAX 4093      /* jemalloc's MALLOCX_TCACHE_MAX */
int tcache_create(unsigned *id);
int tcache_flush(unsigned id);
int tcache_destroy(unsigned id);
void *tcache_malloc(unsigned id, size_t size, unsigned arena);
bool tcache_free(unsigned id, void *p);
void tcache_fork_prepare(void);
void tcache_fork_release(void);

/* ------------------------------------------------------------ size classes */
void size_class_init(void);
extern size_t alloy__class_size[SIZE_CLASSES];
extern uint8_t alloy__direct_class[DIRECT_SLOTS];

/* Class index of a request of `size` bytes (1 <= size <= MEDIUM_MAX). */
static inline unsigned size_class_of(size_t size) {
  if (size <= 128) return (unsigned)((size + 15) >> 4) - (size != 0);
  unsigned b = 63u - (unsigned)__builtin_clzll(size - 1); /* 2^b < size <= 2^(b+1) */
  return 8u + (b - 7u) * 8u + (unsigned)(((size - 1) >> (b - 3)) & 7u);
}
static inline size_t size_class_size(unsigned cls) { return alloy__class_size[cls]; }
/* Blocks of a class lie at multiples of the class size from a 64 KiB
 * aligned page start, and the class of a multiple of a power of two `align`
 * is itself a multiple of it (see size_class.c): rounding the size up gives
 * an aligned block from the ordinary small path.  Returns that size, or 0
 * when the request needs the large or huge path's alignment. */
static inline size_t aligned_small_size(size_t size, size_t align) {
  if (size > MEDIUM_MAX) return 0;
  if (align <= ALIGNMENT_MIN) return size <= MEDIUM_MAX ? (size ? size : 1) : 0;
  size_t rounded = (size + align - 1) & ~(align - 1);
  if (rounded == 0) rounded = align;
  return rounded <= MEDIUM_MAX && align <= SLICE_SIZE ? rounded : 0;
}

/* ----------------------------------------------------------------- segment */
extern uint8_t alloy__segment_map[SEGMENT_MAP_SIZE];

static inline segment_t *segment_of(const void *p) {
  return (segment_t *)((uintptr_t)p & ~(uintptr_t)SEGMENT_MASK);
}
/* Segment map values: 0 the frame is not alloy's; MAP_HEADER a segment
 * starts here; d >= 2: the frame holds the start of a huge block aligned to
 * 4 MiB or more, whose segment header is d-1 frames lower. */
#define MAP_HEADER 1
#define MAP_MAX_DISTANCE 254
/* True when p lies in a 4 MiB frame that starts one of alloy's segments. */
static inline bool segment_map_has(const void *p) {
  uintptr_t frame = (uintptr_t)p >> SEGMENT_SHIFT;
  return frame < SEGMENT_MAP_SIZE &&
         __atomic_load_n(&alloy__segment_map[frame], __ATOMIC_RELAXED) == MAP_HEADER;
}
/* The page descriptor for p, or NULL when p is in none of alloy's segments;
 * also finds blocks aligned beyond the segment size.  Slow paths only. */
page_t *segment_page_lookup(const void *p);
static inline int64_t alloc_charge_of(size_t bytes) {
  return (int64_t)((bytes << CHARGE_SHIFT) + 1);
}
static inline page_t *segment_page_of(const segment_t *seg, const void *p) {
  return seg->slice_page[((uintptr_t)p >> SLICE_SHIFT) % SLICES_PER_SEGMENT];
}
page_t *segment_alloc_page(heap_t *heap, size_t slices, size_t align_slices, segment_list_t list);
bool segment_heap_has_any(const heap_t *heap);
void segment_free_page(heap_t *heap, page_t *page);
void segment_release_spare(heap_t *heap);
void segment_decay(heap_t *heap, bool now);
void segment_move_all(heap_t *from, heap_t *to);
void *segment_huge_alloc(size_t size, size_t align, bool guarded);
size_t segment_huge_usable_for(size_t size, size_t align);
void segment_huge_free(segment_t *seg);
bool segment_huge_recently_freed(const void *p);
void guard_quarantine(segment_t *seg);
bool segment_huge_resize(segment_t *seg, size_t size);
void segment_count(uint64_t *segments, uint64_t *huge);
void segment_bytes(uint64_t *active, uint64_t *dirty, uint64_t *headers);
void segment_heap_usage(heap_t *heap, uint64_t *active, uint64_t *dirty);
void segment_count_active(int64_t delta); /* stats.active: carved or resized page bytes */
void segment_decay_locked(heap_t *heap); /* seg_lock held by the caller */
void segment_discard_all(heap_t *heap);
void segment_huge_totals(uint64_t *live, uint64_t *bytes, uint64_t *nmalloc);
void segment_huge_discard(segment_t *seg);

/* -------------------------------------------------------------- huge cache */
void huge_cache_put(segment_t *seg); /* keeps or unmaps */
segment_t *huge_cache_take(size_t total);
void huge_cache_expire(void);
void huge_cache_flush(void);
size_t huge_cache_bytes(void);
void huge_cache_fork_prepare(void);
void huge_cache_fork_release(void);

/* -------------------------------------------------------------------- page */
void page_init(page_t *page, unsigned cls, size_t block_size);
bool page_extend_free(page_t *page);
void page_collect(page_t *page);
uint32_t page_take_thread_free(page_t *page);
void page_set_tf_state(page_t *page, tf_state_t state);
void page_wait_notify_done(page_t *page);
void page_end_orphan_notify(heap_t *heap, page_t *page, void *arg);
const char *page_check_block(const page_t *page, const void *p);
/* p starts a slice that belongs to no page: a large block already freed. */
static inline bool page_was_large_block(const page_t *page, const void *p) {
  return page->slice_count == 0 && ((uintptr_t)p % SLICE_SIZE) == 0;
}
/* Bytes of the page that count as active (jemalloc's stats.active): the
 * OS pages its blocks were carved into so far, or a large block's usable
 * size.  The uncarved rest of a page was never touched (see page.c). */
static inline size_t page_active_bytes(const page_t *page) {
  if (page->slice_count == 0) return 0;
  if (page->kind == PAGE_LARGE) return page->block_size;
  size_t ps = os_page_size();
  return ((size_t)page->capacity * page->block_size + ps - 1) & ~(ps - 1);
}
static inline heap_t *page_heap(const page_t *page) {
  return (heap_t *)(atomic_load_explicit(&page->xheap, memory_order_relaxed) & ~XHEAP_FULL);
}
static inline bool page_is_full(const page_t *page) {
  return atomic_load_explicit(&page->xheap, memory_order_relaxed) & XHEAP_FULL;
}
/* Free-list links and free marks (see block_t in types.h). */
#define MAGIC_BITS 40
#define MAGIC_MASK ((((uint64_t)1) << MAGIC_BITS) - 1)
static inline block_t *block_next(const page_t *page, const block_t *b) {
  return (block_t *)(b->next_enc ^ page->key);
}
static inline void block_set_next(const page_t *page, block_t *b, const block_t *next) {
  b->next_enc = (uintptr_t)next ^ page->key;
}
static inline uintptr_t block_free_mark(const page_t *page, const void *b) {
  return ~((uintptr_t)b ^ page->key);
}
static inline bool block_is_marked_free(const page_t *page, const block_t *b) {
  return b->free_mark == block_free_mark(page, b);
}
/* True when `off` bytes into the page is not a block boundary, with one
 * multiplication: for off = q*size + r, the low 40 bits of off*magic are
 * r*magic + q*d (d = magic*size - 2^40 < size, q*d < page size), which is
 * below magic exactly when r == 0; and (off*magic) >> 40 is q. */
static inline bool block_offset_is_interior(const page_t *page, uintptr_t off) {
  return ((off * page->block_magic) & MAGIC_MASK) >= page->block_magic;
}
/* Takes the first block of the page's allocation list. */
static inline block_t *page_pop_free(page_t *page) {
  block_t *block = page->free;
  page->free = block_next(page, block);
  block->free_mark = 0;
  page->used++;
  return block;
}
void page_set_key(page_t *page);

/* -------------------------------------------------------------------- free */
void free_generic(void *p, page_t *page);
void free_local(heap_t *heap, page_t *page, block_t *block);
bool free_fork_child_notifying(void); /* resets the count of freers caught mid-handover */

/* ------------------------------------------------------------------- alloc */
/* Hidden aliases of the prefixed API, for calls from inside the library. */
void *alloy__malloc(size_t size);
void alloy__free(void *p);
void *alloy__calloc(size_t n, size_t size);
void *alloy__realloc(void *p, size_t size);
void *alloy__reallocarray(void *p, size_t n, size_t size);
void *alloy__aligned_alloc(size_t align, size_t size);
int alloy__posix_memalign(void **out, size_t align, size_t size);
void *alloy__memalign(size_t align, size_t size);
void *alloy__valloc(size_t size);
void *alloy__pvalloc(size_t size);
size_t alloy__usable_size(const void *p);
void alloy__free_sized(void *p, size_t size);
void alloy__free_aligned_sized(void *p, size_t align, size_t size);
void alloy__collect(void);
void alloy__free_checked_size(void *p, size_t size); /* 0: size unknown */
bool alloy__sized_free_ok(const void *p, size_t size);
bool alloy__resize_in_place(void *p, size_t size);
/* Blocks aligned to `align` (a power of two); NULL and ENOMEM when impossible. */
void *alloy__aligned(size_t align, size_t size);
size_t alloy__large_usable(size_t size);

/* ---------------------------------------------------------------------- os */
size_t os_page_size(void);
void os_init(void);
void *os_map(size_t size);
void *os_map_aligned(size_t size, size_t align, size_t *mapped);
bool os_unmap(void *p, size_t size);
bool os_remap_in_place(void *p, size_t old_size, size_t new_size);
void *os_remap_move(void *p, size_t old_size, size_t new_size, size_t align);
void os_purge(void *p, size_t size);
void os_purge_counts(uint64_t *bytes, uint64_t *calls);
void os_advise_huge(void *p, size_t size, bool huge);
void os_set_clock(uint64_t (*now_ms)(void)); /* test hook: a fake clock (NULL: the real one) */
void os_protect(void *p, size_t size, bool accessible);
size_t os_mapped_bytes(void);
size_t os_mapped_peak(void);
void os_write(int fd, const char *s, size_t n);
__attribute__((noreturn)) void os_abort(void);
uint64_t os_random(void);
const char *os_getenv(const char *name);
int os_getpid(void);
bool os_secure_exec(void); /* AT_SECURE: ignore the environment's configuration */
uint64_t os_now_ms(void); /* monotonic */
void os_yield(void);
void *os_meta_alloc(size_t size); /* zeroed, never freed: heaps and such */
size_t os_meta_bytes(void);
void os_set_fail_after(long n);   /* test hook: fail the n-th next mapping */
void os_fork_prepare(void);
void os_fork_parent(void);
void os_fork_child(void);

/* Test hook: a test may pause a thread at these points (every lock just
 * taken, a remote free between NOTIFYING and PLAIN) and fork there
 * (tests/test_fork.c).  NULL in programs: one load and branch, slow paths only. */
enum { TEST_LOCK_TAKEN, TEST_NOTIFYING };
extern void (*alloy__test_hook)(int point, const void *obj);
static inline void os_test_point(int point, const void *obj) {
  if (unlikely(alloy__test_hook != NULL)) alloy__test_hook(point, obj);
}
void os_lock(os_lock_t *l);
bool os_trylock(os_lock_t *l);
void os_unlock(os_lock_t *l);

/* ---------------------------------------------------------------- options */
typedef struct {
  bool secure;          /* encoded free lists, interior-pointer checks (default true) */
  bool abort_on_error;  /* abort after reporting misuse (default true) */
  bool guard;           /* guard pages after segments, large and huge blocks */
  int guard_sample;     /* bytes between sampled guarded allocations (0: off) */
  int dirty_decay_ms;   /* freed pages go back to the OS after about this long; -1 never */
  int thp;              /* thp_mode_t: transparent huge pages for segments */
  bool stats_summary;   /* print the short summary at exit */
  int summary_pid;      /* only in this process (the launcher's child) */
  bool abort_conf;      /* an unknown key or bad value is fatal (jemalloc's abort_conf) */
  bool stats_print;     /* print the full report (alloy_malloc_stats_print) at exit */
  char stats_print_opts[16]; /* its jemalloc letters ("Jgmdablxeh" at most), NUL-terminated */
  bool background_thread; /* purge from a background thread (default false) */
  int muzzy_decay_ms;   /* jemalloc's; stored and reported only: alloy has no muzzy state */
  unsigned narenas;     /* jemalloc's; 0 automatic (alloy's automatic arenas are thread heaps) */
  bool tcache;          /* jemalloc's; stored only (default true) */
  int purge;            /* purge_mode_t: how freed pages go back to the OS */
} alloy_options_t;
typedef enum { THP_DEFAULT, THP_ALWAYS, THP_NEVER } thp_mode_t;
typedef enum { PURGE_DONTNEED, PURGE_FREE } purge_mode_t; /* MADV_DONTNEED or MADV_FREE */
extern alloy_options_t alloy__options;
void options_init(void);

/* ----------------------------------------------------------------- report */
/* Tiny printf (%s %d %u %zu %zx %p %c %%) into buf; never allocates. */
size_t fmt_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t fmt_format(char *buf, size_t cap, const char *fmt, ...);
void report_message(const char *fmt, ...);
/* Misuse by the program: reported with the address, then abort unless
 * abort_on_error:false. */
void report_misuse(const char *what, const void *p, const char *detail);
void report_misuse_fmt(const char *fmt, ...);
__attribute__((noreturn)) void report_fatal(const char *fmt, ...);

/* ------------------------------------------------------------------ stats */
void stats_fold(heap_t *heap);
int64_t stats_event_interval(void);
void stats_orphan_free(size_t bytes);
void stats_print_at_exit(void);
typedef struct {
  uint64_t allocated, active, metadata, resident, mapped, retained, dirty;
} stats_memory_t;
void stats_memory(stats_memory_t *m);
void stats_publish(heap_t *heap);
void stats_maybe_publish(heap_t *heap);
void stats_refresh(void);
void stats_heap_add(const heap_t *heap, heap_stats_t *sum);
uint64_t stats_thread_peak(heap_t *heap, bool reset);
size_t stats_lextent_size(unsigned j);
unsigned stats_lextent_of(size_t size);

/* ------------------------------------------------------------------- init */
extern _Atomic(int) alloy__process_ready;
extern uint64_t alloy__secret; /* random, chosen at process start */
extern bool alloy__secure;     /* ALLOY_CONF secure (default true), read by free's fast path */
void process_init(void);
void init_thread_register(heap_t *heap);

#endif /* ALLOY_INTERNAL_H */
