/*
 * alloc.c - the prefixed public API (alloy_malloc, alloy_free, ...): the
 * standard semantics of every entry point (zeroing, overflow checks,
 * alignment rules, realloc's contract) on top of the fast paths.
 * Errors follow glibc: NULL with errno = ENOMEM when memory cannot be had,
 * EINVAL for a bad alignment; a failed realloc leaves the old block intact.
 */
#include "fastpath.h"
#include "prof.h"

#include <alloy.h>
#include <errno.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wmissing-attributes" /* aliases drop `malloc` */
/* A hidden second name for an exported function, so that calls from inside
 * the library bind directly instead of through the PLT. */
#define HIDDEN_ALIAS(name) \
  extern __typeof(alloy_##name) alloy__##name \
      __attribute__((alias("alloy_" #name), visibility("hidden")))

/* Keeps init.c (the fork handlers, registered by its constructor) in a
 * static link, where nothing else names it. */
extern const char alloy__init_anchor;
__attribute__((used)) static const char *const init_anchor = &alloy__init_anchor;

EXPORT void *alloy_malloc(size_t size) { return fast_malloc(size); }
EXPORT void alloy_free(void *p) { fast_free(p); }

/* The malloc slow path of a thread: a new thread gets its heap here, a
 * thread bound to an explicit arena allocates there, a thread past its exit
 * hook from the exited threads' heap, a per-CPU thread from its caches; a
 * real heap runs its slow path. */
NOINLINE void *alloc_slow(heap_t *heap, size_t size, size_t align) {
  if (heap == &alloy__heap_bound) return arena_malloc_bound(size, align);
  if (heap == &alloy__heap_exited) {
    void *p = heap_alloc_exited(size, align);
    if (unlikely(alloy__options.prof)) prof_record_pending(); /* sampled under exit_lock */
    return p;
  }
  if (heap == &alloy__heap_empty && (heap = heap_init_thread()) == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (heap_get() == &alloy__heap_percpu) return percpu_alloc(size, align); /* new thread, per-CPU */
  return heap_alloc(heap, size, align);
}

/* The rest of malloc after the second tier. */
static NOINLINE void *alloc_tier3(size_t size, heap_t *heap) {
  if (heap == &alloy__heap_percpu) return percpu_alloc(size, 0); /* above DIRECT_MAX (fastpath.h) */
  if (unlikely(heap_is_sentinel(heap))) return alloc_slow(heap, size, 0);
  if (likely(size <= MEDIUM_MAX)) return heap_alloc_small(heap, size == 0 ? 1 : size);
  return heap_alloc(heap, size, 0);
}

/* alloc_last's way out when the block's bit was not set (a bug): out of
 * line, so that the hit path keeps its registers (three saved without). */
static NOINLINE void *alloc_last_miss(heap_t *heap, page_t *page, size_t size) {
  return malloc_from_word(heap, page, size);
}

/* fast_malloc when the page's last block was freed since (fastpath.h):
 * that block, else the bitmap's. */
NOINLINE void *alloc_last(heap_t *heap, page_t *page, size_t size) {
  uint8_t *again = page_last_freed_block(page); /* the caller saw the tag */
  if (unlikely(!page_take_tagged(page, again))) return alloc_last_miss(heap, page, size);
  if (unlikely((heap->event_countdown -= page->alloc_charge) < 0)) return event_run(heap, again);
  return again;
}

/* fast_malloc's second tier: above 1 KiB (no direct slot), the class's
 * current page taken as the fast path takes a direct slot's; at most 1 KiB,
 * the class's page has nothing in its own bits (its summary is zero): on to
 * the third tier, which folds in other threads' frees or carves.  The
 * sentinel pages' summaries are zero, so they fall through. */
NOINLINE void *alloc_tier2(size_t size, heap_t *heap) {
  if (unlikely(size > DIRECT_MAX)) {
    /* 1 KiB to 64 KiB: no direct slot; the class's current page by its
     * class number (4 KiB buffers are common: a call chain to the search
     * cost 60 more instructions than a small malloc).  The sentinel heaps'
     * queues are empty, so they fall through. */
    if (size > MEDIUM_MAX) return alloc_tier3(size, heap);
    page_t *page = heap->queues[size_class_of(size)].first;
    if (page == NULL) return alloc_tier3(size, heap);
    /* then as fast_malloc does with a direct slot's page (the summary
     * tested first: malloc_from_word would come back here) */
    if (page->last & LAST_FREED) return alloc_last(heap, page, size);
    if (unlikely(page->free_summary == 0)) return alloc_tier3(size, heap);
    return malloc_from_word(heap, page, size);
  }
  return alloc_tier3(size, heap);
}

static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* True when the block at p (a valid block start of its page) is free. */
static bool block_is_free(const page_t *page, const void *p) {
  if (page->kind >= PAGE_LARGE) return page->used == 0;
  size_t index = (size_t)(((uint64_t)((const uint8_t *)p - page->start) * page->block_magic) >> MAGIC_BITS);
  uint64_t bit = (uint64_t)1 << (index % 64);
  return ((__atomic_load_n(&page_bits(page)->word[index / 64].free, __ATOMIC_RELAXED) |
           atomic_load_explicit(&page_bits(page)->word[index / 64].remote, memory_order_relaxed)) & bit) != 0;
}

/* The page of a live block, or NULL after reporting when p is not one. */
static page_t *block_page(const void *p, const char *what) {
  page_t *page = segment_page_lookup(p);
  if (page == NULL) {
    process_init();
    report_misuse(what, p, segment_was_freed(p) ? "already freed (double free)" : "not allocated by alloy");
    return NULL;
  }
  const char *bad = page_check_block(page, p);
  if (bad || block_is_free(page, p)) {
    process_init();
    if (!bad || segment_was_freed(p)) bad = "already freed (double free)";
    report_misuse(what, p, bad);
    return NULL;
  }
  return page;
}

/* free_sized/sdallocx: the size must be one the block could have been asked
 * for: of the block's size class; for large and big blocks, within the OS
 * page the usable size was rounded to; or at most the usable size and at
 * least half of it (what realloc keeps in place). */
static bool size_fits_block(const page_t *page, size_t size) {
  size_t usable = page->block_size;
  if (size > usable) return false;
  if (page->kind <= PAGE_MEDIUM)
    return size_class_of(size) == page->size_class || size >= usable / 2;
  return usable - size < os_page_size() || size >= usable / 2;
}

EXPORT size_t alloy_usable_size(const void *p) {
  if (p == NULL) return 0;
  page_t *page = block_page(p, "usable size of an invalid pointer");
  if (page == NULL) return 0;
  size_t usable = page->block_size;
  VG_HOOK(usable = vg_usable(p, usable));
  return usable;
}

EXPORT void *alloy_calloc(size_t n, size_t size) {
  size_t total;
  if (unlikely(__builtin_mul_overflow(n, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = fast_malloc(total);
  if (unlikely(p == NULL)) return NULL;
  /* fresh large and big blocks are zero already: not touching them keeps
   * them out of RSS until the program writes them */
  if (total > MEDIUM_MAX && segment_page_lookup(p)->is_zero) {
    VG_HOOK(vg_zeroed(p, total));
    return p;
  }
  return memset(p, 0, total);
}

/* Counts a block's change of usable size against the calling thread. */
static void count_resize(size_t old_usable, size_t new_usable) {
  heap_t *heap = heap_resize_counter();
  if (heap == NULL) return;
  if (new_usable > old_usable)
    heap->event_countdown -= (int64_t)(new_usable - old_usable) << CHARGE_SHIFT;
  else
    heap->counters.freed_bytes += old_usable - new_usable;
}

static large_stats_t *block_stats(const page_t *page) {
  return page->arena != 0 ? arena_large_stats(page->arena) : &alloy__large_stats;
}

/* Large and big blocks grow or shrink where they stand when the back end
 * has room next to them. */
static bool resize_in_place(page_t *page, size_t size) {
  if (page->kind < PAGE_LARGE) return false;
  size_t old = page->block_size;
  if (!segment_resize(page, size, block_stats(page))) return false;
  count_resize(old, page->block_size);
  if (unlikely(alloy__options.prof)) prof_resized(page->start, page->start); /* sampled by growth too */
  VG_HOOK(vg_resized(page->start, old, page->block_size));
  return true;
}

/* xallocx: grows or shrinks p where it stands; false when it cannot. */
bool alloy__resize_in_place(void *p, size_t size) {
  page_t *page = block_page(p, "resize of an invalid pointer");
  if (page == NULL) return false;
  if (size <= page->block_size) return true;
  return resize_in_place(page, size);
}

/* A large block shrunk by a slice or more gives the slices back
 * (segment.c), even to half its size or more, where any other block stays
 * as it is: a 2 MiB buffer cut to 1.1 MiB held 2 MiB resident. */
static bool large_gives_back(const page_t *page, size_t size) {
  return page->kind == PAGE_LARGE && size > MEDIUM_MAX && !alloy__options.guard &&
         (large_usable(size) + SLICE_SIZE - 1) / SLICE_SIZE < page->slice_count;
}

/* Where a small or medium block that must move grows to: at least a
 * quarter more than it had, so a buffer grown a little at a time (a string
 * appended to) moves every fourth size class, not at every one of alloy's
 * eight classes per doubling (measured on bench/workloads/realloc_grow.c).
 * Shrinking and large sizes get exactly what was asked. */
static size_t realloc_target(size_t size, size_t usable) {
  if (size <= usable || size > MEDIUM_MAX) return size;
  size_t headroom = usable + usable / 4;
  return size < headroom && headroom <= MEDIUM_MAX ? headroom : size;
}

#ifdef ALLOY_VALGRIND
/* realloc under memcheck (vg.h), as valgrind's own: never in place, so
 * memcheck sees exactly the new size and a use of the old block after it;
 * the bytes memcheck held for the block are copied. */
static NOINLINE void *realloc_memcheck(void *p, size_t usable, size_t size) {
  size_t old = vg_block_size(p, usable);
  void *q = fast_malloc(size);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  fast_free(p);
  return q;
}
#endif

EXPORT void *alloy_realloc(void *p, size_t size) {
  if (p == NULL) return fast_malloc(size);
  page_t *page = block_page(p, "realloc of an invalid pointer");
  if (page == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (size == 0) { /* as glibc: free and return NULL */
    fast_free(p);
    return NULL;
  }
  size_t usable = page->block_size;
  VG_HOOK(return realloc_memcheck(p, usable, size));
  if (size <= usable && size >= usable / 2 && !large_gives_back(page, size)) return p;
  if (resize_in_place(page, size)) return p;
  if (page->kind == PAGE_BIG && size > usable && page->arena == 0) {
    /* a big block moves with its pages (mremap): nothing copied or refaulted */
    void *q = segment_move_big(page, size, block_stats(page));
    if (q) { /* counted as a new block and a freed one, as a copying realloc is */
      heap_t *heap = heap_resize_counter();
      if (heap) {
        heap->counters.freed_bytes += usable;
        heap->event_countdown -= alloc_charge_of(segment_page_lookup(q)->block_size);
      }
      if (unlikely(alloy__options.prof)) prof_resized(p, q);
      return q;
    }
  }
  void *q = fast_malloc(realloc_target(size, usable));
  if (q == NULL && size > usable) q = fast_malloc(size); /* the headroom may be what failed */
  if (q == NULL) return NULL; /* errno is ENOMEM; p untouched */
  memcpy(q, p, size < usable ? size : usable);
  fast_free(p);
  return q;
}

EXPORT void *alloy_reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return alloy_realloc(p, total);
}

void *alloy__aligned(size_t align, size_t size) {
  if (align <= ALIGNMENT_MIN) return fast_malloc(size);
  if (size > (size_t)PTRDIFF_MAX || align > (size_t)PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t small = aligned_small_size(size, align);
  if (small) return fast_malloc(small);
  heap_t *heap = heap_get();
  return heap_is_sentinel(heap) ? alloc_slow(heap, size, align) : heap_alloc(heap, size, align);
}

EXPORT void *alloy_aligned_alloc(size_t align, size_t size) {
  if (!is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return alloy__aligned(align, size);
}

EXPORT int alloy_posix_memalign(void **out, size_t align, size_t size) {
  if (!is_pow2(align) || align % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = alloy__aligned(align, size);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

/* glibc's memalign rounds a non-power-of-two alignment up. */
EXPORT void *alloy_memalign(size_t align, size_t size) {
  if (align > (size_t)PTRDIFF_MAX) {
    errno = EINVAL;
    return NULL;
  }
  if (!is_pow2(align)) align = align <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzll(align - 1));
  return alloy__aligned(align, size);
}

EXPORT void *alloy_valloc(size_t size) { return alloy__aligned(os_page_size(), size); }

EXPORT void *alloy_pvalloc(size_t size) {
  size_t ps = os_page_size();
  if (size > (size_t)PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = size == 0 ? ps : (size + ps - 1) & ~(ps - 1);
  return alloy__aligned(ps, rounded);
}

/* False when `size` cannot be the size p was allocated with (a sized free
 * with a wrong size); true when it can, or when p is not a block at all
 * (the free path reports that).  0 means "size not known" (aligned delete). */
bool alloy__sized_free_ok(const void *p, size_t size) {
  if (p == NULL || size == 0) return true;
  page_t *page = segment_page_lookup(p);
  return !(page && !page_check_block(page, p) && !block_is_free(page, p) && !size_fits_block(page, size));
}

/* Frees p after checking the size the program says it had (free_sized,
 * sized operator delete, sdallocx). */
void alloy__free_checked_size(void *p, size_t size) {
  if (!alloy__sized_free_ok(p, size)) {
    report_misuse_fmt("alloy: free with a wrong size: %p (%zu bytes given, the block holds %zu)", p,
                      size, segment_page_lookup(p)->block_size);
    return;
  }
  fast_free(p);
}

/* A per-CPU thread's free after the fast path's miss: percpu_free takes a
 * valid central block of the size given into its CPU's cache.  Anything
 * else (another page, misuse, a size to look at closer) goes on as any
 * thread's free: a sized free is checked, then comes back through fast_free
 * with size 0. */
NOINLINE void free_percpu_thread(void *p, page_t *page, size_t size) {
  if (percpu_free(p, page, size)) return;
  if (size) alloy__free_checked_size(p, size);
  else free_generic(p, page);
}

EXPORT void alloy_free_sized(void *p, size_t size) { fast_free_sized(p, size); }

/* An aligned block of a size class was sized up to a multiple of its
 * alignment first (alloy__aligned); large and big ones were not. */
EXPORT void alloy_free_aligned_sized(void *p, size_t align, size_t size) {
  size_t rounded = size && is_pow2(align) ? aligned_small_size(size, align) : 0; /* 0: size unknown */
  fast_free_sized(p, rounded ? rounded : size);
}

/* Also from a thread that never allocated: it takes a heap to adopt into. */
EXPORT void alloy_collect(void) {
  heap_t *heap = heap_for_thread();
  if (heap) heap_collect(heap);
}

HIDDEN_ALIAS(malloc);
HIDDEN_ALIAS(free);
HIDDEN_ALIAS(calloc);
HIDDEN_ALIAS(realloc);
HIDDEN_ALIAS(reallocarray);
HIDDEN_ALIAS(aligned_alloc);
HIDDEN_ALIAS(posix_memalign);
HIDDEN_ALIAS(memalign);
HIDDEN_ALIAS(valloc);
HIDDEN_ALIAS(pvalloc);
HIDDEN_ALIAS(usable_size);
HIDDEN_ALIAS(free_sized);
HIDDEN_ALIAS(free_aligned_sized);
HIDDEN_ALIAS(collect);
