/*
 * internal.h - what the modules of alloy tell each other, and in which
 * order they may call each other.  Layers, from the bottom; a file calls
 * only files of its own layer or below (a call upwards is a defect, except
 * inside the core knot, whose files must call each other: see
 * docs/DESIGN.md "Layers"):
 *
 *   1 platform   os.h (contract), os_linux.c, os_rseq_linux.c (restartable
 *                sequences: the per-CPU caches')
 *   2 base       meta.c (process-lifetime metadata), report.c (a malloc-free
 *                printf and misuse reports), options.c (configuration),
 *                size_class.c, process.c (one-time process start),
 *                unwind.c (call stacks from inside malloc: the heap profiler's),
 *                addrtree.c (free extents in address order: first fit)
 *   3 back end   pagemap.c (frame -> header), segment.c (frames, segments,
 *                spans, large and big blocks, decay, THP), vg.c (what
 *                memcheck is told, when it runs the program: vg.h)
 *   4 core knot  page.c (one page's bitmaps), heap.c (thread heaps, the
 *                allocation slow path, abandonment), stats.c (counters folded
 *                at events, snapshots), free.c (every free), remote.c
 *                (other threads' frees, gathered per freeing thread), prof_sample.c
 *                (the heap profiler's sampling schedule on the event
 *                countdown), prof_table.c (its samples, found when blocks
 *                are freed), percpu.c (per-CPU caches over central
 *                pages: rseq.h, docs/PERCPU.md)
 *   5 front ends arena.c (explicit arenas), tcache.c, background.c,
 *                event.c (the rare-event hook: sampling, statistics, decay),
 *                prof.c (the heap profiler: recording samples, automatic
 *                profiles, start and exit), prof_dump.c (the profile file)
 *   6 API        alloc.c (+ fastpath.h), mallocx.c, ctl.c (+ ctl.h),
 *                prof_ctl.c, stats_print.c, override.c and mallinfo.c (the
 *                standard names), init.c (fork handlers and exit reports,
 *                registered at load time)
 *
 * Names: alloy_* is the public prefixed API, alloy__* internal symbols
 * shared across files, module_verb_object otherwise (STYLE.md).
 */
#ifndef ALLOY_INTERNAL_H
#define ALLOY_INTERNAL_H

#include "os.h"
#include "types.h"
#include "vg.h"

#include <stdarg.h>
#include <stddef.h>

/* Index of the lowest set bit of a non-zero word, as a 64-bit value: on
 * x86-64, `rep bsf` (tzcnt where the CPU has it, bsf before: the same for
 * a non-zero word) straight into a 64-bit register, where the builtin's
 * int result costs a sign extension and a dependency-breaking clear at
 * every use on malloc's path. */
static inline uint64_t ctz64(uint64_t x) {
#if defined(__x86_64__)
  uint64_t r;
  __asm__("rep bsfq %1, %0" : "=r"(r) : "rm"(x) : "cc");
  return r;
#else
  return (uint64_t)__builtin_ctzll(x);
#endif
}

/* Set bits of a word, without the library call that __builtin_popcountll
 * becomes on the baseline x86-64 (no POPCNT instruction assumed). */
static inline unsigned popcount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define EXPORT __attribute__((visibility("default")))

/* ================================================================ base */

/* ---------------------------------------------------------------- meta */
void *meta_alloc(size_t size); /* zeroed, 64-aligned, never freed */
size_t meta_mapped_bytes(void);
void meta_fork_prepare(void);
void meta_fork_release(void);

/* -------------------------------------------------------------- report */
/* Tiny printf (%s %d %u %x %p %c %% with l/ll/z and a width) into buf;
 * never allocates. */
size_t fmt_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t fmt_format(char *buf, size_t cap, const char *fmt, ...);
void report_message(const char *fmt, ...);
/* Misuse by the program: reported with the address, then abort unless
 * abort_on_error:false (report_set_abort). */
void report_misuse(const char *what, const void *p, const char *detail);
void report_misuse_fmt(const char *fmt, ...);
void report_set_abort(bool abort_on_misuse);
__attribute__((noreturn)) void report_fatal(const char *fmt, ...);

/* ------------------------------------------------------------- options */
#define PROF_PREFIX_MAX 256
typedef struct {
  bool secure;          /* kept for compatibility: every check is always on */
  bool abort_on_error;  /* abort after reporting misuse (default true) */
  bool guard;           /* guard pages after segments, large and big blocks */
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
  bool tcache;          /* false: no large spans kept by the freeing thread (heap.c) */
  bool sparse_purge;    /* the free OS pages of mostly empty class pages decay (heap.c) */
  int purge;            /* purge_mode_t: how freed pages go back to the OS */
  int percpu;           /* percpu_mode_t: per-CPU caches (default auto) */
  /* the heap profiler (prof*.c), jemalloc's opt.prof* and alloy's own */
  bool prof;            /* the profiler exists at all (default false) */
  bool prof_active;     /* initial prof.active (default true) */
  bool prof_thread_active_init; /* initial thread.prof.active of threads (default true) */
  bool prof_accum;      /* cumulative counts in profiles: keeps every call stack */
  bool prof_final;      /* a profile <prefix>.<pid>.<seq>.f.heap at exit */
  bool prof_leak;       /* with prof_final: a leak summary at exit */
  bool prof_leak_error; /* ... and exit status 1 when something leaked */
  bool prof_gdump;      /* initial prof.gdump: a profile at each new peak of mapped memory */
  int lg_prof_sample;   /* mean bytes between samples, log2 (default 19: 512 KiB) */
  int lg_prof_interval; /* mean bytes between interval profiles, log2; -1 off */
  int prof_unwind;      /* unwind_method_t (unwind.h): how stacks are captured */
  int prof_pid;         /* profile only the process with this pid (0: every process) */
  char prof_prefix[PROF_PREFIX_MAX]; /* file name prefix of automatic profiles ("jeprof") */
} alloy_options_t;
typedef enum { THP_DEFAULT, THP_ALWAYS, THP_NEVER, THP_AUTO } thp_mode_t;
typedef enum { PURGE_DONTNEED, PURGE_FREE } purge_mode_t; /* MADV_DONTNEED or MADV_FREE */
typedef enum { PERCPU_OFF, PERCPU_ON, PERCPU_AUTO } percpu_mode_t;
extern alloy_options_t alloy__options;
extern const char *const alloy__thp_names[];   /* "default", "always", "never", "auto" */
extern const char *const alloy__purge_names[]; /* "dontneed", "free" */
extern const char *const alloy__percpu_names[]; /* "false", "true", "auto" */
extern const char *const alloy__unwind_names[]; /* "cfi", "fp", "libgcc" (unwind_method_t) */
void options_init(void);
static inline int options_decay_ms(void) {
  return __atomic_load_n(&alloy__options.dirty_decay_ms, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------- size class */
void size_class_init(void);
extern size_t alloy__class_size[SIZE_CLASSES];

/* Class index of a request of `size` bytes (1 <= size <= MEDIUM_MAX). */
static inline unsigned size_class_of(size_t size) {
  if (size <= 128) return (unsigned)((size + 15) >> 4) - (size != 0);
  unsigned b = 63u - (unsigned)__builtin_clzll(size - 1); /* 2^b < size <= 2^(b+1) */
  return 8u + (b - 7u) * 8u + (unsigned)(((size - 1) >> (b - 3)) & 7u);
}
static inline size_t size_class_size(unsigned cls) { return alloy__class_size[cls]; }
/* Slices of a thread heap's page of class `cls`: one for blocks up to
 * SMALL_MAX (64 KiB for the classes of 32-128 B where slices are 32 KiB:
 * a page of them fills and refills twice as often at 32 KiB, and
 * mimalloc-bench's xmalloc-test, which frees 8-64 B blocks across threads,
 * ran 1.3x slower), else the fewest (a power of two, at most
 * MEDIUM_PAGE_SLICES) that hold MEDIUM_PAGE_BLOCKS blocks.  A heap keeps a partly used page
 * per class it uses, so the page is its unit of waste: 512 KiB pages for
 * every medium class kept 99 MB resident for 49 MB of strings grown by
 * appends (bench str_append; 75 MB with these).  The per-CPU caches'
 * central pages, shared by every thread, keep MEDIUM_PAGE_SLICES
 * (smaller ones held 10% more memory on threads_200). */
static inline size_t size_class_page_slices(unsigned cls) {
  size_t bsize = alloy__class_size[cls], slices = 1;
  if (bsize >= SMALL_PAGE_WIDE_MIN && bsize <= SMALL_PAGE_WIDE_MAX) return SMALL_PAGE_WIDE_SLICES;
  if (bsize <= SMALL_MAX) return 1;
  while (slices < MEDIUM_PAGE_SLICES && slices * SLICE_SIZE < MEDIUM_PAGE_BLOCKS * bsize) slices *= 2;
  return slices;
}
static inline size_t size_class_central_slices(unsigned cls) {
  return alloy__class_size[cls] <= SMALL_MAX ? 1 : MEDIUM_PAGE_SLICES;
}
/* Blocks of a class lie at multiples of the class size from a slice
 * aligned page start, and the class of a multiple of a power of two `align`
 * is itself a multiple of it (see size_class.c): rounding the size up gives
 * an aligned block from the ordinary small path.  Returns that size, or 0
 * when the request needs the large or big path's alignment. */
static inline size_t aligned_small_size(size_t size, size_t align) {
  if (size > MEDIUM_MAX) return 0;
  if (align <= ALIGNMENT_MIN) return size ? size : 1;
  size_t rounded = (size + align - 1) & ~(align - 1);
  if (rounded == 0) rounded = align;
  return rounded <= MEDIUM_MAX && align <= SLICE_SIZE ? rounded : 0;
}
/* The usable size of a large block: the request rounded to the OS page. */
static inline size_t large_usable(size_t size) {
  size_t ps = os_page_size();
  return (size + ps - 1) & ~(ps - 1);
}

/* ------------------------------------------------------------- process */
extern _Atomic(int) alloy__process_ready; /* 0 not started, 1 running, 2 done */
void process_init(void);

/* ------------------------------------------------------------ addrtree */
/* Free extents by address; the caller's lock covers the tree.  A node is
 * never inserted while in the tree, and removed only while in it. */
void addrtree_insert(addr_node_t **root, addr_node_t *node, size_t size);
void addrtree_remove(addr_node_t **root, addr_node_t *node);
/* The lowest-addressed extent of at least `size`, or NULL: O(log n). */
addr_node_t *addrtree_first_fit(addr_node_t *root, size_t size);

/* ============================================================ back end */

/* ------------------------------------------------------------- pagemap */
/* Frame -> the header governing it: a segment's or big block's (the
 * pointer), a free run's (the pointer | PAGEMAP_FREE), or 0.  Two levels: a
 * first level of 2^(OS_ADDRESS_BITS - 32) offsets in .bss (256 KiB on
 * x86-64, 512 KiB on ARM64, touched only where frames live), second-level
 * chunks of 1024 entries (one per 4 GiB of address space) from the
 * metadata allocator.  An offset of 0 means "no chunk": it lands on a
 * static chunk of zeros. */
#define PAGEMAP_FREE ((uintptr_t)1)
#define PAGEMAP_L2_BITS (32 - SEGMENT_SHIFT)
#define PAGEMAP_L1_BITS (OS_ADDRESS_BITS - 32)
extern uintptr_t alloy__pagemap_l1[(size_t)1 << PAGEMAP_L1_BITS];
extern const uintptr_t alloy__pagemap_zero[(size_t)1 << PAGEMAP_L2_BITS];
/* The first level is indexed by the address's bits 32..OS_ADDRESS_BITS-1
 * only: a pointer outside the user address space lands on some entry, whose
 * value (a segment below 2^OS_ADDRESS_BITS) can never equal that pointer's
 * segment_of, so the check needs no bounds test. */
static inline uintptr_t pagemap_get(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uintptr_t i = (a >> 32) & (((uintptr_t)1 << PAGEMAP_L1_BITS) - 1);
  const uintptr_t *l2 = (const uintptr_t *)((uintptr_t)alloy__pagemap_zero + alloy__pagemap_l1[i]);
  return __atomic_load_n(&l2[(a >> SEGMENT_SHIFT) & (((uintptr_t)1 << PAGEMAP_L2_BITS) - 1)],
                         __ATOMIC_RELAXED);
}
static inline segment_t *segment_of(const void *p) {
  return (segment_t *)((uintptr_t)p & ~(uintptr_t)SEGMENT_MASK);
}
/* True when p lies in the first frame of one of alloy's live segments or
 * big blocks: the free fast path's check before it dereferences anything. */
static inline bool pagemap_owns(const void *p) { return pagemap_get(p) == (uintptr_t)segment_of(p); }
/* The header of p's frame run, or 0 (slow paths: also for pointers beyond
 * the address space, which pagemap_get aliases). */
static inline uintptr_t pagemap_lookup(const void *p) {
  if (((uintptr_t)p >> OS_ADDRESS_BITS) != 0) return 0;
  return pagemap_get(p);
}
bool pagemap_set(const void *frame, size_t frames, uintptr_t value); /* false: out of memory */

/* ------------------------------------------------------------- segment */
extern page_t alloy__page_invalid; /* descriptor of free slices: no heap owns it */
static inline page_t *segment_page_of(const segment_t *seg, const void *p) {
  return seg->slice_page[((uintptr_t)p >> SLICE_SHIFT) % SLICES_PER_SEGMENT];
}
/* The page descriptor for p (a block of any kind, or free slices), or NULL
 * when p is in no live segment or big block.  Slow paths only. */
page_t *segment_page_lookup(const void *p);
/* p was a block alloy freed: it starts free slices or a free run. */
bool segment_was_freed(const void *p);
page_t *segment_alloc_class_page(size_t slices);
void segment_set_fail_after(long n); /* test hook: the n-th next page, span or big block fails (-1: never) */
void segment_free_class_page(page_t *page);
void segment_purge_inside(page_t *page, void *p, size_t size); /* free OS pages of a class page in use */
/* Large (<= LARGE_MAX) and big blocks: any thread allocates and frees them
 * through the back end; `stats` counts them (per arena). */
bool segment_large_fits(size_t size, size_t align); /* else the block is big */
page_t *segment_alloc_large(size_t size, size_t align, unsigned arena, large_stats_t *stats);
bool segment_free_large(page_t *page, large_stats_t *stats); /* false: already freed */
bool segment_cache_large(page_t *page, large_stats_t *stats); /* false: already freed */
void segment_uncache_large(page_t *page, size_t usable, large_stats_t *stats);
void segment_release_cached_large(page_t *page);
page_t *segment_alloc_big(size_t size, size_t align, unsigned arena, large_stats_t *stats, bool guarded);
bool segment_free_big(page_t *page, large_stats_t *stats);   /* false: already freed */
bool segment_resize(page_t *page, size_t size, large_stats_t *stats); /* large or big, in place */
void *segment_move_big(page_t *page, size_t size, large_stats_t *stats); /* grows by moving its pages */
size_t segment_big_usable_for(size_t size, size_t align); /* 0: impossible */
bool segment_decay_due(uint64_t now_ms);
void segment_decay(uint64_t now_ms, bool all); /* all: every free page now (trim, arena purge) */
void segment_count_active(int64_t delta);
void segment_count_thread_heaps(int64_t delta); /* a thread heap claimed (1) or done with (-1): thp:auto */
uint64_t segment_thread_heaps(void);
typedef struct {
  uint64_t active;     /* bytes of pages and blocks in use (touched part of class pages) */
  uint64_t dirty;      /* free, not purged: free slices and free runs */
  uint64_t retained;   /* free runs purged and kept mapped */
  uint64_t headers;    /* segment headers and bitmap slices in use */
  uint64_t segments;   /* class and large segments */
  uint64_t huge_segments; /* of those, advised HUGEPAGE (thp:auto, thp:always) */
  uint64_t big_live;   /* big blocks */
  uint64_t big_bytes;
  uint64_t big_nmalloc;
} segment_totals_t;
void segment_totals(segment_totals_t *t);
extern large_stats_t alloy__large_stats; /* large and big blocks of the thread heaps */
unsigned segment_lextent_of(size_t size);
size_t segment_lextent_size(unsigned j);
void segment_fork_prepare(void);
void segment_fork_release(void);
void segment_fork_child(void);
void segment_waker_enter(void); /* a remote freer reads a page it does not own */
void segment_waker_leave(void);

/* ============================================================ core knot */

/* ----------------------------------------------------------- heap (TLS) */
extern __thread heap_t *alloy__tls_heap __attribute__((tls_model("initial-exec")));
extern heap_t alloy__heap_empty;  /* every thread starts here */
extern heap_t alloy__heap_bound;  /* a thread bound to an explicit arena (heap.c) */
extern heap_t alloy__heap_exited; /* a thread past its exit hook (heap.c) */
extern heap_t alloy__heap_percpu; /* a thread in per-CPU mode (percpu.c) */
extern heap_t alloy__heap_central; /* owner of the per-CPU mode's pages: no thread's */
extern page_t alloy__page_empty;  /* no free blocks: direct[] of the sentinel heaps */
static inline heap_t *heap_get(void) { return alloy__tls_heap; }
/* The shared heaps a TLS pointer may hold that own nothing and must never
 * be written. */
static inline bool heap_is_sentinel(const heap_t *heap) {
  return heap == &alloy__heap_empty || heap == &alloy__heap_bound || heap == &alloy__heap_exited ||
         heap == &alloy__heap_percpu;
}

/* --------------------------------------------------------- page queues */
/* Doubly linked lists of pages (a heap's class queues and full list, the
 * per-CPU central lists), linked through page->prev/next. */
static inline void page_queue_remove(page_queue_t *q, page_t *page) {
  if (page->prev) page->prev->next = page->next;
  else q->first = page->next;
  if (page->next) page->next->prev = page->prev;
  else q->last = page->prev;
  page->next = page->prev = NULL;
}

static inline void page_queue_push_front(page_queue_t *q, page_t *page) {
  page->prev = NULL;
  page->next = q->first;
  if (q->first) q->first->prev = page;
  else q->last = page;
  q->first = page;
}

static inline void page_queue_push_back(page_queue_t *q, page_t *page) {
  page->next = NULL;
  page->prev = q->last;
  if (q->last) q->last->next = page;
  else q->first = page;
  q->last = page;
}

/* ---------------------------------------------------------------- page */
/* A class page's bitmaps: the slot of its first slice in its segment's
 * bitmap slice (the one after the header), found from where its
 * descriptor sits (pages[i] describes the page starting at slice i), with
 * no load.  Not for the sentinel pages. */
_Static_assert(sizeof(page_bits_t) % sizeof(page_t) == 0, "a bitmap slot is a whole number of descriptors");
static inline page_bits_t *segment_page_bits(const segment_t *seg, const page_t *page) {
  uintptr_t off = (uintptr_t)page - (uintptr_t)seg->pages; /* slice * sizeof(page_t) */
  return (page_bits_t *)((uintptr_t)seg + SLICE_SIZE + off * (sizeof(page_bits_t) / sizeof(page_t)));
}
static inline page_bits_t *page_bits(const page_t *page) {
  return segment_page_bits((const segment_t *)((uintptr_t)page & ~(uintptr_t)SEGMENT_MASK), page);
}
void page_init(page_t *page, unsigned cls, size_t block_size);
/* page->last (types.h), stored xor LAST_KEY: the block handed out last. */
static inline void page_note_last(page_t *page, uintptr_t block_or_tagged) { page->last = block_or_tagged ^ LAST_KEY; }
/* p is the page's last block handed out, and its owner has not freed it since. */
static inline bool page_last_is(const page_t *page, const void *p) { return page->last == ((uintptr_t)p ^ LAST_KEY); }
/* The block of a page->last that reads LAST_FREED (the caller tested it). */
static inline uint8_t *page_last_freed_block(const page_t *page) {
  return (uint8_t *)((page->last ^ LAST_KEY) - LAST_FREED);
}
/* Stores free word w of a page whose blocks were taken from it (the hint,
 * the per-CPU batch), clearing its summary bit if that emptied it: the
 * summary stays exact (page_pop_lowest). */
static inline __attribute__((always_inline)) void page_word_taken(page_t *page, uint64_t w, uint64_t bits) {
  __atomic_store_n(&page->free_bits[w].free, bits, __ATOMIC_RELAXED);
  page->free_summary &= ~((uint64_t)(bits == 0) << w);
}
/* Takes the lowest free block of a page whose free_summary (`summary`,
 * non-zero) names a word with free blocks, and keeps the summary exact:
 * the word's bit goes when the word empties.  The same code for malloc's
 * fast path and the slow paths. */
static inline __attribute__((always_inline)) void *page_pop_lowest(page_t *page, uint64_t summary) {
  uint64_t w = ctz64(summary);
  uint64_t *word = &page->free_bits[w].free;
  uint64_t bits = *word, rest = bits & (bits - 1);
  /* (relaxed atomic stores: other threads read these words to catch
   * double frees; the same instruction as a plain store) */
  __atomic_store_n(word, rest, __ATOMIC_RELAXED);
  page->free_summary = rest != 0 ? summary : summary & (summary - 1);
  uint8_t *block = page->start + ((w << 6) + ctz64(bits)) * page->block_size;
  page_note_last(page, (uintptr_t)block);
  page->used++;
  return block;
}
/* Gives the page a free block in its own bits (free_summary non-zero),
 * folding in other threads' frees or carving more of it; false when it
 * has none at all. */
bool page_refill(page_t *page);
uint32_t page_collect_remote(page_t *page); /* blocks folded in */
bool page_has_free(const page_t *page);
bool page_is_sparse(const page_t *page); /* a quarter or less of its carved blocks live */
void page_purge_free(page_t *page);       /* purges its OS pages with no live block */
/* Why p is not a block of this page, or NULL when it starts one. */
const char *page_check_block(const page_t *page, const void *p);
/* Block index of an offset into a page of a size class, with one
 * multiplication: for off = q*size + r, the low 40 bits of off*magic are
 * r*magic + q*d (d = magic*size - 2^40 < size, q*d < 2^40 for pages up to
 * 512 KiB), which is below magic exactly when r == 0; (off*magic) >> 40 is q. */
#define MAGIC_BITS 40
#define MAGIC_MASK ((((uint64_t)1) << MAGIC_BITS) - 1)
static inline uint64_t page_magic_of(size_t block_size) {
  return (((uint64_t)1 << MAGIC_BITS) + block_size - 1) / block_size;
}
static inline bool page_offset_is_interior(uint64_t m, uint64_t magic) { return (m & MAGIC_MASK) >= magic; }
/* Bytes of the page counted in stats.active: the OS pages its blocks were
 * carved from so far, or a large or big block's usable size. */
static inline size_t page_active_bytes(const page_t *page) {
  if (page->slice_count == 0) return 0;
  if (page->kind >= PAGE_LARGE) return page->block_size;
  size_t ps = os_page_size();
  return ((size_t)page->capacity * page->block_size + ps - 1) & ~(ps - 1);
}
static inline heap_t *page_heap(const page_t *page) {
  return (heap_t *)(atomic_load_explicit(&page->xheap, memory_order_relaxed) & ~XHEAP_TAGS);
}
static inline int64_t alloc_charge_of(size_t bytes) { return (int64_t)((bytes << CHARGE_SHIFT) + 1); }

/* ---------------------------------------------------------------- heap */
heap_t *heap_init_thread(void); /* the calling thread's new heap, or NULL */
heap_t *heap_for_thread(void);  /* its heap, made if need be; NULL once the thread exited */
heap_t *heap_home(void);        /* the calling thread's own heap, even while bound or per-CPU */
heap_t *heap_bound_home(void);  /* a bound thread's own heap, kept aside (thread.arena) */
void heap_bound_home_set(heap_t *home);
void heap_thread_done(void *heap); /* the thread-exit hook: abandon */
heap_t *heap_new_shared(void);  /* a heap no thread owns (arenas, exited threads) */
void heap_reset(heap_t *heap);
/* The allocation slow path of a real heap (sizes above DIRECT_MAX, empty
 * pages, large and big blocks, alignments). */
void *heap_alloc(heap_t *heap, size_t size, size_t align);
void *heap_alloc_small(heap_t *heap, size_t size); /* size <= MEDIUM_MAX */
void heap_page_now_free(heap_t *heap, page_t *page);
void heap_sparse_decay(heap_t *heap, uint64_t now_ms); /* purge long mostly-empty pages (events) */
void heap_page_unfull_locked(heap_t *heap, page_t *page);
void *heap_alloc_exited(size_t size, size_t align); /* a thread past its exit hook */
void heap_collect(heap_t *heap);  /* alloy_collect, malloc_trim: adopt and release all */
void heap_release_empty(heap_t *heap);
bool heap_cache_large(heap_t *heap, page_t *page, large_stats_t *stats); /* false: already freed */
void heap_flush_large(heap_t *heap);
void heap_large_idle(heap_t *heap); /* at the heap's rare events */
int64_t heap_large_cached_bytes(void); /* in all heaps' caches (reserved) */
void heap_collect_remote(heap_t *heap);
void heap_take_pending(heap_t *heap);
void heap_wake_page(page_t *page); /* another thread freed into a full page */
void heap_take_idle_pending(heap_t *me); /* idle threads' pending pages, at `me`'s event */
void heap_note_active(heap_t *heap, uint64_t now, uint64_t ms); /* at the heap's events (event.c) */
bool heap_adopt_old(heap_t *heap, uint64_t before_event, uint64_t before_ms);
uint64_t heap_event_clock(void);
void heap_visit_pages(heap_t *heap, void (*fn)(heap_t *heap, page_t *page, void *arg), void *arg);
void heap_for_each(void (*fn)(heap_t *heap, void *arg), void *arg);
void heap_count_threads(uint64_t *in_use, uint64_t *abandoned);
void heap_discard(heap_t *heap); /* arena.<i>.reset: every page back, live blocks and all */
void heap_fork_prepare(void);
void heap_fork_release(void);
void heap_fork_child(void);

/* --------------------------------------------------------------- stats */
void stats_fold(heap_t *heap);
uint64_t stats_allocated_total(void); /* bytes ever allocated, as folded so far */
int64_t stats_event_interval(void);
void stats_orphan_free(size_t bytes);
void stats_publish(heap_t *heap);
void stats_maybe_publish(heap_t *heap);
void stats_refresh(void);
void stats_heap_add(const heap_t *heap, heap_stats_t *sum);
void stats_retire_heap(heap_t *heap);        /* a heap about to be recycled: keep its bins' history */
void stats_exited_add(heap_stats_t *sum);    /* that history, into arena 0's bins */
uint64_t stats_thread_peak(heap_t *heap, bool reset);
typedef struct {
  uint64_t allocated, active, metadata, resident, mapped, retained, dirty;
} stats_memory_t;
void stats_memory(stats_memory_t *m);
void stats_print_at_exit(void);

/* ---------------------------------------------------------------- free */
void free_generic(void *p, page_t *page);
void free_count(heap_t *heap, size_t bytes); /* a free, counted against the calling thread */
void free_report_double(const void *p, const page_t *page);
void free_report_double_word(const page_t *page, size_t w, uint64_t twice);
/* remote.c: other threads' frees of class blocks, gathered per freeing thread */
bool remote_gather(heap_t *heap, page_t *page, size_t index); /* held in heap's table */
uint64_t remote_publish(page_t *page, size_t w, uint64_t mask);
void remote_flush(heap_t *heap);
/* Another thread's block `index` of page, freed by the thread of `heap`:
 * held in its table, or published at once when the thread has no heap
 * (NULL: none, or exiting) or its table found no batching lately
 * (remote_direct).  False when it is a double free found now. */
static inline bool remote_free(heap_t *heap, page_t *page, size_t index) {
  if (heap != NULL && heap->remote_direct == 0) return remote_gather(heap, page, index);
  if (heap != NULL) heap->remote_direct--;
  return remote_publish(page, index / 64, (uint64_t)1 << (index % 64)) == 0;
}
void free_owned_block(heap_t *heap, page_t *page, void *p); /* undo a malloc just made */

/* --------------------------------------------------------- prof_sample */
/* The heap profiler's sampling schedule (prof_sample.c). */
int64_t prof_sample_period_slow(heap_t *heap, uint64_t bytes, int64_t interval);
/* The next event period of `heap`, which allocated `bytes` since its last
 * fold: `interval` (statistics), shortened to the bytes left to its next
 * sample point while sampling is active. */
static inline int64_t prof_sample_period(heap_t *heap, uint64_t bytes, int64_t interval) {
  if (likely(!alloy__options.prof)) return interval;
  return prof_sample_period_slow(heap, bytes, interval);
}
bool prof_sample_due_slow(const heap_t *heap);
/* At an event, before the fold: did the block that ended the period cross
 * the heap's sample point? */
static inline bool prof_sample_due(const heap_t *heap) {
  return unlikely(alloy__options.prof) && prof_sample_due_slow(heap);
}
bool prof_sample_active(void);           /* prof.active */
void prof_sample_set_active(bool on);
unsigned prof_sample_lg(void);           /* prof.lg_sample */
void prof_sample_restart(unsigned lg);   /* a new rate: every heap draws again */
/* ln(x) for 0 < x <= 1 and 1 - exp(-x) for x >= 0, without libm. */
double prof_log(double x);
double prof_one_minus_exp_neg(double x);
/* The unbiased weight of a sampled block of `size` bytes at mean sampling
 * interval `rate`: 1 / P(sampled) = 1 / (1 - exp(-size / rate)). */
double prof_weight(uint64_t size, uint64_t rate);

/* ---------------------------------------------------------- prof_table */
/* The heap profiler's samples (prof_table.c), as the free paths see them.
 * The heads of the samples' hash chains (NULL until the first sample), read
 * without a lock: an empty chain means "not a sample" (one load for most
 * blocks of a tagged page). */
#define PROF_SAMPLE_HASH_BITS 16 /* 256 KiB of heads: they stay in cache on the free path */
extern _Atomic(uint32_t) *alloy__prof_sample_heads;
static inline uint32_t prof_sample_slot(const void *p) {
  return (uint32_t)(((uintptr_t)p * 0x9E3779B97F4A7C15ull) >> (64 - PROF_SAMPLE_HASH_BITS));
}
static inline bool prof_table_may_hold(const void *p) {
  _Atomic(uint32_t) *heads = __atomic_load_n(&alloy__prof_sample_heads, __ATOMIC_ACQUIRE);
  return heads != NULL && atomic_load_explicit(&heads[prof_sample_slot(p)], memory_order_relaxed) != 0;
}
/* p, a block of `page` (tagged XHEAP_SAMPLED, or a large or big block
 * with prof_samples set), is being freed: its sample goes, if it is one
 * (ask prof_table_may_hold first). */
void prof_table_free(page_t *page, const void *p);
/* The owner folded other threads' frees of a tagged page in: the blocks of
 * bitmap word `word` whose bits are set in `bits`. */
void prof_table_collected(page_t *page, unsigned word, uint64_t bits);

/* -------------------------------------------------------------- percpu */
/* Per-CPU caches (docs/PERCPU.md).  A thread in per-CPU mode has TLS heap
 * alloy__heap_percpu; its own heap (percpu_home) counts for it. */
bool percpu_thread_start(heap_t *heap); /* a new thread's heap: true when it went per-CPU */
void percpu_thread_exit(heap_t *heap);
heap_t *percpu_home(void);
/* The heap the calling thread's resizes are counted in (thread.allocated,
 * the event countdown, the heap profiler's growth samples): its TLS heap,
 * or for a per-CPU thread its own; NULL for the other sentinels. */
static inline heap_t *heap_resize_counter(void) {
  heap_t *heap = heap_get();
  if (unlikely(heap == &alloy__heap_percpu)) heap = percpu_home();
  return heap_is_sentinel(heap) ? NULL : heap;
}
void *percpu_malloc(size_t size);             /* the per-CPU thread's malloc */
void *percpu_alloc(size_t size, size_t align); /* its slow path (alignments, large) */
bool percpu_free_block(void *p, page_t *page, size_t index); /* a central block; false: double free */
bool percpu_free(void *p, page_t *page, size_t size); /* the per-CPU thread's free; false: not handled */
void percpu_event(heap_t *heap);  /* a thread heap owner's rare event */
void percpu_decay(uint64_t now_ms);
void percpu_drain_all(void);
typedef struct {
  int mode;               /* os_rseq_owner_t: whose registration serves; OS_RSEQ_NONE: off */
  int error;              /* rseq refused: its errno */
  bool probed;            /* rseq was looked for (per-CPU mode was wanted once) */
  bool mm_cid;            /* caches by concurrency id (else by CPU number) */
  unsigned ncaches;       /* caches mapped (possible CPUs) */
  unsigned caches_used;   /* caches that ever held blocks */
  uint64_t threads;       /* threads in per-CPU mode now */
  uint64_t threads_ever;  /* threads that went per-CPU since the start */
  uint64_t cached_bytes;  /* blocks in caches */
  uint64_t metadata;      /* bytes mapped for the caches */
  uint64_t drains;        /* caches drained from outside (decay, collect) */
} percpu_stats_t;
void percpu_stats(percpu_stats_t *s);
void percpu_stats_add(heap_stats_t *sum); /* central pages into arena 0's bins */
const char *percpu_mode_name(void);       /* "glibc", "own", "off" */
size_t percpu_describe(char *buf, size_t cap);
void percpu_fork_prepare(void);
void percpu_fork_release(void);
void percpu_fork_child(void);

/* =========================================================== front ends */

/* --------------------------------------------------------------- arena */
#define ARENAS_MAX 4096       /* explicit arenas are 1..ARENAS_MAX-1 */
#define ARENAS_ALL 4096       /* MALLCTL_ARENAS_ALL */
unsigned arena_count(void);   /* arenas.narenas: 1 + explicit arenas ever made */
unsigned arena_create(void);  /* 0: none could be made */
bool arena_exists(unsigned index);
void *arena_malloc(unsigned index, size_t size, size_t align);
void *arena_malloc_bound(size_t size, size_t align);
void arena_route_thread(heap_t *home); /* memcheck (vg.h): as if bound, to no arena */
void arena_block_freed(page_t *page); /* a large or big block of an explicit arena is going */
large_stats_t *arena_large_stats(unsigned index);
int arena_reset(unsigned index, bool destroy);
int arena_of(const void *p);
int arena_bind_thread(unsigned index);
unsigned arena_thread_index(void);
unsigned arena_nthreads(unsigned index);
bool arena_with_heap(unsigned index, void (*fn)(heap_t *heap, void *arg), void *arg);
typedef struct {
  heap_stats_t heap;     /* class pages: bins, pactive */
  uint64_t nthreads;
  uint64_t curlextents[LEXTENTS];
  /* jemalloc's small.* and large.* (large includes big blocks), pactive
   * with the large and big blocks. */
  uint64_t small_allocated, small_nmalloc, small_ndalloc;
  uint64_t large_allocated, large_nmalloc, large_ndalloc, large_count;
  uint64_t pactive, pdirty;
} arena_stats_t;
bool arena_stats(unsigned index, arena_stats_t *out);
void arena_fork_prepare(void);
void arena_fork_release(void);
void arena_fork_child(void);

/* -------------------------------------------------------------- tcache */
#define TCACHES_MAX 4093      /* jemalloc's MALLOCX_TCACHE_MAX */
#define TCACHE_MAX_SIZE (32 * ALLOY_KiB) /* jemalloc's default tcache_max, reported */
int tcache_create(unsigned *id);
int tcache_flush(unsigned id);
int tcache_destroy(unsigned id);
bool tcache_exists(unsigned id);
void tcache_fork_prepare(void);
void tcache_fork_release(void);

/* ---------------------------------------------------------- background */
bool background_wanted(void);  /* enabled and not running: start it */
void background_start(void);
int background_set(bool on);   /* the `background_thread` mallctl */
bool background_running(void);
bool background_enabled(void);
void background_counts(uint64_t *threads, uint64_t *runs, uint64_t *avg_interval_ns);
void background_fork_child(void);

/* --------------------------------------------------------------- event */
/* The rare-event hook, every EVENT_INTERVAL_BYTES allocated by a heap:
 * statistics, adoption, guarded sampling, decay.  May return another block
 * (a sampled one) in place of `block`. */
void *event_run(heap_t *heap, void *block);

/* ================================================================= API */
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
/* The malloc slow path of a thread: sentinel heaps (a new thread, one bound
 * to an arena, one past its exit) are dispatched here (alloc.c). */
void *alloc_slow(heap_t *heap, size_t size, size_t align);

#endif /* ALLOY_INTERNAL_H */
