/*
 * vg.h - what memcheck is told when alloy serves a program it runs.
 *
 * Valgrind replaces malloc with its own unless told not to; with
 * --soname-synonyms=somalloc=nouserintercepts and alloy linked statically
 * (or preloaded), alloy serves the memory, and memcheck knows nothing of
 * its blocks: alloy maps segments, which memcheck sees as plain defined
 * memory.  These hooks tell it which bytes are blocks (MALLOCLIKE with the
 * size asked for, the rest of the block inaccessible), which were freed
 * (FREELIKE), and which are neither (a segment's unused slices), so
 * memcheck reports uses after free, overflows and leaks in alloy's blocks.
 *
 * Compiled in when the build finds <valgrind/memcheck.h> (sources.mk
 * defines ALLOY_VALGRIND); otherwise every VG_HOOK is empty.  Switched on
 * once, at process start, only when memcheck itself runs the program
 * (callgrind, which measures alloy, sees the ordinary allocator).  No hook
 * is on a fast path: under memcheck every thread is given the shared heap
 * of exited threads (heap_init_thread), so every malloc reaches
 * heap_alloc and every free reaches free_generic's branch for threads with
 * no heap of their own.  docs/DESIGN.md "Valgrind" has the whole story.
 *
 * vg.c sits in the back-end layer (it looks blocks up in segment.c's page
 * map and calls nothing above); the flag is process.c's.
 */
#ifndef ALLOY_VG_H
#define ALLOY_VG_H

#include <stdbool.h>
#include <stddef.h>

#ifdef ALLOY_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
extern bool alloy__vg_memcheck; /* memcheck runs the program: set once by process_init */
#define VG_HOOK(stmt)                                  \
  do {                                                 \
    if (__builtin_expect(alloy__vg_memcheck, 0)) { stmt; } \
  } while (0)
/* Memcheck answers its own requests with -1 where any other tool (callgrind
 * measuring alloy, massif) leaves the default 0. */
static inline bool vg_memcheck_running(void) {
  static char probe;
  return RUNNING_ON_VALGRIND && (long)VALGRIND_MAKE_MEM_DEFINED(&probe, 1) == -1;
}
#define VG_DETECT() (alloy__vg_memcheck = vg_memcheck_running())
#else
#define VG_HOOK(stmt) \
  do {                \
  } while (0)
#define VG_DETECT() \
  do {              \
  } while (0)
#endif

struct alloy_segment_s;
struct alloy_heap_s;
struct alloy_page_s;

/* A block was handed out for a request of `size` bytes: returns p. */
void *vg_allocated(void *p, size_t size);
/* Before an allocation (undoes the exit-time pass for a late malloc). */
void vg_alloc_begin(void);
/* p is being freed (told before the block can be reused); true when the
 * free must stop there (after the exit-time pass: see vg.c). */
bool vg_freed(const void *p);
/* A block's usable size changed where it stands (xallocx, rallocx). */
void vg_resized(const void *p, size_t old_usable, size_t new_usable);
/* calloc's block that is zero already, without being written. */
void vg_zeroed(void *p, size_t size);
/* The program asked for the usable size: all of it becomes usable. */
size_t vg_usable(const void *p, size_t usable);
/* The bytes of block p memcheck calls the block (realloc copies those). */
size_t vg_block_size(const void *p, size_t usable);
/* A frame becomes a segment: header (and bitmaps) addressable, the
 * slices that will hold blocks inaccessible until handed out. */
void vg_segment_new(struct alloy_segment_s *seg, size_t first_slice);
/* arena.<i>.reset or destroy: every live block of a page goes (a
 * heap_visit_pages callback; large and big blocks go through vg_freed). */
void vg_page_discard(struct alloy_heap_s *heap, struct alloy_page_s *page, void *arg);

#endif /* ALLOY_VG_H */
