/*
 * segment.c - the back end: one per process, behind one lock.  Owns the
 * frames alloy maps (64 slices, aligned: 2 MiB on x86-64), what they are
 * used for, and when their memory goes back to the OS:
 *
 *   free runs     frames nobody uses, kept mapped: dirty after use, purged
 *                 (MADV_DONTNEED) once free for dirty_decay_ms, then
 *                 retained; joined with free neighbours; the lowest run
 *                 that fits serves, found in O(log n) (addrtree.c), and
 *                 bins by length (1..63 frames, one bin for more) list them
 *                 for the walks and the growth at the edges
 *   segments      a frame split into 64 slices: class segments give
 *                 pages of size classes (1 to 8 slices), large segments
 *                 spans for large blocks; a segment with free slices sits in
 *                 a bin by its longest free run, so a span is found in O(1)
 *                 and fragmented segments fill first (sparse ones drain)
 *   big blocks    a run of frames for one block; a freed one becomes a free
 *                 run, so repeated big allocations reuse mapped, already
 *                 faulted pages with no system call (blocks above
 *                 BIG_POOLED_MAX, or aligned beyond a frame, get mappings
 *                 of their own)
 *
 * Every heap takes its pages here and gives them back when they empty, and
 * any thread frees large and big blocks here directly: memory one thread
 * freed is another thread's at once.  Pool frames are unmapped only when a
 * new mapping fails (address-space limits): like jemalloc's retained
 * memory, purged frames cost address space, not RSS.  (Direct big blocks
 * are unmapped when freed, and a big block moved by mremap leaves its old
 * frames unmapped.)
 *
 * The lock is taken once per page, large or big block, never per small
 * block; it is a leaf but for the page map's chunks (metadata) and the OS.
 */
#include "internal.h"

#include <stddef.h>
#include <string.h>

page_t alloy__page_invalid;
large_stats_t alloy__large_stats;

static os_lock_t backend_lock = OS_LOCK_INIT_SPIN; /* short holds: spins first (os_linux.c) */

/* Process totals, updated under the lock (per page or block) and read by
 * statistics without it. */
static _Atomic(uint64_t) active_bytes;   /* pages and blocks in use (atomic adds: see segment_count_active) */
static _Atomic(uint64_t) dirty_bytes;    /* free slices and free runs not purged */
static _Atomic(uint64_t) retained_bytes; /* free runs purged */
static _Atomic(uint64_t) header_bytes;   /* headers (and bitmap slices) of live segments and big blocks */
static _Atomic(uint64_t) live_segments;
static _Atomic(uint64_t) huge_segments;  /* live segments advised HUGEPAGE */
static _Atomic(uint64_t) live_big;
static _Atomic(uint64_t) big_bytes;
static _Atomic(uint64_t) big_nmalloc;
static _Atomic(uint64_t) thread_heaps;   /* thread heaps in use (heap.c tells): thp:auto; a fork child
                                          * counts the parent's other threads too (their heaps stay in use there) */

/* The back end's counters, read by statistics without the lock.  Mostly
 * written under backend_lock, but not only: a heap's large span cache
 * (segment_cache_large, segment_uncache_large) counts its blocks and dirty
 * slices without it, so every write is an atomic add (a load and a store
 * under the lock lost those: found in review). */
static void add(_Atomic(uint64_t) *counter, int64_t delta) {
  atomic_fetch_add_explicit(counter, (uint64_t)delta, memory_order_relaxed);
}
/* active_bytes also grows as owners carve their pages, outside the lock. */
void segment_count_active(int64_t delta) {
  atomic_fetch_add_explicit(&active_bytes, (uint64_t)delta, memory_order_relaxed);
}

void segment_count_thread_heaps(int64_t delta) { add(&thread_heaps, delta); }
uint64_t segment_thread_heaps(void) { return atomic_load_explicit(&thread_heaps, memory_order_relaxed); }

static int64_t slice_bytes(uint64_t bits) { return (int64_t)popcount64(bits) * (int64_t)SLICE_SIZE; }
static uint64_t slice_mask(size_t first, size_t count) {
  return (count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1)) << first;
}

/* Header bytes rounded to the OS page: a big block starts right after. */
static size_t header_size(void) {
  size_t ps = os_page_size();
  return (sizeof(segment_t) + ps - 1) & ~(ps - 1);
}

static size_t frames_of(const segment_t *seg) { return seg->mapped_size >> SEGMENT_SHIFT; }

/* ================================================================ lists */

typedef struct {
  segment_t *first;
} seg_list_t;

static void list_push(seg_list_t *l, segment_t *seg) {
  seg->prev = NULL;
  seg->next = l->first;
  if (l->first) l->first->prev = seg;
  l->first = seg;
}

static void list_remove(seg_list_t *l, segment_t *seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else l->first = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
}

/* Bins with a mask of the non-empty ones: the first fitting bin is one ctz. */
#define NBINS 65
typedef struct {
  seg_list_t bin[NBINS];
  uint64_t mask[2];
} bins_t;

static void bins_add(bins_t *b, segment_t *seg, unsigned i) {
  list_push(&b->bin[i], seg);
  b->mask[i / 64] |= (uint64_t)1 << (i % 64);
  seg->bin = (uint8_t)i;
}

static void bins_remove(bins_t *b, segment_t *seg) {
  unsigned i = seg->bin;
  if (i == 0xff) return;
  list_remove(&b->bin[i], seg);
  if (b->bin[i].first == NULL) b->mask[i / 64] &= ~((uint64_t)1 << (i % 64));
  seg->bin = 0xff;
}

/* The first non-empty bin at or above i, or NBINS. */
static unsigned bins_find(const bins_t *b, unsigned i) {
  for (; i < NBINS; i = (i / 64 + 1) * 64) {
    uint64_t m = b->mask[i / 64] & (~(uint64_t)0 << (i % 64));
    if (m) return (i / 64) * 64 + (unsigned)__builtin_ctzll(m);
  }
  return NBINS;
}

/* ============================================================ free runs */

static bins_t runs;          /* free runs by frames: bin n < 64 holds n frames, 64 more */
static addr_node_t *run_tree; /* the same runs by address: which one serves (addrtree.c) */
static _Atomic(uint32_t) wakers; /* see heap_wake_page: frames are never unmapped under one */

/* The lock, for an operation that may turn free frames into the inside of
 * a big block (program data where a segment header was).  A remote freer
 * between its summary update and heap_wake_page may still read a page
 * descriptor of a frame whose class segment emptied meanwhile: its count in
 * `wakers` keeps such frames from becoming big-block data, as it keeps them
 * mapped.  Waiting happens with the lock released (a waker may wait for a
 * pages_lock whose holder waits for this lock, e.g. in fork's prepare);
 * once held with no waker, no new one can concern a free frame (frames are
 * freed under this lock, and a freer's page is live until its free is
 * folded in).  False, with the lock held, for the thread in fork's window
 * (another library's fork handler allocating) when wakers stay: they wait
 * for pages_locks that thread holds, so it must do without free frames. */
static bool backend_lock_for_big(void) {
  for (;;) {
    os_lock(&backend_lock);
    if (atomic_load_explicit(&wakers, memory_order_acquire) == 0) return true;
    if (os_in_fork_window()) return false;
    os_unlock(&backend_lock);
    os_yield();
  }
}

static unsigned run_bin(size_t frames) { return frames < 64 ? (unsigned)frames : 64; }

/* Marks the frames of a run in the page map and files it in its bin and
 * the address tree. */
static void run_file(segment_t *run) {
  run->kind = SEGMENT_FREE;
  pagemap_set(run, frames_of(run), (uintptr_t)run | PAGEMAP_FREE);
  bins_add(&runs, run, run_bin(frames_of(run)));
  addrtree_insert(&run_tree, &run->run_node, run->mapped_size);
  add(run->dirty ? &dirty_bytes : &retained_bytes, (int64_t)run->mapped_size);
}

static void run_unfile(segment_t *run) {
  bins_remove(&runs, run);
  addrtree_remove(&run_tree, &run->run_node);
  add(run->dirty ? &dirty_bytes : &retained_bytes, -(int64_t)run->mapped_size);
}

/* The free run whose header governs the frame at `a`, or NULL. */
static segment_t *run_at(const void *a) {
  uintptr_t e = pagemap_lookup(a);
  return (e & PAGEMAP_FREE) ? (segment_t *)(e & ~PAGEMAP_FREE) : NULL; /* NULL for frame 0 too */
}

/* A run absorbed into the one below it: its header page must read zero
 * again if the joined run is clean. */
static void run_absorb(segment_t *into, segment_t *absorbed) {
  bool clean = !into->dirty && !absorbed->dirty;
  into->mapped_size += absorbed->mapped_size;
  into->dirty |= absorbed->dirty;
  into->unknown |= absorbed->unknown;
  if (clean) os_purge(absorbed, os_page_size(), false);
}

/* Gives frames back to the pool as a free run, joined with free runs
 * around it (a split block's tail, a neighbour freed before), so big
 * requests find maximal runs.  `dirty`: its pages were used. */
static void run_insert(segment_t *run, size_t size, bool dirty, uint64_t now) {
  run->mapped_size = size;
  run->dirty = dirty;
  run->unknown = false;
  run->freed_ms = now;
  run->bin = 0xff;
  segment_t *below = run_at((uint8_t *)run - SEGMENT_SIZE);
  if (below) {
    run_unfile(below);
    run_absorb(below, run);
    below->freed_ms = now;
    run = below;
  }
  segment_t *above = run_at((uint8_t *)run + run->mapped_size);
  if (above) {
    run_unfile(above);
    run_absorb(run, above);
  }
  run_file(run);
}

/* Keeps the first `size` bytes of an unfiled run; the rest, if any, is
 * filed as a free run of its own with the same state. */
static void run_split(segment_t *run, size_t size) {
  if (run->mapped_size <= size) return;
  segment_t *tail = (segment_t *)((uint8_t *)run + size);
  tail->mapped_size = run->mapped_size - size;
  tail->dirty = run->dirty;
  tail->unknown = run->unknown;
  tail->freed_ms = run->freed_ms;
  tail->bin = 0xff;
  run_file(tail);
  run->mapped_size = size;
}

/* A run of exactly `frames` frames from the pool (the head of a bigger one,
 * whose tail stays free), or NULL.  The lowest-addressed run that fits, in
 * O(log n): reuse stays at the bottom of the pool (addrtree.c says why). */
static segment_t *run_take(size_t frames, bool *dirty) {
  addr_node_t *node = addrtree_first_fit(run_tree, frames << SEGMENT_SHIFT);
  if (node == NULL) return NULL;
  segment_t *run = (segment_t *)((uint8_t *)node - offsetof(segment_t, run_node));
  run_unfile(run);
  *dirty = run->dirty || run->unknown; /* either way not known to be zero */
  run_split(run, frames << SEGMENT_SHIFT);
  return run;
}

/* Address space is short (a mapping failed): unmap retained runs, which
 * hold no memory, only address space.  Never while a remote freer may
 * still read a page descriptor in them (remote_publish counts itself around
 * heap_wake_page).  The back-end lock is held here, so the wait is bounded:
 * a waker may itself wait for a pages_lock whose holder waits for this lock
 * (fork's prepare handler), and waiting for it without bound would hang both.
 * When wakers stay, nothing is unmapped and the allocation fails (ENOMEM):
 * rare (address space exhausted at the moment of a remote free), never a
 * hang. */
static bool runs_unmap_retained(void) {
  for (unsigned spins = 0; atomic_load_explicit(&wakers, memory_order_acquire) != 0; spins++) {
    if (spins == 256) return false;
    os_yield();
  }
  bool any = false;
  for (unsigned i = 1; i < NBINS; i++) {
    for (segment_t *run = runs.bin[i].first, *next; run; run = next) {
      next = run->next;
      if (run->dirty) continue;
      run_unfile(run);
      pagemap_set(run, frames_of(run), 0);
      os_unmap(run, run->mapped_size);
      any = true;
    }
  }
  return any;
}

/* The advice for frames about to hold a segment (segment_advice): for or
 * against huge pages, or none (the system's policy). */
typedef enum { ADVISE_NONE, ADVISE_HUGE, ADVISE_NOHUGE } thp_advice_t;
static void thp_advise_frame(void *frame, size_t size, thp_advice_t advice) {
  if (advice != ADVISE_NONE) os_advise_huge(frame, size, advice == ADVISE_HUGE);
}

/* New frames from the OS; when it refuses, address space held in retained
 * runs is given back and it is asked once more. */
static segment_t *frames_map(size_t frames, thp_advice_t advice) {
  size_t mapped = 0, size = frames << SEGMENT_SHIFT;
  segment_t *seg = os_map_aligned(size, SEGMENT_SIZE, &mapped);
  if (seg == NULL && runs_unmap_retained()) seg = os_map_aligned(size, SEGMENT_SIZE, &mapped);
  if (seg == NULL) return NULL;
  /* Before the first write: the kernel decides at a 2 MiB unit's first
   * fault (advised after the header's write, thp:always got no huge page) */
  thp_advise_frame(seg, mapped, advice);
  seg->mapped_size = mapped;
  return seg;
}

/* The address space right after or right before a free run, mapped to
 * make it `frames` frames long: the pool's mappings lie side by side, so
 * when no run fits, the longest runs at its edges grow instead of a new
 * mapping beside them leaving them too short for the blocks that come
 * (blocks of 5-25 MiB: the pool grew to 157 MB for 99 MB in use with 2 MiB
 * frames, bench/workloads/big_blocks.c).  At most 4 runs are tried. */
static segment_t *run_extend(size_t frames, bool *dirty) {
  unsigned tries = 0;
  for (unsigned i = run_bin(frames); i-- > 1 && tries < 4;) {
    for (segment_t *run = runs.bin[i].first; run && tries < 4; run = run->next, tries++) {
      size_t have = frames_of(run), more = (frames - have) << SEGMENT_SHIFT;
      if (have >= frames) continue;
      segment_t *got = NULL;
      if (os_map_at((uint8_t *)run + run->mapped_size, more)) got = run;
      else if ((uintptr_t)run > more && os_map_at((uint8_t *)run - more, more)) got = (segment_t *)((uint8_t *)run - more);
      if (got == NULL) continue;
      run_unfile(run);
      *dirty = run->dirty || run->unknown;
      /* below: the run's header page is inside now, and must read zero */
      if (got != run && !*dirty) os_purge(run, os_page_size(), false);
      got->mapped_size = frames << SEGMENT_SHIFT;
      return got;
    }
  }
  return NULL;
}

/* `frames` frames for a new segment or a big block (ADVISE_NONE): from the
 * pool, or mapped.  *zero: all zero past the first OS page (new, or purged
 * since used).  The page map still says what the frames were. */
static segment_t *frames_get(size_t frames, bool *zero, thp_advice_t advice) {
  bool dirty = false;
  segment_t *seg = run_take(frames, &dirty);
  if (seg == NULL) seg = run_extend(frames, &dirty);
  *zero = !dirty;
  if (seg == NULL) return frames_map(frames, advice);
  /* a run's header page may be faulted already: then khugepaged, not the
   * fault, makes this frame huge */
  thp_advise_frame(seg, (size_t)frames << SEGMENT_SHIFT, advice);
  return seg;
}

/* ============================================================= segments */

static bins_t seg_bins[2]; /* by longest free run of slices, per kind (class, large) */
static segment_t *spare[2]; /* one empty segment per kind kept (oscillation at a boundary) */

/* Longest run of set bits. */
/* Bit i set when bits i .. i+n-1 of x are all set (n >= 1): n-1 shifts
 * done by doubling, so O(log n). */
static uint64_t run_starts(uint64_t x, unsigned n) {
  for (unsigned have = 1; have < n && x;) {
    unsigned shift = have < n - have ? have : n - have;
    x &= x >> shift;
    have += shift;
  }
  return x;
}

/* The longest run of set bits, one step per run (free slices come in few
 * runs; a loop of one shift per bit of the answer cost a tenth of a
 * big-block workload's instructions). */
static unsigned longest_run(uint64_t x) {
  unsigned best = 0;
  while (x) {
    x >>= __builtin_ctzll(x);
    unsigned len = x == ~(uint64_t)0 ? 64 : (unsigned)__builtin_ctzll(~x);
    if (len > best) best = len;
    if (len == 64) break;
    x >>= len;
  }
  return best;
}

static void seg_rebin(segment_t *seg) {
  bins_t *b = &seg_bins[seg->kind];
  bins_remove(b, seg);
  unsigned run = longest_run(seg->free_slices);
  if (run) bins_add(b, seg, run);
}

/* A run of `count` free slices starting at a multiple of `align`, or -1:
 * a hole of exactly that length first, else the first run.  Without the
 * holes first, large blocks of mixed sizes cut the long runs and the pool
 * kept growing after warm-up (test_big's steady state: 24 MiB more mapped
 * than its 16 MiB bound with 32 KiB slices). */
static int find_free_run(uint64_t free, size_t count, size_t align) {
  uint64_t starts = run_starts(free, (unsigned)count) & ~(uint64_t)1; /* slice 0: a header */
  if (align >= SLICES_PER_SEGMENT) return -1;
  if (align > 1) starts &= ~(uint64_t)0 / (((uint64_t)1 << align) - 1); /* bits at multiples of align (a power of two) */
  uint64_t exact = starts & ~(free << 1) & (count < 64 ? ~(free >> count) : ~(uint64_t)0);
  if (exact) return (int)__builtin_ctzll(exact);
  return starts ? (int)__builtin_ctzll(starts) : -1;
}

static size_t segment_header_bytes(segment_kind_t kind) {
  return kind == SEGMENT_CLASS ? CLASS_FIRST_SLICE * SLICE_SIZE : header_size();
}

/* Transparent huge pages without bloat.  A huge segment (thp:always, or
 * thp:auto past its thresholds) is advised HUGEPAGE when made, before its
 * first write.  Purging part of one of its 2 MiB units (the whole segment
 * with 32 KiB slices, a half with 64 KiB ones) splits its huge page, and
 * khugepaged would collapse the unit again, faulting the purged slices
 * back in as zeros (RSS regrows with memory nobody uses).  So a unit
 * purged while partly in use is advised NOHUGEPAGE, and HUGEPAGE again once
 * pages cover it whole. */
#define THP_UNIT ((size_t)2 * ALLOY_MiB)
#define THP_UNITS (SEGMENT_SIZE / THP_UNIT)
#define THP_UNIT_SLICES (THP_UNIT / SLICE_SIZE)
_Static_assert(THP_UNITS >= 1 && THP_UNITS <= 8, "nohuge_halves has a bit per unit");
static uint64_t thp_unit_mask(unsigned h) { return slice_mask(h * THP_UNIT_SLICES, THP_UNIT_SLICES); }

static void thp_after_purge(segment_t *seg, uint64_t purged) {
  for (unsigned h = 0; h < THP_UNITS; h++) {
    uint64_t m = thp_unit_mask(h);
    if (!(purged & m) || (seg->free_slices & m) == m || (seg->nohuge_halves & (1u << h))) continue;
    os_advise_huge((uint8_t *)seg + h * THP_UNIT, THP_UNIT, false);
    seg->nohuge_halves |= (uint8_t)(1u << h);
  }
}

static void thp_after_take(segment_t *seg) {
  for (unsigned h = 0; h < THP_UNITS; h++) {
    if (!(seg->nohuge_halves & (1u << h)) || (seg->free_slices & thp_unit_mask(h))) continue;
    os_advise_huge((uint8_t *)seg + h * THP_UNIT, THP_UNIT, true);
    seg->nohuge_halves &= (uint8_t)~(1u << h);
  }
}

/* thp:auto's thresholds (an option, not the default: random reads over a
 * large live set got slower with huge pages on this project's machines).
 * A huge page costs 2 MiB of RSS however little of it is written, and
 * saves 511 page faults and, where the hardware lets it, TLB misses.
 * A process with under THP_AUTO_BYTES of segments keeps 4 KiB pages (a
 * program of one block has 32 KiB of its segment resident).  And each
 * thread heap holds a partly carved page per size class it uses: with
 * fewer than THP_AUTO_SEGMENTS_PER_HEAP segments per thread heap those
 * pages are much of the segments, and huge pages would make them resident
 * whole (threads_200: 200 heaps in 34 segments, peak RSS 47 -> 83 MB with
 * a 16 MiB threshold alone).  Measured: docs/DESIGN.md, "Transparent huge
 * pages". */
#define THP_AUTO_BYTES ((uint64_t)32 * ALLOY_MiB)
#define THP_AUTO_SEGMENTS_PER_HEAP 4

/* The advice for the next segment of `kind` (under backend_lock).  Under
 * thp:auto only class segments may be huge: their pages are carved block
 * after block and filled, where a large block may be written in one OS
 * page of its span (I/O buffers), which a huge page makes 2 MiB resident. */
static thp_advice_t segment_advice(segment_kind_t kind) {
  switch (alloy__options.thp) {
  case THP_ALWAYS: return ADVISE_HUGE;
  case THP_NEVER: return ADVISE_NOHUGE;
  case THP_DEFAULT: return ADVISE_NONE;
  case THP_AUTO: break;
  }
  uint64_t segments = atomic_load_explicit(&live_segments, memory_order_relaxed);
  bool huge = kind == SEGMENT_CLASS && segments * SEGMENT_SIZE >= THP_AUTO_BYTES &&
              segments >= THP_AUTO_SEGMENTS_PER_HEAP * segment_thread_heaps();
  /* none rather than NOHUGEPAGE, which would override a system policy of
   * always (a huge segment's frame is advised NOHUGEPAGE when given back) */
  return huge ? ADVISE_HUGE : ADVISE_NONE;
}

/* Empties a page descriptor.  Other threads may still load its xheap and
 * remote summary (a remote freer finishing, heap_wake_page): those are
 * cleared with atomic stores, the rest with memset. */
static void page_clear(page_t *page) {
  atomic_store_explicit(&page->xheap, 0, memory_order_relaxed);
  atomic_store_explicit(&page->remote_summary, 0, memory_order_relaxed);
  memset(&page->start, 0, sizeof *page - offsetof(page_t, start));
}

_Static_assert(offsetof(page_t, xheap) == 0 && offsetof(page_t, remote_summary) == 8 &&
                   offsetof(page_t, start) == 16,
               "page_clear clears xheap and remote_summary atomically, the rest with memset");

/* Empties a header: its page descriptors as page_clear does. */
static void header_clear(segment_t *seg) {
  memset(seg, 0, offsetof(segment_t, pages));
  for (size_t i = 0; i < SLICES_PER_SEGMENT; i++) page_clear(&seg->pages[i]);
}

/* A new segment of `kind` in a frame of the pool or a new one. */
static segment_t *segment_new(segment_kind_t kind) {
  bool fresh;
  thp_advice_t advice = segment_advice(kind);
  segment_t *seg = frames_get(1, &fresh, advice); /* slices past the header: zero */
  if (seg == NULL) return NULL;
  VG_HOOK(vg_segment_new(seg, kind == SEGMENT_CLASS ? CLASS_FIRST_SLICE : LARGE_FIRST_SLICE));
  header_clear(seg);
  seg->mapped_size = SEGMENT_SIZE;
  seg->kind = (uint8_t)kind;
  seg->bin = 0xff;
  seg->first_slice = kind == SEGMENT_CLASS ? CLASS_FIRST_SLICE : LARGE_FIRST_SLICE;
  seg->free_slices = ~slice_mask(0, seg->first_slice);
  seg->dirty_slices = fresh ? 0 : seg->free_slices; /* a used frame: purge what stays free */
  if (alloy__options.guard) {
    /* The last OS page is inaccessible, so no block of this segment can run
     * into the next frame; slice 63 is given up for it. */
    size_t ps = os_page_size();
    os_protect((uint8_t *)seg + SEGMENT_SIZE - ps, ps, false);
    seg->free_slices &= ~((uint64_t)1 << (SLICES_PER_SEGMENT - 1));
    seg->guarded = true;
  }
  for (size_t i = 0; i < SLICES_PER_SEGMENT; i++) seg->slice_page[i] = &alloy__page_invalid;
  seg->huge = advice == ADVISE_HUGE;
  if (!pagemap_set(seg, 1, (uintptr_t)seg)) {
    pagemap_set(seg, 1, 0);
    os_unmap(seg, SEGMENT_SIZE);
    return NULL;
  }
  add(&live_segments, 1);
  if (seg->huge) add(&huge_segments, 1);
  add(&header_bytes, (int64_t)segment_header_bytes(kind));
  add(&dirty_bytes, slice_bytes(seg->dirty_slices));
  return seg;
}

/* An empty segment goes back to the pool (one per kind stays as the spare). */
static void segment_retire(segment_t *seg, uint64_t now) {
  segment_kind_t kind = (segment_kind_t)seg->kind;
  bins_remove(&seg_bins[kind], seg);
  if (spare[kind] == NULL) {
    spare[kind] = seg;
    return;
  }
  add(&live_segments, -1);
  if (seg->huge) add(&huge_segments, -1);
  add(&header_bytes, -(int64_t)segment_header_bytes(kind));
  add(&dirty_bytes, -slice_bytes(seg->free_slices & seg->dirty_slices));
  if (seg->guarded) os_protect((uint8_t *)seg + SEGMENT_SIZE - os_page_size(), os_page_size(), true);
  /* a big block may take the frame next: big blocks get no huge pages
   * (one written page would make 2 MiB resident) */
  if (seg->huge) os_advise_huge(seg, SEGMENT_SIZE, false);
  run_insert(seg, SEGMENT_SIZE, true, now);
}

static page_t *segment_take(segment_t *seg, size_t first, size_t count) {
  uint64_t bits = slice_mask(first, count);
  page_t *page = &seg->pages[first];
  bool fresh = ((seg->dirty_slices | seg->unknown_slices) & bits) == 0;
  seg->unknown_slices &= ~bits; /* dirty from now on */
  add(&dirty_bytes, -slice_bytes(seg->dirty_slices & bits));
  seg->free_slices &= ~bits;
  seg->dirty_slices |= bits;
  seg->used_pages++;
  page_clear(page);
  page->slice_index = (uint16_t)first;
  page->slice_count = (uint32_t)count;
  page->start = (uint8_t *)seg + first * SLICE_SIZE;
  page->is_zero = fresh;
  for (size_t i = first; i < first + count; i++) seg->slice_page[i] = page;
  if (seg->nohuge_halves) thp_after_take(seg);
  seg_rebin(seg);
  return page;
}

static void segment_purge_since(segment_t *seg, uint64_t *mark);

/* No segment of `kind` has a run of `slices` free slices, so the pool
 * grows.  The free slices of the segments that could not serve (their
 * longest run is shorter) are holes between pages: a program whose demand
 * moved to pages of more slices keeps them resident while it maps new
 * segments (`str_append`: 9 MiB of such holes at its peak).  Those that
 * were holes at the previous growth already, and stayed free, are purged
 * now rather than a decay period later.  Purging every hole at every
 * growth gave back, while a program was still building its live set,
 * holes its next pages would take at once: `mstress_like` made 300
 * madvise calls (each a TLB shootdown on every CPU the process runs on)
 * and refaulted the slices (0.87-0.90x its time without them, in
 * interleaved runs of it alone).  Pages of one slice never
 * get here. */
static void purge_holes(segment_kind_t kind, size_t slices) {
  /* Large segments are left to decay: their spans come and go with every
   * large block (mixed_mt: 6,200 purges instead of 17). */
  if (kind != SEGMENT_CLASS || options_decay_ms() < 0) return; /* dirty_decay_ms:-1: never purge */
  for (unsigned i = 1; i < slices && i < NBINS; i++)
    for (segment_t *seg = seg_bins[kind].bin[i].first; seg; seg = seg->next)
      segment_purge_since(seg, &seg->holes_at_last_growth);
}

/* A span of `slices` slices aligned to `align` slices in a segment of
 * `kind`: the fitting bin with the shortest longest-run first. */
static page_t *span_alloc(segment_kind_t kind, size_t slices, size_t align) {
  bins_t *b = &seg_bins[kind];
  for (unsigned i = bins_find(b, (unsigned)slices); i < NBINS; i = bins_find(b, i + 1))
    for (segment_t *seg = b->bin[i].first; seg; seg = seg->next) {
      int at = find_free_run(seg->free_slices, slices, align);
      if (at >= 0) return segment_take(seg, (size_t)at, slices);
    }
  purge_holes(kind, slices);
  segment_t *seg = spare[kind];
  if (seg) spare[kind] = NULL;
  else seg = segment_new(kind);
  if (seg == NULL) return NULL;
  int at = find_free_run(seg->free_slices, slices, align);
  if (at < 0) { /* back as the spare: an empty segment left in a bin is never retired */
    segment_retire(seg, os_now_ms());
    return NULL;
  }
  return segment_take(seg, (size_t)at, slices);
}

static void span_free(page_t *page, uint64_t now) {
  segment_t *seg = segment_of(page);
  size_t first = page->slice_index, count = page->slice_count;
  uint64_t bits = slice_mask(first, count);
  for (size_t i = first; i < first + count; i++) seg->slice_page[i] = &alloy__page_invalid;
  segment_count_active(-(int64_t)page_active_bytes(page));
  page_clear(page);
  add(&dirty_bytes, slice_bytes(bits & ~seg->free_slices & seg->dirty_slices));
  seg->free_slices |= bits;
  if (--seg->used_pages == 0) segment_retire(seg, now);
  else seg_rebin(seg);
}

/* Test hook: the back end's n-th next request for memory (a class page, a
 * large span, a big block) fails as if memory were exhausted, whatever the
 * pool holds (os_set_fail_* fail only new mappings, which a warm pool never
 * needs).  -1: never.  One load on paths that take a lock anyway. */
static _Atomic(long) fail_after = -1;
void segment_set_fail_after(long n) { atomic_store_explicit(&fail_after, n, memory_order_relaxed); }
static bool injected_failure(void) {
  if (likely(atomic_load_explicit(&fail_after, memory_order_relaxed) < 0)) return false;
  return atomic_fetch_sub_explicit(&fail_after, 1, memory_order_relaxed) == 0;
}

page_t *segment_alloc_class_page(size_t slices) {
  if (unlikely(injected_failure())) return NULL;
  os_lock(&backend_lock);
  page_t *page = span_alloc(SEGMENT_CLASS, slices, 1);
  os_unlock(&backend_lock);
  return page;
}

void segment_free_class_page(page_t *page) {
  uint64_t now = os_now_ms();
  os_lock(&backend_lock);
  span_free(page, now);
  os_unlock(&backend_lock);
}

/* Purges [p, p + size), free OS pages inside a class page in use (page.c,
 * page_purge_free), outside the back end's lock: the page is its owner's
 * and the slices stay taken.  In a huge segment the page's 2 MiB unit is
 * advised against huge pages first, as after a partial purge of slices,
 * so that khugepaged does not fill the holes back in. */
void segment_purge_inside(page_t *page, void *p, size_t size) {
  if (segment_of(page->start)->huge) {
    os_lock(&backend_lock);
    thp_after_purge(segment_of(page->start), slice_mask(page->slice_index, page->slice_count));
    os_unlock(&backend_lock);
  }
  os_purge(p, size, alloy__options.purge == PURGE_FREE);
}

/* ========================================================= large blocks */

/* jemalloc's lextent j holds large blocks of at most this many bytes. */
size_t segment_lextent_size(unsigned j) {
  size_t base = MEDIUM_MAX << (j / 4);
  return base + base / 4 * (j % 4 + 1);
}

/* The first lextent at least `size`, in closed form (counted per large and
 * big block: a loop over the sizes was a fifth of a big-block workload's
 * instructions).  Sizes from 64 KiB + 1 to 128 KiB are group 0, and so on,
 * each group cut in quarters. */
unsigned segment_lextent_of(size_t size) {
  if (size <= segment_lextent_size(0)) return 0;
  size_t x = size - 1;
  unsigned e = 63u - (unsigned)__builtin_clzll(x); /* base = 2^e <= x */
  unsigned group = e - (unsigned)__builtin_ctzll(MEDIUM_MAX);
  unsigned j = group * 4 + (unsigned)((x - ((size_t)1 << e)) >> (e - 2));
  return j < LEXTENTS - 1 ? j : LEXTENTS - 1;
}

static void stats_block(large_stats_t *st, size_t usable, int sign) {
  add(&st->curlextents[segment_lextent_of(usable)], sign);
  add(&st->allocated, sign * (int64_t)usable);
  add(&st->count, sign);
  add(sign > 0 ? &st->nmalloc : &st->ndalloc, 1);
}

static void block_page_init(page_t *page, page_kind_t kind, size_t usable, unsigned arena) {
  page->kind = (uint8_t)kind;
  page->block_size = usable;
  page->alloc_charge = alloc_charge_of(usable);
  page->reserved = 1;
  __atomic_store_n(&page->used, 1, __ATOMIC_RELAXED); /* a free's compare-and-swap takes it */
  page->arena = (uint16_t)arena;
  atomic_store_explicit(&page->xheap, 0, memory_order_relaxed); /* no owner: any thread frees it here */
}

/* Slices of a large block of `size` (its guard page included). */
static size_t large_slices(size_t size) {
  size_t guard = alloy__options.guard ? os_page_size() : 0; /* an inaccessible page after it */
  return (large_usable(size) + guard + SLICE_SIZE - 1) / SLICE_SIZE;
}

/* Whether a large block of `size` at `align` fits in an empty large
 * segment: from the first slice at that alignment (slice 1 unaligned) to
 * the last, which a guarded segment gives up.  A block that does not is
 * big; without this test, span_alloc made a segment for it, found no room
 * and kept the empty segment, one per call (1 MiB alignment and 1.1 MiB
 * with 32 KiB slices: 400 MiB mapped after 200 calls). */
bool segment_large_fits(size_t size, size_t align) {
  if (size > LARGE_MAX || align >= LARGE_MAX) return false;
  size_t first = align > SLICE_SIZE ? align / SLICE_SIZE : LARGE_FIRST_SLICE;
  size_t last = SLICES_PER_SEGMENT - (alloy__options.guard ? 1 : 0);
  return first + large_slices(size) <= last;
}

page_t *segment_alloc_large(size_t size, size_t align, unsigned arena, large_stats_t *stats) {
  if (unlikely(injected_failure())) return NULL;
  size_t usable = large_usable(size);
  size_t guard = alloy__options.guard ? os_page_size() : 0; /* an inaccessible page after it */
  size_t slices = large_slices(size);
  size_t align_slices = align > SLICE_SIZE ? align / SLICE_SIZE : 1;
  os_lock(&backend_lock);
  page_t *page = span_alloc(SEGMENT_LARGE, slices, align_slices);
  if (page) {
    block_page_init(page, PAGE_LARGE, usable, arena);
    segment_count_active((int64_t)usable);
    stats_block(stats, usable, 1);
  }
  os_unlock(&backend_lock);
  if (page && guard) os_protect(page->start + usable, guard, false);
  return page;
}

/* Takes a live large block's `used` from 1 to 0: false when another free
 * (a second free of it, racing the first or after it) took it first.  A
 * compare-and-swap, because a heap's cache (segment_cache_large) frees
 * without the back end's lock. */
static bool large_take_live(page_t *page) {
  uint32_t one = 1;
  return page->kind == PAGE_LARGE && page->slice_count != 0 &&
         __atomic_compare_exchange_n(&page->used, &one, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* False when the page is no live large block any more. */
bool segment_free_large(page_t *page, large_stats_t *stats) {
  uint64_t now = os_now_ms();
  os_lock(&backend_lock);
  bool live = large_take_live(page);
  if (live) {
    if (alloy__options.guard) os_protect(page->start + page->block_size, os_page_size(), true);
    stats_block(stats, page->block_size, -1);
    span_free(page, now);
  }
  os_unlock(&backend_lock);
  return live;
}

/* A large block freed into its freer's heap cache (heap.c) stops being a
 * block: its slices point at the invalid page, so a second free, a realloc
 * or a size query of it is reported as of a freed block, as after
 * segment_free_large.  Its span stays out of the back end, for the heap's
 * next large block of as many slices, and neither call takes the lock
 * (the slices are the heap's: the back end sees them in use).  Counted
 * dirty, not active.  False when it was no live block. */
bool segment_cache_large(page_t *page, large_stats_t *stats) {
  if (!large_take_live(page)) return false;
  segment_t *seg = segment_of(page);
  for (size_t i = page->slice_index; i < page->slice_index + page->slice_count; i++)
    seg->slice_page[i] = &alloy__page_invalid;
  stats_block(stats, page->block_size, -1);
  segment_count_active(-(int64_t)page->block_size);
  add(&dirty_bytes, slice_bytes(slice_mask(page->slice_index, page->slice_count)));
  return true;
}

/* A cached span becomes a live large block of `usable` bytes (at most its
 * slices) of arena 0. */
void segment_uncache_large(page_t *page, size_t usable, large_stats_t *stats) {
  segment_t *seg = segment_of(page);
  add(&dirty_bytes, -slice_bytes(slice_mask(page->slice_index, page->slice_count)));
  block_page_init(page, PAGE_LARGE, usable, 0);
  page->is_zero = false; /* calloc clears it */
  segment_count_active((int64_t)usable);
  stats_block(stats, usable, 1);
  for (size_t i = page->slice_index; i < page->slice_index + page->slice_count; i++) seg->slice_page[i] = page;
}

/* A cached span goes back to the back end. */
void segment_release_cached_large(page_t *page) {
  uint64_t now = os_now_ms();
  os_lock(&backend_lock);
  add(&dirty_bytes, -slice_bytes(slice_mask(page->slice_index, page->slice_count)));
  segment_count_active((int64_t)page_active_bytes(page)); /* span_free takes it off */
  span_free(page, now);
  os_unlock(&backend_lock);
}

/* Grows a large block into the free slices after it, or shrinks it and
 * gives back the slices it no longer covers.  Lock held. */
static bool large_resize_locked(page_t *page, size_t size, large_stats_t *stats) {
  size_t usable = large_usable(size);
  /* a size of a class, or of a big block, is another kind of block */
  if (size <= MEDIUM_MAX || size > LARGE_MAX || alloy__options.guard) return false;
  segment_t *seg = segment_of(page);
  size_t need = (usable + SLICE_SIZE - 1) / SLICE_SIZE;
  if (need > page->slice_count) {
    size_t end = page->slice_index + page->slice_count, more = need - page->slice_count;
    if (end + more > SLICES_PER_SEGMENT) return false;
    uint64_t bits = slice_mask(end, more);
    if ((seg->free_slices & bits) != bits) return false;
    add(&dirty_bytes, -slice_bytes(seg->dirty_slices & bits));
    seg->free_slices &= ~bits;
    seg->dirty_slices |= bits;
    seg->unknown_slices &= ~bits;
    for (size_t i = end; i < end + more; i++) seg->slice_page[i] = page;
    page->slice_count = (uint32_t)need;
    seg_rebin(seg);
  } else if (need < page->slice_count) {
    /* The slices past the new end go back: free for other blocks and
     * pages, and purged on the decay schedule like any freed slice.  Kept,
     * they stayed resident until the block was freed, counted nowhere. */
    size_t first = page->slice_index + need, count = page->slice_count - need;
    uint64_t bits = slice_mask(first, count);
    for (size_t i = first; i < first + count; i++) seg->slice_page[i] = &alloy__page_invalid;
    add(&dirty_bytes, slice_bytes(bits & seg->dirty_slices));
    seg->free_slices |= bits;
    page->slice_count = (uint32_t)need;
    seg_rebin(seg);
  }
  stats_block(stats, page->block_size, -1);
  stats_block(stats, usable, 1);
  atomic_fetch_sub_explicit(&stats->nmalloc, 1, memory_order_relaxed); /* a resize, not a new block */
  atomic_fetch_sub_explicit(&stats->ndalloc, 1, memory_order_relaxed);
  segment_count_active((int64_t)usable - (int64_t)page->block_size);
  __atomic_store_n(&page->block_size, usable, __ATOMIC_RELAXED);
  page->alloc_charge = alloc_charge_of(usable);
  return true;
}

/* =========================================================== big blocks */

/* Where the block starts in its run (after the header, at the alignment),
 * and the bytes it needs from the run's start. */
static size_t big_offset(size_t align) {
  size_t ps = os_page_size();
  if (align < ps) align = ps;
  return (header_size() + align - 1) & ~(align - 1);
}

/* A direct mapping's layout: the block's offset from the header and the
 * bytes before the guard page (*offset, *total); returns its usable size.
 * A guarded block moves up to end against its guard page, as close as its
 * alignment allows. */
static size_t big_direct_layout(size_t size, size_t align, bool guarded, size_t *offset, size_t *total) {
  size_t ps = os_page_size(), block_align = align < ALIGNMENT_MIN ? ALIGNMENT_MIN : align;
  *offset = big_offset(align);
  *total = (*offset + size + ps - 1) & ~(ps - 1);
  if (guarded) *offset += (*total - *offset - size) & ~(block_align - 1);
  return *total - *offset;
}

size_t segment_big_usable_for(size_t size, size_t align) {
  size_t offset = big_offset(align), total;
  if (size > (size_t)PTRDIFF_MAX - offset - 2 * SEGMENT_SIZE) return 0;
  if (!alloy__options.guard) return large_usable(size);
  return big_direct_layout(size, align, true, &offset, &total); /* every big block is guarded */
}

static void big_header_init(segment_t *seg, size_t mapped, size_t offset, size_t usable, unsigned arena,
                            bool direct, bool guarded, bool fresh) {
  /* A big block uses the fields, the slice map and pages[0], no more:
   * clearing the 9 KiB of a whole header at every big malloc cost 15% of a
   * workload of random big blocks. */
  memset(seg, 0, offsetof(segment_t, slice_page));
  page_clear(&seg->pages[0]);
  seg->kind = SEGMENT_BIG;
  seg->bin = 0xff;
  seg->mapped_size = mapped;
  seg->direct = direct;
  seg->guarded = guarded;
  seg->used_pages = 1;
  page_t *page = &seg->pages[0];
  block_page_init(page, PAGE_BIG, usable, arena);
  page->start = (uint8_t *)seg + offset;
  page->slice_count = 1;
  page->is_zero = fresh;
  for (size_t i = 0; i < SLICES_PER_SEGMENT; i++) seg->slice_page[i] = page;
}

static void big_count(size_t usable, large_stats_t *stats, int sign) {
  stats_block(stats, usable, sign);
  segment_count_active(sign * (int64_t)usable);
  add(&header_bytes, sign * (int64_t)header_size());
  add(&live_big, sign);
  add(&big_bytes, sign * (int64_t)usable);
  if (sign > 0) add(&big_nmalloc, 1);
}

/* A block of its own mapping: too big to pool, aligned beyond a frame, or
 * guarded (it ends against an inaccessible page, as close as its
 * alignment allows, and is quarantined when freed). */
static segment_t *big_map_direct(size_t size, size_t align, size_t *offset_out, size_t *usable_out,
                                 size_t *mapped_out, bool guarded) {
  size_t ps = os_page_size(), offset, total;
  size_t usable = big_direct_layout(size, align, guarded, &offset, &total);
  if (guarded) total += ps;
  size_t mapped = 0;
  size_t map_align = align > SEGMENT_SIZE ? align : SEGMENT_SIZE;
  segment_t *seg = os_map_aligned(total, map_align, &mapped);
  if (seg == NULL && runs_unmap_retained()) seg = os_map_aligned(total, map_align, &mapped);
  if (seg == NULL) return NULL;
  if (guarded) os_protect((uint8_t *)seg + total - ps, ps, false);
  *offset_out = offset;
  *usable_out = usable;
  *mapped_out = total;
  return seg;
}

page_t *segment_alloc_big(size_t size, size_t align, unsigned arena, large_stats_t *stats, bool guarded) {
  if (unlikely(injected_failure())) return NULL;
  if (align > ((size_t)1 << (OS_ADDRESS_BITS - 2))) return NULL;
  size_t offset = big_offset(align);
  if (size > (size_t)PTRDIFF_MAX - offset - 2 * SEGMENT_SIZE) return NULL;
  size_t usable = large_usable(size);
  bool direct = guarded || align > SEGMENT_SIZE || size > BIG_POOLED_MAX;
  bool fresh = true;
  segment_t *seg;
  size_t mapped;
  if (!backend_lock_for_big()) direct = true; /* a mapping of its own: no free frame taken */
  if (direct) {
    seg = big_map_direct(size, align, &offset, &usable, &mapped, guarded);
  } else {
    size_t frames = (offset + usable + SEGMENT_SIZE - 1) >> SEGMENT_SHIFT;
    seg = frames_get(frames, &fresh, ADVISE_NONE);
    mapped = frames << SEGMENT_SHIFT;
  }
  if (seg == NULL) {
    os_unlock(&backend_lock);
    return NULL;
  }
  big_header_init(seg, mapped, offset, usable, arena, direct, guarded, fresh);
  size_t frames = (mapped + SEGMENT_SIZE - 1) >> SEGMENT_SHIFT;
  if (!pagemap_set(seg, frames, (uintptr_t)seg)) {
    pagemap_set(seg, frames, 0);
    if (direct) os_unmap(seg, mapped);
    else run_insert(seg, mapped, true, os_now_ms());
    os_unlock(&backend_lock);
    return NULL;
  }
  big_count(usable, stats, 1);
  os_unlock(&backend_lock);
  return &seg->pages[0];
}

/* A freed guarded block stays mapped but inaccessible for a while, so a use
 * after free faults instead of reading or writing recycled memory.  Its
 * pages are purged first: a quarantine of 16 big blocks must not hold them
 * resident (measured before: 16 x 32 MiB freed kept 526 MB of RSS). */
#define QUARANTINE 16
static segment_t *quarantine[QUARANTINE];
static unsigned quarantine_next;

/* Unmaps a direct mapping; its address is remembered a while, so a second
 * free of it is reported as a double free, not as a foreign pointer. */
#define RECENT_DIRECT 16
static _Atomic(uintptr_t) recent_direct[RECENT_DIRECT];
static unsigned recent_next;

static void big_unmap(segment_t *seg) {
  size_t frames = (seg->mapped_size + SEGMENT_SIZE - 1) >> SEGMENT_SHIFT;
  atomic_store_explicit(&recent_direct[recent_next++ % RECENT_DIRECT], (uintptr_t)seg->pages[0].start,
                        memory_order_relaxed);
  pagemap_set(seg, frames, 0);
  os_unmap(seg, seg->mapped_size);
}

/* The block stays known to the page map while quarantined (a second free
 * finds it freed); the oldest leaves when a new one comes. */
static void big_quarantine(segment_t *seg) {
  size_t ps = os_page_size();
  uint8_t *from = (uint8_t *)((uintptr_t)seg->pages[0].start & ~(uintptr_t)(ps - 1));
  size_t span = (size_t)((uint8_t *)seg + seg->mapped_size - from); /* the header stays */
  os_purge(from, span, false);
  os_protect(from, span, false);
  segment_t *old = quarantine[quarantine_next % QUARANTINE];
  quarantine[quarantine_next++ % QUARANTINE] = seg;
  if (old) big_unmap(old);
}

bool segment_free_big(page_t *page, large_stats_t *stats) {
  segment_t *seg = segment_of(page);
  uint64_t now = os_now_ms();
  os_lock(&backend_lock);
  bool live = seg->kind == SEGMENT_BIG && page->used == 1;
  if (live) {
    page->used = 0;
    big_count(page->block_size, stats, -1);
    if (seg->direct) {
      if (seg->guarded) big_quarantine(seg);
      else big_unmap(seg);
    } else {
      run_insert(seg, seg->mapped_size, true, now);
    }
  }
  os_unlock(&backend_lock);
  return live;
}

/* Resizes a big block where it stands: within its run's last frame, into a
 * free run right after it, or giving frames back when it shrinks.  A direct
 * mapping grows or shrinks with mremap. */
static bool big_resize_locked(segment_t *seg, size_t size, large_stats_t *stats) {
  page_t *page = &seg->pages[0];
  if (seg->guarded) return false;
  size_t offset = (size_t)(page->start - (uint8_t *)seg);
  if (size > (size_t)PTRDIFF_MAX - offset - 2 * SEGMENT_SIZE) return false;
  size_t usable = large_usable(size);
  if (size <= LARGE_MAX) return false; /* small enough to move to a segment */
  size_t frames = (offset + usable + SEGMENT_SIZE - 1) >> SEGMENT_SHIFT, have = frames_of(seg);
  if (seg->direct) {
    size_t total = offset + usable;
    if (!os_remap_in_place(seg, seg->mapped_size, total)) return false;
    size_t old_frames = (seg->mapped_size + SEGMENT_SIZE - 1) >> SEGMENT_SHIFT;
    if (frames > old_frames) pagemap_set((uint8_t *)seg + (old_frames << SEGMENT_SHIFT), frames - old_frames, (uintptr_t)seg);
    else if (frames < old_frames) pagemap_set((uint8_t *)seg + (frames << SEGMENT_SHIFT), old_frames - frames, 0);
    seg->mapped_size = total;
  } else if (frames > have) {
    segment_t *next = run_at((uint8_t *)seg + seg->mapped_size);
    if (next == NULL || frames_of(next) < frames - have) return false;
    run_unfile(next);
    run_split(next, (frames - have) << SEGMENT_SHIFT);
    pagemap_set(next, frames - have, (uintptr_t)seg);
    seg->mapped_size = frames << SEGMENT_SHIFT;
  } else if (frames < have) {
    segment_t *tail = (segment_t *)((uint8_t *)seg + (frames << SEGMENT_SHIFT));
    run_insert(tail, (have - frames) << SEGMENT_SHIFT, true, os_now_ms());
    seg->mapped_size = frames << SEGMENT_SHIFT;
  }
  big_count(page->block_size, stats, -1);
  big_count(usable, stats, 1);
  add(&big_nmalloc, -1); /* a resize, not a new block */
  atomic_fetch_sub_explicit(&stats->nmalloc, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&stats->ndalloc, 1, memory_order_relaxed);
  /* an explicit arena's statistics read it under the arena lock, which a
   * realloc in place does not take */
  __atomic_store_n(&page->block_size, usable, __ATOMIC_RELAXED);
  page->alloc_charge = alloc_charge_of(usable);
  return true;
}

bool segment_resize(page_t *page, size_t size, large_stats_t *stats) {
  if (page->kind == PAGE_LARGE) {
    os_lock(&backend_lock);
  } else if (!backend_lock_for_big()) { /* growing in place takes the frames after it */
    os_unlock(&backend_lock);
    return false; /* the caller moves the block instead */
  }
  bool ok = page->kind == PAGE_LARGE ? large_resize_locked(page, size, stats)
                                     : big_resize_locked(segment_of(page), size, stats);
  os_unlock(&backend_lock);
  return ok;
}

/* Grows a pooled big block that cannot grow in place by moving it: its
 * pages go to a new run with mremap (page tables move, nothing is copied
 * or faulted again), the new run's tail is fresh.  The old frames are
 * unmapped by the move.  NULL when no new run can be had. */
void *segment_move_big(page_t *page, size_t size, large_stats_t *stats) {
  segment_t *old = segment_of(page);
  if (old->direct || old->guarded) return NULL;
  size_t offset = (size_t)(page->start - (uint8_t *)old), usable = large_usable(size);
  if (size > BIG_POOLED_MAX || size > (size_t)PTRDIFF_MAX - offset - 2 * SEGMENT_SIZE) return NULL;
  size_t frames = (offset + usable + SEGMENT_SIZE - 1) >> SEGMENT_SHIFT;
  bool fresh;
  if (!backend_lock_for_big()) {
    os_unlock(&backend_lock);
    return NULL;
  }
  segment_t *seg = frames_get(frames, &fresh, ADVISE_NONE);
  size_t old_size = old->mapped_size, old_usable = page->block_size;
  if (seg == NULL || !os_remap_onto(old, seg, old_size)) {
    if (seg) run_insert(seg, frames << SEGMENT_SHIFT, !fresh, os_now_ms());
    os_unlock(&backend_lock);
    return NULL;
  }
  /* the moved header describes the block: fix what changed */
  seg->mapped_size = frames << SEGMENT_SHIFT;
  page_t *moved = &seg->pages[0];
  moved->start = (uint8_t *)seg + offset;
  for (size_t i = 0; i < SLICES_PER_SEGMENT; i++) seg->slice_page[i] = moved;
  pagemap_set(old, old_size >> SEGMENT_SHIFT, 0);
  pagemap_set(seg, frames, (uintptr_t)seg);
  big_count(old_usable, stats, -1);
  big_count(usable, stats, 1);
  add(&big_nmalloc, -1);
  atomic_fetch_sub_explicit(&stats->nmalloc, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&stats->ndalloc, 1, memory_order_relaxed);
  moved->block_size = usable;
  moved->alloc_charge = alloc_charge_of(usable);
  os_unlock(&backend_lock);
  return moved->start;
}

/* ============================================================== lookups */

page_t *segment_page_lookup(const void *p) {
  uintptr_t e = pagemap_lookup(p);
  if (e == 0 || (e & PAGEMAP_FREE)) return NULL;
  segment_t *seg = (segment_t *)e;
  if (seg->kind == SEGMENT_BIG) return &seg->pages[0];
  return segment_page_of(seg, p);
}

bool segment_was_freed(const void *p) {
  uintptr_t e = pagemap_lookup(p);
  if (e & PAGEMAP_FREE) return e != PAGEMAP_FREE; /* frame 0: never alloy's */
  if (e == 0) {
    for (unsigned i = 0; i < RECENT_DIRECT; i++)
      if (atomic_load_explicit(&recent_direct[i], memory_order_relaxed) == (uintptr_t)p) return true;
    return false;
  }
  segment_t *seg = (segment_t *)e;
  return seg->kind != SEGMENT_BIG && segment_page_of(seg, p) == &alloy__page_invalid &&
         ((uintptr_t)p % SLICE_SIZE) == 0;
}

/* ================================================================ decay */

static _Atomic(uint64_t) last_decay_ms;

/* Decay passes every half dirty_decay_ms, claimed by one thread at a time
 * (an allocating thread's event, or the background thread): a slice or run
 * free at two passes in a row is purged, between one half and one whole
 * period after its free. */
bool segment_decay_due(uint64_t now_ms) {
  int decay = options_decay_ms();
  if (decay < 0) return false;
  uint64_t last = atomic_load_explicit(&last_decay_ms, memory_order_relaxed);
  if (now_ms - last < (uint64_t)decay / 2) return false;
  return atomic_compare_exchange_strong_explicit(&last_decay_ms, &last, now_ms, memory_order_relaxed,
                                                 memory_order_relaxed);
}

/* Purges the slices of `purge` (free and dirty slices of `seg`), one
 * madvise per run of slices. */
static void segment_purge_slices(segment_t *seg, uint64_t purge) {
  if (purge && seg->huge) thp_after_purge(seg, purge);
  bool lazy = alloy__options.purge == PURGE_FREE;
  while (purge) {
    unsigned first = (unsigned)__builtin_ctzll(purge);
    uint64_t run = purge >> first;
    unsigned count = run == ~(uint64_t)0 ? 64 : (unsigned)__builtin_ctzll(~run);
    os_purge((uint8_t *)seg + (size_t)first * SLICE_SIZE, (size_t)count * SLICE_SIZE, lazy);
    add(&dirty_bytes, -(int64_t)count * (int64_t)SLICE_SIZE);
    uint64_t bits = slice_mask(first, count);
    seg->dirty_slices &= ~bits;
    if (lazy) seg->unknown_slices |= bits;
    purge &= ~bits;
  }
}

/* Purges the free and dirty slices of `seg` that were so at `*mark` too,
 * then marks the ones free and dirty now: two passes in a row see a slice
 * free before it goes (the decay clock's mark, and purge_holes's). */
static void segment_purge_since(segment_t *seg, uint64_t *mark) {
  segment_purge_slices(seg, seg->free_slices & seg->dirty_slices & *mark);
  *mark = seg->free_slices & seg->dirty_slices;
}

/* Purges the slices of a segment that stayed free (and dirty) since the
 * previous pass (`all`: every free and dirty slice). */
static void segment_decay_one(segment_t *seg, bool all) {
  if (all) seg->free_at_last_decay = ~(uint64_t)0;
  segment_purge_since(seg, &seg->free_at_last_decay);
}

/* A dirty free run freed long enough ago is purged whole but for its header
 * page (the run's bookkeeping): it stays mapped, retained for reuse. */
static void run_decay(segment_t *run, uint64_t now, int decay, bool all) {
  if (!run->dirty || (!all && now - run->freed_ms < (uint64_t)decay)) return;
  size_t keep = os_page_size();
  bool lazy = alloy__options.purge == PURGE_FREE;
  os_purge((uint8_t *)run + keep, run->mapped_size - keep, lazy);
  run->dirty = false;
  run->unknown |= lazy; /* MADV_FREE: the kernel may or may not have dropped the pages */
  add(&dirty_bytes, -(int64_t)run->mapped_size); /* same place, same bin: only its state changes */
  add(&retained_bytes, (int64_t)run->mapped_size);
}

void segment_decay(uint64_t now_ms, bool all) {
  int decay = options_decay_ms();
  if (decay == 0) all = true;
  os_lock(&backend_lock);
  for (int kind = 0; kind < 2; kind++) {
    for (unsigned i = 0; i < NBINS; i++)
      for (segment_t *seg = seg_bins[kind].bin[i].first; seg; seg = seg->next) segment_decay_one(seg, all);
    if (spare[kind]) segment_decay_one(spare[kind], all);
  }
  for (unsigned i = 1; i < NBINS; i++)
    for (segment_t *run = runs.bin[i].first, *next; run; run = next) {
      next = run->next;
      run_decay(run, now_ms, decay, all);
    }
  os_unlock(&backend_lock);
}

/* =========================================================== statistics */

void segment_totals(segment_totals_t *t) {
  t->active = atomic_load_explicit(&active_bytes, memory_order_relaxed);
  t->dirty = atomic_load_explicit(&dirty_bytes, memory_order_relaxed);
  t->retained = atomic_load_explicit(&retained_bytes, memory_order_relaxed);
  t->headers = atomic_load_explicit(&header_bytes, memory_order_relaxed);
  t->segments = atomic_load_explicit(&live_segments, memory_order_relaxed);
  t->huge_segments = atomic_load_explicit(&huge_segments, memory_order_relaxed);
  t->big_live = atomic_load_explicit(&live_big, memory_order_relaxed);
  t->big_bytes = atomic_load_explicit(&big_bytes, memory_order_relaxed);
  t->big_nmalloc = atomic_load_explicit(&big_nmalloc, memory_order_relaxed);
}

/* ================================================================= fork */

void segment_fork_prepare(void) { os_lock(&backend_lock); }
void segment_fork_release(void) { os_unlock(&backend_lock); }

/* A remote freer about to read a page descriptor of a page it does not own
 * (heap_wake_page) counts itself here: frames are never unmapped while one
 * is at it.  A fork child has none. */
void segment_waker_enter(void) { atomic_fetch_add_explicit(&wakers, 1, memory_order_acq_rel); }
void segment_waker_leave(void) { atomic_fetch_sub_explicit(&wakers, 1, memory_order_release); }
void segment_fork_child(void) {
  atomic_store_explicit(&wakers, 0, memory_order_relaxed);
  segment_fork_release();
}
