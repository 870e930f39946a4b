/*
 * init.c - process and thread life cycle: one-time process initialisation
 * (from whichever malloc comes first, even the dynamic loader's), the thread
 * exit hook that abandons a thread's heap, fork handlers, and the exit-time
 * reports.  Initialisation never allocates itself; a malloc libc makes on
 * its behalf (pthread_atfork) is served, see process_init.
 */
#include "internal.h"

#include <alloy.h>
#include <pthread.h>

_Atomic(int) alloy__process_ready; /* 0 not started, 1 running, 2 done */
uint64_t alloy__secret;
bool alloy__secure = true; /* set from the options at process start */
static __thread bool initializing; /* this thread runs process_init */

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

/* The fork handlers are registered here, before any thread can take one of
 * alloy's locks: registered later (at the first thread heap, as once), a
 * fork by one thread while another made its first heap could copy a held
 * lock into a child with no handler to release it (tests/test_fork.c found
 * it).  pthread_atfork may allocate (past 48 handlers in glibc): that
 * malloc re-enters process_init on this thread and returns at once, since
 * everything it needs is set up by then. */
void process_init(void) {
  if (likely(atomic_load_explicit(&alloy__process_ready, memory_order_acquire) == 2)) return;
  if (initializing) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&alloy__process_ready, &expected, 1)) {
    initializing = true;
    os_init();
    options_init();
    size_class_init();
    alloy__secret = alloy__options.secure ? os_random() | 1 : 0;
    alloy__secure = alloy__options.secure;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    initializing = false;
    atomic_store_explicit(&alloy__process_ready, 2, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&alloy__process_ready, memory_order_acquire) != 2) os_yield();
}

static pthread_key_t thread_key;
/* pthread_once, not a lock of ours: glibc restarts a once-routine that a
 * fork interrupted in the child. */
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

/* glibc clears the key before calling this; a later destructor that
 * allocates gets a heap again, and re-registers, so it is abandoned in the
 * next round of destructors. */
static void thread_done(void *value) { heap_thread_done((heap_t *)value); }

/* Every lock alloy has, in the one order any code path takes them (an
 * arena's lock, the exited threads' heap, the heap lists, each heap's
 * seg_lock, the huge cache, the tcache table, the metadata), so that a
 * child never inherits a lock held by a thread that does not exist there.
 * tests/test_fork.c forks while each lock is held. */
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

static void thread_key_init(void) {
  if (pthread_key_create(&thread_key, thread_done) != 0)
    report_fatal("alloy: cannot create the thread-exit key");
}

void init_thread_register(heap_t *heap) {
  pthread_once(&thread_key_once, thread_key_init);
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
