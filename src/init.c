/*
 * init.c - the process's life cycle around alloy: fork handlers, the heap
 * profiler's start, and the exit-time reports.  The top layer: it calls
 * every module that holds a lock.  Registered by a library constructor,
 * which runs when liballoy is loaded (before the program's own
 * constructors, and before any thread of the program exists), so no fork
 * can find a lock of alloy's held without a handler to release it in the
 * child.
 */
#include "prof.h"

#include <alloy.h>

/* First, no thread of alloy's inside the loader's lock (os_code_fork_prepare:
 * a wait, not a lock).  Then every lock alloy has, in the one order any
 * code path takes them: the arena table, an arena's lock (and its heap's
 * pages_lock), the exited threads' heap, the heap lists, each heap's
 * pages_lock, the per-CPU caches' (percpu.c), the back end, the tcache
 * table, the metadata, the heap profiler's (leaves, taken under an arena's
 * lock and a pages_lock, so last).  The child never inherits a lock held
 * by a thread that does not exist there; tests/unit/test_fork.c forks
 * while each lock is held. */
static void fork_prepare(void) {
  os_code_fork_prepare(); /* first: its wait needs none of alloy's locks */
  arena_fork_prepare();
  heap_fork_prepare();
  percpu_fork_prepare();
  segment_fork_prepare();
  tcache_fork_prepare();
  meta_fork_prepare();
  prof_fork_prepare();
  os_fork_window_open(); /* last: the other libraries' handlers that run now may allocate */
}

static void fork_parent(void) {
  os_fork_window_close(); /* first: the releases below are real */
  prof_fork_release();
  meta_fork_release();
  tcache_fork_release();
  segment_fork_release();
  percpu_fork_release();
  heap_fork_release();
  arena_fork_release();
  os_code_fork_parent();
}

static void fork_child(void) {
  os_fork_window_close();
  prof_fork_release();
  meta_fork_release();
  tcache_fork_release();
  segment_fork_child();
  percpu_fork_child();
  heap_fork_child();
  arena_fork_child();
  background_fork_child();
  os_code_fork_child();
}

/* The allocation path as the heap profiler's unwinder must cut it when
 * alloy is linked into the executable (unwind.h): the profiler's hooks that
 * capture stacks, then the functions through which a program's allocation
 * reaches them.  Named here, the one layer that may name them all; weak
 * references by asm name, since some are in no core build (override.c's
 * are not in liballoy_core.a: they resolve to another library's or to
 * nothing, harmlessly). */
#define WEAK_FN(name) extern char fn_##name[] __asm__(#name) __attribute__((weak));
#define FN_ADDR(name) (uintptr_t) fn_##name,
#define ANCHOR_NAMES(X) X(prof_event) X(prof_record_pending) X(prof_resized)
#define PATH_NAMES(X)                                                                              \
  X(event_run) X(heap_alloc_small) X(heap_alloc) X(alloc_tier2) X(alloc_slow) X(heap_alloc_exited) \
  X(percpu_malloc) X(percpu_alloc)                                                                 \
  X(arena_malloc) X(arena_malloc_bound) X(alloy__aligned) X(alloy__resize_in_place)                \
  X(alloy_malloc) X(alloy_calloc) X(alloy_realloc) X(alloy_reallocarray)                           \
  X(alloy_aligned_alloc) X(alloy_posix_memalign) X(alloy_memalign) X(alloy_valloc)                 \
  X(alloy_pvalloc) X(alloy_mallocx) X(alloy_rallocx) X(alloy_xallocx) X(malloc) X(calloc)          \
  X(realloc) X(reallocarray) X(aligned_alloc) X(posix_memalign) X(memalign) X(valloc) X(pvalloc)   \
  X(mallocx) X(rallocx) X(xallocx) X(_Znwm) X(_Znam) X(_ZnwmRKSt9nothrow_t)                        \
  X(_ZnamRKSt9nothrow_t) X(_ZnwmSt11align_val_t) X(_ZnamSt11align_val_t)                          \
  X(_ZnwmSt11align_val_tRKSt9nothrow_t) X(_ZnamSt11align_val_tRKSt9nothrow_t)
ANCHOR_NAMES(WEAK_FN)
PATH_NAMES(WEAK_FN)
static const uintptr_t path_anchors[] = {ANCHOR_NAMES(FN_ADDR)};
static const uintptr_t path_fns[] = {PATH_NAMES(FN_ADDR)};
static const unwind_path_t alloc_path = {path_anchors, sizeof path_anchors / sizeof path_anchors[0], path_fns,
                                         sizeof path_fns / sizeof path_fns[0]};

__attribute__((constructor)) static void process_loaded(void) {
  os_atfork(fork_prepare, fork_parent, fork_child);
  prof_start(&alloc_path);
}

/* Referenced from alloc.c, which every program that uses alloy links: so a
 * static link (liballoy.a, liballoy_core.a) keeps this file, and its
 * constructor, which nothing else names. */
const char alloy__init_anchor = 1;

/* The exit-time reports: the summary (stats_summary) and jemalloc's full
 * report (stats_print, with stats_print_opts), only if the process ever
 * initialised alloy, i.e. read its options. */
__attribute__((destructor)) static void process_done(void) {
  if (atomic_load_explicit(&alloy__process_ready, memory_order_acquire) != 2) return;
  prof_at_exit();
  stats_print_at_exit();
  if (alloy__options.stats_print) alloy_malloc_stats_print(NULL, NULL, alloy__options.stats_print_opts);
}
