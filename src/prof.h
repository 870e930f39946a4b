/*
 * prof.h - the heap profiler's files among themselves: the sample table's
 * full interface (prof_table.c), the recorder's hooks and controls
 * (prof.c) and the profile writer (prof_dump.c).  What the core calls
 * (the sampling schedule, the free-side hooks) is declared in internal.h;
 * docs/DESIGN.md, "Heap profiling", tells the whole story.
 *
 * Where the allocator calls the profiler, each call behind one test of
 * opt.prof (or of a page's tag) on a path that is already rare:
 *   stats_fold, heap_reset   the event period: prof_sample_period
 *   event_run                prof_sample_due before the fold, prof_event at the end
 *   free_owned               prof_table_free for a page tagged XHEAP_SAMPLED
 *   page_collect_remote      prof_table_collected for such a page
 *   free_block               prof_table_free for a large or big block with a sample
 *   arena_malloc, alloc_slow prof_record_pending once their lock is released
 *   realloc, xallocx         prof_resized (in-place growth, a big block moved)
 *   arena_reset              prof_forget_heap before its blocks vanish
 *   page_set_owner, heap_page_to_full  writes of xheap keep XHEAP_SAMPLED
 *   init.c                   prof_start, prof_at_exit, prof_fork_*
 */
#ifndef ALLOY_PROF_H
#define ALLOY_PROF_H

#include "internal.h"
#include "unwind.h"

#define PROF_DEPTH_MAX 128 /* frames kept per sample (jemalloc's PROF_BT_MAX) */

/* ------------------------------------------------ the table (prof_table.c) */

typedef struct {
  uint64_t samples;  /* samples whose blocks are still allocated */
  uint64_t buckets;  /* (call stack, size) pairs */
  uint64_t stacks;   /* distinct call stacks */
  uint64_t dropped;  /* samples not recorded: a table was full */
  uint64_t no_stack; /* samples recorded without a call stack (see prof.c) */
  uint64_t metadata; /* bytes of profiler memory in use */
} prof_table_stats_t;

/* One line of a profile: `live` sampled blocks of `size` bytes (and
 * `accum` ever sampled) allocated at frames[0..depth), innermost first. */
typedef struct {
  uint64_t size, live, accum;
  const uintptr_t *frames;
  unsigned depth;
} prof_bucket_t;

/* addr, a block of `page` just allocated, is a sample with this stack;
 * false when it could not be recorded (counted as dropped). */
bool prof_table_insert(uintptr_t addr, page_t *page, const uintptr_t *frames, unsigned depth);
/* The block at `from` now has page->block_size bytes and lies at `to`. */
void prof_table_resize(uintptr_t from, uintptr_t to, page_t *page);
void prof_table_reset(void);
/* Drops the samples of blocks that `gone` says no longer exist. */
void prof_table_forget(bool (*gone)(uintptr_t addr, const void *arg), const void *arg);
void prof_table_count_no_stack(void);
/* Calls fn on every bucket with blocks still allocated (or, with `accum`,
 * ever sampled), under the table's lock: fn must not allocate nor block. */
void prof_table_visit(bool accum, void (*fn)(const prof_bucket_t *b, void *arg), void *arg);
void prof_table_stats(prof_table_stats_t *out);
void prof_table_fork_prepare(void);
void prof_table_fork_release(void);

/* ----------------------------------------------- the recorder (prof.c) */

/* The end of an event: records `block` when `sampled`, and writes the
 * interval and gdump profiles that are due.  Returns block. */
void *prof_event(heap_t *heap, void *block, bool sampled);
/* A block sampled in a heap behind a lock (an explicit arena's, the exited
 * threads') waits in the thread's slot until the caller released it. */
void prof_record_pending(void);
/* The block at `from` (now `to`) was resized in place or moved with its
 * pages, its growth already charged to the caller's countdown. */
void prof_resized(const void *from, const void *to);
/* arena.<i>.reset discards the heap's blocks without freeing them. */
void prof_forget_heap(const heap_t *heap);
/* The library's constructor (init.c, the top layer, names the allocation
 * path the unwinder cuts): the unwinder warmed up. */
void prof_start(const unwind_path_t *path);
void prof_at_exit(void); /* the final profile and the leak summary */
void prof_fork_prepare(void);
void prof_fork_release(void);

/* Controls (jemalloc's prof.*, thread.prof.active), for prof_ctl.c. */
bool prof_thread_active_get(void);
void prof_thread_active_set(bool on);
bool prof_thread_active_init_get(void);
void prof_thread_active_init_set(bool on);
bool prof_gdump_get(void);
void prof_gdump_set(bool on);
void prof_active_set(bool on);
uint64_t prof_interval(void);
/* prof.reset: forget every sample, sample 1 in 2^lg bytes from now on. */
void prof_reset(unsigned lg);
bool prof_prefix_set(const char *prefix);
/* prof.dump: to `path`, or to <prefix>.<pid>.<seq>.m<mseq>.heap for NULL;
 * false when the file cannot be written. */
bool prof_dump_manual(const char *path);

/* ----------------------------------------------- the writer (prof_dump.c) */

/* Writes the heap profile (gperftools' text format, heap_v2) to `path`. */
bool prof_dump_write(const char *path, unsigned lg_sample, bool accum);

#endif /* ALLOY_PROF_H */
