/*
 * init.c - the process's life cycle around alloy: fork handlers and the
 * exit-time reports.  The top layer: it calls every module that holds a
 * lock.  Registered by a library constructor, which runs when liballoy is
 * loaded (before the program's own constructors, and before any thread of
 * the program exists), so no fork can find a lock of alloy's held without
 * a handler to release it in the child.
 */
#include "internal.h"

#include <alloy.h>

/* Every lock alloy has, in the one order any code path takes them: an
 * arena's lock (and its heap's pages_lock), the exited threads' heap, the
 * heap lists, each heap's pages_lock, the per-CPU caches' (percpu.c), the
 * back end, the tcache table, the metadata.  The child never inherits a lock held by a thread that does not
 * exist there; tests/unit/test_fork.c forks while each lock is held. */
static void fork_prepare(void) {
  arena_fork_prepare();
  heap_fork_prepare();
  percpu_fork_prepare();
  segment_fork_prepare();
  tcache_fork_prepare();
  meta_fork_prepare();
}

static void fork_parent(void) {
  meta_fork_release();
  tcache_fork_release();
  segment_fork_release();
  percpu_fork_release();
  heap_fork_release();
  arena_fork_release();
}

static void fork_child(void) {
  meta_fork_release();
  tcache_fork_release();
  segment_fork_child();
  percpu_fork_child();
  heap_fork_release();
  arena_fork_child();
  background_fork_child();
}

__attribute__((constructor)) static void process_loaded(void) {
  os_atfork(fork_prepare, fork_parent, fork_child);
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
  stats_print_at_exit();
  if (alloy__options.stats_print) alloy_malloc_stats_print(NULL, NULL, alloy__options.stats_print_opts);
}
