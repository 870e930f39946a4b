/*
 * types.h - the data layout of alloy, told once.
 *
 * Memory comes from the OS in SEGMENTS: 4 MiB regions aligned to 4 MiB, so
 * the segment of any pointer is `p & ~(4 MiB - 1)`.  A process-wide bitmap
 * (segment.c) says which 4 MiB frames are alloy's segments; free() consults
 * it before touching anything, so a pointer alloy never returned is reported
 * instead of followed.
 *
 *   segment (4 MiB) = 64 SLICES of 64 KiB
 *   +-----------+---------+---------+-----------------------+-------+
 *   | header    | page    | page    | page (8 slices)       |  ...  |
 *   | slice 0   | slice 1 | slice 2 | slices 3..10          |       |
 *   +-----------+---------+---------+-----------------------+-------+
 *
 * Slice 0 holds only the segment header: the page descriptors of all 64
 * slices and a slice -> page map.  No block ever lives in slice 0, so the
 * metadata is out of band: an overflow off the end of a block runs into the
 * next block or the next page, never into a page descriptor or free-list
 * head of its own segment (only into the header of the next segment if the
 * block is the very last one, a reach the `guard` option will close).
 *
 * A PAGE is a run of slices serving one size class:
 *   small  (blocks <= 8 KiB)   one slice  (64 KiB)
 *   medium (blocks <= 64 KiB)  eight slices (512 KiB)
 *   large  (<= 2 MiB)          as many slices as the block needs, one block,
 *                              usable size rounded to the OS page
 *   huge   (> 2 MiB)           a segment of its own, mapped for that block
 *                              and unmapped when it is freed
 *
 * Blocks of a small or medium page are carved lazily (a few KiB at a time) so
 * untouched parts of a page never become resident.  Each page keeps three
 * free lists, so no free takes a lock:
 *   free         blocks the owner allocates from (the fast path pops here)
 *   local_free   blocks the owner thread freed; swapped into `free` when it
 *                runs dry, so the fast path never tests two lists
 *   thread_free  blocks other threads freed: an atomic LIFO the owner
 *                collects with one exchange
 *
 * A HEAP belongs to one thread (initial-exec TLS, never an initialisation
 * check on the fast path: a new thread points at a static empty heap whose
 * pages have no free blocks, so its first malloc falls to the slow path,
 * which sets the real heap up).  A heap owns its segments and keeps one page
 * queue per size class; `direct[]` maps every request of at most 1 KiB,
 * rounded to 16 bytes, straight to the page currently serving it.  Pages
 * with nothing free move to the heap's `full` queue, which the allocation
 * path never walks; the thread that next frees into such a page brings it
 * back (the owner directly, another thread through `delayed_free`, see
 * free.c for the protocol and its memory-ordering argument).
 *
 * When a thread exits its heap is ABANDONED, whole, to a process-wide list;
 * the next heap that needs a page adopts it (pages, segments and all).
 *
 * Rare events (statistics folding; later sampling and purging) hang off one
 * counter: each malloc subtracts its block size from `event_countdown` and
 * the slow path runs when it goes negative.
 */
#ifndef ALLOY_TYPES_H
#define ALLOY_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALLOY_KiB ((size_t)1024)
#define ALLOY_MiB (ALLOY_KiB * ALLOY_KiB)

#define SEGMENT_SHIFT 22 /* 4 MiB */
#define SEGMENT_SIZE ((size_t)1 << SEGMENT_SHIFT)
#define SEGMENT_MASK (SEGMENT_SIZE - 1)
#define SLICE_SHIFT 16 /* 64 KiB */
#define SLICE_SIZE ((size_t)1 << SLICE_SHIFT)
#define SLICES_PER_SEGMENT (SEGMENT_SIZE / SLICE_SIZE) /* 64: one bit each in a uint64_t */

#define ALIGNMENT_MIN 16 /* every block is 16-aligned (max_align_t) */
#define SMALL_MAX (8 * ALLOY_KiB)   /* largest block of a one-slice page */
#define MEDIUM_MAX (64 * ALLOY_KiB) /* largest block of a size class */
#define MEDIUM_PAGE_SLICES 8
#define LARGE_MAX (2 * ALLOY_MiB) /* largest block placed inside a segment */
#define DIRECT_MAX 1024           /* requests served through heap->direct[] */
#define DIRECT_SLOTS (DIRECT_MAX / ALIGNMENT_MIN + 1)
#define SIZE_CLASSES 80 /* 16..128 by 16, then 8 classes per doubling to 64 KiB */

/* The user address space is 47 bits on x86-64 (and on 48-bit ARM64): one
 * byte per 4 MiB frame is 32 MiB of zero-filled .bss (address space only:
 * just the pages covering mapped segments are ever touched, 4 KiB per 16 GiB
 * of segments).  A byte rather than a bit saves free() three instructions. */
#define ADDRESS_BITS 47
#define SEGMENT_MAP_SIZE ((size_t)1 << (ADDRESS_BITS - SEGMENT_SHIFT))

/* The event countdown counts bytes and allocations in one word: each
 * allocation subtracts (size << CHARGE_SHIFT) + 1, so one subtraction and one
 * sign test on the fast path gate the rare events and still give exact
 * totals of both.  An interval allocates at most 2^18 bytes in 16-byte blocks
 * (2^14 < 2^CHARGE_SHIFT allocations) before it is folded. */
#define CHARGE_SHIFT 20
#define EVENT_INTERVAL_BYTES (256 * ALLOY_KiB)
#define EVENT_INTERVAL ((int64_t)EVENT_INTERVAL_BYTES << CHARGE_SHIFT)
#define CHARGE_MAX_BYTES ((size_t)1 << 40) /* larger blocks are folded at once */

/* A free block: its first word links the free list, encoded with the page's
 * key (a heap overflow that rewrites it yields a wild pointer, not a chosen
 * one); its second word marks it free, so a second free of it is caught.
 * malloc clears the mark.  Every block is at least 16 bytes. */
typedef struct alloy_block_s {
  uintptr_t next_enc;
  uintptr_t free_mark;
} block_t;

/* A spin lock that yields (os.c); never held across a system call that could
 * wait long, except where noted. */
typedef struct {
  _Atomic(int) locked;
} os_lock_t;
#define OS_LOCK_INIT {0}

typedef struct alloy_heap_s heap_t;
typedef struct alloy_segment_s segment_t;

typedef enum { PAGE_SMALL, PAGE_MEDIUM, PAGE_LARGE, PAGE_HUGE } page_kind_t;

/* Low bits of page->xheap (heaps are 64-aligned).  The free fast path compares
 * xheap with the calling thread's heap: one compare says both "mine" and
 * "not in the full queue". */
#define XHEAP_FULL ((uintptr_t)1)

/* Low two bits of page->thread_free: what a remote free must do besides
 * pushing (free.c). */
typedef enum {
  TF_PLAIN = 0,     /* push the block on thread_free */
  TF_NOTIFY = 1,    /* page is in the full queue: hand the block to the heap */
  TF_NOTIFYING = 2, /* a remote thread is handing a block to the heap now */
  TF_NEVER = 3,     /* page is abandoned or moving: push, never notify */
} tf_state_t;
#define TF_STATE_MASK ((uintptr_t)3)

typedef struct alloy_page_s {
  /* --- fast-path fields, owner thread only (one cache line) --- */
  block_t *free;         /* allocation list */
  uint32_t used;         /* blocks handed out and not yet freed back here */
  uint32_t capacity;     /* blocks carved into lists so far */
  size_t block_size;     /* class size (usable size of large/huge) */
  int64_t alloc_charge;  /* (block_size << CHARGE_SHIFT) + 1, see EVENT_INTERVAL */
  uintptr_t key;         /* encodes this page's free-list links and free marks */
  uint64_t block_magic;  /* ceil(2^40 / block_size): division by multiplication (small/medium) */
  block_t *local_free;   /* owner's frees, swapped into `free` when it is empty */
  _Atomic(uintptr_t) xheap;       /* owning heap | XHEAP_FULL; 0 for huge/unused */
  _Atomic(uintptr_t) thread_free; /* remote frees | tf_state_t */
  uint8_t *start;        /* first block */
  uint32_t reserved;     /* blocks that fit in the page */
  uint8_t kind;          /* page_kind_t */
  uint8_t size_class;    /* for small and medium pages */
  uint16_t slice_index;  /* first slice of this page in its segment */
  uint32_t slice_count;  /* slices covered; 0 = descriptor unused */
  uint8_t is_zero;       /* large: every byte is still zero (fresh slices) */
  uint8_t pad_[3];
  /* --- queue links, owner only --- */
  struct alloy_page_s *next;
  struct alloy_page_s *prev;
} page_t;

typedef struct {
  page_t *first;
  page_t *last;
} page_queue_t;

typedef enum { SEGMENT_NORMAL, SEGMENT_HUGE } segment_kind_t;
typedef enum { SEGMENTS_CLASS, SEGMENTS_LARGE, SEGMENT_LISTS } segment_list_t;

struct alloy_segment_s {
  /* Slice -> page map: free(p) reads slice_page[(p >> 16) & 63].  Free slices
   * point at a sentinel page that no heap owns, so an invalid pointer lands
   * in the slow path without a NULL test on the fast path. */
  page_t *slice_page[SLICES_PER_SEGMENT];
  page_t pages[SLICES_PER_SEGMENT]; /* descriptor of the page starting at slice i */
  uint64_t free_slices;             /* bit i: slice i belongs to no page */
  uint64_t dirty_slices;            /* bit i: slice i was used since mapped or purged */
  uint64_t free_at_last_decay;      /* free and dirty slices at the previous decay pass */
  uint64_t unknown_slices;          /* purged with MADV_FREE: content not known to be zero */
  heap_t *heap;                     /* owner; NULL for huge segments */
  segment_t *next;                  /* owner's segment list */
  segment_t *prev;
  size_t mapped_size;               /* bytes mapped for this segment */
  uint32_t used_pages;
  uint8_t kind;                     /* segment_kind_t */
  uint8_t list;                     /* segment_list_t: which heap list holds it */
  uint8_t guarded;                  /* huge: an inaccessible page follows the block */
  uint8_t nohuge_halves;            /* thp:always: 2 MiB halves advised NOHUGEPAGE after a partial purge */
};

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
  /* --- slow path --- */
  int64_t event_period;          /* countdown value at the last event */
  page_queue_t queues[SIZE_CLASSES];
  page_queue_t full;             /* small/medium pages with nothing free */
  page_queue_t large;            /* large pages (one block each, always "full") */
  _Atomic(block_t *) delayed_free; /* remote frees into full pages (free.c) */
  /* Owned segments, pages of size classes apart from large blocks: mixing
   * one-slice pages into the segments large spans come from fragments them
   * (measured: twice the RSS of glibc on 2-thread churn with 5% large). */
  segment_t *segments[SEGMENT_LISTS];
  segment_t *spare;              /* one empty segment kept to avoid map/unmap churn */
  /* Guards segments[], spare and the slice bits of its segments, so the
   * background thread can purge an idle heap's free slices (segment.c).
   * Taken per page, never per block. */
  os_lock_t seg_lock;
  heap_t *registry_next;         /* all heaps ever made */
  heap_t *pool_next;             /* abandoned or idle list */
  uint64_t abandoned_at;         /* event clock when its thread exited */
  uint64_t abandoned_ms;         /* and the time */
  _Atomic(uint64_t) last_decay_ms; /* when its segments' free slices were last checked */
  uint64_t sampled_at;           /* alloc_bytes at the last guarded sample */
  uint64_t folded_alloc;         /* counters.* already added to the totals */
  uint64_t folded_freed;
  uint64_t folded_nmalloc;
  uint64_t retired_carved[SIZE_CLASSES]; /* blocks carved in pages since released */
  uint64_t arena_alloc_bytes;    /* this thread's allocations in explicit arenas (thread.allocated) */
  uint64_t large_nmalloc;        /* large blocks allocated and released by this heap */
  uint64_t large_ndalloc;
  uint64_t peak_net;             /* thread.peak: highest allocated - freed seen at events */
  uint64_t peak_base;            /* allocated - freed when thread.peak.reset was written */
  struct alloy_heap_stats_s *published; /* statistics snapshot for other threads (stats.c) */
  uint64_t published_gen;        /* the stats generation it was taken for */
  uint32_t arena_index;          /* 0: a thread heap; n: explicit arena n (arena.c) */
  bool in_use;                   /* a thread owns it */
  bool shared;                   /* the heap of exited threads (heap.c): no thread owns it */
};

/* A heap's statistics, taken by its owner (or under its arena's lock) when
 * a reader asks for fresh ones (an `epoch` write), read by any thread with
 * relaxed atomics (stats.c).  Per size class, jemalloc's bin statistics:
 * curregs and curslabs exact at the time taken; nfills counts blocks the
 * bin carved for the allocation lists, its "nmalloc". */
typedef struct {
  uint64_t curregs;
  uint64_t curslabs;
  uint64_t nonfull_slabs;
  uint64_t nfills;
} bin_stats_t;

/* jemalloc's "lextents": large sizes in 4 classes per doubling from 64 KiB
 * to LARGE_MAX (alloy rounds large blocks to the OS page; a block counts in
 * the first lextent at least as big). */
#define LEXTENTS 20

typedef struct alloy_heap_stats_s {
  bin_stats_t bins[SIZE_CLASSES];
  uint64_t curlextents[LEXTENTS];
  uint64_t large_allocated;  /* bytes in large blocks */
  uint64_t large_count;      /* live large blocks */
  uint64_t large_nmalloc;
  uint64_t large_ndalloc;
  uint64_t pactive;          /* slices in pages, in OS pages */
  uint64_t pdirty;           /* free slices not yet purged, in OS pages */
  uint64_t nmalloc;          /* allocations of the heap, all sizes */
} heap_stats_t;

#endif /* ALLOY_TYPES_H */
