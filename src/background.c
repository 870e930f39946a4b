/*
 * background.c - the background thread (background_thread:true, or the
 * `background_thread` mallctl, as jemalloc's): one thread per process that
 * wakes every half dirty_decay_ms and runs the decay schedule where no
 * allocation would run it: on idle thread heaps, on heaps of exited threads,
 * on explicit arenas and on the huge-block cache.  Busy heaps keep purging
 * at their own events; the thread only makes an idle program give memory
 * back too.
 *
 * It is started lazily, at a thread heap's rare event (never from inside an
 * arena's lock, never during the process's first malloc) or by the mallctl,
 * with every signal blocked so the program's signals never land on it.  A
 * fork child has no such thread: it starts again at the child's next event.
 */
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

enum { BG_OFF, BG_RUNNING, BG_STOPPING };

static _Atomic(int) state = BG_OFF;
static _Atomic(int) enabled = -1; /* -1: follow the option; 0 or 1: set by mallctl */
static pthread_mutex_t control = PTHREAD_MUTEX_INITIALIZER; /* serialises start and stop */
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;   /* with `wake`: the sleep */
static pthread_cond_t wake;                                 /* on CLOCK_MONOTONIC, set at start */
static pthread_t thread;
static _Atomic(uint64_t) runs;
static _Atomic(uint64_t) run_ns; /* sum of the intervals between runs */

bool background_enabled(void) {
  int e = atomic_load_explicit(&enabled, memory_order_relaxed);
  return e < 0 ? alloy__options.background_thread : e == 1;
}

bool background_wanted(void) {
  return atomic_load_explicit(&state, memory_order_relaxed) == BG_OFF && background_enabled();
}

bool background_running(void) { return atomic_load_explicit(&state, memory_order_acquire) == BG_RUNNING; }

/* Sleep between passes: half the decay period (a slice is purged at the
 * second pass that finds it free), at least 10 ms; 1 s when decay is off. */
static uint64_t interval_ms(void) {
  int decay = __atomic_load_n(&alloy__options.dirty_decay_ms, __ATOMIC_RELAXED);
  if (decay < 0) return 1000;
  return decay / 2 < 10 ? 10 : (uint64_t)decay / 2;
}

static void arena_decay_cb(heap_t *heap, void *arg) {
  if (heap_decay_due(heap, *(uint64_t *)arg)) segment_decay(heap, false);
}

static void background_pass(heap_t *self) {
  uint64_t now = os_now_ms();
  heap_background_pass(self, now);
  for (unsigned i = 1; i < arena_count(); i++) arena_with_heap(i, arena_decay_cb, &now);
  huge_cache_expire();
}

static void *background_main(void *arg) {
  (void)arg;
  heap_t *self = heap_init_thread(); /* adopted heaps move here */
  pthread_mutex_lock(&mutex);
  uint64_t last = os_now_ms();
  while (atomic_load_explicit(&state, memory_order_relaxed) == BG_RUNNING) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until); /* a wall-clock step must not change the sleep */
    uint64_t ns = (uint64_t)until.tv_nsec + interval_ms() * 1000000u;
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&wake, &mutex, &until);
    if (atomic_load_explicit(&state, memory_order_relaxed) != BG_RUNNING) break;
    pthread_mutex_unlock(&mutex);
    if (self) background_pass(self);
    uint64_t now = os_now_ms();
    atomic_fetch_add_explicit(&run_ns, (now - last) * 1000000u, memory_order_relaxed);
    atomic_fetch_add_explicit(&runs, 1, memory_order_relaxed);
    last = now;
    pthread_mutex_lock(&mutex);
  }
  pthread_mutex_unlock(&mutex);
  return NULL;
}

static void start_locked(void) {
  if (atomic_load_explicit(&state, memory_order_relaxed) != BG_OFF) return;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&wake, &attr);
  pthread_condattr_destroy(&attr);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  atomic_store_explicit(&state, BG_RUNNING, memory_order_release); /* before its loop tests it */
  if (pthread_create(&thread, NULL, background_main, NULL) != 0) {
    atomic_store_explicit(&state, BG_OFF, memory_order_release);
    atomic_store_explicit(&enabled, 0, memory_order_relaxed); /* do not retry at every event */
    report_message("alloy: cannot start the background thread (background_thread disabled)");
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Creates the thread unless one exists.  From a heap event (inside malloc)
 * it never waits: a start or stop in progress elsewhere wins. */
void background_start(void) {
  if (pthread_mutex_trylock(&control) != 0) return;
  start_locked();
  pthread_mutex_unlock(&control);
}

static void stop_locked(void) {
  if (atomic_load_explicit(&state, memory_order_relaxed) != BG_RUNNING) return;
  atomic_store_explicit(&state, BG_STOPPING, memory_order_relaxed);
  pthread_mutex_lock(&mutex);
  pthread_cond_signal(&wake);
  pthread_mutex_unlock(&mutex);
  pthread_join(thread, NULL);
  pthread_cond_destroy(&wake);
  atomic_store_explicit(&state, BG_OFF, memory_order_release);
}

/* background_thread write: true starts the thread now, false stops it and
 * waits for it to end. */
int background_set(bool on) {
  process_init();
  pthread_mutex_lock(&control);
  atomic_store_explicit(&enabled, on ? 1 : 0, memory_order_relaxed);
  if (on) start_locked();
  else stop_locked();
  pthread_mutex_unlock(&control);
  return 0;
}

void background_counts(uint64_t *threads, uint64_t *nruns, uint64_t *avg_interval_ns) {
  *threads = background_running();
  *nruns = atomic_load_explicit(&runs, memory_order_relaxed);
  *avg_interval_ns = *nruns ? atomic_load_explicit(&run_ns, memory_order_relaxed) / *nruns : 0;
}

/* The child of a fork has only the forking thread. */
void background_fork_child(void) {
  pthread_mutex_init(&control, NULL);
  pthread_mutex_init(&mutex, NULL);
  atomic_store_explicit(&state, BG_OFF, memory_order_relaxed);
}
