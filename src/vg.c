/*
 * vg.c - the bodies of the memcheck hooks (vg.h).  Runs only when memcheck
 * runs the program.  In the back-end layer: it tells valgrind what the
 * page map and page descriptors already say, and calls nothing above.
 *
 * What memcheck is told:
 *   blocks      MALLOCLIKE with the size the program asked for; the rest of
 *               the block is inaccessible (an overflow past the request is
 *               reported even inside the size class), until the program
 *               asks for the usable size (then all of it is usable)
 *   frees       FREELIKE before alloy makes the block reusable, so no other
 *               thread can be handed it while memcheck still calls it live
 *   segments    the slices that hold blocks are inaccessible from the start
 *               (an overflow into a block never handed out is reported);
 *               headers and bitmaps stay addressable (alloy reads them)
 *   frame heads a freed big block's memory becomes inaccessible, but the
 *               start of each of its frames may next hold a header of the
 *               back end: the first slice of each is made addressable again
 *   at exit     the leak check scans every addressable word for pointers to
 *               blocks; a page descriptor's `start` points at a block
 *               and would make it "still reachable" (`last` is stored
 *               xor a key for this reason).  A destructor that runs
 *               after the program's (priority 101) marks `start`
 *               undefined, which the leak check skips.  After it, a
 *               free only tells memcheck (the process is ending) and a
 *               malloc puts the fields back for its duration.
 */
#include "internal.h"

#ifdef ALLOY_VALGRIND

static bool vg_final; /* the exit-time pass ran */

/* Frames of a big block's run that start in [from, to) hold no header now
 * but may next (a free run's, a segment's): their first slice, where any
 * header fits, is addressable again. */
static void vg_frame_heads_addressable(const page_t *page, const uint8_t *from, const uint8_t *to) {
  if (page->kind != PAGE_BIG || segment_of(page)->direct) return; /* a direct mapping is unmapped */
  uintptr_t f = ((uintptr_t)from + SEGMENT_MASK) & ~(uintptr_t)SEGMENT_MASK;
  for (; f < (uintptr_t)to; f += SEGMENT_SIZE) VALGRIND_MAKE_MEM_DEFINED((void *)f, SLICE_SIZE);
}

/* The exit-time pass and its undoing: the fields of every page descriptor
 * of every header alloy has that point at blocks. */
static void vg_descriptor_pointers(bool defined) {
  for (uintptr_t i = 0; i < ((uintptr_t)1 << PAGEMAP_L1_BITS); i++) {
    uintptr_t off = __atomic_load_n(&alloy__pagemap_l1[i], __ATOMIC_ACQUIRE);
    if (off == 0) continue;
    const uintptr_t *chunk = (const uintptr_t *)((uintptr_t)alloy__pagemap_zero + off);
    for (uintptr_t j = 0; j < ((uintptr_t)1 << PAGEMAP_L2_BITS); j++) {
      uintptr_t frame = (i << 32) | (j << SEGMENT_SHIFT);
      uintptr_t e = __atomic_load_n(&chunk[j], __ATOMIC_RELAXED);
      if (frame == 0 || (e & ~PAGEMAP_FREE) != frame) continue; /* no header starts here */
      segment_t *seg = (segment_t *)frame;
      for (size_t k = 0; k < SLICES_PER_SEGMENT; k++) {
        page_t *page = &seg->pages[k];
        if (defined) {
          VALGRIND_MAKE_MEM_DEFINED(&page->start, sizeof page->start);
        } else {
          VALGRIND_MAKE_MEM_UNDEFINED(&page->start, sizeof page->start);
        }
      }
    }
  }
}

__attribute__((destructor(101))) static void vg_process_done(void) {
  if (!alloy__vg_memcheck) return;
  vg_descriptor_pointers(false);
  vg_final = true;
}

void vg_alloc_begin(void) {
  if (vg_final) vg_descriptor_pointers(true);
}

void *vg_allocated(void *p, size_t size) {
  if (p != NULL) {
    page_t *page = segment_page_lookup(p);
    VALGRIND_MAKE_MEM_NOACCESS(p, page->block_size);
    if (page->kind == PAGE_BIG) { /* the run's slack after the block */
      uint8_t *end = (uint8_t *)segment_of(page) + segment_of(page)->mapped_size;
      uint8_t *after = (uint8_t *)p + page->block_size;
      if (after < end) VALGRIND_MAKE_MEM_NOACCESS(after, (size_t)(end - after));
    }
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
  }
  if (vg_final) vg_descriptor_pointers(false);
  return p;
}

bool vg_freed(const void *p) {
  VALGRIND_FREELIKE_BLOCK(p, 0);
  if (vg_final) return true; /* the process is ending: the block stays alloy's */
  page_t *page = segment_page_lookup(p);
  if (page && page->start == p) vg_frame_heads_addressable(page, p, (const uint8_t *)p + page->block_size);
  return false;
}

void vg_resized(const void *p, size_t old_usable, size_t new_usable) {
  VALGRIND_RESIZEINPLACE_BLOCK(p, old_usable, new_usable, 0);
  if (new_usable < old_usable)
    vg_frame_heads_addressable(segment_page_lookup(p), (const uint8_t *)p + new_usable,
                               (const uint8_t *)p + old_usable);
}

void vg_zeroed(void *p, size_t size) { VALGRIND_MAKE_MEM_DEFINED(p, size); }

/* The bytes of p memcheck considers the block: the first one it calls
 * inaccessible, asked with error reports off (the question is not an
 * access). */
size_t vg_block_size(const void *p, size_t usable) {
  VALGRIND_DISABLE_ERROR_REPORTING;
  uintptr_t bad = (uintptr_t)VALGRIND_CHECK_MEM_IS_ADDRESSABLE(p, usable);
  VALGRIND_ENABLE_ERROR_REPORTING;
  return bad ? (size_t)(bad - (uintptr_t)p) : usable;
}

size_t vg_usable(const void *p, size_t usable) {
  size_t asked = vg_block_size(p, usable);
  if (asked < usable) VALGRIND_RESIZEINPLACE_BLOCK(p, asked, usable, 0);
  return usable;
}

void vg_segment_new(segment_t *seg, size_t first_slice) {
  VALGRIND_MAKE_MEM_DEFINED(seg, first_slice * SLICE_SIZE);
  VALGRIND_MAKE_MEM_NOACCESS((uint8_t *)seg + first_slice * SLICE_SIZE, SEGMENT_SIZE - first_slice * SLICE_SIZE);
}

void vg_page_discard(heap_t *heap, page_t *page, void *arg) {
  (void)heap;
  (void)arg;
  for (uint32_t i = 0; i < page->capacity; i++) {
    uint64_t bit = (uint64_t)1 << (i % 64);
    uint64_t gone = page_bits(page)->word[i / 64].free | atomic_load_explicit(&page_bits(page)->word[i / 64].remote, memory_order_relaxed);
    if (!(gone & bit)) VALGRIND_FREELIKE_BLOCK(page->start + (size_t)i * page->block_size, 0);
  }
}

#endif /* ALLOY_VALGRIND */
