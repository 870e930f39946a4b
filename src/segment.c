/*
 * segment.c - segments: 4 MiB aligned regions carved into 64 KiB slices, and
 * huge blocks in segments of their own.  Owns the process-wide segment map
 * (which 4 MiB frames are alloy's) and the slice bookkeeping of each segment.
 *
 * Called by the owning heap's thread (or under its arena's lock), except for
 * huge blocks, which any thread frees directly, and for decay passes, which
 * the background thread may run on an idle heap.  The map is updated with
 * atomic operations; a heap's segment lists and slice bits are guarded by
 * its seg_lock, which its owner takes once per page operation (never per
 * block) so the background thread can purge under it.
 */
#include "internal.h"

#include <string.h>

uint8_t alloy__segment_map[SEGMENT_MAP_SIZE];
static _Atomic(uint64_t) live_segments;
static _Atomic(uint64_t) live_huge;
static _Atomic(uint64_t) huge_bytes;   /* usable bytes of live huge blocks */
static _Atomic(uint64_t) huge_nmalloc; /* huge blocks ever allocated */
/* Bytes in pages and huge mappings in use, and bytes of free slices not yet
 * purged: jemalloc's stats.active and the dirty part of stats.resident.
 * Updated per page and per huge block, never per block. */
static _Atomic(uint64_t) active_bytes;
static _Atomic(uint64_t) dirty_bytes;

static void count_active(int64_t delta) {
  atomic_fetch_add_explicit(&active_bytes, (uint64_t)delta, memory_order_relaxed);
}
void segment_count_active(int64_t delta) { count_active(delta); }

/* Active bytes of the pages in a segment (an arena discarded whole). */
static int64_t segment_active_bytes(const segment_t *seg) {
  int64_t sum = 0;
  for (unsigned i = 1; i < SLICES_PER_SEGMENT; i++) sum += (int64_t)page_active_bytes(&seg->pages[i]);
  return sum;
}
static void count_dirty(int64_t delta) {
  atomic_fetch_add_explicit(&dirty_bytes, (uint64_t)delta, memory_order_relaxed);
}
static int64_t slice_bytes(uint64_t bits) { return (int64_t)__builtin_popcountll(bits) * (int64_t)SLICE_SIZE; }

/* Header bytes, rounded to the OS page: a huge block starts right after. */
static size_t header_size(void) {
  size_t ps = os_page_size();
  return (sizeof(segment_t) + ps - 1) & ~(ps - 1);
}

static void map_store(const void *frame_addr, uint8_t value) {
  __atomic_store_n(&alloy__segment_map[(uintptr_t)frame_addr >> SEGMENT_SHIFT], value,
                   __ATOMIC_RELEASE);
}

static void map_set(segment_t *seg, bool on) { map_store(seg, on ? MAP_HEADER : 0); }

page_t *segment_page_lookup(const void *p) {
  uintptr_t frame = (uintptr_t)p >> SEGMENT_SHIFT;
  if (frame >= SEGMENT_MAP_SIZE) return NULL;
  uint8_t v = __atomic_load_n(&alloy__segment_map[frame], __ATOMIC_ACQUIRE);
  if (v == 0) return NULL;
  if (v == MAP_HEADER) return segment_page_of(segment_of(p), p);
  if ((size_t)(v - 1) > frame) return NULL;
  segment_t *seg = (segment_t *)((frame - (v - 1)) << SEGMENT_SHIFT);
  if (__atomic_load_n(&alloy__segment_map[frame - (v - 1)], __ATOMIC_ACQUIRE) != MAP_HEADER ||
      seg->kind != SEGMENT_HUGE)
    return NULL;
  return &seg->pages[0];
}

static void segment_set_slices(segment_t *seg, size_t first, size_t count, page_t *page) {
  for (size_t i = first; i < first + count; i++) seg->slice_page[i] = page;
}

/* Maps memory for a segment; when the OS refuses (RLIMIT_AS, overcommit
 * limits), gives back the cached huge mappings and tries once more, so
 * memory held for reuse never causes an out-of-memory failure. */
static segment_t *segment_map(size_t size, size_t align, size_t *mapped) {
  segment_t *seg = os_map_aligned(size, align, mapped);
  if (seg == NULL && huge_cache_bytes() > 0) {
    huge_cache_flush();
    seg = os_map_aligned(size, align, mapped);
  }
  return seg;
}

static segment_t *segment_new(heap_t *heap) {
  size_t mapped = 0;
  segment_t *seg = segment_map(SEGMENT_SIZE, SEGMENT_SIZE, &mapped);
  if (!seg) return NULL;
  /* Fresh anonymous memory is zero: only the non-zero fields are set. */
  seg->kind = SEGMENT_NORMAL;
  seg->mapped_size = mapped;
  seg->heap = heap;
  seg->free_slices = ~(uint64_t)1; /* slice 0 is the header */
  if (alloy__options.guard) {
    /* The last OS page is inaccessible, so no block of this segment can run
     * into the next segment's header; slice 63 is given up for it. */
    size_t ps = os_page_size();
    os_protect((uint8_t *)seg + SEGMENT_SIZE - ps, ps, false);
    seg->free_slices &= ~((uint64_t)1 << (SLICES_PER_SEGMENT - 1));
    seg->guarded = true;
  }
  segment_set_slices(seg, 0, SLICES_PER_SEGMENT, &alloy__page_invalid);
  if (alloy__options.thp != THP_DEFAULT) os_advise_huge(seg, SEGMENT_SIZE, alloy__options.thp == THP_ALWAYS);
  map_set(seg, true);
  atomic_fetch_add_explicit(&live_segments, 1, memory_order_relaxed);
  return seg;
}

static void segment_unmap(segment_t *seg) {
  count_active(-segment_active_bytes(seg)); /* none, except when an arena is discarded */
  count_dirty(-slice_bytes(seg->free_slices & seg->dirty_slices));
  map_set(seg, false);
  atomic_fetch_sub_explicit(&live_segments, 1, memory_order_relaxed);
  os_unmap(seg, seg->mapped_size);
}

static void heap_link_segment(heap_t *heap, segment_t *seg) {
  seg->prev = NULL;
  seg->next = heap->segments[seg->list];
  if (seg->next) seg->next->prev = seg;
  heap->segments[seg->list] = seg;
}

static void heap_unlink_segment(heap_t *heap, segment_t *seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else heap->segments[seg->list] = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
}

/* First run of `count` free slices starting at a multiple of `align`, or -1. */
static int find_free_run(uint64_t free, size_t count, size_t align) {
  uint64_t run = count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
  for (size_t i = 1; i + count <= SLICES_PER_SEGMENT; i += align) {
    if (i % align) i += align - i % align;
    if (i + count > SLICES_PER_SEGMENT) break;
    if (((free >> i) & run) == run) return (int)i;
  }
  return -1;
}

/* Transparent huge pages without bloat (thp:always).  A segment is advised
 * HUGEPAGE when mapped; purging part of a 2 MiB half splits its huge page,
 * and khugepaged would collapse the half again, faulting the purged slices
 * back in as zeros (RSS regrows with memory nobody uses).  So a half purged
 * while partly in use is advised NOHUGEPAGE, and HUGEPAGE again once pages
 * cover it whole. */
#define HALF_SLICES (SLICES_PER_SEGMENT / 2)
static uint64_t half_mask(unsigned h) { return (((uint64_t)1 << HALF_SLICES) - 1) << (h * HALF_SLICES); }

static void thp_after_purge(segment_t *seg, uint64_t purged) {
  for (unsigned h = 0; h < 2; h++) {
    uint64_t m = half_mask(h);
    if (!(purged & m) || (seg->free_slices & m) == m || (seg->nohuge_halves & (1u << h))) continue;
    os_advise_huge((uint8_t *)seg + h * (SEGMENT_SIZE / 2), SEGMENT_SIZE / 2, false);
    seg->nohuge_halves |= (uint8_t)(1u << h);
  }
}

static void thp_after_take(segment_t *seg) {
  for (unsigned h = 0; h < 2; h++) {
    if (!(seg->nohuge_halves & (1u << h)) || (seg->free_slices & half_mask(h))) continue;
    os_advise_huge((uint8_t *)seg + h * (SEGMENT_SIZE / 2), SEGMENT_SIZE / 2, true);
    seg->nohuge_halves &= (uint8_t)~(1u << h);
  }
}

static page_t *segment_take(segment_t *seg, size_t first, size_t count) {
  uint64_t bits = (count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1)) << first;
  page_t *page = &seg->pages[first];
  bool fresh = ((seg->dirty_slices | seg->unknown_slices) & bits) == 0;
  seg->unknown_slices &= ~bits; /* dirty from now on */
  count_dirty(-slice_bytes(seg->dirty_slices & bits));
  seg->free_slices &= ~bits;
  seg->dirty_slices |= bits;
  seg->used_pages++;
  memset(page, 0, sizeof *page);
  page->slice_index = (uint16_t)first;
  page->slice_count = (uint32_t)count;
  page->start = (uint8_t *)seg + first * SLICE_SIZE;
  page->is_zero = fresh;
  atomic_store_explicit(&page->xheap, (uintptr_t)seg->heap, memory_order_relaxed);
  segment_set_slices(seg, first, count, page);
  if (seg->nohuge_halves) thp_after_take(seg);
  return page;
}

/* A page of `slices` slices whose start is aligned to `align_slices` slices,
 * from the heap's segments of that list, its spare, or a new segment.  Among
 * the segments with room, the fullest wins: sparse segments then drain and
 * go back to the OS instead of every segment staying partly used (measured:
 * first-fit left 20 segments per heap one-sixth used on a server workload). */
static page_t *alloc_page_locked(heap_t *heap, size_t slices, size_t align_slices, segment_list_t list) {
  segment_t *best = NULL;
  int best_at = -1, best_free = 65;
  for (segment_t *seg = heap->segments[list]; seg; seg = seg->next) {
    int nfree = __builtin_popcountll(seg->free_slices);
    if (nfree >= best_free || (size_t)nfree < slices) continue;
    int i = find_free_run(seg->free_slices, slices, align_slices);
    if (i < 0) continue;
    best = seg;
    best_at = i;
    best_free = nfree;
  }
  if (best) return segment_take(best, (size_t)best_at, slices);
  segment_t *seg = heap->spare;
  if (seg) heap->spare = NULL;
  else seg = segment_new(heap);
  if (!seg) return NULL;
  seg->heap = heap;
  seg->list = (uint8_t)list;
  heap_link_segment(heap, seg);
  int i = find_free_run(seg->free_slices, slices, align_slices);
  return i < 0 ? NULL : segment_take(seg, (size_t)i, slices);
}

page_t *segment_alloc_page(heap_t *heap, size_t slices, size_t align_slices, segment_list_t list) {
  if (slices == 0 || slices >= SLICES_PER_SEGMENT) return NULL;
  os_lock(&heap->seg_lock);
  page_t *page = alloc_page_locked(heap, slices, align_slices, list);
  os_unlock(&heap->seg_lock);
  return page;
}

/* Returns a page's slices to its segment; an empty segment becomes the heap's
 * spare (one is kept so a heap oscillating around a segment boundary does not
 * map and unmap 4 MiB every time) or goes back to the OS. */
static void release_spare_locked(heap_t *heap) {
  if (heap->spare) segment_unmap(heap->spare);
  heap->spare = NULL;
}

static void free_page_locked(heap_t *heap, page_t *page) {
  segment_t *seg = segment_of(page);
  size_t first = page->slice_index, count = page->slice_count;
  uint64_t bits = (count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1)) << first;
  segment_set_slices(seg, first, count, &alloy__page_invalid);
  count_active(-(int64_t)page_active_bytes(page));
  memset(page, 0, sizeof *page);
  count_dirty(slice_bytes(bits & ~seg->free_slices)); /* every slice of a page was used */
  seg->dirty_slices |= bits;
  seg->free_slices |= bits;
  if (--seg->used_pages > 0) return;
  heap_unlink_segment(heap, seg);
  if (heap->spare == NULL) {
    heap->spare = seg;
  } else {
    segment_unmap(seg);
  }
}

void segment_free_page(heap_t *heap, page_t *page) {
  os_lock(&heap->seg_lock);
  free_page_locked(heap, page);
  os_unlock(&heap->seg_lock);
}

void segment_release_spare(heap_t *heap) {
  os_lock(&heap->seg_lock);
  release_spare_locked(heap);
  os_unlock(&heap->seg_lock);
}

/* Gives back to the OS the slices of one segment that have stayed free (and
 * dirty) since the previous pass, one madvise per run of slices. */
static void segment_decay_one(segment_t *seg, bool now) {
  uint64_t purge = seg->free_slices & seg->dirty_slices & (now ? ~(uint64_t)0 : seg->free_at_last_decay);
  if (purge && alloy__options.thp == THP_ALWAYS) thp_after_purge(seg, purge);
  while (purge) {
    unsigned first = (unsigned)__builtin_ctzll(purge);
    uint64_t run = purge >> first;
    unsigned count = run == ~(uint64_t)0 ? 64 : (unsigned)__builtin_ctzll(~run);
    os_purge((uint8_t *)seg + (size_t)first * SLICE_SIZE, (size_t)count * SLICE_SIZE);
    count_dirty(-(int64_t)count * (int64_t)SLICE_SIZE);
    uint64_t bits = (count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1)) << first;
    seg->dirty_slices &= ~bits;
    if (alloy__options.purge == PURGE_FREE) seg->unknown_slices |= bits;
    purge &= ~bits;
  }
  seg->free_at_last_decay = seg->free_slices & seg->dirty_slices;
}

/* Decay: slices freed at least one pass ago (and not reused since) go back
 * to the OS, so memory a program stopped using leaves its RSS within about
 * dirty_decay_ms, while memory freed and reused quickly is never purged and
 * refaulted (`now`: purge every free slice, dirty_decay_ms:0).  The spare
 * segment decays too. */
static void decay_locked(heap_t *heap, bool now) {
  for (int list = 0; list < SEGMENT_LISTS; list++)
    for (segment_t *seg = heap->segments[list]; seg; seg = seg->next) segment_decay_one(seg, now);
  if (heap->spare) segment_decay_one(heap->spare, now);
}

void segment_decay(heap_t *heap, bool now) {
  os_lock(&heap->seg_lock);
  decay_locked(heap, now);
  os_unlock(&heap->seg_lock);
}

/* The background thread's pass over a heap it does not own, whose seg_lock
 * it took with a trylock (an owner in a page operation is busy, not idle). */
void segment_decay_locked(heap_t *heap) { decay_locked(heap, false); }

/* Moves every segment of `from` to `to` (adoption of an abandoned heap). */
void segment_move_all(heap_t *from, heap_t *to) {
  os_lock(&to->seg_lock);
  os_lock(&from->seg_lock); /* order: adopter, then adopted; the background thread takes one */
  for (int list = 0; list < SEGMENT_LISTS; list++) {
    segment_t *seg = from->segments[list];
    while (seg) {
      segment_t *next = seg->next;
      seg->heap = to;
      heap_link_segment(to, seg);
      seg = next;
    }
    from->segments[list] = NULL;
  }
  release_spare_locked(from);
  os_unlock(&from->seg_lock);
  os_unlock(&to->seg_lock);
}

/* Unmaps every segment of the heap, live blocks and all (arena.<i>.reset). */
void segment_discard_all(heap_t *heap) {
  os_lock(&heap->seg_lock);
  for (int list = 0; list < SEGMENT_LISTS; list++) {
    while (heap->segments[list]) {
      segment_t *seg = heap->segments[list];
      heap_unlink_segment(heap, seg);
      segment_unmap(seg);
    }
  }
  release_spare_locked(heap);
  os_unlock(&heap->seg_lock);
}

/* Pages in use and free slices not yet purged, in bytes, over the heap's
 * segments (per-arena pactive and pdirty). */
void segment_heap_usage(heap_t *heap, uint64_t *active, uint64_t *dirty) {
  *active = *dirty = 0;
  os_lock(&heap->seg_lock);
  for (int list = 0; list < SEGMENT_LISTS; list++)
    for (const segment_t *seg = heap->segments[list]; seg; seg = seg->next) {
      *active += (uint64_t)segment_active_bytes(seg);
      *dirty += (uint64_t)slice_bytes(seg->free_slices & seg->dirty_slices);
    }
  if (heap->spare) *dirty += (uint64_t)slice_bytes(heap->spare->free_slices & heap->spare->dirty_slices);
  os_unlock(&heap->seg_lock);
}

bool segment_heap_has_any(const heap_t *heap) {
  for (int list = 0; list < SEGMENT_LISTS; list++)
    if (heap->segments[list]) return true;
  return false;
}

/* ----------------------------------------------------------- huge blocks */

/* The usable size segment_huge_alloc gives a block (unguarded), or 0. */
size_t segment_huge_usable_for(size_t size, size_t align) {
  size_t ps = os_page_size();
  if (align < ps) align = ps;
  size_t offset = (header_size() + align - 1) & ~(align - 1);
  if (size > (size_t)PTRDIFF_MAX - offset - 2 * SEGMENT_SIZE) return 0;
  return ((offset + size + ps - 1) & ~(ps - 1)) - offset;
}

/* Splits a cached mapping bigger than a request: the request keeps the head
 * (rounded up to whole segments, so at most 4 MiB of slack), the tail, which
 * starts on a segment boundary, goes back to the cache as a mapping of its
 * own.  No page already faulted in is given up. */
static size_t huge_cache_split(segment_t *seg, size_t total) {
  size_t keep = (total + SEGMENT_SIZE - 1) & ~SEGMENT_MASK;
  if (keep + SEGMENT_SIZE > seg->mapped_size) return seg->mapped_size; /* a tail of a whole segment at least */
  segment_t *tail = (segment_t *)((uint8_t *)seg + keep);
  tail->mapped_size = seg->mapped_size - keep; /* all the cache reads of a cached header */
  huge_cache_put(tail);
  return keep;
}

/* A cached mapping for a block of `total` bytes, or NULL.  The pages it
 * keeps are already faulted in: a bigger one is split, a smaller one grows
 * where it stands or moves (mremap, its pages with it) to where it can grow,
 * so only the growth faults (measured on 5-25 MiB blocks: shrinking and
 * regrowing instead faulted 730k pages against tcmalloc's 94k). */
static segment_t *huge_cache_reuse(size_t total, size_t *mapped) {
  segment_t *seg = huge_cache_take(total);
  if (!seg) return NULL;
  size_t have = seg->mapped_size;
  if (have >= total) {
    *mapped = huge_cache_split(seg, total);
    return seg;
  }
  *mapped = total;
  if (os_remap_in_place(seg, have, total)) return seg;
  segment_t *moved = os_remap_move(seg, have, total, SEGMENT_SIZE);
  if (moved) return moved;
  os_unmap(seg, have);
  return NULL;
}

/* A block bigger than LARGE_MAX gets a mapping of its own: the segment header
 * in the first page(s), the block after it, placed at the alignment asked
 * for.  A block aligned to 4 MiB or more starts a frame of its own; the map
 * entry of that frame says how far below the header is. */
void *segment_huge_alloc(size_t size, size_t align, bool guarded) {
  size_t ps = os_page_size();
  size_t block_align = align < ALIGNMENT_MIN ? ALIGNMENT_MIN : align;
  if (align < ps) align = ps;
  if (align > (size_t)MAP_MAX_DISTANCE * SEGMENT_SIZE / 2) return NULL;
  size_t offset = (header_size() + align - 1) & ~(align - 1);
  if (size > (size_t)PTRDIFF_MAX - offset - 2 * SEGMENT_SIZE) return NULL;
  size_t total = (offset + size + ps - 1) & ~(ps - 1);
  if (guarded) {
    /* The block ends against an inaccessible page (as close as its
     * alignment allows), so running off its end faults at once. */
    offset += (total - offset - size) & ~(block_align - 1);
    total += ps;
  }
  size_t mapped = 0;
  bool reused = false;
  segment_t *seg = align <= SEGMENT_SIZE && !guarded ? huge_cache_reuse(total, &mapped) : NULL;
  if (seg) reused = true;
  else seg = segment_map(total, align > SEGMENT_SIZE ? align : SEGMENT_SIZE, &mapped);
  if (!seg) return NULL;
  if (reused) memset(seg, 0, sizeof *seg); /* as fresh as a new mapping's header */
  if (offset >= SEGMENT_SIZE) map_store((uint8_t *)seg + offset, (uint8_t)(1 + offset / SEGMENT_SIZE));
  seg->kind = SEGMENT_HUGE;
  seg->mapped_size = mapped;
  seg->used_pages = 1;
  page_t *page = &seg->pages[0];
  page->kind = PAGE_HUGE;
  page->is_zero = !reused;
  page->start = (uint8_t *)seg + offset;
  page->block_size = total - offset - (guarded ? ps : 0);
  page->reserved = page->capacity = page->used = 1;
  page->slice_count = 1;
  seg->guarded = guarded;
  if (guarded) os_protect((uint8_t *)seg + total - ps, ps, false);
  segment_set_slices(seg, 0, SLICES_PER_SEGMENT, page);
  map_set(seg, true);
  atomic_fetch_add_explicit(&live_huge, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&huge_nmalloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&huge_bytes, page->block_size, memory_order_relaxed);
  count_active((int64_t)(mapped - header_size())); /* the header is metadata */
  return page->start;
}

/* The last few huge blocks freed, so that freeing one again is reported as
 * a double free rather than as a pointer alloy never returned. */
#define RECENT_HUGE 16
static _Atomic(uintptr_t) recent_huge[RECENT_HUGE];
static _Atomic(unsigned) recent_huge_next;

bool segment_huge_recently_freed(const void *p) {
  for (unsigned i = 0; i < RECENT_HUGE; i++)
    if (atomic_load_explicit(&recent_huge[i], memory_order_relaxed) == (uintptr_t)p) return true;
  return false;
}

/* Unmaps (or caches, when `cache`) a huge block's mapping. */
static void segment_huge_release(segment_t *seg, bool cache) {
  unsigned slot = atomic_fetch_add_explicit(&recent_huge_next, 1, memory_order_relaxed);
  atomic_store_explicit(&recent_huge[slot % RECENT_HUGE], (uintptr_t)seg->pages[0].start,
                        memory_order_relaxed);
  size_t offset = (size_t)(seg->pages[0].start - (uint8_t *)seg);
  if (offset >= SEGMENT_SIZE) map_store(seg->pages[0].start, 0);
  map_set(seg, false);
  atomic_fetch_sub_explicit(&live_huge, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&huge_bytes, seg->pages[0].block_size, memory_order_relaxed);
  count_active(-(int64_t)(seg->mapped_size - header_size()));
  if (seg->guarded) {
    guard_quarantine(seg);
    return;
  }
  if (cache && offset < SEGMENT_SIZE) huge_cache_put(seg);
  else os_unmap(seg, seg->mapped_size);
}

void segment_huge_free(segment_t *seg) {
  if (seg->heap) arena_untrack_huge(seg); /* an explicit arena's block */
  segment_huge_release(seg, true);
}

/* arena.<i>.reset: the block dies with its arena, its mapping goes back now. */
void segment_huge_discard(segment_t *seg) { segment_huge_release(seg, false); }

/* A freed guarded block stays mapped but inaccessible for a while, so a use
 * after free faults instead of reading or writing recycled memory.  Its
 * pages are purged first: a quarantine of 16 huge blocks must not hold them
 * resident (measured before: 16 x 32 MiB freed kept 526 MB of RSS). */
#define QUARANTINE 16
static segment_t *_Atomic quarantine[QUARANTINE];
static _Atomic(unsigned) quarantine_next;

void guard_quarantine(segment_t *seg) {
  size_t ps = os_page_size();
  uint8_t *from = (uint8_t *)((uintptr_t)seg->pages[0].start & ~(uintptr_t)(ps - 1));
  size_t span = (size_t)((uint8_t *)seg + seg->mapped_size - from); /* the header stays */
  os_purge(from, span);
  os_protect(from, span, false);
  unsigned slot = atomic_fetch_add_explicit(&quarantine_next, 1, memory_order_relaxed);
  segment_t *old = atomic_exchange_explicit(&quarantine[slot % QUARANTINE], seg, memory_order_acq_rel);
  if (old) os_unmap(old, old->mapped_size);
}

/* Resizes a huge block's mapping in place (realloc without copying). */
bool segment_huge_resize(segment_t *seg, size_t size) {
  if (seg->guarded) return false;
  page_t *page = &seg->pages[0];
  size_t ps = os_page_size();
  size_t offset = (size_t)(page->start - (uint8_t *)seg);
  if (size > (size_t)PTRDIFF_MAX - offset - SEGMENT_SIZE) return false;
  size_t total = (offset + size + ps - 1) & ~(ps - 1);
  if (total < SEGMENT_SIZE / 2) return false; /* small enough to live in a segment */
  if (!os_remap_in_place(seg, seg->mapped_size, total)) return false;
  count_active((int64_t)total - (int64_t)seg->mapped_size);
  atomic_fetch_add_explicit(&huge_bytes, (uint64_t)(total - offset - page->block_size), memory_order_relaxed);
  seg->mapped_size = total;
  /* an explicit arena's statistics read it under the arena lock, which a
   * realloc in place does not take */
  __atomic_store_n(&page->block_size, total - offset, __ATOMIC_RELAXED);
  return true;
}

void segment_count(uint64_t *segments, uint64_t *huge) {
  *segments = atomic_load_explicit(&live_segments, memory_order_relaxed);
  *huge = atomic_load_explicit(&live_huge, memory_order_relaxed);
}

/* Live huge blocks, their usable bytes, and huge blocks ever allocated. */
void segment_huge_totals(uint64_t *live, uint64_t *bytes, uint64_t *nmalloc) {
  *live = atomic_load_explicit(&live_huge, memory_order_relaxed);
  *bytes = atomic_load_explicit(&huge_bytes, memory_order_relaxed);
  *nmalloc = atomic_load_explicit(&huge_nmalloc, memory_order_relaxed);
}

void segment_bytes(uint64_t *active, uint64_t *dirty, uint64_t *headers) {
  *active = atomic_load_explicit(&active_bytes, memory_order_relaxed);
  *dirty = atomic_load_explicit(&dirty_bytes, memory_order_relaxed);
  uint64_t segs, huge;
  segment_count(&segs, &huge);
  *headers = (segs + huge) * header_size();
}
