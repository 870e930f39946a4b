/*
 * types.h - the data layout of alloy, told once.
 *
 * FRAMES AND SEGMENTS.  Memory comes from the OS in frames of 64 slices
 * (slices of 32 KiB on x86-64, so 2 MiB frames; 64 KiB and 4 MiB elsewhere:
 * see SLICE_SHIFT), aligned to their size, so the header of any pointer's
 * frame is `p & ~(frame - 1)`.  A
 * process-wide page map (pagemap.c) says, for every frame, which header
 * governs it; free() consults it before touching anything, so a pointer
 * alloy never returned is reported instead of followed.  The back end
 * (segment.c, one per process, behind one lock) hands frames out as:
 *
 *   a class segment: 64 slices; slice 0 holds the header, slice 1
 *     the pages' bitmaps; slices 2..63 hold pages of size classes
 *   a large segment: slice 0 the header; slices 1..63 hold large blocks
 *   a big block: a run of frames for one block (header page, then the block)
 *   a free run: frames nobody uses, kept mapped for reuse (dirty until
 *     purged on the decay schedule, then retained; unmapped only when a
 *     new mapping fails)
 *
 *   class segment (a frame) = 64 SLICES
 *   +--------+---------+---------+---------+-------------------+-----
 *   | header | bitmaps | page    | page    | page (4 slices)   | ...
 *   +--------+---------+---------+---------+-------------------+-----
 *
 * No block ever lives in a header or bitmap slice: all of alloy's metadata
 * is out of band.  An overflow off the end of a block reaches the next block
 * or the next page, never a descriptor, a bitmap or a free list; alloy keeps
 * no free list in the blocks at all, so the memory it hands out is never
 * read or written by alloy.
 *
 * PAGES.  A page is a run of slices serving one size class, or one block:
 *   small  (blocks <= 8 KiB)   one slice  (32 or 64 KiB)
 *   medium (blocks <= 64 KiB)  1-8 slices: the fewest holding 4 blocks
 *                              (per-CPU central pages: 8 slices)
 *   large  (<= LARGE_MAX)      a span of slices in a large segment, one block,
 *                              usable size rounded to the OS page
 *   big    (> LARGE_MAX)       a run of frames, one block
 * Pages of every heap come from the same segments and go back to them when
 * empty, so a thread's memory is reusable by every other thread at once.
 *
 * BITMAPS instead of free lists.  A page of a size class keeps one bit per
 * block in two bitmaps in the bitmap slice (at most 64 words each):
 *   free_bits    the owner's: set = the block is free.  malloc takes the
 *                lowest set bit of the lowest word with one (tzcnt of the
 *                page's exact summary of its words, then of the word);
 *                free by the owner sets the bit again.  A bit already set
 *                is a double free, caught without reading the block.
 *   remote_bits  other threads' frees, set atomically; the owner folds them
 *                into free_bits (an exchange per word, never a walk over
 *                blocks), and one already set on either side is a double free.
 * A summary word (bit w: word w may have bits) in front of each keeps
 * finding the next word O(1).  Blocks are carved lazily, about 4 KiB of
 * them at a time (their free bits set), and handed out in address order,
 * so an unused tail of a page is never touched (stats.active counts the
 * carved part).
 *
 * HEAPS.  A heap belongs to one thread (initial-exec TLS, never an
 * initialisation check on the fast path: a new thread points at a static
 * empty heap whose pages have no free blocks, so its first malloc falls to
 * the slow path, which sets the real heap up).  A heap keeps one queue of
 * pages per size class; `direct[]` maps every request of at most 1 KiB,
 * rounded to 16 bytes, straight to the page currently serving it.  Pages
 * with no free block move to the heap's `full` list; another thread's free
 * into such a page moves it to `pending` under the heap's pages_lock (a
 * leaf lock, taken once per page and full episode, never per block), and
 * the owner takes pending pages back on its slow path.  No thread ever
 * waits for another.
 *
 * When a thread exits its heap is ABANDONED whole; the next thread that
 * starts adopts it (or a long-lived one, later).  Rare events (statistics
 * folding, sampling, purging) hang off one counter: each malloc subtracts
 * its block size from `event_countdown` and the slow path runs when it goes
 * negative.
 */
#ifndef ALLOY_TYPES_H
#define ALLOY_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os.h"

#define ALLOY_KiB ((size_t)1024)
#define ALLOY_MiB (ALLOY_KiB * ALLOY_KiB)

/* The slice is the unit of pages: a smaller one wastes less in pages a
 * heap barely uses (measured: docs/DESIGN.md, "Slices of 32 KiB").  It
 * must be a multiple of the OS page (slices are purged and protected
 * whole), so 32 KiB where pages are always 4 KiB (x86-64) and 64 KiB
 * where they can be 64 KiB (ARM64 kernels, and any port not yet measured). */
#if defined(__x86_64__)
#define SLICE_SHIFT 15 /* 32 KiB */
#else
#define SLICE_SHIFT 16 /* 64 KiB */
#endif
#define SEGMENT_SHIFT (SLICE_SHIFT + 6) /* 64 slices: 2 MiB or 4 MiB, a frame */
#define SEGMENT_SIZE ((size_t)1 << SEGMENT_SHIFT)
#define SEGMENT_MASK (SEGMENT_SIZE - 1)
#define SLICE_SIZE ((size_t)1 << SLICE_SHIFT)
#define SLICES_PER_SEGMENT (SEGMENT_SIZE / SLICE_SIZE) /* 64: one bit each in a uint64_t */
#define CLASS_FIRST_SLICE 2 /* header, bitmaps */
#define LARGE_FIRST_SLICE 1 /* header */

#define ALIGNMENT_MIN 16 /* every block is 16-aligned (max_align_t) */
#define SMALL_MAX (8 * ALLOY_KiB)   /* largest block of a one-slice page */
#define MEDIUM_MAX (64 * ALLOY_KiB) /* largest block of a size class */
#define MEDIUM_PAGE_SLICES 8 /* most slices of a medium page (256 KiB with 32 KiB slices) */
/* Classes from 32 to 128 B take 64 KiB pages even with 32 KiB slices
 * (internal.h, size_class_page_slices); 16 B blocks would overflow a
 * page's bitmap (BITMAP_WORDS) at 64 KiB. */
#define SMALL_PAGE_WIDE_MIN 32
#define SMALL_PAGE_WIDE_MAX 128
#define SMALL_PAGE_WIDE_SLICES (SLICE_SIZE < 64 * ALLOY_KiB ? 64 * ALLOY_KiB / SLICE_SIZE : 1)
#define MEDIUM_PAGE_BLOCKS 4 /* least blocks of a thread heap's medium page */
/* Largest block placed in a large segment: up to 2 MiB, and with a guard
 * page it must still fit in slices 1..62 (a guarded segment gives up slice
 * 63 for its inaccessible last page): 1952 KiB with 32 KiB slices. */
#define LARGE_MAX (SEGMENT_SIZE - 3 * SLICE_SIZE < 2 * ALLOY_MiB ? SEGMENT_SIZE - 3 * SLICE_SIZE : 2 * ALLOY_MiB)
#define LARGE_CACHE_SLOTS 4 /* large spans a thread heap keeps (heap.c) */
/* Other threads' blocks a heap's thread has freed and not yet published
 * (remote.c): a table of 2^REMOTE_SLOTS_LG words, published whole once it
 * holds REMOTE_BATCH blocks. */
#define REMOTE_SLOTS_LG 6 /* at most 6: heap->remote_occupied has a bit per entry */
#define REMOTE_SLOTS (1u << REMOTE_SLOTS_LG)
#define REMOTE_BATCH 256
/* Every REMOTE_REVIEW_WORDS words published, the table looks at how many
 * blocks a word gathered: under 1.5, the next REMOTE_DIRECT_FREES remote
 * frees are published at once (scattered frees gain nothing from it). */
#define REMOTE_REVIEW_WORDS 128
#define REMOTE_DIRECT_FREES 4096
#define LARGE_CACHE_BLOCK_MAX (256 * ALLOY_KiB) /* of spans up to this size */
#define LARGE_CACHE_TOTAL_MAX (16 * ALLOY_MiB) /* in all heaps at once */
#define DIRECT_MAX 1024           /* requests served through heap->direct[] */
#define DIRECT_SLOTS (DIRECT_MAX / ALIGNMENT_MIN + 1)
#define SIZE_CLASSES 80 /* 16..128 by 16, then 8 classes per doubling to 64 KiB */
#define BITMAP_WORDS (SLICE_SIZE / ALIGNMENT_MIN / 64) /* a small page holds at most a slice of 16-byte blocks */

/* Big blocks up to this size take runs of the back end's frames, kept for
 * reuse when freed; bigger ones get mappings of their own. */
#define BIG_POOLED_MAX (256 * ALLOY_MiB)

/* The event countdown counts bytes and allocations in one word: each
 * allocation subtracts (size << CHARGE_SHIFT) + 1, so one subtraction and one
 * sign test on the fast path gate the rare events and still give exact
 * totals of both.  An interval allocates at most 2^18 bytes in 16-byte blocks
 * (2^14 < 2^CHARGE_SHIFT allocations) before it is folded. */
#define CHARGE_SHIFT 20
#define EVENT_INTERVAL_BYTES (256 * ALLOY_KiB)
#define CHARGE_MAX_BYTES ((size_t)1 << 40) /* larger blocks are folded at once */

typedef struct alloy_heap_s heap_t;
typedef struct alloy_segment_s segment_t;

/* A node of an address-ordered first-fit tree (addrtree.c), embedded in the
 * free extent it describes: its address is the extent's place in the order. */
typedef struct alloy_addr_node_s addr_node_t;
struct alloy_addr_node_s {
  addr_node_t *left;
  addr_node_t *right;
  size_t size;    /* the extent's length */
  size_t longest; /* the longest extent of the subtree rooted here */
};

typedef enum { PAGE_SMALL, PAGE_MEDIUM, PAGE_LARGE, PAGE_BIG } page_kind_t;
/* Class pages: in their class's queue, in the full list, or pending (moved
 * there by another thread's free; the owner takes it back). */
typedef enum { LIST_NONE, LIST_QUEUE, LIST_FULL, LIST_PENDING } page_list_t;
/* Low bit of page->xheap (heaps are 64-aligned): the page is in the full
 * list or pending.  The free fast path compares xheap with the calling
 * thread's heap: one compare says both "mine" and "in my queues". */
#define XHEAP_FULL ((uintptr_t)1)
/* The class page holds live heap-profiler samples (never with prof:false):
 * the fast path's compare fails for all its blocks, so the owner's frees
 * take the slow path, which drops a sample (prof_table.c).  Set and
 * cleared by the sample table (any thread, atomically); every other write
 * of xheap keeps it (heap.c page_set_owner, heap_page_to_full). */
#define XHEAP_SAMPLED ((uintptr_t)2)
#define XHEAP_TAGS (XHEAP_FULL | XHEAP_SAMPLED)
/* Low bit of page->last (blocks are 16-aligned): freed since handed out. */
#define LAST_FREED ((uintptr_t)1)
#define LAST_KEY (~LAST_FREED) /* keeps bit 0: the tag reads the same stored */

/* A page descriptor is two cache lines, aligned (segment headers keep
 * them on line boundaries): the first holds everything a free reads and
 * changes only at page events (a change of owner or list, a carve, a
 * remote summary bit set or folded); the second what the
 * owner writes at each malloc and free (last, free_summary, used).  So
 * another thread's free reads a line the owner has not just written, and
 * does not pull it from the owner's core: producer/consumer and
 * cross-thread programs 0.85-0.92x the time.  The owner's free of a cold
 * block touches both lines (adjacent, their addresses known at once, so
 * the two misses overlap): cold churn within noise, 0.25-0.45 more D1
 * misses a free in cachegrind.  (Before the first change, 128-byte
 * descriptors at an offset of 16 spread a free over three lines: a churn
 * over a live set larger than the caches missed 2.5 times per free in its
 * metadata, against 0.45 for mimalloc.) */
typedef struct alloy_page_s {
  /* --- line 1: what every free reads, written only when the page changes
   * hands, moves between its heap's lists (list) or is carved (capacity),
   * and remote_summary when another thread's free is the first into a
   * word or the owner folds those frees in: another thread's free reads it
   * without taking the line from the owner, whose every malloc and free
   * writes line 2 --- */
  _Atomic(uintptr_t) xheap; /* owning heap; 0 for large, big and unused pages */
  _Atomic(uint64_t) remote_summary; /* bit w: remote_bits[w] may be non-zero */
  uint8_t *start;        /* first block */
  uint64_t block_magic;  /* ceil(2^40 / block_size): division by multiplication */
  size_t block_size;     /* class size (usable size of large and big blocks) */
  struct alloy_bit_pair_s *free_bits; /* page_bits(page)->word: one load, where computing it is five instructions */
  int64_t alloc_charge;  /* (block_size << CHARGE_SHIFT) + 1, see EVENT_INTERVAL */
  uint32_t capacity;     /* blocks carved so far (their bits set once); the rest never touched */
  uint8_t kind;          /* page_kind_t */
  uint8_t size_class;    /* small and medium pages */
  uint8_t list;          /* page_list_t: which of its heap's lists holds it */
  uint8_t is_zero;       /* every byte is still zero (fresh memory) */
  /* --- line 2: the owner's, written by its every malloc and free --- */
  /* The block the owner's malloc handed out last, or that block with
   * LAST_FREED set when the owner freed it since: the next malloc then
   * takes it back first (fastpath.h, page_take_tagged).  A malloc/free pair
   * (or any last-in first-out use) then gets a pointer loaded from here,
   * not one computed from the bitmap word the last free wrote: no chain of
   * dependent loads and multiplications from one pair to the next.  Owner
   * only; 0 on a fresh page.  Stored xor LAST_KEY (page_note_last), so
   * that it is not a pointer to a live block (leak checkers, valgrind's,
   * scan alloy's metadata and must not find a lost block through it), and
   * a descriptor of zeros (the sentinels') reads as no freed block. */
  uintptr_t last;
  /* Bit w: free word w has a free block (owner).  Exact: whoever empties a
   * word clears its bit, so malloc's word is never empty (fastpath.h). */
  uint64_t free_summary;
  uint32_t used;         /* blocks handed out and not yet freed back here */
  /* --- identity --- */
  uint16_t slice_index;  /* first slice of this page in its segment */
  uint16_t arena;        /* large/big: the explicit arena that allocated it (0: none) */
  uint32_t slice_count;  /* slices covered; 0 = descriptor unused */
  uint32_t reserved;     /* blocks that fit in the page */
  uint16_t prof_samples; /* live heap-profiler samples of its blocks (prof_table.c, under its lock) */
  /* Class pages: `used` when the free OS pages among its blocks were last
   * purged (page_purge_free), PAGE_NOT_PURGED since it last served its
   * class; the next purge waits until half of those blocks are free too. */
  uint32_t purged_used;
  uint32_t sparse_seen;  /* class pages: 1 + the decay epoch a sweep first found it mostly empty and idle (0: none) */
  /* --- list links: the owner's queues (class pages, under pages_lock for
   * full/pending), an arena's large blocks, the back end's free spans --- */
  struct alloy_page_s *next;
  struct alloy_page_s *prev;
} __attribute__((aligned(64))) page_t;
_Static_assert(offsetof(page_t, last) == 64, "every free reads line 1 only; the owner writes line 2");
_Static_assert(sizeof(page_t) == 128, "two cache lines");

#define PAGE_NOT_PURGED UINT32_MAX

typedef struct {
  page_t *first;
  page_t *last;
} page_queue_t;

/* One bitmap word's frees by a thread other than the page's owner, not yet
 * published (remote.c): key is the page's descriptor with the word's index
 * in its low bits, 0 when the entry is empty. */
typedef struct {
  uintptr_t key;
  uint64_t mask;
} remote_slot_t;

/* Word w of a page's two bitmaps, side by side: another thread's free
 * reads the owner's word (a block already free there is a double free)
 * and sets its bit in the remote word; in one cache line, that is one
 * line moved between the cores, not two. */
typedef struct alloy_bit_pair_s {
  uint64_t free;            /* the owner's: bit set = block free */
  _Atomic(uint64_t) remote; /* other threads' frees, not yet folded in */
} bit_pair_t;
/* A page's bitmaps, one slot per slice in a class segment's bitmap slice
 * (so one slice: 512 bytes or 1 KiB a slice). */
typedef struct alloy_page_bits_s {
  bit_pair_t word[BITMAP_WORDS];
} page_bits_t;
_Static_assert(sizeof(page_bits_t) * SLICES_PER_SEGMENT == SLICE_SIZE, "one bitmap slot per slice");

typedef enum { SEGMENT_CLASS, SEGMENT_LARGE, SEGMENT_BIG, SEGMENT_FREE } segment_kind_t;

/* The header of a frame run (segment.c): a segment's, a big block's or a
 * free run's.  The page map points every frame of the run at it.  What a
 * free run needs comes first: a purged run keeps only its first OS page. */
struct alloy_segment_s {
  segment_t *next;                  /* the back end's lists (bins) */
  segment_t *prev;
  size_t mapped_size;               /* bytes of the run (whole frames, or a direct mapping) */
  uint64_t freed_ms;                /* free runs: when freed (decay) */
  uint8_t kind;                     /* segment_kind_t */
  uint8_t bin;                      /* the back end's bin holding it (0xff: none) */
  uint8_t dirty;                    /* free run: pages used since purged (else all zero but this page, unless unknown) */
  uint8_t direct;                   /* big: a mapping of its own, not pool frames */
  uint8_t guarded;                  /* an inaccessible page ends it */
  uint8_t first_slice;              /* CLASS_FIRST_SLICE or LARGE_FIRST_SLICE */
  uint8_t nohuge_halves;            /* huge segments: 2 MiB units (bit each) advised NOHUGEPAGE after a partial purge */
  uint8_t unknown;                  /* free run: purged with MADV_FREE, so not known to be zero */
  uint32_t used_pages;
  uint8_t huge;                     /* advised HUGEPAGE when made (thp:always, or thp:auto past its threshold) */
  addr_node_t run_node;             /* free run: its place in the back end's address tree (first OS page) */
  uint64_t free_slices;             /* bit i: slice i belongs to no page */
  uint64_t dirty_slices;            /* bit i: slice i was used since mapped or purged */
  uint64_t free_at_last_decay;      /* free and dirty slices at the previous decay pass */
  uint64_t holes_at_last_growth;    /* free and dirty slices when the pool last grew past it (segment.c purge_holes) */
  uint64_t unknown_slices;          /* purged with MADV_FREE: content not known to be zero */
  /* Slice -> page map: free(p) reads slice_page[(p >> 16) & 63].  Free slices
   * point at a sentinel page that no heap owns, so an invalid pointer lands
   * in the slow path without a NULL test on the fast path. */
  page_t *slice_page[SLICES_PER_SEGMENT];
  page_t pages[SLICES_PER_SEGMENT]; /* descriptor of the page starting at slice i */
};

/* A purged free run keeps only its first OS page (4 KiB at least): what a
 * run needs of its header must lie there. */
_Static_assert(offsetof(segment_t, run_node) + sizeof(addr_node_t) <= 4096, "a run's node in its first OS page");

/* jemalloc's "lextents": large sizes in 4 classes per doubling from 64 KiB
 * (alloy rounds large blocks to the OS page; a block counts in the first
 * lextent at least as big). */
#define LEXTENTS 20

/* Large and big blocks belong to no heap: their statistics are kept per
 * arena (0: the thread heaps) by the back end, updated per block. */
typedef struct {
  _Atomic(uint64_t) curlextents[LEXTENTS];
  _Atomic(uint64_t) allocated; /* usable bytes of live blocks */
  _Atomic(uint64_t) count;     /* live blocks */
  _Atomic(uint64_t) nmalloc;
  _Atomic(uint64_t) ndalloc;
} large_stats_t;

/* Per-heap counters, folded into the process totals at events (stats.c). */
typedef struct {
  uint64_t alloc_bytes;  /* bytes allocated up to the last event */
  uint64_t nmalloc;      /* allocations up to the last event */
  uint64_t freed_bytes;  /* bytes freed by this thread (any owner) */
} heap_counters_t;

struct alloy_heap_s {
  /* --- fast path --- */
  page_t *direct[DIRECT_SLOTS];  /* (size+15)/16 -> page serving that class */
  int64_t event_countdown;       /* charge left until the next rare event */
  heap_counters_t counters;
  /* --- slow path, owner only --- */
  int64_t event_period;          /* countdown value at the last event */
  page_queue_t queues[SIZE_CLASSES];
  /* --- under pages_lock: other threads move full pages to pending --- */
  page_queue_t full;             /* class pages with no free block */
  page_queue_t pending;          /* full pages another thread freed into */
  os_lock_t pages_lock;
  /* 0: a thread heap; n: explicit arena n (arena.c).  Set once, before the
   * heap is published, and never written again (heap_reset keeps it with
   * the lock): other threads' frees read it of the owner of any page, whose
   * heap may be being recycled meanwhile (free.c). */
  uint32_t arena_index;
  _Atomic(bool) has_pending;     /* pending is not empty (read without the lock) */
  /* --- large and big blocks, tracked by explicit arenas only (reset) --- */
  page_queue_t blocks;           /* under the arena's lock */
  large_stats_t *large_stats;    /* where the heap's large and big blocks are counted */
  /* --- large spans freed by this thread, kept for its next large blocks (heap.c) --- */
  page_t *large_cache[LARGE_CACHE_SLOTS];
  uint32_t large_cached;
  uint32_t large_cache_idle;     /* the heap's events since the cache last served a block */
  /* --- other threads' blocks this thread freed, not yet published (remote.c) --- */
  uint32_t remote_held;          /* blocks in the table */
  uint64_t remote_occupied;      /* bit i: remote[i] holds blocks (a flush visits only those) */
  uint32_t remote_words;         /* words published since the last review, */
  uint32_t remote_blocks;        /* blocks gathered since then, */
  uint32_t remote_review_held;   /* and remote_held then */
  uint32_t remote_direct;        /* remote frees left to publish at once (no batching seen) */
  remote_slot_t remote[REMOTE_SLOTS];
  /* --- the decay of mostly empty pages (heap.c, heap_sweep_sparse) --- */
  uint64_t sweep_ms;             /* when the last sweep ran */
  /* --- process lists, under heaps_lock (heap.c) --- */
  heap_t *registry_next;         /* all heaps ever made */
  heap_t *pool_next;             /* abandoned or idle list */
  uint64_t abandoned_at;         /* event clock when its thread exited */
  uint64_t abandoned_ms;         /* and the time */
  /* Event clock and time at the heap's last event: when they are far
   * behind (heap.c, heap_is_idle), its thread is idle, and an active
   * thread takes its pending pages (heap_take_idle_pending).  Written by
   * the owner, read by any thread. */
  _Atomic(uint64_t) active_at;
  _Atomic(uint64_t) active_ms;
  /* Its thread's id, and the thread's CPU time when the idle scan last
   * looked (with the event clock then): a thread blocked in a wait uses
   * none.  Under heaps_lock. */
  uint64_t thread_id;
  uint64_t idle_cpu_ns;
  uint64_t idle_cpu_at;
  uint64_t idle_cpu_spacing; /* events between two looks (heap.c: doubles at each false alarm) */
  /* --- statistics (stats.c) --- */
  uint64_t sampled_at;           /* alloc_bytes at the last guarded sample */
  uint64_t folded_alloc;         /* counters.* already added to the totals */
  uint64_t folded_freed;
  uint64_t folded_nmalloc;
  uint64_t retired_fills[SIZE_CLASSES]; /* blocks made available in pages since released */
  uint64_t arena_alloc_bytes;    /* this thread's allocations in explicit arenas (thread.allocated) */
  uint64_t peak_net;             /* thread.peak: highest allocated - freed seen at events */
  uint64_t peak_base;            /* allocated - freed when thread.peak.reset was written */
  struct alloy_heap_stats_s *published; /* statistics snapshot for other threads (stats.c) */
  uint64_t published_gen;        /* the stats generation it was taken for */
  /* --- the heap profiler's sampling, owner only (prof_sample.c) --- */
  int64_t prof_left;             /* bytes to the next sample point */
  uint64_t prof_gen;             /* the sampling generation prof_left was drawn in */
  uint64_t prof_rng;             /* its random state */
  bool in_use;                   /* a thread owns it */
  bool shared;                   /* the heap of exited threads (heap.c): no thread owns it */
};

/* A heap's statistics, taken by its owner (or under its arena's lock) when
 * a reader asks for fresh ones (an `epoch` write), read by any thread with
 * relaxed atomics (stats.c).  Per size class, jemalloc's bin statistics:
 * curregs and curslabs exact at the time taken; nfills counts blocks the
 * bin made available to malloc, its "nmalloc". */
typedef struct {
  uint64_t curregs;
  uint64_t curslabs;
  uint64_t nonfull_slabs;
  uint64_t nfills;
} bin_stats_t;


typedef struct alloy_heap_stats_s {
  bin_stats_t bins[SIZE_CLASSES];
  uint64_t pactive;          /* bytes of the heap's class pages in use, in OS pages */
  uint64_t nmalloc;          /* allocations of the heap, all sizes */
} heap_stats_t;
_Static_assert(sizeof(heap_stats_t) % sizeof(uint64_t) == 0, "heap_stats_t is summed as uint64_t words");
_Static_assert(sizeof(bin_stats_t) == 4 * sizeof(uint64_t), "bin_stats_t is summed as uint64_t words");

#endif /* ALLOY_TYPES_H */
