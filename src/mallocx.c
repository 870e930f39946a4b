/*
 * mallocx.c - jemalloc's extended allocation API under alloy's prefix
 * (alloy_mallocx, alloy_rallocx, ...), with jemalloc's flag encoding:
 * MALLOCX_LG_ALIGN(la) in the low 6 bits, MALLOCX_ZERO = 0x40, the tcache
 * field in bits 8..19 (0: the thread's, 1: MALLOCX_TCACHE_NONE, tc + 2: the
 * explicit tcache tc) and the arena field from bit 20 (a + 1: arena a).
 * Blocks of an explicit arena come from that arena (arena.c); an explicit
 * tcache is a name for the thread heap's own cache (tcache.c), so the
 * tcache bits select nothing else.  override.c exports these under
 * jemalloc's names, so programs linked against libjemalloc never mix its
 * blocks with alloy's under LD_PRELOAD.
 */
#include "internal.h"

#include <alloy.h>
#include <errno.h>
#include <string.h>

#define FLAG_LG_ALIGN_MASK 0x3f
#define FLAG_ZERO 0x40
#define FLAG_ARENA_SHIFT 20

static size_t flag_align(int flags) {
  unsigned la = (unsigned)flags & FLAG_LG_ALIGN_MASK;
  return la == 0 ? 0 : (size_t)1 << la;
}
/* The explicit arena the flags name, 0 for none. */
static unsigned flag_arena(int flags) { return (unsigned)flags >> FLAG_ARENA_SHIFT; }
static bool flag_routed(int flags) { return flag_arena(flags) != 0; }

/* An allocation the flags send to an explicit arena.  MALLOCX_ARENA(a)
 * stores a + 1; alloy's explicit arenas are numbered from 1 (arena 0 is the
 * thread heaps), so MALLOCX_ARENA(0) is the thread's heap.  An explicit
 * tcache names a cache of the thread heap's: the same blocks (tcache.c). */
static void *routed_malloc(size_t size, size_t align, int flags) {
  unsigned arena = flag_arena(flags) ? flag_arena(flags) - 1 : 0;
  if (arena == 0) return align > ALIGNMENT_MIN ? alloy__aligned(align, size) : alloy__malloc(size);
  size_t small = aligned_small_size(size, align);
  return small ? arena_malloc(arena, small, 0) : arena_malloc(arena, size, align);
}

EXPORT void *alloy_mallocx(size_t size, int flags) {
  size_t align = flag_align(flags);
  void *p;
  if (unlikely(flag_routed(flags))) p = routed_malloc(size, align, flags);
  else p = align > ALIGNMENT_MIN ? alloy__aligned(align, size) : alloy__malloc(size);
  /* The whole usable size: a later growing rallocx zeroes only from there. */
  if (p != NULL && (flags & FLAG_ZERO)) memset(p, 0, alloy__usable_size(p));
  return p;
}

/* The usable size a request would get, without allocating (0: impossible). */
EXPORT size_t alloy_nallocx(size_t size, int flags) {
  process_init(); /* the size classes and the page size: it can be the first call */
  size_t align = flag_align(flags);
  if (size > (size_t)PTRDIFF_MAX) return 0;
  if (align <= ALIGNMENT_MIN) {
    if (size <= MEDIUM_MAX) return size_class_size(size_class_of(size));
    if (size <= LARGE_MAX) return large_usable(size);
    return segment_big_usable_for(size, 0);
  }
  size_t rounded = (size + align - 1) & ~(align - 1);
  if (rounded == 0) rounded = align;
  if (rounded <= MEDIUM_MAX && align <= SLICE_SIZE) return size_class_size(size_class_of(rounded));
  if (segment_large_fits(size == 0 ? 1 : size, align)) return large_usable(size == 0 ? 1 : size);
  return segment_big_usable_for(size == 0 ? 1 : size, align);
}

EXPORT size_t alloy_sallocx(const void *p, int flags) {
  (void)flags;
  return alloy__usable_size(p);
}

/* Like realloc, but keeps the alignment the flags ask for and, with
 * MALLOCX_ZERO, zeroes what lies beyond the old usable size (jemalloc's
 * rule).  On failure NULL, with p untouched and still the caller's on every
 * path: nothing is freed before the new block exists. */
EXPORT void *alloy_rallocx(void *p, size_t size, int flags) {
  size_t align = flag_align(flags);
  size_t old = alloy__usable_size(p);
  if (old == 0) return NULL; /* reported: not a live block */
  if (size == 0) size = 1;
  /* Kept in place only where it starts at the alignment and, for a block
   * of a size class, its usable size is a multiple of the alignment: else
   * sdallocx(q, usable, flags), which jemalloc allows, would round the
   * usable size up past the block. */
  bool aligned = align <= ALIGNMENT_MIN ||
                 (((uintptr_t)p & (align - 1)) == 0 && (old > MEDIUM_MAX || (old & (align - 1)) == 0));
  /* The size sdallocx(q, size, flags) will check: a class size is rounded
   * to the alignment first (alloy_free_aligned_sized). */
  size_t checked = align > ALIGNMENT_MIN ? aligned_small_size(size, align) : 0;
  if (checked == 0) checked = size;
  void *q;
  if (!flag_routed(flags) && align <= ALIGNMENT_MIN) {
    q = alloy__realloc(p, size); /* realloc's own contract: NULL leaves p intact */
  } else if (aligned && ((checked <= old && checked >= old / 2) || (size > old && alloy__resize_in_place(p, size)))) {
    /* Stays where it is, alignment and arena with it.  A block shrunk
     * below half its usable size moves, as with realloc, and so does one
     * the aligned size no longer fits: kept, it would fail the size check
     * of sdallocx(q, size, flags) that follows. */
    q = p;
  } else {
    /* moves into the arena the flags name (realloc would move it
     * to the thread's heap), at the alignment they ask for */
    q = flag_routed(flags) ? routed_malloc(size, align, flags) : alloy__aligned(align, size);
    if (q != NULL) {
      memcpy(q, p, old < size ? old : size);
      alloy_dallocx(p, flags);
    }
  }
  if (q == NULL) return NULL;
  size_t now = alloy__usable_size(q);
  if ((flags & FLAG_ZERO) && now > old) memset((char *)q + old, 0, now - old);
  return q;
}

/* Resizes in place to at least `size` (at most size + extra); returns the
 * block's usable size afterwards, which is below `size` when it could not
 * grow. */
EXPORT size_t alloy_xallocx(void *p, size_t size, size_t extra, int flags) {
  size_t old = alloy__usable_size(p);
  if (old == 0) return 0;
  size_t want = extra > (size_t)PTRDIFF_MAX - size ? size : size + extra;
  if (!alloy__resize_in_place(p, want) && want != size) alloy__resize_in_place(p, size);
  size_t now = alloy__usable_size(p);
  if ((flags & FLAG_ZERO) && now > old) memset((char *)p + old, 0, now - old);
  return now;
}

EXPORT void alloy_dallocx(void *p, int flags) {
  (void)flags;
  alloy__free(p);
}

EXPORT void alloy_sdallocx(void *p, size_t size, int flags) {
  size_t align = flag_align(flags);
  if (align > ALIGNMENT_MIN) alloy__free_aligned_sized(p, align, size);
  else alloy__free_sized(p, size);
}
