/*
 * init.c - process and thread life cycle: one-time process initialisation
 * (from whichever malloc comes first, even the dynamic loader's), the thread
 * exit hook that abandons a thread's heap, fork handlers, and the exit-time
 * reports.  Initialisation never allocates; what libc may allocate on our
 * behalf (pthread_key_create, pthread_atfork) is called only once the
 * calling thread has its heap, so a malloc from inside them is served.
 */
#include "internal.h"

#include <alloy.h>
#include <pthread.h>

_Atomic(int) alloy__process_ready; /* 0 not started, 1 running, 2 done */
uint64_t alloy__secret;
bool alloy__secure = true; /* set from the options at process start */

void process_init(void) {
  if (likely(atomic_load_explicit(&alloy__process_ready, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&alloy__process_ready, &expected, 1)) {
    os_init();
    options_init();
    size_class_init();
    alloy__secret = alloy__options.secure ? os_random() | 1 : 0;
    alloy__secure = alloy__options.secure;
    atomic_store_explicit(&alloy__process_ready, 2, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&alloy__process_ready, memory_order_acquire) != 2) os_yield();
}

static pthread_key_t thread_key;
static _Atomic(int) thread_key_ready;
static os_lock_t thread_key_lock = OS_LOCK_INIT;

/* glibc clears the key before calling this; a later destructor that
 * allocates gets a heap again, and re-registers, so it is abandoned in the
 * next round of destructors. */
static void thread_done(void *value) { heap_thread_done((heap_t *)value); }

static void fork_prepare(void) {
  arena_fork_prepare();
  heap_fork_prepare();
  huge_cache_fork_prepare();
  tcache_fork_prepare();
  os_fork_prepare();
}
static void fork_parent(void) {
  os_fork_parent();
  tcache_fork_release();
  huge_cache_fork_release();
  heap_fork_parent();
  arena_fork_release();
}
static void fork_child(void) {
  os_fork_child();
  tcache_fork_release();
  huge_cache_fork_release();
  heap_fork_child();
  arena_fork_child();
  background_fork_child();
}

void init_thread_register(heap_t *heap) {
  if (!atomic_load_explicit(&thread_key_ready, memory_order_acquire)) {
    os_lock(&thread_key_lock);
    if (!atomic_load_explicit(&thread_key_ready, memory_order_relaxed)) {
      if (pthread_key_create(&thread_key, thread_done) != 0)
        report_fatal("alloy: cannot create the thread-exit key");
      pthread_atfork(fork_prepare, fork_parent, fork_child);
      atomic_store_explicit(&thread_key_ready, 1, memory_order_release);
    }
    os_unlock(&thread_key_lock);
  }
  pthread_setspecific(thread_key, heap);
}

/* The exit-time reports: the summary (stats_summary) and jemalloc's full
 * report (stats_print, with stats_print_opts), only if the process ever
 * initialised alloy, i.e. read its options. */
__attribute__((destructor)) static void process_done(void) {
  if (atomic_load_explicit(&alloy__process_ready, memory_order_acquire) != 2) return;
  stats_print_at_exit();
  if (alloy__options.stats_print)
    alloy_malloc_stats_print(NULL, NULL, alloy__options.stats_print_opts);
}
